/*
 * Export as a cypher-shell script (`shiplog export STORE --cypher`,
 * spec/cli.md), in the shape apoc.export.cypher.all writes with format
 * "cypher-shell" and no optimizations:
 *
 *   :begin
 *   CREATE CONSTRAINT UNIQUE_IMPORT_NAME FOR (node:`UNIQUE IMPORT LABEL`)
 *     REQUIRE (node.`UNIQUE IMPORT ID`) IS UNIQUE;                   (one line)
 *   :commit
 *   CALL db.awaitIndexes(300);
 *   :begin
 *   CREATE (:`Person`:`UNIQUE IMPORT LABEL` {`name`:"Ann", `UNIQUE IMPORT ID`:1});
 *   ...                                          (batch_size statements)
 *   :commit
 *   :begin
 *   MATCH (n1:`UNIQUE IMPORT LABEL`{`UNIQUE IMPORT ID`:1}), (n2:`UNIQUE IMPORT LABEL`{`UNIQUE IMPORT ID`:2})
 *     CREATE (n1)-[r:`KNOWS` {`since`:2019}]->(n2);         (one line in the script)
 *   :commit
 *   :begin
 *   MATCH (n:`UNIQUE IMPORT LABEL`) WITH n LIMIT 20000 REMOVE n:`UNIQUE IMPORT LABEL` REMOVE n.`UNIQUE IMPORT ID`;
 *   :commit                                      (once per batch of nodes)
 *   :begin
 *   DROP CONSTRAINT UNIQUE_IMPORT_NAME;
 *   :commit
 *
 * Why this shape: Neo4j assigns its own ids, so relationships find their
 * endpoints through the temporary key, and the uniqueness constraint gives
 * that lookup an index; schema changes may not share a transaction with
 * writes, hence the separate batches and the wait for the index.
 *
 * SAFE INLINING. Nothing from the graph reaches the script except as a
 * literal: names in backticks with ` doubled; strings in double quotes with
 * \\ and \" escaped and every control byte as \uXXXX (other UTF-8 raw, which
 * Cypher reads as is); numbers as digits. Doubles use the shortest
 * round-trip form (always with '.' or an exponent, so they stay floats);
 * NaN and +-Infinity have no literal, so they are the float divisions 0.0/0.0
 * and +-1.0/0.0, which Cypher evaluates to exactly those values.
 *
 * WHAT CYPHER CANNOT SAY. There is no byte-array literal: bytes are written
 * as lists of signed integers (Java's byte values), which Neo4j stores as
 * long[]; a warning counts them. A list of byte arrays would be a nested
 * list, which Neo4j cannot store: refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interchange_int.h"
#include "sl_base.h"

#define DEFAULT_BATCH 20000
#define FLUSH_AT (256u << 10)
#define PROGRESS_EVERY 4096
#define IMPORT_LABEL "UNIQUE IMPORT LABEL"
#define IMPORT_KEY "UNIQUE IMPORT ID"

typedef struct cyexp {
  sl_view *v;
  FILE *out;
  const char *name;
  sl__jbuf b;
  uint64_t batch, in_batch;
  uint64_t byte_values;
  uint64_t done, total;
  const sl_cypher_options *opt;
} cyexp;

static void put_name(sl__jbuf *b, const char *s) {
  sl__jbuf_putc(b, '`');
  for (const char *p = s; *p; p++) {
    if (*p == '`') sl__jbuf_putc(b, '`');
    sl__jbuf_putc(b, *p);
  }
  sl__jbuf_putc(b, '`');
}

static void put_string(sl__jbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  sl__jbuf_putc(b, '"');
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\') continue;
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

static void put_scalar(cyexp *x, sl_kind kind, const sl_value *v) {
  sl__jbuf *b = &x->b;
  char tmp[SL_DOUBLE_BUF];
  switch (kind) {
  case SL_BOOL: sl__jbuf_puts(b, v->u.b ? "true" : "false"); break;
  case SL_INT: sl__jbuf_i64(b, v->u.i); break;
  case SL_DOUBLE:
    if (isnan(v->u.d))
      sl__jbuf_puts(b, "0.0/0.0");
    else if (isinf(v->u.d))
      sl__jbuf_puts(b, v->u.d > 0 ? "1.0/0.0" : "-1.0/0.0");
    else
      sl__jbuf_put(b, tmp, sl_double_format(v->u.d, tmp));
    break;
  case SL_STRING: put_string(b, v->u.s, v->len); break;
  case SL_DATE:
  case SL_LOCALTIME:
  case SL_TIME:
  case SL_LOCALDATETIME:
  case SL_DATETIME:
  case SL_DURATION: {
    static const char *const fn[] = {"date", "localtime", "time", "localdatetime", "datetime", "duration"};
    sl__jbuf_puts(b, fn[kind - SL_DATE]);
    sl__jbuf_puts(b, "(\"");
    sl__jbuf_temporal(b, kind, v); /* no quote or backslash in the text */
    sl__jbuf_puts(b, "\")");
    break;
  }
  case SL_POINT:
    sl__jbuf_puts(b, "point(");
    sl__jbuf_point_map(b, v, ", ");
    sl__jbuf_putc(b, ')');
    break;
  default: /* SL_BYTES */
    x->byte_values++;
    sl__jbuf_putc(b, '[');
    for (size_t i = 0; i < v->len; i++) {
      if (i) sl__jbuf_puts(b, ", ");
      sl__jbuf_i64(b, (int64_t)v->u.bytes[i] - (v->u.bytes[i] > 127 ? 256 : 0));
    }
    sl__jbuf_putc(b, ']');
    break;
  }
}

/* {`k`:v, ...} plus the import key (owner's id: 0 is an id too) for a
 * node; nothing for no props. */
static int put_props(cyexp *x, const char *what, uint64_t owner, const sl_prop *props, size_t n, bool key) {
  sl__jbuf *b = &x->b;
  if (!n && !key) return 0;
  sl__jbuf_puts(b, " {");
  for (size_t i = 0; i < n; i++) {
    const sl_value *v = &props[i].value;
    if ((key && !strcmp(props[i].key, IMPORT_KEY)) || (v->kind == SL_LIST && v->elem_kind == SL_BYTES && v->len)) {
      sl_diag_error("%s: %s %" PRIu64 ": property \"%.64s\": %s", x->name, what, owner, props[i].key,
                   v->kind == SL_LIST ? "a list of byte arrays has no Cypher form (Neo4j stores no nested lists)"
                                      : "the key is the script's temporary import key");
      return SL_EINVAL;
    }
    if (i) sl__jbuf_puts(b, ", ");
    put_name(b, props[i].key);
    sl__jbuf_putc(b, ':');
    if (v->kind != SL_LIST) {
      put_scalar(x, v->kind, v);
      continue;
    }
    sl__jbuf_putc(b, '[');
    for (size_t j = 0; j < v->len; j++) {
      if (j) sl__jbuf_puts(b, ", ");
      put_scalar(x, v->elem_kind, &v->u.items[j]);
    }
    sl__jbuf_putc(b, ']');
  }
  if (key) {
    if (n) sl__jbuf_puts(b, ", ");
    sl__jbuf_puts(b, "`" IMPORT_KEY "`:");
    sl__jbuf_u64(b, owner);
  }
  sl__jbuf_putc(b, '}');
  return 0;
}

static int flush(cyexp *x) { return x->b.len >= FLUSH_AT ? sl__jbuf_flush(&x->b, x->out, x->name) : 0; }

/* Open a batch before a statement, close it after batch statements. */
static void begin_stmt(cyexp *x) {
  if (x->in_batch++ == 0) sl__jbuf_puts(&x->b, ":begin\n");
}

static void end_stmt(cyexp *x, bool last) {
  sl__jbuf_puts(&x->b, ";\n");
  if (x->in_batch == x->batch || last) {
    sl__jbuf_puts(&x->b, ":commit\n");
    x->in_batch = 0;
  }
  if (x->opt && x->opt->progress && ++x->done % PROGRESS_EVERY == 0)
    x->opt->progress(x->opt->progress_arg, x->done, x->total);
}

static void import_ref(sl__jbuf *b, const char *var, uint64_t id) {
  sl__jbuf_puts(b, "(");
  sl__jbuf_puts(b, var);
  sl__jbuf_puts(b, ":`" IMPORT_LABEL "`{`" IMPORT_KEY "`:");
  sl__jbuf_u64(b, id);
  sl__jbuf_puts(b, "})");
}

static int write_nodes(cyexp *x, const sl__idvec *ids) {
  int rc;
  for (size_t i = 0; i < ids->n; i++) {
    sl_node n;
    if ((rc = sl_view_node(x->v, ids->v[i], &n))) {
      sl_diag_error("%s: node %" PRIu64 ": %s", x->name, ids->v[i], sl_strerror(rc));
      return rc;
    }
    if (n.id > INT64_MAX) {
      sl_diag_error("%s: node %" PRIu64 ": the id is beyond Cypher's integers", x->name, n.id);
      return SL_EINVAL;
    }
    begin_stmt(x);
    sl__jbuf_puts(&x->b, "CREATE (");
    for (size_t l = 0; l < n.nlabels; l++) {
      if (!strcmp(n.labels[l], IMPORT_LABEL)) {
        sl_diag_error("%s: node %" PRIu64 ": the label is the script's temporary import label", x->name, n.id);
        return SL_EINVAL;
      }
      sl__jbuf_putc(&x->b, ':');
      put_name(&x->b, n.labels[l]);
    }
    sl__jbuf_puts(&x->b, ":`" IMPORT_LABEL "`");
    if ((rc = put_props(x, "node", n.id, n.props, n.nprops, true))) return rc;
    sl__jbuf_putc(&x->b, ')');
    end_stmt(x, i + 1 == ids->n);
    if ((rc = flush(x))) return rc;
  }
  return 0;
}

static int write_rels(cyexp *x, const sl__idvec *ids) {
  int rc;
  for (size_t i = 0; i < ids->n; i++) {
    sl_rel r;
    if ((rc = sl_view_rel(x->v, ids->v[i], &r))) {
      sl_diag_error("%s: relationship %" PRIu64 ": %s", x->name, ids->v[i], sl_strerror(rc));
      return rc;
    }
    begin_stmt(x);
    sl__jbuf_puts(&x->b, "MATCH ");
    import_ref(&x->b, "n1", r.start);
    sl__jbuf_puts(&x->b, ", ");
    import_ref(&x->b, "n2", r.end);
    sl__jbuf_puts(&x->b, " CREATE (n1)-[r:");
    put_name(&x->b, r.type);
    if ((rc = put_props(x, "relationship", r.id, r.props, r.nprops, false))) return rc;
    sl__jbuf_puts(&x->b, "]->(n2)");
    end_stmt(x, i + 1 == ids->n);
    if ((rc = flush(x))) return rc;
  }
  return 0;
}

int sl_export_cypher(sl_view *v, FILE *out, const char *name, const sl_cypher_options *opt) {
  cyexp x = {.v = v, .out = out, .name = name, .opt = opt};
  sl__idvec nodes = {0}, rels = {0};
  int rc;

  x.batch = opt && opt->batch_size ? opt->batch_size : DEFAULT_BATCH;
  if ((rc = sl_view_all_nodes(v, sl__idvec_push, &nodes)) || (rc = sl_view_all_rels(v, sl__idvec_push, &rels))) {
    sl_diag_error("%s: listing the graph: %s", name, sl_strerror(rc));
    goto fail;
  }
  x.total = nodes.n + rels.n;
  sl__jbuf_puts(&x.b, ":begin\nCREATE CONSTRAINT UNIQUE_IMPORT_NAME FOR (node:`" IMPORT_LABEL
                      "`) REQUIRE (node.`" IMPORT_KEY "`) IS UNIQUE;\n:commit\nCALL db.awaitIndexes(300);\n");
  if ((rc = write_nodes(&x, &nodes)) || (rc = write_rels(&x, &rels))) goto fail;
  for (uint64_t left = nodes.n; left; left -= SL_MIN(left, x.batch)) {
    sl__jbuf_puts(&x.b, ":begin\nMATCH (n:`" IMPORT_LABEL "`) WITH n LIMIT ");
    sl__jbuf_u64(&x.b, x.batch);
    sl__jbuf_puts(&x.b, " REMOVE n:`" IMPORT_LABEL "` REMOVE n.`" IMPORT_KEY "`;\n:commit\n");
    if ((rc = flush(&x))) goto fail;
  }
  sl__jbuf_puts(&x.b, ":begin\nDROP CONSTRAINT UNIQUE_IMPORT_NAME;\n:commit\n");
  if ((rc = sl__jbuf_flush(&x.b, out, name))) goto fail;
  if (fflush(out) != 0) {
    rc = errno ? -errno : -EIO;
    sl_diag_error("%s: write failed: %s", name, sl_strerror(rc));
    goto fail;
  }
  if (x.byte_values)
    sl_diag_warn("%s: %" PRIu64 " byte arrays written as lists of integers (Cypher has no byte-array literal)", name,
                x.byte_values);
  if (opt && opt->progress) opt->progress(opt->progress_arg, x.done, x.total);
fail:
  free(nodes.v);
  free(rels.v);
  sl__jbuf_free(&x.b);
  return rc;
}
