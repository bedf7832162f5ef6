/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testhook.c - named pause points for the tests (see testhook.h).
 */
#include "testhook.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void testhook_pause(const char *point) {
  const char *at = getenv("VDISQL_TEST_PAUSE_AT");
  if (!at || strcmp(at, point) != 0) return;
  const char *mark = getenv("VDISQL_TEST_PAUSE_MARK");
  const char *ms = getenv("VDISQL_TEST_PAUSE_MS");
  if (mark && *mark) {
    int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
  }
  if (ms && *ms) usleep((useconds_t)strtoul(ms, NULL, 10) * 1000);
}
