/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal.c - the sealed stream of seal.h: libsodium's secretstream
 * (XChaCha20-Poly1305), or AES-256-GCM with OpenSSL's EVP (about four
 * times faster where the CPU has AES-NI), in 64 KiB chunks behind a small
 * header that names the key.
 */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ABYTES     crypto_secretstream_xchacha20poly1305_ABYTES
#define GCM_TAG    16
#define SEALED_MAX (SEAL_CHUNK + ABYTES)
static const unsigned char magic[8] = {'V', 'D', 'I', 'S', 'E', 'A', 'L', 0};
static const char id_context[] = "openvdi seal key id";
static const char v2_context[] = "openvdi seal v2 aes-256-gcm";

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

/* ------------------------------------------------------------ recipients */

static const char recipient_context[] = "openvdi recipient secret";

/* A key file's X25519 key pair. */
static void recipient_pair(const struct seal_key *k,
                           unsigned char sk[crypto_box_SECRETKEYBYTES],
                           unsigned char pk[crypto_box_PUBLICKEYBYTES]) {
  crypto_generichash(sk, crypto_box_SECRETKEYBYTES,
                     (const unsigned char *)recipient_context,
                     sizeof recipient_context - 1, k->key, sizeof k->key);
  crypto_scalarmult_base(pk, sk);
}

void seal_public_hex(const struct seal_key *k, char *out) {
  unsigned char sk[crypto_box_SECRETKEYBYTES], pk[crypto_box_PUBLICKEYBYTES];
  recipient_pair(k, sk, pk);
  sodium_memzero(sk, sizeof sk);
  sodium_bin2hex(out, 2 * SEAL_PUBLIC_BYTES + 1, pk, sizeof pk);
}

int seal_public_load(unsigned char pk[SEAL_PUBLIC_BYTES], const char *path,
                     char *err, size_t errlen) {
  if (init() != 0) {
    snprintf(err, errlen, "seal: libsodium cannot start");
    return -ENOSYS;
  }
  FILE *f = fopen(path, "re");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "public key file %s: %s", path, strerror(e));
    return -e;
  }
  char text[200];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
    text[--n] = 0;
  size_t got = 0;
  if (n != 2 * SEAL_PUBLIC_BYTES ||
      sodium_hex2bin(pk, SEAL_PUBLIC_BYTES, text, n, NULL, &got, NULL) != 0 ||
      got != SEAL_PUBLIC_BYTES) {
    snprintf(err, errlen,
             "public key file %s: not a public key (64 hex digits, as `vdi "
             "keygen --public KEYFILE` prints)",
             path);
    return -EINVAL;
  }
  return 0;
}

int seal_wrap_new(const unsigned char pk[SEAL_PUBLIC_BYTES], struct seal_key *k,
                  char *wrapped) {
  if (init() != 0) return -ENOSYS;
  unsigned char box[crypto_box_SEALBYTES + SEAL_KEY_BYTES];
  randombytes_buf(k->key, sizeof k->key);
  key_id(k);
  if (crypto_box_seal(box, k->key, sizeof k->key, pk) != 0) return -EINVAL;
  sodium_bin2hex(wrapped, SEAL_WRAPPED_HEX, box, sizeof box);
  return 0;
}

int seal_unwrap(const struct seal_key *mine, const char *wrapped,
                struct seal_key *k) {
  if (init() != 0) return -ENOSYS;
  unsigned char box[crypto_box_SEALBYTES + SEAL_KEY_BYTES];
  size_t got = 0;
  if (strlen(wrapped) != 2 * sizeof box ||
      sodium_hex2bin(box, sizeof box, wrapped, strlen(wrapped), NULL, &got,
                     NULL) != 0 ||
      got != sizeof box)
    return -EBADMSG;
  unsigned char sk[crypto_box_SECRETKEYBYTES], pk[crypto_box_PUBLICKEYBYTES];
  recipient_pair(mine, sk, pk);
  int rc = crypto_box_seal_open(k->key, box, sizeof box, pk, sk);
  sodium_memzero(sk, sizeof sk);
  if (rc != 0) return -EKEYREJECTED;
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

int seal_default_alg(void) {
  const char *v = getenv("VDI_SEAL_ALGORITHM");
  if (v && *v) {
    if (strcmp(v, "aes-256-gcm") == 0) return SEAL_AES256GCM;
    if (strcmp(v, "xchacha20poly1305") == 0) return SEAL_XCHACHA20POLY1305;
    return 0;
  }
  if (init() != 0) return SEAL_XCHACHA20POLY1305;
  return crypto_aead_aes256gcm_is_available() ? SEAL_AES256GCM
                                              : SEAL_XCHACHA20POLY1305;
}

const char *seal_alg_name(int alg) {
  return alg == SEAL_AES256GCM           ? "aes-256-gcm"
         : alg == SEAL_XCHACHA20POLY1305 ? "xchacha20poly1305"
                                         : NULL;
}

size_t seal_abytes(int alg) {
  return alg == SEAL_AES256GCM ? GCM_TAG : ABYTES;
}

uint64_t seal_sealed_size_alg(int alg, uint64_t n) {
  uint64_t chunks = n == 0 ? 1 : (n + SEAL_CHUNK - 1) / SEAL_CHUNK;
  return SEAL_HEADER_BYTES + n + chunks * seal_abytes(alg);
}

uint64_t seal_sealed_size(uint64_t n) {
  return seal_sealed_size_alg(seal_default_alg(), n);
}

/* Version 2: the stream's AES key, from the key and the header's salt. */
static void v2_key(unsigned char out[32], const unsigned char *key,
                   const unsigned char *salt) {
  unsigned char msg[sizeof v2_context - 1 + 24];
  memcpy(msg, v2_context, sizeof v2_context - 1);
  memcpy(msg + sizeof v2_context - 1, salt, 24);
  crypto_generichash(out, 32, msg, sizeof msg, key, SEAL_KEY_BYTES);
}

/* Version 2: chunk i's nonce. */
static void v2_nonce(unsigned char nonce[12], uint64_t i) {
  memset(nonce, 0, 12);
  for (int b = 0; b < 8; b++)
    nonce[b] = (unsigned char)(i >> (8 * b));
}

/* Version 2: seals (enc) or opens one chunk of n bytes (the text without
 * the tag) in place of out; 0, or -1 when it does not authenticate. */
static int v2_chunk(EVP_CIPHER_CTX *ctx, int enc, uint64_t i,
                    const unsigned char *header, int last,
                    const unsigned char *in, size_t n, unsigned char *out,
                    unsigned char *tag) {
  unsigned char nonce[12], fin = last ? 1 : 0;
  int l = 0, ok;
  v2_nonce(nonce, i);
  ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) == 1 &&
       EVP_CipherUpdate(ctx, NULL, &l, header, SEAL_HEADER_BYTES) == 1 &&
       EVP_CipherUpdate(ctx, NULL, &l, &fin, 1) == 1 &&
       (n == 0 || EVP_CipherUpdate(ctx, out, &l, in, (int)n) == 1);
  if (ok && !enc)
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1;
  ok = ok && EVP_CipherFinal_ex(ctx, out + n, &l) == 1;
  if (ok && enc)
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag) == 1;
  return ok ? 0 : -1;
}

/* Version 2: a context for the stream's key. */
static EVP_CIPHER_CTX *v2_ctx(const unsigned char *key,
                              const unsigned char *salt, int enc) {
  unsigned char k[32];
  v2_key(k, key, salt);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx &&
      EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k, NULL, enc) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    ctx = NULL;
  }
  sodium_memzero(k, sizeof k);
  return ctx;
}

/* ------------------------------------------------------------ writer */

struct seal_writer {
  crypto_secretstream_xchacha20poly1305_state st;
  EVP_CIPHER_CTX *gcm; /* version 2 */
  uint64_t chunk_no;
  int alg;
  unsigned char header[SEAL_HEADER_BYTES];
  unsigned char plain[SEAL_CHUNK];
  size_t have;
  unsigned char sealed[SEALED_MAX];
  seal_out_fn out;
  seal_room_fn room;
  seal_placed_fn placed;
  void *arg;
  int error, done;
};

void seal_writer_in_place(struct seal_writer *w, seal_room_fn room,
                          seal_placed_fn placed) {
  w->room = room;
  w->placed = placed;
}

int seal_writer_open(struct seal_writer **wp, const struct seal_key *k,
                     seal_out_fn out, void *arg) {
  return seal_writer_open_alg(wp, k, seal_default_alg(), out, arg);
}

int seal_writer_open_alg(struct seal_writer **wp, const struct seal_key *k,
                         int alg, seal_out_fn out, void *arg) {
  *wp = NULL;
  if (init() != 0) return -ENOSYS;
  if (!seal_alg_name(alg)) return -EINVAL;
  struct seal_writer *w = sodium_malloc(sizeof *w);
  if (!w) return -ENOMEM;
  memset(w, 0, sizeof *w);
  w->out = out;
  w->arg = arg;
  w->alg = alg;
  memcpy(w->header, magic, 8);
  put_le32(w->header + 8, (uint32_t)alg);
  put_le32(w->header + 12, SEAL_CHUNK);
  memcpy(w->header + 16, k->id, 16);
  if (alg == SEAL_AES256GCM) {
    randombytes_buf(w->header + 32, 24);
    w->gcm = v2_ctx(k->key, w->header + 32, 1);
    if (!w->gcm) {
      sodium_free(w);
      return -ENOMEM;
    }
  } else {
    crypto_secretstream_xchacha20poly1305_init_push(&w->st, w->header + 32,
                                                    k->key);
  }
  int rc = out(arg, w->header, sizeof w->header);
  if (rc != 0) {
    seal_writer_free(w);
    return rc;
  }
  *wp = w;
  return 0;
}

/* Seals n bytes at src (the buffered chunk, or a whole one of the
 * caller's) as the next chunk. */
static int push_from(struct seal_writer *w, const unsigned char *src, size_t n,
                     int last) {
  size_t clen = n + seal_abytes(w->alg);
  /* Straight into the reader's memory if it has room, else ours. */
  unsigned char *dst = w->room ? w->room(w->arg, clen) : NULL;
  unsigned char *to = dst ? dst : w->sealed;
  if (w->alg == SEAL_AES256GCM) {
    if (v2_chunk(w->gcm, 1, w->chunk_no, w->header, last, src, n, to, to + n) !=
        0)
      return w->error = -EIO;
  } else {
    crypto_secretstream_xchacha20poly1305_push(
        &w->st, to, NULL, src, n, w->header, sizeof w->header,
        last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
  }
  w->chunk_no++;
  int rc = dst ? w->placed(w->arg, clen) : w->out(w->arg, w->sealed, clen);
  if (rc != 0) w->error = rc;
  return rc;
}

static int push(struct seal_writer *w, int last) {
  size_t n = w->have;
  w->have = 0;
  return push_from(w, w->plain, n, last);
}

int seal_write(struct seal_writer *w, const void *buf, size_t n) {
  if (w->error) return w->error;
  if (w->done) return -EINVAL;
  const unsigned char *p = buf;
  while (n > 0) {
    /* A full chunk is sealed only when more follows: the last one, full
     * or not (empty only for an empty stream), is sealed as the last. */
    if (w->have == SEAL_CHUNK) {
      int rc = push(w, 0);
      if (rc) return rc;
    }
    /* A whole chunk of the caller's with more after it: sealed where it
     * is, not copied first. */
    if (w->have == 0 && n > SEAL_CHUNK) {
      int rc = push_from(w, p, SEAL_CHUNK, 0);
      if (rc) return rc;
      p += SEAL_CHUNK;
      n -= SEAL_CHUNK;
      continue;
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

int seal_writer_alg(const struct seal_writer *w) {
  return w->alg;
}

int seal_writer_finish(struct seal_writer *w) {
  if (w->error) return w->error;
  if (w->done) return 0;
  int rc = push(w, 1);
  if (rc == 0) w->done = 1;
  return rc;
}

void seal_writer_free(struct seal_writer *w) {
  if (!w) return;
  EVP_CIPHER_CTX_free(w->gcm);
  sodium_free(w);
}

/* ------------------------------------------------------------ reader */

struct seal_reader {
  crypto_secretstream_xchacha20poly1305_state st;
  EVP_CIPHER_CTX *gcm; /* version 2 */
  int alg;
  size_t sealed_chunk; /* a full chunk as stored */
  struct seal_key key;
  unsigned char header[SEAL_HEADER_BYTES];
  size_t header_have;
  unsigned char sealed[SEALED_MAX];
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

int seal_reader_alg(const struct seal_reader *r) {
  return r->alg;
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
  uint32_t version = get_le32(r->header + 8);
  if (!seal_alg_name((int)version))
    return fail(r, -EBADMSG,
                "encrypted stream of version %u (this vdi reads 1 and 2)",
                version);
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
  r->alg = (int)version;
  r->sealed_chunk = SEAL_CHUNK + seal_abytes(r->alg);
  if (r->alg == SEAL_AES256GCM) {
    r->gcm = v2_ctx(r->key.key, r->header + 32, 0);
    if (!r->gcm) return fail(r, -ENOMEM, "out of memory");
    return 0;
  }
  if (crypto_secretstream_xchacha20poly1305_init_pull(&r->st, r->header + 32,
                                                      r->key.key) != 0)
    return fail(r, -EBADMSG, "damaged encryption header");
  return 0;
}

/* Opens the chunk held; `last` when the stream ended after it (a cut is
 * then as likely as a changed byte). */
static int pull(struct seal_reader *r, int last) {
  size_t mlen = 0;
  int bad;
  if (r->alg == SEAL_AES256GCM) {
    bad = r->have < GCM_TAG;
    if (!bad) {
      mlen = r->have - GCM_TAG;
      bad = v2_chunk(r->gcm, 0, r->chunk_no, r->header, last, r->sealed, mlen,
                     r->plain, r->sealed + mlen) != 0;
    }
    if (!bad && last) r->final = 1;
  } else {
    unsigned long long l = 0;
    unsigned char tag = 0;
    bad = crypto_secretstream_xchacha20poly1305_pull(
              &r->st, r->plain, &l, &tag, r->sealed, r->have, r->header,
              sizeof r->header) != 0;
    mlen = (size_t)l;
    if (!bad && tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
      r->final = 1;
  }
  if (bad)
    return fail(
        r, -EBADMSG, "%s: chunk %llu (at byte %llu) fails its authentication",
        last ? "truncated or damaged data (the last chunk)" : "damaged data",
        (unsigned long long)r->chunk_no,
        (unsigned long long)(SEAL_HEADER_BYTES +
                             r->chunk_no * r->sealed_chunk));
  r->have = 0;
  r->chunk_no++;
  if (mlen > 0) {
    int rc = r->out(r->arg, r->plain, mlen);
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
    /* A chunk is opened when full and more follows; the last one at the
     * end. */
    if (r->have == r->sealed_chunk) {
      int rc = pull(r, 0);
      if (rc) return rc;
      continue;
    }
    size_t k = r->sealed_chunk - r->have;
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
  if (!r) return;
  EVP_CIPHER_CTX_free(r->gcm);
  sodium_free(r);
}
