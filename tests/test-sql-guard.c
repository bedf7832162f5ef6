/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-guard.c - a backup never destroys what it protects (issue 17),
 * with the real vdisql binary:
 *   - BACKUP TO DISK onto any file of the instance (a database, another
 *     database, a companion, a future database's name, the instance's own
 *     files), however the path is spelled (absolute, relative, "..",
 *     symlinked, hard-linked), is refused with Msg 3201 and changes
 *     nothing; a symlink planted at an ordinary target is refused too;
 *   - one RESTORE of a database at a time (Msg 3101 for the second, which
 *     changes nothing), no BACKUP during it (Msg 927);
 *   - names that cannot be a file of the instance: Msg 5105; longer than
 *     128: Msg 103; exactly 128 works.
 */
#include "task.h"
#include "test-sql-util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char inst[4200], other[4200];

static void setup(void) {
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(other, sizeof other, "%s/other", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0700), 0);
  ASSERT_EQ(mkdir(other, 0700), 0);
}

static void ipath(char *out, const char *name) {
  snprintf(out, 4300, "%s/%s", inst, name);
}

/* Every byte of every database file, and the directory's listing. */
struct state {
  uint32_t crc[4];
  int64_t size[4];
  int entries;
};
static const char *const dbs[] = {"a.db", "b.db", "a.db-wal", "b.db-wal"};

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ASSERT_NOT_NULL(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static struct state take(void) {
  struct state s;
  for (int i = 0; i < 4; i++) {
    char p[4300];
    ipath(p, dbs[i]);
    s.size[i] = sql_file_crc(p, &s.crc[i]);
  }
  s.entries = count_entries(inst);
  return s;
}

static void same(const struct state *a, const struct state *b) {
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(a->size[i], b->size[i]);
    if (a->size[i] >= 0) ASSERT_UEQ(a->crc[i], b->crc[i]);
  }
  ASSERT_EQ(a->entries, b->entries);
}

static void refused(const char *sql, int msg, const char *words) {
  char *out = NULL;
  struct state before = take();
  int rc = sql_q(inst, sql, &out);
  if (rc != 1 || !sql_has_msg(out, msg) || !sql_has_msg(out, 3013) ||
      (words && !strstr(out, words)))
    TASK_FAIL_("%s: exit %d, wanted Msg %d (%s), got:\n%s", sql, rc, msg,
               words ? words : "", out);
  free(out);
  struct state after = take();
  same(&before, &after);
  char p[4300];
  ipath(p, "a.db");
  ASSERT(sql_integrity_ok(p));
  ipath(p, "b.db");
  ASSERT(sql_integrity_ok(p));
}

TEST_IMPL_TIMEOUT(sql_guard_backup_onto_instance_files_refused, 60) {
  setup();
  char a[4300], b[4300], sql[9000], dlink[4300], hard[4300];
  ipath(a, "a.db");
  ipath(b, "b.db");
  sql_make_db(a, 500, 4096, 0, 1);
  sql_make_db(b, 300, 4096, 0, 2);
  /* A first full backup creates the instance's private files too. */
  snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s/ok.bak'", other);
  ASSERT_EQ(sql_q(inst, sql, NULL), 0);

  static const char *const with[] = {"INIT", "FORMAT"};
  for (int w = 0; w < 2; w++) {
    /* The database's own file, absolute; another database's; relative. */
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s' WITH %s", a,
             with[w]);
    refused(sql, 3201, "file of database 'a'");
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s' WITH %s", b,
             with[w]);
    refused(sql, 3201, "file of database 'b'");
    snprintf(sql, sizeof sql, "BACKUP DATABASE b TO DISK='a.db' WITH %s",
             with[w]);
    refused(sql, 3201, "'a'");
    /* Spelled with "..", through a symlinked directory, as a companion,
     * as the name a database of the instance would have. */
    snprintf(sql, sizeof sql,
             "BACKUP DATABASE a TO DISK='%s/../inst/./b.db' WITH %s", other,
             with[w]);
    refused(sql, 3201, "'b'");
    snprintf(dlink, sizeof dlink, "%s/dirlink", test_tmpdir());
    unlink(dlink);
    ASSERT_EQ(symlink(inst, dlink), 0);
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s/a.db' WITH %s",
             dlink, with[w]);
    refused(sql, 3201, "'a'");
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='a.db-wal' WITH %s",
             with[w]);
    refused(sql, 3201, "'a'");
    snprintf(sql, sizeof sql,
             "BACKUP DATABASE a TO DISK='b.db-journal' WITH %s", with[w]);
    refused(sql, 3201, "'b'");
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='future.db' WITH %s",
             with[w]);
    refused(sql, 3201, "'future'");
    /* The instance's own files. */
    snprintf(sql, sizeof sql,
             "BACKUP DATABASE a TO DISK='.vdisql/locks/a.lock' WITH %s",
             with[w]);
    refused(sql, 3201, "private");
    snprintf(sql, sizeof sql,
             "BACKUP DATABASE a TO DISK='.a.db.restore-XXXX' WITH %s", with[w]);
    refused(sql, 3201, "belong to the instance");
    /* Outside the instance, a symlink and a hard link to a database. */
    snprintf(hard, sizeof hard, "%s/sym.bak", other);
    unlink(hard);
    ASSERT_EQ(symlink(a, hard), 0);
    snprintf(sql, sizeof sql, "BACKUP DATABASE b TO DISK='%s' WITH %s", hard,
             with[w]);
    refused(sql, 3201, "file of database 'a'");
    unlink(hard);
    snprintf(hard, sizeof hard, "%s/hard.bak", other);
    unlink(hard);
    ASSERT_EQ(link(b, hard), 0);
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s' WITH %s", hard,
             with[w]);
    refused(sql, 3201, "file of database 'b'");
    unlink(hard);
    /* A hard link to a file deep in the private directory. */
    char lockf[4400];
    snprintf(lockf, sizeof lockf, "%s/.vdisql/locks/a.lock", inst);
    snprintf(hard, sizeof hard, "%s/lock.bak", other);
    unlink(hard);
    ASSERT_EQ(link(lockf, hard), 0);
    snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s' WITH %s", hard,
             with[w]);
    refused(sql, 3201, "instance's file '.vdisql/locks/a.lock'");
    unlink(hard);
    /* One bad device among good ones: nothing is written anywhere. */
    snprintf(sql, sizeof sql,
             "BACKUP DATABASE a TO DISK='%s/s0.bak', DISK='%s' WITH %s", other,
             b, with[w]);
    refused(sql, 3201, "'b'");
    ASSERT_EQ(sql_fsize(strcat(strcpy(hard, other), "/s0.bak")), -1);
  }
  /* The ordinary backup still works, and the instance is unharmed. */
  snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s/ok.bak' WITH INIT",
           other);
  char *out = NULL;
  if (sql_q(inst, sql, &out) != 0) TASK_FAIL_("%s", out);
  free(out);
  snprintf(sql, sizeof sql, "RESTORE DATABASE c FROM DISK='%s/ok.bak'", other);
  ASSERT_EQ(sql_q(inst, sql, NULL), 0);
  long r1, r2;
  char c[4300];
  ipath(c, "c.db");
  ASSERT_EQ(sql_digest(a, &r1), sql_digest(c, &r2));
  ASSERT_EQ(r2, 500);
  return 0;
}

/* A symlink planted at an ordinary backup path is refused, and what it
 * points to is left alone. */
TEST_IMPL(sql_guard_symlink_target_refused) {
  setup();
  char a[4300], sql[9000], victim[4300], lnk[4300];
  ipath(a, "a.db");
  sql_make_db(a, 100, 4096, 0, 3);
  snprintf(victim, sizeof victim, "%s/victim.txt", other);
  FILE *f = fopen(victim, "w");
  ASSERT_NOT_NULL(f);
  fputs("precious\n", f);
  fclose(f);
  snprintf(lnk, sizeof lnk, "%s/p.bak", other);
  ASSERT_EQ(symlink(victim, lnk), 0);
  char *out = NULL;
  snprintf(sql, sizeof sql, "BACKUP DATABASE a TO DISK='%s' WITH INIT", lnk);
  ASSERT_EQ(sql_q(inst, sql, &out), 1);
  if (!sql_has_msg(out, 3201) || !strstr(out, "symbolic link"))
    TASK_FAIL_("%s", out);
  free(out);
  char *text = sql_slurp(victim);
  ASSERT_STR_EQ(text, "precious\n");
  free(text);
  struct stat st;
  ASSERT_EQ(lstat(lnk, &st), 0);
  ASSERT(S_ISLNK(st.st_mode));
  return 0;
}

static pid_t slow_restore(const char *db, const char *bak, const char *mark,
                          const char *log) {
  char sql[9000];
  snprintf(sql, sizeof sql, "RESTORE DATABASE %s FROM DISK='%s' WITH REPLACE",
           db, bak);
  return sql_spawn_held_restore(inst, sql, mark, 1500, log);
}

TEST_IMPL_TIMEOUT(sql_guard_one_restore_at_a_time, 40) {
  setup();
  char a[4300], sql[9000], b1[4300], b2[4300], mark[4300], log[4300];
  ipath(a, "big.db");
  snprintf(b1, sizeof b1, "%s/one.bak", other);
  snprintf(b2, sizeof b2, "%s/two.bak", other);
  sql_make_db(a, 2000, 4096, 1, 4);
  snprintf(sql, sizeof sql, "BACKUP DATABASE big TO DISK='%s'", b1);
  ASSERT_EQ(sql_q(inst, sql, NULL), 0);
  sql_make_db(a, 700, 4096, 1, 5);
  snprintf(sql, sizeof sql, "BACKUP DATABASE big TO DISK='%s'", b2);
  ASSERT_EQ(sql_q(inst, sql, NULL), 0);
  long rows;
  sql_digest(a, &rows);
  ASSERT_EQ(rows, 700);

  snprintf(mark, sizeof mark, "%s/mark", test_tmpdir());
  snprintf(log, sizeof log, "%s/first.log", test_tmpdir());
  pid_t first = slow_restore("big", b1, mark, log);
  /* While the first holds the database: a second restore and a backup are
   * refused at once, and change nothing. */
  char *out = NULL;
  int64_t t0 = now_ms();
  snprintf(sql, sizeof sql, "RESTORE DATABASE big FROM DISK='%s' WITH REPLACE",
           b2);
  ASSERT_EQ(sql_q(inst, sql, &out), 1);
  if (!sql_has_msg(out, 3101) || !strstr(out, "'big'")) TASK_FAIL_("%s", out);
  free(out);
  snprintf(sql, sizeof sql, "BACKUP DATABASE big TO DISK='%s/three.bak'",
           other);
  ASSERT_EQ(sql_q(inst, sql, &out), 1);
  if (!sql_has_msg(out, 927) || !strstr(out, "middle of a restore"))
    TASK_FAIL_("%s", out);
  free(out);
  ASSERT_LT(now_ms() - t0, 1400); /* refused, not queued behind the first */
  char three[4300];
  snprintf(three, sizeof three, "%s/three.bak", other);
  ASSERT_EQ(sql_fsize(three), -1);
  /* Another database is not held. */
  snprintf(sql, sizeof sql, "RESTORE DATABASE other FROM DISK='%s'", b2);
  ASSERT_EQ(sql_q(inst, sql, NULL), 0);

  ASSERT_EQ(wait_helper(first), 0);
  char *text = sql_slurp(log);
  if (!strstr(text, "RESTORE DATABASE successfully processed"))
    TASK_FAIL_("%s", text);
  free(text);
  sql_digest(a, &rows);
  ASSERT_EQ(rows, 2000); /* the first one's content, and it said so */
  ASSERT(sql_integrity_ok(a));
  /* The database is free again. */
  snprintf(sql, sizeof sql, "RESTORE DATABASE big FROM DISK='%s' WITH REPLACE",
           b2);
  ASSERT_EQ(sql_q(inst, sql, NULL), 0);
  sql_digest(a, &rows);
  ASSERT_EQ(rows, 700);
  return 0;
}

TEST_IMPL(sql_guard_name_128_roundtrip) {
  setup();
  char name[129], p[4400], sql[9000];
  memset(name, 'n', 128);
  name[128] = 0;
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  sql_make_db(p, 50, 4096, 0, 6);
  snprintf(sql, sizeof sql, "BACKUP DATABASE [%s] TO DISK='%s/n.bak'", name,
           other);
  char *out = NULL;
  if (sql_q(inst, sql, &out) != 0) TASK_FAIL_("%s", out);
  free(out);
  snprintf(sql, sizeof sql, "RESTORE HEADERONLY FROM DISK='%s/n.bak'", other);
  ASSERT_EQ(sql_q(inst, sql, &out), 0);
  ASSERT_NOT_NULL(strstr(out, name));
  free(out);
  name[0] = 'm';
  snprintf(sql, sizeof sql, "RESTORE DATABASE [%s] FROM DISK='%s/n.bak'", name,
           other);
  if (sql_q(inst, sql, &out) != 0) TASK_FAIL_("%s", out);
  free(out);
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  long rows;
  sql_digest(p, &rows);
  ASSERT_EQ(rows, 50);
  return 0;
}
