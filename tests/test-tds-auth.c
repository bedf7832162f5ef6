/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds-auth.c - SQL authentication of the TDS endpoint: the logins
 * file (`vdisql -S DIR --add-login NAME`, PBKDF2 hashes, mode 0600) next
 * to sa's MSSQL_SA_PASSWORD, the one answer a failed login gets (Msg
 * 18456), and a flood of logins, wrong or never finished, from many
 * connections at once: the instance's threads and memory stay bounded,
 * and the right password gets in, during the flood and after it.
 */
#include "task.h"
#include "test-sql-util.h"
#include "test-tds-util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* `vdisql -S inst --add-login NAME`, the password on stdin, or from the
 * environment when @p via_env. */
static int add_login(const char *name, const char *pw, int via_env) {
  char in[4400], log[4400], env[300];
  snprintf(in, sizeof in, "%s/pw.in", test_tmpdir());
  snprintf(log, sizeof log, "%s/add-login.log", test_tmpdir());
  snprintf(env, sizeof env, "VDISQL_LOGIN_PASSWORD=%s", pw);
  char line[300];
  snprintf(line, sizeof line, "%s\n", pw);
  write_file(in, via_env ? "" : line);
  pid_t p =
      run_prog((const char *const[]){build_path("vdisql"), "-S", inst,
                                     "--add-login", name, NULL},
               in, log, via_env ? (const char *const[]){env, NULL} : NULL);
  return wait_ok(p, 30000, "vdisql --add-login", log);
}

/* tsql as @p user: 1 if it ran the SELECT, 0 if the login was refused
 * with Msg 18456 and no other message. */
static int login_ok(const char *user, const char *pw) {
  char *out = NULL;
  tsql_as(port, user, pw, "SELECT 'logged-in-yes'\ngo\nquit\n", &out, NULL);
  int ok = strstr(out, "logged-in-yes") != NULL;
  if (!ok) {
    char want[300];
    snprintf(want, sizeof want, "Login failed for user '%s'.", user);
    const char *m = strstr(out, "Msg ");
    if (!m || strncmp(m, "Msg 18456", 9) != 0 || strstr(m + 4, "Msg ") ||
        !strstr(out, want))
      TASK_FAIL_("%s: not the one Msg 18456:\n%s", user, out);
  }
  free(out);
  return ok;
}

/* Logins from the file: added by stdin or the environment, hashed, 0600;
 * names compare case-insensitively; a wrong password and an unknown name
 * get the same single message; a changed or removed login takes effect
 * at the next connection; a file others could read is not trusted; sa
 * keeps MSSQL_SA_PASSWORD. */
TEST_IMPL_TIMEOUT(tds_auth_logins_file, 120) {
  pid_t srv = start_tds(100);
  ASSERT_EQ(login_ok("bob", "Bob-pw#1"), 0); /* no file yet */
  ASSERT_EQ(add_login("bob", "Bob-pw#1", 0), 0);
  ASSERT_EQ(add_login("carol", "Carol:pw 2", 1), 0);
  char file[4400];
  snprintf(file, sizeof file, "%s/.vdisql/logins", inst);
  struct stat st;
  ASSERT_EQ(stat(file, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  char *text = sql_slurp(file);
  ASSERT_NOT_NULL(strstr(text, "bob:pbkdf2-sha256:"));
  ASSERT_NOT_NULL(strstr(text, "\ncarol:pbkdf2-sha256:"));
  ASSERT_NULL(strstr(text, "Bob-pw#1"));
  ASSERT_NULL(strstr(text, "Carol:pw 2"));
  free(text);

  ASSERT_EQ(login_ok("bob", "Bob-pw#1"), 1);
  ASSERT_EQ(login_ok("BOB", "Bob-pw#1"), 1);
  ASSERT_EQ(login_ok("carol", "Carol:pw 2"), 1);
  ASSERT_EQ(login_ok("bob", "Bob-pw#2"), 0);
  ASSERT_EQ(login_ok("bob", "bob-pw#1"), 0); /* passwords: case matters */
  ASSERT_EQ(login_ok("carol", "Bob-pw#1"), 0);
  ASSERT_EQ(login_ok("mallory", "Bob-pw#1"), 0);
  ASSERT_EQ(login_ok("sa", PASSWORD), 1);
  ASSERT_EQ(login_ok("sa", "Bob-pw#1"), 0);

  /* Changed: the old password is refused, the new one taken. */
  ASSERT_EQ(add_login("bob", "Bob-new#3", 1), 0);
  ASSERT_EQ(login_ok("bob", "Bob-pw#1"), 0);
  ASSERT_EQ(login_ok("bob", "Bob-new#3"), 1);
  /* Removed. */
  char *out = NULL;
  ASSERT_EQ(sql_vdisql(&out, "-S", inst, "--remove-login", "bob", NULL), 0);
  free(out);
  ASSERT_EQ(login_ok("bob", "Bob-new#3"), 0);
  ASSERT_EQ(login_ok("carol", "Carol:pw 2"), 1);

  /* Readable by others: not trusted, said in the log. */
  ASSERT_EQ(chmod(file, 0644), 0);
  ASSERT_EQ(login_ok("carol", "Carol:pw 2"), 0);
  ASSERT(sql_file_has(ilog, "it must be a file of this user with mode 0600"));
  ASSERT_EQ(chmod(file, 0600), 0);
  ASSERT_EQ(login_ok("carol", "Carol:pw 2"), 1);
  /* No password, a bad name: refused with one line. */
  ASSERT_NE(add_login("bad:name", "x", 1), 0);
  ASSERT_NE(add_login("dave", "", 0), 0);
  ASSERT(sql_file_has(ilog, "login failed for user 'mallory'"));
  sql_serve_stop(srv, 10000);
  return 0;
}

/* From /proc/PID/status: "Threads:" or "VmRSS:" (kB). */
static long proc_status(pid_t pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, strlen(field)) == 0)
      v = atol(line + strlen(field));
  if (f) fclose(f);
  return v;
}

#define IDLE     40 /* connections that never finish their login */
#define FLOODERS 6  /* processes sending wrong passwords ... */
#define ATTEMPTS 40 /* ... this many times each */

/* A flood: IDLE connections that never log in and FLOODERS processes
 * sending wrong passwords as fast as answered.  The instance holds at
 * most its cap of logins in progress (threads and memory bounded); the
 * idle connections lose their slots after the login timeout, so the
 * right password gets in while they are still open; no lockout after. */
TEST_IMPL_TIMEOUT(tds_auth_flood_bounded, 150) {
  pid_t srv = start_tds(100);
  ASSERT_EQ(tds_raw_login(port, "sa", PASSWORD), 1);
  ASSERT_EQ(tds_raw_login(port, "sa", "wrong"), 0);
  long threads0 = proc_status(srv, "Threads:");
  long rss0 = proc_status(srv, "VmRSS:");
  ASSERT(threads0 > 0 && rss0 > 0);

  pid_t fl[FLOODERS];
  for (int i = 0; i < FLOODERS; i++) {
    fflush(NULL);
    fl[i] = fork();
    ASSERT(fl[i] >= 0);
    if (fl[i] == 0) {
      int refused = 0;
      for (int k = 0; k < ATTEMPTS; k++) {
        char pw[32];
        snprintf(pw, sizeof pw, "guess-%d-%d", i, k);
        int r = tds_raw_login(port, k % 5 ? "sa" : "nobody", pw);
        if (r == 1) _exit(3); /* a wrong password got in */
        if (r < 0) sleep_ms(20);
        refused += r == 0;
      }
      _exit(refused > 0 ? 0 : 4); /* 4: never even refused */
    }
  }
  sleep_ms(1000);
  int idle[IDLE];
  for (int i = 0; i < IDLE; i++) {
    idle[i] = tds_raw_connect(port);
    if (i % 2 && idle[i] >= 0) /* half of them start a packet, no more */
      (void)!send(idle[i], "\x12", 1, MSG_NOSIGNAL);
  }
  /* The right password, while the flood runs and the idle connections
   * stay open: refused at first (no slot), in after the login timeout. */
  long max_threads = 0, max_rss = 0;
  int in = 0;
  for (int i = 0; i < 400 && !in; i++) {
    long t = proc_status(srv, "Threads:"), r = proc_status(srv, "VmRSS:");
    if (t > max_threads) max_threads = t;
    if (r > max_rss) max_rss = r;
    in = tds_raw_login(port, "sa", PASSWORD) == 1;
    if (!in) sleep_ms(50);
  }
  for (int i = 0; i < FLOODERS; i++) {
    int rc = wait_helper_timeout(fl[i], 60000);
    if (rc < 0) kill(fl[i], SIGKILL);
    ASSERT_EQ(rc, 0);
  }
  if (!in) TASK_FAIL_("the right password never got in during the flood");
  /* The idle ones were closed by the instance (end of file for them). */
  int closed = 0;
  for (int i = 0; i < IDLE; i++) {
    char b;
    ssize_t k = idle[i] >= 0 ? read(idle[i], &b, 1) : 0;
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
      closed++; /* end of file, or reset: not the 20 s receive timeout */
    if (idle[i] >= 0) close(idle[i]);
  }
  ASSERT_EQ(closed, IDLE);
  ASSERT(sql_file_has(ilog, "no login within 10 s; closing"));
  /* 32 logins in progress at most (serve.c), each one thread. */
  if (max_threads > threads0 + 32 + 2 || max_rss > rss0 + 64 * 1024)
    TASK_FAIL_("threads %ld -> %ld, RSS %ld -> %ld kB", threads0, max_threads,
               rss0, max_rss);
  ASSERT(max_threads > threads0); /* the flood did reach it */
  /* No lockout afterwards. */
  ASSERT_EQ(tds_raw_login(port, "sa", PASSWORD), 1);
  ASSERT_EQ(login_ok("sa", PASSWORD), 1);
  ASSERT(sql_file_has(ilog, "login failed for user 'nobody'"));
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A password is compared whole: one longer than the login's, whose UTF-8
 * would not fit the 128 bytes a password has there, is refused, not cut
 * down to the login's and let in.  (tds_raw_login sends each byte of its
 * strings as one UTF-16 unit: "\xE9" is U+00E9, two bytes in UTF-8.) */
TEST_IMPL_TIMEOUT(tds_auth_long_password_not_truncated, 60) {
  pid_t srv = start_tds(10);
  char utf8[200] = "", latin1[80] = "";
  for (int i = 0; i < 64; i++)
    strcat(utf8, "\xC3\xA9");
  memset(latin1, 0xE9, 64);
  ASSERT_EQ(add_login("dave", utf8, 1), 0);
  ASSERT_EQ(tds_raw_login(port, "dave", latin1), 1); /* the password */
  latin1[64] = 'x';                                  /* and one more */
  ASSERT_EQ(tds_raw_login(port, "dave", latin1), 0);
  memset(latin1, 0xE9, 70);
  ASSERT_EQ(tds_raw_login(port, "dave", latin1), 0);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* Before a login, a request is small (PRELOGIN, the TLS handshake's
 * flights, LOGIN7): connections that have not logged in cannot make the
 * instance buffer megabytes each (16 MB is what a logged-in batch may
 * be), so a flood of them, the most the instance lets in, holds little
 * memory. */
TEST_IMPL_TIMEOUT(tds_auth_big_prelogin_bounded, 90) {
  pid_t srv = start_tds(10);
  long rss0 = proc_status(srv, "VmRSS:");
  ASSERT(rss0 > 0);
  enum { CONNS = 24, PACKET = 32000, PACKETS = 300 }; /* 9.6 MB each */
  static uint8_t pkt[PACKET];
  pkt[0] = 0x12; /* PRELOGIN, never its last packet */
  pkt[2] = (uint8_t)(PACKET >> 8);
  pkt[3] = (uint8_t)PACKET;
  int fds[CONNS];
  for (int i = 0; i < CONNS; i++)
    fds[i] = tds_raw_connect(port);
  long max_rss = 0;
  for (int k = 0; k < PACKETS; k++) {
    for (int i = 0; i < CONNS; i++)
      if (fds[i] >= 0 &&
          send(fds[i], pkt, PACKET, MSG_NOSIGNAL | MSG_DONTWAIT) != PACKET) {
        close(fds[i]); /* the instance closed it (or would not take it) */
        fds[i] = -1;
      }
    long r = proc_status(srv, "VmRSS:");
    if (r > max_rss) max_rss = r;
  }
  sleep_ms(500);
  long r = proc_status(srv, "VmRSS:");
  if (r > max_rss) max_rss = r;
  for (int i = 0; i < CONNS; i++)
    if (fds[i] >= 0) close(fds[i]);
  if (max_rss > rss0 + 64 * 1024)
    TASK_FAIL_("RSS %ld -> %ld kB from connections not logged in", rss0,
               max_rss);
  ASSERT_EQ(tds_raw_login(port, "sa", PASSWORD), 1);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* The database a login asks for: one that exists, master, msdb, model or
 * tempdb (as USE takes them, and SQL Server always has) gets the client
 * in; one that does not gets Msg 4060 and 18456. */
TEST_IMPL_TIMEOUT(tds_auth_login_database, 60) {
  pid_t srv = start_tds(10);
  const char *in[] = {"app", "master", "msdb", "model", "tempdb", "TempDB"};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    int fd;
    if (tds_raw_login_db_fd(port, "sa", PASSWORD, in[i], &fd) != 1)
      TASK_FAIL_("login to database %s refused:\n%s", in[i], sql_slurp(ilog));
    close(fd);
  }
  int fd;
  /* Refused (its first message is 4060, not 18456: -1 here). */
  ASSERT_NE(tds_raw_login_db_fd(port, "sa", PASSWORD, "nosuchdb", &fd), 1);
  sql_serve_stop(srv, 10000);
  return 0;
}
