// SPDX-License-Identifier: Apache-2.0
/*
 * position.c - the positioning commands of the `position` scenario, as
 * SQL Server sends them (spec 3.5): VDC_Discard before the backup proper
 * (what was written before it must never come back), VDC_GetPosition in
 * the middle of the backup (where a data set starts), and on restore
 * VDC_SetPosition back to that position, VDC_GetPosition again, the
 * reads from there, then back to the start and every byte again.  A
 * client that did not advertise the feature a command needs (VDF_Discard;
 * VDF_Position or VDF_RandomAccess) must answer ERROR_NOT_SUPPORTED, and
 * the kit clears the error and goes on (window.c checks the codes).
 */
#include "window.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint32_t position_feature(uint32_t code, const char **name) {
  if (code == VDC_Discard) {
    *name = "VDF_Discard";
    return VDF_Discard;
  }
  *name = "VDF_Position or VDF_RandomAccess";
  return VDF_Position | VDF_RandomAccess;
}

int position_has(const struct phase *p, uint32_t code) {
  const char *name;
  return (p->client_features & position_feature(code, &name)) != 0;
}

/* Add to what the evidence of a passing phase says it did. */
static void detail_add(struct phase *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void detail_add(struct phase *p, const char *fmt, ...) {
  size_t k = strlen(p->kept.detail);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->kept.detail + k, sizeof p->kept.detail - k, fmt, ap);
  va_end(ap);
}

/* A command the client did not advertise: ERROR_NOT_SUPPORTED (checked
 * when retired), then ClearError, as after any error (spec 2.4.4). */
static int unsupported(struct dev *d, uint32_t code) {
  if (win_barrier(d, code) != 0) return -1;
  return win_barrier(d, VDC_ClearError);
}

/* One positioning command alone; its outPosition in *pos. */
static int positioning(struct dev *d, uint32_t code, uint32_t whence,
                       uint64_t at, uint64_t *pos) {
  int rc = win_drain(d);
  if (rc != 0) return rc;
  if (win_send(d, code, whence, at) != 0) return -1;
  if ((rc = win_retire(d)) != 0) return rc;
  *pos = win_last_pos(d);
  return 0;
}

int position_backup_begin(struct dev *d) {
  struct run *r = d->r;
  if (!position_has(r->p, VDC_Discard)) return unsupported(d, VDC_Discard);
  detail_add(r->p, "VDC_Discard honoured; ");
  /* A first attempt, then abandoned: bytes that are not the stream's
   * (those past its end), at a position past the end for a disk-like
   * client.  None of them may come back in the restore. */
  uint32_t n = r->bytes < r->sc->maxxfer ? (uint32_t)r->bytes : r->sc->maxxfer;
  if (n > 0 && win_send(d, VDC_Write, n, r->bytes) != 0) return -1;
  return win_barrier(d, VDC_Discard);
}

int position_backup_mid(struct dev *d, uint64_t off) {
  struct run *r = d->r;
  struct phase *p = r->p;
  if (!position_has(p, VDC_GetPosition)) {
    if (unsupported(d, VDC_GetPosition) != 0) return -1;
    detail_add(p, "%sGet/SetPosition ERROR_NOT_SUPPORTED as not advertised; ",
               position_has(p, VDC_Discard) ? "" : "Discard, ");
    return unsupported(d, VDC_SetPosition);
  }
  uint64_t pos;
  if (positioning(d, VDC_GetPosition, 0, 0, &pos) != 0) return -1;
  /* With RandomAccess a position is a byte offset from the start. */
  if ((p->client_features & VDF_RandomAccess) && pos != off) {
    win_fail(r,
             "device %d: VDC_GetPosition after %llu bytes written from the "
             "start returned position %llu; with VDF_RandomAccess it is the "
             "byte offset, %llu",
             d->i, (unsigned long long)off, (unsigned long long)pos,
             (unsigned long long)off);
    return -1;
  }
  p->kept.has_mark = 1;
  p->kept.mark_pos = pos;
  p->kept.mark_off = off;
  return 0;
}

/* SetPosition (whence VDC_Beginning) to `at`: the client must report
 * `want` as the resulting position. */
static int set_position(struct dev *d, uint64_t at, uint64_t want,
                        const char *what) {
  uint64_t pos;
  if (positioning(d, VDC_SetPosition, VDC_Beginning, at, &pos) != 0) return -1;
  if (pos != want) {
    win_fail(d->r,
             "device %d: VDC_SetPosition to %s (%llu) reported the resulting "
             "position %llu",
             d->i, what, (unsigned long long)want, (unsigned long long)pos);
    return -1;
  }
  return 0;
}

void position_restore(struct dev *d) {
  struct run *r = d->r;
  struct phase *p = r->p;
  uint64_t total = p->backup_bytes[d->i], pos;
  int ra = (p->client_features & VDF_RandomAccess) != 0;
  /* The data set that started mid-backup, located as SQL Server locates
   * it: by the position GetPosition gave then. */
  if (set_position(d, p->kept.mark_pos, p->kept.mark_pos,
                   "the position VDC_GetPosition gave mid-backup") != 0)
    return;
  if (positioning(d, VDC_GetPosition, 0, 0, &pos) != 0) return;
  if (pos != p->kept.mark_pos) {
    win_fail(r,
             "device %d: VDC_GetPosition right after VDC_SetPosition to %llu "
             "returned %llu",
             d->i, (unsigned long long)p->kept.mark_pos,
             (unsigned long long)pos);
    return;
  }
  detail_add(p,
             "SetPosition to %llu (byte %llu) and GetPosition right, data "
             "right from there and from the start; ",
             (unsigned long long)p->kept.mark_pos,
             (unsigned long long)p->kept.mark_off);
  snprintf(d->where, sizeof d->where,
           "read from the position VDC_GetPosition gave mid-backup");
  if (script_read_span(d, p->kept.mark_off, total) != 0) return;
  /* Back to the start, and everything. */
  if (ra ? set_position(d, 0, 0, "the start") != 0
         : win_barrier(d, VDC_Rewind) != 0)
    return;
  snprintf(d->where, sizeof d->where, "read from the start after %s",
           ra ? "VDC_SetPosition 0" : "VDC_Rewind");
  if (script_read_span(d, 0, total) != 0) return;
  if (vdi_srvdev_close_device(d->sd) == 0) d->closed = 1;
}
