/*
 * Neo4j's ordering and comparison of property values, in one place: the
 * query engine's ORDER BY, DISTINCT, index keys and its `=` / `<` all call
 * these three functions (shiplog.h).
 *
 * Sources: the Cypher manual (Neo4j 5), "Equality, ordering, and comparison
 * of value types" (values-and-types/ordering-equality-comparison), "Temporal
 * values" and "Spatial values" (values-and-types/temporal, /spatial), and
 * where the manual is silent, what Neo4j's own comparators do
 * (org.neo4j.values: AnyValueComparator, ValueGroup, DateTimeValue,
 * DurationValue, PointValue).
 *
 * ORDERABILITY (sl_value_order, a total order; 0 exactly when two values
 * are one for DISTINCT). Kinds rank as Neo4j's groups, ascending:
 *     1 MAP  2 NODE  3 RELATIONSHIP        (the query engine's)
 *     4 LIST (lists and bytes)  5 PATH     (path: the query engine's)
 *     6 POINT  7 DATETIME  8 LOCALDATETIME  9 DATE  10 TIME  11 LOCALTIME
 *    12 DURATION  13 STRING  14 BOOLEAN  15 NUMBER  16 null
 * Within a rank:
 *   numbers   by value, ints and doubles mixed and compared exactly (2^63-1
 *             is below 9.223372036854775808e18, the double nearest it);
 *             1 and 1.0, 0.0 and -0.0 are one; NaN after every number.
 *   strings   by Unicode code point (UTF-8 bytewise is the same order).
 *   booleans  false < true.
 *   lists     element by element (each by this order), a prefix first. Bytes
 *             are Neo4j's byte[]: a list of integers -128..127, so bytes 01 ff
 *             equal the list [1, -1].
 *   DateTime  by instant; at one instant by local date-time (the larger
 *             offset later), then fixed offsets before named zones, then by
 *             zone name (DateTimeValue.unsafeCompareTo).
 *   Time      by its UTC time of day, then by offset.
 *   Date, LocalDateTime, LocalTime  by their value.
 *   Duration  by its average length (a month 2,629,746 s, a day 86,400 s),
 *             then nanoseconds, months, days, seconds (DurationValue's
 *             COMPARATOR; computed in 128 bits, so never overflowing).
 *   Point     by SRID, then x, y, z (-0.0 before 0.0, PointValue.compareTo).
 *
 * COMPARABILITY (sl_value_compare, Cypher's `<` and `=`). Values of
 * different kinds are never equal and not comparable (`<` is null), numbers
 * excepted (1 = 1.0); NaN is comparable with nothing and equal to nothing
 * (NaN = NaN is false); null makes `=` null. Lists compare element by
 * element: the first pair that is not comparable makes the whole `<` null.
 * Durations are only equal or not (component by component: P1D <> PT24H),
 * never `<` (Neo4j: "Durations cannot be compared"). Points are only equal
 * or not: the manual's spatial page says Cypher does not compare spatial
 * values with <, <=, >, >= (null). Temporal values of one kind compare as
 * they order, so two DateTimes at one instant in different zones are not
 * equal (a Date is not a DateTime, spec/types.md).
 */
#include <math.h>
#include <string.h>

#include "store_int.h"

enum {
  RANK_LIST = 4,
  RANK_POINT = 6,
  RANK_DATETIME,
  RANK_LOCALDATETIME,
  RANK_DATE,
  RANK_TIME,
  RANK_LOCALTIME,
  RANK_DURATION,
  RANK_STRING,
  RANK_BOOLEAN,
  RANK_NUMBER,
  RANK_NULL
};

int sl_value_kind_rank(sl_kind kind) {
  switch (kind) {
  case SL_NULL: return RANK_NULL;
  case SL_BOOL: return RANK_BOOLEAN;
  case SL_INT:
  case SL_DOUBLE: return RANK_NUMBER;
  case SL_STRING: return RANK_STRING;
  case SL_BYTES:
  case SL_LIST: return RANK_LIST;
  case SL_DATE: return RANK_DATE;
  case SL_LOCALTIME: return RANK_LOCALTIME;
  case SL_TIME: return RANK_TIME;
  case SL_LOCALDATETIME: return RANK_LOCALDATETIME;
  case SL_DATETIME: return RANK_DATETIME;
  case SL_DURATION: return RANK_DURATION;
  case SL_POINT: return RANK_POINT;
  default: return SL_EINVAL;
  }
}

#define SIGN(a, b) (((a) > (b)) - ((a) < (b)))

/* ---- numbers ---------------------------------------------------------------------- */
/* An int against a double that is not NaN, exactly: a double at or past
 * +-2^63 lies beyond every int; otherwise its integral part converts to
 * int64 without loss, and the fraction breaks a tie. */
static int int_double(int64_t i, double d) {
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double whole = trunc(d);
  int64_t w = (int64_t)whole;
  if (i != w) return SIGN(i, w);
  return SIGN(0.0, d - whole);
}

/* Two numbers, neither NaN. */
static int number_cmp(const sl_value *a, const sl_value *b) {
  if (a->kind == SL_INT && b->kind == SL_INT) return SIGN(a->u.i, b->u.i);
  if (a->kind == SL_INT) return int_double(a->u.i, b->u.d);
  if (b->kind == SL_INT) return -int_double(b->u.i, a->u.d);
  return SIGN(a->u.d, b->u.d);
}

static bool is_nan(const sl_value *v) { return v->kind == SL_DOUBLE && isnan(v->u.d); }

/* ---- one kind ---------------------------------------------------------------------- */
/* Java's Double.compare: -0.0 < 0.0 (coordinates are never NaN). */
static int coord_cmp(double a, double b) {
  if (a != b) return SIGN(a, b);
  return SIGN(!signbit(a), !signbit(b));
}

static int duration_cmp(const sl_value *a, const sl_value *b) {
  /* Neo4j keeps nanos in 0..999,999,999, borrowing a second (which
   * INT64_MIN seconds cannot lend in 64 bits). */
  __extension__ __int128 sa = a->u.dur.seconds, sb = b->u.dur.seconds, la, lb;
  int32_t na = a->u.dur.nanos, nb = b->u.dur.nanos;
  if (na < 0) sa--, na += 1000000000;
  if (nb < 0) sb--, nb += 1000000000;
  la = (__int128)a->u.dur.months * 2629746 + (__int128)a->u.dur.days * 86400 + sa;
  lb = (__int128)b->u.dur.months * 2629746 + (__int128)b->u.dur.days * 86400 + sb;
  if (la != lb) return SIGN(la, lb);
  if (na != nb) return SIGN(na, nb);
  if (a->u.dur.months != b->u.dur.months) return SIGN(a->u.dur.months, b->u.dur.months);
  if (a->u.dur.days != b->u.dur.days) return SIGN(a->u.dur.days, b->u.dur.days);
  return SIGN(sa, sb);
}

static int point_cmp(const sl_value *a, const sl_value *b) {
  int c;
  if (a->u.pt.srid != b->u.pt.srid) return SIGN(a->u.pt.srid, b->u.pt.srid);
  if ((c = coord_cmp(a->u.pt.x, b->u.pt.x)) || (c = coord_cmp(a->u.pt.y, b->u.pt.y))) return c;
  return coord_cmp(a->u.pt.z, b->u.pt.z);
}

static int temporal_cmp(const sl_value *a, const sl_value *b) {
  const int64_t ns = 1000000000;
  int64_t x, y;
  switch (a->kind) {
  case SL_TIME: /* seconds < 86400 and |offset| <= 18 h: no overflow */
    x = (a->u.t.seconds - a->u.t.offset) * ns + a->u.t.nanos;
    y = (b->u.t.seconds - b->u.t.offset) * ns + b->u.t.nanos;
    if (x != y) return SIGN(x, y);
    return SIGN(a->u.t.offset, b->u.t.offset);
  case SL_DATETIME:
    if (a->u.t.seconds != b->u.t.seconds) return SIGN(a->u.t.seconds, b->u.t.seconds);
    if (a->u.t.nanos != b->u.t.nanos) return SIGN(a->u.t.nanos, b->u.t.nanos);
    if (a->u.t.offset != b->u.t.offset) return SIGN(a->u.t.offset, b->u.t.offset);
    if (!a->u.t.zone || !b->u.t.zone) return SIGN(a->u.t.zone != NULL, b->u.t.zone != NULL);
    x = strcmp(a->u.t.zone, b->u.t.zone);
    return SIGN(x, 0);
  default: /* SL_DATE, SL_LOCALTIME, SL_LOCALDATETIME */
    if (a->u.t.seconds != b->u.t.seconds) return SIGN(a->u.t.seconds, b->u.t.seconds);
    return SIGN(a->u.t.nanos, b->u.t.nanos);
  }
}

static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? SIGN(c, 0) : SIGN(an, bn);
}

/* Two values of one non-list kind other than numbers. */
static int same_kind_cmp(const sl_value *a, const sl_value *b) {
  switch (a->kind) {
  case SL_BOOL: return SIGN(a->u.b, b->u.b);
  case SL_STRING: return bytes_cmp(a->u.s, a->len, b->u.s, b->len);
  case SL_DURATION: return duration_cmp(a, b);
  case SL_POINT: return point_cmp(a, b);
  case SL_NULL: return 0;
  default: return temporal_cmp(a, b);
  }
}

/* ---- lists ---------------------------------------------------------------------- */
/* Element i of a list or of bytes (a Java byte: signed). */
static const sl_value *elem(const sl_value *v, size_t i, sl_value *tmp) {
  if (v->kind == SL_LIST) return &v->u.items[i];
  memset(tmp, 0, sizeof *tmp);
  tmp->kind = SL_INT;
  tmp->u.i = (int8_t)v->u.bytes[i];
  return tmp;
}

int sl_value_order(const sl_value *a, const sl_value *b) {
  int ra = sl_value_kind_rank(a->kind), rb = sl_value_kind_rank(b->kind);
  if (ra != rb) return SIGN(ra, rb);
  if (ra == RANK_NUMBER) {
    bool na = is_nan(a), nb = is_nan(b);
    if (na || nb) return SIGN(na, nb);
    return number_cmp(a, b);
  }
  if (ra != RANK_LIST) return same_kind_cmp(a, b);
  sl_value ta, tb;
  size_t n = a->len < b->len ? a->len : b->len;
  for (size_t i = 0; i < n; i++) {
    int c = sl_value_order(elem(a, i, &ta), elem(b, i, &tb));
    if (c) return c;
  }
  return SIGN(a->len, b->len);
}

/* Cypher's `=` on two list-ranked values: 1, 0, or -1 (null). */
static int list_eq(const sl_value *a, const sl_value *b) {
  sl_value ta, tb;
  int result = 1, eq;
  if (a->len != b->len) return 0;
  for (size_t i = 0; i < a->len; i++) {
    int cmp;
    sl_value_compare(elem(a, i, &ta), elem(b, i, &tb), &cmp, &eq);
    if (eq == 0) return 0;
    if (eq < 0) result = -1;
  }
  return result;
}

int sl_value_compare(const sl_value *a, const sl_value *b, int *cmp, int *eq) {
  int ra = sl_value_kind_rank(a->kind), rb = sl_value_kind_rank(b->kind), e = 0, comparable = 0, c = 0;
  if (ra == RANK_NULL || rb == RANK_NULL) {
    e = -1;
  } else if (ra != rb) {
    e = 0;
  } else if (ra == RANK_NUMBER) {
    if (!is_nan(a) && !is_nan(b)) {
      c = number_cmp(a, b);
      comparable = 1;
      e = c == 0;
    }
  } else if (ra == RANK_LIST) {
    sl_value ta, tb;
    size_t n = a->len < b->len ? a->len : b->len;
    e = list_eq(a, b);
    comparable = 1;
    for (size_t i = 0; i < n && comparable && !c; i++) {
      int ei;
      comparable = sl_value_compare(elem(a, i, &ta), elem(b, i, &tb), &c, &ei);
    }
    if (comparable && !c) c = SIGN(a->len, b->len);
  } else {
    c = same_kind_cmp(a, b);
    e = c == 0;
    comparable = a->kind != SL_DURATION && a->kind != SL_POINT;
  }
  if (comparable) *cmp = c;
  if (eq) *eq = e;
  return comparable;
}
