// SPDX-License-Identifier: Apache-2.0
/*
 * client.c - the client under test as a process: its command line and
 * environment with the placeholders filled in, started in a process group
 * of its own (so that everything it starts can be found and killed), its
 * output in a log file (through a pipe, cut to its first and last
 * LOG_KEEP bytes), waited for with a deadline, and the group checked for
 * processes left behind when the client itself has ended.  Values put
 * into a `sh -c` script are shell-quoted when they are not plain words.
 */
#include "conform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Characters that never mean anything to sh inside a word. */
static int plain_word(const char *v) {
  if (!*v) return 0;
  for (const char *c = v; *c; c++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789_./:=@%+,-",
                *c))
      return 0;
  return 1;
}

/* v in single quotes, a quote inside as '\'' (malloc'd). */
static char *sh_quoted(const char *v) {
  char *q = malloc(strlen(v) * 4 + 3), *o = q;
  if (!q) abort();
  *o++ = '\'';
  for (; *v; v++) {
    if (*v == '\'') {
      memcpy(o, "'\\''", 4);
      o += 4;
    } else {
      *o++ = *v;
    }
  }
  *o++ = '\'';
  *o = 0;
  return q;
}

char *placeholders_expand(const char *s, const struct placeholders *ph,
                          int shell_quote) {
  size_t cap = strlen(s) + 256, len = 0;
  char *out = malloc(cap);
  if (!out) abort();
  while (*s) {
    char num[32];
    const char *val = NULL;
    size_t skip = 0;
    static const char *const keys[] = {
        "{set}", "{device}", "{devices}", "{file}",     "{dir}",
        "{db}",  "{op}",     "{engine}",  "{scenario}", "{seed}"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0] && *s == '{'; k++) {
      size_t kl = strlen(keys[k]);
      if (strncmp(s, keys[k], kl) != 0) continue;
      skip = kl;
      switch (k) {
      case 0:
        val = ph->set;
        break;
      case 1:
        val = ph->device;
        break;
      case 2:
        snprintf(num, sizeof num, "%d", ph->devices);
        val = num;
        break;
      case 3:
        val = ph->file;
        break;
      case 4:
        val = ph->dir;
        break;
      case 5:
        val = ph->db;
        break;
      case 6:
        val = ph->op;
        break;
      case 7:
        val = ph->engine;
        break;
      case 8:
        val = ph->scenario;
        break;
      default:
        snprintf(num, sizeof num, "%llu", (unsigned long long)ph->seed);
        val = num;
        break;
      }
      break;
    }
    if (!skip) {
      val = s;
      skip = 1;
    }
    char *quoted = NULL;
    if (val != s && shell_quote && !plain_word(val ? val : ""))
      val = quoted = sh_quoted(val ? val : "");
    size_t vl = val == s ? 1 : strlen(val ? val : "");
    if (len + vl + 1 > cap) {
      cap = (len + vl + 1) * 2;
      out = realloc(out, cap);
      if (!out) abort();
    }
    memcpy(out + len, val ? val : "", vl);
    len += vl;
    s += skip;
    free(quoted);
  }
  out[len] = 0;
  return out;
}

/* argv[i] is the script of a shell's -c ("sh -c SCRIPT", "bash -ec
 * SCRIPT"): placeholders in it are parsed by sh, so they are quoted. */
static int is_shell_script(char **argv, int i) {
  if (i < 2) return 0;
  const char *f = argv[i - 1];
  if (f[0] != '-' || f[strlen(f) - 1] != 'c' || strchr(f, '-') != f ||
      strspn(f + 1, "abcdefghijklmnopqrstuvwxyz") != strlen(f + 1))
    return 0;
  for (int k = 0; k < i - 1; k++) {
    const char *b = strrchr(argv[k], '/');
    b = b ? b + 1 : argv[k];
    static const char *const shells[] = {"sh",  "bash", "dash",
                                         "ksh", "zsh",  "ash"};
    for (size_t j = 0; j < sizeof shells / sizeof shells[0]; j++)
      if (strcmp(b, shells[j]) == 0) return 1;
  }
  return 0;
}

/* The logger: the first LOG_KEEP bytes go to the log as they come, the
 * rest through a ring of the last LOG_KEEP; at the end a line says how
 * much was cut, then the ring.  Ends at end of file, or when told to
 * (something the client left behind may hold the pipe open). */
static void *logger_main(void *arg) {
  struct client *cl = arg;
  int fd = open(cl->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char *ring = malloc(LOG_KEEP), buf[16384];
  if (!ring) abort();
  uint64_t head = 0, total = 0;
  int64_t stop_at = 0;
  for (;;) {
    /* Told to stop: what is already in the pipe is read, for a moment;
     * a writer outside the client's group may never stop. */
    if (cl->logger_stop) {
      if (!stop_at) stop_at = mono_ms() + 200;
      if (mono_ms() > stop_at) break;
    }
    struct pollfd pf = {.fd = cl->log_fd, .events = POLLIN};
    int pr = poll(&pf, 1, 50);
    if (pr == 0) {
      if (cl->logger_stop) break;
      continue;
    }
    if (pr < 0 && errno == EINTR) continue;
    ssize_t k = read(cl->log_fd, buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    size_t off = 0;
    if (head < LOG_KEEP) {
      size_t take = (size_t)k < LOG_KEEP - head ? (size_t)k : LOG_KEEP - head;
      if (fd >= 0 && write(fd, buf, take) != (ssize_t)take) {
        close(fd);
        fd = -1;
      }
      head += take;
      off = take;
    }
    for (; off < (size_t)k; off++, total++)
      ring[total % LOG_KEEP] = buf[off];
  }
  cl->log_bytes = head + total;
  if (fd >= 0 && total > 0) {
    size_t from = 0, n = (size_t)total;
    if (total > LOG_KEEP) {
      char note[160];
      int nl = snprintf(note, sizeof note,
                        "\n[%s: %llu bytes of the client's output cut here; "
                        "the first and last %d KiB are kept]\n",
                        CONFORM_NAME, (unsigned long long)(total - LOG_KEEP),
                        LOG_KEEP / 1024);
      if (write(fd, note, (size_t)nl) != nl) n = 0;
      /* The ring in order: its oldest byte is the next one to write. */
      from = (size_t)(total % LOG_KEEP);
      n = n ? LOG_KEEP : 0;
    }
    size_t first = n > LOG_KEEP - from ? LOG_KEEP - from : n;
    if (write(fd, ring + from, first) == (ssize_t)first && n > first)
      (void)!write(fd, ring, n - first);
  }
  free(ring);
  if (fd >= 0) close(fd);
  return NULL;
}

static void logger_end(struct client *cl) {
  if (!cl->logger_running) return;
  /* The group was killed: the pipe ends at once unless something outside
   * it holds the write end; give that a moment, then stop reading. */
  int64_t until = mono_ms() + 500;
  struct pollfd pf = {.fd = cl->log_fd, .events = POLLIN};
  while (mono_ms() < until && poll(&pf, 1, 0) >= 0 && !(pf.revents & POLLHUP))
    sleep_ms(10);
  cl->logger_stop = 1;
  pthread_join(cl->logger, NULL);
  cl->logger_running = 0;
  close(cl->log_fd);
  cl->log_fd = -1;
}

static void setenv_ph(const char *name, const char *val) {
  setenv(name, val ? val : "", 1);
}

int client_start(struct client *cl, const struct options *o,
                 const struct placeholders *ph, char *why, size_t n) {
  char **argv = calloc((size_t)o->argc + 1, sizeof *argv);
  if (!argv) abort();
  for (int i = 0; i < o->argc; i++)
    argv[i] = placeholders_expand(o->argv[i], ph, is_shell_script(o->argv, i));
  char **env = calloc((size_t)o->nenv + 1, sizeof *env);
  if (!env) abort();
  for (int i = 0; i < o->nenv; i++)
    env[i] = placeholders_expand(o->env[i], ph, 0);
  cl->exited = cl->timed_out = 0;
  cl->leftovers[0] = 0;
  cl->log_fd = -1;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) {
    snprintf(why, n, "pipe: %s", strerror(errno));
    return -1;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(why, n, "fork: %s", strerror(errno));
    close(pfd[0]);
    close(pfd[1]);
    return -1;
  }
  if (pid == 0) {
    /* Its own group, so that its children can be found and killed; and
     * it dies with us, whatever happens to us. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, 0);
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    char num[32];
    setenv_ph("VDI_CONFORM_SET", ph->set);
    setenv_ph("VDI_CONFORM_DEVICE", ph->device);
    snprintf(num, sizeof num, "%d", ph->devices);
    setenv_ph("VDI_CONFORM_DEVICES", num);
    setenv_ph("VDI_CONFORM_FILE", ph->file);
    setenv_ph("VDI_CONFORM_DIR", ph->dir);
    setenv_ph("VDI_CONFORM_DB", ph->db);
    setenv_ph("VDI_CONFORM_OP", ph->op);
    setenv_ph("VDI_CONFORM_ENGINE", ph->engine);
    setenv_ph("VDI_CONFORM_SCENARIO", ph->scenario);
    snprintf(num, sizeof num, "%llu", (unsigned long long)ph->seed);
    setenv_ph("VDI_CONFORM_SEED", num);
    for (int i = 0; env[i]; i++)
      putenv(env[i]);
    signal(SIGPIPE, SIG_DFL);
    if (cl->fsize_limit) {
      /* A full medium: writes past the limit fail with EFBIG (SIGXFSZ
       * ignored, which exec keeps, so that the client sees the error
       * instead of dying of it). */
      struct rlimit rl = {cl->fsize_limit, cl->fsize_limit};
      signal(SIGXFSZ, SIG_IGN);
      setrlimit(RLIMIT_FSIZE, &rl);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "%s: cannot run %s: %s\n", CONFORM_NAME, argv[0],
            strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid); /* also here: no race with the child's own call */
  cl->pid = pid;
  close(pfd[1]);
  cl->log_fd = pfd[0];
  cl->logger_stop = 0;
  if (pthread_create(&cl->logger, NULL, logger_main, cl) != 0) abort();
  cl->logger_running = 1;
  for (int i = 0; i < o->argc; i++)
    free(argv[i]);
  free(argv);
  for (int i = 0; i < o->nenv; i++)
    free(env[i]);
  free(env);
  return 0;
}

int client_poll(struct client *cl) {
  if (cl->exited) return 1;
  int st = 0;
  pid_t w = waitpid(cl->pid, &st, WNOHANG);
  if (w == cl->pid) {
    cl->exited = 1;
    cl->status = st;
    cl->end_ms = mono_ms();
    return 1;
  }
  /* Not our child (the server runs in a child process in the kill
   * scenario): all we can see is whether it still runs; a zombie waits
   * for the scenario's process to reap it. */
  if (w < 0 && errno == ECHILD) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)cl->pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 1;
    ssize_t k = read(fd, stat, sizeof stat - 1);
    close(fd);
    stat[k > 0 ? k : 0] = 0;
    const char *rp = strrchr(stat, ')');
    return !rp || rp[1] == 0 || rp[2] == 'Z' || rp[2] == 'X';
  }
  return 0;
}

int group_each(pid_t pgid, void (*fn)(long pid, const char *comm, void *arg),
               void *arg) {
  DIR *dir = opendir("/proc");
  int count = 0;
  if (!dir) return 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t k = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (k <= 0) continue;
    stat[k] = 0;
    /* "pid (comm) state ppid pgrp ...": comm may hold spaces. */
    char *lp = strchr(stat, '('), *rp = strrchr(stat, ')');
    if (!lp || !rp) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp != pgid || state == 'Z') continue;
    *rp = 0;
    if (fn) fn(pid, lp + 1, arg);
    count++;
  }
  closedir(dir);
  return count;
}

struct members {
  char *buf;
  size_t n;
  int count;
};

static void add_member(long pid, const char *comm, void *arg) {
  struct members *m = arg;
  size_t used = strlen(m->buf);
  if (used + 64 < m->n)
    snprintf(m->buf + used, m->n - used, "%spid %ld (%.24s)",
             m->count ? ", " : "", pid, comm);
  m->count++;
}

/* Processes of group pgid, as "pid N (comm)" list. */
static int group_members(pid_t pgid, char *buf, size_t n) {
  struct members m = {buf, n, 0};
  buf[0] = 0;
  return group_each(pgid, add_member, &m);
}

void client_finish(struct client *cl, int64_t deadline_ms) {
  while (!client_poll(cl)) {
    if (mono_ms() >= deadline_ms) {
      cl->timed_out = 1;
      kill(-cl->pid, SIGKILL);
      int st = 0;
      /* SIGKILL cannot be refused: the wait ends. */
      if (waitpid(cl->pid, &st, 0) == cl->pid) cl->status = st;
      cl->exited = 1;
      cl->end_ms = mono_ms();
      break;
    }
    sleep_ms(10);
  }
  /* Whatever is left in its group outlived the client: note it, give it
   * a moment (a child may be on its way out), then kill it. */
  char who[256];
  int64_t until = mono_ms() + 300;
  int left;
  while ((left = group_members(cl->pid, who, sizeof who)) > 0 &&
         mono_ms() < until)
    sleep_ms(20);
  if (left > 0 && !cl->timed_out)
    snprintf(cl->leftovers, sizeof cl->leftovers, "%s", who);
  kill(-cl->pid, SIGKILL);
  logger_end(cl);
}

void client_describe(const struct client *cl, char *buf, size_t n) {
  if (cl->timed_out)
    snprintf(buf, n, "was still running at the deadline (killed)");
  else if (!cl->exited)
    snprintf(buf, n, "is running");
  else if (WIFEXITED(cl->status))
    snprintf(buf, n, "exited %d", WEXITSTATUS(cl->status));
  else if (WIFSIGNALED(cl->status))
    snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(cl->status),
             strsignal(WTERMSIG(cl->status)));
  else
    snprintf(buf, n, "ended (status 0x%x)", (unsigned)cl->status);
}

int client_succeeded(const struct client *cl) {
  return cl->exited && !cl->timed_out && WIFEXITED(cl->status) &&
         WEXITSTATUS(cl->status) == 0;
}

/* The last n bytes of the log, NUL-terminated; its length. */
static size_t log_tail(const struct client *cl, char *buf, size_t n) {
  buf[0] = 0;
  int fd = open(cl->log, O_RDONLY);
  if (fd < 0) return 0;
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > (off_t)(n - 1) ? size - (off_t)(n - 1) : 0;
  ssize_t k = pread(fd, buf, n - 1, from);
  close(fd);
  if (k < 0) k = 0;
  buf[k] = 0;
  return (size_t)k;
}

void client_last_line(const struct client *cl, char *buf, size_t n) {
  char tail[1024];
  size_t k = log_tail(cl, tail, sizeof tail);
  while (k > 0 &&
         (tail[k - 1] == '\n' || tail[k - 1] == '\r' || tail[k - 1] == ' '))
    tail[--k] = 0;
  char *line = strrchr(tail, '\n');
  line = line ? line + 1 : tail;
  snprintf(buf, n, "%.160s", line);
}

void client_tail(const struct client *cl, char *buf, size_t n) {
  log_tail(cl, buf, n);
}

int set_listening(const char *set) {
  /* libvdi's rendezvous: an abstract Unix socket "openvdi:0::<set>" for
   * the default instance (docs/PROTOCOL.md), listed in /proc/net/unix
   * with '@' for the leading NUL. */
  char want[160], line[512];
  snprintf(want, sizeof want, "@openvdi:0::%s", set);
  FILE *f = fopen("/proc/net/unix", "r");
  if (!f) return -1;
  int found = 0;
  size_t wl = strlen(want);
  while (!found && fgets(line, sizeof line, f)) {
    char *p = strchr(line, '@');
    if (!p) continue;
    size_t k = strcspn(p, "\r\n");
    found = k == wl && memcmp(p, want, wl) == 0;
  }
  fclose(f);
  return found;
}
