/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timefmt.c - STOPAT instants (see timefmt.h).
 */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Both forms: local time (mktime) or UTC (timegm). */
static int parse_ms(const char *text, int64_t *ms, int utc) {
  struct tm tm;
  int y, mo, d, h, mi, sec, n = 0;
  long frac = 0;
  char sep;
  memset(&tm, 0, sizeof tm);
  if (sscanf(text, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi,
             &sec, &n) != 7 ||
      (sep != 'T' && sep != ' '))
    return -1;
  const char *p = text + n;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3) frac = frac * 10 + (*p - '0');
    if (digits == 0) return -1;
    for (; digits < 3; digits++)
      frac *= 10;
  }
  if (*p) return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
    return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  tm.tm_isdst = -1;
  time_t t = utc ? timegm(&tm) : mktime(&tm);
  /* mktime normalises 31 February to March: refuse that. */
  if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1) return -1;
  *ms = (int64_t)t * 1000 + frac;
  return 0;
}

int time_parse_ms(const char *text, int64_t *ms) {
  return parse_ms(text, ms, 0);
}

int time_parse_utc_ms(const char *text, int64_t *ms) {
  return parse_ms(text, ms, 1);
}

void time_format_ms(int64_t ms, char *out, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
  if (k + 5 <= n) snprintf(out + k, n - k, ".%03d", (int)(ms % 1000));
}
