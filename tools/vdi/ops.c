/*
 * ops.c - the four things vdi does, put together from the parts:
 *
 *   backup   stripes under temporary names -> BACKUP ... VIRTUAL_DEVICE ->
 *            on success: old manifest out, stripes renamed, manifest last
 *   restore  manifest + every stripe's size and CRC-32C checked -> RESTORE
 *   verify   the same checks, then RESTORE VERIFYONLY through the engine
 *   list     what the manifests in a directory say
 *
 * A backup directory may hold the backups of several databases; each is
 * "<db>.manifest.json" plus the stripe files that it names.
 */
#include "app.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* vdisql's rule (see vdisql(1)): $VDI_INSTANCE_DIR, else
 * $XDG_DATA_HOME/openvdi/instance, else ~/.local/share/openvdi/instance. */
const char *app_default_instance(char *buf, size_t n) {
  const char *env = getenv("VDI_INSTANCE_DIR");
  if (env && *env) {
    snprintf(buf, n, "%s", env);
    return buf;
  }
  const char *x = getenv("XDG_DATA_HOME");
  if (x && *x)
    return app_path(buf, n, "%s/openvdi/instance", x) == 0 ? buf : NULL;
  const char *home = getenv("HOME");
  if (home && *home)
    return app_path(buf, n, "%s/.local/share/openvdi/instance", home) == 0
               ? buf
               : NULL;
  return NULL;
}

/* The size of the database file, for the progress percent (0: unknown). */
/* The database file's stat (0), for its size and for the permissions of
 * the backup's files; -1 if it cannot be seen from here. */
static int db_file_stat(const char *instance, const char *db, struct stat *st) {
  char ibuf[4096], path[4400];
  /* The names sqlcmd (and so vdisql) takes for the default instance. */
  if (instance &&
      (strcmp(instance, ".") == 0 || strcasecmp(instance, "localhost") == 0 ||
       strcasecmp(instance, "(local)") == 0))
    instance = NULL;
  if (!instance) instance = app_default_instance(ibuf, sizeof ibuf);
  if (!instance) return -1;
  if (app_path(path, sizeof path, "%s/%s.db", instance, db) != 0 ||
      stat(path, st) != 0)
    return -1;
  return 0;
}

static int fail_status(const struct transfer *t) {
  return t->interrupted ? 128 + t->interrupted : EXIT_FAIL;
}

static void stripe_file_name(const char *db, int i, char *buf, size_t n) {
  snprintf(buf, n, "%s.stripe%d.vdibak", db, i);
}

/* Files of an older backup of the same database that the new one does not
 * overwrite (it had more stripes). */
static void remove_stale_stripes(const char *dir, const char *db, int from) {
  for (int i = from; i < APP_MAX_STRIPES; i++) {
    char name[256], path[4400];
    stripe_file_name(db, i, name, sizeof name);
    if (app_path(path, sizeof path, "%s/%s", dir, name) == 0) unlink(path);
  }
}

static int ensure_dir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return 0;
    app_err("%s: not a directory", dir);
    return -1;
  }
  /* It will hold full copies of databases: private until the user says
   * otherwise (by making the directory first). */
  if (errno == ENOENT && mkdir(dir, 0700) == 0) return 0;
  app_err("%s: %s", dir, strerror(errno));
  return -1;
}

int op_backup(const struct options *o) {
  int to_stdout = strcmp(o->to, "-") == 0;
  if (to_stdout && isatty(1)) {
    app_err("refusing to write a backup to a terminal (redirect stdout)");
    return EXIT_USAGE;
  }
  char vdisql[4096];
  if (engine_find(o->vdisql, vdisql, sizeof vdisql) != 0) return EXIT_FAIL;
  if (!to_stdout && ensure_dir(o->to) != 0) return EXIT_FAIL;

  struct transfer *t = calloc(1, sizeof *t);
  struct stripe *st = calloc((size_t)o->stripes, sizeof *st);
  struct manifest *m = calloc(1, sizeof *m);
  if (!t || !st || !m) abort();
  transfer_names(t, o->stripes);
  t->mode = XFER_BACKUP;
  t->stripes = st;
  t->vdisql = vdisql;
  t->instance = o->instance;
  const char *tag = t->set_name + 4; /* the random hex */
  int status = EXIT_FAIL, nopen = 0;
  struct stat dbst;
  int have_src = db_file_stat(o->instance, o->db, &dbst) == 0;

  for (int i = 0; i < o->stripes; i++) {
    st[i].index = i;
    if (to_stdout) {
      stripe_use_fd(&st[i], 1);
    } else {
      char name[256];
      stripe_file_name(o->db, i, name, sizeof name);
      int rc = stripe_create(&st[i], o->to, name, tag, have_src ? &dbst : NULL);
      if (rc == -ELOOP) {
        app_err("%s/%s is a symbolic link; vdi does not write a backup "
                "through one (remove it)",
                o->to, name);
        goto out;
      }
      if (rc != 0) {
        app_err("cannot create a stripe file in %s: %s", o->to, strerror(-rc));
        goto out;
      }
    }
    nopen++;
  }
  char clause[4096];
  transfer_device_clause(t, clause, sizeof clause);
  app_path(t->statement, sizeof t->statement,
           "BACKUP DATABASE [%s] TO %s WITH CHECKSUM, %s", o->db, clause,
           o->compress ? "COMPRESSION" : "NO_COMPRESSION");

  uint64_t dbsize = have_src ? (uint64_t)dbst.st_size : 0;
  struct progress prog;
  /* With compression the stream is smaller than the file: no percent. */
  progress_start(&prog, "backup", o->compress ? 0 : dbsize, o->quiet);
  t->progress = &prog;
  double wall0 = app_wall_s(), mono0 = app_mono_s();
  int rc = transfer_run(t, to_stdout ? stderr : stdout);
  progress_stop(&prog);
  if (rc != 0) {
    status = fail_status(t);
    app_err("backup of '%s' failed; no backup was recorded", o->db);
    goto out;
  }
  if (to_stdout) {
    progress_summary(&prog, "backup complete", o->stripes);
    status = EXIT_OK;
    goto out;
  }

  /* Success: the old manifest (if any) goes first, so that no manifest
   * ever names a mix of old and new stripe files. */
  char mname[256], mpath[4400];
  manifest_file_name(o->db, mname, sizeof mname);
  if (app_path(mpath, sizeof mpath, "%s/%s", o->to, mname) != 0) {
    app_err("path too long");
    goto out;
  }
  if (unlink(mpath) == 0) app_fsync_dir(o->to);
  for (int i = 0; i < o->stripes; i++) {
    int e = stripe_commit(&st[i]);
    if (e != 0) {
      app_err("cannot rename stripe %d into place: %s", i, strerror(-e));
      goto out;
    }
  }
  remove_stale_stripes(o->to, o->db, o->stripes);
  rc = app_fsync_dir(o->to);
  if (rc != 0) {
    app_err("%s: fsync: %s", o->to, strerror(-rc));
    goto out;
  }
  snprintf(m->database, sizeof m->database, "%s", o->db);
  snprintf(m->set_name, sizeof m->set_name, "%s", t->set_name);
  snprintf(m->compression, sizeof m->compression, "%s",
           o->compress ? "zstd" : "none");
  snprintf(m->tool, sizeof m->tool, "%s %s", APP_NAME, APP_VERSION);
  app_iso_time(wall0, m->started, sizeof m->started);
  app_iso_time(app_wall_s(), m->finished, sizeof m->finished);
  m->seconds = app_mono_s() - mono0;
  m->db_bytes = dbsize;
  m->nstripes = o->stripes;
  for (int i = 0; i < o->stripes; i++) {
    snprintf(m->stripes[i].file, sizeof m->stripes[i].file, "%s", st[i].name);
    m->stripes[i].bytes = st[i].bytes;
    m->stripes[i].crc32c = st[i].crc;
  }
  rc = manifest_write(o->to, m, have_src ? &dbst : NULL);
  if (rc == -ELOOP) {
    app_err("%s/%s is a symbolic link; vdi does not write a manifest "
            "through one (remove it)",
            o->to, mname);
    remove_stale_stripes(o->to, o->db, 0);
    goto out;
  }
  if (rc != 0) {
    app_err("cannot write the manifest in %s: %s", o->to, strerror(-rc));
    /* Without a manifest the stripes are not a backup: remove them. */
    remove_stale_stripes(o->to, o->db, 0);
    goto out;
  }
  progress_summary(&prog, "backup complete", o->stripes);
  status = EXIT_OK;
out:
  for (int i = 0; i < nopen; i++)
    stripe_close(&st[i]);
  free(t);
  free(st);
  free(m);
  return status;
}

/* Load and check "<dir>/<db>.manifest.json" and every stripe it names. */
static int load_checked(const char *dir, const char *db, struct manifest *m) {
  char mname[256], mpath[4400], why[256];
  manifest_file_name(db, mname, sizeof mname);
  if (app_path(mpath, sizeof mpath, "%s/%s", dir, mname) != 0) {
    app_err("path too long");
    return -1;
  }
  int rc = manifest_read(mpath, m, why, sizeof why);
  if (rc == -ENOENT) {
    app_err("no complete backup of '%s' in %s (no %s)", db, dir, mname);
    return -1;
  }
  if (rc != 0) {
    app_err("%s: %s", mpath, why);
    return -1;
  }
  if (strcmp(m->database, db) != 0) {
    app_err("%s: names database '%s', not '%s'", mpath, m->database, db);
    return -1;
  }
  if (manifest_check(dir, m, 1) != 0) {
    app_err("the backup of '%s' in %s is damaged; refusing to use it", db, dir);
    return -1;
  }
  return 0;
}

/* Feed a backup (manifest'd directory, or stdin) to a RESTORE statement. */
static int run_restore(const struct options *o, const char *dir,
                       const struct manifest *m, const char *head,
                       const char *tail, const char *verb) {
  int from_stdin = dir == NULL;
  int n = from_stdin ? 1 : m->nstripes;
  char vdisql[4096];
  if (engine_find(o->vdisql, vdisql, sizeof vdisql) != 0) return EXIT_FAIL;
  struct transfer *t = calloc(1, sizeof *t);
  struct stripe *st = calloc((size_t)n, sizeof *st);
  if (!t || !st) abort();
  transfer_names(t, n);
  t->mode = XFER_RESTORE;
  t->stripes = st;
  t->vdisql = vdisql;
  t->instance = o->instance;
  int status = EXIT_FAIL, nopen = 0;
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    st[i].index = i;
    if (from_stdin) {
      stripe_use_fd(&st[i], 0);
    } else {
      st[i].expect = m->stripes[i].bytes;
      st[i].expect_crc = m->stripes[i].crc32c;
      st[i].check_feed = 1;
      total += m->stripes[i].bytes;
      int rc = stripe_open(&st[i], dir, m->stripes[i].file);
      if (rc != 0) {
        app_err("%s/%s: %s", dir, m->stripes[i].file, strerror(-rc));
        goto out;
      }
    }
    nopen++;
  }
  char clause[4096];
  transfer_device_clause(t, clause, sizeof clause);
  app_path(t->statement, sizeof t->statement, "%s %s%s", head, clause, tail);
  struct progress prog;
  progress_start(&prog, verb, total, o->quiet);
  t->progress = &prog;
  int rc = transfer_run(t, stdout);
  progress_stop(&prog);
  if (rc != 0) {
    status = fail_status(t);
  } else {
    char what[64];
    snprintf(what, sizeof what, "%s complete", verb);
    progress_summary(&prog, what, n);
    status = EXIT_OK;
  }
out:
  for (int i = 0; i < nopen; i++)
    stripe_close(&st[i]);
  free(t);
  free(st);
  return status;
}

int op_restore(const struct options *o) {
  const char *target = o->as ? o->as : o->db;
  int from_stdin = strcmp(o->from, "-") == 0;
  if (from_stdin && isatty(0)) {
    app_err("refusing to read a backup from a terminal (redirect stdin)");
    return EXIT_USAGE;
  }
  struct manifest *m = calloc(1, sizeof *m);
  if (!m) abort();
  int status = EXIT_FAIL;
  if (!from_stdin && load_checked(o->from, o->db, m) != 0) goto out;
  char head[256];
  app_path(head, sizeof head, "RESTORE DATABASE [%s] FROM", target);
  status = run_restore(o, from_stdin ? NULL : o->from, m, head,
                       o->replace ? " WITH REPLACE" : "", "restore");
  if (status != EXIT_OK) app_err("restore of '%s' failed", target);
out:
  free(m);
  return status;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The database names of every "<db>.manifest.json" in dir, sorted. */
static int list_manifests(const char *dir, char ***out) {
  DIR *d = opendir(dir);
  if (!d) {
    app_err("%s: %s", dir, strerror(errno));
    return -1;
  }
  char **names = NULL;
  int n = 0;
  struct dirent *e;
  size_t sl = strlen(MANIFEST_SUFFIX);
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l <= sl || e->d_name[0] == '.' ||
        strcmp(e->d_name + l - sl, MANIFEST_SUFFIX) != 0)
      continue;
    names = realloc(names, (size_t)(n + 1) * sizeof *names);
    if (!names) abort();
    names[n] = strndup(e->d_name, l - sl);
    if (!names[n]) abort();
    n++;
  }
  closedir(d);
  if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);
  *out = names;
  return n;
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

int op_verify(const struct options *o) {
  if (strcmp(o->from, "-") == 0) {
    if (isatty(0)) {
      app_err("refusing to read a backup from a terminal (redirect stdin)");
      return EXIT_USAGE;
    }
    return run_restore(o, NULL, NULL, "RESTORE VERIFYONLY FROM", "", "verify");
  }
  char **names;
  int n;
  if (o->db) {
    names = malloc(sizeof *names);
    if (!names) abort();
    names[0] = strdup(o->db);
    n = 1;
  } else {
    n = list_manifests(o->from, &names);
    if (n < 0) return EXIT_FAIL;
    if (n == 0) {
      app_err("no complete backup in %s", o->from);
      free(names);
      return EXIT_FAIL;
    }
  }
  struct manifest *m = calloc(1, sizeof *m);
  if (!m) abort();
  int status = EXIT_OK;
  for (int i = 0; i < n; i++) {
    int st = EXIT_FAIL;
    if (load_checked(o->from, names[i], m) == 0)
      st = run_restore(o, o->from, m, "RESTORE VERIFYONLY FROM", "", "verify");
    if (st == EXIT_OK) {
      printf("%s: backup of '%s' is valid (%d stripe%s)\n", APP_NAME, names[i],
             m->nstripes, m->nstripes == 1 ? "" : "s");
    } else {
      app_err("backup of '%s' in %s did NOT verify", names[i], o->from);
      if (status == EXIT_OK || st > 128) status = st;
      if (st > 128) break; /* interrupted */
    }
    fflush(stdout);
  }
  free(m);
  free_names(names, n);
  return status;
}

int op_list(const struct options *o) {
  char **names;
  int n = list_manifests(o->from, &names);
  if (n < 0) return EXIT_FAIL;
  if (n == 0) {
    app_err("no complete backup in %s", o->from);
    free(names);
    return EXIT_FAIL;
  }
  struct manifest *m = calloc(1, sizeof *m);
  if (!m) abort();
  int status = EXIT_OK;
  for (int i = 0; i < n; i++) {
    char path[4400], why[256];
    if (app_path(path, sizeof path, "%s/%s%s", o->from, names[i],
                 MANIFEST_SUFFIX) != 0 ||
        manifest_read(path, m, why, sizeof why) != 0) {
      app_err("%s%s: %s", names[i], MANIFEST_SUFFIX, why);
      status = EXIT_FAIL;
      continue;
    }
    uint64_t total = 0;
    for (int k = 0; k < m->nstripes; k++)
      total += m->stripes[k].bytes;
    printf("%s  finished %s  %d stripe%s  %llu bytes  compression %s  "
           "database %llu bytes  (%s)\n",
           m->database, m->finished, m->nstripes, m->nstripes == 1 ? "" : "s",
           (unsigned long long)total, m->compression,
           (unsigned long long)m->db_bytes, m->tool);
    for (int k = 0; k < m->nstripes; k++)
      printf("  stripe %d  %s  %llu bytes  crc32c %08x\n", k,
             m->stripes[k].file, (unsigned long long)m->stripes[k].bytes,
             (unsigned)m->stripes[k].crc32c);
    fflush(stdout);
    /* Sizes only: list is quick; verify reads every byte. */
    if (manifest_check(o->from, m, 0) != 0) status = EXIT_FAIL;
  }
  free(m);
  free_names(names, n);
  return status;
}
