/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.c - "<db>.manifest.json", the record that makes a backup
 * directory hold a complete backup.
 *
 * It is written LAST, after every stripe file is durable and renamed, and
 * atomically (temporary file, fsync, rename, fsync of the directory), so a
 * manifest exists only for a backup that finished.  It names the database,
 * the set, each stripe's file, size and CRC-32C as stored, the times, the
 * compression and the tool version.  Restore and verify read it first and
 * check every stripe against it before the engine sees a byte.
 *
 * It is read with jansson (Debian's libjansson), strictly: duplicate keys,
 * NUL in strings and non-integer counts are refused.
 *
 * An encrypted backup's manifest (format_version 3; a plain one stays
 * version 2, which earlier vdi versions read) says so: "encryption" (the
 * algorithm of its stripes) and "key_id" (seal.h's id of the key, a hash,
 * never the key), so that list and verify show it and a restore with
 * another key names the key it needs before reading a stripe; a set sealed
 * to a public key (--recipient) adds "recipient" (the public key) and
 * "wrapped_key" (the set's random key sealed to it).
 *
 * The manifest protects itself (format_version 2): its last field,
 * "manifest_crc32c", is the CRC-32C of the manifest as vdi renders it
 * without that field.  The reader parses the fields, renders them again
 * the same way and compares, so an edited value (sizes, compression,
 * names, times) is refused, not shown.  Every stripe's own header is also
 * checked against the manifest (database, stripe count and index,
 * compression, one backup set), which covers version 1 manifests, written
 * before the checksum existed and still read.
 */
#include "app.h"
#include "fmode.h"
#include "vstream.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_FORMAT  "openvdi-backup-manifest"
#define MANIFEST_VERSION 3 /* 3: encrypted; 2: with manifest_crc32c; 1 */
#define MANIFEST_MAX     (1 << 20)

void manifest_file_name(const char *db, char *buf, size_t n) {
  snprintf(buf, n, "%s%s", db, MANIFEST_SUFFIX);
}

/* The manifest's text; with_crc adds the self-checksum field. */
static void render(FILE *f, const struct manifest *m, int version, int with_crc,
                   uint32_t crc) {
  uint64_t total = 0;
  for (int i = 0; i < m->nstripes; i++)
    total += m->stripes[i].bytes;
  fprintf(f, "{\n  \"format\": \"%s\",\n  \"format_version\": %d,\n",
          MANIFEST_FORMAT, version);
  fprintf(f, "  \"tool\": ");
  json_put_str(f, m->tool);
  fprintf(f, ",\n  \"database\": ");
  json_put_str(f, m->database);
  fprintf(f, ",\n  \"set\": ");
  json_put_str(f, m->set_name);
  fprintf(f, ",\n  \"compression\": ");
  json_put_str(f, m->compression);
  if (version >= 3) {
    fprintf(f, ",\n  \"encryption\": ");
    json_put_str(f, m->encryption);
    fprintf(f, ",\n  \"key_id\": ");
    json_put_str(f, m->key_id);
    if (m->recipient[0]) {
      fprintf(f, ",\n  \"recipient\": ");
      json_put_str(f, m->recipient);
      fprintf(f, ",\n  \"wrapped_key\": ");
      json_put_str(f, m->wrapped_key);
    }
  }
  fprintf(f, ",\n  \"started\": ");
  json_put_str(f, m->started);
  fprintf(f, ",\n  \"finished\": ");
  json_put_str(f, m->finished);
  fprintf(f, ",\n  \"seconds\": %.3f,\n", m->seconds);
  fprintf(f, "  \"database_bytes\": %" PRIu64 ",\n", m->db_bytes);
  fprintf(f, "  \"total_bytes\": %" PRIu64 ",\n", total);
  fprintf(f, "  \"stripes\": [\n");
  for (int i = 0; i < m->nstripes; i++) {
    fprintf(f, "    {\"index\": %d, \"file\": ", i);
    json_put_str(f, m->stripes[i].file);
    fprintf(f, ", \"bytes\": %" PRIu64 ", \"crc32c\": \"%08" PRIx32 "\"}%s\n",
            m->stripes[i].bytes, m->stripes[i].crc32c,
            i + 1 < m->nstripes ? "," : "");
  }
  fprintf(f, "  ]");
  if (with_crc) fprintf(f, ",\n  \"manifest_crc32c\": \"%08" PRIx32 "\"", crc);
  fprintf(f, "\n}\n");
}

/* The version a manifest is written in: 3 when encrypted, else 2. */
static int version_of(const struct manifest *m) {
  return m->encryption[0] ? 3 : 2;
}

/* CRC-32C of the manifest rendered without its checksum field. */
static uint32_t self_crc(const struct manifest *m) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) abort();
  render(f, m, version_of(m), 0, 0);
  if (fclose(f) != 0) abort();
  uint32_t crc = app_crc32c(0, text, len);
  free(text);
  return crc;
}

int manifest_write(const char *dir, const struct manifest *m,
                   const struct stat *src) {
  char name[256], path[4400], tmp[4500];
  manifest_file_name(m->database, name, sizeof name);
  if (app_path(path, sizeof path, "%s/%s", dir, name) != 0 ||
      app_path(tmp, sizeof tmp, "%s/.%s.tmp-%s", dir, name, m->set_name) != 0)
    return -ENAMETOOLONG;
  if (fm_is_symlink(path)) return -ELOOP;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  /* It names the database and the backup: as private as the stripes. */
  int err = -fm_apply(fd, src);
  FILE *f = err ? NULL : fdopen(fd, "w");
  if (!f) {
    if (!err) err = errno;
    close(fd);
    unlink(tmp);
    return -err;
  }
  render(f, m, version_of(m), 1, self_crc(m));
  if (fflush(f) != 0 || ferror(f)) err = errno ? errno : EIO;
  if (!err && fsync(fd) != 0) err = errno;
  if (fclose(f) != 0 && !err) err = errno;
  if (!err && rename(tmp, path) != 0) err = errno;
  if (err) {
    unlink(tmp);
    return -err;
  }
  int rc = app_fsync_dir(dir);
  return rc;
}

char *manifest_text(const struct manifest *m, size_t *len) {
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (!f) abort();
  render(f, m, version_of(m), 1, self_crc(m));
  if (fclose(f) != 0) abort();
  return text;
}

/* A stripe file name from a manifest must stay inside the directory. */
static int safe_file_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 200 || s[0] == '.') return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '/' || (unsigned char)s[i] < 0x20) return 0;
  return 1;
}

static int get_str(const json_t *o, const char *key, char *out, size_t n) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_string(v) || json_string_length(v) >= n ||
      strlen(json_string_value(v)) != json_string_length(v))
    return -1;
  snprintf(out, n, "%s", json_string_value(v));
  return 0;
}

/* A whole number 0..2^53 (as the writer puts them: integers). */
static int get_u64(const json_t *o, const char *key, uint64_t *out) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      json_integer_value(v) > 9007199254740992LL)
    return -1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

int manifest_read(const char *path, struct manifest *m, char *why,
                  size_t whylen) {
  memset(m, 0, sizeof *m);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    snprintf(why, whylen, "%s", strerror(err));
    return -err;
  }
  char *text = malloc(MANIFEST_MAX + 1);
  if (!text) abort();
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, text + n, MANIFEST_MAX + 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (n > MANIFEST_MAX) break;
  }
  close(fd);
  int rc = manifest_parse(text, n, m, why, whylen);
  free(text);
  return rc;
}

int manifest_parse(const char *text, size_t n, struct manifest *m, char *why,
                   size_t whylen) {
  memset(m, 0, sizeof *m);
  if (n > MANIFEST_MAX) {
    snprintf(why, whylen, "manifest too large");
    return -EINVAL;
  }
  json_error_t jerr;
  /* Duplicate keys would let two readers see two manifests: refused. */
  json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
  if (!j) {
    snprintf(why, whylen, "malformed manifest: %s at byte %d", jerr.text,
             jerr.position);
    return -EINVAL;
  }
  int rc = -EINVAL;
  char fmt[64];
  uint64_t ver = 0, u = 0;
  const json_t *arr = json_object_get(j, "stripes");
  const json_t *secs = json_object_get(j, "seconds");
  if (!json_is_object(j) || get_str(j, "format", fmt, sizeof fmt) != 0 ||
      strcmp(fmt, MANIFEST_FORMAT) != 0) {
    snprintf(why, whylen, "not an openvdi backup manifest");
    goto out;
  }
  if (get_u64(j, "format_version", &ver) != 0 || ver < 1 ||
      ver > MANIFEST_VERSION) {
    snprintf(why, whylen, "unsupported manifest version");
    goto out;
  }
  if (get_str(j, "database", m->database, sizeof m->database) != 0 ||
      !app_valid_db_name(m->database) ||
      get_str(j, "set", m->set_name, sizeof m->set_name) != 0 ||
      get_str(j, "compression", m->compression, sizeof m->compression) != 0 ||
      get_str(j, "tool", m->tool, sizeof m->tool) != 0 ||
      get_str(j, "started", m->started, sizeof m->started) != 0 ||
      get_str(j, "finished", m->finished, sizeof m->finished) != 0 ||
      get_u64(j, "database_bytes", &m->db_bytes) != 0 ||
      get_u64(j, "total_bytes", &u) != 0 || !json_is_number(secs)) {
    snprintf(why, whylen, "manifest lacks a field or has a bad value");
    goto out;
  }
  m->seconds = json_number_value(secs);
  if (ver >= 3 &&
      (get_str(j, "encryption", m->encryption, sizeof m->encryption) != 0 ||
       get_str(j, "key_id", m->key_id, sizeof m->key_id) != 0 ||
       !m->encryption[0] || strlen(m->key_id) != 32 ||
       strspn(m->key_id, "0123456789abcdef") != 32)) {
    snprintf(why, whylen, "manifest has a bad encryption or key_id");
    goto out;
  }
  if (ver >= 3 && json_object_get(j, "recipient") &&
      (get_str(j, "recipient", m->recipient, sizeof m->recipient) != 0 ||
       get_str(j, "wrapped_key", m->wrapped_key, sizeof m->wrapped_key) != 0 ||
       strlen(m->recipient) != 64 || strlen(m->wrapped_key) != 160 ||
       strspn(m->recipient, "0123456789abcdef") != 64 ||
       strspn(m->wrapped_key, "0123456789abcdef") != 160)) {
    snprintf(why, whylen, "manifest has a bad recipient or wrapped_key");
    goto out;
  }
  size_t na = json_array_size(arr);
  if (!json_is_array(arr) || na < 1 || na > APP_MAX_STRIPES) {
    snprintf(why, whylen, "manifest has no valid stripe list");
    goto out;
  }
  uint64_t total = 0;
  for (int i = 0; i < (int)na; i++) {
    const json_t *s = json_array_get(arr, (size_t)i);
    struct manifest_stripe *ms = &m->stripes[i];
    uint64_t idx;
    char crc[16], *end;
    if (get_u64(s, "index", &idx) != 0 || idx != (uint64_t)i ||
        get_str(s, "file", ms->file, sizeof ms->file) != 0 ||
        !safe_file_name(ms->file) || get_u64(s, "bytes", &ms->bytes) != 0 ||
        get_str(s, "crc32c", crc, sizeof crc) != 0 || strlen(crc) != 8) {
      snprintf(why, whylen, "stripe %d: bad entry in the manifest", i);
      goto out;
    }
    unsigned long c = strtoul(crc, &end, 16);
    if (*end != 0) {
      snprintf(why, whylen, "stripe %d: bad checksum in the manifest", i);
      goto out;
    }
    ms->crc32c = (uint32_t)c;
    total += ms->bytes;
  }
  if (total != u) {
    snprintf(why, whylen, "manifest total does not match its stripes");
    goto out;
  }
  m->nstripes = (int)na;
  if (ver >= 2) {
    char crc[16], *end;
    if (get_str(j, "manifest_crc32c", crc, sizeof crc) != 0 ||
        strlen(crc) != 8) {
      snprintf(why, whylen, "manifest lacks its own checksum");
      goto out;
    }
    unsigned long want = strtoul(crc, &end, 16);
    if (*end != 0 || (uint32_t)want != self_crc(m)) {
      snprintf(why, whylen,
               "the manifest was changed after it was written (its checksum "
               "does not match its fields): the backup cannot be trusted");
      goto out;
    }
  }
  rc = 0;
out:
  json_decref(j);
  return rc;
}

/* The stripe's own header (docs/STREAM-FORMAT.md) must tell the same story
 * as the manifest.  @p set_id is stripe 0's set, filled on i == 0. */
static int check_stripe_header(const char *path, const struct manifest *m,
                               int i, uint8_t set_id[16]) {
  uint8_t buf[VS_HEADER_SIZE];
  vs_header h;
  /* (An encrypted stripe is opened with the key; -2: said why.) */
  int got = stripe_peek_stream(path, buf, sizeof buf);
  if (got == -3) return -2; /* no key, or another one: said why */
  if (got == -2) return -1;
  int st = got == 0 ? vs_header_decode(&h, buf) : VS_BAD_MAGIC;
  const char *why = NULL;
  if (st != VS_OK)
    why = "its header is not a valid openvdi stream header";
  else if (strcmp(h.database, m->database) != 0)
    why = "its header names another database";
  else if (h.stripe_count != (uint32_t)m->nstripes ||
           h.stripe_index != (uint32_t)i)
    why = "its header gives another stripe number or count";
  else if (((h.flags & VS_F_COMPRESSED) != 0) !=
           (strcmp(m->compression, "zstd") == 0))
    why = "its header disagrees with the manifest's compression";
  else if (i > 0 && memcmp(set_id, h.set_id, 16) != 0)
    why = "it belongs to another backup set than stripe 0";
  if (why) {
    app_err("stripe %d (%s): %s: the backup is damaged", i, path, why);
    return -1;
  }
  if (i == 0) memcpy(set_id, h.set_id, 16);
  return 0;
}

int manifest_check(const char *dir, const struct manifest *m, int level) {
  int bad = 0, keyed = 0;
  uint8_t set_id[16] = {0};
  for (int i = 0; i < m->nstripes; i++) {
    const struct manifest_stripe *s = &m->stripes[i];
    char path[4400];
    if (app_path(path, sizeof path, "%s/%s", dir, s->file) != 0) {
      app_err("stripe %d: path too long", i);
      bad = 1;
      continue;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
      app_err("stripe %d (%s): %s", i, path, strerror(errno));
      bad = 1;
      continue;
    }
    if ((uint64_t)st.st_size != s->bytes) {
      app_err("stripe %d (%s): size %lld, manifest says %llu: the backup is "
              "damaged",
              i, path, (long long)st.st_size, (unsigned long long)s->bytes);
      bad = 1;
      continue;
    }
    if (level < CHECK_HEADERS) continue;
    int hc = check_stripe_header(path, m, i, set_id);
    if (hc == -2) {
      keyed = 1;
      continue;
    }
    if (hc != 0) {
      bad = 1;
      continue;
    }
    if (level < CHECK_FULL) continue;
    uint64_t size;
    uint32_t crc;
    int rc = stripe_file_crc(path, &size, &crc);
    if (rc != 0) {
      app_err("stripe %d (%s): %s", i, path, strerror(-rc));
      bad = 1;
    } else if (size != s->bytes || crc != s->crc32c) {
      app_err("stripe %d (%s): CRC-32C %08x, manifest says %08x: the backup "
              "is damaged",
              i, path, (unsigned)crc, (unsigned)s->crc32c);
      bad = 1;
    }
  }
  return bad ? -1 : keyed ? -2 : 0;
}
