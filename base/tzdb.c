/*
 * tzdb: offsets of IANA time zones, read from the system's zone database
 * (Debian's tzdata: compiled TZif files under /usr/share/zoneinfo, or $TZDIR),
 * without touching the process's TZ (no setenv, no localtime_r), so that any
 * thread may ask about any zone.
 *
 * TZif (RFC 8536), as this reader uses it:
 *   header (44 bytes): "TZif", version ('\0', '2', '3' or '4'), 15 reserved,
 *     six big-endian u32 counts: isutcnt, isstdcnt, leapcnt, timecnt,
 *     typecnt, charcnt;
 *   v1 data block: timecnt x i32 transition times, timecnt x u8 type
 *     indices, typecnt x (i32 utoff, u8 isdst, u8 desigidx), charcnt bytes of
 *     designations, leapcnt x 8, isstdcnt x 1, isutcnt x 1;
 *   v2+: a second header and data block of the same shape with 64-bit times
 *     (and 12-byte leap records), then a footer "\nPOSIX-TZ\n" that gives the
 *     rule for instants after the last transition ("CET-1CEST,M3.5.0,M10.5.0/3").
 * Only the 64-bit block and the footer are read (v1-only files: the 32-bit
 * block). Before the first transition time type 0 applies; at or after the
 * last one the footer's rule (when there is one) decides.
 *
 * Local times (java.time's ZonedDateTime.ofLocal, which Neo4j uses): a wall
 * clock time that happens twice (an overlap, clocks going back) takes the
 * earlier offset unless the caller prefers the other valid one; a time that
 * never happens (a gap, clocks going forward) moves forward by the gap's
 * length (02:30 in a one-hour spring gap is 03:30 at the later offset).
 *
 * Cache: a zone is read once, parsed into an immutable struct and kept for the
 * life of the process (the database has ~600 zones, a few KB each); a mutex
 * guards the list. Names that are not zones are not cached.
 */
#include "base_int.h"
#include "sl_base.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_FILE_MAX (1u << 20) /* the largest TZif in tzdata is ~4 KB */
#define TZ_CACHE_MAX 1024

/* A POSIX TZ rule date: Jn (julian, no Feb 29), n (zero-based, with Feb 29)
 * or Mm.w.d; time of day in seconds (may be negative or past 24h). */
typedef struct tz_rule_date {
  char form; /* 'J', 'N' or 'M' */
  int a, b, c;
  int32_t time;
} tz_rule_date;

typedef struct tz_zone {
  char name[SL_ZONE_MAX + 1];
  uint32_t timecnt, typecnt;
  int64_t *trans;      /* timecnt transition instants, ascending */
  uint8_t *trans_type; /* their types */
  int32_t *type_off;   /* typecnt utoffs */
  /* footer rule */
  bool has_rule;  /* a footer exists */
  bool has_dst;   /* ... with a DST part */
  int32_t std_off, dst_off;
  tz_rule_date start, end;
  struct tz_zone *next;
} tz_zone;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static tz_zone *cache_head;
static unsigned cache_count;

static const char *tz_dir(void) {
  const char *d = getenv("TZDIR");
  return d && *d ? d : "/usr/share/zoneinfo";
}

/* ---- POSIX TZ footer ---- */
static const char *rule_name(const char *p) {
  if (*p == '<') {
    while (*p && *p != '>') p++;
    return *p ? p + 1 : NULL;
  }
  const char *s = p;
  while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
  return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] as seconds; NULL on a syntax error. */
static const char *rule_hms(const char *p, int32_t *out, int max_hours) {
  int sign = 1;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  int32_t v[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    if (i > 0) {
      if (*p != ':') break;
      p++;
    }
    if (*p < '0' || *p > '9') return NULL;
    int n = 0;
    while (*p >= '0' && *p <= '9' && n < 1000) n = n * 10 + (*p++ - '0');
    v[i] = n;
  }
  if (v[0] > max_hours || v[1] > 59 || v[2] > 59) return NULL;
  *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
  return p;
}

static const char *rule_date(const char *p, tz_rule_date *d) {
  int n = 0;
  if (*p == 'M') {
    d->form = 'M';
    int v[3];
    p++;
    for (int i = 0; i < 3; i++) {
      if (i > 0 && *p++ != '.') return NULL;
      if (*p < '0' || *p > '9') return NULL;
      for (n = 0; *p >= '0' && *p <= '9' && n < 1000;) n = n * 10 + (*p++ - '0');
      v[i] = n;
    }
    if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 5 || v[2] > 6) return NULL;
    d->a = v[0], d->b = v[1], d->c = v[2];
  } else {
    d->form = *p == 'J' ? 'J' : 'N';
    if (*p == 'J') p++;
    if (*p < '0' || *p > '9') return NULL;
    for (n = 0; *p >= '0' && *p <= '9' && n < 1000;) n = n * 10 + (*p++ - '0');
    if (d->form == 'J' ? n < 1 || n > 365 : n > 365) return NULL;
    d->a = n;
  }
  d->time = 2 * 3600;
  if (*p == '/') p = rule_hms(p + 1, &d->time, 167);
  return p;
}

static bool parse_footer(tz_zone *z, const char *p) {
  int32_t off;
  if (!(p = rule_name(p)) || !(p = rule_hms(p, &off, 24))) return false;
  z->std_off = -off; /* POSIX counts west of Greenwich as positive */
  z->has_rule = true;
  if (!*p) return true;
  if (!(p = rule_name(p))) return false;
  z->dst_off = z->std_off + 3600;
  if (*p && *p != ',') {
    if (!(p = rule_hms(p, &off, 24))) return false;
    z->dst_off = -off;
  }
  if (*p != ',') return false; /* a DST zone without rules: not in tzdata */
  if (!(p = rule_date(p + 1, &z->start)) || *p != ',' || !(p = rule_date(p + 1, &z->end))) return false;
  z->has_dst = true;
  return *p == '\0';
}

/* The local (wall clock) second of the year's `d` at its time, as seconds
 * since the epoch of that wall clock. */
static int64_t rule_local(int64_t year, const tz_rule_date *d) {
  int64_t day;
  if (d->form == 'J') {
    day = sl__days_from_civil(year, 1, 1) + d->a - 1 + (sl__is_leap(year) && d->a >= 60);
  } else if (d->form == 'N') {
    day = sl__days_from_civil(year, 1, 1) + d->a;
  } else {
    int64_t first = sl__days_from_civil(year, d->a, 1);
    int wd_first = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t dom = 1 + (d->c - wd_first + 7) % 7 + (int64_t)(d->b - 1) * 7;
    int len = sl__month_len(year, d->a);
    while (dom > len) dom -= 7;
    day = first + dom - 1;
  }
  return day * 86400 + d->time;
}

static int32_t rule_offset(const tz_zone *z, int64_t t) {
  if (!z->has_dst) return z->std_off;
  int64_t year;
  int month, day;
  sl__civil_from_days(sl__floor_div(t + z->std_off, 86400), &year, &month, &day);
  /* Check this year's and the neighbours' switches so that a rule near New
   * Year (or a time past 24h) lands on the right side. */
  int32_t off = z->std_off;
  int64_t best = INT64_MIN;
  for (int64_t y = year - 1; y <= year + 1; y++) {
    int64_t start = rule_local(y, &z->start) - z->std_off; /* in standard time */
    int64_t end = rule_local(y, &z->end) - z->dst_off;     /* in daylight time */
    if (start <= t && start > best) best = start, off = z->dst_off;
    if (end <= t && end > best) best = end, off = z->std_off;
  }
  return off;
}

/* ---- TZif ---- */
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int64_t be64(const uint8_t *p) { return (int64_t)sl_get_be64(p); }

/* Parse a TZif image; SL_EINVAL when it is not one. */
static int parse_tzif(const uint8_t *buf, size_t len, tz_zone *z) {
  if (len < 44 || memcmp(buf, "TZif", 4) != 0) return SL_EINVAL;
  int version = buf[4];
  const uint8_t *p = buf;
  size_t tsize = 4, leapsize = 8;
  for (int pass = 0; pass < 2; pass++) {
    if ((size_t)(p - buf) + 44 > len || memcmp(p, "TZif", 4) != 0) return SL_EINVAL;
    uint32_t isut = be32(p + 20), isstd = be32(p + 24), leapcnt = be32(p + 28);
    uint32_t timecnt = be32(p + 32), typecnt = be32(p + 36), charcnt = be32(p + 40);
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || leapcnt > 100000 || isut > 256 || isstd > 256 ||
        charcnt > 65536)
      return SL_EINVAL;
    size_t body = (size_t)timecnt * tsize + timecnt + (size_t)typecnt * 6 + charcnt + (size_t)leapcnt * leapsize +
                  isstd + isut;
    const uint8_t *d = p + 44;
    if ((size_t)(d - buf) + body > len) return SL_EINVAL;
    if (pass == 0 && version >= '2') { /* skip the 32-bit block */
      p = d + body;
      tsize = 8, leapsize = 12;
      continue;
    }
    z->timecnt = timecnt, z->typecnt = typecnt;
    z->trans = malloc(sizeof(int64_t) * (timecnt ? timecnt : 1));
    z->trans_type = malloc(timecnt ? timecnt : 1);
    z->type_off = malloc(sizeof(int32_t) * typecnt);
    if (!z->trans || !z->trans_type || !z->type_off) return -ENOMEM;
    for (uint32_t i = 0; i < timecnt; i++) {
      z->trans[i] = tsize == 8 ? be64(d + i * 8) : (int32_t)be32(d + i * 4);
      if (i > 0 && z->trans[i] <= z->trans[i - 1]) return SL_EINVAL;
    }
    d += (size_t)timecnt * tsize;
    for (uint32_t i = 0; i < timecnt; i++) {
      if (d[i] >= typecnt) return SL_EINVAL;
      z->trans_type[i] = d[i];
    }
    d += timecnt;
    for (uint32_t i = 0; i < typecnt; i++) {
      int32_t off = (int32_t)be32(d + i * 6);
      if (off < -25 * 3600 || off > 26 * 3600) return SL_EINVAL;
      z->type_off[i] = off;
    }
    d += body - (size_t)timecnt * tsize - timecnt; /* the rest of the block */
    if (tsize == 8) {                              /* the footer */
      const uint8_t *f = d, *e = buf + len;
      if (f < e && *f == '\n') {
        const uint8_t *nl = memchr(f + 1, '\n', (size_t)(e - f - 1));
        if (!nl || nl - f - 1 > 200) return SL_EINVAL;
        char rule[201];
        memcpy(rule, f + 1, (size_t)(nl - f - 1));
        rule[nl - f - 1] = '\0';
        if (rule[0] && !parse_footer(z, rule)) return SL_EINVAL;
      }
    }
    return 0;
  }
  return SL_EINVAL;
}

static void zone_free(tz_zone *z) {
  if (!z) return;
  free(z->trans);
  free(z->trans_type);
  free(z->type_off);
  free(z);
}

/* A zone name is a relative path of the database: letters, digits and
 * "._+-" in components separated by '/', none of them "." or "..". The
 * leap-second "right/" tree counts time differently: not a zone here. */
static bool name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > SL_ZONE_MAX || name[0] == '/' || name[n - 1] == '/') return false;
  if (strncmp(name, "right/", 6) == 0) return false;
  const char *comp = name;
  for (const char *p = name;; p++) {
    char c = *p;
    if (c == '/' || c == '\0') {
      size_t cl = (size_t)(p - comp);
      if (cl == 0 || (cl == 1 && comp[0] == '.') || (cl == 2 && comp[0] == '.' && comp[1] == '.')) return false;
      if (c == '\0') return true;
      comp = p + 1;
      continue;
    }
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '+' || c == '-'))
      return false;
  }
}

/* The file of a zone, quietly: a name that is no regular file of the
 * database is SL_EINVAL (the caller words the error). */
static int read_zone_file(const char *path, uint8_t **out, size_t *out_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? SL_EINVAL : -errno;
  int rc = 0;
  uint8_t *buf = NULL;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    rc = -errno;
    goto out;
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 44 || st.st_size > TZ_FILE_MAX) {
    rc = SL_EINVAL;
    goto out;
  }
  if (!(buf = malloc((size_t)st.st_size))) {
    rc = -ENOMEM;
    goto out;
  }
  long r = sl_pread_full(fd, buf, (size_t)st.st_size, 0);
  if (r < 0) {
    rc = (int)r;
    goto out;
  }
  *out = buf, *out_len = (size_t)r;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return rc;
}

static int zone_load(const char *name, const tz_zone **out) {
  tz_zone *z = NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc;
  pthread_mutex_lock(&cache_lock);
  for (tz_zone *c = cache_head; c; c = c->next)
    if (strcmp(c->name, name) == 0) {
      *out = c;
      pthread_mutex_unlock(&cache_lock);
      return 0;
    }
  pthread_mutex_unlock(&cache_lock);

  if (!name_ok(name)) return SL_EINVAL;
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", tz_dir(), name) >= (int)sizeof path) return SL_EINVAL;
  if ((rc = read_zone_file(path, &buf, &len)) < 0) goto out;
  if (!(z = calloc(1, sizeof *z))) {
    rc = -ENOMEM;
    goto out;
  }
  snprintf(z->name, sizeof z->name, "%s", name);
  if ((rc = parse_tzif(buf, len, z)) < 0) goto out;

  pthread_mutex_lock(&cache_lock);
  for (tz_zone *c = cache_head; c; c = c->next) /* another thread may have won */
    if (strcmp(c->name, name) == 0) {
      *out = c;
      pthread_mutex_unlock(&cache_lock);
      goto out; /* frees ours */
    }
  if (cache_count < TZ_CACHE_MAX) {
    z->next = cache_head;
    cache_head = z;
    cache_count++;
    *out = z;
    z = NULL;
  } else {
    rc = SL_ETOOBIG; /* unreachable with a real database */
  }
  pthread_mutex_unlock(&cache_lock);
out:
  zone_free(z);
  free(buf);
  return rc;
}

static int32_t zone_offset(const tz_zone *z, int64_t t) {
  if (z->timecnt == 0 || t < z->trans[0]) return z->has_rule && z->timecnt == 0 ? rule_offset(z, t) : z->type_off[0];
  if (t >= z->trans[z->timecnt - 1] && z->has_rule) return rule_offset(z, t);
  uint32_t lo = 0, hi = z->timecnt - 1; /* the last transition <= t */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    if (z->trans[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return z->type_off[z->trans_type[lo]];
}

int sl_tz_exists(const char *name) {
  const tz_zone *z;
  return zone_load(name, &z);
}

int sl_tz_offset_at(const char *name, int64_t utc_seconds, int32_t *offset) {
  const tz_zone *z;
  int rc = zone_load(name, &z);
  if (rc == 0) *offset = zone_offset(z, utc_seconds);
  return rc;
}

int sl_tz_resolve_local(const char *name, int64_t local_seconds, const int32_t *preferred, int64_t *utc_seconds,
                        int32_t *offset) {
  const tz_zone *z;
  int rc = zone_load(name, &z);
  if (rc < 0) return rc;
  /* The offsets in force a day before and a day after bracket every
   * transition near the local time (tzdata has none closer than that). */
  int32_t before = zone_offset(z, local_seconds - 86400 - SL_OFFSET_MAX);
  int32_t after = zone_offset(z, local_seconds + 86400 + SL_OFFSET_MAX);
  bool before_ok = zone_offset(z, local_seconds - before) == before;
  bool after_ok = zone_offset(z, local_seconds - after) == after;
  if (preferred) {
    if (zone_offset(z, local_seconds - *preferred) == *preferred) {
      *utc_seconds = local_seconds - *preferred;
      *offset = *preferred;
      return 0;
    }
    /* java.time checks an offset against the earlier one only, so in a gap
     * the offset before it is accepted (and the time moved forward) */
    if (!(before_ok || after_ok) && *preferred == before) goto gap;
    return SL_EINVAL;
  }
  if (before_ok) {
    *utc_seconds = local_seconds - before;
    *offset = before;
    return 0;
  }
  if (after_ok) {
    *utc_seconds = local_seconds - after;
    *offset = after;
    return 0;
  }
gap:
  *utc_seconds = local_seconds - before;
  *offset = zone_offset(z, *utc_seconds);
  return 1;
}

static char tz_version[32] = "unknown";

static void read_version(void) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/tzdata.zi", tz_dir()) >= (int)sizeof path) return;
  FILE *f = fopen(path, "re");
  if (!f) return;
  char line[128];
  if (fgets(line, sizeof line, f) && strncmp(line, "# version ", 10) == 0) {
    line[strcspn(line, "\r\n")] = '\0';
    size_t n = SL_MIN(strlen(line + 10), sizeof tz_version - 1);
    memcpy(tz_version, line + 10, n);
    tz_version[n] = '\0';
  }
  fclose(f);
}

const char *sl_tz_version(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, read_version);
  return tz_version;
}

int sl__tzif_parse(const uint8_t *buf, size_t len, int64_t probe, int32_t *offset) {
  tz_zone *z = calloc(1, sizeof *z);
  if (!z) return -ENOMEM;
  int rc = parse_tzif(buf, len, z);
  if (rc == 0) *offset = zone_offset(z, probe);
  zone_free(z);
  return rc;
}
