/*
 * Query results and parameters as text (spec/query.md): rows as JSON Lines
 * (values in the JSON mapping of interchange.h, nodes, relationships and
 * paths as query.md shapes them, then a stats line after a statement that
 * writes), as CSV, or as a table for people; and parameters from JSON into
 * sl_qvalue (objects become maps except the tagged forms $bytes, $double,
 * $date .. $duration and $point, which jsonvalue.c reads and writes).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interchange_int.h"
#include "sl_base.h"
#include "query.h"

/* ---- JSON ------------------------------------------------------------------------------------ */
static void json_props(sl__jbuf *b, const sl_prop *props, size_t n) {
  sl__jbuf_putc(b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) sl__jbuf_putc(b, ',');
    sl__jbuf_str(b, props[i].key, strlen(props[i].key));
    sl__jbuf_putc(b, ':');
    sl__jbuf_value(b, &props[i].value);
  }
  sl__jbuf_putc(b, '}');
}

static void json_node(sl__jbuf *b, const sl_qnode *n) {
  sl__jbuf_puts(b, "{\"elementId\":");
  sl__jbuf_str(b, n->element_id, strlen(n->element_id));
  sl__jbuf_puts(b, ",\"labels\":[");
  for (size_t i = 0; i < n->nlabels; i++) {
    if (i) sl__jbuf_putc(b, ',');
    sl__jbuf_str(b, n->labels[i], strlen(n->labels[i]));
  }
  sl__jbuf_puts(b, "],\"properties\":");
  json_props(b, n->props, n->nprops);
  sl__jbuf_putc(b, '}');
}

static void json_rel(sl__jbuf *b, const sl_qrel *r) {
  sl__jbuf_puts(b, "{\"elementId\":");
  sl__jbuf_str(b, r->element_id, strlen(r->element_id));
  sl__jbuf_puts(b, ",\"type\":");
  sl__jbuf_str(b, r->type, strlen(r->type));
  sl__jbuf_puts(b, ",\"start\":");
  sl__jbuf_str(b, r->start_element_id, strlen(r->start_element_id));
  sl__jbuf_puts(b, ",\"end\":");
  sl__jbuf_str(b, r->end_element_id, strlen(r->end_element_id));
  sl__jbuf_puts(b, ",\"properties\":");
  json_props(b, r->props, r->nprops);
  sl__jbuf_putc(b, '}');
}

void sl__jbuf_qvalue(sl__jbuf *b, const sl_qvalue *v) {
  switch (v->kind) {
  case SL_NULL: sl__jbuf_puts(b, "null"); return;
  case SL_QLIST:
    sl__jbuf_putc(b, '[');
    for (size_t i = 0; i < v->u.list.n; i++) {
      if (i) sl__jbuf_putc(b, ',');
      sl__jbuf_qvalue(b, &v->u.list.items[i]);
    }
    sl__jbuf_putc(b, ']');
    return;
  case SL_QMAP:
    sl__jbuf_putc(b, '{');
    for (size_t i = 0; i < v->u.map.n; i++) {
      if (i) sl__jbuf_putc(b, ',');
      sl__jbuf_str(b, v->u.map.entries[i].key, strlen(v->u.map.entries[i].key));
      sl__jbuf_putc(b, ':');
      sl__jbuf_qvalue(b, &v->u.map.entries[i].value);
    }
    sl__jbuf_putc(b, '}');
    return;
  case SL_QNODE: json_node(b, &v->u.node); return;
  case SL_QREL: json_rel(b, &v->u.rel); return;
  case SL_QPATH:
    sl__jbuf_puts(b, "{\"nodes\":[");
    for (size_t i = 0; i < v->u.path.nnodes; i++) {
      if (i) sl__jbuf_putc(b, ',');
      json_node(b, &v->u.path.nodes[i]);
    }
    sl__jbuf_puts(b, "],\"relationships\":[");
    for (size_t i = 0; i < v->u.path.nrels; i++) {
      if (i) sl__jbuf_putc(b, ',');
      json_rel(b, &v->u.path.rels[i]);
    }
    sl__jbuf_puts(b, "]}");
    return;
  default: sl__jbuf_value(b, &v->u.v); return;
  }
}

/* ---- text (table and CSV cells), as cypher-shell prints values --------------------------------- */
static void text_value(sl__jbuf *b, const sl_qvalue *v, bool top);

static void text_prop(sl__jbuf *b, const sl_value *v, bool quote) {
  char tmp[SL_TEMPORAL_TEXT_MAX + 64];
  switch (v->kind) {
  case SL_BOOL: sl__jbuf_puts(b, v->u.b ? "TRUE" : "FALSE"); return;
  case SL_INT: sl__jbuf_i64(b, v->u.i); return;
  case SL_DOUBLE: sl__jbuf_put(b, tmp, sl_double_format(v->u.d, tmp)); return;
  case SL_STRING:
    if (quote) sl__jbuf_str(b, v->u.s, v->len);
    else sl__jbuf_put(b, v->u.s, v->len);
    return;
  case SL_BYTES: {
    sl__jbuf_putc(b, '[');
    for (size_t i = 0; i < v->len; i++) {
      if (i) sl__jbuf_puts(b, ", ");
      sl__jbuf_i64(b, (int8_t)v->u.bytes[i]);
    }
    sl__jbuf_putc(b, ']');
    return;
  }
  case SL_LIST:
    sl__jbuf_putc(b, '[');
    for (size_t i = 0; i < v->len; i++) {
      sl_value e = v->u.items[i];
      e.kind = v->elem_kind;
      if (i) sl__jbuf_puts(b, ", ");
      text_prop(b, &e, true);
    }
    sl__jbuf_putc(b, ']');
    return;
  case SL_POINT: sl__jbuf_point_map(b, v, ", "); return;
  default: {
    int n = sl_temporal_format(v, tmp, sizeof tmp);
    if (n > 0) sl__jbuf_put(b, tmp, (size_t)n);
    return;
  }
  }
}

static void text_props(sl__jbuf *b, const sl_prop *props, size_t n) {
  if (!n) return;
  sl__jbuf_puts(b, " {");
  for (size_t i = 0; i < n; i++) {
    if (i) sl__jbuf_puts(b, ", ");
    sl__jbuf_puts(b, props[i].key);
    sl__jbuf_puts(b, ": ");
    text_prop(b, &props[i].value, true);
  }
  sl__jbuf_putc(b, '}');
}

static void text_node(sl__jbuf *b, const sl_qnode *n) {
  sl__jbuf_putc(b, '(');
  for (size_t i = 0; i < n->nlabels; i++) {
    sl__jbuf_putc(b, ':');
    sl__jbuf_puts(b, n->labels[i]);
  }
  text_props(b, n->props, n->nprops);
  sl__jbuf_putc(b, ')');
}

static void text_rel(sl__jbuf *b, const sl_qrel *r) {
  sl__jbuf_puts(b, "[:");
  sl__jbuf_puts(b, r->type);
  text_props(b, r->props, r->nprops);
  sl__jbuf_putc(b, ']');
}

static void text_value(sl__jbuf *b, const sl_qvalue *v, bool top) {
  switch (v->kind) {
  case SL_NULL: sl__jbuf_puts(b, top ? "NULL" : "NULL"); return;
  case SL_QLIST:
    sl__jbuf_putc(b, '[');
    for (size_t i = 0; i < v->u.list.n; i++) {
      if (i) sl__jbuf_puts(b, ", ");
      text_value(b, &v->u.list.items[i], false);
    }
    sl__jbuf_putc(b, ']');
    return;
  case SL_QMAP:
    sl__jbuf_putc(b, '{');
    for (size_t i = 0; i < v->u.map.n; i++) {
      if (i) sl__jbuf_puts(b, ", ");
      sl__jbuf_puts(b, v->u.map.entries[i].key);
      sl__jbuf_puts(b, ": ");
      text_value(b, &v->u.map.entries[i].value, false);
    }
    sl__jbuf_putc(b, '}');
    return;
  case SL_QNODE: text_node(b, &v->u.node); return;
  case SL_QREL: text_rel(b, &v->u.rel); return;
  case SL_QPATH: {
    uint64_t cur = v->u.path.nnodes ? v->u.path.nodes[0].id : 0;
    for (size_t i = 0; i < v->u.path.nnodes; i++) {
      text_node(b, &v->u.path.nodes[i]);
      if (i < v->u.path.nrels) {
        const sl_qrel *r = &v->u.path.rels[i];
        bool fwd = r->start == cur;
        sl__jbuf_puts(b, fwd ? "-" : "<-");
        text_rel(b, r);
        sl__jbuf_puts(b, fwd ? "->" : "-");
        cur = fwd ? r->end : r->start;
      }
    }
    return;
  }
  default: text_prop(b, &v->u.v, top ? true : true); return;
  }
}

/* ---- the writer -------------------------------------------------------------------------------- */
static void stats_json(sl__jbuf *b, const sl_qstats *s) {
  const struct {
    const char *name;
    uint64_t v;
  } c[] = {{"nodes_created", s->nodes_created},
           {"nodes_deleted", s->nodes_deleted},
           {"relationships_created", s->relationships_created},
           {"relationships_deleted", s->relationships_deleted},
           {"properties_set", s->properties_set},
           {"labels_added", s->labels_added},
           {"labels_removed", s->labels_removed},
           {"indexes_added", s->indexes_added},
           {"indexes_removed", s->indexes_removed},
           {"constraints_added", s->constraints_added},
           {"constraints_removed", s->constraints_removed}};
  sl__jbuf_puts(b, "{\"stats\":{");
  for (size_t i = 0; i < SL_ARRAY_LEN(c); i++) {
    if (i) sl__jbuf_putc(b, ',');
    sl__jbuf_putc(b, '"');
    sl__jbuf_puts(b, c[i].name);
    sl__jbuf_puts(b, "\":");
    sl__jbuf_u64(b, c[i].v);
  }
  sl__jbuf_puts(b, "}}\n");
}

static void stats_text(sl__jbuf *b, const sl_qstats *s) {
  const struct {
    const char *name;
    uint64_t v;
  } c[] = {{"Added %llu nodes", s->nodes_created},
           {"Deleted %llu nodes", s->nodes_deleted},
           {"Created %llu relationships", s->relationships_created},
           {"Deleted %llu relationships", s->relationships_deleted},
           {"Set %llu properties", s->properties_set},
           {"Added %llu labels", s->labels_added},
           {"Removed %llu labels", s->labels_removed}};
  bool any = false;
  char tmp[64];
  for (size_t i = 0; i < SL_ARRAY_LEN(c); i++) {
    if (!c[i].v) continue;
    sl__jbuf_puts(b, any ? ", " : "");
    snprintf(tmp, sizeof tmp, c[i].name, (unsigned long long)c[i].v);
    sl__jbuf_puts(b, tmp);
    any = true;
  }
  if (any) sl__jbuf_putc(b, '\n');
}

static void csv_cell(sl__jbuf *b, const char *s, size_t n) {
  bool quote = false;
  for (size_t i = 0; i < n && !quote; i++) quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
  if (!quote) {
    sl__jbuf_put(b, s, n);
    return;
  }
  sl__jbuf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') sl__jbuf_putc(b, '"');
    sl__jbuf_putc(b, s[i]);
  }
  sl__jbuf_putc(b, '"');
}

/* Table cells: the text of every row, kept to size the columns. */
typedef struct table {
  char **cells;
  size_t n, cap;
} table;

static int table_add(table *t, const char *s, size_t n) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    char **nc = realloc(t->cells, sizeof *nc * cap);
    if (!nc) return -ENOMEM;
    t->cells = nc;
    t->cap = cap;
  }
  char *c = malloc(n + 1);
  if (!c) return -ENOMEM;
  memcpy(c, s, n);
  c[n] = 0;
  t->cells[t->n++] = c;
  return 0;
}

static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

static void table_print(sl__jbuf *b, const char *const *cols, size_t ncols, table *t) {
  size_t *w = calloc(ncols ? ncols : 1, sizeof *w);
  if (!w) {
    b->err = -ENOMEM;
    return;
  }
  for (size_t c = 0; c < ncols; c++) w[c] = width(cols[c]);
  for (size_t i = 0; i < t->n; i++) {
    size_t cw = width(t->cells[i]);
    if (cw > w[i % ncols]) w[i % ncols] = cw;
  }
  char line[4096];
  size_t lo = 0;
  line[lo++] = '+';
  for (size_t c = 0; c < ncols; c++) {
    for (size_t k = 0; k < w[c] + 2 && lo < sizeof line - 3; k++) line[lo++] = '-';
    line[lo++] = '+';
  }
  line[lo++] = '\n';
  sl__jbuf_put(b, line, lo);
  for (size_t r = 0; r <= t->n / ncols; r++) {
    if (r && r - 1 == t->n / ncols) break;
    sl__jbuf_putc(b, '|');
    for (size_t c = 0; c < ncols; c++) {
      const char *s = r == 0 ? cols[c] : t->cells[(r - 1) * ncols + c];
      sl__jbuf_putc(b, ' ');
      sl__jbuf_puts(b, s);
      for (size_t k = width(s); k < w[c] + 1; k++) sl__jbuf_putc(b, ' ');
      sl__jbuf_putc(b, '|');
    }
    sl__jbuf_putc(b, '\n');
    if (r == 0) sl__jbuf_put(b, line, lo);
    if ((r + 1) * ncols > t->n) break;
  }
  sl__jbuf_put(b, line, lo);
  free(w);
}

int sl_results_write(FILE *out, sl_results_format f, sl_qcursor *c, sl_query_error *err, const char *name,
                     uint64_t *nrows) {
  const char *const *cols;
  size_t ncols = sl_qcursor_columns(c, &cols);
  sl__jbuf b = {0}, cell = {0};
  table t = {0};
  int rc;
  uint64_t rows = 0;
  if (f == SL_RESULTS_CSV && ncols) {
    for (size_t i = 0; i < ncols; i++) {
      if (i) sl__jbuf_putc(&b, ',');
      csv_cell(&b, cols[i], strlen(cols[i]));
    }
    sl__jbuf_putc(&b, '\n');
  }
  const sl_qvalue *row;
  while ((rc = sl_qcursor_next(c, &row, err)) == 1) {
    rows++;
    for (size_t i = 0; i < ncols; i++) {
      switch (f) {
      case SL_RESULTS_JSONL:
        sl__jbuf_putc(&b, i ? ',' : '{');
        sl__jbuf_str(&b, cols[i], strlen(cols[i]));
        sl__jbuf_putc(&b, ':');
        sl__jbuf_qvalue(&b, &row[i]);
        break;
      case SL_RESULTS_CSV:
        if (i) sl__jbuf_putc(&b, ',');
        cell.len = 0;
        if (row[i].kind == SL_STRING) sl__jbuf_put(&cell, row[i].u.v.u.s, row[i].u.v.len);
        else if (row[i].kind != SL_NULL) text_value(&cell, &row[i], true);
        csv_cell(&b, cell.p ? cell.p : "", cell.len);
        break;
      default:
        cell.len = 0;
        text_value(&cell, &row[i], true);
        if (cell.err || table_add(&t, cell.p ? cell.p : "", cell.len)) b.err = -ENOMEM;
        break;
      }
    }
    if (f == SL_RESULTS_JSONL) sl__jbuf_puts(&b, ncols ? "}\n" : "{}\n");
    else if (f == SL_RESULTS_CSV) sl__jbuf_putc(&b, '\n');
    if (b.len > 65536 && (rc = sl__jbuf_flush(&b, out, name))) goto out;
  }
  if (rc < 0) goto out;
  sl_qstats st;
  sl_qcursor_stats(c, &st);
  if (f == SL_RESULTS_TABLE) {
    if (ncols) {
      table_print(&b, cols, ncols, &t);
      char tmp[64];
      snprintf(tmp, sizeof tmp, "%llu row%s\n", (unsigned long long)rows, rows == 1 ? "" : "s");
      sl__jbuf_puts(&b, tmp);
    }
    if (st.contains_updates) stats_text(&b, &st);
  } else if (f == SL_RESULTS_JSONL && st.contains_updates) {
    stats_json(&b, &st);
  }
  const char *plan = sl_qcursor_plan(c, NULL); /* EXPLAIN, PROFILE: one line after the rows */
  if (plan && f == SL_RESULTS_JSONL) {
    sl__jbuf_puts(&b, "{\"plan\":");
    sl__jbuf_str(&b, plan, strlen(plan));
    sl__jbuf_puts(&b, "}\n");
  } else if (plan) {
    sl__jbuf_puts(&b, "plan: ");
    sl__jbuf_puts(&b, plan);
    sl__jbuf_putc(&b, '\n');
  }
  rc = sl__jbuf_flush(&b, out, name);
out:
  if (nrows) *nrows = rows;
  for (size_t i = 0; i < t.n; i++) free(t.cells[i]);
  free(t.cells);
  sl__jbuf_free(&b);
  sl__jbuf_free(&cell);
  return rc;
}

/* ---- parameters from JSON ---------------------------------------------------------------------- */
struct sl_param_set {
  sl__scratch *a;
  sl_qparam *params;
  size_t n, cap;
  json_t **docs; /* the parsed texts: strings point into them */
  size_t ndocs;
};

static int pfail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pfail(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return SL_EINVAL;
}

static int json_to_qv(json_t *j, sl__scratch *a, sl_qvalue *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  switch (json_typeof(j)) {
  case JSON_NULL: out->kind = SL_NULL; return 0;
  case JSON_ARRAY: {
    size_t n = json_array_size(j);
    sl_qvalue *items = sl__scratch_alloc(a, sizeof *items * (n ? n : 1));
    if (!items) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
      int rc = json_to_qv(json_array_get(j, i), a, &items[i], why, whylen);
      if (rc) return rc;
    }
    out->kind = SL_QLIST;
    out->u.list.n = n;
    out->u.list.items = items;
    return 0;
  }
  case JSON_OBJECT: {
    const char *key;
    json_t *v;
    /* the tagged forms ($bytes, $double, $date .. $duration, $point) */
    if (json_object_size(j) == 1 && json_object_iter_key(json_object_iter(j))[0] == '$') {
      int rc = sl__json_value(j, a, false, &out->u.v, why, whylen);
      out->kind = out->u.v.kind;
      return rc;
    }
    size_t n = json_object_size(j), i = 0;
    sl_qentry *es = sl__scratch_alloc(a, sizeof *es * (n ? n : 1));
    if (!es) return -ENOMEM;
    json_object_foreach(j, key, v) {
      size_t kl = strlen(key);
      char *k = sl__scratch_alloc(a, kl + 1);
      if (!k) return -ENOMEM;
      memcpy(k, key, kl + 1);
      es[i].key = k;
      int rc = json_to_qv(v, a, &es[i].value, why, whylen);
      if (rc) return rc;
      i++;
    }
    out->kind = SL_QMAP;
    out->u.map.n = n;
    out->u.map.entries = es;
    return 0;
  }
  default: {
    int rc = sl__json_value(j, a, false, &out->u.v, why, whylen);
    out->kind = out->u.v.kind;
    return rc;
  }
  }
}

sl_param_set *sl_param_set_new(void) {
  sl_param_set *ps = calloc(1, sizeof *ps);
  if (ps && !(ps->a = sl__scratch_new())) {
    free(ps);
    return NULL;
  }
  return ps;
}

void sl_param_set_free(sl_param_set *ps) {
  if (!ps) return;
  for (size_t i = 0; i < ps->ndocs; i++) json_decref(ps->docs[i]);
  free(ps->docs);
  sl__scratch_free(ps->a);
  free(ps->params);
  free(ps);
}

const sl_qparam *sl_param_set_items(const sl_param_set *ps, size_t *n) {
  *n = ps->n;
  return ps->params;
}

static int put_param(sl_param_set *ps, const char *name, size_t nlen, json_t *j, char *why, size_t whylen) {
  size_t i;
  for (i = 0; i < ps->n; i++)
    if (strlen(ps->params[i].name) == nlen && !memcmp(ps->params[i].name, name, nlen)) break;
  if (i == ps->n) {
    if (ps->n == ps->cap) {
      size_t cap = ps->cap ? ps->cap * 2 : 8;
      sl_qparam *np = realloc(ps->params, sizeof *np * cap);
      if (!np) return -ENOMEM;
      ps->params = np;
      ps->cap = cap;
    }
    char *k = sl__scratch_alloc(ps->a, nlen + 1);
    if (!k) return -ENOMEM;
    memcpy(k, name, nlen);
    k[nlen] = 0;
    ps->params[i].name = k;
    ps->n++;
  }
  return json_to_qv(j, ps->a, &ps->params[i].value, why, whylen);
}

int sl_param_set_add(sl_param_set *ps, const char *name, size_t nlen, const char *json, size_t len, char *why,
                     size_t whylen) {
  json_error_t je;
  json_t *j = json_loadb(json, len, JSON_DECODE_ANY, &je);
  if (!j) return pfail(why, whylen, "%s at column %d", je.text, je.column);
  int rc;
  if (!name) {
    if (!json_is_object(j)) {
      json_decref(j);
      return pfail(why, whylen, "parameters must be a JSON object");
    }
    const char *key;
    json_t *v;
    rc = 0;
    json_object_foreach(j, key, v) {
      if ((rc = put_param(ps, key, strlen(key), v, why, whylen))) break;
    }
  } else {
    rc = put_param(ps, name, nlen, j, why, whylen);
  }
  /* strings point into j: it lives as long as the set */
  json_t **docs = rc ? NULL : realloc(ps->docs, sizeof *docs * (ps->ndocs + 1));
  if (!docs) {
    json_decref(j);
    return rc ? rc : -ENOMEM;
  }
  ps->docs = docs;
  ps->docs[ps->ndocs++] = j;
  return 0;
}
