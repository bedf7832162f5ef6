/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runner.c - the test runner: every test in its own process, with a timeout.
 *
 *   run-tests                 run every test (in parallel, $VDI_TEST_JOBS)
 *   run-tests -l              list the tests
 *   run-tests PATTERN...      run the tests whose names start with a pattern
 *   run-tests -x PATTERN ...  (before patterns) leave those tests out
 *   run-tests --helper NAME [ARGS]   run one helper in this process
 *
 * Each test is forked into its own process group in a fresh temporary
 * directory; when it passes its time limit the whole group is killed, so a
 * hanging or crashing test fails alone.  The last line printed is
 * "N passed, N failed, N skipped".
 */
#include "task.h"

#include "vdi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test_entry {
  const char *name;
  test_fn fn;
  int timeout_s;
  int alone; /* TEST_IMPL_ALONE: nothing else runs beside it */
};
struct helper_entry {
  const char *name;
  helper_fn fn;
};

static struct test_entry *tests;
static size_t ntests, captests;
static struct helper_entry *helpers;
static size_t nhelpers, caphelpers;
static char self_exe[4096];
static char tmpdir_path[4096];

void runner_register_test(const char *name, test_fn fn, int timeout_s,
                          int alone) {
  if (ntests == captests) {
    captests = captests ? captests * 2 : 64;
    tests = realloc(tests, captests * sizeof *tests);
    if (!tests) abort();
  }
  tests[ntests++] = (struct test_entry){name, fn, timeout_s, alone};
}

void runner_register_helper(const char *name, helper_fn fn) {
  if (nhelpers == caphelpers) {
    caphelpers = caphelpers ? caphelpers * 2 : 64;
    helpers = realloc(helpers, caphelpers * sizeof *helpers);
    if (!helpers) abort();
  }
  helpers[nhelpers++] = (struct helper_entry){name, fn};
}

const char *task_code_name(int rc) {
  static __thread char buf[32];
  const char *n = vdi_error_name(rc);
  if (n && strcmp(n, "?") != 0) return n;
  snprintf(buf, sizeof buf, "%d", rc);
  return buf;
}

int64_t now_ms(void) {
  return now_us() / 1000;
}

int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

const char *unique_name(const char *tag) {
  static __thread char buf[96];
  static int counter;
  snprintf(buf, sizeof buf, "t%d_%s_%d", (int)getpid(), tag,
           __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
  return buf;
}

const char *test_tmpdir(void) {
  return tmpdir_path;
}

const char *build_path(const char *prog) {
  static __thread char buf[8300];
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", self_exe);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  snprintf(buf, sizeof buf, "%s/%s", dir, prog);
  if (access(buf, X_OK) != 0) {
    /* Sanitizer builds live in build/<kind>/; tools in build/. */
    char *s2 = strrchr(dir, '/');
    if (s2) {
      *s2 = 0;
      char alt[8300];
      snprintf(alt, sizeof alt, "%s/%s", dir, prog);
      if (access(alt, X_OK) == 0) snprintf(buf, sizeof buf, "%s", alt);
    }
  }
  return buf;
}

void dump_file(const char *path) {
  FILE *f = fopen(path, "r");
  char line[512];
  if (!f) return;
  fprintf(stderr, "--- %s\n", path);
  while (fgets(line, sizeof line, f))
    fputs(line, stderr);
  fclose(f);
}

int count_dir(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  struct dirent *e;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

int count_open_fds(void) {
  int n = count_dir("/proc/self/fd");
  return n < 0 ? -1 : n - 1; /* the directory stream's own descriptor */
}

/* In the child: point descriptor `to` at `path`, if it can be opened. */
static int redirect(int to, const char *path, int flags) {
  int fd = open(path, flags, 0644);
  if (fd < 0) return 0;
  dup2(fd, to);
  if (fd != to) close(fd);
  return 1;
}

pid_t spawn_program(const char *path, const char *const *args,
                    const spawn_io *io) {
  static const spawn_io none;
  if (!io) io = &none;
  const char *argv[64];
  int argc = 0;
  argv[argc++] = path;
  for (int i = 0; args && args[i] && argc < 63; i++)
    argv[argc++] = args[i];
  argv[argc] = NULL;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) TASK_FAIL_("fork: %s", strerror(errno));
  if (pid == 0) {
    redirect(0, io->in ? io->in : "/dev/null", O_RDONLY);
    int flags = O_WRONLY | O_CREAT | (io->append ? O_APPEND : O_TRUNC);
    if (io->out && redirect(1, io->out, flags)) dup2(1, 2);
    if (io->out_only) redirect(1, io->out_only, O_WRONLY | O_CREAT | O_TRUNC);
    for (int i = 0; io->env && io->env[i]; i++)
      putenv((char *)io->env[i]);
    execv(path, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

pid_t spawn_helper(const char *name, ...) {
  const char *argv[64];
  int argc = 0;
  argv[argc++] = self_exe;
  argv[argc++] = "--helper";
  argv[argc++] = name;
  va_list ap;
  va_start(ap, name);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 62)
    argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) TASK_FAIL_("fork: %s", strerror(errno));
  if (pid == 0) {
    /* The helper dies with the test, whatever happens to the test. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(self_exe, (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

int wait_helper(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return decode_status(st);
}

int wait_helper_timeout(pid_t pid, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return decode_status(st);
    if (r < 0 && errno != EINTR) return -1;
    if (now_ms() >= end) return -1;
    sleep_ms(2);
  }
}

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(p);
  return 0;
}

static double multiplier(void) {
  const char *m = getenv("VDI_TEST_TIMEOUT_MULTIPLIER");
  double v = m ? atof(m) : 1.0;
  return v > 0 ? v : 1.0;
}

struct running {
  pid_t pid;
  size_t idx;
  int64_t start, deadline;
  int out_fd; /* the test's combined output, read at the end */
  char outpath[256];
};

static pid_t start_test(size_t i, struct running *r) {
  snprintf(r->outpath, sizeof r->outpath, "/tmp/vdi-test-%d-%zu.log",
           (int)getpid(), i);
  int fd = open(r->outpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) TASK_FAIL_("open log: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) TASK_FAIL_("fork: %s", strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/vdi-t-%d-XXXXXX",
             (int)getpid());
    if (!mkdtemp(tmpdir_path)) _exit(1);
    int rc = tests[i].fn();
    fflush(NULL);
    nftw(tmpdir_path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    _exit(rc);
  }
  setpgid(pid, pid);
  r->pid = pid;
  r->idx = i;
  r->start = now_ms();
  r->deadline = r->start + (int64_t)(tests[i].timeout_s * 1000 * multiplier());
  r->out_fd = fd;
  return pid;
}

static void dump_log(struct running *r) {
  char buf[4096];
  ssize_t n;
  lseek(r->out_fd, 0, SEEK_SET);
  while ((n = read(r->out_fd, buf, sizeof buf)) > 0) {
    /* indent the test's output under its result line */
    fwrite(buf, 1, (size_t)n, stdout);
  }
}

static int matches(const char *name, char **pats, int npats) {
  for (int i = 0; i < npats; i++)
    if (strncmp(name, pats[i], strlen(pats[i])) == 0) return 1;
  return 0;
}

static int cmp_test(const void *a, const void *b) {
  return strcmp(((const struct test_entry *)a)->name,
                ((const struct test_entry *)b)->name);
}

int main(int argc, char **argv) {
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0) return 2;
  self_exe[n] = 0;

  if (argc >= 3 && strcmp(argv[1], "--helper") == 0) {
    for (size_t i = 0; i < nhelpers; i++)
      if (strcmp(helpers[i].name, argv[2]) == 0)
        return helpers[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "no helper named %s\n", argv[2]);
    return 2;
  }
  qsort(tests, ntests, sizeof *tests, cmp_test);
  if (argc >= 2 && strcmp(argv[1], "-l") == 0) {
    for (size_t i = 0; i < ntests; i++)
      printf("%s\n", tests[i].name);
    return 0;
  }
  char **excl = NULL, **pats = NULL;
  int nexcl = 0, npats = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-x") == 0 && i + 1 < argc) {
      excl = realloc(excl, (size_t)(nexcl + 1) * sizeof *excl);
      excl[nexcl++] = argv[++i];
    } else {
      pats = realloc(pats, (size_t)(npats + 1) * sizeof *pats);
      pats[npats++] = argv[i];
    }
  }
  size_t *todo = calloc(ntests + 1, sizeof *todo), ntodo = 0;
  for (size_t i = 0; i < ntests; i++) {
    if (npats && !matches(tests[i].name, pats, npats)) continue;
    if (nexcl && matches(tests[i].name, excl, nexcl)) continue;
    todo[ntodo++] = i;
  }
  const char *j = getenv("VDI_TEST_JOBS");
  int jobs = j ? atoi(j) : 2;
  if (jobs < 1) jobs = 1;
  struct running *run = calloc((size_t)jobs, sizeof *run);
  int passed = 0, failed = 0, skipped = 0, active = 0;
  size_t next = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (next < ntodo || active > 0) {
    while (active < jobs && next < ntodo) {
      /* A test that must run alone waits for the others to end, and
       * holds the rest back while it runs. */
      int alone_running = 0;
      for (int k = 0; k < jobs; k++)
        if (run[k].pid != 0 && tests[run[k].idx].alone) alone_running = 1;
      if (alone_running || (tests[todo[next]].alone && active > 0)) break;
      for (int k = 0; k < jobs; k++)
        if (run[k].pid == 0) {
          start_test(todo[next++], &run[k]);
          active++;
          break;
        }
    }
    sleep_ms(1);
    for (int k = 0; k < jobs; k++) {
      struct running *r = &run[k];
      if (r->pid == 0) continue;
      int st, timed_out = 0;
      pid_t w = waitpid(r->pid, &st, WNOHANG);
      if (w == 0 && now_ms() > r->deadline) {
        kill(-r->pid, SIGKILL);
        waitpid(r->pid, &st, 0);
        timed_out = 1;
      } else if (w == 0) {
        continue;
      }
      /* Whatever the test left behind in its group goes too. */
      kill(-r->pid, SIGKILL);
      int code = timed_out ? -1 : decode_status(st);
      int64_t ms = now_ms() - r->start;
      const char *name = tests[r->idx].name;
      if (code == 0) {
        printf("ok     %-44s %6lld ms\n", name, (long long)ms);
        passed++;
      } else if (code == TEST_SKIP) {
        printf("skip   %-44s\n", name);
        dump_log(r);
        skipped++;
      } else {
        if (timed_out)
          printf("FAIL   %-44s timed out after %lld ms\n", name, (long long)ms);
        else
          printf("FAIL   %-44s exit %d\n", name, code);
        dump_log(r);
        failed++;
      }
      close(r->out_fd);
      unlink(r->outpath);
      r->pid = 0;
      active--;
    }
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  free(run);
  free(todo);
  free(pats);
  free(excl);
  free(tests);
  free(helpers);
  return failed ? 1 : 0;
}
