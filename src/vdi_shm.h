/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vdi_shm.h - THE shared-memory format of a virtual device set.
 *
 * Two kinds of memory are shared, both memfds passed over the rendezvous
 * socket (rendezvous.c), never named in /dev/shm:
 *
 *  - the control segment, created by the primary client at Create, sealed
 *    against resizing, holding the header, the configuration, the buffer
 *    segment table and one device block per device;
 *  - buffer segments, created by the server (one at EndConfiguration, one
 *    more per later RequestBuffers), sealed, holding [prefix zone][data]
 *    buffers.  The client sees the same bytes at its own address.
 *
 * Control segment (offsets in bytes; every number below is pinned by a
 * static assert at the end of this file):
 *
 *   0     +---------------------------------------------+
 *         | identity: magic version layout hdr_size     |  client, once
 *         | total_size dev_count ring_entries dev_off   |
 *         | dev_stride creator_pid                      |
 *   64    +---------------------------------------------+
 *         | requested VDConfig (44)                     |  client, once
 *   128   +---------------------------------------------+
 *         | chosen VDConfig (44)                        |  server, before
 *         |                                             |  state=INITIALIZING
 *   192   +---------------------------------------------+
 *         | state abort_cause state_seq state_sleepers  |  both (atomics)
 *         | server_pid client_close                     |
 *   256   +---------------------------------------------+
 *         | agent_seq  agent_sleepers                   |  client bumps,
 *         |                                             |  server waits
 *   320   +---------------------------------------------+
 *         | seg_count                                   |  server
 *   384   +---------------------------------------------+
 *         | seg[64]: { size u64, align u32, rsv u32 }   |  server, before
 *         |                                             |  seg_count grows
 *   1408  +---------------------------------------------+
 *         | pad to 4096                                 |
 *   4096  +=============================================+ dev_off
 *         | device 0 (dev_stride bytes)                 |
 *         | device 1 ...                                |
 *         +---------------------------------------------+
 *
 * One device block:
 *
 *   +0     name[96]         NUL-terminated; device 0 by client, rest by server
 *   +96    dstate           SRV_OPEN | SRV_CLOSED (server), cli_owner (client)
 *   +128   cmd ring producer line:  cmd_tail              (server writes)
 *   +192   cmd ring consumer line:  cmd_head cmd_seq cmd_sleepers (client)
 *   +256   cpl ring producer line:  cpl_tail              (client writes)
 *   +320   cpl ring consumer line:  cpl_head              (server writes)
 *   +384   cmd entries [ring_entries] x 32 bytes
 *   +...   cpl entries [ring_entries] x 32 bytes
 *
 * Rings: free-running u32 indices, entry = index & (ring_entries - 1).  The
 * producer writes the entry, then store-releases the tail; the consumer
 * load-acquires the tail, copies the entry out, then store-releases the head.
 * A consumer that finds tail - head > ring_entries rejects it (VD_E_PROTOCOL).
 *
 * Waiting (wait.c): an event count.  A sleeper increments *_sleepers, reads
 * *_seq, re-checks its condition, and futex-waits on *_seq.  A producer
 * that publishes work does a seq_cst fence and, only if sleepers is non-zero,
 * increments seq and wakes: so while the peer keeps up there is no system
 * call.  Abort, close and peer death always bump every seq and wake.
 *
 * Everything the peer can write is untrusted: each side copies a value out
 * of shared memory once, checks it, and then uses only the copy.
 *
 * Changing anything in this file changes the format: bump VDI_SHM_VERSION.
 * The one exception: a reserved word may be given a meaning whose value 0
 * says "not reported", so that a peer of the same version that predates
 * it (it leaves the word 0 and never reads it) stays compatible; the
 * sizes, and so the layout word, do not change (client_close is one).
 */
#ifndef OPENVDI_VDI_SHM_H
#define OPENVDI_VDI_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vdi.h"

#define VDI_SHM_MAGIC        0x31494456u /* "VDI1" in memory on little-endian */
#define VDI_SHM_VERSION      1u
#define VDI_SHM_CACHELINE    64u
#define VDI_SHM_MAX_SEGMENTS 64u
#define VDI_SHM_RING_ENTRIES 256u /* per device; bounds commands in flight */
#define VDI_SHM_DEV_OFF      4096u
#define VDI_SHM_NAME_BYTES   96u

/* Set state (shm word `state`): the phases of spec 2.4.1. */
enum vdi_shm_state {
  VDI_ST_CREATED = 1,      /* client created; no server yet */
  VDI_ST_CONNECTED = 2,    /* server attached */
  VDI_ST_CONFIGURABLE = 3, /* server in BeginConfiguration */
  VDI_ST_INITIALIZING = 4, /* buffer area made; client GetConfiguration ok */
  VDI_ST_ACTIVE = 5,       /* devices open */
  VDI_ST_TERMINATED = 6,   /* all devices closed normally */
};

/* Why a set aborted (shm word `abort_cause`; 0 = not aborted). */
enum vdi_abort_cause {
  VDI_ABORT_NONE = 0,
  VDI_ABORT_CLIENT = 1,    /* client SignalAbort or Close with open devices */
  VDI_ABORT_SERVER = 2,    /* server SignalAbort or Close with open devices */
  VDI_ABORT_PEER_DIED = 3, /* a process of the set died */
  VDI_ABORT_PROTOCOL = 4,  /* a peer wrote something invalid */
  VDI_ABORT_TIMEOUT = 5,   /* serverTimeOut expired twice */
  VDI_ABORT_RESOURCE = 6,  /* a side ran out of memory or a system call */
};

/* What the primary client reports of its Close (shm word `client_close`,
 * written by the client; only a report: nothing depends on it).  0 is a
 * client library that does not report it. */
enum vdi_client_close {
  VDI_CLOSE_UNREPORTED = 0,
  VDI_CLOSE_OPEN = 1,   /* set at Create */
  VDI_CLOSE_CALLED = 2, /* the primary called Close (or freed the set) */
};

/* Device flags (shm word `dstate`, written by the server). */
#define VDI_DEV_SRV_OPEN   0x1u
#define VDI_DEV_SRV_CLOSED 0x2u

/* A command, server -> client (32 bytes). */
struct vdi_shm_cmd {
  uint32_t code;    /*  0: VDC_* */
  int32_t size;     /*  4: VDC_Command.size */
  int64_t position; /*  8: VDS_Command.inPosition */
  uint32_t seg;     /* 16: buffer segment, or VDI_SHM_NO_SEG */
  uint32_t tag;     /* 20: the server's id for the command; echoed back */
  uint64_t offset;  /* 24: data start within the segment */
};
#define VDI_SHM_NO_SEG 0xFFFFFFFFu

/* A completion, client -> server (32 bytes). */
struct vdi_shm_cpl {
  uint32_t tag;      /*  0: from the command */
  uint32_t code;     /*  4: Win32 completion code */
  uint32_t bytes;    /*  8: bytes transferred */
  uint32_t rsv;      /* 12 */
  uint64_t position; /* 16: GetPosition/SetPosition result */
  uint64_t rsv2;     /* 24 */
};

struct vdi_shm_seg {
  uint64_t size;  /* bytes in the segment's memfd */
  uint32_t align; /* data alignment of its buffers */
  uint32_t rsv;
};

struct vdi_shm_hdr {
  /* identity: written by the creating client before anyone can map it */
  _Atomic uint32_t magic; /*   0: stored last, with release */
  uint32_t version;       /*   4 */
  uint32_t layout;        /*   8: vdi__shm_layout_word() */
  uint32_t hdr_size;      /*  12: sizeof(struct vdi_shm_hdr) */
  uint64_t total_size;    /*  16 */
  uint32_t dev_count;     /*  24 */
  uint32_t ring_entries;  /*  28 */
  uint64_t dev_off;       /*  32 */
  uint32_t dev_stride;    /*  40 */
  uint32_t creator_pid;   /*  44 */
  uint32_t rsv0[4];       /*  48 */
  VDConfig requested;     /*  64: client, at Create */
  uint32_t rsv1[5];       /* 108 */
  VDConfig chosen;        /* 128: server, before INITIALIZING */
  uint32_t rsv2[5];       /* 172 */
  /* state: both sides */
  _Atomic uint32_t state;          /* 192: enum vdi_shm_state */
  _Atomic uint32_t abort_cause;    /* 196: first cause wins (CAS from 0) */
  _Atomic uint32_t state_seq;      /* 200: futex word for state waits */
  _Atomic uint32_t state_sleepers; /* 204 */
  _Atomic uint32_t server_pid;     /* 208 */
  _Atomic uint32_t client_close;   /* 212: enum vdi_client_close (client) */
  uint32_t rsv3[10];               /* 216 */
  /* completion-agent doorbell: clients bump, the server sleeps on it */
  _Atomic uint32_t agent_seq;      /* 256 */
  _Atomic uint32_t agent_sleepers; /* 260 */
  uint32_t rsv4[14];               /* 264 */
  _Atomic uint32_t seg_count;      /* 320: server, after seg[] entry */
  uint32_t rsv5[15];               /* 324 */
  struct vdi_shm_seg seg[VDI_SHM_MAX_SEGMENTS]; /* 384 */
};

struct vdi_shm_dev {
  char name[VDI_SHM_NAME_BYTES]; /*   0 */
  _Atomic uint32_t dstate;       /*  96: VDI_DEV_* (server) */
  _Atomic uint32_t cli_owner;    /* 100: 0, or id of the client process */
  uint32_t rsv0[6];              /* 104 */
  _Atomic uint32_t cmd_tail;     /* 128: server */
  uint32_t rsv1[15];
  _Atomic uint32_t cmd_head;     /* 192: client */
  _Atomic uint32_t cmd_seq;      /* 196: futex word, GetCommand waits */
  _Atomic uint32_t cmd_sleepers; /* 200 */
  uint32_t rsv2[13];
  _Atomic uint32_t cpl_tail; /* 256: client */
  uint32_t rsv3[15];
  _Atomic uint32_t cpl_head; /* 320: server */
  uint32_t rsv4[15];
  /* 384: struct vdi_shm_cmd cmd[ring_entries]; struct vdi_shm_cpl cpl[...] */
};

#define VDI_SHM_DEV_STRIDE(entries)                                            \
  ((uint32_t)(sizeof(struct vdi_shm_dev) +                                     \
              (entries) *                                                      \
                  (sizeof(struct vdi_shm_cmd) + sizeof(struct vdi_shm_cpl))))

static inline struct vdi_shm_cmd *vdi_shm_dev_cmds(struct vdi_shm_dev *d) {
  return (struct vdi_shm_cmd *)(void *)((char *)d + sizeof *d);
}
static inline struct vdi_shm_cpl *vdi_shm_dev_cpls(struct vdi_shm_dev *d,
                                                   uint32_t entries) {
  return (struct vdi_shm_cpl *)(void *)((char *)d + sizeof *d +
                                        entries * sizeof(struct vdi_shm_cmd));
}

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "u32 atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "atomic u32 is 4 bytes");
_Static_assert(sizeof(struct vdi_shm_cmd) == 32, "cmd entry is 32 bytes");
_Static_assert(offsetof(struct vdi_shm_cmd, offset) == 24, "cmd layout");
_Static_assert(sizeof(struct vdi_shm_cpl) == 32, "cpl entry is 32 bytes");
_Static_assert(offsetof(struct vdi_shm_cpl, position) == 16, "cpl layout");
_Static_assert(offsetof(struct vdi_shm_hdr, total_size) == 16, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, dev_off) == 32, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, requested) == 64, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, chosen) == 128, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, state) == 192, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, client_close) == 212, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, agent_seq) == 256, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, seg_count) == 320, "hdr");
_Static_assert(offsetof(struct vdi_shm_hdr, seg) == 384, "hdr");
_Static_assert(sizeof(struct vdi_shm_hdr) == 1408, "hdr size");
_Static_assert(sizeof(struct vdi_shm_hdr) <= VDI_SHM_DEV_OFF, "hdr fits");
_Static_assert(offsetof(struct vdi_shm_dev, dstate) == 96, "dev");
_Static_assert(offsetof(struct vdi_shm_dev, cmd_tail) == 128, "dev");
_Static_assert(offsetof(struct vdi_shm_dev, cmd_head) == 192, "dev");
_Static_assert(offsetof(struct vdi_shm_dev, cpl_tail) == 256, "dev");
_Static_assert(offsetof(struct vdi_shm_dev, cpl_head) == 320, "dev");
_Static_assert(sizeof(struct vdi_shm_dev) == 384, "dev header size");

/* Folds the sizes of everything above into one word, so that two builds
 * with different layouts refuse each other (LMDB's MDB_LOCK_FORMAT). */
static inline uint32_t vdi__shm_layout_word(void) {
  uint32_t h = 2166136261u;
  const uint32_t parts[] = {(uint32_t)sizeof(struct vdi_shm_hdr),
                            (uint32_t)sizeof(struct vdi_shm_dev),
                            (uint32_t)sizeof(struct vdi_shm_cmd),
                            (uint32_t)sizeof(struct vdi_shm_cpl),
                            (uint32_t)sizeof(VDConfig),
                            VDI_SHM_MAX_SEGMENTS,
                            VDI_SHM_CACHELINE,
                            VDI_SHM_VERSION};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    h ^= parts[i];
    h *= 16777619u;
  }
  return h;
}

#endif
