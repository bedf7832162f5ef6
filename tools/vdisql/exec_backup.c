/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec_backup.c - BACKUP DATABASE (full and differential) and BACKUP LOG:
 * SQL Server's preconditions (Msg 911, 927, 4208, 4214, 3035), the
 * snapshot and its synchronisation with the log capture, the stream, the
 * history, and the database's new base or log position.
 */
#include "exec_int.h"

#include "backupcrypt.h"
#include "capture.h"
#include "catalog.h"
#include "certs.h"
#include "dbstate.h"
#include "guard.h"
#include "stream.h"
#include "testhook.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct sync_ctx {
  const char *db;
  int want_changed, start_base;
  int followed;
  cap_point pt;
};

/* The snapshot's hook: nobody commits while the capture catches up, so
 * the backup's LSN is exactly its snapshot's. */
static int sync_hook(void *ctx, vmsg *err) {
  struct sync_ctx *sc = ctx;
  int rc = capture_sync(sc->db, sc->want_changed, sc->start_base, &sc->pt, err);
  sc->followed = rc == 1;
  return rc < 0 ? -1 : 0;
}

/* The instance's sessions are threads: see the end of exec_backup. */
static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every database gets an identity at its first backup: a row with a new
 * family GUID; in the instance its capture starts, so that the full
 * backup becomes the differential base. */
static int ensure_identity(const exec_ctx *cx, const stmt *s, dbstate *ds,
                           vmsg *err) {
  if (!ds->known) {
    memset(ds, 0, sizeof *ds);
    ds->known = 1;
    if (getrandom(ds->family, 16, 0) != 16) {
      vmsg_set(err, 701, "No random bytes for the database's identity.");
      return -1;
    }
    if (dbstate_put(cx->inst_dir, s->db, ds, err) != 0) return -1;
  }
  if (capture_running()) {
    vmsg ignore = {0};
    /* A database that is not in WAL mode cannot be followed: it has full
     * backups only (a differential says so with Msg 3035). */
    capture_track(s->db, ds->full, &ignore);
  }
  return 0;
}

int exec_backup(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  char path[4200];
  struct stat st;
  const int log = s->kind == ST_BACKUP_LOG;
  const int diff = !log && s->differential;
  snprintf(path, sizeof path, "%s/%s.db", cx->inst_dir, s->db);
  restoring rs;
  if (restoring_get(cx->inst_dir, s->db, &rs, &err) != 0)
    return exec_fail_early(s, &err);
  if (rs.known) {
    vmsg_set(&err, 927,
             "Database '%s' cannot be opened. It is in the middle of a "
             "restore.",
             s->db);
    return exec_fail_early(s, &err);
  }
  if (stat(path, &st) != 0) {
    vmsg_set(&err, 911,
             "Database '%s' does not exist. Make sure that the name is "
             "entered correctly.",
             s->db);
    return exec_fail_early(s, &err);
  }
  dbstate ds;
  if (dbstate_get(cx->inst_dir, s->db, &ds, &err) != 0)
    return exec_fail_early(s, &err);
  if (log && (!ds.known || !ds.full)) {
    vmsg_set(&err, 4208,
             "The statement BACKUP LOG is not allowed while the recovery "
             "model is SIMPLE. Use BACKUP DATABASE or change the recovery "
             "model using ALTER DATABASE.");
    return exec_fail_early(s, &err);
  }
  if (log && (!ds.has_log || !capture_running())) {
    vmsg_set(&err, 4214,
             "BACKUP LOG cannot be performed because there is no current "
             "database backup.%s",
             capture_running() ? ""
                               : " (The log is captured by the instance: "
                                 "run vdisql --serve -S DIR.)");
    return exec_fail_early(s, &err);
  }
  if (diff && (!ds.has_base || !capture_running())) {
    vmsg_set(&err, 3035,
             "Cannot perform a differential backup for database \"%s\", "
             "because a current database backup does not exist. Perform a "
             "full database backup by reissuing BACKUP DATABASE, omitting "
             "the WITH DIFFERENTIAL option.%s",
             s->db,
             capture_running() ? ""
                               : " (Changed pages are tracked by the "
                                 "instance: run vdisql --serve -S DIR.)");
    return exec_fail_early(s, &err);
  }
  if (!log && !diff && ensure_identity(cx, s, &ds, &err) != 0)
    return exec_fail_early(s, &err);
  /* WITH ENCRYPTION: the certificate first (Msg 15151), as SQL Server. */
  uint8_t thumb[VS_THUMBPRINT_SIZE];
  EVP_PKEY *pub = NULL;
  if (s->enc_alg && !(pub = certs_public(cx->inst_dir, s->cert, thumb, &err)))
    return exec_fail_early(s, &err);
  int lock;
  if (guard_lock(cx->inst_dir, s->db, 0, &lock, &err)) {
    EVP_PKEY_free(pub);
    return exec_fail_early(s, &err);
  }
  testhook_pause("backup_read_state");
  double t0 = exec_now();
  media_t *m = exec_open_media(cx, s, 1, &st, &err);
  if (m && pub) m = bc_writer(m, (uint32_t)s->enc_alg, pub, &err);
  EVP_PKEY_free(pub);
  if (!m) {
    guard_unlock(lock);
    return exec_fail(s, &err);
  }
  vs_header tmpl;
  memset(&tmpl, 0, sizeof tmpl);
  if (s->enc_alg) {
    tmpl.flags = VS_F_ENCRYPTED;
    tmpl.enc_algorithm = (uint32_t)s->enc_alg;
    tmpl.enc_type = VS_ENCRYPTOR_CERT;
    memcpy(tmpl.enc_thumbprint, thumb, VS_THUMBPRINT_SIZE);
  }
  tmpl.backup_type = log ? VS_TYPE_LOG : diff ? VS_TYPE_DIFF : VS_TYPE_DATABASE;
  tmpl.recovery = ds.full ? VS_RECOVERY_FULL : VS_RECOVERY_SIMPLE;
  memcpy(tmpl.family_id, ds.family, 16);
  if (ds.has_base) {
    tmpl.database_backup_lsn = ds.base_lsn;
    if (diff) {
      tmpl.diff_base_lsn = ds.base_lsn;
      memcpy(tmpl.diff_base_id, ds.base_set, 16);
    }
  }
  snprintf(tmpl.database, sizeof tmpl.database, "%s", s->db);
  wopts o = {0};
  o.compress = s->compression && !s->no_compression;
  o.comp_level = s->comp_level;
  o.checksum = s->checksum && !s->no_checksum;
  o.copy_only = s->copy_only;
  o.stats = s->stats;
  o.database = s->db;
  o.name = s->name;
  o.description = s->description;
  o.server = cx->server;
  o.src = &st;
  vs_header hdr;
  uint64_t bytes = 0, pages = 0;
  uint32_t ps = 0;
  o.out_header = &hdr;
  o.out_bytes = &bytes;
  int64_t started = (int64_t)time(NULL);
  struct sync_ctx sc = {s->db, diff, !log && !diff && !s->copy_only, 0, {0}};
  int rc;
  if (log) {
    cap_point pt;
    rc = capture_sync(s->db, 0, 0, &pt, &err) == 1 ? 0 : -1;
    /* The chain as of the sync: broken since the row was read above (the
     * capture skipped log), the archive's LSNs go on without a gap, but
     * the transactions skipped are not in it. */
    dbstate now;
    if (rc == 0 && (dbstate_get(cx->inst_dir, s->db, &now, &err) != 0 ||
                    !now.known || !now.has_log))
      rc = -1;
    if (rc && !err.num)
      vmsg_set(&err, 4214,
               "BACKUP LOG cannot be performed because there "
               "is no current database backup.");
    if (rc == 0) {
      tmpl.page_size = pt.page_size;
      tmpl.first_lsn = ds.log_lsn;
      tmpl.last_lsn = tmpl.checkpoint_lsn = pt.lsn;
      tmpl.first_time_ms = tmpl.last_time_ms = pt.time_ms;
      rc = stream_backup_log(cx->inst_dir, m, &o, &tmpl, &err);
      pages = hdr.units;
      ps = tmpl.page_size;
    }
  } else {
    snap_t *snap = NULL;
    snap_hook hook = {sync_hook, &sc};
    rc = snap_open(path, &hook, &snap, &err);
    if (rc == 0 && diff && !sc.followed) {
      vmsg_set(&err, 3035,
               "Cannot perform a differential backup for database \"%s\", "
               "because its changed pages are not tracked (is it in WAL "
               "mode?). Perform a full database backup.",
               s->db);
      rc = -1;
    }
    if (rc == 0) {
      int64_t t = sc.followed ? sc.pt.time_ms : now_ms();
      tmpl.first_time_ms = tmpl.last_time_ms = t;
      if (sc.followed)
        tmpl.first_lsn = tmpl.last_lsn = tmpl.checkpoint_lsn = sc.pt.lsn;
      o.changed = sc.pt.changed;
      o.changed_bytes = sc.pt.changed_bytes;
      rc = stream_backup(snap, m, &o, &tmpl, &err);
      pages = diff ? hdr.units : snap_page_count(snap);
      ps = snap_page_size(snap);
    }
    snap_close(snap); /* writers may go on while the media is finished */
    free(sc.pt.changed);
  }
  if (rc == 0) testhook_pause("backup_before_close");
  if (media_close(m, rc == 0) != 0) rc = -1;
  if (rc == 0) testhook_pause("backup_before_state");
  if (rc) {
    if (sc.start_base && sc.followed) capture_abandon_base(s->db);
    guard_unlock(lock);
    return exec_fail(s, &err);
  }
  /* The backup is complete: what it changes in the database's state.
   * Backups share the database's lock, so a log backup may end while a
   * full one does: each reads the row, changes its part and writes it
   * back, and without the mutex one would write back the other's old
   * part (a log position whose log the other already dropped). */
  vmsg serr = {0};
  dbstate now, was;
  pthread_mutex_lock(&state_mu);
  if (dbstate_get(cx->inst_dir, s->db, &now, &serr) == 0 && now.known) {
    int changed = 0;
    was = now;
    if (sc.start_base && sc.followed) {
      int first_of_chain = now.full && !now.has_log;
      if (capture_rebase(s->db, first_of_chain, sc.pt.breaks, &serr) == 0) {
        testhook_pause("backup_rebased");
        now.has_base = 1;
        now.base_lsn = sc.pt.lsn;
        memcpy(now.base_set, hdr.set_id, 16);
        if (first_of_chain) {
          now.has_log = 1;
          now.log_lsn = sc.pt.lsn;
        }
        changed = 1;
      }
    }
    /* Forward only: a log backup that began before another one and ends
     * after it holds less, and the archive below the other's end is
     * already dropped; the chain goes on from there. */
    if (log && !s->copy_only && !s->no_truncate && hdr.last_lsn > now.log_lsn) {
      now.log_lsn = hdr.last_lsn;
      changed = 1;
    }
    /* The capture thread's break (dbstate_break) does not take the
     * mutex: if it came meanwhile, it stands (the row as read is not
     * written back over it), and the log it skipped is not dropped. */
    if (changed &&
        dbstate_update(cx->inst_dir, s->db, &was, &now, &serr) == 0 && log &&
        !s->copy_only && !s->no_truncate)
      capture_truncate(s->db, hdr.last_lsn);
  }
  pthread_mutex_unlock(&state_mu);
  guard_unlock(lock);
  if (serr.num) out_vmsg(&serr, s->line);
  catalog_backup cb = {&hdr,    log ? 'L' : diff ? 'I' : 'D',
                       started, (int64_t)time(NULL),
                       bytes,   s->dev,
                       s->ndev, exec_device_type(s)};
  vmsg herr = {0};
  if (catalog_record(cx->inst_dir, &cb, &herr) != 0) out_vmsg(&herr, s->line);
  if (log) {
    out_info(4035,
             "Processed %llu pages for database '%s', file '%s_log' on file "
             "1.",
             (unsigned long long)pages, s->db, s->db);
    exec_done_line("BACKUP LOG", pages, ps, exec_now() - t0);
  } else {
    out_info(4035,
             "Processed %llu pages for database '%s', file '%s' on file 1.",
             (unsigned long long)pages, s->db, s->db);
    exec_done_line(diff ? "BACKUP DATABASE WITH DIFFERENTIAL"
                        : "BACKUP DATABASE",
                   pages, ps, exec_now() - t0);
  }
  return 0;
}
