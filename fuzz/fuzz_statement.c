/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_statement.c - vdisql's lexer and statement parser on arbitrary text
 * (STYLE.md 2.9; issue 6: "the statement parser of vdisql").
 *
 * The whole input is one batch.  It must lex into a token list ending in
 * T_END or fail with Msg 105 / 113 (or 701, no memory); the tokens must
 * parse into statements or fail with one of the parser's documented
 * messages.  A parsed statement must be something the executor can use
 * without further checks: a known kind, 1..64 devices of one kind, each a
 * string, names NUL-terminated inside their arrays.
 */
#include "fuzz_helpers.h"

#include "lexer.h"
#include "parser.h"

#include <string.h>

static int terminated(const char *s, size_t cap) {
  return memchr(s, 0, cap) != NULL;
}

static void check_msg(const vmsg *m, const int *nums, size_t n) {
  int known = 0;
  for (size_t i = 0; i < n; i++)
    if (m->num == nums[i]) known = 1;
  FZ_CHECK(known);
  FZ_CHECK(terminated(m->text, sizeof m->text) && m->text[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int lex_msgs[] = {105, 113, 701};
  static const int parse_msgs[] = {102, 103, 155, 3032, 3205, 3250, 5105, 701};
  char *src = malloc(size + 1);
  memcpy(src, data, size);
  src[size] = 0;
  vmsg err = {0};
  toklist tl;
  if (lex_batch(src, &tl, &err) != 0) {
    check_msg(&err, lex_msgs, sizeof lex_msgs / sizeof lex_msgs[0]);
    free(src);
    return 0;
  }
  FZ_CHECK(tl.n >= 1 && tl.v[tl.n - 1].kind == T_END);
  for (size_t i = 0; i + 1 < tl.n; i++) {
    FZ_CHECK(tl.v[i].kind >= T_WORD && tl.v[i].kind <= T_PUNCT);
    FZ_CHECK(tl.v[i].text != NULL);
    FZ_CHECK(tl.v[i].line >= 1);
  }
  stmtlist sl;
  memset(&err, 0, sizeof err);
  if (parse_batch(&tl, &sl, &err) != 0) {
    check_msg(&err, parse_msgs, sizeof parse_msgs / sizeof parse_msgs[0]);
  } else {
    for (size_t i = 0; i < sl.n; i++) {
      const stmt *s = &sl.v[i];
      FZ_CHECK(terminated(s->cert, sizeof s->cert));
      if (s->kind >= ST_CREATE_MASTER_KEY && s->kind <= ST_DROP_MASTER_KEY) {
        /* The certificate statements: no devices; what each needs. */
        FZ_CHECK(s->ndev == 0);
        FZ_CHECK(s->kind == ST_CREATE_MASTER_KEY ? s->password != NULL
                 : s->kind == ST_DROP_MASTER_KEY ? s->cert[0] == 0
                                                 : s->cert[0] != 0);
        FZ_CHECK(s->kind != ST_BACKUP_CERT || s->cert_file != NULL);
        FZ_CHECK(s->kind != ST_CREATE_CERT || s->cert_file || s->subject);
        FZ_CHECK(!s->key_file ==
                 !(s->password && s->kind != ST_CREATE_MASTER_KEY));
        (void)stmt_verb(s->kind);
        continue;
      }
      FZ_CHECK(s->kind >= ST_BACKUP_DB && s->kind <= ST_FILELISTONLY);
      FZ_CHECK(!s->enc_alg ||
               ((s->kind == ST_BACKUP_DB || s->kind == ST_BACKUP_LOG) &&
                s->cert[0]));
      FZ_CHECK(s->dev_kind == DEV_DISK || s->dev_kind == DEV_VIRTUAL);
      FZ_CHECK(s->ndev >= 1 && s->ndev <= MAX_DEVICES);
      for (int k = 0; k < s->ndev; k++)
        FZ_CHECK(s->dev[k] != NULL);
      FZ_CHECK(terminated(s->db, sizeof s->db));
      /* A database name is a file of the instance, never a path. */
      FZ_CHECK(s->db[0] != '.' && strchr(s->db, '/') == NULL);
      FZ_CHECK(terminated(s->name, sizeof s->name));
      FZ_CHECK(terminated(s->description, sizeof s->description));
      FZ_CHECK(s->stats >= 0 && s->stats <= 100);
      (void)stmt_verb(s->kind);
    }
    stmtlist_free(&sl);
  }
  toklist_free(&tl);
  free(src);
  return 0;
}
