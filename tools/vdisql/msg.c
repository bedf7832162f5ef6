/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msg.c - SQL Server style output (see msg.h).
 */
#include "msg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Where this thread's output goes: the process's stdout and stderr, or,
 * in an instance's session thread, the session's connection. */
struct out_target {
  FILE *out, *err;
  char server[256];
  int to_stderr;
};
static struct out_target process_target = {NULL, NULL, "localhost", 0};
static __thread struct out_target *cur;
static __thread struct out_target session_target;
static __thread const out_sink *sink;
static __thread char sink_server[256];

static struct out_target *target(void) {
  struct out_target *t = cur ? cur : &process_target;
  if (!t->out) t->out = stdout;
  if (!t->err) t->err = stderr;
  return t;
}

void out_init(const char *server, int errors_to_stderr) {
  snprintf(process_target.server, sizeof process_target.server, "%s", server);
  process_target.to_stderr = errors_to_stderr;
}

void out_bind(FILE *out, FILE *err, const char *server, int errors_to_stderr) {
  if (!out) {
    cur = NULL;
    return;
  }
  session_target.out = out;
  session_target.err = err;
  snprintf(session_target.server, sizeof session_target.server, "%s", server);
  session_target.to_stderr = errors_to_stderr;
  cur = &session_target;
}

void out_bind_sink(const out_sink *s, const char *server) {
  sink = s;
  snprintf(sink_server, sizeof sink_server, "%s", server ? server : "");
}

const char *out_server(void) {
  return sink ? sink_server : target()->server;
}

void out_columns(const char *colsep, int headers, int n,
                 const char *const *names, const char *const *types) {
  if (sink) {
    sink->columns(sink->ctx, n, names, types);
    return;
  }
  if (!headers) return;
  FILE *f = target()->out;
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%s", i ? colsep : "", names[i]);
  fputc('\n', f);
}

void out_row(const char *colsep, int n, const char *const *vals) {
  if (sink) {
    sink->row(sink->ctx, n, vals);
    return;
  }
  FILE *f = target()->out;
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%s", i ? colsep : "", vals[i] ? vals[i] : "NULL");
  fputc('\n', f);
}

void out_rows_done(long rows) {
  if (sink) {
    sink->rows_done(sink->ctx, rows);
    return;
  }
  FILE *f = target()->out;
  fprintf(f, "\n(%ld rows affected)\n", rows);
  fflush(f);
}

static void vset(vmsg *m, int num, int level, int line, const char *fmt,
                 va_list ap) {
  if (m->num != 0) return;
  m->num = num;
  m->level = level;
  m->line = line;
  vsnprintf(m->text, sizeof m->text, fmt, ap);
}

void vmsg_set(vmsg *m, int num, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(m, num, 16, 0, fmt, ap);
  va_end(ap);
}

void vmsg_setl(vmsg *m, int num, int level, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(m, num, level, line, fmt, ap);
  va_end(ap);
}

void out_msg(int num, int level, int line, const char *fmt, ...) {
  va_list ap;
  if (sink) {
    char text[2048];
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    sink->message(sink->ctx, num, level, line, text);
    return;
  }
  struct out_target *t = target();
  FILE *f = t->to_stderr ? t->err : t->out;
  fflush(t->out);
  fprintf(f, "Msg %d, Level %d, State 1, Server %s, Line %d\n", num, level,
          t->server, line);
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fflush(f);
}
int vmsg_os_error(vmsg *m, const char *what, const char *path) {
  int e = errno; /* before anything else can change it */
  vmsg_set(m, 3634,
           "The operating system returned the error '%d(%s)' while "
           "attempting '%s' on '%s'.",
           e, strerror(e), what, path);
  return -1;
}

void out_vmsg(const vmsg *m, int stmt_line) {
  out_msg(m->num, m->level ? m->level : 16, m->line ? m->line : stmt_line, "%s",
          m->text);
}

void out_info(int num, const char *fmt, ...) {
  va_list ap;
  if (sink) {
    char text[2048];
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    sink->message(sink->ctx, num, 0, 0, text);
    return;
  }
  FILE *f = target()->out;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fflush(f);
}