/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio.h - whole reads and writes at an offset: pread(2) and pwrite(2)
 * may move fewer bytes than asked or be interrupted; these loop until all
 * of it moved, so a short transfer is never taken for a complete one.
 */
#ifndef OPENVDI_FILEIO_H
#define OPENVDI_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/** Write all @p n bytes at @p off.  0, or -1 with errno set (EIO when the
 * file would take no more). */
int fio_pwrite_all(int fd, const void *p, size_t n, off_t off);
/** Read all @p n bytes at @p off.  0, or -1 with errno set (EIO when the
 * file ends first). */
int fio_pread_all(int fd, void *p, size_t n, off_t off);

#endif
