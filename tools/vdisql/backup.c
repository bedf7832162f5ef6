/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backup.c - the stream writer: groups units (pages, or log records for a
 * log backup) into blocks (zstd-compressed when asked and when it helps),
 * and sends block k to stripe k % stripes, each stripe framed by its own
 * header and trailer (docs/STREAM-FORMAT.md).  Memory: one raw and one
 * compressed block; a compressed backup on a machine with more than one
 * CPU compresses on a worker per CPU (blockpool.h), with two blocks of
 * each kind per worker.  A database backup writes every page of the snapshot,
 * a differential the changed ones, a log backup the archive's records.
 */
#include "stream.h"

#include "blockpool.h"
#include "crc32c.h"
#include "logarc.h"
#include "msg.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zstd.h>

#define TARGET_BLOCK (256u * 1024u)

struct wstripe {
  uint64_t bytes, blocks, pages, stored;
  uint32_t chain;
};

/* One backup set being written. */
typedef struct wstream {
  media_t *m;
  const wopts *o;
  vs_header h;
  uint32_t unit, ppb;
  uint8_t *raw, *z;
  size_t raw_cap, zcap;
  ZSTD_CCtx *cctx;
  bpool *pool;  /* compressing on workers; NULL: on this thread */
  bp_job *slot; /* the pool's job whose raw buffer w->raw is */
  struct wstripe ws[VS_MAX_STRIPES];
  uint64_t seq, done;
  int last_pct;
  uint8_t hb[VS_HEADER_SIZE > VS_TRAILER_FIXED + VS_MAX_PAD + 4
                 ? VS_HEADER_SIZE
                 : VS_TRAILER_FIXED + VS_MAX_PAD + 4];
  vmsg *err;
} wstream;

void progress(int step, uint64_t done, uint64_t total, int *last) {
  if (step <= 0 || total == 0) return;
  int pct = (int)(done * 100 / total);
  while (*last + step <= pct) {
    *last += step;
    out_info(3211, "%d percent processed.", *last);
  }
}

/* zstd's level for COMPRESSION (LEVEL = ...): LOW (the default, as in
 * SQL Server) 1, MEDIUM 3, HIGH 9. */
static int stream_zstd_level(int comp_level) {
  /* LOW is the speed SQL Server's LOW promises: on the databases of
   * docs/PERFORMANCE.md zstd 1 stored about what level 3 did (0.25 of a
   * text-heavy database, 0.95 of random blobs) at 1.2 to 2.3 times its
   * speed. */
  return comp_level == 3 ? 9 : comp_level == 2 ? 3 : 1;
}

static int put(wstream *w, unsigned i, const void *b, size_t n) {
  w->ws[i].bytes += n;
  return media_write(w->m, i, b, n);
}

static void ws_free(wstream *w) {
  bp_free(w->pool);
  ZSTD_freeCCtx(w->cctx);
  if (!w->pool) free(w->raw); /* else one of the pool's buffers */
  free(w->z);
}

/* Headers of every stripe.  @p tmpl has the kind-specific fields. */
static int ws_begin(wstream *w, media_t *m, const wopts *o,
                    const vs_header *tmpl, vmsg *err) {
  memset(w, 0, offsetof(wstream, hb));
  w->m = m;
  w->o = o;
  w->err = err;
  w->h = *tmpl;
  w->unit = vs_unit_size(tmpl);
  w->ppb = TARGET_BLOCK / w->unit;
  if (w->ppb == 0) w->ppb = 1;
  w->raw_cap = (size_t)w->ppb * w->unit;
  w->zcap = ZSTD_compressBound(w->raw_cap);
  unsigned cpus = o->compress ? bp_cpus() : 1;
  /* Without a pool (one CPU, or no threads to be had) the statement's
   * thread compresses. */
  if (cpus > 1 &&
      (w->pool = bp_new(cpus, w->raw_cap, stream_zstd_level(o->comp_level))) !=
          NULL) {
    w->slot = bp_slot(w->pool);
    w->raw = w->slot->raw;
  } else {
    w->raw = malloc(w->raw_cap);
    if (o->compress) {
      w->z = malloc(w->zcap);
      w->cctx = ZSTD_createCCtx();
      if (w->cctx)
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel,
                               stream_zstd_level(o->comp_level));
    }
  }
  if (!w->raw || (o->compress && !w->pool && (!w->z || !w->cctx))) {
    vmsg_set(err, 701, "There is insufficient system memory to run BACKUP.");
    return -1;
  }
  vs_header *h = &w->h;
  if (getrandom(h->set_id, sizeof h->set_id, 0) != (ssize_t)sizeof h->set_id) {
    for (size_t i = 0; i < sizeof h->set_id; i++) /* never reached on Linux */
      h->set_id[i] = (uint8_t)(rand() ^ (int)time(NULL));
  }
  h->stripe_count = m->nstripes;
  h->pages_per_block = w->ppb;
  h->start_time = (int64_t)time(NULL);
  h->flags =
      (tmpl->flags & VS_F_ENCRYPTED) | (o->compress ? VS_F_COMPRESSED : 0) |
      (o->checksum ? VS_F_CHECKSUM : 0) | (o->copy_only ? VS_F_COPY_ONLY : 0);
  if (o->src) {
    /* A restore gives the new database these (fmode.h). */
    h->flags |= VS_F_SRC_MODE;
    h->src_mode = (uint32_t)o->src->st_mode;
    h->src_uid = (uint32_t)o->src->st_uid;
    h->src_gid = (uint32_t)o->src->st_gid;
  }
  h->device_type = m->device_type;
  snprintf(h->database, sizeof h->database, "%s", o->database);
  snprintf(h->name, sizeof h->name, "%s", o->name ? o->name : "");
  snprintf(h->description, sizeof h->description, "%s",
           o->description ? o->description : "");
  snprintf(h->server, sizeof h->server, "%s", o->server ? o->server : "");
  for (unsigned i = 0; i < m->nstripes; i++) {
    h->stripe_index = i;
    vs_header_encode(h, w->hb);
    if (put(w, i, w->hb, VS_HEADER_SIZE)) return -1;
  }
  return 0;
}

/* The header of a checksummed (and maybe compressed) block, the next of
 * the stream.  Stored as is, its bytes and CRC are the pages'. */
static void ws_header(const wstream *w, const bp_job *j, vs_block *b) {
  memset(b, 0, sizeof *b);
  b->seq = w->seq;
  b->first_page = j->first;
  b->pages = j->n;
  b->raw_len = j->raw_len;
  b->flags = j->log ? VS_B_LOG : 0;
  b->raw_crc = j->raw_crc;
  b->stored_len = b->raw_len;
  b->stored_crc = b->raw_crc;
  if (j->z_len != 0) {
    b->stored_len = j->z_len;
    b->stored_crc = j->z_crc;
    b->flags |= VS_B_ZSTD;
  }
}

/* The block b is on stripe si: count it. */
static void ws_count(wstream *w, unsigned si, const vs_block *b) {
  struct wstripe *s = &w->ws[si];
  s->blocks++;
  s->pages += b->pages;
  s->stored += b->stored_len;
  s->chain = crc32c_combine(s->chain, b->raw_crc, b->raw_len);
  w->seq++;
  w->done += b->pages;
  progress(w->o->stats, w->done, w->h.units, &w->last_pct);
}

/* The stripe of the stream's next block: its number modulo the stripes. */
static unsigned ws_stripe(const wstream *w) {
  return (unsigned)(w->seq % w->m->nstripes);
}

/* Write block j as the next of the stream. */
static int ws_emit(wstream *w, const bp_job *j) {
  unsigned si = ws_stripe(w);
  vs_block b;
  ws_header(w, j, &b);
  vs_block_encode(&b, w->hb);
  if (put(w, si, w->hb, VS_BLOCK_HDR_SIZE) ||
      put(w, si, j->z_len ? j->z : j->raw, b.stored_len))
    return -1;
  ws_count(w, si, &b);
  return 0;
}

/* Where the next block of @p n pages can be made in place (media_reserve:
 * header, then pages), or NULL: read into w->raw and ws_block. */
static uint8_t *ws_reserve(wstream *w, uint32_t n) {
  if (w->pool || w->cctx) return NULL; /* compressed from w->raw */
  return media_reserve(w->m, ws_stripe(w),
                       VS_BLOCK_HDR_SIZE + (size_t)n * w->unit);
}

/* The block of @p n pages from @p first whose pages were read to
 * at + VS_BLOCK_HDR_SIZE (ws_reserve): its header goes before them. */
static int ws_block_at(wstream *w, uint8_t *at, uint64_t first, uint32_t n) {
  unsigned si = ws_stripe(w);
  bp_job j = {.raw = at + VS_BLOCK_HDR_SIZE,
              .raw_len = n * w->unit,
              .first = first,
              .n = n};
  j.raw_crc = crc32c_update(0, j.raw, j.raw_len);
  vs_block b;
  ws_header(w, &j, &b);
  vs_block_encode(&b, at);
  size_t len = VS_BLOCK_HDR_SIZE + (size_t)j.raw_len;
  w->ws[si].bytes += len;
  if (media_commit(w->m, si, len)) return -1;
  ws_count(w, si, &b);
  return 0;
}

/* Write out every block the workers have finished; with @p wait, every
 * block submitted. */
static int ws_drain(wstream *w, int wait) {
  bp_job *j;
  while ((j = bp_collect(w->pool, wait)) != NULL)
    if (ws_emit(w, j)) return -1;
  return 0;
}

/* One block of @p n units starting at @p first, the raw bytes in w->raw
 * (which then names the buffer for the next block). */
static int ws_block(wstream *w, uint64_t first, uint32_t n, int log) {
  if (w->pool == NULL) {
    bp_job j = {.raw = w->raw,
                .raw_len = n * w->unit,
                .first = first,
                .n = n,
                .log = log,
                .z = w->z,
                .z_cap = w->zcap};
    bp_compress(&j, w->cctx);
    return ws_emit(w, &j);
  }
  bp_job *j = w->slot;
  j->raw_len = n * w->unit;
  j->first = first;
  j->n = n;
  j->log = log;
  bp_submit(w->pool, j);
  if (ws_drain(w, 0)) return -1;
  /* The ring is full: the oldest block goes out before its buffer takes
   * the next one. */
  while ((w->slot = bp_slot(w->pool)) == NULL) {
    bp_job *old = bp_collect(w->pool, 1);
    if (ws_emit(w, old)) return -1;
  }
  w->raw = w->slot->raw;
  return 0;
}

static int ws_end(wstream *w) {
  if (w->pool && ws_drain(w, 1)) return -1;
  for (unsigned i = 0; i < w->m->nstripes; i++) {
    vs_trailer t = {0};
    uint64_t end = w->ws[i].bytes + vs_trailer_size(0);
    t.pad_len = (uint32_t)((w->m->align - end % w->m->align) % w->m->align);
    t.blocks = w->ws[i].blocks;
    t.pages = w->ws[i].pages;
    t.stored_bytes = w->ws[i].stored;
    t.total_blocks = w->seq;
    t.total_pages = w->h.units;
    t.chain_crc = w->ws[i].chain;
    t.end_time = (int64_t)time(NULL);
    vs_trailer_encode(&t, w->hb);
    if (put(w, i, w->hb, vs_trailer_size(t.pad_len))) return -1;
  }
  if (w->h.units == 0) progress(w->o->stats, 1, 1, &w->last_pct);
  if (w->o->out_header) {
    *w->o->out_header = w->h;
    w->o->out_header->stripe_index = 0;
  }
  if (w->o->out_bytes) {
    *w->o->out_bytes = 0;
    for (unsigned i = 0; i < w->m->nstripes; i++)
      *w->o->out_bytes += w->ws[i].bytes;
  }
  return 0;
}

static int is_set(const uint8_t *set, size_t bytes, uint64_t pg) {
  return pg / 8 < bytes && (set[pg / 8] >> (pg % 8)) & 1;
}

int stream_backup(snap_t *snap, media_t *m, const wopts *o,
                  const vs_header *tmpl, vmsg *err) {
  wstream w;
  vs_header h = *tmpl;
  const uint32_t ps = snap_page_size(snap);
  const uint64_t pc = snap_page_count(snap);
  const int diff = h.backup_type == VS_TYPE_DIFF;
  h.page_size = ps;
  h.page_count = pc;
  h.units = pc;
  if (diff) {
    h.units = 0;
    for (uint64_t pg = 1; pg <= pc; pg++)
      h.units += (uint64_t)is_set(o->changed, o->changed_bytes, pg);
  }
  int rc = -1;
  if (ws_begin(&w, m, o, &h, err)) goto out;
  for (uint64_t pg = 1; pg <= pc;) {
    if (diff && !is_set(o->changed, o->changed_bytes, pg)) {
      pg++;
      continue;
    }
    /* A run of pages: consecutive (and, for a differential, changed). */
    uint32_t np = 0;
    while (np < w.ppb && pg + np <= pc &&
           (!diff || is_set(o->changed, o->changed_bytes, pg + np)))
      np++;
    uint8_t *at = ws_reserve(&w, np);
    if (at) { /* no copy: the pages go where the device sends them from */
      if (snap_read_run(snap, pg, np, at + VS_BLOCK_HDR_SIZE, err) ||
          ws_block_at(&w, at, pg, np))
        goto out;
    } else {
      if (snap_read_run(snap, pg, np, w.raw, err) || ws_block(&w, pg, np, 0))
        goto out;
    }
    pg += np;
  }
  rc = ws_end(&w);
out:
  ws_free(&w);
  return rc;
}

struct logfill {
  wstream *w;
  uint64_t first; /* LSN of the first record in w->raw */
  uint32_t n;
};

static int add_rec(void *ctx, const vs_logrec *r, const uint8_t *rec,
                   vmsg *err) {
  struct logfill *f = ctx;
  wstream *w = f->w;
  (void)err;
  if (f->n == 0) f->first = r->lsn;
  memcpy(w->raw + (size_t)f->n * w->unit, rec, w->unit);
  if (++f->n == w->ppb) {
    if (ws_block(w, f->first, f->n, 1)) return -1;
    f->n = 0;
  }
  return 0;
}

int stream_backup_log(const char *inst_dir, media_t *m, const wopts *o,
                      const vs_header *tmpl, vmsg *err) {
  wstream w;
  vs_header h = *tmpl;
  h.units = h.page_count = h.last_lsn - h.first_lsn;
  int rc = -1;
  if (ws_begin(&w, m, o, &h, err)) goto out;
  struct logfill f = {&w, 0, 0};
  if (la_read(inst_dir, h.database, h.first_lsn, h.last_lsn, h.page_size,
              add_rec, &f, err) != 0)
    goto out;
  if (f.n > 0 && ws_block(&w, f.first, f.n, 1)) goto out;
  if (w.done != h.units) {
    vmsg_set(err, 4214, "The log archive does not hold the whole range.");
    goto out;
  }
  rc = ws_end(&w);
out:
  ws_free(&w);
  return rc;
}
