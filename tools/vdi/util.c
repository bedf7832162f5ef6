/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c - small shared pieces of `vdi`: name checks, random set names,
 * clocks, paths, and the directory fsync that makes a rename durable.
 * Messages on stderr are in out.c.
 */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Database names become file names ("<db>.db", "<db>.manifest.json") and
 * appear inside a bracketed T-SQL name, so keep them to a safe alphabet. */
int app_valid_db_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > APP_DB_NAME_MAX || name[0] == '.' || name[0] == '-')
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

void app_random_hex(char *buf, size_t n) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[64];
  size_t need = (n + 1) / 2;
  if (need > sizeof raw) need = sizeof raw;
  if (getrandom(raw, need, 0) != (ssize_t)need) {
    /* Fall back on time and pid: uniqueness, not secrecy, is the point. */
    uint64_t x = (uint64_t)time(NULL) * 6364136223846793005u ^
                 (uint64_t)getpid() ^ (uint64_t)(uintptr_t)buf;
    for (size_t i = 0; i < need; i++) {
      x = x * 6364136223846793005u + 1442695040888963407u;
      raw[i] = (unsigned char)(x >> 56);
    }
  }
  for (size_t i = 0; i < n && i / 2 < need; i++)
    buf[i] = hex[(raw[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
  buf[n] = 0;
}

double app_wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double app_mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void app_iso_time(double t, char *buf, size_t n) {
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int app_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

int app_path(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  return (r < 0 || (size_t)r >= n) ? -1 : 0;
}

/* The key of --key-file and --encrypt (app.h; used by stripe.c): here, so
 * that main.c needs no transfer machinery to set them. */
const struct seal_key *stripe_key;
int stripe_encrypt;
const struct seal_key *app_key_file;
char stripe_recipient[65], stripe_wrapped_key[161];
