/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal.c - the sealed stream of seal.h: libsodium's secretstream
 * (XChaCha20-Poly1305) in 64 KiB chunks behind a small header that names
 * the key.
 */
#include "seal.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ABYTES       crypto_secretstream_xchacha20poly1305_ABYTES
#define SEALED_CHUNK (SEAL_CHUNK + ABYTES)
static const unsigned char magic[8] = {'V', 'D', 'I', 'S', 'E', 'A', 'L', 0};
static const char id_context[] = "openvdi seal key id";

static int init(void) {
  return sodium_init() < 0 ? -ENOSYS : 0;
}

static void put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void key_id(struct seal_key *k) {
  crypto_generichash(k->id, sizeof k->id, (const unsigned char *)id_context,
                     sizeof id_context - 1, k->key, sizeof k->key);
}

void seal_key_id_hex(const unsigned char id[16], char *out) {
  sodium_bin2hex(out, 33, id, 16);
}

void seal_key_wipe(struct seal_key *k) {
  sodium_memzero(k, sizeof *k);
}

int seal_key_load(struct seal_key *k, const char *path, char *err,
                  size_t errlen) {
  if (init() != 0) {
    snprintf(err, errlen, "seal: libsodium cannot start");
    return -ENOSYS;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "key file %s: %s", path, strerror(e));
    return -e;
  }
  unsigned char buf[SEAL_KEY_BYTES + 1];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      snprintf(err, errlen, "key file %s: %s", path, strerror(e));
      return -e;
    }
    if (r == 0 || (have += (size_t)r) == sizeof buf) break;
  }
  close(fd);
  if (have != SEAL_KEY_BYTES) {
    sodium_memzero(buf, sizeof buf);
    snprintf(err, errlen,
             "key file %s: not a key (a key is exactly %d bytes; make one "
             "with `vdi keygen FILE`)",
             path, SEAL_KEY_BYTES);
    return -EINVAL;
  }
  memcpy(k->key, buf, SEAL_KEY_BYTES);
  sodium_memzero(buf, sizeof buf);
  key_id(k);
  return 0;
}

int seal_keygen(const char *path, char *err, size_t errlen) {
  if (init() != 0) {
    snprintf(err, errlen, "seal: libsodium cannot start");
    return -ENOSYS;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "key file %s: %s", path, strerror(e));
    return -e;
  }
  unsigned char key[SEAL_KEY_BYTES];
  crypto_secretstream_xchacha20poly1305_keygen(key);
  ssize_t w = write(fd, key, sizeof key);
  sodium_memzero(key, sizeof key);
  int e = w == (ssize_t)sizeof key ? 0 : (w < 0 ? errno : EIO);
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  if (e != 0) {
    unlink(path);
    snprintf(err, errlen, "key file %s: %s", path, strerror(e));
    return -e;
  }
  return 0;
}

uint64_t seal_sealed_size(uint64_t n) {
  uint64_t chunks = n == 0 ? 1 : (n + SEAL_CHUNK - 1) / SEAL_CHUNK;
  return SEAL_HEADER_BYTES + n + chunks * ABYTES;
}

/* ------------------------------------------------------------ writer */

struct seal_writer {
  crypto_secretstream_xchacha20poly1305_state st;
  unsigned char header[SEAL_HEADER_BYTES];
  unsigned char plain[SEAL_CHUNK];
  size_t have;
  unsigned char sealed[SEALED_CHUNK];
  seal_out_fn out;
  void *arg;
  int error, done;
};

int seal_writer_open(struct seal_writer **wp, const struct seal_key *k,
                     seal_out_fn out, void *arg) {
  *wp = NULL;
  if (init() != 0) return -ENOSYS;
  struct seal_writer *w = sodium_malloc(sizeof *w);
  if (!w) return -ENOMEM;
  memset(w, 0, sizeof *w);
  w->out = out;
  w->arg = arg;
  memcpy(w->header, magic, 8);
  put_le32(w->header + 8, 1);
  put_le32(w->header + 12, SEAL_CHUNK);
  memcpy(w->header + 16, k->id, 16);
  crypto_secretstream_xchacha20poly1305_init_push(&w->st, w->header + 32,
                                                  k->key);
  int rc = out(arg, w->header, sizeof w->header);
  if (rc != 0) {
    sodium_free(w);
    return rc;
  }
  *wp = w;
  return 0;
}

static int push(struct seal_writer *w, unsigned char tag) {
  unsigned long long clen;
  crypto_secretstream_xchacha20poly1305_push(&w->st, w->sealed, &clen, w->plain,
                                             w->have, w->header,
                                             sizeof w->header, tag);
  w->have = 0;
  int rc = w->out(w->arg, w->sealed, (size_t)clen);
  if (rc != 0) w->error = rc;
  return rc;
}

int seal_write(struct seal_writer *w, const void *buf, size_t n) {
  if (w->error) return w->error;
  if (w->done) return -EINVAL;
  const unsigned char *p = buf;
  while (n > 0) {
    /* A full chunk is sealed only when more follows: the last one, full
     * or not (empty only for an empty stream), is sealed FINAL. */
    if (w->have == SEAL_CHUNK) {
      int rc = push(w, 0);
      if (rc) return rc;
    }
    size_t k = SEAL_CHUNK - w->have;
    if (k > n) k = n;
    memcpy(w->plain + w->have, p, k);
    w->have += k;
    p += k;
    n -= k;
  }
  return 0;
}

int seal_writer_finish(struct seal_writer *w) {
  if (w->error) return w->error;
  if (w->done) return 0;
  int rc = push(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
  if (rc == 0) w->done = 1;
  return rc;
}

void seal_writer_free(struct seal_writer *w) {
  if (w) sodium_free(w);
}

/* ------------------------------------------------------------ reader */

struct seal_reader {
  crypto_secretstream_xchacha20poly1305_state st;
  struct seal_key key;
  unsigned char header[SEAL_HEADER_BYTES];
  size_t header_have;
  unsigned char sealed[SEALED_CHUNK];
  size_t have;
  unsigned char plain[SEAL_CHUNK];
  uint64_t chunk_no;
  seal_out_fn out;
  void *arg;
  int error, final;
  char err[256];
};

int seal_reader_open(struct seal_reader **rp, const struct seal_key *k,
                     seal_out_fn out, void *arg) {
  *rp = NULL;
  if (init() != 0) return -ENOSYS;
  struct seal_reader *r = sodium_malloc(sizeof *r);
  if (!r) return -ENOMEM;
  memset(r, 0, sizeof *r);
  r->key = *k;
  r->out = out;
  r->arg = arg;
  *rp = r;
  return 0;
}

const char *seal_reader_error(const struct seal_reader *r) {
  return r->err;
}

static int fail(struct seal_reader *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct seal_reader *r, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof r->err, fmt, ap);
  va_end(ap);
  return r->error = rc;
}

static int check_header(struct seal_reader *r) {
  if (memcmp(r->header, magic, 8) != 0)
    return fail(r, -EBADMSG, "not an encrypted stream (no VDISEAL header)");
  if (get_le32(r->header + 8) != 1)
    return fail(r, -EBADMSG, "encrypted stream of version %u (this is 1)",
                get_le32(r->header + 8));
  if (get_le32(r->header + 12) != SEAL_CHUNK)
    return fail(r, -EBADMSG, "encrypted stream with chunks of %u bytes",
                get_le32(r->header + 12));
  if (sodium_memcmp(r->header + 16, r->key.id, 16) != 0) {
    char want[33], have[33];
    seal_key_id_hex(r->header + 16, want);
    seal_key_id_hex(r->key.id, have);
    return fail(r, -EKEYREJECTED,
                "wrong key: the stream was encrypted with key %s, the key "
                "file holds key %s",
                want, have);
  }
  if (crypto_secretstream_xchacha20poly1305_init_pull(&r->st, r->header + 32,
                                                      r->key.key) != 0)
    return fail(r, -EBADMSG, "damaged encryption header");
  return 0;
}

/* Opens the chunk held; `last` when the stream ended after it (a cut is
 * then as likely as a changed byte). */
static int pull(struct seal_reader *r, int last) {
  unsigned long long mlen;
  unsigned char tag;
  if (crypto_secretstream_xchacha20poly1305_pull(&r->st, r->plain, &mlen, &tag,
                                                 r->sealed, r->have, r->header,
                                                 sizeof r->header) != 0)
    return fail(
        r, -EBADMSG, "%s: chunk %llu (at byte %llu) fails its authentication",
        last ? "truncated or damaged data (the last chunk)" : "damaged data",
        (unsigned long long)r->chunk_no,
        (unsigned long long)(SEAL_HEADER_BYTES + r->chunk_no * SEALED_CHUNK));
  r->have = 0;
  r->chunk_no++;
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) r->final = 1;
  if (mlen > 0) {
    int rc = r->out(r->arg, r->plain, (size_t)mlen);
    if (rc != 0) return r->error = rc;
  }
  return 0;
}

int seal_feed(struct seal_reader *r, const void *buf, size_t n) {
  const unsigned char *p = buf;
  while (n > 0) {
    if (r->error) return r->error;
    if (r->header_have < SEAL_HEADER_BYTES) {
      size_t k = SEAL_HEADER_BYTES - r->header_have;
      if (k > n) k = n;
      memcpy(r->header + r->header_have, p, k);
      r->header_have += k;
      p += k;
      n -= k;
      if (r->header_have == SEAL_HEADER_BYTES) {
        int rc = check_header(r);
        if (rc) return rc;
      }
      continue;
    }
    if (r->final)
      return fail(r, -EBADMSG, "damaged data: bytes after the final chunk");
    /* A chunk is opened when full; the short last one at the end. */
    if (r->have == SEALED_CHUNK) {
      int rc = pull(r, 0);
      if (rc) return rc;
      continue;
    }
    size_t k = SEALED_CHUNK - r->have;
    if (k > n) k = n;
    memcpy(r->sealed + r->have, p, k);
    r->have += k;
    p += k;
    n -= k;
  }
  return r->error;
}

int seal_reader_finish(struct seal_reader *r) {
  if (r->error) return r->error;
  if (r->header_have < SEAL_HEADER_BYTES)
    return fail(r, -EBADMSG, "truncated: no complete encryption header");
  if (!r->final && r->have > 0) {
    int rc = pull(r, 1);
    if (rc) return rc;
  }
  if (!r->final)
    return fail(r, -EBADMSG,
                "truncated: the stream ends before its final chunk");
  if (r->have > 0)
    return fail(r, -EBADMSG, "damaged data: bytes after the final chunk");
  return 0;
}

void seal_reader_free(struct seal_reader *r) {
  if (r) sodium_free(r);
}
