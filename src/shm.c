/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shm.c - shared memory: memfds (create, seal, check), aligned mappings,
 * and the validation of a control segment written by someone else.
 *
 * Segments are memfds, never names in /dev/shm: they vanish with the last
 * descriptor and mapping, whatever process dies.  The creator seals them
 * against shrinking and growing before handing them out, and the receiver
 * checks the seals and the size before mapping, so a peer can never make
 * our accesses fault (SIGBUS) by truncating the file under us.
 */
#include "vdi_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int vdi__memfd_new(const char *tag, uint64_t size, int *fd_out) {
  int fd = vdi__memfd_create(tag, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return errno == ENOMEM ? VD_E_MEMORY : VD_E_UNEXPECTED;
  /* memfds are created 0777 & ~umask by some kernels; the fd is only ever
   * passed to checked peers, but keep the mode tight regardless of umask. */
  if (fchmod(fd, 0600) != 0) goto fail;
  if (vdi__ftruncate(fd, (off_t)size) != 0) goto fail;
  if (fcntl(fd, F_ADD_SEALS, SEALS) != 0) goto fail;
  *fd_out = fd;
  return 0;
fail:
  close(fd);
  return VD_E_MEMORY;
}

int vdi__memfd_check(int fd, uint64_t size) {
  struct stat st;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 ||
      (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    return VD_E_PROTOCOL;
    /* A write seal would make our shared writable mapping fail: that is the
     * peer's doing, not a lack of memory. */
#ifdef F_SEAL_FUTURE_WRITE
  if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return VD_E_PROTOCOL;
#else
  if (seals & F_SEAL_WRITE) return VD_E_PROTOCOL;
#endif
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return VD_E_PROTOCOL;
  if ((uint64_t)st.st_size != size) return VD_E_PROTOCOL;
  return 0;
}

int vdi__map_fd(int fd, uint64_t size, uint32_t align, struct vdi_mapping *m) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (align < page) align = (uint32_t)page;
  if (size == 0 || size > (uint64_t)SIZE_MAX / 2) return VD_E_INVALID;
  /* Alignment up to 64 KiB exceeds the page size: reserve room, then map
   * the file at an aligned address inside the reservation. */
  size_t len = (size_t)size, rsv = len + align;
  void *r = vdi__mmap(NULL, rsv, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return VD_E_MEMORY;
  uintptr_t at = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
  void *p = vdi__mmap((void *)at, len, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    munmap(r, rsv);
    return VD_E_MEMORY;
  }
  m->base = p;
  m->map_base = r;
  m->map_len = rsv;
  return 0;
}

void vdi__unmap(struct vdi_mapping *m) {
  if (m->map_base) munmap(m->map_base, m->map_len);
  memset(m, 0, sizeof *m);
}

uint64_t vdi__shm_size(uint32_t dev_count) {
  uint64_t s = VDI_SHM_DEV_OFF +
               (uint64_t)dev_count * VDI_SHM_DEV_STRIDE(VDI_SHM_RING_ENTRIES);
  return (s + 4095) & ~(uint64_t)4095;
}

void vdi__shm_init(struct vdi_shm_hdr *h, uint64_t size, uint32_t dev_count,
                   const VDConfig *req) {
  /* The memfd is zero-filled; only non-zero fields are written. */
  h->version = VDI_SHM_VERSION;
  h->layout = vdi__shm_layout_word();
  h->hdr_size = (uint32_t)sizeof *h;
  h->total_size = size;
  h->dev_count = dev_count;
  h->ring_entries = VDI_SHM_RING_ENTRIES;
  h->dev_off = VDI_SHM_DEV_OFF;
  h->dev_stride = VDI_SHM_DEV_STRIDE(VDI_SHM_RING_ENTRIES);
  h->creator_pid = (uint32_t)getpid();
  h->requested = *req;
  atomic_store(&h->state, VDI_ST_CREATED);
  atomic_store(&h->client_close, VDI_CLOSE_OPEN);
  /* Publish: a reader that sees the magic (acquire, in vdi__shm_validate)
   * sees everything above. */
  atomic_store_explicit(&h->magic, VDI_SHM_MAGIC, memory_order_release);
}

int vdi__shm_validate(const struct vdi_shm_hdr *h, uint64_t mapped_size,
                      struct vdi_geom *g) {
  /* Copy each field once; check the copy; use only the copy afterwards. */
  uint32_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
  if (magic != VDI_SHM_MAGIC) return VD_E_PROTOCOL;
  uint32_t version = h->version, layout = h->layout, hdr_size = h->hdr_size;
  if (version != VDI_SHM_VERSION || layout != vdi__shm_layout_word() ||
      hdr_size != sizeof *h)
    return VD_E_PROTOCOL;
  g->total_size = h->total_size;
  g->dev_count = h->dev_count;
  g->ring_entries = h->ring_entries;
  g->dev_off = h->dev_off;
  g->dev_stride = h->dev_stride;
  if (g->total_size != mapped_size) return VD_E_PROTOCOL;
  if (g->dev_count < 1 || g->dev_count > VDI_MAX_DEVICES) return VD_E_PROTOCOL;
  if (g->ring_entries != VDI_SHM_RING_ENTRIES) return VD_E_PROTOCOL;
  if (g->dev_off != VDI_SHM_DEV_OFF) return VD_E_PROTOCOL;
  if (g->dev_stride != VDI_SHM_DEV_STRIDE(g->ring_entries))
    return VD_E_PROTOCOL;
  if (g->dev_off + (uint64_t)g->dev_count * g->dev_stride > g->total_size)
    return VD_E_PROTOCOL;
  return 0;
}
