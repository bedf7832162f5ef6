/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-app-cli.c - `vdi` as a command: usage errors (exit 2, one line that
 * names the problem), --help, and the manifest checks that restore, verify
 * and list make before any engine runs (hand-made manifests, so these run
 * without vdisql: --vdisql points at a program that must never be reached).
 */
#include "task.h"
#include "test-app-util.h"
#include "vstream.h"

#include "crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    if (*s == '\n') n++;
  return n;
}

/* One usage error: exit 2, exactly one line, mentioning `needle`. */
static void expect_usage(const char *needle, const char *const *args) {
  char *out = NULL;
  int rc = app_t_run(&out, NULL, args);
  if (rc != 2 || count_lines(out) != 1 || !strstr(out, needle)) {
    app_t_show("vdi output", out);
    TASK_FAIL_("expected exit 2 and one line naming '%s'; got exit %d", needle,
               rc);
  }
  free(out);
}

TEST_IMPL(app_usage_errors) {
  expect_usage("no command", (const char *const[]){NULL});
  expect_usage("unknown command 'bakup'", ARGS("bakup", "db"));
  expect_usage("no database name", ARGS("backup", "--to", "/tmp/x"));
  expect_usage("--to", ARGS("backup", "db"));
  expect_usage("--stripes",
               ARGS("backup", "db", "--to", "/x", "--stripes", "0"));
  expect_usage("--stripes",
               ARGS("backup", "db", "--to", "/x", "--stripes", "65"));
  expect_usage("--stripes",
               ARGS("backup", "db", "--to", "/x", "--stripes", "4x"));
  expect_usage("exactly one stripe",
               ARGS("backup", "db", "--to", "-", "--stripes", "2"));
  expect_usage("invalid database name", ARGS("backup", "a;rm", "--to", "/x"));
  expect_usage("invalid database name",
               ARGS("restore", "db", "--from", "/x", "--as", "../evil"));
  expect_usage("--from", ARGS("restore", "db"));
  expect_usage("--replace", ARGS("backup", "db", "--to", "/x", "--replace"));
  expect_usage("--compress",
               ARGS("restore", "db", "--from", "/x", "--compress"));
  expect_usage("unknown option '--frobnicate'",
               ARGS("list", "--from", "/x", "--frobnicate"));
  expect_usage("--instance needs a value",
               ARGS("backup", "db", "--to", "/x", "--instance"));
  expect_usage("unexpected argument 'two'",
               ARGS("backup", "one", "two", "--to", "/x"));
  expect_usage("multiple of 65536", ARGS("backup", "db", "--to", "/x",
                                         "--max-transfer-size", "100000"));
  expect_usage(
      "--max-transfer-size must be 65536..4194304",
      ARGS("backup", "db", "--to", "/x", "--max-transfer-size", "8388608"));
  expect_usage("--buffer-count must be 1..4096",
               ARGS("backup", "db", "--to", "/x", "--buffer-count", "0"));
  expect_usage("--compress-level is low, medium or high",
               ARGS("backup", "db", "--to", "/x", "--compress-level", "fast"));
  expect_usage("--buffer-count is an option of",
               ARGS("list", "--from", "/x", "--buffer-count", "4"));
  expect_usage("--compress takes no value",
               ARGS("backup", "db", "--to", "/x", "--compress=yes"));
  return 0;
}

TEST_IMPL(app_help) {
  const char *cmds[] = {"backup", "restore",   "verify", "list",
                        "expire", "databases", "check"};
  for (int i = 0; i < 7; i++) {
    char *out = NULL;
    int rc = app_t_run(&out, NULL, ARGS(cmds[i], "--help"));
    ASSERT_EQ(rc, 0);
    char want[64];
    snprintf(want, sizeof want, "usage: vdi %s", cmds[i]);
    if (!strstr(out, want)) app_t_show("help", out);
    ASSERT(strstr(out, want) != NULL);
    free(out);
  }
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("--help")), 0);
  ASSERT(strstr(out, "backup") && strstr(out, "restore") &&
         strstr(out, "verify") && strstr(out, "list"));
  free(out);
  return 0;
}

/* A stripe file of pseudo-random bytes and a manifest that describes it
 * the way vdi writes one. */
static void write_file(const char *path, const void *buf, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, buf, n), (ssize_t)n);
  close(fd);
}

static void make_fake_backup(const char *dir, const char *db, int nstripes) {
  char path[4200];
  char json[8192];
  int off = snprintf(json, sizeof json,
                     "{\n  \"format\": \"openvdi-backup-manifest\",\n"
                     "  \"format_version\": 1,\n  \"tool\": \"vdi test\",\n"
                     "  \"database\": \"%s\",\n  \"set\": \"vdi-test\",\n"
                     "  \"compression\": \"none\",\n"
                     "  \"started\": \"2024-01-01T00:00:00Z\",\n"
                     "  \"finished\": \"2024-01-01T00:00:01Z\",\n"
                     "  \"seconds\": 1.0,\n  \"database_bytes\": 0,\n",
                     db);
  unsigned long long total = 0;
  char stripes[4096];
  int soff = 0;
  for (int i = 0; i < nstripes; i++) {
    size_t n = 10000 + (size_t)i * 777;
    unsigned char *buf = malloc(n);
    for (size_t k = 0; k < n; k++)
      buf[k] = (unsigned char)(k * 131 + i);
    /* A real stream header: vdi checks it against the manifest. */
    vs_header h;
    memset(&h, 0, sizeof h);
    memset(h.set_id, 0x5a, sizeof h.set_id);
    h.stripe_index = (uint32_t)i;
    h.stripe_count = (uint32_t)nstripes;
    h.page_size = 4096;
    h.pages_per_block = 1;
    h.device_type = VS_DEVICE_VIRTUAL;
    h.backup_type = VS_TYPE_DATABASE;
    snprintf(h.database, sizeof h.database, "%s", db);
    vs_header_encode(&h, buf);
    snprintf(path, sizeof path, "%s/%s.stripe%d.vdibak", dir, db, i);
    write_file(path, buf, n);
    uint32_t crc = crc32c_update(0, buf, n);
    free(buf);
    total += n;
    soff += snprintf(stripes + soff, sizeof stripes - (size_t)soff,
                     "%s    {\"index\": %d, \"file\": \"%s.stripe%d.vdibak\", "
                     "\"bytes\": %zu, \"crc32c\": \"%08x\"}",
                     i ? ",\n" : "", i, db, i, n, (unsigned)crc);
  }
  snprintf(json + off, sizeof json - (size_t)off,
           "  \"total_bytes\": %llu,\n  \"stripes\": [\n%s\n  ]\n}\n", total,
           stripes);
  snprintf(path, sizeof path, "%s/%s.manifest.json", dir, db);
  write_file(path, json, strlen(json));
}

TEST_IMPL(app_list_reads_manifest) {
  const char *dir = test_tmpdir();
  make_fake_backup(dir, "alpha", 3);
  make_fake_backup(dir, "beta", 1);
  char *out = NULL;
  int rc = app_t_run(&out, NULL, ARGS("list", "--from", dir));
  if (rc != 0) app_t_show("list", out);
  ASSERT_EQ(rc, 0);
  ASSERT(strstr(out, "alpha") && strstr(out, "3 stripes"));
  ASSERT(strstr(out, "beta") && strstr(out, "1 stripe "));
  ASSERT(strstr(out, "alpha.stripe2.vdibak"));
  free(out);

  /* A stripe of the wrong size makes list report the damage. */
  char path[4200];
  snprintf(path, sizeof path, "%s/alpha.stripe1.vdibak", dir);
  ASSERT_EQ(truncate(path, 100), 0);
  rc = app_t_run(&out, NULL, ARGS("list", "--from", dir));
  ASSERT_EQ(rc, 4); /* damaged */
  ASSERT(strstr(out, "stripe 1") && strstr(out, "damaged"));
  free(out);
  return 0;
}

TEST_IMPL(app_no_manifest_refused) {
  const char *dir = test_tmpdir();
  /* Stripe files alone (as a failed backup would never leave them, but a
   * user might copy them) are not a backup. */
  char path[4200];
  snprintf(path, sizeof path, "%s/db.stripe0.vdibak", dir);
  write_file(path, "data", 4);
  char *out = NULL;
  int rc = app_t_run(&out, NULL, ARGS("list", "--from", dir));
  ASSERT_EQ(rc, 3); /* not found */
  ASSERT(strstr(out, "no complete backup in") != NULL);
  free(out);
  rc = app_t_run(&out, NULL, ARGS("verify", "--from", dir));
  ASSERT_EQ(rc, 3);
  ASSERT(strstr(out, "no complete backup in") != NULL);
  free(out);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "db", "--from", dir, "--vdisql", "/bin/true"));
  ASSERT_EQ(rc, 3);
  ASSERT(strstr(out, "no complete backup of 'db'") != NULL);
  free(out);
  return 0;
}

/* A flipped byte is caught by the manifest's CRC-32C: verify exits 4
 * (damaged) naming the stripe.  The engine given here fails at once,
 * before it reads a byte: verify then reads the set in full itself, a
 * restore says the engine failed (a real engine that stops on a damaged
 * block has read it, and the restore then reads the set to say why:
 * app_e2e_flipped_byte_refused, which also shows that nothing is
 * replaced). */
TEST_IMPL(app_flipped_byte_caught) {
  const char *dir = test_tmpdir();
  make_fake_backup(dir, "gamma", 2);
  char engine[4200], marker[4200], path[4200];
  snprintf(marker, sizeof marker, "%s/engine-ran", dir);
  snprintf(engine, sizeof engine, "%s/fake-vdisql", dir);
  FILE *f = fopen(engine, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "#!/bin/sh\ntouch '%s'\nexit 1\n", marker);
  fclose(f);
  ASSERT_EQ(chmod(engine, 0755), 0);

  snprintf(path, sizeof path, "%s/gamma.stripe1.vdibak", dir);
  app_t_flip_byte(path, 4321);
  char *out = NULL;
  int rc =
      app_t_run(&out, NULL, ARGS("verify", "--from", dir, "--vdisql", engine));
  ASSERT_EQ(rc, 4); /* damaged */
  ASSERT(strstr(out, "stripe 1") && strstr(out, "CRC-32C"));
  free(out);
  rc = app_t_run(&out, NULL,
                 ARGS("restore", "gamma", "--from", dir, "--as", "g2",
                      "--vdisql", engine));
  ASSERT_EQ(rc, 5); /* the engine failed */
  ASSERT(strstr(out, "damaged") == NULL);
  free(out);

  /* With the byte put back, the checks pass and the engine is reached. */
  app_t_flip_byte(path, 4321);
  rc = app_t_run(&out, NULL, ARGS("verify", "--from", dir, "--vdisql", engine));
  ASSERT_EQ(rc, 5); /* the fake engine fails: "engine failed" */
  free(out);
  ASSERT(app_t_exists(dir, "engine-ran"));
  return 0;
}

TEST_IMPL(app_malformed_manifest) {
  const char *dir = test_tmpdir();
  const char *bad[] = {
      "{",
      "[]",
      "{\"format\": \"something-else\", \"format_version\": 1}",
      "{\"format\": \"openvdi-backup-manifest\", \"format_version\": 1, "
      "\"database\": \"db\"}",
      /* jansson, strictly: a NUL in a string, a real count. */
      "{\"format\": \"openvdi-backup-manifest\\u0000\"}",
      "{\"format\": \"openvdi-backup-manifest\", \"format_version\": 1.0}",
  };
  char path[4200];
  snprintf(path, sizeof path, "%s/db.manifest.json", dir);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(path, bad[i], strlen(bad[i]));
    char *out = NULL;
    int rc = app_t_run(
        &out, NULL,
        ARGS("restore", "db", "--from", dir, "--vdisql", "/bin/true"));
    if (rc != 4 || !strstr(out, "manifest")) app_t_show("restore", out);
    ASSERT_EQ(rc, 4); /* damaged */
    ASSERT(strstr(out, "manifest") != NULL);
    free(out);
  }
  /* A stripe file name that leaves the directory is refused. */
  make_fake_backup(dir, "db", 1);
  char *text = NULL;
  {
    FILE *f = fopen(path, "r");
    ASSERT_NOT_NULL(f);
    text = calloc(1, 65536);
    ASSERT(fread(text, 1, 65535, f) > 0);
    fclose(f);
  }
  char *p = strstr(text, "\"db.stripe0.vdibak\"");
  ASSERT_NOT_NULL(p);
  char fixed[70000];
  snprintf(fixed, sizeof fixed, "%.*s\"../db.stripe0.vdibak\"%s",
           (int)(p - text), text, p + strlen("\"db.stripe0.vdibak\""));
  write_file(path, fixed, strlen(fixed));
  free(text);
  char *out = NULL;
  int rc = app_t_run(&out, NULL, ARGS("list", "--from", dir));
  ASSERT_EQ(rc, 4); /* damaged */
  ASSERT(strstr(out, "bad entry") != NULL);
  free(out);
  /* A key twice in a good manifest (the last would win): refused, so no
   * two readers can see two manifests. */
  make_fake_backup(dir, "db", 1);
  {
    FILE *f = fopen(path, "r");
    ASSERT_NOT_NULL(f);
    text = calloc(1, 65536);
    ASSERT(fread(text, 1, 65535, f) > 0);
    fclose(f);
  }
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", dir)), 0);
  free(out);
  snprintf(fixed, sizeof fixed, "{\"database\": \"evil\", %s", text + 1);
  write_file(path, fixed, strlen(fixed));
  free(text);
  rc = app_t_run(&out, NULL, ARGS("list", "--from", dir));
  if (rc != 4 || !strstr(out, "duplicate")) app_t_show("list", out);
  ASSERT_EQ(rc, 4);
  ASSERT(strstr(out, "duplicate") != NULL);
  free(out);
  return 0;
}
