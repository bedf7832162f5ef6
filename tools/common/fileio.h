/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio.h - whole reads and writes at an offset: pread(2) and pwrite(2)
 * may move fewer bytes than asked or be interrupted; these loop until all
 * of it moved, so a short transfer is never taken for a complete one.
 * And the writeback hint for files written front to back, then synced.
 */
#ifndef OPENVDI_FILEIO_H
#define OPENVDI_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Write all @p n bytes at @p off.  0, or -1 with errno set (EIO when the
 * file would take no more). */
int fio_pwrite_all(int fd, const void *p, size_t n, off_t off);
/** Read all @p n bytes at @p off.  0, or -1 with errno set (EIO when the
 * file ends first). */
int fio_pread_all(int fd, void *p, size_t n, off_t off);
/** fsync a directory, so that a rename or a new file in it lasts.  0, or
 * -1 with errno set. */
int fio_sync_dir(const char *dir);
/** The same for the directory that holds @p path. */
int fio_sync_parent(const char *path);
/** A file written front to back and fsync'd at the end: once @p written
 * (the bytes from the start) is FIO_WRITEBACK_STEP past *kicked, ask the
 * kernel to start writing back the bytes between (sync_file_range, no
 * waiting) and move *kicked.  Left alone, the kernel writes such a file
 * out at the fsync of the end (or past dirty_background_ratio of memory),
 * so a 1 GiB backup took as long to stream as the disk then took to write
 * it; started as the bytes come, the disk writes while they stream.  Only
 * a hint, errors ignored: the fsync at the end makes the file durable. */
void fio_kick_writeback(int fd, uint64_t *kicked, uint64_t written);
#define FIO_WRITEBACK_STEP (8u << 20)

#endif
