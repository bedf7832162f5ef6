/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task.h - what a test file needs: TEST_IMPL / HELPER_IMPL registration,
 * ASSERT_* macros that print both sides, and helper-process control.
 *
 * Each test runs in its own forked process with a timeout (runner.c).  A
 * cross-process test starts its peer with spawn_helper(), which executes
 * this same binary again (fork + exec, so the peer is a fresh process, not
 * a copy that shares our threads or mappings) and runs the HELPER_IMPL of
 * that name.  Exit 0 = pass, 1 = fail, 77 = skip.
 */
#ifndef OPENVDI_TASK_H
#define OPENVDI_TASK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define TEST_SKIP 77

typedef int (*test_fn)(void);
typedef int (*helper_fn)(int argc, char **argv);

void runner_register_test(const char *name, test_fn fn, int timeout_s,
                          int alone);
void runner_register_helper(const char *name, helper_fn fn);

/* A test: its name is the function's; the default timeout is 10 s (times
 * $VDI_TEST_TIMEOUT_MULTIPLIER). */
#define TEST_IMPL_RUN_(name, secs, alone)                                      \
  static int test_##name(void);                                                \
  __attribute__((constructor)) static void reg_test_##name(void) {             \
    runner_register_test(#name, test_##name, secs, alone);                     \
  }                                                                            \
  static int test_##name(void)
#define TEST_IMPL_TIMEOUT(name, secs) TEST_IMPL_RUN_(name, secs, 0)
#define TEST_IMPL(name)               TEST_IMPL_TIMEOUT(name, 10)
/* A test that measures how the library uses the CPUs, or loads them
 * itself: the runner starts it once no other test runs, and starts none
 * beside it. */
#define TEST_IMPL_ALONE(name, secs) TEST_IMPL_RUN_(name, secs, 1)

/* A helper: a peer process, started with spawn_helper("name", args..., 0). */
#define HELPER_IMPL(name)                                                      \
  static int helper_##name(int argc, char **argv);                             \
  __attribute__((constructor)) static void reg_helper_##name(void) {           \
    runner_register_helper(#name, helper_##name);                              \
  }                                                                            \
  static int helper_##name(int argc __attribute__((unused)),                   \
                           char **argv __attribute__((unused)))

/* Start a helper process; the argument list ends with NULL. */
pid_t spawn_helper(const char *name, ...);
/* Wait for it: its exit code, or 128 + signal number. */
int wait_helper(pid_t pid);
/* Wait at most timeout_ms; -1 if it has not ended (it is then left alone). */
int wait_helper_timeout(pid_t pid, int timeout_ms);
/* Monotonic milliseconds and microseconds. */
int64_t now_ms(void);
int64_t now_us(void);
void sleep_ms(int ms);
/* A set name unique to this test run ("t<pid>_<tag>_<counter>"). */
const char *unique_name(const char *tag);
/* A fresh, empty directory for this test; removed when the test ends. */
const char *test_tmpdir(void);
/* Path of a program built next to run-tests (e.g. "vdisql"). */
const char *build_path(const char *prog);
/* Number of open file descriptors of this process. */
int count_open_fds(void);
/* Copy a file to stderr under a "--- path" line (a failed child's log). */
void dump_file(const char *path);
/* Entries of a directory, "." and ".." and dot files not counted; -1 if
 * it cannot be read (e.g. /proc/self/task: this process's threads). */
int count_dir(const char *path);

/* Where the standard streams of a program started by spawn_program go.
 * Files that cannot be opened leave the stream as it was. */
typedef struct spawn_io {
  const char *out;        /* stdout and stderr; NULL: inherited */
  int append;             /* out is appended to instead of truncated */
  const char *out_only;   /* then stdout alone to this file */
  const char *in;         /* stdin; NULL: /dev/null */
  const char *const *env; /* "K=V" strings added; NULL-terminated */
} spawn_io;
/* Start the program `path` with `args` (NULL-terminated, without argv[0]);
 * its pid.  io may be NULL (all streams but stdin inherited). */
pid_t spawn_program(const char *path, const char *const *args,
                    const spawn_io *io);

#define TASK_FAIL_(...)                                                        \
  do {                                                                         \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    fflush(stderr);                                                            \
    exit(1);                                                                   \
  } while (0)

#define ASSERT(expr)                                                           \
  do {                                                                         \
    if (!(expr)) TASK_FAIL_("assertion failed: %s", #expr);                    \
  } while (0)

#define ASSERT_BASE_(a, op, b, type, fmt)                                      \
  do {                                                                         \
    type eval_a_ = (type)(a);                                                  \
    type eval_b_ = (type)(b);                                                  \
    if (!(eval_a_ op eval_b_))                                                 \
      TASK_FAIL_("assertion failed: %s %s %s (" fmt " %s " fmt ")", #a, #op,   \
                 #b, eval_a_, #op, eval_b_);                                   \
  } while (0)

#define ASSERT_EQ(a, b)    ASSERT_BASE_(a, ==, b, int64_t, "%" PRId64)
#define ASSERT_NE(a, b)    ASSERT_BASE_(a, !=, b, int64_t, "%" PRId64)
#define ASSERT_LT(a, b)    ASSERT_BASE_(a, <, b, int64_t, "%" PRId64)
#define ASSERT_LE(a, b)    ASSERT_BASE_(a, <=, b, int64_t, "%" PRId64)
#define ASSERT_GT(a, b)    ASSERT_BASE_(a, >, b, int64_t, "%" PRId64)
#define ASSERT_GE(a, b)    ASSERT_BASE_(a, >=, b, int64_t, "%" PRId64)
#define ASSERT_UEQ(a, b)   ASSERT_BASE_(a, ==, b, uint64_t, "%" PRIu64)
#define ASSERT_NULL(a)     ASSERT((a) == NULL)
#define ASSERT_NOT_NULL(a) ASSERT((a) != NULL)
#define ASSERT_STR_EQ(a, b)                                                    \
  do {                                                                         \
    const char *sa_ = (a), *sb_ = (b);                                         \
    if (strcmp(sa_, sb_) != 0)                                                 \
      TASK_FAIL_("assertion failed: %s == %s (\"%s\" vs \"%s\")", #a, #b, sa_, \
                 sb_);                                                         \
  } while (0)
#define ASSERT_MEM_EQ(a, b, n) ASSERT(memcmp((a), (b), (n)) == 0)

/* A VDI return code compared to an expected one, printed by name. */
#define ASSERT_RC(rc, expect)                                                  \
  do {                                                                         \
    int rc_a_ = (rc), rc_b_ = (expect);                                        \
    if (rc_a_ != rc_b_)                                                        \
      TASK_FAIL_("%s returned %s (0x%08x), expected %s", #rc,                  \
                 task_code_name(rc_a_), (unsigned)rc_a_,                       \
                 task_code_name(rc_b_));                                       \
  } while (0)
const char *task_code_name(int rc);

#endif
