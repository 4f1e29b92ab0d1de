/*
 * Import of neo4j-admin CSV files (`shiplog import --nodes=... --relationships=...`,
 * spec/cli.md; interchange.h states the header and field rules).
 *
 * FILES. csv_reader.c reads the records (READING, CHARACTERS), csv_columns.c
 * parses the header into columns and each field into a value (HEADERS,
 * VALUES), this file drives the import: the sources in order, the rows, the
 * new store; csv_import_int.h is what they share.
 *
 * IDS. Each id space ((GROUP); the empty name is the default one) is an
 * sl__idmap from the id's key to the new node id: the field's bytes with
 * --id-type string, the int64's 8 bytes with --id-type integer (so "007"
 * and "7" are one id, as for neo4j-admin). All node sources are read before
 * any relationship source, so relationship headers can check that the id
 * spaces they name exist.
 *
 * ALL OR NOTHING through sl__sink: the first refused row aborts the batch
 * and removes the store.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "csv_import_int.h"
#include "sl_base.h"

#define DEFAULT_OPS_PER_TX 10000
#define MAX_SKIP_WARNINGS 100
#define PROGRESS_ROWS 4096

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
    return sl__csv_why(im, SL_EINVAL,
                       "%zu fields, but the header has %zu columns (--ignore-extra-columns ignores the rest)",
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
  return sl__csv_why(im, rc, "%s: %s", what, sl_tx_error(tx) ? sl_tx_error(tx) : sl_strerror(rc));
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
        size_t len = sl__csv_ad_next(im, s, f->len, at) - at;
        s[at + len] = 0;
        const char *l = s + at;
        size_t ll = len;
        if (im->o->trim_strings) sl__csv_trim(&l, &ll);
        ((char *)l)[ll] = 0;
        if (ll && memchr(l, 0, ll)) return sl__csv_col_why(im, i, "a label may not hold a NUL byte");
        if (ll && (rc = add_label(im, &nlabels, l))) return rc;
        at += len + im->adlen;
      }
    } else if (c->kind == COL_ID) {
      sl_value v;
      if ((rc = sl__csv_id_key(im, i, f, key8, &key, &keylen, &v))) return rc;
      if (!keylen) key = NULL;
      space = c->space;
      if (c->name && keylen) im->props[nprops++] = (sl_prop){.key = c->name, .value = v};
    } else {
      bool has;
      if ((rc = sl__csv_prop_value(im, i, f, &im->props[nprops].value, &has))) return rc;
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
        return sl__csv_why(im, SL_EEXIST, "node id '%s'%s%s%s appears twice (--skip-duplicate-nodes skips it)", shown,
                           *sp ? " in id space '" : "", sp, *sp ? "'" : "");
      im->res.skipped_nodes++;
      return skipped(im, "node id '%s' appears twice", shown);
    }
  }
  sl_tx *tx;
  uint64_t id;
  if ((rc = sl__sink_tx(&im->sink, &tx))) return sl__csv_why(im, rc, "cannot begin a transaction: %s", sl_strerror(rc));
  if ((rc = sl_tx_create_node(tx, SL_ID_NEW, im->labels, nlabels, im->props, nprops, &id)))
    return store_why(im, tx, rc, "node");
  if (slot && (rc = sl__idmap_insert(&im->spaces[space].map, slot, key, keylen, id))) return rc;
  im->res.nodes++;
  if ((rc = sl__sink_op_done(&im->sink))) return sl__csv_why(im, rc, "commit: %s", sl_strerror(rc));
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
  int rc = sl__csv_id_key(im, col, f, key8, &key, &keylen, &v);
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
      if (im->o->trim_strings) sl__csv_trim(&s, &n);
      ((char *)s)[n] = 0;
      if (memchr(s, 0, n)) return sl__csv_col_why(im, i, "a type may not hold a NUL byte");
      if (n) type = s;
    } else {
      bool has;
      if ((rc = sl__csv_prop_value(im, i, f, &im->props[nprops].value, &has))) return rc;
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
      return sl__csv_why(im, SL_ENOTFOUND, "%s node %s is not in the node files (--skip-bad-relationships skips it)",
                         which, shown);
    im->res.skipped_rels++;
    return skipped(im, "%s node %s is not in the node files", which, shown);
  }
  if (!type) {
    if (!im->o->skip_bad_relationships)
      return sl__csv_why(im, SL_EINVAL, "relationship without a type (no :TYPE value and no TYPE= before the files)");
    im->res.skipped_rels++;
    return skipped(im, "relationship without a type");
  }
  sl_tx *tx;
  if ((rc = sl__sink_tx(&im->sink, &tx))) return sl__csv_why(im, rc, "cannot begin a transaction: %s", sl_strerror(rc));
  if ((rc = sl_tx_create_rel(tx, SL_ID_NEW, type, ends[0], ends[1], im->props, nprops, NULL)))
    return store_why(im, tx, rc, "relationship");
  im->res.rels++;
  if ((rc = sl__sink_op_done(&im->sink))) return sl__csv_why(im, rc, "commit: %s", sl_strerror(rc));
  return 0;
}

/* ---- sources ----------------------------------------------------------------------------------- */
static void report(csvimp *im, int rc) {
  csv_reader *r = &im->rd;
  if (rc == -ENOMEM && !im->why[0]) sl__csv_why(im, rc, "%s", sl_strerror(rc));
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
  sl__csv_cols_free(im);
  sl__csv_rd_close_file(r);
  r->files = src->files;
  r->nfiles = src->nfiles;
  r->next_file = 0;
  r->name = src->nfiles ? src->files[0] : NULL;
  r->rec_line = 0;
  im->why[0] = 0;
  if (!src->nfiles) {
    sl__csv_why(im, SL_EINVAL, "a --%s option without files", rels ? "relationships" : "nodes");
    rc = SL_EINVAL;
    goto fail;
  }
  rc = sl__csv_rd_next(r, im->why, sizeof im->why);
  if (rc == 0 || (rc > 0 && r->next_file > 1)) {
    r->rec_line = 0;
    rc = sl__csv_why(im, SL_EINVAL, "the file is empty: its first line must be the header");
    r->name = src->files[0];
    goto fail;
  }
  if (rc < 0 || (rc = sl__csv_parse_header(im))) goto fail;
  while ((rc = sl__csv_rd_next(r, im->why, sizeof im->why)) > 0) {
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
  sl__csv_cols_free(&im);
  sl__csv_rd_free(&im.rd);
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
