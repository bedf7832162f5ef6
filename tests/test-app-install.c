/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-install.c - `make install PREFIX=...` as a user does it: the
 * installed vdi.pc names that prefix, pkg-config hands out its flags, and
 * a ten-line program built with them runs against the installed library
 * (issue 16, point 1).
 */
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run a shell command; its output (stdout and stderr) in out. */
static int sh(const char *cmd, char *out, size_t n) {
  FILE *p = popen(cmd, "r");
  if (!p) TASK_FAIL_("popen: %s", strerror(errno));
  size_t got = 0, r;
  while (got + 1 < n && (r = fread(out + got, 1, n - 1 - got, p)) > 0)
    got += r;
  out[got] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char prog[] =
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include <vdi.h>\n"
    "int main(void) {\n"
    "  vdi_set_t *s = NULL;\n"
    "  if (vdi_set_new(&s) != 0) return 1;\n"
    "  vdi_set_free(s);\n"
    "  char line[4200];\n"
    "  FILE *m = fopen(\"/proc/self/maps\", \"r\");\n"
    "  while (m && fgets(line, sizeof line, m))\n"
    "    if (strstr(line, \"libvdi\")) { fputs(line, stdout); break; }\n"
    "  printf(\"ok %u\\n\", vdi_version_number());\n"
    "  return 0;\n"
    "}\n";

TEST_IMPL_TIMEOUT(app_install_pkgconfig, 180) {
  /* The source tree is the parent of the build directory. */
  char build[PATH_MAX], src[PATH_MAX], probe[PATH_MAX + 32];
  if (!realpath(build_path("vdi"), build)) return TEST_SKIP;
  *strrchr(build, '/') = 0;
  snprintf(src, sizeof src, "%s", build);
  char *slash = strrchr(src, '/');
  if (!slash) return TEST_SKIP;
  *slash = 0;
  snprintf(probe, sizeof probe, "%s/vdi.pc.in", src);
  if (access(probe, R_OK) != 0 || system("command -v pkg-config >/dev/null"))
    return TEST_SKIP;
  char prefix[2048], cmd[16384], out[16384];
  snprintf(prefix, sizeof prefix, "%s/prefix", test_tmpdir());
  /* Nothing to build (make check has built it all): only the install. */
  snprintf(cmd, sizeof cmd,
           "cd '%s' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s "
           "install PREFIX='%s' BUILD='%s' 2>&1",
           src, prefix, slash + 1);
  int rc = sh(cmd, out, sizeof out);
  if (rc != 0) TASK_FAIL_("make install exited %d:\n%s", rc, out);

  /* The installed vdi.pc names the install prefix. */
  char pc[4400], line[8400];
  snprintf(pc, sizeof pc, "%s/lib/pkgconfig/vdi.pc", prefix);
  FILE *f = fopen(pc, "r");
  ASSERT_NOT_NULL(f);
  ASSERT_NOT_NULL(fgets(line, sizeof line, f));
  fclose(f);
  char want[4400];
  snprintf(want, sizeof want, "prefix=%s\n", prefix);
  ASSERT_STR_EQ(line, want);

  snprintf(cmd, sizeof cmd,
           "PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config --cflags --libs vdi",
           prefix);
  rc = sh(cmd, out, sizeof out);
  ASSERT_EQ(rc, 0);
  char flags[4400];
  size_t fl = strcspn(out, "\n");
  if (fl >= sizeof flags) TASK_FAIL_("pkg-config said too much: %s", out);
  memcpy(flags, out, fl);
  flags[fl] = 0;
  snprintf(want, sizeof want, "-I%s/include", prefix);
  ASSERT(strstr(flags, want) != NULL);
  snprintf(want, sizeof want, "-L%s/lib -lvdi", prefix);
  ASSERT(strstr(flags, want) != NULL);

  /* A program built with those flags alone runs on the installed library. */
  char c[2200], exe[2200];
  snprintf(c, sizeof c, "%s/hello.c", test_tmpdir());
  snprintf(exe, sizeof exe, "%s/hello", test_tmpdir());
  f = fopen(c, "w");
  ASSERT_NOT_NULL(f);
  fputs(prog, f);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "cc -std=c11 -o '%s' '%s' %s -Wl,-rpath,'%s/lib' 2>&1 && '%s'", exe,
           c, flags, prefix, exe);
  rc = sh(cmd, out, sizeof out);
  if (rc != 0) TASK_FAIL_("build or run failed (%d):\n%s", rc, out);
  snprintf(want, sizeof want, "%s/lib/libvdi.so", prefix);
  if (!strstr(out, want) || !strstr(out, "ok "))
    TASK_FAIL_("not run against %s:\n%s", want, out);
  return 0;
}
