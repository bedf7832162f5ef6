/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3target.c - backups kept in an S3 store: `vdi backup DB --to
 * s3://bucket/prefix`, and restore, verify and list `--from s3://...`.
 *
 * The objects are those of a backup directory under the prefix:
 * "<prefix>/<db>.stripe<i>.vdibak" and "<prefix>/<db>.manifest.json".
 * Each stripe streams as a multipart upload while the engine produces it
 * (8 MiB parts, 2 in flight per stripe: no local copy); the uploads are
 * completed only when the whole backup succeeded, after the old manifest
 * is deleted, and the manifest is put last, so a backup without its
 * manifest object is not a backup.  A failed backup aborts its uploads; a
 * killed one leaves parts, which the next backup of the database to the
 * same prefix aborts first.  Restore and verify read the manifest, check
 * every stripe's size, CRC-32C and stream header (and, encrypted, its
 * authentication) by reading it whole, and only then feed the engine,
 * reading the objects again range by range.  Full backups only: a chain
 * (--differential, --log, --to-time) needs a directory.
 */
#include "app.h"

#include "s3.h"
#include "seal.h"
#include "vstream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PART_SIZE (8u << 20)
#define INFLIGHT  2

struct loc {
  struct s3_config cfg;
  char bucket[256];
  char prefix[1024]; /* "" or ending in '/' */
  struct s3_client *c;
};

int app_is_s3(const char *target) {
  return target && strncmp(target, "s3://", 5) == 0;
}

static int loc_open(struct loc *l, const char *url) {
  memset(l, 0, sizeof *l);
  char err[512];
  if (s3_parse_url(url, l->bucket, sizeof l->bucket, l->prefix,
                   sizeof l->prefix - 1) != 0) {
    app_err("'%s' is not s3://BUCKET[/PREFIX]", url);
    return -1;
  }
  size_t n = strlen(l->prefix);
  if (n > 0 && l->prefix[n - 1] != '/') strcat(l->prefix, "/");
  if (s3_config_load(&l->cfg, err, sizeof err) != 0) {
    app_err("%s", err);
    return -1;
  }
  l->c = s3_client_new(&l->cfg);
  if (!l->c) abort();
  return 0;
}

static void loc_close(struct loc *l) {
  s3_client_free(l->c);
  l->c = NULL;
}

static void key_of(const struct loc *l, const char *name, char *out, size_t n) {
  snprintf(out, n, "%s%s", l->prefix, name);
}

/* ------------------------------------------------------------ backup */

struct stale {
  const struct loc *l;
  const char *db;
  int keep; /* stripes below this index stay */
  int rc;
};

static int delete_stale(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct stale *st = arg;
  const char *name = key + strlen(st->l->prefix);
  size_t dl = strlen(st->db);
  if (strncmp(name, st->db, dl) != 0 || strncmp(name + dl, ".stripe", 7) != 0)
    return 0;
  char *end;
  long i = strtol(name + dl + 7, &end, 10);
  if (strcmp(end, ".vdibak") != 0 || i < st->keep) return 0;
  int rc = s3_delete(st->l->c, st->l->bucket, key);
  if (rc != 0 && rc != -ENOENT) st->rc = rc;
  return 0;
}

/* The manifest as manifest.c writes it, put as an object. */
static int put_manifest(const struct loc *l, const struct manifest *m) {
  char tmp[] = "/tmp/vdi-s3-XXXXXX";
  if (!mkdtemp(tmp)) return -errno;
  int rc = manifest_write(tmp, m, NULL);
  char name[256], path[4400], key[1400];
  manifest_file_name(m->database, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  char *text = NULL;
  size_t len = 0;
  if (rc == 0) {
    FILE *f = fopen(path, "re");
    if (!f) rc = -errno;
    if (f) {
      text = malloc(1 << 20);
      if (!text) abort();
      len = fread(text, 1, 1 << 20, f);
      fclose(f);
    }
  }
  unlink(path);
  rmdir(tmp);
  if (rc != 0) return rc;
  key_of(l, name, key, sizeof key);
  rc = s3_put(l->c, l->bucket, key, text, len);
  if (rc != 0) app_err("%s", s3_error(l->c));
  free(text);
  return rc;
}

int op_backup_s3(const struct options *o) {
  if (o->kind != CHAIN_FULL) {
    app_err("differential and log backups go to a directory; an S3 target "
            "takes full backups");
    return EXIT_USAGE;
  }
  char vdisql[4096];
  if (engine_find(o->vdisql, vdisql, sizeof vdisql) != 0) return EXIT_FAIL;
  struct loc l;
  if (loc_open(&l, o->to) != 0) return EXIT_FAIL;
  int status = EXIT_FAIL, nopen = 0;
  struct transfer *t = calloc(1, sizeof *t);
  struct stripe *st = calloc((size_t)o->stripes, sizeof *st);
  struct manifest *m = calloc(1, sizeof *m);
  if (!t || !st || !m) abort();
  /* What a killed backup of this database left: its parts go first (and a
   * wrong key or a missing bucket is said here, before the engine runs). */
  char pre[1400];
  snprintf(pre, sizeof pre, "%s%s.", l.prefix, o->db);
  int aborted = 0;
  if (s3_mpu_cleanup(l.c, l.bucket, pre, &aborted) != 0) {
    app_err("%s", s3_error(l.c));
    goto out;
  }
  if (aborted && !o->quiet)
    printf("%s: aborted %d unfinished upload%s of an earlier backup\n",
           APP_NAME, aborted, aborted == 1 ? "" : "s");
  transfer_names(t, o->stripes);
  t->mode = XFER_BACKUP;
  t->stripes = st;
  t->vdisql = vdisql;
  t->instance = o->instance;
  for (int i = 0; i < o->stripes; i++) {
    char name[256], key[1400];
    snprintf(name, sizeof name, "%s.stripe%d.vdibak", o->db, i);
    key_of(&l, name, key, sizeof key);
    st[i].index = i;
    int rc = stripe_create_s3(&st[i], &l.cfg, l.bucket, key, name, PART_SIZE,
                              INFLIGHT);
    nopen++;
    if (rc != 0) {
      app_err("cannot start stripe %d: %s", i, strerror(-rc));
      goto out;
    }
  }
  char clause[4096];
  transfer_device_clause(t, clause, sizeof clause);
  app_path(t->statement, sizeof t->statement,
           "BACKUP DATABASE [%s] TO %s WITH CHECKSUM, %s", o->db, clause,
           o->compress ? "COMPRESSION" : "NO_COMPRESSION");
  struct progress prog;
  progress_start(&prog, "backup", 0, o->quiet);
  t->progress = &prog;
  double wall0 = app_wall_s(), mono0 = app_mono_s();
  int rc = transfer_run(t);
  progress_stop(&prog);
  if (rc != 0) {
    status = transfer_exit_status(t);
    app_err("backup of '%s' failed; no backup was recorded", o->db);
    goto out;
  }
  /* The old manifest goes before any new stripe becomes visible. */
  char mname[256], mkey[1400];
  manifest_file_name(o->db, mname, sizeof mname);
  key_of(&l, mname, mkey, sizeof mkey);
  rc = s3_delete(l.c, l.bucket, mkey);
  if (rc != 0 && rc != -ENOENT) {
    app_err("%s", s3_error(l.c));
    goto out;
  }
  for (int i = 0; i < o->stripes; i++)
    if (stripe_commit(&st[i]) != 0) {
      app_err("backup of '%s' failed; no backup was recorded", o->db);
      goto out;
    }
  struct stale sl = {&l, o->db, o->stripes, 0};
  char spre[1400];
  snprintf(spre, sizeof spre, "%s%s.stripe", l.prefix, o->db);
  if (s3_list(l.c, l.bucket, spre, delete_stale, &sl) != 0 || sl.rc != 0)
    app_err("stripes of an older backup stay: %s", s3_error(l.c));
  snprintf(m->database, sizeof m->database, "%s", o->db);
  snprintf(m->set_name, sizeof m->set_name, "%s", t->set_name);
  snprintf(m->compression, sizeof m->compression, "%s",
           o->compress ? "zstd" : "none");
  snprintf(m->tool, sizeof m->tool, "%s %s", APP_NAME, APP_VERSION);
  app_iso_time(wall0, m->started, sizeof m->started);
  app_iso_time(app_wall_s(), m->finished, sizeof m->finished);
  m->seconds = app_mono_s() - mono0;
  m->nstripes = o->stripes;
  for (int i = 0; i < o->stripes; i++) {
    snprintf(m->stripes[i].file, sizeof m->stripes[i].file, "%s", st[i].name);
    m->stripes[i].bytes = st[i].bytes;
    m->stripes[i].crc32c = st[i].crc;
  }
  if (put_manifest(&l, m) != 0) {
    app_err("cannot write the manifest of '%s' to %s", o->db, o->to);
    goto out;
  }
  progress_summary(&prog, "backup complete", o->stripes);
  status = EXIT_OK;
out:
  for (int i = 0; i < nopen; i++)
    stripe_close(&st[i]);
  loc_close(&l);
  free(t);
  free(st);
  free(m);
  return status;
}

/* ------------------------------------------------------------ checks */

static int to_file(void *arg, const void *buf, size_t n) {
  return fwrite(buf, 1, n, arg) == n ? 0 : -EIO;
}

/* The manifest object of db, read and validated.  0, -ENOENT or -1. */
static int get_manifest(const struct loc *l, const char *db,
                        struct manifest *m) {
  char tmp[] = "/tmp/vdi-s3-XXXXXX";
  if (!mkdtemp(tmp)) return -1;
  char name[256], path[4400], key[1400], why[256];
  manifest_file_name(db, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  key_of(l, name, key, sizeof key);
  FILE *f = fopen(path, "we");
  int rc = f ? s3_get(l->c, l->bucket, key, 0, 0, to_file, f) : -errno;
  if (f && fclose(f) != 0 && rc == 0) rc = -EIO;
  if (rc == 0) {
    rc = manifest_read(path, m, why, sizeof why);
    if (rc != 0) {
      app_err("s3://%s/%s: %s", l->bucket, key, why);
      rc = -1;
    }
  } else if (rc == -ENOENT && !strstr(s3_error(l->c), "NoSuchBucket")) {
    app_err("no complete backup of '%s' in s3://%s/%s (no %s)", db, l->bucket,
            l->prefix, name);
  } else {
    app_err("%s", s3_error(l->c));
    rc = -1;
  }
  unlink(path);
  rmdir(tmp);
  if (rc == 0 && strcmp(m->database, db) != 0) {
    app_err("s3://%s/%s: names database '%s', not '%s'", l->bucket, key,
            m->database, db);
    rc = -1;
  }
  return rc;
}

/* One stripe read whole: CRC-32C, authentication, stream header. */
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

static int check_stripes(const struct loc *l, const struct manifest *m) {
  int bad = 0;
  uint8_t set_id[16] = {0};
  for (int i = 0; i < m->nstripes; i++) {
    char key[1400];
    key_of(l, m->stripes[i].file, key, sizeof key);
    uint64_t size = 0;
    int rc = s3_head(l->c, l->bucket, key, &size);
    if (rc != 0) {
      app_err("stripe %d: %s", i, s3_error(l->c));
      bad = 1;
      continue;
    }
    if (size != m->stripes[i].bytes) {
      app_err("stripe %d (s3://%s/%s): size %llu, manifest says %llu: the "
              "backup is damaged",
              i, l->bucket, key, (unsigned long long)size,
              (unsigned long long)m->stripes[i].bytes);
      bad = 1;
      continue;
    }
    struct whole w = {0};
    rc = s3_get(l->c, l->bucket, key, 0, 0, whole_in, &w);
    if (rc == 0 && w.r) rc = seal_reader_finish(w.r);
    if (w.rc == -ENOKEY) {
      app_err("s3://%s/%s is encrypted: give its key with --key-file",
              l->bucket, key);
    } else if (w.r && (rc == -EBADMSG || rc == -EKEYREJECTED)) {
      app_err("s3://%s/%s: %s", l->bucket, key, seal_reader_error(w.r));
    } else if (rc != 0) {
      app_err("stripe %d: %s", i, s3_error(l->c));
    } else if (w.n != m->stripes[i].bytes || w.crc != m->stripes[i].crc32c) {
      app_err("stripe %d (s3://%s/%s): CRC-32C %08x, manifest says %08x: the "
              "backup is damaged",
              i, l->bucket, key, (unsigned)w.crc,
              (unsigned)m->stripes[i].crc32c);
      rc = -1;
    } else {
      vs_header h;
      const char *why = NULL;
      if (w.head_n != sizeof w.head || vs_header_decode(&h, w.head) != VS_OK)
        why = "its header is not a valid openvdi stream header";
      else if (strcmp(h.database, m->database) != 0)
        why = "its header names another database";
      else if (h.stripe_count != (uint32_t)m->nstripes ||
               h.stripe_index != (uint32_t)i)
        why = "its header gives another stripe number or count";
      else if (i > 0 && memcmp(set_id, h.set_id, 16) != 0)
        why = "it belongs to another backup set than stripe 0";
      if (why) {
        app_err("stripe %d (s3://%s/%s): %s: the backup is damaged", i,
                l->bucket, key, why);
        rc = -1;
      } else if (i == 0) {
        memcpy(set_id, h.set_id, 16);
      }
    }
    seal_reader_free(w.r);
    if (rc != 0 || w.rc != 0) bad = 1;
  }
  return bad ? -1 : 0;
}

/* ------------------------------------------------------------ restore */

static int run_restore_s3(const struct options *o, const struct loc *l,
                          const struct manifest *m, const char *head,
                          const char *tail, const char *verb) {
  char vdisql[4096];
  if (engine_find(o->vdisql, vdisql, sizeof vdisql) != 0) return EXIT_FAIL;
  int n = m->nstripes;
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
    char key[1400];
    key_of(l, m->stripes[i].file, key, sizeof key);
    st[i].index = i;
    st[i].expect = m->stripes[i].bytes;
    st[i].expect_crc = m->stripes[i].crc32c;
    st[i].check_feed = 1;
    total += m->stripes[i].bytes;
    nopen++;
    if (stripe_open_s3(&st[i], &l->cfg, l->bucket, key, m->stripes[i].file) !=
        0)
      goto out;
  }
  char clause[4096];
  transfer_device_clause(t, clause, sizeof clause);
  app_path(t->statement, sizeof t->statement, "%s %s%s", head, clause, tail);
  struct progress prog;
  progress_start(&prog, verb, total, o->quiet);
  t->progress = &prog;
  status = transfer_run_reading(t, &prog, verb, n);
out:
  for (int i = 0; i < nopen; i++)
    stripe_close(&st[i]);
  free(t);
  free(st);
  return status;
}

int op_restore_s3(const struct options *o, const char *target) {
  if (o->to_time || o->latest) {
    app_err("--to-time and --latest plan a chain, which lives in a "
            "directory; an S3 target holds full backups");
    return EXIT_USAGE;
  }
  struct loc l;
  if (loc_open(&l, o->from) != 0) return EXIT_FAIL;
  struct manifest *m = calloc(1, sizeof *m);
  if (!m) abort();
  int status = EXIT_FAIL;
  if (get_manifest(&l, o->db, m) != 0) goto out;
  if (check_stripes(&l, m) != 0) {
    app_err("the backup of '%s' in %s is damaged; refusing to use it", o->db,
            o->from);
    goto out;
  }
  char head[256];
  app_path(head, sizeof head, "RESTORE DATABASE [%s] FROM", target);
  status = run_restore_s3(o, &l, m, head, o->replace ? " WITH REPLACE" : "",
                          "restore");
  if (status != EXIT_OK) app_err("restore of '%s' failed", target);
out:
  free(m);
  loc_close(&l);
  return status;
}

/* ------------------------------------------------------------ verify, list */

struct names {
  char **v;
  int n, cap;
  size_t plen;
};

static int add_manifest(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct names *nm = arg;
  const char *name = key + nm->plen;
  size_t n = strlen(name), sl = strlen(MANIFEST_SUFFIX);
  if (strchr(name, '/') || n <= sl || strcmp(name + n - sl, MANIFEST_SUFFIX))
    return 0;
  if (nm->n == nm->cap) {
    nm->cap = nm->cap ? nm->cap * 2 : 8;
    nm->v = realloc(nm->v, (size_t)nm->cap * sizeof *nm->v);
    if (!nm->v) abort();
  }
  nm->v[nm->n] = strndup(name, n - sl);
  if (!nm->v[nm->n]) abort();
  nm->n++;
  return 0;
}

static int list_names(const struct loc *l, struct names *nm) {
  memset(nm, 0, sizeof *nm);
  nm->plen = strlen(l->prefix);
  if (s3_list(l->c, l->bucket, l->prefix, add_manifest, nm) != 0) {
    app_err("%s", s3_error(l->c));
    return -1;
  }
  return 0;
}

static void free_names(struct names *nm) {
  for (int i = 0; i < nm->n; i++)
    free(nm->v[i]);
  free(nm->v);
}

int op_verify_s3(const struct options *o) {
  struct loc l;
  if (loc_open(&l, o->from) != 0) return EXIT_FAIL;
  struct names nm = {0};
  int status = EXIT_FAIL;
  if (o->db) {
    nm.v = malloc(sizeof *nm.v);
    if (!nm.v) abort();
    nm.v[0] = strdup(o->db);
    nm.n = 1;
  } else if (list_names(&l, &nm) != 0) {
    goto out;
  } else if (nm.n == 0) {
    app_err("no complete backup in %s", o->from);
    goto out;
  }
  struct manifest *m = calloc(1, sizeof *m);
  if (!m) abort();
  status = EXIT_OK;
  for (int i = 0; i < nm.n; i++) {
    int st = EXIT_FAIL;
    if (get_manifest(&l, nm.v[i], m) == 0 && check_stripes(&l, m) == 0)
      st = run_restore_s3(o, &l, m, "RESTORE VERIFYONLY FROM", "", "verify");
    if (st == EXIT_OK) {
      printf("%s: backup of '%s' is valid (%d stripe%s)\n", APP_NAME, nm.v[i],
             m->nstripes, m->nstripes == 1 ? "" : "s");
    } else {
      app_err("backup of '%s' in %s did NOT verify", nm.v[i], o->from);
      if (status == EXIT_OK || st > 128) status = st;
      if (st > 128) break;
    }
    fflush(stdout);
  }
  free(m);
out:
  free_names(&nm);
  loc_close(&l);
  return status;
}

int op_list_s3(const struct options *o) {
  struct loc l;
  if (loc_open(&l, o->from) != 0) return EXIT_FAIL;
  struct names nm;
  int status = EXIT_FAIL;
  if (list_names(&l, &nm) != 0) goto out;
  if (nm.n == 0) {
    app_err("no complete backup in %s", o->from);
    goto out;
  }
  struct manifest *m = calloc(1, sizeof *m);
  if (!m) abort();
  status = EXIT_OK;
  for (int i = 0; i < nm.n; i++) {
    if (get_manifest(&l, nm.v[i], m) != 0) {
      status = EXIT_FAIL;
      continue;
    }
    uint64_t total = 0;
    for (int k = 0; k < m->nstripes; k++)
      total += m->stripes[k].bytes;
    printf("%s  finished %s  %d stripe%s  %llu bytes  compression %s  (%s)\n",
           m->database, m->finished, m->nstripes, m->nstripes == 1 ? "" : "s",
           (unsigned long long)total, m->compression, m->tool);
    for (int k = 0; k < m->nstripes; k++)
      printf("  stripe %d  %s  %llu bytes  crc32c %08x\n", k,
             m->stripes[k].file, (unsigned long long)m->stripes[k].bytes,
             (unsigned)m->stripes[k].crc32c);
  }
  free(m);
out:
  free_names(&nm);
  loc_close(&l);
  return status;
}
