/*
 * Mutation files (spec/mutations.md): parse a line with jansson, check its
 * shape, and apply each op to a transaction at once through the store's
 * write calls, which validate as they go (so "names a missing entity" is the
 * store's SL_ENOTFOUND, reported with the op that caused it).
 *
 * STRICTNESS. Inside an op every field must be one the op knows: a typo such
 * as "lables" is refused rather than silently creating an unlabelled node.
 * At the top level only "ops" and "ts" mean anything and other fields are
 * ignored, so that `shiplog log --json` lines (which also carry "txid" and
 * "commit_time_us") can be executed again.
 *
 * REASONS for a refused op are "op N (NAME): " and then what the store found
 * (sl_tx_error: "node 17 does not exist") or what the parser refused.
 *
 * TRANSACTIONS. sl_mutations_exec gives each non-blank line its own
 * transaction: begin, apply, commit (durable) or abort. A refused line
 * leaves the store as it was; a commit error that is not about the line
 * (an I/O failure, the log's FAILED state) ends the run, since no later line
 * could commit either. Ids the store assigned are printed only once their
 * transaction has committed.
 *
 * MEMORY. A line is at most SL_MUTATION_LINE_MAX bytes: a longer one is
 * refused and the rest of it read past, never held. Nor is a line parsed
 * whole: jansson builds about 1 KB of tree per op (a 57 MB line of 1M ops
 * took 1.1 GB). scan_value() finds where a JSON value ends (strings and
 * nesting, nothing decoded); jansson parses the line's object with its
 * "ops" array cut out (so "ts", duplicates and stray fields are judged as
 * before), then each op alone, which is applied and freed before the next.
 * The store packs each op as it is applied (store.h), so a line costs the
 * line, one op's tree and the transaction's packed bytes (at most
 * SL_TXN_MAX). A line the scanner cannot walk is handed to jansson whole
 * for its diagnosis (it stops at the error).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "interchange_int.h"
#include "sl_base.h"

typedef enum op_kind {
  OP_CREATE_NODE,
  OP_DELETE_NODE,
  OP_ADD_LABEL,
  OP_REMOVE_LABEL,
  OP_SET_NODE_PROP,
  OP_REMOVE_NODE_PROP,
  OP_CREATE_REL,
  OP_DELETE_REL,
  OP_SET_REL_PROP,
  OP_REMOVE_REL_PROP
} op_kind;

static const struct op_spec {
  const char *name;
  op_kind kind;
  const char *fields[6]; /* besides "op"; NULL-terminated */
} op_specs[] = {
    {"create_node", OP_CREATE_NODE, {"id", "labels", "props"}},
    {"delete_node", OP_DELETE_NODE, {"id", "detach"}},
    {"add_label", OP_ADD_LABEL, {"id", "label"}},
    {"remove_label", OP_REMOVE_LABEL, {"id", "label"}},
    {"set_node_prop", OP_SET_NODE_PROP, {"id", "key", "value"}},
    {"remove_node_prop", OP_REMOVE_NODE_PROP, {"id", "key"}},
    {"create_rel", OP_CREATE_REL, {"id", "type", "start", "end", "props"}},
    {"delete_rel", OP_DELETE_REL, {"id"}},
    {"set_rel_prop", OP_SET_REL_PROP, {"id", "key", "value"}},
    {"remove_rel_prop", OP_REMOVE_REL_PROP, {"id", "key"}},
};

/* Per-op parsing context: the reason buffer gets "op N (NAME): " first. */
typedef struct op_ctx {
  sl_mutation_line *ml;
  size_t index;
  const char *name;
} op_ctx;

static int op_fail(const op_ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int op_fail(const op_ctx *c, int rc, const char *fmt, ...) {
  int n = c->name ? snprintf(c->ml->why, sizeof c->ml->why, "op %zu (%s): ", c->index + 1, c->name)
                  : snprintf(c->ml->why, sizeof c->ml->why, "op %zu: ", c->index + 1);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->ml->why + n, sizeof c->ml->why - (size_t)n, fmt, ap);
  va_end(ap);
  return rc;
}

/* An id field: a JSON integer >= 0 (0 is an id like any other). *out =
 * SL_ID_NEW (the store assigns one) when optional and absent. */
static int get_id(const op_ctx *c, json_t *op, const char *field, bool required, uint64_t *out) {
  json_t *j = json_object_get(op, field);
  *out = SL_ID_NEW;
  if (!j) return required ? op_fail(c, SL_EINVAL, "missing \"%s\"", field) : 0;
  if (!json_is_integer(j) || json_integer_value(j) < 0)
    return op_fail(c, SL_EINVAL, "\"%s\" must be an integer id >= 0", field);
  *out = (uint64_t)json_integer_value(j);
  return 0;
}

static int get_name(const op_ctx *c, json_t *op, const char *field, const char **out) {
  json_t *j = json_object_get(op, field);
  if (!j) return op_fail(c, SL_EINVAL, "missing \"%s\"", field);
  char reason[256];
  if (sl__json_name(j, out, reason, sizeof reason)) return op_fail(c, SL_EINVAL, "\"%s\": %s", field, reason);
  return 0;
}

static int get_props(const op_ctx *c, json_t *op, sl_prop **props, size_t *n) {
  json_t *j = json_object_get(op, "props");
  *props = NULL;
  *n = 0;
  if (!j) return 0;
  char reason[256];
  int rc = sl__json_props(j, c->ml->arena, props, n, reason, sizeof reason);
  if (rc == SL_EINVAL) return op_fail(c, rc, "props: %s", reason);
  return rc;
}

static int get_labels(const op_ctx *c, json_t *op, const char ***labels, size_t *n) {
  json_t *j = json_object_get(op, "labels");
  *labels = NULL;
  *n = 0;
  if (!j) return op_fail(c, SL_EINVAL, "missing \"labels\" (may be [])");
  if (!json_is_array(j)) return op_fail(c, SL_EINVAL, "\"labels\" must be an array of strings");
  size_t count = json_array_size(j);
  const char **v = sl__scratch_alloc(c->ml->arena, (count + 1) * sizeof *v);
  if (!v) return -ENOMEM;
  for (size_t i = 0; i < count; i++) {
    char reason[256];
    if (sl__json_name(json_array_get(j, i), &v[i], reason, sizeof reason))
      return op_fail(c, SL_EINVAL, "label %zu: %s", i + 1, reason);
  }
  *labels = v;
  *n = count;
  return 0;
}

static int note_assigned(sl_mutation_line *ml, bool rel, uint64_t id) {
  if (ml->nassigned == ml->cap) {
    size_t cap = ml->cap ? ml->cap * 2 : 8;
    sl_assigned_id *a = realloc(ml->assigned, cap * sizeof *a);
    if (!a) return -ENOMEM;
    ml->assigned = a;
    ml->cap = cap;
  }
  ml->assigned[ml->nassigned++] = (sl_assigned_id){.rel = rel, .id = id};
  return 0;
}

static int apply_op(sl_tx *tx, json_t *op, op_ctx *c) {
  if (!json_is_object(op)) return op_fail(c, SL_EINVAL, "an op must be an object");
  json_t *jname = json_object_get(op, "op");
  if (!json_is_string(jname)) return op_fail(c, SL_EINVAL, "missing \"op\"");
  const struct op_spec *spec = NULL;
  for (size_t i = 0; i < SL_ARRAY_LEN(op_specs); i++)
    if (!strcmp(op_specs[i].name, json_string_value(jname))) spec = &op_specs[i];
  if (!spec) return op_fail(c, SL_EINVAL, "unknown op \"%.64s\"", json_string_value(jname));
  c->name = spec->name;

  const char *key;
  json_t *val;
  json_object_foreach(op, key, val) {
    bool known = !strcmp(key, "op");
    for (const char *const *f = spec->fields; *f && !known; f++) known = !strcmp(key, *f);
    if (!known) return op_fail(c, SL_EINVAL, "unknown field \"%.64s\"", key);
  }

  uint64_t id = SL_ID_NEW, start, end, got;
  const char *name;
  const char **labels;
  size_t n;
  sl_prop *props;
  sl_value value;
  int rc = 0;
  char reason[256];
  bool rel = false;

  switch (spec->kind) {
  case OP_CREATE_NODE:
    if ((rc = get_id(c, op, "id", false, &id)) || (rc = get_labels(c, op, &labels, &n)) ||
        (rc = get_props(c, op, &props, &got)))
      return rc;
    rc = sl_tx_create_node(tx, id, labels, n, props, got, &got);
    if (!rc && id == SL_ID_NEW) rc = note_assigned(c->ml, false, got);
    break;
  case OP_CREATE_REL:
    if ((rc = get_id(c, op, "id", false, &id)) || (rc = get_name(c, op, "type", &name)) ||
        (rc = get_id(c, op, "start", true, &start)) || (rc = get_id(c, op, "end", true, &end)) ||
        (rc = get_props(c, op, &props, &n)))
      return rc;
    rc = sl_tx_create_rel(tx, id, name, start, end, props, n, &got);
    if (!rc && id == SL_ID_NEW) rc = note_assigned(c->ml, true, got);
    break;
  case OP_DELETE_NODE: {
    if ((rc = get_id(c, op, "id", true, &id))) return rc;
    json_t *d = json_object_get(op, "detach");
    if (d && !json_is_boolean(d)) return op_fail(c, SL_EINVAL, "\"detach\" must be true or false");
    rc = sl_tx_delete_node(tx, id, d && json_is_true(d));
    break;
  }
  case OP_ADD_LABEL:
  case OP_REMOVE_LABEL:
    if ((rc = get_id(c, op, "id", true, &id)) || (rc = get_name(c, op, "label", &name))) return rc;
    rc = spec->kind == OP_ADD_LABEL ? sl_tx_add_label(tx, id, name) : sl_tx_remove_label(tx, id, name);
    break;
  case OP_SET_REL_PROP:
    rel = true;
    /* fall through */
  case OP_SET_NODE_PROP: {
    if ((rc = get_id(c, op, "id", true, &id)) || (rc = get_name(c, op, "key", &name))) return rc;
    json_t *v = json_object_get(op, "value");
    if (!v) return op_fail(c, SL_EINVAL, "missing \"value\" (null removes)");
    rc = sl__json_value(v, c->ml->arena, true, &value, reason, sizeof reason);
    if (rc == SL_EINVAL) return op_fail(c, rc, "value: %s", reason);
    if (rc) return rc;
    rc = rel ? sl_tx_set_rel_prop(tx, id, name, &value) : sl_tx_set_node_prop(tx, id, name, &value);
    break;
  }
  case OP_REMOVE_REL_PROP:
    rel = true;
    /* fall through */
  case OP_REMOVE_NODE_PROP:
    if ((rc = get_id(c, op, "id", true, &id)) || (rc = get_name(c, op, "key", &name))) return rc;
    rc = rel ? sl_tx_remove_rel_prop(tx, id, name) : sl_tx_remove_node_prop(tx, id, name);
    break;
  case OP_DELETE_REL:
    if ((rc = get_id(c, op, "id", true, &id))) return rc;
    rc = sl_tx_delete_rel(tx, id);
    break;
  }
  if (rc && sl_tx_error(tx)) return op_fail(c, rc, "%s", sl_tx_error(tx)); /* the store's own account */
  if (rc) return op_fail(c, rc, "%s", sl_strerror(rc));
  return 0;
}

/* ---- scanning (MEMORY) --------------------------------------------------- */
static size_t skip_ws(const char *s, size_t len, size_t i) {
  while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  return i;
}

/* The end (exclusive) of the JSON value starting at s[i], or 0 when it is
 * not well nested (a value never ends at 0). Only the structure is looked
 * at; jansson judges the rest. */
static size_t scan_value(const char *s, size_t len, size_t i) {
  size_t depth = 0;
  if (i >= len) return 0;
  do {
    char c = s[i];
    if (c == '"') {
      for (i++; i < len && s[i] != '"'; i++)
        if (s[i] == '\\') i++;
      if (i >= len) return 0;
      i++;
    } else if (c == '{' || c == '[') {
      depth++;
      i++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return 0;
      depth--;
      i++;
    } else if (depth == 0) { /* a scalar at the top: up to a delimiter */
      while (i < len && !strchr(",]} \t\r\n", s[i])) i++;
      return i;
    } else {
      i++;
    }
  } while (depth && i < len);
  return depth ? 0 : i;
}

/* Where the top-level object's "ops" value lies: 0 and [*a, *b), or -1
 * when the line is not an object the scanner can walk, has no "ops", or
 * spells a key with an escape or "ops" twice (jansson then judges the line
 * whole). */
static int find_ops(const char *s, size_t len, size_t *a, size_t *b) {
  size_t i = skip_ws(s, len, 0);
  bool found = false;
  if (i >= len || s[i] != '{') return -1;
  i = skip_ws(s, len, i + 1);
  for (;;) {
    size_t k = i, ke = scan_value(s, len, k);
    if (!ke || s[k] != '"' || memchr(s + k, '\\', ke - k)) return -1;
    i = skip_ws(s, len, ke);
    if (i >= len || s[i] != ':') return -1;
    size_t v = skip_ws(s, len, i + 1), ve = scan_value(s, len, v);
    if (!ve) return -1;
    if (ke - k == 5 && !memcmp(s + k, "\"ops\"", 5)) {
      if (found) return -1;
      found = true;
      *a = v;
      *b = ve;
    }
    i = skip_ws(s, len, ve);
    if (i < len && s[i] == ',') {
      i = skip_ws(s, len, i + 1);
      continue;
    }
    if (i >= len || s[i] != '}') return -1;
    return found && skip_ws(s, len, i + 1) == len ? 0 : -1;
  }
}

static bool is_blank(const char *line, size_t len) {
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
  return i == len || (i + 1 < len && line[i] == '/' && line[i + 1] == '/');
}

static int set_ts(sl_tx *tx, json_t *ts, sl_mutation_line *ml) {
  uint64_t us;
  if (json_is_integer(ts) && json_integer_value(ts) > 0) {
    us = (uint64_t)json_integer_value(ts);
  } else if (!json_is_string(ts) || sl_time_parse(json_string_value(ts), &us)) {
    snprintf(ml->why, sizeof ml->why, "\"ts\" must be ISO-8601 with a zone or integer µs since the epoch");
    return SL_EINVAL;
  }
  int rc = sl_tx_set_commit_time(tx, us);
  if (rc) {
    char t[32];
    snprintf(ml->why, sizeof ml->why, "\"ts\" %s: %s", sl_time_format(us, t, sizeof t),
             rc == SL_ETIME ? "before the last commit or more than a minute in the future" : sl_strerror(rc));
  }
  return rc;
}

#define JFLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* Apply the ops of the array at line[a..b) one at a time (MEMORY); the
 * scanner has checked its nesting. */
static int apply_ops(sl_tx *tx, const char *line, size_t a, size_t b, sl_mutation_line *ml) {
  size_t i = skip_ws(line, b, a + 1);
  if (line[i] == ']') return 0;
  for (size_t n = 0;; n++) {
    op_ctx c = {.ml = ml, .index = n};
    size_t e = scan_value(line, b, i);
    json_error_t jerr;
    json_t *op = e ? json_loadb(line + i, e - i, JFLAGS | JSON_DECODE_ANY, &jerr) : NULL;
    if (!op) return op_fail(&c, SL_EINVAL, "column %zu: %s", i + (size_t)(e ? jerr.column : 1), e ? jerr.text : "malformed op");
    sl__scratch_reset(ml->arena);
    int rc = apply_op(tx, op, &c);
    json_decref(op);
    if (rc) return rc;
    ml->nops++;
    i = skip_ws(line, b, e);
    if (i >= b || line[i] == ']') return 0;
    if (line[i] != ',') return op_fail(&c, SL_EINVAL, "column %zu: ',' or ']' expected after the op", i + 1);
    i = skip_ws(line, b, i + 1);
  }
}

int sl_mutation_apply(sl_tx *tx, const char *line, size_t len, sl_mutation_line *ml) {
  ml->nassigned = 0;
  ml->nops = 0;
  ml->why[0] = 0;
  if (is_blank(line, len)) return 0;
  if (!ml->arena && !(ml->arena = sl__scratch_new())) return -ENOMEM;
  sl__scratch_reset(ml->arena);

  /* jansson reads the line without its ops array, applied op by op after
   * (MEMORY); a line the scanner cannot walk, whole. */
  size_t a = 0, b = 0, rlen = len;
  char *rest = NULL;
  bool split = find_ops(line, len, &a, &b) == 0 && line[a] == '[';
  if (split) {
    rlen = len - (b - a) + 2;
    if (!(rest = malloc(rlen))) return -ENOMEM;
    memcpy(rest, line, a);
    memcpy(rest + a, "[]", 2);
    memcpy(rest + a + 2, line + b, len - b);
  }
  json_error_t jerr;
  json_t *root = json_loadb(split ? rest : line, rlen, JFLAGS, &jerr);
  free(rest);
  int rc = SL_EINVAL;
  if (!root) {
    /* A column past the cut-out array is that much further on the line. */
    size_t col = (size_t)(jerr.column > 0 ? jerr.column : 0);
    if (split && col > a + 2) col += b - a - 2;
    snprintf(ml->why, sizeof ml->why, "column %zu: %s", col, jerr.text);
    return SL_EINVAL;
  }
  json_t *ops = json_object_get(root, "ops");
  json_t *ts = json_object_get(root, "ts");
  if (!json_is_object(root) || !json_is_array(ops)) {
    snprintf(ml->why, sizeof ml->why, "a line must be an object {\"ops\":[...]}");
    goto fail;
  }
  if (ts && (rc = set_ts(tx, ts, ml))) goto fail;
  if (split) {
    rc = apply_ops(tx, line, a, b, ml);
    goto fail;
  }
  for (size_t i = 0; i < json_array_size(ops); i++) {
    op_ctx c = {.ml = ml, .index = i};
    if ((rc = apply_op(tx, json_array_get(ops, i), &c))) goto fail;
    ml->nops++;
  }
  rc = 0;
fail:
  if (rc == -ENOMEM && !ml->why[0]) snprintf(ml->why, sizeof ml->why, "%s", sl_strerror(rc));
  json_decref(root);
  return rc;
}

void sl_mutation_line_free(sl_mutation_line *ml) {
  free(ml->assigned);
  sl__scratch_free(ml->arena);
  ml->assigned = NULL;
  ml->arena = NULL;
  ml->nassigned = ml->cap = 0;
}

/* Codes that mean "this line is wrong", as opposed to "the store cannot
 * commit any more". */
static bool line_error(int rc) {
  return rc == SL_EINVAL || rc == SL_ENOTFOUND || rc == SL_EEXIST || rc == SL_EHASRELS || rc == SL_ETIME ||
         rc == SL_ETOOBIG || rc == SL_ECONSTRAINT;
}

/* Read one line (without its '\n') into *buf, at most max bytes of it
 * (MEMORY): 1 and *len; 0 at the end of input; 2 when the line is longer,
 * with the rest of it left unread (skip_line); -errno on a read error. */
static int read_line(FILE *in, char **buf, size_t *cap, size_t max, size_t *len) {
  size_t n = 0;
  int c = EOF, rc = 1;
  flockfile(in);
  while ((c = getc_unlocked(in)) != EOF && c != '\n') {
    if (n == max) {
      rc = 2;
      break;
    }
    if (n + 1 >= *cap) {
      size_t ncap = *cap ? SL_MIN(*cap * 2, max + 1) : 4096;
      char *p = realloc(*buf, ncap);
      if (!p) {
        funlockfile(in);
        return -ENOMEM;
      }
      *buf = p;
      *cap = ncap;
    }
    (*buf)[n++] = (char)c;
  }
  funlockfile(in);
  *len = n;
  if (c == EOF && ferror(in)) return errno ? -errno : -EIO;
  return c == EOF && n == 0 && rc == 1 ? 0 : rc;
}

/* Read past the rest of a line, keeping none of it. */
static void skip_line(FILE *in) {
  int c;
  flockfile(in);
  while ((c = getc_unlocked(in)) != EOF && c != '\n') {
  }
  funlockfile(in);
}

int sl_mutations_exec(sl_store *st, FILE *in, const char *name, const sl_exec_options *opt,
                      sl_exec_result *res) {
  sl_exec_result r = {0};
  sl_mutation_line ml = {0};
  char *line = NULL;
  size_t cap = 0, len;
  int rc = 0, first_err = 0, got;
  struct stat sb;
  uint64_t total = opt && opt->progress && fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;

  while ((got = read_line(in, &line, &cap, SL_MUTATION_LINE_MAX, &len)) > 0) {
    r.lines++;
    r.bytes += len + 1;
    if (opt && opt->progress) opt->progress(opt->progress_arg, r.bytes, total);
    if (got == 2) {
      sl_diag_error("%s:%" PRIu64 ": line longer than %u bytes (a transaction may be at most %u bytes)", name,
                   r.lines, SL_MUTATION_LINE_MAX, SL_TXN_MAX);
      r.failed++;
      if (!first_err) first_err = SL_ETOOBIG;
      if (opt && opt->stop_on_error) break;
      skip_line(in);
      continue;
    }
    while (len > 0 && line[len - 1] == '\r') len--;
    if (is_blank(line, (size_t)len)) continue;

    sl_tx *tx;
    if ((rc = sl_tx_begin(st, &tx))) {
      sl_diag_error("%s:%" PRIu64 ": cannot begin a transaction: %s", name, r.lines, sl_strerror(rc));
      goto fail;
    }
    uint64_t txid = 0;
    rc = sl_mutation_apply(tx, line, (size_t)len, &ml);
    if (rc) {
      sl_tx_abort(tx);
    } else if ((rc = sl_tx_commit(tx, &txid))) {
      snprintf(ml.why, sizeof ml.why, "commit: %s", sl_strerror(rc));
    }
    if (rc) {
      sl_diag_error("%s:%" PRIu64 ": %s", name, r.lines, ml.why);
      r.failed++;
      if (!first_err) first_err = rc;
      if (!line_error(rc)) goto fail;
      if (opt && opt->stop_on_error) break;
      continue;
    }
    r.committed++;
    r.ops += ml.nops;
    if (txid) r.last_txid = txid;
    for (size_t i = 0; opt && opt->ids_out && i < ml.nassigned; i++)
      fprintf(opt->ids_out, "%s %" PRIu64 "\n", ml.assigned[i].rel ? "rel" : "node", ml.assigned[i].id);
    /* A program feeding exec through a pipe may wait for its ids. */
    if (opt && opt->ids_out && ml.nassigned) fflush(opt->ids_out);
  }
  if (got < 0) {
    rc = got;
    sl_diag_error("%s:%" PRIu64 ": read failed: %s", name, r.lines + 1, sl_strerror(rc));
    goto fail;
  }
  rc = first_err;
fail:
  free(line);
  sl_mutation_line_free(&ml);
  if (res) *res = r;
  return rc;
}
