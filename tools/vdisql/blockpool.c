/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockpool.c - compressing a backup's blocks on worker threads
 * (blockpool.h).  zstd compresses a 256 KiB block at 40-150 MB/s on one
 * core, slower than the pages are read and far slower than the devices
 * take them, so a compressed backup on one thread was bound by one core;
 * with a worker per CPU it uses them all, as `zstd -T0` does.  Blocks stay
 * independent frames (restore and the stream format are unchanged) and
 * leave in the order they came.
 */
#include "blockpool.h"

#include "crc32c.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define BP_MAX_WORKERS 16

struct bpool {
  pthread_mutex_t mu;
  pthread_cond_t work_cv; /* a job was queued, or stop */
  pthread_cond_t done_cv; /* a job is done */
  bp_job *jobs;
  unsigned depth;
  uint64_t head; /* oldest submitted, not collected */
  uint64_t tail; /* next to fill */
  uint64_t next; /* next queued job a worker takes */
  int stop;
  int level;
  unsigned nthreads;
  pthread_t th[BP_MAX_WORKERS];
};

void bp_compress(bp_job *j, ZSTD_CCtx *cctx) {
  j->raw_crc = crc32c_update(0, j->raw, j->raw_len);
  j->z_len = 0;
  if (cctx == NULL) return;
  ZSTD_inBuffer in = {j->raw, j->raw_len, 0};
  ZSTD_outBuffer out = {j->z, j->z_cap, 0};
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
  ZSTD_CCtx_setPledgedSrcSize(cctx, j->raw_len);
  size_t r = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
  /* r == 0: the frame is complete; keep it only if it is smaller. */
  if (!ZSTD_isError(r) && r == 0 && out.pos < j->raw_len) {
    j->z_len = (uint32_t)out.pos;
    j->z_crc = crc32c_update(0, j->z, j->z_len);
  }
}

static void *worker(void *arg) {
  bpool *p = arg;
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  if (cctx) ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, p->level);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->next == p->tail)
      pthread_cond_wait(&p->work_cv, &p->mu);
    if (p->stop) break;
    bp_job *j = &p->jobs[p->next++ % p->depth];
    pthread_mutex_unlock(&p->mu);
    /* Without a context (no memory) the block is stored as it is: the
     * backup is still whole, only larger. */
    bp_compress(j, cctx);
    pthread_mutex_lock(&p->mu);
    j->done = 1;
    pthread_cond_broadcast(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  ZSTD_freeCCtx(cctx);
  return NULL;
}

unsigned bp_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? (unsigned)n : 1;
}

bpool *bp_new(unsigned workers, size_t raw_cap, int level) {
  if (workers > BP_MAX_WORKERS) workers = BP_MAX_WORKERS;
  bpool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->depth = 2 * workers; /* one compressing, one waiting to be written */
  p->level = level;
  p->jobs = calloc(p->depth, sizeof *p->jobs);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  if (!p->jobs) goto fail;
  size_t zcap = ZSTD_compressBound(raw_cap);
  for (unsigned i = 0; i < p->depth; i++) {
    p->jobs[i].raw = malloc(raw_cap);
    p->jobs[i].z = malloc(zcap);
    p->jobs[i].z_cap = zcap;
    if (!p->jobs[i].raw || !p->jobs[i].z) goto fail;
  }
  for (; p->nthreads < workers; p->nthreads++)
    if (pthread_create(&p->th[p->nthreads], NULL, worker, p) != 0) goto fail;
  return p;
fail:
  bp_free(p);
  return NULL;
}

bp_job *bp_slot(bpool *p) {
  if (p->tail - p->head == p->depth) return NULL;
  return &p->jobs[p->tail % p->depth];
}

void bp_submit(bpool *p, bp_job *j) {
  pthread_mutex_lock(&p->mu);
  j->done = 0;
  p->tail++;
  pthread_cond_signal(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
}

bp_job *bp_collect(bpool *p, int wait) {
  if (p->head == p->tail) return NULL;
  bp_job *j = &p->jobs[p->head % p->depth];
  pthread_mutex_lock(&p->mu);
  while (wait && !j->done)
    pthread_cond_wait(&p->done_cv, &p->mu);
  int done = j->done;
  pthread_mutex_unlock(&p->mu);
  if (!done) return NULL;
  p->head++;
  return j;
}

void bp_free(bpool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (unsigned i = 0; i < p->nthreads; i++)
    pthread_join(p->th[i], NULL);
  if (p->jobs)
    for (unsigned i = 0; i < p->depth; i++) {
      free(p->jobs[i].raw);
      free(p->jobs[i].z);
    }
  free(p->jobs);
  pthread_cond_destroy(&p->work_cv);
  pthread_cond_destroy(&p->done_cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
