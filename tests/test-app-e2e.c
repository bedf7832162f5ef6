/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-e2e.c - `vdi` against the real engine: two real processes each
 * time (vdi, the client, spawns vdisql, the server, and they talk VDI).
 * Round trips with equal content, verify and list, damage refused with the
 * existing database intact, and every way a backup can fail (unknown
 * database, full disk, either process killed, SIGTERM) leaving no manifest
 * and no file that looks complete.
 */
#include "task.h"
#include "test-app-util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char inst[4200], bk[4200];

static void setup(void) {
  app_t_require_engine();
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
}

static void db_path(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s.db", inst, name);
}

static void digest_of(const char *name, char *out, size_t n) {
  char p[4400];
  db_path(name, p, sizeof p);
  app_t_digest(p, out, n);
}

static void roundtrip(int rows, int page, int nstripes, int compress) {
  setup();
  app_t_make_db(inst, "src", rows, page, 7);
  char stripes[8];
  snprintf(stripes, sizeof stripes, "%d", nstripes);
  if (compress)
    app_t_run_ok("backup", NULL,
                 ARGS("backup", "src", "--instance", inst, "--to", bk,
                      "--stripes", stripes, "--compress"));
  else
    app_t_run_ok("backup", NULL,
                 ARGS("backup", "src", "--instance", inst, "--to", bk,
                      "--stripes", stripes));
  /* One set in the repository: REPO/src/<ID>/. */
  char set[4400];
  ASSERT_EQ(app_t_set_dir(bk, "src", -1, set, sizeof set), 1);
  ASSERT_EQ(app_t_count_files(bk, NULL, NULL), 1);
  ASSERT(app_t_exists(set, "src.manifest.json"));
  for (int i = 0; i < nstripes; i++) {
    char n[64];
    snprintf(n, sizeof n, "src.stripe%d.vdibak", i);
    ASSERT(app_t_exists(set, n));
  }
  /* Nothing else: no temporary file left behind. */
  ASSERT_EQ(app_t_count_files(set, NULL, NULL), nstripes + 1);
  app_t_run_ok(
      "restore", NULL,
      ARGS("restore", "src", "--instance", inst, "--from", bk, "--as", "copy"));
  char d1[64], d2[64], p[4400];
  digest_of("src", d1, sizeof d1);
  digest_of("copy", d2, sizeof d2);
  ASSERT(d1[0] != 0);
  ASSERT_STR_EQ(d1, d2);
  db_path("copy", p, sizeof p);
  ASSERT(app_t_integrity_ok(p));
}

TEST_IMPL_TIMEOUT(app_e2e_roundtrip_1stripe, 30) {
  roundtrip(3000, 4096, 1, 0);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_roundtrip_4stripes_compress, 30) {
  roundtrip(20000, 1024, 4, 1);
  char path[4500], set[4400];
  app_t_set_dir(bk, "src", -1, set, sizeof set);
  snprintf(path, sizeof path, "%s/src.manifest.json", set);
  FILE *f = fopen(path, "r");
  ASSERT_NOT_NULL(f);
  char text[8192] = {0};
  ASSERT(fread(text, 1, sizeof text - 1, f) > 0);
  fclose(f);
  ASSERT(strstr(text, "\"compression\": \"zstd\"") != NULL);
  return 0;
}

/* --buffer-count, --max-transfer-size and --compress-level reach the
 * engine's statement (as a backup vendor sets BUFFERCOUNT and
 * MAXTRANSFERSIZE) and the backup restores with other values. */
TEST_IMPL_TIMEOUT(app_e2e_roundtrip_tuned, 30) {
  setup();
  app_t_make_db(inst, "src", 8000, 4096, 3);
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("backup", "src", "--instance", inst, "--to", bk,
                          "--stripes", "2", "--buffer-count", "10",
                          "--max-transfer-size", "65536", "--compress-level",
                          "high", "-v"));
  if (rc != 0) TASK_FAIL_("backup: %d\n%s", rc, out);
  ASSERT(strstr(out, "COMPRESSION (ALGORITHM = ZSTD, LEVEL = HIGH), "
                     "BUFFERCOUNT = 10, MAXTRANSFERSIZE = 65536") != NULL);
  free(out);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "src", "--instance", inst, "--from", bk,
                      "--as", "copy", "--buffer-count", "3",
                      "--max-transfer-size", "131072", "-v"));
  if (rc != 0) TASK_FAIL_("restore: %d\n%s", rc, out);
  ASSERT(strstr(out, "WITH BUFFERCOUNT = 3, MAXTRANSFERSIZE = 131072") != NULL);
  free(out);
  char d1[64], d2[64];
  digest_of("src", d1, sizeof d1);
  digest_of("copy", d2, sizeof d2);
  ASSERT(d1[0] != 0);
  ASSERT_STR_EQ(d1, d2);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_roundtrip_empty_db_8stripes, 30) {
  roundtrip(0, 512, 8, 0);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_roundtrip_stdio, 30) {
  setup();
  app_t_make_db(inst, "src", 5000, 4096, 3);
  char stream[4400], log[4400];
  snprintf(stream, sizeof stream, "%s/stream.vdibak", test_tmpdir());
  snprintf(log, sizeof log, "%s/log.txt", test_tmpdir());
  pid_t p = app_t_spawn(log, stream, NULL, NULL,
                        ARGS("backup", "src", "--instance", inst, "--to", "-"));
  ASSERT_EQ(wait_helper(p), 0);
  ASSERT_GT(app_t_file_size(stream), 0);
  p = app_t_spawn(log, NULL, stream, NULL,
                  ARGS("restore", "src", "--instance", inst, "--from", "-",
                       "--as", "viapipe"));
  ASSERT_EQ(wait_helper(p), 0);
  char d1[64], d2[64];
  digest_of("src", d1, sizeof d1);
  digest_of("viapipe", d2, sizeof d2);
  ASSERT_STR_EQ(d1, d2);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_verify_and_list, 30) {
  setup();
  app_t_make_db(inst, "one", 2000, 4096, 1);
  app_t_make_db(inst, "two", 1000, 2048, 2);
  app_t_run_ok(
      "backup one", NULL,
      ARGS("backup", "one", "--instance", inst, "--to", bk, "--stripes", "3"));
  app_t_run_ok("backup two", NULL,
               ARGS("backup", "two", "--instance", inst, "--to", bk));
  char *out = NULL;
  int rc =
      app_t_run(&out, NULL, ARGS("verify", "--instance", inst, "--from", bk));
  if (rc != 0) app_t_show("verify", out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "'one' is valid") && strstr(out, "'two' is valid"));
  free(out);
  rc = app_t_run(&out, NULL, ARGS("list", "--from", bk));
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "one ") && strstr(out, "3 stripes"));
  ASSERT(strstr(out, "two ") && strstr(out, "1 stripe "));
  free(out);
  /* Backing up again makes a second set beside the first (history); the
   * new one has its own stripes only. */
  app_t_run_ok("backup one again", NULL,
               ARGS("backup", "one", "--instance", inst, "--to", bk));
  char set[4400];
  ASSERT_EQ(app_t_set_dir(bk, "one", -1, set, sizeof set), 2);
  ASSERT(!app_t_exists(set, "one.stripe2.vdibak"));
  ASSERT(app_t_exists(set, "one.stripe0.vdibak"));
  app_t_run_ok("verify one", NULL,
               ARGS("verify", "one", "--instance", inst, "--from", bk));
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_flipped_byte_refused, 30) {
  setup();
  app_t_make_db(inst, "db", 4000, 4096, 5);
  app_t_run_ok(
      "backup", NULL,
      ARGS("backup", "db", "--instance", inst, "--to", bk, "--stripes", "2"));
  char before[64], after[64], path[4500], set[4400];
  digest_of("db", before, sizeof before);
  app_t_set_dir(bk, "db", -1, set, sizeof set);
  snprintf(path, sizeof path, "%s/db.stripe1.vdibak", set);
  long long size = app_t_file_size(path);
  ASSERT_GT(size, 100);
  app_t_flip_byte(path, (long)(size / 2));
  char *out = NULL;
  int rc = app_t_run(
      &out, NULL,
      ARGS("restore", "db", "--instance", inst, "--from", bk, "--replace"));
  ASSERT_EQ(rc, 4); /* damaged */
  ASSERT(strstr(out, "damaged") != NULL);
  free(out);
  rc = app_t_run(&out, NULL, ARGS("verify", "--instance", inst, "--from", bk));
  ASSERT_EQ(rc, 4);
  ASSERT(strstr(out, "stripe 1") && strstr(out, "CRC-32C"));
  free(out);
  /* An engine that fails before it reads a byte (here: no instance) is
   * told as such; the set is not read through to look for damage. */
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "db", "--instance", "/nonexistent/inst",
                      "--from", bk, "--replace"));
  if (rc != 5 || !strstr(out, "(check --instance)") || strstr(out, "damaged")) {
    app_t_show("restore into a missing instance", out);
    TASK_FAIL_("not the instance's error");
  }
  free(out);
  digest_of("db", after, sizeof after);
  ASSERT_STR_EQ(before, after);

  /* The engine's own checks catch it too when no manifest protects the
   * stream (stdin): the restore fails and the database stays as it was. */
  char log[4400];
  snprintf(log, sizeof log, "%s/log.txt", test_tmpdir());
  char solo[4400];
  snprintf(solo, sizeof solo, "%s/solo.vdibak", test_tmpdir());
  pid_t p = app_t_spawn(log, solo, NULL, NULL,
                        ARGS("backup", "db", "--instance", inst, "--to", "-"));
  ASSERT_EQ(wait_helper(p), 0);
  app_t_flip_byte(solo, (long)(app_t_file_size(solo) / 2));
  p = app_t_spawn(
      log, NULL, solo, NULL,
      ARGS("restore", "db", "--instance", inst, "--from", "-", "--replace"));
  ASSERT_NE(wait_helper(p), 0);
  digest_of("db", after, sizeof after);
  ASSERT_STR_EQ(before, after);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_replace_needed, 30) {
  setup();
  app_t_make_db(inst, "db", 1000, 4096, 1);
  app_t_run_ok("backup", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk));
  app_t_make_db(inst, "other", 50, 4096, 9);
  char before[64], after[64], orig[64];
  digest_of("db", orig, sizeof orig);
  digest_of("other", before, sizeof before);
  char *out = NULL;
  int rc = app_t_run(
      &out, NULL,
      ARGS("restore", "db", "--instance", inst, "--from", bk, "--as", "other"));
  ASSERT_NE(rc, 0);
  free(out);
  digest_of("other", after, sizeof after);
  ASSERT_STR_EQ(before, after);
  /* Over itself too: the engine would allow it (same database), vdi asks
   * for --replace. */
  app_t_make_db(inst, "db", 10, 4096, 5);
  digest_of("db", before, sizeof before);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "db", "--instance", inst, "--from", bk));
  ASSERT_EQ(rc, 1);
  ASSERT(strstr(out, "use --replace"));
  free(out);
  digest_of("db", after, sizeof after);
  ASSERT_STR_EQ(before, after);
  app_t_run_ok("restore --replace", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                    "other", "--replace"));
  digest_of("other", after, sizeof after);
  ASSERT_STR_EQ(orig, after);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_unknown_db_no_manifest, 20) {
  setup();
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("backup", "nosuchdb", "--instance", inst, "--to", bk,
                          "--stripes", "2"));
  ASSERT_EQ(rc, 5); /* the engine refused the statement */
  /* The engine's message, told once, in vdi's words. */
  ASSERT(strstr(out, "vdi: error: Database 'nosuchdb' does not exist") &&
         strstr(out, "(Msg 911)"));
  ASSERT(strstr(out, "Msg 911, Level") == NULL);
  free(out);
  app_t_assert_no_backup(bk, "nosuchdb");
  ASSERT_EQ(app_t_count_files(bk, NULL, NULL), 0);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_disk_full, 30) {
  setup();
  app_t_make_db(inst, "db", 30000, 4096, 4);
  /* An earlier good backup must survive a failed one. */
  app_t_run_ok("backup", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk));
  char *out = NULL;
  int rc = app_t_run(
      &out, ENV("VDI_TEST_FAIL_WRITE_AFTER=200000"),
      ARGS("backup", "db", "--instance", inst, "--to", bk, "--stripes", "2"));
  if (rc != 1) app_t_show("backup", out);
  ASSERT_EQ(rc, 1);
  ASSERT(strstr(out, "No space left on device") != NULL);
  /* Said removed, and gone: only the earlier backup, its manifest and
   * one stripe. */
  const char *said = strstr(out, "backup of 'db' failed: the partial set ");
  ASSERT(said && strstr(said, " was removed; no backup was recorded"));
  char gone[4400], id[64];
  ASSERT_EQ(sscanf(said, "backup of 'db' failed: the partial set %63s", id), 1);
  snprintf(gone, sizeof gone, "%s/db/%s", bk, id);
  ASSERT(access(gone, F_OK) != 0);
  free(out);
  char set[4400];
  ASSERT_EQ(app_t_set_dir(bk, "db", -1, set, sizeof set), 1);
  ASSERT_EQ(app_t_count_files(set, NULL, NULL), 2);
  app_t_run_ok("verify", NULL,
               ARGS("verify", "--instance", inst, "--from", bk));
  /* And into an empty directory: nothing at all. */
  snprintf(bk, sizeof bk, "%s/bk2", test_tmpdir());
  rc = app_t_run(&out, ENV("VDI_TEST_FAIL_WRITE_AFTER=100000"),
                 ARGS("backup", "db", "--instance", inst, "--to", bk));
  ASSERT_EQ(rc, 1);
  ASSERT(strstr(out, " was removed; no backup was recorded"));
  free(out);
  ASSERT_EQ(app_t_count_files(bk, NULL, NULL), 0);
  return 0;
}

/* Start a slow backup and wait until it has written something. */
static pid_t start_slow_backup(const char *log) {
  app_t_make_db(inst, "db", 40000, 4096, 6);
  pid_t vdi = app_t_spawn(log, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=100"),
                          ARGS("backup", "db", "--instance", inst, "--to", bk,
                               "--stripes", "2", "--quiet"));
  if (!app_t_wait_bytes(bk, 1, 5000)) {
    kill(vdi, SIGKILL);
    TASK_FAIL_("the backup did not start");
  }
  return vdi;
}

TEST_IMPL_TIMEOUT(app_e2e_kill_vdisql, 30) {
  setup();
  char log[4400];
  snprintf(log, sizeof log, "%s/log.txt", test_tmpdir());
  pid_t vdi = start_slow_backup(log);
  pid_t eng = app_t_find_child(vdi, "vdisql");
  ASSERT_GT(eng, 0);
  ASSERT_EQ(kill(eng, SIGKILL), 0);
  int64_t t0 = now_ms();
  int rc = wait_helper_timeout(vdi, 1000);
  if (rc < 0) kill(vdi, SIGKILL);
  ASSERT_GE(rc, 0); /* ended within a second */
  ASSERT_NE(rc, 0);
  fprintf(stderr, "vdi ended %lld ms after vdisql was killed\n",
          (long long)(now_ms() - t0));
  app_t_assert_no_backup(bk, "db");
  ASSERT_EQ(app_t_count_files(bk, NULL, NULL), 0); /* temp files removed */
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_kill_vdi, 30) {
  setup();
  /* Orphans of our children come to us, so the engine can be reaped and
   * its exit status read once vdi is gone. */
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  char log[4400];
  snprintf(log, sizeof log, "%s/log.txt", test_tmpdir());
  pid_t vdi = start_slow_backup(log);
  pid_t eng = app_t_find_child(vdi, "vdisql");
  ASSERT_GT(eng, 0);
  ASSERT_EQ(kill(vdi, SIGKILL), 0);
  ASSERT_EQ(wait_helper(vdi), 128 + SIGKILL);
  int rc = wait_helper_timeout(eng, 1000);
  if (rc < 0) kill(eng, SIGKILL);
  ASSERT_GE(rc, 0); /* the engine noticed within a second */
  ASSERT_NE(rc, 0); /* and its statement failed */
  app_t_assert_no_backup(bk, "db");
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_sigterm, 30) {
  setup();
  char log[4400];
  snprintf(log, sizeof log, "%s/log.txt", test_tmpdir());
  pid_t vdi = start_slow_backup(log);
  pid_t eng = app_t_find_child(vdi, "vdisql");
  ASSERT_GT(eng, 0);
  ASSERT_EQ(kill(vdi, SIGTERM), 0);
  int rc = wait_helper_timeout(vdi, 2000);
  if (rc < 0) kill(vdi, SIGKILL);
  ASSERT_EQ(rc, 128 + SIGTERM);
  /* vdi waited for its engine: it is gone too. */
  ASSERT(kill(eng, 0) != 0 && errno == ESRCH);
  app_t_assert_no_backup(bk, "db");
  ASSERT_EQ(app_t_count_files(bk, NULL, NULL), 0);
  return 0;
}

/* On a terminal, stderr shows a bar redrawn in place with percent, MB/s and
 * time left, then the summary line. */
TEST_IMPL_TIMEOUT(app_e2e_progress_on_tty, 30) {
  setup();
  app_t_make_db(inst, "db", 15000, 4096, 8);
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT(m >= 0);
  ASSERT_EQ(grantpt(m), 0);
  ASSERT_EQ(unlockpt(m), 0);
  const char *slave = ptsname(m);
  ASSERT_NOT_NULL(slave);
  char log[4400];
  snprintf(log, sizeof log, "%s/out.txt", test_tmpdir());
  fflush(NULL);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int s = open(slave, O_RDWR | O_NOCTTY);
    int o = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (s < 0 || o < 0) _exit(126);
    dup2(o, 1);
    dup2(s, 2);
    close(m);
    putenv("VDI_TEST_SLOW_WRITE_MS=20");
    execl(build_path("vdi"), "vdi", "backup", "db", "--instance", inst, "--to",
          bk, (char *)NULL);
    _exit(127);
  }
  char buf[65536];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(m, buf + n, sizeof buf - 1 - n);
    if (r <= 0) break; /* EIO once the child's side is closed */
    n += (size_t)r;
    if (n >= sizeof buf - 1) break;
  }
  buf[n] = 0;
  close(m);
  ASSERT_EQ(wait_helper(pid), 0);
  if (!strstr(buf, "\r") || !strstr(buf, "%") || !strstr(buf, "MB/s") ||
      !strstr(buf, "left") || !strstr(buf, "backup complete"))
    app_t_show("stderr on a tty", buf);
  ASSERT(strstr(buf, "\r") != NULL);
  ASSERT(strstr(buf, "%") != NULL);
  ASSERT(strstr(buf, "MB/s") != NULL);
  ASSERT(strstr(buf, "left") != NULL);
  ASSERT(strstr(buf, "backup complete") != NULL);
  return 0;
}

/* Without --instance, vdi passes no -S and vdisql uses its default
 * instance ($VDI_INSTANCE_DIR here). */
TEST_IMPL_TIMEOUT(app_e2e_default_instance, 30) {
  setup();
  app_t_make_db(inst, "dflt", 2500, 4096, 11);
  char env[4300];
  snprintf(env, sizeof env, "VDI_INSTANCE_DIR=%s", inst);
  app_t_run_ok("backup", ENV(env),
               ARGS("backup", "dflt", "--to", bk, "--stripes", "2"));
  app_t_run_ok("restore", ENV(env),
               ARGS("restore", "dflt", "--from", bk, "--as", "dflt2"));
  char d1[64], d2[64];
  digest_of("dflt", d1, sizeof d1);
  digest_of("dflt2", d2, sizeof d2);
  ASSERT(d1[0] != 0);
  ASSERT_STR_EQ(d1, d2);
  return 0;
}

/* A restore over an existing database that is interrupted (SIGTERM to vdi,
 * or vdi killed outright) fails, and the database it would have replaced
 * is exactly as it was. */
static void interrupted_restore(int sig) {
  setup();
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  app_t_make_db(inst, "db", 40000, 4096, 12);
  app_t_run_ok(
      "backup", NULL,
      ARGS("backup", "db", "--instance", inst, "--to", bk, "--stripes", "2"));
  /* The live database moves on: it now differs from the backup. */
  app_t_make_db(inst, "db", 3000, 4096, 13);
  char before[64], after[64], p[4400];
  digest_of("db", before, sizeof before);
  char log[4400];
  snprintf(log, sizeof log, "%s/log.txt", test_tmpdir());
  pid_t vdi = app_t_spawn(log, NULL, NULL, ENV("VDI_TEST_SLOW_READ_MS=100"),
                          ARGS("restore", "db", "--instance", inst, "--from",
                               bk, "--replace", "--quiet"));
  pid_t eng = -1;
  for (int i = 0; i < 500 && eng < 0; i++) {
    eng = app_t_find_child(vdi, "vdisql");
    if (eng < 0) sleep_ms(5);
  }
  ASSERT_GT(eng, 0);
  sleep_ms(400); /* well inside the transfer, which takes seconds */
  ASSERT_EQ(kill(vdi, sig), 0);
  int rc = wait_helper_timeout(vdi, 2000);
  if (rc < 0) kill(vdi, SIGKILL);
  ASSERT_EQ(rc, 128 + sig);
  if (sig == SIGKILL) {
    /* The orphaned engine is ours now: it must notice and fail. */
    rc = wait_helper_timeout(eng, 1000);
    if (rc < 0) kill(eng, SIGKILL);
    ASSERT_GE(rc, 0);
    ASSERT_NE(rc, 0);
  } else {
    /* vdi waited for its engine before exiting. */
    ASSERT(kill(eng, 0) != 0 && errno == ESRCH);
  }
  digest_of("db", after, sizeof after);
  ASSERT_STR_EQ(before, after);
  db_path("db", p, sizeof p);
  ASSERT(app_t_integrity_ok(p));
}

TEST_IMPL_TIMEOUT(app_e2e_restore_sigterm_keeps_db, 30) {
  interrupted_restore(SIGTERM);
  return 0;
}

TEST_IMPL_TIMEOUT(app_e2e_restore_kill_vdi_keeps_db, 30) {
  interrupted_restore(SIGKILL);
  return 0;
}
