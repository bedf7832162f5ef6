/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-state-client.c - the client state table (spec 2.4.2): every
 * client method in every state, with the exact return code, plus the
 * value checks of Create.  The test process is the client; a separate
 * process (the lp_srv helper of lib_peer.c) is the server and is driven
 * step by step over a pipe, so each state is reached through the real
 * protocol between two processes.
 */
#include "lib_peer.h"

#include <unistd.h>

#define MT 65536u

/* One client set under test and its remote server. */
struct cl {
  vdi_set_t *set;
  lp_peer *srv;
  char name[96];
  int ndev;
  vdi_device_t *dev[8];
};

static vdi_set_t *new_set(void) {
  vdi_set_t *s = NULL;
  ASSERT_RC(vdi_set_new(&s), 0);
  ASSERT_NOT_NULL(s);
  return s;
}

static const char *dn(struct cl *c, int i) {
  static __thread char buf[8][128];
  return lp_devname(c->name, i, buf[i % 8], sizeof buf[0]);
}

/* DNE -> Configurable, and a server process ready to attach. */
static void to_configurable(struct cl *c, const char *tag, int ndev) {
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", unique_name(tag));
  c->ndev = ndev;
  c->set = new_set();
  VDConfig cfg = lp_cfg((uint32_t)ndev, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(c->set, c->name, &cfg), 0);
  c->srv = lp_spawn("lp_srv");
}

/* -> Initializing: the server configures, names every device and runs its
 * completion agent; our GetConfiguration returns. */
static void to_initializing(struct cl *c) {
  VDConfig cfg;
  ASSERT_RC(
      lp_call(c->srv, "config %s %u 4096 0 %u 8", c->name, VDF_WriteMedia, MT),
      0);
  ASSERT_RC(lp_call(c->srv, "odevs %s %d", c->name, c->ndev), 0);
  ASSERT_RC(lp_call(c->srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(c->set, 2000, &cfg), 0);
}

static void open_dev(struct cl *c, int i) {
  c->dev[i] = NULL;
  ASSERT_RC(vdi_set_open_device(c->set, dn(c, i), &c->dev[i]), 0);
  ASSERT_NOT_NULL(c->dev[i]);
}

/* -> NormallyTerminated: every device opened, closed by the server, and
 * VD_E_CLOSE seen by us. One Flush per device went through first, so the
 * caller has a stale command pointer in *stale. */
static void to_normterm(struct cl *c, VDC_Command **stale) {
  for (int i = 0; i < c->ndev; i++)
    open_dev(c, i);
  ASSERT_RC(lp_call(c->srv, "send 0 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c->dev[0], 2000, stale), 0);
  ASSERT_RC(vdi_dev_complete_command(c->dev[0], *stale, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c->srv, "wait 0 2000"), 1);
  for (int i = 0; i < c->ndev; i++)
    ASSERT_RC(lp_call(c->srv, "cdev %d", i), 0);
  VDC_Command *cmd;
  for (int i = 0; i < c->ndev; i++)
    ASSERT_RC(vdi_dev_get_command(c->dev[i], 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(lp_call(c->srv, "join 2000"), 0);
}

static void finish(struct cl *c) {
  lp_end(c->srv);
  vdi_set_free(c->set);
}

/* ------------------------------------------------------------------ DNE */

TEST_IMPL(lib_st_client_dne) {
  vdi_set_t *set = new_set();
  VDConfig cfg;
  vdi_device_t *d = (vdi_device_t *)&cfg;
  uint8_t local[16], *p = NULL;
  uint32_t h = 0;
  ASSERT_RC(vdi_set_get_configuration(set, 0, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_open_device(set, "x", &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_set_signal_abort(set), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_close(set), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_buffer_handle(set, local, &h), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_map_buffer_handle(set, 1, &p), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_allow_group(set, getgid()), 0);
  /* Create works from DNE; after Close the object is DNE again. */
  const char *name = unique_name("dne");
  cfg = lp_cfg(1, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  ASSERT_RC(vdi_set_close(set), 0);
  ASSERT_RC(vdi_set_close(set), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(set, 0, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_signal_abort(set), VD_E_PROTOCOL);
  /* ... and can create again, with the same name. */
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  ASSERT_RC(vdi_set_close(set), 0);
  vdi_set_free(set);
  return 0;
}

/* --------------------------------------------------------------- Create */

static int try_create(const char *name, VDConfig cfg) {
  vdi_set_t *set = new_set();
  int rc = vdi_set_create(set, name, &cfg);
  if (rc == 0) ASSERT_RC(vdi_set_close(set), 0);
  vdi_set_free(set);
  return rc;
}

TEST_IMPL(lib_st_client_create_names) {
  VDConfig cfg = lp_cfg(1, VDF_LikePipe);
  char name[200];
  const char *base = unique_name("nm");
  ASSERT_RC(try_create(NULL, cfg), VD_E_INVALID);
  ASSERT_RC(try_create("", cfg), VD_E_INVALID);
  /* 95 bytes is the longest name; 96 is too long. */
  snprintf(name, sizeof name, "%s", base);
  size_t n = strlen(name);
  memset(name + n, 'x', 95 - n);
  name[95] = 0;
  ASSERT_RC(try_create(name, cfg), 0);
  name[95] = 'y';
  name[96] = 0;
  ASSERT_RC(try_create(name, cfg), VD_E_INVALID);
  snprintf(name, sizeof name, "%s/a", base);
  ASSERT_RC(try_create(name, cfg), VD_E_INVALID);
  snprintf(name, sizeof name, "%s\\a", base);
  ASSERT_RC(try_create(name, cfg), VD_E_INVALID);
  snprintf(name, sizeof name, "%s\x01", base);
  ASSERT_RC(try_create(name, cfg), VD_E_INVALID);
  snprintf(name, sizeof name, "%s\n", base);
  ASSERT_RC(try_create(name, cfg), VD_E_INVALID);
  snprintf(name, sizeof name, "%s\x7f", base);
  ASSERT_RC(try_create(name, cfg), VD_E_INVALID);
  /* Printable punctuation and spaces are fine. */
  snprintf(name, sizeof name, "%s {x}-y.z:1", base);
  ASSERT_RC(try_create(name, cfg), 0);
  return 0;
}

TEST_IMPL(lib_st_client_create_values) {
  const char *name = unique_name("val");
  VDConfig c;
  c = lp_cfg(0, VDF_LikePipe);
  ASSERT_RC(try_create(name, c), VD_E_INVALID);
  c = lp_cfg(65, VDF_LikePipe);
  ASSERT_RC(try_create(name, c), VD_E_INVALID);
  c = lp_cfg(64, VDF_LikePipe);
  ASSERT_RC(try_create(name, c), 0);
  c = lp_cfg(1, VDF_LikePipe);
  c.alignment = 3;
  ASSERT_RC(try_create(name, c), VD_E_INVALID);
  c.alignment = 6144;
  ASSERT_RC(try_create(name, c), VD_E_INVALID);
  c.alignment = 131072;
  ASSERT_RC(try_create(name, c), VD_E_INVALID);
  c.alignment = 65536;
  ASSERT_RC(try_create(name, c), 0);
  c.alignment = 0;
  c.prefixZoneSize = VDI_MAX_PREFIXZONE + 1;
  ASSERT_RC(try_create(name, c), VD_E_INVALID);
  c.prefixZoneSize = VDI_MAX_PREFIXZONE;
  ASSERT_RC(try_create(name, c), 0);

  /* Feature mixes: one base mode plus the independent bits is fine. */
  static const uint32_t good[] = {
      VDF_LikePipe,
      VDF_LikePipe | VDF_Removable,
      VDF_LikeTape,
      VDF_LikeDisk,
      VDF_LikeDisk | VDF_Removable,
      VDF_LikePipe | VDF_Discard | VDF_SnapshotPrepare | VDF_RequestComplete,
      VDF_LikeTape | VDF_EnumFrozenFiles | VDF_VSSWriter | VDF_LatchStats,
      VDF_LikeDisk | VDF_Discard | VDF_RequestComplete | VDF_LatchStats,
  };
  static const uint32_t bad[] = {
      VDF_Position,
      VDF_RandomAccess | VDF_FileMarks,
      VDF_LikeTape | VDF_RandomAccess,
      VDF_FileMarks,
      VDF_Rewind,
      VDF_LikePipe | VDF_WriteMedia,
      VDF_LikePipe | VDF_ReadMedia,
      VDF_LikeDisk | VDF_CompleteEnabled,
      0x00000004u, /* an unnamed bit */
      0x00100000u,
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    c = lp_cfg(1, good[i]);
    int rc = try_create(name, c);
    if (rc != 0) TASK_FAIL_("features 0x%x: %s", good[i], task_code_name(rc));
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    c = lp_cfg(1, bad[i]);
    int rc = try_create(name, c);
    if (rc != VD_E_NOTSUPPORTED)
      TASK_FAIL_("features 0x%x: %s, expected VD_E_NOTSUPPORTED", bad[i],
                 task_code_name(rc));
  }
  return 0;
}

TEST_IMPL(lib_st_client_create_busy) {
  const char *name = unique_name("busy");
  char nm[96];
  snprintf(nm, sizeof nm, "%s", name);
  VDConfig c = lp_cfg(1, VDF_LikePipe);
  /* Another object of this process holds the name. */
  vdi_set_t *a = new_set();
  ASSERT_RC(vdi_set_create(a, nm, &c), 0);
  ASSERT_RC(try_create(nm, c), VD_E_BUSY);
  ASSERT_RC(vdi_set_close(a), 0);
  /* Another process holds the name. */
  lp_peer *cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(cli, "create %s 1 0 0 0 0", nm), 0);
  ASSERT_RC(vdi_set_create(a, nm, &c), VD_E_BUSY);
  /* The failed create left the object in DNE. */
  ASSERT_RC(vdi_set_close(a), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(cli, "close"), 0);
  /* The name is free again once the other process closed its set. */
  ASSERT_RC(vdi_set_create(a, nm, &c), 0);
  ASSERT_RC(lp_call(cli, "create %s 1 0 0 0 0", nm), VD_E_BUSY);
  ASSERT_RC(vdi_set_close(a), 0);
  lp_end(cli);
  vdi_set_free(a);
  return 0;
}

/* --------------------------------------------------------- Configurable */

TEST_IMPL(lib_st_client_configurable) {
  struct cl c;
  VDConfig cfg = lp_cfg(2, VDF_LikePipe);
  vdi_device_t *d = (vdi_device_t *)&cfg;
  to_configurable(&c, "cfgb", 2);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_create(c.set, unique_name("other"), &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_allow_group(c.set, getgid()), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_open_in_secondary(c.set, c.name), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_TIMEOUT);
  int64_t t0 = now_ms();
  ASSERT_RC(vdi_set_get_configuration(c.set, 100, &cfg), VD_E_TIMEOUT);
  ASSERT_GE(now_ms() - t0, 100);
  ASSERT_RC(vdi_set_open_device(c.set, c.name, &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  /* The server attaches and configures: we stay Configurable until its
   * EndConfiguration. */
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_TIMEOUT);
  ASSERT_RC(lp_call(c.srv, "begin %u 4096 0 %u 1000", VDF_WriteMedia, MT), 0);
  ASSERT_RC(lp_call(c.srv, "reqbuf %u 0 4", MT), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_TIMEOUT);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, c.name, &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  ASSERT_RC(lp_call(c.srv, "end"), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 1000, &cfg), 0);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  ASSERT_RC(vdi_set_close(c.set), 0);
  finish(&c);
  return 0;
}

TEST_IMPL(lib_st_client_configurable_abort) {
  struct cl c;
  VDConfig cfg;
  to_configurable(&c, "cfga", 1);
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), 0);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_ABORT);
  ASSERT_RC(vdi_set_get_configuration(c.set, -1, &cfg), VD_E_ABORT);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  /* The server sees the abort. */
  ASSERT_RC(lp_call(c.srv, "cfg"), VD_E_ABORT);
  ASSERT_RC(lp_call(c.srv, "begin %u 4096 0 %u 1000", VDF_WriteMedia, MT),
            VD_E_ABORT);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(vdi_set_close(c.set), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

TEST_IMPL(lib_st_client_configurable_close) {
  struct cl c;
  to_configurable(&c, "cfgc", 1);
  ASSERT_RC(vdi_set_close(c.set), 0);
  /* DNE again: the name is free for a new object. */
  VDConfig cfg = lp_cfg(1, VDF_LikePipe);
  /* A helper forked just after Create holds a copy of the listening socket
   * until its exec (CLOEXEC), so the name can stay bound for that moment. */
  int rc;
  int64_t end = now_ms() + 2000;
  while ((rc = try_create(c.name, cfg)) == VD_E_BUSY && now_ms() < end)
    sleep_ms(5);
  ASSERT_RC(rc, 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_PROTOCOL);
  /* No server can attach to a closed set. */
  ASSERT_RC(lp_call(c.srv, "open %s", c.name), VD_E_INVALID);
  finish(&c);
  return 0;
}

/* --------------------------------------------------------- Initializing */

TEST_IMPL(lib_st_client_initializing) {
  struct cl c;
  VDConfig cfg;
  vdi_device_t *d;
  to_configurable(&c, "init", 2);
  to_initializing(&c);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, -1, &cfg), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, INFINITE, &cfg), 0);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, "nope", &d), VD_E_INVALID);
  ASSERT_NULL(d);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, NULL, &d), VD_E_INVALID);
  ASSERT_NULL(d);
  /* No device opened: Close is a plain close. */
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_PROTOCOL);
  finish(&c);
  return 0;
}

TEST_IMPL(lib_st_client_initializing_abort) {
  struct cl c;
  VDConfig cfg;
  vdi_device_t *d;
  to_configurable(&c, "inita", 2);
  to_initializing(&c);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_ABORT);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, c.name, &d), VD_E_ABORT);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(c.srv, "join 2000"), VD_E_ABORT);
  ASSERT_RC(lp_call(c.srv, "cfg"), VD_E_ABORT);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

/* --------------------------------------------------------------- Active */

TEST_IMPL(lib_st_client_active) {
  struct cl c;
  VDConfig cfg;
  vdi_device_t *d;
  VDC_Command *cmd = NULL, *cmd2 = NULL;
  to_configurable(&c, "act", 2);
  to_initializing(&c);
  open_dev(&c, 0);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, c.name, &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, "nope", &d), VD_E_INVALID);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), 0);

  ASSERT_RC(vdi_dev_get_command(c.dev[0], 0, &cmd), VD_E_TIMEOUT);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 30, &cmd), VD_E_TIMEOUT);
  ASSERT_RC(lp_call(c.srv, "alloc 0 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d %u 0 0", VDC_Write, MT), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Write);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, MT, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_EQ(lp_v(c.srv, 0), 0);
  /* Completing it again, or something never given out: VD_E_INVALID. */
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, MT, 0), VD_E_INVALID);
  VDC_Command fake = {VDC_Write, (int32_t)MT, 0, NULL};
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], &fake, 0, 0, 0), VD_E_INVALID);
  ASSERT_EQ(lp_call(c.srv, "wait 0 0"), 1);
  ASSERT_EQ(lp_v(c.srv, 3), 1); /* the routine ran exactly once */

  /* A command of device 0 completed on device 1: VD_E_INVALID. */
  open_dev(&c, 1);
  ASSERT_RC(lp_call(c.srv, "send 1 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd2), 0);
  ASSERT_EQ(cmd2->commandCode, VDC_Flush);
  ASSERT_RC(vdi_dev_complete_command(c.dev[1], cmd2, 0, 0, 0), VD_E_INVALID);
  ASSERT_EQ(lp_call(c.srv, "wait 1 50"), 0);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd2, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 1 2000"), 1);

  /* Buffer handles: a non-buffer address and a bad handle are invalid. */
  uint8_t local[64], *p = NULL;
  uint32_t h = 0;
  ASSERT_RC(vdi_set_get_buffer_handle(c.set, local, &h), VD_E_INVALID);
  ASSERT_RC(vdi_set_map_buffer_handle(c.set, 0xFFFFFFFFu, &p), VD_E_INVALID);

  /* Every device open: VD_E_OPEN comes first, whatever the name. */
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, c.name, &d), VD_E_OPEN);
  ASSERT_NULL(d);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, dn(&c, 1), &d), VD_E_OPEN);
  ASSERT_NULL(d);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, "nope", &d), VD_E_OPEN);
  ASSERT_NULL(d);

  /* Close with open devices: VD_E_OPEN, the set is aborted for the server,
   * and our object is DNE. */
  ASSERT_RC(vdi_set_close(c.set), VD_E_OPEN);
  ASSERT_RC(lp_call(c.srv, "join 2000"), VD_E_ABORT);
  ASSERT_RC(lp_call(c.srv, "send 2 1 %d 0 0 -1", VDC_Flush), VD_E_ABORT);
  ASSERT_EQ(lp_v(c.srv, 0), 1);
  ASSERT_EQ(lp_v(c.srv, 1), ERROR_OPERATION_ABORTED);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_close(c.set), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  /* The object can create again. */
  cfg = lp_cfg(1, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(c.set, unique_name("again"), &cfg), 0);
  ASSERT_RC(vdi_set_close(c.set), 0);
  finish(&c);
  return 0;
}

TEST_IMPL(lib_st_client_active_getcommand_close) {
  struct cl c;
  VDC_Command *cmd = NULL;
  to_configurable(&c, "actc", 2);
  to_initializing(&c);
  open_dev(&c, 0);
  open_dev(&c, 1);
  /* A queued command is still delivered before VD_E_CLOSE. */
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(lp_call(c.srv, "cdev 0"), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Flush);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, 0, 0), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 0, &cmd), VD_E_PROTOCOL);
  /* Device 1 is still Active. */
  ASSERT_RC(vdi_dev_get_command(c.dev[1], 0, &cmd), VD_E_TIMEOUT);
  ASSERT_RC(lp_call(c.srv, "join 50"), LP_RUNNING);
  ASSERT_RC(lp_call(c.srv, "cdev 1"), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[1], 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(lp_call(c.srv, "join 2000"), 0);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

/* --------------------------------------------------- NormallyTerminated */

TEST_IMPL(lib_st_client_normterm) {
  struct cl c;
  VDConfig cfg;
  vdi_device_t *d;
  VDC_Command *stale = NULL, *cmd = NULL;
  to_configurable(&c, "nt", 2);
  to_initializing(&c);
  to_normterm(&c, &stale);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), 0);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, c.name, &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, "nope", &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 0, &cmd), VD_E_PROTOCOL);
  ASSERT_RC(vdi_dev_get_command(c.dev[1], 0, &cmd), VD_E_PROTOCOL);
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], stale, 0, 0, 0), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(vdi_set_close(c.set), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

TEST_IMPL(lib_st_client_normterm_abort) {
  struct cl c;
  VDConfig cfg;
  VDC_Command *stale = NULL, *cmd = NULL;
  to_configurable(&c, "nta", 1);
  to_initializing(&c);
  to_normterm(&c, &stale);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_ABORT);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 0, &cmd), VD_E_ABORT);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

/* ---------------------------------------------------------------- Abort */

TEST_IMPL(lib_st_client_abort) {
  struct cl c;
  VDConfig cfg;
  vdi_device_t *d;
  VDC_Command *cmd = NULL, *cmd2 = NULL;
  to_configurable(&c, "ab", 2);
  to_initializing(&c);
  open_dev(&c, 0);
  ASSERT_RC(lp_call(c.srv, "send 0 0 %d 0 0 -1", VDC_Flush), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  /* The outstanding command reached the server as aborted. */
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_EQ(lp_v(c.srv, 0), ERROR_OPERATION_ABORTED);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_ABORT);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, dn(&c, 1), &d), VD_E_ABORT);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 0, &cmd2), VD_E_ABORT);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], -1, &cmd2), VD_E_ABORT);
  /* A late completion is refused and ignored. */
  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, 0, 0), VD_E_ABORT);
  sleep_ms(30);
  ASSERT_EQ(lp_call(c.srv, "wait 0 0"), 1);
  ASSERT_EQ(lp_v(c.srv, 0), ERROR_OPERATION_ABORTED);
  ASSERT_EQ(lp_v(c.srv, 3), 1);
  /* The server is in Abort too. */
  ASSERT_RC(lp_call(c.srv, "join 2000"), VD_E_ABORT);
  ASSERT_RC(lp_call(c.srv, "send 1 0 %d 0 0 -1", VDC_Flush), VD_E_ABORT);
  ASSERT_EQ(lp_v(c.srv, 1), ERROR_OPERATION_ABORTED);
  /* Aborted: Close returns 0 although a device never saw VD_E_CLOSE. */
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(vdi_set_close(c.set), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

struct waiter {
  vdi_device_t *dev;
  vdi_set_t *set;
  int rc, cfg_rc;
  atomic_int done;
};

static void *wait_main(void *arg) {
  struct waiter *w = arg;
  VDC_Command *cmd;
  w->rc = vdi_dev_get_command(w->dev, -1, &cmd);
  atomic_store(&w->done, 1);
  return NULL;
}

TEST_IMPL(lib_st_client_abort_by_server) {
  struct cl c;
  VDConfig cfg;
  vdi_device_t *d;
  to_configurable(&c, "abs", 2);
  to_initializing(&c);
  open_dev(&c, 0);
  /* A thread blocks forever in GetCommand; the server's abort ends it. */
  struct waiter w = {.dev = c.dev[0]};
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, NULL, wait_main, &w), 0);
  sleep_ms(50);
  ASSERT_EQ(atomic_load(&w.done), 0);
  ASSERT_RC(lp_call(c.srv, "abort"), 0);
  ASSERT_RC(lp_call(c.srv, "abort"), 0);
  int64_t t0 = now_ms();
  while (!atomic_load(&w.done) && now_ms() - t0 < 2000)
    sleep_ms(1);
  ASSERT_EQ(atomic_load(&w.done), 1);
  pthread_join(t, NULL);
  ASSERT_RC(w.rc, VD_E_ABORT);
  ASSERT_RC(vdi_set_get_configuration(c.set, 0, &cfg), VD_E_ABORT);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, dn(&c, 1), &d), VD_E_ABORT);
  ASSERT_NULL(d);
  ASSERT_RC(vdi_set_signal_abort(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "join 2000"), VD_E_ABORT);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  finish(&c);
  return 0;
}

/* ---------------------------------------------------- OpenInSecondary */

TEST_IMPL(lib_st_client_secondary) {
  struct cl c;
  VDConfig cfg;
  VDC_Command *cmd = NULL;
  vdi_device_t *d;
  lp_peer *sec = lp_spawn("lp_cli");
  const char *nm = unique_name("sec");
  /* No such set. */
  ASSERT_RC(lp_call(sec, "sec %s", nm), VD_E_PROTOCOL);
  memset(&c, 0, sizeof c);
  snprintf(c.name, sizeof c.name, "%s", nm);
  c.ndev = 3;
  c.set = new_set();
  cfg = lp_cfg(3, VDF_LikePipe);
  ASSERT_RC(vdi_set_create(c.set, c.name, &cfg), 0);
  c.srv = lp_spawn("lp_srv");
  /* The primary has not finished GetConfiguration yet. */
  ASSERT_RC(lp_call(sec, "sec %s", nm), VD_E_PROTOCOL);
  ASSERT_RC(
      lp_call(c.srv, "config %s %u 4096 0 %u 8", c.name, VDF_WriteMedia, MT),
      0);
  ASSERT_RC(lp_call(c.srv, "odevs %s 3", c.name), 0);
  ASSERT_RC(lp_call(c.srv, "agent"), 0);
  ASSERT_RC(lp_call(sec, "sec %s", nm), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_get_configuration(c.set, 2000, &cfg), 0);
  ASSERT_RC(lp_call(sec, "sec %s", nm), 0);
  ASSERT_RC(lp_call(sec, "sec %s", nm), VD_E_PROTOCOL);
  ASSERT_RC(vdi_set_open_in_secondary(c.set, nm), VD_E_PROTOCOL);
  ASSERT_RC(lp_call(sec, "cfg 0"), 0);
  ASSERT_EQ(lp_v(sec, 0), 3);
  /* Devices are split between the processes; one process cannot open a
   * device the other has. */
  open_dev(&c, 0);
  ASSERT_RC(lp_call(sec, "odev 0 %s", dn(&c, 0)), VD_E_PROTOCOL);
  ASSERT_EQ(lp_v(sec, 0), 1);
  ASSERT_RC(lp_call(sec, "odev 1 %s", dn(&c, 1)), 0);
  d = (vdi_device_t *)&cfg;
  ASSERT_RC(vdi_set_open_device(c.set, dn(&c, 1), &d), VD_E_PROTOCOL);
  ASSERT_NULL(d);
  open_dev(&c, 2);

  /* The secondary services its device, zero copy. */
  ASSERT_RC(lp_call(c.srv, "alloc 0 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "fill 0 0 %u 77", MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 0 1 %d %u 0 0", VDC_Write, MT), 0);
  ASSERT_RC(lp_call(sec, "get 1 0 2000"), 0);
  ASSERT_EQ(lp_v(sec, 0), VDC_Write);
  ASSERT_RC(lp_call(sec, "check 0 0 %u 77", MT), 0);

  /* A handle from the primary maps to the same bytes in the secondary. */
  ASSERT_RC(lp_call(c.srv, "alloc 1 %u 0", MT), 0);
  ASSERT_RC(lp_call(c.srv, "fill 1 0 %u 99", MT), 0);
  ASSERT_RC(lp_call(c.srv, "send 1 0 %d %u 0 1", VDC_Write, MT), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), 0);
  uint32_t h = 0;
  uint8_t *p = NULL;
  ASSERT_RC(vdi_set_get_buffer_handle(c.set, cmd->buffer, &h), 0);
  ASSERT_RC(vdi_set_map_buffer_handle(c.set, h, &p), 0);
  ASSERT(p == cmd->buffer);
  ASSERT_RC(lp_call(sec, "map 0 %u", h), 0);
  ASSERT_RC(lp_call(sec, "mcheck 0 0 %u 99", MT), 0);
  ASSERT_RC(lp_call(sec, "mfill 0 0 1000 5"), 0);
  ASSERT_EQ(lp_check(cmd->buffer, 1000, 5), -1);
  ASSERT_RC(lp_call(sec, "map 1 %u", 0xFFFFFFFFu), VD_E_INVALID);
  /* ... and one from the secondary maps here. */
  ASSERT_RC(lp_call(sec, "handle 0"), 0);
  uint32_t h2 = (uint32_t)lp_v(sec, 0);
  ASSERT_NE(h2, h);
  ASSERT_RC(vdi_set_map_buffer_handle(c.set, h2, &p), 0);
  ASSERT_EQ(lp_check(p, MT, 77), -1);

  ASSERT_RC(vdi_dev_complete_command(c.dev[0], cmd, 0, MT, 0), 0);
  ASSERT_RC(lp_call(sec, "comp 1 0 0 %u 0", MT), 0);
  ASSERT_EQ(lp_call(c.srv, "wait 0 2000"), 1);
  ASSERT_EQ(lp_v(c.srv, 1), MT);
  ASSERT_EQ(lp_call(c.srv, "wait 1 2000"), 1);
  for (int i = 0; i < 3; i++)
    ASSERT_RC(lp_call(c.srv, "cdev %d", i), 0);
  ASSERT_RC(vdi_dev_get_command(c.dev[0], 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(vdi_dev_get_command(c.dev[2], 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(lp_call(sec, "get 1 1 2000"), VD_E_CLOSE);
  ASSERT_RC(lp_call(c.srv, "join 2000"), 0);
  ASSERT_RC(lp_call(sec, "close"), 0);
  ASSERT_RC(vdi_set_close(c.set), 0);
  ASSERT_RC(lp_call(c.srv, "close"), 0);
  lp_end(sec);
  finish(&c);
  return 0;
}
