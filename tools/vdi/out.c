/* SPDX-License-Identifier: Apache-2.0 */
/*
 * out.c - every write to the terminal's stderr goes through here, under
 * one lock, so that messages, the engine's lines and the progress bar
 * (progress.c, which draws with the lock held) never interleave: a
 * message first erases a bar drawn in place.  Also the JSON string writer
 * of --json and the manifest.
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

int app_quiet, app_verbose, app_json, app_json_done;
static char first_error[1024]; /* guarded by app_out_lock */

const char *app_first_error(void) {
  return first_error;
}

static void say(const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void say(const char *kind, const char *fmt, va_list ap) {
  char text[1024];
  vsnprintf(text, sizeof text, fmt, ap);
  pthread_mutex_lock(&app_out_lock);
  app_out_clear_line();
  fprintf(stderr, "%s: %s%s\n", APP_NAME, kind, text);
  fflush(stderr);
  if (strcmp(kind, "error: ") == 0 && !first_error[0])
    snprintf(first_error, sizeof first_error, "%s", text);
  pthread_mutex_unlock(&app_out_lock);
}

void app_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say("error: ", fmt, ap);
  va_end(ap);
}

void app_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say("warning: ", fmt, ap);
  va_end(ap);
}

void app_note(const char *fmt, ...) {
  if (app_quiet) return;
  va_list ap;
  va_start(ap, fmt);
  say("", fmt, ap);
  va_end(ap);
}

void json_put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}
