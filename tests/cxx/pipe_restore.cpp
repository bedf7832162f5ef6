/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipe_restore.cpp - a Linux VDI restore client of the usual shape, built
 * only against the SDK header and -lsqlvdi: one pipe-like device fed from
 * a file.  A Read the file cannot fill completes with ERROR_HANDLE_EOF and
 * the bytes it did get; a Read at the end gets ERROR_HANDLE_EOF and 0.
 *
 *   pipe_restore SETNAME INFILE
 *
 * Exit status 0 when the device ended with VD_E_CLOSE.
 */
#include "vdi.h"
#include "vdierror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read up to n bytes; fewer only at end of file.  -1 on error. */
static long read_full(int fd, uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (long)got;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SETNAME INFILE\n", argv[0]);
    return 2;
  }
  char *name = argv[1];
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) {
    perror(argv[2]);
    return 1;
  }
  ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  cfg.features = VDF_LikePipe;
  int rc = vds->Create(name, &cfg);
  if (rc != 0) {
    fprintf(stderr, "Create: 0x%08x\n", (unsigned)rc);
    return 1;
  }
  /* Now the engine can be told to run its statement. */
  printf("created set %s\n", name);
  fflush(stdout);
  for (int tries = 0; tries < 20; tries++)
    if ((rc = vds->GetConfiguration(1000, &cfg)) != VD_E_TIMEOUT) break;
  if (rc != 0) {
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
  long long total = 0;
  int eofs = 0;
  while ((rc = vd->GetCommand(-1, &cmd)) == 0) {
    int code = ERROR_SUCCESS;
    unsigned long bytes = 0;
    switch (cmd->commandCode) {
    case VDC_Read: {
      long n = read_full(fd, cmd->buffer, (size_t)cmd->size);
      if (n < 0) {
        code = ERROR_NOT_SUPPORTED;
      } else {
        bytes = (unsigned long)n;
        total += n;
        if (n < cmd->size) {
          code = ERROR_HANDLE_EOF;
          eofs++;
        }
      }
      break;
    }
    case VDC_Flush:
    case VDC_ClearError:
      break;
    default:
      code = ERROR_NOT_SUPPORTED;
      break;
    }
    if ((rc = vd->CompleteCommand(cmd, code, bytes, 0)) != 0) {
      fprintf(stderr, "CompleteCommand: 0x%08x\n", (unsigned)rc);
      break;
    }
  }
  int ok = rc == VD_E_CLOSE;
  if (!ok) fprintf(stderr, "GetCommand: 0x%08x\n", (unsigned)rc);
  if ((rc = vds->Close()) != 0) {
    fprintf(stderr, "Close: 0x%08x\n", (unsigned)rc);
    ok = 0;
  }
  delete vds;
  close(fd);
  printf("restored %lld bytes, %d end-of-file completions\n", total, eofs);
  return ok ? 0 : 1;
}
