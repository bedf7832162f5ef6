/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stage.c - databases in RESTORING state (see stage.h).
 *
 * Applying a log backup: records are page images in LSN order, a commit
 * record closing each transaction with the database's size after it.  A
 * transaction is applied only whole and only if its commit is at or
 * before STOPAT: its pages are written, then the file is cut to the
 * commit's size.  While applying, the restoring row says "applying"; a
 * restore cut off there leaves a sequence that must be started again
 * (Msg 3456), never a half-applied database that looks ready.
 */
#include "stage.h"

#include "dbwrite.h"
#include "fileio.h"
#include "guard.h"
#include "restoreplan.h"
#include "testhook.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct spool {
  int fd;
  uint32_t unit;
  uint64_t size;
};

void stage_path(const char *inst_dir, const char *db, char *out, size_t n) {
  char dir[PATH_MAX];
  if (guard_private_dir(inst_dir, "restoring", dir, sizeof dir) != 0)
    snprintf(dir, sizeof dir, "%s/.vdisql/restoring", inst_dir);
  snprintf(out, n, "%s/%s.db", dir, db);
}

spool_t *spool_open(const char *inst_dir, const char *db, uint32_t unit,
                    vmsg *err) {
  char dir[PATH_MAX];
  (void)db;
  if (guard_private_dir(inst_dir, "restoring", dir, sizeof dir) != 0) {
    vmsg_os_error(err, "mkdir", inst_dir);
    return NULL;
  }
  spool_t *sp = calloc(1, sizeof *sp);
  if (!sp) return NULL;
  sp->unit = unit;
  /* Nameless: a killed restore leaves nothing behind. */
  sp->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (sp->fd < 0) {
    vmsg_os_error(err, "create a spool in", dir);
    free(sp);
    return NULL;
  }
  return sp;
}

int spool_sink(void *ctx, uint64_t first, uint32_t n, const uint8_t *data,
               vmsg *err) {
  spool_t *sp = ctx;
  uint8_t h[12];
  memcpy(h, &first, 8);
  memcpy(h + 8, &n, 4);
  size_t len = (size_t)n * sp->unit;
  if (fio_pwrite_all(sp->fd, h, 12, (off_t)sp->size) ||
      fio_pwrite_all(sp->fd, data, len, (off_t)(sp->size + 12)))
    return vmsg_os_error(err, "write", "the restore spool");
  sp->size += 12 + len;
  return 0;
}

/* The head of the spooled chunk at @p off: its first page or record and
 * how many follow (the spool is ours and private, so host order). */
static int chunk_head(const spool_t *sp, uint64_t off, uint64_t *first,
                      uint32_t *n) {
  uint8_t hd[12];
  if (fio_pread_all(sp->fd, hd, 12, (off_t)off)) return -1;
  memcpy(first, hd, 8);
  memcpy(n, hd + 8, 4);
  return 0;
}

void spool_free(spool_t *sp) {
  if (!sp) return;
  close(sp->fd);
  free(sp);
}

/* Mark the sequence as being applied (or not) in the catalog. */
static int set_applying(const char *inst_dir, const char *db, restoring *r,
                        int on, vmsg *err) {
  r->applying = on;
  return restoring_put(inst_dir, db, r, err);
}

static int open_staged(const char *inst_dir, const char *db, char *path,
                       size_t n, vmsg *err) {
  stage_path(inst_dir, db, path, n);
  int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) vmsg_os_error(err, "open", path);
  return fd;
}

int stage_apply_diff(const char *inst_dir, const char *db, spool_t *sp,
                     const vs_header *h, restoring *r, vmsg *err) {
  char path[PATH_MAX + 300];
  uint32_t ps = h->page_size;
  int fd = open_staged(inst_dir, db, path, sizeof path, err);
  if (fd < 0) return -1;
  uint8_t *buf = malloc((size_t)h->pages_per_block * ps);
  int rc = -1;
  if (!buf || set_applying(inst_dir, db, r, 1, err)) goto out;
  for (uint64_t off = 0; off < sp->size;) {
    uint64_t first;
    uint32_t n;
    if (chunk_head(sp, off, &first, &n)) goto io;
    if (fio_pread_all(sp->fd, buf, (size_t)n * ps, (off_t)(off + 12)) ||
        fio_pwrite_all(fd, buf, (size_t)n * ps, (off_t)((first - 1) * ps)))
      goto io;
    if (off == 0) testhook_pause("diff_apply"); /* the first pages */
    off += 12 + (uint64_t)n * ps;
  }
  if (ftruncate(fd, (off_t)(h->page_count * ps)) || fsync(fd)) goto io;
  r->lsn = h->last_lsn;
  memcpy(r->last_set, h->set_id, 16);
  r->time_ms = h->last_time_ms;
  rc = set_applying(inst_dir, db, r, 0, err);
  goto out;
io:
  vmsg_os_error(err, "apply the differential to", path);
out:
  free(buf);
  close(fd);
  return rc;
}

int stage_apply_log(const char *inst_dir, const char *db, spool_t *sp,
                    const vs_header *h, int64_t stop_ms, restoring *r,
                    int *reached, vmsg *err) {
  char path[PATH_MAX + 300];
  const uint32_t ps = h->page_size, unit = VS_LOGREC_HDR + ps;
  *reached = stop_ms != RP_NO_STOPAT && stop_ms < h->last_time_ms;
  int fd = open_staged(inst_dir, db, path, sizeof path, err);
  if (fd < 0) return -1;
  uint8_t *rec = malloc(unit);
  uint64_t *txn = NULL; /* spool offsets of the open transaction's records */
  size_t ntxn = 0, cap = 0;
  uint64_t lsn = r->lsn; /* after the last applied commit */
  int rc = -1, stop = 0;
  if (!rec || set_applying(inst_dir, db, r, 1, err)) goto out;
  for (uint64_t off = 0; off < sp->size && !stop;) {
    uint64_t first;
    uint32_t n;
    if (chunk_head(sp, off, &first, &n)) goto io;
    for (uint32_t i = 0; i < n && !stop; i++) {
      uint64_t ro = off + 12 + (uint64_t)i * unit;
      vs_logrec lr;
      if (fio_pread_all(sp->fd, rec, unit, (off_t)ro)) goto io;
      vs_logrec_decode(&lr, rec, ps); /* checked when it was read */
      if (lr.lsn < r->lsn) continue;  /* the database has it already */
      if (ntxn == cap) {
        cap = cap ? cap * 2 : 64;
        uint64_t *nt = realloc(txn, cap * sizeof *txn);
        if (!nt) goto io;
        txn = nt;
      }
      txn[ntxn++] = ro;
      if (lr.commit_size == 0) continue;
      if (stop_ms != RP_NO_STOPAT && lr.time_ms > stop_ms) {
        stop = 1; /* this transaction committed after STOPAT */
        break;
      }
      for (size_t k = 0; k < ntxn; k++) {
        vs_logrec pr;
        if (fio_pread_all(sp->fd, rec, unit, (off_t)txn[k])) goto io;
        vs_logrec_decode(&pr, rec, ps);
        if (fio_pwrite_all(fd, rec + VS_LOGREC_HDR, ps,
                           (off_t)((uint64_t)(pr.pgno - 1) * ps)))
          goto io;
      }
      if (ftruncate(fd, (off_t)((uint64_t)lr.commit_size * ps))) goto io;
      if (lsn == r->lsn) testhook_pause("log_apply"); /* the first one */
      ntxn = 0;
      lsn = lr.lsn + 1;
    }
    off += 12 + (uint64_t)n * unit;
  }
  if (fsync(fd)) goto io;
  /* Past its full (or differential) backup now: no differential fits. */
  memset(r->last_set, 0, sizeof r->last_set);
  if (*reached) {
    r->lsn = lsn;
    r->time_ms = stop_ms;
  } else {
    r->lsn = h->last_lsn;
    r->time_ms = h->last_time_ms;
  }
  rc = set_applying(inst_dir, db, r, 0, err);
  goto out;
io:
  vmsg_os_error(err, "apply the log to", path);
out:
  free(rec);
  free(txn);
  close(fd);
  return rc;
}

int stage_placeholder(const char *inst_dir, const char *db, vmsg *err) {
  char tmp[PATH_MAX + 300], target[PATH_MAX + 300], text[512];
  snprintf(tmp, sizeof tmp, "%s/.%s.db.restore-XXXXXX", inst_dir, db);
  snprintf(target, sizeof target, "%s/%s.db", inst_dir, db);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return vmsg_os_error(err, "create", tmp);
  /* Not a SQLite header: SQLite says "file is not a database". */
  int n = snprintf(text, sizeof text,
                   "vdisql: database '%s' is RESTORING; RESTORE DATABASE "
                   "[%s] WITH RECOVERY brings it online.\n",
                   db, db);
  if (fchmod(fd, 0600) || fio_pwrite_all(fd, text, (size_t)n, 0) || fsync(fd)) {
    close(fd);
    unlink(tmp);
    return vmsg_os_error(err, "write", tmp);
  }
  close(fd);
  if (rename(tmp, target) != 0) {
    unlink(tmp);
    return vmsg_os_error(err, "rename", target);
  }
  return dbw_sync_dir(inst_dir, err);
}

/* Whether @p path begins as a SQLite database does (not the placeholder).
 * Only while the database is RESTORING: nothing of the instance has it
 * open, so closing our descriptor drops nobody's locks. */
static int is_database(const char *path) {
  static const char magic[16] = "SQLite format 3";
  char h[16];
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  int ok = fio_pread_all(fd, h, sizeof h, 0) == 0 && memcmp(h, magic, 16) == 0;
  close(fd);
  return ok;
}

int stage_recover(const char *inst_dir, const char *db, vmsg *err) {
  char staged[PATH_MAX + 300], target[PATH_MAX + 300], dir[PATH_MAX];
  struct stat st;
  stage_path(inst_dir, db, staged, sizeof staged);
  snprintf(target, sizeof target, "%s/%s.db", inst_dir, db);
  /* A RECOVERY cut off after its rename, before the catalog said so: the
   * database is in place (and may be in use); the caller finishes. */
  if (lstat(staged, &st) != 0 && errno == ENOENT && is_database(target))
    return 0;
  if (dbw_check_file(staged, db, err)) return -1;
  if (rename(staged, target) != 0) return vmsg_os_error(err, "rename", target);
  snprintf(dir, sizeof dir, "%s/.vdisql/restoring", inst_dir);
  if (dbw_sync_dir(inst_dir, err)) return -1;
  return dbw_sync_dir(dir, err);
}
