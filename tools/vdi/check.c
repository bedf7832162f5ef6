/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.c - `vdi check` (can a backup run here: the instance readable,
 * vdisql found and of vdi's version, the target writable with room for
 * the estimated size; pgBackRest's check) and `vdi databases` (the
 * databases of an instance, its DB.db files).
 */
#include "app.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

struct db_file {
  char name[256];
  unsigned long long bytes;
};

/* The DB.db files of an instance directory (sorted by name).  Count or
 * -errno. */
static int instance_dbs(const char *dir, struct db_file **out) {
  DIR *d = opendir(dir);
  if (!d) return -errno;
  struct db_file *v = NULL;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (e->d_name[0] == '.' || l <= 3 || strcmp(e->d_name + l - 3, ".db"))
      continue;
    char name[256], p[4400];
    snprintf(name, sizeof name, "%.*s", (int)(l - 3), e->d_name);
    struct stat st;
    if (!app_valid_db_name(name) ||
        app_path(p, sizeof p, "%s/%s", dir, e->d_name) != 0 ||
        stat(p, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    struct db_file *nv = realloc(v, (size_t)(n + 1) * sizeof *v);
    if (!nv) abort();
    v = nv;
    snprintf(v[n].name, sizeof v[n].name, "%s", name);
    v[n].bytes = (unsigned long long)st.st_size;
    n++;
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* insertion sort: instances are small */
    for (int k = i; k > 0 && strcmp(v[k - 1].name, v[k].name) > 0; k--) {
      struct db_file t = v[k];
      v[k] = v[k - 1];
      v[k - 1] = t;
    }
  *out = v;
  return n;
}

int op_databases(const struct options *o) {
  char ibuf[4096];
  int dflt = 0;
  const char *dir = app_instance_dir(o->instance, ibuf, sizeof ibuf, &dflt);
  if (!dir) {
    app_err("no instance directory: give --instance DIR");
    return EXIT_USAGE;
  }
  if (dflt && !o->json)
    app_warn("no --instance given: using the default instance %s", dir);
  struct db_file *v = NULL;
  int n = instance_dbs(dir, &v);
  if (n < 0) {
    app_err("instance %s: %s (check --instance)", dir, strerror(-n));
    return EXIT_NOTFOUND;
  }
  if (o->json) {
    app_json_done = 1;
    printf("{\"command\": \"databases\", \"instance\": ");
    json_put_str(stdout, dir);
    printf(", \"databases\": [");
    for (int i = 0; i < n; i++) {
      printf("%s{\"name\": ", i ? ", " : "");
      json_put_str(stdout, v[i].name);
      printf(", \"bytes\": %llu}", v[i].bytes);
    }
    printf("]}\n");
  } else {
    if (!o->quiet)
      printf("instance %s: %d database%s\n", dir, n, n == 1 ? "" : "s");
    for (int i = 0; i < n; i++)
      printf("%s  %llu bytes\n", v[i].name, v[i].bytes);
  }
  free(v);
  return EXIT_OK;
}

/* ------------------------------------------------------------ check */

struct checks {
  const struct options *o;
  int failed, first;
};

static void report(struct checks *c, const char *what, int ok, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static void report(struct checks *c, const char *what, int ok, const char *fmt,
                   ...) {
  char detail[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (!ok) c->failed = 1;
  if (c->o->json) {
    printf("%s{\"check\": \"%s\", \"ok\": %s, \"detail\": ",
           c->first ? "" : ", ", what, ok ? "true" : "false");
    json_put_str(stdout, detail);
    printf("}");
    c->first = 0;
  } else {
    printf("%-6s %-10s %s\n", ok ? "ok" : "FAILED", what, detail);
  }
  fflush(stdout);
}

/* `vdisql --version`'s first line into out.  0 or -1. */
static int engine_version(const char *vdisql, char *out, size_t n) {
  int p[2];
  if (pipe(p) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(p[1], 1);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 2);
    }
    close(p[0]);
    close(p[1]);
    execl(vdisql, vdisql, "--version", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  size_t got = 0;
  ssize_t r;
  while (got + 1 < n && (r = read(p[0], out + got, n - 1 - got)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    got += (size_t)r;
  }
  out[got] = 0;
  close(p[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static unsigned long long check_instance(struct checks *c, const char *dir) {
  const struct options *o = c->o;
  struct db_file *v = NULL;
  int n = instance_dbs(dir, &v);
  unsigned long long need = 0;
  if (n < 0) {
    report(c, "instance", 0, "%s: %s (check --instance)", dir, strerror(-n));
    return 0;
  }
  int found = !o->db;
  for (int i = 0; i < n; i++) {
    if (!o->db || strcmp(v[i].name, o->db) == 0) need += v[i].bytes;
    if (o->db && strcmp(v[i].name, o->db) == 0) found = 1;
  }
  if (o->db && !found)
    report(c, "database", 0, "no %s.db in %s (vdi databases lists them)", o->db,
           dir);
  else
    report(c, "instance", 1, "%s readable, %d database%s, %llu bytes", dir, n,
           n == 1 ? "" : "s", need);
  free(v);
  return need;
}

static void check_engine(struct checks *c) {
  char vdisql[4096], ver[256], want[128];
  if (engine_find(c->o->vdisql, vdisql, sizeof vdisql) != 0) {
    report(c, "vdisql", 0, "not found (use --vdisql PATH)");
    return;
  }
  snprintf(want, sizeof want, "vdisql %s", APP_VERSION);
  if (engine_version(vdisql, ver, sizeof ver) != 0)
    report(c, "vdisql", 0, "%s: --version failed", vdisql);
  else if (strcmp(ver, want) != 0)
    report(c, "vdisql", 0, "%s is '%s'; vdi is %s %s", vdisql, ver, APP_NAME,
           APP_VERSION);
  else
    report(c, "vdisql", 1, "%s (%s)", vdisql, ver);
}

static void check_target(struct checks *c, unsigned long long need) {
  const char *to = c->o->to;
  char dir[4096];
  struct stat st;
  /* An S3 repository: the store answers a listing with these credentials
   * (its one-line reason told otherwise); no local space is used. */
  if (app_is_s3(to)) {
    struct repo r;
    int rc = repo_open(&r, to, 1);
    repo_close(&r);
    report(c, "target", rc == 0, "%s %s", to,
           rc == 0 ? "reachable" : "not reachable (see above)");
    return;
  }
  /* A target not made yet: backup makes it in its parent. */
  snprintf(dir, sizeof dir, "%s", to);
  while (stat(dir, &st) != 0) {
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
      snprintf(dir, sizeof dir, "%s", slash == dir ? "/" : ".");
      break;
    }
    *slash = 0;
  }
  char probe[4200];
  if (app_path(probe, sizeof probe, "%s/.vdi-check-XXXXXX", dir) != 0) {
    report(c, "target", 0, "%s: path too long", to);
    return;
  }
  int fd = mkstemp(probe);
  if (fd < 0) {
    report(c, "target", 0, "%s: cannot write in %s: %s", to, dir,
           strerror(errno));
    return;
  }
  close(fd);
  unlink(probe);
  report(c, "target", 1, "%s writable%s", to,
         strcmp(dir, to) ? " (it will be made)" : "");
  struct statvfs vfs;
  if (statvfs(dir, &vfs) != 0) {
    report(c, "space", 0, "%s: %s", dir, strerror(errno));
    return;
  }
  unsigned long long avail =
      (unsigned long long)vfs.f_bavail * (unsigned long long)vfs.f_frsize;
  report(c, "space", avail >= need, "%llu bytes free, %llu estimated", avail,
         need);
}

int op_check(const struct options *o) {
  struct checks c = {.o = o, .first = 1};
  char ibuf[4096];
  int dflt = 0;
  const char *dir = app_instance_dir(o->instance, ibuf, sizeof ibuf, &dflt);
  if (o->json) {
    app_json_done = 1;
    printf("{\"command\": \"check\", \"checks\": [");
  }
  if (dflt && !o->json)
    app_warn("no --instance given: using the default instance %s",
             dir ? dir : "(unknown)");
  unsigned long long need = 0;
  if (!dir)
    report(&c, "instance", 0, "no instance directory: give --instance DIR");
  else
    need = check_instance(&c, dir);
  check_engine(&c);
  if (o->to) check_target(&c, need);
  if (o->json)
    printf("], \"status\": \"%s\"}\n", c.failed ? "failed" : "ok");
  else if (!o->quiet)
    printf("%s: check %s\n", APP_NAME, c.failed ? "FAILED" : "passed");
  return c.failed ? EXIT_FAIL : EXIT_OK;
}
