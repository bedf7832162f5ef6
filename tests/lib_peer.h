/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib_peer.h - shared helpers for the state-table and command conformance
 * tests (test-lib-state-*.c, test-lib-commands-*.c).
 *
 * The tests are cross-process: the test process plays one side of a set
 * and a *remote peer* (a helper process, lp_srv or lp_cli) plays the other.
 * The test drives the peer line by line over two pipes: it sends a request
 * such as "send 3 0 2 65536 0 1" and gets back "rc v1 v2 ...".  Driving the
 * peer synchronously lets a test put both sides into any pair of states and
 * assert the exact return code of every call on either side, with the
 * protocol itself plus this side channel providing the ordering.
 *
 * Remote server (lp_srv) requests, each answered with an rc and values:
 *   open NAME | cfg | begin F BS AL MT TO | reqbuf S A C | query S A | end
 *   config NAME F BS AL MT NBUF   (open+cfg+begin+reqbuf+end, first error)
 *   odev NAME -> rc idx | odevs SETNAME N (lp_devname names) | agent
 *   join TO -> agent rc (LP_RUNNING if still running after TO ms)
 *   alloc B S A -> rc addr%65536 | free B S | shared B (B=-2: malloc'd)
 *   fill B OFF LEN SEED | check B OFF LEN SEED -> 0 or LP_MISMATCH
 *   send SLOT DEV CODE SIZE POS B -> rc calls code samethread
 *       (B = -1: no buffer, -2: a private malloc'd buffer)
 *   wait SLOT TO -> called code bytes outpos calls commandCode size inpos
 *   cdev D | abort | close | quit
 * Remote client (lp_cli) requests:
 *   create NAME NDEV FEAT PREFIX ALIGN STO | sec NAME | cfg TO (+11 fields)
 *   odev D NAME -> rc outnull | get D SLOT TO -> rc code size pos addr%65536
 *   fill S OFF LEN SEED | check S OFF LEN SEED (on the command's buffer)
 *   comp D S CODE BYTES POS | handle S -> rc h | map M H | mfill/mcheck M ..
 *   serve (a thread per opened device answers every command, see lp_cli)
 *   sjoin TO -> rc commands | abort | close | quit
 */
#ifndef OPENVDI_LIB_PEER_H
#define OPENVDI_LIB_PEER_H

#include "task.h"
#include "vdi.h"

#include <pthread.h>
#include <stdatomic.h>

/* Non-VDI answers of the remote peers (VDI codes are 0 or negative). */
#define LP_RUNNING  1 /* join: the agent is still running */
#define LP_MISMATCH 2 /* check: bytes differ */

#define LP_MAXV 16

typedef struct lp_peer {
  pid_t pid;
  int to, from; /* our ends of the two pipes */
  int64_t v[LP_MAXV];
  int nv;
  const char *helper;
} lp_peer;

/* Start helper "lp_srv" or "lp_cli" as a separate process. */
lp_peer *lp_spawn(const char *helper);
/* Send one request; returns the peer's rc, values in p->v[0..nv-1]. */
int lp_call(lp_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Value i of the last answer (fails the test if there is none). */
int64_t lp_v(lp_peer *p, int i);
/* Tell the peer to quit and check it exits with 0; frees p. */
void lp_end(lp_peer *p);

/* Device i of a set: device 0 is named like the set (spec 2.2.4). */
const char *lp_devname(const char *set, int i, char *buf, size_t n);

/* Deterministic byte patterns, so both processes can check a buffer. */
void lp_fill(uint8_t *p, size_t n, uint32_t seed);
/* -1 if p holds the pattern, else the index of the first wrong byte. */
long lp_check(const uint8_t *p, size_t n, uint32_t seed);

/* A server command with a record of its completion routine's calls.  The
 * routine receives &slot->cmd; completionContext points at the slot. */
typedef struct lp_slot {
  VDS_Command cmd; /* first member */
  atomic_int calls;
  atomic_int bad_ctx; /* the routine saw a foreign context */
  pthread_t thread;   /* the thread the routine ran in */
  int64_t at_us;      /* when it ran */
  int code, bytes;    /* completionCode/bytesTransferred at the call */
  int64_t outpos;
} lp_slot;

void lp_slot_init(lp_slot *s, int code, int size, int64_t pos, uint8_t *buf);
void lp_routine(VDS_Command *cmd);
/* 1 once the routine has run (within timeout_ms), else 0. */
int lp_slot_wait(lp_slot *s, int timeout_ms);

/* A local server with its completion-agent thread. */
typedef struct lp_srv {
  vdi_srvset_t *srv;
  vdi_srvdev_t *dev[VDI_MAX_DEVICES];
  int ndev;
  pthread_t agent;
  int agent_started;
  atomic_int agent_done;
  int agent_rc;
} lp_srv;

void lp_srv_agent_start(lp_srv *s);
/* The agent's rc, or LP_RUNNING if it has not returned within timeout. */
int lp_srv_agent_join(lp_srv *s, int timeout_ms);
/* open + get_configuration + begin + request_buffers(mt, 0, nbuf) + end,
 * asserting 0 at each step. */
void lp_srv_config(lp_srv *s, const char *name, uint32_t features, uint32_t bs,
                   uint32_t mt, uint32_t nbuf);
/* Open n devices named by lp_devname, asserting 0. */
void lp_srv_open_devs(lp_srv *s, const char *name, int n);

/* A server here and a client in a helper process, both Active: the client
 * creates the set (cfeat, prefix, align, serverTimeOut sto), we configure
 * it (sfeat, block size bs, nbuf buffers of mt) and open ndev devices with
 * the agent running; the client gets the configuration and opens every
 * device (as its device 0..ndev-1). */
typedef struct lp_pair {
  lp_srv s;
  lp_peer *cli;
  char name[96];
} lp_pair;
void lp_pair_up(lp_pair *x, const char *tag, int ndev, uint32_t cfeat,
                uint32_t prefix, uint32_t align, uint32_t sto, uint32_t sfeat,
                uint32_t bs, uint32_t mt, uint32_t nbuf);
/* Normal end: close every device, the client sees VD_E_CLOSE on each
 * (unless it is serving them), the agent returns 0, both sides close.
 * Returns how many commands the serving threads answered (or -1). */
int64_t lp_pair_down(lp_pair *x, int client_serving);

/* A VDConfig as a client asks for it. */
VDConfig lp_cfg(uint32_t ndev, uint32_t features);

#endif
