/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.c - the statement runner's common part: the failure and result
 * lines, opening the media, and the dispatch to the backup
 * (exec_backup.c), restore (exec_restore.c) and ALTER DATABASE runners.
 */
#include "exec_int.h"

#include "capture.h"
#include "dbstate.h"
#include "guard.h"
#include "vstream.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

double exec_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int exec_fail(const stmt *s, const vmsg *m) {
  out_vmsg(m, s->line);
  out_msg(3013, 16, s->line, "%s is terminating abnormally.",
          stmt_verb(s->kind));
  return -1;
}

/* A statement that fails before its devices are used still has to tell
 * a waiting VDI client, or that client would wait forever. */
int exec_fail_early(const stmt *s, const vmsg *m) {
  if (s->dev_kind == DEV_VIRTUAL && s->ndev > 0) vdidev_abort_set(s->dev[0]);
  return exec_fail(s, m);
}

media_t *exec_open_media(const exec_ctx *cx, const stmt *s, int writing,
                         const struct stat *src, vmsg *err) {
  media_opts o = {0};
  o.src = src;
  o.writing = writing;
  o.overwrite = s->init || s->format;
  o.blocksize = s->blocksize;
  o.buffercount = s->buffercount;
  o.maxtransfer = s->maxtransfer;
  o.base_dir = cx->inst_dir;
  o.allowed = cx->backup_dirs;
  if (s->dev_kind == DEV_DISK) return disk_open(s->dev, s->ndev, &o, err);
  return vdidev_open(s->dev, s->ndev, &o, err);
}

int exec_device_type(const stmt *s) {
  return s->dev_kind == DEV_DISK ? 2 : 7;
}

void exec_done_line(const char *verb, uint64_t pages, uint32_t ps,
                    double secs) {
  double mb = (double)pages * ps / 1048576.0;
  if (secs < 0.001) secs = 0.001;
  out_info(3014,
           "%s successfully processed %llu pages in %.3f seconds (%.3f "
           "MB/sec).",
           verb, (unsigned long long)pages, secs, mb / secs);
}

/* ALTER DATABASE db SET RECOVERY FULL | SIMPLE.  Either change breaks
 * the log chain as in SQL Server: after it, BACKUP LOG needs a full
 * backup first (Msg 4214). */
static int alter_fail(const stmt *s, const vmsg *m) {
  out_vmsg(m, s->line);
  out_msg(5069, 16, s->line, "ALTER DATABASE statement failed.");
  return -1;
}

static int exec_alter(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  char path[4200];
  struct stat st;
  const int full = s->set_recovery == VS_RECOVERY_FULL;
  restoring rs;
  if (restoring_get(cx->inst_dir, s->db, &rs, &err) != 0)
    return alter_fail(s, &err);
  snprintf(path, sizeof path, "%s/%s.db", cx->inst_dir, s->db);
  if (rs.known || stat(path, &st) != 0) {
    vmsg_set(&err, 5011,
             "User does not have permission to alter database '%s', the "
             "database does not exist, or the database is not in a state "
             "that allows access checks.",
             s->db);
    return alter_fail(s, &err);
  }
  int lock;
  if (guard_lock(cx->inst_dir, s->db, 1, &lock, &err))
    return alter_fail(s, &err);
  dbstate ds;
  int rc = dbstate_get(cx->inst_dir, s->db, &ds, &err);
  if (rc == 0 && ds.known && ds.full == full) { /* nothing changes */
    guard_unlock(lock);
    return 0;
  }
  const int had_row = rc == 0 && ds.known;
  if (rc == 0 && !ds.known) {
    memset(&ds, 0, sizeof ds);
    ds.known = 1;
    if (getrandom(ds.family, 16, 0) != 16) {
      vmsg_set(&err, 701, "No random bytes for the database's identity.");
      rc = -1;
    }
  }
  /* In the instance, check first that the log can be captured (WAL). */
  if (rc == 0 && capture_running()) rc = capture_track(s->db, full, &err);
  /* The capture may have found the WAL not continuing its archive and
   * broken the chain and the differential base (dbstate_break): what is
   * written back must say so. */
  if (rc == 0 && had_row) {
    dbstate now;
    rc = dbstate_get(cx->inst_dir, s->db, &now, &err);
    if (rc == 0 && now.known) ds = now;
  }
  if (rc == 0) {
    ds.full = full;
    ds.has_log = 0;
    ds.log_lsn = 0;
    rc = dbstate_put(cx->inst_dir, s->db, &ds, &err);
  }
  guard_unlock(lock);
  return rc ? alter_fail(s, &err) : 0;
}

static int exec_one(const exec_ctx *cx, const stmt *s);

int exec_stmt(const exec_ctx *cx, const stmt *s) {
  int rc = exec_one(cx, s);
  /* What OpenSSL left in this thread's error queue (a wrong key password,
   * say) must not reach the TLS of the session's connection, whose
   * SSL_get_error reads the same queue. */
  ERR_clear_error();
  return rc;
}

static int exec_one(const exec_ctx *cx, const stmt *s) {
  if (s->kind == ST_CREATE_MASTER_KEY || s->kind == ST_CREATE_CERT ||
      s->kind == ST_BACKUP_CERT || s->kind == ST_DROP_CERT ||
      s->kind == ST_DROP_MASTER_KEY)
    return exec_cert(cx, s);
  if (cx->vars && cx->vars->trancount > 0 && s->kind != ST_ALTER_RECOVERY) {
    vmsg err = {0};
    vmsg_set(&err, 3021,
             "Cannot perform a backup or restore operation within a "
             "transaction.");
    return exec_fail_early(s, &err);
  }
  switch (s->kind) {
  case ST_BACKUP_DB:
  case ST_BACKUP_LOG:
    return exec_backup(cx, s);
  case ST_ALTER_RECOVERY:
    return exec_alter(cx, s);
  default:
    return exec_restore(cx, s);
  }
}
