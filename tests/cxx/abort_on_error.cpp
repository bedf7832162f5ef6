/* SPDX-License-Identifier: Apache-2.0 */
/*
 * abort_on_error.cpp - a Linux VDI backup client that gives up when its
 * storage fails, the way clients are told to: SignalAbort, stop touching
 * buffers, Close.  Built only against the SDK header and -lsqlvdi.
 *
 *   abort_on_error SETNAME OUTFILE FAIL_AFTER
 *
 * Writes go to OUTFILE until FAIL_AFTER bytes are stored; the Write that
 * would pass that mark goes to /dev/full, which fails for real (ENOSPC).
 * Exit status 0 when the abort behaved as documented: SignalAbort returns
 * 0 (again 0 when repeated), the device's GetCommand and CompleteCommand
 * then return VD_E_ABORT, and Close releases the set.
 */
#include "vdi.h"
#include "vdierror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

#define EXPECT(what, rc, want)                                                 \
  do {                                                                         \
    int r_ = (rc);                                                             \
    if (r_ != (want)) {                                                        \
      fprintf(stderr, "%s: 0x%08x, expected 0x%08x\n", what, (unsigned)r_,     \
              (unsigned)(want));                                               \
      status = 1;                                                              \
    }                                                                          \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s SETNAME OUTFILE FAIL_AFTER\n", argv[0]);
    return 2;
  }
  char *name = argv[1];
  long long fail_after = atoll(argv[3]);
  int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int full = open("/dev/full", O_WRONLY);
  if (fd < 0 || full < 0) {
    perror("open");
    return 1;
  }
  ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  cfg.features = VDF_LikePipe;
  int status = 0, rc = vds->Create(name, &cfg);
  if (rc != 0) {
    fprintf(stderr, "Create: 0x%08x\n", (unsigned)rc);
    return 1;
  }
  for (int tries = 0; tries < 20; tries++)
    if ((rc = vds->GetConfiguration(1000, &cfg)) != VD_E_TIMEOUT) break;
  ClientVirtualDevice *vd = NULL;
  if (rc != 0 || (rc = vds->OpenDevice(name, &vd)) != 0) {
    fprintf(stderr, "setup: 0x%08x\n", (unsigned)rc);
    vds->Close();
    return 1;
  }

  VDC_Command *cmd;
  long long stored = 0;
  int failed = 0;
  while (!failed && (rc = vd->GetCommand(-1, &cmd)) == 0) {
    int code = ERROR_SUCCESS;
    unsigned long bytes = 0;
    if (cmd->commandCode == VDC_Write) {
      int out = stored + cmd->size > fail_after ? full : fd;
      int err = write_all(out, cmd->buffer, (size_t)cmd->size);
      if (err != 0) {
        fprintf(stderr, "write failed after %lld bytes: %s\n", stored,
                strerror(err));
        failed = 1;
        break;
      }
      stored += cmd->size;
      bytes = (unsigned long)cmd->size;
    } else if (cmd->commandCode != VDC_Flush) {
      code = ERROR_NOT_SUPPORTED;
    }
    if ((rc = vd->CompleteCommand(cmd, code, bytes, 0)) != 0) break;
  }
  if (!failed) {
    fprintf(stderr, "no write failed (GetCommand 0x%08x)\n", (unsigned)rc);
    return 1;
  }
  /* The failed Write is left uncompleted: the abort completes it toward
   * the server with ERROR_OPERATION_ABORTED. */
  EXPECT("SignalAbort", vds->SignalAbort(), 0);
  EXPECT("GetCommand after abort", vd->GetCommand(5000, &cmd), VD_E_ABORT);
  EXPECT("CompleteCommand after abort",
         vd->CompleteCommand(cmd, ERROR_DISK_FULL, 0, 0), VD_E_ABORT);
  EXPECT("SignalAbort again", vds->SignalAbort(), 0);
  rc = vds->Close();
  if (rc != 0 && rc != VD_E_OPEN) EXPECT("Close", rc, 0);
  EXPECT("Close again", vds->Close(), VD_E_PROTOCOL);
  delete vds;
  printf("stored %lld bytes, then aborted\n", stored);
  return status;
}
