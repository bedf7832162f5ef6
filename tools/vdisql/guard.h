/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guard.h - what keeps a statement from destroying the instance it runs
 * in: no backup may be written over a file of the instance (a database,
 * its -wal/-shm/-journal, the instance's own files), and one database is
 * restored by one statement at a time, never while it is being backed up.
 */
#ifndef VDISQL_GUARD_H
#define VDISQL_GUARD_H

#include "msg.h"

#include <stddef.h>

/** Refuse (Msg 3201) a backup target @p path that is, or would become, a
 * file of the instance @p inst_dir: the same inode as any of its database
 * files or their companions (hard links and symlinks included), a name in
 * the instance directory that is a database's or a companion's, a dot-file
 * there (restore temporaries, the instance's private files), or anything
 * under its private directory.  @return 0 or -1 with @p err set. */
int guard_backup_target(const char *inst_dir, const char *path, vmsg *err);

/** Refuse (Msg 3201, operating system error 5) a DISK @p path that is
 * not under one of @p dirs (real paths, NULL-ended): the directories an
 * instance reads and writes backups in (vdisql --serve --backup-dir; the
 * instance directory by default).  The path's directory is resolved
 * (symbolic links and ".." included), and an existing file is resolved
 * whole, so no spelling or link leads out.  @p dirs NULL: one-shot
 * vdisql, which acts as its own user and is not confined.
 * @return 0 or -1 with @p err set. */
int guard_confined(const char *const *dirs, const char *path, vmsg *err);

/** A file named in a statement: @p path as given when absolute (or when
 * @p base is NULL), else under @p base (the instance directory), and
 * confined to @p dirs as guard_confined says.  DISK devices and the
 * certificate statements' files are resolved alike.  @return the path
 * (malloc'd) or NULL with @p err set. */
char *guard_resolve(const char *base, const char *path, const char *const *dirs,
                    vmsg *err);

/** Take database @p db's statement lock: exclusive for RESTORE (Msg 3101
 * while any other statement holds it), shared for BACKUP (Msg 927 while a
 * restore holds it).  Never waits.  @p lock receives the lock (a file
 * descriptor held until guard_unlock; -1 when a shared lock is impossible
 * because the user may not write the instance).  @return 0 or -1 with @p
 * err set. */
int guard_lock(const char *inst_dir, const char *db, int exclusive, int *lock,
               vmsg *err);
void guard_unlock(int lock);

/** The instance's private directory, created 0700 if missing:
 * "<inst_dir>/.vdisql[/sub]".  @return 0 or -errno. */
int guard_private_dir(const char *inst_dir, const char *sub, char *out,
                      size_t n);

#endif
