/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-commands-pass.c - commands pass through between two processes
 * with their fields intact: all 19 command codes (size, inPosition ->
 * position, then completion code, bytesTransferred and position ->
 * outPosition), Read/Write payload in both directions with the prefix zone
 * and alignment, several commands in flight per device completed out of
 * order, and 64 devices each serviced by its own thread.
 */
#include "lib_peer.h"

#define MT 65536u

static uint32_t all_client_features(void) {
  return VDF_LikeTape | VDF_Discard | VDF_SnapshotPrepare |
         VDF_RequestComplete | VDF_EnumFrozenFiles;
}

/* Test = server; the client helper fetches each command, reports what it
 * saw, and completes it with values we chose. */
TEST_IMPL(lib_cmd_all_codes) {
  lp_pair x;
  static lp_slot sl[VDC_Complete + 1];
  uint8_t *b = NULL;
  lp_pair_up(&x, "codes", 1, all_client_features(), 0, 0, 0,
             VDF_WriteMedia | VDF_CompleteEnabled, 4096, MT, 2);
  ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &b, MT, 0), 0);
  for (int code = VDC_Read; code <= VDC_Complete; code++) {
    int rw = code == VDC_Read || code == VDC_Write;
    /* size is the interface's DWORD: SkipMarks' -3 travels as its bits. */
    uint32_t size = rw                      ? 4096u * (uint32_t)code
                    : code == VDC_SkipMarks ? (uint32_t)-3
                                            : (uint32_t)code * 1000u + 7u;
    int64_t pos = code == VDC_SkipBlocks ? -77 : ((int64_t)code << 33) | 12345;
    int32_t bytes = code * 111 + 5;
    int64_t outpos = (code & 1) ? (int64_t)(0xFEDCBA9876543210ull ^ code)
                                : (int64_t)(0x0123456789ABCDEFull ^ code);
    lp_slot *s = &sl[code];
    if (code == VDC_Write) lp_fill(b, (size_t)size, 1000 + code);
    lp_slot_init(s, code, size, pos, rw ? b : NULL);
    ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &s->cmd), 0);
    ASSERT_RC(lp_call(x.cli, "get 0 %d 2000", code), 0);
    ASSERT_EQ(lp_v(x.cli, 0), code);
    ASSERT_EQ(lp_v(x.cli, 1), size);
    ASSERT_EQ(lp_v(x.cli, 2), pos);
    if (code == VDC_Write)
      ASSERT_RC(lp_call(x.cli, "check %d 0 %u %d", code, size, 1000 + code), 0);
    if (code == VDC_Read)
      ASSERT_RC(lp_call(x.cli, "fill %d 0 %u %d", code, size, 2000 + code), 0);
    ASSERT_RC(
        lp_call(x.cli, "comp 0 %d 0 %d %lld", code, bytes, (long long)outpos),
        0);
    ASSERT_EQ(lp_slot_wait(s, 2000), 1);
    ASSERT_EQ(atomic_load(&s->calls), 1);
    ASSERT_EQ(atomic_load(&s->bad_ctx), 0);
    ASSERT_EQ(s->code, 0);
    ASSERT_EQ(s->bytes, bytes);
    ASSERT_EQ(s->outpos, outpos);
    /* The server's input fields are left alone. */
    ASSERT_EQ(s->cmd.commandCode, code);
    ASSERT_EQ(s->cmd.size, size);
    ASSERT_EQ(s->cmd.inPosition, pos);
    ASSERT(s->cmd.buffer == (rw ? b : NULL));
    ASSERT(s->cmd.completionContext == (uint8_t *)s);
    if (code == VDC_Read) ASSERT_EQ(lp_check(b, (size_t)size, 2000 + code), -1);
  }
  ASSERT_RC(vdi_srv_free_buffer(x.s.srv, b, MT), 0);
  lp_pair_down(&x, 0);
  return 0;
}

/* Payload server -> client, with the client's prefix zone and alignment:
 * four buffers in flight; the client writes every prefix zone in full,
 * which must not touch any buffer's data. */
TEST_IMPL(lib_cmd_write_data) {
  lp_pair x;
  static lp_slot sl[4];
  uint8_t *b[4];
  const uint32_t mt = 131072, prefix = 512, align = 8192;
  lp_pair_up(&x, "wdata", 1, VDF_LikeDisk, prefix, align, 0, VDF_WriteMedia,
             4096, mt, 4);
  ASSERT_RC(lp_call(x.cli, "cfg 0"), 0);
  ASSERT_EQ(lp_v(x.cli, 2), prefix);
  ASSERT_EQ(lp_v(x.cli, 3), align);
  ASSERT_EQ(lp_v(x.cli, 9), mt);
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &b[i], mt, 0), 0);
    ASSERT_EQ((uintptr_t)b[i] % align, 0);
    lp_fill(b[i], mt, 10 + i);
    lp_slot_init(&sl[i], VDC_Write, (int)mt, (int64_t)i * mt, b[i]);
    ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &sl[i].cmd), 0);
  }
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(lp_call(x.cli, "get 0 %d 2000", i), 0);
    ASSERT_EQ(lp_v(x.cli, 2), (int64_t)i * mt);
    ASSERT_EQ(lp_v(x.cli, 3) % align, 0);
    ASSERT_RC(lp_call(x.cli, "check %d 0 %u %d", i, mt, 10 + i), 0);
    ASSERT_RC(lp_call(x.cli, "fill %d -%u %u %d", i, prefix, prefix, 50 + i),
              0);
  }
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(lp_call(x.cli, "check %d -%u %u %d", i, prefix, prefix, 50 + i),
              0);
    ASSERT_RC(lp_call(x.cli, "comp 0 %d 0 %u 0", i, mt), 0);
  }
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(lp_slot_wait(&sl[i], 2000), 1);
    ASSERT_EQ(sl[i].bytes, mt);
    ASSERT_EQ(lp_check(b[i], mt, 10 + i), -1);
  }
  lp_pair_down(&x, 0);
  return 0;
}

/* Payload client -> server (Read), and server -> client, with the test
 * process as the client this time. */
TEST_IMPL(lib_cmd_read_data) {
  vdi_set_t *set = NULL;
  vdi_device_t *dev = NULL;
  VDC_Command *cmd = NULL;
  VDConfig cfg;
  const char *nm = unique_name("rdata");
  char name[96];
  snprintf(name, sizeof name, "%s", nm);
  ASSERT_RC(vdi_set_new(&set), 0);
  cfg = lp_cfg(1, VDF_LikeDisk);
  cfg.prefixZoneSize = 256;
  cfg.alignment = 4096;
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  lp_peer *srv = lp_spawn("lp_srv");
  ASSERT_RC(lp_call(srv, "config %s %u 512 0 %u 2", name, VDF_ReadMedia, MT),
            0);
  ASSERT_RC(lp_call(srv, "odevs %s 1", name), 0);
  ASSERT_RC(lp_call(srv, "agent"), 0);
  ASSERT_RC(vdi_set_get_configuration(set, 2000, &cfg), 0);
  ASSERT_EQ(cfg.alignment, 4096);
  ASSERT_EQ(cfg.blockSize, 512);
  ASSERT_EQ(cfg.features, VDF_LikeDisk | VDF_ReadMedia);
  ASSERT_RC(vdi_set_open_device(set, name, &dev), 0);

  ASSERT_RC(lp_call(srv, "alloc 0 %u 0", MT), 0);
  ASSERT_RC(lp_call(srv, "fill 0 0 %u 7", MT), 0);
  ASSERT_RC(lp_call(srv, "send 0 0 %d %u 777 0", VDC_Read, MT), 0);
  ASSERT_RC(vdi_dev_get_command(dev, 2000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Read);
  ASSERT_EQ(cmd->size, MT);
  ASSERT_EQ(cmd->position, 777);
  ASSERT_EQ((uintptr_t)cmd->buffer % 4096, 0);
  lp_fill(cmd->buffer - 256, 256, 3);
  lp_fill(cmd->buffer, MT, 4321);
  ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, MT, 777 + MT), 0);
  ASSERT_EQ(lp_call(srv, "wait 0 2000"), 1);
  ASSERT_EQ(lp_v(srv, 0), 0);
  ASSERT_EQ(lp_v(srv, 1), MT);
  ASSERT_EQ(lp_v(srv, 2), 777 + MT);
  ASSERT_RC(lp_call(srv, "check 0 0 %u 4321", MT), 0);

  ASSERT_RC(lp_call(srv, "fill 0 0 %u 99", MT), 0);
  ASSERT_RC(lp_call(srv, "send 1 0 %d %u 5 0", VDC_Write, MT / 2), 0);
  ASSERT_RC(vdi_dev_get_command(dev, 2000, &cmd), 0);
  ASSERT_EQ(cmd->commandCode, VDC_Write);
  ASSERT_EQ(cmd->size, MT / 2);
  ASSERT_EQ(lp_check(cmd->buffer, MT, 99), -1);
  ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, MT / 2, 0), 0);
  ASSERT_EQ(lp_call(srv, "wait 1 2000"), 1);
  ASSERT_EQ(lp_v(srv, 1), MT / 2);

  ASSERT_RC(lp_call(srv, "cdev 0"), 0);
  ASSERT_RC(vdi_dev_get_command(dev, 2000, &cmd), VD_E_CLOSE);
  ASSERT_RC(lp_call(srv, "join 2000"), 0);
  ASSERT_RC(vdi_set_close(set), 0);
  ASSERT_RC(lp_call(srv, "close"), 0);
  lp_end(srv);
  vdi_set_free(set);
  return 0;
}

/* Four commands fetched before any completes; completed out of order,
 * each completion reaches its own command's routine. */
TEST_IMPL(lib_cmd_inflight) {
  lp_pair x;
  static lp_slot sl[4];
  uint8_t *b[4];
  static const int order[4] = {2, 0, 3, 1};
  lp_pair_up(&x, "infl", 1, VDF_LikePipe, 0, 0, 0, VDF_WriteMedia, 4096, MT, 4);
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &b[i], MT, 0), 0);
    lp_fill(b[i], MT, 500 + i);
    lp_slot_init(&sl[i], VDC_Write, (int)MT - 4096 * i, i, b[i]);
    ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &sl[i].cmd), 0);
  }
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(lp_call(x.cli, "get 0 %d 2000", i), 0);
    ASSERT_EQ(lp_v(x.cli, 1), (int)MT - 4096 * i); /* in order sent */
    ASSERT_EQ(lp_v(x.cli, 2), i);
    ASSERT_RC(lp_call(x.cli, "check %d 0 %u %d", i, MT - 4096 * i, 500 + i), 0);
  }
  ASSERT_RC(lp_call(x.cli, "get 0 9 0"), VD_E_TIMEOUT);
  for (int k = 0; k < 4; k++) {
    int i = order[k];
    ASSERT_RC(lp_call(x.cli, "comp 0 %d 0 %d %d", i, 1000 + i, 70 + i), 0);
    ASSERT_EQ(lp_slot_wait(&sl[i], 2000), 1);
    ASSERT_EQ(sl[i].bytes, 1000 + i);
    ASSERT_EQ(sl[i].outpos, 70 + i);
    for (int j = k + 1; j < 4; j++)
      ASSERT_EQ(atomic_load(&sl[order[j]].calls), 0);
  }
  lp_pair_down(&x, 0);
  return 0;
}

/* --------------------------------------------------------- 64 devices */

#define NDEV   64
#define ROUNDS 6

struct devjob {
  lp_pair *x;
  int d;
  int fail; /* line of the first failed check */
  lp_slot sl[2];
};

#define JOB_CHECK(j, cond)                                                     \
  do {                                                                         \
    if (!(cond) && !(j)->fail) (j)->fail = __LINE__;                           \
  } while (0)

/* One server thread per device: each round a Write (the client checks the
 * pattern seeded by its position) and a Read (the client fills it), both
 * in flight at once. */
static void *devjob_main(void *arg) {
  struct devjob *j = arg;
  uint8_t *w = NULL, *r = NULL;
  vdi_srvset_t *srv = j->x->s.srv;
  JOB_CHECK(j, vdi_srv_allocate_buffer(srv, &w, MT, 0) == 0);
  JOB_CHECK(j, vdi_srv_allocate_buffer(srv, &r, MT, 0) == 0);
  if (j->fail) return NULL;
  for (int k = 0; k < ROUNDS; k++) {
    int32_t size = 4096 * (1 + (j->d + k) % 16);
    int64_t wpos = (int64_t)j->d * 1000000 + k * 2;
    int64_t rpos = wpos + 1;
    lp_fill(w, (size_t)size, (uint32_t)wpos);
    memset(r, 0, (size_t)size);
    lp_slot_init(&j->sl[0], VDC_Write, size, wpos, w);
    lp_slot_init(&j->sl[1], VDC_Read, size, rpos, r);
    JOB_CHECK(j,
              vdi_srvdev_send_command(j->x->s.dev[j->d], &j->sl[0].cmd) == 0);
    JOB_CHECK(j,
              vdi_srvdev_send_command(j->x->s.dev[j->d], &j->sl[1].cmd) == 0);
    for (int i = 0; i < 2; i++) {
      lp_slot *s = &j->sl[i];
      JOB_CHECK(j, lp_slot_wait(s, 4000) == 1);
      JOB_CHECK(j, s->code == 0);
      JOB_CHECK(j, s->bytes == size);
      JOB_CHECK(j, (uint64_t)s->outpos == s->cmd.inPosition + size + 1);
    }
    JOB_CHECK(j, lp_check(r, (size_t)size, (uint32_t)rpos) == -1);
    if (j->fail) break;
  }
  vdi_srv_free_buffer(srv, w, MT);
  vdi_srv_free_buffer(srv, r, MT);
  return NULL;
}

TEST_IMPL_TIMEOUT(lib_cmd_64_devices, 20) {
  lp_pair x;
  static struct devjob jobs[NDEV];
  pthread_t t[NDEV];
  lp_pair_up(&x, "d64", NDEV, VDF_LikePipe, 0, 0, 0, VDF_WriteMedia, 4096, MT,
             2 * NDEV);
  ASSERT_RC(lp_call(x.cli, "serve"), 0);
  for (int d = 0; d < NDEV; d++) {
    jobs[d].x = &x;
    jobs[d].d = d;
    ASSERT_EQ(pthread_create(&t[d], NULL, devjob_main, &jobs[d]), 0);
  }
  for (int d = 0; d < NDEV; d++) {
    pthread_join(t[d], NULL);
    if (jobs[d].fail)
      TASK_FAIL_("device %d: check at line %d failed", d, jobs[d].fail);
  }
  ASSERT_EQ(lp_pair_down(&x, 1), NDEV * ROUNDS * 2);
  return 0;
}
