/*
 * msg.c - SQL Server style output (see msg.h).
 */
#include "msg.h"

#include <stdio.h>
#include <string.h>

static char server_name[256] = "localhost";
static int to_stderr;

void out_init(const char *server, int errors_to_stderr) {
  snprintf(server_name, sizeof server_name, "%s", server);
  to_stderr = errors_to_stderr;
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
  FILE *f = to_stderr ? stderr : stdout;
  va_list ap;
  fflush(stdout);
  fprintf(f, "Msg %d, Level %d, State 1, Server %s, Line %d\n", num, level,
          server_name, line);
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fflush(f);
}

void out_vmsg(const vmsg *m, int stmt_line) {
  out_msg(m->num, m->level ? m->level : 16, m->line ? m->line : stmt_line, "%s",
          m->text);
}

void out_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}
