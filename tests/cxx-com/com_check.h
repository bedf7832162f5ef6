/* SPDX-License-Identifier: Apache-2.0 */
/*
 * com_check.h - what the C++ COM tests (tests/cxx-com/) share: CHECK and
 * CHECK_HR, which end the program with the failed expression and its
 * HRESULT, and widen() for the wide names the interfaces take.
 */
#ifndef COM_CHECK_H
#define COM_CHECK_H

#include "vdi_com.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond);   \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)
#define CHECK_HR(expr, want)                                                   \
  do {                                                                         \
    HRESULT hr_ = (expr);                                                      \
    if (hr_ != (want)) {                                                       \
      std::fprintf(stderr, "%s:%d: %s = 0x%08x (%s), expected %s\n", __FILE__, \
                   __LINE__, #expr, (unsigned)hr_, vdi_error_name(hr_),        \
                   #want);                                                     \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

/* ASCII to the wide names of the interface. */
static inline std::wstring widen(const std::string &s) {
  std::wstring w;
  for (char c : s)
    w += static_cast<wchar_t>(static_cast<unsigned char>(c));
  return w;
}

#endif
