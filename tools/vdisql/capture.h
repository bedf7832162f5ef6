/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture.h - the instance's log capture: one thread per database the
 * instance tracks follows the database's WAL, copies every committed
 * frame into the log archive (logarc.h) before SQLite may overwrite it,
 * and runs the checkpoints that let the WAL restart.  Design and proof
 * obligations: docs/INSTANCE.md, "Log capture".  Only `vdisql --serve`
 * runs it; a one-shot vdisql has no capture (capture_running() is 0).
 */
#ifndef VDISQL_CAPTURE_H
#define VDISQL_CAPTURE_H

#include "msg.h"

#include <stddef.h>
#include <stdint.h>

/** Start following every database the catalog tracks.  Once, at
 * `--serve` start, before sessions run. */
void capture_init(const char *inst_dir);
/** Stop every thread: each copies what is committed, then closes. */
void capture_shutdown(void);
/** 1 in the instance (after capture_init), else 0. */
int capture_running(void);

/** Follow @p db from now (or again, with another recovery model): FULL
 * keeps the pages (log backups), SIMPLE only their numbers
 * (differentials).  @return 0 or -1 with @p err set. */
int capture_track(const char *db, int full, vmsg *err);
/** Stop following @p db and close its connections (before a restore
 * replaces it).  @return the next LSN it would have given (0: none). */
uint64_t capture_release(const char *db);

/* Where the log stood at a synchronisation point. */
typedef struct cap_point {
  uint64_t lsn;    /* the next LSN: everything before it is archived */
  int64_t time_ms; /* when */
  uint32_t page_size;
  uint8_t *changed; /* with want_changed: pages changed since the base
                     * (bit per page; free() it) */
  size_t changed_bytes;
  uint64_t breaks; /* the chain's breaks so far (capture_rebase) */
} cap_point;

/** Copy every committed frame now.  From a snapshot's hook (nobody can
 * commit) the point is exactly the snapshot's.  With @p start_base, the
 * pages changed from here on are collected for capture_rebase.
 * @return 1 if @p db is followed (@p pt set), 0 if not, -1 on error. */
int capture_sync(const char *db, int want_changed, int start_base,
                 cap_point *pt, vmsg *err);
/** The full backup that called capture_sync(start_base) succeeded: it is
 * the differential base; with @p drop_log, log before it is dropped.
 * @p breaks is its cap_point's.  @return 0, -1 with @p err set, or 1 if
 * the chain broke since then (the backup lacks log the capture skipped:
 * it must be neither the base nor the start of a chain). */
int capture_rebase(const char *db, int drop_log, uint64_t breaks, vmsg *err);
/** It failed: forget the collected pages. */
void capture_abandon_base(const char *db);
/** A log backup up to @p lsn succeeded: drop the archive below it. */
void capture_truncate(const char *db, uint64_t lsn);

#endif
