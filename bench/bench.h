/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench.h - what every benchmark program shares: the producer's fill
 * pattern and the consumer's checksum (the same work on every path, so the
 * paths differ only in how the bytes travel), clocks, CPU time, and the
 * one-line "key=value" result format that bench/report.py reads.
 *
 * Header-only (static functions) so that bench/bench.mk can build each
 * bench/NAME.c into its own program with one rule.
 */
#ifndef OPENVDI_BENCH_H
#define OPENVDI_BENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The golden-ratio constant spreads sequence numbers over the word, so a
 * buffer that arrives twice or not at all changes the total sum. */
#define BENCH_GOLDEN 0x9E3779B97F4A7C15ull

/* Fill @p n bytes (a multiple of 8) with the pattern of transfer @p seq:
 * word i = seq * GOLDEN + i.  A cheap store stream, like an engine copying
 * pages into a backup buffer. */
static inline void bench_fill(void *buf, size_t n, uint64_t seq) {
  uint64_t *w = buf;
  uint64_t base = seq * BENCH_GOLDEN;
  for (size_t i = 0; i < n / 8; i++)
    w[i] = base + i;
}

/* The consumer reads every byte: a 64-bit wrapping sum of the words. */
static inline uint64_t bench_sum(const void *buf, size_t n) {
  const uint64_t *w = buf;
  uint64_t s = 0;
  for (size_t i = 0; i < n / 8; i++)
    s += w[i];
  return s;
}

/* What bench_sum of bench_fill(seq) must be, in closed form, so checking it
 * costs the producer nothing: sum(base + i) = n*base + n(n-1)/2. */
static inline uint64_t bench_expected(size_t n, uint64_t seq) {
  uint64_t words = n / 8;
  return words * (seq * BENCH_GOLDEN) + words * (words - 1) / 2;
}

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* User + system CPU seconds of RUSAGE_SELF (this whole process) or
 * RUSAGE_THREAD (the calling thread). */
static inline double bench_cpu(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}
static inline double bench_cpu_self(void) {
  return bench_cpu(RUSAGE_SELF);
}
static inline double bench_cpu_thread(void) {
  return bench_cpu(RUSAGE_THREAD);
}

static inline void bench_die(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static inline void bench_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* write()/read() the whole of @p n bytes, or die: the pipe and socket paths
 * and the result channels use these. */
static inline void bench_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t r = write(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) bench_die("write: %s", strerror(errno));
    c += r;
    n -= (size_t)r;
  }
}

/* Returns 0 at a clean end of file before any byte, else dies if short. */
static inline int bench_read_all(int fd, void *p, size_t n) {
  char *c = p;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, c + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) bench_die("read: %s", strerror(errno));
    if (r == 0) {
      if (got == 0) return 0;
      bench_die("read: short (%zu of %zu bytes)", got, n);
    }
    got += (size_t)r;
  }
  return 1;
}

/* Parse a size with an optional K/M/G suffix (powers of 1024). */
static inline uint64_t bench_parse_size(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s) bench_die("bad size '%s'", s);
  switch (*end) {
  case 'k':
  case 'K':
    v <<= 10;
    end++;
    break;
  case 'm':
  case 'M':
    v <<= 20;
    end++;
    break;
  case 'g':
  case 'G':
    v <<= 30;
    end++;
    break;
  default:
    break;
  }
  if (*end != '\0') bench_die("bad size '%s'", s);
  return v;
}

#endif /* OPENVDI_BENCH_H */
