/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_tds_reader.c - the TDS endpoint's reader on arbitrary bytes from a
 * client (issue 10: "a fuzz target for the TDS reader: pre-login, login,
 * batch, attention packets, lengths, packet boundaries").
 *
 * The input is what a client sends on its connection.  It is read as
 * tdssession.c reads it: message by message (packets joined until
 * end-of-message), each parsed by its type.  Every message must end as a
 * parsed request or a refusal, never a read outside the input; strings
 * come back NUL-terminated inside their fields.  The first byte chooses
 * the TDS version the batches are read with (7.1 has no ALL_HEADERS).
 */
#include "fuzz_helpers.h"

#include "tds.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int fd = memfd_create("tds", MFD_CLOEXEC);
  FZ_CHECK(fd >= 0);
  size_t body = size - 1;
  FZ_CHECK(body == 0 || write(fd, data + 1, body) == (ssize_t)body);
  lseek(fd, 0, SEEK_SET);
  tds_conn c;
  FZ_CHECK(tds_init(&c, fd) == 0);
  c.version = data[0] & 1 ? TDS_V71 : TDS_V74;
  for (int k = 0; k < 64; k++) {
    uint8_t type = 0, *m = NULL;
    size_t n = 0;
    int rc = tds_read_message(&c, &type, &m, &n);
    if (rc <= 0) {
      FZ_CHECK(m == NULL);
      break;
    }
    FZ_CHECK(m != NULL && n <= TDS_MAX_MESSAGE);
    if (type == TDS_PKT_PRELOGIN) {
      int enc;
      if (tds_parse_prelogin(m, n, &enc) == 0) FZ_CHECK(enc >= -1 && enc < 256);
    } else if (type == TDS_PKT_LOGIN7) {
      tds_login l;
      if (tds_parse_login7(m, n, &l) == 0) {
        FZ_CHECK(memchr(l.user, 0, sizeof l.user) != NULL);
        FZ_CHECK(memchr(l.password, 0, sizeof l.password) != NULL);
        FZ_CHECK(memchr(l.app, 0, sizeof l.app) != NULL);
        FZ_CHECK(memchr(l.database, 0, sizeof l.database) != NULL);
      }
    } else if (type == TDS_PKT_BATCH) {
      char *text = tds_batch_text(&c, m, n);
      if (text) FZ_CHECK(strlen(text) <= n / 2 * 3);
      free(text);
    }
    free(m);
  }
  tds_free(&c);
  close(fd);
  return 0;
}
