/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbstate.h - what the instance knows of each database beyond its file,
 * kept in the catalog (catalog.h): its identity (family GUID), recovery
 * model, differential base and log chain; and the databases in RESTORING
 * state with how far their restore sequence has come.
 */
#ifndef VDISQL_DBSTATE_H
#define VDISQL_DBSTATE_H

#include "msg.h"

#include <stdint.h>

typedef struct dbstate {
  int known;            /* 0: no row (SIMPLE, untracked, no identity yet) */
  uint8_t family[16];   /* the database's identity */
  int full;             /* recovery model FULL (else SIMPLE) */
  int has_base;         /* a full backup is the differential base ... */
  uint64_t base_lsn;    /* ... taken at this LSN ... */
  uint8_t base_set[16]; /* ... with this set id */
  int has_log;          /* FULL: the log chain is unbroken ... */
  uint64_t log_lsn;     /* ... and the next log backup starts here */
  uint64_t lsn_floor;   /* LSNs given from now on are at least this (a
                         * restored database continues past its backups) */
} dbstate;

/** Read @p db's row.  @return 0 (s->known says if there is one) or -1. */
int dbstate_get(const char *inst_dir, const char *db, dbstate *s, vmsg *err);
/** Write @p db's row.  @return 0 or -1 with @p err set. */
int dbstate_put(const char *inst_dir, const char *db, const dbstate *s,
                vmsg *err);
/** Write @p db's row as @p s if it is still @p was (read before): the
 * capture thread breaks the chain (dbstate_break) without the backups'
 * lock, and its break must not be written over by an older row.
 * @return 0 written, 1 the row changed meanwhile (not written), or -1
 * with @p err set. */
int dbstate_update(const char *inst_dir, const char *db, const dbstate *was,
                   const dbstate *s, vmsg *err);
/** The log chain and the differential base of @p db are broken: the next
 * BACKUP LOG (Msg 4214) and differential (Msg 3035) need a full backup. */
void dbstate_break(const char *inst_dir, const char *db);
/** Forget @p db (its file was replaced or removed). */
void dbstate_forget(const char *inst_dir, const char *db);
/** Call @p fn for every known database. */
int dbstate_each(const char *inst_dir,
                 void (*fn)(void *ctx, const char *db, const dbstate *s),
                 void *ctx);

/* A database in RESTORING state: staged in DIR/.vdisql/restoring/. */
typedef struct restoring {
  int known;
  uint8_t family[16];
  int full;             /* recovery model of the backups restored */
  uint64_t lsn;         /* the staged database is at this LSN */
  uint8_t last_set[16]; /* the last full or differential applied */
  uint8_t base_set[16]; /* the full backup it starts from */
  int64_t time_ms;      /* the instant its contents are as of */
  uint32_t page_size;
  int applying; /* a RESTORE LOG was cut off while applying */
} restoring;

int restoring_get(const char *inst_dir, const char *db, restoring *r,
                  vmsg *err);
int restoring_put(const char *inst_dir, const char *db, const restoring *r,
                  vmsg *err);
void restoring_forget(const char *inst_dir, const char *db);

/** GUID text (36 chars) to bytes.  @return 0 or -1. */
int guid_parse(const char *s, uint8_t out[16]);

#endif
