/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.h - a consistent, read-only page-by-page view of a live SQLite
 * database as of one instant, with memory bounded by the WAL's frame count
 * (never a copy of the database).  Other processes may keep committing.
 *
 * Rollback-journal databases: a read transaction holds SQLite's SHARED
 * lock, which makes writers wait until the backup ends (documented in
 * vdisql.1).  WAL databases: writers go on; see snapshot.c for how.
 */
#ifndef VDISQL_SNAPSHOT_H
#define VDISQL_SNAPSHOT_H

#include "msg.h"

#include <stdint.h>

typedef struct snap snap_t;

/* Called once while no transaction can commit, at the snapshot's instant
 * (the log capture's synchronisation point, capture.h). */
typedef struct snap_hook {
  int (*fn)(void *ctx, vmsg *err);
  void *ctx;
} snap_hook;

/** @brief Open @p path and fix the snapshot; run @p hook (may be NULL) at
 * its instant.  @return 0 or -1 with @p err set (Msg 5120 cannot open,
 * 3201-like for I/O, 3041 on busy, or the hook's error). */
int snap_open(const char *path, const snap_hook *hook, snap_t **out, vmsg *err);
uint32_t snap_page_size(const snap_t *s);
uint64_t snap_page_count(const snap_t *s);
/** @brief Read page @p pgno (1-based, ascending order is fastest) into
 * @p buf (page_size bytes). @return 0 or -1 with @p err set. */
int snap_read(snap_t *s, uint64_t pgno, uint8_t *buf, vmsg *err);
/** Pages @p pgno .. @p pgno + @p n - 1 of the snapshot into @p buf, with
 * one read of the database file for the run (the pages that have WAL
 * frames are then read as snap_read does).  0, or -1 with @p err set. */
int snap_read_run(snap_t *s, uint64_t pgno, uint32_t n, uint8_t *buf,
                  vmsg *err);
/** End the read transaction and close. */
void snap_close(snap_t *s);

#endif
