/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-robust.c - the core when things go wrong, across two processes:
 * a peer killed with SIGKILL (noticed within 100 ms by forever-waits, and
 * nothing left behind), SignalAbort from either side, a peer scribbling
 * over the shared region, names, timeouts, permissions, secondary clients
 * with buffer handles.
 */
#include "task.h"
#include "lib_util.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct blocked {
  vdi_device_t *dev;
  int rc;
  int64_t returned_us;
};

static void *block_get(void *arg) {
  struct blocked *b = arg;
  VDC_Command *cmd;
  b->rc = vdi_dev_get_command(b->dev, -1, &cmd);
  b->returned_us = now_us();
  return NULL;
}

static vdi_set_t *client_create(const char *name, uint32_t ndev) {
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = {0};
  cfg.deviceCount = ndev;
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  return set;
}

static void client_configure(vdi_set_t *set) {
  VDConfig cfg;
  int rc;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT) {
  }
  ASSERT_RC(rc, 0);
}

/* A one-device client set, configured, its device open, and the first
 * thing GetCommand said (a command in *cmd, or the code). */
static int client_first_command(const char *name, vdi_set_t **set,
                                vdi_device_t **dev, VDC_Command **cmd) {
  *set = client_create(name, 1);
  client_configure(*set);
  ASSERT_RC(vdi_set_open_device(*set, name, dev), 0);
  return vdi_dev_get_command(*dev, 5000, cmd);
}

/* argv: name action; action = "die" (SIGKILL itself after 300 ms),
 * "abort" (SignalAbort after 300 ms, then wait for the client to go),
 * "scribble-ring" (garbage in device 0's command tail). */
HELPER_IMPL(lib_server_misbehave) {
  const char *name = argv[1], *action = argv[2];
  vdi_srvdev_t *dev[1];
  vdi_srvset_t *srv = lu_server_setup(name, 1, 65536, dev);
  pthread_t agent;
  lu_start_agent(srv, &agent);
  sleep_ms(300);
  if (strcmp(action, "die") == 0) raise(SIGKILL);
  if (strcmp(action, "abort") == 0) {
    ASSERT_RC(vdi_srv_signal_abort(srv), 0);
    ASSERT_RC(vdi_srv_signal_abort(srv), 0);
    void *r;
    pthread_join(agent, &r);
    ASSERT_RC((int)(intptr_t)r, VD_E_ABORT);
    ASSERT_RC(vdi_srvdev_close_device(dev[0]), VD_E_ABORT);
    vdi_srv_close(srv);
    return 0;
  }
  if (strcmp(action, "scribble-ring") == 0) {
    struct vdi_shm_hdr *h = lu_find_control();
    ASSERT_NOT_NULL(h);
    atomic_store(&lu_dev(h, 0)->cmd_tail, 0xdeadbeefu);
    vdi__wake_all_for_tests(&lu_dev(h, 0)->cmd_seq);
    sleep_ms(2000);
    return 0;
  }
  return 2;
}

static void run_server_death(const char *action, int expect) {
  int fds0 = count_open_fds(), shm0 = lu_devshm_count();
  const char *name = unique_name("death");
  vdi_set_t *set = client_create(name, 1);
  pid_t pid = spawn_helper("lib_server_misbehave", name, action, NULL);
  client_configure(set);
  struct blocked b = {0};
  ASSERT_RC(vdi_set_open_device(set, name, &b.dev), 0);
  pthread_t t;
  pthread_create(&t, NULL, block_get, &b);
  int st = wait_helper(pid);
  int64_t died_us = now_us();
  pthread_join(t, NULL);
  ASSERT_RC(b.rc, expect);
  if (strcmp(action, "die") == 0) {
    ASSERT_EQ(st, 128 + SIGKILL);
    /* Within 100 ms of the reaping, which itself follows the death. */
    ASSERT_LT(b.returned_us - died_us, 100000);
  }
  /* The set is poisoned: every later call returns the same code. */
  VDC_Command *cmd;
  VDConfig cfg;
  ASSERT_RC(vdi_dev_get_command(b.dev, 0, &cmd), expect);
  ASSERT_RC(vdi_set_get_configuration(set, 0, &cfg), expect);
  ASSERT_RC(vdi_set_close(set), 0);
  vdi_set_free(set);
  /* Nothing left behind: descriptors, /dev/shm, the name itself. */
  ASSERT_EQ(count_open_fds(), fds0);
  ASSERT_EQ(lu_devshm_count(), shm0);
  vdi_set_t *again = client_create(name, 1);
  vdi_set_free(again);
}

TEST_IMPL(lib_death_server_wakes_client) {
  run_server_death("die", VD_E_ABORT);
  return 0;
}

TEST_IMPL(lib_abort_server_wakes_client) {
  run_server_death("abort", VD_E_ABORT);
  return 0;
}

TEST_IMPL(lib_scribble_ring_is_protocol_error) {
  run_server_death("scribble-ring", VD_E_PROTOCOL);
  return 0;
}

/* argv: name action; the client side misbehaves. */
HELPER_IMPL(lib_client_misbehave) {
  const char *name = argv[1], *action = argv[2];
  vdi_set_t *set;
  vdi_device_t *dev;
  VDC_Command *cmd;
  ASSERT_RC(client_first_command(name, &set, &dev, &cmd), 0);
  if (strcmp(action, "die") == 0) raise(SIGKILL);
  if (strcmp(action, "abort") == 0) {
    ASSERT_RC(vdi_set_signal_abort(set), 0);
    ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, 0, 0), VD_E_ABORT);
    vdi_set_close(set);
    return 0;
  }
  if (strcmp(action, "scribble") == 0) {
    /* Random garbage over the device's completion side and the header's
     * state words: the server must detect it, not crash. */
    struct vdi_shm_hdr *h = lu_find_control();
    ASSERT_NOT_NULL(h);
    struct vdi_shm_dev *d = lu_dev(h, 0);
    atomic_store(&d->cpl_tail, atomic_load(&d->cpl_tail) + 77777);
    atomic_store(&h->agent_seq, 12345);
    vdi__wake_all_for_tests(&h->agent_seq);
    sleep_ms(3000);
    return 0;
  }
  return 2;
}

static int routine_code = -1;
static void note_code(VDS_Command *c) {
  routine_code = c->completionCode;
}

static void run_client_death(const char *action, int expect_agent) {
  const char *name = unique_name("cdeath");
  pid_t pid = spawn_helper("lib_client_misbehave", name, action, NULL);
  vdi_srvdev_t *dev[1];
  vdi_srvset_t *srv = lu_server_setup(name, 1, 65536, dev);
  pthread_t agent;
  lu_start_agent(srv, &agent);
  VDS_Command c = {0};
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &c.buffer, 65536, 0), 0);
  c.commandCode = VDC_Write;
  c.size = 65536;
  VDS_SET_COMPLETION(&c, note_code);
  ASSERT_RC(vdi_srvdev_send_command(dev[0], &c), 0);
  void *r;
  int st = wait_helper(pid);
  int64_t died = now_us();
  pthread_join(agent, &r);
  int64_t back = now_us();
  ASSERT_RC((int)(intptr_t)r, expect_agent);
  ASSERT_EQ(routine_code, ERROR_OPERATION_ABORTED);
  if (strcmp(action, "die") == 0) {
    ASSERT_EQ(st, 128 + SIGKILL);
    ASSERT_LT(back - died, 100000);
  }
  VDS_Command c2 = c;
  /* SendCommand on an aborted set: VD_E_ABORT, whatever the cause. */
  ASSERT_RC(vdi_srvdev_send_command(dev[0], &c2), VD_E_ABORT);
  ASSERT_EQ(c2.completionCode, ERROR_OPERATION_ABORTED);
  vdi_srv_close(srv);
  vdi_srv_free(srv);
}

TEST_IMPL(lib_death_client_wakes_server) {
  run_client_death("die", VD_E_ABORT);
  return 0;
}

TEST_IMPL(lib_abort_client_wakes_server) {
  run_client_death("abort", VD_E_ABORT);
  return 0;
}

TEST_IMPL(lib_scribble_completion_is_protocol_error) {
  run_client_death("scribble", VD_E_PROTOCOL);
  return 0;
}

TEST_IMPL(lib_names_checked) {
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = {0};
  cfg.deviceCount = 1;
  char longname[200];
  memset(longname, 'a', sizeof longname);
  longname[96] = 0;
  ASSERT_RC(vdi_set_create(set, "", &cfg), VD_E_INVALID);
  ASSERT_RC(vdi_set_create(set, NULL, &cfg), VD_E_INVALID);
  ASSERT_RC(vdi_set_create(set, longname, &cfg), VD_E_INVALID);
  ASSERT_RC(vdi_set_create(set, "a/b", &cfg), VD_E_INVALID);
  ASSERT_RC(vdi_set_create(set, "a\\b", &cfg), VD_E_INVALID);
  ASSERT_RC(vdi_set_create(set, "a\nb", &cfg), VD_E_INVALID);
  longname[95] = 0;
  const char *name = unique_name("names");
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  vdi_set_t *other;
  ASSERT_RC(vdi_set_new(&other), 0);
  ASSERT_RC(vdi_set_create(other, name, &cfg), VD_E_BUSY);
  ASSERT_RC(vdi_set_create(other, longname, &cfg), 0); /* 95 bytes is fine */
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, "no-such-set-here"), VD_E_INVALID);
  ASSERT_RC(vdi_srv_open(srv, NULL, "bad/name"), VD_E_INVALID);
  vdi_srv_free(srv);
  vdi_set_free(other);
  vdi_set_free(set);
  return 0;
}

TEST_IMPL(lib_timeouts_are_milliseconds) {
  const char *name = unique_name("tmo");
  vdi_set_t *set = client_create(name, 1);
  VDConfig cfg;
  int64_t t0 = now_us();
  ASSERT_RC(vdi_set_get_configuration(set, 0, &cfg), VD_E_TIMEOUT);
  ASSERT_LT(now_us() - t0, 20000);
  t0 = now_us();
  ASSERT_RC(vdi_set_get_configuration(set, 150, &cfg), VD_E_TIMEOUT);
  int64_t el = now_us() - t0;
  ASSERT_GE(el, 150000);
  ASSERT_LT(el, 400000);
  vdi_set_free(set);
  return 0;
}

/* argv: name handle-as-decimal expected-first-u64 flag-file */
HELPER_IMPL(lib_secondary_maps) {
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  ASSERT_RC(vdi_set_open_in_secondary(set, argv[1]), 0);
  ASSERT_RC(vdi_set_open_in_secondary(set, argv[1]), VD_E_PROTOCOL);
  uint8_t *p;
  uint32_t h = (uint32_t)strtoul(argv[2], NULL, 10);
  ASSERT_RC(vdi_set_map_buffer_handle(set, h, &p), 0);
  uint64_t v, want = strtoull(argv[3], NULL, 10);
  memcpy(&v, p, 8);
  ASSERT_UEQ(v, want);
  ASSERT_RC(vdi_set_map_buffer_handle(set, 0x7f000001u, &p), VD_E_INVALID);
  FILE *flag = fopen(argv[4], "w"); /* tell the primary: mapped and seen */
  ASSERT_NOT_NULL(flag);
  fclose(flag);
  /* The second device is free for the secondary to service. */
  char dn[128];
  snprintf(dn, sizeof dn, "%s_1", argv[1]);
  vdi_device_t *dev;
  ASSERT_RC(vdi_set_open_device(set, dn, &dev), 0);
  vdi_device_t *none;
  ASSERT_RC(vdi_set_open_device(set, argv[1], &none), VD_E_OPEN);
  VDC_Command *cmd;
  ASSERT_RC(vdi_dev_get_command(dev, 5000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Flush);
  ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, 0, 0), 0);
  ASSERT_RC(vdi_dev_get_command(dev, 5000, &cmd), VD_E_CLOSE);
  ASSERT_RC(vdi_set_close(set), 0);
  vdi_set_free(set);
  return 0;
}

/* The server for the secondary test: one Write on device 0 with a known
 * first word, a Flush on device 1, then close. */
static _Atomic int two_done;
static void two_routine(VDS_Command *c) {
  (void)c;
  atomic_fetch_add(&two_done, 1); /* publishes the fields the agent set */
}

HELPER_IMPL(lib_server_two) {
  vdi_srvdev_t *dev[2];
  vdi_srvset_t *srv = lu_server_setup(argv[1], 2, 65536, dev);
  pthread_t agent;
  lu_start_agent(srv, &agent);
  VDS_Command w = {0}, f = {0};
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &w.buffer, 65536, 0), 0);
  uint64_t v = 0x0123456789abcdefull;
  memcpy(w.buffer, &v, 8);
  w.commandCode = VDC_Write;
  w.size = 65536;
  f.commandCode = VDC_Flush;
  VDS_SET_COMPLETION(&w, two_routine);
  VDS_SET_COMPLETION(&f, two_routine);
  ASSERT_RC(vdi_srvdev_send_command(dev[0], &w), 0);
  ASSERT_RC(vdi_srvdev_send_command(dev[1], &f), 0);
  int64_t end = now_ms() + 8000;
  while (atomic_load(&two_done) < 2 && now_ms() < end)
    sleep_ms(5);
  ASSERT_EQ(atomic_load(&two_done), 2);
  ASSERT_EQ(w.completionCode, 0);
  ASSERT_EQ(w.bytesTransferred, 65536);
  ASSERT_EQ(f.completionCode, 0);
  ASSERT_RC(vdi_srvdev_close_device(dev[0]), 0);
  ASSERT_RC(vdi_srvdev_close_device(dev[1]), 0);
  void *r;
  pthread_join(agent, &r);
  ASSERT_RC((int)(intptr_t)r, 0);
  ASSERT_RC(vdi_srv_close(srv), 0);
  vdi_srv_free(srv);
  return 0;
}

TEST_IMPL(lib_secondary_and_buffer_handles) {
  const char *name = unique_name("sec");
  vdi_set_t *set = client_create(name, 2);
  vdi_set_t *early;
  ASSERT_RC(vdi_set_new(&early), 0);
  ASSERT_RC(vdi_set_open_in_secondary(early, name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_open_in_secondary(early, "no-such-set"), VD_E_PROTOCOL);
  vdi_set_free(early);
  pid_t srv = spawn_helper("lib_server_two", name, NULL);
  client_configure(set);
  vdi_device_t *dev;
  ASSERT_RC(vdi_set_open_device(set, name, &dev), 0);
  VDC_Command *cmd;
  ASSERT_RC(vdi_dev_get_command(dev, 5000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Write);
  uint32_t h;
  ASSERT_RC(vdi_set_get_buffer_handle(set, cmd->buffer, &h), 0);
  ASSERT_RC(vdi_set_get_buffer_handle(set, (uint8_t *)&h, &h), VD_E_INVALID);
  uint8_t *same;
  ASSERT_RC(vdi_set_map_buffer_handle(set, h, &same), 0);
  ASSERT(same == cmd->buffer);
  uint64_t first;
  memcpy(&first, cmd->buffer, 8);
  char hs[32], fs[32];
  snprintf(hs, sizeof hs, "%u", h);
  snprintf(fs, sizeof fs, "%llu", (unsigned long long)first);
  char flag[4200];
  snprintf(flag, sizeof flag, "%s/mapped", test_tmpdir());
  pid_t sec = spawn_helper("lib_secondary_maps", name, hs, fs, flag, NULL);
  /* The buffer stays ours until we complete the command: complete it
   * only once the secondary has read it through its own mapping. */
  int64_t end = now_ms() + 5000;
  while (access(flag, F_OK) != 0 && now_ms() < end)
    sleep_ms(2);
  ASSERT_EQ(access(flag, F_OK), 0);
  ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, 65536, 0), 0);
  ASSERT_RC(vdi_dev_get_command(dev, 5000, &cmd), VD_E_CLOSE);
  ASSERT_EQ(wait_helper(sec), 0);
  ASSERT_EQ(wait_helper(srv), 0);
  ASSERT_RC(vdi_set_close(set), 0);
  vdi_set_free(set);
  return 0;
}

/* Another user cannot attach: the server runs as nobody via setpriv. */
HELPER_IMPL(lib_server_open_expect) {
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  int rc = vdi_srv_open(srv, NULL, argv[1]);
  int want = strcmp(argv[2], "ok") == 0 ? 0 : VD_E_SECURITY;
  printf("%s\n", vdi_error_name(rc));
  vdi_srv_free(srv);
  return rc == want ? 0 : 1;
}

TEST_IMPL(lib_other_user_cannot_attach) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
    fprintf(stderr, "needs root and setpriv\n");
    return TEST_SKIP;
  }
  const char *name = unique_name("perm");
  vdi_set_t *set = client_create(name, 1);
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  pid_t pid = fork();
  if (pid == 0) {
    execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534",
          "--clear-groups", self, "--helper", "lib_server_open_expect", name,
          "refused", (char *)NULL);
    _exit(127);
  }
  ASSERT_EQ(wait_helper(pid), 0);
  /* Another user in a group the creator allows is let in. */
  char gname[96];
  snprintf(gname, sizeof gname, "%s_g", name);
  vdi_set_t *gset;
  ASSERT_RC(vdi_set_new(&gset), 0);
  ASSERT_RC(vdi_set_allow_group(gset, 4242), 0);
  VDConfig cfg = {0};
  cfg.deviceCount = 1;
  ASSERT_RC(vdi_set_create(gset, gname, &cfg), 0);
  pid = fork();
  if (pid == 0) {
    execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534",
          "--groups=4242", self, "--helper", "lib_server_open_expect", gname,
          "ok", (char *)NULL);
    _exit(127);
  }
  ASSERT_EQ(wait_helper(pid), 0);
  vdi_set_free(gset);
  /* The owner's set is undisturbed: a real server still attaches. */
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, name), 0);
  vdi_srv_free(srv);
  vdi_set_free(set);
  return 0;
}

/* Object modes never depend on the umask: the memfds are 0600 even when
 * the creator's umask would allow everyone everything. */
TEST_IMPL(lib_object_modes_ignore_umask) {
  mode_t old = umask(0);
  const char *name = unique_name("mode");
  vdi_set_t *set = client_create(name, 1);
  umask(old);
  int found = 0;
  for (int fd = 0; fd < 1024; fd++) {
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    if (!strstr(target, "memfd:vdi-")) continue;
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    ASSERT_EQ(st.st_mode & 07777, 0600);
    found++;
  }
  ASSERT_GE(found, 1);
  vdi_set_free(set);
  return 0;
}

/* Names that do not fit the readable socket name together with their
 * instance are hashed; the real name is checked on attach. */
TEST_IMPL(lib_long_names_with_instance) {
  char longname[96];
  snprintf(longname, sizeof longname, "%s", unique_name("long"));
  size_t n = strlen(longname);
  memset(longname + n, 'x', 95 - n);
  longname[95] = 0;
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = {0};
  cfg.deviceCount = 1;
  ASSERT_RC(vdi_set_create_ex(set, "MSSQLSERVER", longname, &cfg), 0);
  vdi_set_t *dup;
  ASSERT_RC(vdi_set_new(&dup), 0);
  ASSERT_RC(vdi_set_create_ex(dup, "MSSQLSERVER", longname, &cfg), VD_E_BUSY);
  /* The same name in another instance is another set. */
  ASSERT_RC(vdi_set_create_ex(dup, "OTHER", longname, &cfg), 0);
  vdi_set_free(dup);
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, longname), VD_E_INVALID);
  ASSERT_RC(vdi_srv_open(srv, "MSSQLSERVER", longname), 0);
  VDConfig got;
  ASSERT_RC(vdi_srv_get_configuration(srv, &got), 0);
  ASSERT_EQ(got.deviceCount, 1);
  vdi_srv_free(srv);
  vdi_set_free(set);
  return 0;
}

/* lib_client_close_report NAME ACTION: a client whose device the server
 * closes, then: "close" calls Close; "exit" exits without it; "old" also
 * exits without, having cleared the word as a library that predates it
 * would have left it. */
HELPER_IMPL(lib_client_close_report) {
  const char *name = argv[1], *action = argv[2];
  vdi_set_t *set;
  vdi_device_t *dev;
  VDC_Command *cmd;
  ASSERT_RC(client_first_command(name, &set, &dev, &cmd), VD_E_CLOSE);
  if (strcmp(action, "close") == 0) {
    ASSERT_RC(vdi_set_close(set), 0);
    vdi_set_free(set);
    return 0;
  }
  if (strcmp(action, "old") == 0) {
    struct vdi_shm_hdr *h = lu_find_control();
    ASSERT_NOT_NULL(h);
    atomic_store(&h->client_close, VDI_CLOSE_UNREPORTED);
  }
  _exit(0);
}

/* What the server can see of the client's Close (vdi_srv_client_closed):
 * 0 while the set is in use, then 1 after a Close, 0 after an exit
 * without one, VD_E_NOTSUPPORTED from a library that does not report it;
 * readable after the client has gone, until the server's own Close. */
TEST_IMPL(lib_client_close_reported) {
  static const char *const actions[] = {"close", "exit", "old"};
  static const int want[] = {1, 0, VD_E_NOTSUPPORTED};
  vdi_srvset_t *none;
  ASSERT_RC(vdi_srv_new(&none), 0);
  ASSERT_RC(vdi_srv_client_closed(none), VD_E_PROTOCOL);
  vdi_srv_free(none);
  ASSERT_RC(vdi_srv_client_closed(NULL), VD_E_INVALID);
  for (int i = 0; i < 3; i++) {
    const char *name = unique_name("cclose");
    pid_t pid = spawn_helper("lib_client_close_report", name, actions[i], NULL);
    vdi_srvdev_t *dev[1];
    vdi_srvset_t *srv = lu_server_setup(name, 1, 65536, dev);
    pthread_t agent;
    lu_start_agent(srv, &agent);
    ASSERT_RC(vdi_srv_client_closed(srv), 0);
    ASSERT_RC(vdi_srvdev_close_device(dev[0]), 0);
    void *r;
    pthread_join(agent, &r);
    ASSERT_RC((int)(intptr_t)r, 0);
    ASSERT_EQ(wait_helper(pid), 0);
    ASSERT_RC(vdi_srv_client_closed(srv), want[i]);
    ASSERT_RC(vdi_srv_close(srv), 0);
    ASSERT_RC(vdi_srv_client_closed(srv), VD_E_PROTOCOL);
    vdi_srv_free(srv);
  }
  return 0;
}
