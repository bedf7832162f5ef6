/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certs.c - the certificate store (see certs.h), over OpenSSL.
 *
 * Layout, all in DIR/.vdisql/keys (0700), every file 0600, written to a
 * temporary name and renamed:
 *   service.key     32 random bytes: the instance's service master key,
 *                   the part SQL Server keeps with DPAPI; here only the
 *                   file's mode protects it.
 *   master.key      the master key (32 random bytes), sealed twice with
 *                   AES-256-GCM: by the service key, and by a key derived
 *                   from CREATE MASTER KEY's password (PBKDF2-SHA256).
 *   <thumb>.cer     a certificate, DER.
 *   <thumb>.key     its RSA private key, PKCS#8 encrypted (PBES2,
 *                   AES-256-CBC) with the master key as the passphrase.
 * The catalog's table `certificates` (catalog.c) maps names to
 * thumbprints and is what `SELECT ... FROM sys.certificates` reads.
 *
 * Divisions: files, the master key, the catalog rows, the statements,
 * the look-ups.
 */
#include "certs.h"

#include "catalog.h"
#include "fileio.h"
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MK_LEN      32
#define MK_MAGIC    "VDMK0001"
#define MK_ITER     200000u
#define MK_SEAL_LEN (12 + MK_LEN + 16) /* iv, ciphertext, tag */
#define MK_FILE_LEN (8 + MK_SEAL_LEN + 16 + 4 + MK_SEAL_LEN)
#define MAX_KEYFILE (1 << 20)

/* ---- files ---- */

static int keys_dir(const char *inst_dir, char *out, size_t n) {
  return guard_private_dir(inst_dir, "keys", out, n);
}

static int store_path(const char *inst_dir, const char *file, char *out,
                      size_t n) {
  char dir[PATH_MAX];
  if (keys_dir(inst_dir, dir, sizeof dir) != 0) return -1;
  return snprintf(out, n, "%s/%s", dir, file) >= (int)n ? -1 : 0;
}

/* Write a new file, 0600: to a temporary name and renamed over @p path
 * (@p excl: fail if @p path exists, as BACKUP CERTIFICATE does). */
static int write_file(const char *path, const void *buf, size_t len, int excl) {
  char tmp[PATH_MAX + 16];
  int fd;
  if (excl) {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  } else {
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) return -1;
  int ok = fio_pwrite_all(fd, buf, len, 0) == 0 && fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok) {
    unlink(excl ? path : tmp);
    return -1;
  }
  if (!excl && rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  /* The name lasts too: a key lost in a crash after backups were
   * encrypted to it would leave them unrestorable. */
  return fio_sync_parent(path);
}

/* Read a whole file (at most MAX_KEYFILE bytes).  NULL on failure. */
static uint8_t *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      st.st_size <= MAX_KEYFILE)
    buf = malloc((size_t)st.st_size);
  if (buf && fio_pread_all(fd, buf, (size_t)st.st_size, 0) != 0) {
    free(buf);
    buf = NULL;
  }
  close(fd);
  *len = buf ? (size_t)st.st_size : 0;
  return buf;
}

/* ---- the master key ---- */

static int gcm(int enc, const uint8_t key[32], const uint8_t *in, uint8_t *out,
               uint8_t *sealed /* iv, ct, tag */) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int n = 0, ok = c != NULL;
  if (enc && ok) ok = RAND_bytes(sealed, 12) == 1;
  ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, sealed, enc);
  if (enc)
    ok = ok && EVP_CipherUpdate(c, sealed + 12, &n, in, MK_LEN) &&
         EVP_CipherFinal_ex(c, sealed + 12 + n, &n) &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, sealed + 12 + MK_LEN);
  else
    ok = ok && EVP_CipherUpdate(c, out, &n, sealed + 12, MK_LEN) &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
                             sealed + 12 + MK_LEN) &&
         EVP_CipherFinal_ex(c, out + n, &n);
  EVP_CIPHER_CTX_free(c);
  return ok ? 0 : -1;
}

static void no_master_key(vmsg *err) {
  vmsg_set(err, 15581,
           "Please create a master key in the database or open the master "
           "key in the session before performing this operation.");
}

/* The master key as the hex passphrase of the stored private keys. */
static int master_key(const char *inst_dir, char pass[2 * MK_LEN + 1],
                      vmsg *err) {
  char p1[PATH_MAX + 32], p2[PATH_MAX + 32];
  size_t l1 = 0, l2 = 0;
  uint8_t mk[MK_LEN];
  if (store_path(inst_dir, "service.key", p1, sizeof p1) ||
      store_path(inst_dir, "master.key", p2, sizeof p2)) {
    no_master_key(err);
    return -1;
  }
  uint8_t *svc = read_file(p1, &l1), *f = read_file(p2, &l2);
  int rc = -1;
  if (svc && f && l1 == 32 && l2 == MK_FILE_LEN &&
      memcmp(f, MK_MAGIC, 8) == 0 && gcm(0, svc, NULL, mk, f + 8) == 0) {
    for (unsigned i = 0; i < MK_LEN; i++)
      snprintf(pass + 2 * i, 3, "%02x", mk[i]);
    rc = 0;
  } else if (f) {
    vmsg_set(err, 15466, "An error occurred during decryption.");
  } else {
    no_master_key(err);
  }
  OPENSSL_cleanse(mk, sizeof mk);
  if (svc) OPENSSL_cleanse(svc, l1);
  free(svc);
  free(f);
  return rc;
}

int certs_create_master_key(const char *inst_dir, const char *password,
                            vmsg *err) {
  char p1[PATH_MAX + 32], p2[PATH_MAX + 32];
  if (store_path(inst_dir, "service.key", p1, sizeof p1) ||
      store_path(inst_dir, "master.key", p2, sizeof p2))
    return vmsg_os_error(err, "create", ".vdisql/keys");
  if (access(p2, F_OK) == 0) {
    vmsg_set(err, 15578,
             "There is already a master key in the database. Please drop it "
             "before performing this statement.");
    return -1;
  }
  uint8_t svc[32], mk[MK_LEN], pk[32], f[MK_FILE_LEN];
  size_t l1 = 0;
  uint8_t *old = read_file(p1, &l1);
  int rc = -1;
  if (old && l1 == 32)
    memcpy(svc, old, 32);
  else if (RAND_bytes(svc, 32) != 1 || write_file(p1, svc, 32, 0) != 0)
    goto out;
  uint8_t *salt = f + 8 + MK_SEAL_LEN;
  memcpy(f, MK_MAGIC, 8);
  if (RAND_bytes(mk, sizeof mk) != 1 || RAND_bytes(salt, 16) != 1) goto out;
  f[8 + MK_SEAL_LEN + 16] = (uint8_t)(MK_ITER >> 24);
  f[8 + MK_SEAL_LEN + 17] = (uint8_t)(MK_ITER >> 16);
  f[8 + MK_SEAL_LEN + 18] = (uint8_t)(MK_ITER >> 8);
  f[8 + MK_SEAL_LEN + 19] = (uint8_t)MK_ITER;
  if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, 16, MK_ITER,
                        EVP_sha256(), 32, pk) != 1 ||
      gcm(1, svc, mk, NULL, f + 8) != 0 ||
      gcm(1, pk, mk, NULL, f + 8 + MK_SEAL_LEN + 20) != 0)
    goto out;
  rc = write_file(p2, f, sizeof f, 0);
out:
  if (rc) vmsg_os_error(err, "write", p2);
  OPENSSL_cleanse(svc, sizeof svc);
  OPENSSL_cleanse(mk, sizeof mk);
  OPENSSL_cleanse(pk, sizeof pk);
  if (old) OPENSSL_cleanse(old, l1);
  free(old);
  return rc;
}

/* ---- the catalog rows ---- */

enum { ROW_BY_NAME, ROW_BY_THUMB, ROW_ANY }; /* row_find's look-ups */

struct row {
  char name[129];
  char thumb[48];
  char subject[4096];
};

/* Find a row by name, by thumbprint text, or the first of any (@p key
 * NULL).  1 found, 0 not, -1 error. */
static int row_find(const char *inst_dir, const char *key, int by,
                    struct row *r) {
  static const char *const sql[] = {
      "SELECT name, thumbprint, subject FROM certificates WHERE name = ?1",
      "SELECT name, thumbprint, subject FROM certificates WHERE "
      "thumbprint = ?1",
      "SELECT name, thumbprint, subject FROM certificates ORDER BY "
      "certificate_id LIMIT 1"};
  sqlite3 *db = catalog_open(inst_dir);
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (!db) return -1;
  if (sqlite3_prepare_v2(db, sql[by], -1, &st, NULL) == SQLITE_OK &&
      (by == ROW_ANY ||
       sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) == SQLITE_OK)) {
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
      snprintf(r->name, sizeof r->name, "%s",
               (const char *)sqlite3_column_text(st, 0));
      snprintf(r->thumb, sizeof r->thumb, "%s",
               (const char *)sqlite3_column_text(st, 1));
      const unsigned char *sub = sqlite3_column_text(st, 2);
      snprintf(r->subject, sizeof r->subject, "%s", sub ? (char *)sub : "");
      rc = 1;
    } else if (s == SQLITE_DONE) {
      rc = 0;
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

static void asn1_text(const ASN1_TIME *t, char *out, size_t n) {
  struct tm tm;
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    snprintf(out, n, "?");
    return;
  }
  strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static int row_insert(const char *inst_dir, const char *name, X509 *x,
                      const char *thumb, vmsg *err) {
  char subject[4096] = "", issuer[4096] = "", start[32], expiry[32],
       serial[80] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, subject,
                            sizeof subject);
  X509_NAME_get_text_by_NID(X509_get_issuer_name(x), NID_commonName, issuer,
                            sizeof issuer);
  asn1_text(X509_get0_notBefore(x), start, sizeof start);
  asn1_text(X509_get0_notAfter(x), expiry, sizeof expiry);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  if (hex) snprintf(serial, sizeof serial, "%s", hex);
  OPENSSL_free(hex);
  BN_free(bn);
  int bits = EVP_PKEY_get_bits(X509_get0_pubkey(x));
  sqlite3 *db = catalog_open(inst_dir);
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (db &&
      sqlite3_prepare_v2(
          db,
          "INSERT INTO certificates(name, certificate_id, principal_id, "
          "key_length, pvt_key_encryption_type, pvt_key_encryption_type_desc,"
          " is_active_for_begin_dialog, issuer_name, cert_serial_number, "
          "subject, expiry_date, start_date, thumbprint) VALUES(?1, "
          "(SELECT MAX(256, IFNULL(MAX(certificate_id) + 1, 256)) FROM "
          "certificates), 1, ?2, 'MK', 'ENCRYPTED_BY_MASTER_KEY', 1, ?3, ?4, "
          "?5, ?6, ?7, ?8)",
          -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, bits);
    sqlite3_bind_text(st, 3, issuer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, serial, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, subject, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, expiry, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, start, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, thumb, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
  }
  if (rc)
    vmsg_set(err, 15232,
             "A certificate with name '%s' already exists or this certificate "
             "already has been added to the database.",
             name);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* Run @p sql with ?1 = @p name in the catalog.  0, or -1 if it failed. */
static int row_exec(const char *inst_dir, const char *sql, const char *name) {
  sqlite3 *db = catalog_open(inst_dir);
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* ---- the statements ---- */

int certs_drop_master_key(const char *inst_dir, vmsg *err) {
  char p2[PATH_MAX + 32];
  struct row r;
  if (store_path(inst_dir, "master.key", p2, sizeof p2) ||
      access(p2, F_OK) != 0) {
    no_master_key(err);
    return -1;
  }
  int any = row_find(inst_dir, NULL, ROW_ANY, &r);
  if (any != 0) {
    vmsg_set(err, 15580,
             "Cannot drop master key because certificate '%s' is encrypted "
             "by it.",
             any > 0 ? r.name : "?");
    return -1;
  }
  if (unlink(p2) != 0) return vmsg_os_error(err, "remove", p2);
  return 0;
}

static void thumb_of(X509 *x, uint8_t t[VS_THUMBPRINT_SIZE], char *text) {
  unsigned len = 0;
  uint8_t md[EVP_MAX_MD_SIZE];
  X509_digest(x, EVP_sha1(), md, &len);
  memcpy(t, md, VS_THUMBPRINT_SIZE);
  vs_format_thumbprint(t, text);
}

static int pem_key(EVP_PKEY *pk, const char *pass, uint8_t **out, size_t *len) {
  BIO *b = BIO_new(BIO_s_mem());
  int ok = b && PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_256_cbc(), NULL, 0,
                                              NULL, (void *)pass) == 1;
  char *data = NULL;
  long n = ok ? BIO_get_mem_data(b, &data) : 0;
  *out = n > 0 ? malloc((size_t)n) : NULL;
  if (*out) memcpy(*out, data, (size_t)n);
  *len = (size_t)n;
  BIO_free(b);
  return *out ? 0 : -1;
}

/* Store certificate @p x with private key @p pk (under the master key)
 * and its row. */
static int store(const char *inst_dir, const char *name, X509 *x, EVP_PKEY *pk,
                 vmsg *err) {
  char pass[2 * MK_LEN + 1], thumb[48], file[64], cer[PATH_MAX + 64],
      key[PATH_MAX + 64];
  uint8_t t[VS_THUMBPRINT_SIZE];
  struct row r;
  int found = row_find(inst_dir, name, ROW_BY_NAME, &r);
  thumb_of(x, t, thumb);
  if (found == 0) found = row_find(inst_dir, thumb, ROW_BY_THUMB, &r);
  if (found != 0) {
    vmsg_set(err, 15232,
             "A certificate with name '%s' already exists or this certificate "
             "already has been added to the database.",
             name);
    return -1;
  }
  if (master_key(inst_dir, pass, err)) return -1;
  uint8_t *der = NULL, *pem = NULL;
  size_t pem_len = 0;
  int der_len = i2d_X509(x, &der);
  int rc = -1;
  snprintf(file, sizeof file, "%.40s.cer", thumb + 2);
  if (store_path(inst_dir, file, cer, sizeof cer) != 0) {
    vmsg_os_error(err, "create", ".vdisql/keys");
    goto out;
  }
  snprintf(file, sizeof file, "%.40s.key", thumb + 2);
  if (store_path(inst_dir, file, key, sizeof key) != 0) {
    vmsg_os_error(err, "create", ".vdisql/keys");
    goto out;
  }
  if (der_len <= 0 || pem_key(pk, pass, &pem, &pem_len) != 0) {
    vmsg_os_error(err, "encode", key);
    goto out;
  }
  if (write_file(key, pem, pem_len, 0) != 0) {
    vmsg_os_error(err, "write", key);
    goto out;
  }
  if (write_file(cer, der, (size_t)der_len, 0) != 0) {
    vmsg_os_error(err, "write", cer);
    unlink(key);
    goto out;
  }
  rc = row_insert(inst_dir, name, x, thumb, err);
  if (rc) {
    unlink(cer);
    unlink(key);
  }
out:
  OPENSSL_cleanse(pass, sizeof pass);
  OPENSSL_free(der);
  if (pem) OPENSSL_cleanse(pem, pem_len);
  free(pem);
  return rc;
}

int certs_create(const char *inst_dir, const char *name, const char *subject,
                 int64_t start, int64_t expiry, vmsg *err) {
  char pass[2 * MK_LEN + 1];
  /* Msg 15581 before the RSA key is made (a second or so), not after;
   * store() opens the master key again for the private key. */
  if (master_key(inst_dir, pass, err)) return -1;
  OPENSSL_cleanse(pass, sizeof pass);
  EVP_PKEY *pk = EVP_RSA_gen(2048);
  X509 *x = X509_new();
  uint8_t serial[16];
  BIGNUM *bn = NULL;
  int ok = pk && x && RAND_bytes(serial, sizeof serial) == 1;
  serial[0] &= 0x7f; /* positive */
  if (ok) bn = BN_bin2bn(serial, sizeof serial, NULL);
  ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
       X509_set_version(x, 2) &&
       ASN1_TIME_set(X509_getm_notBefore(x), (time_t)start) &&
       ASN1_TIME_set(X509_getm_notAfter(x), (time_t)expiry) &&
       X509_set_pubkey(x, pk) &&
       X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                  (const uint8_t *)subject, -1, -1, 0) &&
       X509_set_issuer_name(x, X509_get_subject_name(x)) &&
       X509_sign(x, pk, EVP_sha256()) > 0;
  BN_free(bn);
  int rc = -1;
  if (!ok)
    vmsg_set(err, 15468,
             "An error occurred during the generation of the "
             "certificate.");
  else
    rc = store(inst_dir, name, x, pk, err);
  X509_free(x);
  EVP_PKEY_free(pk);
  return rc;
}

static void bad_file(vmsg *err) {
  vmsg_set(err, 15208,
           "The certificate, asymmetric key, or private key file is not valid "
           "or does not exist; or you do not have permissions for it.");
}

static X509 *load_cert(const char *path) {
  size_t len = 0;
  uint8_t *buf = read_file(path, &len);
  X509 *x = NULL;
  if (!buf) return NULL;
  const uint8_t *p = buf;
  x = d2i_X509(NULL, &p, (long)len);
  if (!x) {
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
  }
  free(buf);
  return x;
}

static EVP_PKEY *load_key(const char *path, const char *pass) {
  size_t len = 0;
  uint8_t *buf = read_file(path, &len);
  EVP_PKEY *pk = NULL;
  if (!buf) return NULL;
  BIO *b = BIO_new_mem_buf(buf, (int)len);
  if (b) pk = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)pass);
  BIO_free(b);
  if (!pk) {
    b = BIO_new_mem_buf(buf, (int)len);
    if (b) pk = d2i_PKCS8PrivateKey_bio(b, NULL, NULL, (void *)pass);
    BIO_free(b);
  }
  OPENSSL_cleanse(buf, len);
  free(buf);
  return pk;
}

int certs_import(const char *inst_dir, const char *name, const char *cert_file,
                 const char *key_file, const char *password, vmsg *err) {
  X509 *x = load_cert(cert_file);
  EVP_PKEY *pk = NULL;
  int rc = -1;
  if (!x) {
    bad_file(err);
    return -1;
  }
  if (!key_file) {
    /* A certificate without its private key encrypts but cannot decrypt:
     * vdisql keeps only certificates that can restore what they encrypt. */
    vmsg_set(err, 15208,
             "The certificate, asymmetric key, or private key file is not "
             "valid or does not exist; or you do not have permissions for "
             "it. (vdisql needs the private key: WITH PRIVATE KEY (FILE = "
             "..., DECRYPTION BY PASSWORD = ...).)");
    goto out;
  }
  pk = load_key(key_file, password ? password : "");
  if (!pk || X509_check_private_key(x, pk) != 1) {
    bad_file(err);
    goto out;
  }
  rc = store(inst_dir, name, x, pk, err);
out:
  X509_free(x);
  EVP_PKEY_free(pk);
  return rc;
}

/* The certificate and (if @p pk) private key of row @p r. */
static X509 *load_stored(const char *inst_dir, const struct row *r,
                         EVP_PKEY **pk, vmsg *err) {
  char file[64], path[PATH_MAX + 64], pass[2 * MK_LEN + 1];
  snprintf(file, sizeof file, "%.40s.cer", r->thumb + 2);
  X509 *x = store_path(inst_dir, file, path, sizeof path) == 0 ? load_cert(path)
                                                               : NULL;
  if (!x) {
    vmsg_set(err, 15208,
             "The certificate, asymmetric key, or private key file is not "
             "valid or does not exist; or you do not have permissions for "
             "it.");
    return NULL;
  }
  if (!pk) return x;
  if (master_key(inst_dir, pass, err)) {
    X509_free(x);
    return NULL;
  }
  snprintf(file, sizeof file, "%.40s.key", r->thumb + 2);
  *pk = store_path(inst_dir, file, path, sizeof path) == 0
            ? load_key(path, pass)
            : NULL;
  OPENSSL_cleanse(pass, sizeof pass);
  if (!*pk) {
    vmsg_set(err, 15466, "An error occurred during decryption.");
    X509_free(x);
    return NULL;
  }
  return x;
}

static void not_found(vmsg *err, const char *verb, const char *name) {
  vmsg_set(err, 15151,
           "Cannot %s the certificate '%s', because it does not exist or you "
           "do not have permission.",
           verb, name);
}

int certs_export(const char *inst_dir, const char *name, const char *cert_file,
                 const char *key_file, const char *password, vmsg *err) {
  struct row r;
  if (row_find(inst_dir, name, ROW_BY_NAME, &r) != 1) {
    not_found(err, "find", name);
    return -1;
  }
  EVP_PKEY *pk = NULL;
  X509 *x = load_stored(inst_dir, &r, key_file ? &pk : NULL, err);
  if (!x) return -1;
  uint8_t *der = NULL, *pem = NULL;
  size_t pem_len = 0;
  int der_len = i2d_X509(x, &der), rc = -1;
  const char *failed = cert_file;
  if (der_len > 0 && write_file(cert_file, der, (size_t)der_len, 1) == 0) {
    failed = key_file;
    if (!key_file || (pem_key(pk, password, &pem, &pem_len) == 0 &&
                      write_file(key_file, pem, pem_len, 1) == 0))
      rc = 0;
    else
      unlink(cert_file);
  }
  if (rc)
    vmsg_set(err, 15240,
             "Cannot write into file '%s'. Verify that you have write "
             "permissions, that the file path is valid, and that the file does "
             "not already exist.",
             failed);
  else if (key_file)
    (void)row_exec(inst_dir,
                   "UPDATE certificates SET pvt_key_last_backup_date = "
                   "datetime('now', 'localtime') WHERE name = ?1",
                   name);
  OPENSSL_free(der);
  if (pem) OPENSSL_cleanse(pem, pem_len);
  free(pem);
  X509_free(x);
  EVP_PKEY_free(pk);
  return rc;
}

int certs_drop(const char *inst_dir, const char *name, vmsg *err) {
  struct row r;
  char file[64], path[PATH_MAX + 64];
  if (row_find(inst_dir, name, ROW_BY_NAME, &r) != 1) {
    not_found(err, "drop", name);
    return -1;
  }
  /* The row first: a certificate listed without its files could never
   * be used, nor dropped again. */
  if (row_exec(inst_dir, "DELETE FROM certificates WHERE name = ?1", name))
    return vmsg_os_error(err, "update", "the catalog");
  snprintf(file, sizeof file, "%.40s.key", r.thumb + 2);
  if (store_path(inst_dir, file, path, sizeof path) == 0) unlink(path);
  snprintf(file, sizeof file, "%.40s.cer", r.thumb + 2);
  if (store_path(inst_dir, file, path, sizeof path) == 0) unlink(path);
  return 0;
}

/* ---- the look-ups ---- */

EVP_PKEY *certs_public(const char *inst_dir, const char *name,
                       uint8_t thumb[VS_THUMBPRINT_SIZE], vmsg *err) {
  struct row r;
  char text[48];
  if (row_find(inst_dir, name, ROW_BY_NAME, &r) != 1) {
    not_found(err, "find", name);
    return NULL;
  }
  X509 *x = load_stored(inst_dir, &r, NULL, err);
  if (!x) return NULL;
  thumb_of(x, thumb, text);
  EVP_PKEY *pk = X509_get_pubkey(x);
  X509_free(x);
  return pk;
}

EVP_PKEY *certs_private(const char *inst_dir,
                        const uint8_t thumb[VS_THUMBPRINT_SIZE], vmsg *err) {
  struct row r;
  char text[48];
  vs_format_thumbprint(thumb, text);
  if (row_find(inst_dir, text, ROW_BY_THUMB, &r) != 1) {
    vmsg_set(err, 33111, "Cannot find server certificate with thumbprint '%s'.",
             text);
    return NULL;
  }
  EVP_PKEY *pk = NULL;
  X509 *x = load_stored(inst_dir, &r, &pk, err);
  X509_free(x);
  return x ? pk : NULL;
}
