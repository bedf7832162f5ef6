/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-com-cpp.c - the C++ view of vdi_com.h: runs the C++ clients of
 * tests/cxx-com/ against the C server helper of test-com-peer.c, each in
 * its own process, and checks the data the C++ clients stored.
 * - cxx-com/com_cpp: p->CreateEx(...), p->SignalAbort(), ...; it also
 *   holds the compile-time checks of the C++ view (inheritance as in the
 *   Windows header, one pointer per interface, member signatures);
 * - cxx-com/com_threads: a multi-stream client holding the v2 set through
 *   v1 pointers in its worker threads, devices passed between threads,
 *   QueryInterface / AddRef / Release from many threads at once;
 * - cxx-com/com_cinterface: the C view selected in C++ with CINTERFACE.
 */
#include "task.h"

#include "vdi_com.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

int com_verify_file(const char *path, uint64_t bytes, unsigned dev);

/* fork + exec a program of cxx-com/ with up to four arguments. */
static pid_t spawn_prog(const char *name, const char *a1, const char *a2,
                        const char *a3, const char *a4) {
  char prog[4096];
  snprintf(prog, sizeof prog, "%s", build_path(name));
  if (access(prog, X_OK) != 0)
    TASK_FAIL_("%s is not built (make builds it with run-tests)", prog);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) TASK_FAIL_("fork: %s", strerror(errno));
  if (pid == 0) {
    char *argv[] = {prog, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    execv(prog, argv);
    _exit(127);
  }
  return pid;
}

static pid_t spawn_cpp(const char *a1, const char *a2, const char *a3) {
  return spawn_prog("cxx-com/com_cpp", a1, a2, a3, NULL);
}

TEST_IMPL(com_cpp_unknown) {
  ASSERT_EQ(wait_helper(spawn_cpp("unknown", NULL, NULL)), 0);
  return 0;
}

TEST_IMPL_TIMEOUT(com_cpp_backup, 30) {
  const char *set = unique_name("comcpp");
  char path[512];
  snprintf(path, sizeof path, "%s/cpp-backup", test_tmpdir());
  const unsigned bytes = 1u << 20;
  char nbytes[32];
  snprintf(nbytes, sizeof nbytes, "%u", bytes);
  /* The server retries Open until the C++ client has created the set. */
  pid_t client = spawn_cpp("backup", set, path);
  pid_t server = spawn_helper("com_server", set, "1", nbytes, "backup", NULL);
  ASSERT_EQ(wait_helper(client), 0);
  ASSERT_EQ(wait_helper(server), 0);
  ASSERT_EQ(com_verify_file(path, bytes, 0), 0);
  return 0;
}

TEST_IMPL_TIMEOUT(com_cpp_abort, 30) {
  const char *set = unique_name("comab");
  pid_t client = spawn_cpp("abort", set, NULL);
  pid_t server = spawn_helper("com_server", set, "1", "0", "abort", NULL);
  ASSERT_EQ(wait_helper(client), 0);
  ASSERT_EQ(wait_helper(server), 0);
  return 0;
}

/* ------------------------------------------------ threads, as on Windows */

TEST_IMPL(com_cpp_cinterface) {
  ASSERT_EQ(
      wait_helper(spawn_prog("cxx-com/com_cinterface", NULL, NULL, NULL, NULL)),
      0);
  return 0;
}

TEST_IMPL(com_cpp_threads_refs) {
  ASSERT_EQ(
      wait_helper(spawn_prog("cxx-com/com_threads", "refs", NULL, NULL, NULL)),
      0);
  return 0;
}

/* Four devices, each served by a chain of threads, the set held through v1
 * pointers; the server is another process. */
TEST_IMPL_TIMEOUT(com_cpp_threads_backup, 30) {
  const char *set = unique_name("comth");
  const unsigned ndev = 4, bytes = 1u << 20;
  char prefix[512], nbytes[32], path[600];
  snprintf(prefix, sizeof prefix, "%s/threads", test_tmpdir());
  snprintf(nbytes, sizeof nbytes, "%u", bytes);
  pid_t client = spawn_prog("cxx-com/com_threads", "backup", set, "4", prefix);
  pid_t server = spawn_helper("com_server", set, "4", nbytes, "backup", NULL);
  ASSERT_EQ(wait_helper(client), 0);
  ASSERT_EQ(wait_helper(server), 0);
  for (unsigned i = 0; i < ndev; i++) {
    snprintf(path, sizeof path, "%s.%u", prefix, i);
    ASSERT_EQ(com_verify_file(path, bytes, i), 0);
  }
  return 0;
}

/* Workers blocked in GetCommand on three devices; a thread holding only the
 * v1 interface aborts; the server sees its write aborted. */
TEST_IMPL_TIMEOUT(com_cpp_threads_abort, 30) {
  const char *set = unique_name("comtha");
  pid_t client = spawn_prog("cxx-com/com_threads", "abort", set, "3", NULL);
  pid_t server = spawn_helper("com_server", set, "3", "0", "abort", NULL);
  ASSERT_EQ(wait_helper(client), 0);
  ASSERT_EQ(wait_helper(server), 0);
  return 0;
}
