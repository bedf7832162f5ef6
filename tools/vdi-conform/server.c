// SPDX-License-Identifier: Apache-2.0
/*
 * server.c - one phase of a scenario played as SQL Server: attach to the
 * client's set, configure it, open the devices, and send each device its
 * commands from its own thread while the completion agent runs, as the
 * engine does.  Every completion is checked as it is retired, in the
 * order the commands were sent: its code, its byte count, that it came
 * exactly once, and on restore the data itself against the stream the
 * backup phase sent (datagen.c).  The first problem found is the evidence;
 * the set is then aborted so that neither side waits any longer.
 *
 * Divisions: names and helpers; one device's command window; the backup
 * and restore scripts; the phase (open, configure, run, close).
 */
#include "conform.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ names */

const char *win32_name(uint32_t code) {
  switch (code) {
  case ERROR_SUCCESS:
    return "ERROR_SUCCESS";
  case ERROR_INVALID_HANDLE:
    return "ERROR_INVALID_HANDLE";
  case ERROR_BAD_ENVIRONMENT:
    return "ERROR_BAD_ENVIRONMENT";
  case ERROR_HANDLE_EOF:
    return "ERROR_HANDLE_EOF";
  case ERROR_HANDLE_DISK_FULL:
    return "ERROR_HANDLE_DISK_FULL";
  case ERROR_NOT_SUPPORTED:
    return "ERROR_NOT_SUPPORTED";
  case ERROR_DISK_FULL:
    return "ERROR_DISK_FULL";
  case ERROR_OPERATION_ABORTED:
    return "ERROR_OPERATION_ABORTED";
  case ERROR_END_OF_MEDIA:
    return "ERROR_END_OF_MEDIA";
  case ERROR_NO_DATA_DETECTED:
    return "ERROR_NO_DATA_DETECTED";
  case ERROR_IO_DEVICE:
    return "ERROR_IO_DEVICE";
  case ERROR_EOM_OVERFLOW:
    return "ERROR_EOM_OVERFLOW";
  default:
    return "?";
  }
}

const char *command_name(uint32_t code) {
  static const char *const n[] = {
      "?",
      "VDC_Read",
      "VDC_Write",
      "VDC_ClearError",
      "VDC_Rewind",
      "VDC_WriteMark",
      "VDC_SkipMarks",
      "VDC_SkipBlocks",
      "VDC_Load",
      "VDC_GetPosition",
      "VDC_SetPosition",
      "VDC_Discard",
      "VDC_Flush",
      "VDC_Snapshot",
      "VDC_MountSnapshot",
      "VDC_PrepareToFreeze",
      "VDC_FileInfoBegin",
      "VDC_FileInfoEnd",
      "VDC_GetError",
      "VDC_Complete",
  };
  return code < sizeof n / sizeof n[0] ? n[code] : "?";
}

int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------ state */

struct run;

/* One command in flight.  Slots are reused in send order (seq % nslots),
 * so retiring in send order frees exactly the slot the next send needs. */
struct slot {
  VDS_Command cmd;
  uint8_t *buf;
  struct dev *d;
  uint64_t seq, off;
  uint32_t code, size;
  /* Written by the completion agent, read by the device thread; both
   * under run.mu. */
  int done, ncompl;
  uint32_t rcode, rbytes;
};

struct dev {
  struct run *r;
  int i;
  vdi_srvdev_t *sd;
  struct slot *slots;
  uint32_t nslots;
  uint64_t next_seq, retire_seq;
  struct stream st;
  uint64_t read_off; /* restore: bytes checked so far */
  int eof;
  int closed;
  pthread_t th;
};

struct run {
  struct phase *p;
  const struct scenario *sc;
  vdi_srvset_t *srv;
  uint64_t bytes; /* per device, after --quick */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;          /* a failure or a fault: every device stops */
  int aborted_by_us; /* our SignalAbort: ERROR_OPERATION_ABORTED expected */
  struct dev devs[VDI_MAX_DEVICES];
};

static void fail_locked(struct run *r, const char *fmt, va_list ap) {
  if (!r->p->failure[0])
    vsnprintf(r->p->failure, sizeof r->p->failure, fmt, ap);
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
}

/* Record the first problem and abort the set, so that a client blocked in
 * GetCommand and our own threads stop waiting. */
static void fail(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct run *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&r->mu);
  fail_locked(r, fmt, ap);
  pthread_mutex_unlock(&r->mu);
  va_end(ap);
  vdi_srv_signal_abort(r->srv);
}

static int stopped(struct run *r) {
  pthread_mutex_lock(&r->mu);
  int s = r->stop;
  pthread_mutex_unlock(&r->mu);
  return s;
}

static void our_abort(struct run *r) {
  pthread_mutex_lock(&r->mu);
  r->aborted_by_us = 1;
  r->stop = 1;
  r->p->fault_fired = 1;
  r->p->fault_ms = mono_ms();
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  vdi_srv_signal_abort(r->srv);
}

static void on_complete(VDS_Command *cmd) {
  struct slot *s = (struct slot *)(void *)cmd->completionContext;
  struct run *r = s->d->r;
  pthread_mutex_lock(&r->mu);
  if (++s->ncompl > 1) {
    if (!r->p->failure[0])
      snprintf(r->p->failure, sizeof r->p->failure,
               "device %d: %s #%llu was completed twice", s->d->i,
               command_name(s->code), (unsigned long long)s->seq);
    r->stop = 1;
  }
  s->rcode = cmd->completionCode;
  s->rbytes = cmd->bytesTransferred;
  s->done = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------------ window */

static uint32_t inflight(const struct dev *d) {
  return (uint32_t)(d->next_seq - d->retire_seq);
}

/* Send one command from the next slot (the caller made sure it is free).
 * 0, or the SendCommand code. */
static int send_cmd(struct dev *d, uint32_t code, uint32_t size, uint64_t off) {
  struct run *r = d->r;
  struct slot *s = &d->slots[d->next_seq % d->nslots];
  int data = code == VDC_Read || code == VDC_Write;
  memset(&s->cmd, 0, sizeof s->cmd);
  s->cmd.commandCode = code;
  s->cmd.size = size;
  s->cmd.inPosition = off;
  s->cmd.buffer = data ? s->buf : NULL;
  s->cmd.completionContext = (uint8_t *)(void *)s;
  VDS_SET_COMPLETION(&s->cmd, on_complete);
  s->d = d;
  s->seq = d->next_seq++;
  s->off = off;
  s->code = code;
  s->size = size;
  pthread_mutex_lock(&r->mu);
  s->done = 0;
  s->ncompl = 0;
  pthread_mutex_unlock(&r->mu);
  if (code == VDC_Write) stream_fill(&d->st, off, s->buf, size);
  int rc = vdi_srvdev_send_command(d->sd, &s->cmd);
  /* IO-ERROR: an earlier command completed with an error (or the end of
   * the data) that its retirement will judge; the caller drains. */
  if (rc == VD_E_IO_ERROR) return rc;
  if (rc != 0) {
    pthread_mutex_lock(&r->mu);
    int ours = r->aborted_by_us || r->stop;
    pthread_mutex_unlock(&r->mu);
    if (!ours)
      fail(r,
           "device %d: SendCommand(%s #%llu) refused with %s: the set was "
           "aborted from the client's side (the client aborted, died or "
           "broke the protocol)",
           d->i, command_name(code), (unsigned long long)s->seq,
           vdi_error_name(rc));
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_mutex_unlock(&r->mu);
  }
  return rc;
}

static int is_eof(uint32_t c) {
  return c == ERROR_HANDLE_EOF || c == ERROR_NO_DATA_DETECTED;
}

/* Check a retired read; 0 ok, -1 failed. */
static int check_read(struct dev *d, struct slot *s, uint32_t c, uint32_t b) {
  struct run *r = d->r;
  uint64_t total = r->p->backup_bytes[d->i];
  unsigned long long seq = (unsigned long long)s->seq;
  if (d->eof) {
    /* Reads queued behind the end: the library completes those still
     * queued with ERROR_IO_DEVICE; delivered ones must say EOF again. */
    if ((is_eof(c) || c == ERROR_IO_DEVICE) && b == 0) return 0;
    fail(r,
         "device %d: VDC_Read #%llu after the end of the data completed with "
         "%u %s and %u bytes; after ERROR_HANDLE_EOF every read must end the "
         "same way",
         d->i, seq, c, win32_name(c), b);
    return -1;
  }
  if (c != ERROR_SUCCESS && !is_eof(c)) {
    fail(r,
         "device %d: VDC_Read #%llu (%u bytes) completed with %u %s at byte "
         "%llu of %llu",
         d->i, seq, s->size, c, win32_name(c), (unsigned long long)d->read_off,
         (unsigned long long)total);
    return -1;
  }
  uint64_t at = r->sc->disk ? s->off : d->read_off;
  if (r->sc->disk && s->off != d->read_off && b > 0) {
    fail(r,
         "device %d: disk-like VDC_Read #%llu at position %llu, but the reads "
         "before it returned only %llu bytes without ERROR_HANDLE_EOF",
         d->i, seq, (unsigned long long)s->off,
         (unsigned long long)d->read_off);
    return -1;
  }
  if (at + b > total) {
    fail(r,
         "device %d: the restore returned more data than the backup stored: "
         "VDC_Read #%llu brought %u bytes at byte %llu, the backup had %llu",
         d->i, seq, b, (unsigned long long)at, (unsigned long long)total);
    return -1;
  }
  int64_t bad = stream_check(&d->st, at, s->buf, b);
  if (bad >= 0) {
    fail(r,
         "device %d: restored data differ from the backup at byte %llu "
         "(VDC_Read #%llu)",
         d->i, (unsigned long long)(at + (uint64_t)bad), seq);
    return -1;
  }
  d->read_off = at + b;
  if (is_eof(c)) {
    d->eof = 1;
    if (d->read_off != total) {
      fail(r,
           "device %d: the restore ended (%s) at byte %llu, but the backup "
           "sent %llu bytes: the last %llu bytes were not stored or not read "
           "back",
           d->i, win32_name(c), (unsigned long long)d->read_off,
           (unsigned long long)total,
           (unsigned long long)(total - d->read_off));
      return -1;
    }
  } else if (b == 0) {
    fail(r,
         "device %d: VDC_Read #%llu completed ERROR_SUCCESS with 0 bytes at "
         "byte %llu; at the end of the data a client must answer "
         "ERROR_HANDLE_EOF",
         d->i, seq, (unsigned long long)d->read_off);
    return -1;
  }
  return 0;
}

/* Wait for the oldest command and check it: 0 ok, 1 stop quietly (our own
 * abort), -1 a failure (recorded). */
static int retire(struct dev *d) {
  struct run *r = d->r;
  struct phase *p = r->p;
  struct slot *s = &d->slots[d->retire_seq % d->nslots];
  int64_t limit = mono_ms() + p->o->command_timeout_ms;
  if (limit > p->deadline_ms) limit = p->deadline_ms;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  pthread_mutex_lock(&r->mu);
  while (!s->done) {
    int64_t left = limit - mono_ms();
    if (left <= 0) break;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  }
  int done = s->done, ours = r->aborted_by_us;
  uint32_t c = s->rcode, b = s->rbytes;
  pthread_mutex_unlock(&r->mu);
  unsigned long long seq = (unsigned long long)s->seq;
  if (!done) {
    fail(r,
         "device %d: %s #%llu (%u bytes at byte %llu) was not completed "
         "within %d ms",
         d->i, command_name(s->code), seq, s->size, (unsigned long long)s->off,
         p->o->command_timeout_ms);
    return -1;
  }
  d->retire_seq++;
  if (c == ERROR_OPERATION_ABORTED) {
    if (ours || stopped(r)) return 1;
    fail(r,
         "device %d: %s #%llu ended with ERROR_OPERATION_ABORTED: the set "
         "was aborted from the client's side (the client aborted, died or "
         "broke the protocol)",
         d->i, command_name(s->code), seq);
    return -1;
  }
  switch (s->code) {
  case VDC_Read:
    return check_read(d, s, c, b);
  case VDC_Write:
    if (c != ERROR_SUCCESS) {
      fail(r,
           "device %d: VDC_Write #%llu (%u bytes at byte %llu) completed with "
           "%u %s",
           d->i, seq, s->size, (unsigned long long)s->off, c, win32_name(c));
      return -1;
    }
    if (b != s->size) {
      fail(r,
           "device %d: VDC_Write #%llu of %u bytes completed ERROR_SUCCESS "
           "with bytesTransferred %u",
           d->i, seq, s->size, b);
      return -1;
    }
    return 0;
  case VDC_FileInfoBegin:
  case VDC_FileInfoEnd:
  case VDC_GetError:
    if (c != ERROR_NOT_SUPPORTED) {
      fail(r,
           "device %d: %s (code %u, no public semantics) completed with %u "
           "%s; a client must answer a command it does not implement with "
           "ERROR_NOT_SUPPORTED (50)",
           d->i, command_name(s->code), s->code, c, win32_name(c));
      return -1;
    }
    return 0;
  default:
    if (c != ERROR_SUCCESS) {
      fail(r, "device %d: %s #%llu completed with %u %s", d->i,
           command_name(s->code), seq, c, win32_name(c));
      return -1;
    }
    return 0;
  }
}

/* Retire everything in flight: 0, or what retire() said. */
static int drain(struct dev *d) {
  while (inflight(d) > 0) {
    int rc = retire(d);
    if (rc != 0) return rc;
  }
  return 0;
}

/* A command sent alone, after everything before it completed (SQL Server
 * sends Flush, ClearError and Complete that way). */
static int barrier_cmd(struct dev *d, uint32_t code) {
  int rc = drain(d);
  if (rc != 0) return rc;
  if (send_cmd(d, code, 0, 0) != 0) return -1;
  return retire(d);
}

/* ------------------------------------------------------------ scripts */

/* The fault of this phase, fired by device 0 at the middle of its stream.
 * 0 to go on, 1 to stop. */
static int fire_fault(struct dev *d) {
  struct run *r = d->r;
  /* Mid-stream for the client too: everything before this point was
   * completed and checked, and one write is in flight when the fault
   * hits (the client is busy with it, or about to be). */
  if (r->sc->fault != F_NONE && r->sc->fault != F_SLOW) {
    if (drain(d) != 0) return 1;
    if (!r->p->restore && r->bytes > 0) {
      uint32_t n = r->sc->block;
      if (send_cmd(d, VDC_Write, n, 0) != 0) return 1;
    }
  }
  switch (r->sc->fault) {
  case F_ABORT:
    our_abort(r);
    return 1;
  case F_KILL:
    /* The whole server process dies at once, as an engine killed by the
     * OOM killer would; its completion agent and memory go with it. */
    r->p->fault_fired = 1;
    r->p->fault_ms = mono_ms();
    kill(getpid(), SIGKILL);
    return 1;
  case F_STALL: {
    if (drain(d) != 0) return 1;
    /* Nothing in flight, nothing sent: a client waiting in GetCommand
     * must keep waiting (or give up); it must not call this a success. */
    int64_t until = mono_ms() + 2000;
    while (mono_ms() < until && !stopped(r))
      sleep_ms(20);
    our_abort(r);
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
    if (stopped(r)) goto out;
    int more = sc->disk ? k < nchunks : off < total;
    uint64_t done_bytes = sc->disk ? nchunks ? total * k / nchunks : 0 : off;
    /* Flush points: after each of nflush equal parts of the stream. */
    if (nflush_done < sc->nflush &&
        (sc->disk ? k >= nchunks * (uint64_t)(nflush_done + 1) /
                             (uint64_t)(sc->nflush + 1)
                  : off >= total * (uint64_t)(nflush_done + 1) /
                               (uint64_t)(sc->nflush + 1))) {
      if (barrier_cmd(d, VDC_Flush) != 0) goto out;
      nflush_done++;
      continue;
    }
    if (sc->snapshot && !mid_done && done_bytes >= total / 2) {
      /* BACKUP ... WITH SNAPSHOT (spec 3.5): completing PrepareToFreeze
       * lets the engine freeze; the rest of the metadata follows. */
      mid_done = 1;
      if (barrier_cmd(d, VDC_PrepareToFreeze) != 0) goto out;
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
          if (barrier_cmd(d, codes[c]) != 0) goto out;
          if (barrier_cmd(d, VDC_ClearError) != 0) goto out;
        }
      }
      if (!sc->fault_restore && fire_fault(d)) goto out;
    }
    if (!more) break;
    if (inflight(d) == d->nslots && retire(d) != 0) goto out;
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
    int rc = send_cmd(d, VDC_Write, size, off);
    if (rc == VD_E_IO_ERROR) {
      if (drain(d) == 0)
        fail(r,
             "device %d: the device is in IO-ERROR, but no command "
             "completed with an error",
             d->i);
      goto out;
    }
    if (rc != 0) goto out;
    if (!sc->disk) off += size;
  }
  if (drain(d) != 0) goto out;
  /* The snapshot itself; the client completes it once taken.  It ends a
   * snapshot backup: no VDC_Complete follows. */
  if (sc->snapshot && barrier_cmd(d, VDC_Snapshot) != 0) goto out;
  if (!sc->snapshot && r->p->granted_complete &&
      barrier_cmd(d, VDC_Complete) != 0)
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
    if (stopped(r)) return;
    if (d->i == 0 && !fault_done && sc->fault_restore &&
        d->read_off >= total / 2) {
      fault_done = 1;
      if (fire_fault(d)) return;
    }
    /* One read past the end is needed to hear ERROR_HANDLE_EOF. */
    uint64_t ahead = d->read_off + (uint64_t)inflight(d) * sc->maxxfer;
    if (!io_error && inflight(d) < d->nslots && ahead < total + sc->maxxfer) {
      int rc = send_cmd(d, VDC_Read, sc->maxxfer, ahead);
      /* The client already answered the end of the data: the reads in
       * flight tell the rest. */
      if (rc == VD_E_IO_ERROR)
        io_error = 1;
      else if (rc != 0)
        return;
      continue;
    }
    if (inflight(d) == 0) {
      fail(r,
           "device %d: the device is in IO-ERROR, but no read completed "
           "with an error",
           d->i);
      return;
    }
    if (retire(d) != 0) return;
  }
  if (drain(d) != 0) return;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
}

static void *dev_main(void *arg) {
  struct dev *d = arg;
  if (d->r->p->restore)
    restore_script(d);
  else
    backup_script(d);
  return NULL;
}

struct agent {
  vdi_srvset_t *srv;
  int rc;
};

static void *agent_main(void *arg) {
  struct agent *a = arg;
  a->rc = vdi_srv_execute_completion_agent(a->srv);
  return NULL;
}

/* ------------------------------------------------------------ the phase */

static void phase_fail(struct phase *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void phase_fail(struct phase *p, const char *fmt, ...) {
  if (p->failure[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->failure, sizeof p->failure, fmt, ap);
  va_end(ap);
}

/* Attach to the client's set, waiting for it to exist. */
static int attach(struct phase *p, vdi_srvset_t *srv) {
  char desc[160];
  int64_t start = mono_ms();
  for (;;) {
    int rc = vdi_srv_open(srv, NULL, p->set_name);
    if (rc == 0) return 0;
    if (client_poll(p->cl)) {
      client_describe(p->cl, desc, sizeof desc);
      phase_fail(p, "the client %s before set '%s' could be opened", desc,
                 p->set_name);
      return -1;
    }
    if (mono_ms() >= p->deadline_ms) {
      phase_fail(p,
                 "set '%s' did not appear within %lld ms (last: %s); does the "
                 "client create the set named by {set}?",
                 p->set_name, (long long)(mono_ms() - start),
                 vdi_error_name(rc));
      return -1;
    }
    sleep_ms(10);
  }
}

static void run_devices(struct phase *p, vdi_srvset_t *srv, VDConfig *req) {
  const struct scenario *sc = p->sc;
  struct run *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->p = p;
  r->sc = sc;
  r->srv = srv;
  r->bytes = scenario_bytes(sc, p->o->quick);
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &ca);
  pthread_condattr_destroy(&ca);

  uint32_t feat = p->restore ? VDF_ReadMedia : VDF_WriteMedia;
  if (p->granted_complete) feat |= VDF_CompleteEnabled;
  int rc = vdi_srv_begin_configuration(srv, feat, sc->block, 0, sc->maxxfer, 0);
  if (rc == 0)
    rc = vdi_srv_request_buffers(srv, sc->maxxfer, 0,
                                 sc->nbuf * (uint32_t)p->ndev);
  if (rc == 0) rc = vdi_srv_end_configuration(srv);
  if (rc != 0) {
    phase_fail(p,
               "configuring the set failed with %s (client asked features "
               "0x%x, alignment %u, prefix zone %u)",
               vdi_error_name(rc), req->features, req->alignment,
               req->prefixZoneSize);
    vdi_srv_signal_abort(srv);
    goto out;
  }
  int nopen = 0;
  for (int i = 0; i < p->ndev; i++) {
    struct dev *d = &r->devs[i];
    d->r = r;
    d->i = i;
    stream_init(&d->st, p->o, sc->name, i, p->ndev);
    d->nslots = sc->nbuf;
    d->slots = calloc(sc->nbuf, sizeof *d->slots);
    if (!d->slots) abort();
    rc = vdi_srv_open_device(srv, p->dev_names[i], &d->sd);
    if (rc != 0) {
      phase_fail(p, "opening device '%s' failed with %s", p->dev_names[i],
                 vdi_error_name(rc));
      vdi_srv_signal_abort(srv);
      goto free_devs;
    }
    nopen++;
    for (uint32_t k = 0; k < sc->nbuf; k++) {
      rc = vdi_srv_allocate_buffer(srv, &d->slots[k].buf, sc->maxxfer, 0);
      if (rc != 0) {
        phase_fail(p, "AllocateBuffer failed with %s", vdi_error_name(rc));
        vdi_srv_signal_abort(srv);
        goto free_devs;
      }
    }
  }
  struct agent ag = {.srv = srv};
  pthread_t agent_th;
  if (pthread_create(&agent_th, NULL, agent_main, &ag) != 0) abort();
  for (int i = 0; i < p->ndev; i++)
    if (pthread_create(&r->devs[i].th, NULL, dev_main, &r->devs[i]) != 0)
      abort();
  for (int i = 0; i < p->ndev; i++)
    pthread_join(r->devs[i].th, NULL);
  int all_closed = 1;
  for (int i = 0; i < p->ndev; i++)
    all_closed &= r->devs[i].closed;
  if (!all_closed) vdi_srv_signal_abort(srv);
  pthread_join(agent_th, NULL);
  if (ag.rc == VD_E_PROTOCOL)
    phase_fail(p, "the client broke the protocol (VD_E_PROTOCOL: a completion "
                  "for no outstanding command, or more bytes than asked)");
  if (all_closed && ag.rc == 0) p->completed_ok = 1;
free_devs:
  (void)nopen;
  for (int i = 0; i < p->ndev; i++)
    free(r->devs[i].slots);
out:
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

void server_phase(struct phase *p) {
  const struct scenario *sc = p->sc;
  char why[512];
  if (p->engine_mode) {
    char op[32];
    if (engine_wait_request(p->dir, p->cl, p->deadline_ms, op, sizeof op,
                            p->dev_names, &p->ndev, why, sizeof why) != 0) {
      phase_fail(p, "%s", why);
      return;
    }
    const char *want = p->restore ? "RESTORE" : "BACKUP";
    if (strcmp(op, want) != 0) {
      phase_fail(p, "the client ran a %s statement in the %s phase", op,
                 p->restore ? "restore" : "backup");
      engine_verdict(p->dir, 1);
      return;
    }
    snprintf(p->set_name, sizeof p->set_name, "%s", p->dev_names[0]);
  } else {
    p->ndev = sc->ndev;
    for (int i = 0; i < p->ndev; i++) {
      if (i == 0)
        snprintf(p->dev_names[i], sizeof p->dev_names[i], "%s", p->set_name);
      else
        snprintf(p->dev_names[i], sizeof p->dev_names[i], "%.93s%u",
                 p->set_name, (unsigned)i % 64u);
    }
  }
  if (p->ndev != sc->ndev) {
    phase_fail(p,
               "the client named %d devices; this scenario uses %d "
               "({devices} on the command line)",
               p->ndev, sc->ndev);
    if (p->engine_mode) engine_verdict(p->dir, 1);
    return;
  }
  if (sc->fault == F_SLOW && !p->restore) {
    int64_t until = mono_ms() + p->o->slow_ms;
    while (mono_ms() < until && mono_ms() < p->deadline_ms)
      sleep_ms(20);
  }
  vdi_srvset_t *srv = NULL;
  if (vdi_srv_new(&srv) != 0) abort();
  if (attach(p, srv) != 0) goto out;
  p->attached = 1;
  VDConfig req;
  int rc = vdi_srv_get_configuration(srv, &req);
  if (rc != 0) {
    phase_fail(p, "GetConfiguration (server) failed with %s",
               vdi_error_name(rc));
    vdi_srv_signal_abort(srv);
    goto close;
  }
  p->client_features = req.features;
  if ((int)req.deviceCount != p->ndev) {
    phase_fail(p,
               "the client created the set with %u devices; the scenario "
               "uses %d ({devices})",
               req.deviceCount, p->ndev);
    vdi_srv_signal_abort(srv);
    goto close;
  }
  if (sc->disk && !(req.features & VDF_RandomAccess)) {
    p->not_applicable = 1;
    snprintf(p->note, sizeof p->note,
             "the client asked for features 0x%x, not disk-like "
             "(VDF_RandomAccess)",
             req.features);
    vdi_srv_signal_abort(srv);
    goto close;
  }
  if (sc->snapshot && !(req.features & VDF_SnapshotPrepare)) {
    p->not_applicable = 1;
    snprintf(p->note, sizeof p->note,
             "the client asked for features 0x%x, without "
             "VDF_SnapshotPrepare",
             req.features);
    vdi_srv_signal_abort(srv);
    goto close;
  }
  p->granted_complete = !p->restore && sc->complete == C_GRANT &&
                        (req.features & VDF_RequestComplete) != 0;
  run_devices(p, srv, &req);
close:
  rc = vdi_srv_close(srv);
  (void)rc;
out:
  vdi_srv_free(srv);
}
