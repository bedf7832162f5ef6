/*
 * exec.h - running parsed statements against an instance directory and
 * printing their results and messages in SQL Server's form.
 */
#ifndef VDISQL_EXEC_H
#define VDISQL_EXEC_H

#include "parser.h"

typedef struct exec_ctx {
  const char *inst_dir;       /* the instance: databases are <dir>/<name>.db */
  const char *server;         /* for headers and Msg lines */
  const char *colsep;         /* result column separator (-s), default tab */
  int headers;                /* 0 = no header line (-h -1) */
  const volatile int *cancel; /* set when the session's client hung up */
} exec_ctx;

/** Run one statement.  @return 0, or -1 after printing its Msg lines. */
int exec_stmt(const exec_ctx *cx, const stmt *s);

#endif
