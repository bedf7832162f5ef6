/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chain.c - chains of full, differential and log backup sets: the restore
 * plan, what expire must keep, and the one-folder layout's chains.
 *
 * A database's sets (repo.c) are ordered by start time.  A chain is a full
 * backup, the differentials whose base it is, and the log backups after
 * it.  `vdi restore --to-time T | --latest | --set ID` restores a full
 * backup, the newest differential of it at or before T (or the set asked
 * for), then every log backup from there to the first that reaches T,
 * with NORECOVERY until the last step; the engine (vdisql) checks every
 * step against SQL Server's rules again.  A log backup taken while a full
 * backup ran reaches past that full's LSN: it follows the new full too.
 *
 * Before repositories, a target held DB.manifest.json and its stripes and
 * DB.chain/<seq>-diff|-log/ beside it; chain_list reads that layout.
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

/* The full backup a restore starts from. */
static int plan_full(const struct repo_set *v, int n, int target, int64_t T) {
  if (target >= 0) return repo_chain_of(v, n, target);
  int f = -1;
  for (int i = 0; i < n; i++)
    if (v[i].kind == CHAIN_FULL && v[i].complete &&
        (!T || (v[i].have_header && v[i].h.last_time_ms <= T)))
      f = i;
  return f;
}

/* A set of the plan whose stream header could not be read: for want of
 * the key that opens it (EXIT_FAIL, the key named as the remedy) or
 * damaged (EXIT_DAMAGED).  Told; the negated status. */
static int unreadable(const struct repo_set *s, const char *db) {
  if (s->key_missing) {
    app_err("backup set '%s' of '%s' is encrypted (%s): give the key file "
            "that opens it with --key-file; nothing was restored",
            s->id, db, s->m->encryption);
    return -EXIT_FAIL;
  }
  if (s->kind == CHAIN_FULL)
    app_err("the full backup set '%s' of '%s' has no readable header", s->id,
            db);
  else
    app_err("%s backup set '%s' cannot be read (its stream header); "
            "nothing was restored",
            s->kind == CHAIN_LOG ? "log" : "differential", s->id);
  return -EXIT_DAMAGED;
}

static time_t start_of(const struct repo_set *s);

/* A full or differential set after the plan's base that the plan passes
 * over although it may hold what was asked for: damaged (a manifest that
 * does not read), its stream header unread, or a differential of another
 * full backup than f (one taken elsewhere becomes the engine's base, and
 * the next differential continues it), started at or before T, and
 * not carried past by a later step of the plan (a log backup).  Restoring
 * around it would restore less than asked and say nothing.  Fulls count
 * when the plan chose its full set (@p fulls); differentials when the
 * plan takes them (@p diffs), up to the next full set (later ones are
 * another full set's).  A set without a manifest never finished: it is no
 * backup.  Its index, or -1. */
static int passed_over(const struct repo_set *v, int n, int f, int limit,
                       int64_t T, int fulls, int diffs, int last) {
  int found = -1, after_full = 0;
  for (int i = f + 1; i <= limit && i < n; i++) {
    const struct repo_set *s = &v[i];
    int unusable = !s->complete ? !strstr(s->why, "no manifest")
                   : !s->have_header
                       ? 1
                       : s->kind == CHAIN_DIFF &&
                             memcmp(s->h.diff_base_id, v[f].h.set_id, 16) != 0;
    time_t t = start_of(s);
    if (unusable && i > last &&
        (s->kind == CHAIN_FULL
             ? fulls
             : s->kind == CHAIN_DIFF && diffs && !after_full) &&
        (!T || t < 0 || (int64_t)t * 1000 <= T))
      found = i;
    if (s->kind == CHAIN_FULL) after_full = 1;
  }
  return found;
}

/* Told; the negated status. */
static int passed_over_err(const struct repo_set *s, const char *db) {
  if (s->complete && !s->have_header) return unreadable(s, db);
  if (s->complete) {
    app_err("differential backup set '%s' of '%s' continues a full backup "
            "that is not in this repository (one taken elsewhere, or whose "
            "set is gone): a restore without it would restore less than "
            "asked; nothing was restored (--set names another set)",
            s->id, db);
    return -EXIT_FAIL;
  }
  app_err("%s backup set '%s' of '%s' is damaged (%s): a restore around it "
          "would restore less than asked; nothing was restored (--set names "
          "another set)",
          s->kind == CHAIN_FULL ? "the newer full" : "differential", s->id, db,
          s->why);
  return -EXIT_DAMAGED;
}

int chain_plan(const struct repo_set *v, int n, const struct options *o,
               int *steps) {
  int64_t T = o->to_time ? o->to_time_ms : 0; /* parsed by main.c */
  char when[40];
  int target = -1;
  if (o->set_id) {
    target = repo_find(v, n, o->set_id);
    if (target < 0) {
      app_err("no backup set '%s' of '%s' (vdi list shows them)", o->set_id,
              o->db);
      return -EXIT_NOTFOUND;
    }
    if (!v[target].complete) {
      app_err("backup set '%s' of '%s' is not complete (%s)", o->set_id, o->db,
              v[target].why);
      return -EXIT_DAMAGED;
    }
  }
  int f = plan_full(v, n, target, T);
  if (f < 0) {
    if (T) {
      for (int i = 0; i < n; i++)
        if (v[i].kind == CHAIN_FULL && v[i].have_header) {
          time_format_ms(v[i].h.last_time_ms, when, sizeof when);
          app_err("--to-time %s is before the full backup of '%s' (%s)",
                  o->to_time, o->db, when);
          return -EXIT_FAIL;
        }
    }
    app_err("no complete full backup of '%s' that %s", o->db,
            target >= 0 ? "this set continues" : "a restore can start from");
    return -EXIT_NOTFOUND;
  }
  int nsteps = 0;
  steps[nsteps++] = f;
  /* A full backup alone: the default, or --set naming a full one. */
  if (!o->latest && !T && (target < 0 || target == f)) {
    int p = target < 0 ? passed_over(v, n, f, n - 1, 0, 1, 0, f) : -1;
    return p >= 0 ? passed_over_err(&v[p], o->db) : nsteps;
  }
  /* --set FULL with --latest or --to-time: its chain, as far as asked. */
  if (target == f) target = -1;
  if (!v[f].have_header) return unreadable(&v[f], o->db);
  /* The newest differential of this full at or before T (or the target). */
  int base = f;
  int limit = target >= 0 ? target : n - 1;
  for (int i = f + 1; i <= limit; i++)
    if (v[i].kind == CHAIN_DIFF && v[i].complete && v[i].have_header &&
        memcmp(v[i].h.diff_base_id, v[f].h.set_id, 16) == 0 &&
        (!T || v[i].h.last_time_ms <= T))
      base = i;
  if (target >= 0 && v[target].kind == CHAIN_DIFF && base != target) {
    app_err("backup set '%s' is not a differential of '%s'", v[target].id,
            v[f].id);
    return -EXIT_FAIL;
  }
  if (base != f) steps[nsteps++] = base;
  uint64_t lsn = v[base].h.last_lsn;
  int reached = target >= 0 && target == base;
  static const uint8_t unknown[16];
  const uint8_t *family = v[f].h.family_id;
  int known = memcmp(family, unknown, 16) != 0;
  /* Every log from there on that moves the chain forward.  A log set
   * taken after the full one whose header cannot be read may hold the
   * very transactions asked for: refuse, never restore around it. */
  for (int i = 0; i < n && !reached; i++) {
    if (v[i].kind == CHAIN_LOG && v[i].complete && !v[i].have_header && i > f &&
        (target < 0 || i <= target))
      return unreadable(&v[i], o->db);
    if (v[i].kind != CHAIN_LOG || !v[i].complete || !v[i].have_header ||
        v[i].h.last_lsn <= lsn)
      continue;
    /* Another database of the same name (another family GUID: another
     * server's, or one dropped and made again): not this chain's, and
     * the engine would refuse it (Msg 3154) only after the full set had
     * replaced the database. */
    if (known && memcmp(v[i].h.family_id, unknown, 16) != 0 &&
        memcmp(v[i].h.family_id, family, 16) != 0)
      continue;
    if (target >= 0 && i > target) break;
    /* A log that begins past where the chain is: one between them is
     * missing (taken elsewhere, deleted) or damaged.  The engine would
     * refuse it (Msg 4305) only after the steps before it had replaced
     * the database and left it RESTORING: refuse the plan instead. */
    if (v[i].h.first_lsn > lsn) {
      app_err("the log chain of '%s' is broken: log backup set '%s' begins "
              "at LSN %llu, but the chain before it ends at LSN %llu (a log "
              "backup between them is missing or damaged); nothing was "
              "restored",
              o->db, v[i].id, (unsigned long long)v[i].h.first_lsn,
              (unsigned long long)lsn);
      return -EXIT_FAIL;
    }
    steps[nsteps++] = i;
    lsn = v[i].h.last_lsn;
    if (T && v[i].h.last_time_ms >= T) reached = 1;
    if (i == target) reached = 1;
  }
  if (!T && target < 0) reached = 1; /* --latest: as far as the logs go */
  if (!reached) {
    int last = steps[nsteps - 1];
    time_format_ms(v[last].h.last_time_ms, when, sizeof when);
    if (T)
      app_err("no log backup of '%s' reaches %s (the chain ends at %s); "
              "nothing was restored",
              o->db, o->to_time, when);
    else
      app_err("backup set '%s' does not continue the chain of '%s'; nothing "
              "was restored",
              v[target].id, v[f].id);
    return -EXIT_FAIL;
  }
  int p = passed_over(v, n, f, limit, T, !o->set_id, 1, steps[nsteps - 1]);
  if (p >= 0) return passed_over_err(&v[p], o->db);
  return nsteps;
}

/* The UTC day of a set, "YYYYMMDD" (from its ID-shaped key). */
static int day_of(const struct repo_set *s) {
  int d = 0;
  for (int i = 0; i < 8 && s->key[i] >= '0' && s->key[i] <= '9'; i++)
    d = d * 10 + (s->key[i] - '0');
  return d;
}

/* When a set started (UTC, from its ID-shaped key), or -1. */
static time_t start_of(const struct repo_set *s) {
  struct tm tm = {0};
  if (sscanf(s->key, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm(&tm);
}

void chain_keep(const struct repo_set *v, int n, int keep_last, int keep_daily,
                int keep_days, time_t now, int *keep) {
  for (int i = 0; i < n; i++)
    keep[i] = !v[i].complete || v[i].legacy;
  /* The full backups kept, newest first.  The newest is kept whatever
   * the rules say: backups that stopped some days ago must not leave
   * --keep-days with nothing to keep, and the repository with nothing to
   * restore. */
  int last = 0, days = 0, prev_day = -1, newest = 1;
  for (int i = n - 1; i >= 0; i--) {
    if (v[i].kind != CHAIN_FULL || !v[i].complete) continue;
    if (newest) keep[i] = 1;
    newest = 0;
    if (last < keep_last) {
      keep[i] = 1;
      last++;
    }
    /* By age; a set whose time cannot be read is kept. */
    time_t t = start_of(&v[i]);
    if (keep_days > 0 && (t < 0 || now - t < (time_t)keep_days * 86400))
      keep[i] = 1;
    int d = day_of(&v[i]);
    if (d != prev_day && days < keep_daily) {
      keep[i] = 1; /* the newest of its day */
      days++;
    }
    prev_day = d;
  }
  /* What their chains need: differentials of a kept full; every log from
   * the oldest kept full on.  A set whose chain cannot be told (its
   * header, or the oldest kept full's, unread) is kept: KEEP_UNREAD. */
  int oldest = -1;
  for (int i = 0; i < n && oldest < 0; i++)
    if (v[i].kind == CHAIN_FULL && v[i].complete && keep[i]) oldest = i;
  for (int i = 0; i < n; i++) {
    if (keep[i]) continue;
    if (v[i].kind == CHAIN_DIFF) {
      /* One whose full set is not here (taken elsewhere) goes with the
       * time it was made in: kept after the oldest kept full set. */
      int f = repo_chain_of(v, n, i);
      keep[i] = !v[i].have_header ? KEEP_UNREAD
                : f >= 0          ? keep[f]
                                  : oldest >= 0 && i > oldest;
    } else if (v[i].kind == CHAIN_LOG && oldest >= 0) {
      keep[i] = i > oldest ? 1
                : !v[i].have_header || !v[oldest].have_header
                    ? KEEP_UNREAD
                    : v[i].h.last_lsn > v[oldest].h.first_lsn;
    }
  }
}
