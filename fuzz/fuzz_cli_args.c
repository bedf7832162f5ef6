/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cli_args.c - the command lines of vdisql and vdi (STYLE.md 2.9,
 * target 4).
 *
 * Both tools parse their arguments inside main(), so fuzz.mk compiles
 * each tool's main.c with -Dmain=vdisql_main / -Dmain=vdi_main and this
 * target calls it with an argv made from the input.  What runs is the
 * tool's real code up to the point where it would act:
 *   - vdisql: options, the instance directory (a private one through
 *     $VDI_INSTANCE_DIR, or -S), reading -Q / -i / stdin (/dev/null),
 *     splitting at GO lines, lexing and parsing each batch; the statement
 *     runner (exec_stmt) and the set abort of a batch that does not parse
 *     (vdidev_abort_set), the instance (serve_run) and the sending of
 *     scripts to one (remote_run) are replaced below by checks of what
 *     they are given (statements run for real in fuzz_stream_reader);
 *   - vdi: the command and its options and their cross-checks; the seven
 *     operations (op_backup ...) are replaced by checks of the options
 *     main() hands them.
 * Neither main() calls exit(); both return a status, which must be one of
 * the documented ones.
 *
 * Input: the last byte picks the tool (even: vdisql, odd: vdi); the rest
 * is split at NUL bytes into at most 24 arguments.  Inputs naming /dev,
 * /proc or /sys are skipped: vdisql -i would read them as scripts (a
 * device such as /dev/zero never ends), which is what the option means.
 */
#include "fuzz_helpers.h"

#include "app.h"
#include "exec.h"
#include "media.h"
#include "remote.h"
#include "serve.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int vdisql_main(int argc, char **argv);
int vdi_main(int argc, char **argv);

static int stmts_run;

/* ---------------------------------------------- stubs for vdisql */

int exec_stmt(const exec_ctx *cx, const stmt *s) {
  struct stat st;
  FZ_CHECK(cx && cx->inst_dir && cx->server && cx->colsep);
  FZ_CHECK(stat(cx->inst_dir, &st) == 0 && S_ISDIR(st.st_mode));
  FZ_CHECK(s->kind >= ST_BACKUP_DB && s->kind <= ST_FILELISTONLY);
  FZ_CHECK(s->ndev >= 1 && s->ndev <= MAX_DEVICES);
  for (int i = 0; i < s->ndev; i++)
    FZ_CHECK(s->dev[i] != NULL);
  return stmts_run++ % 3 == 2 ? -1 : 0; /* some fail, for -b */
}

void vdidev_abort_set(const char *name) {
  FZ_CHECK(name && name[0]);
}

/* --serve would run an instance until a signal; the fuzzer checks the
 * options it gets instead.  No instance runs: the scripts run here. */
int serve_run(const serve_opts *o) {
  FZ_CHECK(o && o->dir && o->stop_timeout >= 0);
  return 0;
}

int remote_run(const char *dir, int flags, const char *sep, const char *server,
               char *const *scripts, int n) {
  FZ_CHECK(dir && sep && server && n >= 0 && flags >= 0);
  for (int i = 0; i < n; i++)
    FZ_CHECK(scripts[i] != NULL);
  return -1;
}

/* ------------------------------------------------- stubs for vdi */

void signals_init(void) {}

/* vdi keygen, --key-file and --recipient: no files are written or read
 * here. */
int keys_keygen(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "keygen") == 0 && o->db && *o->db);
  FZ_CHECK(!o->key_file && !o->recipient && !o->encrypt);
  return EXIT_OK;
}

int keys_setup(const struct options *o) {
  FZ_CHECK(!(o->key_file && o->recipient));
  if (o->encrypt) FZ_CHECK(strcmp(o->cmd, "backup") == 0);
  if (o->recipient) FZ_CHECK(o->encrypt && *o->recipient);
  return EXIT_OK;
}

static int check_options(const struct options *o) {
  FZ_CHECK(o->cmd != NULL);
  FZ_CHECK(o->stripes >= 1 && o->stripes <= APP_MAX_STRIPES);
  if (o->db) FZ_CHECK(app_valid_db_name(o->db));
  if (o->as) FZ_CHECK(app_valid_db_name(o->as));
  return EXIT_OK;
}

int op_backup(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "backup") == 0 && o->db && o->to && !o->from);
  FZ_CHECK(strcmp(o->to, "-") != 0 || o->stripes == 1);
  return check_options(o);
}

int op_restore(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "restore") == 0 && o->db && o->from && !o->to);
  return check_options(o);
}

int op_verify(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "verify") == 0 && o->from && !o->to && !o->as);
  return check_options(o);
}

int op_list(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "list") == 0 && o->from);
  FZ_CHECK(strcmp(o->from, "-") != 0 && !o->instance && !o->vdisql);
  return check_options(o);
}

int op_expire(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "expire") == 0 && o->from && !o->to);
  FZ_CHECK(strcmp(o->from, "-") != 0 && !o->instance && !o->vdisql);
  FZ_CHECK(o->keep_last > 0 || o->keep_daily > 0);
  return check_options(o);
}

int op_check(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "check") == 0 && !o->from);
  return check_options(o);
}

int op_databases(const struct options *o) {
  FZ_CHECK(strcmp(o->cmd, "databases") == 0 && !o->db && !o->from);
  return check_options(o);
}

/* ------------------------------------------------------------ target */

static char inst[64];

static void cleanup(void) {
  rmdir(inst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!inst[0]) {
    snprintf(inst, sizeof inst, "/tmp/fz-cli-%ld", (long)getpid());
    setenv("VDI_INSTANCE_DIR", inst, 1);
    atexit(cleanup);
    FZ_CHECK(freopen("/dev/null", "r", stdin) != NULL);
  }
  if (size == 0) return 0;
  int vdi = data[size - 1] & 1;
  /* The arguments, NUL-separated, in one terminated copy. */
  char *buf = malloc(size);
  memcpy(buf, data, size - 1);
  buf[size - 1] = 0;
  char *argv[26];
  int argc = 0;
  argv[argc++] = vdi ? "vdi" : "vdisql";
  for (char *p = buf; p < buf + size && argc < 25; p += strlen(p) + 1) {
    if (strstr(p, "/dev") || strstr(p, "/proc") || strstr(p, "/sys")) {
      free(buf);
      return 0;
    }
    argv[argc++] = p;
  }
  argv[argc] = NULL;
  clearerr(stdin);
  int rc = vdi ? vdi_main(argc, argv) : vdisql_main(argc, argv);
  fflush(stdout);
  if (vdi)
    FZ_CHECK(rc == EXIT_OK || rc == EXIT_USAGE);
  else
    FZ_CHECK(rc == 0 || rc == 1);
  free(buf);
  return 0;
}
