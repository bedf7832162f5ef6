/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec_int.h - what the statement runners share (exec.c, exec_backup.c,
 * exec_restore.c): the failure and result lines, opening the media.
 */
#ifndef VDISQL_EXEC_INT_H
#define VDISQL_EXEC_INT_H

#include "exec.h"
#include "media.h"
#include "msg.h"

#include <stdint.h>
#include <sys/stat.h>

/** Print @p m and "<verb> is terminating abnormally."  @return -1. */
int exec_fail(const stmt *s, const vmsg *m);
/** The same for a statement that fails before its devices are used: a
 * waiting VDI client is told at once (its set is aborted). */
int exec_fail_early(const stmt *s, const vmsg *m);
media_t *exec_open_media(const exec_ctx *cx, const stmt *s, int writing,
                         const struct stat *src, vmsg *err);
/** msdb's device_type: 2 disk, 7 virtual device. */
int exec_device_type(const stmt *s);
/** "<verb> successfully processed N pages in S seconds (R MB/sec)." */
void exec_done_line(const char *verb, uint64_t pages, uint32_t ps, double secs);
double exec_now(void);

int exec_backup(const exec_ctx *cx, const stmt *s);
int exec_restore(const exec_ctx *cx, const stmt *s);
/** CREATE MASTER KEY, CREATE / BACKUP / DROP CERTIFICATE (exec_cert.c). */
int exec_cert(const exec_ctx *cx, const stmt *s);

#endif
