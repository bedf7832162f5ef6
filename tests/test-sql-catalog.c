/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-catalog.c - the backup history in msdb's shape (catalog.c),
 * with the real programs: every successful backup (DISK, striped; through
 * vdi's virtual devices; through the instance) is one backupset row with
 * one backupmediafamily row per device, a failed one is none; `SELECT ...
 * FROM msdb.dbo.backupset` (msdb.., TOP n, N'...', joins) reads them;
 * anything but reading the two tables is refused and changes nothing; the
 * catalog file is 0600 in the 0700 private directory.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char inst[4200];

static void setup(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  char p[4400];
  snprintf(p, sizeof p, "%s/a.db", inst);
  sql_make_db(p, 300, 4096, 1, 41);
  snprintf(p, sizeof p, "%s/b.db", inst);
  sql_make_db(p, 100, 4096, 1, 42);
}

/* The query's output, which must succeed. */
static char *query(const char *sql) {
  char *out = NULL;
  int rc = sql_vdisql(&out, "-b", "-S", inst, "-s", "|", "-Q", sql, NULL);
  if (rc != 0) TASK_FAIL_("%s: exit %d\n%s", sql, rc, out);
  return out;
}

static void expect(const char *sql, const char *want) {
  char *out = query(sql);
  if (strcmp(out, want) != 0)
    TASK_FAIL_("%s:\n--- got\n%s--- wanted\n%s", sql, out, want);
  free(out);
}

TEST_IMPL_TIMEOUT(sql_catalog_records_backups, 40) {
  setup();
  char *out = NULL;
  ASSERT_EQ(sql_q(inst,
                  "BACKUP DATABASE a TO DISK='a0.bak', DISK='a1.bak' WITH "
                  "NAME = N'nightly', CHECKSUM, COPY_ONLY",
                  &out),
            0);
  free(out);
  /* Failed backups leave no history. */
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE nosuch TO DISK='n.bak'", NULL), 1);
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK='a0.bak'", NULL), 1);
  if (app_t_engine_ready()) {
    char bk[4400];
    snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
    app_t_run_ok("vdi backup", NULL,
                 ARGS("backup", "b", "--instance", inst, "--to", bk,
                      "--stripes", "3", "--quiet"));
  }
  expect("SELECT backup_set_id, database_name, type, name, is_copy_only, "
         "has_backup_checksums, family_count, first_lsn FROM "
         "msdb.dbo.backupset ORDER BY backup_set_id",
         "backup_set_id|database_name|type|name|is_copy_only|"
         "has_backup_checksums|family_count|first_lsn\n"
         "1|a|D|nightly|1|1|2|NULL\n"
         "2|b|D|NULL|0|1|3|NULL\n"
         "\n(2 rows affected)\n");
  char want[9000], real[4200];
  ASSERT_NOT_NULL(realpath(inst, real));
  snprintf(want, sizeof want,
           "family_sequence_number|physical_device_name|device_type\n"
           "1|%s/a0.bak|2\n2|%s/a1.bak|2\n\n(2 rows affected)\n",
           real, real);
  expect("SELECT m.family_sequence_number, m.physical_device_name, "
         "m.device_type FROM msdb..backupmediafamily m JOIN "
         "msdb.dbo.backupset s ON s.media_set_id = m.media_set_id WHERE "
         "s.database_name = N'a' ORDER BY 1",
         want);
  expect("SELECT TOP 1 database_name FROM msdb.dbo.backupset ORDER BY "
         "backup_set_id DESC",
         "database_name\nb\n\n(1 rows affected)\n");
  expect("SELECT count(*) AS n FROM msdb.dbo.backupmediafamily WHERE "
         "device_type = 7",
         "n\n3\n\n(1 rows affected)\n");
  /* backup_size is the database's; the GUID is the one HEADERONLY shows. */
  out = query("SELECT backup_set_uuid, backup_size FROM msdb.dbo.backupset "
              "WHERE backup_set_id = 1");
  char *hdr = NULL;
  ASSERT_EQ(
      sql_q(inst, "RESTORE HEADERONLY FROM DISK='a0.bak', DISK='a1.bak'", &hdr),
      0);
  char *nl = strchr(out, '\n');
  ASSERT_NOT_NULL(nl);
  char uuid[40];
  ASSERT_EQ(sscanf(nl + 1, "%36[0-9A-F-]", uuid), 1);
  ASSERT_NOT_NULL(strstr(hdr, uuid));
  char *bar = strchr(nl + 1, '|'), size[40];
  ASSERT_NOT_NULL(bar);
  ASSERT_EQ(sscanf(bar + 1, "%39[0-9]", size), 1);
  char tab[48];
  snprintf(tab, sizeof tab, "\t%s\t", size); /* HEADERONLY's BackupSize */
  ASSERT_NOT_NULL(strstr(hdr, tab));
  free(out);
  free(hdr);

  struct stat st;
  char p[4400];
  snprintf(p, sizeof p, "%s/.vdisql/catalog.db", inst);
  ASSERT_EQ(stat(p, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
  snprintf(p, sizeof p, "%s/.vdisql", inst);
  ASSERT_EQ(stat(p, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0700);
  /* It is the instance's: never a backup device. */
  out = NULL;
  ASSERT_EQ(sql_q(inst,
                  "BACKUP DATABASE a TO DISK='.vdisql/catalog.db' WITH INIT",
                  &out),
            1);
  ASSERT(sql_has_msg(out, 3201));
  free(out);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_catalog_read_only, 30) {
  setup();
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE a TO DISK='a.bak'", NULL), 0);
  static const struct {
    const char *sql;
    int msg;
  } bad[] = {
      {"SELECT * FROM sqlite_master", 229},
      {"SELECT * FROM msdb.dbo.backupset; DELETE FROM backupset", 102},
      {"SELECT * FROM nosuch", 208},
      {"SELECT nosuch FROM msdb.dbo.backupset", 207},
      {"SELECT load_extension('x') FROM msdb.dbo.backupset", 229},
      {"SELECT * FROM pragma_table_info('backupset')", 229},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *out = NULL;
    int rc = sql_q(inst, bad[i].sql, &out);
    if (rc != 1 || !sql_has_msg(out, bad[i].msg))
      TASK_FAIL_("%s: exit %d, wanted Msg %d:\n%s", bad[i].sql, rc, bad[i].msg,
                 out);
    free(out);
  }
  /* An attempt to write through the SELECT path fails too. */
  char *out = NULL;
  ASSERT_EQ(sql_q(inst,
                  "SELECT 1 FROM msdb.dbo.backupset WHERE 0; "
                  "ATTACH '/tmp/x.db' AS x",
                  &out),
            1);
  free(out);
  expect("SELECT count(*) FROM msdb.dbo.backupset",
         "count(*)\n1\n\n(1 rows affected)\n");
  return 0;
}

/* Through the instance, the same history. */
TEST_IMPL_TIMEOUT(sql_catalog_through_instance, 30) {
  setup();
  char log[4400];
  snprintf(log, sizeof log, "%s/instance.log", test_tmpdir());
  pid_t srv = sql_serve(inst, log, NULL);
  ASSERT_EQ(sql_q(inst, "BACKUP DATABASE b TO DISK='b.bak'", NULL), 0);
  expect("SELECT database_name, type FROM msdb.dbo.backupset",
         "database_name|type\nb|D\n\n(1 rows affected)\n");
  char *t = sql_slurp(log);
  ASSERT_NOT_NULL(strstr(t, ": SELECT database_name, type FROM"));
  free(t);
  sql_serve_stop(srv, 10000);
  return 0;
}
