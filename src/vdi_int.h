/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdi_int.h - internal declarations shared by src/ files (vdi__ names).
 *
 * Divisions, in the order of the layers of DESIGN.md:
 *   sys.c        system calls behind one table, so tests can make them fail
 *   wait.c       deadlines, spin-then-futex waits on shared words
 *   shm.c        memfds: create, seal, check, map aligned; header validation
 *   config.c     every configuration and name rule, for both halves
 *   ring.c       command and completion rings (one producer, one consumer)
 *   rendezvous.c abstract-socket naming, messages with fds, peer credentials,
 *                the attaching side's checks of the listener and the name
 *   watcher.c    the per-set thread that serves the socket and notices death
 *   common.c     what both halves of a set share: abort, call counting
 *   segments.c   the table of buffer segments mapped in this process
 *   client_set.c, client_dev.c  IClientVirtualDeviceSet2, IClientVirtualDevice
 *   server_set.c, server_dev.c  IServerVirtualDeviceSet2, IServerVirtualDevice
 *   bufarea.c    the server's allocator over the buffer segments
 */
#ifndef OPENVDI_VDI_INT_H
#define OPENVDI_VDI_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "vdi.h"
#include "vdi_shm.h"

#define VDI_INTERNAL __attribute__((visibility("hidden")))

/* ------------------------------------------------------------ sys.c */

enum vdi_sys_op {
  VDI_SYS_MMAP,
  VDI_SYS_MEMFD,
  VDI_SYS_FTRUNCATE,
  VDI_SYS_SOCKET,
  VDI_SYS_SENDMSG,
  VDI_SYS_RECVMSG,
  VDI_SYS_FUTEX,
  VDI_SYS_THREAD,
  VDI_SYS_ALLOC,
  VDI_SYS_COUNT
};
/* Test hook: the nth call (1-based) of op fails from now on; 0 disables.
 * Also settable with $VDI_FAULT_INJECT="op:n" (op names as in sys.c). */
VDI_INTERNAL void vdi__fault_set(enum vdi_sys_op op, uint64_t nth);
VDI_INTERNAL uint64_t vdi__fault_calls(enum vdi_sys_op op);
VDI_INTERNAL bool vdi__fault_hit(enum vdi_sys_op op);

VDI_INTERNAL void *vdi__mmap(void *addr, size_t len, int prot, int flags,
                             int fd, off_t off);
VDI_INTERNAL int vdi__memfd_create(const char *name, unsigned flags);
VDI_INTERNAL int vdi__ftruncate(int fd, off_t len);
VDI_INTERNAL int vdi__socket(int domain, int type, int proto);
VDI_INTERNAL ssize_t vdi__sendmsg(int fd, const struct msghdr *m, int flags);
VDI_INTERNAL ssize_t vdi__recvmsg(int fd, struct msghdr *m, int flags);
VDI_INTERNAL int vdi__thread_create(pthread_t *t, void *(*fn)(void *),
                                    void *arg);
VDI_INTERNAL void *vdi__calloc(size_t n, size_t size);

/* ------------------------------------------------------------ wait.c */

struct vdi_deadline {
  bool infinite;
  struct timespec at; /* CLOCK_MONOTONIC */
};
VDI_INTERNAL void vdi__deadline_init(struct vdi_deadline *dl,
                                     int64_t timeout_ms);
VDI_INTERNAL bool vdi__deadline_passed(const struct vdi_deadline *dl);
VDI_INTERNAL int64_t vdi__now_ns(void);

/* Returns 0 while not ready, anything else to stop waiting. */
typedef int (*vdi_ready_fn)(void *arg);
/* Spin, then sleep on *seq until ready() is non-zero (returned) or the
 * deadline passes (VD_E_TIMEOUT).  *sleepers tells producers to wake. */
VDI_INTERNAL int vdi__wait(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers,
                           vdi_ready_fn ready, void *arg,
                           const struct vdi_deadline *dl);
/* After publishing work: wake sleepers, with no system call when there
 * are none. */
VDI_INTERNAL void vdi__notify(_Atomic uint32_t *seq,
                              _Atomic uint32_t *sleepers);
/* Unconditional: bump and wake every waiter. */
VDI_INTERNAL void vdi__wake_all(_Atomic uint32_t *seq);
VDI_INTERNAL void vdi__wake_all_for_tests(_Atomic uint32_t *seq);
/* System calls made so far by this process's waits (tests, benchmarks):
 * FUTEX_WAKEs here, FUTEX_WAITs in vdi__fault_calls(VDI_SYS_FUTEX). */
VDI_INTERNAL uint64_t vdi__futex_wakes(void);
VDI_INTERNAL uint64_t vdi__yields(void);

/* ------------------------------------------------------------ shm.c */

VDI_INTERNAL int vdi__memfd_new(const char *tag, uint64_t size, int *fd_out);
VDI_INTERNAL int vdi__memfd_check(int fd, uint64_t size);
struct vdi_mapping {
  uint8_t *base;  /* aligned start of the segment's bytes */
  void *map_base; /* what to munmap */
  size_t map_len;
};
VDI_INTERNAL int vdi__map_fd(int fd, uint64_t size, uint32_t align,
                             struct vdi_mapping *m);
VDI_INTERNAL void vdi__unmap(struct vdi_mapping *m);

/* What a validated header says; used instead of the shared copy. */
struct vdi_geom {
  uint64_t total_size;
  uint32_t dev_count;
  uint32_t ring_entries;
  uint64_t dev_off;
  uint32_t dev_stride;
};
VDI_INTERNAL uint64_t vdi__shm_size(uint32_t dev_count);
VDI_INTERNAL void vdi__shm_init(struct vdi_shm_hdr *h, uint64_t size,
                                uint32_t dev_count, const VDConfig *req);
VDI_INTERNAL int vdi__shm_validate(const struct vdi_shm_hdr *h,
                                   uint64_t mapped_size, struct vdi_geom *g);

/* ------------------------------------------------------------ config.c */

/* Largest buffer segment a peer may hand us. */
#define VDI_MAX_SEGMENT_SIZE ((uint64_t)1 << 36)

VDI_INTERNAL bool vdi__pow2(uint32_t x);
/* 0 (no preference) or a power of two up to VDI_MAX_ALIGNMENT. */
VDI_INTERNAL bool vdi__align_ok(uint32_t align);
/* A set, device or instance name: 0 or VD_E_INVALID. */
VDI_INTERNAL int vdi__name_check(const char *name);
/* The client's request: 0, VD_E_INVALID or VD_E_NOTSUPPORTED (a server
 * reading it from shared memory treats any failure as VD_E_PROTOCOL). */
VDI_INTERNAL int vdi__config_check_client(const VDConfig *cfg);
/* The server's choice for a request (alignment before it is raised to the
 * client's minimum). */
VDI_INTERNAL bool vdi__config_choice_ok(const VDConfig *req, uint32_t features,
                                        uint32_t block_size, uint32_t alignment,
                                        uint32_t max_transfer_size);
/* The configuration a server published: 0 or VD_E_PROTOCOL. */
VDI_INTERNAL int vdi__config_check_chosen(const VDConfig *req,
                                          const VDConfig *cho);
/* A buffer segment announced by the server. */
VDI_INTERNAL bool vdi__segment_ok(uint64_t size, uint32_t align);

/* ------------------------------------------------------------ ring.c */

/* Private ring state of one side of one device: the indices this side owns
 * are kept here and only written to shared memory, never read back. */
struct vdi_ring_side {
  uint32_t cmd_idx; /* server: cmd tail; client: cmd head */
  uint32_t cpl_idx; /* client: cpl tail; server: cpl head */
};
/* 1 = pushed, 0 = full; VD_E_PROTOCOL if the peer's index is impossible. */
VDI_INTERNAL int vdi__cmd_push(struct vdi_shm_dev *d, uint32_t entries,
                               struct vdi_ring_side *rs,
                               const struct vdi_shm_cmd *c);
/* 1 = popped into *out, 0 = empty, VD_E_PROTOCOL. */
VDI_INTERNAL int vdi__cmd_pop(struct vdi_shm_dev *d, uint32_t entries,
                              struct vdi_ring_side *rs,
                              struct vdi_shm_cmd *out);
/* Peek without consuming: 1 = *out holds the next entry. */
VDI_INTERNAL int vdi__cmd_peek(struct vdi_shm_dev *d, uint32_t entries,
                               struct vdi_ring_side *rs,
                               struct vdi_shm_cmd *out);
VDI_INTERNAL int vdi__cpl_push(struct vdi_shm_dev *d, uint32_t entries,
                               struct vdi_ring_side *rs,
                               const struct vdi_shm_cpl *c);
VDI_INTERNAL int vdi__cpl_pop(struct vdi_shm_dev *d, uint32_t entries,
                              struct vdi_ring_side *rs,
                              struct vdi_shm_cpl *out);

/* ------------------------------------------------------------ rendezvous.c */

enum vdi_msg_type {
  VDI_MSG_ATTACH = 1,  /* peer -> primary: arg = role */
  VDI_MSG_CONTROL = 2, /* primary -> peer: fd = control memfd, arg = id */
  VDI_MSG_SEGMENT = 3, /* fd = buffer memfd, arg = index, size, arg2 = align */
  VDI_MSG_REJECT = 4,  /* primary -> peer: arg = VD_E_* code */
};
enum vdi_role { VDI_ROLE_SERVER = 1, VDI_ROLE_SECONDARY = 2 };

struct vdi_msg {
  uint32_t magic; /* VDI_SHM_MAGIC */
  uint32_t type;
  uint32_t arg;
  uint32_t arg2;
  uint64_t size;
};

struct vdi_trust {
  uid_t uid;   /* our effective uid */
  gid_t group; /* extra group allowed by the creator, or (gid_t)-1 */
};

VDI_INTERNAL int vdi__sock_name(const char *instance, const char *set,
                                struct sockaddr_un *sa, socklen_t *len);
VDI_INTERNAL int vdi__listen(const char *instance, const char *set, int *fd);
VDI_INTERNAL int vdi__connect(const char *instance, const char *set, int *fd);
VDI_INTERNAL int vdi__send_msg(int fd, const struct vdi_msg *m, int pass_fd);
/* 1 = message, 0 = orderly EOF, -EAGAIN, or a negative VD_E_*; *fd_out is
 * -1 unless one fd arrived (more than one, or unexpected ones, are closed). */
VDI_INTERNAL int vdi__recv_msg(int fd, struct vdi_msg *m, int *fd_out);
VDI_INTERNAL int vdi__recv_msg_timeout(int fd, struct vdi_msg *m, int *fd_out,
                                       int timeout_ms);
/* 0 if the peer on a connected socket may talk to us. */
VDI_INTERNAL int vdi__peer_trusted(int fd, const struct vdi_trust *t,
                                   pid_t *pid_out);

/* ------------------------------------------------------------ common.c */

struct vdi_seg {
  _Atomic(uint8_t *) base; /* published after the mapping is complete */
  uint64_t size;
  uint32_t align;
  int fd;
  struct vdi_mapping map;
};

struct vdi_peer; /* watcher.c */

/* What both halves of a set share. */
struct vdi_common {
  int role; /* 0 = client primary, 1 = server, 2 = secondary */
  char name[VDI_SHM_NAME_BYTES];
  char instance[VDI_SHM_NAME_BYTES];
  struct vdi_shm_hdr *hdr; /* the control segment */
  struct vdi_mapping ctl_map;
  int ctl_fd;
  struct vdi_geom geom;   /* validated copy */
  VDConfig chosen;        /* validated copy (client: after config) */
  _Atomic int abort_code; /* sticky: 0 or VD_E_ABORT / VD_E_PROTOCOL */
  _Atomic uint32_t abort_cause;
  _Atomic bool closing;   /* Close is waiting for calls in progress */
  _Atomic uint32_t calls; /* set-level calls in progress (Close waits) */
  /* Device calls in progress, one counter per device, 64 bytes apart so
   * that devices driven by different threads share no cache line. */
  struct {
    _Atomic uint32_t n;
    char pad[60];
  } dev_calls[VDI_MAX_DEVICES];

  /* buffer segments */
  pthread_mutex_t seg_lock;
  pthread_cond_t seg_cond;
  struct vdi_seg segs[VDI_SHM_MAX_SEGMENTS];
  _Atomic uint32_t nsegs; /* segments mapped here (published in order) */

  /* rendezvous and liveness (watcher.c) */
  struct vdi_trust trust;
  int listen_fd; /* primary only */
  int conn_fd;   /* server/secondary: to the primary */
  int stop_fd;   /* eventfd that stops the watcher */
  pthread_t watcher;
  bool watcher_running;
  pthread_mutex_t peers_lock;
  struct vdi_peer *peers; /* primary: connected server and secondaries */
  bool server_attached;
  uint32_t next_peer_id;
  uint32_t my_id;          /* client process id within the set: 1 primary */
  _Atomic bool configured; /* primary: GetConfiguration succeeded */
  bool (*normal_end)(struct vdi_common *c); /* is a hang-up harmless now? */
};

VDI_INTERNAL void vdi__common_init(struct vdi_common *c, int role);
VDI_INTERNAL void vdi__common_release(struct vdi_common *c);
/* Abort the set: first cause wins; wakes every waiter of every process. */
VDI_INTERNAL void vdi__abort(struct vdi_common *c, int code, uint32_t cause);
/* The sticky code, also picking up an abort the peer posted in memory;
 * VD_E_ABORT too while Close is under way (waits must return). */
VDI_INTERNAL int vdi__aborted(struct vdi_common *c);
/* The sticky code alone, whatever Close is doing. */
VDI_INTERNAL int vdi__abort_code(struct vdi_common *c);
/* Count a call in (false, uncounted, if Close is under way); leave with
 * vdi__leave.  Close waits until every counter is back to zero. */
VDI_INTERNAL bool vdi__enter(struct vdi_common *c, _Atomic uint32_t *counter);
static inline void vdi__leave(_Atomic uint32_t *counter) {
  atomic_fetch_sub_explicit(counter, 1, memory_order_release);
}
/* Close, once `closing` is set: wait until every counted call has left. */
VDI_INTERNAL void vdi__wait_calls_out(struct vdi_common *c);
VDI_INTERNAL void vdi__wake_everyone(struct vdi_common *c);
VDI_INTERNAL struct vdi_shm_dev *vdi__dev(struct vdi_common *c, uint32_t i);

/* ------------------------------------------------------------ segments.c */

/* Called by each half after vdi__common_init and before
 * vdi__common_release (once the watcher has stopped). */
VDI_INTERNAL void vdi__segs_init(struct vdi_common *c);
VDI_INTERNAL void vdi__segs_release(struct vdi_common *c);
/* Map segment idx from fd (takes ownership of fd). */
VDI_INTERNAL int vdi__seg_add(struct vdi_common *c, uint32_t idx, int fd,
                              uint64_t size, uint32_t align);
/* Wait (bounded) until segment idx is mapped here; its base or NULL. */
VDI_INTERNAL uint8_t *vdi__seg_get(struct vdi_common *c, uint32_t idx);
/* Server or secondary: map and validate the control segment received. */
VDI_INTERNAL int vdi__attach_control(struct vdi_common *c, int fd,
                                     uint64_t size);

/* ------------------------------------------------- rendezvous.c, attach */

/* Server or secondary: is the listener under the name one we may trust? */
VDI_INTERNAL int vdi__listener_trusted(int fd);
/* Does the attached control segment belong to the set we asked for? */
VDI_INTERNAL int vdi__check_set_name(struct vdi_common *c);

/* ------------------------------------------------------------ watcher.c */

VDI_INTERNAL int vdi__watcher_start(struct vdi_common *c);
VDI_INTERNAL void vdi__watcher_stop(struct vdi_common *c);
/* Primary: send a new segment to every secondary (watcher thread). */
VDI_INTERNAL void vdi__peers_forward_segment(struct vdi_common *c,
                                             uint32_t idx);
/* Does a live secondary hold devices?  Used on its death. */
VDI_INTERNAL bool vdi__owner_has_open_devices(struct vdi_common *c,
                                              uint32_t id);

#endif
