/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client_int.h - the private objects of the client half: the set
 * (IClientVirtualDeviceSet2) and its devices (IClientVirtualDevice).
 */
#ifndef OPENVDI_CLIENT_INT_H
#define OPENVDI_CLIENT_INT_H

#include "vdi_int.h"

enum client_state {
  CL_DNE = 0,
  CL_CONFIGURABLE,
  CL_INITIALIZING,
  CL_ACTIVE,
  CL_TERMINATED
};

/* A command handed to the application: VDC_Command first, so the pointer
 * the application holds is the slot's address. */
struct cl_slot {
  VDC_Command cmd;
  uint32_t tag;
  bool busy;
};

struct vdi_device {
  struct vdi_set *set;
  uint32_t idx;
  struct vdi_shm_dev *sd;
  pthread_mutex_t lock; /* ring side, slots, io_error */
  struct vdi_ring_side rs;
  _Atomic bool opened;
  _Atomic bool closed; /* saw VD_E_CLOSE */
  bool io_error;       /* completed with an error, not yet cleared */
  uint32_t outstanding;
  struct cl_slot *slots; /* ring_entries of them */
};

struct vdi_set {
  struct vdi_common c;
  pthread_mutex_t lock;    /* state, device table */
  _Atomic int state;       /* enum client_state (abort is in c); atomic:
                            * the handle calls read it unlocked */
  struct vdi_device *devs; /* geom.dev_count */
  uint32_t nopened, nclosed;
  VDConfig requested; /* private copy */
};

VDI_INTERNAL void vdi__client_dev_init(struct vdi_set *set, uint32_t i);
VDI_INTERNAL void vdi__client_dev_free(struct vdi_device *d);

#endif
