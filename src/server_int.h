/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_int.h - the private objects of the server half: the set
 * (IServerVirtualDeviceSet2), its devices (IServerVirtualDevice), and the
 * buffer-area allocator.
 */
#ifndef OPENVDI_SERVER_INT_H
#define OPENVDI_SERVER_INT_H

#include "vdi_int.h"

enum server_state {
  SV_DNE = 0,
  SV_CONNECTED,
  SV_CONFIGURABLE,
  SV_INITIALIZING,
  SV_ACTIVE,
  SV_TERMINATED
};

/* One RequestBuffers call: count buffers of size bytes in one segment.
 * Written under bufarea.lock; once busy is published (release) the other
 * fields never change, so SendCommand's lookup reads them without the lock.
 * busy[k] (one byte per buffer) is written under the lock, read atomically. */
struct ba_group {
  uint32_t seg;
  uint32_t size, align, count, nfree;
  uint64_t first;          /* offset of buffer 0's data in the segment */
  uint64_t stride;         /* distance between data starts */
  _Atomic(uint8_t *) busy; /* NULL until the group's segment exists */
};

#define VDI_BA_MAX_GROUPS 256 /* RequestBuffers calls per set */

struct bufarea {
  pthread_mutex_t lock; /* allocation, freeing, new groups */
  struct ba_group groups[VDI_BA_MAX_GROUPS]; /* fixed: never moves */
  _Atomic uint32_t ngroups; /* published after a group is filled in */
  uint32_t npending;        /* declared, segment not made yet (the last) */
  uint32_t nsegs;
  uint64_t total; /* bytes in all segments */
};

/* Where a buffer address lives. */
struct ba_ref {
  uint32_t seg, group, slot;
  uint64_t off;
  uint32_t size; /* the buffer's data bytes */
  bool allocated;
};

/* A command in flight, as the server remembers it (never from shm). */
struct sv_slot {
  VDS_Command *cmd;
  uint32_t gen;
  bool busy;
};

struct vdi_srvdev {
  struct vdi_srvset *srv;
  uint32_t idx;
  struct vdi_shm_dev *sd;
  pthread_mutex_t lock;    /* slots, cmd ring side */
  struct vdi_ring_side rs; /* cmd_idx under lock; cpl_idx agent-only */
  bool opened;
  _Atomic bool closed;
  _Atomic bool io_error;
  uint32_t outstanding, gen;
  struct sv_slot slots[VDI_SHM_RING_ENTRIES];
};

struct vdi_srvset {
  struct vdi_common c;
  pthread_mutex_t lock; /* state, devices, agent bookkeeping */
  pthread_cond_t agent_cond;
  _Atomic int state;  /* enum server_state; atomic: FreeBuffer and
                       * IsSharedBuffer read it unlocked */
  VDConfig requested; /* validated copy of the client's request */
  uint32_t features, block_size, alignment, max_transfer;
  struct bufarea ba;
  struct vdi_srvdev *devs;
  uint32_t nopened;
  _Atomic uint32_t nclosed; /* read by the agent and the watcher */
  bool agent_running;
  _Atomic bool closing;
  _Atomic uint32_t in_flight;    /* commands outstanding on all devices */
  _Atomic int64_t busy_since_ns; /* when in_flight last rose from zero */
};

VDI_INTERNAL void vdi__ba_init(struct bufarea *ba);
VDI_INTERNAL void vdi__ba_free(struct bufarea *ba);
VDI_INTERNAL int vdi__ba_declare(struct bufarea *ba, uint32_t size,
                                 uint32_t align, uint32_t count);
/* Lay out the pending groups in a new segment, create and share it. */
VDI_INTERNAL int vdi__ba_commit(struct vdi_srvset *srv);
VDI_INTERNAL int vdi__ba_alloc(struct vdi_srvset *srv, uint32_t size,
                               uint32_t align, uint8_t **out);
VDI_INTERNAL int vdi__ba_lookup(struct vdi_srvset *srv, const uint8_t *p,
                                struct ba_ref *ref);
VDI_INTERNAL int vdi__ba_release(struct vdi_srvset *srv, uint8_t *p,
                                 uint32_t size);
VDI_INTERNAL uint32_t vdi__ba_available(struct vdi_srvset *srv, uint32_t size,
                                        uint32_t align);

/* server_dev.c */
VDI_INTERNAL void vdi__srv_fail_all(struct vdi_srvset *srv);
/* Take every completion waiting in the rings (no agent may be running). */
VDI_INTERNAL void vdi__srv_drain_all(struct vdi_srvset *srv);
/* True on the completion agent's thread (its routines run there). */
VDI_INTERNAL bool vdi__srv_in_agent(void);

#endif
