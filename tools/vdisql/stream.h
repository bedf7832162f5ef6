/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stream.h - writing and reading a backup set (vstream.h records) over
 * media stripes.  backup.c writes; restore.c reads and checks everything.
 */
#ifndef VDISQL_STREAM_H
#define VDISQL_STREAM_H

#include "media.h"
#include "snapshot.h"
#include "vstream.h"

#include <sys/stat.h>

typedef struct wopts {
  int compress, checksum, copy_only;
  int comp_level; /* 0 or 1 LOW, 2 MEDIUM, 3 HIGH (stream_zstd_level) */
  int stats;      /* percent step, 0 = none */
  const char *database, *name, *description, *server;
  const struct stat *src; /* the database file: its mode goes in the header */
  const uint8_t *changed; /* differential: pages to write (bit per page) */
  size_t changed_bytes;
  vs_header *out_header; /* if not NULL: the set's header (stripe 0) */
  uint64_t *out_bytes;   /* if not NULL: bytes written over all stripes */
} wopts;

/** Write the snapshot as one backup set striped over @p m: every page,
 * or for a differential (tmpl->backup_type) the pages in o->changed.
 * @p tmpl holds the header's type, recovery, family and LSN fields.
 * @return 0 or -1 with @p err set. */
int stream_backup(snap_t *snap, media_t *m, const wopts *o,
                  const vs_header *tmpl, vmsg *err);
/** Write the log records tmpl->first_lsn .. tmpl->last_lsn - 1 of the
 * database tmpl->database from the instance's archive (logarc.h). */
int stream_backup_log(const char *inst_dir, media_t *m, const wopts *o,
                      const vs_header *tmpl, vmsg *err);

/** Where restored pages go (NULL write = verify only). */
typedef struct rsink {
  void *ctx;
  int (*write)(void *ctx, uint64_t first_page, uint32_t npages,
               const uint8_t *data, vmsg *err);
} rsink;

/** Read and cross-check the header of every stripe.  @p names are the
 * devices as the statement gave them (for messages).  On success @p h is
 * stripe 0's header and order[i] is the media stripe holding stripe i. */
int stream_read_headers(media_t *m, char *const *names, vs_header *h,
                        unsigned *order, vmsg *err);

/** Read every block and trailer after the headers, checking all of it,
 * and hand the pages to @p sink in order.  @return 0 or -1 (Msg 3189
 * damage, 3203 device error) with @p err set. */
int stream_read_body(media_t *m, char *const *names, const vs_header *h,
                     const unsigned *order, const rsink *sink, int stats,
                     vmsg *err);

/** Print "N percent processed." for every @p step percent crossed. */
void progress(int step, uint64_t done, uint64_t total, int *last);

#endif
