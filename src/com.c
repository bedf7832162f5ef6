/* SPDX-License-Identifier: Apache-2.0 */
/*
 * com.c - the COM-style face of libvdi (include/vdi_com.h): vtables in the
 * Windows slot order over the native API of vdi.h, QueryInterface / AddRef
 * / Release, the CoCreateInstance-shaped factory, and the conversion of
 * wide-string names to UTF-8.
 *
 * This is an adapter only: every method translates its arguments and calls
 * one vdi_* function, returning its code unchanged.  No protocol logic
 * lives here; states, validation and waiting belong to the core.
 */
#include "vdi_com.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ IIDs and CLSIDs */

#define VDI_GUID_TAIL(a, b)                                                    \
  { a, b, 0x00, 0xc0, 0x4f, 0xc2, 0x17, 0x59 }

const IID vdi_IID_IUnknown = {
    0x00000000, 0x0000, 0x0000, {0xc0, 0, 0, 0, 0, 0, 0, 0x46}};
const IID vdi_IID_IClientVirtualDevice = {0x40700424, 0x0080, 0x11d2,
                                          VDI_GUID_TAIL(0x85, 0x1f)};
const IID vdi_IID_IClientVirtualDeviceSet = {0x40700425, 0x0080, 0x11d2,
                                             VDI_GUID_TAIL(0x85, 0x1f)};
const IID vdi_IID_IClientVirtualDeviceSet2 = {0xd0e6eb07, 0x7a62, 0x11d2,
                                              VDI_GUID_TAIL(0x85, 0x73)};
const IID vdi_IID_IServerVirtualDevice = {0xb5e7a131, 0xa7bd, 0x11d1,
                                          VDI_GUID_TAIL(0x84, 0xc2)};
const IID vdi_IID_IServerVirtualDeviceSet = {0xb5e7a132, 0xa7bd, 0x11d1,
                                             VDI_GUID_TAIL(0x84, 0xc2)};
const IID vdi_IID_IServerVirtualDeviceSet2 = {0xaecbd0d6, 0x24c6, 0x11d3,
                                              VDI_GUID_TAIL(0x85, 0xb7)};
/* vdiguid.h defines each class ID as an interface ID. */
const CLSID vdi_CLSID_MSSQL_ClientVirtualDeviceSet = {
    0x40700425, 0x0080, 0x11d2, VDI_GUID_TAIL(0x85, 0x1f)};
const CLSID vdi_CLSID_MSSQL_ServerVirtualDeviceSet = {
    0xb5e7a132, 0xa7bd, 0x11d1, VDI_GUID_TAIL(0x84, 0xc2)};

static int guid_eq(const GUID *a, const GUID *b) {
  return memcmp(a, b, sizeof *a) == 0;
}

/* ------------------------------------------------------ wide names
 * wchar_t is UTF-32 here.  The converter is our own rather than wcstombs
 * because wcstombs depends on the process locale (in the "C" locale it
 * refuses everything outside ASCII).  A value that is not a Unicode scalar
 * value (a surrogate, above U+10FFFF, negative) is VD_E_INVALID; so is a
 * name longer than VDI_MAX_NAME bytes, which vdi.h declares invalid for
 * every name, so it never needs a buffer larger than this one. */
_Static_assert(sizeof(wchar_t) == 4, "wide names are UTF-32");

typedef char name_buf[VDI_MAX_NAME + 1];

static int wide_to_utf8(const wchar_t *w, name_buf out) {
  size_t n = 0;
  for (; *w != 0; w++) {
    uint32_t c = (uint32_t)*w;
    char enc[4];
    size_t len;
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return VD_E_INVALID;
    if (c < 0x80) {
      enc[0] = (char)c;
      len = 1;
    } else if (c < 0x800) {
      enc[0] = (char)(0xC0 | (c >> 6));
      enc[1] = (char)(0x80 | (c & 0x3F));
      len = 2;
    } else if (c < 0x10000) {
      enc[0] = (char)(0xE0 | (c >> 12));
      enc[1] = (char)(0x80 | ((c >> 6) & 0x3F));
      enc[2] = (char)(0x80 | (c & 0x3F));
      len = 3;
    } else {
      enc[0] = (char)(0xF0 | (c >> 18));
      enc[1] = (char)(0x80 | ((c >> 12) & 0x3F));
      enc[2] = (char)(0x80 | ((c >> 6) & 0x3F));
      enc[3] = (char)(0x80 | (c & 0x3F));
      len = 4;
    }
    if (n + len > VDI_MAX_NAME) return VD_E_INVALID;
    memcpy(out + n, enc, len);
    n += len;
  }
  out[n] = 0;
  return 0;
}

/* A required name: NULL is an invalid parameter. */
static int name_arg(const wchar_t *w, name_buf out) {
  if (w == NULL) return VD_E_INVALID;
  return wide_to_utf8(w, out);
}

/* An instance name: NULL stays NULL (the default instance). */
static int instance_arg(const wchar_t *w, name_buf out, const char **res) {
  *res = NULL;
  if (w == NULL) return 0;
  int rc = wide_to_utf8(w, out);
  if (rc == 0) *res = out;
  return rc;
}

/* ------------------------------------------------------ reference counts */

static ULONG ref_add(atomic_uint *r) {
  return atomic_fetch_add_explicit(r, 1, memory_order_relaxed) + 1;
}

/* Never below zero, so a stray Release on a device cannot wrap around. */
static ULONG ref_drop(atomic_uint *r) {
  unsigned v = atomic_load_explicit(r, memory_order_relaxed);
  while (v > 0 &&
         !atomic_compare_exchange_weak_explicit(
             r, &v, v - 1, memory_order_acq_rel, memory_order_relaxed)) {
  }
  return v > 0 ? v - 1 : 0;
}

/* Common QueryInterface shape: one object answering a list of IIDs. */
static HRESULT qi_answer(void *self, const IID *riid, void **ppv,
                         const IID *const *iids, size_t n, atomic_uint *refs) {
  if (ppv == NULL) return E_POINTER;
  *ppv = NULL;
  if (riid == NULL) return E_INVALIDARG;
  for (size_t i = 0; i < n; i++)
    if (guid_eq(riid, iids[i])) {
      ref_add(refs);
      *ppv = self;
      return S_OK;
    }
  return E_NOINTERFACE;
}

/* ============================================================ client side */

struct cdev {
  IClientVirtualDevice iface; /* first: the interface pointer is the object */
  atomic_uint refs;
  vdi_device_t *dev;
  struct cdev *next;
};

struct cset {
  IClientVirtualDeviceSet2 iface; /* first; also the v1 interface */
  atomic_uint refs;
  vdi_set_t *set;
  pthread_mutex_t lock; /* guards devs */
  struct cdev *devs;    /* wrappers of the devices opened, owned here */
};

static struct cdev *CDEV(IClientVirtualDevice *p) {
  return (struct cdev *)p;
}
static struct cset *CSET(IClientVirtualDeviceSet2 *p) {
  return (struct cset *)p;
}

/* -- IClientVirtualDevice */

static HRESULT cdev_qi(IClientVirtualDevice *This, const IID *riid,
                       void **ppv) {
  static const IID *const iids[] = {&vdi_IID_IUnknown,
                                    &vdi_IID_IClientVirtualDevice};
  return qi_answer(This, riid, ppv, iids, 2, &CDEV(This)->refs);
}

static ULONG cdev_addref(IClientVirtualDevice *This) {
  return ref_add(&CDEV(This)->refs);
}

static ULONG cdev_release(IClientVirtualDevice *This) {
  return ref_drop(&CDEV(This)->refs);
}

static HRESULT cdev_get_command(IClientVirtualDevice *This, DWORD timeout,
                                VDC_Command **ppCmd) {
  /* INFINITE arrives as 0xFFFFFFFF, which the core also reads as forever. */
  return vdi_dev_get_command(CDEV(This)->dev, (int64_t)timeout, ppCmd);
}

static HRESULT cdev_complete_command(IClientVirtualDevice *This,
                                     VDC_Command *pCmd, DWORD code, DWORD bytes,
                                     DWORDLONG position) {
  return vdi_dev_complete_command(CDEV(This)->dev, pCmd, code, bytes, position);
}

static const IClientVirtualDeviceVtbl cdev_vtbl = {
    .QueryInterface = cdev_qi,
    .AddRef = cdev_addref,
    .Release = cdev_release,
    .GetCommand = cdev_get_command,
    .CompleteCommand = cdev_complete_command,
};

/* -- IClientVirtualDeviceSet2 */

/* The device objects die with the core's devices: at Close or last Release.
 */
static void cset_drop_devices(struct cset *s) {
  pthread_mutex_lock(&s->lock);
  struct cdev *d = s->devs;
  s->devs = NULL;
  pthread_mutex_unlock(&s->lock);
  while (d) {
    struct cdev *next = d->next;
    free(d);
    d = next;
  }
}

static HRESULT cset_qi(IClientVirtualDeviceSet2 *This, const IID *riid,
                       void **ppv) {
  static const IID *const iids[] = {&vdi_IID_IUnknown,
                                    &vdi_IID_IClientVirtualDeviceSet,
                                    &vdi_IID_IClientVirtualDeviceSet2};
  return qi_answer(This, riid, ppv, iids, 3, &CSET(This)->refs);
}

static ULONG cset_addref(IClientVirtualDeviceSet2 *This) {
  return ref_add(&CSET(This)->refs);
}

static ULONG cset_release(IClientVirtualDeviceSet2 *This) {
  struct cset *s = CSET(This);
  ULONG left = ref_drop(&s->refs);
  if (left == 0) {
    vdi_set_free(s->set); /* closes the set first if it is open */
    cset_drop_devices(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
  }
  return left;
}

static HRESULT cset_create_ex(IClientVirtualDeviceSet2 *This,
                              LPCWSTR lpInstanceName, LPCWSTR lpName,
                              VDConfig *pCfg) {
  name_buf ibuf, nbuf;
  const char *inst;
  int rc = instance_arg(lpInstanceName, ibuf, &inst);
  if (rc == 0) rc = name_arg(lpName, nbuf);
  if (rc != 0) return rc;
  return vdi_set_create_ex(CSET(This)->set, inst, nbuf, pCfg);
}

static HRESULT cset_create(IClientVirtualDeviceSet2 *This, LPCWSTR lpName,
                           VDConfig *pCfg) {
  name_buf nbuf;
  int rc = name_arg(lpName, nbuf);
  if (rc != 0) return rc;
  return vdi_set_create(CSET(This)->set, nbuf, pCfg);
}

static HRESULT cset_get_configuration(IClientVirtualDeviceSet2 *This,
                                      DWORD timeout, VDConfig *pCfg) {
  return vdi_set_get_configuration(CSET(This)->set, (int64_t)timeout, pCfg);
}

static HRESULT cset_open_device(IClientVirtualDeviceSet2 *This, LPCWSTR lpName,
                                IClientVirtualDevice **ppDev) {
  struct cset *s = CSET(This);
  name_buf nbuf;
  if (ppDev == NULL) return VD_E_INVALID;
  *ppDev = NULL;
  int rc = name_arg(lpName, nbuf);
  if (rc != 0) return rc;
  /* Allocate first, so a device the core has opened always gets an object.
   */
  struct cdev *w = calloc(1, sizeof *w);
  if (w == NULL) return VD_E_MEMORY;
  vdi_device_t *dev = NULL;
  rc = vdi_set_open_device(s->set, nbuf, &dev);
  if (rc != 0) {
    free(w);
    return rc;
  }
  pthread_mutex_lock(&s->lock);
  struct cdev *d = s->devs;
  while (d && d->dev != dev)
    d = d->next;
  if (d == NULL) {
    w->iface.lpVtbl = &cdev_vtbl;
    atomic_init(&w->refs, 0);
    w->dev = dev;
    w->next = s->devs;
    s->devs = w;
    d = w;
    w = NULL;
  }
  ref_add(&d->refs);
  pthread_mutex_unlock(&s->lock);
  free(w);
  *ppDev = &d->iface;
  return 0;
}

static HRESULT cset_close(IClientVirtualDeviceSet2 *This) {
  struct cset *s = CSET(This);
  int rc = vdi_set_close(s->set);
  /* Every outcome of Close releases the set's devices (VD_E_OPEN too). */
  cset_drop_devices(s);
  return rc;
}

static HRESULT cset_signal_abort(IClientVirtualDeviceSet2 *This) {
  return vdi_set_signal_abort(CSET(This)->set);
}

static HRESULT cset_open_in_secondary(IClientVirtualDeviceSet2 *This,
                                      LPCWSTR lpSetName) {
  name_buf nbuf;
  int rc = name_arg(lpSetName, nbuf);
  if (rc != 0) return rc;
  return vdi_set_open_in_secondary(CSET(This)->set, nbuf);
}

static HRESULT cset_open_in_secondary_ex(IClientVirtualDeviceSet2 *This,
                                         LPCWSTR lpInstanceName,
                                         LPCWSTR lpSetName) {
  name_buf ibuf, nbuf;
  const char *inst;
  int rc = instance_arg(lpInstanceName, ibuf, &inst);
  if (rc == 0) rc = name_arg(lpSetName, nbuf);
  if (rc != 0) return rc;
  return vdi_set_open_in_secondary_ex(CSET(This)->set, inst, nbuf);
}

static HRESULT cset_get_buffer_handle(IClientVirtualDeviceSet2 *This,
                                      BYTE *pBuffer, DWORD *pHandle) {
  return vdi_set_get_buffer_handle(CSET(This)->set, pBuffer, pHandle);
}

static HRESULT cset_map_buffer_handle(IClientVirtualDeviceSet2 *This,
                                      DWORD dwBuffer, BYTE **ppBuffer) {
  return vdi_set_map_buffer_handle(CSET(This)->set, dwBuffer, ppBuffer);
}

static const IClientVirtualDeviceSet2Vtbl cset_vtbl = {
    .QueryInterface = cset_qi,
    .AddRef = cset_addref,
    .Release = cset_release,
    .Create = cset_create,
    .GetConfiguration = cset_get_configuration,
    .OpenDevice = cset_open_device,
    .Close = cset_close,
    .SignalAbort = cset_signal_abort,
    .OpenInSecondary = cset_open_in_secondary,
    .GetBufferHandle = cset_get_buffer_handle,
    .MapBufferHandle = cset_map_buffer_handle,
    .CreateEx = cset_create_ex,
    .OpenInSecondaryEx = cset_open_in_secondary_ex,
};

/* The v1 vtable must be a prefix of the v2 one for the object to serve both
 * IIDs; this pins it (the slot order itself is pinned by the tests). */
_Static_assert(offsetof(IClientVirtualDeviceSetVtbl, MapBufferHandle) ==
                   offsetof(IClientVirtualDeviceSet2Vtbl, MapBufferHandle),
               "v1 client set vtable is a prefix of v2");
_Static_assert(offsetof(IClientVirtualDeviceSet2Vtbl, CreateEx) ==
                   sizeof(IClientVirtualDeviceSetVtbl),
               "v2 appends to v1");

static HRESULT cset_new(struct cset **out) {
  struct cset *s = calloc(1, sizeof *s);
  if (s == NULL) return VD_E_MEMORY;
  int rc = vdi_set_new(&s->set);
  if (rc != 0) {
    free(s);
    return rc;
  }
  s->iface.lpVtbl = &cset_vtbl;
  atomic_init(&s->refs, 1);
  pthread_mutex_init(&s->lock, NULL);
  *out = s;
  return 0;
}

/* ============================================================ server side */

struct sdev {
  IServerVirtualDevice iface; /* first */
  atomic_uint refs;
  vdi_srvdev_t *dev;
  struct sdev *next;
};

struct sset {
  IServerVirtualDeviceSet2 iface; /* first */
  atomic_uint refs;
  vdi_srvset_t *srv;
  atomic_int opened; /* Open succeeded and no Close since: close at Release */
  pthread_mutex_t lock; /* guards devs */
  struct sdev *devs;
};

static struct sdev *SDEV(IServerVirtualDevice *p) {
  return (struct sdev *)p;
}
static struct sset *SSET(IServerVirtualDeviceSet2 *p) {
  return (struct sset *)p;
}

/* -- IServerVirtualDevice */

static HRESULT sdev_qi(IServerVirtualDevice *This, const IID *riid,
                       void **ppv) {
  static const IID *const iids[] = {&vdi_IID_IUnknown,
                                    &vdi_IID_IServerVirtualDevice};
  return qi_answer(This, riid, ppv, iids, 2, &SDEV(This)->refs);
}

static ULONG sdev_addref(IServerVirtualDevice *This) {
  return ref_add(&SDEV(This)->refs);
}

static ULONG sdev_release(IServerVirtualDevice *This) {
  return ref_drop(&SDEV(This)->refs);
}

static HRESULT sdev_send_command(IServerVirtualDevice *This,
                                 VDS_Command *pCmd) {
  return vdi_srvdev_send_command(SDEV(This)->dev, pCmd);
}

static HRESULT sdev_close_device(IServerVirtualDevice *This) {
  return vdi_srvdev_close_device(SDEV(This)->dev);
}

static const IServerVirtualDeviceVtbl sdev_vtbl = {
    .QueryInterface = sdev_qi,
    .AddRef = sdev_addref,
    .Release = sdev_release,
    .SendCommand = sdev_send_command,
    .CloseDevice = sdev_close_device,
};

/* -- IServerVirtualDeviceSet2 */

static void sset_drop_devices(struct sset *s) {
  pthread_mutex_lock(&s->lock);
  struct sdev *d = s->devs;
  s->devs = NULL;
  pthread_mutex_unlock(&s->lock);
  while (d) {
    struct sdev *next = d->next;
    free(d);
    d = next;
  }
}

static HRESULT sset_qi(IServerVirtualDeviceSet2 *This, const IID *riid,
                       void **ppv) {
  static const IID *const iids[] = {&vdi_IID_IUnknown,
                                    &vdi_IID_IServerVirtualDeviceSet2};
  return qi_answer(This, riid, ppv, iids, 2, &SSET(This)->refs);
}

static ULONG sset_addref(IServerVirtualDeviceSet2 *This) {
  return ref_add(&SSET(This)->refs);
}

static ULONG sset_release(IServerVirtualDeviceSet2 *This) {
  struct sset *s = SSET(This);
  ULONG left = ref_drop(&s->refs);
  if (left == 0) {
    if (atomic_load(&s->opened)) (void)vdi_srv_close(s->srv);
    vdi_srv_free(s->srv);
    sset_drop_devices(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
  }
  return left;
}

static HRESULT sset_open(IServerVirtualDeviceSet2 *This, LPCWSTR lpInstanceName,
                         LPCWSTR lpSetName) {
  struct sset *s = SSET(This);
  name_buf ibuf, nbuf;
  const char *inst;
  int rc = instance_arg(lpInstanceName, ibuf, &inst);
  if (rc == 0) rc = name_arg(lpSetName, nbuf);
  if (rc != 0) return rc;
  rc = vdi_srv_open(s->srv, inst, nbuf);
  if (rc == 0) atomic_store(&s->opened, 1);
  return rc;
}

static HRESULT sset_get_configuration(IServerVirtualDeviceSet2 *This,
                                      VDConfig *pCfg) {
  return vdi_srv_get_configuration(SSET(This)->srv, pCfg);
}

static HRESULT sset_begin_configuration(IServerVirtualDeviceSet2 *This,
                                        DWORD dwFeatures, DWORD dwBlockSize,
                                        DWORD dwAlignment,
                                        DWORD dwMaxTransferSize,
                                        DWORD dwTimeout) {
  return vdi_srv_begin_configuration(SSET(This)->srv, dwFeatures, dwBlockSize,
                                     dwAlignment, dwMaxTransferSize, dwTimeout);
}

static HRESULT sset_end_configuration(IServerVirtualDeviceSet2 *This) {
  return vdi_srv_end_configuration(SSET(This)->srv);
}

static HRESULT sset_request_buffers(IServerVirtualDeviceSet2 *This,
                                    DWORD dwSize, DWORD dwAlignment,
                                    DWORD dwCount) {
  return vdi_srv_request_buffers(SSET(This)->srv, dwSize, dwAlignment, dwCount);
}

static HRESULT sset_query_available_buffers(IServerVirtualDeviceSet2 *This,
                                            DWORD dwSize, DWORD dwAlignment,
                                            DWORD *pCount) {
  return vdi_srv_query_available_buffers(SSET(This)->srv, dwSize, dwAlignment,
                                         pCount);
}

static HRESULT sset_execute_completion_agent(IServerVirtualDeviceSet2 *This) {
  return vdi_srv_execute_completion_agent(SSET(This)->srv);
}

static HRESULT sset_open_device(IServerVirtualDeviceSet2 *This, LPCWSTR lpName,
                                IServerVirtualDevice **ppDev) {
  struct sset *s = SSET(This);
  name_buf nbuf;
  if (ppDev == NULL) return VD_E_INVALID;
  *ppDev = NULL;
  int rc = name_arg(lpName, nbuf);
  if (rc != 0) return rc;
  struct sdev *w = calloc(1, sizeof *w);
  if (w == NULL) return VD_E_MEMORY;
  vdi_srvdev_t *dev = NULL;
  rc = vdi_srv_open_device(s->srv, nbuf, &dev);
  if (rc != 0) {
    free(w);
    return rc;
  }
  pthread_mutex_lock(&s->lock);
  struct sdev *d = s->devs;
  while (d && d->dev != dev)
    d = d->next;
  if (d == NULL) {
    w->iface.lpVtbl = &sdev_vtbl;
    atomic_init(&w->refs, 0);
    w->dev = dev;
    w->next = s->devs;
    s->devs = w;
    d = w;
    w = NULL;
  }
  ref_add(&d->refs);
  pthread_mutex_unlock(&s->lock);
  free(w);
  *ppDev = &d->iface;
  return 0;
}

static HRESULT sset_allocate_buffer(IServerVirtualDeviceSet2 *This,
                                    BYTE **ppBuffer, DWORD dwSize,
                                    DWORD dwAlignment) {
  return vdi_srv_allocate_buffer(SSET(This)->srv, ppBuffer, dwSize,
                                 dwAlignment);
}

static HRESULT sset_free_buffer(IServerVirtualDeviceSet2 *This, BYTE *pBuffer,
                                DWORD dwSize) {
  return vdi_srv_free_buffer(SSET(This)->srv, pBuffer, dwSize);
}

static HRESULT sset_is_shared_buffer(IServerVirtualDeviceSet2 *This,
                                     BYTE *pBuffer) {
  return vdi_srv_is_shared_buffer(SSET(This)->srv, pBuffer);
}

static HRESULT sset_signal_abort(IServerVirtualDeviceSet2 *This) {
  return vdi_srv_signal_abort(SSET(This)->srv);
}

static HRESULT sset_close(IServerVirtualDeviceSet2 *This) {
  struct sset *s = SSET(This);
  int rc = vdi_srv_close(s->srv);
  /* Close releases everything whatever it returns (spec §2.3.12). */
  atomic_store(&s->opened, 0);
  sset_drop_devices(s);
  return rc;
}

static const IServerVirtualDeviceSet2Vtbl sset_vtbl = {
    .QueryInterface = sset_qi,
    .AddRef = sset_addref,
    .Release = sset_release,
    .Open = sset_open,
    .GetConfiguration = sset_get_configuration,
    .BeginConfiguration = sset_begin_configuration,
    .EndConfiguration = sset_end_configuration,
    .RequestBuffers = sset_request_buffers,
    .QueryAvailableBuffers = sset_query_available_buffers,
    .ExecuteCompletionAgent = sset_execute_completion_agent,
    .OpenDevice = sset_open_device,
    .AllocateBuffer = sset_allocate_buffer,
    .FreeBuffer = sset_free_buffer,
    .IsSharedBuffer = sset_is_shared_buffer,
    .SignalAbort = sset_signal_abort,
    .Close = sset_close,
};

static HRESULT sset_new(struct sset **out) {
  struct sset *s = calloc(1, sizeof *s);
  if (s == NULL) return VD_E_MEMORY;
  int rc = vdi_srv_new(&s->srv);
  if (rc != 0) {
    free(s);
    return rc;
  }
  s->iface.lpVtbl = &sset_vtbl;
  atomic_init(&s->refs, 1);
  atomic_init(&s->opened, 0);
  pthread_mutex_init(&s->lock, NULL);
  *out = s;
  return 0;
}

/* ================================================================ factory */

HRESULT vdi_CoCreateInstance(const CLSID *rclsid, void *pUnkOuter,
                             DWORD dwClsContext, const IID *riid, void **ppv) {
  (void)dwClsContext; /* every object is in-process */
  if (ppv == NULL) return E_POINTER;
  *ppv = NULL;
  if (rclsid == NULL || riid == NULL) return E_INVALIDARG;
  if (pUnkOuter != NULL) return CLASS_E_NOAGGREGATION;

  /* Make the object with one reference, ask it for the interface (which
   * adds one), then drop ours: a refused IID frees the object again. */
  HRESULT hr;
  if (guid_eq(rclsid, &vdi_CLSID_MSSQL_ClientVirtualDeviceSet)) {
    struct cset *s;
    int rc = cset_new(&s);
    if (rc != 0) return rc;
    hr = cset_qi(&s->iface, riid, ppv);
    cset_release(&s->iface);
  } else if (guid_eq(rclsid, &vdi_CLSID_MSSQL_ServerVirtualDeviceSet)) {
    struct sset *s;
    int rc = sset_new(&s);
    if (rc != 0) return rc;
    hr = sset_qi(&s->iface, riid, ppv);
    sset_release(&s->iface);
  } else {
    hr = CLASS_E_CLASSNOTAVAILABLE;
  }
  return hr;
}
