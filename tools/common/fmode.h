/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fmode.h - the permissions of the files the tools create.
 *
 * A backup is a full copy of a database, and a restored database is a full
 * copy of a backup: whoever can read the copy can read the data.  So every
 * file vdisql and vdi create is never more readable than what it comes
 * from (docs/RELIABILITY.md, "Who can read what we write"):
 *   - the permission bits are the source's read/write bits, less the
 *     umask (never an execute bit);
 *   - the group is the source's where the process may set it; where it
 *     cannot, the copy gets no group bits at all (its group would be a
 *     different set of people);
 *   - where the source is unknown, 0600.
 * New files are created 0600 with O_EXCL (mkostemp or open) and given their
 * final bits before the first byte of data is written.
 */
#ifndef OPENVDI_FMODE_H
#define OPENVDI_FMODE_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/** Where the source of a copy is unknown: owner only. */
#define FM_UNKNOWN_MODE 0600u

/** @brief The process's umask, read without changing it. */
mode_t fm_umask(void);

/** @brief Permission bits of a copy of a file with mode @p src_mode. */
mode_t fm_copy_bits(mode_t src_mode);

/** @brief Make the new file @p fd a copy-permission of @p src (its stat; NULL
 * = unknown, FM_UNKNOWN_MODE).  The group is set to src's when allowed (and
 * the owner too when running as root); otherwise the group bits go.
 * @return 0 or -errno (fchmod failed). */
int fm_apply(int fd, const struct stat *src);

/** @brief The same from a recorded mode and group (@p known = 0: unknown).
 * The owner is never changed: a recorded uid may belong to another
 * machine. */
int fm_apply_recorded(int fd, int known, uint32_t mode, uint32_t gid);

/** @brief 1 if @p path exists and is a symbolic link (lstat). */
int fm_is_symlink(const char *path);

#endif
