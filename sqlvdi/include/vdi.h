/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlvdi/include/vdi.h - the SQL Server on Linux VDI client SDK (C++), as
 * provided by openvdi's libsqlvdi.so (a drop-in for the SDK library; build
 * with -lsqlvdi).  openvdi's C API is the other vdi.h, include/vdi.h.
 *
 * A backup application (the *client*) creates a named virtual device set
 * with ClientVirtualDeviceSet::Create, starts a BACKUP or RESTORE statement
 * naming it (VIRTUAL_DEVICE='name'), waits in GetConfiguration until the
 * database engine (the *server*) has attached and configured it, opens each
 * device with OpenDevice, and then services each device: GetCommand returns
 * the next command (Read, Write, Flush, ...), the client performs it on its
 * own storage and reports the result with CompleteCommand, until GetCommand
 * returns VD_E_CLOSE (normal end) or VD_E_ABORT.  Then Close.
 *
 * Linux conventions: names are char strings; timeouts are milliseconds in a
 * time_t, where any negative value waits forever and 0 polls; every method
 * returns 0 or a negative VD_E_* code (vdierror.h); there are no named
 * instances (no CreateEx / OpenInSecondaryEx).
 *
 * This is openvdi's own header, written from the published facts of the
 * interface: the class layouts (one pointer each), member signatures, struct
 * layouts and constant values are those of the SDK, so code built against
 * either header runs against either library.
 */
#ifndef OPENVDI_SQLVDI_VDI_H
#define OPENVDI_SQLVDI_VDI_H

#include <stdint.h>
#include <time.h>

#include "vdierror.h"

#ifndef __cplusplus
#error "vdi.h is the C++ SDK header; C programs use openvdi's <vdi.h> (libvdi)"
#endif

#if defined(__GNUC__)
#define SQLVDI_API __attribute__((visibility("default")))
#else
#define SQLVDI_API
#endif

/* ------------------------------------------------ completion codes (Win32) */

#ifndef ERROR_SUCCESS
#define ERROR_SUCCESS 0
#endif
#ifndef ERROR_ARENA_TRASHED
#define ERROR_ARENA_TRASHED 7
#endif
#ifndef ERROR_HANDLE_EOF
#define ERROR_HANDLE_EOF 38
#endif
#ifndef ERROR_HANDLE_DISK_FULL
#define ERROR_HANDLE_DISK_FULL 39
#endif
#ifndef ERROR_NOT_SUPPORTED
#define ERROR_NOT_SUPPORTED 50
#endif
#ifndef ERROR_DISK_FULL
#define ERROR_DISK_FULL 112
#endif
#ifndef ERROR_OPERATION_ABORTED
#define ERROR_OPERATION_ABORTED 995
#endif

/* ---------------------------------------------------------- feature bits */

enum VDFeatures {
  VDF_Removable = 0x1,
  VDF_Rewind = 0x02,
  VDF_Position = 0x10,
  VDF_SkipBlocks = 0x20,
  VDF_ReversePosition = 0x40,
  VDF_Discard = 0x80,
  VDF_FileMarks = 0x100,
  VDF_RandomAccess = 0x200,
  VDF_SnapshotPrepare = 0x400,
  VDF_EnumFrozenFiles = 0x800,
  VDF_VSSWriter = 0x1000,
  VDF_RequestComplete = 0x2000,  /* client asks for VDC_Complete */
  VDF_WriteMedia = 0x10000,      /* server: a BACKUP writes media */
  VDF_ReadMedia = 0x20000,       /* server: a RESTORE reads media */
  VDF_CompleteEnabled = 0x40000, /* server will send VDC_Complete */
  VDF_LatchStats = 0x80000000u,

  /* Device modes: a client asks for one of these. */
  VDF_LikePipe = 0,
  VDF_LikeTape = VDF_FileMarks | VDF_Removable | VDF_Rewind | VDF_Position |
                 VDF_SkipBlocks | VDF_ReversePosition,
  VDF_LikeDisk = VDF_RandomAccess
};

/* ----------------------------------------------------------- commands */

enum VDCommands {
  VDC_Read = 1,
  VDC_Write,
  VDC_ClearError,
  VDC_Rewind,
  VDC_WriteMark,
  VDC_SkipMarks,
  VDC_SkipBlocks,
  VDC_Load,
  VDC_GetPosition,
  VDC_SetPosition,
  VDC_Discard,
  VDC_Flush,
  VDC_Snapshot,
  VDC_MountSnapshot,
  VDC_PrepareToFreeze,
  VDC_FileInfoBegin,
  VDC_FileInfoEnd,
  VDC_GetError,
  VDC_Complete
};

/* SetPosition's "whence" in disk-like mode, carried in VDC_Command.size. */
enum VDWhence { VDC_Beginning, VDC_Current, VDC_End };

/* ------------------------------------------------------- structures */

#pragma pack(push, 8)

/* The set's configuration: 11 x 32 bits, 44 bytes.  The client fills the
 * first seven and zeroes the rest; GetConfiguration returns the server's. */
struct VDConfig {
  uint32_t deviceCount;           /* 1..64 */
  uint32_t features;              /* VDF_* */
  uint32_t prefixZoneSize;        /* bytes reserved before each buffer */
  uint32_t alignment;             /* minimum data alignment, power of 2 */
  uint32_t softFileMarkBlockSize; /* with VDF_FileMarks */
  uint32_t EOMWarningSize;        /* end-of-media warning zone */
  uint32_t serverTimeOut;         /* ms; 0 = infinite */
  uint32_t blockSize;             /* server: BLOCKSIZE */
  uint32_t maxIODepth;            /* server: always 4 */
  uint32_t maxTransferSize;       /* server: MAXTRANSFERSIZE */
  uint32_t bufferAreaSize;        /* server: size of the buffer area */
};

/* A command as GetCommand returns it (read-only for the client). */
struct VDC_Command {
  int32_t commandCode; /* VDC_* */
  int32_t size;        /* bytes for Read/Write; count or whence otherwise */
  int64_t position;    /* SetPosition target; Read/Write offset if disk-like */
  uint8_t *buffer;     /* data, in memory shared with the server */
};

/* A command as the server builds it (declared by the SDK for reference). */
struct VDS_Command {
  int32_t commandCode;
  int32_t size;
  int64_t inPosition;
  int64_t outPosition;
  uint8_t *buffer;
  uint8_t *completionRoutine; /* void (*)(VDS_Command *) */
  uint8_t *completionContext;
  int32_t completionCode;
  int32_t bytesTransferred;
};

#pragma pack(pop)

/* ------------------------------------------------------------ classes */

class CVDS; /* implementation of a set (private to the library) */
class CVD;  /* implementation of a device (private to the library) */
class ClientVirtualDevice;

/* A virtual device set, client side.  Make one with new; one object can
 * carry one set at a time, and can Create again after Close. */
class SQLVDI_API ClientVirtualDeviceSet {
public:
  ClientVirtualDeviceSet();
  ~ClientVirtualDeviceSet();

  /* Create the set @name with the requested configuration. */
  int Create(char *name, VDConfig *cfg);
  /* Wait (timeout ms, negative = forever) until the server configured it. */
  int GetConfiguration(time_t timeout, VDConfig *cfg);
  /* Open a device by name; the first is named like the set.  The device
   * object belongs to the set: it stays valid until Close. */
  int OpenDevice(char *name, ClientVirtualDevice **ppVirtualDevice);
  /* Release the set (VD_E_OPEN if devices were still open: aborted). */
  int Close();
  /* Abort the whole set; blocked calls on both sides return VD_E_ABORT. */
  int SignalAbort();
  /* Attach this process to a set another process created. */
  int OpenInSecondary(char *setName);
  /* A handle for a buffer address that any process of the set can map. */
  int GetBufferHandle(uint8_t *pBuffer, unsigned int *pBufferHandle);
  /* The address, in this process, of a buffer handle. */
  int MapBufferHandle(int dwBuffer, uint8_t **ppBuffer);
  /* Kept for the SDK's ABI; the library tracks closed devices itself. */
  void RegisterDeviceClosed();

private:
  ClientVirtualDeviceSet(const ClientVirtualDeviceSet &);
  ClientVirtualDeviceSet &operator=(const ClientVirtualDeviceSet &);
  CVDS *impl_;
};

/* One device of a set, as returned by ClientVirtualDeviceSet::OpenDevice. */
class SQLVDI_API ClientVirtualDevice {
public:
  ClientVirtualDevice();
  ~ClientVirtualDevice();

  /* Wait (timeout ms, negative = forever, 0 polls) for the next command. */
  int GetCommand(time_t timeout, VDC_Command **ppCmd);
  /* Report a command's result: a Win32 code (ERROR_SUCCESS, ...), the
   * bytes transferred (Read/Write) and a position (Get/SetPosition). */
  int CompleteCommand(VDC_Command *pCmd, int completionCode,
                      unsigned long bytesTransferred, int64_t position);

private:
  friend class CVDS;
  ClientVirtualDevice(const ClientVirtualDevice &);
  ClientVirtualDevice &operator=(const ClientVirtualDevice &);
  CVD *impl_;
};

#endif /* OPENVDI_SQLVDI_VDI_H */
