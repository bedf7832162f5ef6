/*
 * exec.c - the statement runner: opens the database snapshot or the
 * restore target and the media, runs the stream writer or reader, prints
 * the result lines (Processed ..., ... successfully processed ...) or the
 * Msg lines followed by the statement's "terminating abnormally" message.
 */
#include "exec.h"

#include "catalog.h"
#include "dbwrite.h"
#include "guard.h"
#include "stream.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const stmt *s, const vmsg *m) {
  out_vmsg(m, s->line);
  out_msg(3013, 16, s->line, "%s is terminating abnormally.",
          stmt_verb(s->kind));
  return -1;
}

/* A statement that fails before its devices are used still has to tell
 * a waiting VDI client, or that client would wait forever. */
static int fail_early(const stmt *s, const vmsg *m) {
  if (s->dev_kind == DEV_VIRTUAL && s->ndev > 0) vdidev_abort_set(s->dev[0]);
  return fail(s, m);
}

static media_t *open_media(const exec_ctx *cx, const stmt *s, int writing,
                           const struct stat *src, vmsg *err) {
  media_opts o = {0};
  o.src = src;
  o.writing = writing;
  o.overwrite = s->init || s->format;
  o.blocksize = s->blocksize;
  o.buffercount = s->buffercount;
  o.maxtransfer = s->maxtransfer;
  o.base_dir = cx->inst_dir;
  if (s->dev_kind == DEV_DISK) return disk_open(s->dev, s->ndev, &o, err);
  return vdidev_open(s->dev, s->ndev, &o, err);
}

/* msdb's device_type: 2 disk, 7 virtual device. */
static int m_device_type(const stmt *s) {
  return s->dev_kind == DEV_DISK ? 2 : 7;
}

static void done_line(const char *verb, uint64_t pages, uint32_t ps,
                      double secs) {
  double mb = (double)pages * ps / 1048576.0;
  if (secs < 0.001) secs = 0.001;
  out_info("%s successfully processed %llu pages in %.3f seconds (%.3f "
           "MB/sec).",
           verb, (unsigned long long)pages, secs, mb / secs);
}

static int run_backup(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  char path[4200];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s.db", cx->inst_dir, s->db);
  if (stat(path, &st) != 0) {
    vmsg_set(&err, 911,
             "Database '%s' does not exist. Make sure that the name is "
             "entered correctly.",
             s->db);
    return fail_early(s, &err);
  }
  int lock;
  if (guard_lock(cx->inst_dir, s->db, 0, &lock, &err))
    return fail_early(s, &err);
  double t0 = now_s();
  media_t *m = open_media(cx, s, 1, &st, &err);
  if (!m) {
    guard_unlock(lock);
    return fail(s, &err);
  }
  snap_t *snap = NULL;
  if (snap_open(path, &snap, &err)) {
    media_close(m, 0);
    guard_unlock(lock);
    return fail(s, &err);
  }
  wopts o = {0};
  o.compress = s->compression && !s->no_compression;
  o.checksum = s->checksum && !s->no_checksum;
  o.copy_only = s->copy_only;
  o.stats = s->stats;
  o.database = s->db;
  o.name = s->name;
  o.description = s->description;
  o.server = cx->server;
  o.src = &st;
  vs_header hdr;
  uint64_t bytes = 0;
  o.out_header = &hdr;
  o.out_bytes = &bytes;
  int64_t started = (int64_t)time(NULL);
  int rc = stream_backup(snap, m, &o, &err);
  uint64_t pages = snap_page_count(snap);
  uint32_t ps = snap_page_size(snap);
  snap_close(snap); /* writers may go on while the media is finished */
  if (media_close(m, rc == 0) != 0) rc = -1;
  guard_unlock(lock);
  if (rc) return fail(s, &err);
  catalog_backup cb = {&hdr,  'D',    started, (int64_t)time(NULL),
                       bytes, s->dev, s->ndev, m_device_type(s)};
  vmsg herr = {0};
  if (catalog_record(cx->inst_dir, &cb, &herr) != 0) out_vmsg(&herr, s->line);
  out_info("Processed %llu pages for database '%s', file '%s' on file 1.",
           (unsigned long long)pages, s->db, s->db);
  done_line("BACKUP DATABASE", pages, ps, now_s() - t0);
  return 0;
}

static void print_row(const exec_ctx *cx, const char *const *cols, int n) {
  for (int i = 0; i < n; i++)
    fprintf(out_stream(), "%s%s", i ? cx->colsep : "", cols[i]);
  fputc('\n', out_stream());
}

static void print_info(const exec_ctx *cx, const stmt *s, const vs_header *h,
                       const char *source) {
  char guid[40], size[32], date[32], pages[32], psz[32], stripes[32],
      logical[200], physical[4200];
  struct tm tm;
  time_t t = (time_t)h->start_time;
  vs_format_guid(h->set_id, guid);
  snprintf(size, sizeof size, "%llu",
           (unsigned long long)(h->page_count * h->page_size));
  localtime_r(&t, &tm);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(pages, sizeof pages, "%llu", (unsigned long long)h->page_count);
  snprintf(psz, sizeof psz, "%u", h->page_size);
  snprintf(stripes, sizeof stripes, "%u", h->stripe_count);
  if (s->kind == ST_HEADERONLY) {
    static const char *const head[] = {
        "BackupName",  "BackupDescription", "BackupType", "Compressed",
        "Position",    "DeviceType",        "ServerName", "DatabaseName",
        "BackupSize",  "BackupStartDate",   "PageSize",   "PageCount",
        "FamilyCount", "BackupSetGUID",     "IsCopyOnly", "HasBackupChecksums"};
    const char *row[] = {h->name[0] ? h->name : "NULL",
                         h->description[0] ? h->description : "NULL",
                         "1",
                         (h->flags & VS_F_COMPRESSED) ? "1" : "0",
                         "1",
                         h->device_type == VS_DEVICE_VIRTUAL ? "7" : "2",
                         h->server,
                         h->database,
                         size,
                         date,
                         psz,
                         pages,
                         stripes,
                         guid,
                         (h->flags & VS_F_COPY_ONLY) ? "1" : "0",
                         (h->flags & VS_F_CHECKSUM) ? "1" : "0"};
    if (cx->headers) print_row(cx, head, 16);
    print_row(cx, row, 16);
  } else {
    static const char *const head[] = {
        "LogicalName",       "PhysicalName",   "Type",
        "FileGroupName",     "Size",           "FileId",
        "BackupSizeInBytes", "SourceBlockSize"};
    snprintf(logical, sizeof logical, "%s", h->database);
    snprintf(physical, sizeof physical, "%s/%s.db", source, h->database);
    const char *row[] = {logical, physical, "D",  "PRIMARY",
                         size,    "1",      size, psz};
    if (cx->headers) print_row(cx, head, 8);
    print_row(cx, row, 8);
  }
  fprintf(out_stream(), "\n(1 rows affected)\n");
  fflush(out_stream());
}

/* Test hook (TESTING.md): stop at the boundary of a restore's commit, so
 * a test can kill the client exactly there. */
static void test_pause_before_switch(void) {
  const char *mark = getenv("VDISQL_TEST_COMMIT_MARK");
  const char *ms = getenv("VDISQL_TEST_COMMIT_PAUSE_MS");
  if (mark && *mark) {
    int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
  }
  if (ms && *ms) usleep((useconds_t)strtoul(ms, NULL, 10) * 1000);
}

/* The end of a restore, in the order that makes it all or nothing for the
 * client as well as for the disk (docs/RELIABILITY.md, "When a restore
 * takes effect"): the new database is complete, synced and checked, the
 * old one taken over; then the client must still be there (every device
 * answered the end of its stream and nobody aborted); only then the
 * switch; only after it are the devices closed, so the client learns that
 * its restore is done (VD_E_CLOSE) after it is. */
static int finish_restore(media_t *m, dbw_t *w, const vs_header *h, vmsg *err) {
  if (dbw_prepare(w, h->page_count, err)) return -1;
  test_pause_before_switch();
  if (media_peer_ok(m)) return -1;
  return dbw_switch(w, err);
}

static int run_restore(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  dbw_t *w = NULL;
  int lock = -1;
  if (s->kind == ST_RESTORE_DB) {
    char path[4200];
    struct stat st;
    /* One restore of a database at a time, and none under a backup. */
    if (guard_lock(cx->inst_dir, s->db, 1, &lock, &err))
      return fail_early(s, &err);
    snprintf(path, sizeof path, "%s/%s.db", cx->inst_dir, s->db);
    if (stat(path, &st) == 0 && !s->replace) {
      vmsg_set(&err, 1834,
               "The file '%s' cannot be overwritten. It is being used by "
               "database '%s'. Use WITH REPLACE to overwrite the existing "
               "database.",
               path, s->db);
      guard_unlock(lock);
      return fail_early(s, &err);
    }
  }
  double t0 = now_s();
  media_t *m = open_media(cx, s, 0, NULL, &err);
  if (!m) {
    guard_unlock(lock);
    return fail(s, &err);
  }
  vs_header h;
  unsigned order[VS_MAX_STRIPES];
  int rc = stream_read_headers(m, s->dev, &h, order, &err);
  if (rc == 0 && (s->kind == ST_HEADERONLY || s->kind == ST_FILELISTONLY)) {
    media_close(m, 1);
    print_info(cx, s, &h, cx->inst_dir);
    return 0;
  }
  if (rc == 0 && s->kind == ST_RESTORE_DB) {
    dbw_source src = {h.page_size, (h.flags & VS_F_SRC_MODE) != 0, h.src_mode,
                      h.src_gid};
    w = dbw_open(cx->inst_dir, s->db, &src, s->replace, &err);
    if (!w) rc = -1;
  }
  rsink sink = {w, w ? dbw_write : NULL};
  if (rc == 0)
    rc = stream_read_body(m, s->dev, &h, order, &sink, s->stats, &err);
  if (rc == 0 && w) rc = finish_restore(m, w, &h, &err);
  /* After the switch the restore has happened, whatever closing the
   * devices then says (a client killed after it): report it as done. */
  int switched = rc == 0 && w;
  if (media_close(m, rc == 0) != 0 && !switched) rc = -1;
  dbw_free(w);
  guard_unlock(lock);
  if (rc) return fail(s, &err);
  if (s->kind == ST_VERIFYONLY) {
    out_info("The backup set on file 1 is valid.");
    return 0;
  }
  out_info("Processed %llu pages for database '%s', file '%s' on file 1.",
           (unsigned long long)h.page_count, s->db, s->db);
  done_line("RESTORE DATABASE", h.page_count, h.page_size, now_s() - t0);
  return 0;
}

int exec_stmt(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  switch (s->kind) {
  case ST_BACKUP_DB:
    return run_backup(cx, s);
  case ST_BACKUP_LOG:
  case ST_RESTORE_LOG:
    vmsg_set(&err, 4208,
             "The statement %s is not allowed: a SQLite database has no "
             "transaction log to back up or restore. Use %s DATABASE.",
             stmt_verb(s->kind),
             s->kind == ST_BACKUP_LOG ? "BACKUP" : "RESTORE");
    return fail_early(s, &err);
  default:
    return run_restore(cx, s);
  }
}
