/* SPDX-License-Identifier: Apache-2.0 */
/*
 * short_timeout.cpp - a Linux VDI backup client whose device loop asks
 * GetCommand for a 90 ms timeout and treats VD_E_TIMEOUT as the end of the
 * operation, as a widely copied SDK sample does.  Built only against the
 * SDK header and -lsqlvdi.  It works as long as the server never leaves
 * the device idle for 90 ms; if it does, the client reports the timeout
 * and how long GetCommand waited, aborts and exits 2.
 *
 *   short_timeout SETNAME OUTFILE
 */
#include "vdi.h"
#include "vdierror.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SETNAME OUTFILE\n", argv[0]);
    return 2;
  }
  char *name = argv[1];
  FILE *out = fopen(argv[2], "wb");
  if (!out) {
    perror(argv[2]);
    return 1;
  }
  ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  int rc = vds->Create(name, &cfg);
  if (rc != 0) {
    fprintf(stderr, "Create: 0x%08x\n", (unsigned)rc);
    return 1;
  }
  if ((rc = vds->GetConfiguration(10000, &cfg)) != 0) {
    fprintf(stderr, "GetConfiguration: 0x%08x\n", (unsigned)rc);
    vds->Close();
    return 1;
  }
  ClientVirtualDevice *vd = NULL;
  if ((rc = vds->OpenDevice(name, &vd)) != 0) {
    fprintf(stderr, "OpenDevice: 0x%08x\n", (unsigned)rc);
    vds->Close();
    return 1;
  }

  VDC_Command *cmd;
  long long total = 0, waited = 0, longest = 0, t0 = now_ms();
  while ((rc = vd->GetCommand(90, &cmd)) == 0) {
    waited = now_ms() - t0;
    if (waited > longest) longest = waited;
    int code = ERROR_SUCCESS;
    unsigned long bytes = 0;
    if (cmd->commandCode == VDC_Write) {
      if (fwrite(cmd->buffer, 1, (size_t)cmd->size, out) == (size_t)cmd->size) {
        bytes = (unsigned long)cmd->size;
        total += cmd->size;
      } else {
        code = ERROR_DISK_FULL;
      }
    } else if (cmd->commandCode == VDC_Flush) {
      if (fflush(out) != 0) code = ERROR_DISK_FULL;
    } else {
      code = ERROR_NOT_SUPPORTED;
    }
    if ((rc = vd->CompleteCommand(cmd, code, bytes, 0)) != 0) break;
    t0 = now_ms();
  }
  int status = 0;
  if (rc == VD_E_TIMEOUT) {
    printf("GetCommand: VD_E_TIMEOUT after %lld ms\n", now_ms() - t0);
    vds->SignalAbort();
    status = 2;
  } else if (rc != VD_E_CLOSE) {
    fprintf(stderr, "GetCommand: 0x%08x\n", (unsigned)rc);
    status = 1;
  }
  if (vds->Close() != 0 && status == 0) status = 1;
  delete vds;
  if (fclose(out) != 0 && status == 0) status = 1;
  printf("%lld bytes, longest wait for a command %lld ms\n", total, longest);
  return status;
}
