/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.c - names and descriptions of the VD_E_* codes, and the version.
 *
 * Both functions are generated from the one list in include/vdi.h
 * (VDI_ERROR_MAP), so names, texts and values can never disagree.
 */
#include "vdi.h"

const char *vdi_error_name(int code) {
  if (code == NOERROR) return "NOERROR";
#define XX(name, number, text)                                                 \
  if (code == (name)) return #name;
  VDI_ERROR_MAP(XX)
#undef XX
  return "?";
}

const char *vdi_strerror(int code) {
  if (code == NOERROR) return "success";
#define XX(name, number, text)                                                 \
  if (code == (name)) return text;
  VDI_ERROR_MAP(XX)
#undef XX
  return "unknown error code";
}

unsigned vdi_version_number(void) {
  return VDI_VERSION_NUMBER;
}
