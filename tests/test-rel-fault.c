/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-fault.c - fault injection: every fallible system call of the
 * library (sys.c: mmap, memfd, ftruncate, socket, sendmsg, recvmsg, futex,
 * thread, alloc) made to fail on its Nth use, N = 1, 2, 3 ... until the
 * operation under test no longer reaches the Nth call, for each operation
 * of a backup: client Create, GetConfiguration, OpenDevice,
 * OpenInSecondary, server Open, the configuration, RequestBuffers while
 * Active, and the command stream on either side.
 *
 * The operation runs in this process (vdi__fault_set arms the fault here
 * only); the other side of the set is a lib_peer helper process.  For every
 * N: the operation either fails with a VD_E_* code (and only because of
 * the fault) or absorbs it; nothing is left behind (descriptors, threads,
 * mappings: rt_probe, and heap blocks under the ASan build, which is why
 * the names start with lib_); the peer ends cleanly (never attached, or
 * aborted); and then the same objects, fault disarmed, do a full checked
 * round trip.  Set $VDI_REL_REPORT to a file to get one line per (op, N).
 */
#include "test-rel-fault-util.h"
#include "vdi_int.h"

#include <stdio.h>
#include <unistd.h>

#define NDEV  2
#define MAX_N 400 /* no operation makes this many calls of one kind */

static const char *const op_name[VDI_SYS_COUNT] = {
    "mmap",    "memfd", "ftruncate", "socket", "sendmsg",
    "recvmsg", "futex", "thread",    "alloc"};

static void arm(int op, uint64_t n) {
  vdi__fault_set((enum vdi_sys_op)op, n);
}

/* Calls of op since arm(), then disarmed. */
static uint64_t disarm(int op) {
  uint64_t c = vdi__fault_calls((enum vdi_sys_op)op);
  vdi__fault_set((enum vdi_sys_op)op, 0);
  return c;
}

static void note(const char *what, int op, uint64_t n, uint64_t calls, int rc,
                 const char *peer) {
  const char *path = getenv("VDI_REL_REPORT");
  char line[256];
  snprintf(line, sizeof line, "%s %s:%llu calls=%llu -> %s; peer %s\n", what,
           op_name[op], (unsigned long long)n, (unsigned long long)calls,
           vdi_error_name(rc), peer);
  fputs(line, stderr);
  if (path) {
    FILE *f = fopen(path, "a");
    if (f) {
      fputs(line, f);
      fclose(f);
    }
  }
}

/* A failing call must fail with a real code, and only because of the
 * fault (a failure without it would be a bug of its own). */
static void expect_fault_failure(int rc, int op, uint64_t n, uint64_t calls) {
  if (!rt_known_code(rc))
    TASK_FAIL_("%s:%llu: returned %d, not a VD_E_* code", op_name[op],
               (unsigned long long)n, rc);
  if (calls < n)
    TASK_FAIL_("%s:%llu: failed with %s without reaching the fault",
               op_name[op], (unsigned long long)n, vdi_error_name(rc));
}

/* Poll a peer request until it returns `want` (a watcher notices a
 * hang-up a moment after it happens). */
static int peer_until(lp_peer *p, int want, const char *req) {
  int rc = 0;
  for (int i = 0; i < 200; i++) {
    if ((rc = lp_call(p, "%s", req)) == want) return rc;
    sleep_ms(5);
  }
  return rc;
}

/* A first round trip, so that thread stacks and malloc arenas the later
 * probes would otherwise see appear are already there. */
static void warm_up(void) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("warm"));
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = lp_cfg(NDEV, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  lp_peer *srv = lp_spawn("lp_srv");
  rt_full_local_client(set, name, NDEV, srv);
  lp_end(srv);
  vdi_set_free(set);
  vdi_srvset_t *s;
  ASSERT_RC(vdi_srv_new(&s), 0);
  lp_peer *cli = lp_spawn("lp_cli");
  rt_full_local_server(s, unique_name("warm"), NDEV, cli);
  lp_end(cli);
  vdi_srv_free(s);
  /* Prime the fault table (it reads $VDI_FAULT_INJECT once). */
  arm(0, 0);
}

/* The server's buffer segment reaches the client through its watcher a
 * moment after GetConfiguration can return: wait until it is mapped (a
 * handle naming segment 0 waits for it), so that a later armed window
 * does not catch that mmap by chance (test-dependent timing). */
static void sync_segments(vdi_set_t *set) {
  uint8_t *p = NULL;
  ASSERT_RC(vdi_set_map_buffer_handle(set, 1u << 24, &p), 0);
  ASSERT_NOT_NULL(p);
}

typedef int (*scenario_fn)(int op, uint64_t n);

/* Run a scenario for every op and N until it no longer hits the fault. */
static void sweep(scenario_fn fn) {
  warm_up();
  for (int op = 0; op < VDI_SYS_COUNT; op++) {
    uint64_t n = 1;
    while (fn(op, n)) {
      /* How many futex waits a run makes depends on timing (and a wait
       * that fails makes its caller spin and wait again): N = 1..16. */
      if (op == VDI_SYS_FUTEX && n >= 16) break;
      if (++n > MAX_N)
        TASK_FAIL_("%s: still hitting at N=%d", op_name[op], MAX_N);
    }
  }
}

/* -------------------------------------------------------- client Create */

static int sc_client_create(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fcc"));
  rt_probe base;
  rt_probe_take(&base);
  vdi_set_t *set = NULL;
  VDConfig cfg = lp_cfg(NDEV, VDF_LikePipe);
  arm(op, n);
  int rc = vdi_set_new(&set);
  if (rc == 0) rc = vdi_set_create(set, name, &cfg);
  uint64_t calls = disarm(op);
  if (rc != 0) {
    expect_fault_failure(rc, op, n, calls);
    /* Nothing answers under the name: a server finds no set. */
    lp_peer *p = lp_spawn("lp_srv");
    ASSERT_RC(lp_call(p, "open %s", name), VD_E_INVALID);
    lp_end(p);
    rt_probe_expect(&base, "client Create failed");
    note("client-create", op, n, calls, rc, "finds no set");
    if (!set) ASSERT_RC(vdi_set_new(&set), 0);
    /* The same object and the same name, again. */
    ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  } else if (calls >= n) {
    note("client-create", op, n, calls, rc, "absorbed");
  }
  lp_peer *srv = lp_spawn("lp_srv");
  rt_full_local_client(set, name, NDEV, srv);
  lp_end(srv);
  vdi_set_free(set);
  rt_probe_expect(&base, "client Create, after the round trip");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_client_create, 60) {
  sweep(sc_client_create);
  return 0;
}

/* ------------------------------------------------ client GetConfiguration */

static int sc_client_getconfig(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fcg"));
  rt_probe base;
  rt_probe_take(&base);
  vdi_set_t *set;
  VDConfig cfg = lp_cfg(NDEV, VDF_LikePipe), got;
  ASSERT_RC(vdi_set_new(&set), 0);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  lp_peer *srv = lp_spawn("lp_srv");
  arm(op, n);
  /* Waits (and sleeps) before the server comes, then serves its attach in
   * the watcher thread, then reads the configuration. */
  int rc1 = vdi_set_get_configuration(set, 20, &got);
  int rcs = lp_call(srv, "config %s %u 4096 0 65536 %d", name, VDF_WriteMedia,
                    2 * NDEV + 2);
  int rc2 = vdi_set_get_configuration(set, rcs == 0 ? 5000 : 100, &got);
  /* The server's buffer segment, mapped by the watcher: part of it too. */
  uint8_t *seg0 = NULL;
  if (rcs == 0 && rc2 == 0)
    rc2 = vdi_set_map_buffer_handle(set, 1u << 24, &seg0);
  uint64_t calls = disarm(op);
  /* The watcher may have met the fault after the calls returned (its last
   * recvmsg, the one that finds nothing more to read): it drops the server
   * and aborts the set a moment later. */
  for (int i = 0; i < 50 && rcs == 0 && rc2 == 0 && calls >= n; i++) {
    rc2 = vdi_set_get_configuration(set, 0, &got);
    sleep_ms(1);
  }
  if (rc1 != VD_E_TIMEOUT) expect_fault_failure(rc1, op, n, calls);
  if (rcs != 0) expect_fault_failure(rcs, op, n, calls);
  if (rc2 != 0) expect_fault_failure(rc2, op, n, calls);
  char peer[64] = "configured";
  if (rcs != 0)
    snprintf(peer, sizeof peer, "server's config fails: %s",
             vdi_error_name(rcs));
  if (rc1 != VD_E_TIMEOUT || rcs != 0 || rc2 != 0)
    note("client-getconfig", op, n, calls, rc2 ? rc2 : rc1 ? rc1 : rcs, peer);
  else if (calls >= n)
    note("client-getconfig", op, n, calls, 0, "absorbed");
  if (rcs == 0 && rc2 == 0) {
    /* The operation went through: finish the backup on this set. */
    ASSERT_RC(lp_call(srv, "odevs %s %d", name, NDEV), 0);
    ASSERT_RC(lp_call(srv, "agent"), 0);
    rt_serve sv;
    ASSERT_RC(rt_serve_open(&sv, set, name, 0, NDEV), 0);
    rt_remote_srv_traffic(srv, 0, NDEV, 0);
    for (int i = 0; i < NDEV; i++)
      ASSERT_RC(lp_call(srv, "cdev %d", i), 0);
    ASSERT_RC(rt_serve_join(&sv), 0);
    ASSERT_RC(lp_call(srv, "join 5000"), 0);
    ASSERT_RC(lp_call(srv, "close"), 0);
    ASSERT_RC(vdi_set_close(set), 0);
  } else {
    ASSERT_RC(vdi_set_close(set), 0);
    /* The server, if it got in, sees the set go away as an abort. */
    if (rcs == 0) ASSERT_RC(peer_until(srv, VD_E_ABORT, "cfg"), VD_E_ABORT);
    lp_call(srv, "close");
  }
  lp_end(srv);
  rt_probe_expect(&base, "client GetConfiguration");
  /* The same object again, fault gone. */
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  srv = lp_spawn("lp_srv");
  rt_full_local_client(set, name, NDEV, srv);
  lp_end(srv);
  vdi_set_free(set);
  rt_probe_expect(&base, "client GetConfiguration, after the round trip");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_client_getconfig, 60) {
  sweep(sc_client_getconfig);
  return 0;
}

/* ------------------------------------------------------ client OpenDevice */

struct late_name {
  lp_peer *srv;
  char dev[128];
  int rc;
};

static void *name_late(void *arg) {
  struct late_name *l = arg;
  sleep_ms(20);
  l->rc = lp_call(l->srv, "odev %s", l->dev);
  return NULL;
}

static int sc_client_opendev(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fco"));
  rt_probe base;
  rt_probe_take(&base);
  vdi_set_t *set;
  VDConfig cfg = lp_cfg(NDEV, VDF_LikePipe), got;
  ASSERT_RC(vdi_set_new(&set), 0);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  lp_peer *srv = lp_spawn("lp_srv");
  ASSERT_RC(lp_call(srv, "config %s %u 4096 0 65536 %d", name, VDF_WriteMedia,
                    2 * NDEV + 2),
            0);
  ASSERT_RC(lp_call(srv, "odev %s", name), 0);
  ASSERT_RC(lp_call(srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(set, 5000, &got), 0);
  sync_segments(set);
  /* Device 1 is named 20 ms late, so OpenDevice waits for it. */
  struct late_name late = {srv, "", 0};
  lp_devname(name, 1, late.dev, sizeof late.dev);
  pthread_t t;
  vdi_device_t *devs[NDEV] = {NULL};
  arm(op, n);
  ASSERT_EQ(pthread_create(&t, NULL, name_late, &late), 0);
  int rc = vdi_set_open_device(set, name, &devs[0]);
  if (rc == 0) rc = vdi_set_open_device(set, late.dev, &devs[1]);
  pthread_join(t, NULL);
  uint64_t calls = disarm(op);
  /* A fault may land in the client's watcher (its recvmsg) while the
   * server names the device: the set then aborts, and the late naming sees
   * it.  Without a failure the naming must have worked. */
  if (rc == 0)
    ASSERT_RC(late.rc, 0);
  else
    ASSERT(late.rc == 0 || late.rc == VD_E_ABORT);
  if (rc != 0) {
    expect_fault_failure(rc, op, n, calls);
    /* The client gives up: Close with a device open aborts the set. */
    int crc = vdi_set_close(set);
    ASSERT(crc == 0 || crc == VD_E_OPEN);
    ASSERT_RC(lp_call(srv, "join 5000"), VD_E_ABORT);
    lp_call(srv, "close");
    note("client-opendevice", op, n, calls, rc, "agent returns VD_E_ABORT");
  } else {
    if (calls >= n) note("client-opendevice", op, n, calls, 0, "absorbed");
    rt_serve sv;
    rt_serve_start(&sv, set, devs, NDEV);
    rt_remote_srv_traffic(srv, 0, NDEV, 0);
    for (int i = 0; i < NDEV; i++)
      ASSERT_RC(lp_call(srv, "cdev %d", i), 0);
    ASSERT_RC(rt_serve_join(&sv), 0);
    ASSERT_RC(lp_call(srv, "join 5000"), 0);
    ASSERT_RC(lp_call(srv, "close"), 0);
    ASSERT_RC(vdi_set_close(set), 0);
  }
  lp_end(srv);
  rt_probe_expect(&base, "client OpenDevice");
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  srv = lp_spawn("lp_srv");
  rt_full_local_client(set, name, NDEV, srv);
  lp_end(srv);
  vdi_set_free(set);
  rt_probe_expect(&base, "client OpenDevice, after the round trip");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_client_opendevice, 60) {
  sweep(sc_client_opendev);
  return 0;
}

/* ------------------------------------------------- client OpenInSecondary */

/* One backup with the secondary in this process serving device 1; the
 * fault (if op >= 0) is armed around its OpenInSecondary.  *secp is the
 * secondary's object, created here if NULL and kept for the next use. */
static int secondary_round(vdi_set_t **secp, int op, uint64_t n) {
  char name[96], dn[128];
  snprintf(name, sizeof name, "%s", unique_name("fcs"));
  lp_peer *cli = lp_spawn("lp_cli"), *srv = lp_spawn("lp_srv");
  ASSERT_RC(lp_call(cli, "create %s %d %u 0 0 0", name, NDEV, VDF_LikePipe), 0);
  ASSERT_RC(lp_call(srv, "config %s %u 4096 0 65536 %d", name, VDF_WriteMedia,
                    2 * NDEV + 2),
            0);
  ASSERT_RC(lp_call(srv, "odevs %s %d", name, NDEV), 0);
  ASSERT_RC(lp_call(srv, "agent"), 0);
  ASSERT_RC(lp_call(cli, "cfg 5000"), 0);
  ASSERT_RC(lp_call(cli, "odev 0 %s", name), 0);
  if (op >= 0) arm(op, n);
  int rc = *secp ? 0 : vdi_set_new(secp);
  if (rc == 0) rc = vdi_set_open_in_secondary(*secp, name);
  uint64_t calls = op >= 0 ? disarm(op) : 0;
  int hit = op >= 0 && calls >= n;
  if (rc != 0) {
    ASSERT(op >= 0);
    expect_fault_failure(rc, op, n, calls);
    /* The primary goes on, not aborted, and the secondary can retry. */
    ASSERT_RC(lp_call(cli, "cfg 0"), 0);
    note("client-secondary", op, n, calls, rc, "primary unaffected");
    if (!*secp) ASSERT_RC(vdi_set_new(secp), 0);
    ASSERT_RC(vdi_set_open_in_secondary(*secp, name), 0);
  }
  vdi_set_t *sec = *secp;
  rt_serve sv;
  vdi_device_t *d1;
  int orc = vdi_set_open_device(sec, lp_devname(name, 1, dn, sizeof dn), &d1);
  if (orc != 0) {
    /* OpenInSecondary returned, but its watcher then failed (mapping a
     * buffer segment): a secondary without the buffers aborts the set. */
    ASSERT(rc == 0 && hit);
    expect_fault_failure(orc, op, n, calls);
    ASSERT_RC(lp_call(cli, "cfg 0"), VD_E_ABORT);
    ASSERT_RC(lp_call(srv, "join 5000"), VD_E_ABORT);
    note("client-secondary", op, n, calls, orc,
         "OpenInSecondary returned 0, then its watcher failed: the set "
         "aborts");
    lp_call(srv, "close");
    lp_call(cli, "close");
    ASSERT_RC(vdi_set_close(sec), 0);
    lp_end(srv);
    lp_end(cli);
    /* The same secondary object on a new backup. */
    secondary_round(secp, -1, 0);
    return 1;
  }
  if (rc == 0 && hit) note("client-secondary", op, n, calls, 0, "absorbed");
  rt_serve_start(&sv, sec, &d1, 1);
  ASSERT_RC(lp_call(cli, "serve"), 0);
  rt_remote_srv_traffic(srv, 0, NDEV, 0);
  for (int i = 0; i < NDEV; i++)
    ASSERT_RC(lp_call(srv, "cdev %d", i), 0);
  ASSERT_RC(rt_serve_join(&sv), 0);
  ASSERT_RC(lp_call(cli, "sjoin 5000"), 0);
  ASSERT_RC(lp_call(srv, "join 5000"), 0);
  ASSERT_RC(lp_call(srv, "close"), 0);
  ASSERT_RC(vdi_set_close(sec), 0);
  ASSERT_RC(lp_call(cli, "close"), 0);
  lp_end(srv);
  lp_end(cli);
  return hit;
}

static int sc_secondary(int op, uint64_t n) {
  rt_probe base;
  rt_probe_take(&base);
  vdi_set_t *sec = NULL;
  int hit = secondary_round(&sec, op, n);
  vdi_set_free(sec);
  rt_probe_expect(&base, "OpenInSecondary");
  return hit;
}

TEST_IMPL_TIMEOUT(lib_fault_client_secondary, 60) {
  sweep(sc_secondary);
  return 0;
}

/* ------------------------------------------------------------ server Open */

static int sc_server_open(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fso"));
  rt_probe base;
  rt_probe_take(&base);
  lp_peer *cli = lp_spawn("lp_cli");
  rt_probe mid; /* with the peer's pipes */
  rt_probe_take(&mid);
  ASSERT_RC(lp_call(cli, "create %s %d %u 0 0 0", name, NDEV, VDF_LikePipe), 0);
  vdi_srvset_t *srv = NULL;
  arm(op, n);
  int rc = vdi_srv_new(&srv);
  if (rc == 0) rc = vdi_srv_open(srv, NULL, name);
  uint64_t calls = disarm(op);
  if (rc != 0) {
    expect_fault_failure(rc, op, n, calls);
    /* The client saw no server, or one that came and went (abort). */
    int crc = lp_call(cli, "cfg 100");
    ASSERT(crc == VD_E_TIMEOUT || crc == VD_E_ABORT);
    note("server-open", op, n, calls, rc,
         crc == VD_E_TIMEOUT ? "never attached (GetConfiguration times out)"
                             : "GetConfiguration returns VD_E_ABORT");
    lp_call(cli, "close");
    rt_probe_expect(&mid, "server Open failed");
    if (!srv) ASSERT_RC(vdi_srv_new(&srv), 0);
    rt_full_local_server(srv, unique_name("fso2"), NDEV, cli);
  } else {
    if (calls >= n) note("server-open", op, n, calls, 0, "absorbed");
    rt_finish_local_server(srv, name, NDEV, cli);
  }
  vdi_srv_free(srv);
  lp_end(cli);
  rt_probe_expect(&base, "server Open, after the round trip");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_server_open, 60) {
  sweep(sc_server_open);
  return 0;
}

/* ------------------------------------- server configuration (Begin..End) */

static int sc_server_config(int op, uint64_t n) {
  char name[96], dn[128];
  snprintf(name, sizeof name, "%s", unique_name("fsc"));
  rt_probe base;
  rt_probe_take(&base);
  lp_peer *cli = lp_spawn("lp_cli");
  rt_probe mid; /* with the peer's pipes */
  rt_probe_take(&mid);
  ASSERT_RC(lp_call(cli, "create %s %d %u 0 0 0", name, NDEV, VDF_LikePipe), 0);
  lp_srv s;
  memset(&s, 0, sizeof s);
  ASSERT_RC(vdi_srv_new(&s.srv), 0);
  ASSERT_RC(vdi_srv_open(s.srv, NULL, name), 0);
  VDConfig c;
  ASSERT_RC(vdi_srv_get_configuration(s.srv, &c), 0);
  arm(op, n);
  int rc =
      vdi_srv_begin_configuration(s.srv, VDF_WriteMedia, 4096, 0, 65536, 1000);
  /* Two groups, so that the segment holds more than one request. */
  if (rc == 0) rc = vdi_srv_request_buffers(s.srv, 65536, 0, 2 * NDEV + 2);
  if (rc == 0) rc = vdi_srv_request_buffers(s.srv, 4096, 0, 4);
  if (rc == 0) rc = vdi_srv_end_configuration(s.srv);
  uint64_t calls = disarm(op);
  if (rc != 0) {
    expect_fault_failure(rc, op, n, calls);
    ASSERT_RC(vdi_srv_close(s.srv), 0);
    /* The server left before configuring: the client sees an abort. */
    ASSERT_RC(lp_call(cli, "cfg 2000"), VD_E_ABORT);
    note("server-config", op, n, calls, rc,
         "GetConfiguration returns VD_E_ABORT");
    lp_call(cli, "close");
    rt_probe_expect(&mid, "server configuration failed");
    rt_full_local_server(s.srv, unique_name("fsc2"), NDEV, cli);
  } else {
    if (calls >= n) note("server-config", op, n, calls, 0, "absorbed");
    s.ndev = 0;
    lp_srv_open_devs(&s, name, NDEV);
    lp_srv_agent_start(&s);
    ASSERT_RC(lp_call(cli, "cfg 5000"), 0);
    for (int i = 0; i < NDEV; i++)
      ASSERT_RC(
          lp_call(cli, "odev %d %s", i, lp_devname(name, i, dn, sizeof dn)), 0);
    ASSERT_RC(lp_call(cli, "serve"), 0);
    rt_local_srv_traffic(&s, 0, NDEV);
    rt_local_srv_down(&s);
    ASSERT_RC(lp_call(cli, "sjoin 5000"), 0);
    ASSERT_RC(lp_call(cli, "close"), 0);
  }
  vdi_srv_free(s.srv);
  lp_end(cli);
  rt_probe_expect(&base, "server configuration, after the round trip");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_server_config, 60) {
  sweep(sc_server_config);
  return 0;
}

/* ------------------------------- a Server-Active set, pair of processes */

static void pair_up(lp_srv *s, lp_peer *cli, const char *name) {
  char dn[128];
  memset(s, 0, sizeof *s);
  ASSERT_RC(lp_call(cli, "create %s %d %u 0 0 0", name, NDEV, VDF_LikePipe), 0);
  ASSERT_RC(vdi_srv_new(&s->srv), 0);
  ASSERT_RC(vdi_srv_open(s->srv, NULL, name), 0);
  rt_local_srv_up(s, name, NDEV);
  ASSERT_RC(lp_call(cli, "cfg 5000"), 0);
  for (int i = 0; i < NDEV; i++)
    ASSERT_RC(lp_call(cli, "odev %d %s", i, lp_devname(name, i, dn, sizeof dn)),
              0);
  ASSERT_RC(lp_call(cli, "serve"), 0);
}

static void pair_down(lp_srv *s, lp_peer *cli) {
  rt_local_srv_down(s);
  ASSERT_RC(lp_call(cli, "sjoin 5000"), 0);
  ASSERT_RC(lp_call(cli, "close"), 0);
}

/* ---------------------------------- RequestBuffers after configuration */

static int sc_reqbuf_active(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fsr"));
  rt_probe base;
  rt_probe_take(&base);
  lp_peer *cli = lp_spawn("lp_cli");
  lp_srv s;
  pair_up(&s, cli, name);
  arm(op, n);
  int rc = vdi_srv_request_buffers(s.srv, 131072, 0, 2);
  uint64_t calls = disarm(op);
  if (rc != 0) expect_fault_failure(rc, op, n, calls);
  /* The set carries on with the buffers it has ... */
  rt_local_srv_traffic(&s, 0, NDEV);
  if (rc != 0) {
    /* ... and takes the request once the fault is gone. */
    int again = vdi_srv_request_buffers(s.srv, 131072, 0, 2);
    note("server-reqbuf-active", op, n, calls, rc,
         again == 0 ? "traffic goes on; the retry succeeds"
                    : "traffic goes on; the retry FAILS");
    ASSERT_RC(again, 0);
  } else if (calls >= n) {
    note("server-reqbuf-active", op, n, calls, 0, "absorbed");
  }
  /* The new buffers are shared memory the client sees. */
  uint8_t *big;
  ASSERT_RC(vdi_srv_allocate_buffer(s.srv, &big, 131072, 0), 0);
  ASSERT(vdi_srv_is_shared_buffer(s.srv, big));
  ASSERT_RC(vdi_srv_free_buffer(s.srv, big, 131072), 0);
  rt_local_srv_traffic(&s, 0, NDEV);
  pair_down(&s, cli);
  vdi_srv_free(s.srv);
  lp_end(cli);
  rt_probe_expect(&base, "RequestBuffers while Active");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_server_reqbuf_active, 60) {
  sweep(sc_reqbuf_active);
  return 0;
}

/* ---------------------------------------------- the stream, server side */

#define ROUNDS 8

static int sc_stream_server(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fst"));
  rt_probe base;
  rt_probe_take(&base);
  lp_peer *cli = lp_spawn("lp_cli");
  lp_srv s;
  pair_up(&s, cli, name);
  static lp_slot sl[ROUNDS][NDEV];
  uint8_t *buf[NDEV];
  for (int d = 0; d < NDEV; d++)
    ASSERT_RC(vdi_srv_allocate_buffer(s.srv, &buf[d], 65536, 0), 0);
  int first_err = 0;
  arm(op, n);
  for (int r = 0; r < ROUNDS; r++) {
    for (int d = 0; d < NDEV; d++) {
      int64_t pos = (int64_t)r * 65536 + d;
      lp_fill(buf[d], 65536, (uint32_t)pos);
      lp_slot_init(&sl[r][d], VDC_Write, 65536, pos, buf[d]);
      int rc = vdi_srvdev_send_command(s.dev[d], &sl[r][d].cmd);
      if (rc != 0) {
        /* A refused send has run the routine already. */
        ASSERT_EQ(atomic_load(&sl[r][d].calls), 1);
        if (!first_err) first_err = rc;
      }
    }
    /* Let the agent go to sleep between rounds. */
    for (int d = 0; d < NDEV; d++)
      ASSERT(lp_slot_wait(&sl[r][d], 5000));
    sleep_ms(1);
  }
  uint64_t calls = disarm(op);
  /* Every command came back, each with a definite code. */
  int bad = 0;
  for (int r = 0; r < ROUNDS; r++)
    for (int d = 0; d < NDEV; d++) {
      ASSERT_EQ(atomic_load(&sl[r][d].calls), 1);
      if (sl[r][d].code != 0) bad = sl[r][d].code;
    }
  /* A wait that failed between commands (the agent's futex) ends the
   * operation (VD_E_UNEXPECTED) rather than spinning on: that too is a
   * clean failure, seen on the set. */
  VDConfig now_cfg;
  int set_rc = vdi_srv_get_configuration(s.srv, &now_cfg);
  if (!first_err && set_rc != 0) first_err = set_rc;
  if (first_err) expect_fault_failure(first_err, op, n, calls);
  if (first_err || bad) {
    note("stream-server", op, n, calls, first_err, "aborted");
    vdi_srv_signal_abort(s.srv);
    int j = lp_call(cli, "sjoin 5000");
    ASSERT(j == VD_E_ABORT || j == 0);
    lp_srv_agent_join(&s, 5000);
    vdi_srv_close(s.srv);
    lp_call(cli, "close");
    rt_full_local_server(s.srv, unique_name("fst2"), NDEV, cli);
  } else {
    if (calls >= n) note("stream-server", op, n, calls, 0, "absorbed");
    for (int d = 0; d < NDEV; d++)
      ASSERT_RC(vdi_srv_free_buffer(s.srv, buf[d], 65536), 0);
    pair_down(&s, cli);
  }
  vdi_srv_free(s.srv);
  lp_end(cli);
  rt_probe_expect(&base, "command stream, server side");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_stream_server, 60) {
  sweep(sc_stream_server);
  return 0;
}

/* ---------------------------------------------- the stream, client side */

static int sc_stream_client(int op, uint64_t n) {
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("fsk"));
  rt_probe base;
  rt_probe_take(&base);
  vdi_set_t *set;
  VDConfig cfg = lp_cfg(NDEV, VDF_LikePipe), got;
  ASSERT_RC(vdi_set_new(&set), 0);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  lp_peer *srv = lp_spawn("lp_srv");
  ASSERT_RC(lp_call(srv, "config %s %u 4096 0 65536 %d", name, VDF_WriteMedia,
                    2 * NDEV + 2),
            0);
  ASSERT_RC(lp_call(srv, "odevs %s %d", name, NDEV), 0);
  ASSERT_RC(lp_call(srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(set, 5000, &got), 0);
  sync_segments(set);
  rt_serve sv;
  arm(op, n);
  ASSERT_RC(rt_serve_open(&sv, set, name, 0, NDEV), 0);
  /* The serving threads sleep between rounds; on a failing call they
   * SignalAbort, as a real client does. */
  int aborted = 0;
  for (int r = 0; r < ROUNDS && !aborted; r++) {
    for (int d = 0; d < NDEV; d++) {
      int b = d;
      int arc = lp_call(srv, "alloc %d 65536 0", b);
      if (arc == VD_E_ABORT) {
        aborted = 1;
        break;
      }
      ASSERT_RC(arc, 0);
      lp_call(srv, "fill %d 0 65536 %d", b, r * 65536 + d);
      int rc = lp_call(srv, "send %d %d %d 65536 %d %d", b, d, VDC_Write,
                       r * 65536 + d, b);
      if (rc != 0) aborted = 1;
    }
    for (int d = 0; d < NDEV && !aborted; d++) {
      ASSERT_RC(lp_call(srv, "wait %d 5000", d), 1);
      if (lp_v(srv, 0) != 0) aborted = 1;
    }
    for (int d = 0; d < NDEV; d++)
      lp_call(srv, "free %d 65536", d);
    sleep_ms(1);
  }
  for (int i = 0; i < NDEV && !aborted; i++) {
    int c = lp_call(srv, "cdev %d", i);
    if (c == VD_E_ABORT)
      aborted = 1;
    else
      ASSERT_RC(c, 0);
  }
  int rc = rt_serve_join(&sv);
  uint64_t calls = disarm(op);
  if (rc != 0) expect_fault_failure(rc, op, n, calls);
  /* An abort comes only from a serving thread's failure. */
  if (aborted) ASSERT(rc != 0);
  int j = lp_call(srv, "join 5000");
  if (rc != 0)
    ASSERT(j == VD_E_ABORT || j == 0);
  else
    ASSERT_RC(j, 0);
  if (rc != 0)
    note("stream-client", op, n, calls, rc, "agent returns VD_E_ABORT");
  else if (calls >= n)
    note("stream-client", op, n, calls, 0, "absorbed");
  lp_call(srv, "close");
  int crc = vdi_set_close(set);
  ASSERT(crc == 0 || (aborted && crc == VD_E_OPEN));
  lp_end(srv);
  rt_probe_expect(&base, "command stream, client side");
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  srv = lp_spawn("lp_srv");
  rt_full_local_client(set, name, NDEV, srv);
  lp_end(srv);
  vdi_set_free(set);
  rt_probe_expect(&base, "command stream, after the round trip");
  return calls >= n;
}

TEST_IMPL_TIMEOUT(lib_fault_stream_client, 60) {
  sweep(sc_stream_client);
  return 0;
}
