/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture.c - the log capture (see capture.h).
 *
 * Why no committed frame can be lost (docs/INSTANCE.md has the full
 * argument and the SQLite documentation it rests on):
 *  - The thread always holds a read transaction on the database ("the
 *    pin"), rotating it: a new one begins before the old one ends.  While
 *    a reader uses WAL frames (read mark > 0), SQLite cannot restart or
 *    truncate the WAL, so frames are only appended.
 *  - A pin with read mark 0 is possible only when the WAL was completely
 *    checkpointed at its start, which a checkpoint cannot do past the
 *    previous pin's mark, which is at most what was already copied.  So
 *    when the WAL restarts, everything in it had been copied.
 *  - Only frames up to the wal-index header's mxFrame (the last commit)
 *    are copied, each checked against the WAL's salts and running
 *    checksum; a frame that does not check is a broken chain, never
 *    data.
 *  - The archive's mark (fdatasync'ed) says which WAL generation and frame
 *    was copied last.  At start, the WAL must continue exactly there
 *    (same salts, that frame's checksum); otherwise frames may have been
 *    lost while no instance ran, and the chain is broken (Msg 4214 until
 *    a full backup).
 * The thread polls the wal-index header in shared memory (no system
 * call), every VDISQL_CAPTURE_POLL_MS (default 2) milliseconds; a commit
 * is stamped with the poll that saw it.
 */
#include "capture.h"

#include "dbstate.h"
#include "logarc.h"
#include "walfmt.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Our own checkpoint (which restarts the WAL) runs once this many bytes of
 * frames follow the last restart.  Its last step holds the write lock for
 * a few syncs, and a writer that meets it sleeps in SQLite's busy handler
 * (1, 2, 5 ms...), which costs the application far more than the lock
 * itself: so it runs rarely, about every 16 MiB of log.  The backfill in
 * between is done by the application's own autocheckpoint (every 1000
 * frames by default, up to our pin), as without the instance. */
#define CYCLE_BYTES      (16u << 20)
#define CYCLE_MIN_FRAMES 500u
#define IDLE_ROTATE_MS   5    /* move an idle pin this often */
#define OBS_N            1024 /* wal-index observations kept for stamping */

/* The watcher saw the WAL generation @p salt end at frame @p mx at @p t. */
struct obs {
  uint8_t salt[8];
  uint32_t mx;
  int64_t t;
};

struct cdb {
  struct cdb *next;
  char db[129];
  char path[PATH_MAX + 200];
  int full;
  volatile int stop;
  pthread_t th;
  int started;
  pthread_mutex_t mu;
  sqlite3 *r[2], *w, *ck;
  int cur;
  volatile void *shm;
  logarc_t *arc;
  la_pos pos;
  uint32_t ps;
  int big;
  uint8_t *fbuf;
  int64_t poll_ms, last_cycle_ms, last_rotate_ms;
  /* The watcher thread: it only reads the wal-index header, so its
   * stamps are not delayed by the copier's writes and syncs. */
  pthread_t wth;
  int wstarted;
  pthread_mutex_t omu;
  struct obs ring[OBS_N];
  unsigned ohead, ocount;
  uint8_t *base_set; /* pages changed since a running full backup's point */
  size_t base_bytes;
  uint64_t base_lsn;
  int base_on;
  uint64_t breaks; /* chain breaks so far (cap_point.breaks) */
};

static struct {
  pthread_mutex_t mu;
  struct cdb *list;
  char dir[PATH_MAX];
  int running;
  int poll_ms;
} G = {PTHREAD_MUTEX_INITIALIZER, NULL, "", 0, 2};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void note(const struct cdb *c, const char *what) {
  fprintf(stderr, "vdisql: database '%s': %s\n", c->db, what);
}

static int exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static sqlite3 *open_conn(const char *path, int busy_ms) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return NULL;
  }
  /* Our connections closing must not checkpoint and delete the WAL: the
   * next start has to find the generation it was following. */
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_busy_timeout(db, busy_ms);
  return db;
}

/* The write lock for our checkpoint: a busy writer leaves it free only
 * for microseconds between its transactions, so try again often and
 * briefly (SQLite's own busy handler sleeps a millisecond and more). */
static int quick_busy(void *ctx, int n) {
  (void)ctx;
  if (n >= 2000) return 0; /* about 20 ms */
  struct timespec d = {0, 10000};
  nanosleep(&d, NULL);
  return 1;
}

static int begin_read(sqlite3 *db) {
  if (exec(db, "BEGIN") != SQLITE_OK) return -1;
  if (exec(db, "SELECT count(*) FROM sqlite_master") != SQLITE_OK) {
    exec(db, "ROLLBACK");
    return -1;
  }
  return 0;
}

static sqlite3_file *wal_file(sqlite3 *db) {
  sqlite3_file *f = NULL;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
  return f && f->pMethods ? f : NULL;
}

/* A new pin begins, then the old one ends: never a moment without.
 * Only right after follow() copied everything up to an mxFrame at or past
 * the old pin's end mark (docs/INSTANCE.md, obligation 2). */
static void rotate(struct cdb *c) {
  int n = 1 - c->cur;
  if (begin_read(c->r[n]) != 0) return;
  exec(c->r[c->cur], "ROLLBACK");
  c->cur = n;
  c->last_rotate_ms = now_ms();
}

/* Reset the position to the WAL's current end (after a break). */
static void skip_to_end(struct cdb *c, const wal_index_hdr *h) {
  memcpy(c->pos.salt, h->salt, 8);
  c->pos.frame = h->mx_frame;
  c->pos.ck[0] = h->frame_ck[0];
  c->pos.ck[1] = h->frame_ck[1];
}

static void broken(struct cdb *c, const wal_index_hdr *h, const char *why) {
  char m[300];
  snprintf(m, sizeof m,
           "the log chain is broken (%s); BACKUP LOG and differential "
           "backups need a new full backup",
           why);
  note(c, m);
  dbstate_break(G.dir, c->db);
  c->breaks++;
  if (h) skip_to_end(c, h);
  vmsg err = {0};
  la_rotate(c->arc, &c->pos, NULL, 0, 1, &err);
}

static int add_base_bit(struct cdb *c, uint32_t pg) {
  size_t byte = pg / 8;
  if (byte >= c->base_bytes) {
    size_t n = c->base_bytes ? c->base_bytes * 2 : 4096;
    while (n <= byte)
      n *= 2;
    uint8_t *b = realloc(c->base_set, n);
    if (!b) return -1;
    memset(b + c->base_bytes, 0, n - c->base_bytes);
    c->base_set = b;
    c->base_bytes = n;
  }
  c->base_set[byte] |= (uint8_t)(1u << (pg % 8));
  return 0;
}

/* When frame @p f of generation @p salt was first seen committed: the
 * earliest observation that included it, else @p dflt (now). */
static int64_t stamp(struct cdb *c, const uint8_t salt[8], uint32_t f,
                     int64_t dflt) {
  int64_t best = dflt;
  pthread_mutex_lock(&c->omu);
  for (unsigned i = 0; i < c->ocount; i++) {
    const struct obs *o = &c->ring[(c->ohead + OBS_N - 1 - i) % OBS_N];
    if (o->mx >= f && o->t < best && memcmp(o->salt, salt, 8) == 0) best = o->t;
  }
  pthread_mutex_unlock(&c->omu);
  return best;
}

/* When the WAL file was last written, in ms, or -1.  A commit's frames
 * are the last thing written to the WAL before the wal-index shows them,
 * so for the newest commit this is its time, whenever we get to look: a
 * watcher that the scheduler kept waiting does not make it later. */
static int64_t wal_mtime_ms(int fd) {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return -1;
  return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

static void *watch(void *arg) {
  struct cdb *c = arg;
  struct timespec d = {0, (long)G.poll_ms * 1000000L / 2};
  struct obs last;
  char wal[PATH_MAX + 210];
  snprintf(wal, sizeof wal, "%s-wal", c->path);
  /* The same inode for as long as we follow: our own connections keep
   * the WAL from being deleted. */
  int wfd = open(wal, O_RDONLY | O_CLOEXEC);
  memset(&last, 0, sizeof last);
  while (!c->stop) {
    wal_index_hdr h;
    if (wal_index_read(c->shm, &h) == 0 &&
        (h.mx_frame != last.mx || memcmp(h.salt, last.salt, 8) != 0)) {
      memcpy(last.salt, h.salt, 8);
      last.mx = h.mx_frame;
      last.t = now_ms();
      /* The WAL's mtime when it is earlier (the kernel stamps it with its
       * coarse clock: a millisecond or a few early at most). */
      int64_t m = wal_mtime_ms(wfd);
      if (m > 0 && m < last.t && last.t - m < 60000) last.t = m;
      pthread_mutex_lock(&c->omu);
      c->ring[c->ohead] = last;
      c->ohead = (c->ohead + 1) % OBS_N;
      if (c->ocount < OBS_N) c->ocount++;
      pthread_mutex_unlock(&c->omu);
    }
    nanosleep(&d, NULL);
  }
  if (wfd >= 0) close(wfd);
  return NULL;
}

/* Copy the committed frames not yet archived.  Called with c->mu held.
 * @return frames copied, or -1 after an error (reported). */
static long follow(struct cdb *c) {
  wal_index_hdr h;
  sqlite3_file *wal = wal_file(c->r[c->cur]);
  if (!c->shm || !wal || wal_index_read(c->shm, &h) != 0) return 0;
  int64_t t = now_ms();
  c->poll_ms = t;
  int newgen = memcmp(h.salt, c->pos.salt, 8) != 0;
  if (h.mx_frame == 0 || (!newgen && h.mx_frame == c->pos.frame)) return 0;
  if (newgen || c->pos.frame == 0) {
    /* A new generation begins at frame 1 with the WAL header's checksum. */
    uint8_t wh[WAL_HDR_SIZE];
    uint32_t ck[2] = {0, 0};
    if (wal->pMethods->xRead(wal, wh, sizeof wh, 0) != SQLITE_OK ||
        (wal_be32(wh) & WAL_MAGIC_MASK) != WAL_MAGIC ||
        memcmp(wh + 16, h.salt, 8) != 0)
      return 0; /* being written: the next poll sees it whole */
    c->big = wal_be32(wh) & 1;
    wal_cksum(c->big, wh, 24, ck);
    if (ck[0] != wal_be32(wh + 24) || ck[1] != wal_be32(wh + 28) ||
        wal_be32(wh + 8) != c->ps) {
      broken(c, &h, "the WAL header does not check");
      return -1;
    }
    memcpy(c->pos.salt, h.salt, 8);
    c->pos.frame = 0;
    c->pos.ck[0] = ck[0];
    c->pos.ck[1] = ck[1];
  }
  if (h.mx_frame < c->pos.frame) {
    broken(c, &h, "the WAL went back within a generation");
    return -1;
  }
  vmsg err = {0};
  la_pos p = c->pos;
  long n = 0;
  size_t fsz = WAL_FRAME_HDR + (size_t)c->ps;
  for (uint32_t f = p.frame + 1; f <= h.mx_frame; f++) {
    sqlite3_int64 off =
        WAL_HDR_SIZE + (sqlite3_int64)(f - 1) * (sqlite3_int64)fsz;
    if (wal->pMethods->xRead(wal, c->fbuf, (int)fsz, off) != SQLITE_OK) {
      broken(c, &h, "a committed frame cannot be read");
      return -1;
    }
    uint32_t ck[2] = {p.ck[0], p.ck[1]};
    wal_cksum(c->big, c->fbuf, 8, ck);
    wal_cksum(c->big, c->fbuf + WAL_FRAME_HDR, c->ps, ck);
    if (memcmp(c->fbuf + 8, h.salt, 8) != 0 ||
        ck[0] != wal_be32(c->fbuf + 16) || ck[1] != wal_be32(c->fbuf + 20)) {
      broken(c, &h, "a committed frame does not check");
      return -1;
    }
    vs_logrec r = {0};
    r.lsn = p.next_lsn++;
    r.pgno = wal_be32(c->fbuf);
    r.commit_size = wal_be32(c->fbuf + 4);
    r.time_ms = r.commit_size ? stamp(c, h.salt, f, t) : 0;
    if (la_add(c->arc, &r, c->fbuf + WAL_FRAME_HDR, &err) != 0 ||
        (c->base_on && add_base_bit(c, r.pgno) != 0)) {
      note(c, err.text[0] ? err.text : "out of memory");
      return -1;
    }
    p.frame = f;
    p.ck[0] = ck[0];
    p.ck[1] = ck[1];
    n++;
  }
  if (la_mark(c->arc, &p, &err) != 0) {
    /* Not archived: the frames stay pinned in the WAL; try again. */
    note(c, err.text);
    return -1;
  }
  c->pos = p;
  rotate(c);
  return n;
}

/* Our own checkpoint, so that the WAL can restart.  First without the
 * write lock: copy, pin at the end, backfill up to the pin (the bulk of
 * the checkpoint's I/O) while writers go on.  Then briefly with it: copy
 * what was committed meanwhile, pin at the end, backfill the rest, pin
 * again (now reading the database file only, read mark 0), and let
 * writers go: the next commit restarts the WAL.  Writers wait only for
 * the second, short part (with their busy timeout). */
static void cycle(struct cdb *c) {
  int nlog = -1, nckpt = -2;
  c->last_cycle_ms = now_ms();
  if (follow(c) < 0) return;
  rotate(c);
  sqlite3_wal_checkpoint_v2(c->ck, "main", SQLITE_CHECKPOINT_PASSIVE, &nlog,
                            &nckpt);
  if (exec(c->w, "BEGIN IMMEDIATE") != SQLITE_OK) return;
  if (follow(c) >= 0) {
    rotate(c);
    if (sqlite3_wal_checkpoint_v2(c->ck, "main", SQLITE_CHECKPOINT_PASSIVE,
                                  &nlog, &nckpt) == SQLITE_OK &&
        nlog == nckpt)
      rotate(c);
  }
  exec(c->w, "ROLLBACK");
}

static uint32_t cycle_frames(const struct cdb *c) {
  uint32_t n = CYCLE_BYTES / (c->ps ? c->ps : 4096);
  return n < CYCLE_MIN_FRAMES ? CYCLE_MIN_FRAMES : n;
}

static void *run(void *arg) {
  struct cdb *c = arg;
  struct timespec d = {0, (long)G.poll_ms * 1000000L};
  while (!c->stop) {
    pthread_mutex_lock(&c->mu);
    /* Idle, the pin moves on too: an application's wal_checkpoint(
     * TRUNCATE) waits for a pin that reads no WAL frame, and must not
     * wait for its busy timeout. */
    if (follow(c) == 0 && now_ms() - c->last_rotate_ms >= IDLE_ROTATE_MS)
      rotate(c);
    if (c->pos.frame >= cycle_frames(c) ||
        (c->pos.frame > 0 && now_ms() - c->last_cycle_ms > 1000))
      cycle(c);
    pthread_mutex_unlock(&c->mu);
    nanosleep(&d, NULL);
  }
  pthread_mutex_lock(&c->mu);
  follow(c);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void close_cdb(struct cdb *c) {
  for (int i = 0; i < 2; i++) {
    if (c->r[i]) exec(c->r[i], "ROLLBACK");
    sqlite3_close(c->r[i]);
  }
  sqlite3_close(c->w);
  sqlite3_close(c->ck);
  la_close(c->arc);
  free(c->fbuf);
  free(c->base_set);
  pthread_mutex_destroy(&c->mu);
  pthread_mutex_destroy(&c->omu);
  free(c);
}

static int text_pragma(sqlite3 *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *st;
  int ok = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) {
    snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    ok = 0;
  }
  sqlite3_finalize(st);
  return ok;
}

/* Open everything and check that the WAL continues the archive. */
static struct cdb *open_cdb(const char *db, int full, vmsg *err) {
  struct cdb *c = calloc(1, sizeof *c);
  char mode[32] = "", ps[32] = "";
  if (!c) return NULL;
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->omu, NULL);
  snprintf(c->db, sizeof c->db, "%s", db);
  snprintf(c->path, sizeof c->path, "%s/%s.db", G.dir, db);
  c->full = full;
  c->r[0] = open_conn(c->path, 5000);
  c->r[1] = open_conn(c->path, 5000);
  c->w = open_conn(c->path, 0);
  if (c->w) sqlite3_busy_handler(c->w, quick_busy, NULL);
  c->ck = open_conn(c->path, 0);
  if (!c->r[0] || !c->r[1] || !c->w || !c->ck ||
      text_pragma(c->r[0], "PRAGMA journal_mode", mode, sizeof mode) ||
      /* A connection learns that the database is in WAL mode when it
       * first reads it: before that, its checkpoints do nothing. */
      exec(c->ck, "SELECT count(*) FROM sqlite_master") != SQLITE_OK ||
      text_pragma(c->r[0], "PRAGMA page_size", ps, sizeof ps)) {
    vmsg_set(err, 5120, "Unable to open the physical file \"%s\".", c->path);
    goto fail;
  }
  if (strcmp(mode, "wal") != 0) {
    vmsg_set(err, 5058,
             "Option 'RECOVERY' cannot be set in database '%s': its log can "
             "be captured only in WAL mode (PRAGMA journal_mode=WAL), and it "
             "is in %s mode.",
             db, mode);
    goto fail;
  }
  c->ps = (uint32_t)strtoul(ps, NULL, 10);
  c->fbuf = malloc(WAL_FRAME_HDR + (size_t)c->ps);
  int lost = 0;
  if (!c->fbuf ||
      la_open(G.dir, db, c->ps, full, &c->arc, &c->pos, &lost, err) != 0)
    goto fail;
  sqlite3_file *dbf = NULL;
  sqlite3_file_control(c->r[0], "main", SQLITE_FCNTL_FILE_POINTER, &dbf);
  if (begin_read(c->r[0]) != 0 || !dbf || !dbf->pMethods->xShmMap ||
      dbf->pMethods->xShmMap(dbf, 0, 32768, 0, &c->shm) != SQLITE_OK ||
      !c->shm) {
    vmsg_set(err, 3201, "Cannot read the write-ahead log of \"%s\".", c->path);
    goto fail;
  }
  wal_index_hdr h;
  if (wal_index_read(c->shm, &h) != 0) {
    vmsg_set(err, 3201, "The write-ahead log of \"%s\" is being recovered.",
             c->path);
    goto fail;
  }
  static const uint8_t zero[8];
  if (memcmp(c->pos.salt, zero, 8) == 0) {
    /* A new archive: nothing before this instant is anyone's log. */
    dbstate ds;
    vmsg ignore = {0};
    if (dbstate_get(G.dir, db, &ds, &ignore) == 0 &&
        ds.lsn_floor > c->pos.next_lsn)
      c->pos.next_lsn = ds.lsn_floor;
    skip_to_end(c, &h);
    if (la_mark(c->arc, &c->pos, err) != 0) goto fail;
    /* Started again over an archive that was cut off (an instance killed
     * while it began a segment) or damaged: the log and the pages changed
     * since the differential base that it held are gone. */
    if (lost) broken(c, &h, "the log archive was cut off or damaged");
  } else {
    int same =
        memcmp(h.salt, c->pos.salt, 8) == 0 && h.mx_frame >= c->pos.frame;
    if (same && c->pos.frame > 0) {
      uint8_t fh[WAL_FRAME_HDR];
      sqlite3_file *wal = wal_file(c->r[0]);
      sqlite3_int64 off =
          WAL_HDR_SIZE + (sqlite3_int64)(c->pos.frame - 1) *
                             (sqlite3_int64)(WAL_FRAME_HDR + c->ps);
      same = wal &&
             wal->pMethods->xRead(wal, fh, sizeof fh, off) == SQLITE_OK &&
             wal_be32(fh + 16) == c->pos.ck[0] &&
             wal_be32(fh + 20) == c->pos.ck[1];
    }
    if (!same)
      broken(c, &h, "the WAL was reset while the instance did not run");
  }
  c->last_cycle_ms = now_ms();
  return c;
fail:
  close_cdb(c);
  return NULL;
}

static struct cdb *find(const char *db) {
  for (struct cdb *c = G.list; c; c = c->next)
    if (strcmp(c->db, db) == 0) return c;
  return NULL;
}

/* Unlink @p db's entry and stop its thread.  G.mu held. */
static struct cdb *unlink_cdb(const char *db) {
  for (struct cdb **pp = &G.list; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->db, db) == 0) {
      struct cdb *c = *pp;
      *pp = c->next;
      c->stop = 1;
      if (c->started) pthread_join(c->th, NULL);
      if (c->wstarted) pthread_join(c->wth, NULL);
      return c;
    }
  return NULL;
}

int capture_track(const char *db, int full, vmsg *err) {
  if (!G.running) return 0;
  pthread_mutex_lock(&G.mu);
  struct cdb *old = find(db);
  if (old && old->full == full) {
    pthread_mutex_unlock(&G.mu);
    return 0;
  }
  if (old) close_cdb(unlink_cdb(db));
  struct cdb *c = open_cdb(db, full, err);
  int rc = -1;
  if (c) {
    c->next = G.list;
    G.list = c;
    c->wstarted = pthread_create(&c->wth, NULL, watch, c) == 0;
    c->started = pthread_create(&c->th, NULL, run, c) == 0;
    rc = c->started ? 0 : -1;
    if (!c->started) vmsg_set(err, 701, "Cannot start the log capture.");
  }
  pthread_mutex_unlock(&G.mu);
  return rc;
}

/* The databases to follow, collected first: starting one may write the
 * catalog (a broken chain), which must not happen while it is read. */
struct init_list {
  size_t n, cap;
  struct init_db {
    char name[129];
    int full;
  } * v;
};

static void collect_one(void *ctx, const char *db, const dbstate *s) {
  struct init_list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct init_db *v = realloc(l->v, cap * sizeof *v);
    if (!v) return;
    l->v = v;
    l->cap = cap;
  }
  snprintf(l->v[l->n].name, sizeof l->v[l->n].name, "%s", db);
  l->v[l->n++].full = s->full;
}

void capture_init(const char *inst_dir) {
  const char *p = getenv("VDISQL_CAPTURE_POLL_MS");
  struct init_list l = {0, 0, NULL};
  if (p && atoi(p) > 0) G.poll_ms = atoi(p);
  snprintf(G.dir, sizeof G.dir, "%s", inst_dir);
  G.running = 1;
  dbstate_each(inst_dir, collect_one, &l);
  for (size_t i = 0; i < l.n; i++) {
    vmsg err = {0};
    char path[PATH_MAX + 200];
    snprintf(path, sizeof path, "%s/%s.db", G.dir, l.v[i].name);
    if (access(path, F_OK) != 0) continue;
    if (capture_track(l.v[i].name, l.v[i].full, &err) != 0)
      fprintf(stderr, "vdisql: database '%s': log capture not started: %s\n",
              l.v[i].name, err.text);
  }
  free(l.v);
}

void capture_shutdown(void) {
  pthread_mutex_lock(&G.mu);
  while (G.list)
    close_cdb(unlink_cdb(G.list->db));
  G.running = 0;
  pthread_mutex_unlock(&G.mu);
}

int capture_running(void) {
  return G.running;
}

uint64_t capture_release(const char *db) {
  pthread_mutex_lock(&G.mu);
  struct cdb *c = unlink_cdb(db);
  uint64_t next = c ? c->pos.next_lsn : 0;
  if (c) close_cdb(c);
  pthread_mutex_unlock(&G.mu);
  return next;
}

/* The entry for @p db with its mutex held, or NULL. */
static struct cdb *lock_cdb(const char *db) {
  pthread_mutex_lock(&G.mu);
  struct cdb *c = find(db);
  if (c) pthread_mutex_lock(&c->mu);
  pthread_mutex_unlock(&G.mu);
  return c;
}

int capture_sync(const char *db, int want_changed, int start_base,
                 cap_point *pt, vmsg *err) {
  memset(pt, 0, sizeof *pt);
  struct cdb *c = lock_cdb(db);
  if (!c) return 0;
  int rc = 1;
  if (follow(c) < 0) {
    vmsg_set(err, 3201, "The log of database '%s' cannot be captured.", db);
    rc = -1;
  }
  pt->lsn = c->pos.next_lsn;
  pt->time_ms = c->poll_ms ? c->poll_ms : now_ms();
  pt->page_size = c->ps;
  pt->breaks = c->breaks;
  if (rc > 0 && want_changed) {
    pt->changed_bytes = la_changed_bytes(c->arc);
    pt->changed = malloc(pt->changed_bytes ? pt->changed_bytes : 1);
    if (!pt->changed) {
      vmsg_set(err, 701, "There is insufficient system memory.");
      rc = -1;
    } else {
      la_changed_copy(c->arc, pt->changed, pt->changed_bytes);
    }
  }
  if (rc > 0 && start_base && !c->base_on) {
    free(c->base_set);
    c->base_set = NULL;
    c->base_bytes = 0;
    c->base_on = 1;
    c->base_lsn = pt->lsn;
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int capture_rebase(const char *db, int drop_log, uint64_t breaks, vmsg *err) {
  struct cdb *c = lock_cdb(db);
  if (!c) return 0;
  int rc = 0;
  if (c->breaks != breaks) {
    /* Broken since the backup's snapshot: the log and the pages changed
     * after it are not all archived, so neither a differential nor a log
     * backup may start from it. */
    rc = 1;
  } else if (c->base_on) {
    static const uint8_t none[1];
    rc = la_rotate(c->arc, &c->pos, c->base_set ? c->base_set : none,
                   c->base_set ? c->base_bytes : 1, 0, err);
    if (rc == 0 && drop_log) la_truncate(c->arc, c->base_lsn);
    c->base_on = 0;
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

void capture_abandon_base(const char *db) {
  struct cdb *c = lock_cdb(db);
  if (!c) return;
  c->base_on = 0;
  pthread_mutex_unlock(&c->mu);
}

void capture_truncate(const char *db, uint64_t lsn) {
  struct cdb *c = lock_cdb(db);
  if (!c) return;
  vmsg err = {0};
  /* A new segment starts here, so that the old ones hold only older log. */
  if (la_rotate(c->arc, &c->pos, NULL, 0, 0, &err) == 0)
    la_truncate(c->arc, lsn);
  pthread_mutex_unlock(&c->mu);
}
