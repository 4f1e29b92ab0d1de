/*
 * Schema statements (spec/query.md, "Schema"), each a statement of its own,
 * parsed from the lexer's tokens here rather than in parse.c's clause
 * grammar, and run by one operator (the create or drop on the first pull,
 * or SHOW's rows):
 *
 *   CREATE [RANGE] INDEX [name] [IF NOT EXISTS] FOR (n:L) ON (n.p[, n.q...])
 *   CREATE [RANGE] INDEX [name] [IF NOT EXISTS] FOR ()-[r:T]-() ON (r.p, ...)
 *   CREATE INDEX ON :L(p[, q])                                  (Neo4j 3.x/4.x)
 *   CREATE CONSTRAINT [name] [IF NOT EXISTS] FOR (n:L) REQUIRE n.p IS UNIQUE
 *     ... REQUIRE (n.p, n.q) IS NODE KEY | IS KEY | IS NOT NULL, and for
 *     FOR ()-[r:T]-(): IS UNIQUE | IS RELATIONSHIP KEY | IS KEY | IS NOT NULL
 *   CREATE CONSTRAINT [name] [IF NOT EXISTS] ON (n:L) ASSERT n.p IS UNIQUE
 *     ... ASSERT (n.a, n.b) IS NODE KEY | ASSERT exists(n.p) | IS NOT NULL
 *                                          (4.x, as APOC's exports write it)
 *   DROP INDEX name [IF EXISTS], DROP CONSTRAINT name [IF EXISTS]
 *   DROP INDEX ON :L(p), DROP CONSTRAINT ON (n:L) ASSERT ...     (by schema)
 *   SHOW [ALL | RANGE] INDEX[ES], SHOW [ALL | UNIQUE | NODE KEY | ...] CONSTRAINT[S]
 *
 * Errors use Neo4j 5's codes: EquivalentSchemaRuleAlreadyExists,
 * IndexWithNameAlreadyExists, IndexAlreadyExists (and the Constraint ones),
 * IndexDropFailed / ConstraintDropFailed, ConstraintCreationFailed when the
 * data violates a new constraint. SHOW's columns are Neo4j 5's defaults; a
 * UNIQUE or NODE KEY constraint's index is listed by SHOW INDEXES under the
 * constraint's name with owningConstraint set, as in Neo4j. Neo4j's two
 * token lookup indexes have no counterpart (the label index is built in).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"
#include "store.h"

enum { S_CREATE_INDEX, S_CREATE_CONSTRAINT, S_DROP_INDEX, S_DROP_CONSTRAINT, S_SHOW_INDEXES, S_SHOW_CONSTRAINTS };

struct qschema {
  int what;
  bool if_exists; /* IF NOT EXISTS / IF EXISTS */
  bool by_schema; /* DROP ... ON: the rule is named by what it covers */
  sl_schema_rule r;
  const char *keys[SL_SCHEMA_KEYS_MAX];
  int show_filter; /* SHOW ... CONSTRAINTS: -1 all, else an sl_schema_kind */
  unsigned line, col;
};

/* ---- parsing -------------------------------------------------------------------------------- */
typedef struct sp {
  qctx *q;
  qtok *t;
  int n, i;
  const char *var; /* the pattern's variable */
} sp;

#define TK (&p->t[p->i < p->n ? p->i : p->n - 1])

static bool kw(const qtok *t, const char *w) { return t->type == T_IDENT && !strcasecmp(t->str, w); }
static bool at(sp *p, const char *w) { return kw(TK, w); }
static bool at2(sp *p, const char *w, const char *w2) {
  return p->i + 1 < p->n && kw(&p->t[p->i], w) && kw(&p->t[p->i + 1], w2);
}
static bool take(sp *p, const char *w) {
  if (!at(p, w)) return false;
  p->i++;
  return true;
}
static bool punct(sp *p, int c) { return TK->type == T_PUNCT && TK->punct == c; }
static bool take_punct(sp *p, int c) {
  if (!punct(p, c)) return false;
  p->i++;
  return true;
}

static int bad(sp *p, const char *expected) {
  qtok *t = TK;
  if (t->type == T_EOF)
    return qerr(p->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input: unexpected end of input: expected %s", expected);
  return qerr(p->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input '%.*s': expected %s", (int)(t->n > 40 ? 40 : t->n),
              t->s, expected);
}
static int need(sp *p, const char *w) { return take(p, w) ? 0 : bad(p, w); }
static int need_punct(sp *p, int c) {
  char what[8] = {'\'', (char)c, '\'', 0};
  return take_punct(p, c) ? 0 : bad(p, what);
}

static bool is_name(const qtok *t) { return t->type == T_IDENT || t->type == T_QIDENT; }
static int name(sp *p, const char **out, const char *what) {
  if (!is_name(TK)) return bad(p, what);
  *out = p->t[p->i++].str;
  return 0;
}

/* An optional schema name: a name that is not the next keyword. */
static int opt_name(sp *p, const char **out) {
  *out = NULL;
  if (TK->type == T_QIDENT || (TK->type == T_IDENT && !at(p, "IF") && !at(p, "FOR") && !at(p, "ON")))
    *out = p->t[p->i++].str;
  return 0;
}

static int if_clause(sp *p, bool exists) {
  if (!take(p, "IF")) return 0;
  if (exists) {
    if (need(p, "EXISTS")) return SL_EINVAL;
  } else if (need(p, "NOT") || need(p, "EXISTS")) {
    return SL_EINVAL;
  }
  p->q->stmt->schema->if_exists = true;
  return 0;
}

/* (n:L) or ()-[r:T]-() (either direction); sets the rule's entity and token. */
static int for_pattern(sp *p, sl_schema_rule *r) {
  int rc;
  if ((rc = need_punct(p, '('))) return rc;
  if (take_punct(p, ')')) { /* ()-[r:T]-() */
    r->rel = true;
    take_punct(p, '<');
    if ((rc = need_punct(p, '-')) || (rc = need_punct(p, '['))) return rc;
    if ((rc = name(p, &p->var, "a variable")) || (rc = need_punct(p, ':')) ||
        (rc = name(p, &r->token, "a relationship type")) || (rc = need_punct(p, ']')) || (rc = need_punct(p, '-')))
      return rc;
    take_punct(p, '>');
    return need_punct(p, '(') || need_punct(p, ')') ? SL_EINVAL : 0;
  }
  if ((rc = name(p, &p->var, "a variable")) || (rc = need_punct(p, ':')) || (rc = name(p, &r->token, "a label")))
    return rc;
  return need_punct(p, ')');
}

/* v.p, or (v.p, v.q, ...) when parenthesized (or always, after ON). */
static int key_list(sp *p, sl_schema_rule *r, const char **keys, bool parens) {
  int rc;
  bool open = parens ? (rc = need_punct(p, '(')) == 0 : take_punct(p, '(');
  if (parens && !open) return rc;
  r->nkeys = 0;
  do {
    const char *v = NULL, *k = NULL;
    qtok *vt = TK;
    if ((rc = name(p, &v, "a property (v.key)")) || (rc = need_punct(p, '.')) || (rc = name(p, &k, "a property key")))
      return rc;
    if (strcmp(v, p->var))
      return qerr(p->q, SL_EINVAL, ST_SEMANTIC, vt->line, vt->col, "Variable `%s` not defined", v);
    if (r->nkeys == SL_SCHEMA_KEYS_MAX)
      return qerr(p->q, SL_EINVAL, ST_SYNTAX, vt->line, vt->col, "at most %d properties", SL_SCHEMA_KEYS_MAX);
    keys[r->nkeys++] = k;
  } while (open && take_punct(p, ','));
  return open ? need_punct(p, ')') : 0;
}

/* :L(p, q) of the 3.x forms. */
static int label_keys(sp *p, sl_schema_rule *r, const char **keys) {
  int rc;
  if ((rc = need_punct(p, ':')) || (rc = name(p, &r->token, "a label")) || (rc = need_punct(p, '('))) return rc;
  r->nkeys = 0;
  do {
    if (r->nkeys == SL_SCHEMA_KEYS_MAX) return bad(p, "')'");
    if ((rc = name(p, &keys[r->nkeys++], "a property key"))) return rc;
  } while (take_punct(p, ','));
  return need_punct(p, ')');
}

/* IS UNIQUE / IS NODE KEY / IS RELATIONSHIP KEY / IS KEY / IS NOT NULL */
static int constraint_kind(sp *p, sl_schema_rule *r) {
  if (need(p, "IS")) return SL_EINVAL;
  if (take(p, "UNIQUE")) r->kind = SL_SCHEMA_UNIQUE;
  else if (take(p, "NOT")) {
    if (need(p, "NULL")) return SL_EINVAL;
    r->kind = SL_SCHEMA_NOT_NULL;
  } else if (take(p, "KEY") || (!r->rel && at2(p, "NODE", "KEY")) || (r->rel && at2(p, "RELATIONSHIP", "KEY"))) {
    if (!kw(&p->t[p->i - 1], "KEY")) p->i += 2;
    r->kind = SL_SCHEMA_NODE_KEY;
  } else {
    return bad(p, r->rel ? "UNIQUE, RELATIONSHIP KEY, KEY or NOT NULL" : "UNIQUE, NODE KEY, KEY or NOT NULL");
  }
  return 0;
}

/* The 4.x constraint body after ON: (n:L) ASSERT ... */
static int assert_body(sp *p, qschema *s) {
  int rc;
  if ((rc = for_pattern(p, &s->r)) || (rc = need(p, "ASSERT"))) return rc;
  if (take(p, "EXISTS")) { /* ASSERT exists(n.p) */
    s->r.kind = SL_SCHEMA_NOT_NULL;
    return key_list(p, &s->r, s->keys, true);
  }
  if ((rc = key_list(p, &s->r, s->keys, false))) return rc;
  return constraint_kind(p, &s->r);
}

static int parse_show(sp *p, qschema *s) {
  s->show_filter = -1;
  take(p, "ALL");
  if (take(p, "RANGE") || take(p, "BTREE")) {
    if (!at(p, "INDEX") && !at(p, "INDEXES")) return bad(p, "INDEXES");
  } else if (take(p, "UNIQUE") || take(p, "UNIQUENESS")) {
    s->show_filter = SL_SCHEMA_UNIQUE;
  } else if (at2(p, "NODE", "KEY") || at2(p, "RELATIONSHIP", "KEY") || at(p, "KEY")) {
    p->i += at(p, "KEY") ? 1 : 2;
    s->show_filter = SL_SCHEMA_NODE_KEY;
  } else if (take(p, "EXIST") || take(p, "EXISTENCE") || at2(p, "NODE", "EXISTENCE") ||
             at2(p, "RELATIONSHIP", "EXISTENCE")) {
    if (at(p, "EXISTENCE")) p->i++;
    s->show_filter = SL_SCHEMA_NOT_NULL;
  }
  if (take(p, "INDEX") || take(p, "INDEXES")) s->what = S_SHOW_INDEXES;
  else if (take(p, "CONSTRAINT") || take(p, "CONSTRAINTS")) s->what = S_SHOW_CONSTRAINTS;
  else return bad(p, "INDEXES or CONSTRAINTS");
  if (s->what == S_SHOW_INDEXES && s->show_filter >= 0) return bad(p, "CONSTRAINTS");
  if (at(p, "YIELD") || at(p, "WHERE"))
    return qerr(p->q, SL_EINVAL, ST_SYNTAX, TK->line, TK->col, "SHOW ... %s is not supported: filter with a query instead",
                TK->str);
  return 0;
}

bool q_schema_statement(const qtok *t, int n) {
  if (n < 2) return false;
  if (kw(&t[0], "SHOW") || kw(&t[0], "DROP")) return true;
  if (!kw(&t[0], "CREATE")) return false;
  const qtok *k = &t[1];
  if ((kw(k, "RANGE") || kw(k, "BTREE")) && n > 2) k = &t[2];
  return kw(k, "INDEX") || kw(k, "CONSTRAINT");
}

static const char *const show_index_cols[] = {"id", "name", "state", "populationPercent", "type", "entityType",
                                              "labelsOrTypes", "properties", "indexProvider", "owningConstraint",
                                              "lastRead", "readCount"};
static const char *const show_constraint_cols[] = {"id", "name", "type", "entityType", "labelsOrTypes", "properties",
                                                   "ownedIndex", "propertyType"};

int q_schema_parse(qctx *q, qtok *t, int n) {
  sp P = {.q = q, .t = t, .n = n}, *p = &P;
  qstmt *st = sl_arena_zalloc(&q->ast, sizeof *st);
  qschema *s = sl_arena_zalloc(&q->ast, sizeof *s);
  if (!st || !s) return qerr_oom(q);
  q->stmt = st;
  st->schema = s;
  s->r.keys = s->keys;
  s->line = t[0].line;
  s->col = t[0].col;
  int rc;
  if (take(p, "SHOW")) {
    if ((rc = parse_show(p, s))) return rc;
  } else if (take(p, "DROP")) {
    bool index = take(p, "INDEX");
    if (!index && !take(p, "CONSTRAINT")) return bad(p, "INDEX or CONSTRAINT");
    s->what = index ? S_DROP_INDEX : S_DROP_CONSTRAINT;
    if (take(p, "ON")) {
      s->by_schema = true;
      if ((rc = index ? label_keys(p, &s->r, s->keys) : assert_body(p, s))) return rc;
    } else if ((rc = name(p, &s->r.name, index ? "an index name" : "a constraint name")) || (rc = if_clause(p, true))) {
      return rc;
    }
  } else {
    p->i++; /* CREATE */
    if (!take(p, "RANGE")) take(p, "BTREE");
    bool index = take(p, "INDEX");
    if (!index && need(p, "CONSTRAINT")) return SL_EINVAL;
    s->what = index ? S_CREATE_INDEX : S_CREATE_CONSTRAINT;
    if (index && at(p, "ON") && p->i + 1 < p->n && p->t[p->i + 1].type == T_PUNCT && p->t[p->i + 1].punct == ':') {
      p->i++; /* CREATE INDEX ON :L(p) */
      if ((rc = label_keys(p, &s->r, s->keys))) return rc;
    } else {
      if ((rc = opt_name(p, &s->r.name)) || (rc = if_clause(p, false))) return rc;
      if (!index && take(p, "ON")) {
        if ((rc = assert_body(p, s))) return rc;
      } else {
        if ((rc = need(p, "FOR")) || (rc = for_pattern(p, &s->r))) return rc;
        if (index) {
          if ((rc = need(p, "ON")) || (rc = key_list(p, &s->r, s->keys, true))) return rc;
        } else if ((rc = need(p, "REQUIRE")) || (rc = key_list(p, &s->r, s->keys, false)) ||
                   (rc = constraint_kind(p, &s->r))) {
          return rc;
        }
      }
    }
    if (take(p, "OPTIONS") && TK->type == T_PUNCT && TK->punct == '{') { /* index providers and configs: ignored */
      int depth = 0;
      do {
        if (punct(p, '{')) depth++;
        else if (punct(p, '}')) depth--;
        p->i++;
      } while (depth > 0 && TK->type != T_EOF);
    }
  }
  take_punct(p, ';');
  if (TK->type != T_EOF) return bad(p, "end of input");
  bool show = s->what == S_SHOW_INDEXES || s->what == S_SHOW_CONSTRAINTS;
  qsingle *part = sl_arena_zalloc(&q->ast, sizeof *part);
  if (!part) return qerr_oom(q);
  if (show) {
    part->ncols = s->what == S_SHOW_INDEXES ? (int)SL_ARRAY_LEN(show_index_cols) : (int)SL_ARRAY_LEN(show_constraint_cols);
    part->cols = (const char **)(s->what == S_SHOW_INDEXES ? show_index_cols : show_constraint_cols);
    part->colslots = sl_arena_alloc(&q->ast, sizeof(int) * (size_t)part->ncols);
    if (!part->colslots) return qerr_oom(q);
    for (int i = 0; i < part->ncols; i++) part->colslots[i] = i;
  }
  st->parts = part;
  st->nparts = 1;
  st->ncols = part->ncols;
  st->cols = part->cols;
  st->nslots = part->ncols;
  st->writes = !show;
  return 0;
}

/* ---- running -------------------------------------------------------------------------------- */
typedef struct op_schema {
  qop op;
  sl_arena a;
  bool ran;
  qv *rows;
  size_t nrows, pos;
  int ncols;
} op_schema;

static bool same_schema(const sl_schema_rule *a, const sl_schema_rule *b) {
  if (a->rel != b->rel || strcmp(a->token, b->token) || a->nkeys != b->nkeys) return false;
  for (size_t i = 0; i < a->nkeys; i++)
    if (strcmp(a->keys[i], b->keys[i])) return false;
  return true;
}

static const char *what_name(const sl_schema_rule *r) {
  return r->kind == SL_SCHEMA_INDEX ? "index" : "constraint";
}

/* (:L {p, q}) or ()-[:T {p}]-(), for messages. */
static const char *rule_text(sl_arena *a, const sl_schema_rule *r) {
  char buf[600];
  size_t off = (size_t)snprintf(buf, sizeof buf, "%s:%s {", r->rel ? "()-[" : "(", r->token);
  for (size_t i = 0; i < r->nkeys && off < sizeof buf; i++)
    off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? ", " : "", r->keys[i]);
  if (off < sizeof buf) snprintf(buf + off, sizeof buf - off, "}%s", r->rel ? "]-()" : ")");
  return sl_arena_strndup(a, buf, strlen(buf));
}

/* Create: Neo4j's checks and codes first, then the store's. */
static int run_create(qctx *q, qschema *s, const sl_schema_rule *rules, size_t n) {
  bool index = s->what == S_CREATE_INDEX;
  const char *kind = index ? "Index" : "Constraint";
  for (size_t i = 0; i < n; i++) {
    const sl_schema_rule *o = &rules[i];
    bool named = s->r.name && !strcmp(o->name, s->r.name);
    bool equiv = same_schema(o, &s->r) && (o->kind == s->r.kind || (o->kind != SL_SCHEMA_NOT_NULL && s->r.kind != SL_SCHEMA_NOT_NULL));
    if (!named && !equiv) continue;
    if (s->if_exists) return 0; /* IF NOT EXISTS: nothing to do */
    if (named && equiv && o->kind == s->r.kind)
      return qerr(q, SL_EEXIST, "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists", s->line, s->col,
                  "An equivalent %s already exists, '%s'.", what_name(o), o->name);
    if (named)
      return qerr(q, SL_EEXIST, index ? "Neo.ClientError.Schema.IndexWithNameAlreadyExists"
                                      : "Neo.ClientError.Schema.ConstraintWithNameAlreadyExists",
                  s->line, s->col, "There already exists an %s called '%s'.", what_name(o), o->name);
    /* The code names what exists, as Neo4j's does, with its words where the kinds differ. */
    bool has_index = o->kind == SL_SCHEMA_INDEX;
    const char *code = has_index ? "Neo.ClientError.Schema.IndexAlreadyExists" : "Neo.ClientError.Schema.ConstraintAlreadyExists";
    if (has_index && !index)
      return qerr(q, SL_EEXIST, code, s->line, s->col,
                  "There already exists an index %s. A constraint cannot be created until the index has been dropped.",
                  rule_text(&q->tmp, o));
    if (!has_index && index)
      return qerr(q, SL_EEXIST, code, s->line, s->col,
                  "There is a uniqueness constraint on %s, so an index is already created that matches this.",
                  rule_text(&q->tmp, o));
    return qerr(q, SL_EEXIST, code, s->line, s->col, "%s %s already exists: %s '%s' covers %s", kind,
                rule_text(&q->tmp, &s->r), what_name(o), o->name, rule_text(&q->tmp, o));
  }
  int rc = index ? sl_tx_create_index(q->tx, &s->r, NULL) : sl_tx_create_constraint(q->tx, &s->r, NULL);
  if (rc == SL_ECONSTRAINT)
    return qerr(q, rc, "Neo.ClientError.Schema.ConstraintCreationFailed", s->line, s->col,
                "Unable to create Constraint( %s ): %s", rule_text(&q->tmp, &s->r), sl_tx_error(q->tx));
  if (rc) return qerr_store(q, rc, s->line, s->col);
  if (index) q->stats.indexes_added++;
  else q->stats.constraints_added++;
  return 0;
}

static int run_drop(qctx *q, qschema *s, const sl_schema_rule *rules, size_t n) {
  bool index = s->what == S_DROP_INDEX;
  const char *name = s->r.name;
  for (size_t i = 0; !name && i < n; i++) /* DROP ... ON: by what it covers */
    if ((rules[i].kind == SL_SCHEMA_INDEX) == index && same_schema(&rules[i], &s->r) &&
        (index || rules[i].kind == s->r.kind))
      name = rules[i].name;
  bool found = false;
  for (size_t i = 0; name && i < n; i++) found |= !strcmp(rules[i].name, name) && (rules[i].kind == SL_SCHEMA_INDEX) == index;
  if (!found) {
    if (s->if_exists) return 0;
    const char *what = name ? name : rule_text(&q->tmp, &s->r);
    const char *kind = index ? "index" : "constraint";
    return qerr(q, SL_ENOTFOUND, index ? "Neo.ClientError.Schema.IndexDropFailed" : "Neo.ClientError.Schema.ConstraintDropFailed",
                s->line, s->col, "Unable to drop %s %s: No such %s exists.", kind, what, kind);
  }
  int rc = index ? sl_tx_drop_index(q->tx, name) : sl_tx_drop_constraint(q->tx, name);
  if (rc) return qerr_store(q, rc, s->line, s->col);
  if (index) q->stats.indexes_removed++;
  else q->stats.constraints_removed++;
  return 0;
}

static qv strlist(sl_arena *a, const char *const *s, size_t n, bool *oom) {
  qv v, *items = sl_arena_alloc(a, sizeof *items * (n ? n : 1));
  if (!items) *oom = true;
  for (size_t i = 0; items && i < n; i++) items[i] = qv_str(s[i], strlen(s[i]));
  v.kind = SL_QLIST;
  v.u.list.n = items ? n : 0;
  v.u.list.items = items;
  return v;
}

static qv cstr(const char *s) { return s ? qv_str(s, strlen(s)) : qv_null(); }

static const char *const constraint_types[2][4] = {
    {"", "UNIQUENESS", "NODE_KEY", "NODE_PROPERTY_EXISTENCE"},
    {"", "RELATIONSHIP_UNIQUENESS", "RELATIONSHIP_KEY", "RELATIONSHIP_PROPERTY_EXISTENCE"}};

/* SHOW's rows, Neo4j 5's default columns. */
static int show_rows(qctx *q, op_schema *o, qschema *s, const sl_schema_rule *rules, size_t n) {
  bool oom = false;
  o->ncols = q->stmt->ncols;
  o->rows = sl_arena_alloc(&o->a, sizeof(qv) * (size_t)o->ncols * (n ? n : 1));
  if (!o->rows) return qerr_oom(q);
  for (size_t i = 0; i < n; i++) {
    const sl_schema_rule *r = &rules[i];
    qv *row = &o->rows[o->nrows * (size_t)o->ncols];
    qv ent = cstr(r->rel ? "RELATIONSHIP" : "NODE"), tokens = strlist(&o->a, &r->token, 1, &oom),
       props = strlist(&o->a, r->keys, r->nkeys, &oom);
    if (s->what == S_SHOW_INDEXES) {
      if (r->kind == SL_SCHEMA_NOT_NULL) continue;
      qv vals[] = {qv_int(r->id), cstr(r->name), cstr("ONLINE"), qv_double(100.0), cstr("RANGE"), ent, tokens, props,
                   cstr("range-1.0"), r->kind == SL_SCHEMA_INDEX ? qv_null() : cstr(r->name), qv_null(), qv_null()};
      memcpy(row, vals, sizeof vals);
    } else {
      if (r->kind == SL_SCHEMA_INDEX || (s->show_filter >= 0 && (int)r->kind != s->show_filter)) continue;
      qv vals[] = {qv_int(r->id), cstr(r->name), cstr(constraint_types[r->rel][r->kind]), ent, tokens, props,
                   r->kind == SL_SCHEMA_NOT_NULL ? qv_null() : cstr(r->name), qv_null()};
      memcpy(row, vals, sizeof vals);
    }
    o->nrows++;
  }
  return oom ? qerr_oom(q) : 0;
}

bool q_schema_writes(const qschema *s, unsigned *line, unsigned *col) {
  if (s->what == S_SHOW_INDEXES || s->what == S_SHOW_CONSTRAINTS) return false;
  *line = s->line;
  *col = s->col;
  return true;
}

static int schema_next(qctx *q, qop *op) {
  op_schema *o = (op_schema *)op;
  qschema *s = q->stmt->schema;
  if (!o->ran) {
    const sl_schema_rule *rules;
    size_t n;
    o->ran = true;
    bool show = s->what == S_SHOW_INDEXES || s->what == S_SHOW_CONSTRAINTS;
    if (!show && !q->tx)
      return qerr(q, SL_EREADONLY, ST_ACCESS, s->line, s->col, "Schema operations are not allowed in read access mode%s%s",
                  q->opt->read_only_reason ? ": " : "", q->opt->read_only_reason ? q->opt->read_only_reason : "");
    int rc = sl_view_schema(q->view, &rules, &n);
    if (rc) return qerr_store(q, rc, s->line, s->col);
    /* Copy: the view's scratch memory goes with its next read. */
    sl_schema_rule *copy = sl_arena_alloc(&o->a, sizeof *copy * (n ? n : 1));
    if (!copy) return qerr_oom(q);
    for (size_t i = 0; i < n; i++) {
      copy[i] = rules[i];
      const char **keys = sl_arena_alloc(&o->a, sizeof *keys * rules[i].nkeys);
      if (!keys || !(copy[i].name = sl_arena_strndup(&o->a, rules[i].name, strlen(rules[i].name))) ||
          !(copy[i].token = sl_arena_strndup(&o->a, rules[i].token, strlen(rules[i].token))))
        return qerr_oom(q);
      for (size_t k = 0; k < rules[i].nkeys; k++)
        if (!(keys[k] = sl_arena_strndup(&o->a, rules[i].keys[k], strlen(rules[i].keys[k])))) return qerr_oom(q);
      copy[i].keys = keys;
    }
    if (s->what == S_CREATE_INDEX || s->what == S_CREATE_CONSTRAINT) return run_create(q, s, copy, n);
    if (s->what == S_DROP_INDEX || s->what == S_DROP_CONSTRAINT) return run_drop(q, s, copy, n);
    if ((rc = show_rows(q, o, s, copy, n))) return rc;
  }
  if (o->pos == o->nrows) return 0;
  memcpy(q->row, &o->rows[o->pos++ * (size_t)o->ncols], sizeof(qv) * (size_t)o->ncols);
  return 1;
}

static void schema_free(qop *op) { sl_arena_free(&((op_schema *)op)->a); }

int q_schema_plan(qctx *q, qop **out) {
  op_schema *o = calloc(1, sizeof *o);
  if (!o) return qerr_oom(q);
  o->op.next = schema_next;
  o->op.free = schema_free;
  sl_arena_init(&o->a, &q->mem);
  *out = &o->op;
  return 0;
}

/* ---- index seeks for the matcher ------------------------------------------------------------ */
/* Can expr be evaluated before the pattern binds anything (constants,
 * parameters, variables bound before the clause)? */
static bool seekable(const qexpr *e, const int *bound, int nb) {
  if (!e) return true;
  switch (e->op) {
  case E_VAR: {
    for (int i = 0; i < nb; i++)
      if (bound[i] == e->slot) return true;
    return false;
  }
  case E_PATTERN: case E_PATCOMP: case E_AGG: case E_COUNTSTAR: case E_LISTCOMP: case E_QUANT: case E_REDUCE:
    return false;
  default:
    break;
  }
  if (!seekable(e->a, bound, nb) || !seekable(e->b, bound, nb) || !seekable(e->c, bound, nb)) return false;
  for (int i = 0; i < e->nargs; i++)
    if (!seekable(e->args[i], bound, nb)) return false;
  return true;
}

/* The value the pattern or the WHERE gives key of node n, or NULL. */
static qexpr *key_value(const qnodepat *n, const qexpr *where, const int *bound, int nb, const char *key) {
  const qexpr *m = n->props;
  if (m && m->op == E_MAP)
    for (int e = m->nargs - 1; e >= 0; e--) /* a key given twice: the map keeps the last value */
      if (!strcmp(m->keys[e], key)) return m->args[e];
  if (!where) return NULL;
  if (where->op == E_AND) {
    qexpr *v = key_value(&(qnodepat){.slot = n->slot}, where->a, bound, nb, key);
    return v ? v : key_value(&(qnodepat){.slot = n->slot}, where->b, bound, nb, key);
  }
  if (where->op != E_EQ) return NULL;
  for (int side = 0; side < 2; side++) {
    const qexpr *p = side ? where->b : where->a, *v = side ? where->a : where->b;
    if (p && p->op == E_PROP && p->a && p->a->op == E_VAR && p->a->slot == n->slot && !strcmp(p->name, key) &&
        seekable(v, bound, nb))
      return (qexpr *)v;
  }
  return NULL;
}

/* n.key's bounds among where's conjuncts: the first lower and upper one. */
static void key_bounds(int slot, const qexpr *where, const int *bound, int nb, const char *key, q_seek *s) {
  if (!where) return;
  if (where->op == E_AND) {
    key_bounds(slot, where->a, bound, nb, key, s);
    key_bounds(slot, where->b, bound, nb, key, s);
    return;
  }
  if (where->op != E_LT && where->op != E_LE && where->op != E_GT && where->op != E_GE) return;
  for (int side = 0; side < 2; side++) {
    const qexpr *p = side ? where->b : where->a, *v = side ? where->a : where->b;
    if (!p || p->op != E_PROP || !p->a || p->a->op != E_VAR || p->a->slot != slot || strcmp(p->name, key) ||
        !seekable(v, bound, nb))
      continue;
    /* n.key > v (or v < n.key) bounds from below */
    bool above = (where->op == E_GT || where->op == E_GE) != (side == 1);
    bool incl = where->op == E_LE || where->op == E_GE;
    if (above && !s->lo) s->lo = (qexpr *)v, s->lo_incl = incl;
    if (!above && !s->hi) s->hi = (qexpr *)v, s->hi_incl = incl;
  }
}

int q_schema_seek_plan(qctx *q, const qnodepat *n, const qexpr *where, const int *bound, int nb, sl_arena *a,
                       q_seek *out) {
  const sl_schema_rule *rules;
  size_t nr;
  if (!n->nlabels || (!n->props && !where)) return 0;
  if (sl_view_schema(q->view, &rules, &nr)) return 0; /* no seek: the label scan still answers */
  const sl_schema_rule *best = NULL;
  int best_score = 0, best_label = 0, l;
  for (size_t i = 0; i < nr; i++) {
    const sl_schema_rule *r = &rules[i];
    bool label = false, keys = r->kind != SL_SCHEMA_NOT_NULL && !r->rel;
    for (l = 0; keys && l < n->nlabels && !label; l++) label = !strcmp(n->labels[l], r->token);
    for (size_t k = 0; keys && label && k < r->nkeys; k++) keys = key_value(n, where, bound, nb, r->keys[k]) != NULL;
    /* more keys first, then a unique one (one candidate at most) */
    int score = label && keys ? (int)r->nkeys * 2 + (r->kind != SL_SCHEMA_INDEX) : 0;
    if (score > best_score) best = r, best_score = score, best_label = l - 1;
  }
  if (!best) { /* a range on an index's first key, a unique one first */
    for (size_t i = 0; i < nr; i++) {
      const sl_schema_rule *r = &rules[i];
      q_seek b = {0};
      bool label = false;
      for (l = 0; l < n->nlabels && !label; l++) label = !strcmp(n->labels[l], r->token);
      if (!label || r->rel || r->kind == SL_SCHEMA_NOT_NULL) continue;
      key_bounds(n->slot, where, bound, nb, r->keys[0], &b);
      int score = (b.lo || b.hi) ? 1 + (r->kind != SL_SCHEMA_INDEX) : 0;
      if (score > best_score) best = r, best_score = score, *out = b, best_label = l - 1;
    }
    if (!best || !(out->index = sl_arena_strndup(a, best->name, strlen(best->name)))) return 0;
    out->range = true;
    out->nkeys = 1;
    out->label = best_label;
    return 1;
  }
  if (!(out->index = sl_arena_strndup(a, best->name, strlen(best->name)))) return 0;
  out->label = best_label;
  out->nkeys = (int)best->nkeys;
  for (size_t k = 0; k < best->nkeys; k++) out->vals[k] = key_value(n, where, bound, nb, best->keys[k]);
  return 1;
}

typedef struct idvec {
  sl_arena *a;
  uint64_t *v;
  size_t n, cap;
  bool oom;
} idvec;

static int push_id(void *arg, uint64_t id) {
  idvec *iv = arg;
  if (iv->n == iv->cap) {
    size_t cap = iv->cap ? 2 * iv->cap : 16;
    uint64_t *v = sl_arena_alloc(iv->a, sizeof *v * cap);
    if (!v) {
      iv->oom = true;
      return 1;
    }
    if (iv->n) memcpy(v, iv->v, sizeof *v * iv->n);
    iv->v = v;
    iv->cap = cap;
  }
  iv->v[iv->n++] = id;
  return 0;
}

/* A range's bound as the index can seek it: 1 (*out set, or NULL for no
 * bound), 0 when the range matches nothing, 2 when the index cannot say
 * (scan instead). */
static int range_bound(qctx *q, qexpr *e, const sl_value **out, sl_value *tmp, int *rc) {
  qv v;
  *out = NULL;
  if (!e) return 1;
  if ((*rc = q_eval(q, e, &v))) return 0;
  if (v.kind == SL_NULL || v.kind == SL_DURATION || v.kind == SL_POINT) return 0; /* `<` is null */
  if (v.kind >= SL_QLIST || v.kind == SL_BYTES) return 2; /* lists compare element by element, nulls and all */
  if (v.kind == SL_STRING && v.u.v.len > 400) return 2;   /* past what a key holds whole */
  *tmp = v.u.v;
  *out = tmp;
  return 1;
}

/* Is an index entry equal to v (the index's equality: sl_value_order's)
 * equal to v by Cypher's `=` too? Numbers, strings and booleans, but not
 * NaN (one index key for every NaN; NaN = NaN is false). */
static bool index_equality_is_cyphers(const sl_value *v) {
  return v->kind == SL_INT || v->kind == SL_STRING || v->kind == SL_BOOL || (v->kind == SL_DOUBLE && !isnan(v->u.d));
}

int q_schema_seek_ids(qctx *q, const q_seek *s, sl_arena *a, uint64_t **ids, size_t *n, bool *exact) {
  sl_value vals[SL_SCHEMA_KEYS_MAX];
  *ids = NULL;
  *n = 0;
  *exact = false;
  if (s->range) {
    const sl_value *lo, *hi;
    sl_value tlo, thi;
    int rc = 0, l = range_bound(q, s->lo, &lo, &tlo, &rc), h = rc ? 0 : range_bound(q, s->hi, &hi, &thi, &rc);
    if (rc) return rc;
    if (l == 2 || h == 2) return 0;
    if (!l || !h) return 1;
    idvec iv = {.a = a};
    rc = sl_view_index_range(q->view, s->index, lo, s->lo_incl, hi, s->hi_incl, push_id, &iv);
    if (iv.oom) return qerr_oom(q);
    if (rc == SL_EINVAL) return 1; /* bounds of two kinds: nothing is between them */
    if (rc) return qerr_store(q, rc, (s->lo ? s->lo : s->hi)->line, (s->lo ? s->lo : s->hi)->col);
    *ids = iv.v;
    *n = iv.n;
    return 1;
  }
  for (int k = 0; k < s->nkeys; k++) {
    qv v;
    int rc = q_eval(q, s->vals[k], &v);
    if (rc) return rc;
    if (v.kind == SL_QLIST) return 0; /* the scan compares lists as Cypher does */
    if (v.kind == SL_NULL || v.kind >= SL_QLIST) return 1; /* equal to no stored value */
    vals[k] = v.u.v;
  }
  idvec iv = {.a = a};
  int rc = sl_view_index_seek(q->view, s->index, vals, (size_t)s->nkeys, push_id, &iv);
  if (iv.oom) return qerr_oom(q);
  if (rc) return qerr_store(q, rc, s->vals[0]->line, s->vals[0]->col);
  *ids = iv.v;
  *n = iv.n;
  *exact = true;
  for (int k = 0; k < s->nkeys; k++) *exact &= index_equality_is_cyphers(&vals[k]);
  return 1;
}
