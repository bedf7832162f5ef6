/* SPDX-License-Identifier: Apache-2.0 */
/*
 * timefmt.h - the instant a point-in-time restore names, as SQL Server
 * writes it for STOPAT: 'YYYY-MM-DDTHH:MM:SS[.mmm]' (a space may stand for
 * the T), local time.  Shared by the engine (vdisql) and vdi, so that
 * both read the same text as the same instant.
 */
#ifndef OPENVDI_TIMEFMT_H
#define OPENVDI_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/** Parse @p text to Unix milliseconds.  @return 0, or -1 if malformed. */
int time_parse_ms(const char *text, int64_t *ms);
/** The same text read as UTC (what SQL Server's certificate dates are). */
int time_parse_utc_ms(const char *text, int64_t *ms);
/** Format Unix milliseconds @p ms in that form (local time). */
void time_format_ms(int64_t ms, char *out, size_t n);

#endif
