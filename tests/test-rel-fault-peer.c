/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-fault-peer.c - fault injection in whole programs: `vdi backup`
 * (and the vdisql it starts, which inherits the environment) run with
 * $VDI_FAULT_INJECT="op:N" for every op of sys.c and N = 1, 2, 3, 5, 8,
 * 13 (futex: 3 and up, see below).  Each run must either fail cleanly (exit 1,
 * not a signal, within the time limit; no manifest and no file at all in the
 * backup directory) or succeed with a backup that `vdi verify` (run without
 * faults) accepts. The in-process sweep of every N is test-rel-fault.c.
 *
 * futex:1 and futex:2 are left out here: vdi's first wait (GetConfiguration)
 * fails at once with VD_E_UNEXPECTED and vdi exits 1 cleanly, but only
 * after about 12 s, because the engine it started (with the same fault)
 * waits for a set that is gone until vdi gives up on it and kills it
 * ("the engine did not end after the abort").  Too slow for make check;
 * docs/RELIABILITY.md records it.
 */
#include "task.h"
#include "test-app-util.h"

#include <signal.h>
#include <sys/stat.h>

static const char *const ops[] = {"mmap",   "memfd",   "ftruncate",
                                  "socket", "sendmsg", "recvmsg",
                                  "futex",  "thread",  "alloc"};
static const int ns[] = {1, 2, 3, 5, 8, 13};

TEST_IMPL_TIMEOUT(rel_fault_peer_env_backup, 120) {
  if (!app_t_engine_ready()) {
    fprintf(stderr, "vdi and vdisql are not built\n");
    return TEST_SKIP;
  }
  char inst[4200], bk[4300], log[4300], env[64];
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  app_t_make_db(inst, "db", 3000, 4096, 2);
  int failed = 0, passed = 0, run = 0;
  for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
      if (strcmp(ops[o], "futex") == 0 && ns[k] < 3) continue;
      snprintf(bk, sizeof bk, "%s/bk%d", test_tmpdir(), run);
      snprintf(log, sizeof log, "%s/log%d", test_tmpdir(), run++);
      snprintf(env, sizeof env, "VDI_FAULT_INJECT=%s:%d", ops[o], ns[k]);
      pid_t pid = app_t_spawn(log, NULL, NULL, ENV(env),
                              ARGS("backup", "db", "--instance", inst, "--to",
                                   bk, "--stripes", "2", "--quiet"));
      int64_t t0 = now_ms();
      int rc = wait_helper_timeout(pid, 20000);
      const char *rep = getenv("VDI_REL_REPORT");
      FILE *rf = rep ? fopen(rep, "a") : NULL;
      if (rf) {
        fprintf(rf, "peer %s -> exit %d in %lld ms\n", env, rc,
                (long long)(now_ms() - t0));
        fclose(rf);
      }
      if (rc < 0) {
        kill(pid, SIGKILL);
        TASK_FAIL_("%s: vdi did not end within 20 s", env);
      }
      if (rc == 0) {
        char *out = NULL;
        int v = app_t_run(&out, NULL,
                          ARGS("verify", "--instance", inst, "--from", bk));
        if (v != 0) app_t_show("verify", out);
        free(out);
        if (v != 0) TASK_FAIL_("%s: backup succeeded but verify fails", env);
        passed++;
        continue;
      }
      /* 1: failed; 5: the engine (which inherits the fault) failed. */
      if (rc != 1 && rc != 5)
        TASK_FAIL_("%s: vdi exited %d (a crash?)", env, rc);
      /* A failed backup leaves nothing. */
      ASSERT(!app_t_exists(bk, "db.manifest.json"));
      int n = app_t_count_files(bk, NULL, NULL);
      if (n > 0) TASK_FAIL_("%s: %d files left in %s", env, n, bk);
      failed++;
    }
  fprintf(stderr, "%d runs: %d backups failed cleanly, %d succeeded\n", run,
          failed, passed);
  ASSERT_GT(failed, 0);
  return 0;
}
