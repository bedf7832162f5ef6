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
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
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

/* Seconds the hypervisor kept this machine's CPUs from running while they
 * had work ("steal", /proc/stat, summed over every CPU), or 0 where the
 * kernel does not count it.  A path that keeps two CPUs busy can lose
 * time this way where a one-CPU path does not, so the bench prints it
 * beside each run. */
static inline double bench_steal(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (f == NULL) return 0;
  unsigned long long v[8] = {0};
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  return n == 8 && hz > 0 ? (double)v[7] / (double)hz : 0;
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

/* The machine's floor under every path between two CPUs: one cache line
 * passed back and forth between two threads pinned to the first two CPUs
 * this process may use.  On a virtual machine it moves with where the host
 * runs the two virtual CPUs: about 0.1 us when they share a last-level
 * cache, several times that when they do not (the guest's topology cannot
 * tell), and a stream through shared memory slows with it. */
#define BENCH_CL_BATCH 256

struct bench_cl {
  _Alignas(64) _Atomic uint64_t word;
  _Alignas(64) _Atomic int stop; /* the probe ran out of time */
  uint64_t trips;
  int cpu;
};

static inline int bench_pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The far side: turns every odd value into the next even one. */
static inline void *bench_cl_peer(void *arg) {
  struct bench_cl *cl = arg;
  if (bench_pin(cl->cpu) != 0) bench_die("cannot run on CPU %d", cl->cpu);
  for (uint64_t i = 0; i < cl->trips; i++) {
    while (atomic_load_explicit(&cl->word, memory_order_acquire) != 2 * i + 1)
      if (atomic_load_explicit(&cl->stop, memory_order_relaxed)) return NULL;
    atomic_store_explicit(&cl->word, 2 * i + 2, memory_order_release);
  }
  return NULL;
}

/* @p warmup + @p batches batches of BENCH_CL_BATCH round trips; lat[i] is
 * batch i's mean round trip (ns).  The calling thread runs on the first
 * CPU meanwhile and gets its affinity back.  With @p max_ns > 0 the probe
 * gives up after that long (a CPU-bound process on one of the two CPUs
 * makes a round trip last a time slice).  @return the batches measured,
 * or -1 when the process may use fewer than two CPUs. */
static inline int bench_cacheline(uint64_t *lat, int batches, int warmup,
                                  uint64_t max_ns) {
  cpu_set_t had;
  if (sched_getaffinity(0, sizeof had, &had) != 0)
    bench_die("sched_getaffinity: %s", strerror(errno));
  int cpu[2], found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
    if (CPU_ISSET(c, &had)) cpu[found++] = c;
  if (found < 2) return -1;
  static struct bench_cl cl;
  atomic_store(&cl.word, 0);
  atomic_store(&cl.stop, 0);
  cl.trips = (uint64_t)(warmup + batches) * BENCH_CL_BATCH;
  cl.cpu = cpu[1];
  if (bench_pin(cpu[0]) != 0) bench_die("cannot run on CPU %d", cpu[0]);
  pthread_t th;
  if (pthread_create(&th, NULL, bench_cl_peer, &cl) != 0)
    bench_die("pthread_create failed");
  uint64_t v = 0, start = bench_now_ns(), end = max_ns ? start + max_ns : 0;
  int done = 0, late = 0;
  for (int b = 0; b < warmup + batches && !late; b++) {
    uint64_t t0 = bench_now_ns();
    for (int k = 0; k < BENCH_CL_BATCH && !late; k++, v += 2) {
      atomic_store_explicit(&cl.word, v + 1, memory_order_release);
      for (unsigned n = 1;
           atomic_load_explicit(&cl.word, memory_order_acquire) != v + 2; n++)
        if (end && n % 4096 == 0 && bench_now_ns() > end) {
          atomic_store(&cl.stop, 1);
          late = 1;
          break;
        }
    }
    if (!late && b >= warmup)
      lat[done++] = (bench_now_ns() - t0) / BENCH_CL_BATCH;
  }
  pthread_join(th, NULL);
  pthread_setaffinity_np(pthread_self(), sizeof had, &had);
  return done;
}

static inline int bench_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The median round trip of a short probe (at most 50 ms), in us; -1 with
 * fewer than two CPUs or when the probe ran out of time. */
static inline double bench_cacheline_us(void) {
  uint64_t lat[64];
  int n = bench_cacheline(lat, 64, 8, 50000000);
  if (n < 32) return -1;
  qsort(lat, (size_t)n, sizeof lat[0], bench_cmp_u64);
  return (double)lat[n / 2] / 1e3;
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
