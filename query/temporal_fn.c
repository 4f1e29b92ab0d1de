/*
 * Temporal functions beyond the constructors: <type>.truncate(unit, value
 * [, overrides]). Truncation is done on the value's local fields: they are
 * read with temporal_field, the units below `unit` are reset, the overrides
 * map is laid over them, and the result is built by temporal_from_map, the
 * same path as date({..}) — so validation and zone handling are shared.
 * Week units give week-based fields ({year: weekYear, week, dayOfWeek}).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"

enum { U_MILLENNIUM, U_CENTURY, U_DECADE, U_YEAR, U_WEEKYEAR, U_QUARTER, U_MONTH, U_WEEK, U_DAY,
       U_HOUR, U_MINUTE, U_SECOND, U_MILLISECOND, U_MICROSECOND, U_NANOSECOND };

static const char *const unit_names[] = {"millennium", "century", "decade", "year", "weekYear",
                                         "quarter", "month", "week", "day", "hour", "minute",
                                         "second", "millisecond", "microsecond", "nanosecond"};

static sl_kind kind_of_fn(const char *name) {
  size_t n = strcspn(name, ".");
  if (n == 4 && !strncasecmp(name, "date", 4)) return SL_DATE;
  if (n == 4 && !strncasecmp(name, "time", 4)) return SL_TIME;
  if (n == 8 && !strncasecmp(name, "datetime", 8)) return SL_DATETIME;
  if (n == 9) return SL_LOCALTIME;
  return SL_LOCALDATETIME;
}

static int64_t floor_to(int64_t v, int64_t step) { return (v >= 0 ? v : v - step + 1) / step * step; }

static int field(qctx *q, qexpr *e, const qv *t, const char *key, int64_t *out) {
  qv v;
  if (temporal_field(q, e, t, key, &v)) return SL_EINVAL;
  *out = v.u.v.u.i;
  return 0;
}

int fn_truncate(qctx *q, qexpr *e, qv *args, qv *out) {
  const qv *u = &args[0], *t = &args[1], *over = e->nargs > 2 ? &args[2] : NULL;
  if (u->kind == SL_NULL || t->kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (u->kind != SL_STRING) return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "truncate: unit must be a string");
  if (over && over->kind != SL_NULL && over->kind != SL_QMAP)
    return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "truncate: overrides must be a map");
  if (t->kind != SL_DATE && t->kind != SL_TIME && t->kind != SL_LOCALTIME && t->kind != SL_DATETIME &&
      t->kind != SL_LOCALDATETIME)
    return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "truncate: expected a temporal value");
  size_t unit;
  for (unit = 0; unit < SL_ARRAY_LEN(unit_names); unit++)
    if (strlen(unit_names[unit]) == u->u.v.len && !strncasecmp(unit_names[unit], u->u.v.u.s, u->u.v.len)) break;
  if (unit == SL_ARRAY_LEN(unit_names))
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "truncate: unknown unit '%.*s'", (int)u->u.v.len, u->u.v.u.s);
  sl_kind kind = kind_of_fn(e->name);
  bool want_date = kind == SL_DATE || kind == SL_DATETIME || kind == SL_LOCALDATETIME;
  bool want_time = kind != SL_DATE, want_zone = kind == SL_TIME || kind == SL_DATETIME;
  bool in_date = t->kind != SL_TIME && t->kind != SL_LOCALTIME, in_time = t->kind != SL_DATE;
  bool in_zone = t->kind == SL_TIME || t->kind == SL_DATETIME;
  if ((want_date && !in_date) || (!want_date && unit < U_DAY) || (kind == SL_DATE && unit > U_DAY))
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s: cannot truncate this value to unit '%s'", e->name,
                unit_names[unit]);

  size_t nover = over && over->kind == SL_QMAP ? over->u.map.n : 0;
  sl_qentry *es = sl_arena_alloc(&q->tmp, sizeof *es * (nover + 8));
  if (!es) return qerr_oom(q);
  size_t n = 0;
#define PUT(k, v) (es[n].key = (k), es[n].value = qv_int(v), n++)
  if (want_date) {
    int64_t y, mo, d;
    if (field(q, e, t, "year", &y) || field(q, e, t, "month", &mo) || field(q, e, t, "day", &d)) return SL_EINVAL;
    if (unit == U_WEEK || unit == U_WEEKYEAR) {
      int64_t wy, wk, dow;
      iso_week(days_from_civil(y, mo, d), &wy, &wk, &dow);
      if (unit == U_WEEK) {
        PUT("year", wy), PUT("week", wk), PUT("dayOfWeek", 1);
      } else {
        /* the Monday of week 1, as a calendar date so that {day: 5} can override it */
        int64_t jan4 = days_from_civil(wy, 1, 4), dj, yy, mm, dd;
        iso_week(jan4, &yy, &mm, &dj);
        civil_from_days(jan4 - (dj - 1), &yy, &mm, &dd);
        PUT("year", yy), PUT("month", mm), PUT("day", dd);
      }
    } else {
      if (unit == U_MILLENNIUM) y = floor_to(y, 1000);
      else if (unit == U_CENTURY) y = floor_to(y, 100);
      else if (unit == U_DECADE) y = floor_to(y, 10);
      if (unit <= U_YEAR) mo = 1;
      else if (unit == U_QUARTER) mo = (mo - 1) / 3 * 3 + 1;
      if (unit <= U_MONTH) d = 1;
      PUT("year", y), PUT("month", mo), PUT("day", d);
    }
  }
  if (want_time) {
    int64_t h = 0, mi = 0, s = 0, ns = 0;
    if (in_time && unit > U_DAY &&
        (field(q, e, t, "hour", &h) || field(q, e, t, "minute", &mi) || field(q, e, t, "second", &s) ||
         field(q, e, t, "nanosecond", &ns)))
      return SL_EINVAL;
    if (unit < U_MINUTE) mi = 0;
    if (unit < U_SECOND) s = 0;
    PUT("hour", h), PUT("minute", mi), PUT("second", s);
    /* the kept fraction in its own unit, so that a {nanosecond: 2} override adds to it */
    if (unit == U_MILLISECOND) PUT("millisecond", ns / 1000000);
    else if (unit == U_MICROSECOND) PUT("microsecond", ns / 1000);
    else PUT("nanosecond", unit == U_NANOSECOND ? ns : 0);
  }
#undef PUT
  if (want_zone && in_zone) {
    es[n].key = "timezone";
    if (temporal_field(q, e, t, "timezone", &es[n].value)) return SL_EINVAL;
    n++;
  }
  /* overrides replace the truncated fields; a smaller time unit given is added to the kept ones */
  for (size_t i = 0; i < nover; i++) {
    const sl_qentry *o = &over->u.map.entries[i];
    size_t j;
    for (j = 0; j < n; j++)
      if (!strcasecmp(es[j].key, o->key)) break;
    es[j] = *o;
    if (j == n) n++;
  }
  qv m;
  m.kind = SL_QMAP;
  m.u.map.n = n;
  m.u.map.entries = es;
  return temporal_from_map(q, e, &m, kind, out);
}

/* One side of duration.between: local date (epoch days), local nanosecond of
 * the day and UTC offset, each possibly absent. */
typedef struct {
  bool has_date, has_time, has_zone;
  int64_t days, nod, offset;
} side;

static side side_of(const qv *v) {
  const sl_value *t = &v->u.v;
  side s = {.has_date = t->kind != SL_TIME && t->kind != SL_LOCALTIME, .has_time = t->kind != SL_DATE,
            .has_zone = t->kind == SL_TIME || t->kind == SL_DATETIME};
  if (s.has_zone) s.offset = t->u.t.offset;
  if (t->kind == SL_DATE) {
    s.days = t->u.t.seconds;
  } else if (t->kind == SL_TIME || t->kind == SL_LOCALTIME) {
    s.nod = t->u.t.seconds * 1000000000 + t->u.t.nanos;
  } else {
    int64_t local = t->u.t.seconds + s.offset;
    s.days = floor_to(local, 86400) / 86400;
    s.nod = (local - s.days * 86400) * 1000000000 + t->u.t.nanos;
  }
  return s;
}

static int64_t month_index(int64_t days, int64_t *day) {
  int64_t y, m;
  civil_from_days(days, &y, &m, day);
  return y * 12 + m - 1;
}

/* Whole calendar units from (fd, fn) to (td, tn), as java.time's until: the
 * end date moves back a day when its time of day has not reached the start's. */
static int64_t end_date(int64_t fd, int64_t fn, int64_t td, int64_t tn) {
  if (td > fd && tn < fn) return td - 1;
  if (td < fd && tn > fn) return td + 1;
  return td;
}

static int64_t months_between(int64_t fd, int64_t fn, int64_t td, int64_t tn) {
  int64_t e = end_date(fd, fn, td, tn), d1, d2;
  int64_t p1 = month_index(fd, &d1) * 32 + d1, p2 = month_index(e, &d2) * 32 + d2;
  return (p2 - p1) / 32;
}

static int64_t plus_months(int64_t days, int64_t months) {
  int64_t d, mi = month_index(days, &d) + months, y = floor_to(mi, 12) / 12, m = mi - y * 12 + 1;
  int64_t last = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - days_from_civil(y, m, 1);
  return days_from_civil(y, m, d < last ? d : last);
}

/* A duration of months, days and (whole days + nanoseconds): the day count
 * apart keeps +-999999999-year spans from overflowing. */
static void put_duration(int64_t months, int64_t days, int64_t sec_days, int64_t nanos, qv *out) {
  memset(out, 0, sizeof *out);
  out->kind = SL_DURATION;
  out->u.v.kind = SL_DURATION;
  out->u.v.u.dur.months = months;
  out->u.v.u.dur.days = days;
  /* Neo4j keeps the nanoseconds of a duration in [0, 1e9) */
  int64_t s = floor_to(nanos, 1000000000) / 1000000000;
  out->u.v.u.dur.seconds = sec_days * 86400 + s;
  out->u.v.u.dur.nanos = (int32_t)(nanos - s * 1000000000);
}

/* A side without a zone takes the other's: its offset, or for a named zone
 * the offset in force at the side's own wall time there (a DST change
 * between the two is then counted, as Neo4j counts it). */
static int take_zone(qctx *q, qexpr *e, side *s, const sl_value *zoned) {
  const char *zone = zoned->kind == SL_DATETIME ? zoned->u.t.zone : NULL;
  if (!zone || !zone[0]) {
    s->offset = zoned->u.t.offset;
    return 0;
  }
  int64_t local = s->days * 86400 + floor_to(s->nod, 1000000000) / 1000000000, utc;
  int32_t offset;
  if (sl_tz_resolve_local(zone, local, NULL, &utc, &offset) < 0)
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s: unknown time zone '%s'", e->name, zone);
  s->offset = local - utc; /* in a gap, the wall time moved forward by it */
  return 0;
}

/* duration.between / inMonths / inDays / inSeconds (from, to). As Neo4j 5:
 * a side without time is at midnight, without date on the other's date,
 * without zone in the other's zone; `to` is seen in `from`'s offset. */
int fn_duration_between(qctx *q, qexpr *e, qv *args, qv *out) {
  for (int i = 0; i < 2; i++) {
    sl_kind k = args[i].kind;
    if (k == SL_NULL) {
      *out = qv_null();
      return 0;
    }
    if (k != SL_DATE && k != SL_TIME && k != SL_LOCALTIME && k != SL_DATETIME && k != SL_LOCALDATETIME)
      return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s: expected temporal values", e->name);
  }
  const char *which = strchr(e->name, '.') + 1;
  side f = side_of(&args[0]), t = side_of(&args[1]);
  bool dated = f.has_date && t.has_date;
  if (!f.has_date) f.days = t.days;
  if (!t.has_date) t.days = f.days;
  if (!f.has_zone && t.has_zone) TRY(take_zone(q, e, &f, &args[1].u.v));
  if (!t.has_zone && f.has_zone) TRY(take_zone(q, e, &t, &args[0].u.v));
  /* `to` in from's offset */
  int64_t tn = t.nod + (f.offset - t.offset) * 1000000000, td = t.days + floor_to(tn, 86400000000000) / 86400000000000;
  tn -= (td - t.days) * 86400000000000;
  if (!dated) td = f.days, tn = t.nod + (f.offset - t.offset) * 1000000000; /* times only: no day carry */
  if (!strcasecmp(which, "inSeconds")) {
    put_duration(0, 0, td - f.days, tn - f.nod, out);
  } else if (!strcasecmp(which, "inDays")) {
    put_duration(0, dated ? end_date(f.days, f.nod, td, tn) - f.days : 0, 0, 0, out);
  } else {
    int64_t months = dated ? months_between(f.days, f.nod, td, tn) : 0;
    if (!strcasecmp(which, "inMonths")) {
      put_duration(months, 0, 0, 0, out);
    } else {
      int64_t fd = plus_months(f.days, months);
      int64_t days = dated ? end_date(fd, f.nod, td, tn) - fd : 0;
      put_duration(months, days, td - fd - days, tn - f.nod, out);
    }
  }
  return 0;
}

/* A UTC instant seen in a zone (an offset or an IANA name) as a datetime:
 * the zone's offset is that of the UTC wall time, corrected once. */
int instant_in_zone(qctx *q, qexpr *e, int64_t secs, int32_t nanos, const char *zone, size_t zlen, qv *out) {
  bool named = zlen && zone[0] != '+' && zone[0] != '-' && zone[0] != 'Z' && zone[0] != 'z';
  char zbuf[SL_ZONE_MAX + 1], why[200], text[160];
  sl_value v;
  int64_t off = 0;
  for (int pass = 0; pass < 2; pass++) {
    int64_t local = secs + off, days = floor_to(local, 86400) / 86400, sod = local - days * 86400, y, m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%09d%s%.*s%s", (long long)y, (long long)m,
                     (long long)d, (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60), (int)nanos,
                     named ? "[" : "", (int)zlen, zone, named ? "]" : "");
    if (sl_temporal_parse(SL_DATETIME, text, (size_t)n, NULL, &v, zbuf, why, sizeof why))
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s", why);
    off = v.u.t.offset;
  }
  out->kind = SL_DATETIME;
  out->u.v = v;
  if (v.u.t.zone && !(out->u.v.u.t.zone = sl_arena_strndup(&q->tmp, zbuf, strlen(zbuf)))) return qerr_oom(q);
  return 0;
}

/* <type>.transaction/statement/realtime([zone]): the current time, in UTC or
 * in the given zone (one clock serves all three: a query is one statement). */
int fn_clock(qctx *q, qexpr *e, qv *args, qv *out) {
  if (e->nargs && args[0].kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (e->nargs && args[0].kind != SL_STRING)
    return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s: the time zone must be a string", e->name);
  uint64_t us = q_clock_us(q);
  qv dt;
  int rc = instant_in_zone(q, e, (int64_t)(us / 1000000), (int32_t)(us % 1000000) * 1000,
                           e->nargs ? args[0].u.v.u.s : "Z", e->nargs ? args[0].u.v.len : 1, &dt);
  if (rc) return rc;
  sl_kind kind = kind_of_fn(e->name);
  int64_t local = dt.u.v.u.t.seconds + dt.u.v.u.t.offset, days = floor_to(local, 86400) / 86400;
  *out = dt;
  out->kind = out->u.v.kind = kind;
  if (kind == SL_DATE) out->u.v.u.t.seconds = days, out->u.v.u.t.nanos = 0;
  if (kind == SL_TIME || kind == SL_LOCALTIME) out->u.v.u.t.seconds = local - days * 86400;
  if (kind == SL_LOCALDATETIME) out->u.v.u.t.seconds = local;
  if (kind != SL_DATETIME) out->u.v.u.t.zone = NULL;
  if (kind != SL_DATETIME && kind != SL_TIME) out->u.v.u.t.offset = 0;
  return 0;
}

/* datetime.fromepoch(seconds, nanoseconds), datetime.fromepochmillis(ms): UTC datetimes. */
int fn_fromepoch(qctx *q, qexpr *e, qv *args, qv *out) {
  for (int i = 0; i < e->nargs; i++) {
    if (args[i].kind == SL_NULL) {
      *out = qv_null();
      return 0;
    }
    if (args[i].kind != SL_INT) return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s: expected integers", e->name);
  }
  int64_t secs = args[0].u.v.u.i, ns = e->nargs > 1 ? args[1].u.v.u.i : 0;
  if (e->nargs == 1) ns = (secs - floor_to(secs, 1000)) * 1000000, secs = floor_to(secs, 1000) / 1000;
  secs += floor_to(ns, 1000000000) / 1000000000;
  ns -= floor_to(ns, 1000000000);
  memset(out, 0, sizeof *out);
  out->kind = out->u.v.kind = SL_DATETIME;
  out->u.v.u.t.seconds = secs;
  out->u.v.u.t.nanos = (int32_t)ns;
  return 0;
}

/* A zoned time or datetime moved to another zone, keeping its instant
 * (time({time: t, timezone: z}), datetime({datetime: dt, timezone: z})); a
 * time moves by the offsets' difference on the day of the other value. */
int temporal_to_zone(qctx *q, qexpr *e, const qv *v, const qv *zone, qv *out) {
  *out = *v;
  if ((v->kind != SL_TIME && v->kind != SL_DATETIME) || zone->kind != SL_STRING) return 0;
  if (v->kind == SL_DATETIME)
    return instant_in_zone(q, e, v->u.v.u.t.seconds, v->u.v.u.t.nanos, zone->u.v.u.s, zone->u.v.len, out);
  qv now;
  uint64_t us = q_clock_us(q);
  int rc = instant_in_zone(q, e, (int64_t)(us / 1000000), 0, zone->u.v.u.s, zone->u.v.len, &now);
  if (rc) return rc;
  int64_t sod = v->u.v.u.t.seconds - v->u.v.u.t.offset + now.u.v.u.t.offset;
  out->u.v.u.t.seconds = sod - floor_to(sod, 86400);
  out->u.v.u.t.offset = now.u.v.u.t.offset;
  return 0;
}
