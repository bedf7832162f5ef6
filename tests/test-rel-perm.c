/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-perm.c - permissions: a process of another user cannot open a
 * set as its server, cannot join it as a secondary client, and cannot
 * disturb it (garbage on the rendezvous socket, silent connections held
 * open, a flood of connections) while the owner's backup runs and
 * completes with every byte right; and a name squatted by another user is
 * refused by the owner's server and secondary (VD_E_SECURITY).
 *
 * The other user is nobody (65534), reached with setpriv as in
 * test-lib-robust.c; the tests skip (77) when not root or without setpriv.
 */
#include "test-rel-fault-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SETPRIV "/usr/bin/setpriv"
#define HOLD    100 /* silent connections the intruder holds */

static int can_switch_user(void) {
  if (geteuid() != 0 || access(SETPRIV, X_OK) != 0) {
    fprintf(stderr, "needs root and setpriv\n");
    return 0;
  }
  return 1;
}

/* Run helper `name` as uid/gid `id` (no supplementary groups); its stdout
 * goes to *out_fd (a pipe we read), if out_fd is given. */
static pid_t spawn_as(int id, int *out_fd, const char *helper, const char *a1,
                      const char *a2) {
  char self[4096], reuid[32], regid[32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  snprintf(reuid, sizeof reuid, "--reuid=%d", id);
  snprintf(regid, sizeof regid, "--regid=%d", id);
  int p[2] = {-1, -1};
  if (out_fd) ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  fflush(NULL);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (out_fd) dup2(p[1], 1);
    execl(SETPRIV, "setpriv", reuid, regid, "--clear-groups", self, "--helper",
          helper, a1, a2, (char *)NULL);
    _exit(127);
  }
  if (out_fd) {
    close(p[1]);
    *out_fd = p[0];
  }
  return pid;
}

/* A line from the helper's stdout within timeout_ms. */
static int read_word(int fd, char *buf, size_t n, int timeout_ms) {
  size_t len = 0;
  int64_t end = now_ms() + timeout_ms;
  while (len + 1 < n) {
    struct pollfd pf = {fd, POLLIN, 0};
    int left = (int)(end - now_ms());
    if (left <= 0 || poll(&pf, 1, left) <= 0) return -1;
    if (read(fd, buf + len, 1) != 1) return -1;
    if (buf[len] == '\n') break;
    len++;
  }
  buf[len] = 0;
  return 0;
}

/* A raw connection to the set's rendezvous socket (the library's naming,
 * docs/PROTOCOL.md: abstract "openvdi:<instance>:<set>"). */
static int raw_connect(const char *set) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "openvdi::%s", set);
  socklen_t len =
      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* argv: set name, milliseconds.  As another user: hold HOLD silent
 * connections, say "ready", then until the time is up keep trying to open
 * the set as a server and as a secondary, and to send garbage.  Prints
 * the counts; exits 0 only if every attempt was refused. */
HELPER_IMPL(rel_perm_intruder) {
  const char *name = argv[1];
  int64_t end = now_ms() + atoi(argv[2]);
  /* Before holding anything: refused with the reason. */
  vdi_srvset_t *s0;
  vdi_set_t *c0;
  if (vdi_srv_new(&s0) != 0 || vdi_set_new(&c0) != 0) return 4;
  int r0 = vdi_srv_open(s0, NULL, name),
      r1 = vdi_set_open_in_secondary(c0, name);
  vdi_srv_free(s0);
  vdi_set_free(c0);
  if (r0 != VD_E_SECURITY || r1 != VD_E_SECURITY) {
    fprintf(stderr, "intruder: Open %s, OpenInSecondary %s\n",
            vdi_error_name(r0), vdi_error_name(r1));
    return 1;
  }
  int held = 0;
  for (int i = 0; i < HOLD; i++)
    if (raw_connect(name) >= 0) held++;
  printf("ready %d\n", held);
  fflush(stdout);
  int srv_refused = 0, sec_refused = 0, garbage_dropped = 0, other = 0;
  while (now_ms() < end) {
    vdi_srvset_t *srv;
    if (vdi_srv_new(&srv) != 0) return 4;
    /* With its own connections held, the owner's side may drop new ones
     * at once (no REJECT to read): refused all the same. */
    int rc = vdi_srv_open(srv, NULL, name);
    if (rc == VD_E_SECURITY || rc == VD_E_ABORT || rc == VD_E_INVALID)
      srv_refused++;
    else {
      fprintf(stderr, "intruder: server Open returned %s\n",
              vdi_error_name(rc));
      other++;
    }
    vdi_srv_free(srv);
    vdi_set_t *sec;
    if (vdi_set_new(&sec) != 0) return 4;
    rc = vdi_set_open_in_secondary(sec, name);
    if (rc == VD_E_SECURITY || rc == VD_E_ABORT || rc == VD_E_PROTOCOL)
      sec_refused++;
    else {
      fprintf(stderr, "intruder: OpenInSecondary returned %s\n",
              vdi_error_name(rc));
      other++;
    }
    vdi_set_free(sec);
    /* Garbage: the owner's side must drop the connection. */
    int fd = raw_connect(name);
    if (fd >= 0) {
      char junk[200];
      for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37 + 11);
      ssize_t w = send(fd, junk, sizeof junk, MSG_NOSIGNAL);
      struct pollfd pf = {fd, POLLIN, 0};
      char b;
      /* Dropped at once (the send finds it closed), or after reading. */
      if (w < 0 || (poll(&pf, 1, 2000) == 1 && recv(fd, &b, 1, 0) <= 0))
        garbage_dropped++;
      else
        other++;
      close(fd);
    }
    sleep_ms(2);
  }
  printf("srv_refused %d sec_refused %d garbage_dropped %d other %d\n",
         srv_refused, sec_refused, garbage_dropped, other);
  fflush(stdout);
  return other == 0 && srv_refused > 0 && sec_refused > 0 ? 0 : 1;
}

TEST_IMPL_TIMEOUT(rel_perm_intruder_cannot_disturb, 30) {
  if (!can_switch_user()) return TEST_SKIP;
  char name[96];
  snprintf(name, sizeof name, "%s", unique_name("perm"));
  vdi_set_t *set;
  VDConfig cfg = lp_cfg(2, VDF_LikePipe);
  ASSERT_RC(vdi_set_new(&set), 0);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  int out;
  pid_t in = spawn_as(65534, &out, "rel_perm_intruder", name, "1500");
  char line[256];
  ASSERT_EQ(read_word(out, line, sizeof line, 5000), 0);
  ASSERT(strncmp(line, "ready", 5) == 0);
  fprintf(stderr, "intruder: %s\n", line);
  /* With the intruder's connections held and its attempts going on, the
   * owner's backups complete, every byte checked. */
  int rounds = 0;
  int64_t end = now_ms() + 1000;
  while (now_ms() < end) {
    lp_peer *srv = lp_spawn("lp_srv");
    rt_full_local_client(set, name, 2, srv);
    lp_end(srv);
    ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
    rounds++;
  }
  int st = wait_helper(in);
  ASSERT_EQ(read_word(out, line, sizeof line, 2000), 0);
  fprintf(stderr, "intruder: %s; owner's backups: %d\n", line, rounds);
  ASSERT_EQ(st, 0);
  ASSERT_GT(rounds, 0);
  close(out);
  vdi_set_free(set);
  return 0;
}

/* argv: set name, "hold": as another user, create the set and keep it
 * until stdin... until killed. */
HELPER_IMPL(rel_perm_squatter) {
  vdi_set_t *set;
  VDConfig cfg = lp_cfg(1, VDF_LikePipe);
  if (vdi_set_new(&set) != 0) return 4;
  int rc = vdi_set_create(set, argv[1], &cfg);
  printf("%s\n", vdi_error_name(rc));
  fflush(stdout);
  if (rc != 0) return 1;
  for (;;)
    pause();
}

/* argv: set name, expected code name: server Open and OpenInSecondary. */
HELPER_IMPL(rel_perm_open_expect) {
  vdi_srvset_t *srv;
  vdi_set_t *sec;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_set_new(&sec), 0);
  int a = vdi_srv_open(srv, NULL, argv[1]);
  int b = vdi_set_open_in_secondary(sec, argv[1]);
  fprintf(stderr, "server Open %s, OpenInSecondary %s\n", vdi_error_name(a),
          vdi_error_name(b));
  ASSERT_STR_EQ(vdi_error_name(a), argv[2]);
  ASSERT_STR_EQ(vdi_error_name(b), argv[2]);
  vdi_srv_free(srv);
  vdi_set_free(sec);
  return 0;
}

TEST_IMPL_TIMEOUT(rel_perm_squatted_name_refused, 20) {
  if (!can_switch_user()) return TEST_SKIP;
  char name[96], line[64];
  snprintf(name, sizeof name, "%s", unique_name("squat"));
  int out;
  pid_t sq = spawn_as(65534, &out, "rel_perm_squatter", name, NULL);
  ASSERT_EQ(read_word(out, line, sizeof line, 5000), 0);
  ASSERT_STR_EQ(line, "NOERROR");
  /* The owner cannot create the set under that name ... */
  vdi_set_t *set;
  VDConfig cfg = lp_cfg(1, VDF_LikePipe);
  ASSERT_RC(vdi_set_new(&set), 0);
  ASSERT_RC(vdi_set_create(set, name, &cfg), VD_E_BUSY);
  /* ... and its server and secondary refuse the squatter's set, as root
   * (this process) and as an unprivileged owner (uid 65533). */
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, name), VD_E_SECURITY);
  vdi_set_t *sec;
  ASSERT_RC(vdi_set_new(&sec), 0);
  ASSERT_RC(vdi_set_open_in_secondary(sec, name), VD_E_SECURITY);
  pid_t o =
      spawn_as(65533, NULL, "rel_perm_open_expect", name, "VD_E_SECURITY");
  ASSERT_EQ(wait_helper(o), 0);
  /* The refused objects are reusable: once the squatter is gone the name
   * is the owner's, and a backup goes through. */
  kill(sq, SIGKILL);
  ASSERT_EQ(wait_helper(sq), 128 + SIGKILL);
  close(out);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  lp_peer *p = lp_spawn("lp_srv");
  rt_full_local_client(set, name, 1, p);
  lp_end(p);
  vdi_set_free(set);
  vdi_set_free(sec);
  vdi_srv_free(srv);
  return 0;
}
