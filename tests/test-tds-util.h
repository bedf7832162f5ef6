/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-tds-util.h - what the TDS tests (test-tds*.c) share: an instance
 * serving TDS on a free port, real client programs run as processes
 * (tsql, Python with pymssql or pyodbc), the SDK-style VDI clients that
 * service a virtual device (tests/cxx/pipe_backup, pipe_restore).
 */
#ifndef TEST_TDS_UTIL_H
#define TEST_TDS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PYTHON   "/usr/bin/python3" /* Debian's, where python3-pymssql is */
#define PASSWORD "Vdi-Test#7"

/* The instance of the running test: its directory, its log, its port. */
extern char inst[4200], ilog[4300];
extern int port;

/** Start a program with stdin from @p in (or /dev/null), stdout and stderr
 * to @p out, and the extra environment @p env ("K=V", NULL-ended). */
pid_t run_prog(const char *const *argv, const char *in, const char *out,
               const char *const *env);
/** Wait for @p p up to @p ms; its exit status, after printing @p log when
 * it is not 0. */
int wait_ok(pid_t p, int ms, const char *what, const char *log);
void write_file(const char *path, const char *text);
/** Fail unless the program at @p path is there. */
void need(const char *path);
/** An instance with database app (@p rows rows) serving TDS on a free port
 * (sets inst, ilog, port), sa's password PASSWORD; @p extra: more
 * arguments (NULL-ended, or NULL). */
pid_t start_tds_with(int rows, const char *const *extra);
pid_t start_tds(int rows);
/** Start the SDK client @p prog ("cxx/pipe_backup") on a new set and wait
 * until it created the set.  Its output goes to @p log. */
pid_t start_client(const char *prog, const char *set, const char *file,
                   const char *log, const char *const *env);
/** Run tsql against 127.0.0.1:@p at as @p user with @p script on stdin and
 * the extra environment @p env; its output in *out, its status returned. */
int tsql_as(int at, const char *user, const char *password, const char *script,
            char **out, const char *const *env);
/** tsql_as(port, "sa", ...) without extra environment. */
int tsql(const char *password, const char *script, char **out);
/** The restored database inst/copy.db holds the same rows as inst/app.db,
 * @p rows of them; the test fails otherwise. */
void expect_copy_equals_app(long rows);
/** pyodbc + FreeTDS ODBC (@p conn_extra appended to its connection
 * string) cancels a BACKUP of app to a virtual device while the device's
 * client holds the stream: the backup is aborted at once, the VDI client
 * sees it, nothing is recorded, and the connection goes on working.
 * Fails the test otherwise. */
void pyodbc_cancel_check(const char *conn_extra);

/* A raw TDS client, for what real clients never send ([MS-TDS] 7.4, no
 * encryption): */
/** A TCP connection to 127.0.0.1:@p at (20 s receive timeout), or -1. */
int tds_raw_connect(int at);
/** One packet of type @p type holding the whole message @p p. */
int tds_raw_send(int fd, uint8_t type, const uint8_t *p, size_t n);
/** One reply message's payload into @p buf: its length, or -1. */
long tds_raw_reply(int fd, uint8_t *buf, size_t cap);
/** PRELOGIN, then LOGIN7 as @p user.  1: logged in (LOGINACK; *fdp is the
 * connection), 0: refused with Msg 18456, -1: closed or broken before an
 * answer (*fdp is -1 unless 1). */
int tds_raw_login_fd(int at, const char *user, const char *pw, int *fdp);
/** The same, asking for database @p db (NULL: none). */
int tds_raw_login_db_fd(int at, const char *user, const char *pw,
                        const char *db, int *fdp);
/** The same, the connection closed at once. */
int tds_raw_login(int at, const char *user, const char *pw);
/** Send @p sql (ASCII) as a SQL_BATCH. */
int tds_raw_batch(int fd, const char *sql);

#endif
