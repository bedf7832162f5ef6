/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk.c - the DISK media driver: one plain file per stripe.  A backup is
 * written under a temporary name beside the target and renamed at the end
 * (after fsync of the file and then of the directory), so a failed backup
 * leaves no file that looks complete.  Appending a second backup set to an
 * existing file (NOINIT) is not supported: such a file is refused unless
 * INIT or FORMAT says to overwrite it.
 */
#include "fileio.h"
#include "fmode.h"
#include "guard.h"
#include "media.h"
#include "stale.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct stripe {
  char *path; /* final name */
  char *tmp;  /* temporary name while writing */
  FILE *f;
  uint64_t bytes, kicked; /* backup: written; handed to writeback */
};

typedef struct disk {
  media_t m;
  int writing;
  struct stripe s[64];
} disk_t;

static int d_write(media_t *m, unsigned i, const void *buf, size_t len) {
  disk_t *d = (disk_t *)m;
  if (fwrite(buf, 1, len, d->s[i].f) != len) {
    int e = errno;
    vmsg_set(m->err, 3202, "Write on \"%s\" failed: %d(%s).", d->s[i].path, e,
             strerror(e));
    return -1;
  }
  /* (What stdio still holds when a range is kicked is not written yet,
   * and the kicks have passed it: the fsync at the end takes those few
   * KiB.) */
  d->s[i].bytes += len;
  fio_kick_writeback(fileno(d->s[i].f), &d->s[i].kicked, d->s[i].bytes);
  return 0;
}

static long d_read(media_t *m, unsigned i, void *buf, size_t len) {
  disk_t *d = (disk_t *)m;
  size_t n = fread(buf, 1, len, d->s[i].f);
  if (n < len && ferror(d->s[i].f)) {
    int e = errno;
    vmsg_set(m->err, 3203, "Read on \"%s\" failed: %d(%s).", d->s[i].path, e,
             strerror(e));
    return -1;
  }
  return (long)n;
}

static int d_finish(media_t *m, int ok) {
  disk_t *d = (disk_t *)m;
  int rc = 0;
  for (unsigned i = 0; i < m->nstripes; i++) {
    struct stripe *s = &d->s[i];
    if (!s->f) continue;
    if (d->writing && ok && rc == 0) {
      if (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0) {
        int e = errno;
        vmsg_set(m->err, 3202, "Write on \"%s\" failed: %d(%s).", s->path, e,
                 strerror(e));
        rc = -1;
      }
    }
    fclose(s->f);
    s->f = NULL;
  }
  if (!d->writing) return rc;
  for (unsigned i = 0; i < m->nstripes; i++) {
    struct stripe *s = &d->s[i];
    if (!s->tmp) continue;
    if (ok && rc == 0) {
      if (rename(s->tmp, s->path) != 0 || fio_sync_parent(s->path) != 0) {
        int e = errno;
        vmsg_set(m->err, 3202, "Write on \"%s\" failed: %d(%s).", s->path, e,
                 strerror(e));
        rc = -1;
        unlink(s->tmp);
      }
    } else {
      unlink(s->tmp);
    }
    free(s->tmp);
    s->tmp = NULL;
  }
  return rc;
}

static void d_destroy(media_t *m) {
  disk_t *d = (disk_t *)m;
  d_finish(m, 0);
  for (unsigned i = 0; i < m->nstripes; i++)
    free(d->s[i].path);
  free(d);
}

/* A file has no peer that could go away. */
static int d_peer_ok(media_t *m) {
  (void)m;
  return 0;
}

static const struct media_ops disk_ops = {
    d_write, d_read, d_finish, d_peer_ok, d_destroy, NULL, NULL};

static int open_one(disk_t *d, struct stripe *s, const media_opts *o,
                    vmsg *err) {
  struct stat st;
  if (!o->writing) {
    s->f = fopen(s->path, "rb");
    if (!s->f || (fstat(fileno(s->f), &st) == 0 && S_ISDIR(st.st_mode))) {
      int e = s->f ? EISDIR : errno;
      vmsg_set(err, 3201,
               "Cannot open backup device '%s'. Operating system error %d(%s).",
               s->path, e, strerror(e));
      return -1;
    }
    return 0;
  }
  if (guard_backup_target(o->base_dir, s->path, err)) return -1;
  if (fm_is_symlink(s->path)) {
    /* rename() would replace the link, not follow it; but whoever planted
     * it meant the backup to land elsewhere: say so rather than guess. */
    vmsg_set(err, 3201,
             "Cannot open backup device '%s'. Operating system error "
             "40(Too many levels of symbolic links): vdisql does not write a "
             "backup through a symbolic link.",
             s->path);
    return -1;
  }
  if (stat(s->path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      vmsg_set(err, 3201,
               "Cannot open backup device '%s'. Operating system error %d(%s).",
               s->path, EISDIR, strerror(EISDIR));
      return -1;
    }
    if (!o->overwrite) {
      vmsg_set(err, 3032,
               "The backup file '%s' already exists. vdisql does not append "
               "backup sets (NOINIT); use WITH INIT or FORMAT to overwrite it.",
               s->path);
      return -1;
    }
  }
  if (asprintf(&s->tmp, "%s.partial-XXXXXX", s->path) < 0) {
    s->tmp = NULL;
    return -1;
  }
  {
    /* Partial files of this path left by a killed vdisql go first. */
    char dir[4096], base[4096];
    const char *slash = strrchr(s->path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - s->path) : 1,
             slash ? s->path : ".");
    if (slash && slash == s->path) snprintf(dir, sizeof dir, "/");
    snprintf(base, sizeof base, "%s.partial-", slash ? slash + 1 : s->path);
    stale_sweep(dir, base, ".partial-");
  }
  int fd = mkostemp(s->tmp, O_CLOEXEC);
  if (fd >= 0) stale_hold(fd);
  if (fd < 0) {
    int e = errno;
    vmsg_set(err, 3201,
             "Cannot open backup device '%s'. Operating system error %d(%s).",
             s->path, e, strerror(e));
    free(s->tmp);
    s->tmp = NULL;
    return -1;
  }
  if (fm_apply(fd, o->src) != 0) {
    int e = errno;
    close(fd);
    vmsg_set(err, 3201,
             "Cannot open backup device '%s'. Operating system error %d(%s).",
             s->path, e, strerror(e));
    return -1;
  }
  s->f = fdopen(fd, "wb");
  if (!s->f) {
    close(fd);
    return -1;
  }
  (void)d;
  return 0;
}

media_t *disk_open(char *const *paths, int n, const media_opts *o, vmsg *err) {
  disk_t *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->m.ops = &disk_ops;
  d->m.align = 1;
  d->m.err = err;
  d->m.device_type = 2;
  d->writing = o->writing;
  for (int i = 0; i < n; i++) {
    d->s[i].path = guard_resolve(o->base_dir, paths[i], o->allowed, err);
    d->m.nstripes = (unsigned)i + 1;
    if (!d->s[i].path) {
      d_destroy(&d->m);
      return NULL;
    }
    for (int k = 0; k < i; k++)
      if (strcmp(d->s[k].path, d->s[i].path) == 0) {
        vmsg_set(err, 3201,
                 "Cannot open backup device '%s': it is listed more than "
                 "once in the statement.",
                 d->s[i].path);
        goto fail;
      }
    if (open_one(d, &d->s[i], o, err)) goto fail;
  }
  return &d->m;
fail:
  vmsg_set(err, 3201, "Cannot open backup device '%s'.", paths[0]);
  d_destroy(&d->m);
  return NULL;
}
