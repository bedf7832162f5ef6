/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guard.c - the instance's protections (see guard.h).
 *
 * The backup-target rule works on what the path IS, not how it is
 * spelled: the parent directory is resolved (realpath) so "..", symlinked
 * directories and relative paths all arrive at one name, and an existing
 * target is compared by device and inode with every file of the instance,
 * and every file under the private directory, which catches hard links
 * and symlinks to them.
 *
 * The statement locks are flock(2) locks on one file per database under
 * "<dir>/.vdisql/locks".  They are advisory and only bind vdisql
 * processes; other SQLite programs are kept out of a restore by the
 * take-over in dbwrite.c.  Lock files are never removed: removing one
 * while another process has it open would let two processes lock two
 * different files of the same name.
 */
#include "guard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRIVATE_DIR ".vdisql"

static const char *const companions[] = {"-wal", "-shm", "-journal"};

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The database a file name of the instance directory belongs to
 * ("a.db", "a.db-wal" -> "a"), or 0 if it is not a database's file. */
static int db_of_name(const char *name, char *db, size_t n) {
  size_t len = strlen(name);
  for (size_t i = 0; i < sizeof companions / sizeof companions[0]; i++)
    if (ends_with(name, companions[i])) {
      len -= strlen(companions[i]);
      break;
    }
  if (len <= 3 || strncmp(name + len - 3, ".db", 3) != 0) return 0;
  snprintf(db, n, "%.*s", (int)(len - 3), name);
  return 1;
}

static int refuse(vmsg *err, const char *path, const char *why) {
  vmsg_set(err, 3201,
           "Cannot open backup device '%s'. Operating system error "
           "32(The process cannot access the file because it is being used "
           "by another process.). %s",
           path, why);
  return -1;
}

/* realpath of path's directory, then its last component. */
static int split_resolved(const char *path, char *dir, char *base) {
  char tmp[PATH_MAX];
  const char *slash = strrchr(path, '/');
  const char *b = slash ? slash + 1 : path;
  if (!*b || strcmp(b, ".") == 0 || strcmp(b, "..") == 0) return -1;
  if (!slash)
    snprintf(tmp, sizeof tmp, ".");
  else if (slash == path)
    snprintf(tmp, sizeof tmp, "/");
  else
    snprintf(tmp, sizeof tmp, "%.*s", (int)(slash - path), path);
  if (!realpath(tmp, dir)) return -1;
  snprintf(base, NAME_MAX + 1, "%s", b);
  return 0;
}

/* nftw() takes no context: the walk's target and result, per thread
 * (sessions of an instance run statements at once). */
static __thread const struct stat *walk_target;
static __thread char walk_hit[PATH_MAX];

static int walk_one(const char *p, const struct stat *st, int type,
                    struct FTW *ftw) {
  (void)type, (void)ftw;
  if (st->st_dev != walk_target->st_dev || st->st_ino != walk_target->st_ino)
    return 0;
  const char *rel = strstr(p, "/" PRIVATE_DIR);
  snprintf(walk_hit, sizeof walk_hit, "%s", rel ? rel + 1 : p);
  return 1; /* found: stop the walk */
}

int guard_backup_target(const char *inst_dir, const char *path, vmsg *err) {
  char inst[PATH_MAX], dir[PATH_MAX], base[NAME_MAX + 1], db[256], why[600];
  if (!realpath(inst_dir, inst)) return 0; /* no instance: nothing to hurt */
  if (split_resolved(path, dir, base) == 0) {
    size_t il = strlen(inst);
    if (strcmp(dir, inst) == 0) {
      if (db_of_name(base, db, sizeof db)) {
        snprintf(why, sizeof why,
                 "The name is that of a file of database '%s' of this "
                 "instance.",
                 db);
        return refuse(err, path, why);
      }
      if (base[0] == '.')
        return refuse(err, path,
                      "Names starting with '.' in the instance directory "
                      "belong to the instance.");
    }
    if (strncmp(dir, inst, il) == 0 &&
        strncmp(dir + il, "/" PRIVATE_DIR, sizeof PRIVATE_DIR) == 0 &&
        (dir[il + sizeof PRIVATE_DIR] == 0 ||
         dir[il + sizeof PRIVATE_DIR] == '/'))
      return refuse(err, path, "The instance's private files are there.");
  }
  /* An existing target: is it (by inode) any file of the instance? */
  struct stat ts;
  if (stat(path, &ts) != 0) return 0;
  DIR *d = opendir(inst);
  if (!d) return 0;
  struct dirent *e;
  int hit = 0;
  while (!hit && (e = readdir(d)) != NULL) {
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int is_db = db_of_name(e->d_name, db, sizeof db);
    if (!is_db && e->d_name[0] != '.') continue;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_dev == ts.st_dev && st.st_ino == ts.st_ino) {
      hit = 1;
      if (is_db)
        snprintf(why, sizeof why, "It is a file of database '%s'.", db);
      else
        snprintf(why, sizeof why, "It is the instance's file '%s'.", e->d_name);
    }
  }
  if (!hit) {
    /* Everything under the private directory, at any depth. */
    char sub[PATH_MAX + 16];
    snprintf(sub, sizeof sub, "%s/%s", inst, PRIVATE_DIR);
    walk_target = &ts;
    walk_hit[0] = 0;
    if (nftw(sub, walk_one, 8, FTW_PHYS) == 1) {
      hit = 1;
      /* The name is cut to fit the message; the refusal does not depend
       * on it. */
      snprintf(why, sizeof why, "It is the instance's file '%.500s'.",
               walk_hit);
    }
  }
  closedir(d);
  return hit ? refuse(err, path, why) : 0;
}

static int under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  if (n == 1 && dir[0] == '/') return 1;
  return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

int guard_confined(const char *const *dirs, const char *path, vmsg *err) {
  char dir[PATH_MAX], base[NAME_MAX + 1], whole[PATH_MAX + NAME_MAX + 2];
  if (!dirs) return 0;
  /* An existing file (or link) is judged by where it really is; a new
   * one by the real directory it would be created in. */
  if (!realpath(path, whole)) {
    if (split_resolved(path, dir, base) != 0) goto refused;
    snprintf(whole, sizeof whole, "%s/%s", dir, base);
  }
  for (size_t i = 0; dirs[i]; i++)
    if (under(whole, dirs[i])) return 0;
refused:
  vmsg_set(err, 3201,
           "Cannot open backup device '%s'. Operating system error "
           "5(Access is denied.): the instance reads and writes backups only "
           "in its backup directories (vdisql --serve --backup-dir).",
           path);
  return -1;
}

char *guard_resolve(const char *base, const char *path, const char *const *dirs,
                    vmsg *err) {
  char *out = NULL;
  if (path[0] == '/' || !base)
    out = strdup(path);
  else if (asprintf(&out, "%s/%s", base, path) < 0)
    out = NULL;
  if (!out) {
    vmsg_set(err, 3201, "Cannot open backup device '%s': out of memory.", path);
    return NULL;
  }
  if (guard_confined(dirs, out, err)) {
    free(out);
    return NULL;
  }
  return out;
}

int guard_private_dir(const char *inst_dir, const char *sub, char *out,
                      size_t n) {
  if ((size_t)snprintf(out, n, "%s/%s", inst_dir, PRIVATE_DIR) >= n)
    return -ENAMETOOLONG;
  if (mkdir(out, 0700) != 0 && errno != EEXIST) return -errno;
  if (!sub) return 0;
  if ((size_t)snprintf(out, n, "%s/%s/%s", inst_dir, PRIVATE_DIR, sub) >= n)
    return -ENAMETOOLONG;
  if (mkdir(out, 0700) != 0 && errno != EEXIST) return -errno;
  return 0;
}

int guard_lock(const char *inst_dir, const char *db, int exclusive, int *lock,
               vmsg *err) {
  char dir[PATH_MAX], path[PATH_MAX + 300];
  int rc = guard_private_dir(inst_dir, "locks", dir, sizeof dir);
  int fd = -1;
  *lock = -1;
  snprintf(path, sizeof path, "%s/%s/locks/%s.lock", inst_dir, PRIVATE_DIR, db);
  if (rc == 0) {
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) rc = -errno;
  }
  if (fd < 0 && !exclusive) {
    /* A backup from an instance this user may read but not write: no
     * restore can start there under this user either, but the owner's
     * could, so take the lock if the owner's file lets us read it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && (rc == -EACCES || rc == -EROFS || rc == -EPERM))
      return 0; /* nothing to lock against: the owner never restored */
  }
  if (fd < 0) {
    vmsg_set(err, 3634,
             "The operating system returned the error '%d(%s)' while "
             "attempting 'lock' on '%s'.",
             -rc, strerror(-rc), path);
    return -1;
  }
  if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
    *lock = fd;
    return 0;
  }
  int e = errno;
  close(fd);
  if (e != EWOULDBLOCK) {
    vmsg_set(err, 3634,
             "The operating system returned the error '%d(%s)' while "
             "attempting 'lock' on '%s'.",
             e, strerror(e), path);
  } else if (exclusive) {
    vmsg_set(err, 3101,
             "Exclusive access could not be obtained because the database "
             "'%s' is in use.",
             db);
  } else {
    vmsg_set(err, 927,
             "Database '%s' cannot be opened. It is in the middle of a "
             "restore.",
             db);
  }
  return -1;
}

void guard_unlock(int lock) {
  if (lock >= 0) close(lock);
}
