/*
 * Diagnostics: one line per message on stderr.
 *
 * FORMATS (sl_diag_set_format, sl_diag_set_timestamps; `--log-format` in the
 * CLI). The default is the short line of a command-line tool:
 *     shiplog: error: TEXT
 * Long-running commands (ship, receive) turn timestamps on, and each line
 * then carries the time (ISO-8601 UTC, µs), the calling thread's context
 * (sl_diag_context: the stream and the peer it serves) and the level, info
 * included:
 *     2026-11-25T14:03:07.250000Z shiplog: stream=main peer=10.0.0.5:41000: error: TEXT
 * JSON (for log shippers) is one object per line, always with the time:
 *     {"time":"...Z","level":"error","program":"shiplog","stream":"main",
 *      "peer":"10.0.0.5:41000","msg":"TEXT"}
 * stream and peer appear only when the thread set them. TEXT is one line
 * whatever it holds, and nothing in it reaches the terminal as a control:
 * in text lines a line break or tab (\n \r \t) becomes a space, and every
 * other control character (C0, DEL, C1) and every byte that is not part of
 * valid UTF-8 becomes \xNN (each byte; a C1 character's two); in JSON
 * control characters are \uXXXX escapes and bytes that are not UTF-8 are
 * U+FFFD. So input quoted in a message (a line of a config file of random
 * bytes, a peer's message) can neither forge a line, drive the terminal
 * nor break a parser, and the reader still sees which bytes it held.
 *
 * SECRETS. Nothing here filters: the rule is that no caller passes key
 * material or credentials to these functions. shiplog takes secrets only
 * from files and the environment (key files, AWS_* variables), never from
 * flags, so option values may be quoted in messages.
 *
 * Each line is formatted into stack buffers and handed to the kernel with
 * a single write(), so lines from concurrent threads (group-commit leader,
 * shipper I/O) never interleave, and nothing allocates on the error path.
 * A text line longer than 4 KiB is cut and ends in "...". errno is
 * preserved so that callers may log before they return -errno.
 */
#include "sl_base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MSG_MAX_BYTES 4096
#define TEXT_MAX_BYTES (MSG_MAX_BYTES - 2) /* a text line and its newline: 4095 bytes */
#define LINE_MAX_BYTES (6 * MSG_MAX_BYTES + 512) /* every byte escaped as \uXXXX */

static const char *progname = "shiplog";
static bool verbose, timestamps;
static sl_diag_format format = SL_DIAG_TEXT;
static __thread char ctx_stream[72], ctx_peer[96];

void sl_set_progname(const char *name) { progname = name; }

void sl_diag_set_verbose(bool on) { __atomic_store_n(&verbose, on, __ATOMIC_RELAXED); }

void sl_diag_set_format(sl_diag_format f) { __atomic_store_n(&format, f, __ATOMIC_RELAXED); }

void sl_diag_set_timestamps(bool on) { __atomic_store_n(&timestamps, on, __ATOMIC_RELAXED); }

void sl_diag_context(const char *stream, const char *peer) {
  snprintf(ctx_stream, sizeof ctx_stream, "%s", stream ? stream : "");
  snprintf(ctx_peer, sizeof ctx_peer, "%s", peer ? peer : "");
}

/* A bounded appender: writes stop at the end of the buffer. */
typedef struct line {
  char *p;
  size_t len, cap;
} line;

static void put(line *l, const char *s, size_t n) {
  n = SL_MIN(n, l->cap - l->len);
  memcpy(l->p + l->len, s, n);
  l->len += n;
}

static void puts_(line *l, const char *s) { put(l, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left) {
  size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
           : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
  if (n == 0 || n > left || (n == 2 && s[0] < 0xc2)) return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
  if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || s[0] > 0xf4 || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
  return n;
}

/* s for a text line (see FORMATS): printable UTF-8 as it is, line breaks
 * and tabs as spaces, other controls and stray bytes as \xNN. */
static void put_text(line *l, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t left = strlen(s);
  while (left > 0) {
    size_t n = utf8_len(u, left);
    bool c1 = n == 2 && u[0] == 0xc2 && u[1] < 0xa0; /* U+0080..U+009F */
    if (*u == '\n' || *u == '\r' || *u == '\t') {
      put(l, " ", 1);
      n = 1;
    } else if (n == 0 || c1 || *u < 0x20 || *u == 0x7f) {
      if (n == 0) n = 1;
      for (size_t i = 0; i < n; i++) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\x%02x", u[i]);
        put(l, esc, 4);
      }
    } else {
      put(l, (const char *)u, n);
    }
    u += n;
    left -= n;
  }
}

/* s as the inside of a JSON string. */
static void put_json(line *l, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t left = strlen(s);
  while (left > 0) {
    char esc[8];
    if (*u == '"' || *u == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*u;
      put(l, esc, 2);
    } else if (*u < 0x20 || *u == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", *u);
      put(l, esc, 6);
    } else {
      size_t n = utf8_len(u, left);
      if (n == 0) {
        puts_(l, "\\ufffd");
        n = 1;
      } else {
        put(l, (const char *)u, n);
      }
      u += n;
      left -= n;
      continue;
    }
    u++;
    left--;
  }
}

static void emit(const char *level, const char *fmt, va_list ap) {
  int saved = errno;
  char msg[MSG_MAX_BYTES], buf[LINE_MAX_BYTES], now[40];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (n >= (int)sizeof msg) memcpy(msg + sizeof msg - 4, "...", 4);
  bool json = __atomic_load_n(&format, __ATOMIC_RELAXED) == SL_DIAG_JSON;
  bool stamped = json || __atomic_load_n(&timestamps, __ATOMIC_RELAXED);
  if (stamped) sl_time_format(sl_now_us(), now, sizeof now);
  line l = {.p = buf, .cap = sizeof buf - 1}; /* room for the newline */
  if (json) {
    puts_(&l, "{\"time\":\"");
    puts_(&l, now);
    puts_(&l, "\",\"level\":\"");
    puts_(&l, level);
    puts_(&l, "\",\"program\":\"");
    put_json(&l, progname);
    if (ctx_stream[0]) {
      puts_(&l, "\",\"stream\":\"");
      put_json(&l, ctx_stream);
    }
    if (ctx_peer[0]) {
      puts_(&l, "\",\"peer\":\"");
      put_json(&l, ctx_peer);
    }
    puts_(&l, "\",\"msg\":\"");
    put_json(&l, msg);
    puts_(&l, "\"}");
  } else {
    if (stamped) {
      puts_(&l, now);
      puts_(&l, " ");
    }
    puts_(&l, progname);
    puts_(&l, ": ");
    if (stamped && ctx_stream[0]) {
      puts_(&l, "stream=");
      puts_(&l, ctx_stream);
      puts_(&l, ctx_peer[0] ? " " : ": ");
    }
    if (stamped && ctx_peer[0]) {
      puts_(&l, "peer=");
      puts_(&l, ctx_peer);
      puts_(&l, ": ");
    }
    /* Plain info lines carry no level, as they always did. */
    if (stamped || strcmp(level, "info") != 0) {
      puts_(&l, level);
      puts_(&l, ": ");
    }
    put_text(&l, msg);
    if (l.len > TEXT_MAX_BYTES || n >= (int)sizeof msg) {
      l.len = SL_MIN(l.len, TEXT_MAX_BYTES);
      memcpy(buf + l.len - 3, "...", 3);
    }
  }
  buf[l.len++] = '\n';
  for (size_t off = 0; off < l.len;) {
    ssize_t w = write(STDERR_FILENO, buf + off, l.len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  errno = saved;
}

void sl_diag_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("error", fmt, ap);
  va_end(ap);
}

void sl_diag_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("warning", fmt, ap);
  va_end(ap);
}

void sl_diag_info(const char *fmt, ...) {
  if (!__atomic_load_n(&verbose, __ATOMIC_RELAXED)) return;
  va_list ap;
  va_start(ap, fmt);
  emit("info", fmt, ap);
  va_end(ap);
}
