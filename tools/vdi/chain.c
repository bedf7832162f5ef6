/*
 * chain.c - differential and log backups in a vdi target, and the
 * restore that plans a chain from them.
 *
 * A target directory holds a database's full backup as before
 * (DB.manifest.json and its stripes) and, next to it, DB.chain/: one
 * directory per later backup, "<seq>-diff" or "<seq>-log" (seq counts up
 * from 000001), each a complete backup (manifest written last).  A new
 * full backup makes the old chain useless and removes it.  `vdi restore
 * --to-time T | --latest` restores the full backup, the newest
 * differential at or before T, then every log backup from there to the
 * first that reaches T, with NORECOVERY until the last step; the engine
 * (vdisql) checks every step against SQL Server's rules again.
 */
#include "app.h"

#include "timefmt.h"
#include "vstream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int chain_dir(const char *to, const char *db, char *out, size_t n) {
  return app_path(out, n, "%s/%s.chain", to, db);
}

static int is_entry(const char *name, int *seq, int *kind) {
  char k[8];
  int s, used = 0;
  if (sscanf(name, "%6d-%5[a-z]%n", &s, k, &used) != 2 || name[used] ||
      strlen(name) < 8)
    return 0;
  if (strcmp(k, "diff") == 0)
    *kind = CHAIN_DIFF;
  else if (strcmp(k, "log") == 0)
    *kind = CHAIN_LOG;
  else
    return 0;
  *seq = s;
  return 1;
}

int chain_new_entry(const char *to, const char *db, int kind, char *out,
                    size_t n) {
  char dir[4400];
  if (chain_dir(to, db, dir, sizeof dir) != 0) return -ENAMETOOLONG;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -errno;
  DIR *d = opendir(dir);
  if (!d) return -errno;
  int top = 0, seq, k;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (is_entry(e->d_name, &seq, &k) && seq > top) top = seq;
  closedir(d);
  if (app_path(out, n, "%s/%06d-%s", dir, top + 1,
               kind == CHAIN_DIFF ? "diff" : "log") != 0)
    return -ENAMETOOLONG;
  if (mkdir(out, 0700) != 0) return -errno;
  return 0;
}

/* Remove a backup directory's files and the directory. */
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

void chain_remove_entry(const char *entry) {
  remove_tree(entry);
}

void chain_prune(const char *to, const char *db, const struct manifest *full) {
  vs_header fh, h;
  struct chain_entry *v = NULL;
  struct manifest *m = calloc(1, sizeof *m);
  char mn[256], mp[4700], why[256];
  int n = chain_list(to, db, &v);
  if (!m) abort();
  /* Without the new full backup's LSN nothing of the old chain can be
   * shown to continue it. */
  int known = chain_header(to, full, &fh) == 0 && fh.first_lsn != 0;
  manifest_file_name(db, mn, sizeof mn);
  for (int i = 0; i < n; i++) {
    int keep = 0;
    /* A log backup that ran while the full backup did reaches past its
     * LSN: it is the first log the new full needs. */
    if (known && v[i].kind == CHAIN_LOG &&
        app_path(mp, sizeof mp, "%s/%s", v[i].dir, mn) == 0 &&
        manifest_read(mp, m, why, sizeof why) == 0 &&
        chain_header(v[i].dir, m, &h) == 0 && h.last_lsn > fh.first_lsn)
      keep = 1;
    if (!keep) remove_tree(v[i].dir);
  }
  free(v);
  free(m);
  char dir[4400];
  if (chain_dir(to, db, dir, sizeof dir) == 0) rmdir(dir); /* if empty */
  app_fsync_dir(to);
}

static int cmp_entry(const void *a, const void *b) {
  const struct chain_entry *x = a, *y = b;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

int chain_list(const char *to, const char *db, struct chain_entry **out) {
  char dir[4400];
  *out = NULL;
  if (chain_dir(to, db, dir, sizeof dir) != 0) return -ENAMETOOLONG;
  DIR *d = opendir(dir);
  if (!d) return errno == ENOENT ? 0 : -errno;
  struct chain_entry *v = NULL;
  int n = 0, cap = 0, seq, kind;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!is_entry(e->d_name, &seq, &kind)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      struct chain_entry *nv = realloc(v, (size_t)cap * sizeof *v);
      if (!nv) abort();
      v = nv;
    }
    memset(&v[n], 0, sizeof v[n]);
    v[n].seq = seq;
    v[n].kind = kind;
    app_path(v[n].dir, sizeof v[n].dir, "%s/%s", dir, e->d_name);
    n++;
  }
  closedir(d);
  qsort(v, (size_t)n, sizeof *v, cmp_entry);
  *out = v;
  return n;
}

int chain_header(const char *dir, const struct manifest *m, vs_header *h) {
  char p[4600];
  uint8_t buf[VS_HEADER_SIZE];
  if (app_path(p, sizeof p, "%s/%s", dir, m->stripes[0].file) != 0) return -1;
  if (stripe_peek_stream(p, buf, sizeof buf) != 0 ||
      vs_header_decode(h, buf) != VS_OK)
    return -1;
  return 0;
}
