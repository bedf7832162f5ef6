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

int main(int argc, char **argv) {
  const char *server = NULL, *query = NULL, *sep = "\t";
  const char *inputs = NULL; /* -i list, within argv (the last -i wins) */
  int bflag = 0, rflag = 0, headers = 1, serve = 0;
  serve_opts so = {NULL, 0, 0, 10, NULL, NULL, NULL, -1, NULL};
  const char *add_login = NULL, *remove_login = NULL;
  static char *backup_dirs[MAX_BACKUP_DIRS + 1];
  int nbackup_dirs = 0;
  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--serve") == 0) {
      serve = 1;
      continue;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
      printf("vdisql %s\n", VDI_VERSION_STRING);
      return 0;
    }
    if (strcmp(a, "--tds") == 0 || strcmp(a, "--tls-cert") == 0 ||
        strcmp(a, "--tls-key") == 0 || strcmp(a, "--tls-mode") == 0 ||
        strcmp(a, "--add-login") == 0 || strcmp(a, "--remove-login") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "vdisql: '%s': Missing argument.\n", a);
        return 1;
      }
      const char *v = argv[++i];
      if (strcmp(a, "--tds") == 0) {
        so.tds = v;
      } else if (strcmp(a, "--tls-cert") == 0) {
        so.tls_cert = v;
      } else if (strcmp(a, "--tls-key") == 0) {
        so.tls_key = v;
      } else if (strcmp(a, "--add-login") == 0) {
        add_login = v;
      } else if (strcmp(a, "--remove-login") == 0) {
        remove_login = v;
      } else if (strcmp(v, "off") == 0) {
        so.tls_mode = TDS_TLS_OFF;
      } else if (strcmp(v, "on") == 0) {
        so.tls_mode = TDS_TLS_ON;
      } else if (strcmp(v, "required") == 0) {
        so.tls_mode = TDS_TLS_REQUIRED;
      } else {
        fprintf(stderr,
                "vdisql: --tls-mode '%s': expected off, on or required\n", v);
        return 1;
      }
      continue;
    }
    if (strcmp(a, "--backup-dir") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "vdisql: '%s': Missing argument.\n", a);
        return 1;
      }
      if (add_backup_dir(backup_dirs, &nbackup_dirs, argv[++i]) != 0) return 1;
      continue;
    }
    if (strcmp(a, "--allow-group") == 0 || strcmp(a, "--stop-timeout") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "vdisql: '%s': Missing argument.\n", a);
        return 1;
      }
      const char *v = argv[++i];
      char *end;
      if (a[2] == 'a') {
        struct group *g = getgrnam(v);
        unsigned long id = strtoul(v, &end, 10);
        if (!g && (*end || end == v)) {
          fprintf(stderr, "vdisql: --allow-group: no group '%s'\n", v);
          return 1;
        }
        so.allow_group = 1;
        so.allow_gid = g ? g->gr_gid : (gid_t)id;
      } else {
        long t = strtol(v, &end, 10);
        if (*end || end == v || t < 0 || t > 86400) {
          fprintf(stderr,
                  "vdisql: --stop-timeout: '%s' is not a number of "
                  "seconds (0 to 86400)\n",
                  v);
          return 1;
        }
        so.stop_timeout = (int)t;
      }
      continue;
    }
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
      if (!val && i + 1 < argc &&
          (argv[i + 1][0] == '-'
               ? argv[i + 1][1] >= '0' && argv[i + 1][1] <= '9'
               : argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9'))
        val = argv[++i];
      if (!val) {
        usage(stdout);
        return 0;
      }
      headers = atoi(val) != -1;
      continue;
    }
    if (needs && !val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "Sqlcmd: '-%c': Missing argument.\n", o);
        return 1;
      }
      val = argv[++i];
    }
    switch (o) {
    case 'S':
      server = val;
      break;
    case 'Q':
    case 'q':
      query = val;
      break;
    case 'i':
      inputs = val;
      break;
    case 's':
      sep = val;
      break;
    case 'b':
      bflag = 1;
      break;
    case 'r':
      rflag = 1;
      break;
    case '?':
      usage(stdout);
      return 0;
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
      fprintf(stderr, "Sqlcmd: '%s': Unknown Option. Enter '-?' for help.\n",
              a);
      return 1;
    }
  }

  char dir[4096];
  int is_default;
  if (instance_dir(server, dir, sizeof dir, &is_default)) {
    fprintf(stderr, "Sqlcmd: Error: no instance directory: set "
                    "VDI_INSTANCE_DIR or HOME, or use -S DIR.\n");
    return 1;
  }
  if (is_default && mkdirs(dir) != 0) {
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
            server ? server : ".", dir);
    return 1;
  }
  if (add_login) return logins_add(dir, add_login);
  if (remove_login) return logins_remove(dir, remove_login);
  if ((so.tls_cert || so.tls_key || so.tls_mode >= 0) && !so.tds) {
    fprintf(stderr, "vdisql: --tls-cert, --tls-key and --tls-mode: only "
                    "with --serve --tds\n");
    return 1;
  }
  if (so.tls_key && !so.tls_cert) {
    fprintf(stderr, "vdisql: --tls-key: only with --tls-cert\n");
    return 1;
  }
  if (so.tls_mode == TDS_TLS_REQUIRED && !so.tls_cert) {
    fprintf(stderr, "vdisql: --tls-mode required: needs --tls-cert\n");
    return 1;
  }
  if (serve) {
    so.dir = dir;
    /* Statements from clients read and write DISK backups only where the
     * operator said: by default the instance directory. */
    if (nbackup_dirs == 0 &&
        add_backup_dir(backup_dirs, &nbackup_dirs, dir) != 0)
      return 1;
    so.backup_dirs = (const char *const *)backup_dirs;
    return serve_run(&so);
  }
  if (so.tds || nbackup_dirs) {
    fprintf(stderr, "vdisql: %s: only with --serve\n",
            so.tds ? "--tds" : "--backup-dir");
    return 1;
  }
  char host[256] = "localhost";
  if (is_default) gethostname(host, sizeof host - 1);
  const char *sname = is_default ? host : server;

  /* The scripts, read whole before anything runs. */
  char **scripts = NULL;
  int n = read_scripts(query, inputs, &scripts);
  if (n < 0) return 1;

  /* A running instance does the work; else this process does. */
  int flags = (bflag ? WIRE_F_STOP : 0) | (rflag ? WIRE_F_STDERR : 0) |
              (headers ? 0 : WIRE_F_NOHEAD);
  int status = remote_run(dir, flags, sep, sname, scripts, n);
  if (status < 0) {
    /* Restores of killed vdisql processes left their new databases here. */
    stale_sweep(dir, ".", ".db.restore-");
    out_init(sname, rflag);
    session_vars vars = {"master", 0, (long)getpid()};
    exec_ctx cx = {dir, sname, sep, headers, NULL, &vars};
    int failed = 0;
    for (int i = 0; i < n; i++) {
      failed += script_run(&cx, scripts[i], bflag);
      if (failed && bflag) break;
    }
    status = bflag && failed ? 1 : 0;
  }
  free_scripts(scripts, n);
  return status;
}
