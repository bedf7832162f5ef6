/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-lib-hotpath.c - while the peer keeps up, the stream makes no system
 * call: a server process streams 20000 Writes through one device with 16
 * in flight, the client consumes them, and each side counts the futex
 * waits and wakes its library made during the stream.  A design that
 * slept (or woke its peer) once per buffer would make at least 20000.
 */
#include "task.h"
#include "lib_util.h"

#include <pthread.h>
#include <unistd.h>

#define N_CMDS 20000
#define DEPTH  16
#define SIZE   65536

/* Sleeps and wake-ups: what a design that waits per buffer pays.  (A
 * spin that lasts beyond 1 us also yields the CPU now and then; that only
 * happens when the peer does not keep up, e.g. on a loaded machine, and is
 * printed, not counted.) */
static uint64_t syscalls_now(void) {
  return vdi__fault_calls(VDI_SYS_FUTEX) + vdi__futex_wakes();
}

struct hp {
  vdi_srvdev_t *dev;
  _Atomic int sent, done, errors;
  VDS_Command cmds[DEPTH];
};
static struct hp hp;

/* Completion-driven: the agent thread refills and resends, so the server
 * has one busy thread, as the client has. */
static void hp_complete(VDS_Command *c) {
  if (c->completionCode != 0 || c->bytesTransferred != SIZE) hp.errors++;
  hp.done++;
  if (atomic_fetch_add(&hp.sent, 1) < N_CMDS) {
    memcpy(c->buffer, &c->inPosition, sizeof c->inPosition);
    c->inPosition += DEPTH;
    if (vdi_srvdev_send_command(hp.dev, c) != 0) hp.errors++;
  }
}

/* argv: name result-file */
HELPER_IMPL(hotpath_server) {
  vdi_lib_set_spin_us(1000);
  vdi_srvdev_t *dev[1];
  vdi_srvset_t *srv = lu_server_setup_n(argv[1], 1, SIZE, DEPTH, dev);
  hp.dev = dev[0];
  for (int k = 0; k < DEPTH; k++)
    ASSERT_RC(vdi_srv_allocate_buffer(srv, &hp.cmds[k].buffer, SIZE, 0), 0);
  pthread_t agent;
  lu_start_agent(srv, &agent);
  uint64_t before = syscalls_now();
  for (int k = 0; k < DEPTH; k++) {
    VDS_Command *c = &hp.cmds[k];
    c->commandCode = VDC_Write;
    c->size = SIZE;
    c->inPosition = k;
    VDS_SET_COMPLETION(c, hp_complete);
    atomic_fetch_add(&hp.sent, 1);
    ASSERT_RC(vdi_srvdev_send_command(hp.dev, c), 0);
  }
  while (hp.done < N_CMDS)
    usleep(1000);
  uint64_t used = syscalls_now() - before;
  ASSERT_RC(vdi_srvdev_close_device(hp.dev), 0);
  void *r;
  pthread_join(agent, &r);
  ASSERT_RC((int)(intptr_t)r, 0);
  vdi_srv_close(srv);
  vdi_srv_free(srv);
  FILE *f = fopen(argv[2], "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "%llu\n", (unsigned long long)used);
  fclose(f);
  return hp.errors ? 3 : 0;
}

TEST_IMPL_TIMEOUT(lib_hot_path_makes_no_syscalls, 30) {
  vdi_lib_set_spin_us(1000);
  const char *name = unique_name("hot");
  vdi_set_t *set;
  ASSERT_RC(vdi_set_new(&set), 0);
  VDConfig cfg = {0};
  cfg.deviceCount = 1;
  ASSERT_RC(vdi_set_create(set, name, &cfg), 0);
  char res[4200];
  snprintf(res, sizeof res, "%s/server-syscalls", test_tmpdir());
  pid_t pid = spawn_helper("hotpath_server", name, res, NULL);
  int rc;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT) {
  }
  ASSERT_RC(rc, 0);
  vdi_device_t *dev;
  ASSERT_RC(vdi_set_open_device(set, name, &dev), 0);
  /* The first command may find us asleep: count from the second one. */
  VDC_Command *cmd;
  ASSERT_RC(vdi_dev_get_command(dev, 5000, &cmd), 0);
  ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, SIZE, 0), 0);
  uint64_t before = syscalls_now();
  int n = 1;
  uint64_t sum = 0;
  for (;;) {
    rc = vdi_dev_get_command(dev, INFINITE, &cmd);
    if (rc == VD_E_CLOSE) break;
    ASSERT_RC(rc, 0);
    uint64_t v;
    memcpy(&v, cmd->buffer, sizeof v); /* read in place: zero copy */
    sum += v;
    ASSERT_RC(vdi_dev_complete_command(dev, cmd, 0, SIZE, 0), 0);
    n++;
  }
  uint64_t mine = syscalls_now() - before;
  ASSERT_EQ(wait_helper(pid), 0);
  ASSERT_EQ(n, N_CMDS);
  (void)sum;
  FILE *f = fopen(res, "r");
  ASSERT_NOT_NULL(f);
  unsigned long long theirs = 0;
  ASSERT_EQ(fscanf(f, "%llu", &theirs), 1);
  fclose(f);
  printf("futex system calls over %d commands: client %llu, server %llu\n",
         N_CMDS, (unsigned long long)mine, theirs);
  /* Allow for the start, the end, and being descheduled now and then on a
   * shared machine; sleeping per buffer would be >= N_CMDS. */
  ASSERT_LT(mine + theirs, N_CMDS / 20);
  vdi_set_close(set);
  vdi_set_free(set);
  return 0;
}
