/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbwrite.h - the restore writer: pages go to a new temporary file in the
 * instance directory; at the end it is checked (PRAGMA integrity_check),
 * fsynced and renamed over the database, then the directory is fsynced.
 * From dbw_prepare to dbw_release nobody else can use the old database.
 * Until that rename the old database is untouched, whatever fails.
 */
#ifndef VDISQL_DBWRITE_H
#define VDISQL_DBWRITE_H

#include "msg.h"

#include <stdint.h>

typedef struct dbw dbw_t;

/* What the backup says about the database it holds. */
typedef struct dbw_source {
  uint32_t page_size;
  int mode_known;     /* the backup recorded the file's mode (fmode.h) */
  uint32_t mode, gid; /* st_mode and group of the backed-up file */
} dbw_source;

/** Check the target (Msg 1834 if it exists and @p replace is 0; Msg 3156
 * if it is a symbolic link) and create the temporary file with the
 * recorded permissions.  @return NULL with @p err set on failure. */
dbw_t *dbw_open(const char *inst_dir, const char *db, const dbw_source *src,
                int replace, vmsg *err);
/** The restore sink: write @p n pages starting at 1-based @p first. */
int dbw_write(void *ctx, uint64_t first, uint32_t n, const uint8_t *data,
              vmsg *err);
/** Everything short of the switch: size, sync, integrity_check, and the
 * old database taken over (nobody uses it, its WAL is empty).  @return 0
 * or -1 (Msg 3183 check failed, 3101 database in use, 3634 I/O error). */
int dbw_prepare(dbw_t *w, uint64_t page_count, vmsg *err);
/** The switch: rename over the database and sync the directory.  Before
 * it the old database is intact; after it, the new one is in place. */
int dbw_switch(dbw_t *w, vmsg *err);
/** The switch to another place: the staged file of a restore sequence
 * (stage.h) instead of the database. */
int dbw_switch_to(dbw_t *w, const char *dest, vmsg *err);
/** PRAGMA integrity_check of the database file @p path (Msg 3183). */
int dbw_check_file(const char *path, const char *name, vmsg *err);
/** fsync a directory (Msg 3634). */
int dbw_sync_dir(const char *dir, vmsg *err);
/** The target is not a database anyone uses (the placeholder of a
 * database in RESTORING state): dbw_prepare does not take it over. */
void dbw_skip_takeover(dbw_t *w);
/** Let go of the old database, held exclusively since dbw_prepare (put
 * back as it was if it is still the database).  dbw_free does it too. */
void dbw_release(dbw_t *w);
/** Remove the temporary file (after a failure) and free. */
void dbw_free(dbw_t *w);

#endif
