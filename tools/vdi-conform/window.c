// SPDX-License-Identifier: Apache-2.0
/*
 * window.c - the commands in flight on one device.  Commands are sent
 * from slots reused in send order and retired in the same order, so a
 * restore's data are checked in stream order and the slot the next send
 * needs is always the one just retired.  Each completion is checked as it
 * is retired: its code, its byte count, that it came exactly once, and on
 * restore the data against the stream the backup sent (datagen.c).  The
 * first problem is the evidence.
 */
#include "window.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void fail_locked(struct run *r, const char *fmt, va_list ap) {
  if (!r->p->failure[0])
    vsnprintf(r->p->failure, sizeof r->p->failure, fmt, ap);
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
}

/* Record the first problem and abort the set, so that a client blocked in
 * GetCommand and our own threads stop waiting. */
void win_fail(struct run *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&r->mu);
  fail_locked(r, fmt, ap);
  pthread_mutex_unlock(&r->mu);
  va_end(ap);
  vdi_srv_signal_abort(r->srv);
}

int win_served(struct run *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->served;
  pthread_mutex_unlock(&r->mu);
  return n;
}

int win_stopped(struct run *r) {
  pthread_mutex_lock(&r->mu);
  int s = r->stop;
  pthread_mutex_unlock(&r->mu);
  return s;
}

void win_abort(struct run *r) {
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
  s->rpos = cmd->outPosition;
  s->done = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

uint64_t win_last_pos(const struct dev *d) {
  const struct slot *s = &d->slots[(d->retire_seq - 1) % d->nslots];
  pthread_mutex_lock(&d->r->mu);
  uint64_t pos = s->rpos;
  pthread_mutex_unlock(&d->r->mu);
  return pos;
}

uint32_t win_inflight(const struct dev *d) {
  return (uint32_t)(d->next_seq - d->retire_seq);
}

/* Send one command from the next slot (the caller made sure it is free).
 * 0, or the SendCommand code. */
int win_send(struct dev *d, uint32_t code, uint32_t size, uint64_t off) {
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
      win_fail(r,
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
  return c == ERROR_HANDLE_EOF || c == ERROR_NO_DATA_DETECTED ||
         c == ERROR_FILEMARK_DETECTED;
}

/* Check a retired read; 0 ok, -1 failed. */
static int check_read(struct dev *d, struct slot *s, uint32_t c, uint32_t b) {
  struct run *r = d->r;
  uint64_t total = d->limit ? d->limit : r->p->backup_bytes[d->i];
  unsigned long long seq = (unsigned long long)s->seq;
  if (r->sc->tape && is_eof(c) && c != ERROR_FILEMARK_DETECTED &&
      d->read_off + b >= total) {
    /* A tape's files end at a filemark, the last one too. */
    win_fail(r,
             "device %d: VDC_Read #%llu at the filemark that ends a file "
             "(byte %llu, %s) completed with %u %s; a tape-like device must "
             "answer ERROR_FILEMARK_DETECTED (1101) there",
             d->i, seq, (unsigned long long)total, d->where, c, win32_name(c));
    return -1;
  }
  if (d->eof) {
    /* Reads queued behind the end: the library completes those still
     * queued with ERROR_IO_DEVICE; delivered ones must say EOF again. */
    if ((is_eof(c) || c == ERROR_IO_DEVICE) && b == 0) return 0;
    win_fail(
        r,
        "device %d: VDC_Read #%llu after the end of the data completed with "
        "%u %s and %u bytes; after ERROR_HANDLE_EOF every read must end the "
        "same way",
        d->i, seq, c, win32_name(c), b);
    return -1;
  }
  if (c != ERROR_SUCCESS && !is_eof(c)) {
    win_fail(
        r,
        "device %d: VDC_Read #%llu (%u bytes) completed with %u %s at byte "
        "%llu of %llu",
        d->i, seq, s->size, c, win32_name(c), (unsigned long long)d->read_off,
        (unsigned long long)total);
    return -1;
  }
  uint64_t at = r->sc->disk ? s->off : d->read_off;
  if (r->sc->disk && s->off != d->read_off && b > 0) {
    win_fail(
        r,
        "device %d: disk-like VDC_Read #%llu at position %llu, but the reads "
        "before it returned only %llu bytes without ERROR_HANDLE_EOF",
        d->i, seq, (unsigned long long)s->off, (unsigned long long)d->read_off);
    return -1;
  }
  if (at + b > total) {
    win_fail(
        r,
        "device %d: the restore returned more data than the backup stored: "
        "VDC_Read #%llu brought %u bytes at byte %llu, the backup had %llu",
        d->i, seq, b, (unsigned long long)at, (unsigned long long)total);
    return -1;
  }
  int64_t bad = stream_check(&d->st, at, s->buf, b);
  if (bad >= 0) {
    win_fail(r,
             "device %d: restored data differ from the backup at byte %llu "
             "(VDC_Read #%llu%s%s)",
             d->i, (unsigned long long)(at + (uint64_t)bad), seq,
             d->where[0] ? ", " : "", d->where);
    return -1;
  }
  d->read_off = at + b;
  if (is_eof(c)) {
    d->eof = 1;
    if (d->read_off != total) {
      win_fail(
          r,
          "device %d: the restore ended (%s) at byte %llu, but the backup "
          "sent %llu bytes: the last %llu bytes were not stored or not read "
          "back",
          d->i, win32_name(c), (unsigned long long)d->read_off,
          (unsigned long long)total, (unsigned long long)(total - d->read_off));
      return -1;
    }
  } else if (b == 0) {
    win_fail(
        r,
        "device %d: VDC_Read #%llu completed ERROR_SUCCESS with 0 bytes at "
        "byte %llu; at the end of the data a client must answer "
        "ERROR_HANDLE_EOF",
        d->i, seq, (unsigned long long)d->read_off);
    return -1;
  }
  return 0;
}

/* disk_full: a command of the backup failed, as one must once the client
 * cannot store more.  SQL Server aborts the backup (spec 3.5: Write).  1
 * when that is what happened (the set is aborted), 0 if not. */
static int media_full(struct dev *d, struct slot *s, uint32_t c) {
  struct run *r = d->r;
  struct phase *p = r->p;
  if (!r->sc->disk_full || p->restore || c == ERROR_SUCCESS) return 0;
  if (!p->full_code) {
    p->full_code = c;
    snprintf(p->full_what, sizeof p->full_what,
             "%s #%llu (%u bytes at byte %llu) completed with %u %s",
             command_name(s->code), (unsigned long long)s->seq, s->size,
             (unsigned long long)s->off, c, win32_name(c));
  }
  win_abort(r);
  return 1;
}

/* GetPosition, SetPosition, Discard: ERROR_NOT_SUPPORTED unless the
 * client advertised the feature, success if it did. */
static int check_position(struct dev *d, struct slot *s, uint32_t c) {
  const char *fname;
  uint32_t need = position_feature(s->code, &fname);
  int has = (d->r->p->client_features & need) != 0;
  if (!has && c != ERROR_NOT_SUPPORTED) {
    win_fail(d->r,
             "device %d: %s #%llu completed with %u %s, but the client did "
             "not advertise %s (features 0x%x): a client must answer a "
             "command it does not implement with ERROR_NOT_SUPPORTED (50)",
             d->i, command_name(s->code), (unsigned long long)s->seq, c,
             win32_name(c), fname, d->r->p->client_features);
    return -1;
  }
  if (has && c != ERROR_SUCCESS) {
    win_fail(d->r,
             "device %d: %s #%llu completed with %u %s, although the client "
             "advertised %s (features 0x%x)",
             d->i, command_name(s->code), (unsigned long long)s->seq, c,
             win32_name(c), fname, d->r->p->client_features);
    return -1;
  }
  return 0;
}

/* Wait for the oldest command and check it: 0 ok, 1 stop quietly (our own
 * abort), -1 a failure (recorded). */
int win_retire(struct dev *d) {
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
  if (done && !d->served) {
    d->served = 1;
    r->served++;
  }
  uint32_t c = s->rcode, b = s->rbytes;
  pthread_mutex_unlock(&r->mu);
  unsigned long long seq = (unsigned long long)s->seq;
  if (!done && limit == p->deadline_ms && mono_ms() >= limit) {
    /* The phase's own limit came first: that is what the client
     * exceeded, whatever this one command took. */
    win_fail(r,
             "device %d: the phase took longer than --timeout (%d s) at byte "
             "%llu (%s #%llu in flight)",
             d->i, p->o->timeout_s, (unsigned long long)d->read_off,
             command_name(s->code), seq);
    return -1;
  }
  if (!done) {
    win_fail(r,
             "device %d: %s #%llu (%u bytes at byte %llu) was not completed "
             "within %d ms",
             d->i, command_name(s->code), seq, s->size,
             (unsigned long long)s->off, p->o->command_timeout_ms);
    return -1;
  }
  d->retire_seq++;
  if (c == ERROR_OPERATION_ABORTED) {
    if (ours || win_stopped(r)) return 1;
    win_fail(r,
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
    if (media_full(d, s, c)) return 1;
    if (c != ERROR_SUCCESS) {
      win_fail(
          r,
          "device %d: VDC_Write #%llu (%u bytes at byte %llu) completed with "
          "%u %s",
          d->i, seq, s->size, (unsigned long long)s->off, c, win32_name(c));
      return -1;
    }
    if (b != s->size) {
      win_fail(r,
               "device %d: VDC_Write #%llu of %u bytes completed ERROR_SUCCESS "
               "with bytesTransferred %u",
               d->i, seq, s->size, b);
      return -1;
    }
    if (r->sc->prefix) {
      /* The data are the server's: the client's own bytes belong in its
       * prefix zone, before them. */
      int64_t bad = stream_check(&d->st, s->off, s->buf, s->size);
      if (bad >= 0) {
        win_fail(r,
                 "device %d: the client changed byte %lld of the data of "
                 "VDC_Write #%llu it was given to store; its own bytes belong "
                 "in its %u-byte prefix zone, before the data",
                 d->i, (long long)bad, seq, r->p->prefix_zone);
        return -1;
      }
    }
    return 0;
  case VDC_GetPosition:
  case VDC_SetPosition:
  case VDC_Discard:
    return check_position(d, s, c);
  case VDC_FileInfoBegin:
  case VDC_FileInfoEnd:
  case VDC_GetError:
    if (c != ERROR_NOT_SUPPORTED) {
      win_fail(r,
               "device %d: %s (code %u, no public semantics) completed with %u "
               "%s; a client must answer a command it does not implement with "
               "ERROR_NOT_SUPPORTED (50)",
               d->i, command_name(s->code), s->code, c, win32_name(c));
      return -1;
    }
    return 0;
  default:
    if (media_full(d, s, c)) return 1;
    if (c != ERROR_SUCCESS) {
      win_fail(r, "device %d: %s #%llu completed with %u %s", d->i,
               command_name(s->code), seq, c, win32_name(c));
      return -1;
    }
    return 0;
  }
}

/* Retire everything in flight: 0, or what win_retire() said. */
int win_drain(struct dev *d) {
  while (win_inflight(d) > 0) {
    int rc = win_retire(d);
    if (rc != 0) return rc;
  }
  return 0;
}

/* A command sent alone, after everything before it completed (SQL Server
 * sends Flush, ClearError and Complete that way). */
int win_barrier(struct dev *d, uint32_t code) {
  int rc = win_drain(d);
  if (rc != 0) return rc;
  if (win_send(d, code, 0, 0) != 0) return -1;
  return win_retire(d);
}
