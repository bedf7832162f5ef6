/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.c - frames of the local protocol and the instance address (see
 * wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int wire_addr(const char *dir, struct sockaddr_un *a, socklen_t *len) {
  struct stat st;
  if (stat(dir, &st) != 0) return -1;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  /* sun_path[0] = 0: the abstract namespace. */
  int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1,
                   "openvdi-vdisql-%llx-%llx", (unsigned long long)st.st_dev,
                   (unsigned long long)st.st_ino);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  return 0;
}

static int write_all(int fd, const void *buf, size_t len,
                     volatile int *cancel) {
  const char *p = buf;
  while (len > 0) {
    ssize_t k = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* A peer that does not read would hold us here for ever (and an
       * instance's stop with us): once cancelled, a connection that takes
       * nothing for a second is given up, and cut, so that no later
       * frame follows a partial one. */
      struct pollfd pf = {fd, POLLOUT, 0};
      int r = poll(&pf, 1, 1000);
      if (r < 0 && errno != EINTR) return -1;
      if (r == 0 && cancel && *cancel) {
        shutdown(fd, SHUT_RDWR);
        return -1;
      }
      continue;
    }
    if (k <= 0) return -1;
    p += k;
    len -= (size_t)k;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t k = read(fd, p, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    len -= (size_t)k;
  }
  return 0;
}

int wire_send_until(int fd, char type, const void *data, size_t len,
                    volatile int *cancel) {
  unsigned char h[5] = {(unsigned char)type, (unsigned char)len,
                        (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                        (unsigned char)(len >> 24)};
  if (len > WIRE_MAX_FRAME) return -1;
  if (write_all(fd, h, sizeof h, cancel)) return -1;
  return len ? write_all(fd, data, len, cancel) : 0;
}

int wire_send(int fd, char type, const void *data, size_t len) {
  return wire_send_until(fd, type, data, len, NULL);
}

long wire_recv(int fd, char *type, char **data) {
  unsigned char h[5];
  *data = NULL;
  if (read_all(fd, h, sizeof h)) return -1;
  uint32_t len = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 |
                 (uint32_t)h[4] << 24;
  if (len > WIRE_MAX_FRAME) return -1;
  char *buf = malloc((size_t)len + 1);
  if (!buf) return -1;
  if (read_all(fd, buf, len)) {
    free(buf);
    return -1;
  }
  buf[len] = 0;
  *type = (char)h[0];
  *data = buf;
  return (long)len;
}

int wire_send_status(int fd, uint32_t status, volatile int *cancel) {
  unsigned char b[4] = {(unsigned char)status, (unsigned char)(status >> 8),
                        (unsigned char)(status >> 16),
                        (unsigned char)(status >> 24)};
  return wire_send_until(fd, 'X', b, sizeof b, cancel);
}

uint32_t wire_status(const char *data) {
  const unsigned char *b = (const unsigned char *)data;
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
         (uint32_t)b[3] << 24;
}
