/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-safety.c - `vdi` with `vdisql` where a user could lose data
 * (issue 17), two or three real processes each time:
 *   - two `vdi restore --replace` of one database at once: the second
 *     fails with Msg 3101 and changes nothing; the first succeeds and
 *     its content stays;
 *   - `vdi` killed at the last moment of a restore (every byte sent and
 *     checked, the engine ready to switch): the old database stays,
 *     byte for byte; the same restore not killed replaces it;
 *   - an edited manifest (sizes, compression, ...) is refused by verify,
 *     restore and list; an edited version-1 manifest is caught by the
 *     stripe headers;
 *   - a too-long name is refused with the limit in the message.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static char inst[4200], bk1[4200], bk2[4200], mark[4200], envmark[4400];

static void setup(void) {
  app_t_require_engine();
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk1, sizeof bk1, "%s/bk1", test_tmpdir());
  snprintf(bk2, sizeof bk2, "%s/bk2", test_tmpdir());
  snprintf(mark, sizeof mark, "%s/at-commit", test_tmpdir());
  snprintf(envmark, sizeof envmark, "VDISQL_TEST_PAUSE_MARK=%s", mark);
  ASSERT_EQ(mkdir(inst, 0700), 0);
}

static void digest(const char *db, char *out, size_t n) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s.db", inst, db);
  app_t_digest(p, out, n);
}

/* Two backups of "big" with different content; "big" is left as a third. */
static void two_backups(char *d1, char *d2, char *live) {
  app_t_make_db(inst, "big", 20000, 4096, 21);
  digest("big", d1, 64);
  app_t_run_ok(
      "backup 1", NULL,
      ARGS("backup", "big", "--instance", inst, "--to", bk1, "--quiet"));
  app_t_make_db(inst, "big", 9000, 4096, 22);
  digest("big", d2, 64);
  app_t_run_ok(
      "backup 2", NULL,
      ARGS("backup", "big", "--instance", inst, "--to", bk2, "--quiet"));
  app_t_make_db(inst, "big", 3000, 4096, 23);
  digest("big", live, 64);
  ASSERT(strcmp(d1, d2) != 0 && strcmp(d2, live) != 0);
}

static pid_t restore_held_at_commit(const char *from, const char *log,
                                    const char *pause) {
  pid_t vdi =
      app_t_spawn(log, NULL, NULL,
                  ENV("VDISQL_TEST_PAUSE_AT=restore_commit", envmark, pause),
                  ARGS("restore", "big", "--instance", inst, "--from", from,
                       "--replace", "--quiet"));
  for (int i = 0; i < 2000 && access(mark, F_OK) != 0; i++)
    sleep_ms(5);
  if (access(mark, F_OK) != 0) {
    kill(vdi, SIGKILL);
    TASK_FAIL_("the restore did not reach its commit");
  }
  return vdi;
}

TEST_IMPL_TIMEOUT(app_safety_concurrent_restores, 60) {
  setup();
  char d1[64], d2[64], live[64], now[64], log[4400];
  two_backups(d1, d2, live);
  snprintf(log, sizeof log, "%s/first.log", test_tmpdir());
  pid_t first = restore_held_at_commit(bk1, log, "VDISQL_TEST_PAUSE_MS=2000");
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("restore", "big", "--instance", inst, "--from", bk2,
                          "--replace", "--quiet"));
  if (rc == 0 || !strstr(out, "Msg 3101")) {
    app_t_show("second restore", out);
    TASK_FAIL_("the second restore exited %d", rc);
  }
  free(out);
  /* The first restore holds the database exclusively until its switch
   * (as SQL Server does): a copy of the file shows what is in it. */
  char held[4400], copy[4400];
  snprintf(held, sizeof held, "%s/big.db", inst);
  snprintf(copy, sizeof copy, "%s/copy.db", test_tmpdir());
  sql_copy(held, copy);
  app_t_digest(copy, now, sizeof now);
  ASSERT_STR_EQ(now, live); /* the second changed nothing */
  ASSERT_EQ(wait_helper(first), 0);
  digest("big", now, sizeof now);
  ASSERT_STR_EQ(now, d1); /* the first one's success holds */
  return 0;
}

TEST_IMPL_TIMEOUT(app_safety_kill_vdi_at_commit_keeps_db, 60) {
  setup();
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  char d1[64], d2[64], live[64], now[64], log[4400], p[4400];
  two_backups(d1, d2, live);
  snprintf(log, sizeof log, "%s/killed.log", test_tmpdir());
  pid_t vdi = restore_held_at_commit(bk1, log, "VDISQL_TEST_PAUSE_MS=700");
  pid_t eng = app_t_find_child(vdi, "vdisql");
  ASSERT_GT(eng, 0);
  /* Every byte has been sent, checked and acknowledged; the new database
   * is complete, synced and checked.  The client dies now. */
  ASSERT_EQ(kill(vdi, SIGKILL), 0);
  ASSERT_EQ(wait_helper(vdi), 128 + SIGKILL);
  int rc = wait_helper_timeout(eng, 5000);
  if (rc < 0) kill(eng, SIGKILL);
  ASSERT_GT(rc, 0); /* the engine ended, and its statement failed */
  digest("big", now, sizeof now);
  ASSERT_STR_EQ(now, live);
  snprintf(p, sizeof p, "%s/big.db", inst);
  ASSERT(app_t_integrity_ok(p));

  /* The same restore, held the same way but not killed, replaces it: the
   * hook is not what made the first fail. */
  unlink(mark);
  pid_t ok = restore_held_at_commit(bk1, log, "VDISQL_TEST_PAUSE_MS=300");
  ASSERT_EQ(wait_helper(ok), 0);
  digest("big", now, sizeof now);
  ASSERT_STR_EQ(now, d1);
  return 0;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  ASSERT_NOT_NULL(f);
  char *buf = calloc(1, 1 << 20);
  ASSERT_NOT_NULL(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
}

/* Replace the first occurrence of from by to (same buffer, grows). */
static char *edit(const char *text, const char *from, const char *to) {
  const char *p = strstr(text, from);
  if (!p) TASK_FAIL_("'%s' is not in the manifest:\n%s", from, text);
  char *out = malloc(strlen(text) + strlen(to) + 1);
  ASSERT_NOT_NULL(out);
  sprintf(out, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
  return out;
}

/* verify, restore and list all refuse; no restore happens. */
static void all_refuse(const char *why, const char *words) {
  static const char *const cmds[] = {"verify", "restore", "list"};
  for (int i = 0; i < 3; i++) {
    char *out = NULL;
    int rc;
    if (i == 0)
      rc = app_t_run(&out, NULL,
                     ARGS("verify", "big", "--instance", inst, "--from", bk1));
    else if (i == 1)
      rc = app_t_run(&out, NULL,
                     ARGS("restore", "big", "--instance", inst, "--from", bk1,
                          "--as", "edited"));
    else
      rc = app_t_run(&out, NULL, ARGS("list", "--from", bk1));
    if (rc == 0 || !strstr(out, words)) {
      app_t_show(cmds[i], out);
      TASK_FAIL_("%s: %s exited %d", why, cmds[i], rc);
    }
    free(out);
  }
  char p[4400];
  snprintf(p, sizeof p, "%s/edited.db", inst);
  ASSERT(access(p, F_OK) != 0 && errno == ENOENT);
}

TEST_IMPL_TIMEOUT(app_safety_edited_manifest_refused, 60) {
  setup();
  app_t_make_db(inst, "big", 3000, 4096, 24);
  app_t_run_ok("backup", NULL,
               ARGS("backup", "big", "--instance", inst, "--to", bk1,
                    "--stripes", "2", "--quiet"));
  char mpath[4500], set[4400];
  ASSERT_EQ(app_t_set_dir(bk1, "big", -1, set, sizeof set), 1);
  snprintf(mpath, sizeof mpath, "%s/big.manifest.json", set);
  char *orig = slurp(mpath);
  ASSERT_NOT_NULL(strstr(orig, "\"manifest_crc32c\""));

  /* database_bytes: "12288000" -> "99"... whatever it is, one digit more. */
  char *p = strstr(orig, "\"database_bytes\": ");
  ASSERT_NOT_NULL(p);
  char *e = edit(orig, "\"database_bytes\": ", "\"database_bytes\": 1");
  spit(mpath, e);
  free(e);
  all_refuse("database_bytes edited", "changed after it was written");
  e = edit(orig, "\"compression\": \"none\"", "\"compression\": \"zstd\"");
  spit(mpath, e);
  free(e);
  all_refuse("compression edited", "changed after it was written");
  e = edit(orig, "\"finished\": \"", "\"finished\": \"1");
  spit(mpath, e);
  free(e);
  all_refuse("time edited", "changed after it was written");

  /* A version-1 manifest (no checksum) with its compression edited: the
   * stripes' own headers say otherwise. */
  char *v1 = edit(orig, "\"format_version\": 2", "\"format_version\": 1");
  char *c = strstr(v1, ",\n  \"manifest_crc32c\"");
  ASSERT_NOT_NULL(c);
  strcpy(c, "\n}\n");
  spit(mpath, v1);
  app_t_run_ok("verify v1", NULL,
               ARGS("verify", "big", "--instance", inst, "--from", bk1));
  e = edit(v1, "\"compression\": \"none\"", "\"compression\": \"zstd\"");
  spit(mpath, e);
  free(e);
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("verify", "big", "--instance", inst, "--from", bk1));
  if (rc == 0 || !strstr(out, "compression")) {
    app_t_show("verify", out);
    TASK_FAIL_("edited v1 manifest: verify exited %d", rc);
  }
  free(out);
  free(v1);

  /* Put back, everything works again. */
  spit(mpath, orig);
  app_t_run_ok("verify", NULL,
               ARGS("verify", "big", "--instance", inst, "--from", bk1));
  app_t_run_ok("list", NULL, ARGS("list", "--from", bk1));
  free(orig);
  return 0;
}

TEST_IMPL(app_safety_long_name_states_limit) {
  char name[140];
  memset(name, 'x', 130);
  name[130] = 0;
  char *out = NULL;
  int rc = app_t_run(
      &out, NULL,
      ARGS("backup", name, "--instance", test_tmpdir(), "--to", test_tmpdir()));
  if (rc != 2 || !strstr(out, "100 characters")) {
    app_t_show("backup", out);
    TASK_FAIL_("exit %d", rc);
  }
  free(out);
  return 0;
}
