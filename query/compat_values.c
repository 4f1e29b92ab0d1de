/*
 * Stand-ins for the value functions that include/shiplog.h declares and the
 * values-store / values-text branches implement (sl_value_order,
 * sl_value_compare, sl_value_kind_rank, sl_temporal_*, sl_srid_*). They are
 * weak: once the store's own definitions are linked they win and these are
 * dead code, to be deleted when those branches are merged. They cover the
 * older kinds only (booleans, numbers, strings, bytes, lists); temporal and
 * spatial values compare by their fields and have no text.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"

#define WEAK __attribute__((weak))

WEAK int sl_value_kind_rank(sl_kind kind) {
  switch (kind) {
  case SL_LIST: return 0;
  case SL_DATETIME: return 1;
  case SL_LOCALDATETIME: return 2;
  case SL_DATE: return 3;
  case SL_TIME: return 4;
  case SL_LOCALTIME: return 5;
  case SL_DURATION: return 6;
  case SL_STRING: return 7;
  case SL_BOOL: return 8;
  case SL_INT:
  case SL_DOUBLE: return 9;
  case SL_BYTES: return 10;
  case SL_POINT: return 11;
  default: return 12;
  }
}

static int num_order(const sl_value *a, const sl_value *b) {
  if (a->kind == SL_INT && b->kind == SL_INT) return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
  double x = a->kind == SL_INT ? (double)a->u.i : a->u.d, y = b->kind == SL_INT ? (double)b->u.i : b->u.d;
  if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
  if (x < y) return -1;
  if (x > y) return 1;
  /* equal as doubles: exact for ints beyond 2^53 */
  if (a->kind == SL_INT && b->kind == SL_DOUBLE && fabs(y) < 9.2e18) {
    int64_t yi = (int64_t)y;
    return a->u.i < yi ? -1 : a->u.i > yi;
  }
  if (a->kind == SL_DOUBLE && b->kind == SL_INT && fabs(x) < 9.2e18) {
    int64_t xi = (int64_t)x;
    return xi < b->u.i ? -1 : xi > b->u.i;
  }
  return 0;
}

static int bytes_order(const void *a, size_t an, const void *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c) return c < 0 ? -1 : 1;
  return an < bn ? -1 : an > bn;
}

WEAK int sl_value_order(const sl_value *a, const sl_value *b) {
  int ra = sl_value_kind_rank(a->kind), rb = sl_value_kind_rank(b->kind);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (a->kind) {
  case SL_BOOL: return (int)a->u.b - (int)b->u.b;
  case SL_INT:
  case SL_DOUBLE: return num_order(a, b);
  case SL_STRING:
  case SL_BYTES: return bytes_order(a->u.s, a->len, b->u.s, b->len);
  case SL_LIST: {
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++) {
      sl_value x = a->u.items[i], y = b->u.items[i];
      x.kind = a->elem_kind;
      y.kind = b->elem_kind;
      int c = sl_value_order(&x, &y);
      if (c) return c;
    }
    return a->len < b->len ? -1 : a->len > b->len;
  }
  case SL_POINT: {
    if (a->u.pt.srid != b->u.pt.srid) return a->u.pt.srid < b->u.pt.srid ? -1 : 1;
    if (a->u.pt.x != b->u.pt.x) return a->u.pt.x < b->u.pt.x ? -1 : 1;
    if (a->u.pt.y != b->u.pt.y) return a->u.pt.y < b->u.pt.y ? -1 : 1;
    return a->u.pt.z < b->u.pt.z ? -1 : a->u.pt.z > b->u.pt.z;
  }
  case SL_DURATION:
    if (a->u.dur.months != b->u.dur.months) return a->u.dur.months < b->u.dur.months ? -1 : 1;
    if (a->u.dur.days != b->u.dur.days) return a->u.dur.days < b->u.dur.days ? -1 : 1;
    if (a->u.dur.seconds != b->u.dur.seconds) return a->u.dur.seconds < b->u.dur.seconds ? -1 : 1;
    return a->u.dur.nanos < b->u.dur.nanos ? -1 : a->u.dur.nanos > b->u.dur.nanos;
  default:
    if (a->u.t.seconds != b->u.t.seconds) return a->u.t.seconds < b->u.t.seconds ? -1 : 1;
    return a->u.t.nanos < b->u.t.nanos ? -1 : a->u.t.nanos > b->u.t.nanos;
  }
}

WEAK int sl_value_compare(const sl_value *a, const sl_value *b, int *cmp, int *eq) {
  bool anum = a->kind == SL_INT || a->kind == SL_DOUBLE, bnum = b->kind == SL_INT || b->kind == SL_DOUBLE;
  if (a->kind != b->kind && !(anum && bnum)) {
    if (eq) *eq = 0;
    return 0;
  }
  if (anum && ((a->kind == SL_DOUBLE && isnan(a->u.d)) || (b->kind == SL_DOUBLE && isnan(b->u.d)))) {
    if (eq) *eq = 0;
    return 0;
  }
  int c = sl_value_order(a, b);
  if (eq) *eq = c == 0;
  if (a->kind == SL_DURATION || a->kind == SL_POINT || a->kind == SL_LIST) return 0;
  *cmp = c;
  return 1;
}

WEAK int sl_temporal_parse(sl_kind kind, const char *text, size_t len, const char *default_zone, sl_value *out,
                           char *zone_buf, char *errbuf, size_t errlen) {
  (void)kind, (void)text, (void)len, (void)default_zone, (void)out, (void)zone_buf;
  snprintf(errbuf, errlen, "temporal values are not supported by this build yet");
  return SL_EINVAL;
}

WEAK int sl_temporal_format(const sl_value *v, char *buf, size_t size) {
  (void)v;
  if (size) buf[0] = 0;
  return SL_EINVAL;
}

WEAK const char *sl_srid_name(uint32_t srid) {
  switch (srid) {
  case SL_SRID_CARTESIAN: return "cartesian";
  case SL_SRID_CARTESIAN_3D: return "cartesian-3d";
  case SL_SRID_WGS84: return "wgs-84";
  case SL_SRID_WGS84_3D: return "wgs-84-3d";
  default: return NULL;
  }
}

WEAK uint32_t sl_srid_from_name(const char *name, size_t len) {
  static const uint32_t ids[] = {SL_SRID_CARTESIAN, SL_SRID_CARTESIAN_3D, SL_SRID_WGS84, SL_SRID_WGS84_3D};
  for (size_t i = 0; i < 4; i++) {
    const char *n = sl_srid_name(ids[i]);
    if (strlen(n) == len && !strncasecmp(n, name, len)) return ids[i];
  }
  return 0;
}
