/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-format.c - the pieces of the backup stream format in
 * tools/common: CRC-32C (known values; hardware and table agree; chaining)
 * and the record encoders/decoders (round trip; every single-bit change of
 * a record is refused).
 */
#include "task.h"

#include "crc32c.h"

#include <stdlib.h>
#include "vstream.h"

TEST_IMPL(sql_format_crc32c) {
  ASSERT_UEQ(crc32c_update(0, "123456789", 9), 0xE3069283u);
  ASSERT_UEQ(crc32c_update_sw(0, "123456789", 9), 0xE3069283u);
  ASSERT_UEQ(crc32c_update(0, "", 0), 0);
  uint8_t buf[4099];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(i * 31 + 7);
  for (size_t n = 0; n < sizeof buf; n += 97) {
    uint32_t a = crc32c_update(0, buf + 1, n); /* unaligned start */
    ASSERT_UEQ(a, crc32c_update_sw(0, buf + 1, n));
    /* chaining = the CRC of the concatenation */
    uint32_t b = crc32c_update(crc32c_update(0, buf + 1, n / 3),
                               buf + 1 + n / 3, n - n / 3);
    ASSERT_UEQ(a, b);
  }
  /* 32 zero bytes: the RFC 3720 check value. */
  uint8_t z[32] = {0};
  ASSERT_UEQ(crc32c_update(0, z, 32), 0x8A9136AAu);
  /* Long buffers take the three-lane path (3 KiB blocks): every length
   * around the block edges, odd starts, and 200 KiB of noise, against the
   * table. */
  enum { BIG = 200 * 1024 + 13 };
  uint8_t *big = malloc(BIG);
  ASSERT_NOT_NULL(big);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < BIG; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    big[i] = (uint8_t)x;
  }
  static const size_t lens[] = {3071, 3072, 3073, 3079,  3080,  6143,
                                6144, 6151, 9216, 65536, 65543, BIG - 8};
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
    for (size_t off = 0; off < 8; off += 3) {
      uint32_t h = crc32c_update(0x12345678u, big + off, lens[k]);
      ASSERT_UEQ(h, crc32c_update_sw(0x12345678u, big + off, lens[k]));
    }
  /* Carried over B's length without B: every split of the noise. */
  for (size_t cut = 0; cut < 70000; cut += 4099) {
    size_t len_b = 70000 - cut;
    uint32_t whole = crc32c_update(0, big, 70000);
    uint32_t ca = crc32c_update(0, big, cut);
    uint32_t cb = crc32c_update(0, big + cut, len_b);
    ASSERT_UEQ(crc32c_combine(ca, cb, len_b), whole);
  }
  ASSERT_UEQ(crc32c_combine(0xDEADBEEFu, 0, 0), 0xDEADBEEFu);
  free(big);
  printf("hardware CRC-32C: %s\n", crc32c_hw_available() ? "yes" : "no");
  return 0;
}

TEST_IMPL(sql_format_records_roundtrip_and_damage) {
  vs_header h, h2;
  memset(&h, 0, sizeof h);
  for (int i = 0; i < 16; i++)
    h.set_id[i] = (uint8_t)(i * 17);
  h.stripe_index = 2;
  h.stripe_count = 3;
  h.page_size = 4096;
  h.pages_per_block = 64;
  h.page_count = 12345;
  h.start_time = 1700000000;
  h.flags = VS_F_COMPRESSED | VS_F_CHECKSUM;
  h.device_type = VS_DEVICE_VIRTUAL;
  strcpy(h.database, "sales");
  strcpy(h.name, "n");
  strcpy(h.description, "d");
  strcpy(h.server, "host");
  /* Version 2's fields: a log backup of a database in FULL. */
  h.backup_type = VS_TYPE_LOG;
  h.recovery = VS_RECOVERY_FULL;
  for (int i = 0; i < 16; i++)
    h.family_id[i] = (uint8_t)(200 - i);
  h.first_lsn = 1000;
  h.last_lsn = h.checkpoint_lsn = 1500;
  h.database_backup_lsn = 900;
  h.first_time_ms = 1700000000123;
  h.last_time_ms = 1700000009876;
  h.units = 500;
  uint8_t hb[VS_HEADER_SIZE];
  vs_header_encode(&h, hb);
  ASSERT_EQ(vs_header_decode(&h2, hb), VS_OK);
  ASSERT_MEM_EQ(&h, &h2, sizeof h);
  for (size_t bit = 0; bit < VS_HEADER_SIZE * 8; bit += 7) {
    hb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    ASSERT_NE(vs_header_decode(&h2, hb), VS_OK);
    hb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  /* A well-formed header with an impossible field. */
  h.stripe_index = 3;
  vs_header_encode(&h, hb);
  ASSERT_EQ(vs_header_decode(&h2, hb), VS_BAD_FIELD);
  h.stripe_index = 2;
  h.last_lsn = 999; /* a log that ends before it begins */
  vs_header_encode(&h, hb);
  ASSERT_EQ(vs_header_decode(&h2, hb), VS_BAD_FIELD);
  h.last_lsn = 1500;
  h.backup_type = VS_TYPE_DATABASE; /* a full backup holds every page */
  vs_header_encode(&h, hb);
  ASSERT_EQ(vs_header_decode(&h2, hb), VS_BAD_FIELD);
  h.backup_type = VS_TYPE_LOG;

  /* A log record checks itself, page included. */
  {
    uint8_t rec[VS_LOGREC_HDR + 1024];
    vs_logrec lr = {0}, lr2;
    lr.lsn = 1234;
    lr.pgno = 7;
    lr.commit_size = 40;
    lr.time_ms = 1700000001000;
    memset(rec + VS_LOGREC_HDR, 0x5a, 1024);
    vs_logrec_encode(&lr, rec, 1024);
    ASSERT_EQ(vs_logrec_decode(&lr2, rec, 1024), VS_OK);
    ASSERT(lr2.lsn == 1234 && lr2.pgno == 7 && lr2.commit_size == 40 &&
           lr2.time_ms == lr.time_ms);
    for (size_t bit = 0; bit < sizeof rec * 8; bit += 13) {
      rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      ASSERT_NE(vs_logrec_decode(&lr2, rec, 1024), VS_OK);
      rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
  }

  vs_block b = {VS_B_ZSTD, 7, 449, 64, 1000, 64 * 4096, 0x1234, 0x5678};
  vs_block b2;
  uint8_t bb[VS_BLOCK_HDR_SIZE];
  vs_block_encode(&b, bb);
  ASSERT_EQ(vs_peek_magic(bb), VS_BLOCK_MAGIC);
  ASSERT_EQ(vs_block_decode(&b2, bb, 4096), VS_OK);
  ASSERT(b2.flags == b.flags && b2.seq == b.seq &&
         b2.first_page == b.first_page && b2.pages == b.pages &&
         b2.stored_len == b.stored_len && b2.raw_len == b.raw_len &&
         b2.raw_crc == b.raw_crc && b2.stored_crc == b.stored_crc);
  for (size_t bit = 0; bit < VS_BLOCK_HDR_SIZE * 8; bit++) {
    bb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    ASSERT_NE(vs_block_decode(&b2, bb, 4096), VS_OK);
    bb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  ASSERT_EQ(vs_block_decode(&b2, bb, 1024), VS_BAD_FIELD); /* size mismatch */

  vs_trailer t = {100, 5, 320, 4000, 15, 12345, 0xabcdef, 1700000100};
  vs_trailer t2;
  uint8_t tb[VS_TRAILER_FIXED + 100 + 4];
  ASSERT_EQ(vs_trailer_size(100), sizeof tb);
  vs_trailer_encode(&t, tb);
  ASSERT_EQ(vs_trailer_decode_fixed(&t2, tb), VS_OK);
  ASSERT_EQ(vs_trailer_check(&t2, tb), VS_OK);
  ASSERT(t2.pad_len == t.pad_len && t2.blocks == t.blocks &&
         t2.pages == t.pages && t2.stored_bytes == t.stored_bytes &&
         t2.total_blocks == t.total_blocks && t2.total_pages == t.total_pages &&
         t2.chain_crc == t.chain_crc && t2.end_time == t.end_time);
  for (size_t bit = 0; bit < sizeof tb * 8; bit += 3) {
    tb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int st = vs_trailer_decode_fixed(&t2, tb);
    if (st == VS_OK && t2.pad_len == 100)
      st = vs_trailer_check(&t2, tb);
    else if (st == VS_OK)
      st = VS_BAD_FIELD; /* pad length changed */
    ASSERT_NE(st, VS_OK);
    tb[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  return 0;
}
