/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backupcrypt.h - BACKUP ... WITH ENCRYPTION: a media (media.h) that
 * wraps another and encrypts every stripe after its header with a random
 * per-backup data key (AES-GCM, in authenticated frames), the key wrapped
 * by the certificate's RSA public key in a key record after the header.
 * The format is in docs/STREAM-FORMAT.md, "Encrypted media families".
 */
#ifndef VDISQL_BACKUPCRYPT_H
#define VDISQL_BACKUPCRYPT_H

#include "media.h"
#include "vstream.h"

#include <openssl/evp.h>

/** Wrap @p inner for writing with algorithm @p alg (VS_ENC_*), the data
 * key wrapped by @p pub.  The stream writer's header (VS_HEADER_SIZE
 * bytes) goes through in clear; the rest is encrypted.  On failure
 * @p inner is closed (abandoned) and NULL returned with @p err set.
 * Closing the wrapper closes @p inner. */
media_t *bc_writer(media_t *inner, uint32_t alg, EVP_PKEY *pub, vmsg *err);

/** Wrap @p inner for reading after its headers were read
 * (stream_read_headers): @p h and @p order as it returned them, @p priv
 * the certificate's private key, @p names the devices for messages.
 * Reading then yields the plain stream; a frame that does not
 * authenticate is damage (Msg 3189).  NULL on failure (@p inner is left
 * to the caller). */
media_t *bc_reader(media_t *inner, const vs_header *h, const unsigned *order,
                   EVP_PKEY *priv, char *const *names, vmsg *err);

/** Read and unwrap the key record of the first stripe: that the
 * certificate opens this backup.  @return 0 or -1 (error in m->err). */
int bc_check_key(media_t *m);

#endif
