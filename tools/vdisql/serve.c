/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c - the instance's listener (see serve.h).
 *
 * One instance per directory: the instance holds an exclusive flock on
 * DIR/.vdisql/instance.lock (with its pid written in it) for its whole
 * life, so a second --serve is refused with the first one's pid, and a
 * killed instance leaves nothing that blocks the next one.
 *
 * The main thread polls the listening socket, a signalfd (SIGTERM,
 * SIGINT: blocked in every thread), an eventfd that sessions write when
 * they end, and every running session's connection for a hang-up, which
 * cancels that session (its virtual device sets are aborted, so its VDI
 * client learns at once; its next statements do not run).
 *
 * A stop closes the listener, lets running statements finish for up to
 * --stop-timeout seconds, then aborts the virtual device sets still open
 * (those statements fail with their messages, sent to their clients) and
 * waits for every session to end.  DISK statements always run to their
 * end.  Nothing is half-written either way: every statement is all or
 * nothing on its own (temporary files, renames, the restore commit rule).
 */
#include "serve.h"

#include "capture.h"

#include "guard.h"
#include "media.h"
#include "session.h"
#include "stale.h"
#include "tdstls.h"
#include "wire.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 256
/* TDS connections not logged in yet: more are closed at once, so a flood
 * of logins, right or wrong, holds at most this many threads and leaves
 * the other sessions' slots alone; each is shut down if it has not logged
 * in within LOGIN_DEADLINE seconds of its connect, so connections that
 * never finish (or trickle) their login do not keep their slots. */
#define MAX_PENDING_LOGINS 32
#define LOGIN_DEADLINE     10

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The lock that makes this process the instance of dir.  fd, or -1 after
 * printing why not. */
static int take_instance_lock(const char *dir) {
  char path[PATH_MAX + 64];
  int rc = guard_private_dir(dir, NULL, path, sizeof path);
  if (rc != 0) {
    fprintf(stderr, "vdisql: cannot create '%s/.vdisql': %s\n", dir,
            strerror(-rc));
    return -1;
  }
  snprintf(path, sizeof path, "%s/.vdisql/instance.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    fprintf(stderr, "vdisql: cannot open '%s': %s\n", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    if (n > 0) pid[strcspn(pid, "\n")] = 0;
    fprintf(stderr,
            "vdisql: an instance is already running for '%s'%s%s%s; "
            "one instance per directory\n",
            dir, n > 0 ? " (pid " : "", n > 0 ? pid : "", n > 0 ? ")" : "");
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    /* The pid is only for the message above; the lock is what counts. */
  }
  return fd;
}

/* 1 if pid's supplementary groups (or primary) include gid. */
static int in_group(pid_t pid, gid_t primary, gid_t gid) {
  if (primary == gid) return 1;
  char path[64], line[4096];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  int yes = 0;
  while (!yes && fgets(line, sizeof line, f))
    if (strncmp(line, "Groups:", 7) == 0)
      for (char *save = NULL, *t = strtok_r(line + 7, " \t\n", &save); t;
           t = strtok_r(NULL, " \t\n", &save))
        if ((gid_t)strtoul(t, NULL, 10) == gid) yes = 1;
  fclose(f);
  return yes;
}

static int trusted(const serve_opts *o, const struct ucred *c) {
  if (c->uid == geteuid() || c->uid == 0) return 1;
  return o->allow_group && in_group(c->pid, c->gid, o->allow_gid);
}

/* A refused client is told why in a thread of its own: the answer must
 * be sent, and the client's request read and dropped, before the close
 * (closing with unread bytes resets the connection, and the client would
 * lose the answer), and a client that never finishes its request must not
 * hold up the listener. */
struct refusal {
  int fd;
  struct ucred peer;
  const char *why;
};

/* Refusals being answered: anyone may connect to the abstract socket, so
 * their threads are capped, and each lasts REFUSE_SECONDS in all (a
 * client trickling bytes would otherwise keep its thread for ever); past
 * the cap, a refused connection is closed without its answer. */
#define MAX_REFUSING   16
#define REFUSE_SECONDS 2
static int refusing; /* atomic */

static void *refuse_main(void *arg) {
  struct refusal *r = arg;
  struct timeval tv = {REFUSE_SECONDS, 0};
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  double end = now_s() + REFUSE_SECONDS;
  session_refuse(r->fd, &r->peer, r->why);
  shutdown(r->fd, SHUT_WR);
  char buf[4096];
  while (now_s() < end && read(r->fd, buf, sizeof buf) > 0) {
  }
  close(r->fd);
  free(r);
  __atomic_fetch_sub(&refusing, 1, __ATOMIC_RELAXED);
  return NULL;
}

static void refuse(int fd, const struct ucred *c, const char *why) {
  struct refusal *r = NULL;
  pthread_t t;
  pthread_attr_t at;
  if (__atomic_add_fetch(&refusing, 1, __ATOMIC_RELAXED) <= MAX_REFUSING)
    r = malloc(sizeof *r);
  if (r) {
    *r = (struct refusal){fd, *c, why};
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &at, refuse_main, r);
    pthread_attr_destroy(&at);
    if (rc == 0) return;
    free(r);
  }
  __atomic_fetch_sub(&refusing, 1, __ATOMIC_RELAXED);
  close(fd);
}

/* The TDS listener on "host:port" or "[v6]:port" (port 0: any free one,
 * printed).  fd, or -1 after printing why not. */
static int tds_listen(const char *spec, char *shown, size_t n) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (!colon || colon == spec || !colon[1]) {
    fprintf(stderr, "vdisql: --tds '%s': expected ADDRESS:PORT\n", spec);
    return -1;
  }
  size_t hl = (size_t)(colon - spec);
  if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']')
    snprintf(host, sizeof host, "%.*s", (int)(hl - 2), spec + 1);
  else
    snprintf(host, sizeof host, "%.*s", (int)hl, spec);
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int rc = getaddrinfo(host, colon + 1, &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "vdisql: --tds '%s': %s\n", spec, gai_strerror(rc));
    return -1;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
      listen(fd, 64) != 0) {
    fprintf(stderr, "vdisql: --tds '%s': cannot listen: %s\n", spec,
            strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char h[128] = "?", p[16] = "?";
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, p, sizeof p,
                NI_NUMERICHOST | NI_NUMERICSERV);
  snprintf(shown, n, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
  return fd;
}

struct state {
  const serve_opts *o;
  int lfd, sfd, efd;
  int tfd;              /* TDS listener, or -1 */
  const char *password; /* MSSQL_SA_PASSWORD as it was at the start */
  tds_tls_ctx *tls;     /* --tls-cert and --tls-key, or NULL */
  session_t *sessions;
  int nsessions;
  long next_id;
};

static void accept_one(struct state *st) {
  int fd = accept4(st->lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  struct ucred c;
  socklen_t cl = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &cl) != 0) {
    close(fd);
    return;
  }
  if (!trusted(st->o, &c)) {
    fprintf(stderr, "vdisql: refused a connection from pid %ld, uid %u\n",
            (long)c.pid, (unsigned)c.uid);
    refuse(fd, &c,
           "The instance serves its own user, root and the group it was "
           "told to allow.");
    return;
  }
  if (st->nsessions >= MAX_SESSIONS) {
    refuse(fd, &c, "The instance has too many sessions.");
    return;
  }
  session_t *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return;
  }
  s->fd = fd;
  s->id = ++st->next_id;
  s->peer = c;
  s->dir = st->o->dir;
  s->backup_dirs = st->o->backup_dirs;
  s->notify_fd = st->efd;
  s->watching = 1;
  if (pthread_create(&s->thread, NULL, session_main, s) != 0) {
    close(fd);
    free(s);
    return;
  }
  fprintf(stderr, "vdisql: session %ld from pid %ld (uid %u)\n", s->id,
          (long)c.pid, (unsigned)c.uid);
  s->next = st->sessions;
  st->sessions = s;
  st->nsessions++;
}

static void accept_tds(struct state *st) {
  int fd = accept4(st->tfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  int pending = 0;
  for (session_t *s = st->sessions; s; s = s->next)
    pending += s->tds && !__atomic_load_n(&s->logged_in, __ATOMIC_ACQUIRE);
  if (st->nsessions >= MAX_SESSIONS || pending >= MAX_PENDING_LOGINS) {
    close(fd); /* a flood: the client's connect fails, nothing else */
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  session_t *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return;
  }
  s->fd = fd;
  s->id = ++st->next_id;
  s->dir = st->o->dir;
  s->backup_dirs = st->o->backup_dirs;
  s->notify_fd = st->efd;
  s->tds = 1;
  s->password = st->password;
  s->server_name = st->o->dir;
  s->tls = st->tls;
  s->login_by = now_s() + LOGIN_DEADLINE;
  if (pthread_create(&s->thread, NULL, tds_session_main, s) != 0) {
    close(fd);
    free(s);
    return;
  }
  fprintf(stderr, "vdisql: session %ld: TDS connection\n", s->id);
  s->next = st->sessions;
  st->sessions = s;
  st->nsessions++;
}

/* Join and free the sessions that have ended. */
static void reap(struct state *st) {
  uint64_t v;
  (void)!read(st->efd, &v, sizeof v);
  for (session_t **p = &st->sessions; *p;) {
    session_t *s = *p;
    if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
      pthread_join(s->thread, NULL);
      close(s->fd);
      *p = s->next;
      free(s);
      st->nsessions--;
    } else {
      p = &s->next;
    }
  }
}

static void cancel(session_t *s) {
  s->cancel = 1;
  s->watching = 0;
  vdidev_abort_owned(&s->cancel);
}

int serve_run(const serve_opts *o) {
  struct state st = {o, -1, -1, -1, -1, NULL, NULL, NULL, 0, 0};
  if (o->tls_cert) {
    char err[600];
    int mode = o->tls_mode >= 0 ? o->tls_mode : TDS_TLS_ON;
    st.tls = tds_tls_load(o->tls_cert, o->tls_key ? o->tls_key : o->tls_cert,
                          mode, err, sizeof err);
    if (!st.tls) {
      fprintf(stderr, "vdisql: %s\n", err);
      return 1;
    }
  }
  const char *pw = getenv("MSSQL_SA_PASSWORD");
  st.password = pw && *pw ? strdup(pw) : NULL;
  int lock = take_instance_lock(o->dir);
  if (lock < 0) return 1;
  /* Debris of restores whose vdisql was killed. */
  stale_sweep(o->dir, ".", ".db.restore-");

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, NULL); /* threads inherit it */
  st.sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  st.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct sockaddr_un a;
  socklen_t alen;
  st.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (st.sfd < 0 || st.efd < 0 || st.lfd < 0 ||
      wire_addr(o->dir, &a, &alen) != 0) {
    fprintf(stderr, "vdisql: cannot start the instance: %s\n", strerror(errno));
    return 1;
  }
  if (bind(st.lfd, (struct sockaddr *)&a, alen) != 0 ||
      listen(st.lfd, 64) != 0) {
    fprintf(stderr, "vdisql: cannot listen for instance '%s': %s%s\n", o->dir,
            strerror(errno),
            errno == EADDRINUSE ? " (another process holds the instance's "
                                  "address; no statement will be sent to it)"
                                : "");
    return 1;
  }
  char shown[300] = "";
  if (o->tds && (st.tfd = tds_listen(o->tds, shown, sizeof shown)) < 0)
    return 1;
  /* The log capture of every database in FULL (and the changed pages of
   * every database with a differential base), before any statement. */
  capture_init(o->dir);
  if (st.tfd >= 0)
    fprintf(stderr, "vdisql: TDS on %s%s%s\n", shown,
            tds_tls_mode(st.tls) == TDS_TLS_REQUIRED ? " (TLS required)"
            : tds_tls_mode(st.tls) == TDS_TLS_ON     ? " (TLS offered)"
                                                     : "",
            st.password ? "" : " (no MSSQL_SA_PASSWORD)");
  fprintf(stderr, "vdisql: instance '%s' ready (pid %ld)\n", o->dir,
          (long)getpid());

  int stopping = 0, aborted = 0;
  double deadline = 0;
  for (;;) {
    if (stopping && st.nsessions == 0) break;
    struct pollfd pf[MAX_SESSIONS + 4];
    session_t *who[MAX_SESSIONS + 4];
    nfds_t n = 0;
    pf[n++] = (struct pollfd){st.sfd, POLLIN, 0};
    pf[n++] = (struct pollfd){st.efd, POLLIN, 0};
    /* While stopping, neither listener is polled (both are closed). */
    pf[n++] = (struct pollfd){stopping ? -1 : st.lfd, POLLIN, 0};
    pf[n++] = (struct pollfd){stopping ? -1 : st.tfd, POLLIN, 0};
    nfds_t first = n;
    for (session_t *s = st.sessions; s && n < MAX_SESSIONS + 4; s = s->next)
      if (s->watching) {
        who[n] = s;
        pf[n++] = (struct pollfd){s->fd, POLLRDHUP, 0};
      }
    int timeout = -1;
    if (stopping && !aborted) {
      double left = deadline - now_s();
      timeout = left > 0 ? (int)(left * 1000) + 1 : 0;
    }
    /* Logins past their deadline are shut down; wake for the next one. */
    double now = now_s();
    for (session_t *s = st.sessions; s; s = s->next) {
      if (!s->tds || s->login_by == 0 ||
          __atomic_load_n(&s->logged_in, __ATOMIC_ACQUIRE)) {
        s->login_by = 0;
        continue;
      }
      if (now >= s->login_by) {
        fprintf(stderr, "vdisql: session %ld: no login within %d s; closing\n",
                s->id, LOGIN_DEADLINE);
        shutdown(s->fd, SHUT_RDWR);
        s->login_by = 0;
        continue;
      }
      int ms = (int)((s->login_by - now) * 1000) + 1;
      if (timeout < 0 || ms < timeout) timeout = ms;
    }
    int rc = poll(pf, n, timeout);
    if (rc < 0 && errno != EINTR) break;
    if (pf[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      (void)!read(st.sfd, &si, sizeof si);
      if (!stopping) {
        stopping = 1;
        deadline = now_s() + o->stop_timeout;
        close(st.lfd);
        st.lfd = -1;
        if (st.tfd >= 0) close(st.tfd);
        st.tfd = -1;
        /* TDS connections stay open between batches: end them after the
         * batch they run (shutting the read side wakes an idle one). */
        for (session_t *s = st.sessions; s; s = s->next) {
          int reading = 0;
          if (s->tds) {
            s->stop = 1;
            shutdown(s->fd, SHUT_RD);
          } else if (__atomic_compare_exchange_n(&s->running, &reading, 2, 0,
                                                 __ATOMIC_ACQ_REL,
                                                 __ATOMIC_ACQUIRE)) {
            /* Still reading its request, which may never come whole:
             * nothing has run, nothing will; its read ends now. */
            s->watching = 0;
            shutdown(s->fd, SHUT_RDWR);
          }
        }
        fprintf(stderr,
                "vdisql: stopping: %d session(s) running, waiting up to %d "
                "s\n",
                st.nsessions, o->stop_timeout);
      } else {
        deadline = 0; /* a second signal: abort now */
      }
    }
    /* Hang-ups first: reap() frees sessions that who[] still names. */
    for (nfds_t i = first; i < n; i++)
      if ((pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) &&
          !__atomic_load_n(&who[i]->done, __ATOMIC_ACQUIRE)) {
        fprintf(stderr, "vdisql: session %ld: the client hung up\n",
                who[i]->id);
        cancel(who[i]);
      } else if (pf[i].revents) {
        who[i]->watching = 0; /* ended: its client read the end and left */
      }
    if (pf[1].revents & POLLIN) reap(&st);
    if (!stopping && (pf[2].revents & POLLIN)) accept_one(&st);
    if (!stopping && (pf[3].revents & POLLIN)) accept_tds(&st);
    if (stopping && !aborted && st.nsessions > 0 && now_s() >= deadline) {
      aborted = 1;
      int k = vdidev_abort_owned(NULL);
      for (session_t *s = st.sessions; s; s = s->next)
        s->cancel = 1;
      fprintf(stderr,
              "vdisql: stop: aborted %d virtual device set(s); waiting for "
              "the sessions to end\n",
              k);
    }
  }
  capture_shutdown(); /* every committed frame copied, then closed */
  fprintf(stderr, "vdisql: instance '%s' stopped\n", o->dir);
  close(st.sfd);
  close(st.efd);
  close(lock);
  free((char *)st.password);
  tds_tls_ctx_free(st.tls);
  return 0;
}
