/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sqlvdi-sdk.c - libsqlvdi.so driven by real SDK clients.
 *
 * Each test runs one of the C++ client programs of tests/cxx/ (built only
 * from the SDK header and linked with -lsqlvdi, as an existing Linux VDI
 * client is) in its own process, and a test engine in another: the helper
 * sqlvdi_server, written on the server half of the C API.  The engine sends
 * a known pseudo-random byte stream as Writes (backup) or asks for it back
 * with Reads (restore) and checks every byte; the test checks the files the
 * client wrote and both exit statuses.
 */
#include "task.h"

#include "vdi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ----------------------------------------------------------- the pattern */

/* Byte i of stream `seed`: 8 bytes of splitmix64 per 8-byte word. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static void pattern_fill(uint8_t *p, uint64_t off, size_t n, uint64_t seed) {
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t pos = off + i;
    if (i == 0 || (pos & 7) == 0) w = mix64((seed << 40) ^ (pos >> 3));
    p[i] = (uint8_t)(w >> (8 * (pos & 7)));
  }
}

/* Index of the first byte that differs from the pattern, or -1. */
static long pattern_diff(const uint8_t *p, uint64_t off, size_t n,
                         uint64_t seed) {
  uint8_t tmp[4096];
  for (size_t done = 0; done < n;) {
    size_t k = n - done < sizeof tmp ? n - done : sizeof tmp;
    pattern_fill(tmp, off + done, k, seed);
    for (size_t i = 0; i < k; i++)
      if (p[done + i] != tmp[i]) return (long)(done + i);
    done += k;
  }
  return -1;
}

/* The seed of device d's stream in session s of a run seeded `seed`. */
static uint64_t stream_seed(uint64_t seed, int s, int d) {
  return seed + 100u * (uint64_t)s + (uint64_t)d;
}

/* ------------------------------------------------------ the test engine */

#define BLOCK 4096u
#define MAXTX (256u * 1024u)
#define NBUF  6

enum mode { M_BACKUP, M_RESTORE, M_ABORT, M_GAPS, M_PAUSE };

struct scmd;
struct srv {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  vdi_srvset_t *set;
  int inflight, max_inflight;
  int aborted; /* a call returned VD_E_ABORT or a command came back 995 */
  int errors;  /* completions that are wrong for the mode */
  int n_ok;    /* completions with ERROR_SUCCESS */
  int n_995;   /* completions with ERROR_OPERATION_ABORTED */
  int n_short; /* Reads completed ERROR_HANDLE_EOF with 0 < bytes < size */
  /* Reads queued behind the end-of-file completion: the device went to
   * IO-ERROR, so the library fails them with ERROR_IO_DEVICE (spec 2.4.4).
   * The lowest offset of such a Read, per device. */
  int n_iodev;
  uint64_t iodev_min[VDI_MAX_DEVICES];
  int eof[VDI_MAX_DEVICES];
  uint64_t eof_at[VDI_MAX_DEVICES];
  uint64_t seed[VDI_MAX_DEVICES];
};

struct scmd {
  VDS_Command c; /* first: the routine gets its address */
  struct srv *s;
  int dev;
  uint64_t off;
  uint32_t size;
};

static void srv_done(VDS_Command *c) {
  struct scmd *sc = (struct scmd *)(void *)c->completionContext;
  struct srv *s = sc->s;
  int code = c->completionCode;
  uint32_t got = (uint32_t)c->bytesTransferred;
  int bad = 0, d = sc->dev;
  if (code == ERROR_OPERATION_ABORTED) {
    /* counted below */
  } else if (c->commandCode == VDC_Write) {
    bad = code != ERROR_SUCCESS || got != sc->size;
  } else if (c->commandCode == VDC_Read) {
    if (code == ERROR_SUCCESS)
      bad = got != sc->size;
    else if (code == ERROR_IO_DEVICE)
      bad = got != 0;
    else
      bad = code != ERROR_HANDLE_EOF || got > sc->size;
    if (!bad && got > 0 &&
        pattern_diff(c->buffer, sc->off, got, s->seed[d]) >= 0) {
      fprintf(stderr, "device %d: wrong data in Read at %llu\n", d,
              (unsigned long long)sc->off);
      bad = 1;
    }
  } else {
    bad = code != ERROR_SUCCESS;
  }
  if (bad)
    fprintf(stderr,
            "device %d: command %d (size %u at %llu) -> code %d, %u"
            " bytes\n",
            d, c->commandCode, sc->size, (unsigned long long)sc->off, code,
            got);
  if (c->buffer) vdi_srv_free_buffer(s->set, c->buffer, sc->size);

  pthread_mutex_lock(&s->mu);
  if (code == ERROR_OPERATION_ABORTED) {
    s->n_995++;
    s->aborted = 1;
  } else if (bad) {
    s->errors++;
  } else if (code == ERROR_SUCCESS) {
    s->n_ok++;
    if (c->commandCode == VDC_Read && s->eof[d] && sc->off >= s->eof_at[d]) {
      fprintf(stderr, "device %d: data after end of file\n", d);
      s->errors++;
    }
  } else if (code == ERROR_IO_DEVICE) {
    s->n_iodev++;
    if (sc->off < s->iodev_min[d]) s->iodev_min[d] = sc->off;
  } else if (code == ERROR_HANDLE_EOF) {
    if (got > 0) s->n_short++;
    if (!s->eof[d] || sc->off + got < s->eof_at[d])
      s->eof_at[d] = sc->off + got;
    s->eof[d] = 1;
  }
  s->inflight--;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  free(sc);
}

static void *srv_agent(void *arg) {
  struct srv *s = arg;
  return (void *)(intptr_t)vdi_srv_execute_completion_agent(s->set);
}

/* Wait until fewer than `max` commands are out; 0 if the set aborted. */
static int srv_slot(struct srv *s, int max) {
  pthread_mutex_lock(&s->mu);
  while (s->inflight >= max && !s->aborted)
    pthread_cond_wait(&s->cv, &s->mu);
  int ok = !s->aborted;
  if (ok) s->inflight++;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

static void srv_mark_abort(struct srv *s) {
  pthread_mutex_lock(&s->mu);
  s->aborted = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

/* Send one command; 0, or the failing call's code (the set aborted). */
static int srv_send(struct srv *s, vdi_srvdev_t *dev, int d, int code,
                    uint64_t off, uint32_t size) {
  if (!srv_slot(s, s->max_inflight)) return VD_E_ABORT;
  struct scmd *sc = calloc(1, sizeof *sc);
  ASSERT_NOT_NULL(sc);
  sc->s = s;
  sc->dev = d;
  sc->off = off;
  sc->size = size;
  if (size > 0) {
    int rc = vdi_srv_allocate_buffer(s->set, &sc->c.buffer, size, 0);
    if (rc != 0) {
      free(sc);
      pthread_mutex_lock(&s->mu);
      s->inflight--;
      pthread_mutex_unlock(&s->mu);
      if (rc == VD_E_ABORT) srv_mark_abort(s);
      return rc;
    }
    if (code == VDC_Write)
      pattern_fill(sc->c.buffer, off, size, s->seed[d]);
    else
      memset(sc->c.buffer, 0xEE, size); /* stale bytes must not pass */
  }
  sc->c.commandCode = code;
  sc->c.size = (int32_t)size;
  sc->c.completionContext = (uint8_t *)sc;
  VDS_SET_COMPLETION(&sc->c, srv_done);
  /* On failure the routine has already run (and freed sc). */
  int rc = vdi_srvdev_send_command(dev, &sc->c);
  if (rc == VD_E_ABORT) srv_mark_abort(s);
  return rc;
}

static void srv_drain(struct srv *s) {
  pthread_mutex_lock(&s->mu);
  while (s->inflight > 0)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

/* The client creates the set when it starts: wait for it to exist. */
static vdi_srvset_t *srv_open_wait(const char *name) {
  int64_t end = now_ms() + 10000;
  for (;;) {
    vdi_srvset_t *set = NULL;
    ASSERT_RC(vdi_srv_new(&set), 0);
    int rc = vdi_srv_open(set, NULL, name);
    if (rc == 0) return set;
    vdi_srv_free(set);
    /* No set yet (VD_E_INVALID), or still the client's previous one,
     * which it is closing (VD_E_BUSY, VD_E_PROTOCOL, VD_E_ABORT): a real
     * engine only starts after the client re-created the set; we poll. */
    if ((rc != VD_E_INVALID && rc != VD_E_BUSY && rc != VD_E_PROTOCOL &&
         rc != VD_E_ABORT) ||
        now_ms() > end)
      ASSERT_RC(rc, 0);
    sleep_ms(5);
  }
}

static uint32_t rnd(uint64_t *st) {
  *st ^= *st << 13;
  *st ^= *st >> 7;
  *st ^= *st << 17;
  return (uint32_t)(*st >> 11);
}

/* A transfer size: a multiple of BLOCK in [BLOCK, MAXTX]. */
static uint32_t chunk(uint64_t *st) {
  return (1 + rnd(st) % (MAXTX / BLOCK)) * BLOCK;
}

static const char *const mode_names[] = {"backup", "restore", "abort", "gaps",
                                         "pause"};

/* One BACKUP or RESTORE, as an engine runs it; checks what the mode
 * expects and exits 1 (through ASSERT) otherwise. */
static void srv_session(const char *name, enum mode m, int ndev, uint64_t bytes,
                        uint64_t seed, int session) {
  struct srv s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  s.max_inflight = (m == M_GAPS || m == M_PAUSE) ? 1 : NBUF;
  for (int d = 0; d < ndev; d++) {
    s.seed[d] = stream_seed(seed, session, d);
    s.iodev_min[d] = UINT64_MAX;
  }
  uint64_t rng = seed * 2654435761u + 1;

  s.set = srv_open_wait(name);
  VDConfig cfg;
  ASSERT_RC(vdi_srv_get_configuration(s.set, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, ndev);
  uint32_t features = m == M_RESTORE ? VDF_ReadMedia : VDF_WriteMedia;
  int complete = m != M_RESTORE && (cfg.features & VDF_RequestComplete);
  if (complete) features |= VDF_CompleteEnabled;
  ASSERT_RC(
      vdi_srv_begin_configuration(s.set, features, BLOCK, 0, MAXTX, 10000), 0);
  ASSERT_RC(vdi_srv_request_buffers(s.set, MAXTX, 0, NBUF), 0);
  ASSERT_RC(vdi_srv_end_configuration(s.set), 0);
  vdi_srvdev_t *dev[VDI_MAX_DEVICES];
  for (int d = 0; d < ndev; d++) {
    char dn[128];
    if (d == 0)
      snprintf(dn, sizeof dn, "%s", name);
    else
      snprintf(dn, sizeof dn, "%s%d", name, d);
    ASSERT_RC(vdi_srv_open_device(s.set, dn, &dev[d]), 0);
  }
  pthread_t agent;
  ASSERT_EQ(pthread_create(&agent, NULL, srv_agent, &s), 0);

  uint64_t pos[VDI_MAX_DEVICES] = {0};
  int stop[VDI_MAX_DEVICES] = {0};
  int sent = 0, rc = 0, live = 1;
  int64_t t0 = now_ms();
  while (live && rc == 0) {
    live = 0;
    for (int d = 0; d < ndev && rc == 0; d++) {
      if (m == M_RESTORE) {
        pthread_mutex_lock(&s.mu);
        int done = s.eof[d];
        pthread_mutex_unlock(&s.mu);
        /* A little past the end is fine: those Reads get EOF and 0. */
        if (done || stop[d] || pos[d] > bytes + MAXTX) continue;
      } else if (pos[d] >= bytes) {
        continue;
      }
      live = 1;
      uint32_t n = chunk(&rng);
      if (m != M_RESTORE && n > bytes - pos[d]) n = (uint32_t)(bytes - pos[d]);
      if (m == M_GAPS || (m == M_PAUSE && sent == 5)) {
        /* The device is idle while we "work": the client waits. */
        srv_drain(&s);
        sleep_ms(m == M_PAUSE ? 400 : (int)(rnd(&rng) % 46));
      }
      rc = srv_send(&s, dev[d], d, m == M_RESTORE ? VDC_Read : VDC_Write,
                    pos[d], n);
      pos[d] += n;
      /* The end-of-file completion put the device in IO-ERROR, so a Read
       * sent after it is refused: the engine has reached the end.  (The
       * checks below show it was the end of the data, not another error.)
       */
      if (m == M_RESTORE && rc == VD_E_IO_ERROR) {
        stop[d] = 1;
        rc = 0;
      }
      /* A mid-stream Flush, as a real backup has. */
      if (++sent == 7 && m == M_BACKUP && rc == 0)
        rc = srv_send(&s, dev[d], d, VDC_Flush, pos[d], 0);
    }
  }
  for (int d = 0; d < ndev && rc == 0 && m != M_RESTORE; d++) {
    rc = srv_send(&s, dev[d], d, VDC_Flush, pos[d], 0);
    if (rc == 0 && complete)
      rc = srv_send(&s, dev[d], d, VDC_Complete, pos[d], 0);
  }
  srv_drain(&s);
  for (int d = 0; d < ndev; d++) {
    int crc = vdi_srvdev_close_device(dev[d]);
    if (!s.aborted) ASSERT_RC(crc, 0);
  }
  void *ret;
  pthread_join(agent, &ret);
  int agent_rc = (int)(intptr_t)ret;
  int close_rc = vdi_srv_close(s.set);
  vdi_srv_free(s.set);
  fprintf(stderr,
          "engine %s #%d: %d sent, %d ok, %d aborted (995), %d short EOF, "
          "%d errors, agent %s, %lld ms\n",
          mode_names[m], session, sent, s.n_ok, s.n_995, s.n_short, s.errors,
          task_code_name(agent_rc), (long long)(now_ms() - t0));

  if (m == M_ABORT || m == M_PAUSE) {
    /* The client gave up: the set is aborted, the engine learns it. */
    ASSERT(s.aborted);
    ASSERT_RC(agent_rc, VD_E_ABORT);
    return;
  }
  ASSERT_RC(rc, 0);
  ASSERT(!s.aborted);
  ASSERT_EQ(s.errors, 0);
  ASSERT_RC(agent_rc, 0);
  ASSERT_RC(close_rc, 0);
  if (m == M_RESTORE) {
    for (int d = 0; d < ndev; d++) {
      ASSERT(s.eof[d]);
      ASSERT_UEQ(s.eof_at[d], bytes);
      ASSERT(s.iodev_min[d] >= s.eof_at[d]);
    }
    ASSERT_GT(s.n_short, 0);
  }
}

/* sqlvdi_server NAME MODE NDEV BYTES SEED SESSIONS */
HELPER_IMPL(sqlvdi_server) {
  ASSERT_EQ(argc, 7);
  enum mode m = M_BACKUP;
  for (int i = 0; i < 5; i++)
    if (strcmp(argv[2], mode_names[i]) == 0) m = (enum mode)i;
  int sessions = atoi(argv[6]);
  for (int i = 0; i < sessions; i++)
    srv_session(argv[1], m, atoi(argv[3]), strtoull(argv[4], NULL, 10),
                strtoull(argv[5], NULL, 10), i);
  return 0;
}

/* -------------------------------------------------------- the test side */

/* If set, the client runs with this LD_LIBRARY_PATH. */
static const char *client_lib_dir;

/* Start a client program from tests/cxx/ (or, given a path with a '/',
 * that program), its output going to `log`. */
static pid_t start_client(const char *prog, const char *log,
                          const char *const *args) {
  char path[4096];
  snprintf(path, sizeof path, "%s", prog[0] == '/' ? prog : build_path(prog));
  if (access(path, X_OK) != 0)
    TASK_FAIL_("%s is not built (make builds tests/cxx/*.cpp)", path);
  char ld_path[4200];
  const char *env[2] = {NULL, NULL};
  if (client_lib_dir) {
    snprintf(ld_path, sizeof ld_path, "LD_LIBRARY_PATH=%s", client_lib_dir);
    env[0] = ld_path;
  }
  spawn_io io = {.out = log, .env = env};
  return spawn_program(path, args, &io);
}

/* Wait for the client and the engine; both must exit as expected. */
static void finish(pid_t client, int want_client, pid_t server,
                   const char *log) {
  int sc = wait_helper_timeout(server, 20000);
  int cc = wait_helper_timeout(client, 5000);
  if (cc != want_client || sc != 0) {
    fprintf(stderr, "client exit %d (want %d), engine exit %d\n", cc,
            want_client, sc);
    dump_file(log);
    if (cc < 0) kill(client, SIGKILL);
    if (sc < 0) kill(server, SIGKILL);
    ASSERT_EQ(cc, want_client);
    ASSERT_EQ(sc, 0);
  }
}

/* The file `path` holds exactly `bytes` bytes of stream `seed`. */
static void check_file(const char *path, uint64_t bytes, uint64_t seed) {
  int fd = open(path, O_RDONLY);
  ASSERT(fd >= 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  ASSERT_UEQ((uint64_t)st.st_size, bytes);
  uint8_t *buf = malloc(1 << 20);
  ASSERT_NOT_NULL(buf);
  uint64_t off = 0;
  ssize_t n;
  while ((n = read(fd, buf, 1 << 20)) > 0) {
    long bad = pattern_diff(buf, off, (size_t)n, seed);
    if (bad >= 0)
      TASK_FAIL_("%s: wrong byte at %llu", path,
                 (unsigned long long)(off + (uint64_t)bad));
    off += (uint64_t)n;
  }
  ASSERT_UEQ(off, bytes);
  free(buf);
  close(fd);
}

static const char *tmp_path(const char *leaf) {
  static char bufs[4][4096];
  static int k;
  char *b = bufs[k++ % 4];
  snprintf(b, 4096, "%s/%s", test_tmpdir(), leaf);
  return b;
}

#define SEED "7"

/* One device, pipe-like, to a file; the same set object twice in a row
 * (Create after Close).  The file holds exactly what the engine sent. */
TEST_IMPL_TIMEOUT(sqlvdi_pipe_backup, 30) {
  const char *name = unique_name("pipe");
  const char *out = tmp_path("backup.bak"), *log = tmp_path("client.log");
  uint64_t bytes = 3u * MAXTX + 17u * BLOCK;
  char nb[32];
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  const char *args[] = {name, out, "2", NULL};
  pid_t c = start_client("cxx/pipe_backup", log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "backup", "1", nb, SEED, "2", NULL);
  finish(c, 0, s, log);
  for (int i = 0; i < 2; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s.%d", out, i);
    check_file(path, bytes, stream_seed(7, i, 0));
  }
  return 0;
}

/* Four devices, one thread each; every stripe file is its own stream. */
TEST_IMPL_TIMEOUT(sqlvdi_multi_device_backup, 30) {
  const char *name = unique_name("multi");
  const char *prefix = tmp_path("stripe"), *log = tmp_path("client.log");
  uint64_t bytes = 2u * MAXTX + 5u * BLOCK;
  char nb[32];
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  const char *args[] = {name, "4", prefix, NULL};
  pid_t c = start_client("cxx/multi_backup", log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "backup", "4", nb, SEED, "1", NULL);
  finish(c, 0, s, log);
  for (int d = 0; d < 4; d++) {
    char path[4200];
    snprintf(path, sizeof path, "%s.%d", prefix, d);
    check_file(path, bytes, stream_seed(7, 0, d));
  }
  return 0;
}

/* Restore from a file whose end falls inside a Read: the client completes
 * the short Read with ERROR_HANDLE_EOF; the engine checks every byte and
 * the length (it requires at least one short EOF completion). */
TEST_IMPL_TIMEOUT(sqlvdi_pipe_restore, 30) {
  const char *name = unique_name("rest");
  const char *in = tmp_path("restore.bak"), *log = tmp_path("client.log");
  uint64_t bytes = 4u * MAXTX + 3u * BLOCK;
  uint8_t *data = malloc(bytes);
  ASSERT_NOT_NULL(data);
  pattern_fill(data, 0, bytes, stream_seed(7, 0, 0));
  FILE *f = fopen(in, "wb");
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(fwrite(data, 1, bytes, f), bytes);
  ASSERT_EQ(fclose(f), 0);
  free(data);
  char nb[32];
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  const char *args[] = {name, in, NULL};
  pid_t c = start_client("cxx/pipe_restore", log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "restore", "1", nb, SEED, "1", NULL);
  finish(c, 0, s, log);
  return 0;
}

/* The client's disk fills up mid-backup (a real ENOSPC from /dev/full): it
 * calls SignalAbort; the engine sees its Write completed with
 * ERROR_OPERATION_ABORTED and its agent return VD_E_ABORT; the client sees
 * VD_E_ABORT on its device and closes.  What it stored is a clean prefix. */
TEST_IMPL_TIMEOUT(sqlvdi_abort_on_write_error, 30) {
  const char *name = unique_name("abrt");
  const char *out = tmp_path("partial.bak"), *log = tmp_path("client.log");
  uint64_t bytes = 8u * MAXTX;
  char nb[32], fail[32];
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  snprintf(fail, sizeof fail, "%u", 2u * MAXTX);
  const char *args[] = {name, out, fail, NULL};
  int64_t t0 = now_ms();
  pid_t c = start_client("cxx/abort_on_error", log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "abort", "1", nb, SEED, "1", NULL);
  finish(c, 0, s, log);
  ASSERT_LT(now_ms() - t0, 5000); /* the abort is prompt, not a timeout */
  struct stat st;
  ASSERT_EQ(stat(out, &st), 0);
  ASSERT_GT(st.st_size, 0);
  ASSERT_LE(st.st_size, 2 * MAXTX);
  check_file(out, (uint64_t)st.st_size, stream_seed(7, 0, 0));
  return 0;
}

/* A client looping on GetCommand(90 ms) keeps working while the engine
 * leaves the device idle up to 45 ms at a time (one command in flight). */
TEST_IMPL_TIMEOUT(sqlvdi_short_timeout_keeps_working, 30) {
  const char *name = unique_name("gap");
  const char *out = tmp_path("gaps.bak"), *log = tmp_path("client.log");
  uint64_t bytes = 16u * MAXTX;
  char nb[32];
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  const char *args[] = {name, out, NULL};
  pid_t c = start_client("cxx/short_timeout", log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "gaps", "1", nb, SEED, "1", NULL);
  finish(c, 0, s, log);
  check_file(out, bytes, stream_seed(7, 0, 0));
  return 0;
}

/* ... and the 90 ms are real milliseconds: a 400 ms pause ends it with
 * VD_E_TIMEOUT after about 90 ms, and its abort reaches the engine. */
TEST_IMPL_TIMEOUT(sqlvdi_short_timeout_expires, 30) {
  const char *name = unique_name("pause");
  const char *out = tmp_path("pause.bak"), *log = tmp_path("client.log");
  char nb[32];
  snprintf(nb, sizeof nb, "%u", 64u * MAXTX);
  const char *args[] = {name, out, NULL};
  pid_t c = start_client("cxx/short_timeout", log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "pause", "1", nb, SEED, "1", NULL);
  finish(c, 2, s, log);
  FILE *f = fopen(log, "r");
  ASSERT_NOT_NULL(f);
  char line[256];
  long waited = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "GetCommand: VD_E_TIMEOUT after %ld ms", &waited) == 1)
      break;
  fclose(f);
  ASSERT_GE(waited, 89);
  ASSERT_LT(waited, 350);
  return 0;
}

/* A client binary whose library is not where it was linked (as one built
 * against /opt/mssql/lib/libsqlvdi.so) runs on ours through
 * LD_LIBRARY_PATH: copied away from the build tree, its $ORIGIN/.. run
 * path finds nothing. */
TEST_IMPL_TIMEOUT(sqlvdi_ld_library_path, 30) {
  char bin[4200], libdir[4096];
  snprintf(bin, sizeof bin, "%s/bin/pipe_backup", test_tmpdir());
  snprintf(libdir, sizeof libdir, "%s", build_path("libsqlvdi.so"));
  *strrchr(libdir, '/') = 0;
  ASSERT_EQ(mkdir(tmp_path("bin"), 0755), 0);
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", build_path("cxx/pipe_backup"), bin);
  ASSERT_EQ(system(cmd), 0);
  const char *name = unique_name("ldp");
  const char *out = tmp_path("ld.bak"), *log = tmp_path("client.log");
  uint64_t bytes = 2u * MAXTX;
  char nb[32];
  snprintf(nb, sizeof nb, "%llu", (unsigned long long)bytes);
  const char *args[] = {name, out, NULL};
  client_lib_dir = libdir;
  pid_t c = start_client(bin, log, args);
  pid_t s =
      spawn_helper("sqlvdi_server", name, "backup", "1", nb, SEED, "1", NULL);
  finish(c, 0, s, log);
  check_file(out, bytes, stream_seed(7, 0, 0));
  return 0;
}
