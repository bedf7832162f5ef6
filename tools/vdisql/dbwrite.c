/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbwrite.c - the restore writer (see dbwrite.h).
 *
 * Replacing a database another process uses would pull it from under that
 * process, so before the rename vdisql makes sure nobody holds it: it opens
 * the old database, checkpoints and truncates its WAL if it has one, and
 * takes an exclusive lock; if any of that is refused, the restore fails
 * with Msg 3101 and the old database stays.  This also guarantees that no
 * old -wal file is left to be replayed onto the new one.
 *
 * The lock is held until the switch is done (dbw_release), as SQL Server
 * holds exclusive access for the whole restore: let go before, an
 * application's commit made meanwhile (during the fsync, the client's
 * check) would be reported done and then thrown away by the rename.  The
 * old database is held in rollback-journal mode: a WAL-mode lock lives in
 * its -shm and -wal, files found by name, which after the rename are the
 * new database's; the byte locks of rollback mode are on the old file
 * itself (and its journal is kept in memory).  Not replaced after all, it
 * is put back in WAL mode.
 */
#include "dbwrite.h"
#include "fileio.h"
#include "fmode.h"
#include "stale.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dbw {
  char *target, *tmp, *dir, *db;
  int fd;
  uint32_t ps;
  int skip_takeover;
  sqlite3 *hold;  /* the old database, locked exclusively (take_over_target) */
  int hold_wal;   /* it was in WAL mode */
  dev_t hold_dev; /* its file, to tell whether it is still the target */
  ino_t hold_ino;
  uint64_t end, kicked; /* the furthest byte written; handed to writeback */
};

dbw_t *dbw_open(const char *inst_dir, const char *db, const dbw_source *src,
                int replace, vmsg *err) {
  dbw_t *w = calloc(1, sizeof *w);
  struct stat st;
  if (!w) return NULL;
  w->fd = -1;
  w->ps = src->page_size;
  if (asprintf(&w->target, "%s/%s.db", inst_dir, db) < 0 ||
      asprintf(&w->tmp, "%s/.%s.db.restore-XXXXXX", inst_dir, db) < 0) {
    w->target = w->tmp = NULL;
    goto fail;
  }
  w->dir = strdup(inst_dir);
  w->db = strdup(db);
  if (!w->dir || !w->db) goto fail;
  if (stat(w->target, &st) == 0 && !replace) {
    vmsg_set(err, 1834,
             "The file '%s' cannot be overwritten. It is being used by "
             "database '%s'. Use WITH REPLACE to overwrite the existing "
             "database.",
             w->target, db);
    goto fail;
  }
  if (fm_is_symlink(w->target)) {
    /* The rename would replace the link with a file here, moving the
     * database without a word: the user must decide. */
    vmsg_set(err, 3156,
             "File '%s' cannot be restored to '%s': it is a symbolic link, "
             "which RESTORE does not replace. Remove it or restore under "
             "another name.",
             db, w->target);
    goto fail;
  }
  /* Debris of restores whose vdisql was killed goes first. */
  stale_sweep(inst_dir, ".", ".db.restore-");
  w->fd = mkostemp(w->tmp, O_CLOEXEC);
  if (w->fd < 0) {
    vmsg_os_error(err, "create", w->tmp);
    free(w->tmp);
    w->tmp = NULL;
    goto fail;
  }
  stale_hold(w->fd); /* ours while we live: see stale.h */
  if (fm_apply_recorded(w->fd, src->mode_known, src->mode, src->gid) != 0) {
    vmsg_os_error(err, "chmod", w->tmp);
    goto fail;
  }
  return w;
fail:
  dbw_free(w);
  return NULL;
}

int dbw_write(void *ctx, uint64_t first, uint32_t n, const uint8_t *data,
              vmsg *err) {
  dbw_t *w = ctx;
  size_t len = (size_t)n * w->ps;
  off_t off = (off_t)((first - 1) * w->ps);
  if (fio_pwrite_all(w->fd, data, len, off) != 0)
    return vmsg_os_error(err, "write", w->tmp);
  /* A restore writes its pages in order: the disk writes while they come,
   * the fsync before the rename has little left to do. */
  if ((uint64_t)off + len > w->end) w->end = (uint64_t)off + len;
  fio_kick_writeback(w->fd, &w->kicked, w->end);
  return 0;
}

static void unlink_sidecars(const char *path) {
  char buf[4200];
  snprintf(buf, sizeof buf, "%s-wal", path);
  unlink(buf);
  snprintf(buf, sizeof buf, "%s-shm", path);
  unlink(buf);
  snprintf(buf, sizeof buf, "%s-journal", path);
  unlink(buf);
}

int dbw_check_file(const char *path, const char *name, vmsg *err) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int ok = 0;
  char first[256] = "";
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(first, sizeof first, "%s", t ? (const char *)t : "");
    ok = strcmp(first, "ok") == 0;
  } else {
    snprintf(first, sizeof first, "%s", db ? sqlite3_errmsg(db) : "?");
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  unlink_sidecars(path);
  if (!ok) {
    vmsg_set(err, 3183,
             "RESTORE detected an error in the restored database '%s': "
             "integrity_check says: %s",
             name, first);
    return -1;
  }
  return 0;
}

static int check_restored(dbw_t *w, vmsg *err) {
  return dbw_check_file(w->tmp, w->db, err);
}

static int step_text(sqlite3 *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *s = NULL;
  int rc = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(out, n, "%s", t ? (const char *)t : "");
    rc = 0;
  }
  sqlite3_finalize(s);
  return rc;
}

/* Make sure nobody uses the old database and its WAL is empty, and keep
 * it so until dbw_release (see the top of the file). */
static int take_over_target(dbw_t *w, vmsg *err) {
  struct stat st;
  if (stat(w->target, &st) != 0) return 0;
  w->hold_dev = st.st_dev;
  w->hold_ino = st.st_ino;
  sqlite3 *db = NULL;
  int busy = 1;
  char mode[32] = "", v[32] = "";
  if (sqlite3_open_v2(w->target, &db, SQLITE_OPEN_READWRITE, NULL) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    busy = 0;
    /* Exclusive locking mode: once taken, the lock stays through the
     * journal mode changes, until the connection is closed; a database
     * another connection has open is refused right here. */
    if (step_text(db, "PRAGMA locking_mode=EXCLUSIVE", v, sizeof v) ||
        step_text(db, "PRAGMA wal_checkpoint(TRUNCATE)", v, sizeof v) ||
        strcmp(v, "0") != 0 ||
        step_text(db, "PRAGMA journal_mode", mode, sizeof mode))
      busy = 1;
    w->hold_wal = !busy && strcmp(mode, "wal") == 0;
    /* Its journal in memory: no -journal file either, which the new
     * database would find under its name. */
    if (!busy && (step_text(db, "PRAGMA journal_mode=MEMORY", v, sizeof v) ||
                  strcmp(v, "memory") != 0))
      busy = 1;
    if (!busy &&
        sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
      busy = 1;
  }
  w->hold = db;
  char wal[4200];
  snprintf(wal, sizeof wal, "%s-wal", w->target);
  if (!busy && stat(wal, &st) == 0 && st.st_size > 0) busy = 1;
  if (busy) {
    dbw_release(w);
    vmsg_set(err, 3101,
             "Exclusive access could not be obtained because the database "
             "'%s' is in use.",
             w->db);
    return -1;
  }
  return 0;
}

void dbw_release(dbw_t *w) {
  sqlite3 *db = w->hold;
  struct stat st;
  if (!db) return;
  w->hold = NULL;
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  /* Still the database (not replaced): as it was, in WAL mode.  The lock
   * is still ours (exclusive locking mode), so nobody comes in between. */
  if (w->hold_wal && stat(w->target, &st) == 0 && st.st_dev == w->hold_dev &&
      st.st_ino == w->hold_ino)
    sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
  sqlite3_close(db);
}

int dbw_prepare(dbw_t *w, uint64_t page_count, vmsg *err) {
  if (ftruncate(w->fd, (off_t)(page_count * w->ps)) != 0)
    return vmsg_os_error(err, "truncate", w->tmp);
  /* The check reads the pages from the page cache, what the fsync below
   * makes durable, so it runs while the disk is still writing them
   * (dbw_write started the writeback): a 1 GiB restore's fsync and
   * integrity check, about 1.5 s each here, overlap. */
  if (check_restored(w, err)) return -1;
  if (!w->skip_takeover && take_over_target(w, err)) return -1;
  if (fsync(w->fd) != 0) return vmsg_os_error(err, "fsync", w->tmp);
  return 0;
}

int dbw_sync_dir(const char *dir, vmsg *err) {
  return fio_sync_dir(dir) != 0 ? vmsg_os_error(err, "fsync", dir) : 0;
}

int dbw_switch_to(dbw_t *w, const char *dest, vmsg *err) {
  if (rename(w->tmp, dest) != 0) return vmsg_os_error(err, "rename", dest);
  free(w->tmp);
  w->tmp = NULL;
  /* The file is the database now (synced by dbw_prepare).  Closing a
   * descriptor of it drops every POSIX lock this process holds on it:
   * done later, it would drop those of the SQLite connections the
   * instance opens on the restored database (the log capture's), and an
   * application's last connection would then delete the WAL under the
   * capture, which would go on following the deleted one. */
  close(w->fd);
  w->fd = -1;
  return dbw_sync_dir(w->dir, err);
}

int dbw_switch(dbw_t *w, vmsg *err) {
  return dbw_switch_to(w, w->target, err);
}

void dbw_skip_takeover(dbw_t *w) {
  w->skip_takeover = 1;
}

void dbw_free(dbw_t *w) {
  if (!w) return;
  dbw_release(w);
  if (w->fd >= 0) close(w->fd);
  if (w->tmp) {
    unlink(w->tmp);
    unlink_sidecars(w->tmp);
  }
  free(w->tmp);
  free(w->target);
  free(w->dir);
  free(w->db);
  free(w);
}
