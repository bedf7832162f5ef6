/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lexer.c - the T-SQL tokenizer for vdisql (see lexer.h).
 */
#include "lexer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int push(toklist *tl, size_t *cap, tok t) {
  if (tl->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 32;
    tok *nv = realloc(tl->v, nc * sizeof *nv);
    if (!nv) return -1;
    tl->v = nv;
    *cap = nc;
  }
  tl->v[tl->n++] = t;
  return 0;
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

/* Read a quoted run ending at @p close, where a doubled close character
 * stands for itself.  Returns the unescaped text or NULL if unterminated. */
static char *quoted(const char **pp, char close, int *line) {
  const char *p = *pp;
  size_t cap = 64, n = 0;
  char *out = malloc(cap);
  if (!out) return NULL;
  for (;;) {
    if (*p == 0) {
      free(out);
      return NULL;
    }
    if (*p == close) {
      if (p[1] == close) {
        p++;
      } else {
        p++;
        break;
      }
    }
    if (*p == '\n') (*line)++;
    if (n + 2 > cap) {
      char *no = realloc(out, cap *= 2);
      if (!no) {
        free(out);
        return NULL;
      }
      out = no;
    }
    out[n++] = *p++;
  }
  out[n] = 0;
  *pp = p;
  return out;
}

static int is_word_char(int c) {
  return isalnum(c) || c == '_' || c == '@' || c == '#' || c == '$';
}

int lex_batch(const char *src, toklist *out, vmsg *err) {
  size_t cap = 0;
  int line = 1;
  const char *p = src;
  out->v = NULL;
  out->n = 0;
  for (;;) {
    while (*p && isspace((unsigned char)*p)) {
      if (*p == '\n') line++;
      p++;
    }
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n')
        p++;
      continue;
    }
    if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      if (!e) {
        vmsg_setl(err, 113, 15, line, "Missing end comment mark '*/'.");
        goto fail;
      }
      for (; p < e; p++)
        if (*p == '\n') line++;
      p = e + 2;
      continue;
    }
    tok t = {0};
    t.line = line;
    if (*p == 0) {
      t.kind = T_END;
      t.text = dupn("", 0);
      if (!t.text || push(out, &cap, t)) goto oom;
      return 0;
    }
    if ((p[0] == 'N' || p[0] == 'n') && p[1] == '\'') p++; /* N'unicode' */
    if (*p == '\'' || *p == '[' || *p == '"') {
      char open = *p++;
      char close = open == '[' ? ']' : open;
      const char *start = p;
      t.kind = open == '\'' ? T_STR : T_QID;
      t.text = quoted(&p, close, &line);
      if (!t.text) {
        vmsg_setl(err, 105, 15, t.line,
                  "Unclosed quotation mark after the character string '%.60s'.",
                  start);
        goto fail;
      }
    } else if (isdigit((unsigned char)*p)) {
      const char *s = p;
      t.kind = T_NUM;
      while (isdigit((unsigned char)*p)) {
        if (t.num > 0xFFFFFFFFull)
          t.num_overflow = 1;
        else
          t.num = t.num * 10 + (uint64_t)(*p - '0');
        p++;
      }
      if (t.num > 0xFFFFFFFFull) t.num_overflow = 1;
      if (is_word_char((unsigned char)*p)) { /* 12abc: one bad word */
        while (is_word_char((unsigned char)*p))
          p++;
        t.kind = T_WORD;
      }
      t.text = dupn(s, (size_t)(p - s));
    } else if (is_word_char((unsigned char)*p)) {
      const char *s = p;
      while (is_word_char((unsigned char)*p))
        p++;
      t.kind = T_WORD;
      t.text = dupn(s, (size_t)(p - s));
    } else {
      t.kind = T_PUNCT;
      t.text = dupn(p, 1);
      p++;
    }
    if (!t.text || push(out, &cap, t)) goto oom;
  }
oom:
  vmsg_set(err, 701, "There is insufficient system memory to run this query.");
fail:
  toklist_free(out);
  return -1;
}

void toklist_free(toklist *tl) {
  for (size_t i = 0; i < tl->n; i++)
    free(tl->v[i].text);
  free(tl->v);
  tl->v = NULL;
  tl->n = 0;
}

int tok_is(const tok *t, const char *kw) {
  return t->kind == T_WORD && strcasecmp(t->text, kw) == 0;
}
