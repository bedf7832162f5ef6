/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdidev.c - the VIRTUAL_DEVICE media driver: vdisql as the SERVER of a
 * virtual device set (include/vdi.h).
 *
 * Each device has a ring of buffers ("slots") from the shared buffer area.
 * BACKUP fills the slot at the ring's head and sends it as VDC_Write, then
 * moves on; a slot is reused once its command has completed, so every
 * device has several writes in flight and all devices run at once (the
 * stream writer feeds them round-robin).  RESTORE keeps a read in flight in
 * every slot and consumes completed slots in the order they were sent; a
 * read may return any byte count, and ERROR_HANDLE_EOF / ERROR_NO_DATA_
 * DETECTED (with a partial count) ends the stripe.  On a disk-like device
 * (VDF_RandomAccess) each read carries its byte offset; after a short read
 * the reads already sent for later offsets are discarded and sent again.
 *
 * Completion routines run on the completion-agent thread; they only mark
 * the slot done and signal a condition variable.  A client error, abort or
 * death completes the commands with an error code (ERROR_OPERATION_ABORTED
 * for abort/death), which wakes the waiting statement at once.
 */
#include "media.h"

#include "vdi.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SL_FREE, SL_INFLIGHT, SL_DONE };

struct vmedia;
struct vdev;

struct slot {
  VDS_Command cmd; /* must stay put while in flight */
  struct vdev *dev;
  uint8_t *buf;
  int state;
  int checked;    /* restore: result examined */
  int eof;        /* restore: this read ended the stripe */
  int64_t pos;    /* byte offset of the command */
  uint32_t size;  /* bytes asked */
  uint32_t avail; /* restore: bytes delivered */
  uint32_t rd;    /* restore: bytes consumed */
};

struct vdev {
  struct vmedia *vm;
  vdi_srvdev_t *h;
  const char *name;
  struct slot *sl;
  unsigned ns, head;
  struct slot ctl; /* Flush / Complete */
  /* backup */
  struct slot *cur;
  uint32_t fill;
  int64_t woff;
  /* restore */
  int started, at_end;
  int64_t send_off, expect;
};

typedef struct vmedia {
  media_t m;
  vdi_srvset_t *srv;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t agent;
  int agent_started, agent_done, agent_rc;
  int writing, random, complete, failed;
  uint32_t bs, mts;
  unsigned ndev;
  const volatile int *owner; /* the session's cancel flag (registry) */
  struct vmedia *reg_next;
  struct vdev d[64];
} vmedia_t;

/* Every open set of the process, so that an instance can abort those of a
 * session whose client hung up, or all of them when it stops.  A set is
 * in the registry from vdi_srv_new to just before vdi_srv_close. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static vmedia_t *reg_head;
static __thread const volatile int *thread_owner;

static void reg_add(vmedia_t *vm) {
  pthread_mutex_lock(&reg_mu);
  vm->owner = thread_owner;
  vm->reg_next = reg_head;
  reg_head = vm;
  /* A session cancelled before its set existed: abort it at once. */
  if (vm->owner && *vm->owner) vdi_srv_signal_abort(vm->srv);
  pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(vmedia_t *vm) {
  pthread_mutex_lock(&reg_mu);
  for (vmedia_t **p = &reg_head; *p; p = &(*p)->reg_next)
    if (*p == vm) {
      *p = vm->reg_next;
      break;
    }
  pthread_mutex_unlock(&reg_mu);
}

void vdidev_set_owner(const volatile int *cancel) {
  thread_owner = cancel;
}

int vdidev_abort_owned(const volatile int *cancel) {
  int n = 0;
  pthread_mutex_lock(&reg_mu);
  for (vmedia_t *vm = reg_head; vm; vm = vm->reg_next)
    if (!cancel || vm->owner == cancel) {
      vdi_srv_signal_abort(vm->srv);
      n++;
    }
  pthread_mutex_unlock(&reg_mu);
  return n;
}

static const char *win32_text(int code) {
  switch (code) {
  case ERROR_SUCCESS:
    return "The operation completed successfully.";
  case ERROR_INVALID_HANDLE:
    return "The handle is invalid.";
  case ERROR_HANDLE_EOF:
    return "Reached the end of the file.";
  case ERROR_NOT_SUPPORTED:
    return "The request is not supported.";
  case ERROR_DISK_FULL:
    return "There is not enough space on the disk.";
  case ERROR_HANDLE_DISK_FULL:
    return "The disk is full.";
  case ERROR_OPERATION_ABORTED:
    return "The I/O operation has been aborted because of either a thread "
           "exit or an application request.";
  case ERROR_END_OF_MEDIA:
    return "The physical end of the tape has been "
           "reached.";
  case ERROR_NO_DATA_DETECTED:
    return "No more data is on the tape.";
  case ERROR_IO_DEVICE:
    return "The request could not be performed because of an I/O device "
           "error.";
  case ERROR_EOM_OVERFLOW:
    return "Physical end of tape encountered.";
  case ERROR_NO_SYSTEM_RESOURCES:
    return "Insufficient system resources exist to complete the requested "
           "service.";
  }
  return "The device reported an error.";
}

static void on_complete(VDS_Command *c) {
  struct slot *s = (struct slot *)(void *)c->completionContext;
  vmedia_t *vm = s->dev->vm;
  pthread_mutex_lock(&vm->mu);
  s->state = SL_DONE;
  pthread_cond_broadcast(&vm->cv);
  pthread_mutex_unlock(&vm->mu);
}

static void *agent_main(void *p) {
  vmedia_t *vm = p;
  int rc = vdi_srv_execute_completion_agent(vm->srv);
  pthread_mutex_lock(&vm->mu);
  vm->agent_rc = rc;
  vm->agent_done = 1;
  pthread_cond_broadcast(&vm->cv);
  pthread_mutex_unlock(&vm->mu);
  return NULL;
}

static void io_error(vmedia_t *vm, struct vdev *d, int code) {
  vm->failed = 1;
  vmsg_set(vm->m.err, vm->writing ? 3202 : 3203, "%s on \"%s\" failed: %d(%s)",
           vm->writing ? "Write" : "Read", d->name, code, win32_text(code));
}

static void call_error(vmedia_t *vm, struct vdev *d, const char *what, int rc) {
  vm->failed = 1;
  vmsg_set(vm->m.err, vm->writing ? 3202 : 3203,
           "%s on \"%s\" failed: %s returned 0x%08x (%s: %s)",
           vm->writing ? "Write" : "Read", d->name, what, (unsigned)rc,
           vdi_error_name(rc), vdi_strerror(rc));
}

/* Queue a command; returns the library's code.  On failure the
 * completion routine has already run in this thread. */
static int send_raw(vmedia_t *vm, struct vdev *d, struct slot *s, int code,
                    uint32_t size, int64_t pos) {
  memset(&s->cmd, 0, sizeof s->cmd);
  s->cmd.commandCode = code;
  s->cmd.size = (int32_t)size;
  s->cmd.inPosition = pos;
  s->cmd.buffer = s->buf;
  VDS_SET_COMPLETION(&s->cmd, on_complete);
  s->cmd.completionContext = (uint8_t *)s;
  pthread_mutex_lock(&vm->mu);
  s->state = SL_INFLIGHT;
  s->checked = s->eof = 0;
  s->pos = pos;
  s->size = size;
  s->avail = s->rd = 0;
  pthread_mutex_unlock(&vm->mu);
  return vdi_srvdev_send_command(d->h, &s->cmd);
}

/* A slot's state, read under the lock (the agent thread writes it). */
static int slot_state(vmedia_t *vm, struct slot *s) {
  pthread_mutex_lock(&vm->mu);
  int st = s->state;
  pthread_mutex_unlock(&vm->mu);
  return st;
}

/* Wait until @p s is not in flight or the agent has ended; its state. */
static int wait_quiet(vmedia_t *vm, struct slot *s) {
  pthread_mutex_lock(&vm->mu);
  while (s->state == SL_INFLIGHT && !vm->agent_done)
    pthread_cond_wait(&vm->cv, &vm->mu);
  int st = s->state;
  pthread_mutex_unlock(&vm->mu);
  return st;
}

/* Wait until @p s is not in flight.  -1 if the agent ended without it. */
static int wait_slot(vmedia_t *vm, struct slot *s) {
  if (wait_quiet(vm, s) == SL_INFLIGHT) {
    io_error(vm, s->dev, ERROR_OPERATION_ABORTED);
    return -1;
  }
  return 0;
}

/* A command refused because the device was already in IO-ERROR (1117) or
 * aborted (995) is a consequence; report the completion that caused it. */
static int primary_code(vmedia_t *vm, struct vdev *d, int code) {
  if (code != ERROR_IO_DEVICE && code != ERROR_OPERATION_ABORTED) return code;
  for (unsigned k = 0; k < d->ns; k++) {
    struct slot *o = &d->sl[k];
    if (wait_quiet(vm, o) != SL_DONE) continue;
    int c = o->cmd.completionCode;
    if (c != ERROR_SUCCESS && c != ERROR_IO_DEVICE &&
        c != ERROR_OPERATION_ABORTED)
      return c;
  }
  return code;
}

/* A send was refused: the cause is usually an earlier command's error
 * completion (the device is then in IO-ERROR), so report that one. */
static int send_failed(vmedia_t *vm, struct vdev *d, struct slot *failed,
                       int rc) {
  if (rc == VD_E_IO_ERROR) {
    for (unsigned k = 0; k < d->ns; k++) {
      struct slot *o = &d->sl[k];
      if (o == failed || wait_quiet(vm, o) != SL_DONE) continue;
      if (o->cmd.completionCode != ERROR_SUCCESS) {
        io_error(vm, d, primary_code(vm, d, o->cmd.completionCode));
        break;
      }
    }
  }
  call_error(vm, d, "SendCommand", rc);
  return -1;
}

static int send(vmedia_t *vm, struct vdev *d, struct slot *s, int code,
                uint32_t size, int64_t pos) {
  int rc = send_raw(vm, d, s, code, size, pos);
  return rc ? send_failed(vm, d, s, rc) : 0;
}

/* Backup: a finished command must have succeeded in full. */
static int check_done(vmedia_t *vm, struct slot *s) {
  if (s->state != SL_DONE) return 0;
  s->state = SL_FREE;
  if (s->cmd.completionCode != ERROR_SUCCESS) {
    io_error(vm, s->dev, primary_code(vm, s->dev, s->cmd.completionCode));
    return -1;
  }
  if ((s->cmd.commandCode == VDC_Write) &&
      (uint32_t)s->cmd.bytesTransferred != s->size) {
    vm->failed = 1;
    vmsg_set(vm->m.err, 3202,
             "Write on \"%s\" failed: the device stored %d of %u bytes.",
             s->dev->name, s->cmd.bytesTransferred, s->size);
    return -1;
  }
  return 0;
}

/* The slot being filled on device d (the ring's head once its last write
 * is back), or NULL on error. */
static struct slot *fill_slot(vmedia_t *vm, struct vdev *d) {
  if (!d->cur) {
    struct slot *s = &d->sl[d->head];
    if (wait_slot(vm, s) || check_done(vm, s)) return NULL;
    d->cur = s;
    d->fill = 0;
  }
  return d->cur;
}

/* n more bytes are in the slot being filled; a full slot is sent. */
static int filled(vmedia_t *vm, struct vdev *d, size_t n) {
  d->fill += (uint32_t)n;
  if (d->fill < vm->mts) return 0;
  if (send(vm, d, d->cur, VDC_Write, d->fill, d->woff)) return -1;
  d->woff += d->fill;
  d->cur = NULL;
  d->head = (d->head + 1) % d->ns;
  return 0;
}

static int v_write(media_t *m, unsigned i, const void *buf, size_t len) {
  vmedia_t *vm = (vmedia_t *)m;
  struct vdev *d = &vm->d[i];
  const uint8_t *p = buf;
  if (vm->failed) return -1;
  while (len > 0) {
    if (!fill_slot(vm, d)) return -1;
    size_t n = vm->mts - d->fill;
    if (n > len) n = len;
    memcpy(d->cur->buf + d->fill, p, n);
    p += n;
    len -= n;
    if (filled(vm, d, n)) return -1;
  }
  return 0;
}

/* A backup's block made where the client will read it: the engine reads
 * the pages straight into the shared buffer, no copy of its own. */
static uint8_t *v_reserve(media_t *m, unsigned i, size_t len) {
  vmedia_t *vm = (vmedia_t *)m;
  struct vdev *d = &vm->d[i];
  if (vm->failed || !fill_slot(vm, d) || vm->mts - d->fill < len) return NULL;
  return d->cur->buf + d->fill;
}

static int v_commit(media_t *m, unsigned i, size_t len) {
  vmedia_t *vm = (vmedia_t *)m;
  return vm->failed ? -1 : filled(vm, &vm->d[i], len);
}

/* 1 if a read of this device other than @p s came back with an error or
 * end-of-data code: the stream ends there, and the device may be in the
 * IO-ERROR state until cleared. */
static int error_seen(vmedia_t *vm, struct vdev *d, struct slot *s) {
  int seen = 0;
  pthread_mutex_lock(&vm->mu);
  for (unsigned k = 0; k < d->ns; k++)
    if (&d->sl[k] != s && d->sl[k].state == SL_DONE &&
        d->sl[k].cmd.completionCode != ERROR_SUCCESS)
      seen = 1;
  pthread_mutex_unlock(&vm->mu);
  return seen;
}

/* Restore: ask for the next chunk in slot @p s (at the ring's head, just
 * consumed).  Once any later read has reported the end (or an error), no
 * new read is sent: the data up to there is already on its way. */
static int refill(vmedia_t *vm, struct vdev *d, struct slot *s) {
  if (error_seen(vm, d, s)) {
    s->state = SL_FREE;
    return 0;
  }
  int rc = send_raw(vm, d, s, VDC_Read, vm->mts, d->send_off);
  if (rc == VD_E_IO_ERROR) { /* an end-of-data completion just arrived */
    s->state = SL_FREE;
    return 0;
  }
  if (rc) return send_failed(vm, d, s, rc);
  d->send_off += vm->mts;
  return 0;
}

/* Disk-like device, short read at the head: the reads already sent for
 * later offsets asked for the wrong bytes.  Let them come back, clear the
 * device's error state if one of them ran past the end, and send them
 * again, in ring order, at the right offsets. */
static int resync(vmedia_t *vm, struct vdev *d, struct slot *head) {
  int clear = 0;
  for (unsigned k = 0; k < d->ns; k++) {
    struct slot *o = &d->sl[k];
    if (o == head || slot_state(vm, o) == SL_FREE) continue;
    if (wait_slot(vm, o)) return -1;
    if (o->cmd.completionCode != ERROR_SUCCESS) clear = 1;
  }
  if (clear) {
    if (send(vm, d, &d->ctl, VDC_ClearError, 0, 0) || wait_slot(vm, &d->ctl) ||
        check_done(vm, &d->ctl))
      return -1;
  }
  int stop = 0;
  for (unsigned j = 1; j < d->ns; j++) {
    struct slot *o = &d->sl[(d->head + j) % d->ns];
    if (stop) { /* an earlier one of these already met the end */
      o->state = SL_FREE;
      continue;
    }
    int rc = send_raw(vm, d, o, VDC_Read, vm->mts, d->send_off);
    if (rc == VD_E_IO_ERROR) {
      o->state = SL_FREE;
      stop = 1;
      continue;
    }
    if (rc) return send_failed(vm, d, o, rc);
    d->send_off += vm->mts;
  }
  return 0;
}

/* The first reads: one in every slot.  A stripe smaller than the reads
 * can end (and put the device in IO-ERROR) before the last are sent. */
static int start_reads(vmedia_t *vm, struct vdev *d) {
  d->started = 1;
  for (unsigned k = 0; k < d->ns; k++)
    if (refill(vm, d, &d->sl[k])) return -1;
  return 0;
}

static long v_read(media_t *m, unsigned i, void *buf, size_t len) {
  vmedia_t *vm = (vmedia_t *)m;
  struct vdev *d = &vm->d[i];
  uint8_t *p = buf;
  size_t got = 0;
  if (vm->failed) return -1;
  if (!d->started && start_reads(vm, d)) return -1;
  while (got < len && !d->at_end) {
    struct slot *s = &d->sl[d->head];
    if (slot_state(vm, s) ==
        SL_FREE) { /* not sent again: the end is further on */
      d->head = (d->head + 1) % d->ns;
      continue;
    }
    if (wait_slot(vm, s)) return -1;
    if (!s->checked) {
      int code = s->cmd.completionCode;
      int32_t bytes = s->cmd.bytesTransferred;
      if (code == ERROR_HANDLE_EOF || code == ERROR_NO_DATA_DETECTED) {
        s->eof = 1;
      } else if (code != ERROR_SUCCESS) {
        io_error(vm, d, primary_code(vm, d, code));
        return -1;
      }
      if (bytes < 0 || (uint32_t)bytes > s->size ||
          (vm->random && s->pos != d->expect)) {
        vm->failed = 1;
        vmsg_set(m->err, 3203,
                 "Read on \"%s\" failed: the device reported %d bytes for a "
                 "read of %u.",
                 d->name, bytes, s->size);
        return -1;
      }
      s->checked = 1;
      s->avail = (uint32_t)bytes;
      d->expect = s->pos + bytes;
      if (vm->random && !s->eof && s->avail < s->size) {
        d->send_off = d->expect;
        if (resync(vm, d, s)) return -1;
      }
    }
    size_t n = s->avail - s->rd;
    if (n > len - got) n = len - got;
    memcpy(p + got, s->buf + s->rd, n);
    s->rd += (uint32_t)n;
    got += n;
    if (s->rd == s->avail) {
      if (s->eof) {
        d->at_end = 1;
        s->state = SL_FREE;
        break;
      }
      if (refill(vm, d, s)) return -1;
      d->head = (d->head + 1) % d->ns;
    }
  }
  return (long)got;
}

/* Send a control command on every device, then wait for all of them. */
static int control_all(vmedia_t *vm, int code) {
  for (unsigned i = 0; i < vm->ndev; i++)
    if (send(vm, &vm->d[i], &vm->d[i].ctl, code, 0, 0)) return -1;
  for (unsigned i = 0; i < vm->ndev; i++)
    if (wait_slot(vm, &vm->d[i].ctl) || check_done(vm, &vm->d[i].ctl))
      return -1;
  return 0;
}

static int v_finish(media_t *m, int ok) {
  vmedia_t *vm = (vmedia_t *)m;
  if (!vm->srv) return 0;
  if (ok && !vm->failed && vm->writing) {
    for (unsigned i = 0; i < vm->ndev && !vm->failed; i++) {
      struct vdev *d = &vm->d[i];
      if (d->cur && d->fill > 0) {
        if (send(vm, d, d->cur, VDC_Write, d->fill, d->woff)) break;
        d->woff += d->fill;
        d->cur = NULL;
      }
    }
    for (unsigned i = 0; i < vm->ndev && !vm->failed; i++)
      for (unsigned k = 0; k < vm->d[i].ns; k++)
        if (wait_slot(vm, &vm->d[i].sl[k]) || check_done(vm, &vm->d[i].sl[k]))
          break;
    if (!vm->failed) control_all(vm, VDC_Flush);
    if (!vm->failed && vm->complete) control_all(vm, VDC_Complete);
  } else if (ok && !vm->failed) {
    /* Restore: let the reads still out come back before closing. */
    for (unsigned i = 0; i < vm->ndev; i++)
      for (unsigned k = 0; k < vm->d[i].ns; k++)
        wait_quiet(vm, &vm->d[i].sl[k]);
  }
  int good = ok && !vm->failed;
  if (!good) vdi_srv_signal_abort(vm->srv);
  for (unsigned i = 0; i < vm->ndev; i++)
    if (vm->d[i].h) vdi_srvdev_close_device(vm->d[i].h);
  if (vm->agent_started) {
    pthread_join(vm->agent, NULL);
    vm->agent_started = 0;
    if (good && vm->agent_rc != 0) {
      call_error(vm, &vm->d[0], "the completion agent", vm->agent_rc);
      good = 0;
    }
  }
  reg_remove(vm);
  vdi_srv_close(vm->srv);
  vdi_srv_free(vm->srv);
  vm->srv = NULL;
  return good || !ok ? 0 : -1;
}

static int v_peer_ok(media_t *m) {
  vmedia_t *vm = (vmedia_t *)m;
  if (!vm->srv || vm->failed) return -1;
  for (unsigned i = 0; i < vm->ndev; i++)
    for (unsigned k = 0; k < vm->d[i].ns; k++)
      wait_quiet(vm, &vm->d[i].sl[k]);
  /* The completion agent returns as soon as the set aborts, and a client
   * that dies aborts it (the kernel hangs up its socket): so the agent
   * still running means the client was there a moment ago. */
  pthread_mutex_lock(&vm->mu);
  int gone = vm->agent_done;
  pthread_mutex_unlock(&vm->mu);
  if (gone) {
    io_error(vm, &vm->d[0], ERROR_OPERATION_ABORTED);
    return -1;
  }
  return 0;
}

static void v_destroy(media_t *m) {
  vmedia_t *vm = (vmedia_t *)m;
  v_finish(m, 0);
  for (unsigned i = 0; i < vm->ndev; i++)
    free(vm->d[i].sl);
  pthread_mutex_destroy(&vm->mu);
  pthread_cond_destroy(&vm->cv);
  free(vm);
}

static const struct media_ops vdi_ops = {
    v_write, v_read, v_finish, v_peer_ok, v_destroy, v_reserve, v_commit};

void vdidev_abort_set(const char *name) {
  vdi_srvset_t *srv = NULL;
  if (vdi_srv_new(&srv) != 0) return;
  if (vdi_srv_open(srv, NULL, name) == 0) {
    vdi_srv_signal_abort(srv);
    vdi_srv_close(srv);
  }
  vdi_srv_free(srv);
}

static media_t *fail_open(vmedia_t *vm, const char *set, const char *what,
                          int rc) {
  vmsg_set(vm->m.err, 3201,
           "Cannot open backup device '%s'. %s returned 0x%08x (%s: %s).", set,
           what, (unsigned)rc, vdi_error_name(rc), vdi_strerror(rc));
  v_destroy(&vm->m);
  return NULL;
}

media_t *vdidev_open(char *const *names, int n, const media_opts *o,
                     vmsg *err) {
  vmedia_t *vm = calloc(1, sizeof *vm);
  VDConfig cfg;
  int rc;
  if (!vm) return NULL;
  vm->m.ops = &vdi_ops;
  vm->m.err = err;
  vm->m.nstripes = (unsigned)n;
  vm->m.device_type = 7;
  vm->writing = o->writing;
  vm->ndev = (unsigned)n;
  pthread_mutex_init(&vm->mu, NULL);
  pthread_cond_init(&vm->cv, NULL);
  for (int i = 0; i < n; i++)
    vm->d[i].name = names[i], vm->d[i].vm = vm;
  if ((rc = vdi_srv_new(&vm->srv)) != 0) {
    vm->srv = NULL;
    return fail_open(vm, names[0], "Create", rc);
  }
  reg_add(vm);
  if ((rc = vdi_srv_open(vm->srv, NULL, names[0])) != 0)
    return fail_open(vm, names[0], "Open", rc);
  if ((rc = vdi_srv_get_configuration(vm->srv, &cfg)) != 0)
    return fail_open(vm, names[0], "GetConfiguration", rc);
  if (cfg.deviceCount != (uint32_t)n) {
    vmsg_set(err, 3201,
             "Cannot open backup device '%s'. The virtual device set has %u "
             "device(s) but the statement names %d.",
             names[0], cfg.deviceCount, n);
    v_destroy(&vm->m);
    return NULL;
  }
  vm->random = (cfg.features & VDF_RandomAccess) != 0;
  vm->complete = o->writing && (cfg.features & VDF_RequestComplete);
  vm->bs = o->blocksize ? o->blocksize : 65536;
  vm->mts = o->maxtransfer ? o->maxtransfer : 1048576;
  vm->m.align = vm->bs;
  uint32_t align = cfg.alignment > vm->bs ? cfg.alignment : 0;
  uint32_t feats = (o->writing ? VDF_WriteMedia : VDF_ReadMedia) |
                   (vm->complete ? VDF_CompleteEnabled : 0);
  uint32_t count = o->buffercount ? o->buffercount : 2u * (unsigned)n + 2;
  uint32_t per = count / (uint32_t)n;
  if (per < 1) per = 1;
  if ((rc = vdi_srv_begin_configuration(vm->srv, feats, vm->bs, align, vm->mts,
                                        30000)) != 0)
    return fail_open(vm, names[0], "BeginConfiguration", rc);
  if ((rc = vdi_srv_request_buffers(vm->srv, vm->mts, 0, per * (unsigned)n)))
    return fail_open(vm, names[0], "RequestBuffers", rc);
  if ((rc = vdi_srv_end_configuration(vm->srv)) != 0)
    return fail_open(vm, names[0], "EndConfiguration", rc);
  for (int i = 0; i < n; i++)
    if ((rc = vdi_srv_open_device(vm->srv, names[i], &vm->d[i].h)) != 0) {
      vm->d[i].h = NULL;
      return fail_open(vm, names[i], "OpenDevice", rc);
    }
  if (pthread_create(&vm->agent, NULL, agent_main, vm) != 0)
    return fail_open(vm, names[0], "pthread_create", VD_E_UNEXPECTED);
  vm->agent_started = 1;
  for (int i = 0; i < n; i++) {
    struct vdev *d = &vm->d[i];
    d->sl = calloc(per, sizeof *d->sl);
    if (!d->sl) return fail_open(vm, names[i], "malloc", VD_E_MEMORY);
    d->ns = per;
    d->ctl.dev = d;
    for (unsigned k = 0; k < per; k++) {
      d->sl[k].dev = d;
      if ((rc = vdi_srv_allocate_buffer(vm->srv, &d->sl[k].buf, vm->mts, 0)))
        return fail_open(vm, names[i], "AllocateBuffer", rc);
    }
  }
  return &vm->m;
}
