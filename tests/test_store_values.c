/*
 * Neo4j's temporal and spatial kinds in the store (spec/types.md): every
 * kind and a list of each through commit -> reopen -> read, a replay of
 * the log into a new store, a rebuild of LMDB from the log, dump | load
 * (full and incremental), the LMDB and protobuf codecs (value.c) with
 * damaged bytes; their extremes, the refusal of values out of range
 * (naming the key and the reason), and the ordering and comparison of
 * values (store/value_order.c) against tables.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "store_helpers.h"

#include "dump.h"
#include "sl_base.h"
#include "store.h"
#include "store_int.h"

/* Days since 1970-01-01 of -999999999-01-01, 0001-01-01, 9999-12-31 and
 * 999999999-12-31 (proleptic Gregorian). */
#define DAY_MIN INT64_C(-365243219163)
#define DAY_1 INT64_C(-719162)
#define DAY_9999 INT64_C(2932896)
#define DAY_MAX INT64_C(365241780471)
#define ZONE63 "America/Argentina/ComodRivadavia_Extra_Name_To_Reach_63_Bytes__"

static sl_value tv(sl_kind kind, int64_t seconds, int32_t nanos, int32_t offset, const char *zone) {
  sl_value v = {.kind = kind};
  v.u.t.seconds = seconds;
  v.u.t.nanos = nanos;
  v.u.t.offset = offset;
  v.u.t.zone = zone;
  return v;
}
static sl_value dv(int64_t months, int64_t days, int64_t seconds, int32_t nanos) {
  sl_value v = {.kind = SL_DURATION};
  v.u.dur.months = months;
  v.u.dur.days = days;
  v.u.dur.seconds = seconds;
  v.u.dur.nanos = nanos;
  return v;
}
static sl_value pv(uint32_t srid, double x, double y, double z) {
  sl_value v = {.kind = SL_POINT};
  v.u.pt.srid = srid;
  v.u.pt.x = x;
  v.u.pt.y = y;
  v.u.pt.z = z;
  return v;
}
static sl_value dbl(double d) { return (sl_value){.kind = SL_DOUBLE, .u.d = d}; }
static sl_value lst(sl_kind elem, size_t n, const sl_value *items) {
  return (sl_value){.kind = SL_LIST, .elem_kind = elem, .len = n, .u.items = items};
}

/* Extremes of every kind. */
static sl_value dates[] = {{0}, {0}, {0}, {0}, {0}};
static sl_value times[4], ltimes[3], ldts[4], dts[5], durs[5], points[5];
static void fill_values(void) {
  _Static_assert(sizeof ZONE63 == SL_ZONE_MAX + 1, "a zone name of SL_ZONE_MAX bytes");
  int64_t day = 86400;
  dates[0] = tv(SL_DATE, DAY_MIN, 0, 0, NULL);
  dates[1] = tv(SL_DATE, DAY_1, 0, 0, NULL);
  dates[2] = tv(SL_DATE, 0, 0, 0, NULL);
  dates[3] = tv(SL_DATE, DAY_9999, 0, 0, NULL);
  dates[4] = tv(SL_DATE, DAY_MAX, 0, 0, NULL);
  ltimes[0] = tv(SL_LOCALTIME, 0, 0, 0, NULL);
  ltimes[1] = tv(SL_LOCALTIME, 86399, 999999999, 0, NULL);
  ltimes[2] = tv(SL_LOCALTIME, 12 * 3600 + 30 * 60, 1, 0, NULL);
  times[0] = tv(SL_TIME, 0, 0, -SL_OFFSET_MAX, NULL);
  times[1] = tv(SL_TIME, 86399, 999999999, SL_OFFSET_MAX, NULL);
  times[2] = tv(SL_TIME, 45000, 0, 3600, NULL);
  times[3] = tv(SL_TIME, 45000, 0, 0, NULL);
  ldts[0] = tv(SL_LOCALDATETIME, DAY_MIN * day, 0, 0, NULL);
  ldts[1] = tv(SL_LOCALDATETIME, DAY_MAX * day + day - 1, 999999999, 0, NULL);
  ldts[2] = tv(SL_LOCALDATETIME, DAY_1 * day, 0, 0, NULL);
  ldts[3] = tv(SL_LOCALDATETIME, DAY_9999 * day + day - 1, 999999999, 0, NULL);
  /* The DateTime's local date-time (seconds + offset) is what is bounded. */
  dts[0] = tv(SL_DATETIME, DAY_MIN * day + SL_OFFSET_MAX, 0, -SL_OFFSET_MAX, NULL);
  dts[1] = tv(SL_DATETIME, DAY_MAX * day + day - 1 + SL_OFFSET_MAX, 999999999, -SL_OFFSET_MAX, NULL);
  dts[2] = tv(SL_DATETIME, 1709209800, 0, 3600, "Europe/Paris");
  dts[3] = tv(SL_DATETIME, 1709209800, 5, 0, "Etc/GMT+0");
  dts[4] = tv(SL_DATETIME, -1, 999999999, 0, ZONE63);
  durs[0] = dv(0, 0, 0, 0);
  durs[1] = dv(14, 3, 4 * 3600 + 5 * 60 + 6, 7);
  durs[2] = dv(-14, -3, -1, -999999999);
  durs[3] = dv(INT64_MIN, INT64_MAX, INT64_MIN, 0);
  durs[4] = dv(1, -1, 0, -5); /* no seconds: nanos of either sign */
  points[0] = pv(SL_SRID_CARTESIAN, 1.5, -2.25, 0);
  points[1] = pv(SL_SRID_CARTESIAN_3D, -0.0, 1e300, -1e-300);
  points[2] = pv(SL_SRID_WGS84, 12.994823, 55.612191, 0);
  points[3] = pv(SL_SRID_WGS84_3D, -180, 90, 8848.86);
  points[4] = pv(SL_SRID_WGS84, 400, -95, 0); /* kept as written */
}

static size_t all_props(sl_prop *out) {
  static char keys[64][32];
  size_t n = 0;
  struct {
    const char *name;
    sl_kind kind;
    sl_value *v;
    size_t count;
  } sets[] = {{"date", SL_DATE, dates, SL_ARRAY_LEN(dates)},
              {"ltime", SL_LOCALTIME, ltimes, SL_ARRAY_LEN(ltimes)},
              {"time", SL_TIME, times, SL_ARRAY_LEN(times)},
              {"ldt", SL_LOCALDATETIME, ldts, SL_ARRAY_LEN(ldts)},
              {"dt", SL_DATETIME, dts, SL_ARRAY_LEN(dts)},
              {"dur", SL_DURATION, durs, SL_ARRAY_LEN(durs)},
              {"pt", SL_POINT, points, SL_ARRAY_LEN(points)}};
  for (size_t s = 0; s < SL_ARRAY_LEN(sets); s++) {
    for (size_t i = 0; i < sets[s].count; i++) {
      snprintf(keys[n], sizeof keys[n], "%s%zu", sets[s].name, i);
      out[n] = (sl_prop){keys[n], sets[s].v[i]};
      n++;
    }
    snprintf(keys[n], sizeof keys[n], "%s_list", sets[s].name);
    out[n] = (sl_prop){keys[n], lst(sets[s].kind, sets[s].count, sets[s].v)};
    n++;
    snprintf(keys[n], sizeof keys[n], "%s_empty", sets[s].name);
    out[n] = (sl_prop){keys[n], lst(sets[s].kind, 0, NULL)};
    n++;
  }
  return n;
}

static void check_props(sl_store *st, uint64_t id, const sl_prop *props, size_t n) {
  sl_view *v;
  OK(sl_view_begin(st, &v));
  for (size_t i = 0; i < n; i++) {
    sl_value out;
    OK(sl_view_node_prop(v, id, props[i].key, &out));
    if (!sl_value_equal(&out, &props[i].value)) fail_msg("property %s changed on the way", props[i].key);
  }
  sl_node node;
  OK(sl_view_node(v, id, &node));
  assert_int_equal(node.nprops, n);
  sl_view_end(v);
}

/* Every kind and a list of each: commit, reopen, read; the log replayed
 * into a new store holds the same; set_prop (the other op) too. */
static void values_new_kinds_round_trip(void **state) {
  (void)state;
  fill_values();
  char *dir = new_dir("values_round_trip");
  sl_store *st = create_open(dir, NULL);
  sl_prop props[64];
  size_t n = all_props(props);
  sl_tx *tx;
  uint64_t id = SL_ID_NEW;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, props, n, &id));
  uint64_t id2 = SL_ID_NEW;
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, &id2));
  for (size_t i = 0; i < n; i++) OK(sl_tx_set_node_prop(tx, id2, props[i].key, &props[i].value));
  commit(tx);
  check_props(st, id, props, n);
  sl_store_close(st);
  OK(sl_store_open(dir, 0, &st));
  check_props(st, id, props, n);
  check_props(st, id2, props, n);
  compare_with_replay(st, "values_round_trip_replay");
  sl_store_close(st);
  done_dir(dir);
}

static int dump_to(sl_store *st, const char *path, const sl_dump_options *o) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail_msg("%s: %s", path, strerror(errno));
  int rc = o ? sl_dump_incremental(st, fd, o, NULL) : sl_dump_full(st, fd, NULL, NULL);
  close(fd);
  return rc;
}

/* LMDB removed and rebuilt from the log; a full dump loaded into a new
 * store and an incremental one onto it: every kind arrives as itself. */
static void values_rebuild_dump_load(void **state) {
  (void)state;
  fill_values();
  char *dir = new_dir("values_dump");
  char *src = sub(dir, "src"), *dst = sub(dir, "dst"), *full = sub(dir, "full.dump"), *incr = sub(dir, "incr.dump");
  sl_store *st = create_open(src, NULL);
  sl_prop props[64];
  size_t n = all_props(props), half = n / 2;
  sl_tx *tx;
  uint64_t id = SL_ID_NEW;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, props, half, &id));
  commit(tx);
  OK(dump_to(st, full, NULL));
  OK(sl_tx_begin(st, &tx));
  for (size_t i = half; i < n; i++) OK(sl_tx_set_node_prop(tx, id, props[i].key, &props[i].value));
  commit(tx);
  sl_dump_options io = {.from_txid = 2};
  OK(dump_to(st, incr, &io));
  sl_store_close(st);

  /* Rebuild: data.mdb gone, the log replayed. */
  char *data = sub(src, "data.mdb"), *lock = sub(src, "lock.mdb");
  assert_int_equal(unlink(data), 0);
  unlink(lock);
  tu_capture_begin();
  OK(sl_store_open(src, 0, &st));
  free(tu_capture_end());
  check_props(st, id, props, n);

  sl_store *lt;
  OK(sl_load_full(full, dst, NULL, NULL));
  OK(sl_store_open(dst, 0, &lt));
  check_props(lt, id, props, half);
  OK(sl_load_incremental(incr, lt, NULL, NULL));
  check_props(lt, id, props, n);
  compare_stores(st, lt);
  sl_store_close(lt);
  sl_store_close(st);
  free(data), free(lock), free(src), free(dst), free(full), free(incr);
  done_dir(dir);
}

/* value.c's codecs directly: every value through LMDB bytes and through a
 * packed Shiplog__Value; every truncation of the LMDB bytes and bytes that
 * decode to a value out of range are SL_ECORRUPT, never a crash. */
static void values_codecs(void **state) {
  (void)state;
  fill_values();
  sl_prop props[64];
  size_t n = all_props(props);
  sl_arena a;
  sl_arena_init(&a, NULL);
  for (size_t i = 0; i < n; i++) {
    const sl_value *v = &props[i].value;
    size_t len = sl__value_encoded_size(v);
    uint8_t *buf = malloc(len);
    sl__value_encode(v, buf);
    sl_value out;
    OK(sl__value_decode(buf, len, &a, &out));
    if (!sl_value_equal(&out, v)) fail_msg("%s: LMDB bytes decode to another value", props[i].key);
    for (size_t cut = 0; cut < len; cut++)
      if (sl__value_decode(buf, cut, &a, &out) == 0)
        fail_msg("%s: %zu of %zu bytes decoded", props[i].key, cut, len);
    free(buf);

    Shiplog__Value *pb;
    OK(sl__value_to_pb(&a, v, &pb));
    size_t plen = shiplog__value__get_packed_size(pb);
    uint8_t *pbuf = malloc(plen + 1);
    shiplog__value__pack(pb, pbuf);
    ProtobufCAllocator al;
    sl__arena_pb_allocator(&a, &al);
    Shiplog__Value *back = shiplog__value__unpack(&al, plen, pbuf);
    assert_non_null(back);
    OK(sl__value_from_pb(&a, back, &out));
    if (!sl_value_equal(&out, v)) fail_msg("%s: the log's value reads back as another", props[i].key);
    free(pbuf);
    sl_arena_reset(&a);
  }
  /* Out-of-range payloads: a date past year 999999999, a LocalTime of
   * 86400 s, a 2D point with z bytes, an offset of 18 h + 1 s, a zone with
   * a space, a bool of 2, a list's date before year -999999999, a zone with
   * a NUL inside. */
  uint8_t date[9] = {SL_DATE}, lt[9] = {SL_LOCALTIME}, pt[29] = {SL_POINT}, tm[13] = {SL_TIME};
  uint8_t dt[17 + 1 + 3] = {SL_DATETIME}, bl[2] = {SL_BOOL, 2}, list[6 + 8] = {SL_LIST, SL_DATE, 1};
  uint8_t dtnul[17 + 1 + 3] = {SL_DATETIME, [17] = 3, 'U', 0, 'C'};
  sl_put_le64(date + 1, (uint64_t)(DAY_MAX + 1));
  sl_put_le64(lt + 1, (uint64_t)86400 * 1000000000);
  sl_put_le32(pt + 1, SL_SRID_CARTESIAN);
  sl_put_le32(tm + 9, SL_OFFSET_MAX + 1);
  dt[17] = 3;
  memcpy(dt + 18, "a b", 3);
  sl_put_le64(list + 6, (uint64_t)(DAY_MIN - 1));
  struct {
    const uint8_t *b;
    size_t n;
  } bad[] = {{date, sizeof date}, {lt, sizeof lt}, {pt, sizeof pt}, {tm, sizeof tm},
             {dt, sizeof dt},     {bl, sizeof bl}, {list, sizeof list}, {dtnul, sizeof dtnul}};
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    sl_value out;
    ERR(SL_ECORRUPT, sl__value_decode(bad[i].b, bad[i].n, &a, &out));
  }
  /* A 2D point of 28 bytes (z given) is one 8 bytes too long. */
  sl_put_le32(pt + 1, SL_SRID_CARTESIAN_3D);
  sl_value out;
  OK(sl__value_decode(pt, sizeof pt, &a, &out));
  sl_put_le32(pt + 1, SL_SRID_WGS84);
  ERR(SL_ECORRUPT, sl__value_decode(pt, sizeof pt, &a, &out));
  /* The log's Point: z present exactly for the 3D SRIDs; kinds in the
   * wrong array of a list. */
  Shiplog__Point p = SHIPLOG__POINT__INIT;
  p.srid = SL_SRID_WGS84;
  p.has_z = 1;
  Shiplog__Value pv2 = SHIPLOG__VALUE__INIT;
  pv2.kind_case = SHIPLOG__VALUE__KIND_POINT_VALUE;
  pv2.point_value = &p;
  ERR(SL_EINVAL, sl__value_from_pb(&a, &pv2, &out));
  p.srid = SL_SRID_WGS84_3D;
  OK(sl__value_from_pb(&a, &pv2, &out));
  Shiplog__Duration d = SHIPLOG__DURATION__INIT, *dp = &d;
  Shiplog__ValueList l = SHIPLOG__VALUE_LIST__INIT;
  l.has_kind = 1;
  l.kind = SHIPLOG__VALUE_LIST__KIND__KIND_DATE;
  l.n_durations = 1;
  l.durations = &dp;
  Shiplog__Value lv = SHIPLOG__VALUE__INIT;
  lv.kind_case = SHIPLOG__VALUE__KIND_LIST_VALUE;
  lv.list_value = &l;
  ERR(SL_EINVAL, sl__value_from_pb(&a, &lv, &out));
  l.kind = SHIPLOG__VALUE_LIST__KIND__KIND_DURATION;
  OK(sl__value_from_pb(&a, &lv, &out));
  assert_int_equal(out.len, 1);
  assert_int_equal(out.elem_kind, SL_DURATION);
  sl_arena_free(&a);
}

/* Values out of range are refused naming the key and the reason; nothing
 * is written. */
static void values_refused(void **state) {
  (void)state;
  fill_values();
  char *dir = new_dir("values_refused");
  sl_store *st = create_open(dir, NULL);
  sl_value ok2[] = {dates[0], dates[1]};
  sl_value bad_list[] = {dates[0], tv(SL_DATE, DAY_MAX + 1, 0, 0, NULL)};
  sl_value mixed[] = {dates[0], ltimes[0]};
  struct {
    sl_value v;
    const char *why;
  } cases[] = {
      {tv(SL_DATE, DAY_MIN - 1, 0, 0, NULL), "year outside"},
      {tv(SL_DATE, DAY_MAX + 1, 0, 0, NULL), "year outside"},
      {tv(SL_DATE, 0, 1, 0, NULL), "a date with nanoseconds"},
      {tv(SL_LOCALTIME, 86400, 0, 0, NULL), "second of the day"},
      {tv(SL_LOCALTIME, -1, 0, 0, NULL), "second of the day"},
      {tv(SL_LOCALTIME, 0, 1000000000, 0, NULL), "nanoseconds outside"},
      {tv(SL_LOCALTIME, 0, -1, 0, NULL), "nanoseconds outside"},
      {tv(SL_LOCALTIME, 0, 0, 60, NULL), "an offset on a kind"},
      {tv(SL_TIME, 0, 0, SL_OFFSET_MAX + 1, NULL), "offset outside"},
      {tv(SL_TIME, 0, 0, 0, "UTC"), "a time zone on a kind"},
      {tv(SL_LOCALDATETIME, (DAY_MAX + 1) * 86400, 0, 0, NULL), "year outside"},
      {tv(SL_LOCALDATETIME, INT64_MIN, 0, 0, NULL), "year outside"},
      {tv(SL_DATETIME, DAY_MIN * 86400, 0, -1, NULL), "year outside"},
      {tv(SL_DATETIME, INT64_MAX, 0, 0, NULL), "year outside"},
      {tv(SL_DATETIME, 0, 0, -SL_OFFSET_MAX - 1, NULL), "offset outside"},
      {tv(SL_DATETIME, 0, 0, 0, ""), "time zone name"},
      {tv(SL_DATETIME, 0, 0, 0, ZONE63 "x"), "time zone name"},
      {tv(SL_DATETIME, 0, 0, 0, "Europe/Par is"), "time zone name"},
      {tv(SL_DATETIME, 0, 0, 0, "/etc/passwd"), "time zone name"},
      {tv(SL_DATETIME, 0, 0, 0, "Europe//Paris"), "time zone name"},
      {tv(SL_DATETIME, 0, 0, 0, "../x"), "time zone name"},
      {dv(0, 0, 1, -1), "another sign"},
      {dv(0, 0, -1, 1), "another sign"},
      {dv(0, 0, 0, 1000000000), "duration nanoseconds outside"},
      {pv(1234, 0, 0, 0), "SRID"},
      {pv(SL_SRID_CARTESIAN, NAN, 0, 0), "not finite"},
      {pv(SL_SRID_WGS84_3D, 0, 0, INFINITY), "not finite"},
      {pv(SL_SRID_CARTESIAN, 0, 0, 1), "2D point with a z"},
      {pv(SL_SRID_CARTESIAN, 0, 0, -0.0), "2D point with a z"},
      {lst(SL_DATE, 2, bad_list), "list element 1: year outside"},
      {lst(SL_DATE, 2, mixed), "more than one kind"},
      {lst(SL_LIST, 1, ok2), "cannot be stored"},
      {(sl_value){.kind = 6 + 8}, "unknown kind"},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    sl_tx *tx;
    uint64_t id = SL_ID_NEW;
    sl_prop p = {"when", cases[i].v};
    OK(sl_tx_begin(st, &tx));
    ERR(SL_EINVAL, sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, &p, 1, &id));
    const char *e = sl_tx_error(tx);
    if (!e || !strstr(e, "property when") || !strstr(e, cases[i].why))
      fail_msg("case %zu: error \"%s\", expected one naming the key and \"%s\"", i, e ? e : "(none)", cases[i].why);
    sl_tx_abort(tx);
    /* set_prop refuses the same. */
    OK(sl_tx_begin(st, &tx));
    OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, &id));
    ERR(SL_EINVAL, sl_tx_set_node_prop(tx, id, "when", &cases[i].v));
    assert_non_null(strstr(sl_tx_error(tx), cases[i].why));
    sl_tx_abort(tx);
  }
  assert_int_equal(counts_of(st).nodes, 0);
  assert_int_equal(counts_of(st).applied_txid, 0);
  sl_store_close(st);
  done_dir(dir);
}

/* ---- ordering ------------------------------------------------------------------------------ */
static const char *show(const sl_value *v) {
  static char buf[4][160];
  static int k;
  char *b = buf[k++ & 3];
  switch (v->kind) {
  case SL_INT: snprintf(b, 160, "int %lld", (long long)v->u.i); break;
  case SL_DOUBLE: snprintf(b, 160, "double %.17g", v->u.d); break;
  case SL_STRING: snprintf(b, 160, "string \"%.*s\"", (int)v->len, v->u.s); break;
  case SL_LIST: snprintf(b, 160, "list of %d x%zu", v->elem_kind, v->len); break;
  case SL_DURATION:
    snprintf(b, 160, "duration %lld %lld %lld %d", (long long)v->u.dur.months, (long long)v->u.dur.days,
             (long long)v->u.dur.seconds, v->u.dur.nanos);
    break;
  case SL_POINT: snprintf(b, 160, "point %u %g %g %g", v->u.pt.srid, v->u.pt.x, v->u.pt.y, v->u.pt.z); break;
  default:
    snprintf(b, 160, "kind %d %lld.%09d %+d %s", v->kind, (long long)v->u.t.seconds, v->u.t.nanos, v->u.t.offset,
             v->u.t.zone ? v->u.t.zone : "");
  }
  return b;
}

/* A list sorted as Neo4j sorts it (ORDER BY); groups of values that are
 * one for DISTINCT share a number. sl_value_order must give every pair the
 * order of their places. */
static void values_order_table(void **state) {
  (void)state;
  static const sl_value i1[] = {{.kind = SL_INT, .u.i = 1}}, i1b[] = {{.kind = SL_INT, .u.i = 1}, {.kind = SL_INT, .u.i = 0}};
  static const sl_value d1[] = {{.kind = SL_DOUBLE, .u.d = 1.0}}, s1[] = {{.kind = SL_STRING, .len = 1, .u.s = "a"}};
  static const sl_value dt1[] = {{.kind = SL_DATE}};
  static const uint8_t b1[] = {1}, bneg[] = {0xff}, b10[] = {1, 0};
  struct {
    int group;
    sl_value v;
  } t[] = {
      /* LIST (and bytes: byte[] is a list of signed integers) */
      {1, lst(SL_NULL, 0, NULL)},
      {1, lst(SL_DATE, 0, NULL)},
      {1, {.kind = SL_BYTES, .len = 0}},
      {2, lst(SL_DATE, 1, dt1)},   /* by element: temporal ranks below strings, */
      {3, lst(SL_STRING, 1, s1)}, /* strings below numbers */
      {4, {.kind = SL_BYTES, .len = 1, .u.bytes = bneg}},
      {5, lst(SL_INT, 1, i1)},
      {5, lst(SL_DOUBLE, 1, d1)},
      {5, {.kind = SL_BYTES, .len = 1, .u.bytes = b1}},
      {6, lst(SL_INT, 2, i1b)},
      {6, {.kind = SL_BYTES, .len = 2, .u.bytes = b10}},
      /* POINT: by SRID, then coordinates */
      {7, pv(SL_SRID_WGS84, -1, 5, 0)},
      {8, pv(SL_SRID_WGS84, 0, -5, 0)},
      {9, pv(SL_SRID_WGS84_3D, 0, 0, 0)},
      {10, pv(SL_SRID_CARTESIAN, -0.0, 0, 0)},
      {11, pv(SL_SRID_CARTESIAN, 0.0, 0, 0)},
      {12, pv(SL_SRID_CARTESIAN_3D, 0, 0, -1)},
      /* DATETIME: instant, then offset, then fixed offsets before zones, then zone names */
      {13, tv(SL_DATETIME, -1, 999999999, 0, NULL)},
      {14, tv(SL_DATETIME, 0, 0, -3600, NULL)},
      {15, tv(SL_DATETIME, 0, 0, 0, NULL)},
      {16, tv(SL_DATETIME, 0, 0, 0, "Etc/UTC")},
      {17, tv(SL_DATETIME, 0, 0, 0, "UTC")},
      {18, tv(SL_DATETIME, 0, 0, 3600, "Europe/Paris")},
      {19, tv(SL_DATETIME, 0, 1, -SL_OFFSET_MAX, NULL)},
      /* LOCALDATETIME, DATE */
      {20, tv(SL_LOCALDATETIME, DAY_MIN * 86400, 0, 0, NULL)},
      {21, tv(SL_LOCALDATETIME, 0, 0, 0, NULL)},
      {22, tv(SL_LOCALDATETIME, 0, 1, 0, NULL)},
      {23, tv(SL_DATE, DAY_MIN, 0, 0, NULL)},
      {24, tv(SL_DATE, DAY_MAX, 0, 0, NULL)},
      /* TIME: by UTC time of day, then offset */
      {25, tv(SL_TIME, 0, 0, 0, NULL)},       /* 00:00Z */
      {26, tv(SL_TIME, 3600, 0, 3600, NULL)}, /* 00:00Z as 01:00+01:00: the larger offset after */
      {27, tv(SL_TIME, 0, 1, 0, NULL)},
      {28, tv(SL_TIME, 86399, 0, -SL_OFFSET_MAX, NULL)}, /* 41:59:59Z */
      /* LOCALTIME */
      {29, tv(SL_LOCALTIME, 0, 0, 0, NULL)},
      {30, tv(SL_LOCALTIME, 86399, 999999999, 0, NULL)},
      /* DURATION: average length, then nanos, months, days, seconds */
      {31, dv(INT64_MIN, INT64_MIN, INT64_MIN, -1)}, /* no overflow borrowing a second */
      {32, dv(INT64_MIN, INT64_MIN, INT64_MIN, 0)},
      {33, dv(0, 0, -1, -1)},
      {34, dv(0, 0, -1, 0)},
      {35, dv(0, 0, 0, 0)},
      {36, dv(0, 0, 86400, 0)}, /* 86400 s */
      {37, dv(0, 1, 0, 0)},     /* the same length with more days after */
      {38, dv(1, 0, 0, 0)},     /* 2,629,746 s */
      {39, dv(0, 0, 2629746, 1)},
      {40, dv(INT64_MAX, INT64_MAX, INT64_MAX, 0)}, /* no overflow */
      {41, dv(INT64_MAX, INT64_MAX, INT64_MAX, 1)},
      /* STRING by code point */
      {42, vstr("")},
      {43, vstr("A")},
      {44, vstr("a")},
      {45, vstr("ab")},
      {46, vstr("\xef\xbf\xbd")},    /* U+FFFD */
      {47, vstr("\xf0\x9f\x98\x80")}, /* U+1F600 after it, unlike UTF-16 */
      /* BOOLEAN */
      {48, {.kind = SL_BOOL, .u.b = false}},
      {49, {.kind = SL_BOOL, .u.b = true}},
      /* NUMBER: exact across ints and doubles, NaN last */
      {50, dbl(-INFINITY)},
      {51, vint(INT64_MIN)},
      {52, dbl(-9223372036854775808.0 + 2048)},
      {53, dbl(-1.5)},
      {54, vint(-1)},
      {55, dbl(-0.5)},
      {56, vint(0)},
      {56, dbl(0.0)},
      {56, dbl(-0.0)},
      {57, dbl(0.5)},
      {58, vint(1)},
      {58, dbl(1.0)},
      {59, vint(INT64_MAX - 1)},
      {60, vint(INT64_MAX)},
      {61, dbl(9223372036854775808.0)}, /* the double nearest INT64_MAX lies above it */
      {62, dbl(INFINITY)},
      {63, dbl(NAN)},
      {63, dbl(-NAN)},
      /* null last */
      {64, {.kind = SL_NULL}},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(t); i++) {
    for (size_t j = 0; j < SL_ARRAY_LEN(t); j++) {
      int want = (t[i].group > t[j].group) - (t[i].group < t[j].group);
      int got = sl_value_order(&t[i].v, &t[j].v);
      if (got != want) fail_msg("order(%s, %s) = %d, expected %d (rows %zu, %zu)", show(&t[i].v), show(&t[j].v), got, want, i, j);
    }
  }
  assert_true(sl_value_kind_rank(SL_LIST) < sl_value_kind_rank(SL_POINT));
  assert_true(sl_value_kind_rank(SL_BYTES) == sl_value_kind_rank(SL_LIST));
  assert_true(sl_value_kind_rank(SL_INT) == sl_value_kind_rank(SL_DOUBLE));
  assert_true(sl_value_kind_rank(SL_NULL) > sl_value_kind_rank(SL_DOUBLE));
  assert_true(sl_value_kind_rank(SL_LIST) > 3); /* room for map, node, relationship */
  ERR(SL_EINVAL, sl_value_kind_rank((sl_kind)6 + 8));
}

/* Cypher's `<` and `=`: comparable or not (null), and what `=` says. */
static void values_compare_table(void **state) {
  (void)state;
  static const sl_value i12[] = {{.kind = SL_INT, .u.i = 1}, {.kind = SL_INT, .u.i = 2}};
  static const sl_value d12[] = {{.kind = SL_DOUBLE, .u.d = 1.0}, {.kind = SL_DOUBLE, .u.d = 2.0}};
  static const sl_value i13[] = {{.kind = SL_INT, .u.i = 1}, {.kind = SL_INT, .u.i = 3}};
  static const sl_value nan1[] = {{.kind = SL_DOUBLE, .u.d = NAN}};
  static const sl_value s1[] = {{.kind = SL_STRING, .len = 1, .u.s = "a"}};
  static const sl_value dur1[] = {{.kind = SL_DURATION}};
  static const uint8_t b12[] = {1, 2}, bff[] = {0xff};
  static const sl_value im1[] = {{.kind = SL_INT, .u.i = -1}};
  enum { NUL = -1, F = 0, T = 1 };
  enum { NC = 2 }; /* not comparable */
  struct {
    sl_value a, b;
    int cmp; /* -1, 0, 1, or NC */
    int eq;  /* T, F, NUL */
  } t[] = {
      {vint(1), dbl(1.0), 0, T},
      {vint(INT64_MAX), dbl(9223372036854775807.0), -1, F},
      {vint(2), dbl(1.5), 1, F},
      {dbl(0.0), dbl(-0.0), 0, T},
      {dbl(NAN), dbl(NAN), NC, F},
      {dbl(NAN), vint(1), NC, F},
      {vint(1), vstr("1"), NC, F},
      {vstr("a"), vstr("b"), -1, F},
      {vstr("b"), vstr("b"), 0, T},
      {(sl_value){.kind = SL_BOOL, .u.b = true}, (sl_value){.kind = SL_BOOL}, 1, F},
      {(sl_value){.kind = SL_NULL}, (sl_value){.kind = SL_NULL}, NC, NUL},
      {(sl_value){.kind = SL_NULL}, vint(1), NC, NUL},
      {lst(SL_INT, 2, i12), lst(SL_DOUBLE, 2, d12), 0, T},
      {lst(SL_INT, 2, i12), lst(SL_INT, 2, i13), -1, F},
      {lst(SL_INT, 1, i12), lst(SL_INT, 2, i12), -1, F},
      {lst(SL_INT, 2, i12), lst(SL_STRING, 1, s1), NC, F},
      {lst(SL_NULL, 0, NULL), lst(SL_STRING, 1, s1), -1, F},
      {lst(SL_DOUBLE, 1, nan1), lst(SL_DOUBLE, 1, nan1), NC, F},
      {lst(SL_DURATION, 1, dur1), lst(SL_DURATION, 1, dur1), NC, T},
      {(sl_value){.kind = SL_BYTES, .len = 2, .u.bytes = b12}, lst(SL_INT, 2, i12), 0, T},
      {(sl_value){.kind = SL_BYTES, .len = 1, .u.bytes = bff}, lst(SL_INT, 1, im1), 0, T},
      {(sl_value){.kind = SL_BYTES, .len = 1, .u.bytes = bff}, lst(SL_INT, 2, i12), -1, F},
      /* temporal */
      {tv(SL_DATE, 1, 0, 0, NULL), tv(SL_DATE, 2, 0, 0, NULL), -1, F},
      {tv(SL_DATE, 0, 0, 0, NULL), tv(SL_LOCALDATETIME, 0, 0, 0, NULL), NC, F}, /* a Date is not a DateTime */
      {tv(SL_DATETIME, 0, 0, 0, NULL), tv(SL_DATETIME, 0, 0, 0, NULL), 0, T},
      {tv(SL_DATETIME, 0, 0, 0, NULL), tv(SL_DATETIME, 1, 0, -7200, NULL), -1, F},
      {tv(SL_DATETIME, 0, 0, 3600, "Europe/Paris"), tv(SL_DATETIME, 0, 0, 3600, NULL), 1, F},
      {tv(SL_DATETIME, 0, 0, 3600, "Europe/Paris"), tv(SL_DATETIME, 0, 0, 3600, "Europe/Paris"), 0, T},
      {tv(SL_TIME, 3600, 0, 3600, NULL), tv(SL_TIME, 1, 0, 0, NULL), -1, F},
      {tv(SL_LOCALTIME, 5, 0, 0, NULL), tv(SL_TIME, 5, 0, 0, NULL), NC, F},
      /* durations: equal by components, never < */
      {dv(0, 1, 0, 0), dv(0, 0, 86400, 0), NC, F},
      {dv(1, 2, 3, 4), dv(1, 2, 3, 4), NC, T},
      {dv(0, 0, 0, 0), dv(0, 0, 1, 0), NC, F},
      /* points: equal or not, never < */
      {pv(SL_SRID_CARTESIAN, 1, 2, 0), pv(SL_SRID_CARTESIAN, 1, 2, 0), NC, T},
      {pv(SL_SRID_CARTESIAN, 1, 2, 0), pv(SL_SRID_CARTESIAN, 3, 4, 0), NC, F},
      {pv(SL_SRID_CARTESIAN, 1, 2, 0), pv(SL_SRID_WGS84, 1, 2, 0), NC, F},
      {pv(SL_SRID_CARTESIAN, 1, 2, 0), vint(1), NC, F},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(t); i++) {
    for (int swap = 0; swap < 2; swap++) {
      const sl_value *a = swap ? &t[i].b : &t[i].a, *b = swap ? &t[i].a : &t[i].b;
      int cmp = 99, eq = 99;
      int comparable = sl_value_compare(a, b, &cmp, &eq);
      int want = t[i].cmp == NC ? NC : swap ? -t[i].cmp : t[i].cmp;
      if ((want == NC) != !comparable || (comparable && cmp != want) || eq != t[i].eq)
        fail_msg("row %zu%s: compare(%s, %s) = %d cmp %d eq %d, expected cmp %d eq %d", i, swap ? " swapped" : "",
                 show(a), show(b), comparable, cmp, eq, want, t[i].eq);
      assert_int_equal(sl_value_compare(a, b, &cmp, NULL), comparable);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(values_new_kinds_round_trip),
      cmocka_unit_test(values_rebuild_dump_load),
      cmocka_unit_test(values_codecs),
      cmocka_unit_test(values_refused),
      cmocka_unit_test(values_order_table),
      cmocka_unit_test(values_compare_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
