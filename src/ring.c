/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.c - the per-device command ring (server -> client) and completion
 * ring (client -> server), each with exactly one producer and one consumer.
 *
 * Each side keeps the index it owns in private memory (struct
 * vdi_ring_side) and only ever stores it to shared memory: a peer that
 * scribbles over our index cannot make us reuse or skip entries.  The
 * peer's index is loaded once per call and checked: a producer whose tail
 * is more than a ring ahead of our head, or a consumer whose head is ahead
 * of our tail, is a protocol violation.
 */
#include "vdi_int.h"

#include <string.h>

int vdi__cmd_push(struct vdi_shm_dev *d, uint32_t entries,
                  struct vdi_ring_side *rs, const struct vdi_shm_cmd *c) {
  /* Acquire pairs with the client's release of head: the slot we are about
   * to overwrite has been copied out by the client. */
  uint32_t head = atomic_load_explicit(&d->cmd_head, memory_order_acquire);
  uint32_t used = rs->cmd_idx - head;
  if (used > entries) return VD_E_PROTOCOL;
  if (used == entries) return 0;
  vdi_shm_dev_cmds(d)[rs->cmd_idx & (entries - 1)] = *c;
  rs->cmd_idx++;
  /* Release: the entry is visible before the new tail. */
  atomic_store_explicit(&d->cmd_tail, rs->cmd_idx, memory_order_release);
  return 1;
}

int vdi__cmd_peek(struct vdi_shm_dev *d, uint32_t entries,
                  struct vdi_ring_side *rs, struct vdi_shm_cmd *out) {
  /* Acquire pairs with the server's release of tail. */
  uint32_t tail = atomic_load_explicit(&d->cmd_tail, memory_order_acquire);
  uint32_t avail = tail - rs->cmd_idx;
  if (avail > entries) return VD_E_PROTOCOL;
  if (avail == 0) return 0;
  memcpy(out, &vdi_shm_dev_cmds(d)[rs->cmd_idx & (entries - 1)], sizeof *out);
  return 1;
}

int vdi__cmd_pop(struct vdi_shm_dev *d, uint32_t entries,
                 struct vdi_ring_side *rs, struct vdi_shm_cmd *out) {
  int r = vdi__cmd_peek(d, entries, rs, out);
  if (r != 1) return r;
  rs->cmd_idx++;
  /* Release: our copy is complete before the slot is handed back. */
  atomic_store_explicit(&d->cmd_head, rs->cmd_idx, memory_order_release);
  return 1;
}

int vdi__cpl_push(struct vdi_shm_dev *d, uint32_t entries,
                  struct vdi_ring_side *rs, const struct vdi_shm_cpl *c) {
  uint32_t head = atomic_load_explicit(&d->cpl_head, memory_order_acquire);
  uint32_t used = rs->cpl_idx - head;
  if (used > entries) return VD_E_PROTOCOL;
  if (used == entries) return 0;
  vdi_shm_dev_cpls(d, entries)[rs->cpl_idx & (entries - 1)] = *c;
  rs->cpl_idx++;
  atomic_store_explicit(&d->cpl_tail, rs->cpl_idx, memory_order_release);
  return 1;
}

int vdi__cpl_pop(struct vdi_shm_dev *d, uint32_t entries,
                 struct vdi_ring_side *rs, struct vdi_shm_cpl *out) {
  uint32_t tail = atomic_load_explicit(&d->cpl_tail, memory_order_acquire);
  uint32_t avail = tail - rs->cpl_idx;
  if (avail > entries) return VD_E_PROTOCOL;
  if (avail == 0) return 0;
  memcpy(out, &vdi_shm_dev_cpls(d, entries)[rs->cpl_idx & (entries - 1)],
         sizeof *out);
  rs->cpl_idx++;
  atomic_store_explicit(&d->cpl_head, rs->cpl_idx, memory_order_release);
  return 1;
}
