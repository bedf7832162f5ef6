/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds.c - SQL Server's own clients against `vdisql --serve --tds`:
 * FreeTDS tsql, Python pymssql, and pyodbc with the FreeTDS ODBC driver,
 * each a real program from Debian talking TDS to the instance over TCP,
 * while an SDK-style VDI client (tests/cxx/pipe_backup, pipe_restore over
 * libsqlvdi.so) services the virtual device the statement names.
 */
#include "task.h"
#include "test-sql-util.h"
#include "test-tds-util.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* tsql: a backup through a virtual device, its progress, a restore of it,
 * the same rows; a wrong password gets Msg 18456 and nothing else. */
TEST_IMPL_TIMEOUT(tds_tsql_backup_restore, 90) {
  pid_t srv = start_tds(3000);
  char bak[4400], clog[4400], sql[600], *out = NULL;
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  const char *set = unique_name("tds");
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, NULL);
  snprintf(sql, sizeof sql,
           "BACKUP DATABASE [app] TO VIRTUAL_DEVICE='%s' WITH CHECKSUM, "
           "STATS=10\ngo\nquit\n",
           set);
  ASSERT_EQ(tsql(PASSWORD, sql, &out), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  if (!strstr(out, "10 percent processed.") ||
      !strstr(out, "BACKUP DATABASE successfully processed"))
    TASK_FAIL_("tsql did not show the backup's messages:\n%s", out);
  free(out);

  set = unique_name("tds");
  c = start_client("cxx/pipe_restore", set, bak, clog, NULL);
  snprintf(sql, sizeof sql,
           "RESTORE DATABASE copy FROM VIRTUAL_DEVICE='%s' WITH STATS=25\n"
           "go\nquit\n",
           set);
  ASSERT_EQ(tsql(PASSWORD, sql, &out), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_restore", clog), 0);
  if (!strstr(out, "RESTORE DATABASE successfully processed"))
    TASK_FAIL_("tsql did not show the restore's messages:\n%s", out);
  free(out);
  expect_copy_equals_app(3000);

  /* A wrong password: refused, and the statement never runs. */
  tsql("not-the-password", "BACKUP DATABASE app TO DISK='no.bak'\ngo\n", &out);
  ASSERT_NOT_NULL(strstr(out, "Login failed for user 'sa'"));
  free(out);
  char no[4400];
  snprintf(no, sizeof no, "%s/no.bak", inst);
  ASSERT_NE(access(no, F_OK), 0);
  ASSERT(sql_file_has(ilog, "login failed for user 'sa'"));
  sql_serve_stop(srv, 10000);
  return 0;
}

/* pymssql: the progress of a backup reaches the client while the backup
 * runs (the device client holds the stream for 1.5 s halfway), the
 * history is a result set, errors carry SQL Server's numbers. */
TEST_IMPL_TIMEOUT(tds_pymssql_live_progress, 90) {
  pid_t srv = start_tds(20000);
  char bak[4400], clog[4400], py[4400], pout[4400], script[9000];
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  snprintf(py, sizeof py, "%s/t.py", test_tmpdir());
  snprintf(pout, sizeof pout, "%s/py.out", test_tmpdir());
  const char *set = unique_name("tds");
  const char *env[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                       "PIPE_BACKUP_PAUSE_MS=1500", NULL};
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, env);
  snprintf(script, sizeof script,
           "import pymssql, time, sys\n"
           "try:\n"
           "    pymssql.connect(server='127.0.0.1', port=%d, user='sa',\n"
           "                    password='wrong', login_timeout=10)\n"
           "    print('WRONG-PASSWORD-ACCEPTED')\n"
           "except pymssql.OperationalError as e:\n"
           "    print('REFUSED', e.args[0][0] if isinstance(e.args[0], tuple)\n"
           "          else e.args[0])\n"
           "c = pymssql.connect(server='127.0.0.1', port=%d, user='sa',\n"
           "                    password='%s', autocommit=True)\n"
           "def on_msg(msgstate, severity, srvname, procname, line, msgtext):\n"
           "    print('MSG %%.3f %%s' %% (time.time(), msgtext.decode()))\n"
           "    sys.stdout.flush()\n"
           "c._conn.set_msghandler(on_msg)\n"
           "cur = c.cursor()\n"
           "cur.execute(\"BACKUP DATABASE app TO VIRTUAL_DEVICE='%s' WITH "
           "STATS=10\")\n"
           "print('END %%.3f' %% time.time())\n"
           "cur.execute('SELECT database_name, type FROM msdb.dbo.backupset')\n"
           "print('ROWS', cur.fetchall())\n"
           "try:\n"
           "    cur.execute(\"BACKUP DATABASE nosuch TO DISK='x.bak'\")\n"
           "except pymssql.Error as e:\n"
           "    print('ERROR', e.args[0])\n",
           port, port, PASSWORD, set);
  write_file(py, script);
  pid_t p = run_prog((const char *const[]){PYTHON, py, NULL}, NULL, pout, NULL);
  ASSERT_EQ(wait_ok(p, 60000, "python (pymssql)", pout), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  char *out = sql_slurp(pout);
  ASSERT_NOT_NULL(strstr(out, "REFUSED 18456"));
  ASSERT_NULL(strstr(out, "WRONG-PASSWORD-ACCEPTED"));
  ASSERT_NOT_NULL(strstr(out, "ROWS [('app', 'D')]"));
  ASSERT_NOT_NULL(strstr(out, "ERROR 911"));
  /* The first progress message came well before the statement ended. */
  const char *m = strstr(out, " 10 percent processed.");
  const char *e = strstr(out, "END ");
  ASSERT_NOT_NULL(m);
  ASSERT_NOT_NULL(e);
  while (m > out && m[-1] != '\n')
    m--;
  double t_msg = atof(m + 4), t_end = atof(e + 4);
  if (!(t_end - t_msg > 0.7))
    TASK_FAIL_("progress arrived %.3f s before the end (the device held "
               "the stream 1.5 s):\n%s",
               t_end - t_msg, out);
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* pyodbc + FreeTDS ODBC: cancelling a running backup (SQLCancel sends an
 * attention) aborts it through the device set; the VDI client does not
 * succeed, no backup is recorded, and the connection goes on working. */
TEST_IMPL_TIMEOUT(tds_pyodbc_cancel, 90) {
  pid_t srv = start_tds(20000);
  pyodbc_cancel_check("");
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A freetds.conf naming the instance "vdisql" (TDS 7.4), for the FreeTDS
 * programs that take a server name rather than a host and port. */
static void freetds_conf(char *env, size_t n) {
  char conf[4400], text[200];
  snprintf(conf, sizeof conf, "%s/freetds.conf", test_tmpdir());
  snprintf(text, sizeof text,
           "[vdisql]\n\thost = 127.0.0.1\n\tport = %d\n\ttds version = 7.4\n",
           port);
  write_file(conf, text);
  snprintf(env, n, "FREETDSCONF=%s", conf);
}

/* Run FreeTDS's @p prog ("/usr/bin/bsqldb", "/usr/bin/fisql") with
 * @p script as its input file; stdout and stderr in *out.  Not waited for
 * when @p pid is given. */
static int freetds_prog(const char *prog, const char *script, char **out,
                        pid_t *pid, const char *tag) {
  char in[4400], o[4400], env[4500];
  snprintf(in, sizeof in, "%s/%s.sql", test_tmpdir(), tag);
  snprintf(o, sizeof o, "%s/%s.out", test_tmpdir(), tag);
  write_file(in, script);
  unlink(o);
  freetds_conf(env, sizeof env);
  const char *envs[] = {env, NULL};
  need(prog);
  pid_t p = run_prog((const char *const[]){prog, "-S", "vdisql", "-U", "sa",
                                           "-P", PASSWORD, "-i", in, NULL},
                     NULL, o, envs);
  if (pid) {
    *pid = p;
    return 0;
  }
  int rc = wait_helper_timeout(p, 30000);
  if (rc < 0) kill(p, SIGKILL);
  *out = sql_slurp(o);
  return rc;
}

/* FreeTDS's bsqldb and fisql: a backup through a virtual device from one,
 * the restore from the other, the same rows; both print the server's
 * messages and result sets. */
TEST_IMPL_TIMEOUT(tds_freetds_bsqldb_fisql, 90) {
  pid_t srv = start_tds(3000);
  char bak[4400], clog[4400], sql[600], *out = NULL;
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  const char *set = unique_name("tds");
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, NULL);
  snprintf(sql, sizeof sql,
           "BACKUP DATABASE [app] TO VIRTUAL_DEVICE='%s' WITH CHECKSUM, "
           "STATS=25\ngo\nSELECT database_name, type FROM "
           "msdb.dbo.backupset\ngo\n",
           set);
  ASSERT_EQ(freetds_prog("/usr/bin/bsqldb", sql, &out, NULL, "bsqldb"), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  if (!strstr(out, "25 percent processed.") ||
      !strstr(out, "BACKUP DATABASE successfully processed") ||
      !strstr(out, "Msg 3014") || !strstr(out, "app"))
    TASK_FAIL_("bsqldb did not show the backup:\n%s", out);
  free(out);

  set = unique_name("tds");
  c = start_client("cxx/pipe_restore", set, bak, clog, NULL);
  snprintf(sql, sizeof sql,
           "RESTORE DATABASE copy FROM VIRTUAL_DEVICE='%s'\ngo\n"
           "SELECT @@VERSION\ngo\n",
           set);
  ASSERT_EQ(freetds_prog("/usr/bin/fisql", sql, &out, NULL, "fisql"), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_restore", clog), 0);
  if (!strstr(out, "RESTORE DATABASE successfully processed") ||
      !strstr(out, "Microsoft SQL Server 2022"))
    TASK_FAIL_("fisql did not show the restore:\n%s", out);
  free(out);
  expect_copy_equals_app(3000);
  /* An error ends bsqldb with a failure and SQL Server's message. */
  ASSERT_NE(freetds_prog("/usr/bin/bsqldb",
                         "BACKUP DATABASE nosuch TO DISK='n.bak'\ngo\n", &out,
                         NULL, "bsqldb-err"),
            0);
  ASSERT(strstr(out, "Msg 911"));
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* Sessions are independent: while one connection's BACKUP waits on its
 * virtual device (the client holds the stream), another connection reads
 * a backup's header and the history and finishes; then the first ends. */
TEST_IMPL_TIMEOUT(tds_sessions_concurrent, 90) {
  pid_t srv = start_tds(20000);
  char bak[4400], clog[4400], mark[4400], env_mark[4500], sql[600];
  char *out = NULL;
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  snprintf(mark, sizeof mark, "%s/paused", test_tmpdir());
  snprintf(env_mark, sizeof env_mark, "PIPE_BACKUP_PAUSE_MARK=%s", mark);
  ASSERT_EQ(
      tsql(PASSWORD, "BACKUP DATABASE app TO DISK='d.bak'\ngo\nquit\n", &out),
      0);
  free(out);
  const char *set = unique_name("tds");
  const char *env[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                       "PIPE_BACKUP_PAUSE_MS=4000", env_mark, NULL};
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, env);
  snprintf(sql, sizeof sql, "BACKUP DATABASE app TO VIRTUAL_DEVICE='%s'\ngo\n",
           set);
  pid_t first;
  ASSERT_EQ(freetds_prog("/usr/bin/bsqldb", sql, NULL, &first, "first"), 0);
  for (int i = 0; i < 2000 && access(mark, F_OK) != 0; i++)
    sleep_ms(5);
  ASSERT_EQ(access(mark, F_OK), 0);
  ASSERT_EQ(tsql(PASSWORD,
                 "RESTORE HEADERONLY FROM DISK='d.bak'\ngo\n"
                 "SELECT count(*) FROM msdb.dbo.backupset\ngo\nquit\n",
                 &out),
            0);
  if (!strstr(out, "BackupSetGUID") || !strstr(out, "(1 row affected)"))
    TASK_FAIL_("the second connection's statements:\n%s", out);
  free(out);
  /* The other connection is still in its backup. */
  ASSERT_EQ(waitpid(first, NULL, WNOHANG), 0);
  int rc = wait_helper_timeout(first, 30000);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  char fo[4400];
  snprintf(fo, sizeof fo, "%s/first.out", test_tmpdir());
  ASSERT(sql_file_has(fo, "BACKUP DATABASE successfully processed"));
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A client that sends garbage in the middle of its statement, or hangs
 * up, aborts its own statement (its virtual device set) and nothing else:
 * another connection's BACKUP, running at the same time, completes, and
 * the instance goes on serving. */
TEST_IMPL_TIMEOUT(tds_garbage_or_hangup_aborts_only_its_statement, 90) {
  pid_t srv = start_tds(20000);
  for (int round = 0; round < 2; round++) {
    char bak[2][4400], clog[2][4400], mark[2][4400], envm[2][4500], sql[600];
    char set[2][128];
    pid_t c[2];
    for (int k = 0; k < 2; k++) {
      snprintf(bak[k], sizeof bak[k], "%s/b%d-%d.vdi", test_tmpdir(), round, k);
      snprintf(clog[k], sizeof clog[k], "%s/c%d-%d.log", test_tmpdir(), round,
               k);
      snprintf(mark[k], sizeof mark[k], "%s/m%d-%d", test_tmpdir(), round, k);
      snprintf(envm[k], sizeof envm[k], "PIPE_BACKUP_PAUSE_MARK=%s", mark[k]);
      const char *env[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                           "PIPE_BACKUP_PAUSE_MS=1500", envm[k], NULL};
      snprintf(set[k], sizeof set[k], "%s", unique_name("tds"));
      c[k] = start_client("cxx/pipe_backup", set[k], bak[k], clog[k], env);
    }
    /* Connection 0: a raw client; connection 1: bsqldb-like tsql. */
    int fd;
    ASSERT_EQ(tds_raw_login_fd(port, "sa", PASSWORD, &fd), 1);
    snprintf(sql, sizeof sql, "BACKUP DATABASE app TO VIRTUAL_DEVICE='%s'",
             set[0]);
    ASSERT_EQ(tds_raw_batch(fd, sql), 0);
    char script[600], tout[4400];
    snprintf(script, sizeof script,
             "BACKUP DATABASE app TO VIRTUAL_DEVICE='%s'\ngo\nquit\n", set[1]);
    snprintf(tout, sizeof tout, "%s/tsql-%d.in", test_tmpdir(), round);
    write_file(tout, script);
    char ps[16], oout[4400];
    snprintf(ps, sizeof ps, "%d", port);
    snprintf(oout, sizeof oout, "%s/tsql-%d.out", test_tmpdir(), round);
    pid_t other =
        run_prog((const char *const[]){"/usr/bin/tsql", "-H", "127.0.0.1", "-p",
                                       ps, "-U", "sa", "-P", PASSWORD, NULL},
                 tout, oout, NULL);
    for (int i = 0;
         i < 2000 && (access(mark[0], F_OK) != 0 || access(mark[1], F_OK) != 0);
         i++)
      sleep_ms(5);
    if (access(mark[0], F_OK) != 0 || access(mark[1], F_OK) != 0)
      TASK_FAIL_("the backups did not start:\n%s\n%s\n%s", sql_slurp(ilog),
                 sql_slurp(clog[0]), sql_slurp(oout));
    /* Both backups are in their streams.  Connection 0 misbehaves. */
    if (round == 0) {
      static const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
      ASSERT_EQ(tds_raw_send(fd, 0x77, junk, sizeof junk), 0);
    } else {
      close(fd);
      fd = -1;
    }
    /* Its device client learns of the abort when its pause ends. */
    int crc = wait_helper_timeout(c[0], 10000);
    if (crc < 0) kill(c[0], SIGKILL);
    if (crc <= 0)
      TASK_FAIL_("round %d: the device client %s:\n%s", round,
                 crc ? "was not aborted" : "succeeded", sql_slurp(ilog));
    ASSERT_EQ(wait_ok(other, 30000, "tsql", oout), 0);
    ASSERT_EQ(wait_ok(c[1], 20000, "pipe_backup", clog[1]), 0);
    ASSERT(sql_file_has(oout, "BACKUP DATABASE successfully processed"));
    ASSERT(sql_file_has(ilog, round ? "the client hung up"
                                    : "the client broke the protocol"));
    if (fd >= 0) close(fd);
  }
  /* Two backups recorded: the other connection's, one per round. */
  char *out = NULL;
  ASSERT_EQ(tsql(PASSWORD,
                 "SELECT count(*) FROM msdb.dbo.backupset\ngo\nquit\n", &out),
            0);
  if (!strstr(out, "\n2\n"))
    TASK_FAIL_("history:\n%s\n%s", out, sql_slurp(ilog));
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* Result sets carry SQL Server's column types: pymssql hands the
 * application Decimal LSNs and sizes, datetimes, UUIDs (the same GUID as
 * the text output shows), booleans, integers and NULLs, for HEADERONLY,
 * FILELISTONLY, msdb's backupset and the probes. */
TEST_IMPL_TIMEOUT(tds_result_types, 60) {
  pid_t srv = start_tds(500);
  char py[4400], pout[4400], script[4000], *out = NULL;
  snprintf(py, sizeof py, "%s/t.py", test_tmpdir());
  snprintf(pout, sizeof pout, "%s/py.out", test_tmpdir());
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE app TO DISK='ty.bak'", &out), 0);
  free(out);
  ASSERT_EQ(sql_q(inst, "RESTORE HEADERONLY FROM DISK='ty.bak'", &out), 0);
  /* The text output's FamilyGUID: the 19th column of the row. */
  char *row = strchr(out, '\n');
  ASSERT_NOT_NULL(row);
  row++;
  for (int i = 0; i < 18 && row; i++)
    row = strchr(row, '\t'), row = row ? row + 1 : NULL;
  ASSERT_NOT_NULL(row);
  char guid[40];
  snprintf(guid, sizeof guid, "%.36s", row);
  for (char *g = guid; *g; g++)
    *g = (char)tolower((unsigned char)*g);
  free(out);
  snprintf(script, sizeof script,
           "import pymssql\n"
           "c = pymssql.connect(server='127.0.0.1', port=%d, user='sa',\n"
           "                    password='%s', autocommit=True)\n"
           "cur = c.cursor()\n"
           "def show(sql):\n"
           "    cur.execute(sql)\n"
           "    cols = [d[0] for d in cur.description]\n"
           "    for k, v in zip(cols, cur.fetchone()):\n"
           "        print('%%s %%s %%r' %% (k, type(v).__name__, v))\n"
           "show(\"RESTORE HEADERONLY FROM DISK='ty.bak'\")\n"
           "show(\"RESTORE FILELISTONLY FROM DISK='ty.bak'\")\n"
           "show('SELECT backup_set_id, backup_start_date, backup_size, '\n"
           "     'first_lsn, family_guid, is_copy_only, type '\n"
           "     'FROM msdb.dbo.backupset')\n"
           "show('SELECT count(*) AS n FROM msdb.dbo.backupset')\n"
           "show('SELECT 1 AS one, @@SPID AS spid, @@VERSION AS v')\n",
           port, PASSWORD);
  write_file(py, script);
  pid_t p = run_prog((const char *const[]){PYTHON, py, NULL}, NULL, pout, NULL);
  ASSERT_EQ(wait_ok(p, 30000, "python (pymssql)", pout), 0);
  out = sql_slurp(pout);
  char fam[100];
  snprintf(fam, sizeof fam, "FamilyGUID UUID UUID('%s')", guid);
  const char *want[] = {"BackupName NoneType None",
                        "BackupType int 1",
                        "Position int 1",
                        "BackupSize Decimal Decimal('",
                        "FirstLSN Decimal Decimal('",
                        "BackupStartDate datetime datetime.datetime(",
                        fam,
                        "IsCopyOnly bool False",
                        "DifferentialBaseGUID NoneType None",
                        "RecoveryModel str 'SIMPLE'",
                        "Size Decimal Decimal('",
                        "FileId int 1",
                        "backup_set_id int 1",
                        "backup_start_date datetime datetime.datetime(",
                        "backup_size Decimal",
                        "family_guid UUID",
                        "is_copy_only bool False",
                        "type str 'D'",
                        "n int 1",
                        "one int 1",
                        "spid int ",
                        "v str 'Microsoft SQL Server 2022"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(out, want[i]))
      TASK_FAIL_("no '%s' in what pymssql got:\n%s", want[i], out);
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* The endpoint on IPv6 ([::1]:port): FreeTDS reaches it through a
 * freetds.conf entry (host = ::1), logs in, runs a backup and a query. */
TEST_IMPL_TIMEOUT(tds_ipv6_endpoint, 60) {
  need("/usr/bin/tsql");
  int s6 = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a6 = {0};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  int have6 = s6 >= 0 && bind(s6, (struct sockaddr *)&a6, sizeof a6) == 0;
  if (s6 >= 0) close(s6);
  if (!have6) {
    fprintf(stderr, "this machine has no IPv6 loopback\n");
    return TEST_SKIP;
  }
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(ilog, sizeof ilog, "%s/instance.log", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  char db[4400], conf[4400], text[200], env[4500], in[4400], o[4400];
  snprintf(db, sizeof db, "%s/app.db", inst);
  sql_make_db(db, 300, 4096, 1, 3);
  setenv("MSSQL_SA_PASSWORD", PASSWORD, 1);
  pid_t srv =
      sql_serve(inst, ilog, (const char *const[]){"--tds", "[::1]:0", NULL});
  unsetenv("MSSQL_SA_PASSWORD");
  char *t = sql_slurp(ilog);
  const char *at = strstr(t, "TDS on [::1]:");
  int p6 = at ? atoi(at + strlen("TDS on [::1]:")) : 0;
  free(t);
  ASSERT_GT(p6, 0);
  snprintf(conf, sizeof conf, "%s/freetds6.conf", test_tmpdir());
  snprintf(text, sizeof text,
           "[v6]\n\thost = ::1\n\tport = %d\n\ttds version = 7.4\n", p6);
  write_file(conf, text);
  snprintf(env, sizeof env, "FREETDSCONF=%s", conf);
  snprintf(in, sizeof in, "%s/v6.sql", test_tmpdir());
  snprintf(o, sizeof o, "%s/v6.out", test_tmpdir());
  write_file(in, "BACKUP DATABASE app TO DISK='v6.bak'\ngo\n"
                 "SELECT count(*) FROM msdb.dbo.backupset\ngo\nquit\n");
  pid_t p = run_prog((const char *const[]){"/usr/bin/tsql", "-S", "v6", "-U",
                                           "sa", "-P", PASSWORD, NULL},
                     in, o, (const char *const[]){env, NULL});
  ASSERT_EQ(wait_ok(p, 30000, "tsql over IPv6", o), 0);
  char *out = sql_slurp(o);
  if (!strstr(out, "BACKUP DATABASE successfully processed") ||
      !strstr(out, "\n1\n"))
    TASK_FAIL_("tsql over IPv6:\n%s", out);
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* tsql shows a backup's progress while the backup runs: with the device
 * holding the stream, the messages so far are already in tsql's output
 * and the end is not. */
TEST_IMPL_TIMEOUT(tds_tsql_live_progress, 60) {
  pid_t srv = start_tds(20000);
  char bak[4400], clog[4400], mark[4400], envm[4500], in[4400], o[4400], ps[16],
      sql[400];
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  snprintf(mark, sizeof mark, "%s/paused", test_tmpdir());
  snprintf(envm, sizeof envm, "PIPE_BACKUP_PAUSE_MARK=%s", mark);
  snprintf(in, sizeof in, "%s/live.sql", test_tmpdir());
  snprintf(o, sizeof o, "%s/live.out", test_tmpdir());
  snprintf(ps, sizeof ps, "%d", port);
  char set[128];
  snprintf(set, sizeof set, "%s", unique_name("tds"));
  const char *held[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                        "PIPE_BACKUP_PAUSE_MS=2000", envm, NULL};
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, held);
  snprintf(sql, sizeof sql,
           "BACKUP DATABASE app TO VIRTUAL_DEVICE='%s' WITH STATS=10\ngo\n"
           "quit\n",
           set);
  write_file(in, sql);
  pid_t t =
      run_prog((const char *const[]){"/usr/bin/tsql", "-H", "127.0.0.1", "-p",
                                     ps, "-U", "sa", "-P", PASSWORD, NULL},
               in, o, NULL);
  for (int i = 0; i < 2000 && access(mark, F_OK) != 0; i++)
    sleep_ms(5);
  ASSERT_EQ(access(mark, F_OK), 0);
  sleep_ms(300);
  char *mid = sql_slurp(o);
  if (!strstr(mid, "percent processed.") ||
      strstr(mid, "successfully processed"))
    TASK_FAIL_("tsql's output while the device held the stream:\n%s", mid);
  free(mid);
  ASSERT_EQ(wait_ok(t, 30000, "tsql", o), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  ASSERT(sql_file_has(o, "BACKUP DATABASE successfully processed"));
  sql_serve_stop(srv, 10000);
  return 0;
}

/* The certificate statements and an encrypted backup and restore issued
 * by tsql: SQL Server's spelling goes through TDS unchanged, errors come
 * back as TDS errors with SQL Server's numbers. */
TEST_IMPL_TIMEOUT(tds_tsql_encrypted_backup, 90) {
  pid_t srv = start_tds(2000);
  char *out = NULL;
  ASSERT_EQ(tsql(PASSWORD,
                 "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'Tds#Mk-2026'\n"
                 "go\n"
                 "CREATE CERTIFICATE BackupCert WITH SUBJECT = 'tds backups'\n"
                 "go\n"
                 "SELECT name, subject, thumbprint FROM sys.certificates\n"
                 "go\n"
                 "BACKUP DATABASE app TO DISK='enc.bak' WITH ENCRYPTION "
                 "(ALGORITHM = AES_256, SERVER CERTIFICATE = BackupCert)\n"
                 "go\n"
                 "RESTORE HEADERONLY FROM DISK='enc.bak'\ngo\n"
                 "RESTORE DATABASE copy FROM DISK='enc.bak'\ngo\n"
                 "DROP CERTIFICATE NoSuchCert\ngo\nquit\n",
                 &out),
            0);
  if (!strstr(out, "tds backups") || !strstr(out, "0x") ||
      !strstr(out, "BACKUP DATABASE successfully processed") ||
      !strstr(out, "aes_256") ||
      !strstr(out, "RESTORE DATABASE successfully processed") ||
      !strstr(out, "15151"))
    TASK_FAIL_("tsql's output:\n%s", out);
  free(out);
  expect_copy_equals_app(2000);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A client that sends a batch with a large answer and never reads it
 * holds its session in a write that does not end.  A stop still ends the
 * instance: after --stop-timeout, such a connection is cut, not waited on
 * for ever; another session works until then. */
TEST_IMPL_TIMEOUT(tds_stop_with_client_not_reading, 90) {
  pid_t srv =
      start_tds_with(10, (const char *const[]){"--stop-timeout", "2", NULL});
  int fd;
  ASSERT_EQ(tds_raw_login_fd(port, "sa", PASSWORD, &fd), 1);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  /* Statements of 16 x @@VERSION: some 5 kB of answer each, 40 MB in all,
   * sent in packets of 32000 bytes, ALL_HEADERS first. */
  static const uint8_t hdrs[22] = {22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0,
                                   0,  0, 0, 0, 0,  0, 0, 1, 0, 0, 0};
  char stmt[400] = "SELECT @@VERSION";
  for (int i = 1; i < 16; i++)
    strcat(stmt, ",@@VERSION");
  strcat(stmt, "\n");
  size_t sl = strlen(stmt), total = sizeof hdrs + 8000 * sl * 2;
  uint8_t *msg = malloc(total);
  ASSERT_NOT_NULL(msg);
  memcpy(msg, hdrs, sizeof hdrs);
  for (size_t k = 0, at = sizeof hdrs; k < 8000; k++)
    for (size_t j = 0; j < sl; j++, at += 2)
      msg[at] = (uint8_t)stmt[j], msg[at + 1] = 0;
  for (size_t off = 0; off < total;) {
    size_t n = total - off < 32000 ? total - off : 32000;
    uint8_t h[8] = {0x01,
                    off + n == total,
                    (uint8_t)((n + 8) >> 8),
                    (uint8_t)(n + 8),
                    0,
                    0,
                    1,
                    0};
    ASSERT_EQ(send(fd, h, 8, MSG_NOSIGNAL), 8);
    ASSERT_EQ(send(fd, msg + off, n, MSG_NOSIGNAL), (ssize_t)n);
    off += n;
  }
  free(msg);
  sleep_ms(2000); /* the instance's writes fill the connection */
  ASSERT_EQ(tds_raw_login(port, "sa", PASSWORD), 1);
  sql_serve_stop_log(srv, 20000, ilog);
  close(fd);
  return 0;
}

/* A request whose last packet has the IGNORE bit with EOM ([MS-TDS]
 * 2.2.3.1.2: a client that stops sending a request part way) is dropped,
 * never run, not even in part: the next request is answered as usual. */
TEST_IMPL_TIMEOUT(tds_ignored_request_not_run, 60) {
  pid_t srv = start_tds(10);
  int fd;
  ASSERT_EQ(tds_raw_login_fd(port, "sa", PASSWORD, &fd), 1);
  static const uint8_t hdrs[22] = {22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0,
                                   0,  0, 0, 0, 0,  0, 0, 1, 0, 0, 0};
  const char *sql = "BACKUP DATABASE app TO DISK='ignored.bak'";
  uint8_t b[1024];
  size_t n = 8;
  memcpy(b + n, hdrs, sizeof hdrs);
  n += sizeof hdrs;
  for (const char *s = sql; *s; s++)
    b[n++] = (uint8_t)*s, b[n++] = 0;
  b[0] = 0x01, b[1] = 0x01 | 0x02; /* EOM | IGNORE */
  b[2] = (uint8_t)(n >> 8), b[3] = (uint8_t)n;
  b[4] = b[5] = b[7] = 0, b[6] = 1;
  ASSERT_EQ(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
  ASSERT_EQ(tds_raw_batch(fd, "SELECT 'next-one'"), 0);
  static uint8_t r[65536];
  long k = tds_raw_reply(fd, r, sizeof r);
  ASSERT_GT(k, 0);
  static const uint8_t want[] = {'n', 0, 'e', 0, 'x', 0, 't', 0, '-', 0};
  int found = 0;
  for (long i = 0; i + (long)sizeof want <= k && !found; i++)
    found = memcmp(r + i, want, sizeof want) == 0;
  if (!found)
    TASK_FAIL_("the first answer is not the SELECT's:\n%s", sql_slurp(ilog));
  char bak[4400];
  snprintf(bak, sizeof bak, "%s/ignored.bak", inst);
  ASSERT(access(bak, F_OK) != 0);
  close(fd);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A client that sends part of a packet while its batch runs (a header cut
 * short, then nothing) is not waited on for ever once the batch is done:
 * the connection is closed (a protocol error), the session ends, and the
 * instance goes on. */
TEST_IMPL_TIMEOUT(tds_partial_packet_during_batch_closes, 60) {
  pid_t srv = start_tds(20000);
  char bak[4400], clog[4400], mark[4400], envm[4500], sql[600], set[128];
  snprintf(bak, sizeof bak, "%s/b.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/c.log", test_tmpdir());
  snprintf(mark, sizeof mark, "%s/m", test_tmpdir());
  snprintf(envm, sizeof envm, "PIPE_BACKUP_PAUSE_MARK=%s", mark);
  const char *env[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                       "PIPE_BACKUP_PAUSE_MS=1000", envm, NULL};
  snprintf(set, sizeof set, "%s", unique_name("tds"));
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, env);
  int fd;
  ASSERT_EQ(tds_raw_login_fd(port, "sa", PASSWORD, &fd), 1);
  snprintf(sql, sizeof sql, "BACKUP DATABASE app TO VIRTUAL_DEVICE='%s'", set);
  ASSERT_EQ(tds_raw_batch(fd, sql), 0);
  for (int i = 0; i < 2000 && access(mark, F_OK) != 0; i++)
    sleep_ms(5);
  if (access(mark, F_OK) != 0)
    TASK_FAIL_("the backup did not start:\n%s", sql_slurp(ilog));
  ASSERT_EQ(send(fd, "\x06\x01\x00", 3, MSG_NOSIGNAL), 3); /* 3 of 8 */
  int crc = wait_helper_timeout(c, 20000);
  if (crc < 0) kill(c, SIGKILL);
  /* The batch is over; the answer ends, or the connection does, soon. */
  struct timeval tv = {8, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  static uint8_t buf[1 << 20];
  int64_t t0 = now_ms();
  while (tds_raw_reply(fd, buf, sizeof buf) > 0) {
  }
  if (now_ms() - t0 > 7000)
    TASK_FAIL_("the session still waits for the rest of the packet:\n%s",
               sql_slurp(ilog));
  close(fd);
  ASSERT(sql_file_has(ilog, "the client broke the protocol"));
  ASSERT_EQ(tds_raw_login(port, "sa", PASSWORD), 1);
  sql_serve_stop(srv, 10000);
  return 0;
}
