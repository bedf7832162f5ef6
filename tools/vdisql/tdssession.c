/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdssession.c - one TDS connection of a running instance (see session.h):
 * PRELOGIN, LOGIN7 with SQL authentication, then SQL batches run by the
 * same executor as the instance's local sessions, their messages and
 * result sets written as tokens (an out_sink) as they happen.
 *
 * While a batch runs, a watcher thread reads the connection: an ATTENTION
 * packet (the client's cancel) or a hang-up sets the session's cancel
 * flag and aborts the virtual device sets the session opened, so a
 * running BACKUP or RESTORE ends at once with its messages; the reply
 * then ends with DONE carrying DONE_ATTN, as [MS-TDS] 2.2.1.7 asks.
 *
 * Encryption (tdstls.h): with a certificate, PRELOGIN's answer follows
 * [MS-TDS]'s table for --tls-mode; the TLS handshake then runs inside
 * PRELOGIN packets, and the connection's bytes go through TLS, all of
 * them, or (ENCRYPT_OFF) only the LOGIN7 message.  Without a certificate
 * the answer is ENCRYPT_NOT_SUP, and a client that requires encryption
 * ends the connection itself.
 *
 * A connection that has not logged in within serve.c's deadline is shut
 * down there (its reads and writes here fail), so connections that never
 * log in cannot hold their slots; serve.c also caps how many may be
 * logging in at once.
 */
#include "session.h"

#include "exec.h"
#include "logins.h"
#include "media.h"
#include "msg.h"
#include "script.h"
#include "tds.h"
#include "tdstls.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* PRELOGIN option tokens (2.2.6.5). */
enum { PL_VERSION, PL_ENCRYPTION, PL_INSTOPT, PL_THREADID, PL_MARS };
#define PL_TERMINATOR 0xFF

/* What we answer as: SQL Server 2022's version, 16.0.1000. */
static const uint8_t server_version[4] = {16, 0, 0x03, 0xE8};

typedef struct tds_session {
  session_t *s;
  tds_conn c;
  session_vars vars;
  int errors; /* ERROR tokens in the current reply */
  char user[TDS_LOGIN_TEXT];
  tds_tls *tls; /* while TLS carries the connection */
} tds_session;

/* The out_sink: tokens instead of text. */
static void sink_message(void *ctx, int num, int level, int line,
                         const char *text) {
  tds_session *t = ctx;
  int error = level > 10;
  if (error) t->errors++;
  tds_message(&t->c, error, num, 1, level, text, out_server(), line);
  /* Progress and errors reach the client now, not at the batch's end. */
  tds_flush(&t->c, 0);
}
static void sink_columns(void *ctx, int n, const char *const *names,
                         const char *const *types) {
  tds_colmetadata(&((tds_session *)ctx)->c, n, names, types);
}
static void sink_row(void *ctx, int n, const char *const *vals) {
  tds_row(&((tds_session *)ctx)->c, n, vals);
}
static void sink_rows_done(void *ctx, long rows) {
  tds_done(&((tds_session *)ctx)->c, TDS_TOK_DONE,
           TDS_DONE_MORE | TDS_DONE_COUNT, 0xC1 /* SELECT */, (uint64_t)rows);
}

/* Read the next request, or 0 at the end (EOF, a protocol error). */
static int next_request(tds_session *t, uint8_t *type, uint8_t **data,
                        size_t *len) {
  int rc = tds_read_message(&t->c, type, data, len);
  if (rc < 0)
    fprintf(stderr, "vdisql: session %ld: TDS: %s; closing\n", t->s->id,
            errno == EPROTO ? "malformed packet" : strerror(errno));
  return rc > 0;
}

/* 2.2.6.5: answer with our version, the encryption agreed (*enc), no
 * MARS.  -1 when the connection ends here. */
static int prelogin(tds_session *t, const uint8_t *d, size_t n, int *enc) {
  int client_enc, close_after;
  if (tds_parse_prelogin(d, n, &client_enc) != 0) return -1;
  *enc = tds_tls_answer(tds_tls_mode(t->s->tls), client_enc, &close_after);
  static const uint8_t opts[] = {PL_VERSION, PL_ENCRYPTION, PL_INSTOPT,
                                 PL_THREADID, PL_MARS};
  static const uint8_t lens[] = {6, 1, 1, 0, 1};
  uint16_t off = 5 * 5 + 1;
  for (int i = 0; i < 5; i++) {
    uint8_t h[5] = {opts[i], (uint8_t)(off >> 8), (uint8_t)off, 0, lens[i]};
    tds_put(&t->c, h, 5);
    off = (uint16_t)(off + lens[i]);
  }
  tds_u8(&t->c, PL_TERMINATOR);
  tds_put(&t->c, server_version, 4);
  tds_u16(&t->c, 0); /* sub-build */
  tds_u8(&t->c, (uint8_t)*enc);
  tds_u8(&t->c, 0); /* INSTOPT: the instance matches */
  tds_u8(&t->c, 0); /* MARS off */
  int client_wants =
      client_enc >= 0 && ((client_enc & 0x7F) == TDS_ENCRYPT_ON ||
                          (client_enc & 0x7F) == TDS_ENCRYPT_REQ);
  if (client_wants && *enc == TDS_ENCRYPT_NOT_SUP)
    fprintf(stderr,
            "vdisql: session %ld: the client requires encryption, which "
            "this instance does not offer (no --tls-cert, or --tls-mode "
            "off)\n",
            t->s->id);
  if (close_after)
    fprintf(stderr,
            "vdisql: session %ld: the client cannot encrypt, which "
            "--tls-mode required demands; closing\n",
            t->s->id);
  int rc = tds_flush(&t->c, 1);
  return rc == 0 && !close_after ? 0 : -1;
}

/* The TLS handshake, when PRELOGIN agreed on encryption. */
static int start_tls(tds_session *t, int enc) {
  if (enc == TDS_ENCRYPT_NOT_SUP) return 0;
  t->tls = tds_tls_new(t->s->tls, &t->c);
  if (!t->tls || tds_tls_handshake(t->tls, t->s->id) != 0) return -1;
  char how[128];
  fprintf(stderr, "vdisql: session %ld: TLS (%s)%s\n", t->s->id,
          tds_tls_describe(t->tls, how, sizeof how),
          enc == TDS_ENCRYPT_OFF ? ", for the login only" : "");
  return 0;
}

/* ENCRYPT_OFF: the LOGIN7 message came through TLS, the rest is plain. */
static int end_login_tls(tds_session *t, int enc) {
  if (!t->tls || enc != TDS_ENCRYPT_OFF) return 0;
  int rc = tds_tls_detach(t->tls);
  tds_tls_free(t->tls);
  t->tls = NULL;
  return rc;
}

static int login_refused(tds_session *t, int num, const char *text) {
  tds_message(&t->c, 1, num, 1, 14, text, t->s->server_name, 1);
  tds_done(&t->c, TDS_TOK_DONE, TDS_DONE_ERROR, 0, 0);
  tds_flush(&t->c, 1);
  return -1;
}

/* 2.2.6.4 LOGIN7.  0 when the client is in. */
static int login(tds_session *t, const uint8_t *d, size_t n) {
  tds_login l;
  if (tds_parse_login7(d, n, &l) != 0) return -1;
  uint32_t ver = l.version, psize = l.packet_size;
  const char *user = l.user, *pass = l.password, *db = l.database;
  const char *app = l.app;
  /* 7.1 to 7.4; a newer client gets 7.4, an older one is refused. */
  if (ver >= TDS_V74 || (ver & 0xFF000000u) > (TDS_V74 & 0xFF000000u))
    t->c.version = TDS_V74;
  else if (ver == TDS_V73A || ver == TDS_V73B || ver == TDS_V72 ||
           ver == TDS_V71)
    t->c.version = ver;
  else
    return login_refused(t, 18452,
                         "Login failed. This server speaks TDS 7.1 to 7.4.");
  char text[TDS_LOGIN_TEXT + 32];
  snprintf(text, sizeof text, "Login failed for user '%s'.", user);
  int good = logins_check(t->s->dir, t->s->password, user, pass);
  explicit_bzero(l.password, sizeof l.password);
  if (!good) {
    fprintf(stderr, "vdisql: session %ld: login failed for user '%s'\n",
            t->s->id, user);
    /* A client guessing passwords waits for each answer. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return login_refused(t, 18456, text);
  }
  snprintf(t->vars.db, sizeof t->vars.db, "master");
  if (db[0]) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.db", t->s->dir, db);
    /* A name longer than the session keeps is not cut to another one.
     * The system databases are there, as for USE (probe.c). */
    if (strlen(db) >= sizeof t->vars.db ||
        (strcasecmp(db, "master") && strcasecmp(db, "msdb") &&
         strcasecmp(db, "model") && strcasecmp(db, "tempdb") &&
         access(path, F_OK) != 0)) {
      char m[TDS_LOGIN_TEXT + 80];
      snprintf(m, sizeof m,
               "Cannot open database \"%s\" requested by the login. The "
               "login failed.",
               db);
      tds_message(&t->c, 1, 4060, 1, 11, m, t->s->server_name, 1);
      return login_refused(t, 18456, text);
    }
    memcpy(t->vars.db, db, strlen(db) + 1); /* it fits: checked above */
  }
  snprintf(t->user, sizeof t->user, "%s", user);
  fprintf(stderr, "vdisql: session %ld: TDS login '%s' (%s), TDS %x\n",
          t->s->id, user, app[0] ? app : "no application name",
          (unsigned)t->c.version);
  tds_envchange(&t->c, 1, t->vars.db, "master");
  char m[300];
  snprintf(m, sizeof m, "Changed database context to '%s'.", t->vars.db);
  tds_message(&t->c, 0, 5701, 2, 0, m, t->s->server_name, 1);
  tds_envchange_collation(&t->c);
  tds_envchange(&t->c, 2, "us_english", "");
  tds_message(&t->c, 0, 5703, 1, 0, "Changed language setting to us_english.",
              t->s->server_name, 1);
  tds_loginack(&t->c, "Microsoft SQL Server", server_version);
  uint32_t size = psize >= 512 && psize <= 32767 ? psize : 4096;
  char ps[16], old[16];
  snprintf(ps, sizeof ps, "%u", size);
  snprintf(old, sizeof old, "%u", t->c.packet_size);
  tds_envchange(&t->c, 4, ps, old);
  tds_done(&t->c, TDS_TOK_DONE, 0, 0, 0);
  int rc = tds_flush(&t->c, 1);
  tds_set_packet_size(&t->c, size);
  return rc;
}

/* The watcher of a running batch. */
struct watch {
  tds_session *t;
  int stop_fd;
  int attention;
  pthread_t thread;
};

static void *watch_main(void *arg) {
  struct watch *w = arg;
  session_t *s = w->t->s;
  uint8_t buf[4096];
  for (;;) {
    struct pollfd pf[2] = {{s->fd, POLLIN, 0}, {w->stop_fd, POLLIN, 0}};
    /* Bytes the TLS layer read already are not on the socket any more. */
    if (!tds_pending(&w->t->c)) {
      if (poll(pf, 2, -1) < 0 && errno != EINTR) break;
      if (pf[1].revents) break;
      if (!pf[0].revents) continue;
    }
    uint8_t type = 0, status = 0;
    size_t len = 0;
    int r = tds_read_packet(&w->t->c, &type, &status, buf, sizeof buf, &len);
    if (r == 1 && type == TDS_PKT_ATTENTION) {
      w->attention = 1; /* an attention packet has no payload */
      fprintf(stderr, "vdisql: session %ld: attention (cancel)\n", s->id);
    } else if (r == 0 && s->stop) {
      break; /* our own shutdown at a stop: let the batch finish */
    } else {
      /* A hang-up, garbage, or a request while one runs (without MARS,
       * a protocol error): this session's statement ends, no other. */
      fprintf(stderr, "vdisql: session %ld: the client %s\n", s->id,
              r == 0 ? "hung up" : "broke the protocol");
    }
    s->cancel = 1;
    vdidev_abort_owned(&s->cancel);
    break;
  }
  return NULL;
}

static int run_batch(tds_session *t, const uint8_t *d, size_t n) {
  session_t *s = t->s;
  char *text = tds_batch_text(&t->c, d, n);
  if (!text) return -1;
  session_log_script(s->id, text);
  struct watch w = {t, eventfd(0, EFD_CLOEXEC), 0, 0};
  int watching =
      w.stop_fd >= 0 && pthread_create(&w.thread, NULL, watch_main, &w) == 0;
  out_sink sink = {t, sink_message, sink_columns, sink_row, sink_rows_done};
  out_bind_sink(&sink, s->server_name);
  exec_ctx cx = {s->dir,     s->server_name, "\t",          1,
                 &s->cancel, &t->vars,       s->backup_dirs};
  t->errors = 0;
  script_run(&cx, text, 0);
  out_bind_sink(NULL, NULL);
  free(text);
  if (watching) {
    uint64_t one = 1;
    (void)!write(w.stop_fd, &one, sizeof one);
    /* A watcher inside a packet the client never finishes (part of one
     * sent while the batch ran) would keep us here for ever: after a
     * second, the connection is cut, which ends its read (a protocol
     * error: the session ends). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    if (pthread_timedjoin_np(w.thread, NULL, &ts) != 0) {
      shutdown(s->fd, SHUT_RDWR);
      pthread_join(w.thread, NULL);
    }
  }
  if (w.stop_fd >= 0) close(w.stop_fd);
  tds_done(&t->c, TDS_TOK_DONE, t->errors ? TDS_DONE_ERROR : 0, 0, 0);
  if (w.attention) {
    tds_done(&t->c, TDS_TOK_DONE, TDS_DONE_ATTN, 0, 0);
    s->cancel = 0; /* the cancel was for this batch only */
  }
  return tds_flush(&t->c, 1) == 0 && !s->cancel ? 0 : -1;
}

void *tds_session_main(void *arg) {
  session_t *s = arg;
  tds_session *t = calloc(1, sizeof *t);
  uint8_t type, *d = NULL;
  size_t n;
  vdidev_set_owner(&s->cancel);
  if (t && tds_init(&t->c, s->fd) == 0) {
    t->s = s;
    t->c.cancel = &s->cancel;
    t->vars.spid = s->id;
    int enc = TDS_ENCRYPT_NOT_SUP;
    int ok = next_request(t, &type, &d, &n) && type == TDS_PKT_PRELOGIN &&
             prelogin(t, d, n, &enc) == 0 && start_tls(t, enc) == 0;
    free(d);
    d = NULL;
    ok = ok && next_request(t, &type, &d, &n) && type == TDS_PKT_LOGIN7 &&
         end_login_tls(t, enc) == 0 && login(t, d, n) == 0;
    free(d);
    d = NULL;
    if (ok) {
      __atomic_store_n(&s->logged_in, 1, __ATOMIC_RELEASE);
      t->c.max_message = TDS_MAX_MESSAGE; /* batches may be large */
    }
    while (ok && !s->stop && next_request(t, &type, &d, &n)) {
      if (t->c.ignored) { /* 2.2.3.1.2: cut short by the client, not run */
        free(d);
        d = NULL;
        continue;
      }
      if (type != TDS_PKT_BATCH)
        fprintf(stderr, "vdisql: session %ld: TDS request type %u\n", s->id,
                (unsigned)type);
      if (type == TDS_PKT_BATCH) {
        ok = run_batch(t, d, n) == 0;
      } else if (type == TDS_PKT_ATTENTION) {
        tds_done(&t->c, TDS_TOK_DONE, TDS_DONE_ATTN, 0, 0); /* nothing ran */
        ok = tds_flush(&t->c, 1) == 0;
      } else {
        tds_message(&t->c, 1, 4073, 1, 16,
                    "This instance takes SQL batches only: remote procedure "
                    "calls and transaction manager requests are not "
                    "supported.",
                    s->server_name, 1);
        tds_done(&t->c, TDS_TOK_DONE, TDS_DONE_ERROR, 0, 0);
        ok = tds_flush(&t->c, 1) == 0;
      }
      free(d);
      d = NULL;
    }
    tds_tls_free(t->tls);
    tds_free(&t->c);
  }
  free(t);
  fprintf(stderr, "vdisql: session %ld ended\n", s->id);
  vdidev_set_owner(NULL);
  __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  (void)!write(s->notify_fd, &one, sizeof one);
  return NULL;
}
