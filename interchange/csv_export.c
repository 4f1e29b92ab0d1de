/*
 * Export to neo4j-admin CSV files (`shiplog export STORE --csv DIR`,
 * spec/cli.md; interchange.h lists the files and the refusals).
 *
 * THE PROBLEM. A CSV column has one type for all its rows, but shiplog, like
 * Neo4j, lets the same key hold an int on one node and a string on another.
 * And neo4j-admin has a handful of spellings with no escape: array elements
 * are split on the array delimiter whatever they hold, header fields are
 * split at '(' and '{'. The export must stay lossless, so it first looks at
 * the whole graph, then writes.
 *
 * PASS 1 reads every node, then every relationship, once:
 *   - each property gets a column type (ctype): boolean, long, double,
 *     string, byte[] (bytes), date, localtime, time, localdatetime,
 *     datetime, duration, point (their text as Cypher's toString writes it;
 *     points as {x:1.0,y:2.0,crs:'cartesian'}, quoted for their commas), or
 *     an array type; an empty list fits any array
 *     column ("" reads back as an empty list in every one), so it is
 *     CT_ANY_A until another entity in its file fixes the column's type
 *     (string[] if none does);
 *   - the entity goes to the first file whose columns agree with all its
 *     keys (first fit in id order), extending that file's columns; entities
 *     with a key of another type open a new file. The choice is stable: a
 *     graph imported from these files and exported again gives the same
 *     files, because a file's columns only grow and conflicts only grow with
 *     them;
 *   - the bytes used by labels and list elements' text (to pick an array
 *     delimiter none of them holds) and whether any text holds a line break (then
 *     import.args asks for --multiline-fields) are noted;
 *   - what has no spelling is refused before anything is written.
 * Kept per entity: its id (8 bytes) and its file (4 bytes). The ids are
 * then sorted by file (a stable counting sort: 8 more bytes for a moment).
 *
 * PASS 2 writes each file in turn: its header, then its entities in id
 * order. Strings are always quoted (so "" is an empty string and an empty
 * field means no property), other fields only when they hold the delimiter,
 * the quote or a line break; a quote inside is doubled.
 *
 * ALL OR NOTHING. Files are written into DIR.tmp.XXXXXX beside DIR, each
 * fsynced, and the directory is renamed to DIR (which may exist if empty)
 * at the end; on failure the temporary directory is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interchange_int.h"
#include "sl_base.h"

#define FLUSH_AT (256u << 10)
#define PROGRESS_EVERY 4096

/* Scalars, then the arrays of the same in the same order (CT_X_A = CT_X +
 * CT_NSCALAR; bytes have no array form), then CT_ANY_A. The temporal kinds
 * and the point follow sl_kind's order. */
typedef enum ctype {
  CT_BOOL,
  CT_LONG,
  CT_DOUBLE,
  CT_STRING,
  CT_BYTES,
  CT_DATE, /* .. CT_DURATION: SL_DATE .. SL_DURATION */
  CT_LOCALTIME,
  CT_TIME,
  CT_LOCALDATETIME,
  CT_DATETIME,
  CT_DURATION,
  CT_POINT,
  CT_NSCALAR,
  CT_BOOL_A = CT_NSCALAR,
  CT_LONG_A,
  CT_DOUBLE_A,
  CT_STRING_A,
  CT_ANY_A = 2 * CT_NSCALAR
} ctype;
static const char *const ctype_names[] = {
    "boolean",   "long",        "double",   "string",          "byte[]",      "date",       "localtime",
    "time",      "localdatetime", "datetime", "duration",      "point",       "boolean[]",  "long[]",
    "double[]",  "string[]",    "-",        "date[]",          "localtime[]", "time[]",     "localdatetime[]",
    "datetime[]", "duration[]", "point[]",  "string[]"};

static ctype ctype_of_kind(sl_kind k) {
  switch (k) {
  case SL_BOOL: return CT_BOOL;
  case SL_INT: return CT_LONG;
  case SL_DOUBLE: return CT_DOUBLE;
  case SL_STRING: return CT_STRING;
  case SL_POINT: return CT_POINT;
  case SL_BYTES: return CT_BYTES;
  default: return (ctype)(CT_DATE + (k - SL_DATE)); /* SL_DATE .. SL_DURATION */
  }
}

typedef struct fcol {
  char *key;
  ctype t;
} fcol;

/* One output file's columns, sorted by key (strcmp). */
typedef struct ffile {
  fcol *cols;
  size_t n, cap;
} ffile;

typedef struct fset {
  ffile *files;
  size_t n;
  uint32_t *of;  /* pass 1: file of each entity, parallel to the id list */
  size_t *start; /* pass 2: file k's ids are ids[start[k] .. start[k + 1]) */
} fset;

typedef struct csvexp {
  sl_view *v;
  const char *dir;
  char *tmp;
  sl__idvec nodes, rels;
  fset nf, rf;
  bool used[256]; /* bytes held by labels and list strings */
  bool multiline;
  char adelim;
  ctype *ct; /* one entity's column types */
  size_t ct_cap;
  const sl_value **slot; /* pass 2: one entity's value per file column */
  size_t slot_cap;
  sl__jbuf b, side;
  sl_progress_fn progress;
  void *progress_arg;
  uint64_t done, total;
} csvexp;

static void put_scalar(sl__jbuf *b, sl_kind kind, const sl_value *v);

/* ---- pass 1 ----------------------------------------------------------------------------- */
static void note_text(csvexp *x, const char *s, size_t n, bool delim_matters) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n' || c == '\r') x->multiline = true;
    if (delim_matters) x->used[c] = true;
  }
}

/* The column type of v, or SL_EINVAL and the reason in *no. */
static int ctype_of(csvexp *x, const sl_value *v, ctype *out, const char **no) {
  if (v->kind == SL_STRING) note_text(x, v->u.s, v->len, false);
  if (v->kind != SL_LIST) {
    *out = ctype_of_kind(v->kind);
    return 0;
  }
  if (v->len == 0) {
    *out = CT_ANY_A;
    return 0;
  }
  switch (v->elem_kind) {
  case SL_BYTES: *no = "a list of byte arrays has no neo4j-admin CSV form"; return SL_EINVAL;
  case SL_STRING:
    if (v->len == 1 && v->u.items[0].len == 0) {
      *no = "a list of one empty string has no neo4j-admin CSV form (it reads back as an empty list)";
      return SL_EINVAL;
    }
    for (size_t i = 0; i < v->len; i++) note_text(x, v->u.items[i].u.s, v->u.items[i].len, true);
    break;
  case SL_BOOL:
  case SL_INT:
  case SL_DOUBLE: break;
  default: /* the delimiter must not occur in the elements' text ('+', '/' in zones) */
    for (size_t i = 0; i < v->len; i++) {
      x->side.len = 0;
      put_scalar(&x->side, v->elem_kind, &v->u.items[i]);
      note_text(x, x->side.p, x->side.len, true);
    }
    break;
  }
  *out = (ctype)(ctype_of_kind(v->elem_kind) + CT_NSCALAR);
  return 0;
}

static bool compatible(ctype a, ctype b) {
  return a == b || (a == CT_ANY_A && b >= CT_NSCALAR) || (b == CT_ANY_A && a >= CT_NSCALAR);
}

static fcol *col_find(const ffile *f, const char *key, size_t *at) {
  size_t lo = 0, hi = f->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(f->cols[mid].key, key);
    if (c == 0) {
      *at = mid;
      return &f->cols[mid];
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo;
  return NULL;
}

static bool fits(const ffile *f, const sl_prop *props, size_t n, const ctype *ct) {
  for (size_t i = 0; i < n; i++) {
    size_t at;
    fcol *c = col_find(f, props[i].key, &at);
    if (c && !compatible(c->t, ct[i])) return false;
  }
  return true;
}

static int merge(ffile *f, const sl_prop *props, size_t n, const ctype *ct) {
  for (size_t i = 0; i < n; i++) {
    size_t at;
    fcol *c = col_find(f, props[i].key, &at);
    if (c) {
      if (c->t == CT_ANY_A) c->t = ct[i];
      continue;
    }
    if (f->n == f->cap) {
      size_t cap = f->cap ? f->cap * 2 : 8;
      fcol *p = realloc(f->cols, cap * sizeof *p);
      if (!p) return -ENOMEM;
      f->cols = p;
      f->cap = cap;
    }
    char *key = strdup(props[i].key);
    if (!key) return -ENOMEM;
    memmove(&f->cols[at + 1], &f->cols[at], (f->n - at) * sizeof *f->cols);
    f->cols[at] = (fcol){key, ct[i]};
    f->n++;
  }
  return 0;
}

/* Check one entity's properties, then put it in its file. */
static int place(csvexp *x, fset *fs, size_t index, const char *what, uint64_t id, const sl_prop *props, size_t n) {
  if (n > x->ct_cap) {
    ctype *p = realloc(x->ct, n * sizeof *p);
    if (!p) return -ENOMEM;
    x->ct = p;
    x->ct_cap = n;
  }
  for (size_t i = 0; i < n; i++) {
    const char *no = NULL;
    if (strpbrk(props[i].key, "({"))
      no = "a key holding '(' or '{' has no neo4j-admin CSV form (the header reads it as an id space or options)";
    if (no || ctype_of(x, &props[i].value, &x->ct[i], &no)) {
      sl_diag_error("%s: %s %" PRIu64 ": property \"%.64s\": %s", x->dir, what, id, props[i].key, no);
      return SL_EINVAL;
    }
    note_text(x, props[i].key, strlen(props[i].key), false);
  }
  size_t f = 0;
  while (f < fs->n && !fits(&fs->files[f], props, n, x->ct)) f++;
  if (f == fs->n) {
    ffile *p = realloc(fs->files, (fs->n + 1) * sizeof *p);
    if (!p) return -ENOMEM;
    fs->files = p;
    p[fs->n++] = (ffile){0};
  }
  fs->of[index] = (uint32_t)f;
  return merge(&fs->files[f], props, n, x->ct);
}

static void tick(csvexp *x) {
  if (x->progress && ++x->done % PROGRESS_EVERY == 0) x->progress(x->progress_arg, x->done, x->total);
}

static int pass1(csvexp *x) {
  int rc;
  for (size_t i = 0; i < x->nodes.n; i++) {
    sl_node n;
    if ((rc = sl_view_node(x->v, x->nodes.v[i], &n))) {
      sl_diag_error("%s: node %" PRIu64 ": %s", x->dir, x->nodes.v[i], sl_strerror(rc));
      return rc;
    }
    for (size_t l = 0; l < n.nlabels; l++) note_text(x, n.labels[l], strlen(n.labels[l]), true);
    if ((rc = place(x, &x->nf, i, "node", n.id, n.props, n.nprops))) return rc;
    tick(x);
  }
  for (size_t i = 0; i < x->rels.n; i++) {
    sl_rel r;
    if ((rc = sl_view_rel(x->v, x->rels.v[i], &r))) {
      sl_diag_error("%s: relationship %" PRIu64 ": %s", x->dir, x->rels.v[i], sl_strerror(rc));
      return rc;
    }
    note_text(x, r.type, strlen(r.type), false);
    if ((rc = place(x, &x->rf, i, "relationship", r.id, r.props, r.nprops))) return rc;
    tick(x);
  }
  return 0;
}

/* The first candidate that is no label's and no list string's byte. */
static int pick_delimiter(csvexp *x) {
  static const char candidates[] = ";|^~!$%&*+/<>?\t\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12"
                                   "\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f";
  for (const char *c = candidates; *c; c++)
    if (!x->used[(unsigned char)*c]) {
      x->adelim = *c;
      return 0;
    }
  sl_diag_error("%s: every array delimiter candidate occurs in a label or a list string; no CSV form", x->dir);
  return SL_EINVAL;
}

/* Reorder ids by file (stable, so each file stays in id order): a counting
 * sort, so that pass 2 reads each file's entities without a scan. */
static int group_by_file(sl__idvec *ids, fset *fs) {
  uint64_t *v = malloc((ids->n + 1) * sizeof *v);
  if (!v || !(fs->start = calloc(fs->n + 2, sizeof *fs->start))) {
    free(v);
    return -ENOMEM;
  }
  for (size_t i = 0; i < ids->n; i++) fs->start[fs->of[i] + 2]++;
  for (size_t k = 2; k < fs->n + 2; k++) fs->start[k] += fs->start[k - 1];
  for (size_t i = 0; i < ids->n; i++) v[fs->start[fs->of[i] + 1]++] = ids->v[i];
  free(ids->v);
  ids->v = v;
  free(fs->of);
  fs->of = NULL;
  return 0;
}

/* ---- pass 2 ----------------------------------------------------------------------------- */
static void put_text(sl__jbuf *b, const char *s, size_t n, bool force) {
  bool quote = force || strpbrk(s, ",\"\n\r") != NULL; /* s is NUL-terminated or force is set */
  if (!quote) {
    sl__jbuf_put(b, s, n);
    return;
  }
  sl__jbuf_putc(b, '"');
  size_t run = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '"') {
      sl__jbuf_put(b, s + run, i + 1 - run); /* up to and with the quote, then the quote again */
      sl__jbuf_putc(b, '"');
      run = i + 1;
    }
  sl__jbuf_put(b, s + run, n - run);
  sl__jbuf_putc(b, '"');
}

static void put_scalar(sl__jbuf *b, sl_kind kind, const sl_value *v) {
  char tmp[SL_DOUBLE_BUF];
  switch (kind) {
  case SL_BOOL: sl__jbuf_puts(b, v->u.b ? "true" : "false"); break;
  case SL_INT: sl__jbuf_i64(b, v->u.i); break;
  case SL_DOUBLE: sl__jbuf_put(b, tmp, sl_double_format(v->u.d, tmp)); break;
  case SL_POINT: sl__jbuf_point_map(b, v, ","); break;
  case SL_STRING:
  case SL_BYTES: break; /* written by put_value */
  default: sl__jbuf_temporal(b, kind, v); break;
  }
}

static void put_value(csvexp *x, sl__jbuf *b, const sl_value *v) {
  if (v->kind == SL_STRING) {
    put_text(b, v->u.s, v->len, true);
  } else if (v->kind == SL_BYTES) {
    if (!v->len) sl__jbuf_puts(b, "\"\"");
    for (size_t i = 0; i < v->len; i++) {
      if (i) sl__jbuf_putc(b, x->adelim);
      sl__jbuf_i64(b, (int64_t)v->u.bytes[i] - (v->u.bytes[i] > 127 ? 256 : 0)); /* Java's bytes are signed */
    }
  } else if (v->kind == SL_POINT) { /* {x:1.0,y:2.0,crs:'cartesian'}: quoted for its commas */
    x->side.len = 0;
    put_scalar(&x->side, v->kind, v);
    if (x->side.err) b->err = x->side.err;
    put_text(b, x->side.p, x->side.len, true);
  } else if (v->kind != SL_LIST) {
    put_scalar(b, v->kind, v);
  } else if (v->len == 0) {
    sl__jbuf_puts(b, "\"\"");
  } else if (v->elem_kind == SL_STRING || v->elem_kind == SL_POINT) {
    x->side.len = 0;
    for (size_t i = 0; i < v->len; i++) {
      if (i) sl__jbuf_putc(&x->side, x->adelim);
      if (v->elem_kind == SL_STRING) sl__jbuf_put(&x->side, v->u.items[i].u.s, v->u.items[i].len);
      else put_scalar(&x->side, SL_POINT, &v->u.items[i]);
    }
    if (x->side.err) b->err = x->side.err;
    put_text(b, x->side.p, x->side.len, true);
  } else {
    for (size_t i = 0; i < v->len; i++) {
      if (i) sl__jbuf_putc(b, x->adelim);
      put_scalar(b, v->elem_kind, &v->u.items[i]);
    }
  }
}

static int out_open(csvexp *x, const char *name, char *path, FILE **f) {
  snprintf(path, PATH_MAX, "%s/%s", x->tmp, name);
  if (!(*f = fopen(path, "w"))) {
    int rc = -errno;
    sl_diag_error("%s: cannot create: %s", path, sl_strerror(rc));
    return rc;
  }
  return 0;
}

static int out_close(FILE *f, const char *path, int rc) {
  if (!rc) {
    if (fflush(f) != 0) rc = errno ? -errno : -EIO;
    else if (!(rc = sl_fault(SL_FAULT_FILE_FSYNC))) rc = sl_fsync(fileno(f));
    if (rc) sl_diag_error("%s: write failed: %s", path, sl_strerror(rc));
  }
  if (fclose(f) != 0 && !rc) {
    rc = errno ? -errno : -EIO;
    sl_diag_error("%s: write failed: %s", path, sl_strerror(rc));
  }
  return rc;
}

/* Header fields of file f after the fixed ones. */
static void put_header(sl__jbuf *b, const ffile *f, const char *fixed) {
  sl__jbuf_puts(b, fixed);
  for (size_t c = 0; c < f->n; c++) {
    sl__jbuf_putc(b, ',');
    char field[SL_NAME_MAX + 16];
    int n = snprintf(field, sizeof field, "%s:%s", f->cols[c].key, ctype_names[f->cols[c].t]);
    put_text(b, field, (size_t)n, false);
  }
  sl__jbuf_putc(b, '\n');
}

/* The properties of one entity in file f's column order, then written. */
static int put_props(csvexp *x, sl__jbuf *b, const ffile *f, const sl_prop *props, size_t n) {
  if (f->n > x->slot_cap) {
    const sl_value **p = realloc(x->slot, f->n * sizeof *p);
    if (!p) return -ENOMEM;
    x->slot = p;
    x->slot_cap = f->n;
  }
  memset(x->slot, 0, f->n * sizeof *x->slot);
  for (size_t i = 0; i < n; i++) {
    size_t at;
    if (col_find(f, props[i].key, &at)) x->slot[at] = &props[i].value;
  }
  for (size_t c = 0; c < f->n; c++) {
    sl__jbuf_putc(b, ',');
    if (x->slot[c]) put_value(x, b, x->slot[c]);
  }
  sl__jbuf_putc(b, '\n');
  return 0;
}

static int write_nodes(csvexp *x, uint32_t k, const char *path, FILE *out) {
  const ffile *f = &x->nf.files[k];
  sl__jbuf *b = &x->b;
  int rc;
  b->len = 0;
  put_header(b, f, ":ID,:LABEL");
  for (size_t i = x->nf.start[k]; i < x->nf.start[k + 1]; i++) {
    sl_node n;
    if ((rc = sl_view_node(x->v, x->nodes.v[i], &n))) {
      sl_diag_error("%s: node %" PRIu64 ": %s", x->dir, x->nodes.v[i], sl_strerror(rc));
      return rc;
    }
    sl__jbuf_u64(b, n.id);
    sl__jbuf_putc(b, ',');
    x->side.len = 0;
    for (size_t l = 0; l < n.nlabels; l++) {
      if (l) sl__jbuf_putc(&x->side, x->adelim);
      sl__jbuf_puts(&x->side, n.labels[l]);
    }
    sl__jbuf_putc(&x->side, 0);
    if (x->side.err)
      b->err = x->side.err;
    else
      put_text(b, x->side.p, x->side.len - 1, false);
    if ((rc = put_props(x, b, f, n.props, n.nprops))) return rc;
    if (b->len >= FLUSH_AT && (rc = sl__jbuf_flush(b, out, path))) return rc;
    tick(x);
  }
  return sl__jbuf_flush(b, out, path);
}

static int write_rels(csvexp *x, uint32_t k, const char *path, FILE *out) {
  const ffile *f = &x->rf.files[k];
  sl__jbuf *b = &x->b;
  int rc;
  b->len = 0;
  put_header(b, f, ":START_ID,:END_ID,:TYPE");
  for (size_t i = x->rf.start[k]; i < x->rf.start[k + 1]; i++) {
    sl_rel r;
    if ((rc = sl_view_rel(x->v, x->rels.v[i], &r))) {
      sl_diag_error("%s: relationship %" PRIu64 ": %s", x->dir, x->rels.v[i], sl_strerror(rc));
      return rc;
    }
    sl__jbuf_u64(b, r.start);
    sl__jbuf_putc(b, ',');
    sl__jbuf_u64(b, r.end);
    sl__jbuf_putc(b, ',');
    put_text(b, r.type, strlen(r.type), false);
    if ((rc = put_props(x, b, f, r.props, r.nprops))) return rc;
    if (b->len >= FLUSH_AT && (rc = sl__jbuf_flush(b, out, path))) return rc;
    tick(x);
  }
  return sl__jbuf_flush(b, out, path);
}

static int write_args(csvexp *x) {
  char path[PATH_MAX];
  FILE *f;
  int rc = out_open(x, "import.args", path, &f);
  if (rc) return rc;
  fputs("--id-type=integer\n", f);
  if (x->adelim != ';') {
    if (x->adelim == '\t')
      fputs("--array-delimiter=TAB\n", f);
    else if ((unsigned char)x->adelim < 0x20)
      fprintf(f, "--array-delimiter=U+%04X\n", (unsigned)x->adelim);
    else
      fprintf(f, "--array-delimiter=%c\n", x->adelim);
  }
  if (x->multiline) fputs("--multiline-fields=true\n", f);
  for (size_t k = 0; k < SL_MAX(x->nf.n, (size_t)1); k++) fprintf(f, "--nodes=nodes_%zu.csv\n", k + 1);
  for (size_t k = 0; k < x->rf.n; k++) fprintf(f, "--relationships=relationships_%zu.csv\n", k + 1);
  if (ferror(f)) rc = errno ? -errno : -EIO;
  return out_close(f, path, rc);
}

static int pass2(csvexp *x) {
  char path[PATH_MAX], name[64];
  FILE *f;
  int rc;
  if (x->nf.n == 0) { /* no nodes: one file with just the header */
    static const ffile none = {0};
    snprintf(name, sizeof name, "nodes_1.csv");
    if ((rc = out_open(x, name, path, &f))) return rc;
    x->b.len = 0;
    put_header(&x->b, &none, ":ID,:LABEL");
    return out_close(f, path, sl__jbuf_flush(&x->b, f, path));
  }
  for (uint32_t k = 0; k < x->nf.n; k++) {
    snprintf(name, sizeof name, "nodes_%u.csv", k + 1);
    if ((rc = out_open(x, name, path, &f))) return rc;
    if ((rc = out_close(f, path, write_nodes(x, k, path, f)))) return rc;
  }
  for (uint32_t k = 0; k < x->rf.n; k++) {
    snprintf(name, sizeof name, "relationships_%u.csv", k + 1);
    if ((rc = out_open(x, name, path, &f))) return rc;
    if ((rc = out_close(f, path, write_rels(x, k, path, f)))) return rc;
  }
  return 0;
}

/* ---- the directory ---------------------------------------------------------------------- */
/* dir must be missing or an empty directory. */
static int check_target(const char *dir) {
  struct stat sb;
  if (stat(dir, &sb) != 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(sb.st_mode)) return -ENOTDIR;
  DIR *d = opendir(dir);
  if (!d) return -errno;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) rc = -ENOTEMPTY;
  closedir(d);
  return rc;
}

static void fset_free(fset *fs) {
  for (size_t f = 0; f < fs->n; f++) {
    for (size_t c = 0; c < fs->files[f].n; c++) free(fs->files[f].cols[c].key);
    free(fs->files[f].cols);
  }
  free(fs->files);
  free(fs->of);
  free(fs->start);
}

int sl_export_csv(sl_view *v, const char *dir, sl_progress_fn progress, void *progress_arg, sl_csv_export_result *res) {
  csvexp x = {.v = v, .dir = dir, .progress = progress, .progress_arg = progress_arg};
  int rc;

  size_t dl = strlen(dir);
  while (dl > 1 && dir[dl - 1] == '/') dl--;
  if (dl + 16 >= PATH_MAX) {
    rc = -ENAMETOOLONG;
    sl_diag_error("%s: %s", dir, sl_strerror(rc));
    goto fail;
  }
  if ((rc = check_target(dir))) {
    sl_diag_error("%s: %s (the CSV files go into a new or empty directory)", dir, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_view_all_nodes(v, sl__idvec_push, &x.nodes)) || (rc = sl_view_all_rels(v, sl__idvec_push, &x.rels))) {
    sl_diag_error("%s: listing the graph: %s", dir, sl_strerror(rc));
    goto fail;
  }
  x.total = 2 * (uint64_t)(x.nodes.n + x.rels.n);
  if (!(x.nf.of = calloc(x.nodes.n + 1, sizeof *x.nf.of)) || !(x.rf.of = calloc(x.rels.n + 1, sizeof *x.rf.of))) {
    rc = -ENOMEM;
    goto fail;
  }
  if ((rc = pass1(&x)) || (rc = pick_delimiter(&x)) || (rc = group_by_file(&x.nodes, &x.nf)) ||
      (rc = group_by_file(&x.rels, &x.rf)))
    goto fail;

  if (!(x.tmp = malloc(dl + 16))) {
    rc = -ENOMEM;
    goto fail;
  }
  snprintf(x.tmp, dl + 16, "%.*s.tmp.XXXXXX", (int)dl, dir);
  if (!mkdtemp(x.tmp)) {
    rc = -errno;
    sl_diag_error("%s: cannot create a temporary directory: %s", x.tmp, sl_strerror(rc));
    free(x.tmp);
    x.tmp = NULL;
    goto fail;
  }
  if (chmod(x.tmp, 0755) != 0) { /* mkdtemp's 0700 would keep neo4j-admin's user out */
    rc = -errno;
    sl_diag_error("%s: chmod: %s", x.tmp, sl_strerror(rc));
    goto fail;
  }
  if ((rc = pass2(&x)) || (rc = write_args(&x))) goto fail;
  if ((rc = sl_fault(SL_FAULT_FILE_FSYNC)) || (rc = sl_fsync_dir(x.tmp))) {
    sl_diag_error("%s: fsync: %s", x.tmp, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_rename_durable(x.tmp, dir))) goto fail; /* then fsyncs the parent */
  free(x.tmp);
  x.tmp = NULL;
  if (progress) progress(progress_arg, x.done, x.total);
  if (res)
    *res = (sl_csv_export_result){
        .node_files = SL_MAX(x.nf.n, (size_t)1), .rel_files = x.rf.n, .nodes = x.nodes.n, .rels = x.rels.n};
fail:
  if (rc == -ENOMEM) sl_diag_error("%s: %s", dir, sl_strerror(rc));
  if (x.tmp) {
    sl_remove_tree(x.tmp);
    free(x.tmp);
  }
  free(x.nodes.v);
  free(x.rels.v);
  fset_free(&x.nf);
  fset_free(&x.rf);
  free(x.ct);
  free(x.slot);
  sl__jbuf_free(&x.b);
  sl__jbuf_free(&x.side);
  return rc;
}
