/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-repo.c - a vdi target as a repository with history (issue 16,
 * point 2), across real processes: every backup is a new timestamped set,
 * `vdi list` shows them all with their chains, a restore takes the newest
 * full set unless --set names another, `vdi expire` keeps what the kept
 * chains need (a dry run unless --delete), and backups written in the
 * older one-folder layout (DB.manifest.json and DB.chain/ in the target)
 * still list, verify and restore.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char inst[4200], bk[4200];

static void setup(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
}

static void digest_of(const char *name, char *out, size_t n) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  app_t_digest(p, out, n);
}

/* The last path element of a set directory: its ID. */
static const char *id_of(const char *set) {
  const char *s = strrchr(set, '/');
  return s ? s + 1 : set;
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
    n++;
  return n;
}

TEST_IMPL_TIMEOUT(app_repo_history_and_set_choice, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  char v1[64], v2[64], got[64], s1[4400], s2[4400];
  app_t_make_db(inst, "db", 2000, 4096, 1);
  digest_of("db", v1, sizeof v1);
  app_t_run_ok("backup 1", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  app_t_make_db(inst, "db", 3000, 4096, 2);
  digest_of("db", v2, sizeof v2);
  ASSERT(strcmp(v1, v2) != 0);
  app_t_run_ok("backup 2", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "--stripes",
                    "2", "--compress", "-q"));
  /* Two sets, the first kept whole beside the second. */
  ASSERT_EQ(app_t_set_dir(bk, "db", 0, s1, sizeof s1), 2);
  app_t_set_dir(bk, "db", -1, s2, sizeof s2);
  ASSERT(app_t_exists(s1, "db.manifest.json") &&
         app_t_exists(s1, "db.stripe0.vdibak"));
  ASSERT(app_t_exists(s2, "db.stripe1.vdibak"));
  ASSERT(strstr(id_of(s1), "-full") && strstr(id_of(s2), "-full"));

  /* list: every set, with its ID, type, stripes and compression. */
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", bk)), 0);
  if (!strstr(out, id_of(s1)) || !strstr(out, id_of(s2)) ||
      !strstr(out, "2 stripes") || !strstr(out, "compression zstd") ||
      !strstr(out, "compression none")) {
    app_t_show("list", out);
    TASK_FAIL_("list does not show both sets");
  }
  free(out);
  /* ... and of one set, given its directory. */
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", s1)), 0);
  ASSERT(strstr(out, id_of(s1)) && !strstr(out, id_of(s2)));
  free(out);

  /* ... and of one database's folder. */
  char folder[4400];
  snprintf(folder, sizeof folder, "%s/db", bk);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", folder)), 0);
  ASSERT(strstr(out, id_of(s1)) && strstr(out, id_of(s2)));
  free(out);

  /* restore: the newest set by default, another with --set. */
  app_t_run_ok("restore newest", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                    "newest", "-q"));
  digest_of("newest", got, sizeof got);
  ASSERT_STR_EQ(got, v2);
  app_t_run_ok("restore --set", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                    "older", "--set", id_of(s1), "-q"));
  digest_of("older", got, sizeof got);
  ASSERT_STR_EQ(got, v1);
  /* From one set's directory, as from a repository. */
  app_t_run_ok("restore from a set", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", s1, "--as",
                    "fromset", "-q"));
  digest_of("fromset", got, sizeof got);
  ASSERT_STR_EQ(got, v1);
  app_t_run_ok("restore from the database's folder", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", folder,
                    "--as", "fromfolder", "-q"));
  digest_of("fromfolder", got, sizeof got);
  ASSERT_STR_EQ(got, v2);
  /* `vdi restore db.db`: the name without the file's .db. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "db.db", "--instance", inst, "--from", bk,
                           "--as", "x")),
            3);
  ASSERT(strstr(out, "leave out the file's .db (vdi restore db)"));
  free(out);
  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                     "none", "--set", "20000101T000000.000Z-full", "-q")),
      3);
  ASSERT(strstr(out, "no backup set '20000101T000000.000Z-full'"));
  free(out);
  /* verify: each set. */
  ASSERT_EQ(
      app_t_run(&out, NULL, ARGS("verify", "--instance", inst, "--from", bk)),
      0);
  ASSERT(strstr(out, id_of(s1)) && strstr(out, id_of(s2)));
  free(out);

  /* expire by age (--keep-days) and --keep-full (--keep-last's other
   * name): the first set made six years old by its ID. */
  char old[4400];
  snprintf(old, sizeof old, "%s/db/20200101T000000.000Z-full", bk);
  ASSERT_EQ(rename(s1, old), 0);
  ASSERT_EQ(
      app_t_run(&out, NULL, ARGS("expire", "--from", bk, "--keep-days", "30")),
      0);
  if (!strstr(out, "1 of 2 sets would") ||
      !strstr(out, "would delete  db  20200101T000000.000Z-full")) {
    app_t_show("expire --keep-days 30", out);
    TASK_FAIL_("the old set is not the one to go");
  }
  free(out);
  app_t_run_has("0 of 2 sets would", NULL,
                ARGS("expire", "--from", bk, "--keep-days", "4000"));
  app_t_run_has("1 of 2 sets would", NULL,
                ARGS("expire", "--from", bk, "--keep-full", "1"));
  app_t_run_has("1 of 2 sets deleted", NULL,
                ARGS("expire", "--from", bk, "--keep-days", "30", "--delete"));
  ASSERT_EQ(app_t_set_dir(bk, "db", 0, NULL, 0), 1);
  ASSERT(!app_t_exists(bk, "db/20200101T000000.000Z-full"));
  return 0;
}

/* ------------------------------------------------ chains and expire */

static void db_file(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s.db", inst, name);
}

/* The instance serving database "app" (200 rows), in the FULL recovery
 * model when @p full (log backups), SIMPLE otherwise. */
static pid_t serve_app(int full) {
  char p[4400], logp[4400];
  db_file(p, sizeof p, "app");
  sql_make_db(p, 200, 4096, 1, 7);
  snprintf(logp, sizeof logp, "%s/instance.log", test_tmpdir());
  pid_t srv = sql_serve(inst, logp, NULL);
  if (full)
    ASSERT_EQ(sql_q(inst, "ALTER DATABASE app SET RECOVERY FULL", NULL), 0);
  return srv;
}

static void backup(const char *what, const char *kind) {
  if (kind)
    app_t_run_ok(
        what, NULL,
        ARGS("backup", "app", "--instance", inst, "--to", bk, kind, "-q"));
  else
    app_t_run_ok(what, NULL,
                 ARGS("backup", "app", "--instance", inst, "--to", bk, "-q"));
}

static void copy_set(const char *from, const char *to) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -p '%s'/* '%s'/", to, from,
           to);
  ASSERT_EQ(system(cmd), 0);
}

TEST_IMPL_TIMEOUT(app_repo_chains_expire_old_layout, 120) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  pid_t srv = serve_app(1);
  backup("full 1", NULL);
  app_t_add_rows(inst, "app", 20);
  backup("log 1", "--log");
  app_t_add_rows(inst, "app", 20);
  backup("diff 1", "--differential");
  backup("full 2", NULL);
  app_t_add_rows(inst, "app", 20);
  backup("log 2", "--log");
  long all = app_t_rows(inst, "app");
  ASSERT_EQ(all, 260);
  char f1[4400], f2[4400], l2[4400];
  ASSERT_EQ(app_t_set_dir(bk, "app", 0, f1, sizeof f1), 5);
  app_t_set_dir(bk, "app", 3, f2, sizeof f2);
  app_t_set_dir(bk, "app", 4, l2, sizeof l2);
  ASSERT(strstr(f2, "-full") && strstr(l2, "-log"));

  /* list: each chain under its full set; JSON says which chain. */
  char *out = NULL, want[9000];
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", bk)), 0);
  if (!strstr(out, "+ log 000001") || !strstr(out, "+ differential 000002")) {
    app_t_show("list", out);
    TASK_FAIL_("the first chain is not shown");
  }
  free(out);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", bk, "--json")), 0);
  snprintf(want, sizeof want,
           "\"id\": \"%s\", \"type\": \"log\", "
           "\"complete\": true, \"chain\": \"%s\"",
           id_of(l2), id_of(f2));
  if (!strstr(out, want)) {
    app_t_show("list --json", out);
    TASK_FAIL_("%s", want);
  }
  ASSERT_EQ(count(out, "\"database\": \"app\""), 5);
  free(out);

  /* expire: a dry run by default; the first chain would go. */
  ASSERT_EQ(
      app_t_run(&out, NULL, ARGS("expire", "--from", bk, "--keep-last", "1")),
      0);
  if (count(out, "would delete") != 3 || !strstr(out, "3 of 5 sets would")) {
    app_t_show("expire", out);
    TASK_FAIL_("dry run");
  }
  free(out);
  ASSERT_EQ(app_t_set_dir(bk, "app", 0, NULL, 0), 5); /* nothing deleted */
  app_t_run_has("3 of 5 sets would", NULL,
                ARGS("expire", "--from", bk, "--keep-daily", "1", "--dry-run"));
  app_t_run_has("0 of 5 sets would", NULL,
                ARGS("expire", "--from", bk, "--keep-last", "2"));
  app_t_run_has("3 of 5 sets deleted", NULL,
                ARGS("expire", "--from", bk, "--keep-last", "1", "--delete"));
  ASSERT_EQ(app_t_set_dir(bk, "app", 0, NULL, 0), 2);
  /* What is left is a whole chain: it restores to the last log. */
  app_t_run_ok("latest", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", bk, "--as",
                    "r1", "--latest", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r1"), all);
  /* A damaged log backup stops the plan before the engine sees a byte:
   * the full backup is not restored over anything, so no r4 appears. */
  char l2s[4600];
  snprintf(l2s, sizeof l2s, "%s/app.stripe0.vdibak", l2);
  long long l2size = app_t_file_size(l2s);
  app_t_flip_byte(l2s, (long)(l2size / 2));
  int rc = app_t_run(&out, NULL,
                     ARGS("restore", "app", "--instance", inst, "--from", bk,
                          "--as", "r4", "--latest", "-q"));
  if (rc != 4 || !strstr(out, "refusing to plan a restore across it")) {
    app_t_show("restore across a damaged log", out);
    TASK_FAIL_("exit %d", rc);
  }
  free(out);
  ASSERT(!app_t_exists(inst, "r4.db"));
  app_t_flip_byte(l2s, (long)(l2size / 2));
  /* ... and one whose stream header cannot be read is never restored
   * around: --latest refuses rather than stop short of its rows. */
  app_t_flip_byte(l2s, 10);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "app", "--instance", inst, "--from", bk,
                      "--as", "r5", "--latest", "-q"));
  if (rc == 0 || !strstr(out, "cannot be read")) {
    app_t_show("restore past an unreadable log", out);
    TASK_FAIL_("exit %d", rc);
  }
  free(out);
  ASSERT(!app_t_exists(inst, "r5.db"));
  app_t_flip_byte(l2s, 10);

  /* The one-folder layout of earlier vdi versions: the full backup's
   * files in the target, the chain in app.chain/<seq>-log/. */
  char old[4400], entry[4500];
  snprintf(old, sizeof old, "%s/old", test_tmpdir());
  snprintf(entry, sizeof entry, "%s/app.chain/000001-log", old);
  copy_set(f2, old);
  copy_set(l2, entry);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", old)), 0);
  if (!strstr(out, "app  legacy  full") || !strstr(out, "+ log 000001")) {
    app_t_show("list old", out);
    TASK_FAIL_("old layout not listed");
  }
  free(out);
  app_t_run_ok("verify old", NULL,
               ARGS("verify", "--instance", inst, "--from", old));
  app_t_run_ok("restore old", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", old, "--as",
                    "r2", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r2"), 240);
  app_t_run_ok("restore old chain", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", old, "--as",
                    "r3", "--latest", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r3"), all);
  /* expire leaves the old layout alone. */
  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("expire", "--from", old, "--keep-last", "1", "--delete")),
      0);
  ASSERT(app_t_exists(old, "app.manifest.json"));
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* ------------------------------------------------ broken chains */

/* A log set missing from the middle of a chain (taken into another
 * repository, deleted by hand, or its manifest damaged) breaks it: the
 * plan refuses it before the first step, so the full backup never
 * replaces the database only for the engine to refuse the log after the
 * gap (Msg 4305) and leave it RESTORING. */
TEST_IMPL_TIMEOUT(app_repo_log_gap_refused_before_restoring, 120) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  pid_t srv = serve_app(1);
  backup("full", NULL);
  app_t_add_rows(inst, "app", 20);
  backup("log 1", "--log");
  app_t_add_rows(inst, "app", 20);
  backup("log 2", "--log");
  app_t_add_rows(inst, "app", 20);
  backup("log 3", "--log");
  char l2[4400], mpath[4500], saved[4500], cmd[9200];
  ASSERT_EQ(app_t_set_dir(bk, "app", 0, NULL, 0), 4);
  app_t_set_dir(bk, "app", 2, l2, sizeof l2);
  ASSERT(strstr(l2, "-log") != NULL);
  char *out = NULL;
  /* Its manifest damaged: the set is listed as such, and no restore goes
   * around it. */
  snprintf(mpath, sizeof mpath, "%s/app.manifest.json", l2);
  snprintf(saved, sizeof saved, "%s/app.manifest.saved", test_tmpdir());
  ASSERT_EQ(rename(mpath, saved), 0);
  FILE *f = fopen(mpath, "w");
  ASSERT_NOT_NULL(f);
  fputs("{\"format\": \"openvdi-backup-manifest\"", f);
  fclose(f);
  int rc = app_t_run(&out, NULL,
                     ARGS("restore", "app", "--instance", inst, "--from", bk,
                          "--as", "r1", "--latest", "-q"));
  if (rc == 0 || !strstr(out, "nothing was restored") ||
      app_t_exists(inst, "r1.db")) {
    app_t_show("restore across a damaged log manifest", out);
    TASK_FAIL_("exit %d, r1.db %s", rc,
               app_t_exists(inst, "r1.db") ? "made" : "not made");
  }
  free(out);
  /* The set gone altogether. */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", l2);
  ASSERT_EQ(system(cmd), 0);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "app", "--instance", inst, "--from", bk,
                      "--as", "r2", "--latest", "-q"));
  if (rc == 0 || !strstr(out, "nothing was restored") ||
      app_t_exists(inst, "r2.db")) {
    app_t_show("restore across a missing log", out);
    TASK_FAIL_("exit %d, r2.db %s", rc,
               app_t_exists(inst, "r2.db") ? "made" : "not made");
  }
  free(out);
  /* What comes before the gap still restores. */
  char l1[4400];
  app_t_set_dir(bk, "app", 1, l1, sizeof l1);
  app_t_run_ok("restore to the log before the gap", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", bk, "--as",
                    "r3", "--set", id_of(l1), "-q"));
  ASSERT_EQ(app_t_rows(inst, "r3"), 220);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* The newest differential damaged (its stream header, or its manifest):
 * --latest must not restore the one before it instead and say nothing,
 * when no log backup carries the chain past it (here the database is in
 * the SIMPLE recovery model: there are none). */
TEST_IMPL_TIMEOUT(app_repo_damaged_newest_diff_not_skipped, 120) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  pid_t srv = serve_app(0);
  backup("full", NULL);
  app_t_add_rows(inst, "app", 20);
  backup("diff 1", "--differential");
  app_t_add_rows(inst, "app", 20);
  backup("diff 2", "--differential");
  ASSERT_EQ(app_t_rows(inst, "app"), 240);
  char d2[4400], s[4600], m[4600], saved[4600];
  ASSERT_EQ(app_t_set_dir(bk, "app", 0, NULL, 0), 3);
  app_t_set_dir(bk, "app", 2, d2, sizeof d2);
  ASSERT(strstr(d2, "-diff") != NULL);
  app_t_run_ok("latest", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", bk, "--as",
                    "r0", "--latest", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r0"), 240);
  /* Its stream header unreadable. */
  snprintf(s, sizeof s, "%s/app.stripe0.vdibak", d2);
  app_t_flip_byte(s, 10);
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("restore", "app", "--instance", inst, "--from", bk,
                          "--as", "r1", "--latest", "-q"));
  if (rc == 0 || !strstr(out, id_of(d2)) || app_t_exists(inst, "r1.db")) {
    app_t_show("restore past an unreadable differential", out);
    TASK_FAIL_("exit %d, %ld rows restored", rc, app_t_rows(inst, "r1"));
  }
  free(out);
  app_t_flip_byte(s, 10);
  /* Its manifest damaged. */
  snprintf(m, sizeof m, "%s/app.manifest.json", d2);
  snprintf(saved, sizeof saved, "%s/app.manifest.saved", test_tmpdir());
  ASSERT_EQ(rename(m, saved), 0);
  FILE *f = fopen(m, "w");
  ASSERT_NOT_NULL(f);
  fputs("{\"format\": \"openvdi-backup-manifest\"", f);
  fclose(f);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "app", "--instance", inst, "--from", bk,
                      "--as", "r2", "--latest", "-q"));
  if (rc == 0 || !strstr(out, id_of(d2)) || app_t_exists(inst, "r2.db")) {
    app_t_show("restore past a differential with a damaged manifest", out);
    TASK_FAIL_("exit %d, %ld rows restored", rc, app_t_rows(inst, "r2"));
  }
  free(out);
  /* Asked for by name, the one before it still restores. */
  char d1[4400];
  app_t_set_dir(bk, "app", 1, d1, sizeof d1);
  app_t_run_ok("--set diff 1", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", bk, "--as",
                    "r3", "--set", id_of(d1), "-q"));
  ASSERT_EQ(app_t_rows(inst, "r3"), 220);
  ASSERT_EQ(rename(saved, m), 0);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* The same of the newest full set: a restore does not take the one before
 * it and say nothing; named with --set, the older one restores. */
TEST_IMPL_TIMEOUT(app_repo_damaged_newest_full_not_skipped, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  char v1[64], got[64], s1[4400], s2[4400], m[4600];
  app_t_make_db(inst, "db", 2000, 4096, 1);
  digest_of("db", v1, sizeof v1);
  app_t_run_ok("backup 1", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  app_t_make_db(inst, "db", 3000, 4096, 2);
  app_t_run_ok("backup 2", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  ASSERT_EQ(app_t_set_dir(bk, "db", 0, s1, sizeof s1), 2);
  app_t_set_dir(bk, "db", 1, s2, sizeof s2);
  snprintf(m, sizeof m, "%s/db.manifest.json", s2);
  FILE *f = fopen(m, "w");
  ASSERT_NOT_NULL(f);
  fputs("{\"format\": \"openvdi-backup-manifest\"", f);
  fclose(f);
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("restore", "db", "--instance", inst, "--from", bk,
                          "--as", "r1", "-q"));
  if (rc != 4 || !strstr(out, id_of(s2)) || app_t_exists(inst, "r1.db")) {
    app_t_show("restore with the newest full set damaged", out);
    TASK_FAIL_("exit %d", rc);
  }
  free(out);
  app_t_run_ok("--set the older", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                    "r2", "--set", id_of(s1), "-q"));
  digest_of("r2", got, sizeof got);
  ASSERT_STR_EQ(got, v1);
  return 0;
}

/* ------------------------------------------------ durable folders */

/* The first backup into a new repository makes REPO and REPO/DB; a
 * backup it reports done must survive a crash, so each new folder's entry
 * in its parent is made durable (the parent fsync'd), not only the set's
 * own.  Seen with strace (-y names each fsync's directory); skipped where
 * strace cannot run. */
TEST_IMPL_TIMEOUT(app_repo_new_folders_durable, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  if (system("strace -o /dev/null true >/dev/null 2>&1") != 0) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "db", 200, 4096, 1);
  char real[4096], repo[4400], trace[4400], cmd[14000];
  ASSERT_NOT_NULL(realpath(test_tmpdir(), real));
  snprintf(repo, sizeof repo, "%s/new", real);
  snprintf(trace, sizeof trace, "%s/strace.txt", real);
  snprintf(cmd, sizeof cmd,
           "strace -f -y -e trace=fsync -o '%s' '%s' backup db --instance "
           "'%s' --to '%s' -q",
           trace, build_path("vdi"), inst, repo);
  ASSERT_EQ(system(cmd), 0);
  char *text = app_t_slurp(trace);
  const char *dirs[] = {real, repo, NULL};
  for (int i = 0; dirs[i]; i++) {
    char want[4500];
    snprintf(want, sizeof want, "<%s>)", dirs[i]);
    if (!strstr(text, want)) {
      app_t_show("strace", text);
      TASK_FAIL_("no fsync of %s, where a new folder's entry is", dirs[i]);
    }
  }
  free(text);
  return 0;
}

/* A full backup taken elsewhere (here to stdout) becomes the base of the
 * next differential, which then continues no full set of the repository:
 * --latest must not restore the repository's full set alone, with none of
 * the differential's rows, and say nothing. */
TEST_IMPL_TIMEOUT(app_repo_diff_of_a_full_elsewhere_refused, 120) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  char stream[4400], out1[4400];
  pid_t srv = serve_app(0);
  backup("full", NULL);
  app_t_add_rows(inst, "app", 20);
  snprintf(stream, sizeof stream, "%s/elsewhere.vdibak", test_tmpdir());
  snprintf(out1, sizeof out1, "%s/elsewhere.txt", test_tmpdir());
  pid_t b =
      app_t_spawn(out1, stream, NULL, NULL,
                  ARGS("backup", "app", "--instance", inst, "--to", "-", "-q"));
  ASSERT_EQ(wait_helper(b), 0);
  app_t_add_rows(inst, "app", 20);
  backup("diff", "--differential");
  char d[4400];
  ASSERT_EQ(app_t_set_dir(bk, "app", 0, NULL, 0), 2);
  app_t_set_dir(bk, "app", 1, d, sizeof d);
  char *out = NULL;
  int rc = app_t_run(&out, NULL,
                     ARGS("restore", "app", "--instance", inst, "--from", bk,
                          "--as", "r1", "--latest", "-q"));
  if (rc == 0 || !strstr(out, id_of(d)) || app_t_exists(inst, "r1.db")) {
    app_t_show("restore --latest past a differential of another full", out);
    TASK_FAIL_("exit %d, %ld rows restored", rc, app_t_rows(inst, "r1"));
  }
  free(out);
  /* The full set alone, asked for, still restores. */
  app_t_run_ok("the full set", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", bk, "--as",
                    "r2", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r2"), 200);
  /* list does not put the differential in the full set's chain (it said
   * so, as if a restore could use them together), and expire keeps it
   * while its time is kept. */
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", bk, "--json")), 0);
  char want[4600];
  snprintf(want, sizeof want,
           "\"id\": \"%s\", \"type\": \"diff\", "
           "\"complete\": true, \"chain\": null",
           id_of(d));
  if (!strstr(out, want)) {
    app_t_show("list --json", out);
    TASK_FAIL_("the differential is put in a chain");
  }
  free(out);
  app_t_run_has("0 of 2 sets would", NULL,
                ARGS("expire", "--from", bk, "--keep-last", "1"));
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A database's folder in a repository, given as the target of a backup,
 * takes the new set beside the others, where a restore from that folder
 * (or from the repository) finds it; made one level deeper instead
 * (REPO/db/db/ID), it was passed over and the restore took the older set
 * with no word.  Another database's backup is refused there. */
TEST_IMPL_TIMEOUT(app_repo_backup_to_a_database_folder, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  char v1[64], v2[64], got[64], folder[4400], nested[4500], set[4400];
  app_t_make_db(inst, "db", 2000, 4096, 1);
  digest_of("db", v1, sizeof v1);
  app_t_run_ok("backup to the repository", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  app_t_make_db(inst, "db", 3000, 4096, 2);
  digest_of("db", v2, sizeof v2);
  ASSERT(strcmp(v1, v2) != 0);
  snprintf(folder, sizeof folder, "%s/db", bk);
  app_t_run_ok("backup to the database's folder", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", folder, "-q"));
  snprintf(nested, sizeof nested, "%s/db", folder);
  ASSERT(access(nested, F_OK) != 0);
  ASSERT_EQ(app_t_set_dir(bk, "db", 0, set, sizeof set), 2);
  app_t_run_ok("restore from the folder", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", folder,
                    "--as", "fromfolder", "-q"));
  digest_of("fromfolder", got, sizeof got);
  ASSERT_STR_EQ(got, v2);
  app_t_run_ok("restore from the repository", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                    "fromrepo", "-q"));
  digest_of("fromrepo", got, sizeof got);
  ASSERT_STR_EQ(got, v2);

  char *out = NULL;
  app_t_make_db(inst, "other", 500, 4096, 3);
  ASSERT(app_t_run(&out, NULL,
                   ARGS("backup", "other", "--instance", inst, "--to", folder,
                        "-q")) != 0);
  if (!strstr(out, "holds the backup sets of database 'db'")) {
    app_t_show("backup of another database", out);
    TASK_FAIL_("no clear refusal");
  }
  free(out);
  snprintf(nested, sizeof nested, "%s/other", folder);
  ASSERT(access(nested, F_OK) != 0);
  return 0;
}

/* --keep-days never empties a repository: when the backups stopped more
 * than N days ago, the newest full set stays (a retention run from cron
 * must not leave nothing to restore); the older one goes. */
TEST_IMPL_TIMEOUT(app_repo_keep_days_keeps_the_newest_full, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  char v2[64], got[64], s1[4400], s2[4400], old1[4400], old2[4400];
  app_t_make_db(inst, "db", 1000, 4096, 1);
  app_t_run_ok("backup 1", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  app_t_make_db(inst, "db", 1500, 4096, 2);
  digest_of("db", v2, sizeof v2);
  app_t_run_ok("backup 2", NULL,
               ARGS("backup", "db", "--instance", inst, "--to", bk, "-q"));
  ASSERT_EQ(app_t_set_dir(bk, "db", 0, s1, sizeof s1), 2);
  app_t_set_dir(bk, "db", -1, s2, sizeof s2);
  /* Both made years old by their IDs: the last backup ran long ago. */
  snprintf(old1, sizeof old1, "%s/db/20200101T000000.000Z-full", bk);
  snprintf(old2, sizeof old2, "%s/db/20210101T000000.000Z-full", bk);
  ASSERT_EQ(rename(s1, old1), 0);
  ASSERT_EQ(rename(s2, old2), 0);
  app_t_run_has("1 of 2 sets deleted", NULL,
                ARGS("expire", "--from", bk, "--keep-days", "30", "--delete"));
  ASSERT(!app_t_exists(bk, "db/20200101T000000.000Z-full"));
  ASSERT(app_t_exists(bk, "db/20210101T000000.000Z-full"));
  app_t_run_ok("restore what is left", NULL,
               ARGS("restore", "db", "--instance", inst, "--from", bk, "--as",
                    "left", "-q"));
  digest_of("left", got, sizeof got);
  ASSERT_STR_EQ(got, v2);
  return 0;
}

/* Two databases of one name backed up into one repository (two servers'
 * "app", say): each full set's chain is its own database's.  The plan
 * passes over the other database's log sets (another family GUID),
 * where it used to take them into the chain or call it broken. */
TEST_IMPL_TIMEOUT(app_repo_chain_keeps_to_its_database, 120) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  char p[4500], inst2[4400], log2[4400];
  pid_t srv = serve_app(1);
  backup("full of the first", NULL);
  for (int i = 0; i < 3; i++) {
    app_t_add_rows(inst, "app", 20);
    backup("log of the first", "--log");
  }
  sql_serve_stop(srv, 10000);

  /* The second server's "app": another database, its full set newest. */
  snprintf(inst2, sizeof inst2, "%s/inst2", test_tmpdir());
  ASSERT_EQ(mkdir(inst2, 0755), 0);
  snprintf(p, sizeof p, "%s/app.db", inst2);
  sql_make_db(p, 50, 4096, 1, 9);
  snprintf(log2, sizeof log2, "%s/instance2.log", test_tmpdir());
  srv = sql_serve(inst2, log2, NULL);
  ASSERT_EQ(sql_q(inst2, "ALTER DATABASE app SET RECOVERY FULL", NULL), 0);
  app_t_run_ok("full of the second", NULL,
               ARGS("backup", "app", "--instance", inst2, "--to", bk, "-q"));
  app_t_run_ok("restore --latest", NULL,
               ARGS("restore", "app", "--instance", inst2, "--from", bk, "--as",
                    "r", "--latest", "-q"));
  ASSERT_EQ(app_t_rows(inst2, "r"), 50);
  sql_serve_stop(srv, 10000);
  return 0;
}
