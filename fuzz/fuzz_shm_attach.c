/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_shm_attach.c - the shared control segment as a hostile peer leaves
 * it (STYLE.md 2.9, target 1).
 *
 * A real set is created and a real server attaches to it, both in this
 * process (the abstract-socket rendezvous works within one process).  The
 * input is a script: it overwrites chosen bytes of the control segment at
 * chosen moments of the life cycle (before the server validates the
 * header, during configuration, with commands in flight, after close) and
 * interleaves the calls of both sides.  What must hold:
 *   - every call returns 0 or a VD_E_* code, nothing crashes or reads out
 *     of bounds (ASan), every command the client is given is a known code
 *     whose buffer lies inside a mapped buffer segment;
 *   - once a side is poisoned (VD_E_ABORT / VD_E_PROTOCOL) it stays so,
 *     and every later call of that side returns that same code (vdi.h);
 *   - every command sent has its completion routine run exactly once;
 *   - after close, no descriptor, shared mapping or thread is left behind.
 *
 * Input: parameters at the end (device count, device kind, media
 * direction), then operations from the front, one byte each plus operands:
 *   0, 1  PATCH  off16 len8 bytes   overwrite control bytes (off mod size)
 *   2     STEP                      next life-cycle step (see step())
 *   3     SEND   dev code size      server sends a command
 *   4     GET    dev                client vdi_dev_get_command(timeout 0)
 *   5     DONE   dev how            client completes its oldest command
 *   6     ABORT  who                SignalAbort on one side (rare)
 *   7     QUERY                     GetConfiguration on both sides
 * A hostile seg_count above the real one only costs a bounded 5 s wait in
 * the client (vdi__seg_get); the harness clamps it to keep the rate up.
 * A call that may wait for the peer forever (OpenDevice, the agent) runs
 * under a watchdog that aborts the set after 200 ms, as an application's
 * own watchdog would.
 */
#include "fuzz_helpers.h"

#include "client_int.h"
#include "server_int.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXDEV      3
#define POOL        8      /* commands in flight per device, at most */
#define BUF_SIZE    65536u /* one buffer size; max transfer too */
#define WATCHDOG_MS 200

struct fcmd {
  VDS_Command cmd;
  _Atomic int pending; /* sent, routine not yet run */
  _Atomic int *completed;
};

struct run {
  char name[64];
  uint32_t ndev, features, media;
  vdi_set_t *cli;
  vdi_srvset_t *srv;
  int stage;
  int srv_ok; /* the server is attached and usable */
  vdi_srvdev_t *sdev[MAXDEV];
  vdi_device_t *cdev[MAXDEV];
  int cdev_closed[MAXDEV]; /* saw VD_E_CLOSE */
  VDC_Command *got[MAXDEV][POOL];
  int ngot[MAXDEV];
  struct fcmd pool[MAXDEV][POOL];
  uint8_t *buf[MAXDEV];
  uint32_t real_segs;
  pthread_t agent;
  int agent_started;
  _Atomic int agent_done;
  int agent_rc;
  _Atomic int completed;
  int sent;
  int cli_poison, srv_poison;
};

/* ---------------------------------------------------------------- watchdog
 * One thread for the life of the process.  While `armed` is in the future,
 * a call that overstays it gets the set aborted from both sides. */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct run *wd_run;
static int64_t wd_deadline_ms;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watchdog(void *arg) {
  (void)arg;
  for (;;) {
    usleep(10000);
    pthread_mutex_lock(&wd_lock);
    if (wd_run && wd_deadline_ms && now_ms() > wd_deadline_ms) {
      vdi_set_signal_abort(wd_run->cli);
      if (wd_run->srv_ok) vdi_srv_signal_abort(wd_run->srv);
      wd_deadline_ms = 0;
    }
    pthread_mutex_unlock(&wd_lock);
  }
  return NULL;
}

static void start_watchdog(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
}

static void arm(struct run *r) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, start_watchdog);
  pthread_mutex_lock(&wd_lock);
  wd_run = r;
  wd_deadline_ms = now_ms() + WATCHDOG_MS;
  pthread_mutex_unlock(&wd_lock);
}

static void disarm(void) {
  pthread_mutex_lock(&wd_lock);
  wd_run = NULL;
  wd_deadline_ms = 0;
  pthread_mutex_unlock(&wd_lock);
}

/* ---------------------------------------------------------------- checks */

static int cli_code(struct run *r) {
  return atomic_load(&r->cli->c.abort_code);
}
static int srv_code(struct run *r) {
  return atomic_load(&r->srv->c.abort_code);
}
static int poison(int rc) {
  return rc == VD_E_ABORT || rc == VD_E_PROTOCOL;
}

/* FZ_TRACE=1 in the environment prints every call's result. */
static void trace(const char *side, int rc, int line) {
  static int on = -1;
  if (on < 0) on = getenv("FZ_TRACE") != NULL;
  if (on) fprintf(stderr, "%s line %d: %s\n", side, line, vdi_error_name(rc));
}
#define cli_after(r, rc, p) (trace("cli", rc, __LINE__), cli_after_(r, rc, p))
#define srv_after(r, rc, p) (trace("srv", rc, __LINE__), srv_after_(r, rc, p))

/* After every client call: legal code, and a poisoned side stays so. */
static void cli_after_(struct run *r, int rc, int was_poisoned) {
  FZ_CHECK(fz_legal_code(rc));
  /* vdi.h: after an abort or a protocol violation every later call returns
   * the same code; OpenDevice before the configuration is a state error
   * (VD_E_PROTOCOL) first. */
  if (was_poisoned)
    FZ_CHECK(rc == cli_code(r) ||
             (rc == VD_E_PROTOCOL && r->cli->state == CL_CONFIGURABLE));
  int code = cli_code(r);
  if (r->cli_poison) FZ_CHECK(code == r->cli_poison);
  if (code) r->cli_poison = code;
  if (rc == VD_E_ABORT) FZ_CHECK(code != 0);
}

/* vdi.h: on a poisoned set SendCommand always refuses with VD_E_ABORT
 * (the interface's refusal code); every other call returns the sticky
 * code, VD_E_PROTOCOL after a violation. */
static int send_call;

static void srv_after_(struct run *r, int rc, int was_poisoned) {
  FZ_CHECK(fz_legal_code(rc));
  if (was_poisoned) FZ_CHECK(send_call ? rc == VD_E_ABORT : rc == srv_code(r));
  int code = srv_code(r);
  if (r->srv_poison) FZ_CHECK(code == r->srv_poison);
  if (code) r->srv_poison = code;
  if (rc == VD_E_ABORT) FZ_CHECK(code != 0);
}

static void routine(VDS_Command *cmd) {
  struct fcmd *f = (struct fcmd *)(void *)cmd;
  /* Exactly once per send: never for a command that is not in flight. */
  FZ_CHECK(atomic_exchange(&f->pending, 0) == 1);
  atomic_fetch_add(f->completed, 1);
}

static void *agent_main(void *arg) {
  struct run *r = arg;
  r->agent_rc = vdi_srv_execute_completion_agent(r->srv);
  atomic_store(&r->agent_done, 1);
  return NULL;
}

/* ---------------------------------------------------------------- steps */

static void dev_name(struct run *r, uint32_t i, char *out, size_t n) {
  if (i == 0)
    snprintf(out, n, "%s", r->name);
  else
    snprintf(out, n, "%s_%u", r->name, i);
}

static void step(struct run *r) {
  int rc, p;
  switch (r->stage++) {
  case 0: /* the server attaches: it validates the header as it is now */
    rc = vdi_srv_open(r->srv, NULL, r->name);
    FZ_CHECK(fz_legal_code(rc));
    r->srv_ok = rc == 0;
    break;
  case 1: /* configuration */
    if (!r->srv_ok) break;
    {
      VDConfig cfg;
      p = srv_code(r) != 0;
      rc = vdi_srv_get_configuration(r->srv, &cfg);
      srv_after(r, rc, p);
      if (rc) break;
      p = srv_code(r) != 0;
      rc = vdi_srv_begin_configuration(r->srv, r->media, 4096, 0, BUF_SIZE, 0);
      srv_after(r, rc, p);
      if (rc) break;
      p = srv_code(r) != 0;
      rc = vdi_srv_request_buffers(r->srv, BUF_SIZE, 0, r->ndev);
      srv_after(r, rc, p);
      if (rc) break;
      p = srv_code(r) != 0;
      rc = vdi_srv_end_configuration(r->srv);
      srv_after(r, rc, p);
      if (rc == 0) r->real_segs = 1;
    }
    break;
  case 2: { /* the client takes the configuration */
    VDConfig cfg;
    p = cli_code(r) != 0;
    rc = vdi_set_get_configuration(r->cli, 0, &cfg);
    cli_after(r, rc, p);
    break;
  }
  case 3: /* the server names and opens every device */
    if (!r->srv_ok) break;
    for (uint32_t i = 0; i < r->ndev; i++) {
      char dn[128];
      dev_name(r, i, dn, sizeof dn);
      p = srv_code(r) != 0;
      rc = vdi_srv_open_device(r->srv, dn, &r->sdev[i]);
      srv_after(r, rc, p);
      if (rc) r->sdev[i] = NULL;
      if (rc == 0) {
        uint8_t *b = NULL;
        p = srv_code(r) != 0;
        rc = vdi_srv_allocate_buffer(r->srv, &b, BUF_SIZE, 0);
        srv_after(r, rc, p);
        r->buf[i] = rc == 0 ? b : NULL;
      }
    }
    break;
  case 4: /* the client opens them (waits for names: under the watchdog) */
    for (uint32_t i = 0; i < r->ndev; i++) {
      char dn[128];
      dev_name(r, i, dn, sizeof dn);
      p = cli_code(r) != 0;
      arm(r);
      rc = vdi_set_open_device(r->cli, dn, &r->cdev[i]);
      disarm();
      cli_after(r, rc, p);
      FZ_CHECK((rc == 0) == (r->cdev[i] != NULL));
    }
    break;
  case 5: /* the completion agent */
    if (!r->srv_ok) break;
    if (pthread_create(&r->agent, NULL, agent_main, r) == 0)
      r->agent_started = 1;
    break;
  case 6: /* the server closes every device */
    if (!r->srv_ok) break;
    for (uint32_t i = 0; i < r->ndev; i++) {
      if (!r->sdev[i]) continue;
      p = srv_code(r) != 0;
      rc = vdi_srvdev_close_device(r->sdev[i]);
      srv_after(r, rc, p);
    }
    break;
  default:
    break;
  }
}

static void do_send(struct run *r, uint32_t d, uint8_t code, uint8_t sz) {
  if (r->stage != 6 || !r->agent_started || !r->sdev[d]) return;
  struct fcmd *f = NULL;
  for (int k = 0; k < POOL; k++)
    if (!atomic_load(&r->pool[d][k].pending)) {
      f = &r->pool[d][k];
      break;
    }
  if (!f) return;
  memset(&f->cmd, 0, sizeof f->cmd);
  /* Mostly Read/Write, which carry buffers; sometimes any code at all. */
  f->cmd.commandCode = code < 200 ? VDC_Read + code % 2 : code % 24;
  f->cmd.size = (int32_t)((uint32_t)(sz % 16 + 1) * 4096u);
  f->cmd.inPosition = sz;
  f->cmd.buffer = r->buf[d];
  f->completed = &r->completed;
  VDS_SET_COMPLETION(&f->cmd, routine);
  atomic_store(&f->pending, 1);
  r->sent++;
  int p = srv_code(r) != 0;
  int rc = vdi_srvdev_send_command(r->sdev[d], &f->cmd);
  send_call = 1;
  srv_after(r, rc, p);
  send_call = 0;
  /* A refused command's routine ran at once, in this thread. */
  if (rc != 0) FZ_CHECK(atomic_load(&f->pending) == 0);
}

/* 1 if a command was taken. */
static int do_get(struct run *r, uint32_t d) {
  vdi_device_t *dev = r->cdev[d];
  if (!dev || r->cdev_closed[d] || r->ngot[d] == POOL) return 0;
  VDC_Command *c = NULL;
  int p = cli_code(r) != 0;
  int rc = vdi_dev_get_command(dev, 0, &c);
  cli_after(r, rc, p);
  FZ_CHECK((rc == 0) == (c != NULL));
  if (rc == VD_E_CLOSE) r->cdev_closed[d] = 1;
  if (rc) return 0;
  FZ_CHECK(c->commandCode >= VDC_Read && c->commandCode <= VDC_Complete);
  if (c->commandCode == VDC_Read || c->commandCode == VDC_Write) {
    FZ_CHECK(c->size > 0 && (uint32_t)c->size <= BUF_SIZE);
    FZ_CHECK(fz_in_mapping(c->buffer, (size_t)c->size, "memfd:vdi-buffers"));
    /* Touch every byte, as a client reading or writing media does. */
    if (c->commandCode == VDC_Read)
      memset(c->buffer, 0xA5, (size_t)c->size);
    else {
      volatile uint8_t sum = 0;
      for (uint32_t i = 0; i < c->size; i++)
        sum ^= c->buffer[i];
      (void)sum;
    }
  }
  r->got[d][r->ngot[d]++] = c;
  return 1;
}

static void do_complete(struct run *r, uint32_t d, uint8_t how) {
  vdi_device_t *dev = r->cdev[d];
  if (!dev || r->ngot[d] == 0) return;
  VDC_Command *c = r->got[d][0];
  memmove(&r->got[d][0], &r->got[d][1], (size_t)--r->ngot[d] * sizeof c);
  uint32_t code = how < 224 ? ERROR_SUCCESS
                            : (how < 240 ? ERROR_HANDLE_EOF : ERROR_IO_DEVICE);
  uint32_t bytes = (c->commandCode == VDC_Read || c->commandCode == VDC_Write)
                       ? (uint32_t)c->size
                       : 0;
  int p = cli_code(r) != 0;
  int rc = vdi_dev_complete_command(dev, c, code, bytes, 0);
  if (r->cdev_closed[d] && rc == VD_E_PROTOCOL) return; /* device gone */
  cli_after(r, rc, p);
  FZ_CHECK(rc == 0 || poison(rc));
}

/* Take everything the client can still take and complete it. */
static void drain_client(struct run *r) {
  for (int round = 0; round < POOL * 4; round++) {
    int any = 0;
    for (uint32_t d = 0; d < r->ndev; d++) {
      if (r->ngot[d] > 0) any = 1;
      while (r->ngot[d] > 0)
        do_complete(r, d, 0);
      if (do_get(r, d)) any = 1;
      while (r->ngot[d] > 0)
        do_complete(r, d, 0);
    }
    if (!any) break;
  }
}

static void clamp_segs(struct run *r) {
  struct vdi_shm_hdr *h = r->cli->c.hdr;
  if (atomic_load(&h->seg_count) > r->real_segs)
    atomic_store(&h->seg_count, r->real_segs);
}

static void patch(struct run *r, fz_producer *fp) {
  struct vdi_shm_hdr *h = r->cli->c.hdr;
  uint32_t total = (uint32_t)r->cli->c.geom.total_size;
  size_t n;
  const uint8_t *o = fzp_take(fp, 3, &n);
  if (n < 3) return;
  uint32_t off = (o[0] | (uint32_t)o[1] << 8) % total;
  size_t len = (size_t)o[2] % 16 + 1;
  if (len > total - off) len = total - off;
  const uint8_t *b = fzp_take(fp, len, &n);
  memcpy((uint8_t *)h + off, b, n);
  clamp_segs(r);
}

static void teardown(struct run *r) {
  drain_client(r);
  if (r->stage <= 6) {
    r->stage = 6;
    step(r); /* the server closes the devices */
  }
  drain_client(r);
  if (r->agent_started) {
    /* Completions still in the ring arrive soon; commands the client never
     * saw (a peer hid them) never will: then abort, as serverTimeOut
     * would. */
    int64_t end = now_ms() + 20;
    while (!atomic_load(&r->agent_done) && now_ms() < end)
      usleep(200);
    if (!atomic_load(&r->agent_done)) {
      int rc = vdi_srv_signal_abort(r->srv);
      srv_after(r, rc, 0);
      FZ_CHECK(rc == 0);
    }
    arm(r);
    pthread_join(r->agent, NULL);
    disarm();
    /* VD_E_PROTOCOL: started before the configuration ended (it failed). */
    FZ_CHECK(r->agent_rc == 0 || poison(r->agent_rc));
    if (r->agent_rc == 0) FZ_CHECK(atomic_load(&r->completed) == r->sent);
    /* 0 is a normal end, never after an abort. */
    if (r->agent_rc == 0) FZ_CHECK(srv_code(r) == 0);
  }
  int rc = vdi_set_close(r->cli);
  FZ_CHECK(fz_legal_code(rc));
  if (r->srv_ok) {
    rc = vdi_srv_close(r->srv);
    FZ_CHECK(fz_legal_code(rc));
  }
  /* Every routine ran exactly once, whatever happened. */
  FZ_CHECK(atomic_load(&r->completed) == r->sent);
  vdi_set_free(r->cli);
  vdi_srv_free(r->srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint32_t kinds[] = {VDF_LikePipe, VDF_LikeDisk, VDF_LikeTape,
                                   VDF_LikePipe | VDF_RequestComplete};
  vdi_lib_set_spin_us(0); /* two sides on few cores: do not spin */
  arm(NULL);              /* the watchdog thread exists before we count */
  disarm();
  int fds0 = fz_fd_count(), threads0 = fz_thread_count();
  fz_producer fp;
  fzp_init(&fp, data, size);
  struct run *r = calloc(1, sizeof *r);
  r->ndev = fzp_range(&fp, 1, MAXDEV);
  r->features = kinds[fzp_u8(&fp) % 4];
  r->media = fzp_u8(&fp) & 1 ? VDF_ReadMedia : VDF_WriteMedia;
  fz_set_name(r->name, sizeof r->name);

  VDConfig cfg = {0};
  cfg.deviceCount = r->ndev;
  cfg.features = r->features;
  FZ_CHECK(vdi_set_new(&r->cli) == 0 && vdi_srv_new(&r->srv) == 0);
  int rc = vdi_set_create(r->cli, r->name, &cfg);
  FZ_CHECK(rc == 0);

  while (fzp_left(&fp) > 0) {
    uint8_t op = fzp_take(&fp, 1, &(size_t){0})[0];
    size_t n;
    const uint8_t *a;
    switch (op % 8) {
    case 0:
    case 1:
      patch(r, &fp);
      break;
    case 2:
      step(r);
      break;
    case 3:
      a = fzp_take(&fp, 3, &n);
      if (n == 3) do_send(r, a[0] % r->ndev, a[1], a[2]);
      break;
    case 4:
      a = fzp_take(&fp, 1, &n);
      if (n == 1) (void)do_get(r, a[0] % r->ndev);
      break;
    case 5:
      a = fzp_take(&fp, 2, &n);
      if (n == 2) do_complete(r, a[0] % r->ndev, a[1]);
      break;
    case 6:
      a = fzp_take(&fp, 1, &n);
      /* Rare on purpose: an abort makes every later call trivial. */
      if (n == 1 && a[0] == 0xAB) {
        rc = vdi_set_signal_abort(r->cli); /* 0, also when aborted */
        cli_after(r, rc, 0);
        FZ_CHECK(rc == 0 && cli_code(r) != 0);
      } else if (n == 1 && a[0] == 0xBA && r->srv_ok) {
        rc = vdi_srv_signal_abort(r->srv);
        srv_after(r, rc, 0);
        FZ_CHECK(rc == 0 && srv_code(r) != 0);
      }
      break;
    case 7: {
      VDConfig c;
      int p = cli_code(r) != 0;
      rc = vdi_set_get_configuration(r->cli, 0, &c);
      cli_after(r, rc, p);
      if (r->srv_ok) {
        p = srv_code(r) != 0;
        rc = vdi_srv_get_configuration(r->srv, &c);
        srv_after(r, rc, p);
      }
      break;
    }
    }
  }
  teardown(r);
  free(r);
  /* Nothing left behind: descriptors, control or buffer mappings. */
  FZ_CHECK(fz_map_count("memfd:vdi-") == 0);
  FZ_CHECK(fz_fd_count() == fds0);
  FZ_CHECK(fz_thread_count_settled(threads0) ==
           threads0); /* watchers and agent joined */
  return 0;
}
