/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-run.c - run a command and report its wall time, CPU time and peak
 * resident memory, per process of its tree.
 *
 * usage: bench-run [-l LABEL] -- COMMAND [ARGS...]
 * After the command ends, prints one line to stdout, prefixed "run " (the
 * command's own output is left where it goes):
 *   run label=L status=0 wall=S cpu=C steal=T maxrss_kib=K hwm.NAME=K ...
 *
 * steal is the hypervisor's steal time over every CPU while the command
 * ran (bench_steal()).
 *
 * maxrss_kib is wait4()'s ru_maxrss: the kernel reports the largest of the
 * child and every descendant it reaped, so for `vdi` (which reaps its
 * `vdisql` child) it is max(vdi, vdisql).  To tell them apart, a poller
 * reads VmHWM (the peak, which only grows) from /proc/PID/status of every
 * process in the tree every 2 ms, found through /proc/PID/task/PID/children;
 * hwm.NAME is the largest VmHWM seen for processes of that command name.
 * A process's last few milliseconds can escape the poller, which is why
 * the exact wait4 figure is printed next to it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "bench.h"

#define MAX_NAMES 16

static struct {
  char name[32];
  long hwm_kib;
} names[MAX_NAMES];
static int nnames;
static atomic_int stop;
static pid_t root;

static void note(pid_t pid) {
  char path[64], line[256], comm[32] = "";
  long hwm = -1;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "Name:", 5) == 0)
      sscanf(line + 5, "%31s", comm);
    else if (strncmp(line, "VmHWM:", 6) == 0)
      sscanf(line + 6, "%ld", &hwm);
  }
  fclose(f);
  if (hwm < 0 || comm[0] == '\0') return;
  for (int i = 0; i < nnames; i++) {
    if (strcmp(names[i].name, comm) == 0) {
      if (hwm > names[i].hwm_kib) names[i].hwm_kib = hwm;
      return;
    }
  }
  if (nnames < MAX_NAMES) {
    snprintf(names[nnames].name, sizeof names[nnames].name, "%s", comm);
    names[nnames++].hwm_kib = hwm;
  }
}

/* Visit @p pid and, recursively, the children of each of its threads. */
static void walk(pid_t pid, int depth) {
  note(pid);
  if (depth > 8) return;
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *save = NULL;
  for (char *t = strtok_r(buf, " \n", &save); t != NULL;
       t = strtok_r(NULL, " \n", &save))
    walk((pid_t)atoi(t), depth + 1);
}

static void *poller(void *arg) {
  (void)arg;
  const struct timespec ts = {0, 2000000};
  while (!atomic_load(&stop)) {
    walk(root, 0);
    nanosleep(&ts, NULL);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *label = "-";
  int c;
  while ((c = getopt(argc, argv, "+l:")) != -1) {
    if (c == 'l') {
      label = optarg;
    } else {
      fprintf(stderr, "usage: bench-run [-l LABEL] -- COMMAND [ARGS...]\n");
      return 2;
    }
  }
  if (optind >= argc) bench_die("no command");
  double t0 = bench_now(), steal0 = bench_steal();
  root = fork();
  if (root < 0) bench_die("fork: %s", strerror(errno));
  if (root == 0) {
    execvp(argv[optind], argv + optind);
    fprintf(stderr, "bench-run: %s: %s\n", argv[optind], strerror(errno));
    _exit(127);
  }
  pthread_t th;
  pthread_create(&th, NULL, poller, NULL);
  int st;
  struct rusage ru;
  while (wait4(root, &st, 0, &ru) < 0)
    if (errno != EINTR) bench_die("wait4: %s", strerror(errno));
  double wall = bench_now() - t0, steal = bench_steal() - steal0;
  atomic_store(&stop, 1);
  pthread_join(th, NULL);
  int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  printf("run label=%s status=%d wall=%.6f cpu=%.6f steal=%.2f maxrss_kib=%ld",
         label, status, wall, cpu, steal, ru.ru_maxrss);
  for (int i = 0; i < nnames; i++)
    printf(" hwm.%s=%ld", names[i].name, names[i].hwm_kib);
  printf("\n");
  return status;
}
