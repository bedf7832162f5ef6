/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-crypt.c - encrypted backups with the real vdisql binary, as
 * SQL Server spells them: CREATE MASTER KEY, CREATE CERTIFICATE, BACKUP
 * ... WITH ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = c);
 * round trips (full striped and compressed, and full + differential + log
 * through an instance) restore identical rows and hold no plain page; a
 * second instance without the certificate refuses with Msg 33111 and
 * replaces nothing, and restores after CREATE CERTIFICATE FROM FILE (a
 * wrong private key password is Msg 15208); a modified byte anywhere is
 * refused and the database stays intact; the key files are 0600.
 */
#include "task.h"
#include "test-sql-util.h"

#include <dirent.h>
#include <string.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENC "WITH ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = bk)"

static void q_ok(const char *dir, const char *sql) {
  char *out;
  int rc = sql_q(dir, sql, &out);
  if (rc != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
}

static void q_msg(const char *dir, const char *sql, int num) {
  char *out;
  int rc = sql_q(dir, sql, &out);
  if (rc == 0 || !sql_has_msg(out, num))
    TASK_FAIL_("%s: expected Msg %d, got rc %d\n%s", sql, num, rc, out);
  free(out);
}

static void q_has(const char *dir, const char *sql, const char *what) {
  char *out;
  int rc = sql_q(dir, sql, &out);
  if (rc != 0 || !strstr(out, what))
    TASK_FAIL_("%s: expected '%s'\n%s", sql, what, out);
  free(out);
}

static void sub(char *out, const char *dir, const char *name) {
  snprintf(out, 4200, "%.3800s/%.300s", dir, name);
}

/* Whether a (binary) file holds the bytes of @p what. */
static int has_bytes(const char *path, const char *what) {
  int64_t n = sql_fsize(path);
  char *t = sql_slurp(path);
  int yes = t && n > 0 && memmem(t, (size_t)n, what, strlen(what)) != NULL;
  free(t);
  return yes;
}

static void mkinst(char *out, const char *name) {
  sub(out, test_tmpdir(), name);
  ASSERT_EQ(mkdir(out, 0755), 0);
}

static void keys(const char *inst) {
  q_ok(inst, "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'Mk#2026-pass'");
  q_ok(inst, "CREATE CERTIFICATE bk WITH SUBJECT = 'openvdi backups'");
}

/* Every file in DIR/.vdisql/keys is 0600, the directory 0700. */
static int store_private(const char *inst) {
  char d[4200], p[4600];
  struct stat st;
  sub(d, inst, ".vdisql/keys");
  if (stat(d, &st) != 0 || (st.st_mode & 0777) != 0700) return 0;
  DIR *dir = opendir(d);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%.4200s/%.255s", d, e->d_name);
    if (stat(p, &st) != 0 || (st.st_mode & 0777) != 0600) {
      closedir(dir);
      return 0;
    }
    n++;
  }
  closedir(dir);
  return n >= 4; /* service key, master key, a certificate and its key */
}

TEST_IMPL_TIMEOUT(sql_crypt_roundtrip, 60) {
  char a[4200], src[4200], dst[4200], p[4200], plain[4200];
  mkinst(a, "a");
  sub(src, a, "src.db");
  sub(dst, a, "dst.db");
  sql_make_db(src, 4000, 4096, 0, 7);
  keys(a);
  ASSERT(store_private(a));
  q_has(a,
        "SELECT name, subject, expiry_date, thumbprint FROM sys.certificates",
        "openvdi backups");
  q_ok(a, "BACKUP DATABASE src TO DISK='e0.bak', DISK='e1.bak', "
          "DISK='e2.bak' " ENC ", COMPRESSION");
  q_ok(a, "BACKUP DATABASE src TO DISK='plain.bak'");
  /* The plain backup holds the schema's text; the encrypted one none. */
  sub(plain, a, "plain.bak");
  ASSERT(has_bytes(plain, "CREATE TABLE t("));
  for (int i = 0; i < 3; i++) {
    char n[32];
    snprintf(n, sizeof n, "e%d.bak", i);
    sub(p, a, n);
    ASSERT(!has_bytes(p, "CREATE TABLE t("));
    ASSERT_GT(sql_fsize(p), 1024);
  }
  /* HEADERONLY: the encryptor, as SQL Server's columns show it. */
  char *out;
  ASSERT_EQ(sql_q(a,
                  "RESTORE HEADERONLY FROM DISK='e0.bak', DISK='e1.bak', "
                  "DISK='e2.bak'",
                  &out),
            0);
  ASSERT(strstr(out, "KeyAlgorithm") && strstr(out, "EncryptorThumbprint"));
  ASSERT(strstr(out, "aes_256") && strstr(out, "CERTIFICATE"));
  ASSERT(strstr(out, "\t0x") != NULL);
  free(out);
  q_has(a,
        "RESTORE VERIFYONLY FROM DISK='e2.bak', DISK='e0.bak', "
        "DISK='e1.bak'",
        "is valid");
  q_ok(a, "RESTORE DATABASE dst FROM DISK='e0.bak', DISK='e1.bak', "
          "DISK='e2.bak'");
  long r1, r2;
  ASSERT_UEQ(sql_digest(src, &r1), sql_digest(dst, &r2));
  ASSERT_EQ(r1, 4000);
  ASSERT(sql_integrity_ok(dst));
  /* msdb's history records the encryptor, as SQL Server's does. */
  q_has(a,
        "SELECT key_algorithm, encryptor_type FROM msdb.dbo.backupset "
        "WHERE encryptor_thumbprint LIKE '0x%'",
        "aes_256\tCERTIFICATE");
  /* The other algorithms of SQL Server's list that are AES. */
  q_ok(a, "BACKUP DATABASE src TO DISK='e128.bak' WITH ENCRYPTION "
          "(SERVER CERTIFICATE = bk, ALGORITHM = AES_128)");
  q_has(a, "RESTORE HEADERONLY FROM DISK='e128.bak'", "aes_128");
  q_ok(a, "RESTORE DATABASE dst FROM DISK='e128.bak' WITH REPLACE");
  ASSERT_UEQ(sql_digest(src, NULL), sql_digest(dst, NULL));
  return 0;
}

static void import_sql(char *out, size_t n, const char *cer, const char *pvk,
                       const char *pw) {
  snprintf(out, n,
           "CREATE CERTIFICATE bk FROM FILE = '%s' WITH PRIVATE KEY "
           "(FILE = '%s', DECRYPTION BY PASSWORD = '%s')",
           cer, pvk, pw);
}

TEST_IMPL_TIMEOUT(sql_crypt_other_instance, 60) {
  char a[4200], b[4200], src[4200], dst[4200], bak[4200], cer[4200], pvk[4200],
      sql[16000];
  struct stat st;
  mkinst(a, "a");
  mkinst(b, "b");
  sub(src, a, "src.db");
  sub(dst, b, "dst.db");
  sql_make_db(src, 3000, 4096, 0, 11);
  sql_make_db(dst, 500, 4096, 0, 12);
  keys(a);
  q_ok(a, "BACKUP DATABASE src TO DISK='x.bak' " ENC);
  sub(bak, a, "x.bak");
  sub(cer, test_tmpdir(), "bk.cer");
  sub(pvk, test_tmpdir(), "bk.pvk");
  snprintf(sql, sizeof sql,
           "BACKUP CERTIFICATE bk TO FILE = '%s' WITH PRIVATE KEY "
           "(FILE = '%s', ENCRYPTION BY PASSWORD = 'Export#pw1')",
           cer, pvk);
  q_ok(a, sql);
  ASSERT_EQ(stat(cer, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(stat(pvk, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  ASSERT(sql_file_has(pvk, "ENCRYPTED PRIVATE KEY"));
  q_msg(a, sql, 15240); /* the files exist */

  /* Instance b has no certificate: 33111, and dst stays as it was. */
  uint32_t c0, c1;
  int64_t sz = sql_file_crc(dst, &c0);
  snprintf(sql, sizeof sql, "RESTORE DATABASE dst FROM DISK='%s' WITH REPLACE",
           bak);
  char *out;
  ASSERT_EQ(sql_q(b, sql, &out), 1);
  ASSERT(sql_has_msg(out, 33111));
  ASSERT(sql_has_msg(out, 3013));
  ASSERT(strstr(out, "Cannot find server certificate with thumbprint '0x"));
  free(out);
  ASSERT_EQ(sql_file_crc(dst, &c1), sz);
  ASSERT_UEQ(c0, c1);
  char q2[4400];
  snprintf(q2, sizeof q2, "RESTORE VERIFYONLY FROM DISK='%s'", bak);
  q_msg(b, q2, 33111);
  snprintf(q2, sizeof q2, "RESTORE FILELISTONLY FROM DISK='%s'", bak);
  q_msg(b, q2, 33111);
  snprintf(q2, sizeof q2, "RESTORE HEADERONLY FROM DISK='%s'", bak);
  q_has(b, q2, "aes_256");

  /* The certificate moves with its private key. */
  char q3[16000];
  import_sql(q3, sizeof q3, cer, pvk, "Export#pw1");
  q_msg(b, q3, 15581); /* no master key yet */
  q_ok(b, "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'Other#inst-2'");
  q_msg(b, "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'again'", 15578);
  import_sql(q3, sizeof q3, cer, pvk, "wrong password");
  q_msg(b, q3, 15208);
  q_msg(b, sql, 33111);
  import_sql(q3, sizeof q3, cer, pvk, "Export#pw1");
  q_ok(b, q3);
  q_msg(b, q3, 15232); /* already there */
  ASSERT(store_private(b));
  q_ok(b, sql);
  long r1, r2;
  ASSERT_UEQ(sql_digest(src, &r1), sql_digest(dst, &r2));
  ASSERT_EQ(r1, 3000);
  /* Without it again: refused again. */
  q_ok(b, "DROP CERTIFICATE bk");
  q_msg(b, "DROP CERTIFICATE bk", 15151);
  q_msg(b, sql, 33111);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_crypt_tampered, 60) {
  char a[4200], src[4200], dst[4200], bak[4200], bad[4200];
  mkinst(a, "a");
  sub(src, a, "src.db");
  sub(dst, a, "dst.db");
  sub(bak, a, "t.bak");
  sub(bad, a, "bad.bak");
  sql_make_db(src, 3000, 4096, 0, 5);
  sql_make_db(dst, 200, 4096, 0, 6);
  keys(a);
  q_ok(a, "BACKUP DATABASE src TO DISK='t.bak' " ENC);
  uint32_t c0, c1;
  int64_t sz = sql_file_crc(dst, &c0);
  const int64_t n = sql_fsize(bak);
  /* Header, key record, first frame, middle, the last frame's tag, the
   * very last byte. */
  const int64_t offs[] = {100, 1024 + 20, 1024 + 400, n / 2, n - 20, -1};
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    sql_copy(bak, bad);
    sql_flip(bad, offs[i]);
    char *out;
    int rc = sql_q(a, "RESTORE VERIFYONLY FROM DISK='bad.bak'", &out);
    if (rc == 0)
      TASK_FAIL_("offset %lld accepted\n%s", (long long)offs[i], out);
    ASSERT(sql_has_msg(out, 3013));
    free(out);
    rc =
        sql_q(a, "RESTORE DATABASE dst FROM DISK='bad.bak' WITH REPLACE", &out);
    if (rc == 0)
      TASK_FAIL_("offset %lld restored\n%s", (long long)offs[i], out);
    ASSERT(sql_has_msg(out, 3189) || sql_has_msg(out, 3241));
    free(out);
    ASSERT_EQ(sql_file_crc(dst, &c1), sz);
    ASSERT_UEQ(c0, c1);
  }
  /* Cut short: the final frame is missing. */
  ASSERT_EQ(truncate(bad, n - 100), 0);
  q_msg(a, "RESTORE DATABASE dst FROM DISK='bad.bak' WITH REPLACE", 3189);
  ASSERT_EQ(sql_file_crc(dst, &c1), sz);
  ASSERT_UEQ(c0, c1);
  q_ok(a, "RESTORE DATABASE dst FROM DISK='t.bak' WITH REPLACE");
  ASSERT_UEQ(sql_digest(src, NULL), sql_digest(dst, NULL));
  return 0;
}

TEST_IMPL_TIMEOUT(sql_crypt_refusals, 60) {
  char a[4200], src[4200], p[4200];
  mkinst(a, "a");
  sub(src, a, "src.db");
  sql_make_db(src, 100, 4096, 0, 1);
  q_msg(a, "CREATE CERTIFICATE bk WITH SUBJECT = 'x'", 15581);
  q_msg(a, "DROP MASTER KEY", 15581);
  q_msg(a, "BACKUP DATABASE src TO DISK='n.bak' " ENC, 15151);
  sub(p, a, "n.bak");
  ASSERT_EQ(sql_fsize(p), -1); /* nothing written */
  keys(a);
  q_msg(a, "CREATE CERTIFICATE bk WITH SUBJECT = 'again'", 15232);
  q_msg(a,
        "BACKUP DATABASE src TO DISK='n.bak' WITH ENCRYPTION "
        "(ALGORITHM = AES_256, SERVER CERTIFICATE = nosuch)",
        15151);
  q_msg(a,
        "BACKUP DATABASE src TO DISK='n.bak' WITH ENCRYPTION "
        "(ALGORITHM = TRIPLE_DES_3KEY, SERVER CERTIFICATE = bk)",
        3032);
  q_msg(a,
        "BACKUP DATABASE src TO DISK='n.bak' WITH ENCRYPTION "
        "(ALGORITHM = ROT13, SERVER CERTIFICATE = bk)",
        102);
  q_msg(a,
        "BACKUP DATABASE src TO DISK='n.bak' WITH ENCRYPTION "
        "(ALGORITHM = AES_256)",
        102);
  q_msg(a, "RESTORE DATABASE src FROM DISK='n.bak' " ENC, 155);
  q_msg(a, "CREATE CERTIFICATE c2 WITH SUBJECT = 'x', EXPIRY_DATE = 'soon'",
        241);
  q_ok(a, "CREATE CERTIFICATE c2 WITH SUBJECT = 'two', START_DATE = "
          "'2026-01-01', EXPIRY_DATE = '20361231'");
  q_has(a, "SELECT expiry_date FROM sys.certificates WHERE name = 'c2'",
        "2036-12-31");
  /* The dates are UTC whatever the instance's zone (here 9 hours east),
   * as SQL Server reads them, in its compact form with a time too. */
  setenv("TZ", "JST-9", 1);
  q_ok(a, "CREATE CERTIFICATE c3 WITH SUBJECT = 'three', START_DATE = "
          "'20300101 10:30', EXPIRY_DATE = '2031-01-02 08:00:05'");
  q_has(a, "SELECT start_date FROM sys.certificates WHERE name = 'c3'",
        "2030-01-01 10:30:00");
  q_has(a, "SELECT expiry_date FROM sys.certificates WHERE name = 'c3'",
        "2031-01-02 08:00:05");
  q_ok(a, "DROP CERTIFICATE c3");
  unsetenv("TZ");
  q_msg(a, "DROP CERTIFICATE nosuch", 15151);
  q_msg(a, "BACKUP CERTIFICATE nosuch TO FILE = 'n.cer'", 15151);
  /* The instance's own files are no certificate target. */
  q_msg(a, "BACKUP CERTIFICATE bk TO FILE = 'src.db'", 3201);
  q_ok(a, "BACKUP CERTIFICATE bk TO FILE = 'pub.cer'");
  ASSERT(sql_fsize(p) == -1);
  /* A certificate without its private key could not restore: refused. */
  sub(p, a, "pub.cer");
  char sql[4400];
  snprintf(sql, sizeof sql, "CREATE CERTIFICATE pubonly FROM FILE = '%s'", p);
  q_msg(a, sql, 15208);
  /* The master key goes only after every certificate it encrypts. */
  q_msg(a, "DROP MASTER KEY", 15580);
  q_ok(a, "DROP CERTIFICATE bk");
  q_msg(a, "DROP MASTER KEY", 15580);
  q_ok(a, "DROP CERTIFICATE c2");
  q_ok(a, "DROP MASTER KEY");
  q_msg(a, "CREATE CERTIFICATE c3 WITH SUBJECT = 'x'", 15581);
  q_ok(a, "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'New#key-2'");
  q_ok(a, "CREATE CERTIFICATE c3 WITH SUBJECT = 'x'");
  return 0;
}

/* Rows 1..n of t in @p path (WAL, as a FULL database of an instance). */
static void add_rows(const char *path, int from, int to) {
  sqlite3 *db;
  char sql[200];
  ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  for (int n = from; n <= to; n++) {
    snprintf(sql, sizeof sql,
             "INSERT INTO t(id, v, b) VALUES (%d, 'row %d', "
             "randomblob(1200))",
             100000 + n, n);
    ASSERT_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  }
  sqlite3_close(db);
}

TEST_IMPL_TIMEOUT(sql_crypt_full_diff_log, 90) {
  char a[4200], src[4200], dst[4200], log[4200];
  mkinst(a, "a");
  sub(src, a, "src.db");
  sub(dst, a, "dst.db");
  sub(log, test_tmpdir(), "instance.log");
  sql_make_db(src, 500, 4096, 1, 21);
  pid_t srv = sql_serve(a, log, NULL);
  keys(a);
  q_ok(a, "ALTER DATABASE src SET RECOVERY FULL");
  q_ok(a, "BACKUP DATABASE src TO DISK='f.bak' " ENC);
  add_rows(src, 1, 40);
  q_ok(a, "BACKUP DATABASE src TO DISK='d.bak' WITH DIFFERENTIAL, "
          "ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = bk)");
  add_rows(src, 41, 80);
  q_ok(a, "BACKUP LOG src TO DISK='l.bak' " ENC);
  q_has(a, "RESTORE HEADERONLY FROM DISK='d.bak'", "aes_256");
  q_has(a, "RESTORE HEADERONLY FROM DISK='l.bak'", "Transaction Log");
  q_ok(a, "RESTORE DATABASE dst FROM DISK='f.bak' WITH NORECOVERY");
  q_ok(a, "RESTORE DATABASE dst FROM DISK='d.bak' WITH NORECOVERY");
  q_ok(a, "RESTORE LOG dst FROM DISK='l.bak' WITH RECOVERY");
  long r1, r2;
  ASSERT_UEQ(sql_digest(src, &r1), sql_digest(dst, &r2));
  ASSERT_EQ(r1, 580);
  /* Without the certificate each of them is refused; dst stays. */
  q_ok(a, "DROP CERTIFICATE bk");
  q_msg(a, "RESTORE DATABASE dst FROM DISK='f.bak' WITH NORECOVERY, REPLACE",
        33111);
  q_msg(a, "RESTORE VERIFYONLY FROM DISK='d.bak'", 33111);
  q_msg(a, "RESTORE VERIFYONLY FROM DISK='l.bak'", 33111);
  ASSERT_UEQ(sql_digest(src, NULL), sql_digest(dst, &r2));
  ASSERT_EQ(r2, 580);
  sql_serve_stop(srv, 10000);
  /* The instance logs its sessions' statements, never a password. */
  ASSERT(sql_file_has(log, "CREATE MASTER KEY ENCRYPTION BY ..."));
  ASSERT(!sql_file_has(log, "Mk#2026-pass"));
  return 0;
}
