/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.c - the keys of encrypted backups, from the command line to the
 * stripes (seal.h does the cryptography):
 *
 *   vdi keygen FILE            a new key file, its key id said
 *   vdi keygen --public FILE   the key file's public key, printed
 *   --key-file F               the key, for stripe_key and app_key_file
 *                              (and the key of each set: keys_of_set)
 *   --recipient P              a new random key for this backup, sealed
 *                              to the public key in P (into the manifest)
 *
 * and the algorithm of new sealed streams ($VDI_SEAL_ALGORITHM) checked
 * before anything runs.
 */
#include "app.h"
#include "seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int keys_keygen(const struct options *o) {
  char err[512], id[33];
  struct seal_key k;
  if (o->public_key) {
    char pub[2 * SEAL_PUBLIC_BYTES + 1];
    if (seal_key_load(&k, o->db, err, sizeof err) != 0) {
      app_err("%s", err);
      return EXIT_FAIL;
    }
    seal_public_hex(&k, pub);
    seal_key_wipe(&k);
    printf("%s\n", pub);
    return EXIT_OK;
  }
  if (seal_keygen(o->db, err, sizeof err) != 0 ||
      seal_key_load(&k, o->db, err, sizeof err) != 0) {
    app_err("%s", err);
    return EXIT_FAIL;
  }
  seal_key_id_hex(k.id, id);
  seal_key_wipe(&k);
  app_note("key %s written to %s (mode 0600; keep a copy elsewhere)", id,
           o->db);
  return EXIT_OK;
}

int keys_setup(const struct options *o) {
  static struct seal_key key;
  char err[512];
  if (o->key_file) {
    if (seal_key_load(&key, o->key_file, err, sizeof err) != 0) {
      app_err("%s", err);
      return EXIT_FAIL;
    }
    stripe_key = app_key_file = &key;
    stripe_encrypt = o->encrypt;
  }
  if (o->recipient) {
    /* The set's own random key, sealed to the public key. */
    unsigned char pk[SEAL_PUBLIC_BYTES];
    if (seal_public_load(pk, o->recipient, err, sizeof err) != 0) {
      app_err("%s", err);
      return EXIT_FAIL;
    }
    if (seal_wrap_new(pk, &key, stripe_wrapped_key) != 0) {
      app_err("cannot seal a key to the public key in %s", o->recipient);
      return EXIT_FAIL;
    }
    for (int i = 0; i < SEAL_PUBLIC_BYTES; i++)
      snprintf(stripe_recipient + 2 * i, 3, "%02x", pk[i]);
    stripe_key = &key;
    stripe_encrypt = 1;
  }
  if (o->encrypt && !seal_default_alg()) {
    app_err("VDI_SEAL_ALGORITHM is '%s': it names aes-256-gcm or "
            "xchacha20poly1305",
            getenv("VDI_SEAL_ALGORITHM"));
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

/* The one place that decides which key opens a set, asked once per set
 * by repo_set_key (repo.c), which keeps the answer in the set for the
 * stream headers read when a repository is loaded (quiet: one repository
 * can hold sets of several keys) and for restore and verify (use_set_key,
 * which names what is wrong). */
int keys_of_set(const struct manifest *m, struct seal_key *own,
                const struct seal_key **key) {
  char have[2 * SEAL_PUBLIC_BYTES + 1];
  *key = app_key_file;
  if (!m->encryption[0]) return 0; /* plain, or an older manifest */
  if (!app_key_file) return -ENOKEY;
  if (m->recipient[0]) {
    seal_public_hex(app_key_file, have);
    if (strcmp(have, m->recipient) != 0) return -EKEYREJECTED;
    /* Sealed to this very public key, it must open: else damage. */
    if (seal_unwrap(app_key_file, m->wrapped_key, own) != 0) return -EBADMSG;
    *key = own;
    return 0;
  }
  seal_key_id_hex(app_key_file->id, have);
  return strcmp(have, m->key_id) == 0 ? 0 : -EKEYREJECTED;
}
