/* SPDX-License-Identifier: Apache-2.0 */
/*
 * include/vdi.h - openvdi: the SQL Server Virtual Device Interface for Linux,
 * in C (libvdi; not to be confused with the C++ SDK header of the same
 * name, sqlvdi/include/vdi.h).
 *
 * A *virtual device set* is a channel between two processes on one machine:
 * the *client* (a backup application, which plays the tape drive) and the
 * *server* (a database engine, which produces or consumes a backup stream).
 * The client creates a named set of 1 to 64 *virtual devices*; the server
 * attaches to it by name, negotiates a configuration, allocates data buffers
 * in shared memory that both processes map, and sends device commands (Read,
 * Write, Flush, ...) on each device.  The client executes each command
 * against its own storage and completes it.  Payload is never copied: the
 * client reads and writes the server's buffer in place.
 *
 * Life cycle, client side:
 *   vdi_set_new -> vdi_set_create -> vdi_set_get_configuration
 *   -> vdi_set_open_device (per device)
 *   -> per device: vdi_dev_get_command / vdi_dev_complete_command ...
 *      until VD_E_CLOSE (normal end) or VD_E_ABORT
 *   -> vdi_set_close -> (reuse with vdi_set_create, or vdi_set_free)
 *
 * Life cycle, server side:
 *   vdi_srv_new -> vdi_srv_open -> vdi_srv_get_configuration
 *   -> vdi_srv_begin_configuration -> vdi_srv_request_buffers*
 *   -> vdi_srv_end_configuration -> vdi_srv_open_device (per device)
 *   -> a thread runs vdi_srv_execute_completion_agent
 *   -> vdi_srv_allocate_buffer / vdi_srvdev_send_command ...
 *   -> vdi_srvdev_close_device (per device) -> vdi_srv_close -> vdi_srv_free
 *
 * Every function returns 0 (NOERROR) on success or one of the negative
 * VD_E_* codes below, which carry Microsoft's numbers (0x8077xxxx as an int).
 * The return value is about the call; the result of the I/O a command asked
 * for travels inside the command (VDS_Command.completionCode).
 *
 * Caveats:
 * - Timeouts are milliseconds on the monotonic clock.  0 polls; a negative
 *   value or INFINITE (0xFFFFFFFF) waits forever.  A forever-wait still
 *   returns VD_E_ABORT when either side aborts or a peer process dies.
 * - A dead peer (client, server, or a secondary client holding open devices)
 *   is noticed by the kernel through the rendezvous socket: every blocked
 *   call of the survivor returns VD_E_ABORT at once.
 * - After an abort or a protocol violation the set is poisoned: every later
 *   call returns the same code (VD_E_ABORT; VD_E_PROTOCOL when a peer broke
 *   the protocol; VD_E_MEMORY or VD_E_UNEXPECTED when this process could not
 *   map a buffer segment or wait any more) until vdi_set_close /
 *   vdi_srv_close.  The one
 *   exception is vdi_srvdev_send_command, which always refuses with
 *   VD_E_ABORT (and ERROR_OPERATION_ABORTED to the routine), as the
 *   interface's SendCommand mapping says.
 * - A set object is used by one process; do not use it in a child after
 *   fork().  Set-level calls are thread-safe.  A device is meant to be driven
 *   by one thread, but get/complete on one device from several threads is
 *   safe too.  Close may be called while other threads are inside calls of
 *   the set: it makes their waits return VD_E_ABORT, waits until they have
 *   left, and refuses calls that arrive meanwhile; device objects must not
 *   be used after Close returns.  Do not call vdi_srv_close from a
 *   completion routine (VD_E_PROTOCOL: it would wait for its own thread).
 * - Only processes of the creating user (and of a group the creator allows
 *   with vdi_set_allow_group) can attach to a set.
 * - Everything the peer writes into shared memory is validated; a peer that
 *   writes garbage makes the set abort with VD_E_PROTOCOL.
 * - Environment variables the library reads (all but VDI_TRUST_GROUP once
 *   per process, at first use; see also libvdi(3), man/libvdi.3):
 *   VDI_TRUST_GROUP=gid  a server or secondary also attaches to sets whose
 *     creator runs with this numeric primary group (not only the own user
 *     and root).  Security-relevant: only set it to a group whose members
 *     you trust with your backup data.  Ignored in set-user-ID and
 *     set-group-ID programs (secure_getenv).
 *   VDI_SPIN_US=us  how long a waiter spins before it sleeps in the kernel
 *     (default 50); vdi_lib_set_spin_us() overrides it.
 *   VDI_YIELD_NS=ns  how long a spin runs before it yields the CPU between
 *     checks (default 1000).
 *   VDI_FAULT_INJECT=op:n[,op:n...]  makes the nth and every later call of
 *     a system call of the library fail (ops: mmap memfd ftruncate socket
 *     sendmsg recvmsg futex thread alloc).  A test hook, honoured in
 *     release builds on purpose: the tests inject faults into the very
 *     programs that ship (vdi, vdisql), not into a special build.  It can
 *     only make calls fail, which whoever sets a process's environment can
 *     do anyway (ulimit, seccomp, LD_PRELOAD); ignored in set-user-ID and
 *     set-group-ID programs.
 */
#ifndef OPENVDI_VDI_H
#define OPENVDI_VDI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* In libsqlvdi.so the core is linked in but is not part of the SDK's ABI:
 * there its functions are declared hidden. */
#if defined(__GNUC__) && defined(OPENVDI_SDK_TYPES)
#define VDI_EXPORT __attribute__((visibility("hidden")))
#elif defined(__GNUC__)
#define VDI_EXPORT __attribute__((visibility("default")))
#else
#define VDI_EXPORT
#endif

/* ---------------------------------------------------------------- version */

#define VDI_VERSION_MAJOR 0
#define VDI_VERSION_MINOR 1
#define VDI_VERSION_PATCH 0
#define VDI_VERSION_NUMBER                                                     \
  (VDI_VERSION_MAJOR * 10000 + VDI_VERSION_MINOR * 100 + VDI_VERSION_PATCH)
#define VDI_VERSION_STRING "0.1.0"

/** @brief The library's VDI_VERSION_NUMBER, for checks at run time. */
VDI_EXPORT unsigned vdi_version_number(void);

/* Compile-time checks, in C and in C++ (the COM header is used from both). */
#if defined(__cplusplus)
#define VDI_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define VDI_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* ------------------------------------------------------------ error codes */

/* The one list of codes (libuv's UV_ERRNO_MAP): XX(name, number, text).
 * The value of a code is Microsoft's: VD_ERROR(number) =
 * MAKE_HRESULT(1, 0x77, number), i.e. 0x8077000c, negative as an int; the
 * numbers are the interface's and never change.  VD_E_QUEUE_FULL and
 * VD_E_IO_ERROR are named by the documentation but have no published
 * value; openvdi uses 16 and 17.
 * It generates vdi_error_name() and vdi_strerror() (src/error.c) and pins
 * the #defines below and every other copy the interface needs (the SDK's
 * vdierror.h, checked whenever sqlvdi/sqlvdi.cpp is compiled).  The first part
 * is the codes Microsoft's Linux SDK header publishes; the second, openvdi's
 * additions. */
#define VDI_ERROR_MAP_SDK(XX)                                                  \
  XX(VD_E_NOTOPEN, 2, "object not open")                                       \
  XX(VD_E_TIMEOUT, 3, "timed out waiting")                                     \
  XX(VD_E_ABORT, 4,                                                            \
     "the operation was aborted (SignalAbort, peer death or protocol "         \
     "error); only termination actions are possible")                          \
  XX(VD_E_SECURITY, 5, "the peer is not allowed to use this set")              \
  XX(VD_E_INVALID, 6, "invalid parameter")                                     \
  XX(VD_E_INSTANCE_NAME, 7, "instance name not recognised")                    \
  XX(VD_E_NOTSUPPORTED, 9, "requested configuration is not supported")         \
  XX(VD_E_MEMORY, 10, "out of memory")                                         \
  XX(VD_E_UNEXPECTED, 11, "unexpected internal or system error")               \
  XX(VD_E_PROTOCOL, 12,                                                        \
     "call not legal in the current state, or the peer broke the protocol")    \
  XX(VD_E_OPEN, 13, "all devices are open")                                    \
  XX(VD_E_CLOSE, 14, "the device is closed")                                   \
  XX(VD_E_BUSY, 15, "resource busy: a live set already has this name")
#define VDI_ERROR_MAP_EXTRA(XX)                                                \
  XX(VD_E_QUEUE_FULL, 16, "the device's command queue is full")                \
  XX(VD_E_IO_ERROR, 17, "the device is in the IO-ERROR state")
#define VDI_ERROR_MAP(XX) VDI_ERROR_MAP_SDK(XX) VDI_ERROR_MAP_EXTRA(XX)

/* ------------------------------------------------------ Win32 completion
 * codes that VDI commands are completed with (winerror.h values):
 * XX(name, number).  The library itself hands out ERROR_OPERATION_ABORTED
 * (aborts), ERROR_INVALID_PARAMETER and ERROR_INVALID_HANDLE (commands it
 * refuses) and ERROR_IO_DEVICE (a failed SendCommand); the others are what
 * clients complete commands with.  The first part is also in the Linux
 * SDK's vdi.h (checked whenever sqlvdi/sqlvdi.cpp is compiled). */
#define VDI_COMPLETION_MAP_SDK(XX)                                             \
  XX(ERROR_SUCCESS, 0)                                                         \
  XX(ERROR_ARENA_TRASHED, 7)                                                   \
  XX(ERROR_HANDLE_EOF, 38)                                                     \
  XX(ERROR_HANDLE_DISK_FULL, 39)                                               \
  XX(ERROR_NOT_SUPPORTED, 50)                                                  \
  XX(ERROR_DISK_FULL, 112)                                                     \
  XX(ERROR_OPERATION_ABORTED, 995)
#define VDI_COMPLETION_MAP_EXTRA(XX)                                           \
  XX(ERROR_INVALID_HANDLE, 6)                                                  \
  XX(ERROR_BAD_ENVIRONMENT, 10)                                                \
  XX(ERROR_INVALID_PARAMETER, 87)                                              \
  XX(ERROR_END_OF_MEDIA, 1100)                                                 \
  XX(ERROR_FILEMARK_DETECTED, 1101)                                            \
  XX(ERROR_BEGINNING_OF_MEDIA, 1102)                                           \
  XX(ERROR_SETMARK_DETECTED, 1103)                                             \
  XX(ERROR_NO_DATA_DETECTED, 1104)                                             \
  XX(ERROR_NO_MEDIA_IN_DRIVE, 1112)                                            \
  XX(ERROR_IO_DEVICE, 1117)                                                    \
  XX(ERROR_EOM_OVERFLOW, 1129)                                                 \
  XX(ERROR_NO_SYSTEM_RESOURCES, 1450)
#define VDI_COMPLETION_MAP(XX)                                                 \
  VDI_COMPLETION_MAP_SDK(XX) VDI_COMPLETION_MAP_EXTRA(XX)

/* The C++ adapter of libsqlvdi.so (sqlvdi/sqlvdi.cpp) includes this header
 * with OPENVDI_SDK_TYPES defined, after the SDK's vdi.h, which declares the
 * same constants and structures in its own way (enums, the Linux SDK's
 * field types).  Then this header checks the SDK's copies of the codes
 * against the lists above and declares only its functions, over the SDK's
 * types, so that the adapter is compiled against the real prototypes. */
#ifdef OPENVDI_SDK_TYPES
#ifndef OPENVDI_SQLVDI_VDI_H
#error "OPENVDI_SDK_TYPES: include the SDK's vdi.h (sqlvdi/include) first"
#endif
#define VDI__PIN_CODE(name, number, text)                                      \
  VDI_STATIC_ASSERT(name == (int)(0x80770000u | (number)), #name);
VDI_ERROR_MAP_SDK(VDI__PIN_CODE)
#undef VDI__PIN_CODE
#define VDI__PIN_COMPLETION(name, number)                                      \
  VDI_STATIC_ASSERT(name == number, #name " is " #number);
VDI_COMPLETION_MAP_SDK(VDI__PIN_COMPLETION)
#undef VDI__PIN_COMPLETION
#else /* !OPENVDI_SDK_TYPES: the C API's own constants and types */

#define VD_ERROR(code)     ((int)(0x80000000u | (0x77u << 16) | (unsigned)(code)))

/* The codes stay #defines, not an enum, because code written for Windows
 * tests them with #ifdef; each one is checked against the list above, so
 * the two cannot drift apart. */
#define VD_E_NOTOPEN       VD_ERROR(2)  /**< object not open */
#define VD_E_TIMEOUT       VD_ERROR(3)  /**< the wait's timeout elapsed */
#define VD_E_ABORT         VD_ERROR(4)  /**< abort in effect */
#define VD_E_SECURITY      VD_ERROR(5)  /**< peer not allowed / no access */
#define VD_E_INVALID       VD_ERROR(6)  /**< invalid parameter */
#define VD_E_INSTANCE_NAME VD_ERROR(7)  /**< instance name not recognised */
#define VD_E_NOTSUPPORTED  VD_ERROR(9)  /**< configuration not supported */
#define VD_E_MEMORY        VD_ERROR(10) /**< out of memory */
#define VD_E_UNEXPECTED    VD_ERROR(11) /**< unexpected internal error */
#define VD_E_PROTOCOL      VD_ERROR(12) /**< not legal now / peer broke it */
#define VD_E_OPEN          VD_ERROR(13) /**< all devices are open */
#define VD_E_CLOSE         VD_ERROR(14) /**< the device is now closed */
#define VD_E_BUSY          VD_ERROR(15) /**< resource busy (name in use) */
#define VD_E_QUEUE_FULL    VD_ERROR(16) /**< SendCommand: queue is full */
#define VD_E_IO_ERROR      VD_ERROR(17) /**< SendCommand: device IO-ERROR */

#define VDI__PIN_CODE(name, number, text)                                      \
  VDI_STATIC_ASSERT(name == (int)(0x80770000u | (number)), #name);
VDI_ERROR_MAP(VDI__PIN_CODE)
#undef VDI__PIN_CODE

#ifndef NOERROR
#define NOERROR 0
#endif

/* Win32 completion codes (the list is VDI_COMPLETION_MAP above). */
#ifndef ERROR_SUCCESS
#define ERROR_SUCCESS 0
#endif
#define ERROR_INVALID_HANDLE      6
#define ERROR_ARENA_TRASHED       7
#define ERROR_BAD_ENVIRONMENT     10
#define ERROR_HANDLE_EOF          38
#define ERROR_HANDLE_DISK_FULL    39
#define ERROR_NOT_SUPPORTED       50
#define ERROR_INVALID_PARAMETER   87
#define ERROR_DISK_FULL           112
#define ERROR_OPERATION_ABORTED   995
#define ERROR_END_OF_MEDIA        1100
#define ERROR_FILEMARK_DETECTED   1101
#define ERROR_BEGINNING_OF_MEDIA  1102
#define ERROR_SETMARK_DETECTED    1103
#define ERROR_NO_DATA_DETECTED    1104
#define ERROR_NO_MEDIA_IN_DRIVE   1112
#define ERROR_IO_DEVICE           1117
#define ERROR_EOM_OVERFLOW        1129
#define ERROR_NO_SYSTEM_RESOURCES 1450

#define VDI__PIN_COMPLETION(name, number)                                      \
  VDI_STATIC_ASSERT(name == number, #name " is " #number);
VDI_COMPLETION_MAP(VDI__PIN_COMPLETION)
#undef VDI__PIN_COMPLETION

#ifndef INFINITE
#define INFINITE 0xFFFFFFFFu /**< wait forever (any negative value too) */
#endif

/* ---------------------------------------------------------- feature bits */

#define VDF_Removable       0x00000001u
#define VDF_Rewind          0x00000002u
#define VDF_Position        0x00000010u
#define VDF_SkipBlocks      0x00000020u
#define VDF_ReversePosition 0x00000040u
#define VDF_Discard         0x00000080u
#define VDF_FileMarks       0x00000100u
#define VDF_RandomAccess    0x00000200u
#define VDF_SnapshotPrepare 0x00000400u
#define VDF_EnumFrozenFiles 0x00000800u
#define VDF_VSSWriter       0x00001000u
#define VDF_RequestComplete 0x00002000u
#define VDF_WriteMedia      0x00010000u /**< server: BACKUP writes media */
#define VDF_ReadMedia       0x00020000u /**< server: RESTORE reads media */
#define VDF_CompleteEnabled 0x00040000u /**< server will send VDC_Complete */
#define VDF_LatchStats      0x80000000u

#define VDF_LikePipe 0x00000000u /**< sequential stream (+VDF_Removable) */
#define VDF_LikeTape                                                           \
  0x00000173u                    /**< FileMarks|Removable|Rewind|Position|     \
                                      SkipBlocks|ReversePosition */
#define VDF_LikeDisk 0x00000200u /**< RandomAccess (+VDF_Removable) */

/* ----------------------------------------------------------- commands */

enum VDCommands {
  VDC_Read = 1,
  VDC_Write = 2,
  VDC_ClearError = 3,
  VDC_Rewind = 4,
  VDC_WriteMark = 5,
  VDC_SkipMarks = 6,
  VDC_SkipBlocks = 7,
  VDC_Load = 8,
  VDC_GetPosition = 9,
  VDC_SetPosition = 10,
  VDC_Discard = 11,
  VDC_Flush = 12,
  VDC_Snapshot = 13,
  VDC_MountSnapshot = 14,
  VDC_PrepareToFreeze = 15,
  VDC_FileInfoBegin = 16,
  VDC_FileInfoEnd = 17,
  VDC_GetError = 18,
  VDC_Complete = 19
};

/** SetPosition "whence" with VDF_RandomAccess, carried in the size field. */
enum VDWhence { VDC_Beginning = 0, VDC_Current = 1, VDC_End = 2 };

/* ------------------------------------------------------ plain structures */

/** The configuration of a set: 11 x uint32, 44 bytes, Microsoft's order. */
typedef struct VDConfig {
  uint32_t deviceCount;           /**< client: 1..64 */
  uint32_t features;              /**< client asks; server adds media bits */
  uint32_t prefixZoneSize;        /**< client: bytes before each buffer */
  uint32_t alignment;             /**< client: minimum data alignment */
  uint32_t softFileMarkBlockSize; /**< client, with VDF_FileMarks */
  uint32_t EOMWarningSize;        /**< client: end-of-media warning zone */
  uint32_t serverTimeOut;         /**< client: ms, 0 = infinite */
  uint32_t blockSize;             /**< server: BLOCKSIZE */
  uint32_t maxIODepth;            /**< server: always 4 */
  uint32_t maxTransferSize;       /**< server: MAXTRANSFERSIZE */
  uint32_t bufferAreaSize;        /**< server: bytes of buffer area */
} VDConfig;

/* The command structures carry the field types of Microsoft's Windows
 * header (DWORD = uint32_t, DWORDLONG = uint64_t, BYTE * = uint8_t *), so
 * code written for it compares and prints them as it did there; the Linux
 * SDK header (sqlvdi/include/vdi.h) declares the same layout with int32_t
 * and int64_t, as Microsoft's Linux header does. */

/** A command as the client sees it (24 bytes). */
typedef struct VDC_Command {
  uint32_t commandCode; /**< VDC_* */
  uint32_t size;        /**< bytes for Read/Write; count/whence otherwise */
  uint64_t position;    /**< position (SetPosition; Read/Write if disk-like) */
  uint8_t *buffer;      /**< data, in shared memory; prefix zone before it */
} VDC_Command;

/** A command as the server builds it (56 bytes). */
typedef struct VDS_Command {
  uint32_t commandCode;       /**< in */
  uint32_t size;              /**< in */
  uint64_t inPosition;        /**< in: position to locate */
  uint64_t outPosition;       /**< out: GetPosition/SetPosition result */
  uint8_t *buffer;            /**< in: from vdi_srv_allocate_buffer */
  uint8_t *completionRoutine; /**< in: void (*)(VDS_Command *) */
  uint8_t *completionContext; /**< in: the server's own */
  uint32_t completionCode;    /**< out: ERROR_* */
  uint32_t bytesTransferred;  /**< out */
} VDS_Command;

/** The type of VDS_Command.completionRoutine. */
typedef void (*VDS_CompletionRoutine)(VDS_Command *cmd);
/** Store a completion routine in a VDS_Command. */
#define VDS_SET_COMPLETION(cmd, fn)                                            \
  ((cmd)->completionRoutine = (uint8_t *)(uintptr_t)(VDS_CompletionRoutine)(fn))

/* The layouts are the interface's ABI (x86-64 and other LP64 targets). */
VDI_STATIC_ASSERT(sizeof(VDConfig) == 44, "VDConfig is 44 bytes");
VDI_STATIC_ASSERT(offsetof(VDConfig, serverTimeOut) == 24, "VDConfig order");
VDI_STATIC_ASSERT(offsetof(VDConfig, bufferAreaSize) == 40, "VDConfig order");
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
VDI_STATIC_ASSERT(sizeof(VDC_Command) == 24, "VDC_Command is 24 bytes");
VDI_STATIC_ASSERT(offsetof(VDC_Command, position) == 8, "VDC_Command");
VDI_STATIC_ASSERT(offsetof(VDC_Command, buffer) == 16, "VDC_Command");
VDI_STATIC_ASSERT(sizeof(VDS_Command) == 56, "VDS_Command is 56 bytes");
VDI_STATIC_ASSERT(offsetof(VDS_Command, outPosition) == 16, "VDS_Command");
VDI_STATIC_ASSERT(offsetof(VDS_Command, buffer) == 24, "VDS_Command");
VDI_STATIC_ASSERT(offsetof(VDS_Command, completionRoutine) == 32, "VDS");
VDI_STATIC_ASSERT(offsetof(VDS_Command, completionContext) == 40, "VDS");
VDI_STATIC_ASSERT(offsetof(VDS_Command, completionCode) == 48, "VDS");
VDI_STATIC_ASSERT(offsetof(VDS_Command, bytesTransferred) == 52, "VDS");
#endif

#define VDI_MAX_DEVICES         64
#define VDI_MAX_NAME            95 /**< bytes in a set or device name */
#define VDI_MIN_BLOCKSIZE       512
#define VDI_MAX_BLOCKSIZE       65536
#define VDI_MAXTRANSFER_UNIT    65536
#define VDI_MAX_MAXTRANSFERSIZE 4194304
#define VDI_MAX_ALIGNMENT       65536
#define VDI_MAX_PREFIXZONE      (1u << 20)
#define VDI_MAXIODEPTH_REPORTED 4

#endif /* OPENVDI_SDK_TYPES */

/** @brief Symbolic name of a code ("VD_E_ABORT", "NOERROR"); "?" if unknown.
 */
VDI_EXPORT const char *vdi_error_name(int code);
/** @brief One-line English description of a code; never NULL. */
VDI_EXPORT const char *vdi_strerror(int code);

/* ============================================================ client side */

typedef struct vdi_set vdi_set_t;    /**< IClientVirtualDeviceSet2 */
typedef struct vdi_device vdi_dev_t; /**< IClientVirtualDevice */
/** The first name of vdi_dev_t, kept so that no client breaks. */
typedef struct vdi_device vdi_device_t;

/** @brief Make a set object (state DNE).
 * @return 0 or VD_E_MEMORY. */
VDI_EXPORT int vdi_set_new(vdi_set_t **out);
/** @brief Destroy a set object; closes it first if it is open. */
VDI_EXPORT void vdi_set_free(vdi_set_t *set);

/** @brief Allow processes whose groups include @p gid to attach (call before
 * create).  By default only the creating user may. @return 0, VD_E_PROTOCOL
 * if the set is already created. */
VDI_EXPORT int vdi_set_allow_group(vdi_set_t *set, gid_t gid);

/** @brief Create the set: the client's side of the rendezvous.
 * @param name 1..VDI_MAX_NAME bytes, printable, no '/' or '\\'.
 * @param cfg  requested configuration; server fields should be 0.
 * @return 0; VD_E_INVALID (bad name or value); VD_E_NOTSUPPORTED (feature
 * mix); VD_E_PROTOCOL (this object already holds a set); VD_E_BUSY (a live
 * set of that name exists); VD_E_MEMORY; VD_E_UNEXPECTED (system error). */
VDI_EXPORT int vdi_set_create(vdi_set_t *set, const char *name, VDConfig *cfg);
/** @brief vdi_set_create in a named instance (NULL or "" = default). */
VDI_EXPORT int vdi_set_create_ex(vdi_set_t *set, const char *instance,
                                 const char *name, VDConfig *cfg);

/** @brief Wait until the server has configured the set.
 * @param timeout_ms 0 polls; negative or INFINITE waits forever.
 * @param[out] cfg the configuration the server chose.
 * @return 0; VD_E_TIMEOUT; VD_E_ABORT; VD_E_PROTOCOL (no set). */
VDI_EXPORT int vdi_set_get_configuration(vdi_set_t *set, int64_t timeout_ms,
                                         VDConfig *cfg);

/** @brief Open a device by name (the first is named like the set).
 * @return 0; VD_E_OPEN (all open); VD_E_INVALID (no such device);
 * VD_E_PROTOCOL (wrong state or already open); VD_E_ABORT.  On failure
 * *out is NULL.  The device object belongs to the set. */
VDI_EXPORT int vdi_set_open_device(vdi_set_t *set, const char *name,
                                   vdi_dev_t **out);

/** @brief Release the set.  @return 0; VD_E_PROTOCOL (nothing open);
 * VD_E_OPEN (devices still open: the set was aborted, and released). */
VDI_EXPORT int vdi_set_close(vdi_set_t *set);

/** @brief Abort the whole set from the client side.
 * @return 0 (also when already aborted); VD_E_PROTOCOL in DNE. */
VDI_EXPORT int vdi_set_signal_abort(vdi_set_t *set);

/** @brief Attach as a secondary client to a set another process created
 * and configured.  @return 0; VD_E_PROTOCOL (already open here, no such
 * set, or not configured yet); VD_E_SECURITY; VD_E_ABORT; VD_E_INVALID. */
VDI_EXPORT int vdi_set_open_in_secondary(vdi_set_t *set, const char *name);
VDI_EXPORT int vdi_set_open_in_secondary_ex(vdi_set_t *set,
                                            const char *instance,
                                            const char *name);

/** @brief A process-independent handle for a buffer address.
 * @return 0; VD_E_PROTOCOL (set not open); VD_E_INVALID (not a buffer). */
VDI_EXPORT int vdi_set_get_buffer_handle(vdi_set_t *set, const uint8_t *buf,
                                         uint32_t *handle);
/** @brief The address of a buffer handle in this process.
 * @return 0; VD_E_PROTOCOL; VD_E_INVALID (bad handle). */
VDI_EXPORT int vdi_set_map_buffer_handle(vdi_set_t *set, uint32_t handle,
                                         uint8_t **buf);

/** @brief Wait for the next command on a device.
 * @param timeout_ms 0 polls; negative or INFINITE waits forever.
 * @param[out] cmd read-only; pass it back to vdi_dev_complete_command.
 * @return 0; VD_E_TIMEOUT; VD_E_CLOSE (server closed the device: normal
 * end); VD_E_ABORT; VD_E_PROTOCOL (device not active). */
VDI_EXPORT int vdi_dev_get_command(vdi_dev_t *dev, int64_t timeout_ms,
                                   VDC_Command **cmd);

/** @brief Report the result of a command.
 * @param code ERROR_SUCCESS or another Win32 code (non-zero puts the device
 *        in the IO-ERROR state until the server clears it).
 * @param bytes bytes transferred (Read/Write).  @param position result
 *        position (GetPosition/SetPosition).
 * @return 0; VD_E_INVALID (not an outstanding command of this device);
 * VD_E_ABORT; VD_E_PROTOCOL (device not open). */
VDI_EXPORT int vdi_dev_complete_command(vdi_dev_t *dev, VDC_Command *cmd,
                                        uint32_t code, uint32_t bytes,
                                        uint64_t position);

/* ============================================================ server side */

typedef struct vdi_srvset vdi_srv_t;    /**< IServerVirtualDeviceSet2 */
typedef struct vdi_srvdev vdi_srvdev_t; /**< IServerVirtualDevice */
/** The first name of vdi_srv_t, kept so that no client breaks. */
typedef struct vdi_srvset vdi_srvset_t;

VDI_EXPORT int vdi_srv_new(vdi_srv_t **out);
VDI_EXPORT void vdi_srv_free(vdi_srv_t *srv);

/** @brief Attach to the set a client created.  @return 0; VD_E_INVALID (no
 * accessible set of that name); VD_E_SECURITY (owner not trusted);
 * VD_E_PROTOCOL (already open, or the set is not fresh). */
VDI_EXPORT int vdi_srv_open(vdi_srv_t *srv, const char *instance,
                            const char *name);
/** @brief The configuration the client asked for (or, once configured, the
 * chosen one). @return 0; VD_E_ABORT; VD_E_PROTOCOL. */
VDI_EXPORT int vdi_srv_get_configuration(vdi_srv_t *srv, VDConfig *cfg);
/** @brief Fix features (VDF_WriteMedia or VDF_ReadMedia, optionally
 * VDF_CompleteEnabled), block size, alignment (0 = block size), maximum
 * transfer size.  Parameter order is the header's.  @return 0;
 * VD_E_INVALID (bad value); VD_E_ABORT; VD_E_PROTOCOL. */
VDI_EXPORT int vdi_srv_begin_configuration(vdi_srv_t *srv, uint32_t features,
                                           uint32_t block_size,
                                           uint32_t alignment,
                                           uint32_t max_transfer_size,
                                           uint32_t timeout_ms);
/** @brief Declare @p count buffers of @p size bytes.  During configuration
 * requests are summed; afterwards each call adds a segment at once.
 * @return 0; VD_E_INVALID; VD_E_MEMORY; VD_E_ABORT; VD_E_PROTOCOL. */
VDI_EXPORT int vdi_srv_request_buffers(vdi_srv_t *srv, uint32_t size,
                                       uint32_t alignment, uint32_t count);
/** @brief How many buffers of that size and alignment are free now. */
VDI_EXPORT int vdi_srv_query_available_buffers(vdi_srv_t *srv, uint32_t size,
                                               uint32_t alignment,
                                               uint32_t *count);
/** @brief Allocate the buffer area and release the client's
 * GetConfiguration. @return 0; VD_E_MEMORY; VD_E_ABORT; VD_E_PROTOCOL. */
VDI_EXPORT int vdi_srv_end_configuration(vdi_srv_t *srv);
/** @brief Open the next device and give it @p name (the first device's
 * name is the set's).  @return 0; VD_E_OPEN (all open); VD_E_INVALID (bad
 * or duplicate name); VD_E_ABORT; VD_E_PROTOCOL. */
VDI_EXPORT int vdi_srv_open_device(vdi_srv_t *srv, const char *name,
                                   vdi_srvdev_t **out);
/** @brief Body of the completion-agent thread: runs completion routines
 * until every device is closed with nothing outstanding (0), or the set is
 * aborted or closed: outstanding commands are then completed with
 * ERROR_OPERATION_ABORTED and the set's sticky code is returned (VD_E_ABORT,
 * or VD_E_PROTOCOL when the client broke the protocol). */
VDI_EXPORT int vdi_srv_execute_completion_agent(vdi_srv_t *srv);
/** @brief Take a buffer of at least @p size bytes; its data start is
 * aligned to max(set alignment, @p alignment).  @return 0; VD_E_MEMORY (none
 * free); VD_E_INVALID; VD_E_ABORT; VD_E_PROTOCOL. */
VDI_EXPORT int vdi_srv_allocate_buffer(vdi_srv_t *srv, uint8_t **buf,
                                       uint32_t size, uint32_t alignment);
/** @brief Give a buffer back.  @return 0; VD_E_INVALID. */
VDI_EXPORT int vdi_srv_free_buffer(vdi_srv_t *srv, uint8_t *buf, uint32_t size);
/** @brief 1 if @p buf is the data start of one of the set's buffers. */
VDI_EXPORT int vdi_srv_is_shared_buffer(vdi_srv_t *srv, const uint8_t *buf);
/** @brief Abort the set from the server side.  @return 0 (also again). */
VDI_EXPORT int vdi_srv_signal_abort(vdi_srv_t *srv);
/** @brief Whether the client that created the set called vdi_set_close
 * (IClientVirtualDeviceSet::Close; vdi_set_free closes too), as its
 * library reports it in the shared memory; readable until vdi_srv_close,
 * also after the client has exited.  A report, not a proof: a hostile
 * client can write it.  @return 1 (closed); 0 (not, or not yet);
 * VD_E_NOTSUPPORTED (the client's library does not report it);
 * VD_E_PROTOCOL (no set open). */
VDI_EXPORT int vdi_srv_client_closed(vdi_srv_t *srv);
/** @brief Release everything.  @return 0; VD_E_PROTOCOL (nothing open, or
 * devices were still open: abort processing was done). */
VDI_EXPORT int vdi_srv_close(vdi_srv_t *srv);

/** @brief Queue a command to the client.  On failure the completion routine
 * is called at once from this thread with the mapped code.
 * @return 0; VD_E_QUEUE_FULL; VD_E_IO_ERROR; VD_E_PROTOCOL; VD_E_ABORT;
 * VD_E_INVALID (bad buffer or command code). */
VDI_EXPORT int vdi_srvdev_send_command(vdi_srvdev_t *dev, VDS_Command *cmd);
/** @brief Close the device; the client's GetCommand then returns
 * VD_E_CLOSE.  @return 0; VD_E_CLOSE (already); VD_E_ABORT. */
VDI_EXPORT int vdi_srvdev_close_device(vdi_srvdev_t *dev);

/* ========================================================== tuning */

/** @brief How long (µs) a waiter spins before it sleeps in the kernel.
 * Process-wide (every set of this process); the default is 50, or
 * $VDI_SPIN_US when set. */
VDI_EXPORT void vdi_lib_set_spin_us(uint32_t us);
/** @brief The first name of vdi_lib_set_spin_us, kept so that no client
 * breaks; despite its prefix it is not a method of a set. */
VDI_EXPORT void vdi_set_spin_us(uint32_t us);

#ifdef __cplusplus
}
#endif
#endif /* OPENVDI_VDI_H */
