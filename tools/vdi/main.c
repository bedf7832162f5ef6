/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the command line of `vdi`, the reference backup application:
 *
 *   vdi backup DB --to REPO|- [--instance DIR] [--stripes N] [--compress]
 *              [--differential | --log]
 *   vdi restore DB --from REPO|- [--instance DIR] [--replace] [--as NAME]
 *               [--set ID] [--to-time T | --latest]
 *   vdi verify [DB] --from REPO|- [--set ID] [--instance DIR]
 *   vdi list [DB] --from REPO
 *   vdi expire [DB] --from REPO --keep-last N --keep-daily N [--delete]
 *   vdi check [DB] [--instance DIR] [--to REPO]
 *   vdi databases [--instance DIR]
 *
 * and for every command --json (--output=json), --quiet, -v, -V, --help,
 * and -- before a name that starts with '-'.  Every usage error is one
 * line on stderr naming the problem (with "did you mean" for a near miss),
 * exit 2.
 */
#include "app.h"

#include "timefmt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_top =
    "usage: vdi COMMAND [ARGS]   back up and restore databases through SQL\n"
    "                            Server Virtual Device Interface devices\n"
    "\n"
    "commands:\n"
    "  backup DB --to REPO|-    back up database DB: a new set in REPO\n"
    "  restore DB --from REPO|- restore it (the newest set, or --set ID)\n"
    "  verify [DB] --from REPO  check backups end to end, restoring nothing\n"
    "  list --from REPO         show every backup set in a repository\n"
    "  expire --from REPO       delete the sets no kept chain needs\n"
    "  check [DB]               can a backup run here? (instance, engine,\n"
    "                           target, free space)\n"
    "  databases                the databases of an instance\n"
    "  keygen FILE              make a key for --encrypt (32 random bytes)\n"
    "  keygen --public FILE     print the public key of key FILE\n"
    "\n"
    "Options of every command: --json, --quiet, -v, -V/--version, --help.\n"
    "'vdi COMMAND --help' describes each command; see also vdi(1).\n";

static const char *usage_backup =
    "usage: vdi backup DB --to REPO|- [--instance DIR] [--stripes N]\n"
    "                  [--compress [--compress-level L]]\n"
    "                  [--differential | --log]\n"
    "                  [--buffer-count N] [--max-transfer-size B]\n"
    "                  [--encrypt --key-file F | --encrypt --recipient P]\n"
    "                  [--vdisql PATH] [--quiet]\n"
    "                  [-v] [--json]\n"
    "\n"
    "Back up database DB of the instance (the SQLite file DB.db) through N\n"
    "virtual devices (1..64, default 1) into a new backup set of the\n"
    "repository REPO (a directory, made if missing): REPO/DB/ID/ holds one\n"
    "file per stripe, DB.stripe<i>.vdibak, and DB.manifest.json written\n"
    "last; ID is the UTC start time and the type, e.g.\n"
    "20261206T221500.123Z-full.  '-' writes the single stripe to stdout\n"
    "(no manifest).  --compress asks the engine for zstd compression;\n"
    "--compress-level low (the default), medium or high trades speed for\n"
    "size.  --buffer-count and --max-transfer-size set the engine's\n"
    "BUFFERCOUNT and MAXTRANSFERSIZE (64 KiB steps up to 4 MiB).\n"
    "--instance defaults to vdisql's default instance ($VDI_INSTANCE_DIR,\n"
    "see vdisql(1)).  --differential and --log back up the pages changed\n"
    "since the last full backup, or the log since the last log backup (the\n"
    "instance must run: vdisql --serve); a full backup of DB must be in\n"
    "REPO.  Older sets stay until 'vdi expire' deletes them.  REPO may be\n"
    "s3://bucket/prefix: the same layout as objects (credentials from\n"
    "the AWS_* variables or the AWS CLI's files, see vdi(1)).  --encrypt\n"
    "--key-file F seals every stripe with the key in F (authenticated\n"
    "encryption; make one with 'vdi keygen F'): restore and verify need\n"
    "it.  --encrypt --recipient P seals it to the public key in file P\n"
    "('vdi keygen --public F > P'): the backup needs no secret; restore\n"
    "and verify need key file F.\n";

static const char *usage_restore =
    "usage: vdi restore DB --from REPO|- [--instance DIR] [--replace]\n"
    "                   [--as NAME] [--set ID] [--to-time T | --latest]\n"
    "                   [--key-file F] [--buffer-count N]\n"
    "                   [--max-transfer-size B] [--vdisql PATH] [--quiet]\n"
    "                   [-v] [--json]\n"
    "\n"
    "Restore DB from the repository REPO (or from one set's directory),\n"
    "every set used checked against its manifest, into the instance,\n"
    "as DB or as NAME with --as.  By default the newest full backup set;\n"
    "--set ID that set (a differential or log set: with the sets before it\n"
    "in its chain).  --latest restores the newest full set's chain (the\n"
    "full, its newest differential, every later log backup); --to-time\n"
    "'YYYY-MM-DDTHH:MM:SS[.mmm]' (local time) restores to that instant\n"
    "(STOPAT), from the newest full set before it.  An existing database\n"
    "is replaced only with --replace.  '-' reads one stripe from stdin.\n"
    "An encrypted backup needs its key (--key-file F): every stripe is\n"
    "authenticated whole before anything is restored.\n";

static const char *usage_verify =
    "usage: vdi verify [DB] --from REPO|- [--set ID] [--instance DIR]\n"
    "                  [--key-file F] [--vdisql PATH] [--json]\n"
    "\n"
    "Check every backup set in REPO (or only DB's, or only set ID): the\n"
    "manifest, each stripe's size and CRC-32C, then the engine reads the\n"
    "whole stream with RESTORE VERIFYONLY.  Nothing is restored.  An\n"
    "encrypted backup needs its key (--key-file F).\n";

static const char *usage_keygen =
    "usage: vdi keygen FILE\n"
    "       vdi keygen --public FILE\n"
    "\n"
    "Write a new random key (32 bytes, mode 0600) to FILE, which must not\n"
    "exist, for 'vdi backup --encrypt --key-file FILE', and say its key\n"
    "id.  Keep a copy away from the backups: without it they cannot be\n"
    "restored.  --public prints the public key of key FILE (64 hex\n"
    "digits), for 'vdi backup --encrypt --recipient'.\n";

static const char *usage_list =
    "usage: vdi list [DB] --from REPO [--key-file F] [--json]\n"
    "\n"
    "Show every backup set in REPO (or in one set's directory): database,\n"
    "set ID, type, time, stripes, sizes, checksums, compression; the sets\n"
    "that continue a full backup (its chain) follow it, marked '+'.\n"
    "Stripe files are checked for size.  The chains of encrypted sets are\n"
    "read with their key (--key-file F); without it a differential is\n"
    "shown after the full set before it.\n";

static const char *usage_expire =
    "usage: vdi expire [DB] --from REPO [--keep-last N] [--keep-daily N]\n"
    "                  [--keep-days N] [--dry-run | --delete]\n"
    "                  [--key-file F] [--json]\n"
    "\n"
    "Keep the N newest full backup sets of each database (--keep-last,\n"
    "or --keep-full), the newest full set of each of the last N days that\n"
    "have one (--keep-daily), and every full set started less than N days\n"
    "ago (--keep-days), with every differential and log set their chains\n"
    "need; the newest full set is always kept.  The other sets are listed\n"
    "as 'would delete' (a dry run, the default) or deleted with --delete.\n"
    "Incomplete sets and backups in the older one-folder layout are left\n"
    "alone.  Which chain an encrypted differential or log set belongs to\n"
    "is read with its key (--key-file F); without it such a set is kept.\n";

static const char *usage_check =
    "usage: vdi check [DB] [--instance DIR] [--to REPO] [--vdisql PATH]\n"
    "                 [--json]\n"
    "\n"
    "Check that a backup can run: the instance directory is readable (and\n"
    "DB's file in it), vdisql is found and is the same version as vdi, the\n"
    "target REPO is writable, and its file system has room for the\n"
    "estimated size (DB's file, or every database of the instance).\n";

static const char *usage_databases =
    "usage: vdi databases [--instance DIR] [--json]\n"
    "\n"
    "List the databases of the instance (its DB.db files) and their sizes.\n";

static int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", APP_NAME);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see '%s %s--help')\n", APP_NAME, cmd ? cmd : "");
  return EXIT_USAGE;
}

static const struct {
  const char *name;
  const char **help;
} commands[] = {
    {"backup", &usage_backup},       {"restore", &usage_restore},
    {"verify", &usage_verify},       {"list", &usage_list},
    {"expire", &usage_expire},       {"check", &usage_check},
    {"databases", &usage_databases}, {"keygen", &usage_keygen},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static const char *help_of(const char *cmd) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(cmd, commands[i].name) == 0) return *commands[i].help;
  return NULL;
}

/* Options taking a value, then flags. */
static const char *const valued[] = {"--instance",
                                     "--to",
                                     "--from",
                                     "--stripes",
                                     "--as",
                                     "--vdisql",
                                     "--to-time",
                                     "--set",
                                     "--keep-last",
                                     "--keep-full",
                                     "--keep-daily",
                                     "--keep-days",
                                     "--output",
                                     "--key-file",
                                     "--recipient",
                                     "--buffer-count",
                                     "--max-transfer-size",
                                     "--compress-level",
                                     NULL};
static const char *const flags[] = {
    "--compress", "--replace", "--differential", "--log",    "--latest",
    "--quiet",    "--verbose", "--json",         "--delete", "--dry-run",
    "--help",     "--version", "--encrypt",      "--public", NULL};

/* Edit distance, for "did you mean". */
static int distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 40 || lb > 40) return 99;
  int d[41][41];
  for (int i = 0; i <= la; i++)
    d[i][0] = i;
  for (int j = 0; j <= lb; j++)
    d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

/* The nearest known name to `word` (within 2 edits), or NULL. */
static const char *nearest(const char *word, const char *const *a,
                           const char *const *b) {
  const char *best = NULL;
  int bd = 3;
  for (int pass = 0; pass < 2; pass++)
    for (const char *const *p = pass ? b : a; p && *p; p++) {
      int dd = distance(word, *p);
      if (dd < bd) {
        bd = dd;
        best = *p;
      }
    }
  return best;
}

static int unknown_option(const char *cmdsp, const char *a, const char *key) {
  const char *near = nearest(key, valued, flags);
  if (near)
    return usage_error(cmdsp, "unknown option '%s'; did you mean %s?", a, near);
  return usage_error(cmdsp, "unknown option '%s'", a);
}

static int parse_count(const char *cmdsp, const char *opt, const char *val,
                       int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long n = strtol(val, &end, 10);
  if (errno || *end || n < lo || n > hi)
    return usage_error(cmdsp, "%s must be %d..%d, not '%s'", opt, lo, hi, val);
  *out = (int)n;
  return 0;
}

/* One option (key, its value or NULL) into o.  0 or the usage status. */
static int set_option(struct options *o, const char *cmdsp, const char *a,
                      const char *key, const char *val,
                      const char **stripes_arg) {
  if (strcmp(key, "--instance") == 0)
    o->instance = val;
  else if (strcmp(key, "--to") == 0)
    o->to = val;
  else if (strcmp(key, "--from") == 0)
    o->from = val;
  else if (strcmp(key, "--stripes") == 0)
    *stripes_arg = val;
  else if (strcmp(key, "--as") == 0)
    o->as = val;
  else if (strcmp(key, "--vdisql") == 0)
    o->vdisql = val;
  else if (strcmp(key, "--set") == 0)
    o->set_id = val;
  else if (strcmp(key, "--buffer-count") == 0)
    return parse_count(cmdsp, key, val, 1, APP_MAX_BUFFERS, &o->buffer_count);
  else if (strcmp(key, "--max-transfer-size") == 0) {
    int rc = parse_count(cmdsp, key, val, 65536, 4194304, &o->max_transfer);
    if (rc == 0 && o->max_transfer % 65536 != 0)
      return usage_error(cmdsp,
                         "--max-transfer-size must be a multiple of "
                         "65536, not '%s'",
                         val);
    return rc;
  } else if (strcmp(key, "--keep-last") == 0 || strcmp(key, "--keep-full") == 0)
    return parse_count(cmdsp, key, val, 0, 100000, &o->keep_last);
  else if (strcmp(key, "--keep-daily") == 0)
    return parse_count(cmdsp, key, val, 0, 100000, &o->keep_daily);
  else if (strcmp(key, "--keep-days") == 0)
    return parse_count(cmdsp, key, val, 0, 100000, &o->keep_days);
  else if (strcmp(key, "--output") == 0) {
    if (strcmp(val, "json") == 0)
      o->json = 1;
    else if (strcmp(val, "text") != 0)
      return usage_error(cmdsp, "--output is json or text, not '%s'", val);
  } else if (strcmp(key, "--json") == 0)
    o->json = 1;
  else if (strcmp(key, "--compress") == 0)
    o->compress = o->compress ? o->compress : 1;
  else if (strcmp(key, "--compress-level") == 0) {
    o->compress = strcmp(val, "low") == 0      ? 1
                  : strcmp(val, "medium") == 0 ? 2
                  : strcmp(val, "high") == 0   ? 3
                                               : 0;
    if (!o->compress)
      return usage_error(cmdsp,
                         "--compress-level is low, medium or high, "
                         "not '%s'",
                         val);
  } else if (strcmp(key, "--replace") == 0)
    o->replace = 1;
  else if (strcmp(key, "--differential") == 0)
    o->kind = o->kind == CHAIN_LOG ? -1 : CHAIN_DIFF;
  else if (strcmp(key, "--log") == 0)
    o->kind = o->kind == CHAIN_DIFF ? -1 : CHAIN_LOG;
  else if (strcmp(key, "--to-time") == 0)
    o->to_time = val;
  else if (strcmp(key, "--latest") == 0)
    o->latest = 1;
  else if (strcmp(key, "--encrypt") == 0)
    o->encrypt = 1;
  else if (strcmp(key, "--key-file") == 0)
    o->key_file = val;
  else if (strcmp(key, "--recipient") == 0)
    o->recipient = val;
  else if (strcmp(key, "--public") == 0)
    o->public_key = 1;
  else if (strcmp(key, "--delete") == 0)
    o->delete_sets = 1;
  else if (strcmp(key, "--dry-run") == 0)
    o->delete_sets = -1;
  else if (strcmp(key, "--quiet") == 0 || strcmp(key, "-q") == 0)
    o->quiet = 1;
  else if (strcmp(key, "--verbose") == 0 || strcmp(key, "-v") == 0)
    o->verbose = 1;
  else
    return unknown_option(cmdsp, a, key);
  return 0;
}

/* Every argument after the command.  0, PARSE_DONE (--help or --version
 * told: exit 0) or the usage status (told). */
#define PARSE_DONE (-1)
static int parse_args(struct options *o, const char *cmd, const char *cmdsp,
                      int argc, char **argv, const char **stripes_arg) {
  int only_names = 0;
  for (int i = 2; i < argc; i++) {
    char *a = argv[i];
    if (!only_names && strcmp(a, "--") == 0) {
      only_names = 1;
      continue;
    }
    if (!only_names && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      fputs(help_of(cmd), stdout);
      return PARSE_DONE;
    }
    if (!only_names && (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0)) {
      printf("%s %s\n", APP_NAME, APP_VERSION);
      return PARSE_DONE;
    }
    if (only_names || a[0] != '-' || strcmp(a, "-") == 0) {
      if (o->db) return usage_error(cmdsp, "unexpected argument '%s'", a);
      o->db = a;
      continue;
    }
    const char *val = NULL;
    char key[32];
    char *eq = strchr(a, '=');
    if (eq && (size_t)(eq - a) < sizeof key) {
      snprintf(key, sizeof key, "%.*s", (int)(eq - a), a);
      val = eq + 1;
    } else {
      snprintf(key, sizeof key, "%s", strlen(a) < sizeof key ? a : "?");
    }
    int takes = 0;
    for (int k = 0; valued[k]; k++)
      if (strcmp(key, valued[k]) == 0) takes = 1;
    if (takes && !val) {
      if (i + 1 >= argc) return usage_error(cmdsp, "%s needs a value", key);
      val = argv[++i];
    } else if (!takes && val) {
      return usage_error(cmdsp, "%s takes no value", key);
    }
    if (takes && !*val) return usage_error(cmdsp, "%s needs a value", key);
    int rc = set_option(o, cmdsp, a, key, val, stripes_arg);
    if (rc) return rc;
  }
  return 0;
}

/* An option that belongs to other commands: an error, not a no-op. */
static int misplaced(const char *cmdsp, const char *opt, const char *owner) {
  return usage_error(cmdsp, "%s is an option of 'vdi %s'", opt, owner);
}

/* The rules between options and commands.  0 or the usage status. */
static int validate(struct options *o, const char *cmdsp,
                    const char *stripes_arg) {
  const char *cmd = o->cmd;
  int backup = strcmp(cmd, "backup") == 0;
  int restore = strcmp(cmd, "restore") == 0;
  int verify = strcmp(cmd, "verify") == 0;
  if (strcmp(cmd, "keygen") == 0)
    return !o->db || o->key_file || o->encrypt || o->instance || o->from ||
                   o->to || stripes_arg || o->recipient
               ? usage_error(cmdsp, "keygen takes one FILE and no options "
                                    "but --public")
               : 0;
  if (o->public_key) return misplaced(cmdsp, "--public", "keygen");
  if (o->encrypt && !backup) return misplaced(cmdsp, "--encrypt", "backup");
  if (o->recipient && !backup) return misplaced(cmdsp, "--recipient", "backup");
  if (o->recipient && o->key_file)
    return usage_error(cmdsp, "--key-file and --recipient exclude each "
                              "other on a backup");
  /* list and expire read the stream header of each set (its chain) with
   * the key that opens it. */
  int reads_sets =
      restore || verify || !strcmp(cmd, "list") || !strcmp(cmd, "expire");
  if (o->key_file && !backup && !reads_sets)
    return usage_error(cmdsp, "%s does not use --key-file", cmd);
  if (backup && (o->encrypt != (o->key_file || o->recipient)))
    return usage_error(cmdsp, "%s",
                       o->encrypt    ? "--encrypt needs --key-file F (or "
                                       "--recipient P)"
                       : o->key_file ? "--key-file on a backup needs --encrypt"
                                     : "--recipient needs --encrypt");
  if ((o->key_file || o->recipient) &&
      ((backup && o->to && strcmp(o->to, "-") == 0) ||
       (!backup && o->from && strcmp(o->from, "-") == 0)))
    return usage_error(cmdsp, "encryption works with a repository, not '-'");
  int list = strcmp(cmd, "list") == 0;
  int expire = strcmp(cmd, "expire") == 0;
  int check = strcmp(cmd, "check") == 0;
  int databases = strcmp(cmd, "databases") == 0;
  if (!backup && !restore && (o->buffer_count || o->max_transfer))
    return misplaced(cmdsp,
                     o->buffer_count ? "--buffer-count" : "--max-transfer-size",
                     "backup' or 'vdi restore");
  if (!backup && (stripes_arg || o->compress))
    return misplaced(cmdsp, stripes_arg ? "--stripes" : "--compress", "backup");
  if (o->to && !backup && !check) return misplaced(cmdsp, "--to", "backup");
  if (!restore && (o->replace || o->as || o->to_time || o->latest))
    return misplaced(cmdsp,
                     o->replace   ? "--replace"
                     : o->as      ? "--as"
                     : o->to_time ? "--to-time"
                                  : "--latest",
                     "restore");
  if (!backup && o->kind)
    return misplaced(cmdsp, o->kind == CHAIN_LOG ? "--log" : "--differential",
                     "backup");
  if (!expire && (o->keep_last >= 0 || o->keep_daily >= 0 ||
                  o->keep_days >= 0 || o->delete_sets))
    return misplaced(cmdsp,
                     o->keep_last >= 0    ? "--keep-last"
                     : o->keep_daily >= 0 ? "--keep-daily"
                     : o->keep_days >= 0  ? "--keep-days"
                     : o->delete_sets > 0 ? "--delete"
                                          : "--dry-run",
                     "expire");
  if (o->set_id && !restore && !verify)
    return misplaced(cmdsp, "--set", "restore' or 'vdi verify");
  if (o->kind < 0)
    return usage_error(cmdsp, "--differential and --log exclude each other");
  if (o->to_time && o->latest)
    return usage_error(cmdsp, "--to-time and --latest exclude each other");
  if (o->set_id && o->to_time)
    return usage_error(cmdsp, "--set and --to-time exclude each other");
  if (o->to_time && time_parse_ms(o->to_time, &o->to_time_ms) != 0)
    return usage_error(cmdsp,
                       "--to-time '%.40s' is not YYYY-MM-DDTHH:MM:SS[.mmm]",
                       o->to_time);
  if (o->from && (backup || check || databases))
    return usage_error(cmdsp, "--from is not an option of 'vdi %s'%s", cmd,
                       backup ? " (use --to)" : "");
  if ((list || expire) && (o->instance || o->vdisql))
    return usage_error(cmdsp, "%s does not use the engine", cmd);
  if (databases && (o->db || o->vdisql))
    return usage_error(cmdsp, "%s",
                       o->db ? "databases takes no database name"
                             : "databases does not use the engine");

  if ((backup || restore) && !o->db)
    return usage_error(cmdsp, "no database name given");
  if (o->db && !app_valid_db_name(o->db))
    return usage_error(cmdsp, "invalid database name '%.40s%s' (%s)", o->db,
                       strlen(o->db) > 40 ? "..." : "", APP_DB_NAME_RULE);
  if (o->as && !app_valid_db_name(o->as))
    return usage_error(cmdsp, "invalid database name '%.40s%s' (%s)", o->as,
                       strlen(o->as) > 40 ? "..." : "", APP_DB_NAME_RULE);
  if (backup && !o->to) return usage_error(cmdsp, "--to REPO|- is required");
  if ((restore || verify || list || expire) && !o->from)
    return usage_error(cmdsp, "--from REPO%s is required",
                       verify || restore ? "|-" : "");
  if ((list || expire) && strcmp(o->from, "-") == 0)
    return usage_error(cmdsp, "%s needs a repository, not '-'", cmd);
  if (expire && o->keep_last <= 0 && o->keep_daily <= 0 && o->keep_days <= 0)
    return usage_error(cmdsp, "expire needs --keep-last N, --keep-daily N or "
                              "--keep-days N (at least 1)");
  if (o->keep_last < 0) o->keep_last = 0;
  if (o->keep_daily < 0) o->keep_daily = 0;
  if (o->keep_days < 0) o->keep_days = 0;
  if (o->delete_sets < 0) o->delete_sets = 0;
  o->stripes = 1;
  if (stripes_arg) {
    int rc = parse_count(cmdsp, "--stripes", stripes_arg, 1, APP_MAX_STRIPES,
                         &o->stripes);
    if (rc) return rc;
  }
  if (backup && o->kind && strcmp(o->to, "-") == 0)
    return usage_error(cmdsp, "a differential or log backup goes into the "
                              "repository of its full backup, not '-'");
  if (restore && (o->to_time || o->latest || o->set_id) &&
      strcmp(o->from, "-") == 0)
    return usage_error(cmdsp, "--set, --to-time and --latest plan from a "
                              "repository, not '-'");
  if (backup && strcmp(o->to, "-") == 0 && o->stripes != 1)
    return usage_error(cmdsp, "--to - (stdout) takes exactly one stripe");
  return 0;
}

static int run(const struct options *o) {
  const char *c = o->cmd;
  if (strcmp(c, "keygen") == 0) return keys_keygen(o);
  int st = keys_setup(o);
  if (st != EXIT_OK) return st;
  if (strcmp(c, "backup") == 0) return op_backup(o);
  if (strcmp(c, "restore") == 0) return op_restore(o);
  if (strcmp(c, "verify") == 0) return op_verify(o);
  if (strcmp(c, "expire") == 0) return op_expire(o);
  if (strcmp(c, "check") == 0) return op_check(o);
  if (strcmp(c, "databases") == 0) return op_databases(o);
  return op_list(o);
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error(NULL, "no command given (backup, restore, verify, "
                             "list, expire, check, databases)");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    fputs(usage_top, stdout);
    return EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("%s %s\n", APP_NAME, APP_VERSION);
    return EXIT_OK;
  }
  if (!help_of(cmd)) {
    const char *names[NCOMMANDS + 1];
    for (int i = 0; i < NCOMMANDS; i++)
      names[i] = commands[i].name;
    names[NCOMMANDS] = NULL;
    const char *near = nearest(cmd, names, NULL);
    if (near)
      return usage_error(NULL, "unknown command '%s'; did you mean %s?", cmd,
                         near);
    return usage_error(NULL, "unknown command '%s'", cmd);
  }
  char cmdsp[32];
  snprintf(cmdsp, sizeof cmdsp, "%s ", cmd);

  struct options o = {
      .cmd = cmd, .keep_last = -1, .keep_daily = -1, .keep_days = -1};
  const char *stripes_arg = NULL;
  int rc = parse_args(&o, cmd, cmdsp, argc, argv, &stripes_arg);
  if (rc == PARSE_DONE) return EXIT_OK;
  if (rc == 0) rc = validate(&o, cmdsp, stripes_arg);
  if (rc != 0) return rc;
  app_quiet = o.quiet || o.json;
  app_verbose = o.verbose;
  app_json = o.json;
  /* With --json the summary is the output: no progress lines. */
  if (o.json) o.quiet = 1;

  signals_init();
  int status = run(&o);
  /* A failure with --json: one object saying so, unless the command
   * printed its own (verify, list, expire and check report failures in
   * theirs). */
  if (o.json && status != EXIT_OK && !app_json_done) {
    printf("{\"command\": \"%s\", \"status\": \"%s\", \"exit\": %d, "
           "\"error\": ",
           cmd, status > 128 ? "interrupted" : "error", status);
    json_put_str(stdout, app_first_error());
    printf("}\n");
  }
  return status;
}
