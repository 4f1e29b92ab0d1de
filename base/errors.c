/*
 * Error codes: one table (SL_ERRNO_MAP in include/shiplog.h) generates the enum, the
 * messages and the symbolic names, so a new code is one line there. Negative
 * errno values are passed through to the C library, which already knows
 * their message and name. Every string returned has static storage, so the
 * functions are safe from any thread.
 */
#include "sl_base.h"

#include <string.h>

const char *sl_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define SL__ERR_MSG(name, value, msg) \
  case name:                          \
    return msg;
    SL_ERRNO_MAP(SL__ERR_MSG)
#undef SL__ERR_MSG
  default:
    break;
  }
  /* strerrordesc_np, unlike strerror, never writes a per-thread buffer. */
  const char *s = code < 0 ? strerrordesc_np(-code) : NULL;
  return s ? s : "unknown error";
}

const char *sl_errname(int code) {
  switch (code) {
  case 0:
    return "OK";
#define SL__ERR_NAME(name, value, msg) \
  case name:                           \
    return #name;
    SL_ERRNO_MAP(SL__ERR_NAME)
#undef SL__ERR_NAME
  default:
    break;
  }
  const char *s = code < 0 ? strerrorname_np(-code) : NULL;
  return s ? s : "UNKNOWN";
}
