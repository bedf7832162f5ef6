/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio.c - whole reads and writes at an offset (see fileio.h).
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

int fio_pwrite_all(int fd, const void *p, size_t n, off_t off) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t k = pwrite(fd, b, n, off);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) {
      errno = EIO;
      return -1;
    }
    b += k;
    n -= (size_t)k;
    off += k;
  }
  return 0;
}

int fio_pread_all(int fd, void *p, size_t n, off_t off) {
  uint8_t *b = p;
  while (n > 0) {
    ssize_t k = pread(fd, b, n, off);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) {
      errno = EIO;
      return -1;
    }
    b += k;
    n -= (size_t)k;
    off += k;
  }
  return 0;
}

void fio_kick_writeback(int fd, uint64_t *kicked, uint64_t written) {
  if (written < *kicked || written - *kicked < FIO_WRITEBACK_STEP) return;
  (void)sync_file_range(fd, (off_t)*kicked, (off_t)(written - *kicked),
                        SYNC_FILE_RANGE_WRITE);
  *kicked = written;
}

int fio_sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

int fio_sync_parent(const char *path) {
  char *c = strdup(path);
  if (!c) return -1;
  int rc = fio_sync_dir(dirname(c));
  int e = errno;
  free(c);
  errno = e;
  return rc;
}
