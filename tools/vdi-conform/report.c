// SPDX-License-Identifier: Apache-2.0
/*
 * report.c - what the kit tells: the scorecard (scenario, expectation,
 * result, evidence) on stdout, and JUnit XML for a vendor's CI.  The XML
 * is written by hand; everything that came from the client (its output,
 * evidence quoting it) goes through xml_escape, which also keeps the file
 * valid when the client printed control characters or bytes that are not
 * UTF-8.
 */
#include "conform.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *verdict_name(int v) {
  return v == V_PASS ? "PASS" : v == V_NA ? "N/A" : "FAIL";
}

void report_scorecard(const struct options *o, const struct scenario **list,
                      int n, const struct result *res, double seconds) {
  int pass = 0, fail = 0, na = 0;
  printf("%s: seed %llu (replay with --seed %llu)\n", CONFORM_NAME,
         (unsigned long long)o->seed, (unsigned long long)o->seed);
  printf("%-18s %-64s %-4s %s\n", "SCENARIO", "EXPECTATION", "RESULT",
         "EVIDENCE");
  for (int i = 0; i < n; i++) {
    const struct result *r = &res[i];
    printf("%-18s %-64s %-4s %.1fs %s%s\n", list[i]->name, list[i]->expect,
           verdict_name(r->verdict), r->seconds, r->evidence,
           list[i]->required ? "" : " (optional)");
    if (r->verdict == V_PASS)
      pass++;
    else if (r->verdict == V_NA)
      na++;
    else
      fail++;
  }
  printf("%d passed, %d failed, %d not applicable in %.1f s\n", pass, fail, na,
         seconds);
  fflush(stdout);
}

void xml_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
    case '&':
      fputs("&amp;", f);
      break;
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    case '\'':
      fputs("&apos;", f);
      break;
    default:
      /* XML 1.0 allows only tab, newline and carriage return below 0x20;
       * non-ASCII bytes may not be UTF-8 at all. */
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c >= 0x7f)
        fputc('?', f);
      else
        fputc(c, f);
    }
  }
}

int report_junit(const char *path, const struct scenario **list, int n,
                 const struct result *res, double seconds) {
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  int fail = 0, na = 0;
  for (int i = 0; i < n; i++) {
    fail += res[i].verdict == V_FAIL;
    na += res[i].verdict == V_NA;
  }
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  fprintf(f,
          "<testsuites name=\"%s\" tests=\"%d\" failures=\"%d\" "
          "skipped=\"%d\" time=\"%.3f\">\n",
          CONFORM_NAME, n, fail, na, seconds);
  fprintf(f,
          "  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" "
          "errors=\"0\" skipped=\"%d\" time=\"%.3f\">\n",
          CONFORM_NAME, n, fail, na, seconds);
  for (int i = 0; i < n; i++) {
    const struct result *r = &res[i];
    fprintf(f, "    <testcase classname=\"%s\" name=\"", CONFORM_NAME);
    xml_escape(f, list[i]->name);
    fprintf(f, "\" time=\"%.3f\">\n", r->seconds);
    if (r->verdict != V_PASS) {
      fprintf(f, "      <%s message=\"",
              r->verdict == V_NA ? "skipped" : "failure");
      xml_escape(f, r->evidence);
      fprintf(f, "\"%s>", r->verdict == V_NA ? "/" : "");
      if (r->verdict == V_FAIL) {
        fputs("expected: ", f);
        xml_escape(f, list[i]->expect);
        fputs("\n", f);
        xml_escape(f, r->evidence);
        fputs("</failure>", f);
      }
      fputs("\n", f);
    }
    fputs("      <system-out>", f);
    xml_escape(f, r->tail);
    fputs("</system-out>\n    </testcase>\n", f);
  }
  fprintf(f, "  </testsuite>\n</testsuites>\n");
  if (fclose(f) != 0) return -errno;
  return 0;
}
