/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stripe.c - one stripe of a backup as a file (or as our stdin/stdout).
 *
 * A backup stripe is written under a temporary dot-name that no reader
 * takes for a backup, fsync'd when the engine says VDC_Flush or
 * VDC_Complete, and renamed to "<db>.stripe<i>.vdibak" only when the whole
 * backup succeeded; any failure removes the temporary file.  A CRC-32C of
 * the bytes as stored is kept as they pass, for the manifest.
 *
 * Test hook: VDI_TEST_FAIL_WRITE_AFTER=<bytes> makes writes fail with
 * ENOSPC once that many bytes (over all stripes of the process) have been
 * stored, which is how the tests exercise a full disk without mounting one.
 * VDI_TEST_SLOW_WRITE_MS=<ms> sleeps that long per 64 KiB before each write
 * (whatever the engine's transfer size), so that a test can act in the
 * middle of a backup; the sleep ends early once the transfer is aborting.
 * VDI_TEST_SLOW_READ_MS=<ms> does the same before each read of a restore.
 *
 * Encryption (--encrypt, --key-file; seal.h): a stripe created while
 * stripe_encrypt is set holds a sealed stream of what the engine wrote,
 * finished (its FINAL chunk) when the stripe is committed; a stripe that
 * starts with the sealed stream's magic is opened with stripe_key as it is
 * read, and stripe_file_crc() authenticates all of it, so a damaged or
 * foreign stripe is refused by the checks before a restore starts.  Sizes
 * and CRC-32Cs are those of the bytes as stored.
 */
#include "app.h"
#include "fileio.h"
#include "fmode.h"
#include "s3.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fail_after = UINT64_MAX;
static uint64_t written_total;
static unsigned slow_write_ms, slow_read_ms;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static void hook_init(void) {
  const char *v = getenv("VDI_TEST_FAIL_WRITE_AFTER");
  if (v && *v) {
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end == 0) fail_after = x;
  }
  v = getenv("VDI_TEST_SLOW_WRITE_MS");
  if (v && *v) slow_write_ms = (unsigned)strtoul(v, NULL, 10);
  v = getenv("VDI_TEST_SLOW_READ_MS");
  if (v && *v) slow_read_ms = (unsigned)strtoul(v, NULL, 10);
}

/* The test hooks' delay: ms per 64 KiB of n, cut short by an abort. */
static void test_delay(unsigned ms, size_t n) {
  double end = app_mono_s() + ms / 1000.0 * (double)((n >> 16) + 1);
  while (app_mono_s() < end &&
         !__atomic_load_n(&app_aborting, __ATOMIC_RELAXED))
    usleep(2000);
}

static int seal_out(void *arg, const void *buf, size_t n);
static int plain_in(void *arg, const void *buf, size_t n);
static int is_sealed(int fd);
static int start_unseal(struct stripe *s, const char *where);

static void stripe_init(struct stripe *s) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  pthread_once(&hook_once, hook_init);
}

int stripe_create(struct stripe *s, const char *dir, const char *name,
                  const char *tag, const struct stat *src) {
  int idx = s->index;
  stripe_init(s);
  s->index = idx;
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->tmp, sizeof s->tmp, ".%s.tmp-%s", name, tag);
  char path[4600];
  if (app_path(path, sizeof path, "%s/%s", dir, s->tmp) != 0)
    return -ENAMETOOLONG;
  char final[4600];
  /* The rename at the end would replace a link planted at the final name
   * rather than follow it; refuse it anyway, so that nobody is misled. */
  if (app_path(final, sizeof final, "%s/%s", dir, name) == 0 &&
      fm_is_symlink(final)) {
    s->tmp[0] = 0;
    return -ELOOP;
  }
  s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (s->fd < 0) {
    s->tmp[0] = 0;
    return -errno;
  }
  int rc = fm_apply(s->fd, src);
  if (rc == 0 && stripe_encrypt && stripe_key)
    rc = seal_writer_open(&s->seal, stripe_key, seal_out, s);
  if (rc != 0) {
    close(s->fd);
    s->fd = -1;
    unlink(path);
    s->tmp[0] = 0;
    return rc;
  }
  return 0;
}

void stripe_use_fd(struct stripe *s, int fd) {
  int idx = s->index;
  stripe_init(s);
  s->index = idx;
  s->fd = fd;
  s->is_std = 1;
  snprintf(s->name, sizeof s->name, "%s", fd == 0 ? "<stdin>" : "<stdout>");
}

/* A stripe about to be read starts afresh but keeps what the caller set
 * for the check: its index, the expected size and CRC, the check flag. */
static void reset_for_reading(struct stripe *s) {
  int idx = s->index;
  uint64_t expect = s->expect;
  uint32_t expect_crc = s->expect_crc;
  int check = s->check_feed;
  stripe_init(s);
  s->index = idx;
  s->expect = expect;
  s->expect_crc = expect_crc;
  s->check_feed = check;
}

int stripe_open(struct stripe *s, const char *dir, const char *name) {
  reset_for_reading(s);
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  snprintf(s->name, sizeof s->name, "%s", name);
  char path[4400];
  if (app_path(path, sizeof path, "%s/%s", dir, name) != 0)
    return -ENAMETOOLONG;
  s->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) return -errno;
  if (!is_sealed(s->fd)) return 0;
  return start_unseal(s, path);
}

static int start_unseal(struct stripe *s, const char *where) {
  if (!stripe_key) {
    app_err("%s is encrypted: give its key with --key-file", where);
    return -ENOKEY;
  }
  s->plain = malloc(2 * SEAL_CHUNK);
  s->raw = malloc(SEAL_CHUNK);
  if (!s->plain || !s->raw) return -ENOMEM;
  return seal_reader_open(&s->unseal, stripe_key, plain_in, s);
}

/* n bytes into an S3 stripe's upload: copied in (s3_upload_write), or
 * already placed in its part buffer and committed (seal_placed).  The
 * CRC-32C comes first, because a commit may send the part and hand its
 * buffer to an upload thread; counting bytes a failed store did not keep
 * does no harm, since an upload's failure is final (s3.h: it is lost and
 * aborted, its CRC never written). */
static int s3_store(struct stripe *s, const void *buf, size_t n, int placed) {
  s->crc = app_crc32c(s->crc, buf, n);
  int rc = placed ? s3_upload_commit(s->up, n) : s3_upload_write(s->up, buf, n);
  if (rc != 0) {
    app_err("stripe %d: %s", s->index, s3_upload_error(s->up));
    return rc;
  }
  s->bytes += n;
  return 0;
}

/* Stores n bytes as they are.  A failed write leaves the file as before
 * it, so that a retry after VDC_ClearError continues a clean stream. */
static int raw_write(struct stripe *s, const void *buf, size_t n) {
  if (s->up) return s3_store(s, buf, n, 0);
  const unsigned char *p = buf;
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(s->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : ENOSPC;
      if (!s->is_std && ftruncate(s->fd, (off_t)s->bytes) == 0)
        lseek(s->fd, (off_t)s->bytes, SEEK_SET);
      return -err;
    }
    p += w;
    left -= (size_t)w;
  }
  s->crc = app_crc32c(s->crc, buf, n);
  s->bytes += n;
  /* The disk writes while the engine streams; the fsync at VDC_Flush or
   * VDC_Complete makes the stripe durable. */
  if (!s->is_std) fio_kick_writeback(s->fd, &s->kicked, s->bytes);
  return 0;
}

static int seal_out(void *arg, const void *buf, size_t n) {
  return raw_write(arg, buf, n);
}

/* An S3 stripe's sealed chunks are made in the part buffer itself. */
static void *seal_room(void *arg, size_t n) {
  struct stripe *s = arg;
  return s->placed_at = s3_upload_room(s->up, n);
}

static int seal_placed(void *arg, size_t n) {
  struct stripe *s = arg;
  return s3_store(s, s->placed_at, n, 1);
}

int stripe_write(struct stripe *s, const void *buf, size_t n) {
  if (slow_write_ms) test_delay(slow_write_ms, n);
  uint64_t before =
      __atomic_fetch_add(&written_total, (uint64_t)n, __ATOMIC_RELAXED);
  if (before + n > fail_after) {
    __atomic_fetch_sub(&written_total, (uint64_t)n, __ATOMIC_RELAXED);
    return -ENOSPC;
  }
  int rc;
  if (s->seal) {
    /* A sealed stream cannot take a write back: its failure is final. */
    rc = s->seal_err ? s->seal_err : seal_write(s->seal, buf, n);
    if (rc != 0) s->seal_err = rc;
  } else {
    rc = raw_write(s, buf, n);
  }
  if (rc != 0)
    __atomic_fetch_sub(&written_total, (uint64_t)n, __ATOMIC_RELAXED);
  return rc;
}

#define S3_RANGE (4u << 20)

static int to_gbuf(void *arg, const void *buf, size_t n) {
  struct stripe *s = arg;
  if (s->g_n + n > S3_RANGE) return -EOVERFLOW;
  memcpy(s->gbuf + s->g_n, buf, n);
  s->g_n += n;
  return 0;
}

/* The next range of an S3 stripe into gbuf (empty at the end). */
static int s3_fill(struct stripe *s) {
  s->g_n = s->g_off = 0;
  if (s->g_pos >= s->s3_size) return 0;
  uint64_t len = s->s3_size - s->g_pos;
  if (len > S3_RANGE) len = S3_RANGE;
  int rc = s3_get(s->s3, s->s3_bucket, s->s3_key, s->g_pos, len, to_gbuf, s);
  if (rc != 0) {
    app_err("stripe %d: %s", s->index, s3_error(s->s3));
    return rc;
  }
  s->g_pos += s->g_n;
  return 0;
}

static int raw_read(struct stripe *s, void *buf, size_t n, size_t *got) {
  unsigned char *p = buf;
  size_t have = 0;
  while (s->s3 && have < n) {
    if (s->g_off == s->g_n) {
      int rc = s3_fill(s);
      if (rc != 0) {
        *got = have;
        return rc;
      }
      if (s->g_n == 0) break;
    }
    size_t k = s->g_n - s->g_off < n - have ? s->g_n - s->g_off : n - have;
    memcpy(p + have, s->gbuf + s->g_off, k);
    s->g_off += k;
    have += k;
  }
  while (!s->s3 && have < n) {
    ssize_t r = read(s->fd, p + have, n - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *got = have;
      return -errno;
    }
    if (r == 0) break;
    have += (size_t)r;
  }
  s->crc = app_crc32c(s->crc, buf, have);
  s->bytes += have;
  *got = have;
  return 0;
}

static int plain_in(void *arg, const void *buf, size_t n) {
  struct stripe *s = arg;
  if (s->plain_n + n > 2 * SEAL_CHUNK) return -EOVERFLOW;
  memcpy(s->plain + s->plain_n, buf, n);
  s->plain_n += n;
  return 0;
}

static int is_sealed(int fd) {
  unsigned char m[8];
  return pread(fd, m, sizeof m, 0) == (ssize_t)sizeof m &&
         memcmp(m, "VDISEAL", 8) == 0;
}

int stripe_read(struct stripe *s, void *buf, size_t n, size_t *got) {
  if (slow_read_ms) test_delay(slow_read_ms, n);
  if (!s->unseal) return raw_read(s, buf, n, got);
  unsigned char *p = buf;
  size_t have = 0;
  int rc = 0;
  while (have < n && rc == 0) {
    if (s->plain_off < s->plain_n) {
      size_t k = s->plain_n - s->plain_off;
      if (k > n - have) k = n - have;
      memcpy(p + have, s->plain + s->plain_off, k);
      s->plain_off += k;
      have += k;
      continue;
    }
    if (s->seal_err) {
      rc = s->seal_err;
      break;
    }
    if (s->unseal_done) break;
    s->plain_off = s->plain_n = 0;
    size_t g;
    rc = raw_read(s, s->raw, SEAL_CHUNK, &g);
    if (rc != 0) break;
    rc = g ? seal_feed(s->unseal, s->raw, g) : seal_reader_finish(s->unseal);
    if (rc != 0) {
      app_err("stripe %d (%s): %s", s->index, s->name,
              seal_reader_error(s->unseal));
      s->seal_err = rc;
    } else if (g == 0) {
      s->unseal_done = 1;
    }
  }
  *got = have;
  return rc;
}

int stripe_sync(struct stripe *s) {
  /* An S3 object is durable when its upload completes (commit). */
  if (s->up || s->s3) return 0;
  if (fsync(s->fd) == 0) return 0;
  /* Pipes, sockets and terminals cannot be synced: nothing to make
   * durable on our side. */
  if (errno == EINVAL || errno == EROFS || errno == ENOTSUP) return 0;
  return -errno;
}

int stripe_commit(struct stripe *s) {
  if (s->seal) {
    int rc = s->seal_err ? s->seal_err : seal_writer_finish(s->seal);
    if (rc == 0) rc = stripe_sync(s);
    if (rc != 0) return s->seal_err = rc;
  }
  if (s->up && !s->up_done) {
    int rc = s3_upload_finish(s->up);
    if (rc != 0) {
      app_err("stripe %d: %s", s->index, s3_upload_error(s->up));
      return rc;
    }
    s->up_done = 1;
    return 0;
  }
  if (s->is_std || !s->tmp[0]) return 0;
  char from[4600], to[4400];
  if (app_path(from, sizeof from, "%s/%s", s->dir, s->tmp) != 0 ||
      app_path(to, sizeof to, "%s/%s", s->dir, s->name) != 0)
    return -ENAMETOOLONG;
  if (rename(from, to) != 0) return -errno;
  s->tmp[0] = 0;
  return 0;
}

void stripe_close(struct stripe *s) {
  if (s->up) {
    /* Not committed: its parts go, nothing is left in the store. */
    if (!s->up_done) s3_upload_abort(s->up);
    s3_upload_free(s->up);
    s->up = NULL;
  }
  s3_client_free(s->s3);
  s->s3 = NULL;
  free(s->gbuf);
  s->gbuf = NULL;
  seal_writer_free(s->seal);
  seal_reader_free(s->unseal);
  free(s->plain);
  free(s->raw);
  s->seal = NULL;
  s->unseal = NULL;
  s->plain = s->raw = NULL;
  if (s->fd >= 0 && !s->is_std) close(s->fd);
  s->fd = -1;
  if (s->tmp[0]) {
    char path[4600];
    if (app_path(path, sizeof path, "%s/%s", s->dir, s->tmp) == 0) unlink(path);
    s->tmp[0] = 0;
  }
}

static int discard(void *arg, const void *buf, size_t n) {
  (void)arg;
  (void)buf;
  (void)n;
  return 0;
}

struct peek {
  unsigned char *buf;
  size_t n, have;
};

static int peek_in(void *arg, const void *buf, size_t n) {
  struct peek *p = arg;
  size_t k = p->n - p->have < n ? p->n - p->have : n;
  memcpy(p->buf + p->have, buf, k);
  p->have += k;
  return 0;
}

/* Reads a file whole: its size and CRC-32C, and when it is sealed, each
 * chunk authenticated (with `out` getting the opened bytes, until `stop`
 * says enough). */
static int read_file(const char *path, uint64_t *size, uint32_t *crc,
                     seal_out_fn out, void *arg, int (*stop)(void *arg)) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct seal_reader *r = NULL;
  int rc = 0;
  if (is_sealed(fd)) {
    if (!stripe_key) {
      app_err("%s is encrypted: give its key with --key-file", path);
      close(fd);
      return -ENOKEY;
    }
    rc = seal_reader_open(&r, stripe_key, out, arg);
    if (rc != 0) {
      close(fd);
      return rc;
    }
  }
  static __thread unsigned char buf[1 << 16];
  uint64_t n = 0;
  uint32_t c = 0;
  for (;;) {
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      rc = -errno;
      break;
    }
    if (r && got > 0) rc = seal_feed(r, buf, (size_t)got);
    if (r && got == 0) rc = seal_reader_finish(r);
    if (rc != 0 || got == 0) break;
    c = app_crc32c(c, buf, (size_t)got);
    n += (uint64_t)got;
    if (stop && stop(arg)) break;
  }
  if (r && (rc == -EBADMSG || rc == -EKEYREJECTED))
    app_err("%s: %s", path, seal_reader_error(r));
  seal_reader_free(r);
  close(fd);
  if (size) *size = n;
  if (crc) *crc = c;
  return rc;
}

int stripe_file_crc(const char *path, uint64_t *size, uint32_t *crc) {
  return read_file(path, size, crc, discard, NULL, NULL);
}

static int peek_full(void *arg) {
  struct peek *p = arg;
  return p->have == p->n;
}

int stripe_peek_stream(const char *path, void *buf, size_t n) {
  struct peek p = {buf, n, 0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int sealed = is_sealed(fd);
  ssize_t got = sealed ? 0 : pread(fd, buf, n, 0);
  close(fd);
  if (!sealed) return got == (ssize_t)n ? 0 : -1;
  int rc = read_file(path, NULL, NULL, peek_in, &p, peek_full);
  if (rc == -ENOKEY || rc == -EKEYREJECTED) return -3; /* the key */
  if (rc == -EBADMSG) return -2;
  return rc == 0 && p.have == n ? 0 : -1;
}

int stripe_sealed_with(const struct stripe *s, char *alg, size_t alen,
                       char *id) {
  if (!s->seal || !stripe_key) return -1;
  snprintf(alg, alen, "%s", seal_alg_name(seal_writer_alg(s->seal)));
  seal_key_id_hex(stripe_key->id, id);
  return 0;
}

int stripe_create_s3(struct stripe *s, const struct s3_config *cfg,
                     const char *bucket, const char *key, const char *name,
                     size_t part_size, int inflight) {
  int idx = s->index;
  stripe_init(s);
  s->index = idx;
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->s3_bucket, sizeof s->s3_bucket, "%s", bucket);
  snprintf(s->s3_key, sizeof s->s3_key, "%s", key);
  int rc = s3_upload_open(&s->up, cfg, bucket, key, part_size, inflight);
  if (rc == 0 && stripe_encrypt && stripe_key)
    rc = seal_writer_open(&s->seal, stripe_key, seal_out, s);
  if (rc == 0 && s->seal) seal_writer_in_place(s->seal, seal_room, seal_placed);
  return rc;
}

int stripe_open_s3(struct stripe *s, const struct s3_config *cfg,
                   const char *bucket, const char *key, const char *name) {
  reset_for_reading(s);
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->s3_bucket, sizeof s->s3_bucket, "%s", bucket);
  snprintf(s->s3_key, sizeof s->s3_key, "%s", key);
  s->s3 = s3_client_new(cfg);
  s->gbuf = malloc(S3_RANGE);
  if (!s->s3 || !s->gbuf) return -ENOMEM;
  int rc = s3_head(s->s3, bucket, key, &s->s3_size);
  if (rc != 0) {
    app_err("stripe %d: %s", s->index, s3_error(s->s3));
    return rc;
  }
  rc = s3_fill(s);
  if (rc != 0) return rc;
  if (s->g_n < 8 || memcmp(s->gbuf, "VDISEAL", 8) != 0) return 0;
  char where[1400];
  snprintf(where, sizeof where, "s3://%s/%s", bucket, key);
  return start_unseal(s, where);
}
