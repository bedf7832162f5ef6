/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-fault-util.h - what the reliability tests (fault injection,
 * permissions, load) share: a leak probe (descriptors, threads, mappings)
 * and full backup-like round trips between a side in this process and a
 * remote-controlled peer (lib_peer.h), each checking every byte.
 */
#ifndef OPENVDI_TEST_REL_FAULT_UTIL_H
#define OPENVDI_TEST_REL_FAULT_UTIL_H

#include "lib_peer.h"
#include "task.h"
#include "vdi.h"

#include <pthread.h>
#include <stdatomic.h>

/* What a leak would change. */
typedef struct rt_probe {
  int fds, threads, maps;
} rt_probe;

void rt_probe_take(rt_probe *p);
/* Set: count only shared-memory mappings (memfds), for tests whose thread
 * count varies (stacks and malloc arenas the C library keeps). */
extern int rt_probe_shared_only;
/* Fails the test (naming `what`) if anything differs from `before`; waits
 * up to a second for threads that are on their way out. */
void rt_probe_expect(const rt_probe *before, const char *what);

/* True for the codes a failing call may return (not success, not junk). */
int rt_known_code(int rc);

/* Serving threads of a client set in this process: every device opened,
 * a thread per device answering commands as lib_peer's lp_cli does
 * (Write must carry the pattern seeded by its position, Read gets it). */
typedef struct rt_serve {
  vdi_set_t *set; /* SignalAbort'ed when a call fails */
  vdi_device_t *dev[VDI_MAX_DEVICES];
  pthread_t t[VDI_MAX_DEVICES];
  int ndev;
  atomic_int rc;     /* first failure (VD_E_CLOSE is the normal end) */
  atomic_int served; /* commands completed */
} rt_serve;

/* Start serving devices already opened. */
void rt_serve_start(rt_serve *sv, vdi_set_t *set, vdi_device_t **devs, int n);
/* Open devices first..first+n-1 of `name` and start serving them. */
int rt_serve_open(rt_serve *sv, vdi_set_t *set, const char *name, int first,
                  int n);
/* Join the threads; their first error, or 0 when each saw VD_E_CLOSE. */
int rt_serve_join(rt_serve *sv);

/* Through the remote server peer (lp_srv, Active with its agent): a Write
 * and a Read on each of devices first..first+n-1, checking the bytes on
 * both sides.  `slot0` spreads the peer's slots and buffers. */
void rt_remote_srv_traffic(lp_peer *srv, int first, int n, int slot0);
/* The same from a server in this process. */
void rt_local_srv_traffic(lp_srv *s, int first, int n);

/* A full round trip with the client set in this process: `set` is freshly
 * created (Configurable) under `name` with ndev devices; the remote server
 * configures, opens every device and runs traffic; both sides close
 * normally; the set object ends closed and reusable. */
void rt_full_local_client(vdi_set_t *set, const char *name, int ndev,
                          lp_peer *srv);
/* A full round trip with the server in this process: the remote client
 * creates `name` with ndev devices and serves it; `srv` (new or closed)
 * opens, configures, runs traffic and closes. */
void rt_full_local_server(vdi_srvset_t *srv, const char *name, int ndev,
                          lp_peer *cli);
/* The rest of that round trip once vdi_srv_open(srv, name) succeeded. */
void rt_finish_local_server(vdi_srvset_t *srv, const char *name, int ndev,
                            lp_peer *cli);

/* Configure a local server on `name` (opened already) and open ndev
 * devices with the agent running; asserts success. */
void rt_local_srv_up(lp_srv *s, const char *name, int ndev);
/* Close devices, join the agent (0), close: a normal end. */
void rt_local_srv_down(lp_srv *s);

#endif
