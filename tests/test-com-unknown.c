/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-unknown.c - IUnknown and the factory: which IIDs each class
 * answers, reference counts, Release to zero closing an open set, and the
 * factory's COM error codes.
 */
#include "task.h"

#include "vdi_com.h"

#include <signal.h>

void com_widen(const char *s, wchar_t *out, size_t cap);

static const IID not_an_iid = {
    0x12345678, 0x9abc, 0xdef0, {1, 2, 3, 4, 5, 6, 7, 8}};

TEST_IMPL(com_factory_errors) {
  void *p = &p; /* not NULL, so each failure must clear it */
  ASSERT_RC(vdi_CoCreateInstance(&not_an_iid, NULL, CLSCTX_INPROC_SERVER,
                                 &IID_IUnknown, &p),
            CLASS_E_CLASSNOTAVAILABLE);
  ASSERT_NULL(p);
  /* An interface ID that is not a class ID. */
  p = &p;
  ASSERT_RC(vdi_CoCreateInstance(&IID_IClientVirtualDeviceSet2, NULL,
                                 CLSCTX_INPROC_SERVER, &IID_IUnknown, &p),
            CLASS_E_CLASSNOTAVAILABLE);
  ASSERT_NULL(p);
  p = &p;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, &p,
                                 CLSCTX_INPROC_SERVER, &IID_IUnknown, &p),
            CLASS_E_NOAGGREGATION);
  ASSERT_NULL(p);
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER, &IID_IUnknown, NULL),
            E_POINTER);
  p = &p;
  ASSERT_RC(
      vdi_CoCreateInstance(NULL, NULL, CLSCTX_INPROC_SERVER, &IID_IUnknown, &p),
      E_INVALIDARG);
  ASSERT_NULL(p);
  /* Each class refuses the other's interfaces, and the v1 server set. */
  const IID *client_no[] = {&IID_IServerVirtualDeviceSet2,
                            &IID_IServerVirtualDeviceSet,
                            &IID_IClientVirtualDevice, &not_an_iid};
  for (size_t i = 0; i < 4; i++) {
    p = &p;
    ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                   CLSCTX_INPROC_SERVER, client_no[i], &p),
              E_NOINTERFACE);
    ASSERT_NULL(p);
  }
  const IID *server_no[] = {
      &IID_IClientVirtualDeviceSet2, &IID_IClientVirtualDeviceSet,
      &IID_IServerVirtualDeviceSet, &IID_IServerVirtualDevice};
  for (size_t i = 0; i < 4; i++) {
    p = &p;
    ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ServerVirtualDeviceSet, NULL,
                                   CLSCTX_INPROC_SERVER, server_no[i], &p),
              E_NOINTERFACE);
    ASSERT_NULL(p);
  }
  return 0;
}

TEST_IMPL(com_query_interface) {
  void *unk = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER, &IID_IUnknown, &unk),
            S_OK);
  ASSERT_NOT_NULL(unk);
  /* Any interface pointer of the object can be asked for the others. */
  IClientVirtualDeviceSet2 *v2 = unk;
  IClientVirtualDeviceSet *v1 = NULL;
  IClientVirtualDeviceSet2 *v2b = NULL;
  ASSERT_RC(IClientVirtualDeviceSet2_QueryInterface(
                v2, &IID_IClientVirtualDeviceSet, (void **)&v1),
            S_OK);
  ASSERT(v1 == (void *)v2); /* one object, one vtable (v1 is its prefix) */
  ASSERT_RC(IClientVirtualDeviceSet_QueryInterface(
                v1, &IID_IClientVirtualDeviceSet2, (void **)&v2b),
            S_OK);
  ASSERT(v2b == v2);
  /* Three references now: the factory's, v1's, v2b's. */
  ASSERT_EQ(IClientVirtualDeviceSet2_AddRef(v2), 4);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(v2), 3);
  void *none = &none;
  ASSERT_RC(IClientVirtualDeviceSet2_QueryInterface(
                v2, &IID_IServerVirtualDeviceSet2, &none),
            E_NOINTERFACE);
  ASSERT_NULL(none);
  ASSERT_RC(IClientVirtualDeviceSet2_QueryInterface(v2, &IID_IUnknown, NULL),
            E_POINTER);
  /* A failed QueryInterface took no reference. */
  ASSERT_EQ(IClientVirtualDeviceSet_Release(v1), 2);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(v2b), 1);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(v2), 0);

  /* The server class likewise. */
  IServerVirtualDeviceSet2 *s = NULL;
  void *sunk = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ServerVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IServerVirtualDeviceSet2, (void **)&s),
            S_OK);
  ASSERT_RC(IServerVirtualDeviceSet2_QueryInterface(s, &IID_IUnknown, &sunk),
            S_OK);
  ASSERT(sunk == (void *)s);
  ASSERT_EQ(IServerVirtualDeviceSet2_AddRef(s), 3);
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(s), 2);
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(s), 1);
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(s), 0);
  return 0;
}

static IClientVirtualDeviceSet2 *new_client(void) {
  IClientVirtualDeviceSet2 *p = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IClientVirtualDeviceSet2, (void **)&p),
            S_OK);
  return p;
}

/* The last Release of a created set closes it: its name is free again. */
TEST_IMPL(com_release_closes) {
  wchar_t wname[128];
  com_widen(unique_name("comrel"), wname, 128);
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;

  IClientVirtualDeviceSet2 *a = new_client(), *b = new_client();
  ASSERT_RC(IClientVirtualDeviceSet2_Create(a, wname, &cfg), NOERROR);
  ASSERT_RC(IClientVirtualDeviceSet2_Create(b, wname, &cfg), VD_E_BUSY);
  /* Not while a reference is left. */
  ASSERT_EQ(IClientVirtualDeviceSet2_AddRef(a), 2);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(a), 1);
  ASSERT_RC(IClientVirtualDeviceSet2_Create(b, wname, &cfg), VD_E_BUSY);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(a), 0);
  ASSERT_RC(IClientVirtualDeviceSet2_Create(b, wname, &cfg), NOERROR);
  /* Close, then the object is reusable for another Create. */
  ASSERT_RC(IClientVirtualDeviceSet2_Close(b), NOERROR);
  ASSERT_RC(IClientVirtualDeviceSet2_Close(b), VD_E_PROTOCOL);
  ASSERT_RC(IClientVirtualDeviceSet2_CreateEx(b, NULL, wname, &cfg), NOERROR);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(b), 0);
  /* ... and b's last Release freed the name too. */
  IClientVirtualDeviceSet2 *c = new_client();
  ASSERT_RC(IClientVirtualDeviceSet2_Create(c, wname, &cfg), NOERROR);
  ASSERT_RC(IClientVirtualDeviceSet2_Close(c), NOERROR);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(c), 0);
  return 0;
}

/* A server set released without Close closes the set: the client's wait
 * for the configuration ends in VD_E_ABORT instead of timing out. */
HELPER_IMPL(com_server_release) {
  if (argc != 2) return 2;
  wchar_t wname[128];
  com_widen(argv[1], wname, 128);
  IServerVirtualDeviceSet2 *s = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ServerVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IServerVirtualDeviceSet2, (void **)&s),
            S_OK);
  ASSERT_RC(IServerVirtualDeviceSet2_Open(s, NULL, wname), NOERROR);
  VDConfig cfg;
  ASSERT_RC(IServerVirtualDeviceSet2_GetConfiguration(s, &cfg), NOERROR);
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(s), 0);
  /* Stay alive, so it is the Release and not our exit that the client
   * sees; the test kills us. */
  sleep_ms(20000);
  return 0;
}

TEST_IMPL_TIMEOUT(com_server_release_closes, 15) {
  const char *name = unique_name("comsrel");
  wchar_t wname[128];
  com_widen(name, wname, 128);
  IClientVirtualDeviceSet2 *c = new_client();
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  ASSERT_RC(IClientVirtualDeviceSet2_Create(c, wname, &cfg), NOERROR);
  pid_t server = spawn_helper("com_server_release", name, NULL);
  int64_t end = now_ms() + 5000;
  HRESULT hr;
  while ((hr = IClientVirtualDeviceSet2_GetConfiguration(c, 100, &cfg)) ==
             VD_E_TIMEOUT &&
         now_ms() < end)
    ASSERT_EQ(wait_helper_timeout(server, 0), -1);
  ASSERT_RC(hr, VD_E_ABORT);
  ASSERT_EQ(wait_helper_timeout(server, 0), -1); /* still alive */
  kill(server, SIGKILL);
  wait_helper(server);
  IClientVirtualDeviceSet2_Close(c);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(c), 0);
  return 0;
}
