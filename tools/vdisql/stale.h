/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stale.h - temporary files a killed vdisql leaves behind, and how the
 * next vdisql recognises and removes them.
 *
 * Every temporary file (a restore's new database, a DISK backup's partial
 * file) is locked with flock() for as long as its creator lives.  A file of
 * that naming whose lock can be taken has no living owner: it is debris of
 * a killed process and is removed (a lock held by a live vdisql, even one
 * in the middle of a long restore, keeps its file safe).
 */
#ifndef VDISQL_STALE_H
#define VDISQL_STALE_H

/* Hold fd's lock for the life of the process (0, or -1 with errno). */
int stale_hold(int fd);
/* Remove files in dir whose names contain marker (and, if prefix is not
 * NULL, start with it) and whose lock nobody holds; with their SQLite side
 * files.  Returns the number removed. */
int stale_sweep(const char *dir, const char *prefix, const char *marker);

#endif
