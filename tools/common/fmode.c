/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fmode.c - giving created files permissions no wider than their source
 * (see fmode.h for the rule).
 */
#include "fmode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

mode_t fm_umask(void) {
  /* umask(2) can only be read by changing it, which would race with other
   * threads creating files; Linux shows it in /proc since 4.7. */
  FILE *f = fopen("/proc/self/status", "re");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "Umask:", 6) == 0) {
        fclose(f);
        return (mode_t)strtoul(line + 6, NULL, 8) & 0777;
      }
    }
    fclose(f);
  }
  mode_t u = umask(077);
  umask(u);
  return u & 0777;
}

mode_t fm_copy_bits(mode_t src_mode) {
  return src_mode & 0666 & ~fm_umask();
}

/* Set the bits, dropping the group's where the file's group is not the
 * one the source had. */
static int finish(int fd, mode_t bits, gid_t want_gid) {
  struct stat me;
  if (fstat(fd, &me) != 0) return -errno;
  if (me.st_gid != want_gid) bits &= ~(mode_t)070;
  if (fchmod(fd, bits) != 0) return -errno;
  return 0;
}

int fm_apply(int fd, const struct stat *src) {
  if (!src) return fm_apply_recorded(fd, 0, 0, 0);
  struct stat me;
  if (fstat(fd, &me) != 0) return -errno;
  /* chown(2) fails with EPERM where it is not allowed (another owner
   * without CAP_CHOWN, a group we are not in): the bits below then make
   * up for it. */
  if (geteuid() == 0 && me.st_uid != src->st_uid)
    (void)!fchown(fd, src->st_uid, src->st_gid);
  else if (me.st_gid != src->st_gid)
    (void)!fchown(fd, (uid_t)-1, src->st_gid);
  return finish(fd, fm_copy_bits(src->st_mode), src->st_gid);
}

int fm_apply_recorded(int fd, int known, uint32_t mode, uint32_t gid) {
  struct stat me;
  if (fstat(fd, &me) != 0) return -errno;
  if (!known) return finish(fd, FM_UNKNOWN_MODE & ~fm_umask(), me.st_gid);
  if (me.st_gid != (gid_t)gid) (void)!fchown(fd, (uid_t)-1, (gid_t)gid);
  return finish(fd, fm_copy_bits((mode_t)mode), (gid_t)gid);
}

int fm_is_symlink(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}
