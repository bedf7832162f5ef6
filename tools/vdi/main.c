/*
 * main.c - the command line of `vdi`, the reference backup application:
 *
 *   vdi backup DB --to DIR|- [--instance DIR] [--stripes N] [--compress]
 *              [--differential | --log]
 *   vdi restore DB --from DIR|- [--instance DIR] [--replace] [--as NAME]
 *               [--to-time T | --latest]
 *   vdi verify [DB] --from DIR|- [--instance DIR]
 *   vdi list --from DIR
 *
 * Every usage error is one line on stderr naming the problem, exit 2.
 */
#include "app.h"

#include "seal.h"
#include "timefmt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_top =
    "usage: vdi COMMAND [ARGS]   back up and restore databases through SQL\n"
    "                            Server Virtual Device Interface devices\n"
    "\n"
    "commands:\n"
    "  backup DB --to DIR|-     back up database DB (one file per stripe)\n"
    "  restore DB --from DIR|-  restore it (optionally under another name)\n"
    "  verify [DB] --from DIR   check a backup end to end, restoring nothing\n"
    "  list --from DIR          show the backups in a directory\n"
    "  keygen FILE              make a key for --encrypt (32 random bytes)\n"
    "\n"
    "'vdi COMMAND --help' describes each command; see also vdi(1).\n";

static const char *usage_backup =
    "usage: vdi backup DB --to DIR|- [--instance DIR] [--stripes N]\n"
    "                  [--compress] [--differential | --log]\n"
    "                  [--encrypt --key-file F] [--vdisql PATH] [--quiet]\n"
    "\n"
    "Back up database DB of the instance (the SQLite file DB.db) through N\n"
    "virtual devices (1..64, default 1) into DIR: one file per stripe,\n"
    "DB.stripe<i>.vdibak, and DB.manifest.json written last.  '-' writes\n"
    "the single stripe to stdout (no manifest).  --compress asks the engine\n"
    "for zstd compression.  --instance defaults to vdisql's default\n"
    "instance ($VDI_INSTANCE_DIR, see vdisql(1)).  --differential and\n"
    "--log back up the pages changed since the last full backup, or the\n"
    "log since the last log backup (the instance must run: vdisql\n"
    "--serve), into DIR/DB.chain/ beside the full backup they continue;\n"
    "a new full backup removes the old chain.  --encrypt --key-file F\n"
    "seals every stripe with the key in F (authenticated encryption; make\n"
    "one with 'vdi keygen F'): restore and verify need it.\n";

static const char *usage_restore =
    "usage: vdi restore DB --from DIR|- [--instance DIR] [--replace]\n"
    "                   [--as NAME] [--to-time T | --latest]\n"
    "                   [--key-file F] [--vdisql PATH] [--quiet]\n"
    "\n"
    "Restore the backup of DB found in DIR (checked against its manifest\n"
    "first) into the instance, as DB or as NAME with --as.  An existing\n"
    "database is replaced only with --replace.  '-' reads one stripe from\n"
    "stdin.  --latest restores the whole chain in DIR (the full backup, the\n"
    "newest differential, every later log backup); --to-time\n"
    "'YYYY-MM-DDTHH:MM:SS[.mmm]' (local time) restores it to that instant\n"
    "(STOPAT).  An encrypted backup needs its key (--key-file F): every\n"
    "stripe is authenticated whole before anything is restored.\n";

static const char *usage_verify =
    "usage: vdi verify [DB] --from DIR|- [--instance DIR] [--vdisql PATH]\n"
    "                  [--key-file F]\n"
    "\n"
    "Check every backup in DIR (or only DB's): the manifest, each stripe's\n"
    "size and CRC-32C, then the engine reads the whole stream with RESTORE\n"
    "VERIFYONLY.  Nothing is restored.  An encrypted backup needs its key\n"
    "(--key-file F).\n";

static const char *usage_keygen =
    "usage: vdi keygen FILE\n"
    "\n"
    "Write a new random key (32 bytes, mode 0600) to FILE, which must not\n"
    "exist, for 'vdi backup --encrypt --key-file FILE'.  Keep a copy away\n"
    "from the backups: without it they cannot be restored.\n";

static const char *usage_list =
    "usage: vdi list --from DIR\n"
    "\n"
    "Show what the manifests in DIR record: database, time, stripes, sizes,\n"
    "checksums, compression.  Stripe files are checked for size.\n";

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

static const char *help_of(const char *cmd) {
  if (strcmp(cmd, "backup") == 0) return usage_backup;
  if (strcmp(cmd, "restore") == 0) return usage_restore;
  if (strcmp(cmd, "verify") == 0) return usage_verify;
  if (strcmp(cmd, "list") == 0) return usage_list;
  if (strcmp(cmd, "keygen") == 0) return usage_keygen;
  return NULL;
}

/* Options taking a value; the rest are flags. */
static const char *const valued[] = {"--instance", "--to",       "--from",
                                     "--stripes",  "--as",       "--vdisql",
                                     "--to-time",  "--key-file", NULL};

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error(NULL, "no command given (backup, restore, verify, "
                             "list)");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    fputs(usage_top, stdout);
    return EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("%s %s\n", APP_NAME, APP_VERSION);
    return EXIT_OK;
  }
  if (!help_of(cmd)) return usage_error(NULL, "unknown command '%s'", cmd);
  char cmdsp[32];
  snprintf(cmdsp, sizeof cmdsp, "%s ", cmd);

  struct options o = {.cmd = cmd, .stripes = 0};
  const char *stripes_arg = NULL;
  for (int i = 2; i < argc; i++) {
    char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(help_of(cmd), stdout);
      return EXIT_OK;
    }
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      if (o.db) return usage_error(cmdsp, "unexpected argument '%s'", a);
      o.db = a;
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
    if (strcmp(key, "--instance") == 0)
      o.instance = val;
    else if (strcmp(key, "--to") == 0)
      o.to = val;
    else if (strcmp(key, "--from") == 0)
      o.from = val;
    else if (strcmp(key, "--stripes") == 0)
      stripes_arg = val;
    else if (strcmp(key, "--as") == 0)
      o.as = val;
    else if (strcmp(key, "--vdisql") == 0)
      o.vdisql = val;
    else if (strcmp(key, "--compress") == 0)
      o.compress = 1;
    else if (strcmp(key, "--replace") == 0)
      o.replace = 1;
    else if (strcmp(key, "--differential") == 0)
      o.kind = o.kind == CHAIN_LOG ? -1 : CHAIN_DIFF;
    else if (strcmp(key, "--log") == 0)
      o.kind = o.kind == CHAIN_DIFF ? -1 : CHAIN_LOG;
    else if (strcmp(key, "--to-time") == 0)
      o.to_time = val;
    else if (strcmp(key, "--latest") == 0)
      o.latest = 1;
    else if (strcmp(key, "--encrypt") == 0)
      o.encrypt = 1;
    else if (strcmp(key, "--key-file") == 0)
      o.key_file = val;
    else if (strcmp(key, "--quiet") == 0 || strcmp(key, "-q") == 0)
      o.quiet = 1;
    else
      return usage_error(cmdsp, "unknown option '%s'", a);
  }

  if (strcmp(cmd, "keygen") == 0) {
    char err[512];
    if (!o.db || o.key_file || o.encrypt || o.instance || o.from || o.to)
      return usage_error(cmdsp, "keygen takes one FILE and no options");
    if (seal_keygen(o.db, err, sizeof err) != 0) {
      app_err("%s", err);
      return EXIT_FAIL;
    }
    return EXIT_OK;
  }
  int backup = strcmp(cmd, "backup") == 0;
  int restore = strcmp(cmd, "restore") == 0;
  int verify = strcmp(cmd, "verify") == 0;
  /* Options that belong to another command are errors, not no-ops. */
  if (!backup && (o.to || stripes_arg || o.compress))
    return usage_error(cmdsp, "%s is an option of 'vdi backup'",
                       o.to          ? "--to"
                       : stripes_arg ? "--stripes"
                                     : "--compress");
  if (!restore && (o.replace || o.as || o.to_time || o.latest))
    return usage_error(cmdsp, "%s is an option of 'vdi restore'",
                       o.replace   ? "--replace"
                       : o.as      ? "--as"
                       : o.to_time ? "--to-time"
                                   : "--latest");
  if (!backup && o.kind)
    return usage_error(cmdsp, "%s is an option of 'vdi backup'",
                       o.kind == CHAIN_LOG ? "--log" : "--differential");
  if (o.kind < 0)
    return usage_error(cmdsp, "--differential and --log exclude each other");
  if (o.to_time && o.latest)
    return usage_error(cmdsp, "--to-time and --latest exclude each other");
  int64_t when;
  if (o.to_time && time_parse_ms(o.to_time, &when) != 0)
    return usage_error(
        cmdsp, "--to-time '%.40s' is not YYYY-MM-DDTHH:MM:SS[.mmm]", o.to_time);
  if (backup && o.from)
    return usage_error(cmdsp, "--from is not an option of 'vdi backup' "
                              "(use --to)");
  if (!backup && !restore && !verify && (o.instance || o.vdisql || o.db))
    return usage_error(cmdsp, "%s",
                       o.db ? "list takes no database name"
                            : "list does not use the engine");

  if ((backup || restore) && !o.db)
    return usage_error(cmdsp, "no database name given");
  if (o.db && !app_valid_db_name(o.db))
    return usage_error(cmdsp, "invalid database name '%.40s%s' (%s)", o.db,
                       strlen(o.db) > 40 ? "..." : "", APP_DB_NAME_RULE);
  if (o.as && !app_valid_db_name(o.as))
    return usage_error(cmdsp, "invalid database name '%.40s%s' (%s)", o.as,
                       strlen(o.as) > 40 ? "..." : "", APP_DB_NAME_RULE);
  if (backup && !o.to) return usage_error(cmdsp, "--to DIR|- is required");
  if (!backup && !o.from)
    return usage_error(cmdsp, "--from DIR%s is required",
                       verify || restore ? "|-" : "");
  if (!backup && !restore && !verify && strcmp(o.from, "-") == 0)
    return usage_error(cmdsp, "list needs a directory, not '-'");
  o.stripes = 1;
  if (stripes_arg) {
    char *end;
    errno = 0;
    long n = strtol(stripes_arg, &end, 10);
    if (errno || *end || n < 1 || n > APP_MAX_STRIPES)
      return usage_error(cmdsp, "--stripes must be 1..%d, not '%s'",
                         APP_MAX_STRIPES, stripes_arg);
    o.stripes = (int)n;
  }
  if (backup && o.kind && strcmp(o.to, "-") == 0)
    return usage_error(cmdsp, "a differential or log backup goes into the "
                              "directory of its full backup, not '-'");
  if (restore && (o.to_time || o.latest) && strcmp(o.from, "-") == 0)
    return usage_error(cmdsp, "--to-time and --latest plan from a "
                              "directory, not '-'");
  if (backup && strcmp(o.to, "-") == 0 && o.stripes != 1)
    return usage_error(cmdsp, "--to - (stdout) takes exactly one stripe");

  if (o.encrypt && !backup)
    return usage_error(cmdsp, "--encrypt is an option of 'vdi backup'");
  if (o.key_file && !backup && !restore && !verify)
    return usage_error(cmdsp, "list does not need --key-file");
  if (backup && (o.encrypt != (o.key_file != NULL)))
    return usage_error(cmdsp, "%s",
                       o.encrypt ? "--encrypt needs --key-file F"
                                 : "--key-file on a backup needs "
                                   "--encrypt");
  if (o.key_file && ((backup && strcmp(o.to, "-") == 0) ||
                     (!backup && strcmp(o.from, "-") == 0)))
    return usage_error(cmdsp, "encryption works with a directory, not '-'");
  static struct seal_key key;
  if (o.key_file) {
    char err[512];
    if (seal_key_load(&key, o.key_file, err, sizeof err) != 0) {
      app_err("%s", err);
      return EXIT_FAIL;
    }
    stripe_key = &key;
    stripe_encrypt = o.encrypt;
  }

  signals_init();
  if (backup) return op_backup(&o);
  if (restore) return op_restore(&o);
  if (verify) return op_verify(&o);
  return op_list(&o);
}
