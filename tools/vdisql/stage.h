/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stage.h - databases in RESTORING state.  A RESTORE ... WITH NORECOVERY
 * puts the restored file at DIR/.vdisql/restoring/<db>.db and a
 * placeholder that is not a SQLite file at DIR/<db>.db, so applications
 * cannot open the database until RECOVERY; differential and log backups
 * are first spooled whole (every checksum checked) next to it and only
 * then applied, so a damaged backup changes nothing; RECOVERY checks the
 * file and renames it into place.
 */
#ifndef VDISQL_STAGE_H
#define VDISQL_STAGE_H

#include "dbstate.h"
#include "msg.h"
#include "stream.h"

#include <stdint.h>

/** The staged file's path. */
void stage_path(const char *inst_dir, const char *db, char *out, size_t n);

typedef struct spool spool_t;
/** A spool for one backup's blocks; its sink (spool_sink) for the reader. */
spool_t *spool_open(const char *inst_dir, const char *db, uint32_t unit,
                    vmsg *err);
int spool_sink(void *ctx, uint64_t first, uint32_t n, const uint8_t *data,
               vmsg *err);
void spool_free(spool_t *sp);

/** Apply a spooled differential to the staged file. */
int stage_apply_diff(const char *inst_dir, const char *db, spool_t *sp,
                     const vs_header *h, restoring *r, vmsg *err);
/** Apply a spooled log backup up to STOPAT @p stop_ms (RP_NO_STOPAT: all).
 * @p reached is set when the stop point lies inside this backup (the
 * sequence ends there).  @return 0 or -1 with @p err set. */
int stage_apply_log(const char *inst_dir, const char *db, spool_t *sp,
                    const vs_header *h, int64_t stop_ms, restoring *r,
                    int *reached, vmsg *err);
/** Replace DIR/<db>.db by the placeholder (the database is RESTORING). */
int stage_placeholder(const char *inst_dir, const char *db, vmsg *err);
/** RECOVERY: check the staged file and rename it over the placeholder. */
int stage_recover(const char *inst_dir, const char *db, vmsg *err);

#endif
