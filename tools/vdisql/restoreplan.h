/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restoreplan.h - SQL Server's rules for what a RESTORE may do, checked
 * from the backup's header and the instance's state before anything is
 * read or written: whether a full backup may replace the database that
 * is there (Msg 1834, 3154, 3159), whether a differential or a log backup
 * continues the restore sequence (Msg 3117, 3135, 3136, 4305, 4326,
 * 4338), and the STOPAT instant.
 */
#ifndef VDISQL_RESTOREPLAN_H
#define VDISQL_RESTOREPLAN_H

#include "dbstate.h"
#include "msg.h"
#include "vstream.h"

#include <stdint.h>

#define RP_NO_STOPAT INT64_MIN

/** RESTORE DATABASE @p db from the full backup @p h (not REPLACE).
 * @return 0 if allowed, or -1 with @p err set. */
int rp_check_full(const char *inst_dir, const char *db, const vs_header *h,
                  vmsg *err);
/** The MOVE options of a restore of backup @p h as database @p db of the
 * instance @p inst_dir (docs/INSTANCE.md, "MOVE"): each logical name must
 * be the backup's data file (its database's name) or its log
 * ("<name>_log"), else Msg 3234; the data file must be named where vdisql
 * keeps the database, DIR/<db> with any extension (SQL Server's clients
 * write .mdf), the log file anywhere in DIR (the WAL sits beside the
 * database), else Msg 3156; a directory that does not exist is Msg 5133.
 * @return 0 or -1 with @p err set. */
int rp_check_moves(const char *inst_dir, const char *db, const vs_header *h,
                   int nmove, char *const *from, char *const *to, vmsg *err);
/** The backup's kind must be the statement's (Msg 3135). */
int rp_check_kind(int restore_log, const vs_header *h, vmsg *err);
/** A differential onto the database in RESTORING state @p r. */
int rp_check_diff(const char *db, const restoring *r, const vs_header *h,
                  vmsg *err);
/** A log backup onto @p r, with STOPAT @p stop_ms (RP_NO_STOPAT: none). */
int rp_check_log(const char *db, const restoring *r, const vs_header *h,
                 int64_t stop_ms, vmsg *err);
/** The database must be RESTORING, and not cut off mid-apply. */
int rp_check_restoring(const char *db, const restoring *r, vmsg *err);
/** Parse 'YYYY-MM-DDTHH:MM:SS[.mmm]' (or a space for T), local time, to
 * Unix milliseconds.  @return 0 or -1 with @p err set (Msg 241). */
int rp_parse_stopat(const char *text, int64_t *ms, vmsg *err);

#endif
