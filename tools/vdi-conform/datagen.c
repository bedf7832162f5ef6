// SPDX-License-Identifier: Apache-2.0
/*
 * datagen.c - the backup stream the kit sends, and checks on restore.
 * Byte o of device d's stream is byte (o % 8) of splitmix64(key + o / 8)
 * with key derived from (seed, scenario, d): any position can be produced
 * or checked on its own, so out-of-order disk-like writes, striping and
 * short reads need no bookkeeping, and a failure replays with --seed.
 *
 * With --stream openvdi the first VS_HEADER_SIZE bytes are instead a valid
 * header of openvdi's stream format (docs/STREAM-FORMAT.md, written by
 * tools/common/vstream.c) naming {db} and the stripe: a client that checks
 * the engine's stream before it restores (vdi does) then accepts the data.
 */
#include "conform.h"

#include "vstream.h"

#include <string.h>

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t rng_next(uint64_t *state) {
  *state += 0x9e3779b97f4a7c15ull;
  return splitmix64(*state);
}

static uint64_t name_hash(const char *s) {
  /* FNV-1a of the name keeps scenarios apart under one seed. */
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *p = s; *p; p++)
    h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  return h;
}

void stream_init(struct stream *st, const struct options *o,
                 const char *scenario, int dev, int ndev) {
  memset(st, 0, sizeof *st);
  uint64_t base = splitmix64(o->seed ^ name_hash(scenario));
  st->key = base + (uint64_t)dev * 0x1000003ull;
  if (!o->openvdi_stream) return;
  vs_header h;
  memset(&h, 0, sizeof h);
  /* One set id for every stripe of the scenario, as one backup set. */
  uint64_t a = splitmix64(base + 1), b = splitmix64(base + 2);
  memcpy(h.set_id, &a, 8);
  memcpy(h.set_id + 8, &b, 8);
  h.stripe_index = (uint32_t)dev;
  h.stripe_count = (uint32_t)ndev;
  h.page_size = 4096;
  h.pages_per_block = 16;
  h.device_type = VS_DEVICE_VIRTUAL;
  snprintf(h.database, sizeof h.database, "%s", o->db);
  snprintf(h.name, sizeof h.name, "%s %s", CONFORM_NAME, scenario);
  h.backup_type = VS_TYPE_DATABASE;
  h.recovery = VS_RECOVERY_SIMPLE;
  vs_header_encode(&h, st->head);
  st->head_len = VS_HEADER_SIZE;
}

static uint8_t byte_at(const struct stream *st, uint64_t off) {
  if (off < st->head_len) return st->head[off];
  uint64_t w = splitmix64(st->key + off / 8);
  return (uint8_t)(w >> (8 * (off % 8)));
}

void stream_fill(const struct stream *st, uint64_t off, uint8_t *buf,
                 uint32_t n) {
  uint32_t i = 0;
  /* Whole little-endian words in the middle, single bytes at the edges
   * and over the header. */
  while (i < n && ((off + i) % 8 != 0 || off + i < st->head_len)) {
    buf[i] = byte_at(st, off + i);
    i++;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w = splitmix64(st->key + (off + i) / 8);
    for (int b = 0; b < 8; b++)
      buf[i + (uint32_t)b] = (uint8_t)(w >> (8 * b));
  }
  for (; i < n; i++)
    buf[i] = byte_at(st, off + i);
}

int64_t stream_check(const struct stream *st, uint64_t off, const uint8_t *buf,
                     uint32_t n) {
  uint8_t tmp[4096];
  for (uint32_t done = 0; done < n;) {
    uint32_t k = n - done < sizeof tmp ? n - done : (uint32_t)sizeof tmp;
    stream_fill(st, off + done, tmp, k);
    if (memcmp(tmp, buf + done, k) != 0) {
      for (uint32_t j = 0; j < k; j++)
        if (tmp[j] != buf[done + j]) return (int64_t)(done + j);
    }
    done += k;
  }
  return -1;
}
