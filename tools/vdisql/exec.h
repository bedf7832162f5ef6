/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.h - running parsed statements against an instance directory and
 * printing their results and messages in SQL Server's form.
 */
#ifndef VDISQL_EXEC_H
#define VDISQL_EXEC_H

#include "parser.h"

/* What a connection's statements change for the statements after them. */
typedef struct session_vars {
  char db[129];  /* the current database (USE): "master" at first */
  int trancount; /* BEGIN TRAN depth (@@TRANCOUNT) */
  long spid;     /* @@SPID */
} session_vars;

typedef struct exec_ctx {
  const char *inst_dir;       /* the instance: databases are <dir>/<name>.db */
  const char *server;         /* for headers and Msg lines */
  const char *colsep;         /* result column separator (-s), default tab */
  int headers;                /* 0 = no header line (-h -1) */
  const volatile int *cancel; /* set when the session's client hung up */
  session_vars *vars;         /* NULL: a one-shot run's own */
  const char *const *backup_dirs; /* the instance's: DISK paths are
                                   * confined to these; NULL: one-shot */
} exec_ctx;

/** Run one statement.  @return 0, or -1 after printing its Msg lines. */
int exec_stmt(const exec_ctx *cx, const stmt *s);

/** Run @p tl if every statement in it is one a client driver sends around
 * its work (SET options, USE, BEGIN/COMMIT/ROLLBACK TRAN, SELECT of
 * @@VERSION, SERVERPROPERTY(...) and the like: probe.c).
 * @return 1 if it was such a batch (*failed counts its errors), else 0
 * and nothing ran. */
struct toklist;
int probe_batch(const exec_ctx *cx, const struct toklist *tl, int *failed);

#endif
