/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds-util.c - helpers of the TDS tests (see test-tds-util.h), moved
 * here from test-tds.c so that test-tds-tls.c and test-tds-auth.c use the
 * same ones.
 */
#include "test-tds-util.h"

#include "task.h"
#include "test-sql-util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
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

void expect_copy_equals_app(long rows) {
  char a[4400], b[4400];
  long ra, rb;
  snprintf(a, sizeof a, "%s/app.db", inst);
  snprintf(b, sizeof b, "%s/copy.db", inst);
  ASSERT_UEQ(sql_digest(b, &rb), sql_digest(a, &ra));
  ASSERT_EQ(rb, rows);
}

/* ---- a raw TDS client ---- */

int tds_raw_connect(int at) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)at);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {20, 0};
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

int tds_raw_send(int fd, uint8_t type, const uint8_t *p, size_t n) {
  uint8_t buf[4096];
  buf[0] = type;
  buf[1] = 1; /* end of message */
  buf[2] = (uint8_t)((n + 8) >> 8);
  buf[3] = (uint8_t)(n + 8);
  buf[4] = buf[5] = buf[7] = 0;
  buf[6] = 1;
  memcpy(buf + 8, p, n);
  return send(fd, buf, n + 8, MSG_NOSIGNAL) == (ssize_t)(n + 8) ? 0 : -1;
}

long tds_raw_reply(int fd, uint8_t *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    uint8_t h[8];
    size_t got = 0;
    while (got < 8) {
      ssize_t k = read(fd, h + got, 8 - got);
      if (k <= 0) return -1;
      got += (size_t)k;
    }
    size_t len = (size_t)h[2] << 8 | h[3];
    if (len < 8 || n + len - 8 > cap) return -1;
    for (got = 0; got < len - 8;) {
      ssize_t k = read(fd, buf + n + got, len - 8 - got);
      if (k <= 0) return -1;
      got += (size_t)k;
    }
    n += len - 8;
    if (h[1] & 1) return (long)n;
  }
}

static size_t put_utf16(uint8_t *p, const char *s, int obfuscate) {
  size_t n = 0;
  for (; *s; s++) {
    uint8_t b[2] = {(uint8_t)*s, 0};
    for (int i = 0; i < 2; i++)
      p[n++] = obfuscate ? (uint8_t)((b[i] << 4 | b[i] >> 4) ^ 0xA5) : b[i];
  }
  return n;
}

int tds_raw_login_fd(int at, const char *user, const char *pw, int *fdp) {
  return tds_raw_login_db_fd(at, user, pw, NULL, fdp);
}

int tds_raw_login_db_fd(int at, const char *user, const char *pw,
                        const char *db, int *fdp) {
  int fd = tds_raw_connect(at);
  *fdp = -1;
  if (fd < 0) return -1;
  static const uint8_t pre[] = {0x00, 0,    11, 0, 6, 0x01, 0, 17, 0,
                                1,    0xFF, 16, 0, 0, 0,    0, 0,  2};
  uint8_t buf[8192];
  int rc = -1;
  if (tds_raw_send(fd, 0x12, pre, sizeof pre) != 0 ||
      tds_raw_reply(fd, buf, sizeof buf) < 0)
    goto out;
  uint8_t l[1024] = {0};
  size_t n = 94;
  uint32_t ver = 0x74000004u, psize = 4096;
  memcpy(l + 4, &ver, 4);
  memcpy(l + 8, &psize, 4);
  size_t uo = n, ul = put_utf16(l + n, user, 0);
  n += ul;
  size_t po = n, pl = put_utf16(l + n, pw, 1);
  n += pl;
  size_t dbo = n, dbl = put_utf16(l + n, db ? db : "", 0);
  n += dbl;
  for (size_t at2 = 36; at2 < 90; at2 += 4) {
    size_t off = at2 == 40 ? uo : at2 == 44 ? po : at2 == 68 ? dbo : n;
    size_t cch = at2 == 40   ? ul / 2
                 : at2 == 44 ? pl / 2
                 : at2 == 68 ? dbl / 2
                             : 0;
    if (at2 == 72) { /* ClientID: 6 bytes, then SSPI's pair at 78 */
      at2 = 74;
      continue;
    }
    l[at2] = (uint8_t)off;
    l[at2 + 1] = (uint8_t)(off >> 8);
    l[at2 + 2] = (uint8_t)cch;
    l[at2 + 3] = (uint8_t)(cch >> 8);
  }
  uint32_t total = (uint32_t)n;
  memcpy(l, &total, 4);
  if (tds_raw_send(fd, 0x10, l, n) != 0) goto out;
  long k = tds_raw_reply(fd, buf, sizeof buf);
  if (k < 8) goto out;
  uint32_t num;
  memcpy(&num, buf + 3, 4);
  if (memchr(buf, 0xAD, (size_t)k) && buf[0] != 0xAA)
    rc = 1;
  else if (buf[0] == 0xAA && num == 18456)
    rc = 0;
out:
  if (rc == 1)
    *fdp = fd;
  else
    close(fd);
  return rc;
}

int tds_raw_login(int at, const char *user, const char *pw) {
  int fd, rc = tds_raw_login_fd(at, user, pw, &fd);
  if (fd >= 0) close(fd);
  return rc;
}

int tds_raw_batch(int fd, const char *sql) {
  uint8_t b[4096];
  /* ALL_HEADERS ([MS-TDS] 2.2.5.3): the transaction descriptor header. */
  static const uint8_t hdrs[22] = {22, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0,
                                   0,  0, 0, 0, 0,  0, 0, 1, 0, 0, 0};
  memcpy(b, hdrs, sizeof hdrs);
  size_t n = sizeof hdrs;
  for (const char *s = sql; *s && n + 2 <= sizeof b - 8; s++) {
    b[n++] = (uint8_t)*s;
    b[n++] = 0;
  }
  return tds_raw_send(fd, 0x01, b, n);
}
