/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watcher.c - one thread per set object that serves the rendezvous socket
 * and turns a peer's death into an abort.
 *
 * Primary client: accepts connections on the listening socket, checks the
 * peer's credentials, answers ATTACH with the control memfd, receives the
 * server's buffer segments (and forwards them to secondaries), and watches
 * every connection for a hang-up.  Server and secondary: watch the one
 * connection to the primary and receive segments on it.
 *
 * A hang-up is the kernel telling us the process at the other end is gone
 * (or closed the set).  It is harmless after a normal end; otherwise the
 * set aborts at once, which wakes every blocked call of every process,
 * forever-waits included.  No timer is involved.
 *
 * Peers' sockets are non-blocking: a local process that connects and says
 * nothing cannot stall the watcher, and with it death detection.
 */
#include "vdi_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct vdi_peer {
  int fd;
  uint32_t id;    /* client id for secondaries (2, 3, ...) */
  int role;       /* 0 until ATTACH, then enum vdi_role */
  bool untrusted; /* answered with REJECT once its ATTACH is read */
  struct vdi_peer *next;
};

#define MAX_PEERS 64
/* Connections of users the set does not trust get places of their own:
 * however many such a user opens and holds without a word, the owner's
 * server and secondaries still find room. */
#define MAX_UNTRUSTED 8
#define MAX_POLL      (MAX_PEERS + MAX_UNTRUSTED + 3)

static void peer_remove(struct vdi_common *c, struct vdi_peer *p) {
  pthread_mutex_lock(&c->peers_lock);
  for (struct vdi_peer **pp = &c->peers; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  pthread_mutex_unlock(&c->peers_lock);
  close(p->fd);
  free(p);
}

bool vdi__owner_has_open_devices(struct vdi_common *c, uint32_t id) {
  if (!c->hdr) return false;
  for (uint32_t i = 0; i < c->geom.dev_count; i++) {
    struct vdi_shm_dev *d = vdi__dev(c, i);
    if (atomic_load(&d->cli_owner) == id &&
        !(atomic_load(&d->dstate) & VDI_DEV_SRV_CLOSED))
      return true;
  }
  return false;
}

static void send_segment(struct vdi_common *c, int fd, uint32_t idx) {
  struct vdi_seg *s = &c->segs[idx];
  struct vdi_msg m = {VDI_SHM_MAGIC, VDI_MSG_SEGMENT, idx, s->align, s->size};
  vdi__send_msg(fd, &m, s->fd);
}

void vdi__peers_forward_segment(struct vdi_common *c, uint32_t idx) {
  pthread_mutex_lock(&c->peers_lock);
  for (struct vdi_peer *p = c->peers; p; p = p->next)
    if (p->role == VDI_ROLE_SECONDARY) send_segment(c, p->fd, idx);
  pthread_mutex_unlock(&c->peers_lock);
}

/* A segment we could not take: the peer's fault (a bad descriptor or
 * size: VD_E_PROTOCOL), or ours (no memory to map it: VD_E_MEMORY, so the
 * caller is told the real cause). */
static void seg_failed(struct vdi_common *c, int rc) {
  if (rc == VD_E_MEMORY)
    vdi__abort(c, VD_E_MEMORY, VDI_ABORT_RESOURCE);
  else
    vdi__abort(c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
}

static void reject(int fd, int code) {
  struct vdi_msg m = {VDI_SHM_MAGIC, VDI_MSG_REJECT, (uint32_t)code, 0, 0};
  vdi__send_msg(fd, &m, -1);
}

/* Primary: a message from a peer.  Returns false to drop the peer. */
static bool primary_handle(struct vdi_common *c, struct vdi_peer *p,
                           const struct vdi_msg *m, int fd) {
  if (p->role == 0) {
    if (fd >= 0) close(fd);
    if (m->type != VDI_MSG_ATTACH) return false;
    /* Rejections are sent after reading the ATTACH: closing a socket with
     * unread data would reset the connection and lose the REJECT. */
    if (p->untrusted) {
      reject(p->fd, VD_E_SECURITY);
      return false;
    }
    if (vdi__aborted(c)) {
      reject(p->fd, VD_E_ABORT);
      return false;
    }
    if (m->arg == VDI_ROLE_SERVER) {
      if (c->server_attached) {
        reject(p->fd, VD_E_BUSY);
        return false;
      }
      c->server_attached = true;
      p->role = VDI_ROLE_SERVER;
      p->id = 0;
    } else if (m->arg == VDI_ROLE_SECONDARY) {
      /* Secondaries join only once the primary's GetConfiguration has
       * succeeded. */
      uint32_t st = atomic_load(&c->hdr->state);
      if (st < VDI_ST_INITIALIZING || st > VDI_ST_ACTIVE ||
          !atomic_load(&c->configured)) {
        reject(p->fd, VD_E_PROTOCOL);
        return false;
      }
      p->role = VDI_ROLE_SECONDARY;
      p->id = ++c->next_peer_id + 1;
    } else {
      return false;
    }
    struct vdi_msg ctl = {VDI_SHM_MAGIC, VDI_MSG_CONTROL, p->id, 0,
                          c->geom.total_size};
    if (vdi__send_msg(p->fd, &ctl, c->ctl_fd) != 0) return false;
    if (p->role == VDI_ROLE_SECONDARY) {
      uint32_t n = atomic_load(&c->nsegs);
      for (uint32_t i = 0; i < n; i++)
        send_segment(c, p->fd, i);
    }
    return true;
  }
  if (m->type == VDI_MSG_SEGMENT && p->role == VDI_ROLE_SERVER && fd >= 0) {
    int rc = vdi__seg_add(c, m->arg, fd, m->size, m->arg2);
    if (rc) {
      seg_failed(c, rc);
      return true;
    }
    vdi__peers_forward_segment(c, m->arg);
    return true;
  }
  if (fd >= 0) close(fd);
  vdi__abort(c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
  return true;
}

static void primary_peer_gone(struct vdi_common *c, struct vdi_peer *p) {
  if (p->role == VDI_ROLE_SERVER) {
    if (!c->normal_end || !c->normal_end(c))
      vdi__abort(c, VD_E_ABORT, VDI_ABORT_PEER_DIED);
  } else if (p->role == VDI_ROLE_SECONDARY) {
    if (vdi__owner_has_open_devices(c, p->id))
      vdi__abort(c, VD_E_ABORT, VDI_ABORT_PEER_DIED);
  }
}

static void accept_peers(struct vdi_common *c) {
  for (;;) {
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    int n = 0, nu = 0;
    for (struct vdi_peer *p = c->peers; p; p = p->next) {
      n++;
      nu += p->untrusted;
    }
    bool untrusted = vdi__peer_trusted(fd, &c->trust, NULL) != 0;
    bool room = untrusted ? nu < MAX_UNTRUSTED : n - nu < MAX_PEERS;
    struct vdi_peer *p = room ? calloc(1, sizeof *p) : NULL;
    if (!p) {
      close(fd);
      continue;
    }
    p->fd = fd;
    p->untrusted = untrusted;
    pthread_mutex_lock(&c->peers_lock);
    p->next = c->peers;
    c->peers = p;
    pthread_mutex_unlock(&c->peers_lock);
  }
}

/* Reads what is waiting on a peer's socket; false when the peer is gone. */
static bool drain_peer(struct vdi_common *c, struct vdi_peer *p) {
  for (;;) {
    struct vdi_msg m;
    int fd;
    int r = vdi__recv_msg(p->fd, &m, &fd);
    if (r == -EAGAIN) return true;
    if (r != 1) return false;
    if (!primary_handle(c, p, &m, fd)) return false;
  }
}

/* Server or secondary: what the primary sends. */
static bool drain_conn(struct vdi_common *c) {
  for (;;) {
    struct vdi_msg m;
    int fd;
    int r = vdi__recv_msg(c->conn_fd, &m, &fd);
    if (r == -EAGAIN) return true;
    if (r != 1) return false;
    if (m.type == VDI_MSG_SEGMENT && c->role == 2 && fd >= 0) {
      int rc = vdi__seg_add(c, m.arg, fd, m.size, m.arg2);
      if (rc) seg_failed(c, rc);
    } else {
      if (fd >= 0) close(fd);
      vdi__abort(c, VD_E_PROTOCOL, VDI_ABORT_PROTOCOL);
    }
  }
}

static void *watch(void *arg) {
  struct vdi_common *c = arg;
  struct pollfd pf[MAX_POLL];
  struct vdi_peer *who[MAX_POLL];
  bool conn_open = c->conn_fd >= 0;
  for (;;) {
    nfds_t n = 0;
    pf[n] = (struct pollfd){c->stop_fd, POLLIN, 0};
    who[n++] = NULL;
    if (c->listen_fd >= 0) {
      pf[n] = (struct pollfd){c->listen_fd, POLLIN, 0};
      who[n++] = NULL;
    }
    if (conn_open) {
      pf[n] = (struct pollfd){c->conn_fd, POLLIN, 0};
      who[n++] = NULL;
    }
    pthread_mutex_lock(&c->peers_lock);
    for (struct vdi_peer *p = c->peers; p && n < MAX_POLL; p = p->next) {
      pf[n] = (struct pollfd){p->fd, POLLIN, 0};
      who[n++] = p;
    }
    pthread_mutex_unlock(&c->peers_lock);
    if (poll(pf, n, -1) < 0) {
      if (errno == EINTR) continue;
      vdi__abort(c, VD_E_ABORT, VDI_ABORT_PEER_DIED);
      return NULL;
    }
    if (pf[0].revents) return NULL;
    for (nfds_t i = 1; i < n; i++) {
      if (!pf[i].revents) continue;
      if (pf[i].fd == c->listen_fd && !who[i]) {
        accept_peers(c);
      } else if (pf[i].fd == c->conn_fd && !who[i]) {
        if (!drain_conn(c)) {
          conn_open = false;
          if (!c->normal_end || !c->normal_end(c))
            vdi__abort(c, VD_E_ABORT, VDI_ABORT_PEER_DIED);
        }
      } else if (who[i]) {
        if (!drain_peer(c, who[i])) {
          primary_peer_gone(c, who[i]);
          peer_remove(c, who[i]);
        }
      }
    }
  }
}

int vdi__watcher_start(struct vdi_common *c) {
  c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->stop_fd < 0) return VD_E_UNEXPECTED;
  int err = vdi__thread_create(&c->watcher, watch, c);
  if (err) {
    close(c->stop_fd);
    c->stop_fd = -1;
    return VD_E_MEMORY;
  }
  c->watcher_running = true;
  return 0;
}

void vdi__watcher_stop(struct vdi_common *c) {
  if (c->watcher_running) {
    uint64_t one = 1;
    ssize_t w = write(c->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(c->watcher, NULL);
    c->watcher_running = false;
  }
  if (c->stop_fd >= 0) close(c->stop_fd);
  c->stop_fd = -1;
  pthread_mutex_lock(&c->peers_lock);
  while (c->peers) {
    struct vdi_peer *p = c->peers;
    c->peers = p->next;
    close(p->fd);
    free(p);
  }
  pthread_mutex_unlock(&c->peers_lock);
}
