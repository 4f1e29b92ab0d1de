/*
 * The operators and the planner that chains them. Each clause becomes one
 * operator pulling rows from the one below (q->row is shared: an operator
 * writes only its own slots); a statement's first operator yields one empty
 * row. The chain of a single query, bottom up:
 *
 *   once -> MATCH (matcher + WHERE; OPTIONAL: a null row when none) ->
 *   UNWIND -> CALL -> WITH/RETURN = project or aggregate (DISTINCT) ->
 *   sort (ORDER BY) -> skip/limit -> filter (WITH ... WHERE) -> ...
 *   updating clauses: one eager operator each (all input rows first, then
 *   their writes in order, then the rows up), so that no clause sees the
 *   writes of a later one and every clause sees those of earlier ones.
 *
 * UNION runs the parts one after another into the first part's column
 * slots (UNION without ALL drops duplicates with a hash set).
 *
 * MEMORY: see query_int.h. Operators that keep rows (sort, aggregate,
 * distinct sets, eager writes, the matcher's input) copy them into their
 * own arenas, counted against the statement's limit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

int row_stabilize(qctx *q, sl_arena *a, const int *live, int nlive) {
  for (int i = 0; i < nlive; i++)
    if (qv_copy(a, &q->row[live[i]], &q->row[live[i]])) return qerr_oom(q);
  return 0;
}

/* An operator's copy of its input row: two arenas in turn, since the row
 * may still hold values of the last copy while the next one is made. */
typedef struct row_copy {
  sl_arena a[2];
  int cur;
} row_copy;

static void row_copy_init(row_copy *r, sl_arena_budget *mem) {
  sl_arena_init(&r->a[0], mem);
  sl_arena_init(&r->a[1], mem);
  r->cur = 0;
}

static sl_arena *row_copy_next(row_copy *r) {
  r->cur ^= 1;
  sl_arena_reset(&r->a[r->cur]);
  return &r->a[r->cur];
}

static void row_copy_free(row_copy *r) {
  sl_arena_free(&r->a[0]);
  sl_arena_free(&r->a[1]);
}

static int pull(qctx *q, qop *child) {
  sl_arena_reset(&q->tmp);
  return child->next(q, child);
}

/* ---- a hash set of value tuples (DISTINCT, UNION, grouping) ---------------------------------- */
typedef struct tuple {
  uint64_t hash;
  qv *vals;
  void *data; /* grouping: the group's state */
} tuple;

typedef struct vset {
  tuple *slots;
  size_t cap, n;
  int width;
  sl_arena *a;
} vset;

static uint64_t tuple_hash(const qv *vals, int width) {
  uint64_t h = 0x12345;
  for (int i = 0; i < width; i++) h = h * 31 + qv_hash(&vals[i]);
  return h | 1;
}

static bool tuple_eq(const qv *a, const qv *b, int width) {
  for (int i = 0; i < width; i++)
    if (qv_order(&a[i], &b[i])) return false;
  return true;
}

/* Find vals; when absent and insert, add a copy. *found: it was there. */
static int vset_get(qctx *q, vset *s, const qv *vals, bool insert, tuple **out, bool *found) {
  if (s->n * 2 >= s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    tuple *ns = sl_arena_zalloc(s->a, sizeof *ns * cap);
    if (!ns) return qerr_oom(q);
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->slots[i].hash) continue;
      size_t j = s->slots[i].hash & (cap - 1);
      while (ns[j].hash) j = (j + 1) & (cap - 1);
      ns[j] = s->slots[i];
    }
    s->slots = ns;
    s->cap = cap;
  }
  uint64_t h = tuple_hash(vals, s->width);
  size_t j = h & (s->cap - 1);
  while (s->slots[j].hash) {
    if (s->slots[j].hash == h && tuple_eq(s->slots[j].vals, vals, s->width)) {
      *out = &s->slots[j];
      *found = true;
      return 0;
    }
    j = (j + 1) & (s->cap - 1);
  }
  *found = false;
  *out = NULL;
  if (!insert) return 0;
  qv *copy = sl_arena_alloc(s->a, sizeof *copy * (size_t)(s->width ? s->width : 1));
  if (!copy) return qerr_oom(q);
  for (int i = 0; i < s->width; i++)
    if (qv_copy(s->a, &vals[i], &copy[i])) return qerr_oom(q);
  s->slots[j].hash = h;
  s->slots[j].vals = copy;
  s->slots[j].data = NULL;
  s->n++;
  *out = &s->slots[j];
  return 0;
}

/* ---- once --------------------------------------------------------------------------------------- */
typedef struct op_once {
  qop op;
  bool done;
} op_once;

static int once_next(qctx *q, qop *op) {
  (void)q;
  op_once *o = (op_once *)op;
  if (o->done) return 0;
  o->done = true;
  return 1;
}

/* ---- MATCH / OPTIONAL MATCH ------------------------------------------------------------------- */
typedef struct op_match {
  qop op;
  qclause *c;
  qmatch *m;
  sl_arena a;
  row_copy in;
  bool have_input, emitted;
  int *newslots, nnew;
} op_match;

static int match_next(qctx *q, qop *op) {
  op_match *o = (op_match *)op;
  int rc;
  for (;;) {
    TRY(qtick(q));
    if (!o->have_input) {
      rc = pull(q, op->child);
      if (rc <= 0) return rc;
      TRY(row_stabilize(q, row_copy_next(&o->in), o->c->live_in, o->c->nlive_in));
      TRY(qmatch_reset(q, o->m));
      o->have_input = true;
      o->emitted = false;
    }
    sl_arena_reset(&q->tmp); /* the last candidate's temporaries (the input row is in o->in) */
    rc = qmatch_next(q, o->m);
    if (rc < 0) return rc;
    if (rc == 1) {
      if (o->c->where) {
        qv w;
        TRY(q_eval(q, o->c->where, &w));
        if (!qv_true(&w)) continue;
      }
      o->emitted = true;
      return 1;
    }
    o->have_input = false;
    if (o->c->optional && !o->emitted) {
      for (int i = 0; i < o->nnew; i++) q->row[o->newslots[i]] = qv_null();
      return 1;
    }
  }
}

static void match_free(qop *op) {
  op_match *o = (op_match *)op;
  qmatch_free(o->m);
  row_copy_free(&o->in);
  sl_arena_free(&o->a);
}

/* ---- UNWIND ------------------------------------------------------------------------------------ */
/* UNWIND range(...) counts through the range instead of building its
 * list, as Neo4j does: its memory does not grow with the range. */
typedef struct op_unwind {
  qop op;
  qclause *c;
  row_copy in;
  qv list;
  size_t pos;
  bool have;
  int64_t next, step; /* range: the next value, the step, how many are left */
  uint64_t left;
} op_unwind;

/* UNWIND range(a, b[, s]): the bounds of the row's range. */
static int unwind_range(qctx *q, op_unwind *o) {
  const qexpr *e = o->c->expr;
  qv args[3];
  for (int i = 0; i < e->nargs; i++) TRY(q_eval(q, e->args[i], &args[i]));
  return q_range_bounds(q, e, args, &o->next, &o->step, &o->left);
}

static int unwind_next(qctx *q, qop *op) {
  op_unwind *o = (op_unwind *)op;
  bool range = q_is_range(o->c->expr);
  for (;;) {
    TRY(qtick(q));
    if (range && o->left) {
      q->row[o->c->slot] = qv_int(o->next);
      o->next += --o->left ? o->step : 0; /* never past the range's end: no overflow */
      return 1;
    }
    if (!range && o->have && o->pos < o->list.u.list.n) {
      q->row[o->c->slot] = o->list.u.list.items[o->pos++];
      return 1;
    }
    int rc = pull(q, op->child);
    if (rc <= 0) return rc;
    if (range) {
      TRY(unwind_range(q, o));
      sl_arena *in = row_copy_next(&o->in);
      TRY(row_stabilize(q, in, o->c->live_in, o->c->nlive_in));
      continue;
    }
    qv v;
    TRY(q_eval(q, o->c->expr, &v));
    sl_arena *in = row_copy_next(&o->in);
    TRY(row_stabilize(q, in, o->c->live_in, o->c->nlive_in));
    if (qv_copy(in, &v, &v)) return qerr_oom(q);
    if (v.kind == SL_NULL) continue;
    if (v.kind != SL_QLIST) {
      q->row[o->c->slot] = v;
      o->have = false;
      return 1;
    }
    o->list = v;
    o->pos = 0;
    o->have = true;
  }
}

static void unwind_free(qop *op) { row_copy_free(&((op_unwind *)op)->in); }

/* ---- WITH / RETURN without aggregates --------------------------------------------------------- */
typedef struct op_project {
  qop op;
  qclause *c;
  vset seen;
  sl_arena a;
  qv *vals;
} op_project;

static int project_next(qctx *q, qop *op) {
  op_project *o = (op_project *)op;
  qclause *c = o->c;
  for (;;) {
    int rc = pull(q, op->child);
    if (rc <= 0) return rc;
    for (int i = 0; i < c->nitems; i++) TRY(q_eval(q, c->items[i].e, &o->vals[i]));
    for (int i = 0; i < c->nitems; i++) q->row[c->items[i].slot] = o->vals[i];
    if (c->distinct) {
      tuple *t;
      bool found;
      TRY(vset_get(q, &o->seen, o->vals, true, &t, &found));
      if (found) continue;
    }
    return 1;
  }
}

static void project_free(qop *op) { sl_arena_free(&((op_project *)op)->a); }

/* ---- aggregation ------------------------------------------------------------------------------- */
typedef struct aggstate {
  int64_t count;
  bool is_double;
  int64_t isum;
  double dsum, sumsq;
  qv best;         /* min, max */
  qv *items;       /* collect; the percentiles' values */
  size_t n, cap;
  double percentile;
  vset *distinct;
} aggstate;

typedef struct group {
  qv *keys;
  aggstate *st;
} group;

typedef struct op_agg {
  qop op;
  qclause *c;
  sl_arena a;
  vset groups;
  int nkeys;
  int *keyitem;    /* item index of each key */
  group **order;   /* groups in first-seen order */
  size_t ngroups, cap;
  size_t pos;
  bool built;
  qv *res;
} op_agg;

static int agg_add(qctx *q, op_agg *o, qexpr *e, aggstate *s) {
  if (e->op == E_COUNTSTAR) {
    s->count++;
    return 0;
  }
  qv v;
  TRY(q_eval(q, e->a, &v));
  if (v.kind == SL_NULL) return 0;
  if (e->distinct) {
    if (!s->distinct) {
      s->distinct = sl_arena_zalloc(&o->a, sizeof *s->distinct);
      if (!s->distinct) return qerr_oom(q);
      s->distinct->width = 1;
      s->distinct->a = &o->a;
    }
    tuple *t;
    bool found;
    TRY(vset_get(q, s->distinct, &v, true, &t, &found));
    if (found) return 0;
  }
  switch (e->agg) {
  case AGG_COUNT: s->count++; break;
  case AGG_PERCENTILE_DISC:
  case AGG_PERCENTILE_CONT: {
    qv pc;
    TRY(q_eval(q, e->b, &pc));
    double d = pc.kind == SL_INT ? (double)pc.u.v.u.i : pc.kind == SL_DOUBLE ? pc.u.v.u.d : NAN;
    if (pc.kind != SL_INT && pc.kind != SL_DOUBLE)
      return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s(...) expects a number as its percentile, got %s",
                  e->name, qv_type_name(&pc));
    if (!(d >= 0 && d <= 1))
      return qerr(q, SL_EINVAL, ST_ARG, e->line, e->col, "Number out of range: %g (a percentile lies in 0.0..1.0)", d);
    if (v.kind != SL_INT && v.kind != SL_DOUBLE)
      return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s(...) can only handle numerical values and null. Got %s",
                  e->name, qv_type_name(&v));
    s->percentile = d;
  }
    /* fall through - the values are kept as collect keeps them */
  case AGG_COLLECT:
    if (s->n == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 8;
      qv *ni = sl_arena_alloc(&o->a, sizeof *ni * cap);
      if (!ni) return qerr_oom(q);
      if (s->n) memcpy(ni, s->items, sizeof *ni * s->n);
      s->items = ni;
      s->cap = cap;
    }
    if (qv_copy(&o->a, &v, &s->items[s->n])) return qerr_oom(q);
    s->n++;
    break;
  case AGG_SUM:
  case AGG_AVG:
  case AGG_STDEV:
  case AGG_STDEVP:
    if (v.kind != SL_INT && v.kind != SL_DOUBLE)
      return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "%s(...) can only handle numerical values, duration, and null. Got %s",
                  e->name, qv_type_name(&v));
    s->count++;
    if (v.kind == SL_DOUBLE) {
      if (!s->is_double) s->dsum = (double)s->isum;
      s->is_double = true;
    }
    {
      double d = v.kind == SL_INT ? (double)v.u.v.u.i : v.u.v.u.d;
      int64_t isum;
      if (s->is_double) s->dsum += d;
      else if (__builtin_add_overflow(s->isum, v.u.v.u.i, &isum)) {
        if (e->agg == AGG_SUM) return qerr(q, SL_EINVAL, "Neo.ClientError.Statement.ArithmeticError", e->line, e->col, "long overflow");
        s->is_double = true;
        s->dsum = (double)s->isum + d;
      } else {
        s->isum = isum;
      }
      s->sumsq += d * d;
    }
    break;
  case AGG_MIN:
  case AGG_MAX: {
    if (s->count == 0) {
      if (qv_copy(&o->a, &v, &s->best)) return qerr_oom(q);
    } else {
      int c = qv_order(&v, &s->best);
      if ((e->agg == AGG_MIN && c < 0) || (e->agg == AGG_MAX && c > 0))
        if (qv_copy(&o->a, &v, &s->best)) return qerr_oom(q);
    }
    s->count++;
    break;
  }
  }
  return 0;
}

static int num_order(const void *a, const void *b) { return qv_order(a, b); }
static double num_of(const qv *v) { return v->kind == SL_INT ? (double)v->u.v.u.i : v->u.v.u.d; }

/* Neo4j's percentiles over the sorted values: Disc picks one of them (the
 * smallest with at least that share at or below it), Cont interpolates
 * between the two around percentile * (n - 1). */
static qv percentile(int kind, aggstate *s) {
  if (!s->n) return qv_null();
  qsort(s->items, s->n, sizeof *s->items, num_order);
  double p = s->percentile;
  if (p == 1.0 || s->n == 1)
    return kind == AGG_PERCENTILE_CONT ? qv_double(num_of(&s->items[s->n - 1])) : s->items[s->n - 1];
  if (kind == AGG_PERCENTILE_DISC) {
    double at = p * (double)s->n;
    size_t i = (size_t)at;
    return s->items[(double)i != at || i == 0 ? i : i - 1];
  }
  double at = p * (double)(s->n - 1), lo = floor(at), hi = ceil(at);
  size_t l = (size_t)lo, h = (size_t)hi;
  if (l == h || l == s->n - 1) return qv_double(num_of(&s->items[l]));
  return qv_double(num_of(&s->items[l]) * (hi - at) + num_of(&s->items[h]) * (at - lo));
}

static qv agg_result(qctx *q, qexpr *e, aggstate *s) {
  (void)q;
  if (e->op == E_COUNTSTAR) return qv_int(s->count);
  switch (e->agg) {
  case AGG_COUNT: return qv_int(s->count);
  case AGG_COLLECT: {
    qv l;
    l.kind = SL_QLIST;
    l.u.list.n = s->n;
    l.u.list.items = s->items;
    return l;
  }
  case AGG_SUM: return s->is_double ? qv_double(s->dsum) : qv_int(s->isum);
  case AGG_PERCENTILE_DISC:
  case AGG_PERCENTILE_CONT: return percentile(e->agg, s);
  case AGG_AVG: {
    if (!s->count) return qv_null();
    double sum = s->is_double ? s->dsum : (double)s->isum;
    return qv_double(sum / (double)s->count);
  }
  case AGG_STDEV:
  case AGG_STDEVP: {
    double n = (double)s->count;
    if (s->count < (e->agg == AGG_STDEV ? 2 : 1)) return qv_double(0);
    double sum = s->is_double ? s->dsum : (double)s->isum, mean = sum / n;
    double var = (s->sumsq - n * mean * mean) / (e->agg == AGG_STDEV ? n - 1 : n);
    return qv_double(var > 0 ? sqrt(var) : 0);
  }
  default: return s->count ? s->best : qv_null();
  }
}

static int agg_build(qctx *q, op_agg *o) {
  qclause *c = o->c;
  qv *keys = sl_arena_alloc(&o->a, sizeof *keys * (size_t)(o->nkeys ? o->nkeys : 1));
  if (!keys) return qerr_oom(q);
  int rc;
  while ((rc = pull(q, o->op.child)) == 1) {
    for (int i = 0; i < o->nkeys; i++) TRY(q_eval(q, c->items[o->keyitem[i]].e, &keys[i]));
    tuple *t;
    bool found;
    TRY(vset_get(q, &o->groups, keys, true, &t, &found));
    group *g = t->data;
    if (!found) {
      g = sl_arena_zalloc(&o->a, sizeof *g);
      if (!g || !(g->st = sl_arena_zalloc(&o->a, sizeof *g->st * (size_t)(c->naggs ? c->naggs : 1)))) return qerr_oom(q);
      g->keys = t->vals;
      t->data = g;
      if (o->ngroups == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        group **no = sl_arena_alloc(&o->a, sizeof *no * cap);
        if (!no) return qerr_oom(q);
        if (o->ngroups) memcpy(no, o->order, sizeof *no * o->ngroups);
        o->order = no;
        o->cap = cap;
      }
      o->order[o->ngroups++] = g;
    }
    for (int i = 0; i < c->naggs; i++) TRY(agg_add(q, o, c->aggs[i], &g->st[i]));
  }
  if (rc < 0) return rc;
  if (!o->ngroups && !o->nkeys) {
    group *g = sl_arena_zalloc(&o->a, sizeof *g);
    if (!g || !(g->st = sl_arena_zalloc(&o->a, sizeof *g->st * (size_t)(c->naggs ? c->naggs : 1))) ||
        !(o->order = sl_arena_alloc(&o->a, sizeof *o->order)))
      return qerr_oom(q);
    o->order[o->ngroups++] = g;
  }
  o->built = true;
  return 0;
}

static int agg_next(qctx *q, qop *op) {
  op_agg *o = (op_agg *)op;
  qclause *c = o->c;
  if (!o->built) TRY(agg_build(q, o));
  if (o->pos == o->ngroups) return 0;
  sl_arena_reset(&q->tmp);
  group *g = o->order[o->pos++];
  for (int i = 0; i < c->naggs; i++) o->res[i] = agg_result(q, c->aggs[i], &g->st[i]);
  /* keys that are variables: restore them for the aggregate items that use them */
  for (int i = 0; i < o->nkeys; i++) {
    qexpr *ke = c->items[o->keyitem[i]].e;
    if (ke->op == E_VAR) q->row[ke->slot] = g->keys[i];
  }
  q->aggres = o->res;
  int k = 0;
  for (int i = 0; i < c->nitems; i++) {
    if (k < o->nkeys && o->keyitem[k] == i) {
      q->row[c->items[i].slot] = g->keys[k++];
      continue;
    }
    int rc = q_eval(q, c->items[i].e, &q->row[c->items[i].slot]);
    if (rc) return rc;
  }
  /* q->aggres stays: an ORDER BY above may repeat these aggregates */
  return 1;
}

static void agg_free(qop *op) { sl_arena_free(&((op_agg *)op)->a); }

/* ---- ORDER BY ---------------------------------------------------------------------------------- */
typedef struct srow {
  qv *vals; /* the items' slots, then the keys */
  size_t idx;
} srow;

typedef struct op_sort {
  qop op;
  qclause *c;
  sl_arena a;
  srow *rows;
  size_t n, cap, pos;
  bool built;
} op_sort;

static _Thread_local const qclause *sort_clause;

static int srow_cmp(const void *x, const void *y) {
  const srow *a = x, *b = y;
  const qclause *c = sort_clause;
  for (int i = 0; i < c->norder; i++) {
    int r = qv_order(&a->vals[c->nitems + i], &b->vals[c->nitems + i]);
    if (r) return c->desc[i] ? -r : r;
  }
  return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int sort_next(qctx *q, qop *op) {
  op_sort *o = (op_sort *)op;
  qclause *c = o->c;
  if (!o->built) {
    int rc;
    int w = c->nitems + c->norder;
    while ((rc = pull(q, op->child)) == 1) {
      if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        srow *nr = sl_arena_alloc(&o->a, sizeof *nr * cap);
        if (!nr) return qerr_oom(q);
        if (o->n) memcpy(nr, o->rows, sizeof *nr * o->n);
        o->rows = nr;
        o->cap = cap;
      }
      srow *r = &o->rows[o->n];
      r->idx = o->n;
      r->vals = sl_arena_alloc(&o->a, sizeof *r->vals * (size_t)w);
      if (!r->vals) return qerr_oom(q);
      for (int i = 0; i < c->norder; i++) TRY(q_eval(q, c->order[i], &r->vals[c->nitems + i]));
      for (int i = 0; i < c->nitems; i++) r->vals[i] = q->row[c->items[i].slot];
      for (int i = 0; i < w; i++)
        if (qv_copy(&o->a, &r->vals[i], &r->vals[i])) return qerr_oom(q);
      o->n++;
      TRY(qtick(q));
    }
    if (rc < 0) return rc;
    sort_clause = c;
    if (o->n) qsort(o->rows, o->n, sizeof *o->rows, srow_cmp);
    o->built = true;
  }
  if (o->pos == o->n) return 0;
  srow *r = &o->rows[o->pos++];
  for (int i = 0; i < c->nitems; i++) q->row[c->items[i].slot] = r->vals[i];
  return 1;
}

static void sort_free(qop *op) { sl_arena_free(&((op_sort *)op)->a); }

/* ---- SKIP / LIMIT, WHERE after WITH ------------------------------------------------------------ */
typedef struct op_page {
  qop op;
  qclause *c;
  int64_t skip, limit; /* limit -1: none */
  int64_t seen, given;
  bool init;
} op_page;

static int page_count(qctx *q, qexpr *e, int64_t *out) {
  qv v;
  TRY(q_eval(q, e, &v));
  /* an integral double in int64's range counts (2.0); inf, NaN and out of range do not */
  if (v.kind == SL_DOUBLE && v.u.v.u.d == floor(v.u.v.u.d) && v.u.v.u.d >= -9223372036854775808.0 &&
      v.u.v.u.d < 9223372036854775808.0)
    v = qv_int((int64_t)v.u.v.u.d);
  if (v.kind != SL_INT || v.u.v.u.i < 0) {
    char buf[64];
    size_t n = 0;
    const char *t = qv_text(q, &q->tmp, &v, &n);
    snprintf(buf, sizeof buf, "%.*s", (int)n, t ? t : "?");
    return qerr(q, SL_EINVAL, ST_SYNTAX, e->line, e->col, "Invalid input. '%s' is not a valid value. Must be a non-negative integer.", buf);
  }
  *out = v.u.v.u.i;
  return 0;
}

static int page_next(qctx *q, qop *op) {
  op_page *o = (op_page *)op;
  if (!o->init) {
    o->init = true;
    o->limit = -1;
    if (o->c->skip) TRY(page_count(q, o->c->skip, &o->skip));
    if (o->c->limit) TRY(page_count(q, o->c->limit, &o->limit));
  }
  for (;;) {
    if (o->limit >= 0 && o->given >= o->limit) {
      /* a statement's writes happen whatever its LIMIT keeps */
      int rc = 0;
      while (q->stmt->writes && (rc = pull(q, op->child)) == 1) {
      }
      return rc < 0 ? rc : 0;
    }
    int rc = pull(q, op->child);
    if (rc <= 0) return rc;
    if (o->seen++ < o->skip) continue;
    o->given++;
    return 1;
  }
}

typedef struct op_filter {
  qop op;
  qexpr *where;
} op_filter;

static int filter_next(qctx *q, qop *op) {
  op_filter *o = (op_filter *)op;
  for (;;) {
    int rc = pull(q, op->child);
    if (rc <= 0) return rc;
    qv w;
    TRY(q_eval(q, o->where, &w));
    if (qv_true(&w)) return 1;
    TRY(qtick(q));
  }
}

/* ---- updating clauses: eager --------------------------------------------------------------------- */
typedef struct op_write {
  qop op;
  qclause *c;
  sl_arena a;      /* the input rows */
  sl_arena outa;   /* the output rows (lazy: of one input row) */
  qv **in, **out;
  size_t nin, incap, nout, outcap, inpos, outpos;
  bool built, finished;
  bool eager_out; /* a later clause matches patterns: it must see every row's writes */
  qmatch *m;
} op_write;

/* Copy q->row's live slots into a. `from`: the input row the clause began
 * with, kept in the operator's arena for its life: a slot still holding
 * that row's value (bit for bit) shares it instead of copying it again. */
static int keep_row(qctx *q, sl_arena *a, qv ***rows, size_t *n, size_t *cap, const int *live, int nlive, const qv *from) {
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 64;
    qv **nr = sl_arena_alloc(a, sizeof *nr * ncap);
    if (!nr) return qerr_oom(q);
    if (*n) memcpy(nr, *rows, sizeof *nr * *n);
    *rows = nr;
    *cap = ncap;
  }
  qv *r = sl_arena_alloc(a, sizeof *r * (size_t)q->stmt->nslots);
  if (!r) return qerr_oom(q);
  for (int i = 0; i < q->stmt->nslots; i++) r[i] = qv_null();
  for (int i = 0; i < nlive; i++) {
    const qv *v = &q->row[live[i]];
    if (from && !memcmp(v, &from[live[i]], sizeof *v)) r[live[i]] = *v;
    else if (qv_copy(a, v, &r[live[i]])) return qerr_oom(q);
  }
  (*rows)[(*n)++] = r;
  return 0;
}

/* The clause's writes for input row r: its output rows appended to out. */
static int write_one(qctx *q, op_write *o, qv *r) {
  qclause *c = o->c;
  int rc;
  size_t ns = (size_t)q->stmt->nslots;
  sl_arena_reset(&q->tmp);
  memcpy(q->row, r, sizeof *q->row * ns);
  TRY(qtick(q));
  if (c->kind != C_MERGE) {
    TRY(q_write_row(q, c));
    return keep_row(q, &o->outa, &o->out, &o->nout, &o->outcap, c->live_out, c->nlive_out, r);
  }
  /* MERGE: the matches, or the pattern created */
  TRY(qmatch_reset(q, o->m));
  size_t before = o->nout;
  while ((rc = qmatch_next(q, o->m)) == 1) TRY(keep_row(q, &o->outa, &o->out, &o->nout, &o->outcap, c->live_out, c->nlive_out, r));
  if (rc < 0) return rc;
  if (o->nout == before) {
    memcpy(q->row, r, sizeof *q->row * ns);
    TRY(q_merge_create(q, c));
    TRY(q_apply_sets(q, c->on_create, c->non_create));
    return keep_row(q, &o->outa, &o->out, &o->nout, &o->outcap, c->live_out, c->nlive_out, r);
  }
  for (size_t k = before; k < o->nout && c->non_match; k++) {
    memcpy(q->row, o->out[k], sizeof *q->row * ns);
    TRY(q_apply_sets(q, c->on_match, c->non_match));
  }
  return 0;
}

static int write_next(qctx *q, qop *op) {
  op_write *o = (op_write *)op;
  int rc;
  if (!o->built) {
    if (!q->tx)
      return qerr(q, SL_EINVAL, ST_ACCESS, o->c->line, o->c->col, "Writing in read access mode not allowed%s%s",
                  q->opt->read_only_reason ? ": " : "", q->opt->read_only_reason ? q->opt->read_only_reason : "");
    /* every input row first: no clause before this one sees its writes */
    while ((rc = pull(q, o->op.child)) == 1) TRY(keep_row(q, &o->a, &o->in, &o->nin, &o->incap, o->c->live_in, o->c->nlive_in, NULL));
    if (rc < 0) return rc;
    o->built = true;
    if (o->eager_out) {
      for (size_t i = 0; i < o->nin; i++) TRY(write_one(q, o, o->in[i]));
      TRY(q_write_finish(q, o->c, &o->a));
      o->finished = true;
    }
  }
  while (o->outpos == o->nout) {
    if (o->finished || o->inpos == o->nin) {
      if (!o->finished) {
        o->finished = true;
        TRY(q_write_finish(q, o->c, &o->a));
      }
      return 0;
    }
    sl_arena_reset(&o->outa);
    o->nout = o->outcap = o->outpos = 0;
    o->out = NULL;
    TRY(write_one(q, o, o->in[o->inpos++]));
  }
  memcpy(q->row, o->out[o->outpos++], sizeof *q->row * (size_t)q->stmt->nslots);
  return 1;
}

static void write_free(qop *op) {
  op_write *o = (op_write *)op;
  qmatch_free(o->m);
  sl_arena_free(&o->a);
  sl_arena_free(&o->outa);
}

/* ---- CALL ---------------------------------------------------------------------------------------- */
typedef struct op_call {
  qop op;
  qclause *c;
  sl_arena a;
  qv *rows;
  size_t nrows, pos;
  int ncols;
  bool have;
} op_call;

static int call_next(qctx *q, qop *op) {
  op_call *o = (op_call *)op;
  qclause *c = o->c;
  for (;;) {
    if (!o->have) {
      int rc = pull(q, op->child);
      if (rc <= 0) return rc;
      sl_arena_reset(&o->a);
      TRY(row_stabilize(q, &o->a, c->live_in, c->nlive_in));
      TRY(q_call_rows(q, c, &o->a, &o->rows, &o->nrows, &o->ncols));
      o->pos = 0;
      o->have = true;
    }
    if (o->pos == o->nrows) {
      o->have = false;
      continue;
    }
    qv *r = &o->rows[o->pos++ * (size_t)o->ncols];
    for (int i = 0; i < c->nyields; i++) {
      /* yields are in the order written; the procedure's column by name */
      q->row[c->yslots[i]] = r[i];
    }
    if (c->where) {
      qv w;
      TRY(q_eval(q, c->where, &w));
      if (!qv_true(&w)) continue;
    }
    return 1;
  }
}

static void call_free(qop *op) { sl_arena_free(&((op_call *)op)->a); }

/* ---- UNION ---------------------------------------------------------------------------------------- */
typedef struct op_union {
  qop op;
  qop **parts;
  int nparts, cur;
  vset seen;
  sl_arena a;
  qv *vals;
} op_union;

static int union_next(qctx *q, qop *op) {
  op_union *o = (op_union *)op;
  qstmt *s = q->stmt;
  while (o->cur < o->nparts) {
    int rc = pull(q, o->parts[o->cur]);
    if (rc < 0) return rc;
    if (rc == 0) {
      o->cur++;
      continue;
    }
    qsingle *part = &s->parts[o->cur];
    for (int i = 0; i < s->ncols; i++) o->vals[i] = q->row[part->colslots[i]];
    for (int i = 0; i < s->ncols; i++) q->row[s->parts[0].colslots[i]] = o->vals[i];
    if (!s->union_all) {
      tuple *t;
      bool found;
      TRY(vset_get(q, &o->seen, o->vals, true, &t, &found));
      if (found) continue;
    }
    return 1;
  }
  return 0;
}

static void union_free(qop *op) {
  op_union *o = (op_union *)op;
  for (int i = 0; i < o->nparts; i++) q_op_free(o->parts[i]);
  sl_arena_free(&o->a);
}

/* ---- planning ------------------------------------------------------------------------------------- */
void q_op_free(qop *op) {
  while (op) {
    qop *child = op->child;
    if (op->free) op->free(op);
    free(op);
    op = child;
  }
}

static void *new_op(size_t size, qop *child, int (*next)(qctx *, qop *), void (*fr)(qop *)) {
  qop *op = calloc(1, size);
  if (!op) return NULL;
  op->child = child;
  op->next = next;
  op->free = fr;
  return op;
}

/* The new operator on top of child; on failure child stays the caller's
 * (it is reachable from the plan's root, which the cursor frees). */
static const char *write_op_name(const qclause *c) {
  switch (c->kind) {
  case C_CREATE: return "Create";
  case C_MERGE: return "Merge";
  case C_SET: return "SetProperty";
  case C_REMOVE: return "Remove";
  case C_DELETE: return c->detach ? "DetachDelete" : "Delete";
  default: return "Write";
  }
}

/* ---- EXPLAIN ---------------------------------------------------------------------------------- */
#define PUT(...) (n < len ? n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__) : 0)

static size_t describe_chain(const qop *op, char *buf, size_t len) {
  size_t n = 0;
  for (; op; op = op->child) {
    if (op->next == union_next) {
      const op_union *u = (const op_union *)op;
      PUT("%s(", op->name);
      for (int i = 0; i < u->nparts; i++) {
        PUT("%s", i ? " | " : "");
        if (n < len) n += describe_chain(u->parts[i], buf + n, len - n);
      }
      PUT(")");
    } else if (op->next == match_next) {
      if (!strcmp(op->name, "Optional")) PUT("Optional <- ");
      if (n < len) n += qmatch_describe(((const op_match *)op)->m, buf + n, len - n);
    } else if (op->next != once_next || op->child) { /* the leaf Argument says nothing */
      PUT("%s", op->name);
    } else if (n >= 4 && !strcmp(buf + n - 4, " <- ")) {
      n -= 4; /* the chain ended on the Argument: no arrow to it */
      buf[n] = 0;
    }
    if (op->child && n < len && !(op->child->next == once_next && !op->child->child)) PUT(" <- ");
  }
  return n < len ? n : len;
}

void q_plan_describe(const qop *root, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = 0;
  PUT("ProduceResults <- ");
  if (n < len) describe_chain(root, buf + n, len - n);
}
#undef PUT

#define NEW_OP(type, var, child, next, fr)                   \
  type *var = new_op(sizeof(type), child, next, fr);         \
  if (!var) return qerr_oom(q);

static int collect_new_slots(qctx *q, qpattern *pat, op_match *o) {
  int max = 0;
  for (int i = 0; i < pat->npaths; i++) max += 2 * pat->paths[i].nrels + 2;
  o->newslots = sl_arena_alloc(&o->a, sizeof(int) * (size_t)max);
  if (!o->newslots) return qerr_oom(q);
  for (int i = 0; i < pat->npaths; i++) {
    qpath *p = &pat->paths[i];
    for (int j = 0; j <= p->nrels; j++) {
      if (!p->nodes[j].bound) o->newslots[o->nnew++] = p->nodes[j].slot;
      if (j < p->nrels && !p->rels[j].bound) o->newslots[o->nnew++] = p->rels[j].slot;
    }
    if (p->slot >= 0) o->newslots[o->nnew++] = p->slot;
  }
  return 0;
}

static int distinct_next(qctx *q, qop *op) {
  op_project *o = (op_project *)op;
  qclause *c = o->c;
  for (;;) {
    int rc = o->op.child->next(q, o->op.child);
    if (rc <= 0) return rc;
    for (int i = 0; i < c->nitems; i++) o->vals[i] = q->row[c->items[i].slot];
    tuple *t;
    bool found;
    TRY(vset_get(q, &o->seen, o->vals, true, &t, &found));
    if (!found) return 1;
  }
}

static int plan_projection(qctx *q, qclause *c, qop **top) {
  qop *child = *top;
  if (c->naggs) {
    NEW_OP(op_agg, o, child, agg_next, agg_free);
    o->op.name = "EagerAggregation";
    *top = &o->op;
    o->c = c;
    sl_arena_init(&o->a, &q->mem);
    o->keyitem = sl_arena_alloc(&o->a, sizeof(int) * (size_t)(c->nitems + 1));
    o->res = sl_arena_alloc(&o->a, sizeof(qv) * (size_t)(c->naggs + 1));
    if (!o->keyitem || !o->res) return qerr_oom(q);
    for (int i = 0; i < c->nitems; i++) {
      bool has = false;
      for (int k = 0; k < c->naggs && !has; k++) {
        /* does item i contain aggregate k? (aggregates are numbered in item order) */
        qexpr *ae = c->aggs[k];
        has = ae->src >= c->items[i].e->src && ae->src < c->items[i].e->src + c->items[i].e->srclen;
      }
      if (!has) o->keyitem[o->nkeys++] = i;
    }
    o->groups.width = o->nkeys;
    o->groups.a = &o->a;
    /* DISTINCT over grouped rows: the keys are distinct already, the
     * aggregates may repeat: a distinct filter on the item slots above */
    if (c->distinct) {
      NEW_OP(op_project, d, *top, distinct_next, project_free);
      d->op.name = "Distinct";
      *top = &d->op;
      sl_arena_init(&d->a, &q->mem);
      d->c = c;
      d->seen.width = c->nitems;
      d->seen.a = &d->a;
      d->vals = sl_arena_alloc(&d->a, sizeof(qv) * (size_t)(c->nitems + 1));
      if (!d->vals) return qerr_oom(q);
    }
  } else {
    NEW_OP(op_project, o, child, project_next, project_free);
    o->op.name = c->distinct ? "Distinct" : "Projection";
    *top = &o->op;
    o->c = c;
    sl_arena_init(&o->a, &q->mem);
    o->seen.width = c->nitems;
    o->seen.a = &o->a;
    o->vals = sl_arena_alloc(&o->a, sizeof(qv) * (size_t)(c->nitems + 1));
    if (!o->vals) return qerr_oom(q);
  }
  if (c->norder) {
    NEW_OP(op_sort, o, *top, sort_next, sort_free);
    o->op.name = "Sort";
    o->c = c;
    sl_arena_init(&o->a, &q->mem);
    *top = &o->op;
  }
  if (c->skip || c->limit) {
    NEW_OP(op_page, o, *top, page_next, NULL);
    o->op.name = c->limit ? "Limit" : "Skip";
    o->c = c;
    *top = &o->op;
  }
  if (c->where) {
    NEW_OP(op_filter, o, *top, filter_next, NULL);
    o->op.name = "Filter";
    o->where = c->where;
    *top = &o->op;
  }
  return 0;
}

/* *top is the plan so far from the first operator on: always whole, so
 * that on a failure the cursor frees what was built. */
static int plan_single(qctx *q, qsingle *s, qop **top) {
  NEW_OP(op_once, start, NULL, once_next, NULL);
  start->op.name = "Argument";
  *top = &start->op;
  for (int i = 0; i < s->nclauses; i++) {
    qclause *c = &s->clauses[i];
    switch (c->kind) {
    case C_MATCH: {
      NEW_OP(op_match, o, *top, match_next, match_free);
      o->op.name = c->optional ? "Optional" : "Match"; /* q_plan_describe: the match's own operators */
      *top = &o->op;
      o->c = c;
      sl_arena_init(&o->a, &q->mem);
      row_copy_init(&o->in, &q->mem);
      TRY(qmatch_new(q, &c->pat, &o->a, &o->m));
      qmatch_seek(o->m, c->where);
      if (c->optional) TRY(collect_new_slots(q, &c->pat, o));
      break;
    }
    case C_UNWIND: {
      NEW_OP(op_unwind, o, *top, unwind_next, unwind_free);
      o->op.name = "Unwind";
      *top = &o->op;
      o->c = c;
      row_copy_init(&o->in, &q->mem);
      break;
    }
    case C_WITH:
    case C_RETURN: TRY(plan_projection(q, c, top)); break;
    case C_CALL: {
      NEW_OP(op_call, o, *top, call_next, call_free);
      o->op.name = "ProcedureCall";
      *top = &o->op;
      o->c = c;
      sl_arena_init(&o->a, &q->mem);
      break;
    }
    default: {
      NEW_OP(op_write, o, *top, write_next, write_free);
      o->op.name = write_op_name(c);
      *top = &o->op;
      o->c = c;
      sl_arena_init(&o->a, &q->mem);
      sl_arena_init(&o->outa, &q->mem);
      for (int k = i + 1; k < s->nclauses; k++)
        o->eager_out |= s->clauses[k].kind == C_MATCH || s->clauses[k].kind == C_MERGE || s->clauses[k].kind == C_CALL;
      if (c->kind == C_MERGE) TRY(qmatch_new(q, &c->pat, &o->a, &o->m));
      break;
    }
    }
  }
  return 0;
}

int q_plan(qctx *q, qop **out) {
  qstmt *s = q->stmt;
  if (s->schema) return q_schema_plan(q, out);
  if (s->nparts == 1) return plan_single(q, &s->parts[0], out);
  op_union *u = new_op(sizeof *u, NULL, union_next, union_free);
  if (!u) return qerr_oom(q);
  u->op.name = s->union_all ? "Union" : "Distinct Union";
  *out = &u->op;
  sl_arena_init(&u->a, &q->mem);
  u->seen.width = s->ncols;
  u->seen.a = &u->a;
  u->vals = sl_arena_alloc(&u->a, sizeof(qv) * (size_t)(s->ncols + 1));
  u->parts = sl_arena_zalloc(&u->a, sizeof(qop *) * (size_t)s->nparts);
  if (!u->vals || !u->parts) return qerr_oom(q);
  u->nparts = s->nparts;
  for (int i = 0; i < s->nparts; i++) TRY(plan_single(q, &s->parts[i], &u->parts[i]));
  return 0;
}
