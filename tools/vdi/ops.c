/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c - what vdi does, put together from the parts:
 *
 *   backup   a new set in the repository (repo.c): stripes under temporary
 *            names -> BACKUP ... VIRTUAL_DEVICE -> on success: stripes
 *            renamed, manifest last; on failure the set is removed
 *   restore  the plan (chain.c: the newest full set unless --set,
 *            --to-time or --latest say otherwise), every manifest and
 *            stripe's size and CRC-32C checked -> RESTORE, step by step
 *   verify   the same checks, then RESTORE VERIFYONLY through the engine
 *   list     every set of every database in the repository
 *   expire   the sets no kept chain needs (a dry run unless --delete)
 *
 * Exit statuses: app.h (EXIT_*); --json summaries go to stdout.
 */
#include "app.h"

#include "seal.h"
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

const char *app_instance_dir(const char *instance, char *buf, size_t n,
                             int *is_default) {
  /* The names sqlcmd (and so vdisql) takes for the default instance. */
  if (instance &&
      (strcmp(instance, ".") == 0 || strcasecmp(instance, "localhost") == 0 ||
       strcasecmp(instance, "(local)") == 0))
    instance = NULL;
  const char *env = getenv("VDI_INSTANCE_DIR");
  if (is_default) *is_default = !instance && !(env && *env);
  if (instance) {
    snprintf(buf, n, "%s", instance);
    return buf;
  }
  return app_default_instance(buf, n);
}

/* The database file's stat (0), for its size and for the permissions of
 * the backup's files; -1 if it cannot be seen from here. */
static int db_file_stat(const char *instance, const char *db, struct stat *st) {
  char ibuf[4096], path[4400];
  if (!app_instance_dir(instance, ibuf, sizeof ibuf, NULL)) return -1;
  if (app_path(path, sizeof path, "%s/%s.db", ibuf, db) != 0 ||
      stat(path, st) != 0)
    return -1;
  return 0;
}

/* Say where things go: the instance and the database file; warn when the
 * per-user default is used because --instance was not given. */
static void announce(const struct options *o, const char *db) {
  char ibuf[4096];
  int dflt = 0;
  const char *dir = app_instance_dir(o->instance, ibuf, sizeof ibuf, &dflt);
  if (!dir) return;
  if (dflt) app_warn("no --instance given: using the default instance %s", dir);
  app_note("instance %s, database file %s/%s.db", dir, dir, db);
}

/* `vdi backup big.db`: the name is the database's, not its file's. */
static int hint_db_suffix(const struct options *o) {
  size_t l = strlen(o->db);
  struct stat st;
  if (l > 3 && strcmp(o->db + l - 3, ".db") == 0 &&
      db_file_stat(o->instance, o->db, &st) != 0) {
    app_err("no database '%s' in the instance; database names leave out "
            "the file's .db (vdi %s %.*s)",
            o->db, o->cmd, (int)(l - 3), o->db);
    return 1;
  }
  return 0;
}

/* Where the engine's informational lines go. */
static FILE *engine_out(const struct options *o, FILE *normal) {
  return o->quiet || o->json ? NULL : normal;
}

static void stripe_file_name(const char *db, int i, char *buf, size_t n) {
  snprintf(buf, n, "%s.stripe%d.vdibak", db, i);
}

static uint64_t set_bytes(const struct manifest *m) {
  uint64_t total = 0;
  for (int k = 0; k < m->nstripes; k++)
    total += m->stripes[k].bytes;
  return total;
}

/* ------------------------------------------------------------ backup */

struct backup_ctx {
  const struct options *o;
  struct repo repo;
  char id[64];
  char dest[4600]; /* the new set's directory */
  int to_stdout;
  int have_src;
  struct stat dbst;
  struct transfer *t;
  struct stripe *st;
  int nopen;
  struct manifest *m;
  double wall0, mono0;
};

/* The repository and the new set in it.  EXIT_OK or a status. */
static int backup_target(struct backup_ctx *b) {
  const struct options *o = b->o;
  int rc = repo_open(&b->repo, o->to, 1);
  if (rc != 0) {
    if (rc != -ECANCELED) app_err("%s: %s", o->to, strerror(-rc));
    return EXIT_FAIL;
  }
  /* REPO/<db>, one database's folder, takes that database's sets only:
   * another's would be REPO/<db>/<other>, where nothing looks for it. */
  if (b->repo.db_folder[0] && strcmp(b->repo.db_folder, o->db) != 0) {
    app_err("%s holds the backup sets of database '%s' (its folder in a "
            "repository): back up '%s' to the repository itself",
            o->to, b->repo.db_folder, o->db);
    return EXIT_FAIL;
  }
  /* A differential or log backup continues a full backup: one must be
   * there to restore them from.  Its manifest says so; the engine finds
   * the base itself, so no set's stream header is read here. */
  if (o->kind != CHAIN_FULL) {
    struct repo_set *v = NULL;
    int n = repo_load(&b->repo, o->db, REPO_MANIFESTS, &v), full = 0;
    for (int i = 0; i < n; i++)
      full |= v[i].kind == CHAIN_FULL && v[i].complete;
    repo_free(v, n > 0 ? n : 0);
    if (!full) {
      app_err("no full backup of '%s' in %s: a %s backup continues one "
              "(vdi backup %s --to %s)",
              o->db, o->to, o->kind == CHAIN_LOG ? "log" : "differential",
              o->db, o->to);
      return EXIT_FAIL;
    }
  }
  rc = repo_create(&b->repo, o->db, o->kind, b->id, sizeof b->id, b->dest,
                   sizeof b->dest);
  if (rc != 0) {
    b->dest[0] = 0; /* no set was made: none to remove or speak of */
    if (rc != -ECANCELED)
      app_err("cannot create a backup set in %s: %s", o->to, strerror(-rc));
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

static int backup_open_stripes(struct backup_ctx *b) {
  const char *tag = b->t->set_name + 4; /* the random hex */
  for (int i = 0; i < b->o->stripes; i++) {
    struct stripe *s = &b->st[i];
    s->index = i;
    if (b->to_stdout) {
      stripe_use_fd(s, 1);
    } else {
      char name[256];
      stripe_file_name(b->o->db, i, name, sizeof name);
      b->nopen++; /* closed (an S3 upload aborted) even if half made */
      if (b->repo.ops->stripe_create(&b->repo, b->dest, name, tag,
                                     b->have_src ? &b->dbst : NULL, s) != 0)
        return -1;
      continue;
    }
    b->nopen++;
  }
  return 0;
}

/* ", BUFFERCOUNT = n, MAXTRANSFERSIZE = m" as asked (--buffer-count,
 * --max-transfer-size), or "": the engine's defaults. */
static void buffer_clauses(const struct options *o, char *out, size_t n) {
  int k = 0;
  out[0] = 0;
  if (o->buffer_count)
    k = snprintf(out, n, ", BUFFERCOUNT = %d", o->buffer_count);
  if (o->max_transfer)
    snprintf(out + k, n - (size_t)k, ", MAXTRANSFERSIZE = %d", o->max_transfer);
}

static void backup_statement(struct backup_ctx *b) {
  const struct options *o = b->o;
  char clause[4096];
  transfer_device_clause(b->t, clause, sizeof clause);
  char tuning[96];
  buffer_clauses(o, tuning, sizeof tuning);
  app_path(b->t->statement, sizeof b->t->statement,
           "BACKUP %s [%s] TO %s WITH %sCHECKSUM, %s%s",
           o->kind == CHAIN_LOG ? "LOG" : "DATABASE", o->db, clause,
           o->kind == CHAIN_DIFF ? "DIFFERENTIAL, " : "",
           o->compress == 3   ? "COMPRESSION (ALGORITHM = ZSTD, LEVEL = HIGH)"
           : o->compress == 2 ? "COMPRESSION (ALGORITHM = ZSTD, LEVEL = MEDIUM)"
           : o->compress      ? "COMPRESSION"
                              : "NO_COMPRESSION",
           tuning);
}

/* The stripes under their names, then the manifest, last.  0 or -1. */
static int backup_record(struct backup_ctx *b, uint64_t dbsize) {
  const struct options *o = b->o;
  struct manifest *m = b->m;
  for (int i = 0; i < o->stripes; i++) {
    int e = stripe_commit(&b->st[i]);
    if (e != 0) {
      app_err("cannot rename stripe %d into place: %s", i, strerror(-e));
      return -1;
    }
  }
  snprintf(m->database, sizeof m->database, "%s", o->db);
  snprintf(m->set_name, sizeof m->set_name, "%s", b->t->set_name);
  snprintf(m->compression, sizeof m->compression, "%s",
           o->compress ? "zstd" : "none");
  snprintf(m->tool, sizeof m->tool, "%s %s", APP_NAME, APP_VERSION);
  app_iso_time(b->wall0, m->started, sizeof m->started);
  app_iso_time(app_wall_s(), m->finished, sizeof m->finished);
  m->seconds = app_mono_s() - b->mono0;
  m->db_bytes = dbsize;
  if (stripe_sealed_with(&b->st[0], m->encryption, sizeof m->encryption,
                         m->key_id) != 0)
    m->encryption[0] = m->key_id[0] = 0;
  else if (stripe_recipient[0]) {
    snprintf(m->recipient, sizeof m->recipient, "%s", stripe_recipient);
    snprintf(m->wrapped_key, sizeof m->wrapped_key, "%s", stripe_wrapped_key);
  }
  m->nstripes = o->stripes;
  for (int i = 0; i < o->stripes; i++) {
    snprintf(m->stripes[i].file, sizeof m->stripes[i].file, "%s",
             b->st[i].name);
    m->stripes[i].bytes = b->st[i].bytes;
    m->stripes[i].crc32c = b->st[i].crc;
  }
  int rc = b->repo.ops->put_manifest(&b->repo, b->dest, m,
                                     b->have_src ? &b->dbst : NULL);
  if (rc == -ELOOP) {
    app_err("%s: the manifest's name is a symbolic link; vdi does not write "
            "a manifest through one (remove it)",
            b->dest);
    return -1;
  }
  if (rc != 0) {
    if (rc != -ECANCELED)
      app_err("cannot write the manifest in %s: %s", b->dest, strerror(-rc));
    return -1;
  }
  return 0;
}

static void backup_json(const struct backup_ctx *b, FILE *f,
                        const struct progress *p) {
  const struct options *o = b->o;
  app_json_done = 1;
  fprintf(f, "{\"command\": \"backup\", \"status\": \"ok\", \"database\": ");
  json_put_str(f, o->db);
  fprintf(f, ", \"type\": \"%s\"", repo_kind_name(o->kind));
  if (!b->to_stdout) {
    fprintf(f, ", \"set\": ");
    json_put_str(f, b->id);
    fprintf(f, ", \"repository\": ");
    json_put_str(f, b->repo.root);
    fprintf(f, ", \"path\": ");
    json_put_str(f, b->dest);
  }
  fprintf(f,
          ", \"stripes\": %d, \"compression\": \"%s\", \"bytes\": %llu, "
          "\"seconds\": %.3f}\n",
          o->stripes, o->compress ? "zstd" : "none",
          (unsigned long long)p->done, app_mono_s() - b->mono0);
  fflush(f);
}

int op_backup(const struct options *o) {
  struct backup_ctx *b = calloc(1, sizeof *b);
  if (!b) abort();
  b->o = o;
  b->to_stdout = strcmp(o->to, "-") == 0;
  int status = EXIT_FAIL;
  char vdisql[4096];
  if (b->to_stdout && isatty(1)) {
    app_err("refusing to write a backup to a terminal (redirect stdout)");
    free(b);
    return EXIT_USAGE;
  }
  if (hint_db_suffix(o)) {
    free(b);
    return EXIT_NOTFOUND;
  }
  if (engine_find(o->vdisql, vdisql, sizeof vdisql) != 0) {
    free(b);
    return EXIT_FAIL;
  }
  announce(o, o->db);
  if (!b->to_stdout && (status = backup_target(b)) != EXIT_OK) {
    repo_close(&b->repo);
    free(b);
    return status;
  }
  status = EXIT_FAIL;
  b->t = calloc(1, sizeof *b->t);
  b->st = calloc((size_t)o->stripes, sizeof *b->st);
  b->m = calloc(1, sizeof *b->m);
  if (!b->t || !b->st || !b->m) abort();
  struct transfer *t = b->t;
  transfer_names(t, o->stripes);
  t->mode = XFER_BACKUP;
  t->stripes = b->st;
  t->vdisql = vdisql;
  t->instance = o->instance;
  t->relay_to = engine_out(o, b->to_stdout ? stderr : stdout);
  b->have_src = db_file_stat(o->instance, o->db, &b->dbst) == 0;
  if (backup_open_stripes(b) != 0) goto out;
  backup_statement(b);

  uint64_t dbsize = b->have_src ? (uint64_t)b->dbst.st_size : 0;
  struct progress prog;
  /* With compression the stream is smaller than the file: no percent. */
  progress_start(&prog, "backup",
                 o->compress || o->kind != CHAIN_FULL ? 0 : dbsize, o->quiet);
  t->progress = &prog;
  b->wall0 = app_wall_s();
  b->mono0 = app_mono_s();
  int rc = transfer_run(t);
  progress_stop(&prog);
  if (rc != 0) {
    status = transfer_exit_status(t);
    goto out;
  }
  if (!b->to_stdout && backup_record(b, dbsize) != 0) goto out;
  progress_summary(&prog, "backup complete", o->stripes);
  if (!b->to_stdout) app_note("backup set %s in %s", b->id, b->dest);
  if (o->json) backup_json(b, b->to_stdout ? stderr : stdout, &prog);
  status = EXIT_OK;
out:
  /* What the failure leaves is cleaned up in a bounded time (a store
   * that stalled may not answer the cleanup either). */
  if (status != EXIT_OK && !b->to_stdout && b->repo.ops &&
      b->repo.ops->cleaning)
    b->repo.ops->cleaning(&b->repo);
  for (int i = 0; i < b->nopen; i++)
    stripe_close(&b->st[i]);
  /* A set without its manifest is not a backup: it goes, and the last
   * line says whether it went. */
  if (status != EXIT_OK && b->dest[0] && repo_discard(&b->repo, b->dest) == 0)
    app_err("backup of '%s' failed: the partial set %s was removed; no "
            "backup was recorded",
            o->db, b->id);
  else if (status != EXIT_OK && b->dest[0])
    app_err("backup of '%s' failed: the partial set %s could not be removed: "
            "it is left in %s without a manifest (not a backup); no backup "
            "was recorded",
            o->db, b->id, b->dest);
  else if (status != EXIT_OK && b->t && b->t->engine_started)
    app_err("backup of '%s' failed; no backup was recorded", o->db);
  if (!b->to_stdout) repo_close(&b->repo);
  free(t);
  free(b->st);
  free(b->m);
  free(b);
  return status;
}

/* ------------------------------------------------------------ restore */

/* The key that opens complete set s becomes stripe_key: the key file's,
 * or the set's own key opened with it (a set sealed to its public key;
 * keys_of_set decides, once: repo_set_key keeps it in the set).  The key
 * a set needs is named before any of its stripes is read.  EXIT_OK or
 * EXIT_FAIL (told). */
static int use_set_key(struct repo_set *s) {
  const struct manifest *m = s->m;
  const char *db = s->db, *dir = s->dir;
  const struct seal_key *k;
  int rc = repo_set_key(s, &k);
  stripe_key = k;
  if (rc == 0) return EXIT_OK;
  char have[65] = "";
  if (rc == -ENOKEY && m->recipient[0])
    app_err("the backup of '%s' in %s is encrypted (%s) to public key %s: "
            "give its key file with --key-file; nothing was used",
            db, dir, m->encryption, m->recipient);
  else if (rc == -ENOKEY)
    app_err("the backup of '%s' in %s is encrypted (%s, key %s): give its "
            "key with --key-file; nothing was used",
            db, dir, m->encryption, m->key_id);
  else if (rc == -EKEYREJECTED && m->recipient[0]) {
    seal_public_hex(app_key_file, have);
    app_err("wrong key: the backup of '%s' in %s was encrypted to public "
            "key %s, the key file's public key is %s; nothing was used",
            db, dir, m->recipient, have);
  } else if (rc == -EKEYREJECTED) {
    seal_key_id_hex(app_key_file->id, have);
    app_err("wrong key: the backup of '%s' in %s needs key %s, the key file "
            "holds key %s; nothing was used",
            db, dir, m->key_id, have);
  } else {
    app_err("the backup of '%s' in %s: its sealed key does not open: the "
            "manifest is damaged",
            db, dir);
  }
  return EXIT_FAIL;
}

/* Check a complete set (its manifest read and matched by repo_load) and
 * every stripe it names, as far as @p level (CHECK_*) says, with the key
 * it needs.  EXIT_OK, EXIT_FAIL (the key) or EXIT_DAMAGED (reported).
 *
 * Stripe 0's header is read here again although repo_load read it (s->h,
 * one more ranged GET on S3), because this read checks more: repo_load's
 * is quiet, made for planning, and on a directory only decodes the
 * header; this one holds every stripe's header, stripe 0's included, to
 * the manifest (database, stripe number and count, one set id; on a
 * directory compression too) and names what is wrong, and on S3 it reads
 * a stripe no longer than the header range whole and checks its CRC-32C
 * before the engine starts.
 * The key is not the reason: repo_set_key keeps it from repo_load on. */
static int load_checked(struct repo *r, struct repo_set *s, int level) {
  const char *db = s->db, *dir = s->dir;
  const struct manifest *m = s->m;
  int st = use_set_key(s);
  if (st != EXIT_OK) return st;
  int mc = repo_check(r, dir, m, level);
  if (mc == -2) {
    app_err("the backup of '%s' in %s is encrypted: it needs its own key "
            "(--key-file); nothing was used",
            db, dir);
    return EXIT_FAIL;
  }
  if (mc != 0) {
    app_err("the backup of '%s' in %s is damaged; refusing to use it", db, dir);
    return EXIT_DAMAGED;
  }
  return EXIT_OK;
}

/* Feed a backup (a set at dir in r, or stdin) to a RESTORE statement; the
 * bytes fed are added to *bytes. */
static int run_restore(const struct options *o, struct repo *r, const char *dir,
                       const struct manifest *m, const char *head,
                       const char *tail, const char *verb, uint64_t *bytes) {
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
  t->relay_to = engine_out(o, stdout);
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
      nopen++;
      if (r->ops->stripe_open(r, dir, m->stripes[i].file, &st[i]) != 0)
        goto out;
      continue;
    }
    nopen++;
  }
  char clause[4096];
  transfer_device_clause(t, clause, sizeof clause);
  char tuning[96];
  buffer_clauses(o, tuning, sizeof tuning);
  app_path(t->statement, sizeof t->statement, "%s %s%s%s%s", head, clause, tail,
           *tuning && !*tail ? " WITH " : "",
           *tuning && !*tail ? tuning + 2 : tuning);
  struct progress prog;
  progress_start(&prog, verb, total, o->quiet);
  t->progress = &prog;
  status = transfer_run_reading(t, &prog, verb, n);
  if (bytes) *bytes += prog.done;
  /* The engine stopped on its own (a damaged block, say) before the end
   * of a stripe, where the fed bytes are checked: read the set in full to
   * tell a damaged backup from any other failure.  A restore whose
   * engine stopped before reading a byte (no instance, say) does not: no
   * damage can have caused that, and the set may be large; verify reads
   * it all the same, since that is what it was asked to do. */
  int read_some = prog.done > 0 || strcmp(verb, "verify") == 0;
  if (status == EXIT_ENGINE && !from_stdin && read_some &&
      repo_check(r, dir, m, CHECK_FULL) == -1) {
    app_err("the backup in %s is damaged", dir);
    status = EXIT_DAMAGED;
  }
out:
  for (int i = 0; i < nopen; i++)
    stripe_close(&st[i]);
  free(t);
  free(st);
  return status;
}

/* The sets of db in r (repo_load), or -1 with the reason told (a
 * cancelled load has said its own). */
static int load_told(struct repo *r, const char *from, const char *db,
                     struct repo_set **v) {
  int ns = repo_load(r, db, REPO_HEADERS, v);
  if (ns < 0 && ns != -ECANCELED) app_err("%s: %s", from, strerror(-ns));
  return ns < 0 ? -1 : ns;
}

/* The repository's sets of db (r opened here unless it is open): count
 * (> 0), or -status with the reason told.  *v is freed with repo_free, r
 * closed by the caller. */
static int load_sets(const char *from, const char *db, struct repo *r,
                     struct repo_set **v) {
  *v = NULL;
  int rc = r->ops ? 0 : repo_open(r, from, 0);
  if (rc != 0) {
    if (rc != -ECANCELED) app_err("%s: %s", from, strerror(-rc));
    return rc == -ENOENT ? -EXIT_NOTFOUND : -EXIT_FAIL;
  }
  int n = load_told(r, from, db, v);
  if (n < 0) return -EXIT_FAIL;
  int complete = 0, damaged = -1;
  for (int i = 0; i < n; i++) {
    if ((*v)[i].complete) complete++;
    if (!(*v)[i].complete && !strstr((*v)[i].why, "no manifest")) damaged = i;
  }
  if (complete) return n;
  if (damaged >= 0) {
    app_err("no complete backup of '%s' in %s: %s/%s%s: %s", db, from,
            (*v)[damaged].dir, db, MANIFEST_SUFFIX, (*v)[damaged].why);
    repo_free(*v, n);
    *v = NULL;
    return -EXIT_DAMAGED;
  }
  app_err("no complete backup of '%s' in %s", db, from);
  repo_free(*v, n);
  *v = NULL;
  return -EXIT_NOTFOUND;
}

static void restore_json(const struct options *o, const char *target,
                         const struct repo_set *v, const int *steps, int nsteps,
                         uint64_t bytes, double t0) {
  FILE *f = stdout;
  app_json_done = 1;
  fprintf(f, "{\"command\": \"restore\", \"status\": \"ok\", \"database\": ");
  json_put_str(f, o->db);
  fprintf(f, ", \"as\": ");
  json_put_str(f, target);
  fprintf(f, ", \"sets\": [");
  for (int k = 0; v && k < nsteps; k++) {
    fprintf(f, "%s{\"id\": ", k ? ", " : "");
    json_put_str(f, v[steps[k]].id);
    fprintf(f, ", \"type\": \"%s\"}", repo_kind_name(v[steps[k]].kind));
  }
  fprintf(f, "], \"bytes\": %llu, \"seconds\": %.3f}\n",
          (unsigned long long)bytes, app_mono_s() - t0);
  fflush(f);
}

/* Restore the planned sets in order; NORECOVERY until the last. */
static int restore_steps(const struct options *o, struct repo *r,
                         const char *target, struct repo_set *v,
                         const int *steps, int nsteps, uint64_t *bytes) {
  int64_t T = o->to_time ? o->to_time_ms : 0;
  int chain = nsteps > 1 || o->latest || T;
  int ndiff = 0;
  for (int k = 0; k < nsteps; k++)
    ndiff += v[steps[k]].kind == CHAIN_DIFF;
  if (chain)
    app_note("restoring '%s' from %d backup%s (full%s, %d log)", target, nsteps,
             nsteps == 1 ? "" : "s", ndiff ? ", differential" : "",
             nsteps - 1 - ndiff);
  for (int k = 0; k < nsteps; k++) {
    struct repo_set *s = &v[steps[k]];
    int last = k == nsteps - 1;
    char head[256], tail[300];
    app_note("set %s (%s) from %s", s->id, repo_kind_name(s->kind), s->dir);
    app_path(head, sizeof head, "RESTORE %s [%s] FROM",
             s->kind == CHAIN_LOG ? "LOG" : "DATABASE", target);
    if (!chain)
      snprintf(tail, sizeof tail, "%s", o->replace ? " WITH REPLACE" : "");
    else
      snprintf(tail, sizeof tail, " WITH %s%s%s%s%s",
               last ? "RECOVERY" : "NORECOVERY",
               k == 0 && o->replace ? ", REPLACE" : "",
               T && s->kind == CHAIN_LOG ? ", STOPAT = '" : "",
               T && s->kind == CHAIN_LOG ? o->to_time : "",
               T && s->kind == CHAIN_LOG ? "'" : "");
    int status = use_set_key(s);
    if (status == EXIT_OK)
      status = run_restore(o, r, s->dir, s->m, head, tail, "restore", bytes);
    if (status != EXIT_OK) {
      if (chain && k > 0)
        app_err("restore of '%s' stopped at set %s; '%s' stays RESTORING "
                "until a restore of it completes",
                target, s->id, target);
      else
        app_err("restore of '%s' failed", target);
      return status;
    }
  }
  return EXIT_OK;
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
  double t0 = app_mono_s();
  uint64_t bytes = 0;
  if (strcmp(o->from, "-") == 0) {
    if (isatty(0)) {
      app_err("refusing to read a backup from a terminal (redirect stdin)");
      return EXIT_USAGE;
    }
    announce(o, target);
    char head[256];
    app_path(head, sizeof head, "RESTORE DATABASE [%s] FROM", target);
    int status =
        run_restore(o, NULL, NULL, NULL, head,
                    o->replace ? " WITH REPLACE" : "", "restore", &bytes);
    if (status != EXIT_OK) app_err("restore of '%s' failed", target);
    if (status == EXIT_OK && o->json)
      restore_json(o, target, NULL, NULL, 0, bytes, t0);
    return status;
  }
  struct repo r;
  r.ops = NULL;
  struct repo_set *v;
  int n = load_sets(o->from, o->db, &r, &v);
  size_t l = strlen(o->db);
  if (n == -EXIT_NOTFOUND && l > 3 && strcmp(o->db + l - 3, ".db") == 0)
    app_err("database names leave out the file's .db (vdi restore %.*s)",
            (int)(l - 3), o->db);
  if (n < 0) {
    repo_close(&r);
    return -n;
  }
  int *steps = calloc((size_t)n, sizeof *steps);
  if (!steps) abort();
  int status = EXIT_FAIL;
  int nsteps = chain_plan(v, n, o, steps);
  if (nsteps < 0) {
    status = -nsteps;
    goto out;
  }
  /* Every set of the plan after the first is read and checked in full
   * before the engine sees a byte: one that is damaged must not stop a
   * chain half way, with the database replaced and RESTORING.  The first
   * set's headers (and key) are checked here and every byte of it as it is
   * fed (transfer.c); the engine replaces nothing until its whole stream
   * is read, so reading it twice would buy nothing. */
  for (int k = 0; k < nsteps; k++) {
    status =
        load_checked(&r, &v[steps[k]], k == 0 ? CHECK_HEADERS : CHECK_FULL);
    if (status != EXIT_OK) {
      if (nsteps > 1 && status == EXIT_DAMAGED)
        app_err("set %s is damaged; refusing to plan a restore across it",
                v[steps[k]].id);
      goto out;
    }
  }
  announce(o, target);
  status = restore_steps(o, &r, target, v, steps, nsteps, &bytes);
  if (status == EXIT_OK && o->json)
    restore_json(o, target, v, steps, nsteps, bytes, t0);
out:
  free(steps);
  repo_free(v, n);
  repo_close(&r);
  return status;
}

/* ------------------------------------------------------------ verify */

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* The databases to look at: DB, or every one in the repository.  Count,
 * or -status (told). */
static int names_of(const struct options *o, struct repo *r, char ***names) {
  int rc = repo_open(r, o->from, 0);
  if (rc != 0) {
    if (rc != -ECANCELED) app_err("%s: %s", o->from, strerror(-rc));
    repo_close(r);
    return rc == -ENOENT ? -EXIT_NOTFOUND : -EXIT_FAIL;
  }
  if (o->db) {
    *names = malloc(sizeof **names);
    if (!*names) abort();
    (*names)[0] = strdup(o->db);
    return 1;
  }
  int n = repo_databases(r, names);
  if (n < 0) {
    if (n != -ECANCELED) app_err("%s: %s", o->from, strerror(-n));
    repo_close(r);
    return -EXIT_FAIL;
  }
  if (n == 0) {
    app_err("no complete backup in %s", o->from);
    free(*names);
    repo_close(r);
    return -EXIT_NOTFOUND;
  }
  return n;
}

struct verdict {
  char db[128], id[64];
  int status;
  char encryption[32], key[65]; /* the key id, or the public key */
  int public_key;
};

static int verify_one(const struct options *o, struct repo *r,
                      struct repo_set *s) {
  int st = load_checked(r, s, CHECK_HEADERS);
  if (st == EXIT_OK)
    st = run_restore(o, r, s->dir, s->m, "RESTORE VERIFYONLY FROM", "",
                     "verify", NULL);
  if (st == EXIT_OK) {
    if (!o->json)
      printf("%s: backup of '%s' is valid (set %s, %d stripe%s%s%s%s%s)\n",
             APP_NAME, s->db, s->id, s->m->nstripes,
             s->m->nstripes == 1 ? "" : "s",
             s->m->encryption[0] ? ", encrypted " : "", s->m->encryption,
             !s->m->encryption[0] ? ""
             : s->m->recipient[0] ? " to public key "
                                  : " with key ",
             s->m->recipient[0] ? s->m->recipient : s->m->key_id);
  } else if (st < 128) {
    app_err("backup set %s of '%s' in %s did NOT verify", s->id, s->db,
            o->from);
  }
  fflush(stdout);
  return st;
}

int op_verify(const struct options *o) {
  if (strcmp(o->from, "-") == 0) {
    if (isatty(0)) {
      app_err("refusing to read a backup from a terminal (redirect stdin)");
      return EXIT_USAGE;
    }
    return run_restore(o, NULL, NULL, NULL, "RESTORE VERIFYONLY FROM", "",
                       "verify", NULL);
  }
  struct repo r;
  char **names;
  int n = names_of(o, &r, &names);
  if (n < 0) return -n;
  int status = EXIT_OK, nv = 0, cap = 0;
  struct verdict *res = NULL;
  for (int i = 0; i < n && status < 128; i++) {
    struct repo_set *v;
    int ns = load_sets(o->from, names[i], &r, &v);
    if (ns < 0) {
      if (status == EXIT_OK) status = -ns;
      continue;
    }
    int found = 0;
    for (int k = 0; k < ns; k++) {
      if (o->set_id && strcmp(v[k].id, o->set_id) != 0) continue;
      found = 1;
      int st;
      if (!v[k].complete && strstr(v[k].why, "no manifest")) {
        app_warn("set %s of '%s' is incomplete (no manifest): skipped", v[k].id,
                 names[i]);
        continue;
      }
      if (!v[k].complete) {
        app_err("set %s of '%s': %s", v[k].id, names[i], v[k].why);
        st = EXIT_DAMAGED;
      } else {
        st = verify_one(o, &r, &v[k]);
      }
      if (nv == cap) {
        cap = cap ? 2 * cap : 16;
        res = realloc(res, (size_t)cap * sizeof *res);
        if (!res) abort();
      }
      snprintf(res[nv].db, sizeof res[nv].db, "%s", names[i]);
      snprintf(res[nv].id, sizeof res[nv].id, "%s", v[k].id);
      const struct manifest *m = v[k].complete ? v[k].m : NULL;
      snprintf(res[nv].encryption, sizeof res[nv].encryption, "%s",
               m ? m->encryption : "");
      snprintf(res[nv].key, sizeof res[nv].key, "%s",
               !m                ? ""
               : m->recipient[0] ? m->recipient
                                 : m->key_id);
      res[nv].public_key = m && m->recipient[0];
      res[nv++].status = st;
      if (st != EXIT_OK && (status == EXIT_OK || st > 128)) status = st;
      if (st > 128) break; /* interrupted */
    }
    if (o->set_id && !found) {
      app_err("no backup set '%s' of '%s' in %s", o->set_id, names[i], o->from);
      if (status == EXIT_OK) status = EXIT_NOTFOUND;
    }
    repo_free(v, ns);
  }
  if (o->json) {
    app_json_done = 1;
    printf("{\"command\": \"verify\", \"status\": \"%s\", \"exit\": %d, "
           "\"sets\": [",
           status == EXIT_OK ? "ok" : "failed", status);
    for (int k = 0; k < nv; k++) {
      printf("%s{\"database\": ", k ? ", " : "");
      json_put_str(stdout, res[k].db);
      printf(", \"set\": ");
      json_put_str(stdout, res[k].id);
      printf(", \"valid\": %s, \"exit\": %d, \"encryption\": ",
             res[k].status == EXIT_OK ? "true" : "false", res[k].status);
      json_put_str(stdout, res[k].encryption[0] ? res[k].encryption : "none");
      if (res[k].encryption[0]) {
        printf(", \"%s\": ", res[k].public_key ? "recipient" : "key_id");
        json_put_str(stdout, res[k].key);
      }
      printf("}");
    }
    printf("]}\n");
  }
  free(res);
  free_names(names, n);
  repo_close(&r);
  return status;
}

/* ------------------------------------------------------------ list */

static void list_json_set(const struct repo_set *v, int n, int i, int first) {
  const struct repo_set *s = &v[i];
  int c = repo_chain_of(v, n, i);
  printf("%s\n  {\"database\": ", first ? "" : ",");
  json_put_str(stdout, s->db);
  printf(", \"id\": ");
  json_put_str(stdout, s->id);
  printf(", \"type\": \"%s\", \"complete\": %s, \"chain\": ",
         repo_kind_name(s->kind), s->complete ? "true" : "false");
  if (c >= 0 && s->complete)
    json_put_str(stdout, v[c].id);
  else
    printf("null");
  printf(", \"path\": ");
  json_put_str(stdout, s->dir);
  if (s->complete) {
    printf(", \"started\": ");
    json_put_str(stdout, s->m->started);
    printf(", \"finished\": ");
    json_put_str(stdout, s->m->finished);
    printf(", \"bytes\": %llu, \"stripes\": %d, \"compression\": ",
           (unsigned long long)set_bytes(s->m), s->m->nstripes);
    json_put_str(stdout, s->m->compression);
    printf(", \"database_bytes\": %llu", (unsigned long long)s->m->db_bytes);
    printf(", \"encryption\": ");
    json_put_str(stdout, s->m->encryption[0] ? s->m->encryption : "none");
    if (s->m->encryption[0]) {
      printf(", \"key_id\": ");
      json_put_str(stdout, s->m->key_id);
    }
    if (s->m->recipient[0]) {
      printf(", \"recipient\": ");
      json_put_str(stdout, s->m->recipient);
    }
  } else {
    printf(", \"problem\": ");
    json_put_str(stdout, s->why);
  }
  printf("}");
}

static void list_text_set(const struct repo_set *v, int i, int seq) {
  const struct repo_set *s = &v[i];
  const struct manifest *m = s->m;
  if (!s->complete) {
    printf("%s  %s  %s  incomplete (%s)\n", s->db, s->id,
           repo_kind_name(s->kind), s->why);
    return;
  }
  if (s->kind == CHAIN_FULL || seq == 0) {
    printf("%s  %s  %s  finished %s  %d stripe%s  %llu bytes  compression %s  "
           "database %llu bytes  (%s)\n",
           m->database, s->id, repo_kind_name(s->kind), m->finished,
           m->nstripes, m->nstripes == 1 ? "" : "s",
           (unsigned long long)set_bytes(m), m->compression,
           (unsigned long long)m->db_bytes, m->tool);
    if (m->recipient[0])
      printf("  encrypted %s to public key %s\n", m->encryption, m->recipient);
    else if (m->encryption[0])
      printf("  encrypted %s, key %s\n", m->encryption, m->key_id);
    if (s->kind != CHAIN_FULL)
      printf("  (continues no full backup in this repository)\n");
    for (int k = 0; k < m->nstripes; k++)
      printf("  stripe %d  %s  %llu bytes  crc32c %08x\n", k,
             m->stripes[k].file, (unsigned long long)m->stripes[k].bytes,
             (unsigned)m->stripes[k].crc32c);
  } else {
    printf("  + %s %06d  %s  finished %s  %d stripe%s  %llu bytes  "
           "compression %s%s%s%s%s\n",
           s->kind == CHAIN_LOG ? "log" : "differential", seq, s->id,
           m->finished, m->nstripes, m->nstripes == 1 ? "" : "s",
           (unsigned long long)set_bytes(m), m->compression,
           m->encryption[0] ? "  encrypted " : "", m->encryption,
           !m->encryption[0] ? ""
           : m->recipient[0] ? " to public key "
                             : ", key ",
           m->recipient[0] ? m->recipient : m->key_id);
  }
}

int op_list(const struct options *o) {
  struct repo r;
  char **names;
  int n = names_of(o, &r, &names);
  if (n < 0) return -n;
  int status = EXIT_OK, first = 1;
  if (o->json) {
    app_json_done = 1;
    printf("{\"command\": \"list\", \"repository\": ");
    json_put_str(stdout, r.root);
    printf(", \"sets\": [");
  }
  for (int i = 0; i < n; i++) {
    struct repo_set *v = NULL;
    int ns = load_told(&r, o->from, names[i], &v);
    if (ns < 0) {
      status = EXIT_FAIL;
      continue;
    }
    /* Each chain: its full set, then what continues it, numbered.  The
     * full set of each set's chain is found once (a repository of years
     * of daily logs holds thousands of sets). */
    size_t cap = (size_t)(ns > 0 ? ns : 1);
    int *seq = calloc(cap, sizeof *seq), *chain = calloc(cap, sizeof *chain);
    if (!seq || !chain) abort();
    for (int k = 0; k < ns; k++)
      chain[k] = v[k].complete ? repo_chain_of(v, ns, k) : -1;
    for (int k = 0; k < ns; k++) {
      if (v[k].kind == CHAIN_FULL || chain[k] < 0) continue;
      seq[k] = v[k].legacy ? v[k].legacy_seq : ++seq[chain[k]];
    }
    for (int k = 0; k < ns; k++)
      if (v[k].kind == CHAIN_FULL) seq[k] = 0;
    for (int k = 0; k < ns; k++) {
      /* Fulls (and sets of no chain) in order, each followed by its own. */
      if (v[k].kind != CHAIN_FULL && chain[k] >= 0) continue;
      for (int j = k; j < ns; j++) {
        if (j != k && (v[j].kind == CHAIN_FULL || chain[j] != k)) continue;
        if (o->json) {
          list_json_set(v, ns, j, first);
          first = 0;
        } else {
          list_text_set(v, j, j == k ? 0 : seq[j]);
        }
        if (!v[j].complete) {
          if (!strstr(v[j].why, "no manifest")) status = EXIT_DAMAGED;
          continue;
        }
        fflush(stdout);
        /* Sizes only: list is quick; verify reads every byte. */
        if (repo_check(&r, v[j].dir, v[j].m, CHECK_SIZES) != 0)
          status = EXIT_DAMAGED;
      }
    }
    free(seq);
    free(chain);
    repo_free(v, ns);
  }
  if (o->json) printf("\n]}\n");
  fflush(stdout);
  free_names(names, n);
  repo_close(&r);
  return status;
}

/* ------------------------------------------------------------ expire */

int op_expire(const struct options *o) {
  struct repo r;
  char **names;
  int n = names_of(o, &r, &names);
  if (n < 0) return -n;
  int status = EXIT_OK, total = 0, gone = 0, first = 1;
  if (o->json) {
    app_json_done = 1;
    printf("{\"command\": \"expire\", \"dry_run\": %s, \"sets\": [",
           o->delete_sets ? "false" : "true");
  }
  for (int i = 0; i < n; i++) {
    struct repo_set *v = NULL;
    int ns = load_told(&r, o->from, names[i], &v);
    if (ns < 0) {
      status = EXIT_FAIL;
      continue;
    }
    int *keep = calloc((size_t)(ns > 0 ? ns : 1), sizeof *keep);
    if (!keep) abort();
    chain_keep(v, ns, o->keep_last, o->keep_daily, o->keep_days, time(NULL),
               keep);
    /* Kept for want of a key, said once (not per set): no error, since a
     * repository may hold sets of several keys. */
    int unread = 0;
    for (int k = 0; k < ns; k++)
      unread += keep[k] == KEEP_UNREAD && v[k].key_missing;
    if (unread)
      app_note("%d encrypted differential or log set%s of '%s' kept: the "
               "chain%s cannot be read without %s key (--key-file F)",
               unread, unread == 1 ? "" : "s", names[i],
               unread == 1 ? " it belongs to" : "s they belong to",
               unread == 1 ? "its" : "their");
    for (int k = 0; k < ns; k++) {
      const char *act = keep[k]          ? "keep"
                        : o->delete_sets ? "delete"
                                         : "would delete";
      int stays = keep[k];
      total++;
      if (!keep[k] && o->delete_sets) {
        int rc = repo_remove(&r, &v[k]);
        if (rc != 0) {
          app_err("cannot delete set %s of '%s': %s", v[k].id, names[i],
                  strerror(-rc));
          status = EXIT_FAIL;
          act = "kept (delete failed)";
          stays = 1;
        }
      }
      if (!stays) gone++;
      if (o->json) {
        printf("%s\n  {\"database\": ", first ? "" : ",");
        json_put_str(stdout, names[i]);
        printf(", \"id\": ");
        json_put_str(stdout, v[k].id);
        printf(", \"type\": \"%s\", \"action\": \"%s\"}",
               repo_kind_name(v[k].kind), act);
        first = 0;
      } else {
        printf("%-13s %s  %s  %s%s\n", act, names[i], v[k].id,
               repo_kind_name(v[k].kind),
               !v[k].complete ? "  (incomplete: left alone)"
               : v[k].legacy  ? "  (old layout: left alone)"
                              : "");
      }
    }
    free(keep);
    repo_free(v, ns);
  }
  if (o->json) {
    printf("\n]}\n");
  } else if (!o->delete_sets) {
    printf("%s: expire: %d of %d sets would be deleted (a dry run: add "
           "--delete to delete them)\n",
           APP_NAME, gone, total);
  } else {
    printf("%s: expire: %d of %d sets deleted\n", APP_NAME, gone, total);
  }
  fflush(stdout);
  free_names(names, n);
  repo_close(&r);
  return status;
}
