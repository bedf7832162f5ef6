/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-stream.c - the core across two real processes: a backup stream
 * and a restore stream over 1..64 devices, with several commands in flight,
 * zero copy checked byte for byte, prefix zone and alignment honoured.
 *
 * The server (engine) side is the helper `lib_server`, a separate process;
 * the test process is the client.  Data is a pattern derived from
 * (device, sequence number), so either side can check the other.
 */
#include "lib_util.h"
#include "task.h"
#include "vdi.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static uint64_t pat(uint32_t dev, uint32_t seq, uint32_t i) {
  uint64_t x = ((uint64_t)dev << 48) ^ ((uint64_t)seq << 20) ^ i;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static void fill(uint8_t *buf, uint32_t size, uint32_t dev, uint32_t seq) {
  for (uint32_t i = 0; i + 8 <= size; i += 8) {
    uint64_t v = pat(dev, seq, i);
    memcpy(buf + i, &v, 8);
  }
}

static int check(const uint8_t *buf, uint32_t size, uint32_t dev,
                 uint32_t seq) {
  for (uint32_t i = 0; i + 8 <= size; i += 8) {
    uint64_t v;
    memcpy(&v, buf + i, 8);
    if (v != pat(dev, seq, i)) return 0;
  }
  return 1;
}

/* ------------------------------------------------------------- server */

struct srv_dev {
  vdi_srvset_t *srv;
  vdi_srvdev_t *dev;
  uint32_t idx, count, size, inflight;
  int restore;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, errors;
  VDS_Command cmds[8];
  int busy[8];
};

static void on_complete(VDS_Command *c) {
  struct srv_dev *d = (struct srv_dev *)(void *)c->completionContext;
  pthread_mutex_lock(&d->mu);
  int k = (int)(c - d->cmds);
  if (c->completionCode != 0) d->errors++;
  if (d->restore && c->commandCode == VDC_Read && c->completionCode == 0) {
    uint32_t seq = (uint32_t)(c->inPosition);
    if (c->bytesTransferred != c->size ||
        !check(c->buffer, (uint32_t)c->size, d->idx, seq))
      d->errors++;
  }
  d->busy[k] = 0;
  d->done++;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

static int send_one(struct srv_dev *d, int k, int32_t code, uint32_t seq) {
  VDS_Command *c = &d->cmds[k];
  uint8_t *buf = c->buffer;
  memset(c, 0, sizeof *c);
  c->commandCode = code;
  c->size = (int32_t)d->size;
  c->inPosition = seq;
  c->buffer = buf;
  c->completionContext = (uint8_t *)d;
  VDS_SET_COMPLETION(c, on_complete);
  if (code == VDC_Write) fill(buf, d->size, d->idx, seq);
  d->busy[k] = 1;
  return vdi_srvdev_send_command(d->dev, c);
}

static void *srv_dev_thread(void *arg) {
  struct srv_dev *d = arg;
  uint32_t sent = 0;
  int32_t code = d->restore ? VDC_Read : VDC_Write;
  pthread_mutex_lock(&d->mu);
  while (sent < d->count && !d->errors) {
    int k = -1;
    for (uint32_t i = 0; i < d->inflight; i++)
      if (!d->busy[i]) k = (int)i;
    if (k < 0) {
      pthread_cond_wait(&d->cv, &d->mu);
      continue;
    }
    pthread_mutex_unlock(&d->mu);
    int rc = send_one(d, k, code, sent++);
    pthread_mutex_lock(&d->mu);
    if (rc) d->errors++;
  }
  for (;;) {
    int any = 0;
    for (uint32_t i = 0; i < d->inflight; i++)
      any |= d->busy[i];
    if (!any) break;
    pthread_cond_wait(&d->cv, &d->mu);
  }
  pthread_mutex_unlock(&d->mu);
  if (!d->errors && !d->restore) {
    pthread_mutex_lock(&d->mu);
    send_one(d, 0, VDC_Flush, 0);
    while (d->busy[0])
      pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
  }
  return NULL;
}

static void *agent_thread(void *arg) {
  return (void *)(intptr_t)vdi_srv_execute_completion_agent(arg);
}

/* argv: name ndev count size mode(backup|restore) inflight */
HELPER_IMPL(lib_server) {
  ASSERT_EQ(argc, 7);
  const char *name = argv[1];
  uint32_t ndev = (uint32_t)atoi(argv[2]), count = (uint32_t)atoi(argv[3]);
  uint32_t size = (uint32_t)atoi(argv[4]);
  int restore = strcmp(argv[5], "restore") == 0;
  uint32_t inflight = (uint32_t)atoi(argv[6]);
  vdi_srvset_t *srv = lu_server_open_wait(name);
  VDConfig cfg;
  ASSERT_RC(vdi_srv_get_configuration(srv, &cfg), 0);
  ASSERT_EQ(cfg.deviceCount, ndev);
  ASSERT_RC(vdi_srv_begin_configuration(
                srv, restore ? VDF_ReadMedia : VDF_WriteMedia, 4096, 0,
                (size + 65535) / 65536 * 65536, 1000),
            0);
  ASSERT_RC(vdi_srv_request_buffers(srv, size, 0, ndev * inflight), 0);
  ASSERT_RC(vdi_srv_end_configuration(srv), 0);
  struct srv_dev *devs = calloc(ndev, sizeof *devs);
  char dn[128];
  for (uint32_t i = 0; i < ndev; i++) {
    lu_dev_name(dn, sizeof dn, name, i);
    ASSERT_RC(vdi_srv_open_device(srv, dn, &devs[i].dev), 0);
  }
  vdi_srvdev_t *extra;
  ASSERT_RC(vdi_srv_open_device(srv, "more", &extra), VD_E_OPEN);
  pthread_t agent, th[64];
  pthread_create(&agent, NULL, agent_thread, srv);
  for (uint32_t i = 0; i < ndev; i++) {
    struct srv_dev *d = &devs[i];
    d->srv = srv;
    d->idx = i;
    d->count = count;
    d->size = size;
    d->restore = restore;
    d->inflight = inflight;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    for (uint32_t k = 0; k < inflight; k++) {
      ASSERT_RC(vdi_srv_allocate_buffer(srv, &d->cmds[k].buffer, size, 0), 0);
      ASSERT(vdi_srv_is_shared_buffer(srv, d->cmds[k].buffer));
      ASSERT_EQ((uintptr_t)d->cmds[k].buffer % 4096, 0);
    }
    pthread_create(&th[i], NULL, srv_dev_thread, d);
  }
  int errors = 0;
  for (uint32_t i = 0; i < ndev; i++) {
    pthread_join(th[i], NULL);
    errors += devs[i].errors;
    ASSERT_RC(vdi_srvdev_close_device(devs[i].dev), 0);
    ASSERT_RC(vdi_srvdev_close_device(devs[i].dev), VD_E_CLOSE);
  }
  void *arc;
  pthread_join(agent, &arc);
  ASSERT_RC((int)(intptr_t)arc, 0);
  ASSERT_RC(vdi_srv_close(srv), 0);
  vdi_srv_free(srv);
  free(devs);
  return errors ? 3 : 0;
}

/* ------------------------------------------------------------- client */

struct cl_dev {
  vdi_device_t *dev;
  uint32_t idx, count, size, prefix, align;
  int restore;
  int errors, writes, flushes;
};

static void *client_dev_thread(void *arg) {
  struct cl_dev *d = arg;
  VDC_Command *held[4];
  int nheld = 0;
  for (;;) {
    VDC_Command *cmd;
    /* While holding commands, only poll: the server may be waiting for
     * exactly those before it sends more. */
    int rc = vdi_dev_get_command(d->dev, nheld ? 0 : -1, &cmd);
    if (rc == VD_E_TIMEOUT && nheld) {
      while (nheld > 0) {
        VDC_Command *h = held[--nheld];
        if (vdi_dev_complete_command(d->dev, h, 0, (uint32_t)h->size, 0))
          d->errors++;
      }
      continue;
    }
    if (rc == VD_E_CLOSE) break;
    if (rc != 0) {
      d->errors++;
      break;
    }
    uint32_t code = ERROR_SUCCESS, bytes = 0;
    if (cmd->commandCode == VDC_Write || cmd->commandCode == VDC_Read) {
      if ((uintptr_t)cmd->buffer % d->align) d->errors++;
      /* The prefix zone is ours to write. */
      if (d->prefix) memset(cmd->buffer - d->prefix, 0xAB, d->prefix);
      uint32_t seq = (uint32_t)cmd->position;
      if (cmd->commandCode == VDC_Write) {
        if ((uint32_t)cmd->size != d->size ||
            !check(cmd->buffer, d->size, d->idx, seq))
          d->errors++;
        d->writes++;
      } else {
        fill(cmd->buffer, (uint32_t)cmd->size, d->idx, seq);
      }
      bytes = (uint32_t)cmd->size;
    } else if (cmd->commandCode == VDC_Flush) {
      d->flushes++;
    }
    /* Hold up to 3 writes before completing, then complete out of order,
     * to show several commands in flight per device. */
    if (cmd->commandCode == VDC_Write && nheld < 3) {
      held[nheld++] = cmd;
      continue;
    }
    while (nheld > 0) {
      VDC_Command *h = held[--nheld];
      if (vdi_dev_complete_command(d->dev, h, 0, (uint32_t)h->size, 0))
        d->errors++;
    }
    if (vdi_dev_complete_command(d->dev, cmd, code, bytes, 0)) d->errors++;
    /* Completing twice is refused. */
    if (vdi_dev_complete_command(d->dev, cmd, 0, 0, 0) != VD_E_INVALID)
      d->errors++;
  }
  return NULL;
}

struct inproc {
  int argc;
  char *argv[8];
};

static void *server_thread(void *arg) {
  struct inproc *ip = arg;
  return (void *)(intptr_t)helper_lib_server(ip->argc, ip->argv);
}

/* inproc: the server is a thread of this process (the mode TSan checks). */
static void run_stream_mode(uint32_t ndev, uint32_t count, uint32_t size,
                            int restore, uint32_t prefix, uint32_t align,
                            int inproc) {
  const char *name = unique_name("stream");
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = {0};
  cfg.deviceCount = ndev;
  cfg.prefixZoneSize = prefix;
  cfg.alignment = align;
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  char a1[16], a2[16], a3[16], a4[16];
  snprintf(a1, sizeof a1, "%u", ndev);
  snprintf(a2, sizeof a2, "%u", count);
  snprintf(a3, sizeof a3, "%u", size);
  snprintf(a4, sizeof a4, "%u", 4u);
  pid_t pid = 0;
  pthread_t st;
  struct inproc ip = {7,
                      {"lib_server", (char *)name, a1, a2, a3,
                       restore ? "restore" : "backup", a4, NULL}};
  if (inproc)
    pthread_create(&st, NULL, server_thread, &ip);
  else
    pid = spawn_helper("lib_server", name, a1, a2, a3,
                       restore ? "restore" : "backup", a4, NULL);
  int rc;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT) {
  }
  ASSERT_RC(rc, 0);
  ASSERT_EQ(cfg.maxIODepth, 4);
  ASSERT(cfg.features & (restore ? VDF_ReadMedia : VDF_WriteMedia));
  ASSERT_EQ(cfg.prefixZoneSize, prefix);
  ASSERT_GE(cfg.alignment, align ? align : 4096);
  ASSERT_GT(cfg.bufferAreaSize, 0);
  struct cl_dev *devs = calloc(ndev, sizeof *devs);
  pthread_t th[64];
  char dn[128];
  for (uint32_t i = 0; i < ndev; i++) {
    lu_dev_name(dn, sizeof dn, name, i);
    ASSERT_RC(vdi_set_open_device(set, dn, &devs[i].dev), 0);
    devs[i].idx = i;
    devs[i].count = count;
    devs[i].size = size;
    devs[i].prefix = prefix;
    devs[i].align = cfg.alignment;
    devs[i].restore = restore;
  }
  vdi_device_t *none;
  ASSERT_RC(vdi_set_open_device(set, name, &none), VD_E_OPEN);
  ASSERT_NULL(none);
  for (uint32_t i = 0; i < ndev; i++)
    pthread_create(&th[i], NULL, client_dev_thread, &devs[i]);
  for (uint32_t i = 0; i < ndev; i++) {
    pthread_join(th[i], NULL);
    ASSERT_EQ(devs[i].errors, 0);
    if (!restore) {
      ASSERT_EQ(devs[i].writes, count);
      ASSERT_EQ(devs[i].flushes, 1);
    }
  }
  if (inproc) {
    void *r;
    pthread_join(st, &r);
    ASSERT_EQ((int)(intptr_t)r, 0);
  } else {
    ASSERT_EQ(wait_helper(pid), 0);
  }
  ASSERT_RC(vdi_set_close(set), 0);
  ASSERT_RC(vdi_set_close(set), VD_E_PROTOCOL);
  vdi_set_free(set);
  free(devs);
}

static void run_stream(uint32_t ndev, uint32_t count, uint32_t size,
                       int restore, uint32_t prefix, uint32_t align) {
  run_stream_mode(ndev, count, size, restore, prefix, align, 0);
}

/* The same protocol with both halves as threads of one process, so the
 * thread sanitizer can see every access of both sides. */
TEST_IMPL_TIMEOUT(loop_stream_backup, 30) {
  run_stream_mode(3, 100, 65536, 0, 512, 0, 1);
  return 0;
}
TEST_IMPL_TIMEOUT(loop_stream_restore, 30) {
  run_stream_mode(2, 100, 65536, 1, 0, 0, 1);
  return 0;
}

TEST_IMPL(lib_stream_backup_1dev) {
  run_stream(1, 200, 65536, 0, 0, 0);
  return 0;
}
TEST_IMPL(lib_stream_backup_4dev) {
  run_stream(4, 100, 1 << 20, 0, 0, 0);
  return 0;
}
TEST_IMPL(lib_stream_restore_2dev) {
  run_stream(2, 100, 65536, 1, 0, 0);
  return 0;
}
TEST_IMPL(lib_stream_prefix_align) {
  run_stream(2, 50, 65536, 0, 512, 16384);
  run_stream(1, 50, 65536, 1, 4000, 65536);
  return 0;
}
TEST_IMPL_TIMEOUT(lib_stream_64dev, 30) {
  run_stream(64, 10, 65536, 0, 0, 0);
  return 0;
}
