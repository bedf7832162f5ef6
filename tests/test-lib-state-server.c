/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-state-server.c - the server state table (spec 2.4.3 with our
 * decisions on its [INF] cells): every server method in every state, with
 * the exact return code, and BeginConfiguration / RequestBuffers /
 * AllocateBuffer value checks.  The test process is the server; a separate
 * process (the lp_cli helper of lib_peer.c) is the client, driven step by
 * step over a pipe.
 */
#include "lib_peer.h"

#define MT 65536u
#define BS 4096u

struct sv {
  lp_srv s;
  lp_peer *cli;
  char name[96];
};

static const char *dn(struct sv *v, int i) {
  static __thread char buf[8][128];
  return lp_devname(v->name, i, buf[i % 8], sizeof buf[0]);
}

/* A client process creates the set; our server object is still DNE. */
static void created(struct sv *v, const char *tag, int ndev, uint32_t feat) {
  memset(v, 0, sizeof *v);
  snprintf(v->name, sizeof v->name, "%s", unique_name(tag));
  v->cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(v->cli, "create %s %d %u 0 0 0", v->name, ndev, feat), 0);
  ASSERT_RC(vdi_srv_new(&v->s.srv), 0);
  ASSERT_NOT_NULL(v->s.srv);
}

static void to_connected(struct sv *v, const char *tag, int ndev) {
  created(v, tag, ndev, VDF_LikePipe);
  ASSERT_RC(vdi_srv_open(v->s.srv, NULL, v->name), 0);
}

static void to_configurable(struct sv *v, const char *tag, int ndev) {
  to_connected(v, tag, ndev);
  ASSERT_RC(
      vdi_srv_begin_configuration(v->s.srv, VDF_WriteMedia, BS, 0, MT, 1000),
      0);
}

/* Configurable with 4 buffers of MT bytes, then EndConfiguration. */
static void to_initializing(struct sv *v, const char *tag, int ndev) {
  to_configurable(v, tag, ndev);
  ASSERT_RC(vdi_srv_request_buffers(v->s.srv, MT, 0, 4), 0);
  ASSERT_RC(vdi_srv_end_configuration(v->s.srv), 0);
  ASSERT_RC(lp_call(v->cli, "cfg 2000"), 0);
}

/* Every device opened on both sides, the agent running. */
static void to_active(struct sv *v, const char *tag, int ndev) {
  to_initializing(v, tag, ndev);
  lp_srv_open_devs(&v->s, v->name, ndev);
  lp_srv_agent_start(&v->s);
  for (int i = 0; i < ndev; i++)
    ASSERT_RC(lp_call(v->cli, "odev %d %s", i, dn(v, i)), 0);
}

static void finish(struct sv *v) {
  lp_end(v->cli);
  vdi_srv_free(v->s.srv);
}

/* Every configuration-phase call in a state where it is refused with rc. */
static void config_calls(vdi_srvset_t *srv, int rc_begin, int rc_buf,
                         int rc_end) {
  uint32_t n = 0;
  ASSERT_RC(vdi_srv_begin_configuration(srv, VDF_WriteMedia, BS, 0, MT, 1000),
            rc_begin);
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 0, 1), rc_buf);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), rc_buf);
  ASSERT_RC(vdi_srv_end_configuration(srv), rc_end);
}

/* OpenDevice, AllocateBuffer, FreeBuffer all refused with rc. */
static void device_calls(vdi_srvset_t *srv, const char *name, int rc) {
  vdi_srvdev_t *d = NULL;
  uint8_t *b = NULL, local[64];
  ASSERT_RC(vdi_srv_open_device(srv, name, &d), rc);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &b, 4096, 0), rc);
  ASSERT_RC(vdi_srv_free_buffer(srv, local, 64), rc);
  ASSERT_EQ(vdi_srv_is_shared_buffer(srv, local), 0);
}

/* ------------------------------------------------------------------ DNE */

TEST_IMPL(lib_st_server_dne) {
  vdi_srvset_t *srv = NULL;
  VDConfig cfg;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), VD_E_PROTOCOL);
  config_calls(srv, VD_E_PROTOCOL, VD_E_PROTOCOL, VD_E_PROTOCOL);
  device_calls(srv, "x", VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_execute_completion_agent(srv), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_signal_abort(srv), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_close(srv), VD_E_PROTOCOL);
  /* No set of that name: VD_E_INVALID, and still DNE. */
  ASSERT_RC(vdi_srv_open(srv, NULL, unique_name("none")), VD_E_INVALID);
  ASSERT_RC(vdi_srv_open(srv, NULL, ""), VD_E_INVALID);
  ASSERT_RC(vdi_srv_open(srv, NULL, "a/b"), VD_E_INVALID);
  ASSERT_RC(vdi_srv_close(srv), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), VD_E_PROTOCOL);
  vdi_srv_free(srv);
  return 0;
}

TEST_IMPL(lib_st_server_open_busy) {
  struct sv v;
  vdi_srvset_t *other = NULL;
  created(&v, "sbusy", 1, VDF_LikePipe);
  ASSERT_RC(vdi_srv_new(&other), 0);
  ASSERT_RC(vdi_srv_open(v.s.srv, NULL, v.name), 0);
  ASSERT_RC(vdi_srv_open(other, NULL, v.name), VD_E_BUSY);
  ASSERT_RC(vdi_srv_close(other), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_open(v.s.srv, NULL, v.name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(vdi_srv_close(v.s.srv), VD_E_PROTOCOL);
  vdi_srv_free(other);
  finish(&v);
  return 0;
}

/* ------------------------------------------------------------ Connected */

TEST_IMPL(lib_st_server_connected) {
  struct sv v;
  VDConfig cfg;
  memset(&v, 0, sizeof v);
  snprintf(v.name, sizeof v.name, "%s", unique_name("conn"));
  v.cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(v.cli, "create %s 2 %u 512 8192 300", v.name,
                    VDF_LikeDisk | VDF_Discard),
            0);
  ASSERT_RC(vdi_srv_new(&v.s.srv), 0);
  vdi_srvset_t *srv = v.s.srv;
  ASSERT_RC(vdi_srv_open(srv, NULL, v.name), 0);
  ASSERT_RC(vdi_srv_open(srv, NULL, v.name), VD_E_PROTOCOL);
  /* Before BeginConfiguration: the client's request. */
  memset(&cfg, 0xAB, sizeof cfg);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, 2);
  ASSERT_EQ(cfg.features, VDF_LikeDisk | VDF_Discard);
  ASSERT_EQ(cfg.prefixZoneSize, 512);
  ASSERT_EQ(cfg.alignment, 8192);
  ASSERT_EQ(cfg.serverTimeOut, 300);
  ASSERT_RC(vdi_srv_begin_configuration(srv, VDF_WriteMedia, BS, 0, MT, 1000),
            0);
  ASSERT_RC(vdi_srv_close(srv), 0);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_connected_calls) {
  struct sv v;
  uint32_t n = 0;
  to_connected(&v, "connc", 2);
  vdi_srvset_t *srv = v.s.srv;
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 0, 1), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_end_configuration(srv), VD_E_PROTOCOL);
  device_calls(srv, v.name, VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_execute_completion_agent(srv), VD_E_PROTOCOL);
  /* The client is still waiting for the configuration. */
  ASSERT_RC(lp_call(v.cli, "cfg 0"), VD_E_TIMEOUT);
  ASSERT_RC(vdi_srv_close(srv), 0);
  ASSERT_RC(vdi_srv_close(srv), VD_E_PROTOCOL);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_begin_values) {
  struct sv v;
  to_connected(&v, "begv", 1);
  vdi_srvset_t *srv = v.s.srv;
  const uint32_t W = VDF_WriteMedia;
  struct {
    uint32_t f, bs, al, mt;
  } bad[] = {
      {W, 1000, 0, MT},
      {W, 256, 0, MT},
      {W, 131072, 0, MT},
      {W, 0, 0, MT},
      {W, BS, 1000, MT},
      {W, BS, 1024, MT},
      {W, BS, 131072, MT},
      {W, BS, 0, 100000},
      {W, BS, 0, 0},
      {W, BS, 0, 8u << 20},
      {W, BS, 0, 4194304 + MT},
      {0, BS, 0, MT},
      {VDF_WriteMedia | VDF_ReadMedia, BS, 0, MT},
      /* the client did not ask for VDF_RequestComplete */
      {W | VDF_CompleteEnabled, BS, 0, MT},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = vdi_srv_begin_configuration(srv, bad[i].f, bad[i].bs, bad[i].al,
                                         bad[i].mt, 1000);
    if (rc != VD_E_INVALID)
      TASK_FAIL_("begin(0x%x, %u, %u, %u) returned %s, expected VD_E_INVALID",
                 bad[i].f, bad[i].bs, bad[i].al, bad[i].mt, task_code_name(rc));
  }
  /* The limits themselves are accepted. */
  ASSERT_RC(vdi_srv_begin_configuration(srv, VDF_ReadMedia, 65536, 65536,
                                        4194304, 1000),
            0);
  ASSERT_RC(vdi_srv_close(srv), 0);
  finish(&v);

  /* VDF_CompleteEnabled when the client asked for VDF_RequestComplete;
   * the smallest block size with an alignment above it. */
  created(&v, "begc", 1, VDF_LikePipe | VDF_RequestComplete);
  ASSERT_RC(vdi_srv_open(v.s.srv, NULL, v.name), 0);
  ASSERT_RC(vdi_srv_begin_configuration(v.s.srv, W | VDF_CompleteEnabled, 512,
                                        16384, MT, 1000),
            0);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_connected_abort) {
  struct sv v;
  VDConfig cfg;
  to_connected(&v, "conna", 1);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  ASSERT_RC(lp_call(v.cli, "cfg 2000"), VD_E_ABORT);
  ASSERT_RC(vdi_srv_get_configuration(v.s.srv, &cfg), VD_E_ABORT);
  config_calls(v.s.srv, VD_E_ABORT, VD_E_ABORT, VD_E_ABORT);
  ASSERT_RC(vdi_srv_open(v.s.srv, NULL, v.name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

/* --------------------------------------------------------- Configurable */

TEST_IMPL(lib_st_server_configurable) {
  struct sv v;
  VDConfig cfg;
  uint32_t n = 0;
  to_configurable(&v, "scfg", 2);
  vdi_srvset_t *srv = v.s.srv;
  ASSERT_RC(vdi_srv_begin_configuration(srv, VDF_WriteMedia, BS, 0, MT, 1000),
            VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_open(srv, NULL, v.name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, 2);
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 0, 3), 0);
  ASSERT_RC(vdi_srv_request_buffers(srv, 0, 0, 3), VD_E_INVALID);
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 0, 0), VD_E_INVALID);
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 3, 1), VD_E_INVALID);
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 6144, 1), VD_E_INVALID);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), 0);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 3, &n), VD_E_INVALID);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, 0, 0, &n), VD_E_INVALID);
  device_calls(srv, v.name, VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_execute_completion_agent(srv), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(v.cli, "cfg 0"), VD_E_TIMEOUT);
  ASSERT_RC(vdi_srv_end_configuration(srv), 0);
  ASSERT_RC(lp_call(v.cli, "cfg 2000"), 0);
  ASSERT_EQ(lp_v(v.cli, 7), BS);
  ASSERT_RC(vdi_srv_close(srv), 0);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_configurable_abort) {
  struct sv v;
  VDConfig cfg;
  to_configurable(&v, "scfga", 1);
  ASSERT_RC(vdi_srv_request_buffers(v.s.srv, MT, 0, 2), 0);
  ASSERT_RC(lp_call(v.cli, "abort"), 0);
  ASSERT_RC(vdi_srv_get_configuration(v.s.srv, &cfg), VD_E_ABORT);
  config_calls(v.s.srv, VD_E_ABORT, VD_E_ABORT, VD_E_ABORT);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

/* --------------------------------------------------------- Initializing */

TEST_IMPL(lib_st_server_initializing) {
  struct sv v;
  VDConfig cfg;
  uint32_t n = 0;
  uint8_t *b[8], local[64];
  to_initializing(&v, "sini", 2);
  vdi_srvset_t *srv = v.s.srv;
  config_calls(srv, VD_E_PROTOCOL, 0, VD_E_PROTOCOL);
  /* config_calls added one buffer of MT: 5 now. */
  ASSERT_RC(vdi_srv_open(srv, NULL, v.name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  ASSERT_EQ(cfg.features & (VDF_WriteMedia | VDF_ReadMedia), VDF_WriteMedia);
  ASSERT_EQ(cfg.blockSize, BS);
  ASSERT_EQ(cfg.maxTransferSize, MT);
  ASSERT_EQ(cfg.maxIODepth, 4);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), 0);
  ASSERT_EQ(n, 5);
  ASSERT_RC(vdi_srv_request_buffers(srv, MT, 0, 2), 0);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), 0);
  ASSERT_EQ(n, 7);

  /* AllocateBuffer / FreeBuffer / IsSharedBuffer. */
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &b[0], MT, 0), 0);
  ASSERT_EQ((uintptr_t)b[0] % BS, 0);
  ASSERT_EQ(vdi_srv_is_shared_buffer(srv, b[0]), 1);
  ASSERT_EQ(vdi_srv_is_shared_buffer(srv, b[0] + 1), 0);
  ASSERT_EQ(vdi_srv_is_shared_buffer(srv, local), 0);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), 0);
  ASSERT_EQ(n, 6);
  uint8_t *x = NULL;
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, 0, 0), VD_E_INVALID);
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, MT + 1, 0), VD_E_INVALID);
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, MT, 3), VD_E_INVALID);
  ASSERT_RC(vdi_srv_free_buffer(srv, local, 64), VD_E_INVALID);
  ASSERT_RC(vdi_srv_free_buffer(srv, b[0], MT), 0);
  for (int i = 0; i < 7; i++) {
    ASSERT_RC(vdi_srv_allocate_buffer(srv, &b[i], 4096, 0), 0);
    ASSERT_EQ(vdi_srv_is_shared_buffer(srv, b[i]), 1);
    memset(b[i], i, 4096);
  }
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, 4096, 0), VD_E_MEMORY);
  for (int i = 0; i < 7; i++)
    ASSERT_EQ(b[i][4095], i); /* no overlap */
  for (int i = 0; i < 7; i++)
    ASSERT_RC(vdi_srv_free_buffer(srv, b[i], 4096), 0);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), 0);
  ASSERT_EQ(n, 7);

  /* OpenDevice: the first is named like the set, names are unique, and
   * deviceCount devices at most. */
  vdi_srvdev_t *d = NULL;
  ASSERT_RC(vdi_srv_open_device(srv, "wrong", &d), VD_E_INVALID);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_srv_open_device(srv, v.name, &v.s.dev[0]), 0);
  ASSERT_RC(vdi_srv_open_device(srv, v.name, &d), VD_E_INVALID);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_srv_open_device(srv, "bad/name", &d), VD_E_INVALID);
  ASSERT_RC(vdi_srv_open_device(srv, dn(&v, 1), &v.s.dev[1]), 0);
  ASSERT_RC(vdi_srv_open_device(srv, dn(&v, 2), &d), VD_E_OPEN);
  ASSERT_NULL(d);
  v.s.ndev = 2;
  /* The agent may start in Initializing; it ends once both devices are
   * closed with nothing outstanding. */
  lp_srv_agent_start(&v.s);
  ASSERT_RC(lp_call(v.cli, "odev 0 %s", v.name), 0);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 50), LP_RUNNING);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[1]), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), 0);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), VD_E_CLOSE);
  ASSERT_RC(vdi_srv_close(srv), 0);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_initializing_abort) {
  struct sv v;
  VDConfig cfg;
  uint8_t *b = NULL;
  to_initializing(&v, "sinia", 2);
  vdi_srvset_t *srv = v.s.srv;
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &b, MT, 0), 0);
  ASSERT_RC(vdi_srv_signal_abort(srv), 0);
  ASSERT_RC(vdi_srv_signal_abort(srv), 0);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), VD_E_ABORT);
  config_calls(srv, VD_E_ABORT, VD_E_ABORT, VD_E_ABORT);
  vdi_srvdev_t *d = NULL;
  ASSERT_RC(vdi_srv_open_device(srv, v.name, &d), VD_E_ABORT);
  ASSERT_NULL(d);
  uint8_t *x = NULL;
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, MT, 0), VD_E_ABORT);
  ASSERT_RC(vdi_srv_free_buffer(srv, b, MT), 0);
  ASSERT_RC(vdi_srv_execute_completion_agent(srv), VD_E_ABORT);
  ASSERT_RC(lp_call(v.cli, "odev 0 %s", v.name), VD_E_ABORT);
  ASSERT_RC(vdi_srv_close(srv), 0);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

/* --------------------------------------------------------------- Active */

TEST_IMPL(lib_st_server_active) {
  struct sv v;
  VDConfig cfg;
  uint32_t n = 0;
  uint8_t *b = NULL;
  static lp_slot sl[4];
  to_active(&v, "sact", 2);
  vdi_srvset_t *srv = v.s.srv;
  vdi_srvdev_t *d = NULL;
  ASSERT_RC(vdi_srv_open_device(srv, dn(&v, 2), &d), VD_E_OPEN);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_srv_open(srv, NULL, v.name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  config_calls(srv, VD_E_PROTOCOL, 0, VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_query_available_buffers(srv, MT, 0, &n), 0);
  ASSERT_EQ(n, 5);

  ASSERT_RC(vdi_srv_allocate_buffer(srv, &b, MT, 0), 0);
  lp_slot_init(&sl[0], VDC_Write, (int)MT, 0, b);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[0], &sl[0].cmd), 0);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), 0);
  ASSERT_RC(lp_call(v.cli, "comp 0 0 0 %u 0", MT), 0);
  ASSERT_EQ(lp_slot_wait(&sl[0], 2000), 1);
  ASSERT_EQ(sl[0].code, 0);
  ASSERT_EQ(sl[0].bytes, MT);
  ASSERT(!pthread_equal(sl[0].thread, pthread_self())); /* agent thread */

  /* CloseDevice: 0, then VD_E_CLOSE; a send to it: VD_E_PROTOCOL with
   * ERROR_INVALID_HANDLE, synchronously. */
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), 0);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), VD_E_CLOSE);
  lp_slot_init(&sl[1], VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[0], &sl[1].cmd), VD_E_PROTOCOL);
  ASSERT_EQ(atomic_load(&sl[1].calls), 1);
  ASSERT_EQ(sl[1].code, ERROR_INVALID_HANDLE);
  ASSERT(pthread_equal(sl[1].thread, pthread_self()));
  ASSERT_RC(lp_call(v.cli, "get 0 1 2000"), VD_E_CLOSE);
  ASSERT_RC(lp_call(v.cli, "get 0 1 0"), VD_E_PROTOCOL);

  /* Close with device 1 still open: VD_E_PROTOCOL, the set is aborted. */
  lp_slot_init(&sl[2], VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[1], &sl[2].cmd), 0);
  ASSERT_RC(lp_call(v.cli, "get 1 2 2000"), 0);
  ASSERT_RC(vdi_srv_close(srv), VD_E_PROTOCOL);
  /* The outstanding command was completed as aborted before Close
   * returned, and the agent has returned. */
  ASSERT_EQ(atomic_load(&sl[2].calls), 1);
  ASSERT_EQ(sl[2].code, ERROR_OPERATION_ABORTED);
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), VD_E_ABORT);
  ASSERT_RC(lp_call(v.cli, "get 1 3 2000"), VD_E_ABORT);
  ASSERT_RC(lp_call(v.cli, "comp 1 2 0 0 0"), VD_E_ABORT);
  ASSERT_EQ(atomic_load(&sl[2].calls), 1);
  ASSERT_RC(vdi_srv_close(srv), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

/* The agent keeps running while a command is outstanding, even once every
 * device is closed; the late completion still reaches the routine. */
TEST_IMPL(lib_st_server_agent_outstanding) {
  struct sv v;
  static lp_slot sl;
  to_active(&v, "sagt", 1);
  lp_slot_init(&sl, VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[0], &sl.cmd), 0);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), 0);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 100), LP_RUNNING);
  ASSERT_RC(lp_call(v.cli, "comp 0 0 0 0 0"), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), 0);
  ASSERT_EQ(atomic_load(&sl.calls), 1);
  ASSERT_EQ(sl.code, 0);
  ASSERT_RC(lp_call(v.cli, "get 0 1 2000"), VD_E_CLOSE);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

/* --------------------------------------------------- NormallyTerminated */

TEST_IMPL(lib_st_server_normterm) {
  struct sv v;
  VDConfig cfg;
  uint8_t *b = NULL;
  static lp_slot sl;
  to_active(&v, "snt", 2);
  vdi_srvset_t *srv = v.s.srv;
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &b, MT, 0), 0);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), 0);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[1]), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), 0);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), VD_E_CLOSE);
  ASSERT_RC(lp_call(v.cli, "get 1 0 2000"), VD_E_CLOSE);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  ASSERT_EQ(cfg.blockSize, BS);
  ASSERT_RC(vdi_srv_open(srv, NULL, v.name), VD_E_PROTOCOL);
  config_calls(srv, VD_E_PROTOCOL, VD_E_PROTOCOL, VD_E_PROTOCOL);
  vdi_srvdev_t *d = NULL;
  ASSERT_RC(vdi_srv_open_device(srv, dn(&v, 2), &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  uint8_t *x = NULL;
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, MT, 0), VD_E_PROTOCOL);
  ASSERT_RC(vdi_srv_free_buffer(srv, b, MT), 0);
  lp_slot_init(&sl, VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[1], &sl.cmd), VD_E_PROTOCOL);
  ASSERT_EQ(atomic_load(&sl.calls), 1);
  ASSERT_EQ(sl.code, ERROR_INVALID_HANDLE);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[1]), VD_E_CLOSE);
  ASSERT_RC(vdi_srv_close(srv), 0);
  ASSERT_RC(vdi_srv_close(srv), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_normterm_abort) {
  struct sv v;
  VDConfig cfg;
  to_active(&v, "snta", 1);
  ASSERT_RC(vdi_srvdev_close_device(v.s.dev[0]), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), 0);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  ASSERT_RC(vdi_srv_get_configuration(v.s.srv, &cfg), VD_E_ABORT);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

/* ---------------------------------------------------------------- Abort */

static void abort_checks(struct sv *v, uint8_t *b) {
  VDConfig cfg;
  static lp_slot sl;
  vdi_srvset_t *srv = v->s.srv;
  ASSERT_RC(vdi_srv_signal_abort(srv), 0);
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), VD_E_ABORT);
  config_calls(srv, VD_E_ABORT, VD_E_ABORT, VD_E_ABORT);
  ASSERT_RC(vdi_srv_open(srv, NULL, v->name), VD_E_PROTOCOL);
  vdi_srvdev_t *d = NULL;
  ASSERT_RC(vdi_srv_open_device(srv, dn(v, 1), &d), VD_E_ABORT);
  ASSERT_NULL(d);
  uint8_t *x = NULL;
  ASSERT_RC(vdi_srv_allocate_buffer(srv, &x, MT, 0), VD_E_ABORT);
  ASSERT_RC(vdi_srv_free_buffer(srv, b, MT), 0);
  lp_slot_init(&sl, VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v->s.dev[0], &sl.cmd), VD_E_ABORT);
  ASSERT_EQ(atomic_load(&sl.calls), 1);
  ASSERT_EQ(sl.code, ERROR_OPERATION_ABORTED);
  ASSERT(pthread_equal(sl.thread, pthread_self()));
  ASSERT_RC(vdi_srvdev_close_device(v->s.dev[0]), VD_E_ABORT);
  ASSERT_RC(lp_call(v->cli, "cfg 0"), VD_E_ABORT);
  ASSERT_RC(lp_call(v->cli, "get 1 9 2000"), VD_E_ABORT);
}

TEST_IMPL(lib_st_server_abort) {
  struct sv v;
  uint8_t *b = NULL;
  static lp_slot sl[2];
  to_active(&v, "sab", 2);
  ASSERT_RC(vdi_srv_allocate_buffer(v.s.srv, &b, MT, 0), 0);
  /* One command fetched by the client, one still queued. */
  lp_slot_init(&sl[0], VDC_Write, (int)MT, 0, b);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[0], &sl[0].cmd), 0);
  lp_slot_init(&sl[1], VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[1], &sl[1].cmd), 0);
  ASSERT_RC(lp_call(v.cli, "get 0 0 2000"), 0);
  ASSERT_RC(vdi_srv_signal_abort(v.s.srv), 0);
  /* The agent completes both as aborted, then returns VD_E_ABORT. */
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), VD_E_ABORT);
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(atomic_load(&sl[i].calls), 1);
    ASSERT_EQ(sl[i].code, ERROR_OPERATION_ABORTED);
  }
  abort_checks(&v, b);
  /* The client's late completion is refused and ignored. */
  ASSERT_RC(lp_call(v.cli, "comp 0 0 0 %u 0", MT), VD_E_ABORT);
  sleep_ms(30);
  ASSERT_EQ(atomic_load(&sl[0].calls), 1);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(vdi_srv_close(v.s.srv), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}

TEST_IMPL(lib_st_server_abort_by_client) {
  struct sv v;
  uint8_t *b = NULL;
  static lp_slot sl;
  to_active(&v, "sabc", 2);
  ASSERT_RC(vdi_srv_allocate_buffer(v.s.srv, &b, MT, 0), 0);
  lp_slot_init(&sl, VDC_Write, (int)MT, 0, b);
  ASSERT_RC(vdi_srvdev_send_command(v.s.dev[0], &sl.cmd), 0);
  ASSERT_RC(lp_call(v.cli, "abort"), 0);
  ASSERT_RC(lp_srv_agent_join(&v.s, 2000), VD_E_ABORT);
  ASSERT_EQ(atomic_load(&sl.calls), 1);
  ASSERT_EQ(sl.code, ERROR_OPERATION_ABORTED);
  abort_checks(&v, b);
  ASSERT_RC(vdi_srv_close(v.s.srv), 0);
  ASSERT_RC(lp_call(v.cli, "close"), 0);
  finish(&v);
  return 0;
}
