/*
 * Import of neo4j-admin CSV files (`shiplog import --nodes=... --relationships=...`,
 * spec/cli.md; interchange.h states the header and field rules).
 *
 * READING. A byte-level reader walks the files of one source as one stream
 * of records: the first record of the first file is the header, every later
 * record of every file is a row. A record's fields are unquoted into one
 * buffer, each followed by a NUL (so labels and keys can be used as C
 * strings; a NUL inside a field is refused where it would be cut). The rules
 * are neo4j-admin's BufferedCharSeeker's: a quote only opens a field at its
 * first byte, a doubled quote inside is one quote, anything but a delimiter
 * or a line end after the closing quote is an error, a line break inside
 * quotes needs --multiline-fields, blank lines are skipped, and \r, \n and
 * \r\n all end a line. Line numbers are physical lines of each file; a row is
 * reported at the line it starts on (a missing end quote at the line where
 * the quote opened).
 *
 * CHARACTERS. The delimiter, the quote and the array delimiter are any one
 * Unicode character, as neo4j-admin takes them, so possibly several bytes.
 * When the delimiter or the quote is not ASCII the reader hands out whole
 * UTF-8 characters (code points; a byte that is not part of valid UTF-8 as
 * RD_RAW + the byte, kept as it is) and compares those; otherwise bytes, as
 * no byte of a multi-byte character equals an ASCII one. A character cut by
 * the end of the read buffer is completed by moving it to the front before
 * reading on (rd_need). The array delimiter is looked for as its UTF-8
 * bytes inside a field (ad_next): in UTF-8 a character's bytes can only
 * match at a character's start.
 *
 * HEADERS are split as neo4j-admin's DataFactories splits them: "{...}"
 * (refused here), then "(GROUP)" from the first '(' to the last ')', then the
 * type after the last ':'. So `a:b:string` is the key "a:b", and a key with
 * '(' cannot be written at all (csv_export.c refuses such keys).
 *
 * IDS. Each id space ((GROUP); the empty name is the default one) is an
 * sl__idmap from the id's key to the new node id: the field's bytes with
 * --id-type string, the int64's 8 bytes with --id-type integer (so "007"
 * and "7" are one id, as for neo4j-admin). All node sources are read before
 * any relationship source, so relationship headers can check that the id
 * spaces they name exist.
 *
 * VALUES of one row live in a scratch arena (lists, bytes) and in the record
 * buffer (strings), both reused for the next row. Doubles: Java's
 * Double.parseDouble grammar minus hexadecimal, then strtod (both read the
 * decimal forms to the same, correctly rounded, double).
 *
 * ALL OR NOTHING through sl__sink: the first refused row aborts the batch
 * and removes the store.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "interchange_int.h"
#include "sl_base.h"

#define DEFAULT_OPS_PER_TX 10000
#define READ_CHUNK (64u << 10)
#define MAX_SKIP_WARNINGS 100
#define PROGRESS_ROWS 4096
#define RD_EOF (-1)
#define RD_RAW 0x200000 /* + a byte >= 0x80 handed out alone (see CHARACTERS) */

/* ---- the record reader ------------------------------------------------------------- */
typedef struct csv_field {
  size_t off, len;
  bool quoted;
} csv_field;

typedef struct csv_reader {
  int delim, quote;  /* code points */
  bool utf8;         /* hand out whole characters (a separator is not ASCII) */
  bool multiline;
  const char *const *files;
  size_t nfiles, next_file;
  FILE *f;
  const char *name;  /* the file being read, for messages */
  unsigned char *in; /* read buffer */
  size_t ipos, ilen;
  uint64_t line;     /* line of the next byte, from 1 */
  uint64_t rec_line; /* line the current record started on */
  uint64_t err_line; /* line a reader error names (0: none) */
  uint64_t bytes;    /* consumed from all files */
  int err;           /* read error (sticky) */
  char *buf;         /* fields of the current record, each NUL-terminated */
  size_t len, cap;
  csv_field *fields;
  size_t nfields, fcap;
} csv_reader;

static int rd_fill(csv_reader *r) {
  if (r->err || !r->f) return RD_EOF;
  r->ipos = 0;
  r->ilen = fread(r->in, 1, READ_CHUNK, r->f);
  if (r->ilen == 0 && ferror(r->f)) r->err = errno ? -errno : -EIO;
  return r->ilen ? 0 : RD_EOF;
}

/* At least n unread bytes in the buffer unless the file ends first: the
 * unread tail moves to the front and more is read. Returns how many. */
static size_t rd_need(csv_reader *r, size_t n) {
  size_t have = r->ilen - r->ipos;
  if (have >= n || r->err || !r->f) return have;
  memmove(r->in, r->in + r->ipos, have);
  r->ipos = 0;
  r->ilen = have;
  while (r->ilen < n) {
    size_t got = fread(r->in + r->ilen, 1, READ_CHUNK - r->ilen, r->f);
    if (got == 0) {
      if (ferror(r->f)) r->err = errno ? -errno : -EIO;
      break;
    }
    r->ilen += got;
  }
  return r->ilen - r->ipos;
}

/* The character at the read position, whose first byte is >= 0x80: its
 * code point, or RD_RAW + the byte; *len its bytes. */
static int rd_wide(csv_reader *r, size_t *len) {
  int b = r->in[r->ipos];
  uint32_t cp;
  *len = 1;
  if (!r->utf8) return RD_RAW + b;
  size_t have = rd_need(r, 4);
  size_t n = sl_utf8_decode(r->in + r->ipos, have, &cp);
  if (n == 0) return RD_RAW + r->in[r->ipos];
  *len = n;
  return (int)cp;
}

static inline int rd_getc(csv_reader *r) {
  if (r->ipos == r->ilen && rd_fill(r)) return RD_EOF;
  int c = r->in[r->ipos];
  size_t n = 1;
  if (c >= 0x80) c = rd_wide(r, &n);
  r->ipos += n;
  r->bytes += n;
  return c;
}

static inline int rd_peek(csv_reader *r) {
  if (r->ipos == r->ilen && rd_fill(r)) return RD_EOF;
  int c = r->in[r->ipos];
  size_t n;
  return c < 0x80 ? c : rd_wide(r, &n);
}

static int rd_put(csv_reader *r, char c) {
  if (r->len == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4096;
    char *p = realloc(r->buf, cap);
    if (!p) return -ENOMEM;
    r->buf = p;
    r->cap = cap;
  }
  r->buf[r->len++] = c;
  return 0;
}

/* A character from rd_getc into the record, as the bytes it was read from. */
static int rd_putc(csv_reader *r, int c) {
  char u[4];
  size_t n = 1;
  if (c < 0x80)
    u[0] = (char)c;
  else if (c >= RD_RAW)
    u[0] = (char)(c - RD_RAW);
  else
    n = sl_utf8_encode((uint32_t)c, u);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) rc = rd_put(r, u[i]);
  return rc;
}

static int rd_field(csv_reader *r, size_t off, bool quoted) {
  if (r->nfields == r->fcap) {
    size_t cap = r->fcap ? r->fcap * 2 : 32;
    csv_field *p = realloc(r->fields, cap * sizeof *p);
    if (!p) return -ENOMEM;
    r->fields = p;
    r->fcap = cap;
  }
  r->fields[r->nfields++] = (csv_field){off, r->len - off, quoted};
  return rd_put(r, 0);
}

static void rd_close_file(csv_reader *r) {
  if (r->f) fclose(r->f);
  r->f = NULL;
  r->ipos = r->ilen = 0;
}

static int rd_open_next(csv_reader *r, char *why, size_t wl) {
  r->name = r->files[r->next_file++];
  r->line = 1;
  r->rec_line = 0;
  if (!(r->f = fopen(r->name, "r"))) {
    int rc = -errno;
    snprintf(why, wl, "cannot open: %s", sl_strerror(rc));
    return rc;
  }
  if (rd_fill(r) == 0 && r->ilen >= 3 && !memcmp(r->in, "\xef\xbb\xbf", 3)) {
    r->ipos = 3; /* a UTF-8 byte order mark */
    r->bytes += 3;
  }
  return r->err;
}

/* A line end just read as c: \r\n counts once. */
static void rd_eol(csv_reader *r, int c) {
  if (c == '\r' && rd_peek(r) == '\n') rd_getc(r);
  r->line++;
}

static int rd_fail(csv_reader *r, uint64_t line, char *why, size_t wl, const char *msg) {
  r->err_line = line;
  snprintf(why, wl, "%s", msg);
  return SL_EINVAL;
}

/* Read the next record into r->fields. Returns 1, 0 after the last file, or
 * a negative code with why set (r->err_line: the line it names, 0 for none). */
static int rd_next(csv_reader *r, char *why, size_t wl) {
  int c, rc;
  r->len = r->nfields = 0;
  r->err_line = 0;
  for (;;) { /* skip blank lines; move on to the next file at the end of one */
    if (!r->f) {
      if (r->next_file == r->nfiles) return 0;
      if ((rc = rd_open_next(r, why, wl))) return rc;
    }
    c = rd_getc(r);
    if (c == RD_EOF) {
      if (r->err) {
        snprintf(why, wl, "read failed: %s", sl_strerror(r->err));
        r->err_line = r->line;
        return r->err;
      }
      rd_close_file(r);
      continue;
    }
    if (c == '\n' || c == '\r') {
      rd_eol(r, c);
      continue;
    }
    break;
  }
  r->rec_line = r->line;
  for (;;) { /* one field per turn; c is its first byte */
    size_t off = r->len;
    bool quoted = c == r->quote;
    if (quoted) {
      uint64_t qline = r->line;
      for (;;) {
        c = rd_getc(r);
        if (c == RD_EOF)
          return rd_fail(r, qline, why, wl,
                         r->err ? "read failed inside a quoted field" : "missing end quote (the field opens here)");
        if (c == r->quote) {
          int next = rd_peek(r);
          if (next == r->quote) {
            rd_getc(r);
          } else {
            if (next != r->delim && next != '\n' && next != '\r' && next != RD_EOF)
              return rd_fail(r, r->line, why, wl,
                             "characters after a closing quote (a quote inside a quoted field is doubled)");
            break;
          }
        } else if (c == '\n' || c == '\r') {
          if (!r->multiline)
            return rd_fail(r, qline, why, wl, "a quoted field spans lines (allow it with --multiline-fields)");
          if (c == '\n' || rd_peek(r) != '\n') r->line++;
        }
        if ((rc = rd_putc(r, c))) return rc;
      }
      c = rd_getc(r);
    } else {
      while (c != RD_EOF && c != r->delim && c != '\n' && c != '\r') {
        if ((rc = rd_putc(r, c))) return rc;
        c = rd_getc(r);
      }
    }
    if ((rc = rd_field(r, off, quoted))) return rc;
    if (c == r->delim) {
      c = rd_getc(r);
      if (c == RD_EOF || c == '\n' || c == '\r') { /* a trailing delimiter: one more, empty field */
        if ((rc = rd_field(r, r->len, false))) return rc;
        break;
      }
      continue;
    }
    break;
  }
  if (c == '\n' || c == '\r') rd_eol(r, c);
  if (c == RD_EOF && r->err) {
    snprintf(why, wl, "read failed: %s", sl_strerror(r->err));
    r->err_line = r->line;
    return r->err;
  }
  return 1;
}

static void rd_free(csv_reader *r) {
  rd_close_file(r);
  free(r->in);
  free(r->buf);
  free(r->fields);
}

/* ---- headers ------------------------------------------------------------------------ */
typedef enum vtype { VT_STRING, VT_LONG, VT_INT, VT_SHORT, VT_BYTE, VT_DOUBLE, VT_FLOAT, VT_BOOL, VT_CHAR } vtype;

static const struct {
  const char *name;
  vtype type;
} type_names[] = {{"string", VT_STRING}, {"long", VT_LONG},    {"int", VT_INT},
                  {"short", VT_SHORT},   {"byte", VT_BYTE},    {"double", VT_DOUBLE},
                  {"float", VT_FLOAT},   {"boolean", VT_BOOL}, {"char", VT_CHAR}};
static const char *const foreign_types[] = {"point",     "date",          "time",    "datetime",
                                            "localtime", "localdatetime", "duration"};

typedef enum colkind { COL_IGNORE, COL_ID, COL_LABEL, COL_START, COL_END, COL_TYPE, COL_PROP } colkind;

typedef struct column {
  colkind kind;
  vtype type;
  bool array;   /* TYPE[]; byte[] is a bytes value */
  char *name;   /* property key, or NULL */
  char *text;   /* the header field, for messages */
  size_t space; /* id space of ID / START_ID / END_ID */
} column;

typedef struct idspace {
  char *name; /* "" for the default space */
  sl__idmap map;
} idspace;

typedef struct csvimp {
  const sl_csv_options *o;
  sl_csv_options defaults;
  sl__sink sink;
  idspace *spaces;
  size_t nspaces;
  csv_reader rd;
  const sl_csv_source *src;
  bool rels; /* reading a relationship source */
  column *cols;
  size_t ncols;
  sl__scratch *arena; /* this row's values */
  sl_prop *props;     /* this row's properties, ncols + 1 */
  const char **labels;
  size_t labels_cap;
  sl_csv_result res;
  uint64_t total_bytes, rows;
  uint64_t skip_warnings;
  char ad[4];   /* the array delimiter's UTF-8 bytes */
  size_t adlen;
  char why[512];
} csvimp;

/* Where the next array delimiter starts in s[at..n), or n. */
static size_t ad_next(const csvimp *im, const char *s, size_t n, size_t at) {
  for (; at < n; at++)
    if (s[at] == im->ad[0] && (im->adlen == 1 || (n - at >= im->adlen && !memcmp(s + at, im->ad, im->adlen))))
      return at;
  return n;
}

static int why(csvimp *im, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why(csvimp *im, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(im->why, sizeof im->why, fmt, ap);
  va_end(ap);
  return rc;
}

/* "column N (HEADER): " then the reason. */
static int col_why(csvimp *im, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int col_why(csvimp *im, size_t i, const char *fmt, ...) {
  int n = snprintf(im->why, sizeof im->why, "column %zu (%.64s): ", i + 1, im->cols[i].text);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(im->why + n, sizeof im->why - (size_t)n, fmt, ap);
  va_end(ap);
  return SL_EINVAL;
}

static void cols_free(csvimp *im) {
  for (size_t i = 0; i < im->ncols; i++) {
    free(im->cols[i].name);
    free(im->cols[i].text);
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

/* Parse header field i (text[0..n), NUL-terminated) into im->cols[i]. */
static int parse_column(csvimp *im, size_t i, const char *text, size_t n) {
  column *c = &im->cols[i];
  int rc;
  if (!(c->text = strdup(text))) return -ENOMEM;
  if (n == 0) return 0; /* COL_IGNORE */
  if (memchr(text, '{', n)) return col_why(im, i, "header options ({...}) are not supported");
  if (strlen(text) != n) return col_why(im, i, "the header holds a NUL byte");

  /* The group: from the first '(' to the last ')', cut out. */
  char *rest = strdup(text), *group = NULL;
  if (!rest) return -ENOMEM;
  char *open = strchr(rest, '(');
  if (open) {
    char *close = strrchr(rest, ')');
    if (!close || close < open) {
      free(rest);
      return col_why(im, i, "'(' without a closing ')'");
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
      rc = col_why(im, i, "a %s file has no %s column", im->rels ? "relationship" : "node", type);
    } else {
      const char *g = group ? group : "";
      rc = space_find(im, g, c->kind == COL_ID, &c->space);
      if (rc == SL_ENOTFOUND) rc = col_why(im, i, "id space '%.64s' is not defined by any node file", g);
    }
  } else if (group) {
    rc = col_why(im, i, "an id space (...) belongs to an :ID, :START_ID or :END_ID column");
  } else if (type && streq_ci(type, tl, "LABEL")) {
    c->kind = COL_LABEL;
    if (im->rels) rc = col_why(im, i, "a relationship file has no :LABEL column");
  } else if (type && streq_ci(type, tl, "TYPE")) {
    c->kind = COL_TYPE;
    if (!im->rels) rc = col_why(im, i, "a node file has no :TYPE column");
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
      if (k < SL_ARRAY_LEN(type_names)) {
        c->type = type_names[k].type;
      } else {
        bool foreign = false;
        for (size_t j = 0; j < SL_ARRAY_LEN(foreign_types); j++) foreign |= streq_ci(type, tl, foreign_types[j]);
        rc = foreign ? col_why(im, i, "type '%s' is not supported (shiplog holds no points or temporal values)", type)
                     : col_why(im, i, "unknown type '%s'", type);
      }
    }
    if (!rc && !*rest) rc = col_why(im, i, "a property column needs a name");
  }
  if (!rc && *rest && c->kind != COL_IGNORE && (c->kind == COL_PROP || c->kind == COL_ID)) {
    if (strlen(rest) > SL_NAME_MAX) rc = col_why(im, i, "property names are at most %d bytes", SL_NAME_MAX);
    for (size_t j = 0; !rc && j < i; j++)
      if (im->cols[j].name && !strcmp(im->cols[j].name, rest))
        rc = col_why(im, i, "property '%.64s' is also column %zu", rest, j + 1);
    if (!rc && !(c->name = strdup(rest))) rc = -ENOMEM;
  }
  free(rest);
  return rc;
}

static int parse_header(csvimp *im) {
  csv_reader *r = &im->rd;
  if (!(im->cols = calloc(r->nfields ? r->nfields : 1, sizeof *im->cols))) return -ENOMEM;
  im->ncols = r->nfields;
  bool have[COL_PROP + 1] = {0};
  for (size_t i = 0; i < r->nfields; i++) {
    int rc = parse_column(im, i, r->buf + r->fields[i].off, r->fields[i].len);
    if (rc) return rc;
    colkind k = im->cols[i].kind;
    if (have[k] && (k == COL_ID || k == COL_START || k == COL_END || k == COL_TYPE))
      return col_why(im, i, "a second %s column",
                     k == COL_ID      ? ":ID"
                     : k == COL_START ? ":START_ID"
                     : k == COL_END   ? ":END_ID"
                                      : ":TYPE");
    have[k] = true;
  }
  if (im->rels && (!have[COL_START] || !have[COL_END]))
    return why(im, SL_EINVAL, "a relationship header needs :START_ID and :END_ID columns");
  free(im->props);
  if (!(im->props = calloc(im->ncols + 1, sizeof *im->props))) return -ENOMEM;
  return 0;
}

/* ---- values ------------------------------------------------------------------------------ */
static void trim(const char **s, size_t *n) {
  while (*n && (unsigned char)(*s)[0] <= ' ') (*s)++, (*n)--;
  while (*n && (unsigned char)(*s)[*n - 1] <= ' ') (*n)--;
}

/* 0, SL_EINVAL (not an integer) or 1 (outside [lo, hi]). */
static int parse_int(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out) {
  trim(&s, &n);
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
  trim(&s, &n);
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
  trim(&s, &n);
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
    if (rc == 1) return col_why(im, col, "%s%.40s is out of range for %s", what, s, type_name(t));
    if (rc) return col_why(im, col, "%snot an integer: \"%.40s\"", what, s);
    return 0;
  case VT_DOUBLE:
  case VT_FLOAT:
    v->kind = SL_DOUBLE;
    if (parse_double(s, n, &v->u.d)) return col_why(im, col, "%snot a number: \"%.40s\"", what, s);
    return 0;
  case VT_BOOL:
    v->kind = SL_BOOL;
    if (parse_bool(s, n, &v->u.b)) return col_why(im, col, "%snot a boolean (true or false): \"%.40s\"", what, s);
    return 0;
  case VT_CHAR:
  case VT_STRING:
    if (im->o->trim_strings) trim(&s, &n);
    if (memchr(s, 0, n)) return col_why(im, col, "%sa string may not hold a NUL byte", what);
    if (t == VT_CHAR && (!n || utf8_one((const unsigned char *)s, n) != n))
      return col_why(im, col, "%snot one character: \"%.40s\"", what, s);
    v->kind = SL_STRING;
    v->u.s = s;
    v->len = n;
    return 0;
  }
  return SL_EINVAL;
}

/* The value of property column col from field f; *has = false for none. */
static int prop_value(csvimp *im, size_t col, const csv_field *f, sl_value *v, bool *has) {
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
    for (size_t at = ad_next(im, s, n, 0); at < n; at = ad_next(im, s, n, at + im->adlen)) count++;
  }
  *has = true;
  if (c->type == VT_BYTE) {
    uint8_t *bytes = sl__scratch_alloc(im->arena, count + 1);
    if (!bytes) return -ENOMEM;
    for (size_t i = 0, at = 0; i < count; i++) {
      size_t len = ad_next(im, s, n, at) - at;
      int64_t x;
      int rc = parse_int(s + at, len, INT8_MIN, INT8_MAX, &x);
      if (rc == 1)
        return col_why(im, col, "element %zu: %.*s is out of range for byte", i + 1, (int)SL_MIN(len, 40), s + at);
      if (rc) return col_why(im, col, "element %zu: not an integer: \"%.*s\"", i + 1, (int)SL_MIN(len, 40), s + at);
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
    size_t len = ad_next(im, w, n, at) - at;
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
static int id_key(csvimp *im, size_t col, const csv_field *f, char key8[8], const char **key, size_t *len,
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

/* ---- rows ----------------------------------------------------------------------------------- */
static int skipped(csvimp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int skipped(csvimp *im, const char *fmt, ...) {
  if (im->skip_warnings++ < MAX_SKIP_WARNINGS) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sl_diag_warn("%s:%" PRIu64 ": skipped: %s", im->rd.name, im->rd.rec_line, msg);
  }
  return 0;
}

static int check_width(csvimp *im) {
  if (im->rd.nfields > im->ncols && !im->o->ignore_extra_columns)
    return why(im, SL_EINVAL, "%zu fields, but the header has %zu columns (--ignore-extra-columns ignores the rest)",
               im->rd.nfields, im->ncols);
  return 0;
}

static int add_label(csvimp *im, size_t *n, const char *label) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp(im->labels[i], label)) return 0;
  if (*n == im->labels_cap) {
    size_t cap = im->labels_cap ? im->labels_cap * 2 : 16;
    const char **p = realloc(im->labels, cap * sizeof *p);
    if (!p) return -ENOMEM;
    im->labels = p;
    im->labels_cap = cap;
  }
  im->labels[(*n)++] = label;
  return 0;
}

static int store_why(csvimp *im, sl_tx *tx, int rc, const char *what) {
  return why(im, rc, "%s: %s", what, sl_tx_error(tx) ? sl_tx_error(tx) : sl_strerror(rc));
}

static int node_row(csvimp *im) {
  csv_reader *r = &im->rd;
  size_t nlabels = 0, nprops = 0, width = SL_MIN(r->nfields, im->ncols);
  const char *key = NULL;
  size_t keylen = 0, space = 0;
  char key8[8];
  int rc;

  if ((rc = check_width(im))) return rc;
  for (size_t i = 0; i < im->src->nlabels; i++)
    if ((rc = add_label(im, &nlabels, im->src->labels[i]))) return rc;
  for (size_t i = 0; i < width; i++) {
    const column *c = &im->cols[i];
    csv_field *f = &r->fields[i];
    char *s = r->buf + f->off;
    if (c->kind == COL_IGNORE || (c->kind != COL_PROP && f->len == 0)) continue;
    if (c->kind == COL_LABEL) {
      for (size_t at = 0; at <= f->len;) {
        size_t len = ad_next(im, s, f->len, at) - at;
        s[at + len] = 0;
        const char *l = s + at;
        size_t ll = len;
        if (im->o->trim_strings) trim(&l, &ll);
        ((char *)l)[ll] = 0;
        if (ll && memchr(l, 0, ll)) return col_why(im, i, "a label may not hold a NUL byte");
        if (ll && (rc = add_label(im, &nlabels, l))) return rc;
        at += len + im->adlen;
      }
    } else if (c->kind == COL_ID) {
      sl_value v;
      if ((rc = id_key(im, i, f, key8, &key, &keylen, &v))) return rc;
      if (!keylen) key = NULL;
      space = c->space;
      if (c->name && keylen) im->props[nprops++] = (sl_prop){.key = c->name, .value = v};
    } else {
      bool has;
      if ((rc = prop_value(im, i, f, &im->props[nprops].value, &has))) return rc;
      if (has) im->props[nprops++].key = c->name;
    }
  }

  sl__idslot *slot = NULL;
  if (key) {
    if ((rc = sl__idmap_lookup(&im->spaces[space].map, key, keylen, &slot))) return rc;
    if (slot->key) {
      const char *sp = im->spaces[space].name;
      char shown[48];
      if (im->o->id_type == SL_CSV_ID_INTEGER)
        snprintf(shown, sizeof shown, "%" PRId64, (int64_t)sl_get_be64((const uint8_t *)key));
      else
        snprintf(shown, sizeof shown, "%.*s", (int)SL_MIN(keylen, 40), key);
      if (!im->o->skip_duplicate_nodes)
        return why(im, SL_EEXIST, "node id '%s'%s%s%s appears twice (--skip-duplicate-nodes skips it)", shown,
                   *sp ? " in id space '" : "", sp, *sp ? "'" : "");
      im->res.skipped_nodes++;
      return skipped(im, "node id '%s' appears twice", shown);
    }
  }
  sl_tx *tx;
  uint64_t id;
  if ((rc = sl__sink_tx(&im->sink, &tx))) return why(im, rc, "cannot begin a transaction: %s", sl_strerror(rc));
  if ((rc = sl_tx_create_node(tx, SL_ID_NEW, im->labels, nlabels, im->props, nprops, &id)))
    return store_why(im, tx, rc, "node");
  if (slot && (rc = sl__idmap_insert(&im->spaces[space].map, slot, key, keylen, id))) return rc;
  im->res.nodes++;
  if ((rc = sl__sink_op_done(&im->sink))) return why(im, rc, "commit: %s", sl_strerror(rc));
  return 0;
}

/* The node an endpoint field names; *found = false when it names none. */
static int endpoint(csvimp *im, size_t col, uint64_t *id, bool *found) {
  csv_field *f = &im->rd.fields[col];
  const char *key;
  size_t keylen;
  char key8[8];
  sl_value v;
  *found = false;
  if (f->len == 0) return 0;
  int rc = id_key(im, col, f, key8, &key, &keylen, &v);
  if (rc || !keylen) return rc;
  sl__idslot *slot;
  if ((rc = sl__idmap_lookup(&im->spaces[im->cols[col].space].map, key, keylen, &slot))) return rc;
  if (slot->key) {
    *id = slot->val;
    *found = true;
  }
  return 0;
}

static int rel_row(csvimp *im) {
  csv_reader *r = &im->rd;
  size_t nprops = 0, width = SL_MIN(r->nfields, im->ncols);
  const char *type = im->src->type && *im->src->type ? im->src->type : NULL;
  uint64_t ends[2] = {0, 0};
  bool found[2] = {false, false};
  size_t endcol[2] = {SIZE_MAX, SIZE_MAX};
  int rc;

  if ((rc = check_width(im))) return rc;
  for (size_t i = 0; i < width; i++) {
    const column *c = &im->cols[i];
    csv_field *f = &r->fields[i];
    if (c->kind == COL_IGNORE) continue;
    if (c->kind == COL_START || c->kind == COL_END) {
      int e = c->kind == COL_END;
      endcol[e] = i;
      if ((rc = endpoint(im, i, &ends[e], &found[e]))) return rc;
    } else if (c->kind == COL_TYPE) {
      const char *s = r->buf + f->off;
      size_t n = f->len;
      if (im->o->trim_strings) trim(&s, &n);
      ((char *)s)[n] = 0;
      if (memchr(s, 0, n)) return col_why(im, i, "a type may not hold a NUL byte");
      if (n) type = s;
    } else {
      bool has;
      if ((rc = prop_value(im, i, f, &im->props[nprops].value, &has))) return rc;
      if (has) im->props[nprops++].key = c->name;
    }
  }
  for (int e = 0; e < 2; e++) {
    if (found[e]) continue;
    char shown[96] = "(none given)";
    if (endcol[e] < width && r->fields[endcol[e]].len) {
      const char *sp = im->spaces[im->cols[endcol[e]].space].name;
      snprintf(shown, sizeof shown, "'%.40s'%s%.32s%s", r->buf + r->fields[endcol[e]].off, *sp ? " in id space '" : "",
               sp, *sp ? "'" : "");
    }
    const char *which = e ? "end" : "start";
    if (!im->o->skip_bad_relationships)
      return why(im, SL_ENOTFOUND, "%s node %s is not in the node files (--skip-bad-relationships skips it)", which,
                 shown);
    im->res.skipped_rels++;
    return skipped(im, "%s node %s is not in the node files", which, shown);
  }
  if (!type) {
    if (!im->o->skip_bad_relationships)
      return why(im, SL_EINVAL, "relationship without a type (no :TYPE value and no TYPE= before the files)");
    im->res.skipped_rels++;
    return skipped(im, "relationship without a type");
  }
  sl_tx *tx;
  if ((rc = sl__sink_tx(&im->sink, &tx))) return why(im, rc, "cannot begin a transaction: %s", sl_strerror(rc));
  if ((rc = sl_tx_create_rel(tx, SL_ID_NEW, type, ends[0], ends[1], im->props, nprops, NULL)))
    return store_why(im, tx, rc, "relationship");
  im->res.rels++;
  if ((rc = sl__sink_op_done(&im->sink))) return why(im, rc, "commit: %s", sl_strerror(rc));
  return 0;
}

/* ---- sources ----------------------------------------------------------------------------------- */
static void report(csvimp *im, int rc) {
  csv_reader *r = &im->rd;
  if (rc == -ENOMEM && !im->why[0]) why(im, rc, "%s", sl_strerror(rc));
  if (r->err_line)
    sl_diag_error("%s:%" PRIu64 ": %s", r->name, r->err_line, im->why);
  else if (r->rec_line)
    sl_diag_error("%s:%" PRIu64 ": %s", r->name, r->rec_line, im->why);
  else
    sl_diag_error("%s: %s", r->name ? r->name : "import", im->why);
}

static int read_source(csvimp *im, const sl_csv_source *src, bool rels) {
  csv_reader *r = &im->rd;
  int rc;
  im->src = src;
  im->rels = rels;
  cols_free(im);
  rd_close_file(r);
  r->files = src->files;
  r->nfiles = src->nfiles;
  r->next_file = 0;
  r->name = src->nfiles ? src->files[0] : NULL;
  r->rec_line = 0;
  im->why[0] = 0;
  if (!src->nfiles) {
    why(im, SL_EINVAL, "a --%s option without files", rels ? "relationships" : "nodes");
    rc = SL_EINVAL;
    goto fail;
  }
  rc = rd_next(r, im->why, sizeof im->why);
  if (rc == 0 || (rc > 0 && r->next_file > 1)) {
    r->rec_line = 0;
    rc = why(im, SL_EINVAL, "the file is empty: its first line must be the header");
    r->name = src->files[0];
    goto fail;
  }
  if (rc < 0 || (rc = parse_header(im))) goto fail;
  while ((rc = rd_next(r, im->why, sizeof im->why)) > 0) {
    sl__scratch_reset(im->arena);
    im->why[0] = 0;
    if ((rc = rels ? rel_row(im) : node_row(im))) goto fail;
    if (im->o->progress && ++im->rows % PROGRESS_ROWS == 0)
      im->o->progress(im->o->progress_arg, r->bytes, im->total_bytes);
  }
  if (rc == 0) return 0;
fail:
  report(im, rc);
  return rc;
}

int sl_import_csv(const sl_csv_source *nodes, size_t nnodes, const sl_csv_source *rels, size_t nrels,
                  const char *into_dir, const sl_csv_options *opt, sl_csv_result *res) {
  csvimp im = {.o = opt};
  int rc;
  if (opt) im.defaults = *opt;
  if (!im.defaults.delimiter) im.defaults.delimiter = ',';
  if (!im.defaults.array_delimiter) im.defaults.array_delimiter = ';';
  if (!im.defaults.quote) im.defaults.quote = '"';
  im.o = &im.defaults;
  im.adlen = sl_utf8_encode(im.o->array_delimiter, im.ad);
  if (!im.adlen || !sl_utf8_encode(im.o->delimiter, (char[4]){0}) || !sl_utf8_encode(im.o->quote, (char[4]){0})) {
    rc = SL_EINVAL;
    sl_diag_error("import: a delimiter or quote is no Unicode character (U+%04X, U+%04X, U+%04X)",
                 (unsigned)im.o->delimiter, (unsigned)im.o->array_delimiter, (unsigned)im.o->quote);
    goto fail;
  }
  im.rd = (csv_reader){.delim = (int)im.o->delimiter,
                       .quote = (int)im.o->quote,
                       .utf8 = im.o->delimiter >= 0x80 || im.o->quote >= 0x80,
                       .multiline = im.o->multiline_fields};

  if (!(im.rd.in = malloc(READ_CHUNK)) || !(im.arena = sl__scratch_new())) {
    rc = -ENOMEM;
    sl_diag_error("import: %s", sl_strerror(rc));
    goto fail;
  }
  for (int pass = 0; pass < 2; pass++) {
    const sl_csv_source *srcs = pass ? rels : nodes;
    for (size_t i = 0; i < (pass ? nrels : nnodes); i++)
      for (size_t j = 0; j < srcs[i].nfiles; j++) {
        struct stat sb;
        if (stat(srcs[i].files[j], &sb) == 0) im.total_bytes += (uint64_t)sb.st_size;
      }
  }
  if ((rc = sl__sink_open(&im.sink, into_dir, im.o->store, im.o->ops_per_tx ? im.o->ops_per_tx : DEFAULT_OPS_PER_TX)))
    goto fail;
  for (size_t i = 0; i < nnodes; i++)
    if ((rc = read_source(&im, &nodes[i], false))) goto fail;
  for (size_t i = 0; i < nrels; i++)
    if ((rc = read_source(&im, &rels[i], true))) goto fail;
  if (im.o->progress) im.o->progress(im.o->progress_arg, im.rd.bytes, im.total_bytes);
  if (im.skip_warnings > MAX_SKIP_WARNINGS)
    sl_diag_warn("%" PRIu64 " more skipped entities not shown", im.skip_warnings - MAX_SKIP_WARNINGS);
fail:
  rc = sl__sink_close(&im.sink, rc);
  cols_free(&im);
  rd_free(&im.rd);
  for (size_t i = 0; i < im.nspaces; i++) {
    free(im.spaces[i].name);
    sl__idmap_free(&im.spaces[i].map);
  }
  free(im.spaces);
  free(im.props);
  free(im.labels);
  sl__scratch_free(im.arena);
  if (res) *res = im.res;
  return rc;
}
