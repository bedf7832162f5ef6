/* SPDX-License-Identifier: Apache-2.0 */
/*
 * catalog.c - the backup history (see catalog.h).
 *
 * The catalog is a SQLite database in the instance's private directory
 * (0700; the file 0600, created with the umask of the instance's user).
 * Columns keep msdb's names and meanings where vdisql has the value (LSNs
 * are the instance's log sequence numbers, docs/INSTANCE.md; NULL for a
 * backup taken without the instance).  Queries
 * open it read-only and an authorizer lets them read the two history
 * tables and nothing else: history is for reading, and a query must not
 * reach other files (ATTACH) or change settings (PRAGMA).
 */
#include "catalog.h"

#include "guard.h"
#include "msg.h"

#include <ctype.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS backupset("
    " backup_set_id INTEGER PRIMARY KEY,"
    " backup_set_uuid TEXT NOT NULL,"
    " media_set_id INTEGER NOT NULL,"
    " name TEXT, description TEXT,"
    " database_name TEXT NOT NULL,"
    " server_name TEXT,"
    " type TEXT NOT NULL,"
    " backup_start_date TEXT, backup_finish_date TEXT,"
    " backup_size INTEGER, compressed_backup_size INTEGER,"
    " first_lsn NUMERIC, last_lsn NUMERIC, checkpoint_lsn NUMERIC,"
    " database_backup_lsn NUMERIC, differential_base_lsn NUMERIC,"
    " is_copy_only INTEGER NOT NULL, has_backup_checksums INTEGER NOT NULL,"
    " family_count INTEGER NOT NULL, software_name TEXT,"
    " family_guid TEXT, differential_base_guid TEXT, recovery_model TEXT,"
    " key_algorithm TEXT, encryptor_thumbprint TEXT, encryptor_type TEXT);"
    "CREATE TABLE IF NOT EXISTS backupmediafamily("
    " media_set_id INTEGER NOT NULL,"
    " family_sequence_number INTEGER NOT NULL,"
    " logical_device_name TEXT, physical_device_name TEXT NOT NULL,"
    " device_type INTEGER NOT NULL,"
    " PRIMARY KEY(media_set_id, family_sequence_number));"
    /* The instance's own state of each database it knows (dbstate.h). */
    "CREATE TABLE IF NOT EXISTS databases("
    " name TEXT PRIMARY KEY, family_guid TEXT NOT NULL,"
    " recovery_model TEXT NOT NULL, base_lsn INTEGER, base_guid TEXT,"
    " log_lsn INTEGER, lsn_floor INTEGER);"
    "CREATE TABLE IF NOT EXISTS restoring("
    " name TEXT PRIMARY KEY, family_guid TEXT NOT NULL,"
    " recovery_model TEXT NOT NULL, lsn INTEGER NOT NULL,"
    " last_guid TEXT NOT NULL, base_guid TEXT, time_ms INTEGER NOT NULL,"
    " page_size INTEGER NOT NULL, state TEXT NOT NULL);"
    /* The instance's certificates (certs.h), as sys.certificates. */
    "CREATE TABLE IF NOT EXISTS certificates("
    " name TEXT PRIMARY KEY, certificate_id INTEGER NOT NULL UNIQUE,"
    " principal_id INTEGER, key_length INTEGER,"
    " pvt_key_encryption_type TEXT, pvt_key_encryption_type_desc TEXT,"
    " is_active_for_begin_dialog INTEGER, issuer_name TEXT,"
    " cert_serial_number TEXT, subject TEXT, expiry_date TEXT,"
    " start_date TEXT, thumbprint TEXT NOT NULL UNIQUE,"
    " pvt_key_last_backup_date TEXT);";

static int cat_fail(vmsg *err, sqlite3 *db, const char *what) {
  vmsg_set(err, 3009,
           "Could not insert a backup or restore history/detail record in "
           "the msdb database (%s: %s). This may indicate a problem with the "
           "msdb database. The backup/restore operation was still "
           "successful.",
           what, db ? sqlite3_errmsg(db) : "cannot open the catalog");
  return -1;
}

sqlite3 *catalog_open(const char *inst_dir) {
  char dir[PATH_MAX], path[PATH_MAX + 16];
  if (guard_private_dir(inst_dir, NULL, dir, sizeof dir) != 0) return NULL;
  snprintf(path, sizeof path, "%s/catalog.db", dir);
  /* SQLite would create it 0644 (less the umask); it is the instance's. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return NULL;
  close(fd);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOFOLLOW,
                      NULL) != SQLITE_OK ||
      sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
      sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return NULL;
  }
  /* A catalog from before encrypted backups gets their columns (an error
   * here is "duplicate column": the catalog has them). */
  static const char *const added[] = {"key_algorithm", "encryptor_thumbprint",
                                      "encryptor_type"};
  for (int i = 0; i < 3; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "ALTER TABLE backupset ADD COLUMN %s TEXT",
             added[i]);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
  }
  return db;
}

static void iso(int64_t t, char *out, size_t n) {
  struct tm tm;
  time_t tt = (time_t)t;
  localtime_r(&tt, &tm);
  strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

int catalog_record(const char *inst_dir, const catalog_backup *b, vmsg *err) {
  sqlite3 *db = catalog_open(inst_dir);
  if (!db) return cat_fail(err, NULL, "open");
  char guid[40], start[32], finish[32], type[2] = {b->type, 0};
  vs_format_guid(b->h->set_id, guid);
  iso(b->start, start, sizeof start);
  iso(b->finish, finish, sizeof finish);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_int64 media = 0;
  if (rc == SQLITE_OK) {
    /* One media set per backup: vdisql does not append sets to media. */
    rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO backupset(backup_set_uuid, media_set_id, name, "
        "description, database_name, server_name, type, backup_start_date, "
        "backup_finish_date, backup_size, compressed_backup_size, "
        "is_copy_only, has_backup_checksums, family_count, software_name, "
        "first_lsn, last_lsn, checkpoint_lsn, database_backup_lsn, "
        "differential_base_lsn, family_guid, differential_base_guid, "
        "recovery_model, key_algorithm, encryptor_thumbprint, "
        "encryptor_type) "
        "VALUES(?1, (SELECT coalesce(max(media_set_id), 0) + 1 FROM "
        "backupset), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "'openvdi vdisql', ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, "
        "?24) "
        "RETURNING media_set_id",
        -1, &st, NULL);
  }
  if (rc == SQLITE_OK) {
    const vs_header *h = b->h;
    sqlite3_bind_text(st, 1, guid, -1, SQLITE_TRANSIENT);
    if (h->name[0]) sqlite3_bind_text(st, 2, h->name, -1, SQLITE_TRANSIENT);
    if (h->description[0])
      sqlite3_bind_text(st, 3, h->description, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, h->database, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, h->server, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, start, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, finish, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)(h->page_count * h->page_size));
    sqlite3_bind_int64(st, 10, (sqlite3_int64)b->bytes);
    sqlite3_bind_int(st, 11, (h->flags & VS_F_COPY_ONLY) != 0);
    sqlite3_bind_int(st, 12, (h->flags & VS_F_CHECKSUM) != 0);
    sqlite3_bind_int(st, 13, b->ndev);
    static const uint8_t zero[16];
    char fam[40], dbase[40];
    if (h->first_lsn) {
      sqlite3_bind_int64(st, 14, (sqlite3_int64)h->first_lsn);
      sqlite3_bind_int64(st, 15, (sqlite3_int64)h->last_lsn);
      sqlite3_bind_int64(st, 16, (sqlite3_int64)h->checkpoint_lsn);
    }
    if (h->database_backup_lsn)
      sqlite3_bind_int64(st, 17, (sqlite3_int64)h->database_backup_lsn);
    if (h->diff_base_lsn)
      sqlite3_bind_int64(st, 18, (sqlite3_int64)h->diff_base_lsn);
    if (memcmp(h->family_id, zero, 16) != 0) {
      vs_format_guid(h->family_id, fam);
      sqlite3_bind_text(st, 19, fam, -1, SQLITE_TRANSIENT);
    }
    if (memcmp(h->diff_base_id, zero, 16) != 0) {
      vs_format_guid(h->diff_base_id, dbase);
      sqlite3_bind_text(st, 20, dbase, -1, SQLITE_TRANSIENT);
    }
    if (h->recovery)
      sqlite3_bind_text(st, 21,
                        h->recovery == VS_RECOVERY_FULL ? "FULL" : "SIMPLE", -1,
                        SQLITE_STATIC);
    char thumb[48];
    if (h->flags & VS_F_ENCRYPTED) {
      vs_format_thumbprint(h->enc_thumbprint, thumb);
      sqlite3_bind_text(st, 22, vs_enc_name(h->enc_algorithm), -1,
                        SQLITE_STATIC);
      sqlite3_bind_text(st, 23, thumb, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 24, "CERTIFICATE", -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(st) == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
    if (rc == SQLITE_OK) media = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
  }
  for (int i = 0; rc == SQLITE_OK && i < b->ndev; i++) {
    char phys[PATH_MAX + 300], abs_dir[PATH_MAX];
    /* As SQL Server records it: the full path of a disk file. */
    if (b->device_type == 2 && b->devices[i][0] != '/')
      snprintf(phys, sizeof phys, "%s/%s",
               realpath(inst_dir, abs_dir) ? abs_dir : inst_dir, b->devices[i]);
    else
      snprintf(phys, sizeof phys, "%s", b->devices[i]);
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO backupmediafamily VALUES(?1, ?2, "
                            "NULL, ?3, ?4)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, media);
      sqlite3_bind_int(st, 2, i + 1);
      sqlite3_bind_text(st, 3, phys, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(st, 4, b->device_type);
      rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    cat_fail(err, db, "insert");
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    return -1;
  }
  sqlite3_close(db);
  return 0;
}

/* Queries may read the history tables, call functions, and nothing more. */
static int authorize(void *ctx, int op, const char *a, const char *b,
                     const char *c, const char *d) {
  (void)ctx, (void)b, (void)c, (void)d;
  switch (op) {
  case SQLITE_SELECT:
  case SQLITE_FUNCTION:
  case SQLITE_RECURSIVE:
    return SQLITE_OK;
  case SQLITE_READ:
    return a && (strcmp(a, "backupset") == 0 ||
                 strcmp(a, "backupmediafamily") == 0 ||
                 strcmp(a, "certificates") == 0)
               ? SQLITE_OK
               : SQLITE_DENY;
  default:
    return SQLITE_DENY;
  }
}

/* T-SQL spellings SQLite does not take: msdb.dbo.X and msdb..X name the
 * tables, N'...' is a string, SELECT TOP n ... is LIMIT n. */
static char *rewrite(const char *in) {
  size_t n = strlen(in);
  char *out = malloc(n + 32), *o = out;
  long top = -1;
  if (!out) return NULL;
  const char *p = in;
  while (isspace((unsigned char)*p))
    p++;
  if (strncasecmp(p, "SELECT", 6) == 0) {
    memcpy(o, p, 6);
    o += 6;
    p += 6;
    const char *q = p;
    while (isspace((unsigned char)*q))
      q++;
    if (strncasecmp(q, "TOP", 3) == 0 && isspace((unsigned char)q[3])) {
      char *end;
      q += 3;
      while (isspace((unsigned char)*q) || *q == '(')
        q++;
      top = strtol(q, &end, 10);
      if (end != q && top >= 0) {
        p = end;
        while (isspace((unsigned char)*p) || *p == ')')
          p++;
        *o++ = ' ';
      } else {
        top = -1;
      }
    }
  }
  char quote = 0;
  while (*p) {
    if (!quote && (*p == '\'' || *p == '"')) {
      quote = *p;
    } else if (quote && *p == quote) {
      quote = 0;
    } else if (!quote) {
      if (strncasecmp(p, "msdb.dbo.", 9) == 0) {
        p += 9;
        continue;
      }
      if (strncasecmp(p, "msdb..", 6) == 0) {
        p += 6;
        continue;
      }
      /* sys.certificates (also master.sys. and master..). */
      static const char *const certs[] = {"master.sys.certificates",
                                          "master..certificates",
                                          "sys.certificates"};
      int hit = 0;
      for (int k = 0; k < 3 && !hit; k++) {
        size_t kl = strlen(certs[k]);
        if (strncasecmp(p, certs[k], kl) == 0 &&
            !isalnum((unsigned char)p[kl]) && p[kl] != '_' &&
            (p == in || !isalnum((unsigned char)p[-1]))) {
          p += kl - strlen("certificates");
          hit = 1;
        }
      }
      if (hit) continue;
      if ((*p == 'N' || *p == 'n') && p[1] == '\'' &&
          (p == in || !isalnum((unsigned char)p[-1]))) {
        p++;
        continue;
      }
    }
    *o++ = *p++;
  }
  while (o > out && (isspace((unsigned char)o[-1]) || o[-1] == ';'))
    o--;
  *o = 0;
  if (top >= 0) {
    char *r = NULL;
    if (asprintf(&r, "%s LIMIT %ld", out, top) < 0) r = NULL;
    free(out);
    return r;
  }
  return out;
}

static void sqlite_to_msg(vmsg *err, sqlite3 *db) {
  const char *m = sqlite3_errmsg(db);
  if (strncmp(m, "no such table: ", 15) == 0)
    vmsg_set(err, 208, "Invalid object name '%s'.", m + 15);
  else if (strncmp(m, "no such column: ", 16) == 0)
    vmsg_set(err, 207, "Invalid column name '%s'.", m + 16);
  else if (strstr(m, "not authorized") || strstr(m, "prohibited"))
    vmsg_set(err, 229,
             "The permission was denied: vdisql answers SELECT statements "
             "that read msdb.dbo.backupset and msdb.dbo.backupmediafamily, "
             "and nothing else.");
  else
    vmsg_setl(err, 102, 15, 0, "Incorrect syntax in the query: %s.", m);
}

/* msdb's types of the columns a query can read, for TDS clients. */
static const struct {
  const char *table, *column, *type;
} msdb_types[] = {
    {"backupset", "backup_set_id", "int"},
    {"backupset", "backup_set_uuid", "uniqueidentifier"},
    {"backupset", "media_set_id", "int"},
    {"backupset", "name", "nvarchar(128)"},
    {"backupset", "description", "nvarchar(255)"},
    {"backupset", "database_name", "nvarchar(128)"},
    {"backupset", "server_name", "nvarchar(128)"},
    {"backupset", "type", "nvarchar(1)"},
    {"backupset", "backup_start_date", "datetime"},
    {"backupset", "backup_finish_date", "datetime"},
    {"backupset", "backup_size", "numeric(20,0)"},
    {"backupset", "compressed_backup_size", "numeric(20,0)"},
    {"backupset", "first_lsn", "numeric(25,0)"},
    {"backupset", "last_lsn", "numeric(25,0)"},
    {"backupset", "checkpoint_lsn", "numeric(25,0)"},
    {"backupset", "database_backup_lsn", "numeric(25,0)"},
    {"backupset", "differential_base_lsn", "numeric(25,0)"},
    {"backupset", "is_copy_only", "bit"},
    {"backupset", "has_backup_checksums", "bit"},
    {"backupset", "family_count", "tinyint"},
    {"backupset", "software_name", "nvarchar(128)"},
    {"backupset", "family_guid", "uniqueidentifier"},
    {"backupset", "differential_base_guid", "uniqueidentifier"},
    {"backupset", "recovery_model", "nvarchar(60)"},
    {"backupmediafamily", "media_set_id", "int"},
    {"backupmediafamily", "family_sequence_number", "tinyint"},
    {"backupmediafamily", "logical_device_name", "nvarchar(128)"},
    {"backupmediafamily", "physical_device_name", "nvarchar(260)"},
    {"backupmediafamily", "device_type", "tinyint"},
};

/* The type of result column @p i: msdb's for a column of a table, an
 * integer for an integer expression (int for COUNT, as SQL Server),
 * else NULL (nvarchar).  @p has_row: the first row is there to look at. */
static const char *column_type(sqlite3_stmt *st, int i, int has_row) {
  const char *t = sqlite3_column_table_name(st, i);
  const char *c = sqlite3_column_origin_name(st, i);
  if (t && c) {
    for (size_t k = 0; k < sizeof msdb_types / sizeof msdb_types[0]; k++)
      if (!strcmp(t, msdb_types[k].table) && !strcmp(c, msdb_types[k].column))
        return msdb_types[k].type;
    return NULL;
  }
  if (has_row && sqlite3_column_type(st, i) == SQLITE_INTEGER)
    return strncasecmp(sqlite3_column_name(st, i), "count(", 6) == 0 ? "int"
                                                                     : "bigint";
  return NULL;
}

int catalog_select(const char *inst_dir, const char *sql, const char *colsep,
                   int headers, vmsg *err) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/.vdisql/catalog.db", inst_dir);
  sqlite3 *db = NULL;
  /* A new instance has no catalog yet: create it, so that its query says
   * "0 rows" rather than an error. */
  if (access(path, F_OK) != 0) sqlite3_close(catalog_open(inst_dir));
  char *q = rewrite(sql);
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (q &&
      sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW,
                      NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 10000);
    sqlite3_set_authorizer(db, authorize, NULL);
    const char *tail = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &st, &tail) != SQLITE_OK) {
      sqlite_to_msg(err, db);
    } else if (!st || !sqlite3_stmt_readonly(st) ||
               (tail && strspn(tail, " \t\r\n;") != strlen(tail))) {
      vmsg_setl(err, 102, 15, 0,
                "Incorrect syntax: one SELECT statement per batch.");
    } else {
      int nc = sqlite3_column_count(st);
      const char **v = calloc((size_t)nc + 1, sizeof *v);
      const char **ty = calloc((size_t)nc + 1, sizeof *ty);
      if (!v || !ty) {
        vmsg_set(err, 701, "There is insufficient memory to run this query.");
      } else {
        /* The first row first: an expression's type is its value's. */
        int s = sqlite3_step(st);
        for (int i = 0; i < nc; i++) {
          v[i] = sqlite3_column_name(st, i);
          ty[i] = column_type(st, i, s == SQLITE_ROW);
        }
        out_columns(colsep, headers, nc, v, ty);
        long rows = 0;
        for (; s == SQLITE_ROW; s = sqlite3_step(st)) {
          for (int i = 0; i < nc; i++)
            v[i] = (const char *)sqlite3_column_text(st, i);
          out_row(colsep, nc, v);
          rows++;
        }
        if (s == SQLITE_DONE) {
          out_rows_done(rows);
          rc = 0;
        } else {
          sqlite_to_msg(err, db);
        }
        free(ty);
        free(v);
      }
    }
  } else {
    vmsg_set(err, 3634, "The backup history of '%s' cannot be opened.",
             inst_dir);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(q);
  return rc;
}
