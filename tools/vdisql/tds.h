/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tds.h - the Tabular Data Stream as Microsoft's open specification
 * [MS-TDS] defines it, server side, versions 7.1 to 7.4: packets (an 8-byte
 * header, messages split over packets of the negotiated size), and the
 * tokens a server sends (LOGINACK, ENVCHANGE, INFO, ERROR, COLMETADATA,
 * ROW, DONE).  Text travels as UCS-2/UTF-16LE; we convert from and to the
 * UTF-8 the rest of vdisql speaks.  Nothing here knows about statements.
 */
#ifndef VDISQL_TDS_H
#define VDISQL_TDS_H

#include <stddef.h>
#include <stdint.h>

#include "tdstypes.h"

/* Packet types (MS-TDS 2.2.3.1.1). */
enum {
  TDS_PKT_BATCH = 0x01,
  TDS_PKT_RPC = 0x03,
  TDS_PKT_REPLY = 0x04,
  TDS_PKT_ATTENTION = 0x06,
  TDS_PKT_TRANSACTION = 0x0E,
  TDS_PKT_LOGIN7 = 0x10,
  TDS_PKT_PRELOGIN = 0x12,
};
#define TDS_STATUS_EOM    0x01
#define TDS_STATUS_IGNORE 0x02 /* with EOM: the client gave up the message */

/* TDS versions as LOGIN7 and LOGINACK carry them. */
#define TDS_V71  0x71000001u
#define TDS_V72  0x72090002u
#define TDS_V73A 0x730A0003u
#define TDS_V73B 0x730B0003u
#define TDS_V74  0x74000004u

/* Tokens (MS-TDS 2.2.7). */
enum {
  TDS_TOK_COLMETADATA = 0x81,
  TDS_TOK_ERROR = 0xAA,
  TDS_TOK_INFO = 0xAB,
  TDS_TOK_LOGINACK = 0xAD,
  TDS_TOK_ROW = 0xD1,
  TDS_TOK_ENVCHANGE = 0xE3,
  TDS_TOK_DONE = 0xFD,
  TDS_TOK_DONEPROC = 0xFE,
  TDS_TOK_DONEINPROC = 0xFF,
};
/* DONE status bits. */
#define TDS_DONE_MORE  0x0001
#define TDS_DONE_ERROR 0x0002
#define TDS_DONE_COUNT 0x0010
#define TDS_DONE_ATTN  0x0020

/* The largest request we take: a batch of text, a login. */
#define TDS_MAX_MESSAGE (16u << 20)
/* ... and before the login: PRELOGIN, the client's TLS flights and LOGIN7
 * are a few kB, so a connection nobody has vouched for cannot make us
 * hold megabytes (tens of them are let in at once). */
#define TDS_MAX_LOGIN_MESSAGE (128u << 10)

/* How a connection's bytes travel: by default plain on the socket; with
 * TLS (tdstls.h) through these.  read and write work as read(2) and a
 * whole-buffer send (0 or -1); pending says whether bytes already read
 * from the socket wait inside (a poll of the socket would not show them). */
typedef struct tds_io {
  void *ctx;
  long (*read)(void *ctx, void *buf, size_t n);
  int (*write)(void *ctx, const void *buf, size_t n);
  int (*pending)(void *ctx);
} tds_io;

#define TDS_MAX_COLS 256 /* typed; later columns are sent as NVARCHAR */

typedef struct tds_conn {
  int fd;
  const tds_io *io;     /* NULL: plain bytes on fd */
  uint8_t out_type;     /* of the packets we send: TDS_PKT_REPLY */
  uint32_t version;     /* agreed at login; TDS_V74 before */
  uint32_t packet_size; /* agreed at login; 4096 before */
  uint8_t *out;         /* the packet being filled, header included */
  size_t nout;
  int write_failed;     /* the client went away: later writes are dropped */
  volatile int *cancel; /* the session's cancel flag, or NULL */
  uint8_t packet_id;    /* of the last packet sent */
  int ncols;            /* the current result set's columns, for its rows */
  int ignored;          /* the last message read ended with IGNORE */
  size_t max_message;   /* of a request: TDS_MAX_LOGIN_MESSAGE until the
                           login, then TDS_MAX_MESSAGE */
  tds_coltype cols[TDS_MAX_COLS];
} tds_conn;

/** A connection on @p fd.  0, or -1 if out of memory. */
int tds_init(tds_conn *c, int fd);
void tds_free(tds_conn *c);
/** Use @p size for the packets we send from now on (512..32767). */
int tds_set_packet_size(tds_conn *c, uint32_t size);

/** Read one packet's header and payload (at most @p cap bytes) into @p buf,
 * *len bytes (an ATTENTION has none).  @return 1, 0 at end of file, -1 on
 * a read error or a malformed packet (errno EPROTO). */
int tds_read_packet(tds_conn *c, uint8_t *type, uint8_t *status, uint8_t *buf,
                    size_t cap, size_t *len);
/** Read a whole message (packets until the end-of-message bit, all of one
 * type, at most c->max_message bytes) into malloc'd *data, *len bytes;
 * c->ignored says whether its last packet had IGNORE (to be dropped).
 * @return 1, 0 at end of file, -1 on error (errno EPROTO). */
int tds_read_message(tds_conn *c, uint8_t *type, uint8_t **data, size_t *len);

/* Building a reply: tokens are appended to the current packet, which is
 * sent whenever it is full; tds_flush() sends what is there. */
void tds_put(tds_conn *c, const void *p, size_t n);
void tds_u8(tds_conn *c, uint8_t v);
void tds_u16(tds_conn *c, uint16_t v);
void tds_u32(tds_conn *c, uint32_t v);
void tds_u64(tds_conn *c, uint64_t v);
/** Send the current packet; with @p eom it ends the reply message.  A
 * packet without it lets the client see what the statement has said so
 * far (progress) while the statement goes on. */
int tds_flush(tds_conn *c, int eom);
/** Send @p n bytes as they are on the socket (all of them: 0, or -1).  A
 * write the client does not take within a second fails once *cancel is
 * set (the instance stops), so a client that never reads cannot hold the
 * session for ever. */
int tds_send_raw(tds_conn *c, const void *p, size_t n);
/** Whether bytes of the next request already wait inside the connection's
 * I/O layer (a poll of fd would not see them). */
int tds_pending(const tds_conn *c);

/** UTF-8 to UTF-16LE: bytes written to @p out (at most @p cap); invalid
 * bytes become U+FFFD. */
size_t tds_utf16(const char *s, uint8_t *out, size_t cap);
/** UTF-16LE (@p nchars code units) to NUL-terminated UTF-8 in @p out. */
void tds_utf8(const uint8_t *in, size_t nchars, char *out, size_t cap);

/* Requests.  The parsers trust nothing: every offset and length is
 * checked against the message, every string ends inside its buffer. */

/** PRELOGIN (2.2.6.5): the client's ENCRYPTION byte in *encryption (-1 if
 * absent).  0, or -1 if malformed. */
int tds_parse_prelogin(const uint8_t *d, size_t n, int *encryption);

/* A LOGIN7 string is at most 128 UTF-16 units, up to 384 bytes of UTF-8
 * (3 a unit; a surrogate pair's 4 for 2): every one fits whole, so none
 * is cut (a password cut to its first 128 bytes would let a longer, wrong
 * one match the login's). */
#define TDS_LOGIN_TEXT (3 * 128 + 1)
typedef struct tds_login {
  uint32_t version, packet_size;
  char user[TDS_LOGIN_TEXT], password[TDS_LOGIN_TEXT], app[TDS_LOGIN_TEXT],
      database[TDS_LOGIN_TEXT];
} tds_login;
/** LOGIN7 (2.2.6.4), the password's obfuscation undone.  0, or -1 if
 * malformed. */
int tds_parse_login7(const uint8_t *d, size_t n, tds_login *out);

/** The text of an SQL_BATCH (2.2.6.7) as NUL-terminated UTF-8, malloc'd
 * (ALL_HEADERS skipped for 7.2 on).  NULL if malformed or no memory. */
char *tds_batch_text(const tds_conn *c, const uint8_t *d, size_t n);

/* Tokens. */
void tds_envchange(tds_conn *c, uint8_t type, const char *nv, const char *ov);
void tds_envchange_collation(tds_conn *c);
void tds_message(tds_conn *c, int error, int num, int state, int level,
                 const char *text, const char *server, int line);
void tds_loginack(tds_conn *c, const char *prog, const uint8_t ver[4]);
void tds_done(tds_conn *c, uint8_t token, uint16_t status, uint16_t curcmd,
              uint64_t rows);
/** COLMETADATA of @p n NVARCHAR(4000) columns (NULL allowed). */
void tds_colmetadata(tds_conn *c, int n, const char *const *names,
                     const char *const *types);
/** ROW of @p n values (NULL = SQL NULL), longer ones cut at 4000. */
void tds_row(tds_conn *c, int n, const char *const *vals);

#endif
