/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdstls.c - TLS of the TDS endpoint (see tdstls.h) over OpenSSL with two
 * memory BIOs: what arrives from the socket (or, during the handshake,
 * the payload of the client's PRELOGIN packets) is written into one, what
 * OpenSSL produces is taken out of the other and sent (during the
 * handshake, as the payload of our PRELOGIN packets).  So the socket is
 * read and written only here and in tds.c, never by OpenSSL.
 *
 * Two threads use a session at once while a batch runs: the session
 * thread writes the reply, the watcher reads (an attention).  A mutex
 * serializes their calls into OpenSSL; the watcher's wait for bytes on
 * the socket happens outside it.
 *
 * TLS 1.2 only, as SQL Server does under TDS 7.x (TLS 1.3 belongs to
 * TDS 8.0, where TLS comes before any TDS): the clients' handshake code
 * for 7.x switches to raw records when its handshake returns, which TLS
 * 1.3's post-handshake messages would not survive.
 */
#include "tdstls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct tds_tls_ctx {
  SSL_CTX *ctx;
  int mode;
};

struct tds_tls {
  SSL *ssl;
  BIO *in, *out; /* memory BIOs: to OpenSSL, from OpenSSL */
  tds_conn *c;
  tds_io io;
  pthread_mutex_t mu;
};

/* OpenSSL's first error as text; its reason code returned. */
static int ssl_error(char *buf, size_t n) {
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  snprintf(buf, n, "%s", r ? r : "unknown error");
  ERR_clear_error();
  return ERR_GET_REASON(e);
}

tds_tls_ctx *tds_tls_load(const char *cert, const char *key, int mode,
                          char *err, size_t errlen) {
  const char *files[2] = {cert, key};
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen(files[i], "re");
    if (!f) {
      snprintf(err, errlen, "%s '%s': %s", i ? "--tls-key" : "--tls-cert",
               files[i], strerror(errno));
      return NULL;
    }
    fclose(f);
  }
  tds_tls_ctx *x = calloc(1, sizeof *x);
  char why[256];
  if (!x || !(x->ctx = SSL_CTX_new(TLS_server_method()))) {
    snprintf(err, errlen, "TLS: out of memory");
    free(x);
    return NULL;
  }
  x->mode = mode;
  SSL_CTX_set_min_proto_version(x->ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(x->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(x->ctx, SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE |
                                  SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(x->ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(x->ctx, cert) != 1) {
    ssl_error(why, sizeof why);
    snprintf(err, errlen, "--tls-cert '%s': not a PEM certificate (%s)", cert,
             why);
  } else if (SSL_CTX_use_PrivateKey_file(x->ctx, key, SSL_FILETYPE_PEM) != 1) {
    if (ssl_error(why, sizeof why) == X509_R_KEY_VALUES_MISMATCH)
      snprintf(err, errlen,
               "--tls-key '%s' is not the key of the certificate '%s' (%s)",
               key, cert, why);
    else
      snprintf(err, errlen, "--tls-key '%s': not a PEM private key (%s)", key,
               why);
  } else if (SSL_CTX_check_private_key(x->ctx) != 1) {
    ssl_error(why, sizeof why);
    snprintf(err, errlen,
             "--tls-key '%s' is not the key of the certificate '%s' (%s)", key,
             cert, why);
  } else {
    return x;
  }
  SSL_CTX_free(x->ctx);
  free(x);
  return NULL;
}

void tds_tls_ctx_free(tds_tls_ctx *x) {
  if (!x) return;
  SSL_CTX_free(x->ctx);
  free(x);
}

int tds_tls_mode(const tds_tls_ctx *x) {
  return x ? x->mode : TDS_TLS_OFF;
}

int tds_tls_answer(int mode, int client, int *close) {
  *close = 0;
  if (client >= 0) client &= 0x7F; /* ENCRYPT_CLIENT_CERT: not offered */
  if (mode == TDS_TLS_OFF) {
    /* A client that requires encryption ends the connection itself. */
    return TDS_ENCRYPT_NOT_SUP;
  }
  int client_can = client != TDS_ENCRYPT_NOT_SUP && client >= 0;
  int client_wants = client == TDS_ENCRYPT_ON || client == TDS_ENCRYPT_REQ;
  if (mode == TDS_TLS_ON) {
    if (!client_can) return TDS_ENCRYPT_NOT_SUP;
    return client_wants ? TDS_ENCRYPT_ON : TDS_ENCRYPT_OFF;
  }
  /* TDS_TLS_REQUIRED (the server's ENCRYPT_ON in the table). */
  if (!client_can) {
    *close = 1;
    return TDS_ENCRYPT_REQ;
  }
  return client_wants ? TDS_ENCRYPT_ON : TDS_ENCRYPT_REQ;
}

/* Send what OpenSSL has produced straight on the socket. */
static int flush_raw(tds_tls *t) {
  char buf[16384];
  int k;
  while ((k = BIO_read(t->out, buf, sizeof buf)) > 0)
    if (tds_send_raw(t->c, buf, (size_t)k) != 0) return -1;
  return 0;
}

static long io_read(void *ctx, void *buf, size_t n) {
  tds_tls *t = ctx;
  char raw[16384];
  if (n > INT32_MAX) n = INT32_MAX;
  for (;;) {
    pthread_mutex_lock(&t->mu);
    ERR_clear_error();
    int r = SSL_read(t->ssl, buf, (int)n);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    int sent = flush_raw(t); /* an alert, if OpenSSL made one */
    pthread_mutex_unlock(&t->mu);
    if (r > 0) return r;
    if (e == SSL_ERROR_ZERO_RETURN) return 0; /* close_notify */
    if (e != SSL_ERROR_WANT_READ || sent != 0) {
      ERR_clear_error();
      errno = EPROTO;
      return -1;
    }
    ssize_t k = read(t->c->fd, raw, sizeof raw);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return k; /* end of file, or the read's error */
    pthread_mutex_lock(&t->mu);
    BIO_write(t->in, raw, (int)k);
    pthread_mutex_unlock(&t->mu);
  }
}

static int io_write(void *ctx, const void *buf, size_t n) {
  tds_tls *t = ctx;
  pthread_mutex_lock(&t->mu);
  ERR_clear_error();
  int r = SSL_write(t->ssl, buf, (int)n); /* memory BIO: all of it */
  int rc = r == (int)n ? flush_raw(t) : -1;
  pthread_mutex_unlock(&t->mu);
  return rc;
}

static int io_pending(void *ctx) {
  tds_tls *t = ctx;
  pthread_mutex_lock(&t->mu);
  int p = SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->in) > 0;
  pthread_mutex_unlock(&t->mu);
  return p;
}

tds_tls *tds_tls_new(tds_tls_ctx *x, tds_conn *c) {
  tds_tls *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->c = c;
  t->ssl = SSL_new(x->ctx);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) {
    SSL_free(t->ssl);
    BIO_free(t->in);
    BIO_free(t->out);
    free(t);
    return NULL;
  }
  BIO_set_mem_eof_return(t->in, -1); /* empty: "want more", not the end */
  SSL_set_bio(t->ssl, t->in, t->out);
  SSL_set_accept_state(t->ssl);
  pthread_mutex_init(&t->mu, NULL);
  t->io = (tds_io){t, io_read, io_write, io_pending};
  return t;
}

int tds_tls_handshake(tds_tls *t, long id) {
  tds_conn *c = t->c;
  char buf[16384], why[256];
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
      ssl_error(why, sizeof why);
      fprintf(stderr, "vdisql: session %ld: TLS handshake failed: %s\n", id,
              why);
    }
    /* Our flight (or the alert) as one PRELOGIN message. */
    int k, any = 0;
    c->out_type = TDS_PKT_PRELOGIN;
    while ((k = BIO_read(t->out, buf, sizeof buf)) > 0) {
      tds_put(c, buf, (size_t)k);
      any = 1;
    }
    int sent = any ? tds_flush(c, 1) : 0;
    c->out_type = TDS_PKT_REPLY;
    if (sent != 0) return -1;
    if (e == SSL_ERROR_NONE) break;
    if (e != SSL_ERROR_WANT_READ) return -1;
    uint8_t type, *d = NULL;
    size_t n;
    int rc = tds_read_message(c, &type, &d, &n);
    if (rc <= 0 || type != TDS_PKT_PRELOGIN) {
      fprintf(stderr, "vdisql: session %ld: TLS handshake: %s\n", id,
              rc == 0  ? "the client hung up"
              : rc < 0 ? "malformed packet"
                       : "not a PRELOGIN packet");
      free(d);
      return -1;
    }
    BIO_write(t->in, d, (int)n);
    free(d);
  }
  c->io = &t->io;
  return 0;
}

int tds_tls_detach(tds_tls *t) {
  if (t->c->io == &t->io) t->c->io = NULL;
  return io_pending(t) ? -1 : 0;
}

void tds_tls_free(tds_tls *t) {
  if (!t) return;
  if (t->c->io == &t->io) t->c->io = NULL;
  SSL_free(t->ssl); /* and the BIOs */
  pthread_mutex_destroy(&t->mu);
  free(t);
}

const char *tds_tls_describe(const tds_tls *t, char *buf, size_t n) {
  snprintf(buf, n, "%s %s", SSL_get_version(t->ssl),
           SSL_get_cipher_name(t->ssl));
  return buf;
}
