/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_set.c - the server's device set (IServerVirtualDeviceSet2): Open,
 * configuration, devices, buffers, SignalAbort and Close.  Return codes
 * follow the server state table of spec 2.4.3; the decisions on its [INF]
 * cells are in docs/PROTOCOL.md.
 */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ATTACH_WAIT_MS 5000

static int get_configuration_impl(vdi_srvset_t *srv, VDConfig *cfg);
static int begin_configuration_impl(vdi_srvset_t *srv, uint32_t features,
                                    uint32_t block_size, uint32_t alignment,
                                    uint32_t max_transfer_size,
                                    uint32_t timeout_ms);
static int request_buffers_impl(vdi_srvset_t *srv, uint32_t size,
                                uint32_t alignment, uint32_t count);
static int query_available_buffers_impl(vdi_srvset_t *srv, uint32_t size,
                                        uint32_t alignment, uint32_t *count);
static int end_configuration_impl(vdi_srvset_t *srv);
static int open_device_impl(vdi_srvset_t *srv, const char *name,
                            vdi_srvdev_t **out);
static int allocate_buffer_impl(vdi_srvset_t *srv, uint8_t **buf, uint32_t size,
                                uint32_t alignment);
static int free_buffer_impl(vdi_srvset_t *srv, uint8_t *buf, uint32_t size);
static int is_shared_buffer_impl(vdi_srvset_t *srv, const uint8_t *buf);
static int signal_abort_impl(vdi_srvset_t *srv);

int vdi_srv_new(vdi_srvset_t **out) {
  if (!out) return VD_E_INVALID;
  struct vdi_srvset *s = vdi__calloc(1, sizeof *s);
  *out = s;
  if (!s) return VD_E_MEMORY;
  vdi__common_init(&s->c, 1);
  vdi__segs_init(&s->c);
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->agent_cond, NULL);
  vdi__ba_init(&s->ba);
  return 0;
}

void vdi_srv_free(vdi_srvset_t *srv) {
  if (!srv) return;
  if (srv->state != SV_DNE) vdi_srv_close(srv);
  vdi__ba_free(&srv->ba);
  pthread_mutex_destroy(&srv->lock);
  pthread_cond_destroy(&srv->agent_cond);
  free(srv);
}

/* A hang-up of the client is harmless once every device is closed and
 * nothing is in flight; otherwise commands would wait forever for it. */
static bool server_normal_end(struct vdi_common *c) {
  struct vdi_srvset *s = (struct vdi_srvset *)(void *)c;
  return s->devs && atomic_load(&s->nclosed) == s->c.geom.dev_count &&
         atomic_load(&s->in_flight) == 0;
}

static void release(struct vdi_srvset *s) {
  vdi__watcher_stop(&s->c); /* it reads devs; geom is needed below */
  if (s->devs) {
    for (uint32_t i = 0; i < s->c.geom.dev_count; i++)
      pthread_mutex_destroy(&s->devs[i].lock);
    free(s->devs);
  }
  vdi__segs_release(&s->c);
  vdi__common_release(&s->c);
  s->devs = NULL;
  vdi__ba_free(&s->ba);
  vdi__ba_init(&s->ba);
  s->nopened = 0;
  atomic_store(&s->nclosed, 0);
  atomic_store(&s->closing, false);
  atomic_store(&s->in_flight, 0);
  s->state = SV_DNE;
}

int vdi_srv_open(vdi_srvset_t *srv, const char *instance, const char *name) {
  if (!srv) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  struct vdi_common *c = &srv->c;
  int rc;
  if (srv->state != SV_DNE) {
    rc = VD_E_PROTOCOL;
    goto out;
  }
  if (vdi__name_check(name) ||
      (instance && *instance && vdi__name_check(instance))) {
    rc = VD_E_INVALID;
    goto out;
  }
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(c->instance, sizeof c->instance, "%s", instance ? instance : "");
  if ((rc = vdi__connect(c->instance, c->name, &c->conn_fd)) != 0) goto fail;
  if ((rc = vdi__listener_trusted(c->conn_fd)) != 0) goto fail;
  struct vdi_msg m = {VDI_SHM_MAGIC, VDI_MSG_ATTACH, VDI_ROLE_SERVER, 0, 0};
  /* A refused peer may find the socket closed under its ATTACH: what
   * tells it why is the REJECT already waiting to be read. */
  int sent = vdi__send_msg(c->conn_fd, &m, -1);
  int fd;
  /* If the ATTACH did not go out, only an answer already there counts:
   * nobody will answer later. */
  rc = vdi__recv_msg_timeout(c->conn_fd, &m, &fd,
                             sent == 0 ? ATTACH_WAIT_MS : 0);
  if (rc != 1) {
    rc = rc == 0 || rc == VD_E_TIMEOUT ? VD_E_INVALID : rc;
    goto fail;
  }
  if (m.type == VDI_MSG_REJECT) {
    if (fd >= 0) close(fd);
    int code = (int)m.arg;
    rc = code == VD_E_BUSY || code == VD_E_SECURITY || code == VD_E_ABORT
             ? code
             : VD_E_PROTOCOL;
    goto fail;
  }
  if (m.type != VDI_MSG_CONTROL || fd < 0) {
    if (fd >= 0) close(fd);
    rc = VD_E_PROTOCOL;
    goto fail;
  }
  if ((rc = vdi__attach_control(c, fd, m.size)) != 0) {
    close(fd);
    goto fail;
  }
  if ((rc = vdi__check_set_name(c)) != 0) goto fail;
  memcpy(&srv->requested, &c->hdr->requested, sizeof srv->requested);
  if (vdi__config_check_client(&srv->requested) != 0 ||
      srv->requested.deviceCount != c->geom.dev_count) {
    rc = VD_E_PROTOCOL;
    goto fail;
  }
  uint32_t st = VDI_ST_CREATED;
  if (!atomic_compare_exchange_strong(&c->hdr->state, &st, VDI_ST_CONNECTED)) {
    rc = VD_E_PROTOCOL;
    goto fail;
  }
  atomic_store(&c->hdr->server_pid, (uint32_t)getpid());
  srv->devs = vdi__calloc(c->geom.dev_count, sizeof *srv->devs);
  if (!srv->devs) {
    rc = VD_E_MEMORY;
    goto fail;
  }
  for (uint32_t i = 0; i < c->geom.dev_count; i++) {
    struct vdi_srvdev *d = &srv->devs[i];
    d->srv = srv;
    d->idx = i;
    d->sd = vdi__dev(c, i);
    pthread_mutex_init(&d->lock, NULL);
  }
  c->normal_end = server_normal_end;
  if ((rc = vdi__watcher_start(c)) != 0) goto fail;
  srv->state = SV_CONNECTED;
  rc = 0;
  goto out;
fail:
  release(srv);
out:
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

static int get_configuration_impl(vdi_srvset_t *srv, VDConfig *cfg) {
  if (!srv || !cfg) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int st = srv->state, rc = 0;
  if (st == SV_DNE)
    rc = VD_E_PROTOCOL;
  else if ((rc = vdi__aborted(&srv->c)) == 0)
    *cfg = st >= SV_INITIALIZING ? srv->c.chosen : srv->requested;
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

/* Move the shared state word forward and wake whoever waits on it. */
static void publish_state(struct vdi_srvset *s, uint32_t st) {
  atomic_store_explicit(&s->c.hdr->state, st, memory_order_release);
  vdi__wake_all(&s->c.hdr->state_seq);
}

static int begin_configuration_impl(vdi_srvset_t *srv, uint32_t features,
                                    uint32_t block_size, uint32_t alignment,
                                    uint32_t max_transfer_size,
                                    uint32_t timeout_ms) {
  (void)timeout_ms; /* buffer areas are declared by the server alone here */
  if (!srv) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = 0;
  if (srv->state == SV_DNE) {
    rc = VD_E_PROTOCOL;
    goto out;
  }
  if ((rc = vdi__aborted(&srv->c)) != 0) goto out;
  if (srv->state != SV_CONNECTED) {
    rc = VD_E_PROTOCOL;
    goto out;
  }
  if (alignment == 0) alignment = block_size;
  if (!vdi__config_choice_ok(&srv->requested, features, block_size, alignment,
                             max_transfer_size)) {
    rc = VD_E_INVALID;
    goto out;
  }
  /* The client's alignment is a minimum the server cannot lower. */
  if (srv->requested.alignment > alignment)
    alignment = srv->requested.alignment;
  srv->features = features;
  srv->block_size = block_size;
  srv->alignment = alignment;
  srv->max_transfer = max_transfer_size;
  srv->state = SV_CONFIGURABLE;
  publish_state(srv, VDI_ST_CONFIGURABLE);
out:
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

/* Common entry checks: DNE -> PROTOCOL, aborted -> its code, else whether
 * the state is one of the allowed ones. */
static int check_state(struct vdi_srvset *s, int lo, int hi) {
  if (s->state == SV_DNE) return VD_E_PROTOCOL;
  int a = vdi__aborted(&s->c);
  if (a) return a;
  return s->state >= lo && s->state <= hi ? 0 : VD_E_PROTOCOL;
}

static int request_buffers_impl(vdi_srvset_t *srv, uint32_t size,
                                uint32_t alignment, uint32_t count) {
  if (!srv) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = check_state(srv, SV_CONFIGURABLE, SV_ACTIVE);
  if (rc == 0) rc = vdi__ba_declare(&srv->ba, size, alignment, count);
  /* After configuration each request becomes a segment at once. */
  if (rc == 0 && srv->state != SV_CONFIGURABLE) {
    rc = vdi__ba_commit(srv);
    if (rc == 0) srv->c.chosen.bufferAreaSize = (uint32_t)srv->ba.total;
  }
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

static int query_available_buffers_impl(vdi_srvset_t *srv, uint32_t size,
                                        uint32_t alignment, uint32_t *count) {
  if (!srv || !count) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = check_state(srv, SV_CONFIGURABLE, SV_ACTIVE);
  if (rc == 0 && (size == 0 || (alignment && !vdi__pow2(alignment))))
    rc = VD_E_INVALID;
  if (rc == 0) *count = vdi__ba_available(srv, size, alignment);
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

static int end_configuration_impl(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = check_state(srv, SV_CONFIGURABLE, SV_CONFIGURABLE);
  if (rc) goto out;
  if ((rc = vdi__ba_commit(srv)) != 0) goto out; /* stays Configurable */
  VDConfig cho = srv->requested;
  cho.features = srv->requested.features | srv->features;
  cho.blockSize = srv->block_size;
  cho.alignment = srv->alignment;
  cho.maxTransferSize = srv->max_transfer;
  cho.maxIODepth = VDI_MAXIODEPTH_REPORTED;
  cho.bufferAreaSize =
      srv->ba.total > UINT32_MAX ? UINT32_MAX : (uint32_t)srv->ba.total;
  srv->c.chosen = cho;
  memcpy(&srv->c.hdr->chosen, &cho, sizeof cho);
  srv->state = SV_INITIALIZING;
  publish_state(srv, VDI_ST_INITIALIZING);
out:
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

static int open_device_impl(vdi_srvset_t *srv, const char *name,
                            vdi_srvdev_t **out) {
  if (out) *out = NULL;
  if (!srv || !out) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = check_state(srv, SV_INITIALIZING, SV_ACTIVE);
  if (rc) goto out;
  uint32_t i = srv->nopened;
  if (i == srv->c.geom.dev_count) {
    rc = VD_E_OPEN;
    goto out;
  }
  if (vdi__name_check(name)) {
    rc = VD_E_INVALID;
    goto out;
  }
  /* The first device is the set; the others need names of their own. */
  bool is_set = strcmp(name, srv->c.name) == 0;
  if ((i == 0) != is_set) {
    rc = VD_E_INVALID;
    goto out;
  }
  for (uint32_t k = 1; k < i; k++)
    if (strcmp(srv->devs[k].sd->name, name) == 0) {
      rc = VD_E_INVALID;
      goto out;
    }
  struct vdi_srvdev *d = &srv->devs[i];
  if (i > 0) {
    memset(d->sd->name, 0, sizeof d->sd->name);
    memcpy(d->sd->name, name, strlen(name));
  }
  d->opened = true;
  srv->nopened++;
  /* Release: the name is visible before the flag that announces it. */
  atomic_fetch_or_explicit(&d->sd->dstate, VDI_DEV_SRV_OPEN,
                           memory_order_release);
  srv->state = SV_ACTIVE;
  publish_state(srv, VDI_ST_ACTIVE);
  *out = d;
out:
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

static int allocate_buffer_impl(vdi_srvset_t *srv, uint8_t **buf, uint32_t size,
                                uint32_t alignment) {
  if (buf) *buf = NULL;
  if (!srv || !buf) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = check_state(srv, SV_INITIALIZING, SV_ACTIVE);
  pthread_mutex_unlock(&srv->lock);
  if (rc) return rc;
  return vdi__ba_alloc(srv, size, alignment, buf);
}

static int free_buffer_impl(vdi_srvset_t *srv, uint8_t *buf, uint32_t size) {
  if (!srv) return VD_E_INVALID;
  /* Freeing is allowed in every state after configuration, aborted
   * included: each side quiesces its own buffers before Close. */
  if (srv->state < SV_INITIALIZING) return VD_E_PROTOCOL;
  return vdi__ba_release(srv, buf, size);
}

static int is_shared_buffer_impl(vdi_srvset_t *srv, const uint8_t *buf) {
  struct ba_ref r;
  if (!srv || srv->state < SV_INITIALIZING) return 0;
  return vdi__ba_lookup(srv, buf, &r) == 0;
}

static int signal_abort_impl(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  pthread_mutex_lock(&srv->lock);
  int rc = srv->state == SV_DNE ? VD_E_PROTOCOL : 0;
  if (rc == 0) vdi__abort(&srv->c, VD_E_ABORT, VDI_ABORT_SERVER);
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

int vdi_srv_close(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  /* From a completion routine Close would wait for its own thread. */
  if (vdi__srv_in_agent()) return VD_E_PROTOCOL;
  pthread_mutex_lock(&srv->lock);
  if (srv->state == SV_DNE || atomic_load(&srv->c.closing)) {
    pthread_mutex_unlock(&srv->lock);
    return VD_E_PROTOCOL;
  }
  int rc = 0;
  if (!vdi__abort_code(&srv->c) && srv->nclosed < srv->nopened) {
    vdi__abort(&srv->c, VD_E_ABORT, VDI_ABORT_SERVER);
    rc = VD_E_PROTOCOL;
  }
  /* From here calls are refused; the agent takes what the client has
   * already completed, then ends. */
  atomic_store(&srv->c.closing, true);
  atomic_store(&srv->closing, true);
  pthread_mutex_unlock(&srv->lock);
  vdi__wait_calls_out(&srv->c);
  pthread_mutex_lock(&srv->lock);
  if (srv->c.hdr) vdi__wake_all(&srv->c.hdr->agent_seq);
  while (srv->agent_running)
    pthread_cond_wait(&srv->agent_cond, &srv->lock);
  pthread_mutex_unlock(&srv->lock);
  /* Completions still in the rings count; what is in flight after them
   * never will: it ends as ERROR_OPERATION_ABORTED, and the set as
   * aborted, so the client does not take it for a normal end. */
  vdi__srv_drain_all(srv);
  if (!vdi__abort_code(&srv->c) && atomic_load(&srv->in_flight) > 0)
    vdi__abort(&srv->c, VD_E_ABORT, VDI_ABORT_SERVER);
  vdi__srv_fail_all(srv);
  pthread_mutex_lock(&srv->lock);
  release(srv);
  pthread_mutex_unlock(&srv->lock);
  return rc;
}

/* ------------------------------------------------------------ entry gate
 * Every call is counted in and out, so that Close can wait until none is
 * inside before it unmaps and frees (calls that arrive during Close are
 * refused with VD_E_ABORT). */
int vdi_srv_get_configuration(vdi_srvset_t *srv, VDConfig *cfg) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = get_configuration_impl(srv, cfg);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_begin_configuration(vdi_srvset_t *srv, uint32_t features,
                                uint32_t block_size, uint32_t alignment,
                                uint32_t max_transfer_size,
                                uint32_t timeout_ms) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = begin_configuration_impl(srv, features, block_size, alignment,
                                    max_transfer_size, timeout_ms);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_request_buffers(vdi_srvset_t *srv, uint32_t size,
                            uint32_t alignment, uint32_t count) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = request_buffers_impl(srv, size, alignment, count);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_query_available_buffers(vdi_srvset_t *srv, uint32_t size,
                                    uint32_t alignment, uint32_t *count) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = query_available_buffers_impl(srv, size, alignment, count);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_end_configuration(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = end_configuration_impl(srv);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_open_device(vdi_srvset_t *srv, const char *name,
                        vdi_srvdev_t **out) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = open_device_impl(srv, name, out);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_allocate_buffer(vdi_srvset_t *srv, uint8_t **buf, uint32_t size,
                            uint32_t alignment) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = allocate_buffer_impl(srv, buf, size, alignment);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_free_buffer(vdi_srvset_t *srv, uint8_t *buf, uint32_t size) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = free_buffer_impl(srv, buf, size);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_is_shared_buffer(vdi_srvset_t *srv, const uint8_t *buf) {
  if (!srv) return 0;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return 0;
  int rc = is_shared_buffer_impl(srv, buf);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_client_closed(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  pthread_mutex_lock(&srv->lock);
  int rc = VD_E_PROTOCOL;
  if (srv->state != SV_DNE && srv->c.hdr) {
    /* Written by the client: a report, copied once, any other value
     * treated as no report. */
    uint32_t v = atomic_load(&srv->c.hdr->client_close);
    rc = v == VDI_CLOSE_CALLED ? 1
         : v == VDI_CLOSE_OPEN ? 0
                               : VD_E_NOTSUPPORTED;
  }
  pthread_mutex_unlock(&srv->lock);
  vdi__leave(&srv->c.calls);
  return rc;
}

int vdi_srv_signal_abort(vdi_srvset_t *srv) {
  if (!srv) return VD_E_INVALID;
  if (!vdi__enter(&srv->c, &srv->c.calls)) return VD_E_ABORT;
  int rc = signal_abort_impl(srv);
  vdi__leave(&srv->c.calls);
  return rc;
}
