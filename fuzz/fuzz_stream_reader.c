/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_stream_reader.c - the backup stream reader on arbitrary bytes
 * (STYLE.md 2.9; issue 6: "the backup stream reader (RESTORE and
 * VERIFYONLY of arbitrary bytes)").
 *
 * The input is 1 to 3 stripes ("media families").  They are read twice:
 *   - from memory, through vdisql's reader (stream_read_headers and
 *     stream_read_body, tools/vdisql/restore.c) over a media driver of our
 *     own: the result must be success, or a damage / format message (Msg
 *     3189, 3241, 3132); pages reach the sink only in order, each once,
 *     and on success all of them;
 *     an encrypted set (BACKUP ... WITH ENCRYPTION) is read through the
 *     decrypting media of backupcrypt.c with the private key of the
 *     instance's certificate "fz" (a fixed test key, below): Msg 33111 for
 *     another certificate;
 *   - from files, by running a real statement in process (exec_stmt with
 *     DISK devices, as `vdisql -Q` would): RESTORE VERIFYONLY, RESTORE
 *     HEADERONLY, or RESTORE DATABASE ... WITH REPLACE over an existing
 *     database.  A restore that fails must leave that database byte for
 *     byte as it was and nothing else in the instance directory.
 *
 * Parameters (from the end): a mode byte (stripe count: mode % 3 + 1;
 * statement: bits 2-4, 0 VERIFYONLY, 1 RESTORE DATABASE, 2 HEADERONLY,
 * else none; bit 5: recompute the CRCs, see fix_crcs), then a 3-byte length for
 * every stripe but the last, which gets the rest.
 */
#include "fuzz_helpers.h"

#include "backupcrypt.h"
#include "certs.h"
#include "crc32c.h"
#include "exec.h"
#include "stream.h"

#include <dirent.h>
#include <ftw.h>
#include <openssl/err.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define MAXSTRIPES 3

/* The instance's certificate "fz", for encrypted inputs: a key made for
 * this fuzzer and published with it, protecting nothing (its PKCS#8
 * password is "fuzz").  The seeds enc-* were encrypted for it. */
static const char fz_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDLzCCAhegAwIBAgIUNbdlIb/ochPp/FBzEtvCme7if7IwDQYJKoZIhvcNAQEL\n"
    "BQAwJjEkMCIGA1UEAwwbb3BlbnZkaSBmdXp6IChub3QgYSBzZWNyZXQpMCAXDTI2\n"
    "MTIwNzAxMjAyM1oYDzIxMjYxMTEzMDEyMDIzWjAmMSQwIgYDVQQDDBtvcGVudmRp\n"
    "IGZ1enogKG5vdCBhIHNlY3JldCkwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK\n"
    "AoIBAQDLt5Nu4pWr6N/OeD7wUMo0iMYv7UEGGqdG6NdrWNmwLfTOQrVObPlIFwO6\n"
    "Q6ykbmlDI3PDOEL09S8k+VGjxgR0ZiTIPf4ApB+9E/maXdZZZ5pd1BS0if/wUkig\n"
    "2qW+SBH5HSK/p1+6BdQRhmdzaBjbHYAC3AflTFguDozVFbyhUhs/spGHC+dHRwVT\n"
    "/fyPXrZl0Z+Gds27faIFtwx3jfslfJF+kYTzEuL8yFEZ8j3cAHexseswjWbCS3Zb\n"
    "A/NAsFJCLiEqSGYYC4AcDqMX1bln0KES3Br5m0MwCz33GWBQZBTNa/piCBJA5OC9\n"
    "hu4DV2YHfaMWuxrTtYUcxvi1i1XXAgMBAAGjUzBRMB0GA1UdDgQWBBS1U6o6etFU\n"
    "4lbSaLNAxS5X6hSz7jAfBgNVHSMEGDAWgBS1U6o6etFU4lbSaLNAxS5X6hSz7jAP\n"
    "BgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQAxRCwBdLKuMEoyyw2i\n"
    "0eSOIHZnpq3dydRxR9vCaAjgDkyoYRHjvcuqR2z0PrjmAEwuUxfpX5stY8cq7P8x\n"
    "nzisf/aaRzN9afQYw/PmBOtBFYl25urkun98JqQD5+1aXXMx0peOkmmX4uzI6GKE\n"
    "zpjeaK1ZMQfeDS/YTunPMfto6DL3ekvPUISvLodLGtuSFTBp34U3NVxpK6HU3R5p\n"
    "KtXX9Nuw4h/Rt10VxYv2r6gjj56bWIfuwNjT9DLsw0w/dqri+LkXVCnB89AvOTur\n"
    "PcJTeYjg2XrtdEsWIGxysYL3DWXgleG7wSGoU4iwDDV3IgWGnwUpIPTDFnvCXdGa\n"
    "h7uY\n"
    "-----END CERTIFICATE-----\n";
static const char fz_key[] =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIIFLTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI06bY/zX82CQCAggA\n"
    "MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBB4dQ6tLwMQ2u/uWeysWXPJBIIE\n"
    "0EC0KhzzOunpDP8jFunv+aQ1scvgvdAqn1rZoRfdRI8ov591qctrQb0WXHZZY0e2\n"
    "E750FlDIFVS2p4WgC2iV4Ychn/kFSJvalAyj/tvibA7zVoTXGBwUZQUdBT1+0NXT\n"
    "ssFjVoEkIKRJjRHXbmn2PsO8AeUtHG8wWQTpjtx09z8tewSREwIOr1zdMqVTenfc\n"
    "pEmlgHwQ40/YijTL6VG2HJXXJirhW5+TM3cDMBPqLvuh6e/jb/nuBMKQrNxQxTHF\n"
    "TVmK22tw2aoOp1uvJSZv2UNFW8Dj9wf4GkjvsCHGjSscqiKGyHChBzsHBqBjnnDZ\n"
    "E1PkgN9oxeSl6oIq2RdovXA2j4RKeqYYHpb2XqDZhuBB/wyRV0YkY1Bye6RXG9cS\n"
    "JsaDUoFh8fVgiIxHrKpJ/yzUlKH01RD7GV/UFkU+p0lEVx3b+TCFJ+4ujx9SCjjf\n"
    "rKF8ZIuuXcAWuz6x3+l/UVZarO/cOZejE7yWFOp52xBDLw8FTItWQtDEjbuRkn1G\n"
    "VcbhdyKGvhCgxSbIn/0LppUpnXnXgmUI8FN3+6egmnvKIW3VfuGfUFIIvwMXhKv0\n"
    "JTrT4TfCUNHI7UGssunAWJiMOB7FlnoY1KftZoqwd4V0pzSezIyEbSYR6lIMrMpN\n"
    "o0Ro3Sc0ZprEReo70qWfO/GngDZnp8F6ohz70MTePIEMehgXute3Dwxh5r0L6I44\n"
    "GMOAsFN9MTow9EvE6MPsj4Y09mJLihcRcT/Kzu2cJMHQJTyDVrGocbMERx4aUTE9\n"
    "wF4BHTPJtt/diPiP3noHARV+g2jP8NMSDQ31UoMnjim+41Wmq7ORpciYvDyvqVA9\n"
    "LRaXTJ1mEcl35j8MSmu/UUnocLIYDc5ZbywFQCLKRSupu4RIhzAbH3BQjrbm/Vdb\n"
    "ecP78m3QZbrmRIsJLC7PQQ8Y4s/3Yk26YaiT0rn9Rh15Hk1puw0Q4Rvx4QMZ3u6D\n"
    "jal/TssUAtj1fhupN7vjqlaOnrufDYg3D6uHqVZ3K8N4ZChPUPtV28nYTzf59jGy\n"
    "qPKucdBS9FG3SNcuJr0KWOeYWovKENnxVBpw1Cpnk7/jortOPC5L+6SMH37UqJod\n"
    "0CRw9EyOdz8111NYxMh1EcbkcbH8jwXkypCipO+msL7NzINYlPvSQzEXCZaVOlZ2\n"
    "cphTMJaQh/T7YlYFA6lShkQHRhSNkqF09m3OQqiCC9yIWYGVebyjB7mApApBg5LI\n"
    "WUQF7dq8WxUi0O+x5b1ik5cnMyYK0G5bjMBfkl0GqgY+NttPykZp2Thn34GaPAOa\n"
    "IsfT4gpwKIosxgJGQiwMfpVnF4c8qks80mhwVv1jLu7wBs10tHgyHasXdYVnXqsi\n"
    "LWz13xs7N89EMw/8FHiaE0Zn9j4GX4+kpFwCAQi2Xyc6mZY8AYZ6yxlgNxBC4Rb/\n"
    "zxxOAsOCuRTvK9MqW2NXsIRQK6DhfAOf0vlSAqZ5jLE2wa+Xtm4C/sfKYq8+QJ2n\n"
    "XPZ6TV2amRdgjRORwHyVn0kJ6riZJPNT+pkgrVK9cM4J8J3IVkLA3XS5NNDhvvYE\n"
    "hjyT6OiRJIjJyym3TcDUEDRF48xO0uxmoD5/82BwuqDogFYYMNaEYIVfC334BZ9z\n"
    "oFisL05Dlq+YiZxXOKF4/l7a7ApjQaySLVWIaRa8iMTm\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

static char inst[64];

/* ------------------------------------------------------ CRC repair
 * Most mutations break a record's CRC, and the reader rightly stops at
 * the first one; to reach the checks behind them, one input in two has
 * every record's CRCs recomputed after mutation (as if a careless or
 * hostile writer had made them), using the layout of STREAM-FORMAT.md. */

static uint32_t get32(const uint8_t *p) {
  return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void fix_crcs(uint8_t *p, size_t len) {
  static uint8_t raw[VS_MAX_RAW_BLOCK];
  if (len < VS_HEADER_SIZE) return;
  put32(p + VS_HEADER_SIZE - 4, crc32c_update(0, p, VS_HEADER_SIZE - 4));
  uint32_t chain = 0;
  size_t off = VS_HEADER_SIZE;
  while (off + 4 <= len) {
    uint32_t magic = get32(p + off);
    if (magic == VS_BLOCK_MAGIC && off + VS_BLOCK_HDR_SIZE <= len) {
      uint8_t *b = p + off, *data = b + VS_BLOCK_HDR_SIZE;
      size_t avail = len - off - VS_BLOCK_HDR_SIZE;
      size_t sl = get32(b + 28) < avail ? get32(b + 28) : avail;
      size_t rl = get32(b + 32);
      put32(b + 40, crc32c_update(0, data, sl));
      const uint8_t *r = data;
      if (get32(b + 4) & VS_B_ZSTD) {
        size_t got = rl <= sizeof raw ? ZSTD_decompress(raw, rl, data, sl) : 0;
        r = ZSTD_isError(got) || got != rl ? NULL : raw;
      } else if (rl > sl) {
        r = NULL;
      }
      if (r) {
        put32(b + 36, crc32c_update(0, r, rl));
        chain = crc32c_update(chain, r, rl);
      }
      put32(b + 44, crc32c_update(0, b, 44));
      off += VS_BLOCK_HDR_SIZE + sl;
    } else if (magic == VS_TRAILER_MAGIC && off + VS_TRAILER_FIXED <= len) {
      uint32_t pad = get32(p + off + 4);
      size_t n = VS_TRAILER_FIXED + (size_t)pad;
      put32(p + off + 48, chain);
      if (pad <= VS_MAX_PAD && off + n + 4 <= len)
        put32(p + off + n, crc32c_update(0, p + off, n));
      break;
    } else {
      break;
    }
  }
}

/* ------------------------------------------------------ memory media */

struct mem_media {
  media_t m;
  const uint8_t *p[MAXSTRIPES];
  size_t len[MAXSTRIPES], pos[MAXSTRIPES];
};

static long mem_read(media_t *m, unsigned s, void *buf, size_t len) {
  struct mem_media *mm = (struct mem_media *)m;
  FZ_CHECK(s < m->nstripes);
  size_t k = mm->len[s] - mm->pos[s];
  if (k > len) k = len;
  memcpy(buf, mm->p[s] + mm->pos[s], k);
  mm->pos[s] += k;
  return (long)k;
}

static int mem_write(media_t *m, unsigned s, const void *b, size_t n) {
  (void)m, (void)s, (void)b, (void)n;
  FZ_CHECK(!"the reader never writes");
  return -1;
}

static int mem_finish(media_t *m, int ok) {
  (void)m, (void)ok;
  return 0;
}

/* Memory has no peer that could go away. */
static int mem_peer_ok(media_t *m) {
  (void)m;
  return 0;
}

static void mem_destroy(media_t *m) {
  (void)m;
}

static const struct media_ops mem_ops = {mem_write, mem_read, mem_finish,
                                         mem_peer_ok, mem_destroy};

struct sink_state {
  uint64_t next, page_count;
  uint32_t page_size;
};

static int sink_write(void *ctx, uint64_t first, uint32_t npages,
                      const uint8_t *data, vmsg *err) {
  struct sink_state *s = ctx;
  (void)err;
  FZ_CHECK(first == s->next && npages >= 1 && data != NULL);
  FZ_CHECK(first - 1 + npages <= s->page_count);
  volatile uint8_t x = data[(size_t)npages * s->page_size - 1]; /* in bounds */
  (void)x;
  s->next += npages;
  return 0;
}

static void setup_keys(void);

static void read_memory(const uint8_t *const *p, const size_t *len,
                        unsigned n) {
  static const int msgs[] = {3189, 3241, 3132, 701, 33111};
  struct mem_media mm;
  memset(&mm, 0, sizeof mm);
  vmsg err = {0};
  mm.m.ops = &mem_ops;
  mm.m.nstripes = n;
  mm.m.align = 1;
  mm.m.err = &err;
  char *names[MAXSTRIPES] = {"s0", "s1", "s2"};
  for (unsigned i = 0; i < n; i++) {
    mm.p[i] = p[i];
    mm.len[i] = len[i];
  }
  vs_header h;
  unsigned order[VS_MAX_STRIPES];
  int rc = stream_read_headers(&mm.m, names, &h, order, &err);
  media_t *m = &mm.m;
  EVP_PKEY *priv = NULL;
  if (rc == 0 && (h.flags & VS_F_ENCRYPTED)) {
    setup_keys();
    priv = certs_private(inst, h.enc_thumbprint, &err);
    media_t *dec = priv ? bc_reader(m, &h, order, priv, names, &err) : NULL;
    if (dec)
      m = dec;
    else
      rc = -1;
  }
  if (rc == 0) {
    FZ_CHECK(h.stripe_count == n && h.page_size >= 512);
    for (unsigned i = 0; i < n; i++)
      FZ_CHECK(order[i] < n);
    struct sink_state st = {1, h.page_count, h.page_size};
    rsink sink = {&st, sink_write};
    rc = stream_read_body(m, names, &h, order, &sink, 0, &err);
    if (rc == 0) FZ_CHECK(st.next == h.page_count + 1);
  }
  if (m != &mm.m) m->ops->destroy(m); /* the memory media's is a no-op */
  EVP_PKEY_free(priv);
  ERR_clear_error();
  if (getenv("FZ_TRACE"))
    fprintf(stderr, "memory: %d stripes: rc %d Msg %d %s\n", n, rc, err.num,
            err.text);
  if (rc != 0) {
    int known = 0;
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
      if (err.num == msgs[i]) known = 1;
    FZ_CHECK(known && err.text[0]);
  }
}

/* ------------------------------------------------- the real statement */
static uint8_t *orig; /* bytes of the database a failed restore must keep */
static size_t orig_len;

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

static void put(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  FZ_CHECK(f && fwrite(p, 1, n, f) == n);
  fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *f) {
  (void)st, (void)flag, (void)f;
  return remove(path) == 0 ? 0 : 0; /* best effort */
}

/* The instance directory, its .vdisql (keys, catalog, locks) and media. */
static void cleanup(void) {
  char path[160];
  nftw(inst, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  snprintf(path, sizeof path, "%s-media", inst);
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The instance directory with database fzdb, made once per process. */
static void setup_instance(void) {
  char path[128];
  atexit(cleanup);
  snprintf(inst, sizeof inst, "/tmp/fz-stream-%ld", (long)getpid());
  mkdir(inst, 0700);
  snprintf(path, sizeof path, "%s/fzdb.db", inst);
  unlink(path);
  sqlite3 *db;
  FZ_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  FZ_CHECK(sqlite3_exec(db,
                        "CREATE TABLE t(x); INSERT INTO t VALUES('original');",
                        NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  orig = slurp(path, &orig_len);
  FZ_CHECK(orig != NULL);
}

/* The certificate "fz" with its private key, as a DBA would add it: once
 * per process, at the first encrypted input (the master key's PBKDF2 and
 * the fsyncs would slow every input down). */
static void setup_keys(void) {
  static int done;
  char cer[128], key[128], sql[512];
  if (done++) return;
  snprintf(cer, sizeof cer, "%s-fz.cer", inst);
  snprintf(key, sizeof key, "%s-fz.key", inst);
  put(cer, fz_cert, strlen(fz_cert));
  put(key, fz_key, strlen(fz_key));
  snprintf(sql, sizeof sql,
           "CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'fz'\n"
           "CREATE CERTIFICATE fz FROM FILE = '%s' WITH PRIVATE KEY "
           "(FILE = '%s', DECRYPTION BY PASSWORD = 'fuzz')",
           cer, key);
  vmsg err = {0};
  toklist tl;
  stmtlist sl;
  FZ_CHECK(lex_batch(sql, &tl, &err) == 0);
  FZ_CHECK(parse_batch(&tl, &sl, &err) == 0 && sl.n == 2);
  exec_ctx cx = {inst, "fz", "\t", 1};
  FZ_CHECK(exec_stmt(&cx, &sl.v[0]) == 0 && exec_stmt(&cx, &sl.v[1]) == 0);
  stmtlist_free(&sl);
  toklist_free(&tl);
  unlink(cer);
  unlink(key);
}

static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static void run_statement(const uint8_t *const *p, const size_t *len,
                          unsigned n, int kind) {
  char media_dir[128], dbpath[128], sql[1024];
  snprintf(media_dir, sizeof media_dir, "%s-media", inst);
  mkdir(media_dir, 0700);
  snprintf(dbpath, sizeof dbpath, "%s/fzdb.db", inst);
  static const char *const verbs[] = {
      "RESTORE VERIFYONLY", "RESTORE DATABASE fzdb", "RESTORE HEADERONLY"};
  int off = snprintf(sql, sizeof sql, "%s FROM ", verbs[kind]);
  for (unsigned i = 0; i < n; i++) {
    char f[160];
    snprintf(f, sizeof f, "%s/s%u", media_dir, i);
    put(f, p[i], len[i]);
    off += snprintf(sql + off, sizeof sql - (size_t)off, "%sDISK = '%s'",
                    i ? ", " : "", f);
  }
  snprintf(sql + off, sizeof sql - (size_t)off, "%s",
           kind == 1 ? " WITH REPLACE" : "");

  vmsg err = {0};
  toklist tl;
  stmtlist sl;
  FZ_CHECK(lex_batch(sql, &tl, &err) == 0);
  FZ_CHECK(parse_batch(&tl, &sl, &err) == 0 && sl.n == 1);
  exec_ctx cx = {inst, "fz", "\t", 1};
  int rc = exec_stmt(&cx, &sl.v[0]);
  if (getenv("FZ_TRACE")) fprintf(stderr, "%s: rc %d\n", verbs[kind], rc);
  stmtlist_free(&sl);
  toklist_free(&tl);

  size_t now_len = 0;
  uint8_t *now = slurp(dbpath, &now_len);
  FZ_CHECK(now != NULL); /* never lost, whatever happened */
  if (rc != 0 || kind != 1)
    FZ_CHECK(now_len == orig_len && memcmp(now, orig, orig_len) == 0);
  free(now);
  FZ_CHECK(dir_entries(inst) == 1); /* no temporary file left behind */
  if (rc == 0 && kind == 1) put(dbpath, orig, orig_len); /* for the next */
  for (unsigned i = 0; i < n; i++) {
    char f[160];
    snprintf(f, sizeof f, "%s/s%u", media_dir, i);
    unlink(f);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!orig) setup_instance();
  fz_producer fp;
  fzp_init(&fp, data, size);
  uint8_t mode = fzp_u8(&fp);
  unsigned n = mode % MAXSTRIPES + 1;
  size_t len[MAXSTRIPES];
  const uint8_t *p[MAXSTRIPES];
  for (unsigned i = 0; i + 1 < n; i++)
    len[i] = fzp_range(&fp, 0, 0xFFFFFF);
  uint8_t *copy[MAXSTRIPES];
  for (unsigned i = 0; i < n; i++) {
    const uint8_t *q =
        i + 1 < n ? fzp_take(&fp, len[i], &len[i]) : fzp_rest(&fp, &len[i]);
    copy[i] = malloc(len[i] + 1);
    memcpy(copy[i], q, len[i]);
    if (mode & 0x20) fix_crcs(copy[i], len[i]);
    p[i] = copy[i];
  }
  read_memory(p, len, n);
  /* The statement path costs file system work: three inputs in eight. */
  unsigned kind = (mode >> 2) & 7;
  if (kind < 3) run_statement(p, len, n, (int)kind);
  for (unsigned i = 0; i < n; i++)
    free(copy[i]);
  return 0;
}
