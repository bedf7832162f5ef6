/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - serving one connection (see session.h).
 *
 * The session's results and messages go through two stdio streams made
 * with fopencookie(): each write becomes one 'O' or 'E' frame on the
 * connection, so what the client prints is what a one-shot vdisql would
 * have printed, in the same order.  The executor only ever writes through
 * msg.h, which this thread has bound to these streams.
 */
#include "session.h"

#include "exec.h"
#include "media.h"
#include "msg.h"
#include "script.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct sink {
  int fd;
  char type;
  volatile int *cancel; /* the session's: a stop gives up a stuck write */
};

static ssize_t sink_write(void *c, const char *buf, size_t n) {
  struct sink *s = c;
  /* A client that went away loses its output; the statement goes on
   * until the listener notices the hang-up and cancels it. */
  (void)wire_send_until(s->fd, s->type, buf, n, s->cancel);
  return (ssize_t)n;
}

static FILE *sink_open(struct sink *s) {
  cookie_io_functions_t io = {NULL, sink_write, NULL, NULL};
  FILE *f = fopencookie(s, "w", io);
  if (f) setvbuf(f, NULL, _IOFBF, 65536);
  return f;
}

/* What the instance's log says about a session's scripts: their first
 * line or so, on one line. */
void session_log_script(long id, const char *text) {
  char line[160];
  size_t k = 0;
  int cut = strlen(text) >= sizeof line - 1;
  for (const char *p = text; *p && k + 1 < sizeof line; p++) {
    /* No password of CREATE MASTER KEY or a certificate's key file goes
     * to the log: the line ends before the word. */
    if (strncasecmp(p, "PASSWORD", 8) == 0) {
      cut = 1;
      break;
    }
    line[k++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
  }
  while (cut && k > 0 && line[k - 1] == ' ')
    k--;
  line[k] = 0;
  fprintf(stderr, "vdisql: session %ld: %s%s\n", id, line, cut ? " ..." : "");
}

void session_refuse(int fd, const struct ucred *peer, const char *why) {
  char msg[512];
  int n = snprintf(msg, sizeof msg,
                   "Msg 18456, Level 14, State 1, Server instance, Line 1\n"
                   "Login failed for user 'uid %u'. %s\n",
                   (unsigned)peer->uid, why);
  wire_send(fd, 'E', msg, (size_t)n);
  wire_send_status(fd, 1, NULL);
}

/* The request: header, separator, server name, scripts.  0, or -1 for a
 * malformed one. */
static int read_request(session_t *s, int *flags, char **sep, char **sname,
                        char ***scripts, int *n) {
  char type, *data;
  int ver = 0;
  *scripts = NULL;
  *n = 0;
  if (wire_recv(s->fd, &type, &data) < 0 || type != 'H' ||
      sscanf(data, "%d %d", &ver, flags) != 2 || ver != WIRE_VERSION) {
    free(data);
    return -1;
  }
  free(data);
  if (wire_recv(s->fd, &type, sep) < 0 || type != 'C') return -1;
  if (wire_recv(s->fd, &type, sname) < 0 || type != 'N') return -1;
  for (;;) {
    long len = wire_recv(s->fd, &type, &data);
    if (len < 0) return -1;
    if (type == 'Z') {
      free(data);
      return 0;
    }
    if (type != 'S' || *n >= 1024) {
      free(data);
      return -1;
    }
    char **nv = realloc(*scripts, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) {
      free(data);
      return -1;
    }
    *scripts = nv;
    (*scripts)[(*n)++] = data;
  }
}

void *session_main(void *arg) {
  session_t *s = arg;
  int flags = 0, n = 0;
  char *sep = NULL, *sname = NULL, **scripts = NULL;
  uint32_t status = 1;
  vdidev_set_owner(&s->cancel);
  int reading = 0;
  /* A stop cuts a request still being read (its client may never finish
   * it); one read whole runs, and the stop waits for it. */
  if (read_request(s, &flags, &sep, &sname, &scripts, &n) == 0 &&
      __atomic_compare_exchange_n(&s->running, &reading, 1, 0, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE)) {
    struct sink so = {s->fd, 'O', &s->cancel}, se = {s->fd, 'E', &s->cancel};
    FILE *out = sink_open(&so), *err = sink_open(&se);
    if (out && err) {
      out_bind(out, err, sname, (flags & WIRE_F_STDERR) != 0);
      session_vars vars = {"master", 0, s->id};
      exec_ctx cx = {s->dir,     sname, sep,           !(flags & WIRE_F_NOHEAD),
                     &s->cancel, &vars, s->backup_dirs};
      int stop = (flags & WIRE_F_STOP) != 0, failed = 0;
      for (int i = 0; i < n && !s->cancel; i++) {
        session_log_script(s->id, scripts[i]);
        failed += script_run(&cx, scripts[i], stop);
        if (failed && stop) break;
      }
      status = stop && failed ? 1 : 0;
      fflush(out);
      fflush(err);
      out_bind(NULL, NULL, NULL, 0);
    }
    if (out) fclose(out);
    if (err) fclose(err);
    wire_send_status(s->fd, status, &s->cancel);
  }
  fprintf(stderr, "vdisql: session %ld ended%s, exit %u\n", s->id,
          s->cancel ? " (cancelled: the client hung up)" : "",
          (unsigned)status);
  for (int i = 0; i < n; i++)
    free(scripts[i]);
  free(scripts);
  free(sep);
  free(sname);
  vdidev_set_owner(NULL);
  __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  (void)!write(s->notify_fd, &one, sizeof one);
  return NULL;
}
