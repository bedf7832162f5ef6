/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipe_backup.cpp - a Linux VDI backup client of the usual shape, built
 * only against the SDK header (vdi.h, vdierror.h) and -lsqlvdi: one
 * pipe-like device, every Write appended to a file, Flush/Complete fsync.
 *
 *   pipe_backup SETNAME OUTFILE [REPEAT]
 *
 * With REPEAT, the same ClientVirtualDeviceSet object runs REPEAT backups
 * in a row (Create ... Close, Create again), writing OUTFILE.0, OUTFILE.1...
 * Exit status 0 when every backup ended with VD_E_CLOSE.
 *
 * PIPE_BACKUP_PAUSE_AT=N and PIPE_BACKUP_PAUSE_MS=M make it stop taking
 * data for M ms once N bytes arrived, first creating the file named by
 * PIPE_BACKUP_PAUSE_MARK (if set): tests use it to see what the engine's
 * client is told while a statement is still running.
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

/* One backup through the set object: 0 on success. */
static int run_backup(ClientVirtualDeviceSet *vds, char *name,
                      const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    perror(path);
    return 1;
  }
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = 1;
  cfg.features = VDF_LikePipe | VDF_RequestComplete;
  int rc = vds->Create(name, &cfg);
  if (rc != 0) {
    fprintf(stderr, "Create: 0x%08x\n", (unsigned)rc);
    close(fd);
    return 1;
  }
  /* Now the engine can be told to run its statement. */
  printf("created set %s\n", name);
  fflush(stdout);
  /* The engine attaches when its statement runs: wait a while for it. */
  for (int tries = 0; tries < 20; tries++) {
    rc = vds->GetConfiguration(1000, &cfg);
    if (rc != VD_E_TIMEOUT) break;
  }
  if (rc != 0) {
    fprintf(stderr, "GetConfiguration: 0x%08x\n", (unsigned)rc);
    vds->Close();
    close(fd);
    return 1;
  }
  printf("features 0x%x blockSize %u maxTransferSize %u\n", cfg.features,
         cfg.blockSize, cfg.maxTransferSize);

  ClientVirtualDevice *vd = NULL;
  rc = vds->OpenDevice(name, &vd);
  if (rc != 0) {
    fprintf(stderr, "OpenDevice: 0x%08x\n", (unsigned)rc);
    vds->Close();
    close(fd);
    return 1;
  }
  VDC_Command *cmd;
  const char *pa = getenv("PIPE_BACKUP_PAUSE_AT");
  const char *pm = getenv("PIPE_BACKUP_PAUSE_MS");
  const char *mark = getenv("PIPE_BACKUP_PAUSE_MARK");
  long long pause_at = pa ? atoll(pa) : -1;
  long long total = 0;
  int completed = 0;
  while ((rc = vd->GetCommand(-1, &cmd)) == 0) {
    int code = ERROR_SUCCESS;
    unsigned long bytes = 0;
    switch (cmd->commandCode) {
    case VDC_Write: {
      int err = write_all(fd, cmd->buffer, (size_t)cmd->size);
      if (err == 0) {
        bytes = (unsigned long)cmd->size;
        total += cmd->size;
        if (pause_at >= 0 && total >= pause_at) {
          pause_at = -1;
          if (mark) close(open(mark, O_WRONLY | O_CREAT, 0644));
          usleep((useconds_t)(pm ? atoi(pm) : 1000) * 1000u);
        }
      } else {
        code = err == ENOSPC ? ERROR_DISK_FULL : ERROR_NOT_SUPPORTED;
      }
      break;
    }
    case VDC_Flush:
      if (fsync(fd) != 0) code = ERROR_DISK_FULL;
      break;
    case VDC_Complete:
      if (fsync(fd) != 0) code = ERROR_DISK_FULL;
      completed = 1;
      break;
    case VDC_ClearError:
      break;
    default:
      code = ERROR_NOT_SUPPORTED;
      break;
    }
    int crc = vd->CompleteCommand(cmd, code, bytes, 0);
    if (crc != 0) {
      fprintf(stderr, "CompleteCommand: 0x%08x\n", (unsigned)crc);
      break;
    }
  }
  int ok = rc == VD_E_CLOSE;
  if (!ok) fprintf(stderr, "GetCommand: 0x%08x\n", (unsigned)rc);
  if ((cfg.features & VDF_CompleteEnabled) && !completed) {
    fprintf(stderr, "VDC_Complete was negotiated but never came\n");
    ok = 0;
  }
  rc = vds->Close();
  if (rc != 0) {
    fprintf(stderr, "Close: 0x%08x\n", (unsigned)rc);
    ok = 0;
  }
  if (close(fd) != 0) ok = 0;
  printf("%s: %lld bytes%s\n", path, total, completed ? ", completed" : "");
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s SETNAME OUTFILE [REPEAT]\n", argv[0]);
    return 2;
  }
  int repeat = argc == 4 ? atoi(argv[3]) : 0;
  ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
  int status = 0;
  if (repeat == 0) {
    status = run_backup(vds, argv[1], argv[2]);
  } else {
    for (int i = 0; i < repeat && status == 0; i++) {
      char path[4096];
      snprintf(path, sizeof path, "%s.%d", argv[2], i);
      status = run_backup(vds, argv[1], path);
    }
  }
  delete vds;
  return status;
}
