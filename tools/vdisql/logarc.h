/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logarc.h - the instance's log archive of one database: the WAL frames
 * the capture (capture.h) copied, as log records with LSNs, and the set of
 * pages changed since the differential base.  It lives in
 * DIR/.vdisql/log/<db>/ as segment files "seg-<first lsn in hex>"; a
 * segment begins with a head (the changed-page set as of its start) and
 * continues with records closed by marks.  Only what a mark closes
 * exists: a capture killed between marks leaves a tail that the next
 * open cuts off, and the WAL (still pinned by nobody but still holding
 * those frames) gives them again.  Format: docs/INSTANCE.md.
 */
#ifndef VDISQL_LOGARC_H
#define VDISQL_LOGARC_H

#include "msg.h"
#include "vstream.h"

#include <stdint.h>

typedef struct logarc logarc_t;

/* Where the capture stood at the last mark: the WAL generation (its salts
 * as bytes), the last frame copied from it and the WAL's cumulative
 * checksum there, and the next LSN to give. */
typedef struct la_pos {
  uint8_t salt[8];
  uint32_t frame;
  uint32_t ck[2];
  uint64_t next_lsn;
} la_pos;

/** Open database @p db's archive, creating it empty (next LSN 1).
 * @p keep_data 0 records page numbers only (a SIMPLE database: for
 * differentials).  @p pos receives the position at the last mark.
 * @p lost is set when there was an archive but its last segment could
 * not be used (cut off or damaged): it was started again, and what it
 * held (log, changed pages) is gone.
 * @return 0 or -1 with @p err set (Msg 3634). */
int la_open(const char *inst_dir, const char *db, uint32_t page_size,
            int keep_data, logarc_t **out, la_pos *pos, int *lost, vmsg *err);
void la_close(logarc_t *a);

/** Add one frame (its page when the archive keeps data). */
int la_add(logarc_t *a, const vs_logrec *r, const uint8_t *page, vmsg *err);
/** Close the records added so far: write, mark @p pos, fdatasync. */
int la_mark(logarc_t *a, const la_pos *pos, vmsg *err);

/** 1 if page @p pgno changed since the base (as of the last mark). */
int la_changed(const logarc_t *a, uint32_t pgno);
/** Size of the changed set (bit per page), and a copy of it. */
size_t la_changed_bytes(const logarc_t *a);
void la_changed_copy(const logarc_t *a, uint8_t *out, size_t n);
/** Start a new segment at @p pos (the position at the last mark).  Its
 * changed set is @p set (bit per page: a full backup became the new base)
 * or, with @p set NULL, the current one.  With @p drop_older, older
 * segments are deleted (their log is not needed). */
int la_rotate(logarc_t *a, const la_pos *pos, const uint8_t *set,
              size_t set_bytes, int drop_older, vmsg *err);
/** Delete the segments that hold only records below @p lsn. */
void la_truncate(logarc_t *a, uint64_t lsn);

/** Call @p fn for every record with first <= lsn < last, in order (the
 * page follows the record at VS_LOGREC_HDR).  @return 0, or -1 with @p
 * err set (Msg 4214 if a record in the range is missing: the archive
 * was cut, 3634 on I/O). */
int la_read(const char *inst_dir, const char *db, uint64_t first, uint64_t last,
            uint32_t page_size,
            int (*fn)(void *ctx, const vs_logrec *r, const uint8_t *rec,
                      vmsg *err),
            void *ctx, vmsg *err);

/** Remove the whole archive of @p db (its database was replaced). */
void la_remove(const char *inst_dir, const char *db);

#endif
