/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds-clients.c - the whole workflow of issue 10, client by client,
 * for the Python drivers (pymssql; pyodbc with FreeTDS ODBC): a wrong
 * password is refused with Msg 18456; a BACKUP to a virtual device that an
 * SDK-style client (tests/cxx/pipe_backup) services, with its STATS
 * progress; a RESTORE from the stored stream (pipe_restore) into another
 * database that holds the same rows; and a cancel (Attention) in the
 * middle of a backup, which aborts it and records nothing.  tsql's part is
 * in test-tds.c (it has no cancel: it reads a script).
 */
#include "task.h"
#include "test-sql-util.h"
#include "test-tds-util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One step of the workflow in Python, for driver argv[1]:
 *   refuse | backup SET | restore SET | cancel SET MARK
 * Prints what it saw, one fact a line. */
static const char driver_py[] =
    "import sys, time, os, glob, threading\n"
    "drv, step, port, pw = sys.argv[1], sys.argv[2], int(sys.argv[3]), "
    "sys.argv[4]\n"
    "args = sys.argv[5:]\n"
    "msgs = []\n"
    "def connect(password):\n"
    "    if drv == 'pymssql':\n"
    "        import pymssql\n"
    "        c = pymssql.connect(server='127.0.0.1', port=port, user='sa',\n"
    "                            password=password, autocommit=True,\n"
    "                            login_timeout=10)\n"
    "        def h(st, sev, srv, proc, line, text):\n"
    "            msgs.append((time.time(), text.decode()))\n"
    "        c._conn.set_msghandler(h)\n"
    "        return c\n"
    "    import pyodbc\n"
    "    so = (glob.glob('/usr/lib/*/odbc/libtdsodbc.so') + ['FreeTDS'])[0]\n"
    "    return pyodbc.connect('DRIVER={%s};SERVER=127.0.0.1;PORT=%d;UID=sa;'\n"
    "                          'PWD=%s;TDS_Version=7.4' % (so, port, "
    "password),\n"
    "                          autocommit=True)\n"
    "def errors():\n"
    "    if drv == 'pymssql':\n"
    "        import pymssql; return pymssql.Error\n"
    "    import pyodbc; return pyodbc.Error\n"
    "def run(cur, sql):\n"
    "    cur.execute(sql)\n"
    "    if drv == 'pyodbc':\n"
    "        while True:\n"
    "            msgs.extend((time.time(), m[1]) for m in cur.messages)\n"
    "            if not cur.nextset(): break\n"
    "if step == 'refuse':\n"
    "    try:\n"
    "        connect('not-the-password'); print('ACCEPTED')\n"
    "    except errors() as e:\n"
    "        print('REFUSED', '18456' in str(e))\n"
    "    sys.exit(0)\n"
    "c = connect(pw)\n"
    "cur = c.cursor()\n"
    "if step == 'backup':\n"
    "    run(cur, \"BACKUP DATABASE app TO VIRTUAL_DEVICE='%s' \"\n"
    "             \"WITH CHECKSUM, STATS=10\" % args[0])\n"
    "    end = time.time()\n"
    "    prog = [t for t, m in msgs if 'percent processed' in m]\n"
    "    print('PROGRESS', len(prog))\n"
    "    print('DONE', any('BACKUP DATABASE successfully' in m for t, m in "
    "msgs))\n"
    "    print('LEAD %.2f' % (end - prog[0] if prog else -1))\n"
    "elif step == 'restore':\n"
    "    run(cur, \"RESTORE DATABASE copy FROM VIRTUAL_DEVICE='%s'\" % "
    "args[0])\n"
    "    print('DONE', any('RESTORE DATABASE successfully' in m for t, m in "
    "msgs))\n"
    "elif step == 'cancel':\n"
    "    def cancel():\n"
    "        while not os.path.exists(args[1]): time.sleep(0.01)\n"
    "        if drv == 'pymssql': c._conn.cancel()\n"
    "        else: cur.cancel()\n"
    "    threading.Thread(target=cancel).start()\n"
    "    t0 = time.time()\n"
    "    try:\n"
    "        run(cur, \"BACKUP DATABASE app TO VIRTUAL_DEVICE='%s'\" % "
    "args[0])\n"
    "        print('NOT-CANCELLED')\n"
    "    except errors() as e:\n"
    "        print('CANCELLED')\n"
    "    print('SECONDS %.1f' % (time.time() - t0))\n"
    "    cur.execute('SELECT count(*) FROM msdb.dbo.backupset')\n"
    "    print('HISTORY', cur.fetchone()[0])\n";

/* Run one step; its output (checked by the caller) in *out. */
static void step(const char *drv, const char *what, const char *a1,
                 const char *a2, char **out) {
  char py[4400], o[4400], ps[16];
  snprintf(py, sizeof py, "%s/driver.py", test_tmpdir());
  snprintf(o, sizeof o, "%s/%s-%s.out", test_tmpdir(), drv, what);
  snprintf(ps, sizeof ps, "%d", port);
  write_file(py, driver_py);
  pid_t p = run_prog(
      (const char *const[]){PYTHON, py, drv, what, ps, PASSWORD, a1, a2, NULL},
      NULL, o, NULL);
  ASSERT_EQ(wait_ok(p, 60000, what, o), 0);
  *out = sql_slurp(o);
}

static void expect(const char *out, const char *what, const char *drv) {
  if (!strstr(out, what)) TASK_FAIL_("%s: no '%s' in:\n%s", drv, what, out);
}

static void workflow(const char *drv) {
  pid_t srv = start_tds(20000);
  char bak[4400], clog[4400], mark[4400], envm[4500], *out = NULL;
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());

  step(drv, "refuse", NULL, NULL, &out);
  expect(out, "REFUSED True", drv);
  free(out);

  /* The device holds the stream 1.5 s at 1 MB: progress must reach the
   * application that long before the statement ends (pymssql hands each
   * message over as it comes; pyodbc only after the statement, so for it
   * the messages must be there, and the lead is not measured). */
  char set[128];
  snprintf(set, sizeof set, "%s", unique_name("tds"));
  const char *slow[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                        "PIPE_BACKUP_PAUSE_MS=1500", NULL};
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, slow);
  step(drv, "backup", set, NULL, &out);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  expect(out, "DONE True", drv);
  const char *pg = strstr(out, "PROGRESS ");
  ASSERT(pg && atoi(pg + 9) >= 5);
  if (strcmp(drv, "pymssql") == 0) {
    const char *lead = strstr(out, "LEAD ");
    if (!lead || atof(lead + 5) < 0.7)
      TASK_FAIL_("progress came too late:\n%s", out);
  }
  free(out);

  snprintf(set, sizeof set, "%s", unique_name("tds"));
  c = start_client("cxx/pipe_restore", set, bak, clog, NULL);
  step(drv, "restore", set, NULL, &out);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_restore", clog), 0);
  expect(out, "DONE True", drv);
  free(out);
  expect_copy_equals_app(20000);

  /* A cancel while the device holds the stream for 6 s. */
  snprintf(set, sizeof set, "%s", unique_name("tds"));
  snprintf(mark, sizeof mark, "%s/paused", test_tmpdir());
  snprintf(envm, sizeof envm, "PIPE_BACKUP_PAUSE_MARK=%s", mark);
  const char *held[] = {"PIPE_BACKUP_PAUSE_AT=1000000",
                        "PIPE_BACKUP_PAUSE_MS=6000", envm, NULL};
  c = start_client("cxx/pipe_backup", set, bak, clog, held);
  step(drv, "cancel", set, mark, &out);
  int crc = wait_helper_timeout(c, 30000);
  if (crc < 0) kill(c, SIGKILL);
  expect(out, "CANCELLED", drv);
  if (strstr(out, "NOT-CANCELLED")) TASK_FAIL_("%s:\n%s", drv, out);
  /* One backup recorded: the first; the cancelled one is not. */
  expect(out, "HISTORY 1", drv);
  const char *s = strstr(out, "SECONDS ");
  ASSERT(s && atof(s + 8) < 4.0);
  free(out);
  ASSERT(crc > 0); /* the device client saw the abort */
  ASSERT(sql_file_has(ilog, "attention (cancel)"));
  sql_serve_stop(srv, 10000);
}

TEST_IMPL_TIMEOUT(tds_clients_pymssql_workflow, 120) {
  workflow("pymssql");
  return 0;
}

TEST_IMPL_TIMEOUT(tds_clients_pyodbc_workflow, 120) {
  workflow("pyodbc");
  return 0;
}
