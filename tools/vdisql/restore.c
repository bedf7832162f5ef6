/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restore.c - the stream reader: checks every stripe's header, then reads
 * block k from stripe k % stripes, checking each record's CRC, the block
 * order, the page numbering, the decompressed pages' CRC, and finally each
 * stripe's trailer (counts, chained CRC, totals).  Any mismatch is damage
 * (Msg 3189 or 3241), reported and never passed on as data.  The reader
 * only ever asks the media for exact byte counts, so it does not care how
 * a device chunks its reads.
 */
#include "stream.h"

#include "crc32c.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static int read_exact(media_t *m, unsigned i, void *buf, size_t len,
                      const char *dev, const char *what, vmsg *err) {
  long n = media_read(m, i, buf, len);
  if (n < 0) return -1;
  if ((size_t)n != len) {
    vmsg_set(err, 3189,
             "Damage to the backup set was detected: the media family on "
             "device '%s' ends in the middle of %s.",
             dev, what);
    return -1;
  }
  return 0;
}

static int malformed(vmsg *err, const char *dev, const char *why) {
  vmsg_set(err, 3241,
           "The media family on device '%s' is incorrectly formed: %s. "
           "vdisql cannot process this media family.",
           dev, why);
  return -1;
}

int stream_read_headers(media_t *m, char *const *names, vs_header *h,
                        unsigned *order, vmsg *err) {
  uint8_t buf[VS_HEADER_SIZE];
  unsigned n = m->nstripes;
  int seen[VS_MAX_STRIPES] = {0};
  vs_header first;
  for (unsigned i = 0; i < n; i++) {
    vs_header cur;
    if (read_exact(m, i, buf, sizeof buf, names[i], "the media header", err))
      return -1;
    int st = vs_header_decode(&cur, buf);
    if (st != VS_OK)
      return malformed(err, names[i],
                       st == VS_BAD_MAGIC ? "it is not an openvdi backup"
                                          : vs_status_text(st));
    if (i == 0) first = cur;
    if (memcmp(cur.set_id, first.set_id, 16) != 0 ||
        cur.page_size != first.page_size ||
        cur.page_count != first.page_count ||
        cur.pages_per_block != first.pages_per_block ||
        cur.flags != first.flags || strcmp(cur.database, first.database) ||
        cur.src_mode != first.src_mode || cur.src_uid != first.src_uid ||
        cur.src_gid != first.src_gid || cur.backup_type != first.backup_type ||
        cur.first_lsn != first.first_lsn || cur.last_lsn != first.last_lsn ||
        cur.units != first.units ||
        memcmp(cur.family_id, first.family_id, 16) != 0 ||
        memcmp(cur.diff_base_id, first.diff_base_id, 16) != 0 ||
        cur.enc_algorithm != first.enc_algorithm ||
        memcmp(cur.enc_thumbprint, first.enc_thumbprint, VS_THUMBPRINT_SIZE) !=
            0)
      return malformed(err, names[i],
                       "it belongs to a different backup set than the media "
                       "family on the first device");
    if (cur.stripe_count != n) {
      vmsg_set(err, 3132,
               "The media set has %u media families but %u are provided. "
               "All members must be provided.",
               cur.stripe_count, n);
      return -1;
    }
    if (seen[cur.stripe_index]++)
      return malformed(err, names[i], "the same media family is given twice");
    order[cur.stripe_index] = i;
  }
  *h = first;
  h->stripe_index = 0;
  return 0;
}

struct rstripe {
  uint64_t blocks, pages, stored;
  uint32_t chain;
};

static int damage(vmsg *err, const char *dev, uint64_t block, const char *why) {
  vmsg_set(err, 3189,
           "Damage to the backup set was detected: device '%s', block %llu: "
           "%s.",
           dev, (unsigned long long)block, why);
  return -1;
}

static int read_trailer(media_t *m, unsigned mi, const char *dev,
                        const uint8_t *first4, const struct rstripe *rs,
                        uint64_t total_blocks, uint64_t total_pages,
                        vmsg *err) {
  uint8_t *t = malloc(vs_trailer_size(VS_MAX_PAD));
  vs_trailer tr;
  int rc = -1;
  if (!t) return damage(err, dev, total_blocks, "out of memory");
  memcpy(t, first4, 4);
  if (read_exact(m, mi, t + 4, VS_TRAILER_FIXED - 4, dev, "the trailer", err))
    goto out;
  if (vs_trailer_decode_fixed(&tr, t) != VS_OK) {
    damage(err, dev, total_blocks, "the trailer is invalid");
    goto out;
  }
  if (read_exact(m, mi, t + VS_TRAILER_FIXED, tr.pad_len + 4u, dev,
                 "the trailer", err))
    goto out;
  if (vs_trailer_check(&tr, t) != VS_OK) {
    damage(err, dev, total_blocks, "the trailer's checksum does not match");
    goto out;
  }
  if (tr.blocks != rs->blocks || tr.pages != rs->pages ||
      tr.stored_bytes != rs->stored || tr.chain_crc != rs->chain ||
      tr.total_blocks != total_blocks || tr.total_pages != total_pages) {
    damage(err, dev, total_blocks,
           "the totals in the trailer do not match the data");
    goto out;
  }
  /* Nothing may follow the trailer. */
  uint8_t extra;
  long more = media_read(m, mi, &extra, 1);
  if (more < 0) goto out;
  if (more > 0) {
    damage(err, dev, total_blocks, "data follows the end of the backup set");
    goto out;
  }
  rc = 0;
out:
  free(t);
  return rc;
}

int stream_read_body(media_t *m, char *const *names, const vs_header *h,
                     const unsigned *order, const rsink *sink, int stats,
                     vmsg *err) {
  const unsigned n = m->nstripes;
  const uint32_t unit = vs_unit_size(h);
  const int log = h->backup_type == VS_TYPE_LOG;
  const int diff = h->backup_type == VS_TYPE_DIFF;
  const size_t cap = (size_t)h->pages_per_block * unit;
  uint8_t *raw = malloc(cap), *stored = malloc(cap);
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  struct rstripe rs[VS_MAX_STRIPES];
  uint8_t hb[VS_BLOCK_HDR_SIZE];
  /* Units read so far; the next unit's number: a page, or for a log
   * backup an LSN.  A differential's pages ascend with gaps. */
  uint64_t k = 0, done = 0, next = log ? h->first_lsn : 1;
  int rc = -1, last = 0;
  memset(rs, 0, sizeof rs);
  if (!raw || !stored || !dctx) {
    vmsg_set(err, 701, "There is insufficient system memory to run RESTORE.");
    goto out;
  }
  while (done < h->units) {
    unsigned s = (unsigned)(k % n), mi = order[s];
    const char *dev = names[mi];
    vs_block b;
    if (read_exact(m, mi, hb, sizeof hb, dev, "a data block", err)) goto out;
    int st = vs_block_decode(&b, hb, unit);
    if (st != VS_OK) {
      damage(err, dev, k,
             st == VS_BAD_MAGIC ? "a data block was expected here"
                                : "the block header is invalid");
      goto out;
    }
    uint64_t left = h->units - done;
    uint32_t full =
        left < h->pages_per_block ? (uint32_t)left : h->pages_per_block;
    int in_order;
    if (diff) /* ascending runs of changed pages, within the database */
      in_order = b.first_page >= next && b.pages <= full &&
                 b.first_page - 1 + b.pages <= h->page_count;
    else if (log) /* consecutive LSNs */
      in_order = b.first_page == next && b.pages <= full;
    else /* every page, in full blocks */
      in_order = b.first_page == next && b.pages == full;
    if (b.seq != k || !in_order || !(b.flags & VS_B_LOG) != !log ||
        ((b.flags & VS_B_ZSTD) && !(h->flags & VS_F_COMPRESSED))) {
      damage(err, dev, k, "the block is out of sequence");
      goto out;
    }
    uint8_t *dst = (b.flags & VS_B_ZSTD) ? stored : raw;
    if (read_exact(m, mi, dst, b.stored_len, dev, "a data block", err))
      goto out;
    if (crc32c_update(0, dst, b.stored_len) != b.stored_crc) {
      damage(err, dev, k, "the block's checksum does not match");
      goto out;
    }
    if (b.flags & VS_B_ZSTD) {
      size_t r = ZSTD_decompressDCtx(dctx, raw, cap, stored, b.stored_len);
      if (ZSTD_isError(r) || r != b.raw_len) {
        damage(err, dev, k, "the compressed block cannot be decompressed");
        goto out;
      }
    }
    /* Stored as is, the pages are the bytes just checked: their CRC must
     * be the same number; only a decompressed block is read again. */
    if ((b.flags & VS_B_ZSTD)
            ? crc32c_update(0, raw, b.raw_len) != b.raw_crc
            : b.raw_len != b.stored_len || b.raw_crc != b.stored_crc) {
      damage(err, dev, k, "the pages' checksum does not match");
      goto out;
    }
    if (log) {
      /* Each record checks itself and carries the LSN it must. */
      for (uint32_t i = 0; i < b.pages; i++) {
        vs_logrec r;
        if (vs_logrec_decode(&r, raw + (size_t)i * unit, h->page_size) !=
                VS_OK ||
            r.lsn != b.first_page + i) {
          damage(err, dev, k, "a log record is damaged");
          goto out;
        }
      }
    }
    if (sink && sink->write &&
        sink->write(sink->ctx, b.first_page, b.pages, raw, err))
      goto out;
    rs[s].blocks++;
    rs[s].pages += b.pages;
    rs[s].stored += b.stored_len;
    rs[s].chain = crc32c_combine(rs[s].chain, b.raw_crc, b.raw_len);
    next = b.first_page + b.pages;
    done += b.pages;
    k++;
    progress(stats, done, h->units, &last);
  }
  for (unsigned s = 0; s < n; s++) {
    unsigned mi = order[s];
    uint8_t first4[4];
    if (read_exact(m, mi, first4, 4, names[mi], "the trailer", err)) goto out;
    if (vs_peek_magic(first4) != VS_TRAILER_MAGIC) {
      damage(err, names[mi], k, "the trailer was expected here");
      goto out;
    }
    if (read_trailer(m, mi, names[mi], first4, &rs[s], k, h->units, err))
      goto out;
  }
  if (h->units == 0) progress(stats, 1, 1, &last);
  rc = 0;
out:
  ZSTD_freeDCtx(dctx);
  free(raw);
  free(stored);
  return rc;
}
