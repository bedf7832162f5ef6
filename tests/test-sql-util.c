/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-util.c - helpers of the vdisql tests (see test-sql-util.h).
 */
#include "test-sql-util.h"

#include "crc32c.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

pid_t sql_vdisql_spawn(const char *out_path, const char *const *args) {
  spawn_io io = {.out = out_path};
  return spawn_program(build_path("vdisql"), args, &io);
}

int sql_file_has(const char *path, const char *what) {
  char *t = sql_slurp(path);
  int yes = t && strstr(t, what) != NULL;
  free(t);
  return yes;
}

pid_t sql_serve(const char *dir, const char *log, const char *const *extra) {
  const char *args[40];
  int n = 0, own = 0;
  for (int i = 0; extra && extra[i] && n < 37; i++) {
    own |= strcmp(extra[i], "--backup-dir") == 0;
    args[n++] = extra[i];
  }
  if (!own) {
    args[n++] = "--backup-dir";
    args[n++] = test_tmpdir();
  }
  args[n] = NULL;
  return sql_serve_plain(dir, log, args);
}

pid_t sql_serve_plain(const char *dir, const char *log,
                      const char *const *extra) {
  const char *args[40] = {"--serve", "-S", dir};
  int n = 3;
  for (int i = 0; extra && extra[i] && n < 39; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  pid_t p = sql_vdisql_spawn(log, args);
  /* Up to 20 s: a new instance fsyncs its catalog a few times, and on a
   * shared machine whose disk is busy with another test's writeback one
   * fsync can take seconds (a `make check` once saw no line in 5 s, and
   * this is the likely cause). */
  for (int i = 0; i < 4000 && !sql_file_has(log, " ready (pid "); i++)
    sleep_ms(5);
  if (!sql_file_has(log, " ready (pid ")) {
    kill(p, SIGKILL);
    TASK_FAIL_("the instance did not start:\n%s", sql_slurp(log));
  }
  return p;
}

void sql_serve_stop_log(pid_t p, int timeout_ms, const char *log) {
  ASSERT_EQ(kill(p, SIGTERM), 0);
  int rc = wait_helper_timeout(p, timeout_ms);
  if (rc < 0) {
    kill(p, SIGKILL);
    if (log) TASK_FAIL_("the instance did not stop:\n%s", sql_slurp(log));
  }
  ASSERT_EQ(rc, 0);
}

void sql_serve_stop(pid_t p, int timeout_ms) {
  sql_serve_stop_log(p, timeout_ms, NULL);
}

pid_t sql_spawn_held_restore(const char *dir, const char *restore_stmt,
                             const char *mark, int pause_ms, const char *log) {
  char ms[32];
  snprintf(ms, sizeof ms, "%d", pause_ms);
  setenv("VDISQL_TEST_PAUSE_AT", "restore_commit", 1);
  setenv("VDISQL_TEST_PAUSE_MARK", mark, 1);
  setenv("VDISQL_TEST_PAUSE_MS", ms, 1);
  pid_t p = sql_vdisql_spawn(
      log, (const char *const[]){"-b", "-S", dir, "-Q", restore_stmt, NULL});
  unsetenv("VDISQL_TEST_PAUSE_AT");
  unsetenv("VDISQL_TEST_PAUSE_MARK");
  unsetenv("VDISQL_TEST_PAUSE_MS");
  for (int i = 0; i < 2000 && access(mark, F_OK) != 0; i++)
    sleep_ms(5);
  if (access(mark, F_OK) != 0) {
    kill(p, SIGKILL);
    TASK_FAIL_("the restore did not reach its commit:\n%s", sql_slurp(log));
  }
  return p;
}

char *sql_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("");
  size_t cap = 4096, n = 0, k;
  char *b = malloc(cap);
  while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (cap - n - 1 == 0) b = realloc(b, cap *= 2);
  }
  b[n] = 0;
  fclose(f);
  return b;
}

int sql_vdisql(char **out, ...) {
  const char *args[64];
  int n = 0;
  va_list ap;
  va_start(ap, out);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 63)
    args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  char path[4200];
  static int counter;
  snprintf(path, sizeof path, "%s/vdisql-out-%d.txt", test_tmpdir(), ++counter);
  pid_t pid = sql_vdisql_spawn(path, args);
  int rc = wait_helper(pid);
  char *text = sql_slurp(path);
  unlink(path);
  if (out)
    *out = text;
  else
    free(text);
  return rc;
}

int sql_q(const char *dir, const char *stmt, char **out) {
  return sql_vdisql(out, "-b", "-S", dir, "-Q", stmt, (const char *)NULL);
}

static void xexec(sqlite3 *db, const char *sql) {
  char *e = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
    TASK_FAIL_("sqlite: %s: %s", sql, e ? e : "?");
}

void sql_make_db(const char *path, int rows, int page_size, int wal,
                 unsigned seed) {
  sqlite3 *db;
  char sql[256];
  unlink(path);
  if (sqlite3_open(path, &db) != SQLITE_OK) TASK_FAIL_("open %s", path);
  snprintf(sql, sizeof sql, "PRAGMA page_size=%d", page_size);
  xexec(db, sql);
  if (wal) xexec(db, "PRAGMA journal_mode=WAL");
  xexec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)");
  xexec(db, "CREATE INDEX t_v ON t(v)");
  xexec(db, "BEGIN");
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "INSERT INTO t(id, v, b) VALUES(?, ?, ?)", -1, &st,
                     NULL);
  uint32_t x = seed * 2654435761u + 1;
  for (int i = 1; i <= rows; i++) {
    char v[64], b[600];
    x = x * 1103515245u + 12345u;
    snprintf(v, sizeof v, "row-%d-%08x", i, x);
    int blen = (int)(x % 500);
    for (int k = 0; k < blen; k++)
      b[k] = (char)(x >> (k % 24));
    sqlite3_bind_int(st, 1, i);
    sqlite3_bind_text(st, 2, v, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, b, blen, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE) TASK_FAIL_("insert");
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  xexec(db, "COMMIT");
  sqlite3_close(db);
}

uint32_t sql_digest(const char *path, long *rows) {
  sqlite3 *db;
  sqlite3_stmt *st;
  uint32_t crc = 0;
  long n = 0;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    TASK_FAIL_("open %s", path);
  if (sqlite3_prepare_v2(db, "SELECT id, v, b FROM t ORDER BY id", -1, &st,
                         NULL) != SQLITE_OK)
    TASK_FAIL_("select %s: %s", path, sqlite3_errmsg(db));
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    crc = crc32c_update(crc, &id, sizeof id);
    crc = crc32c_update(crc, sqlite3_column_text(st, 1),
                        (size_t)sqlite3_column_bytes(st, 1));
    crc = crc32c_update(crc, sqlite3_column_blob(st, 2),
                        (size_t)sqlite3_column_bytes(st, 2));
    n++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (rows) *rows = n;
  return crc;
}

int sql_integrity_ok(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  int ok = 0;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    return 0;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return ok;
}

int64_t sql_file_crc(const char *path, uint32_t *crc) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  uint8_t buf[65536];
  ssize_t k;
  int64_t total = 0;
  uint32_t c = 0;
  while ((k = read(fd, buf, sizeof buf)) > 0) {
    c = crc32c_update(c, buf, (size_t)k);
    total += k;
  }
  close(fd);
  *crc = c;
  return total;
}

void sql_copy(const char *from, const char *to) {
  int a = open(from, O_RDONLY),
      b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (a < 0 || b < 0) TASK_FAIL_("copy %s -> %s", from, to);
  uint8_t buf[65536];
  ssize_t k;
  while ((k = read(a, buf, sizeof buf)) > 0)
    if (write(b, buf, (size_t)k) != k) TASK_FAIL_("copy write");
  close(a);
  close(b);
}

void sql_flip(const char *path, int64_t off) {
  int fd = open(path, O_RDWR);
  if (fd < 0) TASK_FAIL_("flip open %s", path);
  if (off < 0) off += (int64_t)lseek(fd, 0, SEEK_END);
  uint8_t c;
  if (pread(fd, &c, 1, off) != 1)
    TASK_FAIL_("flip read %s @%lld", path, (long long)off);
  c ^= 0x20;
  if (pwrite(fd, &c, 1, off) != 1) TASK_FAIL_("flip write");
  close(fd);
}

int64_t sql_fsize(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

int sql_has_msg(const char *s, int num) {
  char pat[32];
  snprintf(pat, sizeof pat, "Msg %d,", num);
  return strstr(s, pat) != NULL;
}
