/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-ux.c - vdi as a user meets it, across real processes (issue
 * 16): --json summaries and the documented exit codes (point 3); where
 * things go, and the warning for a forgotten --instance (point 4); the
 * engine's messages told once, in vdi's terms (point 5); --quiet, -v, --,
 * -V/--version on both programs, "did you mean" (point 6); `vdi check`
 * (point 8).
 */
#include "task.h"
#include "test-app-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char inst[4200], bk[4200];

static void setup(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
}

/* Run vdi with stdout apart from stderr: its status, both texts. */
static int run2(char **so, char **se, const char *const *env,
                const char *const *args) {
  char o[4400], e[4400];
  static int seq;
  snprintf(o, sizeof o, "%s/so-%d", test_tmpdir(), ++seq);
  snprintf(e, sizeof e, "%s/se-%d", test_tmpdir(), seq);
  pid_t p = app_t_spawn(e, o, NULL, env, args);
  int rc = wait_helper(p);
  *so = app_t_slurp(o);
  *se = app_t_slurp(e);
  return rc;
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
    n++;
  return n;
}

/* The text is one JSON object on one line (ends "}\n", starts "{"). */
static void one_object(const char *what, const char *so) {
  size_t l = strlen(so);
  if (l < 3 || so[0] != '{' || strcmp(so + l - 2, "}\n") != 0) {
    app_t_show(what, so);
    TASK_FAIL_("%s: not one JSON object on stdout", what);
  }
}

TEST_IMPL_TIMEOUT(app_ux_json_and_exit_codes, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "db", 2000, 4096, 3);
  char *so, *se;
  /* backup --json: the summary alone on stdout. */
  int rc = run2(&so, &se, NULL,
                ARGS("backup", "db", "--instance", inst, "--to", bk,
                     "--stripes", "2", "--json"));
  if (rc != 0) app_t_show("backup --json", se);
  ASSERT_EQ(rc, 0);
  one_object("backup", so);
  ASSERT(strstr(so, "\"command\": \"backup\", \"status\": \"ok\""));
  ASSERT(strstr(so, "\"type\": \"full\"") && strstr(so, "\"stripes\": 2"));
  ASSERT(strstr(so, "\"set\": \"") && strstr(so, "-full\""));
  ASSERT(!strstr(so, "Processed")); /* the engine's lines are not in it */
  free(so);
  free(se);
  rc = run2(&so, &se, NULL,
            ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                 "copy", "--output=json"));
  ASSERT_EQ(rc, 0);
  one_object("restore", so);
  ASSERT(strstr(so, "\"command\": \"restore\", \"status\": \"ok\"") &&
         strstr(so, "\"as\": \"copy\"") && strstr(so, "\"type\": \"full\""));
  free(so);
  free(se);
  rc = run2(&so, &se, NULL,
            ARGS("verify", "--instance", inst, "--from", bk, "--json"));
  ASSERT_EQ(rc, 0);
  one_object("verify", so);
  ASSERT(strstr(so, "\"valid\": true"));
  free(so);
  free(se);
  rc = run2(&so, &se, NULL, ARGS("list", "--from", bk, "--json"));
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(so, "\"sets\": [") && strstr(so, "\"stripes\": 2") &&
         strstr(so, "\"compression\": \"none\""));
  free(so);
  free(se);

  /* The exit codes of vdi(1): 3 not found ... */
  rc = run2(
      &so, &se, NULL,
      ARGS("restore", "nosuch", "--instance", inst, "--from", bk, "--json"));
  ASSERT_EQ(rc, 3);
  one_object("restore failure", so);
  ASSERT(strstr(so, "\"status\": \"error\", \"exit\": 3") &&
         strstr(so, "no complete backup of 'nosuch'"));
  free(so);
  free(se);
  rc = run2(&so, &se, NULL, ARGS("verify", "nosuch", "--from", bk, "--json"));
  ASSERT_EQ(rc, 3);
  one_object("verify failure", so);
  ASSERT(strstr(
      so, "\"command\": \"verify\", \"status\": \"failed\", \"exit\": 3"));
  free(so);
  free(se);
  /* ... 5 the engine failed (refused the statement) ... */
  rc = run2(&so, &se, NULL,
            ARGS("backup", "nosuch", "--instance", inst, "--to", bk));
  ASSERT_EQ(rc, 5);
  free(so);
  free(se);
  /* ... 2 usage ... */
  rc = run2(&so, &se, NULL, ARGS("backup", "db", "--stripes", "0"));
  ASSERT_EQ(rc, 2);
  free(so);
  free(se);
  /* ... 4 damaged. */
  char set[4400], path[4500];
  app_t_set_dir(bk, "db", -1, set, sizeof set);
  snprintf(path, sizeof path, "%s/db.stripe1.vdibak", set);
  app_t_flip_byte(path, 1000);
  rc = run2(&so, &se, NULL,
            ARGS("verify", "--instance", inst, "--from", bk, "--json"));
  ASSERT_EQ(rc, 4);
  ASSERT(strstr(so, "\"valid\": false, \"exit\": 4"));
  free(so);
  free(se);
  rc = run2(
      &so, &se, NULL,
      ARGS("restore", "db", "--instance", inst, "--from", bk, "--as", "bad"));
  ASSERT_EQ(rc, 4);
  free(so);
  free(se);
  return 0;
}

TEST_IMPL_TIMEOUT(app_ux_where_things_go, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "db", 500, 4096, 3);
  char *out = NULL, want[9000];
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "db", "--instance", inst, "--to", bk)),
            0);
  snprintf(want, sizeof want, "vdi: instance %s, database file %s/db.db", inst,
           inst);
  ASSERT(strstr(out, want) && strstr(out, "vdi: backup set "));
  ASSERT(!strstr(out, "warning"));
  free(out);
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "db", "--instance", inst, "--from", bk,
                           "--as", "r")),
            0);
  snprintf(want, sizeof want, "vdi: instance %s, database file %s/r.db", inst,
           inst);
  ASSERT(strstr(out, want));
  free(out);
  /* No --instance and no $VDI_INSTANCE_DIR: the per-user default, said. */
  char xdg[4400], dflt[4500], env1[4500];
  snprintf(xdg, sizeof xdg, "%s/xdg", test_tmpdir());
  snprintf(dflt, sizeof dflt, "%s/openvdi/instance", xdg);
  snprintf(env1, sizeof env1, "XDG_DATA_HOME=%s", xdg);
  ASSERT_EQ(app_t_run(&out, ENV(env1, "VDI_INSTANCE_DIR="),
                      ARGS("backup", "nosuch", "--to", bk)),
            5);
  snprintf(want, sizeof want,
           "vdi: warning: no --instance given: using the default instance %s",
           dflt);
  if (!strstr(out, want)) {
    app_t_show("backup without --instance", out);
    TASK_FAIL_("no warning");
  }
  free(out);
  return 0;
}

TEST_IMPL_TIMEOUT(app_ux_messages_once, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "db", 500, 4096, 3);
  char *out = NULL;
  /* The engine's refusal: once, in vdi's words, with its number. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "nosuch", "--instance", inst, "--to", bk)),
            5);
  ASSERT_EQ(count(out, "Database 'nosuch' does not exist"), 1);
  ASSERT(strstr(out, "vdi: error: Database 'nosuch' does not exist"));
  ASSERT(strstr(out, "(Msg 911)") && !strstr(out, "Msg 911, Level"));
  free(out);
  /* A wrong --instance: no "Sqlcmd:", and the option to check. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "db", "--instance", "/nonexistent/inst",
                           "--to", bk)),
            5);
  ASSERT(!strstr(out, "Sqlcmd") && strstr(out, "(check --instance)"));
  ASSERT_EQ(count(out, "does not exist"), 1);
  free(out);
  /* Where the remedy is a vdi option, vdi names it: an engine that asks
   * for WITH REPLACE. */
  app_t_run_ok("backup", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  char fake[4400];
  snprintf(fake, sizeof fake, "%s/fake-vdisql", test_tmpdir());
  FILE *f = fopen(fake, "w");
  ASSERT_NOT_NULL(f);
  fputs("#!/bin/sh\n"
        "echo 'Msg 1834, Level 16, State 1, Server x, Line 1' >&2\n"
        "echo \"The file 'x' cannot be overwritten. It is being used by "
        "database 'r'. Use WITH REPLACE to overwrite the existing "
        "database.\" >&2\n"
        "exit 1\n",
        f);
  fclose(f);
  ASSERT_EQ(chmod(fake, 0755), 0);
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "db", "--instance", inst, "--from", bk,
                           "--as", "r", "--vdisql", fake)),
            5);
  if (!strstr(out, "Use --replace to overwrite it. (Msg 1834)") ||
      strstr(out, "WITH REPLACE")) {
    app_t_show("restore", out);
    TASK_FAIL_("not in vdi's terms");
  }
  free(out);
  /* Nothing there: "no backup", not "did NOT verify". */
  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("verify", "nosuch", "--instance", inst, "--from", bk)),
      3);
  ASSERT(strstr(out, "no complete backup of 'nosuch'") &&
         !strstr(out, "did NOT verify"));
  free(out);
  /* `vdi backup db.db`: the name without the file's .db. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "db.db", "--instance", inst, "--to", bk)),
            3);
  ASSERT(strstr(out, "leave out the file's .db (vdi backup db)"));
  free(out);
  /* The databases of an instance. */
  app_t_make_db(inst, "other", 10, 4096, 3);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("databases", "--instance", inst)), 0);
  ASSERT(strstr(out, "\ndb  ") && strstr(out, "\nother  "));
  free(out);
  return 0;
}

TEST_IMPL_TIMEOUT(app_ux_conventions, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "db", 500, 4096, 3);
  char *out = NULL;
  /* --quiet: nothing at all on success, the engine's lines included. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "db", "--instance", inst, "--to", bk,
                           "--quiet")),
            0);
  if (out[0]) {
    app_t_show("--quiet", out);
    TASK_FAIL_("--quiet printed something");
  }
  free(out);
  /* -v: the statement run and the engine. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "-v", "--instance", inst, "--to", bk, "--",
                           "db")),
            0);
  ASSERT(strstr(out, "vdi: running ") && strstr(out, "BACKUP DATABASE [db]"));
  free(out);
  /* --: what follows is a name, even when it looks like an option. */
  ASSERT_EQ(
      app_t_run(&out, NULL, ARGS("backup", "--to", bk, "--", "--stripes")), 2);
  ASSERT(strstr(out, "invalid database name '--stripes'"));
  free(out);
  /* -V and --version, on vdi and on vdisql. */
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("-V")), 0);
  ASSERT(strncmp(out, "vdi ", 4) == 0);
  free(out);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--version")), 0);
  ASSERT(strncmp(out, "vdi ", 4) == 0);
  free(out);
  char cmd[4400], line[256];
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd, "'%s' %s", build_path("vdisql"),
             i ? "--version" : "-V");
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    ASSERT_NOT_NULL(fgets(line, sizeof line, p));
    ASSERT_EQ(pclose(p), 0);
    ASSERT(strncmp(line, "vdisql ", 7) == 0);
  }
  /* Near misses. */
  ASSERT_EQ(
      app_t_run(&out, NULL, ARGS("backup", "db", "--to", bk, "--stripe", "2")),
      2);
  ASSERT(strstr(out, "unknown option '--stripe'; did you mean --stripes?"));
  free(out);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("bakup", "db")), 2);
  ASSERT(strstr(out, "did you mean backup?"));
  free(out);
  return 0;
}

TEST_IMPL_TIMEOUT(app_ux_check, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "db", 500, 4096, 3);
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("check", "db", "--instance", inst, "--to", bk)),
            0);
  if (!strstr(out, "ok     instance") || !strstr(out, "ok     vdisql") ||
      !strstr(out, "ok     target") || !strstr(out, "ok     space") ||
      !strstr(out, "check passed")) {
    app_t_show("check", out);
    TASK_FAIL_("check did not pass");
  }
  free(out);
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("check", "--instance", inst, "--to", bk, "--json")),
            0);
  ASSERT(strstr(out, "\"status\": \"ok\""));
  free(out);
  /* A database that is not there; a target that cannot be written; an
   * engine of another version. */
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("check", "nosuch", "--instance", inst)),
            1);
  ASSERT(strstr(out, "FAILED database"));
  free(out);
  char ro[4400];
  snprintf(ro, sizeof ro, "%s/ro", test_tmpdir());
  ASSERT_EQ(mkdir(ro, 0555), 0);
  if (access(ro, W_OK) != 0) { /* root writes anyway */
    ASSERT_EQ(
        app_t_run(&out, NULL, ARGS("check", "--instance", inst, "--to", ro)),
        1);
    ASSERT(strstr(out, "FAILED target"));
    free(out);
  }
  char fake[4400];
  snprintf(fake, sizeof fake, "%s/old-vdisql", test_tmpdir());
  FILE *f = fopen(fake, "w");
  ASSERT_NOT_NULL(f);
  fputs("#!/bin/sh\necho 'vdisql 0.0.1'\n", f);
  fclose(f);
  ASSERT_EQ(chmod(fake, 0755), 0);
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("check", "--instance", inst, "--vdisql", fake)),
            1);
  ASSERT(strstr(out, "FAILED vdisql") && strstr(out, "'vdisql 0.0.1'"));
  free(out);
  return 0;
}
