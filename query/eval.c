/*
 * Expressions and functions. q_eval computes one expression against q->row
 * into q->tmp, with Cypher's null rules (most operators and functions give
 * null for a null input; AND/OR/XOR are three-valued) and its type rules
 * (a wrong kind is Neo.ClientError.Statement.TypeError, an integer overflow
 * or division by zero ArithmeticError). Aggregates (E_AGG, E_COUNTSTAR) read
 * the results that the grouping operator placed in q->aggres.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"

#define ST_ARITH "Neo.ClientError.Statement.ArithmeticError"
static int type_err(qctx *q, qexpr *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int type_err(qctx *q, qexpr *e, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s", msg);
}

static bool is_num(const qv *v) { return v->kind == SL_INT || v->kind == SL_DOUBLE; }
static double num(const qv *v) { return v->kind == SL_INT ? (double)v->u.v.u.i : v->u.v.u.d; }

static int make_list(qctx *q, size_t n, qv **items, qv *out) {
  out->kind = SL_QLIST;
  out->u.list.n = n;
  qv *it = sl_arena_alloc(&q->tmp, sizeof *it * (n ? n : 1));
  if (!it) return qerr_oom(q);
  out->u.list.items = it;
  *items = it;
  return 0;
}

static int make_str(qctx *q, const char *s, size_t n, qv *out) {
  char *p = sl_arena_strndup(&q->tmp, s, n);
  if (!p) return qerr_oom(q);
  *out = qv_str(p, n);
  return 0;
}

/* ---- operators ---------------------------------------------------------------------------- */
static int temporal_arith(qctx *q, qexpr *e, const qv *a, const qv *b, qv *out, bool *done);

static int arith(qctx *q, qexpr *e, const qv *a, const qv *b, qv *out) {
  if (a->kind == SL_NULL || b->kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  int op = e->op;
  if (a->kind == SL_DURATION || b->kind == SL_DURATION) {
    bool done;
    int rc = temporal_arith(q, e, a, b, out, &done);
    if (rc || done) return rc;
  }
  if (op == E_ADD) {
    if (a->kind == SL_QLIST || b->kind == SL_QLIST) {
      size_t na = a->kind == SL_QLIST ? a->u.list.n : 1, nb = b->kind == SL_QLIST ? b->u.list.n : 1;
      qv *items = NULL;
      TRY(make_list(q, na + nb, &items, out));
      if (a->kind != SL_QLIST) items[0] = *a;
      else if (na) memcpy(items, a->u.list.items, sizeof *items * na); /* [] may have no items */
      if (b->kind != SL_QLIST) items[na] = *b;
      else if (nb) memcpy(items + na, b->u.list.items, sizeof *items * nb);
      return 0;
    }
    if (a->kind == SL_STRING || b->kind == SL_STRING) {
      size_t la, lb;
      const char *sa = qv_text(q, &q->tmp, a, &la), *sb = qv_text(q, &q->tmp, b, &lb);
      if (!sa || !sb || (a->kind != SL_STRING && !is_num(a) && a->kind != SL_BOOL) ||
          (b->kind != SL_STRING && !is_num(b) && b->kind != SL_BOOL))
        return type_err(q, e, "Cannot add `%s` and `%s`", qv_type_name(a), qv_type_name(b));
      char *s = sl_arena_alloc(&q->tmp, la + lb + 1);
      if (!s) return qerr_oom(q);
      memcpy(s, sa, la);
      memcpy(s + la, sb, lb);
      s[la + lb] = 0;
      *out = qv_str(s, la + lb);
      return 0;
    }
  }
  if (!is_num(a) || !is_num(b)) {
    static const char *verbs[] = {[E_ADD] = "add", [E_SUB] = "subtract", [E_MUL] = "multiply", [E_DIV] = "divide", [E_MOD] = "modulo", [E_POW] = "raise"};
    return type_err(q, e, "Cannot %s `%s` and `%s`", verbs[op], qv_type_name(a), qv_type_name(b));
  }
  if (a->kind == SL_INT && b->kind == SL_INT && op != E_POW) {
    int64_t x = a->u.v.u.i, y = b->u.v.u.i, r;
    bool of = false;
    switch (op) {
    case E_ADD: of = __builtin_add_overflow(x, y, &r); break;
    case E_SUB: of = __builtin_sub_overflow(x, y, &r); break;
    case E_MUL: of = __builtin_mul_overflow(x, y, &r); break;
    case E_DIV:
      if (y == 0) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "/ by zero");
      if (x == INT64_MIN && y == -1) of = true;
      else r = x / y;
      break;
    default:
      if (y == 0) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "/ by zero");
      r = (y == -1) ? 0 : x % y;
      break;
    }
    if (of) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
    *out = qv_int(r);
    return 0;
  }
  double x = num(a), y = num(b), r;
  switch (op) {
  case E_ADD: r = x + y; break;
  case E_SUB: r = x - y; break;
  case E_MUL: r = x * y; break;
  case E_DIV: r = x / y; break;
  case E_MOD: r = fmod(x, y); break;
  default: r = pow(x, y); break;
  }
  *out = qv_double(r);
  return 0;
}

static int tern(int t) { return t; }
static qv tern_val(int t) { return t < 0 ? qv_null() : qv_bool(t); }
static int truth(qctx *q, qexpr *e, const qv *v, int *t) {
  if (v->kind == SL_NULL) *t = -1;
  else if (v->kind == SL_BOOL) *t = v->u.v.u.b;
  else return type_err(q, e, "Type mismatch: expected Boolean but was %s", qv_type_name(v));
  return 0;
}

static int str_pred(qctx *q, qexpr *e, const qv *a, const qv *b, qv *out) {
  if (a->kind != SL_STRING || b->kind != SL_STRING) {
    *out = qv_null();
    return 0;
  }
  const char *s = a->u.v.u.s, *t = b->u.v.u.s;
  size_t n = a->u.v.len, m = b->u.v.len;
  bool r = false;
  if (e->op == E_STARTS) r = m <= n && !memcmp(s, t, m);
  else if (e->op == E_ENDS) r = m <= n && !memcmp(s + n - m, t, m);
  else if (e->op == E_CONTAINS) r = m == 0 || (m <= n && memmem(s, n, t, m));
  else {
    char *pat = sl_arena_alloc(&q->tmp, m + 8), *subj = sl_arena_strndup(&q->tmp, s, n);
    if (!pat || !subj) return qerr_oom(q);
    snprintf(pat, m + 8, "^(%.*s)$", (int)m, t);
    regex_t re;
    if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB))
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Invalid Regex: %.*s", (int)m, t);
    r = regexec(&re, subj, 0, NULL, 0) == 0;
    regfree(&re);
  }
  *out = qv_bool(r);
  return 0;
}

static int in_list(qctx *q, qexpr *e, const qv *x, const qv *list, qv *out) {
  if (list->kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (list->kind != SL_QLIST) return type_err(q, e, "Type mismatch: expected List<T> but was %s", qv_type_name(list));
  bool unknown = false;
  for (size_t i = 0; i < list->u.list.n; i++) {
    int eq = qv_equal(x, &list->u.list.items[i]);
    if (eq == 1) {
      *out = qv_bool(true);
      return 0;
    }
    if (eq < 0) unknown = true;
  }
  *out = unknown ? qv_null() : qv_bool(false);
  return 0;
}

static int list_index(int64_t i, size_t n, size_t *out) {
  if (i < 0) i += (int64_t)n;
  if (i < 0 || (uint64_t)i >= n) return 0;
  *out = (size_t)i;
  return 1;
}

static int get_key(qctx *q, qexpr *e, const qv *obj, const char *key, qv *out) {
  switch (obj->kind) {
  case SL_DATE:
  case SL_LOCALTIME:
  case SL_TIME:
  case SL_LOCALDATETIME:
  case SL_DATETIME:
  case SL_DURATION: return temporal_field(q, e, obj, key, out);
  case SL_NULL: *out = qv_null(); return 0;
  case SL_QMAP:
    for (size_t i = 0; i < obj->u.map.n; i++)
      if (!strcmp(obj->u.map.entries[i].key, key)) {
        *out = obj->u.map.entries[i].value;
        return 0;
      }
    *out = qv_null();
    return 0;
  case SL_QNODE:
  case SL_QREL: return q_prop(q, obj, key, out);
  case SL_POINT: {
    const sl_value *p = &obj->u.v;
    bool geo = p->u.pt.srid == SL_SRID_WGS84 || p->u.pt.srid == SL_SRID_WGS84_3D;
    bool three = p->u.pt.srid == SL_SRID_CARTESIAN_3D || p->u.pt.srid == SL_SRID_WGS84_3D;
    if (!strcmp(key, "x") || (geo && !strcmp(key, "longitude"))) *out = qv_double(p->u.pt.x);
    else if (!strcmp(key, "y") || (geo && !strcmp(key, "latitude"))) *out = qv_double(p->u.pt.y);
    else if (three && (!strcmp(key, "z") || (geo && !strcmp(key, "height")))) *out = qv_double(p->u.pt.z);
    else if (!strcmp(key, "srid")) *out = qv_int(p->u.pt.srid);
    else if (!strcmp(key, "crs")) {
      const char *n = sl_srid_name(p->u.pt.srid);
      *out = n ? qv_str(n, strlen(n)) : qv_null();
    } else
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "No such field: %s", key);
    return 0;
  }
  default:
    return type_err(q, e, "Type mismatch: expected a map but was %s", qv_type_name(obj));
  }
}

static int eval_index(qctx *q, qexpr *e, qv *out) {
  qv a, b;
  TRY(q_eval(q, e->a, &a));
  TRY(q_eval(q, e->b, &b));
  if (a.kind == SL_NULL || b.kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (a.kind == SL_QLIST) {
    if (b.kind != SL_INT) return type_err(q, e, "Type mismatch: expected Integer but was %s", qv_type_name(&b));
    size_t i;
    *out = list_index(b.u.v.u.i, a.u.list.n, &i) ? a.u.list.items[i] : qv_null();
    return 0;
  }
  if (a.kind == SL_QMAP || a.kind == SL_QNODE || a.kind == SL_QREL) {
    if (b.kind != SL_STRING) return type_err(q, e, "Type mismatch: expected String but was %s", qv_type_name(&b));
    char *key = sl_arena_strndup(&q->tmp, b.u.v.u.s, b.u.v.len);
    if (!key) return qerr_oom(q);
    return get_key(q, e, &a, key, out);
  }
  return type_err(q, e, "Type mismatch: expected List<T> or Map but was %s", qv_type_name(&a));
}

static int eval_slice(qctx *q, qexpr *e, qv *out) {
  qv a, f = qv_null(), t = qv_null();
  TRY(q_eval(q, e->a, &a));
  if (e->b) TRY(q_eval(q, e->b, &f));
  if (e->c) TRY(q_eval(q, e->c, &t));
  if (a.kind == SL_NULL || (e->b && f.kind == SL_NULL) || (e->c && t.kind == SL_NULL)) {
    *out = qv_null();
    return 0;
  }
  if (a.kind != SL_QLIST) return type_err(q, e, "Type mismatch: expected List<T> but was %s", qv_type_name(&a));
  if ((e->b && f.kind != SL_INT) || (e->c && t.kind != SL_INT)) return type_err(q, e, "Type mismatch: expected Integer");
  int64_t n = (int64_t)a.u.list.n, from = e->b ? f.u.v.u.i : 0, to = e->c ? t.u.v.u.i : n;
  if (from < 0) from += n;
  if (to < 0) to += n;
  if (from < 0) from = 0;
  if (to > n) to = n;
  *out = a;
  if (from >= to) {
    out->u.list.n = 0;
    return 0;
  }
  out->u.list.items = a.u.list.items + from;
  out->u.list.n = (size_t)(to - from);
  return 0;
}

static int eval_case(qctx *q, qexpr *e, qv *out) {
  qv subj;
  if (e->a) TRY(q_eval(q, e->a, &subj));
  for (int i = 0; i + 1 < e->nargs; i += 2) {
    qv w;
    TRY(q_eval(q, e->args[i], &w));
    bool hit = e->a ? qv_equal(&subj, &w) == 1 : qv_true(&w);
    if (hit) return q_eval(q, e->args[i + 1], out);
  }
  if (e->c) return q_eval(q, e->c, out);
  *out = qv_null();
  return 0;
}

static int eval_listcomp(qctx *q, qexpr *e, qv *out) {
  qv list;
  TRY(q_eval(q, e->a, &list));
  if (list.kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (list.kind != SL_QLIST) return type_err(q, e, "Type mismatch: expected List<T> but was %s", qv_type_name(&list));
  qv *items = NULL;
  TRY(make_list(q, list.u.list.n, &items, out));
  size_t n = 0;
  qv saved = q->row[e->slot];
  for (size_t i = 0; i < list.u.list.n; i++) {
    q->row[e->slot] = list.u.list.items[i];
    if (e->b) {
      qv w;
      TRY(q_eval(q, e->b, &w));
      if (!qv_true(&w)) continue;
    }
    if (e->c) TRY(q_eval(q, e->c, &items[n++]));
    else items[n++] = list.u.list.items[i];
  }
  q->row[e->slot] = saved;
  out->u.list.n = n;
  return 0;
}

static int eval_quant(qctx *q, qexpr *e, qv *out) {
  qv list;
  TRY(q_eval(q, e->a, &list));
  if (list.kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (list.kind != SL_QLIST) return type_err(q, e, "Type mismatch: expected List<T> but was %s", qv_type_name(&list));
  size_t trues = 0, nulls = 0;
  qv saved = q->row[e->slot];
  for (size_t i = 0; i < list.u.list.n; i++) {
    q->row[e->slot] = list.u.list.items[i];
    qv w;
    TRY(q_eval(q, e->b, &w));
    if (w.kind == SL_NULL) nulls++;
    else if (qv_true(&w)) trues++;
  }
  q->row[e->slot] = saved;
  size_t n = list.u.list.n, falses = n - trues - nulls;
  int t;
  switch (e->agg) {
  case Q_ALL: t = falses ? 0 : nulls ? -1 : 1; break;
  case Q_ANY: t = trues ? 1 : nulls ? -1 : 0; break;
  case Q_NONE: t = trues ? 0 : nulls ? -1 : 1; break;
  default: t = trues > 1 ? 0 : nulls ? -1 : trues == 1; break;
  }
  *out = tern_val(t);
  return 0;
}

static int eval_reduce(qctx *q, qexpr *e, qv *out) {
  qv list, acc;
  TRY(q_eval(q, e->c, &acc));
  TRY(q_eval(q, e->a, &list));
  if (list.kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (list.kind != SL_QLIST) return type_err(q, e, "Type mismatch: expected List<T> but was %s", qv_type_name(&list));
  for (size_t i = 0; i < list.u.list.n; i++) {
    q->row[e->slot] = list.u.list.items[i];
    q->row[e->slot2] = acc;
    TRY(q_eval(q, e->b, &acc));
  }
  *out = acc;
  return 0;
}

static int node_labels(qctx *q, uint64_t id, sl_node *n) {
  int rc = sl_view_node(q->view, id, n);
  if (rc == SL_ENOTFOUND) {
    if (q->stats.nodes_deleted) return q_deleted_entity(q, true, id);
    memset(n, 0, sizeof *n);
    return 0;
  }
  return rc ? qerr_store(q, rc, 0, 0) : 0;
}

static int eval_haslabels(qctx *q, qexpr *e, qv *out) {
  qv a;
  TRY(q_eval(q, e->a, &a));
  if (a.kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  if (a.kind != SL_QNODE) return type_err(q, e, "Type mismatch: expected Node but was %s", qv_type_name(&a));
  sl_node n;
  TRY(node_labels(q, a.u.node.id, &n));
  for (int i = 0; i < e->nlabels; i++) {
    bool found = false;
    for (size_t j = 0; j < n.nlabels && !found; j++) found = !strcmp(n.labels[j], e->keys[i]);
    if (!found) {
      *out = qv_bool(false);
      return 0;
    }
  }
  *out = qv_bool(true);
  return 0;
}

static int eval_patcomp(qctx *q, qexpr *e, qv *out) {
  /* the matcher binds into q->row: keep the row's slots it may touch */
  sl_arena *a = &q->tmp;
  qmatch *m;
  TRY(qmatch_new(q, e->pat, a, &m));
  size_t n = 0, cap = 8;
  qv *items = sl_arena_alloc(a, sizeof *items * cap);
  if (!items) return qerr_oom(q);
  int rc;
  while ((rc = qmatch_next(q, m)) == 1) {
    if (e->pat->where) {
      qv w;
      if ((rc = q_eval(q, e->pat->where, &w))) break;
      if (!qv_true(&w)) continue;
    }
    if (n == cap) {
      qv *ni = sl_arena_alloc(a, sizeof *ni * cap * 2);
      if (!ni) {
        rc = qerr_oom(q);
        break;
      }
      memcpy(ni, items, sizeof *ni * n);
      items = ni;
      cap *= 2;
    }
    if ((rc = q_eval(q, e->pat->proj, &items[n]))) break;
    if ((rc = qv_copy(a, &items[n], &items[n]))) {
      rc = qerr_oom(q);
      break;
    }
    n++;
  }
  qmatch_free(m);
  if (rc < 0) return rc;
  out->kind = SL_QLIST;
  out->u.list.n = n;
  out->u.list.items = items;
  return 0;
}

static int find_param(qctx *q, qexpr *e, qv *out) {
  for (size_t i = 0; i < q->nparams; i++)
    if (!strcmp(q->params[i].name, e->name)) {
      *out = q->params[i].value;
      return 0;
    }
  return qerr(q, SL_EINVAL, ST_PARAM, e->line, e->col, "Expected parameter(s): %s", e->name);
}

int q_eval(qctx *q, qexpr *e, qv *out) {
  qv a, b;
  int ta = 0, tb = 0;
  switch (e->op) {
  case E_LIT: *out = e->lit; return 0;
  case E_PARAM: return find_param(q, e, out);
  case E_VAR: *out = q->row[e->slot]; return 0;
  case E_PROP:
    TRY(q_eval(q, e->a, &a));
    return get_key(q, e, &a, e->name, out);
  case E_INDEX: return eval_index(q, e, out);
  case E_SLICE: return eval_slice(q, e, out);
  case E_LIST: {
    qv *items = NULL;
    TRY(make_list(q, (size_t)e->nargs, &items, out));
    for (int i = 0; i < e->nargs; i++) TRY(q_eval(q, e->args[i], &items[i]));
    return 0;
  }
  case E_MAP: {
    sl_qentry *es = sl_arena_alloc(&q->tmp, sizeof *es * (size_t)(e->nargs ? e->nargs : 1));
    if (!es) return qerr_oom(q);
    size_t n = 0;
    for (int i = 0; i < e->nargs; i++) {
      qv v;
      TRY(q_eval(q, e->args[i], &v));
      size_t j;
      for (j = 0; j < n; j++)
        if (!strcmp(es[j].key, e->keys[i])) break;
      es[j].key = e->keys[i];
      es[j].value = v;
      if (j == n) n++;
    }
    out->kind = SL_QMAP;
    out->u.map.n = n;
    out->u.map.entries = es;
    return 0;
  }
  case E_FUNC: {
    qv *args = sl_arena_alloc(&q->tmp, sizeof *args * (size_t)(e->nargs ? e->nargs : 1));
    if (!args) return qerr_oom(q);
    for (int i = 0; i < e->nargs; i++) TRY(q_eval(q, e->args[i], &args[i]));
    return e->fn(q, e, args, out);
  }
  case E_AGG:
  case E_COUNTSTAR:
    if (!q->aggres) return qerr(q, SL_EINVAL, ST_SEMANTIC, e->line, e->col, "Invalid use of aggregating function in this context");
    *out = q->aggres[e->aggidx];
    return 0;
  case E_NOT:
    TRY(q_eval(q, e->a, &a));
    TRY(truth(q, e, &a, &ta));
    *out = tern_val(ta < 0 ? -1 : !ta);
    return 0;
  case E_NEG:
    TRY(q_eval(q, e->a, &a));
    if (a.kind == SL_NULL) *out = a;
    else if (a.kind == SL_INT) {
      if (a.u.v.u.i == INT64_MIN) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
      *out = qv_int(-a.u.v.u.i);
    } else if (a.kind == SL_DOUBLE) *out = qv_double(-a.u.v.u.d);
    else return type_err(q, e, "Cannot negate `%s`", qv_type_name(&a));
    return 0;
  case E_AND:
  case E_OR:
  case E_XOR:
    TRY(q_eval(q, e->a, &a));
    TRY(truth(q, e, &a, &ta));
    if (e->op == E_AND && ta == 0) {
      *out = qv_bool(false);
      /* still type-check the right side like Neo4j? it short-circuits */
      return 0;
    }
    if (e->op == E_OR && ta == 1) {
      *out = qv_bool(true);
      return 0;
    }
    TRY(q_eval(q, e->b, &b));
    TRY(truth(q, e, &b, &tb));
    if (e->op == E_AND) *out = tern_val(tb == 0 ? 0 : (ta < 0 || tb < 0) ? -1 : 1);
    else if (e->op == E_OR) *out = tern_val(tb == 1 ? 1 : (ta < 0 || tb < 0) ? -1 : 0);
    else *out = tern_val((ta < 0 || tb < 0) ? -1 : ta != tb);
    return 0;
  case E_EQ:
  case E_NE:
    TRY(q_eval(q, e->a, &a));
    TRY(q_eval(q, e->b, &b));
    ta = qv_equal(&a, &b);
    *out = tern_val(ta < 0 ? -1 : e->op == E_EQ ? ta : !ta);
    return 0;
  case E_LT:
  case E_LE:
  case E_GT:
  case E_GE: {
    TRY(q_eval(q, e->a, &a));
    TRY(q_eval(q, e->b, &b));
    int c;
    if (!qv_compare(&a, &b, &c)) {
      /* NaN is a number: comparing it with a number is false, not null */
      bool nan = (a.kind == SL_DOUBLE && isnan(a.u.v.u.d)) || (b.kind == SL_DOUBLE && isnan(b.u.v.u.d));
      *out = nan && is_num(&a) && is_num(&b) ? qv_bool(false) : qv_null();
      return 0;
    }
    bool r = e->op == E_LT ? c < 0 : e->op == E_LE ? c <= 0 : e->op == E_GT ? c > 0 : c >= 0;
    *out = qv_bool(r);
    return 0;
  }
  case E_ADD:
  case E_SUB:
  case E_MUL:
  case E_DIV:
  case E_MOD:
  case E_POW:
    TRY(q_eval(q, e->a, &a));
    TRY(q_eval(q, e->b, &b));
    return arith(q, e, &a, &b, out);
  case E_IN:
    TRY(q_eval(q, e->a, &a));
    TRY(q_eval(q, e->b, &b));
    return in_list(q, e, &a, &b, out);
  case E_STARTS:
  case E_ENDS:
  case E_CONTAINS:
  case E_REGEX:
    TRY(q_eval(q, e->a, &a));
    TRY(q_eval(q, e->b, &b));
    return str_pred(q, e, &a, &b, out);
  case E_ISNULL:
  case E_ISNOTNULL:
    TRY(q_eval(q, e->a, &a));
    *out = qv_bool((a.kind == SL_NULL) == (e->op == E_ISNULL));
    return 0;
  case E_CASE: return eval_case(q, e, out);
  case E_LISTCOMP: return eval_listcomp(q, e, out);
  case E_QUANT: return eval_quant(q, e, out);
  case E_REDUCE: return eval_reduce(q, e, out);
  case E_HASLABELS: return eval_haslabels(q, e, out);
  case E_PATTERN: {
    bool any;
    TRY(q_pattern_exists(q, e->pat, &any));
    *out = qv_bool(any);
    return 0;
  }
  case E_PATCOMP: return eval_patcomp(q, e, out);
  default: return qerr(q, SL_EINVAL, ST_GENERAL, e->line, e->col, "unknown expression");
  }
  (void)tern;
}

/* ---- functions -------------------------------------------------------------------------- */
#define FN(name) static int fn_##name(qctx *q, qexpr *e, qv *args, qv *out)
#define NULL_IN(i)               \
  if (args[i].kind == SL_NULL) { \
    *out = qv_null();            \
    return 0;                    \
  }
#define ARG_ERR(what, i) return type_err(q, e, "Type mismatch: expected %s but was %s", what, qv_type_name(&args[i]))

FN(id) {
  NULL_IN(0);
  if (args[0].kind == SL_QNODE) *out = qv_int((int64_t)args[0].u.node.id);
  else if (args[0].kind == SL_QREL) *out = qv_int((int64_t)args[0].u.rel.id);
  else ARG_ERR("Node or Relationship", 0);
  return 0;
}

FN(elementid) {
  NULL_IN(0);
  char buf[SL_ELEMENT_ID_MAX];
  if (args[0].kind == SL_QNODE) q_element_id(q, false, args[0].u.node.id, buf);
  else if (args[0].kind == SL_QREL) q_element_id(q, true, args[0].u.rel.id, buf);
  else ARG_ERR("Node or Relationship", 0);
  return make_str(q, buf, strlen(buf), out);
}

FN(labels) {
  NULL_IN(0);
  if (args[0].kind != SL_QNODE) ARG_ERR("Node", 0);
  sl_node n;
  TRY(node_labels(q, args[0].u.node.id, &n));
  qv *items = NULL;
  TRY(make_list(q, n.nlabels, &items, out));
  for (size_t i = 0; i < n.nlabels; i++) TRY(make_str(q, n.labels[i], strlen(n.labels[i]), &items[i]));
  return 0;
}

static int rel_type(qctx *q, const qv *r, const char **type) {
  if (r->u.rel.type) {
    *type = r->u.rel.type;
    return 0;
  }
  sl_rel rel;
  int rc = sl_view_rel(q->view, r->u.rel.id, &rel);
  if (rc) return qerr_store(q, rc, 0, 0);
  *type = sl_arena_strndup(&q->tmp, rel.type, strlen(rel.type));
  return *type ? 0 : qerr_oom(q);
}

FN(type) {
  NULL_IN(0);
  if (args[0].kind != SL_QREL) ARG_ERR("Relationship", 0);
  const char *t;
  TRY(rel_type(q, &args[0], &t));
  return make_str(q, t, strlen(t), out);
}

static int entity_props(qctx *q, const qv *ent, qv *out) {
  const sl_prop *props;
  size_t n;
  int rc;
  if (ent->kind == SL_QNODE) {
    sl_node nd;
    rc = sl_view_node(q->view, ent->u.node.id, &nd);
    props = nd.props;
    n = nd.nprops;
  } else {
    sl_rel r;
    rc = sl_view_rel(q->view, ent->u.rel.id, &r);
    props = r.props;
    n = r.nprops;
  }
  if (rc == SL_ENOTFOUND && (q->stats.nodes_deleted || q->stats.relationships_deleted))
    return q_deleted_entity(q, ent->kind == SL_QNODE, ent->kind == SL_QNODE ? ent->u.node.id : ent->u.rel.id);
  if (rc == SL_ENOTFOUND) n = 0;
  else if (rc) return qerr_store(q, rc, 0, 0);
  sl_qentry *es = sl_arena_alloc(&q->tmp, sizeof *es * (n ? n : 1));
  if (!es) return qerr_oom(q);
  for (size_t i = 0; i < n; i++) {
    es[i].key = sl_arena_strndup(&q->tmp, props[i].key, strlen(props[i].key));
    if (!es[i].key || qv_from_prop(&q->tmp, &props[i].value, &es[i].value)) return qerr_oom(q);
  }
  out->kind = SL_QMAP;
  out->u.map.n = n;
  out->u.map.entries = es;
  return 0;
}

FN(properties) {
  NULL_IN(0);
  if (args[0].kind == SL_QMAP) {
    *out = args[0];
    return 0;
  }
  if (args[0].kind != SL_QNODE && args[0].kind != SL_QREL) ARG_ERR("a Map, Node or Relationship", 0);
  return entity_props(q, &args[0], out);
}

FN(keys) {
  NULL_IN(0);
  qv m = args[0];
  if (m.kind == SL_QNODE || m.kind == SL_QREL) TRY(entity_props(q, &args[0], &m));
  else if (m.kind != SL_QMAP) ARG_ERR("a Map, Node or Relationship", 0);
  qv *items = NULL;
  TRY(make_list(q, m.u.map.n, &items, out));
  for (size_t i = 0; i < m.u.map.n; i++) items[i] = qv_str(m.u.map.entries[i].key, strlen(m.u.map.entries[i].key));
  return 0;
}

FN(startnode) {
  NULL_IN(0);
  if (args[0].kind != SL_QREL) ARG_ERR("Relationship", 0);
  *out = qv_node(args[0].u.rel.start);
  return 0;
}

FN(endnode) {
  NULL_IN(0);
  if (args[0].kind != SL_QREL) ARG_ERR("Relationship", 0);
  *out = qv_node(args[0].u.rel.end);
  return 0;
}

FN(nodes) {
  NULL_IN(0);
  if (args[0].kind != SL_QPATH) ARG_ERR("Path", 0);
  qv *items = NULL;
  TRY(make_list(q, args[0].u.path.nnodes, &items, out));
  for (size_t i = 0; i < args[0].u.path.nnodes; i++) items[i] = qv_node(args[0].u.path.nodes[i].id);
  return 0;
}

FN(relationships) {
  NULL_IN(0);
  if (args[0].kind != SL_QPATH) ARG_ERR("Path", 0);
  qv *items = NULL;
  TRY(make_list(q, args[0].u.path.nrels, &items, out));
  for (size_t i = 0; i < args[0].u.path.nrels; i++) {
    items[i].kind = SL_QREL;
    items[i].u.rel = args[0].u.path.rels[i];
  }
  return 0;
}

static size_t utf8_len(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
  return c;
}

/* byte offset of the character at index ci */
static size_t utf8_off(const char *s, size_t n, size_t ci) {
  size_t i = 0, c = 0;
  while (i < n && c < ci) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80) i++;
    c++;
  }
  return i;
}

FN(length) {
  NULL_IN(0);
  if (args[0].kind == SL_QPATH) *out = qv_int((int64_t)args[0].u.path.nrels);
  else if (args[0].kind == SL_STRING) *out = qv_int((int64_t)utf8_len(args[0].u.v.u.s, args[0].u.v.len));
  else if (args[0].kind == SL_QLIST) *out = qv_int((int64_t)args[0].u.list.n);
  else ARG_ERR("Path", 0);
  return 0;
}

FN(size) {
  NULL_IN(0);
  if (args[0].kind == SL_QLIST) *out = qv_int((int64_t)args[0].u.list.n);
  else if (args[0].kind == SL_STRING) *out = qv_int((int64_t)utf8_len(args[0].u.v.u.s, args[0].u.v.len));
  else ARG_ERR("a String or List<T>", 0);
  return 0;
}

FN(head) {
  NULL_IN(0);
  if (args[0].kind != SL_QLIST) ARG_ERR("List<T>", 0);
  *out = args[0].u.list.n ? args[0].u.list.items[0] : qv_null();
  return 0;
}

FN(last) {
  NULL_IN(0);
  if (args[0].kind != SL_QLIST) ARG_ERR("List<T>", 0);
  *out = args[0].u.list.n ? args[0].u.list.items[args[0].u.list.n - 1] : qv_null();
  return 0;
}

FN(tail) {
  NULL_IN(0);
  if (args[0].kind != SL_QLIST) ARG_ERR("List<T>", 0);
  *out = args[0];
  if (out->u.list.n) {
    out->u.list.n--;
    out->u.list.items++;
  }
  return 0;
}

FN(isempty) {
  NULL_IN(0);
  if (args[0].kind == SL_QLIST) *out = qv_bool(args[0].u.list.n == 0);
  else if (args[0].kind == SL_STRING) *out = qv_bool(args[0].u.v.len == 0);
  else if (args[0].kind == SL_QMAP) *out = qv_bool(args[0].u.map.n == 0);
  else ARG_ERR("a String, List<T> or Map", 0);
  return 0;
}

int q_range_bounds(qctx *q, const qexpr *e, const qv *args, int64_t *from, int64_t *step, uint64_t *count) {
  for (int i = 0; i < e->nargs; i++)
    if (args[i].kind != SL_INT)
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Invalid argument to range(): expected Integer but was %s", qv_type_name(&args[i]));
  int64_t to = args[1].u.v.u.i;
  *from = args[0].u.v.u.i;
  *step = e->nargs > 2 ? args[2].u.v.u.i : 1;
  if (*step == 0) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Step argument to range() can't be 0");
  __int128 cnt = 0;
  if ((*step > 0 && *from <= to) || (*step < 0 && *from >= to)) cnt = ((__int128)to - *from) / *step + 1;
  *count = (uint64_t)cnt; /* at most 2^64 - 1: from and to are int64 */
  return 0;
}

FN(range) {
  int64_t from, step;
  uint64_t cnt;
  TRY(q_range_bounds(q, e, args, &from, &step, &cnt));
  if (cnt > 100000000) return qerr(q, SL_EINVAL, ST_OOM, e->line, e->col, "range() of %llu elements exceeds the memory limit", (unsigned long long)cnt);
  qv *items = NULL;
  TRY(make_list(q, (size_t)cnt, &items, out));
  for (int64_t i = 0; i < (int64_t)cnt; i++) items[i] = qv_int(from + i * step);
  return 0;
}

bool q_is_range(const qexpr *e) { return e->op == E_FUNC && e->fn == fn_range; }

FN(reverse) {
  NULL_IN(0);
  if (args[0].kind == SL_QLIST) {
    size_t n = args[0].u.list.n;
    qv *items = NULL;
    TRY(make_list(q, n, &items, out));
    for (size_t i = 0; i < n; i++) items[i] = args[0].u.list.items[n - 1 - i];
    return 0;
  }
  if (args[0].kind == SL_STRING) {
    const char *s = args[0].u.v.u.s;
    size_t n = args[0].u.v.len;
    char *r = sl_arena_alloc(&q->tmp, n + 1);
    if (!r) return qerr_oom(q);
    size_t o = n;
    for (size_t i = 0; i < n;) {
      size_t cl = 1;
      while (i + cl < n && ((unsigned char)s[i + cl] & 0xc0) == 0x80) cl++;
      o -= cl;
      memcpy(r + o, s + i, cl);
      i += cl;
    }
    r[n] = 0;
    *out = qv_str(r, n);
    return 0;
  }
  ARG_ERR("a String or List<T>", 0);
}

FN(coalesce) {
  (void)q;
  for (int i = 0; i < e->nargs; i++)
    if (args[i].kind != SL_NULL) {
      *out = args[i];
      return 0;
    }
  *out = qv_null();
  return 0;
}

FN(exists) {
  (void)q, (void)e;
  *out = qv_bool(args[0].kind != SL_NULL);
  return 0;
}

FN(tostring) {
  NULL_IN(0);
  size_t n;
  const char *s = qv_text(q, &q->tmp, &args[0], &n);
  if (!s) ARG_ERR("a String, Number, Boolean, temporal or spatial value", 0);
  *out = qv_str(s, n);
  return 0;
}

static int parse_int_text(const char *s, size_t n, qv *out) {
  char buf[64];
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (!n || n >= sizeof buf) return 0;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (!*end && errno == 0) {
    *out = qv_int(v);
    return 1;
  }
  double d = strtod(buf, &end);
  if (*end || isnan(d) || isinf(d) || d >= 9.2233720368547758e18 || d < -9.2233720368547758e18) return 0;
  *out = qv_int((int64_t)d);
  return 1;
}

FN(tointeger) {
  (void)e;
  NULL_IN(0);
  switch (args[0].kind) {
  case SL_INT: *out = args[0]; return 0;
  case SL_DOUBLE: {
    double d = args[0].u.v.u.d;
    if (isnan(d) || d >= 9.2233720368547758e18 || d < -9.2233720368547758e18)
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "integer, %s, is too large", "value");
    *out = qv_int((int64_t)d);
    return 0;
  }
  case SL_BOOL: *out = qv_int(args[0].u.v.u.b); return 0;
  case SL_STRING:
    if (!parse_int_text(args[0].u.v.u.s, args[0].u.v.len, out)) *out = qv_null();
    return 0;
  default: ARG_ERR("a String, Float, Integer or Boolean", 0);
  }
}

FN(tofloat) {
  NULL_IN(0);
  switch (args[0].kind) {
  case SL_DOUBLE: *out = args[0]; return 0;
  case SL_INT: *out = qv_double((double)args[0].u.v.u.i); return 0;
  case SL_STRING: {
    char buf[400];
    size_t n = args[0].u.v.len;
    if (n >= sizeof buf) {
      *out = qv_null();
      return 0;
    }
    memcpy(buf, args[0].u.v.u.s, n);
    buf[n] = 0;
    char *end;
    double d = strtod(buf, &end);
    while (*end && isspace((unsigned char)*end)) end++;
    *out = (end == buf || *end) ? qv_null() : qv_double(d);
    return 0;
  }
  default: ARG_ERR("a String, Float or Integer", 0);
  }
}

FN(toboolean) {
  NULL_IN(0);
  switch (args[0].kind) {
  case SL_BOOL: *out = args[0]; return 0;
  case SL_INT: *out = qv_bool(args[0].u.v.u.i != 0); return 0;
  case SL_STRING: {
    const char *s = args[0].u.v.u.s;
    size_t n = args[0].u.v.len;
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n == 4 && !strncasecmp(s, "true", 4)) *out = qv_bool(true);
    else if (n == 5 && !strncasecmp(s, "false", 5)) *out = qv_bool(false);
    else *out = qv_null();
    return 0;
  }
  default: ARG_ERR("a String, Boolean or Integer", 0);
  }
}

#define NUM_ARG(i)                       \
  NULL_IN(i);                            \
  if (!is_num(&args[i])) ARG_ERR("a Number", i)

FN(abs) {
  NUM_ARG(0);
  if (args[0].kind == SL_INT) {
    if (args[0].u.v.u.i == INT64_MIN) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
    *out = qv_int(args[0].u.v.u.i < 0 ? -args[0].u.v.u.i : args[0].u.v.u.i);
  } else {
    *out = qv_double(fabs(args[0].u.v.u.d));
  }
  return 0;
}

FN(ceil) { NUM_ARG(0); *out = qv_double(ceil(num(&args[0]))); return 0; }
FN(floor) { NUM_ARG(0); *out = qv_double(floor(num(&args[0]))); return 0; }
FN(sqrt) { NUM_ARG(0); *out = qv_double(sqrt(num(&args[0]))); return 0; }
FN(exp) { NUM_ARG(0); *out = qv_double(exp(num(&args[0]))); return 0; }
FN(log) { NUM_ARG(0); *out = qv_double(log(num(&args[0]))); return 0; }
FN(log10) { NUM_ARG(0); *out = qv_double(log10(num(&args[0]))); return 0; }
FN(sin) { NUM_ARG(0); *out = qv_double(sin(num(&args[0]))); return 0; }
FN(cos) { NUM_ARG(0); *out = qv_double(cos(num(&args[0]))); return 0; }
FN(tan) { NUM_ARG(0); *out = qv_double(tan(num(&args[0]))); return 0; }
FN(asin) { NUM_ARG(0); *out = qv_double(asin(num(&args[0]))); return 0; }
FN(acos) { NUM_ARG(0); *out = qv_double(acos(num(&args[0]))); return 0; }
FN(atan) { NUM_ARG(0); *out = qv_double(atan(num(&args[0]))); return 0; }
FN(atan2) { NUM_ARG(0); NUM_ARG(1); *out = qv_double(atan2(num(&args[0]), num(&args[1]))); return 0; }
FN(degrees) { NUM_ARG(0); *out = qv_double(num(&args[0]) * 180.0 / M_PI); return 0; }
FN(radians) { NUM_ARG(0); *out = qv_double(num(&args[0]) * M_PI / 180.0); return 0; }
FN(pi) { (void)q, (void)e, (void)args; *out = qv_double(M_PI); return 0; }
FN(e) { (void)q, (void)e, (void)args; *out = qv_double(M_E); return 0; }

FN(round) {
  NUM_ARG(0);
  double d = num(&args[0]);
  if (e->nargs > 1) {
    NUM_ARG(1);
    double f = pow(10, num(&args[1]));
    *out = qv_double(round(d * f) / f);
    return 0;
  }
  /* Java's Math.round: half up */
  *out = qv_double(floor(d + 0.5));
  if (isnan(d) || isinf(d)) *out = qv_double(d);
  return 0;
}

FN(sign) {
  NUM_ARG(0);
  double d = num(&args[0]);
  *out = qv_int(d > 0 ? 1 : d < 0 ? -1 : 0);
  return 0;
}

FN(rand) {
  (void)q, (void)e, (void)args;
  *out = qv_double((double)random() / ((double)RAND_MAX + 1.0));
  return 0;
}

FN(timestamp) {
  (void)q, (void)e, (void)args;
  *out = qv_int((int64_t)(sl_now_us() / 1000));
  return 0;
}

FN(randomuuid) {
  (void)e, (void)args;
  char buf[40];
  unsigned r[8];
  for (int i = 0; i < 8; i++) r[i] = (unsigned)random() & 0xffff;
  snprintf(buf, sizeof buf, "%04x%04x-%04x-4%03x-%04x-%04x%04x%04x", r[0], r[1], r[2], r[3] & 0xfff,
           (r[4] & 0x3fff) | 0x8000, r[5], r[6], r[7]);
  return make_str(q, buf, strlen(buf), out);
}

#define STR_ARG(i)                        \
  NULL_IN(i);                             \
  if (args[i].kind != SL_STRING) ARG_ERR("a String", i)

static int map_chars(qctx *q, const qv *in, int (*f)(int), qv *out) {
  size_t n = in->u.v.len;
  char *s = sl_arena_alloc(&q->tmp, n + 1);
  if (!s) return qerr_oom(q);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in->u.v.u.s[i];
    s[i] = c < 0x80 ? (char)f(c) : (char)c;
  }
  s[n] = 0;
  *out = qv_str(s, n);
  return 0;
}

FN(tolower) { STR_ARG(0); return map_chars(q, &args[0], tolower, out); }
FN(toupper) { STR_ARG(0); return map_chars(q, &args[0], toupper, out); }

static int trim_impl(qctx *q, qexpr *e, qv *args, qv *out, bool left, bool right) {
  STR_ARG(0);
  const char *s = args[0].u.v.u.s;
  size_t n = args[0].u.v.len;
  while (left && n && isspace((unsigned char)*s)) s++, n--;
  while (right && n && isspace((unsigned char)s[n - 1])) n--;
  *out = qv_str(s, n);
  return 0;
}
FN(trim) { return trim_impl(q, e, args, out, true, true); }
FN(ltrim) { return trim_impl(q, e, args, out, true, false); }
FN(rtrim) { return trim_impl(q, e, args, out, false, true); }

FN(replace) {
  STR_ARG(0);
  STR_ARG(1);
  STR_ARG(2);
  const char *s = args[0].u.v.u.s, *f = args[1].u.v.u.s, *r = args[2].u.v.u.s;
  size_t n = args[0].u.v.len, fn = args[1].u.v.len, rn = args[2].u.v.len;
  size_t cap = n + 1, o = 0;
  if (fn == 0) {
    /* Java's replace("", r): r between every character and at both ends */
    cap = n + (utf8_len(s, n) + 1) * rn + 1;
  } else if (rn > fn) {
    cap = n + (n / fn + 1) * (rn - fn) + 1;
  }
  char *d = sl_arena_alloc(&q->tmp, cap);
  if (!d) return qerr_oom(q);
  if (fn == 0) {
    memcpy(d + o, r, rn), o += rn;
    for (size_t i = 0; i < n;) {
      size_t cl = 1;
      while (i + cl < n && ((unsigned char)s[i + cl] & 0xc0) == 0x80) cl++;
      memcpy(d + o, s + i, cl), o += cl, i += cl;
      memcpy(d + o, r, rn), o += rn;
    }
  } else {
    for (size_t i = 0; i < n;) {
      if (i + fn <= n && !memcmp(s + i, f, fn)) {
        memcpy(d + o, r, rn), o += rn, i += fn;
      } else {
        d[o++] = s[i++];
      }
    }
  }
  d[o] = 0;
  *out = qv_str(d, o);
  return 0;
}

FN(split) {
  STR_ARG(0);
  NULL_IN(1);
  const char *s = args[0].u.v.u.s;
  size_t n = args[0].u.v.len;
  qv *seps = &args[1];
  size_t nseps = 1;
  if (args[1].kind == SL_QLIST) {
    seps = (qv *)args[1].u.list.items;
    nseps = args[1].u.list.n;
  }
  for (size_t i = 0; i < nseps; i++)
    if (seps[i].kind != SL_STRING) ARG_ERR("a String", 1);
  size_t cap = n + 2, cnt = 0;
  qv *items = NULL;
  TRY(make_list(q, cap, &items, out));
  size_t start = 0;
  bool empty_sep = nseps == 1 && seps[0].u.v.len == 0;
  if (empty_sep) {
    for (size_t i = 0; i < n;) {
      size_t cl = 1;
      while (i + cl < n && ((unsigned char)s[i + cl] & 0xc0) == 0x80) cl++;
      items[cnt++] = qv_str(s + i, cl);
      i += cl;
    }
    out->u.list.n = cnt;
    return 0;
  }
  for (size_t i = 0; i <= n;) {
    size_t hit = 0;
    for (size_t k = 0; k < nseps && i < n; k++) {
      size_t m = seps[k].u.v.len;
      if (m && i + m <= n && !memcmp(s + i, seps[k].u.v.u.s, m)) {
        hit = m;
        break;
      }
    }
    if (hit) {
      items[cnt++] = qv_str(s + start, i - start);
      i += hit;
      start = i;
    } else if (i == n) {
      items[cnt++] = qv_str(s + start, n - start);
      break;
    } else {
      i++;
    }
  }
  out->u.list.n = cnt;
  return 0;
}

static int int_arg(qctx *q, qexpr *e, qv *args, int i, int64_t *out) {
  if (args[i].kind != SL_INT) {
    if (args[i].kind == SL_NULL) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Expected an integer but was null");
    ARG_ERR("Integer", i);
  }
  *out = args[i].u.v.u.i;
  return 0;
}

FN(substring) {
  NULL_IN(0);
  if (args[0].kind != SL_STRING) ARG_ERR("a String", 0);
  int64_t start = 0, len = INT64_MAX;
  TRY(int_arg(q, e, args, 1, &start));
  if (e->nargs > 2) TRY(int_arg(q, e, args, 2, &len));
  if (start < 0 || len < 0) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "negative start or length in substring()");
  const char *s = args[0].u.v.u.s;
  size_t n = args[0].u.v.len, chars = utf8_len(s, n);
  if ((uint64_t)start > chars) start = (int64_t)chars;
  size_t b = utf8_off(s, n, (size_t)start);
  size_t end = (uint64_t)len >= chars - (size_t)start ? n : utf8_off(s, n, (size_t)start + (size_t)len);
  *out = qv_str(s + b, end - b);
  return 0;
}

FN(left) {
  NULL_IN(0);
  if (args[0].kind != SL_STRING) ARG_ERR("a String", 0);
  int64_t len = 0;
  TRY(int_arg(q, e, args, 1, &len));
  if (len < 0) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "negative length in left()");
  const char *s = args[0].u.v.u.s;
  size_t n = args[0].u.v.len;
  *out = qv_str(s, utf8_off(s, n, (size_t)len));
  return 0;
}

FN(right) {
  NULL_IN(0);
  if (args[0].kind != SL_STRING) ARG_ERR("a String", 0);
  int64_t len = 0;
  TRY(int_arg(q, e, args, 1, &len));
  if (len < 0) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "negative length in right()");
  const char *s = args[0].u.v.u.s;
  size_t n = args[0].u.v.len, chars = utf8_len(s, n);
  size_t skip = (uint64_t)len >= chars ? 0 : chars - (size_t)len;
  size_t b = utf8_off(s, n, skip);
  *out = qv_str(s + b, n - b);
  return 0;
}

/* ---- temporal values from maps ----------------------------------------------------------- */
static const qv *map_key(const qv *m, const char *key) {
  for (size_t i = 0; i < m->u.map.n; i++)
    if (!strcasecmp(m->u.map.entries[i].key, key)) return &m->u.map.entries[i].value;
  return NULL;
}

/* A whole-number component of a temporal map (default def when absent). */
static int map_int(qctx *q, qexpr *e, const qv *m, const char *key, int64_t def, int64_t *out, bool *given) {
  const qv *v = map_key(m, key);
  if (given) *given = v && v->kind != SL_NULL;
  if (!v || v->kind == SL_NULL) {
    *out = def;
    return 0;
  }
  if (v->kind == SL_INT) *out = v->u.v.u.i;
  else if (v->kind == SL_DOUBLE && v->u.v.u.d == floor(v->u.v.u.d) && fabs(v->u.v.u.d) < 9e18) *out = (int64_t)v->u.v.u.d;
  else return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s must be an integer, not %s", key, qv_type_name(v));
  return 0;
}

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

static int year_text(int64_t y, char *buf, size_t n) {
  return y >= 0 && y <= 9999 ? snprintf(buf, n, "%04lld", (long long)y) : snprintf(buf, n, "%+lld", (long long)y);
}

/* The text of a map's date (year, month/day, week/dayOfWeek, ordinalDay,
 * quarter/dayOfQuarter) as sl_temporal_parse reads it. */
static int map_date_text(qctx *q, qexpr *e, const qv *m, char *buf, size_t n) {
  int64_t y, a, b;
  bool has_y, has;
  char yt[32];
  if (map_int(q, e, m, "year", 0, &y, &has_y)) return -1;
  if (!has_y) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "year must be specified");
  year_text(y, yt, sizeof yt);
  if (map_int(q, e, m, "week", 1, &a, &has) || map_int(q, e, m, "dayOfWeek", 1, &b, NULL)) return -1;
  if (has) return snprintf(buf, n, "%s-W%02lld-%lld", yt, (long long)a, (long long)b);
  if (map_int(q, e, m, "ordinalDay", 1, &a, &has)) return -1;
  if (has) return snprintf(buf, n, "%s-%03lld", yt, (long long)a);
  if (map_int(q, e, m, "quarter", 1, &a, &has) || map_int(q, e, m, "dayOfQuarter", 1, &b, NULL)) return -1;
  if (has) {
    if (a < 1 || a > 4 || b < 1 || b > 92) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "invalid quarter or dayOfQuarter");
    int64_t days = days_from_civil(y, (a - 1) * 3 + 1, 1) + b - 1, yy, mm, dd;
    civil_from_days(days, &yy, &mm, &dd);
    if (yy != y || (mm - 1) / 3 + 1 != a) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "dayOfQuarter %lld is not in quarter %lld", (long long)b, (long long)a);
    return snprintf(buf, n, "%s-%02lld-%02lld", yt, (long long)mm, (long long)dd);
  }
  if (map_int(q, e, m, "month", 1, &a, NULL) || map_int(q, e, m, "day", 1, &b, NULL)) return -1;
  return snprintf(buf, n, "%s-%02lld-%02lld", yt, (long long)a, (long long)b);
}

static int map_time_text(qctx *q, qexpr *e, const qv *m, char *buf, size_t n) {
  int64_t h, mi, sec, ms, us, ns;
  bool has_ms, has_us, has_ns;
  if (map_int(q, e, m, "hour", 0, &h, NULL) || map_int(q, e, m, "minute", 0, &mi, NULL) ||
      map_int(q, e, m, "second", 0, &sec, NULL) || map_int(q, e, m, "millisecond", 0, &ms, &has_ms) ||
      map_int(q, e, m, "microsecond", 0, &us, &has_us) || map_int(q, e, m, "nanosecond", 0, &ns, &has_ns))
    return -1;
  if ((has_ms && (ms < 0 || ms > 999)) || (has_us && (us < 0 || us > (has_ms ? 999 : 999999))) ||
      (has_ns && (ns < 0 || ns > (has_us || has_ms ? 999 : 999999999))))
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "invalid value for a fraction of a second");
  int64_t frac = ms * 1000000 + us * 1000 + ns;
  return snprintf(buf, n, "%02lld:%02lld:%02lld.%09lld", (long long)h, (long long)mi, (long long)sec, (long long)frac);
}

static int map_zone_text(qctx *q, qexpr *e, const qv *m, char *buf, size_t n) {
  const qv *z = map_key(m, "timezone");
  if (!z || z->kind == SL_NULL) return snprintf(buf, n, "%s", "");
  if (z->kind != SL_STRING) return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "timezone must be a string");
  const char *s = z->u.v.u.s;
  if (z->u.v.len && (s[0] == '+' || s[0] == '-' || s[0] == 'Z' || s[0] == 'z'))
    return snprintf(buf, n, "%.*s", (int)z->u.v.len, s);
  return snprintf(buf, n, "[%.*s]", (int)z->u.v.len, s);
}

/* *out = the duration of months, days and nanoseconds given as real
 * numbers, the fractions cascading down as Neo4j's do (a month is
 * 30.436875 days, a day 86400 s). A component no int64 holds is "long
 * overflow" (fuzz_query: duration({days: 4.4e23}), a duration times 1e30). */
static int duration_cascade(qctx *q, qexpr *e, long double months, long double days, long double nanos, qv *out) {
  long double wm = truncl(months);
  days += (months - wm) * 30.436875L;
  long double wd = truncl(days);
  nanos += (days - wd) * 86400e9L;
  long double ws = truncl(nanos / 1e9L);
  if (!(fabsl(wm) < 0x1p63L && fabsl(wd) < 0x1p63L && fabsl(ws) < 0x1p63L)) /* NaN too */
    return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
  memset(out, 0, sizeof *out);
  out->kind = SL_DURATION;
  out->u.v.kind = SL_DURATION;
  out->u.v.u.dur.months = (int64_t)wm;
  out->u.v.u.dur.days = (int64_t)wd;
  out->u.v.u.dur.seconds = (int64_t)ws;
  out->u.v.u.dur.nanos = (int32_t)llroundl(nanos - ws * 1e9L);
  return 0;
}

static int duration_from_map(qctx *q, qexpr *e, const qv *m, qv *out) {
  static const struct {
    const char *key;
    int unit;  /* 0 months, 1 days, 2 nanoseconds */
    double mul;
  } units[] = {{"years", 0, 12},     {"months", 0, 1},   {"weeks", 1, 7},
               {"days", 1, 1},       {"hours", 2, 3600e9}, {"minutes", 2, 60e9},
               {"seconds", 2, 1e9},  {"milliseconds", 2, 1e6}, {"microseconds", 2, 1e3},
               {"nanoseconds", 2, 1}};
  long double months = 0, days = 0, nanos = 0;
  for (size_t i = 0; i < m->u.map.n; i++) {
    size_t k;
    for (k = 0; k < SL_ARRAY_LEN(units); k++)
      if (!strcasecmp(units[k].key, m->u.map.entries[i].key)) break;
    if (k == SL_ARRAY_LEN(units))
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "No such field: %s", m->u.map.entries[i].key);
    const qv *v = &m->u.map.entries[i].value;
    if (v->kind == SL_NULL) continue;
    if (!is_num(v)) return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s must be a number", units[k].key);
    if (!isfinite(num(v)))
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s must be a finite number", units[k].key);
    long double x = (long double)num(v) * units[k].mul;
    if (units[k].unit == 0) months += x;
    else if (units[k].unit == 1) days += x;
    else nanos += x;
  }
  return duration_cascade(q, e, months, days, nanos, out);
}

/* The fields of a temporal value as map entries (base of a temporal map:
 * {date: d, week: 2}, {datetime: dt, timezone: ...}). For a value of kind
 * `into`: a time has no named zone, so it takes the offset in force. */
static int temporal_base(qctx *q, qexpr *e, const qv *t, bool want_date, bool want_time, sl_kind into, sl_qentry *es,
                         size_t *n) {
  static const char *const date_keys[] = {"year", "month", "day"};
  static const char *const time_keys[] = {"hour", "minute", "second", "nanosecond"};
  bool has_date = t->kind == SL_DATE || t->kind == SL_LOCALDATETIME || t->kind == SL_DATETIME;
  bool has_time = t->kind != SL_DATE;
  if (want_date && has_date)
    for (size_t i = 0; i < 3; i++) {
      es[*n].key = date_keys[i];
      if (temporal_field(q, e, t, date_keys[i], &es[*n].value)) return SL_EINVAL;
      (*n)++;
    }
  if (want_time && has_time) {
    for (size_t i = 0; i < 4; i++) {
      es[*n].key = time_keys[i];
      if (temporal_field(q, e, t, time_keys[i], &es[*n].value)) return SL_EINVAL;
      (*n)++;
    }
    if (t->kind == SL_TIME || t->kind == SL_DATETIME) {
      es[*n].key = "timezone";
      if (temporal_field(q, e, t, into == SL_TIME ? "offset" : "timezone", &es[*n].value)) return SL_EINVAL;
      (*n)++;
    }
  }
  return 0;
}

/* ISO week-year, week and day of week of a day. */
void iso_week(int64_t days, int64_t *wy, int64_t *week, int64_t *dow) {
  *dow = ((days % 7) + 7 + 3) % 7 + 1;
  int64_t thursday = days - (*dow - 1) + 3, y, m, d;
  civil_from_days(thursday, &y, &m, &d);
  *wy = y;
  *week = (thursday - days_from_civil(y, 1, 1)) / 7 + 1;
}

/* A map with base temporal values ({date: ..}, {time: ..}, {datetime: ..})
 * expanded into the plain fields; the map's own fields win. */
static int expand_base(qctx *q, qexpr *e, const qv *m, sl_kind into, qv *out) {
  const qv *bd = map_key(m, "date"), *bt = map_key(m, "time"), *bdt = map_key(m, "datetime");
  if (!bd && !bt && !bdt) {
    *out = *m;
    return 0;
  }
  sl_qentry *es = sl_arena_alloc(&q->tmp, sizeof *es * (m->u.map.n + 24));
  if (!es) return qerr_oom(q);
  size_t n = 0;
  bool week_based = map_key(m, "week") != NULL;
  /* a new timezone for a zoned base keeps the base's instant */
  const qv *tz = map_key(m, "timezone");
  qv zbdt, zbt;
  if (tz && bdt) {
    TRY(temporal_to_zone(q, e, bdt, tz, &zbdt));
    bdt = &zbdt;
  }
  if (tz && bt) {
    TRY(temporal_to_zone(q, e, bt, tz, &zbt));
    bt = &zbt;
  }
  if (bdt && bdt->kind != SL_NULL) TRY(temporal_base(q, e, bdt, !bd && !week_based, !bt, into, es, &n));
  if (bd && bd->kind != SL_NULL && !week_based) TRY(temporal_base(q, e, bd, true, false, into, es, &n));
  const qv *wbase = bd ? bd : bdt;
  if (week_based && wbase && wbase->kind != SL_NULL) {
    qv dd;
    TRY(temporal_field(q, e, wbase, "year", &dd));
    int64_t y = dd.u.v.u.i, mo, d, wy, wk, dow;
    TRY(temporal_field(q, e, wbase, "month", &dd));
    mo = dd.u.v.u.i;
    TRY(temporal_field(q, e, wbase, "day", &dd));
    d = dd.u.v.u.i;
    iso_week(days_from_civil(y, mo, d), &wy, &wk, &dow);
    es[n].key = "year", es[n++].value = qv_int(wy);
    es[n].key = "dayOfWeek", es[n++].value = qv_int(dow);
  }
  /* a new quarter keeps the base's day of the quarter, as java.time's with(QUARTER_OF_YEAR) */
  if (map_key(m, "quarter") && !map_key(m, "dayOfQuarter") && wbase && wbase->kind != SL_NULL) {
    es[n].key = "dayOfQuarter";
    TRY(temporal_field(q, e, wbase, "dayOfQuarter", &es[n].value));
    n++;
  }
  if (bt && bt->kind != SL_NULL) TRY(temporal_base(q, e, bt, false, true, into, es, &n));
  for (size_t i = 0; i < m->u.map.n; i++) {
    const char *k = m->u.map.entries[i].key;
    if (!strcasecmp(k, "date") || !strcasecmp(k, "time") || !strcasecmp(k, "datetime")) continue;
    size_t j;
    for (j = 0; j < n; j++)
      if (!strcasecmp(es[j].key, k)) break;
    /* a smaller unit given: the base's smaller units go (a new second drops the base's nanoseconds) */
    es[j] = m->u.map.entries[i];
    if (j == n) n++;
  }
  out->kind = SL_QMAP;
  out->u.map.n = n;
  out->u.map.entries = es;
  return 0;
}

int temporal_from_map(qctx *q, qexpr *e, const qv *m0, sl_kind kind, qv *out) {
  if (kind == SL_DURATION) return duration_from_map(q, e, m0, out);
  /* a datetime from a zoned time base and a new timezone: the fields are set
   * in the base's zone, then the instant moves to the new one, as Neo4j (the
   * base's offset is that of the new day: 12:00 in Stockholm on 1984-03-28
   * is +02:00 though the base's own day had +01:00) */
  const qv *bt = map_key(m0, "time"), *tz = map_key(m0, "timezone");
  if (kind == SL_DATETIME && bt && (bt->kind == SL_TIME || bt->kind == SL_DATETIME) && tz && tz->kind != SL_NULL) {
    sl_qentry *es = sl_arena_alloc(&q->tmp, sizeof *es * m0->u.map.n);
    if (!es) return qerr_oom(q);
    qv in_base = {.kind = SL_QMAP}, local;
    for (size_t i = 0; i < m0->u.map.n; i++)
      if (strcasecmp(m0->u.map.entries[i].key, "timezone")) es[in_base.u.map.n++] = m0->u.map.entries[i];
    in_base.u.map.entries = es;
    TRY(temporal_from_map(q, e, &in_base, kind, &local));
    return temporal_to_zone(q, e, &local, tz, out);
  }
  qv mm;
  TRY(expand_base(q, e, m0, kind, &mm));
  const qv *m = &mm;
  char date[64] = "", time[64] = "", zone[96] = "", text[256];
  if (kind == SL_DATE || kind == SL_LOCALDATETIME || kind == SL_DATETIME)
    if (map_date_text(q, e, m, date, sizeof date) < 0) return SL_EINVAL;
  if (kind != SL_DATE && map_time_text(q, e, m, time, sizeof time) < 0) return SL_EINVAL;
  if ((kind == SL_TIME || kind == SL_DATETIME) && map_zone_text(q, e, m, zone, sizeof zone) < 0) return SL_EINVAL;
  int n = snprintf(text, sizeof text, "%s%s%s%s", date, date[0] && time[0] ? "T" : "", time, zone);
  char zbuf[SL_ZONE_MAX + 1], why[200];
  sl_value v;
  if (sl_temporal_parse(kind, text, (size_t)n, NULL, &v, zbuf, why, sizeof why))
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s", why);
  out->kind = kind;
  out->u.v = v;
  if (v.kind == SL_DATETIME && v.u.t.zone && !(out->u.v.u.t.zone = sl_arena_strndup(&q->tmp, zbuf, strlen(zbuf)))) return qerr_oom(q);
  return 0;
}

/* *out = a * m + b; true on overflow (a field no int64 holds: Neo4j's
 * "long overflow"). */
static bool scaled(int64_t a, int64_t m, int64_t b, int64_t *out) {
  int64_t p;
  return __builtin_mul_overflow(a, m, &p) || __builtin_add_overflow(p, b, out);
}

/* d.year, t.hour, dur.days, ...: the components Neo4j's temporal values have. */
int temporal_field(qctx *q, qexpr *e, const qv *v, const char *key, qv *out) {
  const sl_value *t = &v->u.v;
  if (t->kind == SL_DURATION) {
    int64_t mo = t->u.dur.months, d = t->u.dur.days, sec = t->u.dur.seconds, ns = t->u.dur.nanos;
    static const char *const keys[] = {"years", "quarters", "months", "weeks", "days", "hours", "minutes", "seconds",
                                       "milliseconds", "microseconds", "nanoseconds", "quartersOfYear", "monthsOfQuarter",
                                       "monthsOfYear", "daysOfWeek", "minutesOfHour", "secondsOfMinute",
                                       "millisecondsOfSecond", "microsecondsOfSecond", "nanosecondsOfSecond"};
    bool of[SL_ARRAY_LEN(keys)] = {0};
    int64_t vals[] = {mo / 12, mo / 3, mo, d / 7, d, sec / 3600, sec / 60, sec, 0, 0, 0, (mo % 12) / 3, mo % 3,
                      mo % 12, d % 7, (sec / 60) % 60, sec % 60, ns / 1000000, ns / 1000, ns};
    of[8] = scaled(sec, 1000, ns / 1000000, &vals[8]);
    of[9] = scaled(sec, 1000000, ns / 1000, &vals[9]);
    of[10] = scaled(sec, 1000000000, ns, &vals[10]);
    for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++)
      if (!strcmp(keys[i], key)) {
        if (of[i]) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
        *out = qv_int(vals[i]);
        return 0;
      }
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "No such field: %s", key);
  }
  bool has_date = t->kind == SL_DATE || t->kind == SL_LOCALDATETIME || t->kind == SL_DATETIME;
  bool has_time = t->kind != SL_DATE;
  bool has_zone = t->kind == SL_TIME || t->kind == SL_DATETIME;
  int64_t local = t->u.t.seconds + (t->kind == SL_DATETIME ? t->u.t.offset : 0);
  int64_t days = t->kind == SL_DATE ? t->u.t.seconds : (int64_t)floorl((long double)local / 86400);
  int64_t sod = t->kind == SL_DATE ? 0 : (t->kind == SL_LOCALTIME || t->kind == SL_TIME) ? t->u.t.seconds : local - days * 86400;
  int64_t y, mo, d;
  civil_from_days(days, &y, &mo, &d);
  int64_t dow, doy = days - days_from_civil(y, 1, 1) + 1, wy, wk;
  iso_week(days, &wy, &wk, &dow);
  struct {
    const char *key;
    bool ok;
    int64_t v;
    bool overflow; /* no int64 holds it: "long overflow" when asked for */
  } f[] = {{"year", has_date, y},
           {"quarter", has_date, (mo - 1) / 3 + 1},
           {"month", has_date, mo},
           {"day", has_date, d},
           {"week", has_date, wk},
           {"weekYear", has_date, wy},
           {"dayOfWeek", has_date, dow},
           {"weekDay", has_date, dow},
           {"ordinalDay", has_date, doy},
           {"dayOfQuarter", has_date, days - days_from_civil(y, (mo - 1) / 3 * 3 + 1, 1) + 1},
           {"hour", has_time, sod / 3600},
           {"minute", has_time, (sod / 60) % 60},
           {"second", has_time, sod % 60},
           {"millisecond", has_time, t->u.t.nanos / 1000000},
           {"microsecond", has_time, t->u.t.nanos / 1000},
           {"nanosecond", has_time, t->u.t.nanos},
           {"offsetSeconds", has_zone, t->u.t.offset},
           {"offsetMinutes", has_zone, t->u.t.offset / 60},
           {"epochSeconds", t->kind == SL_DATETIME, t->u.t.seconds},
           {"epochMillis", t->kind == SL_DATETIME, 0, false}};
  f[SL_ARRAY_LEN(f) - 1].overflow = scaled(t->u.t.seconds, 1000, t->u.t.nanos / 1000000, &f[SL_ARRAY_LEN(f) - 1].v);
  for (size_t i = 0; i < SL_ARRAY_LEN(f); i++)
    if (!strcmp(f[i].key, key) && f[i].ok) {
      if (f[i].overflow) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
      *out = qv_int(f[i].v);
      return 0;
    }
  if (has_zone && (!strcmp(key, "timezone") || !strcmp(key, "offset"))) {
    char buf[16];
    int32_t off = t->u.t.offset;
    if (!strcmp(key, "timezone") && t->u.t.zone) return make_str(q, t->u.t.zone, strlen(t->u.t.zone), out);
    if (off == 0 && !strcmp(key, "timezone")) return make_str(q, "Z", 1, out);
    snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 3600, abs(off) / 60 % 60);
    return make_str(q, buf, strlen(buf), out);
  }
  return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "No such field: %s", key);
}

/* ---- temporal arithmetic: temporal +- duration, duration +- duration,
 * duration * / number (java.time's rules, as Neo4j: months first with the
 * day clamped to the month's length, then days, then the time) ---------------- */
static int64_t clamp_day(int64_t y, int64_t m, int64_t d) {
  static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t ml = len[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
  return d > ml ? ml : d;
}

/* days since the epoch plus months (clamped) and days */
static int64_t add_months_days(int64_t days, int64_t months, int64_t add_days) {
  if (months) {
    int64_t y, m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t tot = y * 12 + (m - 1) + months;
    int64_t ny = (tot >= 0 ? tot : tot - 11) / 12, nm = tot - ny * 12 + 1;
    days = days_from_civil(ny, nm, clamp_day(ny, nm, d));
  }
  return days + add_days;
}

static int temporal_arith(qctx *q, qexpr *e, const qv *a, const qv *b, qv *out, bool *done) {
  *done = true;
  int op = e->op;
  if (a->kind == SL_DURATION && b->kind == SL_DURATION && (op == E_ADD || op == E_SUB)) {
    int sign = op == E_ADD ? 1 : -1;
    const sl_value *x = &a->u.v, *y = &b->u.v;
    __int128 nanos = ((__int128)x->u.dur.seconds * 1000000000 + x->u.dur.nanos) + sign * ((__int128)y->u.dur.seconds * 1000000000 + y->u.dur.nanos);
    int64_t months, days;
    bool of = sign > 0 ? __builtin_add_overflow(x->u.dur.months, y->u.dur.months, &months) ||
                             __builtin_add_overflow(x->u.dur.days, y->u.dur.days, &days)
                       : __builtin_sub_overflow(x->u.dur.months, y->u.dur.months, &months) ||
                             __builtin_sub_overflow(x->u.dur.days, y->u.dur.days, &days);
    if (of || nanos / 1000000000 > INT64_MAX || nanos / 1000000000 < INT64_MIN)
      return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "long overflow");
    *out = *a;
    out->u.v.u.dur.months = months;
    out->u.v.u.dur.days = days;
    out->u.v.u.dur.seconds = (int64_t)(nanos / 1000000000);
    out->u.v.u.dur.nanos = (int32_t)(nanos % 1000000000);
    return 0;
  }
  if ((op == E_MUL || op == E_DIV) && (a->kind == SL_DURATION) != (b->kind == SL_DURATION)) {
    const qv *d = a->kind == SL_DURATION ? a : b, *n = a->kind == SL_DURATION ? b : a;
    if (!is_num(n) || (op == E_DIV && d != a)) return type_err(q, e, "Cannot divide by a duration");
    long double f = (long double)num(n);
    if (op == E_DIV) {
      if (f == 0) return qerr(q, SL_EINVAL, ST_ARITH, e->line, e->col, "/ by zero");
      f = 1 / f;
    }
    if (!isfinite(f)) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "a duration times %s", isnan(f) ? "NaN" : "infinity");
    return duration_cascade(q, e, d->u.v.u.dur.months * f, d->u.v.u.dur.days * f,
                            ((long double)d->u.v.u.dur.seconds * 1e9L + d->u.v.u.dur.nanos) * f, out);
  }
  const qv *t = a->kind == SL_DURATION ? b : a, *d = a->kind == SL_DURATION ? a : b;
  bool temporal = t->kind >= SL_DATE && t->kind <= SL_DATETIME;
  if (!temporal || (op != E_ADD && op != E_SUB) || (op == E_SUB && t != a)) {
    *done = false;
    return 0;
  }
  int sign = op == E_ADD ? 1 : -1;
  int64_t months = sign * d->u.v.u.dur.months, ddays = sign * d->u.v.u.dur.days;
  __int128 dn = sign * ((__int128)d->u.v.u.dur.seconds * 1000000000 + d->u.v.u.dur.nanos);
  sl_value v = t->u.v;
  const __int128 day_ns = (__int128)86400 * 1000000000;
  switch (v.kind) {
  case SL_DATE: {
    /* the time part counts in whole days */
    v.u.t.seconds = add_months_days(v.u.t.seconds, months, ddays + (int64_t)(dn / day_ns));
    break;
  }
  case SL_LOCALTIME:
  case SL_TIME: {
    __int128 ns = ((__int128)v.u.t.seconds * 1000000000 + v.u.t.nanos + dn) % day_ns;
    if (ns < 0) ns += day_ns;
    v.u.t.seconds = (int64_t)(ns / 1000000000);
    v.u.t.nanos = (int32_t)(ns % 1000000000);
    break;
  }
  default: {
    /* months and days on the wall clock, then the time */
    int64_t local = v.u.t.seconds + (v.kind == SL_DATETIME ? v.u.t.offset : 0);
    int64_t days = (int64_t)floorl((long double)local / 86400), sod = local - days * 86400;
    days = add_months_days(days, months, ddays);
    __int128 ns = ((__int128)(days * 86400 + sod)) * 1000000000 + v.u.t.nanos;
    if (v.kind == SL_DATETIME && v.u.t.zone) {
      /* the wall clock resolved in the zone, then the exact time added */
      int64_t wall = (int64_t)(ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000), utc;
      int32_t off = v.u.t.offset;
      /* the offset kept when it is still valid there (an overlap), else the zone's */
      if (sl_tz_resolve_local(v.u.t.zone, wall, &off, &utc, &off) < 0 &&
          sl_tz_resolve_local(v.u.t.zone, wall, NULL, &utc, &off) < 0)
        return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "cannot resolve the time in zone %s", v.u.t.zone);
      ns = ((__int128)utc) * 1000000000 + v.u.t.nanos + dn;
      int64_t secs = (int64_t)(ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000);
      if (sl_tz_offset_at(v.u.t.zone, secs, &off) < 0)
        return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "cannot resolve the time in zone %s", v.u.t.zone);
      v.u.t.seconds = secs;
      v.u.t.nanos = (int32_t)(ns - (__int128)secs * 1000000000);
      v.u.t.offset = off;
      break;
    }
    ns += dn;
    int64_t secs = (int64_t)(ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000);
    v.u.t.nanos = (int32_t)(ns - (__int128)secs * 1000000000);
    v.u.t.seconds = secs - (v.kind == SL_DATETIME ? v.u.t.offset : 0);
    break;
  }
  }
  out->kind = v.kind;
  out->u.v = v;
  return 0;
}

/* date("..."), datetime("..."), ... and duration("..."): through
 * sl_temporal_parse; maps and no-argument forms (now) as Neo4j. */
static int temporal_ctor(qctx *q, qexpr *e, qv *args, qv *out, sl_kind kind) {
  if (e->nargs == 0) {
    if (kind == SL_DURATION) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "duration() needs an argument");
    /* now, in UTC */
    uint64_t us = q_clock_us(q);
    sl_value v;
    memset(&v, 0, sizeof v);
    v.kind = kind;
    int64_t secs = (int64_t)(us / 1000000);
    int32_t nanos = (int32_t)(us % 1000000) * 1000;
    switch (kind) {
    case SL_DATE: v.u.t.seconds = secs / 86400; nanos = 0; break;
    case SL_LOCALTIME:
    case SL_TIME: v.u.t.seconds = secs % 86400; break;
    default: v.u.t.seconds = secs; break;
    }
    v.u.t.nanos = nanos;
    out->kind = kind;
    out->u.v = v;
    return 0;
  }
  NULL_IN(0);
  if (args[0].kind == (int)kind) {
    *out = args[0];
    return 0;
  }
  if (args[0].kind == SL_QMAP) return temporal_from_map(q, e, &args[0], kind, out);
  if (args[0].kind >= SL_DATE && args[0].kind <= SL_DATETIME && kind != SL_DURATION) {
    /* another temporal kind: its fields, as a map */
    sl_qentry es[8];
    size_t n = 0;
    TRY(temporal_base(q, e, &args[0], true, true, kind, es, &n));
    qv m = {.kind = SL_QMAP};
    m.u.map.n = n;
    m.u.map.entries = es;
    return temporal_from_map(q, e, &m, kind, out);
  }
  if (args[0].kind != SL_STRING)
    return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s(...) from a %s is not supported yet", e->name, qv_type_name(&args[0]));
  char zone[SL_ZONE_MAX + 1], why[200];
  sl_value v;
  int rc = sl_temporal_parse(kind, args[0].u.v.u.s, args[0].u.v.len, NULL, &v, zone, why, sizeof why);
  if (rc) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "%s", why);
  out->kind = kind;
  out->u.v = v;
  if (v.kind == SL_DATETIME && v.u.t.zone) {
    char *z = sl_arena_strndup(&q->tmp, zone, strlen(zone));
    if (!z) return qerr_oom(q);
    out->u.v.u.t.zone = z;
  }
  return 0;
}

FN(date) { return temporal_ctor(q, e, args, out, SL_DATE); }
FN(datetime) { return temporal_ctor(q, e, args, out, SL_DATETIME); }
FN(localdatetime) { return temporal_ctor(q, e, args, out, SL_LOCALDATETIME); }
FN(localtime) { return temporal_ctor(q, e, args, out, SL_LOCALTIME); }
FN(time) { return temporal_ctor(q, e, args, out, SL_TIME); }
FN(duration) { return temporal_ctor(q, e, args, out, SL_DURATION); }

FN(point) {
  NULL_IN(0);
  if (args[0].kind != SL_QMAP) ARG_ERR("a Map", 0);
  const qv *m = &args[0];
  double c[3] = {0, 0, 0};
  bool has[3] = {false, false, false}, geo = false;
  uint32_t srid = 0;
  for (size_t i = 0; i < m->u.map.n; i++) {
    const char *k = m->u.map.entries[i].key;
    const qv *v = &m->u.map.entries[i].value;
    int idx = -1;
    if (!strcasecmp(k, "x")) idx = 0;
    else if (!strcasecmp(k, "y")) idx = 1;
    else if (!strcasecmp(k, "z")) idx = 2;
    else if (!strcasecmp(k, "longitude")) idx = 0, geo = true;
    else if (!strcasecmp(k, "latitude")) idx = 1, geo = true;
    else if (!strcasecmp(k, "height")) idx = 2, geo = true;
    else if (!strcasecmp(k, "crs")) {
      if (v->kind != SL_STRING || !(srid = sl_srid_from_name(v->u.v.u.s, v->u.v.len)))
        return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Unknown coordinate reference system");
      continue;
    } else if (!strcasecmp(k, "srid")) {
      if (v->kind != SL_INT || !sl_srid_name((uint32_t)v->u.v.u.i))
        return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Unknown coordinate reference system");
      srid = (uint32_t)v->u.v.u.i;
      continue;
    } else {
      continue;
    }
    if (v->kind == SL_NULL) {
      *out = qv_null();
      return 0;
    }
    if (!is_num(v)) return type_err(q, e, "Type mismatch: expected a Number for %s", k);
    c[idx] = num(v);
    has[idx] = true;
  }
  if (!has[0] || !has[1]) return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "A point must contain either 'x' and 'y', or 'latitude' and 'longitude'");
  if (!srid) srid = geo ? (has[2] ? SL_SRID_WGS84_3D : SL_SRID_WGS84) : (has[2] ? SL_SRID_CARTESIAN_3D : SL_SRID_CARTESIAN);
  out->kind = SL_POINT;
  memset(&out->u.v, 0, sizeof out->u.v);
  out->u.v.kind = SL_POINT;
  out->u.v.u.pt.srid = srid;
  out->u.v.u.pt.x = c[0];
  out->u.v.u.pt.y = c[1];
  out->u.v.u.pt.z = c[2];
  return 0;
}

static const struct func {
  const char *name;
  qfunc_fn fn;
  int min, max;
} funcs[] = {
    {"id", fn_id, 1, 1}, {"elementId", fn_elementid, 1, 1}, {"labels", fn_labels, 1, 1},
    {"type", fn_type, 1, 1}, {"keys", fn_keys, 1, 1}, {"properties", fn_properties, 1, 1},
    {"startNode", fn_startnode, 1, 1}, {"endNode", fn_endnode, 1, 1}, {"nodes", fn_nodes, 1, 1},
    {"relationships", fn_relationships, 1, 1}, {"length", fn_length, 1, 1}, {"size", fn_size, 1, 1},
    {"head", fn_head, 1, 1}, {"last", fn_last, 1, 1}, {"tail", fn_tail, 1, 1}, {"isEmpty", fn_isempty, 1, 1},
    {"range", fn_range, 2, 3}, {"reverse", fn_reverse, 1, 1}, {"coalesce", fn_coalesce, 1, 1000},
    {"exists", fn_exists, 1, 1}, {"toString", fn_tostring, 1, 1}, {"toStringOrNull", fn_tostring, 1, 1},
    {"toInteger", fn_tointeger, 1, 1}, {"toFloat", fn_tofloat, 1, 1}, {"toBoolean", fn_toboolean, 1, 1},
    {"abs", fn_abs, 1, 1}, {"ceil", fn_ceil, 1, 1}, {"floor", fn_floor, 1, 1}, {"round", fn_round, 1, 2},
    {"sign", fn_sign, 1, 1}, {"sqrt", fn_sqrt, 1, 1}, {"rand", fn_rand, 0, 0}, {"exp", fn_exp, 1, 1},
    {"log", fn_log, 1, 1}, {"log10", fn_log10, 1, 1}, {"sin", fn_sin, 1, 1}, {"cos", fn_cos, 1, 1},
    {"tan", fn_tan, 1, 1}, {"asin", fn_asin, 1, 1}, {"acos", fn_acos, 1, 1}, {"atan", fn_atan, 1, 1},
    {"atan2", fn_atan2, 2, 2}, {"degrees", fn_degrees, 1, 1}, {"radians", fn_radians, 1, 1}, {"pi", fn_pi, 0, 0},
    {"e", fn_e, 0, 0}, {"timestamp", fn_timestamp, 0, 0}, {"randomUUID", fn_randomuuid, 0, 0},
    {"toLower", fn_tolower, 1, 1}, {"toUpper", fn_toupper, 1, 1}, {"lower", fn_tolower, 1, 1},
    {"upper", fn_toupper, 1, 1}, {"trim", fn_trim, 1, 1}, {"ltrim", fn_ltrim, 1, 1}, {"rtrim", fn_rtrim, 1, 1},
    {"replace", fn_replace, 3, 3}, {"split", fn_split, 2, 2}, {"substring", fn_substring, 2, 3},
    {"left", fn_left, 2, 2}, {"right", fn_right, 2, 2}, {"date", fn_date, 0, 1}, {"datetime", fn_datetime, 0, 1},
    {"localdatetime", fn_localdatetime, 0, 1}, {"localtime", fn_localtime, 0, 1}, {"time", fn_time, 0, 1},
    {"duration", fn_duration, 1, 1}, {"point", fn_point, 1, 1},
    {"date.truncate", fn_truncate, 2, 3}, {"datetime.truncate", fn_truncate, 2, 3},
    {"localdatetime.truncate", fn_truncate, 2, 3}, {"time.truncate", fn_truncate, 2, 3},
    {"localtime.truncate", fn_truncate, 2, 3}, {"duration.between", fn_duration_between, 2, 2},
    {"duration.inMonths", fn_duration_between, 2, 2}, {"duration.inDays", fn_duration_between, 2, 2},
    {"duration.inSeconds", fn_duration_between, 2, 2},
    {"date.transaction", fn_clock, 0, 1}, {"date.statement", fn_clock, 0, 1}, {"date.realtime", fn_clock, 0, 1},
    {"time.transaction", fn_clock, 0, 1}, {"time.statement", fn_clock, 0, 1}, {"time.realtime", fn_clock, 0, 1},
    {"localtime.transaction", fn_clock, 0, 1}, {"localtime.statement", fn_clock, 0, 1}, {"localtime.realtime", fn_clock, 0, 1},
    {"datetime.transaction", fn_clock, 0, 1}, {"datetime.statement", fn_clock, 0, 1}, {"datetime.realtime", fn_clock, 0, 1},
    {"localdatetime.transaction", fn_clock, 0, 1}, {"localdatetime.statement", fn_clock, 0, 1}, {"localdatetime.realtime", fn_clock, 0, 1},
    {"datetime.fromepoch", fn_fromepoch, 2, 2}, {"datetime.fromepochmillis", fn_fromepoch, 1, 1},
};

qfunc_fn q_func_lookup(const char *name, int nargs, int *minargs, int *maxargs) {
  for (size_t i = 0; i < SL_ARRAY_LEN(funcs); i++) {
    if (strcasecmp(funcs[i].name, name)) continue;
    *minargs = funcs[i].min;
    *maxargs = funcs[i].max;
    if (nargs < funcs[i].min || nargs > funcs[i].max) return NULL;
    return funcs[i].fn;
  }
  *minargs = *maxargs = -1;
  return NULL;
}

bool q_is_agg_name(const char *name, int *kind) {
  static const struct {
    const char *n;
    int k;
  } aggs[] = {{"count", AGG_COUNT}, {"collect", AGG_COLLECT}, {"sum", AGG_SUM}, {"avg", AGG_AVG},
              {"min", AGG_MIN},     {"max", AGG_MAX},         {"stDev", AGG_STDEV}, {"stDevP", AGG_STDEVP},
              {"percentileDisc", AGG_PERCENTILE_DISC}, {"percentileCont", AGG_PERCENTILE_CONT}};
  for (size_t i = 0; i < SL_ARRAY_LEN(aggs); i++)
    if (!strcasecmp(aggs[i].n, name)) {
      *kind = aggs[i].k;
      return true;
    }
  return false;
}
