// SPDX-License-Identifier: Apache-2.0
/*
 * engine.c - the stand-in for the engine's command-line client, for
 * clients that start the engine themselves (as `vdi` starts vdisql, or a
 * product runs sqlcmd) and name their own set and devices in the
 * statement.  {engine} is the path of a small script that runs
 * `vdi-conform --engine-shim DIR MAXMS ARGS...`: the stand-in takes the
 * statement from -Q, writes the operation and the device names it names
 * to DIR/engine.req for the kit, waits for the kit's verdict in
 * DIR/engine.verdict and ends as sqlcmd would: 0 and a success line, or 1
 * and a "Msg 3013" error.  Files, not a socket: the kit and the stand-in
 * are unrelated processes, and a rename is atomic.
 */
#include "conform.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write text to dir/name through a temporary name and a rename. */
static int write_atomic(const char *dir, const char *name, const char *text) {
  char tmp[4300], path[4300];
  snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, name, (int)getpid());
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fputs(text, f);
  if (fclose(f) != 0) return -1;
  return rename(tmp, path);
}

static char *read_text(const char *dir, const char *name) {
  char path[4300];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 65536);
  if (!buf) abort();
  size_t k = fread(buf, 1, 65535, f);
  buf[k] = 0;
  fclose(f);
  return buf;
}

/* "BACKUP"/"RESTORE" and every VIRTUAL_DEVICE = [N]'name' of a statement,
 * one per line, into out. */
static int parse_statement(const char *q, char *out, size_t n) {
  while (isspace((unsigned char)*q))
    q++;
  const char *op = strncasecmp(q, "BACKUP", 6) == 0    ? "BACKUP"
                   : strncasecmp(q, "RESTORE", 7) == 0 ? "RESTORE"
                                                       : NULL;
  if (!op) return -1;
  size_t len = (size_t)snprintf(out, n, "%s\n", op);
  int ndev = 0;
  for (const char *p = q; (p = strcasestr(p, "VIRTUAL_DEVICE")) != NULL;) {
    p += 14;
    while (isspace((unsigned char)*p))
      p++;
    if (*p != '=') continue;
    p++;
    while (isspace((unsigned char)*p))
      p++;
    if (*p == 'N' || *p == 'n') p++;
    if (*p != '\'') continue;
    p++;
    char name[VDI_MAX_NAME + 2];
    size_t k = 0;
    /* '' is a quote inside the name. */
    while (*p && k < sizeof name - 1) {
      if (*p == '\'' && p[1] == '\'') {
        name[k++] = '\'';
        p += 2;
        continue;
      }
      if (*p == '\'') break;
      name[k++] = *p++;
    }
    name[k] = 0;
    if (len + k + 2 < n)
      len += (size_t)snprintf(out + len, n - len, "%s\n", name);
    ndev++;
  }
  return ndev > 0 ? 0 : -1;
}

int engine_shim_main(int argc, char **argv) {
  if (argc < 2) return EXIT_USAGE;
  const char *dir = argv[0];
  int max_ms = atoi(argv[1]);
  const char *q = NULL;
  for (int i = 2; i + 1 < argc; i++)
    if (strcmp(argv[i], "-Q") == 0 || strcmp(argv[i], "-q") == 0)
      q = argv[i + 1];
  char req[16384];
  if (!q || parse_statement(q, req, sizeof req) != 0) {
    snprintf(req, sizeof req, "?\n%.200s\n", q ? q : "(no -Q statement)");
    write_atomic(dir, "engine.req", req);
    printf("Msg 102, Level 15, State 1, Server vdi-conform, Line 1\n"
           "Incorrect syntax: %s needs BACKUP or RESTORE ... "
           "VIRTUAL_DEVICE='name'\n",
           CONFORM_NAME);
    return 1;
  }
  if (write_atomic(dir, "engine.req", req) != 0) return 1;
  int64_t until = mono_ms() + max_ms;
  char *v = NULL;
  while (!(v = read_text(dir, "engine.verdict")) && mono_ms() < until)
    sleep_ms(10);
  int failed = !v || atoi(v) != 0;
  free(v);
  const char *op = strncmp(req, "BACKUP", 6) == 0 ? "BACKUP" : "RESTORE";
  if (failed) {
    printf("Msg 3013, Level 16, State 1, Server vdi-conform, Line 1\n"
           "%s DATABASE is terminating abnormally.\n",
           op);
    return 1;
  }
  printf("%s DATABASE successfully processed (%s stand-in).\n", op,
         CONFORM_NAME);
  return 0;
}

/* s in single quotes for sh, a quote inside as '\'' */
static void sh_quote(const char *s, char *out, size_t n) {
  size_t k = 0;
  if (n < 3) return;
  out[k++] = '\'';
  for (; *s && k + 6 < n; s++) {
    if (*s == '\'') {
      memcpy(out + k, "'\\''", 4);
      k += 4;
    } else {
      out[k++] = *s;
    }
  }
  out[k++] = '\'';
  out[k] = 0;
}

int engine_script(const char *dir, const char *self, int max_ms, char *path,
                  size_t n) {
  snprintf(path, n, "%s/engine", dir);
  char text[40000], qself[16384], qdir[16384];
  sh_quote(self, qself, sizeof qself);
  sh_quote(dir, qdir, sizeof qdir);
  snprintf(text, sizeof text,
           "#!/bin/sh\n# vdi-conform's engine stand-in for this scenario\n"
           "exec %s --engine-shim %s %d \"$@\"\n",
           qself, qdir, max_ms);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  int ok = write(fd, text, len) == (ssize_t)len;
  return close(fd) == 0 && ok ? 0 : -1;
}

int engine_wait_request(const char *dir, struct client *cl, int64_t deadline,
                        char *op, size_t opn, char names[][VDI_MAX_NAME + 1],
                        int *ndev, char *why, size_t whyn) {
  char *req = NULL;
  char desc[160];
  while (!(req = read_text(dir, "engine.req"))) {
    if (client_poll(cl)) {
      client_describe(cl, desc, sizeof desc);
      snprintf(why, whyn,
               "the client %s without running a statement through {engine}",
               desc);
      return -1;
    }
    if (mono_ms() >= deadline) {
      snprintf(why, whyn, "the client ran no statement through {engine}");
      return -1;
    }
    sleep_ms(10);
  }
  char *save = NULL, *line = strtok_r(req, "\n", &save);
  snprintf(op, opn, "%s", line ? line : "?");
  if (strcmp(op, "?") == 0) {
    line = strtok_r(NULL, "\n", &save);
    snprintf(why, whyn,
             "the statement the client ran names no virtual device: '%.200s'",
             line ? line : "");
    free(req);
    return -1;
  }
  *ndev = 0;
  while ((line = strtok_r(NULL, "\n", &save)) != NULL &&
         *ndev < VDI_MAX_DEVICES)
    snprintf(names[(*ndev)++], VDI_MAX_NAME + 1, "%s", line);
  free(req);
  return 0;
}

void engine_verdict(const char *dir, int failed) {
  write_atomic(dir, "engine.verdict", failed ? "1\n" : "0\n");
}
