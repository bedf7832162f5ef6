/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-util.c - helpers of the `vdi` end-to-end tests (test-app-*.c):
 * run the real vdi binary as a separate process and capture its output,
 * make SQLite databases with known content and digest them, find the
 * vdisql child of a running vdi through /proc, look at backup directories
 * (declared in test-app-util.h).
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include "crc32c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start vdi with argv (NULL-terminated list); stdout+stderr to out_path
 * (or inherited when NULL); stdin from in_path (or /dev/null); stdout alone
 * to stdout_path when given.  env "K=V" strings are added (NULL ends). */
pid_t app_t_spawn(const char *out_path, const char *stdout_path,
                  const char *in_path, const char *const *env,
                  const char *const *args) {
  return app_t_spawn_prog(build_path("vdi"), out_path, stdout_path, in_path,
                          env, args);
}

/* The same for another program (a path). */
pid_t app_t_spawn_prog(const char *prog, const char *out_path,
                       const char *stdout_path, const char *in_path,
                       const char *const *env, const char *const *args) {
  spawn_io io = {
      .out = out_path, .out_only = stdout_path, .in = in_path, .env = env};
  return spawn_program(prog, args, &io);
}

char *app_t_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("");
  char *buf = malloc(1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* Run vdi to completion; returns its exit status and (malloc'd, caller
 * frees) its combined output in *out. */
int app_t_run(char **out, const char *const *env, const char *const *args) {
  char path[4200];
  static int seq;
  snprintf(path, sizeof path, "%s/vdi-out-%d.txt", test_tmpdir(), ++seq);
  pid_t pid = app_t_spawn(path, NULL, NULL, env, args);
  int rc = wait_helper(pid);
  char *text = app_t_slurp(path);
  if (out)
    *out = text;
  else
    free(text);
  return rc;
}

/* Print vdi's output when a test fails right after a run. */
void app_t_run_ok(const char *what, const char *const *env,
                  const char *const *args) {
  char *out = NULL;
  int rc = app_t_run(&out, env, args);
  if (rc != 0) {
    app_t_show(what, out);
    TASK_FAIL_("%s exited %d", what, rc);
  }
  free(out);
}

void app_t_run_has(const char *want, const char *const *env,
                   const char *const *args) {
  char *out = NULL;
  int rc = app_t_run(&out, env, args);
  if (rc != 0 || !strstr(out, want)) {
    app_t_show(args[0], out);
    TASK_FAIL_("vdi %s exited %d; wanted \"%s\" in its output", args[0], rc,
               want);
  }
  free(out);
}

void app_t_show(const char *what, const char *out) {
  fprintf(stderr, "---- %s ----\n%s---- end ----\n", what, out);
}

void app_t_public_key(const char *keyfile, const char *pubfile, char *hex) {
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("keygen", "--public", keyfile)), 0);
  ASSERT_EQ(sscanf(out, "%64s", hex), 1);
  ASSERT_EQ(strlen(hex), 64);
  free(out);
  if (!pubfile) return;
  FILE *f = fopen(pubfile, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "%s\n", hex);
  fclose(f);
}

void app_t_verify_restore(const char *inst, const char *db, const char *from,
                          const char *key, const char *as) {
  /* The key's two arguments, or an option that changes nothing twice. */
  const char *k = key ? "--key-file" : "--instance", *kv = key ? key : inst;
  app_t_run_ok("verify", NULL,
               ARGS("verify", db, "--instance", inst, "--from", from, k, kv));
  app_t_run_ok("restore", NULL,
               ARGS("restore", db, "--instance", inst, "--from", from, "--as",
                    as, k, kv));
  char p1[4400], p2[4400], d1[64], d2[64];
  snprintf(p1, sizeof p1, "%s/%s.db", inst, db);
  snprintf(p2, sizeof p2, "%s/%s.db", inst, as);
  app_t_digest(p1, d1, sizeof d1);
  app_t_digest(p2, d2, sizeof d2);
  ASSERT(d1[0] != 0);
  ASSERT_STR_EQ(d1, d2);
}

static void exec_sql(sqlite3 *db, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
    TASK_FAIL_("sqlite: %s: %s", sql, err ? err : "?");
}

/* A database "<dir>/<name>.db" with `rows` customers and 3x orders, text
 * and numbers that depend on seed, an index, and the given page size. */
void app_t_make_db(const char *dir, const char *name, int rows, int page_size,
                   int seed) {
  char path[4200], sql[1024];
  snprintf(path, sizeof path, "%s/%s.db", dir, name);
  unlink(path);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) TASK_FAIL_("open %s", path);
  snprintf(sql, sizeof sql, "PRAGMA page_size=%d", page_size);
  exec_sql(db, sql);
  exec_sql(db, "PRAGMA journal_mode=DELETE; BEGIN;"
               "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT,"
               " balance REAL, blob BLOB);"
               "CREATE TABLE orders(id INTEGER PRIMARY KEY, cust INTEGER,"
               " note TEXT, total REAL);"
               "CREATE INDEX orders_cust ON orders(cust);");
  snprintf(sql, sizeof sql,
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
           "WHERE i < %d) INSERT INTO customers SELECT i, 'name ' || (i * %d "
           "%% 100003) || ' ' || printf('%%0*d', i %% 50, i), (i * %d %% 9973) "
           "/ 7.0, zeroblob(i %% 300) FROM n;"
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
           "WHERE i < %d) INSERT INTO orders SELECT i, 1 + i %% %d, "
           "'order ' || i || ' of seed %d ' || substr('abcdefghijklmnop', 1 "
           "+ i %% 16), i * 1.25 FROM n;",
           rows, seed * 31 + 7, seed + 3, rows * 3, rows > 0 ? rows : 1, seed);
  exec_sql(db, sql);
  exec_sql(db, "COMMIT");
  sqlite3_close(db);
}

/* A digest of every table's rows in rowid order (count and CRC-32C of the
 * values' text/blob forms), plus the schema.  "" if it cannot be read. */
void app_t_digest(const char *path, char *out, size_t n) {
  sqlite3 *db;
  out[0] = 0;
  if (access(path, R_OK) != 0) return;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return;
  }
  const char *tables[] = {"sqlite_schema", "customers", "orders"};
  uint32_t crc = 0;
  uint64_t count = 0;
  for (int t = 0; t < 3; t++) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY %s", tables[t],
             t == 0 ? "name" : "rowid");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
      sqlite3_close(db);
      return;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      count++;
      for (int c = 0; c < sqlite3_column_count(st); c++) {
        const void *b = sqlite3_column_blob(st, c);
        int len = sqlite3_column_bytes(st, c);
        crc = crc32c_update(crc, &c, sizeof c);
        if (b) crc = crc32c_update(crc, b, (size_t)len);
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  snprintf(out, n, "%llu:%08x", (unsigned long long)count, (unsigned)crc);
}

/* "ok" from PRAGMA integrity_check? */
int app_t_integrity_ok(const char *path) {
  sqlite3 *db;
  int ok = 0;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
        SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW)
        ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
      sqlite3_finalize(st);
    }
  }
  sqlite3_close(db);
  return ok;
}

int app_t_exists(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return access(path, F_OK) == 0;
}

/* Number of entries in dir (not . and ..); also the count of those whose
 * name starts with prefix, in *with_prefix, when given. */
int app_t_count_files(const char *dir, const char *prefix, int *with_prefix) {
  DIR *d = opendir(dir);
  int n = 0, p = 0;
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    n++;
    if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) == 0) p++;
  }
  closedir(d);
  if (with_prefix) *with_prefix = p;
  return n;
}

void app_t_assert_no_backup(const char *dir, const char *db) {
  char name[256];
  snprintf(name, sizeof name, "%s.manifest.json", db);
  ASSERT(!app_t_exists(dir, name));
  snprintf(name, sizeof name, "%s.stripe", db);
  int stripes = 0;
  app_t_count_files(dir, name, &stripes);
  ASSERT_EQ(stripes, 0);
}

/* The pid of a process named `comm` whose parent is `parent`, or -1. */
pid_t app_t_find_child(pid_t parent, const char *comm) {
  DIR *d = opendir("/proc");
  pid_t found = -1;
  if (!d) return -1;
  struct dirent *e;
  while (found < 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) continue;
    buf[r] = 0;
    /* pid (comm) state ppid ... ; comm may hold spaces: use the last ')' */
    char *open_p = strchr(buf, '('), *close_p = strrchr(buf, ')');
    if (!open_p || !close_p) continue;
    int ppid = 0;
    char state;
    if (sscanf(close_p + 1, " %c %d", &state, &ppid) != 2) continue;
    *close_p = 0;
    if (ppid == parent && strcmp(open_p + 1, comm) == 0 && state != 'Z')
      found = (pid_t)atoi(e->d_name);
  }
  closedir(d);
  return found;
}

/* The bytes of the regular files under dir, subdirectories included (a
 * repository keeps each set in DIR/<db>/<ID>/). */
static long long bytes_under(const char *dir, int depth) {
  DIR *d = opendir(dir);
  long long sum = 0;
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char path[4400];
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0) continue;
    if (S_ISREG(st.st_mode)) sum += st.st_size;
    if (S_ISDIR(st.st_mode) && depth < 3) sum += bytes_under(path, depth + 1);
  }
  closedir(d);
  return sum;
}

/* Poll until the regular files under dir (temporary ones included) hold
 * at least min_bytes; 1 if they did within timeout_ms. */
int app_t_wait_bytes(const char *dir, long long min_bytes, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    /* Temporary stripe files are dot-files: count every regular file. */
    if (bytes_under(dir, 0) >= min_bytes) return 1;
    sleep_ms(5);
  }
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The backup sets of db in the repository (REPO/<db>/<ID>, IDs sorted by
 * time): their count; the directory of set `which` (0 the oldest, -1 the
 * newest) in out when there is one. */
int app_t_set_dir(const char *repo, const char *db, int which, char *out,
                  size_t n) {
  char dir[4200];
  char *ids[256];
  int count = 0;
  snprintf(dir, sizeof dir, "%s/%s", repo, db);
  if (out && n) out[0] = 0;
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && count < 256)
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && strchr(e->d_name, 'Z'))
      ids[count++] = strdup(e->d_name);
  closedir(d);
  qsort(ids, (size_t)count, sizeof ids[0], cmp_str);
  int k = which < 0 ? count + which : which;
  if (out && k >= 0 && k < count) snprintf(out, n, "%s/%s", dir, ids[k]);
  for (int i = 0; i < count; i++)
    free(ids[i]);
  return count;
}

/* Is the vdi + vdisql pair usable here?  The end-to-end tests skip (77)
 * until the library and the engine have landed. */
int app_t_engine_ready(void) {
  return access(build_path("vdisql"), X_OK) == 0 &&
         access(build_path("vdi"), X_OK) == 0;
}

void app_t_require_engine(void) {
  if (!app_t_engine_ready()) {
    fprintf(stderr, "vdisql is not built yet\n");
    exit(TEST_SKIP);
  }
}

/* Flip one byte of a file at offset off. */
void app_t_flip_byte(const char *path, long off) {
  int fd = open(path, O_RDWR);
  if (fd < 0) TASK_FAIL_("open %s: %s", path, strerror(errno));
  unsigned char c;
  if (pread(fd, &c, 1, off) != 1) TASK_FAIL_("pread %s", path);
  c ^= 0x5a;
  if (pwrite(fd, &c, 1, off) != 1) TASK_FAIL_("pwrite %s", path);
  close(fd);
}

long long app_t_file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int t_sink_write(void *arg, const void *buf, size_t n) {
  struct t_sink *s = arg;
  if (s->n + n > s->cap) {
    s->cap = (s->n + n) * 2;
    s->p = realloc(s->p, s->cap);
    ASSERT_NOT_NULL(s->p);
  }
  memcpy(s->p + s->n, buf, n);
  s->n += n;
  return 0;
}

void app_t_add_rows(const char *inst, const char *name, int k) {
  char p[4400];
  sqlite3 *db;
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  for (int i = 0; i < k; i++)
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT INTO t(v, b) VALUES ('more', "
                           "randomblob(500))",
                           NULL, NULL, NULL),
              SQLITE_OK);
  sqlite3_close(db);
}

long app_t_rows(const char *inst, const char *name) {
  char p[4400];
  long n = -1;
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  if (access(p, F_OK) != 0) return -1;
  sql_digest(p, &n);
  return n;
}

/* ------------------------------------------------ a sealed chain */

static int occurrences(const char *s, const char *what) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
    n++;
  return n;
}

/* vdi with args exits `want` with `has` in its output and no error line
 * (NULL: the output is kept in *out for the caller, else freed). */
static void quiet_run(int want, const char *has, char **keep,
                      const char *const *args) {
  char *out = NULL;
  int st = app_t_run(&out, NULL, args);
  if (st != want || (has && !strstr(out, has)) || strstr(out, "error:")) {
    app_t_show(args[0], out);
    TASK_FAIL_("%s: exit %d (expected %d) and \"%s\", no error", args[0], st,
               want, has ? has : "");
  }
  if (keep)
    *keep = out;
  else
    free(out);
}

/* `vdi restore app --as AS OPT [VAL]` from repo with key file keyf: AS
 * holds n rows whose digest is `want`. */
static void restored_rows(const char *inst, const char *repo, const char *keyf,
                          const char *as, const char *opt, const char *val,
                          uint32_t want, long n) {
  app_t_run_ok(opt, NULL,
               ARGS("restore", "app", "--instance", inst, "--from", repo,
                    "--as", as, "--key-file", keyf, "-q", opt, val));
  char p[4400];
  long got = 0;
  snprintf(p, sizeof p, "%s/%s.db", inst, as);
  ASSERT_EQ(sql_digest(p, &got), want);
  ASSERT_EQ(got, n);
}

void app_t_recipient_chain(const char *inst, const char *repo,
                           const char *keyf) {
  char p[4400], logp[4400], pubf[4400], pub[65];
  snprintf(p, sizeof p, "%s/app.db", inst);
  sql_make_db(p, 200, 4096, 1, 7);
  snprintf(logp, sizeof logp, "%s/instance-chain.log", test_tmpdir());
  snprintf(pubf, sizeof pubf, "%s/chain-key.pub", test_tmpdir());
  app_t_public_key(keyf, pubf, pub);
  pid_t srv = sql_serve(inst, logp, NULL);
  ASSERT_EQ(sql_q(inst, "ALTER DATABASE app SET RECOVERY FULL", NULL), 0);
  /* full, log, differential, full, log: each one's rows digested. */
  static const char *const kind[5] = {NULL, "--log", "--differential", NULL,
                                      "--log"};
  uint32_t at[5];
  long rows[5];
  for (int k = 0; k < 5; k++) {
    if (kind[k]) app_t_add_rows(inst, "app", 20);
    if (kind[k])
      app_t_run_ok(kind[k], NULL,
                   ARGS("backup", "app", "--instance", inst, "--to", repo,
                        "--encrypt", "--recipient", pubf, "-q", kind[k]));
    else
      app_t_run_ok("full", NULL,
                   ARGS("backup", "app", "--instance", inst, "--to", repo,
                        "--encrypt", "--recipient", pubf, "-q"));
    at[k] = sql_digest(p, &rows[k]);
  }
  ASSERT_EQ(rows[4], 260);

  /* list: without the key, no error (a set per line, as far as the
   * manifests tell); with it, each chain under its full set. */
  quiet_run(0, "to public key", NULL, ARGS("list", "--from", repo));
  char *out = NULL, diff[64] = "";
  quiet_run(0, "+ differential 000002", &out,
            ARGS("list", "--from", repo, "--key-file", keyf));
  const char *d = strstr(out, "+ differential 000002  ");
  if (!strstr(out, "+ log 000001") || occurrences(out, "+ log") != 2 || !d ||
      sscanf(d + strlen("+ differential 000002  "), "%63s", diff) != 1) {
    app_t_show("list --key-file", out);
    TASK_FAIL_("the chains are not shown");
  }
  free(out);

  /* --latest: the newest full set and its log, row for row; --set of the
   * differential: its full set, then it. */
  restored_rows(inst, repo, keyf, "latest", "--latest", NULL, at[4], rows[4]);
  restored_rows(inst, repo, keyf, "atdiff", "--set", diff, at[2], rows[2]);
  /* Without the key: the key is what is missing, not a damaged set. */
  int st = app_t_run(&out, NULL,
                     ARGS("restore", "app", "--instance", inst, "--from", repo,
                          "--as", "nokey", "--latest"));
  if (st != 1 || !strstr(out, "--key-file") || strstr(out, "readable")) {
    app_t_show("restore --latest without the key", out);
    TASK_FAIL_("exit %d", st);
  }
  free(out);
  ASSERT(!app_t_exists(inst, "nokey.db"));

  /* expire --keep-full 1: without the key, the first chain's log and
   * differential cannot be placed and stay (said once); with it, the
   * first chain goes whole. */
  char other[4400];
  snprintf(other, sizeof other, "%s/chain-other-key", test_tmpdir());
  app_t_run_ok("keygen", NULL, ARGS("keygen", other));
  for (int k = 0; k < 2; k++) {
    /* No key file, then another one. */
    quiet_run(0, "1 of 5 sets would be deleted", &out,
              k ? ARGS("expire", "--from", repo, "--keep-full", "1",
                       "--key-file", other)
                : ARGS("expire", "--from", repo, "--keep-full", "1"));
    if (!strstr(out, "2 encrypted differential or log sets of 'app' kept") ||
        occurrences(out, "(--key-file") != 1) {
      app_t_show("expire without the key", out);
      TASK_FAIL_("what was kept for want of the key is not said once");
    }
    free(out);
  }
  quiet_run(0, "3 of 5 sets deleted", NULL,
            ARGS("expire", "--from", repo, "--keep-full", "1", "--key-file",
                 keyf, "--delete"));
  quiet_run(0, "+ log 000001", &out,
            ARGS("list", "--from", repo, "--key-file", keyf));
  if (occurrences(out, "-full  full") != 1 || occurrences(out, "+ ") != 1) {
    app_t_show("list after expire", out);
    TASK_FAIL_("expire did not leave the second chain alone");
  }
  free(out);
  restored_rows(inst, repo, keyf, "after", "--latest", NULL, at[4], rows[4]);
  sql_serve_stop(srv, 10000);
}
