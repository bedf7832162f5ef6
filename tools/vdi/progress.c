/* SPDX-License-Identifier: Apache-2.0 */
/*
 * progress.c - what the user sees while bytes move: a bar redrawn in place
 * on stderr when stderr is a terminal (percent, MB/s, time left), a plain
 * line every few seconds otherwise (logs stay readable), and a one-line
 * summary at the end.  Device threads only add to an atomic counter; a
 * separate thread draws, so the data path never waits on the terminal.
 *
 * The bar fits the terminal: its width is read (TIOCGWINSZ) at every
 * redraw, so a resized window (SIGWINCH) is followed at the next one, and
 * the line is shortened to one column less than the width (the bar
 * narrows, then the time left, the size and the rate go) so that it never
 * wraps.
 */
#include "app.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH    28
#define TTY_PERIOD   0.2 /* seconds between redraws */
#define PLAIN_PERIOD 5.0 /* seconds between plain lines */

static void fmt_eta(double s, char *buf, size_t n) {
  if (s < 0 || s > 359999) {
    snprintf(buf, n, "--:--");
    return;
  }
  int t = (int)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

/* The terminal's width (stderr), 80 if it cannot be read. */
static int tty_columns(void) {
  struct winsize ws;
  if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/* The bar line in at most cols - 1 characters: "VERB [####....] 45%  12.3
 * MB  5.1 MB/s  0:12 left"; the bar narrows first (to 8), then the time
 * left, the size and the rate go, in that order. */
static void tty_line(const struct progress *p, double pct, uint64_t done,
                     double mbs, const char *eta, int cols, char *out,
                     size_t n) {
  int room = cols - 1;
  if (room > (int)n - 1) room = (int)n - 1;
  if (room < 1) room = 1;
  char pc[16] = "", mb[32], rate[32];
  if (pct >= 0) snprintf(pc, sizeof pc, " %3.0f%%", pct);
  snprintf(mb, sizeof mb, "  %.1f MB", done / 1e6);
  snprintf(rate, sizeof rate, "  %.1f MB/s", mbs);
  const char *part[3] = {mb, rate, eta}; /* in the order shown */
  static const int drop_order[3] = {2, 0, 1};
  int verb = (int)strlen(p->verb);
  for (int dropped = 0; dropped <= 3; dropped++) {
    char tail[160];
    snprintf(tail, sizeof tail, "%s", pc);
    for (int i = 0; i < 3; i++) {
      int gone = 0;
      for (int k = 0; k < dropped; k++)
        gone |= drop_order[k] == i;
      size_t l = strlen(tail);
      if (!gone) snprintf(tail + l, sizeof tail - l, "%s", part[i]);
    }
    int tl = (int)strlen(tail);
    if (pct >= 0) {
      int bar = room - verb - 3 - tl;
      if (bar > BAR_WIDTH) bar = BAR_WIDTH;
      if (bar < 8) continue;
      char b[BAR_WIDTH + 1];
      int fill = (int)(pct / 100.0 * bar);
      for (int i = 0; i < bar; i++)
        b[i] = i < fill ? '#' : '.';
      b[bar] = 0;
      snprintf(out, n, "%s [%s]%s", p->verb, b, tail);
      return;
    }
    if (verb + tl <= room) {
      snprintf(out, n, "%s%s", p->verb, tail);
      return;
    }
  }
  /* Too narrow for a bar: the words, cut to fit. */
  snprintf(out, n, "%s%s", p->verb, pc);
  if ((int)strlen(out) > room) out[room] = 0;
}

static void draw(struct progress *p, int final) {
  uint64_t done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
  double el = app_mono_s() - p->start;
  double mbs = el > 0 ? done / 1e6 / el : 0;
  double pct = -1;
  if (p->total > 0) {
    pct = 100.0 * (double)done / (double)p->total;
    /* The engine's stream has headers and the file may grow: never claim
     * to be done before we are. */
    if (pct > 99.0 && !final) pct = 99.0;
    if (pct > 100.0) pct = 100.0;
  }
  char eta[32] = "";
  if (pct >= 0 && done > 0 && !final) {
    double rate = done / (el > 0 ? el : 1e-9);
    char t[24];
    fmt_eta(((double)p->total - (double)done) / rate, t, sizeof t);
    snprintf(eta, sizeof eta, "  %s left", t);
  }
  pthread_mutex_lock(&app_out_lock);
  if (p->tty) {
    char line[256];
    tty_line(p, pct, done, mbs, eta, tty_columns(), line, sizeof line);
    fputs("\r\033[K", stderr);
    fputs(line, stderr);
    app_out_bar_drawn();
  } else {
    if (pct >= 0)
      fprintf(stderr, "%s: %s: %.0f%% (%.1f MB), %.1f MB/s%s\n", APP_NAME,
              p->verb, pct, done / 1e6, mbs, eta);
    else
      fprintf(stderr, "%s: %s: %.1f MB, %.1f MB/s\n", APP_NAME, p->verb,
              done / 1e6, mbs);
  }
  fflush(stderr);
  pthread_mutex_unlock(&app_out_lock);
}

static void *progress_main(void *arg) {
  struct progress *p = arg;
  double period = p->tty ? TTY_PERIOD : PLAIN_PERIOD;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long ns = dl.tv_nsec + (long)(period * 1e9);
    dl.tv_sec += ns / 1000000000L;
    dl.tv_nsec = ns % 1000000000L;
    int rc = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
    if (p->stop) break;
    if (rc == ETIMEDOUT) {
      pthread_mutex_unlock(&p->mu);
      draw(p, 0);
      pthread_mutex_lock(&p->mu);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

void progress_start(struct progress *p, const char *verb, uint64_t total,
                    int quiet) {
  p->verb = verb;
  p->total = total;
  p->done = 0;
  p->start = app_mono_s();
  p->tty = isatty(2);
  p->quiet = quiet;
  p->stop = 0;
  p->running = 0;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (quiet) return;
  if (pthread_create(&p->thread, NULL, progress_main, p) == 0) p->running = 1;
}

void progress_stop(struct progress *p) {
  if (p->running) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->running = 0;
  }
  pthread_mutex_lock(&app_out_lock);
  app_out_clear_line();
  fflush(stderr);
  pthread_mutex_unlock(&app_out_lock);
}

void progress_summary(struct progress *p, const char *what, int nstripes) {
  uint64_t done = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
  double el = app_mono_s() - p->start;
  if (p->quiet) return;
  pthread_mutex_lock(&app_out_lock);
  app_out_clear_line();
  fprintf(stderr, "%s: %s: %llu bytes in %.2f s (%.1f MB/s), %d stripe%s\n",
          APP_NAME, what, (unsigned long long)done, el,
          el > 0 ? done / 1e6 / el : 0.0, nstripes, nstripes == 1 ? "" : "s");
  fflush(stderr);
  pthread_mutex_unlock(&app_out_lock);
}
