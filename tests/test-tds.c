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

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  pyodbc_cancel_check("");
  sql_serve_stop(srv, 10000);
  return 0;
}
