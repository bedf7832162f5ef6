/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certs.h - the instance's master key and server certificates, as SQL
 * Server keeps them in master: CREATE MASTER KEY, CREATE CERTIFICATE
 * (self-signed, or FROM FILE with its private key), BACKUP CERTIFICATE,
 * DROP CERTIFICATE, and the look-ups that BACKUP ... WITH ENCRYPTION and
 * RESTORE of an encrypted backup need.  The store is in the instance's
 * private directory (docs/INSTANCE.md, "Certificates and encrypted
 * backups").
 */
#ifndef VDISQL_CERTS_H
#define VDISQL_CERTS_H

#include "msg.h"
#include "vstream.h"

#include <openssl/evp.h>
#include <stdint.h>

/** CREATE MASTER KEY ENCRYPTION BY PASSWORD = @p password.  @return 0, or
 * -1 with @p err set (Msg 15578: there is one already). */
int certs_create_master_key(const char *inst_dir, const char *password,
                            vmsg *err);

/** DROP MASTER KEY: Msg 15580 while a certificate's private key is
 * encrypted by it (SQL Server's rule), 15581 when there is none. */
int certs_drop_master_key(const char *inst_dir, vmsg *err);

/** CREATE CERTIFICATE @p name WITH SUBJECT = @p subject: a new RSA 2048
 * key pair and a self-signed X.509 certificate valid from @p start to
 * @p expiry (Unix seconds).  Msg 15581 without a master key, 15232 when
 * the name or the certificate exists. */
int certs_create(const char *inst_dir, const char *name, const char *subject,
                 int64_t start, int64_t expiry, vmsg *err);

/** CREATE CERTIFICATE @p name FROM FILE = @p cert_file [WITH PRIVATE KEY
 * (FILE = @p key_file, DECRYPTION BY PASSWORD = @p password)]: paths as
 * given (the caller resolved them).  Msg 15208 for a file that cannot be
 * read or decrypted, or a key that does not belong to the certificate. */
int certs_import(const char *inst_dir, const char *name, const char *cert_file,
                 const char *key_file, const char *password, vmsg *err);

/** BACKUP CERTIFICATE @p name TO FILE = @p cert_file [WITH PRIVATE KEY
 * (FILE = @p key_file, ENCRYPTION BY PASSWORD = @p password)]: the
 * certificate in DER, the key as encrypted PKCS#8; new files, mode 0600
 * (Msg 15240 if one exists). */
int certs_export(const char *inst_dir, const char *name, const char *cert_file,
                 const char *key_file, const char *password, vmsg *err);

/** DROP CERTIFICATE @p name (Msg 15151 if there is none). */
int certs_drop(const char *inst_dir, const char *name, vmsg *err);

/** The public key of certificate @p name, and its thumbprint (SHA-1 of
 * the DER certificate).  NULL with Msg 15151 if there is none. */
EVP_PKEY *certs_public(const char *inst_dir, const char *name,
                       uint8_t thumb[VS_THUMBPRINT_SIZE], vmsg *err);

/** The private key of the certificate with thumbprint @p thumb.  NULL
 * with Msg 33111 when the instance has no such certificate (or not its
 * private key), 15581 when its master key is missing. */
EVP_PKEY *certs_private(const char *inst_dir,
                        const uint8_t thumb[VS_THUMBPRINT_SIZE], vmsg *err);

#endif
