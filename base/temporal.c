/*
 * temporal: the text of Neo4j's temporal values and durations (spec/types.md),
 * both ways, and the names of the points' coordinate systems.
 *
 * Parsing accepts what Neo4j 5's constructors take from a string
 * (date("..."), localtime, time, localdatetime, datetime, duration) and what
 * neo4j-admin reads from CSV cells, which is the same grammar:
 *   date:  2015-07-21  20150721  2015-07  201507  2015-W30-2  2015W302
 *          2015-W30  2015W30  2015-Q3-45  2015Q345  2015-Q3  2015Q3
 *          2015-202  2015202  2015  +12015-07-21  -0044-03-15
 *          (signed years: 1..9 digits, long forms only)
 *   time:  [T]21:40:32.142  21:40  21  214032.142  2140  (fraction 1..9
 *          digits after the seconds, '.' or ',')
 *   zone:  Z  +01  +0100  +01:00 (and +00:09:21, which this file prints for
 *          the local mean time of old dates)  [Europe/Paris]  (a DateTime
 *          may have both; the offset must then be one in force there)
 *   duration: P1Y2M3W4DT5H6M7.8S (each part optional and signed, the last
 *          one written may have a fraction, cascading into the smaller
 *          units as Neo4j does with its average month of 30.436875 days:
 *          P0.75M = P22DT19H51M49.5S, PT0.75M = PT45S), or the
 *          date form P2012-02-02T14:37:21.545; a sign before the P negates all.
 * Letters are case-insensitive. Fractions cascade in exact integer
 * arithmetic (Neo4j uses doubles, so its last nanosecond may differ); a sign
 * before the P applies to fractional durations too (Neo4j drops it there).
 *
 * Formatting is Cypher's toString as Neo4j 5 prints it, which is java.time's
 * toString: seconds only when they or the fraction are not zero ("12:30",
 * "2015-07-21T20:40Z"), the fraction in groups of three digits ("12:30:00.500",
 * "12:30:14.645876"), years past 9999 with a '+', negative years with at
 * least four digits ("-0044"), offsets "Z", "+01:00", "+00:09:21", a
 * DateTime's zone after its offset ("2024-02-29T12:30+01:00[Europe/Paris]");
 * durations as Neo4j's DurationValue: each unit with its own sign
 * ("PT-1H-30M", "PT-0.5S", zero "PT0S"), the fraction without trailing zeros
 * ("PT0.001S"). parse(format(v)) == v for every valid value, which the
 * canonical export relies on; older exports written with ":00" seconds and
 * short fractions ("12:30:00.5") parse to the same values.
 *
 * Zone offsets come from base/tzdb.c (the system's tzdata). A DateTime keeps
 * the offset it was read with, so its text never changes when tzdata does.
 */
#include "base_int.h"
#include "sl_base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NANOS 1000000000LL
#define SECONDS_PER_DAY 86400LL
#define SECONDS_PER_MONTH 2629746LL /* Neo4j's average month: 30.436875 days */
#define YEAR_MAX 999999999LL

enum { SYNTAX = 1 }; /* parse helpers: the text does not match the grammar */

typedef struct cur {
  const char *p, *e;
} cur;

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return SL_EINVAL;
}

/* The text, quoted for a message: at most 48 bytes, controls as '?'. */
static const char *shown(const char *text, size_t len, char out[64]) {
  size_t n = SL_MIN(len, (size_t)48), j = 0;
  out[j++] = '\'';
  for (size_t i = 0; i < n; i++) out[j++] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
  if (len > n) out[j++] = '.', out[j++] = '.', out[j++] = '.';
  out[j++] = '\'';
  out[j] = '\0';
  return out;
}

static bool eat(cur *c, char ch) {
  if (c->p < c->e && (*c->p == ch || (ch >= 'A' && ch <= 'Z' && *c->p == ch + 32))) {
    c->p++;
    return true;
  }
  return false;
}
static bool peek(const cur *c, char ch) {
  return c->p < c->e && (*c->p == ch || (ch >= 'A' && ch <= 'Z' && *c->p == ch + 32));
}
static int run(const cur *c) { /* digits ahead */
  int n = 0;
  while (c->p + n < c->e && c->p[n] >= '0' && c->p[n] <= '9') n++;
  return n;
}
/* Exactly n digits (n <= 18) as a number. */
static int64_t take(cur *c, int n) {
  int64_t v = 0;
  for (int i = 0; i < n; i++) v = v * 10 + (*c->p++ - '0');
  return v;
}

/* ---- calendar ---- */
int64_t sl__floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }
bool sl__is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int sl__month_len(int64_t y, int m) {
  static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return len[m - 1] + (m == 2 && sl__is_leap(y));
}
/* Howard Hinnant's days_from_civil / civil_from_days, on 400-year eras. */
int64_t sl__days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = sl__floor_div(y, 400), yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}
void sl__civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = sl__floor_div(z, 146097), doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}
static int64_t fmod64(int64_t a, int64_t b) { return a - sl__floor_div(a, b) * b; }
static int weekday(int64_t days) { return (int)fmod64(days + 3, 7) + 1; } /* ISO: Monday 1 */
static int weeks_in(int64_t y) {
  int jan1 = weekday(sl__days_from_civil(y, 1, 1));
  return jan1 == 4 || (sl__is_leap(y) && jan1 == 3) ? 53 : 52;
}

static const char *const MONTHS[12] = {"January", "February", "March",     "April",   "May",      "June",
                                       "July",    "August",   "September", "October", "November", "December"};

static int year_text(int64_t y, char *buf, size_t n) {
  if (y > 9999) return snprintf(buf, n, "+%lld", (long long)y);
  if (y < 0) return snprintf(buf, n, "-%04lld", -(long long)y);
  return snprintf(buf, n, "%04lld", (long long)y);
}

/* ---- date ---- */
static int parse_date(cur *c, int64_t *days, const char *what, char *err, size_t errlen) {
  int64_t y;
  int n = run(c);
  int sign = 0;
  char ys[24];
  if (peek(c, '+') || peek(c, '-')) {
    sign = *c->p++ == '-' ? -1 : 1;
    n = run(c);
    if (n < 1 || n > 9) return SYNTAX;
    y = sign * take(c, n);
  } else if (n == 4 || n == 6 || n == 7 || n == 8) {
    y = take(c, 4);
    n -= 4;
  } else {
    return SYNTAX;
  }
  year_text(y, ys, sizeof ys);
  int64_t month = 1, day = 1, week = 0, dow = 1, quarter = 0, doq = 1, doy = 0;
  if (sign == 0 && n > 0) { /* short forms: YYYYMM[DD], YYYYDDD */
    if (n == 3) doy = take(c, 3);
    else if (n == 2) month = take(c, 2);
    else month = take(c, 2), day = take(c, 2);
  } else if (sign == 0 && eat(c, 'W')) {
    if (run(c) < 2) return SYNTAX;
    week = take(c, 2);
    if (run(c) >= 1) dow = take(c, 1);
  } else if (sign == 0 && eat(c, 'Q')) {
    if (run(c) < 1) return SYNTAX;
    quarter = take(c, 1);
    if ((n = run(c)) >= 2) doq = take(c, 2);
    else if (n == 1) return SYNTAX;
  } else if (eat(c, '-')) {
    if (eat(c, 'W')) {
      if ((n = run(c)) < 1 || n > 2) return SYNTAX;
      week = take(c, n);
      if (eat(c, '-')) {
        if (run(c) != 1) return SYNTAX;
        dow = take(c, 1);
      }
    } else if (eat(c, 'Q')) {
      if (run(c) != 1) return SYNTAX;
      quarter = take(c, 1);
      if (eat(c, '-')) {
        if ((n = run(c)) < 1 || n > 2) return SYNTAX;
        doq = take(c, n);
      }
    } else if ((n = run(c)) == 3) {
      doy = take(c, 3);
    } else if (n == 1 || n == 2) {
      month = take(c, n);
      if (eat(c, '-')) {
        if ((n = run(c)) < 1 || n > 2) return SYNTAX;
        day = take(c, n);
      }
    } else {
      return SYNTAX;
    }
  }
  if (week) {
    if (week < 1 || week > weeks_in(y))
      return fail(err, errlen, "is not a %s: week %lld of %s does not exist (it has %d weeks)", what,
                  (long long)week, ys, weeks_in(y));
    if (dow < 1 || dow > 7) return fail(err, errlen, "is not a %s: day of week %lld is not 1..7", what, (long long)dow);
    int64_t jan4 = sl__days_from_civil(y, 1, 4);
    *days = jan4 - (weekday(jan4) - 1) + (week - 1) * 7 + (dow - 1);
  } else if (quarter) {
    if (quarter > 4) return fail(err, errlen, "is not a %s: quarter %lld is not 1..4", what, (long long)quarter);
    int first = (int)(quarter - 1) * 3 + 1;
    int len = sl__month_len(y, first) + sl__month_len(y, first + 1) + sl__month_len(y, first + 2);
    if (doq < 1 || doq > len)
      return fail(err, errlen, "is not a %s: quarter %lld of %s has %d days", what, (long long)quarter, ys, len);
    *days = sl__days_from_civil(y, first, 1) + doq - 1;
  } else if (doy) {
    int len = sl__is_leap(y) ? 366 : 365;
    if (doy < 1 || doy > len) return fail(err, errlen, "is not a %s: %s has %d days", what, ys, len);
    *days = sl__days_from_civil(y, 1, 1) + doy - 1;
  } else {
    if (month < 1 || month > 12) return fail(err, errlen, "is not a %s: month %lld is not 1..12", what, (long long)month);
    if (day < 1 || day > sl__month_len(y, (int)month))
      return fail(err, errlen, "is not a %s: %s %s has %d days", what, MONTHS[month - 1], ys,
                  sl__month_len(y, (int)month));
    *days = sl__days_from_civil(y, (int)month, (int)day);
  }
  return 0;
}

/* ---- time of day ---- */
static int fraction(cur *c, int64_t *nanos) {
  if (!(peek(c, '.') || peek(c, ','))) return 0;
  c->p++;
  int n = run(c);
  if (n < 1 || n > 9) return SYNTAX;
  int64_t v = take(c, n);
  for (; n < 9; n++) v *= 10;
  *nanos = v;
  return 0;
}

static int parse_time(cur *c, int64_t *sec, int64_t *nanos, const char *what, char *err, size_t errlen) {
  int64_t h, m = 0, s = 0;
  int n = run(c);
  *nanos = 0;
  if (n == 1 || (n == 2 && c->p + 2 < c->e && c->p[2] == ':')) { /* H[:M[:S[.f]]], 1-2 digits each */
    h = take(c, n);
    if (eat(c, ':')) {
      if ((n = run(c)) < 1 || n > 2) return SYNTAX;
      m = take(c, n);
      if (eat(c, ':')) {
        if ((n = run(c)) < 1 || n > 2) return SYNTAX;
        s = take(c, n);
        if (fraction(c, nanos)) return SYNTAX;
      }
    }
  } else if (n == 2 || n == 4 || n == 6) { /* HH[MM[SS[.f]]] */
    h = take(c, 2);
    if (n >= 4) m = take(c, 2);
    if (n == 6) {
      s = take(c, 2);
      if (fraction(c, nanos)) return SYNTAX;
    }
  } else {
    return SYNTAX;
  }
  if (h > 23) return fail(err, errlen, "is not a %s: hour %lld is not 0..23", what, (long long)h);
  if (m > 59) return fail(err, errlen, "is not a %s: minute %lld is not 0..59", what, (long long)m);
  if (s > 59) return fail(err, errlen, "is not a %s: second %lld is not 0..59", what, (long long)s);
  *sec = h * 3600 + m * 60 + s;
  return 0;
}

/* Z, +HH, +HHMM, +HH:MM, +HH:MM:SS. */
static int parse_offset(cur *c, int32_t *off, char *err, size_t errlen) {
  if (eat(c, 'Z')) {
    *off = 0;
    return 0;
  }
  int sign = *c->p++ == '-' ? -1 : 1;
  if (run(c) < 2) return SYNTAX;
  int64_t h = take(c, 2), m = 0, s = 0;
  bool colon = eat(c, ':');
  if (run(c) >= 2) {
    m = take(c, 2);
    if (colon && eat(c, ':')) {
      if (run(c) != 2) return SYNTAX;
      s = take(c, 2);
    }
  } else if (colon) {
    return SYNTAX;
  }
  if (m > 59 || s > 59 || h * 3600 + m * 60 + s > SL_OFFSET_MAX)
    return fail(err, errlen, "has an offset out of range (-18:00..+18:00)");
  *off = (int32_t)(sign * (h * 3600 + m * 60 + s));
  return 0;
}

/* [Name]: copied to zone_buf with spaces as '_' (Neo4j's habit). */
static int parse_zone_name(cur *c, char *zone_buf) {
  c->p++; /* '[' */
  size_t n = 0;
  while (c->p < c->e && *c->p != ']') {
    char ch = *c->p++;
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("~._ /+-", ch)))
      return SYNTAX;
    if (n == SL_ZONE_MAX) return SYNTAX;
    zone_buf[n++] = ch == ' ' ? '_' : ch;
  }
  if (!eat(c, ']') || n == 0) return SYNTAX;
  zone_buf[n] = '\0';
  return 0;
}

static int offset_text(int32_t off, char *buf, size_t n) {
  if (off == 0) return snprintf(buf, n, "Z");
  int a = off < 0 ? -off : off;
  if (a % 60) return snprintf(buf, n, "%c%02d:%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60, a % 60);
  return snprintf(buf, n, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* The default zone of a kind that needs one: NULL or "" is Z; an offset; or
 * an IANA name (to zone_buf). */
static int default_zone_parse(const char *dz, int32_t *off, bool *named, char *zone_buf, char *err, size_t errlen) {
  *named = false;
  *off = 0;
  if (!dz || !*dz) return 0;
  cur c = {dz, dz + strlen(dz)};
  if (peek(&c, 'Z') || peek(&c, '+') || peek(&c, '-')) {
    int rc = parse_offset(&c, off, err, errlen);
    if (rc == 0 && c.p == c.e) return 0;
    if (rc < 0) return fail(err, errlen, "default time zone '%s' has an offset out of range (-18:00..+18:00)", dz);
    if (!(dz[0] == 'Z' || dz[0] == 'z') || c.p != dz + 1) /* not "Z...": a zone name may start with Z ("Zulu") */
      return fail(err, errlen, "default time zone '%s' is not an offset", dz);
  }
  size_t n = strlen(dz);
  if (n > SL_ZONE_MAX) return fail(err, errlen, "unknown time zone '%.*s...'", 24, dz);
  for (size_t i = 0; i <= n; i++) zone_buf[i] = dz[i] == ' ' ? '_' : dz[i];
  if (sl_tz_exists(zone_buf) != 0) return fail(err, errlen, "unknown time zone '%s'", zone_buf);
  *named = true;
  return 0;
}

/* ---- duration ---- */
typedef __int128 i128;

typedef struct dur {
  int64_t months, days, seconds, nanos;
} dur;

/* Cascade a fraction: t is a quantity in 1e-9 of `unit` (0 months, 1 days,
 * 2 seconds) on top of d's smaller parts; whole units are truncated toward
 * zero and the rest flows down, as Neo4j's approximate(). */
static bool cascade(dur *d, int unit, i128 t) {
  if (unit == 0) {
    i128 whole = t / NANOS;
    if (whole > INT64_MAX || whole < INT64_MIN) return false;
    d->months = (int64_t)whole;
    t = (t % NANOS) * SECONDS_PER_MONTH; /* now in ns */
    d->days = (int64_t)(t / (SECONDS_PER_DAY * NANOS));
    t %= SECONDS_PER_DAY * NANOS;
  } else if (unit == 1) {
    i128 whole = t / NANOS;
    if (whole > INT64_MAX || whole < INT64_MIN) return false;
    d->days = (int64_t)whole;
    t = (t % NANOS) * SECONDS_PER_DAY;
  }
  i128 s = t / NANOS;
  if (s > INT64_MAX || s < INT64_MIN) return false;
  d->seconds = (int64_t)s;
  d->nanos = (int64_t)(t % NANOS);
  return true;
}

/* [-+]digits[(.|,)digits] */
typedef struct num {
  bool neg, has_frac;
  i128 whole;   /* saturates past 2^64: out of range anyway */
  int64_t frac; /* 1e-9 units */
  int frac_digits;
} num;

static bool number(cur *c, num *v) {
  memset(v, 0, sizeof *v);
  if (peek(c, '+') || peek(c, '-')) v->neg = *c->p++ == '-';
  int n = run(c);
  if (n == 0) return false;
  for (int i = 0; i < n; i++) {
    if (v->whole < ((i128)1 << 64)) v->whole = v->whole * 10 + (*c->p - '0');
    c->p++;
  }
  if ((peek(c, '.') || peek(c, ',')) && c->p + 1 < c->e && c->p[1] >= '0' && c->p[1] <= '9') {
    c->p++;
    v->has_frac = true;
    int k = run(c);
    v->frac_digits = k;
    for (int i = 0; i < k; i++, c->p++)
      if (i < 9) v->frac = v->frac * 10 + (*c->p - '0');
    for (int i = k; i < 9; i++) v->frac *= 10;
  }
  return true;
}

static i128 signed_whole(const num *v) { return v->neg ? -v->whole : v->whole; }
static i128 signed_nanos(const num *v) { return (v->neg ? -1 : 1) * (v->whole * NANOS + v->frac); }

/* P[nY][nM][nW][nD][T[nH][nM][nS]]: 1 = syntax, 0 = parsed (or an error). */
static int duration_units(cur *c, dur *d, int *err_out, char *err, size_t errlen) {
  static const char units[] = "YMWDHMS";
  num v[7];
  bool have[7] = {false};
  int next = 0;
  bool t = false, any = false;
  while (c->p < c->e) {
    if (!t && eat(c, 'T')) {
      t = true;
      next = 4;
      if (c->p == c->e) return SYNTAX; /* "PT" alone */
      continue;
    }
    num x;
    if (!number(c, &x) || c->p >= c->e) return SYNTAX;
    char u = *c->p >= 'a' ? (char)(*c->p - 32) : *c->p;
    int i = next;
    while (i < (t ? 7 : 4) && units[i] != u) i++;
    if (i >= (t ? 7 : 4)) return SYNTAX;
    c->p++;
    if (i == 6 && x.frac_digits > 9) return SYNTAX;
    v[i] = x, have[i] = true, next = i + 1, any = true;
  }
  if (!any) return SYNTAX;
  /* Only the last part written may have a fraction (seconds' is nanos). */
  int last = -1;
  for (int i = 0; i < 7; i++)
    if (have[i]) last = i;
  for (int i = 0; i < 7; i++)
    if (have[i] && v[i].has_frac && i != last && i != 6) return SYNTAX;
  i128 months = 0, days = 0, secs = 0, nanos = 0;
  if (have[0]) months += signed_whole(&v[0]) * 12;
  if (have[1]) months += signed_whole(&v[1]);
  if (have[2]) days += signed_whole(&v[2]) * 7;
  if (have[3]) days += signed_whole(&v[3]);
  if (have[4]) secs += signed_whole(&v[4]) * 3600;
  if (have[5]) secs += signed_whole(&v[5]) * 60;
  if (have[6]) secs += signed_whole(&v[6]), nanos = (v[6].neg ? -1 : 1) * (i128)v[6].frac;
  if (months > INT64_MAX || months < INT64_MIN || days > INT64_MAX || days < INT64_MIN || secs > INT64_MAX ||
      secs < INT64_MIN) {
    *err_out = fail(err, errlen, "is not a duration: out of range");
    return 0;
  }
  d->months = (int64_t)months, d->days = (int64_t)days, d->seconds = (int64_t)secs, d->nanos = (int64_t)nanos;
  if (last >= 0 && last < 6 && v[last].has_frac) {
    /* the fractional part with the whole ones of its level, in 1e-9 units */
    i128 t9;
    dur f = {0};
    int level = last / 2;
    switch (last) {
    case 0: t9 = signed_nanos(&v[0]) * 12; break;
    case 1: t9 = (have[0] ? signed_whole(&v[0]) * 12 * NANOS : 0) + signed_nanos(&v[1]); break;
    case 2: t9 = signed_nanos(&v[2]) * 7; break;
    case 3: t9 = (have[2] ? signed_whole(&v[2]) * 7 * NANOS : 0) + signed_nanos(&v[3]); break;
    case 4: t9 = signed_nanos(&v[4]) * 3600; break;
    default: t9 = (have[4] ? signed_whole(&v[4]) * 3600 * NANOS : 0) + signed_nanos(&v[5]) * 60; break;
    }
    if (level >= 1) f.months = d->months;
    if (level == 2) f.days = d->days;
    bool ok = cascade(&f, level, t9);
    if (!ok) {
      *err_out = fail(err, errlen, "is not a duration: out of range");
      return 0;
    }
    *d = f;
  }
  return 0;
}

/* PYYYY[-MM-DD|MMDD][T(HHMMSS|HH:MM[:SS])[.f]] */
static int duration_date(cur *c, dur *d, int *err_out, char *err, size_t errlen) {
  int64_t y = 0, mo = 0, dd = 0, h = 0, mi = 0, s = 0, ns = 0;
  int n = run(c);
  if (n == 4 || n == 8) {
    y = take(c, 4);
    if (n == 8) {
      mo = take(c, 2), dd = take(c, 2);
    } else {
      if (!eat(c, '-') || run(c) != 2) return SYNTAX;
      mo = take(c, 2);
      if (!eat(c, '-') || run(c) != 2) return SYNTAX;
      dd = take(c, 2);
    }
  } else if (n != 0) {
    return SYNTAX;
  }
  if (eat(c, 'T')) {
    n = run(c);
    if (n == 2 && peek(&(cur){c->p + 2, c->e}, ':')) {
      h = take(c, 2);
      c->p++;
      if (run(c) != 2) return SYNTAX;
      mi = take(c, 2);
      if (eat(c, ':')) {
        if (run(c) != 2) return SYNTAX;
        s = take(c, 2);
        if (fraction(c, &ns)) return SYNTAX;
      }
    } else if (n == 2 || n == 4 || n == 6) {
      h = take(c, 2);
      if (n >= 4) mi = take(c, 2);
      if (n == 6) {
        s = take(c, 2);
        if (fraction(c, &ns)) return SYNTAX;
      }
    } else {
      return SYNTAX;
    }
  } else if (n == 0) {
    return SYNTAX;
  }
  if (c->p != c->e) return SYNTAX;
  if (mo > 12 || dd > 31 || h > 24 || mi > 60 || s > 60) {
    *err_out = fail(err, errlen, "is not a duration: a part of the date form is out of range");
    return 0;
  }
  d->months = y * 12 + mo, d->days = dd, d->seconds = h * 3600 + mi * 60 + s, d->nanos = ns;
  return 0;
}

static int parse_duration(cur *c, sl_value *out, char *err, size_t errlen) {
  int sign = 1;
  if (peek(c, '+') || peek(c, '-')) sign = *c->p++ == '-' ? -1 : 1;
  if (!eat(c, 'P')) return SYNTAX;
  dur d = {0};
  int e = 0;
  cur save = *c;
  if (duration_units(c, &d, &e, err, errlen) != 0) {
    *c = save;
    memset(&d, 0, sizeof d);
    if (duration_date(c, &d, &e, err, errlen) != 0) return SYNTAX;
  }
  if (e) return e;
  /* nanos into seconds, then nanos takes the seconds' sign */
  i128 s = (i128)d.seconds + d.nanos / NANOS;
  int64_t n = d.nanos % NANOS;
  if (s > 0 && n < 0) s--, n += NANOS;
  else if (s < 0 && n > 0) s++, n -= NANOS;
  i128 m = (i128)d.months * sign, dd = (i128)d.days * sign;
  s *= sign, n *= sign;
  /* Neo4j refuses a duration whose average length in seconds overflows */
  i128 total = m * SECONDS_PER_MONTH + dd * SECONDS_PER_DAY + s;
  if (total > INT64_MAX || total < INT64_MIN || s > INT64_MAX || s < INT64_MIN)
    return fail(err, errlen, "is not a duration: out of range (its length in seconds overflows 64 bits)");
  out->u.dur.months = (int64_t)m;
  out->u.dur.days = (int64_t)dd;
  out->u.dur.seconds = (int64_t)s;
  out->u.dur.nanos = (int32_t)n;
  return 0;
}

/* ---- the API ---- */
static const char *kind_word(sl_kind k) {
  switch (k) {
  case SL_DATE: return "date";
  case SL_LOCALTIME: return "local time";
  case SL_TIME: return "time";
  case SL_LOCALDATETIME: return "local datetime";
  case SL_DATETIME: return "datetime";
  case SL_DURATION: return "duration";
  default: return "temporal value";
  }
}
static const char *kind_example(sl_kind k) {
  switch (k) {
  case SL_DATE: return "2015-07-21, 20150721, 2015-W30-2, 2015-202";
  case SL_LOCALTIME: return "21:40:32.142, 214032";
  case SL_TIME: return "21:40:32+01:00";
  case SL_LOCALDATETIME: return "2015-07-21T21:40:32";
  case SL_DATETIME: return "2015-07-21T21:40:32+01:00[Europe/Paris]";
  default: return "P14DT16H12M, PT0.75M, P2012-02-02T14:37:21.545";
  }
}

int sl_temporal_parse(sl_kind kind, const char *text, size_t len, const char *default_zone, sl_value *out,
                      char *zone_buf, char *errbuf, size_t errlen) {
  char q[64], why[160] = "";
  cur c = {text, text + len};
  sl_value v;
  memset(&v, 0, sizeof v);
  v.kind = kind;
  int64_t days = 0, sec = 0, nanos = 0;
  int32_t off = 0;
  bool has_off = false, has_zone = false, has_time = kind == SL_TIME;
  int rc;
  if (kind < SL_DATE || kind > SL_DURATION) return fail(errbuf, errlen, "not a temporal kind (%d)", (int)kind);
  shown(text, len, q);

  switch (kind) {
  case SL_DATE:
    rc = parse_date(&c, &days, "date", why, sizeof why);
    v.u.t.seconds = days;
    break;
  case SL_LOCALDATETIME:
  case SL_DATETIME:
    rc = parse_date(&c, &days, kind_word(kind), why, sizeof why);
    if (rc == 0 && eat(&c, 'T')) {
      rc = parse_time(&c, &sec, &nanos, kind_word(kind), why, sizeof why);
      has_time = true;
    }
    break;
  case SL_LOCALTIME:
  case SL_TIME:
    eat(&c, 'T');
    rc = parse_time(&c, &sec, &nanos, kind_word(kind), why, sizeof why);
    break;
  default:
    rc = parse_duration(&c, &v, why, sizeof why);
    if (rc == 0 && c.p != c.e) rc = SYNTAX;
    break;
  }
  if (rc == 0 && has_time && (kind == SL_TIME || kind == SL_DATETIME)) {
    if (peek(&c, 'Z') || peek(&c, '+') || peek(&c, '-')) {
      rc = parse_offset(&c, &off, why, sizeof why);
      has_off = rc == 0;
    }
    if (rc == 0 && peek(&c, '[')) {
      rc = parse_zone_name(&c, zone_buf);
      has_zone = rc == 0;
    }
  }
  if (rc == 0 && c.p != c.e) rc = SYNTAX;
  if (rc == SYNTAX) return fail(errbuf, errlen, "%s is not a %s (e.g. %s)", q, kind_word(kind), kind_example(kind));
  if (rc < 0) return fail(errbuf, errlen, "%s %s", q, why);

  if (kind != SL_DURATION) v.u.t.nanos = (int32_t)nanos; /* u.t and u.dur share memory */
  switch (kind) {
  case SL_LOCALTIME:
    v.u.t.seconds = sec;
    break;
  case SL_LOCALDATETIME:
    v.u.t.seconds = days * SECONDS_PER_DAY + sec;
    break;
  case SL_TIME:
    if (has_zone)
      return fail(errbuf, errlen, "%s is not a time: a time without a date cannot have a named zone; use an offset such as +01:00", q);
    if (!has_off) {
      bool named;
      if ((rc = default_zone_parse(default_zone, &off, &named, zone_buf, errbuf, errlen)) < 0) return rc;
      /* as Neo4j: a named zone's offset now */
      if (named && sl_tz_offset_at(zone_buf, (int64_t)(sl_now_us() / 1000000), &off) < 0)
        return fail(errbuf, errlen, "unknown time zone '%s'", zone_buf);
    }
    v.u.t.seconds = sec;
    v.u.t.offset = off;
    break;
  case SL_DATETIME: {
    int64_t local = days * SECONDS_PER_DAY + sec, utc = local - off;
    bool named = has_zone;
    if (!has_zone && !has_off) {
      if ((rc = default_zone_parse(default_zone, &off, &named, zone_buf, errbuf, errlen)) < 0) return rc;
      utc = local - off;
    }
    if (named) {
      if (sl_tz_exists(zone_buf) != 0) return fail(errbuf, errlen, "%s: unknown time zone '%s'", q, zone_buf);
      rc = sl_tz_resolve_local(zone_buf, local, has_off ? &off : NULL, &utc, &off);
      if (rc < 0 && rc != SL_EINVAL) return fail(errbuf, errlen, "%s: time zone '%s': %s", q, zone_buf, sl_strerror(rc));
      if (rc < 0) {
        char os[16];
        offset_text(off, os, sizeof os);
        return fail(errbuf, errlen, "%s is not a datetime: offset %s is not in force in %s at that time", q, os, zone_buf);
      }
      v.u.t.zone = zone_buf;
    }
    v.u.t.seconds = utc;
    v.u.t.offset = off;
    break;
  }
  default:
    break;
  }
  *out = v;
  return 0;
}

/* ---- formatting ---- */
/* ".645", ".645876", ".645876123": java.time prints a fraction in groups of
 * three digits, as many groups as it needs (".500" for half a second). */
static int fraction_text(int32_t nanos, char *buf, size_t n) {
  if (nanos % 1000000 == 0) return snprintf(buf, n, ".%03d", nanos / 1000000);
  if (nanos % 1000 == 0) return snprintf(buf, n, ".%06d", nanos / 1000);
  return snprintf(buf, n, ".%09d", nanos);
}

/* HH:MM, then :SS only when the seconds or the fraction are not zero. */
static int time_text(int64_t sec, int32_t nanos, char *buf, size_t n) {
  int w = snprintf(buf, n, "%02d:%02d", (int)(sec / 3600), (int)(sec / 60 % 60));
  if (sec % 60 || nanos) w += snprintf(buf + w, n - (size_t)w, ":%02d", (int)(sec % 60));
  if (nanos) w += fraction_text(nanos, buf + w, n - (size_t)w);
  return w;
}

static int date_text(int64_t days, char *buf, size_t n) {
  int64_t y;
  int m, d;
  sl__civil_from_days(days, &y, &m, &d);
  int w = year_text(y, buf, n);
  return w + snprintf(buf + w, n - (size_t)w, "-%02d-%02d", m, d);
}

/* Days of the years -999,999,999 .. 999,999,999. */
#define DAYS_MIN sl__days_from_civil(-YEAR_MAX, 1, 1)
#define DAYS_MAX sl__days_from_civil(YEAR_MAX, 12, 31)

static int duration_text(const sl_value *v, char *buf, size_t n) {
  int64_t mo = v->u.dur.months, d = v->u.dur.days, s = v->u.dur.seconds;
  int32_t ns = v->u.dur.nanos;
  if (s > 0 && ns < 0) s--, ns += NANOS; /* nanos take the seconds' sign */
  else if (s < 0 && ns > 0) s++, ns -= NANOS;
  if (!mo && !d && !s && !ns) return snprintf(buf, n, "PT0S");
  int w = snprintf(buf, n, "P");
#define PART(q, u)                                                                  \
  if (q) w += snprintf(buf + w, n - (size_t)w, "%lld%c", (long long)(q), u)
  PART(mo / 12, 'Y');
  PART(mo % 12, 'M');
  PART(d, 'D');
  if (s || ns) {
    w += snprintf(buf + w, n - (size_t)w, "T");
    PART(s / 3600, 'H');
    PART(s % 3600 / 60, 'M');
    int64_t r = s % 60;
    if (r || ns) {
      int32_t a = ns < 0 ? -ns : ns;
      w += snprintf(buf + w, n - (size_t)w, "%s%lld", r == 0 && ns < 0 ? "-" : "", (long long)r);
      if (a) { /* Neo4j's DurationValue: the fraction without trailing zeros */
        int digits = 9;
        for (; a % 10 == 0; a /= 10) digits--;
        w += snprintf(buf + w, n - (size_t)w, ".%0*d", digits, a);
      }
      w += snprintf(buf + w, n - (size_t)w, "S");
    }
  }
#undef PART
  return w;
}

int sl_temporal_format(const sl_value *v, char *buf, size_t size) {
  char tmp[SL_TEMPORAL_TEXT_MAX + 64];
  int w = 0;
  int64_t s = v->u.t.seconds;
  int32_t ns = v->u.t.nanos, off = v->u.t.offset;
  if (size) buf[0] = '\0';
  if (v->kind == SL_DURATION) {
    if (v->u.dur.nanos <= -NANOS || v->u.dur.nanos >= NANOS) return SL_EINVAL;
    w = duration_text(v, tmp, sizeof tmp);
    goto out;
  }
  if (v->kind < SL_DATE || v->kind > SL_DATETIME || ns < 0 || ns >= NANOS) return SL_EINVAL;
  if ((v->kind == SL_TIME || v->kind == SL_DATETIME) && (off < -SL_OFFSET_MAX || off > SL_OFFSET_MAX)) return SL_EINVAL;
  switch (v->kind) {
  case SL_DATE:
    if (s < DAYS_MIN || s > DAYS_MAX) return SL_EINVAL;
    w = date_text(s, tmp, sizeof tmp);
    break;
  case SL_LOCALTIME:
  case SL_TIME:
    if (s < 0 || s >= SECONDS_PER_DAY) return SL_EINVAL;
    w = time_text(s, ns, tmp, sizeof tmp);
    if (v->kind == SL_TIME) w += offset_text(off, tmp + w, sizeof tmp - (size_t)w);
    break;
  default: {
    int64_t local = s;
    if (v->kind == SL_DATETIME) {
      if (s < DAYS_MIN * SECONDS_PER_DAY - SL_OFFSET_MAX || s > (DAYS_MAX + 1) * SECONDS_PER_DAY + SL_OFFSET_MAX)
        return SL_EINVAL;
      local = s + off;
    }
    int64_t days = sl__floor_div(local, SECONDS_PER_DAY);
    if (days < DAYS_MIN || days > DAYS_MAX) return SL_EINVAL;
    w = date_text(days, tmp, sizeof tmp);
    tmp[w++] = 'T';
    w += time_text(local - days * SECONDS_PER_DAY, ns, tmp + w, sizeof tmp - (size_t)w);
    if (v->kind == SL_DATETIME) {
      w += offset_text(off, tmp + w, sizeof tmp - (size_t)w);
      if (v->u.t.zone) {
        size_t zl = strnlen(v->u.t.zone, SL_ZONE_MAX + 1);
        if (zl == 0 || zl > SL_ZONE_MAX) return SL_EINVAL;
        w += snprintf(tmp + w, sizeof tmp - (size_t)w, "[%s]", v->u.t.zone);
      }
    }
  }
  }
out:
  if ((size_t)w >= size) {
    if (size) {
      memcpy(buf, tmp, size - 1);
      buf[size - 1] = '\0';
    }
    return w;
  }
  memcpy(buf, tmp, (size_t)w + 1);
  return w;
}

/* ---- points ---- */
static const struct {
  uint32_t srid;
  const char *name;
} CRS[] = {
    {SL_SRID_CARTESIAN, "cartesian"},
    {SL_SRID_CARTESIAN_3D, "cartesian-3d"},
    {SL_SRID_WGS84, "wgs-84"},
    {SL_SRID_WGS84_3D, "wgs-84-3d"},
};

const char *sl_srid_name(uint32_t srid) {
  for (size_t i = 0; i < SL_ARRAY_LEN(CRS); i++)
    if (CRS[i].srid == srid) return CRS[i].name;
  return NULL;
}

uint32_t sl_srid_from_name(const char *name, size_t len) {
  for (size_t i = 0; i < SL_ARRAY_LEN(CRS); i++)
    if (strlen(CRS[i].name) == len && strncasecmp(CRS[i].name, name, len) == 0) return CRS[i].srid;
  return 0;
}
