/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parser.h - the statements vdisql understands, as parsed from a batch:
 *   BACKUP DATABASE db TO dev[, dev...] [WITH opt[, opt...]]
 *   BACKUP LOG db TO ... [WITH ...]
 *   RESTORE DATABASE | LOG db FROM dev[, ...] [WITH ...]
 *     (WITH MOVE 'logical' TO 'path' among the options)
 *   RESTORE DATABASE db WITH RECOVERY
 *   ALTER DATABASE db SET RECOVERY FULL | SIMPLE
 *   RESTORE VERIFYONLY | HEADERONLY | FILELISTONLY FROM dev[, ...] [WITH ...]
 * where dev is DISK = 'path' or VIRTUAL_DEVICE = 'name'; and the
 * certificate statements of certs.h:
 *   CREATE MASTER KEY ENCRYPTION BY PASSWORD = 'pw'
 *   CREATE CERTIFICATE name WITH SUBJECT = 's' [, START_DATE = 'd']
 *     [, EXPIRY_DATE = 'd']
 *   CREATE CERTIFICATE name FROM FILE = 'f'
 *     [WITH PRIVATE KEY (FILE = 'k', DECRYPTION BY PASSWORD = 'pw')]
 *   BACKUP CERTIFICATE name TO FILE = 'f'
 *     [WITH PRIVATE KEY (FILE = 'k', ENCRYPTION BY PASSWORD = 'pw')]
 *   DROP CERTIFICATE name
 *   DROP MASTER KEY
 * BACKUP's options include ENCRYPTION (ALGORITHM = AES_256,
 * SERVER CERTIFICATE = name).
 */
#ifndef VDISQL_PARSER_H
#define VDISQL_PARSER_H

#include "lexer.h"

#include <stdint.h>

enum stmt_kind {
  ST_BACKUP_DB,
  ST_BACKUP_LOG,
  ST_RESTORE_DB,
  ST_RESTORE_LOG,
  ST_VERIFYONLY,
  ST_HEADERONLY,
  ST_FILELISTONLY,
  ST_RECOVER, /* RESTORE DATABASE db WITH RECOVERY: no devices */
  ST_ALTER_RECOVERY,
  ST_CREATE_MASTER_KEY,
  ST_CREATE_CERT, /* self-signed, or FROM FILE (cert_file set) */
  ST_BACKUP_CERT,
  ST_DROP_CERT,
  ST_DROP_MASTER_KEY
};
enum dev_kind { DEV_DISK, DEV_VIRTUAL };

#define MAX_DEVICES 64
#define MAX_MOVES   16

typedef struct stmt {
  int kind;
  int line;     /* first line of the statement in its batch */
  char db[129]; /* up to 128 bytes, SQL Server's identifier limit */
  int dev_kind;
  int ndev;
  char *dev[MAX_DEVICES];
  /* WITH options; 0 = not given */
  int format, noformat, init, noinit, checksum, no_checksum, copy_only;
  int compression, no_compression, replace, recovery;
  int comp_level; /* COMPRESSION (LEVEL = ...): 1 LOW, 2 MEDIUM, 3 HIGH */
  int differential, no_truncate, norecovery;
  int set_recovery; /* ALTER DATABASE: VS_RECOVERY_FULL or _SIMPLE */
  char stopat[64];  /* STOPAT = '...' as given; "" = none */
  int stats;        /* 0 = no STATS, else the percent step */
  uint32_t blocksize, buffercount, maxtransfer, file;
  char description[256];
  char name[128];
  int nmove; /* MOVE 'logical' TO 'path', in the order given */
  char *move_from[MAX_MOVES], *move_to[MAX_MOVES];
  /* Certificates: the statement's certificate, or BACKUP WITH ENCRYPTION's
   * SERVER CERTIFICATE (enc_alg VS_ENC_*, 0: no encryption). */
  char cert[129];
  int enc_alg;
  char *cert_file, *key_file, *password, *subject; /* NULL: not given */
  char start_date[64], expiry_date[64];
} stmt;

typedef struct stmtlist {
  stmt *v;
  size_t n;
} stmtlist;

/** Parse a whole batch.  @return 0, or -1 with @p err set (Msg 102
 * syntax, 155 unknown option, 3032 option not supported for SQLite, 3250
 * value out of range, 3205 too many devices); then nothing in the batch
 * runs, as in SQL Server. */
int parse_batch(const toklist *tl, stmtlist *out, vmsg *err);
void stmtlist_free(stmtlist *sl);
/** "BACKUP DATABASE", "RESTORE VERIFYONLY", ... for messages. */
const char *stmt_verb(int kind);

#endif
