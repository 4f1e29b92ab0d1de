/*
 * csv_columns.c: the header and the values of the CSV import
 * (csv_import_int.h; csv_import.c is the import itself).
 *
 * HEADERS are split as neo4j-admin's DataFactories splits them: "{...}"
 * options first (only neo4j-admin's {crs:..} / {srid:..} of a point column
 * and {timezone:..} of a time or datetime column: the default of its cells),
 * then "(GROUP)" from the first '(' to the last ')', then the type after the
 * last ':'. So `a:b:string` is the key "a:b", and a key with '(' cannot be
 * written at all (csv_export.c refuses such keys).
 *
 * VALUES of one row live in a scratch arena (lists, bytes) and in the record
 * buffer (strings), both reused for the next row. Doubles: Java's
 * Double.parseDouble grammar minus hexadecimal, then strtod (both read the
 * decimal forms to the same, correctly rounded, double).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv_import_int.h"
#include "sl_base.h"

/* ---- headers ------------------------------------------------------------------------ */

static const struct {
  const char *name;
  vtype type;
} type_names[] = {{"string", VT_STRING}, {"long", VT_LONG},    {"int", VT_INT},
                  {"short", VT_SHORT},   {"byte", VT_BYTE},    {"double", VT_DOUBLE},
                  {"float", VT_FLOAT},   {"boolean", VT_BOOL}, {"char", VT_CHAR},
                  {"date", VT_DATE},     {"localtime", VT_LOCALTIME}, {"time", VT_TIME},
                  {"localdatetime", VT_LOCALDATETIME}, {"datetime", VT_DATETIME}, {"duration", VT_DURATION},
                  {"point", VT_POINT}};

/* Where the next array delimiter starts in s[at..n), or n. */
size_t sl__csv_ad_next(const csvimp *im, const char *s, size_t n, size_t at) {
  for (; at < n; at++)
    if (s[at] == im->ad[0] && (im->adlen == 1 || (n - at >= im->adlen && !memcmp(s + at, im->ad, im->adlen))))
      return at;
  return n;
}

int sl__csv_why(csvimp *im, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(im->why, sizeof im->why, fmt, ap);
  va_end(ap);
  return rc;
}

/* "column N (HEADER): " then the reason. */
int sl__csv_col_why(csvimp *im, size_t i, const char *fmt, ...) {
  int n = snprintf(im->why, sizeof im->why, "column %zu (%.64s): ", i + 1, im->cols[i].text);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(im->why + n, sizeof im->why - (size_t)n, fmt, ap);
  va_end(ap);
  return SL_EINVAL;
}

void sl__csv_cols_free(csvimp *im) {
  for (size_t i = 0; i < im->ncols; i++) {
    free(im->cols[i].name);
    free(im->cols[i].text);
    free(im->cols[i].zone);
  }
  free(im->cols);
  im->cols = NULL;
  im->ncols = 0;
}

static int space_find(csvimp *im, const char *name, bool create, size_t *out) {
  for (size_t i = 0; i < im->nspaces; i++)
    if (!strcmp(im->spaces[i].name, name)) {
      *out = i;
      return 0;
    }
  if (!create) return SL_ENOTFOUND;
  idspace *p = realloc(im->spaces, (im->nspaces + 1) * sizeof *p);
  if (!p) return -ENOMEM;
  im->spaces = p;
  p[im->nspaces] = (idspace){.name = strdup(name)};
  if (!p[im->nspaces].name) return -ENOMEM;
  *out = im->nspaces++;
  return 0;
}

static bool streq_ci(const char *a, size_t n, const char *b) { return strlen(b) == n && !strncasecmp(a, b, n); }

/* The options of a column, "{key:value, ...}" (values bare or quoted):
 * {timezone:ZONE} on time and datetime columns, {crs:NAME} or {srid:N} on
 * point columns, as neo4j-admin takes them. */
static int parse_options(csvimp *im, size_t i, const char *o, size_t n) {
  column *c = &im->cols[i];
  bool zoned = c->kind == COL_PROP && (c->type == VT_TIME || c->type == VT_DATETIME);
  bool point = c->kind == COL_PROP && c->type == VT_POINT;
  if (n < 2 || o[n - 1] != '}') return sl__csv_col_why(im, i, "header options must be {key:value, ...}");
  o++, n -= 2;
  while (n) {
    size_t kl = 0, vl;
    sl__csv_trim(&o, &n);
    while (kl < n && o[kl] != ':' && o[kl] != ',') kl++;
    const char *key = o, *val;
    size_t klt = kl;
    sl__csv_trim(&key, &klt);
    if (kl == n || o[kl] != ':') return sl__csv_col_why(im, i, "header option '%.*s' has no value", (int)SL_MIN(klt, (size_t)20), key);
    o += kl + 1, n -= kl + 1;
    sl__csv_trim(&o, &n);
    if (n && (o[0] == '\'' || o[0] == '"')) {
      const char *end = memchr(o + 1, o[0], n - 1);
      if (!end) return sl__csv_col_why(im, i, "header option '%.*s': missing end quote", (int)SL_MIN(klt, (size_t)20), key);
      val = o + 1, vl = (size_t)(end - o - 1);
      n -= vl + 2, o = end + 1;
      sl__csv_trim(&o, &n);
    } else {
      for (vl = 0; vl < n && o[vl] != ','; vl++) {}
      val = o, o += vl, n -= vl;
      sl__csv_trim(&val, &vl);
    }
    if (n && o[0] != ',') return sl__csv_col_why(im, i, "header options must be {key:value, ...}");
    if (n) o++, n--;
    char v[SL_ZONE_MAX + 1];
    if (vl == 0 || vl > SL_ZONE_MAX) return sl__csv_col_why(im, i, "header option '%.*s': bad value", (int)SL_MIN(klt, (size_t)20), key);
    memcpy(v, val, vl);
    v[vl] = '\0';
    if (zoned && streq_ci(key, klt, "timezone")) {
      sl_value probe;
      char zb[SL_ZONE_MAX + 1], why[160];
      if (!strcasecmp(v, "UTC")) strcpy(v, "Z"); /* as --default-time-zone */
      if (sl_temporal_parse(SL_DATETIME, "2000-01-01", 10, v, &probe, zb, why, sizeof why) < 0)
        return sl__csv_col_why(im, i, "{timezone:%s}: %s", v, why);
      free(c->zone);
      if (!(c->zone = strdup(v))) return -ENOMEM;
    } else if (point && streq_ci(key, klt, "crs")) {
      if (!(c->srid = sl_srid_from_name(v, vl)))
        return sl__csv_col_why(im, i, "{crs:%s}: unknown crs (cartesian, cartesian-3d, wgs-84, wgs-84-3d)", v);
    } else if (point && streq_ci(key, klt, "srid")) {
      char *end;
      long long srid = strtoll(v, &end, 10);
      if (*end || srid <= 0 || srid > UINT32_MAX || !sl_srid_name((uint32_t)srid))
        return sl__csv_col_why(im, i, "{srid:%s}: unknown srid (7203, 9157, 4326 or 4979)", v);
      c->srid = srid;
    } else {
      return sl__csv_col_why(im, i, "header option '%.*s' is not supported here (only {timezone:..} on time and datetime columns, {crs:..} on point columns)",
                             (int)SL_MIN(klt, (size_t)20), key);
    }
  }
  return 0;
}

/* Parse header field i (text[0..n), NUL-terminated) into im->cols[i]. */
static int parse_column(csvimp *im, size_t i, const char *text, size_t n) {
  column *c = &im->cols[i];
  int rc;
  if (!(c->text = strdup(text))) return -ENOMEM;
  if (n == 0) return 0; /* COL_IGNORE */
  if (strlen(text) != n) return sl__csv_col_why(im, i, "the header holds a NUL byte");

  /* The options: from the first '{' to the last '}', cut out (read below,
   * once the type is known). */
  char *rest = strdup(text), *group = NULL, *options = NULL;
  if (!rest) return -ENOMEM;
  char *brace = strchr(rest, '{');
  if (brace) {
    char *close = strrchr(rest, '}');
    if (!close || close < brace) {
      free(rest);
      return sl__csv_col_why(im, i, "'{' without a closing '}'");
    }
    if (!(options = strndup(brace, (size_t)(close - brace + 1)))) {
      free(rest);
      return -ENOMEM;
    }
    memmove(brace, close + 1, strlen(close + 1) + 1);
  }
  /* The group: from the first '(' to the last ')', cut out. */
  char *open = strchr(rest, '(');
  if (open) {
    char *close = strrchr(rest, ')');
    if (!close || close < open) {
      free(rest);
      return sl__csv_col_why(im, i, "'(' without a closing ')'");
    }
    *close = 0;
    group = open + 1;
    memmove(open, close + 1, strlen(close + 1) + 1);
  }
  char *colon = strrchr(rest, ':');
  const char *type = NULL;
  if (colon) {
    *colon = 0;
    type = colon + 1;
  }
  /* rest is the name now (empty: none); group points past it, still valid. */
  size_t tl = type ? strlen(type) : 0;
  rc = 0;
  if (type && streq_ci(type, tl, "IGNORE")) {
    c->kind = COL_IGNORE;
  } else if (type && (streq_ci(type, tl, "ID") || streq_ci(type, tl, "START_ID") || streq_ci(type, tl, "END_ID"))) {
    c->kind = streq_ci(type, tl, "ID") ? COL_ID : streq_ci(type, tl, "START_ID") ? COL_START : COL_END;
    if ((c->kind == COL_ID) == im->rels) {
      rc = sl__csv_col_why(im, i, "a %s file has no %s column", im->rels ? "relationship" : "node", type);
    } else {
      const char *g = group ? group : "";
      rc = space_find(im, g, c->kind == COL_ID, &c->space);
      if (rc == SL_ENOTFOUND) rc = sl__csv_col_why(im, i, "id space '%.64s' is not defined by any node file", g);
    }
  } else if (group) {
    rc = sl__csv_col_why(im, i, "an id space (...) belongs to an :ID, :START_ID or :END_ID column");
  } else if (type && streq_ci(type, tl, "LABEL")) {
    c->kind = COL_LABEL;
    if (im->rels) rc = sl__csv_col_why(im, i, "a relationship file has no :LABEL column");
  } else if (type && streq_ci(type, tl, "TYPE")) {
    c->kind = COL_TYPE;
    if (!im->rels) rc = sl__csv_col_why(im, i, "a node file has no :TYPE column");
  } else {
    c->kind = COL_PROP;
    c->type = VT_STRING;
    if (type) {
      if (tl > 2 && !strcmp(type + tl - 2, "[]")) {
        c->array = true;
        tl -= 2;
      }
      size_t k = 0;
      while (k < SL_ARRAY_LEN(type_names) && !streq_ci(type, tl, type_names[k].name)) k++;
      if (k < SL_ARRAY_LEN(type_names))
        c->type = type_names[k].type;
      else
        rc = sl__csv_col_why(im, i, "unknown type '%s'", type);
    }
    if (!rc && !*rest) rc = sl__csv_col_why(im, i, "a property column needs a name");
  }
  if (!rc && *rest && c->kind != COL_IGNORE && (c->kind == COL_PROP || c->kind == COL_ID)) {
    if (strlen(rest) > SL_NAME_MAX) rc = sl__csv_col_why(im, i, "property names are at most %d bytes", SL_NAME_MAX);
    for (size_t j = 0; !rc && j < i; j++)
      if (im->cols[j].name && !strcmp(im->cols[j].name, rest))
        rc = sl__csv_col_why(im, i, "property '%.64s' is also column %zu", rest, j + 1);
    if (!rc && !(c->name = strdup(rest))) rc = -ENOMEM;
  }
  if (!rc && options) rc = parse_options(im, i, options, strlen(options));
  free(options);
  free(rest);
  return rc;
}

int sl__csv_parse_header(csvimp *im) {
  csv_reader *r = &im->rd;
  if (!(im->cols = calloc(r->nfields ? r->nfields : 1, sizeof *im->cols))) return -ENOMEM;
  im->ncols = r->nfields;
  bool have[COL_PROP + 1] = {0};
  for (size_t i = 0; i < r->nfields; i++) {
    int rc = parse_column(im, i, r->buf + r->fields[i].off, r->fields[i].len);
    if (rc) return rc;
    colkind k = im->cols[i].kind;
    if (have[k] && (k == COL_ID || k == COL_START || k == COL_END || k == COL_TYPE))
      return sl__csv_col_why(im, i, "a second %s column",
                             k == COL_ID      ? ":ID"
                             : k == COL_START ? ":START_ID"
                             : k == COL_END   ? ":END_ID"
                                      : ":TYPE");
    have[k] = true;
  }
  if (im->rels && (!have[COL_START] || !have[COL_END]))
    return sl__csv_why(im, SL_EINVAL, "a relationship header needs :START_ID and :END_ID columns");
  free(im->props);
  if (!(im->props = calloc(im->ncols + 1, sizeof *im->props))) return -ENOMEM;
  return 0;
}

/* ---- values ------------------------------------------------------------------------------ */
void sl__csv_trim(const char **s, size_t *n) {
  while (*n && (unsigned char)(*s)[0] <= ' ') (*s)++, (*n)--;
  while (*n && (unsigned char)(*s)[*n - 1] <= ' ') (*n)--;
}

static int fail_point(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_point(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return SL_EINVAL;
}

/* 0, SL_EINVAL (not an integer) or 1 (outside [lo, hi]). */
static int parse_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out) {
  sl__csv_trim(&s, &n);
  bool neg = n && s[0] == '-';
  size_t i = neg;
  if (i == n) return SL_EINVAL;
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    unsigned d = (unsigned char)s[i] - '0';
    if (d > 9 || v > (limit - d) / 10) return SL_EINVAL;
    v = v * 10 + d;
  }
  int64_t x = neg ? (int64_t)(0 - v) : (int64_t)v; /* two's complement: INT64_MIN too */
  if (x < lo || x > hi) return 1;
  *out = x;
  return 0;
}

/* Java's Double.parseDouble, without hexadecimal: [+-] then NaN, Infinity,
 * or digits with an optional fraction and exponent, and an f/d suffix. */
static int parse_double(const char *s, size_t n, double *out) {
  char tmp[128];
  sl__csv_trim(&s, &n);
  if (n && (s[n - 1] == 'f' || s[n - 1] == 'F' || s[n - 1] == 'd' || s[n - 1] == 'D')) n--;
  if (n == 0 || n >= sizeof tmp) return SL_EINVAL;
  size_t i = s[0] == '+' || s[0] == '-';
  bool neg = s[0] == '-';
  if (n - i == 3 && !memcmp(s + i, "NaN", 3)) {
    *out = NAN;
    return 0;
  }
  if (n - i == 8 && !memcmp(s + i, "Infinity", 8)) {
    *out = neg ? -INFINITY : INFINITY;
    return 0;
  }
  size_t digits = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
  if (i < n && s[i] == '.')
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) digits++;
  if (!digits) return SL_EINVAL;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t e = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == e) return SL_EINVAL;
  }
  if (i != n) return SL_EINVAL;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  *out = strtod(tmp, NULL); /* overflow gives +-HUGE_VAL = +-Infinity, as in Java */
  return 0;
}

static int parse_bool(const char *s, size_t n, bool *out) {
  sl__csv_trim(&s, &n);
  if (streq_ci(s, n, "true"))
    *out = true;
  else if (streq_ci(s, n, "false"))
    *out = false;
  else
    return SL_EINVAL;
  return 0;
}

/* Length of one UTF-8 sequence at s, or 0 when s[0..n) is not one. */
static size_t utf8_one(const unsigned char *s, size_t n) {
  size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
  if (!len || len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  return len;
}

static const char *type_name(vtype t) {
  for (size_t k = 0; k < SL_ARRAY_LEN(type_names); k++)
    if (type_names[k].type == t) return type_names[k].name;
  return "?";
}

/* A point cell as neo4j-admin reads it: a Cypher map of numbers and a
 * quoted crs, {x:1.5, y:-2, crs:'cartesian'} (keys in any case; srid:N too). */
static int parse_point(const char *s, size_t n, int64_t default_srid, sl_value *v, char *why, size_t whylen) {
  sl__point_parts pp = {0};
  sl__csv_trim(&s, &n);
  if (n < 2 || s[0] != '{' || s[n - 1] != '}') goto syntax;
  s++, n -= 2;
  while (n) {
    size_t kl = 0;
    sl__csv_trim(&s, &n);
    while (kl < n && ((s[kl] | 32) >= 'a' && (s[kl] | 32) <= 'z')) kl++;
    const char *key = s;
    s += kl, n -= kl;
    sl__csv_trim(&s, &n);
    if (!kl || !n || s[0] != ':') goto syntax;
    s++, n--;
    sl__csv_trim(&s, &n);
    size_t vl = 0;
    const char *val = s;
    if (n && (s[0] == '\'' || s[0] == '"')) {
      const char *end = memchr(s + 1, s[0], n - 1);
      if (!end) goto syntax;
      val = s + 1, vl = (size_t)(end - s - 1);
      s = end + 1, n -= vl + 2;
    } else {
      while (vl < n && s[vl] != ',') vl++;
      s += vl, n -= vl;
    }
    sl__csv_trim(&s, &n);
    if (n && s[0] != ',') goto syntax;
    if (n) s++, n--;
    int i = 0;
    while (i < SL__PT_NCOORD && !streq_ci(key, kl, sl__point_keys[i])) i++;
    if (i < SL__PT_NCOORD) {
      if (pp.has[i]) return fail_point(why, whylen, "point: %s given twice", sl__point_keys[i]);
      if (parse_double(val, vl, &pp.c[i])) return fail_point(why, whylen, "point: %s is not a number", sl__point_keys[i]);
      pp.has[i] = true;
    } else if (streq_ci(key, kl, "crs")) {
      pp.crs = val, pp.crs_len = vl;
    } else if (streq_ci(key, kl, "srid")) {
      int64_t srid;
      if (parse_int(val, vl, 1, UINT32_MAX, &srid)) return fail_point(why, whylen, "point: srid is not a number");
      pp.srid = srid;
    } else {
      return fail_point(why, whylen, "point: unknown key '%.*s' (x, y, z, longitude, latitude, height, crs, srid)",
                        (int)SL_MIN(kl, (size_t)20), key);
    }
  }
  if (!pp.crs && !pp.srid) pp.srid = default_srid; /* the column's {crs:..} */
  return sl__point_make(&pp, v, why, whylen);
syntax:
  return fail_point(why, whylen, "not a point such as {x:1.5, y:2, crs:'cartesian'}");
}

/* One scalar of column type t from s[0..n) (NUL at s[n] for strings).
 * what: "" or "element N: " for messages. */
static int scalar(csvimp *im, size_t col, vtype t, const char *s, size_t n, const char *what, sl_value *v) {
  static const int64_t lo[] = {
      [VT_LONG] = INT64_MIN, [VT_INT] = INT32_MIN, [VT_SHORT] = INT16_MIN, [VT_BYTE] = INT8_MIN};
  static const int64_t hi[] = {
      [VT_LONG] = INT64_MAX, [VT_INT] = INT32_MAX, [VT_SHORT] = INT16_MAX, [VT_BYTE] = INT8_MAX};
  int rc;
  *v = (sl_value){0};
  switch (t) {
  case VT_LONG:
  case VT_INT:
  case VT_SHORT:
  case VT_BYTE:
    v->kind = SL_INT;
    rc = parse_int(s, n, lo[t], hi[t], &v->u.i);
    if (rc == 1) return sl__csv_col_why(im, col, "%s%.40s is out of range for %s", what, s, type_name(t));
    if (rc) return sl__csv_col_why(im, col, "%snot an integer: \"%.40s\"", what, s);
    return 0;
  case VT_DOUBLE:
  case VT_FLOAT:
    v->kind = SL_DOUBLE;
    if (parse_double(s, n, &v->u.d)) return sl__csv_col_why(im, col, "%snot a number: \"%.40s\"", what, s);
    return 0;
  case VT_BOOL:
    v->kind = SL_BOOL;
    if (parse_bool(s, n, &v->u.b))
      return sl__csv_col_why(im, col, "%snot a boolean (true or false): \"%.40s\"", what, s);
    return 0;
  case VT_DATE:
  case VT_LOCALTIME:
  case VT_TIME:
  case VT_LOCALDATETIME:
  case VT_DATETIME:
  case VT_DURATION: {
    char reason[200], *zone = sl__scratch_alloc(im->arena, SL_ZONE_MAX + 1);
    if (!zone) return -ENOMEM;
    sl__csv_trim(&s, &n);
    const char *dz = im->cols[col].zone ? im->cols[col].zone : im->o->default_time_zone;
    if (sl_temporal_parse((sl_kind)(SL_DATE + (t - VT_DATE)), s, n, dz, v, zone, reason, sizeof reason) < 0)
      return sl__csv_col_why(im, col, "%s%s", what, reason);
    return 0;
  }
  case VT_POINT: {
    char reason[200];
    if (parse_point(s, n, im->cols[col].srid, v, reason, sizeof reason) < 0) return sl__csv_col_why(im, col, "%s%s", what, reason);
    return 0;
  }
  case VT_CHAR:
  case VT_STRING:
    if (im->o->trim_strings) sl__csv_trim(&s, &n);
    if (memchr(s, 0, n)) return sl__csv_col_why(im, col, "%sa string may not hold a NUL byte", what);
    if (t == VT_CHAR && (!n || utf8_one((const unsigned char *)s, n) != n))
      return sl__csv_col_why(im, col, "%snot one character: \"%.40s\"", what, s);
    v->kind = SL_STRING;
    v->u.s = s;
    v->len = n;
    return 0;
  }
  return SL_EINVAL;
}

/* The value of property column col from field f; *has = false for none. */
int sl__csv_prop_value(csvimp *im, size_t col, const csv_field *f, sl_value *v, bool *has) {
  const column *c = &im->cols[col];
  const char *s = im->rd.buf + f->off;
  size_t n = f->len;
  *has = false;
  if (n == 0 && !f->quoted) return 0;
  if (!c->array) {
    if (n == 0 && (c->type != VT_STRING || im->o->ignore_empty_strings)) return 0;
    *has = true;
    return scalar(im, col, c->type, s, n, "", v);
  }
  /* An array: n == 0 (quoted) is the empty list; else count+1 elements. */
  size_t count = 0;
  if (n) {
    count = 1;
    for (size_t at = sl__csv_ad_next(im, s, n, 0); at < n; at = sl__csv_ad_next(im, s, n, at + im->adlen)) count++;
  }
  *has = true;
  if (c->type == VT_BYTE) {
    uint8_t *bytes = sl__scratch_alloc(im->arena, count + 1);
    if (!bytes) return -ENOMEM;
    for (size_t i = 0, at = 0; i < count; i++) {
      size_t len = sl__csv_ad_next(im, s, n, at) - at;
      int64_t x;
      int rc = parse_int(s + at, len, INT8_MIN, INT8_MAX, &x);
      if (rc == 1)
        return sl__csv_col_why(im, col, "element %zu: %.*s is out of range for byte", i + 1, (int)SL_MIN(len, 40),
                               s + at);
      if (rc)
        return sl__csv_col_why(im, col, "element %zu: not an integer: \"%.*s\"", i + 1, (int)SL_MIN(len, 40), s + at);
      bytes[i] = (uint8_t)x;
      at += len + im->adlen;
    }
    *v = (sl_value){.kind = SL_BYTES, .len = count, .u.bytes = bytes};
    return 0;
  }
  sl_value *items = sl__scratch_alloc(im->arena, (count + 1) * sizeof *items);
  if (!items) return -ENOMEM;
  char *w = (char *)s; /* elements are cut in place: the delimiter becomes NUL */
  for (size_t i = 0, at = 0; i < count; i++) {
    size_t len = sl__csv_ad_next(im, w, n, at) - at;
    w[at + len] = 0;
    char what[32];
    snprintf(what, sizeof what, "element %zu: ", i + 1);
    int rc = scalar(im, col, c->type, w + at, len, what, &items[i]);
    if (rc) return rc;
    at += len + im->adlen;
  }
  *v = (sl_value){.kind = SL_LIST, .elem_kind = count ? items[0].kind : SL_NULL, .len = count, .u.items = items};
  return 0;
}

/* The key of an id field in its space's map: the bytes (string ids) or the
 * int64's 8 bytes (integer ids). v receives the value to keep as property. */
int sl__csv_id_key(csvimp *im, size_t col, const csv_field *f, char key8[8], const char **key, size_t *len,
                   sl_value *v) {
  const char *s = im->rd.buf + f->off;
  size_t n = f->len;
  if (im->o->id_type == SL_CSV_ID_INTEGER) {
    int rc = scalar(im, col, VT_LONG, s, n, "", v);
    if (rc) return rc;
    sl_put_be64((uint8_t *)key8, (uint64_t)v->u.i);
    *key = key8;
    *len = 8;
    return 0;
  }
  int rc = scalar(im, col, VT_STRING, s, n, "", v);
  *key = v->u.s;
  *len = v->len;
  return rc;
}
