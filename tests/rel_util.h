/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rel_util.h - helpers of the reliability tests (test-rel-crash-*.c,
 * test-rel-abort-*.c): what a process holds (descriptors, threads, /dev/shm
 * entries) before and after a set, killing and reaping a remote peer with
 * the moment of reaping, and threads that block in one VDI call and record
 * when and with what code it returned.
 */
#ifndef OPENVDI_REL_UTIL_H
#define OPENVDI_REL_UTIL_H

#include "lib_peer.h"

#include <pthread.h>
#include <stdatomic.h>

/* What this process holds; taken before a set exists. */
typedef struct rel_snap {
  int fds, threads, shm;
} rel_snap;

rel_snap rel_snap_take(void);
/* Asserts that the process holds again what it held in *s (threads and
 * descriptors are given 500 ms to go: a joined thread's task entry can
 * outlive pthread_join by a moment). */
void rel_snap_check(const rel_snap *s);
/* Entries of /proc/self/task. */
int rel_thread_count(void);

/* SIGKILL a process and reap it: returns now_us() right after the reaping,
 * having checked that it died of that signal. */
int64_t rel_kill_reap(pid_t pid);
/* The same for a remote peer of lib_peer.h; its pipes are closed and p is
 * freed. */
int64_t rel_peer_kill(lp_peer *p);

/* The set name is free at once: a new set of that name is created (and
 * closed again) without retrying. */
void rel_name_free(const char *name);

/* A thread blocked in one call with an infinite timeout. */
enum rel_call {
  REL_GETCMD,  /* vdi_dev_get_command(dev, -1) */
  REL_GETCFG,  /* vdi_set_get_configuration(set, -1) */
  REL_OPENDEV, /* vdi_set_open_device(set, name) */
  REL_AGENT,   /* vdi_srv_execute_completion_agent(srv) */
  REL_PEER     /* lp_call(peer, req): a call made by a remote peer */
};

typedef struct rel_block {
  enum rel_call what;
  vdi_set_t *set;
  vdi_device_t *dev;
  vdi_srvset_t *srv;
  lp_peer *peer;
  const char *name;   /* REL_OPENDEV: device name; REL_PEER: the request */
  int64_t timeout_ms; /* REL_GETCMD / REL_GETCFG: -1 unless set */
  vdi_device_t *out;
  VDC_Command *cmd;
  pthread_t t;
  atomic_int done;
  int rc;
  int64_t at_us; /* when the call returned */
} rel_block;

/* Start the thread and check, 30 ms later, that the call is still
 * blocked. */
void rel_block_start(rel_block *b);
/* Wait (at most 3 s) for the call to return; check its code and that it
 * returned at most within_us after since_us (a time of now_us()). */
void rel_block_join(rel_block *b, int64_t since_us, int expect_rc,
                    int64_t within_us);

#endif
