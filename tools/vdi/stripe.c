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
 */
#include "app.h"
#include "fmode.h"

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

int stripe_open(struct stripe *s, const char *dir, const char *name) {
  int idx = s->index;
  uint64_t expect = s->expect;
  uint32_t expect_crc = s->expect_crc;
  int check = s->check_feed;
  stripe_init(s);
  s->index = idx;
  s->expect = expect;
  s->expect_crc = expect_crc;
  s->check_feed = check;
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  snprintf(s->name, sizeof s->name, "%s", name);
  char path[4400];
  if (app_path(path, sizeof path, "%s/%s", dir, name) != 0)
    return -ENAMETOOLONG;
  s->fd = open(path, O_RDONLY | O_CLOEXEC);
  return s->fd < 0 ? -errno : 0;
}

int stripe_write(struct stripe *s, const void *buf, size_t n) {
  if (slow_write_ms) test_delay(slow_write_ms, n);
  uint64_t before =
      __atomic_fetch_add(&written_total, (uint64_t)n, __ATOMIC_RELAXED);
  if (before + n > fail_after) {
    __atomic_fetch_sub(&written_total, (uint64_t)n, __ATOMIC_RELAXED);
    return -ENOSPC;
  }
  const unsigned char *p = buf;
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(s->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : ENOSPC;
      /* Leave the file as it was before this write, so that a retry after
       * VDC_ClearError continues a clean stream. */
      if (!s->is_std && ftruncate(s->fd, (off_t)s->bytes) == 0)
        lseek(s->fd, (off_t)s->bytes, SEEK_SET);
      __atomic_fetch_sub(&written_total, (uint64_t)n, __ATOMIC_RELAXED);
      return -err;
    }
    p += w;
    left -= (size_t)w;
  }
  s->crc = app_crc32c(s->crc, buf, n);
  s->bytes += n;
  return 0;
}

int stripe_read(struct stripe *s, void *buf, size_t n, size_t *got) {
  if (slow_read_ms) test_delay(slow_read_ms, n);
  unsigned char *p = buf;
  size_t have = 0;
  while (have < n) {
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

int stripe_sync(struct stripe *s) {
  if (fsync(s->fd) == 0) return 0;
  /* Pipes, sockets and terminals cannot be synced: nothing to make
   * durable on our side. */
  if (errno == EINVAL || errno == EROFS || errno == ENOTSUP) return 0;
  return -errno;
}

int stripe_commit(struct stripe *s) {
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
  if (s->fd >= 0 && !s->is_std) close(s->fd);
  s->fd = -1;
  if (s->tmp[0]) {
    char path[4600];
    if (app_path(path, sizeof path, "%s/%s", s->dir, s->tmp) == 0) unlink(path);
    s->tmp[0] = 0;
  }
}

int stripe_file_crc(const char *path, uint64_t *size, uint32_t *crc) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  static __thread unsigned char buf[1 << 16];
  uint64_t n = 0;
  uint32_t c = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      close(fd);
      return -err;
    }
    if (r == 0) break;
    c = app_crc32c(c, buf, (size_t)r);
    n += (uint64_t)r;
  }
  close(fd);
  *size = n;
  *crc = c;
  return 0;
}
