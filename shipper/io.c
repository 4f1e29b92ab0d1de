/*
 * io.c: choosing the shipper's I/O backend (io.h).
 *
 * Order: the caller's explicit choice (--io uring|plain), else the
 * environment ($SHIPLOG_IO=uring|plain, so that tests run both backends as
 * libuv's TEST_FS_IMPL does), else io_uring if it opens and its probe shows
 * every opcode we use, else plain reads. Only the automatic fallback is
 * announced, once per process: a named backend that cannot open is an error
 * the caller reports.
 */
#include "io.h"

#include <stdlib.h>
#include <string.h>

#include "sl_base.h"

int sl__io_open(sl_io_backend want, sl__io **out) {
  *out = NULL;
  if (want == SL_IO_AUTO) {
    const char *env = getenv("SHIPLOG_IO");
    if (env && strcmp(env, "uring") == 0) want = SL_IO_URING;
    else if (env && strcmp(env, "plain") == 0) want = SL_IO_PLAIN;
    else if (env && *env && strcmp(env, "auto") != 0) {
      sl_diag_error("SHIPLOG_IO=%s: expected uring, plain or auto", env);
      return SL_EINVAL;
    }
  }
  if (want == SL_IO_PLAIN) return sl__io_plain_open(out);

  char why[128];
  int rc = sl__io_uring_open(out, why, sizeof why);
  if (rc == 0) return 0;
  if (want == SL_IO_URING) {
    sl_diag_error("io_uring unavailable (%s)", why);
    return rc;
  }
  static int announced;
  if (!__atomic_exchange_n(&announced, 1, __ATOMIC_RELAXED))
    sl_diag_warn("io_uring unavailable (%s); using plain reads", why);
  return sl__io_plain_open(out);
}
