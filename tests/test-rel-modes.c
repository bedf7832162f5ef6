/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-modes.c - every file vdisql and vdi create is never more
 * readable than what it comes from (issue 12; docs/RELIABILITY.md, "Who
 * can read what we write").  Under umask 000, 022 and 077 and for source
 * databases of mode 0600, 0640 and 0644, each kind of file is checked for
 * the exact mode the rule gives (source bits less umask, no execute bit):
 * DISK backups, vdi stripes and manifests and their temporaries, restored
 * databases (from the mode recorded in the backup) and their -wal/-shm, a
 * restore's temporary file, the directory vdi creates (0700), the
 * instance's private directory and lock files.  Owner and group follow the
 * source where the process may set them.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int checked;

static mode_t mode_of(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) TASK_FAIL_("%s: missing", path);
  return st.st_mode & 07777;
}

/* The rule: exactly the source's read/write bits less the umask, and so
 * never a bit the source lacks. */
static void expect_copy(const char *what, const char *path, mode_t src,
                        mode_t um) {
  mode_t m = mode_of(path), want = src & 0666 & ~um;
  if ((m & ~src) != 0)
    TASK_FAIL_("%s %s is %04o: more readable than its source (%04o), umask "
               "%03o",
               what, path, (unsigned)m, (unsigned)src, (unsigned)um);
  if (m != want)
    TASK_FAIL_("%s %s is %04o, wanted %04o (source %04o, umask %03o)", what,
               path, (unsigned)m, (unsigned)want, (unsigned)src, (unsigned)um);
  checked++;
}

static void expect_private_dir(const char *what, const char *path, mode_t um) {
  mode_t m = mode_of(path);
  if (m != (0700 & ~um))
    TASK_FAIL_("%s %s is %04o, wanted 0700 (umask %03o)", what, path,
               (unsigned)m, (unsigned)um);
  checked++;
}

/* The first entry of dir whose name contains marker, or fail. */
static void find_entry(const char *dir, const char *marker, char *out) {
  DIR *d = opendir(dir);
  ASSERT_NOT_NULL(d);
  struct dirent *e;
  out[0] = 0;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, marker)) {
      snprintf(out, 4600, "%s/%s", dir, e->d_name);
      break;
    }
  closedir(d);
  if (!out[0]) TASK_FAIL_("no '%s' in %s", marker, dir);
}

static void q_ok(const char *inst, const char *sql) {
  char *out = NULL;
  if (sql_q(inst, sql, &out) != 0) TASK_FAIL_("%s\n%s", sql, out);
  free(out);
}

/* A write through SQLite makes the -wal and -shm of a restored database. */
static void touch_wal(const char *db, mode_t src, mode_t um) {
  sqlite3 *h;
  ASSERT_EQ(sqlite3_open(db, &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h,
                         "PRAGMA journal_mode=WAL; "
                         "INSERT INTO t(v) VALUES('after restore');",
                         NULL, NULL, NULL),
            SQLITE_OK);
  char p[4400];
  snprintf(p, sizeof p, "%s-wal", db);
  expect_copy("restored database's WAL", p, src, um);
  snprintf(p, sizeof p, "%s-shm", db);
  expect_copy("restored database's SHM", p, src, um);
  sqlite3_close(h);
}

static void one_case(mode_t um, mode_t src) {
  char base[4200], inst[4300], db[4400], p[4600], sql[9000], bk[4400],
      mark[4400], log[4400];
  snprintf(base, sizeof base, "%s/u%03o-s%04o", test_tmpdir(), (unsigned)um,
           (unsigned)src);
  umask(022);
  ASSERT_EQ(mkdir(base, 0755), 0);
  snprintf(inst, sizeof inst, "%s/inst", base);
  ASSERT_EQ(mkdir(inst, 0755), 0);
  snprintf(db, sizeof db, "%s/p.db", inst);
  sql_make_db(db, 2000, 4096, 1, 9);
  ASSERT_EQ(chmod(db, src), 0);
  umask(um); /* every program below inherits it */

  /* vdisql: a DISK backup (two stripes), the lock it took. */
  snprintf(sql, sizeof sql,
           "BACKUP DATABASE p TO DISK='%s/p0.bak', DISK='%s/p1.bak'", base,
           base);
  q_ok(inst, sql);
  snprintf(p, sizeof p, "%s/p0.bak", base);
  expect_copy("DISK backup", p, src, um);
  snprintf(p, sizeof p, "%s/p1.bak", base);
  expect_copy("DISK backup", p, src, um);
  snprintf(p, sizeof p, "%s/.vdisql", inst);
  expect_private_dir("instance private directory", p, um);
  snprintf(p, sizeof p, "%s/.vdisql/locks/p.lock", inst);
  expect_copy("lock file", p, 0600, um);

  /* vdisql: RESTORE; its temporary file at the moment of the switch. */
  snprintf(mark, sizeof mark, "%s/at-commit", base);
  snprintf(sql, sizeof sql,
           "RESTORE DATABASE q FROM DISK='%s/p0.bak', DISK='%s/p1.bak'", base,
           base);
  snprintf(log, sizeof log, "%s/restore.log", base);
  pid_t r = sql_spawn_held_restore(inst, sql, mark, 300, log);
  find_entry(inst, ".q.db.restore-", p);
  expect_copy("restore's temporary file", p, src, um);
  ASSERT_EQ(wait_helper(r), 0);
  snprintf(p, sizeof p, "%s/q.db", inst);
  expect_copy("restored database", p, src, um);
  touch_wal(p, src, um);

  /* vdi: a new backup directory, stripes (and their temporaries while the
   * backup runs), the manifest; a restore. */
  snprintf(bk, sizeof bk, "%s/bk", base);
  pid_t b = app_t_spawn(log, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=20"),
                        ARGS("backup", "p", "--instance", inst, "--to", bk,
                             "--stripes", "2", "--quiet"));
  /* The backup is a new set of the repository: bk/p/<ID>/. */
  char set[4400];
  for (int i = 0; i < 1000; i++) {
    app_t_set_dir(bk, "p", -1, set, sizeof set);
    DIR *d = set[0] ? opendir(set) : NULL;
    int found = 0;
    struct dirent *e;
    /* Its bits are final before its first byte: look once it has one. */
    while (d && (e = readdir(d)) != NULL) {
      struct stat st;
      if (strstr(e->d_name, ".tmp-") &&
          fstatat(dirfd(d), e->d_name, &st, 0) == 0 && st.st_size > 0)
        found = 1;
    }
    if (d) closedir(d);
    if (found) break;
    sleep_ms(5);
  }
  expect_private_dir("vdi backup directory", bk, um);
  snprintf(p, sizeof p, "%s/p", bk);
  expect_private_dir("vdi database folder", p, um);
  expect_private_dir("vdi backup set", set, um);
  find_entry(set, ".tmp-", p);
  expect_copy("vdi stripe (temporary)", p, src, um);
  ASSERT_EQ(wait_helper(b), 0);
  snprintf(p, sizeof p, "%s/p.stripe0.vdibak", set);
  expect_copy("vdi stripe", p, src, um);
  snprintf(p, sizeof p, "%s/p.stripe1.vdibak", set);
  expect_copy("vdi stripe", p, src, um);
  snprintf(p, sizeof p, "%s/p.manifest.json", set);
  expect_copy("vdi manifest", p, src, um);
  app_t_run_ok("vdi restore", NULL,
               ARGS("restore", "p", "--instance", inst, "--from", bk, "--as",
                    "r", "--quiet"));
  snprintf(p, sizeof p, "%s/r.db", inst);
  expect_copy("database restored by vdi", p, src, um);
  touch_wal(p, src, um);
  umask(022);
}

TEST_IMPL_TIMEOUT(rel_modes_never_more_readable, 120) {
  if (!app_t_engine_ready()) {
    fprintf(stderr, "vdisql is not built yet\n");
    return TEST_SKIP;
  }
  static const mode_t umasks[] = {000, 022, 077};
  static const mode_t srcs[] = {0600, 0640, 0644};
  for (int u = 0; u < 3; u++)
    for (int s = 0; s < 3; s++)
      one_case(umasks[u], srcs[s]);
  fprintf(stderr, "%d files checked\n", checked);
  ASSERT_EQ(checked, 9 * 18); /* 18: the repository's two folders too */
  return 0;
}

/* The group (and, for root, the owner) of a backup follows the source's;
 * where it cannot, the copy loses its group bits. */
TEST_IMPL_TIMEOUT(rel_modes_owner_and_group_follow_source, 30) {
  char inst[4300], db[4400], p[4400], sql[9000];
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  snprintf(db, sizeof db, "%s/g.db", inst);
  sql_make_db(db, 100, 4096, 0, 3);
  ASSERT_EQ(chmod(db, 0640), 0);
  uid_t want_uid = getuid();
  gid_t want_gid = getgid();
  if (geteuid() == 0) {
    want_uid = 54321;
    want_gid = 12345;
  } else {
    gid_t groups[64];
    int n = getgroups(64, groups);
    for (int i = 0; i < n; i++)
      if (groups[i] != getegid()) want_gid = groups[i];
    if (want_gid == getgid()) {
      fprintf(stderr, "no second group to test with\n");
      return TEST_SKIP;
    }
  }
  ASSERT_EQ(chown(db, want_uid, want_gid), 0);
  umask(0);
  snprintf(sql, sizeof sql, "BACKUP DATABASE g TO DISK='%s/g.bak'",
           test_tmpdir());
  q_ok(inst, sql);
  struct stat st;
  snprintf(p, sizeof p, "%s/g.bak", test_tmpdir());
  ASSERT_EQ(stat(p, &st), 0);
  ASSERT_EQ(st.st_uid, want_uid);
  ASSERT_EQ(st.st_gid, want_gid);
  ASSERT_EQ(st.st_mode & 0777, 0640);
  umask(022);
  return 0;
}
