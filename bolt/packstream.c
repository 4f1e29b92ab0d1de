/*
 * PackStream, the value encoding of Bolt, and Bolt's structures as
 * shiplog's values.
 *
 * MARKERS (one byte, then big-endian sizes and values)
 *   C0 null    C2/C3 false/true    C1 float64 (8 bytes)
 *   F0..FF, 00..7F tiny int -16..127; C8 int8, C9 int16, CA int32, CB int64
 *   80..8F tiny string (size in the low nibble); D0/D1/D2 string8/16/32
 *   CC/CD/CE bytes8/16/32
 *   90..9F tiny list; D4/D5/D6 list8/16/32
 *   A0..AF tiny map; D8/D9/DA map8/16/32 (key string, value; ... )
 *   B0..BF struct of 0..15 fields, then a tag byte
 *   every other byte is reserved: SL_ECORRUPT.
 * The encoder picks the smallest form for each size. The decoder checks a
 * declared size against the limits and against the bytes that remain (every
 * value is at least one byte, so a list of n items needs n bytes) before it
 * allocates anything: a hostile size costs nothing.
 *
 * STRUCTURES (Bolt 5.x; fields in order)
 *   Node 'N' id, labels, properties, element_id (5.x)
 *   Relationship 'R' id, start, end, type, properties, element_id,
 *     start_element_id, end_element_id (the last three 5.x)
 *   UnboundRelationship 'r' id, type, properties, element_id (5.x)
 *   Path 'P' nodes, unbound relationships, indices
 *   Date 'D' days since 1970-01-01        LocalTime 't' nanoseconds of the day
 *   Time 'T' nanoseconds (local), offset seconds
 *   DateTime 'I' UTC seconds, nanos, offset; 'i' UTC seconds, nanos, zone
 *     (4.4 without the "utc" patch: 'F' / 'f' with local seconds)
 *   LocalDateTime 'd' seconds, nanos     Duration 'E' months, days, seconds, nanos
 *   Point2D 'X' srid, x, y               Point3D 'Y' srid, x, y, z
 * sl_value's temporal fields are the same numbers (include/shiplog.h), so
 * the mapping is field for field, except the zone DateTimes: a zone name
 * comes without its offset, which a sl_bolt_zone_fn looks up.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bolt.h"

const sl_pack_limits sl_pack_default_limits = {
    .max_depth = 64, .max_items = 1u << 20, .max_string = 16u << 20, .max_total = (size_t)64 << 20};

/* ---- encoding ------------------------------------------------------------------------- */
static int put(sl_buf *out, const void *p, size_t n) {
  if (!n) return 0;
  if (out->len + n > out->cap) {
    size_t cap = out->cap ? out->cap : 256;
    while (cap < out->len + n) cap *= 2;
    int rc = sl_buf_reserve(out, cap);
    if (rc) return rc;
  }
  memcpy(out->data + out->len, p, n);
  out->len += n;
  return 0;
}

static int put_be(sl_buf *out, uint8_t marker, uint64_t v, int bytes) {
  uint8_t b[9];
  b[0] = marker;
  for (int i = 0; i < bytes; i++) b[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
  return put(out, b, 1 + (size_t)bytes);
}

int sl_pack_put_int(sl_buf *out, int64_t i) {
  if (i >= -16 && i <= 127) return put_be(out, (uint8_t)i, 0, 0);
  if (i >= INT8_MIN && i <= INT8_MAX) return put_be(out, 0xC8, (uint64_t)i, 1);
  if (i >= INT16_MIN && i <= INT16_MAX) return put_be(out, 0xC9, (uint64_t)i, 2);
  if (i >= INT32_MIN && i <= INT32_MAX) return put_be(out, 0xCA, (uint64_t)i, 4);
  return put_be(out, 0xCB, (uint64_t)i, 8);
}

/* A size header: tiny form (base | n) for n < 16 when tiny is given, else
 * marker8/16/32. */
static int put_size(sl_buf *out, int tiny, uint8_t m8, uint32_t n) {
  if (tiny >= 0 && n < 16) return put_be(out, (uint8_t)(tiny | (int)n), 0, 0);
  if (n <= UINT8_MAX) return put_be(out, m8, n, 1);
  if (n <= UINT16_MAX) return put_be(out, (uint8_t)(m8 + 1), n, 2);
  return put_be(out, (uint8_t)(m8 + 2), n, 4);
}

int sl_pack_put_header(sl_buf *out, sl_pack_kind kind, uint32_t len, uint8_t tag) {
  switch (kind) {
  case SL_PACK_STRING: return put_size(out, 0x80, 0xD0, len);
  case SL_PACK_BYTES: return put_size(out, -1, 0xCC, len);
  case SL_PACK_LIST: return put_size(out, 0x90, 0xD4, len);
  case SL_PACK_MAP: return put_size(out, 0xA0, 0xD8, len);
  case SL_PACK_STRUCT: {
    if (len > 15) return SL_EINVAL;
    uint8_t b[2] = {(uint8_t)(0xB0 | len), tag};
    return put(out, b, 2);
  }
  default: return SL_EINVAL;
  }
}

int sl_pack_put_string(sl_buf *out, const char *s, size_t len) {
  if (len > UINT32_MAX) return SL_ETOOBIG;
  int rc = sl_pack_put_header(out, SL_PACK_STRING, (uint32_t)len, 0);
  return rc ? rc : put(out, s, len);
}

int sl_pack_encode(sl_buf *out, const sl_pack *v) {
  int rc = 0;
  switch (v->kind) {
  case SL_PACK_NULL: return put_be(out, 0xC0, 0, 0);
  case SL_PACK_BOOL: return put_be(out, v->u.b ? 0xC3 : 0xC2, 0, 0);
  case SL_PACK_INT: return sl_pack_put_int(out, v->u.i);
  case SL_PACK_FLOAT: {
    uint64_t bits;
    memcpy(&bits, &v->u.f, 8);
    return put_be(out, 0xC1, bits, 8);
  }
  case SL_PACK_STRING: return sl_pack_put_string(out, v->u.s, v->len);
  case SL_PACK_BYTES:
    if ((rc = sl_pack_put_header(out, SL_PACK_BYTES, v->len, 0))) return rc;
    return put(out, v->u.bytes, v->len);
  case SL_PACK_LIST:
  case SL_PACK_MAP:
  case SL_PACK_STRUCT: {
    if ((rc = sl_pack_put_header(out, v->kind, v->len, v->tag))) return rc;
    size_t n = v->kind == SL_PACK_MAP ? 2 * (size_t)v->len : v->len;
    for (size_t i = 0; i < n && !rc; i++) rc = sl_pack_encode(out, &v->u.items[i]);
    return rc;
  }
  }
  return SL_EINVAL;
}

/* ---- decoding ------------------------------------------------------------------------- */
typedef struct reader {
  const uint8_t *p, *end;
  const sl_pack_limits *lim;
  sl_arena *a;
} reader;

static int read_be(reader *r, int bytes, uint64_t *v) {
  if (r->end - r->p < bytes) return SL_ETRUNCATED;
  uint64_t x = 0;
  for (int i = 0; i < bytes; i++) x = x << 8 | *r->p++;
  *v = x;
  return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t k = sl_utf8_decode(s + i, n - i, &cp);
    if (!k) return false;
    i += k;
  }
  return true;
}

static void *arena_get(reader *r, size_t size, int *rc) {
  void *p = sl_arena_alloc(r->a, size);
  if (!p) *rc = r->a->limit && r->a->used + size > r->a->limit ? SL_ETOOBIG : -ENOMEM;
  return p;
}

static int decode_value(reader *r, uint32_t depth, sl_pack *out);

/* n items of a container (2n for a map) after its header. */
static int decode_items(reader *r, uint32_t depth, sl_pack *out, uint32_t n) {
  if (depth >= r->lim->max_depth) return SL_ETOOBIG;
  if (n > r->lim->max_items) return SL_ETOOBIG;
  size_t count = out->kind == SL_PACK_MAP ? 2 * (size_t)n : n;
  if (count > (size_t)(r->end - r->p)) return SL_ETRUNCATED; /* every value takes a byte */
  out->len = n;
  out->u.items = NULL;
  if (!count) return 0;
  int rc = 0;
  sl_pack *items = arena_get(r, count * sizeof *items, &rc);
  if (!items) return rc;
  out->u.items = items;
  for (size_t i = 0; i < count; i++) {
    if ((rc = decode_value(r, depth + 1, &items[i]))) return rc;
    if (out->kind == SL_PACK_MAP && i % 2 == 0 && items[i].kind != SL_PACK_STRING) return SL_ECORRUPT;
  }
  return 0;
}

static int decode_blob(reader *r, sl_pack *out, uint64_t n) {
  if (n > r->lim->max_string) return SL_ETOOBIG;
  if (n > (uint64_t)(r->end - r->p)) return SL_ETRUNCATED;
  int rc = 0;
  uint8_t *p = arena_get(r, (size_t)n + 1, &rc);
  if (!p) return rc;
  memcpy(p, r->p, (size_t)n);
  p[n] = 0;
  r->p += n;
  out->len = (uint32_t)n;
  if (out->kind == SL_PACK_STRING) {
    if (!utf8_valid(p, (size_t)n)) return SL_ECORRUPT;
    out->u.s = (const char *)p;
  } else {
    out->u.bytes = p;
  }
  return 0;
}

static int decode_value(reader *r, uint32_t depth, sl_pack *out) {
  if (r->p >= r->end) return SL_ETRUNCATED;
  uint8_t m = *r->p++;
  uint64_t v = 0;
  int rc;
  memset(out, 0, sizeof *out);
  if (m < 0x80 || m >= 0xF0) {
    out->kind = SL_PACK_INT;
    out->u.i = (int8_t)m;
    return 0;
  }
  int hi = m & 0xF0;
  if (hi == 0x80) return out->kind = SL_PACK_STRING, decode_blob(r, out, m & 0x0F);
  if (hi == 0x90) return out->kind = SL_PACK_LIST, decode_items(r, depth, out, m & 0x0F);
  if (hi == 0xA0) return out->kind = SL_PACK_MAP, decode_items(r, depth, out, m & 0x0F);
  if (hi == 0xB0) {
    out->kind = SL_PACK_STRUCT;
    if (r->p >= r->end) return SL_ETRUNCATED;
    out->tag = *r->p++;
    return decode_items(r, depth, out, m & 0x0F);
  }
  static const int widths[4] = {1, 2, 4, 8};
  switch (m) {
  case 0xC0: out->kind = SL_PACK_NULL; return 0;
  case 0xC2: case 0xC3: out->kind = SL_PACK_BOOL; out->u.b = m == 0xC3; return 0;
  case 0xC1:
    if ((rc = read_be(r, 8, &v))) return rc;
    out->kind = SL_PACK_FLOAT;
    memcpy(&out->u.f, &v, 8);
    return 0;
  case 0xC8: case 0xC9: case 0xCA: case 0xCB: {
    int w = widths[m - 0xC8];
    if ((rc = read_be(r, w, &v))) return rc;
    out->kind = SL_PACK_INT;
    /* sign-extend from w bytes */
    out->u.i = w == 8 ? (int64_t)v : (int64_t)(v ^ (1ull << (8 * w - 1))) - (int64_t)(1ull << (8 * w - 1));
    return 0;
  }
  case 0xCC: case 0xCD: case 0xCE:
    if ((rc = read_be(r, widths[m - 0xCC], &v))) return rc;
    out->kind = SL_PACK_BYTES;
    return decode_blob(r, out, v);
  case 0xD0: case 0xD1: case 0xD2:
    if ((rc = read_be(r, widths[m - 0xD0], &v))) return rc;
    out->kind = SL_PACK_STRING;
    return decode_blob(r, out, v);
  case 0xD4: case 0xD5: case 0xD6:
  case 0xD8: case 0xD9: case 0xDA: {
    bool map = m >= 0xD8;
    if ((rc = read_be(r, widths[m - (map ? 0xD8 : 0xD4)], &v))) return rc;
    if (v > r->lim->max_items) return SL_ETOOBIG;
    out->kind = map ? SL_PACK_MAP : SL_PACK_LIST;
    return decode_items(r, depth, out, (uint32_t)v);
  }
  default: return SL_ECORRUPT;
  }
}

int sl_pack_decode(const uint8_t *buf, size_t len, const sl_pack_limits *lim, sl_arena *a, sl_pack *out,
                   size_t *used) {
  sl_pack_limits l = lim ? *lim : sl_pack_default_limits;
  size_t saved_limit = a->limit;
  /* the message's allocations count against max_total on top of what the arena holds */
  if (l.max_total && (!a->limit || a->used + l.max_total < a->limit)) a->limit = a->used + l.max_total;
  reader r = {.p = buf, .end = buf + len, .lim = &l, .a = a};
  int rc = decode_value(&r, 0, out);
  a->limit = saved_limit;
  if (!rc && used) *used = (size_t)(r.p - buf);
  return rc;
}

/* ---- builders ------------------------------------------------------------------------- */
sl_pack sl_pack_null(void) { return (sl_pack){.kind = SL_PACK_NULL}; }
sl_pack sl_pack_bool(bool b) { return (sl_pack){.kind = SL_PACK_BOOL, .u.b = b}; }
sl_pack sl_pack_int(int64_t i) { return (sl_pack){.kind = SL_PACK_INT, .u.i = i}; }
sl_pack sl_pack_float(double f) { return (sl_pack){.kind = SL_PACK_FLOAT, .u.f = f}; }
sl_pack sl_pack_str(const char *s) {
  return (sl_pack){.kind = SL_PACK_STRING, .len = (uint32_t)strlen(s), .u.s = s};
}

static sl_pack *new_container(sl_arena *a, sl_pack *v, sl_pack_kind kind, uint8_t tag, uint32_t n) {
  size_t count = kind == SL_PACK_MAP ? 2 * (size_t)n : n;
  sl_pack *items = count ? sl_arena_alloc(a, count * sizeof *items) : NULL;
  if (count && !items) return NULL;
  for (size_t i = 0; i < count; i++) items[i] = sl_pack_null();
  *v = (sl_pack){.kind = kind, .tag = tag, .len = n, .u.items = items};
  return v;
}
sl_pack *sl_pack_new_list(sl_arena *a, sl_pack *v, uint32_t n) { return new_container(a, v, SL_PACK_LIST, 0, n); }
sl_pack *sl_pack_new_map(sl_arena *a, sl_pack *v, uint32_t n) { return new_container(a, v, SL_PACK_MAP, 0, n); }
sl_pack *sl_pack_new_struct(sl_arena *a, sl_pack *v, uint8_t tag, uint32_t n) {
  return n > 15 ? NULL : new_container(a, v, SL_PACK_STRUCT, tag, n);
}

int sl_pack_map_set(sl_arena *a, sl_pack *map, uint32_t i, const char *key, sl_pack value) {
  if (map->kind != SL_PACK_MAP || i >= map->len) return SL_EINVAL;
  size_t n = strlen(key);
  char *k = sl_arena_strndup(a, key, n);
  if (!k) return -ENOMEM;
  map->u.items[2 * i] = (sl_pack){.kind = SL_PACK_STRING, .len = (uint32_t)n, .u.s = k};
  map->u.items[2 * i + 1] = value;
  return 0;
}

const sl_pack *sl_pack_map_get(const sl_pack *map, const char *key) {
  if (!map || map->kind != SL_PACK_MAP) return NULL;
  size_t n = strlen(key);
  const sl_pack *found = NULL; /* a key given twice: the last wins, as in PackStream */
  for (uint32_t i = 0; i < map->len; i++) {
    const sl_pack *k = &map->u.items[2 * i];
    if (k->len == n && !memcmp(k->u.s, key, n)) found = &map->u.items[2 * i + 1];
  }
  return found;
}

/* ---- zones ----------------------------------------------------------------------------- */
/* base's tzdb (the system's TZif files, cached, thread-safe): the same
 * rules the values module applies to a zone in text, so a zone given as a
 * Bolt parameter means what it means in a query. */
int sl_bolt_zone_offset_tzdb(const char *zone, int64_t seconds, bool seconds_are_local, int32_t *offset) {
  if (!zone || !*zone || strlen(zone) > SL_ZONE_MAX) return SL_EINVAL;
  if (!seconds_are_local) return sl_tz_offset_at(zone, seconds, offset);
  int64_t utc;
  int rc = sl_tz_resolve_local(zone, seconds, NULL, &utc, offset);
  return rc < 0 ? rc : 0;
}

/* ---- sl_value <-> structures ------------------------------------------------------------ */
#define NANOS 1000000000LL

static int set_struct(sl_arena *a, sl_pack *out, uint8_t tag, uint32_t n, const sl_pack *fields) {
  if (!sl_pack_new_struct(a, out, tag, n)) return -ENOMEM;
  memcpy(out->u.items, fields, n * sizeof *fields);
  return 0;
}

int sl_bolt_from_value(sl_arena *a, const sl_value *v, sl_bolt_dialect d, sl_pack *out) {
  switch (v->kind) {
  case SL_NULL: *out = sl_pack_null(); return 0;
  case SL_BOOL: *out = sl_pack_bool(v->u.b); return 0;
  case SL_INT: *out = sl_pack_int(v->u.i); return 0;
  case SL_DOUBLE: *out = sl_pack_float(v->u.d); return 0;
  case SL_STRING:
    if (v->len > UINT32_MAX) return SL_ETOOBIG;
    *out = (sl_pack){.kind = SL_PACK_STRING, .len = (uint32_t)v->len, .u.s = v->u.s};
    return 0;
  case SL_BYTES:
    if (v->len > UINT32_MAX) return SL_ETOOBIG;
    *out = (sl_pack){.kind = SL_PACK_BYTES, .len = (uint32_t)v->len, .u.bytes = v->u.bytes};
    return 0;
  case SL_LIST: {
    if (v->len > UINT32_MAX) return SL_ETOOBIG;
    if (!sl_pack_new_list(a, out, (uint32_t)v->len)) return -ENOMEM;
    for (size_t i = 0; i < v->len; i++) {
      int rc = sl_bolt_from_value(a, &v->u.items[i], d, &out->u.items[i]);
      if (rc) return rc;
    }
    return 0;
  }
  case SL_DATE: return set_struct(a, out, SL_BOLT_DATE, 1, (sl_pack[]){sl_pack_int(v->u.t.seconds)});
  case SL_LOCALTIME:
    return set_struct(a, out, SL_BOLT_LOCALTIME, 1, (sl_pack[]){sl_pack_int(v->u.t.seconds * NANOS + v->u.t.nanos)});
  case SL_TIME:
    return set_struct(a, out, SL_BOLT_TIME, 2,
                      (sl_pack[]){sl_pack_int(v->u.t.seconds * NANOS + v->u.t.nanos), sl_pack_int(v->u.t.offset)});
  case SL_LOCALDATETIME:
    return set_struct(a, out, SL_BOLT_LOCALDATETIME, 2,
                      (sl_pack[]){sl_pack_int(v->u.t.seconds), sl_pack_int(v->u.t.nanos)});
  case SL_DATETIME: {
    /* 5.x and 4.4+utc: UTC seconds; older 4.4: the wall clock's seconds */
    int64_t secs = d.utc ? v->u.t.seconds : v->u.t.seconds + v->u.t.offset;
    if (v->u.t.zone)
      return set_struct(a, out, d.utc ? SL_BOLT_DATETIME_ZONEID : SL_BOLT_DATETIME_ZONEID_LEGACY, 3,
                        (sl_pack[]){sl_pack_int(secs), sl_pack_int(v->u.t.nanos), sl_pack_str(v->u.t.zone)});
    return set_struct(a, out, d.utc ? SL_BOLT_DATETIME : SL_BOLT_DATETIME_LEGACY, 3,
                      (sl_pack[]){sl_pack_int(secs), sl_pack_int(v->u.t.nanos), sl_pack_int(v->u.t.offset)});
  }
  case SL_DURATION: {
    /* Bolt's nanos are 0..999,999,999 (Neo4j's DurationValue) */
    int64_t secs = v->u.dur.seconds, nanos = v->u.dur.nanos;
    if (nanos < 0) {
      secs -= 1;
      nanos += NANOS;
    }
    return set_struct(a, out, SL_BOLT_DURATION, 4,
                      (sl_pack[]){sl_pack_int(v->u.dur.months), sl_pack_int(v->u.dur.days), sl_pack_int(secs),
                                  sl_pack_int(nanos)});
  }
  case SL_POINT: {
    bool three = v->u.pt.srid == SL_SRID_CARTESIAN_3D || v->u.pt.srid == SL_SRID_WGS84_3D;
    sl_pack f[4] = {sl_pack_int(v->u.pt.srid), sl_pack_float(v->u.pt.x), sl_pack_float(v->u.pt.y),
                    sl_pack_float(v->u.pt.z)};
    return set_struct(a, out, three ? SL_BOLT_POINT3D : SL_BOLT_POINT2D, three ? 4 : 3, f);
  }
  }
  return SL_EINVAL;
}

/* Field i of struct p must be an INT (or a FLOAT when is_float). */
static bool field_int(const sl_pack *p, uint32_t i, int64_t *v) {
  if (p->u.items[i].kind != SL_PACK_INT) return false;
  *v = p->u.items[i].u.i;
  return true;
}
static bool field_float(const sl_pack *p, uint32_t i, double *v) {
  if (p->u.items[i].kind != SL_PACK_FLOAT) return false;
  *v = p->u.items[i].u.f;
  return true;
}

/* seconds and nanos of a time of day given in nanoseconds */
static bool split_day_nanos(int64_t ns, sl_value *out) {
  if (ns < 0 || ns >= 86400 * NANOS) return false;
  out->u.t.seconds = ns / NANOS;
  out->u.t.nanos = (int32_t)(ns % NANOS);
  return true;
}

static const char *struct_name(uint8_t tag) {
  switch (tag) {
  case SL_BOLT_NODE: return "Node";
  case SL_BOLT_REL: return "Relationship";
  case SL_BOLT_UNBOUND_REL: return "UnboundRelationship";
  case SL_BOLT_PATH: return "Path";
  case SL_BOLT_DATE: return "Date";
  case SL_BOLT_TIME: return "Time";
  case SL_BOLT_LOCALTIME: return "LocalTime";
  case SL_BOLT_DATETIME: case SL_BOLT_DATETIME_LEGACY: return "DateTime";
  case SL_BOLT_DATETIME_ZONEID: case SL_BOLT_DATETIME_ZONEID_LEGACY: return "DateTimeZoneId";
  case SL_BOLT_LOCALDATETIME: return "LocalDateTime";
  case SL_BOLT_DURATION: return "Duration";
  case SL_BOLT_POINT2D: return "Point2D";
  case SL_BOLT_POINT3D: return "Point3D";
  default: return NULL;
  }
}

static int struct_to_value(sl_arena *a, const sl_pack *p, sl_bolt_dialect d, sl_bolt_zone_fn zone, sl_value *out,
                           char *why, size_t whylen) {
  const char *name = struct_name(p->tag);
  static const struct { uint8_t tag; uint32_t n; } arity[] = {
      {SL_BOLT_DATE, 1}, {SL_BOLT_TIME, 2}, {SL_BOLT_LOCALTIME, 1}, {SL_BOLT_DATETIME, 3},
      {SL_BOLT_DATETIME_ZONEID, 3}, {SL_BOLT_DATETIME_LEGACY, 3}, {SL_BOLT_DATETIME_ZONEID_LEGACY, 3},
      {SL_BOLT_LOCALDATETIME, 2}, {SL_BOLT_DURATION, 4}, {SL_BOLT_POINT2D, 3}, {SL_BOLT_POINT3D, 4}};
  uint32_t want = 0;
  for (size_t i = 0; i < SL_ARRAY_LEN(arity); i++)
    if (arity[i].tag == p->tag) want = arity[i].n;
  if (!name) {
    snprintf(why, whylen, "unknown structure tag 0x%02X", p->tag);
    return SL_EINVAL;
  }
  if (!want) {
    snprintf(why, whylen, "a %s cannot be a parameter", name);
    return SL_EINVAL;
  }
  if (p->len != want) {
    snprintf(why, whylen, "a %s has %u fields, not %u", name, want, p->len);
    return SL_EINVAL;
  }
  /* 'F'/'f' only where the utc patch is off, 'I'/'i' only where it is on */
  bool legacy = p->tag == SL_BOLT_DATETIME_LEGACY || p->tag == SL_BOLT_DATETIME_ZONEID_LEGACY;
  bool utc_tag = p->tag == SL_BOLT_DATETIME || p->tag == SL_BOLT_DATETIME_ZONEID;
  if ((legacy && d.utc) || (utc_tag && !d.utc)) {
    snprintf(why, whylen, "DateTime structure 0x%02X is not used by this protocol version", p->tag);
    return SL_EINVAL;
  }
  memset(out, 0, sizeof *out);
  int64_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;
  bool ok = true;
  switch (p->tag) {
  case SL_BOLT_DATE:
    out->kind = SL_DATE;
    ok = field_int(p, 0, &out->u.t.seconds);
    break;
  case SL_BOLT_LOCALTIME:
    out->kind = SL_LOCALTIME;
    ok = field_int(p, 0, &i0) && split_day_nanos(i0, out);
    break;
  case SL_BOLT_TIME:
    out->kind = SL_TIME;
    ok = field_int(p, 0, &i0) && split_day_nanos(i0, out) && field_int(p, 1, &i1) && i1 >= -SL_OFFSET_MAX &&
         i1 <= SL_OFFSET_MAX;
    out->u.t.offset = (int32_t)i1;
    break;
  case SL_BOLT_LOCALDATETIME:
    out->kind = SL_LOCALDATETIME;
    ok = field_int(p, 0, &out->u.t.seconds) && field_int(p, 1, &i1) && i1 >= 0 && i1 < NANOS;
    out->u.t.nanos = (int32_t)i1;
    break;
  case SL_BOLT_DATETIME:
  case SL_BOLT_DATETIME_LEGACY:
    out->kind = SL_DATETIME;
    /* legacy: local seconds; UTC ones past int64 are no instant */
    ok = field_int(p, 0, &i0) && field_int(p, 1, &i1) && i1 >= 0 && i1 < NANOS && field_int(p, 2, &i2) &&
         i2 >= -SL_OFFSET_MAX && i2 <= SL_OFFSET_MAX &&
         !__builtin_sub_overflow(i0, legacy ? i2 : 0, &out->u.t.seconds);
    out->u.t.nanos = (int32_t)i1;
    out->u.t.offset = (int32_t)i2;
    break;
  case SL_BOLT_DATETIME_ZONEID:
  case SL_BOLT_DATETIME_ZONEID_LEGACY: {
    out->kind = SL_DATETIME;
    const sl_pack *z = &p->u.items[2];
    ok = field_int(p, 0, &i0) && field_int(p, 1, &i1) && i1 >= 0 && i1 < NANOS && z->kind == SL_PACK_STRING &&
         z->len >= 1 && z->len <= SL_ZONE_MAX;
    if (!ok) break;
    char *zn = sl_arena_strndup(a, z->u.s, z->len);
    if (!zn) return -ENOMEM;
    int32_t off = 0;
    int rc = (zone ? zone : sl_bolt_zone_offset_tzdb)(zn, i0, legacy, &off);
    if (rc) {
      snprintf(why, whylen, "unknown time zone '%s'", zn);
      return SL_EINVAL;
    }
    ok = !__builtin_sub_overflow(i0, legacy ? off : 0, &out->u.t.seconds);
    out->u.t.nanos = (int32_t)i1;
    out->u.t.offset = off;
    out->u.t.zone = zn;
    break;
  }
  case SL_BOLT_DURATION:
    out->kind = SL_DURATION;
    ok = field_int(p, 0, &i0) && field_int(p, 1, &i1) && field_int(p, 2, &i2) && field_int(p, 3, &i3) &&
         i3 > -NANOS && i3 < NANOS;
    /* Neo4j's drivers send nanos 0..999,999,999 with seconds carrying the
     * sign; shiplog keeps nanos with seconds' sign (|nanos| < 1e9) */
    if (ok && i2 < 0 && i3 > 0) {
      i2 += 1;
      i3 -= NANOS;
    }
    out->u.dur.months = i0;
    out->u.dur.days = i1;
    out->u.dur.seconds = i2;
    out->u.dur.nanos = (int32_t)i3;
    break;
  case SL_BOLT_POINT2D:
  case SL_BOLT_POINT3D:
    out->kind = SL_POINT;
    ok = field_int(p, 0, &i0) && field_float(p, 1, &out->u.pt.x) && field_float(p, 2, &out->u.pt.y) &&
         (p->tag == SL_BOLT_POINT2D || field_float(p, 3, &out->u.pt.z));
    if (ok) {
      bool three = i0 == SL_SRID_CARTESIAN_3D || i0 == SL_SRID_WGS84_3D;
      bool two = i0 == SL_SRID_CARTESIAN || i0 == SL_SRID_WGS84;
      if (!(p->tag == SL_BOLT_POINT3D ? three : two)) {
        snprintf(why, whylen, "a %s with SRID %lld: not a coordinate system of Neo4j's", name, (long long)i0);
        return SL_EINVAL;
      }
    }
    out->u.pt.srid = (uint32_t)i0;
    break;
  }
  if (!ok) {
    snprintf(why, whylen, "a %s with a field of the wrong type or out of range", name);
    return SL_EINVAL;
  }
  return 0;
}

int sl_bolt_to_value(sl_arena *a, const sl_pack *p, sl_bolt_dialect d, sl_bolt_zone_fn zone, sl_value *out,
                     char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  switch (p->kind) {
  case SL_PACK_NULL: out->kind = SL_NULL; return 0;
  case SL_PACK_BOOL: out->kind = SL_BOOL; out->u.b = p->u.b; return 0;
  case SL_PACK_INT: out->kind = SL_INT; out->u.i = p->u.i; return 0;
  case SL_PACK_FLOAT: out->kind = SL_DOUBLE; out->u.d = p->u.f; return 0;
  case SL_PACK_STRING:
    if (memchr(p->u.s, 0, p->len)) {
      snprintf(why, whylen, "a string with a NUL character");
      return SL_EINVAL;
    }
    out->kind = SL_STRING; out->len = p->len; out->u.s = p->u.s;
    return 0;
  case SL_PACK_BYTES: out->kind = SL_BYTES; out->len = p->len; out->u.bytes = p->u.bytes; return 0;
  case SL_PACK_STRUCT: return struct_to_value(a, p, d, zone, out, why, whylen);
  case SL_PACK_MAP: snprintf(why, whylen, "a map is not a property value"); return SL_EINVAL;
  case SL_PACK_LIST: {
    sl_value *items = p->len ? sl_arena_alloc(a, p->len * sizeof *items) : NULL;
    if (p->len && !items) return -ENOMEM;
    out->kind = SL_LIST;
    out->elem_kind = SL_NULL;
    out->len = p->len;
    out->u.items = items;
    for (uint32_t i = 0; i < p->len; i++) {
      if (p->u.items[i].kind == SL_PACK_LIST || p->u.items[i].kind == SL_PACK_NULL) {
        snprintf(why, whylen, "a list of %s is not a property value",
                 p->u.items[i].kind == SL_PACK_NULL ? "values with nulls" : "lists");
        return SL_EINVAL;
      }
      int rc = sl_bolt_to_value(a, &p->u.items[i], d, zone, &items[i], why, whylen);
      if (rc) return rc;
      if (i && items[i].kind != items[0].kind) {
        snprintf(why, whylen, "a list mixing kinds is not a property value");
        return SL_EINVAL;
      }
    }
    if (p->len) out->elem_kind = items[0].kind;
    return 0;
  }
  }
  snprintf(why, whylen, "unknown value");
  return SL_EINVAL;
}

/* ---- graph structures ----------------------------------------------------------------- */
static int id_text(sl_arena *a, const char *element_id, int64_t id, sl_pack *out) {
  char buf[24];
  if (!element_id) {
    snprintf(buf, sizeof buf, "%lld", (long long)id);
    element_id = buf;
  }
  char *s = sl_arena_strndup(a, element_id, strlen(element_id));
  if (!s) return -ENOMEM;
  *out = sl_pack_str(s);
  return 0;
}

static int props_or_empty(sl_arena *a, const sl_pack *props, sl_pack *out) {
  if (props) {
    if (props->kind != SL_PACK_MAP) return SL_EINVAL;
    *out = *props;
    return 0;
  }
  return sl_pack_new_map(a, out, 0) ? 0 : -ENOMEM;
}

int sl_bolt_node(sl_arena *a, sl_bolt_dialect d, int64_t id, const char *element_id, const char *const *labels,
                 uint32_t n, const sl_pack *props, sl_pack *out) {
  if (!sl_pack_new_struct(a, out, SL_BOLT_NODE, d.element_ids ? 4 : 3)) return -ENOMEM;
  sl_pack *f = out->u.items;
  f[0] = sl_pack_int(id);
  if (!sl_pack_new_list(a, &f[1], n)) return -ENOMEM;
  for (uint32_t i = 0; i < n; i++) f[1].u.items[i] = sl_pack_str(labels[i]);
  int rc = props_or_empty(a, props, &f[2]);
  if (!rc && d.element_ids) rc = id_text(a, element_id, id, &f[3]);
  return rc;
}

int sl_bolt_rel(sl_arena *a, sl_bolt_dialect d, int64_t id, const char *element_id, int64_t start,
                const char *start_element_id, int64_t end, const char *end_element_id, const char *type,
                const sl_pack *props, sl_pack *out) {
  if (!sl_pack_new_struct(a, out, SL_BOLT_REL, d.element_ids ? 8 : 5)) return -ENOMEM;
  sl_pack *f = out->u.items;
  f[0] = sl_pack_int(id);
  f[1] = sl_pack_int(start);
  f[2] = sl_pack_int(end);
  f[3] = sl_pack_str(type);
  int rc = props_or_empty(a, props, &f[4]);
  if (!rc && d.element_ids) rc = id_text(a, element_id, id, &f[5]);
  if (!rc && d.element_ids) rc = id_text(a, start_element_id, start, &f[6]);
  if (!rc && d.element_ids) rc = id_text(a, end_element_id, end, &f[7]);
  return rc;
}

int sl_bolt_path(sl_arena *a, const sl_pack *nodes, uint32_t n_nodes, const sl_pack *rels, uint32_t n_rels,
                 const int64_t *indices, uint32_t n_indices, sl_pack *out) {
  if (!sl_pack_new_struct(a, out, SL_BOLT_PATH, 3)) return -ENOMEM;
  sl_pack *f = out->u.items;
  if (!sl_pack_new_list(a, &f[0], n_nodes) || !sl_pack_new_list(a, &f[1], n_rels) ||
      !sl_pack_new_list(a, &f[2], n_indices))
    return -ENOMEM;
  for (uint32_t i = 0; i < n_nodes; i++) f[0].u.items[i] = nodes[i];
  for (uint32_t i = 0; i < n_rels; i++) {
    const sl_pack *r = &rels[i];
    if (r->kind != SL_PACK_STRUCT || r->tag != SL_BOLT_REL || (r->len != 5 && r->len != 8)) return SL_EINVAL;
    bool eid = r->len == 8;
    /* 'r': id, type, properties (, element_id) */
    sl_pack *u = &f[1].u.items[i];
    if (!sl_pack_new_struct(a, u, SL_BOLT_UNBOUND_REL, eid ? 4 : 3)) return -ENOMEM;
    u->u.items[0] = r->u.items[0];
    u->u.items[1] = r->u.items[3];
    u->u.items[2] = r->u.items[4];
    if (eid) u->u.items[3] = r->u.items[5];
  }
  for (uint32_t i = 0; i < n_indices; i++) f[2].u.items[i] = sl_pack_int(indices[i]);
  return 0;
}
