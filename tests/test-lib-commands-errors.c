/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-commands-errors.c - command-level errors between two processes:
 * non-zero completion codes reach the server unchanged, the IO-ERROR /
 * ClearError protocol (spec 2.4.4), SendCommand failures calling the
 * completion routine at once with the mapped code (spec 2.3.10: QUEUE_FULL,
 * IO_ERROR, PROTOCOL, ABORT, and our VD_E_INVALID -> 87), and serverTimeOut.
 * The test process is the server; the lp_cli helper is the client.
 */
#include "lib_peer.h"

#define MT 65536u

/* A send that must fail: rc, and the routine ran once, in this thread,
 * before the send returned, with the mapped code. */
#define send_fails(dev, s, rc, code) send_fails_(dev, s, rc, code, __LINE__)
static void send_fails_(vdi_srvdev_t *dev, lp_slot *s, int rc, int code,
                        int line) {
  int got = vdi_srvdev_send_command(dev, &s->cmd);
  if (got != rc)
    TASK_FAIL_("line %d: send(code %d, size %d) returned %s, expected %s", line,
               s->cmd.commandCode, s->cmd.size, task_code_name(got),
               task_code_name(rc));
  ASSERT_EQ(atomic_load(&s->calls), 1);
  ASSERT(pthread_equal(s->thread, pthread_self()));
  ASSERT_EQ(s->code, code);
  ASSERT_EQ(atomic_load(&s->bad_ctx), 0);
}

/* Every non-zero completion code arrives as is; each puts the device in
 * IO-ERROR, which a ClearError completed with 0 ends. */
TEST_IMPL(lib_cmd_completion_codes) {
  lp_pair x;
  static lp_slot sl[2];
  static const uint32_t codes[] = {
      ERROR_HANDLE_EOF,
      ERROR_END_OF_MEDIA,
      ERROR_FILEMARK_DETECTED,
      ERROR_NOT_SUPPORTED,
      ERROR_DISK_FULL,
      ERROR_IO_DEVICE,
      ERROR_OPERATION_ABORTED,
      12345,
      0x7FFFFFF0u,
  };
  uint8_t *b = NULL;
  lp_pair_up(&x, "ccodes", 1, VDF_LikePipe, 0, 0, 0, VDF_ReadMedia, 4096, MT,
             2);
  ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &b, MT, 0), 0);
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    lp_slot_init(&sl[0], VDC_Read, (int)MT, 0, b);
    ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &sl[0].cmd), 0);
    ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), 0);
    ASSERT_RC(lp_call(x.cli, "comp 0 0 %u %u 0", codes[i], 100 + (int)i), 0);
    ASSERT_EQ(lp_slot_wait(&sl[0], 2000), 1);
    ASSERT_UEQ((uint32_t)sl[0].code, codes[i]);
    ASSERT_EQ(sl[0].bytes, 100 + (int)i);
    lp_slot_init(&sl[1], VDC_ClearError, 0, 0, NULL);
    ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &sl[1].cmd), 0);
    ASSERT_RC(lp_call(x.cli, "get 0 1 2000"), 0);
    ASSERT_EQ(lp_v(x.cli, 0), VDC_ClearError);
    ASSERT_RC(lp_call(x.cli, "comp 0 1 0 0 0"), 0);
    ASSERT_EQ(lp_slot_wait(&sl[1], 2000), 1);
    ASSERT_EQ(sl[1].code, 0);
  }
  lp_pair_down(&x, 0);
  return 0;
}

/* Spec 2.4.4 step by step. */
TEST_IMPL(lib_cmd_ioerror) {
  lp_pair x;
  static lp_slot sl[10];
  uint8_t *b[4];
  lp_pair_up(&x, "ioerr", 1, VDF_LikePipe, 0, 0, 0, VDF_WriteMedia, 4096, MT,
             4);
  vdi_srvdev_t *dev = x.s.dev[0];
  for (int i = 0; i < 4; i++) {
    ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &b[i], MT, 0), 0);
    lp_slot_init(&sl[i], VDC_Write, (int)MT, i, b[i]);
    ASSERT_RC(vdi_srvdev_send_command(dev, &sl[i].cmd), 0);
  }
  /* The client fetches A and B; C and D stay queued. */
  ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), 0);
  ASSERT_RC(lp_call(x.cli, "get 0 1 2000"), 0);
  ASSERT_EQ(lp_v(x.cli, 2), 1);
  /* A fails: the device enters IO-ERROR. */
  ASSERT_RC(lp_call(x.cli, "comp 0 0 %u 0 0", ERROR_END_OF_MEDIA), 0);
  ASSERT_EQ(lp_slot_wait(&sl[0], 2000), 1);
  ASSERT_EQ(sl[0].code, ERROR_END_OF_MEDIA);
  /* C and D, queued but not fetched, are completed by the client library
   * with ERROR_IO_DEVICE at once, before the client asks for a command,
   * and the client never sees them. */
  for (int i = 2; i < 4; i++) {
    ASSERT_EQ(lp_slot_wait(&sl[i], 2000), 1);
    ASSERT_EQ(sl[i].code, ERROR_IO_DEVICE);
    ASSERT_EQ(sl[i].bytes, 0);
  }
  ASSERT_EQ(atomic_load(&sl[1].calls), 0); /* B is still the client's */
  /* New sends other than ClearError are refused at once. */
  lp_slot_init(&sl[4], VDC_Write, (int)MT, 4, b[2]);
  send_fails(dev, &sl[4], VD_E_IO_ERROR, ERROR_IO_DEVICE);
  lp_slot_init(&sl[5], VDC_Flush, 0, 0, NULL);
  send_fails(dev, &sl[5], VD_E_IO_ERROR, ERROR_IO_DEVICE);
  lp_slot_init(&sl[6], VDC_ClearError, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(dev, &sl[6].cmd), 0);
  /* ClearError waits until B, outstanding at the error, is completed. */
  ASSERT_RC(lp_call(x.cli, "get 0 6 50"), VD_E_TIMEOUT);
  ASSERT_EQ(atomic_load(&sl[1].calls), 0);
  ASSERT_RC(lp_call(x.cli, "comp 0 1 0 %u 0", MT), 0);
  ASSERT_EQ(lp_slot_wait(&sl[1], 2000), 1);
  ASSERT_EQ(sl[1].code, 0);
  ASSERT_RC(lp_call(x.cli, "get 0 6 2000"), 0);
  ASSERT_EQ(lp_v(x.cli, 0), VDC_ClearError);
  /* Until ClearError completes, the device is still in IO-ERROR. */
  lp_slot_init(&sl[7], VDC_Flush, 0, 0, NULL);
  send_fails(dev, &sl[7], VD_E_IO_ERROR, ERROR_IO_DEVICE);
  ASSERT_RC(lp_call(x.cli, "comp 0 6 0 0 0"), 0);
  ASSERT_EQ(lp_slot_wait(&sl[6], 2000), 1);
  ASSERT_EQ(sl[6].code, 0);
  /* Usable again: a Write goes through. */
  lp_fill(b[2], MT, 31);
  lp_slot_init(&sl[8], VDC_Write, (int)MT, 8, b[2]);
  ASSERT_RC(vdi_srvdev_send_command(dev, &sl[8].cmd), 0);
  ASSERT_RC(lp_call(x.cli, "get 0 8 2000"), 0);
  ASSERT_EQ(lp_v(x.cli, 0), VDC_Write);
  ASSERT_EQ(lp_v(x.cli, 2), 8);
  ASSERT_RC(lp_call(x.cli, "check 8 0 %u 31", MT), 0);
  ASSERT_RC(lp_call(x.cli, "comp 0 8 0 %u 0", MT), 0);
  ASSERT_EQ(lp_slot_wait(&sl[8], 2000), 1);
  ASSERT_EQ(sl[8].code, 0);
  ASSERT_RC(lp_call(x.cli, "get 0 9 0"), VD_E_TIMEOUT);
  lp_pair_down(&x, 0);
  return 0;
}

/* A ClearError completed with an error leaves the device in IO-ERROR; the
 * server may instead close the device, and the client sees VD_E_CLOSE. */
TEST_IMPL(lib_cmd_ioerror_clear_fails) {
  lp_pair x;
  static lp_slot sl[6];
  lp_pair_up(&x, "ioerc", 2, VDF_LikePipe, 0, 0, 0, VDF_WriteMedia, 4096, MT,
             2);
  vdi_srvdev_t *dev = x.s.dev[0];
  lp_slot_init(&sl[0], VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(dev, &sl[0].cmd), 0);
  ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), 0);
  ASSERT_RC(lp_call(x.cli, "comp 0 0 %u 0 0", ERROR_IO_DEVICE), 0);
  ASSERT_EQ(lp_slot_wait(&sl[0], 2000), 1);
  /* IO-ERROR is per device: device 1 still works. */
  lp_slot_init(&sl[1], VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(x.s.dev[1], &sl[1].cmd), 0);
  ASSERT_RC(lp_call(x.cli, "get 1 1 2000"), 0);
  ASSERT_RC(lp_call(x.cli, "comp 1 1 0 0 0"), 0);
  ASSERT_EQ(lp_slot_wait(&sl[1], 2000), 1);
  ASSERT_EQ(sl[1].code, 0);
  /* ClearError fails. */
  lp_slot_init(&sl[2], VDC_ClearError, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(dev, &sl[2].cmd), 0);
  ASSERT_RC(lp_call(x.cli, "get 0 2 2000"), 0);
  ASSERT_RC(lp_call(x.cli, "comp 0 2 %u 0 0", ERROR_NO_MEDIA_IN_DRIVE), 0);
  ASSERT_EQ(lp_slot_wait(&sl[2], 2000), 1);
  ASSERT_EQ(sl[2].code, ERROR_NO_MEDIA_IN_DRIVE);
  lp_slot_init(&sl[3], VDC_Flush, 0, 0, NULL);
  send_fails(dev, &sl[3], VD_E_IO_ERROR, ERROR_IO_DEVICE);
  /* The server gives up on the device instead. */
  lp_pair_down(&x, 0);
  return 0;
}

/* VD_E_INVALID refusals: nothing reaches the client, the routine gets
 * ERROR_INVALID_PARAMETER, and the device stays usable. */
TEST_IMPL(lib_cmd_send_invalid) {
  lp_pair x;
  static lp_slot sl[16];
  static uint8_t priv[2 * MT] __attribute__((aligned(65536)));
  uint8_t *b = NULL, *freed = NULL;
  const uint32_t mt = 2 * MT;
  memset(&x, 0, sizeof x);
  snprintf(x.name, sizeof x.name, "%s", unique_name("sinv"));
  x.cli = lp_spawn("lp_cli");
  ASSERT_RC(lp_call(x.cli, "create %s 1 0 0 0 0", x.name), 0);
  ASSERT_RC(vdi_srv_new(&x.s.srv), 0);
  VDConfig cfg;
  ASSERT_RC(vdi_srv_open(x.s.srv, NULL, x.name), 0);
  ASSERT_RC(vdi_srv_get_configuration(x.s.srv, &cfg), 0);
  ASSERT_RC(
      vdi_srv_begin_configuration(x.s.srv, VDF_WriteMedia, 4096, 0, mt, 1000),
      0);
  /* Buffers of half the maximum transfer size. */
  ASSERT_RC(vdi_srv_request_buffers(x.s.srv, MT, 0, 3), 0);
  ASSERT_RC(vdi_srv_end_configuration(x.s.srv), 0);
  lp_srv_open_devs(&x.s, x.name, 1);
  lp_srv_agent_start(&x.s);
  ASSERT_RC(lp_call(x.cli, "cfg 2000"), 0);
  ASSERT_RC(lp_call(x.cli, "odev 0 %s", x.name), 0);
  vdi_srvdev_t *dev = x.s.dev[0];
  ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &b, MT, 0), 0);
  ASSERT_RC(vdi_srv_allocate_buffer(x.s.srv, &freed, MT, 0), 0);
  ASSERT_RC(vdi_srv_free_buffer(x.s.srv, freed, MT), 0);
  const int E = ERROR_INVALID_PARAMETER;
  int n = 0;
  lp_slot_init(&sl[n], 0, 0, 0, NULL);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Complete + 1, 0, 0, NULL);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], -1, 0, 0, NULL);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Write, 4096, 0, NULL);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Read, 4096, 0, priv);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Write, 0, 0, b);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Write, -4096, 0, b);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Write, (int)(mt + 4096), 0, b);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  /* within maxTransferSize but larger than this buffer */
  lp_slot_init(&sl[n], VDC_Write, (int)mt, 0, b);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  lp_slot_init(&sl[n], VDC_Read, 4096, 0, freed);
  send_fails(dev, &sl[n++], VD_E_INVALID, E);
  /* The device is not in IO-ERROR: a good Write goes through and is the
   * first thing the client sees. */
  lp_fill(b, MT, 8);
  lp_slot_init(&sl[n], VDC_Write, (int)MT, 0, b);
  ASSERT_RC(vdi_srvdev_send_command(dev, &sl[n].cmd), 0);
  ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), 0);
  ASSERT_EQ(lp_v(x.cli, 0), VDC_Write);
  ASSERT_EQ(lp_v(x.cli, 1), MT);
  ASSERT_RC(lp_call(x.cli, "check 0 0 %u 8", MT), 0);
  ASSERT_RC(lp_call(x.cli, "comp 0 0 0 %u 0", MT), 0);
  ASSERT_EQ(lp_slot_wait(&sl[n], 2000), 1);
  ASSERT_EQ(sl[n].code, 0);
  ASSERT_RC(lp_call(x.cli, "get 0 1 0"), VD_E_TIMEOUT);
  lp_pair_down(&x, 0);
  return 0;
}

/* 256 commands in flight per device; the 257th is refused with
 * VD_E_QUEUE_FULL / ERROR_NO_SYSTEM_RESOURCES until one completes. */
TEST_IMPL(lib_cmd_queue_full) {
  lp_pair x;
  static lp_slot sl[260];
  lp_pair_up(&x, "qfull", 1, VDF_LikePipe, 0, 0, 0, VDF_WriteMedia, 4096, MT,
             1);
  vdi_srvdev_t *dev = x.s.dev[0];
  for (int i = 0; i < 256; i++) {
    lp_slot_init(&sl[i], VDC_Flush, 0, i, NULL);
    ASSERT_RC(vdi_srvdev_send_command(dev, &sl[i].cmd), 0);
  }
  lp_slot_init(&sl[256], VDC_Flush, 0, 256, NULL);
  send_fails(dev, &sl[256], VD_E_QUEUE_FULL, ERROR_NO_SYSTEM_RESOURCES);
  /* Fetched but not completed still counts as in flight. */
  ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), 0);
  ASSERT_EQ(lp_v(x.cli, 2), 0);
  lp_slot_init(&sl[257], VDC_Flush, 0, 257, NULL);
  send_fails(dev, &sl[257], VD_E_QUEUE_FULL, ERROR_NO_SYSTEM_RESOURCES);
  ASSERT_RC(lp_call(x.cli, "comp 0 0 0 0 0"), 0);
  ASSERT_EQ(lp_slot_wait(&sl[0], 2000), 1);
  lp_slot_init(&sl[258], VDC_Flush, 0, 258, NULL);
  ASSERT_RC(vdi_srvdev_send_command(dev, &sl[258].cmd), 0);
  lp_slot_init(&sl[259], VDC_Flush, 0, 259, NULL);
  send_fails(dev, &sl[259], VD_E_QUEUE_FULL, ERROR_NO_SYSTEM_RESOURCES);
  /* The client drains everything, in order. */
  ASSERT_RC(lp_call(x.cli, "get 0 1 2000"), 0);
  ASSERT_EQ(lp_v(x.cli, 2), 1);
  ASSERT_RC(lp_call(x.cli, "comp 0 1 0 0 0"), 0);
  ASSERT_RC(lp_call(x.cli, "serve"), 0);
  for (int i = 1; i < 256; i++) {
    ASSERT_EQ(lp_slot_wait(&sl[i], 3000), 1);
    ASSERT_EQ(sl[i].code, 0);
  }
  ASSERT_EQ(lp_slot_wait(&sl[258], 3000), 1);
  ASSERT_EQ(sl[258].code, 0);
  ASSERT_EQ(lp_pair_down(&x, 1), 255);
  return 0;
}

/* Sends to a closed device and after an abort. */
TEST_IMPL(lib_cmd_send_closed_abort) {
  lp_pair x;
  static lp_slot sl[4];
  lp_pair_up(&x, "scab", 2, VDF_LikePipe, 0, 0, 0, VDF_WriteMedia, 4096, MT, 2);
  ASSERT_RC(vdi_srvdev_close_device(x.s.dev[0]), 0);
  lp_slot_init(&sl[0], VDC_Flush, 0, 0, NULL);
  send_fails(x.s.dev[0], &sl[0], VD_E_PROTOCOL, ERROR_INVALID_HANDLE);
  lp_slot_init(&sl[1], VDC_ClearError, 0, 0, NULL);
  send_fails(x.s.dev[0], &sl[1], VD_E_PROTOCOL, ERROR_INVALID_HANDLE);
  ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), VD_E_CLOSE);
  ASSERT_RC(lp_call(x.cli, "abort"), 0);
  ASSERT_RC(lp_srv_agent_join(&x.s, 2000), VD_E_ABORT);
  lp_slot_init(&sl[2], VDC_Flush, 0, 0, NULL);
  send_fails(x.s.dev[1], &sl[2], VD_E_ABORT, ERROR_OPERATION_ABORTED);
  lp_slot_init(&sl[3], VDC_ClearError, 0, 0, NULL);
  send_fails(x.s.dev[1], &sl[3], VD_E_ABORT, ERROR_OPERATION_ABORTED);
  ASSERT_RC(vdi_srv_close(x.s.srv), 0);
  ASSERT_RC(lp_call(x.cli, "close"), 0);
  lp_end(x.cli);
  vdi_srv_free(x.s.srv);
  return 0;
}

/* serverTimeOut = 200 ms and a client that never completes: the agent
 * aborts after more than two intervals. */
TEST_IMPL(lib_cmd_server_timeout) {
  lp_pair x;
  static lp_slot sl;
  lp_pair_up(&x, "sto", 1, VDF_LikePipe, 0, 0, 200, VDF_WriteMedia, 4096, MT,
             1);
  int64_t t0 = now_ms();
  lp_slot_init(&sl, VDC_Flush, 0, 0, NULL);
  ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &sl.cmd), 0);
  ASSERT_RC(lp_call(x.cli, "get 0 0 2000"), 0);
  ASSERT_EQ(lp_slot_wait(&sl, 3000), 1);
  int64_t waited = now_ms() - t0;
  ASSERT_GE(waited, 400);
  ASSERT_LT(waited, 2000);
  ASSERT_EQ(sl.code, ERROR_OPERATION_ABORTED);
  ASSERT_RC(lp_srv_agent_join(&x.s, 2000), VD_E_ABORT);
  ASSERT_RC(lp_call(x.cli, "get 0 1 2000"), VD_E_ABORT);
  ASSERT_RC(lp_call(x.cli, "comp 0 0 0 0 0"), VD_E_ABORT);
  ASSERT_RC(vdi_srv_close(x.s.srv), 0);
  ASSERT_RC(lp_call(x.cli, "close"), 0);
  lp_end(x.cli);
  vdi_srv_free(x.s.srv);
  return 0;
}

/* serverTimeOut = 200 ms and a client that answers every 120 ms: the
 * timer restarts with each completion, so no abort. */
TEST_IMPL(lib_cmd_server_timeout_kept) {
  lp_pair x;
  static lp_slot sl[6];
  lp_pair_up(&x, "stok", 1, VDF_LikePipe, 0, 0, 200, VDF_WriteMedia, 4096, MT,
             1);
  for (int i = 0; i < 6; i++) {
    lp_slot_init(&sl[i], VDC_Flush, 0, i, NULL);
    ASSERT_RC(vdi_srvdev_send_command(x.s.dev[0], &sl[i].cmd), 0);
  }
  for (int i = 0; i < 6; i++) {
    ASSERT_RC(lp_call(x.cli, "get 0 %d 2000", i), 0);
    sleep_ms(120);
    ASSERT_RC(lp_call(x.cli, "comp 0 %d 0 0 0", i), 0);
    ASSERT_EQ(lp_slot_wait(&sl[i], 2000), 1);
    ASSERT_EQ(sl[i].code, 0);
  }
  ASSERT_RC(lp_srv_agent_join(&x.s, 0), LP_RUNNING);
  lp_pair_down(&x, 0);
  return 0;
}
