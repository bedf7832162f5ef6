/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockpool.h - the blocks of a compressed backup, checksummed and
 * compressed on worker threads and handed back in the order they were
 * submitted, so that the statement's thread only reads pages and writes
 * blocks.  A ring of two jobs per worker bounds the memory: that many raw
 * blocks and as many compressed ones.
 */
#ifndef VDISQL_BLOCKPOOL_H
#define VDISQL_BLOCKPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

typedef struct bp_job {
  /* the caller's: the raw block and what it is */
  uint8_t *raw;
  uint32_t raw_len;
  uint64_t first;
  uint32_t n;
  int log;
  /* the worker's */
  uint8_t *z;
  size_t z_cap;
  uint32_t z_len; /* 0: compression did not make it smaller */
  uint32_t raw_crc, z_crc;
  int done; /* the pool's: compressed, under its lock */
} bp_job;

/** CRC-32C of job->raw and, when @p cctx is not NULL, its zstd frame in
 * job->z if that is smaller (job->z_len, job->z_crc).  What each worker
 * does to a job; without a pool the statement's thread calls it. */
void bp_compress(bp_job *job, ZSTD_CCtx *cctx);

typedef struct bpool bpool;

/** The CPUs this process may run on (sched_getaffinity). */
unsigned bp_cpus(void);
/** A pool of @p workers threads (at most 16) and two jobs of @p raw_cap
 * bytes per worker, compressing at zstd @p level; NULL if memory or
 * threads ran out. */
bpool *bp_new(unsigned workers, size_t raw_cap, int level);
/** The job to fill next, or NULL while the ring is full: bp_collect the
 * oldest first (and finish with it: the next bp_slot may hand it out). */
bp_job *bp_slot(bpool *p);
/** Hand a filled job (raw_len, first, n, log set) to the workers. */
void bp_submit(bpool *p, bp_job *job);
/** The oldest submitted job once done (waiting for it when @p wait), or
 * NULL when none is submitted (or, without @p wait, it is not done). */
bp_job *bp_collect(bpool *p, int wait);
/** Stop the workers (after their current job) and free everything. */
void bp_free(bpool *p);

#endif
