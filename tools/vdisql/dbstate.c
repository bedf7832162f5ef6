/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dbstate.c - the instance's state of its databases, as rows of the
 * catalog's `databases` and `restoring` tables (see dbstate.h).  Every
 * change is one SQLite transaction, so a killed instance leaves either
 * the old row or the new one.
 */
#include "dbstate.h"

#include "catalog.h"
#include "vstream.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static int fail(vmsg *err, sqlite3 *db) {
  vmsg_set(err, 3634, "The instance's catalog cannot be used: %s.",
           db ? sqlite3_errmsg(db) : "it cannot be opened");
  sqlite3_close(db);
  return -1;
}

/* Open the catalog and prepare @p sql with ?1 bound to @p db.  NULL if
 * either fails; *c is then the connection (or NULL) for fail() to report. */
static sqlite3_stmt *prepare(const char *inst_dir, const char *sql,
                             const char *db, sqlite3 **c) {
  sqlite3_stmt *st = NULL;
  *c = catalog_open(inst_dir);
  if (!*c || sqlite3_prepare_v2(*c, sql, -1, &st, NULL) != SQLITE_OK)
    return NULL;
  if (db) sqlite3_bind_text(st, 1, db, -1, SQLITE_TRANSIENT);
  return st;
}

/* Finish a statement whose last step returned @p rc: an error unless it
 * is @p ok (or SQLITE_DONE). */
static int finish(sqlite3 *c, sqlite3_stmt *st, int rc, int ok, vmsg *err) {
  sqlite3_finalize(st);
  if (rc != ok && rc != SQLITE_DONE) return fail(err, c);
  sqlite3_close(c);
  return 0;
}

int guid_parse(const char *s, uint8_t out[16]) {
  int k = 0;
  for (const char *p = s; *p && k < 32; p++) {
    if (*p == '-') continue;
    int v;
    if (*p >= '0' && *p <= '9')
      v = *p - '0';
    else if (*p >= 'A' && *p <= 'F')
      v = *p - 'A' + 10;
    else if (*p >= 'a' && *p <= 'f')
      v = *p - 'a' + 10;
    else
      return -1;
    if (k % 2 == 0)
      out[k / 2] = (uint8_t)(v << 4);
    else
      out[k / 2] |= (uint8_t)v;
    k++;
  }
  return k == 32 ? 0 : -1;
}

static void text_guid(sqlite3_stmt *st, int col, uint8_t out[16], int *has) {
  const unsigned char *t = sqlite3_column_text(st, col);
  int ok = t && guid_parse((const char *)t, out) == 0;
  if (!ok) memset(out, 0, 16);
  if (has) *has = ok;
}

static void bind_guid(sqlite3_stmt *st, int col, const uint8_t id[16]) {
  char g[40];
  vs_format_guid(id, g);
  sqlite3_bind_text(st, col, g, -1, SQLITE_TRANSIENT);
}

static void row(sqlite3_stmt *st, dbstate *s) {
  memset(s, 0, sizeof *s);
  s->known = 1;
  text_guid(st, 1, s->family, NULL);
  s->full = strcmp((const char *)sqlite3_column_text(st, 2), "FULL") == 0;
  s->has_base = sqlite3_column_type(st, 3) != SQLITE_NULL;
  s->base_lsn = (uint64_t)sqlite3_column_int64(st, 3);
  text_guid(st, 4, s->base_set, NULL);
  s->has_log = sqlite3_column_type(st, 5) != SQLITE_NULL;
  s->log_lsn = (uint64_t)sqlite3_column_int64(st, 5);
  s->lsn_floor = (uint64_t)sqlite3_column_int64(st, 6);
}

int dbstate_get(const char *inst_dir, const char *db, dbstate *s, vmsg *err) {
  memset(s, 0, sizeof *s);
  sqlite3 *c;
  sqlite3_stmt *st = prepare(inst_dir,
                             "SELECT name, family_guid, recovery_model, "
                             "base_lsn, base_guid, log_lsn, lsn_floor FROM "
                             "databases WHERE name = ?1",
                             db, &c);
  if (!st) return fail(err, c);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) row(st, s);
  return finish(c, st, rc, SQLITE_ROW, err);
}

/* The row's six columns after the name, from parameter ?o on (NULL for
 * what @p s does not have). */
static void bind_state(sqlite3_stmt *st, int o, const dbstate *s) {
  bind_guid(st, o, s->family);
  sqlite3_bind_text(st, o + 1, s->full ? "FULL" : "SIMPLE", -1, SQLITE_STATIC);
  if (s->has_base) {
    sqlite3_bind_int64(st, o + 2, (sqlite3_int64)s->base_lsn);
    bind_guid(st, o + 3, s->base_set);
  }
  if (s->has_log) sqlite3_bind_int64(st, o + 4, (sqlite3_int64)s->log_lsn);
  sqlite3_bind_int64(st, o + 5, (sqlite3_int64)s->lsn_floor);
}

int dbstate_put(const char *inst_dir, const char *db, const dbstate *s,
                vmsg *err) {
  sqlite3 *c;
  sqlite3_stmt *st = prepare(inst_dir,
                             "INSERT OR REPLACE INTO databases VALUES(?1, "
                             "?2, ?3, ?4, ?5, ?6, ?7)",
                             db, &c);
  if (!st) return fail(err, c);
  bind_state(st, 2, s);
  int rc = sqlite3_step(st);
  return finish(c, st, rc, SQLITE_DONE, err);
}

int dbstate_update(const char *inst_dir, const char *db, const dbstate *was,
                   const dbstate *s, vmsg *err) {
  sqlite3 *c;
  sqlite3_stmt *st = prepare(
      inst_dir,
      "UPDATE databases SET family_guid = ?2, recovery_model = ?3, "
      "base_lsn = ?4, base_guid = ?5, log_lsn = ?6, lsn_floor = ?7 "
      "WHERE name = ?1 AND family_guid IS ?8 AND recovery_model IS ?9 AND "
      "base_lsn IS ?10 AND base_guid IS ?11 AND log_lsn IS ?12 AND "
      "IFNULL(lsn_floor, 0) = ?13",
      db, &c);
  if (!st) return fail(err, c);
  bind_state(st, 2, s);   /* ?2..?7: the new row */
  bind_state(st, 8, was); /* ?8..?13: the row as read */
  int rc = sqlite3_step(st);
  int changed = rc == SQLITE_DONE ? sqlite3_changes(c) : 0;
  if (finish(c, st, rc, SQLITE_DONE, err) != 0) return -1;
  return changed ? 0 : 1;
}

static void exec1(const char *inst_dir, const char *sql, const char *db) {
  sqlite3 *c;
  sqlite3_stmt *st = prepare(inst_dir, sql, db, &c);
  if (st) sqlite3_step(st);
  sqlite3_finalize(st);
  sqlite3_close(c);
}

void dbstate_break(const char *inst_dir, const char *db) {
  exec1(inst_dir,
        "UPDATE databases SET base_lsn = NULL, base_guid = NULL, "
        "log_lsn = NULL WHERE name = ?1",
        db);
}

void dbstate_forget(const char *inst_dir, const char *db) {
  exec1(inst_dir, "DELETE FROM databases WHERE name = ?1", db);
}

int dbstate_each(const char *inst_dir,
                 void (*fn)(void *ctx, const char *db, const dbstate *s),
                 void *ctx) {
  sqlite3 *c = catalog_open(inst_dir);
  sqlite3_stmt *st = NULL;
  if (!c || sqlite3_prepare_v2(c,
                               "SELECT name, family_guid, recovery_model, "
                               "base_lsn, base_guid, log_lsn, lsn_floor FROM "
                               "databases",
                               -1, &st, NULL) != SQLITE_OK) {
    sqlite3_close(c);
    return -1;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    dbstate s;
    char name[256];
    snprintf(name, sizeof name, "%s", sqlite3_column_text(st, 0));
    row(st, &s);
    fn(ctx, name, &s);
  }
  sqlite3_finalize(st);
  sqlite3_close(c);
  return 0;
}

int restoring_get(const char *inst_dir, const char *db, restoring *r,
                  vmsg *err) {
  memset(r, 0, sizeof *r);
  sqlite3 *c;
  sqlite3_stmt *st = prepare(inst_dir,
                             "SELECT family_guid, recovery_model, lsn, "
                             "last_guid, base_guid, time_ms, page_size, "
                             "state FROM restoring WHERE name = ?1",
                             db, &c);
  if (!st) return fail(err, c);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    r->known = 1;
    text_guid(st, 0, r->family, NULL);
    r->full = strcmp((const char *)sqlite3_column_text(st, 1), "FULL") == 0;
    r->lsn = (uint64_t)sqlite3_column_int64(st, 2);
    text_guid(st, 3, r->last_set, NULL);
    text_guid(st, 4, r->base_set, NULL);
    r->time_ms = sqlite3_column_int64(st, 5);
    r->page_size = (uint32_t)sqlite3_column_int(st, 6);
    r->applying =
        strcmp((const char *)sqlite3_column_text(st, 7), "applying") == 0;
  }
  return finish(c, st, rc, SQLITE_ROW, err);
}

int restoring_put(const char *inst_dir, const char *db, const restoring *r,
                  vmsg *err) {
  sqlite3 *c;
  sqlite3_stmt *st = prepare(inst_dir,
                             "INSERT OR REPLACE INTO restoring VALUES(?1, "
                             "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                             db, &c);
  if (!st) return fail(err, c);
  bind_guid(st, 2, r->family);
  sqlite3_bind_text(st, 3, r->full ? "FULL" : "SIMPLE", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)r->lsn);
  bind_guid(st, 5, r->last_set);
  bind_guid(st, 6, r->base_set);
  sqlite3_bind_int64(st, 7, r->time_ms);
  sqlite3_bind_int(st, 8, (int)r->page_size);
  sqlite3_bind_text(st, 9, r->applying ? "applying" : "ready", -1,
                    SQLITE_STATIC);
  int rc = sqlite3_step(st);
  return finish(c, st, rc, SQLITE_DONE, err);
}

void restoring_forget(const char *inst_dir, const char *db) {
  exec1(inst_dir, "DELETE FROM restoring WHERE name = ?1", db);
}
