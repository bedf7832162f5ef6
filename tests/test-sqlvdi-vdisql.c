/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sqlvdi-vdisql.c - an SDK client against the reference engine.
 *
 * The C++ clients of tests/cxx/ (SDK header, -lsqlvdi) back up a small
 * SQLite database through `vdisql -Q "BACKUP DATABASE x TO
 * VIRTUAL_DEVICE='...'"` and restore it under another name with RESTORE;
 * the restored database must hold the same rows.  Three processes: this
 * test, the client, the engine.  Skipped while vdisql is not built.
 */
#include "task.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run `path` with `args` (NULL-terminated, without argv[0]), output
 * appended to `log`; returns the pid. */
static pid_t start(const char *path, const char *log, const char *const *args) {
  spawn_io io = {.out = log, .append = 1};
  return spawn_program(path, args, &io);
}

/* Whether the file holds the line. */
static int log_has(const char *path, const char *line) {
  FILE *f = fopen(path, "r");
  char buf[512];
  int found = 0;
  if (!f) return 0;
  while (!found && fgets(buf, sizeof buf, f))
    found = !strcmp(buf, line);
  fclose(f);
  return found;
}

/* One statement through one SDK client program; both must succeed. */
static void engine_round(const char *client, const char *set, const char *file,
                         const char *sql, const char *log) {
  char cpath[4096], epath[4096];
  snprintf(cpath, sizeof cpath, "%s", build_path(client));
  snprintf(epath, sizeof epath, "%s", build_path("vdisql"));
  const char *cargs[] = {set, file, NULL};
  pid_t c = start(cpath, log, cargs);
  /* As a backup tool does: the statement runs once the set exists. */
  char ready[256];
  snprintf(ready, sizeof ready, "created set %s\n", set);
  int64_t end = now_ms() + 10000;
  while (!log_has(log, ready)) {
    if (now_ms() > end || wait_helper_timeout(c, 0) >= 0) {
      dump_file(log);
      TASK_FAIL_("%s did not create its set", client);
    }
    sleep_ms(2);
  }
  const char *eargs[] = {"-S", test_tmpdir(), "-b", "-Q", sql, NULL};
  pid_t e = start(epath, log, eargs);
  int ec = wait_helper_timeout(e, 20000);
  int cc = wait_helper_timeout(c, 5000);
  if (ec != 0 || cc != 0) {
    fprintf(stderr, "%s: engine exit %d, client exit %d\n", sql, ec, cc);
    dump_file(log);
    if (ec < 0) kill(e, SIGKILL);
    if (cc < 0) kill(c, SIGKILL);
    ASSERT_EQ(ec, 0);
    ASSERT_EQ(cc, 0);
  }
}

static void exec_sql(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
    TASK_FAIL_("%s: %s", sql, err ? err : "?");
}

/* An order-independent digest of table t: row count and a sum of hashes. */
static void digest(const char *path, int64_t *rows, uint64_t *sum) {
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id, v FROM t", -1, &st, NULL),
            SQLITE_OK);
  *rows = 0;
  *sum = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)sqlite3_column_int64(st, 0);
    const unsigned char *v = sqlite3_column_text(st, 1);
    for (; v && *v; v++)
      h = (h ^ *v) * 1099511628211ull;
    *sum += h;
    (*rows)++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_IMPL_TIMEOUT(sqlvdi_vdisql_round_trip, 60) {
  if (access(build_path("vdisql"), X_OK) != 0) {
    fprintf(stderr, "vdisql is not built\n");
    return TEST_SKIP;
  }
  char dbpath[4200], bak[4200], log[4200], restored[4200];
  snprintf(dbpath, sizeof dbpath, "%s/x.db", test_tmpdir());
  snprintf(restored, sizeof restored, "%s/y.db", test_tmpdir());
  snprintf(bak, sizeof bak, "%s/x.bak", test_tmpdir());
  snprintf(log, sizeof log, "%s/run.log", test_tmpdir());

  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(dbpath, &db), SQLITE_OK);
  exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n"
               " WHERE i < 3000) INSERT INTO t SELECT i, hex(randomblob(40))"
               " FROM n;");
  sqlite3_close(db);
  int64_t rows0, rows1;
  uint64_t sum0, sum1;
  digest(dbpath, &rows0, &sum0);
  ASSERT_EQ(rows0, 3000);

  char sql[512];
  const char *set = unique_name("vsql");
  snprintf(sql, sizeof sql, "BACKUP DATABASE x TO VIRTUAL_DEVICE='%s'", set);
  engine_round("cxx/pipe_backup", set, bak, sql, log);
  struct stat st;
  ASSERT_EQ(stat(bak, &st), 0);
  ASSERT_GT(st.st_size, 0);

  set = unique_name("vsql");
  snprintf(sql, sizeof sql, "RESTORE DATABASE y FROM VIRTUAL_DEVICE='%s'", set);
  engine_round("cxx/pipe_restore", set, bak, sql, log);
  digest(restored, &rows1, &sum1);
  ASSERT_EQ(rows1, rows0);
  ASSERT_UEQ(sum1, sum0);
  return 0;
}
