/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdstypes.c - result column types on the wire (see tdstypes.h).  Only
 * the nullable variants are used (INTN, BITN, NUMERICN, DATETIMN, GUID,
 * NVARCHAR), whose values carry their own length, so any value may be
 * NULL.
 */
#include "tdstypes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
  TT_GUID = 0x24,
  TT_INTN = 0x26,
  TT_BITN = 0x68,
  TT_NUMERICN = 0x6C,
  TT_DATETIMN = 0x6F,
  TT_NVARCHAR = 0xE7
};

/* SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, case-insensitive, sort 52. */
const uint8_t tds_collation[5] = {0x09, 0x04, 0xD0, 0x00, 0x34};

tds_coltype tds_type_parse(const char *name) {
  tds_coltype t = {TK_NVARCHAR, 0, 0, 4000};
  if (!name) return t;
  unsigned a = 0, b = 0;
  if (!strcasecmp(name, "bigint"))
    t = (tds_coltype){TK_INT, 8, 0, 0};
  else if (!strcasecmp(name, "int"))
    t = (tds_coltype){TK_INT, 4, 0, 0};
  else if (!strcasecmp(name, "smallint"))
    t = (tds_coltype){TK_INT, 2, 0, 0};
  else if (!strcasecmp(name, "tinyint"))
    t = (tds_coltype){TK_INT, 1, 0, 0};
  else if (!strcasecmp(name, "bit"))
    t = (tds_coltype){TK_BIT, 1, 0, 0};
  else if (!strcasecmp(name, "datetime"))
    t = (tds_coltype){TK_DATETIME, 8, 0, 0};
  else if (!strcasecmp(name, "uniqueidentifier"))
    t = (tds_coltype){TK_GUID, 16, 0, 0};
  else if (sscanf(name, "numeric(%u,%u)", &a, &b) == 2 && a >= 1 && a <= 38 &&
           b == 0) {
    /* 2.2.5.5.1.6: the bytes for the precision, and a sign byte. */
    uint8_t len = a <= 9 ? 5 : a <= 19 ? 9 : a <= 28 ? 13 : 17;
    t = (tds_coltype){TK_NUMERIC, len, (uint8_t)a, 0};
  } else if (sscanf(name, "nvarchar(%u)", &a) == 1 && a >= 1 && a <= 4000)
    t.maxchars = (uint16_t)a;
  return t;
}

size_t tds_type_info(const tds_coltype *t, uint8_t *out) {
  switch (t->kind) {
  case TK_INT:
    out[0] = TT_INTN, out[1] = t->len;
    return 2;
  case TK_BIT:
    out[0] = TT_BITN, out[1] = 1;
    return 2;
  case TK_DATETIME:
    out[0] = TT_DATETIMN, out[1] = 8;
    return 2;
  case TK_GUID:
    out[0] = TT_GUID, out[1] = 16;
    return 2;
  case TK_NUMERIC:
    out[0] = TT_NUMERICN, out[1] = t->len, out[2] = t->prec, out[3] = 0;
    return 4;
  default: {
    uint16_t bytes = (uint16_t)(t->maxchars * 2);
    out[0] = TT_NVARCHAR, out[1] = (uint8_t)bytes,
    out[2] = (uint8_t)(bytes >> 8);
    memcpy(out + 3, tds_collation, 5);
    return 8;
  }
  }
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar,
 * counted in 400-year eras of 146,097 days with March as the first month,
 * so that the leap day ends the year. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* "YYYY-MM-DD HH:MM:SS[.mmm]" (or with T): DATETIME's days since
 * 1900-01-01 and 1/300 s ticks since midnight. */
static int parse_datetime(const char *s, int32_t *days, uint32_t *ticks) {
  int y, mo, d, h, mi, sec, n = 0;
  if (sscanf(s, "%d-%d-%d%*[ T]%d:%d:%d%n", &y, &mo, &d, &h, &mi, &sec, &n) !=
      6)
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 ||
      y < 1753 || y > 9999)
    return -1;
  unsigned ms = 0;
  if (s[n] == '.') {
    int k = 0;
    for (const char *p = s + n + 1; isdigit((unsigned char)*p) && k < 3; p++)
      ms = ms * 10 + (unsigned)(*p - '0'), k++;
    while (k++ < 3)
      ms *= 10;
  }
  *days = (int32_t)(days_from_civil(y, (unsigned)mo, (unsigned)d) -
                    days_from_civil(1900, 1, 1));
  uint64_t msday =
      ((uint64_t)h * 3600 + (uint64_t)mi * 60 + (uint64_t)sec) * 1000 + ms;
  *ticks = (uint32_t)((msday * 3 + 5) / 10); /* 1/300 s, rounded */
  return 0;
}

static int hexval(int c) {
  return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" as a uniqueidentifier's bytes:
 * the first three groups little-endian, as drivers read them back. */
static int parse_guid(const char *s, uint8_t out[16]) {
  uint8_t b[16];
  int k = 0;
  for (const char *p = s; *p && k < 16; p++) {
    if (*p == '-') continue;
    int hi = hexval((unsigned char)p[0]), lo = hexval((unsigned char)p[1]);
    if (hi < 0 || lo < 0) return -1;
    b[k++] = (uint8_t)(hi << 4 | lo);
    p++;
  }
  if (k != 16 || strlen(s) != 36) return -1;
  static const int order[16] = {3, 2, 1,  0,  5,  4,  7,  6,
                                8, 9, 10, 11, 12, 13, 14, 15};
  for (int i = 0; i < 16; i++)
    out[i] = b[order[i]];
  return 0;
}

size_t tds_type_value(const tds_coltype *t, const char *text, uint8_t *out) {
  if (!text) goto null;
  switch (t->kind) {
  case TK_INT:
  case TK_BIT: {
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end) goto null;
    out[0] = t->len;
    put_le(out + 1, (uint64_t)v, t->len);
    if (t->kind == TK_BIT) out[1] = v != 0;
    return 1 + t->len;
  }
  case TK_NUMERIC: {
    const char *p = text;
    int neg = *p == '-';
    if (neg || *p == '+') p++;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || *end) goto null;
    out[0] = t->len;
    out[1] = neg ? 0 : 1; /* sign: 1 positive */
    memset(out + 2, 0, (size_t)t->len - 1);
    put_le(out + 2, v, t->len - 1 < 8 ? t->len - 1 : 8);
    return 1 + t->len;
  }
  case TK_DATETIME: {
    int32_t days;
    uint32_t ticks;
    if (parse_datetime(text, &days, &ticks)) goto null;
    out[0] = 8;
    put_le(out + 1, (uint32_t)days, 4);
    put_le(out + 5, ticks, 4);
    return 9;
  }
  case TK_GUID:
    if (parse_guid(text, out + 1)) goto null;
    out[0] = 16;
    return 17;
  default:
    break;
  }
null:
  out[0] = 0;
  return 1;
}
