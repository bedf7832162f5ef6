/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote.c - sending scripts to a running instance (see remote.h).
 *
 * The instance's address has no permissions of its own (wire.h), so
 * before sending anything the client checks who listens: its own user,
 * root, or the owner of the instance directory.  Anyone else could be
 * squatting the name to collect statements or answer them falsely.
 */
#include "remote.h"

#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int remote_run(const char *dir, int flags, const char *sep, const char *server,
               char *const *scripts, int n) {
  struct sockaddr_un a;
  socklen_t alen;
  struct stat dst;
  if (wire_addr(dir, &a, &alen) != 0 || stat(dir, &dst) != 0) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&a, alen) != 0) {
    close(fd); /* ECONNREFUSED: no instance runs */
    return -1;
  }
  struct ucred c;
  socklen_t cl = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &cl) != 0 ||
      (c.uid != geteuid() && c.uid != 0 && c.uid != dst.st_uid)) {
    fprintf(stderr,
            "Sqlcmd: Error: the process listening for instance '%s' (pid "
            "%ld, uid %u) is not run by the instance's owner; no statement "
            "was sent to it.\n",
            dir, (long)c.pid, (unsigned)c.uid);
    close(fd);
    return 1;
  }
  char head[32];
  int hl = snprintf(head, sizeof head, "%d %d", WIRE_VERSION, flags);
  int bad = wire_send(fd, 'H', head, (size_t)hl) ||
            wire_send(fd, 'C', sep, strlen(sep)) ||
            wire_send(fd, 'N', server, strlen(server));
  for (int i = 0; i < n && !bad; i++)
    bad = wire_send(fd, 'S', scripts[i], strlen(scripts[i]));
  if (!bad) bad = wire_send(fd, 'Z', NULL, 0);
  int status = -1;
  while (!bad) {
    char type, *data;
    long len = wire_recv(fd, &type, &data);
    if (len < 0) break;
    if (type == 'O') {
      fwrite(data, 1, (size_t)len, stdout);
      fflush(stdout);
    } else if (type == 'E') {
      fflush(stdout);
      fwrite(data, 1, (size_t)len, stderr);
      fflush(stderr);
    } else if (type == 'X' && len == 4) {
      status = (int)wire_status(data);
      free(data);
      break;
    }
    free(data);
  }
  close(fd);
  if (status < 0) {
    fprintf(stderr,
            "Sqlcmd: Error: the instance for '%s' ended the session "
            "before the statements finished.\n",
            dir);
    return 1;
  }
  return status;
}
