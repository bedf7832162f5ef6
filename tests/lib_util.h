/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib_util.h - small helpers shared by the core's robustness tests: a
 * minimal server and client driven by arguments, and access to the raw
 * shared region (to scribble on it, as a hostile peer would).
 */
#ifndef OPENVDI_LIB_UTIL_H
#define OPENVDI_LIB_UTIL_H

#include "vdi.h"
#include "vdi_shm.h"
#include "vdi_int.h"

/* A server set opened on `name`, retrying for up to 5 s while the set
 * does not exist yet (its client may still be starting). */
vdi_srvset_t *lu_server_open_wait(const char *name);
/* Open and configure a server for `name` (retrying while the set does not
 * exist yet), with one buffer of `size` per device; opens every device. */
vdi_srvset_t *lu_server_setup(const char *name, uint32_t ndev, uint32_t size,
                              vdi_srvdev_t **devs);
/* The same with nbuf buffers in all. */
vdi_srvset_t *lu_server_setup_n(const char *name, uint32_t ndev, uint32_t size,
                                uint32_t nbuf, vdi_srvdev_t **devs);
/* The name of device i of set `name`, as the tests name them: the set's
 * own name for the first, "name_i" for the others. */
void lu_dev_name(char *out, size_t n, const char *name, uint32_t i);
/* The control segment as mapped in this process (from /proc/self/maps). */
struct vdi_shm_hdr *lu_find_control(void);
struct vdi_shm_dev *lu_dev(struct vdi_shm_hdr *h, uint32_t i);
/* Number of entries in /dev/shm. */
int lu_devshm_count(void);
/* Start a thread running the completion agent; its result via join. */
void lu_start_agent(vdi_srvset_t *srv, pthread_t *t);

#endif
