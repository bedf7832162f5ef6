/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c.c - CRC-32C with the SSE4.2 instruction and a table fallback.
 * No Debian library offers CRC-32C as a plain call, hence this file.
 */
#include "crc32c.h"

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
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const void *buf, size_t len) {
  const uint8_t *p = buf;
  uint32_t c = ~crc;
#if defined(__x86_64__)
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
