/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restoreplan.c - the restore rules (see restoreplan.h).  The texts are
 * SQL Server's; where vdisql knows less than SQL Server (a database that
 * never had a backup has no identity yet), it refuses rather than guess.
 */
#include "restoreplan.h"

#include "capture.h"
#include "timefmt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static const uint8_t zero16[16];

int rp_check_full(const char *inst_dir, const char *db, const vs_header *h,
                  vmsg *err) {
  char path[4200];
  struct stat st;
  restoring r;
  if (restoring_get(inst_dir, db, &r, err) != 0) return -1;
  snprintf(path, sizeof path, "%s/%s.db", inst_dir, db);
  if (!r.known && stat(path, &st) != 0) return 0; /* nothing there */
  const uint8_t *have = NULL;
  dbstate ds = {0};
  if (r.known) {
    have = r.family;
  } else {
    if (dbstate_get(inst_dir, db, &ds, err) != 0) return -1;
    if (ds.known) have = ds.family;
  }
  int same_known = have && memcmp(h->family_id, zero16, 16) != 0 &&
                   memcmp(have, h->family_id, 16) == 0;
  if (!same_known) {
    if (have && memcmp(h->family_id, zero16, 16) != 0) {
      vmsg_set(err, 3154,
               "The backup set holds a backup of a database other than the "
               "existing '%s' database.",
               db);
      return -1;
    }
    /* No identity to compare: the database was never backed up by this
     * instance, or the backup predates identities. */
    vmsg_set(err, 1834,
             "The file '%s' cannot be overwritten. It is being used by "
             "database '%s'. Use WITH REPLACE to overwrite the existing "
             "database.",
             path, db);
    return -1;
  }
  if (!r.known && ds.full && ds.has_log) {
    /* The tail: log after the last log backup that a restore would lose. */
    cap_point pt;
    vmsg ignore = {0};
    int followed = capture_sync(db, 0, 0, &pt, &ignore);
    if (followed != 1 || pt.lsn > ds.log_lsn) {
      vmsg_set(err, 3159,
               "The tail of the log for the database \"%s\" has not been "
               "backed up. Use BACKUP LOG WITH NORECOVERY to backup the log "
               "if it contains work you do not want to lose. Use the WITH "
               "REPLACE or WITH STOPAT clause of the RESTORE statement to "
               "just overwrite the contents of the log.",
               db);
      return -1;
    }
  }
  return 0;
}

int rp_check_moves(const char *inst_dir, const char *db, const vs_header *h,
                   int nmove, char *const *from, char *const *to, vmsg *err) {
  char inst[PATH_MAX], dir[PATH_MAX], log_name[200];
  snprintf(log_name, sizeof log_name, "%s_log", h->database);
  if (nmove && !realpath(inst_dir, inst))
    return vmsg_os_error(err, "resolve", inst_dir);
  for (int i = 0; i < nmove; i++) {
    int data = strcasecmp(from[i], h->database) == 0;
    if (!data && strcasecmp(from[i], log_name) != 0) {
      vmsg_set(err, 3234,
               "Logical file '%s' is not part of database '%s'. Use RESTORE "
               "FILELISTONLY to list the logical file names.",
               from[i], db);
      return -1;
    }
    /* A relative path is under the instance, as DISK paths are. */
    char full[PATH_MAX];
    if (to[i][0] == '/')
      snprintf(full, sizeof full, "%s", to[i]);
    else
      snprintf(full, sizeof full, "%.*s/%s", PATH_MAX / 2, inst_dir, to[i]);
    const char *slash = strrchr(full, '/');
    const char *name = slash + 1;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - full), full);
    if (slash == full) snprintf(dir, sizeof dir, "/");
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
      vmsg_set(err, 5133,
               "Directory lookup for the file \"%s\" failed with the "
               "operating system error 2(No such file or directory).",
               to[i]);
      return -1;
    }
    size_t stem = strcspn(name, ".");
    int here = strcmp(real, inst) == 0;
    int named = !data || (strlen(db) == stem && strncmp(name, db, stem) == 0);
    if (!here || !named || !*name) {
      vmsg_set(err, 3156,
               "File '%s' cannot be restored to '%s'. Use WITH MOVE to "
               "identify a valid location for the file. (vdisql keeps "
               "database '%s' in '%s/%s.db', with its log beside it: MOVE "
               "can name that file, with any extension, and a log file in "
               "that directory.)",
               from[i], to[i], db, inst, db);
      return -1;
    }
  }
  return 0;
}

int rp_check_kind(int restore_log, const vs_header *h, vmsg *err) {
  int is_log = h->backup_type == VS_TYPE_LOG;
  if (is_log == restore_log) return 0;
  vmsg_set(err, 3135,
           "The backup set in file 1 was created by %s and cannot be used "
           "for this restore operation.",
           is_log ? "BACKUP LOG" : "BACKUP DATABASE");
  return -1;
}

int rp_check_restoring(const char *db, const restoring *r, vmsg *err) {
  if (!r->known) {
    vmsg_set(err, 3117,
             "The log or differential backup cannot be restored because no "
             "files are ready to rollforward: database '%s' is not in the "
             "RESTORING state (restore a full backup WITH NORECOVERY first).",
             db);
    return -1;
  }
  if (r->applying) {
    vmsg_set(err, 3456,
             "Could not redo the restore sequence of database '%s': an "
             "earlier RESTORE was interrupted while applying. Restart the "
             "sequence with RESTORE DATABASE from the full backup.",
             db);
    return -1;
  }
  return 0;
}

static int same_family(const char *db, const restoring *r, const vs_header *h,
                       vmsg *err) {
  if (memcmp(r->family, h->family_id, 16) == 0) return 0;
  vmsg_set(err, 3154,
           "The backup set holds a backup of a database other than the "
           "existing '%s' database.",
           db);
  return -1;
}

int rp_check_diff(const char *db, const restoring *r, const vs_header *h,
                  vmsg *err) {
  if (rp_check_restoring(db, r, err) || same_family(db, r, h, err)) return -1;
  /* A differential goes onto its own base, before any log. */
  if (memcmp(r->last_set, h->diff_base_id, 16) != 0 ||
      memcmp(r->base_set, h->diff_base_id, 16) != 0) {
    vmsg_set(err, 3136,
             "This differential backup cannot be restored because the "
             "database has not been restored to the correct earlier state.");
    return -1;
  }
  return 0;
}

int rp_check_log(const char *db, const restoring *r, const vs_header *h,
                 int64_t stop_ms, vmsg *err) {
  if (rp_check_restoring(db, r, err) || same_family(db, r, h, err)) return -1;
  if (r->lsn == 0 || r->lsn < h->first_lsn) {
    vmsg_set(err, 4305,
             "The log in this backup set begins at LSN %llu, which is too "
             "recent to apply to the database. An earlier log backup that "
             "includes LSN %llu can be restored.",
             (unsigned long long)h->first_lsn, (unsigned long long)r->lsn);
    return -1;
  }
  /* A log wholly applied already (an empty one may be restored). */
  if (r->lsn > h->last_lsn ||
      (r->lsn == h->last_lsn && h->last_lsn > h->first_lsn)) {
    vmsg_set(err, 4326,
             "The log in this backup set terminates at LSN %llu, which is "
             "too early to apply to the database. A more recent log backup "
             "that includes LSN %llu can be restored.",
             (unsigned long long)h->last_lsn, (unsigned long long)r->lsn);
    return -1;
  }
  if (stop_ms != RP_NO_STOPAT && stop_ms < r->time_ms) {
    vmsg_set(err, 4338,
             "The STOPAT clause specifies a point too early to allow this "
             "backup set to be restored. Choose a different stop point or "
             "use RESTORE DATABASE WITH RECOVERY to recover at the current "
             "point.");
    return -1;
  }
  return 0;
}

int rp_parse_stopat(const char *text, int64_t *ms, vmsg *err) {
  if (time_parse_ms(text, ms) == 0) return 0;
  vmsg_set(err, 241,
           "Conversion failed when converting date and/or time from "
           "character string: STOPAT = '%s' (use 'YYYY-MM-DDTHH:MM:SS[.mmm]').",
           text);
  return -1;
}
