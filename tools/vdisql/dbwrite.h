/*
 * dbwrite.h - the restore writer: pages go to a new temporary file in the
 * instance directory; at the end it is checked (PRAGMA integrity_check),
 * fsynced and renamed over the database, then the directory is fsynced.
 * Until that rename the old database is untouched, whatever fails.
 */
#ifndef VDISQL_DBWRITE_H
#define VDISQL_DBWRITE_H

#include "msg.h"

#include <stdint.h>

typedef struct dbw dbw_t;

/** Check the target (Msg 1834 if it exists and @p replace is 0) and create
 * the temporary file.  @return NULL with @p err set on failure. */
dbw_t *dbw_open(const char *inst_dir, const char *db, uint32_t page_size,
                int replace, vmsg *err);
/** The restore sink: write @p n pages starting at 1-based @p first. */
int dbw_write(void *ctx, uint64_t first, uint32_t n, const uint8_t *data,
              vmsg *err);
/** Check, sync and rename into place.  @return 0 or -1 (Msg 3183 check
 * failed, 3101 database in use, 3202-like I/O error). */
int dbw_commit(dbw_t *w, uint64_t page_count, vmsg *err);
/** Remove the temporary file (after a failure) and free. */
void dbw_free(dbw_t *w);

#endif
