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

#include "timefmt.h"
#include "vstream.h"

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
  if (app_is_s3(o->to)) return op_backup_s3(o); /* s3target.c */
  int to_stdout = strcmp(o->to, "-") == 0;
  if (to_stdout && isatty(1)) {
    app_err("refusing to write a backup to a terminal (redirect stdout)");
    return EXIT_USAGE;
  }
  char vdisql[4096];
  if (engine_find(o->vdisql, vdisql, sizeof vdisql) != 0) return EXIT_FAIL;
  if (!to_stdout && ensure_dir(o->to) != 0) return EXIT_FAIL;
  /* A differential or log backup: the next entry of the chain beside the
   * full backup it continues. */
  char entry[4500];
  const char *dest = o->to;
  if (o->kind != CHAIN_FULL) {
    char fm[256], fp[4400];
    struct stat fst;
    manifest_file_name(o->db, fm, sizeof fm);
    if (app_path(fp, sizeof fp, "%s/%s", o->to, fm) != 0 || stat(fp, &fst)) {
      app_err("no full backup of '%s' in %s: a %s backup continues one "
              "(vdi backup %s --to %s)",
              o->db, o->to, o->kind == CHAIN_LOG ? "log" : "differential",
              o->db, o->to);
      return EXIT_FAIL;
    }
    int e = chain_new_entry(o->to, o->db, o->kind, entry, sizeof entry);
    if (e != 0) {
      app_err("cannot create a backup directory in %s: %s", o->to,
              strerror(-e));
      return EXIT_FAIL;
    }
    dest = entry;
  }

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
      int rc = stripe_create(&st[i], dest, name, tag, have_src ? &dbst : NULL);
      if (rc == -ELOOP) {
        app_err("%s/%s is a symbolic link; vdi does not write a backup "
                "through one (remove it)",
                dest, name);
        goto out;
      }
      if (rc != 0) {
        app_err("cannot create a stripe file in %s: %s", dest, strerror(-rc));
        goto out;
      }
    }
    nopen++;
  }
  char clause[4096];
  transfer_device_clause(t, clause, sizeof clause);
  app_path(t->statement, sizeof t->statement,
           "BACKUP %s [%s] TO %s WITH %sCHECKSUM, %s",
           o->kind == CHAIN_LOG ? "LOG" : "DATABASE", o->db, clause,
           o->kind == CHAIN_DIFF ? "DIFFERENTIAL, " : "",
           o->compress ? "COMPRESSION" : "NO_COMPRESSION");

  uint64_t dbsize = have_src ? (uint64_t)dbst.st_size : 0;
  struct progress prog;
  /* With compression the stream is smaller than the file: no percent. */
  progress_start(&prog, "backup",
                 o->compress || o->kind != CHAIN_FULL ? 0 : dbsize, o->quiet);
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
  if (app_path(mpath, sizeof mpath, "%s/%s", dest, mname) != 0) {
    app_err("path too long");
    goto out;
  }
  if (unlink(mpath) == 0) app_fsync_dir(dest);
  for (int i = 0; i < o->stripes; i++) {
    int e = stripe_commit(&st[i]);
    if (e != 0) {
      app_err("cannot rename stripe %d into place: %s", i, strerror(-e));
      goto out;
    }
  }
  remove_stale_stripes(dest, o->db, o->stripes);
  rc = app_fsync_dir(dest);
  if (rc != 0) {
    app_err("%s: fsync: %s", dest, strerror(-rc));
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
  rc = manifest_write(dest, m, have_src ? &dbst : NULL);
  if (rc == -ELOOP) {
    app_err("%s/%s is a symbolic link; vdi does not write a manifest "
            "through one (remove it)",
            dest, mname);
    remove_stale_stripes(dest, o->db, 0);
    goto out;
  }
  if (rc != 0) {
    app_err("cannot write the manifest in %s: %s", dest, strerror(-rc));
    /* Without a manifest the stripes are not a backup: remove them. */
    remove_stale_stripes(dest, o->db, 0);
    goto out;
  }
  progress_summary(&prog, "backup complete", o->stripes);
  /* A new full backup: the old chain continued the full it replaced,
   * except a log backup that ran meanwhile (it bridges to the new one). */
  if (o->kind == CHAIN_FULL) chain_prune(o->to, o->db, m);
  status = EXIT_OK;
out:
  if (status != EXIT_OK && o->kind != CHAIN_FULL && !to_stdout)
    chain_remove_entry(entry);
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

/* The restore of a chain (--to-time, --latest): see chain.c. */
static int restore_chain(const struct options *o, const char *target) {
  int64_t T = 0;
  if (o->to_time && time_parse_ms(o->to_time, &T) != 0) return EXIT_USAGE;
  struct chain_entry *v = NULL;
  int n = chain_list(o->from, o->db, &v);
  if (n < 0) {
    app_err("%s: cannot read the chain of '%s': %s", o->from, o->db,
            strerror(-n));
    return EXIT_FAIL;
  }
  /* Step 0 is the full backup; entries follow with their manifests. */
  struct manifest *m = calloc((size_t)n + 1, sizeof *m);
  vs_header *h = calloc((size_t)n + 1, sizeof *h);
  const char **dir = calloc((size_t)n + 1, sizeof *dir);
  int *kind = calloc((size_t)n + 1, sizeof *kind);
  int *step = calloc((size_t)n + 1, sizeof *step);
  if (!m || !h || !dir || !kind || !step) abort();
  int status = EXIT_FAIL, nsteps = 0;
  char when[40];
  dir[0] = o->from;
  kind[0] = CHAIN_FULL;
  if (load_checked(o->from, o->db, &m[0]) != 0) goto out;
  if (chain_header(o->from, &m[0], &h[0]) != 0) {
    app_err("the full backup of '%s' in %s has no readable header", o->db,
            o->from);
    goto out;
  }
  if (T && T < h[0].last_time_ms) {
    time_format_ms(h[0].last_time_ms, when, sizeof when);
    app_err("--to-time %s is before the full backup of '%s' in %s (%s)",
            o->to_time, o->db, o->from, when);
    goto out;
  }
  for (int i = 0; i < n; i++) {
    dir[i + 1] = v[i].dir;
    kind[i + 1] = v[i].kind;
    if (load_checked(v[i].dir, o->db, &m[i + 1]) != 0 ||
        chain_header(v[i].dir, &m[i + 1], &h[i + 1]) != 0) {
      app_err("%s is damaged; refusing to plan a restore across it", v[i].dir);
      goto out;
    }
  }
  /* The newest differential of this full at or before T. */
  int base = 0;
  for (int i = 1; i <= n; i++)
    if (kind[i] == CHAIN_DIFF &&
        memcmp(h[i].diff_base_id, h[0].set_id, 16) == 0 &&
        (!T || h[i].last_time_ms <= T))
      base = i;
  step[nsteps++] = 0;
  if (base) step[nsteps++] = base;
  uint64_t lsn = h[base].last_lsn;
  int reached = !T;
  for (int i = base + 1; i <= n && !(T && reached); i++) {
    if (kind[i] != CHAIN_LOG || h[i].last_lsn <= lsn) continue;
    step[nsteps++] = i;
    lsn = h[i].last_lsn;
    if (T && h[i].last_time_ms >= T) reached = 1;
  }
  if (!reached) {
    int last = step[nsteps - 1];
    time_format_ms(h[last].last_time_ms, when, sizeof when);
    app_err("no log backup of '%s' in %s reaches %s (the chain ends at %s); "
            "nothing was restored",
            o->db, o->from, o->to_time, when);
    goto out;
  }
  if (!o->quiet)
    printf("vdi: restoring '%s' from %d backup%s (full%s, %d log)\n", target,
           nsteps, nsteps == 1 ? "" : "s", base ? ", differential" : "",
           nsteps - 1 - (base ? 1 : 0));
  for (int k = 0; k < nsteps; k++) {
    int i = step[k], last = k == nsteps - 1;
    char head[256], tail[300];
    app_path(head, sizeof head, "RESTORE %s [%s] FROM",
             kind[i] == CHAIN_LOG ? "LOG" : "DATABASE", target);
    snprintf(tail, sizeof tail, " WITH %s%s%s%s%s",
             last ? "RECOVERY" : "NORECOVERY",
             k == 0 && o->replace ? ", REPLACE" : "",
             T && kind[i] == CHAIN_LOG ? ", STOPAT = '" : "",
             T && kind[i] == CHAIN_LOG ? o->to_time : "",
             T && kind[i] == CHAIN_LOG ? "'" : "");
    status = run_restore(o, dir[i], &m[i], head, tail, "restore");
    if (status != EXIT_OK) {
      app_err("restore of '%s' stopped at %s; '%s' stays RESTORING until a "
              "restore of it completes",
              target, dir[i], target);
      goto out;
    }
  }
out:
  free(v);
  free(m);
  free(h);
  free(dir);
  free(kind);
  free(step);
  return status;
}

int op_restore(const struct options *o) {
  const char *target = o->as ? o->as : o->db;
  /* vdi's own rule, stricter than the engine's (which lets a backup of
   * the same database replace it): an existing database is overwritten
   * only when the user says so. */
  struct stat tst;
  if (!o->replace && db_file_stat(o->instance, target, &tst) == 0) {
    app_err("database '%s' exists in the instance; use --replace to "
            "overwrite it (or --as NAME)",
            target);
    return EXIT_FAIL;
  }
  if (app_is_s3(o->from)) return op_restore_s3(o, target);
  if (o->to_time || o->latest) return restore_chain(o, target);
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
  if (app_is_s3(o->from)) return op_verify_s3(o);
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
  if (app_is_s3(o->from)) return op_list_s3(o);
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
    struct chain_entry *v = NULL;
    int nc = chain_list(o->from, names[i], &v);
    for (int k = 0; k < nc; k++) {
      struct manifest *cm = calloc(1, sizeof *cm);
      char cp[4600], mn[256];
      if (!cm) abort();
      manifest_file_name(names[i], mn, sizeof mn);
      uint64_t bytes = 0;
      if (app_path(cp, sizeof cp, "%s/%s", v[k].dir, mn) == 0 &&
          manifest_read(cp, cm, why, sizeof why) == 0) {
        for (int s = 0; s < cm->nstripes; s++)
          bytes += cm->stripes[s].bytes;
        printf("  + %s %06d  finished %s  %d stripe%s  %llu bytes\n",
               v[k].kind == CHAIN_LOG ? "log" : "differential", v[k].seq,
               cm->finished, cm->nstripes, cm->nstripes == 1 ? "" : "s",
               (unsigned long long)bytes);
        if (manifest_check(v[k].dir, cm, 0) != 0) status = EXIT_FAIL;
      } else {
        printf("  + %06d  incomplete (no manifest): not a backup\n", v[k].seq);
      }
      free(cm);
    }
    free(v);
  }
  free(m);
  free_names(names, n);
  return status;
}
