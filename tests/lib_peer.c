/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib_peer.c - the remote-peer machinery of lib_peer.h: the pipe protocol
 * the tests use to drive a helper process, the two helpers themselves
 * (lp_srv plays a server, lp_cli a client), byte patterns and the
 * completion-routine recorder.
 */
#include "lib_peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <unistd.h>

/* ------------------------------------------------------------ pipe lines */

/* Read one '\n'-terminated line within timeout_ms; 0 on success, -1 on EOF
 * or timeout. */
static int read_line(int fd, char *buf, size_t n, int timeout_ms) {
  size_t len = 0;
  int64_t end = now_ms() + timeout_ms;
  while (len + 1 < n) {
    int left = (int)(end - now_ms());
    if (timeout_ms >= 0 && left <= 0) return -1;
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout_ms < 0 ? -1 : left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t k = read(fd, buf + len, 1);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    if (buf[len] == '\n') {
      buf[len] = 0;
      return 0;
    }
    len++;
  }
  return -1;
}

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, s, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) TASK_FAIL_("pipe write: %s", strerror(errno));
    s += k;
    n -= (size_t)k;
  }
}

lp_peer *lp_spawn(const char *helper) {
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0)
    TASK_FAIL_("pipe2: %s", strerror(errno));
  /* Only the helper's ends survive exec. */
  fcntl(down[0], F_SETFD, 0);
  fcntl(up[1], F_SETFD, 0);
  char rfd[16], wfd[16];
  snprintf(rfd, sizeof rfd, "%d", down[0]);
  snprintf(wfd, sizeof wfd, "%d", up[1]);
  lp_peer *p = calloc(1, sizeof *p);
  ASSERT_NOT_NULL(p);
  p->helper = helper;
  p->pid = spawn_helper(helper, rfd, wfd, NULL);
  close(down[0]);
  close(up[1]);
  p->to = down[1];
  p->from = up[0];
  /* Wait until the helper runs its own image: until exec, the forked child
   * holds copies of our descriptors, a set's listening socket included, so
   * a set closed in that window would keep its name bound. */
  char hello[32];
  if (read_line(p->from, hello, sizeof hello, 5000) != 0 ||
      strcmp(hello, "ready") != 0)
    TASK_FAIL_("helper %s did not start", helper);
  return p;
}

int lp_call(lp_peer *p, const char *fmt, ...) {
  char req[512], ans[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(req, sizeof req - 1, fmt, ap);
  va_end(ap);
  ASSERT(n > 0 && n < (int)sizeof req - 1);
  req[n++] = '\n';
  write_all(p->to, req, (size_t)n);
  if (read_line(p->from, ans, sizeof ans, 9000) != 0) {
    int st = wait_helper_timeout(p->pid, 100);
    req[n - 1] = 0;
    TASK_FAIL_("%s: no answer to \"%s\" (helper status %d)", p->helper, req,
               st);
  }
  char *save = NULL, *tok = strtok_r(ans, " ", &save);
  ASSERT_NOT_NULL(tok);
  int rc = (int)strtoll(tok, NULL, 0);
  p->nv = 0;
  while ((tok = strtok_r(NULL, " ", &save)) != NULL && p->nv < LP_MAXV)
    p->v[p->nv++] = strtoll(tok, NULL, 0);
  return rc;
}

int64_t lp_v(lp_peer *p, int i) {
  if (i >= p->nv) TASK_FAIL_("%s: answer has no value %d", p->helper, i);
  return p->v[i];
}

void lp_end(lp_peer *p) {
  write_all(p->to, "quit\n", 5);
  int st = wait_helper_timeout(p->pid, 5000);
  close(p->to);
  close(p->from);
  if (st != 0) TASK_FAIL_("helper %s exited with %d", p->helper, st);
  free(p);
}

/* ------------------------------------------------------------- utilities */

const char *lp_devname(const char *set, int i, char *buf, size_t n) {
  if (i == 0)
    snprintf(buf, n, "%s", set);
  else
    snprintf(buf, n, "%s_d%d", set, i);
  return buf;
}

static uint8_t pattern_byte(uint32_t seed, size_t i) {
  uint32_t x = seed * 2654435761u ^ (uint32_t)i * 40503u ^ (uint32_t)(i >> 8);
  x ^= x >> 13;
  x *= 0x5bd1e995u;
  x ^= x >> 15;
  return (uint8_t)x;
}

void lp_fill(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = pattern_byte(seed, i);
}

long lp_check(const uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte(seed, i)) return (long)i;
  return -1;
}

VDConfig lp_cfg(uint32_t ndev, uint32_t features) {
  VDConfig c;
  memset(&c, 0, sizeof c);
  c.deviceCount = ndev;
  c.features = features;
  return c;
}

/* ------------------------------------------------------ completion slots */

void lp_slot_init(lp_slot *s, int code, int size, int64_t pos, uint8_t *buf) {
  memset(&s->cmd, 0, sizeof s->cmd);
  s->cmd.commandCode = code;
  s->cmd.size = size;
  s->cmd.inPosition = pos;
  s->cmd.outPosition = -12345; /* must be overwritten by the completion */
  s->cmd.buffer = buf;
  s->cmd.completionCode = -777;
  s->cmd.bytesTransferred = -777;
  s->cmd.completionContext = (uint8_t *)s;
  VDS_SET_COMPLETION(&s->cmd, lp_routine);
  atomic_store(&s->calls, 0);
  atomic_store(&s->bad_ctx, 0);
  s->at_us = 0;
}

void lp_routine(VDS_Command *cmd) {
  lp_slot *s = (lp_slot *)cmd;
  if (cmd->completionContext != (uint8_t *)s) {
    atomic_store(&s->bad_ctx, 1);
  }
  s->thread = pthread_self();
  s->at_us = now_us();
  s->code = cmd->completionCode;
  s->bytes = cmd->bytesTransferred;
  s->outpos = cmd->outPosition;
  atomic_fetch_add(&s->calls, 1);
}

int lp_slot_wait(lp_slot *s, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  while (atomic_load(&s->calls) == 0) {
    if (now_ms() >= end) return 0;
    sleep_ms(1);
  }
  return 1;
}

/* --------------------------------------------------------- local server */

static void *agent_main(void *arg) {
  lp_srv *s = arg;
  s->agent_rc = vdi_srv_execute_completion_agent(s->srv);
  atomic_store(&s->agent_done, 1);
  return NULL;
}

void lp_srv_agent_start(lp_srv *s) {
  atomic_store(&s->agent_done, 0);
  ASSERT_EQ(pthread_create(&s->agent, NULL, agent_main, s), 0);
  s->agent_started = 1;
}

int lp_srv_agent_join(lp_srv *s, int timeout_ms) {
  if (!s->agent_started) TASK_FAIL_("agent not started");
  int64_t end = now_ms() + timeout_ms;
  while (!atomic_load(&s->agent_done)) {
    if (now_ms() >= end) return LP_RUNNING;
    sleep_ms(1);
  }
  pthread_join(s->agent, NULL);
  s->agent_started = 0;
  return s->agent_rc;
}

void lp_srv_config(lp_srv *s, const char *name, uint32_t features, uint32_t bs,
                   uint32_t mt, uint32_t nbuf) {
  VDConfig c;
  ASSERT_RC(vdi_srv_open(s->srv, NULL, name), 0);
  ASSERT_RC(vdi_srv_get_configuration(s->srv, &c), 0);
  ASSERT_RC(vdi_srv_begin_configuration(s->srv, features, bs, 0, mt, 1000), 0);
  ASSERT_RC(vdi_srv_request_buffers(s->srv, mt, 0, nbuf), 0);
  ASSERT_RC(vdi_srv_end_configuration(s->srv), 0);
}

void lp_srv_open_devs(lp_srv *s, const char *name, int n) {
  char dn[128];
  for (int i = 0; i < n; i++) {
    ASSERT_RC(vdi_srv_open_device(s->srv, lp_devname(name, i, dn, sizeof dn),
                                  &s->dev[s->ndev]),
              0);
    ASSERT_NOT_NULL(s->dev[s->ndev]);
    s->ndev++;
  }
}

void lp_pair_up(lp_pair *x, const char *tag, int ndev, uint32_t cfeat,
                uint32_t prefix, uint32_t align, uint32_t sto, uint32_t sfeat,
                uint32_t bs, uint32_t mt, uint32_t nbuf) {
  char dn[128];
  memset(x, 0, sizeof *x);
  snprintf(x->name, sizeof x->name, "%s", unique_name(tag));
  x->cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(x->cli, "create %s %d %u %u %u %u", x->name, ndev, cfeat,
                    prefix, align, sto),
            0);
  ASSERT_RC(vdi_srv_new(&x->s.srv), 0);
  lp_srv_config(&x->s, x->name, sfeat, bs, mt, nbuf);
  lp_srv_open_devs(&x->s, x->name, ndev);
  lp_srv_agent_start(&x->s);
  ASSERT_RC(lp_call(x->cli, "cfg 2000"), 0);
  for (int i = 0; i < ndev; i++)
    ASSERT_RC(
        lp_call(x->cli, "odev %d %s", i, lp_devname(x->name, i, dn, sizeof dn)),
        0);
}

int64_t lp_pair_down(lp_pair *x, int client_serving) {
  int64_t served = -1;
  for (int i = 0; i < x->s.ndev; i++)
    ASSERT_RC(vdi_srvdev_close_device(x->s.dev[i]), 0);
  if (client_serving) {
    ASSERT_RC(lp_call(x->cli, "sjoin 5000"), 0);
    served = lp_v(x->cli, 0);
  } else {
    for (int i = 0; i < x->s.ndev; i++)
      ASSERT_RC(lp_call(x->cli, "get %d 0 2000", i), VD_E_CLOSE);
  }
  ASSERT_RC(lp_srv_agent_join(&x->s, 2000), 0);
  ASSERT_RC(vdi_srv_close(x->s.srv), 0);
  ASSERT_RC(lp_call(x->cli, "close"), 0);
  lp_end(x->cli);
  vdi_srv_free(x->s.srv);
  return served;
}

/* ------------------------------------------------------ helper plumbing */

struct hio {
  int in, out;
  char line[512];
  char *tok[16];
  int ntok;
};

static int hio_next(struct hio *h) {
  if (read_line(h->in, h->line, sizeof h->line, -1) != 0) return 0;
  char *save = NULL;
  h->ntok = 0;
  for (char *t = strtok_r(h->line, " ", &save); t && h->ntok < 16;
       t = strtok_r(NULL, " ", &save))
    h->tok[h->ntok++] = t;
  return h->ntok > 0;
}

static int64_t hio_num(struct hio *h, int i) {
  if (i >= h->ntok) {
    fprintf(stderr, "helper: request %s lacks argument %d\n", h->tok[0], i);
    exit(3);
  }
  return strtoll(h->tok[i], NULL, 0);
}

static const char *hio_str(struct hio *h, int i) {
  if (i >= h->ntok) {
    fprintf(stderr, "helper: request %s lacks argument %d\n", h->tok[0], i);
    exit(3);
  }
  return h->tok[i];
}

static void hio_reply(struct hio *h, int rc, int nv, const int64_t *v) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%d", rc);
  for (int i = 0; i < nv; i++)
    n += snprintf(buf + n, sizeof buf - (size_t)n, " %lld", (long long)v[i]);
  buf[n++] = '\n';
  write_all(h->out, buf, (size_t)n);
}

static int hio_is(struct hio *h, const char *verb) {
  return strcmp(h->tok[0], verb) == 0;
}

static void cfg_values(const VDConfig *c, int64_t *v) {
  const uint32_t *f = (const uint32_t *)c;
  for (int i = 0; i < 11; i++)
    v[i] = f[i];
}

static void hio_init(struct hio *h, int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "helper: needs the two pipe fds\n");
    exit(2);
  }
  h->in = atoi(argv[1]);
  h->out = atoi(argv[2]);
  write_all(h->out, "ready\n", 6);
}

/* ------------------------------------------------------- remote server */

#define H_SLOTS 1024
#define H_BUFS  256

static lp_slot h_slots[H_SLOTS];
static uint8_t *h_bufs[H_BUFS];
static uint8_t h_private[1 << 17] __attribute__((aligned(65536)));

static uint8_t *srv_buf(int64_t b) {
  if (b == -1) return NULL;
  if (b == -2) return h_private;
  if (b < 0 || b >= H_BUFS) exit(3);
  return h_bufs[b];
}

static lp_slot *srv_slot(int64_t s) {
  if (s < 0 || s >= H_SLOTS) exit(3);
  return &h_slots[s];
}

HELPER_IMPL(lp_srv) {
  struct hio h;
  lp_srv s;
  memset(&s, 0, sizeof s);
  hio_init(&h, argc, argv);
  if (vdi_srv_new(&s.srv) != 0) return 4;
  while (hio_next(&h)) {
    int64_t v[LP_MAXV];
    int rc = 0, nv = 0;
    if (hio_is(&h, "quit")) {
      break;
    } else if (hio_is(&h, "open")) {
      rc = vdi_srv_open(s.srv, NULL, hio_str(&h, 1));
    } else if (hio_is(&h, "cfg")) {
      VDConfig c;
      memset(&c, 0, sizeof c);
      rc = vdi_srv_get_configuration(s.srv, &c);
      cfg_values(&c, v);
      nv = 11;
    } else if (hio_is(&h, "begin")) {
      rc = vdi_srv_begin_configuration(
          s.srv, (uint32_t)hio_num(&h, 1), (uint32_t)hio_num(&h, 2),
          (uint32_t)hio_num(&h, 3), (uint32_t)hio_num(&h, 4),
          (uint32_t)hio_num(&h, 5));
    } else if (hio_is(&h, "reqbuf")) {
      rc = vdi_srv_request_buffers(s.srv, (uint32_t)hio_num(&h, 1),
                                   (uint32_t)hio_num(&h, 2),
                                   (uint32_t)hio_num(&h, 3));
    } else if (hio_is(&h, "query")) {
      uint32_t n = 0;
      rc = vdi_srv_query_available_buffers(s.srv, (uint32_t)hio_num(&h, 1),
                                           (uint32_t)hio_num(&h, 2), &n);
      v[nv++] = n;
    } else if (hio_is(&h, "end")) {
      rc = vdi_srv_end_configuration(s.srv);
    } else if (hio_is(&h, "config")) {
      VDConfig c;
      uint32_t mt = (uint32_t)hio_num(&h, 5);
      rc = vdi_srv_open(s.srv, NULL, hio_str(&h, 1));
      if (rc == 0) rc = vdi_srv_get_configuration(s.srv, &c);
      if (rc == 0)
        rc = vdi_srv_begin_configuration(s.srv, (uint32_t)hio_num(&h, 2),
                                         (uint32_t)hio_num(&h, 3),
                                         (uint32_t)hio_num(&h, 4), mt, 1000);
      if (rc == 0)
        rc = vdi_srv_request_buffers(s.srv, mt, 0, (uint32_t)hio_num(&h, 6));
      if (rc == 0) rc = vdi_srv_end_configuration(s.srv);
    } else if (hio_is(&h, "odev")) {
      vdi_srvdev_t *d = NULL;
      rc = vdi_srv_open_device(s.srv, hio_str(&h, 1), &d);
      if (rc == 0 && s.ndev < VDI_MAX_DEVICES) s.dev[s.ndev++] = d;
      v[nv++] = s.ndev - 1;
    } else if (hio_is(&h, "odevs")) {
      char dn[128];
      int n = (int)hio_num(&h, 2);
      for (int i = 0; i < n && rc == 0; i++) {
        vdi_srvdev_t *d = NULL;
        rc = vdi_srv_open_device(
            s.srv, lp_devname(hio_str(&h, 1), i, dn, sizeof dn), &d);
        if (rc == 0) s.dev[s.ndev++] = d;
      }
    } else if (hio_is(&h, "agent")) {
      lp_srv_agent_start(&s);
    } else if (hio_is(&h, "join")) {
      rc = lp_srv_agent_join(&s, (int)hio_num(&h, 1));
    } else if (hio_is(&h, "alloc")) {
      int64_t b = hio_num(&h, 1);
      if (b < 0 || b >= H_BUFS) exit(3);
      h_bufs[b] = NULL;
      rc = vdi_srv_allocate_buffer(s.srv, &h_bufs[b], (uint32_t)hio_num(&h, 2),
                                   (uint32_t)hio_num(&h, 3));
      v[nv++] = (int64_t)((uintptr_t)h_bufs[b] % 65536);
    } else if (hio_is(&h, "free")) {
      rc = vdi_srv_free_buffer(s.srv, srv_buf(hio_num(&h, 1)),
                               (uint32_t)hio_num(&h, 2));
    } else if (hio_is(&h, "shared")) {
      rc = vdi_srv_is_shared_buffer(s.srv, srv_buf(hio_num(&h, 1)));
    } else if (hio_is(&h, "fill")) {
      lp_fill(srv_buf(hio_num(&h, 1)) + hio_num(&h, 2), (size_t)hio_num(&h, 3),
              (uint32_t)hio_num(&h, 4));
    } else if (hio_is(&h, "check")) {
      long bad = lp_check(srv_buf(hio_num(&h, 1)) + hio_num(&h, 2),
                          (size_t)hio_num(&h, 3), (uint32_t)hio_num(&h, 4));
      rc = bad < 0 ? 0 : LP_MISMATCH;
      v[nv++] = bad;
    } else if (hio_is(&h, "send")) {
      lp_slot *sl = srv_slot(hio_num(&h, 1));
      int64_t d = hio_num(&h, 2);
      if (d < 0 || d >= s.ndev) exit(3);
      lp_slot_init(sl, (int)hio_num(&h, 3), (int)hio_num(&h, 4), hio_num(&h, 5),
                   srv_buf(hio_num(&h, 6)));
      rc = vdi_srvdev_send_command(s.dev[d], &sl->cmd);
      /* A failed send must have run the routine already, in this thread. */
      v[nv++] = atomic_load(&sl->calls);
      v[nv++] = atomic_load(&sl->calls) ? sl->code : 0;
      v[nv++] = atomic_load(&sl->calls)
                    ? pthread_equal(sl->thread, pthread_self()) != 0
                    : 0;
    } else if (hio_is(&h, "wait")) {
      lp_slot *sl = srv_slot(hio_num(&h, 1));
      rc = lp_slot_wait(sl, (int)hio_num(&h, 2));
      /* The routine's fields only once it ran (its atomic count publishes
       * them); reading them before would race with a routine still to come. */
      v[nv++] = rc ? sl->code : 0;
      v[nv++] = rc ? sl->bytes : 0;
      v[nv++] = rc ? sl->outpos : 0;
      v[nv++] = atomic_load(&sl->calls) + 100 * atomic_load(&sl->bad_ctx);
      v[nv++] = sl->cmd.commandCode;
      v[nv++] = sl->cmd.size;
      v[nv++] = sl->cmd.inPosition;
    } else if (hio_is(&h, "cdev")) {
      int64_t d = hio_num(&h, 1);
      if (d < 0 || d >= s.ndev) exit(3);
      rc = vdi_srvdev_close_device(s.dev[d]);
    } else if (hio_is(&h, "abort")) {
      rc = vdi_srv_signal_abort(s.srv);
    } else if (hio_is(&h, "close")) {
      rc = vdi_srv_close(s.srv);
    } else {
      fprintf(stderr, "lp_srv: unknown request %s\n", h.tok[0]);
      return 3;
    }
    hio_reply(&h, rc, nv, v);
  }
  /* Leave the agent alone if it still runs: process exit ends it. */
  if (s.agent_started && lp_srv_agent_join(&s, 0) == LP_RUNNING) _exit(0);
  vdi_srv_free(s.srv);
  return 0;
}

/* ------------------------------------------------------- remote client */

#define C_SLOTS 1024

struct cli_state {
  vdi_set_t *set;
  vdi_device_t *dev[VDI_MAX_DEVICES];
  VDC_Command *cmds[C_SLOTS];
  uint8_t *maps[16];
  pthread_t serve[VDI_MAX_DEVICES];
  int serving[VDI_MAX_DEVICES];
  atomic_int served;   /* commands answered by the serve threads */
  atomic_int serve_rc; /* first failure of a serve thread */
  atomic_int serve_left;
};

static struct cli_state cs;

/* The auto-servicing loop of one device: Write must carry the pattern
 * seeded by its position, Read gets that pattern; every command is
 * completed with bytes = size and position = position + size + 1, so the
 * server can check that the fields travelled both ways. */
static void *serve_main(void *arg) {
  vdi_device_t *d = arg;
  for (;;) {
    VDC_Command *c = NULL;
    int rc = vdi_dev_get_command(d, -1, &c);
    if (rc == VD_E_CLOSE) break;
    if (rc != 0) {
      int zero = 0;
      atomic_compare_exchange_strong(&cs.serve_rc, &zero, rc);
      break;
    }
    uint32_t code = 0;
    if (c->commandCode == VDC_Write &&
        lp_check(c->buffer, (size_t)c->size, (uint32_t)c->position) >= 0)
      code = ERROR_ARENA_TRASHED; /* tells the server the bytes differed */
    if (c->commandCode == VDC_Read)
      lp_fill(c->buffer, (size_t)c->size, (uint32_t)c->position);
    rc = vdi_dev_complete_command(d, c, code, (uint32_t)c->size,
                                  (uint64_t)(c->position + c->size + 1));
    if (rc != 0) {
      int zero = 0;
      atomic_compare_exchange_strong(&cs.serve_rc, &zero, rc);
      break;
    }
    atomic_fetch_add(&cs.served, 1);
  }
  atomic_fetch_sub(&cs.serve_left, 1);
  return NULL;
}

static VDC_Command *cli_cmd(int64_t s) {
  if (s < 0 || s >= C_SLOTS || !cs.cmds[s]) exit(3);
  return cs.cmds[s];
}

static vdi_device_t *cli_dev(int64_t d) {
  if (d < 0 || d >= VDI_MAX_DEVICES) exit(3);
  return cs.dev[d];
}

static uint8_t *cli_map(int64_t m) {
  if (m < 0 || m >= 16 || !cs.maps[m]) exit(3);
  return cs.maps[m];
}

HELPER_IMPL(lp_cli) {
  struct hio h;
  hio_init(&h, argc, argv);
  if (vdi_set_new(&cs.set) != 0) return 4;
  while (hio_next(&h)) {
    int64_t v[LP_MAXV];
    int rc = 0, nv = 0;
    if (hio_is(&h, "quit")) {
      break;
    } else if (hio_is(&h, "create")) {
      VDConfig c = lp_cfg((uint32_t)hio_num(&h, 2), (uint32_t)hio_num(&h, 3));
      c.prefixZoneSize = (uint32_t)hio_num(&h, 4);
      c.alignment = (uint32_t)hio_num(&h, 5);
      c.serverTimeOut = (uint32_t)hio_num(&h, 6);
      rc = vdi_set_create(cs.set, hio_str(&h, 1), &c);
    } else if (hio_is(&h, "sec")) {
      rc = vdi_set_open_in_secondary(cs.set, hio_str(&h, 1));
    } else if (hio_is(&h, "cfg")) {
      VDConfig c;
      memset(&c, 0, sizeof c);
      rc = vdi_set_get_configuration(cs.set, hio_num(&h, 1), &c);
      cfg_values(&c, v);
      nv = 11;
    } else if (hio_is(&h, "odev")) {
      int64_t d = hio_num(&h, 1);
      if (d < 0 || d >= VDI_MAX_DEVICES) exit(3);
      vdi_device_t *out = (vdi_device_t *)&cs; /* must be set to NULL */
      rc = vdi_set_open_device(cs.set, hio_str(&h, 2), &out);
      if (rc == 0) cs.dev[d] = out;
      v[nv++] = out == NULL;
    } else if (hio_is(&h, "get")) {
      int64_t sl = hio_num(&h, 2);
      if (sl < 0 || sl >= C_SLOTS) exit(3);
      VDC_Command *c = NULL;
      rc = vdi_dev_get_command(cli_dev(hio_num(&h, 1)), hio_num(&h, 3), &c);
      if (rc == 0) {
        cs.cmds[sl] = c;
        v[nv++] = c->commandCode;
        v[nv++] = c->size;
        v[nv++] = c->position;
        v[nv++] = (int64_t)((uintptr_t)c->buffer % 65536);
      }
    } else if (hio_is(&h, "fill")) {
      lp_fill(cli_cmd(hio_num(&h, 1))->buffer + hio_num(&h, 2),
              (size_t)hio_num(&h, 3), (uint32_t)hio_num(&h, 4));
    } else if (hio_is(&h, "check")) {
      long bad = lp_check(cli_cmd(hio_num(&h, 1))->buffer + hio_num(&h, 2),
                          (size_t)hio_num(&h, 3), (uint32_t)hio_num(&h, 4));
      rc = bad < 0 ? 0 : LP_MISMATCH;
      v[nv++] = bad;
    } else if (hio_is(&h, "comp")) {
      rc = vdi_dev_complete_command(
          cli_dev(hio_num(&h, 1)), cli_cmd(hio_num(&h, 2)),
          (uint32_t)hio_num(&h, 3), (uint32_t)hio_num(&h, 4),
          (uint64_t)hio_num(&h, 5));
    } else if (hio_is(&h, "handle")) {
      uint32_t hd = 0;
      rc = vdi_set_get_buffer_handle(cs.set, cli_cmd(hio_num(&h, 1))->buffer,
                                     &hd);
      v[nv++] = hd;
    } else if (hio_is(&h, "map")) {
      int64_t m = hio_num(&h, 1);
      if (m < 0 || m >= 16) exit(3);
      cs.maps[m] = NULL;
      rc = vdi_set_map_buffer_handle(cs.set, (uint32_t)hio_num(&h, 2),
                                     &cs.maps[m]);
    } else if (hio_is(&h, "mfill")) {
      lp_fill(cli_map(hio_num(&h, 1)) + hio_num(&h, 2), (size_t)hio_num(&h, 3),
              (uint32_t)hio_num(&h, 4));
    } else if (hio_is(&h, "mcheck")) {
      long bad = lp_check(cli_map(hio_num(&h, 1)) + hio_num(&h, 2),
                          (size_t)hio_num(&h, 3), (uint32_t)hio_num(&h, 4));
      rc = bad < 0 ? 0 : LP_MISMATCH;
      v[nv++] = bad;
    } else if (hio_is(&h, "serve")) {
      atomic_store(&cs.served, 0);
      atomic_store(&cs.serve_rc, 0);
      for (int i = 0; i < VDI_MAX_DEVICES; i++)
        if (cs.dev[i] && !cs.serving[i]) {
          atomic_fetch_add(&cs.serve_left, 1);
          if (pthread_create(&cs.serve[i], NULL, serve_main, cs.dev[i]) != 0)
            exit(4);
          cs.serving[i] = 1;
        }
    } else if (hio_is(&h, "sjoin")) {
      int64_t end = now_ms() + hio_num(&h, 1);
      while (atomic_load(&cs.serve_left) > 0 && now_ms() < end)
        sleep_ms(1);
      if (atomic_load(&cs.serve_left) > 0) {
        rc = LP_RUNNING;
      } else {
        for (int i = 0; i < VDI_MAX_DEVICES; i++)
          if (cs.serving[i]) {
            pthread_join(cs.serve[i], NULL);
            cs.serving[i] = 0;
          }
        rc = atomic_load(&cs.serve_rc);
      }
      v[nv++] = atomic_load(&cs.served);
    } else if (hio_is(&h, "abort")) {
      rc = vdi_set_signal_abort(cs.set);
    } else if (hio_is(&h, "close")) {
      rc = vdi_set_close(cs.set);
      memset(cs.dev, 0, sizeof cs.dev);
    } else {
      fprintf(stderr, "lp_cli: unknown request %s\n", h.tok[0]);
      return 3;
    }
    hio_reply(&h, rc, nv, v);
  }
  if (atomic_load(&cs.serve_left) > 0) _exit(0);
  vdi_set_free(cs.set);
  return 0;
}
