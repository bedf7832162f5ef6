/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdstls.h - TLS for the TDS endpoint as [MS-TDS] 7.x does it: the
 * PRELOGIN answer says whether to encrypt (ENCRYPTION option), the TLS
 * handshake then travels inside TDS packets of type PRELOGIN (0x12), and
 * once it is done TLS records go straight on the socket: every byte after
 * it (ENCRYPT_ON, ENCRYPT_REQ), or only the LOGIN7 message, after which
 * the connection is plain TDS again (ENCRYPT_OFF).  OpenSSL does all of
 * the cryptography; we only move its bytes (memory BIOs).
 */
#ifndef VDISQL_TDSTLS_H
#define VDISQL_TDSTLS_H

#include "tds.h"

#include <stddef.h>

/* --tls-mode: what the instance offers (SQL Server's ForceEncryption is
 * TDS_TLS_REQUIRED). */
enum { TDS_TLS_OFF, TDS_TLS_ON, TDS_TLS_REQUIRED };

/* PRELOGIN ENCRYPTION values (2.2.6.5). */
enum {
  TDS_ENCRYPT_OFF = 0,
  TDS_ENCRYPT_ON = 1,
  TDS_ENCRYPT_NOT_SUP = 2,
  TDS_ENCRYPT_REQ = 3,
};

typedef struct tds_tls_ctx tds_tls_ctx;
typedef struct tds_tls tds_tls;

/** The server's certificate (chain) and key from PEM files, checked to
 * match.  NULL after writing one line saying why into @p err. */
tds_tls_ctx *tds_tls_load(const char *cert, const char *key, int mode,
                          char *err, size_t errlen);
void tds_tls_ctx_free(tds_tls_ctx *x);
/** TDS_TLS_*; TDS_TLS_OFF for NULL (no certificate). */
int tds_tls_mode(const tds_tls_ctx *x);

/** The server's PRELOGIN ENCRYPTION answer to the client's @p client
 * value (-1: the client sent none) under @p mode, as the table of
 * [MS-TDS] 2.2.6.5 has it.  *close is set when the connection ends after
 * the answer (neither side can encrypt as the other requires). */
int tds_tls_answer(int mode, int client, int *close);

/** A TLS session for @p c (NULL if out of memory).  tds_tls_handshake()
 * runs the handshake in PRELOGIN packets; on success the connection's
 * bytes go through TLS (c->io) until tds_tls_detach(). */
tds_tls *tds_tls_new(tds_tls_ctx *x, tds_conn *c);
/** 0 when the handshake is done; -1 after logging why (@p id: the
 * session's, for the log). */
int tds_tls_handshake(tds_tls *t, long id);
/** Back to plain bytes (ENCRYPT_OFF after the login): c->io cleared,
 * nothing sent.  -1 if bytes of TLS records were left unread. */
int tds_tls_detach(tds_tls *t);
/** Free the session (c->io cleared if it was ours). */
void tds_tls_free(tds_tls *t);
/** "TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384", for the log. */
const char *tds_tls_describe(const tds_tls *t, char *buf, size_t n);

#endif
