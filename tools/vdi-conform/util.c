// SPDX-License-Identifier: Apache-2.0
/*
 * util.c - names of Win32 completion codes and VDI commands for the
 * evidence, and monotonic time for every deadline of the kit.
 */
#include "conform.h"

#include <errno.h>
#include <time.h>

const char *win32_name(uint32_t code) {
  switch (code) {
  case ERROR_SUCCESS:
    return "ERROR_SUCCESS";
  case ERROR_INVALID_HANDLE:
    return "ERROR_INVALID_HANDLE";
  case ERROR_BAD_ENVIRONMENT:
    return "ERROR_BAD_ENVIRONMENT";
  case ERROR_HANDLE_EOF:
    return "ERROR_HANDLE_EOF";
  case ERROR_HANDLE_DISK_FULL:
    return "ERROR_HANDLE_DISK_FULL";
  case ERROR_NOT_SUPPORTED:
    return "ERROR_NOT_SUPPORTED";
  case ERROR_DISK_FULL:
    return "ERROR_DISK_FULL";
  case ERROR_OPERATION_ABORTED:
    return "ERROR_OPERATION_ABORTED";
  case ERROR_END_OF_MEDIA:
    return "ERROR_END_OF_MEDIA";
  case ERROR_NO_DATA_DETECTED:
    return "ERROR_NO_DATA_DETECTED";
  case ERROR_IO_DEVICE:
    return "ERROR_IO_DEVICE";
  case ERROR_EOM_OVERFLOW:
    return "ERROR_EOM_OVERFLOW";
  default:
    return "?";
  }
}

const char *command_name(uint32_t code) {
  static const char *const n[] = {
      "?",
      "VDC_Read",
      "VDC_Write",
      "VDC_ClearError",
      "VDC_Rewind",
      "VDC_WriteMark",
      "VDC_SkipMarks",
      "VDC_SkipBlocks",
      "VDC_Load",
      "VDC_GetPosition",
      "VDC_SetPosition",
      "VDC_Discard",
      "VDC_Flush",
      "VDC_Snapshot",
      "VDC_MountSnapshot",
      "VDC_PrepareToFreeze",
      "VDC_FileInfoBegin",
      "VDC_FileInfoEnd",
      "VDC_GetError",
      "VDC_Complete",
  };
  return code < sizeof n / sizeof n[0] ? n[code] : "?";
}

int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
