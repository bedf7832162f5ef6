/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3target.c - the S3 repository: a target "s3://bucket/prefix" holds
 * the same layout as a directory repository (repo.c), as objects:
 *
 *   PREFIX/<db>/<ID>/<db>.stripe<i>.vdibak   the set's stripes
 *   PREFIX/<db>/<ID>/<db>.manifest.json      put last
 *
 * and, still read (never written or deleted), the older single-set layout
 * PREFIX/<db>.manifest.json + PREFIX/<db>.stripe<i>.vdibak, as set
 * "legacy".  A set's location (struct repo_set.dir) is
 * "s3://bucket/PREFIX/<db>/<ID>"; these hooks are the only code that turns
 * it into requests, so backup, restore, verify, list and expire (ops.c)
 * and the chains (chain.c) are those of directories.
 *
 * Each stripe streams as a multipart upload while the engine produces it
 * (8 MiB parts, 2 in flight per stripe: no local copy); the uploads are
 * completed only when the whole backup succeeded, then the manifest is
 * put, so a set without its manifest object is not a backup.  A failed
 * backup aborts its uploads; a killed one leaves them open: its set is
 * listed as incomplete (from the store's list of unfinished uploads), and
 * the next backup of the database aborts them first (so two backups of one
 * database into one repository must not run at once).  Aborting, not
 * resuming, is the policy: a backup's stream is the engine's, made once by
 * one BACKUP statement; another BACKUP makes another stream (another set
 * id, other pages of a live database), so the parts of a cut backup can
 * never be continued, only thrown away.  A store that stalls is given up
 * on in a bounded time (s3.h, timeout_s), and the cleanup of the failed
 * backup gets s3_cleanup_ms() (the `cleaning` hook); what it cannot abort
 * then, the next backup does.  Before the engine sees a byte, restore
 * and verify check each stripe's size and stream header (and, encrypted,
 * its first chunk's authentication) from a ranged GET of the start of
 * the object, then check every byte (CRC-32C, authentication) as they
 * feed it range by range; the later sets of a restored chain are read
 * whole first (CHECK_FULL), so that none stops the chain half way.
 */
#include "app.h"

#include "s3.h"
#include "seal.h"
#include "vstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PART_SIZE (8u << 20)
#define INFLIGHT  2

struct s3repo {
  struct s3_config cfg;
  struct s3_client *c;
  int cleaning; /* after a failed backup (s3_cleaning) */
  char bucket[256];
  char prefix[1024]; /* "" or ending in '/' */
};

int app_is_s3(const char *target) {
  return target && strncmp(target, "s3://", 5) == 0;
}

static struct s3repo *S(struct repo *r) {
  return r->priv;
}

/* The store's one line, told; the callers say nothing more. */
static int told(struct s3repo *s) {
  app_err("%s", s3_error(s->c));
  return -ECANCELED;
}

/* The key of object `name` in the set at dir ("s3://bucket/KEYPREFIX"). */
static int key_in(const struct s3repo *s, const char *dir, const char *name,
                  char *out, size_t n) {
  size_t bl = strlen(s->bucket);
  if (strncmp(dir, "s3://", 5) != 0 || strncmp(dir + 5, s->bucket, bl) != 0 ||
      (dir[5 + bl] != '/' && dir[5 + bl] != 0))
    return -EINVAL;
  const char *rest = dir + 5 + bl;
  if (*rest == '/') rest++;
  return app_path(out, n, "%s%s%s", rest, *rest ? "/" : "", name) == 0
             ? 0
             : -ENAMETOOLONG;
}

/* Listing callbacks stop at the first key with this. */
static int stop_at_first(void *arg, const char *key, uint64_t size) {
  (void)key;
  (void)size;
  *(int *)arg = 1;
  return -ECANCELED;
}

/* ------------------------------------------------------------ sets */

/* "<db>/<ID>/..." after the prefix: the database and the ID's length. */
static int split_set_key(const char *name, size_t *dblen, const char **id,
                         size_t *idlen) {
  const char *slash = strchr(name, '/');
  if (!slash) return 0;
  const char *end = strchr(slash + 1, '/');
  if (!end) return 0;
  char idbuf[64], dbbuf[128];
  size_t dl = (size_t)(slash - name), il = (size_t)(end - slash - 1);
  if (dl >= sizeof dbbuf || il >= sizeof idbuf) return 0;
  memcpy(dbbuf, name, dl);
  dbbuf[dl] = 0;
  memcpy(idbuf, slash + 1, il);
  idbuf[il] = 0;
  int kind;
  if (!app_valid_db_name(dbbuf) || !repo_is_set_id(idbuf, &kind)) return 0;
  *dblen = dl;
  *id = slash + 1;
  *idlen = il;
  return 1;
}

struct db_walk {
  size_t plen;
  char **v;
  int n;
};

static void db_of(struct db_walk *w, const char *key) {
  const char *name = key + w->plen, *id;
  size_t n = strlen(name), sl = strlen(MANIFEST_SUFFIX), dl, il;
  if (!strchr(name, '/') && n > sl && !strcmp(name + n - sl, MANIFEST_SUFFIX))
    repo_add_name(&w->v, &w->n, name, n - sl); /* the old layout */
  else if (split_set_key(name, &dl, &id, &il))
    repo_add_name(&w->v, &w->n, name, dl);
}

static int db_of_object(void *arg, const char *key, uint64_t size) {
  (void)size;
  db_of(arg, key);
  return 0;
}

static int db_of_upload(void *arg, const char *key, const char *upload_id) {
  (void)upload_id;
  db_of(arg, key);
  return 0;
}

static int s3_databases(struct repo *r, char ***out) {
  struct s3repo *s = S(r);
  struct db_walk w = {strlen(s->prefix), NULL, 0};
  *out = NULL;
  if (s3_list(s->c, s->bucket, s->prefix, db_of_object, &w) != 0 ||
      s3_mpu_list(s->c, s->bucket, s->prefix, db_of_upload, &w) != 0) {
    for (int i = 0; i < w.n; i++)
      free(w.v[i]);
    free(w.v);
    return told(s);
  }
  *out = w.v;
  return w.n;
}

struct set_walk {
  const struct s3repo *s;
  const char *db;
  size_t plen; /* of PREFIX<db>/ */
  struct repo_set *v;
  int n, cap;
};

static void set_of(struct set_walk *w, const char *key) {
  const char *id = key + w->plen, *end = strchr(id, '/');
  char idbuf[64];
  int kind;
  if (!end || (size_t)(end - id) >= sizeof idbuf) return;
  memcpy(idbuf, id, (size_t)(end - id));
  idbuf[end - id] = 0;
  if (!repo_is_set_id(idbuf, &kind) || repo_find(w->v, w->n, idbuf) >= 0)
    return;
  struct repo_set *set = repo_push_set(&w->v, &w->n, &w->cap);
  snprintf(set->id, sizeof set->id, "%s", idbuf);
  set->kind = kind;
  snprintf(set->dir, sizeof set->dir, "s3://%s/%s%s/%s", w->s->bucket,
           w->s->prefix, w->db, idbuf);
}

static int set_of_object(void *arg, const char *key, uint64_t size) {
  (void)size;
  set_of(arg, key);
  return 0;
}

static int set_of_upload(void *arg, const char *key, const char *upload_id) {
  (void)upload_id;
  set_of(arg, key);
  return 0;
}

static int s3_sets(struct repo *r, const char *db, struct repo_set **out) {
  struct s3repo *s = S(r);
  struct set_walk w = {s, db, 0, NULL, 0, 0};
  char name[256], pre[1400];
  *out = NULL;
  /* The old single-set layout. */
  manifest_file_name(db, name, sizeof name);
  snprintf(pre, sizeof pre, "%s%s", s->prefix, name);
  uint64_t size;
  int rc = s3_head(s->c, s->bucket, pre, &size);
  if (rc == 0) {
    struct repo_set *set = repo_push_set(&w.v, &w.n, &w.cap);
    snprintf(set->id, sizeof set->id, "legacy");
    set->kind = CHAIN_FULL;
    set->legacy = 1;
    snprintf(set->dir, sizeof set->dir, "%s", r->root);
  } else if (rc != -ENOENT) {
    return told(s);
  }
  /* The sets: their objects, and the unfinished uploads of those cut
   * short (listed as incomplete). */
  snprintf(pre, sizeof pre, "%s%s/", s->prefix, db);
  w.plen = strlen(pre);
  if (s3_list(s->c, s->bucket, pre, set_of_object, &w) != 0 ||
      s3_mpu_list(s->c, s->bucket, pre, set_of_upload, &w) != 0) {
    free(w.v);
    return told(s);
  }
  for (int i = 0; i < w.n; i++)
    snprintf(w.v[i].db, sizeof w.v[i].db, "%s", db);
  *out = w.v;
  return w.n;
}

static int s3_create(struct repo *r, const char *db, int kind, double when,
                     char *id, size_t idn, char *dir, size_t dirn) {
  struct s3repo *s = S(r);
  char pre[1400];
  snprintf(pre, sizeof pre, "%s%s/", s->prefix, db);
  /* What a killed backup of this database left goes first. */
  int aborted = 0;
  if (s3_mpu_cleanup(s->c, s->bucket, pre, &aborted) != 0) return told(s);
  if (aborted)
    app_note("aborted %d unfinished upload%s of an earlier backup", aborted,
             aborted == 1 ? "" : "s");
  /* Two sets started in the same millisecond: the later takes the next. */
  for (int tries = 0; tries < 1000; tries++) {
    repo_id_of_time(when + tries / 1000.0, kind, id, idn);
    char set[1500];
    int used = 0;
    snprintf(set, sizeof set, "%s%s/", pre, id);
    int rc = s3_list(s->c, s->bucket, set, stop_at_first, &used);
    if (rc != 0 && rc != -ECANCELED) return told(s);
    if (used) continue;
    return app_path(dir, dirn, "s3://%s/%s%s", s->bucket, pre, id) == 0
               ? 0
               : -ENAMETOOLONG;
  }
  return -EEXIST;
}

struct keys {
  char **v;
  int n;
};

static int add_key(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct keys *k = arg;
  repo_add_name(&k->v, &k->n, key, strlen(key));
  return 0;
}

static int s3_remove(struct repo *r, const struct repo_set *set) {
  struct s3repo *s = S(r);
  if (set->legacy) return -EPERM; /* the old layout is read, never changed */
  char pre[1400];
  if (key_in(s, set->dir, "", pre, sizeof pre) != 0) return -EINVAL;
  struct keys k = {NULL, 0};
  int rc = s3_list(s->c, s->bucket, pre, add_key, &k);
  /* The manifest first: a removal cut short leaves an incomplete set. */
  size_t sl = strlen(MANIFEST_SUFFIX);
  for (int pass = 0; rc == 0 && pass < 2; pass++)
    for (int i = 0; rc == 0 && i < k.n; i++) {
      size_t l = strlen(k.v[i]);
      int is_manifest = l > sl && !strcmp(k.v[i] + l - sl, MANIFEST_SUFFIX);
      if (is_manifest == (pass == 0)) {
        rc = s3_delete(s->c, s->bucket, k.v[i]);
        if (rc == -ENOENT) rc = 0;
      }
    }
  for (int i = 0; i < k.n; i++)
    free(k.v[i]);
  free(k.v);
  if (rc == 0) rc = s3_mpu_cleanup(s->c, s->bucket, pre, NULL);
  if (rc != 0 && s->cleaning) {
    app_err("%s", s3_error(s->c));
    app_warn("what the failed backup left under s3://%s/%s could not be "
             "removed in %d s (no manifest: it is not a backup); the next "
             "backup of the database to this target aborts its uploads",
             s->bucket, pre, s3_cleanup_ms(&s->cfg) / 1000);
    return -ECANCELED;
  }
  return rc == 0 ? 0 : told(s);
}

/* A failed backup: its uploads aborted and its set removed within
 * s3_cleanup_ms(), however the store behaves. */
static void s3_cleaning(struct repo *r) {
  struct s3repo *s = S(r);
  s->cleaning = 1;
  s3_process_deadline(s3_cleanup_ms(&s->cfg));
}

/* ------------------------------------------------------------ manifests */

struct mem {
  char *p;
  size_t n;
};

static int to_mem(void *arg, const void *buf, size_t n) {
  struct mem *m = arg;
  if (m->n + n > (1u << 20)) return -EFBIG; /* manifest.c's limit */
  char *np = realloc(m->p, m->n + n);
  if (!np) abort();
  memcpy(np + m->n, buf, n);
  m->p = np;
  m->n += n;
  return 0;
}

static int s3_read_manifest(struct repo *r, const char *dir, const char *db,
                            struct manifest *m, char *why, size_t whylen) {
  struct s3repo *s = S(r);
  char name[256], key[1400];
  manifest_file_name(db, name, sizeof name);
  if (key_in(s, dir, name, key, sizeof key) != 0) {
    snprintf(why, whylen, "not in this repository");
    return -EINVAL;
  }
  struct mem mem = {NULL, 0};
  int rc = s3_get(s->c, s->bucket, key, 0, 0, to_mem, &mem);
  if (rc == 0)
    rc = manifest_parse(mem.p ? mem.p : "", mem.n, m, why, whylen);
  else if (rc == -EFBIG)
    snprintf(why, whylen, "manifest too large");
  else if (rc != -ENOENT)
    snprintf(why, whylen, "%s", s3_error(s->c));
  free(mem.p);
  return rc == -EFBIG ? -EINVAL : rc;
}

static int s3_put_manifest(struct repo *r, const char *dir,
                           const struct manifest *m, const struct stat *src) {
  (void)src; /* an object has no mode: the bucket's policy applies */
  struct s3repo *s = S(r);
  char name[256], key[1400];
  manifest_file_name(m->database, name, sizeof name);
  if (key_in(s, dir, name, key, sizeof key) != 0) return -EINVAL;
  size_t len;
  char *text = manifest_text(m, &len);
  int rc = s3_put(s->c, s->bucket, key, text, len);
  free(text);
  return rc == 0 ? 0 : told(s);
}

/* ------------------------------------------------------------ stripes */

/* A stripe read through: CRC-32C, authentication, stream header. */
struct whole {
  uint32_t crc;
  uint64_t n;
  int sealed_checked, sealed;
  struct seal_reader *r;
  uint8_t head[VS_HEADER_SIZE];
  size_t head_n;
  int rc;
};

static void take_head(struct whole *w, const void *buf, size_t n) {
  size_t k = sizeof w->head - w->head_n;
  if (k > n) k = n;
  memcpy(w->head + w->head_n, buf, k);
  w->head_n += k;
}

static int plain_head(void *arg, const void *buf, size_t n) {
  take_head(arg, buf, n);
  return 0;
}

static int whole_in(void *arg, const void *buf, size_t n) {
  struct whole *w = arg;
  if (!w->sealed_checked && n >= 8) {
    w->sealed_checked = 1;
    w->sealed = memcmp(buf, "VDISEAL", 8) == 0;
    if (w->sealed) {
      if (!stripe_key) return w->rc = -ENOKEY;
      int rc = seal_reader_open(&w->r, stripe_key, plain_head, w);
      if (rc != 0) return w->rc = rc;
    }
  }
  w->crc = app_crc32c(w->crc, buf, n);
  w->n += n;
  if (w->r) {
    int rc = seal_feed(w->r, buf, n);
    if (rc != 0) return w->rc = rc;
  } else {
    take_head(w, buf, n);
  }
  return 0;
}

/* The header in w: why it is not stripe i's of m (NULL: it is). */
static const char *header_problem(const struct whole *w,
                                  const struct manifest *m, int i,
                                  vs_header *h) {
  if (w->head_n != sizeof w->head || vs_header_decode(h, w->head) != VS_OK)
    return "its header is not a valid openvdi stream header";
  if (strcmp(h->database, m->database) != 0)
    return "its header names another database";
  if (h->stripe_count != (uint32_t)m->nstripes ||
      h->stripe_index != (uint32_t)i)
    return "its header gives another stripe number or count";
  return NULL;
}

/* What a header check reads of a stripe object: the stream header is at
 * the start of the stream; sealed, it comes out once the first chunk is
 * authenticated, which takes the seal header, the whole first sealed
 * chunk (SEAL_CHUNK and its tag) and a byte of the next one (a chunk is
 * opened when more follows it: seal_feed).  The margin covers the tag of
 * either algorithm and that byte. */
#define HEAD_RANGE (SEAL_HEADER_BYTES + SEAL_CHUNK + 64)

/* The start of object key (size bytes) through whole_in into w, by one
 * ranged GET: HEAD_RANGE bytes, or the object whole when it is no longer.
 * A sealed chunk is opened once the next begins, or at the end: a stream
 * read whole (one chunk, a small log set) is finished for its header to
 * come out.  0 or a negative errno; *whole: every byte was read. */
static int get_head(struct s3repo *s, const char *key, uint64_t size,
                    struct whole *w, int *whole) {
  uint64_t len = size < HEAD_RANGE ? size : HEAD_RANGE;
  *whole = len == size;
  if (!len) return 0; /* no header: header_problem says so */
  int rc = s3_get(s->c, s->bucket, key, 0, len, whole_in, w);
  if (rc == 0 && w->r && *whole) rc = seal_reader_finish(w->r);
  return rc;
}

static int s3_header(struct repo *r, const char *dir, const struct manifest *m,
                     vs_header *h) {
  struct s3repo *s = S(r);
  char key[1400];
  if (m->nstripes < 1 ||
      key_in(s, dir, m->stripes[0].file, key, sizeof key) != 0)
    return -1;
  struct whole w = {0};
  int whole, rc = get_head(s, key, m->stripes[0].bytes, &w, &whole);
  seal_reader_free(w.r);
  return rc == 0 && !header_problem(&w, m, 0, h) ? 0 : -1;
}

/* CHECK_HEADERS reads the start of each object (get_head), and checks
 * its CRC-32C only when that is all of it: a restore checks every byte
 * of its first set as it feeds it (transfer.c), so reading it whole here
 * too would fetch it twice.  CHECK_FULL reads every object whole. */
static int s3_check(struct repo *r, const char *dir, const struct manifest *m,
                    int level) {
  struct s3repo *s = S(r);
  int bad = 0, keyed = 0;
  uint8_t set_id[16] = {0};
  for (int i = 0; i < m->nstripes; i++) {
    char key[1400];
    if (key_in(s, dir, m->stripes[i].file, key, sizeof key) != 0) {
      app_err("stripe %d: not in this repository", i);
      bad = 1;
      continue;
    }
    uint64_t size = 0;
    int rc = s3_head(s->c, s->bucket, key, &size);
    if (rc != 0) {
      app_err("stripe %d: %s", i, s3_error(s->c));
      bad = 1;
      continue;
    }
    if (size != m->stripes[i].bytes) {
      app_err("stripe %d (s3://%s/%s): size %llu, manifest says %llu: the "
              "backup is damaged",
              i, s->bucket, key, (unsigned long long)size,
              (unsigned long long)m->stripes[i].bytes);
      bad = 1;
      continue;
    }
    if (level < CHECK_HEADERS) continue;
    struct whole w = {0};
    int whole = 1;
    if (level >= CHECK_FULL) {
      rc = s3_get(s->c, s->bucket, key, 0, 0, whole_in, &w);
      if (rc == 0 && w.r) rc = seal_reader_finish(w.r);
    } else {
      rc = get_head(s, key, size, &w, &whole);
    }
    vs_header h;
    const char *why;
    if (w.rc == -ENOKEY) {
      app_err("s3://%s/%s is encrypted: give its key with --key-file",
              s->bucket, key);
      keyed = 1;
    } else if (w.r && rc == -EKEYREJECTED) {
      app_err("s3://%s/%s: %s", s->bucket, key, seal_reader_error(w.r));
      keyed = 1;
    } else if (w.r && rc == -EBADMSG) {
      app_err("s3://%s/%s: %s", s->bucket, key, seal_reader_error(w.r));
      bad = 1;
    } else if (rc != 0) {
      app_err("stripe %d: %s", i, s3_error(s->c));
      bad = 1;
    } else if (whole &&
               (w.n != m->stripes[i].bytes || w.crc != m->stripes[i].crc32c)) {
      app_err("stripe %d (s3://%s/%s): CRC-32C %08x, manifest says %08x: the "
              "backup is damaged",
              i, s->bucket, key, (unsigned)w.crc,
              (unsigned)m->stripes[i].crc32c);
      bad = 1;
    } else if ((why = header_problem(&w, m, i, &h)) != NULL ||
               (i > 0 && memcmp(set_id, h.set_id, 16) != 0)) {
      app_err("stripe %d (s3://%s/%s): %s: the backup is damaged", i, s->bucket,
              key,
              why ? why : "it belongs to another backup set than stripe 0");
      bad = 1;
    } else if (i == 0) {
      memcpy(set_id, h.set_id, 16);
    }
    seal_reader_free(w.r);
  }
  return bad ? -1 : keyed ? -2 : 0;
}

static int s3_stripe_create(struct repo *r, const char *dir, const char *name,
                            const char *tag, const struct stat *src,
                            struct stripe *st) {
  (void)tag; /* nothing is visible under the key before the upload ends */
  (void)src;
  struct s3repo *s = S(r);
  char key[1400];
  int rc = key_in(s, dir, name, key, sizeof key);
  if (rc == 0)
    rc = stripe_create_s3(st, &s->cfg, s->bucket, key, name, PART_SIZE,
                          INFLIGHT);
  else
    st->fd = -1; /* stripe_close() then closes nothing */
  if (rc != 0) app_err("cannot start stripe %d: %s", st->index, strerror(-rc));
  return rc;
}

static int s3_stripe_open(struct repo *r, const char *dir, const char *name,
                          struct stripe *st) {
  struct s3repo *s = S(r);
  char key[1400];
  int rc = key_in(s, dir, name, key, sizeof key);
  if (rc != 0) {
    app_err("%s/%s: %s", dir, name, strerror(-rc));
    st->fd = -1; /* stripe_close() then closes nothing */
    return rc;
  }
  return stripe_open_s3(st, &s->cfg, s->bucket, key, name);
}

static void s3_close(struct repo *r) {
  struct s3repo *s = S(r);
  if (!s) return;
  s3_client_free(s->c);
  free(s);
}

static const struct repo_ops s3_ops = {
    .kind = "s3",
    .databases = s3_databases,
    .sets = s3_sets,
    .create = s3_create,
    .remove = s3_remove,
    .read_manifest = s3_read_manifest,
    .check = s3_check,
    .header = s3_header,
    .stripe_create = s3_stripe_create,
    .stripe_open = s3_stripe_open,
    .put_manifest = s3_put_manifest,
    .cleaning = s3_cleaning,
    .close = s3_close,
};

int repo_open_s3(struct repo *r, const char *target, int create) {
  (void)create; /* a bucket is made by its owner, not by a backup */
  memset(r, 0, sizeof *r);
  r->ops = &s3_ops;
  struct s3repo *s = calloc(1, sizeof *s);
  if (!s) abort();
  r->priv = s;
  char err[512];
  if (s3_parse_url(target, s->bucket, sizeof s->bucket, s->prefix,
                   sizeof s->prefix - 1) != 0) {
    app_err("'%s' is not s3://BUCKET[/PREFIX]", target);
    return -ECANCELED;
  }
  size_t n = strlen(s->prefix);
  while (n > 0 && s->prefix[n - 1] == '/')
    s->prefix[--n] = 0;
  snprintf(r->root, sizeof r->root, "s3://%s%s%s", s->bucket, n ? "/" : "",
           s->prefix);
  if (n > 0) strcat(s->prefix, "/");
  if (s3_config_load(&s->cfg, err, sizeof err) != 0) {
    app_err("%s", err);
    return -ECANCELED;
  }
  s->c = s3_client_new(&s->cfg);
  if (!s->c) abort();
  /* Wrong credentials or a missing bucket are said here, in one line,
   * before an engine runs. */
  int any = 0;
  int rc = s3_list(s->c, s->bucket, s->prefix, stop_at_first, &any);
  return rc == 0 || rc == -ECANCELED ? 0 : told(s);
}
