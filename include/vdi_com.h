/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdi_com.h - the COM-style face of libvdi: the objects of vdi.h behind
 * C vtables in the Windows slot order, for code written against the
 * Windows VDI headers (vdi.h / vdiguid.h of the SQL Server SDK).
 *
 * What it holds:
 * - the few Windows types that code uses (HRESULT, DWORD, DWORDLONG, BYTE,
 *   ULONG, BOOL, WCHAR, LPCWSTR, GUID/IID/CLSID, REFIID, REFCLSID) and the
 *   standard HRESULTs a factory returns, each behind a guard so that a
 *   client's own shim of Windows types wins (see docs/COM.md);
 * - the interface IDs and class IDs of spec §2.2.1 as data exported from
 *   libvdi under vdi_ names, with #defines giving them their Windows names;
 * - IUnknown, IClientVirtualDevice, IClientVirtualDeviceSet(2),
 *   IServerVirtualDevice and IServerVirtualDeviceSet2: an object is one
 *   pointer, lpVtbl, to a vtable listing IUnknown's three methods, then the
 *   interface's methods in the Windows order (the v2 client set's begins
 *   with the v1 slots);
 * - in C (and in C++ with CINTERFACE, as on Windows) each interface is a
 *   struct holding only its lpVtbl; in C++ the interfaces derive as
 *   Microsoft's do (IClientVirtualDeviceSet2 : IClientVirtualDeviceSet,
 *   the others : IUnknown) and have inline member functions
 *   (p->CreateEx(...)) that forward through lpVtbl, with no data and no
 *   virtual functions added, so the layout is the same in both languages;
 * - C call macros (IClientVirtualDeviceSet2_CreateEx(p, ...)), which work
 *   in both views;
 * - vdi_CoCreateInstance, a factory shaped like CoCreateInstance.
 *
 * Return values are vdi.h's VD_E_* codes unchanged; only the factory and
 * QueryInterface return the COM codes E_NOINTERFACE, E_POINTER, ...
 * Names are wide strings (UTF-32 wchar_t on Linux); a name holding a value
 * that is not a Unicode scalar value gets VD_E_INVALID.  DWORD timeouts are
 * milliseconds; INFINITE (0xFFFFFFFF) waits forever.
 *
 * Lifetime: the factory returns a set with one reference; Release to zero
 * closes the set if it is open and frees it.  Device objects belong to
 * their set (as in vdi.h): they are valid until the set's Close or last
 * Release.  Their AddRef/Release count references for symmetry with COM but
 * never end the device's life.
 */
#ifndef OPENVDI_VDI_COM_H
#define OPENVDI_VDI_COM_H

#include "vdi.h"

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

/* ------------------------------------------------------- Windows types
 * Each is skipped when its guard macro is already defined, so a client's
 * shim (or a Windows-compatibility layer that defines _WINDEF_) can provide
 * its own.  Identical typedefs may also simply be repeated in C11 and C++. */
#if !defined(_WINDEF_) && !defined(VDI_COM_HAVE_WINTYPES)
#ifndef _DWORD_DEFINED
#define _DWORD_DEFINED
typedef uint32_t DWORD;
#endif
#ifndef _DWORDLONG_DEFINED
#define _DWORDLONG_DEFINED
typedef uint64_t DWORDLONG;
#endif
#ifndef _BYTE_DEFINED
#define _BYTE_DEFINED
typedef uint8_t BYTE;
#endif
#ifndef _ULONG_DEFINED
#define _ULONG_DEFINED
typedef uint32_t ULONG;
#endif
#ifndef _BOOL_DEFINED
#define _BOOL_DEFINED
typedef int BOOL;
#endif
#ifndef _WCHAR_DEFINED
#define _WCHAR_DEFINED
typedef wchar_t WCHAR;
#endif
#ifndef _LPCWSTR_DEFINED
#define _LPCWSTR_DEFINED
typedef const wchar_t *LPCWSTR;
typedef wchar_t *LPWSTR;
#endif
#endif /* !_WINDEF_ */

#ifndef _HRESULT_DEFINED
#define _HRESULT_DEFINED
typedef int32_t HRESULT;
#endif

/* guiddef.h's guards and layout: 16 bytes. */
#ifndef GUID_DEFINED
#define GUID_DEFINED
typedef struct _GUID {
  uint32_t Data1;
  uint16_t Data2;
  uint16_t Data3;
  uint8_t Data4[8];
} GUID;
#endif
#ifndef __IID_DEFINED__
#define __IID_DEFINED__
typedef GUID IID;
typedef GUID CLSID;
#endif
/* As on Windows, REFIID is a pointer in C and a reference in C++. */
#ifndef _REFGUID_DEFINED
#define _REFGUID_DEFINED
#ifdef __cplusplus
#define REFGUID const GUID &
#else
#define REFGUID const GUID *
#endif
#endif
#ifndef _REFIID_DEFINED
#define _REFIID_DEFINED
#ifdef __cplusplus
#define REFIID const IID &
#else
#define REFIID const IID *
#endif
#endif
#ifndef _REFCLSID_DEFINED
#define _REFCLSID_DEFINED
#ifdef __cplusplus
#define REFCLSID const CLSID &
#else
#define REFCLSID const CLSID *
#endif
#endif

VDI_STATIC_ASSERT(sizeof(GUID) == 16, "GUID is 16 bytes");
VDI_STATIC_ASSERT(sizeof(HRESULT) == 4, "HRESULT is 32 bits");

/* ------------------------------------------------ standard HRESULT codes */
#ifndef S_OK
#define S_OK ((HRESULT)0)
#endif
#ifndef S_FALSE
#define S_FALSE ((HRESULT)1)
#endif
#ifndef E_NOINTERFACE
#define E_NOINTERFACE ((HRESULT)0x80004002u)
#endif
#ifndef E_POINTER
#define E_POINTER ((HRESULT)0x80004003u)
#endif
#ifndef E_OUTOFMEMORY
#define E_OUTOFMEMORY ((HRESULT)0x8007000Eu)
#endif
#ifndef E_INVALIDARG
#define E_INVALIDARG ((HRESULT)0x80070057u)
#endif
#ifndef CLASS_E_NOAGGREGATION
#define CLASS_E_NOAGGREGATION ((HRESULT)0x80040110u)
#endif
#ifndef CLASS_E_CLASSNOTAVAILABLE
#define CLASS_E_CLASSNOTAVAILABLE ((HRESULT)0x80040111u)
#endif
#ifndef SUCCEEDED
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#endif
#ifndef FAILED
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#endif
/* The class context is accepted and ignored: every object is in-process. */
#ifndef CLSCTX_INPROC_SERVER
#define CLSCTX_INPROC_SERVER 0x1
#endif
#ifndef CLSCTX_ALL
#define CLSCTX_ALL 0x17
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------ IIDs and CLSIDs
 * Values from spec §2.2.1.  The class IDs reuse interface IDs, as in
 * vdiguid.h: the client class is IID_IClientVirtualDeviceSet's value and the
 * server class IID_IServerVirtualDeviceSet's. */
extern VDI_EXPORT const IID vdi_IID_IUnknown;
extern VDI_EXPORT const IID vdi_IID_IClientVirtualDevice;
extern VDI_EXPORT const IID vdi_IID_IClientVirtualDeviceSet;
extern VDI_EXPORT const IID vdi_IID_IClientVirtualDeviceSet2;
extern VDI_EXPORT const IID vdi_IID_IServerVirtualDevice;
/* v1 server set: its ID names the server class; the v1 interface itself
 * (SetConfiguration) is not implemented, QueryInterface refuses it. */
extern VDI_EXPORT const IID vdi_IID_IServerVirtualDeviceSet;
extern VDI_EXPORT const IID vdi_IID_IServerVirtualDeviceSet2;
extern VDI_EXPORT const CLSID vdi_CLSID_MSSQL_ClientVirtualDeviceSet;
extern VDI_EXPORT const CLSID vdi_CLSID_MSSQL_ServerVirtualDeviceSet;

/* The Windows names (define VDI_COM_NO_WINDOWS_NAMES to do without). */
#ifndef VDI_COM_NO_WINDOWS_NAMES
#define IID_IUnknown                 vdi_IID_IUnknown
#define IID_IClientVirtualDevice     vdi_IID_IClientVirtualDevice
#define IID_IClientVirtualDeviceSet  vdi_IID_IClientVirtualDeviceSet
#define IID_IClientVirtualDeviceSet2 vdi_IID_IClientVirtualDeviceSet2
#define IID_IServerVirtualDevice     vdi_IID_IServerVirtualDevice
#define IID_IServerVirtualDeviceSet  vdi_IID_IServerVirtualDeviceSet
#define IID_IServerVirtualDeviceSet2 vdi_IID_IServerVirtualDeviceSet2
#define CLSID_MSSQL_ClientVirtualDeviceSet                                     \
  vdi_CLSID_MSSQL_ClientVirtualDeviceSet
#define CLSID_MSSQL_ServerVirtualDeviceSet                                     \
  vdi_CLSID_MSSQL_ServerVirtualDeviceSet
#endif

/* ------------------------------------------------------------ interfaces
 * Each vtable's QueryInterface takes a pointer to the IID in both
 * languages, so the vtable types are the same for C and C++.  (clang-format
 * is off in the vtables: it takes "HRESULT (*f)(" for a call and breaks the
 * lines badly.)
 *
 * Two views of the same objects, as in the Windows headers:
 * - the C view (C, or C++ with CINTERFACE defined): each interface is a
 *   struct whose only member is lpVtbl, typed as that interface's vtable;
 * - the C++ view: the interfaces derive from each other as Microsoft's do
 *   (IClientVirtualDeviceSet2 from IClientVirtualDeviceSet, every other one
 *   from IUnknown), so a v2 pointer converts to a v1 or IUnknown pointer
 *   implicitly.  The one data member, lpVtbl, lives in IUnknown; each
 *   derived interface adds no data and no virtual functions, only inline
 *   members that read its own vtable through that pointer.  An object is
 *   therefore still one pointer to a vtable whose first slots are its base
 *   interface's, in both views, and a pointer made by C code is used from
 *   C++ and back unchanged.
 */
#if defined(__cplusplus) && !defined(CINTERFACE)
#define VDI_COM_CXX_VIEW 1
#else
#define VDI_COM_CXX_VIEW 0
#endif

typedef struct IUnknown IUnknown;
typedef struct IClientVirtualDevice IClientVirtualDevice;
typedef struct IClientVirtualDeviceSet IClientVirtualDeviceSet;
typedef struct IClientVirtualDeviceSet2 IClientVirtualDeviceSet2;
typedef struct IServerVirtualDevice IServerVirtualDevice;
typedef struct IServerVirtualDeviceSet2 IServerVirtualDeviceSet2;

/* IUnknown: the first three slots of every vtable below. */
/* clang-format off */
typedef struct IUnknownVtbl {
  HRESULT (*QueryInterface)(IUnknown *This, const IID *riid, void **ppvObject);
  ULONG (*AddRef)(IUnknown *This);
  ULONG (*Release)(IUnknown *This);
} IUnknownVtbl;
/* clang-format on */

struct IUnknown {
  /* In the C++ view, every interface's only data member: its own vtable
   * begins with these three slots, and its members cast this pointer to
   * read the rest. */
  const IUnknownVtbl *lpVtbl;
#if VDI_COM_CXX_VIEW
  HRESULT QueryInterface(const IID &riid, void **ppvObject) {
    return lpVtbl->QueryInterface(this, &riid, ppvObject);
  }
  ULONG AddRef() {
    return lpVtbl->AddRef(this);
  }
  ULONG Release() {
    return lpVtbl->Release(this);
  }
#endif
};

/* IClientVirtualDevice : IUnknown */
/* clang-format off */
typedef struct IClientVirtualDeviceVtbl {
  HRESULT (*QueryInterface)(IClientVirtualDevice *This, const IID *riid,
                            void **ppvObject);
  ULONG (*AddRef)(IClientVirtualDevice *This);
  ULONG (*Release)(IClientVirtualDevice *This);
  HRESULT (*GetCommand)(IClientVirtualDevice *This, DWORD dwTimeOut,
                        VDC_Command **ppCmd);
  HRESULT (*CompleteCommand)(IClientVirtualDevice *This, VDC_Command *pCmd,
                             DWORD dwCompletionCode, DWORD dwBytesTransferred,
                             DWORDLONG dwlPosition);
} IClientVirtualDeviceVtbl;
/* clang-format on */

#if VDI_COM_CXX_VIEW
struct IClientVirtualDevice : IUnknown {
  HRESULT GetCommand(DWORD dwTimeOut, VDC_Command **ppCmd) {
    return vtbl()->GetCommand(this, dwTimeOut, ppCmd);
  }
  HRESULT CompleteCommand(VDC_Command *pCmd, DWORD dwCompletionCode,
                          DWORD dwBytesTransferred, DWORDLONG dwlPosition) {
    return vtbl()->CompleteCommand(this, pCmd, dwCompletionCode,
                                   dwBytesTransferred, dwlPosition);
  }

private:
  const IClientVirtualDeviceVtbl *vtbl() const {
    return reinterpret_cast<const IClientVirtualDeviceVtbl *>(lpVtbl);
  }
};
#else
struct IClientVirtualDevice {
  const IClientVirtualDeviceVtbl *lpVtbl;
};
#endif

/* IClientVirtualDeviceSet : IUnknown (v1).  The v2 vtable below repeats
 * these slots and appends two, so a v2 object is also a v1 object. */
/* clang-format off */
typedef struct IClientVirtualDeviceSetVtbl {
  HRESULT (*QueryInterface)(IClientVirtualDeviceSet *This, const IID *riid,
                            void **ppvObject);
  ULONG (*AddRef)(IClientVirtualDeviceSet *This);
  ULONG (*Release)(IClientVirtualDeviceSet *This);
  HRESULT (*Create)(IClientVirtualDeviceSet *This, LPCWSTR lpName,
                    VDConfig *pCfg);
  HRESULT (*GetConfiguration)(IClientVirtualDeviceSet *This, DWORD dwTimeOut,
                              VDConfig *pCfg);
  HRESULT (*OpenDevice)(IClientVirtualDeviceSet *This, LPCWSTR lpName,
                        IClientVirtualDevice **ppVirtualDevice);
  HRESULT (*Close)(IClientVirtualDeviceSet *This);
  HRESULT (*SignalAbort)(IClientVirtualDeviceSet *This);
  HRESULT (*OpenInSecondary)(IClientVirtualDeviceSet *This, LPCWSTR lpSetName);
  HRESULT (*GetBufferHandle)(IClientVirtualDeviceSet *This, BYTE *pBuffer,
                             DWORD *pBufferHandle);
  HRESULT (*MapBufferHandle)(IClientVirtualDeviceSet *This, DWORD dwBuffer,
                             BYTE **ppBuffer);
} IClientVirtualDeviceSetVtbl;
/* clang-format on */

#if VDI_COM_CXX_VIEW
struct IClientVirtualDeviceSet : IUnknown {
  HRESULT Create(LPCWSTR lpName, VDConfig *pCfg) {
    return vtbl()->Create(this, lpName, pCfg);
  }
  HRESULT GetConfiguration(DWORD dwTimeOut, VDConfig *pCfg) {
    return vtbl()->GetConfiguration(this, dwTimeOut, pCfg);
  }
  HRESULT OpenDevice(LPCWSTR lpName, IClientVirtualDevice **ppVirtualDevice) {
    return vtbl()->OpenDevice(this, lpName, ppVirtualDevice);
  }
  HRESULT Close() {
    return vtbl()->Close(this);
  }
  HRESULT SignalAbort() {
    return vtbl()->SignalAbort(this);
  }
  HRESULT OpenInSecondary(LPCWSTR lpSetName) {
    return vtbl()->OpenInSecondary(this, lpSetName);
  }
  HRESULT GetBufferHandle(BYTE *pBuffer, DWORD *pBufferHandle) {
    return vtbl()->GetBufferHandle(this, pBuffer, pBufferHandle);
  }
  HRESULT MapBufferHandle(DWORD dwBuffer, BYTE **ppBuffer) {
    return vtbl()->MapBufferHandle(this, dwBuffer, ppBuffer);
  }

private:
  const IClientVirtualDeviceSetVtbl *vtbl() const {
    return reinterpret_cast<const IClientVirtualDeviceSetVtbl *>(lpVtbl);
  }
};
#else
struct IClientVirtualDeviceSet {
  const IClientVirtualDeviceSetVtbl *lpVtbl;
};
#endif

/* IClientVirtualDeviceSet2 : IClientVirtualDeviceSet */
/* clang-format off */
typedef struct IClientVirtualDeviceSet2Vtbl {
  HRESULT (*QueryInterface)(IClientVirtualDeviceSet2 *This, const IID *riid,
                            void **ppvObject);
  ULONG (*AddRef)(IClientVirtualDeviceSet2 *This);
  ULONG (*Release)(IClientVirtualDeviceSet2 *This);
  HRESULT (*Create)(IClientVirtualDeviceSet2 *This, LPCWSTR lpName,
                    VDConfig *pCfg);
  HRESULT (*GetConfiguration)(IClientVirtualDeviceSet2 *This, DWORD dwTimeOut,
                              VDConfig *pCfg);
  HRESULT (*OpenDevice)(IClientVirtualDeviceSet2 *This, LPCWSTR lpName,
                        IClientVirtualDevice **ppVirtualDevice);
  HRESULT (*Close)(IClientVirtualDeviceSet2 *This);
  HRESULT (*SignalAbort)(IClientVirtualDeviceSet2 *This);
  HRESULT (*OpenInSecondary)(IClientVirtualDeviceSet2 *This, LPCWSTR lpSetName);
  HRESULT (*GetBufferHandle)(IClientVirtualDeviceSet2 *This, BYTE *pBuffer,
                             DWORD *pBufferHandle);
  HRESULT (*MapBufferHandle)(IClientVirtualDeviceSet2 *This, DWORD dwBuffer,
                             BYTE **ppBuffer);
  HRESULT (*CreateEx)(IClientVirtualDeviceSet2 *This, LPCWSTR lpInstanceName,
                      LPCWSTR lpName, VDConfig *pCfg);
  HRESULT (*OpenInSecondaryEx)(IClientVirtualDeviceSet2 *This,
                               LPCWSTR lpInstanceName, LPCWSTR lpSetName);
} IClientVirtualDeviceSet2Vtbl;
/* clang-format on */

#if VDI_COM_CXX_VIEW
/* Create ... MapBufferHandle come from the base and call through the v1
 * prefix of this vtable, which is the same slots. */
struct IClientVirtualDeviceSet2 : IClientVirtualDeviceSet {
  HRESULT CreateEx(LPCWSTR lpInstanceName, LPCWSTR lpName, VDConfig *pCfg) {
    return vtbl()->CreateEx(this, lpInstanceName, lpName, pCfg);
  }
  HRESULT OpenInSecondaryEx(LPCWSTR lpInstanceName, LPCWSTR lpSetName) {
    return vtbl()->OpenInSecondaryEx(this, lpInstanceName, lpSetName);
  }

private:
  const IClientVirtualDeviceSet2Vtbl *vtbl() const {
    return reinterpret_cast<const IClientVirtualDeviceSet2Vtbl *>(lpVtbl);
  }
};
#else
struct IClientVirtualDeviceSet2 {
  const IClientVirtualDeviceSet2Vtbl *lpVtbl;
};
#endif

/* IServerVirtualDevice : IUnknown */
/* clang-format off */
typedef struct IServerVirtualDeviceVtbl {
  HRESULT (*QueryInterface)(IServerVirtualDevice *This, const IID *riid,
                            void **ppvObject);
  ULONG (*AddRef)(IServerVirtualDevice *This);
  ULONG (*Release)(IServerVirtualDevice *This);
  HRESULT (*SendCommand)(IServerVirtualDevice *This, VDS_Command *pCmd);
  HRESULT (*CloseDevice)(IServerVirtualDevice *This);
} IServerVirtualDeviceVtbl;
/* clang-format on */

#if VDI_COM_CXX_VIEW
struct IServerVirtualDevice : IUnknown {
  HRESULT SendCommand(VDS_Command *pCmd) {
    return vtbl()->SendCommand(this, pCmd);
  }
  HRESULT CloseDevice() {
    return vtbl()->CloseDevice(this);
  }

private:
  const IServerVirtualDeviceVtbl *vtbl() const {
    return reinterpret_cast<const IServerVirtualDeviceVtbl *>(lpVtbl);
  }
};
#else
struct IServerVirtualDevice {
  const IServerVirtualDeviceVtbl *lpVtbl;
};
#endif

/* IServerVirtualDeviceSet2 : IUnknown.  Microsoft's header derives it from
 * IUnknown, not from the v1 IServerVirtualDeviceSet (whose Open takes one
 * name and which has SetConfiguration), so there is no v1 prefix here.
 * BeginConfiguration takes its arguments in the header's order (blockSize
 * before alignment). */
/* clang-format off */
typedef struct IServerVirtualDeviceSet2Vtbl {
  HRESULT (*QueryInterface)(IServerVirtualDeviceSet2 *This, const IID *riid,
                            void **ppvObject);
  ULONG (*AddRef)(IServerVirtualDeviceSet2 *This);
  ULONG (*Release)(IServerVirtualDeviceSet2 *This);
  HRESULT (*Open)(IServerVirtualDeviceSet2 *This, LPCWSTR lpInstanceName,
                  LPCWSTR lpSetName);
  HRESULT (*GetConfiguration)(IServerVirtualDeviceSet2 *This, VDConfig *pCfg);
  HRESULT (*BeginConfiguration)(IServerVirtualDeviceSet2 *This,
                                DWORD dwFeatures, DWORD dwBlockSize,
                                DWORD dwAlignment, DWORD dwMaxTransferSize,
                                DWORD dwTimeout);
  HRESULT (*EndConfiguration)(IServerVirtualDeviceSet2 *This);
  HRESULT (*RequestBuffers)(IServerVirtualDeviceSet2 *This, DWORD dwSize,
                            DWORD dwAlignment, DWORD dwCount);
  HRESULT (*QueryAvailableBuffers)(IServerVirtualDeviceSet2 *This, DWORD dwSize,
                                   DWORD dwAlignment, DWORD *pCount);
  HRESULT (*ExecuteCompletionAgent)(IServerVirtualDeviceSet2 *This);
  HRESULT (*OpenDevice)(IServerVirtualDeviceSet2 *This, LPCWSTR lpName,
                        IServerVirtualDevice **ppVirtualDevice);
  HRESULT (*AllocateBuffer)(IServerVirtualDeviceSet2 *This, BYTE **ppBuffer,
                            DWORD dwSize, DWORD dwAlignment);
  HRESULT (*FreeBuffer)(IServerVirtualDeviceSet2 *This, BYTE *pBuffer,
                        DWORD dwSize);
  HRESULT (*IsSharedBuffer)(IServerVirtualDeviceSet2 *This, BYTE *pBuffer);
  HRESULT (*SignalAbort)(IServerVirtualDeviceSet2 *This);
  HRESULT (*Close)(IServerVirtualDeviceSet2 *This);
} IServerVirtualDeviceSet2Vtbl;
/* clang-format on */

#if VDI_COM_CXX_VIEW
struct IServerVirtualDeviceSet2 : IUnknown {
  HRESULT Open(LPCWSTR lpInstanceName, LPCWSTR lpSetName) {
    return vtbl()->Open(this, lpInstanceName, lpSetName);
  }
  HRESULT GetConfiguration(VDConfig *pCfg) {
    return vtbl()->GetConfiguration(this, pCfg);
  }
  HRESULT BeginConfiguration(DWORD dwFeatures, DWORD dwBlockSize,
                             DWORD dwAlignment, DWORD dwMaxTransferSize,
                             DWORD dwTimeout) {
    return vtbl()->BeginConfiguration(this, dwFeatures, dwBlockSize,
                                      dwAlignment, dwMaxTransferSize,
                                      dwTimeout);
  }
  HRESULT EndConfiguration() {
    return vtbl()->EndConfiguration(this);
  }
  HRESULT RequestBuffers(DWORD dwSize, DWORD dwAlignment, DWORD dwCount) {
    return vtbl()->RequestBuffers(this, dwSize, dwAlignment, dwCount);
  }
  HRESULT QueryAvailableBuffers(DWORD dwSize, DWORD dwAlignment,
                                DWORD *pCount) {
    return vtbl()->QueryAvailableBuffers(this, dwSize, dwAlignment, pCount);
  }
  HRESULT ExecuteCompletionAgent() {
    return vtbl()->ExecuteCompletionAgent(this);
  }
  HRESULT OpenDevice(LPCWSTR lpName, IServerVirtualDevice **ppVirtualDevice) {
    return vtbl()->OpenDevice(this, lpName, ppVirtualDevice);
  }
  HRESULT AllocateBuffer(BYTE **ppBuffer, DWORD dwSize, DWORD dwAlignment) {
    return vtbl()->AllocateBuffer(this, ppBuffer, dwSize, dwAlignment);
  }
  HRESULT FreeBuffer(BYTE *pBuffer, DWORD dwSize) {
    return vtbl()->FreeBuffer(this, pBuffer, dwSize);
  }
  HRESULT IsSharedBuffer(BYTE *pBuffer) {
    return vtbl()->IsSharedBuffer(this, pBuffer);
  }
  HRESULT SignalAbort() {
    return vtbl()->SignalAbort(this);
  }
  HRESULT Close() {
    return vtbl()->Close(this);
  }

private:
  const IServerVirtualDeviceSet2Vtbl *vtbl() const {
    return reinterpret_cast<const IServerVirtualDeviceSet2Vtbl *>(lpVtbl);
  }
};
#else
struct IServerVirtualDeviceSet2 {
  const IServerVirtualDeviceSet2Vtbl *lpVtbl;
};
#endif

/* ---------------------------------------------------------------- factory
 * Creates a client set (CLSID_MSSQL_ClientVirtualDeviceSet) or a server set
 * (CLSID_MSSQL_ServerVirtualDeviceSet) and returns the interface @p riid of
 * it in *ppv, holding one reference.  @p clsctx is ignored.
 * @return S_OK; E_POINTER (ppv NULL); E_INVALIDARG (clsid or riid NULL);
 * CLASS_E_NOAGGREGATION (outer not NULL); CLASS_E_CLASSNOTAVAILABLE (other
 * class); E_NOINTERFACE (the class has no such interface); or the code of
 * vdi_set_new / vdi_srv_new (VD_E_MEMORY).  On failure *ppv is NULL. */
VDI_EXPORT HRESULT vdi_CoCreateInstance(const CLSID *rclsid, void *pUnkOuter,
                                        DWORD dwClsContext, const IID *riid,
                                        void **ppv);

#ifdef __cplusplus
} /* extern "C" */

/* C++ passes GUIDs by reference, as with the Windows headers. */
inline HRESULT vdi_CoCreateInstance(const CLSID &rclsid, void *pUnkOuter,
                                    DWORD dwClsContext, const IID &riid,
                                    void **ppv) {
  return vdi_CoCreateInstance(&rclsid, pUnkOuter, dwClsContext, &riid, ppv);
}
#endif

#ifdef VDI_COM_DEFINE_COCREATEINSTANCE
#define CoCreateInstance vdi_CoCreateInstance
#endif

/* ------------------------------------------------------------ C macros
 * The COBJMACROS of the Windows headers, for every method of every
 * interface.  In the C view they call through lpVtbl, as on Windows; in the
 * C++ view they call the member functions (lpVtbl is IUnknown's there), so
 * C-style calls compile in both.  QueryInterface takes riid as a pointer
 * (&IID_x) in C and as the IID itself (REFIID) in C++. */
#if VDI_COM_CXX_VIEW
#define VDI_COM_CALL0_(This, m)      ((This)->m())
#define VDI_COM_CALL_(This, m, ...)  ((This)->m(__VA_ARGS__))
#define VDI_COM_QI_(This, riid, ppv) ((This)->QueryInterface(riid, ppv))
#else
#define VDI_COM_CALL0_(This, m)     ((This)->lpVtbl->m(This))
#define VDI_COM_CALL_(This, m, ...) ((This)->lpVtbl->m(This, __VA_ARGS__))
#ifdef __cplusplus
/* C++ with CINTERFACE: REFIID is still a reference, the slot a pointer. */
#define VDI_COM_QI_(This, riid, ppv)                                           \
  ((This)->lpVtbl->QueryInterface(This, &(riid), ppv))
#else
#define VDI_COM_QI_(This, riid, ppv)                                           \
  ((This)->lpVtbl->QueryInterface(This, riid, ppv))
#endif
#endif

#define IUnknown_QueryInterface(This, riid, ppv) VDI_COM_QI_(This, riid, ppv)
#define IUnknown_AddRef(This)                    VDI_COM_CALL0_(This, AddRef)
#define IUnknown_Release(This)                   VDI_COM_CALL0_(This, Release)

#define IClientVirtualDevice_QueryInterface(This, riid, ppv)                   \
  VDI_COM_QI_(This, riid, ppv)
#define IClientVirtualDevice_AddRef(This)  VDI_COM_CALL0_(This, AddRef)
#define IClientVirtualDevice_Release(This) VDI_COM_CALL0_(This, Release)
#define IClientVirtualDevice_GetCommand(This, dwTimeOut, ppCmd)                \
  VDI_COM_CALL_(This, GetCommand, dwTimeOut, ppCmd)
#define IClientVirtualDevice_CompleteCommand(This, pCmd, dwCode, dwBytes,      \
                                             dwlPos)                           \
  VDI_COM_CALL_(This, CompleteCommand, pCmd, dwCode, dwBytes, dwlPos)

#define IClientVirtualDeviceSet_QueryInterface(This, riid, ppv)                \
  VDI_COM_QI_(This, riid, ppv)
#define IClientVirtualDeviceSet_AddRef(This)  VDI_COM_CALL0_(This, AddRef)
#define IClientVirtualDeviceSet_Release(This) VDI_COM_CALL0_(This, Release)
#define IClientVirtualDeviceSet_Create(This, lpName, pCfg)                     \
  VDI_COM_CALL_(This, Create, lpName, pCfg)
#define IClientVirtualDeviceSet_GetConfiguration(This, dwTimeOut, pCfg)        \
  VDI_COM_CALL_(This, GetConfiguration, dwTimeOut, pCfg)
#define IClientVirtualDeviceSet_OpenDevice(This, lpName, ppDev)                \
  VDI_COM_CALL_(This, OpenDevice, lpName, ppDev)
#define IClientVirtualDeviceSet_Close(This) VDI_COM_CALL0_(This, Close)
#define IClientVirtualDeviceSet_SignalAbort(This)                              \
  VDI_COM_CALL0_(This, SignalAbort)
#define IClientVirtualDeviceSet_OpenInSecondary(This, lpSetName)               \
  VDI_COM_CALL_(This, OpenInSecondary, lpSetName)
#define IClientVirtualDeviceSet_GetBufferHandle(This, pBuffer, pHandle)        \
  VDI_COM_CALL_(This, GetBufferHandle, pBuffer, pHandle)
#define IClientVirtualDeviceSet_MapBufferHandle(This, dwBuffer, ppBuffer)      \
  VDI_COM_CALL_(This, MapBufferHandle, dwBuffer, ppBuffer)

#define IClientVirtualDeviceSet2_QueryInterface(This, riid, ppv)               \
  VDI_COM_QI_(This, riid, ppv)
#define IClientVirtualDeviceSet2_AddRef(This)  VDI_COM_CALL0_(This, AddRef)
#define IClientVirtualDeviceSet2_Release(This) VDI_COM_CALL0_(This, Release)
#define IClientVirtualDeviceSet2_Create(This, lpName, pCfg)                    \
  VDI_COM_CALL_(This, Create, lpName, pCfg)
#define IClientVirtualDeviceSet2_GetConfiguration(This, dwTimeOut, pCfg)       \
  VDI_COM_CALL_(This, GetConfiguration, dwTimeOut, pCfg)
#define IClientVirtualDeviceSet2_OpenDevice(This, lpName, ppDev)               \
  VDI_COM_CALL_(This, OpenDevice, lpName, ppDev)
#define IClientVirtualDeviceSet2_Close(This) VDI_COM_CALL0_(This, Close)
#define IClientVirtualDeviceSet2_SignalAbort(This)                             \
  VDI_COM_CALL0_(This, SignalAbort)
#define IClientVirtualDeviceSet2_OpenInSecondary(This, lpSetName)              \
  VDI_COM_CALL_(This, OpenInSecondary, lpSetName)
#define IClientVirtualDeviceSet2_GetBufferHandle(This, pBuffer, pHandle)       \
  VDI_COM_CALL_(This, GetBufferHandle, pBuffer, pHandle)
#define IClientVirtualDeviceSet2_MapBufferHandle(This, dwBuffer, ppBuffer)     \
  VDI_COM_CALL_(This, MapBufferHandle, dwBuffer, ppBuffer)
#define IClientVirtualDeviceSet2_CreateEx(This, lpInstanceName, lpName, pCfg)  \
  VDI_COM_CALL_(This, CreateEx, lpInstanceName, lpName, pCfg)
#define IClientVirtualDeviceSet2_OpenInSecondaryEx(This, lpInstanceName,       \
                                                   lpSetName)                  \
  VDI_COM_CALL_(This, OpenInSecondaryEx, lpInstanceName, lpSetName)

#define IServerVirtualDevice_QueryInterface(This, riid, ppv)                   \
  VDI_COM_QI_(This, riid, ppv)
#define IServerVirtualDevice_AddRef(This)  VDI_COM_CALL0_(This, AddRef)
#define IServerVirtualDevice_Release(This) VDI_COM_CALL0_(This, Release)
#define IServerVirtualDevice_SendCommand(This, pCmd)                           \
  VDI_COM_CALL_(This, SendCommand, pCmd)
#define IServerVirtualDevice_CloseDevice(This) VDI_COM_CALL0_(This, CloseDevice)

#define IServerVirtualDeviceSet2_QueryInterface(This, riid, ppv)               \
  VDI_COM_QI_(This, riid, ppv)
#define IServerVirtualDeviceSet2_AddRef(This)  VDI_COM_CALL0_(This, AddRef)
#define IServerVirtualDeviceSet2_Release(This) VDI_COM_CALL0_(This, Release)
#define IServerVirtualDeviceSet2_Open(This, lpInstanceName, lpSetName)         \
  VDI_COM_CALL_(This, Open, lpInstanceName, lpSetName)
#define IServerVirtualDeviceSet2_GetConfiguration(This, pCfg)                  \
  VDI_COM_CALL_(This, GetConfiguration, pCfg)
#define IServerVirtualDeviceSet2_BeginConfiguration(                           \
    This, dwFeatures, dwBlockSize, dwAlignment, dwMaxTransferSize, dwTimeout)  \
  VDI_COM_CALL_(This, BeginConfiguration, dwFeatures, dwBlockSize,             \
                dwAlignment, dwMaxTransferSize, dwTimeout)
#define IServerVirtualDeviceSet2_EndConfiguration(This)                        \
  VDI_COM_CALL0_(This, EndConfiguration)
#define IServerVirtualDeviceSet2_RequestBuffers(This, dwSize, dwAlignment,     \
                                                dwCount)                       \
  VDI_COM_CALL_(This, RequestBuffers, dwSize, dwAlignment, dwCount)
#define IServerVirtualDeviceSet2_QueryAvailableBuffers(This, dwSize,           \
                                                       dwAlignment, pCount)    \
  VDI_COM_CALL_(This, QueryAvailableBuffers, dwSize, dwAlignment, pCount)
#define IServerVirtualDeviceSet2_ExecuteCompletionAgent(This)                  \
  VDI_COM_CALL0_(This, ExecuteCompletionAgent)
#define IServerVirtualDeviceSet2_OpenDevice(This, lpName, ppDev)               \
  VDI_COM_CALL_(This, OpenDevice, lpName, ppDev)
#define IServerVirtualDeviceSet2_AllocateBuffer(This, ppBuffer, dwSize,        \
                                                dwAlignment)                   \
  VDI_COM_CALL_(This, AllocateBuffer, ppBuffer, dwSize, dwAlignment)
#define IServerVirtualDeviceSet2_FreeBuffer(This, pBuffer, dwSize)             \
  VDI_COM_CALL_(This, FreeBuffer, pBuffer, dwSize)
#define IServerVirtualDeviceSet2_IsSharedBuffer(This, pBuffer)                 \
  VDI_COM_CALL_(This, IsSharedBuffer, pBuffer)
#define IServerVirtualDeviceSet2_SignalAbort(This)                             \
  VDI_COM_CALL0_(This, SignalAbort)
#define IServerVirtualDeviceSet2_Close(This) VDI_COM_CALL0_(This, Close)

#endif /* OPENVDI_VDI_COM_H */
