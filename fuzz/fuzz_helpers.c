/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_helpers.c - the data producer, the failure report, and the
 * process-wide checks the fuzz targets share (see fuzz_helpers.h).
 */
#include "fuzz_helpers.h"

#include "vdi.h"

#include <dirent.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

int fz_report_fd = 2;

void fz_fail(const char *file, int line, const char *what) {
  dprintf(fz_report_fd, "fuzz check failed: %s:%d: %s\n", file, line, what);
  abort();
}

int fz_strict(void) {
  static int on = -1;
  if (on < 0) on = getenv("FZ_STRICT") != NULL;
  return on;
}

/* ---------------------------------------------------------- data producer */

void fzp_init(fz_producer *p, const uint8_t *data, size_t size) {
  p->data = data;
  p->size = size;
}

uint8_t fzp_u8(fz_producer *p) {
  if (p->size == 0) return 0;
  p->size--;
  return p->data[p->size];
}

uint32_t fzp_range(fz_producer *p, uint32_t min, uint32_t max) {
  if (max <= min) return min;
  uint32_t span = max - min, v = 0;
  /* Only as many bytes as the span needs, so small choices stay cheap. */
  for (uint32_t s = span; s && p->size; s >>= 8)
    v = (v << 8) | fzp_u8(p);
  return span == UINT32_MAX ? v : min + v % (span + 1);
}

const uint8_t *fzp_take(fz_producer *p, size_t n, size_t *got) {
  if (n > p->size) n = p->size;
  const uint8_t *r = p->data;
  p->data += n;
  p->size -= n;
  *got = n;
  return r;
}

const uint8_t *fzp_rest(fz_producer *p, size_t *got) {
  return fzp_take(p, p->size, got);
}

/* ------------------------------------------------- sets in one process */

void fz_set_name(char *out, size_t n) {
  static atomic_uint counter;
  snprintf(out, n, "fz%ld-%u", (long)getpid(), atomic_fetch_add(&counter, 1));
}

int fz_legal_code(int rc) {
  static const int codes[] = {0,
                              VD_E_NOTOPEN,
                              VD_E_TIMEOUT,
                              VD_E_ABORT,
                              VD_E_SECURITY,
                              VD_E_INVALID,
                              VD_E_INSTANCE_NAME,
                              VD_E_NOTSUPPORTED,
                              VD_E_MEMORY,
                              VD_E_UNEXPECTED,
                              VD_E_PROTOCOL,
                              VD_E_OPEN,
                              VD_E_CLOSE,
                              VD_E_BUSY,
                              VD_E_QUEUE_FULL,
                              VD_E_IO_ERROR};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (rc == codes[i]) return 1;
  return 0;
}

static int dir_count(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  struct dirent *e;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

int fz_fd_count(void) {
  return dir_count("/proc/self/fd") - 1; /* the directory's own descriptor */
}

int fz_thread_count(void) {
  return dir_count("/proc/self/task");
}

int fz_thread_count_settled(int expect) {
  /* A joined thread may still be listed for a moment: the kernel wakes the
   * joiner before it has removed the task.  A leaked one stays. */
  int n = fz_thread_count();
  for (int i = 0; i < 200 && n > expect; i++) {
    usleep(500);
    n = fz_thread_count();
  }
  return n;
}

/* Calls fn for each mapping named with tag; stops when fn returns 1. */
static int each_mapping(const char *tag,
                        int (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                        void *arg) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int n = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, tag)) continue;
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    n++;
    if (fn && fn(lo, hi, arg)) {
      n = 1;
      break;
    }
  }
  fclose(f);
  return n;
}

int fz_map_count(const char *tag) {
  return each_mapping(tag, NULL, NULL);
}

struct range {
  uintptr_t lo, hi;
  int inside;
};

static int contains(uintptr_t lo, uintptr_t hi, void *arg) {
  struct range *r = arg;
  if (r->lo >= lo && r->hi <= hi) r->inside = 1;
  return r->inside;
}

int fz_in_mapping(const void *p, size_t len, const char *tag) {
  struct range r = {(uintptr_t)p, (uintptr_t)p + len, 0};
  if (r.hi < r.lo) return 0;
  each_mapping(tag, contains, &r);
  return r.inside;
}
