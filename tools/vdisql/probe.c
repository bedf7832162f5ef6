/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.c - the statements client drivers send around their work, which a
 * backup engine must answer the way SQL Server does (see exec.h):
 *
 *   SET option value ...          accepted (vdisql has no such settings)
 *   USE db                        the session's database (ENVCHANGE)
 *   BEGIN TRAN | COMMIT | ROLLBACK, IF @@TRANCOUNT > 0 COMMIT|ROLLBACK
 *                                 counted, so that a BACKUP inside one is
 *                                 refused (Msg 3021) as SQL Server does
 *   SELECT item [AS name], ...    items: @@VERSION, @@SPID, @@SERVERNAME,
 *                                 @@TRANCOUNT, @@LANGUAGE, @@MAX_PRECISION,
 *                                 SERVERPROPERTY('...'), DB_NAME(),
 *                                 SUSER_SNAME(), USER_NAME(), numbers and
 *                                 strings
 *
 * A batch that holds anything else is not a probe batch and goes to the
 * parser whole (so BACKUP statements keep SQL Server's all-or-nothing
 * parse).  vdisql reports itself as SQL Server 2022 (16.0): drivers and
 * backup products choose their features from that version.
 */
#include "exec.h"

#include "lexer.h"
#include "msg.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PRODUCT_VERSION "16.0.1000.6"

/* SET options SQL Server knows that drivers send; another name is not a
 * probe (the parser then reports the batch's syntax). */
static const char *const set_options[] = {"ANSI_DEFAULTS",
                                          "ANSI_NULL_DFLT_OFF",
                                          "ANSI_NULL_DFLT_ON",
                                          "ANSI_NULLS",
                                          "ANSI_PADDING",
                                          "ANSI_WARNINGS",
                                          "ARITHABORT",
                                          "ARITHIGNORE",
                                          "CONCAT_NULL_YIELDS_NULL",
                                          "CONTEXT_INFO",
                                          "CURSOR_CLOSE_ON_COMMIT",
                                          "DATEFIRST",
                                          "DATEFORMAT",
                                          "DEADLOCK_PRIORITY",
                                          "FMTONLY",
                                          "IMPLICIT_TRANSACTIONS",
                                          "LANGUAGE",
                                          "LOCK_TIMEOUT",
                                          "NOCOUNT",
                                          "NOEXEC",
                                          "NO_BROWSETABLE",
                                          "NUMERIC_ROUNDABORT",
                                          "QUERY_GOVERNOR_COST_LIMIT",
                                          "QUOTED_IDENTIFIER",
                                          "ROWCOUNT",
                                          "STATISTICS",
                                          "TEXTSIZE",
                                          "TRANSACTION",
                                          "XACT_ABORT",
                                          NULL};

typedef struct pstate {
  const toklist *tl;
  size_t i;
} pstate;

static const tok *at(const pstate *p, long k) {
  size_t j = (size_t)((long)p->i + k);
  return j < p->tl->n ? &p->tl->v[j] : &p->tl->v[p->tl->n - 1];
}
static int punct(const tok *t, char c) {
  return t->kind == T_PUNCT && t->text[0] == c;
}
static int starts_stmt(const tok *t) {
  static const char *const kw[] = {"SET",    "SELECT",   "USE", "BEGIN",
                                   "COMMIT", "ROLLBACK", "IF",  NULL};
  if (t->kind == T_END || punct(t, ';')) return 1;
  for (int i = 0; kw[i]; i++)
    if (tok_is(t, kw[i])) return 1;
  return 0;
}
static int in_list(const tok *t, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (tok_is(t, list[i])) return 1;
  return 0;
}

/* One SELECT item's value; *type its SQL Server type (NULL: nvarchar). */
static int item_value(const exec_ctx *cx, pstate *p, char *val, size_t n,
                      int *is_null, const char **type) {
  const tok *t = at(p, 0);
  session_vars *v = cx->vars;
  *is_null = 0;
  *type = NULL;
  if (t->kind == T_NUM) {
    *type = t->num > 2147483647ull ? "numeric(19,0)" : "int";
    snprintf(val, n, "%llu", (unsigned long long)t->num);
    p->i++;
    return 0;
  }
  if (t->kind == T_STR) {
    snprintf(val, n, "%s", t->text);
    p->i++;
    return 0;
  }
  /* The lexer keeps @ in words: @@VERSION is one token. */
  if (t->kind == T_WORD && !strncmp(t->text, "@@", 2)) {
    const char *w = t->text + 2;
    if (!strcasecmp(w, "VERSION"))
      snprintf(val, n,
               "Microsoft SQL Server 2022 (RTM) - " PRODUCT_VERSION
               " (X64)\n\topenvdi vdisql on Linux (SQLite %s)",
               sqlite3_libversion());
    else if (!strcasecmp(w, "SPID")) {
      snprintf(val, n, "%ld", v ? v->spid : (long)getpid());
      *type = "smallint";
    } else if (!strcasecmp(w, "SERVERNAME"))
      snprintf(val, n, "%s", cx->server);
    else if (!strcasecmp(w, "TRANCOUNT")) {
      snprintf(val, n, "%d", v ? v->trancount : 0);
      *type = "int";
    } else if (!strcasecmp(w, "LANGUAGE"))
      snprintf(val, n, "us_english");
    else if (!strcasecmp(w, "MAX_PRECISION")) {
      snprintf(val, n, "38");
      *type = "tinyint";
    } else
      return -1;
    p->i++;
    return 0;
  }
  if (t->kind == T_WORD && punct(at(p, 1), '(')) {
    if (tok_is(t, "SERVERPROPERTY") && at(p, 2)->kind == T_STR &&
        punct(at(p, 3), ')')) {
      const char *k = at(p, 2)->text;
      if (!strcasecmp(k, "ProductVersion"))
        snprintf(val, n, PRODUCT_VERSION);
      else if (!strcasecmp(k, "ProductMajorVersion"))
        snprintf(val, n, "16");
      else if (!strcasecmp(k, "ProductLevel"))
        snprintf(val, n, "RTM");
      else if (!strcasecmp(k, "Edition"))
        snprintf(val, n, "Developer Edition (64-bit)");
      else if (!strcasecmp(k, "EngineEdition"))
        snprintf(val, n, "3");
      else if (!strcasecmp(k, "ServerName") || !strcasecmp(k, "MachineName"))
        snprintf(val, n, "%s", cx->server);
      else if (!strcasecmp(k, "IsClustered") ||
               !strcasecmp(k, "IsHadrEnabled") ||
               !strcasecmp(k, "IsIntegratedSecurityOnly"))
        snprintf(val, n, "0");
      else if (!strcasecmp(k, "InstanceDefaultDataPath") ||
               !strcasecmp(k, "InstanceDefaultLogPath") ||
               !strcasecmp(k, "InstanceDefaultBackupPath")) {
        /* Where a client should put files: databases live in the
         * instance directory, backups in the first backup directory. */
        char real[PATH_MAX];
        const char *d = cx->inst_dir;
        if (k[15] == 'B' && cx->backup_dirs && cx->backup_dirs[0])
          d = cx->backup_dirs[0];
        snprintf(val, n, "%.*s/", (int)n - 2, realpath(d, real) ? real : d);
      } else if (!strcasecmp(k, "Collation"))
        snprintf(val, n, "SQL_Latin1_General_CP1_CI_AS");
      else
        *is_null = 1; /* SQL Server: NULL for a name it does not know */
      p->i += 4;
      return 0;
    }
    if (punct(at(p, 2), ')')) {
      if (tok_is(t, "DB_NAME"))
        snprintf(val, n, "%s", v ? v->db : "master");
      else if (tok_is(t, "SUSER_SNAME") || tok_is(t, "SUSER_NAME"))
        snprintf(val, n, "sa");
      else if (tok_is(t, "USER_NAME"))
        snprintf(val, n, "dbo");
      else
        return -1;
      p->i += 3;
      return 0;
    }
  }
  return -1;
}

#define MAX_ITEMS 16

/* SELECT item [[AS] name], ...: the result set, or -1 if not a probe. */
static int probe_select(const exec_ctx *cx, pstate *p, int run) {
  char vals[MAX_ITEMS][512], names[MAX_ITEMS][129];
  const char *vp[MAX_ITEMS], *np[MAX_ITEMS], *tp[MAX_ITEMS];
  int n = 0;
  p->i++; /* SELECT */
  for (;;) {
    int is_null;
    if (n == MAX_ITEMS ||
        item_value(cx, p, vals[n], sizeof vals[n], &is_null, &tp[n]) != 0)
      return -1;
    vp[n] = is_null ? NULL : vals[n];
    names[n][0] = 0; /* SQL Server names an expression nothing */
    const tok *t = at(p, 0);
    if (tok_is(t, "AS")) t = at(p, 1), p->i++;
    if ((t->kind == T_WORD && !starts_stmt(t) && !tok_is(t, "FROM")) ||
        t->kind == T_QID || t->kind == T_STR) {
      snprintf(names[n], sizeof names[n], "%s", t->text);
      p->i++;
    } else if (tok_is(at(p, -1), "AS")) {
      return -1;
    }
    np[n] = names[n];
    n++;
    if (!punct(at(p, 0), ',')) break;
    p->i++;
  }
  if (!starts_stmt(at(p, 0))) return -1; /* FROM ...: a query */
  if (run) {
    out_columns(cx->colsep, cx->headers, n, np, tp);
    out_row(cx->colsep, n, vp);
    out_rows_done(1);
  }
  return 0;
}

static int db_known(const exec_ctx *cx, const char *db) {
  static const char *const sys[] = {"master", "msdb", "model", "tempdb", NULL};
  for (int i = 0; sys[i]; i++)
    if (!strcasecmp(db, sys[i])) return 1;
  char path[PATH_MAX + 200];
  snprintf(path, sizeof path, "%s/%s.db", cx->inst_dir, db);
  return access(path, F_OK) == 0;
}

/* The words after TRAN / TRANSACTION / WORK and a name, if any. */
static void skip_tran_words(pstate *p) {
  if (tok_is(at(p, 0), "TRAN") || tok_is(at(p, 0), "TRANSACTION") ||
      tok_is(at(p, 0), "WORK")) {
    p->i++;
    if ((at(p, 0)->kind == T_WORD && !starts_stmt(at(p, 0))) ||
        at(p, 0)->kind == T_QID)
      p->i++;
  }
}

/* One statement; @return 0 ok, 1 it failed (message sent), -1 not a
 * probe.  With @p run 0 only the shape is checked. */
static int probe_stmt(const exec_ctx *cx, pstate *p, int run) {
  const tok *t = at(p, 0);
  session_vars *v = cx->vars;
  if (tok_is(t, "SET")) {
    if (!in_list(at(p, 1), set_options)) return -1;
    p->i += 2;
    size_t start = p->i;
    while (!starts_stmt(at(p, 0)))
      p->i++;
    return p->i > start || tok_is(at(p, -1), "TRANSACTION") ? 0 : -1;
  }
  if (tok_is(t, "USE")) {
    const tok *d = at(p, 1);
    if (d->kind != T_WORD && d->kind != T_QID) return -1;
    p->i += 2;
    if (!run) return 0;
    if (!db_known(cx, d->text)) {
      out_msg(911, 16, t->line,
              "Database '%s' does not exist. Make sure that the name is "
              "entered correctly.",
              d->text);
      return 1;
    }
    if (v) snprintf(v->db, sizeof v->db, "%s", d->text);
    out_info(5701, "Changed database context to '%s'.", d->text);
    return 0;
  }
  if (tok_is(t, "BEGIN")) {
    p->i++;
    if (!tok_is(at(p, 0), "TRAN") && !tok_is(at(p, 0), "TRANSACTION"))
      return -1;
    skip_tran_words(p);
    if (run && v) v->trancount++;
    return 0;
  }
  if (tok_is(t, "COMMIT") || tok_is(t, "ROLLBACK")) {
    int commit = tok_is(t, "COMMIT");
    p->i++;
    skip_tran_words(p);
    if (!run) return 0;
    if (!v || v->trancount == 0) {
      out_msg(commit ? 3902 : 3903, 16, t->line,
              "The %s TRANSACTION request has no corresponding BEGIN "
              "TRANSACTION.",
              commit ? "COMMIT" : "ROLLBACK");
      return 1;
    }
    v->trancount = commit ? v->trancount - 1 : 0;
    return 0;
  }
  if (tok_is(t, "IF")) {
    /* IF @@TRANCOUNT > 0 COMMIT|ROLLBACK [TRAN] */
    if (!tok_is(at(p, 1), "@@TRANCOUNT") || !punct(at(p, 2), '>') ||
        at(p, 3)->kind != T_NUM || at(p, 3)->num != 0 ||
        !(tok_is(at(p, 4), "COMMIT") || tok_is(at(p, 4), "ROLLBACK")))
      return -1;
    int commit = tok_is(at(p, 4), "COMMIT");
    p->i += 5;
    skip_tran_words(p);
    if (run && v && v->trancount > 0)
      v->trancount = commit ? v->trancount - 1 : 0;
    return 0;
  }
  if (tok_is(t, "SELECT")) return probe_select(cx, p, run);
  return -1;
}

/* Walk the batch: with @p run 0, 0 if all of it is probes. */
static int walk(const exec_ctx *cx, const toklist *tl, int run, int *failed) {
  pstate p = {tl, 0};
  int any = 0;
  while (at(&p, 0)->kind != T_END) {
    if (punct(at(&p, 0), ';')) {
      p.i++;
      continue;
    }
    int rc = probe_stmt(cx, &p, run);
    if (rc < 0) return -1;
    if (rc > 0) (*failed)++;
    any = 1;
  }
  return any ? 0 : -1;
}

int probe_batch(const exec_ctx *cx, const toklist *tl, int *failed) {
  int none = 0;
  if (walk(cx, tl, 0, &none) != 0) return 0;
  *failed = 0;
  walk(cx, tl, 1, failed);
  return 1;
}
