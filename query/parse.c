/*
 * The Cypher parser: recursive descent over the token array (lex.c) into
 * the AST of query_int.h, with the semantic checks that need scopes done on
 * the way: every variable is resolved to a row slot when it is read
 * (unknown -> SemanticError "Variable `x` not defined" at its position),
 * projections open a new scope (WITH), aggregates are allowed only in
 * WITH/RETURN items and are numbered there for the grouping operator.
 *
 * Precedence, loosest first (openCypher's grammar): OR, XOR, AND, NOT,
 * comparison (chains: a < b < c is a < b AND b < c), the string/list/null
 * predicates (STARTS WITH, ENDS WITH, CONTAINS, IN, =~, IS [NOT] NULL),
 * + -, * / %, ^, unary + -, postfix (.key, [i], [a..b], :Label), atoms.
 *
 * Schema statements (CREATE INDEX/CONSTRAINT, DROP, SHOW) are parsed by
 * schema.c when a statement starts with one; parse_schema() refuses them
 * inside a query.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"

/* What a variable holds, as far as the parser knows (VT_ANY: an expression
 * or UNWIND's value): a node variable may not be used as a relationship, nor
 * a projected literal (VT_VALUE) or list (VT_LIST: fine for a *-relationship). */
enum { VT_ANY, VT_NODE, VT_REL, VT_PATH, VT_RELS, VT_VALUE, VT_LIST };
static const char *const vt_names[] = {"Any", "Node", "Relationship", "Path", "List<Relationship>", "Value", "List"};

typedef struct svar {
  const char *name;
  int slot;
  int type;
} svar;

typedef struct scope {
  svar *v;
  int n, cap;
} scope;

typedef struct parser {
  qctx *q;
  qtok *t;
  int nt, i;
  scope sc;
  int nslots;
  qclause *proj;   /* the projection whose items may hold aggregates, or NULL */
  bool in_agg;     /* inside an aggregate's argument */
  bool over_list;  /* inside the predicate or projection of a list comprehension, quantifier or reduce */
  bool writes;
  int pat_mark;    /* scope size where the pattern being parsed began */
  int nest;        /* parse_expr, sign and NOT levels open (NESTING) */
} parser;

#define TOK (&p->t[p->i])
#define FAILRC(x)            \
  do {                       \
    int rc_ = (x);           \
    if (rc_) return rc_;     \
  } while (0)

static int perr(parser *p, const qtok *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *p, const qtok *t, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qerr(p->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "%s", msg);
}

static int semerr(parser *p, unsigned line, unsigned col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int semerr(parser *p, unsigned line, unsigned col, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* Neo4j reports what its semantic analysis finds as SyntaxError */
  return qerr(p->q, SL_EINVAL, ST_SYNTAX, line, col, "%s", msg);
}

static int unexpected(parser *p, const char *expected) {
  qtok *t = TOK;
  if (t->type == T_EOF) return perr(p, t, "Invalid input: unexpected end of input: expected %s", expected);
  return perr(p, t, "Invalid input '%.*s': expected %s", (int)(t->n > 40 ? 40 : t->n), t->s, expected);
}

static void *palloc(parser *p, size_t n) { return sl_arena_zalloc(&p->q->ast, n); }

static bool is_kw(const qtok *t, const char *kw) { return t->type == T_IDENT && !strcasecmp(t->str, kw); }
static bool at_kw(parser *p, const char *kw) { return is_kw(TOK, kw); }
static bool at_kw2(parser *p, const char *kw, const char *kw2) {
  return is_kw(TOK, kw) && p->i + 1 < p->nt && is_kw(&p->t[p->i + 1], kw2);
}
static bool accept_kw(parser *p, const char *kw) {
  if (!at_kw(p, kw)) return false;
  p->i++;
  return true;
}
static int expect_kw(parser *p, const char *kw) { return accept_kw(p, kw) ? 0 : unexpected(p, kw); }
static bool at_punct(parser *p, int c) { return TOK->type == T_PUNCT && TOK->punct == c; }
static bool accept(parser *p, int c) {
  if (!at_punct(p, c)) return false;
  p->i++;
  return true;
}
static int expect(parser *p, int c) {
  if (accept(p, c)) return 0;
  char want[8];
  snprintf(want, sizeof want, "'%c'", c);
  return unexpected(p, want);
}

/* Clause keywords cannot name variables without backticks where they would
 * be ambiguous; everything else may. */
static bool is_name_tok(const qtok *t) { return t->type == T_IDENT || t->type == T_QIDENT; }

static int parse_name(parser *p, const char **out, const char *what) {
  if (!is_name_tok(TOK)) return unexpected(p, what);
  *out = TOK->str;
  p->i++;
  return 0;
}

/* A label, type or key: 1..255 bytes. */
static int parse_symbol(parser *p, const char **out, const char *what) {
  qtok *t = TOK;
  FAILRC(parse_name(p, out, what));
  if (!**out || strlen(*out) > SL_NAME_MAX) return perr(p, t, "%s must be 1 to %d bytes long", what, SL_NAME_MAX);
  return 0;
}

/* ---- scopes ----------------------------------------------------------------------------- */
static int scope_index(const scope *s, const char *name) {
  for (int i = s->n - 1; i >= 0; i--)
    if (!strcmp(s->v[i].name, name)) return i;
  return -1;
}

static int scope_find(const scope *s, const char *name) {
  int i = scope_index(s, name);
  return i < 0 ? -1 : s->v[i].slot;
}

static int scope_type_of_slot(const scope *s, int slot) {
  for (int i = s->n - 1; i >= 0; i--)
    if (s->v[i].slot == slot) return s->v[i].type;
  return VT_ANY;
}

static int scope_add_t(parser *p, scope *s, const char *name, int slot, int type);

/* What a projection item holds: a variable's type carries over; a literal,
 * map, list or arithmetic result is no graph entity. */
static int projected_type(const scope *old, const qexpr *e) {
  if (e->op == E_VAR) return scope_type_of_slot(old, e->slot);
  if (e->op == E_LIST) return VT_LIST;
  if ((e->op == E_LIT && e->lit.kind != SL_NULL) || e->op == E_MAP || (e->op >= E_NOT && e->op <= E_ISNOTNULL)) return VT_VALUE;
  return VT_ANY;
}
static int scope_add(parser *p, scope *s, const char *name, int slot) { return scope_add_t(p, s, name, slot, VT_ANY); }

static int scope_add_t(parser *p, scope *s, const char *name, int slot, int type) {
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 16;
    svar *v = palloc(p, sizeof *v * (size_t)cap);
    if (!v) return qerr_oom(p->q);
    if (s->n) memcpy(v, s->v, sizeof *v * (size_t)s->n);
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n].name = name;
  s->v[s->n].slot = slot;
  s->v[s->n].type = type;
  s->n++;
  return 0;
}

static int new_slot(parser *p) { return p->nslots++; }

/* ---- growable pointer arrays in the AST arena ---------------------------------------------- */
typedef struct vec {
  void *items;
  int n, cap;
  size_t size;
} vec;

static void *vec_push(parser *p, vec *v) {
  if (v->n == v->cap) {
    int cap = v->cap ? v->cap * 2 : 4;
    void *items = palloc(p, v->size * (size_t)cap);
    if (!items) return NULL;
    if (v->n) memcpy(items, v->items, v->size * (size_t)v->n);
    v->items = items;
    v->cap = cap;
  }
  return (char *)v->items + v->size * (size_t)v->n++;
}

/* ---- expressions ------------------------------------------------------------------------- */
static int parse_expr(parser *p, qexpr **out);
static int parse_pattern_path(parser *p, qpath *path, int mode);

enum { PAT_MATCH, PAT_CREATE, PAT_MERGE, PAT_EXPR };

/* NESTING (query_int.h): a level opened at t; the caller closes it with
 * p->nest-- once its operand parsed (a failed parse ends the statement). */
static int too_deep(parser *p, const qtok *t) {
  return perr(p, t, "Expression nested too deeply (more than %d levels)", SL_QUERY_MAX_DEPTH);
}
static int nest_in(parser *p, const qtok *t) { return ++p->nest > SL_QUERY_MAX_DEPTH ? too_deep(p, t) : 0; }

static qexpr *mk(parser *p, int op, const qtok *t) {
  qexpr *e = palloc(p, sizeof *e);
  if (!e) return NULL;
  e->op = (uint8_t)op;
  e->line = t->line;
  e->col = t->col;
  e->src = t->s;
  e->slot = -1;
  return e;
}

static void set_src_end(parser *p, qexpr *e) {
  const qtok *last = &p->t[p->i - 1];
  e->srclen = (size_t)(last->s + last->n - e->src);
}

/* An operand that can never be a boolean (a literal of another kind, a
 * list or map literal): Neo4j refuses it before running. */
static int check_boolean_operand(parser *p, const qexpr *x) {
  if (!x) return 0;
  bool bad = x->op == E_LIST || x->op == E_MAP || (x->op == E_LIT && x->lit.kind != SL_BOOL && x->lit.kind != SL_NULL);
  if (!bad) return 0;
  const char *what = x->op == E_LIST ? "List<T>" : x->op == E_MAP ? "Map" : qv_type_name(&x->lit);
  return qerr(p->q, SL_EINVAL, ST_SYNTAX, x->line, x->col, "Type mismatch: expected Boolean but was %s", what);
}

static int mk_bin(parser *p, int op, qexpr *a, qexpr *b, qexpr **out) {
  if (op == E_AND || op == E_OR || op == E_XOR) {
    FAILRC(check_boolean_operand(p, a));
    FAILRC(check_boolean_operand(p, b));
  }
  qexpr *e = palloc(p, sizeof *e);
  if (!e) return qerr_oom(p->q);
  e->op = (uint8_t)op;
  e->line = a->line;
  e->col = a->col;
  e->src = a->src;
  e->slot = -1;
  e->a = a;
  e->b = b;
  set_src_end(p, e);
  *out = e;
  return 0;
}

static int parse_map_literal(parser *p, qexpr **out) {
  qtok *t0 = TOK;
  FAILRC(expect(p, '{'));
  qexpr *e = mk(p, E_MAP, t0);
  if (!e) return qerr_oom(p->q);
  vec keys = {.size = sizeof(char *)}, vals = {.size = sizeof(qexpr *)};
  if (!at_punct(p, '}')) {
    do {
      const char **k = vec_push(p, &keys);
      qexpr **v = vec_push(p, &vals);
      if (!k || !v) return qerr_oom(p->q);
      FAILRC(parse_symbol(p, k, "a property key name"));
      FAILRC(expect(p, ':'));
      FAILRC(parse_expr(p, v));
    } while (accept(p, ','));
  }
  FAILRC(expect(p, '}'));
  e->keys = keys.items;
  e->args = vals.items;
  e->nargs = vals.n;
  set_src_end(p, e);
  *out = e;
  return 0;
}

/* `x IN list [WHERE pred] [| proj]` after '[' (list comprehension) or
 * inside all()/any()/none()/single(). */
static int parse_in_clause(parser *p, qexpr *e, bool allow_proj, bool need_where) {
  const char *name = NULL;
  FAILRC(parse_name(p, &name, "a variable name"));
  FAILRC(expect_kw(p, "IN"));
  FAILRC(parse_expr(p, &e->a));
  int saved = p->sc.n;
  bool over_list = p->over_list;
  e->slot = new_slot(p);
  FAILRC(scope_add(p, &p->sc, name, e->slot));
  p->over_list = true;
  if (accept_kw(p, "WHERE")) FAILRC(parse_expr(p, &e->b));
  else if (need_where) return unexpected(p, "WHERE");
  if (allow_proj && accept(p, '|')) FAILRC(parse_expr(p, &e->c));
  p->over_list = over_list;
  p->sc.n = saved;
  return 0;
}

static bool looks_like_pattern(parser *p) {
  /* At '(': a node pattern followed by a relationship. */
  int i = p->i;
  if (!(p->t[i].type == T_PUNCT && p->t[i].punct == '(')) return false;
  int depth = 0;
  for (; i < p->nt; i++) {
    qtok *t = &p->t[i];
    if (t->type == T_EOF) return false;
    if (t->type == T_PUNCT && (t->punct == '(' || t->punct == '[' || t->punct == '{')) depth++;
    if (t->type == T_PUNCT && (t->punct == ')' || t->punct == ']' || t->punct == '}')) {
      if (--depth == 0) break;
    }
  }
  if (i + 2 >= p->nt) return false;
  qtok *a = &p->t[i + 1], *b = &p->t[i + 2];
  if (a->type != T_PUNCT || b->type != T_PUNCT) return false;
  if (a->punct == '<' && b->punct == '-') return true;
  if (a->punct == '-' && (b->punct == '[' || b->punct == '-' || b->punct == '>')) return true;
  return false;
}

static int parse_pattern_expr(parser *p, qexpr **out, bool comprehension) {
  qtok *t0 = TOK;
  qexpr *e = mk(p, comprehension ? E_PATCOMP : E_PATTERN, t0);
  qpattern *pat = palloc(p, sizeof *pat);
  qpath *path = palloc(p, sizeof *path);
  if (!e || !pat || !path) return qerr_oom(p->q);
  int saved = p->sc.n;
  path->slot = -1;
  if (comprehension && is_name_tok(TOK) && p->t[p->i + 1].type == T_PUNCT && p->t[p->i + 1].punct == '=') {
    const char *name = TOK->str;
    p->i += 2;
    path->slot = new_slot(p);
    FAILRC(scope_add(p, &p->sc, name, path->slot));
  }
  FAILRC(parse_pattern_path(p, path, PAT_EXPR));
  pat->npaths = 1;
  pat->paths = path;
  if (comprehension) {
    if (accept_kw(p, "WHERE")) FAILRC(parse_expr(p, &pat->where));
    FAILRC(expect(p, '|'));
    FAILRC(parse_expr(p, &pat->proj));
  }
  p->sc.n = saved;
  e->pat = pat;
  set_src_end(p, e);
  *out = e;
  return 0;
}

/* The functions whose argument's type the parser may know to be wrong: a
 * variable bound to a graph entity, path or list of another kind (`type(n)`
 * of a node, `length(r)` of a relationship). Neo4j refuses these before
 * running; a value of unknown type is left to the function. */
#define VT_BIT(t) (1u << (t))
static int check_arg_type(parser *p, const qexpr *e) {
  static const struct {
    const char *fn;
    unsigned refused; /* VT_BIT()s */
    const char *expected;
  } rules[] = {
      {"type", VT_BIT(VT_NODE) | VT_BIT(VT_PATH) | VT_BIT(VT_RELS) | VT_BIT(VT_LIST), "Relationship"},
      {"startNode", VT_BIT(VT_NODE) | VT_BIT(VT_PATH) | VT_BIT(VT_RELS) | VT_BIT(VT_LIST), "Relationship"},
      {"endNode", VT_BIT(VT_NODE) | VT_BIT(VT_PATH) | VT_BIT(VT_RELS) | VT_BIT(VT_LIST), "Relationship"},
      {"labels", VT_BIT(VT_REL) | VT_BIT(VT_PATH) | VT_BIT(VT_RELS) | VT_BIT(VT_LIST), "Node"},
      {"length", VT_BIT(VT_NODE) | VT_BIT(VT_REL), "Path"},
      {"nodes", VT_BIT(VT_NODE) | VT_BIT(VT_REL), "Path"},
      {"relationships", VT_BIT(VT_NODE) | VT_BIT(VT_REL), "Path"},
      {"size", VT_BIT(VT_NODE) | VT_BIT(VT_REL) | VT_BIT(VT_PATH), "String or List<T>"},
  };
  if (e->nargs != 1) return 0;
  const qexpr *a = e->args[0];
  if (!strcasecmp(e->name, "size") && a->op == E_PATTERN)
    return semerr(p, a->line, a->col,
                  "A pattern expression should only be used in order to test the existence of a pattern. It can no "
                  "longer be used inside the function size(), an alternative is to replace size() with COUNT {}.");
  if (a->op != E_VAR) return 0;
  int type = scope_type_of_slot(&p->sc, a->slot);
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (!strcasecmp(e->name, rules[i].fn) && (rules[i].refused & VT_BIT(type)))
      return semerr(p, a->line, a->col, "Type mismatch: expected %s but was %s", rules[i].expected, vt_names[type]);
  return 0;
}

static int parse_func(parser *p, qtok *t0, const char *name, qexpr **out) {
  /* after '(' */
  int kind;
  bool agg = q_is_agg_name(name, &kind);
  qexpr *e = mk(p, agg ? E_AGG : E_FUNC, t0);
  if (!e) return qerr_oom(p->q);
  e->name = name;
  if (agg) {
    if (!p->proj || p->in_agg)
      return semerr(p, t0->line, t0->col, "Invalid use of aggregating function %s(...) in this context", name);
    if (p->over_list)
      return semerr(p, t0->line, t0->col, "Can't use aggregating expressions inside of expressions executing over lists");
    e->agg = kind;
    if (!strcasecmp(name, "count") && at_punct(p, '*')) {
      p->i++;
      e->op = E_COUNTSTAR;
      FAILRC(expect(p, ')'));
      goto done;
    }
    if (accept_kw(p, "DISTINCT")) e->distinct = true;
    else accept_kw(p, "ALL");
    p->in_agg = true;
    FAILRC(parse_expr(p, &e->a));
    if (kind == AGG_PERCENTILE_DISC || kind == AGG_PERCENTILE_CONT) {
      FAILRC(expect(p, ','));
      FAILRC(parse_expr(p, &e->b));
    }
    p->in_agg = false;
    FAILRC(expect(p, ')'));
    goto done;
  }
  vec args = {.size = sizeof(qexpr *)};
  if (accept_kw(p, "DISTINCT")) return perr(p, t0, "Invalid use of DISTINCT with function '%s'", name);
  if (!at_punct(p, ')')) {
    do {
      qexpr **a = vec_push(p, &args);
      if (!a) return qerr_oom(p->q);
      FAILRC(parse_expr(p, a));
    } while (accept(p, ','));
  }
  FAILRC(expect(p, ')'));
  e->args = args.items;
  e->nargs = args.n;
  int mn, mx;
  e->fn = q_func_lookup(name, e->nargs, &mn, &mx);
  if (!e->fn) {
    if (mn < 0) return perr(p, t0, "Unknown function '%s'", name);
    return perr(p, t0, "Insufficient parameters for function '%s'", name);
  }
  FAILRC(check_arg_type(p, e));
  /* Neo4j refuses random values inside an aggregate */
  if (p->in_agg && (!strcasecmp(name, "rand") || !strcasecmp(name, "randomUUID")))
    return semerr(p, t0->line, t0->col, "Can't use non-deterministic (random) functions inside of aggregate functions.");
done:
  if (e->op == E_AGG || e->op == E_COUNTSTAR) {
    qclause *c = p->proj;
    e->aggidx = c->naggs;
    qexpr **na = palloc(p, sizeof *na * (size_t)(c->naggs + 1));
    if (!na) return qerr_oom(p->q);
    if (c->naggs) memcpy(na, c->aggs, sizeof *na * (size_t)c->naggs);
    na[c->naggs++] = e;
    c->aggs = na;
  }
  set_src_end(p, e);
  *out = e;
  return 0;
}

static int parse_case(parser *p, qtok *t0, qexpr **out) {
  qexpr *e = mk(p, E_CASE, t0);
  if (!e) return qerr_oom(p->q);
  if (!at_kw(p, "WHEN")) FAILRC(parse_expr(p, &e->a));
  vec arms = {.size = sizeof(qexpr *)};
  while (accept_kw(p, "WHEN")) {
    qexpr **w = vec_push(p, &arms), **th;
    if (!w) return qerr_oom(p->q);
    FAILRC(parse_expr(p, w));
    FAILRC(expect_kw(p, "THEN"));
    if (!(th = vec_push(p, &arms))) return qerr_oom(p->q);
    FAILRC(parse_expr(p, th));
  }
  if (!arms.n) return unexpected(p, "WHEN");
  if (accept_kw(p, "ELSE")) FAILRC(parse_expr(p, &e->c));
  FAILRC(expect_kw(p, "END"));
  e->args = arms.items;
  e->nargs = arms.n;
  set_src_end(p, e);
  *out = e;
  return 0;
}

static int parse_atom(parser *p, qexpr **out) {
  qtok *t = TOK;
  qexpr *e = NULL;
  switch (t->type) {
  case T_INT:
    if (t->int_overflow) return perr(p, t, "integer is too large: %.*s", (int)t->n, t->s);
    e = mk(p, E_LIT, t);
    if (!e) return qerr_oom(p->q);
    e->lit = qv_int(t->i);
    p->i++;
    break;
  case T_FLOAT:
    e = mk(p, E_LIT, t);
    if (!e) return qerr_oom(p->q);
    e->lit = qv_double(t->d);
    p->i++;
    break;
  case T_STRING:
    e = mk(p, E_LIT, t);
    if (!e) return qerr_oom(p->q);
    e->lit = qv_str(t->str, t->slen);
    p->i++;
    break;
  case T_PARAM:
    e = mk(p, E_PARAM, t);
    if (!e) return qerr_oom(p->q);
    e->name = t->str;
    p->i++;
    break;
  case T_PUNCT:
    if (t->punct == '[') {
      p->i++;
      /* list comprehension, pattern comprehension or list literal */
      if (is_name_tok(TOK) && is_kw(&p->t[p->i + 1], "IN")) {
        e = mk(p, E_LISTCOMP, t);
        if (!e) return qerr_oom(p->q);
        FAILRC(parse_in_clause(p, e, true, false));
        FAILRC(expect(p, ']'));
        break;
      }
      if (looks_like_pattern(p) ||
          (is_name_tok(TOK) && p->t[p->i + 1].type == T_PUNCT && p->t[p->i + 1].punct == '=' &&
           p->t[p->i + 2].type == T_PUNCT && p->t[p->i + 2].punct == '(')) {
        FAILRC(parse_pattern_expr(p, &e, true));
        FAILRC(expect(p, ']'));
        e->src = t->s;
        set_src_end(p, e);
        break;
      }
      e = mk(p, E_LIST, t);
      if (!e) return qerr_oom(p->q);
      vec items = {.size = sizeof(qexpr *)};
      if (!at_punct(p, ']')) {
        do {
          qexpr **a = vec_push(p, &items);
          if (!a) return qerr_oom(p->q);
          FAILRC(parse_expr(p, a));
        } while (accept(p, ','));
      }
      FAILRC(expect(p, ']'));
      e->args = items.items;
      e->nargs = items.n;
      break;
    }
    if (t->punct == '{') {
      FAILRC(parse_map_literal(p, &e));
      break;
    }
    if (t->punct == '(') {
      if (looks_like_pattern(p)) {
        FAILRC(parse_pattern_expr(p, &e, false));
        break;
      }
      p->i++;
      FAILRC(parse_expr(p, &e));
      FAILRC(expect(p, ')'));
      e->src = t->s; /* the column name keeps the parentheses */
      set_src_end(p, e);
      *out = e;
      return 0;
    }
    return unexpected(p, "an expression");
  case T_IDENT:
  case T_QIDENT: {
    if (t->type == T_IDENT) {
      if (!strcasecmp(t->str, "true") || !strcasecmp(t->str, "false")) {
        e = mk(p, E_LIT, t);
        if (!e) return qerr_oom(p->q);
        e->lit = qv_bool(!strcasecmp(t->str, "true"));
        p->i++;
        break;
      }
      if (!strcasecmp(t->str, "null")) {
        e = mk(p, E_LIT, t);
        if (!e) return qerr_oom(p->q);
        e->lit = qv_null();
        p->i++;
        break;
      }
      if (!strcasecmp(t->str, "CASE")) {
        p->i++;
        FAILRC(parse_case(p, t, &e));
        break;
      }
      if (!strcasecmp(t->str, "NaN") || !strcasecmp(t->str, "Infinity")) {
        /* not Cypher literals: variables named so are resolved below */
      }
    }
    /* function call: name(, or namespaced a.b.c( */
    int j = p->i;
    size_t namelen = p->t[j].slen;
    while (p->t[j + 1].type == T_PUNCT && p->t[j + 1].punct == '.' && is_name_tok(&p->t[j + 2])) {
      namelen += 1 + p->t[j + 2].slen;
      j += 2;
    }
    if (p->t[j + 1].type == T_PUNCT && p->t[j + 1].punct == '(') {
      char *name = palloc(p, namelen + 1);
      if (!name) return qerr_oom(p->q);
      for (int k = p->i; k <= j; k += 2) {
        strcat(name, p->t[k].str);
        if (k < j) strcat(name, ".");
      }
      p->i = j + 2;
      if (t->type == T_IDENT && j == p->i - 2) {
        int quant = -1;
        if (!strcasecmp(name, "all")) quant = Q_ALL;
        else if (!strcasecmp(name, "any")) quant = Q_ANY;
        else if (!strcasecmp(name, "none")) quant = Q_NONE;
        else if (!strcasecmp(name, "single")) quant = Q_SINGLE;
        if (quant >= 0 && is_name_tok(TOK) && is_kw(&p->t[p->i + 1], "IN")) {
          e = mk(p, E_QUANT, t);
          if (!e) return qerr_oom(p->q);
          e->agg = quant;
          FAILRC(parse_in_clause(p, e, false, true));
          FAILRC(expect(p, ')'));
          break;
        }
        if (!strcasecmp(name, "reduce")) {
          e = mk(p, E_REDUCE, t);
          if (!e) return qerr_oom(p->q);
          const char *acc = NULL, *var = NULL;
          FAILRC(parse_name(p, &acc, "a variable name"));
          FAILRC(expect(p, '='));
          FAILRC(parse_expr(p, &e->c));
          FAILRC(expect(p, ','));
          FAILRC(parse_name(p, &var, "a variable name"));
          FAILRC(expect_kw(p, "IN"));
          FAILRC(parse_expr(p, &e->a));
          FAILRC(expect(p, '|'));
          int saved = p->sc.n;
          e->slot = new_slot(p);
          e->slot2 = new_slot(p);
          FAILRC(scope_add(p, &p->sc, var, e->slot));
          FAILRC(scope_add(p, &p->sc, acc, e->slot2));
          bool over_list = p->over_list;
          p->over_list = true;
          FAILRC(parse_expr(p, &e->b));
          p->over_list = over_list;
          p->sc.n = saved;
          FAILRC(expect(p, ')'));
          break;
        }
        if (!strcasecmp(name, "exists") && looks_like_pattern(p)) {
          FAILRC(parse_pattern_expr(p, &e, false));
          FAILRC(expect(p, ')'));
          e->src = t->s;
          break;
        }
      }
      FAILRC(parse_func(p, t, name, &e));
      break;
    }
    /* a variable */
    e = mk(p, E_VAR, t);
    if (!e) return qerr_oom(p->q);
    e->name = t->str;
    e->slot = scope_find(&p->sc, t->str);
    if (e->slot < 0) return semerr(p, t->line, t->col, "Variable `%s` not defined", t->str);
    p->i++;
    break;
  }
  default: return unexpected(p, "an expression");
  }
  set_src_end(p, e);
  *out = e;
  return 0;
}

static int parse_postfix(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_atom(p, &e));
  for (;;) {
    qtok *t = TOK;
    if (accept(p, '.')) {
      int type = e->op == E_VAR ? scope_type_of_slot(&p->sc, e->slot) : VT_ANY;
      if (type == VT_PATH || type == VT_RELS || type == VT_LIST)
        return semerr(p, e->line, e->col,
                      "Type mismatch: expected Map, Node, Relationship, Point, Duration, Date, Time, LocalTime, "
                      "LocalDateTime or DateTime but was %s", vt_names[type]);
      qexpr *x = mk(p, E_PROP, t);
      if (!x) return qerr_oom(p->q);
      x->src = e->src;
      x->line = e->line;
      x->col = e->col;
      x->a = e;
      FAILRC(parse_symbol(p, &x->name, "a property key name"));
      set_src_end(p, x);
      e = x;
    } else if (accept(p, '[')) {
      qexpr *x = mk(p, E_INDEX, t), *from = NULL, *to = NULL;
      if (!x) return qerr_oom(p->q);
      x->src = e->src;
      x->a = e;
      if (!at_punct(p, P_DOTDOT)) FAILRC(parse_expr(p, &from));
      if (accept(p, P_DOTDOT)) {
        x->op = E_SLICE;
        if (!at_punct(p, ']')) FAILRC(parse_expr(p, &to));
        x->b = from;
        x->c = to;
      } else {
        if (!from) return unexpected(p, "an expression");
        x->b = from;
      }
      FAILRC(expect(p, ']'));
      set_src_end(p, x);
      e = x;
    } else if (at_punct(p, ':') && is_name_tok(&p->t[p->i + 1])) {
      qexpr *x = mk(p, E_HASLABELS, t);
      if (!x) return qerr_oom(p->q);
      x->src = e->src;
      x->a = e;
      vec labels = {.size = sizeof(char *)};
      while (accept(p, ':')) {
        const char **l = vec_push(p, &labels);
        if (!l) return qerr_oom(p->q);
        FAILRC(parse_symbol(p, l, "a label name"));
      }
      x->keys = labels.items;
      x->nlabels = labels.n;
      set_src_end(p, x);
      e = x;
    } else {
      break;
    }
  }
  *out = e;
  return 0;
}

static int parse_unary(parser *p, qexpr **out) {
  qtok *t = TOK;
  if (at_punct(p, '-')) {
    p->i++;
    /* -9223372036854775808 */
    if (TOK->type == T_INT && TOK->int_overflow && (uint64_t)TOK->i == (uint64_t)INT64_MAX + 1) {
      qexpr *e = mk(p, E_LIT, t);
      if (!e) return qerr_oom(p->q);
      e->lit = qv_int(INT64_MIN);
      p->i++;
      set_src_end(p, e);
      *out = e;
      return 0;
    }
    qexpr *e = mk(p, E_NEG, t);
    if (!e) return qerr_oom(p->q);
    FAILRC(nest_in(p, t));
    FAILRC(parse_unary(p, &e->a));
    p->nest--;
    set_src_end(p, e);
    *out = e;
    return 0;
  }
  if (accept(p, '+')) {
    FAILRC(nest_in(p, t));
    FAILRC(parse_unary(p, out));
    p->nest--;
    return 0;
  }
  return parse_postfix(p, out);
}

static int parse_pow(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_unary(p, &e));
  while (accept(p, '^')) {
    qexpr *b = NULL;
    FAILRC(parse_unary(p, &b));
    FAILRC(mk_bin(p, E_POW, e, b, &e));
  }
  *out = e;
  return 0;
}

static int parse_mul(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_pow(p, &e));
  for (;;) {
    int op = at_punct(p, '*') ? E_MUL : at_punct(p, '/') ? E_DIV : at_punct(p, '%') ? E_MOD : -1;
    if (op < 0) break;
    p->i++;
    qexpr *b = NULL;
    FAILRC(parse_pow(p, &b));
    FAILRC(mk_bin(p, op, e, b, &e));
  }
  *out = e;
  return 0;
}

static int parse_add(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_mul(p, &e));
  for (;;) {
    int op = at_punct(p, '+') ? E_ADD : at_punct(p, '-') ? E_SUB : -1;
    if (op < 0) break;
    p->i++;
    qexpr *b = NULL;
    FAILRC(parse_mul(p, &b));
    FAILRC(mk_bin(p, op, e, b, &e));
  }
  *out = e;
  return 0;
}

static int parse_pred(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_add(p, &e));
  for (;;) {
    int op = -1;
    if (at_kw2(p, "STARTS", "WITH")) op = E_STARTS, p->i += 2;
    else if (at_kw2(p, "ENDS", "WITH")) op = E_ENDS, p->i += 2;
    else if (at_kw(p, "CONTAINS")) op = E_CONTAINS, p->i++;
    else if (at_kw(p, "IN")) op = E_IN, p->i++;
    else if (at_punct(p, P_REGEX)) op = E_REGEX, p->i++;
    else if (at_kw(p, "IS")) {
      p->i++;
      bool neg = accept_kw(p, "NOT");
      FAILRC(expect_kw(p, "NULL"));
      qexpr *x = NULL;
      FAILRC(mk_bin(p, neg ? E_ISNOTNULL : E_ISNULL, e, NULL, &x));
      e = x;
      continue;
    }
    if (op < 0) break;
    qexpr *b = NULL;
    FAILRC(parse_add(p, &b));
    FAILRC(mk_bin(p, op, e, b, &e));
  }
  *out = e;
  return 0;
}

static int cmp_op(parser *p) {
  if (at_punct(p, '=')) return E_EQ;
  if (at_punct(p, P_NE)) return E_NE;
  if (at_punct(p, '<')) return E_LT;
  if (at_punct(p, '>')) return E_GT;
  if (at_punct(p, P_LE)) return E_LE;
  if (at_punct(p, P_GE)) return E_GE;
  return -1;
}

static int parse_cmp(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_pred(p, &e));
  qexpr *last = e, *result = NULL;
  int op;
  while ((op = cmp_op(p)) >= 0) {
    p->i++;
    qexpr *b = NULL, *c = NULL;
    FAILRC(parse_pred(p, &b));
    FAILRC(mk_bin(p, op, last, b, &c));
    if (result) FAILRC(mk_bin(p, E_AND, result, c, &result));
    else result = c;
    last = b;
  }
  *out = result ? result : e;
  return 0;
}

static int parse_not(parser *p, qexpr **out) {
  qtok *t = TOK;
  if (accept_kw(p, "NOT")) {
    qexpr *e = mk(p, E_NOT, t);
    if (!e) return qerr_oom(p->q);
    FAILRC(nest_in(p, t));
    FAILRC(parse_not(p, &e->a));
    p->nest--;
    FAILRC(check_boolean_operand(p, e->a));
    set_src_end(p, e);
    *out = e;
    return 0;
  }
  return parse_cmp(p, out);
}

static int parse_and(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_not(p, &e));
  while (accept_kw(p, "AND")) {
    qexpr *b = NULL;
    FAILRC(parse_not(p, &b));
    FAILRC(mk_bin(p, E_AND, e, b, &e));
  }
  *out = e;
  return 0;
}

static int parse_xor(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_and(p, &e));
  while (accept_kw(p, "XOR")) {
    qexpr *b = NULL;
    FAILRC(parse_and(p, &b));
    FAILRC(mk_bin(p, E_XOR, e, b, &e));
  }
  *out = e;
  return 0;
}

static int parse_or(parser *p, qexpr **out) {
  qexpr *e = NULL;
  FAILRC(parse_xor(p, &e));
  while (accept_kw(p, "OR")) {
    qexpr *b = NULL;
    FAILRC(parse_xor(p, &b));
    FAILRC(mk_bin(p, E_OR, e, b, &e));
  }
  *out = e;
  return 0;
}

/* The depth of e's tree, counted once per node (subtrees an inner
 * parse_expr counted keep theirs); over `budget` it stops, so that its own
 * recursion stays within SL_QUERY_MAX_DEPTH. */
static int expr_depth(qexpr *e, int budget);
static void deeper(int *d, int child) { *d = child > *d ? child : *d; }

static int pattern_depth(qpattern *pat, int budget) {
  int d = 0;
  for (int i = 0; pat && i < pat->npaths && d <= budget; i++) {
    qpath *path = &pat->paths[i];
    for (int j = 0; j <= path->nrels && d <= budget; j++) deeper(&d, expr_depth(path->nodes[j].props, budget));
    for (int j = 0; j < path->nrels && d <= budget; j++) deeper(&d, expr_depth(path->rels[j].props, budget));
  }
  if (pat && d <= budget) deeper(&d, expr_depth(pat->where, budget));
  if (pat && d <= budget) deeper(&d, expr_depth(pat->proj, budget));
  return d;
}

static int expr_depth(qexpr *e, int budget) {
  if (!e) return 0;
  if (e->depth) return e->depth;
  if (budget <= 0) return 1;
  int d = expr_depth(e->a, budget - 1);
  if (d < budget) deeper(&d, expr_depth(e->b, budget - 1));
  if (d < budget) deeper(&d, expr_depth(e->c, budget - 1));
  for (int i = 0; i < e->nargs && d < budget; i++) deeper(&d, expr_depth(e->args[i], budget - 1));
  if (d < budget) deeper(&d, pattern_depth(e->pat, budget - 1));
  if (d >= budget) return d + 1; /* over: not kept, the statement is refused */
  return e->depth = d + 1;
}

/* Every expression, nested ones included, comes through here: the parser's
 * own recursion (parentheses, lists, NOT and signs, which nest here or in
 * parse_unary / parse_not) and the tree's depth are both bounded. */
static int parse_expr(parser *p, qexpr **out) {
  qtok *t = TOK;
  FAILRC(nest_in(p, t));
  FAILRC(parse_or(p, out));
  p->nest--;
  return expr_depth(*out, SL_QUERY_MAX_DEPTH) > SL_QUERY_MAX_DEPTH ? too_deep(p, t) : 0;
}

/* DELETE takes nodes, relationships and paths: a label test ("DELETE n:L",
 * meant as REMOVE) and what can only be a number, string or boolean are
 * refused before anything runs, as Neo4j does. */
static int check_deletable(parser *p, const qtok *t, const qexpr *e) {
  if (e->op == E_HASLABELS) return perr(p, t, "Invalid DELETE: labels are removed with REMOVE, not DELETE");
  bool scalar = (e->op >= E_NOT && e->op <= E_ISNOTNULL) || (e->op == E_LIT && e->lit.kind != SL_NULL);
  if (scalar)
    return perr(p, t, "Type mismatch: DELETE expected Node, Path or Relationship but got %.*s", (int)e->srclen, e->src);
  return 0;
}

/* ---- patterns ----------------------------------------------------------------------------- */
/* A parameter as the whole property map is only for CREATE, as in Neo4j: a
 * MATCH or MERGE must name the keys it compares. */
static int parse_props(parser *p, int mode, qexpr **out) {
  if (at_punct(p, '{')) return parse_map_literal(p, out);
  if (TOK->type == T_PARAM) {
    if (mode != PAT_CREATE)
      return perr(p, TOK, "Parameter maps cannot be used in %s patterns (use a literal map, e.g. {id: $%s.id})",
                  mode == PAT_MERGE ? "MERGE" : "MATCH", TOK->str);
    qexpr *e = mk(p, E_PARAM, TOK);
    if (!e) return qerr_oom(p->q);
    e->name = TOK->str;
    p->i++;
    set_src_end(p, e);
    *out = e;
    return 0;
  }
  *out = NULL;
  return 0;
}

/* Bind a pattern variable: a new one gets a slot in the scope; a known one
 * is bound already (the matcher checks equality), if its type agrees. */
static int bind_var(parser *p, const char *name, const qtok *nt, int type, int *slot, bool *bound) {
  if (!name) {
    *slot = new_slot(p);
    *bound = false;
    return 0;
  }
  int i = scope_index(&p->sc, name);
  if (i >= 0) {
    int had = p->sc.v[i].type;
    bool fits = had == VT_ANY || had == type || (had == VT_RELS && type == VT_REL) || (had == VT_LIST && type == VT_RELS);
    if (!fits)
      return perr(p, nt, "Type mismatch: %s defined with conflicting type %s (expected %s)", name, vt_names[had], vt_names[type]);
    if (type == VT_REL && i >= p->pat_mark)
      return perr(p, nt, "Cannot use the same relationship variable '%s' for multiple relationships", name);
    *slot = p->sc.v[i].slot;
    *bound = true;
    return 0;
  }
  *slot = new_slot(p);
  *bound = false;
  return scope_add_t(p, &p->sc, name, *slot, type);
}

static int parse_node_pat(parser *p, qnodepat *n, int mode) {
  qtok *t0 = TOK;
  FAILRC(expect(p, '('));
  n->line = t0->line;
  n->col = t0->col;
  const char *name = NULL;
  qtok *nt = TOK;
  if (is_name_tok(TOK)) name = TOK->str, p->i++;
  vec labels = {.size = sizeof(char *)};
  while (accept(p, ':')) {
    do {
      const char **l = vec_push(p, &labels);
      if (!l) return qerr_oom(p->q);
      FAILRC(parse_symbol(p, l, "a label name"));
    } while (accept(p, ':') || (mode != PAT_CREATE && mode != PAT_MERGE && accept(p, '&')));
  }
  n->labels = labels.items;
  n->nlabels = labels.n;
  FAILRC(parse_props(p, mode, &n->props));
  FAILRC(expect(p, ')'));
  FAILRC(bind_var(p, name, nt, VT_NODE, &n->slot, &n->bound));
  if (n->bound && (mode == PAT_CREATE || mode == PAT_MERGE) && (n->nlabels || n->props) && name) {
    /* a later mention in the same CREATE pattern of a node it creates is fine
     * only without labels and properties, as in Neo4j */
    return semerr(p, nt->line, nt->col,
                  "Can't create node `%s` with labels or properties here. The variable is already declared in this context",
                  name);
  }
  return 0;
}

static int parse_rel_pat(parser *p, qrelpat *r, int mode) {
  qtok *t0 = TOK;
  r->line = t0->line;
  r->col = t0->col;
  bool left = accept(p, '<');
  FAILRC(expect(p, '-'));
  const char *name = NULL;
  qtok *nt = NULL;
  if (accept(p, '[')) {
    nt = TOK;
    if (is_name_tok(TOK)) name = TOK->str, p->i++;
    vec types = {.size = sizeof(char *)};
    if (accept(p, ':')) {
      do {
        accept(p, ':');
        const char **ty = vec_push(p, &types);
        if (!ty) return qerr_oom(p->q);
        FAILRC(parse_symbol(p, ty, "a relationship type name"));
      } while (accept(p, '|'));
    }
    r->types = types.items;
    r->ntypes = types.n;
    if (accept(p, '*')) {
      r->varlen = true;
      r->min = 1; /* *..N keeps it */
      r->max = QREL_UNBOUNDED;
      if (TOK->type == T_INT) {
        r->min = (uint32_t)TOK->i;
        r->max = r->min;
        p->i++;
      }
      if (accept(p, P_DOTDOT)) {
        r->max = QREL_UNBOUNDED;
        if (TOK->type == T_INT) r->max = (uint32_t)TOK->i, p->i++;
      }
      /* an empty interval (*1..0, *..0) matches nothing; *0 only the start node */
    }
    FAILRC(parse_props(p, mode, &r->props));
    FAILRC(expect(p, ']'));
  }
  FAILRC(expect(p, '-'));
  bool right = accept(p, '>');
  r->dir = left && right ? SL_DIR_BOTH : left ? SL_DIR_IN : right ? SL_DIR_OUT : SL_DIR_BOTH;
  if (left && right) r->dir = SL_DIR_BOTH;
  if (mode == PAT_CREATE || mode == PAT_MERGE) {
    if (r->ntypes != 1)
      return semerr(p, t0->line, t0->col, "Exactly one relationship type must be specified for %s. Did you forget to prefix your relationship type with a ':'?",
                    mode == PAT_CREATE ? "CREATE" : "MERGE");
    if (r->varlen) return semerr(p, t0->line, t0->col, "Variable length relationships cannot be used in %s", mode == PAT_CREATE ? "CREATE" : "MERGE");
    if (mode == PAT_CREATE && r->dir == SL_DIR_BOTH)
      return semerr(p, t0->line, t0->col, "Only directed relationships are supported in CREATE");
  }
  FAILRC(bind_var(p, name, nt ? nt : t0, r->varlen ? VT_RELS : VT_REL, &r->slot, &r->bound));
  if (r->bound && mode == PAT_CREATE && name)
    return semerr(p, nt->line, nt->col, "Can't create relationship `%s`: the variable is already declared in this context", name);
  return 0;
}

static int parse_pattern_path(parser *p, qpath *path, int mode) {
  qtok *t0 = TOK;
  path->line = t0->line;
  path->col = t0->col;
  bool sp = false;
  if (is_kw(TOK, "shortestPath") || is_kw(TOK, "allShortestPaths")) {
    path->shortest = is_kw(TOK, "shortestPath") ? 1 : 2;
    p->i++;
    FAILRC(expect(p, '('));
    sp = true;
  }
  vec nodes = {.size = sizeof(qnodepat)}, rels = {.size = sizeof(qrelpat)};
  qnodepat *n = vec_push(p, &nodes);
  if (!n) return qerr_oom(p->q);
  FAILRC(parse_node_pat(p, n, mode));
  while (at_punct(p, '-') || at_punct(p, '<')) {
    qrelpat *r = vec_push(p, &rels);
    if (!r) return qerr_oom(p->q);
    FAILRC(parse_rel_pat(p, r, mode));
    if (!(n = vec_push(p, &nodes))) return qerr_oom(p->q);
    FAILRC(parse_node_pat(p, n, mode));
  }
  if (sp) {
    FAILRC(expect(p, ')'));
    if (rels.n != 1) return semerr(p, t0->line, t0->col, "shortestPath(...) requires a pattern containing a single relationship");
  }
  path->nodes = nodes.items;
  path->rels = rels.items;
  path->nrels = rels.n;
  return 0;
}

static int scope_index_of_slot(const scope *s, int slot) {
  for (int i = s->n - 1; i >= 0; i--)
    if (s->v[i].slot == slot) return i;
  return 0;
}

static int parse_pattern(parser *p, qpattern *pat, int mode) {
  vec paths = {.size = sizeof(qpath)};
  p->pat_mark = p->sc.n;
  do {
    qpath *path = vec_push(p, &paths);
    if (!path) return qerr_oom(p->q);
    path->slot = -1;
    if (is_name_tok(TOK) && p->t[p->i + 1].type == T_PUNCT && p->t[p->i + 1].punct == '=') {
      qtok *nt = TOK;
      const char *name = TOK->str;
      p->i += 2;
      if (scope_find(&p->sc, name) >= 0) return perr(p, nt, "Variable `%s` already declared", name);
      FAILRC(parse_pattern_path(p, path, mode));
      if (scope_find(&p->sc, name) >= 0) return perr(p, nt, "Variable `%s` already declared", name);
      path->slot = new_slot(p);
      FAILRC(scope_add_t(p, &p->sc, name, path->slot, VT_PATH));
    } else {
      FAILRC(parse_pattern_path(p, path, mode));
    }
    if ((mode == PAT_CREATE || mode == PAT_MERGE) && path->nrels == 0 && path->nodes[0].bound)
      return perr(p, &p->t[p->i - 1], "Variable `%s` already declared",
                  p->sc.v[scope_index_of_slot(&p->sc, path->nodes[0].slot)].name);
  } while (mode != PAT_MERGE && accept(p, ','));
  pat->paths = paths.items;
  pat->npaths = paths.n;
  return 0;
}

/* ---- clauses ---------------------------------------------------------------------------- */
static int parse_where(parser *p, qexpr **out) {
  *out = NULL;
  if (!accept_kw(p, "WHERE")) return 0;
  return parse_expr(p, out);
}

/* The first variable e reads that scope s lacks (local variables of list
 * comprehensions and the like are not in any scope: their slots are
 * ignored when they are bound inside e). */
static const qexpr *var_outside(const qexpr *e, const scope *s) {
  if (!e || e->op == E_AGG) return NULL; /* an aggregate's value comes from the grouping */
  if (e->op == E_VAR) {
    for (int i = 0; i < s->n; i++)
      if (s->v[i].slot == e->slot) return NULL;
    return e->name ? e : NULL;
  }
  const qexpr *r;
  if ((r = var_outside(e->a, s)) || (r = var_outside(e->b, s)) || (r = var_outside(e->c, s))) {
    if ((e->op == E_LISTCOMP || e->op == E_QUANT || e->op == E_REDUCE) && (r->slot == e->slot || r->slot == e->slot2)) return NULL;
    return r;
  }
  for (int i = 0; i < e->nargs; i++)
    if ((r = var_outside(e->args[i], s))) return r;
  return NULL;
}

/* ORDER BY after a projection: the whole expression, or a part of it written
 * as one of the items, reads that item's column instead. Next to an aggregate
 * only a property access may be reused (`ORDER BY me.age + count(x)` after
 * `RETURN me.age AS age`); a larger expression stays ambiguous, as in Neo4j. */
static int use_items(parser *p, const qclause *c, qexpr **e, bool whole, bool parts_any) {
  qexpr *x = *e;
  if (!x || x->op == E_AGG) return 0;
  bool may = whole || parts_any || x->op == E_PROP;
  for (int i = 0; may && i < c->nitems && x->op != E_VAR && x->op != E_LIT && x->op != E_PARAM; i++) {
    const qexpr *ie = c->items[i].e;
    if (ie->srclen == x->srclen && !memcmp(ie->src, x->src, ie->srclen)) {
      qexpr *v = palloc(p, sizeof *v);
      if (!v) return qerr_oom(p->q);
      *v = (qexpr){.op = E_VAR, .line = x->line, .col = x->col, .src = x->src, .srclen = x->srclen,
                   .slot = c->items[i].slot, .name = c->items[i].name};
      *e = v;
      return 0;
    }
  }
  if (x->op == E_LISTCOMP || x->op == E_QUANT || x->op == E_REDUCE || x->op == E_PATTERN || x->op == E_PATCOMP) return 0;
  FAILRC(use_items(p, c, &x->a, false, parts_any));
  FAILRC(use_items(p, c, &x->b, false, parts_any));
  FAILRC(use_items(p, c, &x->c, false, parts_any));
  for (int i = 0; i < x->nargs; i++) FAILRC(use_items(p, c, &x->args[i], false, parts_any));
  return 0;
}

static bool has_agg(const qexpr *e) {
  if (!e) return false;
  if (e->op == E_AGG || e->op == E_COUNTSTAR) return true;
  if (has_agg(e->a) || has_agg(e->b) || has_agg(e->c)) return true;
  for (int i = 0; i < e->nargs; i++)
    if (has_agg(e->args[i])) return true;
  return false;
}

/* An item mixing an aggregate with other values (`me.age + count(x)`) may
 * only use grouping keys beside it, each a variable or property access
 * projected on its own; anything else has no single value per group. */
static int check_agg_item(parser *p, const qclause *c, const qexpr *item, const qexpr *e) {
  if (!e || e->op == E_AGG || e->op == E_COUNTSTAR || e->op == E_LIT || e->op == E_PARAM || !has_agg(item)) return 0;
  if (e->op == E_LISTCOMP || e->op == E_QUANT || e->op == E_REDUCE || e->op == E_PATTERN || e->op == E_PATCOMP) return 0;
  if (e->op == E_VAR || e->op == E_PROP) {
    for (int i = 0; i < c->nitems; i++) {
      const qexpr *k = c->items[i].e;
      if (!has_agg(k) && (k->op == E_VAR || k->op == E_PROP) && k->srclen == e->srclen && !memcmp(k->src, e->src, e->srclen)) return 0;
    }
    if (e->op == E_VAR)
      return semerr(p, e->line, e->col, "Aggregation column contains implicit grouping expressions. `%.*s` must be projected on its own (as a grouping key) to be used beside an aggregate",
                    (int)e->srclen, e->src);
  }
  FAILRC(check_agg_item(p, c, item, e->a));
  FAILRC(check_agg_item(p, c, item, e->b));
  FAILRC(check_agg_item(p, c, item, e->c));
  for (int i = 0; i < e->nargs; i++) FAILRC(check_agg_item(p, c, item, e->args[i]));
  return 0;
}

static int cmp_svar(const void *a, const void *b) { return strcmp(((const svar *)a)->name, ((const svar *)b)->name); }

/* SKIP / LIMIT: an expression of no variable; a literal is checked now. */
static int parse_count(parser *p, qexpr **out) {
  scope keep = p->sc;
  qtok *t0 = TOK;
  p->sc = (scope){0};
  int rc = parse_expr(p, out);
  p->sc = keep;
  if (rc) return rc;
  const qexpr *e = *out;
  bool neg = e->op == E_NEG && e->a->op == E_LIT;
  if (neg) e = e->a;
  if (e->op != E_LIT) return 0;
  if (e->lit.kind != SL_INT) return perr(p, t0, "Invalid input. '%.*s' is not a valid value. Must be a non-negative integer.", (int)(*out)->srclen, (*out)->src);
  if (neg && e->lit.u.v.u.i > 0) return perr(p, t0, "Invalid input. '%.*s' is not a valid value. Must be a non-negative integer.", (int)(*out)->srclen, (*out)->src);
  return 0;
}

/* WITH / RETURN: items in the current scope; then the new scope. */
static int parse_projection(parser *p, qclause *c, bool is_return) {
  c->distinct = accept_kw(p, "DISTINCT");
  vec items = {.size = sizeof(qitem)};
  p->proj = c;
  bool star = false;
  if (accept(p, '*')) {
    star = true;
    /* every named variable in scope, by name */
    svar *vars = palloc(p, sizeof *vars * (size_t)(p->sc.n + 1));
    if (!vars) return qerr_oom(p->q);
    int nv = 0;
    for (int i = 0; i < p->sc.n; i++) {
      bool dup = false;
      for (int j = 0; j < nv; j++) dup |= !strcmp(vars[j].name, p->sc.v[i].name);
      if (!dup) vars[nv++] = p->sc.v[i];
      else
        for (int j = 0; j < nv; j++)
          if (!strcmp(vars[j].name, p->sc.v[i].name)) vars[j] = p->sc.v[i];
    }
    qsort(vars, (size_t)nv, sizeof *vars, cmp_svar);
    for (int i = 0; i < nv; i++) {
      qitem *it = vec_push(p, &items);
      qexpr *e = mk(p, E_VAR, TOK);
      if (!it || !e) return qerr_oom(p->q);
      e->slot = vars[i].slot;
      e->name = vars[i].name;
      it->e = e;
      it->name = vars[i].name;
    }
    if (is_return && !nv) return semerr(p, TOK->line, TOK->col, "RETURN * is not allowed when there are no variables in scope");
  }
  if (!star || accept(p, ',')) {
    do {
      qitem *it = vec_push(p, &items);
      if (!it) return qerr_oom(p->q);
      qtok *t0 = TOK;
      FAILRC(parse_expr(p, &it->e));
      if (accept_kw(p, "AS")) {
        FAILRC(parse_name(p, &it->name, "a variable name"));
      } else if (it->e->op == E_VAR) {
        it->name = it->e->name;
      } else if (!is_return) {
        return semerr(p, t0->line, t0->col, "Expression in WITH must be aliased (use AS)");
      } else {
        it->name = sl_arena_strndup(&p->q->ast, it->e->src, it->e->srclen);
        if (!it->name) return qerr_oom(p->q);
      }
    } while (accept(p, ','));
  }
  p->proj = NULL;
  c->items = items.items;
  c->nitems = items.n;
  if (c->naggs)
    for (int i = 0; i < c->nitems; i++) FAILRC(check_agg_item(p, c, c->items[i].e, c->items[i].e));
  for (int i = 0; i < c->nitems; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(c->items[i].name, c->items[j].name))
        return semerr(p, c->items[i].e->line, c->items[i].e->col,
                      is_return ? "Multiple result columns with the same name are not supported"
                                : "Multiple result columns with the same name are not supported");
  /* the new scope: the items' names; ORDER BY also sees the old one unless
   * the projection aggregates or is DISTINCT */
  scope old = p->sc;
  scope nsc = {0};
  bool grouping = c->naggs > 0;
  for (int i = 0; i < c->nitems; i++) {
    c->items[i].slot = new_slot(p);
    FAILRC(scope_add_t(p, &nsc, c->items[i].name, c->items[i].slot, projected_type(&old, c->items[i].e)));
  }
  if (at_kw2(p, "ORDER", "BY")) {
    p->i += 2;
    /* both scopes while parsing; a grouping or DISTINCT projection then
     * allows the old one only inside an item's expression written again */
    scope both = {0};
    for (int i = 0; i < old.n; i++) FAILRC(scope_add_t(p, &both, old.v[i].name, old.v[i].slot, old.v[i].type));
    for (int i = 0; i < nsc.n; i++) FAILRC(scope_add_t(p, &both, nsc.v[i].name, nsc.v[i].slot, nsc.v[i].type));
    p->sc = both;
    vec order = {.size = sizeof(qexpr *)}, desc = {.size = sizeof(bool)};
    do {
      qexpr **e = vec_push(p, &order);
      bool *d = vec_push(p, &desc);
      if (!e || !d) return qerr_oom(p->q);
      /* an aggregate in ORDER BY must be one of the items, written again */
      qclause scratch = {0};
      p->proj = grouping ? &scratch : NULL;
      int rc = parse_expr(p, e);
      p->proj = NULL;
      if (rc) return rc;
      FAILRC(use_items(p, c, e, true, scratch.naggs == 0));
      /* an aggregate inside an ORDER BY expression: one of the projection's,
       * written again, whose value the grouping operator leaves in q->aggres */
      for (int k = 0; k < scratch.naggs; k++) {
        qexpr *ae = scratch.aggs[k];
        int hit = -1;
        for (int j = 0; j < c->naggs && hit < 0; j++)
          if (c->aggs[j]->srclen == ae->srclen && !memcmp(c->aggs[j]->src, ae->src, ae->srclen)) hit = j;
        if (hit < 0)
          return semerr(p, ae->line, ae->col, "Invalid use of aggregating function %s(...) in this context: ORDER BY may only use the aggregates of the projection",
                        ae->name ? ae->name : "count");
        ae->aggidx = hit;
      }
      const qexpr *old_var;
      if ((grouping || c->distinct) && (old_var = var_outside(*e, &nsc)))
        return semerr(p, old_var->line, old_var->col, "Variable `%s` not defined", old_var->name ? old_var->name : "?");
      if (accept_kw(p, "DESC") || accept_kw(p, "DESCENDING")) *d = true;
      else if (accept_kw(p, "ASC") || accept_kw(p, "ASCENDING")) *d = false;
    } while (accept(p, ','));
    c->order = order.items;
    c->desc = desc.items;
    c->norder = order.n;
  }
  p->sc = nsc;
  if (accept_kw(p, "SKIP")) FAILRC(parse_count(p, &c->skip));
  if (accept_kw(p, "LIMIT")) FAILRC(parse_count(p, &c->limit));
  if (!is_return && at_kw(p, "WHERE")) {
    /* WITH ... WHERE also sees the variables before the projection; when
     * it aggregates or is DISTINCT, only inside an item's expression
     * written again (`WITH DISTINCT a.x AS x WHERE a.x = 1`), as ORDER BY */
    scope both = {0};
    for (int i = 0; i < old.n; i++) FAILRC(scope_add_t(p, &both, old.v[i].name, old.v[i].slot, old.v[i].type));
    for (int i = 0; i < nsc.n; i++) FAILRC(scope_add_t(p, &both, nsc.v[i].name, nsc.v[i].slot, nsc.v[i].type));
    p->sc = both;
    int rc = parse_where(p, &c->where);
    p->sc = nsc;
    if (rc) return rc;
    if (grouping || c->distinct) {
      FAILRC(use_items(p, c, &c->where, true, true));
      const qexpr *old_var = var_outside(c->where, &nsc);
      if (old_var) return semerr(p, old_var->line, old_var->col, "Variable `%s` not defined", old_var->name ? old_var->name : "?");
    }
  }
  return 0;
}

static int parse_set_items(parser *p, vec *out, bool remove) {
  do {
    qsetitem *si = vec_push(p, out);
    if (!si) return qerr_oom(p->q);
    qtok *t0 = TOK;
    si->line = t0->line;
    si->col = t0->col;
    /* the target: a variable, maybe with labels, or an expression ending in .key */
    qexpr *target;
    if (at_punct(p, '(')) {
      p->i++;
      FAILRC(parse_expr(p, &target));
      FAILRC(expect(p, ')'));
    } else {
      const char *name = NULL;
      qtok *nt = TOK;
      FAILRC(parse_name(p, &name, "a variable name"));
      target = mk(p, E_VAR, nt);
      if (!target) return qerr_oom(p->q);
      target->name = name;
      target->slot = scope_find(&p->sc, name);
      if (target->slot < 0) return semerr(p, nt->line, nt->col, "Variable `%s` not defined", name);
      set_src_end(p, target);
    }
    while (at_punct(p, '.')) {
      p->i++;
      const char *key = NULL;
      FAILRC(parse_symbol(p, &key, "a property key name"));
      if (at_punct(p, '.')) {
        qexpr *x = mk(p, E_PROP, t0);
        if (!x) return qerr_oom(p->q);
        x->a = target;
        x->name = key;
        target = x;
        continue;
      }
      si->kind = remove ? SI_REMOVE_PROP : SI_PROP;
      si->key = key;
      si->target = target;
      if (!remove) {
        FAILRC(expect(p, '='));
        FAILRC(parse_expr(p, &si->value));
      }
      goto next;
    }
    si->target = target;
    if (at_punct(p, ':')) {
      vec labels = {.size = sizeof(char *)};
      while (accept(p, ':')) {
        const char **l = vec_push(p, &labels);
        if (!l) return qerr_oom(p->q);
        FAILRC(parse_symbol(p, l, "a label name"));
      }
      si->kind = remove ? SI_REMOVE_LABELS : SI_LABELS;
      si->labels = labels.items;
      si->nlabels = labels.n;
    } else if (!remove && accept(p, '=')) {
      si->kind = SI_REPLACE_MAP;
      FAILRC(parse_expr(p, &si->value));
    } else if (!remove && accept(p, P_PLUSEQ)) {
      si->kind = SI_MERGE_MAP;
      FAILRC(parse_expr(p, &si->value));
    } else {
      return unexpected(p, remove ? "a property or labels to remove" : "'=', '+=' or labels");
    }
  next:;
  } while (accept(p, ','));
  return 0;
}

static int parse_call(parser *p, qclause *c, bool standalone_ok) {
  qtok *t0 = TOK;
  size_t cap = 256;
  char *name = palloc(p, cap);
  if (!name) return qerr_oom(p->q);
  do {
    const char *part = NULL;
    FAILRC(parse_name(p, &part, "a procedure name"));
    if (strlen(name) + strlen(part) + 2 > cap) return perr(p, t0, "procedure name too long");
    if (*name) strcat(name, ".");
    strcat(name, part);
  } while (accept(p, '.'));
  c->proc = name;
  const char *const *cols;
  int ncols;
  if (q_proc_columns(name, &cols, &ncols))
    return qerr(p->q, SL_EINVAL, ST_NOPROC, t0->line, t0->col,
                "There is no procedure with the name `%s` registered for this database instance. Please ensure you've spelled the procedure name correctly and that the procedure is properly deployed.",
                name);
  vec args = {.size = sizeof(qexpr *)};
  if (accept(p, '(')) {
    if (!at_punct(p, ')')) {
      do {
        qexpr **a = vec_push(p, &args);
        if (!a) return qerr_oom(p->q);
        FAILRC(parse_expr(p, a));
      } while (accept(p, ','));
    }
    FAILRC(expect(p, ')'));
  }
  c->args = args.items;
  c->nargs = args.n;
  vec ys = {.size = sizeof(char *)}, yslots = {.size = sizeof(int)};
  if (accept_kw(p, "YIELD")) {
    if (accept(p, '*')) {
      for (int i = 0; i < ncols; i++) {
        const char **y = vec_push(p, &ys);
        int *s = vec_push(p, &yslots);
        if (!y || !s) return qerr_oom(p->q);
        *y = cols[i];
        *s = new_slot(p);
        FAILRC(scope_add(p, &p->sc, cols[i], *s));
      }
    } else {
      do {
        const char *col = NULL, *alias = NULL;
        qtok *ct = TOK;
        FAILRC(parse_name(p, &col, "a procedure output name"));
        alias = col;
        int k;
        for (k = 0; k < ncols; k++)
          if (!strcmp(cols[k], col)) break;
        if (k == ncols) return semerr(p, ct->line, ct->col, "Unknown procedure output: `%s`", col);
        if (accept_kw(p, "AS")) FAILRC(parse_name(p, &alias, "a variable name"));
        const char **y = vec_push(p, &ys);
        int *s = vec_push(p, &yslots);
        if (!y || !s) return qerr_oom(p->q);
        *y = cols[k];
        *s = new_slot(p);
        FAILRC(scope_add(p, &p->sc, alias, *s));
      } while (accept(p, ','));
    }
    FAILRC(parse_where(p, &c->where));
  } else {
    if (!standalone_ok) return semerr(p, t0->line, t0->col, "Procedure call inside a query does not support naming results implicitly (name explicitly using `YIELD` instead)");
    c->standalone = true;
    for (int i = 0; i < ncols; i++) {
      const char **y = vec_push(p, &ys);
      int *s = vec_push(p, &yslots);
      if (!y || !s) return qerr_oom(p->q);
      *y = cols[i];
      *s = new_slot(p);
    }
  }
  c->yields = ys.items;
  c->yslots = yslots.items;
  c->nyields = ys.n;
  return 0;
}

/* Schema statements are statements of their own (schema.c takes them
 * when a statement starts with one): inside a query they are refused. */
static int parse_schema(parser *p, bool *is_schema) {
  *is_schema = at_kw2(p, "CREATE", "INDEX") || at_kw2(p, "CREATE", "CONSTRAINT") || at_kw2(p, "CREATE", "RANGE") ||
               at_kw2(p, "CREATE", "TEXT") || at_kw2(p, "CREATE", "POINT") || at_kw2(p, "CREATE", "FULLTEXT") ||
               at_kw2(p, "CREATE", "LOOKUP") || at_kw(p, "DROP") || at_kw(p, "SHOW");
  if (!*is_schema) return 0;
  return qerr(p->q, SL_EINVAL, ST_SYNTAX, TOK->line, TOK->col, "a schema command (CREATE INDEX/CONSTRAINT, DROP, SHOW) must be a statement of its own");
}

/* The slots of the scope's variables (each once). */
static int scope_slots(parser *p, int **out, int *n) {
  *out = palloc(p, sizeof(int) * (size_t)(p->sc.n + 1));
  if (!*out) return qerr_oom(p->q);
  *n = 0;
  for (int i = 0; i < p->sc.n; i++) {
    bool dup = false;
    for (int j = 0; j < *n && !dup; j++) dup = (*out)[j] == p->sc.v[i].slot;
    if (!dup) (*out)[(*n)++] = p->sc.v[i].slot;
  }
  return 0;
}

static int parse_single(parser *p, qsingle *s, bool first_part) {
  vec clauses = {.size = sizeof(qclause)};
  bool ended = false;
  for (;;) {
    qtok *t = TOK;
    if (t->type == T_EOF || at_punct(p, ';') || at_kw(p, "UNION")) break;
    if (ended) return perr(p, t, "Invalid input '%.*s': RETURN must be the last clause", (int)t->n, t->s);
    qclause *c = vec_push(p, &clauses);
    if (!c) return qerr_oom(p->q);
    c->line = t->line;
    c->col = t->col;
    FAILRC(scope_slots(p, &c->live_in, &c->nlive_in));
    if (at_kw2(p, "OPTIONAL", "MATCH") || at_kw(p, "MATCH")) {
      c->optional = at_kw(p, "OPTIONAL");
      p->i += c->optional ? 2 : 1;
      c->kind = C_MATCH;
      FAILRC(parse_pattern(p, &c->pat, PAT_MATCH));
      FAILRC(parse_where(p, &c->where));
      c->pat.seek_where = c->where; /* here, not in the planner: a parsed statement is never written again */
    } else if (accept_kw(p, "UNWIND")) {
      c->kind = C_UNWIND;
      FAILRC(parse_expr(p, &c->expr));
      FAILRC(expect_kw(p, "AS"));
      const char *name = NULL;
      qtok *nt = TOK;
      FAILRC(parse_name(p, &name, "a variable name"));
      if (scope_find(&p->sc, name) >= 0) return semerr(p, nt->line, nt->col, "Variable `%s` already declared", name);
      c->slot = new_slot(p);
      FAILRC(scope_add(p, &p->sc, name, c->slot));
    } else if (accept_kw(p, "WITH")) {
      c->kind = C_WITH;
      FAILRC(parse_projection(p, c, false));
    } else if (accept_kw(p, "RETURN")) {
      c->kind = C_RETURN;
      FAILRC(parse_projection(p, c, true));
      ended = true;
    } else if (at_kw(p, "CREATE")) {
      bool schema;
      FAILRC(parse_schema(p, &schema));
      p->i++;
      c->kind = C_CREATE;
      FAILRC(parse_pattern(p, &c->pat, PAT_CREATE));
      p->writes = true;
    } else if (accept_kw(p, "MERGE")) {
      c->kind = C_MERGE;
      FAILRC(parse_pattern(p, &c->pat, PAT_MERGE));
      vec oc = {.size = sizeof(qsetitem)}, om = {.size = sizeof(qsetitem)};
      while (at_kw(p, "ON")) {
        p->i++;
        if (accept_kw(p, "CREATE")) {
          FAILRC(expect_kw(p, "SET"));
          FAILRC(parse_set_items(p, &oc, false));
        } else if (accept_kw(p, "MATCH")) {
          FAILRC(expect_kw(p, "SET"));
          FAILRC(parse_set_items(p, &om, false));
        } else {
          return unexpected(p, "CREATE or MATCH");
        }
      }
      c->on_create = oc.items;
      c->non_create = oc.n;
      c->on_match = om.items;
      c->non_match = om.n;
      p->writes = true;
    } else if (accept_kw(p, "SET")) {
      c->kind = C_SET;
      vec si = {.size = sizeof(qsetitem)};
      FAILRC(parse_set_items(p, &si, false));
      c->sets = si.items;
      c->nsets = si.n;
      p->writes = true;
    } else if (accept_kw(p, "REMOVE")) {
      c->kind = C_REMOVE;
      vec si = {.size = sizeof(qsetitem)};
      FAILRC(parse_set_items(p, &si, true));
      c->sets = si.items;
      c->nsets = si.n;
      p->writes = true;
    } else if (at_kw(p, "DELETE") || at_kw2(p, "DETACH", "DELETE")) {
      c->kind = C_DELETE;
      if (accept_kw(p, "DETACH")) c->detach = true;
      p->i++;
      vec dels = {.size = sizeof(qexpr *)};
      do {
        qexpr **e = vec_push(p, &dels);
        if (!e) return qerr_oom(p->q);
        qtok *et = TOK;
        FAILRC(parse_expr(p, e));
        FAILRC(check_deletable(p, et, *e));
      } while (accept(p, ','));
      c->dels = dels.items;
      c->ndels = dels.n;
      p->writes = true;
    } else if (accept_kw(p, "CALL")) {
      c->kind = C_CALL;
      if (at_punct(p, '{')) return perr(p, t, "CALL subqueries are not supported");
      FAILRC(parse_call(p, c, first_part && clauses.n == 1));
      if (c->standalone) ended = true;
    } else {
      bool schema;
      FAILRC(parse_schema(p, &schema));
      if (at_kw(p, "FOREACH") || at_kw(p, "LOAD")) return perr(p, t, "%s is not supported", t->str);
      return unexpected(p, "a clause (MATCH, OPTIONAL MATCH, WITH, UNWIND, RETURN, CREATE, MERGE, SET, REMOVE, DELETE, CALL)");
    }
    FAILRC(scope_slots(p, &c->live_out, &c->nlive_out));
  }
  s->clauses = clauses.items;
  s->nclauses = clauses.n;
  if (!s->nclauses) return unexpected(p, "a clause");
  qclause *last = &s->clauses[s->nclauses - 1];
  bool updating_end = last->kind == C_CREATE || last->kind == C_MERGE || last->kind == C_SET || last->kind == C_REMOVE ||
                      last->kind == C_DELETE;
  if (last->kind == C_RETURN) {
    s->ncols = last->nitems;
    s->cols = palloc(p, sizeof(char *) * (size_t)(s->ncols + 1));
    s->colslots = palloc(p, sizeof(int) * (size_t)(s->ncols + 1));
    if (!s->cols || !s->colslots) return qerr_oom(p->q);
    for (int i = 0; i < s->ncols; i++) {
      s->cols[i] = last->items[i].name;
      s->colslots[i] = last->items[i].slot;
    }
  } else if (last->kind == C_CALL && last->standalone) {
    s->ncols = last->nyields;
    s->cols = last->yields;
    s->colslots = last->yslots;
  } else if (last->kind == C_CALL && s->nclauses == 1) {
    s->ncols = last->nyields;
    s->cols = last->yields;
    s->colslots = last->yslots;
  } else if (!updating_end) {
    return qerr(p->q, SL_EINVAL, ST_SYNTAX, last->line, last->col,
                "Query cannot conclude with %s (must be a RETURN clause, an update clause, a unit subquery call, or a procedure call with no YIELD)",
                last->kind == C_MATCH ? "MATCH" : last->kind == C_WITH ? "WITH" : last->kind == C_UNWIND ? "UNWIND" : "CALL");
  }
  return 0;
}

/* The parameters the text names, so that a run without one of them fails
 * before it starts, naming them all, as Neo4j's ParameterMissing does
 * (and not only when an evaluation reaches one). */
static int collect_params(parser *p, qstmt *s) {
  int n = 0;
  for (int i = 0; i < p->nt; i++) n += p->t[i].type == T_PARAM;
  if (!n) return 0;
  if (!(s->params = palloc(p, sizeof *s->params * (size_t)n))) return qerr_oom(p->q);
  for (int i = 0; i < p->nt; i++) {
    if (p->t[i].type != T_PARAM) continue;
    int k = 0;
    while (k < s->nparams && strcmp(s->params[k]->str, p->t[i].str)) k++;
    if (k == s->nparams) s->params[s->nparams++] = &p->t[i];
  }
  return 0;
}

int q_parse(qctx *q) {
  parser P = {.q = q}, *p = &P;
  FAILRC(q_lex(q, &p->t, &p->nt));
  if (q_schema_statement(p->t, p->nt)) return q_schema_parse(q, p->t, p->nt);
  qstmt *s = palloc(p, sizeof *s);
  if (!s) return qerr_oom(q);
  vec parts = {.size = sizeof(qsingle)};
  uint8_t explain = accept_kw(p, "EXPLAIN") ? Q_EXPLAIN : accept_kw(p, "PROFILE") ? Q_PROFILE : 0;
  for (;;) {
    qsingle *part = vec_push(p, &parts);
    if (!part) return qerr_oom(q);
    p->sc.n = 0;
    FAILRC(parse_single(p, part, parts.n == 1));
    if (!at_kw(p, "UNION")) break;
    qtok *ut = TOK;
    p->i++;
    bool all = accept_kw(p, "ALL");
    if (parts.n > 1 && all != s->union_all)
      return semerr(p, ut->line, ut->col, "Invalid combination of UNION and UNION ALL");
    s->union_all = all;
  }
  accept(p, ';');
  if (TOK->type != T_EOF) return unexpected(p, "end of input");
  s->parts = parts.items;
  s->nparts = parts.n;
  s->ncols = s->parts[0].ncols;
  s->cols = s->parts[0].cols;
  for (int i = 1; i < s->nparts; i++) {
    qsingle *part = &s->parts[i];
    bool same = part->ncols == s->ncols;
    for (int j = 0; same && j < s->ncols; j++) same = !strcmp(part->cols[j], s->cols[j]);
    if (!same) {
      qclause *c = &part->clauses[0];
      return semerr(p, c->line, c->col, "All sub queries in an UNION must have the same return column names");
    }
  }
  s->writes = p->writes;
  s->explain = explain;
  s->nslots = p->nslots;
  FAILRC(collect_params(p, s));
  q->stmt = s;
  return 0;
}
