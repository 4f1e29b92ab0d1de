/*
 * bolt/: PackStream (every marker at its size boundaries, refusals of bad
 * and hostile input), Bolt's structures <-> sl_value, chunking, the
 * handshake's choices, the server state machine driven message by message
 * on the echo backend, and users, passwords and the login throttle.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bolt.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------------------------- */
static bool pack_same(const sl_pack *a, const sl_pack *b) {
  if (a->kind != b->kind || a->len != b->len || a->tag != b->tag) return false;
  switch (a->kind) {
  case SL_PACK_NULL: return true;
  case SL_PACK_BOOL: return a->u.b == b->u.b;
  case SL_PACK_INT: return a->u.i == b->u.i;
  case SL_PACK_FLOAT: return memcmp(&a->u.f, &b->u.f, 8) == 0;
  case SL_PACK_STRING: return !a->len || !memcmp(a->u.s, b->u.s, a->len);
  case SL_PACK_BYTES: return !a->len || !memcmp(a->u.bytes, b->u.bytes, a->len);
  default: {
    size_t n = a->kind == SL_PACK_MAP ? 2 * (size_t)a->len : a->len;
    for (size_t i = 0; i < n; i++)
      if (!pack_same(&a->u.items[i], &b->u.items[i])) return false;
    return true;
  }
  }
}

/* Encode v, check the first bytes, decode, compare. */
static void round_trip(const sl_pack *v, const uint8_t *head, size_t head_len, size_t total_len) {
  sl_buf b = {0};
  sl_arena a = {0};
  OK(sl_pack_encode(&b, v));
  if (total_len) assert_int_equal(b.len, total_len);
  assert_memory_equal(b.data, head, head_len);
  sl_pack back;
  size_t used;
  OK(sl_pack_decode(b.data, b.len, NULL, &a, &back, &used));
  assert_int_equal(used, b.len);
  assert_true(pack_same(v, &back));
  sl_buf_free(&b);
  sl_arena_free(&a);
}

static char *filled(size_t n, char c) {
  char *s = malloc(n + 1);
  memset(s, c, n);
  s[n] = 0;
  return s;
}

/* ---- PackStream ---------------------------------------------------------------------------- */
static void bolt_pack_markers(void **state) {
  (void)state;
  static const struct { int64_t v; uint8_t head[3]; size_t n; } ints[] = {
      {0, {0x00}, 1},         {127, {0x7F}, 1},          {-16, {0xF0}, 1},         {-17, {0xC8, 0xEF}, 2},
      {-128, {0xC8, 0x80}, 2}, {128, {0xC9, 0x00}, 3},   {-129, {0xC9, 0xFF}, 3},  {32767, {0xC9, 0x7F}, 3},
      {32768, {0xCA, 0x00}, 5}, {-32769, {0xCA, 0xFF}, 5}, {INT32_MAX, {0xCA, 0x7F}, 5},
      {(int64_t)INT32_MAX + 1, {0xCB, 0x00}, 9}, {INT64_MIN, {0xCB, 0x80}, 9}, {INT64_MAX, {0xCB, 0x7F}, 9}};
  for (size_t i = 0; i < SL_ARRAY_LEN(ints); i++) {
    sl_pack v = sl_pack_int(ints[i].v);
    round_trip(&v, ints[i].head, ints[i].n > 1 ? 2 : 1, ints[i].n);
  }
  sl_pack v = sl_pack_null();
  round_trip(&v, (const uint8_t[]){0xC0}, 1, 1);
  v = sl_pack_bool(true);
  round_trip(&v, (const uint8_t[]){0xC3}, 1, 1);
  v = sl_pack_bool(false);
  round_trip(&v, (const uint8_t[]){0xC2}, 1, 1);
  v = sl_pack_float(1.1);
  round_trip(&v, (const uint8_t[]){0xC1, 0x3F, 0xF1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A}, 9, 9);
  v = sl_pack_float(-0.0);
  round_trip(&v, (const uint8_t[]){0xC1, 0x80}, 2, 9);
  v = sl_pack_float(NAN);
  round_trip(&v, (const uint8_t[]){0xC1}, 1, 9);
  /* strings, bytes, lists and maps at each size boundary */
  static const struct { uint32_t n; uint8_t str, bytes, list, map; size_t hdr; } sizes[] = {
      {0, 0x80, 0xCC, 0x90, 0xA0, 1},    {15, 0x8F, 0xCC, 0x9F, 0xAF, 1}, {16, 0xD0, 0xCC, 0xD4, 0xD8, 2},
      {255, 0xD0, 0xCC, 0xD4, 0xD8, 2}, {256, 0xD1, 0xCD, 0xD5, 0xD9, 3}, {65535, 0xD1, 0xCD, 0xD5, 0xD9, 3},
      {65536, 0xD2, 0xCE, 0xD6, 0xDA, 5}};
  sl_arena a = {0};
  for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
    uint32_t n = sizes[i].n;
    char *s = filled(n, 'x');
    sl_pack sv = {.kind = SL_PACK_STRING, .len = n, .u.s = s};
    round_trip(&sv, &sizes[i].str, 1, sizes[i].hdr + n);
    sl_pack bv = {.kind = SL_PACK_BYTES, .len = n, .u.bytes = (const uint8_t *)s};
    size_t bh = n <= 255 ? 2 : n <= 65535 ? 3 : 5;
    round_trip(&bv, &sizes[i].bytes, 1, bh + n);
    sl_pack lv, mv;
    assert_non_null(sl_pack_new_list(&a, &lv, n));
    for (uint32_t k = 0; k < n; k++) lv.u.items[k] = sl_pack_int(k % 100);
    round_trip(&lv, &sizes[i].list, 1, 0);
    assert_non_null(sl_pack_new_map(&a, &mv, n));
    for (uint32_t k = 0; k < n; k++) {
      char key[16];
      snprintf(key, sizeof key, "k%u", k);
      OK(sl_pack_map_set(&a, &mv, k, key, sl_pack_bool(k & 1)));
    }
    round_trip(&mv, &sizes[i].map, 1, 0);
    free(s);
  }
  /* structs of 0..15 fields, a UTF-8 string, nesting */
  for (uint32_t n = 0; n <= 15; n++) {
    sl_pack st;
    assert_non_null(sl_pack_new_struct(&a, &st, 0x42, n));
    for (uint32_t k = 0; k < n; k++) st.u.items[k] = sl_pack_str("é€😀");
    round_trip(&st, (const uint8_t[]){(uint8_t)(0xB0 | n), 0x42}, 2, 0);
  }
  assert_null(sl_pack_new_struct(&a, &v, 1, 16));
  sl_pack outer, inner;
  assert_non_null(sl_pack_new_list(&a, &outer, 2));
  assert_non_null(sl_pack_new_map(&a, &inner, 1));
  OK(sl_pack_map_set(&a, &inner, 0, "deep", sl_pack_float(2.5)));
  outer.u.items[0] = inner;
  outer.u.items[1] = sl_pack_null();
  round_trip(&outer, (const uint8_t[]){0x92, 0xA1, 0x84}, 3, 0);
  assert_true(sl_pack_map_get(&inner, "deep")->u.f == 2.5);
  assert_null(sl_pack_map_get(&inner, "nope"));
  sl_arena_free(&a);
}

static int decode_bytes(const uint8_t *b, size_t n, const sl_pack_limits *lim, sl_arena *a) {
  sl_pack v;
  size_t used;
  return sl_pack_decode(b, n, lim, a, &v, &used);
}

static void bolt_pack_refusals(void **state) {
  (void)state;
  sl_arena a = {0};
  /* reserved markers */
  static const uint8_t reserved[] = {0xC4, 0xC5, 0xC6, 0xC7, 0xCF, 0xD3, 0xD7, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0xE0, 0xEF};
  for (size_t i = 0; i < sizeof reserved; i++) ERR(SL_ECORRUPT, decode_bytes(&reserved[i], 1, NULL, &a));
  /* every cut of a valid value is truncated */
  sl_buf b = {0};
  sl_pack m;
  assert_non_null(sl_pack_new_map(&a, &m, 3));
  OK(sl_pack_map_set(&a, &m, 0, "i", sl_pack_int(1 << 20)));
  OK(sl_pack_map_set(&a, &m, 1, "s", sl_pack_str("a string of some length")));
  OK(sl_pack_map_set(&a, &m, 2, "f", sl_pack_float(0.5)));
  OK(sl_pack_encode(&b, &m));
  for (size_t cut = 0; cut < b.len; cut++) ERR(SL_ETRUNCATED, decode_bytes(b.data, cut, NULL, &a));
  sl_buf_free(&b);
  sl_arena_reset(&a);
  /* hostile sizes are refused before anything is allocated */
  static const uint8_t huge_str[] = {0xD2, 0x7F, 0xFF, 0xFF, 0xFF, 'x'};
  static const uint8_t huge_list[] = {0xD6, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
  static const uint8_t huge_map[] = {0xDA, 0x00, 0x10, 0x00, 0x01, 0x81, 'a', 0x01};
  static const uint8_t huge_bytes[] = {0xCE, 0x10, 0x00, 0x00, 0x00, 0x00};
  static const uint8_t short_list[] = {0xD5, 0x03, 0xE8, 0x01, 0x02, 0x03}; /* 1000 items declared, 3 given */
  ERR(SL_ETOOBIG, decode_bytes(huge_str, sizeof huge_str, NULL, &a));
  ERR(SL_ETOOBIG, decode_bytes(huge_list, sizeof huge_list, NULL, &a));
  ERR(SL_ETOOBIG, decode_bytes(huge_map, sizeof huge_map, NULL, &a));
  ERR(SL_ETOOBIG, decode_bytes(huge_bytes, sizeof huge_bytes, NULL, &a));
  ERR(SL_ETRUNCATED, decode_bytes(short_list, sizeof short_list, NULL, &a));
  assert_int_equal(a.used, 0);
  /* depth */
  uint8_t nest[100];
  memset(nest, 0x91, sizeof nest);
  nest[99] = 0x01;
  sl_pack_limits lim = sl_pack_default_limits;
  ERR(SL_ETOOBIG, decode_bytes(nest, sizeof nest, NULL, &a));
  lim.max_depth = 100;
  OK(decode_bytes(nest, sizeof nest, &lim, &a));
  /* total bytes of one message */
  lim = sl_pack_default_limits;
  lim.max_total = 64;
  uint8_t longstr[2 + 100] = {0xD0, 100};
  memset(longstr + 2, 'y', 100);
  ERR(SL_ETOOBIG, decode_bytes(longstr, sizeof longstr, &lim, &a));
  lim.max_total = 0;
  lim.max_string = 99;
  ERR(SL_ETOOBIG, decode_bytes(longstr, sizeof longstr, &lim, &a));
  /* bad UTF-8, a map key that is no string, a lone struct tag */
  static const uint8_t bad_utf8[] = {0x82, 0xC3, 0x28};
  static const uint8_t surrogate[] = {0x83, 0xED, 0xA0, 0x80};
  static const uint8_t int_key[] = {0xA1, 0x01, 0x02};
  static const uint8_t no_tag[] = {0xB1};
  ERR(SL_ECORRUPT, decode_bytes(bad_utf8, sizeof bad_utf8, NULL, &a));
  ERR(SL_ECORRUPT, decode_bytes(surrogate, sizeof surrogate, NULL, &a));
  ERR(SL_ECORRUPT, decode_bytes(int_key, sizeof int_key, NULL, &a));
  ERR(SL_ETRUNCATED, decode_bytes(no_tag, sizeof no_tag, NULL, &a));
  /* messages: trailing bytes, wrong field counts and kinds, unknown tags */
  char why[160];
  sl_pack msg;
  static const uint8_t run_ok[] = {0xB3, 0x10, 0x81, 'q', 0xA0, 0xA0};
  static const uint8_t run_trailing[] = {0xB3, 0x10, 0x81, 'q', 0xA0, 0xA0, 0xC0};
  static const uint8_t run_two[] = {0xB2, 0x10, 0x81, 'q', 0xA0};
  static const uint8_t run_int_query[] = {0xB3, 0x10, 0x01, 0xA0, 0xA0};
  static const uint8_t unknown[] = {0xB0, 0x55};
  static const uint8_t not_struct[] = {0x90};
  OK(sl_bolt_msg_decode(run_ok, sizeof run_ok, NULL, &a, &msg, why, sizeof why));
  ERR(SL_ECORRUPT, sl_bolt_msg_decode(run_trailing, sizeof run_trailing, NULL, &a, &msg, why, sizeof why));
  ERR(SL_ECORRUPT, sl_bolt_msg_decode(run_two, sizeof run_two, NULL, &a, &msg, why, sizeof why));
  assert_string_equal(why, "RUN with 2 fields, not 3");
  ERR(SL_ECORRUPT, sl_bolt_msg_decode(run_int_query, sizeof run_int_query, NULL, &a, &msg, why, sizeof why));
  ERR(SL_ECORRUPT, sl_bolt_msg_decode(unknown, sizeof unknown, NULL, &a, &msg, why, sizeof why));
  assert_string_equal(why, "unknown request message 0x55");
  ERR(SL_ECORRUPT, sl_bolt_msg_decode(not_struct, sizeof not_struct, NULL, &a, &msg, why, sizeof why));
  sl_arena_free(&a);
}

/* ---- structures <-> sl_value ------------------------------------------------------------- */
static bool value_same(const sl_value *a, const sl_value *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case SL_DATE: case SL_LOCALTIME: case SL_TIME: case SL_LOCALDATETIME: case SL_DATETIME:
    return a->u.t.seconds == b->u.t.seconds && a->u.t.nanos == b->u.t.nanos && a->u.t.offset == b->u.t.offset &&
           (!a->u.t.zone ? !b->u.t.zone : b->u.t.zone && !strcmp(a->u.t.zone, b->u.t.zone));
  case SL_DURATION:
    return a->u.dur.months == b->u.dur.months && a->u.dur.days == b->u.dur.days &&
           a->u.dur.seconds == b->u.dur.seconds && a->u.dur.nanos == b->u.dur.nanos;
  case SL_POINT:
    return a->u.pt.srid == b->u.pt.srid && a->u.pt.x == b->u.pt.x && a->u.pt.y == b->u.pt.y && a->u.pt.z == b->u.pt.z;
  case SL_LIST:
    if (a->len != b->len || a->elem_kind != b->elem_kind) return false;
    for (size_t i = 0; i < a->len; i++)
      if (!value_same(&a->u.items[i], &b->u.items[i])) return false;
    return true;
  default: return sl_value_equal(a, b);
  }
}

/* v -> structure (tag expected) -> bytes -> structure -> v again */
static void value_trip(const sl_value *v, sl_bolt_dialect d, int tag) {
  sl_arena a = {0};
  sl_buf b = {0};
  sl_pack p, back;
  sl_value out;
  char why[128] = "";
  OK(sl_bolt_from_value(&a, v, d, &p));
  if (tag >= 0) {
    assert_int_equal(p.kind, SL_PACK_STRUCT);
    assert_int_equal(p.tag, tag);
  }
  OK(sl_pack_encode(&b, &p));
  OK(sl_pack_decode(b.data, b.len, NULL, &a, &back, NULL));
  int rc = sl_bolt_to_value(&a, &back, d, NULL, &out, why, sizeof why);
  if (rc) fail_msg("to_value: %s", why);
  if (!value_same(v, &out)) fail_msg("kind %d changed on the trip (tag 0x%02X)", v->kind, tag);
  sl_buf_free(&b);
  sl_arena_free(&a);
}

static void bolt_structures(void **state) {
  (void)state;
  const sl_bolt_dialect v5 = {.element_ids = true, .utc = true}, v44 = {0};
  sl_value date = {.kind = SL_DATE, .u.t.seconds = 19782};
  sl_value old = {.kind = SL_DATE, .u.t.seconds = -719528};
  sl_value lt = {.kind = SL_LOCALTIME, .u.t = {.seconds = 86399, .nanos = 999999999}};
  sl_value tm = {.kind = SL_TIME, .u.t = {.seconds = 45000, .nanos = 5, .offset = -3600 * 5}};
  sl_value ldt = {.kind = SL_LOCALDATETIME, .u.t = {.seconds = -1, .nanos = 500000000}};
  sl_value dt = {.kind = SL_DATETIME, .u.t = {.seconds = 1709209800, .nanos = 1, .offset = 3600}};
  /* 2024-07-01T10:00Z is 12:00 in Paris (summer: +02:00) */
  sl_value dtz = {.kind = SL_DATETIME, .u.t = {.seconds = 1719828000, .nanos = 0, .offset = 7200, .zone = "Europe/Paris"}};
  sl_value dur = {.kind = SL_DURATION, .u.dur = {.months = 14, .days = -3, .seconds = 3600, .nanos = 5}};
  sl_value ndur = {.kind = SL_DURATION, .u.dur = {.months = 0, .days = 0, .seconds = 0, .nanos = -500000000}};
  sl_value p2 = {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_CARTESIAN, .x = 1.5, .y = -2}};
  sl_value p3 = {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_WGS84_3D, .x = 12.5, .y = 55.7, .z = 30}};
  sl_value list = {.kind = SL_LIST, .elem_kind = SL_DATE, .len = 2, .u.items = (const sl_value[]){date, old}};
  sl_value s = {.kind = SL_STRING, .len = 3, .u.s = "abc"};
  sl_value i = {.kind = SL_INT, .u.i = -5};
  for (int k = 0; k < 2; k++) {
    sl_bolt_dialect d = k ? v44 : v5;
    value_trip(&date, d, SL_BOLT_DATE);
    value_trip(&old, d, SL_BOLT_DATE);
    value_trip(&lt, d, SL_BOLT_LOCALTIME);
    value_trip(&tm, d, SL_BOLT_TIME);
    value_trip(&ldt, d, SL_BOLT_LOCALDATETIME);
    value_trip(&dt, d, k ? SL_BOLT_DATETIME_LEGACY : SL_BOLT_DATETIME);
    value_trip(&dtz, d, k ? SL_BOLT_DATETIME_ZONEID_LEGACY : SL_BOLT_DATETIME_ZONEID);
    value_trip(&dur, d, SL_BOLT_DURATION);
    value_trip(&ndur, d, SL_BOLT_DURATION);
    value_trip(&p2, d, SL_BOLT_POINT2D);
    value_trip(&p3, d, SL_BOLT_POINT3D);
    value_trip(&list, d, -1);
    value_trip(&s, d, -1);
    value_trip(&i, d, -1);
  }
  /* the bytes: 'I' carries UTC seconds, 'F' the wall clock's */
  sl_arena a = {0};
  sl_pack p;
  OK(sl_bolt_from_value(&a, &dt, v5, &p));
  assert_int_equal(p.u.items[0].u.i, 1709209800);
  OK(sl_bolt_from_value(&a, &dt, v44, &p));
  assert_int_equal(p.u.items[0].u.i, 1709209800 + 3600);
  /* Bolt's durations keep nanos 0..999,999,999 */
  OK(sl_bolt_from_value(&a, &ndur, v5, &p));
  assert_int_equal(p.u.items[2].u.i, -1);
  assert_int_equal(p.u.items[3].u.i, 500000000);
  /* refusals, with reasons */
  char why[128];
  sl_value out;
  sl_pack bad;
  assert_non_null(sl_pack_new_struct(&a, &bad, SL_BOLT_DATETIME_ZONEID, 3));
  bad.u.items[0] = sl_pack_int(0);
  bad.u.items[1] = sl_pack_int(0);
  bad.u.items[2] = sl_pack_str("Mars/Olympus");
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v5, NULL, &out, why, sizeof why));
  assert_string_equal(why, "unknown time zone 'Mars/Olympus'");
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v44, NULL, &out, why, sizeof why)); /* 'i' is not 4.4's */
  assert_non_null(sl_pack_new_struct(&a, &bad, SL_BOLT_POINT2D, 3));
  bad.u.items[0] = sl_pack_int(SL_SRID_WGS84_3D);
  bad.u.items[1] = sl_pack_float(1);
  bad.u.items[2] = sl_pack_float(2);
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v5, NULL, &out, why, sizeof why));
  assert_non_null(sl_pack_new_struct(&a, &bad, SL_BOLT_DATE, 2));
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v5, NULL, &out, why, sizeof why));
  assert_string_equal(why, "a Date has 1 fields, not 2");
  assert_non_null(sl_pack_new_struct(&a, &bad, SL_BOLT_LOCALTIME, 1));
  bad.u.items[0] = sl_pack_int(86400LL * 1000000000LL);
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v5, NULL, &out, why, sizeof why));
  assert_non_null(sl_pack_new_struct(&a, &bad, 'Z', 0));
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v5, NULL, &out, why, sizeof why));
  assert_non_null(sl_pack_new_list(&a, &bad, 2));
  bad.u.items[0] = sl_pack_int(1);
  bad.u.items[1] = sl_pack_str("x");
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &bad, v5, NULL, &out, why, sizeof why));
  assert_string_equal(why, "a list mixing kinds is not a property value");
  /* graph structures: fields by version; a path's relationships unbound */
  static const char *const labels[] = {"Person", "Admin"};
  sl_pack n5, n4, r5, r4, path, nodes[2];
  OK(sl_bolt_node(&a, v5, 7, NULL, labels, 2, NULL, &n5));
  assert_int_equal(n5.len, 4);
  assert_string_equal(n5.u.items[3].u.s, "7");
  OK(sl_bolt_node(&a, v44, 7, "4:x:7", labels, 2, NULL, &n4));
  assert_int_equal(n4.len, 3);
  OK(sl_bolt_rel(&a, v5, 9, "5:x:9", 7, "4:x:7", 8, "4:x:8", "KNOWS", NULL, &r5));
  assert_int_equal(r5.len, 8);
  assert_string_equal(r5.u.items[7].u.s, "4:x:8");
  OK(sl_bolt_rel(&a, v44, 9, NULL, 7, NULL, 8, NULL, "KNOWS", NULL, &r4));
  assert_int_equal(r4.len, 5);
  nodes[0] = n5;
  nodes[1] = n5;
  OK(sl_bolt_path(&a, nodes, 2, &r5, 1, (const int64_t[]){-1, 1}, 2, &path));
  assert_int_equal(path.tag, SL_BOLT_PATH);
  const sl_pack *u = &path.u.items[1].u.items[0];
  assert_int_equal(u->tag, SL_BOLT_UNBOUND_REL);
  assert_int_equal(u->len, 4);
  assert_string_equal(u->u.items[1].u.s, "KNOWS");
  assert_string_equal(u->u.items[3].u.s, "5:x:9");
  assert_int_equal(path.u.items[2].u.items[0].u.i, -1);
  ERR(SL_EINVAL, sl_bolt_path(&a, nodes, 2, &n5, 1, NULL, 0, &path));
  ERR(SL_EINVAL, sl_bolt_to_value(&a, &n5, v5, NULL, &out, why, sizeof why));
  assert_string_equal(why, "a Node cannot be a parameter");
  sl_arena_free(&a);
}

/* ---- chunks and the handshake ---------------------------------------------------------------- */
static void bolt_chunking(void **state) {
  (void)state;
  uint64_t seed = tu_seed("bolt_chunking");
  static const size_t sizes[] = {1, 2, 65535, 65536, 200000};
  sl_buf stream = {0}, msg = {0};
  uint8_t *body = malloc(200000);
  for (size_t i = 0; i < 200000; i++) body[i] = (uint8_t)tu_rand(&seed);
  /* the messages, with NOOPs between them */
  for (size_t k = 0; k < SL_ARRAY_LEN(sizes); k++) {
    OK(sl_bolt_chunk(&stream, body, sizes[k]));
    OK(sl_buf_reserve(&stream, stream.len + 4));
    stream.data[stream.len++] = 0;
    stream.data[stream.len++] = 0;
  }
  /* 65536 bytes take two chunks: 65535 + 1 */
  sl_buf one = {0};
  OK(sl_bolt_chunk(&one, body, 65536));
  assert_int_equal(one.len, 2 + 65535 + 2 + 1 + 2);
  assert_int_equal(one.data[0], 0xFF);
  assert_int_equal(one.data[65537], 0x00);
  assert_int_equal(one.data[65538], 0x01);
  sl_buf_free(&one);
  /* fed in random pieces (one byte at a time at first) */
  sl_bolt_dechunker d = {.max_message = 200000};
  size_t pos = 0, got = 0;
  bool partial;
  while (pos < stream.len) {
    size_t n = pos < 300 ? 1 : 1 + tu_rand_below(&seed, 70000);
    if (n > stream.len - pos) n = stream.len - pos;
    OK(sl_bolt_dechunk_feed(&d, stream.data + pos, n));
    pos += n;
    int rc;
    while ((rc = sl_bolt_dechunk_next(&d, &msg, &partial)) == 1) {
      assert_int_equal(msg.len, sizes[got]);
      assert_memory_equal(msg.data, body, msg.len);
      got++;
    }
    OK(rc);
  }
  assert_int_equal(got, SL_ARRAY_LEN(sizes));
  assert_false(partial);
  sl_bolt_dechunk_free(&d);
  /* over the limit: refused when the crossing chunk's header arrives */
  sl_bolt_dechunker small = {.max_message = 1000};
  uint8_t hdr[2] = {0x03, 0xE9}; /* 1001 */
  OK(sl_bolt_dechunk_feed(&small, hdr, 2));
  ERR(SL_ETOOBIG, sl_bolt_dechunk_next(&small, &msg, &partial));
  sl_bolt_dechunk_free(&small);
  /* queued RESETs are counted */
  sl_bolt_dechunker q = {.max_message = 1000};
  sl_buf s2 = {0};
  static const uint8_t run[] = {0xB3, 0x10, 0x80, 0xA0, 0xA0}, reset[] = {0xB0, 0x0F};
  OK(sl_bolt_chunk(&s2, run, sizeof run));
  OK(sl_bolt_chunk(&s2, reset, sizeof reset));
  OK(sl_bolt_chunk(&s2, reset, 1)); /* incomplete: a lone marker byte is no RESET */
  OK(sl_bolt_dechunk_feed(&q, s2.data, s2.len));
  assert_int_equal(sl_bolt_dechunk_count_tag(&q, SL_BOLT_MSG_RESET), 1);
  assert_int_equal(sl_bolt_dechunk_next(&q, &msg, &partial), 1);
  assert_true(partial);
  sl_bolt_dechunk_free(&q);
  sl_buf_free(&s2);
  sl_buf_free(&stream);
  sl_buf_free(&msg);
  free(body);
}

static uint16_t shake(const uint32_t p[4], uint16_t max) {
  uint8_t in[20] = {0x60, 0x60, 0xB0, 0x17};
  for (int i = 0; i < 4; i++) {
    in[4 + 4 * i] = (uint8_t)(p[i] >> 24);
    in[5 + 4 * i] = (uint8_t)(p[i] >> 16);
    in[6 + 4 * i] = (uint8_t)(p[i] >> 8);
    in[7 + 4 * i] = (uint8_t)p[i];
  }
  uint16_t v = 0xFFFF;
  OK(sl_bolt_handshake(in, max, &v));
  return v;
}

/* --server-agent: what drivers can parse (PRODUCT/MAJOR.MINOR...) */
static void bolt_agent_parsable(void **state) {
  (void)state;
  const char *good[] = {SL_BOLT_SERVER_AGENT, "Neo4j/5.13", "Neo4j/5.13.0-custom", "Memgraph/2.1.0"};
  const char *bad[] = {"", "Neo4j", "Neo4j/", "/5.1", "Neo4j/5", "Neo4j/5.", "Neo4j/x.1", "Neo 4j/5.1", "Neo4j/5.1\n"};
  for (size_t i = 0; i < SL_ARRAY_LEN(good); i++) assert_true(sl_bolt_agent_parsable(good[i]));
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) assert_false(sl_bolt_agent_parsable(bad[i]));
  char long_agent[120];
  snprintf(long_agent, sizeof long_agent, "Neo4j/5.1.%0100d", 0);
  assert_false(sl_bolt_agent_parsable(long_agent));
}

static void bolt_handshake_choices(void **state) {
  (void)state;
  /* JS driver 6: manifest v1, 5.8..5.0, 4.4..4.2, 3.0 */
  const uint32_t js6[4] = {0x000001FF, 0x00080805, 0x00020404, 0x00000003};
  assert_int_equal(shake(js6, 0), SL_BOLT_V(5, 4));
  assert_int_equal(shake(js6, SL_BOLT_V(5, 2)), SL_BOLT_V(5, 2));
  assert_int_equal(shake(js6, SL_BOLT_V(4, 4)), SL_BOLT_V(4, 4));
  assert_int_equal(shake((const uint32_t[4]){0x00000105, 0, 0, 0}, 0), SL_BOLT_V(5, 1));
  assert_int_equal(shake((const uint32_t[4]){0x00030805, 0, 0, 0}, 0), 0); /* 5.8..5.5: none of ours */
  assert_int_equal(shake((const uint32_t[4]){0x00000304, 0x00000006, 0, 0}, 0), 0);
  assert_int_equal(shake((const uint32_t[4]){0x00000404, 0x00000405, 0, 0}, 0), SL_BOLT_V(4, 4)); /* client's order */
  assert_int_equal(shake((const uint32_t[4]){0, 0, 0, 0}, 0), 0);
  uint8_t http[20] = "GET / HTTP/1.1\r\nHost";
  uint16_t v;
  ERR(SL_ECORRUPT, sl_bolt_handshake(http, 0, &v));
  uint8_t reply[4];
  sl_bolt_handshake_reply(SL_BOLT_V(5, 4), reply);
  assert_memory_equal(reply, ((const uint8_t[]){0, 0, 4, 5}), 4);
}

/* ---- the state machine ---------------------------------------------------------------------- */
typedef struct driver {
  sl_bolt_session *s;
  sl_buf out;
  sl_arena a;
  sl_pack last; /* the last response's metadata (SUCCESS, FAILURE) */
} driver;

/* Send one request (built by fmt-free helpers below); return the response
 * tags as a string ("S" SUCCESS, "R" RECORD, "I" IGNORED, "F" FAILURE)
 * and the session's return code in *rc. */
static const char *send_msg(driver *d, const sl_pack *msg, int *rc) {
  static char tags[64];
  sl_buf body = {0};
  OK(sl_pack_encode(&body, msg));
  d->out.len = 0;
  *rc = sl_bolt_session_handle(d->s, body.data, body.len, &d->out, NULL, NULL);
  sl_buf_free(&body);
  sl_bolt_dechunker dc = {.max_message = 1 << 24};
  sl_buf m = {0};
  bool partial;
  size_t n = 0;
  OK(sl_bolt_dechunk_feed(&dc, d->out.data, d->out.len));
  while (sl_bolt_dechunk_next(&dc, &m, &partial) == 1 && n < sizeof tags - 1) {
    sl_pack r;
    OK(sl_pack_decode(m.data, m.len, NULL, &d->a, &r, NULL));
    assert_int_equal(r.kind, SL_PACK_STRUCT);
    tags[n++] = r.tag == SL_BOLT_MSG_SUCCESS ? 'S' : r.tag == SL_BOLT_MSG_RECORD ? 'R' : r.tag == SL_BOLT_MSG_IGNORED ? 'I' : 'F';
    if (r.tag != SL_BOLT_MSG_RECORD && r.len) d->last = r.u.items[0];
  }
  tags[n] = 0;
  sl_bolt_dechunk_free(&dc);
  sl_buf_free(&m);
  return tags;
}

static sl_pack req(driver *d, uint8_t tag, uint32_t n, const sl_pack *fields) {
  sl_pack m;
  assert_non_null(sl_pack_new_struct(&d->a, &m, tag, n));
  for (uint32_t i = 0; i < n; i++) m.u.items[i] = fields[i];
  return m;
}
static sl_pack map1(driver *d, const char *k, sl_pack v) {
  sl_pack m;
  assert_non_null(sl_pack_new_map(&d->a, &m, k ? 1 : 0));
  if (k) OK(sl_pack_map_set(&d->a, &m, 0, k, v));
  return m;
}
static sl_pack empty(driver *d) { return map1(d, NULL, sl_pack_null()); }

#define EXPECT(d, msg, want_tags, want_rc)                                    \
  do {                                                                        \
    sl_pack m_ = (msg);                                                       \
    int rc_;                                                                  \
    const char *t_ = send_msg(d, &m_, &rc_);                                  \
    assert_string_equal(t_, want_tags);                                       \
    assert_int_equal(rc_, want_rc);                                           \
  } while (0)
#define STATE(d, st) assert_string_equal(sl_bolt_state_name(sl_bolt_session_state((d)->s)), sl_bolt_state_name(st))

static sl_pack hello(driver *d) { return req(d, SL_BOLT_MSG_HELLO, 1, (sl_pack[]){map1(d, "user_agent", sl_pack_str("test/1"))}); }
static sl_pack run(driver *d, const char *q) {
  return req(d, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str(q), empty(d), empty(d)});
}
static sl_pack pull(driver *d, int64_t n) { return req(d, SL_BOLT_MSG_PULL, 1, (sl_pack[]){map1(d, "n", sl_pack_int(n))}); }
static sl_pack simple(driver *d, uint8_t tag) { return req(d, tag, 0, NULL); }
static sl_pack logon(driver *d, const char *user, const char *pw) {
  sl_pack m;
  assert_non_null(sl_pack_new_map(&d->a, &m, 3));
  OK(sl_pack_map_set(&d->a, &m, 0, "scheme", sl_pack_str("basic")));
  OK(sl_pack_map_set(&d->a, &m, 1, "principal", sl_pack_str(user)));
  OK(sl_pack_map_set(&d->a, &m, 2, "credentials", sl_pack_str(pw)));
  return req(d, SL_BOLT_MSG_LOGON, 1, &m);
}

static void open_driver(driver *d, uint16_t version, sl_bolt_users *users) {
  memset(d, 0, sizeof *d);
  sl_bolt_session_config cfg = {.backend = &sl_bolt_echo_backend, .users = users, .advertise = "db1:7687",
                                .idle_timeout_s = 60};
  OK(sl_bolt_session_new(&cfg, version, "127.0.0.1:1234", 7, &d->s));
}
static void close_driver(driver *d) {
  sl_bolt_session_free(d->s);
  sl_buf_free(&d->out);
  sl_arena_free(&d->a);
}

static void bolt_state_machine(void **state) {
  (void)state;
  driver d;
  open_driver(&d, SL_BOLT_V(5, 4), NULL);
  STATE(&d, SL_BOLT_CONNECTED);
  EXPECT(&d, hello(&d), "S", 0);
  assert_string_equal(sl_pack_map_get(&d.last, "server")->u.s, "Neo4j/5.26.0");
  assert_string_equal(sl_pack_map_get(&d.last, "connection_id")->u.s, "bolt-7");
  assert_int_equal(sl_pack_map_get(sl_pack_map_get(&d.last, "hints"), "connection.recv_timeout_seconds")->u.i, 60);
  STATE(&d, SL_BOLT_AUTHENTICATION);
  EXPECT(&d, logon(&d, "anyone", "anything"), "S", 0);
  STATE(&d, SL_BOLT_READY);
  /* autocommit, pulled in parts */
  EXPECT(&d, run(&d, "ROWS 3"), "S", 0);
  assert_string_equal(sl_pack_map_get(&d.last, "fields")->u.items[0].u.s, "i");
  assert_null(sl_pack_map_get(&d.last, "qid"));
  STATE(&d, SL_BOLT_STREAMING);
  EXPECT(&d, pull(&d, 2), "RRS", 0);
  assert_true(sl_pack_map_get(&d.last, "has_more")->u.b);
  STATE(&d, SL_BOLT_STREAMING);
  EXPECT(&d, req(&d, SL_BOLT_MSG_DISCARD, 1, (sl_pack[]){map1(&d, "n", sl_pack_int(-1))}), "S", 0);
  assert_string_equal(sl_pack_map_get(&d.last, "type")->u.s, "r");
  STATE(&d, SL_BOLT_READY);
  /* an explicit transaction with two open results */
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){map1(&d, "db", sl_pack_str("neo4j"))}), "S", 0);
  STATE(&d, SL_BOLT_TX_READY);
  EXPECT(&d, run(&d, "ROWS 1"), "S", 0);
  assert_int_equal(sl_pack_map_get(&d.last, "qid")->u.i, 0);
  EXPECT(&d, run(&d, "ROWS 2"), "S", 0);
  assert_int_equal(sl_pack_map_get(&d.last, "qid")->u.i, 1);
  STATE(&d, SL_BOLT_TX_STREAMING);
  sl_pack pq;
  assert_non_null(sl_pack_new_map(&d.a, &pq, 2));
  OK(sl_pack_map_set(&d.a, &pq, 0, "n", sl_pack_int(-1)));
  OK(sl_pack_map_set(&d.a, &pq, 1, "qid", sl_pack_int(0)));
  EXPECT(&d, req(&d, SL_BOLT_MSG_PULL, 1, &pq), "RS", 0);
  STATE(&d, SL_BOLT_TX_STREAMING);
  EXPECT(&d, pull(&d, -1), "RRS", 0);
  STATE(&d, SL_BOLT_TX_READY);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_COMMIT), "S", 0);
  assert_string_equal(sl_pack_map_get(&d.last, "bookmark")->u.s, "echo:1");
  STATE(&d, SL_BOLT_READY);
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){empty(&d)}), "S", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_ROLLBACK), "S", 0);
  STATE(&d, SL_BOLT_READY);
  /* a failure: FAILED, IGNORED until RESET */
  EXPECT(&d, run(&d, "ERROR Neo.ClientError.Statement.SyntaxError bad query"), "F", 0);
  assert_string_equal(sl_pack_map_get(&d.last, "code")->u.s, "Neo.ClientError.Statement.SyntaxError");
  assert_string_equal(sl_pack_map_get(&d.last, "message")->u.s, "bad query");
  STATE(&d, SL_BOLT_FAILED);
  EXPECT(&d, pull(&d, -1), "I", 0);
  EXPECT(&d, run(&d, "ROWS 1"), "I", 0);
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){empty(&d)}), "I", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_RESET), "S", 0);
  STATE(&d, SL_BOLT_READY);
  /* a failure inside a transaction ends it */
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){empty(&d)}), "S", 0);
  EXPECT(&d, run(&d, "ERROR Neo.ClientError.Statement.ArithmeticError x"), "F", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_COMMIT), "I", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_RESET), "S", 0);
  /* a PULL of a result that is not open: FAILURE, and the transaction is over */
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){empty(&d)}), "S", 0);
  EXPECT(&d, run(&d, "ROWS 1"), "S", 0);
  sl_pack bad_qid;
  assert_non_null(sl_pack_new_map(&d.a, &bad_qid, 1));
  OK(sl_pack_map_set(&d.a, &bad_qid, 0, "qid", sl_pack_int(42)));
  EXPECT(&d, req(&d, SL_BOLT_MSG_PULL, 1, &bad_qid), "F", 0);
  STATE(&d, SL_BOLT_FAILED);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_RESET), "S", 0);
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){empty(&d)}), "S", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_COMMIT), "S", 0);
  /* RESET in a transaction rolls it back */
  EXPECT(&d, req(&d, SL_BOLT_MSG_BEGIN, 1, (sl_pack[]){empty(&d)}), "S", 0);
  EXPECT(&d, run(&d, "ROWS 5"), "S", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_RESET), "S", 0);
  STATE(&d, SL_BOLT_READY);
  /* an interrupt (a RESET queued behind): IGNORED until that RESET */
  sl_bolt_session_interrupt(d.s);
  STATE(&d, SL_BOLT_INTERRUPTED);
  EXPECT(&d, run(&d, "ROWS 1"), "I", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_RESET), "S", 0);
  STATE(&d, SL_BOLT_READY);
  /* ROUTE: this server in every role */
  EXPECT(&d, req(&d, SL_BOLT_MSG_ROUTE, 3, (sl_pack[]){empty(&d), sl_pack_null(), map1(&d, "db", sl_pack_str("g"))}), "S", 0);
  const sl_pack *rt = sl_pack_map_get(&d.last, "rt");
  assert_string_equal(sl_pack_map_get(rt, "db")->u.s, "g");
  const sl_pack *servers = sl_pack_map_get(rt, "servers");
  assert_int_equal(servers->len, 3);
  assert_string_equal(sl_pack_map_get(&servers->u.items[0], "addresses")->u.items[0].u.s, "db1:7687");
  /* TELEMETRY (5.4), LOGOFF, LOGON again, parameters echoed */
  EXPECT(&d, req(&d, SL_BOLT_MSG_TELEMETRY, 1, (sl_pack[]){sl_pack_int(1)}), "S", 0);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_LOGOFF), "S", 0);
  STATE(&d, SL_BOLT_AUTHENTICATION);
  EXPECT(&d, logon(&d, "x", "y"), "S", 0);
  EXPECT(&d, req(&d, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("RETURN $v"), map1(&d, "v", sl_pack_float(0.25)), empty(&d)}), "S", 0);
  EXPECT(&d, pull(&d, -1), "RS", 0);
  /* a message the state does not take: FAILURE, DEFUNCT */
  EXPECT(&d, simple(&d, SL_BOLT_MSG_COMMIT), "F", SL_ECORRUPT);
  assert_string_equal(sl_pack_map_get(&d.last, "code")->u.s, "Neo.ClientError.Request.Invalid");
  STATE(&d, SL_BOLT_DEFUNCT);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_RESET), "", SL_EEND);
  close_driver(&d);

  /* 5.3: no TELEMETRY; RUN before LOGON is a violation */
  open_driver(&d, SL_BOLT_V(5, 3), NULL);
  EXPECT(&d, hello(&d), "S", 0);
  EXPECT(&d, run(&d, "ROWS 1"), "F", SL_ECORRUPT);
  close_driver(&d);
  open_driver(&d, SL_BOLT_V(5, 3), NULL);
  EXPECT(&d, hello(&d), "S", 0);
  EXPECT(&d, logon(&d, "a", "b"), "S", 0);
  EXPECT(&d, req(&d, SL_BOLT_MSG_TELEMETRY, 1, (sl_pack[]){sl_pack_int(1)}), "F", SL_ECORRUPT);
  close_driver(&d);

  /* 4.4: HELLO logs in; the "utc" patch is answered; no LOGON; GOODBYE */
  open_driver(&d, SL_BOLT_V(4, 4), NULL);
  sl_pack h, patches;
  assert_non_null(sl_pack_new_map(&d.a, &h, 2));
  assert_non_null(sl_pack_new_list(&d.a, &patches, 1));
  patches.u.items[0] = sl_pack_str("utc");
  OK(sl_pack_map_set(&d.a, &h, 0, "user_agent", sl_pack_str("t")));
  OK(sl_pack_map_set(&d.a, &h, 1, "patch_bolt", patches));
  EXPECT(&d, req(&d, SL_BOLT_MSG_HELLO, 1, &h), "S", 0);
  assert_string_equal(sl_pack_map_get(&d.last, "patch_bolt")->u.items[0].u.s, "utc");
  STATE(&d, SL_BOLT_READY);
  EXPECT(&d, simple(&d, SL_BOLT_MSG_LOGOFF), "F", SL_ECORRUPT);
  close_driver(&d);
  open_driver(&d, SL_BOLT_V(4, 4), NULL);
  EXPECT(&d, hello(&d), "S", 0);
  assert_null(sl_pack_map_get(&d.last, "patch_bolt"));
  EXPECT(&d, simple(&d, SL_BOLT_MSG_GOODBYE), "", SL_EEND);
  STATE(&d, SL_BOLT_DEFUNCT);
  close_driver(&d);

  /* garbage bodies: FAILURE, DEFUNCT */
  open_driver(&d, SL_BOLT_V(5, 4), NULL);
  static const uint8_t junk[] = {0xC7, 0x01};
  d.out.len = 0;
  ERR(SL_ECORRUPT, sl_bolt_session_handle(d.s, junk, sizeof junk, &d.out, NULL, NULL));
  STATE(&d, SL_BOLT_DEFUNCT);
  assert_true(d.out.len > 0);
  close_driver(&d);
}

/* ---- users, passwords, throttle -------------------------------------------------------------- */
static void bolt_auth(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("bolt_auth");
  char *file = tu_path(dir, "users");
  bool added;
  OK(sl_bolt_passwd(file, "alice", "pw1", 3, SL_BOLT_ROLE_ADMIN, &added));
  assert_true(added);
  OK(sl_bolt_passwd(file, "bob", "secret", 6, SL_BOLT_ROLE_NONE, &added));
  OK(sl_bolt_passwd(file, "alice", "pw2", 3, SL_BOLT_ROLE_NONE, &added));
  assert_false(added);
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  sl_bolt_users *u;
  OK(sl_bolt_users_load(file, &u));
  sl_bolt_role role = SL_BOLT_ROLE_NONE;
  OK(sl_bolt_users_check(u, "alice", "pw2", 3, &role));
  assert_int_equal(role, SL_BOLT_ROLE_ADMIN);
  ERR(SL_EAUTH, sl_bolt_users_check(u, "alice", "pw1", 3, &role));
  OK(sl_bolt_users_check(u, "bob", "secret", 6, &role));
  assert_int_equal(role, SL_BOLT_ROLE_READER);
  ERR(SL_EAUTH, sl_bolt_users_check(u, "carol", "secret", 6, &role));
  ERR(SL_EINVAL, sl_bolt_passwd(file, "bad name", "x", 1, SL_BOLT_ROLE_NONE, &added));

  /* a session with users: right and wrong LOGON */
  driver d;
  open_driver(&d, SL_BOLT_V(5, 4), u);
  EXPECT(&d, hello(&d), "S", 0);
  EXPECT(&d, logon(&d, "bob", "secret"), "S", 0);
  STATE(&d, SL_BOLT_READY);
  close_driver(&d);
  open_driver(&d, SL_BOLT_V(5, 4), u);
  EXPECT(&d, hello(&d), "S", 0);
  EXPECT(&d, logon(&d, "bob", "wrong"), "F", SL_EAUTH);
  assert_string_equal(sl_pack_map_get(&d.last, "code")->u.s, "Neo.ClientError.Security.Unauthorized");
  STATE(&d, SL_BOLT_DEFUNCT);
  close_driver(&d);
  open_driver(&d, SL_BOLT_V(5, 0), u); /* 5.0: credentials in HELLO */
  sl_pack h;
  assert_non_null(sl_pack_new_map(&d.a, &h, 4));
  OK(sl_pack_map_set(&d.a, &h, 0, "user_agent", sl_pack_str("t")));
  OK(sl_pack_map_set(&d.a, &h, 1, "scheme", sl_pack_str("basic")));
  OK(sl_pack_map_set(&d.a, &h, 2, "principal", sl_pack_str("alice")));
  OK(sl_pack_map_set(&d.a, &h, 3, "credentials", sl_pack_str("pw2")));
  EXPECT(&d, req(&d, SL_BOLT_MSG_HELLO, 1, &h), "S", 0);
  STATE(&d, SL_BOLT_READY);
  close_driver(&d);
  sl_bolt_users_free(u);

  /* a readable file is refused; a bad line is named FILE:LINE */
  chmod(file, 0640);
  tu_capture_begin();
  ERR(-EPERM, sl_bolt_users_load(file, &u));
  ERR(-EPERM, sl_bolt_passwd(file, "carol", "x", 1, SL_BOLT_ROLE_NONE, &added));
  char *err = tu_capture_end();
  assert_non_null(strstr(err, "chmod 600"));
  free(err);
  char *bad = tu_path(dir, "bad");
  tu_write_file(bad, "# comment\n\nalice admin $scrypt$15$8$1$00$11\n");
  chmod(bad, 0600);
  tu_capture_begin();
  ERR(SL_EINVAL, sl_bolt_users_load(bad, &u));
  err = tu_capture_end();
  assert_non_null(strstr(err, "bad:3: hash must be"));
  free(err);
  tu_write_file(bad, "alice root $scrypt$15$8$1$00000000000000000000000000000000$"
                     "0000000000000000000000000000000000000000000000000000000000000000\n");
  tu_capture_begin();
  ERR(SL_EINVAL, sl_bolt_users_load(bad, &u));
  err = tu_capture_end();
  assert_non_null(strstr(err, "bad:1: role must be"));
  free(err);

  /* the throttle: doubling per failure, per host (not port), cleared by a success */
  sl_bolt_throttle *t;
  OK(sl_bolt_throttle_new(100, 1000, &t));
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "10.0.0.1:5000"), 0);
  sl_bolt_throttle_result(t, "10.0.0.1:5000", false);
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "10.0.0.1:6000"), 100);
  sl_bolt_throttle_result(t, "10.0.0.1:5001", false);
  sl_bolt_throttle_result(t, "10.0.0.1:5002", false);
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "10.0.0.1:1"), 400);
  for (int i = 0; i < 10; i++) sl_bolt_throttle_result(t, "10.0.0.1:1", false);
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "10.0.0.1:1"), 1000);
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "[::1]:1"), 0);
  sl_bolt_throttle_result(t, "[::1]:1", false);
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "[::1]:2"), 100);
  sl_bolt_throttle_result(t, "10.0.0.1:7", true);
  assert_int_equal(sl_bolt_throttle_delay_ms(t, "10.0.0.1:1"), 0);
  sl_bolt_throttle_free(t);
  free(bad);
  free(file);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bolt_pack_markers), cmocka_unit_test(bolt_pack_refusals),
      cmocka_unit_test(bolt_structures),   cmocka_unit_test(bolt_chunking),
      cmocka_unit_test(bolt_handshake_choices), cmocka_unit_test(bolt_state_machine),
      cmocka_unit_test(bolt_agent_parsable),
      cmocka_unit_test(bolt_auth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
