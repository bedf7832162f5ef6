/*
 * error.c - names and descriptions of the VD_E_* codes, and the version.
 *
 * One list (VDI_ERROR_MAP) produces both vdi_error_name() and
 * vdi_strerror(), so the two can never disagree.
 */
#include "vdi.h"

#define VDI_ERROR_MAP(XX)                                                      \
  XX(NOERROR, "success")                                                       \
  XX(VD_E_NOTOPEN, "object not open")                                          \
  XX(VD_E_TIMEOUT, "timed out waiting")                                        \
  XX(VD_E_ABORT, "the operation was aborted (SignalAbort, peer death or "      \
                 "protocol error); only termination actions are possible")     \
  XX(VD_E_SECURITY, "the peer is not allowed to use this set")                 \
  XX(VD_E_INVALID, "invalid parameter")                                        \
  XX(VD_E_INSTANCE_NAME, "instance name not recognised")                       \
  XX(VD_E_NOTSUPPORTED, "requested configuration is not supported")            \
  XX(VD_E_MEMORY, "out of memory")                                             \
  XX(VD_E_UNEXPECTED, "unexpected internal or system error")                   \
  XX(VD_E_PROTOCOL, "call not legal in the current state, or the peer broke "  \
                    "the protocol")                                            \
  XX(VD_E_OPEN, "all devices are open")                                        \
  XX(VD_E_CLOSE, "the device is closed")                                       \
  XX(VD_E_BUSY, "resource busy: a live set already has this name")             \
  XX(VD_E_QUEUE_FULL, "the device's command queue is full")                    \
  XX(VD_E_IO_ERROR, "the device is in the IO-ERROR state")

const char *vdi_error_name(int code) {
#define XX(name, text)                                                         \
  if (code == (name)) return #name;
  VDI_ERROR_MAP(XX)
#undef XX
  return "?";
}

const char *vdi_strerror(int code) {
#define XX(name, text)                                                         \
  if (code == (name)) return text;
  VDI_ERROR_MAP(XX)
#undef XX
  return "unknown error code";
}

unsigned vdi_version_number(void) {
  return VDI_VERSION_NUMBER;
}
