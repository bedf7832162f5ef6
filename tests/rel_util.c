/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rel_util.c - helpers of the reliability tests (see rel_util.h).
 */
#include "rel_util.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int rel_thread_count(void) {
  return count_dir("/proc/self/task");
}

rel_snap rel_snap_take(void) {
  rel_snap s;
  s.fds = count_open_fds();
  s.threads = rel_thread_count();
  s.shm = count_dir("/dev/shm");
  return s;
}

void rel_snap_check(const rel_snap *s) {
  int64_t end = now_ms() + 500;
  rel_snap n = rel_snap_take();
  while ((n.fds != s->fds || n.threads != s->threads) && now_ms() < end) {
    sleep_ms(2);
    n = rel_snap_take();
  }
  ASSERT_EQ(n.fds, s->fds);
  ASSERT_EQ(n.threads, s->threads);
  ASSERT_EQ(n.shm, s->shm);
}

int64_t rel_kill_reap(pid_t pid) {
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int st;
  pid_t r;
  while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
  }
  int64_t at = now_us();
  ASSERT_EQ(r, pid);
  ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  return at;
}

int64_t rel_peer_kill(lp_peer *p) {
  int64_t at = rel_kill_reap(p->pid);
  close(p->to);
  close(p->from);
  free(p);
  return at;
}

void rel_name_free(const char *name) {
  vdi_set_t *set = NULL;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = lp_cfg(1, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  ASSERT_RC(vdi_set_close(set), 0);
  vdi_set_free(set);
}

static void *block_main(void *arg) {
  rel_block *b = arg;
  int64_t to = b->timeout_ms ? b->timeout_ms : -1;
  VDConfig cfg;
  switch (b->what) {
  case REL_GETCMD:
    b->rc = vdi_dev_get_command(b->dev, to, &b->cmd);
    break;
  case REL_GETCFG:
    b->rc = vdi_set_get_configuration(b->set, to, &cfg);
    break;
  case REL_OPENDEV:
    b->rc = vdi_set_open_device(b->set, b->name, &b->out);
    break;
  case REL_AGENT:
    b->rc = vdi_srv_execute_completion_agent(b->srv);
    break;
  case REL_PEER:
    b->rc = lp_call(b->peer, "%s", b->name);
    break;
  }
  b->at_us = now_us();
  atomic_store(&b->done, 1);
  return NULL;
}

void rel_block_start(rel_block *b) {
  atomic_store(&b->done, 0);
  b->rc = 1;
  ASSERT_EQ(pthread_create(&b->t, NULL, block_main, b), 0);
  sleep_ms(30);
  if (atomic_load(&b->done))
    TASK_FAIL_("call %d did not block: returned %s", (int)b->what,
               task_code_name(b->rc));
}

void rel_block_join(rel_block *b, int64_t since_us, int expect_rc,
                    int64_t within_us) {
  int64_t end = now_ms() + 3000;
  while (!atomic_load(&b->done) && now_ms() < end)
    sleep_ms(1);
  if (!atomic_load(&b->done))
    TASK_FAIL_("call %d still blocked 3 s later", (int)b->what);
  pthread_join(b->t, NULL);
  ASSERT_RC(b->rc, expect_rc);
  int64_t late = b->at_us - since_us;
  if (late > within_us)
    TASK_FAIL_("call %d returned %lld us after the event (limit %lld)",
               (int)b->what, (long long)late, (long long)within_us);
}
