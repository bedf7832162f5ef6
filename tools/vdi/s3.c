/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3.c - the S3 client of s3.h.  libcurl does HTTP and signs every request
 * (CURLOPT_AWS_SIGV4, "aws:amz:<region>:s3"); the payload is declared
 * UNSIGNED-PAYLOAD (x-amz-content-sha256), which S3 accepts and which lets
 * parts stream.  Answers are parsed with libxml2.  Requests that fail with
 * a 5xx, SlowDown or a network error are retried with exponential backoff
 * and jitter; a 4xx is final.
 */
#include "s3.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S3_MIN_PART (5u << 20)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  xmlInitParser();
}

/* ------------------------------------------------------------ config */

static void copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = 0;
  return s;
}

/* Reads `key` of section `section` of an AWS ini file; the "s3" nested
 * block ("s3 =" then indented "addressing_style = path") is read as keys
 * "s3.<name>".  1 if found. */
static int ini_get(const char *path, const char *section, const char *key,
                   char *out, size_t outlen) {
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  char line[4096], cur[256] = "", nest[64] = "";
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    int indented = line[0] == ' ' || line[0] == '\t';
    char *s = trim(line);
    if (*s == '#' || *s == ';' || *s == 0) continue;
    if (*s == '[') {
      char *e = strchr(s, ']');
      if (e) *e = 0;
      copy(cur, sizeof cur, trim(s + 1));
      nest[0] = 0;
      continue;
    }
    char *eq = strchr(s, '=');
    if (!eq) continue;
    *eq = 0;
    char *k = trim(s), *v = trim(eq + 1);
    if (!indented) nest[0] = 0;
    if (!indented && *v == 0) {
      copy(nest, sizeof nest, k);
      continue;
    }
    char full[384];
    if (indented && nest[0])
      snprintf(full, sizeof full, "%s.%s", nest, k);
    else
      copy(full, sizeof full, k);
    if (strcmp(cur, section) == 0 && strcmp(full, key) == 0) {
      copy(out, outlen, v);
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* A whole number of the environment in [lo, hi], else dflt. */
static int env_int(const char *name, int lo, int hi, int dflt) {
  const char *v = env(name);
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  return v && *end == 0 && x >= lo && x <= hi ? (int)x : dflt;
}

int s3_config_load(struct s3_config *cfg, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  cfg->max_retries = env_int("AWS_MAX_ATTEMPTS", 1, 100, 5);
  cfg->timeout_s = env_int("VDI_S3_TIMEOUT", 1, 86400, 60);
  const char *home = env("HOME");
  char credf[1024], conff[1024];
  snprintf(credf, sizeof credf, "%s/.aws/credentials", home ? home : "");
  snprintf(conff, sizeof conff, "%s/.aws/config", home ? home : "");
  if (env("AWS_SHARED_CREDENTIALS_FILE"))
    copy(credf, sizeof credf, env("AWS_SHARED_CREDENTIALS_FILE"));
  if (env("AWS_CONFIG_FILE")) copy(conff, sizeof conff, env("AWS_CONFIG_FILE"));
  const char *prof = env("AWS_PROFILE");
  if (!prof) prof = "default";
  char confsec[300];
  if (strcmp(prof, "default") == 0)
    copy(confsec, sizeof confsec, "default");
  else
    snprintf(confsec, sizeof confsec, "profile %s", prof);

  if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
    copy(cfg->access_key, sizeof cfg->access_key, env("AWS_ACCESS_KEY_ID"));
    copy(cfg->secret_key, sizeof cfg->secret_key, env("AWS_SECRET_ACCESS_KEY"));
    copy(cfg->session_token, sizeof cfg->session_token,
         env("AWS_SESSION_TOKEN"));
  } else {
    ini_get(credf, prof, "aws_access_key_id", cfg->access_key,
            sizeof cfg->access_key);
    ini_get(credf, prof, "aws_secret_access_key", cfg->secret_key,
            sizeof cfg->secret_key);
    ini_get(credf, prof, "aws_session_token", cfg->session_token,
            sizeof cfg->session_token);
    /* The AWS CLI also takes keys from the config file's profile. */
    if (!cfg->access_key[0]) {
      ini_get(conff, confsec, "aws_access_key_id", cfg->access_key,
              sizeof cfg->access_key);
      ini_get(conff, confsec, "aws_secret_access_key", cfg->secret_key,
              sizeof cfg->secret_key);
      ini_get(conff, confsec, "aws_session_token", cfg->session_token,
              sizeof cfg->session_token);
    }
  }
  if (!cfg->access_key[0] || !cfg->secret_key[0]) {
    snprintf(err, errlen,
             "s3: no credentials (set AWS_ACCESS_KEY_ID and "
             "AWS_SECRET_ACCESS_KEY, or profile \"%s\" in %s)",
             prof, credf);
    return -EINVAL;
  }
  if (env("AWS_REGION"))
    copy(cfg->region, sizeof cfg->region, env("AWS_REGION"));
  else if (env("AWS_DEFAULT_REGION"))
    copy(cfg->region, sizeof cfg->region, env("AWS_DEFAULT_REGION"));
  else if (!ini_get(conff, confsec, "region", cfg->region, sizeof cfg->region))
    copy(cfg->region, sizeof cfg->region, "us-east-1");

  int custom = 1;
  if (env("AWS_ENDPOINT_URL_S3"))
    copy(cfg->endpoint, sizeof cfg->endpoint, env("AWS_ENDPOINT_URL_S3"));
  else if (env("AWS_ENDPOINT_URL"))
    copy(cfg->endpoint, sizeof cfg->endpoint, env("AWS_ENDPOINT_URL"));
  else if (!ini_get(conff, confsec, "s3.endpoint_url", cfg->endpoint,
                    sizeof cfg->endpoint) &&
           !ini_get(conff, confsec, "endpoint_url", cfg->endpoint,
                    sizeof cfg->endpoint)) {
    snprintf(cfg->endpoint, sizeof cfg->endpoint, "https://s3.%s.amazonaws.com",
             cfg->region);
    custom = 0;
  }
  size_t n = strlen(cfg->endpoint);
  while (n > 0 && cfg->endpoint[n - 1] == '/')
    cfg->endpoint[--n] = 0;
  if (strncmp(cfg->endpoint, "http://", 7) != 0 &&
      strncmp(cfg->endpoint, "https://", 8) != 0) {
    snprintf(err, errlen, "s3: endpoint \"%s\" is not an http(s):// URL",
             cfg->endpoint);
    return -EINVAL;
  }
  char style[32] = "";
  if (env("AWS_S3_ADDRESSING_STYLE"))
    copy(style, sizeof style, env("AWS_S3_ADDRESSING_STYLE"));
  else
    ini_get(conff, confsec, "s3.addressing_style", style, sizeof style);
  if (strcmp(style, "path") == 0)
    cfg->path_style = 1;
  else if (strcmp(style, "virtual") == 0)
    cfg->path_style = 0;
  else
    cfg->path_style = custom;
  return 0;
}

int s3_parse_url(const char *url, char *bucket, size_t blen, char *prefix,
                 size_t plen) {
  if (strncmp(url, "s3://", 5) != 0) return -EINVAL;
  const char *b = url + 5, *slash = strchr(b, '/');
  size_t bl = slash ? (size_t)(slash - b) : strlen(b);
  if (bl == 0 || bl >= blen) return -EINVAL;
  memcpy(bucket, b, bl);
  bucket[bl] = 0;
  const char *p = slash ? slash + 1 : "";
  if (strlen(p) >= plen) return -EINVAL;
  copy(prefix, plen, p);
  return 0;
}

/* ------------------------------------------------------------ client */

struct s3_client {
  struct s3_config cfg;
  CURL *curl;
  char sigv4[128];
  char userpwd[600];
  char err[1024];
  int64_t deadline; /* monotonic ms; 0: none */
  const int *cancel;
};

/* The cleanup deadline of the whole process (monotonic ms; 0: none). */
static int64_t process_deadline;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int s3_cleanup_ms(const struct s3_config *cfg) {
  int t = cfg->timeout_s > 0 ? cfg->timeout_s : 60;
  return (t < 10 ? t : 10) * 1000;
}

void s3_client_deadline(struct s3_client *c, int ms) {
  c->deadline = ms > 0 ? mono_ms() + ms : 0;
}

void s3_process_deadline(int ms) {
  __atomic_store_n(&process_deadline, ms > 0 ? mono_ms() + ms : 0,
                   __ATOMIC_RELAXED);
}

void s3_client_cancel_on(struct s3_client *c, const int *flag) {
  c->cancel = flag;
}

/* The nearer of the client's and the process's deadlines (0: none). */
static int64_t deadline_of(const struct s3_client *c) {
  int64_t p = __atomic_load_n(&process_deadline, __ATOMIC_RELAXED);
  if (!c->deadline) return p;
  return p && p < c->deadline ? p : c->deadline;
}

static int cancelled(const struct s3_client *c) {
  return c->cancel && __atomic_load_n(c->cancel, __ATOMIC_RELAXED);
}

struct s3_client *s3_client_new(const struct s3_config *cfg) {
  pthread_once(&global_once, global_init);
  struct s3_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->cfg = *cfg;
  if (c->cfg.max_retries <= 0) c->cfg.max_retries = 5;
  if (c->cfg.timeout_s <= 0) c->cfg.timeout_s = 60;
  c->curl = curl_easy_init();
  if (!c->curl) {
    free(c);
    return NULL;
  }
  snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:s3", cfg->region);
  snprintf(c->userpwd, sizeof c->userpwd, "%s:%s", cfg->access_key,
           cfg->secret_key);
  return c;
}

void s3_client_free(struct s3_client *c) {
  if (!c) return;
  curl_easy_cleanup(c->curl);
  memset(c->userpwd, 0, sizeof c->userpwd);
  free(c);
}

const char *s3_error(const struct s3_client *c) {
  return c->err;
}

/* A growing buffer for answers. */
struct buf {
  char *p;
  size_t n, cap;
};

static int buf_add(struct buf *b, const void *p, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) return -ENOMEM;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

/* One request. */
struct req {
  const char *method; /* GET PUT POST DELETE HEAD */
  const char *bucket, *key;
  const char *query; /* without '?', already escaped; may be NULL */
  const void *body;  /* PUT/POST body */
  size_t body_len;
  uint64_t range_off, range_len; /* GET: range_len 0 = to the end */
  int ranged;
  s3_sink_fn sink; /* GET: streamed here; else the answer is buffered */
  void *sink_arg;
  /* filled */
  long status;
  struct buf answer;
  char etag[256];
  uint64_t length; /* Content-Length of the answer */
  uint64_t delivered;
  int sink_rc;
  size_t body_pos;
};

static size_t on_write(char *p, size_t sz, size_t nm, void *arg) {
  struct req *r = arg;
  size_t n = sz * nm;
  if (r->sink && r->status >= 200 && r->status < 300) {
    int rc = r->sink(r->sink_arg, p, n);
    if (rc != 0) {
      r->sink_rc = rc;
      return 0;
    }
    r->delivered += n;
    return n;
  }
  if (r->answer.n < (1u << 24) && buf_add(&r->answer, p, n) != 0) return 0;
  return n;
}

static size_t on_read(char *p, size_t sz, size_t nm, void *arg) {
  struct req *r = arg;
  size_t n = sz * nm, left = r->body_len - r->body_pos;
  if (n > left) n = left;
  memcpy(p, (const char *)r->body + r->body_pos, n);
  r->body_pos += n;
  return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *arg) {
  struct req *r = arg;
  size_t n = sz * nm;
  if (n > 5 && strncmp(p, "HTTP/", 5) == 0) {
    /* A new response (after a 100 Continue, say): its status. */
    const char *sp = memchr(p, ' ', n);
    if (sp) r->status = strtol(sp + 1, NULL, 10);
    r->etag[0] = 0;
  } else if (n > 5 && strncasecmp(p, "etag:", 5) == 0) {
    size_t l = n - 5;
    const char *v = p + 5;
    while (l > 0 && (*v == ' ' || *v == '\t'))
      v++, l--;
    while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
      l--;
    if (l < sizeof r->etag) {
      memcpy(r->etag, v, l);
      r->etag[l] = 0;
    }
  } else if (n > 15 && strncasecmp(p, "content-length:", 15) == 0) {
    r->length = strtoull(p + 15, NULL, 10);
  }
  return n;
}

/* The URL of bucket/key?query, the key escaped segment by segment. */
static int make_url(struct s3_client *c, const struct req *r, char **out) {
  struct buf u = {0};
  const char *ep = c->cfg.endpoint;
  int rc = 0;
  if (c->cfg.path_style || !r->bucket) {
    rc |= buf_add(&u, ep, strlen(ep));
    if (r->bucket) {
      rc |= buf_add(&u, "/", 1);
      rc |= buf_add(&u, r->bucket, strlen(r->bucket));
    }
  } else {
    const char *host = strstr(ep, "://") + 3;
    rc |= buf_add(&u, ep, (size_t)(host - ep));
    rc |= buf_add(&u, r->bucket, strlen(r->bucket));
    rc |= buf_add(&u, ".", 1);
    rc |= buf_add(&u, host, strlen(host));
  }
  rc |= buf_add(&u, "/", 1);
  const char *k = r->key ? r->key : "";
  while (*k) {
    const char *e = strchr(k, '/');
    size_t l = e ? (size_t)(e - k) : strlen(k);
    char *esc = curl_easy_escape(c->curl, k, (int)l);
    if (!esc)
      rc |= -ENOMEM;
    else {
      rc |= buf_add(&u, esc, strlen(esc));
      curl_free(esc);
    }
    if (!e) break;
    rc |= buf_add(&u, "/", 1);
    k = e + 1;
  }
  if (r->query && *r->query) {
    rc |= buf_add(&u, "?", 1);
    rc |= buf_add(&u, r->query, strlen(r->query));
  }
  if (rc != 0) {
    free(u.p);
    return -ENOMEM;
  }
  *out = u.p;
  return 0;
}

/* The text of the first element named `name` under node (depth first). */
static xmlNode *xml_find(xmlNode *node, const char *name) {
  for (xmlNode *n = node; n; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
      return n;
    xmlNode *f = xml_find(n->children, name);
    if (f) return f;
  }
  return NULL;
}

/* A child element's text, copied; "" if absent. */
static void xml_child_text(xmlNode *parent, const char *name, char *out,
                           size_t outlen) {
  out[0] = 0;
  for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next) {
    if (n->type == XML_ELEMENT_NODE &&
        strcmp((const char *)n->name, name) == 0) {
      xmlChar *t = xmlNodeGetContent(n);
      copy(out, outlen, (const char *)t);
      xmlFree(t);
      return;
    }
  }
}

static xmlDoc *xml_parse(const struct buf *b) {
  if (!b->p || b->n == 0) return NULL;
  return xmlReadMemory(b->p, (int)b->n, "s3.xml", NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR |
                           XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
}

/* The store's error code and message of an answer ("" if none). */
static void error_code(const struct buf *b, char *code, size_t clen, char *msg,
                       size_t mlen) {
  code[0] = msg[0] = 0;
  xmlDoc *d = xml_parse(b);
  if (!d) return;
  xmlNode *e = xml_find(xmlDocGetRootElement(d), "Error");
  if (e) {
    xml_child_text(e, "Code", code, clen);
    xml_child_text(e, "Message", msg, mlen);
  }
  xmlFreeDoc(d);
}

static int is_final_xml_error(const struct buf *b) {
  /* CompleteMultipartUpload may answer 200 and then an <Error> body. */
  xmlDoc *d = xml_parse(b);
  if (!d) return 0;
  xmlNode *root = xmlDocGetRootElement(d);
  int bad = root && strcmp((const char *)root->name, "Error") == 0;
  xmlFreeDoc(d);
  return bad;
}

static void set_err(struct s3_client *c, const struct req *r, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
static void set_err(struct s3_client *c, const struct req *r, const char *fmt,
                    ...) {
  char what[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(c->err, sizeof c->err, "s3: %s s3://%s/%s: %s", r->method,
           r->bucket ? r->bucket : "", r->key ? r->key : "", what);
}

/* Maps a final HTTP failure to an errno and the one-line message. */
static int http_error(struct s3_client *c, struct req *r) {
  char code[128], msg[400];
  error_code(&r->answer, code, sizeof code, msg, sizeof msg);
  if (!code[0]) {
    /* HEAD has no body; some answers have none. */
    if (r->status == 404)
      copy(code, sizeof code, r->key && *r->key ? "NotFound" : "NoSuchBucket");
    else if (r->status == 403)
      copy(code, sizeof code, "AccessDenied");
    else
      snprintf(code, sizeof code, "HTTP %ld", r->status);
  }
  if (strcmp(code, "InvalidAccessKeyId") == 0) {
    set_err(c, r,
            "InvalidAccessKeyId: the access key is not known to the store "
            "(check AWS_ACCESS_KEY_ID or the profile)");
    return -EACCES;
  }
  if (strcmp(code, "SignatureDoesNotMatch") == 0) {
    set_err(c, r,
            "SignatureDoesNotMatch: the secret key is wrong (check "
            "AWS_SECRET_ACCESS_KEY or the profile)");
    return -EACCES;
  }
  if (strcmp(code, "NoSuchBucket") == 0) {
    set_err(c, r, "NoSuchBucket: bucket \"%s\" does not exist",
            r->bucket ? r->bucket : "");
    return -ENOENT;
  }
  if (strcmp(code, "AccessDenied") == 0 || r->status == 403) {
    set_err(c, r, "%s: access denied (HTTP %ld; check the credentials)", code,
            r->status);
    return -EACCES;
  }
  if (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NotFound") == 0 ||
      strcmp(code, "NoSuchUpload") == 0 || r->status == 404) {
    set_err(c, r, "%s: not found", code);
    return -ENOENT;
  }
  set_err(c, r, "%s (HTTP %ld)%s%s", code, r->status, msg[0] ? ": " : "", msg);
  return -EIO;
}

/* The wait before attempt + 1: 100 ms, 200 ms, 400 ms ... at most 5 s,
 * with up to 50% jitter. */
static long backoff_ms(int attempt) {
  long ms = 100L << (attempt < 6 ? attempt : 6);
  if (ms > 5000) ms = 5000;
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)attempt;
  return ms + rand_r(&seed) % (ms / 2 + 1);
}

/* Sleeps ms, waking early when the client is cancelled. */
static void nap(const struct s3_client *c, long ms) {
  int64_t end = mono_ms() + ms;
  while (!cancelled(c) && mono_ms() < end)
    usleep(20000);
}

/* curl's progress callback: cuts the transfer when the client is
 * cancelled or its deadline has passed. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  const struct s3_client *c = arg;
  int64_t dl = deadline_of(c);
  return cancelled(c) || (dl && mono_ms() >= dl);
}

/* Runs a request with retries.  0 on 2xx, else a negative errno with
 * c->err set.  Bounded in time (struct s3_config, timeout_s): no attempt
 * starts after timeout_s, an attempt that moves no byte for a third of
 * it is cut, and the deadlines of the client and the process cut it
 * too. */
static int perform(struct s3_client *c, struct req *r) {
  char *url = NULL;
  int rc = make_url(c, r, &url);
  if (rc != 0) return rc;
  uint64_t off0 = r->range_off, len0 = r->range_len;
  int ranged0 = r->ranged;
  int64_t t0 = mono_ms(), budget = (int64_t)c->cfg.timeout_s * 1000;
  long stall = c->cfg.timeout_s / 3 > 0 ? c->cfg.timeout_s / 3 : 1;
  for (int attempt = 0;; attempt++) {
    int64_t dl = deadline_of(c), left = dl ? dl - mono_ms() : 0;
    if (dl && left <= 0) {
      set_err(c, r, "not sent: the time for cleaning up is over");
      rc = -ETIMEDOUT;
      break;
    }
    CURL *h = c->curl;
    curl_easy_reset(h);
    free(r->answer.p);
    memset(&r->answer, 0, sizeof r->answer);
    r->status = 0;
    r->etag[0] = 0;
    r->body_pos = 0;
    r->sink_rc = 0;
    struct curl_slist *hd = NULL;
    hd = curl_slist_append(hd, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (c->cfg.session_token[0]) {
      char t[4200];
      snprintf(t, sizeof t, "x-amz-security-token: %s", c->cfg.session_token);
      hd = curl_slist_append(hd, t);
    }
    char range[128];
    /* A resumed GET asks for what it has not delivered yet. */
    uint64_t off = off0 + r->delivered;
    if (ranged0 || r->delivered > 0) {
      if (len0)
        snprintf(range, sizeof range, "Range: bytes=%llu-%llu",
                 (unsigned long long)off,
                 (unsigned long long)(off0 + len0 - 1));
      else
        snprintf(range, sizeof range, "Range: bytes=%llu-",
                 (unsigned long long)off);
      hd = curl_slist_append(hd, range);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, stall < 10 ? stall : 10L);
    /* A stalled transfer (under 1 byte/s for a third of the budget) is a
     * network error. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall);
    if (dl) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
    if (strcmp(r->method, "HEAD") == 0) {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0) {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, r);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "POST") == 0) {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)(r->body ? r->body_len : 0));
    } else if (strcmp(r->method, "DELETE") == 0) {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hd);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status) r->status = status;
    int retry = 0;
    if (r->sink_rc != 0) {
      rc = r->sink_rc;
      snprintf(c->err, sizeof c->err, "s3: GET s3://%s/%s: stopped by reader",
               r->bucket, r->key ? r->key : "");
      break;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK && cancelled(c)) {
      set_err(c, r, "cancelled (another request of the upload failed)");
      rc = -ECANCELED;
      break;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK ||
        (dl && cc == CURLE_OPERATION_TIMEDOUT && mono_ms() >= dl)) {
      set_err(c, r, "no answer before the time for cleaning up was over");
      rc = -ETIMEDOUT;
      break;
    }
    if (cc != CURLE_OK) {
      if (cc == CURLE_OPERATION_TIMEDOUT)
        set_err(c, r, "the store stopped answering (no byte moved for %ld s)",
                stall);
      else
        set_err(c, r, "%s", curl_easy_strerror(cc));
      rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
      retry = 1;
    } else if (r->status >= 200 && r->status < 300 &&
               !(strcmp(r->method, "POST") == 0 &&
                 is_final_xml_error(&r->answer))) {
      rc = 0;
      break;
    } else {
      rc = http_error(c, r);
      char code[128], msg[8];
      error_code(&r->answer, code, sizeof code, msg, sizeof msg);
      retry = r->status >= 500 || r->status == 0 ||
              strcmp(code, "SlowDown") == 0 ||
              strcmp(code, "InternalError") == 0 ||
              strcmp(code, "RequestTimeout") == 0;
    }
    if (!retry) break;
    long wait = backoff_ms(attempt);
    int64_t spent = mono_ms() - t0;
    int out_of_time = spent + wait >= budget || (dl && mono_ms() + wait >= dl);
    if (attempt + 1 >= c->cfg.max_retries || out_of_time) {
      /* Said once, at the end: how hard it was tried. */
      size_t l = strlen(c->err);
      char why[64] = "";
      if (out_of_time && attempt + 1 < c->cfg.max_retries)
        snprintf(why, sizeof why, "; VDI_S3_TIMEOUT is %d s", c->cfg.timeout_s);
      snprintf(c->err + l, sizeof c->err - l, " (%d attempt%s in %.*f s%s)",
               attempt + 1, attempt ? "s" : "", spent < 10000 ? 1 : 0,
               (double)spent / 1000.0, why);
      break;
    }
    nap(c, wait);
    if (cancelled(c)) {
      set_err(c, r, "cancelled (another request of the upload failed)");
      rc = -ECANCELED;
      break;
    }
  }
  free(url);
  return rc;
}

static void req_done(struct req *r) {
  free(r->answer.p);
  r->answer.p = NULL;
}

/* ------------------------------------------------------------ objects */

int s3_bucket_create(struct s3_client *c, const char *bucket) {
  struct req r = {.method = "PUT", .bucket = bucket, .body = "", .body_len = 0};
  char body[512];
  if (strcmp(c->cfg.region, "us-east-1") != 0) {
    snprintf(body, sizeof body,
             "<CreateBucketConfiguration><LocationConstraint>%s"
             "</LocationConstraint></CreateBucketConfiguration>",
             c->cfg.region);
    r.body = body;
    r.body_len = strlen(body);
  }
  int rc = perform(c, &r);
  req_done(&r);
  return rc;
}

int s3_put(struct s3_client *c, const char *bucket, const char *key,
           const void *buf, size_t n) {
  struct req r = {.method = "PUT",
                  .bucket = bucket,
                  .key = key,
                  .body = buf,
                  .body_len = n};
  int rc = perform(c, &r);
  req_done(&r);
  return rc;
}

int s3_head(struct s3_client *c, const char *bucket, const char *key,
            uint64_t *size) {
  struct req r = {.method = "HEAD", .bucket = bucket, .key = key};
  int rc = perform(c, &r);
  if (rc == 0 && size) *size = r.length;
  req_done(&r);
  return rc;
}

int s3_get(struct s3_client *c, const char *bucket, const char *key,
           uint64_t off, uint64_t len, s3_sink_fn sink, void *arg) {
  struct req r = {.method = "GET",
                  .bucket = bucket,
                  .key = key,
                  .range_off = off,
                  .range_len = len,
                  .ranged = off > 0 || len > 0,
                  .sink = sink,
                  .sink_arg = arg};
  int rc = perform(c, &r);
  req_done(&r);
  return rc;
}

int s3_delete(struct s3_client *c, const char *bucket, const char *key) {
  struct req r = {.method = "DELETE", .bucket = bucket, .key = key};
  int rc = perform(c, &r);
  req_done(&r);
  return rc;
}

/* A query parameter's value, escaped. */
static int qadd(struct s3_client *c, struct buf *q, const char *name,
                const char *value) {
  char *esc = curl_easy_escape(c->curl, value, 0);
  if (!esc) return -ENOMEM;
  int rc = 0;
  if (q->n) rc |= buf_add(q, "&", 1);
  rc |= buf_add(q, name, strlen(name));
  rc |= buf_add(q, "=", 1);
  rc |= buf_add(q, esc, strlen(esc));
  curl_free(esc);
  return rc ? -ENOMEM : 0;
}

/* GET a listing (@p query on @p bucket) and parse its XML answer into
 * *@p doc.  0, or a negative errno with c->err set. */
static int get_listing(struct s3_client *c, const char *bucket,
                       const char *query, xmlDoc **doc) {
  struct req r = {.method = "GET", .bucket = bucket, .query = query};
  int rc = perform(c, &r);
  if (rc == 0) {
    *doc = xml_parse(&r.answer);
    if (!*doc) {
      snprintf(c->err, sizeof c->err, "s3: GET s3://%s?%s: unreadable listing",
               bucket, query);
      rc = -EIO;
    }
  }
  req_done(&r);
  return rc;
}

int s3_list(struct s3_client *c, const char *bucket, const char *prefix,
            s3_list_fn fn, void *arg) {
  char token[2048] = "";
  for (;;) {
    struct buf q = {0};
    /* Parameters in byte order: the canonical request of SigV4 wants
     * them sorted, and libcurl 7.88 takes them as given. */
    int rc = 0;
    if (token[0]) rc = qadd(c, &q, "continuation-token", token);
    if (!rc) rc = qadd(c, &q, "list-type", "2");
    if (!rc && c->cfg.list_max_keys > 0) {
      char mk[16];
      snprintf(mk, sizeof mk, "%d", c->cfg.list_max_keys);
      rc = qadd(c, &q, "max-keys", mk);
    }
    if (!rc && prefix && *prefix) rc = qadd(c, &q, "prefix", prefix);
    xmlDoc *d = NULL;
    if (rc == 0) rc = get_listing(c, bucket, q.p, &d);
    free(q.p);
    if (rc) return rc;
    xmlNode *root = xmlDocGetRootElement(d);
    char trunc[16];
    xml_child_text(root, "IsTruncated", trunc, sizeof trunc);
    xml_child_text(root, "NextContinuationToken", token, sizeof token);
    for (xmlNode *n = root ? root->children : NULL; n && rc == 0; n = n->next) {
      if (n->type != XML_ELEMENT_NODE ||
          strcmp((const char *)n->name, "Contents") != 0)
        continue;
      char key[1100], size[32];
      xml_child_text(n, "Key", key, sizeof key);
      xml_child_text(n, "Size", size, sizeof size);
      rc = fn(arg, key, strtoull(size, NULL, 10));
    }
    xmlFreeDoc(d);
    if (rc != 0) return rc;
    if (strcmp(trunc, "true") != 0 || !token[0]) return 0;
  }
}

/* ------------------------------------------------------------ multipart */

int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                  char *upload_id, size_t idlen) {
  struct req r = {
      .method = "POST", .bucket = bucket, .key = key, .query = "uploads="};
  int rc = perform(c, &r);
  if (rc == 0) {
    xmlDoc *d = xml_parse(&r.answer);
    xmlNode *n = d ? xml_find(xmlDocGetRootElement(d), "UploadId") : NULL;
    upload_id[0] = 0;
    if (n) {
      xmlChar *t = xmlNodeGetContent(n);
      copy(upload_id, idlen, (const char *)t);
      xmlFree(t);
    }
    if (d) xmlFreeDoc(d);
    if (!upload_id[0]) {
      set_err(c, &r, "no UploadId in the answer");
      rc = -EIO;
    }
  }
  req_done(&r);
  return rc;
}

static int upload_query(struct s3_client *c, const char *upload_id, int part,
                        char **out) {
  struct buf q = {0};
  int rc = 0;
  if (part > 0) {
    char pn[16];
    snprintf(pn, sizeof pn, "%d", part);
    rc = qadd(c, &q, "partNumber", pn);
  }
  if (!rc) rc = qadd(c, &q, "uploadId", upload_id);
  if (rc) {
    free(q.p);
    return rc;
  }
  *out = q.p;
  return 0;
}

int s3_mpu_part(struct s3_client *c, const char *bucket, const char *key,
                const char *upload_id, int part, const void *buf, size_t n,
                char *etag, size_t etaglen) {
  char *q;
  int rc = upload_query(c, upload_id, part, &q);
  if (rc) return rc;
  struct req r = {.method = "PUT",
                  .bucket = bucket,
                  .key = key,
                  .query = q,
                  .body = buf,
                  .body_len = n};
  rc = perform(c, &r);
  if (rc == 0) {
    if (!r.etag[0]) {
      set_err(c, &r, "no ETag for part %d", part);
      rc = -EIO;
    } else {
      copy(etag, etaglen, r.etag);
    }
  }
  free(q);
  req_done(&r);
  return rc;
}

int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key,
                    const char *upload_id, char *const *etags, int nparts) {
  struct buf body = {0};
  int rc = buf_add(&body, "<CompleteMultipartUpload>", 25);
  for (int i = 0; i < nparts && rc == 0; i++) {
    char part[400];
    /* ETags are quoted hex: nothing in them needs escaping in XML. */
    int l = snprintf(part, sizeof part,
                     "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
                     i + 1, etags[i]);
    rc = buf_add(&body, part, (size_t)l);
  }
  if (rc == 0) rc = buf_add(&body, "</CompleteMultipartUpload>", 26);
  char *q = NULL;
  if (rc == 0) rc = upload_query(c, upload_id, 0, &q);
  if (rc) {
    free(body.p);
    return -ENOMEM;
  }
  struct req r = {.method = "POST",
                  .bucket = bucket,
                  .key = key,
                  .query = q,
                  .body = body.p,
                  .body_len = body.n};
  rc = perform(c, &r);
  free(q);
  free(body.p);
  req_done(&r);
  return rc;
}

int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key,
                 const char *upload_id) {
  char *q;
  int rc = upload_query(c, upload_id, 0, &q);
  if (rc) return rc;
  struct req r = {.method = "DELETE", .bucket = bucket, .key = key, .query = q};
  rc = perform(c, &r);
  free(q);
  req_done(&r);
  return rc;
}

int s3_mpu_list(struct s3_client *c, const char *bucket, const char *prefix,
                s3_upload_fn fn, void *arg) {
  char key_marker[1100] = "", id_marker[512] = "";
  for (;;) {
    struct buf q = {0};
    int rc = 0;
    if (key_marker[0]) rc = qadd(c, &q, "key-marker", key_marker);
    if (!rc && c->cfg.list_max_keys > 0) {
      char mk[16];
      snprintf(mk, sizeof mk, "%d", c->cfg.list_max_keys);
      rc = qadd(c, &q, "max-uploads", mk);
    }
    if (!rc && prefix && *prefix) rc = qadd(c, &q, "prefix", prefix);
    if (!rc && id_marker[0]) rc = qadd(c, &q, "upload-id-marker", id_marker);
    if (!rc) rc = qadd(c, &q, "uploads", "");
    xmlDoc *d = NULL;
    if (rc == 0) rc = get_listing(c, bucket, q.p, &d);
    free(q.p);
    if (rc) return rc;
    xmlNode *root = xmlDocGetRootElement(d);
    char trunc[16];
    xml_child_text(root, "IsTruncated", trunc, sizeof trunc);
    xml_child_text(root, "NextKeyMarker", key_marker, sizeof key_marker);
    xml_child_text(root, "NextUploadIdMarker", id_marker, sizeof id_marker);
    for (xmlNode *n = root ? root->children : NULL; n && rc == 0; n = n->next) {
      if (n->type != XML_ELEMENT_NODE ||
          strcmp((const char *)n->name, "Upload") != 0)
        continue;
      char key[1100], id[512];
      xml_child_text(n, "Key", key, sizeof key);
      xml_child_text(n, "UploadId", id, sizeof id);
      rc = fn(arg, key, id);
    }
    xmlFreeDoc(d);
    if (rc != 0) return rc;
    if (strcmp(trunc, "true") != 0 || !key_marker[0]) return 0;
  }
}

struct pending {
  char **keys, **ids;
  int n, cap;
};

static int collect(void *arg, const char *key, const char *id) {
  struct pending *p = arg;
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    char **k = realloc(p->keys, (size_t)cap * sizeof *k);
    if (!k) return -ENOMEM;
    p->keys = k;
    char **i = realloc(p->ids, (size_t)cap * sizeof *i);
    if (!i) return -ENOMEM;
    p->ids = i;
    p->cap = cap;
  }
  p->keys[p->n] = strdup(key);
  p->ids[p->n] = strdup(id);
  if (!p->keys[p->n] || !p->ids[p->n]) {
    free(p->keys[p->n]);
    free(p->ids[p->n]);
    return -ENOMEM;
  }
  p->n++;
  return 0;
}

int s3_mpu_cleanup(struct s3_client *c, const char *bucket, const char *prefix,
                   int *n) {
  struct pending p = {0};
  int rc = s3_mpu_list(c, bucket, prefix, collect, &p);
  int done = 0;
  for (int i = 0; i < p.n; i++) {
    if (rc == 0) {
      int r = s3_mpu_abort(c, bucket, p.keys[i], p.ids[i]);
      if (r == 0 || r == -ENOENT)
        done++;
      else
        rc = r;
    }
    free(p.keys[i]);
    free(p.ids[i]);
  }
  free(p.keys);
  free(p.ids);
  if (n) *n = done;
  return rc;
}

/* ------------------------------------------------------------ streaming */

struct part_buf {
  unsigned char *p;
  size_t n;
  int number; /* part number while queued or in flight; 0 when free */
};

struct s3_upload {
  struct s3_config cfg;
  char bucket[256], key[1100];
  size_t part_size;
  int inflight;
  struct s3_client *main; /* create, complete, abort, the single PUT */
  char upload_id[512];
  struct part_buf *bufs;
  struct part_buf *cur; /* being filled by the writer */
  pthread_t *threads;
  int nthreads;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int queue_head; /* next part number to hand to a thread */
  int next_part;  /* next part number to give a filled buffer */
  char **etags;
  int netags;
  int error;
  int stopping;
  int cancel; /* cuts the parts in flight (s3_client_cancel_on) */
  char err[1024];
};

static struct part_buf *next_queued(struct s3_upload *u) {
  for (int i = 0; i < u->inflight; i++)
    if (u->bufs[i].number == u->queue_head) return &u->bufs[i];
  return NULL;
}

static void *upload_thread(void *arg) {
  struct s3_upload *u = arg;
  struct s3_client *c = s3_client_new(&u->cfg);
  if (c) s3_client_cancel_on(c, &u->cancel);
  pthread_mutex_lock(&u->mu);
  if (!c && !u->error) {
    u->error = -ENOMEM;
    snprintf(u->err, sizeof u->err, "s3: out of memory");
    pthread_cond_broadcast(&u->cv);
  }
  for (;;) {
    struct part_buf *b = NULL;
    while (!u->stopping && !u->error && !(b = next_queued(u)))
      pthread_cond_wait(&u->cv, &u->mu);
    if (!b) break;
    u->queue_head++;
    pthread_mutex_unlock(&u->mu);
    char etag[256];
    int rc = s3_mpu_part(c, u->bucket, u->key, u->upload_id, b->number, b->p,
                         b->n, etag, sizeof etag);
    pthread_mutex_lock(&u->mu);
    if (rc == 0) {
      u->etags[b->number - 1] = strdup(etag);
      if (!u->etags[b->number - 1]) rc = -ENOMEM;
    }
    if (rc != 0 && !u->error) {
      u->error = rc;
      snprintf(u->err, sizeof u->err, "%s", s3_error(c));
      /* The other parts in flight are lost with it: stop them now. */
      __atomic_store_n(&u->cancel, 1, __ATOMIC_RELAXED);
    }
    b->number = 0;
    b->n = 0;
    pthread_cond_broadcast(&u->cv);
  }
  pthread_mutex_unlock(&u->mu);
  s3_client_free(c);
  return NULL;
}

int s3_upload_open(struct s3_upload **up, const struct s3_config *cfg,
                   const char *bucket, const char *key, size_t part_size,
                   int inflight) {
  *up = NULL;
  if (part_size < S3_MIN_PART) part_size = S3_MIN_PART;
  if (inflight < 1) inflight = 1;
  struct s3_upload *u = calloc(1, sizeof *u);
  if (!u) return -ENOMEM;
  u->cfg = *cfg;
  copy(u->bucket, sizeof u->bucket, bucket);
  copy(u->key, sizeof u->key, key);
  u->part_size = part_size;
  u->inflight = inflight;
  u->next_part = 1;
  u->queue_head = 1;
  pthread_mutex_init(&u->mu, NULL);
  pthread_cond_init(&u->cv, NULL);
  u->main = s3_client_new(cfg);
  u->bufs = calloc((size_t)inflight, sizeof *u->bufs);
  u->threads = calloc((size_t)inflight, sizeof *u->threads);
  if (!u->main || !u->bufs || !u->threads) {
    s3_upload_free(u);
    return -ENOMEM;
  }
  *up = u;
  return 0;
}

const char *s3_upload_error(const struct s3_upload *u) {
  return u->err;
}

/* Starts the multipart upload and its threads (at the first full part). */
static int upload_start(struct s3_upload *u) {
  int rc = s3_mpu_create(u->main, u->bucket, u->key, u->upload_id,
                         sizeof u->upload_id);
  if (rc != 0) {
    snprintf(u->err, sizeof u->err, "%s", s3_error(u->main));
    return u->error = rc;
  }
  for (int i = 0; i < u->inflight; i++) {
    if (pthread_create(&u->threads[i], NULL, upload_thread, u) != 0) {
      snprintf(u->err, sizeof u->err, "s3: cannot start a thread");
      pthread_mutex_lock(&u->mu);
      u->error = -EAGAIN;
      pthread_cond_broadcast(&u->cv);
      pthread_mutex_unlock(&u->mu);
      return -EAGAIN;
    }
    u->nthreads++;
  }
  return 0;
}

/* Hands the buffer being filled to the threads. */
static int queue_current(struct s3_upload *u) {
  pthread_mutex_lock(&u->mu);
  int n = u->next_part;
  if (n % 64 == 1) {
    char **e = realloc(u->etags, (size_t)(n + 64) * sizeof *e);
    if (!e) {
      pthread_mutex_unlock(&u->mu);
      return u->error = -ENOMEM;
    }
    memset(e + n - 1, 0, 64 * sizeof *e);
    u->etags = e;
  }
  u->cur->number = n;
  u->next_part++;
  u->netags = n;
  u->cur = NULL;
  pthread_cond_broadcast(&u->cv);
  pthread_mutex_unlock(&u->mu);
  return 0;
}

/* A free buffer to fill, waiting for one; NULL on an error. */
static struct part_buf *take_free(struct s3_upload *u) {
  pthread_mutex_lock(&u->mu);
  struct part_buf *b = NULL;
  while (!u->error) {
    for (int i = 0; i < u->inflight && !b; i++)
      if (u->bufs[i].number == 0 && &u->bufs[i] != u->cur) b = &u->bufs[i];
    if (b) break;
    pthread_cond_wait(&u->cv, &u->mu);
  }
  pthread_mutex_unlock(&u->mu);
  if (b && !b->p) {
    b->p = malloc(u->part_size);
    if (!b->p) {
      pthread_mutex_lock(&u->mu);
      u->error = -ENOMEM;
      pthread_mutex_unlock(&u->mu);
      return NULL;
    }
  }
  if (b) b->n = 0;
  return b;
}

/* The buffer being filled, taken when there is none: 0 or the error. */
static int current(struct s3_upload *u) {
  pthread_mutex_lock(&u->mu);
  int err = u->error;
  pthread_mutex_unlock(&u->mu);
  if (err) return err;
  if (!u->cur) {
    u->cur = take_free(u);
    if (!u->cur) return u->error;
  }
  return 0;
}

/* n bytes were put at the end of the current buffer: a full one goes. */
static int filled(struct s3_upload *u, size_t n) {
  u->cur->n += n;
  if (u->cur->n < u->part_size) return 0;
  if (!u->upload_id[0] && upload_start(u) != 0) return u->error;
  return queue_current(u);
}

int s3_upload_write(struct s3_upload *u, const void *buf, size_t n) {
  const unsigned char *p = buf;
  while (n > 0) {
    int rc = current(u);
    if (rc) return rc;
    size_t room = u->part_size - u->cur->n;
    size_t k = n < room ? n : room;
    memcpy(u->cur->p + u->cur->n, p, k);
    p += k;
    n -= k;
    rc = filled(u, k);
    if (rc) return rc;
  }
  return 0;
}

void *s3_upload_room(struct s3_upload *u, size_t want) {
  if (current(u) != 0 || u->part_size - u->cur->n < want) return NULL;
  return u->cur->p + u->cur->n;
}

int s3_upload_commit(struct s3_upload *u, size_t n) {
  return filled(u, n);
}

static void stop_threads(struct s3_upload *u) {
  pthread_mutex_lock(&u->mu);
  u->stopping = 1;
  pthread_cond_broadcast(&u->cv);
  pthread_mutex_unlock(&u->mu);
  for (int i = 0; i < u->nthreads; i++)
    pthread_join(u->threads[i], NULL);
  u->nthreads = 0;
}

int s3_upload_finish(struct s3_upload *u) {
  if (u->error) return u->error;
  if (!u->upload_id[0]) {
    /* Smaller than a part: one PUT. */
    int rc = s3_put(u->main, u->bucket, u->key,
                    u->cur ? (const void *)u->cur->p : (const void *)"",
                    u->cur ? u->cur->n : 0);
    if (rc != 0) {
      snprintf(u->err, sizeof u->err, "%s", s3_error(u->main));
      u->error = rc;
    }
    return rc;
  }
  if (u->cur && u->cur->n > 0) {
    int rc = queue_current(u);
    if (rc) {
      s3_upload_abort(u);
      return rc;
    }
  }
  /* Every part sent (or an error). */
  pthread_mutex_lock(&u->mu);
  while (!u->error && u->queue_head < u->next_part) {
    pthread_cond_wait(&u->cv, &u->mu);
  }
  int busy = 1;
  while (!u->error && busy) {
    busy = 0;
    for (int i = 0; i < u->inflight; i++)
      if (u->bufs[i].number != 0) busy = 1;
    if (busy) pthread_cond_wait(&u->cv, &u->mu);
  }
  int rc = u->error;
  pthread_mutex_unlock(&u->mu);
  stop_threads(u);
  if (rc == 0) {
    rc = s3_mpu_complete(u->main, u->bucket, u->key, u->upload_id, u->etags,
                         u->netags);
    if (rc != 0) {
      snprintf(u->err, sizeof u->err, "%s", s3_error(u->main));
      u->error = rc;
    }
  }
  if (rc != 0)
    s3_upload_abort(u);
  else
    u->upload_id[0] = 0;
  return rc;
}

void s3_upload_abort(struct s3_upload *u) {
  pthread_mutex_lock(&u->mu);
  if (!u->error) u->error = -ECANCELED;
  __atomic_store_n(&u->cancel, 1, __ATOMIC_RELAXED);
  pthread_cond_broadcast(&u->cv);
  pthread_mutex_unlock(&u->mu);
  stop_threads(u);
  if (u->upload_id[0]) {
    /* The store may be what failed: a short time for it. */
    s3_client_deadline(u->main, s3_cleanup_ms(&u->cfg));
    int rc = s3_mpu_abort(u->main, u->bucket, u->key, u->upload_id);
    if (rc != 0 && rc != -ENOENT && !u->err[0])
      snprintf(u->err, sizeof u->err, "%s", s3_error(u->main));
    u->upload_id[0] = 0;
  }
}

void s3_upload_free(struct s3_upload *u) {
  if (!u) return;
  if (u->nthreads) s3_upload_abort(u);
  for (int i = 0; u->bufs && i < u->inflight; i++)
    free(u->bufs[i].p);
  free(u->bufs);
  for (int i = 0; i < u->netags; i++)
    free(u->etags[i]);
  free(u->etags);
  free(u->threads);
  s3_client_free(u->main);
  pthread_mutex_destroy(&u->mu);
  pthread_cond_destroy(&u->cv);
  free(u);
}
