/*
 * Property values, in the three shapes the store handles them, and the
 * arena they are decoded into. The ordering of values (Cypher's comparison,
 * ORDER BY) is value_order.c's.
 *
 * IN LMDB (node_props / rel_props values): one kind byte, then the payload.
 * Integers are little-endian, i = signed, u = unsigned, f64 = the IEEE-754
 * bit pattern little-endian (NaN payloads and -0.0 survive).
 *   1 SL_BOOL           1 byte, 0 or 1
 *   2 SL_INT            i64
 *   3 SL_DOUBLE         f64
 *   4 SL_STRING         the UTF-8 bytes, to the end of the value
 *   5 SL_BYTES          the bytes, to the end of the value
 *   6 SL_LIST           elem kind(1) count(u32) elements: each as its kind's
 *                       payload below, except strings and bytes, which are
 *                       u32 length + bytes. An empty list of unknown kind has
 *                       elem kind 0.
 *   7 SL_DATE           i64 days since 1970-01-01                       8
 *   8 SL_LOCALTIME      i64 nanosecond of the day                       8
 *   9 SL_TIME           i64 nanosecond of the day (local), i32 offset  12
 *  10 SL_LOCALDATETIME  i64 seconds since 1970-01-01T00:00 (wall
 *                       clock), u32 nanos                              12
 *  11 SL_DATETIME       i64 seconds since the epoch UTC, u32 nanos, i32
 *                       offset, u8 zone length (0: a fixed offset),
 *                       the zone's bytes                         17 + zone
 *  12 SL_DURATION       i64 months, i64 days, i64 seconds, i32 nanos   28
 *  13 SL_POINT          u32 srid, f64 x, f64 y, and f64 z for the two 3D
 *                       SRIDs                                     20 or 28
 * Kinds 7..13 have the same layout in a list and alone. A decoded value is
 * checked as a new one is (sl__value_check): bytes that decode to a value
 * the store would refuse are SL_ECORRUPT.
 * The kind numbers are sl_kind's and Shiplog__ValueList__Kind's (they
 * agree), so these bytes are a format: changing them needs a new
 * format_version. Kinds 7..13 came later without one: a store that never
 * held them is what it was, and an older binary reading a newer store that
 * holds them reports the property as a malformed value (SL_ECORRUPT) and
 * refuses to apply a log record carrying one (the record's value has no
 * kind it knows: "malformed value"); it never misreads one.
 *
 * IN THE LOG: Shiplog__Value (proto/transaction.proto). protobuf-c strings
 * are NUL-terminated C strings, so a string value may not contain NUL (the
 * store refuses it rather than log a truncated string). Strings are checked
 * to be UTF-8, which every protobuf reader requires of `string` fields.
 *
 * IN THE API: sl_value (shiplog.h). Decoded values are copied into an arena,
 * strings and zone names NUL-terminated.
 *
 * RANGES (Neo4j's, which a Neo4j user's data already satisfies): years
 * -999,999,999..999,999,999 (proleptic Gregorian), nanos 0..999,999,999,
 * offsets within +-18 h in whole seconds, zone names 1..SL_ZONE_MAX bytes
 * of [A-Za-z0-9/_+-] without an empty path part; durations in Neo4j's
 * normal form (nanos has seconds' sign); points of one of the four SRIDs
 * with finite coordinates (Neo4j refuses NaN and infinities: "Cannot create
 * a point with non-finite coordinate values") and z = +0.0 in 2D. WGS-84
 * coordinates are not range-checked: a backup tool keeps what the source
 * database held.
 *
 * Decoded values live in an arena (sl_arena, base/arena.c); protobuf-c
 * unpacks into one through sl__arena_pb_allocator.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ---- arenas as protobuf-c allocators -------------------------------------- */
static void *pb_alloc(void *data, size_t size) { return sl_arena_alloc(data, size); }
static void pb_free(void *data, void *p) { (void)data; (void)p; }

void sl__arena_pb_allocator(sl_arena *a, ProtobufCAllocator *out) {
  out->alloc = pb_alloc;
  out->free = pb_free;
  out->allocator_data = a;
}

/* ---- names and UTF-8 --------------------------------------------------------- */
static bool utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return false;
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
    i += len;
  }
  return true;
}

int sl__name_check(const char *name) {
  if (!name) return SL_EINVAL;
  size_t n = strnlen(name, SL_NAME_MAX + 1);
  if (n == 0 || n > SL_NAME_MAX || !utf8_valid((const uint8_t *)name, n)) return SL_EINVAL;
  return (int)n;
}

/* ---- checks ------------------------------------------------------------------ */
#define NANOS_PER_SECOND 1000000000
#define DAY_SECONDS 86400
#define DAY_NANOS ((int64_t)DAY_SECONDS * NANOS_PER_SECOND)
/* Days since 1970-01-01 of -999999999-01-01 and 999999999-12-31. */
#define DAY_MIN INT64_C(-365243219163)
#define DAY_MAX INT64_C(365241780471)
#define LOCAL_SECONDS_MIN (DAY_MIN * DAY_SECONDS)
#define LOCAL_SECONDS_MAX (DAY_MAX * DAY_SECONDS + DAY_SECONDS - 1)

static bool elem_kind_ok(sl_kind k) {
  return (k >= SL_BOOL && k <= SL_BYTES) || (k >= SL_DATE && k <= SL_POINT);
}

static bool is_temporal(sl_kind k) { return k >= SL_DATE && k <= SL_DATETIME; }
static bool srid_3d(uint32_t srid) { return srid == SL_SRID_CARTESIAN_3D || srid == SL_SRID_WGS84_3D; }

static bool zone_valid(const char *z, size_t *len) {
  size_t n = strnlen(z, SL_ZONE_MAX + 1);
  if (n == 0 || n > SL_ZONE_MAX || z[0] == '/' || z[n - 1] == '/') return false;
  for (size_t i = 0; i < n; i++) {
    char c = z[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
              c == '_' || c == '+' || c == '-';
    if (!ok || (c == '/' && z[i + 1] == '/')) return false;
  }
  *len = n;
  return true;
}

/* Why a temporal value is out of range, or NULL. */
static const char *temporal_invalid(const sl_value *v) {
  int64_t s = v->u.t.seconds;
  int32_t off = v->u.t.offset;
  size_t zl;
  if (v->u.t.nanos < 0 || v->u.t.nanos >= NANOS_PER_SECOND) return "nanoseconds outside 0..999999999";
  if (v->kind != SL_TIME && v->kind != SL_DATETIME && off) return "an offset on a kind that has none";
  if (v->kind != SL_DATETIME && v->u.t.zone) return "a time zone on a kind that has none";
  if (off < -SL_OFFSET_MAX || off > SL_OFFSET_MAX) return "offset outside -18:00..+18:00";
  switch (v->kind) {
  case SL_DATE:
    if (v->u.t.nanos) return "a date with nanoseconds";
    return s < DAY_MIN || s > DAY_MAX ? "year outside -999999999..999999999" : NULL;
  case SL_LOCALTIME:
  case SL_TIME:
    return s < 0 || s >= DAY_SECONDS ? "second of the day outside 0..86399" : NULL;
  case SL_LOCALDATETIME:
    return s < LOCAL_SECONDS_MIN || s > LOCAL_SECONDS_MAX ? "year outside -999999999..999999999" : NULL;
  default: /* SL_DATETIME: its local date and time must be a LocalDateTime */
    if (s < LOCAL_SECONDS_MIN - SL_OFFSET_MAX || s > LOCAL_SECONDS_MAX + SL_OFFSET_MAX ||
        s + off < LOCAL_SECONDS_MIN || s + off > LOCAL_SECONDS_MAX)
      return "year outside -999999999..999999999";
    if (v->u.t.zone && !zone_valid(v->u.t.zone, &zl))
      return "time zone name not 1..63 bytes of A-Za-z0-9/_+- (an IANA name)";
    return NULL;
  }
}

static const char *duration_invalid(const sl_value *v) {
  int64_t s = v->u.dur.seconds;
  int32_t n = v->u.dur.nanos;
  if (n <= -NANOS_PER_SECOND || n >= NANOS_PER_SECOND) return "duration nanoseconds outside -999999999..999999999";
  if ((s > 0 && n < 0) || (s < 0 && n > 0)) return "duration nanoseconds of another sign than its seconds";
  return NULL;
}

static const char *point_invalid(const sl_value *v) {
  uint32_t srid = v->u.pt.srid;
  if (srid != SL_SRID_CARTESIAN && srid != SL_SRID_CARTESIAN_3D && srid != SL_SRID_WGS84 && srid != SL_SRID_WGS84_3D)
    return "point SRID not 7203, 9157, 4326 or 4979";
  if (!isfinite(v->u.pt.x) || !isfinite(v->u.pt.y) || !isfinite(v->u.pt.z))
    return "point coordinate not finite (NaN or infinity)";
  uint64_t zbits;
  memcpy(&zbits, &v->u.pt.z, 8);
  if (!srid_3d(srid) && zbits) return "2D point with a z coordinate";
  return NULL;
}

/* Why one non-list value is not storable, or NULL. */
static const char *scalar_invalid(const sl_value *v) {
  switch (v->kind) {
  case SL_BOOL:
  case SL_INT:
  case SL_DOUBLE:
    return NULL;
  case SL_STRING:
    if (v->len && !v->u.s) return "string without its bytes";
    if (v->len > UINT32_MAX) return "string over 4 GiB";
    if (v->len && memchr(v->u.s, 0, v->len)) return "string holding a NUL byte";
    return utf8_valid((const uint8_t *)v->u.s, v->len) ? NULL : "string not UTF-8";
  case SL_BYTES:
    if (v->len && !v->u.bytes) return "bytes without their data";
    return v->len > UINT32_MAX ? "bytes over 4 GiB" : NULL;
  case SL_DURATION:
    return duration_invalid(v);
  case SL_POINT:
    return point_invalid(v);
  default:
    if (is_temporal(v->kind)) return temporal_invalid(v);
    return v->kind == SL_NULL ? "null" : "unknown kind";
  }
}

int sl__value_check(const sl_value *v, char *why, size_t whylen) {
  const char *r = NULL;
  size_t bad = SIZE_MAX; /* the element at fault, if one is */
  if (v->kind != SL_LIST) r = scalar_invalid(v);
  else if (v->elem_kind == SL_NULL) r = v->len ? "list of unknown element kind with elements" : NULL;
  else if (!elem_kind_ok(v->elem_kind)) r = "list of an element kind that cannot be stored";
  else if (v->len > UINT32_MAX) r = "list of over 2^32 elements";
  else if (v->len && !v->u.items) r = "list without its elements";
  for (size_t i = 0; !r && v->kind == SL_LIST && i < v->len; i++) {
    bad = i;
    r = v->u.items[i].kind != v->elem_kind ? "list elements of more than one kind" : scalar_invalid(&v->u.items[i]);
  }
  if (!r) return 0;
  if (why && whylen) {
    if (bad != SIZE_MAX) snprintf(why, whylen, "list element %zu: %s", bad, r);
    else snprintf(why, whylen, "%s", r);
  }
  return SL_EINVAL;
}

/* ---- equality ----------------------------------------------------------------- */
static bool bits_equal(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static bool scalar_equal(const sl_value *a, const sl_value *b) {
  switch (a->kind) {
  case SL_BOOL: return a->u.b == b->u.b;
  case SL_INT: return a->u.i == b->u.i;
  case SL_DOUBLE: return bits_equal(a->u.d, b->u.d);
  case SL_STRING: return a->len == b->len && (!a->len || memcmp(a->u.s, b->u.s, a->len) == 0);
  case SL_BYTES: return a->len == b->len && (!a->len || memcmp(a->u.bytes, b->u.bytes, a->len) == 0);
  case SL_DURATION:
    return a->u.dur.months == b->u.dur.months && a->u.dur.days == b->u.dur.days &&
           a->u.dur.seconds == b->u.dur.seconds && a->u.dur.nanos == b->u.dur.nanos;
  case SL_POINT:
    return a->u.pt.srid == b->u.pt.srid && bits_equal(a->u.pt.x, b->u.pt.x) && bits_equal(a->u.pt.y, b->u.pt.y) &&
           bits_equal(a->u.pt.z, b->u.pt.z);
  default:
    if (!is_temporal(a->kind)) return true; /* SL_NULL */
    if (a->u.t.seconds != b->u.t.seconds || a->u.t.nanos != b->u.t.nanos || a->u.t.offset != b->u.t.offset)
      return false;
    if (!a->u.t.zone || !b->u.t.zone) return a->u.t.zone == b->u.t.zone;
    return strcmp(a->u.t.zone, b->u.t.zone) == 0;
  }
}

bool sl_value_equal(const sl_value *a, const sl_value *b) {
  if (a->kind != b->kind) return false;
  if (a->kind != SL_LIST) return scalar_equal(a, b);
  if (a->elem_kind != b->elem_kind || a->len != b->len) return false;
  for (size_t i = 0; i < a->len; i++) {
    if (a->u.items[i].kind != b->u.items[i].kind || !scalar_equal(&a->u.items[i], &b->u.items[i]))
      return false;
  }
  return true;
}

/* ---- LMDB encoding ------------------------------------------------------------- */
/* The fixed payload size of kind, or 0 for the variable ones (strings,
 * bytes, DateTime, Point) and unknown kinds. */
static size_t fixed_size(sl_kind kind) {
  switch (kind) {
  case SL_BOOL: return 1;
  case SL_INT:
  case SL_DOUBLE:
  case SL_DATE:
  case SL_LOCALTIME: return 8;
  case SL_TIME:
  case SL_LOCALDATETIME: return 12;
  case SL_DURATION: return 28;
  default: return 0;
  }
}

static size_t scalar_size(const sl_value *v, bool in_list) {
  size_t n = fixed_size(v->kind);
  if (n) return n;
  switch (v->kind) {
  case SL_DATETIME: return 17 + (v->u.t.zone ? strlen(v->u.t.zone) : 0);
  case SL_POINT: return srid_3d(v->u.pt.srid) ? 28 : 20;
  default: return (in_list ? 4 : 0) + v->len; /* SL_STRING, SL_BYTES */
  }
}

size_t sl__value_encoded_size(const sl_value *v) {
  if (v->kind != SL_LIST) return 1 + scalar_size(v, false);
  size_t n = 1 + 1 + 4;
  for (size_t i = 0; i < v->len; i++) n += scalar_size(&v->u.items[i], true);
  return n;
}

static uint8_t *put64(uint8_t *p, uint64_t v) {
  sl_put_le64(p, v);
  return p + 8;
}
static uint8_t *put32(uint8_t *p, uint32_t v) {
  sl_put_le32(p, v);
  return p + 4;
}
static uint8_t *put_double(uint8_t *p, double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  return put64(p, bits);
}

/* Kinds 7..13, apart so that the common kinds' path stays short. */
__attribute__((noinline)) static uint8_t *temporal_spatial_encode(const sl_value *v, uint8_t *p) {
  size_t zl;
  switch (v->kind) {
  case SL_DATE: return put64(p, (uint64_t)v->u.t.seconds);
  case SL_LOCALTIME:
  case SL_TIME: /* the second of the day is checked: no overflow */
    p = put64(p, (uint64_t)(v->u.t.seconds * NANOS_PER_SECOND + v->u.t.nanos));
    return v->kind == SL_TIME ? put32(p, (uint32_t)v->u.t.offset) : p;
  case SL_LOCALDATETIME: return put32(put64(p, (uint64_t)v->u.t.seconds), (uint32_t)v->u.t.nanos);
  case SL_DATETIME:
    p = put32(put32(put64(p, (uint64_t)v->u.t.seconds), (uint32_t)v->u.t.nanos), (uint32_t)v->u.t.offset);
    zl = v->u.t.zone ? strlen(v->u.t.zone) : 0;
    *p++ = (uint8_t)zl;
    if (zl) memcpy(p, v->u.t.zone, zl);
    return p + zl;
  case SL_DURATION:
    p = put64(put64(put64(p, (uint64_t)v->u.dur.months), (uint64_t)v->u.dur.days), (uint64_t)v->u.dur.seconds);
    return put32(p, (uint32_t)v->u.dur.nanos);
  default: /* SL_POINT */
    p = put_double(put_double(put32(p, v->u.pt.srid), v->u.pt.x), v->u.pt.y);
    return srid_3d(v->u.pt.srid) ? put_double(p, v->u.pt.z) : p;
  }
}

static uint8_t *scalar_encode(const sl_value *v, uint8_t *p, bool in_list) {
  switch (v->kind) {
  case SL_BOOL:
    *p++ = v->u.b ? 1 : 0;
    return p;
  case SL_INT: return put64(p, (uint64_t)v->u.i);
  case SL_DOUBLE: return put_double(p, v->u.d);
  case SL_STRING:
  case SL_BYTES: /* both are bytes here */
    if (in_list) p = put32(p, (uint32_t)v->len);
    if (v->len) memcpy(p, v->u.bytes, v->len);
    return p + v->len;
  default:
    return temporal_spatial_encode(v, p);
  }
}

void sl__value_encode(const sl_value *v, uint8_t *out) {
  *out++ = (uint8_t)v->kind;
  if (v->kind != SL_LIST) {
    scalar_encode(v, out, false);
    return;
  }
  *out++ = (uint8_t)v->elem_kind;
  out = put32(out, (uint32_t)v->len);
  for (size_t i = 0; i < v->len; i++) out = scalar_encode(&v->u.items[i], out, true);
}

static double get_double(const uint8_t *p) {
  uint64_t bits = sl_get_le64(p);
  double d;
  memcpy(&d, &bits, 8);
  return d;
}

/* Decode one non-list value of `kind` from p[0..n); *used gets its size. */
static int scalar_decode(sl_kind kind, const uint8_t *p, size_t n, bool in_list, sl_arena *a,
                         sl_value *out, size_t *used) {
  size_t len = fixed_size(kind);
  int64_t nano_of_day;
  memset(out, 0, sizeof *out);
  out->kind = kind;
  if (len && n < len) return SL_ECORRUPT;
  *used = len;
  switch (kind) {
  case SL_BOOL:
    if (p[0] > 1) return SL_ECORRUPT;
    out->u.b = p[0] == 1;
    return 0;
  case SL_INT:
    out->u.i = (int64_t)sl_get_le64(p);
    return 0;
  case SL_DOUBLE:
    out->u.d = get_double(p);
    return 0;
  case SL_DATE:
    out->u.t.seconds = (int64_t)sl_get_le64(p);
    break;
  case SL_LOCALTIME:
  case SL_TIME:
    nano_of_day = (int64_t)sl_get_le64(p);
    if (nano_of_day < 0 || nano_of_day >= DAY_NANOS) return SL_ECORRUPT;
    out->u.t.seconds = nano_of_day / NANOS_PER_SECOND;
    out->u.t.nanos = (int32_t)(nano_of_day % NANOS_PER_SECOND);
    if (kind == SL_TIME) out->u.t.offset = (int32_t)sl_get_le32(p + 8);
    break;
  case SL_LOCALDATETIME:
    out->u.t.seconds = (int64_t)sl_get_le64(p);
    out->u.t.nanos = (int32_t)sl_get_le32(p + 8);
    break;
  case SL_DATETIME:
    if (n < 17 || n - 17 < p[16]) return SL_ECORRUPT;
    out->u.t.seconds = (int64_t)sl_get_le64(p);
    out->u.t.nanos = (int32_t)sl_get_le32(p + 8);
    out->u.t.offset = (int32_t)sl_get_le32(p + 12);
    *used = 17 + (size_t)p[16];
    if (p[16] && !(out->u.t.zone = sl_arena_strndup(a, p + 17, p[16]))) return -ENOMEM;
    if (p[16] && strlen(out->u.t.zone) != p[16]) return SL_ECORRUPT; /* a NUL inside */
    break;
  case SL_DURATION:
    out->u.dur.months = (int64_t)sl_get_le64(p);
    out->u.dur.days = (int64_t)sl_get_le64(p + 8);
    out->u.dur.seconds = (int64_t)sl_get_le64(p + 16);
    out->u.dur.nanos = (int32_t)sl_get_le32(p + 24);
    break;
  case SL_POINT:
    if (n < 4) return SL_ECORRUPT;
    out->u.pt.srid = sl_get_le32(p);
    *used = srid_3d(out->u.pt.srid) ? 28 : 20;
    if (n < *used) return SL_ECORRUPT;
    out->u.pt.x = get_double(p + 4);
    out->u.pt.y = get_double(p + 12);
    if (*used == 28) out->u.pt.z = get_double(p + 20);
    break;
  case SL_STRING:
  case SL_BYTES:
    if (in_list) {
      if (n < 4 || n - 4 < sl_get_le32(p)) return SL_ECORRUPT;
      len = sl_get_le32(p);
      p += 4;
      *used = 4 + len;
    } else {
      len = n;
      *used = n;
    }
    out->len = len;
    out->u.s = sl_arena_strndup(a, p, len);
    return out->u.s ? 0 : -ENOMEM;
  default:
    return SL_ECORRUPT;
  }
  return scalar_invalid(out) ? SL_ECORRUPT : 0;
}

int sl__value_decode(const uint8_t *p, size_t n, sl_arena *a, sl_value *out) {
  size_t used;
  if (n < 1) return SL_ECORRUPT;
  sl_kind kind = p[0];
  p++, n--;
  if (kind != SL_LIST) {
    int rc = scalar_decode(kind, p, n, false, a, out, &used);
    return rc == 0 && used != n ? SL_ECORRUPT : rc;
  }
  if (n < 5) return SL_ECORRUPT;
  sl_kind elem = p[0];
  uint32_t count = sl_get_le32(p + 1);
  p += 5, n -= 5;
  if ((elem == SL_NULL && count) || (elem != SL_NULL && !elem_kind_ok(elem)) || count > n)
    return SL_ECORRUPT; /* every element takes at least one byte */
  sl_value *items = NULL;
  if (count && !(items = sl_arena_alloc(a, count * sizeof *items))) return -ENOMEM;
  for (uint32_t i = 0; i < count; i++) {
    int rc = scalar_decode(elem, p, n, true, a, &items[i], &used);
    if (rc) return rc;
    p += used, n -= used;
  }
  if (n) return SL_ECORRUPT;
  memset(out, 0, sizeof *out);
  out->kind = SL_LIST;
  out->elem_kind = elem;
  out->len = count;
  out->u.items = items;
  return 0;
}

/* ---- protobuf ------------------------------------------------------------------- */
static Shiplog__Temporal *temporal_to_pb(sl_arena *a, const sl_value *v) {
  Shiplog__Temporal *t = sl_arena_alloc(a, sizeof *t);
  if (!t) return NULL;
  shiplog__temporal__init(t);
  t->has_seconds = v->u.t.seconds != 0;
  t->seconds = v->u.t.seconds;
  t->has_nanos = v->u.t.nanos != 0;
  t->nanos = (uint32_t)v->u.t.nanos;
  t->has_offset = v->u.t.offset != 0;
  t->offset = v->u.t.offset;
  if (v->u.t.zone && !(t->zone = sl_arena_strndup(a, v->u.t.zone, strlen(v->u.t.zone)))) return NULL;
  return t;
}

static Shiplog__Duration *duration_to_pb(sl_arena *a, const sl_value *v) {
  Shiplog__Duration *d = sl_arena_alloc(a, sizeof *d);
  if (!d) return NULL;
  shiplog__duration__init(d);
  d->has_months = v->u.dur.months != 0;
  d->months = v->u.dur.months;
  d->has_days = v->u.dur.days != 0;
  d->days = v->u.dur.days;
  d->has_seconds = v->u.dur.seconds != 0;
  d->seconds = v->u.dur.seconds;
  d->has_nanos = v->u.dur.nanos != 0;
  d->nanos = v->u.dur.nanos;
  return d;
}

static Shiplog__Point *point_to_pb(sl_arena *a, const sl_value *v) {
  Shiplog__Point *p = sl_arena_alloc(a, sizeof *p);
  if (!p) return NULL;
  shiplog__point__init(p);
  p->srid = v->u.pt.srid;
  p->x = v->u.pt.x;
  p->y = v->u.pt.y;
  p->has_z = srid_3d(v->u.pt.srid);
  p->z = v->u.pt.z;
  return p;
}

/* The list's elements into the ValueList array of their kind. */
static int list_to_pb(sl_arena *a, const sl_value *v, Shiplog__ValueList *l) {
  size_t n = v->len;
  const sl_value *it = v->u.items;
  if (!n) return 0;
  switch (v->elem_kind) {
  case SL_BOOL:
    if (!(l->bools = sl_arena_alloc(a, n * sizeof *l->bools))) return -ENOMEM;
    for (size_t i = 0; i < n; i++) l->bools[i] = it[i].u.b;
    l->n_bools = n;
    return 0;
  case SL_INT:
    if (!(l->ints = sl_arena_alloc(a, n * sizeof *l->ints))) return -ENOMEM;
    for (size_t i = 0; i < n; i++) l->ints[i] = it[i].u.i;
    l->n_ints = n;
    return 0;
  case SL_DOUBLE:
    if (!(l->doubles = sl_arena_alloc(a, n * sizeof *l->doubles))) return -ENOMEM;
    for (size_t i = 0; i < n; i++) l->doubles[i] = it[i].u.d;
    l->n_doubles = n;
    return 0;
  case SL_STRING:
    if (!(l->strings = sl_arena_alloc(a, n * sizeof *l->strings))) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      if (!(l->strings[i] = sl_arena_strndup(a, it[i].u.s, it[i].len))) return -ENOMEM;
    l->n_strings = n;
    return 0;
  case SL_BYTES:
    if (!(l->bytes_list = sl_arena_alloc(a, n * sizeof *l->bytes_list))) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
      l->bytes_list[i].len = it[i].len;
      if (!(l->bytes_list[i].data = (uint8_t *)sl_arena_strndup(a, it[i].u.bytes, it[i].len))) return -ENOMEM;
    }
    l->n_bytes_list = n;
    return 0;
  case SL_DURATION:
    if (!(l->durations = sl_arena_alloc(a, n * sizeof *l->durations))) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      if (!(l->durations[i] = duration_to_pb(a, &it[i]))) return -ENOMEM;
    l->n_durations = n;
    return 0;
  case SL_POINT:
    if (!(l->points = sl_arena_alloc(a, n * sizeof *l->points))) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      if (!(l->points[i] = point_to_pb(a, &it[i]))) return -ENOMEM;
    l->n_points = n;
    return 0;
  default:
    if (!is_temporal(v->elem_kind)) return SL_EINVAL;
    if (!(l->temporals = sl_arena_alloc(a, n * sizeof *l->temporals))) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      if (!(l->temporals[i] = temporal_to_pb(a, &it[i]))) return -ENOMEM;
    l->n_temporals = n;
    return 0;
  }
}

int sl__value_to_pb(sl_arena *a, const sl_value *v, Shiplog__Value **out) {
  Shiplog__Value *pb = sl_arena_alloc(a, sizeof *pb);
  int rc;
  if (!pb) return -ENOMEM;
  shiplog__value__init(pb);
  switch (v->kind) {
  case SL_BOOL:
    pb->kind_case = SHIPLOG__VALUE__KIND_BOOL_VALUE;
    pb->bool_value = v->u.b;
    break;
  case SL_INT:
    pb->kind_case = SHIPLOG__VALUE__KIND_INT_VALUE;
    pb->int_value = v->u.i;
    break;
  case SL_DOUBLE:
    pb->kind_case = SHIPLOG__VALUE__KIND_DOUBLE_VALUE;
    pb->double_value = v->u.d;
    break;
  case SL_STRING:
    pb->kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
    if (!(pb->string_value = sl_arena_strndup(a, v->u.s, v->len))) return -ENOMEM;
    break;
  case SL_BYTES:
    pb->kind_case = SHIPLOG__VALUE__KIND_BYTES_VALUE;
    pb->bytes_value.len = v->len;
    if (!(pb->bytes_value.data = (uint8_t *)sl_arena_strndup(a, v->u.bytes, v->len))) return -ENOMEM;
    break;
  case SL_LIST: {
    Shiplog__ValueList *l = sl_arena_alloc(a, sizeof *l);
    if (!l) return -ENOMEM;
    shiplog__value_list__init(l);
    pb->kind_case = SHIPLOG__VALUE__KIND_LIST_VALUE;
    pb->list_value = l;
    if (v->elem_kind != SL_NULL) {
      l->has_kind = 1;
      l->kind = (Shiplog__ValueList__Kind)v->elem_kind;
    }
    if ((rc = list_to_pb(a, v, l))) return rc;
    break;
  }
  case SL_DURATION:
    pb->kind_case = SHIPLOG__VALUE__KIND_DURATION_VALUE;
    if (!(pb->duration_value = duration_to_pb(a, v))) return -ENOMEM;
    break;
  case SL_POINT:
    pb->kind_case = SHIPLOG__VALUE__KIND_POINT_VALUE;
    if (!(pb->point_value = point_to_pb(a, v))) return -ENOMEM;
    break;
  default: {
    Shiplog__Temporal *t;
    if (!is_temporal(v->kind)) return SL_EINVAL;
    if (!(t = temporal_to_pb(a, v))) return -ENOMEM;
    /* The oneof's fields 7..11 are sl_kind's numbers. */
    pb->kind_case = (Shiplog__Value__KindCase)v->kind;
    switch (v->kind) {
    case SL_DATE: pb->date_value = t; break;
    case SL_LOCALTIME: pb->localtime_value = t; break;
    case SL_TIME: pb->time_value = t; break;
    case SL_LOCALDATETIME: pb->localdatetime_value = t; break;
    default: pb->datetime_value = t; break;
    }
    break;
  }
  }
  *out = pb;
  return 0;
}

static void temporal_from_pb(sl_kind kind, const Shiplog__Temporal *t, sl_value *out) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  out->u.t.seconds = t->seconds;
  out->u.t.nanos = (int32_t)t->nanos;
  out->u.t.offset = t->offset;
  out->u.t.zone = t->zone;
}

static void duration_from_pb(const Shiplog__Duration *d, sl_value *out) {
  memset(out, 0, sizeof *out);
  out->kind = SL_DURATION;
  out->u.dur.months = d->months;
  out->u.dur.days = d->days;
  out->u.dur.seconds = d->seconds;
  out->u.dur.nanos = d->nanos;
}

/* SL_EINVAL when z's presence does not match the SRID's dimensions. */
static int point_from_pb(const Shiplog__Point *p, sl_value *out) {
  memset(out, 0, sizeof *out);
  out->kind = SL_POINT;
  out->u.pt.srid = p->srid;
  out->u.pt.x = p->x;
  out->u.pt.y = p->y;
  out->u.pt.z = p->has_z ? p->z : 0.0;
  return (bool)p->has_z == srid_3d(p->srid) ? 0 : SL_EINVAL;
}

static int list_from_pb(sl_arena *a, const Shiplog__ValueList *l, sl_value *out) {
  sl_kind elem = l->has_kind ? (sl_kind)l->kind : SL_NULL;
  if (elem != SL_NULL && !elem_kind_ok(elem)) return SL_EINVAL;
  /* Elements only in the array of the declared kind. */
  size_t counts[SL_POINT + 1] = {0, l->n_bools, l->n_ints, l->n_doubles, l->n_strings, l->n_bytes_list};
  counts[SL_DURATION] = l->n_durations;
  counts[SL_POINT] = l->n_points;
  size_t n = l->n_temporals;
  if (n && !is_temporal(elem)) return SL_EINVAL;
  for (sl_kind k = SL_BOOL; k <= SL_POINT; k++)
    if (k != elem && counts[k]) return SL_EINVAL;
  if (!is_temporal(elem)) n = counts[elem];
  sl_value *items = NULL;
  if (n && !(items = sl_arena_alloc(a, n * sizeof *items))) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    sl_value *it = &items[i];
    memset(it, 0, sizeof *it);
    it->kind = elem;
    switch (elem) {
    case SL_BOOL: it->u.b = l->bools[i]; break;
    case SL_INT: it->u.i = l->ints[i]; break;
    case SL_DOUBLE: it->u.d = l->doubles[i]; break;
    case SL_STRING:
      it->u.s = l->strings[i];
      it->len = strlen(l->strings[i]);
      break;
    case SL_BYTES:
      it->u.bytes = l->bytes_list[i].data;
      it->len = l->bytes_list[i].len;
      break;
    case SL_DURATION: duration_from_pb(l->durations[i], it); break;
    case SL_POINT:
      if (point_from_pb(l->points[i], it)) return SL_EINVAL;
      break;
    default: temporal_from_pb(elem, l->temporals[i], it); break;
    }
  }
  memset(out, 0, sizeof *out);
  out->kind = SL_LIST;
  out->elem_kind = elem;
  out->len = n;
  out->u.items = items;
  return 0;
}

int sl__value_from_pb(sl_arena *a, const Shiplog__Value *pb, sl_value *out) {
  memset(out, 0, sizeof *out);
  if (!pb) return SL_EINVAL;
  switch (pb->kind_case) {
  case SHIPLOG__VALUE__KIND_BOOL_VALUE:
    out->kind = SL_BOOL;
    out->u.b = pb->bool_value;
    return 0;
  case SHIPLOG__VALUE__KIND_INT_VALUE:
    out->kind = SL_INT;
    out->u.i = pb->int_value;
    return 0;
  case SHIPLOG__VALUE__KIND_DOUBLE_VALUE:
    out->kind = SL_DOUBLE;
    out->u.d = pb->double_value;
    return 0;
  case SHIPLOG__VALUE__KIND_STRING_VALUE:
    out->kind = SL_STRING;
    out->u.s = pb->string_value;
    out->len = strlen(pb->string_value);
    return 0;
  case SHIPLOG__VALUE__KIND_BYTES_VALUE:
    out->kind = SL_BYTES;
    out->u.bytes = pb->bytes_value.data;
    out->len = pb->bytes_value.len;
    return 0;
  case SHIPLOG__VALUE__KIND_LIST_VALUE:
    return list_from_pb(a, pb->list_value, out);
  case SHIPLOG__VALUE__KIND_DATE_VALUE:
    temporal_from_pb(SL_DATE, pb->date_value, out);
    return 0;
  case SHIPLOG__VALUE__KIND_LOCALTIME_VALUE:
    temporal_from_pb(SL_LOCALTIME, pb->localtime_value, out);
    return 0;
  case SHIPLOG__VALUE__KIND_TIME_VALUE:
    temporal_from_pb(SL_TIME, pb->time_value, out);
    return 0;
  case SHIPLOG__VALUE__KIND_LOCALDATETIME_VALUE:
    temporal_from_pb(SL_LOCALDATETIME, pb->localdatetime_value, out);
    return 0;
  case SHIPLOG__VALUE__KIND_DATETIME_VALUE:
    temporal_from_pb(SL_DATETIME, pb->datetime_value, out);
    return 0;
  case SHIPLOG__VALUE__KIND_DURATION_VALUE:
    duration_from_pb(pb->duration_value, out);
    return 0;
  case SHIPLOG__VALUE__KIND_POINT_VALUE:
    return point_from_pb(pb->point_value, out);
  default:
    return SL_EINVAL;
  }
}
