/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - vdisql: the reference database engine of openvdi, run like
 * sqlcmd.  Options, the instance directory, reading -Q / -i / stdin,
 * splitting scripts into batches at GO lines, exit status.
 * See vdisql.1.
 */
#include "exec.h"
#include "logins.h"
#include "msg.h"
#include "remote.h"
#include "script.h"
#include "serve.h"
#include "stale.h"
#include "tdstls.h"
#include "wire.h"

#include "vdi.h"

#include <grp.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: vdisql [-S server] [-U login] [-P password] [-E]\n"
      "              [-Q \"statement\" | -q \"statement\" | -i file[,file]]\n"
      "              [-b] [-r[0|1]] [-s separator] [-h headers] [-?]\n"
      "       vdisql --serve -S DIR [--allow-group GROUP] [--stop-timeout S]\n"
      "                     [--tds ADDRESS:PORT [--tls-cert FILE --tls-key "
      "FILE]\n"
      "                      [--tls-mode off|on|required]]\n"
      "                     [--backup-dir PATH]...\n"
      "       vdisql -S DIR --add-login NAME | --remove-login NAME\n"
      "  -S  instance: a directory path; '.', 'localhost', '(local)' or\n"
      "      none means $VDI_INSTANCE_DIR, else\n"
      "      $XDG_DATA_HOME/openvdi/instance (~/.local/share/...)\n"
      "  -Q  run the statement(s) and exit   -i  run script file(s)\n"
      "  -b  exit with status 1 when an error occurs\n"
      "  --serve  run the instance of DIR until SIGTERM; while it runs,\n"
      "      vdisql -S DIR sends it the statements\n"
      "  --tds  also accept SQL Server clients (TDS) on ADDRESS:PORT\n"
      "      ([::1]:1433 for IPv6); the sa login's password is\n"
      "      $MSSQL_SA_PASSWORD, other logins are in DIR/.vdisql/logins\n"
      "  --tls-cert, --tls-key  PEM certificate and key: TLS for TDS\n"
      "  --tls-mode  on (default with a certificate): offered, the login\n"
      "      always encrypted; required: every connection all encrypted\n"
      "      (SQL Server's ForceEncryption); off: not offered\n"
      "  --add-login NAME  add (or change) a login of DIR's instance; the\n"
      "      password from $VDISQL_LOGIN_PASSWORD or stdin's first line\n"
      "  --backup-dir  a directory where the instance may read and write\n"
      "      DISK backups (repeatable; default: the instance directory)\n"
      "  -U, -P, -E, -d, -l, -t, -W, -C, -N: accepted, no effect\n"
      "  -V, --version  print vdisql's version\n"
      "Statements: BACKUP DATABASE, RESTORE DATABASE | VERIFYONLY |\n"
      "HEADERONLY | FILELISTONLY (see vdisql(1)).\n");
}

#define MAX_BACKUP_DIRS 16

/* --backup-dir: an existing directory, kept as its real path so that
 * guard_confined compares like with like. */
static int add_backup_dir(char **dirs, int *n, const char *path) {
  char real[PATH_MAX];
  struct stat st;
  if (!realpath(path, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "vdisql: --backup-dir: '%s' is not a directory\n", path);
    return -1;
  }
  if (*n >= MAX_BACKUP_DIRS) {
    fprintf(stderr, "vdisql: --backup-dir: at most %d directories\n",
            MAX_BACKUP_DIRS);
    return -1;
  }
  dirs[(*n)++] = strdup(real);
  return dirs[*n - 1] ? 0 : -1;
}

static int mkdirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* The instance directory for -S (NULL = default). */
static int instance_dir(const char *s, char *out, size_t n, int *is_default) {
  *is_default = !s || !*s || strcmp(s, ".") == 0 ||
                strcasecmp(s, "localhost") == 0 ||
                strcasecmp(s, "(local)") == 0;
  if (!*is_default) {
    snprintf(out, n, "%s", s);
    return 0;
  }
  const char *e = getenv("VDI_INSTANCE_DIR");
  if (e && *e) {
    snprintf(out, n, "%s", e);
    return 0;
  }
  const char *x = getenv("XDG_DATA_HOME");
  if (x && *x) {
    snprintf(out, n, "%s/openvdi/instance", x);
    return 0;
  }
  const char *home = getenv("HOME");
  if (!home || !*home) return -1;
  snprintf(out, n, "%s/.local/share/openvdi/instance", home);
  return 0;
}

static char *slurp(FILE *f) {
  size_t cap = 4096, len = 0, k;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += k;
    if (cap - len - 1 == 0) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        return NULL;
      }
      buf = nb;
    }
  }
  buf[len] = 0;
  return buf;
}

static void free_scripts(char **v, int n) {
  for (int i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* The -Q text, every -i file, or stdin: the number of scripts, or -1
 * after saying why (nothing is left allocated). */
static int read_scripts(const char *query, const char *inputs, char ***out) {
  char **v = NULL;
  int n = 0;
  if (query || !inputs) {
    v = malloc(sizeof *v);
    if (!v) return -1;
    v[0] = query ? strdup(query) : slurp(stdin);
    if (!v[0]) {
      free(v);
      return -1;
    }
    *out = v;
    return 1;
  }
  char *list = strdup(inputs);
  if (!list) return -1;
  for (char *save = NULL, *f = strtok_r(list, ",", &save); f;
       f = strtok_r(NULL, ",", &save)) {
    FILE *fp = fopen(f, "r");
    char **nv = fp ? realloc(v, (size_t)(n + 1) * sizeof *nv) : NULL;
    char *text = nv ? slurp(fp) : NULL;
    if (fp) fclose(fp);
    if (nv) v = nv;
    if (!text) {
      if (!fp) fprintf(stderr, "Sqlcmd: '%s': Invalid filename.\n", f);
      free(list);
      free_scripts(v, n);
      return -1;
    }
    v[n++] = text;
  }
  free(list);
  *out = v;
  return n;
}

/* Everything the command line says. */
struct cli {
  const char *server, *query, *sep;
  const char *inputs; /* -i list, within argv (the last -i wins) */
  int bflag, rflag, headers, serve;
  serve_opts so;
  const char *add_login, *remove_login;
  char *backup_dirs[MAX_BACKUP_DIRS + 1];
  int nbackup_dirs;
};

#define CLI_DONE (-1) /* --version or help was printed: exit 0 */

/* The instance's own options (--serve and the rest).  @return 1 if argv[*i]
 * was one (its value taken), 0 if not, CLI_DONE, or 2 after an error. */
static int parse_instance_option(struct cli *c, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  if (strcmp(a, "--serve") == 0) {
    c->serve = 1;
    return 1;
  }
  if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
    printf("vdisql %s\n", VDI_VERSION_STRING);
    return CLI_DONE;
  }
  static const char *const valued[] = {"--tds",          "--tls-cert",
                                       "--tls-key",      "--tls-mode",
                                       "--add-login",    "--remove-login",
                                       "--backup-dir",   "--allow-group",
                                       "--stop-timeout", NULL};
  int known = 0;
  for (int k = 0; valued[k]; k++)
    known |= strcmp(a, valued[k]) == 0;
  if (!known) return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "vdisql: '%s': Missing argument.\n", a);
    return 2;
  }
  const char *v = argv[++*i];
  serve_opts *so = &c->so;
  char *end;
  if (strcmp(a, "--tds") == 0) {
    so->tds = v;
  } else if (strcmp(a, "--tls-cert") == 0) {
    so->tls_cert = v;
  } else if (strcmp(a, "--tls-key") == 0) {
    so->tls_key = v;
  } else if (strcmp(a, "--add-login") == 0) {
    c->add_login = v;
  } else if (strcmp(a, "--remove-login") == 0) {
    c->remove_login = v;
  } else if (strcmp(a, "--backup-dir") == 0) {
    if (add_backup_dir(c->backup_dirs, &c->nbackup_dirs, v) != 0) return 2;
  } else if (strcmp(a, "--tls-mode") == 0) {
    if (strcmp(v, "off") == 0) {
      so->tls_mode = TDS_TLS_OFF;
    } else if (strcmp(v, "on") == 0) {
      so->tls_mode = TDS_TLS_ON;
    } else if (strcmp(v, "required") == 0) {
      so->tls_mode = TDS_TLS_REQUIRED;
    } else {
      fprintf(stderr, "vdisql: --tls-mode '%s': expected off, on or required\n",
              v);
      return 2;
    }
  } else if (strcmp(a, "--allow-group") == 0) {
    struct group *g = getgrnam(v);
    unsigned long id = strtoul(v, &end, 10);
    if (!g && (*end || end == v)) {
      fprintf(stderr, "vdisql: --allow-group: no group '%s'\n", v);
      return 2;
    }
    so->allow_group = 1;
    so->allow_gid = g ? g->gr_gid : (gid_t)id;
  } else {
    long t = strtol(v, &end, 10);
    if (*end || end == v || t < 0 || t > 86400) {
      fprintf(stderr,
              "vdisql: --stop-timeout: '%s' is not a number of "
              "seconds (0 to 86400)\n",
              v);
      return 2;
    }
    so->stop_timeout = (int)t;
  }
  return 1;
}

/* One of sqlcmd's options.  @return 0, CLI_DONE, or 1 after an error. */
static int parse_sqlcmd_option(struct cli *c, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  if (a[0] != '-' || !a[1]) {
    fprintf(stderr, "Sqlcmd: '%s': Unexpected argument.\n", a);
    usage(stderr);
    return 1;
  }
  char o = a[1];
  const char *val = a[2] ? a + 2 : NULL;
  int needs = strchr("SUPQqidlstHWcaKMf", o) != NULL;
  if (o == 'h') {
    /* sqlcmd's -h takes a header count; without one it is help. */
    if (!val && *i + 1 < argc &&
        (argv[*i + 1][0] == '-'
             ? argv[*i + 1][1] >= '0' && argv[*i + 1][1] <= '9'
             : argv[*i + 1][0] >= '0' && argv[*i + 1][0] <= '9'))
      val = argv[++*i];
    if (!val) {
      usage(stdout);
      return CLI_DONE;
    }
    c->headers = atoi(val) != -1;
    return 0;
  }
  if (needs && !val) {
    if (*i + 1 >= argc) {
      fprintf(stderr, "Sqlcmd: '-%c': Missing argument.\n", o);
      return 1;
    }
    val = argv[++*i];
  }
  switch (o) {
  case 'S':
    c->server = val;
    break;
  case 'Q':
  case 'q':
    c->query = val;
    break;
  case 'i':
    c->inputs = val;
    break;
  case 's':
    c->sep = val;
    break;
  case 'b':
    c->bflag = 1;
    break;
  case 'r':
    c->rflag = 1;
    break;
  case '?':
    usage(stdout);
    return CLI_DONE;
  case 'U':
  case 'P':
  case 'd':
  case 'l':
  case 't':
  case 'H':
  case 'c':
  case 'a':
  case 'K':
  case 'M':
  case 'f':
  case 'E':
  case 'W':
  case 'C':
  case 'N':
  case 'X':
  case 'I':
  case 'e':
    break; /* accepted for compatibility, no effect */
  default:
    fprintf(stderr, "Sqlcmd: '%s': Unknown Option. Enter '-?' for help.\n", a);
    return 1;
  }
  return 0;
}

/* The whole command line.  @return 0, CLI_DONE or 1 (told). */
static int parse_args(struct cli *c, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    int rc = parse_instance_option(c, argc, argv, &i);
    if (rc == CLI_DONE) return CLI_DONE;
    if (rc == 2) return 1;
    if (rc == 1) continue;
    rc = parse_sqlcmd_option(c, argc, argv, &i);
    if (rc) return rc;
  }
  return 0;
}

/* The instance directory, made if it is the per-user default.  0 or 1. */
static int open_instance(const struct cli *c, char *dir, size_t n,
                         int *is_default) {
  if (instance_dir(c->server, dir, n, is_default)) {
    fprintf(stderr, "Sqlcmd: Error: no instance directory: set "
                    "VDI_INSTANCE_DIR or HOME, or use -S DIR.\n");
    return 1;
  }
  if (*is_default && mkdirs(dir) != 0) {
    fprintf(stderr,
            "Sqlcmd: Error: cannot create instance directory '%s': "
            "%s.\n",
            dir, strerror(errno));
    return 1;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr,
            "Sqlcmd: Error: Server '%s': the instance directory '%s' does "
            "not exist.\n",
            c->server ? c->server : ".", dir);
    return 1;
  }
  return 0;
}

/* Options that only an instance with a TDS endpoint takes.  0 or 1. */
static int check_instance_options(const struct cli *c) {
  const serve_opts *so = &c->so;
  if ((so->tls_cert || so->tls_key || so->tls_mode >= 0) && !so->tds) {
    fprintf(stderr, "vdisql: --tls-cert, --tls-key and --tls-mode: only "
                    "with --serve --tds\n");
    return 1;
  }
  if (so->tls_key && !so->tls_cert) {
    fprintf(stderr, "vdisql: --tls-key: only with --tls-cert\n");
    return 1;
  }
  if (so->tls_mode == TDS_TLS_REQUIRED && !so->tls_cert) {
    fprintf(stderr, "vdisql: --tls-mode required: needs --tls-cert\n");
    return 1;
  }
  if (!c->serve && (so->tds || c->nbackup_dirs)) {
    fprintf(stderr, "vdisql: %s: only with --serve\n",
            so->tds ? "--tds" : "--backup-dir");
    return 1;
  }
  return 0;
}

/* vdisql --serve: the instance of @p dir until it is stopped. */
static int run_instance(struct cli *c, const char *dir) {
  c->so.dir = dir;
  /* Statements from clients read and write DISK backups only where the
   * operator said: by default the instance directory. */
  if (c->nbackup_dirs == 0 &&
      add_backup_dir(c->backup_dirs, &c->nbackup_dirs, dir) != 0)
    return 1;
  c->so.backup_dirs = (const char *const *)c->backup_dirs;
  return serve_run(&c->so);
}

/* -Q / -i: the scripts, sent to the running instance, or run here. */
static int run_scripts(const struct cli *c, const char *dir, int is_default) {
  char host[256] = "localhost";
  if (is_default) gethostname(host, sizeof host - 1);
  const char *sname = is_default ? host : c->server;

  /* The scripts, read whole before anything runs. */
  char **scripts = NULL;
  int n = read_scripts(c->query, c->inputs, &scripts);
  if (n < 0) return 1;

  /* A running instance does the work; else this process does. */
  int flags = (c->bflag ? WIRE_F_STOP : 0) | (c->rflag ? WIRE_F_STDERR : 0) |
              (c->headers ? 0 : WIRE_F_NOHEAD);
  int status = remote_run(dir, flags, c->sep, sname, scripts, n);
  if (status < 0) {
    /* Restores of killed vdisql processes left their new databases here. */
    stale_sweep(dir, ".", ".db.restore-");
    out_init(sname, c->rflag);
    session_vars vars = {"master", 0, (long)getpid()};
    exec_ctx cx = {dir, sname, c->sep, c->headers, NULL, &vars};
    int failed = 0;
    for (int i = 0; i < n; i++) {
      failed += script_run(&cx, scripts[i], c->bflag);
      if (failed && c->bflag) break;
    }
    status = c->bflag && failed ? 1 : 0;
  }
  free_scripts(scripts, n);
  return status;
}

int main(int argc, char **argv) {
  static struct cli c = {
      .sep = "\t",
      .headers = 1,
      .so = {NULL, 0, 0, 10, NULL, NULL, NULL, -1, NULL},
  };
  signal(SIGPIPE, SIG_IGN);
  int rc = parse_args(&c, argc, argv);
  if (rc == CLI_DONE) return 0;
  if (rc) return rc;
  char dir[4096];
  int is_default;
  if (open_instance(&c, dir, sizeof dir, &is_default)) return 1;
  if (c.add_login) return logins_add(dir, c.add_login);
  if (c.remove_login) return logins_remove(dir, c.remove_login);
  if (check_instance_options(&c)) return 1;
  if (c.serve) return run_instance(&c, dir);
  return run_scripts(&c, dir, is_default);
}
