/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backup.c - the stream writer: groups units (pages, or log records for a
 * log backup) into blocks (zstd-compressed when asked and when it helps),
 * and sends block k to stripe k % stripes, each stripe framed by its own
 * header and trailer (docs/STREAM-FORMAT.md).  Memory: one raw and one
 * compressed block.  A database backup writes every page of the snapshot,
 * a differential the changed ones, a log backup the archive's records.
 */
#include "stream.h"

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

static int put(wstream *w, unsigned i, const void *b, size_t n) {
  w->ws[i].bytes += n;
  return media_write(w->m, i, b, n);
}

static void ws_free(wstream *w) {
  ZSTD_freeCCtx(w->cctx);
  free(w->raw);
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
  w->raw = malloc(w->raw_cap);
  if (o->compress) {
    w->z = malloc(w->zcap);
    w->cctx = ZSTD_createCCtx();
  }
  if (!w->raw || (o->compress && (!w->z || !w->cctx))) {
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

/* One block of @p n units starting at @p first, the raw bytes in w->raw. */
static int ws_block(wstream *w, uint64_t first, uint32_t n, int log) {
  unsigned si = (unsigned)(w->seq % w->m->nstripes);
  vs_block b = {0};
  b.seq = w->seq;
  b.first_page = first;
  b.pages = n;
  b.raw_len = n * w->unit;
  b.flags = log ? VS_B_LOG : 0;
  b.raw_crc = crc32c_update(0, w->raw, b.raw_len);
  const uint8_t *payload = w->raw;
  b.stored_len = b.raw_len;
  if (w->cctx) {
    ZSTD_inBuffer in = {w->raw, b.raw_len, 0};
    ZSTD_outBuffer zo = {w->z, w->zcap, 0};
    ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_setPledgedSrcSize(w->cctx, b.raw_len);
    size_t r = ZSTD_compressStream2(w->cctx, &zo, &in, ZSTD_e_end);
    /* r == 0: frame complete; keep it only if it is smaller. */
    if (!ZSTD_isError(r) && r == 0 && zo.pos < b.raw_len) {
      payload = w->z;
      b.stored_len = (uint32_t)zo.pos;
      b.flags |= VS_B_ZSTD;
    }
  }
  /* Stored as is: the same bytes, the same CRC. */
  b.stored_crc =
      payload == w->raw ? b.raw_crc : crc32c_update(0, payload, b.stored_len);
  vs_block_encode(&b, w->hb);
  if (put(w, si, w->hb, VS_BLOCK_HDR_SIZE) || put(w, si, payload, b.stored_len))
    return -1;
  struct wstripe *s = &w->ws[si];
  s->blocks++;
  s->pages += n;
  s->stored += b.stored_len;
  s->chain = crc32c_combine(s->chain, b.raw_crc, b.raw_len);
  w->seq++;
  w->done += n;
  progress(w->o->stats, w->done, w->h.units, &w->last_pct);
  return 0;
}

static int ws_end(wstream *w) {
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
    if (snap_read_run(snap, pg, np, w.raw, err)) goto out;
    if (ws_block(&w, pg, np, 0)) goto out;
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
