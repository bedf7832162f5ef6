/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.h - `vdisql --serve -S DIR`: the engine instance of one instance
 * directory, running in the foreground until SIGTERM or SIGINT, serving
 * the statements that `vdisql -S DIR -Q/-i` send it (wire.h).
 */
#ifndef VDISQL_SERVE_H
#define VDISQL_SERVE_H

#include <sys/types.h>

typedef struct serve_opts {
  const char *dir; /* the instance directory */
  int allow_group; /* also let members of allow_gid in */
  gid_t allow_gid;
  int stop_timeout; /* s: how long a stop waits for running statements */
  const char *tds;  /* --tds ADDRESS:PORT, or NULL: no TDS endpoint */
  const char *tls_cert, *tls_key; /* PEM files, or NULL: no TLS */
  int tls_mode; /* --tls-mode (TDS_TLS_*), -1: on with a certificate */
  const char *const *backup_dirs; /* real paths, NULL-ended: where DISK
                                   * backups may be read and written */
} serve_opts;

/** Run the instance.  @return the exit status: 0 after a clean stop, 1 if
 * it could not start (another instance runs, the address is taken...). */
int serve_run(const serve_opts *o);

#endif
