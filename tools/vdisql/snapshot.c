/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c - consistent online reads of a SQLite database (snapshot.h).
 *
 * Debian's libsqlite3 has no sqlite_dbpage table and no snapshot API, so
 * pages are read through SQLite's own file objects (xRead of the
 * sqlite3_file the connection holds: reading with our own descriptor and
 * closing it would drop SQLite's POSIX locks on the file).
 *
 * Rollback journal: connection R runs BEGIN + a read, taking the SHARED
 * lock; no writer can change the database file until we end it, so pages
 * are read from the file.
 *
 * WAL: for a moment connection W holds the write lock (BEGIN IMMEDIATE),
 * so the WAL cannot grow or restart.  We take mxFrame from the wal-index
 * header (documented layout, sqlite.org/walformat.html), check the WAL's
 * frame checksums up to it, and index the newest frame <= mxFrame of each
 * page.  Then R begins its read transaction (its snapshot is exactly
 * mxFrame, as nobody can commit), and W rolls back: writers continue.
 * While R reads, SQLite guarantees: (a) checkpoints never backfill past
 * R's read mark, so a page without a frame in our index is stable in the
 * database file; (b) the WAL is only restarted (frames overwritten) when
 * R reads the database file alone (read mark 0), and then no backfill can
 * happen at all, so the database file is our snapshot.  A page is thus
 * read from its WAL frame, and if that frame's salts changed since
 * (a restart), from the database file.  The frame header is read before
 * and after the data, as SQLite writes a frame's header first.
 */
#include "snapshot.h"

#include "walfmt.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walent {
  uint32_t pgno;
  uint32_t frame; /* 1-based */
};

struct snap {
  sqlite3 *r;              /* holds the read transaction */
  sqlite3_file *dbf, *wal; /* R's database and WAL file objects */
  uint32_t page_size;
  uint64_t page_count;
  int is_wal;
  uint32_t salt[2];
  struct walent *idx; /* sorted by pgno, one per page */
  size_t nidx;
  uint8_t *fbuf; /* frame header + page */
};

static int exec(sqlite3 *db, const char *sql) {
  return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int open_conn(const char *path, sqlite3 **db, vmsg *err) {
  int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK) {
    vmsg_set(err, 5120,
             "Unable to open the physical file \"%s\". SQLite error %d (%s).",
             path, rc, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
    sqlite3_close(*db);
    *db = NULL;
    return -1;
  }
  sqlite3_busy_timeout(*db, 30000);
  sqlite3_extended_result_codes(*db, 1);
  return 0;
}

static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *st;
  int ok = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, n, "%s", t ? (const char *)t : "");
    ok = 0;
  }
  sqlite3_finalize(st);
  return ok;
}

static int cmp_ent(const void *a, const void *b) {
  const struct walent *x = a, *y = b;
  if (x->pgno != y->pgno) return x->pgno < y->pgno ? -1 : 1;
  return x->frame < y->frame ? -1 : x->frame > y->frame;
}

/* With W holding the write lock: index the WAL up to the committed end. */
static int index_wal(snap_t *s, sqlite3 *w, const char *path, vmsg *err) {
  sqlite3_file *dbf = NULL, *wal = NULL;
  volatile void *shm = NULL;
  sqlite3_file_control(w, "main", SQLITE_FCNTL_FILE_POINTER, &dbf);
  sqlite3_file_control(w, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
  if (!dbf || !wal || !wal->pMethods || !dbf->pMethods->xShmMap ||
      dbf->pMethods->xShmMap(dbf, 0, 32768, 0, &shm) != SQLITE_OK || !shm) {
    vmsg_set(err, 3201, "Cannot read the write-ahead log of \"%s\".", path);
    return -1;
  }
  /* wal-index header copy 1: mxFrame at 16, szPage at 14, salts at 32. */
  uint8_t hdr[48];
  memcpy(hdr, (const void *)shm, sizeof hdr);
  uint32_t mx, salt_idx[2];
  memcpy(&mx, hdr + 16, 4);
  memcpy(salt_idx, hdr + 32, 8);
  if (mx == 0) return 0; /* WAL empty: the database file is the snapshot */

  uint8_t wh[32];
  if (wal->pMethods->xRead(wal, wh, 32, 0) != SQLITE_OK) goto bad;
  uint32_t magic = wal_be32(wh);
  if ((magic & ~1u) != 0x377f0682u || wal_be32(wh + 8) != s->page_size)
    goto bad;
  int big = magic & 1;
  uint32_t ck[2] = {0, 0};
  wal_cksum(big, wh, 24, ck);
  if (ck[0] != wal_be32(wh + 24) || ck[1] != wal_be32(wh + 28)) goto bad;
  s->salt[0] = wal_be32(wh + 16);
  s->salt[1] = wal_be32(wh + 20);
  uint8_t sb[8];
  memcpy(sb, salt_idx, 8);
  if (memcmp(sb, wh + 16, 8) != 0) goto bad;

  s->idx = malloc((size_t)mx * sizeof *s->idx);
  size_t fsz = 24 + (size_t)s->page_size;
  if (!s->idx) goto bad;
  uint32_t last_commit = 0, commit_size = 0;
  for (uint32_t f = 1; f <= mx; f++) {
    sqlite3_int64 off = 32 + (sqlite3_int64)(f - 1) * (sqlite3_int64)fsz;
    if (wal->pMethods->xRead(wal, s->fbuf, (int)fsz, off) != SQLITE_OK)
      goto bad;
    if (memcmp(s->fbuf + 8, wh + 16, 8) != 0) goto bad;
    wal_cksum(big, s->fbuf, 8, ck);
    wal_cksum(big, s->fbuf + 24, s->page_size, ck);
    if (ck[0] != wal_be32(s->fbuf + 16) || ck[1] != wal_be32(s->fbuf + 20))
      goto bad;
    s->idx[s->nidx].pgno = wal_be32(s->fbuf);
    s->idx[s->nidx].frame = f;
    s->nidx++;
    if (wal_be32(s->fbuf + 4) != 0) {
      last_commit = f;
      commit_size = wal_be32(s->fbuf + 4);
    }
  }
  if (last_commit != mx) goto bad;
  s->page_count = commit_size;
  /* Keep only the newest frame of each page. */
  qsort(s->idx, s->nidx, sizeof *s->idx, cmp_ent);
  size_t o = 0;
  for (size_t i = 0; i < s->nidx; i++) {
    if (o > 0 && s->idx[o - 1].pgno == s->idx[i].pgno) o--;
    s->idx[o++] = s->idx[i];
  }
  s->nidx = o;
  return 0;
bad:
  vmsg_set(err, 3201,
           "The write-ahead log of \"%s\" is not in the expected state; the "
           "backup was not started.",
           path);
  return -1;
}

int snap_open(const char *path, const snap_hook *hook, snap_t **out,
              vmsg *err) {
  snap_t *s = calloc(1, sizeof *s);
  sqlite3 *w = NULL;
  char mode[32] = "", buf[32];
  *out = NULL;
  if (!s || open_conn(path, &s->r, err)) goto fail;
  if (pragma_text(s->r, "PRAGMA journal_mode", mode, sizeof mode) ||
      pragma_text(s->r, "PRAGMA page_size", buf, sizeof buf)) {
    vmsg_set(err, 5120, "\"%s\" is not a SQLite database: %s.", path,
             sqlite3_errmsg(s->r));
    goto fail;
  }
  s->page_size = (uint32_t)strtoul(buf, NULL, 10);
  s->is_wal = strcmp(mode, "wal") == 0;
  s->fbuf = malloc(24 + (size_t)s->page_size);
  if (!s->fbuf) goto fail;
  if (s->is_wal) {
    if (open_conn(path, &w, err)) goto fail;
    int rc = exec(w, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
      vmsg_set(err, 3041, "Could not lock \"%s\" to start the snapshot: %s.",
               path, sqlite3_errmsg(w));
      goto fail;
    }
    if (index_wal(s, w, path, err)) goto fail;
  }
  if (exec(s->r, "BEGIN") != SQLITE_OK ||
      exec(s->r, "SELECT count(*) FROM sqlite_master") != SQLITE_OK ||
      pragma_text(s->r, "PRAGMA page_count", buf, sizeof buf)) {
    vmsg_set(err, 3041, "Could not start a read transaction on \"%s\": %s.",
             path, sqlite3_errmsg(s->r));
    goto fail;
  }
  uint64_t pc = strtoull(buf, NULL, 10);
  if (s->is_wal && s->nidx > 0 && pc != s->page_count) {
    vmsg_set(err, 3041, "The snapshot of \"%s\" changed while it was taken.",
             path);
    goto fail;
  }
  s->page_count = pc;
  /* Nobody can commit now (W holds the write lock; without WAL, R's
   * SHARED lock): the log capture learns exactly where the snapshot is. */
  if (hook && hook->fn(hook->ctx, err) != 0) goto fail;
  if (w) {
    exec(w, "ROLLBACK");
    sqlite3_close(w);
    w = NULL;
  }
  sqlite3_file_control(s->r, "main", SQLITE_FCNTL_FILE_POINTER, &s->dbf);
  if (s->is_wal)
    sqlite3_file_control(s->r, "main", SQLITE_FCNTL_JOURNAL_POINTER, &s->wal);
  if (!s->dbf || !s->dbf->pMethods ||
      (s->nidx > 0 && (!s->wal || !s->wal->pMethods))) {
    vmsg_set(err, 5120, "Cannot reach the files of \"%s\".", path);
    goto fail;
  }
  *out = s;
  return 0;
fail:
  if (w) {
    exec(w, "ROLLBACK");
    sqlite3_close(w);
  }
  snap_close(s);
  return -1;
}

uint32_t snap_page_size(const snap_t *s) {
  return s->page_size;
}
uint64_t snap_page_count(const snap_t *s) {
  return s->page_count;
}

/* The first index entry of a page >= @p pgno (s->nidx if none). */
static size_t lower_bound(const snap_t *s, uint64_t pgno) {
  size_t lo = 0, hi = s->nidx;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (s->idx[mid].pgno < pgno)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static const struct walent *find(const snap_t *s, uint64_t pgno) {
  size_t lo = lower_bound(s, pgno);
  return lo < s->nidx && s->idx[lo].pgno == pgno ? &s->idx[lo] : NULL;
}

int snap_read(snap_t *s, uint64_t pgno, uint8_t *buf, vmsg *err) {
  sqlite3_int64 ps = s->page_size;
  const struct walent *e = find(s, pgno);
  if (e) {
    sqlite3_int64 off = 32 + (sqlite3_int64)(e->frame - 1) * (24 + ps);
    uint8_t h2[24];
    int rc1 = s->wal->pMethods->xRead(s->wal, s->fbuf, 24, off);
    int rc2 = s->wal->pMethods->xRead(s->wal, buf, (int)ps, off + 24);
    int rc3 = s->wal->pMethods->xRead(s->wal, h2, 24, off);
    if (rc1 == SQLITE_OK && rc2 == SQLITE_OK && rc3 == SQLITE_OK &&
        memcmp(s->fbuf, h2, 24) == 0 && wal_be32(h2) == pgno &&
        wal_be32(h2 + 8) == s->salt[0] && wal_be32(h2 + 12) == s->salt[1])
      return 0;
    /* The WAL was restarted: the database file holds our snapshot. */
  }
  int rc = s->dbf->pMethods->xRead(s->dbf, buf, (int)ps,
                                   (sqlite3_int64)(pgno - 1) * ps);
  if (rc != SQLITE_OK) {
    vmsg_set(err, 3201, "Read error on page %llu of the database: SQLite %d.",
             (unsigned long long)pgno, rc);
    return -1;
  }
  return 0;
}

int snap_read_run(snap_t *s, uint64_t pgno, uint32_t n, uint8_t *buf,
                  vmsg *err) {
  sqlite3_int64 ps = s->page_size;
  /* The run from the database file in one read; then every page of it
   * that has a frame in our index is read as snap_read reads it (its
   * frame, or the file again if the WAL restarted: a concurrent backfill
   * may have torn the copy read here, never the snapshot's). */
  int rc = s->dbf->pMethods->xRead(s->dbf, buf, (int)(n * ps),
                                   (sqlite3_int64)(pgno - 1) * ps);
  if (rc != SQLITE_OK) {
    /* Past the file's end (pages only in the WAL) or an error: page by
     * page, as always. */
    for (uint32_t i = 0; i < n; i++)
      if (snap_read(s, pgno + i, buf + (size_t)i * (size_t)ps, err)) return -1;
    return 0;
  }
  for (size_t k = lower_bound(s, pgno);
       k < s->nidx && s->idx[k].pgno < pgno + n; k++) {
    uint64_t pg = s->idx[k].pgno;
    if (snap_read(s, pg, buf + (size_t)(pg - pgno) * (size_t)ps, err))
      return -1;
  }
  return 0;
}

void snap_close(snap_t *s) {
  if (!s) return;
  if (s->r) {
    exec(s->r, "ROLLBACK");
    sqlite3_close(s->r);
  }
  free(s->idx);
  free(s->fbuf);
  free(s);
}
