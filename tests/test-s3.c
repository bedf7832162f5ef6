/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test-s3.c - the S3 client (tools/vdi/s3.c) against a real store: the
 * one-node Ceph RADOS Gateway of tools/s3-test-server.sh (started once per
 * `make check` by tests/check.sh, or here on first use).  Objects, ranges,
 * listings page by page, keys that need escaping, streamed multipart
 * uploads of 1 and 4 sealed stripes written by separate processes with the
 * manifest last, a writer killed mid-upload and its parts cleaned up, a
 * damaged or cut object refused, wrong credentials and a missing bucket
 * each said in one line, the AWS CLI's profile files and virtual-host
 * addressing.  Then `vdi` with s3:// targets across real processes: round
 * trips, an S3 repository of sets with history (list, restore of the
 * newest or --set, expire dry run and --delete, the old one-set layout),
 * differential and log chains, a killed backup, a damaged object, a
 * backup sealed to a public key, and a gateway that stalls mid-backup or
 * never answers (a TCP relay in front of the real one that stops
 * relaying: `vdi` gives up in a stated bound).  The tests skip only when
 * the script says this machine lacks Ceph.
 */
#include "task.h"
#include "test-app-util.h"
#include "test-sql-util.h"

#include "../tools/vdi/s3.h"
#include "../tools/vdi/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* tools/s3-test-server.sh of the tree run-tests was built in. */
static void server_script(char *out, size_t n) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", build_path("vdi"));
  for (int up = 0; up < 5; up++) {
    char *slash = strrchr(dir, '/');
    if (!slash) break;
    *slash = 0;
    snprintf(out, n, "%s/tools/s3-test-server.sh", dir);
    if (access(out, X_OK) == 0) return;
  }
  TASK_FAIL_("tools/s3-test-server.sh not found above %s", build_path("vdi"));
}

/* The store's environment (AWS_*, VDI_S3_TEST_BUCKET): from ours when
 * tests/check.sh exported it, else from the script (which starts the
 * store if it is not running). */
static const char *s3_env(void) {
  if (!getenv("VDI_S3_TEST_BUCKET") || !getenv("AWS_ENDPOINT_URL")) {
    char script[4200], cmd[4300];
    server_script(script, sizeof script);
    snprintf(cmd, sizeof cmd, "'%s' env", script);
    FILE *f = popen(cmd, "r");
    ASSERT_NOT_NULL(f);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
      char name[64], value[900];
      if (sscanf(line, "export %63[A-Z0-9_]='%899[^']'", name, value) == 2)
        setenv(name, value, 1);
    }
    int st = pclose(f);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
      fprintf(stderr, "skip: this machine lacks Ceph (see above)\n");
      exit(TEST_SKIP);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      TASK_FAIL_("%s env failed (status %d)", script, st);
  }
  return getenv("VDI_S3_TEST_BUCKET");
}

static struct s3_client *client(struct s3_config *cfg) {
  char err[256];
  if (s3_config_load(cfg, err, sizeof err) != 0) TASK_FAIL_("%s", err);
  struct s3_client *c = s3_client_new(cfg);
  ASSERT_NOT_NULL(c);
  return c;
}

/* A key prefix of its own for each test. */
static const char *prefix(void) {
  static char p[128];
  snprintf(p, sizeof p, "%s/", unique_name("s3"));
  return p;
}

static void fill(unsigned char *p, size_t n, uint64_t *state) {
  for (size_t i = 0; i < n; i++) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = (unsigned char)(*state >> 56);
  }
}

/* The stream a stripe writer produced, regenerated and compared as it is
 * opened. */
struct expect {
  uint64_t state, seen;
  int mismatch;
};

static int check_plain(void *arg, const void *buf, size_t n) {
  struct expect *e = arg;
  unsigned char want[65536];
  const unsigned char *p = buf;
  while (n > 0) {
    size_t k = n < sizeof want ? n : sizeof want;
    fill(want, k, &e->state);
    if (memcmp(want, p, k) != 0) e->mismatch = 1;
    e->seen += k;
    p += k;
    n -= k;
  }
  return 0;
}

static int to_reader(void *arg, const void *buf, size_t n) {
  return seal_feed(arg, buf, n);
}

static void key_path(char *out, size_t n) {
  snprintf(out, n, "%s/key", test_tmpdir());
  if (access(out, F_OK) != 0) {
    char err[256];
    ASSERT_EQ(seal_keygen(out, err, sizeof err), 0);
  }
}

/* Reads a sealed object back; the opener's result, *seen its bytes. */
static int read_sealed(struct s3_client *c, const char *bucket, const char *key,
                       const char *keyfile, uint64_t seed, uint64_t *seen,
                       int *mismatch, char *why, size_t wlen) {
  struct seal_key k;
  char err[256];
  ASSERT_EQ(seal_key_load(&k, keyfile, err, sizeof err), 0);
  struct expect e = {.state = seed};
  struct seal_reader *r;
  ASSERT_EQ(seal_reader_open(&r, &k, check_plain, &e), 0);
  int rc = s3_get(c, bucket, key, 0, 0, to_reader, r);
  if (rc == 0) rc = seal_reader_finish(r);
  snprintf(why, wlen, "%s",
           rc == -EBADMSG || rc == -EKEYREJECTED ? seal_reader_error(r)
                                                 : s3_error(c));
  seal_reader_free(r);
  *seen = e.seen;
  *mismatch = e.mismatch;
  return rc;
}

/* A stripe writer: seals `size` generated bytes (seed) into a streamed
 * multipart upload of 5 MiB parts, 2 in flight.  With a marker path it
 * stops after `size` bytes, creates the marker and waits to be killed. */
static int upload_out(void *arg, const void *buf, size_t n) {
  return s3_upload_write(arg, buf, n);
}

HELPER_IMPL(s3_stripe_writer) {
  /* argv: bucket key size seed keyfile [marker] */
  s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  s3_client_free(c);
  const char *bucket = argv[1], *key = argv[2];
  uint64_t size = strtoull(argv[3], NULL, 10);
  uint64_t state = strtoull(argv[4], NULL, 10);
  const char *marker = argc > 6 ? argv[6] : NULL;
  struct seal_key k;
  char err[256];
  if (seal_key_load(&k, argv[5], err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  struct s3_upload *u;
  ASSERT_EQ(s3_upload_open(&u, &cfg, bucket, key, 5u << 20, 2), 0);
  struct seal_writer *w;
  ASSERT_EQ(seal_writer_open(&w, &k, upload_out, u), 0);
  static unsigned char buf[1 << 20];
  uint64_t left = size;
  int rc = 0;
  while (left > 0 && rc == 0) {
    size_t m = left < sizeof buf ? (size_t)left : sizeof buf;
    fill(buf, m, &state);
    rc = seal_write(w, buf, m);
    left -= m;
  }
  if (marker && rc == 0) {
    /* The parts so far are sent (2 buffers of 5 MiB: the writer waited
     * for the first ones); now the process is killed. */
    int fd = open(marker, O_WRONLY | O_CREAT, 0600);
    close(fd);
    for (;;)
      pause();
  }
  if (rc == 0) rc = seal_writer_finish(w);
  if (rc == 0) rc = s3_upload_finish(u);
  if (rc != 0) {
    fprintf(stderr, "stripe writer: %d %s\n", rc, s3_upload_error(u));
    s3_upload_abort(u);
  }
  seal_writer_free(w);
  s3_upload_free(u);
  return rc == 0 ? 0 : 1;
}

static int count_upload(void *arg, const char *key, const char *id) {
  (void)key;
  (void)id;
  (*(int *)arg)++;
  return 0;
}

struct names {
  char keys[64][256];
  uint64_t sizes[64];
  int n;
};

static int add_name(void *arg, const char *key, uint64_t size) {
  struct names *nm = arg;
  if (nm->n < 64) {
    snprintf(nm->keys[nm->n], sizeof nm->keys[0], "%s", key);
    nm->sizes[nm->n] = size;
  }
  nm->n++;
  return 0;
}

/* How many multipart uploads are open under pre. */
static int uploads_open(struct s3_client *c, const char *bucket,
                        const char *pre) {
  int n = 0;
  ASSERT_EQ(s3_mpu_list(c, bucket, pre, count_upload, &n), 0);
  return n;
}

/* How many objects there are under pre. */
static int objects(struct s3_client *c, const char *bucket, const char *pre) {
  struct names nm = {0};
  ASSERT_EQ(s3_list(c, bucket, pre, add_name, &nm), 0);
  return nm.n;
}

/* A backup of n stripes: n writer processes at once, then the manifest;
 * then each stripe read back, opened and compared. */
static void stripes_round_trip(int n, uint64_t size) {
  const char *bucket = s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  const char *pre = prefix();
  char keyfile[4200];
  key_path(keyfile, sizeof keyfile);
  pid_t pids[8];
  char keys[8][300], sizes[32], seeds[8][32];
  snprintf(sizes, sizeof sizes, "%llu", (unsigned long long)size);
  for (int i = 0; i < n; i++) {
    snprintf(keys[i], sizeof keys[i], "%sdb.stripe%d.vdibak", pre, i);
    snprintf(seeds[i], sizeof seeds[i], "%d", 1000 + i);
    pids[i] = spawn_helper("s3_stripe_writer", bucket, keys[i], sizes, seeds[i],
                           keyfile, NULL);
  }
  for (int i = 0; i < n; i++)
    ASSERT_EQ(wait_helper(pids[i]), 0);
  /* The manifest last: a backup without one is not a backup. */
  char manifest[256];
  snprintf(manifest, sizeof manifest, "{\"stripes\":%d,\"bytes\":%llu}\n", n,
           (unsigned long long)size);
  char mkey[300];
  snprintf(mkey, sizeof mkey, "%smanifest.json", pre);
  ASSERT_EQ(s3_put(c, bucket, mkey, manifest, strlen(manifest)), 0);

  struct names nm = {0};
  ASSERT_EQ(s3_list(c, bucket, pre, add_name, &nm), 0);
  ASSERT_EQ(nm.n, n + 1);
  for (int i = 0; i < n; i++) {
    uint64_t osize = 0;
    ASSERT_EQ(s3_head(c, bucket, keys[i], &osize), 0);
    ASSERT_UEQ(osize, seal_sealed_size(size));
    uint64_t seen;
    int mismatch;
    char why[512];
    ASSERT_EQ(read_sealed(c, bucket, keys[i], keyfile, 1000 + (uint64_t)i,
                          &seen, &mismatch, why, sizeof why),
              0);
    ASSERT_UEQ(seen, size);
    ASSERT_EQ(mismatch, 0);
  }
  struct t_sink m = {0};
  ASSERT_EQ(s3_get(c, bucket, mkey, 0, 0, t_sink_write, &m), 0);
  ASSERT_UEQ(m.n, strlen(manifest));
  ASSERT_MEM_EQ(m.p, manifest, m.n);
  free(m.p);
  /* Nothing left half-done. */
  ASSERT_EQ(uploads_open(c, bucket, pre), 0);
  s3_client_free(c);
}

TEST_IMPL_TIMEOUT(s3_round_trip_1_stripe, 120) {
  stripes_round_trip(1, (12u << 20) + 12345); /* 3 parts */
  return 0;
}

TEST_IMPL_TIMEOUT(s3_round_trip_4_stripes, 120) {
  stripes_round_trip(4, (6u << 20) + 777); /* 2 parts each */
  return 0;
}

TEST_IMPL_TIMEOUT(s3_objects, 90) {
  const char *bucket = s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  const char *pre = prefix();
  /* A key that needs escaping. */
  char key[300];
  snprintf(key, sizeof key, "%sa b+c%%d=e&f/é~x.bin", pre);
  unsigned char data[100000];
  uint64_t st = 5;
  fill(data, sizeof data, &st);
  ASSERT_EQ(s3_put(c, bucket, key, data, sizeof data), 0);
  uint64_t size = 0;
  ASSERT_EQ(s3_head(c, bucket, key, &size), 0);
  ASSERT_UEQ(size, sizeof data);
  struct t_sink all = {0}, part = {0}, tail = {0};
  ASSERT_EQ(s3_get(c, bucket, key, 0, 0, t_sink_write, &all), 0);
  ASSERT_UEQ(all.n, sizeof data);
  ASSERT_MEM_EQ(all.p, data, sizeof data);
  ASSERT_EQ(s3_get(c, bucket, key, 1000, 5000, t_sink_write, &part), 0);
  ASSERT_UEQ(part.n, 5000);
  ASSERT_MEM_EQ(part.p, data + 1000, 5000);
  ASSERT_EQ(s3_get(c, bucket, key, 99990, 0, t_sink_write, &tail), 0);
  ASSERT_UEQ(tail.n, 10);
  ASSERT_MEM_EQ(tail.p, data + 99990, 10);
  free(all.p);
  free(part.p);
  free(tail.p);
  /* Listing page by page (3 keys a page), in key order. */
  for (int i = 0; i < 7; i++) {
    char k[300];
    snprintf(k, sizeof k, "%slist/%02d", pre, i);
    ASSERT_EQ(s3_put(c, bucket, k, "x", 1), 0);
  }
  c = (s3_client_free(c), NULL);
  cfg.list_max_keys = 3;
  c = s3_client_new(&cfg);
  struct names nm = {0};
  char lp[300];
  snprintf(lp, sizeof lp, "%slist/", pre);
  ASSERT_EQ(s3_list(c, bucket, lp, add_name, &nm), 0);
  ASSERT_EQ(nm.n, 7);
  for (int i = 0; i < 7; i++) {
    char k[300];
    snprintf(k, sizeof k, "%slist/%02d", pre, i);
    ASSERT_STR_EQ(nm.keys[i], k);
    ASSERT_UEQ(nm.sizes[i], 1);
  }
  memset(&nm, 0, sizeof nm);
  ASSERT_EQ(s3_list(c, bucket, pre, add_name, &nm), 0);
  ASSERT_EQ(nm.n, 8);
  ASSERT_STR_EQ(nm.keys[0], key);
  /* Delete; then it is gone. */
  ASSERT_EQ(s3_delete(c, bucket, key), 0);
  ASSERT_EQ(s3_head(c, bucket, key, &size), -ENOENT);
  struct t_sink none = {0};
  ASSERT_EQ(s3_get(c, bucket, key, 0, 0, t_sink_write, &none), -ENOENT);
  fprintf(stderr, "missing key: %s\n", s3_error(c));
  ASSERT(strstr(s3_error(c), "NoSuchKey"));
  s3_client_free(c);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_killed_upload_cleanup, 120) {
  const char *bucket = s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  const char *pre = prefix();
  char keyfile[4200], marker[4200], key[300];
  key_path(keyfile, sizeof keyfile);
  snprintf(marker, sizeof marker, "%s/marker", test_tmpdir());
  snprintf(key, sizeof key, "%sdb.stripe0.vdibak", pre);
  /* 16 MiB written: 3 parts full, the first ones sent. */
  pid_t pid = spawn_helper("s3_stripe_writer", bucket, key, "16777216", "1",
                           keyfile, marker, NULL);
  int64_t end = now_ms() + 60000;
  while (access(marker, F_OK) != 0 && now_ms() < end)
    sleep_ms(20);
  ASSERT_EQ(access(marker, F_OK), 0);
  ASSERT_EQ(uploads_open(c, bucket, pre), 1);
  kill(pid, SIGKILL);
  ASSERT_EQ(wait_helper(pid), 128 + SIGKILL);
  /* The killed writer left its parts, and no object. */
  uint64_t size;
  ASSERT_EQ(s3_head(c, bucket, key, &size), -ENOENT);
  ASSERT_EQ(uploads_open(c, bucket, pre), 1);
  /* Cleaning up aborts it: no orphan parts. */
  int n = 0;
  ASSERT_EQ(s3_mpu_cleanup(c, bucket, pre, &n), 0);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(uploads_open(c, bucket, pre), 0);
  ASSERT_EQ(objects(c, bucket, pre), 0);
  s3_client_free(c);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_damaged_object, 90) {
  const char *bucket = s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  const char *pre = prefix();
  char keyfile[4200], key[300];
  key_path(keyfile, sizeof keyfile);
  snprintf(key, sizeof key, "%sdb.stripe0.vdibak", pre);
  /* Smaller than a part: the upload is one PUT. */
  uint64_t size = 300000;
  pid_t pid = spawn_helper("s3_stripe_writer", bucket, key, "300000", "42",
                           keyfile, NULL);
  ASSERT_EQ(wait_helper(pid), 0);
  uint64_t seen;
  int mismatch;
  char why[512];
  ASSERT_EQ(read_sealed(c, bucket, key, keyfile, 42, &seen, &mismatch, why,
                        sizeof why),
            0);
  ASSERT_UEQ(seen, size);
  struct t_sink obj = {0};
  ASSERT_EQ(s3_get(c, bucket, key, 0, 0, t_sink_write, &obj), 0);
  /* One byte changed in the store. */
  obj.p[obj.n / 2] ^= 0x10;
  ASSERT_EQ(s3_put(c, bucket, key, obj.p, obj.n), 0);
  ASSERT_EQ(read_sealed(c, bucket, key, keyfile, 42, &seen, &mismatch, why,
                        sizeof why),
            -EBADMSG);
  fprintf(stderr, "damaged: %s\n", why);
  ASSERT(strstr(why, "damaged"));
  /* Cut short in the store. */
  obj.p[obj.n / 2] ^= 0x10;
  ASSERT_EQ(s3_put(c, bucket, key, obj.p, obj.n - 100), 0);
  ASSERT_EQ(read_sealed(c, bucket, key, keyfile, 42, &seen, &mismatch, why,
                        sizeof why),
            -EBADMSG);
  fprintf(stderr, "cut: %s\n", why);
  ASSERT(strstr(why, "truncated"));
  /* Read with another key: named as such. */
  char other[4200], err[256];
  snprintf(other, sizeof other, "%s/other", test_tmpdir());
  ASSERT_EQ(seal_keygen(other, err, sizeof err), 0);
  ASSERT_EQ(s3_put(c, bucket, key, obj.p, obj.n), 0);
  ASSERT_EQ(
      read_sealed(c, bucket, key, other, 42, &seen, &mismatch, why, sizeof why),
      -EKEYREJECTED);
  ASSERT_UEQ(seen, 0);
  free(obj.p);
  s3_client_free(c);
  return 0;
}

static void one_line(const char *msg) {
  fprintf(stderr, "%s\n", msg);
  ASSERT(msg[0] != 0);
  ASSERT(strchr(msg, '\n') == NULL);
}

TEST_IMPL_TIMEOUT(s3_wrong_credentials, 90) {
  const char *bucket = s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  s3_client_free(c);
  /* Wrong failures are not retried: fast. */
  struct s3_config bad = cfg;
  bad.secret_key[0] ^= 1;
  c = s3_client_new(&bad);
  int64_t t0 = now_ms();
  ASSERT_EQ(s3_put(c, bucket, "x", "x", 1), -EACCES);
  one_line(s3_error(c));
  ASSERT(strstr(s3_error(c), "SignatureDoesNotMatch"));
  ASSERT(strstr(s3_error(c), "AWS_SECRET_ACCESS_KEY"));
  struct names nm = {0};
  ASSERT_EQ(s3_list(c, bucket, "", add_name, &nm), -EACCES);
  ASSERT(strstr(s3_error(c), "SignatureDoesNotMatch"));
  ASSERT_LT(now_ms() - t0, 5000);
  s3_client_free(c);
  bad = cfg;
  snprintf(bad.access_key, sizeof bad.access_key, "NOSUCHKEY0000000000X");
  c = s3_client_new(&bad);
  ASSERT_EQ(s3_put(c, bucket, "x", "x", 1), -EACCES);
  one_line(s3_error(c));
  ASSERT(strstr(s3_error(c), "InvalidAccessKeyId"));
  ASSERT(strstr(s3_error(c), "AWS_ACCESS_KEY_ID"));
  s3_client_free(c);
  /* No credentials at all. */
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  setenv("HOME", test_tmpdir(), 1);
  char err[512];
  ASSERT_EQ(s3_config_load(&bad, err, sizeof err), -EINVAL);
  one_line(err);
  ASSERT(strstr(err, "no credentials"));
  return 0;
}

TEST_IMPL_TIMEOUT(s3_missing_bucket, 90) {
  s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  char bucket[64];
  snprintf(bucket, sizeof bucket, "vdi-no-such-%d", (int)getpid());
  ASSERT_EQ(s3_put(c, bucket, "k", "x", 1), -ENOENT);
  one_line(s3_error(c));
  ASSERT(strstr(s3_error(c), "NoSuchBucket"));
  ASSERT(strstr(s3_error(c), bucket));
  struct names nm = {0};
  ASSERT_EQ(s3_list(c, bucket, "", add_name, &nm), -ENOENT);
  one_line(s3_error(c));
  ASSERT(strstr(s3_error(c), "NoSuchBucket"));
  char id[256];
  ASSERT_EQ(s3_mpu_create(c, bucket, "k", id, sizeof id), -ENOENT);
  ASSERT(strstr(s3_error(c), "NoSuchBucket"));
  s3_client_free(c);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_profile_virtual_host, 90) {
  const char *bucket = s3_env();
  char endpoint[600], key[300], secret[300];
  snprintf(endpoint, sizeof endpoint, "%s", getenv("AWS_ENDPOINT_URL"));
  snprintf(key, sizeof key, "%s", getenv("AWS_ACCESS_KEY_ID"));
  snprintf(secret, sizeof secret, "%s", getenv("AWS_SECRET_ACCESS_KEY"));
  /* The AWS CLI's files, a named profile, and nothing in the environment;
   * the host as a name, so that the bucket can go in front of it. */
  char *port = strrchr(endpoint, ':');
  ASSERT_NOT_NULL(port);
  char creds[4200], conf[4200];
  snprintf(creds, sizeof creds, "%s/credentials", test_tmpdir());
  snprintf(conf, sizeof conf, "%s/config", test_tmpdir());
  FILE *f = fopen(creds, "w");
  fprintf(f,
          "[default]\naws_access_key_id = WRONG\naws_secret_access_key = "
          "WRONG\n\n[vdi]\naws_access_key_id = %s\naws_secret_access_key = "
          "%s\n",
          key, secret);
  fclose(f);
  f = fopen(conf, "w");
  fprintf(f,
          "[default]\nregion = eu-west-1\n\n[profile vdi]\nregion = "
          "us-east-1\nendpoint_url = http://localhost%s\ns3 =\n  "
          "addressing_style = virtual\n",
          port);
  fclose(f);
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_REGION");
  setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
  setenv("AWS_CONFIG_FILE", conf, 1);
  setenv("AWS_PROFILE", "vdi", 1);
  struct s3_config cfg;
  char err[512];
  ASSERT_EQ(s3_config_load(&cfg, err, sizeof err), 0);
  ASSERT_STR_EQ(cfg.access_key, key);
  ASSERT_STR_EQ(cfg.region, "us-east-1");
  ASSERT_EQ(cfg.path_style, 0);
  char want[700];
  snprintf(want, sizeof want, "http://localhost%s", port);
  ASSERT_STR_EQ(cfg.endpoint, want);
  struct s3_client *c = s3_client_new(&cfg);
  const char *pre = prefix();
  char k[300];
  snprintf(k, sizeof k, "%svhost", pre);
  int rc = s3_put(c, bucket, k, "hello", 5);
  if (rc != 0) TASK_FAIL_("%s", s3_error(c));
  struct t_sink s = {0};
  ASSERT_EQ(s3_get(c, bucket, k, 0, 0, t_sink_write, &s), 0);
  ASSERT_UEQ(s.n, 5);
  ASSERT_MEM_EQ(s.p, "hello", 5);
  free(s.p);
  s3_client_free(c);
  /* The same through path-style, forced by the environment. */
  setenv("AWS_S3_ADDRESSING_STYLE", "path", 1);
  ASSERT_EQ(s3_config_load(&cfg, err, sizeof err), 0);
  ASSERT_EQ(cfg.path_style, 1);
  c = s3_client_new(&cfg);
  uint64_t size;
  ASSERT_EQ(s3_head(c, bucket, k, &size), 0);
  ASSERT_UEQ(size, 5);
  s3_client_free(c);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_unreachable_retries, 30) {
  /* A port nobody listens on: retried with backoff, then one line. */
  setenv("AWS_ACCESS_KEY_ID", "A", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "B", 1);
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
  struct s3_config cfg;
  char err[256];
  ASSERT_EQ(s3_config_load(&cfg, err, sizeof err), 0);
  cfg.max_retries = 3;
  struct s3_client *c = s3_client_new(&cfg);
  int64_t t0 = now_ms();
  ASSERT_EQ(s3_put(c, "b", "k", "x", 1), -EIO);
  int64_t took = now_ms() - t0;
  one_line(s3_error(c));
  ASSERT(strstr(s3_error(c), "s3://b/k"));
  /* Two waits: 100-150 ms and 200-300 ms. */
  ASSERT_GE(took, 300);
  ASSERT_LT(took, 5000);
  s3_client_free(c);
  return 0;
}

static long vm_hwm_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

/* Streams 64 MiB through a fresh process in 5 MiB parts, 2 in flight, and
 * reports its peak resident memory. */
HELPER_IMPL(s3_big_writer) {
  s3_env();
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  struct s3_upload *u;
  ASSERT_EQ(s3_upload_open(&u, &cfg, argv[1], argv[2], 5u << 20, 2), 0);
  static unsigned char buf[256 << 10];
  uint64_t state = 77;
  for (int i = 0; i < 256; i++) {
    fill(buf, sizeof buf, &state);
    ASSERT_EQ(s3_upload_write(u, buf, sizeof buf), 0);
  }
  if (s3_upload_finish(u) != 0) TASK_FAIL_("%s", s3_upload_error(u));
  s3_upload_free(u);
  uint64_t size = 0;
  ASSERT_EQ(s3_head(c, argv[1], argv[2], &size), 0);
  ASSERT_UEQ(size, 64u << 20);
  ASSERT_EQ(s3_delete(c, argv[1], argv[2]), 0);
  s3_client_free(c);
  printf("%ld\n", vm_hwm_kb());
  return 0;
}

TEST_IMPL_TIMEOUT(s3_upload_memory_bounded, 120) {
  const char *bucket = s3_env();
  char key[300], out[4400];
  snprintf(key, sizeof key, "%sbig", prefix());
  snprintf(out, sizeof out, "%s/hwm", test_tmpdir());
  /* The helper's stdout to a file. */
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT(fd >= 0);
  int saved = dup(1);
  dup2(fd, 1);
  pid_t p = spawn_helper("s3_big_writer", bucket, key, NULL);
  dup2(saved, 1);
  close(saved);
  close(fd);
  ASSERT_EQ(wait_helper(p), 0);
  FILE *f = fopen(out, "r");
  long kb = -1;
  ASSERT(f && fscanf(f, "%ld", &kb) == 1);
  fclose(f);
  fprintf(stderr, "peak resident memory of a 64 MiB upload: %ld kB\n", kb);
  /* Two 5 MiB parts and the program, far from the 64 MiB sent. */
  ASSERT_GT(kb, 10 * 1024);
  ASSERT_LT(kb, 32 * 1024);
  return 0;
}

/* ------------------------------------------------------------ with vdi */

#include "test-app-util.h"

static char inst[4200], keyf[4200], url[600];

/* A database of about 12 MB (uncompressed: two 8 MiB parts). */
static void vdi_setup(const char *pre) {
  if (!app_t_engine_ready()) {
    fprintf(stderr, "vdisql is not built yet\n");
    exit(TEST_SKIP);
  }
  const char *bucket = s3_env();
  snprintf(inst, sizeof inst, "%s/inst", test_tmpdir());
  snprintf(keyf, sizeof keyf, "%s/key", test_tmpdir());
  snprintf(url, sizeof url, "s3://%s/%s", bucket, pre);
  ASSERT_EQ(mkdir(inst, 0755), 0);
  app_t_run_ok("keygen", NULL, ARGS("keygen", keyf));
  app_t_make_db(inst, "src", 60000, 4096, 3);
}

/* vdi_setup(pre), and a client of the store and its bucket for the
 * test's own look at it. */
static struct s3_client *vdi_client(const char *pre, struct s3_config *cfg,
                                    const char **bucket) {
  vdi_setup(pre);
  *bucket = getenv("VDI_S3_TEST_BUCKET");
  return client(cfg);
}

static void digest_db(const char *name, char *out, size_t n) {
  char p[4400];
  snprintf(p, sizeof p, "%s/%s.db", inst, name);
  app_t_digest(p, out, n);
}

static int count_lines(const char *s, const char *with) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, with)); p++)
    n++;
  return n;
}

/* The key under pre ending in `suffix` (the first, in key order). */
struct key_find {
  const char *suffix;
  char *out;
  size_t n;
  int found;
};

static int match_key(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct key_find *f = arg;
  size_t l = strlen(key), sl = strlen(f->suffix);
  if (!f->found && l >= sl && strcmp(key + l - sl, f->suffix) == 0) {
    snprintf(f->out, f->n, "%s", key);
    f->found = 1;
  }
  return 0;
}

static int find_key(struct s3_client *c, const char *bucket, const char *pre,
                    const char *suffix, char *out, size_t n) {
  struct key_find f = {suffix, out, n, 0};
  ASSERT_EQ(s3_list(c, bucket, pre, match_key, &f), 0);
  return f.found;
}

/* The IDs of db's sets under pre, oldest first (from the objects). */
struct set_ids {
  size_t plen;
  char id[8][64];
  int n;
};

static int add_set_id(void *arg, const char *key, uint64_t size) {
  (void)size;
  struct set_ids *v = arg;
  const char *id = key + v->plen, *end = strchr(id, '/');
  if (!end || end - id >= 64) return 0;
  if (v->n > 0 && strncmp(v->id[v->n - 1], id, (size_t)(end - id)) == 0 &&
      v->id[v->n - 1][end - id] == 0)
    return 0;
  ASSERT(v->n < 8);
  snprintf(v->id[v->n++], 64, "%.*s", (int)(end - id), id);
  return 0;
}

static int set_ids(struct s3_client *c, const char *bucket, const char *pre,
                   const char *db, struct set_ids *v) {
  char p[300];
  snprintf(p, sizeof p, "%s%s/", pre, db);
  memset(v, 0, sizeof *v);
  v->plen = strlen(p);
  ASSERT_EQ(s3_list(c, bucket, p, add_set_id, v), 0);
  return v->n;
}

/* Compressed: sealed to the key's public key (--recipient), which is all
 * the backup needs; restore and verify take the key file. */
static void vdi_round_trip(const char *stripes, int compress) {
  vdi_setup(prefix());
  if (compress) {
    char pubf[4400], pub[65];
    snprintf(pubf, sizeof pubf, "%s/key.pub", test_tmpdir());
    app_t_public_key(keyf, pubf, pub);
    app_t_run_ok("backup", NULL,
                 ARGS("backup", "src", "--instance", inst, "--to", url,
                      "--stripes", stripes, "--compress", "--encrypt",
                      "--recipient", pubf));
  } else {
    app_t_run_ok("backup", NULL,
                 ARGS("backup", "src", "--instance", inst, "--to", url,
                      "--stripes", stripes, "--encrypt", "--key-file", keyf));
  }
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", url)), 0);
  ASSERT(strstr(out, "-full  full  finished"));
  ASSERT(strstr(out, compress ? "compression zstd" : "compression none"));
  ASSERT(strstr(out, compress ? "to public key" : ", key "));
  free(out);
  app_t_verify_restore(inst, "src", url, keyf, "copy");
  /* Without the key: refused, nothing restored. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "src", "--instance", inst, "--from", url,
                           "--as", "nokey")),
            1);
  ASSERT(strstr(out, compress ? "give its key file with --key-file"
                              : "give its key with --key-file"));
  ASSERT(!app_t_exists(inst, "nokey.db"));
  free(out);
}

TEST_IMPL_TIMEOUT(s3_vdi_round_trip_1_stripe, 120) {
  vdi_round_trip("1", 0);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_vdi_round_trip_4_stripes_compressed, 120) {
  vdi_round_trip("4", 1);
  return 0;
}

/* A `vdi backup` of `stripes` stripes to url with slow writes (10 ms per
 * 64 KiB: the first 8 MiB part is sent after a second or so), once one of
 * its uploads is open under pre; its output goes to `log`. */
static pid_t slow_backup(struct s3_client *c, const char *bucket,
                         const char *pre, const char *stripes, char *log,
                         size_t loglen) {
  snprintf(log, loglen, "%s/vdi.log", test_tmpdir());
  pid_t p = app_t_spawn(log, NULL, NULL, ENV("VDI_TEST_SLOW_WRITE_MS=10"),
                        ARGS("backup", "src", "--instance", inst, "--to", url,
                             "--stripes", stripes, "--encrypt", "--key-file",
                             keyf, "--quiet"));
  int open_uploads = 0;
  int64_t end = now_ms() + 60000;
  while (open_uploads == 0 && now_ms() < end) {
    sleep_ms(100);
    ASSERT_EQ(s3_mpu_list(c, bucket, pre, count_upload, &open_uploads), 0);
  }
  ASSERT_GE(open_uploads, 1);
  return p;
}

TEST_IMPL_TIMEOUT(s3_vdi_killed_backup, 120) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  /* Killed in the middle of its first part. */
  char log[4400];
  pid_t p = slow_backup(c, bucket, pre, "1", log, sizeof log);
  ASSERT_EQ(uploads_open(c, bucket, pre), 1);
  pid_t engine = app_t_find_child(p, "vdisql");
  kill(p, SIGKILL);
  ASSERT_EQ(wait_helper(p), 128 + SIGKILL);
  if (engine > 0) kill(engine, SIGKILL);
  /* No manifest, no stripe object: no backup.  The parts are left. */
  ASSERT_EQ(objects(c, bucket, pre), 0);
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "src", "--instance", inst, "--from", url,
                           "--as", "copy", "--key-file", keyf)),
            3);
  ASSERT(strstr(out, "no complete backup of 'src'"));
  free(out);
  /* Listed, from its open upload, as what it is: not a backup. */
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", url)), 0);
  if (!strstr(out, "-full  full  incomplete (no manifest") ||
      strstr(out, "finished")) {
    app_t_show("list", out);
    TASK_FAIL_("the killed backup is not listed as incomplete");
  }
  free(out);
  /* The next backup there aborts them first, and succeeds. */
  app_t_run_has("aborted 1 unfinished upload", NULL,
                ARGS("backup", "src", "--instance", inst, "--to", url,
                     "--encrypt", "--key-file", keyf));
  ASSERT_EQ(uploads_open(c, bucket, pre), 0);
  ASSERT_EQ(objects(c, bucket, pre), 2); /* the stripe and the manifest */
  s3_client_free(c);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_vdi_damaged_object, 120) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  app_t_run_ok("backup", NULL,
               ARGS("backup", "src", "--instance", inst, "--to", url,
                    "--stripes", "2", "--compress"));
  /* One byte of stripe 1 changed in the store. */
  char key[300];
  ASSERT_EQ(find_key(c, bucket, pre, "/src.stripe1.vdibak", key, sizeof key),
            1);
  struct t_sink obj = {0};
  ASSERT_EQ(s3_get(c, bucket, key, 0, 0, t_sink_write, &obj), 0);
  obj.p[obj.n - 10] ^= 0x01;
  ASSERT_EQ(s3_put(c, bucket, key, obj.p, obj.n), 0);
  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("verify", "src", "--instance", inst, "--from", url)),
            4);
  fprintf(stderr, "%s", out);
  ASSERT(strstr(out, "CRC-32C") && strstr(out, "damaged"));
  free(out);
  /* The header check reads the start of each object only; the changed
   * byte is found as it is fed (as from a directory), before the engine
   * has replaced anything. */
  ASSERT_EQ(app_t_run(&out, NULL,
                      ARGS("restore", "src", "--instance", inst, "--from", url,
                           "--as", "copy")),
            4);
  fprintf(stderr, "%s", out);
  ASSERT(strstr(out, "stripe 1") && strstr(out, "CRC-32C") &&
         strstr(out, "the backup is damaged"));
  ASSERT(!app_t_exists(inst, "copy.db"));
  free(out);
  free(obj.p);
  s3_client_free(c);
  return 0;
}

TEST_IMPL_TIMEOUT(s3_vdi_credentials_and_bucket, 90) {
  vdi_setup(prefix());
  /* Each failure: exit 1 and exactly one line, naming it. */
  struct {
    const char *env, *url, *want;
  } cases[] = {
      {"AWS_SECRET_ACCESS_KEY=wrong-secret", url, "SignatureDoesNotMatch"},
      {"AWS_ACCESS_KEY_ID=NOSUCHKEY0000000000X", url, "InvalidAccessKeyId"},
      {"VDI_UNUSED=1", "s3://vdi-no-such-bucket/x", "NoSuchBucket"},
  };
  for (size_t i = 0; i < 3; i++) {
    char *out = NULL;
    int st = app_t_run(&out, ENV(cases[i].env),
                       ARGS("backup", "src", "--instance", inst, "--to",
                            cases[i].url, "--quiet"));
    fprintf(stderr, "%s", out);
    ASSERT_EQ(st, 1);
    ASSERT(strstr(out, cases[i].want));
    ASSERT_EQ(count_lines(out, "\n"), 1);
    free(out);
    st = app_t_run(&out, ENV(cases[i].env),
                   ARGS("list", "--from", cases[i].url));
    ASSERT_EQ(st, 1);
    ASSERT(strstr(out, cases[i].want));
    ASSERT_EQ(count_lines(out, "\n"), 1);
    free(out);
  }
  return 0;
}

/* An S3 target is a repository like a directory: each backup a new set
 * under PREFIX/DB/ID/, list shows them all, restore takes the newest
 * unless --set, expire deletes what no kept chain needs (objects and
 * unfinished uploads), and the old single-set layout still reads. */
TEST_IMPL_TIMEOUT(s3_vdi_repository, 240) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  char v1[64], v2[64], got[64];
  digest_db("src", v1, sizeof v1);
  app_t_run_ok("backup 1", NULL,
               ARGS("backup", "src", "--instance", inst, "--to", url, "-q"));
  app_t_make_db(inst, "src", 30000, 4096, 4);
  digest_db("src", v2, sizeof v2);
  ASSERT(strcmp(v1, v2) != 0);
  app_t_run_ok("backup 2", NULL,
               ARGS("backup", "src", "--instance", inst, "--to", url,
                    "--stripes", "2", "--compress", "-q"));
  struct set_ids ids;
  ASSERT_EQ(set_ids(c, bucket, pre, "src", &ids), 2);
  ASSERT(strstr(ids.id[0], "-full") && strstr(ids.id[1], "-full"));
  ASSERT(strcmp(ids.id[0], ids.id[1]) < 0);
  char key[300];
  snprintf(key, sizeof key, "%ssrc/%s/src.manifest.json", pre, ids.id[1]);
  uint64_t size = 0;
  ASSERT_EQ(s3_head(c, bucket, key, &size), 0);

  /* vdi check: the store answers, or says why not. */
  char *out = NULL;
  app_t_run_has(" reachable", NULL,
                ARGS("check", "--instance", inst, "--to", url));
  ASSERT(app_t_run(&out, NULL,
                   ARGS("check", "--instance", inst, "--to",
                        "s3://vdi-no-such-bucket/x")) != 0);
  ASSERT(strstr(out, "NoSuchBucket") && strstr(out, "not reachable"));
  free(out);

  /* list: both sets, each with its stripes and compression. */
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", url)), 0);
  if (!strstr(out, ids.id[0]) || !strstr(out, ids.id[1]) ||
      !strstr(out, "2 stripes") || !strstr(out, "compression zstd") ||
      !strstr(out, "compression none")) {
    app_t_show("list", out);
    TASK_FAIL_("list does not show both sets");
  }
  free(out);

  /* restore: the newest set by default, another with --set. */
  app_t_run_ok("restore newest", NULL,
               ARGS("restore", "src", "--instance", inst, "--from", url, "--as",
                    "newest", "-q"));
  digest_db("newest", got, sizeof got);
  ASSERT_STR_EQ(got, v2);
  app_t_run_ok("restore --set", NULL,
               ARGS("restore", "src", "--instance", inst, "--from", url, "--as",
                    "older", "--set", ids.id[0], "-q"));
  digest_db("older", got, sizeof got);
  ASSERT_STR_EQ(got, v1);
  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("restore", "src", "--instance", inst, "--from", url,
                     "--as", "none", "--set", "20000101T000000.000Z-full")),
      3);
  ASSERT(strstr(out, "no backup set '20000101T000000.000Z-full'"));
  free(out);

  /* expire: a dry run deletes nothing. */
  ASSERT_EQ(
      app_t_run(&out, NULL, ARGS("expire", "--from", url, "--keep-last", "1")),
      0);
  if (!strstr(out, "1 of 2 sets would be deleted") || !strstr(out, ids.id[0])) {
    app_t_show("expire", out);
    TASK_FAIL_("dry run");
  }
  free(out);
  ASSERT_EQ(set_ids(c, bucket, pre, "src", &ids), 2);
  /* An upload left open inside the older set goes with it. */
  char upload[256], okey[300];
  snprintf(okey, sizeof okey, "%ssrc/%s/src.stripe9.vdibak", pre, ids.id[0]);
  ASSERT_EQ(s3_mpu_create(c, bucket, okey, upload, sizeof upload), 0);
  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("expire", "--from", url, "--keep-last", "1", "--delete")),
      0);
  if (!strstr(out, "1 of 2 sets deleted")) {
    app_t_show("expire --delete", out);
    TASK_FAIL_("expire --delete");
  }
  free(out);
  char newest[64];
  snprintf(newest, sizeof newest, "%s", ids.id[1]);
  ASSERT_EQ(set_ids(c, bucket, pre, "src", &ids), 1);
  ASSERT_STR_EQ(ids.id[0], newest);
  ASSERT_EQ(uploads_open(c, bucket, pre), 0);
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", url)), 0);
  ASSERT(strstr(out, newest) && count_lines(out, "-full  full") == 1);
  free(out);

  /* The old single-set layout (PREFIX/src.manifest.json and its stripes
   * beside it), as earlier vdi versions wrote it: listed, restored, never
   * expired.  Made here from the kept set's objects. */
  const char *names[] = {"src.manifest.json", "src.stripe0.vdibak",
                         "src.stripe1.vdibak"};
  for (int i = 2; i >= 0; i--) {
    char from[300], to[300];
    struct t_sink obj = {0};
    snprintf(from, sizeof from, "%ssrc/%s/%s", pre, newest, names[i]);
    snprintf(to, sizeof to, "%s%s", pre, names[i]);
    ASSERT_EQ(s3_get(c, bucket, from, 0, 0, t_sink_write, &obj), 0);
    ASSERT_EQ(s3_put(c, bucket, to, obj.p, obj.n), 0);
    free(obj.p);
  }
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", url)), 0);
  if (!strstr(out, "src  legacy  full") || !strstr(out, newest)) {
    app_t_show("list", out);
    TASK_FAIL_("the old layout is not listed");
  }
  free(out);
  app_t_run_ok("restore legacy", NULL,
               ARGS("restore", "src", "--instance", inst, "--from", url, "--as",
                    "legacy", "--set", "legacy", "-q"));
  digest_db("legacy", got, sizeof got);
  ASSERT_STR_EQ(got, v2);
  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("expire", "--from", url, "--keep-last", "1", "--delete")),
      0);
  free(out);
  snprintf(key, sizeof key, "%ssrc.manifest.json", pre);
  ASSERT_EQ(s3_head(c, bucket, key, &size), 0);
  s3_client_free(c);
  return 0;
}

/* ------------------------------------------------ chains in S3 */

static void chain_backup(const char *what, const char *kind) {
  if (kind)
    app_t_run_ok(
        what, NULL,
        ARGS("backup", "app", "--instance", inst, "--to", url, kind, "-q"));
  else
    app_t_run_ok(what, NULL,
                 ARGS("backup", "app", "--instance", inst, "--to", url, "-q"));
}

/* Differential and log sets in S3, as in a directory: listed under their
 * full set, restored with --latest and --set, and expire keeps the chain
 * the kept full set needs. */
TEST_IMPL_TIMEOUT(s3_vdi_chain, 240) {
  vdi_setup(prefix());
  const char *pre = strchr(url + 5, '/') + 1;
  struct s3_config cfg;
  struct s3_client *c = client(&cfg);
  const char *bucket = getenv("VDI_S3_TEST_BUCKET");
  char p[4400], logp[4400];
  snprintf(p, sizeof p, "%s/app.db", inst);
  sql_make_db(p, 200, 4096, 1, 7);
  snprintf(logp, sizeof logp, "%s/instance.log", test_tmpdir());
  pid_t srv = sql_serve(inst, logp, NULL);
  ASSERT_EQ(sql_q(inst, "ALTER DATABASE app SET RECOVERY FULL", NULL), 0);
  chain_backup("full 1", NULL);
  app_t_add_rows(inst, "app", 20);
  chain_backup("log 1", "--log");
  app_t_add_rows(inst, "app", 20);
  chain_backup("diff 1", "--differential");
  long at_diff = app_t_rows(inst, "app");
  chain_backup("full 2", NULL);
  app_t_add_rows(inst, "app", 20);
  chain_backup("log 2", "--log");
  long all = app_t_rows(inst, "app");
  ASSERT_EQ(all, 260);
  struct set_ids ids;
  ASSERT_EQ(set_ids(c, bucket, pre, "app", &ids), 5);
  ASSERT(strstr(ids.id[2], "-diff") && strstr(ids.id[4], "-log"));

  char *out = NULL;
  ASSERT_EQ(app_t_run(&out, NULL, ARGS("list", "--from", url)), 0);
  if (!strstr(out, "+ log 000001") || !strstr(out, "+ differential 000002") ||
      count_lines(out, "+ log") != 2) {
    app_t_show("list", out);
    TASK_FAIL_("the chains are not shown");
  }
  free(out);
  /* --latest: the newest full and every log after it. */
  app_t_run_ok("latest", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", url, "--as",
                    "r1", "--latest", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r1"), all);
  /* --set of a differential: its full set, then it. */
  app_t_run_ok("set diff", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", url, "--as",
                    "r2", "--set", ids.id[2], "-q"));
  ASSERT_EQ(app_t_rows(inst, "r2"), at_diff);

  ASSERT_EQ(
      app_t_run(&out, NULL,
                ARGS("expire", "--from", url, "--keep-last", "1", "--delete")),
      0);
  if (!strstr(out, "3 of 5 sets deleted")) {
    app_t_show("expire", out);
    TASK_FAIL_("expire --delete");
  }
  free(out);
  ASSERT_EQ(set_ids(c, bucket, pre, "app", &ids), 2);
  ASSERT(strstr(ids.id[0], "-full") && strstr(ids.id[1], "-log"));
  app_t_run_ok("latest after expire", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", url, "--as",
                    "r3", "--latest", "-q"));
  ASSERT_EQ(app_t_rows(inst, "r3"), all);
  sql_serve_stop(srv, 10000);
  s3_client_free(c);
  return 0;
}

/* An encrypted chain in S3 whose log sets are small (one sealed chunk):
 * --latest restores every row of the last log (each set's header is read
 * through the key, a stream of one chunk as a longer one). */
TEST_IMPL_TIMEOUT(s3_vdi_chain_encrypted_small_logs, 240) {
  vdi_setup(prefix());
  char p[4400], logp[4400];
  snprintf(p, sizeof p, "%s/app.db", inst);
  sql_make_db(p, 200, 4096, 1, 7);
  snprintf(logp, sizeof logp, "%s/instance.log", test_tmpdir());
  pid_t srv = sql_serve(inst, logp, NULL);
  ASSERT_EQ(sql_q(inst, "ALTER DATABASE app SET RECOVERY FULL", NULL), 0);
  app_t_run_ok("full", NULL,
               ARGS("backup", "app", "--instance", inst, "--to", url,
                    "--encrypt", "--key-file", keyf, "-q"));
  for (int k = 0; k < 2; k++) {
    app_t_add_rows(inst, "app", 3);
    app_t_run_ok("log", NULL,
                 ARGS("backup", "app", "--instance", inst, "--to", url, "--log",
                      "--encrypt", "--key-file", keyf, "-q"));
  }
  long all = app_t_rows(inst, "app");
  ASSERT_EQ(all, 206);
  app_t_run_ok("latest", NULL,
               ARGS("restore", "app", "--instance", inst, "--from", url, "--as",
                    "r1", "--latest", "--key-file", keyf, "-q"));
  ASSERT_EQ(app_t_rows(inst, "r1"), all);
  sql_serve_stop(srv, 10000);
  return 0;
}

/* A chain sealed to a public key (--recipient) in S3: each set's header
 * read with its own key, so --latest and --set of the differential
 * restore row for row, and list and expire place every set. */
TEST_IMPL_TIMEOUT(s3_vdi_chain_recipient, 240) {
  vdi_setup(prefix());
  app_t_recipient_chain(inst, url, keyf);
  return 0;
}

/* ------------------------------------------------ a store that stalls */

/* A TCP relay in front of the real gateway that, once `stall_after`
 * bytes went towards the store, stops relaying in both directions and
 * keeps every connection open, old and new (accepted, never answered):
 * the store stalls as a full one did, with nothing answering for it.
 * With a count file (argv[4], "-" for none), the bytes that came from the
 * store so far are in it (a decimal number, rewritten before they are
 * passed on: once a client has them, they are counted).  With `slow_down`
 * (argv[5]) > 0, the first that many connections get what a busy gateway
 * answers instead, 503 SlowDown, each counted in the file argv[6] once
 * answered.
 * argv: upstream-port port-file stall-after [count-file [slow-down
 * slow-count-file]]. */
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

/* Read one request's head from @p fd, then its body (Content-Length)
 * unless the client waits for "100 Continue" before sending it, so that
 * closing the connection after the answer does not reset it. */
static void drain_request(int fd) {
  char head[16384];
  size_t n = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (n < sizeof head - 1 && poll(&p, 1, 5000) == 1) {
    ssize_t got = read(fd, head + n, sizeof head - 1 - n);
    if (got <= 0) return;
    n += (size_t)got;
    head[n] = 0;
    char *end = strstr(head, "\r\n\r\n");
    if (!end) continue;
    if (strcasestr(head, "\nExpect: 100-continue")) return;
    const char *cl = strcasestr(head, "\nContent-Length:");
    long long body = cl ? atoll(cl + 16) : 0;
    body -= (long long)(n - (size_t)(end + 4 - head));
    static char sink[1 << 16];
    while (body > 0 && poll(&p, 1, 5000) == 1) {
      got = read(fd, sink,
                 body < (long long)sizeof sink ? (size_t)body : sizeof sink);
      if (got <= 0) return;
      body -= got;
    }
    return;
  }
}

static void slow_down(int fd) {
  static const char body[] =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<Error><Code>SlowDown</Code><Message>Please reduce your request "
      "rate.</Message></Error>";
  char a[512];
  drain_request(fd);
  int n = snprintf(a, sizeof a,
                   "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml"
                   "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   sizeof body - 1, body);
  if (write(fd, a, (size_t)n) != n) return;
  shutdown(fd, SHUT_WR);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char sink[4096];
  while (poll(&p, 1, 2000) == 1 && read(fd, sink, sizeof sink) > 0) {
  }
}

HELPER_IMPL(s3_stall_relay) {
  int up_port = atoi(argv[1]);
  long long stall_after = atoll(argv[3]), sent = 0, received = 0;
  int counts = argc > 4 && strcmp(argv[4], "-") != 0
                   ? open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600)
                   : -1;
  int slow = argc > 6 ? atoi(argv[5]) : 0, slowed = 0;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ASSERT_EQ(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
  ASSERT_EQ(listen(ls, 64), 0);
  socklen_t al = sizeof a;
  ASSERT_EQ(getsockname(ls, (struct sockaddr *)&a, &al), 0);
  FILE *f = fopen(argv[2], "w");
  fprintf(f, "%d\n", ntohs(a.sin_port));
  fclose(f);
  enum { MAXC = 128 };
  int cl[MAXC], up[MAXC], n = 0;
  static char buf[1 << 16];
  for (;;) {
    int stalled = sent >= stall_after;
    struct pollfd p[1 + 2 * MAXC];
    int np = 0;
    p[np++] = (struct pollfd){.fd = ls, .events = POLLIN};
    for (int i = 0; i < n && !stalled; i++) {
      p[np++] = (struct pollfd){.fd = cl[i], .events = POLLIN};
      p[np++] = (struct pollfd){.fd = up[i], .events = POLLIN};
    }
    if (poll(p, (nfds_t)np, 100) < 0) continue;
    if (p[0].revents & POLLIN) {
      int c = accept(ls, NULL, NULL);
      if (c >= 0 && slowed < slow) {
        slow_down(c);
        close(c);
        FILE *cf = fopen(argv[6], "w");
        if (cf) {
          fprintf(cf, "%d\n", ++slowed);
          fclose(cf);
        }
      } else if (c >= 0 && n < MAXC) {
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in ua = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)up_port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (stalled || connect(u, (struct sockaddr *)&ua, sizeof ua) != 0) {
          /* Held open, never answered. */
          close(u);
          u = -1;
        }
        cl[n] = c;
        up[n++] = u;
      }
    }
    for (int k = 1; k < np; k++) {
      if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int i = (k - 1) / 2, to_store = (k - 1) % 2 == 0;
      int from = to_store ? cl[i] : up[i], to = to_store ? up[i] : cl[i];
      if (from < 0 || to < 0) continue;
      ssize_t got = read(from, buf, sizeof buf);
      if (got <= 0) {
        close(cl[i]);
        close(up[i]);
        cl[i] = up[i] = -1;
        continue;
      }
      if (!to_store && counts >= 0) {
        char num[32];
        received += got;
        int l = snprintf(num, sizeof num, "%20lld\n", received);
        ASSERT_EQ(pwrite(counts, num, (size_t)l, 0), l);
      }
      for (ssize_t off = 0; off < got;) {
        ssize_t w = write(to, buf + off, (size_t)(got - off));
        if (w <= 0) break;
        off += w;
      }
      if (to_store) sent += got;
    }
    /* Closed pairs go (a stalled relay keeps everything). */
    for (int i = 0; i < n && !stalled; i++)
      if (cl[i] < 0) {
        cl[i] = cl[n - 1];
        up[i] = up[n - 1];
        n--;
        i--;
      }
  }
  return 0;
}

/* The relay's port, once it listens: counting the store's bytes into
 * `count_file` unless NULL, and answering the first `slow` connections
 * 503 SlowDown ("0": none), counted in `slow_file`. */
static pid_t fault_relay(const char *stall_after, const char *count_file,
                         const char *slow, const char *slow_file, int *port) {
  const char *ep = getenv("AWS_ENDPOINT_URL");
  const char *colon = strrchr(ep, ':');
  ASSERT_NOT_NULL(colon);
  char up[16], pf[4200];
  snprintf(up, sizeof up, "%d", atoi(colon + 1));
  snprintf(pf, sizeof pf, "%s/relay-%s-%s.port", test_tmpdir(), stall_after,
           slow);
  pid_t p = spawn_helper("s3_stall_relay", up, pf, stall_after,
                         count_file ? count_file : "-", slow,
                         slow_file ? slow_file : "/dev/null", NULL);
  int64_t end = now_ms() + 10000;
  *port = 0;
  while (now_ms() < end && *port == 0) {
    FILE *f = fopen(pf, "r");
    if (f) {
      if (fscanf(f, "%d", port) != 1) *port = 0;
      fclose(f);
    }
    if (*port == 0) sleep_ms(20);
  }
  ASSERT(*port > 0);
  return p;
}

static pid_t stall_relay(const char *stall_after, int *port) {
  return fault_relay(stall_after, NULL, "0", NULL, port);
}

/* The bytes that came from the store through a counting relay. */
static long long relayed(const char *count_file) {
  long long n = 0;
  FILE *f = fopen(count_file, "r");
  if (f) {
    if (fscanf(f, "%lld", &n) != 1) n = 0;
    fclose(f);
  }
  return n;
}

/* What vdi fetches, counted on the wire (a relay in front of the store):
 * list reads the start of stripe 0 of each set, not the object; a restore
 * checks the start of its first set's stripes, then reads them once as it
 * feeds them (not twice); a differential backup reads no stripe at all
 * (only manifests: it looks for a full set).  Two sealed sets of about
 * 10 MB.  And what the header check no longer reads is still checked. */
TEST_IMPL_TIMEOUT(s3_vdi_header_check_ranged, 180) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  char p[4400], logp[4400];
  snprintf(p, sizeof p, "%s/app.db", inst);
  sql_make_db(p, 30000, 4096, 1, 7);
  snprintf(logp, sizeof logp, "%s/instance.log", test_tmpdir());
  pid_t srv = sql_serve(inst, logp, NULL);
  for (int k = 0; k < 2; k++)
    app_t_run_ok("backup", NULL,
                 ARGS("backup", "app", "--instance", inst, "--to", url,
                      "--encrypt", "--key-file", keyf, "-q"));
  char key[300], cf[4200], ep[128];
  uint64_t size = 0;
  ASSERT_EQ(find_key(c, bucket, pre, "/app.stripe0.vdibak", key, sizeof key),
            1);
  ASSERT_EQ(s3_head(c, bucket, key, &size), 0);
  ASSERT_GT(size, 8u << 20);
  snprintf(cf, sizeof cf, "%s/relayed", test_tmpdir());
  int port;
  pid_t relay = fault_relay("1000000000000", cf, "0", NULL, &port);
  snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=http://127.0.0.1:%d", port);

  long long b0 = relayed(cf);
  app_t_run_ok("list", ENV(ep),
               ARGS("list", "--from", url, "--key-file", keyf));
  long long b_list = relayed(cf) - b0;
  b0 = relayed(cf);
  app_t_run_ok("restore", ENV(ep),
               ARGS("restore", "app", "--instance", inst, "--from", url, "--as",
                    "copy", "--key-file", keyf, "-q"));
  long long b_restore = relayed(cf) - b0;
  char rp[4400];
  long rows = 0, got = 0;
  snprintf(rp, sizeof rp, "%s/copy.db", inst);
  ASSERT_EQ(sql_digest(rp, &got), sql_digest(p, &rows));
  ASSERT_EQ(got, rows);

  b0 = relayed(cf);
  app_t_run_ok("differential", ENV(ep),
               ARGS("backup", "app", "--instance", inst, "--to", url,
                    "--differential", "--encrypt", "--key-file", keyf, "-q"));
  long long b_diff = relayed(cf) - b0;
  fprintf(stderr,
          "stripe object %llu bytes; from the store: list %lld, restore "
          "%lld, differential backup %lld\n",
          (unsigned long long)size, b_list, b_restore, b_diff);
  /* A header read is 64 KiB and a bit (one sealed chunk) a set. */
  ASSERT_LT(b_list, 2 * 96 * 1024);
  ASSERT_GE(b_restore, (long long)size);
  ASSERT_LT(b_restore, (long long)(size + size / 8));
  ASSERT_LT(b_diff, 48 * 1024);
  kill(relay, SIGKILL);
  wait_helper(relay);

  /* A byte changed past what the header check reads (in the middle of
   * the first set's sealed stripe) is still refused: exit 4, nothing
   * restored. */
  struct t_sink obj = {0};
  ASSERT_EQ(s3_get(c, bucket, key, 0, 0, t_sink_write, &obj), 0);
  obj.p[obj.n / 2] ^= 0x01;
  ASSERT_EQ(s3_put(c, bucket, key, obj.p, obj.n), 0);
  free(obj.p);
  char id[64], *out = NULL;
  const char *slash = strrchr(key, '/');
  ASSERT_NOT_NULL(slash);
  snprintf(id, sizeof id, "%.*s", (int)(slash - key), key);
  const char *idp = strrchr(id, '/');
  ASSERT_NOT_NULL(idp);
  int st = app_t_run(&out, NULL,
                     ARGS("restore", "app", "--instance", inst, "--from", url,
                          "--as", "damaged", "--set", idp + 1, "--key-file",
                          keyf, "-q"));
  if (st != 4 || !strstr(out, "damaged")) {
    app_t_show("restore of a changed object", out);
    TASK_FAIL_("exit %d", st);
  }
  free(out);
  ASSERT(!app_t_exists(inst, "damaged.db"));
  sql_serve_stop(srv, 10000);
  s3_client_free(c);
  return 0;
}

static int has_manifest(void *arg, const char *key, uint64_t size) {
  (void)size;
  size_t l = strlen(key), sl = strlen(".manifest.json");
  if (l > sl && strcmp(key + l - sl, ".manifest.json") == 0) (*(int *)arg)++;
  return 0;
}

/* A gateway that stalls in the middle of a backup (as one whose store was
 * full did), and one that never answers: `vdi backup` gives up within a
 * stated bound (VDI_S3_TIMEOUT T: an attempt moving nothing for T/3 is
 * cut, none starts after T, the cleanup gets min(10 s, T); so at most
 * 4T/3 + T after the stall, plus the engine's start and end), says what
 * failed and that the set is left where it is, and leaves no manifest; the next
 * backup aborts the uploads the stalled store kept.  (T = 6 s mid-backup:
 * a loaded gateway may take a second to create an upload.) */
TEST_IMPL_TIMEOUT(s3_vdi_stalled_store, 180) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  int port;
  /* Stalls 4 MiB into the first part. */
  pid_t relay = stall_relay("4194304", &port);
  char ep[128];
  snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=http://127.0.0.1:%d", port);
  char *out = NULL;
  int64_t t0 = now_ms();
  int st = app_t_run(
      &out, ENV(ep, "VDI_S3_TIMEOUT=6", "AWS_MAX_ATTEMPTS=5"),
      ARGS("backup", "src", "--instance", inst, "--to", url, "--quiet"));
  int64_t took = now_ms() - t0;
  fprintf(stderr, "stalled mid-backup: exit %d after %lld ms:\n%s", st,
          (long long)took, out);
  ASSERT_EQ(st, 1);
  ASSERT(strstr(out, "the store stopped answering"));
  /* The stalled store keeps what the backup left: said, and where. */
  ASSERT(strstr(out, "could not be removed: it is left in s3://"));
  ASSERT(strstr(out, "without a manifest (not a backup); no backup was "
                     "recorded"));
  ASSERT(!strstr(out, "was removed"));
  /* The bound: 4T/3 + T = 14 s after the stall, and the engine's time. */
  ASSERT_LT(took, 25000);
  free(out);
  int manifests = 0, open_uploads = 0;
  ASSERT_EQ(s3_list(c, bucket, pre, has_manifest, &manifests), 0);
  ASSERT_EQ(manifests, 0);
  char skey[400];
  ASSERT_EQ(find_key(c, bucket, pre, ".stripe0.vdibak", skey, sizeof skey), 0);
  /* The abort could not reach the store: the upload is still open (two,
   * if a slow create was retried), and listed as an incomplete set. */
  ASSERT_EQ(s3_mpu_list(c, bucket, pre, count_upload, &open_uploads), 0);
  ASSERT_GE(open_uploads, 1);
  char aborted[64];
  snprintf(aborted, sizeof aborted, "aborted %d unfinished upload",
           open_uploads);
  app_t_run_has("incomplete (no manifest", NULL, ARGS("list", "--from", url));

  /* A gateway that never answers at all: said at the start, in T + T/3. */
  int dead_port;
  pid_t dead = stall_relay("0", &dead_port);
  snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=http://127.0.0.1:%d", dead_port);
  t0 = now_ms();
  st = app_t_run(
      &out, ENV(ep, "VDI_S3_TIMEOUT=3"),
      ARGS("backup", "src", "--instance", inst, "--to", url, "--quiet"));
  took = now_ms() - t0;
  fprintf(stderr, "dead gateway: exit %d after %lld ms:\n%s", st,
          (long long)took, out);
  ASSERT_EQ(st, 1);
  ASSERT(strstr(out, "the store stopped answering"));
  ASSERT_EQ(count_lines(out, "\n"), 1);
  ASSERT_LT(took, 9000); /* 4T/3 = 4 s, and a loaded machine's slack */
  free(out);
  kill(dead, SIGKILL);
  wait_helper(dead);
  kill(relay, SIGKILL);
  wait_helper(relay);

  /* The store again: the next backup aborts what was left, and works. */
  app_t_run_has(aborted, NULL,
                ARGS("backup", "src", "--instance", inst, "--to", url));
  ASSERT_EQ(uploads_open(c, bucket, pre), 0);
  s3_client_free(c);
  return 0;
}

/* `vdi backup` interrupted (SIGTERM) while its upload is open cleans up
 * itself: its uploads are aborted, so no part, no object and no manifest
 * is left in the store. */
TEST_IMPL_TIMEOUT(s3_vdi_interrupted_backup_cleans_up, 120) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  char log[4400];
  pid_t p = slow_backup(c, bucket, pre, "2", log, sizeof log);
  kill(p, SIGTERM);
  ASSERT_EQ(wait_helper(p), 128 + SIGTERM);
  char *out = app_t_slurp(log);
  fprintf(stderr, "%s", out);
  /* Said removed, and it is: no upload, no object left. */
  ASSERT(strstr(out, "was removed; no backup was recorded"));
  free(out);
  ASSERT_EQ(uploads_open(c, bucket, pre), 0);
  ASSERT_EQ(objects(c, bucket, pre), 0);
  s3_client_free(c);
  return 0;
}

/* A busy gateway answers 503 SlowDown: `vdi backup` retries with backoff
 * and the backup is whole (the first four connections refused: the
 * relay counts what it answered, so the retries were really made); one
 * that never stops saying so gets one line naming it and how hard it was
 * tried, and no manifest. */
TEST_IMPL_TIMEOUT(s3_vdi_slowdown_retried, 120) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  char count[4400], ep[128];
  snprintf(count, sizeof count, "%s/slowed", test_tmpdir());
  int port;
  pid_t relay = fault_relay("999999999999", NULL, "4", count, &port);
  snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=http://127.0.0.1:%d", port);
  char *out = NULL;
  int st = app_t_run(&out, ENV(ep, "AWS_MAX_ATTEMPTS=6"),
                     ARGS("backup", "src", "--instance", inst, "--to", url,
                          "--stripes", "2", "--quiet"));
  if (st != 0) {
    app_t_show("backup through a busy gateway", out);
    TASK_FAIL_("exit %d", st);
  }
  free(out);
  char *n = app_t_slurp(count);
  ASSERT_EQ(atoi(n), 4);
  free(n);
  kill(relay, SIGKILL);
  wait_helper(relay);
  app_t_verify_restore(inst, "src", url, NULL, "copy");

  /* Always busy: one line, the code, the attempts; no manifest. */
  const char *pre2 = prefix();
  char url2[600];
  snprintf(url2, sizeof url2, "s3://%s/%s", bucket, pre2);
  relay = fault_relay("999999999999", NULL, "1000", count, &port);
  snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL=http://127.0.0.1:%d", port);
  st = app_t_run(
      &out, ENV(ep, "AWS_MAX_ATTEMPTS=3"),
      ARGS("backup", "src", "--instance", inst, "--to", url2, "--quiet"));
  fprintf(stderr, "always busy: exit %d:\n%s", st, out);
  ASSERT_EQ(st, 1);
  ASSERT(strstr(out, "SlowDown") && strstr(out, "3 attempts"));
  ASSERT_EQ(count_lines(out, "\n"), 1);
  free(out);
  kill(relay, SIGKILL);
  wait_helper(relay);
  int manifests = 0;
  ASSERT_EQ(s3_list(c, bucket, pre2, has_manifest, &manifests), 0);
  ASSERT_EQ(manifests, 0);
  s3_client_free(c);
  return 0;
}

/* Temporary credentials of the test user from the store's STS
 * (GetSessionToken, through the server script), as NAME=value strings,
 * with the endpoint of the gateway that answers STS and takes them. */
struct session {
  char endpoint[200], key[200], secret[200], token[2200];
};

static void session_credentials(struct session *t) {
  char script[4200], cmd[4300];
  server_script(script, sizeof script);
  snprintf(cmd, sizeof cmd, "'%s' session", script);
  FILE *f = popen(cmd, "r");
  ASSERT_NOT_NULL(f);
  char line[2400], name[64], value[2100];
  memset(t, 0, sizeof *t);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "export %63[A-Z_]='%2099[^']'", name, value) == 2) {
      char *to = strcmp(name, "AWS_ACCESS_KEY_ID") == 0       ? t->key
                 : strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0 ? t->secret
                 : strcmp(name, "AWS_SESSION_TOKEN") == 0     ? t->token
                 : strcmp(name, "AWS_ENDPOINT_URL") == 0      ? t->endpoint
                                                              : NULL;
      size_t cap = to == t->token ? sizeof t->token : sizeof t->key;
      if (to) snprintf(to, cap, "%s=%s", name, value);
    }
  ASSERT_EQ(pclose(f), 0);
  ASSERT(t->endpoint[0] && t->key[0] && t->secret[0] && t->token[0]);
}

/* Temporary credentials with a session token, from the environment and
 * from a profile file as the AWS CLI reads them: `vdi` backs up and lists
 * with them; the same keys without their token are refused in one line,
 * so the token is really sent and checked. */
TEST_IMPL_TIMEOUT(s3_vdi_session_token, 120) {
  const char *pre = prefix(), *bucket;
  struct s3_config cfg;
  struct s3_client *c = vdi_client(pre, &cfg, &bucket);
  struct session t;
  session_credentials(&t);
  char *out = NULL;
  int st = app_t_run(&out, ENV(t.endpoint, t.key, t.secret, t.token),
                     ARGS("backup", "src", "--instance", inst, "--to", url,
                          "--stripes", "2", "--quiet"));
  if (st != 0) {
    app_t_show("backup with a session token", out);
    TASK_FAIL_("exit %d", st);
  }
  free(out);
  app_t_verify_restore(inst, "src", url, NULL, "copy");

  /* The profile file's aws_session_token, nothing in the environment. */
  char creds[4200];
  snprintf(creds, sizeof creds, "%s/credentials", test_tmpdir());
  FILE *f = fopen(creds, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f,
          "[tmp]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
          "aws_session_token = %s\n",
          strchr(t.key, '=') + 1, strchr(t.secret, '=') + 1,
          strchr(t.token, '=') + 1);
  fclose(f);
  char credenv[4300];
  snprintf(credenv, sizeof credenv, "AWS_SHARED_CREDENTIALS_FILE=%s", creds);
  st = app_t_run(&out,
                 ENV(t.endpoint, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=",
                     "AWS_SESSION_TOKEN=", "AWS_PROFILE=tmp", credenv),
                 ARGS("list", "--from", url));
  if (st != 0 || !strstr(out, "-full  full  finished")) {
    app_t_show("list with the profile's session token", out);
    TASK_FAIL_("exit %d", st);
  }
  free(out);

  /* The temporary keys without their token: refused, in one line. */
  st = app_t_run(&out, ENV(t.endpoint, t.key, t.secret, "AWS_SESSION_TOKEN="),
                 ARGS("list", "--from", url));
  fprintf(stderr, "without the token: exit %d:\n%s", st, out);
  ASSERT_NE(st, 0);
  ASSERT(strstr(out, "AccessDenied") || strstr(out, "InvalidAccessKeyId"));
  ASSERT_EQ(count_lines(out, "\n"), 1);
  free(out);
  s3_client_free(c);
  return 0;
}
