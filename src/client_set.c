/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_set.c - the client's device set (IClientVirtualDeviceSet2):
 * Create, GetConfiguration, OpenDevice, SignalAbort, Close, OpenInSecondary
 * and buffer handles.  Return codes follow the client state table of spec
 * 2.4.2 (decisions on its [INF] points are in docs/PROTOCOL.md).
 */
#include "client_int.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTACH_WAIT_MS 5000
#define HANDLE_UNIT    512u /* buffer data starts are multiples of blockSize */

int vdi_set_new(vdi_set_t **out) {
  if (!out) return VD_E_INVALID;
  struct vdi_set *s = vdi__calloc(1, sizeof *s);
  *out = s;
  if (!s) return VD_E_MEMORY;
  vdi__common_init(&s->c, 0);
  vdi__segs_init(&s->c);
  pthread_mutex_init(&s->lock, NULL);
  return 0;
}

void vdi_set_free(vdi_set_t *set) {
  if (!set) return;
  if (set->state != CL_DNE) vdi_set_close(set);
  pthread_mutex_destroy(&set->lock);
  free(set);
}

int vdi_set_allow_group(vdi_set_t *set, gid_t gid) {
  if (!set) return VD_E_INVALID;
  if (set->state != CL_DNE) return VD_E_PROTOCOL;
  set->c.trust.group = gid;
  return 0;
}

/* A hang-up of the server is harmless once it has closed every device
 * (its own flags; the state word alone would let a server that merely
 * claims to be done leave our devices waiting forever). */
static bool client_normal_end(struct vdi_common *c) {
  if (!c->hdr) return false;
  for (uint32_t i = 0; i < c->geom.dev_count; i++)
    if (!(atomic_load(&vdi__dev(c, i)->dstate) & VDI_DEV_SRV_CLOSED))
      return false;
  return true;
}

static int alloc_devices(struct vdi_set *s) {
  s->devs = vdi__calloc(s->c.geom.dev_count, sizeof *s->devs);
  if (!s->devs) return VD_E_MEMORY;
  for (uint32_t i = 0; i < s->c.geom.dev_count; i++) {
    s->devs[i].slots =
        vdi__calloc(s->c.geom.ring_entries, sizeof *s->devs[i].slots);
    if (!s->devs[i].slots) return VD_E_MEMORY;
    vdi__client_dev_init(s, i);
  }
  return 0;
}

static void free_devices(struct vdi_set *s) {
  if (!s->devs) return;
  for (uint32_t i = 0; i < s->c.geom.dev_count; i++)
    vdi__client_dev_free(&s->devs[i]);
  free(s->devs);
  s->devs = NULL;
}

static void release(struct vdi_set *s) {
  vdi__watcher_stop(&s->c); /* nothing may use the devices after this */
  free_devices(s);          /* needs geom, which the common release clears */
  vdi__segs_release(&s->c);
  vdi__common_release(&s->c);
  s->nopened = s->nclosed = 0;
  atomic_store(&s->c.configured, false);
  s->state = CL_DNE;
}

static int check_instance(const char *instance) {
  if (!instance || !*instance) return 0;
  return vdi__name_check(instance);
}

int vdi_set_create_ex(vdi_set_t *set, const char *instance, const char *name,
                      VDConfig *cfg) {
  if (!set) return VD_E_INVALID;
  pthread_mutex_lock(&set->lock);
  int rc;
  if (set->state != CL_DNE) {
    rc = VD_E_PROTOCOL;
    goto out;
  }
  if (!cfg || vdi__name_check(name) || check_instance(instance)) {
    rc = VD_E_INVALID;
    goto out;
  }
  if ((rc = vdi__config_check_client(cfg)) != 0) goto out;
  VDConfig req = *cfg;
  /* Server-set fields are outputs; whatever the caller left there is
   * ignored rather than passed to the server. */
  req.blockSize = req.maxIODepth = req.maxTransferSize = req.bufferAreaSize = 0;
  struct vdi_common *c = &set->c;
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->instance, sizeof c->instance, "%s", instance ? instance : "");
  uint64_t size = vdi__shm_size(req.deviceCount);
  if ((rc = vdi__memfd_new("vdi-control", size, &c->ctl_fd)) != 0) goto fail;
  if ((rc = vdi__map_fd(c->ctl_fd, size, 4096, &c->ctl_map)) != 0) goto fail;
  c->hdr = (struct vdi_shm_hdr *)(void *)c->ctl_map.base;
  vdi__shm_init(c->hdr, size, req.deviceCount, &req);
  if ((rc = vdi__shm_validate(c->hdr, size, &c->geom)) != 0) goto fail;
  /* The first device is named like the set, by the client. */
  memcpy(vdi__dev(c, 0)->name, c->name, strlen(c->name) + 1);
  if ((rc = alloc_devices(set)) != 0) goto fail;
  if ((rc = vdi__listen(c->instance, c->name, &c->listen_fd)) != 0) goto fail;
  c->my_id = 1;
  c->normal_end = client_normal_end;
  if ((rc = vdi__watcher_start(c)) != 0) goto fail;
  set->requested = req;
  set->state = CL_CONFIGURABLE;
  rc = 0;
  goto out;
fail:
  release(set);
out:
  pthread_mutex_unlock(&set->lock);
  return rc;
}

int vdi_set_create(vdi_set_t *set, const char *name, VDConfig *cfg) {
  return vdi_set_create_ex(set, NULL, name, cfg);
}

static int config_ready(void *arg) {
  struct vdi_set *s = arg;
  int a = vdi__aborted(&s->c);
  if (a) return a;
  uint32_t st = atomic_load_explicit(&s->c.hdr->state, memory_order_acquire);
  if (st > VDI_ST_TERMINATED) {
    vdi__abort(&s->c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
    return VD_E_PROTOCOL;
  }
  return st >= VDI_ST_INITIALIZING ? 1 : 0;
}

/* Copy the server's choice out of shared memory and check it. */
static int take_chosen(struct vdi_set *s) {
  VDConfig cho;
  memcpy(&cho, &s->c.hdr->chosen, sizeof cho);
  if (vdi__config_check_chosen(&s->requested, &cho) != 0) {
    vdi__abort(&s->c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
    return VD_E_PROTOCOL;
  }
  s->c.chosen = cho;
  return 0;
}

static int get_configuration(vdi_set_t *set, int64_t timeout_ms, VDConfig *cfg);
static int open_device(vdi_set_t *set, const char *name, vdi_device_t **out);

/* The set-level calls that can block are counted, so Close can wait. */
int vdi_set_get_configuration(vdi_set_t *set, int64_t timeout_ms,
                              VDConfig *cfg) {
  if (!set) return VD_E_INVALID;
  if (!vdi__enter(&set->c, &set->c.calls)) return VD_E_ABORT;
  int rc = get_configuration(set, timeout_ms, cfg);
  vdi__leave(&set->c.calls);
  return rc;
}

int vdi_set_open_device(vdi_set_t *set, const char *name, vdi_device_t **out) {
  if (out) *out = NULL;
  if (!set || !out) return VD_E_INVALID;
  if (!vdi__enter(&set->c, &set->c.calls)) return VD_E_ABORT;
  int rc = open_device(set, name, out);
  vdi__leave(&set->c.calls);
  return rc;
}

static int get_configuration(vdi_set_t *set, int64_t timeout_ms,
                             VDConfig *cfg) {
  pthread_mutex_lock(&set->lock);
  int st = set->state;
  pthread_mutex_unlock(&set->lock);
  if (st == CL_DNE) return VD_E_PROTOCOL;
  int a = vdi__aborted(&set->c);
  if (a) return a;
  if (st == CL_CONFIGURABLE) {
    struct vdi_deadline dl;
    vdi__deadline_init(&dl, timeout_ms);
    int r = vdi__wait(&set->c.hdr->state_seq, &set->c.hdr->state_sleepers,
                      config_ready, set, &dl);
    if (r != 1) return r;
    pthread_mutex_lock(&set->lock);
    if (set->state == CL_CONFIGURABLE) {
      if ((r = take_chosen(set)) != 0) {
        pthread_mutex_unlock(&set->lock);
        return r;
      }
      set->state = CL_INITIALIZING;
      atomic_store(&set->c.configured, true);
    }
    pthread_mutex_unlock(&set->lock);
  }
  if (cfg) *cfg = set->c.chosen;
  return 0;
}

struct find_dev {
  struct vdi_set *s;
  const char *name;
  int found;
};

/* Ready when the named device is known, or every name is known. */
static int find_ready(void *arg) {
  struct find_dev *f = arg;
  struct vdi_common *c = &f->s->c;
  int a = vdi__aborted(c);
  if (a) return a;
  bool all_named = true;
  for (uint32_t i = 0; i < c->geom.dev_count; i++) {
    struct vdi_shm_dev *d = vdi__dev(c, i);
    bool named =
        i == 0 || (atomic_load_explicit(&d->dstate, memory_order_acquire) &
                   VDI_DEV_SRV_OPEN);
    if (!named) {
      all_named = false;
      continue;
    }
    char nm[VDI_SHM_NAME_BYTES];
    memcpy(nm, d->name, sizeof nm);
    nm[sizeof nm - 1] = 0; /* the peer may not have terminated it */
    if (strcmp(nm, f->name) == 0) {
      f->found = (int)i;
      return 1;
    }
  }
  return all_named ? 2 : 0;
}

static int open_device(vdi_set_t *set, const char *name, vdi_device_t **out) {
  pthread_mutex_lock(&set->lock);
  int st = set->state, rc;
  pthread_mutex_unlock(&set->lock);
  if (st == CL_DNE || st == CL_CONFIGURABLE || st == CL_TERMINATED)
    return VD_E_PROTOCOL;
  if ((rc = vdi__aborted(&set->c)) != 0) return rc;
  struct vdi_common *c = &set->c;
  bool all_open = true;
  for (uint32_t i = 0; i < c->geom.dev_count; i++)
    if (atomic_load(&vdi__dev(c, i)->cli_owner) == 0) all_open = false;
  if (all_open) return VD_E_OPEN;
  if (vdi__name_check(name)) return VD_E_INVALID;
  struct find_dev f = {set, name, -1};
  struct vdi_deadline dl;
  vdi__deadline_init(&dl, -1);
  int r = vdi__wait(&c->hdr->state_seq, &c->hdr->state_sleepers, find_ready, &f,
                    &dl);
  if (r < 0) return r;
  if (r == 2) return VD_E_INVALID;
  uint32_t zero = 0;
  struct vdi_device *d = &set->devs[f.found];
  /* Our own record first: the shared owner word is the peer's to spoil. */
  if (d->opened ||
      !atomic_compare_exchange_strong(&d->sd->cli_owner, &zero, c->my_id))
    return VD_E_PROTOCOL;
  pthread_mutex_lock(&set->lock);
  d->opened = true;
  set->nopened++;
  set->state = CL_ACTIVE;
  pthread_mutex_unlock(&set->lock);
  *out = d;
  return 0;
}

int vdi_set_signal_abort(vdi_set_t *set) {
  if (!set) return VD_E_INVALID;
  /* Under the lock: SignalAbort typically comes from another thread (a
   * signal handler thread, a watchdog) while the set changes state. */
  pthread_mutex_lock(&set->lock);
  int rc = set->state == CL_DNE ? VD_E_PROTOCOL : 0;
  if (rc == 0) vdi__abort(&set->c, VD_E_ABORT, VDI_ABORT_CLIENT);
  pthread_mutex_unlock(&set->lock);
  return rc;
}

int vdi_set_close(vdi_set_t *set) {
  if (!set) return VD_E_INVALID;
  pthread_mutex_lock(&set->lock);
  /* DNE, or another thread's Close is already under way. */
  if (set->state == CL_DNE || atomic_load(&set->c.closing)) {
    pthread_mutex_unlock(&set->lock);
    return VD_E_PROTOCOL;
  }
  int rc = 0;
  if (!vdi__aborted(&set->c) && set->nclosed < set->nopened) {
    /* Closing with devices still open aborts the operation (spec 2.2.8). */
    vdi__abort(&set->c, VD_E_ABORT, VDI_ABORT_CLIENT);
    rc = VD_E_OPEN;
  }
  /* What a server can see of it (vdi_srv_client_closed): the primary's
   * Close, before anything is unmapped. */
  if (set->c.role == 0 && set->c.hdr)
    atomic_store(&set->c.hdr->client_close, VDI_CLOSE_CALLED);
  /* Threads still inside calls of this set must leave before anything is
   * unmapped or freed: make their waits return, then wait for them. */
  atomic_store(&set->c.closing, true);
  pthread_mutex_unlock(&set->lock);
  vdi__wait_calls_out(&set->c);
  pthread_mutex_lock(&set->lock);
  release(set);
  pthread_mutex_unlock(&set->lock);
  return rc;
}

int vdi_set_open_in_secondary_ex(vdi_set_t *set, const char *instance,
                                 const char *name) {
  if (!set) return VD_E_INVALID;
  pthread_mutex_lock(&set->lock);
  int rc;
  struct vdi_common *c = &set->c;
  if (set->state != CL_DNE) {
    rc = VD_E_PROTOCOL;
    goto out;
  }
  if (vdi__name_check(name) || check_instance(instance)) {
    rc = VD_E_INVALID;
    goto out;
  }
  c->role = 2;
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->instance, sizeof c->instance, "%s", instance ? instance : "");
  if ((rc = vdi__connect(c->instance, c->name, &c->conn_fd)) != 0) {
    if (rc == VD_E_INVALID) rc = VD_E_PROTOCOL; /* no such set */
    goto fail;
  }
  if ((rc = vdi__listener_trusted(c->conn_fd)) != 0) goto fail;
  struct vdi_msg m = {VDI_SHM_MAGIC, VDI_MSG_ATTACH, VDI_ROLE_SECONDARY, 0, 0};
  /* A refused peer may find the socket closed under its ATTACH: what
   * tells it why is the REJECT already waiting to be read. */
  int sent = vdi__send_msg(c->conn_fd, &m, -1);
  int fd;
  /* If the ATTACH did not go out, only an answer already there counts:
   * nobody will answer later. */
  rc = vdi__recv_msg_timeout(c->conn_fd, &m, &fd,
                             sent == 0 ? ATTACH_WAIT_MS : 0);
  if (rc != 1) {
    rc = rc == VD_E_TIMEOUT || rc == 0 ? VD_E_PROTOCOL : rc;
    goto fail;
  }
  if (m.type == VDI_MSG_REJECT) {
    if (fd >= 0) close(fd);
    rc = (int)m.arg == VD_E_ABORT || (int)m.arg == VD_E_SECURITY
             ? (int)m.arg
             : VD_E_PROTOCOL;
    goto fail;
  }
  if (m.type != VDI_MSG_CONTROL || fd < 0 || m.arg < 2) {
    if (fd >= 0) close(fd);
    rc = VD_E_PROTOCOL;
    goto fail;
  }
  if ((rc = vdi__attach_control(c, fd, m.size)) != 0) {
    close(fd);
    goto fail;
  }
  if ((rc = vdi__check_set_name(c)) != 0) goto fail;
  c->my_id = m.arg;
  memcpy(&set->requested, &c->hdr->requested, sizeof set->requested);
  if (vdi__config_check_client(&set->requested) != 0 ||
      set->requested.deviceCount != c->geom.dev_count) {
    rc = VD_E_PROTOCOL;
    goto fail;
  }
  if ((rc = take_chosen(set)) != 0) goto fail;
  if ((rc = alloc_devices(set)) != 0) goto fail;
  c->normal_end = client_normal_end;
  if ((rc = vdi__watcher_start(c)) != 0) goto fail;
  set->state = CL_INITIALIZING;
  rc = 0;
  goto out;
fail:
  release(set);
  c->role = 0;
out:
  pthread_mutex_unlock(&set->lock);
  return rc;
}

int vdi_set_open_in_secondary(vdi_set_t *set, const char *name) {
  return vdi_set_open_in_secondary_ex(set, NULL, name);
}

static int get_buffer_handle(vdi_set_t *set, const uint8_t *buf,
                             uint32_t *handle) {
  if (set->state == CL_DNE) return VD_E_PROTOCOL;
  uint32_t n = atomic_load_explicit(&set->c.nsegs, memory_order_acquire);
  for (uint32_t i = 0; i < n; i++) {
    struct vdi_seg *sg = &set->c.segs[i];
    const uint8_t *base = atomic_load(&sg->base);
    if (!buf || buf < base || buf >= base + sg->size) continue;
    uint64_t off = (uint64_t)(buf - base);
    if (off % HANDLE_UNIT || off / HANDLE_UNIT >= (1u << 24) ||
        off < set->c.chosen.prefixZoneSize)
      return VD_E_INVALID;
    *handle = ((i + 1) << 24) | (uint32_t)(off / HANDLE_UNIT);
    return 0;
  }
  return VD_E_INVALID;
}

static int map_buffer_handle(vdi_set_t *set, uint32_t handle, uint8_t **buf) {
  *buf = NULL;
  if (set->state == CL_DNE) return VD_E_PROTOCOL;
  uint32_t seg = (handle >> 24);
  if (seg == 0 || seg > VDI_SHM_MAX_SEGMENTS) return VD_E_INVALID;
  seg--;
  /* A handle may name a segment that is announced but still in flight. */
  uint32_t announced = atomic_load(&set->c.hdr->seg_count);
  if (seg >= announced || seg >= VDI_SHM_MAX_SEGMENTS) return VD_E_INVALID;
  uint8_t *base = vdi__seg_get(&set->c, seg);
  if (!base) return VD_E_INVALID;
  uint64_t off = (uint64_t)(handle & 0xFFFFFFu) * HANDLE_UNIT;
  if (off >= set->c.segs[seg].size || off < set->c.chosen.prefixZoneSize)
    return VD_E_INVALID;
  *buf = base + off;
  return 0;
}

/* Counted like the other calls that read the set's mappings. */
int vdi_set_get_buffer_handle(vdi_set_t *set, const uint8_t *buf,
                              uint32_t *handle) {
  if (!set || !handle) return VD_E_INVALID;
  if (!vdi__enter(&set->c, &set->c.calls)) return VD_E_ABORT;
  int rc = get_buffer_handle(set, buf, handle);
  vdi__leave(&set->c.calls);
  return rc;
}

int vdi_set_map_buffer_handle(vdi_set_t *set, uint32_t handle, uint8_t **buf) {
  if (!set || !buf) return VD_E_INVALID;
  if (!vdi__enter(&set->c, &set->c.calls)) return VD_E_ABORT;
  int rc = map_buffer_handle(set, handle, buf);
  vdi__leave(&set->c.calls);
  return rc;
}
