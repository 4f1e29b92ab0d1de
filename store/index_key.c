/*
 * Index keys: property values as bytes whose memcmp order is Neo4j's order
 * of the values and whose equality is Cypher's `=` (schema.c keeps them in
 * the `index` database). Every encoded value delimits itself, so values
 * concatenate into composite keys and a prefix of whole values selects
 * exactly the entries that start with those values.
 *
 * ONE VALUE: a tag byte (kinds in Neo4j's orderability order, as
 * sl_value_kind_rank ranks them), then a payload; memcmp order is
 * sl_value_order's and equal keys are the values sl_value_order calls one:
 *   0x10 LIST          each element encoded (tag + payload), then 0x00:
 *                      element by element, a shorter list first; BYTES are
 *                      Neo4j's byte[], a list of integers -128..127, so
 *                      bytes 01 ff and the list [1, -1] are one key
 *   0x18 POINT         srid(4), x y z as ordered doubles(8 each) (-0.0
 *                      before 0.0, as PointValue compares)
 *   0x20 DATETIME      the instant: seconds(8) nanos(4), then offset(4),
 *                      then 0x00 for a fixed offset or 0x01 zone-name 0x00
 *                      (a DateTime at one instant in another zone is
 *                      another value)
 *   0x21 LOCALDATETIME seconds(8) nanos(4)
 *   0x22 DATE          days(8)
 *   0x23 TIME          nanoseconds of the day at UTC (local - offset)(8),
 *                      offset(4)
 *   0x24 LOCALTIME     nanoseconds of the day(8)
 *   0x25 DURATION      average length in seconds (months of 2,629,746 s,
 *                      days of 86,400 s; 16 bytes), nanos(4), months(8),
 *                      days(8), seconds(8), nanos borrowed into 0..1e9-1
 *   0x30 STRING        the UTF-8 bytes (never NUL), then 0x00
 *   0x40 BOOLEAN       0x00 or 0x01
 *   0x50 NUMBER        a class byte, then (ints and doubles alike):
 *                      0x01 below -2^63: the double's ordered bits(8)
 *                      0x02 in int64 range: floor(v)(8), then the fraction
 *                           v - floor(v) in [0, 1) as its double bits(8),
 *                           so 1 and 1.0 are the same 17 bytes and an int
 *                           beyond 2^53 keeps every bit
 *                      0x03 at or above 2^63: the ordered bits(8)
 *                      0x04 NaN (after every number, all NaNs one key)
 * Signed integers are big-endian with the sign bit flipped; an "ordered
 * double" is its bits big-endian, all flipped when negative, else the sign
 * bit set (numbers read -0.0 as 0.0 first).
 *
 * LIMIT: an LMDB key is at most 511 bytes; index id(4), the values and the
 * entity id(8) must fit, so the values get SL__INDEX_VALUES_MAX bytes. A
 * longer encoding keeps its first SL__INDEX_VALUES_MAX - 8 bytes, then a
 * 64-bit hash of the encoding (its first SL__KEYBUF bytes) and 0xFF: one
 * byte longer than any whole encoding, which is how a reader knows it
 * (sl__index_key_truncated). Equal values still meet in one key; seeks and
 * the uniqueness check compare such entries' real values.
 */
#include <math.h>
#include <string.h>

#include "schema_int.h"

static void put_be64(sl__keybuf *b, uint64_t v) {
  if (b->len + 8 <= sizeof b->buf) sl_put_be64(b->buf + b->len, v);
  b->len += 8;
}
static void put_be32(sl__keybuf *b, uint32_t v) {
  if (b->len + 4 <= sizeof b->buf) {
    uint8_t *p = b->buf + b->len;
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
  }
  b->len += 4;
}
static void put_byte(sl__keybuf *b, uint8_t c) {
  if (b->len < sizeof b->buf) b->buf[b->len] = c;
  b->len++;
}
static void put_bytes(sl__keybuf *b, const void *p, size_t n) {
  if (b->len + n <= sizeof b->buf) memcpy(b->buf + b->len, p, n);
  b->len += n;
}
static void put_i64(sl__keybuf *b, int64_t v) { put_be64(b, (uint64_t)v ^ (1ull << 63)); }

static uint64_t ordered_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u >> 63 ? ~u : u | (1ull << 63);
}
static uint64_t ordered_double(double d) { return ordered_bits(d == 0 ? 0.0 : d); /* -0.0 = 0.0 */ }

static void put_number(sl__keybuf *b, bool is_int, int64_t i, double d) {
  put_byte(b, SL__TAG_NUMBER);
  if (is_int) {
    put_byte(b, 0x02);
    put_i64(b, i);
    put_be64(b, 0);
    return;
  }
  if (isnan(d)) {
    put_byte(b, 0x04);
  } else if (d < -9223372036854775808.0) {
    put_byte(b, 0x01);
    put_be64(b, ordered_double(d));
  } else if (d >= 9223372036854775808.0) {
    put_byte(b, 0x03);
    put_be64(b, ordered_double(d));
  } else {
    double f = floor(d), r = (d - f) + 0.0; /* exact; + 0.0 turns -0.0 into 0.0 */
    uint64_t rb;
    memcpy(&rb, &r, 8);
    put_byte(b, 0x02);
    put_i64(b, (int64_t)f);
    put_be64(b, rb);
  }
}

/* A duration's average length, 128 bits big-endian with the sign flipped. */
static void put_duration(sl__keybuf *b, const sl_value *v) {
  __extension__ __int128 secs = v->u.dur.seconds, len;
  int32_t nanos = v->u.dur.nanos;
  if (nanos < 0) secs--, nanos += 1000000000; /* as Neo4j keeps them */
  len = (__int128)v->u.dur.months * 2629746 + (__int128)v->u.dur.days * 86400 + secs;
  __extension__ unsigned __int128 u = (unsigned __int128)len ^ ((unsigned __int128)1 << 127);
  put_be64(b, (uint64_t)(u >> 64));
  put_be64(b, (uint64_t)u);
  put_be32(b, (uint32_t)nanos);
  put_i64(b, v->u.dur.months);
  put_i64(b, v->u.dur.days);
  /* the borrowed seconds: INT64_MIN borrowing one wraps, as rarely as
   * such a duration exists; the length above still orders it */
  put_i64(b, (int64_t)(uint64_t)secs);
}

static void put_scalar(sl__keybuf *b, const sl_value *v);

/* Neo4j's byte[]: a list of its bytes as signed integers. */
static void put_bytes_list(sl__keybuf *b, const sl_value *v) {
  put_byte(b, SL__TAG_LIST);
  for (size_t i = 0; i < v->len; i++) {
    sl_value e = {.kind = SL_INT, .u.i = (int8_t)v->u.bytes[i]};
    put_scalar(b, &e);
  }
  put_byte(b, 0);
}

static void put_scalar(sl__keybuf *b, const sl_value *v) {
  switch (v->kind) {
  case SL_BOOL:
    put_byte(b, SL__TAG_BOOL);
    put_byte(b, v->u.b ? 1 : 0);
    break;
  case SL_INT:
    put_number(b, true, v->u.i, 0);
    break;
  case SL_DOUBLE:
    put_number(b, false, 0, v->u.d);
    break;
  case SL_STRING:
    put_byte(b, SL__TAG_STRING);
    put_bytes(b, v->u.s, v->len);
    put_byte(b, 0);
    break;
  case SL_BYTES:
    put_bytes_list(b, v);
    break;
  case SL_DATETIME:
    put_byte(b, SL__TAG_DATETIME);
    put_i64(b, v->u.t.seconds);
    put_be32(b, (uint32_t)v->u.t.nanos);
    put_be32(b, (uint32_t)v->u.t.offset ^ (1u << 31));
    if (v->u.t.zone) {
      put_byte(b, 1);
      put_bytes(b, v->u.t.zone, strlen(v->u.t.zone));
    }
    put_byte(b, 0);
    break;
  case SL_LOCALDATETIME:
    put_byte(b, SL__TAG_LOCALDATETIME);
    put_i64(b, v->u.t.seconds);
    put_be32(b, (uint32_t)v->u.t.nanos);
    break;
  case SL_DATE:
    put_byte(b, SL__TAG_DATE);
    put_i64(b, v->u.t.seconds);
    break;
  case SL_TIME:
    put_byte(b, SL__TAG_TIME);
    put_i64(b, (v->u.t.seconds - v->u.t.offset) * 1000000000 + v->u.t.nanos);
    put_be32(b, (uint32_t)v->u.t.offset ^ (1u << 31));
    break;
  case SL_LOCALTIME:
    put_byte(b, SL__TAG_LOCALTIME);
    put_i64(b, v->u.t.seconds * 1000000000 + v->u.t.nanos);
    break;
  case SL_DURATION:
    put_byte(b, SL__TAG_DURATION);
    put_duration(b, v);
    break;
  case SL_POINT:
    put_byte(b, SL__TAG_POINT);
    put_be32(b, v->u.pt.srid);
    put_be64(b, ordered_bits(v->u.pt.x));
    put_be64(b, ordered_bits(v->u.pt.y));
    put_be64(b, ordered_bits(v->u.pt.z));
    break;
  case SL_LIST: /* an element that is a list: the store keeps none */
  default:      /* SL_NULL never reaches here (a missing key is no entry) */
    put_byte(b, 0xff);
    break;
  }
}

void sl__index_key_value(sl__keybuf *b, const sl_value *v) {
  if (v->kind != SL_LIST) {
    put_scalar(b, v);
    return;
  }
  put_byte(b, SL__TAG_LIST);
  for (size_t i = 0; i < v->len; i++) put_scalar(b, &v->u.items[i]);
  put_byte(b, 0);
}

void sl__index_key_begin(sl__keybuf *b, uint32_t index_id) {
  b->len = 0;
  put_be32(b, index_id);
}

/* A cheap 64-bit hash of the whole encoding (two CRC32Cs with different
 * seeds): it only has to tell apart long values sharing their first bytes. */
static uint64_t hash64(const uint8_t *p, size_t n) {
  return (uint64_t)sl_crc32c(0, p, n) << 32 | sl_crc32c(0x9e3779b9u, p, n);
}

bool sl__index_key_finish(sl__keybuf *b) {
  if (b->len <= 4 + SL__INDEX_VALUES_MAX) return false;
  uint64_t h = hash64(b->buf + 4, SL_MIN(b->len, sizeof b->buf) - 4);
  b->len = 4 + SL__INDEX_VALUES_MAX - 8;
  put_be64(b, h);
  put_byte(b, 0xff);
  return true;
}

bool sl__index_key_truncated(size_t keylen) { return keylen == 4 + SL__INDEX_VALUES_MAX + 1 + 8; }
