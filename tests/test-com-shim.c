/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-shim.c - vdi_com.h after a client's own shim of Windows types,
 * the way ported Windows code carries one: the shim's typedefs and GUID
 * win (identical typedefs may repeat in C11; GUID_DEFINED and
 * _HRESULT_DEFINED skip ours), and CoCreateInstance is the factory.  The
 * file failing to build is the failure this guards against.
 */
#include <stdint.h>
#include <wchar.h>

/* ---- the client's shim ---- */
typedef unsigned int DWORD; /* = uint32_t on Linux */
typedef unsigned char BYTE;
typedef int HRESULT; /* = int32_t */
#define _HRESULT_DEFINED
typedef struct _GUID {
  unsigned int Data1;
  unsigned short Data2;
  unsigned short Data3;
  unsigned char Data4[8];
} GUID;
#define GUID_DEFINED
typedef const wchar_t *LPCWSTR;
/* ---- end of shim ---- */

#define VDI_COM_DEFINE_COCREATEINSTANCE
#include "vdi_com.h"

#include "task.h"

TEST_IMPL(com_shim_coexists) {
  IClientVirtualDeviceSet2 *vds = NULL;
  HRESULT hr = CoCreateInstance(&CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                                CLSCTX_INPROC_SERVER,
                                &IID_IClientVirtualDeviceSet2, (void **)&vds);
  ASSERT_RC(hr, S_OK);
  ASSERT_NOT_NULL(vds);
  /* A name in the shim's LPCWSTR goes through the adapter. */
  LPCWSTR bad = L"\xDC00";
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  ASSERT_RC(IClientVirtualDeviceSet2_Create(vds, bad, &cfg), VD_E_INVALID);
  DWORD left = IClientVirtualDeviceSet2_Release(vds);
  ASSERT_EQ(left, 0);
  return 0;
}
