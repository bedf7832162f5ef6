/* SPDX-License-Identifier: Apache-2.0 */
/*
 * media.h - where a backup stream goes to or comes from: a set of stripes
 * ("media families"), one per DISK file or virtual device.  The stream
 * writer and reader see each stripe as a plain byte stream; the drivers
 * (disk.c, vdidev.c) decide how bytes travel.
 */
#ifndef VDISQL_MEDIA_H
#define VDISQL_MEDIA_H

#include "msg.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct media media_t;

struct media_ops {
  /* Append bytes to a stripe. 0 or -1 (error in m->err). */
  int (*write)(media_t *m, unsigned stripe, const void *buf, size_t len);
  /* Read up to len bytes; returns the count, less than len only at the end
   * of the stripe; -1 on error. */
  long (*read)(media_t *m, unsigned stripe, void *buf, size_t len);
  /* End: ok = 1 makes a backup durable and complete (Flush, Complete,
   * rename); ok = 0 abandons it.  Returns 0 or -1 (error in m->err). */
  int (*finish)(media_t *m, int ok);
  /* Restore, after the last byte: 0 if every read is back and the client
   * is still there, -1 (error in m->err) if it died or aborted.  A restore
   * replaces its database only after this said 0 (exec.c). */
  int (*peer_ok)(media_t *m);
  void (*destroy)(media_t *m);
  /* Optional (NULL: only write): where the next len bytes of a stripe can
   * be made in place, in the buffer the driver sends them from, or NULL
   * when they do not fit there (write them instead).  commit then appends
   * the len bytes made there.  0 or -1 (error in m->err). */
  uint8_t *(*reserve)(media_t *m, unsigned stripe, size_t len);
  int (*commit)(media_t *m, unsigned stripe, size_t len);
};

struct media {
  const struct media_ops *ops;
  unsigned nstripes;
  uint32_t align; /* each stripe's length must be a multiple (padding) */
  uint32_t device_type;
  vmsg *err;
};

/* Options a driver needs from the statement. */
typedef struct media_opts {
  int writing;   /* BACKUP (1) or RESTORE family (0) */
  int overwrite; /* DISK: INIT or FORMAT given */
  uint32_t blocksize, buffercount, maxtransfer; /* 0 = default */
  const char *base_dir;       /* the instance: relative DISK paths are under it,
                               * and its files are never a backup device */
  const struct stat *src;     /* BACKUP: the database file (fmode.h) */
  const char *const *allowed; /* DISK paths must be under one of these
                               * (guard_confined); NULL: anywhere */
} media_opts;

/** Open DISK files.  @return NULL with @p err set on failure. */
media_t *disk_open(char *const *paths, int n, const media_opts *o, vmsg *err);
/** Open a virtual device set as the server (VDI).  @return NULL on failure,
 * with @p err set; the set is then aborted so the client learns at once. */
media_t *vdidev_open(char *const *names, int n, const media_opts *o, vmsg *err);
/** Open the set only to abort it: for statements that fail before their
 * devices are used, so that a waiting client does not wait forever. */
void vdidev_abort_set(const char *name);

/** Sets this thread opens from now on belong to the session whose cancel
 * flag is @p cancel (NULL: none); a set whose owner is already cancelled
 * is aborted as soon as it exists. */
void vdidev_set_owner(const volatile int *cancel);
/** Abort (SignalAbort) every open set of @p cancel's session, or every
 * open set when @p cancel is NULL.  @return how many. */
int vdidev_abort_owned(const volatile int *cancel);

static inline int media_write(media_t *m, unsigned s, const void *b, size_t n) {
  return m->ops->write(m, s, b, n);
}
static inline uint8_t *media_reserve(media_t *m, unsigned s, size_t n) {
  return m->ops->reserve ? m->ops->reserve(m, s, n) : NULL;
}
static inline int media_commit(media_t *m, unsigned s, size_t n) {
  return m->ops->commit(m, s, n);
}
static inline long media_read(media_t *m, unsigned s, void *b, size_t n) {
  return m->ops->read(m, s, b, n);
}
static inline int media_peer_ok(media_t *m) {
  return m->ops->peer_ok(m);
}
/** Finish and free. @return 0 or -1 (error already in m->err). */
static inline int media_close(media_t *m, int ok) {
  int rc = m->ops->finish(m, ok);
  m->ops->destroy(m);
  return rc;
}

#endif
