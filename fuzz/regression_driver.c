/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regression_driver.c - a plain main() that feeds files to a fuzz target's
 * LLVMFuzzerTestOneInput, for `make fuzz-replay` (built with $(CC), not
 * libFuzzer; STYLE.md 2.9, zstd's regression_driver.c).
 *
 *   fuzz_<target> PATH...   each PATH a file, or a directory whose regular
 *                           files are replayed in name order
 *
 * Each file runs in its own child process with a time limit, so that one
 * crash (ASan, UBSan, a failed FZ_CHECK) is counted and reported with the
 * file's name while the others still run, and no state carries from one
 * input to the next.  The child's own output goes to a temporary file that
 * is shown only when it fails.  The last line is "N passed, N failed".
 */
#include "fuzz_helpers.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FILE_TIMEOUT_S 60

static int passed, failed;

static int run_child(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 2;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) return 2;
  fclose(f);
  alarm(FILE_TIMEOUT_S);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  return 0;
}

static void replay(const char *path) {
  FILE *log = tmpfile();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    if (log) {
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
    }
    /* exit, not _exit: the leak check and the targets' cleanups run. */
    exit(run_child(path));
  }
  int st = 0;
  while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    passed++;
  } else {
    failed++;
    if (pid < 0)
      fprintf(stderr, "FAIL %s: fork: %s\n", path, strerror(errno));
    else if (WIFSIGNALED(st))
      fprintf(stderr, "FAIL %s: signal %d%s\n", path, WTERMSIG(st),
              WTERMSIG(st) == SIGALRM ? " (time limit)" : "");
    else
      fprintf(stderr, "FAIL %s: exit status %d\n", path, WEXITSTATUS(st));
    if (log) { /* the child's report, last part */
      char line[1024];
      long size;
      fseek(log, 0, SEEK_END);
      size = ftell(log);
      fseek(log, size > 8192 ? size - 8192 : 0, SEEK_SET);
      while (fgets(line, sizeof line, log))
        fputs(line, stderr);
    }
  }
  if (log) fclose(log);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static void replay_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
    failed++;
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    replay(path);
    return;
  }
  struct dirent **names;
  int n = scandir(path, &names, NULL, by_name);
  for (int i = 0; i < n; i++) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
    if (names[i]->d_name[0] != '.' && stat(full, &st) == 0 &&
        S_ISREG(st.st_mode))
      replay(full);
    free(names[i]);
  }
  if (n >= 0) free(names);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++)
    replay_path(argv[i]);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
