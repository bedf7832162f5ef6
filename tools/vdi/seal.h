/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal.h - authenticated encryption of a byte stream (a backup stripe),
 * in one of two algorithms, named by the stream's version:
 *
 *   1  libsodium's crypto_secretstream_xchacha20poly1305
 *   2  AES-256-GCM (OpenSSL's EVP, which uses AES-NI), chunk by chunk
 *
 * A sealed stream is a 56-byte header, then chunks:
 *
 *   0   8  magic "VDISEAL\0"
 *   8   4  version (1 or 2), little-endian
 *   12  4  plaintext chunk size (65536), little-endian
 *   16 16  key id: BLAKE2b-128 of "openvdi seal key id" keyed by the key
 *   32 24  1: the secretstream header (the stream's nonce)
 *          2: a random salt; the stream's key is BLAKE2b-256 of
 *             "openvdi seal v2 aes-256-gcm" + salt, keyed by the key
 *   56 ..  chunks: each holds chunk-size plaintext bytes + the tag (1: 17
 *          bytes, tagged FINAL in the last; 2: 16 bytes), the last one
 *          shorter (maybe empty)
 *
 * The 56-byte header is the additional data of every chunk, so no byte of
 * it can be changed either.  In version 2 chunk i's nonce is i (96 bits,
 * little-endian) and its additional data ends with one byte, 1 for the
 * last chunk and 0 for the others, so chunks cannot be reordered, dropped
 * or cut off at a boundary (the STREAM construction of Hoang, Reyhanitabar,
 * Rogaway and Vizár).  A reader names a wrong key from the key id
 * before it decrypts anything (-EKEYREJECTED), refuses a chunk whose MAC
 * fails (-EBADMSG), and a stream that ends before its FINAL chunk, or goes
 * on after it, (-EBADMSG).  Plaintext is handed on only chunk by chunk,
 * after that chunk is authenticated; whoever must refuse a damaged stream
 * before using any of it reads it whole once first (vdi verify).
 *
 * The key is a file of exactly 32 random bytes (`vdi keygen FILE`, or
 * `head -c 32 /dev/urandom > FILE`).
 */
#ifndef OPENVDI_SEAL_H
#define OPENVDI_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_BYTES    32
#define SEAL_HEADER_BYTES 56
#define SEAL_CHUNK        65536

/* Algorithms (the stream's version). */
#define SEAL_XCHACHA20POLY1305 1
#define SEAL_AES256GCM         2

/* The algorithm of new streams: $VDI_SEAL_ALGORITHM ("aes-256-gcm" or
 * "xchacha20poly1305") if set, else AES-256-GCM where the CPU has AES-NI
 * and carry-less multiplication (crypto_aead_aes256gcm_is_available()),
 * else XChaCha20-Poly1305.  0 for an unknown name in the variable. */
int seal_default_alg(void);
/* "aes-256-gcm", "xchacha20poly1305" (NULL: not one). */
const char *seal_alg_name(int alg);
/* Bytes a chunk grows by: 16 or 17. */
size_t seal_abytes(int alg);

struct seal_key {
  unsigned char key[SEAL_KEY_BYTES];
  unsigned char id[16];
};

/* Loads a key file (exactly 32 bytes).  0 or a negative errno with a
 * one-line reason in err. */
int seal_key_load(struct seal_key *k, const char *path, char *err,
                  size_t errlen);
/* Writes a new random key to path (created, mode 0600, never replacing a
 * file). */
int seal_keygen(const char *path, char *err, size_t errlen);
/* The key id as 32 hex digits (out: at least 33 bytes). */
void seal_key_id_hex(const unsigned char id[16], char *out);
/* Wipes a key. */
void seal_key_wipe(struct seal_key *k);

/* Public-key mode (vdi backup --recipient): a backup is sealed with a
 * fresh random key, which is itself sealed (libsodium crypto_box_seal:
 * X25519, XSalsa20-Poly1305) to the recipient's public key and kept in the
 * manifest; only the holder of the key file can open it.  A key file's
 * X25519 secret key is BLAKE2b-256 of "openvdi recipient secret" keyed by
 * the key (so one key file serves both modes, never as one key twice);
 * its public key, in text, is 64 hex digits (`vdi keygen --public FILE`).
 */
#define SEAL_PUBLIC_BYTES 32
#define SEAL_WRAPPED_HEX  161 /* 80 bytes in hex, and the NUL */
/* The public key of a key file's key, as 64 hex digits (out: 65 bytes). */
void seal_public_hex(const struct seal_key *k, char *out);
/* Reads a public key file (64 hex digits, maybe a newline).  0 or a
 * negative errno with a one-line reason in err. */
int seal_public_load(unsigned char pk[SEAL_PUBLIC_BYTES], const char *path,
                     char *err, size_t errlen);
/* A new random key k, and it sealed to pk, in hex (wrapped: 161 bytes). */
int seal_wrap_new(const unsigned char pk[SEAL_PUBLIC_BYTES], struct seal_key *k,
                  char *wrapped);
/* The key sealed in `wrapped` (hex) to the public key of key file key
 * `mine`: 0, -EKEYREJECTED (another recipient's) or -EBADMSG (damaged). */
int seal_unwrap(const struct seal_key *mine, const char *wrapped,
                struct seal_key *k);

/* Where a writer's sealed bytes, or a reader's opened bytes, go: 0 or a
 * negative errno that stops the stream. */
typedef int (*seal_out_fn)(void *arg, const void *buf, size_t n);

/* Optional, for a writer: where the next n sealed bytes may be written in
 * place (NULL: not there, they then go to seal_out_fn), and the call
 * saying that n bytes were put there (0 or a negative errno). */
typedef void *(*seal_room_fn)(void *arg, size_t n);
typedef int (*seal_placed_fn)(void *arg, size_t n);

struct seal_writer;
/* A new sealed stream, of seal_default_alg() or of alg. */
int seal_writer_open(struct seal_writer **w, const struct seal_key *k,
                     seal_out_fn out, void *arg);
int seal_writer_open_alg(struct seal_writer **w, const struct seal_key *k,
                         int alg, seal_out_fn out, void *arg);
int seal_write(struct seal_writer *w, const void *buf, size_t n);
/* The writer's algorithm. */
int seal_writer_alg(const struct seal_writer *w);
/* Chunks sealed straight into the reader's memory where room() offers it
 * (the header always goes to out). */
void seal_writer_in_place(struct seal_writer *w, seal_room_fn room,
                          seal_placed_fn placed);
/* Seals the last chunk (FINAL). */
int seal_writer_finish(struct seal_writer *w);
void seal_writer_free(struct seal_writer *w);
/* Sealed size of n plaintext bytes (in seal_default_alg(), or alg). */
uint64_t seal_sealed_size(uint64_t n);
uint64_t seal_sealed_size_alg(int alg, uint64_t n);

struct seal_reader;
int seal_reader_open(struct seal_reader **r, const struct seal_key *k,
                     seal_out_fn out, void *arg);
/* Feeds sealed bytes; opened ones go to out. */
int seal_feed(struct seal_reader *r, const void *buf, size_t n);
/* The end of the sealed bytes: -EBADMSG if the FINAL chunk was not seen. */
int seal_reader_finish(struct seal_reader *r);
/* The reason of the last error, one line ("" if none). */
const char *seal_reader_error(const struct seal_reader *r);
/* The stream's algorithm once its header was read (else 0). */
int seal_reader_alg(const struct seal_reader *r);
void seal_reader_free(struct seal_reader *r);

#endif
