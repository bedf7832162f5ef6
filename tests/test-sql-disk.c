/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-disk.c - BACKUP TO DISK / RESTORE FROM DISK with the real
 * vdisql binary: round trips over database sizes, page sizes, stripe
 * counts and compression (restored content equal row by row and file
 * equal byte by byte); RESTORE without REPLACE refuses; a flipped byte in
 * any stripe makes VERIFYONLY and RESTORE fail and leaves the existing
 * database intact; missing stripes; NOINIT; no partial files.
 */
#include "task.h"
#include "test-sql-util.h"

#include <dirent.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static void path(char *out, const char *name) {
  snprintf(out, 4200, "%s/%s", test_tmpdir(), name);
}

/* "DISK='p0', DISK='p1', ..." for stripes named tag0.bak ... */
static void disks(char *out, size_t n, const char *tag, int stripes) {
  out[0] = 0;
  for (int i = 0; i < stripes; i++)
    snprintf(out + strlen(out), n - strlen(out), "%sDISK='%s%d.bak'",
             i ? ", " : "", tag, i);
}

static void roundtrip(int rows, int page_size, int stripes, int compress,
                      int wal) {
  const char *d = test_tmpdir();
  char src[4200], dst[4200], devs[2048], sql[4096], *out;
  path(src, "src.db");
  path(dst, "dst.db");
  sql_make_db(src, rows, page_size, wal, (unsigned)rows);
  disks(devs, sizeof devs, "rt", stripes);
  snprintf(sql, sizeof sql, "BACKUP DATABASE src TO %s WITH INIT%s", devs,
           compress ? ", COMPRESSION" : "");
  int rc = sql_q(d, sql, &out);
  if (rc != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
  snprintf(sql, sizeof sql, "RESTORE VERIFYONLY FROM %s", devs);
  rc = sql_q(d, sql, &out);
  if (rc != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
  snprintf(sql, sizeof sql, "RESTORE DATABASE dst FROM %s WITH REPLACE", devs);
  rc = sql_q(d, sql, &out);
  if (rc != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
  long r1, r2;
  ASSERT_EQ(sql_digest(src, &r1), sql_digest(dst, &r2));
  ASSERT_EQ(r1, rows);
  ASSERT_EQ(r2, rows);
  ASSERT(sql_integrity_ok(dst));
  /* The source was closed cleanly: the files are identical. */
  uint32_t c1, c2;
  ASSERT_EQ(sql_file_crc(src, &c1), sql_file_crc(dst, &c2));
  ASSERT_UEQ(c1, c2);
}

TEST_IMPL_TIMEOUT(sql_disk_roundtrip_shapes, 30) {
  roundtrip(0, 512, 1, 0, 0);
  roundtrip(1, 1024, 2, 1, 0);
  roundtrip(3000, 1024, 3, 0, 0);
  roundtrip(3000, 4096, 4, 1, 0);
  roundtrip(2000, 65536, 2, 0, 0);
  roundtrip(20000, 8192, 5, 1, 0);
  roundtrip(5000, 4096, 1, 0, 1);
  roundtrip(300, 2048, 8, 0, 0); /* more stripes than blocks */
  return 0;
}

TEST_IMPL(sql_disk_compression_shrinks) {
  const char *d = test_tmpdir();
  char src[4200], a[4200], b[4200];
  path(src, "src.db");
  sql_make_db(src, 5000, 4096, 0, 3);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE src TO DISK='plain.bak'", NULL), 0);
  ASSERT_EQ(
      sql_q(d, "BACKUP DATABASE src TO DISK='z.bak' WITH COMPRESSION", NULL),
      0);
  path(a, "plain.bak");
  path(b, "z.bak");
  ASSERT_GT(sql_fsize(a), sql_fsize(src));
  ASSERT_LT(sql_fsize(b), sql_fsize(src) * 3 / 4);
  return 0;
}

/* Total bytes of the stripes tag0.bak .. tag<n-1>.bak. */
static int64_t stripes_size(const char *tag, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; i++) {
    char p[4200], name[64];
    snprintf(name, sizeof name, "%s%d.bak", tag, i);
    path(p, name);
    sum += sql_fsize(p);
  }
  return sum;
}

/* Back up src compressed with @p with over 3 stripes named @p tag, restore
 * it as dst and check its rows against @p digest; the stripes' size. */
static int64_t compressed_roundtrip(const char *tag, const char *with,
                                    uint32_t digest) {
  const char *d = test_tmpdir();
  char devs[2048], sql[4096], dst[4200], *out;
  disks(devs, sizeof devs, tag, 3);
  snprintf(sql, sizeof sql, "BACKUP DATABASE src TO %s WITH INIT, %s", devs,
           with);
  if (sql_q(d, sql, &out) != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
  snprintf(sql, sizeof sql, "RESTORE DATABASE dst FROM %s WITH REPLACE", devs);
  if (sql_q(d, sql, &out) != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
  path(dst, "dst.db");
  long rows;
  if (sql_digest(dst, &rows) != digest) TASK_FAIL_("%s: rows differ", with);
  if (!sql_integrity_ok(dst)) TASK_FAIL_("%s: integrity_check", with);
  return stripes_size(tag, 3);
}

/* SQL Server 2025's COMPRESSION (ALGORITHM = ZSTD, LEVEL = ...): each level
 * restores the same rows and reaches the compressor; the blocks
 * compressed on worker threads (more than one CPU) and on the statement's
 * thread (one CPU) are the same blocks. */
TEST_IMPL_TIMEOUT(sql_disk_compression_levels_and_threads, 60) {
  char src[4200];
  path(src, "src.db");
  sql_make_db(src, 20000, 4096, 0, 7);
  long rows;
  uint32_t digest = sql_digest(src, &rows);
  int64_t low = compressed_roundtrip(
      "lo", "COMPRESSION (ALGORITHM = ZSTD, LEVEL = LOW)", digest);
  int64_t med = compressed_roundtrip(
      "me", "COMPRESSION (LEVEL = MEDIUM, ALGORITHM = ZSTD)", digest);
  int64_t high = compressed_roundtrip(
      "hi", "COMPRESSION (ALGORITHM = ZSTD, LEVEL = HIGH)", digest);
  int64_t dflt = compressed_roundtrip("df", "COMPRESSION", digest);
  ASSERT_LT(low, sql_fsize(src));
  ASSERT_LT(med, sql_fsize(src));
  ASSERT_LT(high, sql_fsize(src));
  /* The level reaches the compressor (zstd promises no order of sizes
   * between levels, only that they differ in effort). */
  ASSERT(low != med || med != high);
  ASSERT_EQ(dflt, low); /* LEVEL = LOW is the default, as in SQL Server */
  /* The same backup with this process (and so vdisql) on one CPU: no
   * workers, the same stream. */
  cpu_set_t all, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  if (CPU_COUNT(&all) < 2) return 0; /* the rows above were the one-CPU run */
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all)) {
      CPU_SET(c, &one);
      break;
    }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  int64_t single = compressed_roundtrip("one", "COMPRESSION", digest);
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  ASSERT_EQ(single, low);
  return 0;
}

TEST_IMPL(sql_disk_restore_needs_replace) {
  const char *d = test_tmpdir();
  char a[4200], b[4200], *out;
  path(a, "one.db");
  path(b, "two.db");
  sql_make_db(a, 500, 4096, 0, 1);
  sql_make_db(b, 800, 4096, 0, 2);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE one TO DISK='one.bak'", NULL), 0);
  uint32_t before, after;
  int64_t sz = sql_file_crc(b, &before);
  int rc = sql_q(d, "RESTORE DATABASE two FROM DISK='one.bak'", &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 1834));
  ASSERT(sql_has_msg(out, 3013));
  ASSERT(strstr(out, "RESTORE DATABASE is terminating abnormally.") != NULL);
  free(out);
  ASSERT_EQ(sql_file_crc(b, &after), sz);
  ASSERT_UEQ(before, after);
  long rows;
  sql_digest(b, &rows);
  ASSERT_EQ(rows, 800);
  rc = sql_q(d, "RESTORE DATABASE two FROM DISK='one.bak' WITH REPLACE", &out);
  ASSERT_EQ(rc, 0);
  free(out);
  ASSERT_EQ(sql_digest(a, NULL), sql_digest(b, &rows));
  ASSERT_EQ(rows, 500);
  /* No temporary file is left in the instance directory. */
  DIR *dir = opendir(d);
  struct dirent *e;
  while ((e = readdir(dir)) != NULL)
    ASSERT(strstr(e->d_name, "restore-") == NULL);
  closedir(dir);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_disk_flipped_byte_any_stripe, 40) {
  const char *d = test_tmpdir();
  char src[4200], keep[4200], f[4200], g[4200], *out;
  path(src, "src.db");
  path(keep, "keep.db");
  sql_make_db(src, 4000, 1024, 0, 5);
  sql_make_db(keep, 100, 4096, 0, 6);
  uint32_t kc0, kc1;
  int64_t ks = sql_file_crc(keep, &kc0);
  for (int comp = 0; comp <= 1; comp++) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "BACKUP DATABASE src TO DISK='f0.bak', DISK='f1.bak', "
             "DISK='f2.bak' WITH INIT%s",
             comp ? ", COMPRESSION" : "");
    ASSERT_EQ(sql_q(d, sql, NULL), 0);
    for (int s = 0; s < 3; s++) {
      char name[32];
      snprintf(name, sizeof name, "f%d.bak", s);
      path(f, name);
      path(g, "orig.bak");
      sql_copy(f, g);
      int64_t size = sql_fsize(f);
      /* header, first block header, middle, payload end, trailer, CRC */
      int64_t offs[] = {3, 100, 1020, 1030, size / 2, size - 70, size - 30, -1};
      for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        sql_copy(g, f);
        sql_flip(f, offs[k]);
        int rc = sql_q(d,
                       "RESTORE VERIFYONLY FROM DISK='f0.bak', DISK='f1.bak', "
                       "DISK='f2.bak'",
                       &out);
        if (rc != 1 || !(sql_has_msg(out, 3189) || sql_has_msg(out, 3241)))
          TASK_FAIL_("verify, stripe %d offset %lld: rc %d\n%s", s,
                     (long long)offs[k], rc, out);
        free(out);
        rc = sql_q(d,
                   "RESTORE DATABASE keep FROM DISK='f2.bak', DISK='f0.bak', "
                   "DISK='f1.bak' WITH REPLACE",
                   &out);
        if (rc != 1 || !(sql_has_msg(out, 3189) || sql_has_msg(out, 3241)))
          TASK_FAIL_("restore, stripe %d offset %lld: rc %d\n%s", s,
                     (long long)offs[k], rc, out);
        free(out);
        ASSERT_EQ(sql_file_crc(keep, &kc1), ks);
        ASSERT_UEQ(kc0, kc1);
      }
      sql_copy(g, f);
    }
  }
  /* Undamaged, in any order, it restores. */
  ASSERT_EQ(sql_q(d,
                  "RESTORE DATABASE keep FROM DISK='f1.bak', DISK='f2.bak', "
                  "DISK='f0.bak' WITH REPLACE",
                  NULL),
            0);
  ASSERT_EQ(sql_digest(keep, NULL), sql_digest(src, NULL));
  return 0;
}

TEST_IMPL(sql_disk_truncated_or_missing_stripe) {
  const char *d = test_tmpdir();
  char src[4200], f[4200], *out;
  path(src, "src.db");
  sql_make_db(src, 2000, 4096, 0, 7);
  ASSERT_EQ(sql_q(d,
                  "BACKUP DATABASE src TO DISK='m0.bak', DISK='m1.bak', "
                  "DISK='m2.bak'",
                  NULL),
            0);
  int rc =
      sql_q(d, "RESTORE VERIFYONLY FROM DISK='m0.bak', DISK='m1.bak'", &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 3132));
  free(out);
  rc = sql_q(d,
             "RESTORE VERIFYONLY FROM DISK='m0.bak', DISK='m1.bak', "
             "DISK='m1.bak'",
             &out);
  ASSERT_EQ(rc, 1);
  free(out);
  /* A stripe of another backup set. */
  ASSERT_EQ(sql_q(d,
                  "BACKUP DATABASE src TO DISK='o0.bak', DISK='o1.bak', "
                  "DISK='o2.bak'",
                  NULL),
            0);
  rc = sql_q(d,
             "RESTORE VERIFYONLY FROM DISK='m0.bak', DISK='o1.bak', "
             "DISK='m2.bak'",
             &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 3241));
  free(out);
  /* Truncated. */
  path(f, "m1.bak");
  ASSERT_EQ(truncate(f, sql_fsize(f) - 10), 0);
  rc = sql_q(d,
             "RESTORE VERIFYONLY FROM DISK='m0.bak', DISK='m1.bak', "
             "DISK='m2.bak'",
             &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 3189));
  free(out);
  /* Extra bytes after the trailer. */
  path(f, "m2.bak");
  FILE *fp = fopen(f, "ab");
  fputs("junk", fp);
  fclose(fp);
  rc = sql_q(d,
             "RESTORE VERIFYONLY FROM DISK='o0.bak', DISK='o1.bak', "
             "DISK='o2.bak'",
             NULL);
  ASSERT_EQ(rc, 0);
  rc = sql_q(d,
             "RESTORE VERIFYONLY FROM DISK='m0.bak', DISK='m2.bak', "
             "DISK='o1.bak'",
             &out);
  ASSERT_EQ(rc, 1);
  free(out);
  /* Not a backup at all. */
  rc = sql_q(d, "RESTORE HEADERONLY FROM DISK='src.db'", &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 3241));
  free(out);
  return 0;
}

TEST_IMPL(sql_disk_noinit_and_no_partial_files) {
  const char *d = test_tmpdir();
  char src[4200], f[4200], *out;
  path(src, "src.db");
  sql_make_db(src, 500, 4096, 0, 8);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE src TO DISK='n.bak'", NULL), 0);
  path(f, "n.bak");
  uint32_t c0, c1;
  int64_t s0 = sql_file_crc(f, &c0);
  int rc = sql_q(d, "BACKUP DATABASE src TO DISK='n.bak' WITH NOINIT", &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 3032));
  ASSERT(strstr(out, "INIT") != NULL);
  free(out);
  ASSERT_EQ(sql_file_crc(f, &c1), s0);
  ASSERT_UEQ(c0, c1);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE src TO DISK='n.bak' WITH INIT", NULL), 0);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE src TO DISK='n.bak' WITH FORMAT", NULL),
            0);
  /* A statement that fails leaves no file behind, complete or partial. */
  rc = sql_q(d, "BACKUP DATABASE src TO DISK='p0.bak', DISK='nodir/p1.bak'",
             &out);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 3201));
  free(out);
  DIR *dir = opendir(d);
  struct dirent *e;
  while ((e = readdir(dir)) != NULL)
    if (strncmp(e->d_name, "p0", 2) == 0) TASK_FAIL_("left %s", e->d_name);
  closedir(dir);
  return 0;
}

/* RESTORE ... REPLACE onto a database another process is reading is
 * refused (Msg 3101) and the database is left as it was. */
TEST_IMPL(sql_disk_replace_in_use_refused) {
  const char *d = test_tmpdir();
  char a[4200], b[4200], *out;
  path(a, "one.db");
  path(b, "busy.db");
  sql_make_db(a, 300, 4096, 0, 1);
  sql_make_db(b, 200, 4096, 0, 2);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE one TO DISK='one.bak'", NULL), 0);
  sqlite3 *db;
  ASSERT_EQ(sqlite3_open(b, &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "BEGIN; SELECT count(*) FROM t;", NULL, NULL, NULL),
      SQLITE_OK);
  int rc =
      sql_q(d, "RESTORE DATABASE busy FROM DISK='one.bak' WITH REPLACE", &out);
  ASSERT_EQ(rc, 1);
  if (!sql_has_msg(out, 3101)) TASK_FAIL_("%s", out);
  free(out);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  long rows;
  sql_digest(b, &rows);
  ASSERT_EQ(rows, 200);
  ASSERT_EQ(
      sql_q(d, "RESTORE DATABASE busy FROM DISK='one.bak' WITH REPLACE", NULL),
      0);
  sql_digest(b, &rows);
  ASSERT_EQ(rows, 300);
  return 0;
}

/* RESTORE ... WITH MOVE as SQL Server's clients send it: the logical names
 * from FILELISTONLY, the files in the instance directory (with .mdf and
 * .ldf, as they name them); a logical name that is not the backup's, a
 * data file elsewhere or under another database's name, and a directory
 * that does not exist are refused, and nothing is created. */
TEST_IMPL(sql_disk_restore_move) {
  const char *d = test_tmpdir();
  char src[4200], p[4400], sql[9000], *out = NULL;
  long ra, rb;
  path(src, "app.db");
  sql_make_db(src, 500, 4096, 1, 5);
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE app TO DISK='m.bak'", &out), 0);
  free(out);
  ASSERT_EQ(sql_q(d, "RESTORE FILELISTONLY FROM DISK='m.bak'", &out), 0);
  ASSERT(strstr(out, "app\t"));
  free(out);
  snprintf(sql, sizeof sql,
           "RESTORE DATABASE copy FROM DISK='m.bak' WITH MOVE 'app' TO "
           "'%s/copy.mdf', MOVE N'app_log' TO '%s/copy_log.ldf'",
           d, d);
  if (sql_q(d, sql, &out) != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
  path(p, "copy.db");
  ASSERT_UEQ(sql_digest(p, &rb), sql_digest(src, &ra));
  ASSERT_EQ(rb, 500);
  /* Relative to the instance, and VERIFYONLY checks the names too. */
  ASSERT_EQ(sql_q(d,
                  "RESTORE VERIFYONLY FROM DISK='m.bak' WITH MOVE 'app' TO "
                  "'app.mdf'",
                  &out),
            0);
  free(out);
  struct {
    const char *move;
    int msg;
  } bad[] = {
      {"MOVE 'nosuch' TO 'c2.mdf'", 3234},
      {"MOVE 'app' TO '/tmp/c2.mdf'", 3156},
      {"MOVE 'app' TO 'other.mdf'", 3156},
      {"MOVE 'app_log' TO '/tmp/c2_log.ldf'", 3156},
      {"MOVE 'app' TO '/nonexistent/dir/c2.mdf'", 5133},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(sql, sizeof sql, "RESTORE DATABASE c2 FROM DISK='m.bak' WITH %s",
             bad[i].move);
    ASSERT_EQ(sql_q(d, sql, &out), 1);
    if (!sql_has_msg(out, bad[i].msg))
      TASK_FAIL_("%s: wanted Msg %d:\n%s", sql, bad[i].msg, out);
    free(out);
  }
  path(p, "c2.db");
  ASSERT_NE(access(p, F_OK), 0);
  /* MOVE is a RESTORE option, not a BACKUP one. */
  ASSERT_EQ(sql_q(d, "BACKUP DATABASE app TO DISK='n.bak' WITH MOVE 'a' TO 'b'",
                  &out),
            1);
  ASSERT(sql_has_msg(out, 155));
  free(out);
  return 0;
}
