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

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PYTHON   "/usr/bin/python3" /* Debian's, where python3-pymssql is */
#define PASSWORD "Vdi-Test#7"

static char inst[4200], ilog[4300];
static int port;

/* Start a program with stdin from @p in (or /dev/null), stdout and stderr
 * to @p out, and the extra environment @p env ("K=V", NULL-ended). */
static pid_t run_prog(const char *const *argv, const char *in, const char *out,
                      const char *const *env) {
  fflush(NULL);
  pid_t p = fork();
  ASSERT(p >= 0);
  if (p == 0) {
    int i = open(in ? in : "/dev/null", O_RDONLY);
    int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (i < 0 || o < 0) _exit(126);
    dup2(i, 0);
    dup2(o, 1);
    dup2(o, 2);
    for (int k = 0; env && env[k]; k++)
      putenv((char *)env[k]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return p;
}

static int wait_ok(pid_t p, int ms, const char *what, const char *log) {
  int rc = wait_helper_timeout(p, ms);
  if (rc < 0) kill(p, SIGKILL);
  if (rc != 0) {
    char *t = sql_slurp(log);
    fprintf(stderr, "%s: exit %d\n%s\n", what, rc, t ? t : "");
    free(t);
  }
  return rc;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  fputs(text, f);
  fclose(f);
}

static void need(const char *path) {
  if (access(path, X_OK) != 0)
    TASK_FAIL_("%s is missing: tools/install-deps.sh installs it", path);
}

/* An instance with database app, serving TDS on a free port. */
static pid_t start_tds(int rows) {
  need("/usr/bin/tsql");
  need(PYTHON);
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(ilog, sizeof ilog, "%s/instance.log", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  char db[4400];
  snprintf(db, sizeof db, "%s/app.db", inst);
  sql_make_db(db, rows, 4096, 1, 11);
  setenv("MSSQL_SA_PASSWORD", PASSWORD, 1);
  pid_t p = sql_serve(inst, ilog,
                      (const char *const[]){"--tds", "127.0.0.1:0", NULL});
  unsetenv("MSSQL_SA_PASSWORD");
  char *t = sql_slurp(ilog);
  const char *at = t ? strstr(t, "TDS on 127.0.0.1:") : NULL;
  port = at ? atoi(at + strlen("TDS on 127.0.0.1:")) : 0;
  free(t);
  if (port <= 0) {
    kill(p, SIGKILL);
    TASK_FAIL_("no TDS port in the instance's log");
  }
  return p;
}

/* Start the SDK client @p prog ("pipe_backup") on a new set and wait until
 * it created the set.  Its output goes to @p log. */
static pid_t start_client(const char *prog, const char *set, const char *file,
                          const char *log, const char *const *env) {
  char path[4200];
  snprintf(path, sizeof path, "%s", build_path(prog));
  pid_t c =
      run_prog((const char *const[]){path, set, file, NULL}, NULL, log, env);
  char ready[256];
  snprintf(ready, sizeof ready, "created set %s", set);
  for (int i = 0; i < 2000 && !sql_file_has(log, ready); i++)
    sleep_ms(5);
  if (!sql_file_has(log, ready)) {
    kill(c, SIGKILL);
    TASK_FAIL_("%s did not create its set:\n%s", prog, sql_slurp(log));
  }
  return c;
}

/* Run tsql with @p script on stdin; its output in *out. */
static int tsql(const char *password, const char *script, char **out) {
  char in[4400], o[4400], ps[16];
  snprintf(in, sizeof in, "%s/tsql.in", test_tmpdir());
  snprintf(o, sizeof o, "%s/tsql.out", test_tmpdir());
  snprintf(ps, sizeof ps, "%d", port);
  write_file(in, script);
  unlink(o);
  pid_t p =
      run_prog((const char *const[]){"/usr/bin/tsql", "-H", "127.0.0.1", "-p",
                                     ps, "-U", "sa", "-P", password, NULL},
               in, o, NULL);
  int rc = wait_helper_timeout(p, 30000);
  if (rc < 0) kill(p, SIGKILL);
  *out = sql_slurp(o);
  return rc;
}

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
  char a[4400], b[4400];
  long ra, rb;
  snprintf(a, sizeof a, "%s/app.db", inst);
  snprintf(b, sizeof b, "%s/copy.db", inst);
  ASSERT_UEQ(sql_digest(b, &rb), sql_digest(a, &ra));
  ASSERT_EQ(rb, 3000);

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
  char bak[4400], clog[4400], py[4400], pout[4400], mark[4400], script[9000];
  char env_mark[4500];
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  snprintf(py, sizeof py, "%s/t.py", test_tmpdir());
  snprintf(pout, sizeof pout, "%s/py.out", test_tmpdir());
  snprintf(mark, sizeof mark, "%s/paused", test_tmpdir());
  snprintf(env_mark, sizeof env_mark, "PIPE_BACKUP_PAUSE_MARK=%s", mark);
  const char *set = unique_name("tds");
  const char *env[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                       "PIPE_BACKUP_PAUSE_MS=6000", env_mark, NULL};
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, env);
  snprintf(script, sizeof script,
           "import pyodbc, threading, time, os, glob\n"
           "# The driver by its file: registered in odbcinst.ini or not\n"
           "drv = (glob.glob('/usr/lib/*/odbc/libtdsodbc.so') + "
           "['FreeTDS'])[0]\n"
           "c = pyodbc.connect('DRIVER={' + drv + '};SERVER=127.0.0.1;'\n"
           "                   'PORT=%d;'\n"
           "                   'UID=sa;PWD=%s;TDS_Version=7.4',\n"
           "                   autocommit=True)\n"
           "cur = c.cursor()\n"
           "def cancel():\n"
           "    while not os.path.exists('%s'):\n"
           "        time.sleep(0.01)\n"
           "    cur.cancel()\n"
           "threading.Thread(target=cancel).start()\n"
           "t0 = time.time()\n"
           "try:\n"
           "    cur.execute(\"BACKUP DATABASE app TO VIRTUAL_DEVICE='%s'\")\n"
           "    while cur.nextset():\n"
           "        pass\n"
           "    print('NOT-CANCELLED')\n"
           "except pyodbc.Error as e:\n"
           "    print('CANCELLED', e.args[0])\n"
           "print('SECONDS %%.1f' %% (time.time() - t0))\n"
           "cur.execute('SELECT count(*) FROM msdb.dbo.backupset')\n"
           "print('HISTORY', cur.fetchone()[0])\n",
           port, PASSWORD, mark, set);
  write_file(py, script);
  pid_t p = run_prog((const char *const[]){PYTHON, py, NULL}, NULL, pout, NULL);
  ASSERT_EQ(wait_ok(p, 60000, "python (pyodbc)", pout), 0);
  int crc = wait_helper_timeout(c, 30000);
  if (crc < 0) kill(c, SIGKILL);
  char *out = sql_slurp(pout);
  if (!strstr(out, "CANCELLED") || strstr(out, "NOT-CANCELLED") ||
      !strstr(out, "HISTORY 0"))
    TASK_FAIL_("the cancel did not abort the backup:\n%s", out);
  /* Well before the client's 6 s pause would have ended by itself. */
  const char *s = strstr(out, "SECONDS ");
  ASSERT_NOT_NULL(s);
  ASSERT(atof(s + 8) < 4.0);
  free(out);
  ASSERT_NE(crc, 0); /* the VDI client saw the abort */
  ASSERT(sql_file_has(ilog, "attention (cancel)"));
  sql_serve_stop(srv, 10000);
  return 0;
}
