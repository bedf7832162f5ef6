// SPDX-License-Identifier: Apache-2.0
/*
 * runner.c - scenarios as processes.  Each scenario runs in a child
 * process of its own (so a scenario cannot disturb another, and the kit's
 * main process survives anything a client does to one), `--jobs` at a
 * time; the child sends its result back through a pipe.  Inside, a
 * scenario is one or two phases (backup, then the matching restore), each
 * a client process started with the placeholders filled in and the server
 * half played against it (server.c), and a verdict from what the server
 * saw and how the client ended.
 */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void verdict_fail(struct result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void verdict_fail(struct result *res, const char *fmt, ...) {
  va_list ap;
  res->verdict = V_FAIL;
  va_start(ap, fmt);
  vsnprintf(res->evidence, sizeof res->evidence, fmt, ap);
  va_end(ap);
}

static int uses_engine(const struct options *o) {
  for (int i = 0; i < o->argc; i++)
    if (strstr(o->argv[i], "{engine}")) return 1;
  for (int i = 0; i < o->nenv; i++)
    if (strstr(o->env[i], "{engine}")) return 1;
  return 0;
}

/* Judge one phase; 0 to go on to the next one, -1 when decided. */
static int judge(const struct scenario *sc, const struct phase *p,
                 const struct client *cl, struct result *res) {
  char how[160], last[200];
  client_describe(cl, how, sizeof how);
  client_last_line(cl, last, sizeof last);
  const char *what = p->restore ? "restore" : "backup";
  /* The scenario's fault, or one the client's own condition brought:
   * its medium full (disk_full), the restore refused (restore_fewer). */
  int faulty = (sc->fault != F_NONE && sc->fault != F_SLOW &&
                sc->fault_restore == p->restore) ||
               p->full_code || p->refused;
  char fewer[160] = "";
  if (p->refused)
    snprintf(fewer, sizeof fewer,
             "SQL Server refused the restore (only %d of the backup's %d "
             "media families presented) and aborted",
             p->ndev, sc->ndev);
  if (p->not_applicable) {
    res->verdict = V_NA;
    snprintf(res->evidence, sizeof res->evidence, "not applicable: %s",
             p->note);
    return -1;
  }
  if (!faulty) {
    if (p->failure[0]) {
      char limited[200] = "";
      if (sc->disk_full && p->restore)
        snprintf(limited, sizeof limited,
                 " (its backup had files limited to %llu bytes, "
                 "RLIMIT_FSIZE, and completed every write with success)",
                 (unsigned long long)(p->backup_bytes[0] / 2));
      verdict_fail(res, "%s: %s%s; the client %s; its last line: '%s'", what,
                   p->failure, limited, how, last);
      return -1;
    }
    if (!p->completed_ok) {
      verdict_fail(res,
                   "%s: the transfer did not end normally; the client %s; "
                   "its last line: '%s'",
                   what, how, last);
      return -1;
    }
    if (!client_succeeded(cl)) {
      verdict_fail(res,
                   "%s: every command completed correctly and every device "
                   "was closed, but the client %s (a client must report the "
                   "success it had); its last line: '%s'",
                   what, how, last);
      return -1;
    }
    if (sc->close_check && p->client_closed == VD_E_NOTSUPPORTED) {
      res->verdict = V_NA;
      snprintf(res->evidence, sizeof res->evidence,
               "not applicable: the client's VDI library does not report its "
               "Close (not libvdi 0.3 or later)");
      return -1;
    }
    if (sc->close_check && p->client_closed != 1) {
      verdict_fail(res,
                   "%s: the client %s without calling Close on its set "
                   "(vdi_set_close, IClientVirtualDeviceSet::Close, "
                   "ClientVirtualDeviceSet::Close)%s%s; its last line: '%s'",
                   what, how, p->client_closed < 0 ? ": " : "",
                   p->client_closed < 0 ? vdi_error_name(p->client_closed) : "",
                   last);
      return -1;
    }
  } else {
    if (p->failure[0] && sc->fault != F_NO_SERVER) {
      verdict_fail(res, "%s, before the fault: %s; the client %s", what,
                   p->failure, how);
      return -1;
    }
    if (!p->fault_fired && sc->fault != F_NO_SERVER) {
      verdict_fail(res,
                   "%s: the fault could not be injected (%s); the client "
                   "%s; its last line: '%s'",
                   what,
                   p->failure[0] ? p->failure
                                 : "the server never got "
                                   "that far",
                   how, last);
      return -1;
    }
    if (sc->fault == F_TIMEOUT && p->overstayed_ms > 0) {
      verdict_fail(res,
                   "%s: the client set serverTimeOut %u ms, but was still "
                   "waiting %lld ms after the server's last command (the kit "
                   "then aborted; the client %s): it must give up by itself",
                   what, p->server_timeout_ms, (long long)p->overstayed_ms,
                   how);
      return -1;
    }
    if (client_succeeded(cl)) {
      verdict_fail(res,
                   "%s: the client exited 0 (reported success) although %s; "
                   "its last line: '%s'",
                   what,
                   p->refused                 ? fewer
                   : p->full_code             ? "its medium was full and the "
                                                "server aborted the backup"
                   : sc->fault == F_NO_SERVER ? "no server ever attached"
                   : sc->fault == F_KILL      ? "the server was killed "
                                                "mid-stream"
                   : sc->fault == F_TIMEOUT   ? "the server sent nothing "
                                                "beyond its serverTimeOut"
                                              : "the server aborted mid-stream",
                   last);
      return -1;
    }
    if (cl->timed_out) {
      verdict_fail(res,
                   "%s: the client was still running %d s into the phase "
                   "after the fault (killed): it must give up and report "
                   "failure",
                   what, p->o->timeout_s);
      return -1;
    }
    if (!WIFEXITED(cl->status)) {
      verdict_fail(res,
                   "%s: the client %s after the fault; a client must end "
                   "with a failure status, not crash",
                   what, how);
      return -1;
    }
    if (sc->fault == F_NO_SERVER && p->set_seen == 0) {
      verdict_fail(res,
                   "%s: the client %s without ever creating set '%s'; its "
                   "last line: '%s'",
                   what, how, p->set_name, last);
      return -1;
    }
  }
  if (cl->leftovers[0]) {
    verdict_fail(res,
                 "%s: the client ended but left processes behind in its "
                 "process group: %s (killed by the kit)",
                 what, cl->leftovers);
    return -1;
  }
  char after[64] = "";
  if (faulty && p->fault_ms > 0)
    snprintf(after, sizeof after, " %lld ms after the fault",
             (long long)(cl->end_ms - p->fault_ms));
  char cause[400] = "";
  if (p->full_code)
    snprintf(cause, sizeof cause, "%s; the kit aborted as SQL Server does; ",
             p->full_what);
  else if (p->refused)
    snprintf(cause, sizeof cause, "%s; ", fewer);
  snprintf(res->evidence, sizeof res->evidence, "%s: %s%sclient %s%s%s%s", what,
           cause, p->kept.detail, how, after, last[0] ? ": " : "", last);
  return 0;
}

static void set_name_for(const struct scenario *sc, int restore, char *buf,
                         size_t n) {
  int len = snprintf(buf, n, "conform-%s-%d-%c", sc->name, (int)getpid(),
                     restore ? 'r' : 'b');
  if (sc->name_len > 0 && (size_t)sc->name_len < n) {
    /* Padded to exactly the limit with a digit pattern. */
    for (int i = len; i < sc->name_len; i++)
      buf[i] = (char)('0' + i % 10);
    buf[sc->name_len] = 0;
  }
}

/* Run the server in a child process that the kill scenario SIGKILLs; the
 * phase record is shared memory, so what it found survives it. */
static void server_in_child(struct phase *p) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    server_phase(p);
    _exit(0);
  }
  if (pid < 0) {
    snprintf(p->failure, sizeof p->failure, "fork: %s", strerror(errno));
    return;
  }
  int st;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (mono_ms() > p->deadline_ms + 5000) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    sleep_ms(10);
  }
}

static void run_scenario(const struct options *o, const struct scenario *sc,
                         const char *workdir, struct result *res) {
  int64_t t0 = mono_ms();
  char dir[4000], engine[4300] = "", file[4200];
  snprintf(dir, sizeof dir, "%.3900s/%s", workdir, sc->name);
  mkdir(dir, 0700);
  snprintf(file, sizeof file, "%s/data", dir);
  int engine_mode = uses_engine(o);
  if (engine_mode && engine_script(dir, o->self, o->timeout_s * 1000, engine,
                                   sizeof engine) != 0) {
    verdict_fail(res, "kit: cannot write %s/engine", dir);
    return;
  }
  struct phase *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) abort();
  uint64_t per_dev = scenario_bytes(sc, o->quick);
  res->verdict = V_PASS;
  int nphases = sc->roundtrip ? 2 : 1;
  for (int ph = 0; ph < nphases; ph++) {
    /* What the backup found, for the restore. */
    struct phase_kept kept = p->kept;
    memset(p, 0, sizeof *p);
    p->kept = kept;
    p->sc = sc;
    p->o = o;
    p->restore = ph == 1;
    p->seed = o->seed;
    p->engine_mode = engine_mode;
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    p->deadline_ms = mono_ms() + (int64_t)o->timeout_s * 1000;
    for (int i = 0; i < VDI_MAX_DEVICES; i++)
      p->backup_bytes[i] = per_dev;
    set_name_for(sc, p->restore, p->set_name, sizeof p->set_name);
    if (sc->name_len && engine_mode) {
      res->verdict = V_NA;
      snprintf(res->evidence, sizeof res->evidence,
               "not applicable: the client names its own set ({engine})");
      break;
    }
    char dirn[4400];
    snprintf(dirn, sizeof dirn, "%s/engine.req", dir);
    unlink(dirn);
    snprintf(dirn, sizeof dirn, "%s/engine.verdict", dir);
    unlink(dirn);
    struct placeholders phs = {
        .set = p->set_name,
        .device = p->set_name,
        .file = file,
        .dir = dir,
        .db = o->db,
        .op = p->restore ? "restore" : "backup",
        .engine = engine,
        .scenario = sc->name,
        .devices = phase_devices(p),
        .seed = o->seed,
    };
    struct client cl;
    memset(&cl, 0, sizeof cl);
    /* A medium that holds half the backup. */
    if (sc->disk_full && !p->restore) cl.fsize_limit = per_dev / 2;
    snprintf(cl.log, sizeof cl.log, "%s/client-%s.log", dir, phs.op);
    char why[256];
    if (client_start(&cl, o, &phs, why, sizeof why) != 0) {
      verdict_fail(res, "kit: %s", why);
      break;
    }
    p->cl = &cl;
    if (sc->fault == F_NO_SERVER) {
      /* Nobody attaches.  A statement through {engine} fails after
       * --slow-ms, as one whose server never starts would. */
      p->fault_fired = 1;
      p->fault_ms = mono_ms();
      if (engine_mode) {
        char op[32], names[VDI_MAX_DEVICES][VDI_MAX_NAME + 1];
        int nd = 0;
        if (engine_wait_request(dir, &cl, p->deadline_ms, op, sizeof op, names,
                                &nd, why, sizeof why) == 0) {
          snprintf(p->set_name, sizeof p->set_name, "%s", names[0]);
          p->set_seen = set_listening(p->set_name);
          int64_t until = mono_ms() + o->slow_ms;
          while (mono_ms() < until && !client_poll(&cl))
            sleep_ms(10);
          engine_verdict(dir, 1);
        }
      }
      /* Watch for the client's set while it waits, so that a client that
       * never even created it does not pass for one that gave up. */
      while (!client_poll(&cl) && mono_ms() < p->deadline_ms) {
        if (!p->set_seen) p->set_seen = set_listening(p->set_name);
        sleep_ms(10);
      }
      client_finish(&cl, p->deadline_ms);
    } else {
      if (sc->fault == F_KILL && sc->fault_restore == p->restore)
        server_in_child(p);
      else
        server_phase(p);
      if (engine_mode) engine_verdict(dir, !p->completed_ok || p->failure[0]);
      client_finish(&cl, p->deadline_ms);
    }
    client_tail(&cl, res->tail, sizeof res->tail);
    if (judge(sc, p, &cl, res) != 0) break;
    /* The backup failed as it should: nothing to restore. */
    if (p->full_code) break;
  }
  munmap(p, sizeof *p);
  res->seconds = (double)(mono_ms() - t0) / 1000.0;
}

/* ------------------------------------------------------------ parallel */

struct job {
  pid_t pid;
  int fd;
  int idx;
  int64_t start;
  size_t got;
  struct result r;
};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void runner_run(const struct options *o, const struct scenario **list, int n,
                struct result *res) {
  char workdir[4096];
  if (o->workdir) {
    snprintf(workdir, sizeof workdir, "%s", o->workdir);
    mkdir(workdir, 0700);
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(workdir, sizeof workdir, "%s/vdi-conform.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(workdir)) {
      for (int i = 0; i < n; i++)
        verdict_fail(&res[i], "kit: cannot make a work directory: %s",
                     strerror(errno));
      return;
    }
  }
  struct job *jobs = calloc((size_t)o->jobs, sizeof *jobs);
  if (!jobs) abort();
  int next = 0, running = 0;
  /* A scenario's process gets both phases' time plus a margin to judge. */
  int64_t hard_ms = (int64_t)o->timeout_s * 2000 + 15000;
  while (next < n || running > 0) {
    for (int j = 0; j < o->jobs && next < n; j++) {
      if (jobs[j].pid) continue;
      int pfd[2];
      if (pipe2(pfd, O_CLOEXEC) != 0) abort();
      fflush(NULL);
      pid_t pid = fork();
      if (pid == 0) {
        close(pfd[0]);
        struct result r;
        memset(&r, 0, sizeof r);
        run_scenario(o, list[next], workdir, &r);
        const char *b = (const char *)&r;
        size_t left = sizeof r;
        while (left > 0) {
          ssize_t w = write(pfd[1], b, left);
          if (w <= 0) break;
          b += w;
          left -= (size_t)w;
        }
        _exit(0);
      }
      close(pfd[1]);
      jobs[j] = (struct job){
          .pid = pid, .fd = pfd[0], .idx = next, .start = mono_ms()};
      next++;
      running++;
    }
    struct pollfd pf[64];
    int map[64], np = 0;
    for (int j = 0; j < o->jobs && np < 64; j++)
      if (jobs[j].pid) {
        pf[np] = (struct pollfd){.fd = jobs[j].fd, .events = POLLIN};
        map[np++] = j;
      }
    poll(pf, (nfds_t)np, 100);
    for (int k = 0; k < np; k++) {
      struct job *jb = &jobs[map[k]];
      int finished = 0;
      if (pf[k].revents) {
        ssize_t r =
            read(jb->fd, (char *)&jb->r + jb->got, sizeof jb->r - jb->got);
        if (r > 0) jb->got += (size_t)r;
        if (r <= 0) finished = 1;
      }
      if (!finished && mono_ms() - jb->start > hard_ms) {
        kill(jb->pid, SIGKILL);
        finished = 1;
      }
      if (!finished) continue;
      int st = 0;
      waitpid(jb->pid, &st, 0);
      close(jb->fd);
      if (jb->got == sizeof jb->r) {
        res[jb->idx] = jb->r;
      } else {
        memset(&res[jb->idx], 0, sizeof res[jb->idx]);
        verdict_fail(&res[jb->idx],
                     "kit: the scenario's process ended without a result "
                     "(status 0x%x)",
                     (unsigned)st);
      }
      jb->pid = 0;
      running--;
    }
  }
  free(jobs);
  if (!o->keep && !o->workdir)
    nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  else if (o->keep)
    fprintf(stderr, "%s: work directory kept: %s\n", CONFORM_NAME, workdir);
}
