/*
 * main.c - vdisql: the reference database engine of openvdi, run like
 * sqlcmd.  Options, the instance directory, reading -Q / -i / stdin,
 * splitting scripts into batches at GO lines, exit status.
 * See vdisql.1.
 */
#include "stale.h"
#include "exec.h"
#include "lexer.h"
#include "media.h"
#include "msg.h"
#include "parser.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
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
      "  -S  instance: a directory path; '.', 'localhost', '(local)' or\n"
      "      none means $VDI_INSTANCE_DIR, else\n"
      "      $XDG_DATA_HOME/openvdi/instance (~/.local/share/...)\n"
      "  -Q  run the statement(s) and exit   -i  run script file(s)\n"
      "  -b  exit with status 1 when an error occurs\n"
      "  -U, -P, -E, -d, -l, -t, -W, -C, -N: accepted, no effect\n"
      "Statements: BACKUP DATABASE, RESTORE DATABASE | VERIFYONLY |\n"
      "HEADERONLY | FILELISTONLY (see vdisql(1)).\n");
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

/* 1 if the line [p, e) is a GO separator ("GO" alone, any case). */
static int is_go(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  if (e - p < 2 || strncasecmp(p, "GO", 2) != 0) return 0;
  p += 2;
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  return p == e;
}

/* A batch that does not parse runs nothing; a backup application waiting
 * on a set the batch names would wait forever, so abort those sets (the
 * first VIRTUAL_DEVICE after each TO / FROM names the set). */
static void abort_named_sets(const toklist *tl) {
  for (size_t i = 0; i + 3 < tl->n; i++)
    if ((tok_is(&tl->v[i], "TO") || tok_is(&tl->v[i], "FROM")) &&
        tok_is(&tl->v[i + 1], "VIRTUAL_DEVICE") &&
        tl->v[i + 2].kind == T_PUNCT && tl->v[i + 2].text[0] == '=' &&
        tl->v[i + 3].kind == T_STR && tl->v[i + 3].text[0])
      vdidev_abort_set(tl->v[i + 3].text);
}

/* Run one batch.  @return number of failed statements (or 1 for a batch
 * that does not parse). */
static int run_batch(const exec_ctx *cx, const char *src, int stop_on_error) {
  vmsg err = {0};
  toklist tl;
  stmtlist sl;
  if (lex_batch(src, &tl, &err)) {
    out_vmsg(&err, 1);
    return 1;
  }
  if (parse_batch(&tl, &sl, &err)) {
    out_vmsg(&err, 1);
    abort_named_sets(&tl);
    toklist_free(&tl);
    return 1;
  }
  int failed = 0;
  for (size_t i = 0; i < sl.n; i++) {
    if (exec_stmt(cx, &sl.v[i]) != 0) {
      failed++;
      if (stop_on_error) break;
    }
  }
  stmtlist_free(&sl);
  toklist_free(&tl);
  return failed;
}

static int run_script(const exec_ctx *cx, char *text, int stop) {
  int failed = 0;
  char *batch = text, *p = text;
  while (*p) {
    char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    if (is_go(p, e)) {
      char save = *p;
      *p = 0; /* the batch ends before the GO line */
      failed += run_batch(cx, batch, stop);
      *p = save;
      if (failed && stop) return failed;
      batch = *e ? e + 1 : e;
    }
    p = *e ? e + 1 : e;
  }
  if (*batch) failed += run_batch(cx, batch, stop);
  return failed;
}

int main(int argc, char **argv) {
  const char *server = NULL, *query = NULL, *sep = "\t";
  const char *inputs = NULL; /* -i list, within argv (the last -i wins) */
  int bflag = 0, rflag = 0, headers = 1;
  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
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
  /* Restores of killed vdisql processes left their new databases here. */
  stale_sweep(dir, ".", ".db.restore-");
  char host[256] = "localhost";
  if (is_default) gethostname(host, sizeof host - 1);
  const char *sname = is_default ? host : server;
  out_init(sname, rflag);
  exec_ctx cx = {dir, sname, sep, headers};

  int failed = 0;
  if (query) {
    char *q = strdup(query);
    failed = run_script(&cx, q, bflag);
    free(q);
  } else if (inputs) {
    char *list = strdup(inputs);
    if (!list) return 1;
    for (char *save = NULL, *f = strtok_r(list, ",", &save); f;
         f = strtok_r(NULL, ",", &save)) {
      FILE *fp = fopen(f, "r");
      if (!fp) {
        fprintf(stderr, "Sqlcmd: '%s': Invalid filename.\n", f);
        free(list);
        return 1;
      }
      char *text = slurp(fp);
      fclose(fp);
      if (!text) {
        free(list);
        return 1;
      }
      failed += run_script(&cx, text, bflag);
      free(text);
      if (failed && bflag) break;
    }
    free(list);
  } else {
    char *text = slurp(stdin);
    if (!text) return 1;
    failed = run_script(&cx, text, bflag);
    free(text);
  }
  return bflag && failed ? 1 : 0;
}
