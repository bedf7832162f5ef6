/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-recovery.c - the full recovery model across real processes: an
 * instance (`vdisql --serve`), a writer process committing numbered
 * transactions (with its own wal_checkpoint(TRUNCATE) calls, a small
 * autocheckpoint and connection restarts), log, differential and full
 * backups on a schedule, the instance SIGKILLed and restarted in the
 * middle; then restores to many instants, each of which must hold exactly
 * the transactions committed by then.  And SQL Server's refusals of a
 * restore sequence that does not fit, each leaving everything unchanged.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"
#include "timefmt.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char inst[4200], logp[4300];

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t start_instance(void) {
  static int runs;
  /* A new log per run: "ready" must be this run's. */
  snprintf(logp, sizeof logp, "%s/instance-%d.log", test_tmpdir(), runs++);
  return sql_serve(inst, logp, NULL);
}

static void stop_instance(pid_t p) {
  sql_serve_stop(p, 10000);
}

static void exec_sql(sqlite3 *db, const char *sql) {
  char *e = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK)
    TASK_FAIL_("%s: %s", sql, e ? e : "?");
}

static void db_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s.db", inst, name);
}

static void make_app(void) {
  char p[4400];
  sqlite3 *db;
  db_path(p, sizeof p, "app");
  ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
  exec_sql(db, "PRAGMA journal_mode=WAL;"
               "CREATE TABLE j(n INTEGER PRIMARY KEY, ms INTEGER);"
               "CREATE TABLE x(id INTEGER PRIMARY KEY, b BLOB);"
               "INSERT INTO x(b) VALUES (randomblob(3000));");
  sqlite3_close(db);
}

/* A fresh instance directory holding the application's database. */
static void new_instance_dir(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  make_app();
}

/* What a database holds: rows of j, their highest number, and x. */
typedef struct sig {
  long rows, max_n;
  long xrows;
  double xsum;
} sig;

static int db_sig(const char *path, sig *s) {
  sqlite3 *db;
  sqlite3_stmt *st;
  memset(s, 0, sizeof *s);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    return -1;
  int ok = sqlite3_prepare_v2(
               db,
               "SELECT (SELECT count(*) FROM j), (SELECT coalesce(max(n),0) "
               "FROM j), (SELECT count(*) FROM x), (SELECT total(length(b) "
               "* id + unicode(b)) FROM x)",
               -1, &st, NULL) == SQLITE_OK &&
           sqlite3_step(st) == SQLITE_ROW;
  if (ok) {
    s->rows = sqlite3_column_int64(st, 0);
    s->max_n = sqlite3_column_int64(st, 1);
    s->xrows = sqlite3_column_int64(st, 2);
    s->xsum = sqlite3_column_double(st, 3);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return ok ? 0 : -1;
}

/* The writer: commit n = 1, 2, ... each with its time before COMMIT in
 * the row, and "n after_ms" in argv[2] after COMMIT returned; pages of x
 * change with it.  Every few commits a wal_checkpoint(TRUNCATE) or a new
 * connection.  Until argv[3] exists. */
HELPER_IMPL(recovery_writer) {
  const char *path = argv[1], *times = argv[2], *stop = argv[3];
  FILE *tf = fopen(times, "w");
  sqlite3 *db = NULL;
  srand((unsigned)getpid());
  for (long n = 1; access(stop, F_OK) != 0; n++) {
    if (!db) {
      if (sqlite3_open(path, &db) != SQLITE_OK) return 1;
      sqlite3_busy_timeout(db, 2000);
      sqlite3_exec(db, "PRAGMA wal_autocheckpoint=20", NULL, NULL, NULL);
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE; INSERT INTO j(n, ms) VALUES (%ld, %lld);"
             "INSERT INTO x(b) VALUES (randomblob(%d));"
             "UPDATE x SET b = randomblob(length(b)) WHERE id %% 5 = %ld;"
             "%s COMMIT;",
             n, (long long)wall_ms(), 100 + rand() % 6000, n % 5,
             n % 9 == 0 ? "DELETE FROM x WHERE id % 11 = 3;" : "");
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
      /* Busy: nothing of n is committed; try the same n again. */
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      n--;
      sleep_ms(5);
      continue;
    }
    fprintf(tf, "%ld %lld\n", n, (long long)wall_ms());
    fflush(tf);
    int r = rand() % 12;
    if (r == 0) /* may be refused while the capture holds the WAL */
      sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    if (r == 1) {
      sqlite3_close(db);
      db = NULL;
    }
    sleep_ms(35 + rand() % 20);
  }
  sqlite3_close(db);
  fclose(tf);
  return 0;
}

enum { B_FULL, B_DIFF, B_LOG };
typedef struct bk {
  int kind;
  char file[64];
  int64_t t0, t1; /* wall ms before and after the statement */
} bk;

#define MAXBK 64
static bk bks[MAXBK];
static int nbk;

static int backup(int kind, const char *extra) {
  static int seq;
  bk *b = &bks[nbk];
  char sql[512];
  char *out = NULL;
  b->kind = kind;
  snprintf(b->file, sizeof b->file, "%s%d.bak",
           kind == B_FULL   ? "full"
           : kind == B_DIFF ? "diff"
                            : "log",
           seq++);
  snprintf(sql, sizeof sql, "BACKUP %s app TO DISK='%s' WITH CHECKSUM%s%s",
           kind == B_LOG ? "LOG" : "DATABASE", b->file,
           kind == B_DIFF ? ", DIFFERENTIAL" : "", extra ? extra : "");
  b->t0 = wall_ms();
  int rc = sql_q(inst, sql, &out);
  b->t1 = wall_ms();
  if (rc != 0 && !(kind == B_LOG && sql_has_msg(out, 4214)))
    TASK_FAIL_("%s: exit %d\n%s", sql, rc, out);
  free(out);
  if (rc != 0) return 4214;
  if (!extra) nbk++; /* COPY_ONLY backups are not part of the chain */
  return 0;
}

/* When each commit returned, from the writer's file. */
static int64_t after_ms[4096];
static long ncommits;

static void read_times(const char *path) {
  FILE *f = fopen(path, "r");
  long n;
  long long ms;
  ASSERT_NOT_NULL(f);
  while (fscanf(f, "%ld %lld", &n, &ms) == 2 && n < 4096) {
    after_ms[n] = ms;
    ncommits = n;
  }
  fclose(f);
}

static int q_ok(const char *sql) {
  char *out = NULL;
  int rc = sql_q(inst, sql, &out);
  if (rc != 0) TASK_FAIL_("%s: exit %d\n%s", sql, rc, out);
  if (getenv("VDI_TEST_VERBOSE")) printf("%s\n%s", sql, out);
  free(out);
  return 0;
}

/* Restore "r" to the instant T (0: to the end of the last log backup)
 * from the backups taken, choosing the chain as a backup product would:
 * the last full before T, the last differential after it before T, then
 * the logs from there to the first that covers T.  @return 1 without
 * restoring if no log backup of that chain covers T (the chain was
 * broken after it: the instance detected that and started a new one). */
static int restore_to(int64_t T) {
  int full = -1, base = -1, last = -1;
  for (int i = 0; i < nbk; i++)
    if (bks[i].kind == B_FULL && (T == 0 || bks[i].t1 < T)) full = i;
  ASSERT(full >= 0);
  base = full;
  for (int i = full + 1; i < nbk && bks[i].kind != B_FULL; i++)
    if (bks[i].kind == B_DIFF && (T == 0 || bks[i].t1 < T)) base = i;
  int logs[MAXBK], nlogs = 0;
  for (int i = base + 1; i < nbk && bks[i].kind != B_FULL; i++) {
    if (bks[i].kind != B_LOG) continue;
    logs[nlogs++] = i;
    last = i;
    if (T != 0 && bks[i].t0 > T) break;
  }
  ASSERT(last >= 0);
  if (T != 0 && bks[last].t0 <= T) return 1;
  char sql[600], when[64] = "";
  if (T) time_format_ms(T, when, sizeof when);
  snprintf(sql, sizeof sql,
           "RESTORE DATABASE r FROM DISK='%s' WITH NORECOVERY, REPLACE",
           bks[full].file);
  q_ok(sql);
  if (base != full) {
    snprintf(sql, sizeof sql,
             "RESTORE DATABASE r FROM DISK='%s' WITH NORECOVERY",
             bks[base].file);
    q_ok(sql);
  }
  for (int k = 0; k < nlogs; k++) {
    if (!T) {
      snprintf(sql, sizeof sql, "RESTORE LOG r FROM DISK='%s' WITH %s",
               bks[logs[k]].file, k + 1 < nlogs ? "NORECOVERY" : "RECOVERY");
      q_ok(sql);
      continue;
    }
    /* SQL Server's way to a point in time: each log WITH STOPAT (and
     * RECOVERY); one that ends before the point leaves the database
     * restoring (Msg 4322) for the next; the one that reaches it
     * recovers.  (Which log reaches T cannot be told from wall times: a
     * log backup started before T may hold commits after it.) */
    char *out = NULL;
    snprintf(sql, sizeof sql, "RESTORE LOG r FROM DISK='%s' WITH STOPAT = '%s'",
             bks[logs[k]].file, when);
    if (sql_q(inst, sql, &out) != 0) TASK_FAIL_("%s:\n%s", sql, out);
    int more = strstr(out, "left in the Restoring state") != NULL;
    free(out);
    if (!more) return 0;
  }
  if (T) TASK_FAIL_("no log of the chain reached %s", when);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_recovery_nothing_lost, 120) {
  char app[4400], r[4400], times[4400], stop[4400];
  new_instance_dir();
  db_path(app, sizeof app, "app");
  db_path(r, sizeof r, "r");
  snprintf(times, sizeof times, "%s/times", test_tmpdir());
  snprintf(stop, sizeof stop, "%s/stop", test_tmpdir());
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  pid_t w = spawn_helper("recovery_writer", app, times, stop, NULL);
  sleep_ms(200);
  ASSERT_EQ(backup(B_FULL, NULL), 0);
  int killed = 0, breaks = 0;
  for (int i = 1; i <= 16; i++) {
    sleep_ms(150 + (int)(now_us() % 150));
    if (i == 4) {
      ASSERT_EQ(backup(B_LOG, ", COPY_ONLY"), 0);
    } else if (i == 5 || i == 13) {
      ASSERT_EQ(backup(B_DIFF, NULL), 0);
    } else if (i == 8) {
      /* The instance dies at a moment of the writer's choosing. */
      ASSERT_EQ(kill(srv, SIGKILL), 0);
      wait_helper(srv);
      killed = 1;
      sleep_ms(100 + (int)(now_us() % 300));
      srv = start_instance();
    } else if (i == 11) {
      ASSERT_EQ(backup(B_FULL, NULL), 0);
    } else if (backup(B_LOG, NULL) == 4214) {
      /* Only after the kill may the chain be broken (the writer reset
       * the WAL while nobody held it); a full backup starts a new one. */
      ASSERT(killed);
      breaks++;
      killed = 0;
      ASSERT_EQ(backup(B_FULL, NULL), 0);
    }
  }
  int fd = open(stop, O_CREAT | O_WRONLY, 0600);
  close(fd);
  ASSERT_EQ(wait_helper(w), 0);
  ASSERT_EQ(backup(B_LOG, NULL), 0); /* the tail */
  read_times(times);
  printf("%ld commits, %d backups, %d broken chain(s) detected\n", ncommits,
         nbk, breaks);
  ASSERT_GT(ncommits, 25);

  /* Everything up to the last log backup. */
  sig want, got;
  restore_to(0);
  ASSERT_EQ(db_sig(app, &want), 0);
  ASSERT_EQ(db_sig(r, &got), 0);
  ASSERT(sql_integrity_ok(r));
  ASSERT_EQ(got.rows, want.rows);
  ASSERT_EQ(got.max_n, ncommits);
  ASSERT_EQ(got.xrows, want.xrows);
  ASSERT(got.xsum == want.xsum);

  /* Instants between commits: from the first full backup on, where the
   * gap leaves room for the capture's poll. */
  int tried = 0;
  for (long n = 2; n < ncommits && tried < 10; n += 1 + ncommits / 12) {
    int64_t T = after_ms[n] + 15;
    if (T < bks[0].t1 + 20 || after_ms[n + 1] < T + 25) continue;
    if (restore_to(T) == 1) continue;
    if (db_sig(r, &got) != 0) {
      char l0[4400];
      snprintf(l0, sizeof l0, "%s/instance-0.log", test_tmpdir());
      TASK_FAIL_("STOPAT after commit %ld: not recovered; instance log:\n%s", n,
                 sql_slurp(l0));
    }
    ASSERT(sql_integrity_ok(r));
    if (got.rows != n || got.max_n != n)
      TASK_FAIL_("STOPAT after commit %ld: %ld rows, highest %ld", n, got.rows,
                 got.max_n);
    tried++;
  }
  ASSERT_GT(tried, 3);
  stop_instance(srv);
  return 0;
}

static void insert_rows(const char *name, int from, int to) {
  char p[4400], sql[200];
  sqlite3 *db;
  db_path(p, sizeof p, name);
  ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  for (int n = from; n <= to; n++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO j(n, ms) VALUES (%d, 0);"
             "INSERT INTO x(b) VALUES (randomblob(1500));",
             n);
    exec_sql(db, sql);
  }
  sqlite3_close(db);
}

static long rows_of(const char *name) {
  char p[4400];
  sig s;
  db_path(p, sizeof p, name);
  if (db_sig(p, &s) != 0) return -1;
  return s.rows;
}

/* Database @p name holds @p rows rows and passes integrity_check. */
static void assert_restored(const char *name, long rows) {
  char p[4400];
  ASSERT_EQ(rows_of(name), rows);
  db_path(p, sizeof p, name);
  ASSERT(sql_integrity_ok(p));
}

/* The statement fails with Msg @p msg. */
static void q_msg(const char *sql, int msg) {
  char *out = NULL;
  int rc = sql_q(inst, sql, &out);
  if (rc != 1 || !sql_has_msg(out, msg))
    TASK_FAIL_("%s: exit %d, wanted Msg %d:\n%s", sql, rc, msg, out);
  free(out);
}

static void q_has(const char *sql, const char *text) {
  char *out = NULL;
  int rc = sql_q(inst, sql, &out);
  if (rc != 0 || !strstr(out, text))
    TASK_FAIL_("%s: exit %d, wanted '%s':\n%s", sql, rc, text, out);
  free(out);
}

TEST_IMPL_TIMEOUT(sql_recovery_refusals_change_nothing, 60) {
  char r[4400], other[4400];
  new_instance_dir();
  db_path(r, sizeof r, "r");
  db_path(other, sizeof other, "other");
  sql_make_db(other, 50, 4096, 1, 3);
  /* Without the instance there is no log to back up: it says so. */
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f0.bak'");
  q_msg("BACKUP LOG app TO DISK='nolog.bak'", 4214);
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE other SET RECOVERY FULL");
  q_ok("BACKUP DATABASE other TO DISK='o1.bak'");
  q_ok("BACKUP LOG other TO DISK='ol1.bak'");
  /* The first log backup needs a full one taken by the instance. */
  q_msg("BACKUP LOG app TO DISK='nolog.bak'", 4214);
  q_ok("BACKUP DATABASE app TO DISK='f1.bak' WITH CHECKSUM");
  insert_rows("app", 1, 30);
  q_ok("BACKUP LOG app TO DISK='l1.bak' WITH CHECKSUM");
  insert_rows("app", 31, 60);
  q_ok("BACKUP DATABASE app TO DISK='d1.bak' WITH DIFFERENTIAL, CHECKSUM");
  insert_rows("app", 61, 90);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  insert_rows("app", 91, 120);
  q_ok("BACKUP LOG app TO DISK='l3.bak'");
  q_has("RESTORE HEADERONLY FROM DISK='d1.bak'", "Database Differential");
  q_has("RESTORE HEADERONLY FROM DISK='l1.bak'", "Transaction Log");
  q_has("SELECT type FROM msdb.dbo.backupset", "I");

  q_msg("RESTORE LOG r FROM DISK='l1.bak'", 3117); /* not RESTORING */
  q_msg("RESTORE DATABASE r WITH RECOVERY", 3117);
  q_ok("RESTORE DATABASE r FROM DISK='f1.bak' WITH NORECOVERY");
  /* RESTORING: not a database for applications, nor for BACKUP. */
  ASSERT_EQ(rows_of("r"), -1);
  q_msg("BACKUP DATABASE r TO DISK='x.bak'", 927);
  q_msg("RESTORE LOG r FROM DISK='l2.bak' WITH NORECOVERY", 4305); /* gap */
  q_msg("RESTORE LOG r FROM DISK='ol1.bak' WITH NORECOVERY", 3154);
  q_msg("RESTORE DATABASE r FROM DISK='l1.bak' WITH NORECOVERY", 3135);
  /* A damaged log backup is refused before anything is applied. */
  char l1[4400], bad[4400];
  snprintf(l1, sizeof l1, "%s/l1.bak", inst);
  snprintf(bad, sizeof bad, "%s/bad.bak", inst);
  sql_copy(l1, bad);
  sql_flip(bad, sql_fsize(bad) / 2);
  q_msg("RESTORE LOG r FROM DISK='bad.bak' WITH NORECOVERY", 3189);
  q_ok("RESTORE LOG r FROM DISK='l1.bak' WITH NORECOVERY");
  q_msg("RESTORE LOG r FROM DISK='l1.bak' WITH NORECOVERY", 4326);
  q_msg("RESTORE DATABASE r FROM DISK='d1.bak' WITH NORECOVERY", 3136);
  q_msg("RESTORE LOG r FROM DISK='l2.bak' WITH STOPAT = '2001-01-01T00:00:00'",
        4338);
  /* A stop point after the last log: the database stays RESTORING. */
  q_has("RESTORE LOG r FROM DISK='l2.bak' WITH STOPAT = '2099-01-01T00:00:00'",
        "left in the Restoring state");
  ASSERT_EQ(rows_of("r"), -1);
  q_ok("RESTORE LOG r FROM DISK='l3.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE r WITH RECOVERY");
  ASSERT_EQ(rows_of("r"), 120);
  ASSERT(sql_integrity_ok(r));

  /* Full + differential + logs. */
  q_ok("RESTORE DATABASE s FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE s FROM DISK='d1.bak' WITH NORECOVERY");
  q_msg("RESTORE LOG s FROM DISK='l1.bak' WITH NORECOVERY", 4326);
  q_ok("RESTORE LOG s FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG s FROM DISK='l3.bak'");
  ASSERT_EQ(rows_of("s"), 120);

  /* SQL Server's rules for a full restore over a live database. */
  insert_rows("app", 121, 130); /* the tail, not backed up */
  q_msg("RESTORE DATABASE app FROM DISK='f1.bak'", 3159);
  q_msg("RESTORE DATABASE app FROM DISK='o1.bak'", 3154);
  ASSERT_EQ(rows_of("app"), 130);
  q_ok("BACKUP LOG app TO DISK='l4.bak'");
  /* The same database, its tail backed up: no REPLACE needed. */
  q_ok("RESTORE DATABASE app FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG app FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG app FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG app FROM DISK='l3.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG app FROM DISK='l4.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("app"), 130);
  /* A restored database starts its chain again at a full backup. */
  q_msg("BACKUP LOG app TO DISK='l5.bak'", 4214);
  stop_instance(srv);
  return 0;
}

/* vdi plans the chain: full, differential, logs, through virtual devices
 * and the instance; --to-time stops between two batches of commits. */
TEST_IMPL_TIMEOUT(sql_recovery_vdi_chain, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  char repo[4400], *out = NULL;
  snprintf(repo, sizeof repo, "%s/bk", test_tmpdir());
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  /* A log backup needs the full backup it continues, in the same place. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("backup", "app", "--instance", inst, "--to", repo,
                           "--log", "--quiet")),
            1);
  ASSERT(strstr(out, "no full backup of 'app'"));
  free(out);
  app_t_run_ok("full", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", repo,
                    "--stripes", "2", "--quiet"));
  insert_rows("app", 1, 40);
  app_t_run_ok("log 1", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", repo, "--log",
                    "--stripes", "3", "--quiet"));
  insert_rows("app", 41, 80);
  app_t_run_ok("diff", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", repo,
                    "--differential", "--compress", "--quiet"));
  insert_rows("app", 81, 120);
  sleep_ms(30);
  char when[40];
  time_format_ms(wall_ms(), when, sizeof when);
  sleep_ms(30);
  insert_rows("app", 121, 160);
  app_t_run_ok("log 2", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", repo, "--log",
                    "--quiet"));
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", repo)), 0);
  ASSERT(strstr(out, "+ log 000001") && strstr(out, "+ differential 000002") &&
         strstr(out, "+ log 000003"));
  free(out);

  app_t_run_ok("latest", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", repo,
                    "--as", "all", "--latest", "--quiet"));
  ASSERT_EQ(rows_of("all"), 160);
  app_t_run_ok("to time", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", repo,
                    "--as", "mid", "--to-time", when, "--quiet"));
  ASSERT_EQ(rows_of("mid"), 120);
  char p[4400];
  db_path(p, sizeof p, "mid");
  ASSERT(sql_integrity_ok(p));
  /* An instant the chain does not reach: nothing is restored. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "app", "--instance", inst, "--from", repo,
                           "--as", "late", "--to-time", "2099-01-01T00:00:00",
                           "--quiet")),
            1);
  ASSERT(strstr(out, "reaches 2099-01-01T00:00:00"));
  free(out);
  ASSERT_EQ(rows_of("late"), -1);
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "app", "--from", repo, "--to-time",
                           "yesterday")),
            2);
  free(out);
  /* A new full backup starts a new chain; the old one stays in the
   * repository (history) until vdi expire, and still restores. */
  app_t_run_ok(
      "full 2", NULL,
      ARGS("backup", "app", "--instance", inst, "--to", repo, "--quiet"));
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", repo)), 0);
  ASSERT(strstr(out, "+ log 000003"));
  free(out);
  app_t_run_ok("to time, old chain", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", repo,
                    "--as", "mid2", "--to-time", when, "--quiet"));
  ASSERT_EQ(rows_of("mid2"), 120);
  stop_instance(srv);
  return 0;
}

/* A log backup taken while a full backup runs bridges the old chain to
 * the new full backup: vdi keeps it, and the chain restores. */
TEST_IMPL_TIMEOUT(sql_recovery_log_during_full, 60) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  char repo[4400], vlog[4400];
  snprintf(repo, sizeof repo, "%s/bk", test_tmpdir());
  snprintf(vlog, sizeof vlog, "%s/vdi.log", test_tmpdir());
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  insert_rows("app", 1, 3000); /* a few MiB: the slow full takes a while */
  app_t_run_ok(
      "full 1", NULL,
      ARGS("backup", "app", "--instance", inst, "--to", repo, "--quiet"));
  pid_t full = app_t_spawn(
      vlog, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=150"),
      ARGS("backup", "app", "--instance", inst, "--to", repo, "--quiet"));
  sleep_ms(300);
  insert_rows("app", 3001, 3040);
  app_t_run_ok("log during full", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", repo, "--log",
                    "--quiet"));
  ASSERT_EQ(wait_helper(full), 0);
  insert_rows("app", 3041, 3080);
  app_t_run_ok("log after", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", repo, "--log",
                    "--quiet"));
  app_t_run_ok("latest", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", repo,
                    "--as", "r", "--latest", "--quiet"));
  ASSERT_EQ(rows_of("r"), 3080);
  stop_instance(srv);
  return 0;
}

/* An instance whose statements pause at @p point (testhook.h) for
 * @p pause_ms, creating @p mark there. */
static pid_t start_paused_instance(const char *point, const char *mark,
                                   int pause_ms) {
  char ms[32];
  snprintf(ms, sizeof ms, "%d", pause_ms);
  setenv("VDISQL_TEST_PAUSE_AT", point, 1);
  setenv("VDISQL_TEST_PAUSE_MARK", mark, 1);
  setenv("VDISQL_TEST_PAUSE_MS", ms, 1);
  pid_t p = start_instance();
  unsetenv("VDISQL_TEST_PAUSE_AT");
  unsetenv("VDISQL_TEST_PAUSE_MARK");
  unsetenv("VDISQL_TEST_PAUSE_MS");
  return p;
}

/* Run @p sql (output to @p log) through the instance @p srv, which
 * pauses at @p point (start_paused_instance, the mark mark-POINT in the
 * test's directory): return its client once the statement is there. */
static pid_t spawn_held(pid_t srv, const char *point, const char *sql,
                        const char *log) {
  char mark[4400];
  snprintf(mark, sizeof mark, "%s/mark-%s", test_tmpdir(), point);
  pid_t q = sql_vdisql_spawn(
      log, (const char *const[]){"-b", "-S", inst, "-Q", sql, NULL});
  for (int i = 0; i < 3000 && access(mark, F_OK) != 0; i++)
    sleep_ms(5);
  if (access(mark, F_OK) != 0) {
    kill(q, SIGKILL);
    kill(srv, SIGKILL);
    TASK_FAIL_("%s never reached %s:\n%s", sql, point, sql_slurp(log));
  }
  return q;
}

/* Run @p sql through the instance @p srv, which pauses at @p point: kill
 * the instance there (SIGKILL) and reap the statement's client. */
static void kill_instance_at(pid_t srv, const char *point, const char *sql) {
  char mark[4400], out[4400];
  snprintf(mark, sizeof mark, "%s/mark-%s", test_tmpdir(), point);
  snprintf(out, sizeof out, "%s/killed-%s.log", test_tmpdir(), point);
  pid_t q = spawn_held(srv, point, sql, out);
  ASSERT_EQ(kill(srv, SIGKILL), 0);
  wait_helper_timeout(srv, 5000);
  /* The client learns its statement died with the instance. */
  ASSERT_NE(wait_helper_timeout(q, 5000), 0);
  unlink(mark);
}

static int file_exists(const char *name) {
  char p[4400];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", inst, name);
  return stat(p, &st) == 0;
}

/* The instance killed in the middle of each new operation (issue 6's
 * kills, extended): a killed BACKUP LOG or differential leaves no file
 * that looks complete and does not move the chain; one killed after its
 * media were complete leaves a good backup that overlaps the next; a
 * RESTORE LOG or differential killed while applying leaves the database
 * RESTORING with Msg 3456 until the sequence is started again, and the new
 * sequence restores every row. */
TEST_IMPL_TIMEOUT(sql_recovery_kills_lose_nothing, 120) {
  char mark[4400];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak' WITH CHECKSUM");
  insert_rows("app", 1, 50);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  insert_rows("app", 51, 100);
  stop_instance(srv);

  /* BACKUP LOG killed with its stream written but its file not closed. */
  snprintf(mark, sizeof mark, "%s/mark-backup_before_close", test_tmpdir());
  srv = start_paused_instance("backup_before_close", mark, 20000);
  kill_instance_at(srv, "backup_before_close",
                   "BACKUP LOG app TO DISK='lk.bak' WITH CHECKSUM");
  ASSERT(!file_exists("lk.bak"));
  /* The same for a differential. */
  srv = start_paused_instance("backup_before_close", mark, 20000);
  kill_instance_at(srv, "backup_before_close",
                   "BACKUP DATABASE app TO DISK='dk.bak' WITH DIFFERENTIAL");
  ASSERT(!file_exists("dk.bak"));

  /* BACKUP LOG killed after its file is complete, before the chain
   * moved: the file is a good backup; the next log overlaps it. */
  snprintf(mark, sizeof mark, "%s/mark-backup_before_state", test_tmpdir());
  srv = start_paused_instance("backup_before_state", mark, 20000);
  kill_instance_at(srv, "backup_before_state",
                   "BACKUP LOG app TO DISK='l2k.bak' WITH CHECKSUM");
  ASSERT(file_exists("l2k.bak"));
  srv = start_instance();
  q_ok("RESTORE VERIFYONLY FROM DISK='l2k.bak'");
  /* Nothing was recorded for the killed backups. */
  q_has("SELECT count(*) AS n FROM msdb.dbo.backupset", "n\n2\n");
  insert_rows("app", 101, 150);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  q_ok("BACKUP DATABASE app TO DISK='d1.bak' WITH DIFFERENTIAL");
  insert_rows("app", 151, 200);
  q_ok("BACKUP LOG app TO DISK='l3.bak'");

  /* The chain without the killed log, and with it (it overlaps l2). */
  q_ok("RESTORE DATABASE a FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG a FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG a FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG a FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("a"), 200);
  q_ok("RESTORE DATABASE b FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG b FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG b FROM DISK='l2k.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG b FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG b FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("b"), 200);
  stop_instance(srv);

  /* RESTORE LOG killed after applying its first transaction. */
  srv = start_instance();
  q_ok("RESTORE DATABASE c FROM DISK='f1.bak' WITH NORECOVERY");
  stop_instance(srv);
  snprintf(mark, sizeof mark, "%s/mark-log_apply", test_tmpdir());
  srv = start_paused_instance("log_apply", mark, 20000);
  kill_instance_at(srv, "log_apply",
                   "RESTORE LOG c FROM DISK='l1.bak' WITH NORECOVERY");
  srv = start_instance();
  ASSERT_EQ(rows_of("c"), -1); /* RESTORING: not a database */
  q_msg("RESTORE LOG c FROM DISK='l1.bak' WITH NORECOVERY", 3456);
  q_msg("RESTORE DATABASE c WITH RECOVERY", 3456);
  ASSERT_EQ(rows_of("c"), -1);
  /* A new sequence over it (same database: no REPLACE needed). */
  q_ok("RESTORE DATABASE c FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("c"), 200);
  char p[4400];
  db_path(p, sizeof p, "c");
  ASSERT(sql_integrity_ok(p));

  /* A differential killed while it is written into the staged file. */
  q_ok("RESTORE DATABASE d FROM DISK='f1.bak' WITH NORECOVERY");
  stop_instance(srv);
  snprintf(mark, sizeof mark, "%s/mark-diff_apply", test_tmpdir());
  srv = start_paused_instance("diff_apply", mark, 20000);
  kill_instance_at(srv, "diff_apply",
                   "RESTORE DATABASE d FROM DISK='d1.bak' WITH NORECOVERY");
  srv = start_instance();
  ASSERT_EQ(rows_of("d"), -1);
  q_msg("RESTORE LOG d FROM DISK='l3.bak' WITH NORECOVERY", 3456);
  q_ok("RESTORE DATABASE d FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE d FROM DISK='d1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG d FROM DISK='l3.bak' WITH RECOVERY");
  assert_restored("d", 200);
  /* The live database went on untouched through all of it. */
  ASSERT_EQ(rows_of("app"), 200);
  stop_instance(srv);
  return 0;
}

/* A differential base outlives a change of recovery model, as in SQL
 * Server: the differential after ALTER DATABASE ... SET RECOVERY must
 * still hold every page changed since its base, those changed before the
 * ALTER included.  Both directions. */
TEST_IMPL_TIMEOUT(sql_recovery_model_switch_keeps_diff_base, 60) {
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 30);
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  insert_rows("app", 31, 60);
  q_ok("BACKUP DATABASE app TO DISK='d1.bak' WITH DIFFERENTIAL");
  q_ok("RESTORE DATABASE r FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE r FROM DISK='d1.bak' WITH RECOVERY");
  assert_restored("r", 60);

  q_ok("BACKUP DATABASE app TO DISK='f2.bak'");
  insert_rows("app", 61, 90);
  q_ok("ALTER DATABASE app SET RECOVERY SIMPLE");
  insert_rows("app", 91, 120);
  q_ok("BACKUP DATABASE app TO DISK='d2.bak' WITH DIFFERENTIAL");
  q_ok("RESTORE DATABASE s FROM DISK='f2.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE s FROM DISK='d2.bak' WITH RECOVERY");
  assert_restored("s", 120);
  stop_instance(srv);
  return 0;
}

/* A log backup that ends while a full backup writes its new state: SQL
 * Server lets both run, and neither may undo what the other recorded.
 * The full backup waits (backup_rebased) between reading the state and
 * writing it; the log backup moves the chain on and drops the archive
 * below it meanwhile.  The chain must go on from the log backup, not from
 * where the full backup read it (log no longer in the archive: every
 * later BACKUP LOG Msg 4214, a full backup does not mend it). */
TEST_IMPL_TIMEOUT(sql_recovery_log_during_full_state, 60) {
  char mark[4400], flog[4400];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 30);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  insert_rows("app", 31, 60);
  stop_instance(srv);

  snprintf(mark, sizeof mark, "%s/mark-backup_rebased", test_tmpdir());
  snprintf(flog, sizeof flog, "%s/full2.log", test_tmpdir());
  srv = start_paused_instance("backup_rebased", mark, 1500);
  pid_t q = spawn_held(srv, "backup_rebased",
                       "BACKUP DATABASE app TO DISK='f2.bak'", flog);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  if (wait_helper(q) != 0) TASK_FAIL_("full backup:\n%s", sql_slurp(flog));
  insert_rows("app", 61, 90);
  q_ok("BACKUP LOG app TO DISK='l3.bak'");

  q_ok("RESTORE DATABASE a FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG a FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG a FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG a FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("a"), 90);
  q_ok("RESTORE DATABASE b FROM DISK='f2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG b FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("b"), 90);
  stop_instance(srv);
  return 0;
}

/* A database restored WITH RECOVERY in the instance is followed by the
 * log capture from then on, whatever its applications do: here one keeps
 * a connection open across a full backup, then closes it (SQLite's last
 * connection checkpoints and deletes the WAL), and another writes more.
 * The log backup must hold every row, and the chain restore them all. */
TEST_IMPL_TIMEOUT(sql_recovery_capture_after_restore, 60) {
  char p[4400];
  sqlite3 *held;
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 20);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  q_ok("RESTORE DATABASE app FROM DISK='f1.bak' WITH REPLACE");
  ASSERT_EQ(rows_of("app"), 0);
  db_path(p, sizeof p, "app");
  ASSERT_EQ(sqlite3_open(p, &held), SQLITE_OK);
  sqlite3_busy_timeout(held, 5000);
  exec_sql(held, "SELECT count(*) FROM j");
  insert_rows("app", 101, 110);
  q_ok("BACKUP DATABASE app TO DISK='f2.bak'");
  insert_rows("app", 111, 120);
  sqlite3_close(held); /* the last connection */
  insert_rows("app", 121, 130);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  ASSERT_EQ(rows_of("app"), 30);
  q_ok("RESTORE DATABASE z FROM DISK='f2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG z FROM DISK='l2.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("z"), 30);
  stop_instance(srv);
  return 0;
}
/* A database restored WITH RECOVERY to an earlier point goes on along a
 * new recovery path: its log from there on is not the log its old backups
 * hold, and neither may be applied onto the other's backups (SQL Server
 * refuses them by recovery fork).  Here the new path's full backup falls
 * inside an old log backup's LSN range, and the old path's logs end
 * inside the new path's. */
TEST_IMPL_TIMEOUT(sql_recovery_fork_not_mixed, 60) {
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 20);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  insert_rows("app", 21, 40);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  /* Back to f1, and on from there: a new recovery path. */
  q_ok("RESTORE DATABASE app FROM DISK='f1.bak' WITH REPLACE");
  ASSERT_EQ(rows_of("app"), 0);
  insert_rows("app", 101, 110);
  q_ok("BACKUP DATABASE app TO DISK='f2.bak'");
  insert_rows("app", 111, 140);
  q_ok("BACKUP LOG app TO DISK='l3.bak'");

  /* The old path's log onto the new path's full backup: refused. */
  q_ok("RESTORE DATABASE z FROM DISK='f2.bak' WITH NORECOVERY");
  q_msg("RESTORE LOG z FROM DISK='l1.bak' WITH NORECOVERY", 4326);
  q_msg("RESTORE LOG z FROM DISK='l2.bak' WITH NORECOVERY", 4326);
  q_ok("RESTORE LOG z FROM DISK='l3.bak' WITH RECOVERY");
  assert_restored("z", 40);
  /* The new path's log onto the old path's backups: refused. */
  q_ok("RESTORE DATABASE y FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG y FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG y FROM DISK='l2.bak' WITH NORECOVERY");
  q_msg("RESTORE LOG y FROM DISK='l3.bak' WITH NORECOVERY", 4305);
  q_ok("RESTORE DATABASE y WITH RECOVERY");
  ASSERT_EQ(rows_of("y"), 40);
  stop_instance(srv);
  return 0;
}

/* A full RESTORE ... WITH NORECOVERY over a sequence in progress, the
 * instance killed once the new file is staged but before the new
 * sequence is recorded: the old sequence's row must not go on over the
 * new file (its next log would be applied onto the other full backup's
 * pages).  The sequence must be started again (Msg 3456), and then
 * restores every row. */
TEST_IMPL_TIMEOUT(sql_recovery_kill_restaging_full, 60) {
  char mark[4400];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 20);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  insert_rows("app", 21, 40);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  insert_rows("app", 41, 60);
  q_ok("BACKUP DATABASE app TO DISK='f2.bak'");
  q_ok("RESTORE DATABASE c FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l1.bak' WITH NORECOVERY");
  stop_instance(srv);

  snprintf(mark, sizeof mark, "%s/mark-restore_staged", test_tmpdir());
  srv = start_paused_instance("restore_staged", mark, 20000);
  kill_instance_at(srv, "restore_staged",
                   "RESTORE DATABASE c FROM DISK='f2.bak' WITH NORECOVERY");
  srv = start_instance();
  ASSERT_EQ(rows_of("c"), -1);
  q_msg("RESTORE LOG c FROM DISK='l2.bak' WITH RECOVERY", 3456);
  q_msg("RESTORE DATABASE c WITH RECOVERY", 3456);
  q_ok("RESTORE DATABASE c FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l2.bak' WITH RECOVERY");
  assert_restored("c", 40);
  stop_instance(srv);
  return 0;
}

/* The instance killed while its log archive starts a new segment (a log
 * or full backup's rotation): the new, last segment was created but
 * nothing was written to it yet.  At the next start the archive cannot
 * say which pages changed since the differential base, nor give the log
 * since the last log backup: both must be refused until a full backup
 * (Msg 3035, 4214), never a differential without the pages changed
 * before the kill. */
TEST_IMPL_TIMEOUT(sql_recovery_torn_segment_breaks_chain, 60) {
  char dir[4400], seg[4500];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 30);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  insert_rows("app", 31, 60);
  stop_instance(srv);
  /* What the kill leaves: an empty segment after the others. */
  snprintf(dir, sizeof dir, "%s/.vdisql/log/app", inst);
  snprintf(seg, sizeof seg, "%s/seg-00000000ffffff00", dir);
  int fd = open(seg, O_CREAT | O_WRONLY, 0600);
  ASSERT(fd >= 0);
  close(fd);
  srv = start_instance();
  insert_rows("app", 61, 90);
  q_msg("BACKUP DATABASE app TO DISK='d1.bak' WITH DIFFERENTIAL", 3035);
  q_msg("BACKUP LOG app TO DISK='l2.bak'", 4214);
  /* A full backup starts both again. */
  q_ok("BACKUP DATABASE app TO DISK='f2.bak'");
  insert_rows("app", 91, 100);
  q_ok("BACKUP DATABASE app TO DISK='d2.bak' WITH DIFFERENTIAL");
  q_ok("BACKUP LOG app TO DISK='l3.bak'");
  q_ok("RESTORE DATABASE a FROM DISK='f2.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE a FROM DISK='d2.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("a"), 100);
  q_ok("RESTORE DATABASE b FROM DISK='f2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG b FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("b"), 100);
  stop_instance(srv);
  return 0;
}

/* A full backup that cannot become the differential base (the archive's
 * new segment cannot be created: here a directory is in its place, as a
 * full disk would refuse it) leaves the base and the archive where they
 * were: the next differential, of the old base, must still hold every
 * page changed since that base, and the next log backup every record
 * since the last. */
static int failed_rebase(int fifo) {
  char mark[4400], flog[4400], hole[4500], *out = NULL;
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 10);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  insert_rows("app", 11, 30);
  stop_instance(srv);

  snprintf(mark, sizeof mark, "%s/mark-backup_before_state", test_tmpdir());
  snprintf(flog, sizeof flog, "%s/full2.log", test_tmpdir());
  srv = start_paused_instance("backup_before_state", mark, 1500);
  pid_t q = spawn_held(srv, "backup_before_state",
                       "BACKUP DATABASE app TO DISK='f2.bak'", flog);
  /* The new segment is named by the backup's LSN (nothing committed
   * since its snapshot). */
  ASSERT_EQ(sql_q(inst, "RESTORE HEADERONLY FROM DISK='f2.bak'", &out), 0);
  const char *row = strchr(out, '\n');
  ASSERT_NOT_NULL(row);
  for (int col = 0; col < 9 && row; col++)
    row = strchr(row + 1, '\t');
  ASSERT_NOT_NULL(row);
  unsigned long long lsn = strtoull(row + 1, NULL, 10);
  free(out);
  ASSERT_GT(lsn, 1);
  snprintf(hole, sizeof hole, "%s/.vdisql/log/app/seg-%016llx", inst, lsn);
  if (fifo)
    ASSERT_EQ(mkfifo(hole, 0600), 0);
  else
    ASSERT_EQ(mkdir(hole, 0700), 0);
  wait_helper(q);
  if (fifo)
    unlink(hole); /* removed by the failed rotation */
  else
    ASSERT_EQ(rmdir(hole), 0);
  insert_rows("app", 31, 60);
  q_ok("BACKUP DATABASE app TO DISK='d1.bak' WITH DIFFERENTIAL");
  /* The archive's current segment went on where it was, whole. */
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  q_ok("RESTORE DATABASE r FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE DATABASE r FROM DISK='d1.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("r"), 60);
  q_ok("RESTORE DATABASE s FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG s FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG s FROM DISK='l2.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("s"), 60);
  /* The archive as the next start finds it: whole, the chain goes on. */
  stop_instance(srv);
  srv = start_instance();
  insert_rows("app", 61, 70);
  q_ok("BACKUP LOG app TO DISK='l3.bak'");
  q_ok("RESTORE DATABASE t FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG t FROM DISK='l1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG t FROM DISK='l2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG t FROM DISK='l3.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("t"), 70);
  stop_instance(srv);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_recovery_failed_rebase_keeps_base, 60) {
  return failed_rebase(0);
}

/* The same when the new segment is created but cannot be written (here a
 * FIFO is in its place: the write fails, as on a full disk): the current
 * segment must go on at its end, not be written over from its start. */
TEST_IMPL_TIMEOUT(sql_recovery_failed_segment_write_keeps_log, 60) {
  return failed_rebase(1);
}

/* RESTORE ... WITH RECOVERY killed once the database is in place, before
 * the catalog says so.  The database is online (applications use it);
 * the catalog still says RESTORING, so BACKUP refuses it (Msg 927): the
 * RECOVERY that the message calls for must finish the job, not fail for
 * want of the staged file, and never replace the database. */
TEST_IMPL_TIMEOUT(sql_recovery_kill_after_recovery_switch, 60) {
  char mark[4400];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 20);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  q_ok("RESTORE DATABASE c FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG c FROM DISK='l1.bak' WITH NORECOVERY");
  stop_instance(srv);

  snprintf(mark, sizeof mark, "%s/mark-restore_switched", test_tmpdir());
  srv = start_paused_instance("restore_switched", mark, 20000);
  kill_instance_at(srv, "restore_switched", "RESTORE DATABASE c WITH RECOVERY");
  srv = start_instance();
  ASSERT_EQ(rows_of("c"), 20);
  insert_rows("c", 21, 25); /* online: an application writes */
  q_ok("RESTORE DATABASE c WITH RECOVERY");
  ASSERT_EQ(rows_of("c"), 25);
  q_ok("BACKUP DATABASE c TO DISK='c1.bak'");

  /* The same for a full restore WITH RECOVERY over a sequence in
   * progress: the old sequence's staged file must not come back. */
  q_ok("RESTORE DATABASE d FROM DISK='f1.bak' WITH NORECOVERY");
  stop_instance(srv);
  srv = start_paused_instance("restore_switched", mark, 20000);
  kill_instance_at(srv, "restore_switched",
                   "RESTORE DATABASE d FROM DISK='c1.bak' WITH REPLACE");
  srv = start_instance();
  ASSERT_EQ(rows_of("d"), 25);
  insert_rows("d", 26, 30);
  char *out = NULL;
  sql_q(inst, "RESTORE DATABASE d WITH RECOVERY", &out);
  free(out);
  ASSERT_EQ(rows_of("d"), 30);
  stop_instance(srv);
  return 0;
}

/* Two log backups at once, the one that started first finishing last
 * (a slow device): the chain must stay where the newer one moved it.
 * Moved back, the next log backup would start where the archive was
 * already dropped (Msg 4214 from then on, a full backup not mending it). */
TEST_IMPL_TIMEOUT(sql_recovery_log_backups_overlap, 90) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  char repo[4400], vlog[4400];
  snprintf(repo, sizeof repo, "%s/bk", test_tmpdir());
  snprintf(vlog, sizeof vlog, "%s/vdi.log", test_tmpdir());
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  app_t_run_ok(
      "full", NULL,
      ARGS("backup", "app", "--instance", inst, "--to", repo, "--quiet"));
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 300); /* enough log that the slow one takes a while */
  pid_t slow = app_t_spawn(vlog, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=150"),
                           ARGS("backup", "app", "--instance", inst, "--to",
                                repo, "--log", "--quiet"));
  sleep_ms(400);
  insert_rows("app", 301, 310);
  q_ok("BACKUP LOG app TO DISK='lb.bak'"); /* starts and ends meanwhile */
  if (wait_helper(slow) != 0)
    TASK_FAIL_("slow log backup:\n%s", sql_slurp(vlog));
  insert_rows("app", 311, 320);
  q_ok("BACKUP LOG app TO DISK='lc.bak'");
  q_ok("RESTORE DATABASE r FROM DISK='f1.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG r FROM DISK='lb.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG r FROM DISK='lc.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("r"), 320);
  stop_instance(srv);
  return 0;
}

/* An application commits while RESTORE ... WITH REPLACE of its database is
 * between its takeover and its switch (held at restore_commit): SQL Server
 * holds exclusive access for the whole restore.  The commit must be
 * refused (the database is busy) or kept; never reported done and then
 * thrown away by the switch.  Then the restored database is followed as
 * any other (a log backup after a full one). */
static int replace_holds_db(int busy_ms) {
  char mark[4400], out[4400], p[4400], sql[200];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 10);
  stop_instance(srv);

  snprintf(mark, sizeof mark, "%s/mark-restore_commit", test_tmpdir());
  snprintf(out, sizeof out, "%s/replace.log", test_tmpdir());
  srv = start_paused_instance("restore_commit", mark, 1500);
  pid_t q =
      spawn_held(srv, "restore_commit",
                 "RESTORE DATABASE app FROM DISK='f1.bak' WITH REPLACE", out);
  /* The application's commit, in the window. */
  sqlite3 *db;
  db_path(p, sizeof p, "app");
  ASSERT_EQ(sqlite3_open(p, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, busy_ms);
  snprintf(sql, sizeof sql, "INSERT INTO j(n, ms) VALUES (11, 0)");
  int committed = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
  sqlite3_close(db);
  int restored = wait_helper_timeout(q, 20000) == 0;
  long rows = rows_of("app");
  if (committed && rows != 11)
    TASK_FAIL_("a commit reported done is gone: %ld rows (restore %s):\n%s",
               rows, restored ? "succeeded" : "failed", sql_slurp(out));
  if (!committed) ASSERT(restored);
  ASSERT(rows == (restored ? 0 : 11));
  db_path(p, sizeof p, "app");
  ASSERT(sql_integrity_ok(p));
  /* The restored database is in WAL mode and followed by the capture. */
  insert_rows("app", 21, 30);
  q_ok("BACKUP DATABASE app TO DISK='f2.bak'");
  insert_rows("app", 31, 40);
  q_ok("BACKUP LOG app TO DISK='l2.bak'");
  q_ok("RESTORE DATABASE r FROM DISK='f2.bak' WITH NORECOVERY");
  q_ok("RESTORE LOG r FROM DISK='l2.bak' WITH RECOVERY");
  ASSERT_EQ(rows_of("r"), rows + 20);
  stop_instance(srv);
  unlink(mark);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_recovery_replace_holds_db, 60) {
  return replace_holds_db(300);
}

/* The same, the application waiting longer than the restore (its busy
 * timeout): its connection is to the file replaced, where a commit made
 * once the restore lets go would be lost as well. */
TEST_IMPL_TIMEOUT(sql_recovery_replace_waiter_not_lost, 60) {
  return replace_holds_db(10000);
}

/* The capture finds the log chain broken (a committed frame that does not
 * check: here damaged while the instance is stopped) while a full backup
 * is between reading the database's row and writing it back (held at
 * backup_rebased): the break must stand, not be written over by the
 * backup's older row.  A log backup is then refused (Msg 4214), never one
 * that silently lacks the damaged transaction. */
static int break_during_backup(const char *point, const char *sql,
                               int want_msg) {
  char mark[4400], flog[4400], p[4400];
  new_instance_dir();
  pid_t srv = start_instance();
  q_ok("ALTER DATABASE app SET RECOVERY FULL");
  q_ok("BACKUP DATABASE app TO DISK='f1.bak'");
  insert_rows("app", 1, 10);
  q_ok("BACKUP LOG app TO DISK='l1.bak'");
  stop_instance(srv);

  snprintf(mark, sizeof mark, "%s/mark-%s", test_tmpdir(), point);
  snprintf(flog, sizeof flog, "%s/full2.log", test_tmpdir());
  srv = start_paused_instance(point, mark, 1500);
  pid_t q = spawn_held(srv, point, sql, flog);
  /* The instance stopped, a commit whose last frame is then damaged. */
  ASSERT_EQ(kill(srv, SIGSTOP), 0);
  insert_rows("app", 11, 11);
  char shm[4500], wal[4500];
  db_path(p, sizeof p, "app");
  snprintf(shm, sizeof shm, "%s-shm", p);
  snprintf(wal, sizeof wal, "%s-wal", p);
  uint32_t mx = 0;
  int fd = open(shm, O_RDONLY);
  ASSERT(fd >= 0);
  ASSERT_EQ(pread(fd, &mx, 4, 16), 4); /* WalIndexHdr.mxFrame */
  close(fd);
  ASSERT_GT(mx, 0);
  fd = open(wal, O_RDWR);
  ASSERT(fd >= 0);
  off_t off = 32 + (off_t)(mx - 1) * (24 + 4096) + 24 + 100;
  uint8_t b;
  ASSERT_EQ(pread(fd, &b, 1, off), 1);
  b ^= 0xFF;
  ASSERT_EQ(pwrite(fd, &b, 1, off), 1);
  close(fd);
  ASSERT_EQ(kill(srv, SIGCONT), 0);
  int rc = wait_helper(q);
  if (want_msg ? rc == 0 || !sql_has_msg(sql_slurp(flog), want_msg) : rc != 0)
    TASK_FAIL_("%s: exit %d, wanted Msg %d:\n%s", sql, rc, want_msg,
               sql_slurp(flog));
  /* Had it been found only after the backup, it would stand all the
   * same: wait for the capture's poll either way. */
  sleep_ms(200);
  char *out = NULL;
  if (sql_q(inst, "BACKUP LOG app TO DISK='l9.bak'", &out) != 1 ||
      !sql_has_msg(out, 4214))
    TASK_FAIL_("wanted Msg 4214:\n%s\ninstance:\n%s", out, sql_slurp(logp));
  free(out);
  q_msg("BACKUP DATABASE app TO DISK='d9.bak' WITH DIFFERENTIAL", 3035);
  stop_instance(srv);
  unlink(mark);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_recovery_break_during_backup_stands, 60) {
  return break_during_backup("backup_rebased",
                             "BACKUP DATABASE app TO DISK='f2.bak'", 0);
}

/* The same, the break found after the full backup's snapshot but before
 * it reads the row (held at backup_before_state): the row says broken
 * then, but the backup must not start the chain and the differential
 * base again from its snapshot, from which the skipped log is missing. */
TEST_IMPL_TIMEOUT(sql_recovery_break_after_snapshot_stands, 60) {
  return break_during_backup("backup_before_state",
                             "BACKUP DATABASE app TO DISK='f2.bak'", 0);
}

/* The same, the break found after a log backup has read the database's
 * row, before it copies the log (held at backup_read_state): the log
 * lacks what the capture skipped, so the backup must fail (Msg 4214),
 * not succeed without it. */
TEST_IMPL_TIMEOUT(sql_recovery_break_before_log_backup_fails, 60) {
  return break_during_backup("backup_read_state",
                             "BACKUP LOG app TO DISK='l2.bak'", 4214);
}
