/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_dev.c - server devices (IServerVirtualDevice: SendCommand,
 * CloseDevice) and the completion agent (ExecuteCompletionAgent).
 *
 * Each device remembers its commands in flight in private memory (slots),
 * indexed by the tag that travels with the command.  A completion is
 * accepted only if its tag names a busy slot with the same generation, so
 * a client that completes twice, or invents a completion, is caught
 * (VD_E_PROTOCOL) and can never make us run a routine twice or touch a
 * VDS_Command that is not in flight.
 *
 * Whoever frees a slot runs its completion routine, exactly once: the agent
 * for a completion, vdi__srv_fail_all for an abort, SendCommand itself for
 * a command it refused.
 */
#include "server_int.h"

#include <string.h>

#define TAG_SLOT_BITS 8
#define TAG_SLOT_MASK ((1u << TAG_SLOT_BITS) - 1)
_Static_assert(VDI_SHM_RING_ENTRIES == (1u << TAG_SLOT_BITS), "tag layout");

static void run_routine(VDS_Command *cmd) {
  if (cmd->completionRoutine) {
    VDS_CompletionRoutine fn;
    uintptr_t u = (uintptr_t)cmd->completionRoutine;
    memcpy(&fn, &u, sizeof fn);
    fn(cmd);
  }
}

static int refuse(VDS_Command *cmd, int rc, uint32_t code) {
  cmd->completionCode = code;
  cmd->bytesTransferred = 0;
  run_routine(cmd);
  return rc;
}

static int send_command(vdi_srvdev_t *dev, VDS_Command *cmd);
static int close_device(vdi_srvdev_t *dev);

/* Counted in and out (per device, so senders of different devices share
 * no line), so that Close can wait for them; refused once Close began. */
int vdi_srvdev_send_command(vdi_srvdev_t *dev, VDS_Command *cmd) {
  if (!cmd) return VD_E_INVALID;
  if (!dev) return refuse(cmd, VD_E_INVALID, ERROR_INVALID_PARAMETER);
  _Atomic uint32_t *calls = &dev->srv->c.dev_calls[dev->idx].n;
  if (!vdi__enter(&dev->srv->c, calls))
    return refuse(cmd, VD_E_ABORT, ERROR_OPERATION_ABORTED);
  int rc = send_command(dev, cmd);
  vdi__leave(calls);
  return rc;
}

int vdi_srvdev_close_device(vdi_srvdev_t *dev) {
  if (!dev) return VD_E_INVALID;
  if (!vdi__enter(&dev->srv->c, &dev->srv->c.calls)) return VD_E_ABORT;
  int rc = close_device(dev);
  vdi__leave(&dev->srv->c.calls);
  return rc;
}

static int send_command(vdi_srvdev_t *dev, VDS_Command *cmd) {
  struct vdi_srvset *srv = dev->srv;
  int a = vdi__aborted(&srv->c);
  if (a) return refuse(cmd, VD_E_ABORT, ERROR_OPERATION_ABORTED);
  if (!dev->opened || atomic_load(&dev->closed))
    return refuse(cmd, VD_E_PROTOCOL, ERROR_INVALID_HANDLE);
  if (cmd->commandCode < VDC_Read || cmd->commandCode > VDC_Complete)
    return refuse(cmd, VD_E_INVALID, ERROR_INVALID_PARAMETER);
  if (atomic_load(&dev->io_error) && cmd->commandCode != VDC_ClearError)
    return refuse(cmd, VD_E_IO_ERROR, ERROR_IO_DEVICE);
  /* The ring's size and position are signed; the bits go through as the
   * interface's DWORD / DWORDLONG carried them. */
  struct vdi_shm_cmd e = {cmd->commandCode,
                          (int32_t)cmd->size,
                          (int64_t)cmd->inPosition,
                          VDI_SHM_NO_SEG,
                          0,
                          0};
  if (cmd->commandCode == VDC_Read || cmd->commandCode == VDC_Write) {
    struct ba_ref r;
    if (cmd->size == 0 || cmd->size > srv->max_transfer ||
        vdi__ba_lookup(srv, cmd->buffer, &r) != 0 || !r.allocated ||
        cmd->size > r.size)
      return refuse(cmd, VD_E_INVALID, ERROR_INVALID_PARAMETER);
    e.seg = r.seg;
    e.offset = r.off;
  }
  pthread_mutex_lock(&dev->lock);
  /* Again under the lock: an abort's sweep (vdi__srv_fail_all) and
   * CloseDevice take this lock too, so a command is either refused here or
   * seen by them; never pushed behind their back and left without its
   * routine. */
  if (vdi__aborted(&srv->c) || atomic_load(&dev->closed)) {
    bool ab = vdi__aborted(&srv->c) != 0;
    pthread_mutex_unlock(&dev->lock);
    return ab ? refuse(cmd, VD_E_ABORT, ERROR_OPERATION_ABORTED)
              : refuse(cmd, VD_E_PROTOCOL, ERROR_INVALID_HANDLE);
  }
  if (dev->outstanding == VDI_SHM_RING_ENTRIES) {
    pthread_mutex_unlock(&dev->lock);
    return refuse(cmd, VD_E_QUEUE_FULL, ERROR_NO_SYSTEM_RESOURCES);
  }
  uint32_t k = 0;
  while (dev->slots[k].busy)
    k++;
  struct sv_slot *s = &dev->slots[k];
  s->gen = (++dev->gen) & ((1u << (32 - TAG_SLOT_BITS)) - 1);
  s->cmd = cmd;
  s->busy = true;
  e.tag = (s->gen << TAG_SLOT_BITS) | k;
  if (atomic_fetch_add(&srv->in_flight, 1) == 0)
    atomic_store(&srv->busy_since_ns, vdi__now_ns());
  int r = vdi__cmd_push(dev->sd, srv->c.geom.ring_entries, &dev->rs, &e);
  if (r != 1) {
    /* The client's head is impossible (or the ring is full although we
     * never exceed it): the client broke the ring. */
    s->busy = false;
    atomic_fetch_sub(&srv->in_flight, 1);
    pthread_mutex_unlock(&dev->lock);
    vdi__abort(&srv->c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
    return refuse(cmd, VD_E_ABORT, ERROR_OPERATION_ABORTED);
  }
  dev->outstanding++;
  pthread_mutex_unlock(&dev->lock);
  /* Wake the client only if it sleeps: no system call while it keeps up. */
  vdi__notify(&dev->sd->cmd_seq, &dev->sd->cmd_sleepers);
  return 0;
}

static int close_device(vdi_srvdev_t *dev) {
  struct vdi_srvset *srv = dev->srv;
  int a = vdi__aborted(&srv->c);
  if (a) return a;
  pthread_mutex_lock(&srv->lock);
  if (!dev->opened) {
    pthread_mutex_unlock(&srv->lock);
    return VD_E_PROTOCOL;
  }
  if (atomic_load(&dev->closed)) {
    pthread_mutex_unlock(&srv->lock);
    return VD_E_CLOSE;
  }
  /* Under the device lock, so no SendCommand pushes after the flag. */
  pthread_mutex_lock(&dev->lock);
  atomic_store(&dev->closed, true);
  /* Release: pushed commands are visible before the close flag. */
  atomic_fetch_or_explicit(&dev->sd->dstate, VDI_DEV_SRV_CLOSED,
                           memory_order_release);
  pthread_mutex_unlock(&dev->lock);
  srv->nclosed++;
  if (srv->nclosed == srv->c.geom.dev_count) {
    srv->state = SV_TERMINATED;
    atomic_store(&srv->c.hdr->state, VDI_ST_TERMINATED);
    vdi__wake_all(&srv->c.hdr->state_seq);
  }
  /* Still under srv->lock: the agent's all_done() takes it, so the agent
   * cannot return (and the set be freed) while we touch shared memory. */
  vdi__wake_all(&dev->sd->cmd_seq);
  vdi__wake_all(&srv->c.hdr->agent_seq);
  pthread_mutex_unlock(&srv->lock);
  return 0;
}

/* Complete every command in flight with ERROR_OPERATION_ABORTED. */
void vdi__srv_fail_all(struct vdi_srvset *srv) {
  if (!srv->devs) return;
  for (uint32_t i = 0; i < srv->c.geom.dev_count; i++) {
    struct vdi_srvdev *d = &srv->devs[i];
    for (uint32_t k = 0; k < VDI_SHM_RING_ENTRIES; k++) {
      pthread_mutex_lock(&d->lock);
      VDS_Command *cmd = NULL;
      if (d->slots[k].busy) {
        cmd = d->slots[k].cmd;
        d->slots[k].busy = false;
        d->outstanding--;
        atomic_fetch_sub(&srv->in_flight, 1);
      }
      pthread_mutex_unlock(&d->lock);
      if (cmd) refuse(cmd, 0, ERROR_OPERATION_ABORTED);
    }
  }
}

/* Take the completions waiting on one device; false on a bad one. */
static bool drain_device(struct vdi_srvset *srv, struct vdi_srvdev *d,
                         int *progress) {
  uint32_t entries = srv->c.geom.ring_entries;
  for (;;) {
    struct vdi_shm_cpl cpl;
    int r = vdi__cpl_pop(d->sd, entries, &d->rs, &cpl);
    if (r == 0) return true;
    if (r < 0) return false;
    uint32_t k = cpl.tag & TAG_SLOT_MASK, gen = cpl.tag >> TAG_SLOT_BITS;
    pthread_mutex_lock(&d->lock);
    struct sv_slot *s = &d->slots[k];
    if (!s->busy || s->gen != gen) {
      pthread_mutex_unlock(&d->lock);
      return false;
    }
    VDS_Command *cmd = s->cmd;
    bool rw = cmd->commandCode == VDC_Read || cmd->commandCode == VDC_Write;
    if (rw && cpl.bytes > cmd->size) {
      pthread_mutex_unlock(&d->lock);
      return false;
    }
    s->busy = false;
    d->outstanding--;
    atomic_fetch_sub(&srv->in_flight, 1);
    if (cpl.code != ERROR_SUCCESS)
      atomic_store(&d->io_error, true);
    else if (cmd->commandCode == VDC_ClearError)
      atomic_store(&d->io_error, false);
    pthread_mutex_unlock(&d->lock);
    cmd->completionCode = cpl.code;
    cmd->bytesTransferred = cpl.bytes;
    cmd->outPosition = cpl.position;
    (*progress)++;
    run_routine(cmd);
  }
}

static bool all_done(struct vdi_srvset *srv) {
  pthread_mutex_lock(&srv->lock);
  bool done = srv->nclosed == srv->c.geom.dev_count &&
              atomic_load(&srv->in_flight) == 0;
  pthread_mutex_unlock(&srv->lock);
  return done;
}

struct agent_ctx {
  struct vdi_srvset *srv;
};

static int agent_ready(void *arg) {
  struct vdi_srvset *srv = ((struct agent_ctx *)arg)->srv;
  if (vdi__aborted(&srv->c) || atomic_load(&srv->closing)) return 1;
  for (uint32_t i = 0; i < srv->c.geom.dev_count; i++) {
    struct vdi_srvdev *d = &srv->devs[i];
    if (atomic_load_explicit(&d->sd->cpl_tail, memory_order_relaxed) !=
        d->rs.cpl_idx)
      return 1;
  }
  return srv->nclosed == srv->c.geom.dev_count &&
         atomic_load(&srv->in_flight) == 0;
}

static __thread bool on_agent_thread;

bool vdi__srv_in_agent(void) {
  return on_agent_thread;
}

void vdi__srv_drain_all(struct vdi_srvset *srv) {
  int progress = 0;
  for (uint32_t i = 0; srv->devs && i < srv->c.geom.dev_count; i++)
    if (!drain_device(srv, &srv->devs[i], &progress))
      vdi__abort(&srv->c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
}

int vdi_srv_execute_completion_agent(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = 0;
  if (srv->state < SV_INITIALIZING || srv->agent_running)
    rc = VD_E_PROTOCOL;
  else if (atomic_load(&srv->closing))
    rc = VD_E_ABORT; /* Close is under way: it will not wait for us */
  else
    srv->agent_running = true;
  pthread_mutex_unlock(&srv->lock);
  if (rc) return rc;
  on_agent_thread = true;
  uint32_t tmo = srv->requested.serverTimeOut;
  int64_t last = vdi__now_ns();
  struct agent_ctx ctx = {srv};
  for (;;) {
    bool closing = atomic_load(&srv->closing);
    if ((rc = vdi__abort_code(&srv->c)) != 0) break;
    int progress = 0;
    for (uint32_t i = 0; i < srv->c.geom.dev_count; i++)
      if (!drain_device(srv, &srv->devs[i], &progress))
        vdi__abort(&srv->c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
    /* A completion just found bad aborted the set: that is the result. */
    if ((rc = vdi__abort_code(&srv->c)) != 0) break;
    if (progress) {
      last = vdi__now_ns();
      continue;
    }
    if (all_done(srv)) break; /* rc == 0: the normal end */
    if (closing) {
      /* Close: what the client completed has been taken; what is still in
       * flight ends as aborted, and so does the set, so that the client
       * does not take it for a normal end. */
      vdi__abort(&srv->c, VD_E_ABORT, VDI_ABORT_SERVER);
      rc = VD_E_ABORT;
      break;
    }
    struct vdi_deadline dl;
    if (tmo) {
      /* serverTimeOut: abort after two intervals with commands in flight
       * and no completion. */
      int64_t since = atomic_load(&srv->busy_since_ns);
      if (since > last) last = since;
      int64_t now = vdi__now_ns();
      if (atomic_load(&srv->in_flight) > 0 &&
          now - last > 2 * (int64_t)tmo * 1000000) {
        vdi__abort(&srv->c, VD_E_ABORT, VDI_ABORT_TIMEOUT);
        continue;
      }
      vdi__deadline_init(&dl, (int64_t)tmo / 2 + 1);
    } else {
      vdi__deadline_init(&dl, -1);
    }
    int w = vdi__wait(&srv->c.hdr->agent_seq, &srv->c.hdr->agent_sleepers,
                      agent_ready, &ctx, &dl);
    /* The agent cannot wait any more (the futex failed): spinning on would
     * burn a core, so the operation ends instead. */
    if (w == VD_E_UNEXPECTED)
      vdi__abort(&srv->c, VD_E_UNEXPECTED, VDI_ABORT_RESOURCE);
  }
  if (rc) vdi__srv_fail_all(srv);
  on_agent_thread = false;
  pthread_mutex_lock(&srv->lock);
  srv->agent_running = false;
  pthread_cond_broadcast(&srv->agent_cond);
  pthread_mutex_unlock(&srv->lock);
  return rc;
}
