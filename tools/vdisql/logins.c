/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logins.c - the instance's logins file (see logins.h).
 *
 * Why PBKDF2-HMAC-SHA256 from OpenSSL rather than libsodium's Argon2id:
 * the instance links OpenSSL for TLS already (one library, not two), and
 * PBKDF2 costs time but no memory, so a flood of logins checked at once
 * cannot make the instance allocate Argon2's tens of MiB per attempt; the
 * number of hashes running at once is capped besides (HASHING).
 */
#include "logins.h"

#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SALT     16
#define HASH     32
#define HASHING  2 /* hashes computed at once */
#define MAX_NAME 128

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int hashing;

static void pbkdf2(const char *pw, const uint8_t *salt, int iter,
                   uint8_t out[HASH]) {
  pthread_mutex_lock(&mu);
  while (hashing >= HASHING)
    pthread_cond_wait(&cv, &mu);
  hashing++;
  pthread_mutex_unlock(&mu);
  if (PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, SALT, iter, EVP_sha256(),
                        HASH, out) != 1)
    memset(out, 0xFF, HASH); /* matches nothing a real hash would */
  pthread_mutex_lock(&mu);
  hashing--;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

static void path_of(const char *dir, char *out, size_t n) {
  snprintf(out, n, "%s/.vdisql/logins", dir);
}

static int unhex(const char *s, uint8_t *out, size_t n) {
  if (strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

static void tohex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

/* Parse one line: 0 with its fields, -1 if it is not a login line. */
static int parse(char *line, char **name, int *iter, uint8_t salt[SALT],
                 uint8_t hash[HASH]) {
  line[strcspn(line, "\r\n")] = 0;
  char *f[5], *save = NULL, *p = line;
  for (int i = 0; i < 5; i++) {
    f[i] = strtok_r(p, ":", &save);
    p = NULL;
    if (!f[i]) return -1;
  }
  if (strcmp(f[1], "pbkdf2-sha256") != 0) return -1;
  char *end;
  long it = strtol(f[2], &end, 10);
  if (*end || it < 1000 || it > 100000000 || unhex(f[3], salt, SALT) ||
      unhex(f[4], hash, HASH))
    return -1;
  *name = f[0];
  *iter = (int)it;
  return 0;
}

/* The file, if it is safe to trust: ours, not readable by others. */
static FILE *open_file(const char *dir, int warn) {
  char path[PATH_MAX + 32];
  path_of(dir, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077)) {
    if (warn)
      fprintf(stderr,
              "vdisql: '%s' is ignored: it must be a file of this user "
              "with mode 0600\n",
              path);
    close(fd);
    return NULL;
  }
  FILE *f = fdopen(fd, "r");
  if (!f) close(fd);
  return f;
}

int logins_check(const char *dir, const char *sa_password, const char *user,
                 const char *password) {
  if (sa_password && strcasecmp(user, "sa") == 0) {
    /* Equal lengths for CRYPTO_memcmp: compare digests. */
    uint8_t a[32], b[32];
    unsigned la = 0, lb = 0;
    EVP_Digest(sa_password, strlen(sa_password), a, &la, EVP_sha256(), NULL);
    EVP_Digest(password, strlen(password), b, &lb, EVP_sha256(), NULL);
    return la == 32 && lb == 32 && CRYPTO_memcmp(a, b, 32) == 0;
  }
  uint8_t salt[SALT] = {0}, want[HASH] = {0}, got[HASH];
  int iter = LOGINS_ITERATIONS, found = 0;
  FILE *f = open_file(dir, 1);
  char line[1024];
  while (f && !found && fgets(line, sizeof line, f)) {
    char *name;
    int it;
    uint8_t s[SALT], h[HASH];
    if (parse(line, &name, &it, s, h) == 0 && strcasecmp(name, user) == 0) {
      found = 1;
      iter = it;
      memcpy(salt, s, SALT);
      memcpy(want, h, HASH);
    }
  }
  if (f) fclose(f);
  /* An unknown login costs the same hash: its time tells nothing. */
  pbkdf2(password, salt, iter, got);
  return (CRYPTO_memcmp(got, want, HASH) == 0) & found;
}

/* Rewrite the file without @p name, plus @p add (a line) if not NULL. */
static int rewrite(const char *dir, const char *name, const char *add,
                   int *had) {
  char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
  int rc = guard_private_dir(dir, NULL, path, sizeof path);
  if (rc != 0) {
    errno = -rc;
    return -1;
  }
  path_of(dir, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  FILE *out = fdopen(fd, "w");
  if (!out) {
    close(fd);
    unlink(tmp);
    return -1;
  }
  *had = 0;
  FILE *in = open_file(dir, 1);
  if (!in && access(path, F_OK) == 0) { /* there, but not to be trusted */
    fclose(out);
    unlink(tmp);
    errno = EPERM;
    return -1;
  }
  char line[1024], copy[1024];
  while (in && fgets(line, sizeof line, in)) {
    char *n;
    int it;
    uint8_t s[SALT], h[HASH];
    snprintf(copy, sizeof copy, "%s", line);
    if (parse(copy, &n, &it, s, h) == 0 && strcasecmp(n, name) == 0) {
      *had = 1;
      continue;
    }
    fputs(line, out);
  }
  if (in) fclose(in);
  if (add) fputs(add, out);
  int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
  if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  return 0;
}

static int valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > MAX_NAME) return 0;
  for (const char *p = name; *p; p++)
    if (*p == ':' || *p == '\n' || *p == '\r' || (unsigned char)*p < 0x20)
      return 0;
  return 1;
}

int logins_add(const char *dir, const char *name) {
  if (!valid_name(name)) {
    fprintf(stderr,
            "vdisql: --add-login '%s': a name of 1 to %d characters, "
            "without ':' or control characters\n",
            name, MAX_NAME);
    return 1;
  }
  char pw[256] = "";
  const char *env = getenv("VDISQL_LOGIN_PASSWORD");
  if (env) {
    snprintf(pw, sizeof pw, "%s", env);
  } else if (!fgets(pw, sizeof pw, stdin)) {
    pw[0] = 0;
  }
  pw[strcspn(pw, "\r\n")] = 0;
  if (!pw[0] || strlen(pw) > 128) {
    fprintf(stderr, "vdisql: --add-login: the password (1 to 128 "
                    "characters) comes from $VDISQL_LOGIN_PASSWORD or "
                    "the first line of stdin\n");
    return 1;
  }
  uint8_t salt[SALT], hash[HASH];
  if (RAND_bytes(salt, SALT) != 1) {
    fprintf(stderr, "vdisql: --add-login: no random bytes for the salt\n");
    return 1;
  }
  pbkdf2(pw, salt, LOGINS_ITERATIONS, hash);
  OPENSSL_cleanse(pw, sizeof pw);
  char line[512], sh[2 * SALT + 1], hh[2 * HASH + 1];
  tohex(salt, SALT, sh);
  tohex(hash, HASH, hh);
  snprintf(line, sizeof line, "%s:pbkdf2-sha256:%d:%s:%s\n", name,
           LOGINS_ITERATIONS, sh, hh);
  int had;
  if (rewrite(dir, name, line, &had) != 0) {
    fprintf(stderr,
            "vdisql: --add-login: cannot write '%s/.vdisql/logins': "
            "%s\n",
            dir, strerror(errno));
    return 1;
  }
  fprintf(stderr, "vdisql: login '%s' %s\n", name, had ? "changed" : "added");
  return 0;
}

int logins_remove(const char *dir, const char *name) {
  int had;
  if (rewrite(dir, name, NULL, &had) != 0) {
    fprintf(stderr,
            "vdisql: --remove-login: cannot write '%s/.vdisql/logins': %s\n",
            dir, strerror(errno));
    return 1;
  }
  fprintf(stderr, "vdisql: login '%s' %s\n", name,
          had ? "removed" : "was not there");
  return had ? 0 : 1;
}
