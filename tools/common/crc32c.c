/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c.c - CRC-32C with the SSE4.2 instruction and a table fallback.
 * No Debian library offers CRC-32C as a plain call, hence this file.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define CRC32C_X86 1
#endif

static uint32_t table[256];
static int table_ready;

static void make_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    table[i] = c;
  }
  __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len) {
  /* Building the table twice from two threads is harmless: same values. */
  if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) make_table();
  const uint8_t *p = buf;
  uint32_t c = ~crc;
  while (len--)
    c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

#ifdef CRC32C_X86
/* The crc32 instruction takes 3 cycles but can start one every cycle, so a
 * single chain runs at a third of its speed.  Large buffers are cut into
 * blocks of three lanes of LANE bytes, each lane its own chain; the three
 * are joined by "shifting" a lane's CRC over LANE zero bytes, which is
 * linear in the CRC's bits and so four table lookups (shift[]: each byte
 * of the CRC, shifted, built once with the instruction itself). */
#define LANE 1024u

static uint32_t shift[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

__attribute__((target("sse4.2"))) static uint32_t raw_zeros(uint32_t c,
                                                            size_t len) {
  uint64_t c64 = c;
  for (size_t i = 0; i < len / 8; i++)
    c64 = _mm_crc32_u64(c64, 0);
  return (uint32_t)c64;
}

static void make_shift(void) {
  for (int j = 0; j < 4; j++)
    for (uint32_t b = 0; b < 256; b++)
      shift[j][b] = raw_zeros(b << (8 * j), LANE);
}

/* The raw CRC register @p c carried over LANE zero bytes. */
static inline uint32_t shift_lane(uint32_t c) {
  return shift[0][c & 0xFF] ^ shift[1][(c >> 8) & 0xFF] ^
         shift[2][(c >> 16) & 0xFF] ^ shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const void *buf, size_t len) {
  const uint8_t *p = buf;
  uint32_t c = ~crc;
#if defined(__x86_64__)
  if (len >= 3 * LANE) {
    /* Once: a compressed backup's workers checksum at the same time. */
    pthread_once(&shift_once, make_shift);
    while (len >= 3 * LANE) {
      uint64_t a = c, b = 0, d = 0;
      for (size_t i = 0; i < LANE; i += 8) {
        uint64_t va, vb, vd;
        memcpy(&va, p + i, 8);
        memcpy(&vb, p + LANE + i, 8);
        memcpy(&vd, p + 2 * LANE + i, 8);
        a = _mm_crc32_u64(a, va);
        b = _mm_crc32_u64(b, vb);
        d = _mm_crc32_u64(d, vd);
      }
      c = shift_lane(shift_lane((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
      p += 3 * LANE;
      len -= 3 * LANE;
    }
  }
  uint64_t c64 = c;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8); /* unaligned-safe; compiles to one load */
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    len -= 8;
  }
  c = (uint32_t)c64;
#endif
  while (len--)
    c = _mm_crc32_u8(c, *p++);
  return ~c;
}
#endif

/* Polynomials modulo the (reflected) CRC-32C polynomial: bit 31 is x^0,
 * bit 0 is x^31, as the CRC register holds them.  Appending n zero bytes
 * to a message multiplies its raw CRC register by x^(8n); by linearity
 * CRC(A||B) = CRC(A) * x^(8|B|) + CRC(B) (with the pre- and post-
 * inversions cancelling), so a CRC can be carried over B's length
 * without B. */
#define POLY_REFLECTED 0x82F63B78u
#define X0             0x80000000u /* the polynomial 1 */

static uint32_t gf2_mulmod(uint32_t a, uint32_t b) {
  uint32_t prod = 0;
  for (uint32_t bit = X0; bit; bit >>= 1) {
    if (a & bit) prod ^= b;
    /* b *= x */
    b = (b & 1) ? (b >> 1) ^ POLY_REFLECTED : b >> 1;
  }
  return prod;
}

/* x^(8n) mod P, by squaring: x^(2^k) for k = 3, 4, ... as n's bits. */
static uint32_t x_pow_8n(uint64_t n) {
  uint32_t result = X0, sq = X0 >> 8; /* x^8 */
  while (n) {
    if (n & 1) result = gf2_mulmod(result, sq);
    sq = gf2_mulmod(sq, sq);
    n >>= 1;
  }
  return result;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return gf2_mulmod(crc_a, x_pow_8n(len_b)) ^ crc_b;
}

int crc32c_hw_available(void) {
#ifdef CRC32C_X86
  static int have = -1;
  int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
  if (h < 0) {
    __builtin_cpu_init();
    h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    __atomic_store_n(&have, h, __ATOMIC_RELAXED);
  }
  return h;
#else
  return 0;
#endif
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len) {
#ifdef CRC32C_X86
  if (crc32c_hw_available()) return crc_hw(crc, buf, len);
#endif
  return crc32c_update_sw(crc, buf, len);
}
