/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-sql-vdi.c - BACKUP / RESTORE through VIRTUAL_DEVICE: a helper
 * process plays the backup application (client role, vdi_set_* API, one
 * thread per device, one file per stripe) and vdisql runs as a separate
 * process (fork + exec) in the server role.  Round trips with 1 and 4
 * devices, pipe-like and disk-like; odd read sizes and a short last read
 * with ERROR_HANDLE_EOF; VDC_Complete; a client that fails a write, fails a
 * read, aborts, or dies -> vdisql fails with a Msg, promptly.
 */
#include "task.h"
#include "test-sql-util.h"

#include "vdi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ client */

struct cdev {
  vdi_set_t *set;
  vdi_device_t *dev;
  int idx, fd;
  const char *flags;
  uint32_t bs, mts;
  int closed, aborted, flushes, completes, writes, reads, bad_sizes, cmds;
  int64_t bytes;
};

static int has(const char *flags, char c) {
  return strchr(flags, c) != NULL;
}

static void *serve(void *arg) {
  struct cdev *c = arg;
  unsigned seed = (unsigned)c->idx * 7919u + 17u;
  for (;;) {
    VDC_Command *cmd;
    int rc = vdi_dev_get_command(c->dev, -1, &cmd);
    if (rc == VD_E_CLOSE) {
      c->closed = 1;
      break;
    }
    if (rc != 0) {
      c->aborted = 1;
      break;
    }
    c->cmds++;
    if (c->idx == 0 && c->cmds == 3 && has(c->flags, 'a')) {
      vdi_set_signal_abort(c->set); /* and leave the command hanging */
      continue;
    }
    if (c->idx == 0 && c->cmds == 3 && has(c->flags, 'h'))
      for (;;)
        pause(); /* stop servicing: the test kills us */
    uint32_t code = ERROR_SUCCESS, n = 0;
    int random = has(c->flags, 'r');
    switch (cmd->commandCode) {
    case VDC_Write:
      c->writes++;
      if (cmd->size <= 0 || (uint32_t)cmd->size % c->bs ||
          (uint32_t)cmd->size > c->mts)
        c->bad_sizes++;
      if (c->idx == 0 && c->writes == 3 && has(c->flags, 'e')) {
        code = ERROR_DISK_FULL;
        break;
      }
      n = (uint32_t)(random ? pwrite(c->fd, cmd->buffer, (size_t)cmd->size,
                                     cmd->position)
                            : write(c->fd, cmd->buffer, (size_t)cmd->size));
      if (n != cmd->size) code = ERROR_DISK_FULL, n = 0;
      c->bytes += n;
      break;
    case VDC_Read: {
      c->reads++;
      if (c->idx == 0 && c->reads == 2 && has(c->flags, 'E')) {
        code = ERROR_IO_DEVICE;
        break;
      }
      uint32_t want = (uint32_t)cmd->size;
      if (has(c->flags, 'o')) /* odd sizes, not multiples of anything */
        want = 1 + (uint32_t)rand_r(&seed) % want;
      while (n < want) {
        ssize_t k =
            random ? pread(c->fd, cmd->buffer + n, want - n, cmd->position + n)
                   : read(c->fd, cmd->buffer + n, want - n);
        if (k <= 0) break;
        n += (uint32_t)k;
      }
      if (n < want) code = ERROR_HANDLE_EOF; /* short last read */
      c->bytes += n;
      break;
    }
    case VDC_Flush:
      c->flushes++;
      fsync(c->fd);
      break;
    case VDC_Complete:
      c->completes++;
      break;
    case VDC_ClearError:
      break; /* required of every client */
    default:
      code = ERROR_NOT_SUPPORTED;
      break;
    }
    rc = vdi_dev_complete_command(c->dev, cmd, code, n, 0);
    if (rc != 0) {
      c->aborted = 1;
      break;
    }
  }
  return NULL;
}

static void dev_name(char *out, const char *set, int i) {
  if (i == 0)
    snprintf(out, 128, "%s", set);
  else
    snprintf(out, 128, "%s_%d", set, i);
}

static void stripe_path(char *out, const char *dir, const char *set, int i) {
  snprintf(out, 4200, "%s/%s.s%d", dir, set, i);
}

/* argv: mode set ndev dir flags ready-file stripe-set-name */
HELPER_IMPL(sql_vdi_client) {
  if (argc < 8) return 10;
  int backup = strcmp(argv[1], "backup") == 0;
  const char *name = argv[2], *dir = argv[4], *flags = argv[5];
  const char *stripes = argv[7];
  int n = atoi(argv[3]);
  vdi_set_t *set;
  VDConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.deviceCount = (uint32_t)n;
  if (has(flags, 'r')) cfg.features |= VDF_RandomAccess;
  if (has(flags, 'c')) cfg.features |= VDF_RequestComplete;
  if (vdi_set_new(&set) != 0) return 11;
  int rc = vdi_set_create(set, name, &cfg);
  if (rc != 0) {
    fprintf(stderr, "create: %s\n", vdi_error_name(rc));
    return 12;
  }
  FILE *rf = fopen(argv[6], "w");
  fclose(rf);
  int tries = 0;
  while ((rc = vdi_set_get_configuration(set, 1000, &cfg)) == VD_E_TIMEOUT &&
         ++tries < 20) {
  }
  if (rc != 0) {
    fprintf(stderr, "get_configuration: %s\n", vdi_error_name(rc));
    vdi_set_close(set);
    vdi_set_free(set);
    return rc == VD_E_ABORT ? 2 : 13;
  }
  struct cdev devs[VDI_MAX_DEVICES];
  pthread_t th[VDI_MAX_DEVICES];
  memset(devs, 0, sizeof devs);
  for (int i = 0; i < n; i++) {
    char dn[128], sp[4200];
    dev_name(dn, name, i);
    /* Restore with 'x' serves the stripes in reverse device order. */
    int file = (!backup && has(flags, 'x')) ? n - 1 - i : i;
    stripe_path(sp, dir, stripes, file);
    devs[i].set = set;
    devs[i].idx = i;
    devs[i].flags = flags;
    devs[i].bs = cfg.blockSize;
    devs[i].mts = cfg.maxTransferSize;
    devs[i].fd = backup ? open(sp, O_WRONLY | O_CREAT | O_TRUNC, 0644)
                        : open(sp, O_RDONLY);
    if (devs[i].fd < 0) return 14;
    rc = vdi_set_open_device(set, dn, &devs[i].dev);
    if (rc != 0) {
      fprintf(stderr, "open_device %s: %s\n", dn, vdi_error_name(rc));
      return rc == VD_E_ABORT ? 2 : 15;
    }
  }
  for (int i = 0; i < n; i++)
    pthread_create(&th[i], NULL, serve, &devs[i]);
  int closed = 0, aborted = 0, fl = 0, co = 0, wr = 0, rd = 0, bad = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(th[i], NULL);
    closed += devs[i].closed;
    aborted += devs[i].aborted;
    fl += devs[i].flushes;
    co += devs[i].completes;
    wr += devs[i].writes;
    rd += devs[i].reads;
    bad += devs[i].bad_sizes;
    close(devs[i].fd);
  }
  char res[4200];
  snprintf(res, sizeof res, "%s/%s.result", dir, name);
  rf = fopen(res, "w");
  fprintf(rf,
          "closed=%d aborted=%d flush=%d complete=%d writes=%d reads=%d "
          "bad=%d bs=%u mts=%u feat=%x\n",
          closed, aborted, fl, co, wr, rd, bad, cfg.blockSize,
          cfg.maxTransferSize, cfg.features);
  fclose(rf);
  vdi_set_close(set);
  vdi_set_free(set);
  return aborted ? 2 : (closed == n ? 0 : 16);
}

/* ------------------------------------------------------------ tests */

struct result {
  int closed, aborted, flush, complete, writes, reads, bad;
  unsigned bs, mts, feat;
};

static void read_result(const char *set, struct result *r) {
  char p[4200];
  snprintf(p, sizeof p, "%s/%s.result", test_tmpdir(), set);
  char *t = sql_slurp(p);
  memset(r, 0, sizeof *r);
  if (sscanf(t,
             "closed=%d aborted=%d flush=%d complete=%d writes=%d reads=%d "
             "bad=%d bs=%u mts=%u feat=%x",
             &r->closed, &r->aborted, &r->flush, &r->complete, &r->writes,
             &r->reads, &r->bad, &r->bs, &r->mts, &r->feat) != 10)
    TASK_FAIL_("bad result file: %s", t);
  free(t);
}

struct run {
  int client_rc, sql_rc;
  int64_t client_end, sql_end; /* ms */
  char *out;
};

/* Start the client, wait until its set exists, run vdisql with the
 * statement "<head> VIRTUAL_DEVICE=... <tail>", wait for both. */
static void run_vdi(struct run *r, const char *mode, const char *set, int n,
                    const char *flags, const char *stripes, const char *head,
                    const char *tail, int stmt_devices, int kill_client_ms) {
  char ready[4200], nbuf[16], sql[8192], outp[4200];
  snprintf(ready, sizeof ready, "%s/%s.ready", test_tmpdir(), set);
  snprintf(nbuf, sizeof nbuf, "%d", n);
  pid_t c = spawn_helper("sql_vdi_client", mode, set, nbuf, test_tmpdir(),
                         flags, ready, stripes, (const char *)NULL);
  int64_t t0 = now_ms();
  while (access(ready, F_OK) != 0) {
    if (now_ms() - t0 > 5000) TASK_FAIL_("client did not create the set");
    sleep_ms(2);
  }
  snprintf(sql, sizeof sql, "%s ", head);
  for (int i = 0; i < stmt_devices; i++) {
    char dn[128];
    dev_name(dn, set, i);
    snprintf(sql + strlen(sql), sizeof sql - strlen(sql),
             "%sVIRTUAL_DEVICE='%s'", i ? ", " : "", dn);
  }
  snprintf(sql + strlen(sql), sizeof sql - strlen(sql), " %s", tail);
  snprintf(outp, sizeof outp, "%s/%s.out", test_tmpdir(), set);
  const char *args[] = {"-b", "-S", test_tmpdir(), "-Q", sql, NULL};
  pid_t s = sql_vdisql_spawn(outp, args);
  r->client_rc = r->sql_rc = -1;
  int64_t start = now_ms(), killed_at = -1;
  while (r->client_rc < 0 || r->sql_rc < 0) {
    int st;
    if (kill_client_ms >= 0 && killed_at < 0 &&
        now_ms() - start >= kill_client_ms) {
      kill(c, SIGKILL);
      killed_at = now_ms();
    }
    if (r->client_rc < 0 && waitpid(c, &st, WNOHANG) == c) {
      r->client_rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      r->client_end = now_ms();
    }
    if (r->sql_rc < 0 && waitpid(s, &st, WNOHANG) == s) {
      r->sql_rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      r->sql_end = now_ms();
    }
    if (now_ms() - start > 20000) TASK_FAIL_("hang: %s", sql);
    sleep_ms(1);
  }
  r->out = sql_slurp(outp);
}

static char last_set[96]; /* the stripes of the last backup_restore */

static void backup_restore(int rows, int n, const char *bflags,
                           const char *rflags, const char *bopts,
                           const char *ropts) {
  char src[4200], dst[4200], set[96], set2[96], head[256], disks[20000];
  snprintf(src, sizeof src, "%s/vsrc.db", test_tmpdir());
  snprintf(dst, sizeof dst, "%s/vdst.db", test_tmpdir());
  sql_make_db(src, rows, 4096, 0, (unsigned)n);
  snprintf(set, sizeof set, "%s", unique_name("bk"));
  snprintf(last_set, sizeof last_set, "%s", set);
  struct run r;
  run_vdi(&r, "backup", set, n, bflags, set, "BACKUP DATABASE vsrc TO", bopts,
          n, -1);
  if (r.sql_rc != 0 || r.client_rc != 0)
    TASK_FAIL_("backup: vdisql %d client %d\n%s", r.sql_rc, r.client_rc, r.out);
  ASSERT(strstr(r.out, "BACKUP DATABASE successfully processed") != NULL);
  free(r.out);
  struct result res;
  read_result(set, &res);
  ASSERT_EQ(res.closed, n);
  ASSERT_EQ(res.bad, 0);
  ASSERT_GE(res.flush, n);
  ASSERT_EQ(res.complete, has(bflags, 'c') ? n : 0);
  ASSERT_EQ(!!(res.feat & VDF_CompleteEnabled), has(bflags, 'c'));
  ASSERT(res.feat & VDF_WriteMedia);
  /* The stripes the client stored are a valid backup set on disk too. */
  disks[0] = 0;
  for (int i = 0; i < n; i++) {
    char sp[4200];
    stripe_path(sp, test_tmpdir(), set, i);
    snprintf(disks + strlen(disks), sizeof disks - strlen(disks), "%sDISK='%s'",
             i ? ", " : "", sp);
  }
  char sql[20100], *out;
  snprintf(sql, sizeof sql, "RESTORE VERIFYONLY FROM %s", disks);
  if (sql_q(test_tmpdir(), sql, &out) != 0) TASK_FAIL_("%s", out);
  free(out);

  snprintf(set2, sizeof set2, "%s", unique_name("rs"));
  snprintf(head, sizeof head, "RESTORE DATABASE vdst FROM");
  run_vdi(&r, "restore", set2, n, rflags, set, head, ropts, n, -1);
  if (r.sql_rc != 0 || r.client_rc != 0)
    TASK_FAIL_("restore: vdisql %d client %d\n%s", r.sql_rc, r.client_rc,
               r.out);
  ASSERT(strstr(r.out, "RESTORE DATABASE successfully processed") != NULL);
  free(r.out);
  read_result(set2, &res);
  ASSERT_EQ(res.closed, n);
  ASSERT(res.feat & VDF_ReadMedia);
  ASSERT(!(res.feat & VDF_CompleteEnabled));
  long r1, r2;
  ASSERT_UEQ(sql_digest(src, &r1), sql_digest(dst, &r2));
  ASSERT_EQ(r1, rows);
  ASSERT(sql_integrity_ok(dst));
  unlink(dst);
}

TEST_IMPL_TIMEOUT(sql_vdi_roundtrip_one_device, 20) {
  backup_restore(3000, 1, "", "", "", "");
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_roundtrip_four_devices_complete, 20) {
  backup_restore(20000, 4, "c", "x", "WITH COMPRESSION, STATS=20", "");
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_roundtrip_disk_like, 20) {
  backup_restore(8000, 2, "rc", "r", "", "");
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_restore_odd_reads, 20) {
  /* Pipe-like and disk-like clients that return odd byte counts, and a
   * short last read completed with ERROR_HANDLE_EOF. */
  backup_restore(6000, 3, "", "o", "WITH MAXTRANSFERSIZE=65536",
                 "WITH MAXTRANSFERSIZE=131072, BUFFERCOUNT=9");
  backup_restore(6000, 2, "r", "ro", "", "WITH MAXTRANSFERSIZE=65536");
  return 0;
}

/* WITH ENCRYPTION through virtual devices: what the client stores is
 * ciphertext (no SQLite page, not even page 1's schema text), and the
 * restore through the devices gives the same rows. */
TEST_IMPL_TIMEOUT(sql_vdi_roundtrip_encrypted, 40) {
  char *out;
  const char *d = test_tmpdir();
  if (sql_q(d, "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'Vdi#key-1'",
            &out) != 0)
    TASK_FAIL_("%s", out);
  free(out);
  if (sql_q(d, "CREATE CERTIFICATE vc WITH SUBJECT = 'vdi'", &out) != 0)
    TASK_FAIL_("%s", out);
  free(out);
  const char *enc =
      "WITH ENCRYPTION (ALGORITHM = AES_256, SERVER CERTIFICATE = vc)";
  char opts[256];
  backup_restore(6000, 3, "c", "x", enc, "");
  snprintf(opts, sizeof opts, "%s, COMPRESSION, BLOCKSIZE=4096", enc);
  backup_restore(6000, 2, "rc", "ro", opts, "WITH MAXTRANSFERSIZE=65536");
  for (int i = 0; i < 2; i++) {
    char sp[4200];
    stripe_path(sp, d, last_set, i);
    int64_t n = sql_fsize(sp);
    char *t = sql_slurp(sp);
    ASSERT(n > 0 && t != NULL);
    ASSERT_EQ(n % 4096, 0); /* padded to the block size */
    ASSERT(memmem(t, (size_t)n, "CREATE TABLE t(", 15) == NULL);
    ASSERT(memmem(t, (size_t)n, "SQLite format 3", 15) == NULL);
    free(t);
  }
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_configuration_from_options, 20) {
  char src[4200], set[96];
  snprintf(src, sizeof src, "%s/vsrc.db", test_tmpdir());
  sql_make_db(src, 2000, 1024, 0, 3);
  snprintf(set, sizeof set, "%s", unique_name("cf"));
  struct run r;
  run_vdi(&r, "backup", set, 2, "", set, "BACKUP DATABASE vsrc TO",
          "WITH BLOCKSIZE=512, MAXTRANSFERSIZE=196608, BUFFERCOUNT=3", 2, -1);
  if (r.sql_rc != 0) TASK_FAIL_("%s", r.out);
  free(r.out);
  struct result res;
  read_result(set, &res);
  ASSERT_EQ(res.bs, 512);
  ASSERT_EQ(res.mts, 196608);
  ASSERT_EQ(res.bad, 0);
  /* Device count differs from the statement's VIRTUAL_DEVICE clauses. */
  snprintf(set, sizeof set, "%s", unique_name("cn"));
  run_vdi(&r, "backup", set, 2, "", set, "BACKUP DATABASE vsrc TO", "", 1, -1);
  ASSERT_EQ(r.sql_rc, 1);
  ASSERT(sql_has_msg(r.out, 3201) && sql_has_msg(r.out, 3013));
  ASSERT_EQ(r.client_rc, 2); /* the client learns: abort */
  free(r.out);
  /* A statement refused before any I/O still releases the client. */
  snprintf(set, sizeof set, "%s", unique_name("nd"));
  run_vdi(&r, "backup", set, 1, "", set, "BACKUP DATABASE nosuch TO", "", 1,
          -1);
  ASSERT_EQ(r.sql_rc, 1);
  ASSERT(sql_has_msg(r.out, 911));
  ASSERT_EQ(r.client_rc, 2);
  free(r.out);
  /* And so does a statement that does not even parse. */
  snprintf(set, sizeof set, "%s", unique_name("sx"));
  run_vdi(&r, "backup", set, 1, "", set, "BACKUP DATABASE vsrc TO",
          "WITH FROBNICATE", 1, -1);
  ASSERT_EQ(r.sql_rc, 1);
  ASSERT(sql_has_msg(r.out, 155));
  ASSERT_EQ(r.client_rc, 2);
  free(r.out);
  return 0;
}

static void prepare_src(void) {
  char src[4200];
  snprintf(src, sizeof src, "%s/vsrc.db", test_tmpdir());
  sql_make_db(src, 20000, 4096, 0, 5);
}

TEST_IMPL_TIMEOUT(sql_vdi_client_write_error, 20) {
  prepare_src();
  char set[96];
  snprintf(set, sizeof set, "%s", unique_name("we"));
  struct run r;
  run_vdi(&r, "backup", set, 2, "e", set, "BACKUP DATABASE vsrc TO",
          "WITH MAXTRANSFERSIZE=65536", 2, -1);
  ASSERT_EQ(r.sql_rc, 1);
  if (!sql_has_msg(r.out, 3202) || !strstr(r.out, "112("))
    TASK_FAIL_("%s", r.out);
  ASSERT(sql_has_msg(r.out, 3013));
  ASSERT_EQ(r.client_rc, 2);
  ASSERT_LT(r.sql_end - r.client_end, 1000);
  free(r.out);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_client_abort_is_prompt, 20) {
  prepare_src();
  char set[96];
  snprintf(set, sizeof set, "%s", unique_name("ab"));
  struct run r;
  run_vdi(&r, "backup", set, 4, "a", set, "BACKUP DATABASE vsrc TO",
          "WITH MAXTRANSFERSIZE=65536", 4, -1);
  ASSERT_EQ(r.sql_rc, 1);
  if (!sql_has_msg(r.out, 3202) || !sql_has_msg(r.out, 3013))
    TASK_FAIL_("%s", r.out);
  ASSERT_EQ(r.client_rc, 2);
  int64_t gap = r.sql_end - r.client_end;
  ASSERT_LT(gap < 0 ? -gap : gap, 1000);
  free(r.out);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_client_death_is_prompt, 20) {
  prepare_src();
  char set[96];
  snprintf(set, sizeof set, "%s", unique_name("kd"));
  struct run r;
  /* The client stops servicing device 0, vdisql blocks; then SIGKILL. */
  run_vdi(&r, "backup", set, 2, "h", set, "BACKUP DATABASE vsrc TO",
          "WITH MAXTRANSFERSIZE=65536", 2, 400);
  ASSERT_EQ(r.client_rc, 128 + SIGKILL);
  ASSERT_EQ(r.sql_rc, 1);
  ASSERT(sql_has_msg(r.out, 3202) && sql_has_msg(r.out, 3013));
  ASSERT_LT(r.sql_end - r.client_end, 1000);
  free(r.out);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_restore_read_error_keeps_db, 20) {
  char src[4200], set[96], set2[96];
  snprintf(src, sizeof src, "%s/vsrc.db", test_tmpdir());
  sql_make_db(src, 8000, 4096, 0, 6);
  snprintf(set, sizeof set, "%s", unique_name("b"));
  struct run r;
  run_vdi(&r, "backup", set, 2, "", set, "BACKUP DATABASE vsrc TO", "", 2, -1);
  ASSERT_EQ(r.sql_rc, 0);
  free(r.out);
  char keep[4200];
  snprintf(keep, sizeof keep, "%s/keep.db", test_tmpdir());
  sql_make_db(keep, 50, 4096, 0, 1);
  uint32_t c0, c1;
  int64_t s0 = sql_file_crc(keep, &c0);
  snprintf(set2, sizeof set2, "%s", unique_name("r"));
  run_vdi(&r, "restore", set2, 2, "E", set, "RESTORE DATABASE keep FROM",
          "WITH REPLACE, MAXTRANSFERSIZE=65536", 2, -1);
  ASSERT_EQ(r.sql_rc, 1);
  if (!sql_has_msg(r.out, 3203) || !sql_has_msg(r.out, 3013))
    TASK_FAIL_("%s", r.out);
  free(r.out);
  ASSERT_EQ(sql_file_crc(keep, &c1), s0);
  ASSERT_UEQ(c0, c1);
  /* Damage in a stripe served through a device: refused, db kept. */
  char sp[4200];
  stripe_path(sp, test_tmpdir(), set, 1);
  sql_flip(sp, sql_fsize(sp) / 2);
  snprintf(set2, sizeof set2, "%s", unique_name("d"));
  run_vdi(&r, "restore", set2, 2, "", set, "RESTORE DATABASE keep FROM",
          "WITH REPLACE", 2, -1);
  ASSERT_EQ(r.sql_rc, 1);
  ASSERT(sql_has_msg(r.out, 3189));
  free(r.out);
  ASSERT_EQ(sql_file_crc(keep, &c1), s0);
  ASSERT_UEQ(c0, c1);
  snprintf(set2, sizeof set2, "%s", unique_name("v"));
  run_vdi(&r, "restore", set2, 2, "", set, "RESTORE VERIFYONLY FROM", "", 2,
          -1);
  ASSERT_EQ(r.sql_rc, 1);
  ASSERT(sql_has_msg(r.out, 3189));
  free(r.out);
  return 0;
}

TEST_IMPL_TIMEOUT(sql_vdi_headeronly, 20) {
  char src[4200], set[96], set2[96];
  snprintf(src, sizeof src, "%s/vsrc.db", test_tmpdir());
  sql_make_db(src, 3000, 4096, 0, 6);
  snprintf(set, sizeof set, "%s", unique_name("h"));
  struct run r;
  run_vdi(&r, "backup", set, 3, "", set, "BACKUP DATABASE vsrc TO",
          "WITH NAME='vname', DESCRIPTION='vdesc'", 3, -1);
  ASSERT_EQ(r.sql_rc, 0);
  free(r.out);
  snprintf(set2, sizeof set2, "%s", unique_name("hh"));
  run_vdi(&r, "restore", set2, 3, "x", set, "RESTORE HEADERONLY FROM", "", 3,
          -1);
  ASSERT_EQ(r.sql_rc, 0);
  ASSERT_EQ(r.client_rc, 0);
  if (!strstr(r.out, "vname\tvdesc\t1\t0\t1\t7\t")) TASK_FAIL_("%s", r.out);
  free(r.out);
  return 0;
}
