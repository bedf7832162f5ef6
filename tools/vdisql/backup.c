/*
 * backup.c - the stream writer: reads the snapshot page by page, groups
 * pages into blocks (zstd-compressed when asked and when it helps), and
 * sends block k to stripe k % stripes, each stripe framed by its own header
 * and trailer (docs/STREAM-FORMAT.md).  Memory: one raw and one compressed
 * block.
 */
#include "stream.h"

#include "crc32c.h"
#include "msg.h"

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

void progress(int step, uint64_t done, uint64_t total, int *last) {
  if (step <= 0 || total == 0) return;
  int pct = (int)(done * 100 / total);
  while (*last + step <= pct) {
    *last += step;
    out_info("%d percent processed.", *last);
  }
}

static int put(media_t *m, struct wstripe *ws, unsigned i, const void *b,
               size_t n) {
  ws[i].bytes += n;
  return media_write(m, i, b, n);
}

int stream_backup(snap_t *snap, media_t *m, const wopts *o, vmsg *err) {
  const unsigned n = m->nstripes;
  const uint32_t ps = snap_page_size(snap);
  const uint64_t pc = snap_page_count(snap);
  uint32_t ppb = TARGET_BLOCK / ps;
  if (ppb == 0) ppb = 1;
  const size_t raw_cap = (size_t)ppb * ps;
  size_t zcap = ZSTD_compressBound(raw_cap);
  uint8_t *raw = malloc(raw_cap), *z = o->compress ? malloc(zcap) : NULL;
  struct wstripe ws[VS_MAX_STRIPES];
  ZSTD_CCtx *cctx = o->compress ? ZSTD_createCCtx() : NULL;
  uint8_t hb[VS_HEADER_SIZE > VS_TRAILER_FIXED + VS_MAX_PAD + 4
                 ? VS_HEADER_SIZE
                 : VS_TRAILER_FIXED + VS_MAX_PAD + 4];
  int rc = -1, last = 0;
  memset(ws, 0, sizeof ws);
  if (!raw || (o->compress && (!z || !cctx))) {
    vmsg_set(err, 701, "There is insufficient system memory to run BACKUP.");
    goto out;
  }
  vs_header h;
  memset(&h, 0, sizeof h);
  if (getrandom(h.set_id, sizeof h.set_id, 0) != (ssize_t)sizeof h.set_id) {
    for (size_t i = 0; i < sizeof h.set_id; i++) /* never reached on Linux */
      h.set_id[i] = (uint8_t)(rand() ^ (int)time(NULL));
  }
  h.stripe_count = n;
  h.page_size = ps;
  h.pages_per_block = ppb;
  h.page_count = pc;
  h.start_time = (int64_t)time(NULL);
  h.flags = (o->compress ? VS_F_COMPRESSED : 0) |
            (o->checksum ? VS_F_CHECKSUM : 0) |
            (o->copy_only ? VS_F_COPY_ONLY : 0);
  if (o->src) {
    /* A restore gives the new database these (fmode.h). */
    h.flags |= VS_F_SRC_MODE;
    h.src_mode = (uint32_t)o->src->st_mode;
    h.src_uid = (uint32_t)o->src->st_uid;
    h.src_gid = (uint32_t)o->src->st_gid;
  }
  h.device_type = m->device_type;
  snprintf(h.database, sizeof h.database, "%s", o->database);
  snprintf(h.name, sizeof h.name, "%s", o->name ? o->name : "");
  snprintf(h.description, sizeof h.description, "%s",
           o->description ? o->description : "");
  snprintf(h.server, sizeof h.server, "%s", o->server ? o->server : "");
  for (unsigned i = 0; i < n; i++) {
    h.stripe_index = i;
    vs_header_encode(&h, hb);
    if (put(m, ws, i, hb, VS_HEADER_SIZE)) goto out;
  }

  uint64_t seq = 0;
  for (uint64_t pg = 1; pg <= pc; seq++) {
    unsigned si = (unsigned)(seq % n);
    uint32_t np = pc - pg + 1 < ppb ? (uint32_t)(pc - pg + 1) : ppb;
    for (uint32_t k = 0; k < np; k++)
      if (snap_read(snap, pg + k, raw + (size_t)k * ps, err)) goto out;
    vs_block b = {0};
    b.seq = seq;
    b.first_page = pg;
    b.pages = np;
    b.raw_len = np * ps;
    b.raw_crc = crc32c_update(0, raw, b.raw_len);
    const uint8_t *payload = raw;
    b.stored_len = b.raw_len;
    if (cctx) {
      ZSTD_inBuffer in = {raw, b.raw_len, 0};
      ZSTD_outBuffer zo = {z, zcap, 0};
      ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
      ZSTD_CCtx_setPledgedSrcSize(cctx, b.raw_len);
      size_t r = ZSTD_compressStream2(cctx, &zo, &in, ZSTD_e_end);
      /* r == 0: frame complete; keep it only if it is smaller. */
      if (!ZSTD_isError(r) && r == 0 && zo.pos < b.raw_len) {
        payload = z;
        b.stored_len = (uint32_t)zo.pos;
        b.flags |= VS_B_ZSTD;
      }
    }
    b.stored_crc = crc32c_update(0, payload, b.stored_len);
    vs_block_encode(&b, hb);
    if (put(m, ws, si, hb, VS_BLOCK_HDR_SIZE) ||
        put(m, ws, si, payload, b.stored_len))
      goto out;
    ws[si].blocks++;
    ws[si].pages += np;
    ws[si].stored += b.stored_len;
    ws[si].chain = crc32c_update(ws[si].chain, raw, b.raw_len);
    pg += np;
    progress(o->stats, pg - 1, pc, &last);
  }

  for (unsigned i = 0; i < n; i++) {
    vs_trailer t = {0};
    uint64_t end = ws[i].bytes + vs_trailer_size(0);
    t.pad_len = (uint32_t)((m->align - end % m->align) % m->align);
    t.blocks = ws[i].blocks;
    t.pages = ws[i].pages;
    t.stored_bytes = ws[i].stored;
    t.total_blocks = seq;
    t.total_pages = pc;
    t.chain_crc = ws[i].chain;
    t.end_time = (int64_t)time(NULL);
    vs_trailer_encode(&t, hb);
    if (put(m, ws, i, hb, vs_trailer_size(t.pad_len))) goto out;
  }
  if (pc == 0) progress(o->stats, 1, 1, &last);
  if (o->out_header) {
    h.stripe_index = 0;
    *o->out_header = h;
  }
  if (o->out_bytes) {
    *o->out_bytes = 0;
    for (unsigned i = 0; i < n; i++)
      *o->out_bytes += ws[i].bytes;
  }
  rc = 0;
out:
  ZSTD_freeCCtx(cctx);
  free(raw);
  free(z);
  return rc;
}
