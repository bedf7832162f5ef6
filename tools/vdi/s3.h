/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3.h - a small S3 client (libcurl signs AWS SigV4, libxml2 reads the
 * answers): objects put, got (streamed, ranged), headed, listed and
 * deleted; multipart uploads; a streaming upload of bounded memory.
 *
 * Every call returns 0 or a negative errno: -EACCES for wrong credentials
 * or a refusal, -ENOENT for a missing bucket, key or upload, -EIO for
 * anything else the store or the network said.  The client keeps the last
 * error as one line (s3_error()), naming the request, the store's code and
 * what to check, e.g.
 *   "s3: PUT s3://b/k: InvalidAccessKeyId: the access key is not known to
 *    the store (check AWS_ACCESS_KEY_ID or the profile)".
 * A client is used by one thread at a time.
 */
#ifndef OPENVDI_S3_H
#define OPENVDI_S3_H

#include <stddef.h>
#include <stdint.h>

/* Where the store is and who we are.  s3_config_load() fills it as the AWS
 * CLI does: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 * AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (or
 * AWS_ENDPOINT_URL_S3) first, then the profile $AWS_PROFILE (or
 * "default") of ~/.aws/credentials and ~/.aws/config
 * ($AWS_SHARED_CREDENTIALS_FILE, $AWS_CONFIG_FILE): aws_access_key_id,
 * aws_secret_access_key, aws_session_token, region, endpoint_url and the
 * s3 section's addressing_style.  Addressing is path-style for a custom
 * endpoint and virtual-host for AWS unless addressing_style (or
 * $AWS_S3_ADDRESSING_STYLE) says "path" or "virtual". */
struct s3_config {
  char endpoint[512]; /* "https://s3.us-east-1.amazonaws.com", no slash */
  char region[64];
  char access_key[256];
  char secret_key[256];
  char session_token[4096];
  int path_style;
  int max_retries;   /* attempts of a request that fails with a 5xx,
                        SlowDown or a network error: AWS_MAX_ATTEMPTS, 5 */
  int list_max_keys; /* page size of listings; 0: the store's (1000) */
  /* How long one request may go on failing, in seconds ($VDI_S3_TIMEOUT,
   * default 60): no attempt starts after it, an attempt that moves no
   * byte for a third of it is cut (a stalled store), and a connection
   * that is not made in min(10 s, a third) is a failure.  So a request
   * to a store that stalls ends within 4/3 of it. */
  int timeout_s;
};

/* 0, or -EINVAL with a one-line reason in err (no credentials, ...). */
int s3_config_load(struct s3_config *cfg, char *err, size_t errlen);

/* "s3://bucket/prefix" -> bucket and prefix (no leading slash; may be
 * empty).  0 or -EINVAL. */
int s3_parse_url(const char *url, char *bucket, size_t blen, char *prefix,
                 size_t plen);

struct s3_client;
struct s3_client *s3_client_new(const struct s3_config *cfg);
void s3_client_free(struct s3_client *c);
/* The last error of this client, one line; "" if none. */
const char *s3_error(const struct s3_client *c);

/* Bounded cleanup.  What a failed backup leaves (its uploads to abort,
 * its set to remove) is cleaned up in s3_cleanup_ms(cfg): 10 s, or
 * timeout_s if less.  s3_client_deadline() bounds one client's requests
 * from now on, s3_process_deadline() every client's (0: no bound); a
 * request then gets no retry past it, is cut at it, and one asked after
 * it fails at once; each with -ETIMEDOUT and a line saying so. */
int s3_cleanup_ms(const struct s3_config *cfg);
void s3_client_deadline(struct s3_client *c, int ms);
void s3_process_deadline(int ms);
/* A flag that, once non-zero, cuts the client's request in progress and
 * its retries (-ECANCELED); NULL: none. */
void s3_client_cancel_on(struct s3_client *c, const int *flag);

int s3_bucket_create(struct s3_client *c, const char *bucket);
int s3_put(struct s3_client *c, const char *bucket, const char *key,
           const void *buf, size_t n);
/* Size of an object; -ENOENT if there is none. */
int s3_head(struct s3_client *c, const char *bucket, const char *key,
            uint64_t *size);
/* Streams the bytes [off, off+len) (len 0: to the end) to sink, which
 * returns 0 or a negative errno that stops the transfer.  A transfer cut
 * by the network or a 5xx is resumed where it stopped. */
typedef int (*s3_sink_fn)(void *arg, const void *buf, size_t n);
int s3_get(struct s3_client *c, const char *bucket, const char *key,
           uint64_t off, uint64_t len, s3_sink_fn sink, void *arg);
int s3_delete(struct s3_client *c, const char *bucket, const char *key);
/* Every object under prefix, in key order, page after page; fn returns 0
 * to go on or a negative errno to stop with it. */
typedef int (*s3_list_fn)(void *arg, const char *key, uint64_t size);
int s3_list(struct s3_client *c, const char *bucket, const char *prefix,
            s3_list_fn fn, void *arg);

/* Multipart uploads.  ETags are kept as the store gave them. */
int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                  char *upload_id, size_t idlen);
int s3_mpu_part(struct s3_client *c, const char *bucket, const char *key,
                const char *upload_id, int part, const void *buf, size_t n,
                char *etag, size_t etaglen);
int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key,
                    const char *upload_id, char *const *etags, int nparts);
int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key,
                 const char *upload_id);
/* Every unfinished multipart upload under prefix. */
typedef int (*s3_upload_fn)(void *arg, const char *key, const char *upload_id);
int s3_mpu_list(struct s3_client *c, const char *bucket, const char *prefix,
                s3_upload_fn fn, void *arg);
/* Aborts every unfinished multipart upload under prefix (what a killed
 * writer left); *n gets how many (may be NULL). */
int s3_mpu_cleanup(struct s3_client *c, const char *bucket, const char *prefix,
                   int *n);

/* A streaming upload: bytes written are cut into parts of part_size (at
 * least 5 MiB, S3's minimum) sent by `inflight` threads while the caller
 * goes on; memory is part_size x inflight.  An object smaller than one
 * part is sent by one PUT.  Nothing is visible under key before
 * s3_upload_finish() returns 0; s3_upload_abort() (or a failed finish)
 * removes the parts sent.  s3_upload_write() returns the first error of
 * any part (the upload is then lost: abort it). */
struct s3_upload;
int s3_upload_open(struct s3_upload **up, const struct s3_config *cfg,
                   const char *bucket, const char *key, size_t part_size,
                   int inflight);
int s3_upload_write(struct s3_upload *u, const void *buf, size_t n);
/* Writing in place (the sealed stream's chunks, without a copy): where
 * the next `want` bytes go in the part being filled, or NULL when it has
 * less room (or the upload failed): then use s3_upload_write().  Once n <=
 * want bytes are there, s3_upload_commit(n) counts them as written. */
void *s3_upload_room(struct s3_upload *u, size_t want);
int s3_upload_commit(struct s3_upload *u, size_t n);
int s3_upload_finish(struct s3_upload *u);
/* Stops the parts in flight at once and aborts the upload within
 * s3_cleanup_ms().  No result: no caller could act on one.  An upload
 * the store would not abort is left open (the store's error kept for
 * s3_upload_error() if none was there before) for s3_mpu_cleanup(),
 * which the removal of a failed backup's set tries (saying what is left
 * when it cannot) and the next backup of the database does. */
void s3_upload_abort(struct s3_upload *u);
/* The last error of the upload, one line. */
const char *s3_upload_error(const struct s3_upload *u);
/* Frees an upload after finish or abort. */
void s3_upload_free(struct s3_upload *u);

#endif
