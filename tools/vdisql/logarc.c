/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logarc.c - the log archive of one database (see logarc.h).
 *
 * A segment is a sequence of entries: magic (4), body length (4), body,
 * CRC-32C of all of it (4).  Entries: a head ("LSEG": page size, whether
 * pages are kept, the segment's first LSN, the changed-page set as of its
 * start), records ("LREC": a vs_logrec header, then the page when pages
 * are kept) and marks ("LMRK": the capture's la_pos).  Everything after
 * the last mark is cut off when the archive is opened: a mark is written
 * only after the records before it, and is itself made durable with
 * fdatasync before the capture treats those frames as safe.
 */
#include "logarc.h"

#include "crc32c.h"
#include "fileio.h"
#include "le.h"
#include "guard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define E_HEAD    0x4745534Cu /* "LSEG" */
#define E_REC     0x4345524Cu /* "LREC" */
#define E_MARK    0x4B524D4Cu /* "LMRK" */
#define MARK_BODY 32u
#define MAX_BODY  (VS_LOGREC_HDR + 65536u + (1u << 26))

struct logarc {
  char dir[PATH_MAX + 160];
  int fd;             /* current segment */
  uint64_t seg_first; /* its first LSN */
  uint64_t size;      /* its length up to the last mark */
  uint32_t ps;
  int keep;
  uint8_t *changed; /* bit per page, as of the last mark */
  size_t changed_bytes;
  uint32_t *pending; /* pages of records since the last mark */
  size_t npending, cap_pending;
  uint8_t *buf; /* entries since the last mark */
  size_t nbuf, cap_buf;
};

static void clear_changed(logarc_t *a) {
  if (a->changed) memset(a->changed, 0, a->changed_bytes);
}

static int set_bit(logarc_t *a, uint32_t pg) {
  size_t byte = pg / 8;
  if (byte >= a->changed_bytes) {
    size_t n = a->changed_bytes ? a->changed_bytes : 4096;
    while (n <= byte)
      n *= 2;
    uint8_t *c = realloc(a->changed, n);
    if (!c) return -1;
    memset(c + a->changed_bytes, 0, n - a->changed_bytes);
    a->changed = c;
    a->changed_bytes = n;
  }
  a->changed[byte] |= (uint8_t)(1u << (pg % 8));
  return 0;
}

int la_changed(const logarc_t *a, uint32_t pg) {
  size_t byte = pg / 8;
  return byte < a->changed_bytes && (a->changed[byte] >> (pg % 8)) & 1;
}

size_t la_changed_bytes(const logarc_t *a) {
  return a->changed_bytes;
}
void la_changed_copy(const logarc_t *a, uint8_t *out, size_t n) {
  if (n && a->changed)
    memcpy(out, a->changed, n < a->changed_bytes ? n : a->changed_bytes);
}

/* Room for an entry of @p body bytes at the end of the buffer. */
static uint8_t *entry_begin(logarc_t *a, uint32_t magic, size_t body) {
  size_t need = a->nbuf + 12 + body;
  if (need > a->cap_buf) {
    size_t n = a->cap_buf ? a->cap_buf : 65536;
    while (n < need)
      n *= 2;
    uint8_t *b = realloc(a->buf, n);
    if (!b) return NULL;
    a->buf = b;
    a->cap_buf = n;
  }
  uint8_t *e = a->buf + a->nbuf;
  le_put32(e, magic);
  le_put32(e + 4, (uint32_t)body);
  return e + 8;
}
static void entry_end(logarc_t *a, size_t body) {
  uint8_t *e = a->buf + a->nbuf;
  le_put32(e + 8 + body, crc32c_update(0, e, 8 + body));
  a->nbuf += 12 + body;
}

static void mark_body(uint8_t *b, const la_pos *pos) {
  memcpy(b, pos->salt, 8);
  le_put32(b + 8, pos->frame);
  le_put32(b + 12, pos->ck[0]);
  le_put32(b + 16, pos->ck[1]);
  le_put32(b + 20, 0);
  le_put64(b + 24, pos->next_lsn);
}

int la_add(logarc_t *a, const vs_logrec *r, const uint8_t *page, vmsg *err) {
  size_t body = VS_LOGREC_HDR + (a->keep ? a->ps : 0);
  uint8_t *b = entry_begin(a, E_REC, body);
  if (!b || (a->npending == a->cap_pending &&
             !(a->pending = realloc(
                   a->pending, (a->cap_pending = a->cap_pending * 2 + 256) *
                                   sizeof *a->pending)))) {
    vmsg_set(err, 701, "There is insufficient system memory for the log.");
    return -1;
  }
  if (a->keep) {
    memcpy(b + VS_LOGREC_HDR, page, a->ps);
    vs_logrec_encode(r, b, a->ps);
  } else {
    vs_logrec_encode(r, b, 0);
  }
  entry_end(a, body);
  a->pending[a->npending++] = r->pgno;
  return 0;
}

int la_mark(logarc_t *a, const la_pos *pos, vmsg *err) {
  uint8_t *b = entry_begin(a, E_MARK, MARK_BODY);
  if (!b) {
    vmsg_set(err, 701, "There is insufficient system memory for the log.");
    return -1;
  }
  mark_body(b, pos);
  entry_end(a, MARK_BODY);
  if (fio_pwrite_all(a->fd, a->buf, a->nbuf, (off_t)a->size) != 0 ||
      fdatasync(a->fd) != 0) {
    a->nbuf = 0;
    a->npending = 0;
    /* Cut what may have reached the file: the mark is not there. */
    if (ftruncate(a->fd, (off_t)a->size) != 0) { /* reopened later */
    }
    return vmsg_os_error(err, "write", a->dir);
  }
  a->size += a->nbuf;
  a->nbuf = 0;
  for (size_t i = 0; i < a->npending; i++)
    if (set_bit(a, a->pending[i])) {
      vmsg_set(err, 701, "There is insufficient system memory for the log.");
      return -1;
    }
  a->npending = 0;
  return 0;
}

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}

/* The segments' first LSNs, ascending.  @return count or -1. */
static long list_segments(const char *dir, uint64_t **out) {
  DIR *d = opendir(dir);
  long n = 0, cap = 0;
  uint64_t *v = NULL;
  *out = NULL;
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    if (strncmp(e->d_name, "seg-", 4) != 0 || strlen(e->d_name) != 20) continue;
    uint64_t lsn = strtoull(e->d_name + 4, &end, 16);
    if (*end) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      uint64_t *nv = realloc(v, (size_t)cap * sizeof *v);
      if (!nv) {
        free(v);
        closedir(d);
        return -1;
      }
      v = nv;
    }
    v[n++] = lsn;
  }
  closedir(d);
  if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_u64); /* v is NULL if none */
  *out = v;
  return n;
}

static void seg_path(char *out, size_t n, const char *dir, uint64_t first) {
  snprintf(out, n, "%s/seg-%016llx", dir, (unsigned long long)first);
}

/* Scan entries of segment @p fd: call @p fn for each valid one; stop at
 * the first that is not.  @return the offset after the last mark. */
typedef int (*entry_fn)(void *ctx, uint32_t magic, const uint8_t *body,
                        uint32_t len);
static uint64_t scan(int fd, entry_fn fn, void *ctx) {
  uint8_t h[8];
  uint8_t *body = NULL;
  size_t cap = 0;
  uint64_t off = 0, good = 0;
  for (;;) {
    if (pread(fd, h, 8, (off_t)off) != 8) break;
    uint32_t magic = le_get32(h), len = le_get32(h + 4);
    if ((magic != E_HEAD && magic != E_REC && magic != E_MARK) ||
        len > MAX_BODY)
      break;
    if (len + 4 > cap) {
      uint8_t *nb = realloc(body, len + 4);
      if (!nb) break;
      body = nb;
      cap = len + 4;
    }
    if (pread(fd, body, len + 4, (off_t)(off + 8)) != (ssize_t)(len + 4)) break;
    uint32_t c = crc32c_update(crc32c_update(0, h, 8), body, len);
    if (c != le_get32(body + len)) break;
    if (fn(ctx, magic, body, len)) break;
    off += 12 + len;
    if (magic == E_MARK || magic == E_HEAD) good = off;
  }
  free(body);
  return good;
}

struct recover {
  logarc_t *a;
  la_pos *pos;
  int bad;
};

static int recover_entry(void *ctx, uint32_t magic, const uint8_t *b,
                         uint32_t len) {
  struct recover *rc = ctx;
  logarc_t *a = rc->a;
  if (magic == E_HEAD) {
    if (len < 20 || le_get32(b) != a->ps) return rc->bad = 1;
    uint32_t n = le_get32(b + 16);
    if (len != 20 + 4ull * n) return rc->bad = 1;
    for (uint32_t i = 0; i < n; i++)
      if (set_bit(a, le_get32(b + 20 + 4 * i))) return rc->bad = 1;
    memset(rc->pos, 0, sizeof *rc->pos);
    rc->pos->next_lsn = le_get64(b + 8);
  } else if (magic == E_REC) {
    if (len < VS_LOGREC_HDR) return rc->bad = 1;
    if (a->npending == a->cap_pending) {
      a->cap_pending = a->cap_pending * 2 + 256;
      uint32_t *p = realloc(a->pending, a->cap_pending * sizeof *p);
      if (!p) return rc->bad = 1;
      a->pending = p;
    }
    a->pending[a->npending++] = le_get32(b + 8);
  } else {
    if (len != MARK_BODY) return rc->bad = 1;
    memcpy(rc->pos->salt, b, 8);
    rc->pos->frame = le_get32(b + 8);
    rc->pos->ck[0] = le_get32(b + 12);
    rc->pos->ck[1] = le_get32(b + 16);
    rc->pos->next_lsn = le_get64(b + 24);
    for (size_t i = 0; i < a->npending; i++)
      if (set_bit(a, a->pending[i])) return rc->bad = 1;
    a->npending = 0;
  }
  return 0;
}

/* Write a new segment's head (with the changed set unless @p empty) and a
 * mark of @p pos, durably, and make it current. */
static int new_segment(logarc_t *a, const la_pos *pos, int empty, vmsg *err) {
  char path[PATH_MAX + 200];
  seg_path(path, sizeof path, a->dir, pos->next_lsn);
  int fd =
      open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return vmsg_os_error(err, "create", path);
  if (empty) clear_changed(a);
  uint32_t n = 0;
  for (size_t i = 0; i < a->changed_bytes * 8; i++)
    n += la_changed(a, (uint32_t)i);
  size_t body = 20 + 4ull * n;
  a->nbuf = 0;
  a->npending = 0;
  uint8_t *b = entry_begin(a, E_HEAD, body);
  if (!b) {
    close(fd);
    vmsg_set(err, 701, "There is insufficient system memory for the log.");
    return -1;
  }
  le_put32(b, a->ps);
  le_put32(b + 4, (uint32_t)a->keep);
  le_put64(b + 8, pos->next_lsn);
  le_put32(b + 16, n);
  uint32_t k = 0;
  for (size_t i = 0; i < a->changed_bytes * 8; i++)
    if (la_changed(a, (uint32_t)i)) le_put32(b + 20 + 4 * k++, (uint32_t)i);
  entry_end(a, body);
  int old = a->fd;
  uint64_t old_size = a->size, old_first = a->seg_first;
  a->fd = fd;
  a->size = 0;
  a->seg_first = pos->next_lsn;
  if (la_mark(a, pos, err) != 0) {
    /* The old segment stays current, all of it: left at 0, the next
     * mark would write over it from its start (and a failed one cut it
     * to nothing). */
    a->fd = old;
    a->size = old_size;
    a->seg_first = old_first;
    close(fd);
    unlink(path);
    return -1;
  }
  (void)fio_sync_dir(a->dir);
  if (old >= 0) close(old);
  return 0;
}

int la_open(const char *inst_dir, const char *db, uint32_t page_size,
            int keep_data, logarc_t **out, la_pos *pos, int *lost, vmsg *err) {
  char base[PATH_MAX];
  *out = NULL;
  *lost = 0;
  memset(pos, 0, sizeof *pos);
  if (guard_private_dir(inst_dir, "log", base, sizeof base) != 0)
    return vmsg_os_error(err, "mkdir", inst_dir);
  logarc_t *a = calloc(1, sizeof *a);
  if (!a) return vmsg_os_error(err, "allocate", inst_dir);
  a->fd = -1;
  a->ps = page_size;
  a->keep = keep_data;
  snprintf(a->dir, sizeof a->dir, "%s/%s", base, db);
  if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
    vmsg_os_error(err, "mkdir", a->dir);
    goto fail;
  }
  uint64_t *segs;
  long n = list_segments(a->dir, &segs);
  if (n < 0) {
    vmsg_os_error(err, "list", a->dir);
    goto fail;
  }
  int fresh = 1, carry = 0;
  if (n > 0) {
    char path[PATH_MAX + 200];
    seg_path(path, sizeof path, a->dir, segs[n - 1]);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      struct recover rc = {a, pos, 0};
      uint64_t good = scan(fd, recover_entry, &rc);
      a->npending = 0;
      uint8_t h[24];
      /* The segment must be ours as it is now (page size, kept pages). */
      int sound = !rc.bad && good > 0 && pread(fd, h, 24, 0) == 24 &&
                  le_get32(h + 8) == page_size;
      if (sound && le_get32(h + 12) == (uint32_t)keep_data &&
          ftruncate(fd, (off_t)good) == 0) {
        a->fd = fd;
        a->size = good;
        a->seg_first = segs[n - 1];
        fresh = 0;
      } else {
        close(fd);
        /* Sound, but of the other recovery model: its log goes, but the
         * pages changed since the differential base and the position in
         * the WAL stay (the base outlives the model, as in SQL Server,
         * and the capture must go on exactly where it stopped, or say
         * that it cannot). */
        carry = sound && le_get32(h + 12) != (uint32_t)keep_data;
      }
    }
  }
  if (fresh) {
    /* Nothing usable: a new archive.  LSNs must never repeat within a
     * database, so a damaged one's successor starts far beyond it. */
    la_pos p = {0};
    if (carry) p = *pos;
    p.next_lsn = n > 0 ? segs[n - 1] + (1ull << 32) : 1;
    if (pos->next_lsn > p.next_lsn) p.next_lsn = pos->next_lsn;
    if (!carry) clear_changed(a);
    *lost = n > 0 && !carry;
    *pos = p;
    if (new_segment(a, pos, !carry, err) != 0) {
      free(segs);
      goto fail;
    }
    for (long i = 0; i < n; i++) {
      char path[PATH_MAX + 200];
      seg_path(path, sizeof path, a->dir, segs[i]);
      unlink(path);
    }
  }
  free(segs);
  *out = a;
  return 0;
fail:
  la_close(a);
  return -1;
}

int la_rotate(logarc_t *a, const la_pos *pos, const uint8_t *set,
              size_t set_bytes, int drop_older, vmsg *err) {
  uint8_t *was = a->changed;
  size_t was_bytes = a->changed_bytes;
  if (set) {
    /* The new base's set replaces ours (pages changed since its start);
     * ours is kept until the new segment holds it: if that fails, the
     * base did not move, and its differential needs every page changed
     * since the old one. */
    a->changed = NULL;
    a->changed_bytes = 0;
    for (size_t i = 0; i < set_bytes * 8; i++)
      if ((set[i / 8] >> (i % 8)) & 1 && set_bit(a, (uint32_t)i)) {
        vmsg_set(err, 701, "There is insufficient system memory for the log.");
        goto undo;
      }
  }
  if (new_segment(a, pos, 0, err) != 0) goto undo;
  if (set) free(was);
  if (drop_older) la_truncate(a, a->seg_first);
  return 0;
undo:
  if (set) {
    free(a->changed);
    a->changed = was;
    a->changed_bytes = was_bytes;
  }
  return -1;
}

void la_truncate(logarc_t *a, uint64_t lsn) {
  uint64_t *segs;
  long n = list_segments(a->dir, &segs);
  for (long i = 0; i + 1 < n; i++) {
    /* Segment i holds [segs[i], segs[i+1]). */
    if (segs[i + 1] <= lsn) {
      char path[PATH_MAX + 200];
      seg_path(path, sizeof path, a->dir, segs[i]);
      unlink(path);
    }
  }
  free(segs);
}

struct reader {
  uint64_t first, last, expect;
  uint32_t ps;
  int (*fn)(void *, const vs_logrec *, const uint8_t *, vmsg *);
  void *ctx;
  vmsg *err;
  int rc;
};

static int read_entry(void *ctx, uint32_t magic, const uint8_t *b,
                      uint32_t len) {
  struct reader *r = ctx;
  if (magic != E_REC) return 0;
  vs_logrec rec;
  if (len != VS_LOGREC_HDR + r->ps ||
      vs_logrec_decode(&rec, b, r->ps) != VS_OK) {
    vmsg_set(r->err, 3634, "A record of the log archive is damaged.");
    return r->rc = -1;
  }
  if (rec.lsn < r->expect) return 0;
  if (rec.lsn >= r->last) return 1;   /* done */
  if (rec.lsn != r->expect) return 1; /* a gap: reported by the caller */
  r->expect++;
  if (r->fn(r->ctx, &rec, b, r->err)) return r->rc = -1;
  return 0;
}

int la_read(const char *inst_dir, const char *db, uint64_t first, uint64_t last,
            uint32_t page_size,
            int (*fn)(void *ctx, const vs_logrec *r, const uint8_t *rec,
                      vmsg *err),
            void *ctx, vmsg *err) {
  char dir[PATH_MAX + 300];
  snprintf(dir, sizeof dir, "%s/.vdisql/log/%s", inst_dir, db);
  uint64_t *segs;
  long n = list_segments(dir, &segs);
  struct reader r = {first, last, first, page_size, fn, ctx, err, 0};
  for (long i = 0; i < n && r.rc == 0 && r.expect < last; i++) {
    if (i + 1 < n && segs[i + 1] <= r.expect) continue;
    char path[PATH_MAX + 340];
    seg_path(path, sizeof path, dir, segs[i]);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    scan(fd, read_entry, &r);
    close(fd);
  }
  free(segs);
  if (r.rc) return -1;
  if (r.expect < last) {
    vmsg_set(err, 4214,
             "BACKUP LOG cannot be performed because there is no current "
             "database backup: the log from LSN %llu is no longer in the "
             "archive.",
             (unsigned long long)r.expect);
    return -1;
  }
  return 0;
}

void la_remove(const char *inst_dir, const char *db) {
  char dir[PATH_MAX + 300];
  snprintf(dir, sizeof dir, "%s/.vdisql/log/%s", inst_dir, db);
  uint64_t *segs;
  long n = list_segments(dir, &segs);
  for (long i = 0; i < n; i++) {
    char path[PATH_MAX + 340];
    seg_path(path, sizeof path, dir, segs[i]);
    unlink(path);
  }
  free(segs);
  rmdir(dir);
}

void la_close(logarc_t *a) {
  if (!a) return;
  if (a->fd >= 0) close(a->fd);
  free(a->changed);
  free(a->pending);
  free(a->buf);
  free(a);
}
