/* SPDX-License-Identifier: Apache-2.0 */
/*
 * logins.h - the SQL logins of an instance besides sa: DIR/.vdisql/logins,
 * mode 0600, one line per login,
 *
 *     NAME:pbkdf2-sha256:ITERATIONS:SALT(hex):HASH(hex)
 *
 * a PBKDF2-HMAC-SHA256 (OpenSSL) of the password, salted with 16 random
 * bytes.  `vdisql -S DIR --add-login NAME` writes one (the password from
 * $VDISQL_LOGIN_PASSWORD or the first line of stdin), --remove-login NAME
 * drops one.  The file is read at each login, so a change takes effect at
 * the next connection, without a restart.
 */
#ifndef VDISQL_LOGINS_H
#define VDISQL_LOGINS_H

/* Iterations of new hashes (each line keeps its own). */
#define LOGINS_ITERATIONS 200000

/** Whether @p user may log in with @p password: "sa" against @p
 * sa_password (MSSQL_SA_PASSWORD; NULL: sa is looked up in the file like
 * any login), every other name (case-insensitive, as SQL Server's default
 * collation compares them) against the logins file.  Comparisons take
 * constant time; an unknown name costs the same hash as a known one.  At
 * most a few hashes run at once, whatever the number of connections.
 * @return 1 if the login is good, 0 if not. */
int logins_check(const char *dir, const char *sa_password, const char *user,
                 const char *password);

/** --add-login (replaces an existing one) and --remove-login: the exit
 * status, after printing one line. */
int logins_add(const char *dir, const char *name);
int logins_remove(const char *dir, const char *name);

#endif
