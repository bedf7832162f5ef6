/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-live.c - online backup of a live database: a writer process
 * commits continuously while vdisql (another process) backs the database
 * up; every restored copy must pass integrity_check and be exactly one
 * committed state (the writer keeps an invariant across tables in each
 * transaction).  WAL and rollback-journal databases, plus a WAL whose
 * frames were never checkpointed.
 */
#include "task.h"
#include "test-sql-util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static void xexec(sqlite3 *db, const char *sql) {
  char *e = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
    TASK_FAIL_("sqlite: %s: %s", sql, e ? e : "?");
}

/* Each transaction: one row into t2 with a 3 KB blob, a row into t, and
 * tally(n, s) updated so that n = count(t2) and s = sum(t2.id). */
HELPER_IMPL(sql_live_writer) {
  if (argc < 3) return 2;
  const char *path = argv[1], *stop = argv[2];
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) return 3;
  sqlite3_busy_timeout(db, 20000);
  char blob[3000];
  memset(blob, 'w', sizeof blob);
  sqlite3_stmt *a, *b;
  sqlite3_prepare_v2(db, "INSERT INTO t2(b) VALUES(?)", -1, &a, NULL);
  sqlite3_prepare_v2(db, "INSERT INTO t(v, b) VALUES('live', ?)", -1, &b, NULL);
  for (int i = 0; access(stop, F_OK) != 0; i++) {
    xexec(db, "BEGIN IMMEDIATE");
    blob[i % sizeof blob] ^= 1;
    sqlite3_bind_blob(a, 1, blob, sizeof blob, SQLITE_STATIC);
    sqlite3_bind_blob(b, 1, blob, 200, SQLITE_STATIC);
    if (sqlite3_step(a) != SQLITE_DONE || sqlite3_step(b) != SQLITE_DONE)
      return 4;
    sqlite3_reset(a);
    sqlite3_reset(b);
    xexec(db, "UPDATE tally SET n = n + 1, s = s + last_insert_rowid() - "
              "last_insert_rowid() + (SELECT max(id) FROM t2)");
    xexec(db, "COMMIT");
    /* Leave readers a window: SQLite's busy handler is polling, and a
     * writer that never pauses starves rollback-mode readers. */
    usleep(300);
  }
  sqlite3_finalize(a);
  sqlite3_finalize(b);
  sqlite3_close(db);
  return 0;
}

static long long q1(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    TASK_FAIL_("%s: %s", sql, sqlite3_errmsg(db));
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static long long tally(const char *path) {
  sqlite3 *db;
  sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
  sqlite3_busy_timeout(db, 20000);
  long long n = q1(db, "SELECT n FROM tally");
  sqlite3_close(db);
  return n;
}

/* The restored copy is one committed state: its invariant holds. */
static long long check_copy(const char *path) {
  ASSERT(sql_integrity_ok(path));
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  long long n = q1(db, "SELECT n FROM tally");
  long long s = q1(db, "SELECT s FROM tally");
  ASSERT_EQ(q1(db, "SELECT count(*) FROM t2"), n);
  ASSERT_EQ(q1(db, "SELECT coalesce(sum(id), 0) FROM t2"), s);
  ASSERT_EQ(q1(db, "SELECT count(*) FROM t WHERE v = 'live'"), n);
  sqlite3_close(db);
  return n;
}

static void live(int wal) {
  const char *d = test_tmpdir();
  char src[4200], dst[4200], stop[4200], *out;
  snprintf(src, sizeof src, "%s/live.db", d);
  snprintf(dst, sizeof dst, "%s/copy.db", d);
  snprintf(stop, sizeof stop, "%s/stop", d);
  sql_make_db(src, 15000, 4096, wal, 9);
  sqlite3 *db;
  sqlite3_open(src, &db);
  xexec(db, "CREATE TABLE t2(id INTEGER PRIMARY KEY, b BLOB);"
            "CREATE TABLE tally(n, s); INSERT INTO tally VALUES(0, 0)");
  sqlite3_close(db);
  pid_t w = spawn_helper("sql_live_writer", src, stop, (const char *)NULL);
  while (tally(src) < 20)
    sleep_ms(5);
  long long progressed = 0, last = -1, distinct = 0;
  for (int i = 0; i < 4; i++) {
    long long before = tally(src);
    int rc =
        sql_q(d, "BACKUP DATABASE live TO DISK='live.bak' WITH INIT", &out);
    if (rc != 0) TASK_FAIL_("backup: %s", out);
    free(out);
    long long after = tally(src);
    progressed += after - before;
    rc = sql_q(d, "RESTORE DATABASE copy FROM DISK='live.bak' WITH REPLACE",
               &out);
    if (rc != 0) TASK_FAIL_("restore: %s", out);
    free(out);
    long long n = check_copy(dst);
    ASSERT_GE(n, before);
    ASSERT_LE(n, after);
    if (n != last) distinct++;
    last = n;
  }
  FILE *f = fopen(stop, "w");
  fclose(f);
  ASSERT_EQ(wait_helper(w), 0);
  ASSERT_GT(progressed, 0);
  ASSERT_GE(distinct, 2);
  printf("writer commits during the backups: %lld\n", progressed);
}

TEST_IMPL_TIMEOUT(sql_live_wal_writer_consistent, 30) {
  live(1);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_live_rollback_writer_consistent, 30) {
  live(0);
  return 0;
}

/* Committed frames still in the WAL (never checkpointed) are part of the
 * backup; the writer's connection stays open meanwhile. */
TEST_IMPL(sql_live_wal_frames_included) {
  const char *d = test_tmpdir();
  char src[4200], dst[4200], *out;
  snprintf(src, sizeof src, "%s/w.db", d);
  snprintf(dst, sizeof dst, "%s/wcopy.db", d);
  sql_make_db(src, 2000, 4096, 1, 4);
  sqlite3 *db;
  sqlite3_open(src, &db);
  xexec(db, "PRAGMA wal_autocheckpoint=0");
  xexec(db, "DELETE FROM t WHERE id % 3 = 0");
  xexec(db, "INSERT INTO t(v, b) SELECT v || '-new', b FROM t WHERE id < 500");
  xexec(db, "UPDATE t SET v = 'changed' WHERE id % 7 = 1");
  char wal[4300];
  snprintf(wal, sizeof wal, "%s-wal", src);
  ASSERT_GT(sql_fsize(wal), 4096 * 10);
  long rows;
  uint32_t want = sql_digest(src, &rows);
  int rc = sql_q(d, "BACKUP DATABASE w TO DISK='w.bak'", &out);
  if (rc != 0) TASK_FAIL_("%s", out);
  free(out);
  /* The writer keeps going after the snapshot: not in the backup. */
  xexec(db, "DELETE FROM t WHERE id < 100");
  rc = sql_q(d, "RESTORE DATABASE wcopy FROM DISK='w.bak'", &out);
  if (rc != 0) TASK_FAIL_("%s", out);
  free(out);
  sqlite3_close(db);
  long rows2;
  ASSERT(sql_integrity_ok(dst));
  ASSERT_UEQ(sql_digest(dst, &rows2), want);
  ASSERT_EQ(rows2, rows);
  return 0;
}
