/*
 * json.c - a small, strict JSON reader for the backup manifest.
 *
 * The manifest is ours and tiny, and the vdi binary links no JSON library,
 * so this reads just RFC 8259 JSON into a tree: objects, arrays, strings
 * (escapes, \u of the Basic Multilingual Plane as UTF-8), numbers, true,
 * false, null.  Depth and size are bounded; anything else is an error with
 * the byte offset, never a guess.
 */
#include "app.h"

#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 16

struct parser {
  const char *s;
  size_t pos;
  char *err;
  size_t errlen;
  int failed;
};

static void fail(struct parser *p, const char *what) {
  if (!p->failed) snprintf(p->err, p->errlen, "%s at byte %zu", what, p->pos);
  p->failed = 1;
}

static void ws(struct parser *p) {
  while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
         p->s[p->pos] == '\r')
    p->pos++;
}

static struct json *node(enum json_type t) {
  struct json *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->type = t;
  return j;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static char *parse_string(struct parser *p) {
  if (p->s[p->pos] != '"') {
    fail(p, "expected a string");
    return NULL;
  }
  p->pos++;
  size_t cap = 32, n = 0;
  char *out = malloc(cap);
  if (!out) abort();
  for (;;) {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (n + 4 >= cap) {
      cap *= 2;
      out = realloc(out, cap);
      if (!out) abort();
    }
    if (c == 0 || c < 0x20) {
      fail(p, "unterminated string");
      free(out);
      return NULL;
    }
    p->pos++;
    if (c == '"') break;
    if (c != '\\') {
      out[n++] = (char)c;
      continue;
    }
    char e = p->s[p->pos++];
    switch (e) {
    case '"':
      out[n++] = '"';
      break;
    case '\\':
      out[n++] = '\\';
      break;
    case '/':
      out[n++] = '/';
      break;
    case 'b':
      out[n++] = '\b';
      break;
    case 'f':
      out[n++] = '\f';
      break;
    case 'n':
      out[n++] = '\n';
      break;
    case 'r':
      out[n++] = '\r';
      break;
    case 't':
      out[n++] = '\t';
      break;
    case 'u': {
      unsigned v = 0;
      for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos]);
        if (h < 0) {
          fail(p, "bad \\u escape");
          free(out);
          return NULL;
        }
        v = v * 16 + (unsigned)h;
        p->pos++;
      }
      if (v == 0 || (v >= 0xD800 && v <= 0xDFFF)) {
        fail(p, "unsupported \\u escape");
        free(out);
        return NULL;
      }
      if (v < 0x80) {
        out[n++] = (char)v;
      } else if (v < 0x800) {
        out[n++] = (char)(0xC0 | (v >> 6));
        out[n++] = (char)(0x80 | (v & 0x3F));
      } else {
        out[n++] = (char)(0xE0 | (v >> 12));
        out[n++] = (char)(0x80 | ((v >> 6) & 0x3F));
        out[n++] = (char)(0x80 | (v & 0x3F));
      }
      break;
    }
    default:
      p->pos--;
      fail(p, "bad escape");
      free(out);
      return NULL;
    }
  }
  out[n] = 0;
  return out;
}

static struct json *parse_value(struct parser *p, int depth);

static struct json *parse_container(struct parser *p, int depth, int obj) {
  struct json *j = node(obj ? J_OBJ : J_ARR);
  char close = obj ? '}' : ']';
  p->pos++;
  ws(p);
  if (p->s[p->pos] == close) {
    p->pos++;
    return j;
  }
  for (;;) {
    char *key = NULL;
    if (obj) {
      ws(p);
      key = parse_string(p);
      if (!key) break;
      ws(p);
      if (p->s[p->pos] != ':') {
        free(key);
        fail(p, "expected ':'");
        break;
      }
      p->pos++;
    }
    struct json *v = parse_value(p, depth + 1);
    if (!v) {
      free(key);
      break;
    }
    j->items = realloc(j->items, (size_t)(j->n + 1) * sizeof *j->items);
    if (!j->items) abort();
    if (obj) {
      j->keys = realloc(j->keys, (size_t)(j->n + 1) * sizeof *j->keys);
      if (!j->keys) abort();
      j->keys[j->n] = key;
    }
    j->items[j->n++] = v;
    ws(p);
    if (p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->s[p->pos] == close) {
      p->pos++;
      return j;
    }
    fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    break;
  }
  json_free(j);
  return NULL;
}

static struct json *parse_value(struct parser *p, int depth) {
  if (depth > JSON_MAX_DEPTH) {
    fail(p, "nested too deeply");
    return NULL;
  }
  ws(p);
  const char *s = p->s + p->pos;
  if (*s == '{' || *s == '[') return parse_container(p, depth, *s == '{');
  if (*s == '"') {
    char *str = parse_string(p);
    if (!str) return NULL;
    struct json *j = node(J_STR);
    j->str = str;
    return j;
  }
  if (strncmp(s, "true", 4) == 0 || strncmp(s, "false", 5) == 0) {
    struct json *j = node(J_BOOL);
    j->boolean = *s == 't';
    p->pos += *s == 't' ? 4 : 5;
    return j;
  }
  if (strncmp(s, "null", 4) == 0) {
    p->pos += 4;
    return node(J_NULL);
  }
  if (*s == '-' || (*s >= '0' && *s <= '9')) {
    char *end;
    double v = strtod(s, &end);
    if (end == s) {
      fail(p, "bad number");
      return NULL;
    }
    struct json *j = node(J_NUM);
    j->num = v;
    p->pos += (size_t)(end - s);
    return j;
  }
  fail(p, "unexpected character");
  return NULL;
}

struct json *json_parse(const char *text, char *err, size_t errlen) {
  struct parser p = {text, 0, err, errlen, 0};
  struct json *j = parse_value(&p, 0);
  if (!j) return NULL;
  ws(&p);
  if (p.s[p.pos] != 0) {
    fail(&p, "trailing data");
    json_free(j);
    return NULL;
  }
  return j;
}

void json_free(struct json *j) {
  if (!j) return;
  for (int i = 0; i < j->n; i++) {
    json_free(j->items[i]);
    if (j->keys) free(j->keys[i]);
  }
  free(j->items);
  free(j->keys);
  free(j->str);
  free(j);
}

const struct json *json_get(const struct json *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (int i = 0; i < obj->n; i++)
    if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
  return NULL;
}
