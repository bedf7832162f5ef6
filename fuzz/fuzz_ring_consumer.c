/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ring_consumer.c - the command and completion rings as a peer leaves
 * them (STYLE.md 2.9, target 2).  Two parts, chosen by the first parameter:
 *
 * Rings alone (src/ring.c): a device block of our own with arbitrary
 * indices and entries, consumed with vdi__cmd_pop / vdi__cpl_pop and fed
 * with vdi__cmd_push / vdi__cpl_push while the "peer" moves its index
 * between calls.  Each call must give exactly what a model of the ring
 * predicts: VD_E_PROTOCOL when the peer's index is more than a ring away,
 * else the entries at our index, in order, and never a slot outside the
 * ring.
 *
 * Through the API: a real set in this process, one device, the agent
 * running and a few real commands in flight; then the input writes
 * command entries and a command tail as a hostile server would, and
 * completion entries and a completion tail as a hostile client would.
 * The client's GetCommand must return valid commands (known code, buffer
 * inside a buffer segment) until it returns VD_E_PROTOCOL, VD_E_ABORT or
 * nothing; the agent must accept only completions of commands in flight
 * (each routine runs exactly once) or abort the set.
 */
#include "fuzz_helpers.h"

#include "client_int.h"
#include "server_int.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXCMD   8
#define BUF_SIZE 65536u

/* ------------------------------------------------------------ rings alone */

static uint32_t rd32(fz_producer *p) {
  return fzp_range(p, 0, UINT32_MAX);
}

static void rings_alone(fz_producer *fp) {
  uint32_t entries = 1u << fzp_range(fp, 0, 8);
  size_t bytes = VDI_SHM_DEV_STRIDE(entries);
  struct vdi_shm_dev *d = aligned_alloc(64, (bytes + 63) / 64 * 64);
  memset(d, 0, bytes);
  struct vdi_ring_side rs = {rd32(fp), rd32(fp)};
  atomic_store(&d->cmd_tail, rd32(fp));
  atomic_store(&d->cmd_head, rd32(fp));
  atomic_store(&d->cpl_tail, rd32(fp));
  atomic_store(&d->cpl_head, rd32(fp));
  size_t n;
  const uint8_t *e = fzp_take(fp, entries * 64u, &n);
  memcpy((uint8_t *)d + sizeof *d, e, n);
  struct vdi_shm_cmd *cmds = vdi_shm_dev_cmds(d);
  struct vdi_shm_cpl *cpls = vdi_shm_dev_cpls(d, entries);

  for (int step = 0; step < 3 * (int)entries + 8 && fzp_left(fp); step++) {
    uint8_t op = fzp_take(fp, 1, &n)[0];
    uint32_t v = 0;
    const uint8_t *a = fzp_take(fp, 4, &n);
    memcpy(&v, a, n);
    switch (op % 6) {
    case 0: /* the peer (server) moves the command tail */
      atomic_store(&d->cmd_tail, op & 8 ? rs.cmd_idx + v % (2 * entries) : v);
      break;
    case 1: { /* the client pops a command */
      uint32_t tail = atomic_load(&d->cmd_tail), idx = rs.cmd_idx;
      struct vdi_shm_cmd want = cmds[idx & (entries - 1)], got;
      int r = vdi__cmd_pop(d, entries, &rs, &got);
      if (tail - idx > entries) {
        FZ_CHECK(r == VD_E_PROTOCOL && rs.cmd_idx == idx);
      } else if (tail == idx) {
        FZ_CHECK(r == 0 && rs.cmd_idx == idx);
      } else {
        FZ_CHECK(r == 1 && rs.cmd_idx == idx + 1);
        FZ_CHECK(memcmp(&want, &got, sizeof got) == 0);
        FZ_CHECK(atomic_load(&d->cmd_head) == idx + 1);
      }
      break;
    }
    case 2: { /* the server pushes a command against a hostile head */
      uint32_t head = atomic_load(&d->cmd_head), idx = rs.cmd_idx;
      struct vdi_shm_cmd c = {v, (int32_t)v, v, v, v, v};
      int r = vdi__cmd_push(d, entries, &rs, &c);
      if (idx - head > entries) {
        FZ_CHECK(r == VD_E_PROTOCOL && rs.cmd_idx == idx);
      } else if (idx - head == entries) {
        FZ_CHECK(r == 0 && rs.cmd_idx == idx);
      } else {
        FZ_CHECK(r == 1 && rs.cmd_idx == idx + 1);
        FZ_CHECK(memcmp(&cmds[idx & (entries - 1)], &c, sizeof c) == 0);
        FZ_CHECK(atomic_load(&d->cmd_tail) == idx + 1);
      }
      break;
    }
    case 3: /* the peer (client) moves the completion tail or head */
      if (op & 8)
        atomic_store(&d->cpl_tail,
                     op & 16 ? rs.cpl_idx + v % (2 * entries) : v);
      else
        atomic_store(&d->cpl_head, v);
      break;
    case 4: { /* the server's agent pops a completion */
      uint32_t tail = atomic_load(&d->cpl_tail), idx = rs.cpl_idx;
      struct vdi_shm_cpl want = cpls[idx & (entries - 1)], got;
      int r = vdi__cpl_pop(d, entries, &rs, &got);
      if (tail - idx > entries) {
        FZ_CHECK(r == VD_E_PROTOCOL && rs.cpl_idx == idx);
      } else if (tail == idx) {
        FZ_CHECK(r == 0 && rs.cpl_idx == idx);
      } else {
        FZ_CHECK(r == 1 && rs.cpl_idx == idx + 1);
        FZ_CHECK(memcmp(&want, &got, sizeof got) == 0);
        FZ_CHECK(atomic_load(&d->cpl_head) == idx + 1);
      }
      break;
    }
    case 5: { /* the client pushes a completion against a hostile head */
      uint32_t head = atomic_load(&d->cpl_head), idx = rs.cpl_idx;
      struct vdi_shm_cpl c = {v, v, v, 0, v, 0};
      int r = vdi__cpl_push(d, entries, &rs, &c);
      if (idx - head > entries)
        FZ_CHECK(r == VD_E_PROTOCOL && rs.cpl_idx == idx);
      else if (idx - head == entries)
        FZ_CHECK(r == 0 && rs.cpl_idx == idx);
      else
        FZ_CHECK(r == 1 && rs.cpl_idx == idx + 1 &&
                 memcmp(&cpls[idx & (entries - 1)], &c, sizeof c) == 0);
      break;
    }
    }
  }
  free(d);
}

/* ------------------------------------------------------- through the API */

struct fcmd {
  VDS_Command cmd;
  _Atomic int pending;
  _Atomic int *ran;
};

static void routine(VDS_Command *cmd) {
  struct fcmd *f = (struct fcmd *)(void *)cmd;
  FZ_CHECK(atomic_exchange(&f->pending, 0) == 1); /* once, and in flight */
  atomic_fetch_add(f->ran, 1);
}

static void *agent_main(void *arg) {
  return (void *)(intptr_t)vdi_srv_execute_completion_agent(arg);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void through_api(fz_producer *fp) {
  char name[64];
  fz_set_name(name, sizeof name);
  int fds0 = fz_fd_count(), threads0 = fz_thread_count();
  uint32_t nreal = fzp_range(fp, 0, MAXCMD);
  uint32_t ncmd = fzp_range(fp, 0, 300); /* forged commands published */
  uint32_t ncpl = fzp_range(fp, 0, 300); /* forged completions published */
  uint32_t gets = fzp_range(fp, 0, 300); /* GetCommand calls */
  int disk = fzp_u8(fp) & 1;

  vdi_set_t *cli;
  vdi_srvset_t *srv;
  vdi_srvdev_t *sdev;
  vdi_device_t *cdev;
  VDConfig cfg = {0};
  cfg.deviceCount = 1;
  cfg.features = disk ? VDF_LikeDisk : VDF_LikePipe;
  FZ_CHECK(vdi_set_new(&cli) == 0 && vdi_srv_new(&srv) == 0);
  FZ_CHECK(vdi_set_create(cli, name, &cfg) == 0);
  FZ_CHECK(vdi_srv_open(srv, NULL, name) == 0);
  FZ_CHECK(vdi_srv_begin_configuration(srv, VDF_WriteMedia, 4096, 0, BUF_SIZE,
                                       0) == 0);
  FZ_CHECK(vdi_srv_request_buffers(srv, BUF_SIZE, 0, 2) == 0);
  FZ_CHECK(vdi_srv_end_configuration(srv) == 0);
  FZ_CHECK(vdi_set_get_configuration(cli, 1000, &cfg) == 0);
  FZ_CHECK(vdi_srv_open_device(srv, name, &sdev) == 0);
  FZ_CHECK(vdi_set_open_device(cli, name, &cdev) == 0);
  uint8_t *buf;
  FZ_CHECK(vdi_srv_allocate_buffer(srv, &buf, BUF_SIZE, 0) == 0);
  pthread_t agent;
  FZ_CHECK(pthread_create(&agent, NULL, agent_main, srv) == 0);

  /* Real commands in flight, so that forged completions may name them. */
  static struct fcmd pool[MAXCMD];
  _Atomic int ran = 0;
  int sent = 0;
  for (uint32_t i = 0; i < nreal; i++) {
    struct fcmd *f = &pool[i];
    memset(&f->cmd, 0, sizeof f->cmd);
    f->cmd.commandCode = i % 3 == 2 ? VDC_Flush : VDC_Write;
    f->cmd.size = 4096;
    f->cmd.buffer = buf;
    f->ran = &ran;
    VDS_SET_COMPLETION(&f->cmd, routine);
    atomic_store(&f->pending, 1);
    sent++;
    int rc = vdi_srvdev_send_command(sdev, &f->cmd);
    FZ_CHECK(rc == 0);
  }

  /* The hostile writes, straight into the device block. */
  struct vdi_shm_dev *sd = cli->devs[0].sd;
  uint32_t entries = cli->c.geom.ring_entries;
  uint32_t head = cli->devs[0].rs.cmd_idx;
  size_t n;
  const uint8_t *e = fzp_take(fp, (size_t)ncmd * 32u, &n);
  for (size_t i = 0; i < n / 32; i++)
    memcpy(&vdi_shm_dev_cmds(sd)[(head + nreal + i) & (entries - 1)],
           e + 32 * i, 32);
  if (ncmd) atomic_store(&sd->cmd_tail, head + nreal + ncmd);
  uint32_t ctail = atomic_load(&sd->cpl_tail);
  e = fzp_take(fp, (size_t)ncpl * 32u, &n);
  for (size_t i = 0; i < n / 32; i++)
    memcpy(&vdi_shm_dev_cpls(sd, entries)[(ctail + i) & (entries - 1)],
           e + 32 * i, 32);
  /* What is left moves the client's view of our indices too. */
  if (fzp_left(fp) >= 4) {
    uint32_t v;
    memcpy(&v, fzp_take(fp, 4, &n), 4);
    atomic_store(&sd->cmd_head, v);
  }

  int poisoned = 0;
  /* `gets` calls, then on until the ring gives nothing more, so that real
   * commands are completed whenever the forged ones allow it. */
  for (uint32_t i = 0; i < gets + 2 * entries; i++) {
    VDC_Command *c = NULL;
    int rc = vdi_dev_get_command(cdev, 0, &c);
    if (rc != 0 && i >= gets) break;
    FZ_CHECK(fz_legal_code(rc));
    if (poisoned) FZ_CHECK(rc == VD_E_ABORT || rc == VD_E_PROTOCOL);
    if (rc == VD_E_ABORT || rc == VD_E_PROTOCOL) poisoned = 1;
    if (rc) continue;
    FZ_CHECK(c->commandCode >= VDC_Read && c->commandCode <= VDC_Complete);
    if (c->commandCode == VDC_Read || c->commandCode == VDC_Write) {
      FZ_CHECK(c->size > 0 && (uint32_t)c->size <= BUF_SIZE);
      FZ_CHECK(fz_in_mapping(c->buffer, (size_t)c->size, "memfd:vdi-buffers"));
      memset(c->buffer, 0x5A, (size_t)c->size);
    }
    rc = vdi_dev_complete_command(cdev, c, ERROR_SUCCESS,
                                  c->commandCode == VDC_Read ||
                                          c->commandCode == VDC_Write
                                      ? (uint32_t)c->size
                                      : 0,
                                  0);
    FZ_CHECK(rc == 0 || rc == VD_E_ABORT || rc == VD_E_PROTOCOL);
  }
  /* Forged completions last: the agent drains them with the real ones. */
  if (ncpl) {
    atomic_store(&sd->cpl_tail, ctail + ncpl);
    vdi__wake_all(&cli->c.hdr->agent_seq);
  }

  int rc = vdi_srvdev_close_device(sdev);
  FZ_CHECK(rc == 0 || rc == VD_E_ABORT || rc == VD_E_PROTOCOL);
  int64_t end = now_ms() + 20;
  while (atomic_load(&ran) < sent && now_ms() < end)
    usleep(100);
  if (atomic_load(&ran) < sent) vdi_srv_signal_abort(srv); /* lost ones */
  void *res;
  pthread_join(agent, &res);
  rc = (int)(intptr_t)res;
  if (getenv("FZ_TRACE")) fprintf(stderr, "agent: %s\n", vdi_error_name(rc));
  /* vdi.h: the agent returns 0, or the set's sticky code once it is
   * aborted (VD_E_ABORT, or VD_E_PROTOCOL for a violation). */
  FZ_CHECK(rc == 0 || rc == VD_E_ABORT || rc == VD_E_PROTOCOL);
  if (rc != 0) FZ_CHECK(rc == atomic_load(&srv->c.abort_code));
  FZ_CHECK(atomic_load(&ran) == sent);
  /* 0 means a normal end: never after the agent aborted the set itself. */
  if (rc == 0) FZ_CHECK(atomic_load(&srv->c.abort_code) == 0);
  /* Poisoned: every later call returns the sticky code, but SendCommand
   * always refuses with VD_E_ABORT (vdi.h). */
  int sticky = atomic_load(&srv->c.abort_code);
  if (sticky) {
    static struct fcmd late;
    memset(&late.cmd, 0, sizeof late.cmd);
    late.cmd.commandCode = VDC_Flush;
    late.ran = &ran;
    VDS_SET_COMPLETION(&late.cmd, routine);
    atomic_store(&late.pending, 1);
    sent++;
    rc = vdi_srvdev_send_command(sdev, &late.cmd);
    FZ_CHECK(rc == VD_E_ABORT);
    FZ_CHECK(atomic_load(&late.pending) == 0); /* refused: routine ran */
    rc = vdi_srvdev_close_device(sdev);
    FZ_CHECK(rc == sticky);
  }
  FZ_CHECK(fz_legal_code(vdi_set_close(cli)));
  FZ_CHECK(fz_legal_code(vdi_srv_close(srv)));
  vdi_set_free(cli);
  vdi_srv_free(srv);
  FZ_CHECK(fz_map_count("memfd:vdi-") == 0);
  FZ_CHECK(fz_fd_count() == fds0);
  FZ_CHECK(fz_thread_count_settled(threads0) == threads0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_producer fp;
  fzp_init(&fp, data, size);
  vdi_lib_set_spin_us(0);
  if (fzp_u8(&fp) & 1)
    through_api(&fp);
  else
    rings_alone(&fp);
  return 0;
}
