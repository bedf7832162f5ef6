/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-names.c - wide-string names: values that are not Unicode scalar
 * values, names longer than VDI_MAX_NAME bytes once in UTF-8, and NULL get
 * VD_E_INVALID from every method that takes a name; a non-ASCII name is
 * carried as UTF-8 (a native-API server finds the set a COM client made).
 */
#include "task.h"

#include "vdi_com.h"

#include <sys/wait.h>
#include <unistd.h>

void com_widen(const char *s, wchar_t *out, size_t cap);

/* Each is invalid for its own reason. */
static const wchar_t surrogate[] = {'a', 0xD800, 'b', 0};
static const wchar_t low_surrogate[] = {0xDFFF, 0};
static const wchar_t too_high[] = {'a', 0x110000, 0};
static const wchar_t negative[] = {'a', (wchar_t)-5, 0};
static wchar_t too_long_ascii[VDI_MAX_NAME + 2];
static wchar_t too_long_utf8[40]; /* 32 x U+4E2D = 96 bytes in UTF-8 */

static const wchar_t *bad_names[6];

static void init_names(void) {
  for (int i = 0; i < VDI_MAX_NAME + 1; i++)
    too_long_ascii[i] = 'x';
  too_long_ascii[VDI_MAX_NAME + 1] = 0;
  for (int i = 0; i < 32; i++)
    too_long_utf8[i] = 0x4E2D;
  too_long_utf8[32] = 0;
  const wchar_t *b[6] = {surrogate, low_surrogate,  too_high,
                         negative,  too_long_ascii, too_long_utf8};
  memcpy(bad_names, b, sizeof b);
}

TEST_IMPL(com_invalid_names) {
  init_names();
  wchar_t good[128];
  com_widen(unique_name("comnm"), good, 128);
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;

  IClientVirtualDeviceSet2 *c = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IClientVirtualDeviceSet2, (void **)&c),
            S_OK);
  IServerVirtualDeviceSet2 *s = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ServerVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IServerVirtualDeviceSet2, (void **)&s),
            S_OK);
  for (int i = 0; i < 6; i++) {
    const wchar_t *bad = bad_names[i];
    IClientVirtualDevice dummy, *d = &dummy;
    ASSERT_RC(IClientVirtualDeviceSet2_Create(c, bad, &cfg), VD_E_INVALID);
    ASSERT_RC(IClientVirtualDeviceSet2_CreateEx(c, NULL, bad, &cfg),
              VD_E_INVALID);
    ASSERT_RC(IClientVirtualDeviceSet2_CreateEx(c, bad, good, &cfg),
              VD_E_INVALID);
    ASSERT_RC(IClientVirtualDeviceSet2_OpenInSecondary(c, bad), VD_E_INVALID);
    ASSERT_RC(IClientVirtualDeviceSet2_OpenInSecondaryEx(c, NULL, bad),
              VD_E_INVALID);
    ASSERT_RC(IClientVirtualDeviceSet2_OpenInSecondaryEx(c, bad, good),
              VD_E_INVALID);
    ASSERT_RC(IClientVirtualDeviceSet2_OpenDevice(c, bad, &d), VD_E_INVALID);
    ASSERT_NULL(d);
    ASSERT_RC(IServerVirtualDeviceSet2_Open(s, NULL, bad), VD_E_INVALID);
    ASSERT_RC(IServerVirtualDeviceSet2_Open(s, bad, good), VD_E_INVALID);
    IServerVirtualDevice sdummy, *sd = &sdummy;
    ASSERT_RC(IServerVirtualDeviceSet2_OpenDevice(s, bad, &sd), VD_E_INVALID);
    ASSERT_NULL(sd);
  }
  ASSERT_RC(IClientVirtualDeviceSet2_Create(c, NULL, &cfg), VD_E_INVALID);
  ASSERT_RC(IServerVirtualDeviceSet2_Open(s, NULL, NULL), VD_E_INVALID);

  /* None of that created anything: the good name still works. */
  ASSERT_RC(IClientVirtualDeviceSet2_CreateEx(c, NULL, good, &cfg), NOERROR);
  ASSERT_RC(IClientVirtualDeviceSet2_Close(c), NOERROR);
  /* The longest legal name, VDI_MAX_NAME bytes, passes; one more does not
   * (too_long_ascii above). */
  size_t n = wcslen(good);
  while (n < VDI_MAX_NAME)
    good[n++] = 'x';
  good[n] = 0;
  ASSERT_RC(IClientVirtualDeviceSet2_Create(c, good, &cfg), NOERROR);
  ASSERT_RC(IClientVirtualDeviceSet2_Close(c), NOERROR);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(c), 0);
  ASSERT_EQ(IServerVirtualDeviceSet2_Release(s), 0);
  return 0;
}

/* A name with characters from three UTF-8 lengths, created through the COM
 * client, opened by a native server by its UTF-8 bytes. */
HELPER_IMPL(com_native_open) {
  if (argc != 2) return 2;
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, argv[1]), 0);
  VDConfig cfg;
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, 3); /* the client's, so this is its set */
  ASSERT_RC(vdi_srv_signal_abort(srv), 0);
  vdi_srv_close(srv);
  vdi_srv_free(srv);
  return 0;
}

TEST_IMPL(com_utf8_name) {
  char utf8[128];
  int pid = (int)getpid();
  /* U+00E9 (2 bytes), U+20AC (3 bytes), U+1F600 (4 bytes) */
  snprintf(utf8, sizeof utf8, "t%d_\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", pid);
  wchar_t wname[128];
  char ascii[32];
  snprintf(ascii, sizeof ascii, "t%d_", pid);
  com_widen(ascii, wname, 128);
  size_t n = wcslen(wname);
  wname[n++] = 0xE9;
  wname[n++] = 0x20AC;
  wname[n++] = 0x1F600;
  wname[n] = 0;

  IClientVirtualDeviceSet2 *c = NULL;
  ASSERT_RC(vdi_CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                 CLSCTX_INPROC_SERVER,
                                 &IID_IClientVirtualDeviceSet2, (void **)&c),
            S_OK);
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 3;
  /* A name rule that refused non-ASCII (VD_E_INVALID) is the very
   * regression this test is for: it fails, it does not skip. */
  HRESULT hr = IClientVirtualDeviceSet2_Create(c, wname, &cfg);
  ASSERT_RC(hr, NOERROR);
  pid_t server = spawn_helper("com_native_open", utf8, NULL);
  /* The server aborts once it has seen our configuration. */
  while ((hr = IClientVirtualDeviceSet2_GetConfiguration(c, 1000, &cfg)) ==
         VD_E_TIMEOUT)
    ASSERT_EQ(wait_helper_timeout(server, 0), -1);
  ASSERT_RC(hr, VD_E_ABORT);
  ASSERT_EQ(wait_helper(server), 0);
  IClientVirtualDeviceSet2_Close(c);
  ASSERT_EQ(IClientVirtualDeviceSet2_Release(c), 0);
  return 0;
}
