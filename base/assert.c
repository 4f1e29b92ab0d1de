/*
 * The failure path of SL_ASSERT (sl_base.h). An invariant that fails means
 * the process's state is already wrong: going on could write a wrong
 * durable mark or ack a transaction that is not on disk, so the only safe
 * move is to stop. The line goes through the diagnostics (one write(), the
 * thread's stream and peer when set) before abort() leaves a core.
 */
#include "sl_base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sl__assert_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_diag_error("%s:%d: invariant `%s` failed: %s", file, line, cond, msg);
  abort();
}
