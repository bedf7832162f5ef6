/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-stream.c - stream throughput: a producer fills buffers with a
 * pattern, a consumer reads every byte in place (a 64-bit sum), through
 *
 *   vdi     libvdi: the server process fills shared buffers and sends
 *           VDC_Write on each device, the client process sums them in place
 *           (zero copy) and completes.  One producer thread per device
 *           keeps `depth` buffers in flight, waiting (mutex + condition
 *           variable) for the completion agent to give one back;
 *   vdi-agent  the same, completion-driven: each completion routine (on
 *           the agent thread) refills its buffer and sends it again, so
 *           the server has a single busy thread;
 *   pipe    two processes, a pipe per stream enlarged with F_SETPIPE_SZ,
 *           plain write()/read() loops (one copy in, one copy out);
 *   unix    the same over a Unix stream socketpair with large buffers;
 *   inproc  one thread, no IPC: fill a buffer, sum the same buffer (the
 *           work alone, the ceiling of a single core);
 *   threads two threads of one process, a ring of buffers and two atomic
 *           counters: zero copy between two cores with no library and no
 *           process boundary (a reference, not a bound: how the waits are
 *           made matters as much as the copies);
 *   fill    the producer's work alone: one thread fills the ring of
 *           buffers a device keeps in flight, nobody reads them (a stream
 *           whose producer writes every byte cannot run faster).
 *
 * usage: bench-stream -m MODE -s SIZE [-d STREAMS] [-b BYTES] [-r REPS]
 *                     [-n BUFFERS_PER_DEVICE (default: half the last-level
 *                     cache over the devices, 4..64)]
 * Prints one line per repetition:
 *   stream mode=vdi size=1048576 dev=1 bytes=N secs=S srv_cpu=C cli_cpu=C
 *          steal=T cacheline_us=L depth=BUFFERS cond=$BENCH_COND (default
 *          quiet)
 * steal: the hypervisor's steal time over every CPU during the
 * repetition; cacheline_us: the cache-line round trip between the first
 * two CPUs measured just before it (-1 on one CPU); both from bench.h.
 * The checksum the consumer computes must equal the closed-form sum of what
 * the producer filled; a mismatch (or any failed call) exits 1.  Exit 77 if
 * libvdi is the link stub (the core is not in this build).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench.h"
#include "vdi.h"

#define MAX_STREAMS 16

struct opts {
  const char *mode;
  uint64_t size;  /* bytes per transfer */
  int streams;    /* devices, or pipes/sockets */
  uint64_t bytes; /* total per repetition, over all streams */
  int reps;
  int depth;        /* VDI buffers (= commands in flight) per device */
  int agent_fills;  /* VDI: the completion routine refills and resends */
  uint64_t per_dev; /* transfers per stream */
};

/* What the consumer process tells the producer at the end. */
struct result {
  uint64_t sum;
  uint64_t transfers;
  double cpu;
  int ok;
};

static struct opts o;

static uint64_t expected_total(void) {
  uint64_t s = 0;
  for (uint64_t seq = 0; seq < o.per_dev * (uint64_t)o.streams; seq++)
    s += bench_expected(o.size, seq);
  return s;
}

/* The host's steal time when the repetition's clock started, and the two
 * CPUs' cache-line round trip just before (bench.h). */
static double steal0, cacheline_us = -1;

static double start_clock(void) {
  steal0 = bench_steal();
  return bench_now();
}

static void report(double secs, double srv_cpu, double cli_cpu) {
  /* $BENCH_COND names the conditions run.sh made (loaded, 1cpu, ...). */
  const char *cond = getenv("BENCH_COND");
  printf("stream mode=%s size=%llu dev=%d bytes=%llu secs=%.6f srv_cpu=%.6f "
         "cli_cpu=%.6f steal=%.2f cacheline_us=%.3f depth=%d cond=%s\n",
         o.mode, (unsigned long long)o.size, o.streams,
         (unsigned long long)(o.per_dev * o.size * (uint64_t)o.streams), secs,
         srv_cpu, cli_cpu, bench_steal() - steal0, cacheline_us, o.depth,
         cond && *cond ? cond : "quiet");
  fflush(stdout);
}

static void check(const struct result *r) {
  uint64_t want = expected_total();
  if (!r->ok) bench_die("%s: the consumer failed", o.mode);
  if (r->transfers != o.per_dev * (uint64_t)o.streams)
    bench_die("%s: consumer saw %llu transfers, expected %llu", o.mode,
              (unsigned long long)r->transfers,
              (unsigned long long)(o.per_dev * (uint64_t)o.streams));
  if (r->sum != want)
    bench_die("%s: checksum mismatch: consumer %016llx, expected %016llx",
              o.mode, (unsigned long long)r->sum, (unsigned long long)want);
}

static int wait_child(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) bench_die("waitpid: %s", strerror(errno));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------------- inproc */

static void run_inproc(void) {
  uint8_t *buf = aligned_alloc(4096, o.size);
  if (buf == NULL) bench_die("out of memory");
  struct result r = {0, 0, 0, 1};
  double t0 = start_clock(), c0 = bench_cpu_self();
  for (uint64_t seq = 0; seq < o.per_dev; seq++) {
    bench_fill(buf, o.size, seq);
    /* Keep the compiler from fusing fill and sum into arithmetic. */
    __asm__ volatile("" : : "r"(buf) : "memory");
    r.sum += bench_sum(buf, o.size);
    r.transfers++;
  }
  double secs = bench_now() - t0, cpu = bench_cpu_self() - c0;
  check(&r);
  report(secs, cpu, 0);
  free(buf);
}

/* --------------------------------------------------------------- fill */

/* The producer's side alone, on the ring of `depth` buffers a VDI device
 * keeps in flight (-n 16 of 1 MiB: more than this machine's caches hold,
 * so the lines go out to memory as a stream's do).  Nothing reads them,
 * so there is no sum to check; the rate is the ceiling of any stream
 * whose producer fills every byte on one core with that ring. */
static void run_fill(void) {
  uint8_t *bufs = aligned_alloc(4096, o.size * (uint64_t)o.depth);
  if (bufs == NULL) bench_die("out of memory");
  memset(bufs, 0, o.size * (uint64_t)o.depth);
  double t0 = start_clock(), c0 = bench_cpu_self();
  for (uint64_t k = 0; k < o.per_dev; k++) {
    bench_fill(bufs + (k % (uint64_t)o.depth) * o.size, o.size, k);
    /* The stores must happen: as if a consumer could read them. */
    __asm__ volatile("" : : "r"(bufs) : "memory");
  }
  double secs = bench_now() - t0, cpu = bench_cpu_self() - c0;
  report(secs, cpu, 0);
  free(bufs);
}

/* ------------------------------------------------------------ threads */

/* Two threads of one process handing `depth` buffers round a ring with
 * nothing but two counters: no library, no system call, no process
 * boundary; the fill on one core, the sum on the other, every line
 * crossing once.  A reference for openvdi's rows: what zero copy between
 * two cores gives with the plainest waits (a spin that yields now and
 * then). */
struct ring {
  uint8_t *bufs;
  _Alignas(64) _Atomic uint64_t filled;
  _Alignas(64) _Atomic uint64_t summed;
  struct result r;
};

/* Wait until *v > k, spinning (yielding: the peer may share our core). */
static void ring_wait(_Atomic uint64_t *v, uint64_t k) {
  for (unsigned i = 0; atomic_load_explicit(v, memory_order_acquire) <= k; i++)
    if ((i & 255) == 255) sched_yield();
}

static void *ring_consumer(void *arg) {
  struct ring *g = arg;
  double c0 = bench_cpu_thread();
  for (uint64_t k = 0; k < o.per_dev; k++) {
    ring_wait(&g->filled, k);
    g->r.sum += bench_sum(g->bufs + (k % (uint64_t)o.depth) * o.size, o.size);
    g->r.transfers++;
    atomic_store_explicit(&g->summed, k + 1, memory_order_release);
  }
  g->r.cpu = bench_cpu_thread() - c0;
  return NULL;
}

static void run_threads(void) {
  static struct ring g;
  g.bufs = aligned_alloc(4096, o.size * (uint64_t)o.depth);
  if (g.bufs == NULL) bench_die("out of memory");
  memset(g.bufs, 0, o.size * (uint64_t)o.depth);
  atomic_store(&g.filled, 0);
  atomic_store(&g.summed, 0);
  g.r = (struct result){0, 0, 0, 1};
  pthread_t th;
  double t0 = start_clock(), c0 = bench_cpu_thread();
  pthread_create(&th, NULL, ring_consumer, &g);
  for (uint64_t k = 0; k < o.per_dev; k++) {
    if (k >= (uint64_t)o.depth) ring_wait(&g.summed, k - (uint64_t)o.depth);
    bench_fill(g.bufs + (k % (uint64_t)o.depth) * o.size, o.size, k);
    atomic_store_explicit(&g.filled, k + 1, memory_order_release);
  }
  double cpu = bench_cpu_thread() - c0;
  pthread_join(th, NULL);
  double secs = bench_now() - t0;
  check(&g.r);
  report(secs, cpu, g.r.cpu);
  free(g.bufs);
}

/* ------------------------------------------------------- pipe / unix */

struct fdstream {
  int fd;
  int index;
  uint64_t sum;
  uint64_t transfers;
};

static void *fd_producer(void *arg) {
  struct fdstream *s = arg;
  uint8_t *buf = aligned_alloc(4096, o.size);
  if (buf == NULL) bench_die("out of memory");
  for (uint64_t k = 0; k < o.per_dev; k++) {
    bench_fill(buf, o.size, (uint64_t)s->index * o.per_dev + k);
    bench_write_all(s->fd, buf, o.size);
  }
  close(s->fd);
  free(buf);
  return NULL;
}

static void *fd_consumer(void *arg) {
  struct fdstream *s = arg;
  uint8_t *buf = aligned_alloc(4096, o.size);
  if (buf == NULL) bench_die("out of memory");
  while (bench_read_all(s->fd, buf, o.size)) {
    s->sum += bench_sum(buf, o.size);
    s->transfers++;
  }
  free(buf);
  return NULL;
}

static void make_channel(int fds[2]) {
  if (strcmp(o.mode, "pipe") == 0) {
    if (pipe(fds) != 0) bench_die("pipe: %s", strerror(errno));
    /* 1 MiB is the default /proc/sys/fs/pipe-max-size. */
    if (fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) < 0)
      bench_die("F_SETPIPE_SZ: %s", strerror(errno));
    return;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
    bench_die("socketpair: %s", strerror(errno));
  int sz = 4 << 20; /* capped by net.core.[rw]mem_max; the kernel doubles */
  for (int i = 0; i < 2; i++) {
    setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
}

static void run_fd(void) {
  int ch[MAX_STREAMS][2], res[2];
  for (int i = 0; i < o.streams; i++)
    make_channel(ch[i]);
  if (pipe(res) != 0) bench_die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) bench_die("fork: %s", strerror(errno));
  if (pid == 0) {
    /* Consumer: reads from ch[i][0] until end of file. */
    struct fdstream s[MAX_STREAMS];
    pthread_t th[MAX_STREAMS];
    close(res[0]);
    for (int i = 0; i < o.streams; i++) {
      close(ch[i][1]);
      s[i] = (struct fdstream){ch[i][0], i, 0, 0};
    }
    double c0 = bench_cpu_self();
    for (int i = 0; i < o.streams; i++)
      pthread_create(&th[i], NULL, fd_consumer, &s[i]);
    struct result r = {0, 0, 0, 1};
    for (int i = 0; i < o.streams; i++) {
      pthread_join(th[i], NULL);
      r.sum += s[i].sum;
      r.transfers += s[i].transfers;
    }
    r.cpu = bench_cpu_self() - c0;
    bench_write_all(res[1], &r, sizeof r);
    _exit(0);
  }
  close(res[1]);
  struct fdstream s[MAX_STREAMS];
  pthread_t th[MAX_STREAMS];
  for (int i = 0; i < o.streams; i++) {
    close(ch[i][0]);
    s[i] = (struct fdstream){ch[i][1], i, 0, 0};
  }
  double t0 = start_clock(), c0 = bench_cpu_self();
  for (int i = 0; i < o.streams; i++)
    pthread_create(&th[i], NULL, fd_producer, &s[i]);
  for (int i = 0; i < o.streams; i++)
    pthread_join(th[i], NULL);
  struct result r;
  if (!bench_read_all(res[0], &r, sizeof r))
    bench_die("%s: the consumer died", o.mode);
  double secs = bench_now() - t0, cpu = bench_cpu_self() - c0;
  close(res[0]);
  if (wait_child(pid) != 0)
    bench_die("%s: the consumer exited with an error", o.mode);
  check(&r);
  report(secs, cpu, r.cpu);
}

/* ---------------------------------------------------------------- vdi */

static void vdi_check(int rc, const char *what) {
  if (rc != 0)
    bench_die("vdi: %s: %s (%s)", what, vdi_error_name(rc), vdi_strerror(rc));
}

static void dev_name(char *out, size_t n, const char *set, int i) {
  if (i == 0)
    snprintf(out, n, "%s", set);
  else
    snprintf(out, n, "%s-%d", set, i);
}

struct cli_dev {
  vdi_device_t *dev;
  uint64_t sum;
  uint64_t transfers;
  int ok;
};

static void *cli_thread(void *arg) {
  struct cli_dev *d = arg;
  for (;;) {
    VDC_Command *cmd;
    int rc = vdi_dev_get_command(d->dev, -1, &cmd);
    if (rc == VD_E_CLOSE) break;
    if (rc != 0) {
      fprintf(stderr, "bench: vdi client: get_command: %s\n",
              vdi_error_name(rc));
      d->ok = 0;
      return NULL;
    }
    uint32_t bytes = 0;
    if (cmd->commandCode == VDC_Write) {
      d->sum += bench_sum(cmd->buffer, (size_t)cmd->size);
      d->transfers++;
      bytes = (uint32_t)cmd->size;
    }
    rc = vdi_dev_complete_command(d->dev, cmd, ERROR_SUCCESS, bytes, 0);
    if (rc != 0) {
      fprintf(stderr, "bench: vdi client: complete: %s\n", vdi_error_name(rc));
      d->ok = 0;
      return NULL;
    }
  }
  return NULL;
}

/* The client (the backup application's side) in the child process. */
static void vdi_client(const char *name, int ready_fd, int res_fd) {
  vdi_set_t *set;
  vdi_check(vdi_set_new(&set), "set_new");
  VDConfig cfg = {0};
  cfg.deviceCount = (uint32_t)o.streams;
  cfg.features = VDF_LikePipe;
  vdi_check(vdi_set_create(set, name, &cfg), "set_create");
  bench_write_all(ready_fd, "R", 1);
  close(ready_fd);
  int rc;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT)
    if (getppid() == 1) bench_die("vdi client: the server went away");
  vdi_check(rc, "set_get_configuration");
  struct cli_dev d[MAX_STREAMS];
  pthread_t th[MAX_STREAMS];
  for (int i = 0; i < o.streams; i++) {
    char dn[VDI_MAX_NAME + 1];
    dev_name(dn, sizeof dn, name, i);
    d[i] = (struct cli_dev){NULL, 0, 0, 1};
    vdi_check(vdi_set_open_device(set, dn, &d[i].dev), "set_open_device");
  }
  double c0 = bench_cpu_self();
  for (int i = 0; i < o.streams; i++)
    pthread_create(&th[i], NULL, cli_thread, &d[i]);
  struct result r = {0, 0, 0, 1};
  for (int i = 0; i < o.streams; i++) {
    pthread_join(th[i], NULL);
    r.sum += d[i].sum;
    r.transfers += d[i].transfers;
    r.ok &= d[i].ok;
  }
  r.cpu = bench_cpu_self() - c0;
  vdi_check(vdi_set_close(set), "set_close");
  vdi_set_free(set);
  bench_write_all(res_fd, &r, sizeof r);
  _exit(r.ok ? 0 : 1);
}

/* One buffer of the server and the command that carries it. */
struct slot {
  VDS_Command cmd;
  struct srv_dev *owner;
  struct slot *next_free;
};

struct srv_dev {
  vdi_srvdev_t *dev;
  int index;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* free buffers, oldest first: the producer refills the buffer that
   * came back longest ago (see free_put) */
  struct slot *free_list, *free_tail;
  int nfree;
  int failed;
  /* agent mode: transfers of this device handed out so far; the primer
   * and the agent thread both take numbers from it */
  _Atomic uint64_t next;
  struct slot slots[64];
};

/* Give a buffer back to the free queue (d->mu held).  Queued at the tail
 * and taken from the head, as a ring would (vdisql's driver is one): the
 * buffer refilled next is the one the consumer finished longest ago.  The
 * buffer it finished last is still in the consumer core's cache, and a
 * producer writing it first has to take every line from that core: on the
 * 2-core machine of docs/PERFORMANCE.md that made 1 MiB transfers up to
 * twice as slow as refilling lines that had gone back to memory. */
static void free_put(struct srv_dev *d, struct slot *s) {
  s->next_free = NULL;
  if (d->free_tail != NULL)
    d->free_tail->next_free = s;
  else
    d->free_list = s;
  d->free_tail = s;
  d->nfree++;
}

/* Take the oldest free buffer (d->mu held, the queue not empty). */
static struct slot *free_take(struct srv_dev *d) {
  struct slot *s = d->free_list;
  d->free_list = s->next_free;
  if (d->free_list == NULL) d->free_tail = NULL;
  d->nfree--;
  return s;
}

/* Runs on the completion-agent thread: give the buffer back to its
 * device's producer. */
static bool send_fill(struct srv_dev *d, struct slot *s);

static void on_complete(VDS_Command *cmd) {
  struct slot *s = (struct slot *)(void *)cmd->completionContext;
  struct srv_dev *d = s->owner;
  if (o.agent_fills && cmd->completionCode == ERROR_SUCCESS &&
      cmd->bytesTransferred == cmd->size && send_fill(d, s))
    return;
  pthread_mutex_lock(&d->mu);
  if (cmd->completionCode != ERROR_SUCCESS ||
      cmd->bytesTransferred != cmd->size) {
    if (!d->failed)
      fprintf(stderr, "bench: vdi: write completed with %d, %d bytes\n",
              cmd->completionCode, cmd->bytesTransferred);
    d->failed = 1;
  }
  free_put(d, s);
  pthread_cond_signal(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

/* Fill @p s with the device's next transfer and send it; false if the
 * device has sent them all. */
static bool send_fill(struct srv_dev *d, struct slot *s) {
  uint64_t k = atomic_fetch_add(&d->next, 1);
  if (k >= o.per_dev) return false;
  bench_fill(s->cmd.buffer, o.size, (uint64_t)d->index * o.per_dev + k);
  s->cmd.commandCode = VDC_Write;
  s->cmd.size = (int32_t)o.size;
  int rc = vdi_srvdev_send_command(d->dev, &s->cmd);
  if (rc != 0) bench_die("vdi: send_command: %s", vdi_error_name(rc));
  return true;
}

/* Completion-driven producer (-p agent): the main thread primes each
 * device with `depth` filled buffers; from then on the completion routine,
 * on the agent thread, refills each buffer and sends it again, so the
 * server has one busy thread however many devices there are.  A buffer
 * that is not resent goes back to the free list; once all are back the
 * device is closed. */
static void *srv_primer(void *arg) {
  struct srv_dev *d = arg;
  pthread_mutex_lock(&d->mu);
  while (d->free_list != NULL) {
    struct slot *s = free_take(d);
    pthread_mutex_unlock(&d->mu);
    bool sent = send_fill(d, s);
    pthread_mutex_lock(&d->mu);
    if (!sent) { /* all handed out: put it back and stop priming */
      free_put(d, s);
      break;
    }
  }
  while (d->nfree < o.depth)
    pthread_cond_wait(&d->cv, &d->mu);
  pthread_mutex_unlock(&d->mu);
  int rc = vdi_srvdev_close_device(d->dev);
  if (rc != 0) bench_die("vdi: close_device: %s", vdi_error_name(rc));
  return NULL;
}

/* A device's producer: fill a free buffer, send it, keep `depth` in
 * flight; at the end wait for every completion and close the device. */
static void *srv_producer(void *arg) {
  struct srv_dev *d = arg;
  for (uint64_t k = 0; k < o.per_dev; k++) {
    pthread_mutex_lock(&d->mu);
    while (d->free_list == NULL)
      pthread_cond_wait(&d->cv, &d->mu);
    struct slot *s = free_take(d);
    pthread_mutex_unlock(&d->mu);
    bench_fill(s->cmd.buffer, o.size, (uint64_t)d->index * o.per_dev + k);
    s->cmd.commandCode = VDC_Write;
    s->cmd.size = (int32_t)o.size;
    int rc = vdi_srvdev_send_command(d->dev, &s->cmd);
    if (rc != 0) bench_die("vdi: send_command: %s", vdi_error_name(rc));
  }
  pthread_mutex_lock(&d->mu);
  while (d->nfree < o.depth)
    pthread_cond_wait(&d->cv, &d->mu);
  pthread_mutex_unlock(&d->mu);
  int rc = vdi_srvdev_close_device(d->dev);
  if (rc != 0) bench_die("vdi: close_device: %s", vdi_error_name(rc));
  return NULL;
}

static void *agent_thread(void *arg) {
  int rc = vdi_srv_execute_completion_agent(arg);
  if (rc != 0) bench_die("vdi: completion agent: %s", vdi_error_name(rc));
  return NULL;
}

static void run_vdi(int rep) {
  char name[64];
  snprintf(name, sizeof name, "bench-stream-%d-%d", (int)getpid(), rep);
  int ready[2], res[2];
  if (pipe(ready) != 0 || pipe(res) != 0)
    bench_die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) bench_die("fork: %s", strerror(errno));
  if (pid == 0) {
    close(ready[0]);
    close(res[0]);
    vdi_client(name, ready[1], res[1]);
  }
  close(ready[1]);
  close(res[1]);
  char c;
  if (!bench_read_all(ready[0], &c, 1))
    bench_die("vdi: the client failed to create the set");
  close(ready[0]);

  vdi_srvset_t *srv;
  vdi_check(vdi_srv_new(&srv), "srv_new");
  vdi_check(vdi_srv_open(srv, NULL, name), "srv_open");
  VDConfig cfg;
  vdi_check(vdi_srv_get_configuration(srv, &cfg), "srv_get_configuration");
  vdi_check(vdi_srv_begin_configuration(srv, VDF_WriteMedia, 65536, 0,
                                        (uint32_t)o.size, 10000),
            "srv_begin_configuration");
  vdi_check(vdi_srv_request_buffers(srv, (uint32_t)o.size, 0,
                                    (uint32_t)(o.depth * o.streams)),
            "srv_request_buffers");
  vdi_check(vdi_srv_end_configuration(srv), "srv_end_configuration");
  static struct srv_dev d[MAX_STREAMS];
  for (int i = 0; i < o.streams; i++) {
    char dn[VDI_MAX_NAME + 1];
    dev_name(dn, sizeof dn, name, i);
    memset(&d[i], 0, sizeof d[i]);
    atomic_init(&d[i].next, 0);
    d[i].index = i;
    pthread_mutex_init(&d[i].mu, NULL);
    pthread_cond_init(&d[i].cv, NULL);
    vdi_check(vdi_srv_open_device(srv, dn, &d[i].dev), "srv_open_device");
    for (int k = 0; k < o.depth; k++) {
      struct slot *s = &d[i].slots[k];
      vdi_check(
          vdi_srv_allocate_buffer(srv, &s->cmd.buffer, (uint32_t)o.size, 0),
          "srv_allocate_buffer");
      VDS_SET_COMPLETION(&s->cmd, on_complete);
      s->cmd.completionContext = (uint8_t *)s;
      s->owner = &d[i];
      free_put(&d[i], s);
    }
  }
  pthread_t agent, th[MAX_STREAMS];
  double t0 = start_clock(), c0 = bench_cpu_self();
  pthread_create(&agent, NULL, agent_thread, srv);
  for (int i = 0; i < o.streams; i++)
    pthread_create(&th[i], NULL, o.agent_fills ? srv_primer : srv_producer,
                   &d[i]);
  for (int i = 0; i < o.streams; i++)
    pthread_join(th[i], NULL);
  pthread_join(agent, NULL);
  double secs = bench_now() - t0, cpu = bench_cpu_self() - c0;
  for (int i = 0; i < o.streams; i++)
    if (d[i].failed) bench_die("vdi: a write failed on device %d", i);
  struct result r;
  if (!bench_read_all(res[0], &r, sizeof r)) bench_die("vdi: the client died");
  close(res[0]);
  if (wait_child(pid) != 0) bench_die("vdi: the client exited with an error");
  for (int i = 0; i < o.streams; i++)
    for (int k = 0; k < o.depth; k++)
      vdi_srv_free_buffer(srv, d[i].slots[k].cmd.buffer, (uint32_t)o.size);
  vdi_check(vdi_srv_close(srv), "srv_close");
  vdi_srv_free(srv);
  for (int i = 0; i < o.streams; i++) {
    pthread_mutex_destroy(&d[i].mu);
    pthread_cond_destroy(&d[i].cv);
  }
  check(&r);
  report(secs, cpu, r.cpu);
}

/* --------------------------------------------------------------- main */

/* The last-level cache's size as the kernel describes it (sysfs; glibc's
 * sysconf reads CPUID, which in a VM can name the host's whole cache: 64
 * MiB here against the 8 MiB the guest is given), 0 if unknown. */
static uint64_t last_level_cache(void) {
  for (int i = 3; i >= 2; i--) {
    char path[96];
    snprintf(path, sizeof path,
             "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    char unit = 0;
    int n = f ? fscanf(f, "%llu%c", &v, &unit) : 0;
    if (f) fclose(f);
    if (n >= 1 && v > 0)
      return unit == 'K' ? v << 10 : unit == 'M' ? v << 20 : v;
  }
  long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return v > 0 ? (uint64_t)v : 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench-stream -m inproc|threads|fill|pipe|unix|vdi|vdi-agent "
          "-s SIZE "
          "[-d STREAMS] [-b BYTES] [-r REPS] [-n DEPTH]\n");
  exit(2);
}

int main(int argc, char **argv) {
  o = (struct opts){"vdi", 1 << 20, 1, 1ull << 30, 5, 0, 0, 0};
  int c;
  while ((c = getopt(argc, argv, "m:s:d:b:r:n:")) != -1) {
    switch (c) {
    case 'm':
      o.mode = optarg;
      break;
    case 's':
      o.size = bench_parse_size(optarg);
      break;
    case 'd':
      o.streams = atoi(optarg);
      break;
    case 'b':
      o.bytes = bench_parse_size(optarg);
      break;
    case 'r':
      o.reps = atoi(optarg);
      break;
    case 'n':
      o.depth = atoi(optarg);
      break;
    default:
      usage();
    }
  }
  if (o.size < 4096 || o.size % 65536 != 0 || o.size > (4u << 20) ||
      o.streams < 1 || o.streams > MAX_STREAMS || o.reps < 1 || o.depth < 0 ||
      o.depth > 64)
    usage();
  /* By default the devices keep half the last-level cache in flight (4 to
   * 64 buffers each): a buffer is refilled once the consumer's core has
   * let its lines go to the shared cache (see free_put), and the ring
   * still fits there, so no line goes out to memory and back.  Writing a
   * ring larger than the cache runs at the memory's speed: mode fill
   * shows that ceiling (docs/PERFORMANCE.md). */
  if (o.depth == 0) {
    uint64_t llc = last_level_cache();
    uint64_t in_flight = llc > 0 ? llc / 2 : 16u << 20;
    uint64_t d = in_flight / (uint64_t)o.streams / o.size;
    o.depth = d < 4 ? 4 : d > 64 ? 64 : (int)d;
  }
  o.per_dev = o.bytes / o.size / (uint64_t)o.streams;
  if (o.per_dev == 0) o.per_dev = 1;

  void (*fn)(void) = NULL;
  if (strcmp(o.mode, "inproc") == 0 || strcmp(o.mode, "threads") == 0 ||
      strcmp(o.mode, "fill") == 0) {
    o.streams = 1;
    o.per_dev = o.bytes / o.size;
    fn = strcmp(o.mode, "inproc") == 0    ? run_inproc
         : strcmp(o.mode, "threads") == 0 ? run_threads
                                          : run_fill;
  } else if (strcmp(o.mode, "pipe") == 0 || strcmp(o.mode, "unix") == 0) {
    fn = run_fd;
  } else if (strcmp(o.mode, "vdi") == 0 || strcmp(o.mode, "vdi-agent") == 0) {
    o.agent_fills = strcmp(o.mode, "vdi-agent") == 0;
    /* The link stub answers everything with VD_E_UNEXPECTED; the real
     * vdi_srv_new can only fail with VD_E_MEMORY. */
    vdi_srvset_t *probe;
    int rc = vdi_srv_new(&probe);
    if (rc == VD_E_UNEXPECTED) {
      fprintf(stderr, "bench: libvdi in this build is the link stub\n");
      return 77;
    }
    vdi_check(rc, "srv_new");
    vdi_srv_free(probe);
  } else {
    usage();
  }
  for (int rep = 0; rep < o.reps; rep++) {
    /* Where the host has the two CPUs now (bench.h); -1 on one CPU. */
    cacheline_us = bench_cacheline_us();
    if (fn != NULL)
      fn();
    else
      run_vdi(rep);
  }
  return 0;
}
