/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bufarea.c - the server's buffer area: segments of [prefix zone][data]
 * buffers, carved per RequestBuffers call, and the allocator over them.
 *
 * Layout of one group of count buffers in a segment (A = the group's data
 * alignment, P = the client's prefix zone):
 *
 *   first  = align_up(cursor + P, A)      data start of buffer 0
 *   stride = align_up(P + size, A)        so every data start is aligned
 *   buffer i data at first + i * stride, its prefix zone the P bytes below
 *
 * Only the server decides where buffers are; the client learns a buffer's
 * place from each command and checks it against the segment's bounds.
 * All bookkeeping is private to the server process.
 */
#include "server_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) & ~(a - 1);
}

void vdi__ba_init(struct bufarea *ba) {
  memset(ba, 0, sizeof *ba);
  pthread_mutex_init(&ba->lock, NULL);
}

/* Only once no call can be inside (Close has drained them). */
void vdi__ba_free(struct bufarea *ba) {
  for (uint32_t i = 0; i < atomic_load(&ba->ngroups); i++)
    free(atomic_load(&ba->groups[i].busy));
  pthread_mutex_destroy(&ba->lock);
  memset(ba, 0, sizeof *ba);
}

int vdi__ba_declare(struct bufarea *ba, uint32_t size, uint32_t align,
                    uint32_t count) {
  if (size == 0 || size > VDI_MAX_MAXTRANSFERSIZE || count == 0 ||
      count > 4096 || !vdi__align_ok(align))
    return VD_E_INVALID;
  pthread_mutex_lock(&ba->lock);
  uint32_t n = atomic_load(&ba->ngroups);
  if (n == VDI_BA_MAX_GROUPS) {
    pthread_mutex_unlock(&ba->lock);
    return VD_E_MEMORY;
  }
  struct ba_group *g = &ba->groups[n];
  atomic_store(&g->busy, NULL); /* not a buffer until committed */
  g->seg = g->nfree = 0;
  g->first = g->stride = 0;
  g->size = size;
  g->align = align;
  g->count = count;
  atomic_store_explicit(&ba->ngroups, n + 1, memory_order_release);
  ba->npending++;
  pthread_mutex_unlock(&ba->lock);
  return 0;
}

/* Pending groups were never published (busy NULL): forget them. */
static void drop_pending(struct bufarea *ba) {
  atomic_fetch_sub(&ba->ngroups, ba->npending);
  ba->npending = 0;
}

/* Unmap the segment just added at idx (the last one). */
static void seg_undo(struct vdi_common *c, uint32_t idx) {
  pthread_mutex_lock(&c->seg_lock);
  struct vdi_seg *s = &c->segs[idx];
  atomic_store(&c->nsegs, idx);
  atomic_store(&s->base, NULL);
  vdi__unmap(&s->map);
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->size = 0;
  pthread_mutex_unlock(&c->seg_lock);
}

int vdi__ba_commit(struct vdi_srvset *srv) {
  struct bufarea *ba = &srv->ba;
  struct vdi_common *c = &srv->c;
  uint32_t prefix = srv->requested.prefixZoneSize;
  pthread_mutex_lock(&ba->lock);
  if (ba->npending == 0) {
    pthread_mutex_unlock(&ba->lock);
    return 0;
  }
  int rc = VD_E_MEMORY;
  /* Busy flags are made here but published only once the segment exists,
   * so that a lock-free lookup never sees a group that may yet vanish. */
  uint8_t *flags[VDI_BA_MAX_GROUPS] = {NULL};
  uint32_t n = atomic_load(&ba->ngroups), first_pending = n - ba->npending;
  if (ba->nsegs >= VDI_SHM_MAX_SEGMENTS) goto fail;
  uint64_t cursor = 0;
  uint32_t seg_align = 4096;
  for (uint32_t i = first_pending; i < n; i++) {
    struct ba_group *g = &ba->groups[i];
    uint32_t a = g->align > srv->alignment ? g->align : srv->alignment;
    g->align = a;
    g->seg = ba->nsegs;
    g->first = align_up(cursor + prefix, a);
    g->stride = align_up((uint64_t)prefix + g->size, a);
    g->nfree = g->count;
    if (!(flags[i] = calloc(g->count, 1))) goto fail;
    cursor = g->first + (uint64_t)(g->count - 1) * g->stride + g->size;
    if (a > seg_align) seg_align = a;
  }
  uint64_t size = align_up(cursor, 4096);
  /* Buffer handles address a segment in 512-byte units with 24 bits. */
  if (size > ((uint64_t)512 << 24)) goto fail;
  int fd;
  if ((rc = vdi__memfd_new("vdi-buffers", size, &fd)) != 0) goto fail;
  uint32_t idx = ba->nsegs;
  if ((rc = vdi__seg_add(c, idx, fd, size, seg_align)) != 0) goto fail;
  /* Hand the segment to the client before anything in shared memory
   * names it, so a command can never refer to a segment not on its way. */
  struct vdi_msg m = {VDI_SHM_MAGIC, VDI_MSG_SEGMENT, idx, seg_align, size};
  if (vdi__send_msg(c->conn_fd, &m, c->segs[idx].fd) != 0) {
    /* Never delivered: take it back, or the next request would find the
     * index taken and the set could never get buffers again.  Not an
     * abort by itself: if the client is gone, the watcher says so. */
    seg_undo(c, idx);
    rc = vdi__aborted(c) ? VD_E_ABORT : VD_E_UNEXPECTED;
    goto fail;
  }
  c->hdr->seg[idx].size = size;
  c->hdr->seg[idx].align = seg_align;
  atomic_store_explicit(&c->hdr->seg_count, idx + 1, memory_order_release);
  for (uint32_t i = first_pending; i < n; i++)
    atomic_store_explicit(&ba->groups[i].busy, flags[i], memory_order_release);
  ba->nsegs++;
  ba->total += size;
  ba->npending = 0;
  pthread_mutex_unlock(&ba->lock);
  return 0;
fail:
  for (uint32_t i = first_pending; i < n; i++)
    free(flags[i]);
  drop_pending(ba);
  pthread_mutex_unlock(&ba->lock);
  return rc;
}

static bool fits(struct ba_group *g, uint32_t size, uint32_t align) {
  return atomic_load(&g->busy) && g->size >= size && g->align >= align;
}

int vdi__ba_alloc(struct vdi_srvset *srv, uint32_t size, uint32_t align,
                  uint8_t **out) {
  struct bufarea *ba = &srv->ba;
  if (size == 0 || !vdi__align_ok(align)) return VD_E_INVALID;
  if (align < srv->alignment) align = srv->alignment;
  pthread_mutex_lock(&ba->lock);
  struct ba_group *best = NULL;
  bool any_fits = false;
  for (uint32_t i = 0; i < atomic_load(&ba->ngroups); i++) {
    struct ba_group *g = &ba->groups[i];
    if (!fits(g, size, align)) continue;
    any_fits = true;
    if (g->nfree && (!best || g->size < best->size)) best = g;
  }
  if (!best) {
    pthread_mutex_unlock(&ba->lock);
    return any_fits ? VD_E_MEMORY : VD_E_INVALID;
  }
  uint8_t *busy = atomic_load(&best->busy);
  uint32_t k = 0;
  while (__atomic_load_n(&busy[k], __ATOMIC_RELAXED))
    k++;
  __atomic_store_n(&busy[k], 1, __ATOMIC_RELEASE);
  best->nfree--;
  *out = atomic_load(&srv->c.segs[best->seg].base) + best->first +
         (uint64_t)k * best->stride;
  pthread_mutex_unlock(&ba->lock);
  return 0;
}

/* Without the lock: SendCommand calls this for every Read and Write, from
 * every device's thread.  Groups never move (a fixed array), a group is
 * seen only once its busy flags are published (acquire), and its other
 * fields do not change after that. */
int vdi__ba_lookup(struct vdi_srvset *srv, const uint8_t *p,
                   struct ba_ref *ref) {
  struct bufarea *ba = &srv->ba;
  uint32_t n = atomic_load_explicit(&ba->ngroups, memory_order_acquire);
  for (uint32_t i = 0; i < n; i++) {
    struct ba_group *g = &ba->groups[i];
    uint8_t *busy = atomic_load_explicit(&g->busy, memory_order_acquire);
    if (!busy) continue;
    const uint8_t *base = atomic_load(&srv->c.segs[g->seg].base);
    if (!p || !base || p < base + g->first) continue;
    uint64_t rel = (uint64_t)(p - base) - g->first;
    if (rel % g->stride || rel / g->stride >= g->count) continue;
    ref->seg = g->seg;
    ref->group = i;
    ref->slot = (uint32_t)(rel / g->stride);
    ref->off = (uint64_t)(p - base);
    ref->size = g->size;
    ref->allocated = __atomic_load_n(&busy[ref->slot], __ATOMIC_ACQUIRE) != 0;
    return 0;
  }
  return VD_E_INVALID;
}

int vdi__ba_release(struct vdi_srvset *srv, uint8_t *p, uint32_t size) {
  struct bufarea *ba = &srv->ba;
  struct ba_ref r;
  pthread_mutex_lock(&ba->lock);
  int rc = vdi__ba_lookup(srv, p, &r);
  if (rc == 0) {
    struct ba_group *g = &ba->groups[r.group];
    uint8_t *busy = atomic_load(&g->busy);
    if (!r.allocated || size > g->size) {
      rc = VD_E_INVALID;
    } else {
      __atomic_store_n(&busy[r.slot], 0, __ATOMIC_RELEASE);
      g->nfree++;
    }
  }
  pthread_mutex_unlock(&ba->lock);
  return rc;
}

uint32_t vdi__ba_available(struct vdi_srvset *srv, uint32_t size,
                           uint32_t align) {
  struct bufarea *ba = &srv->ba;
  if (align < srv->alignment) align = srv->alignment;
  uint32_t n = 0;
  pthread_mutex_lock(&ba->lock);
  for (uint32_t i = 0; i < atomic_load(&ba->ngroups); i++)
    if (fits(&ba->groups[i], size, align)) n += ba->groups[i].nfree;
  pthread_mutex_unlock(&ba->lock);
  return n;
}
