/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the
 * checksum of the openvdi backup stream (docs/STREAM-FORMAT.md).
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
 * run time), else a table.  Both give the same values.
 */
#ifndef OPENVDI_CRC32C_H
#define OPENVDI_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** @brief Continue a CRC-32C over @p len more bytes.
 * Start with crc = 0; the result of one call is the "crc" of the next, so
 * crc32c_update(crc32c_update(0, a, n), b, m) == CRC-32C of a||b.
 * crc32c_update(0, "123456789", 9) == 0xE3069283. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/** @brief The CRC-32C of A||B from @p crc_a (of A), @p crc_b (of B) and
 * B's length, without reading B again: crc32c_combine(crc32c_update(0, a,
 * n), crc32c_update(0, b, m), m) == crc32c_update(crc32c_update(0, a, n),
 * b, m).  About 40 carry-less products of 32 bits, whatever @p len_b. */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/** @brief The same, always with the portable table (for tests). */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);

/** @brief 1 if crc32c_update uses the hardware instruction. */
int crc32c_hw_available(void);

#endif
