/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-latency.c - round-trip latency between two processes:
 *
 *   vdi      the server sends VDC_Flush (no payload) on one device; the
 *            client's device thread gets it and completes it; the time is
 *            from vdi_srvdev_send_command to the completion routine on the
 *            server's agent thread, which then sends the next one (so, as
 *            in the ping-pongs below, one thread on each side);
 *   eventfd  a ping-pong over two eventfds;
 *   pipe     a ping-pong of one byte over two pipes;
 *   cacheline  not a path but the machine's floor under every one of them
 *            (bench_cacheline, bench.h): two threads pinned to two CPUs
 *            pass one cache line back and forth; a round is the mean of
 *            BENCH_CL_BATCH round trips.  Exit 77 with fewer than two
 *            CPUs.
 *
 * usage: bench-latency -m vdi|eventfd|pipe|cacheline [-n ROUNDS]
 *                      [-w WARMUP] [-S SPIN_US]
 * -S sets vdi_lib_set_spin_us() in both processes (vdi only; without it the
 * library default, 50 us or $VDI_SPIN_US, applies).  Prints one line:
 *   latency mode=vdi spin=S rounds=N median_us=M p99_us=P mean_us=A
 *           min_us=L max_us=H
 * Exit 1 on any failed call, 77 if libvdi is the link stub.
 */
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "bench.h"
#include "vdi.h"

static int rounds = 100000, warmup = 2000;
static long spin = -1;
static const char *mode = "vdi";
static uint64_t *lat; /* ns, one per measured round */

static void report(void) {
  qsort(lat, (size_t)rounds, sizeof *lat, bench_cmp_u64);
  double sum = 0;
  for (int i = 0; i < rounds; i++)
    sum += (double)lat[i];
  size_t p99 = (size_t)((double)rounds * 0.99);
  if (p99 >= (size_t)rounds) p99 = (size_t)rounds - 1;
  printf("latency mode=%s spin=%ld rounds=%d median_us=%.3f p99_us=%.3f "
         "mean_us=%.3f min_us=%.3f max_us=%.3f\n",
         mode, spin, rounds, (double)lat[rounds / 2] / 1e3,
         (double)lat[p99] / 1e3, sum / rounds / 1e3, (double)lat[0] / 1e3,
         (double)lat[rounds - 1] / 1e3);
}

static int wait_child(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) bench_die("waitpid: %s", strerror(errno));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------ ping-pongs */

/* Both ping-pongs move an 8-byte word (an eventfd needs exactly 8; a pipe
 * is given 1 byte, its smallest message). */
static void pingpong(int out_fd, int in_fd, size_t n) {
  uint64_t one = 1, got;
  bench_write_all(out_fd, &one, n);
  if (!bench_read_all(in_fd, &got, n)) bench_die("%s: peer closed", mode);
}

static void run_fd(void) {
  int a[2], b[2]; /* a: parent -> child, b: child -> parent */
  size_t n = 8;
  if (strcmp(mode, "eventfd") == 0) {
    a[0] = a[1] = eventfd(0, 0);
    b[0] = b[1] = eventfd(0, 0);
    if (a[0] < 0 || b[0] < 0) bench_die("eventfd: %s", strerror(errno));
  } else {
    if (pipe(a) != 0 || pipe(b) != 0) bench_die("pipe: %s", strerror(errno));
    n = 1;
  }
  pid_t pid = fork();
  if (pid < 0) bench_die("fork: %s", strerror(errno));
  if (pid == 0) {
    uint64_t v;
    for (int i = 0; i < warmup + rounds; i++) {
      if (!bench_read_all(a[0], &v, n)) bench_die("%s: peer closed", mode);
      bench_write_all(b[1], &v, n);
    }
    _exit(0);
  }
  for (int i = 0; i < warmup + rounds; i++) {
    uint64_t t0 = bench_now_ns();
    pingpong(a[1], b[0], n);
    if (i >= warmup) lat[i - warmup] = bench_now_ns() - t0;
  }
  if (wait_child(pid) != 0) bench_die("%s: the peer failed", mode);
  report();
}

/* ---------------------------------------------------------- cacheline */

static int run_cacheline(void) {
  if (bench_cacheline(lat, rounds, warmup, 0) != rounds) {
    fprintf(stderr, "bench: cacheline needs two CPUs\n");
    return 77;
  }
  report();
  return 0;
}

/* ---------------------------------------------------------------- vdi */

static void vdi_check(int rc, const char *what) {
  if (rc != 0)
    bench_die("vdi: %s: %s (%s)", what, vdi_error_name(rc), vdi_strerror(rc));
}

static void vdi_client(const char *name, int ready_fd) {
  if (spin >= 0) vdi_lib_set_spin_us((uint32_t)spin);
  vdi_set_t *set;
  vdi_check(vdi_set_new(&set), "set_new");
  VDConfig cfg = {0};
  cfg.deviceCount = 1;
  cfg.features = VDF_LikePipe;
  vdi_check(vdi_set_create(set, name, &cfg), "set_create");
  bench_write_all(ready_fd, "R", 1);
  close(ready_fd);
  int rc;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT)
    if (getppid() == 1) bench_die("vdi client: the server went away");
  vdi_check(rc, "set_get_configuration");
  vdi_device_t *dev;
  vdi_check(vdi_set_open_device(set, name, &dev), "set_open_device");
  long n = 0;
  for (;;) {
    VDC_Command *cmd;
    rc = vdi_dev_get_command(dev, -1, &cmd);
    if (rc == VD_E_CLOSE) break;
    vdi_check(rc, "dev_get_command");
    if (cmd->commandCode != VDC_Flush)
      bench_die("vdi client: command %d, expected VDC_Flush", cmd->commandCode);
    vdi_check(vdi_dev_complete_command(dev, cmd, ERROR_SUCCESS, 0, 0),
              "dev_complete_command");
    n++;
  }
  if (n != warmup + rounds)
    bench_die("vdi client: %ld commands, expected %d", n, warmup + rounds);
  vdi_check(vdi_set_close(set), "set_close");
  vdi_set_free(set);
  _exit(0);
}

/* The server's chain: each completion routine records the round trip and
 * sends the next command, alternating between two command structures so
 * that a structure is never reused inside its own completion. */
static struct {
  vdi_srvdev_t *dev;
  VDS_Command cmd[2];
  uint64_t t0;
  int i;
  int failed;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} chain = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void finish(int failed) {
  pthread_mutex_lock(&chain.mu);
  chain.failed |= failed;
  chain.done = 1;
  pthread_cond_signal(&chain.cv);
  pthread_mutex_unlock(&chain.mu);
}

static void send_next(void) {
  VDS_Command *c = &chain.cmd[chain.i & 1];
  c->commandCode = VDC_Flush;
  c->size = 0;
  c->buffer = NULL;
  chain.t0 = bench_now_ns();
  int rc = vdi_srvdev_send_command(chain.dev, c);
  if (rc != 0) {
    /* The library has already run on_flushed with the error code. */
    fprintf(stderr, "bench: vdi: send_command: %s\n", vdi_error_name(rc));
    finish(1);
  }
}

static void on_flushed(VDS_Command *cmd) {
  uint64_t t1 = bench_now_ns();
  if (chain.done) return;
  if (cmd->completionCode != ERROR_SUCCESS) {
    fprintf(stderr, "bench: vdi: flush completed with %d\n",
            cmd->completionCode);
    finish(1);
    return;
  }
  if (chain.i >= warmup) lat[chain.i - warmup] = t1 - chain.t0;
  if (++chain.i == warmup + rounds) {
    finish(0);
    return;
  }
  send_next();
}

static void *agent_thread(void *arg) {
  int rc = vdi_srv_execute_completion_agent(arg);
  if (rc != 0) bench_die("vdi: completion agent: %s", vdi_error_name(rc));
  return NULL;
}

static void run_vdi(void) {
  char name[64];
  snprintf(name, sizeof name, "bench-latency-%d", (int)getpid());
  int ready[2];
  if (pipe(ready) != 0) bench_die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) bench_die("fork: %s", strerror(errno));
  if (pid == 0) {
    close(ready[0]);
    vdi_client(name, ready[1]);
  }
  close(ready[1]);
  char c;
  if (!bench_read_all(ready[0], &c, 1))
    bench_die("vdi: the client failed to create the set");
  close(ready[0]);
  if (spin >= 0) vdi_lib_set_spin_us((uint32_t)spin);

  vdi_srvset_t *srv;
  vdi_check(vdi_srv_new(&srv), "srv_new");
  vdi_check(vdi_srv_open(srv, NULL, name), "srv_open");
  VDConfig cfg;
  vdi_check(vdi_srv_get_configuration(srv, &cfg), "srv_get_configuration");
  vdi_check(
      vdi_srv_begin_configuration(srv, VDF_WriteMedia, 65536, 0, 65536, 10000),
      "srv_begin_configuration");
  vdi_check(vdi_srv_request_buffers(srv, 65536, 0, 1), "srv_request_buffers");
  vdi_check(vdi_srv_end_configuration(srv), "srv_end_configuration");
  vdi_check(vdi_srv_open_device(srv, name, &chain.dev), "srv_open_device");
  for (int k = 0; k < 2; k++)
    VDS_SET_COMPLETION(&chain.cmd[k], on_flushed);
  pthread_t agent;
  pthread_create(&agent, NULL, agent_thread, srv);
  send_next();
  pthread_mutex_lock(&chain.mu);
  while (!chain.done)
    pthread_cond_wait(&chain.cv, &chain.mu);
  pthread_mutex_unlock(&chain.mu);
  vdi_check(vdi_srvdev_close_device(chain.dev), "srvdev_close_device");
  pthread_join(agent, NULL);
  vdi_check(vdi_srv_close(srv), "srv_close");
  vdi_srv_free(srv);
  if (wait_child(pid) != 0) bench_die("vdi: the client exited with an error");
  if (chain.failed) bench_die("vdi: a command failed");
  report();
}

int main(int argc, char **argv) {
  int c;
  while ((c = getopt(argc, argv, "m:n:w:S:")) != -1) {
    switch (c) {
    case 'm':
      mode = optarg;
      break;
    case 'n':
      rounds = atoi(optarg);
      break;
    case 'w':
      warmup = atoi(optarg);
      break;
    case 'S':
      spin = atol(optarg);
      break;
    default:
      fprintf(stderr, "usage: bench-latency -m vdi|eventfd|pipe|cacheline "
                      "[-n ROUNDS] [-w WARMUP] [-S SPIN_US]\n");
      return 2;
    }
  }
  if (rounds < 1 || warmup < 0) bench_die("bad -n/-w");
  lat = calloc((size_t)rounds, sizeof *lat);
  if (lat == NULL) bench_die("out of memory");
  if (strcmp(mode, "cacheline") == 0) {
    int rc = run_cacheline();
    free(lat);
    return rc;
  } else if (strcmp(mode, "eventfd") == 0 || strcmp(mode, "pipe") == 0) {
    run_fd();
  } else if (strcmp(mode, "vdi") == 0) {
    vdi_srvset_t *probe;
    int rc = vdi_srv_new(&probe);
    if (rc == VD_E_UNEXPECTED) {
      fprintf(stderr, "bench: libvdi in this build is the link stub\n");
      return 77;
    }
    vdi_check(rc, "srv_new");
    vdi_srv_free(probe);
    run_vdi();
  } else {
    bench_die("unknown mode '%s'", mode);
  }
  free(lat);
  return 0;
}
