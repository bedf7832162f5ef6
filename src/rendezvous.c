/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rendezvous.c - how a server or a secondary client finds a set by name.
 *
 * The primary client listens on a Unix-domain SOCK_SEQPACKET socket in the
 * abstract namespace, named "openvdi:<instance>:<set name>".  Abstract names
 * leave nothing in the file system, and the kernel drops them when the
 * listener dies, so no crash can leave a stale name behind.  Peers connect,
 * are checked with SO_PEERCRED / SO_PEERGROUPS, and receive memfds with
 * SCM_RIGHTS.  A connected socket also is the liveness channel: the kernel
 * reports a hang-up the moment the process at the other end dies.
 *
 * Abstract sockets have no file permissions, so both ends check who is at
 * the other end: the listener rejects peers that are neither its user nor
 * in the group it allows; a connecting peer rejects a listener that is not
 * its own user, root, or of one of its groups (a squatter).
 */
#include "vdi_int.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t fnv1a(uint64_t h, const char *s) {
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

int vdi__sock_name(const char *instance, const char *set,
                   struct sockaddr_un *sa, socklen_t *len) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (!instance) instance = "";
  /* sun_path[0] = 0 selects the abstract namespace; the name is not
   * NUL-terminated, its length is in the address length.  The readable
   * form shows in /proc/net/unix; names too long for it are hashed
   * (128 bits), and the attaching side checks the real set name in the
   * control segment (vdi__check_set_name). */
  /* The instance's length keeps the name unambiguous: a ':' inside a name
   * cannot make ("x:b", "c") and ("x", "b:c") collide. */
  int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1,
                   "openvdi:%zu:%s:%s", strlen(instance), instance, set);
  if (n < 0 || (size_t)n >= sizeof sa->sun_path - 1) {
    /* Hash the readable form, which is unambiguous. */
    char full[2 * VDI_SHM_NAME_BYTES + 32];
    snprintf(full, sizeof full, "%zu:%s:%s", strlen(instance), instance, set);
    uint64_t a = fnv1a(14695981039346656037ull, full);
    uint64_t b = fnv1a(0x6c62272e07bb0142ull, full);
    n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1,
                 "openvdi#%016llx%016llx", (unsigned long long)a,
                 (unsigned long long)b);
  }
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  return 0;
}

int vdi__listen(const char *instance, const char *set, int *fd_out) {
  struct sockaddr_un sa;
  socklen_t len;
  int rc = vdi__sock_name(instance, set, &sa, &len);
  if (rc) return rc;
  int fd =
      vdi__socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return VD_E_UNEXPECTED;
  if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
    rc = errno == EADDRINUSE ? VD_E_BUSY : VD_E_UNEXPECTED;
    close(fd);
    return rc;
  }
  if (listen(fd, 16) != 0) {
    close(fd);
    return VD_E_UNEXPECTED;
  }
  *fd_out = fd;
  return 0;
}

int vdi__connect(const char *instance, const char *set, int *fd_out) {
  struct sockaddr_un sa;
  socklen_t len;
  int rc = vdi__sock_name(instance, set, &sa, &len);
  if (rc) return rc;
  int fd = vdi__socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return VD_E_UNEXPECTED;
  if (connect(fd, (struct sockaddr *)&sa, len) != 0) {
    /* ECONNREFUSED: nobody listens under that name. */
    rc = (errno == ECONNREFUSED || errno == ENOENT) ? VD_E_INVALID
                                                    : VD_E_UNEXPECTED;
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

int vdi__send_msg(int fd, const struct vdi_msg *m, int pass_fd) {
  struct iovec iov = {(void *)m, sizeof *m};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (pass_fd >= 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = vdi__sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n == (ssize_t)sizeof *m) return 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0) continue;
    }
    return VD_E_ABORT; /* the peer is gone, or will not read */
  }
}

int vdi__recv_msg(int fd, struct vdi_msg *m, int *fd_out) {
  struct iovec iov = {m, sizeof *m};
  union {
    char buf[CMSG_SPACE(sizeof(int) * 8)];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  *fd_out = -1;
  ssize_t n;
  do
    n = vdi__recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : VD_E_ABORT;
  if (n == 0) return 0;
  /* Collect descriptors first, so none leaks whatever the message is. */
  int got = -1, extra = 0;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfd; i++) {
      int f;
      memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof f);
      if (got < 0)
        got = f;
      else {
        close(f);
        extra = 1;
      }
    }
  }
  if (n != (ssize_t)sizeof *m || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
      m->magic != VDI_SHM_MAGIC || extra) {
    if (got >= 0) close(got);
    return VD_E_PROTOCOL;
  }
  *fd_out = got;
  return 1;
}

int vdi__recv_msg_timeout(int fd, struct vdi_msg *m, int *fd_out,
                          int timeout_ms) {
  int64_t end = vdi__now_ns() + (int64_t)timeout_ms * 1000000;
  for (;;) {
    int r = vdi__recv_msg(fd, m, fd_out);
    if (r != -EAGAIN) return r;
    int64_t left = (end - vdi__now_ns()) / 1000000;
    if (left <= 0) return VD_E_TIMEOUT;
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, (int)left);
  }
}

static bool in_groups(int fd, gid_t want) {
  gid_t groups[256];
  socklen_t len = sizeof groups;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
    return false;
  for (size_t i = 0; i < len / sizeof(gid_t); i++)
    if (groups[i] == want) return true;
  return false;
}

int vdi__peer_trusted(int fd, const struct vdi_trust *t, pid_t *pid_out) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
    return VD_E_SECURITY;
  if (pid_out) *pid_out = cr.pid;
  if (cr.uid == t->uid) return 0;
  if (t->group != (gid_t)-1 && (cr.gid == t->group || in_groups(fd, t->group)))
    return 0;
  return VD_E_SECURITY;
}

/* A server or secondary checks who listens under the name before trusting
 * the memory it hands out: its own user, root, or a group it belongs to.
 * Anyone else is squatting on the name. */
int vdi__listener_trusted(int fd) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
    return VD_E_SECURITY;
  if (cr.uid == geteuid() || cr.uid == 0) return 0;
  /* Another user's set only when this process was told to trust that
   * user's group ($VDI_TRUST_GROUP, a numeric gid): a group merely shared
   * (say "users") must not let anyone squat a name and receive our data.
   * Never from the environment of a set-user-ID or set-group-ID program,
   * whose caller could otherwise widen its trust. */
  const char *g = secure_getenv("VDI_TRUST_GROUP");
  if (g && *g) {
    char *end;
    unsigned long gid = strtoul(g, &end, 10);
    if (*end == 0 && cr.gid == (gid_t)gid) return 0;
  }
  return VD_E_SECURITY;
}

/* The control segment's first device carries the set's name: checked on
 * attach, so that a hashed socket name can never connect us to another
 * set. */
int vdi__check_set_name(struct vdi_common *c) {
  char nm[VDI_SHM_NAME_BYTES];
  memcpy(nm, vdi__dev(c, 0)->name, sizeof nm);
  nm[sizeof nm - 1] = 0;
  return strcmp(nm, c->name) == 0 ? 0 : VD_E_PROTOCOL;
}
