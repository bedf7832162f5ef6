/* SPDX-License-Identifier: Apache-2.0 */
/*
 * repo.c - a vdi target as a repository of backup sets with history.
 *
 * The repository layer is a small table of operations (struct repo_ops)
 * so that the S3 repository (s3target.c, the same layout under a key
 * prefix) sits beside the directory one; everything above it (ops.c,
 * chain.c) sees sets and the hooks only.
 *
 * The directory repository:
 *
 *   DIR/<db>/<ID>/                one backup set: its stripes and
 *                                 <db>.manifest.json, written last
 *   ID = YYYYMMDDTHHMMSS.mmmZ-full | -diff | -log   (UTC start time)
 *
 * and, still read (never written), the older one-folder layout:
 *
 *   DIR/<db>.manifest.json + stripes      set "legacy" (a full backup)
 *   DIR/<db>.chain/<seq>-diff|-log/       sets "legacy-<seq>-diff|log"
 *
 * A directory that is itself one set (DIR/<db>/<ID>) reads as the
 * one-folder layout too, with the set's own ID.  A set without a readable
 * manifest is listed as incomplete and never restored from.
 */
#include "app.h"

#include "seal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const kind_names[] = {"full", "diff", "log"};

const char *repo_kind_name(int kind) {
  return kind >= 0 && kind <= 2 ? kind_names[kind] : "?";
}

/* "YYYYMMDDTHHMMSS.mmmZ-kind"; the kind in *kind. */
int repo_is_set_id(const char *name, int *kind) {
  if (strlen(name) < 22) return 0;
  /* 8 digits, T, 6 digits, ., 3 digits, Z, - */
  for (int i = 0; i < 21; i++) {
    char c = name[i];
    int want_digit = !(i == 8 || i == 15 || i == 19 || i == 20);
    if (want_digit ? (c < '0' || c > '9')
                   : c != (i == 8    ? 'T'
                           : i == 15 ? '.'
                           : i == 19 ? 'Z'
                                     : '-'))
      return 0;
  }
  for (int k = 0; k < 3; k++)
    if (strcmp(name + 21, kind_names[k]) == 0) {
      *kind = k;
      return 1;
    }
  return 0;
}

void repo_id_of_time(double t, int kind, char *buf, size_t n) {
  time_t s = (time_t)t;
  struct tm tm;
  char day[32];
  gmtime_r(&s, &tm);
  strftime(day, sizeof day, "%Y%m%dT%H%M%S", &tm);
  int ms = (int)((t - (double)s) * 1000.0);
  if (ms > 999) ms = 999;
  snprintf(buf, n, "%s.%03dZ-%s", day, ms, repo_kind_name(kind));
}

/* The sort key of a manifest's "started" ("2026-12-06T22:15:00Z"), in the
 * shape of an ID, so old and new sets order together. */
static void key_of_iso(const char *iso, char *key, size_t n) {
  int Y, M, D, h, m, s;
  if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &Y, &M, &D, &h, &m, &s) == 6)
    snprintf(key, n, "%04d%02d%02dT%02d%02d%02d.000Z", Y, M, D, h, m, s);
  else
    snprintf(key, n, "%s", "");
}

/* ------------------------------------------------- the directory repo */

static int has_suffix(const char *s, const char *suf) {
  size_t l = strlen(s), sl = strlen(suf);
  return l > sl && strcmp(s + l - sl, suf) == 0;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void repo_add_name(char ***v, int *n, const char *name, size_t len) {
  for (int i = 0; i < *n; i++)
    if (strlen((*v)[i]) == len && strncmp((*v)[i], name, len) == 0) return;
  char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
  if (!nv) abort();
  *v = nv;
  nv[*n] = strndup(name, len);
  if (!nv[*n]) abort();
  (*n)++;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Does DIR/<name> hold at least one set directory? */
static int holds_sets(const char *root, const char *name) {
  char p[4400];
  if (app_path(p, sizeof p, "%s/%s", root, name) != 0) return 0;
  DIR *d = opendir(p);
  if (!d) return 0;
  struct dirent *e;
  int kind, found = 0;
  while (!found && (e = readdir(d)) != NULL)
    found = repo_is_set_id(e->d_name, &kind);
  closedir(d);
  return found;
}

static int dir_databases(struct repo *r, char ***out) {
  if (r->db_folder[0]) {
    char **v = NULL;
    int n = 0;
    repo_add_name(&v, &n, r->db_folder, strlen(r->db_folder));
    *out = v;
    return n;
  }
  DIR *d = opendir(r->root);
  if (!d) return -errno;
  char **v = NULL;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *nm = e->d_name;
    if (nm[0] == '.') continue;
    if (has_suffix(nm, MANIFEST_SUFFIX))
      repo_add_name(&v, &n, nm, strlen(nm) - strlen(MANIFEST_SUFFIX));
    else if (has_suffix(nm, ".chain") && app_valid_db_name(nm))
      repo_add_name(&v, &n, nm, strlen(nm) - strlen(".chain"));
    else if (app_valid_db_name(nm) && holds_sets(r->root, nm))
      repo_add_name(&v, &n, nm, strlen(nm));
  }
  closedir(d);
  *out = v;
  return n;
}

struct repo_set *repo_push_set(struct repo_set **v, int *n, int *cap) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    struct repo_set *nv = realloc(*v, (size_t)*cap * sizeof *nv);
    if (!nv) abort();
    *v = nv;
  }
  struct repo_set *s = &(*v)[(*n)++];
  memset(s, 0, sizeof *s);
  return s;
}

static int dir_sets(struct repo *r, const char *db, struct repo_set **out) {
  struct repo_set *v = NULL;
  int n = 0, cap = 0, kind;
  char p[4400];
  *out = NULL;
  /* The one-folder layout (or a set directory given as the target). */
  char mn[256];
  manifest_file_name(db, mn, sizeof mn);
  if (app_path(p, sizeof p, "%s/%s", r->root, mn) == 0 &&
      access(p, F_OK) == 0) {
    struct repo_set *s = repo_push_set(&v, &n, &cap);
    const char *base = strrchr(r->root, '/');
    base = base ? base + 1 : r->root;
    if (repo_is_set_id(base, &kind)) {
      snprintf(s->id, sizeof s->id, "%.63s", base);
      s->kind = kind;
    } else {
      snprintf(s->id, sizeof s->id, "legacy");
      s->kind = CHAIN_FULL;
      s->legacy = 1;
    }
    snprintf(s->dir, sizeof s->dir, "%s", r->root);
  }
  struct chain_entry *ce = NULL;
  int nc = chain_list(r->root, db, &ce);
  for (int i = 0; i < nc; i++) {
    struct repo_set *s = repo_push_set(&v, &n, &cap);
    snprintf(s->id, sizeof s->id, "legacy-%06d-%s", ce[i].seq,
             repo_kind_name(ce[i].kind));
    s->kind = ce[i].kind;
    s->legacy = 1;
    s->legacy_seq = ce[i].seq;
    snprintf(s->dir, sizeof s->dir, "%s", ce[i].dir);
  }
  free(ce);
  /* The repository layout (or, given one database's folder, its sets). */
  int in_root = strcmp(r->db_folder, db) == 0;
  if (in_root ? app_path(p, sizeof p, "%s", r->root) == 0
              : app_path(p, sizeof p, "%s/%s", r->root, db) == 0) {
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (!repo_is_set_id(e->d_name, &kind)) continue;
      struct repo_set *s = repo_push_set(&v, &n, &cap);
      snprintf(s->id, sizeof s->id, "%.63s", e->d_name);
      s->kind = kind;
      if (app_path(s->dir, sizeof s->dir, "%s/%s", p, e->d_name) != 0) n--;
    }
    if (d) closedir(d);
  }
  for (int i = 0; i < n; i++)
    snprintf(v[i].db, sizeof v[i].db, "%s", db);
  *out = v;
  return n;
}

/* 1 made, 0 there already, or -errno. */
static int mkdir_private(const char *dir) {
  if (mkdir(dir, 0700) == 0) return 1;
  if (errno == EEXIST && is_dir(dir)) return 0;
  return -errno;
}

/* A new folder's entry made durable: its parent fsync'd.  A backup said
 * to be done must not vanish with the folder in a crash, however durable
 * its own files are.  0 or -errno. */
static int fsync_parent(const char *path) {
  char parent[4400];
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (!slash) return app_fsync_dir(".");
  if (slash == parent)
    slash[1] = 0;
  else
    *slash = 0;
  return app_fsync_dir(parent);
}

static int dir_create(struct repo *r, const char *db, int kind, double when,
                      char *id, size_t idn, char *dir, size_t dirn) {
  char p[4400];
  int in_root = strcmp(r->db_folder, db) == 0; /* given REPO/<db> */
  if (in_root ? app_path(p, sizeof p, "%s", r->root) != 0
              : app_path(p, sizeof p, "%s/%s", r->root, db) != 0)
    return -ENAMETOOLONG;
  int rc = mkdir_private(p);
  if (rc == 1) rc = fsync_parent(p);
  if (rc != 0) return rc;
  /* Two sets started in the same millisecond: the later takes the next. */
  for (int tries = 0; tries < 1000; tries++) {
    repo_id_of_time(when + tries / 1000.0, kind, id, idn);
    if (app_path(dir, dirn, "%s/%s", p, id) != 0) return -ENAMETOOLONG;
    if (mkdir(dir, 0700) == 0) {
      app_fsync_dir(p);
      return 0;
    }
    if (errno != EEXIST) return -errno;
  }
  return -EEXIST;
}

/* Remove a set directory's files and the directory. */
static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char p[4600];
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (app_path(p, sizeof p, "%s/%s", dir, e->d_name) != 0) continue;
    if (e->d_type == DT_DIR)
      remove_tree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int dir_remove(struct repo *r, const struct repo_set *s) {
  (void)r;
  if (s->legacy) return -EPERM; /* the old layout is read, never changed */
  char mn[256], mp[4800];
  manifest_file_name(s->db, mn, sizeof mn);
  if (s->db[0] && app_path(mp, sizeof mp, "%s/%s", s->dir, mn) == 0) unlink(mp);
  remove_tree(s->dir);
  char parent[4600];
  snprintf(parent, sizeof parent, "%s", s->dir);
  char *slash = strrchr(parent, '/');
  if (slash) {
    *slash = 0;
    /* The database's folder too, if this was its only set (a failed
     * first backup); then the repository's folder is the one changed. */
    if (rmdir(parent) == 0 && (slash = strrchr(parent, '/')) != NULL)
      *slash = 0;
    app_fsync_dir(parent);
  }
  return is_dir(s->dir) ? -EIO : 0;
}

static int dir_read_manifest(struct repo *r, const char *dir, const char *db,
                             struct manifest *m, char *why, size_t whylen) {
  (void)r;
  char mn[256], mp[4800];
  manifest_file_name(db, mn, sizeof mn);
  if (app_path(mp, sizeof mp, "%s/%s", dir, mn) != 0) {
    snprintf(why, whylen, "path too long");
    return -EINVAL;
  }
  return manifest_read(mp, m, why, whylen);
}

static int dir_check(struct repo *r, const char *dir, const struct manifest *m,
                     int level) {
  (void)r;
  return manifest_check(dir, m, level);
}

static int dir_header(struct repo *r, const char *dir, const struct manifest *m,
                      vs_header *h) {
  (void)r;
  return chain_header(dir, m, h);
}

static int dir_stripe_create(struct repo *r, const char *dir, const char *name,
                             const char *tag, const struct stat *src,
                             struct stripe *s) {
  (void)r;
  int rc = stripe_create(s, dir, name, tag, src);
  if (rc == -ELOOP)
    app_err("%s/%s is a symbolic link; vdi does not write a backup "
            "through one (remove it)",
            dir, name);
  else if (rc != 0)
    app_err("cannot create a stripe file in %s: %s", dir, strerror(-rc));
  return rc;
}

static int dir_stripe_open(struct repo *r, const char *dir, const char *name,
                           struct stripe *s) {
  (void)r;
  int rc = stripe_open(s, dir, name);
  if (rc != 0) app_err("%s/%s: %s", dir, name, strerror(-rc));
  return rc;
}

/* The stripes' renames made durable before the manifest says they are
 * there. */
static int dir_put_manifest(struct repo *r, const char *dir,
                            const struct manifest *m, const struct stat *src) {
  (void)r;
  int rc = app_fsync_dir(dir);
  return rc != 0 ? rc : manifest_write(dir, m, src);
}

static const struct repo_ops dir_ops = {
    .kind = "directory",
    .databases = dir_databases,
    .sets = dir_sets,
    .create = dir_create,
    .remove = dir_remove,
    .read_manifest = dir_read_manifest,
    .check = dir_check,
    .header = dir_header,
    .stripe_create = dir_stripe_create,
    .stripe_open = dir_stripe_open,
    .put_manifest = dir_put_manifest,
};

/* ------------------------------------------------- the generic layer */

int repo_open(struct repo *r, const char *target, int create) {
  if (app_is_s3(target)) return repo_open_s3(r, target, create);
  memset(r, 0, sizeof *r);
  r->ops = &dir_ops;
  if (app_path(r->root, sizeof r->root, "%s", target) != 0)
    return -ENAMETOOLONG;
  size_t l = strlen(r->root);
  while (l > 1 && r->root[l - 1] == '/')
    r->root[--l] = 0;
  struct stat st;
  if (stat(r->root, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
    /* REPO/<db>: it holds sets, not databases.  A backup given it adds
     * its set there, where a restore from REPO/<db> or from REPO reads
     * them; made as REPO/<db>/<db>/ID, the new set would be passed over
     * by a restore from REPO/<db>, which would take the older ones. */
    const char *base = strrchr(r->root, '/');
    base = base ? base + 1 : r->root;
    char parent[4096];
    snprintf(parent, sizeof parent, "%.*s", (int)(base - r->root), r->root);
    if (app_valid_db_name(base) && holds_sets(parent[0] ? parent : ".", base))
      snprintf(r->db_folder, sizeof r->db_folder, "%.127s", base);
    return 0;
  }
  if (errno != ENOENT || !create) return -errno;
  /* It will hold full copies of databases: private until the user says
   * otherwise (by making the directory first). */
  return mkdir(r->root, 0700) == 0 ? fsync_parent(r->root) : -errno;
}

static int cmp_set(const void *a, const void *b) {
  const struct repo_set *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  return (x->legacy_seq > y->legacy_seq) - (x->legacy_seq < y->legacy_seq);
}

int repo_set_key(struct repo_set *s, const struct seal_key **key) {
  if (!s->key_known) {
    if (s->m->recipient[0] && !s->own_key) {
      s->own_key = calloc(1, sizeof *s->own_key);
      if (!s->own_key) abort();
    }
    s->key_rc = keys_of_set(s->m, s->own_key, &s->opens);
    s->key_known = 1;
  }
  *key = s->opens;
  return s->key_rc;
}

/* Stripe 0's stream header of complete set s, through the key that opens
 * it, set as stripe_key only for this read (a restore sets the key of
 * each set it uses itself, use_set_key).  Quiet when no key given opens
 * the set: list and expire name what that costs, once. */
static void load_header(struct repo *r, struct repo_set *s) {
  const struct seal_key *k, *was = stripe_key;
  int rc = repo_set_key(s, &k);
  if (rc == 0) {
    stripe_key = k;
    s->have_header = r->ops->header(r, s->dir, s->m, &s->h) == 0;
    stripe_key = was;
  }
  /* (A sealed key that does not open is damage, said by a restore.) */
  s->key_missing = rc == -ENOKEY || rc == -EKEYREJECTED;
}

int repo_load(struct repo *r, const char *db, int headers,
              struct repo_set **out) {
  struct repo_set *v = NULL;
  int n = r->ops->sets(r, db, &v);
  if (n < 0) return n;
  for (int i = 0; i < n; i++) {
    struct repo_set *s = &v[i];
    s->m = calloc(1, sizeof *s->m);
    if (!s->m) abort();
    int rc = r->ops->read_manifest(r, s->dir, db, s->m, s->why, sizeof s->why);
    if (rc == -ENOENT)
      snprintf(s->why, sizeof s->why, "no manifest: not a backup");
    else if (rc == 0 && strcmp(s->m->database, db) != 0)
      snprintf(s->why, sizeof s->why, "its manifest names database '%s'",
               s->m->database);
    else if (rc == 0)
      s->complete = 1;
    if (s->complete && headers) load_header(r, s);
    if (!s->legacy)
      snprintf(s->key, sizeof s->key, "%.20s", s->id);
    else if (s->complete)
      key_of_iso(s->m->started, s->key, sizeof s->key);
  }
  if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_set);
  *out = v;
  return n;
}

void repo_free(struct repo_set *v, int n) {
  for (int i = 0; v && i < n; i++) {
    free(v[i].m);
    if (v[i].own_key) seal_key_wipe(v[i].own_key); /* sodium_memzero */
    /* The restore or verify that used it is over: leave no pointer to
     * freed memory where the next set's key will be put. */
    if (v[i].own_key && stripe_key == v[i].own_key) stripe_key = NULL;
    free(v[i].own_key);
  }
  free(v);
}

int repo_databases(struct repo *r, char ***names) {
  int n = r->ops->databases(r, names);
  if (n > 1) qsort(*names, (size_t)n, sizeof **names, cmp_name);
  return n;
}

int repo_create(struct repo *r, const char *db, int kind, char *id, size_t idn,
                char *dir, size_t dirn) {
  return r->ops->create(r, db, kind, app_wall_s(), id, idn, dir, dirn);
}

int repo_remove(struct repo *r, const struct repo_set *s) {
  return r->ops->remove(r, s);
}

int repo_check(struct repo *r, const char *dir, const struct manifest *m,
               int level) {
  return r->ops->check(r, dir, m, level);
}

int repo_discard(struct repo *r, const char *dir) {
  struct repo_set s;
  memset(&s, 0, sizeof s);
  snprintf(s.dir, sizeof s.dir, "%s", dir);
  return r->ops->remove(r, &s);
}

void repo_close(struct repo *r) {
  if (r->ops && r->ops->close) r->ops->close(r);
  r->priv = NULL;
}

int repo_find(const struct repo_set *v, int n, const char *id) {
  for (int i = 0; i < n; i++)
    if (strcmp(v[i].id, id) == 0) return i;
  return -1;
}

int repo_chain_of(const struct repo_set *v, int n, int i) {
  if (v[i].kind == CHAIN_FULL) return i;
  /* A differential names its base: when that is not here (a full backup
   * taken elsewhere), it continues none of this repository's. */
  if (v[i].kind == CHAIN_DIFF && v[i].have_header) {
    for (int k = 0; k < n; k++)
      if (v[k].kind == CHAIN_FULL && v[k].have_header &&
          memcmp(v[k].h.set_id, v[i].h.diff_base_id, 16) == 0)
        return k;
    return -1;
  }
  /* A log continues the newest full backup before it. */
  for (int k = i - 1; k >= 0; k--)
    if (v[k].kind == CHAIN_FULL && v[k].complete) return k;
  return -1;
}
