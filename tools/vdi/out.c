/*
 * out.c - every write to the terminal's stderr goes through here, under
 * one lock, so that messages, the engine's lines and the progress bar
 * (progress.c, which draws with the lock held) never interleave: a
 * message first erases a bar drawn in place.
 */
#include "app.h"

#include <string.h>

pthread_mutex_t app_out_lock = PTHREAD_MUTEX_INITIALIZER;

static int bar_drawn; /* guarded by app_out_lock */

void app_out_bar_drawn(void) {
  bar_drawn = 1;
}

void app_out_clear_line(void) {
  if (bar_drawn) {
    fputs("\r\033[K", stderr);
    bar_drawn = 0;
  }
}

void app_out_line(FILE *to, const char *line) {
  pthread_mutex_lock(&app_out_lock);
  app_out_clear_line();
  fprintf(to, "%s\n", line);
  fflush(to);
  pthread_mutex_unlock(&app_out_lock);
}

void app_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&app_out_lock);
  app_out_clear_line();
  fprintf(stderr, "%s: error: ", APP_NAME);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
  pthread_mutex_unlock(&app_out_lock);
  va_end(ap);
}
