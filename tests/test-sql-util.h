/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-util.h - helpers of the vdisql tests (test-sql-*.c): run the
 * real vdisql binary as a separate process (fork + exec, no shell) and
 * capture its output, make SQLite databases with known content, digest
 * and compare them, damage files.
 */
#ifndef TEST_SQL_UTIL_H
#define TEST_SQL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Run vdisql with the given arguments (NULL-terminated) and wait; its
 * stdout+stderr go to *out (malloc'd, NUL-terminated).  Returns its exit
 * status (128+signal if killed). */
int sql_vdisql(char **out, ...);
/* Start vdisql without waiting; output to out_path. */
pid_t sql_vdisql_spawn(const char *out_path, const char *const *args);
/* Start vdisql -b -S dir -Q restore_stmt with the commit hook
 * (TESTING.md): return once the restore has reached its commit (the file
 * mark exists), where it waits pause_ms before it goes on.  Output to
 * log. */
pid_t sql_spawn_held_restore(const char *dir, const char *restore_stmt,
                             const char *mark, int pause_ms, const char *log);
/* Run a statement with -b -S dir -Q stmt. */
/** Start `vdisql --serve -S dir` with @p extra arguments (NULL-terminated,
 * or NULL), output to @p log, and wait until it says it is ready; the test
 * fails if it does not.  Unless @p extra has its own --backup-dir, the
 * instance may use DISK backups anywhere in the test's directory. */
pid_t sql_serve(const char *dir, const char *log, const char *const *extra);
/** The same with exactly @p extra: the instance's own defaults. */
pid_t sql_serve_plain(const char *dir, const char *log,
                      const char *const *extra);
/** Stop an instance with SIGTERM; the test fails unless it exits 0 within
 * @p timeout_ms. */
void sql_serve_stop(pid_t p, int timeout_ms);
/** The same, showing the instance's log @p log when it did not stop. */
void sql_serve_stop_log(pid_t p, int timeout_ms, const char *log);
/** Whether the file at @p path holds @p what anywhere. */
int sql_file_has(const char *path, const char *what);
int sql_q(const char *dir, const char *stmt, char **out);

/* Create dir/name.db: table t(id INTEGER PRIMARY KEY, v TEXT, b BLOB) with
 * rows deterministic rows from seed, an index, page_size, WAL if wal. */
void sql_make_db(const char *path, int rows, int page_size, int wal,
                 unsigned seed);
/* CRC-32C over every row of t in id order, and the row count. */
uint32_t sql_digest(const char *path, long *rows);
/* 1 if PRAGMA integrity_check says ok. */
int sql_integrity_ok(const char *path);
/* Whole-file CRC-32C and size (-1 if missing). */
int64_t sql_file_crc(const char *path, uint32_t *crc);
/* Copy a file. */
void sql_copy(const char *from, const char *to);
/* XOR one byte of a file at offset (negative = from the end). */
void sql_flip(const char *path, int64_t off);
/* Size of a file, -1 if absent. */
int64_t sql_fsize(const char *path);
/* 1 if s contains "Msg <num>,". */
int sql_has_msg(const char *s, int num);
/* Read a whole file (malloc'd). */
char *sql_slurp(const char *path);

#endif
