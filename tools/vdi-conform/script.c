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

/* Secondaries live while their devices are open: before closing one, give
 * the sampling (server.c) the time to see them (a client without any is
 * judged not applicable after this wait). */
static void wait_secondaries(struct run *r) {
  int64_t until = mono_ms() + 2000;
  while (r->sc->secondary && r->p->client_procs < 2 && mono_ms() < until &&
         !win_stopped(r))
    sleep_ms(5);
}

/* Where the first file of a tape ends: the middle, in whole blocks. */
static uint64_t tape_half(const struct run *r) {
  uint64_t h = r->bytes / 2;
  return h - h % r->sc->block;
}

/* In a phase with a fault, the devices other than 0 do not close before
 * it hits: the fault meets every device open (and every secondary at
 * work).  1 when the phase stopped, so the device is not closed. */
static int hold_for_fault(struct dev *d) {
  struct run *r = d->r;
  const struct scenario *sc = r->sc;
  if (d->i == 0 || sc->fault == F_NONE || sc->fault == F_SLOW ||
      sc->fault_restore != r->p->restore)
    return 0;
  while (!win_stopped(r) && mono_ms() < r->p->deadline_ms)
    sleep_ms(5);
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
    /* With secondaries the fault is about them: it waits until every
     * device has been serviced (each secondary attached). */
    int64_t until = mono_ms() + 3000;
    while (r->sc->secondary && win_served(r) < r->p->ndev &&
           mono_ms() < until && !win_stopped(r))
      sleep_ms(5);
    wait_secondaries(r);
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
  case F_TIMEOUT: {
    if (win_drain(d) != 0) return 1;
    /* Nothing in flight, nothing sent, the set left open: only the
     * client's own limit can end this.  It asked the server to answer
     * within serverTimeOut; twice that and a margin is what it may take
     * to notice the silence and give up. */
    struct phase *p = r->p;
    p->fault_fired = 1;
    p->fault_ms = mono_ms();
    int64_t until = p->fault_ms + 2 * (int64_t)p->server_timeout_ms + 5000;
    if (until > p->deadline_ms) until = p->deadline_ms;
    while (mono_ms() < until && !win_stopped(r) && !client_poll(p->cl))
      sleep_ms(10);
    if (!win_stopped(r) && !client_poll(p->cl))
      p->overstayed_ms = mono_ms() - p->fault_ms;
    int64_t at = p->fault_ms;
    win_abort(r);
    p->fault_ms = at; /* the silence began then, not at this abort */
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
  int mid_done = 0, nflush_done = 0, mark_done = 0;
  uint64_t nchunks = (total + sc->maxxfer - 1) / sc->maxxfer;
  uint64_t *order = sc->disk ? disk_order(r, nchunks, &rng) : NULL;
  uint64_t k = 0;
  if (sc->position && d->i == 0 && position_backup_begin(d) != 0) goto out;
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
      if (sc->position && position_backup_mid(d, off) != 0) goto out;
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
    if (sc->tape && !mark_done && off >= tape_half(r)) {
      /* Two files on the tape, each ended by a filemark (SQL Server
       * writes one after each MTF data set). */
      mark_done = 1;
      if (win_barrier(d, VDC_WriteMark) != 0) goto out;
      continue;
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
      /* The first file ends exactly where the restore expects its mark. */
      if (sc->tape && !mark_done && off + size > tape_half(r))
        size = (uint32_t)(tape_half(r) - off);
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
  if (sc->tape && win_barrier(d, VDC_WriteMark) != 0) goto out;
  /* The snapshot itself; the client completes it once taken.  It ends a
   * snapshot backup: no VDC_Complete follows. */
  if (sc->snapshot && win_barrier(d, VDC_Snapshot) != 0) goto out;
  if (!sc->snapshot && r->p->granted_complete &&
      win_barrier(d, VDC_Complete) != 0)
    goto out;
  wait_secondaries(r);
  if (hold_for_fault(d)) goto out;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
out:
  free(order);
}

static void restore_script(struct dev *d) {
  struct run *r = d->r;
  const struct scenario *sc = r->sc;
  uint64_t total = r->p->backup_bytes[d->i];
  int fault_done = 0, io_error = 0;
  /* RESTORE ... WITH SNAPSHOT reads the metadata it knows the size of,
   * then mounts: no read past the end (that would leave the device in
   * IO-ERROR before VDC_MountSnapshot). */
  int exact = sc->snapshot;
  while (!d->eof && !(exact && d->read_off >= total)) {
    if (win_stopped(r) || past_deadline(d)) return;
    if (d->i == 0 && !fault_done && sc->fault_restore &&
        d->read_off >= total / 2) {
      fault_done = 1;
      if (fire_fault(d)) return;
    }
    /* One read past the end is needed to hear ERROR_HANDLE_EOF. */
    uint64_t ahead = d->read_off + (uint64_t)win_inflight(d) * sc->maxxfer;
    if (!io_error && win_inflight(d) < d->nslots &&
        ahead < total + (exact ? 0 : sc->maxxfer)) {
      uint32_t size = sc->maxxfer;
      if (exact && total - ahead < size) size = (uint32_t)(total - ahead);
      int rc = win_send(d, VDC_Read, size, ahead);
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
  /* The snapshot's files made available again, byte-identical. */
  if (exact && win_barrier(d, VDC_MountSnapshot) != 0) return;
  wait_secondaries(r);
  if (hold_for_fault(d)) return;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
}

/* A positioning command (Load, Rewind, SkipMarks, SkipBlocks) alone,
 * with its count in size. */
static int tape_command(struct dev *d, uint32_t code, uint32_t count) {
  int rc = win_drain(d);
  if (rc != 0) return rc;
  if (win_send(d, code, count, 0) != 0) return -1;
  return win_retire(d);
}

/* Read one file of the tape from byte `from` (where the positioning put
 * the client) to its filemark at `to`, one read at a time, exactly: then
 * one more read, which must meet the filemark (or the end of the data);
 * then ClearError, since ending there leaves the device in IO-ERROR. */
int script_read_span(struct dev *d, uint64_t from, uint64_t to) {
  struct run *r = d->r;
  d->read_off = from;
  d->limit = to;
  d->eof = 0;
  while (!d->eof) {
    if (win_stopped(r) || past_deadline(d)) return -1;
    uint32_t size = r->sc->maxxfer;
    if (to > d->read_off && to - d->read_off < size)
      size = (uint32_t)(to - d->read_off);
    int rc = win_send(d, VDC_Read, size, d->read_off);
    if (rc == VD_E_IO_ERROR) {
      if (win_drain(d) == 0)
        win_fail(r, "device %d: the device is in IO-ERROR (%s)", d->i,
                 d->where);
      return -1;
    }
    if (rc != 0 || win_retire(d) != 0) return -1;
  }
  return win_barrier(d, VDC_ClearError);
}

/* RESTORE from a tape-like device: load the medium, rewind, skip the
 * first file by its filemark and read the second; rewind, skip blocks
 * into the first file and read the rest of it. */
static void tape_restore(struct dev *d) {
  struct run *r = d->r;
  uint64_t total = r->p->backup_bytes[d->i], half = tape_half(r);
  uint32_t skip = (uint32_t)(half / r->sc->block / 2);
  snprintf(d->where, sizeof d->where, "after VDC_Load");
  if (tape_command(d, VDC_Load, 0) != 0) return;
  if (tape_command(d, VDC_Rewind, 0) != 0) return;
  if (tape_command(d, VDC_SkipMarks, 1) != 0) return;
  snprintf(d->where, sizeof d->where,
           "second file, after VDC_Rewind and VDC_SkipMarks 1");
  if (script_read_span(d, half, total) != 0) return;
  if (tape_command(d, VDC_Rewind, 0) != 0) return;
  if (tape_command(d, VDC_SkipBlocks, skip) != 0) return;
  snprintf(d->where, sizeof d->where,
           "first file, after VDC_Rewind and VDC_SkipBlocks %u (of %u bytes)",
           skip, r->sc->block);
  if (script_read_span(d, (uint64_t)skip * r->sc->block, half) != 0) return;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
}

/* RESTORE with fewer devices than the backup had media families: SQL
 * Server reads the media header on the first device, finds that families
 * are missing (Msg 3132: "The media set has 2 media families but only 1
 * are provided.  All members must be provided."), and the statement
 * fails: SignalAbort, then Close (spec 1.3). */
static void refused_restore(struct dev *d) {
  struct run *r = d->r;
  if (d->i == 0) {
    if (win_send(d, VDC_Read, r->sc->block, 0) != 0 || win_retire(d) != 0)
      return;
    r->p->refused = 1;
    win_abort(r);
    return;
  }
  while (!win_stopped(r) && mono_ms() < r->p->deadline_ms)
    sleep_ms(5);
}

void *script_dev_main(void *arg) {
  struct dev *d = arg;
  const struct scenario *sc = d->r->sc;
  struct phase *p = d->r->p;
  if (p->restore && sc->restore_ndev && p->ndev < sc->ndev)
    refused_restore(d);
  else if (p->restore && sc->position && p->kept.has_mark &&
           position_has(p, VDC_SetPosition))
    position_restore(d);
  else if (p->restore && sc->tape)
    tape_restore(d);
  else if (p->restore)
    restore_script(d);
  else
    backup_script(d);
  return NULL;
}
