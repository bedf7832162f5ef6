/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds-tls.c - TLS of the TDS endpoint (--tls-cert, --tls-key,
 * --tls-mode) with real clients: tsql with `encryption = require` in a
 * freetds.conf, pymssql, pyodbc with the FreeTDS ODBC driver, each running
 * a SELECT and a BACKUP to a virtual device that an SDK-style client
 * services.  The clients talk through a relay of the test's own that
 * writes down every byte crossing it, so the tests see what an
 * eavesdropper would: nothing of the statements, results or password
 * when encrypted, all of it (the control) when not.  The certificate is
 * made by the openssl CLI at test time.
 */
#include "task.h"
#include "test-sql-util.h"
#include "test-tds-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CANARY "c4n4ry-9f2e-tls"

static char cert[4400], key[4400];

/* A self-signed certificate for @p cn and its key (EC P-256: quick to
 * make) into @p crt and @p k. */
static void make_cert_as(const char *crt, const char *k, const char *cn) {
  need("/usr/bin/openssl");
  char log[4400], subj[100];
  snprintf(log, sizeof log, "%s/openssl.log", test_tmpdir());
  snprintf(subj, sizeof subj, "/CN=%s", cn);
  pid_t p = run_prog((const char *const[]){"/usr/bin/openssl", "req", "-x509",
                                           "-newkey", "ec", "-pkeyopt",
                                           "ec_paramgen_curve:prime256v1",
                                           "-nodes", "-keyout", k, "-out", crt,
                                           "-days", "2", "-subj", subj, NULL},
                     NULL, log, NULL);
  ASSERT_EQ(wait_ok(p, 20000, "openssl req", log), 0);
}

static void make_cert(void) {
  snprintf(cert, sizeof cert, "%s/cert.pem", test_tmpdir());
  snprintf(key, sizeof key, "%s/key.pem", test_tmpdir());
  make_cert_as(cert, key, "localhost");
}

/* An instance with a new certificate, in --tls-mode @p mode. */
static pid_t start_tls(int rows, const char *mode) {
  make_cert();
  return start_tds_with(rows,
                        (const char *const[]){"--tls-cert", cert, "--tls-key",
                                              key, "--tls-mode", mode, NULL});
}

/* A freetds.conf whose [global] sets `encryption = @p level`; the "K=V"
 * for the environment in @p env. */
static void freetds_conf(const char *level, char *env, size_t n) {
  char path[4400], text[200];
  snprintf(path, sizeof path, "%s/freetds-%s.conf", test_tmpdir(), level);
  snprintf(text, sizeof text, "[global]\n\tencryption = %s\n", level);
  write_file(path, text);
  snprintf(env, n, "FREETDSCONF=%s", path);
}

/* The relay: a process that accepts on a free port of 127.0.0.1 and joins
 * each connection to the instance's port, appending every byte that
 * crosses, either way, to @p capture.  Its port in *at. */
static void relay_conn(int a, int to, int cap) {
  int b = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)to);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof sa) != 0) _exit(1);
  char buf[65536];
  for (;;) {
    struct pollfd pf[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    if (poll(pf, 2, -1) < 0) _exit(1);
    for (int i = 0; i < 2; i++) {
      if (!pf[i].revents) continue;
      ssize_t k = read(pf[i].fd, buf, sizeof buf);
      if (k <= 0) _exit(0);
      if (write(cap, buf, (size_t)k) != k) _exit(1);
      int other = i ? a : b;
      for (ssize_t off = 0; off < k;) {
        ssize_t w = write(other, buf + off, (size_t)(k - off));
        if (w <= 0) _exit(0);
        off += w;
      }
    }
  }
}

static pid_t start_relay(int to, const char *capture, int *at) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  ASSERT(l >= 0);
  ASSERT_EQ(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
  ASSERT_EQ(listen(l, 16), 0);
  ASSERT_EQ(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
  *at = ntohs(sa.sin_port);
  fflush(NULL);
  pid_t p = fork();
  ASSERT(p >= 0);
  if (p == 0) {
    signal(SIGCHLD, SIG_IGN); /* the connections' processes reap themselves */
    int cap = open(capture, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (cap < 0) _exit(1);
    for (;;) {
      int a = accept(l, NULL, NULL);
      if (a < 0) {
        if (errno == EINTR) continue;
        _exit(1);
      }
      pid_t c = fork();
      if (c == 0) relay_conn(a, to, cap);
      close(a);
    }
  }
  close(l);
  return p;
}

static void stop_relay(pid_t p) {
  kill(p, SIGKILL);
  wait_helper_timeout(p, 5000);
}

/* Whether @p hay (@p n bytes) holds @p text as ASCII or as UTF-16LE. */
static int holds_text(const char *hay, size_t n, const char *text) {
  size_t k = strlen(text);
  char u[512];
  for (size_t i = 0; i < k; i++) {
    u[2 * i] = text[i];
    u[2 * i + 1] = 0;
  }
  return memmem(hay, n, text, k) || memmem(hay, n, u, 2 * k);
}

/* Whether it holds @p pw the way LOGIN7 carries it: UTF-16LE, each byte's
 * nibbles swapped, then XOR 0xA5 ([MS-TDS] 2.2.6.4). */
static int holds_login_password(const char *hay, size_t n, const char *pw) {
  size_t k = strlen(pw);
  unsigned char u[512];
  for (size_t i = 0; i < 2 * k; i++) {
    unsigned char b = i % 2 ? 0 : (unsigned char)pw[i / 2];
    u[i] = (unsigned char)((b << 4 | b >> 4) ^ 0xA5);
  }
  return memmem(hay, n, u, 2 * k) != NULL;
}

static char *capture_of(const char *path, size_t *n) {
  int64_t sz = sql_fsize(path);
  char *t = sql_slurp(path);
  ASSERT_NOT_NULL(t);
  *n = sz > 0 ? (size_t)sz : 0;
  return t;
}

/* What the relay wrote in @p path: at least @p min bytes, and none of the
 * texts the clients sent or got back, nor the password as LOGIN7 has it. */
static void expect_sealed(const char *path, size_t min) {
  size_t n;
  char *c = capture_of(path, &n);
  if (n < min || holds_text(c, n, CANARY) ||
      holds_text(c, n, "BACKUP DATABASE") ||
      holds_text(c, n, "percent processed") || holds_text(c, n, "backupset") ||
      holds_login_password(c, n, PASSWORD))
    TASK_FAIL_("%s: %zu bytes, and readable text in them", path, n);
  free(c);
}

/* A backup to a virtual device through tsql, under @p env, at @p at. */
static char *tsql_backup(int at, const char *const *env) {
  char bak[4400], clog[4400], sql[600], *out = NULL;
  snprintf(bak, sizeof bak, "%s/app.vdi", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  unlink(bak);
  const char *set = unique_name("tls");
  pid_t c = start_client("cxx/pipe_backup", set, bak, clog, NULL);
  snprintf(sql, sizeof sql,
           "SELECT '" CANARY "'\ngo\n"
           "BACKUP DATABASE [app] TO VIRTUAL_DEVICE='%s' WITH CHECKSUM, "
           "STATS=25\ngo\nquit\n",
           set);
  ASSERT_EQ(tsql_as(at, "sa", PASSWORD, sql, &out, env), 0);
  ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
  if (!strstr(out, CANARY) || !strstr(out, "25 percent processed.") ||
      !strstr(out, "BACKUP DATABASE successfully processed"))
    TASK_FAIL_("tsql did not get the SELECT and the backup:\n%s", out);
  ASSERT(sql_fsize(bak) > 0);
  return out;
}

/* tsql with `encryption = require`: TLS from the handshake on, and the
 * relay saw none of the statements, the result or the password.  The
 * controls through the same relay: `encryption = off` (all plain), and
 * the default `request`, which the server answers ENCRYPT_OFF: only the
 * login is encrypted. */
TEST_IMPL_TIMEOUT(tds_tls_tsql_require, 120) {
  pid_t srv = start_tls(2000, "on");
  ASSERT(sql_file_has(ilog, "(TLS offered)"));
  char cap[4400], env[4500];
  snprintf(cap, sizeof cap, "%s/require.cap", test_tmpdir());
  int at;
  pid_t relay = start_relay(port, cap, &at);
  freetds_conf("require", env, sizeof env);
  free(tsql_backup(at, (const char *const[]){env, NULL}));
  ASSERT(sql_file_has(ilog, "TLS (TLSv1.2 "));
  expect_sealed(cap, 1000);
  stop_relay(relay);

  /* encryption = off: the client says ENCRYPT_NOT_SUP, all plain. */
  snprintf(cap, sizeof cap, "%s/off.cap", test_tmpdir());
  relay = start_relay(port, cap, &at);
  freetds_conf("off", env, sizeof env);
  free(tsql_backup(at, (const char *const[]){env, NULL}));
  size_t n;
  char *c = capture_of(cap, &n);
  ASSERT(holds_text(c, n, CANARY));
  ASSERT(holds_text(c, n, "BACKUP DATABASE"));
  ASSERT(holds_login_password(c, n, PASSWORD));
  free(c);
  stop_relay(relay);

  /* request: ENCRYPT_OFF, the LOGIN7 message (the password) in TLS, the
   * rest plain, as [MS-TDS] describes it. */
  snprintf(cap, sizeof cap, "%s/request.cap", test_tmpdir());
  relay = start_relay(port, cap, &at);
  freetds_conf("request", env, sizeof env);
  free(tsql_backup(at, (const char *const[]){env, NULL}));
  ASSERT(sql_file_has(ilog, "for the login only"));
  c = capture_of(cap, &n);
  ASSERT(holds_text(c, n, CANARY));
  ASSERT(!holds_login_password(c, n, PASSWORD));
  free(c);
  stop_relay(relay);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* --tls-mode required: pymssql (encryption from freetds.conf) and pyodbc
 * + FreeTDS ODBC (Encryption=require in the connection string) run a
 * SELECT and a backup to a virtual device, all encrypted; a client at its
 * default (request) is made to encrypt everything too (ENCRYPT_REQ); a
 * client that cannot encrypt (encryption = off) is refused. */
TEST_IMPL_TIMEOUT(tds_tls_python_required, 150) {
  pid_t srv = start_tls(2000, "required");
  ASSERT(sql_file_has(ilog, "(TLS required)"));
  char cap[4400], env[4500], py[4400], pout[4400], clog[4400], bak[4400];
  char script[6000];
  snprintf(cap, sizeof cap, "%s/py.cap", test_tmpdir());
  snprintf(py, sizeof py, "%s/t.py", test_tmpdir());
  snprintf(clog, sizeof clog, "%s/client.log", test_tmpdir());
  int at;
  pid_t relay = start_relay(port, cap, &at);
  freetds_conf("require", env, sizeof env);
  char head[2][1000];
  snprintf(head[0], sizeof head[0],
           "import pymssql\n"
           "c = pymssql.connect(server='127.0.0.1', port=%d, user='sa',\n"
           "                    password='%s', autocommit=True)\n",
           at, PASSWORD);
  snprintf(head[1], sizeof head[1],
           "import pyodbc, glob\n"
           "drv = (glob.glob('/usr/lib/*/odbc/libtdsodbc.so') + "
           "['FreeTDS'])[0]\n"
           "c = pyodbc.connect('DRIVER={' + drv + '};SERVER=127.0.0.1;'\n"
           "                   'PORT=%d;UID=sa;PWD=%s;TDS_Version=7.4;'\n"
           "                   'Encryption=require', autocommit=True)\n",
           at, PASSWORD);
  for (int i = 0; i < 2; i++) {
    snprintf(bak, sizeof bak, "%s/app%d.vdi", test_tmpdir(), i);
    snprintf(pout, sizeof pout, "%s/py%d.out", test_tmpdir(), i);
    const char *set = unique_name("tls");
    pid_t c = start_client("cxx/pipe_backup", set, bak, clog, NULL);
    snprintf(script, sizeof script,
             "%s"
             "cur = c.cursor()\n"
             "cur.execute(\"SELECT '" CANARY "'\")\n"
             "print('ROW', cur.fetchall()[0][0])\n"
             "cur.execute(\"BACKUP DATABASE app TO VIRTUAL_DEVICE='%s' "
             "WITH STATS=25\")\n"
             "while cur.nextset():\n"
             "    pass\n"
             "cur.execute('SELECT count(*) FROM msdb.dbo.backupset')\n"
             "print('HISTORY', cur.fetchone()[0])\n",
             head[i], set);
    write_file(py, script);
    pid_t p = run_prog((const char *const[]){PYTHON, py, NULL}, NULL, pout,
                       (const char *const[]){env, NULL});
    ASSERT_EQ(wait_ok(p, 60000, i ? "pyodbc" : "pymssql", pout), 0);
    ASSERT_EQ(wait_ok(c, 20000, "pipe_backup", clog), 0);
    char *out = sql_slurp(pout);
    char want[32];
    snprintf(want, sizeof want, "HISTORY %d", i + 1);
    if (!strstr(out, "ROW " CANARY) || !strstr(out, want))
      TASK_FAIL_("%s:\n%s", i ? "pyodbc" : "pymssql", out);
    free(out);
  }
  expect_sealed(cap, 1000);

  /* tsql at its default (request): made to encrypt all of it. */
  char *out = NULL;
  ASSERT_EQ(truncate(cap, 0), 0);
  freetds_conf("request", env, sizeof env);
  ASSERT_EQ(tsql_as(at, "sa", PASSWORD, "SELECT '" CANARY "'\ngo\nquit\n", &out,
                    (const char *const[]){env, NULL}),
            0);
  ASSERT_NOT_NULL(strstr(out, CANARY));
  free(out);
  expect_sealed(cap, 100);

  /* encryption = off: the client cannot encrypt; refused, nothing runs. */
  freetds_conf("off", env, sizeof env);
  tsql_as(at, "sa", PASSWORD, "SELECT '" CANARY "'\ngo\nquit\n", &out,
          (const char *const[]){env, NULL});
  ASSERT_NULL(strstr(out, CANARY));
  free(out);
  ASSERT(sql_file_has(ilog, "the client cannot encrypt"));
  stop_relay(relay);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* No certificate: a client that requires encryption fails cleanly (the
 * server answers ENCRYPT_NOT_SUP, the client ends the connection), and
 * the instance goes on serving the others. */
TEST_IMPL_TIMEOUT(tds_tls_required_without_cert, 60) {
  pid_t srv = start_tds(100);
  char env[4500], *out = NULL;
  freetds_conf("require", env, sizeof env);
  int rc = tsql_as(port, "sa", PASSWORD, "SELECT '" CANARY "'\ngo\nquit\n",
                   &out, (const char *const[]){env, NULL});
  ASSERT_NE(rc, 0);
  ASSERT_NULL(strstr(out, CANARY));
  free(out);
  for (int i = 0; i < 200 && !sql_file_has(ilog, "requires encryption"); i++)
    sleep_ms(10);
  ASSERT(sql_file_has(ilog, "the client requires encryption, which this "
                            "instance does not offer"));
  ASSERT_EQ(tsql(PASSWORD, "SELECT '" CANARY "'\ngo\nquit\n", &out), 0);
  ASSERT_NOT_NULL(strstr(out, CANARY));
  free(out);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A certificate or key that cannot be used stops the start with one line;
 * so do options that make no sense together. */
TEST_IMPL_TIMEOUT(tds_tls_bad_cert_refused, 60) {
  make_cert();
  char dir[4400], other[4400], otherkey[4400], none[4400];
  snprintf(dir, sizeof dir, "%s/inst", test_tmpdir());
  snprintf(none, sizeof none, "%s/missing.pem", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0755), 0);
  /* A second key: the certificate's key it is not. */
  snprintf(otherkey, sizeof otherkey, "%s/other-key.pem", test_tmpdir());
  snprintf(other, sizeof other, "%s/other-cert.pem", test_tmpdir());
  make_cert_as(other, otherkey, "other");
  struct {
    const char *a[12];
    const char *says;
  } cases[] = {
      {{"--serve", "-S", dir, "--tds", "127.0.0.1:0", "--tls-cert", none,
        "--tls-key", key, NULL},
       "--tls-cert '"},
      {{"--serve", "-S", dir, "--tds", "127.0.0.1:0", "--tls-cert", cert,
        "--tls-key", otherkey, NULL},
       "is not the key of the certificate"},
      {{"--serve", "-S", dir, "--tds", "127.0.0.1:0", "--tls-cert", key,
        "--tls-key", key, NULL},
       "not a PEM certificate"},
      {{"--serve", "-S", dir, "--tds", "127.0.0.1:0", "--tls-mode", "required",
        NULL},
       "--tls-mode required: needs --tls-cert"},
      {{"--serve", "-S", dir, "--tds", "127.0.0.1:0", "--tls-cert", cert,
        "--tls-mode", "sometimes", NULL},
       "--tls-mode 'sometimes'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    const char *const *a = cases[i].a;
    int rc = sql_vdisql(&out, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                        a[8], a[9], NULL);
    if (rc != 1 || !strstr(out, cases[i].says) || strstr(out, "ready") ||
        strchr(out, '\n') != out + strlen(out) - 1)
      TASK_FAIL_("case %zu: exit %d, wanted one line with '%s':\n%s", i, rc,
                 cases[i].says, out);
    free(out);
  }
  return 0;
}

/* Over TLS the reply is written while the watcher reads the client's
 * attention (two threads, one TLS session): pyodbc with encryption
 * cancels a running backup; it is aborted, and the connection, still
 * encrypted, goes on working. */
TEST_IMPL_TIMEOUT(tds_tls_pyodbc_cancel, 90) {
  pid_t srv = start_tls(20000, "required");
  pyodbc_cancel_check(";Encryption=require");
  ASSERT(sql_file_has(ilog, "TLS (TLSv1.2 "));
  sql_serve_stop(srv, 10000);
  return 0;
}
