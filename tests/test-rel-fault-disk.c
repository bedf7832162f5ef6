/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-fault-disk.c - the client's disk filling up in the middle of a
 * backup, for real: `vdi backup` runs under a file-size limit
 * (RLIMIT_FSIZE, with SIGXFSZ ignored, so write() fails with EFBIG once a
 * stripe reaches it).  The backup must fail (exit 1, the cause reported),
 * leave no manifest and no stripe that looks complete, and leave an
 * earlier good backup in the same directory intact and verifiable.
 * (test-app-e2e.c app_e2e_disk_full does the same with vdi's
 * VDI_TEST_FAIL_WRITE_AFTER hook, i.e. ENOSPC from a simulated write.)
 */
#include "task.h"
#include "test-app-util.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIMIT (128 * 1024)

/* The bytes under dir, its subdirectories included (a repository keeps
 * each backup set in DIR/<db>/<ID>/). */
static long long dir_bytes(const char *dir) {
  DIR *d = opendir(dir);
  long long sum = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    char path[4400];
    struct stat st;
    if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.')) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) sum += st.st_size;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) sum += dir_bytes(path);
  }
  if (d) closedir(d);
  return sum;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = calloc(1, 1 << 16);
  ASSERT_NOT_NULL(buf);
  if (f) {
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
  }
  return buf;
}

/* Back up db into dir with the limit put on vdi mid-way; its exit code,
 * its output in *out. */
static int backup_hitting_limit(const char *inst, const char *dir, char **out) {
  char log[4400];
  static int seq;
  snprintf(log, sizeof log, "%s/vdi-limit-%d.txt", test_tmpdir(), ++seq);
  long long before = dir_bytes(dir);
  pid_t vdi = app_t_spawn(log, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=20"),
                          ARGS("backup", "db", "--instance", inst, "--to", dir,
                               "--stripes", "2", "--quiet"));
  if (!app_t_wait_bytes(dir, before + 1, 10000)) {
    kill(vdi, SIGKILL);
    TASK_FAIL_("the backup did not start writing");
  }
  struct rlimit rl = {LIMIT, LIMIT};
  ASSERT_EQ(prlimit(vdi, RLIMIT_FSIZE, &rl, NULL), 0);
  int rc = wait_helper_timeout(vdi, 20000);
  if (rc < 0) kill(vdi, SIGKILL);
  *out = slurp(log);
  return rc;
}

TEST_IMPL_TIMEOUT(rel_fault_disk_full_rlimit, 30) {
  if (!app_t_engine_ready()) {
    fprintf(stderr, "vdi and vdisql are not built\n");
    return TEST_SKIP;
  }
  char inst[4200], bk[4200], bk2[4200];
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  snprintf(bk2, sizeof bk2, "%s/bk2", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  app_t_make_db(inst, "db", 30000, 4096, 4);
  char *out = NULL;
  /* An earlier good backup, made without the limit. */
  int rc = app_t_run(&out, NULL,
                     ARGS("backup", "db", "--instance", inst, "--to", bk));
  if (rc != 0) app_t_show("backup", out);
  ASSERT_EQ(rc, 0);
  free(out);
  /* vdi (and so vdisql) inherit the ignored SIGXFSZ: writes past the
   * limit fail with EFBIG instead of killing the process. */
  ASSERT(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
  rc = backup_hitting_limit(inst, bk, &out);
  fprintf(stderr, "---- vdi under RLIMIT_FSIZE ----\n%s---- end ----\n", out);
  ASSERT_EQ(rc, 1);
  /* The cause is told: EFBIG, which vdi maps to ERROR_DISK_FULL. */
  ASSERT(strstr(out, "File too large") != NULL);
  /* ... and the engine got the completion code 112 (ERROR_DISK_FULL):
   * Msg 3202 'Write on "..." failed: 112(...)'. */
  ASSERT(strstr(out, "failed: 112(") != NULL);
  free(out);
  /* Only the earlier backup: one set, its manifest and one stripe, still
   * good. */
  char set[4400];
  ASSERT_EQ(app_t_set_dir(bk, "db", -1, set, sizeof set), 1);
  ASSERT_EQ(app_t_count_files(set, NULL, NULL), 2);
  rc = app_t_run(&out, NULL, ARGS("verify", "--instance", inst, "--from", bk));
  if (rc != 0) app_t_show("verify", out);
  ASSERT_EQ(rc, 0);
  free(out);
  /* Into an empty directory: nothing at all is left. */
  ASSERT_EQ(mkdir(bk2, 0755), 0);
  rc = backup_hitting_limit(inst, bk2, &out);
  if (rc != 1) app_t_show("backup", out);
  ASSERT_EQ(rc, 1);
  free(out);
  ASSERT(!app_t_exists(bk2, "db.manifest.json"));
  ASSERT_EQ(app_t_count_files(bk2, NULL, NULL), 0);
  return 0;
}
