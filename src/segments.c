/* SPDX-License-Identifier: Apache-2.0 */
/*
 * segments.c - the table of buffer segments mapped in this process, and
 * the mapping of the control segment a server or secondary receives.
 *
 * The watcher thread adds a segment when its memfd arrives on the socket;
 * device calls read the table without a lock (bases are published with
 * release semantics, in index order) and wait, bounded, for a segment the
 * shared memory announces before its descriptor has arrived.
 */
#include "vdi_int.h"

#include <errno.h>
#include <unistd.h>

#define SEG_WAIT_MS                                                            \
  5000 /* a segment announced in memory but not yet received */

void vdi__segs_init(struct vdi_common *c) {
  for (unsigned i = 0; i < VDI_SHM_MAX_SEGMENTS; i++)
    c->segs[i].fd = -1;
  pthread_mutex_init(&c->seg_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->seg_cond, &ca);
  pthread_condattr_destroy(&ca);
}

void vdi__segs_release(struct vdi_common *c) {
  for (unsigned i = 0; i < VDI_SHM_MAX_SEGMENTS; i++) {
    struct vdi_seg *s = &c->segs[i];
    vdi__unmap(&s->map);
    if (s->fd >= 0) close(s->fd);
    atomic_store(&s->base, NULL);
    s->fd = -1;
    s->size = 0;
  }
  atomic_store(&c->nsegs, 0);
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
