/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote.h - the client side of the local protocol (wire.h): when an
 * instance runs for the directory, `vdisql -Q/-i` sends it the scripts and
 * prints what comes back; when none runs, vdisql runs them itself.
 */
#ifndef VDISQL_REMOTE_H
#define VDISQL_REMOTE_H

/** Run @p scripts through the instance of @p dir.  @return -1 when no
 * instance listens (nothing was sent), else the exit status to use. */
int remote_run(const char *dir, int flags, const char *sep, const char *server,
               char *const *scripts, int n);

#endif
