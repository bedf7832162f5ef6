/* SPDX-License-Identifier: Apache-2.0 */
/*
 * walfmt.h - the parts of SQLite's WAL file and wal-index formats that
 * vdisql reads itself (https://sqlite.org/fileformat2.html#walformat and
 * https://sqlite.org/walformat.html): big-endian fields of the WAL file,
 * its running checksum, and the wal-index header in shared memory.
 */
#ifndef VDISQL_WALFMT_H
#define VDISQL_WALFMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WAL_HDR_SIZE   32u
#define WAL_FRAME_HDR  24u
#define WAL_MAGIC_MASK 0xFFFFFFFEu
#define WAL_MAGIC      0x377f0682u

static inline uint32_t wal_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* The WAL checksum: over pairs of 32-bit words, big-endian words when
 * @p big (the WAL magic's low bit), else native (little-endian here). */
static inline void wal_cksum(int big, const uint8_t *d, size_t n, uint32_t *s) {
  uint32_t s0 = s[0], s1 = s[1];
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint32_t x0, x1;
    if (big) {
      x0 = wal_be32(d + i);
      x1 = wal_be32(d + i + 4);
    } else {
      memcpy(&x0, d + i, 4);
      memcpy(&x1, d + i + 4, 4);
    }
    s0 += x0 + s1;
    s1 += x1 + s0;
  }
  s[0] = s0;
  s[1] = s1;
}

/* The wal-index header (two copies of 48 bytes at the start of the shared
 * memory; a reader takes them when both agree and the checksum holds). */
typedef struct wal_index_hdr {
  uint32_t mx_frame;    /* last committed frame */
  uint32_t n_page;      /* database size in pages */
  uint32_t frame_ck[2]; /* running checksum at mx_frame */
  uint8_t salt[8];      /* the WAL generation, as the WAL header's bytes */
  uint16_t page_size;   /* (65536 is stored as 1) */
} wal_index_hdr;

/** Read the header without locks, as SQLite's readers do.  @return 0, or
 * -1 if it is not initialised or kept changing while read. */
static inline int wal_index_read(const volatile void *shm, wal_index_hdr *h) {
  for (int tries = 0; tries < 100; tries++) {
    uint8_t a[48], b[48];
    /* Copy 0 first, then copy 1, each word an acquire load: SQLite
     * writes copy 1, a barrier, then copy 0, so equal copies are whole. */
    const uint32_t *w = (const uint32_t *)shm;
    for (int i = 0; i < 12; i++) {
      uint32_t v = __atomic_load_n(&w[i], __ATOMIC_ACQUIRE);
      memcpy(a + 4 * i, &v, 4);
    }
    for (int i = 0; i < 12; i++) {
      uint32_t v = __atomic_load_n(&w[12 + i], __ATOMIC_ACQUIRE);
      memcpy(b + 4 * i, &v, 4);
    }
    if (memcmp(a, b, 48) != 0) continue;
    if (a[12] == 0) return -1; /* isInit */
    uint32_t ck[2] = {0, 0}, want[2];
    wal_cksum(0, a, 40, ck);
    memcpy(want, a + 40, 8);
    if (ck[0] != want[0] || ck[1] != want[1]) continue;
    memcpy(&h->mx_frame, a + 16, 4);
    memcpy(&h->n_page, a + 20, 4);
    memcpy(h->frame_ck, a + 24, 8);
    memcpy(h->salt, a + 32, 8);
    memcpy(&h->page_size, a + 14, 2);
    return 0;
  }
  return -1;
}

#endif
