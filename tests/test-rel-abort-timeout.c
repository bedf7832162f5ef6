/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-abort-timeout.c - abort and timeout matrix, the rest: timeouts
 * of GetConfiguration and GetCommand (0, 1, 5, 20, 100 ms: elapsed time
 * within tolerance, and the set unharmed), serverTimeOut with a client
 * process that is stopped (SIGSTOP) while it holds commands, a client that
 * never completes a command (the server's Close still returns), and
 * completions of commands the client was never given or already completed
 * (VD_E_INVALID, nothing reaches the server, the set goes on).  Existing
 * cases are in lib_timeouts_are_milliseconds, lib_cmd_server_timeout*,
 * lib_st_client_active and lib_st_server_active.
 */
#include "rel_util.h"

#include <signal.h>

#define MT 65536u

static const int64_t timeouts[] = {0, 1, 5, 20, 100};
#define NTIMEOUTS (int)(sizeof timeouts / sizeof timeouts[0])

/* Elapsed time of a timed-out wait: at least the timeout, and at most 50
 * ms more (10 ms for a poll). */
static void check_elapsed(int64_t to_ms, int64_t us) {
  ASSERT_GE(us, to_ms * 1000);
  ASSERT_LT(us, to_ms == 0 ? 10000 : to_ms * 1000 + 50000);
}

struct cs {
  char name[96];
  vdi_set_t *set;
  lp_peer *srv;
  vdi_device_t *dev[2];
};

static void cs_begin(struct cs *c, const char *tag, int ndev) {
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", unique_name(tag));
  ASSERT_RC(vdi_set_new(&c->set), 0);
  VDConfig cfg = lp_cfg((uint32_t)ndev, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(c->set, c->name, &cfg), 0);
  c->srv = lp_spawn("lp_srv");
}

static void cs_active(struct cs *c, int ndev) {
  VDConfig cfg;
  char dn[128];
  ASSERT_RC(
      lp_call(c->srv, "config %s %u 4096 0 %u 4", c->name, VDF_WriteMedia, MT),
      0);
  ASSERT_RC(lp_call(c->srv, "odevs %s %d", c->name, ndev), 0);
  ASSERT_RC(lp_call(c->srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(c->set, 2000, &cfg), 0);
  for (int i = 0; i < ndev; i++)
    ASSERT_RC(vdi_set_open_device(c->set, lp_devname(c->name, i, dn, 128),
                                  &c->dev[i]),
              0);
}

/* Normal end of an Active set of ndev devices. */
static void cs_down(struct cs *c, int ndev) {
  VDC_Command *cmd;
  for (int i = 0; i < ndev; i++) {
    ASSERT_RC(lp_call(c->srv, "cdev %d", i), 0);
    ASSERT_RC(vdi_dev_get_command(c->dev[i], 2000, &cmd), VD_E_CLOSE);
  }
  ASSERT_RC(lp_call(c->srv, "join 2000"), 0);
  ASSERT_RC(vdi_set_close(c->set), 0);
  ASSERT_RC(lp_call(c->srv, "close"), 0);
  lp_end(c->srv);
  vdi_set_free(c->set);
}

/* The server is attached and configuring; each timeout elapses as asked;
 * then the configuration still arrives. */
TEST_IMPL(rel_abort_getconfig_timeouts) {
  struct cs c;
  VDConfig cfg;
  cs_begin(&c, "tgc", 1);
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
  ASSERT_RC(lp_call(c.srv, "begin %u 4096 0 %u 0", VDF_WriteMedia, MT), 0);
  for (int i = 0; i < NTIMEOUTS; i++) {
    int64_t t0 = now_us();
    ASSERT_RC(vdi_set_get_configuration(c.set, timeouts[i], &cfg),
              VD_E_TIMEOUT);
    check_elapsed(timeouts[i], now_us() - t0);
  }
  ASSERT_RC(lp_call(c.srv, "reqbuf %u 0 2", MT), 0);
  ASSERT_RC(lp_call(c.srv, "end"), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 2000, &cfg), 0);
  ASSERT_EQ(cfg.blockSize, 4096);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  ASSERT_RC(vdi_set_close(c.set), 0);
  lp_end(c.srv);
  vdi_set_free(c.set);
  return 0;
}

/* An Active device with nothing queued; each timeout elapses as asked;
 * then a command still arrives and completes normally. */
TEST_IMPL(rel_abort_getcommand_timeouts) {
  struct cs c;
  VDC_Command *cmd = NULL;
  cs_begin(&c, "tgcm", 1);
  cs_active(&c, 1);
  for (int i = 0; i < NTIMEOUTS; i++) {
    int64_t t0 = now_us();
    ASSERT_RC(vdi_dev_get_command(c.dev[0], timeouts[i], &cmd), VD_E_TIMEOUT);
    check_elapsed(timeouts[i], now_us() - t0);
  }
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Flush);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_EQ(lp_v(c.srv, 0), 0);
  cs_down(&c, 1);
  return 0;
}

/* Completions of things that are not an outstanding command of the device:
 * VD_E_INVALID, the server hears nothing, and the real completion then
 * works; completing it again is refused too. */
TEST_IMPL(rel_abort_complete_not_given) {
  struct cs c;
  VDC_Command *w = NULL, *f = NULL;
  cs_begin(&c, "tcng", 2);
  cs_active(&c, 2);
  ASSERT_RC(lp_call(c.srv, "alloc 0 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d %u 0 0", VDC_Write, MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 1 1 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &w), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[1], 2000, &f), 0);
  VDC_Command copy = *w; /* identical bytes, another address */
  vdi_device_t *d0 = c.dev[0];
  ASSERT_RC(vdi_dev_complete_command(d0, NULL, 0, 0, 0), VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(d0, &copy, 0, MT, 0), VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(d0, (VDC_Command *)(void *)((char *)w + 8),
                                     0, MT, 0),
            VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(d0, (VDC_Command *)(void *)((char *)w + 1),
                                     0, MT, 0),
            VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(d0, f, 0, 0, 0), VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(c.dev[1], w, 0, MT, 0), VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(NULL, w, 0, MT, 0), VD_E_INVALID);
  /* More bytes than the Write carried. */
  ASSERT_RC(vdi_dev_complete_command(d0, w, 0, MT + 1, 0), VD_E_INVALID);
  sleep_ms(20);
  ASSERT_EQ(lp_call(c.srv, "wait 0 0"), 0); /* nothing reached the server */
  ASSERT_EQ(lp_call(c.srv, "wait 1 0"), 0);
  /* The set goes on: the real completions, once each. */
  ASSERT_RC(vdi_dev_complete_command(d0, w, 0, MT, 0), 0);
  ASSERT_RC(vdi_dev_complete_command(d0, w, 0, MT, 0), VD_E_INVALID);
  ASSERT_RC(vdi_dev_complete_command(c.dev[1], f, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_EQ(lp_v(c.srv, 0), 0);
  ASSERT_EQ(lp_v(c.srv, 1), MT);
  ASSERT_EQ(lp_call(c.srv, "wait 1 2000"), 1);
  sleep_ms(20);
  ASSERT_EQ(lp_call(c.srv, "wait 0 0"), 1);
  ASSERT_EQ(lp_v(c.srv, 3), 1);
  ASSERT_EQ(lp_call(c.srv, "wait 1 0"), 1);
  ASSERT_EQ(lp_v(c.srv, 3), 1);
  ASSERT_RC(lp_call(c.srv, "send 2 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(d0, 2000, &w), 0);
  ASSERT_RC(vdi_dev_complete_command(d0, w, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 2 2000"), 1);
  cs_down(&c, 2);
  return 0;
}

/* Two threads complete the same command at the same moment, 100 times:
 * each time exactly one succeeds, the other gets VD_E_INVALID, and the
 * server's routine runs once. */
struct racer {
  vdi_device_t *dev;
  VDC_Command *cmd;
  pthread_barrier_t *bar;
  int rc;
};

static void *race_main(void *arg) {
  struct racer *r = arg;
  pthread_barrier_wait(r->bar);
  r->rc = vdi_dev_complete_command(r->dev, r->cmd, 0, 0, 0);
  return NULL;
}

TEST_IMPL(rel_abort_complete_twice_racing) {
  struct cs c;
  cs_begin(&c, "tctr", 1);
  cs_active(&c, 1);
  for (int i = 0; i < 100; i++) {
    VDC_Command *cmd;
    ASSERT_RC(lp_call(c.srv, "send %d 0 %d 0 %d -1", i, VDC_Flush, i), 0);
    ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct racer r[2];
    pthread_t t[2];
    for (int k = 0; k < 2; k++) {
      r[k] = (struct racer){c.dev[0], cmd, &bar, 1};
      ASSERT_EQ(pthread_create(&t[k], NULL, race_main, &r[k]), 0);
    }
    for (int k = 0; k < 2; k++)
      pthread_join(t[k], NULL);
    pthread_barrier_destroy(&bar);
    int ok = (r[0].rc == 0) + (r[1].rc == 0);
    int bad = (r[0].rc == VD_E_INVALID) + (r[1].rc == VD_E_INVALID);
    if (ok != 1 || bad != 1)
      TASK_FAIL_("round %d: %s and %s", i, task_code_name(r[0].rc),
                 task_code_name(r[1].rc));
    ASSERT_EQ(lp_call(c.srv, "wait %d 2000", i), 1);
  }
  sleep_ms(20);
  for (int i = 0; i < 100; i++) {
    ASSERT_EQ(lp_call(c.srv, "wait %d 0", i), 1);
    ASSERT_EQ(lp_v(c.srv, 3), 1);
    ASSERT_EQ(lp_v(c.srv, 0), 0);
  }
  cs_down(&c, 1);
  return 0;
}

/* --------------------------------------------------- the server's view */

/* A client process (serverTimeOut sto) with the set Active on 2 devices,
 * holding a Flush on device 0, another queued on device 1. */
static void stalled_pair(lp_pair *x, lp_slot *sl, const char *tag,
                         uint32_t sto) {
  lp_pair_up(x, tag, 2, VDF_LikePipe, 0, 0, sto, VDF_WriteMedia, 4096, MT, 2);
  for (int i = 0; i < 2; i++) {
    lp_slot_init(&sl[i], VDC_Flush, 0, i, NULL);
    ASSERT_RC(vdi_srvdev_send_command(x->s.dev[i], &sl[i].cmd), 0);
  }
  ASSERT_RC(lp_call(x->cli, "get 0 0 2000"), 0);
}

/* serverTimeOut = 200 ms and a client process that stops dead (SIGSTOP)
 * holding one command with another queued: the agent aborts after more
 * than two intervals, completing both once with ERROR_OPERATION_ABORTED;
 * when the client resumes, its set is aborted. */
TEST_IMPL(rel_abort_server_timeout_stopped_client) {
  lp_pair x;
  static lp_slot sl[2];
  stalled_pair(&x, sl, "tsto", 200);
  ASSERT_EQ(kill(x.cli->pid, SIGSTOP), 0);
  int64_t t0 = now_ms();
  ASSERT_RC(lp_srv_agent_join(&x.s, 3000), VD_E_ABORT);
  int64_t waited = now_ms() - t0;
  ASSERT_GE(waited, 400);
  ASSERT_LT(waited, 1500);
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(atomic_load(&sl[i].calls), 1);
    ASSERT_EQ(sl[i].code, ERROR_OPERATION_ABORTED);
  }
  ASSERT_EQ(kill(x.cli->pid, SIGCONT), 0);
  ASSERT_RC(lp_call(x.cli, "comp 0 0 0 0 0"), VD_E_ABORT);
  ASSERT_RC(lp_call(x.cli, "get 1 1 0"), VD_E_ABORT);
  sleep_ms(20);
  ASSERT_EQ(atomic_load(&sl[0].calls), 1);
  ASSERT_RC(vdi_srv_close(x.s.srv), 0);
  ASSERT_RC(lp_call(x.cli, "close"), 0);
  lp_end(x.cli);
  vdi_srv_free(x.s.srv);
  return 0;
}

/* A client that never completes (stopped, no serverTimeOut): we close
 * every device, the agent keeps waiting for the outstanding commands, and
 * our Close still returns at once, completing them with
 * ERROR_OPERATION_ABORTED; the agent then returns VD_E_ABORT.  With
 * client_view, the resumed client must learn that the set was aborted. */
static void never_completed(const char *tag, int client_view) {
  lp_pair x;
  static lp_slot sl[2];
  stalled_pair(&x, sl, tag, 0);
  ASSERT_EQ(kill(x.cli->pid, SIGSTOP), 0);
  for (int i = 0; i < 2; i++)
    ASSERT_RC(vdi_srvdev_close_device(x.s.dev[i]), 0);
  ASSERT_RC(lp_srv_agent_join(&x.s, 100), LP_RUNNING);
  int64_t t0 = now_us();
  int rc = vdi_srv_close(x.s.srv);
  ASSERT_LT(now_us() - t0, 100000);
  ASSERT_RC(rc, 0); /* every device was closed: not a protocol error */
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(atomic_load(&sl[i].calls), 1);
    ASSERT_EQ(sl[i].code, ERROR_OPERATION_ABORTED);
  }
  ASSERT_RC(lp_srv_agent_join(&x.s, 2000), VD_E_ABORT);
  ASSERT_EQ(kill(x.cli->pid, SIGCONT), 0);
  if (client_view) {
    /* The server gave both commands up as aborted: the client must not
     * be told that its completion, or the queued Flush, went through. */
    ASSERT_RC(lp_call(x.cli, "comp 0 0 0 0 0"), VD_E_ABORT);
    ASSERT_RC(lp_call(x.cli, "get 1 1 0"), VD_E_ABORT);
  }
  sleep_ms(20);
  ASSERT_EQ(atomic_load(&sl[0].calls), 1);
  ASSERT_EQ(atomic_load(&sl[1].calls), 1);
  /* (Without client_view the client still holds its command and has seen
   * no VD_E_CLOSE: it just quits, freeing its set.) */
  if (client_view) ASSERT_RC(lp_call(x.cli, "close"), 0);
  lp_end(x.cli);
  vdi_srv_free(x.s.srv);
}

TEST_IMPL(rel_abort_never_completed_close) {
  never_completed("tnc", 0);
  return 0;
}

/* After the server's Close gave up the outstanding commands
 * (ERROR_OPERATION_ABORTED, agent VD_E_ABORT), the client is told: the set
 * is aborted, so its late CompleteCommand and GetCommand return VD_E_ABORT
 * instead of a normal end. */
TEST_IMPL(rel_abort_never_completed_client_sees_abort) {
  never_completed("tncc", 1);
  return 0;
}
