/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec_restore.c - RESTORE DATABASE (full, differential), RESTORE LOG,
 * RESTORE DATABASE ... WITH RECOVERY, and the VERIFYONLY, HEADERONLY and
 * FILELISTONLY readers.  SQL Server's rules are checked first
 * (restoreplan.h); a full restore WITH NORECOVERY and every later step of
 * the sequence work on the staged file (stage.h), so the database that
 * was there stays intact until the sequence is recovered.
 */
#include "exec_int.h"

#include "backupcrypt.h"
#include "capture.h"
#include "catalog.h"
#include "certs.h"
#include "dbstate.h"
#include "dbwrite.h"
#include "guard.h"
#include "logarc.h"
#include "restoreplan.h"
#include "stage.h"
#include "stream.h"
#include "testhook.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *type_code(const vs_header *h) {
  return h->backup_type == VS_TYPE_LOG    ? "2"
         : h->backup_type == VS_TYPE_DIFF ? "5"
                                          : "1";
}

static const char *type_text(const vs_header *h) {
  return h->backup_type == VS_TYPE_LOG    ? "Transaction Log"
         : h->backup_type == VS_TYPE_DIFF ? "Database Differential"
                                          : "Database";
}

/* An LSN column: NULL where SQL Server shows NULL (no log position). */
static const char *lsn_text(uint64_t v, char *buf, size_t n) {
  if (v == 0) return NULL;
  snprintf(buf, n, "%llu", (unsigned long long)v);
  return buf;
}

static void ms_text(int64_t ms, time_t fallback, char *buf, size_t n) {
  struct tm tm;
  time_t t = ms ? (time_t)(ms / 1000) : fallback;
  localtime_r(&t, &tm);
  size_t k = strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
  if (ms && k + 5 < n) snprintf(buf + k, n - k, ".%03d", (int)(ms % 1000));
}

static void print_header(const exec_ctx *cx, const vs_header *h) {
  static const uint8_t zero[16];
  char guid[40], fam[40], dbase[40], size[32], start[40], finish[40], pages[32],
      psz[32], stripes[32], l1[32], l2[32], l3[32], l4[32], l5[32];
  vs_format_guid(h->set_id, guid);
  const int enc = (h->flags & VS_F_ENCRYPTED) != 0;
  char thumb[48];
  if (enc) vs_format_thumbprint(h->enc_thumbprint, thumb);
  const int has_fam = memcmp(h->family_id, zero, 16) != 0;
  const int has_base = memcmp(h->diff_base_id, zero, 16) != 0;
  if (has_fam) vs_format_guid(h->family_id, fam);
  if (has_base) vs_format_guid(h->diff_base_id, dbase);
  snprintf(size, sizeof size, "%llu",
           (unsigned long long)(h->units * vs_unit_size(h)));
  ms_text(h->first_time_ms, (time_t)h->start_time, start, sizeof start);
  ms_text(h->last_time_ms, (time_t)h->start_time, finish, sizeof finish);
  snprintf(pages, sizeof pages, "%llu", (unsigned long long)h->page_count);
  snprintf(psz, sizeof psz, "%u", h->page_size);
  snprintf(stripes, sizeof stripes, "%u", h->stripe_count);
  static const char *const head[] = {"BackupName",
                                     "BackupDescription",
                                     "BackupType",
                                     "Compressed",
                                     "Position",
                                     "DeviceType",
                                     "ServerName",
                                     "DatabaseName",
                                     "BackupSize",
                                     "FirstLSN",
                                     "LastLSN",
                                     "CheckpointLSN",
                                     "DatabaseBackupLSN",
                                     "BackupStartDate",
                                     "BackupFinishDate",
                                     "PageSize",
                                     "PageCount",
                                     "FamilyCount",
                                     "FamilyGUID",
                                     "HasBackupChecksums",
                                     "IsCopyOnly",
                                     "RecoveryModel",
                                     "DifferentialBaseLSN",
                                     "DifferentialBaseGUID",
                                     "BackupTypeDescription",
                                     "BackupSetGUID",
                                     "KeyAlgorithm",
                                     "EncryptorThumbprint",
                                     "EncryptorType"};
  /* SQL Server's types of these columns, for TDS clients. */
  static const char *const type[] = {"nvarchar(128)",
                                     "nvarchar(255)",
                                     "smallint",
                                     "tinyint",
                                     "smallint",
                                     "tinyint",
                                     "nvarchar(128)",
                                     "nvarchar(128)",
                                     "numeric(20,0)",
                                     "numeric(25,0)",
                                     "numeric(25,0)",
                                     "numeric(25,0)",
                                     "numeric(25,0)",
                                     "datetime",
                                     "datetime",
                                     "int",
                                     "bigint",
                                     "int",
                                     "uniqueidentifier",
                                     "bit",
                                     "bit",
                                     "nvarchar(60)",
                                     "numeric(25,0)",
                                     "uniqueidentifier",
                                     "nvarchar(60)",
                                     "uniqueidentifier",
                                     "nvarchar(32)",
                                     "varbinary(20)",
                                     "nvarchar(32)"};
  const char *row[] = {h->name[0] ? h->name : NULL,
                       h->description[0] ? h->description : NULL,
                       type_code(h),
                       (h->flags & VS_F_COMPRESSED) ? "1" : "0",
                       "1",
                       h->device_type == VS_DEVICE_VIRTUAL ? "7" : "2",
                       h->server,
                       h->database,
                       size,
                       lsn_text(h->first_lsn, l1, sizeof l1),
                       lsn_text(h->last_lsn, l2, sizeof l2),
                       lsn_text(h->checkpoint_lsn, l3, sizeof l3),
                       lsn_text(h->database_backup_lsn, l4, sizeof l4),
                       start,
                       finish,
                       psz,
                       pages,
                       stripes,
                       has_fam ? fam : NULL,
                       (h->flags & VS_F_CHECKSUM) ? "1" : "0",
                       (h->flags & VS_F_COPY_ONLY) ? "1" : "0",
                       h->recovery == VS_RECOVERY_FULL ? "FULL" : "SIMPLE",
                       lsn_text(h->diff_base_lsn, l5, sizeof l5),
                       has_base ? dbase : NULL,
                       type_text(h),
                       guid,
                       enc ? vs_enc_name(h->enc_algorithm) : NULL,
                       enc ? thumb : NULL,
                       enc ? "CERTIFICATE" : NULL};
  const int n = (int)(sizeof head / sizeof head[0]);
  _Static_assert(sizeof type == sizeof head, "a type for every column");
  out_columns(cx->colsep, cx->headers, n, head, type);
  out_row(cx->colsep, n, row);
}

static void print_filelist(const exec_ctx *cx, const vs_header *h) {
  char size[32], psz[32], logical[200], physical[4200];
  static const char *const head[] = {
      "LogicalName",       "PhysicalName",   "Type",
      "FileGroupName",     "Size",           "FileId",
      "BackupSizeInBytes", "SourceBlockSize"};
  snprintf(size, sizeof size, "%llu",
           (unsigned long long)(h->page_count * h->page_size));
  snprintf(psz, sizeof psz, "%u", h->page_size);
  snprintf(logical, sizeof logical, "%s", h->database);
  snprintf(physical, sizeof physical, "%s/%s.db", cx->inst_dir, h->database);
  static const char *const type[] = {
      "nvarchar(128)", "nvarchar(260)", "nvarchar(1)",   "nvarchar(128)",
      "numeric(20,0)", "bigint",        "numeric(20,0)", "int"};
  const char *row[] = {logical, physical, "D", "PRIMARY", size, "1", size, psz};
  out_columns(cx->colsep, cx->headers, 8, head, type);
  out_row(cx->colsep, 8, row);
}

/* The first LSN of a database restored WITH RECOVERY at @p lsn.  From
 * there it goes on along a new recovery path: the log it writes next is
 * not the log its old path's backups hold past @p lsn (nor that of
 * another restore from the same backups), and the restore rules compare
 * LSNs only, so the paths must not share any: each starts at its own
 * random multiple of 2^32 beyond @p lsn (as a damaged archive's
 * successor starts beyond it, logarc.c). */
static uint64_t new_path_lsn(uint64_t lsn) {
  uint32_t r = 0;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint32_t)time(NULL) ^ (uint32_t)getpid();
  return ((lsn >> 32) + 1 + (r & 0xFFFFFu)) << 32;
}

/* What a restore with RECOVERY leaves in the catalog: the database has
 * the backups' identity and recovery model; its log chain and its
 * differential base start again at its next full backup (stricter than
 * SQL Server, which lets the chain go on: docs/INSTANCE.md). */
static void online_state(const exec_ctx *cx, const char *db,
                         const uint8_t family[16], int full, uint64_t lsn) {
  dbstate ds;
  vmsg err = {0};
  memset(&ds, 0, sizeof ds);
  ds.known = 1;
  memcpy(ds.family, family, 16);
  ds.full = full;
  ds.lsn_floor = new_path_lsn(lsn);
  la_remove(cx->inst_dir, db);
  if (dbstate_put(cx->inst_dir, db, &ds, &err) != 0) out_vmsg(&err, 0);
  if (capture_running() && full) {
    vmsg ignore = {0};
    capture_track(db, full, &ignore);
  }
}

/* RESTORE DATABASE db WITH RECOVERY, after a sequence WITH NORECOVERY. */
static int recover(const exec_ctx *cx, const stmt *s, restoring *r, vmsg *err) {
  if (rp_check_restoring(s->db, r, err)) return -1;
  if (stage_recover(cx->inst_dir, s->db, err)) return -1;
  testhook_pause("restore_switched");
  restoring_forget(cx->inst_dir, s->db);
  online_state(cx, s->db, r->family, r->full, r->lsn);
  return 0;
}

static int run_recover(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  int lock;
  double t0 = exec_now();
  if (guard_lock(cx->inst_dir, s->db, 1, &lock, &err))
    return exec_fail(s, &err);
  restoring r;
  int rc = restoring_get(cx->inst_dir, s->db, &r, &err);
  if (rc == 0) rc = recover(cx, s, &r, &err);
  guard_unlock(lock);
  if (rc) return exec_fail(s, &err);
  exec_done_line("RESTORE DATABASE", 0, 4096, exec_now() - t0);
  return 0;
}

/* Read a whole differential or log backup into a spool (every checksum
 * checked); only then is anything applied. */
static int spool_body(media_t *m, const stmt *s, const vs_header *h,
                      const unsigned *order, spool_t *sp, vmsg *err) {
  rsink sink = {sp, spool_sink};
  if (stream_read_body(m, s->dev, h, order, &sink, s->stats, err)) return -1;
  return media_peer_ok(m);
}

/* A full backup: into place (RECOVERY) or to the stage (NORECOVERY). */
static int restore_full(const exec_ctx *cx, const stmt *s, media_t *m,
                        const vs_header *h, const unsigned *order,
                        const restoring *was, vmsg *err) {
  dbw_source src = {h->page_size, (h->flags & VS_F_SRC_MODE) != 0, h->src_mode,
                    h->src_gid};
  if (!s->replace && rp_check_full(cx->inst_dir, s->db, h, err)) return -1;
  dbw_t *w = dbw_open(cx->inst_dir, s->db, &src, 1, err);
  if (!w) return -1;
  rsink sink = {w, dbw_write};
  int rc = stream_read_body(m, s->dev, h, order, &sink, s->stats, err);
  if (rc == 0 && was->known)
    dbw_skip_takeover(w); /* DIR/<db>.db is our placeholder */
  /* The capture's connections must not hold the file being replaced. */
  if (rc == 0) capture_release(s->db);
  if (rc == 0) rc = dbw_prepare(w, h->page_count, err);
  if (rc == 0) testhook_pause("restore_commit");
  if (rc == 0) rc = media_peer_ok(m);
  if (rc == 0 && s->norecovery) {
    char staged[PATH_MAX + 300], dir[PATH_MAX + 300];
    restoring r;
    memset(&r, 0, sizeof r);
    r.known = 1;
    memcpy(r.family, h->family_id, 16);
    r.full = h->recovery == VS_RECOVERY_FULL;
    r.lsn = h->last_lsn;
    memcpy(r.last_set, h->set_id, 16);
    memcpy(r.base_set, h->set_id, 16);
    r.time_ms = h->last_time_ms;
    r.page_size = h->page_size;
    stage_path(cx->inst_dir, s->db, staged, sizeof staged);
    snprintf(dir, sizeof dir, "%s", staged);
    *strrchr(dir, '/') = 0;
    /* The staged file, then the row: from the row on, the database is
     * RESTORING and the staged file is what RECOVERY brings online; the
     * placeholder last, so that a restore cut off before it leaves the
     * old file (and a sequence that RECOVERY or a new restore ends). */
    /* Over a sequence in progress, whose row describes the staged file
     * about to be replaced: until the new row is written, a restore cut
     * off must not let the old sequence go on over the new file (its
     * next log applied onto another backup's pages), so the old row says
     * first that the sequence must be started again (Msg 3456). */
    if (was->known) {
      restoring old = *was;
      old.applying = 1;
      rc = restoring_put(cx->inst_dir, s->db, &old, err);
    }
    if (rc == 0) rc = dbw_switch_to(w, staged, err);
    if (rc == 0) rc = dbw_sync_dir(dir, err);
    if (rc == 0) testhook_pause("restore_staged");
    if (rc == 0) rc = restoring_put(cx->inst_dir, s->db, &r, err);
    if (rc == 0) {
      dbstate_forget(cx->inst_dir, s->db);
      la_remove(cx->inst_dir, s->db);
      rc = stage_placeholder(cx->inst_dir, s->db, err);
    }
  } else if (rc == 0) {
    /* Over a sequence in progress: its row goes first.  Cut off after
     * the switch, the row would call the database RESTORING while it is
     * online, and its RECOVERY would put the old sequence's staged file
     * over it; cut off before, the placeholder stays, with no sequence. */
    if (was->known) restoring_forget(cx->inst_dir, s->db);
    rc = dbw_switch(w, err);
    if (rc == 0) testhook_pause("restore_switched");
    if (rc == 0) {
      online_state(cx, s->db, h->family_id, h->recovery == VS_RECOVERY_FULL,
                   h->last_lsn);
    }
  }
  /* Switched (or not): the old database is let go of only now, so that
   * no commit could be made in it that the switch then threw away. */
  dbw_release(w);
  if (rc) {
    /* Not replaced: the database that was there is followed again. */
    dbstate ds;
    vmsg ignore = {0};
    if (capture_running() &&
        dbstate_get(cx->inst_dir, s->db, &ds, &ignore) == 0 && ds.known)
      capture_track(s->db, ds.full, &ignore);
  }
  dbw_free(w);
  return rc;
}

/* RESTORE ... WITH RECOVERY is the default; NORECOVERY keeps the
 * sequence open. */
static int wants_recovery(const stmt *s) {
  return !s->norecovery;
}

static int restore_diff(const exec_ctx *cx, const stmt *s, media_t *m,
                        const vs_header *h, const unsigned *order, restoring *r,
                        vmsg *err) {
  if (rp_check_diff(s->db, r, h, err)) return -1;
  spool_t *sp = spool_open(cx->inst_dir, s->db, h->page_size, err);
  if (!sp) return -1;
  int rc = spool_body(m, s, h, order, sp, err);
  if (rc == 0) rc = stage_apply_diff(cx->inst_dir, s->db, sp, h, r, err);
  spool_free(sp);
  if (rc == 0 && wants_recovery(s)) rc = recover(cx, s, r, err);
  return rc;
}

static int restore_log(const exec_ctx *cx, const stmt *s, media_t *m,
                       const vs_header *h, const unsigned *order, restoring *r,
                       vmsg *err) {
  int64_t stop = RP_NO_STOPAT;
  if (s->stopat[0] && rp_parse_stopat(s->stopat, &stop, err)) return -1;
  if (rp_check_log(s->db, r, h, stop, err)) return -1;
  spool_t *sp =
      spool_open(cx->inst_dir, s->db, VS_LOGREC_HDR + h->page_size, err);
  if (!sp) return -1;
  int reached = 0;
  int rc = spool_body(m, s, h, order, sp, err);
  if (rc == 0)
    rc = stage_apply_log(cx->inst_dir, s->db, sp, h, stop, r, &reached, err);
  spool_free(sp);
  if (rc || !wants_recovery(s)) return rc;
  if (stop != RP_NO_STOPAT && !reached) {
    /* The stop point lies after this backup: the sequence goes on. */
    out_info(4322,
             "This log file contains records logged before the designated "
             "point-in-time. The database is being left in the Restoring "
             "state so you can apply another log file.");
    return 0;
  }
  return recover(cx, s, r, err);
}

int exec_restore(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  int lock = -1;
  const int into_db = s->kind == ST_RESTORE_DB || s->kind == ST_RESTORE_LOG;
  if (s->kind == ST_RECOVER) return run_recover(cx, s);
  restoring r;
  memset(&r, 0, sizeof r);
  int64_t stop;
  if (s->stopat[0] && rp_parse_stopat(s->stopat, &stop, &err))
    return exec_fail_early(s, &err);
  if (into_db) {
    /* One restore of a database at a time, and none under a backup. */
    if (guard_lock(cx->inst_dir, s->db, 1, &lock, &err))
      return exec_fail_early(s, &err);
    if (restoring_get(cx->inst_dir, s->db, &r, &err) != 0 ||
        (s->kind == ST_RESTORE_LOG && rp_check_restoring(s->db, &r, &err))) {
      guard_unlock(lock);
      return exec_fail_early(s, &err);
    }
  }

  double t0 = exec_now();
  media_t *m = exec_open_media(cx, s, 0, NULL, &err);
  if (!m) {
    guard_unlock(lock);
    return exec_fail(s, &err);
  }
  vs_header h;
  unsigned order[VS_MAX_STRIPES];
  int rc = stream_read_headers(m, s->dev, &h, order, &err);
  /* An encrypted backup: HEADERONLY reads its clear header; everything
   * else needs the certificate (Msg 33111), as in SQL Server. */
  EVP_PKEY *priv = NULL;
  if (rc == 0 && (h.flags & VS_F_ENCRYPTED) && s->kind != ST_HEADERONLY) {
    priv = certs_private(cx->inst_dir, h.enc_thumbprint, &err);
    media_t *dec = priv ? bc_reader(m, &h, order, priv, s->dev, &err) : NULL;
    if (dec)
      m = dec;
    else
      rc = -1;
    if (rc == 0 && s->kind == ST_FILELISTONLY) rc = bc_check_key(m);
  }
  if (rc == 0 && (s->kind == ST_HEADERONLY || s->kind == ST_FILELISTONLY)) {
    media_close(m, 1);
    EVP_PKEY_free(priv);
    if (s->kind == ST_HEADERONLY)
      print_header(cx, &h);
    else
      print_filelist(cx, &h);
    out_rows_done(1);
    return 0;
  }
  if (rc == 0 && s->kind == ST_VERIFYONLY) {
    rsink none = {NULL, NULL};
    rc = stream_read_body(m, s->dev, &h, order, &none, s->stats, &err);
  }
  if (rc == 0 && into_db)
    rc = rp_check_kind(s->kind == ST_RESTORE_LOG, &h, &err);
  if (rc == 0 && (into_db || s->kind == ST_VERIFYONLY))
    rc = rp_check_moves(cx->inst_dir, s->db[0] ? s->db : h.database, &h,
                        s->nmove, s->move_from, s->move_to, &err);
  int done = 0; /* the restore took effect (closing may still complain) */
  if (rc == 0 && into_db) {
    if (h.backup_type == VS_TYPE_LOG)
      rc = restore_log(cx, s, m, &h, order, &r, &err);
    else if (h.backup_type == VS_TYPE_DIFF)
      rc = restore_diff(cx, s, m, &h, order, &r, &err);
    else
      rc = restore_full(cx, s, m, &h, order, &r, &err);
    done = rc == 0;
  }
  /* After the switch the restore has happened, whatever closing the
   * devices then says (a client killed after it): report it as done. */
  if (media_close(m, rc == 0) != 0 && !done) rc = -1;
  EVP_PKEY_free(priv);
  guard_unlock(lock);
  if (rc) return exec_fail(s, &err);
  if (s->kind == ST_VERIFYONLY) {
    out_info(3262, "The backup set on file 1 is valid.");
    return 0;
  }
  const int log = h.backup_type == VS_TYPE_LOG;
  out_info(4035,
           "Processed %llu pages for database '%s', file '%s%s' on file 1.",
           (unsigned long long)h.units, s->db, s->db, log ? "_log" : "");
  exec_done_line(log ? "RESTORE LOG" : "RESTORE DATABASE", h.units, h.page_size,
                 exec_now() - t0);
  return 0;
}
