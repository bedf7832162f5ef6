/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.h - one client connection of a running instance: its request
 * read whole (wire.h), its scripts run with the output bound to the
 * connection, its exit status sent back.  A session runs in its own
 * thread; the listener (serve.c) owns the list and watches each
 * connection for a hang-up, which cancels the session.
 */
#ifndef VDISQL_SESSION_H
#define VDISQL_SESSION_H

#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef struct session {
  int fd;
  long id;
  struct ucred peer;
  const char *dir;                /* the instance directory */
  const char *const *backup_dirs; /* where DISK backups may be (serve.h) */
  int notify_fd;                  /* eventfd: the listener wakes when we end */
  volatile int cancel;     /* the client hung up, or the instance stops */
  int done;                /* atomic: the thread has finished */
  int watching;            /* the listener polls fd for a hang-up */
  int tds;                 /* a TDS connection (tdssession.c) */
  int running;             /* local, atomic: 0 reading the request, 1 past
                              it, 2 cut there by a stop (serve.c) */
  volatile int stop;       /* the instance stops: end after this batch */
  const char *password;    /* TDS: the sa login's, NULL = refuse all */
  const char *server_name; /* TDS: in messages (@@SERVERNAME) */
  struct tds_tls_ctx *tls; /* TDS: certificate and --tls-mode, or NULL */
  int logged_in;           /* TDS, atomic: past LOGIN7 (serve.c counts
                              the connections that are not) */
  double login_by;         /* TDS: serve.c ends it if not logged in by
                              then (monotonic seconds; 0 once ended) */
  pthread_t thread;
  struct session *next;
} session_t;

/** Thread body: serve @p arg (a session_t *) to its end. */
void *session_main(void *arg);

/** Write the first line or so of a script into the instance's log. */
void session_log_script(long id, const char *text);

/** Thread body of a TDS connection (tdssession.c). */
void *tds_session_main(void *arg);

/** Refuse a peer the instance does not trust: Msg 18456 and status 1. */
void session_refuse(int fd, const struct ucred *peer, const char *why);

#endif
