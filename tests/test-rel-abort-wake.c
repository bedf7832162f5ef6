/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-abort-wake.c - abort matrix: SignalAbort from either side (and
 * from a secondary client) at each state while the other side, or another
 * thread of the same side, is blocked in an infinite wait.  The blocked
 * call must return VD_E_ABORT within 100 ms of the SignalAbort call's
 * return, the completion agent must complete every outstanding command
 * exactly once with ERROR_OPERATION_ABORTED, and later completions are
 * refused without reaching the server.  The state table itself (each call
 * in each state after an abort) is in test-lib-state-*.c (lib_st_*).
 */
#include "rel_util.h"

#define MT     65536u
#define WITHIN 100000 /* us */

/* ------------------------------------------------- this process: client */

struct cs {
  char name[96];
  char dn[4][128];
  vdi_set_t *set;
  lp_peer *srv;
  vdi_device_t *dev[4];
};

static void cs_begin(struct cs *c, const char *tag, int ndev) {
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", unique_name(tag));
  for (int i = 0; i < ndev; i++)
    lp_devname(c->name, i, c->dn[i], sizeof c->dn[i]);
  ASSERT_RC(vdi_set_new(&c->set), 0);
  VDConfig cfg = lp_cfg((uint32_t)ndev, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(c->set, c->name, &cfg), 0);
  c->srv = lp_spawn("lp_srv");
}

static void cs_end(struct cs *c) {
  ASSERT_RC(vdi_set_close(c->set), 0);
  ASSERT_RC(lp_call(c->srv, "close"), 0);
  lp_end(c->srv);
  vdi_set_free(c->set);
}

/* A remote abort: returns when the server's SignalAbort has returned. */
static int64_t srv_abort(struct cs *c) {
  ASSERT_RC(lp_call(c->srv, "abort"), 0);
  return now_us();
}

/* GetConfiguration(INFINITE) blocked while the server is attached
 * (stage 0: Connected) or configuring (stage 1: after Begin and
 * RequestBuffers); the server aborts. */
static void getcfg_woken_by_server(int stage) {
  struct cs c;
  cs_begin(&c, stage ? "awcf1" : "awcf0", 1);
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
  if (stage) {
    ASSERT_RC(lp_call(c.srv, "begin %u 4096 0 %u 0", VDF_WriteMedia, MT), 0);
    ASSERT_RC(lp_call(c.srv, "reqbuf %u 0 2", MT), 0);
  }
  rel_block b = {.what = REL_GETCFG, .set = c.set};
  rel_block_start(&b);
  int64_t t = srv_abort(&c);
  rel_block_join(&b, t, VD_E_ABORT, WITHIN);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0); /* already aborted: 0 */
  ASSERT_RC(lp_call(c.srv, "end"), VD_E_ABORT);
  cs_end(&c);
}

TEST_IMPL(rel_abort_srv_wakes_getconfig_connected) {
  getcfg_woken_by_server(0);
  return 0;
}

TEST_IMPL(rel_abort_srv_wakes_getconfig_configurable) {
  getcfg_woken_by_server(1);
  return 0;
}

/* Our own SignalAbort, from another thread, wakes our GetConfiguration:
 * with no server yet, and with one attached (which then sees the abort). */
TEST_IMPL(rel_abort_cli_wakes_own_getconfig) {
  for (int attached = 0; attached < 2; attached++) {
    struct cs c;
    cs_begin(&c, attached ? "awog1" : "awog0", 1);
    if (attached) ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
    rel_block b = {.what = REL_GETCFG, .set = c.set};
    rel_block_start(&b);
    ASSERT_RC(vdi_set_signal_abort(c.set), 0);
    rel_block_join(&b, now_us(), VD_E_ABORT, WITHIN);
    if (attached) {
      ASSERT_RC(lp_call(c.srv, "cfg"), VD_E_ABORT);
      ASSERT_RC(lp_call(c.srv, "close"), 0);
    } else {
      /* No server can attach to an aborted set. */
      ASSERT_RC(lp_call(c.srv, "open %s", c.name), VD_E_ABORT);
    }
    ASSERT_RC(vdi_set_close(c.set), 0);
    lp_end(c.srv);
    vdi_set_free(c.set);
  }
  return 0;
}

/* Initializing: OpenDevice waits for a name the server has not given;
 * the server aborts (first), or another thread of ours does (second). */
TEST_IMPL(rel_abort_wakes_opendevice_wait) {
  for (int ours = 0; ours < 2; ours++) {
    struct cs c;
    VDConfig cfg;
    cs_begin(&c, ours ? "awod1" : "awod0", 2);
    ASSERT_RC(
        lp_call(c.srv, "config %s %u 4096 0 %u 4", c.name, VDF_WriteMedia, MT),
        0);
    ASSERT_RC(lp_call(c.srv, "odev %s", c.dn[0]), 0);
    ASSERT_RC(lp_call(c.srv, "agent"), 0);
    ASSERT_RC(vdi_set_get_configuration(c.set, 2000, &cfg), 0);
    rel_block b = {.what = REL_OPENDEV, .set = c.set, .name = c.dn[1]};
    rel_block_start(&b);
    int64_t t;
    if (ours) {
      ASSERT_RC(vdi_set_signal_abort(c.set), 0);
      t = now_us();
    } else {
      t = srv_abort(&c);
    }
    rel_block_join(&b, t, VD_E_ABORT, WITHIN);
    ASSERT_NULL(b.out);
    ASSERT_RC(lp_call(c.srv, "join 2000"), VD_E_ABORT);
    cs_end(&c);
  }
  return 0;
}

/* Active, 3 devices: commands fetched and held on 0 and 1, more queued,
 * a thread blocked on each device.  The server aborts: every blocked call
 * returns at once, every held command is refused, every routine ran once
 * with ERROR_OPERATION_ABORTED.  Our own abort afterwards is a no-op. */
TEST_IMPL(rel_abort_srv_active_many) {
  struct cs c;
  VDConfig cfg;
  VDC_Command *held[2];
  cs_begin(&c, "awact", 3);
  ASSERT_RC(
      lp_call(c.srv, "config %s %u 4096 0 %u 8", c.name, VDF_WriteMedia, MT),
      0);
  ASSERT_RC(lp_call(c.srv, "odevs %s 3", c.name), 0);
  ASSERT_RC(lp_call(c.srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 2000, &cfg), 0);
  for (int i = 0; i < 3; i++)
    ASSERT_RC(vdi_set_open_device(c.set, c.dn[i], &c.dev[i]), 0);
  ASSERT_RC(lp_call(c.srv, "alloc 0 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d %u 0 0", VDC_Write, MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 1 1 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(lp_call(c.srv, "send 2 1 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(lp_call(c.srv, "send 3 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &held[0]), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[1], 2000, &held[1]), 0);
  rel_block b2 = {.what = REL_GETCMD, .dev = c.dev[2]};
  rel_block_start(&b2);
  int64_t t = srv_abort(&c);
  rel_block_join(&b2, t, VD_E_ABORT, WITHIN);
  for (int i = 0; i < 2; i++)
    ASSERT_RC(vdi_dev_complete_command(c.dev[i], held[i], 0, 0, 0), VD_E_ABORT);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "join 2000"), VD_E_ABORT);
  sleep_ms(20);
  for (int s = 0; s < 4; s++) {
    ASSERT_EQ(lp_call(c.srv, "wait %d 0", s), 1);
    ASSERT_EQ(lp_v(c.srv, 0), ERROR_OPERATION_ABORTED);
    ASSERT_EQ(lp_v(c.srv, 3), 1); /* exactly one call */
  }
  cs_end(&c);
  return 0;
}

/* After a normal end, an abort by the other side: the set goes to Abort
 * for both (the spec's NormallyTerminated -> Abort), without harm. */
TEST_IMPL(rel_abort_srv_after_normal_end) {
  struct cs c;
  VDConfig cfg;
  VDC_Command *cmd;
  cs_begin(&c, "awnt", 1);
  ASSERT_RC(
      lp_call(c.srv, "config %s %u 4096 0 %u 2", c.name, VDF_WriteMedia, MT),
      0);
  ASSERT_RC(lp_call(c.srv, "odevs %s 1", c.name), 0);
  ASSERT_RC(lp_call(c.srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 2000, &cfg), 0);
  ASSERT_RC(vdi_set_open_device(c.set, c.dn[0], &c.dev[0]), 0);
  ASSERT_RC(lp_call(c.srv, "cdev 0"), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(lp_call(c.srv, "join 2000"), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), 0);
  srv_abort(&c);
  ASSERT_RC(lp_call(c.srv, "cfg"), VD_E_ABORT);
  int64_t end = now_ms() + 1000;
  int rc;
  while ((rc = vdi_set_get_configuration(c.set, 0, &cfg)) == 0 &&
         now_ms() < end)
    sleep_ms(1);
  ASSERT_RC(rc, VD_E_ABORT);
  cs_end(&c);
  return 0;
}

/* ------------------------------------------------- this process: server */

struct ss {
  char name[96];
  char dn[4][128];
  lp_srv s;
  lp_peer *cli;
  rel_block agent;
};

static void ss_begin(struct ss *v, const char *tag, int ndev, int cli_open) {
  memset(v, 0, sizeof *v);
  snprintf(v->name, sizeof v->name, "%s", unique_name(tag));
  for (int i = 0; i < ndev; i++)
    lp_devname(v->name, i, v->dn[i], sizeof v->dn[i]);
  v->cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(v->cli, "create %s %d 0 0 0 0", v->name, ndev), 0);
  ASSERT_RC(vdi_srv_new(&v->s.srv), 0);
  lp_srv_config(&v->s, v->name, VDF_WriteMedia, 4096, MT, 32);
  lp_srv_open_devs(&v->s, v->name, ndev);
  v->agent.what = REL_AGENT;
  v->agent.srv = v->s.srv;
  rel_block_start(&v->agent);
  ASSERT_RC(lp_call(v->cli, "cfg 2000"), 0);
  for (int i = 0; i < cli_open; i++)
    ASSERT_RC(lp_call(v->cli, "odev %d %s", i, v->dn[i]), 0);
}

static void ss_end(struct ss *v) {
  ASSERT_RC(vdi_srv_close(v->s.srv), 0);
  ASSERT_RC(lp_call(v->cli, "close"), 0);
  lp_end(v->cli);
  vdi_srv_free(v->s.srv);
}

/* Initializing (the client opened no device yet): the client's abort
 * wakes the agent. */
TEST_IMPL(rel_abort_cli_wakes_agent_initializing) {
  struct ss v;
  ss_begin(&v, "awai", 2, 0);
  ASSERT_RC(lp_call(v.cli, "abort"), 0);
  rel_block_join(&v.agent, now_us(), VD_E_ABORT, WITHIN);
  ASSERT_RC(lp_call(v.cli, "odev 0 %s", v.dn[0]), VD_E_ABORT);
  ss_end(&v);
  return 0;
}

/* Active, 3 devices with 8 commands each: 2 fetched per device, the rest
 * queued.  The client aborts: the agent returns within 100 ms, having run
 * each of the 24 routines exactly once with ERROR_OPERATION_ABORTED; the
 * client's completions of what it fetched are refused and never reach us;
 * our own later abort changes nothing. */
TEST_IMPL(rel_abort_cli_active_many) {
  struct ss v;
  static lp_slot sl[24];
  ss_begin(&v, "awcm", 3, 3);
  for (int i = 0; i < 24; i++) {
    uint8_t *b = NULL;
    int code = i % 2 ? VDC_Flush : VDC_Write;
    if (code == VDC_Write)
      ASSERT_RC(vdi_srv_allocate_buffer(v.s.srv, &b, MT, 0), 0);
    lp_slot_init(&sl[i], code, code == VDC_Write ? (int)MT : 0, i, b);
    ASSERT_RC(vdi_srvdev_send_command(v.s.dev[i % 3], &sl[i].cmd), 0);
  }
  for (int d = 0; d < 3; d++)
    for (int k = 0; k < 2; k++)
      ASSERT_RC(lp_call(v.cli, "get %d %d 2000", d, d * 2 + k), 0);
  ASSERT_RC(lp_call(v.cli, "abort"), 0);
  int64_t t = now_us();
  rel_block_join(&v.agent, t, VD_E_ABORT, WITHIN);
  for (int s = 0; s < 6; s++)
    ASSERT_RC(lp_call(v.cli, "comp %d %d 0 0 0", s / 2, s), VD_E_ABORT);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  sleep_ms(30);
  for (int i = 0; i < 24; i++) {
    ASSERT_EQ(atomic_load(&sl[i].calls), 1);
    ASSERT_EQ(sl[i].code, ERROR_OPERATION_ABORTED);
    ASSERT_EQ(atomic_load(&sl[i].bad_ctx), 0);
  }
  ss_end(&v);
  return 0;
}

/* A secondary client's SignalAbort aborts the whole set: the primary's
 * blocked GetCommand and our agent return at once. */
TEST_IMPL(rel_abort_secondary_wakes_all) {
  struct ss v;
  static lp_slot sl;
  ss_begin(&v, "awsec", 2, 1);
  lp_peer *sec = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(sec, "sec %s", v.name), 0);
  ASSERT_RC(lp_call(sec, "odev 1 %s", v.dn[1]), 0);
  lp_slot_init(&sl, VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[1], &sl.cmd), 0);
  ASSERT_RC(lp_call(sec, "get 1 0 2000"), 0);
  rel_block pget = {.what = REL_PEER, .peer = v.cli, .name = "get 0 0 -1"};
  rel_block_start(&pget);
  ASSERT_RC(lp_call(sec, "abort"), 0);
  int64_t t = now_us();
  rel_block_join(&v.agent, t, VD_E_ABORT, WITHIN);
  rel_block_join(&pget, t, VD_E_ABORT, WITHIN);
  ASSERT_EQ(atomic_load(&sl.calls), 1);
  ASSERT_EQ(sl.code, ERROR_OPERATION_ABORTED);
  ASSERT_RC(lp_call(sec, "comp 1 0 0 0 0"), VD_E_ABORT);
  ASSERT_RC(lp_call(sec, "close"), 0);
  lp_end(sec);
  ss_end(&v);
  return 0;
}
