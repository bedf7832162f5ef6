/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine.c - the vdisql child process that runs the BACKUP / RESTORE
 * statement (the SERVER role of VDI).
 *
 * The engine is a separate program, as SQL Server is in real life.  It is
 * executed directly with posix_spawn (never through a shell, so a database
 * name can never become a command), in its own process group (so a Ctrl-C
 * reaches only vdi, which aborts the set and lets the engine report the
 * failure in its own words), with stdin on /dev/null (a restore may be
 * reading our stdin) and stdout/stderr on pipes that two threads relay and
 * remember the last error message from.  A third thread reaps the child, so
 * its end is noticed at once and can abort a set that is still waiting.
 */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int is_exec_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int engine_find(const char *override, char *out, size_t n) {
  if (override) {
    if (!is_exec_file(override)) {
      app_err("--vdisql %s: not an executable file", override);
      return -1;
    }
    snprintf(out, n, "%s", override);
    return 0;
  }
  /* Next to our own binary: a build directory or an install prefix holds
   * both programs, and the pair is what was built and tested together. */
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len > 0) {
    self[len] = 0;
    char *slash = strrchr(self, '/');
    if (slash) {
      *slash = 0;
      if (app_path(out, n, "%s/vdisql", self) == 0 && is_exec_file(out))
        return 0;
    }
  }
  const char *path = getenv("PATH");
  if (path && *path) {
    const char *p = path;
    while (*p) {
      const char *end = strchr(p, ':');
      size_t l = end ? (size_t)(end - p) : strlen(p);
      if (l > 0 && app_path(out, n, "%.*s/vdisql", (int)l, p) == 0 &&
          is_exec_file(out))
        return 0;
      p += l;
      if (*p == ':') p++;
    }
  }
  app_err("cannot find vdisql next to vdi or on PATH (use --vdisql PATH)");
  return -1;
}

/* Copy the output of one pipe line by line to `to`, noting Msg lines. */
struct relay_arg {
  struct engine *e;
  int fd;
  FILE *to;
};

/* A line that belongs to a message: keep it (1), or relay it (0). */
static int keep_message(struct engine *e, const char *line, int *pending) {
  int num;
  if (sscanf(line, "Msg %d, Level", &num) == 1) {
    *pending = num;
    return 1;
  }
  int sqlcmd = strncmp(line, "Sqlcmd: ", 8) == 0;
  if (*pending < 0 && !sqlcmd) return 0;
  if (e->nmsgs < 8) {
    const char *text = sqlcmd ? line + 8 : line;
    if (sqlcmd && strncmp(text, "Error: ", 7) == 0) text += 7;
    e->msg_num[e->nmsgs] = sqlcmd ? 0 : *pending;
    snprintf(e->msg_text[e->nmsgs], sizeof e->msg_text[0], "%s", text);
    e->nmsgs++;
  }
  *pending = -1;
  return 1;
}

static void note_line(struct engine *e, const char *line, int *after_msg) {
  pthread_mutex_lock(&e->mu);
  if (strncmp(line, "Msg ", 4) == 0) {
    /* Keep the first error: the engine's cause comes before the general
     * "Msg 3013 ... terminating abnormally". */
    if (!e->saw_msg) {
      snprintf(e->last_error, sizeof e->last_error, "%s", line);
      *after_msg = 1;
    }
    e->saw_msg = 1;
  } else if (*after_msg) {
    size_t l = strlen(e->last_error);
    if (l + 3 < sizeof e->last_error)
      snprintf(e->last_error + l, sizeof e->last_error - l, ": %s", line);
    *after_msg = 0;
  }
  if (*line) snprintf(e->last_line, sizeof e->last_line, "%s", line);
  pthread_mutex_unlock(&e->mu);
}

static void relay(struct relay_arg *a, const char *line, int *after_msg,
                  int *pending) {
  pthread_mutex_lock(&a->e->mu);
  int kept = keep_message(a->e, line, pending);
  pthread_mutex_unlock(&a->e->mu);
  if (!kept && a->to) app_out_line(a->to, line);
  note_line(a->e, line, after_msg);
}

static void *relay_main(void *p) {
  struct relay_arg *a = p;
  char buf[4096], line[1024];
  size_t ll = 0;
  int after_msg = 0, pending = -1;
  for (;;) {
    ssize_t r = read(a->fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++) {
      char c = buf[i];
      if (c != '\n' && ll < sizeof line - 1) {
        line[ll++] = c;
        continue;
      }
      if (c != '\n') continue; /* over-long line: the rest is dropped */
      line[ll] = 0;
      relay(a, line, &after_msg, &pending);
      ll = 0;
    }
  }
  if (ll > 0) {
    line[ll] = 0;
    relay(a, line, &after_msg, &pending);
  }
  free(a);
  return NULL;
}

static void *waiter_main(void *p) {
  struct engine *e = p;
  int st = 0;
  siginfo_t si;
  /* Wait without reaping first, so engine_kill (under the same lock) can
   * never signal a recycled pid. */
  while (waitid(P_PID, (id_t)e->pid, &si, WEXITED | WNOWAIT) < 0 &&
         errno == EINTR) {
  }
  pthread_mutex_lock(&e->mu);
  while (waitpid(e->pid, &st, 0) < 0 && errno == EINTR) {
  }
  e->exited = 1;
  e->status = st;
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->mu);
  if (e->on_exit) e->on_exit(e->on_exit_ctx, st);
  return NULL;
}

int engine_start(struct engine *e, const char *vdisql, const char *instance,
                 const char *statement) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  e->pid = -1;
  e->out_fd = e->err_fd = -1;
  if (!e->relay_to_out) e->relay_to_out = stdout;
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    app_err("pipe: %s", strerror(errno));
    goto fail;
  }
  const char *argv[10];
  int argc = 0;
  argv[argc++] = vdisql;
  if (instance) {
    argv[argc++] = "-S";
    argv[argc++] = instance;
  }
  argv[argc++] = "-b";
  argv[argc++] = "-Q";
  argv[argc++] = statement;
  argv[argc] = NULL;

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  /* Our threads block the termination signals; the engine must not inherit
   * that mask, nor any ignored disposition. */
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                    POSIX_SPAWN_SETPGROUP);
  int rc = posix_spawn(&e->pid, vdisql, &fa, &at, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) {
    app_err("cannot run %s: %s", vdisql, strerror(rc));
    e->pid = -1;
    goto fail;
  }
  close(out[1]);
  close(err[1]);
  e->out_fd = out[0];
  e->err_fd = err[0];

  for (int i = 0; i < 2; i++) {
    struct relay_arg *a = malloc(sizeof *a);
    if (!a) abort();
    a->e = e;
    a->fd = i == 0 ? e->out_fd : e->err_fd;
    a->to = i == 0 ? (e->discard_out ? NULL : e->relay_to_out) : stderr;
    if (pthread_create(&e->relay[i], NULL, relay_main, a) != 0) abort();
    e->relay_started[i] = 1;
  }
  if (pthread_create(&e->waiter, NULL, waiter_main, e) != 0) abort();
  e->waiter_started = 1;
  return 0;
fail:
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
  }
  return -1;
}

/* The engine speaks SQL Server's language; where the remedy is a vdi
 * option, say that instead. */
static void translate(int num, const char *text, char *out, size_t n) {
  const char *with = strstr(text, "WITH REPLACE");
  if (with && num != 0) {
    /* Cut the sentence that names the clause ("Use ... WITH REPLACE ..."). */
    const char *use = with;
    while (use > text && !(use[0] == 'U' && use[1] == 's' && use[2] == 'e' &&
                           (use == text || use[-1] == ' ')))
      use--;
    snprintf(out, n, "%.*sUse --replace to overwrite it.", (int)(use - text),
             text);
    return;
  }
  if (num == 0 && strstr(text, "instance")) {
    snprintf(out, n, "%s (check --instance)", text);
    return;
  }
  snprintf(out, n, "%s", text);
}

int engine_report(struct engine *e, int failed) {
  pthread_mutex_lock(&e->mu);
  int n = e->nmsgs;
  pthread_mutex_unlock(&e->mu);
  for (int i = 0; i < n; i++) {
    char t[800];
    translate(e->msg_num[i], e->msg_text[i], t, sizeof t);
    if (e->msg_num[i] == 0) {
      if (failed)
        app_err("%s", t);
      else
        app_warn("%s", t);
    } else if (failed) {
      app_err("%s (Msg %d)", t, e->msg_num[i]);
    } else {
      app_warn("%s (Msg %d)", t, e->msg_num[i]);
    }
  }
  return n;
}

int engine_exited(struct engine *e) {
  pthread_mutex_lock(&e->mu);
  int x = e->exited;
  pthread_mutex_unlock(&e->mu);
  return x;
}

int engine_wait(struct engine *e, int timeout_ms) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  if (timeout_ms >= 0) {
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&e->mu);
  while (!e->exited) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&e->cv, &e->mu);
    } else if (pthread_cond_timedwait(&e->cv, &e->mu, &dl) == ETIMEDOUT) {
      break;
    }
  }
  int x = e->exited;
  pthread_mutex_unlock(&e->mu);
  return x;
}

void engine_kill(struct engine *e) {
  pthread_mutex_lock(&e->mu);
  /* Only while not yet reaped: afterwards the pid may be someone else's. */
  if (!e->exited && e->pid > 0) kill(e->pid, SIGKILL);
  pthread_mutex_unlock(&e->mu);
}

int engine_finish(struct engine *e) {
  if (e->waiter_started) pthread_join(e->waiter, NULL);
  for (int i = 0; i < 2; i++)
    if (e->relay_started[i]) pthread_join(e->relay[i], NULL);
  if (e->out_fd >= 0) close(e->out_fd);
  if (e->err_fd >= 0) close(e->err_fd);
  e->out_fd = e->err_fd = -1;
  int st = e->status;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}
