/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-parse.c - vdisql's statement language and command line: valid
 * statements with every WITH option, case, comments, quoting, GO batches;
 * malformed statements, unknown and unsupported options, out-of-range
 * values -> Msg errors and exit status 1 under -b.  Each test runs the
 * real vdisql binary as a separate process.
 */
#include "task.h"
#include "test-sql-util.h"

#include <stdlib.h>
#include <unistd.h>

static char dbpath[4200];

static const char *inst(void) {
  snprintf(dbpath, sizeof dbpath, "%s/sales.db", test_tmpdir());
  if (sql_fsize(dbpath) < 0) sql_make_db(dbpath, 300, 4096, 0, 1);
  return test_tmpdir();
}

TEST_IMPL(sql_parse_every_backup_option) {
  const char *d = inst();
  char *out;
  int rc = sql_q(d,
                 "BACKUP DATABASE sales TO DISK = 'a.bak' WITH FORMAT, INIT, "
                 "CHECKSUM, COPY_ONLY, COMPRESSION, BLOCKSIZE = 4096, "
                 "BUFFERCOUNT = 6, MAXTRANSFERSIZE = 131072, STATS = 50, "
                 "DESCRIPTION = 'nightly', NAME = 'sales-full', NOFORMAT",
                 &out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "50 percent processed.") != NULL);
  ASSERT(strstr(out, "100 percent processed.") != NULL);
  ASSERT(strstr(out, "Processed ") && strstr(out, "for database 'sales'"));
  ASSERT(strstr(out, "BACKUP DATABASE successfully processed ") != NULL);
  free(out);
  rc = sql_q(d,
             "backup database sales to disk='b.bak' with no_checksum, "
             "no_compression, stats, noinit",
             &out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "10 percent processed.") != NULL);
  free(out);
  rc = sql_q(d, "RESTORE HEADERONLY FROM DISK='a.bak'", &out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "BackupName\tBackupDescription") != NULL);
  ASSERT(strstr(out, "sales-full\tnightly\t1\t1\t") != NULL); /* compressed */
  ASSERT(strstr(out, "(1 rows affected)") != NULL);
  free(out);
  rc = sql_q(d, "RESTORE FILELISTONLY FROM DISK='b.bak' WITH FILE = 1", &out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "LogicalName\tPhysicalName") != NULL);
  ASSERT(strstr(out, "sales\t") != NULL);
  free(out);
  rc = sql_q(d,
             "RESTORE DATABASE sales FROM DISK='a.bak' WITH REPLACE, "
             "CHECKSUM, RECOVERY, STATS=25, BLOCKSIZE=512, BUFFERCOUNT=2, "
             "MAXTRANSFERSIZE=65536, FILE=1",
             &out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "RESTORE DATABASE successfully processed ") != NULL);
  ASSERT(strstr(out, "75 percent processed.") != NULL);
  free(out);
  rc = sql_q(d, "RESTORE VERIFYONLY FROM DISK='b.bak' WITH CHECKSUM", &out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "The backup set on file 1 is valid.") != NULL);
  free(out);
  return 0;
}

TEST_IMPL(sql_parse_quoting_comments_batches) {
  const char *d = inst();
  char script[4200], *out;
  snprintf(script, sizeof script, "%s/s.sql", test_tmpdir());
  FILE *f = fopen(script, "w");
  fprintf(f, "-- a comment line\n"
             "/* a block\n comment */ bAcKuP DaTaBaSe [sales] TO\n"
             "  DISK = N'x.bak' -- trailing comment\n"
             "  WITH INIT;\n"
             "BACKUP DATABASE \"sales\" TO DISK='y.bak'  WITH INIT\n"
             "go\n"
             "RESTORE DATABASE 'copy' FROM DISK='x.bak'\n"
             "  GO  \n"
             "RESTORE VERIFYONLY FROM DISK='y.bak'; RESTORE VERIFYONLY FROM "
             "DISK='x.bak'\n");
  fclose(f);
  int rc = sql_vdisql(&out, "-b", "-S", d, "-i", script, (const char *)NULL);
  ASSERT_EQ(rc, 0);
  char *p = out;
  int backups = 0, verifies = 0;
  while ((p = strstr(p, "BACKUP DATABASE successfully")) != NULL)
    backups++, p++;
  p = out;
  while ((p = strstr(p, "is valid.")) != NULL)
    verifies++, p++;
  ASSERT_EQ(backups, 2);
  ASSERT_EQ(verifies, 2);
  ASSERT(strstr(out, "database 'copy'") != NULL);
  free(out);
  char a[4200], b[4200];
  snprintf(a, sizeof a, "%s/sales.db", d);
  snprintf(b, sizeof b, "%s/copy.db", d);
  long ra, rb;
  ASSERT_EQ(sql_digest(a, &ra), sql_digest(b, &rb));
  ASSERT_EQ(ra, 300);
  ASSERT_EQ(rb, 300);
  return 0;
}

struct bad {
  const char *sql;
  int msg;
};

TEST_IMPL(sql_parse_errors_give_msgs) {
  static const struct bad cases[] = {
      {"BACKUP DATABASE", 102},
      {"BACKUP DATABASE sales", 102},
      {"BACKUP DATABASE sales TO", 102},
      {"BACKUP DATABASE sales TO DISK", 102},
      {"BACKUP DATABASE sales TO DISK=", 102},
      {"BACKUP DATABASE sales TO DISK=a.bak", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH INIT,", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak' extra", 102},
      {"BACKUP TABLE sales TO DISK='a.bak'", 102},
      {"UPDATE t SET v = 1", 102},
      {"RESTORE sales FROM DISK='a.bak'", 102},
      {"RESTORE DATABASE sales DISK='a.bak'", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH BLOCKSIZE='x'", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH STATS=", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak", 105},
      {"BACKUP DATABASE [sales TO DISK='a.bak'", 105},
      {"BACKUP /* DATABASE sales TO DISK='a.bak'", 113},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH FROBNICATE", 155},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH REPLACE", 155},
      {"RESTORE DATABASE sales FROM DISK='a.bak' WITH INIT", 155},
      {"RESTORE DATABASE sales FROM DISK='a.bak' WITH COMPRESSION", 155},
      {"RESTORE VERIFYONLY FROM DISK='a.bak' WITH NAME='x'", 155},
      {"RESTORE DATABASE sales WITH RECOVERY", 3117}, /* not RESTORING */
      {"RESTORE DATABASE sales FROM DISK='a.bak' WITH STANDBY = 'u.dat'", 3032},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH DIFFERENTIAL", 3035},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH COMPRESSION "
       "(ALGORITHM = QAT_DEFLATE)",
       3032},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH COMPRESSION (LEVEL = FAST)",
       102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH COMPRESSION (ALGORITHM = "
       "ZSTD",
       102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH COMPRESSION (SPEED = 1)",
       102},
      {"RESTORE DATABASE sales FROM DISK='a.bak' WITH COMPRESSION (LEVEL = "
       "LOW)",
       155},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH ENCRYPTION", 102},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH ENCRYPTION (ALGORITHM = "
       "AES_256, SERVER ASYMMETRIC KEY = k)",
       3032},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH ENCRYPTION (ALGORITHM = "
       "AES_256, SERVER CERTIFICATE = nosuch)",
       15151},
      {"RESTORE DATABASE sales FROM DISK='a.bak' WITH ENCRYPTION", 155},
      {"CREATE CERTIFICATE c WITH SUBJECT = 's'", 15581},
      {"CREATE CERTIFICATE c ENCRYPTION BY PASSWORD = 'p' WITH SUBJECT = 's'",
       3032},
      {"CREATE CERTIFICATE c", 102},
      {"CREATE MASTER KEY", 102},
      {"BACKUP CERTIFICATE c TO FILE = 'c.cer' WITH PRIVATE KEY (FILE = 'k')",
       102},
      {"DROP CERTIFICATE c", 15151},
      {"BACKUP DATABASE sales TO TAPE='\\\\.\\tape0'", 3032},
      {"BACKUP DATABASE sales TO DISK='a', VIRTUAL_DEVICE='b'", 3032},
      {"RESTORE DATABASE sales FROM DISK='a.bak' WITH FILE=2", 3032},
      {"RESTORE LABELONLY FROM DISK='a.bak'", 3032},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH BLOCKSIZE=1000", 3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH BLOCKSIZE=131072", 3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH BLOCKSIZE=256", 3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH MAXTRANSFERSIZE=100000",
       3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH MAXTRANSFERSIZE=8388608",
       3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH BUFFERCOUNT=0", 3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH STATS=0", 3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH STATS=101", 3250},
      {"BACKUP DATABASE sales TO DISK='a.bak' WITH STATS=99999999999", 3250},
      {"BACKUP LOG sales TO DISK='a.bak'", 4208},
      {"RESTORE LOG sales FROM DISK='a.bak'", 3117},
      {"BACKUP LOG nosuch TO DISK='a.bak'", 911},
      {"ALTER DATABASE sales SET RECOVERY BULK_LOGGED", 5058},
      {"ALTER DATABASE nosuch SET RECOVERY FULL", 5011},
      {"RESTORE LOG sales FROM DISK='a.bak' WITH STOPAT='yesterday'", 241},
      {"BACKUP DATABASE nosuch TO DISK='a.bak'", 911},
      {"BACKUP DATABASE [../etc] TO DISK='a.bak'", 5105},
      {"RESTORE DATABASE [../../evil] FROM DISK='a.bak'", 5105},
      {"RESTORE DATABASE [.hidden] FROM DISK='a.bak'", 5105},
      {"BACKUP DATABASE [a\tb] TO DISK='a.bak'", 5105},
      {"RESTORE DATABASE [xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxx] FROM DISK='a.bak'",
       103},
      {"RESTORE VERIFYONLY FROM DISK='missing.bak'", 3201},
  };
  const char *d = inst();
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out;
    int rc = sql_q(d, cases[i].sql, &out);
    if (rc != 1 || !sql_has_msg(out, cases[i].msg) || !strstr(out, "Level 1") ||
        !strstr(out, "State 1, Server "))
      TASK_FAIL_("%s: exit %d, wanted Msg %d, got:\n%s", cases[i].sql, rc,
                 cases[i].msg, out);
    /* Every Msg line is followed by a line of plain words. */
    char *nl = strchr(strstr(out, "Msg "), '\n');
    ASSERT(nl && nl[1] != 0 && nl[1] != '\n');
    free(out);
  }
  /* A bad statement stops its whole batch: no backup file appears. */
  ASSERT_EQ(sql_fsize("a.bak"), -1);
  char p[4200];
  snprintf(p, sizeof p, "%s/a.bak", d);
  ASSERT_EQ(sql_fsize(p), -1);
  return 0;
}

TEST_IMPL(sql_parse_without_b_exit_zero_and_batches_continue) {
  const char *d = inst();
  char script[4200], p[4200], *out;
  snprintf(script, sizeof script, "%s/s.sql", d);
  FILE *f = fopen(script, "w");
  fprintf(f, "BACKUP DATABASE nosuch TO DISK='n.bak'\nGO\n"
             "BACKUP DATABASE sales TO DISK='ok.bak'\nGO\n");
  fclose(f);
  /* Without -b: the error is printed, the next batch runs, status 0. */
  int rc = sql_vdisql(&out, "-S", d, "-i", script, (const char *)NULL);
  ASSERT_EQ(rc, 0);
  ASSERT(sql_has_msg(out, 911) && sql_has_msg(out, 3013));
  free(out);
  snprintf(p, sizeof p, "%s/ok.bak", d);
  ASSERT_GT(sql_fsize(p), 0);
  unlink(p);
  /* With -b: exit 1 at the first error; the second batch does not run. */
  rc = sql_vdisql(&out, "-b", "-S", d, "-i", script, (const char *)NULL);
  ASSERT_EQ(rc, 1);
  free(out);
  ASSERT_EQ(sql_fsize(p), -1);
  return 0;
}

TEST_IMPL(sql_cli_options_and_default_instance) {
  const char *d = inst();
  char *out;
  ASSERT_EQ(sql_vdisql(&out, "-?", (const char *)NULL), 0);
  ASSERT(strstr(out, "usage: vdisql") != NULL);
  free(out);
  ASSERT_EQ(sql_vdisql(&out, "-h", (const char *)NULL), 0);
  ASSERT(strstr(out, "usage: vdisql") != NULL);
  free(out);
  ASSERT_EQ(sql_vdisql(&out, "-Z", (const char *)NULL), 1);
  free(out);
  /* -S . and no -S: the default instance is $VDI_INSTANCE_DIR. */
  setenv("VDI_INSTANCE_DIR", d, 1);
  int rc = sql_vdisql(&out, "-S", ".", "-U", "sa", "-P", "pw", "-E", "-b", "-Q",
                      "BACKUP DATABASE sales TO DISK='dflt.bak'",
                      (const char *)NULL);
  ASSERT_EQ(rc, 0);
  free(out);
  rc =
      sql_vdisql(&out, "-b", "-h", "-1", "-Q",
                 "RESTORE HEADERONLY FROM DISK='dflt.bak'", (const char *)NULL);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "BackupName") == NULL); /* -h -1: no header line */
  ASSERT(strstr(out, "\tsales\t") != NULL);
  free(out);
  rc =
      sql_vdisql(&out, "-S", "(local)", "-b", "-Q",
                 "RESTORE VERIFYONLY FROM DISK='dflt.bak'", (const char *)NULL);
  ASSERT_EQ(rc, 0);
  free(out);
  /* A server that is not a directory. */
  rc =
      sql_vdisql(&out, "-S", "/nonexistent/dir", "-b", "-Q",
                 "RESTORE VERIFYONLY FROM DISK='dflt.bak'", (const char *)NULL);
  ASSERT_EQ(rc, 1);
  ASSERT(strstr(out, "does not exist") != NULL);
  free(out);
  /* -r sends errors to stderr (captured together here, still printed). */
  rc = sql_vdisql(&out, "-b", "-r1", "-S", d, "-Q", "BACKUP LOG x TO DISK='q'",
                  (const char *)NULL);
  ASSERT_EQ(rc, 1);
  ASSERT(sql_has_msg(out, 911));
  free(out);
  return 0;
}
