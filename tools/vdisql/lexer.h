/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lexer.h - tokens of a T-SQL batch: words, numbers, 'strings' (N'..' too),
 * [bracketed] and "quoted" identifiers, punctuation.  Comments (-- and
 * / * * /) and white space are skipped.  Line numbers are kept for Msg lines.
 */
#ifndef VDISQL_LEXER_H
#define VDISQL_LEXER_H

#include "msg.h"

#include <stddef.h>
#include <stdint.h>

enum tok_kind {
  T_END = 0,
  T_WORD,  /* keyword or plain identifier */
  T_NUM,   /* unsigned decimal integer */
  T_STR,   /* 'string' with '' unescaped */
  T_QID,   /* [identifier] or "identifier", unescaped */
  T_PUNCT, /* one character: = , ; ( ) and any other */
};

typedef struct tok {
  int kind;
  int line;
  char *text; /* unescaped, NUL-terminated (a word as written) */
  uint64_t num;
  int num_overflow; /* the number does not fit 32 bits */
} tok;

typedef struct toklist {
  tok *v;
  size_t n; /* the last token is T_END */
} toklist;

/** Split @p src into tokens.  @return 0, or -1 with @p err set (Msg 105
 * unclosed quotation mark, Msg 113 missing end comment mark). */
int lex_batch(const char *src, toklist *out, vmsg *err);
void toklist_free(toklist *tl);
/** 1 if @p t is the word @p kw, case-insensitively. */
int tok_is(const tok *t, const char *kw);

#endif
