/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-backup.c - a backup to files through the COM-style client
 * interfaces, against the COM-style server of test-com-peer.c running in
 * another process.  The client is written like Windows VDI client code:
 * the factory, then only the IClientVirtualDeviceSet2_* /
 * IClientVirtualDevice_* macros.  A second test drives the same client
 * through raw vtable slot numbers, as a binary built against the Windows
 * headers would, which checks the slot order at run time.
 */
#include "task.h"

#include "vdi_com.h"

#include <pthread.h>
#include <sys/wait.h>

/* From test-com-peer.c. */
void com_pattern(uint8_t *buf, uint64_t off, size_t n, unsigned dev);
void com_widen(const char *s, wchar_t *out, size_t cap);
void com_device_name(const char *set, unsigned i, char *out, size_t cap);
int com_verify_file(const char *path, uint64_t bytes, unsigned dev);

#define BACKUP_BYTES (3u << 20)

/* The file holds exactly @p bytes of device @p dev's stream: 0 if so. */
int com_verify_file(const char *path, uint64_t bytes, unsigned dev) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  uint8_t got[8192], want[8192];
  uint64_t off = 0;
  size_t n;
  int bad = 0;
  while ((n = fread(got, 1, sizeof got, f)) > 0) {
    com_pattern(want, off, n, dev);
    if (memcmp(got, want, n) != 0) {
      fprintf(stderr, "%s differs near offset %llu\n", path,
              (unsigned long long)off);
      bad = 1;
      break;
    }
    off += n;
  }
  fclose(f);
  if (!bad && off != bytes) {
    fprintf(stderr, "%s holds %llu bytes, expected %llu\n", path,
            (unsigned long long)off, (unsigned long long)bytes);
    bad = 1;
  }
  return bad ? -1 : 0;
}

/* ------------------------------------------------- client through macros */

struct dev_job {
  IClientVirtualDeviceSet2 *vds;
  IClientVirtualDevice *dev;
  FILE *out;
  int rc;  /* the code that ended the loop: VD_E_CLOSE when normal */
  int bad; /* something unexpected */
  long writes;
};

static void *device_loop(void *arg) {
  struct dev_job *j = arg;
  VDC_Command *cmd;
  HRESULT hr;
  while ((hr = IClientVirtualDevice_GetCommand(j->dev, INFINITE, &cmd)) ==
         NOERROR) {
    DWORD code = ERROR_SUCCESS, bytes = 0;
    switch (cmd->commandCode) {
    case VDC_Write:
      if (j->writes++ == 0) {
        /* A buffer handle maps back to the same address in this process. */
        DWORD h = 0;
        BYTE *p = NULL;
        if (IClientVirtualDeviceSet2_GetBufferHandle(j->vds, cmd->buffer, &h) !=
                NOERROR ||
            IClientVirtualDeviceSet2_MapBufferHandle(j->vds, h, &p) !=
                NOERROR ||
            p != cmd->buffer)
          j->bad = 1;
      }
      if (fwrite(cmd->buffer, 1, (size_t)cmd->size, j->out) !=
          (size_t)cmd->size)
        code = ERROR_DISK_FULL;
      else
        bytes = (DWORD)cmd->size;
      break;
    case VDC_Flush:
      if (fflush(j->out) != 0) code = ERROR_DISK_FULL;
      break;
    default:
      code = ERROR_NOT_SUPPORTED;
      j->bad = 1;
    }
    hr = IClientVirtualDevice_CompleteCommand(j->dev, cmd, code, bytes, 0);
    if (hr != NOERROR) break;
  }
  j->rc = hr;
  return NULL;
}

/* Wait for the server's configuration, as Windows samples do: a short
 * timeout in a loop that checks the engine is still alive. */
static HRESULT wait_config(IClientVirtualDeviceSet2 *vds, pid_t server,
                           VDConfig *cfg) {
  HRESULT hr;
  while ((hr = IClientVirtualDeviceSet2_GetConfiguration(vds, 1000, cfg)) ==
         VD_E_TIMEOUT) {
    int st = wait_helper_timeout(server, 0);
    if (st != -1) TASK_FAIL_("server exited (%d) before configuring", st);
  }
  return hr;
}

TEST_IMPL_TIMEOUT(com_backup_c, 30) {
  const char *set = unique_name("comc");
  const unsigned ndev = 2;
  wchar_t wset[128];
  com_widen(set, wset, 128);

  IClientVirtualDeviceSet2 *vds = NULL;
  HRESULT hr = vdi_CoCreateInstance(
      &CLSID_MSSQL_ClientVirtualDeviceSet, NULL, CLSCTX_INPROC_SERVER,
      &IID_IClientVirtualDeviceSet2, (void **)&vds);
  ASSERT_RC(hr, S_OK);
  ASSERT_NOT_NULL(vds);

  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = ndev;
  cfg.features = VDF_LikePipe;
  ASSERT_RC(IClientVirtualDeviceSet2_CreateEx(vds, NULL, wset, &cfg), NOERROR);

  char bytes[32];
  snprintf(bytes, sizeof bytes, "%u", BACKUP_BYTES);
  pid_t server = spawn_helper("com_server", set, "2", bytes, "backup", NULL);

  ASSERT_RC(wait_config(vds, server, &cfg), NOERROR);
  ASSERT_EQ(cfg.deviceCount, ndev);
  ASSERT(cfg.features & VDF_WriteMedia);
  ASSERT_EQ(cfg.blockSize, 512);
  ASSERT_EQ(cfg.maxTransferSize, 65536);

  struct dev_job jobs[2];
  pthread_t th[2];
  memset(jobs, 0, sizeof jobs);
  for (unsigned i = 0; i < ndev; i++) {
    char dn[128], path[512];
    wchar_t wdn[128];
    com_device_name(set, i, dn, sizeof dn);
    com_widen(dn, wdn, 128);
    jobs[i].vds = vds;
    ASSERT_RC(IClientVirtualDeviceSet2_OpenDevice(vds, wdn, &jobs[i].dev),
              NOERROR);
    ASSERT_NOT_NULL(jobs[i].dev);
    snprintf(path, sizeof path, "%s/stripe%u", test_tmpdir(), i);
    jobs[i].out = fopen(path, "wb");
    ASSERT_NOT_NULL(jobs[i].out);
  }
  /* A failed OpenDevice (this device is open already) leaves NULL. */
  IClientVirtualDevice dummy, *extra = &dummy;
  ASSERT_NE(IClientVirtualDeviceSet2_OpenDevice(vds, wset, &extra), NOERROR);
  ASSERT_NULL(extra);

  for (unsigned i = 0; i < ndev; i++)
    ASSERT_EQ(pthread_create(&th[i], NULL, device_loop, &jobs[i]), 0);
  for (unsigned i = 0; i < ndev; i++) {
    ASSERT_EQ(pthread_join(th[i], NULL), 0);
    ASSERT_RC(jobs[i].rc, VD_E_CLOSE);
    ASSERT_EQ(jobs[i].bad, 0);
    ASSERT_GT(jobs[i].writes, 1);
    ASSERT_EQ(fclose(jobs[i].out), 0);
  }
  ASSERT_RC(IClientVirtualDeviceSet2_Close(vds), NOERROR);
  ASSERT_RC(IClientVirtualDeviceSet2_Close(vds), VD_E_PROTOCOL);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(vds), 0);
  ASSERT_EQ(wait_helper(server), 0);

  for (unsigned i = 0; i < ndev; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/stripe%u", test_tmpdir(), i);
    ASSERT_EQ(com_verify_file(path, BACKUP_BYTES, i), 0);
  }
  return 0;
}

/* --------------------------------------------- client through slot numbers
 * The Windows slot numbers, written out independently of vdi_com.h's
 * struct declarations: IUnknown 0-2, then the methods in spec order. */
enum {
  SLOT_QueryInterface = 0,
  SLOT_AddRef = 1,
  SLOT_Release = 2,
  CSET_Create = 3,
  CSET_GetConfiguration = 4,
  CSET_OpenDevice = 5,
  CSET_Close = 6,
  CSET_SignalAbort = 7,
  CSET_OpenInSecondary = 8,
  CSET_GetBufferHandle = 9,
  CSET_MapBufferHandle = 10,
  CSET_CreateEx = 11,
  CSET_OpenInSecondaryEx = 12,
  CDEV_GetCommand = 3,
  CDEV_CompleteCommand = 4,
};

typedef void (*slot_fn)(void);
/* The function in slot @p i of a COM object's vtable. */
static slot_fn slot(void *obj, int i) {
  slot_fn const *vt = *(slot_fn const *const *)obj;
  return vt[i];
}

typedef HRESULT (*qi_fn)(void *, const IID *, void **);
typedef ULONG (*ref_fn)(void *);
typedef HRESULT (*create_ex_fn)(void *, LPCWSTR, LPCWSTR, VDConfig *);
typedef HRESULT (*get_config_fn)(void *, DWORD, VDConfig *);
typedef HRESULT (*open_device_fn)(void *, LPCWSTR, void **);
typedef HRESULT (*void_fn)(void *);
typedef HRESULT (*get_command_fn)(void *, DWORD, VDC_Command **);
typedef HRESULT (*handle_fn)(void *, BYTE *, DWORD *);
typedef HRESULT (*map_fn)(void *, DWORD, BYTE **);
typedef HRESULT (*complete_fn)(void *, VDC_Command *, DWORD, DWORD, DWORDLONG);

#define CALL(obj, i, type, ...) (((type)slot(obj, i))(obj, __VA_ARGS__))
#define CALL0(obj, i, type)     (((type)slot(obj, i))(obj))

TEST_IMPL_TIMEOUT(com_backup_slots, 30) {
  const char *set = unique_name("coms");
  wchar_t wset[128];
  com_widen(set, wset, 128);

  void *vds = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IClientVirtualDeviceSet2, &vds),
            S_OK);
  /* IUnknown's three slots. */
  void *unk = NULL;
  ASSERT_RC(CALL(vds, SLOT_QueryInterface, qi_fn, &IID_IUnknown, &unk), S_OK);
  ASSERT(unk == vds);
  ASSERT_EQ(CALL0(vds, SLOT_AddRef, ref_fn), 3);
  ASSERT_EQ(CALL0(vds, SLOT_Release, ref_fn), 2);
  ASSERT_EQ(CALL0(vds, SLOT_Release, ref_fn), 1);
  /* Before Create, SignalAbort and Close have no set: VD_E_PROTOCOL. */
  ASSERT_RC(CALL0(vds, CSET_SignalAbort, void_fn), VD_E_PROTOCOL);
  ASSERT_RC(CALL0(vds, CSET_Close, void_fn), VD_E_PROTOCOL);

  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  ASSERT_RC(CALL(vds, CSET_CreateEx, create_ex_fn, NULL, wset, &cfg), 0);
  char bytes[32];
  snprintf(bytes, sizeof bytes, "%u", BACKUP_BYTES / 2);
  pid_t server = spawn_helper("com_server", set, "1", bytes, "backup", NULL);
  HRESULT hr;
  while ((hr = CALL(vds, CSET_GetConfiguration, get_config_fn, 1000, &cfg)) ==
         VD_E_TIMEOUT)
    ASSERT_EQ(wait_helper_timeout(server, 0), -1);
  ASSERT_RC(hr, 0);
  ASSERT_EQ(cfg.blockSize, 512);

  void *dev = NULL;
  ASSERT_RC(CALL(vds, CSET_OpenDevice, open_device_fn, wset, &dev), 0);
  char path[512];
  snprintf(path, sizeof path, "%s/slots", test_tmpdir());
  FILE *out = fopen(path, "wb");
  ASSERT_NOT_NULL(out);
  VDC_Command *cmd;
  while ((hr = CALL(dev, CDEV_GetCommand, get_command_fn, INFINITE, &cmd)) ==
         0) {
    DWORD n = 0;
    if (cmd->commandCode == VDC_Write) {
      /* A handle maps back through slots 9 and 10. */
      DWORD h;
      BYTE *p = NULL;
      ASSERT_RC(CALL(vds, CSET_GetBufferHandle, handle_fn, cmd->buffer, &h), 0);
      ASSERT_RC(CALL(vds, CSET_MapBufferHandle, map_fn, h, &p), 0);
      ASSERT(p == cmd->buffer);
      ASSERT_EQ(fwrite(cmd->buffer, 1, (size_t)cmd->size, out), cmd->size);
      n = (DWORD)cmd->size;
    } else {
      ASSERT_EQ(cmd->commandCode, VDC_Flush);
    }
    ASSERT_RC(CALL(dev, CDEV_CompleteCommand, complete_fn, cmd, 0, n, 0), 0);
  }
  ASSERT_RC(hr, VD_E_CLOSE);
  ASSERT_EQ(fclose(out), 0);
  ASSERT_RC(CALL0(vds, CSET_Close, void_fn), 0);
  ASSERT_RC(CALL0(vds, CSET_Close, void_fn), VD_E_PROTOCOL);
  ASSERT_EQ(CALL0(vds, SLOT_Release, ref_fn), 0);
  ASSERT_EQ(wait_helper(server), 0);
  ASSERT_EQ(com_verify_file(path, BACKUP_BYTES / 2, 0), 0);
  return 0;
}
