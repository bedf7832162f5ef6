/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-rel-crash-e2e.c - crash matrix with the real programs: `vdi` (the
 * client) and `vdisql` (the engine, the server), one of them SIGKILLed at
 * configuration time or in the middle of a restore, and vdisql or a client
 * process killed while the client holds a VDC_Complete.  The survivor must
 * exit non-zero within a second; a backup leaves no manifest and no stripe
 * under its final name; a restore leaves the old database byte for byte as
 * it was and no temporary file in the instance directory.
 *
 * Kills in the middle of a backup (either program) and of a restore (vdi)
 * are in test-app-e2e.c (app_e2e_kill_vdisql, app_e2e_kill_vdi,
 * app_e2e_restore_kill_vdi_keeps_db); this file covers the rest.
 */
#include "rel_util.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char inst[4200], bk[4200], logp[4200];

static void setup(void) {
  app_t_require_engine();
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(bk, sizeof bk, "%s/bk", test_tmpdir());
  snprintf(logp, sizeof logp, "%s/log.txt", test_tmpdir());
  ASSERT_EQ(mkdir(inst, 0755), 0);
  /* Orphans of our children (the engine, once vdi is killed) come to us,
   * so they can be reaped and their exit status read. */
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

/* ------------------------------------------------------------ files */

struct blob {
  char *data;
  size_t n;
};

static struct blob slurp(const char *path) {
  struct blob b = {NULL, 0};
  FILE *f = fopen(path, "rb");
  ASSERT_NOT_NULL(f);
  size_t cap = 1 << 20;
  b.data = malloc(cap);
  size_t k;
  while ((k = fread(b.data + b.n, 1, cap - b.n, f)) > 0) {
    b.n += k;
    if (b.n == cap) b.data = realloc(b.data, cap *= 2);
  }
  fclose(f);
  return b;
}

static void db_path(const char *name, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s.db", inst, name);
}

/* The database file is byte for byte what it was. */
static void assert_same_file(const char *path, struct blob *before) {
  struct blob after = slurp(path);
  ASSERT_EQ(after.n, before->n);
  ASSERT(memcmp(after.data, before->data, after.n) == 0);
  free(after.data);
}

/* Entries of the instance directory: only the databases, no dot-file (no
 * temporary restore file, no journal) but the instance's private
 * directory, which holds nothing but lock files and the history. */
static void assert_only_locks(void) {
  char p[4400];
  snprintf(p, sizeof p, "%s/.vdisql", inst);
  DIR *d = opendir(p);
  ASSERT_NOT_NULL(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && strcmp(e->d_name, "locks") != 0 &&
        strcmp(e->d_name, "catalog.db") != 0) /* the backup history */
      TASK_FAIL_("left in the instance's private directory: %s", e->d_name);
  closedir(d);
}

static void assert_instance_clean(int expect_entries) {
  DIR *d = opendir(inst);
  ASSERT_NOT_NULL(d);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (strcmp(e->d_name, ".vdisql") == 0) {
      assert_only_locks();
      continue;
    }
    if (e->d_name[0] == '.' || !strstr(e->d_name, ".db") ||
        strstr(e->d_name, "-journal") || strstr(e->d_name, "-wal"))
      TASK_FAIL_("left in the instance directory: %s", e->d_name);
    n++;
  }
  closedir(d);
  ASSERT_EQ(n, expect_entries);
}

/* ------------------------------------------------------------ processes */

static pid_t wait_engine(pid_t vdi) {
  pid_t eng = -1;
  for (int i = 0; i < 1000 && eng < 0; i++) {
    eng = app_t_find_child(vdi, "vdisql");
    if (eng < 0) sleep_ms(2);
  }
  ASSERT_GT(eng, 0);
  return eng;
}

/* The set name vdi gave the engine (VIRTUAL_DEVICE='<set>' in its command
 * line). */
static void engine_set_name(pid_t eng, char *out, size_t n) {
  char path[64], buf[16384];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)eng);
  ssize_t r = 0;
  /* Just after the exec the new command line may not be readable yet. */
  for (int i = 0; i < 500 && r <= 0; i++) {
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) sleep_ms(2);
  }
  ASSERT_GT(r, 0);
  buf[r] = 0;
  for (ssize_t i = 0; i < r; i++)
    if (buf[i] == 0) buf[i] = ' ';
  char *p = strstr(buf, "VIRTUAL_DEVICE='");
  ASSERT_NOT_NULL(p);
  p += strlen("VIRTUAL_DEVICE='");
  size_t k = strcspn(p, "'");
  ASSERT(k > 0 && k < n);
  memcpy(out, p, k);
  out[k] = 0;
}

/* 1 once the engine has attached: the rendezvous socket of the set
 * (abstract "@openvdi:<instance>:<set>") has an accepted connection
 * besides the listener. */
static int engine_attached(const char *set) {
  FILE *f = fopen("/proc/net/unix", "r");
  if (!f) return 0;
  char line[1024], suffix[200];
  snprintf(suffix, sizeof suffix, ":%s", set);
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *at = strstr(line, "@openvdi:");
    size_t ll = strlen(line), sl = strlen(suffix);
    if (at && ll > sl && strcmp(line + ll - sl, suffix) == 0) n++;
  }
  fclose(f);
  return n >= 2;
}

static void wait_attached(pid_t vdi, pid_t eng) {
  char set[128];
  engine_set_name(eng, set, sizeof set);
  int64_t end = now_ms() + 5000;
  while (!engine_attached(set)) {
    if (now_ms() > end) {
      kill(vdi, SIGKILL);
      kill(eng, SIGKILL);
      TASK_FAIL_("the engine did not attach to %s", set);
    }
    usleep(200);
  }
}

/* SIGKILL the engine, vdi's child (vdi reaps it, not us): the time of the
 * kill. */
static int64_t kill_engine_now(pid_t eng) {
  int64_t at = now_us();
  ASSERT_EQ(kill(eng, SIGKILL), 0);
  return at;
}

/* After a kill (reaped at dead_us): the survivor ends, non-zero, within a
 * second. */
static void survivor_fails(pid_t survivor, int64_t dead_us) {
  int rc = wait_helper_timeout(survivor, 1000);
  int64_t took = (now_us() - dead_us) / 1000;
  if (rc < 0) {
    kill(survivor, SIGKILL);
    wait_helper(survivor);
    TASK_FAIL_("the survivor still ran 1 s after the kill");
  }
  fprintf(stderr, "survivor ended %lld ms after the kill, status %d\n",
          (long long)took, rc);
  ASSERT_NE(rc, 0);
  ASSERT_LT(took, 1000);
}

/* A dot-file of at least one byte in dir: a transfer is under way. */
static int temp_file_growing(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
        strcmp(e->d_name, "..") == 0)
      continue;
    char p[4500];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (stat(p, &st) == 0 && st.st_size > 0) found = 1;
  }
  closedir(d);
  return found;
}

/* ------------------------------------------------------------ backup */

/* Either program killed as soon as the engine has attached to the set:
 * configuration time, before the first stripe byte (writes are slowed). */
static void backup_killed_at_config(int kill_engine) {
  setup();
  app_t_make_db(inst, "db", 20000, 4096, 3);
  pid_t vdi = app_t_spawn(logp, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=300"),
                          ARGS("backup", "db", "--instance", inst, "--to", bk,
                               "--stripes", "2", "--quiet"));
  pid_t eng = wait_engine(vdi);
  wait_attached(vdi, eng);
  ASSERT(!temp_file_growing(bk));
  int64_t dead = kill_engine ? kill_engine_now(eng) : rel_kill_reap(vdi);
  survivor_fails(kill_engine ? vdi : eng, dead);
  app_t_assert_no_backup(bk, "db");
  /* A surviving vdi also removed its temporary stripes. */
  if (kill_engine) ASSERT_LE(app_t_count_files(bk, NULL, NULL), 0);
  assert_instance_clean(1);
}

TEST_IMPL_TIMEOUT(rel_crash_e2e_backup_kill_vdisql_at_config, 30) {
  backup_killed_at_config(1);
  return 0;
}

TEST_IMPL_TIMEOUT(rel_crash_e2e_backup_kill_vdi_at_config, 30) {
  backup_killed_at_config(0);
  return 0;
}

/* ------------------------------------------------------------ restore */

/* A backup of "db", then "db" moves on (so a restore would change it);
 * its bytes now are kept in *before. */
static void restore_setup(struct blob *before) {
  char *out = NULL, p[4400];
  app_t_make_db(inst, "db", 15000, 4096, 12);
  int rc = app_t_run(&out, NULL,
                     ARGS("backup", "db", "--instance", inst, "--to", bk,
                          "--stripes", "2", "--quiet"));
  if (rc != 0) app_t_show("backup", out);
  ASSERT_EQ(rc, 0);
  free(out);
  app_t_make_db(inst, "db", 3000, 4096, 13);
  db_path("db", p, sizeof p);
  *before = slurp(p);
}

/* mid = 0: kill as soon as the engine attached; mid = 1: once the engine's
 * temporary database file holds restored bytes. */
static void restore_killed(int kill_engine, int mid) {
  setup();
  struct blob before;
  char p[4400];
  restore_setup(&before);
  pid_t vdi = app_t_spawn(logp, NULL, NULL, ENV("VDI_TEST_SLOW_READ_MS=40"),
                          ARGS("restore", "db", "--instance", inst, "--from",
                               bk, "--replace", "--quiet"));
  pid_t eng = wait_engine(vdi);
  if (mid) {
    int64_t end = now_ms() + 5000;
    while (!temp_file_growing(inst) && now_ms() < end)
      sleep_ms(2);
    if (!temp_file_growing(inst)) {
      kill(vdi, SIGKILL);
      kill(eng, SIGKILL);
      TASK_FAIL_("the restore did not start writing");
    }
  } else {
    wait_attached(vdi, eng);
  }
  int64_t dead = kill_engine ? kill_engine_now(eng) : rel_kill_reap(vdi);
  survivor_fails(kill_engine ? vdi : eng, dead);
  db_path("db", p, sizeof p);
  assert_same_file(p, &before);
  free(before.data);
  ASSERT(sql_integrity_ok(p));
}

TEST_IMPL_TIMEOUT(rel_crash_e2e_restore_kill_vdisql_at_config, 30) {
  restore_killed(1, 0);
  assert_instance_clean(1);
  return 0;
}

TEST_IMPL_TIMEOUT(rel_crash_e2e_restore_kill_vdi_at_config, 30) {
  restore_killed(0, 0);
  assert_instance_clean(1);
  return 0;
}

/* vdi killed mid-restore: app_e2e_restore_kill_vdi_keeps_db checks the
 * content; here the file's bytes, and that the surviving engine removed
 * its temporary database. */
TEST_IMPL_TIMEOUT(rel_crash_e2e_restore_kill_vdi_mid, 30) {
  restore_killed(0, 1);
  assert_instance_clean(1);
  return 0;
}

/* vdisql killed mid-restore: vdi fails at once and the old database is
 * untouched; the temporary database the engine was writing is checked
 * separately below. */
TEST_IMPL_TIMEOUT(rel_crash_e2e_restore_kill_vdisql_mid, 30) {
  restore_killed(1, 1);
  return 0;
}

/* A vdisql killed in the middle of a restore cannot remove its temporary
 * database "<inst>/.<db>.db.restore-XXXXXX"; the file stays locked
 * (flock) only while its creator lives, and the next vdisql on that
 * instance removes it (tools/vdisql/stale.c). */
TEST_IMPL_TIMEOUT(rel_crash_e2e_restore_kill_vdisql_leaves_no_temp, 30) {
  restore_killed(1, 1);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(build_path("vdisql"), "vdisql", "-S", inst, "-Q",
          "RESTORE HEADERONLY FROM DISK='/nonexistent'", (char *)NULL);
    _exit(127);
  }
  wait_helper(pid);
  assert_instance_clean(1);
  return 0;
}

/* ------------------------------------------------- inside VDC_Complete */

/* A backup client standing in for vdi (which completes VDC_Complete at
 * once and offers no hook to hold it): like vdi it asks for
 * VDF_RequestComplete and stores each device's Writes in a file, but it
 * holds device 0's VDC_Complete without completing it, says so in the
 * ready file, and waits for more on that device.
 * argv: set ndev dir ready-file result-file.  The result file gets
 * "get=<rc> comp=<rc> at=<us>": the blocked GetCommand's code, then that
 * of completing the held command, and when GetCommand returned. */
struct holder_dev {
  vdi_device_t *dev;
  int idx, fd;
  const char *ready, *result;
};

static void *holder_serve(void *arg) {
  struct holder_dev *h = arg;
  for (;;) {
    VDC_Command *cmd;
    int rc = vdi_dev_get_command(h->dev, -1, &cmd);
    if (rc != 0) break;
    uint32_t code = ERROR_SUCCESS, n = 0;
    if (cmd->commandCode == VDC_Complete && h->idx == 0) {
      FILE *f = fopen(h->ready, "w");
      if (f) fclose(f);
      VDC_Command *next;
      int get_rc = vdi_dev_get_command(h->dev, -1, &next);
      int64_t at = now_us();
      int comp_rc = vdi_dev_complete_command(h->dev, cmd, 0, 0, 0);
      f = fopen(h->result, "w");
      if (f) {
        fprintf(f, "get=%d comp=%d at=%lld\n", get_rc, comp_rc, (long long)at);
        fclose(f);
      }
      break;
    }
    if (cmd->commandCode == VDC_Write) {
      n = (uint32_t)write(h->fd, cmd->buffer, (size_t)cmd->size);
      if (n != cmd->size) code = ERROR_DISK_FULL, n = 0;
    } else if (cmd->commandCode == VDC_Flush ||
               cmd->commandCode == VDC_Complete) {
      fsync(h->fd);
    } else if (cmd->commandCode != VDC_ClearError) {
      code = ERROR_NOT_SUPPORTED;
    }
    if (vdi_dev_complete_command(h->dev, cmd, code, n, 0) != 0) break;
  }
  return NULL;
}

HELPER_IMPL(rel_e2e_holder) {
  if (argc < 6) return 10;
  const char *name = argv[1], *dir = argv[3];
  int n = atoi(argv[2]);
  vdi_set_t *set;
  VDConfig cfg = lp_cfg((uint32_t)n, VDF_LikePipe | VDF_RequestComplete);
  if (vdi_set_new(&set) != 0 || vdi_set_create(set, name, &cfg) != 0) return 11;
  char created[4500];
  snprintf(created, sizeof created, "%s.created", argv[4]);
  FILE *cf = fopen(created, "w");
  if (cf) fclose(cf);
  int rc, tries = 0;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT &&
         ++tries < 20) {
  }
  if (rc != 0) return 12;
  struct holder_dev hd[8];
  pthread_t th[8];
  for (int i = 0; i < n && i < 8; i++) {
    char dn[128], path[4400];
    lp_devname(name, i, dn, sizeof dn);
    snprintf(path, sizeof path, "%s/%s.s%d", dir, name, i);
    hd[i].idx = i;
    hd[i].ready = argv[4];
    hd[i].result = argv[5];
    hd[i].fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (hd[i].fd < 0 || vdi_set_open_device(set, dn, &hd[i].dev) != 0)
      return 13;
  }
  for (int i = 0; i < n; i++)
    pthread_create(&th[i], NULL, holder_serve, &hd[i]);
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  vdi_set_close(set);
  vdi_set_free(set);
  return 2; /* a held Complete never ends well */
}

/* The holder and a real vdisql backing up through 2 devices, up to the
 * moment the holder holds device 0's VDC_Complete. */
static void until_complete_held(char *set, pid_t *holder, pid_t *eng,
                                char *ready, char *result, char *out) {
  app_t_make_db(inst, "db", 5000, 4096, 21);
  snprintf(set, 96, "%s", unique_name("hold"));
  snprintf(ready, 4400, "%s/held", test_tmpdir());
  snprintf(result, 4400, "%s/result", test_tmpdir());
  snprintf(out, 4400, "%s/vdisql.out", test_tmpdir());
  *holder = spawn_helper("rel_e2e_holder", set, "2", test_tmpdir(), ready,
                         result, (const char *)NULL);
  char sql[1024], d1[128], created[4500];
  lp_devname(set, 1, d1, sizeof d1);
  snprintf(sql, sizeof sql,
           "BACKUP DATABASE db TO VIRTUAL_DEVICE='%s', VIRTUAL_DEVICE='%s'",
           set, d1);
  /* Start vdisql only once the set exists (it would fail to open it). */
  snprintf(created, sizeof created, "%s.created", ready);
  int64_t end = now_ms() + 5000;
  while (access(created, F_OK) != 0) {
    if (now_ms() > end) TASK_FAIL_("the holder did not create its set");
    sleep_ms(2);
  }
  const char *args[] = {"-b", "-S", inst, "-Q", sql, NULL};
  *eng = sql_vdisql_spawn(out, args);
  end = now_ms() + 10000;
  while (access(ready, F_OK) != 0) {
    if (now_ms() > end) {
      kill(*holder, SIGKILL);
      kill(*eng, SIGKILL);
      TASK_FAIL_("no VDC_Complete reached the client");
    }
    sleep_ms(2);
  }
}

/* vdisql killed while the client holds VDC_Complete: the client's blocked
 * GetCommand returns VD_E_ABORT within 100 ms, the held command can no
 * longer be completed (VD_E_ABORT), and the client process ends, non-zero,
 * within a second. */
TEST_IMPL_TIMEOUT(rel_crash_e2e_kill_vdisql_in_complete, 30) {
  setup();
  char set[96], ready[4400], result[4400], out[4400];
  pid_t holder, eng;
  until_complete_held(set, &holder, &eng, ready, result, out);
  sleep_ms(30); /* the holder is in its GetCommand now */
  int64_t dead = rel_kill_reap(eng);
  survivor_fails(holder, dead);
  char *r = sql_slurp(result);
  int get_rc = 0, comp_rc = 0;
  long long at = 0;
  if (sscanf(r, "get=%d comp=%d at=%lld", &get_rc, &comp_rc, &at) != 3)
    TASK_FAIL_("bad result: %s", r);
  free(r);
  ASSERT_RC(get_rc, VD_E_ABORT);
  ASSERT_RC(comp_rc, VD_E_ABORT);
  ASSERT_LT(at - dead, 100000);
  return 0;
}

/* The client killed while it holds VDC_Complete: vdisql fails the backup
 * (Msg 3013) within a second. */
TEST_IMPL_TIMEOUT(rel_crash_e2e_kill_client_in_complete, 30) {
  setup();
  char set[96], ready[4400], result[4400], out[4400];
  pid_t holder, eng;
  until_complete_held(set, &holder, &eng, ready, result, out);
  int64_t dead = rel_kill_reap(holder);
  survivor_fails(eng, dead);
  char *o = sql_slurp(out);
  if (!sql_has_msg(o, 3013)) TASK_FAIL_("vdisql said:\n%s", o);
  free(o);
  assert_instance_clean(1);
  return 0;
}
