/* SPDX-License-Identifier: Apache-2.0 */
/*
 * multi_backup.cpp - a Linux VDI backup client striping over several
 * devices, one thread per device, built only against the SDK header and
 * -lsqlvdi.
 *
 *   multi_backup SETNAME NDEV OUTPREFIX
 *
 * Device 0 is named like the set, device i (i > 0) is SETNAME followed by
 * i: the names the statement's VIRTUAL_DEVICE clauses gave them.  Device i
 * is stored in OUTPREFIX.i.  A worker that fails aborts the whole set, so
 * the other workers stop at once.  Exit status 0 when every device ended
 * with VD_E_CLOSE.
 */
#include "vdi.h"
#include "vdierror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <thread>
#include <unistd.h>
#include <vector>

struct Stripe {
  ClientVirtualDevice *vd;
  int fd;
  long long bytes;
  int status; /* 0 = ended with VD_E_CLOSE */
};

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

static void serve(ClientVirtualDeviceSet *vds, Stripe *s) {
  VDC_Command *cmd;
  int rc;
  s->status = 1;
  while ((rc = s->vd->GetCommand(-1, &cmd)) == 0) {
    int code = ERROR_SUCCESS;
    unsigned long bytes = 0;
    switch (cmd->commandCode) {
    case VDC_Write:
      if (write_all(s->fd, cmd->buffer, (size_t)cmd->size) == 0) {
        bytes = (unsigned long)cmd->size;
        s->bytes += cmd->size;
      } else {
        code = ERROR_DISK_FULL;
      }
      break;
    case VDC_Flush:
    case VDC_Complete:
      if (fsync(s->fd) != 0) code = ERROR_DISK_FULL;
      break;
    case VDC_ClearError:
      break;
    default:
      code = ERROR_NOT_SUPPORTED;
      break;
    }
    if (code != ERROR_SUCCESS) {
      /* Our storage failed: stop the whole operation. */
      vds->SignalAbort();
      return;
    }
    if ((rc = s->vd->CompleteCommand(cmd, code, bytes, 0)) != 0) break;
  }
  if (rc == VD_E_CLOSE)
    s->status = 0;
  else
    fprintf(stderr, "device: 0x%08x\n", (unsigned)rc);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s SETNAME NDEV OUTPREFIX\n", argv[0]);
    return 2;
  }
  char *name = argv[1];
  int ndev = atoi(argv[2]);
  if (ndev < 1 || ndev > 64) return 2;

  ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = (uint32_t)ndev;
  cfg.features = VDF_LikePipe;
  int rc = vds->Create(name, &cfg);
  if (rc != 0) {
    fprintf(stderr, "Create: 0x%08x\n", (unsigned)rc);
    return 1;
  }
  for (int tries = 0; tries < 20; tries++)
    if ((rc = vds->GetConfiguration(1000, &cfg)) != VD_E_TIMEOUT) break;
  if (rc != 0) {
    fprintf(stderr, "GetConfiguration: 0x%08x\n", (unsigned)rc);
    vds->Close();
    return 1;
  }

  std::vector<Stripe> stripes((size_t)ndev);
  for (int i = 0; i < ndev; i++) {
    char devname[128], path[4096];
    if (i == 0)
      snprintf(devname, sizeof devname, "%s", name);
    else
      snprintf(devname, sizeof devname, "%s%d", name, i);
    snprintf(path, sizeof path, "%s.%d", argv[3], i);
    Stripe &s = stripes[(size_t)i];
    s.bytes = 0;
    s.status = 1;
    s.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = s.fd < 0 ? VD_E_INVALID : vds->OpenDevice(devname, &s.vd);
    if (rc != 0) {
      fprintf(stderr, "OpenDevice(%s): 0x%08x\n", devname, (unsigned)rc);
      vds->SignalAbort();
      vds->Close();
      return 1;
    }
  }

  std::vector<std::thread> workers;
  for (int i = 0; i < ndev; i++)
    workers.push_back(std::thread(serve, vds, &stripes[(size_t)i]));
  int status = 0;
  for (int i = 0; i < ndev; i++) {
    workers[(size_t)i].join();
    Stripe &s = stripes[(size_t)i];
    printf("device %d: %lld bytes, %s\n", i, s.bytes,
           s.status ? "failed" : "closed");
    if (s.status != 0 || close(s.fd) != 0) status = 1;
  }
  rc = vds->Close();
  if (rc != 0) {
    fprintf(stderr, "Close: 0x%08x\n", (unsigned)rc);
    status = 1;
  }
  delete vds;
  return status;
}
