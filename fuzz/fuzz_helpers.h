/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_helpers.h - what the fuzz targets share (STYLE.md 2.9):
 *   - the data producer, which splits an input into parameters (taken from
 *     its end) and payload (taken from its front), as zstd's fuzzers do, so
 *     that a mutation of the payload does not reshuffle the parameters;
 *   - FZ_CHECK, which aborts (a crash to libFuzzer and to the regression
 *     driver) when a property the target states does not hold;
 *   - helpers for the targets that run a real set in this process: unique
 *     set names, the list of legal return codes, and leak checks on
 *     descriptors and shared mappings.
 *
 * Each target is one file holding only LLVMFuzzerTestOneInput (and, where
 * it needs one, a local helper or two); the regression driver and libFuzzer
 * call the same entry point.
 */
#ifndef OPENVDI_FUZZ_HELPERS_H
#define OPENVDI_FUZZ_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test failed: report and crash, so that
 * libFuzzer saves the input and the replay counts it as a failure. */
#define FZ_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) fz_fail(__FILE__, __LINE__, #cond);                           \
  } while (0)
_Noreturn void fz_fail(const char *file, int line, const char *what);

/* ---------------------------------------------------------- data producer */

typedef struct fz_producer {
  const uint8_t *data; /* what is left: payload from the front */
  size_t size;         /* parameters are taken from the back */
} fz_producer;

void fzp_init(fz_producer *p, const uint8_t *data, size_t size);
/* A number in [min, max] from up to 4 bytes at the end; min when empty. */
uint32_t fzp_range(fz_producer *p, uint32_t min, uint32_t max);
/* One byte from the end (0 when empty). */
uint8_t fzp_u8(fz_producer *p);
/* Up to n bytes from the front; *got says how many. */
const uint8_t *fzp_take(fz_producer *p, size_t n, size_t *got);
/* Everything that is left, as payload. */
const uint8_t *fzp_rest(fz_producer *p, size_t *got);
static inline size_t fzp_left(const fz_producer *p) {
  return p->size;
}

/* ------------------------------------------------- sets in one process */

/* A set name no other process or earlier input uses. */
void fz_set_name(char *out, size_t n);
/* 1 if rc is 0 or one of the VD_E_* codes vdi.h defines. */
int fz_legal_code(int rc);
/* Open descriptors of this process. */
int fz_fd_count(void);
/* Threads of this process; _settled waits up to 100 ms for the count to
 * come down to @p expect (threads just joined may still be listed). */
int fz_thread_count(void);
int fz_thread_count_settled(int expect);
/* Mappings of this process whose name contains @p tag (e.g. "memfd:vdi-"). */
int fz_map_count(const char *tag);
/* 1 if [p, p + len) lies inside one mapping named with @p tag. */
int fz_in_mapping(const void *p, size_t len, const char *tag);

/* 1 when $FZ_STRICT is set: known, reported deviations from vdi.h are
 * failures too (`make fuzz-crashes` sets it); else they are tolerated so
 * that the fuzzers look for everything else. */
int fz_strict(void);

/* Where fz_fail reports (the regression driver silences the targets'
 * own printing and keeps the real stderr here); 2 by default. */
extern int fz_report_fd;

#endif
