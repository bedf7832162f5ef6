/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-fault-util.c - leak probe and checked round trips shared by the
 * reliability tests (see test-rel-fault-util.h).
 */
#include "test-rel-fault-util.h"

#include <stdio.h>

#define RT_SIZE       65536
#define RT_NBUF(ndev) ((uint32_t)(2 * (ndev) + 2))

#if defined(__SANITIZE_ADDRESS__)
#define ALL_MAPS 0 /* ASan's allocator maps as it goes */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALL_MAPS 0
#endif
#endif
#ifndef ALL_MAPS
#define ALL_MAPS 1
#endif

int rt_probe_shared_only;

/* Every mapping, or (under ASan) the shared-memory ones. */
static int count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int n = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if ((ALL_MAPS && !rt_probe_shared_only) || strstr(line, "memfd:")) n++;
  fclose(f);
  return n;
}

void rt_probe_take(rt_probe *p) {
  p->fds = count_open_fds();
  p->threads = count_dir("/proc/self/task");
  p->maps = count_maps();
}

void rt_probe_expect(const rt_probe *before, const char *what) {
  rt_probe now;
  int64_t end = now_ms() + 1000;
  for (;;) {
    rt_probe_take(&now);
    if (now.fds == before->fds && now.threads == before->threads &&
        now.maps == before->maps)
      return;
    if (now_ms() >= end) break;
    sleep_ms(5);
  }
  TASK_FAIL_("%s: leak: fds %d -> %d, threads %d -> %d, maps %d -> %d", what,
             before->fds, now.fds, before->threads, now.threads, before->maps,
             now.maps);
}

int rt_known_code(int rc) {
  return rc < 0 && strcmp(vdi_error_name(rc), "?") != 0;
}

/* ------------------------------------------------------ serving client */

struct serve_arg {
  rt_serve *sv;
  vdi_device_t *d;
};

/* A failing call ends the operation the way a real client ends it: with
 * SignalAbort, so the server's outstanding commands come back aborted. */
static void serve_fail(rt_serve *sv, int rc) {
  int zero = 0;
  atomic_compare_exchange_strong(&sv->rc, &zero, rc);
  if (sv->set && rc != VD_E_ABORT) vdi_set_signal_abort(sv->set);
}

static void *serve_main(void *arg) {
  rt_serve *sv = ((struct serve_arg *)arg)->sv;
  vdi_device_t *d = ((struct serve_arg *)arg)->d;
  free(arg);
  for (;;) {
    VDC_Command *c = NULL;
    int rc = vdi_dev_get_command(d, -1, &c);
    if (rc == VD_E_CLOSE) break;
    if (rc != 0) {
      serve_fail(sv, rc);
      break;
    }
    uint32_t code = 0;
    if (c->commandCode == VDC_Write &&
        lp_check(c->buffer, (size_t)c->size, (uint32_t)c->position) >= 0)
      code = ERROR_ARENA_TRASHED;
    if (c->commandCode == VDC_Read)
      lp_fill(c->buffer, (size_t)c->size, (uint32_t)c->position);
    rc = vdi_dev_complete_command(d, c, code, (uint32_t)c->size,
                                  (uint64_t)(c->position + c->size + 1));
    if (rc != 0) {
      serve_fail(sv, rc);
      break;
    }
    atomic_fetch_add(&sv->served, 1);
  }
  return NULL;
}

void rt_serve_start(rt_serve *sv, vdi_set_t *set, vdi_device_t **devs, int n) {
  memset(sv, 0, sizeof *sv);
  sv->set = set;
  for (int i = 0; i < n; i++) {
    sv->dev[i] = devs[i];
    struct serve_arg *a = malloc(sizeof *a);
    ASSERT_NOT_NULL(a);
    a->sv = sv;
    a->d = sv->dev[i];
    ASSERT_EQ(pthread_create(&sv->t[i], NULL, serve_main, a), 0);
    sv->ndev++;
  }
}

int rt_serve_open(rt_serve *sv, vdi_set_t *set, const char *name, int first,
                  int n) {
  char dn[128];
  vdi_device_t *devs[VDI_MAX_DEVICES];
  memset(sv, 0, sizeof *sv);
  for (int i = 0; i < n; i++) {
    int rc = vdi_set_open_device(
        set, lp_devname(name, first + i, dn, sizeof dn), &devs[i]);
    if (rc != 0) return rc;
  }
  rt_serve_start(sv, set, devs, n);
  return 0;
}

int rt_serve_join(rt_serve *sv) {
  for (int i = 0; i < sv->ndev; i++)
    pthread_join(sv->t[i], NULL);
  sv->ndev = 0;
  return atomic_load(&sv->rc);
}

/* ------------------------------------------------------------ traffic */

static int64_t wpos(int dev) {
  return (int64_t)(dev + 1) * 1000003;
}
static int64_t rpos(int dev) {
  return wpos(dev) + 7;
}

void rt_remote_srv_traffic(lp_peer *srv, int first, int n, int slot0) {
  for (int i = 0; i < n; i++) {
    int d = first + i, bw = slot0 + 2 * i, br = bw + 1;
    ASSERT_RC(lp_call(srv, "alloc %d %d 0", bw, RT_SIZE), 0);
    ASSERT_RC(lp_call(srv, "alloc %d %d 0", br, RT_SIZE), 0);
    lp_call(srv, "fill %d 0 %d %u", bw, RT_SIZE, (uint32_t)wpos(d));
    ASSERT_RC(lp_call(srv, "send %d %d %d %d %lld %d", bw, d, VDC_Write,
                      RT_SIZE, (long long)wpos(d), bw),
              0);
    ASSERT_RC(lp_call(srv, "send %d %d %d %d %lld %d", br, d, VDC_Read, RT_SIZE,
                      (long long)rpos(d), br),
              0);
  }
  for (int i = 0; i < n; i++) {
    int bw = slot0 + 2 * i, br = bw + 1;
    for (int s = bw; s <= br; s++) {
      ASSERT_RC(lp_call(srv, "wait %d 5000", s), 1);
      ASSERT_EQ(lp_v(srv, 0), 0); /* completion code: bytes matched */
      ASSERT_EQ(lp_v(srv, 1), RT_SIZE);
    }
    ASSERT_RC(lp_call(srv, "check %d 0 %d %u", br, RT_SIZE,
                      (uint32_t)rpos(first + i)),
              0);
    ASSERT_RC(lp_call(srv, "free %d %d", bw, RT_SIZE), 0);
    ASSERT_RC(lp_call(srv, "free %d %d", br, RT_SIZE), 0);
  }
}

void rt_local_srv_traffic(lp_srv *s, int first, int n) {
  lp_slot *sl = calloc((size_t)n * 2, sizeof *sl);
  uint8_t **buf = calloc((size_t)n * 2, sizeof *buf);
  ASSERT(sl && buf);
  for (int i = 0; i < n; i++) {
    int d = first + i;
    ASSERT_RC(vdi_srv_allocate_buffer(s->srv, &buf[2 * i], RT_SIZE, 0), 0);
    ASSERT_RC(vdi_srv_allocate_buffer(s->srv, &buf[2 * i + 1], RT_SIZE, 0), 0);
    lp_fill(buf[2 * i], RT_SIZE, (uint32_t)wpos(d));
    lp_slot_init(&sl[2 * i], VDC_Write, RT_SIZE, wpos(d), buf[2 * i]);
    lp_slot_init(&sl[2 * i + 1], VDC_Read, RT_SIZE, rpos(d), buf[2 * i + 1]);
    ASSERT_RC(vdi_srvdev_send_command(s->dev[d], &sl[2 * i].cmd), 0);
    ASSERT_RC(vdi_srvdev_send_command(s->dev[d], &sl[2 * i + 1].cmd), 0);
  }
  for (int k = 0; k < 2 * n; k++) {
    ASSERT(lp_slot_wait(&sl[k], 5000));
    ASSERT_EQ(sl[k].code, 0);
    ASSERT_EQ(sl[k].bytes, RT_SIZE);
  }
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(lp_check(buf[2 * i + 1], RT_SIZE, (uint32_t)rpos(first + i)), -1);
    ASSERT_RC(vdi_srv_free_buffer(s->srv, buf[2 * i], RT_SIZE), 0);
    ASSERT_RC(vdi_srv_free_buffer(s->srv, buf[2 * i + 1], RT_SIZE), 0);
  }
  free(sl);
  free(buf);
}

/* ------------------------------------------------------- round trips */

void rt_full_local_client(vdi_set_t *set, const char *name, int ndev,
                          lp_peer *srv) {
  VDConfig cfg;
  ASSERT_RC(lp_call(srv, "config %s %u 4096 0 %d %u", name, VDF_WriteMedia,
                    RT_SIZE, RT_NBUF(ndev)),
            0);
  ASSERT_RC(lp_call(srv, "odevs %s %d", name, ndev), 0);
  ASSERT_RC(lp_call(srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(set, 5000, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, ndev);
  rt_serve sv;
  ASSERT_RC(rt_serve_open(&sv, set, name, 0, ndev), 0);
  rt_remote_srv_traffic(srv, 0, ndev, 0);
  for (int i = 0; i < ndev; i++)
    ASSERT_RC(lp_call(srv, "cdev %d", i), 0);
  ASSERT_RC(rt_serve_join(&sv), 0);
  ASSERT_EQ(atomic_load(&sv.served), 2 * ndev);
  ASSERT_RC(lp_call(srv, "join 5000"), 0);
  ASSERT_RC(lp_call(srv, "close"), 0);
  ASSERT_RC(vdi_set_close(set), 0);
}

void rt_local_srv_up(lp_srv *s, const char *name, int ndev) {
  VDConfig c;
  ASSERT_RC(vdi_srv_get_configuration(s->srv, &c), 0);
  ASSERT_RC(vdi_srv_begin_configuration(s->srv, VDF_WriteMedia, 4096, 0,
                                        RT_SIZE, 1000),
            0);
  ASSERT_RC(vdi_srv_request_buffers(s->srv, RT_SIZE, 0, RT_NBUF(ndev)), 0);
  ASSERT_RC(vdi_srv_end_configuration(s->srv), 0);
  s->ndev = 0;
  lp_srv_open_devs(s, name, ndev);
  lp_srv_agent_start(s);
}

void rt_local_srv_down(lp_srv *s) {
  for (int i = 0; i < s->ndev; i++)
    ASSERT_RC(vdi_srvdev_close_device(s->dev[i]), 0);
  ASSERT_RC(lp_srv_agent_join(s, 5000), 0);
  ASSERT_RC(vdi_srv_close(s->srv), 0);
  s->ndev = 0;
}

void rt_full_local_server(vdi_srvset_t *srv, const char *name, int ndev,
                          lp_peer *cli) {
  ASSERT_RC(lp_call(cli, "create %s %d %u 0 0 0", name, ndev, VDF_LikePipe), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, name), 0);
  rt_finish_local_server(srv, name, ndev, cli);
}

void rt_finish_local_server(vdi_srvset_t *srv, const char *name, int ndev,
                            lp_peer *cli) {
  char dn[128];
  lp_srv s;
  memset(&s, 0, sizeof s);
  s.srv = srv;
  rt_local_srv_up(&s, name, ndev);
  ASSERT_RC(lp_call(cli, "cfg 5000"), 0);
  for (int i = 0; i < ndev; i++)
    ASSERT_RC(lp_call(cli, "odev %d %s", i, lp_devname(name, i, dn, sizeof dn)),
              0);
  ASSERT_RC(lp_call(cli, "serve"), 0);
  rt_local_srv_traffic(&s, 0, ndev);
  rt_local_srv_down(&s);
  ASSERT_RC(lp_call(cli, "sjoin 5000"), 0);
  ASSERT_EQ(lp_v(cli, 0), 2 * ndev);
  ASSERT_RC(lp_call(cli, "close"), 0);
}
