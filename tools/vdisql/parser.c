/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parser.c - recursive-descent parser for vdisql's BACKUP / RESTORE
 * statements (see parser.h).  Option checks that need no I/O happen here,
 * so a bad statement is refused before any device is touched.
 */
#include "parser.h"

#include "vstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct pstate {
  const toklist *tl;
  size_t i;
  vmsg *err;
} pstate;

static const tok *cur(pstate *ps) {
  return &ps->tl->v[ps->i];
}
static const tok *next(pstate *ps) {
  const tok *t = cur(ps);
  if (t->kind != T_END) ps->i++;
  return t;
}
static int is_punct(const tok *t, char c) {
  return t->kind == T_PUNCT && t->text[0] == c;
}

static int syntax(pstate *ps, const tok *t) {
  if (t->kind == T_END)
    vmsg_setl(ps->err, 102, 15, t->line,
              "Incorrect syntax near the end of the batch.");
  else
    vmsg_setl(ps->err, 102, 15, t->line, "Incorrect syntax near '%s'.",
              t->text);
  return -1;
}

static int expect_punct(pstate *ps, char c) {
  if (!is_punct(cur(ps), c)) return syntax(ps, cur(ps));
  next(ps);
  return 0;
}

/* Msg 103 for an identifier over SQL Server's 128 bytes (or @p outsz). */
static int too_long(pstate *ps, const tok *t, size_t outsz) {
  size_t len = strlen(t->text);
  if (len <= 128 && len < outsz) return 0;
  vmsg_setl(ps->err, 103, 15, t->line,
            "The identifier that starts with '%.128s' is too long. Maximum "
            "length is 128.",
            t->text);
  return -1;
}

/* A database name: word, [bracketed], "quoted" or 'quoted'. */
static int parse_name(pstate *ps, char *out, size_t outsz) {
  const tok *t = cur(ps);
  if (t->kind != T_WORD && t->kind != T_QID && t->kind != T_STR)
    return syntax(ps, t);
  if (t->text[0] == 0) return syntax(ps, t);
  if (too_long(ps, t, outsz)) return -1;
  /* The name becomes a file name in the instance directory, and names
   * starting with '.' there are the instance's own. */
  int bad = t->text[0] == '.' || strchr(t->text, '/') != NULL;
  for (const char *c = t->text; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) bad = 1;
  if (bad) {
    vmsg_setl(ps->err, 5105, 16, t->line,
              "A file activation error occurred. The physical file name "
              "'%s.db' may be incorrect: a vdisql database is the file "
              "<name>.db in the instance directory, so its name cannot "
              "contain '/' or control characters, or start with '.'.",
              t->text);
    return -1;
  }
  snprintf(out, outsz, "%s", t->text);
  next(ps);
  return 0;
}

static int parse_devices(pstate *ps, stmt *s) {
  for (;;) {
    const tok *t = next(ps);
    int kind;
    if (tok_is(t, "DISK"))
      kind = DEV_DISK;
    else if (tok_is(t, "VIRTUAL_DEVICE"))
      kind = DEV_VIRTUAL;
    else if (tok_is(t, "TAPE") || tok_is(t, "URL")) {
      vmsg_setl(ps->err, 3032, 16, t->line,
                "Backup device type %s is not supported by vdisql; use DISK "
                "or VIRTUAL_DEVICE.",
                t->text);
      return -1;
    } else
      return syntax(ps, t);
    if (expect_punct(ps, '=')) return -1;
    const tok *v = next(ps);
    if (v->kind != T_STR || v->text[0] == 0) return syntax(ps, v);
    if (s->ndev > 0 && kind != s->dev_kind) {
      vmsg_setl(ps->err, 3032, 16, t->line,
                "DISK and VIRTUAL_DEVICE cannot be mixed in one statement.");
      return -1;
    }
    if (s->ndev == MAX_DEVICES) {
      vmsg_setl(ps->err, 3205, 16, t->line,
                "Too many backup devices specified for backup or restore; "
                "only %d are allowed.",
                MAX_DEVICES);
      return -1;
    }
    s->dev_kind = kind;
    s->dev[s->ndev] = strdup(v->text);
    if (!s->dev[s->ndev]) return syntax(ps, v);
    s->ndev++;
    if (!is_punct(cur(ps), ',')) return 0;
    next(ps);
  }
}

/* Options that SQL Server knows but that mean nothing for SQLite. */
static const char *const unsupported[] = {"STANDBY",
                                          "CONTINUE_AFTER_ERROR",
                                          "PARTIAL",
                                          "MEDIANAME",
                                          "MEDIADESCRIPTION",
                                          "MEDIAPASSWORD",
                                          "PASSWORD",
                                          "EXPIREDATE",
                                          "RETAINDAYS",
                                          "SKIP",
                                          "NOSKIP",
                                          "REWIND",
                                          "NOREWIND",
                                          "UNLOAD",
                                          "NOUNLOAD",
                                          "RESTRICTED_USER",
                                          "KEEP_REPLICATION",
                                          "KEEP_CDC",
                                          "STOPATMARK",
                                          "STOPBEFOREMARK",
                                          "CREDENTIAL",
                                          "FILESTREAM",
                                          "NEW_BROKER",
                                          "ENABLE_BROKER",
                                          "ERROR_BROKER_CONVERSATIONS",
                                          "LOADHISTORY",
                                          "SNAPSHOT",
                                          "METADATA_ONLY",
                                          "DBO_ONLY",
                                          "NO_LOG",
                                          "TRUNCATE_ONLY",
                                          "BACKUP_OPTIONS",
                                          "RESTORE_OPTIONS",
                                          NULL};

enum { O_BACKUP = 1, O_RESTORE = 2, O_INFO = 4, O_ALL = 7 };

static int parse_string(pstate *ps, char *out, size_t outsz, const char *opt);

/* A certificate's name: word or [bracketed], up to 128 bytes. */
static int parse_ident(pstate *ps, char *out, size_t outsz) {
  const tok *t = cur(ps);
  if ((t->kind != T_WORD && t->kind != T_QID) || t->text[0] == 0)
    return syntax(ps, t);
  if (too_long(ps, t, outsz)) return -1;
  snprintf(out, outsz, "%s", t->text);
  next(ps);
  return 0;
}

/* The next token must be the keyword @p kw. */
static int expect_word(pstate *ps, const char *kw) {
  if (!tok_is(cur(ps), kw)) return syntax(ps, cur(ps));
  next(ps);
  return 0;
}

/* = 'string', into a new copy at *out. */
static int parse_strdup(pstate *ps, char **out) {
  if (expect_punct(ps, '=')) return -1;
  const tok *v = next(ps);
  if (v->kind != T_STR) return syntax(ps, v);
  free(*out);
  *out = strdup(v->text);
  if (!*out) {
    vmsg_set(ps->err, 701, "There is insufficient system memory.");
    return -1;
  }
  return 0;
}

/* After an item of a list: 1 (and past it) at a ',', else 0. */
static int more_items(pstate *ps) {
  if (!is_punct(cur(ps), ',')) return 0;
  next(ps);
  return 1;
}

/* ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = name), the two in
 * either order. */
static int parse_encryption(pstate *ps, stmt *s) {
  if (expect_punct(ps, '(')) return -1;
  int have_alg = 0;
  do {
    const tok *t = next(ps);
    if (tok_is(t, "ALGORITHM")) {
      if (expect_punct(ps, '=')) return -1;
      const tok *a = next(ps);
      if (tok_is(a, "AES_128"))
        s->enc_alg = VS_ENC_AES_128;
      else if (tok_is(a, "AES_192"))
        s->enc_alg = VS_ENC_AES_192;
      else if (tok_is(a, "AES_256"))
        s->enc_alg = VS_ENC_AES_256;
      else if (tok_is(a, "TRIPLE_DES_3KEY")) {
        vmsg_setl(ps->err, 3032, 16, a->line,
                  "One or more of the options (ALGORITHM = TRIPLE_DES_3KEY) "
                  "are not supported for this statement: vdisql encrypts "
                  "backups with AES (AES_128, AES_192, AES_256).");
        return -1;
      } else
        return syntax(ps, a);
      have_alg = 1;
    } else if (tok_is(t, "SERVER")) {
      const tok *k = next(ps);
      if (tok_is(k, "ASYMMETRIC")) {
        vmsg_setl(ps->err, 3032, 16, k->line,
                  "One or more of the options (SERVER ASYMMETRIC KEY) are not "
                  "supported for this statement: vdisql encrypts backups "
                  "for a SERVER CERTIFICATE.");
        return -1;
      }
      if (!tok_is(k, "CERTIFICATE")) return syntax(ps, k);
      if (expect_punct(ps, '=') || parse_ident(ps, s->cert, sizeof s->cert))
        return -1;
    } else {
      return syntax(ps, t);
    }
  } while (more_items(ps));
  if (expect_punct(ps, ')')) return -1;
  if (!have_alg || !s->cert[0]) return syntax(ps, cur(ps));
  return 0;
}

/* PRIVATE KEY (FILE = 'k', {DECRYPTION|ENCRYPTION} BY PASSWORD = 'pw'),
 * @p verb the one this statement takes. */
static int parse_private_key(pstate *ps, stmt *s, const char *verb) {
  if (expect_word(ps, "PRIVATE") || expect_word(ps, "KEY") ||
      expect_punct(ps, '('))
    return -1;
  do {
    const tok *t = next(ps);
    if (tok_is(t, "FILE")) {
      if (parse_strdup(ps, &s->key_file)) return -1;
    } else if (tok_is(t, verb)) {
      if (expect_word(ps, "BY") || expect_word(ps, "PASSWORD") ||
          parse_strdup(ps, &s->password))
        return -1;
    } else {
      return syntax(ps, t);
    }
  } while (more_items(ps));
  if (expect_punct(ps, ')')) return -1;
  if (!s->key_file || !s->password) return syntax(ps, cur(ps));
  return 0;
}

/* CREATE MASTER KEY ... | CREATE CERTIFICATE ... */
static int parse_create(pstate *ps, stmt *s) {
  const tok *k = next(ps);
  if (tok_is(k, "MASTER")) {
    s->kind = ST_CREATE_MASTER_KEY;
    if (expect_word(ps, "KEY") || expect_word(ps, "ENCRYPTION") ||
        expect_word(ps, "BY") || expect_word(ps, "PASSWORD") ||
        parse_strdup(ps, &s->password))
      return -1;
    return 0;
  }
  if (!tok_is(k, "CERTIFICATE")) return syntax(ps, k);
  s->kind = ST_CREATE_CERT;
  if (parse_ident(ps, s->cert, sizeof s->cert)) return -1;
  if (tok_is(cur(ps), "FROM")) {
    next(ps);
    if (expect_word(ps, "FILE") || parse_strdup(ps, &s->cert_file)) return -1;
    if (!tok_is(cur(ps), "WITH")) return 0;
    next(ps);
    return parse_private_key(ps, s, "DECRYPTION");
  }
  if (tok_is(cur(ps), "ENCRYPTION")) {
    vmsg_setl(ps->err, 3032, 16, cur(ps)->line,
              "One or more of the options (ENCRYPTION BY PASSWORD) are not "
              "supported for this statement: vdisql encrypts a "
              "certificate's private key by the master key.");
    return -1;
  }
  if (expect_word(ps, "WITH")) return -1;
  do {
    const tok *t = next(ps);
    if (tok_is(t, "SUBJECT")) {
      if (parse_strdup(ps, &s->subject)) return -1;
    } else if (tok_is(t, "START_DATE")) {
      if (parse_string(ps, s->start_date, sizeof s->start_date, "START_DATE"))
        return -1;
    } else if (tok_is(t, "EXPIRY_DATE")) {
      if (parse_string(ps, s->expiry_date, sizeof s->expiry_date,
                       "EXPIRY_DATE"))
        return -1;
    } else {
      return syntax(ps, t);
    }
  } while (more_items(ps));
  if (!s->subject) return syntax(ps, cur(ps));
  return 0;
}

static int parse_number(pstate *ps, uint32_t *out) {
  if (expect_punct(ps, '=')) return -1;
  const tok *v = next(ps);
  if (v->kind != T_NUM) return syntax(ps, v);
  *out = v->num_overflow ? 0xFFFFFFFFu : (uint32_t)v->num;
  if (v->num_overflow || v->num > 0xFFFFFFFFull) *out = 0xFFFFFFFFu;
  return 0;
}

static int parse_string(pstate *ps, char *out, size_t outsz, const char *opt) {
  if (expect_punct(ps, '=')) return -1;
  const tok *v = next(ps);
  if (v->kind != T_STR) return syntax(ps, v);
  if (strlen(v->text) >= outsz) {
    vmsg_setl(ps->err, 3250, 16, v->line,
              "The value for the %s parameter is longer than %zu characters.",
              opt, outsz - 1);
    return -1;
  }
  snprintf(out, outsz, "%s", v->text);
  return 0;
}

static int range(pstate *ps, const tok *t, uint32_t v, uint32_t lo, uint32_t hi,
                 int pow2) {
  if (v < lo || v > hi || (pow2 && (v & (v - 1)) != 0)) {
    vmsg_setl(ps->err, 3250, 16, t->line,
              "The value '%u' is not within range for the %s parameter.", v,
              t->text);
    return -1;
  }
  return 0;
}

/* COMPRESSION (ALGORITHM = ZSTD | MS_XPRESS, LEVEL = LOW | MEDIUM | HIGH),
 * SQL Server 2025's spelling, after the word COMPRESSION.  vdisql's one
 * algorithm is zstd: MS_XPRESS, what older scripts name, gets it too;
 * LEVEL is zstd's effort (stream_zstd_level). */
static int parse_compression(pstate *ps, stmt *s) {
  if (expect_punct(ps, '(')) return -1;
  do {
    const tok *k = next(ps);
    if (k->kind != T_WORD) return syntax(ps, k);
    if (expect_punct(ps, '=')) return -1;
    const tok *v = next(ps);
    if (v->kind != T_WORD) return syntax(ps, v);
    if (tok_is(k, "ALGORITHM")) {
      if (!tok_is(v, "ZSTD") && !tok_is(v, "MS_XPRESS")) {
        vmsg_setl(ps->err, 3032, 16, v->line,
                  "COMPRESSION ALGORITHM = %s is not supported by vdisql: its "
                  "backups are compressed with ZSTD.",
                  v->text);
        return -1;
      }
    } else if (tok_is(k, "LEVEL")) {
      s->comp_level = tok_is(v, "LOW")      ? 1
                      : tok_is(v, "MEDIUM") ? 2
                      : tok_is(v, "HIGH")   ? 3
                                            : 0;
      if (s->comp_level == 0) return syntax(ps, v);
    } else {
      return syntax(ps, k);
    }
  } while (more_items(ps));
  return expect_punct(ps, ')');
}

static int parse_option(pstate *ps, stmt *s, int where) {
  const tok *t = next(ps);
  const char *what = (where == O_BACKUP) ? "BACKUP" : "RESTORE";
  int allowed = 0;
  if (t->kind != T_WORD) return syntax(ps, t);
#define FLAG(kw, field, w)                                                     \
  if (tok_is(t, kw)) {                                                         \
    allowed = (w);                                                             \
    if (!(allowed & where)) goto notopt;                                       \
    s->field = 1;                                                              \
    return 0;                                                                  \
  }
  FLAG("FORMAT", format, O_BACKUP)
  FLAG("NOFORMAT", noformat, O_BACKUP)
  FLAG("INIT", init, O_BACKUP)
  FLAG("NOINIT", noinit, O_BACKUP)
  FLAG("CHECKSUM", checksum, O_ALL)
  FLAG("NO_CHECKSUM", no_checksum, O_ALL)
  FLAG("COPY_ONLY", copy_only, O_BACKUP)
  if (tok_is(t, "COMPRESSION") && is_punct(cur(ps), '(')) {
    if (!(where & O_BACKUP)) goto notopt;
    s->compression = 1;
    return parse_compression(ps, s);
  }
  FLAG("COMPRESSION", compression, O_BACKUP)
  FLAG("NO_COMPRESSION", no_compression, O_BACKUP)
  FLAG("REPLACE", replace, O_RESTORE)
  FLAG("RECOVERY", recovery, O_RESTORE)
  FLAG("NORECOVERY", norecovery, O_RESTORE)
  FLAG("DIFFERENTIAL", differential, O_BACKUP)
  FLAG("NO_TRUNCATE", no_truncate, O_BACKUP)
#undef FLAG
  if (tok_is(t, "STATS")) {
    s->stats = 10;
    if (!is_punct(cur(ps), '=')) return 0;
    uint32_t v;
    if (parse_number(ps, &v) || range(ps, t, v, 1, 100, 0)) return -1;
    s->stats = (int)v;
    return 0;
  }
  if (tok_is(t, "BLOCKSIZE"))
    return parse_number(ps, &s->blocksize) ||
                   range(ps, t, s->blocksize, 512, 65536, 1)
               ? -1
               : 0;
  if (tok_is(t, "BUFFERCOUNT"))
    return parse_number(ps, &s->buffercount) ||
                   range(ps, t, s->buffercount, 1, 4096, 0)
               ? -1
               : 0;
  if (tok_is(t, "MAXTRANSFERSIZE")) {
    if (parse_number(ps, &s->maxtransfer) ||
        range(ps, t, s->maxtransfer, 65536, 4194304, 0))
      return -1;
    if (s->maxtransfer % 65536 != 0)
      return range(ps, t, s->maxtransfer, 1, 0, 0);
    return 0;
  }
  if (tok_is(t, "FILE")) {
    if (parse_number(ps, &s->file)) return -1;
    if (s->file != 1) {
      vmsg_setl(ps->err, 3032, 16, t->line,
                "FILE = %u: vdisql keeps one backup set per media family, so "
                "only FILE = 1 exists.",
                s->file);
      return -1;
    }
    return 0;
  }
  if (tok_is(t, "MOVE")) {
    /* MOVE 'logical_file_name' TO 'operating_system_file_name' */
    if (!(where & (O_RESTORE | O_INFO))) goto notopt;
    const tok *from = next(ps);
    if (from->kind != T_STR) return syntax(ps, from);
    const tok *to = cur(ps);
    if (!tok_is(to, "TO")) return syntax(ps, to);
    next(ps);
    to = next(ps);
    if (to->kind != T_STR) return syntax(ps, to);
    if (s->nmove == MAX_MOVES) {
      vmsg_setl(ps->err, 3032, 16, t->line,
                "More than %d MOVE options: a SQLite database has one file.",
                MAX_MOVES);
      return -1;
    }
    s->move_from[s->nmove] = strdup(from->text);
    s->move_to[s->nmove] = strdup(to->text);
    s->nmove++;
    if (!s->move_from[s->nmove - 1] || !s->move_to[s->nmove - 1])
      return syntax(ps, t);
    return 0;
  }
  if (tok_is(t, "STOPAT")) {
    if (where != O_RESTORE) goto notopt;
    return parse_string(ps, s->stopat, sizeof s->stopat, "STOPAT");
  }
  if (tok_is(t, "ENCRYPTION")) {
    if (where != O_BACKUP) goto notopt;
    return parse_encryption(ps, s);
  }
  if (tok_is(t, "DESCRIPTION")) {
    if (where != O_BACKUP) goto notopt;
    return parse_string(ps, s->description, sizeof s->description,
                        "DESCRIPTION");
  }
  if (tok_is(t, "NAME")) {
    if (where != O_BACKUP) goto notopt;
    return parse_string(ps, s->name, sizeof s->name, "NAME");
  }
  for (int k = 0; unsupported[k]; k++)
    if (tok_is(t, unsupported[k])) {
      vmsg_setl(ps->err, 3032, 16, t->line,
                "One or more of the options (%s) are not supported for this "
                "statement: it has no meaning for a SQLite database.",
                unsupported[k]);
      return -1;
    }
notopt:
  vmsg_setl(ps->err, 155, 15, t->line, "'%s' is not a recognized %s option.",
            t->text, what);
  return -1;
}

static int parse_with(pstate *ps, stmt *s, int where) {
  if (!tok_is(cur(ps), "WITH")) return 0;
  next(ps);
  for (;;) {
    if (parse_option(ps, s, where)) return -1;
    if (!is_punct(cur(ps), ',')) return 0;
    next(ps);
  }
}

/* ALTER DATABASE db SET RECOVERY FULL | SIMPLE | BULK_LOGGED */
static int parse_alter(pstate *ps, stmt *s) {
  if (!tok_is(next(ps), "DATABASE")) return syntax(ps, &ps->tl->v[ps->i - 1]);
  if (parse_name(ps, s->db, sizeof s->db)) return -1;
  if (!tok_is(cur(ps), "SET")) return syntax(ps, cur(ps));
  next(ps);
  const tok *o = next(ps);
  if (!tok_is(o, "RECOVERY")) {
    if (o->kind != T_WORD) return syntax(ps, o);
    vmsg_setl(ps->err, 5058, 16, o->line,
              "Option '%s' cannot be set in database '%s': vdisql's ALTER "
              "DATABASE sets RECOVERY only.",
              o->text, s->db);
    return -1;
  }
  const tok *m = next(ps);
  if (tok_is(m, "FULL"))
    s->set_recovery = 1;
  else if (tok_is(m, "SIMPLE"))
    s->set_recovery = 3;
  else if (tok_is(m, "BULK_LOGGED")) {
    vmsg_setl(ps->err, 5058, 16, m->line,
              "Option 'RECOVERY BULK_LOGGED' cannot be set in database '%s': "
              "SQLite logs every change in full; use FULL.",
              s->db);
    return -1;
  } else
    return syntax(ps, m);
  s->kind = ST_ALTER_RECOVERY;
  return 0;
}

static int parse_stmt(pstate *ps, stmt *s) {
  const tok *t = next(ps);
  s->line = t->line;
  if (tok_is(t, "ALTER")) return parse_alter(ps, s);
  if (tok_is(t, "CREATE")) return parse_create(ps, s);
  if (tok_is(t, "DROP")) {
    if (tok_is(cur(ps), "MASTER")) {
      next(ps);
      s->kind = ST_DROP_MASTER_KEY;
      return expect_word(ps, "KEY");
    }
    if (expect_word(ps, "CERTIFICATE")) return -1;
    s->kind = ST_DROP_CERT;
    return parse_ident(ps, s->cert, sizeof s->cert);
  }
  if (tok_is(t, "BACKUP")) {
    const tok *k = next(ps);
    if (tok_is(k, "CERTIFICATE")) {
      s->kind = ST_BACKUP_CERT;
      if (parse_ident(ps, s->cert, sizeof s->cert) || expect_word(ps, "TO") ||
          expect_word(ps, "FILE") || parse_strdup(ps, &s->cert_file))
        return -1;
      if (!tok_is(cur(ps), "WITH")) return 0;
      next(ps);
      return parse_private_key(ps, s, "ENCRYPTION");
    }
    if (tok_is(k, "DATABASE"))
      s->kind = ST_BACKUP_DB;
    else if (tok_is(k, "LOG"))
      s->kind = ST_BACKUP_LOG;
    else
      return syntax(ps, k);
    if (parse_name(ps, s->db, sizeof s->db)) return -1;
    if (!tok_is(cur(ps), "TO")) return syntax(ps, cur(ps));
    next(ps);
    if (parse_devices(ps, s)) return -1;
    return parse_with(ps, s, O_BACKUP);
  }
  if (tok_is(t, "RESTORE")) {
    const tok *k = next(ps);
    int where = O_INFO;
    if (tok_is(k, "DATABASE"))
      s->kind = ST_RESTORE_DB, where = O_RESTORE;
    else if (tok_is(k, "LOG"))
      s->kind = ST_RESTORE_LOG, where = O_RESTORE;
    else if (tok_is(k, "VERIFYONLY"))
      s->kind = ST_VERIFYONLY;
    else if (tok_is(k, "HEADERONLY"))
      s->kind = ST_HEADERONLY;
    else if (tok_is(k, "FILELISTONLY"))
      s->kind = ST_FILELISTONLY;
    else if (tok_is(k, "LABELONLY") || tok_is(k, "REWINDONLY")) {
      vmsg_setl(ps->err, 3032, 16, k->line,
                "RESTORE %s is not supported by vdisql.", k->text);
      return -1;
    } else
      return syntax(ps, k);
    if (where == O_RESTORE && parse_name(ps, s->db, sizeof s->db)) return -1;
    if (s->kind == ST_RESTORE_DB && tok_is(cur(ps), "WITH")) {
      /* RESTORE DATABASE db WITH RECOVERY: end a restore sequence. */
      s->kind = ST_RECOVER;
      return parse_with(ps, s, O_RESTORE);
    }
    if (!tok_is(cur(ps), "FROM")) return syntax(ps, cur(ps));
    next(ps);
    if (parse_devices(ps, s)) return -1;
    /* VERIFYONLY and friends take RESTORE's option names. */
    return parse_with(ps, s, where);
  }
  return syntax(ps, t);
}

int parse_batch(const toklist *tl, stmtlist *out, vmsg *err) {
  pstate ps = {tl, 0, err};
  size_t cap = 0;
  out->v = NULL;
  out->n = 0;
  for (;;) {
    while (is_punct(cur(&ps), ';'))
      next(&ps);
    if (cur(&ps)->kind == T_END) return 0;
    if (out->n == cap) {
      cap = cap ? cap * 2 : 4;
      stmt *nv = realloc(out->v, cap * sizeof *nv);
      if (!nv) {
        vmsg_set(err, 701, "There is insufficient system memory.");
        goto fail;
      }
      out->v = nv;
    }
    stmt *s = &out->v[out->n++];
    memset(s, 0, sizeof *s);
    if (parse_stmt(&ps, s)) goto fail;
    /* Next must be ';', the end, or the start of another statement. */
    const tok *t = cur(&ps);
    if (!is_punct(t, ';') && t->kind != T_END && !tok_is(t, "BACKUP") &&
        !tok_is(t, "RESTORE") && !tok_is(t, "ALTER") && !tok_is(t, "CREATE") &&
        !tok_is(t, "DROP")) {
      syntax(&ps, t);
      goto fail;
    }
  }
fail:
  stmtlist_free(out);
  return -1;
}

void stmtlist_free(stmtlist *sl) {
  for (size_t i = 0; i < sl->n; i++) {
    for (int d = 0; d < sl->v[i].ndev; d++)
      free(sl->v[i].dev[d]);
    for (int k = 0; k < sl->v[i].nmove; k++) {
      free(sl->v[i].move_from[k]);
      free(sl->v[i].move_to[k]);
    }
    free(sl->v[i].cert_file);
    free(sl->v[i].key_file);
    if (sl->v[i].password)
      explicit_bzero(sl->v[i].password, strlen(sl->v[i].password));
    free(sl->v[i].password);
    free(sl->v[i].subject);
  }
  free(sl->v);
  sl->v = NULL;
  sl->n = 0;
}

const char *stmt_verb(int kind) {
  switch (kind) {
  case ST_BACKUP_DB:
    return "BACKUP DATABASE";
  case ST_BACKUP_LOG:
    return "BACKUP LOG";
  case ST_RESTORE_DB:
    return "RESTORE DATABASE";
  case ST_RESTORE_LOG:
    return "RESTORE LOG";
  case ST_VERIFYONLY:
    return "VERIFY DATABASE";
  case ST_HEADERONLY:
    return "RESTORE HEADERONLY";
  case ST_FILELISTONLY:
    return "RESTORE FILELISTONLY";
  case ST_RECOVER:
    return "RESTORE DATABASE";
  case ST_ALTER_RECOVERY:
    return "ALTER DATABASE";
  case ST_CREATE_MASTER_KEY:
    return "CREATE MASTER KEY";
  case ST_CREATE_CERT:
    return "CREATE CERTIFICATE";
  case ST_BACKUP_CERT:
    return "BACKUP CERTIFICATE";
  case ST_DROP_CERT:
    return "DROP CERTIFICATE";
  case ST_DROP_MASTER_KEY:
    return "DROP MASTER KEY";
  }
  return "?";
}
