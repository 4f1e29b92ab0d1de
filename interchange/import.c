/*
 * Import of JSON Lines graphs (the canonical export, spec/export.md, or the
 * output of APOC's apoc.export.json.all) into a new store.
 *
 * INPUT. One object per line with "type" "node" or "relationship". Nodes:
 * "id", "labels" (any order: the store sorts them), "properties".
 * Relationships: "id", "label" (the type, APOC's name for it),
 * "start":{"id":..}, "end":{"id":..}, "properties". Other keys are ignored,
 * as are the labels APOC copies into start/end. Ids are strings (as APOC and
 * export write them) or JSON integers (older APOC). All node lines come
 * before the first relationship line, as both writers emit them. Lines of
 * type "index" and "constraint" (schema_text.c) create the rule in a
 * transaction of its own, after the data read so far is committed: a
 * constraint the imported data violates fails the import.
 *
 * IDS (interchange.h states the rule): the first line of each kind decides
 * between keeping the file's ids (decimal integers: canonical exports and
 * APOC's, which count from 0, so export | import | export is the identity
 * and a Neo4j graph keeps its ids) and assigning new ones in input order
 * (element ids such as "4:ab..:0"). When assigning, an sl__idmap maps each
 * node's id text to its new id, for the relationships' endpoints;
 * relationship id texts go into a second map only to refuse duplicates.
 *
 * ALL OR NOTHING. Ops go through an sl__sink (transactions of ops_per_tx);
 * at the first bad line the sink aborts and removes the store, so a failed
 * import leaves nothing behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "interchange_int.h"
#include "sl_base.h"

#define DEFAULT_OPS_PER_TX 10000
#define PROGRESS_LINES 4096

/* ---- the importer ----------------------------------------------------------------- */
typedef enum id_mode { IDS_UNDECIDED, IDS_KEEP, IDS_ASSIGN } id_mode;

typedef struct importer {
  const char *name;
  uint64_t lineno;
  sl__sink sink;
  id_mode node_mode, rel_mode;
  sl__idmap nodes, rels;
  bool seen_rel;
  sl__scratch *arena; /* this line's values */
  sl_import_result res;
  char why[512];
} importer;

static int why(importer *im, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why(importer *im, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(im->why, sizeof im->why, fmt, ap);
  va_end(ap);
  return rc;
}

/* An id as its text (key) and, when it is a decimal integer >= 0 in
 * canonical spelling (no sign, no leading zero) below SL_ID_NEW, its value
 * (*num; SL_ID_NEW otherwise). */
typedef struct id_text {
  char buf[24];
  const char *key;
  size_t len;
  uint64_t num;
} id_text;

static int read_id(importer *im, json_t *j, const char *what, id_text *t) {
  t->num = SL_ID_NEW;
  if (json_is_integer(j)) {
    json_int_t v = json_integer_value(j);
    t->len = (size_t)snprintf(t->buf, sizeof t->buf, "%" PRId64, (int64_t)v);
    t->key = t->buf;
    if (v >= 0) t->num = (uint64_t)v;
    return 0;
  }
  if (!json_is_string(j)) return why(im, SL_EINVAL, "%s must be a string or an integer", what);
  t->key = json_string_value(j);
  t->len = json_string_length(j);
  if (t->len == 0 || t->len > 20 || (t->key[0] == '0' && t->len > 1)) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < t->len; i++) {
    unsigned d = (unsigned char)t->key[i] - '0';
    if (d > 9 || v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  t->num = v; /* UINT64_MAX stays SL_ID_NEW: no id */
  return 0;
}

static int ensure_tx(importer *im, sl_tx **tx) {
  int rc = sl__sink_tx(&im->sink, tx);
  if (rc) why(im, rc, "cannot begin a transaction: %s", sl_strerror(rc));
  return rc;
}

static int op_done(importer *im) {
  int rc = sl__sink_op_done(&im->sink);
  if (rc) why(im, rc, "commit: %s", sl_strerror(rc));
  return rc;
}

static int get_props(importer *im, json_t *root, sl_prop **props, size_t *n) {
  json_t *j = json_object_get(root, "properties");
  *props = NULL;
  *n = 0;
  if (!j) return 0;
  char reason[256];
  int rc = sl__json_props(j, im->arena, props, n, reason, sizeof reason);
  if (rc == SL_EINVAL) return why(im, rc, "properties: %s", reason);
  return rc;
}

static int decide(importer *im, id_mode *mode, const id_text *t, const char *kind) {
  if (*mode == IDS_UNDECIDED) *mode = t->num != SL_ID_NEW ? IDS_KEEP : IDS_ASSIGN;
  if (*mode == IDS_KEEP && t->num == SL_ID_NEW)
    return why(im, SL_EINVAL,
               "%s id \"%.64s\" is not a decimal integer id, as the first %s's id was (ids are then kept)",
               kind, t->key, kind);
  return 0;
}

static int import_node(importer *im, json_t *root) {
  id_text t;
  sl_prop *props;
  size_t nprops, nlabels = 0;
  int rc;

  if (im->seen_rel) return why(im, SL_EINVAL, "node line after relationship lines (nodes come first)");
  json_t *jid = json_object_get(root, "id");
  if (!jid) return why(im, SL_EINVAL, "node without \"id\"");
  if ((rc = read_id(im, jid, "node id", &t)) || (rc = decide(im, &im->node_mode, &t, "node"))) return rc;

  json_t *jl = json_object_get(root, "labels");
  if (jl && !json_is_array(jl)) return why(im, SL_EINVAL, "\"labels\" must be an array of strings");
  const char **labels = sl__scratch_alloc(im->arena, (json_array_size(jl) + 1) * sizeof *labels);
  if (!labels) return -ENOMEM;
  for (; nlabels < json_array_size(jl); nlabels++) {
    char reason[256];
    if (sl__json_name(json_array_get(jl, nlabels), &labels[nlabels], reason, sizeof reason))
      return why(im, SL_EINVAL, "label %zu: %s", nlabels + 1, reason);
  }
  if ((rc = get_props(im, root, &props, &nprops))) return rc;

  sl__idslot *slot = NULL;
  if (im->node_mode == IDS_ASSIGN) {
    if ((rc = sl__idmap_lookup(&im->nodes, t.key, t.len, &slot))) return rc;
    if (slot->key) return why(im, SL_EEXIST, "node id \"%.64s\" appears twice", t.key);
  }
  uint64_t id;
  sl_tx *tx;
  if ((rc = ensure_tx(im, &tx))) return rc;
  rc = sl_tx_create_node(tx, im->node_mode == IDS_KEEP ? t.num : SL_ID_NEW, labels, nlabels, props, nprops, &id);
  if (rc == SL_EEXIST) return why(im, rc, "node id %" PRIu64 " appears twice", t.num);
  if (rc) return why(im, rc, "node \"%.64s\": %s", t.key, sl_tx_error(tx) ? sl_tx_error(tx) : sl_strerror(rc));
  if (slot && (rc = sl__idmap_insert(&im->nodes, slot, t.key, t.len, id))) return rc;
  im->res.nodes++;
  return op_done(im);
}

/* The new id of the node that start / end names. */
static int endpoint(importer *im, json_t *root, const char *field, uint64_t *out) {
  json_t *e = json_object_get(root, field);
  json_t *jid = json_is_object(e) ? json_object_get(e, "id") : NULL;
  if (!jid) return why(im, SL_EINVAL, "relationship without \"%s\":{\"id\":...}", field);
  id_text t;
  char what[16];
  snprintf(what, sizeof what, "%s.id", field);
  int rc = read_id(im, jid, what, &t);
  if (rc) return rc;
  if (im->node_mode == IDS_KEEP && t.num != SL_ID_NEW) {
    *out = t.num;
    return 0;
  }
  sl__idslot *slot = NULL;
  if (im->node_mode == IDS_ASSIGN && (rc = sl__idmap_lookup(&im->nodes, t.key, t.len, &slot))) return rc;
  if (!slot || !slot->key) return why(im, SL_ENOTFOUND, "%s node \"%.64s\" is not in the file", field, t.key);
  *out = slot->val;
  return 0;
}

static int import_rel(importer *im, json_t *root) {
  id_text t;
  const char *type;
  uint64_t start, end, id;
  sl_prop *props;
  size_t nprops;
  char reason[256];
  int rc;

  im->seen_rel = true;
  json_t *jid = json_object_get(root, "id");
  if (!jid) return why(im, SL_EINVAL, "relationship without \"id\"");
  if ((rc = read_id(im, jid, "relationship id", &t)) || (rc = decide(im, &im->rel_mode, &t, "relationship")))
    return rc;
  json_t *jt = json_object_get(root, "label");
  if (!jt) return why(im, SL_EINVAL, "relationship without \"label\" (its type)");
  if (sl__json_name(jt, &type, reason, sizeof reason)) return why(im, SL_EINVAL, "\"label\": %s", reason);
  if ((rc = endpoint(im, root, "start", &start)) || (rc = endpoint(im, root, "end", &end)) ||
      (rc = get_props(im, root, &props, &nprops)))
    return rc;

  sl__idslot *slot = NULL;
  if (im->rel_mode == IDS_ASSIGN) {
    if ((rc = sl__idmap_lookup(&im->rels, t.key, t.len, &slot))) return rc;
    if (slot->key) return why(im, SL_EEXIST, "relationship id \"%.64s\" appears twice", t.key);
  }
  sl_tx *tx;
  if ((rc = ensure_tx(im, &tx))) return rc;
  rc = sl_tx_create_rel(tx, im->rel_mode == IDS_KEEP ? t.num : SL_ID_NEW, type, start, end, props, nprops, &id);
  if (rc == SL_EEXIST) return why(im, rc, "relationship id %" PRIu64 " appears twice", t.num);
  if (rc) return why(im, rc, "relationship \"%.64s\": %s", t.key, sl_tx_error(tx) ? sl_tx_error(tx) : sl_strerror(rc));
  if (slot && (rc = sl__idmap_insert(&im->rels, slot, t.key, t.len, id))) return rc;
  im->res.rels++;
  return op_done(im);
}

/* An "index" or "constraint" line: its own transaction, after the pending ops. */
static int import_schema(importer *im, json_t *root, bool index) {
  const char *what = index ? "index" : "constraint";
  json_t *jn = json_object_get(root, "name"), *jk = json_object_get(root, "kind"),
         *je = json_object_get(root, "entity"), *jl = json_object_get(root, "label"),
         *jp = json_object_get(root, "properties");
  const char *keys[SL_SCHEMA_KEYS_MAX], *ent = json_is_string(je) ? json_string_value(je) : "";
  sl_schema_rule r = {.name = json_string_value(jn), .token = json_string_value(jl), .keys = keys};
  sl_tx *tx;
  int rc;
  if (jn && !json_is_string(jn)) return why(im, SL_EINVAL, "%s: \"name\" must be a string", what);
  if (!strcmp(ent, "relationship")) r.rel = true;
  else if (strcmp(ent, "node")) return why(im, SL_EINVAL, "%s: \"entity\" must be \"node\" or \"relationship\"", what);
  if (!r.token) return why(im, SL_EINVAL, "%s: \"label\" (the label or type) must be a string", what);
  if (!json_is_string(jk) || sl__schema_type_parse(json_string_value(jk), index, r.rel, &r.kind))
    return why(im, SL_EINVAL, "%s: \"kind\" must be %s", what,
               index ? "\"RANGE\"" : r.rel ? "RELATIONSHIP_UNIQUENESS, RELATIONSHIP_KEY or RELATIONSHIP_PROPERTY_EXISTENCE"
                                      : "UNIQUENESS, NODE_KEY or NODE_PROPERTY_EXISTENCE");
  if (!json_is_array(jp) || !json_array_size(jp) || json_array_size(jp) > SL_SCHEMA_KEYS_MAX)
    return why(im, SL_EINVAL, "%s: \"properties\" must be an array of 1..%d keys", what, SL_SCHEMA_KEYS_MAX);
  for (r.nkeys = 0; r.nkeys < json_array_size(jp); r.nkeys++)
    if (!(keys[r.nkeys] = json_string_value(json_array_get(jp, r.nkeys))))
      return why(im, SL_EINVAL, "%s: \"properties\" must be strings", what);
  if (im->sink.tx) { /* the data so far, then the rule alone */
    im->sink.ops_in_tx = im->sink.ops_per_tx - 1;
    if ((rc = op_done(im))) return rc;
  }
  if ((rc = ensure_tx(im, &tx))) return rc;
  rc = index ? sl_tx_create_index(tx, &r, NULL) : sl_tx_create_constraint(tx, &r, NULL);
  if (rc)
    return why(im, rc, "%s%s%s: %s", what, r.name ? " " : "", r.name ? r.name : "",
               sl_tx_error(tx) ? sl_tx_error(tx) : sl_strerror(rc));
  im->sink.ops_in_tx = im->sink.ops_per_tx - 1;
  return op_done(im);
}

static int import_line(importer *im, const char *line, size_t len) {
  json_error_t jerr;
  json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
  if (!root) return why(im, SL_EINVAL, "column %d: %s", jerr.column, jerr.text);
  sl__scratch_reset(im->arena);
  int rc;
  json_t *type = json_object_get(root, "type");
  const char *ts = json_is_string(type) ? json_string_value(type) : "";
  if (!strcmp(ts, "node"))
    rc = import_node(im, root);
  else if (!strcmp(ts, "relationship"))
    rc = import_rel(im, root);
  else if (!strcmp(ts, "index") || !strcmp(ts, "constraint"))
    rc = import_schema(im, root, ts[0] == 'i');
  else
    rc = why(im, SL_EINVAL, "expected an object with \"type\" \"node\", \"relationship\", \"index\" or \"constraint\"");
  if (rc == -ENOMEM && !im->why[0]) why(im, rc, "%s", sl_strerror(rc));
  json_decref(root);
  return rc;
}

int sl_import_jsonl(const char *path, const char *into_dir, const sl_import_options *opt, sl_import_result *res) {
  importer im = {.name = strcmp(path, "-") ? path : "<stdin>"};
  struct stat sb;
  FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
  char *line = NULL;
  size_t cap = 0;
  uint64_t size = 0, done = 0;
  ssize_t len;
  int rc;

  if (!in) {
    rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto fail;
  }
  if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) size = (uint64_t)sb.st_size;
  if (!(im.arena = sl__scratch_new())) {
    rc = -ENOMEM;
    goto fail;
  }
  if ((rc = sl__sink_open(&im.sink, into_dir, opt ? opt->store : NULL,
                          opt && opt->ops_per_tx ? opt->ops_per_tx : DEFAULT_OPS_PER_TX)))
    goto fail;

  while ((len = getline(&line, &cap, in)) >= 0) {
    im.lineno++;
    done += (uint64_t)len;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    size_t i = 0;
    while (i < (size_t)len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i == (size_t)len) continue;
    im.why[0] = 0;
    if ((rc = import_line(&im, line, (size_t)len))) {
      sl_diag_error("%s:%" PRIu64 ": %s", im.name, im.lineno, im.why);
      goto fail;
    }
    if (opt && opt->progress && im.lineno % PROGRESS_LINES == 0) opt->progress(opt->progress_arg, done, size);
  }
  if (ferror(in)) {
    rc = errno ? -errno : -EIO;
    sl_diag_error("%s:%" PRIu64 ": read failed: %s", im.name, im.lineno + 1, sl_strerror(rc));
    goto fail;
  }
  if (opt && opt->progress) opt->progress(opt->progress_arg, done, size);
  rc = 0;
fail:
  rc = sl__sink_close(&im.sink, rc);
  if (in && in != stdin) fclose(in);
  free(line);
  sl__scratch_free(im.arena);
  sl__idmap_free(&im.nodes);
  sl__idmap_free(&im.rels);
  if (res) *res = im.res;
  return rc;
}
