/* SPDX-License-Identifier: Apache-2.0 */
/*
 * catalog.h - the instance's backup history, msdb's shape in a SQLite
 * database of the instance (DIR/.vdisql/catalog.db): every successful
 * backup is a row of backupset with one row of backupmediafamily per
 * device, and `SELECT ... FROM msdb.dbo.backupset` reads them.
 */
#ifndef VDISQL_CATALOG_H
#define VDISQL_CATALOG_H

#include "msg.h"
#include "vstream.h"

#include <stdint.h>

typedef struct catalog_backup {
  const vs_header *h; /* the set's header */
  char type;          /* 'D' database, 'I' differential, 'L' log */
  int64_t start, finish;
  uint64_t bytes; /* written, over all devices */
  char *const *devices;
  int ndev;
  int device_type; /* 2 disk, 7 virtual device */
} catalog_backup;

typedef struct sqlite3 sqlite3;
/** Open (creating it if needed) the catalog read-write, for the modules
 * that keep their state in it (dbstate.h).  NULL on failure. */
sqlite3 *catalog_open(const char *inst_dir);

/** Record a finished backup.  @return 0, or -1 with @p err set (Msg
 * 3009: the backup itself succeeded). */
int catalog_record(const char *inst_dir, const catalog_backup *b, vmsg *err);

/** Run a read-only query of the history (a SELECT alone in its batch, as
 * SQL Server's msdb names it: msdb.dbo.backupset, msdb..backupset,
 * TOP n, N'...') and print its rows.  @return 0 or -1 with @p err set. */
int catalog_select(const char *inst_dir, const char *sql, const char *colsep,
                   int headers, vmsg *err);

#endif
