/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec_cert.c - the certificate statements: CREATE and DROP MASTER KEY,
 * CREATE CERTIFICATE (self-signed or FROM FILE), BACKUP CERTIFICATE and
 * DROP CERTIFICATE, over the store of certs.h.  File names are resolved as
 * DISK paths are: relative to the instance directory, and for an instance
 * confined to its backup directories (guard.h); a certificate is never
 * written over a file of the instance.
 */
#include "exec_int.h"

#include "certs.h"
#include "guard.h"
#include "timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cert_fail(const vmsg *m, const stmt *s) {
  out_vmsg(m, s->line);
  return -1;
}

/* @p in as a DISK path is (guard_resolve); one to be written must not
 * be a file of the instance.  NULL with @p err set, or the path. */
static char *resolve(const exec_ctx *cx, const char *in, int writing,
                     vmsg *err) {
  char *out = guard_resolve(cx->inst_dir, in, cx->backup_dirs, err);
  if (out && writing && guard_backup_target(cx->inst_dir, out, err)) {
    free(out);
    return NULL;
  }
  return out;
}

/* 'YYYYMMDD' or 'YYYY-MM-DD', optionally with a time ' HH:MM[:SS]' or
 * 'THH:MM:SS[.mmm]', in UTC as SQL Server reads START_DATE and
 * EXPIRY_DATE (timefmt.h reads the full form). */
static int parse_date(const char *text, int64_t *out) {
  char date[11], full[64];
  int64_t ms;
  const char *rest;
  if (strspn(text, "0123456789") == 8) { /* YYYYMMDD */
    snprintf(date, sizeof date, "%.4s-%.2s-%.2s", text, text + 4, text + 6);
    rest = text + 8;
  } else {
    snprintf(date, sizeof date, "%.10s", text);
    rest = text + strlen(date);
  }
  if (!*rest)
    snprintf(full, sizeof full, "%sT00:00:00", date);
  else if (strlen(rest) == 6) /* ' HH:MM': no seconds */
    snprintf(full, sizeof full, "%s%s:00", date, rest);
  else
    snprintf(full, sizeof full, "%s%.52s", date, rest);
  if (time_parse_utc_ms(full, &ms) != 0 || ms < 0) return -1;
  *out = ms / 1000;
  return 0;
}

static int bad_date(const stmt *s, const char *what, const char *text) {
  vmsg err = {0};
  vmsg_set(&err, 241,
           "Conversion failed when converting date and/or time from "
           "character string. (%s = '%s')",
           what, text);
  return cert_fail(&err, s);
}

int exec_cert(const exec_ctx *cx, const stmt *s) {
  vmsg err = {0};
  char *a = NULL, *b = NULL;
  int rc = -1;
  switch (s->kind) {
  case ST_CREATE_MASTER_KEY:
    rc = certs_create_master_key(cx->inst_dir, s->password, &err);
    break;
  case ST_CREATE_CERT:
    if (s->cert_file) {
      if (!(a = resolve(cx, s->cert_file, 0, &err)) ||
          (s->key_file && !(b = resolve(cx, s->key_file, 0, &err))))
        break;
      rc = certs_import(cx->inst_dir, s->cert, a, s->key_file ? b : NULL,
                        s->password, &err);
    } else {
      int64_t start = (int64_t)time(NULL), expiry;
      if (s->start_date[0] && parse_date(s->start_date, &start))
        return bad_date(s, "START_DATE", s->start_date);
      expiry = start + 365 * 86400; /* SQL Server's default: one year */
      if (s->expiry_date[0] && parse_date(s->expiry_date, &expiry))
        return bad_date(s, "EXPIRY_DATE", s->expiry_date);
      rc = certs_create(cx->inst_dir, s->cert, s->subject, start, expiry, &err);
    }
    break;
  case ST_BACKUP_CERT:
    if (!(a = resolve(cx, s->cert_file, 1, &err)) ||
        (s->key_file && !(b = resolve(cx, s->key_file, 1, &err))))
      break;
    rc = certs_export(cx->inst_dir, s->cert, a, s->key_file ? b : NULL,
                      s->password, &err);
    break;
  case ST_DROP_CERT:
    rc = certs_drop(cx->inst_dir, s->cert, &err);
    break;
  case ST_DROP_MASTER_KEY:
    rc = certs_drop_master_key(cx->inst_dir, &err);
    break;
  }
  free(a);
  free(b);
  return rc ? cert_fail(&err, s) : 0;
}
