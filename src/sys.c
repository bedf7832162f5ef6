/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sys.c - every system call the library makes that can fail for reasons
 * outside its control goes through here, so tests can make the nth use of
 * each fail (SQLite's aSyscall[] / sqlite3FaultSim idea).
 *
 * $VDI_FAULT_INJECT="op:n[,op:n...]" arms a fault from the environment, so a
 * test can aim it at a child process; vdi__fault_set() arms it in-process.
 * Once armed, the nth call and every later one fail (a failure that goes
 * away on retry would hide missing cleanup).
 *
 * The variable is honoured in release builds on purpose: the tests inject
 * faults into the programs that ship (vdi, vdisql and the vdisql that vdi
 * starts), not into a special build.  It can only make calls fail, which
 * whoever sets a process's environment can do anyway; secure_getenv keeps
 * it away from set-user-ID and set-group-ID programs.
 */
#include "vdi_int.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const op_names[VDI_SYS_COUNT] = {
    "mmap",    "memfd", "ftruncate", "socket", "sendmsg",
    "recvmsg", "futex", "thread",    "alloc"};
static _Atomic uint64_t calls[VDI_SYS_COUNT];
static _Atomic uint64_t fail_at[VDI_SYS_COUNT];
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void) {
  const char *e = secure_getenv("VDI_FAULT_INJECT");
  if (!e) return;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", e);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(tok, ':');
    if (!colon) continue;
    *colon = 0;
    for (int i = 0; i < VDI_SYS_COUNT; i++)
      if (strcmp(tok, op_names[i]) == 0)
        atomic_store(&fail_at[i], strtoull(colon + 1, NULL, 10));
  }
}

void vdi__fault_set(enum vdi_sys_op op, uint64_t nth) {
  pthread_once(&env_once, read_env);
  atomic_store(&calls[op], 0);
  atomic_store(&fail_at[op], nth);
}

uint64_t vdi__fault_calls(enum vdi_sys_op op) {
  return atomic_load(&calls[op]);
}

bool vdi__fault_hit(enum vdi_sys_op op) {
  pthread_once(&env_once, read_env);
  uint64_t n = atomic_fetch_add(&calls[op], 1) + 1;
  uint64_t at = atomic_load_explicit(&fail_at[op], memory_order_relaxed);
  return at != 0 && n >= at;
}

void *vdi__mmap(void *addr, size_t len, int prot, int flags, int fd,
                off_t off) {
  if (vdi__fault_hit(VDI_SYS_MMAP)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return mmap(addr, len, prot, flags, fd, off);
}

int vdi__memfd_create(const char *name, unsigned flags) {
  if (vdi__fault_hit(VDI_SYS_MEMFD)) {
    errno = EMFILE;
    return -1;
  }
  return memfd_create(name, flags);
}

int vdi__ftruncate(int fd, off_t len) {
  if (vdi__fault_hit(VDI_SYS_FTRUNCATE)) {
    errno = ENOSPC;
    return -1;
  }
  return ftruncate(fd, len);
}

int vdi__socket(int domain, int type, int proto) {
  if (vdi__fault_hit(VDI_SYS_SOCKET)) {
    errno = EMFILE;
    return -1;
  }
  return socket(domain, type, proto);
}

ssize_t vdi__sendmsg(int fd, const struct msghdr *m, int flags) {
  if (vdi__fault_hit(VDI_SYS_SENDMSG)) {
    errno = ENOBUFS;
    return -1;
  }
  return sendmsg(fd, m, flags);
}

ssize_t vdi__recvmsg(int fd, struct msghdr *m, int flags) {
  if (vdi__fault_hit(VDI_SYS_RECVMSG)) {
    errno = ENOMEM;
    return -1;
  }
  return recvmsg(fd, m, flags);
}

int vdi__thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
  if (vdi__fault_hit(VDI_SYS_THREAD)) return EAGAIN;
  return pthread_create(t, NULL, fn, arg);
}

void *vdi__calloc(size_t n, size_t size) {
  if (vdi__fault_hit(VDI_SYS_ALLOC)) return NULL;
  return calloc(n, size);
}
