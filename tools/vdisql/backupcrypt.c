/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backupcrypt.c - the encrypting and decrypting media (see backupcrypt.h).
 *
 * One media family of an encrypted backup set:
 *   stream header (1024 bytes, in clear: HEADERONLY reads it without the
 *     certificate, as SQL Server does)
 *   key record: "VKEY", version 1, algorithm, wrapped length, the data key
 *     wrapped by the certificate's RSA key (OAEP, SHA-256), CRC-32C
 *   frames: length (u32), final flag and padding (u32), ciphertext, GCM tag
 * Every frame but the last holds FRAME_DATA plain bytes.  The nonce is the
 * stripe's index and the frame's number; the authenticated data is
 * SHA-256(header, key record), the frame's number and its first 8 bytes.
 * So no byte of a header, a key record or a frame can change, and no frame
 * can be dropped, repeated, moved to another stripe or cut off at the end
 * (the final flag), without the frame failing to authenticate.  The last
 * frame is followed by zeros up to the device's alignment.
 */
#include "backupcrypt.h"

#include "crc32c.h"
#include "le.h"

#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_DATA  (64u * 1024u)
#define FRAME_HDR   8u
#define TAG_LEN     16u
#define KREC_FIXED  16u
#define MAX_WRAPPED 1024u
#define F_FINAL     0x80000000u
#define KREC_MAGIC  "VKEY"

struct bstripe {
  uint8_t hash[32];  /* SHA-256 of the header and the key record */
  uint32_t lindex;   /* the stripe's index in the set (its header's) */
  uint64_t seq;      /* next frame */
  uint64_t out;      /* writer: bytes given to the inner media */
  size_t hdr_got;    /* writer: header bytes collected */
  uint8_t *hdr;      /* writer: the header */
  uint8_t *buf;      /* plain bytes of the current frame */
  size_t len, pos;   /* reader: bytes in buf, bytes consumed */
  int key_read, end; /* reader: key record read; final frame read */
};

typedef struct bcm {
  media_t m;
  media_t *inner;
  const EVP_CIPHER *cipher;
  uint32_t alg;
  size_t key_len;
  uint8_t key[32];
  int have_key;
  int keyed; /* ctx holds the key schedule (set once have_key) */
  uint8_t krec[KREC_FIXED + MAX_WRAPPED + 4]; /* writer: the key record */
  size_t krec_len;
  vs_header h;        /* reader: the set's header */
  EVP_PKEY *priv;     /* reader: not owned */
  char *const *names; /* reader: devices, by media index */
  uint8_t *ct;        /* FRAME_DATA + TAG_LEN */
  EVP_CIPHER_CTX *ctx;
  struct bstripe s[VS_MAX_STRIPES];
} bcm;

static int set_alg(bcm *b, uint32_t alg) {
  b->alg = alg;
  switch (alg) {
  case VS_ENC_AES_128:
    b->cipher = EVP_aes_128_gcm(), b->key_len = 16;
    return 0;
  case VS_ENC_AES_192:
    b->cipher = EVP_aes_192_gcm(), b->key_len = 24;
    return 0;
  case VS_ENC_AES_256:
    b->cipher = EVP_aes_256_gcm(), b->key_len = 32;
    return 0;
  }
  return -1;
}

/* Encrypt (@p enc) or decrypt-and-verify one frame of stripe @p st in
 * place of b->ct / st->buf.  0, or -1 (decrypting: it does not
 * authenticate). */
static int frame_crypt(bcm *b, struct bstripe *st, const uint8_t fh[FRAME_HDR],
                       uint32_t len, int enc) {
  uint8_t nonce[12], aad[32 + 8 + FRAME_HDR];
  int n = 0, ok;
  le_put32(nonce, st->lindex);
  le_put64(nonce + 4, st->seq);
  memcpy(aad, st->hash, 32);
  le_put64(aad + 32, st->seq);
  memcpy(aad + 40, fh, FRAME_HDR);
  /* The key schedule once; each frame sets only its nonce. */
  ok = (b->keyed ||
        EVP_CipherInit_ex(b->ctx, b->cipher, NULL, b->key, NULL, enc)) &&
       EVP_CipherInit_ex(b->ctx, NULL, NULL, NULL, nonce, enc) &&
       EVP_CipherUpdate(b->ctx, NULL, &n, aad, sizeof aad);
  b->keyed = ok;
  if (enc)
    ok =
        ok && EVP_CipherUpdate(b->ctx, b->ct, &n, st->buf, (int)len) &&
        EVP_CipherFinal_ex(b->ctx, b->ct + n, &n) &&
        EVP_CIPHER_CTX_ctrl(b->ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, b->ct + len);
  else
    ok = ok && EVP_CipherUpdate(b->ctx, st->buf, &n, b->ct, (int)len) &&
         EVP_CIPHER_CTX_ctrl(b->ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
                             b->ct + len) &&
         EVP_CipherFinal_ex(b->ctx, st->buf + n, &n);
  return ok ? 0 : -1;
}

static int hash_of(const uint8_t *hdr, const uint8_t *krec, size_t krec_len,
                   uint8_t out[32]) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  unsigned n = 0;
  int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
           EVP_DigestUpdate(c, hdr, VS_HEADER_SIZE) &&
           EVP_DigestUpdate(c, krec, krec_len) &&
           EVP_DigestFinal_ex(c, out, &n);
  EVP_MD_CTX_free(c);
  return ok ? 0 : -1;
}

/* ---- writing ---- */

static int put(bcm *b, unsigned i, const void *p, size_t n) {
  b->s[i].out += n;
  return media_write(b->inner, i, p, n);
}

static int emit_header(bcm *b, unsigned i) {
  struct bstripe *st = &b->s[i];
  st->lindex = le_get32(st->hdr + 32); /* stripe_index (vstream.c) */
  if (hash_of(st->hdr, b->krec, b->krec_len, st->hash) != 0) {
    vmsg_set(b->m.err, 701,
             "There is insufficient system memory to run "
             "BACKUP.");
    return -1;
  }
  return put(b, i, st->hdr, VS_HEADER_SIZE) || put(b, i, b->krec, b->krec_len)
             ? -1
             : 0;
}

static int emit_frame(bcm *b, unsigned i, int final) {
  struct bstripe *st = &b->s[i];
  uint8_t fh[FRAME_HDR];
  uint32_t len = (uint32_t)st->len, pad = 0;
  if (final) {
    uint32_t a = b->inner->align ? b->inner->align : 1;
    uint64_t end = st->out + FRAME_HDR + len + TAG_LEN;
    pad = (uint32_t)((a - end % a) % a);
  }
  le_put32(fh, len);
  le_put32(fh + 4, final ? F_FINAL | pad : 0);
  if (frame_crypt(b, st, fh, len, 1) != 0) {
    vmsg_set(b->m.err, 3013, "The backup data cannot be encrypted.");
    return -1;
  }
  if (put(b, i, fh, FRAME_HDR) || put(b, i, b->ct, len + TAG_LEN)) return -1;
  static const uint8_t zero[4096];
  while (pad > 0) {
    uint32_t k = pad < sizeof zero ? pad : (uint32_t)sizeof zero;
    if (put(b, i, zero, k)) return -1;
    pad -= k;
  }
  st->seq++;
  st->len = 0;
  return 0;
}

static int w_write(media_t *m, unsigned i, const void *buf, size_t len) {
  bcm *b = (bcm *)m;
  struct bstripe *st = &b->s[i];
  const uint8_t *p = buf;
  while (len > 0) {
    size_t k;
    if (st->hdr_got < VS_HEADER_SIZE) {
      k = VS_HEADER_SIZE - st->hdr_got;
      if (k > len) k = len;
      memcpy(st->hdr + st->hdr_got, p, k);
      st->hdr_got += k;
      if (st->hdr_got == VS_HEADER_SIZE && emit_header(b, i)) return -1;
    } else {
      k = FRAME_DATA - st->len;
      if (k > len) k = len;
      memcpy(st->buf + st->len, p, k);
      st->len += k;
      if (st->len == FRAME_DATA && emit_frame(b, i, 0)) return -1;
    }
    p += k;
    len -= k;
  }
  return 0;
}

static int w_finish(media_t *m, int ok) {
  bcm *b = (bcm *)m;
  int rc = 0;
  for (unsigned i = 0; ok && i < m->nstripes; i++)
    if (b->s[i].hdr_got != VS_HEADER_SIZE || emit_frame(b, i, 1))
      ok = 0, rc = -1;
  if (b->inner->ops->finish(b->inner, ok) != 0) rc = -1;
  return rc;
}

static int bc_peer_ok(media_t *m) {
  return media_peer_ok(((bcm *)m)->inner);
}

static void bc_destroy(media_t *m) {
  bcm *b = (bcm *)m;
  if (b->inner) b->inner->ops->destroy(b->inner);
  for (unsigned i = 0; i < VS_MAX_STRIPES; i++) {
    free(b->s[i].hdr);
    if (b->s[i].buf) OPENSSL_cleanse(b->s[i].buf, FRAME_DATA);
    free(b->s[i].buf);
  }
  EVP_CIPHER_CTX_free(b->ctx);
  free(b->ct);
  OPENSSL_cleanse(b->key, sizeof b->key);
  free(b);
}

static long no_read(media_t *m, unsigned i, void *buf, size_t len) {
  (void)i, (void)buf, (void)len;
  vmsg_set(m->err, 3013, "The media is open for writing.");
  return -1;
}

static int no_write(media_t *m, unsigned i, const void *buf, size_t len) {
  (void)i, (void)buf, (void)len;
  vmsg_set(m->err, 3013, "The media is open for reading.");
  return -1;
}

static const struct media_ops writer_ops = {w_write, no_read, w_finish,
                                            bc_peer_ok, bc_destroy};

static bcm *bc_new(media_t *inner, int writing) {
  bcm *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->inner = inner;
  b->m.nstripes = inner->nstripes;
  b->m.align = 1; /* the stream's trailer needs no padding: frames pad */
  b->m.device_type = inner->device_type;
  b->m.err = inner->err;
  b->ct = malloc(FRAME_DATA + TAG_LEN);
  b->ctx = EVP_CIPHER_CTX_new();
  int ok = b->ct && b->ctx;
  for (unsigned i = 0; ok && i < inner->nstripes; i++) {
    b->s[i].buf = malloc(FRAME_DATA);
    if (writing) b->s[i].hdr = malloc(VS_HEADER_SIZE);
    ok = b->s[i].buf && (!writing || b->s[i].hdr);
  }
  if (!ok) {
    b->inner = NULL;
    bc_destroy(&b->m);
    return NULL;
  }
  return b;
}

media_t *bc_writer(media_t *inner, uint32_t alg, EVP_PKEY *pub, vmsg *err) {
  bcm *b = bc_new(inner, 1);
  EVP_PKEY_CTX *pc = NULL;
  size_t wl = MAX_WRAPPED;
  if (!b) {
    vmsg_set(err, 701, "There is insufficient system memory to run BACKUP.");
    goto fail;
  }
  b->m.ops = &writer_ops;
  pc = EVP_PKEY_CTX_new(pub, NULL);
  if (set_alg(b, alg) != 0 || RAND_bytes(b->key, (int)b->key_len) != 1 || !pc ||
      EVP_PKEY_encrypt_init(pc) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) <= 0 ||
      EVP_PKEY_encrypt(pc, NULL, &wl, b->key, b->key_len) <= 0 ||
      wl > MAX_WRAPPED ||
      EVP_PKEY_encrypt(pc, b->krec + KREC_FIXED, &wl, b->key, b->key_len) <=
          0) {
    vmsg_set(err, 15468,
             "An error occurred during the generation of the backup's "
             "encryption key.");
    goto fail;
  }
  EVP_PKEY_CTX_free(pc);
  memcpy(b->krec, KREC_MAGIC, 4);
  le_put32(b->krec + 4, 1);
  le_put32(b->krec + 8, alg);
  le_put32(b->krec + 12, (uint32_t)wl);
  le_put32(b->krec + KREC_FIXED + wl,
           crc32c_update(0, b->krec, KREC_FIXED + wl));
  b->krec_len = KREC_FIXED + wl + 4;
  return &b->m;
fail:
  EVP_PKEY_CTX_free(pc);
  if (b) {
    b->inner = NULL;
    bc_destroy(&b->m);
  }
  media_close(inner, 0);
  return NULL;
}

/* ---- reading ---- */

static int damage(bcm *b, unsigned i, const char *why) {
  vmsg_set(b->m.err, 3189,
           "Damage to the backup set was detected: the media family on "
           "device '%s': %s.",
           b->names[i], why);
  return -1;
}

static int rd(bcm *b, unsigned i, void *buf, size_t n, const char *what) {
  long got = media_read(b->inner, i, buf, n);
  if (got < 0) return -1;
  if ((size_t)got != n) {
    vmsg_set(b->m.err, 3189,
             "Damage to the backup set was detected: the media family on "
             "device '%s' ends in the middle of %s.",
             b->names[i], what);
    return -1;
  }
  return 0;
}

static int read_key(bcm *b, unsigned i) {
  struct bstripe *st = &b->s[i];
  uint8_t rec[KREC_FIXED + MAX_WRAPPED + 4], key[MAX_WRAPPED];
  if (rd(b, i, rec, KREC_FIXED, "the encryption key record")) return -1;
  uint32_t wl = le_get32(rec + 12);
  if (memcmp(rec, KREC_MAGIC, 4) != 0 || le_get32(rec + 4) != 1 ||
      le_get32(rec + 8) != b->alg || wl == 0 || wl > MAX_WRAPPED)
    return damage(b, i, "the encryption key record is invalid");
  if (rd(b, i, rec + KREC_FIXED, wl + 4u, "the encryption key record"))
    return -1;
  if (le_get32(rec + KREC_FIXED + wl) != crc32c_update(0, rec, KREC_FIXED + wl))
    return damage(b, i, "the encryption key record's checksum does not match");
  EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(b->priv, NULL);
  size_t kl = sizeof key;
  int ok = pc && EVP_PKEY_decrypt_init(pc) > 0 &&
           EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) > 0 &&
           EVP_PKEY_decrypt(pc, key, &kl, rec + KREC_FIXED, wl) > 0 &&
           kl == b->key_len;
  EVP_PKEY_CTX_free(pc);
  if (ok && b->have_key && memcmp(key, b->key, kl) != 0) ok = 0;
  if (!ok) {
    OPENSSL_cleanse(key, sizeof key);
    return damage(b, i,
                  "the backup's encryption key cannot be decrypted with the "
                  "certificate");
  }
  memcpy(b->key, key, kl);
  OPENSSL_cleanse(key, sizeof key);
  b->have_key = 1;
  /* The header as read (stream_read_headers checked it): re-encoded. */
  uint8_t hdr[VS_HEADER_SIZE];
  vs_header h = b->h;
  h.stripe_index = st->lindex;
  vs_header_encode(&h, hdr);
  if (hash_of(hdr, rec, KREC_FIXED + wl + 4u, st->hash) != 0) {
    vmsg_set(b->m.err, 701,
             "There is insufficient system memory to run RESTORE.");
    return -1;
  }
  st->key_read = 1;
  return 0;
}

static int read_frame(bcm *b, unsigned i) {
  struct bstripe *st = &b->s[i];
  uint8_t fh[FRAME_HDR];
  if (rd(b, i, fh, FRAME_HDR, "an encrypted frame")) return -1;
  uint32_t len = le_get32(fh), fin = le_get32(fh + 4);
  const int final = (fin & F_FINAL) != 0;
  const uint32_t pad = fin & ~F_FINAL;
  if (len > FRAME_DATA || (!final && (len != FRAME_DATA || pad != 0)) ||
      pad > VS_MAX_PAD)
    return damage(b, i, "an encrypted frame is invalid");
  if (rd(b, i, b->ct, len + TAG_LEN, "an encrypted frame")) return -1;
  if (frame_crypt(b, st, fh, len, 0) != 0)
    return damage(b, i,
                  "an encrypted frame does not authenticate (the data was "
                  "modified)");
  st->seq++;
  st->len = len;
  st->pos = 0;
  if (final) {
    uint8_t z[4096];
    for (uint32_t left = pad; left > 0;) {
      uint32_t k = left < sizeof z ? left : (uint32_t)sizeof z;
      if (rd(b, i, z, k, "the padding")) return -1;
      for (uint32_t j = 0; j < k; j++)
        if (z[j]) return damage(b, i, "the padding is not zero");
      left -= k;
    }
    long more = media_read(b->inner, i, z, 1);
    if (more < 0) return -1;
    if (more > 0) return damage(b, i, "data follows the last frame");
    st->end = 1;
  }
  return 0;
}

static long r_read(media_t *m, unsigned i, void *buf, size_t len) {
  bcm *b = (bcm *)m;
  struct bstripe *st = &b->s[i];
  uint8_t *p = buf;
  size_t got = 0;
  while (got < len) {
    if (st->pos < st->len) {
      size_t k = st->len - st->pos;
      if (k > len - got) k = len - got;
      memcpy(p + got, st->buf + st->pos, k);
      st->pos += k;
      got += k;
    } else if (st->end) {
      break;
    } else if (!st->key_read ? read_key(b, i) : read_frame(b, i)) {
      return -1;
    }
  }
  return (long)got;
}

static int r_finish(media_t *m, int ok) {
  bcm *b = (bcm *)m;
  return b->inner->ops->finish(b->inner, ok);
}

static const struct media_ops reader_ops = {no_write, r_read, r_finish,
                                            bc_peer_ok, bc_destroy};

media_t *bc_reader(media_t *inner, const vs_header *h, const unsigned *order,
                   EVP_PKEY *priv, char *const *names, vmsg *err) {
  bcm *b = bc_new(inner, 0);
  if (!b) {
    vmsg_set(err, 701, "There is insufficient system memory to run RESTORE.");
    return NULL;
  }
  b->m.ops = &reader_ops;
  b->h = *h;
  b->priv = priv;
  b->names = names;
  if (set_alg(b, h->enc_algorithm) != 0) {
    b->inner = NULL;
    bc_destroy(&b->m);
    vmsg_set(err, 3241, "The media family is incorrectly formed.");
    return NULL;
  }
  for (unsigned s = 0; s < inner->nstripes; s++)
    b->s[order[s]].lindex = s;
  return &b->m;
}

int bc_check_key(media_t *m) {
  bcm *b = (bcm *)m;
  for (unsigned i = 0; i < m->nstripes; i++)
    if (b->s[i].lindex == 0) return b->s[i].key_read ? 0 : read_key(b, i);
  return 0;
}
