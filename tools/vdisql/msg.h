/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg.h - messages in SQL Server's form: informational lines on stdout and
 * errors as "Msg N, Level L, State 1, Server S, Line n" plus a text line.
 * A vmsg carries the first error of an operation up to the statement runner;
 * the numbers used are listed in vdisql.1.
 */
#ifndef VDISQL_MSG_H
#define VDISQL_MSG_H

#include <stdarg.h>
#include <stdio.h>

typedef struct vmsg {
  int num;         /* 0 = no error */
  int level;       /* 16 unless set otherwise (syntax errors are 15) */
  int line;        /* line in the batch, 0 = the statement's */
  char text[1024]; /* plain words, one line */
} vmsg;

/** Record an error unless one is recorded already (the first cause wins). */
void vmsg_set(vmsg *m, int num, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** The same with a level and a line number. */
void vmsg_setl(vmsg *m, int num, int level, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** Record the operating system's error (errno) as Msg 3634, SQL Server's
 * words for a failed file operation: @p what was attempted on @p path.
 * Returns -1, so a caller can `return vmsg_os_error(...)`. */
int vmsg_os_error(vmsg *m, const char *what, const char *path);

/** Output settings: server name in Msg lines; errors to stderr if asked. */
void out_init(const char *server, int errors_to_stderr);
/** Send this thread's output (results, messages) to @p out and @p err
 * instead of the process's stdout and stderr: a session of the instance
 * does this for its connection.  out_bind(NULL, ...) undoes it. */
void out_bind(FILE *out, FILE *err, const char *server, int errors_to_stderr);
/** Where a TDS session's messages and result sets go: as tokens, not
 * text.  Each callback gets this thread's output in order. */
typedef struct out_sink {
  void *ctx;
  /** A message: level 0..10 is informational (INFO), above is an error. */
  void (*message)(void *ctx, int num, int level, int line, const char *text);
  /** A result set begins with these column names and SQL Server types
   * (@p types NULL: all nvarchar)... */
  void (*columns)(void *ctx, int n, const char *const *names,
                  const char *const *types);
  /** ...has rows (a NULL value is SQL NULL)... */
  void (*row)(void *ctx, int n, const char *const *vals);
  /** ...and ends after @p rows rows. */
  void (*rows_done)(void *ctx, long rows);
} out_sink;
/** Send this thread's output to @p sink instead (NULL undoes it). */
void out_bind_sink(const out_sink *sink, const char *server);
/** The server name in this thread's messages. */
const char *out_server(void);

/** A result set: column names (printed unless @p headers is 0), rows with
 * values separated by @p colsep, then "(N rows affected)". */
void out_columns(const char *colsep, int headers, int n,
                 const char *const *names, const char *const *types);
void out_row(const char *colsep, int n, const char *const *vals);
void out_rows_done(long rows);
/** Print an error in SQL Server's two-line form. */
void out_msg(int num, int level, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Print a recorded error (the statement's line if m->line is 0). */
void out_vmsg(const vmsg *m, int stmt_line);
/** Print informational message @p num (SQL Server's number, sent as an
 * INFO token over TDS) as a line on stdout, flushed: progress is live. */
void out_info(int num, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
