/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sdk_types.cpp - the type of every field of every structure of the SDK
 * face (sqlvdi/include/vdi.h), and the signature of every member of its
 * two classes, checked against Microsoft's SQL Server on Linux vdi.h with
 * std::is_same in static asserts: a mismatch does not build.
 *
 * This face keeps the Linux header's types, which differ from the Windows
 * header's on purpose: VDC_Command and VDS_Command hold int32_t / int64_t
 * where Windows has DWORD / DWORDLONG (the C face, include/vdi.h, follows
 * Windows; tests/test-com-types.c checks it).  The layouts are the same.
 *
 * Run by sqlvdi_field_types (tests/test-sqlvdi-abi.c); it exits 0.
 */
#include "vdi.h"
#include "vdierror.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <type_traits>

#define FIELD_IS(S, f, T)                                                      \
  static_assert(std::is_same<decltype(S::f), T>::value, #S "." #f " is " #T)
#define MEMBER_IS(C, m, T)                                                     \
  static_assert(std::is_same<decltype(&C::m), T>::value, #C "::" #m)

FIELD_IS(VDConfig, deviceCount, uint32_t);
FIELD_IS(VDConfig, features, uint32_t);
FIELD_IS(VDConfig, prefixZoneSize, uint32_t);
FIELD_IS(VDConfig, alignment, uint32_t);
FIELD_IS(VDConfig, softFileMarkBlockSize, uint32_t);
FIELD_IS(VDConfig, EOMWarningSize, uint32_t);
FIELD_IS(VDConfig, serverTimeOut, uint32_t);
FIELD_IS(VDConfig, blockSize, uint32_t);
FIELD_IS(VDConfig, maxIODepth, uint32_t);
FIELD_IS(VDConfig, maxTransferSize, uint32_t);
FIELD_IS(VDConfig, bufferAreaSize, uint32_t);
static_assert(sizeof(VDConfig) == 11 * sizeof(uint32_t), "VDConfig: 11");

FIELD_IS(VDC_Command, commandCode, int32_t);
FIELD_IS(VDC_Command, size, int32_t);
FIELD_IS(VDC_Command, position, int64_t);
FIELD_IS(VDC_Command, buffer, uint8_t *);
static_assert(offsetof(VDC_Command, buffer) + sizeof(uint8_t *) ==
                  sizeof(VDC_Command),
              "VDC_Command: 4 fields");

FIELD_IS(VDS_Command, commandCode, int32_t);
FIELD_IS(VDS_Command, size, int32_t);
FIELD_IS(VDS_Command, inPosition, int64_t);
FIELD_IS(VDS_Command, outPosition, int64_t);
FIELD_IS(VDS_Command, buffer, uint8_t *);
FIELD_IS(VDS_Command, completionRoutine, uint8_t *);
FIELD_IS(VDS_Command, completionContext, uint8_t *);
FIELD_IS(VDS_Command, completionCode, int32_t);
FIELD_IS(VDS_Command, bytesTransferred, int32_t);
static_assert(offsetof(VDS_Command, bytesTransferred) + sizeof(int32_t) ==
                  sizeof(VDS_Command),
              "VDS_Command: 9 fields");

typedef ClientVirtualDeviceSet Set;
typedef ClientVirtualDevice Dev;
MEMBER_IS(Set, Create, int (Set::*)(char *, VDConfig *));
MEMBER_IS(Set, GetConfiguration, int (Set::*)(time_t, VDConfig *));
MEMBER_IS(Set, OpenDevice, int (Set::*)(char *, Dev **));
MEMBER_IS(Set, Close, int (Set::*)());
MEMBER_IS(Set, SignalAbort, int (Set::*)());
MEMBER_IS(Set, OpenInSecondary, int (Set::*)(char *));
MEMBER_IS(Set, GetBufferHandle, int (Set::*)(uint8_t *, unsigned int *));
MEMBER_IS(Set, MapBufferHandle, int (Set::*)(int, uint8_t **));
MEMBER_IS(Set, RegisterDeviceClosed, void (Set::*)());
MEMBER_IS(Dev, GetCommand, int (Dev::*)(time_t, VDC_Command **));
MEMBER_IS(Dev, CompleteCommand,
          int (Dev::*)(VDC_Command *, int, unsigned long, int64_t));

int main() {
  return 0;
}
