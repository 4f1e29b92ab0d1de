/*
 * The canonical export (spec/export.md): every node ascending by id, then
 * every relationship ascending by id, one JSON object per line:
 *
 *   {"type":"node","id":"1","labels":["A","B"],"properties":{...}}
 *   {"type":"relationship","id":"7","label":"KNOWS","start":{"id":"1","labels":[...]},
 *    "end":{"id":"2","labels":[...]},"properties":{...}}
 *
 * Then, only when the store has schema, one line per index or constraint,
 * by name (schema_text.c gives the line).
 *
 * Byte-identical output for equal graphs follows from: the order of lines
 * (ids ascending), the order inside a line (fixed keys, labels and property
 * keys as the store returns them: sorted bytewise), and one spelling per
 * value (interchange.h: shortest round-trip doubles, minimal escaping, one
 * base64 form).
 *
 * ONE SNAPSHOT. Everything is read through the caller's view. A walk over
 * ids may not call other view functions, so the ids are collected first
 * (8 bytes each) and each entity is then read by id. A relationship's
 * properties are rendered into a side buffer before its endpoints' labels
 * are read, because each sl_view_* call invalidates the previous result.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "interchange_int.h"
#include "sl_base.h"

#define FLUSH_AT (256u << 10)
#define PROGRESS_EVERY 4096

static void put_labels(sl__jbuf *b, const char *const *labels, size_t n) {
  sl__jbuf_putc(b, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) sl__jbuf_putc(b, ',');
    sl__jbuf_str(b, labels[i], strlen(labels[i]));
  }
  sl__jbuf_putc(b, ']');
}

/* {"id":"N","labels":[...]} of a relationship's endpoint. */
static int put_endpoint(sl_view *v, sl__jbuf *b, uint64_t rel, uint64_t id) {
  sl_node n;
  int rc = sl_view_node(v, id, &n);
  if (rc) {
    sl_diag_error("export: relationship %" PRIu64 ": endpoint node %" PRIu64 ": %s", rel, id, sl_strerror(rc));
    return rc;
  }
  sl__jbuf_puts(b, "{\"id\":\"");
  sl__jbuf_u64(b, id);
  sl__jbuf_puts(b, "\",\"labels\":");
  put_labels(b, n.labels, n.nlabels);
  sl__jbuf_putc(b, '}');
  return 0;
}

int sl_export_canonical(sl_view *v, FILE *out, const char *name, sl_progress_fn progress, void *progress_arg) {
  sl__idvec ids = {0};
  sl__jbuf b = {0}, props = {0};
  sl_counts counts;
  uint64_t done = 0;
  int rc;

  if ((rc = sl_view_counts(v, &counts))) {
    sl_diag_error("export: reading counts: %s", sl_strerror(rc));
    goto fail;
  }
  uint64_t total = counts.nodes + counts.rels;

  if ((rc = sl_view_all_nodes(v, sl__idvec_push, &ids))) {
    sl_diag_error("export: listing nodes: %s", sl_strerror(rc));
    goto fail;
  }
  for (size_t i = 0; i < ids.n; i++) {
    sl_node n;
    if ((rc = sl_view_node(v, ids.v[i], &n))) {
      sl_diag_error("export: node %" PRIu64 ": %s", ids.v[i], sl_strerror(rc));
      goto fail;
    }
    sl__jbuf_puts(&b, "{\"type\":\"node\",\"id\":\"");
    sl__jbuf_u64(&b, n.id);
    sl__jbuf_puts(&b, "\",\"labels\":");
    put_labels(&b, n.labels, n.nlabels);
    sl__jbuf_puts(&b, ",\"properties\":");
    sl__jbuf_props(&b, n.props, n.nprops);
    sl__jbuf_puts(&b, "}\n");
    if (b.len >= FLUSH_AT && (rc = sl__jbuf_flush(&b, out, name))) goto fail;
    if (progress && ++done % PROGRESS_EVERY == 0) progress(progress_arg, done, total);
  }

  ids.n = 0;
  if ((rc = sl_view_all_rels(v, sl__idvec_push, &ids))) {
    sl_diag_error("export: listing relationships: %s", sl_strerror(rc));
    goto fail;
  }
  for (size_t i = 0; i < ids.n; i++) {
    sl_rel r;
    if ((rc = sl_view_rel(v, ids.v[i], &r))) {
      sl_diag_error("export: relationship %" PRIu64 ": %s", ids.v[i], sl_strerror(rc));
      goto fail;
    }
    uint64_t start = r.start, end = r.end;
    sl__jbuf_puts(&b, "{\"type\":\"relationship\",\"id\":\"");
    sl__jbuf_u64(&b, r.id);
    sl__jbuf_puts(&b, "\",\"label\":");
    sl__jbuf_str(&b, r.type, strlen(r.type));
    props.len = 0;
    sl__jbuf_props(&props, r.props, r.nprops);
    sl__jbuf_puts(&b, ",\"start\":");
    if ((rc = put_endpoint(v, &b, ids.v[i], start))) goto fail;
    sl__jbuf_puts(&b, ",\"end\":");
    if ((rc = put_endpoint(v, &b, ids.v[i], end))) goto fail;
    sl__jbuf_puts(&b, ",\"properties\":");
    if (props.err) b.err = props.err;
    sl__jbuf_put(&b, props.p, props.len);
    sl__jbuf_puts(&b, "}\n");
    if (b.len >= FLUSH_AT && (rc = sl__jbuf_flush(&b, out, name))) goto fail;
    if (progress && ++done % PROGRESS_EVERY == 0) progress(progress_arg, done, total);
  }
  const sl_schema_rule *rules;
  size_t nrules;
  if ((rc = sl_view_schema(v, &rules, &nrules))) {
    sl_diag_error("export: reading the schema: %s", sl_strerror(rc));
    goto fail;
  }
  for (size_t i = 0; i < nrules; i++) sl__jbuf_schema_line(&b, &rules[i]);
  if ((rc = sl__jbuf_flush(&b, out, name))) goto fail;
  if (fflush(out) != 0) {
    rc = errno ? -errno : -EIO;
    sl_diag_error("%s: write failed: %s", name, sl_strerror(rc));
    goto fail;
  }
  if (progress) progress(progress_arg, done, total);
fail:
  free(ids.v);
  sl__jbuf_free(&b);
  sl__jbuf_free(&props);
  return rc;
}
