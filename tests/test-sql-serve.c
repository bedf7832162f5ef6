/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-serve.c - the vdisql instance (`vdisql --serve -S DIR`), real
 * processes each time: statements sent by `vdisql -S DIR` run in the
 * instance and print exactly what a one-shot vdisql prints; one instance
 * per directory; a clean stop (SIGTERM) lets quick statements finish and
 * aborts a stalled virtual-device statement after --stop-timeout, with its
 * message; a client that hangs up cancels its statement; a killed instance
 * leaves nothing in the way; `vdi` backs up and restores through it; other
 * users are refused, and a squatter on the instance's address is not sent
 * a word.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char inst[4200], logp[4300];

static void setup(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(logp, sizeof logp, "%s/instance.log", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
}

static pid_t start_instance(const char *log, const char *stop_timeout) {
  return sql_serve(inst, log,
                   (const char *const[]){"--stop-timeout", stop_timeout, NULL});
}

static void stop_instance(pid_t p) {
  sql_serve_stop(p, 5000);
}

/* The instance's local address (as tools/vdisql/wire.c makes it): an
 * abstract socket named after the instance directory's device and inode. */
static socklen_t instance_addr(struct sockaddr_un *a) {
  struct stat st;
  ASSERT_EQ(stat(inst, &st), 0);
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1,
                   "openvdi-vdisql-%llx-%llx", (unsigned long long)st.st_dev,
                   (unsigned long long)st.st_ino);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* A connection to the instance's local address. */
static int connect_instance(void) {
  struct sockaddr_un a;
  socklen_t al = instance_addr(&a);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT(fd >= 0);
  ASSERT_EQ(connect(fd, (struct sockaddr *)&a, al), 0);
  return fd;
}

static void make_db(const char *name, int rows) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  sql_make_db(p, rows, 4096, 1, (unsigned)rows);
}

TEST_IMPL_TIMEOUT(sql_serve_runs_statements, 30) {
  setup();
  make_db("a", 800);
  pid_t srv = start_instance(logp, "10");
  char *out = NULL;
  ASSERT_EQ(
      sql_q(inst, "BACKUP DATABASE a TO DISK='a.bak' WITH COMPRESSION", &out),
      0);
  ASSERT_NOT_NULL(strstr(out, "BACKUP DATABASE successfully processed"));
  free(out);
  ASSERT(sql_file_has(logp, ": BACKUP DATABASE a TO DISK='a.bak'"));
  /* Errors: the Msg lines and the -b exit status come back. */
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE nosuch TO DISK='n.bak'", &out), 1);
  ASSERT(sql_has_msg(out, 911) && sql_has_msg(out, 3013));
  free(out);
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK=", &out), 1);
  ASSERT(sql_has_msg(out, 102));
  free(out);
  /* Without -b a failed statement still exits 0, as sqlcmd. */
  int rc = sql_vdisql(&out, "-S", inst, "-Q",
                      "BACKUP DATABASE nosuch TO DISK='n.bak'", NULL);
  ASSERT_EQ(rc, 0);
  ASSERT(sql_has_msg(out, 911));
  free(out);
  /* Two script files, GO batches, in one session. */
  char f1[4400], f2[4400];
  snprintf(f1, sizeof f1, "%s/one.sql", test_tmpdir());
  snprintf(f2, sizeof f2, "%s/two.sql", test_tmpdir());
  FILE *f = fopen(f1, "w");
  fputs("RESTORE VERIFYONLY FROM DISK='a.bak'\nGO\n"
        "RESTORE DATABASE b FROM DISK='a.bak'\nGO\n",
        f);
  fclose(f);
  f = fopen(f2, "w");
  fputs("RESTORE FILELISTONLY FROM DISK='a.bak'\n", f);
  fclose(f);
  char both[9000];
  snprintf(both, sizeof both, "%s,%s", f1, f2);
  rc = sql_vdisql(&out, "-b", "-S", inst, "-i", both, NULL);
  if (rc != 0 || !strstr(out, "The backup set on file 1 is valid.") ||
      !strstr(out, "RESTORE DATABASE successfully processed") ||
      !strstr(out, "LogicalName"))
    TASK_FAIL_("exit %d:\n%s", rc, out);
  free(out);
  char b[4400], a[4400];
  snprintf(a, sizeof a, "%s/a.db", inst);
  snprintf(b, sizeof b, "%s/b.db", inst);
  long r1, r2;
  ASSERT_EQ(sql_digest(a, &r1), sql_digest(b, &r2));
  ASSERT_EQ(r2, 800);

  /* The same statement prints the same bytes through the instance and
   * without it. */
  char *remote = NULL, *local = NULL;
  ASSERT_EQ(sql_q(inst, "RESTORE HEADERONLY FROM DISK='a.bak'", &remote), 0);
  stop_instance(srv);
  ASSERT(sql_file_has(logp, "stopped"));
  ASSERT_EQ(sql_q(inst, "RESTORE HEADERONLY FROM DISK='a.bak'", &local), 0);
  ASSERT_STR_EQ(remote, local);
  free(remote);
  free(local);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_serve_one_instance_per_directory, 30) {
  setup();
  make_db("a", 10);
  pid_t srv = start_instance(logp, "10");
  char other[4400], *out = NULL, spelled[4400];
  snprintf(other, sizeof other, "%s/second.log", test_tmpdir());
  /* Another spelling of the same directory meets the same instance. */
  snprintf(spelled, sizeof spelled, "%s/../inst/.", inst);
  int64_t t0 = now_ms();
  int rc = sql_vdisql(&out, "--serve", "-S", spelled, NULL);
  ASSERT_EQ(rc, 1);
  ASSERT_LT(now_ms() - t0, 2000);
  char pid[32];
  snprintf(pid, sizeof pid, "(pid %ld)", (long)srv);
  if (!strstr(out, "already running") || !strstr(out, pid))
    TASK_FAIL_("%s", out);
  free(out);
  /* The first still serves, through either spelling. */
  ASSERT_EQ(sql_q(spelled, "BACKUP DATABASE a TO DISK='x.bak'", NULL), 0);
  ASSERT(sql_file_has(logp, "BACKUP DATABASE a TO DISK='x.bak'"));
  stop_instance(srv);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_serve_killed_instance_leaves_nothing, 30) {
  setup();
  make_db("a", 10);
  pid_t srv = start_instance(logp, "10");
  ASSERT_EQ(kill(srv, SIGKILL), 0);
  ASSERT_EQ(wait_helper(srv), 128 + SIGKILL);
  /* Statements run in the client again at once ... */
  char *out = NULL;
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK='x.bak'", &out), 0);
  free(out);
  /* ... and a new instance starts. */
  char log2[4400];
  snprintf(log2, sizeof log2, "%s/again.log", test_tmpdir());
  srv = start_instance(log2, "10");
  ASSERT_EQ(sql_q(inst, "RESTORE VERIFYONLY FROM DISK='x.bak'", NULL), 0);
  ASSERT(sql_file_has(log2, "RESTORE VERIFYONLY"));
  stop_instance(srv);
  return 0;
}

/* vdi through the instance: the engine side runs in the instance. */
TEST_IMPL_TIMEOUT(sql_serve_vdi_roundtrip, 40) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  app_t_make_db(inst, "src", 20000, 4096, 31);
  pid_t srv = start_instance(logp, "10");
  char bk[4400];
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  app_t_run_ok("backup", NULL,
               ARGS("backup", "src", "--instance", inst, "--to", bk,
                    "--stripes", "3", "--compress", "--quiet"));
  app_t_run_ok("restore", NULL,
               ARGS("restore", "src", "--instance", inst, "--from", bk, "--as",
                    "copy", "--quiet"));
  ASSERT(sql_file_has(logp, ": BACKUP DATABASE [src] TO VIRTUAL_DEVICE="));
  ASSERT(sql_file_has(logp, ": RESTORE DATABASE [copy] FROM VIRTUAL_DEVICE="));
  char d1[64], d2[64], p[4400];
  snprintf(p, sizeof p, "%s/src.db", inst);
  app_t_digest(p, d1, sizeof d1);
  snprintf(p, sizeof p, "%s/copy.db", inst);
  app_t_digest(p, d2, sizeof d2);
  ASSERT_STR_EQ(d1, d2);
  stop_instance(srv);
  return 0;
}

/* A slow vdi backup through the instance; returns vdi's pid once the
 * instance runs its statement. */
static pid_t slow_vdi_backup(const char *bk, const char *vlog) {
  app_t_make_db(inst, "db", 40000, 4096, 32);
  pid_t vdi = app_t_spawn(
      vlog, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=100"),
      ARGS("backup", "db", "--instance", inst, "--to", bk, "--quiet"));
  for (int i = 0; i < 1000 && !sql_file_has(logp, ": BACKUP DATABASE [db]");
       i++)
    sleep_ms(5);
  ASSERT(sql_file_has(logp, ": BACKUP DATABASE [db]"));
  if (!app_t_wait_bytes(bk, 1, 5000)) {
    kill(vdi, SIGKILL);
    TASK_FAIL_("the backup did not start");
  }
  return vdi;
}

TEST_IMPL_TIMEOUT(sql_serve_stop_aborts_stalled_statement, 40) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  pid_t srv = start_instance(logp, "1");
  char bk[4400], vlog[4400];
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  snprintf(vlog, sizeof vlog, "%s/vdi.log", test_tmpdir());
  pid_t vdi = slow_vdi_backup(bk, vlog);
  int64_t t0 = now_ms();
  ASSERT_EQ(kill(srv, SIGTERM), 0);
  int rc = wait_helper_timeout(srv, 6000);
  if (rc < 0) kill(srv, SIGKILL);
  ASSERT_EQ(rc, 0);
  int64_t took = now_ms() - t0;
  ASSERT_GE(took, 900); /* it waited the stop timeout first */
  ASSERT(sql_file_has(logp, "aborted 1 virtual device set"));
  rc = wait_helper_timeout(vdi, 3000);
  if (rc < 0) kill(vdi, SIGKILL);
  ASSERT_GT(rc, 0);
  /* The statement's own messages reached its client. */
  if (!sql_file_has(vlog, "Msg 3013")) TASK_FAIL_("%s", sql_slurp(vlog));
  ASSERT(!app_t_exists(bk, "db.manifest.json"));
  int stripes = 0;
  app_t_count_files(bk, "db.stripe", &stripes);
  ASSERT_EQ(stripes, 0);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_serve_client_hangup_cancels, 40) {
  if (!app_t_engine_ready()) return TEST_SKIP;
  setup();
  pid_t srv = start_instance(logp, "10");
  char bk[4400], vlog[4400];
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  snprintf(vlog, sizeof vlog, "%s/vdi.log", test_tmpdir());
  pid_t vdi = slow_vdi_backup(bk, vlog);
  pid_t fwd = app_t_find_child(vdi, "vdisql");
  ASSERT_GT(fwd, 0);
  ASSERT_EQ(kill(fwd, SIGKILL), 0); /* the instance's client, not the set's */
  int rc = wait_helper_timeout(vdi, 2000);
  if (rc < 0) kill(vdi, SIGKILL);
  ASSERT_GT(rc, 0); /* the set was aborted: vdi ended, and failed */
  ASSERT(sql_file_has(logp, "the client hung up"));
  ASSERT(!app_t_exists(bk, "db.manifest.json"));
  /* The instance goes on serving. */
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE db TO DISK='after.bak'", NULL), 0);
  stop_instance(srv);
  return 0;
}

/* Other users: refused by the instance (Msg 18456); and a process of
 * another user squatting the instance's address is never sent a
 * statement. */
TEST_IMPL_TIMEOUT(sql_serve_other_users, 30) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
    fprintf(stderr, "needs root and setpriv\n");
    return TEST_SKIP;
  }
  ASSERT_EQ(chmod(test_tmpdir(), 0755), 0);
  setup();
  make_db("a", 10);
  pid_t srv = start_instance(logp, "10");
  char out_path[4400];
  snprintf(out_path, sizeof out_path, "%s/nobody.out", test_tmpdir());
  pid_t p = fork();
  if (p == 0) {
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534",
          "--clear-groups", build_path("vdisql"), "-b", "-S", inst, "-Q",
          "BACKUP DATABASE a TO DISK='/tmp/never.bak'", (char *)NULL);
    _exit(127);
  }
  ASSERT_EQ(wait_helper(p), 1);
  if (!sql_file_has(out_path, "Msg 18456"))
    TASK_FAIL_("%s", sql_slurp(out_path));
  ASSERT(sql_file_has(logp, "refused a connection"));
  ASSERT_EQ(sql_fsize("/tmp/never.bak"), -1);
  stop_instance(srv);

  /* The squatter: nobody binds the address before any instance runs. */
  struct stat st;
  ASSERT_EQ(stat(inst, &st), 0);
  char name[108];
  int n =
      snprintf(name, sizeof name, "openvdi-vdisql-%llx-%llx",
               (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  char mark[4400];
  snprintf(mark, sizeof mark, "%s/squat-got", test_tmpdir());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t sq = fork();
  if (sq == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path + 1, name, (size_t)n);
    if (bind(fd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                         (size_t)n)) != 0 ||
        listen(fd, 4) != 0)
      _exit(3);
    (void)!write(ready[1], "r", 1);
    int c = accept(fd, NULL, NULL);
    char buf[64];
    if (c >= 0 && read(c, buf, sizeof buf) > 0) {
      int m = open(mark, O_WRONLY | O_CREAT, 0666);
      if (m >= 0) close(m);
    }
    sleep(5);
    _exit(0);
  }
  char r;
  ASSERT_EQ(read(ready[0], &r, 1), 1);
  char *out = NULL;
  int rc = sql_q(inst, "BACKUP DATABASE a TO DISK='squat.bak'", &out);
  ASSERT_EQ(rc, 1);
  if (!strstr(out, "not run by the instance's owner")) TASK_FAIL_("%s", out);
  free(out);
  kill(sq, SIGKILL);
  wait_helper(sq);
  ASSERT(access(mark, F_OK) != 0); /* not a byte was sent to it */
  char sq_bak[4400];
  snprintf(sq_bak, sizeof sq_bak, "%s/squat.bak", inst);
  ASSERT_EQ(sql_fsize(sq_bak), -1); /* nor was it run here instead */
  return 0;
}

/* The instance reads and writes DISK backups only in its backup
 * directories (by default the instance directory), whatever the spelling:
 * absolute paths, "..", symbolic links out of it; a one-shot vdisql, which
 * acts as its own user, is not confined. */
TEST_IMPL_TIMEOUT(sql_serve_disk_confined, 30) {
  char outside[4400], link[4400], extra[4400], sql[10000], *out = NULL;
  setup();
  make_db("a", 200);
  snprintf(outside, sizeof outside, "%s/outside", test_tmpdir());
  snprintf(extra, sizeof extra, "%s/extra", test_tmpdir());
  snprintf(link, sizeof link, "%s/out-link", inst);
  ASSERT_EQ(mkdir(outside, 0755), 0);
  ASSERT_EQ(mkdir(extra, 0755), 0);
  ASSERT_EQ(symlink(outside, link), 0);
  /* A backup outside, made by the user's own one-shot vdisql. */
  snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s/a.bak'", outside);
  ASSERT_EQ(sql_q(inst, sql, &out), 0);
  free(out);
  pid_t srv = sql_serve_plain(inst, logp, NULL);
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK='in.bak'", &out), 0);
  free(out);
  char refused[2][4500];
  snprintf(refused[0], sizeof refused[0], "%s/b.bak", outside);
  snprintf(refused[1], sizeof refused[1], "%s/../outside/c.bak", inst);
  for (int i = 0; i < 2; i++) {
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s'", refused[i]);
    ASSERT_EQ(sql_q(inst, sql, &out), 1);
    if (!sql_has_msg(out, 3201) || !strstr(out, "Access is denied"))
      TASK_FAIL_("%s:\n%s", sql, out);
    free(out);
  }
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK='out-link/d.bak'", &out), 1);
  ASSERT(strstr(out, "Access is denied"));
  free(out);
  /* Nothing was written outside. */
  const char *names[] = {"b.bak", "c.bak", "d.bak"};
  for (int i = 0; i < 3; i++) {
    char p[4500];
    snprintf(p, sizeof p, "%s/%s", outside, names[i]);
    ASSERT_NE(access(p, F_OK), 0);
  }
  /* Reading is confined too: a file outside is not even opened. */
  snprintf(sql, sizeof sql, "RESTORE HEADERONLY FROM DISK='%s/a.bak'", outside);
  ASSERT_EQ(sql_q(inst, sql, &out), 1);
  ASSERT(strstr(out, "Access is denied"));
  free(out);
  ASSERT_EQ(sql_q(inst, "RESTORE HEADERONLY FROM DISK='out-link/a.bak'", &out),
            1);
  ASSERT(strstr(out, "Access is denied"));
  free(out);
  ASSERT_EQ(sql_q(inst, "RESTORE HEADERONLY FROM DISK='/etc/passwd'", &out), 1);
  ASSERT(strstr(out, "Access is denied"));
  free(out);
  stop_instance(srv);

  /* The operator adds a directory: it is usable, the rest stays shut. */
  const char *args[] = {"--backup-dir", extra, NULL};
  srv = sql_serve_plain(inst, logp, args);
  snprintf(sql, sizeof sql,
           "BACKUP DATABASE a TO DISK='%s/e.bak';"
           "RESTORE DATABASE e FROM DISK='%s/e.bak'",
           extra, extra);
  ASSERT_EQ(sql_q(inst, sql, &out), 0);
  free(out);
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK='in2.bak'", &out), 1);
  ASSERT(strstr(out, "Access is denied"));
  free(out);
  stop_instance(srv);
  /* A directory that does not exist is refused at start. */
  ASSERT_EQ(sql_vdisql(&out, "--serve", "-S", inst, "--backup-dir",
                       "/nonexistent/x", NULL),
            1);
  ASSERT(strstr(out, "--backup-dir: '/nonexistent/x' is not a directory"));
  free(out);
  return 0;
}

/* One frame of the local protocol (wire.h). */
static void send_frame(int fd, char type, const char *data, size_t len) {
  unsigned char h[5] = {(unsigned char)type, (unsigned char)len,
                        (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                        (unsigned char)(len >> 24)};
  ASSERT_EQ(send(fd, h, 5, MSG_NOSIGNAL), 5);
  for (size_t off = 0; off < len;) {
    ssize_t k = send(fd, data + off, len - off, MSG_NOSIGNAL);
    ASSERT_GT(k, 0);
    off += (size_t)k;
  }
}

/* A local client that sends a script with a large answer and never reads
 * it (a `vdisql -S` piped into a pager left open, or stopped) holds its
 * session in a write.  A stop still ends the instance after its
 * --stop-timeout, not never. */
TEST_IMPL_TIMEOUT(sql_serve_stop_with_client_not_reading, 40) {
  setup();
  pid_t srv = start_instance(logp, "1");
  int fd = connect_instance();
  char stmt[400] = "SELECT @@VERSION";
  for (int i = 1; i < 16; i++)
    strcat(stmt, ",@@VERSION");
  strcat(stmt, "\n");
  size_t sl = strlen(stmt);
  char *script = malloc(8000 * sl + 1);
  ASSERT_NOT_NULL(script);
  for (size_t k = 0; k < 8000; k++)
    memcpy(script + k * sl, stmt, sl);
  send_frame(fd, 'H', "1 0", 3);
  send_frame(fd, 'C', "\t", 1);
  send_frame(fd, 'N', "srv", 3);
  send_frame(fd, 'S', script, 8000 * sl);
  send_frame(fd, 'Z', "", 0);
  free(script);
  sleep_ms(1500); /* the instance's writes fill the connection */
  sql_serve_stop_log(srv, 15000, logp);
  close(fd);
  return 0;
}

/* From /proc/PID/status, "Threads:". */
static long threads_of(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Threads:", 8) == 0) v = atol(line + 8);
  if (f) fclose(f);
  return v;
}

/* Anyone on the machine may connect to the instance's abstract socket.
 * A user it refuses, opening connection after connection and trickling a
 * byte into each now and then, gets its refusals, but cannot make the
 * instance hold a thread per connection for as long as it likes: the
 * instance's threads stay bounded, and it serves its own user. */
TEST_IMPL_TIMEOUT(sql_serve_refused_flood_bounded, 40) {
  if (geteuid() != 0) {
    fprintf(stderr, "needs root\n");
    return TEST_SKIP;
  }
  setup();
  make_db("a", 10);
  pid_t srv = start_instance(logp, "2");
  long t0 = threads_of(srv);
  struct sockaddr_un a;
  socklen_t al = instance_addr(&a);
  pid_t p = fork();
  if (p == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    int fds[200];
    for (int i = 0; i < 200; i++) {
      fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
      if (connect(fds[i], (struct sockaddr *)&a, al) != 0) fds[i] = -1;
    }
    for (int round = 0; round < 16; round++) { /* 8 s of trickling */
      for (int i = 0; i < 200; i++)
        if (fds[i] >= 0) (void)!send(fds[i], "H", 1, MSG_NOSIGNAL);
      usleep(500 * 1000);
    }
    _exit(0);
  }
  sleep_ms(5000);
  long t = threads_of(srv);
  /* The instance still serves its own user meanwhile. */
  char *out = NULL;
  ASSERT_EQ(sql_q(inst, "SELECT @@SPID", &out), 0);
  free(out);
  kill(p, SIGKILL);
  wait_helper(p);
  if (t > t0 + 40)
    TASK_FAIL_("threads %ld -> %ld with refused connections open", t0, t);
  stop_instance(srv);
  return 0;
}

/* A local client that connects and never finishes its request (stopped,
 * or hung, between two frames) does not hold the instance's stop: its
 * session ends with the stop, as a TDS connection between batches does. */
TEST_IMPL_TIMEOUT(sql_serve_stop_with_request_unfinished, 40) {
  setup();
  pid_t srv = start_instance(logp, "1");
  int fd = connect_instance();
  send_frame(fd, 'H', "1 0", 3);
  sleep_ms(300);
  sql_serve_stop_log(srv, 10000, logp);
  close(fd);
  return 0;
}
