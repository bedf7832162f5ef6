/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib_util.c - helpers for the core's robustness tests (see lib_util.h).
 */
#include "task.h"
#include "lib_util.h"

#include <dirent.h>
#include <pthread.h>

vdi_srvset_t *lu_server_setup(const char *name, uint32_t ndev, uint32_t size,
                              vdi_srvdev_t **devs) {
  return lu_server_setup_n(name, ndev, size, ndev * 4, devs);
}

vdi_srvset_t *lu_server_open_wait(const char *name) {
  vdi_srvset_t *srv;
  ASSERT_RC(vdi_srv_new(&srv), 0);
  int rc;
  int64_t end = now_ms() + 5000;
  while ((rc = vdi_srv_open(srv, NULL, name)) == VD_E_INVALID && now_ms() < end)
    sleep_ms(5);
  ASSERT_RC(rc, 0);
  return srv;
}

void lu_dev_name(char *out, size_t n, const char *name, uint32_t i) {
  if (i == 0)
    snprintf(out, n, "%s", name);
  else
    snprintf(out, n, "%s_%u", name, i);
}

vdi_srvset_t *lu_server_setup_n(const char *name, uint32_t ndev, uint32_t size,
                                uint32_t nbuf, vdi_srvdev_t **devs) {
  vdi_srvset_t *srv = lu_server_open_wait(name);
  ASSERT_RC(vdi_srv_begin_configuration(srv, VDF_WriteMedia, 4096, 0,
                                        (size + 65535) / 65536 * 65536, 0),
            0);
  ASSERT_RC(vdi_srv_request_buffers(srv, size, 0, nbuf), 0);
  ASSERT_RC(vdi_srv_end_configuration(srv), 0);
  for (uint32_t i = 0; i < ndev; i++) {
    char dn[128];
    lu_dev_name(dn, sizeof dn, name, i);
    ASSERT_RC(vdi_srv_open_device(srv, dn, &devs[i]), 0);
  }
  return srv;
}

struct vdi_shm_hdr *lu_find_control(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  void *found = NULL;
  while (f && fgets(line, sizeof line, f)) {
    if (!strstr(line, "memfd:vdi-control")) continue;
    unsigned long lo;
    if (sscanf(line, "%lx-", &lo) == 1) {
      found = (void *)lo;
      break;
    }
  }
  if (f) fclose(f);
  return found;
}

struct vdi_shm_dev *lu_dev(struct vdi_shm_hdr *h, uint32_t i) {
  return (struct vdi_shm_dev *)(void *)((char *)h + h->dev_off +
                                        (uint64_t)i * h->dev_stride);
}

int lu_devshm_count(void) {
  DIR *d = opendir("/dev/shm");
  int n = 0;
  struct dirent *e;
  if (!d) return 0;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void *agent(void *arg) {
  return (void *)(intptr_t)vdi_srv_execute_completion_agent(arg);
}

void lu_start_agent(vdi_srvset_t *srv, pthread_t *t) {
  pthread_create(t, NULL, agent, srv);
}
