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
 * Encryption is not offered yet: PRELOGIN answers ENCRYPT_NOT_SUP, and a
 * client that requires encryption ends the connection itself.
 */
#include "session.h"

#include "exec.h"
#include "media.h"
#include "msg.h"
#include "script.h"
#include "tds.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* PRELOGIN option tokens (2.2.6.5). */
enum { PL_VERSION, PL_ENCRYPTION, PL_INSTOPT, PL_THREADID, PL_MARS };
#define PL_TERMINATOR   0xFF
#define ENCRYPT_NOT_SUP 0x02

/* What we answer as: SQL Server 2022's version, 16.0.1000. */
static const uint8_t server_version[4] = {16, 0, 0x03, 0xE8};

typedef struct tds_session {
  session_t *s;
  tds_conn c;
  session_vars vars;
  int errors; /* ERROR tokens in the current reply */
  char user[129];
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
static void sink_columns(void *ctx, int n, const char *const *names) {
  tds_colmetadata(&((tds_session *)ctx)->c, n, names);
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

/* 2.2.6.5: answer with our version, no encryption, no MARS. */
static int prelogin(tds_session *t, const uint8_t *d, size_t n) {
  int client_enc;
  if (tds_parse_prelogin(d, n, &client_enc) != 0) return -1;
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
  tds_u8(&t->c, ENCRYPT_NOT_SUP);
  tds_u8(&t->c, 0); /* INSTOPT: the instance matches */
  tds_u8(&t->c, 0); /* MARS off */
  if (client_enc == 1 || client_enc == 3)
    fprintf(stderr,
            "vdisql: session %ld: the client requires encryption, which "
            "this instance does not offer yet\n",
            t->s->id);
  return tds_flush(&t->c, 1);
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
  const char *want = t->s->password;
  char text[300];
  snprintf(text, sizeof text, "Login failed for user '%s'.", user);
  if (!want || strcasecmp(user, "sa") != 0 || strcmp(pass, want) != 0) {
    fprintf(stderr, "vdisql: session %ld: login failed for user '%s'%s\n",
            t->s->id, user,
            want ? "" : " (no MSSQL_SA_PASSWORD: every login is refused)");
    /* A client guessing passwords waits for each answer. */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return login_refused(t, 18456, text);
  }
  snprintf(t->vars.db, sizeof t->vars.db, "master");
  if (db[0]) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.db", t->s->dir, db);
    if (strcasecmp(db, "master") && strcasecmp(db, "msdb") &&
        access(path, F_OK) != 0) {
      char m[400];
      snprintf(m, sizeof m,
               "Cannot open database \"%s\" requested by the login. The "
               "login failed.",
               db);
      tds_message(&t->c, 1, 4060, 1, 11, m, t->s->server_name, 1);
      return login_refused(t, 18456, text);
    }
    snprintf(t->vars.db, sizeof t->vars.db, "%s", db);
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
    if (poll(pf, 2, -1) < 0 && errno != EINTR) break;
    if (pf[1].revents) break;
    if (!pf[0].revents) continue;
    uint8_t type = 0, status = 0;
    size_t len = 0;
    int r = tds_read_packet(s->fd, &type, &status, buf, sizeof buf, &len);
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
    pthread_join(w.thread, NULL);
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
    t->vars.spid = s->id;
    int ok = next_request(t, &type, &d, &n) && type == TDS_PKT_PRELOGIN &&
             prelogin(t, d, n) == 0;
    free(d);
    d = NULL;
    ok = ok && next_request(t, &type, &d, &n) && type == TDS_PKT_LOGIN7 &&
         login(t, d, n) == 0;
    free(d);
    d = NULL;
    while (ok && !s->stop && next_request(t, &type, &d, &n)) {
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
