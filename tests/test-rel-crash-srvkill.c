/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-crash-srvkill.c - crash matrix, the server dies: a server
 * process (the lp_srv peer of lib_peer.c) is SIGKILLed at each protocol
 * state while this process, the client, has threads blocked in
 * infinite-timeout calls.  Each blocked call must return VD_E_ABORT within
 * 100 ms of the moment the dead server is reaped; later calls return the
 * same; and once the set is closed this process holds exactly the
 * descriptors, threads and /dev/shm entries it held before the set existed,
 * and the set's name can be created again at once.
 */
#include "rel_util.h"

#define MT     65536u
#define WITHIN 100000 /* us */

struct cs {
  rel_snap snap;
  char name[96];
  char dn[8][128];
  vdi_set_t *set;
  lp_peer *srv;
  int ndev;
  vdi_device_t *dev[8];
};

/* The set (ndev devices, client features cfeat) and a server process that
 * has done nothing yet. */
static void begin(struct cs *c, const char *tag, int ndev, uint32_t cfeat) {
  memset(c, 0, sizeof *c);
  c->snap = rel_snap_take();
  snprintf(c->name, sizeof c->name, "%s", unique_name(tag));
  c->ndev = ndev;
  for (int i = 0; i < ndev; i++)
    lp_devname(c->name, i, c->dn[i], sizeof c->dn[i]);
  ASSERT_RC(vdi_set_new(&c->set), 0);
  VDConfig cfg = lp_cfg((uint32_t)ndev, cfeat);
  ASSERT_RC(vdi_set_create(c->set, c->name, &cfg), 0);
  c->srv = lp_spawn("lp_srv");
}

/* The server configures (features sfeat, 8 buffers) and names nopen
 * devices; we get the configuration. */
static void configure(struct cs *c, uint32_t sfeat, int nopen) {
  VDConfig cfg;
  ASSERT_RC(lp_call(c->srv, "config %s %u 4096 0 %u 8", c->name, sfeat, MT), 0);
  for (int i = 0; i < nopen; i++)
    ASSERT_RC(lp_call(c->srv, "odev %s", c->dn[i]), 0);
  ASSERT_RC(lp_call(c->srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(c->set, 2000, &cfg), 0);
}

static void open_dev(struct cs *c, int i) {
  ASSERT_RC(vdi_set_open_device(c->set, c->dn[i], &c->dev[i]), 0);
}

/* After the kill: close (0: an aborted set closes cleanly), free, and
 * nothing is left behind. */
static void finish(struct cs *c, int close_rc) {
  ASSERT_RC(vdi_set_close(c->set), close_rc);
  vdi_set_free(c->set);
  rel_snap_check(&c->snap);
  rel_name_free(c->name);
}

/* Poisoned after the death: every later call says VD_E_ABORT. */
static void all_abort(struct cs *c) {
  VDConfig cfg;
  VDC_Command *cmd;
  ASSERT_RC(vdi_set_get_configuration(c->set, 0, &cfg), VD_E_ABORT);
  ASSERT_RC(vdi_set_get_configuration(c->set, -1, &cfg), VD_E_ABORT);
  for (int i = 0; i < c->ndev; i++)
    if (c->dev[i])
      ASSERT_RC(vdi_dev_get_command(c->dev[i], -1, &cmd), VD_E_ABORT);
}

/* The server has attached but not configured: GetConfiguration(INFINITE)
 * is woken.  Before that, a server that dies before attaching is not a
 * peer yet: GetConfiguration simply times out (the application watches
 * its engine, as vdi does). */
TEST_IMPL(rel_crash_srvkill_before_config) {
  struct cs c;
  VDConfig cfg;
  begin(&c, "skpre", 1, VDF_LikePipe);
  lp_peer *early = lp_spawn("lp_srv");
  rel_peer_kill(early);
  int64_t t0 = now_ms();
  ASSERT_RC(vdi_set_get_configuration(c.set, 50, &cfg), VD_E_TIMEOUT);
  ASSERT_GE(now_ms() - t0, 50);
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
  rel_block b = {.what = REL_GETCFG, .set = c.set};
  rel_block_start(&b);
  int64_t dead = rel_peer_kill(c.srv);
  rel_block_join(&b, dead, VD_E_ABORT, WITHIN);
  all_abort(&c);
  finish(&c, 0);
  return 0;
}

/* Between BeginConfiguration (and RequestBuffers) and EndConfiguration. */
TEST_IMPL(rel_crash_srvkill_in_config) {
  struct cs c;
  begin(&c, "skcfg", 2, VDF_LikePipe);
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
  ASSERT_RC(lp_call(c.srv, "begin %u 4096 0 %u 1000", VDF_WriteMedia, MT), 0);
  ASSERT_RC(lp_call(c.srv, "reqbuf %u 0 4", MT), 0);
  rel_block b = {.what = REL_GETCFG, .set = c.set};
  rel_block_start(&b);
  int64_t dead = rel_peer_kill(c.srv);
  rel_block_join(&b, dead, VD_E_ABORT, WITHIN);
  all_abort(&c);
  finish(&c, 0);
  return 0;
}

/* The server named device 0 of 3; we opened it.  One thread waits in
 * OpenDevice for a name the server never gives, one in GetCommand. */
TEST_IMPL(rel_crash_srvkill_between_opendevice) {
  struct cs c;
  begin(&c, "skodv", 3, VDF_LikePipe);
  configure(&c, VDF_WriteMedia, 1);
  open_dev(&c, 0);
  rel_block wait_name = {.what = REL_OPENDEV, .set = c.set, .name = c.dn[1]};
  rel_block get = {.what = REL_GETCMD, .dev = c.dev[0]};
  rel_block_start(&wait_name);
  rel_block_start(&get);
  int64_t dead = rel_peer_kill(c.srv);
  rel_block_join(&wait_name, dead, VD_E_ABORT, WITHIN);
  rel_block_join(&get, dead, VD_E_ABORT, WITHIN);
  ASSERT_NULL(wait_name.out);
  vdi_device_t *d = (vdi_device_t *)&c;
  ASSERT_RC(vdi_set_open_device(c.set, c.dn[2], &d), VD_E_ABORT);
  ASSERT_NULL(d);
  all_abort(&c);
  /* Devices were open: still, an aborted set closes with 0. */
  finish(&c, 0);
  return 0;
}

/* Every device open; commands fetched and held on devices 0 and 1, one
 * more queued on 1, a thread blocked on device 2. */
TEST_IMPL(rel_crash_srvkill_commands_outstanding) {
  struct cs c;
  VDC_Command *held[2];
  begin(&c, "skcmd", 3, VDF_LikePipe);
  configure(&c, VDF_WriteMedia, 3);
  for (int i = 0; i < 3; i++)
    open_dev(&c, i);
  ASSERT_RC(lp_call(c.srv, "alloc 0 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "alloc 1 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d %u 0 0", VDC_Write, MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 1 1 %d %u 0 1", VDC_Write, MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 2 1 %d 0 0 -1", VDC_Flush), 0);
  for (int i = 0; i < 2; i++) {
    ASSERT_RC(vdi_dev_get_command(c.dev[i], 2000, &held[i]), 0);
    ASSERT_EQ(held[i]->commandCode, VDC_Write);
  }
  rel_block get = {.what = REL_GETCMD, .dev = c.dev[2]};
  rel_block_start(&get);
  int64_t dead = rel_peer_kill(c.srv);
  rel_block_join(&get, dead, VD_E_ABORT, WITHIN);
  /* The held commands cannot be completed any more; the queued Flush is
   * never delivered. */
  for (int i = 0; i < 2; i++)
    ASSERT_RC(vdi_dev_complete_command(c.dev[i], held[i], 0, MT, 0),
              VD_E_ABORT);
  all_abort(&c);
  finish(&c, 0);
  return 0;
}

/* The client holds a VDC_Flush (device 0) and a VDC_Complete (device 1)
 * without completing them, and waits for more on both devices. */
TEST_IMPL(rel_crash_srvkill_in_flush_complete) {
  struct cs c;
  VDC_Command *fl, *co;
  begin(&c, "skfc", 2, VDF_LikePipe | VDF_RequestComplete);
  configure(&c, VDF_WriteMedia | VDF_CompleteEnabled, 2);
  open_dev(&c, 0);
  open_dev(&c, 1);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(lp_call(c.srv, "send 1 1 %d 0 0 -1", VDC_Complete), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &fl), 0);
  ASSERT_EQ(fl->commandCode, VDC_Flush);
  ASSERT_RC(vdi_dev_get_command(c.dev[1], 2000, &co), 0);
  ASSERT_EQ(co->commandCode, VDC_Complete);
  rel_block g0 = {.what = REL_GETCMD, .dev = c.dev[0]};
  rel_block g1 = {.what = REL_GETCMD, .dev = c.dev[1]};
  rel_block_start(&g0);
  rel_block_start(&g1);
  int64_t dead = rel_peer_kill(c.srv);
  rel_block_join(&g0, dead, VD_E_ABORT, WITHIN);
  rel_block_join(&g1, dead, VD_E_ABORT, WITHIN);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], fl, 0, 0, 0), VD_E_ABORT);
  ASSERT_RC(vdi_dev_complete_command(c.dev[1], co, 0, 0, 0), VD_E_ABORT);
  all_abort(&c);
  finish(&c, 0);
  return 0;
}

/* The server closed device 0 (we saw VD_E_CLOSE) but not device 1. */
TEST_IMPL(rel_crash_srvkill_in_closedevice) {
  struct cs c;
  VDC_Command *cmd;
  begin(&c, "skcd", 2, VDF_LikePipe);
  configure(&c, VDF_WriteMedia, 2);
  open_dev(&c, 0);
  open_dev(&c, 1);
  ASSERT_RC(lp_call(c.srv, "cdev 0"), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), VD_E_CLOSE);
  rel_block get = {.what = REL_GETCMD, .dev = c.dev[1]};
  rel_block_start(&get);
  int64_t dead = rel_peer_kill(c.srv);
  rel_block_join(&get, dead, VD_E_ABORT, WITHIN);
  VDConfig cfg;
  ASSERT_RC(vdi_set_get_configuration(c.set, -1, &cfg), VD_E_ABORT);
  /* Device 0 had ended normally; the set as a whole is aborted now. */
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 0, &cmd), VD_E_ABORT);
  finish(&c, 0);
  return 0;
}

/* Around Close: the server ended every device normally and then died,
 * once after its own Close, once before it.  A normal end is not undone by
 * the death: no abort, and our Close is a normal one. */
static void srvkill_after_normal_end(int server_closed) {
  struct cs c;
  VDC_Command *cmd;
  VDConfig cfg;
  begin(&c, server_closed ? "skcl1" : "skcl0", 2, VDF_LikePipe);
  configure(&c, VDF_WriteMedia, 2);
  open_dev(&c, 0);
  open_dev(&c, 1);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_RC(lp_call(c.srv, "cdev 0"), 0);
  ASSERT_RC(lp_call(c.srv, "cdev 1"), 0);
  ASSERT_RC(lp_call(c.srv, "join 2000"), 0);
  if (server_closed) ASSERT_RC(lp_call(c.srv, "close"), 0);
  rel_peer_kill(c.srv);
  sleep_ms(50); /* time for a wrongly raised abort to show */
  for (int i = 0; i < 2; i++)
    ASSERT_RC(vdi_dev_get_command(c.dev[i], 1000, &cmd), VD_E_CLOSE);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), 0);
  finish(&c, 0);
}

TEST_IMPL(rel_crash_srvkill_after_close) {
  srvkill_after_normal_end(1);
  return 0;
}

TEST_IMPL(rel_crash_srvkill_before_close) {
  srvkill_after_normal_end(0);
  return 0;
}
