/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common.c - what the client and server halves of a set share: the sticky
 * abort, waking every waiter, counting calls in and out for Close, and the
 * device blocks.  The segment table is in segments.c, the rules in
 * config.c, what concerns finding a set in rendezvous.c.
 */
#include "vdi_int.h"

#include <string.h>
#include <unistd.h>

void vdi__common_init(struct vdi_common *c, int role) {
  memset(c, 0, sizeof *c);
  c->role = role;
  c->ctl_fd = c->listen_fd = c->conn_fd = c->stop_fd = -1;
  pthread_mutex_init(&c->peers_lock, NULL);
  c->trust.uid = geteuid();
  c->trust.group = (gid_t)-1;
}

/* Unmap and close everything; the object can then be used again.  The
 * caller has stopped the watcher, which uses all of it, and released the
 * segment table. */
void vdi__common_release(struct vdi_common *c) {
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
