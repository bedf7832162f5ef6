/*
 * common.c - what the client and server halves of a set share: the sticky
 * abort, waking every waiter, the device blocks, and the table of buffer
 * segments mapped in this process.
 */
#include "vdi_int.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEG_WAIT_MS                                                            \
  5000 /* a segment announced in memory but not yet received */

void vdi__common_init(struct vdi_common *c, int role) {
  memset(c, 0, sizeof *c);
  c->role = role;
  c->ctl_fd = c->listen_fd = c->conn_fd = c->stop_fd = -1;
  for (unsigned i = 0; i < VDI_SHM_MAX_SEGMENTS; i++)
    c->segs[i].fd = -1;
  pthread_mutex_init(&c->seg_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->seg_cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&c->peers_lock, NULL);
  c->trust.uid = geteuid();
  c->trust.group = (gid_t)-1;
}

/* Unmap and close everything; the object can then be used again. */
void vdi__common_release(struct vdi_common *c) {
  vdi__watcher_stop(c);
  for (unsigned i = 0; i < VDI_SHM_MAX_SEGMENTS; i++) {
    struct vdi_seg *s = &c->segs[i];
    vdi__unmap(&s->map);
    if (s->fd >= 0) close(s->fd);
    atomic_store(&s->base, NULL);
    s->fd = -1;
    s->size = 0;
  }
  atomic_store(&c->nsegs, 0);
  vdi__unmap(&c->ctl_map);
  c->hdr = NULL;
  if (c->ctl_fd >= 0) close(c->ctl_fd);
  if (c->listen_fd >= 0) close(c->listen_fd);
  if (c->conn_fd >= 0) close(c->conn_fd);
  c->ctl_fd = c->listen_fd = c->conn_fd = -1;
  atomic_store(&c->abort_code, 0);
  atomic_store(&c->abort_cause, 0);
  atomic_store(&c->closing, false);
  c->server_attached = false;
  c->next_peer_id = 0;
  memset(&c->geom, 0, sizeof c->geom);
  memset(&c->chosen, 0, sizeof c->chosen);
}

struct vdi_shm_dev *vdi__dev(struct vdi_common *c, uint32_t i) {
  return (struct vdi_shm_dev *)(void *)((char *)c->hdr + c->geom.dev_off +
                                        (uint64_t)i * c->geom.dev_stride);
}

void vdi__wake_everyone(struct vdi_common *c) {
  if (c->hdr) {
    vdi__wake_all(&c->hdr->state_seq);
    vdi__wake_all(&c->hdr->agent_seq);
    for (uint32_t i = 0; i < c->geom.dev_count; i++)
      vdi__wake_all(&vdi__dev(c, i)->cmd_seq);
  }
  pthread_mutex_lock(&c->seg_lock);
  pthread_cond_broadcast(&c->seg_cond);
  pthread_mutex_unlock(&c->seg_lock);
}

void vdi__abort(struct vdi_common *c, int code, uint32_t cause) {
  int zero = 0;
  atomic_compare_exchange_strong(&c->abort_code, &zero, code);
  uint32_t z = 0;
  atomic_compare_exchange_strong(&c->abort_cause, &z, cause);
  if (c->hdr) {
    z = 0;
    atomic_compare_exchange_strong(&c->hdr->abort_cause, &z, cause);
  }
  vdi__wake_everyone(c);
}

int vdi__aborted(struct vdi_common *c) {
  int code = vdi__abort_code(c);
  if (code) return code;
  /* Close is under way: calls still inside must leave. */
  if (atomic_load(&c->closing)) return VD_E_ABORT;
  return 0;
}

bool vdi__enter(struct vdi_common *c, _Atomic uint32_t *counter) {
  /* seq_cst on both sides (here and in Close): either Close sees this call
   * counted, or this call sees Close's flag. */
  atomic_fetch_add(counter, 1);
  if (atomic_load(&c->closing)) {
    atomic_fetch_sub(counter, 1);
    return false;
  }
  return true;
}

void vdi__wait_calls_out(struct vdi_common *c) {
  for (;;) {
    uint32_t n = atomic_load(&c->calls);
    for (unsigned i = 0; i < VDI_MAX_DEVICES; i++)
      n += atomic_load(&c->dev_calls[i].n);
    if (n == 0) return;
    vdi__wake_everyone(c); /* a call may be asleep in a wait */
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
}

int vdi__abort_code(struct vdi_common *c) {
  int code = atomic_load_explicit(&c->abort_code, memory_order_acquire);
  if (code) return code;
  if (c->hdr &&
      atomic_load_explicit(&c->hdr->abort_cause, memory_order_acquire) != 0) {
    /* The peer posted an abort.  Make it ours, so that a peer that later
     * clears the word cannot revive the set. */
    int zero = 0;
    uint32_t cause = atomic_load(&c->hdr->abort_cause), z = 0;
    atomic_compare_exchange_strong(&c->abort_code, &zero, VD_E_ABORT);
    atomic_compare_exchange_strong(&c->abort_cause, &z, cause);
    return atomic_load(&c->abort_code);
  }
  return 0;
}

int vdi__seg_add(struct vdi_common *c, uint32_t idx, int fd, uint64_t size,
                 uint32_t align) {
  int rc = VD_E_PROTOCOL;
  pthread_mutex_lock(&c->seg_lock);
  if (idx != atomic_load(&c->nsegs) || idx >= VDI_SHM_MAX_SEGMENTS) goto fail;
  if (!vdi__segment_ok(size, align)) goto fail;
  if ((rc = vdi__memfd_check(fd, size)) != 0) goto fail;
  struct vdi_seg *s = &c->segs[idx];
  if ((rc = vdi__map_fd(fd, size, align, &s->map)) != 0) goto fail;
  s->fd = fd;
  s->size = size;
  s->align = align;
  atomic_store_explicit(&s->base, s->map.base, memory_order_release);
  atomic_store_explicit(&c->nsegs, idx + 1, memory_order_release);
  pthread_cond_broadcast(&c->seg_cond);
  pthread_mutex_unlock(&c->seg_lock);
  return 0;
fail:
  pthread_mutex_unlock(&c->seg_lock);
  close(fd);
  return rc;
}

uint8_t *vdi__seg_get(struct vdi_common *c, uint32_t idx) {
  if (idx >= VDI_SHM_MAX_SEGMENTS) return NULL;
  if (idx < atomic_load_explicit(&c->nsegs, memory_order_acquire))
    return atomic_load_explicit(&c->segs[idx].base, memory_order_acquire);
  /* Announced in shared memory but its descriptor is still in flight on
   * the socket: the watcher maps it in a moment. */
  struct timespec at;
  clock_gettime(CLOCK_MONOTONIC, &at);
  at.tv_sec += SEG_WAIT_MS / 1000;
  uint8_t *base = NULL;
  pthread_mutex_lock(&c->seg_lock);
  while (idx >= atomic_load(&c->nsegs) && !vdi__aborted(c)) {
    if (pthread_cond_timedwait(&c->seg_cond, &c->seg_lock, &at) == ETIMEDOUT)
      break;
  }
  if (idx < atomic_load(&c->nsegs)) base = atomic_load(&c->segs[idx].base);
  pthread_mutex_unlock(&c->seg_lock);
  return base;
}

int vdi__attach_control(struct vdi_common *c, int fd, uint64_t size) {
  int rc = vdi__memfd_check(fd, size);
  if (rc) return rc;
  if (size < VDI_SHM_DEV_OFF || size > (1u << 30)) return VD_E_PROTOCOL;
  if ((rc = vdi__map_fd(fd, size, 4096, &c->ctl_map)) != 0) return rc;
  c->hdr = (struct vdi_shm_hdr *)(void *)c->ctl_map.base;
  if ((rc = vdi__shm_validate(c->hdr, size, &c->geom)) != 0) {
    vdi__unmap(&c->ctl_map);
    c->hdr = NULL;
    return rc;
  }
  c->ctl_fd = fd;
  return 0;
}

/* A server or secondary checks who listens under the name before trusting
 * the memory it hands out: its own user, root, or a group it belongs to.
 * Anyone else is squatting on the name. */
int vdi__listener_trusted(int fd) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
    return VD_E_SECURITY;
  if (cr.uid == geteuid() || cr.uid == 0) return 0;
  /* Another user's set only when this process was told to trust that
   * user's group ($VDI_TRUST_GROUP, a numeric gid): a group merely shared
   * (say "users") must not let anyone squat a name and receive our data. */
  const char *g = getenv("VDI_TRUST_GROUP");
  if (g && *g) {
    char *end;
    unsigned long gid = strtoul(g, &end, 10);
    if (*end == 0 && cr.gid == (gid_t)gid) return 0;
  }
  return VD_E_SECURITY;
}

/* The control segment's first device carries the set's name: checked on
 * attach, so that a hashed socket name can never connect us to another
 * set. */
int vdi__check_set_name(struct vdi_common *c) {
  char nm[VDI_SHM_NAME_BYTES];
  memcpy(nm, vdi__dev(c, 0)->name, sizeof nm);
  nm[sizeof nm - 1] = 0;
  return strcmp(nm, c->name) == 0 ? 0 : VD_E_PROTOCOL;
}
