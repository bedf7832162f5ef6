/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-layout.c - the binary shape of vdi_com.h: every vtable slot at
 * its Windows index (static asserts, so a reordered header does not
 * build), each base interface's vtable a prefix of its derived ones',
 * interface structs that are one pointer, the IID and CLSID values
 * of spec §2.2.1, and at run time the vtables the factory hands out: every
 * slot filled, no two slots the same function.
 */
#include "task.h"

#include "vdi_com.h"

#include <stdio.h>

/* Slot i of a vtable sits at byte i * sizeof(void *). */
#define SLOT_AT(vt, member, i)                                                 \
  _Static_assert(offsetof(vt, member) == (i) * sizeof(void *),                 \
                 #vt "." #member " is slot " #i)
#define SLOTS(vt, n)                                                           \
  _Static_assert(sizeof(vt) == (n) * sizeof(void *), #vt " has " #n " slots")

#define IUNKNOWN_SLOTS(vt)                                                     \
  SLOT_AT(vt, QueryInterface, 0);                                              \
  SLOT_AT(vt, AddRef, 1);                                                      \
  SLOT_AT(vt, Release, 2)

IUNKNOWN_SLOTS(IUnknownVtbl);
SLOTS(IUnknownVtbl, 3);

IUNKNOWN_SLOTS(IClientVirtualDeviceVtbl);
SLOT_AT(IClientVirtualDeviceVtbl, GetCommand, 3);
SLOT_AT(IClientVirtualDeviceVtbl, CompleteCommand, 4);
SLOTS(IClientVirtualDeviceVtbl, 5);

IUNKNOWN_SLOTS(IClientVirtualDeviceSetVtbl);
SLOT_AT(IClientVirtualDeviceSetVtbl, Create, 3);
SLOT_AT(IClientVirtualDeviceSetVtbl, GetConfiguration, 4);
SLOT_AT(IClientVirtualDeviceSetVtbl, OpenDevice, 5);
SLOT_AT(IClientVirtualDeviceSetVtbl, Close, 6);
SLOT_AT(IClientVirtualDeviceSetVtbl, SignalAbort, 7);
SLOT_AT(IClientVirtualDeviceSetVtbl, OpenInSecondary, 8);
SLOT_AT(IClientVirtualDeviceSetVtbl, GetBufferHandle, 9);
SLOT_AT(IClientVirtualDeviceSetVtbl, MapBufferHandle, 10);
SLOTS(IClientVirtualDeviceSetVtbl, 11);

IUNKNOWN_SLOTS(IClientVirtualDeviceSet2Vtbl);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, Create, 3);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, GetConfiguration, 4);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, OpenDevice, 5);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, Close, 6);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, SignalAbort, 7);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, OpenInSecondary, 8);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, GetBufferHandle, 9);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, MapBufferHandle, 10);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, CreateEx, 11);
SLOT_AT(IClientVirtualDeviceSet2Vtbl, OpenInSecondaryEx, 12);
SLOTS(IClientVirtualDeviceSet2Vtbl, 13);

IUNKNOWN_SLOTS(IServerVirtualDeviceVtbl);
SLOT_AT(IServerVirtualDeviceVtbl, SendCommand, 3);
SLOT_AT(IServerVirtualDeviceVtbl, CloseDevice, 4);
SLOTS(IServerVirtualDeviceVtbl, 5);

IUNKNOWN_SLOTS(IServerVirtualDeviceSet2Vtbl);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, Open, 3);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, GetConfiguration, 4);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, BeginConfiguration, 5);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, EndConfiguration, 6);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, RequestBuffers, 7);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, QueryAvailableBuffers, 8);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, ExecuteCompletionAgent, 9);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, OpenDevice, 10);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, AllocateBuffer, 11);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, FreeBuffer, 12);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, IsSharedBuffer, 13);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, SignalAbort, 14);
SLOT_AT(IServerVirtualDeviceSet2Vtbl, Close, 15);
SLOTS(IServerVirtualDeviceSet2Vtbl, 16);

/* The C++ view's inheritance needs each base's vtable to be a prefix of
 * the derived one's: IUnknown's of every vtable, and the v1 client set's
 * of the v2 one (the C side serves both IIDs with that one vtable). */
#define PREFIX_SLOT(base, derived, member)                                     \
  _Static_assert(offsetof(base, member) == offsetof(derived, member),          \
                 #base "." #member " is the same slot of " #derived)
#define IUNKNOWN_PREFIX(vt)                                                    \
  PREFIX_SLOT(IUnknownVtbl, vt, QueryInterface);                               \
  PREFIX_SLOT(IUnknownVtbl, vt, AddRef);                                       \
  PREFIX_SLOT(IUnknownVtbl, vt, Release)
IUNKNOWN_PREFIX(IClientVirtualDeviceVtbl);
IUNKNOWN_PREFIX(IClientVirtualDeviceSetVtbl);
IUNKNOWN_PREFIX(IClientVirtualDeviceSet2Vtbl);
IUNKNOWN_PREFIX(IServerVirtualDeviceVtbl);
IUNKNOWN_PREFIX(IServerVirtualDeviceSet2Vtbl);
#define V1 IClientVirtualDeviceSetVtbl
#define V2 IClientVirtualDeviceSet2Vtbl
PREFIX_SLOT(V1, V2, QueryInterface);
PREFIX_SLOT(V1, V2, AddRef);
PREFIX_SLOT(V1, V2, Release);
PREFIX_SLOT(V1, V2, Create);
PREFIX_SLOT(V1, V2, GetConfiguration);
PREFIX_SLOT(V1, V2, OpenDevice);
PREFIX_SLOT(V1, V2, Close);
PREFIX_SLOT(V1, V2, SignalAbort);
PREFIX_SLOT(V1, V2, OpenInSecondary);
PREFIX_SLOT(V1, V2, GetBufferHandle);
PREFIX_SLOT(V1, V2, MapBufferHandle);
_Static_assert(offsetof(V2, CreateEx) == sizeof(V1), "v2 appends to v1");
#undef V1
#undef V2

/* An interface pointer points at the vtable pointer, and nothing else is
 * public. */
_Static_assert(sizeof(IUnknown) == sizeof(void *), "one ptr");
_Static_assert(sizeof(IClientVirtualDevice) == sizeof(void *), "one ptr");
_Static_assert(sizeof(IClientVirtualDeviceSet) == sizeof(void *), "one ptr");
_Static_assert(sizeof(IClientVirtualDeviceSet2) == sizeof(void *), "one ptr");
_Static_assert(sizeof(IServerVirtualDevice) == sizeof(void *), "one ptr");
_Static_assert(sizeof(IServerVirtualDeviceSet2) == sizeof(void *), "one ptr");
_Static_assert(sizeof(GUID) == 16 && offsetof(GUID, Data4) == 8, "GUID");
_Static_assert(sizeof(DWORD) == 4 && sizeof(DWORDLONG) == 8, "DWORD");
_Static_assert(sizeof(HRESULT) == 4 && (HRESULT)-1 < 0, "HRESULT");

/* ---------------------------------------------------------- GUID values */

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" the way GUIDs are written. */
static GUID parse_guid(const char *s) {
  GUID g;
  unsigned d1, d2, d3, b[8];
  int n = sscanf(s, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &d1, &d2, &d3,
                 &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7]);
  if (n != 11) TASK_FAIL_("bad GUID text %s", s);
  g.Data1 = d1;
  g.Data2 = (uint16_t)d2;
  g.Data3 = (uint16_t)d3;
  for (int i = 0; i < 8; i++)
    g.Data4[i] = (uint8_t)b[i];
  return g;
}

#define ASSERT_GUID(obj, text)                                                 \
  do {                                                                         \
    GUID want_ = parse_guid(text);                                             \
    if (memcmp(&(obj), &want_, sizeof want_) != 0)                             \
      TASK_FAIL_("%s is not {%s}", #obj, text);                                \
  } while (0)

TEST_IMPL(com_guid_values) {
  /* The texts are spec §2.2.1's. */
  ASSERT_GUID(IID_IUnknown, "00000000-0000-0000-C000-000000000046");
  ASSERT_GUID(IID_IClientVirtualDevice, "40700424-0080-11d2-851f-00c04fc21759");
  ASSERT_GUID(IID_IClientVirtualDeviceSet,
              "40700425-0080-11d2-851f-00c04fc21759");
  ASSERT_GUID(IID_IClientVirtualDeviceSet2,
              "d0e6eb07-7a62-11d2-8573-00c04fc21759");
  ASSERT_GUID(IID_IServerVirtualDevice, "b5e7a131-a7bd-11d1-84c2-00c04fc21759");
  ASSERT_GUID(IID_IServerVirtualDeviceSet,
              "b5e7a132-a7bd-11d1-84c2-00c04fc21759");
  ASSERT_GUID(IID_IServerVirtualDeviceSet2,
              "AECBD0D6-24C6-11d3-85B7-00C04FC21759");
  /* The class IDs are interface IDs reused. */
  ASSERT_MEM_EQ(&CLSID_MSSQL_ClientVirtualDeviceSet,
                &IID_IClientVirtualDeviceSet, sizeof(GUID));
  ASSERT_MEM_EQ(&CLSID_MSSQL_ServerVirtualDeviceSet,
                &IID_IServerVirtualDeviceSet, sizeof(GUID));
  /* The Windows names are the exported vdi_ objects. */
  ASSERT(&IID_IClientVirtualDeviceSet2 == &vdi_IID_IClientVirtualDeviceSet2);
  /* The standard HRESULTs carry Windows' values. */
  ASSERT_UEQ((uint32_t)E_NOINTERFACE, 0x80004002u);
  ASSERT_UEQ((uint32_t)E_POINTER, 0x80004003u);
  ASSERT_UEQ((uint32_t)E_INVALIDARG, 0x80070057u);
  ASSERT_UEQ((uint32_t)CLASS_E_CLASSNOTAVAILABLE, 0x80040111u);
  ASSERT_UEQ((uint32_t)CLASS_E_NOAGGREGATION, 0x80040110u);
  return 0;
}

/* ----------------------------------------------------- vtables at run time */

typedef void (*slot_fn)(void);

/* Every slot of @p obj's vtable of @p n slots is set and distinct. */
static void check_vtable(const void *obj, size_t n, const char *what) {
  slot_fn const *vt = *(slot_fn const *const *)obj;
  for (size_t i = 0; i < n; i++) {
    if (vt[i] == NULL) TASK_FAIL_("%s: slot %zu is empty", what, i);
    for (size_t k = 0; k < i; k++)
      if (vt[k] == vt[i])
        TASK_FAIL_("%s: slots %zu and %zu are the same function", what, k, i);
  }
}

TEST_IMPL(com_vtable_runtime) {
  IClientVirtualDeviceSet2 *c = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_ALL, &IID_IClientVirtualDeviceSet2,
                                 (void **)&c),
            S_OK);
  check_vtable(c, sizeof(IClientVirtualDeviceSet2Vtbl) / sizeof(void *),
               "IClientVirtualDeviceSet2");
  /* v1 view of the same object: the same vtable, read as its prefix. */
  IClientVirtualDeviceSet *c1 = NULL;
  ASSERT_RC(IClientVirtualDeviceSet2_QueryInterface(
                c, &IID_IClientVirtualDeviceSet, (void **)&c1),
            S_OK);
  ASSERT((void *)c1 == (void *)c);
  ASSERT((const void *)c1->lpVtbl->SignalAbort ==
         (const void *)c->lpVtbl->SignalAbort);
  ASSERT((const void *)c1->lpVtbl->MapBufferHandle ==
         (const void *)c->lpVtbl->MapBufferHandle);
  ASSERT_EQ(IClientVirtualDeviceSet_Release(c1), 1);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(c), 0);

  IServerVirtualDeviceSet2 *s = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ServerVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IServerVirtualDeviceSet2, (void **)&s),
            S_OK);
  check_vtable(s, sizeof(IServerVirtualDeviceSet2Vtbl) / sizeof(void *),
               "IServerVirtualDeviceSet2");
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(s), 0);
  return 0;
}
