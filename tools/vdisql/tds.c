/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tds.c - TDS packets and tokens, server side (see tds.h).  Field layouts
 * follow [MS-TDS]; the section of each is named where it is written.
 */
#include "tds.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR        8
#define MAX_PACKET 32767u

int tds_init(tds_conn *c, int fd) {
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->version = TDS_V74;
  c->out_type = TDS_PKT_REPLY;
  c->packet_size = 4096;
  c->out = malloc(MAX_PACKET);
  c->nout = HDR;
  c->max_message = TDS_MAX_LOGIN_MESSAGE;
  return c->out ? 0 : -1;
}

void tds_free(tds_conn *c) {
  free(c->out);
  c->out = NULL;
}

int tds_set_packet_size(tds_conn *c, uint32_t size) {
  if (size < 512 || size > MAX_PACKET) return -1;
  /* What is buffered already fits: the buffer holds the largest packet. */
  c->packet_size = size;
  return 0;
}

static int read_full(tds_conn *c, uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = c->io ? c->io->read(c->io->ctx, p + got, n - got)
                      : read(c->fd, p + got, n - got);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) return got == 0 ? 0 : -1; /* cut inside a packet */
    got += (size_t)k;
  }
  return 1;
}

int tds_read_packet(tds_conn *c, uint8_t *type, uint8_t *status, uint8_t *buf,
                    size_t cap, size_t *plen) {
  uint8_t h[HDR];
  int r = read_full(c, h, HDR);
  if (r <= 0) return r;
  size_t len = (size_t)h[2] << 8 | h[3]; /* 2.2.3.1.3: big-endian */
  if (len < HDR || len - HDR > cap) {
    errno = EPROTO;
    return -1;
  }
  *type = h[0];
  *status = h[1];
  if (len > HDR && read_full(c, buf, len - HDR) != 1) {
    errno = EPROTO;
    return -1;
  }
  *plen = len - HDR;
  return 1;
}

int tds_read_message(tds_conn *c, uint8_t *type, uint8_t **data, size_t *len) {
  size_t n = 0, cap = 0;
  uint8_t *buf = NULL, t = 0, st = 0, first = 0;
  uint8_t *pkt = malloc(MAX_PACKET);
  int rc = -1;
  *data = NULL;
  *len = 0;
  if (!pkt) return -1;
  for (;;) {
    size_t k;
    int r = tds_read_packet(c, &t, &st, pkt, MAX_PACKET, &k);
    if (r == 0 && !first) {
      rc = 0; /* the client closed between messages */
      break;
    }
    if (r <= 0) {
      if (r == 0) errno = EPROTO; /* closed inside a message */
      break;
    }
    if (first && t != *type) {
      errno = EPROTO; /* one message, one type */
      break;
    }
    *type = t;
    first = 1;
    if (n + k > c->max_message) {
      errno = EPROTO;
      break;
    }
    if (n + k > cap) {
      cap = (n + k) * 2;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    if (k) memcpy(buf + n, pkt, k);
    n += k;
    if (st & TDS_STATUS_EOM) {
      c->ignored = (st & TDS_STATUS_IGNORE) != 0;
      *data = buf ? buf : malloc(1); /* an attention has no payload */
      buf = NULL;
      *len = n;
      rc = *data ? 1 : -1;
      break;
    }
  }
  free(buf);
  free(pkt);
  return rc;
}

static int send_packet(tds_conn *c, int eom) {
  size_t len = c->nout;
  uint8_t *h = c->out;
  h[0] = c->out_type;
  h[1] = eom ? TDS_STATUS_EOM : 0;
  h[2] = (uint8_t)(len >> 8);
  h[3] = (uint8_t)len;
  h[4] = h[5] = 0;       /* SPID: we give none */
  h[6] = ++c->packet_id; /* 2.2.3.1.5: increments, wrapping at 255 */
  h[7] = 0;
  c->nout = HDR;
  if (c->write_failed) return -1;
  if (c->io) {
    if (c->io->write(c->io->ctx, h, len) == 0) return 0;
    c->write_failed = 1;
    return -1;
  }
  if (tds_send_raw(c, h, len) == 0) return 0;
  c->write_failed = 1;
  return -1;
}

int tds_send_raw(tds_conn *c, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t off = 0; off < n;) {
    ssize_t k = send(c->fd, b + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* A client that does not read would hold us here for ever (and an
       * instance's stop with us): once the session is cancelled, a
       * connection that takes nothing for a second is given up. */
      struct pollfd pf = {c->fd, POLLOUT, 0};
      int r = poll(&pf, 1, 1000);
      if (r < 0 && errno != EINTR) return -1;
      if (r == 0 && c->cancel && *c->cancel) return -1;
      continue;
    }
    if (k <= 0) return -1;
    off += (size_t)k;
  }
  return 0;
}

void tds_put(tds_conn *c, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    if (c->nout == c->packet_size) send_packet(c, 0);
    size_t room = c->packet_size - c->nout, k = n < room ? n : room;
    memcpy(c->out + c->nout, b, k);
    c->nout += k;
    b += k;
    n -= k;
  }
}

void tds_u8(tds_conn *c, uint8_t v) {
  tds_put(c, &v, 1);
}
void tds_u16(tds_conn *c, uint16_t v) {
  uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  tds_put(c, b, 2);
}
void tds_u32(tds_conn *c, uint32_t v) {
  uint8_t b[4];
  for (int i = 0; i < 4; i++)
    b[i] = (uint8_t)(v >> (8 * i));
  tds_put(c, b, 4);
}
void tds_u64(tds_conn *c, uint64_t v) {
  tds_u32(c, (uint32_t)v);
  tds_u32(c, (uint32_t)(v >> 32));
}

int tds_flush(tds_conn *c, int eom) {
  if (!eom && c->nout == HDR) return 0;
  return send_packet(c, eom);
}

int tds_pending(const tds_conn *c) {
  return c->io && c->io->pending && c->io->pending(c->io->ctx);
}

/* One code point from UTF-8 at *s (advanced); U+FFFD for a bad byte. */
static uint32_t utf8_next(const unsigned char **s) {
  const unsigned char *p = *s;
  uint32_t cp;
  int n;
  if (p[0] < 0x80) {
    *s = p + 1;
    return p[0];
  }
  if ((p[0] & 0xE0) == 0xC0)
    cp = p[0] & 0x1F, n = 1;
  else if ((p[0] & 0xF0) == 0xE0)
    cp = p[0] & 0x0F, n = 2;
  else if ((p[0] & 0xF8) == 0xF0)
    cp = p[0] & 0x07, n = 3;
  else {
    *s = p + 1;
    return 0xFFFD;
  }
  for (int i = 1; i <= n; i++) {
    if ((p[i] & 0xC0) != 0x80) {
      *s = p + i;
      return 0xFFFD;
    }
    cp = cp << 6 | (p[i] & 0x3F);
  }
  *s = p + n + 1;
  return cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0xFFFD : cp;
}

size_t tds_utf16(const char *s, uint8_t *out, size_t cap) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = 0;
  while (*p) {
    uint32_t cp = utf8_next(&p);
    uint16_t u[2];
    int k = 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u[0] = (uint16_t)(0xD800 | cp >> 10);
      u[1] = (uint16_t)(0xDC00 | (cp & 0x3FF));
      k = 2;
    } else {
      u[0] = (uint16_t)cp;
    }
    if (n + 2u * k > cap) break;
    for (int i = 0; i < k; i++) {
      out[n++] = (uint8_t)u[i];
      out[n++] = (uint8_t)(u[i] >> 8);
    }
  }
  return n;
}

void tds_utf8(const uint8_t *in, size_t nchars, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < nchars; i++) {
    uint32_t cp = (uint32_t)in[2 * i] | (uint32_t)in[2 * i + 1] << 8;
    if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < nchars) {
      uint32_t lo = (uint32_t)in[2 * i + 2] | (uint32_t)in[2 * i + 3] << 8;
      if (lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        i++;
      } else {
        cp = 0xFFFD;
      }
    } else if (cp >= 0xD800 && cp < 0xE000) {
      cp = 0xFFFD;
    }
    uint8_t b[4];
    int n;
    if (cp < 0x80)
      b[0] = (uint8_t)cp, n = 1;
    else if (cp < 0x800)
      b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)),
      n = 2;
    else if (cp < 0x10000)
      b[0] = (uint8_t)(0xE0 | cp >> 12),
      b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)),
      b[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
    else
      b[0] = (uint8_t)(0xF0 | cp >> 18),
      b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F)),
      b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)),
      b[3] = (uint8_t)(0x80 | (cp & 0x3F)), n = 4;
    if (k + (size_t)n + 1 > cap) break;
    memcpy(out + k, b, (size_t)n);
    k += (size_t)n;
  }
  if (cap) out[k] = 0;
}

int tds_parse_prelogin(const uint8_t *d, size_t n, int *encryption) {
  *encryption = -1;
  for (size_t i = 0;; i += 5) {
    if (i >= n) return -1; /* no terminator */
    if (d[i] == 0xFF) return 0;
    if (i + 5 > n) return -1;
    size_t off = (size_t)d[i + 1] << 8 | d[i + 2];
    size_t len = (size_t)d[i + 3] << 8 | d[i + 4];
    if (off > n || len > n - off) return -1;
    if (d[i] == 0x01 && len >= 1) *encryption = d[off];
  }
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* A LOGIN7 string: its offset and length in characters at @p at. */
static int login_field(const uint8_t *d, size_t n, size_t at, char *out,
                       size_t cap, int password) {
  size_t off = (size_t)d[at] | (size_t)d[at + 1] << 8;
  size_t cch = (size_t)d[at + 2] | (size_t)d[at + 3] << 8;
  uint8_t u[256];
  out[0] = 0;
  if (cch == 0) return 0;
  if (off > n || cch * 2 > n - off || cch * 2 > sizeof u) return -1;
  memcpy(u, d + off, cch * 2);
  if (password) /* each byte had its nibbles swapped, then ^ 0xA5 */
    for (size_t i = 0; i < cch * 2; i++) {
      uint8_t b = u[i] ^ 0xA5;
      u[i] = (uint8_t)(b << 4 | b >> 4);
    }
  tds_utf8(u, cch, out, cap);
  return 0;
}

int tds_parse_login7(const uint8_t *d, size_t n, tds_login *l) {
  memset(l, 0, sizeof *l);
  if (n < 94 || le32(d) > n) return -1;
  l->version = le32(d + 4);
  l->packet_size = le32(d + 8);
  if (login_field(d, n, 40, l->user, sizeof l->user, 0) ||
      login_field(d, n, 44, l->password, sizeof l->password, 1) ||
      login_field(d, n, 48, l->app, sizeof l->app, 0) ||
      login_field(d, n, 68, l->database, sizeof l->database, 0))
    return -1;
  return 0;
}

char *tds_batch_text(const tds_conn *c, const uint8_t *d, size_t n) {
  if (c->version >= TDS_V72) {
    if (n < 4) return NULL;
    uint32_t h = le32(d);
    if (h < 4 || h > n) return NULL;
    d += h;
    n -= h;
  }
  size_t cap = n / 2 * 3 + 1; /* a UTF-16 unit is at most 3 UTF-8 bytes */
  char *text = malloc(cap);
  if (text) tds_utf8(d, n / 2, text, cap);
  return text;
}

/* A B_VARCHAR (1-byte length in characters) or US_VARCHAR (2 bytes). */
static void put_text(tds_conn *c, const char *s, int wide_len, size_t max) {
  static __thread uint8_t u[2 * 4096];
  size_t n = tds_utf16(s ? s : "", u, max * 2 < sizeof u ? max * 2 : sizeof u);
  if (wide_len)
    tds_u16(c, (uint16_t)(n / 2));
  else
    tds_u8(c, (uint8_t)(n / 2));
  tds_put(c, u, n);
}

static size_t text_bytes(const char *s, size_t max) {
  static __thread uint8_t u[2 * 4096];
  return tds_utf16(s ? s : "", u, max * 2 < sizeof u ? max * 2 : sizeof u);
}

/* 2.2.7.9 ENVCHANGE with B_VARCHAR new and old values. */
void tds_envchange(tds_conn *c, uint8_t type, const char *nv, const char *ov) {
  size_t len = 1 + 1 + text_bytes(nv, 255) + 1 + text_bytes(ov, 255);
  tds_u8(c, TDS_TOK_ENVCHANGE);
  tds_u16(c, (uint16_t)len);
  tds_u8(c, type);
  put_text(c, nv, 0, 255);
  put_text(c, ov, 0, 255);
}

void tds_envchange_collation(tds_conn *c) {
  tds_u8(c, TDS_TOK_ENVCHANGE);
  tds_u16(c, 1 + 1 + 5 + 1);
  tds_u8(c, 7); /* SQL collation */
  tds_u8(c, 5);
  tds_put(c, tds_collation, 5);
  tds_u8(c, 0);
}

/* 2.2.7.10 ERROR and 2.2.7.13 INFO: the same layout. */
void tds_message(tds_conn *c, int error, int num, int state, int level,
                 const char *text, const char *server, int line) {
  int wide_line = c->version >= TDS_V72;
  size_t len = 4 + 1 + 1 + 2 + text_bytes(text, 4000) + 1 +
               text_bytes(server, 128) + 1 + (wide_line ? 4 : 2);
  tds_u8(c, error ? TDS_TOK_ERROR : TDS_TOK_INFO);
  tds_u16(c, (uint16_t)len);
  tds_u32(c, (uint32_t)num);
  tds_u8(c, (uint8_t)state);
  tds_u8(c, (uint8_t)level);
  put_text(c, text, 1, 4000);
  put_text(c, server, 0, 128);
  tds_u8(c, 0); /* no procedure */
  if (wide_line)
    tds_u32(c, (uint32_t)line);
  else
    tds_u16(c, (uint16_t)line);
}

/* 2.2.7.14 LOGINACK. */
void tds_loginack(tds_conn *c, const char *prog, const uint8_t ver[4]) {
  size_t len = 1 + 4 + 1 + text_bytes(prog, 255) + 4;
  uint32_t v = c->version;
  uint8_t vb[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                   (uint8_t)v}; /* big-endian here, unlike LOGIN7's */
  tds_u8(c, TDS_TOK_LOGINACK);
  tds_u16(c, (uint16_t)len);
  tds_u8(c, 1); /* interface: SQL_TSQL */
  tds_put(c, vb, 4);
  put_text(c, prog, 0, 255);
  tds_put(c, ver, 4);
}

/* 2.2.7.6 DONE (and DONEPROC, DONEINPROC). */
void tds_done(tds_conn *c, uint8_t token, uint16_t status, uint16_t curcmd,
              uint64_t rows) {
  tds_u8(c, token);
  tds_u16(c, status);
  tds_u16(c, curcmd);
  if (c->version >= TDS_V72)
    tds_u64(c, rows);
  else
    tds_u32(c, (uint32_t)rows);
}

/* 2.2.7.4 COLMETADATA: every column nullable, of the SQL Server type
 * @p types names (NULL: all NVARCHAR(4000)); kept for the rows. */
void tds_colmetadata(tds_conn *c, int n, const char *const *names,
                     const char *const *types) {
  tds_u8(c, TDS_TOK_COLMETADATA);
  tds_u16(c, (uint16_t)n);
  c->ncols = n;
  for (int i = 0; i < n; i++) {
    tds_coltype t = tds_type_parse(types && i < TDS_MAX_COLS ? types[i] : NULL);
    if (i < TDS_MAX_COLS) c->cols[i] = t;
    uint8_t info[8];
    if (c->version >= TDS_V72)
      tds_u32(c, 0); /* UserType */
    else
      tds_u16(c, 0);
    tds_u16(c, 0x0001 | 0x0008); /* nullable, updatable: unknown */
    tds_put(c, info, tds_type_info(&t, info));
    put_text(c, names[i], 0, 128);
  }
}

/* 2.2.7.19 ROW. */
void tds_row(tds_conn *c, int n, const char *const *vals) {
  static __thread uint8_t u[8000];
  tds_u8(c, TDS_TOK_ROW);
  for (int i = 0; i < n; i++) {
    if (i < c->ncols && i < TDS_MAX_COLS && c->cols[i].kind != TK_NVARCHAR) {
      uint8_t v[20];
      tds_put(c, v, tds_type_value(&c->cols[i], vals[i], v));
      continue;
    }
    if (!vals[i]) {
      tds_u16(c, 0xFFFF); /* CHARBIN_NULL */
      continue;
    }
    size_t k = tds_utf16(vals[i], u, sizeof u);
    tds_u16(c, (uint16_t)k);
    tds_put(c, u, k);
  }
}
