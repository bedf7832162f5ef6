/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-term.c - vdi in a real terminal (a pty made with openpty, its
 * size set with TIOCSWINSZ): the progress bar fits the width, so no redraw
 * wraps at 40 columns; a window made wider mid-run gets the full bar at
 * the next redraw; and without a terminal the plain periodic lines stay
 * (issue 16, point 7).
 */
#include "task.h"
#include "test-app-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static char inst[4200], bk[4200];

static void setup(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
}

/* The redraws in what vdi wrote: each "\r\033[K" starts one; it ends at
 * the next '\r' or '\n'.  Returns how many; the widest in *widest. */
static int redraws(const char *buf, size_t from, size_t to, int *widest,
                   int *with_bar) {
  int n = 0;
  *widest = 0;
  *with_bar = 0;
  for (size_t i = from; i + 3 < to; i++) {
    if (memcmp(buf + i, "\r\033[K", 4) != 0) continue;
    size_t s = i + 4, e = s;
    while (e < to && buf[e] != '\r' && buf[e] != '\n')
      e++;
    if (e == s) continue; /* a clear before another line */
    n++;
    if ((int)(e - s) > *widest) *widest = (int)(e - s);
    if (memchr(buf + s, '[', e - s) && memchr(buf + s, '%', e - s))
      (*with_bar)++;
  }
  return n;
}

/* Read the pty's master side until `until_ms` or the child's end. */
static size_t read_pty(int m, char *buf, size_t n, size_t cap, int64_t until) {
  while (n + 1 < cap && now_ms() < until) {
    struct pollfd p = {m, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t r = read(m, buf + n, cap - 1 - n);
    if (r <= 0) break; /* EIO once the child's side is closed */
    n += (size_t)r;
  }
  buf[n] = 0;
  return n;
}

TEST_IMPL_TIMEOUT(app_term_progress_fits_width, 60) {
  setup();
  app_t_make_db(inst, "db", 15000, 4096, 8);
  struct winsize ws = {.ws_row = 24, .ws_col = 40};
  int m, s;
  ASSERT_EQ(openpty(&m, &s, NULL, NULL, &ws), 0);
  char log[4400];
  snprintf(log, sizeof log, "%s/out.txt", test_tmpdir());
  fflush(NULL);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int o = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0) _exit(126);
    dup2(o, 1);
    dup2(s, 2);
    close(m);
    close(s);
    putenv("VDI_TEST_SLOW_WRITE_MS=25");
    execl(build_path("vdi"), "vdi", "backup", "db", "--instance", inst, "--to",
          bk, (char *)NULL);
    _exit(127);
  }
  close(s);
  static char buf[1 << 18];
  /* 40 columns for a while ... */
  size_t n40 = read_pty(m, buf, 0, sizeof buf, now_ms() + 1500);
  /* ... then the window is made wider, as a user drags it. */
  ws.ws_col = 120;
  ASSERT_EQ(ioctl(m, TIOCSWINSZ, &ws), 0);
  size_t n = read_pty(m, buf, n40, sizeof buf, now_ms() + 40000);
  close(m);
  ASSERT_EQ(wait_helper(pid), 0);

  int widest, bars;
  int narrow = redraws(buf, 0, n40, &widest, &bars);
  if (narrow < 3 || widest > 39 || bars == 0) {
    app_t_show("stderr at 40 columns", buf);
    TASK_FAIL_("%d redraws at 40 columns, the widest %d characters, %d "
               "with a bar",
               narrow, widest, bars);
  }
  /* After the resize the full line: a bar, the rate and the time left. */
  int wide = redraws(buf, n40, n, &widest, &bars);
  ASSERT_GT(wide, 0);
  ASSERT_GT(bars, 0);
  ASSERT_GT(widest, 39);
  ASSERT(widest <= 119);
  const char *tail = buf + n40;
  ASSERT(strstr(tail, "MB/s") && strstr(tail, "left"));
  ASSERT(strstr(buf, "backup complete") != NULL);

  /* Not a terminal: the plain periodic lines, no carriage returns. */
  char *out = NULL;
  int rc = app_t_run(&out, ENV("VDI_TEST_SLOW_WRITE_MS=150"),
                     ARGS("backup", "db", "--instance", inst, "--to", bk));
  if (rc != 0) app_t_show("backup, not a tty", out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "vdi: backup: ") != NULL);
  ASSERT(strchr(out, '\r') == NULL);
  free(out);
  return 0;
}
