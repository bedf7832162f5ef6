/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdierror.h - return codes of the SQL Server on Linux VDI client SDK, as
 * provided by openvdi's libsqlvdi.so.
 *
 * Every method of ClientVirtualDeviceSet / ClientVirtualDevice returns an
 * int: 0 on success, otherwise one of the negative VD_E_* codes below.  The
 * numbers are the interface's (facility 0x77, severity bit set, so 0x8077xxxx
 * read as an int) and never change.  Like the SDK, this header defines no
 * NOERROR, SUCCEEDED or INFINITE: compare with 0, and pass any negative
 * timeout to wait forever.
 */
#ifndef OPENVDI_SQLVDI_VDIERROR_H
#define OPENVDI_SQLVDI_VDIERROR_H

/* On Linux an "HRESULT" is a plain int with the Windows bit pattern. */
#ifndef MAKE_HRESULT
#define MAKE_HRESULT(sev, fac, code)                                           \
  ((int)(((unsigned int)(sev) << 31) | ((unsigned int)(fac) << 16) |           \
         (unsigned int)(code)))
#endif

#define VD_ERROR(code) MAKE_HRESULT(1, 0x77, code)

#define VD_E_NOTOPEN       VD_ERROR(2)  /* 0x80770002: object not open */
#define VD_E_TIMEOUT       VD_ERROR(3)  /* 0x80770003: the wait timed out */
#define VD_E_ABORT         VD_ERROR(4)  /* 0x80770004: abort in effect */
#define VD_E_SECURITY      VD_ERROR(5)  /* 0x80770005: access refused */
#define VD_E_INVALID       VD_ERROR(6)  /* 0x80770006: invalid parameter */
#define VD_E_INSTANCE_NAME VD_ERROR(7)  /* 0x80770007: unknown instance */
#define VD_E_NOTSUPPORTED  VD_ERROR(9)  /* 0x80770009: bad configuration */
#define VD_E_MEMORY        VD_ERROR(10) /* 0x8077000A: out of memory */
#define VD_E_UNEXPECTED    VD_ERROR(11) /* 0x8077000B: internal error */
#define VD_E_PROTOCOL      VD_ERROR(12) /* 0x8077000C: not legal now */
#define VD_E_OPEN          VD_ERROR(13) /* 0x8077000D: all devices open */
#define VD_E_CLOSE         VD_ERROR(14) /* 0x8077000E: device now closed */
#define VD_E_BUSY          VD_ERROR(15) /* 0x8077000F: resource busy */

#endif /* OPENVDI_SQLVDI_VDIERROR_H */
