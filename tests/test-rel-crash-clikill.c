/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-crash-clikill.c - crash matrix, the client dies: the client
 * process (the lp_cli peer of lib_peer.c) is SIGKILLed at each protocol
 * state while this process is the server.  The completion agent, blocked
 * waiting for completions, must return VD_E_ABORT within 100 ms of the
 * moment the dead client is reaped, every outstanding command's routine
 * must run exactly once with ERROR_OPERATION_ABORTED in that time, the
 * set's name must be free at once (the listener died with the client),
 * and after Close this process holds exactly what it held before.
 */
#include "rel_util.h"

#define MT     65536u
#define WITHIN 100000 /* us */

struct ss {
  rel_snap snap;
  char name[96];
  char dn[8][128];
  lp_srv s;
  lp_peer *cli;
  int ndev;
};

static void begin(struct ss *v, const char *tag, int ndev, uint32_t cfeat) {
  memset(v, 0, sizeof *v);
  v->snap = rel_snap_take();
  snprintf(v->name, sizeof v->name, "%s", unique_name(tag));
  v->ndev = ndev;
  for (int i = 0; i < ndev; i++)
    lp_devname(v->name, i, v->dn[i], sizeof v->dn[i]);
  v->cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(v->cli, "create %s %d %u 0 0 0", v->name, ndev, cfeat), 0);
  ASSERT_RC(vdi_srv_new(&v->s.srv), 0);
}

/* Configured with 8 buffers, nopen devices opened by us; the client has
 * the configuration and opened cli_open devices. */
static void configure(struct ss *v, uint32_t sfeat, int nopen, int cli_open) {
  lp_srv_config(&v->s, v->name, sfeat, 4096, MT, 8);
  lp_srv_open_devs(&v->s, v->name, nopen);
  ASSERT_RC(lp_call(v->cli, "cfg 2000"), 0);
  for (int i = 0; i < cli_open; i++)
    ASSERT_RC(lp_call(v->cli, "odev %d %s", i, v->dn[i]), 0);
}

static void send(struct ss *v, lp_slot *sl, int dev, int code) {
  uint8_t *b = NULL;
  int size = 0;
  if (code == VDC_Write || code == VDC_Read) {
    ASSERT_RC(vdi_srv_allocate_buffer(v->s.srv, &b, MT, 0), 0);
    size = (int)MT;
  }
  lp_slot_init(sl, code, size, 0, b);
  ASSERT_RC(vdi_srvdev_send_command(v->s.dev[dev], &sl->cmd), 0);
}

/* Each routine ran exactly once, aborted, within 100 ms of the death. */
static void aborted_once(lp_slot *sl, int n, int64_t dead) {
  sleep_ms(20); /* a second call would show now */
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(atomic_load(&sl[i].calls), 1);
    ASSERT_EQ(sl[i].code, ERROR_OPERATION_ABORTED);
    ASSERT_LT(sl[i].at_us - dead, WITHIN);
  }
}

/* A server-side call that does not block: polled until it reports the
 * abort, which must happen within 100 ms of the death. */
static void abort_seen(struct ss *v, int64_t dead) {
  VDConfig cfg;
  int rc;
  while ((rc = vdi_srv_get_configuration(v->s.srv, &cfg)) == 0 &&
         now_us() - dead < 3000000)
    sleep_ms(1);
  ASSERT_RC(rc, VD_E_ABORT);
  ASSERT_LT(now_us() - dead, WITHIN);
}

static void finish(struct ss *v, int close_rc) {
  ASSERT_RC(vdi_srv_close(v->s.srv), close_rc);
  vdi_srv_free(v->s.srv);
  rel_snap_check(&v->snap);
  rel_name_free(v->name);
}

/* Attached (Connected), not configured: no call of ours blocks here, the
 * next one reports the abort.  The name is free at once, while our server
 * object is still open. */
TEST_IMPL(rel_crash_clikill_before_config) {
  struct ss v;
  VDConfig cfg;
  begin(&v, "ckpre", 1, VDF_LikePipe);
  ASSERT_RC(vdi_srv_open(v.s.srv, NULL, v.name), 0);
  ASSERT_RC(vdi_srv_get_configuration(v.s.srv, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, 1);
  int64_t dead = rel_peer_kill(v.cli);
  abort_seen(&v, dead);
  rel_name_free(v.name);
  ASSERT_RC(
      vdi_srv_begin_configuration(v.s.srv, VDF_WriteMedia, 4096, 0, MT, 0),
      VD_E_ABORT);
  finish(&v, 0);
  return 0;
}

/* Configured and the agent running, but the client never called
 * GetConfiguration: the agent is woken. */
TEST_IMPL(rel_crash_clikill_before_getconfiguration) {
  struct ss v;
  begin(&v, "ckpgc", 2, VDF_LikePipe);
  lp_srv_config(&v.s, v.name, VDF_WriteMedia, 4096, MT, 8);
  lp_srv_open_devs(&v.s, v.name, 2);
  rel_block agent = {.what = REL_AGENT, .srv = v.s.srv};
  rel_block_start(&agent);
  int64_t dead = rel_peer_kill(v.cli);
  rel_block_join(&agent, dead, VD_E_ABORT, WITHIN);
  rel_name_free(v.name);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), VD_E_ABORT);
  finish(&v, 0);
  return 0;
}

/* Between BeginConfiguration and EndConfiguration. */
TEST_IMPL(rel_crash_clikill_in_config) {
  struct ss v;
  begin(&v, "ckcfg", 2, VDF_LikePipe);
  ASSERT_RC(vdi_srv_open(v.s.srv, NULL, v.name), 0);
  ASSERT_RC(
      vdi_srv_begin_configuration(v.s.srv, VDF_WriteMedia, 4096, 0, MT, 0), 0);
  ASSERT_RC(vdi_srv_request_buffers(v.s.srv, MT, 0, 4), 0);
  int64_t dead = rel_peer_kill(v.cli);
  abort_seen(&v, dead);
  ASSERT_RC(vdi_srv_request_buffers(v.s.srv, MT, 0, 1), VD_E_ABORT);
  ASSERT_RC(vdi_srv_end_configuration(v.s.srv), VD_E_ABORT);
  rel_name_free(v.name);
  finish(&v, 0);
  return 0;
}

/* Two of three devices named by us, one opened by the client; the agent
 * waits. */
TEST_IMPL(rel_crash_clikill_between_opendevice) {
  struct ss v;
  begin(&v, "ckodv", 3, VDF_LikePipe);
  configure(&v, VDF_WriteMedia, 2, 1);
  rel_block agent = {.what = REL_AGENT, .srv = v.s.srv};
  rel_block_start(&agent);
  int64_t dead = rel_peer_kill(v.cli);
  rel_block_join(&agent, dead, VD_E_ABORT, WITHIN);
  vdi_srvdev_t *d = NULL;
  ASSERT_RC(vdi_srv_open_device(v.s.srv, v.dn[2], &d), VD_E_ABORT);
  ASSERT_NULL(d);
  rel_name_free(v.name);
  finish(&v, 0);
  return 0;
}

/* Commands on three devices: fetched and held on 0 and 1, still queued on
 * 1 and 2. */
TEST_IMPL(rel_crash_clikill_commands_outstanding) {
  struct ss v;
  static lp_slot sl[5];
  begin(&v, "ckcmd", 3, VDF_LikePipe);
  configure(&v, VDF_WriteMedia, 3, 3);
  rel_block agent = {.what = REL_AGENT, .srv = v.s.srv};
  rel_block_start(&agent);
  send(&v, &sl[0], 0, VDC_Write);
  send(&v, &sl[1], 1, VDC_Write);
  send(&v, &sl[2], 1, VDC_Write);
  send(&v, &sl[3], 2, VDC_Flush);
  send(&v, &sl[4], 2, VDC_Write);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), 0);
  ASSERT_RC(lp_call(v.cli, "get 1 1 2000"), 0);
  int64_t dead = rel_peer_kill(v.cli);
  rel_block_join(&agent, dead, VD_E_ABORT, WITHIN);
  aborted_once(sl, 5, dead);
  static lp_slot late;
  lp_slot_init(&late, VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[0], &late.cmd), VD_E_ABORT);
  ASSERT_EQ(atomic_load(&late.calls), 1);
  ASSERT_EQ(late.code, ERROR_OPERATION_ABORTED);
  rel_name_free(v.name);
  /* Devices never closed, but the set is aborted: Close is 0 (as after
   * SignalAbort) and releases everything. */
  finish(&v, 0);
  return 0;
}

/* The client holds a VDC_Flush and a VDC_Complete. */
TEST_IMPL(rel_crash_clikill_in_flush_complete) {
  struct ss v;
  static lp_slot sl[2];
  begin(&v, "ckfc", 2, VDF_LikePipe | VDF_RequestComplete);
  configure(&v, VDF_WriteMedia | VDF_CompleteEnabled, 2, 2);
  rel_block agent = {.what = REL_AGENT, .srv = v.s.srv};
  rel_block_start(&agent);
  send(&v, &sl[0], 0, VDC_Flush);
  send(&v, &sl[1], 1, VDC_Complete);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), 0);
  ASSERT_EQ(lp_v(v.cli, 0), VDC_Flush);
  ASSERT_RC(lp_call(v.cli, "get 1 1 2000"), 0);
  ASSERT_EQ(lp_v(v.cli, 0), VDC_Complete);
  int64_t dead = rel_peer_kill(v.cli);
  rel_block_join(&agent, dead, VD_E_ABORT, WITHIN);
  aborted_once(sl, 2, dead);
  for (int i = 0; i < 2; i++)
    ASSERT_RC(vdi_srvdev_close_device(v.s.dev[i]), VD_E_ABORT);
  rel_name_free(v.name);
  finish(&v, 0);
  return 0;
}

/* We closed device 0 (the client saw VD_E_CLOSE); device 1 is open with a
 * Flush the client holds. */
TEST_IMPL(rel_crash_clikill_in_closedevice) {
  struct ss v;
  static lp_slot sl;
  begin(&v, "ckcd", 2, VDF_LikePipe);
  configure(&v, VDF_WriteMedia, 2, 2);
  rel_block agent = {.what = REL_AGENT, .srv = v.s.srv};
  rel_block_start(&agent);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), 0);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), VD_E_CLOSE);
  send(&v, &sl, 1, VDC_Flush);
  ASSERT_RC(lp_call(v.cli, "get 1 0 2000"), 0);
  int64_t dead = rel_peer_kill(v.cli);
  rel_block_join(&agent, dead, VD_E_ABORT, WITHIN);
  aborted_once(&sl, 1, dead);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[1]), VD_E_ABORT);
  rel_name_free(v.name);
  finish(&v, 0);
  return 0;
}

/* Around Close: every device ended normally, the client saw VD_E_CLOSE on
 * each and died, once after its Close and once before.  The normal end
 * stands: no abort, a normal Close. */
static void clikill_after_normal_end(int client_closed) {
  struct ss v;
  VDConfig cfg;
  static lp_slot sl;
  begin(&v, client_closed ? "ckcl1" : "ckcl0", 2, VDF_LikePipe);
  configure(&v, VDF_WriteMedia, 2, 2);
  rel_block agent = {.what = REL_AGENT, .srv = v.s.srv};
  rel_block_start(&agent);
  send(&v, &sl, 0, VDC_Flush);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), 0);
  ASSERT_RC(lp_call(v.cli, "comp 0 0 0 0 0"), 0);
  ASSERT_EQ(lp_slot_wait(&sl, 2000), 1);
  for (int i = 0; i < 2; i++) {
    ASSERT_RC(vdi_srvdev_close_device(v.s.dev[i]), 0);
    ASSERT_RC(lp_call(v.cli, "get %d 1 2000", i), VD_E_CLOSE);
  }
  rel_block_join(&agent, now_us(), 0, 2000000);
  if (client_closed) ASSERT_RC(lp_call(v.cli, "close"), 0);
  rel_peer_kill(v.cli);
  sleep_ms(50); /* time for a wrongly raised abort to show */
  ASSERT_RC(vdi_srv_get_configuration(v.s.srv, &cfg), 0);
  ASSERT_EQ(atomic_load(&sl.calls), 1);
  ASSERT_EQ(sl.code, 0);
  rel_name_free(v.name);
  finish(&v, 0);
}

TEST_IMPL(rel_crash_clikill_after_close) {
  clikill_after_normal_end(1);
  return 0;
}

TEST_IMPL(rel_crash_clikill_before_close) {
  clikill_after_normal_end(0);
  return 0;
}
