/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_dev.c - a client device (IClientVirtualDevice): GetCommand and
 * CompleteCommand, and the client's half of the IO-ERROR protocol.
 *
 * GetCommand copies each command out of the ring once, checks it, resolves
 * its buffer to an address in this process and hands the application a
 * private VDC_Command whose buffer points into the shared segment: the
 * payload itself is never copied.  CompleteCommand only accepts a command
 * that is outstanding on this device.
 *
 * IO-ERROR (spec 2.4.4): after the application completes a command with an
 * error, commands the server had already queued are completed here with
 * ERROR_IO_DEVICE and never shown, and ClearError is held back until every
 * command outstanding at the time of the error is completed.
 */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

void vdi__client_dev_init(struct vdi_set *set, uint32_t i) {
  struct vdi_device *d = &set->devs[i];
  d->set = set;
  d->idx = i;
  d->sd = vdi__dev(&set->c, i);
  pthread_mutex_init(&d->lock, NULL);
}

void vdi__client_dev_free(struct vdi_device *d) {
  if (d->slots) pthread_mutex_destroy(&d->lock);
  free(d->slots);
  d->slots = NULL;
}

static void protocol_error(struct vdi_device *d) {
  vdi__abort(&d->set->c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
}

/* Completion toward the server; caller holds d->lock. */
static int post_completion(struct vdi_device *d, uint32_t tag, uint32_t code,
                           uint32_t bytes, uint64_t pos) {
  struct vdi_shm_cpl cpl = {tag, code, bytes, 0, pos, 0};
  int r = vdi__cpl_push(d->sd, d->set->c.geom.ring_entries, &d->rs, &cpl);
  if (r != 1) {
    /* Full cannot happen with an honest server: it never has more commands
     * in flight than the ring holds. */
    protocol_error(d);
    return VD_E_PROTOCOL;
  }
  struct vdi_shm_hdr *h = d->set->c.hdr;
  vdi__notify(&h->agent_seq, &h->agent_sleepers);
  return 0;
}

/* Resolve and check a Read/Write buffer reference. */
static uint8_t *resolve_buffer(struct vdi_device *d,
                               const struct vdi_shm_cmd *e) {
  struct vdi_common *c = &d->set->c;
  const VDConfig *cfg = &c->chosen;
  if (e->size <= 0 || (uint32_t)e->size > cfg->maxTransferSize) return NULL;
  if (e->seg >= VDI_SHM_MAX_SEGMENTS ||
      e->seg >= atomic_load(&c->hdr->seg_count))
    return NULL;
  uint8_t *base = vdi__seg_get(c, e->seg);
  if (!base) return NULL;
  uint64_t segsize = c->segs[e->seg].size;
  if (e->offset < cfg->prefixZoneSize || e->offset > segsize ||
      (uint64_t)e->size > segsize - e->offset)
    return NULL;
  uint8_t *p = base + e->offset;
  if ((uintptr_t)p % cfg->alignment != 0) return NULL;
  return p;
}

/* IO-ERROR: complete what the server queued, up to a ClearError, with
 * ERROR_IO_DEVICE at once, so the server learns of it without waiting for
 * our next GetCommand.  Caller holds d->lock. */
static int refuse_queued(struct vdi_device *d) {
  uint32_t entries = d->set->c.geom.ring_entries;
  struct vdi_shm_cmd e;
  int r;
  while ((r = vdi__cmd_peek(d->sd, entries, &d->rs, &e)) == 1 &&
         e.code != VDC_ClearError) {
    vdi__cmd_pop(d->sd, entries, &d->rs, &e);
    if (post_completion(d, e.tag, ERROR_IO_DEVICE, 0, 0) != 0)
      return VD_E_PROTOCOL;
  }
  if (r < 0) {
    protocol_error(d);
    return VD_E_PROTOCOL;
  }
  return 0;
}

struct get_ctx {
  struct vdi_device *d;
  VDC_Command *out;
};

/* One attempt to take a command; 0 = nothing yet. */
static int try_get(void *arg) {
  struct get_ctx *g = arg;
  struct vdi_device *d = g->d;
  struct vdi_common *c = &d->set->c;
  uint32_t entries = c->geom.ring_entries;
  int a = vdi__aborted(c);
  if (a) return a;
  pthread_mutex_lock(&d->lock);
  for (;;) {
    /* Read the close flag before the ring: the server sets it after its
     * last push, so an empty ring seen after the flag really is the end. */
    uint32_t ds = atomic_load_explicit(&d->sd->dstate, memory_order_acquire);
    struct vdi_shm_cmd e;
    int r = vdi__cmd_peek(d->sd, entries, &d->rs, &e);
    if (r < 0) {
      pthread_mutex_unlock(&d->lock);
      protocol_error(d);
      return VD_E_PROTOCOL;
    }
    if (r == 0) {
      pthread_mutex_unlock(&d->lock);
      if (ds & VDI_DEV_SRV_CLOSED) return VD_E_CLOSE;
      return 0;
    }
    if (e.code < VDC_Read || e.code > VDC_Complete) goto bad;
    if (d->io_error && e.code != VDC_ClearError) {
      vdi__cmd_pop(d->sd, entries, &d->rs, &e);
      if (post_completion(d, e.tag, ERROR_IO_DEVICE, 0, 0) != 0) goto fail;
      continue;
    }
    if (d->io_error && d->outstanding > 0) {
      /* ClearError waits for the commands outstanding at the error. */
      pthread_mutex_unlock(&d->lock);
      return 0;
    }
    uint8_t *buf = NULL;
    if (e.code == VDC_Read || e.code == VDC_Write) {
      if (!(buf = resolve_buffer(d, &e))) goto bad;
    }
    struct cl_slot *slot = NULL;
    for (uint32_t i = 0; i < entries; i++)
      if (!d->slots[i].busy) {
        slot = &d->slots[i];
        break;
      }
    if (!slot) goto bad; /* more in flight than the server may have */
    vdi__cmd_pop(d->sd, entries, &d->rs, &e);
    /* The ring keeps size and position signed; the API fields are the
     * interface's unsigned DWORD / DWORDLONG, with the same bits. */
    slot->cmd.commandCode = e.code;
    slot->cmd.size = (uint32_t)e.size;
    slot->cmd.position = (uint64_t)e.position;
    slot->cmd.buffer = buf;
    slot->tag = e.tag;
    slot->busy = true;
    d->outstanding++;
    g->out = &slot->cmd;
    pthread_mutex_unlock(&d->lock);
    return 1;
  }
bad:
  pthread_mutex_unlock(&d->lock);
  protocol_error(d);
  return VD_E_PROTOCOL;
fail:
  pthread_mutex_unlock(&d->lock);
  return VD_E_PROTOCOL;
}

static int get_command(vdi_device_t *dev, int64_t timeout_ms,
                       VDC_Command **cmd);
static int complete_command(vdi_device_t *dev, VDC_Command *cmd, uint32_t code,
                            uint32_t bytes, uint64_t position);

/* Calls are counted per device (no line shared between devices on the hot
 * path), so that Close can wait until every thread has left. */
int vdi_dev_get_command(vdi_device_t *dev, int64_t timeout_ms,
                        VDC_Command **cmd) {
  if (!dev || !cmd) return VD_E_INVALID;
  _Atomic uint32_t *calls = &dev->set->c.dev_calls[dev->idx].n;
  if (!vdi__enter(&dev->set->c, calls)) return VD_E_ABORT;
  int rc = get_command(dev, timeout_ms, cmd);
  vdi__leave(calls);
  return rc;
}

int vdi_dev_complete_command(vdi_device_t *dev, VDC_Command *cmd, uint32_t code,
                             uint32_t bytes, uint64_t position) {
  if (!dev) return VD_E_INVALID;
  _Atomic uint32_t *calls = &dev->set->c.dev_calls[dev->idx].n;
  if (!vdi__enter(&dev->set->c, calls)) return VD_E_ABORT;
  int rc = complete_command(dev, cmd, code, bytes, position);
  vdi__leave(calls);
  return rc;
}

static int get_command(vdi_device_t *dev, int64_t timeout_ms,
                       VDC_Command **cmd) {
  *cmd = NULL;
  int a = vdi__aborted(&dev->set->c);
  if (a) return a;
  if (!dev->opened || dev->closed) return VD_E_PROTOCOL;
  struct get_ctx g = {dev, NULL};
  struct vdi_deadline dl;
  vdi__deadline_init(&dl, timeout_ms);
  int r =
      vdi__wait(&dev->sd->cmd_seq, &dev->sd->cmd_sleepers, try_get, &g, &dl);
  if (r == 1) {
    *cmd = g.out;
    return 0;
  }
  if (r == VD_E_CLOSE) {
    struct vdi_set *s = dev->set;
    pthread_mutex_lock(&s->lock);
    if (!dev->closed) {
      dev->closed = true;
      s->nclosed++;
      if (s->nclosed == s->nopened && s->c.normal_end(&s->c))
        s->state = CL_TERMINATED;
    }
    pthread_mutex_unlock(&s->lock);
  }
  return r;
}

static int complete_command(vdi_device_t *dev, VDC_Command *cmd, uint32_t code,
                            uint32_t bytes, uint64_t position) {
  int a = vdi__aborted(&dev->set->c);
  if (a) return a; /* the server already got ERROR_OPERATION_ABORTED */
  if (!dev->opened) return VD_E_PROTOCOL;
  uint32_t entries = dev->set->c.geom.ring_entries;
  pthread_mutex_lock(&dev->lock);
  struct cl_slot *slot = (struct cl_slot *)(void *)cmd;
  if (!cmd || slot < dev->slots || slot >= dev->slots + entries ||
      (size_t)((char *)slot - (char *)dev->slots) % sizeof *slot != 0 ||
      !slot->busy) {
    pthread_mutex_unlock(&dev->lock);
    /* After VD_E_CLOSE only commands still outstanding can be completed
     * (the server is waiting for them); anything else is out of state. */
    return dev->closed ? VD_E_PROTOCOL : VD_E_INVALID;
  }
  bool rw =
      slot->cmd.commandCode == VDC_Read || slot->cmd.commandCode == VDC_Write;
  if (rw && bytes > slot->cmd.size) {
    pthread_mutex_unlock(&dev->lock);
    return VD_E_INVALID;
  }
  int rc = post_completion(dev, slot->tag, code, bytes, position);
  slot->busy = false;
  dev->outstanding--;
  bool was_error = dev->io_error;
  if (code != ERROR_SUCCESS)
    dev->io_error = true;
  else if (slot->cmd.commandCode == VDC_ClearError)
    dev->io_error = false;
  if (dev->io_error && rc == 0) rc = refuse_queued(dev);
  bool wake = was_error || dev->io_error;
  pthread_mutex_unlock(&dev->lock);
  /* A ClearError held back may now be deliverable to a waiting thread. */
  if (wake) vdi__wake_all(&dev->sd->cmd_seq);
  return rc;
}
