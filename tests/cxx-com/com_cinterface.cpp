/* SPDX-License-Identifier: Apache-2.0 */
// com_cinterface.cpp - vdi_com.h in C++ with CINTERFACE defined, as
// Windows C++ code selects the headers' C-style interfaces: plain structs
// whose lpVtbl has each interface's own vtable type, no inheritance, no
// member functions, and the COBJMACROS through lpVtbl (QueryInterface's
// REFIID stays a reference).  In-process only: the factory, IUnknown and
// the calls a set answers before Create.  Run by tests/test-com-cpp.c.
#define CINTERFACE
#include "vdi_com.h"
#include "com_check.h"

#include <cstdio>
#include <cstdlib>
#include <type_traits>

static_assert(VDI_COM_CXX_VIEW == 0, "CINTERFACE selects the C view");
static_assert(std::is_same<decltype(IClientVirtualDeviceSet2::lpVtbl),
                           const IClientVirtualDeviceSet2Vtbl *>::value,
              "lpVtbl has the interface's own vtable type");
static_assert(std::is_same<decltype(IClientVirtualDeviceSet::lpVtbl),
                           const IClientVirtualDeviceSetVtbl *>::value,
              "v1 lpVtbl");
static_assert(!std::is_base_of<IClientVirtualDeviceSet,
                               IClientVirtualDeviceSet2>::value &&
                  !std::is_base_of<IUnknown, IClientVirtualDevice>::value,
              "no inheritance in the C view");
static_assert(std::is_standard_layout<IClientVirtualDeviceSet2>::value &&
                  sizeof(IClientVirtualDeviceSet2) == sizeof(void *),
              "one pointer");

int main() {
  IClientVirtualDeviceSet2 *vds = nullptr;
  CHECK(vdi_CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                             CLSCTX_INPROC_SERVER, IID_IClientVirtualDeviceSet2,
                             reinterpret_cast<void **>(&vds)) == S_OK);
  // The macros take the IID itself (REFIID is a reference in C++).
  IClientVirtualDeviceSet *v1 = nullptr;
  CHECK(IClientVirtualDeviceSet2_QueryInterface(
            vds, IID_IClientVirtualDeviceSet, reinterpret_cast<void **>(&v1)) ==
        S_OK);
  CHECK(static_cast<void *>(v1) == static_cast<void *>(vds));
  IUnknown *unk = nullptr;
  CHECK(IClientVirtualDeviceSet_QueryInterface(
            v1, IID_IUnknown, reinterpret_cast<void **>(&unk)) == S_OK);
  CHECK(static_cast<void *>(unk) == static_cast<void *>(vds));
  CHECK(IUnknown_Release(unk) == 2);
  // Raw slots through each interface's own lpVtbl.
  CHECK(v1->lpVtbl->SignalAbort(v1) == VD_E_PROTOCOL);
  CHECK(vds->lpVtbl->Close(vds) == VD_E_PROTOCOL);
  CHECK(IClientVirtualDeviceSet_Release(v1) == 1);
  CHECK(IClientVirtualDeviceSet2_Release(vds) == 0);
  return 0;
}
