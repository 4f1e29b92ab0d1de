/*
 * The bytes around Bolt messages: the handshake, chunks, and the shape of
 * each request message.
 *
 * HANDSHAKE (client first, integers big-endian)
 *   0  4  magic 60 60 B0 17
 *   4 16  four proposals, each 4 bytes: 00, RANGE, MINOR, MAJOR: the
 *         versions MAJOR.MINOR down to MAJOR.(MINOR - RANGE); 00000000 is
 *         no proposal. A proposal of major 0xFF is Bolt 5.7's "manifest"
 *         handshake, which we do not speak: it is skipped like any version
 *         we lack.
 *   the server answers 4 bytes 00 00 MINOR MAJOR, or 00 00 00 00 (none
 *   fits) and closes. We take the first proposal, in the client's order,
 *   that covers a version of ours, and in it the highest of ours.
 *
 * CHUNKS: a message is one or more chunks [size 2 BE, 1..65535][bytes],
 *   then 00 00. A 00 00 where a message would start is a NOOP (drivers
 *   send them to keep a connection alive) and is skipped.
 *
 * MESSAGES: one PackStream struct whose tag names the request, with the
 *   fields of sl_bolt_msg_decode's table; anything else is a protocol
 *   error (the session answers FAILURE and closes).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bolt.h"

const uint16_t sl_bolt_versions[] = {SL_BOLT_V(5, 4), SL_BOLT_V(5, 3), SL_BOLT_V(5, 2), SL_BOLT_V(5, 1),
                                     SL_BOLT_V(5, 0), SL_BOLT_V(4, 4)};
const size_t sl_bolt_n_versions = SL_ARRAY_LEN(sl_bolt_versions);

int sl_bolt_handshake(const uint8_t in[SL_BOLT_HANDSHAKE_SIZE], uint16_t max_version, uint16_t *chosen) {
  uint32_t magic = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
  *chosen = 0;
  if (magic != SL_BOLT_MAGIC) return SL_ECORRUPT;
  for (int p = 0; p < 4; p++) {
    const uint8_t *v = in + 4 + 4 * p;
    int range = v[1], minor = v[2], major = v[3];
    if (major == 0 || major == 0xFF) continue;
    for (size_t i = 0; i < sl_bolt_n_versions; i++) {
      uint16_t ours = sl_bolt_versions[i];
      if (max_version && ours > max_version) continue;
      int omaj = ours >> 8, omin = ours & 0xFF;
      if (omaj == major && omin <= minor && omin >= minor - range) {
        *chosen = ours;
        return 0;
      }
    }
  }
  return 0;
}

void sl_bolt_handshake_reply(uint16_t version, uint8_t out[4]) {
  out[0] = 0;
  out[1] = 0;
  out[2] = (uint8_t)(version & 0xFF);
  out[3] = (uint8_t)(version >> 8);
}

int sl_bolt_chunk(sl_buf *out, const uint8_t *body, size_t len) {
  size_t need = out->len + len + 2 * (len / 65535 + 1) + 2;
  if (need > out->cap) {
    size_t cap = out->cap ? out->cap : 1024;
    while (cap < need) cap *= 2;
    int rc = sl_buf_reserve(out, cap);
    if (rc) return rc;
  }
  uint8_t *p = out->data + out->len;
  while (len) {
    size_t n = len > 65535 ? 65535 : len;
    *p++ = (uint8_t)(n >> 8);
    *p++ = (uint8_t)n;
    memcpy(p, body, n);
    p += n;
    body += n;
    len -= n;
  }
  *p++ = 0;
  *p++ = 0;
  out->len = (size_t)(p - out->data);
  return 0;
}

/* Raw bytes a message of max payload may take in chunks: room for the
 * headers of chunks of 1 KiB and more (drivers write 1400 to 65535). */
static size_t raw_limit(size_t max_message) { return max_message + max_message / 256 + 1024; }

int sl_bolt_dechunk_feed(sl_bolt_dechunker *d, const uint8_t *buf, size_t len) {
  if (!len) return 0;
  if (d->in.len + len > d->in.cap) {
    size_t cap = d->in.cap ? d->in.cap : 8192;
    while (cap < d->in.len + len) cap *= 2;
    int rc = sl_buf_reserve(&d->in, cap);
    if (rc) return rc;
  }
  memcpy(d->in.data + d->in.len, buf, len);
  d->in.len += len;
  return 0;
}

/* Walk the message starting at `start`: 1 and *end (one past its end
 * marker) when it is whole, 0 when bytes are missing, SL_ETOOBIG. *size:
 * its payload bytes. */
static int scan_message(const sl_bolt_dechunker *d, size_t start, size_t *end, size_t *size) {
  const uint8_t *p = d->in.data;
  size_t pos = start, payload = 0;
  for (;;) {
    if (d->in.len - pos < 2) break;
    size_t n = (size_t)p[pos] << 8 | p[pos + 1];
    pos += 2;
    if (n == 0) {
      *end = pos;
      *size = payload;
      return 1;
    }
    payload += n;
    if (payload > d->max_message || pos - start > raw_limit(d->max_message)) return SL_ETOOBIG;
    if (d->in.len - pos < n) break;
    pos += n;
  }
  if (d->in.len - start > raw_limit(d->max_message)) return SL_ETOOBIG;
  return 0;
}

static size_t skip_noops(const sl_bolt_dechunker *d, size_t pos) {
  while (d->in.len - pos >= 2 && d->in.data[pos] == 0 && d->in.data[pos + 1] == 0) pos += 2;
  return pos;
}

int sl_bolt_dechunk_next(sl_bolt_dechunker *d, sl_buf *msg, bool *partial) {
  size_t start = skip_noops(d, 0), end, size;
  int rc = scan_message(d, start, &end, &size);
  if (rc <= 0) {
    if (start) { /* drop the NOOPs */
      memmove(d->in.data, d->in.data + start, d->in.len - start);
      d->in.len -= start;
    }
    *partial = d->in.len > 0;
    return rc;
  }
  msg->len = 0;
  if (size > msg->cap && (rc = sl_buf_reserve(msg, size))) return rc;
  const uint8_t *p = d->in.data;
  for (size_t pos = start; pos < end - 2;) {
    size_t n = (size_t)p[pos] << 8 | p[pos + 1];
    memcpy(msg->data + msg->len, p + pos + 2, n);
    msg->len += n;
    pos += 2 + n;
  }
  memmove(d->in.data, d->in.data + end, d->in.len - end);
  d->in.len -= end;
  *partial = skip_noops(d, 0) < d->in.len;
  return 1;
}

size_t sl_bolt_dechunk_count_tag(const sl_bolt_dechunker *d, uint8_t tag) {
  size_t count = 0, pos = skip_noops(d, 0), end, size;
  while (scan_message(d, pos, &end, &size) == 1) {
    /* first chunk: [size][struct marker][tag] */
    size_t n = (size_t)d->in.data[pos] << 8 | d->in.data[pos + 1];
    if (n >= 2 && (d->in.data[pos + 2] & 0xF0) == 0xB0 && d->in.data[pos + 3] == tag) count++;
    pos = skip_noops(d, end);
  }
  return count;
}

void sl_bolt_dechunk_free(sl_bolt_dechunker *d) { sl_buf_free(&d->in); }

/* ---- messages ------------------------------------------------------------------------------ */
const char *sl_bolt_msg_name(uint8_t tag) {
  switch (tag) {
  case SL_BOLT_MSG_HELLO: return "HELLO";
  case SL_BOLT_MSG_GOODBYE: return "GOODBYE";
  case SL_BOLT_MSG_RESET: return "RESET";
  case SL_BOLT_MSG_RUN: return "RUN";
  case SL_BOLT_MSG_BEGIN: return "BEGIN";
  case SL_BOLT_MSG_COMMIT: return "COMMIT";
  case SL_BOLT_MSG_ROLLBACK: return "ROLLBACK";
  case SL_BOLT_MSG_DISCARD: return "DISCARD";
  case SL_BOLT_MSG_PULL: return "PULL";
  case SL_BOLT_MSG_TELEMETRY: return "TELEMETRY";
  case SL_BOLT_MSG_ROUTE: return "ROUTE";
  case SL_BOLT_MSG_LOGON: return "LOGON";
  case SL_BOLT_MSG_LOGOFF: return "LOGOFF";
  case SL_BOLT_MSG_SUCCESS: return "SUCCESS";
  case SL_BOLT_MSG_RECORD: return "RECORD";
  case SL_BOLT_MSG_IGNORED: return "IGNORED";
  case SL_BOLT_MSG_FAILURE: return "FAILURE";
  default: return "UNKNOWN";
  }
}

/* The fields of each request: a string of kinds, 'm' map, 's' string,
 * 'l' list, 'i' integer, 'M' map or null or string (ROUTE's third field:
 * a map since 4.4, a database name or null before). */
static const char *request_shape(uint8_t tag) {
  switch (tag) {
  case SL_BOLT_MSG_HELLO: return "m";
  case SL_BOLT_MSG_LOGON: return "m";
  case SL_BOLT_MSG_LOGOFF: case SL_BOLT_MSG_GOODBYE: case SL_BOLT_MSG_RESET: return "";
  case SL_BOLT_MSG_COMMIT: case SL_BOLT_MSG_ROLLBACK: return "";
  case SL_BOLT_MSG_RUN: return "smm";
  case SL_BOLT_MSG_BEGIN: case SL_BOLT_MSG_PULL: case SL_BOLT_MSG_DISCARD: return "m";
  case SL_BOLT_MSG_ROUTE: return "mlM";
  case SL_BOLT_MSG_TELEMETRY: return "i";
  default: return NULL;
  }
}

int sl_bolt_msg_decode(const uint8_t *body, size_t len, const sl_pack_limits *lim, sl_arena *a, sl_pack *msg,
                       char *why, size_t whylen) {
  size_t used = 0;
  int rc = sl_pack_decode(body, len, lim, a, msg, &used);
  if (rc) {
    snprintf(why, whylen, "%s", rc == SL_ETOOBIG ? "a value exceeds the server's limits"
                                : rc == SL_ETRUNCATED ? "the message ends inside a value"
                                                      : "bytes that are no PackStream value");
    return rc == SL_ETOOBIG ? rc : SL_ECORRUPT;
  }
  if (used != len) {
    snprintf(why, whylen, "%zu bytes after the message's structure", len - used);
    return SL_ECORRUPT;
  }
  if (msg->kind != SL_PACK_STRUCT) {
    snprintf(why, whylen, "a message must be a structure");
    return SL_ECORRUPT;
  }
  const char *shape = request_shape(msg->tag);
  if (!shape) {
    snprintf(why, whylen, "unknown request message 0x%02X", msg->tag);
    return SL_ECORRUPT;
  }
  /* RUN, BEGIN and HELLO of old clients may leave out a trailing map; not
   * the versions we speak */
  if (msg->len != strlen(shape)) {
    snprintf(why, whylen, "%s with %u fields, not %zu", sl_bolt_msg_name(msg->tag), msg->len, strlen(shape));
    return SL_ECORRUPT;
  }
  for (uint32_t i = 0; i < msg->len; i++) {
    sl_pack_kind k = msg->u.items[i].kind;
    bool ok = shape[i] == 'm'   ? k == SL_PACK_MAP
              : shape[i] == 's' ? k == SL_PACK_STRING
              : shape[i] == 'l' ? k == SL_PACK_LIST || k == SL_PACK_NULL
              : shape[i] == 'i' ? k == SL_PACK_INT
                                : k == SL_PACK_MAP || k == SL_PACK_NULL || k == SL_PACK_STRING;
    if (!ok) {
      snprintf(why, whylen, "%s: field %u has the wrong type", sl_bolt_msg_name(msg->tag), i + 1);
      return SL_ECORRUPT;
    }
  }
  return 0;
}
