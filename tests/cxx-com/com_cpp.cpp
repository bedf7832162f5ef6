/* SPDX-License-Identifier: Apache-2.0 */
// com_cpp.cpp - a VDI client written in C++ the way Windows code is:
// CoCreateInstance with CLSID/IID references, then p->Method(...) calls on
// the interface pointers of vdi_com.h.  Run by tests/test-com-cpp.c against
// the C server of tests/test-com-peer.c in another process.
//
//   com_cpp backup SET OUTFILE   one device; every Write goes to OUTFILE
//   com_cpp abort SET            take one command, then SignalAbort
//   com_cpp unknown              QueryInterface / AddRef / Release only
//
// Exit 0 when everything answered as expected; the reason otherwise.
#define VDI_COM_DEFINE_COCREATEINSTANCE
#include "vdi_com.h"
#include "com_check.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

// The C++ view derives the interfaces as the Windows header does: the v2
// client set from the v1 one, every other interface from IUnknown, and the
// v2 server set from IUnknown only (Windows has no v1 prefix there).
#define DERIVES(B, D)                                                          \
  static_assert(std::is_base_of<B, D>::value &&                                \
                    std::is_convertible<D *, B *>::value,                      \
                #D " : " #B)
DERIVES(IClientVirtualDeviceSet, IClientVirtualDeviceSet2);
DERIVES(IUnknown, IClientVirtualDeviceSet2);
DERIVES(IUnknown, IClientVirtualDeviceSet);
DERIVES(IUnknown, IClientVirtualDevice);
DERIVES(IUnknown, IServerVirtualDevice);
DERIVES(IUnknown, IServerVirtualDeviceSet2);
static_assert(
    !std::is_base_of<IClientVirtualDeviceSet, IServerVirtualDeviceSet2>::value,
    "the server set is not a client set");
// Going down takes QueryInterface, as on Windows.
static_assert(!std::is_convertible<IClientVirtualDeviceSet *,
                                   IClientVirtualDeviceSet2 *>::value,
              "no implicit v1 -> v2");

// ... and adds no data and no virtual functions: one pointer, laid out as
// the C structs.
#define ONE_POINTER(I)                                                         \
  static_assert(std::is_standard_layout<I>::value &&                           \
                    !std::is_polymorphic<I>::value &&                          \
                    sizeof(I) == sizeof(void *),                               \
                #I " is one pointer")
ONE_POINTER(IUnknown);
ONE_POINTER(IClientVirtualDevice);
ONE_POINTER(IClientVirtualDeviceSet);
ONE_POINTER(IClientVirtualDeviceSet2);
ONE_POINTER(IServerVirtualDevice);
ONE_POINTER(IServerVirtualDeviceSet2);

// Every member has the signature of the Windows header's C++ declaration
// (an inherited one is a member of the base, as there).
#define MEMBER_IS(C, m, T)                                                     \
  static_assert(std::is_same<decltype(&C::m), T>::value, #C "::" #m)
typedef IUnknown U;
typedef IClientVirtualDevice CD;
typedef IClientVirtualDeviceSet CS;
typedef IClientVirtualDeviceSet2 CS2;
typedef IServerVirtualDevice SD;
typedef IServerVirtualDeviceSet2 SS2;
MEMBER_IS(U, QueryInterface, HRESULT (U::*)(const IID &, void **));
MEMBER_IS(U, AddRef, ULONG (U::*)());
MEMBER_IS(U, Release, ULONG (U::*)());
MEMBER_IS(CD, GetCommand, HRESULT (CD::*)(DWORD, VDC_Command **));
MEMBER_IS(CD, CompleteCommand,
          HRESULT (CD::*)(VDC_Command *, DWORD, DWORD, DWORDLONG));
MEMBER_IS(CS, Create, HRESULT (CS::*)(LPCWSTR, VDConfig *));
MEMBER_IS(CS, GetConfiguration, HRESULT (CS::*)(DWORD, VDConfig *));
MEMBER_IS(CS, OpenDevice, HRESULT (CS::*)(LPCWSTR, IClientVirtualDevice **));
MEMBER_IS(CS, Close, HRESULT (CS::*)());
MEMBER_IS(CS, SignalAbort, HRESULT (CS::*)());
MEMBER_IS(CS, OpenInSecondary, HRESULT (CS::*)(LPCWSTR));
MEMBER_IS(CS, GetBufferHandle, HRESULT (CS::*)(BYTE *, DWORD *));
MEMBER_IS(CS, MapBufferHandle, HRESULT (CS::*)(DWORD, BYTE **));
MEMBER_IS(CS2, Create, HRESULT (CS::*)(LPCWSTR, VDConfig *));
MEMBER_IS(CS2, QueryInterface, HRESULT (U::*)(const IID &, void **));
MEMBER_IS(CS2, CreateEx, HRESULT (CS2::*)(LPCWSTR, LPCWSTR, VDConfig *));
MEMBER_IS(CS2, OpenInSecondaryEx, HRESULT (CS2::*)(LPCWSTR, LPCWSTR));
MEMBER_IS(SD, SendCommand, HRESULT (SD::*)(VDS_Command *));
MEMBER_IS(SD, CloseDevice, HRESULT (SD::*)());
MEMBER_IS(SS2, Open, HRESULT (SS2::*)(LPCWSTR, LPCWSTR));
MEMBER_IS(SS2, GetConfiguration, HRESULT (SS2::*)(VDConfig *));
MEMBER_IS(SS2, BeginConfiguration,
          HRESULT (SS2::*)(DWORD, DWORD, DWORD, DWORD, DWORD));
MEMBER_IS(SS2, EndConfiguration, HRESULT (SS2::*)());
MEMBER_IS(SS2, RequestBuffers, HRESULT (SS2::*)(DWORD, DWORD, DWORD));
MEMBER_IS(SS2, QueryAvailableBuffers, HRESULT (SS2::*)(DWORD, DWORD, DWORD *));
MEMBER_IS(SS2, ExecuteCompletionAgent, HRESULT (SS2::*)());
MEMBER_IS(SS2, OpenDevice, HRESULT (SS2::*)(LPCWSTR, IServerVirtualDevice **));
MEMBER_IS(SS2, AllocateBuffer, HRESULT (SS2::*)(BYTE **, DWORD, DWORD));
MEMBER_IS(SS2, FreeBuffer, HRESULT (SS2::*)(BYTE *, DWORD));
MEMBER_IS(SS2, IsSharedBuffer, HRESULT (SS2::*)(BYTE *));
MEMBER_IS(SS2, SignalAbort, HRESULT (SS2::*)());
MEMBER_IS(SS2, Close, HRESULT (SS2::*)());
// The structures are the C ones, with the Windows field types.
static_assert(
    std::is_same<decltype(VDC_Command::size), DWORD>::value &&
        std::is_same<decltype(VDC_Command::position), DWORDLONG>::value,
    "VDC_Command fields");
static_assert(offsetof(IClientVirtualDeviceSet2Vtbl, CreateEx) ==
                  11 * sizeof(void *),
              "CreateEx is slot 11");
static_assert(offsetof(IServerVirtualDeviceSet2Vtbl, SignalAbort) ==
                  14 * sizeof(void *),
              "SignalAbort is slot 14");

static IClientVirtualDeviceSet2 *make_set() {
  IClientVirtualDeviceSet2 *vds = nullptr;
  CHECK_HR(CoCreateInstance(CLSID_MSSQL_ClientVirtualDeviceSet, NULL,
                            CLSCTX_INPROC_SERVER, IID_IClientVirtualDeviceSet2,
                            reinterpret_cast<void **>(&vds)),
           S_OK);
  CHECK(vds != nullptr);
  return vds;
}

static int unknown() {
  IClientVirtualDeviceSet2 *vds = make_set();
  IClientVirtualDeviceSet *v1 = nullptr;
  CHECK_HR(vds->QueryInterface(IID_IClientVirtualDeviceSet,
                               reinterpret_cast<void **>(&v1)),
           S_OK);
  CHECK(static_cast<void *>(v1) == static_cast<void *>(vds));
  IClientVirtualDeviceSet *base = vds; // what QueryInterface gave, unasked
  CHECK(base == v1);
  CHECK(v1->AddRef() == 3);
  CHECK(v1->Release() == 2);
  void *srv = &srv;
  CHECK_HR(vds->QueryInterface(IID_IServerVirtualDeviceSet2, &srv),
           E_NOINTERFACE);
  CHECK(srv == nullptr);
  // The C macro spelling works in C++ too, with REFIID.
  void *unk = nullptr;
  CHECK_HR(IClientVirtualDeviceSet2_QueryInterface(vds, IID_IUnknown, &unk),
           S_OK);
  CHECK(unk == static_cast<void *>(vds));
  CHECK(vds->Release() == 2);
  CHECK(v1->Release() == 1);
  // Before Create there is nothing to abort or close, whichever interface
  // and spelling the call goes through.
  CHECK_HR(vds->SignalAbort(), VD_E_PROTOCOL);
  CHECK_HR(vds->Close(), VD_E_PROTOCOL);
  CHECK_HR(base->SignalAbort(), VD_E_PROTOCOL);
  CHECK_HR(IClientVirtualDeviceSet_Close(base), VD_E_PROTOCOL);
  CHECK(IUnknown_AddRef(static_cast<IUnknown *>(base)) == 2);
  CHECK(IClientVirtualDeviceSet_Release(base) == 1);
  CHECK(vds->Release() == 0);

  IServerVirtualDeviceSet2 *vss = nullptr;
  CHECK_HR(vdi_CoCreateInstance(
               CLSID_MSSQL_ServerVirtualDeviceSet, NULL, CLSCTX_INPROC_SERVER,
               IID_IServerVirtualDeviceSet2, reinterpret_cast<void **>(&vss)),
           S_OK);
  CHECK(vss->AddRef() == 2);
  CHECK(vss->Release() == 1);
  CHECK(vss->Release() == 0);
  return 0;
}

// Configure and open the one device, as every Windows sample does.
static IClientVirtualDevice *start(IClientVirtualDeviceSet2 *vds,
                                   const std::wstring &name) {
  VDConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  cfg.features = VDF_LikePipe;
  CHECK_HR(vds->CreateEx(nullptr, name.c_str(), &cfg), NOERROR);
  HRESULT hr;
  int waited = 0;
  while ((hr = vds->GetConfiguration(1000, &cfg)) == VD_E_TIMEOUT)
    CHECK(++waited < 20);
  CHECK_HR(hr, NOERROR);
  CHECK(cfg.features & VDF_WriteMedia);
  IClientVirtualDevice *dev = nullptr;
  CHECK_HR(vds->OpenDevice(name.c_str(), &dev), NOERROR);
  CHECK(dev != nullptr);
  IClientVirtualDevice *same = nullptr;
  CHECK_HR(dev->QueryInterface(IID_IClientVirtualDevice,
                               reinterpret_cast<void **>(&same)),
           S_OK);
  CHECK(same == dev);
  same->Release();
  return dev;
}

static int backup(const char *set, const char *outfile) {
  std::FILE *out = std::fopen(outfile, "wb");
  CHECK(out != nullptr);
  IClientVirtualDeviceSet2 *vds = make_set();
  IClientVirtualDevice *dev = start(vds, widen(set));
  VDC_Command *cmd;
  HRESULT hr;
  long writes = 0;
  while ((hr = dev->GetCommand(INFINITE, &cmd)) == NOERROR) {
    DWORD code = ERROR_SUCCESS, bytes = 0;
    if (cmd->commandCode == VDC_Write) {
      size_t n = static_cast<size_t>(cmd->size);
      if (std::fwrite(cmd->buffer, 1, n, out) == n)
        bytes = static_cast<DWORD>(n);
      else
        code = ERROR_DISK_FULL;
      writes++;
    } else if (cmd->commandCode == VDC_Flush) {
      if (std::fflush(out) != 0) code = ERROR_DISK_FULL;
    } else {
      code = ERROR_NOT_SUPPORTED;
    }
    CHECK_HR(dev->CompleteCommand(cmd, code, bytes, 0), NOERROR);
  }
  CHECK_HR(hr, VD_E_CLOSE);
  CHECK(writes > 0);
  CHECK(std::fclose(out) == 0);
  CHECK_HR(vds->Close(), NOERROR);
  CHECK(vds->Release() == 0);
  return 0;
}

static int abort_run(const char *set) {
  IClientVirtualDeviceSet2 *vds = make_set();
  IClientVirtualDevice *dev = start(vds, widen(set));
  VDC_Command *cmd = nullptr;
  CHECK_HR(dev->GetCommand(INFINITE, &cmd), NOERROR);
  CHECK(cmd->commandCode == VDC_Write);
  // Abort instead of completing: the server's agent completes the write
  // with ERROR_OPERATION_ABORTED.
  CHECK_HR(vds->SignalAbort(), NOERROR);
  CHECK_HR(vds->SignalAbort(), NOERROR); // again: still NOERROR
  CHECK_HR(dev->GetCommand(INFINITE, &cmd), VD_E_ABORT);
  VDConfig cfg;
  CHECK_HR(vds->GetConfiguration(0, &cfg), VD_E_ABORT);
  // Devices never saw VD_E_CLOSE, so Close may report VD_E_OPEN; it
  // releases the set either way.
  HRESULT hr = vds->Close();
  CHECK(hr == NOERROR || hr == VD_E_OPEN);
  CHECK_HR(vds->Close(), VD_E_PROTOCOL);
  CHECK(vds->Release() == 0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && std::strcmp(argv[1], "unknown") == 0) return unknown();
  if (argc == 4 && std::strcmp(argv[1], "backup") == 0)
    return backup(argv[2], argv[3]);
  if (argc == 3 && std::strcmp(argv[1], "abort") == 0)
    return abort_run(argv[2]);
  std::fprintf(stderr, "usage: com_cpp backup SET OUTFILE | abort SET | "
                       "unknown\n");
  return 2;
}
