/*
 * JSON values in both directions, shared by mutation files, the canonical
 * export and import, and log printing.
 *
 * OUTPUT goes through sl__jbuf, a plain growable buffer that the exporters
 * flush to their FILE in large pieces: one entity costs no allocation once
 * the buffer has grown to the largest entity. Strings are escaped minimally
 * (interchange.h), copying runs of plain bytes at once.
 *
 * DOUBLES: the shortest round-trip form is found by asking printf for p
 * significant digits ("%.*e", correctly rounded by glibc) and strtod for the
 * way back. Whether p digits read back is monotone in p (the p-digit grid is
 * part of the p+1-digit grid, so the nearest p+1-digit decimal is at least as
 * close), so a binary search over 1..17 needs about four tries. The digits
 * are then laid out as ECMAScript does, plus ".0" where the text would
 * otherwise read as an integer.
 *
 * INPUT: jansson has already parsed the text (and told integers from reals:
 * "1.0" and "1e3" are reals, an integer beyond int64 is a parse error). The
 * conversion checks the shapes interchange.h allows and puts lists and
 * decoded bytes into a per-line arena, so a line of any size costs a few
 * block allocations that the next line reuses.
 */
#include "interchange_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sl_base.h"

static bool srid_3d(uint32_t srid) { return srid == SL_SRID_CARTESIAN_3D || srid == SL_SRID_WGS84_3D; }

/* ---- output buffer --------------------------------------------------------- */
static bool jbuf_grow(sl__jbuf *b, size_t more) {
  if (b->err) return false;
  if (b->len + more <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->err = -ENOMEM;
    return false;
  }
  b->p = p;
  b->cap = cap;
  return true;
}

void sl__jbuf_put(sl__jbuf *b, const void *s, size_t n) {
  if (!jbuf_grow(b, n)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

void sl__jbuf_putc(sl__jbuf *b, char c) {
  if (!jbuf_grow(b, 1)) return;
  b->p[b->len++] = c;
}

void sl__jbuf_u64(sl__jbuf *b, uint64_t v) {
  char tmp[20];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  sl__jbuf_put(b, tmp + i, sizeof tmp - i);
}

void sl__jbuf_i64(sl__jbuf *b, int64_t v) {
  if (v < 0) {
    sl__jbuf_putc(b, '-');
    sl__jbuf_u64(b, (uint64_t)0 - (uint64_t)v); /* INT64_MIN too */
  } else {
    sl__jbuf_u64(b, (uint64_t)v);
  }
}

void sl__jbuf_str(sl__jbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  sl__jbuf_putc(b, '"');
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = u[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    sl__jbuf_put(b, s + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      sl__jbuf_put(b, esc, 2);
    } else {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      sl__jbuf_put(b, esc, 6);
    }
  }
  sl__jbuf_put(b, s + run, n - run);
  sl__jbuf_putc(b, '"');
}

static void jbuf_double(sl__jbuf *b, double d) {
  char tmp[SL_DOUBLE_BUF];
  size_t n = sl_double_format(d, tmp);
  if (isfinite(d)) {
    sl__jbuf_put(b, tmp, n);
  } else {
    sl__jbuf_puts(b, "{\"$double\":\"");
    sl__jbuf_put(b, tmp, n);
    sl__jbuf_puts(b, "\"}");
  }
}

/* The $-tags of the temporal kinds, by kind - SL_DATE (spec/types.md). */
static const char *const TEMPORAL_TAGS[] = {"$date", "$localtime", "$time", "$localdatetime", "$datetime", "$duration"};

void sl__jbuf_temporal(sl__jbuf *b, sl_kind kind, const sl_value *v) {
  char tmp[SL_TEMPORAL_TEXT_MAX];
  sl_value k = *v;
  k.kind = kind;
  int n = sl_temporal_format(&k, tmp, sizeof tmp);
  sl__jbuf_put(b, tmp, n > 0 ? (size_t)n : 0);
}

void sl__jbuf_point_map(sl__jbuf *b, const sl_value *v, const char *sep) {
  char tmp[SL_DOUBLE_BUF];
  sl__jbuf_puts(b, "{x:");
  sl__jbuf_put(b, tmp, sl_double_format(v->u.pt.x, tmp));
  sl__jbuf_puts(b, sep);
  sl__jbuf_puts(b, "y:");
  sl__jbuf_put(b, tmp, sl_double_format(v->u.pt.y, tmp));
  if (srid_3d(v->u.pt.srid)) {
    sl__jbuf_puts(b, sep);
    sl__jbuf_puts(b, "z:");
    sl__jbuf_put(b, tmp, sl_double_format(v->u.pt.z, tmp));
  }
  sl__jbuf_puts(b, sep);
  sl__jbuf_puts(b, "crs:'");
  const char *name = sl_srid_name(v->u.pt.srid);
  sl__jbuf_puts(b, name ? name : "?");
  sl__jbuf_puts(b, "'}");
}

static void jbuf_scalar(sl__jbuf *b, sl_kind kind, const sl_value *v) {
  switch (kind) {
  case SL_BOOL:
    sl__jbuf_puts(b, v->u.b ? "true" : "false");
    break;
  case SL_INT:
    sl__jbuf_i64(b, v->u.i);
    break;
  case SL_DOUBLE:
    jbuf_double(b, v->u.d);
    break;
  case SL_STRING:
    sl__jbuf_str(b, v->u.s, v->len);
    break;
  case SL_BYTES:
    sl__jbuf_puts(b, "{\"$bytes\":\"");
    if (jbuf_grow(b, (v->len + 2) / 3 * 4)) b->len += sl_base64_encode(v->u.bytes, v->len, b->p + b->len);
    sl__jbuf_puts(b, "\"}");
    break;
  case SL_DATE:
  case SL_LOCALTIME:
  case SL_TIME:
  case SL_LOCALDATETIME:
  case SL_DATETIME:
  case SL_DURATION:
    sl__jbuf_puts(b, "{\"");
    sl__jbuf_puts(b, TEMPORAL_TAGS[kind - SL_DATE]);
    sl__jbuf_puts(b, "\":\"");
    sl__jbuf_temporal(b, kind, v);
    sl__jbuf_puts(b, "\"}");
    break;
  case SL_POINT:
    sl__jbuf_puts(b, "{\"$point\":{\"srid\":");
    sl__jbuf_u64(b, v->u.pt.srid);
    sl__jbuf_puts(b, ",\"x\":");
    jbuf_double(b, v->u.pt.x);
    sl__jbuf_puts(b, ",\"y\":");
    jbuf_double(b, v->u.pt.y);
    if (srid_3d(v->u.pt.srid)) {
      sl__jbuf_puts(b, ",\"z\":");
      jbuf_double(b, v->u.pt.z);
    }
    sl__jbuf_puts(b, "}}");
    break;
  default: /* SL_NULL / SL_LIST never reach here: lists hold scalars */
    sl__jbuf_puts(b, "null");
    break;
  }
}

void sl__jbuf_value(sl__jbuf *b, const sl_value *v) {
  if (v->kind != SL_LIST) {
    jbuf_scalar(b, v->kind, v);
    return;
  }
  sl__jbuf_putc(b, '[');
  for (size_t i = 0; i < v->len; i++) {
    if (i) sl__jbuf_putc(b, ',');
    jbuf_scalar(b, v->elem_kind, &v->u.items[i]);
  }
  sl__jbuf_putc(b, ']');
}

void sl__jbuf_props(sl__jbuf *b, const sl_prop *props, size_t n) {
  sl__jbuf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) sl__jbuf_putc(b, ',');
    sl__jbuf_str(b, props[i].key, strlen(props[i].key));
    sl__jbuf_putc(b, ':');
    sl__jbuf_value(b, &props[i].value);
  }
  sl__jbuf_putc(b, '}');
}

int sl__jbuf_flush(sl__jbuf *b, FILE *out, const char *name) {
  if (b->err) {
    sl_diag_error("%s: %s", name, sl_strerror(b->err));
    return b->err;
  }
  if (b->len && fwrite(b->p, 1, b->len, out) != b->len) {
    int rc = errno ? -errno : -EIO;
    sl_diag_error("%s: write failed: %s", name, sl_strerror(rc));
    return rc;
  }
  b->len = 0;
  return 0;
}

int sl_json_put_string(FILE *out, const char *s, size_t n) {
  sl__jbuf b = {0};
  sl__jbuf_str(&b, s, n);
  int rc = b.err;
  if (!rc && fwrite(b.p, 1, b.len, out) != b.len) rc = errno ? -errno : -EIO;
  sl__jbuf_free(&b);
  return rc;
}

void sl__jbuf_free(sl__jbuf *b) {
  free(b->p);
  *b = (sl__jbuf){0};
}

/* ---- doubles ------------------------------------------------------------------ */
static size_t put_str(char *buf, const char *s) {
  size_t n = strlen(s);
  memcpy(buf, s, n + 1);
  return n;
}

size_t sl_double_format(double d, char buf[SL_DOUBLE_BUF]) {
  if (isnan(d)) return put_str(buf, "NaN");
  if (isinf(d)) return put_str(buf, d > 0 ? "Infinity" : "-Infinity");
  if (d == 0) return put_str(buf, signbit(d) ? "-0.0" : "0.0");

  char tmp[40];
  int lo = 1, hi = 17;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    snprintf(tmp, sizeof tmp, "%.*e", mid - 1, d);
    if (strtod(tmp, NULL) == d)
      hi = mid;
    else
      lo = mid + 1;
  }
  snprintf(tmp, sizeof tmp, "%.*e", lo - 1, d);

  /* tmp is [-]D[.DDD]e(+|-)XX: collect the digits and the exponent. */
  char dig[20];
  int k = 0;
  const char *p = tmp;
  bool neg = *p == '-';
  if (neg) p++;
  for (; *p != 'e'; p++)
    if (*p != '.') dig[k++] = *p;
  int e = atoi(p + 1);
  while (k > 1 && dig[k - 1] == '0') k--;

  /* ECMAScript Number::toString: n is the decimal point's position. */
  int n = e + 1;
  size_t o = 0;
  if (neg) buf[o++] = '-';
  if (k <= n && n <= 21) {
    memcpy(buf + o, dig, (size_t)k);
    o += (size_t)k;
    for (int i = k; i < n; i++) buf[o++] = '0';
    buf[o++] = '.';
    buf[o++] = '0';
  } else if (0 < n && n <= 21) {
    memcpy(buf + o, dig, (size_t)n);
    o += (size_t)n;
    buf[o++] = '.';
    memcpy(buf + o, dig + n, (size_t)(k - n));
    o += (size_t)(k - n);
  } else if (-6 < n && n <= 0) {
    buf[o++] = '0';
    buf[o++] = '.';
    for (int i = n; i < 0; i++) buf[o++] = '0';
    memcpy(buf + o, dig, (size_t)k);
    o += (size_t)k;
  } else {
    buf[o++] = dig[0];
    if (k > 1) {
      buf[o++] = '.';
      memcpy(buf + o, dig + 1, (size_t)(k - 1));
      o += (size_t)(k - 1);
    }
    o += (size_t)snprintf(buf + o, SL_DOUBLE_BUF - o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
  }
  buf[o] = 0;
  return o;
}

/* ---- base64 --------------------------------------------------------------------- */
static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sl_base64_encode(const uint8_t *in, size_t len, char *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = b64chars[(v >> 6) & 63];
    out[o++] = b64chars[v & 63];
  }
  if (i < len) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = b64chars[v >> 18];
    out[o++] = b64chars[(v >> 12) & 63];
    out[o++] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  return o;
}

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long sl_base64_decode(const char *in, size_t len, uint8_t *out) {
  if (len % 4) return SL_EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    bool last = i + 4 == len;
    int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=') : 0;
    int v[4];
    for (int j = 0; j < 4 - pad; j++)
      if ((v[j] = b64val(in[i + j])) < 0) return SL_EINVAL;
    for (int j = 4 - pad; j < 4; j++) v[j] = 0;
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    /* Bits below the last encoded byte must be zero, so that each byte
     * string has exactly one encoding (what export writes). */
    if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) return SL_EINVAL;
    out[o++] = (uint8_t)(w >> 16);
    if (pad < 2) out[o++] = (uint8_t)(w >> 8);
    if (pad < 1) out[o++] = (uint8_t)w;
  }
  return (long)o;
}

/* ---- arena -------------------------------------------------------------------------- */
typedef struct arena_block {
  struct arena_block *next;
  size_t size, used;
  max_align_t data[];
} arena_block;

struct sl__scratch {
  arena_block *head; /* newest first */
};

sl__scratch *sl__scratch_new(void) { return calloc(1, sizeof(sl__scratch)); }

void *sl__scratch_alloc(sl__scratch *a, size_t n) {
  n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
  arena_block *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t size = SL_MAX((size_t)64 << 10, n * 2);
    b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->next = a->head;
    b->size = size;
    b->used = 0;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  return p;
}

void sl__scratch_reset(sl__scratch *a) {
  if (!a->head) return;
  arena_block *b = a->head->next;
  while (b) {
    arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head->next = NULL;
  a->head->used = 0;
}

void sl__scratch_free(sl__scratch *a) {
  if (!a) return;
  sl__scratch_reset(a);
  free(a->head);
  free(a);
}

/* ---- JSON input -> values ------------------------------------------------------------ */
static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return SL_EINVAL;
}

static const char *json_kind_name(json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

static const char *kind_name(sl_kind k) {
  static const char *names[] = {"null",      "boolean", "integer",       "double",   "string",
                                "bytes",     "list",    "date",          "localtime", "time",
                                "localdatetime", "datetime", "duration", "point"};
  return (unsigned)k < SL_ARRAY_LEN(names) ? names[k] : "unknown";
}

/* A coordinate: a JSON number (an integer is read as a double). */
static bool coord(json_t *j, double *out) {
  if (json_is_integer(j)) *out = (double)json_integer_value(j);
  else if (json_is_real(j)) *out = json_real_value(j);
  else return false;
  return true;
}

/* {"$point":{"srid":N,"x":..,"y":..[,"z":..]}}: the export's own form,
 * every key required (z exactly in 3D). */
static int canonical_point(json_t *p, sl_value *out, char *why, size_t whylen) {
  if (!json_is_object(p)) return fail(why, whylen, "$point must be an object {\"srid\":..,\"x\":..,\"y\":..}");
  json_t *srid = json_object_get(p, "srid"), *z = json_object_get(p, "z");
  if (!srid) return fail(why, whylen, "$point without a coordinate system (srid)");
  if (!json_is_integer(srid))
    return fail(why, whylen, "$point: srid must be an integer (7203, 9157, 4326 or 4979)");
  if (json_integer_value(srid) < 0 || json_integer_value(srid) > UINT32_MAX ||
      !sl_srid_name((uint32_t)json_integer_value(srid)))
    return fail(why, whylen, "$point: unknown coordinate system srid %lld (7203, 9157, 4326 or 4979)",
                (long long)json_integer_value(srid));
  *out = (sl_value){.kind = SL_POINT, .u.pt.srid = (uint32_t)json_integer_value(srid)};
  size_t keys = 3 + (z != NULL);
  if (!coord(json_object_get(p, "x"), &out->u.pt.x) || !coord(json_object_get(p, "y"), &out->u.pt.y))
    return fail(why, whylen, "$point needs numbers x and y");
  if (srid_3d(out->u.pt.srid) != (z != NULL))
    return fail(why, whylen, "$point: srid %u is %s: %s", out->u.pt.srid, srid_3d(out->u.pt.srid) ? "3D" : "2D",
                z ? "z is not allowed" : "z is missing");
  if (z && !coord(z, &out->u.pt.z)) return fail(why, whylen, "$point: z must be a number");
  if (json_object_size(p) != keys) return fail(why, whylen, "$point has keys other than srid, x, y, z");
  return 0;
}

const char *const sl__point_keys[SL__PT_NCOORD] = {"x", "y", "z", "longitude", "latitude", "height"};

int sl__point_make(const sl__point_parts *pp, sl_value *out, char *why, size_t whylen) {
  bool cart = pp->has[SL__PT_X] || pp->has[SL__PT_Y] || pp->has[SL__PT_Z];
  bool geo = pp->has[SL__PT_LON] || pp->has[SL__PT_LAT] || pp->has[SL__PT_HEIGHT];
  if (cart && geo) return fail(why, whylen, "point mixes x/y/z with longitude/latitude/height");
  int base = cart ? SL__PT_X : SL__PT_LON;
  bool has3 = pp->has[base + 2];
  uint32_t srid = cart ? (has3 ? SL_SRID_CARTESIAN_3D : SL_SRID_CARTESIAN) : (has3 ? SL_SRID_WGS84_3D : SL_SRID_WGS84);
  if (pp->crs) {
    if (!(srid = sl_srid_from_name(pp->crs, pp->crs_len)))
      return fail(why, whylen, "point: unknown crs '%.*s' (cartesian, cartesian-3d, wgs-84, wgs-84-3d)",
                  (int)SL_MIN(pp->crs_len, (size_t)40), pp->crs);
  } else if (pp->srid) {
    if (pp->srid < 0 || pp->srid > UINT32_MAX || !sl_srid_name((uint32_t)pp->srid))
      return fail(why, whylen, "point: unknown srid %lld (7203, 9157, 4326 or 4979)", (long long)pp->srid);
    srid = (uint32_t)pp->srid;
  }
  if (!pp->has[base] || !pp->has[base + 1])
    return fail(why, whylen, "point needs %s", cart ? "x and y" : "longitude and latitude");
  if (srid_3d(srid) != has3)
    return fail(why, whylen, "point: crs %s is %s", sl_srid_name(srid),
                has3 ? "2D but a third coordinate is given" : "3D but the third coordinate is missing");
  *out = (sl_value){.kind = SL_POINT, .u.pt = {.srid = srid, .x = pp->c[base], .y = pp->c[base + 1]}};
  if (has3) out->u.pt.z = pp->c[base + 2];
  return 0;
}

/* A map as APOC writes a point (null = absent); any other map is refused:
 * Neo4j stores no maps. */
static int apoc_point(json_t *j, sl_value *out, char *why, size_t whylen) {
  sl__point_parts pp = {0};
  size_t known = 0;
  bool any = false;
  for (int i = 0; i < SL__PT_NCOORD; i++) {
    json_t *c = json_object_get(j, sl__point_keys[i]);
    if (!c) continue;
    known++, any = true;
    if (json_is_null(c)) continue;
    if (!coord(c, &pp.c[i])) return fail(why, whylen, "point: %s must be a number", sl__point_keys[i]);
    pp.has[i] = true;
  }
  json_t *crs = json_object_get(j, "crs"), *srid = json_object_get(j, "srid");
  if (crs) {
    known++;
    if (!json_is_string(crs)) return fail(why, whylen, "point: crs must be a name such as 'wgs-84'");
    pp.crs = json_string_value(crs), pp.crs_len = json_string_length(crs);
  } else if (srid) {
    known++;
    if (!json_is_integer(srid)) return fail(why, whylen, "point: srid must be an integer");
    pp.srid = json_integer_value(srid);
  }
  if (!any || known != json_object_size(j))
    return fail(why, whylen,
                "map values are not supported (Neo4j stores no maps; a point has x, y or longitude, latitude)");
  return sl__point_make(&pp, out, why, whylen);
}

/* {"$double": ...}, {"$bytes": ...}, {"$date": ...} and the other $-forms
 * of spec/types.md, and APOC's point maps; other objects are not values. */
static int tagged_value(json_t *j, sl__scratch *a, sl_value *out, char *why, size_t whylen) {
  json_t *t;
  if (json_object_size(j) == 1 && (t = json_object_get(j, "$double"))) {
    const char *s = json_is_string(t) ? json_string_value(t) : "";
    if (!strcmp(s, "NaN"))
      out->u.d = NAN;
    else if (!strcmp(s, "Infinity"))
      out->u.d = INFINITY;
    else if (!strcmp(s, "-Infinity"))
      out->u.d = -INFINITY;
    else
      return fail(why, whylen, "$double must be \"NaN\", \"Infinity\" or \"-Infinity\"");
    out->kind = SL_DOUBLE;
    return 0;
  }
  if (json_object_size(j) == 1 && (t = json_object_get(j, "$bytes"))) {
    if (!json_is_string(t)) return fail(why, whylen, "$bytes must be a base64 string");
    size_t n = json_string_length(t);
    uint8_t *buf = sl__scratch_alloc(a, n / 4 * 3 + 1);
    if (!buf) return -ENOMEM;
    long got = sl_base64_decode(json_string_value(t), n, buf);
    if (got < 0) return fail(why, whylen, "$bytes is not padded standard base64");
    out->kind = SL_BYTES;
    out->u.bytes = buf;
    out->len = (size_t)got;
    return 0;
  }
  if (json_object_size(j) == 1) {
    for (size_t k = 0; k < SL_ARRAY_LEN(TEMPORAL_TAGS); k++) {
      if (!(t = json_object_get(j, TEMPORAL_TAGS[k]))) continue;
      if (!json_is_string(t)) return fail(why, whylen, "%s must be a string", TEMPORAL_TAGS[k]);
      char *zone = sl__scratch_alloc(a, SL_ZONE_MAX + 1);
      if (!zone) return -ENOMEM;
      char reason[200];
      if (sl_temporal_parse((sl_kind)(SL_DATE + k), json_string_value(t), json_string_length(t), NULL, out, zone,
                            reason, sizeof reason) < 0)
        return fail(why, whylen, "%s: %s", TEMPORAL_TAGS[k], reason);
      return 0;
    }
    if ((t = json_object_get(j, "$point"))) return canonical_point(t, out, why, whylen);
  }
  return apoc_point(j, out, why, whylen);
}

static int scalar_value(json_t *j, sl__scratch *a, sl_value *out, char *why, size_t whylen) {
  *out = (sl_value){0};
  switch (json_typeof(j)) {
  case JSON_TRUE:
  case JSON_FALSE:
    out->kind = SL_BOOL;
    out->u.b = json_is_true(j);
    return 0;
  case JSON_INTEGER:
    out->kind = SL_INT;
    out->u.i = json_integer_value(j);
    return 0;
  case JSON_REAL:
    out->kind = SL_DOUBLE;
    out->u.d = json_real_value(j);
    return 0;
  case JSON_STRING:
    out->kind = SL_STRING;
    out->u.s = json_string_value(j);
    out->len = json_string_length(j);
    if (memchr(out->u.s, 0, out->len)) return fail(why, whylen, "strings may not contain \\u0000");
    return 0;
  case JSON_OBJECT:
    return tagged_value(j, a, out, why, whylen);
  default:
    return fail(why, whylen, "%s is not a value here", json_kind_name(j));
  }
}

int sl__json_value(json_t *j, sl__scratch *a, bool allow_null, sl_value *out, char *why, size_t whylen) {
  if (json_is_null(j)) {
    if (!allow_null) return fail(why, whylen, "null is only allowed in set_*_prop (remove)");
    *out = (sl_value){.kind = SL_NULL};
    return 0;
  }
  if (!json_is_array(j)) return scalar_value(j, a, out, why, whylen);

  size_t n = json_array_size(j);
  sl_value *items = sl__scratch_alloc(a, (n ? n : 1) * sizeof *items);
  if (!items) return -ENOMEM;
  sl_kind kind = SL_NULL;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(j, i);
    if (json_is_array(e) || json_is_null(e))
      return fail(why, whylen, "list element %zu is %s; lists hold scalars", i, json_kind_name(e));
    int rc = scalar_value(e, a, &items[i], why, whylen);
    if (rc) return rc;
    if (i && items[i].kind != kind)
      return fail(why, whylen, "list mixes %s and %s elements", kind_name(kind), kind_name(items[i].kind));
    kind = items[i].kind;
  }
  *out = (sl_value){.kind = SL_LIST, .elem_kind = kind, .len = n, .u.items = items};
  return 0;
}

int sl__json_key_check(const char *s, char *why, size_t whylen) {
  size_t n = strlen(s);
  if (n == 0 || n > SL_NAME_MAX) return fail(why, whylen, "names must be 1..%d bytes, not %zu", SL_NAME_MAX, n);
  return 0;
}

int sl__json_name(json_t *j, const char **out, char *why, size_t whylen) {
  if (!json_is_string(j)) return fail(why, whylen, "expected a string, found %s", json_kind_name(j));
  if (strlen(json_string_value(j)) != json_string_length(j))
    return fail(why, whylen, "names may not contain NUL");
  *out = json_string_value(j);
  return sl__json_key_check(*out, why, whylen);
}

int sl__json_props(json_t *obj, sl__scratch *a, sl_prop **out, size_t *n, char *why, size_t whylen) {
  if (!json_is_object(obj)) return fail(why, whylen, "properties must be an object, not %s", json_kind_name(obj));
  sl_prop *props = sl__scratch_alloc(a, (json_object_size(obj) + 1) * sizeof *props);
  if (!props) return -ENOMEM;
  size_t i = 0;
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    char reason[256];
    int rc = sl__json_key_check(key, reason, sizeof reason);
    if (!rc) rc = sl__json_value(val, a, false, &props[i].value, reason, sizeof reason);
    if (rc == SL_EINVAL) return fail(why, whylen, "property \"%.64s\": %s", key, reason);
    if (rc) return rc;
    props[i++].key = key;
  }
  *out = props;
  *n = i;
  return 0;
}
