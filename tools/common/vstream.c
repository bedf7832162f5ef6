/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vstream.c - encoder and decoder of the backup stream records; the layout
 * is in vstream.h and docs/STREAM-FORMAT.md.  Decoders trust nothing: every
 * record carries its own CRC-32C and every field is range-checked.
 */
#include "vstream.h"

#include "crc32c.h"
#include "le.h"

#include <stdio.h>
#include <string.h>

uint32_t vs_peek_magic(const uint8_t *in) {
  return le_get32(in);
}

/* Header offsets. */
enum {
  H_MAGIC = 0,
  H_VERSION = 8,
  H_SIZE = 12,
  H_SETID = 16,
  H_STRIPE = 32,
  H_NSTRIPES = 36,
  H_PAGESIZE = 40,
  H_PPB = 44,
  H_PAGES = 48,
  H_TIME = 56,
  H_FLAGS = 64,
  H_DEVTYPE = 68,
  H_DBNAME = 80,
  H_NAME = 208,
  H_DESC = 336,
  H_SERVER = 592,
  H_SRCMODE = 656,
  H_SRCUID = 660,
  H_SRCGID = 664,
  /* version 2 */
  H_BTYPE = 668,
  H_RECOVERY = 672,
  H_FAMILY = 676,
  H_FIRSTLSN = 692,
  H_LASTLSN = 700,
  H_CKPTLSN = 708,
  H_DBLSN = 716,
  H_DIFFLSN = 724,
  H_DIFFID = 732,
  H_FIRSTTIME = 748,
  H_LASTTIME = 756,
  H_UNITS = 764,
  H_ENCALG = 772,
  H_ENCTYPE = 776,
  H_ENCTHUMB = 780,
  H_V2_END = 800,
  H_CRC = 1020
};

static void put_str(uint8_t *p, const char *s, size_t field) {
  size_t n = strnlen(s, field - 1);
  memcpy(p, s, n); /* the rest of the field stays zero */
}

static int get_str(char *dst, const uint8_t *p, size_t field) {
  if (memchr(p, 0, field) == NULL) return -1; /* must be terminated */
  memcpy(dst, p, field);
  return 0;
}

void vs_header_encode(const vs_header *h, uint8_t *out) {
  memset(out, 0, VS_HEADER_SIZE);
  memcpy(out + H_MAGIC, VS_MAGIC, 8);
  le_put32(out + H_VERSION, VS_VERSION);
  le_put32(out + H_SIZE, VS_HEADER_SIZE);
  memcpy(out + H_SETID, h->set_id, 16);
  le_put32(out + H_STRIPE, h->stripe_index);
  le_put32(out + H_NSTRIPES, h->stripe_count);
  le_put32(out + H_PAGESIZE, h->page_size);
  le_put32(out + H_PPB, h->pages_per_block);
  le_put64(out + H_PAGES, h->page_count);
  le_put64(out + H_TIME, (uint64_t)h->start_time);
  le_put32(out + H_FLAGS, h->flags);
  le_put32(out + H_DEVTYPE, h->device_type);
  /* The database name may fill its field: identifiers are up to 128. */
  memcpy(out + H_DBNAME, h->database, strnlen(h->database, 128));
  put_str(out + H_NAME, h->name, 128);
  put_str(out + H_DESC, h->description, 256);
  put_str(out + H_SERVER, h->server, 64);
  if (h->flags & VS_F_SRC_MODE) {
    le_put32(out + H_SRCMODE, h->src_mode);
    le_put32(out + H_SRCUID, h->src_uid);
    le_put32(out + H_SRCGID, h->src_gid);
  }
  le_put32(out + H_BTYPE, h->backup_type);
  le_put32(out + H_RECOVERY, h->recovery);
  memcpy(out + H_FAMILY, h->family_id, 16);
  le_put64(out + H_FIRSTLSN, h->first_lsn);
  le_put64(out + H_LASTLSN, h->last_lsn);
  le_put64(out + H_CKPTLSN, h->checkpoint_lsn);
  le_put64(out + H_DBLSN, h->database_backup_lsn);
  le_put64(out + H_DIFFLSN, h->diff_base_lsn);
  memcpy(out + H_DIFFID, h->diff_base_id, 16);
  le_put64(out + H_FIRSTTIME, (uint64_t)h->first_time_ms);
  le_put64(out + H_LASTTIME, (uint64_t)h->last_time_ms);
  le_put64(out + H_UNITS, h->units);
  if (h->flags & VS_F_ENCRYPTED) {
    le_put32(out + H_ENCALG, h->enc_algorithm);
    le_put32(out + H_ENCTYPE, h->enc_type);
    memcpy(out + H_ENCTHUMB, h->enc_thumbprint, VS_THUMBPRINT_SIZE);
  }
  le_put32(out + H_CRC, crc32c_update(0, out, H_CRC));
}

static int pow2_in(uint32_t v, uint32_t lo, uint32_t hi) {
  return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

int vs_header_decode(vs_header *h, const uint8_t *in) {
  memset(h, 0, sizeof *h);
  if (memcmp(in + H_MAGIC, VS_MAGIC, 8) != 0) return VS_BAD_MAGIC;
  if (le_get32(in + H_CRC) != crc32c_update(0, in, H_CRC)) return VS_BAD_CRC;
  uint32_t version = le_get32(in + H_VERSION);
  if (version != 1 && version != VS_VERSION) return VS_BAD_VERSION;
  if (le_get32(in + H_SIZE) != VS_HEADER_SIZE) return VS_BAD_FIELD;
  memcpy(h->set_id, in + H_SETID, 16);
  h->stripe_index = le_get32(in + H_STRIPE);
  h->stripe_count = le_get32(in + H_NSTRIPES);
  h->page_size = le_get32(in + H_PAGESIZE);
  h->pages_per_block = le_get32(in + H_PPB);
  h->page_count = le_get64(in + H_PAGES);
  h->start_time = (int64_t)le_get64(in + H_TIME);
  h->flags = le_get32(in + H_FLAGS);
  h->device_type = le_get32(in + H_DEVTYPE);
  if (h->stripe_count < 1 || h->stripe_count > VS_MAX_STRIPES ||
      h->stripe_index >= h->stripe_count)
    return VS_BAD_FIELD;
  if (!pow2_in(h->page_size, 512, 65536) || h->pages_per_block == 0 ||
      (uint64_t)h->pages_per_block * h->page_size > VS_MAX_RAW_BLOCK)
    return VS_BAD_FIELD;
  if ((h->flags & ~VS_F_KNOWN) != 0) return VS_BAD_FIELD;
  if (h->page_count > ((uint64_t)1 << 32)) return VS_BAD_FIELD;
  memcpy(h->database, in + H_DBNAME, 128);
  h->database[128] = 0;
  if (h->flags & VS_F_SRC_MODE) {
    h->src_mode = le_get32(in + H_SRCMODE);
    h->src_uid = le_get32(in + H_SRCUID);
    h->src_gid = le_get32(in + H_SRCGID);
  }
  if (version == 1) {
    /* Version 1 had full backups only; its reserved bytes are zero. */
    if (h->flags & VS_F_ENCRYPTED) return VS_BAD_FIELD;
    h->backup_type = VS_TYPE_DATABASE;
    h->units = h->page_count;
  } else {
    h->backup_type = le_get32(in + H_BTYPE);
    h->recovery = le_get32(in + H_RECOVERY);
    memcpy(h->family_id, in + H_FAMILY, 16);
    h->first_lsn = le_get64(in + H_FIRSTLSN);
    h->last_lsn = le_get64(in + H_LASTLSN);
    h->checkpoint_lsn = le_get64(in + H_CKPTLSN);
    h->database_backup_lsn = le_get64(in + H_DBLSN);
    h->diff_base_lsn = le_get64(in + H_DIFFLSN);
    memcpy(h->diff_base_id, in + H_DIFFID, 16);
    h->first_time_ms = (int64_t)le_get64(in + H_FIRSTTIME);
    h->last_time_ms = (int64_t)le_get64(in + H_LASTTIME);
    h->units = le_get64(in + H_UNITS);
    if (h->backup_type != VS_TYPE_DATABASE && h->backup_type != VS_TYPE_LOG &&
        h->backup_type != VS_TYPE_DIFF)
      return VS_BAD_FIELD;
    if (h->recovery != 0 && h->recovery != VS_RECOVERY_FULL &&
        h->recovery != VS_RECOVERY_SIMPLE)
      return VS_BAD_FIELD;
    if (h->last_lsn < h->first_lsn) return VS_BAD_FIELD;
    /* A database backup holds every page; a differential at most all. */
    if ((h->backup_type == VS_TYPE_DATABASE && h->units != h->page_count) ||
        (h->backup_type == VS_TYPE_DIFF && h->units > h->page_count))
      return VS_BAD_FIELD;
    if (h->backup_type == VS_TYPE_LOG &&
        (uint64_t)h->pages_per_block * (h->page_size + VS_LOGREC_HDR) >
            VS_MAX_RAW_BLOCK)
      return VS_BAD_FIELD;
    if (h->flags & VS_F_ENCRYPTED) {
      h->enc_algorithm = le_get32(in + H_ENCALG);
      h->enc_type = le_get32(in + H_ENCTYPE);
      memcpy(h->enc_thumbprint, in + H_ENCTHUMB, VS_THUMBPRINT_SIZE);
      if (h->enc_algorithm < VS_ENC_AES_128 ||
          h->enc_algorithm > VS_ENC_AES_256 || h->enc_type != VS_ENCRYPTOR_CERT)
        return VS_BAD_FIELD;
    } else {
      for (unsigned i = H_ENCALG; i < H_V2_END; i++)
        if (in[i] != 0) return VS_BAD_FIELD;
    }
    for (unsigned i = H_V2_END; i < H_CRC; i++)
      if (in[i] != 0) return VS_BAD_FIELD;
  }
  if (get_str(h->name, in + H_NAME, 128) ||
      get_str(h->description, in + H_DESC, 256) ||
      get_str(h->server, in + H_SERVER, 64))
    return VS_BAD_FIELD;
  return VS_OK;
}

/* Block header: magic 0, flags 4, seq 8, first_page 16, pages 24,
 * stored_len 28, raw_len 32, raw_crc 36, stored_crc 40, header CRC 44. */
void vs_block_encode(const vs_block *b, uint8_t *out) {
  le_put32(out, VS_BLOCK_MAGIC);
  le_put32(out + 4, b->flags);
  le_put64(out + 8, b->seq);
  le_put64(out + 16, b->first_page);
  le_put32(out + 24, b->pages);
  le_put32(out + 28, b->stored_len);
  le_put32(out + 32, b->raw_len);
  le_put32(out + 36, b->raw_crc);
  le_put32(out + 40, b->stored_crc);
  le_put32(out + 44, crc32c_update(0, out, 44));
}

uint32_t vs_unit_size(const vs_header *h) {
  return h->backup_type == VS_TYPE_LOG ? h->page_size + VS_LOGREC_HDR
                                       : h->page_size;
}

void vs_logrec_encode(const vs_logrec *r, uint8_t *out, uint32_t page_size) {
  le_put64(out, r->lsn);
  le_put32(out + 8, r->pgno);
  le_put32(out + 12, r->commit_size);
  le_put64(out + 16, (uint64_t)r->time_ms);
  le_put32(out + 28, 0);
  uint32_t c = crc32c_update(0, out, 24);
  c = crc32c_update(c, out + 28, 4);
  le_put32(out + 24, crc32c_update(c, out + VS_LOGREC_HDR, page_size));
}

int vs_logrec_decode(vs_logrec *r, const uint8_t *in, uint32_t page_size) {
  memset(r, 0, sizeof *r);
  uint32_t c = crc32c_update(0, in, 24);
  c = crc32c_update(c, in + 28, 4);
  if (le_get32(in + 24) != crc32c_update(c, in + VS_LOGREC_HDR, page_size))
    return VS_BAD_CRC;
  r->lsn = le_get64(in);
  r->pgno = le_get32(in + 8);
  r->commit_size = le_get32(in + 12);
  r->time_ms = (int64_t)le_get64(in + 16);
  if (r->pgno == 0 || r->lsn == 0 || le_get32(in + 28) != 0)
    return VS_BAD_FIELD;
  return VS_OK;
}

int vs_block_decode(vs_block *b, const uint8_t *in, uint32_t page_size) {
  memset(b, 0, sizeof *b);
  if (le_get32(in) != VS_BLOCK_MAGIC) return VS_BAD_MAGIC;
  if (le_get32(in + 44) != crc32c_update(0, in, 44)) return VS_BAD_CRC;
  b->flags = le_get32(in + 4);
  b->seq = le_get64(in + 8);
  b->first_page = le_get64(in + 16);
  b->pages = le_get32(in + 24);
  b->stored_len = le_get32(in + 28);
  b->raw_len = le_get32(in + 32);
  b->raw_crc = le_get32(in + 36);
  b->stored_crc = le_get32(in + 40);
  if ((b->flags & ~(VS_B_ZSTD | VS_B_LOG)) != 0 || b->pages == 0 ||
      b->first_page == 0)
    return VS_BAD_FIELD;
  if ((uint64_t)b->pages * page_size != b->raw_len ||
      b->raw_len > VS_MAX_RAW_BLOCK)
    return VS_BAD_FIELD;
  /* A stored (uncompressed) block is exactly raw; a zstd frame of it is
   * never much larger than the raw bytes (we store raw when it would be). */
  if (b->flags & VS_B_ZSTD) {
    if (b->stored_len == 0 || b->stored_len >= b->raw_len) return VS_BAD_FIELD;
  } else if (b->stored_len != b->raw_len) {
    return VS_BAD_FIELD;
  }
  return VS_OK;
}

/* Trailer fixed part: magic 0, pad_len 4, blocks 8, pages 16, stored 24,
 * total_blocks 32, total_pages 40, chain_crc 48, reserved 52, end_time 56;
 * then pad_len zero bytes; then the CRC of everything before it. */
size_t vs_trailer_size(uint32_t pad_len) {
  return VS_TRAILER_FIXED + (size_t)pad_len + 4;
}

void vs_trailer_encode(const vs_trailer *t, uint8_t *out) {
  size_t n = VS_TRAILER_FIXED + t->pad_len;
  memset(out, 0, n);
  le_put32(out, VS_TRAILER_MAGIC);
  le_put32(out + 4, t->pad_len);
  le_put64(out + 8, t->blocks);
  le_put64(out + 16, t->pages);
  le_put64(out + 24, t->stored_bytes);
  le_put64(out + 32, t->total_blocks);
  le_put64(out + 40, t->total_pages);
  le_put32(out + 48, t->chain_crc);
  le_put64(out + 56, (uint64_t)t->end_time);
  le_put32(out + n, crc32c_update(0, out, n));
}

int vs_trailer_decode_fixed(vs_trailer *t, const uint8_t *in) {
  memset(t, 0, sizeof *t);
  if (le_get32(in) != VS_TRAILER_MAGIC) return VS_BAD_MAGIC;
  t->pad_len = le_get32(in + 4);
  t->blocks = le_get64(in + 8);
  t->pages = le_get64(in + 16);
  t->stored_bytes = le_get64(in + 24);
  t->total_blocks = le_get64(in + 32);
  t->total_pages = le_get64(in + 40);
  t->chain_crc = le_get32(in + 48);
  t->end_time = (int64_t)le_get64(in + 56);
  if (t->pad_len > VS_MAX_PAD || le_get32(in + 52) != 0) return VS_BAD_FIELD;
  return VS_OK;
}

int vs_trailer_check(const vs_trailer *t, const uint8_t *whole) {
  size_t n = VS_TRAILER_FIXED + t->pad_len;
  for (size_t i = VS_TRAILER_FIXED; i < n; i++)
    if (whole[i] != 0) return VS_BAD_FIELD;
  if (le_get32(whole + n) != crc32c_update(0, whole, n)) return VS_BAD_CRC;
  return VS_OK;
}

void vs_format_guid(const uint8_t id[16], char *out) {
  char *p = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    p += sprintf(p, "%02X", id[i]);
  }
  *p = 0;
}

const char *vs_status_text(int st) {
  switch (st) {
  case VS_OK:
    return "valid";
  case VS_BAD_MAGIC:
    return "unrecognized record";
  case VS_BAD_VERSION:
    return "unsupported format version";
  case VS_BAD_CRC:
    return "checksum mismatch";
  case VS_BAD_FIELD:
    return "invalid field value";
  }
  return "unknown error";
}

void vs_format_thumbprint(const uint8_t t[VS_THUMBPRINT_SIZE], char *out) {
  static const char hex[] = "0123456789ABCDEF";
  out[0] = '0';
  out[1] = 'x';
  for (unsigned i = 0; i < VS_THUMBPRINT_SIZE; i++) {
    out[2 + 2 * i] = hex[t[i] >> 4];
    out[3 + 2 * i] = hex[t[i] & 15];
  }
  out[2 + 2 * VS_THUMBPRINT_SIZE] = 0;
}

const char *vs_enc_name(uint32_t alg) {
  switch (alg) {
  case VS_ENC_AES_128:
    return "aes_128";
  case VS_ENC_AES_192:
    return "aes_192";
  case VS_ENC_AES_256:
    return "aes_256";
  }
  return NULL;
}
