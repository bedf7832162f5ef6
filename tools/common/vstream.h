/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vstream.h - the openvdi backup stream format: encode and decode its three
 * record kinds (stream header, data block header, trailer).  The format is
 * specified in docs/STREAM-FORMAT.md; this header is its C form.  vdisql
 * writes and reads it; the vdi application may use it to inspect stripes.
 *
 * Every integer is little-endian.  Each device (or DISK file) of a backup
 * holds one self-delimiting stream, a "media family":
 *   header (VS_HEADER_SIZE bytes)
 *   block*  (VS_BLOCK_HDR_SIZE bytes + stored_len payload bytes)
 *   trailer (VS_TRAILER_FIXED + pad_len + 4 bytes)
 * Block number k of the backup set lives in stripe k % stripe_count.
 */
#ifndef OPENVDI_VSTREAM_H
#define OPENVDI_VSTREAM_H

#include <stddef.h>
#include <stdint.h>

#define VS_MAGIC          "OVDISTRM" /* 8 bytes at offset 0 of a stream */
#define VS_VERSION        2u         /* writes 2; reads 1 and 2 */
#define VS_HEADER_SIZE    1024u
#define VS_BLOCK_HDR_SIZE 48u
#define VS_TRAILER_FIXED  64u
#define VS_BLOCK_MAGIC    0x4B4C4256u /* "VBLK" as bytes */
#define VS_TRAILER_MAGIC  0x4C525456u /* "VTRL" as bytes */
#define VS_MAX_RAW_BLOCK  (1u << 20)  /* pages_per_block * page_size limit */
#define VS_MAX_PAD        65536u      /* trailer padding limit */
#define VS_MAX_STRIPES    64u

/* Header flags. */
#define VS_F_COMPRESSED 0x1u /* blocks may be zstd frames */
#define VS_F_CHECKSUM   0x2u /* BACKUP ... WITH CHECKSUM was given */
#define VS_F_COPY_ONLY  0x4u /* WITH COPY_ONLY was given */
#define VS_F_SRC_MODE   0x8u /* src_mode, src_uid, src_gid are recorded */
#define VS_F_ENCRYPTED                                                         \
  0x10u /* everything after the header is encrypted                            \
         * (enc_* fields; docs/STREAM-FORMAT.md) */
#define VS_F_KNOWN 0x1Fu
/* Encryption algorithms (enc_algorithm) and encryptor types. */
#define VS_ENC_AES_128     1u
#define VS_ENC_AES_192     2u
#define VS_ENC_AES_256     3u
#define VS_ENCRYPTOR_CERT  1u /* SERVER CERTIFICATE */
#define VS_THUMBPRINT_SIZE 20u
/* Block flags. */
#define VS_B_ZSTD 0x1u /* payload is one zstd frame of raw_len bytes */
#define VS_B_LOG  0x2u /* payload is log records (VS_LOGREC_HDR + page) */

/* Backup types (as RESTORE HEADERONLY's BackupType). */
#define VS_TYPE_DATABASE 1u
#define VS_TYPE_LOG      2u
#define VS_TYPE_DIFF     5u
/* Recovery models (as sys.databases.recovery_model). */
#define VS_RECOVERY_FULL   1u
#define VS_RECOVERY_SIMPLE 3u

/* A log record in a log backup and in the instance's log archive: the
 * header (lsn 0, pgno 8, commit_size 12, time_ms 16, crc 24, reserved 28)
 * and then one page image.  commit_size != 0 marks the last record of a
 * transaction: the database has that many pages after it, and time_ms
 * (Unix milliseconds) is when the instance saw the commit. */
#define VS_LOGREC_HDR 32u

/* Device types (as in msdb..backupmediafamily.device_type). */
#define VS_DEVICE_DISK    2u
#define VS_DEVICE_VIRTUAL 7u

/* Decode results. */
enum vs_status {
  VS_OK = 0,
  VS_BAD_MAGIC = 1,   /* not a stream / record of this kind */
  VS_BAD_VERSION = 2, /* newer format */
  VS_BAD_CRC = 3,     /* the record's own CRC does not match */
  VS_BAD_FIELD = 4    /* a field holds an impossible value */
};

typedef struct vs_header {
  uint8_t set_id[16];        /* random; the same in every stripe of a set */
  uint32_t stripe_index;     /* 0 .. stripe_count-1 */
  uint32_t stripe_count;     /* 1 .. 64 */
  uint32_t page_size;        /* SQLite page size, 512 .. 65536 */
  uint32_t pages_per_block;  /* pages in a full block */
  uint64_t page_count;       /* pages in the database snapshot */
  int64_t start_time;        /* Unix seconds when the backup began */
  uint32_t flags;            /* VS_F_* */
  uint32_t device_type;      /* VS_DEVICE_* */
  char database[129];        /* up to 128 bytes (SQL Server's limit) */
  char name[128];            /* WITH NAME */
  char description[256];     /* WITH DESCRIPTION */
  char server[64];           /* host that took the backup */
  uint32_t src_mode;         /* the database file's st_mode (VS_F_SRC_MODE) */
  uint32_t src_uid, src_gid; /* and its owner and group */
  /* Version 2 (zero when read from a version 1 stream, type = database): */
  uint32_t backup_type;    /* VS_TYPE_* */
  uint32_t recovery;       /* VS_RECOVERY_*, of the database then */
  uint8_t family_id[16];   /* the database's identity (zero: unknown) */
  uint64_t first_lsn;      /* log: first record; else the snapshot's */
  uint64_t last_lsn;       /* log: one past the last record; else = first */
  uint64_t checkpoint_lsn; /* = last_lsn for database and differential */
  uint64_t database_backup_lsn; /* the latest full backup's lsn before */
  uint64_t diff_base_lsn;       /* differential: its base's lsn */
  uint8_t diff_base_id[16];     /* differential: its base's set_id */
  int64_t first_time_ms;        /* log: first commit; else snapshot time */
  int64_t last_time_ms;         /* log: last commit; else snapshot time */
  uint64_t units;               /* pages (database, differential) or log
                                 * records (log) in the whole set */
  /* With VS_F_ENCRYPTED (zero otherwise): */
  uint32_t enc_algorithm;                     /* VS_ENC_* */
  uint32_t enc_type;                          /* VS_ENCRYPTOR_* */
  uint8_t enc_thumbprint[VS_THUMBPRINT_SIZE]; /* SHA-1 of the certificate */
} vs_header;

typedef struct vs_block {
  uint32_t flags;      /* VS_B_* */
  uint64_t seq;        /* block number in the set, from 0 */
  uint64_t first_page; /* 1-based page number of the first page */
  uint32_t pages;      /* pages in this block */
  uint32_t stored_len; /* payload bytes following the block header */
  uint32_t raw_len;    /* pages * page_size */
  uint32_t raw_crc;    /* CRC-32C of the raw (uncompressed) pages */
  uint32_t stored_crc; /* CRC-32C of the stored payload */
} vs_block;

typedef struct vs_trailer {
  uint32_t pad_len;      /* zero bytes between the fixed part and the CRC */
  uint64_t blocks;       /* blocks in this stripe */
  uint64_t pages;        /* pages in this stripe */
  uint64_t stored_bytes; /* payload bytes in this stripe */
  uint64_t total_blocks; /* blocks in the whole set */
  uint64_t total_pages;  /* pages in the whole set (= header page_count) */
  uint32_t chain_crc;    /* CRC-32C chained over this stripe's raw pages */
  int64_t end_time;      /* Unix seconds when the backup ended */
} vs_trailer;

/** @brief Write a header record into @p out (VS_HEADER_SIZE bytes). */
void vs_header_encode(const vs_header *h, uint8_t *out);
/** @brief Parse and check a header record. @return enum vs_status. */
int vs_header_decode(vs_header *h, const uint8_t *in);

/** @brief Write a block header (VS_BLOCK_HDR_SIZE bytes). */
void vs_block_encode(const vs_block *b, uint8_t *out);
/** @brief Parse and check a block header (its CRC, its sizes against
 * @p unit: the page size, or VS_LOGREC_HDR + page size for log records).
 * @return enum vs_status. */
int vs_block_decode(vs_block *b, const uint8_t *in, uint32_t unit);
/** @brief Bytes per unit (page or log record) of a set with header @p h. */
uint32_t vs_unit_size(const vs_header *h);

/** A log record header (VS_LOGREC_HDR bytes before its page). */
typedef struct vs_logrec {
  uint64_t lsn;
  uint32_t pgno, commit_size;
  int64_t time_ms;
} vs_logrec;
/** @brief Encode @p r before the page at @p out + VS_LOGREC_HDR (its CRC
 * covers the header and the page of @p page_size bytes). */
void vs_logrec_encode(const vs_logrec *r, uint8_t *out, uint32_t page_size);
/** @brief Decode and check a record and its page. @return enum vs_status. */
int vs_logrec_decode(vs_logrec *r, const uint8_t *in, uint32_t page_size);

/** @brief Write the whole trailer: fixed part, pad_len zeros, CRC.
 * @p out must hold vs_trailer_size(t->pad_len) bytes. */
void vs_trailer_encode(const vs_trailer *t, uint8_t *out);
/** @brief Bytes of a trailer with @p pad_len padding. */
size_t vs_trailer_size(uint32_t pad_len);
/** @brief Parse the fixed part (VS_TRAILER_FIXED bytes) and learn pad_len.
 * @return VS_OK, VS_BAD_MAGIC or VS_BAD_FIELD (pad too large). */
int vs_trailer_decode_fixed(vs_trailer *t, const uint8_t *in);
/** @brief Check a whole trailer's padding and CRC (after decode_fixed).
 * @return VS_OK, VS_BAD_CRC or VS_BAD_FIELD (non-zero padding). */
int vs_trailer_check(const vs_trailer *t, const uint8_t *whole);

/** @brief The 32-bit record tag at the start of @p in (block or trailer). */
uint32_t vs_peek_magic(const uint8_t *in);

/** @brief Backup set id as 36-char GUID text (needs 37 bytes). */
void vs_format_guid(const uint8_t id[16], char *out);

/** @brief A thumbprint as SQL Server shows it: "0x" and 40 upper-case hex
 * digits (needs 43 bytes). */
void vs_format_thumbprint(const uint8_t t[VS_THUMBPRINT_SIZE], char *out);

/** @brief "aes_256" and so on (SQL Server's key_algorithm), NULL for an
 * unknown VS_ENC_* value. */
const char *vs_enc_name(uint32_t alg);

/** @brief A short English phrase for a vs_status. */
const char *vs_status_text(int st);

#endif
