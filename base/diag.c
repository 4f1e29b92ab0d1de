/*
 * Diagnostics: one line per message on stderr, "PROG: error: TEXT".
 *
 * Each line is formatted into a stack buffer and handed to the kernel with a
 * single write(), so lines from concurrent threads (group-commit leader,
 * shipper I/O) never interleave, and nothing allocates on the error path.
 * A line longer than the buffer is cut and ends in "...". errno is
 * preserved so that callers may log before they return -errno.
 */
#include "sl_base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static const char *progname = "shiplog";
static bool verbose;

void sl_set_progname(const char *name) { progname = name; }

void sl_log_set_verbose(bool on) { __atomic_store_n(&verbose, on, __ATOMIC_RELAXED); }

static void emit(const char *level, const char *fmt, va_list ap) {
  int saved = errno;
  char line[LINE_MAX_BYTES];
  size_t cap = sizeof line - 1; /* room for the newline */
  int n = snprintf(line, cap, "%s: %s", progname, level);
  size_t len = n < 0 ? 0 : SL_MIN((size_t)n, cap - 1);
  n = vsnprintf(line + len, cap - len, fmt, ap);
  if (n >= 0 && (size_t)n >= cap - len) {
    len = cap - 1;
    line[len - 3] = line[len - 2] = line[len - 1] = '.';
  } else if (n > 0) {
    len += (size_t)n;
  }
  line[len++] = '\n';
  for (size_t off = 0; off < len;) {
    ssize_t w = write(STDERR_FILENO, line + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  errno = saved;
}

void sl_log_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("error: ", fmt, ap);
  va_end(ap);
}

void sl_log_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("warning: ", fmt, ap);
  va_end(ap);
}

void sl_log_info(const char *fmt, ...) {
  if (!__atomic_load_n(&verbose, __ATOMIC_RELAXED)) return;
  va_list ap;
  va_start(ap, fmt);
  emit("", fmt, ap);
  va_end(ap);
}
