/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stale.c - removing the temporary files of killed vdisql processes (see
 * stale.h for the locking rule).
 */
#include "stale.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int stale_hold(int fd) {
  return flock(fd, LOCK_EX | LOCK_NB);
}

static void unlink_with_sidecars(const char *path) {
  static const char *const side[] = {"-wal", "-shm", "-journal"};
  char buf[4200];
  for (size_t i = 0; i < sizeof side / sizeof side[0]; i++) {
    snprintf(buf, sizeof buf, "%s%s", path, side[i]);
    unlink(buf);
  }
  unlink(path);
}

int stale_sweep(const char *dir, const char *prefix, const char *marker) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strstr(e->d_name, marker)) continue;
    if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    /* Side files go with their database, not on their own. */
    if (strstr(e->d_name, "-wal") || strstr(e->d_name, "-shm") ||
        strstr(e->d_name, "-journal"))
      continue;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      unlink_with_sidecars(path);
      removed++;
    }
    close(fd);
  }
  closedir(d);
  return removed;
}
