/*
 * Clocks and TIME text.
 *
 * sl_now_us() is the wall clock every commit time comes from; tests swap it
 * for a scripted one (sl_clock_set_for_test) to get reproducible times and
 * to make the clock jump backwards. sl_mono_ns() never jumps and is the one
 * to measure latencies and timeouts with.
 *
 * sl_time_parse() accepts exactly the TIME forms of spec/cli.md and nothing
 * looser: "YYYY-MM-DDTHH:MM:SS[.F{1,6}]" followed by "Z", "+HH:MM", "-HH:MM",
 * "+HHMM" or "-HHMM", "YYYY-MM-DD" alone (midnight UTC of that day: a
 * date names no zone, and UTC is the one every commit time is kept in),
 * and "@SECONDS[.F{1,6}]". More than 6 fraction digits
 * would silently lose precision, so it is refused rather than rounded. The
 * calendar arithmetic is Howard Hinnant's days_from_civil/civil_from_days
 * (proleptic Gregorian, no tables, no locale, no TZ environment), so the
 * result does not depend on the process's time zone, unlike mktime().
 */
#include "sl_base.h"

#include <stdio.h>
#include <time.h>

static uint64_t (*clock_fn)(void);

uint64_t sl_now_us(void) {
  if (clock_fn) return clock_fn();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void sl_clock_set_for_test(uint64_t (*fn)(void)) { clock_fn = fn; }

uint64_t sl_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sl_deadline_after_ns(struct timespec *ts, clockid_t clock, uint64_t ns) {
  clock_gettime(clock, ts);
  ts->tv_sec += (time_t)(ns / 1000000000u);
  ts->tv_nsec += (long)(ns % 1000000000u);
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m) {
  static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Exactly n decimal digits at *p. */
static bool digits(const char **p, int n, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (unsigned)(c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

/* Optional ".F{1,6}" as µs. */
static bool fraction(const char **p, uint64_t *us) {
  *us = 0;
  if (**p != '.') return true;
  (*p)++;
  int n = 0;
  uint64_t v = 0;
  while (**p >= '0' && **p <= '9') {
    if (++n > 6) return false;
    v = v * 10 + (uint64_t)(*(*p)++ - '0');
  }
  if (n == 0) return false;
  for (; n < 6; n++) v *= 10;
  *us = v;
  return true;
}

static int parse_epoch(const char *p, uint64_t *out_us) {
  uint64_t secs = 0, frac;
  const char *start = p;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (secs > UINT64_MAX / 1000000u) return SL_EINVAL;
    secs = secs * 10 + (uint64_t)(*p - '0');
  }
  if (p == start || !fraction(&p, &frac) || *p || secs > (UINT64_MAX - frac) / 1000000u)
    return SL_EINVAL;
  *out_us = secs * 1000000u + frac;
  return 0;
}

int sl_time_parse(const char *text, uint64_t *out_us) {
  if (!text) return SL_EINVAL;
  if (*text == '@') return parse_epoch(text + 1, out_us);

  const char *p = text;
  unsigned year, mon, day, hour = 0, min = 0, sec = 0, oh = 0, om = 0;
  uint64_t frac = 0;
  if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &mon) || *p++ != '-' || !digits(&p, 2, &day))
    return SL_EINVAL;
  if (*p == 0) { /* a date alone: midnight UTC */
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon)) return SL_EINVAL;
    int64_t days = days_from_civil(year, mon, day);
    if (days < 0) return SL_EINVAL;
    *out_us = (uint64_t)days * 86400u * 1000000u;
    return 0;
  }
  if (*p++ != 'T' || !digits(&p, 2, &hour) || *p++ != ':' ||
      !digits(&p, 2, &min) || *p++ != ':' || !digits(&p, 2, &sec) || !fraction(&p, &frac))
    return SL_EINVAL;
  int sign = 0;
  if (*p == 'Z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '+' ? 1 : -1;
    if (!digits(&p, 2, &oh)) return SL_EINVAL;
    if (*p == ':') p++;
    if (!digits(&p, 2, &om)) return SL_EINVAL;
  } else {
    return SL_EINVAL; /* a zone is required */
  }
  if (*p || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
      min > 59 || sec > 59 || oh > 23 || om > 59)
    return SL_EINVAL;

  int64_t secs = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec -
                 sign * (int64_t)(oh * 3600 + om * 60);
  if (secs < 0) return SL_EINVAL;
  *out_us = (uint64_t)secs * 1000000u + frac;
  return 0;
}

char *sl_time_format(uint64_t us, char *buf, size_t len) {
  uint64_t secs = us / 1000000u;
  unsigned frac = (unsigned)(us % 1000000u);
  int64_t y;
  unsigned m, d, sod = (unsigned)(secs % 86400);
  civil_from_days((int64_t)(secs / 86400), &y, &m, &d);
  int n = snprintf(buf, len, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, m, d, sod / 3600,
                   sod / 60 % 60, sod % 60);
  if (n < 0 || (size_t)n >= len) return buf;
  if (frac)
    snprintf(buf + n, len - (size_t)n, ".%06uZ", frac);
  else
    snprintf(buf + n, len - (size_t)n, "Z");
  return buf;
}
