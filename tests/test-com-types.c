/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-types.c - the type of every field of every published structure
 * of include/vdi.h and vdi_com.h, checked against the types Microsoft's
 * Windows header (vdi.h of the SQL Server SDK, with guiddef.h) gives it:
 * VDConfig, VDC_Command, VDS_Command, GUID, the interface structs and every
 * vtable slot's full signature.  Sizes and offsets alone miss a field whose
 * signedness changed (VDC_Command.size was int32_t where Windows has
 * DWORD), so each field's exact type is matched with C11 _Generic in a
 * static assert: a mismatch does not build.
 *
 * The Windows types are written with vdi_com.h's names of them (DWORD,
 * DWORDLONG, BYTE, ...), and those names are pinned to the Linux types of
 * the same width and signedness first.  VDConfig's fields are "unsigned
 * long" on Windows, which is DWORD there (32 bits).  The SDK face
 * (sqlvdi/include/vdi.h) follows Microsoft's Linux header instead and is
 * checked by tests/cxx/sdk_types.cpp.
 */
#include "task.h"

#include "vdi_com.h"

/* _Generic picks by the exact type after lvalue conversion, so uint32_t
 * matches neither int32_t nor uint64_t, nor a DWORD that became unsigned
 * long.  An array field is taken by address so it does not decay. */
#define IS_TYPE(expr, T) _Generic((expr), T : 1, default : 0)
#define FIELD_IS(S, f, T)                                                      \
  _Static_assert(IS_TYPE(((S *)0)->f, T), #S "." #f " is " #T)
#define ARRAY_FIELD_IS(S, f, T, n)                                             \
  _Static_assert(IS_TYPE(&((S *)0)->f, T(*)[n]), #S "." #f " is " #T "[" #n "]")

/* ------------------------------------------- the Windows names' meaning */

_Static_assert(IS_TYPE((DWORD)0, uint32_t), "DWORD is unsigned 32-bit");
_Static_assert(IS_TYPE((DWORDLONG)0, uint64_t), "DWORDLONG is unsigned 64");
_Static_assert(IS_TYPE((BYTE)0, uint8_t), "BYTE is unsigned 8-bit");
_Static_assert(IS_TYPE((ULONG)0, uint32_t), "ULONG is unsigned 32-bit");
_Static_assert(IS_TYPE((HRESULT)0, int32_t), "HRESULT is signed 32-bit");
_Static_assert(IS_TYPE((BOOL)0, int), "BOOL is int");
_Static_assert(IS_TYPE((WCHAR)0, wchar_t), "WCHAR is wchar_t");
_Static_assert(IS_TYPE((LPCWSTR)0, const wchar_t *), "LPCWSTR");
_Static_assert(IS_TYPE((IID *)0, GUID *) && IS_TYPE((CLSID *)0, GUID *),
               "IID and CLSID are GUID");

/* ------------------------------------------------------ plain structures */

FIELD_IS(VDConfig, deviceCount, DWORD);
FIELD_IS(VDConfig, features, DWORD);
FIELD_IS(VDConfig, prefixZoneSize, DWORD);
FIELD_IS(VDConfig, alignment, DWORD);
FIELD_IS(VDConfig, softFileMarkBlockSize, DWORD);
FIELD_IS(VDConfig, EOMWarningSize, DWORD);
FIELD_IS(VDConfig, serverTimeOut, DWORD);
FIELD_IS(VDConfig, blockSize, DWORD);
FIELD_IS(VDConfig, maxIODepth, DWORD);
FIELD_IS(VDConfig, maxTransferSize, DWORD);
FIELD_IS(VDConfig, bufferAreaSize, DWORD);
_Static_assert(sizeof(VDConfig) == 11 * sizeof(DWORD), "VDConfig: 11 fields");

FIELD_IS(VDC_Command, commandCode, DWORD);
FIELD_IS(VDC_Command, size, DWORD);
FIELD_IS(VDC_Command, position, DWORDLONG);
FIELD_IS(VDC_Command, buffer, BYTE *);
_Static_assert(offsetof(VDC_Command, buffer) + sizeof(BYTE *) ==
                   sizeof(VDC_Command),
               "VDC_Command: 4 fields");

FIELD_IS(VDS_Command, commandCode, DWORD);
FIELD_IS(VDS_Command, size, DWORD);
FIELD_IS(VDS_Command, inPosition, DWORDLONG);
FIELD_IS(VDS_Command, outPosition, DWORDLONG);
FIELD_IS(VDS_Command, buffer, BYTE *);
FIELD_IS(VDS_Command, completionRoutine, BYTE *);
FIELD_IS(VDS_Command, completionContext, BYTE *);
FIELD_IS(VDS_Command, completionCode, DWORD);
FIELD_IS(VDS_Command, bytesTransferred, DWORD);
_Static_assert(offsetof(VDS_Command, bytesTransferred) + sizeof(DWORD) ==
                   sizeof(VDS_Command),
               "VDS_Command: 9 fields");

/* guiddef.h: unsigned long (32 bits on Windows), 2 x unsigned short,
 * unsigned char[8]. */
FIELD_IS(GUID, Data1, uint32_t);
FIELD_IS(GUID, Data2, uint16_t);
FIELD_IS(GUID, Data3, uint16_t);
ARRAY_FIELD_IS(GUID, Data4, uint8_t, 8);

/* --------------------------------------------------- interfaces (C view)
 * Each interface struct holds its vtable pointer and nothing else. */
FIELD_IS(IUnknown, lpVtbl, const IUnknownVtbl *);
FIELD_IS(IClientVirtualDevice, lpVtbl, const IClientVirtualDeviceVtbl *);
FIELD_IS(IClientVirtualDeviceSet, lpVtbl, const IClientVirtualDeviceSetVtbl *);
FIELD_IS(IClientVirtualDeviceSet2, lpVtbl,
         const IClientVirtualDeviceSet2Vtbl *);
FIELD_IS(IServerVirtualDevice, lpVtbl, const IServerVirtualDeviceVtbl *);
FIELD_IS(IServerVirtualDeviceSet2, lpVtbl,
         const IServerVirtualDeviceSet2Vtbl *);

/* Every slot with the signature of the Windows header's C vtable, whose
 * REFIID is const IID * in C.  Written out per interface rather than
 * generated, so that each line can be read against the header. */
#define IUNKNOWN_SLOTS_ARE(V, I)                                               \
  FIELD_IS(V, QueryInterface, HRESULT (*)(I *, const IID *, void **));         \
  FIELD_IS(V, AddRef, ULONG (*)(I *));                                         \
  FIELD_IS(V, Release, ULONG (*)(I *))

IUNKNOWN_SLOTS_ARE(IUnknownVtbl, IUnknown);

IUNKNOWN_SLOTS_ARE(IClientVirtualDeviceVtbl, IClientVirtualDevice);
FIELD_IS(IClientVirtualDeviceVtbl, GetCommand,
         HRESULT (*)(IClientVirtualDevice *, DWORD, VDC_Command **));
FIELD_IS(IClientVirtualDeviceVtbl, CompleteCommand,
         HRESULT (*)(IClientVirtualDevice *, VDC_Command *, DWORD, DWORD,
                     DWORDLONG));

/* The v1 set's slots, for I = the v1 or the v2 interface: the v2 vtable
 * repeats them with its own This type, as the Windows header does. */
#define CLIENT_SET_V1_SLOTS_ARE(V, I)                                          \
  IUNKNOWN_SLOTS_ARE(V, I);                                                    \
  FIELD_IS(V, Create, HRESULT (*)(I *, LPCWSTR, VDConfig *));                  \
  FIELD_IS(V, GetConfiguration, HRESULT (*)(I *, DWORD, VDConfig *));          \
  FIELD_IS(V, OpenDevice, HRESULT (*)(I *, LPCWSTR, IClientVirtualDevice **)); \
  FIELD_IS(V, Close, HRESULT (*)(I *));                                        \
  FIELD_IS(V, SignalAbort, HRESULT (*)(I *));                                  \
  FIELD_IS(V, OpenInSecondary, HRESULT (*)(I *, LPCWSTR));                     \
  FIELD_IS(V, GetBufferHandle, HRESULT (*)(I *, BYTE *, DWORD *));             \
  FIELD_IS(V, MapBufferHandle, HRESULT (*)(I *, DWORD, BYTE **))

CLIENT_SET_V1_SLOTS_ARE(IClientVirtualDeviceSetVtbl, IClientVirtualDeviceSet);
CLIENT_SET_V1_SLOTS_ARE(IClientVirtualDeviceSet2Vtbl, IClientVirtualDeviceSet2);
FIELD_IS(IClientVirtualDeviceSet2Vtbl, CreateEx,
         HRESULT (*)(IClientVirtualDeviceSet2 *, LPCWSTR, LPCWSTR, VDConfig *));
FIELD_IS(IClientVirtualDeviceSet2Vtbl, OpenInSecondaryEx,
         HRESULT (*)(IClientVirtualDeviceSet2 *, LPCWSTR, LPCWSTR));

IUNKNOWN_SLOTS_ARE(IServerVirtualDeviceVtbl, IServerVirtualDevice);
FIELD_IS(IServerVirtualDeviceVtbl, SendCommand,
         HRESULT (*)(IServerVirtualDevice *, VDS_Command *));
FIELD_IS(IServerVirtualDeviceVtbl, CloseDevice,
         HRESULT (*)(IServerVirtualDevice *));

#define SS2 IServerVirtualDeviceSet2
IUNKNOWN_SLOTS_ARE(IServerVirtualDeviceSet2Vtbl, SS2);
FIELD_IS(IServerVirtualDeviceSet2Vtbl, Open,
         HRESULT (*)(SS2 *, LPCWSTR, LPCWSTR));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, GetConfiguration,
         HRESULT (*)(SS2 *, VDConfig *));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, BeginConfiguration,
         HRESULT (*)(SS2 *, DWORD, DWORD, DWORD, DWORD, DWORD));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, EndConfiguration, HRESULT (*)(SS2 *));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, RequestBuffers,
         HRESULT (*)(SS2 *, DWORD, DWORD, DWORD));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, QueryAvailableBuffers,
         HRESULT (*)(SS2 *, DWORD, DWORD, DWORD *));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, ExecuteCompletionAgent,
         HRESULT (*)(SS2 *));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, OpenDevice,
         HRESULT (*)(SS2 *, LPCWSTR, IServerVirtualDevice **));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, AllocateBuffer,
         HRESULT (*)(SS2 *, BYTE **, DWORD, DWORD));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, FreeBuffer,
         HRESULT (*)(SS2 *, BYTE *, DWORD));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, IsSharedBuffer,
         HRESULT (*)(SS2 *, BYTE *));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, SignalAbort, HRESULT (*)(SS2 *));
FIELD_IS(IServerVirtualDeviceSet2Vtbl, Close, HRESULT (*)(SS2 *));
#undef SS2

/* The checks above are made by the compiler; this test only shows in the
 * list that they were built, and checks what the types mean at run time:
 * a size or code with the top bit set stays a large positive value, as on
 * Windows, where int32_t made it negative. */
TEST_IMPL(com_field_types) {
  VDC_Command c;
  memset(&c, 0, sizeof c);
  c.size = 0x80000000u;
  ASSERT(c.size > 0x7FFFFFFFu);
  ASSERT_UEQ(c.size, 2147483648u);
  c.position = ~(DWORDLONG)0;
  ASSERT(c.position > (DWORDLONG)INT64_MAX);
  VDS_Command s;
  memset(&s, 0, sizeof s);
  s.completionCode = 0xFFFFFFFFu;
  s.bytesTransferred = 0x80000001u;
  ASSERT(s.completionCode > ERROR_OPERATION_ABORTED);
  ASSERT(s.bytesTransferred > 0x80000000u);
  return 0;
}
