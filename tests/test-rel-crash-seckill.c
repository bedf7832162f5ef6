/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-crash-seckill.c - crash matrix, a secondary client dies.  Three
 * processes: this one is the server, one lp_cli peer is the primary client
 * (it created the set), another lp_cli peer attached with OpenInSecondary
 * and is SIGKILLed.  A secondary that holds open devices takes the set
 * down with it: the agent and the primary's blocked GetCommand return
 * VD_E_ABORT within 100 ms of the reaping, every outstanding command is
 * completed once with ERROR_OPERATION_ABORTED.  A secondary without open
 * devices (none opened, or all closed by the server) dies alone: the set
 * goes on and ends normally.  (A secondary cannot attach before the
 * primary's GetConfiguration succeeded: lib_st_client_secondary.)
 */
#include "rel_util.h"

#define MT     65536u
#define WITHIN 100000 /* us */

struct three {
  rel_snap snap;
  char name[96];
  char dn[3][128];
  lp_srv s;
  lp_peer *pri, *sec;
  rel_block agent;
};

/* Set of 3 devices, all opened by the server, agent running; the primary
 * opened device 0; the secondary attached and opened sec_open devices
 * starting at 1. */
static void begin(struct three *x, const char *tag, uint32_t cfeat,
                  uint32_t sfeat, int sec_open) {
  memset(x, 0, sizeof *x);
  x->snap = rel_snap_take();
  snprintf(x->name, sizeof x->name, "%s", unique_name(tag));
  for (int i = 0; i < 3; i++)
    lp_devname(x->name, i, x->dn[i], sizeof x->dn[i]);
  x->pri = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(x->pri, "create %s 3 %u 0 0 0", x->name, cfeat), 0);
  ASSERT_RC(vdi_srv_new(&x->s.srv), 0);
  lp_srv_config(&x->s, x->name, sfeat, 4096, MT, 8);
  lp_srv_open_devs(&x->s, x->name, 3);
  x->agent.what = REL_AGENT;
  x->agent.srv = x->s.srv;
  rel_block_start(&x->agent);
  ASSERT_RC(lp_call(x->pri, "cfg 2000"), 0);
  ASSERT_RC(lp_call(x->pri, "odev 0 %s", x->dn[0]), 0);
  x->sec = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(x->sec, "sec %s", x->name), 0);
  for (int i = 1; i <= sec_open; i++)
    ASSERT_RC(lp_call(x->sec, "odev %d %s", i, x->dn[i]), 0);
}

static void send(struct three *x, lp_slot *sl, int dev, int code) {
  uint8_t *b = NULL;
  int size = 0;
  if (code == VDC_Write) {
    ASSERT_RC(vdi_srv_allocate_buffer(x->s.srv, &b, MT, 0), 0);
    size = (int)MT;
  }
  lp_slot_init(sl, code, size, 0, b);
  ASSERT_RC(vdi_srvdev_send_command(x->s.dev[dev], &sl->cmd), 0);
}

static void finish(struct three *x, int srv_close_rc) {
  ASSERT_RC(lp_call(x->pri, "close"), 0);
  lp_end(x->pri);
  ASSERT_RC(vdi_srv_close(x->s.srv), srv_close_rc);
  vdi_srv_free(x->s.srv);
  rel_snap_check(&x->snap);
  rel_name_free(x->name);
}

/* The secondary dies holding devices: the whole set aborts.  slots/n: the
 * commands outstanding at that moment. */
static void dies_with_devices(struct three *x, lp_slot *sl, int n) {
  rel_block pget = {.what = REL_PEER, .peer = x->pri, .name = "get 0 9 -1"};
  rel_block_start(&pget);
  int64_t dead = rel_peer_kill(x->sec);
  rel_block_join(&x->agent, dead, VD_E_ABORT, WITHIN);
  rel_block_join(&pget, dead, VD_E_ABORT, WITHIN);
  sleep_ms(20);
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(atomic_load(&sl[i].calls), 1);
    ASSERT_EQ(sl[i].code, ERROR_OPERATION_ABORTED);
    ASSERT_LT(sl[i].at_us - dead, WITHIN);
  }
  ASSERT_RC(lp_call(x->pri, "cfg 0"), VD_E_ABORT);
  ASSERT_RC(lp_call(x->pri, "odev 1 %s", x->dn[1]), VD_E_ABORT);
  finish(x, 0);
}

/* Devices 1 and 2 open in the secondary, a Flush fetched on 1, a Write
 * queued on 2, a Write queued on the primary's device 0. */
TEST_IMPL(rel_crash_seckill_commands_outstanding) {
  struct three x;
  static lp_slot sl[3];
  begin(&x, "xkcmd", VDF_LikePipe, VDF_WriteMedia, 2);
  send(&x, &sl[0], 1, VDC_Flush);
  send(&x, &sl[1], 2, VDC_Write);
  ASSERT_RC(lp_call(x.sec, "get 1 0 2000"), 0);
  ASSERT_EQ(lp_v(x.sec, 0), VDC_Flush);
  /* The primary's device: a command fetched and held, so its next
   * GetCommand blocks. */
  send(&x, &sl[2], 0, VDC_Write);
  ASSERT_RC(lp_call(x.pri, "get 0 0 2000"), 0);
  dies_with_devices(&x, sl, 3);
  return 0;
}

/* The secondary opened device 1 and not yet device 2. */
TEST_IMPL(rel_crash_seckill_between_opendevice) {
  struct three x;
  begin(&x, "xkodv", VDF_LikePipe, VDF_WriteMedia, 1);
  dies_with_devices(&x, NULL, 0);
  return 0;
}

/* The secondary holds a VDC_Flush and a VDC_Complete. */
TEST_IMPL(rel_crash_seckill_in_flush_complete) {
  struct three x;
  static lp_slot sl[2];
  begin(&x, "xkfc", VDF_LikePipe | VDF_RequestComplete,
        VDF_WriteMedia | VDF_CompleteEnabled, 2);
  send(&x, &sl[0], 1, VDC_Flush);
  send(&x, &sl[1], 2, VDC_Complete);
  ASSERT_RC(lp_call(x.sec, "get 1 0 2000"), 0);
  ASSERT_RC(lp_call(x.sec, "get 2 1 2000"), 0);
  ASSERT_EQ(lp_v(x.sec, 0), VDC_Complete);
  dies_with_devices(&x, sl, 2);
  return 0;
}

/* The secondary dies without open devices: the primary, blocked in
 * GetCommand, stays blocked; the agent keeps running; the set then works
 * and ends normally. */
static void dies_alone(struct three *x, int dev1_closed) {
  static lp_slot sl;
  rel_block pget = {.what = REL_PEER, .peer = x->pri, .name = "get 0 9 -1"};
  rel_block_start(&pget);
  rel_peer_kill(x->sec);
  sleep_ms(100);
  ASSERT_EQ(atomic_load(&x->agent.done), 0);
  ASSERT_EQ(atomic_load(&pget.done), 0);
  send(x, &sl, 0, VDC_Flush);
  rel_block_join(&pget, now_us(), 0, 2000000);
  ASSERT_RC(lp_call(x->pri, "comp 0 9 0 0 0"), 0);
  ASSERT_EQ(lp_slot_wait(&sl, 2000), 1);
  ASSERT_EQ(sl.code, 0);
  for (int i = 0; i < 3; i++)
    ASSERT_RC(vdi_srvdev_close_device(x->s.dev[i]),
              i == 1 && dev1_closed ? VD_E_CLOSE : 0);
  ASSERT_RC(lp_call(x->pri, "get 0 9 2000"), VD_E_CLOSE);
  rel_block_join(&x->agent, now_us(), 0, 2000000);
  finish(x, 0);
}

TEST_IMPL(rel_crash_seckill_no_devices) {
  struct three x;
  begin(&x, "xknod", VDF_LikePipe, VDF_WriteMedia, 0);
  dies_alone(&x, 0);
  return 0;
}

/* The secondary's device was closed by the server (it saw VD_E_CLOSE):
 * its death no longer matters. */
TEST_IMPL(rel_crash_seckill_devices_closed) {
  struct three x;
  begin(&x, "xkcd", VDF_LikePipe, VDF_WriteMedia, 1);
  ASSERT_RC(vdi_srvdev_close_device(x.s.dev[1]), 0);
  ASSERT_RC(lp_call(x.sec, "get 1 0 2000"), VD_E_CLOSE);
  dies_alone(&x, 1);
  return 0;
}
