/* SPDX-License-Identifier: Apache-2.0 */
/*
 * app.h - internal interfaces of `vdi`, the reference backup application
 * (the CLIENT role of VDI).  One subsystem per file:
 *
 *   main.c      command line: subcommands, options, usage errors, --help
 *   keys.c      the keys of encrypted backups: keygen, --key-file,
 *               --recipient (over seal.c, the sealed streams)
 *   ops.c       backup / restore / verify / list / expire, from the parts
 *   repo.c      the target as a repository of timestamped backup sets;
 *               the directory repository
 *   s3target.c  the S3 repository (s3://bucket/prefix), over s3.c
 *   check.c     `vdi check` and `vdi databases`
 *   engine.c    the vdisql child process: find it, spawn it, relay its output
 *   transfer.c  the virtual device set: configuration, one thread per device
 *   stripe.c    stripe files: temp name, fsync, rename, checksums, test hook
 *   manifest.c  the manifest written last and atomically (read with
 *               jansson); its checks
 *   progress.c  progress bar / plain progress lines and the summary line
 *   util.c      messages, names, time, directory fsync
 */
#ifndef VDI_APP_H
#define VDI_APP_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "crc32c.h"
#include "vdi.h"
#include "vstream.h"

#define APP_NAME    "vdi"
#define APP_VERSION VDI_VERSION_STRING

/* Exit statuses (vdi(1), EXIT STATUS); 128 + N: interrupted by signal N. */
#define EXIT_OK       0
#define EXIT_FAIL     1 /* any other failure (I/O, a device, a check) */
#define EXIT_USAGE    2
#define EXIT_NOTFOUND 3 /* no such backup, set or database */
#define EXIT_DAMAGED  4 /* a backup failed its manifest or checksums */
#define EXIT_ENGINE                                                            \
  5 /* the engine (vdisql) refused or failed the statement                     \
     */

/* Win32 code not in vdi.h: data error (cyclic redundancy check). */
#ifndef ERROR_CRC
#define ERROR_CRC 23
#endif

#define APP_MAX_STRIPES VDI_MAX_DEVICES
/* BUFFERCOUNT's upper bound, as vdisql's parser takes it. */
#define APP_MAX_BUFFERS 4096

/* ------------------------------------------------------------ out.c */

/* "vdi: error: ..." on stderr (clears a progress bar line first); the
 * first message is kept for --json (app_first_error). */
void app_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "vdi: warning: ..." / "vdi: ..." on stderr (the second not when quiet). */
void app_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void app_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Set by main: --quiet, -v, --json; app_json_done once a command has
 * printed its JSON document (main prints one for a failure otherwise). */
extern int app_quiet, app_verbose, app_json, app_json_done;
const char *app_first_error(void);
/* A JSON string (quoted, escaped) on f. */
void json_put_str(FILE *f, const char *s);
/* Serialises every write to stderr with the progress bar. */
extern pthread_mutex_t app_out_lock;
/* One line on `to`, under the lock, after clearing the bar. */
void app_out_line(FILE *to, const char *line);
/* Clear the bar line (call with app_out_lock held) before other output. */
void app_out_clear_line(void);
/* The bar is now on the line (called with app_out_lock held). */
void app_out_bar_drawn(void);

/* ------------------------------------------------------------ util.c */

/* A database name usable as a file name and inside a statement. */
int app_valid_db_name(const char *name);
/* The longest name vdi accepts: its files are "<db>.stripe<i>.vdibak" and
 * ".<db>.stripe<i>.vdibak.tmp-<tag>", which must fit a file name. */
#define APP_DB_NAME_MAX 100
#define APP_DB_NAME_RULE                                                       \
  "1 to 100 characters from A-Z a-z 0-9 _ - ., not starting with . or -"
/* Fill buf with n random hex digits. */
void app_random_hex(char *buf, size_t n);
/* Wall clock in seconds (with fraction) and monotonic seconds. */
double app_wall_s(void);
double app_mono_s(void);
/* ISO 8601 UTC of a wall-clock time. */
void app_iso_time(double t, char *buf, size_t n);
/* fsync a directory (after a rename in it). 0 or -errno. */
int app_fsync_dir(const char *dir);
/* snprintf that reports truncation: 0 ok, -1 too long. */
int app_path(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ engine.c */

struct engine {
  pid_t pid;
  int out_fd, err_fd;         /* read ends of the child's stdout/stderr */
  pthread_t relay[2], waiter; /* output relays and the reaper */
  int relay_started[2], waiter_started;
  FILE *relay_to_out; /* where the child's stdout goes */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int exited;           /* the reaper saw the child end */
  int status;           /* raw wait status */
  char last_error[512]; /* the first "Msg ..." line and the next line */
  char last_line[512];  /* the last line of any output */
  int saw_msg;
  int discard_out; /* drop the child's informational stdout (--quiet, --json) */
  /* The engine's messages ("Msg N ..." and its text, "Sqlcmd: ..."), kept
   * rather than relayed, to be told once in vdi's terms (engine_report). */
  int nmsgs;
  int msg_num[8]; /* 0: a "Sqlcmd:" line */
  char msg_text[8][600];
  /* Called from the reaper thread when the child ends (may be NULL). */
  void (*on_exit)(void *ctx, int status);
  void *on_exit_ctx;
};

/* The vdisql to run: --vdisql, else next to /proc/self/exe, else PATH.
 * Returns 0 and fills out, or -1 with a message printed. */
int engine_find(const char *override, char *out, size_t n);
/* Start `vdisql [-S instance] -b -Q statement`; stdin is /dev/null, stdout
 * and stderr are captured and relayed (stdout to relay_to_out, stderr to
 * stderr).  0 or -1 with a message. */
int engine_start(struct engine *e, const char *vdisql, const char *instance,
                 const char *statement);
/* Has the child ended? (non-blocking) */
int engine_exited(struct engine *e);
/* Wait until it ends, at most timeout_ms (<0 forever); 1 if ended. */
int engine_wait(struct engine *e, int timeout_ms);
/* Tell the engine's messages once each on stderr, in vdi's terms: as
 * errors when the statement failed, else as the engine's notes.  Returns
 * how many were told. */
int engine_report(struct engine *e, int failed);
/* Kill the child (SIGKILL) if it is still running. */
void engine_kill(struct engine *e);
/* Join the threads, close the pipes.  Returns the exit code (0..255) or
 * 128 + signal. */
int engine_finish(struct engine *e);

/* ------------------------------------------------------------ stripe.c */

struct stripe {
  int index;
  int fd;
  int is_std; /* fd is our stdin/stdout: never renamed or closed */
  char dir[4096];
  char name[256];  /* final file name inside dir */
  char tmp[300];   /* temporary name inside dir (backup) */
  uint64_t bytes;  /* bytes written / read so far */
  uint64_t kicked; /* backup: bytes handed to the kernel's writeback */
  uint64_t expect; /* restore: size from the manifest */
  uint32_t crc;    /* running CRC-32C of the bytes so far */
  uint32_t expect_crc;
  int check_feed; /* restore: compare bytes fed with expect/expect_crc */
  int finalized;  /* backup: fsync'd after VDC_Complete */
  /* Encryption (seal.h): the engine's bytes pass through a sealed stream;
   * bytes/crc above count the bytes as stored. */
  struct seal_writer *seal;
  struct seal_reader *unseal;
  unsigned char *plain; /* restore: opened bytes not handed on yet */
  size_t plain_n, plain_off;
  unsigned char *raw; /* restore: sealed bytes read, 64 KiB */
  int unseal_done;    /* restore: the sealed stream ended well */
  int seal_err;       /* a sealed stream that failed stays failed */
  /* An S3 object instead of a file (s3.h): backup streams a multipart
   * upload, completed at commit; restore reads it by ranges. */
  struct s3_upload *up;
  int up_done;
  struct s3_client *s3;
  char s3_bucket[256], s3_key[1100];
  unsigned char *placed_at; /* backup: where a chunk is sealed in place */
  unsigned char *gbuf;      /* restore: a range of the object */
  size_t g_n, g_off;
  uint64_t g_pos, s3_size;
};

/* Encryption of stripes (--encrypt, --key-file): set by main.c.  With
 * stripe_encrypt, stripe_create() seals what is written; stripe_open()
 * opens any stripe that starts as a sealed stream with stripe_key.  NULL
 * key: none given. */
struct seal_key;
extern const struct seal_key *stripe_key;
extern int stripe_encrypt;
/* The key file given (--key-file), of which stripe_key may be a set's own
 * key opened with it (a set sealed to its public key); and, for a backup
 * with --recipient, the public key in hex and the set's key sealed to it
 * (into the manifest). */
extern const struct seal_key *app_key_file;
extern char stripe_recipient[65], stripe_wrapped_key[161];
/* The first n bytes of the stream held in a stripe file, opened with
 * stripe_key if the file is sealed (n at most 64 KiB).  0; -3 the file is
 * sealed and no key or another key was given; -2 a sealed file that does
 * not authenticate; -1 too short or unreadable (a message printed for the
 * sealed cases). */
int stripe_peek_stream(const char *path, void *buf, size_t n);
/* A stripe as the S3 object bucket/key (name: its name in the manifest):
 * backup streams it as a multipart upload of part_size parts, `inflight`
 * at a time (memory part_size x inflight), finished by stripe_commit() and
 * aborted by stripe_close() without one; restore reads it 4 MiB at a time.
 * 0 or -errno with the store's one-line message printed. */
struct s3_config;
/* A backup stripe's encryption: its algorithm's name and its key's id
 * (33 bytes) into alg/id; 0, or -1 when it is not encrypted. */
int stripe_sealed_with(const struct stripe *s, char *alg, size_t alen,
                       char *id);
int stripe_create_s3(struct stripe *s, const struct s3_config *cfg,
                     const char *bucket, const char *key, const char *name,
                     size_t part_size, int inflight);
int stripe_open_s3(struct stripe *s, const struct s3_config *cfg,
                   const char *bucket, const char *key, const char *name);

struct options;

/* Backup: create "<dir>/.<name>.tmp-<tag>" exclusively, with the
 * permissions of a copy of @p src (the database file; NULL: unknown, 0600;
 * see fmode.h).  0 or -errno (-ELOOP: "<dir>/<name>" is a symbolic link). */
int stripe_create(struct stripe *s, const char *dir, const char *name,
                  const char *tag, const struct stat *src);
/* Use an inherited descriptor (stdin / stdout). */
void stripe_use_fd(struct stripe *s, int fd);
/* Restore: open "<dir>/<name>".  0 or -errno. */
int stripe_open(struct stripe *s, const char *dir, const char *name);
/* Append n bytes.  0 or -errno (a failed write leaves the file as before
 * it).  Honours the VDI_TEST_FAIL_WRITE_AFTER test hook. */
int stripe_write(struct stripe *s, const void *buf, size_t n);
/* Read up to n bytes; *got is the count.  0 or -errno. */
int stripe_read(struct stripe *s, void *buf, size_t n, size_t *got);
/* fsync.  0 or -errno (pipes and terminals count as durable). */
int stripe_sync(struct stripe *s);
/* Backup: rename the temporary file to its final name.  0 or -errno. */
int stripe_commit(struct stripe *s);
/* Close; on a backup that was not committed, remove the temporary file. */
void stripe_close(struct stripe *s);
/* CRC-32C of a whole file and its size.  0 or -errno. */
int stripe_file_crc(const char *path, uint64_t *size, uint32_t *crc);
/* Set once the current transfer is being aborted (test hooks stop
 * waiting). */
extern int app_aborting;
/* CRC-32C update: tools/common/crc32c.h (chained, start with 0). */
#define app_crc32c crc32c_update

/* ------------------------------------------------------------ manifest.c */

struct manifest_stripe {
  char file[256];
  uint64_t bytes;
  uint32_t crc32c;
};

struct manifest {
  char database[128];
  char set_name[128];
  char compression[16]; /* "zstd" or "none" */
  char tool[64];
  char started[40], finished[40];
  double seconds;
  uint64_t db_bytes; /* size of the database file at the start, 0 unknown */
  /* Encrypted (format_version 3): the stripes' algorithm ("aes-256-gcm",
   * "xchacha20poly1305") and the id of the key that opens them (32 hex
   * digits, seal.h: a hash of the key, never the key); "" if plain. */
  char encryption[32];
  char key_id[40];
  /* Sealed to a public key (--recipient): it, in hex, and the set's own
   * key sealed to it (seal.h); "" with a key file. */
  char recipient[65];
  char wrapped_key[161];
  int nstripes;
  struct manifest_stripe stripes[APP_MAX_STRIPES];
};

#define MANIFEST_SUFFIX ".manifest.json"

/* "<db>.manifest.json" */
void manifest_file_name(const char *db, char *buf, size_t n);
/* Write "<dir>/<db>.manifest.json" atomically (temp, fsync, rename, fsync
 * dir), with the permissions of a copy of @p src (NULL: unknown, 0600).
 * 0 or -errno (-ELOOP: the name is a symbolic link). */
int manifest_write(const char *dir, const struct manifest *m,
                   const struct stat *src);
/* Read and validate the manifest of db in dir.  0; -ENOENT (no manifest);
 * -EINVAL (malformed: message in why). */
int manifest_read(const char *path, struct manifest *m, char *why,
                  size_t whylen);
/* The same from the manifest's text (an S3 object). */
int manifest_parse(const char *text, size_t n, struct manifest *m, char *why,
                   size_t whylen);
/* The text manifest_write writes (malloc'd; its length in *len). */
char *manifest_text(const struct manifest *m, size_t *len);
/* How much of a set's stripes a check reads: presence and size; also each
 * stripe's header (a few bytes, through the key when sealed); everything
 * (every byte's CRC-32C against the manifest). */
enum { CHECK_SIZES = 0, CHECK_HEADERS = 1, CHECK_FULL = 2 };
/* Check every stripe as far as @p level says.  0, -1 (the backup is
 * damaged) or -2 (only the key is wrong or missing), with one message per
 * problem printed. */
int manifest_check(const char *dir, const struct manifest *m, int level);

/* ------------------------------------------------------------ progress.c */

struct progress {
  const char *verb;       /* "backup", "restore", "verify" */
  uint64_t total;         /* expected bytes; 0 = unknown (no percent) */
  volatile uint64_t done; /* updated atomically by device threads */
  double start;           /* app_mono_s() at the start */
  int tty;                /* stderr is a terminal: draw a bar */
  int quiet;
  pthread_t thread;
  int running;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
};

void progress_start(struct progress *p, const char *verb, uint64_t total,
                    int quiet);
static inline void progress_add(struct progress *p, uint64_t n) {
  __atomic_add_fetch(&p->done, n, __ATOMIC_RELAXED);
}
/* Stop the display thread and erase the bar. */
void progress_stop(struct progress *p);
/* One-line summary on stderr. */
void progress_summary(struct progress *p, const char *what, int nstripes);

/* ------------------------------------------------------------ transfer.c */

enum xfer_mode { XFER_BACKUP, XFER_RESTORE };

struct transfer {
  enum xfer_mode mode;
  int ndev;
  char set_name[96];
  char dev_names[APP_MAX_STRIPES][96];
  struct stripe *stripes; /* ndev of them, opened by the caller */
  struct progress *progress;
  const char *vdisql, *instance;
  char statement[8192]; /* with the device clauses filled in */
  /* results */
  int dev_ok[APP_MAX_STRIPES];
  char dev_err[APP_MAX_STRIPES][256];
  int configured;
  int interrupted;   /* the signal number, 0 if none */
  int engine_status; /* exit code of vdisql (or 128 + signal) */
  int engine_started;
  int engine_failed; /* the statement failed for the engine's own reason */
  int damaged;       /* restore: a stripe fed differs from its manifest */
  FILE *relay_to;    /* where the engine's informational lines go; NULL:
                        nowhere (--quiet, --json) */
};

/* Pick a unique set name and the device names. */
void transfer_names(struct transfer *t, int ndev);
/* The "VIRTUAL_DEVICE='a', VIRTUAL_DEVICE='b'" list. */
void transfer_device_clause(const struct transfer *t, char *buf, size_t n);
/* Run the whole exchange.  Returns 0 when every device ended normally and
 * the statement succeeded; otherwise -1, with the reason printed. */
int transfer_run(struct transfer *t);
/* vdi's exit status for a transfer that failed: 128+signal when
 * interrupted, EXIT_ENGINE when the engine refused the statement, else
 * EXIT_FAIL. */
int transfer_exit_status(const struct transfer *t);
/* Run a restore or verify transfer whose progress @p prog was started:
 * stop the progress, and on success print "<verb> complete" with the
 * summary over @p nstripes stripes.  EXIT_OK or the exit status. */
int transfer_run_reading(struct transfer *t, struct progress *prog,
                         const char *verb, int nstripes);

/* Signals: SIGINT/SIGTERM/SIGHUP are blocked in every thread and taken by a
 * watcher thread that aborts the set. */
void signals_init(void);
/* The signal taken so far (0 if none). */
int signals_caught(void);
/* Install/remove the action run on a signal (from the watcher thread). */
void signals_on(void (*fn)(void *ctx, int sig), void *ctx);

/* ------------------------------------------------------------ ops.c */

struct options {
  const char *cmd;
  const char *db;
  const char *instance; /* NULL: vdisql's default */
  const char *to, *from;
  const char *as;
  const char *vdisql;
  int stripes;
  int compress; /* 0, or COMPRESSION's LEVEL: 1 LOW, 2 MEDIUM, 3 HIGH */
  int replace;
  int quiet;
  int kind;                  /* backup: CHAIN_FULL, CHAIN_DIFF or CHAIN_LOG */
  const char *to_time;       /* restore: STOPAT instant, NULL: none */
  int64_t to_time_ms;        /* ... parsed once (ms since the epoch) */
  int latest;                /* restore: the whole chain */
  const char *set_id;        /* restore / verify / list: one set */
  int keep_last, keep_daily; /* expire: -1 not given */
  int keep_days;             /* expire: -1 not given */
  int delete_sets;           /* expire: really delete (else a dry run) */
  int json;
  int verbose;
  int buffer_count;      /* backup/restore: BUFFERCOUNT, 0: the engine's */
  int max_transfer;      /* backup/restore: MAXTRANSFERSIZE, 0: the engine's */
  int encrypt;           /* backup: --encrypt */
  const char *key_file;  /* --key-file */
  const char *recipient; /* backup: --recipient (a public key file) */
  int public_key;        /* keygen: --public */
};

/* ------------------------------------------------------------ chain.c */

enum { CHAIN_FULL = 0, CHAIN_DIFF = 1, CHAIN_LOG = 2 };
struct chain_entry {
  int seq, kind;
  char dir[4500];
};
/* "<to>/<db>.chain" (the one-folder layout, read only) */
int chain_dir(const char *to, const char *db, char *out, size_t n);
/* The entries, in order (*out malloc'd).  Their count or -errno. */
int chain_list(const char *to, const char *db, struct chain_entry **out);
/* Stripe 0's stream header of the backup in dir.  0 or -1. */
int chain_header(const char *dir, const struct manifest *m, vs_header *h);

/* ------------------------------------------------------------ repo.c */

struct repo_set {
  char db[128];
  char id[64];  /* "20261206T221500.123Z-full", "legacy", ... */
  char key[48]; /* sort key: the start time in the shape of an ID */
  int kind;     /* CHAIN_FULL / CHAIN_DIFF / CHAIN_LOG */
  int legacy;   /* in the one-folder layout (read only) */
  int legacy_seq;
  char dir[4600]; /* the set's files (a local directory) */
  int complete;   /* its manifest reads and names db */
  char why[256];  /* why not complete */
  struct manifest *m;
  int have_header; /* h is stripe 0's stream header */
  int key_missing; /* encrypted: --key-file gave no key that opens it */
  vs_header h;
  /* The key that opens it, worked out once (repo_set_key): keys_of_set's
   * answer and key, and the set's own key unwrapped when it is sealed to
   * a public key.  own_key is on the heap so that `opens` stays true when
   * the sets are sorted; repo_free wipes it. */
  int key_known, key_rc;
  const struct seal_key *opens;
  struct seal_key *own_key;
};

struct repo;
struct stripe;
/* What a kind of repository provides: a directory (repo.c) or an S3
 * prefix (s3target.c).  A set's `dir` is where its files are, a local
 * directory or "s3://bucket/key-prefix"; the hooks below are the only
 * code that turns it into files or objects, so ops.c and chain.c work
 * the same on both.  Hooks that fail return -errno; -ECANCELED means the
 * reason was already told (the store's own one line). */
struct repo_ops {
  const char *kind;
  /* Names of the databases with at least one set (sorted, malloc'd). */
  int (*databases)(struct repo *r, char ***names);
  /* Every set of db, complete or not, unsorted (malloc'd). */
  int (*sets)(struct repo *r, const char *db, struct repo_set **out);
  /* A new, empty set of db started at `when`: its ID and where its files
   * go.  0 or -errno. */
  int (*create)(struct repo *r, const char *db, int kind, double when, char *id,
                size_t idn, char *dir, size_t dirn);
  /* Remove a set (a failed backup, or expire): the manifest first, so a
   * removal cut short leaves an incomplete set, never a damaged one.  0
   * or -errno. */
  int (*remove)(struct repo *r, const struct repo_set *s);
  /* The manifest of db in the set at dir: as manifest_read. */
  int (*read_manifest)(struct repo *r, const char *dir, const char *db,
                       struct manifest *m, char *why, size_t whylen);
  /* Every stripe as far as @p level (CHECK_*) says: as manifest_check. */
  int (*check)(struct repo *r, const char *dir, const struct manifest *m,
               int level);
  /* Stripe 0's stream header.  0 or -1. */
  int (*header)(struct repo *r, const char *dir, const struct manifest *m,
                vs_header *h);
  /* Backup: a new stripe `name` in the set at dir (tag: of the temporary
   * name; src: the database file's stat or NULL).  Restore: open one.
   * 0 or -errno, with the reason told. */
  int (*stripe_create)(struct repo *r, const char *dir, const char *name,
                       const char *tag, const struct stat *src,
                       struct stripe *s);
  int (*stripe_open)(struct repo *r, const char *dir, const char *name,
                     struct stripe *s);
  /* Backup: the manifest, last, once every stripe is committed.  0 or
   * -errno (-ELOOP: a symbolic link in the way). */
  int (*put_manifest)(struct repo *r, const char *dir, const struct manifest *m,
                      const struct stat *src);
  /* A backup failed: what follows (its stripes closed, its set removed)
   * must end in a bounded time.  May be NULL. */
  void (*cleaning)(struct repo *r);
  void (*close)(struct repo *r);
};
struct repo {
  const struct repo_ops *ops;
  char root[4096];
  /* Given REPO/<db> itself (to read or to back up that database): the
   * database whose sets are in root. */
  char db_folder[128];
  void *priv; /* the S3 repository's client */
};

/* Open the target (create: make the directory, 0700, if missing; a
 * target opened to read may also be one database's folder, REPO/<db>).
 * 0 or -errno. */
int repo_open(struct repo *r, const char *target, int create);
void repo_close(struct repo *r);
/* S3 (s3target.c): repo_open for "s3://..." targets; the same contract,
 * and -ECANCELED once the store's one-line reason is told. */
int app_is_s3(const char *target);
int repo_open_s3(struct repo *r, const char *target, int create);
/* "YYYYMMDDTHHMMSS.mmmZ-kind" of a start time. */
void repo_id_of_time(double t, int kind, char *buf, size_t n);
/* As the hooks, through r->ops. */
int repo_check(struct repo *r, const char *dir, const struct manifest *m,
               int level);
/* A failed backup's set goes (and, for a directory, the database's
 * folder if it was its only set).  0 once it is gone, or -errno: some of
 * it is left (-ECANCELED: the store's reason told). */
int repo_discard(struct repo *r, const char *dir);
int repo_databases(struct repo *r, char ***names);
/* db's sets, oldest first, manifests read; with `headers`, each complete
 * set's stripe 0 stream header decoded too (have_header), read with the
 * key that opens the set (keys_of_set) and nothing said: an encrypted set
 * whose key was not given gets no header and key_missing.  A backup
 * needs no header (it only looks for a full set): REPO_MANIFESTS.  Count
 * or -errno; free with repo_free. */
enum { REPO_MANIFESTS = 0, REPO_HEADERS = 1 };
int repo_load(struct repo *r, const char *db, int headers,
              struct repo_set **out);
/* Frees the sets, their manifests and, wiped, their unwrapped keys. */
void repo_free(struct repo_set *v, int n);
/* The key that opens complete set s: keys_of_set's answer, worked out
 * the first time it is asked and kept in s (the set's own key is
 * unwrapped once, however often a set is read). */
int repo_set_key(struct repo_set *s, const struct seal_key **key);
int repo_create(struct repo *r, const char *db, int kind, char *id, size_t idn,
                char *dir, size_t dirn);
int repo_remove(struct repo *r, const struct repo_set *s);
/* Index of the set with that ID, or -1. */
int repo_find(const struct repo_set *v, int n, const char *id);
/* Index of the full backup set i belongs to (i itself for a full), -1. */
int repo_chain_of(const struct repo_set *v, int n, int i);
int repo_is_set_id(const char *name, int *kind);
/* Building the lists the sets and databases hooks return: a name added
 * once (of len bytes), and a new zeroed set at the end of *v. */
void repo_add_name(char ***v, int *n, const char *name, size_t len);
struct repo_set *repo_push_set(struct repo_set **v, int *n, int *cap);
const char *repo_kind_name(int kind);

/* ------------------------------------------------------------ chain.c */

/* The sets a restore uses, in order (indexes into v), for the options'
 * --set / --to-time / --latest.  Count, or -EXIT_* with the reason
 * printed. */
int chain_plan(const struct repo_set *v, int n, const struct options *o,
               int *steps);
/* Which sets expire keeps (keep[i] = 1): the newest keep_last full
 * backups, the newest full of each of the last keep_daily days, every full
 * backup started less than keep_days days before @p now, and every set
 * their chains need.  Sets not complete and old-layout sets are always
 * kept; so is a differential or log set whose chain cannot be told (no
 * header read, its own or the oldest kept full's): keep[i] = KEEP_UNREAD. */
enum { KEEP_UNREAD = 2 };
void chain_keep(const struct repo_set *v, int n, int keep_last, int keep_daily,
                int keep_days, time_t now, int *keep);

/* keys.c: vdi keygen; the keys of --key-file and --recipient made ready
 * for the stripes (stripe_key, app_key_file, stripe_recipient).  EXIT_*,
 * the reason told. */
int keys_keygen(const struct options *o);
int keys_setup(const struct options *o);
/* The key that opens the set of manifest m, saying nothing: 0 and *key,
 * the key file's (NULL when none was given and the set is plain) or the
 * set's own key opened with it into *own (a set sealed to its public
 * key); -ENOKEY the set is encrypted and no key file was given;
 * -EKEYREJECTED the key file is another one (its key id, or its public
 * key, is not the set's); -EBADMSG the set's sealed key does not open
 * (the manifest is damaged).  *key is the key file's on failure. */
int keys_of_set(const struct manifest *m, struct seal_key *own,
                const struct seal_key **key);

int op_backup(const struct options *o);
int op_restore(const struct options *o);
int op_verify(const struct options *o);
int op_list(const struct options *o);
int op_expire(const struct options *o);
/* check.c */
int op_check(const struct options *o);
int op_databases(const struct options *o);
/* The instance directory of o (its --instance, else the default), and
 * whether the default was used.  NULL if unknown. */
const char *app_instance_dir(const char *instance, char *buf, size_t n,
                             int *is_default);

/* The instance directory vdisql will use when -S is not given (for sizes
 * only): $VDI_INSTANCE_DIR, else the per-user default.  NULL if unknown. */
const char *app_default_instance(char *buf, size_t n);

#endif
