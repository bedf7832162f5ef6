// SPDX-License-Identifier: Apache-2.0
/*
 * main.c - vdi-conform's command line: options, --list, the selected
 * scenarios run (runner.c), the scorecard and JUnit file (report.c), and
 * the exit status: 0 only when every required scenario passed (or does
 * not apply), 1 otherwise, 2 for a usage error.  Also the entry of the
 * engine stand-in (`--engine-shim`, engine.c), which the {engine} script
 * runs.
 */
#include "conform.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: vdi-conform [OPTIONS] -- CLIENT-COMMAND [ARGS...]\n"
    "       vdi-conform --list\n"
    "\n"
    "Plays SQL Server's side of VDI against a client command and scores it.\n"
    "Placeholders in the command and in --env values: {set} {device}\n"
    "{devices} {file} {dir} {db} {op} {engine} {scenario} {seed}; the same\n"
    "values are in VDI_CONFORM_SET, _DEVICE, _DEVICES, _FILE, _DIR, _DB,\n"
    "_OP, _ENGINE, _SCENARIO, _SEED.\n"
    "\n"
    "  --list               list the scenarios and exit\n"
    "  --only NAME[,NAME]   run only these scenarios (repeatable)\n"
    "  --junit FILE         write a JUnit XML report\n"
    "  --timeout SEC        limit per phase of a scenario (default 30)\n"
    "  --command-timeout MS limit per command (default 10000)\n"
    "  --seed N             data and sizes (default: from the clock; printed)\n"
    "  --jobs N             scenarios at once (default 4)\n"
    "  --slow-ms MS         delay of slow_server and no_server (default "
    "2000)\n"
    "  --db NAME            {db} (default conformdb)\n"
    "  --stream raw|openvdi what the data start with: seeded bytes, or the\n"
    "                       header of openvdi's stream format (for vdi)\n"
    "  --stream raw|openvdi what the data start with: seeded bytes, or the\n"
    "                       header of openvdi's stream format (for vdi)\n"
    "  --env NAME=VALUE     one more environment variable for the client\n"
    "  --workdir DIR        where the client's files go (default: a new\n"
    "                       directory under $TMPDIR, removed at the end)\n"
    "  --keep               keep the work directory\n"
    "  --quick              a sixteenth of the data (smoke runs, not for\n"
    "                       certification)\n"
    "See vdi-conform(1).\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", CONFORM_NAME);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see '%s --help')\n", CONFORM_NAME);
  return EXIT_USAGE;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--engine-shim") == 0)
    return engine_shim_main(argc - 2, argv + 2);

  static struct options o;
  o.timeout_s = 30;
  o.command_timeout_ms = 10000;
  o.slow_ms = 2000;
  o.jobs = 4;
  o.db = "conformdb";
  o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  o.only = calloc((size_t)argc + VDI_MAX_DEVICES, sizeof *o.only);
  o.env = calloc((size_t)argc, sizeof *o.env);
  if (!o.only || !o.env) abort();
  int list = 0, i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      return EXIT_OK;
    } else if (strcmp(a, "--version") == 0) {
      printf("%s %s\n", CONFORM_NAME, VDI_VERSION_STRING);
      return EXIT_OK;
    } else if (strcmp(a, "--list") == 0) {
      list = 1;
    } else if (strcmp(a, "--quick") == 0) {
      o.quick = 1;
    } else if (strcmp(a, "--keep") == 0) {
      o.keep = 1;
    } else if (!v) {
      return usage_error("%s needs a value, or is not an option", a);
    } else if (strcmp(a, "--only") == 0) {
      char *copy = strdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t;
           t = strtok_r(NULL, ",", &save)) {
        if (!scenario_find(t))
          return usage_error("no scenario named '%s' (see --list)", t);
        if (o.nonly < argc + VDI_MAX_DEVICES - 1) o.only[o.nonly++] = t;
      }
      i++;
    } else if (strcmp(a, "--stream") == 0) {
      if (strcmp(v, "openvdi") == 0)
        o.openvdi_stream = 1;
      else if (strcmp(v, "raw") != 0)
        return usage_error("--stream '%s': raw or openvdi", v);
      i++;
    } else if (strcmp(a, "--junit") == 0) {
      o.junit = v;
      i++;
    } else if (strcmp(a, "--workdir") == 0) {
      o.workdir = v;
      i++;
    } else if (strcmp(a, "--db") == 0) {
      o.db = v;
      i++;
    } else if (strcmp(a, "--env") == 0) {
      if (!strchr(v, '='))
        return usage_error("--env '%s' is not NAME=VALUE", v);
      o.env[o.nenv++] = v;
      i++;
    } else if (strcmp(a, "--timeout") == 0) {
      if (parse_int(v, 1, 3600, &n) != 0)
        return usage_error("--timeout '%s': 1 to 3600 seconds", v);
      o.timeout_s = (int)n;
      i++;
    } else if (strcmp(a, "--command-timeout") == 0) {
      if (parse_int(v, 10, 3600000, &n) != 0)
        return usage_error("--command-timeout '%s': 10 to 3600000 ms", v);
      o.command_timeout_ms = (int)n;
      i++;
    } else if (strcmp(a, "--slow-ms") == 0) {
      if (parse_int(v, 0, 600000, &n) != 0)
        return usage_error("--slow-ms '%s': 0 to 600000 ms", v);
      o.slow_ms = (int)n;
      i++;
    } else if (strcmp(a, "--jobs") == 0) {
      if (parse_int(v, 1, 64, &n) != 0)
        return usage_error("--jobs '%s': 1 to 64", v);
      o.jobs = (int)n;
      i++;
    } else if (strcmp(a, "--seed") == 0) {
      char *end;
      unsigned long long s = strtoull(v, &end, 0);
      if (!*v || *end) return usage_error("--seed '%s' is not a number", v);
      o.seed = s;
      i++;
    } else {
      return usage_error("unknown option '%s'", a);
    }
  }
  if (list) {
    for (int k = 0; k < nscenarios; k++)
      printf("%-18s %s%s\n", scenarios[k].name, scenarios[k].expect,
             scenarios[k].required ? "" : " (optional)");
    return EXIT_OK;
  }
  if (i >= argc) return usage_error("%s", "no client command after --");
  o.argv = argv + i;
  o.argc = argc - i;
  ssize_t k = readlink("/proc/self/exe", o.self, sizeof o.self - 1);
  if (k <= 0) {
    fprintf(stderr, "%s: cannot find my own path\n", CONFORM_NAME);
    return EXIT_FAIL;
  }
  o.self[k] = 0;
  signal(SIGPIPE, SIG_IGN);

  const struct scenario **sel = calloc((size_t)nscenarios, sizeof *sel);
  struct result *res = calloc((size_t)nscenarios, sizeof *res);
  if (!sel || !res) abort();
  int nsel = 0;
  /* Table order, whatever the order of --only. */
  for (int s = 0; s < nscenarios; s++) {
    int take = o.nonly == 0;
    for (int j = 0; j < o.nonly && !take; j++)
      take = strcmp(o.only[j], scenarios[s].name) == 0;
    if (take) sel[nsel++] = &scenarios[s];
  }
  int64_t t0 = mono_ms();
  runner_run(&o, sel, nsel, res);
  double secs = (double)(mono_ms() - t0) / 1000.0;
  report_scorecard(&o, sel, nsel, res, secs);
  int status = EXIT_OK;
  for (int s = 0; s < nsel; s++)
    if (res[s].verdict == V_FAIL && sel[s]->required) status = EXIT_FAIL;
  if (o.junit) {
    int rc = report_junit(o.junit, sel, nsel, res, secs);
    if (rc != 0) {
      fprintf(stderr, "%s: cannot write %s: %s\n", CONFORM_NAME, o.junit,
              strerror(-rc));
      status = EXIT_FAIL;
    }
  }
  free(sel);
  free(res);
  return status;
}
