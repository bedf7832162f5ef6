/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-util.h - helpers of the `vdi` end-to-end tests (test-app-*.c
 * and the test-rel-*.c files that run the programs): run the real vdi
 * binary as a separate process, make and digest SQLite databases, find the
 * vdisql child of a running vdi, look at backup directories.
 */
#ifndef TEST_APP_UTIL_H
#define TEST_APP_UTIL_H

#include <stddef.h>
#include <sys/types.h>

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})

/* Start vdi with args; stdout+stderr to out_path (inherited if NULL);
 * stdin from in_path (or /dev/null); stdout alone to stdout_path when
 * given; env "K=V" strings added (NULL ends). */
pid_t app_t_spawn(const char *out_path, const char *stdout_path,
                  const char *in_path, const char *const *env,
                  const char *const *args);
/* The same for another program (a path). */
pid_t app_t_spawn_prog(const char *prog, const char *out_path,
                       const char *stdout_path, const char *in_path,
                       const char *const *env, const char *const *args);
/* Run vdi and wait: its output in *out (malloc'd); its exit status. */
int app_t_run(char **out, const char *const *env, const char *const *args);
/* Run vdi and fail the test (showing its output) unless it exits 0. */
void app_t_run_ok(const char *what, const char *const *env,
                  const char *const *args);
/* Run vdi and fail the test (showing its output) unless it exits 0 and
 * its output holds @p want. */
void app_t_run_has(const char *want, const char *const *env,
                   const char *const *args);
void app_t_show(const char *what, const char *out);
/* `vdi keygen --public KEYFILE`: the public key's 64 hex digits into hex
 * (65 bytes), and into file pubfile when not NULL. */
void app_t_public_key(const char *keyfile, const char *pubfile, char *hex);
/* `vdi verify` then `vdi restore --as AS` of database DB from FROM into
 * instance INST (with --key-file KEY unless NULL); the copy must have DB's
 * digest. */
void app_t_verify_restore(const char *inst, const char *db, const char *from,
                          const char *key, const char *as);
/* A file's text (the first MiB; "" if it cannot be read), malloc'd. */
char *app_t_slurp(const char *path);
void app_t_make_db(const char *dir, const char *name, int rows, int page_size,
                   int seed);
void app_t_digest(const char *path, char *out, size_t n);
int app_t_integrity_ok(const char *path);
int app_t_exists(const char *dir, const char *name);
int app_t_count_files(const char *dir, const char *prefix, int *with_prefix);
/* No manifest of @p db in @p dir and no stripe under its final name
 * (temporary dot-files may remain). */
void app_t_assert_no_backup(const char *dir, const char *db);
pid_t app_t_find_child(pid_t parent, const char *comm);
/* Sets of db in a repository; the directory of set `which` (0 oldest,
 * -1 newest) in out. */
int app_t_set_dir(const char *repo, const char *db, int which, char *out,
                  size_t n);
int app_t_wait_bytes(const char *dir, long long min_bytes, int timeout_ms);
int app_t_engine_ready(void);
/* A growing buffer that collects bytes: the target of a write callback
 * (t_sink_write's arg). */
struct t_sink {
  unsigned char *p;
  size_t n, cap;
};
int t_sink_write(void *arg, const void *buf, size_t n);
/* Ends the test as skipped (exit TEST_SKIP) unless vdi and vdisql are
 * built: for a test's setup. */
void app_t_require_engine(void);
void app_t_flip_byte(const char *path, long off);
/* k rows more in table t of inst/db.db (sql_make_db's shape), and how
 * many rows inst/db.db has (-1: no such file). */
void app_t_add_rows(const char *inst, const char *db, int k);
long app_t_rows(const char *inst, const char *db);
long long app_t_file_size(const char *path);
/* Database app (made in the instance inst, served, RECOVERY FULL) backed
 * up into repo (a directory or s3://) as a chain sealed to the public key
 * of key file keyf (--recipient): full, log, differential, full, log.
 * Then, each with no error line: list without the key and with it (the
 * chains), restore --latest and --set of the differential (the rows of
 * each, digested, as backed up), expire --keep-full 1 without the key or
 * with another (what it cannot place kept, said once) and with it
 * (--delete: the first chain, 3 of 5 sets), and --latest again. */
void app_t_recipient_chain(const char *inst, const char *repo,
                           const char *keyf);

#endif
