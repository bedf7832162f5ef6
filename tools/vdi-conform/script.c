// SPDX-License-Identifier: Apache-2.0
/*
 * script.c - what SQL Server sends on each device, scenario by scenario:
 * the backup (writes of varying sizes, or positioned out of order for
 * disk-like devices; flushes; unsupported codes and ClearError;
 * PrepareToFreeze and Snapshot; VDC_Complete when granted) and the
 * restore (reads until the client says the data ended), with the fault
 * of the scenario fired by device 0 in the middle of its stream.
 */
#include "window.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* A client that completes every command at once but moves almost no data
 * (1-byte reads, say) must not keep the phase going past --timeout. */
static int past_deadline(struct dev *d) {
  struct phase *p = d->r->p;
  if (mono_ms() < p->deadline_ms) return 0;
  win_fail(d->r,
           "device %d: the phase took longer than --timeout (%d s) at byte "
           "%llu",
           d->i, p->o->timeout_s, (unsigned long long)d->read_off);
  return 1;
}

/* The fault of this phase, fired by device 0 at the middle of its stream.
 * 0 to go on, 1 to stop. */
static int fire_fault(struct dev *d) {
  struct run *r = d->r;
  /* Mid-stream for the client too: everything before this point was
   * completed and checked, and one write is in flight when the fault
   * hits (the client is busy with it, or about to be). */
  if (r->sc->fault != F_NONE && r->sc->fault != F_SLOW) {
    if (win_drain(d) != 0) return 1;
    if (!r->p->restore && r->bytes > 0) {
      uint32_t n = r->sc->block;
      if (win_send(d, VDC_Write, n, 0) != 0) return 1;
    }
  }
  switch (r->sc->fault) {
  case F_ABORT:
    win_abort(r);
    return 1;
  case F_KILL:
    /* The whole server process dies at once, as an engine killed by the
     * OOM killer would; its completion agent and memory go with it. */
    r->p->fault_fired = 1;
    r->p->fault_ms = mono_ms();
    kill(getpid(), SIGKILL);
    return 1;
  case F_STALL: {
    if (win_drain(d) != 0) return 1;
    /* Nothing in flight, nothing sent: a client waiting in GetCommand
     * must keep waiting (or give up); it must not call this a success. */
    int64_t until = mono_ms() + 2000;
    while (mono_ms() < until && !win_stopped(r))
      sleep_ms(20);
    win_abort(r);
    return 1;
  }
  default:
    return 0;
  }
}

/* Chunk order of a disk-like backup: within each segment between two
 * flushes the chunks go out of order, the segment's last chunk last, so
 * the end a Flush marks is always the highest position written. */
static uint64_t *disk_order(struct run *r, uint64_t nchunks, uint64_t *rng) {
  uint64_t *v = calloc(nchunks ? nchunks : 1, sizeof *v);
  if (!v) abort();
  for (uint64_t i = 0; i < nchunks; i++)
    v[i] = i;
  uint64_t nseg = (uint64_t)r->sc->nflush + 1;
  for (uint64_t sgi = 0; sgi < nseg; sgi++) {
    uint64_t a = nchunks * sgi / nseg, b = nchunks * (sgi + 1) / nseg;
    if (b - a < 3) continue;
    for (uint64_t i = b - 2; i > a; i--) {
      uint64_t j = a + rng_next(rng) % (i - a + 1);
      uint64_t t = v[i];
      v[i] = v[j];
      v[j] = t;
    }
  }
  return v;
}

static void backup_script(struct dev *d) {
  struct run *r = d->r;
  const struct scenario *sc = r->sc;
  uint64_t total = r->bytes, off = 0;
  uint64_t rng = r->p->seed ^ (uint64_t)(d->i + 1) * 0x51ed27ull;
  uint32_t blocks = sc->maxxfer / sc->block;
  int mid_done = 0, nflush_done = 0;
  uint64_t nchunks = (total + sc->maxxfer - 1) / sc->maxxfer;
  uint64_t *order = sc->disk ? disk_order(r, nchunks, &rng) : NULL;
  uint64_t k = 0;
  for (;;) {
    if (win_stopped(r) || past_deadline(d)) goto out;
    int more = sc->disk ? k < nchunks : off < total;
    uint64_t done_bytes = sc->disk ? nchunks ? total * k / nchunks : 0 : off;
    /* Flush points: after each of nflush equal parts of the stream. */
    if (nflush_done < sc->nflush &&
        (sc->disk ? k >= nchunks * (uint64_t)(nflush_done + 1) /
                             (uint64_t)(sc->nflush + 1)
                  : off >= total * (uint64_t)(nflush_done + 1) /
                               (uint64_t)(sc->nflush + 1))) {
      if (win_barrier(d, VDC_Flush) != 0) goto out;
      nflush_done++;
      continue;
    }
    if (sc->snapshot && !mid_done && done_bytes >= total / 2) {
      /* BACKUP ... WITH SNAPSHOT (spec 3.5): completing PrepareToFreeze
       * lets the engine freeze; the rest of the metadata follows. */
      mid_done = 1;
      if (win_barrier(d, VDC_PrepareToFreeze) != 0) goto out;
      continue;
    }
    if (d->i == 0 && !mid_done && done_bytes >= total / 2) {
      mid_done = 1;
      if (sc->unknown) {
        static const uint32_t codes[] = {VDC_FileInfoBegin, VDC_FileInfoEnd,
                                         VDC_GetError};
        for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
          /* Any code other than success puts the device in IO-ERROR;
           * ClearError is how a server gets it back (spec 2.4.4). */
          if (win_barrier(d, codes[c]) != 0) goto out;
          if (win_barrier(d, VDC_ClearError) != 0) goto out;
        }
      }
      if (!sc->fault_restore && fire_fault(d)) goto out;
    }
    if (!more) break;
    if (win_inflight(d) == d->nslots && win_retire(d) != 0) goto out;
    uint32_t size;
    if (sc->disk) {
      off = order[k++] * sc->maxxfer;
      size = total - off < sc->maxxfer ? (uint32_t)(total - off) : sc->maxxfer;
    } else {
      /* Sizes vary (whole blocks), as an engine's do near the end of
       * files; the seed fixes them. */
      size = (uint32_t)(1 + rng_next(&rng) % blocks) * sc->block;
      if (rng_next(&rng) % 2) size = sc->maxxfer;
      if (size > total - off) size = (uint32_t)(total - off);
    }
    int rc = win_send(d, VDC_Write, size, off);
    if (rc == VD_E_IO_ERROR) {
      if (win_drain(d) == 0)
        win_fail(r,
                 "device %d: the device is in IO-ERROR, but no command "
                 "completed with an error",
                 d->i);
      goto out;
    }
    if (rc != 0) goto out;
    if (!sc->disk) off += size;
  }
  if (win_drain(d) != 0) goto out;
  /* The snapshot itself; the client completes it once taken.  It ends a
   * snapshot backup: no VDC_Complete follows. */
  if (sc->snapshot && win_barrier(d, VDC_Snapshot) != 0) goto out;
  if (!sc->snapshot && r->p->granted_complete &&
      win_barrier(d, VDC_Complete) != 0)
    goto out;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
out:
  free(order);
}

static void restore_script(struct dev *d) {
  struct run *r = d->r;
  const struct scenario *sc = r->sc;
  uint64_t total = r->p->backup_bytes[d->i];
  int fault_done = 0, io_error = 0;
  while (!d->eof) {
    if (win_stopped(r) || past_deadline(d)) return;
    if (d->i == 0 && !fault_done && sc->fault_restore &&
        d->read_off >= total / 2) {
      fault_done = 1;
      if (fire_fault(d)) return;
    }
    /* One read past the end is needed to hear ERROR_HANDLE_EOF. */
    uint64_t ahead = d->read_off + (uint64_t)win_inflight(d) * sc->maxxfer;
    if (!io_error && win_inflight(d) < d->nslots &&
        ahead < total + sc->maxxfer) {
      int rc = win_send(d, VDC_Read, sc->maxxfer, ahead);
      /* The client already answered the end of the data: the reads in
       * flight tell the rest. */
      if (rc == VD_E_IO_ERROR)
        io_error = 1;
      else if (rc != 0)
        return;
      continue;
    }
    if (win_inflight(d) == 0) {
      win_fail(r,
               "device %d: the device is in IO-ERROR, but no read completed "
               "with an error",
               d->i);
      return;
    }
    if (win_retire(d) != 0) return;
  }
  if (win_drain(d) != 0) return;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
}

void *script_dev_main(void *arg) {
  struct dev *d = arg;
  if (d->r->p->restore)
    restore_script(d);
  else
    backup_script(d);
  return NULL;
}
