/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds-util.c - helpers of the TDS tests (see test-tds-util.h), moved
 * here from test-tds.c so that test-tds-tls.c and test-tds-auth.c use the
 * same ones.
 */
#include "test-tds-util.h"

#include "task.h"
#include "test-sql-util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char inst[4200], ilog[4300];
int port;

pid_t run_prog(const char *const *argv, const char *in, const char *out,
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

int wait_ok(pid_t p, int ms, const char *what, const char *log) {
  int rc = wait_helper_timeout(p, ms);
  if (rc < 0) kill(p, SIGKILL);
  if (rc != 0) {
    char *t = sql_slurp(log);
    fprintf(stderr, "%s: exit %d\n%s\n", what, rc, t ? t : "");
    free(t);
  }
  return rc;
}

void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  fputs(text, f);
  fclose(f);
}

void need(const char *path) {
  if (access(path, X_OK) != 0)
    TASK_FAIL_("%s is missing: tools/install-deps.sh installs it", path);
}

pid_t start_tds_with(int rows, const char *const *extra) {
  need("/usr/bin/tsql");
  need(PYTHON);
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(ilog, sizeof ilog, "%s/instance.log", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  char db[4400];
  snprintf(db, sizeof db, "%s/app.db", inst);
  sql_make_db(db, rows, 4096, 1, 11);
  const char *args[32] = {"--tds", "127.0.0.1:0"};
  int n = 2;
  for (int i = 0; extra && extra[i] && n < 31; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  setenv("MSSQL_SA_PASSWORD", PASSWORD, 1);
  pid_t p = sql_serve(inst, ilog, args);
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

pid_t start_tds(int rows) {
  return start_tds_with(rows, NULL);
}

pid_t start_client(const char *prog, const char *set, const char *file,
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

int tsql_as(int at, const char *user, const char *password, const char *script,
            char **out, const char *const *env) {
  char in[4400], o[4400], ps[16];
  snprintf(in, sizeof in, "%s/tsql.in", test_tmpdir());
  snprintf(o, sizeof o, "%s/tsql.out", test_tmpdir());
  snprintf(ps, sizeof ps, "%d", at);
  write_file(in, script);
  unlink(o);
  pid_t p =
      run_prog((const char *const[]){"/usr/bin/tsql", "-H", "127.0.0.1", "-p",
                                     ps, "-U", user, "-P", password, NULL},
               in, o, env);
  int rc = wait_helper_timeout(p, 30000);
  if (rc < 0) kill(p, SIGKILL);
  *out = sql_slurp(o);
  return rc;
}

int tsql(const char *password, const char *script, char **out) {
  return tsql_as(port, "sa", password, script, out, NULL);
}

void pyodbc_cancel_check(const char *conn_extra) {
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
           "                   'UID=sa;PWD=%s;TDS_Version=7.4%s',\n"
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
           port, PASSWORD, conn_extra, mark, set);
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
}
