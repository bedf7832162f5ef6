/* SPDX-License-Identifier: Apache-2.0 */
/*
 * script.c - scripts, batches and statements (see script.h).
 */
#include "script.h"

#include "catalog.h"

#include "lexer.h"
#include "media.h"
#include "msg.h"
#include "parser.h"

#include <string.h>
#include <strings.h>

/* 1 if the line [p, e) is a GO separator ("GO" alone, any case). */
static int is_go(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  if (e - p < 2 || strncasecmp(p, "GO", 2) != 0) return 0;
  p += 2;
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
    p++;
  return p == e;
}

/* A batch that does not parse runs nothing; a backup application waiting
 * on a set the batch names would wait forever, so abort those sets (the
 * first VIRTUAL_DEVICE after each TO / FROM names the set). */
static void abort_named_sets(const toklist *tl) {
  for (size_t i = 0; i + 3 < tl->n; i++)
    if ((tok_is(&tl->v[i], "TO") || tok_is(&tl->v[i], "FROM")) &&
        tok_is(&tl->v[i + 1], "VIRTUAL_DEVICE") &&
        tl->v[i + 2].kind == T_PUNCT && tl->v[i + 2].text[0] == '=' &&
        tl->v[i + 3].kind == T_STR && tl->v[i + 3].text[0])
      vdidev_abort_set(tl->v[i + 3].text);
}

/* 1 if the batch is a SELECT (the history queries of catalog.h). */
static int is_select(const char *src) {
  while (*src == ' ' || *src == '\t' || *src == '\r' || *src == '\n')
    src++;
  return strncasecmp(src, "SELECT", 6) == 0 &&
         (src[6] == ' ' || src[6] == '\t' || src[6] == '\r' || src[6] == '\n');
}

/* Run one batch.  @return number of failed statements (or 1 for a batch
 * that does not parse). */
static int run_batch(const exec_ctx *cx, const char *src, int stop_on_error) {
  vmsg err = {0};
  toklist tl;
  stmtlist sl;
  if (lex_batch(src, &tl, &err)) {
    out_vmsg(&err, 1);
    return 1;
  }
  int failed = 0;
  if (probe_batch(cx, &tl, &failed)) {
    toklist_free(&tl);
    return failed;
  }
  if (is_select(src)) {
    toklist_free(&tl);
    if (catalog_select(cx->inst_dir, src, cx->colsep, cx->headers, &err) == 0)
      return 0;
    out_vmsg(&err, 1);
    return 1;
  }
  if (parse_batch(&tl, &sl, &err)) {
    out_vmsg(&err, 1);
    abort_named_sets(&tl);
    toklist_free(&tl);
    return 1;
  }
  for (size_t i = 0; i < sl.n; i++) {
    if (cx->cancel && *cx->cancel) break; /* nobody is listening any more */
    if (exec_stmt(cx, &sl.v[i]) != 0) {
      failed++;
      if (stop_on_error) break;
    }
  }
  stmtlist_free(&sl);
  toklist_free(&tl);
  return failed;
}

int script_run(const exec_ctx *cx, char *text, int stop) {
  int failed = 0;
  char *batch = text, *p = text;
  while (*p) {
    char *e = strchr(p, '\n');
    if (!e) e = p + strlen(p);
    if (is_go(p, e)) {
      char save = *p;
      *p = 0; /* the batch ends before the GO line */
      failed += run_batch(cx, batch, stop);
      *p = save;
      if (failed && stop) return failed;
      batch = *e ? e + 1 : e;
    }
    p = *e ? e + 1 : e;
  }
  if (*batch) failed += run_batch(cx, batch, stop);
  return failed;
}
