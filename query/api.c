/*
 * The public query API (include/shiplog.h, "queries"): query transactions
 * on a view or a write transaction, statements and their cursors, errors
 * with Neo4j's status codes, the statement limits; and the built-in
 * procedures (db.labels(), db.relationshipTypes(), db.propertyKeys(),
 * dbms.components(), db.awaitIndexes(), db.awaitIndex()).
 *
 * A statement lives in its cursor: the AST (or its reference to a cached
 * one: cache.c), the operators and their arenas are freed by
 * sl_qcursor_close. A statement that fails marks its
 * transaction failed: it can then only be rolled back (as in Neo4j), which
 * is also what keeps "a failed statement changes nothing" true, since the
 * store's transaction has no savepoints.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"
#include "store.h"

#define DEFAULT_MEMORY (1ull << 30)

struct sl_qtx {
  sl_store *st;
  sl_tx *tx;
  sl_view *view;
  sl_query_options opt;
  bool failed;
  sl_qcursor *open;
  char uuid[40];
};

struct sl_qcursor {
  sl_qtx *t;
  qctx q;
  qparsed *parsed; /* the cached parse it runs (a reference), or NULL: the AST is q.ast's */
  qv *out;
  int ncols;
  int *colslots;
  bool done, failed;
  char *plan; /* EXPLAIN, PROFILE: q_plan_describe's line */
};

/* ---- errors ------------------------------------------------------------------------------- */
int qerr(qctx *q, int rc, const char *code, unsigned line, unsigned col, const char *fmt, ...) {
  if (q->err && !q->err->code[0]) {
    snprintf(q->err->code, sizeof q->err->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err->message, sizeof q->err->message, fmt, ap);
    va_end(ap);
    q->err->line = line;
    q->err->column = col;
  }
  return rc;
}

int qerr_oom(qctx *q) {
  q->mem.over = true;
  return qerr(q, -ENOMEM, ST_OOM, 0, 0,
              "The allocation of an extra chunk would use more than the limit %zu bytes of the statement's memory "
              "(--query-memory). Currently using %zu bytes.",
              q->mem.limit, q->mem.used);
}

int qtick(qctx *q) {
  if (q->mem.over) return qerr_oom(q);
  if (++q->ticks & 255) return 0;
  if (q->deadline_ns && sl_mono_ns() > q->deadline_ns)
    return qerr(q, SL_ETIME, ST_TIMEOUT, 0, 0,
                "The transaction has been terminated. Retry your operation in a new transaction, and you should see a "
                "successful result. The transaction has not completed within the timeout specified at its start by "
                "the client (--query-timeout %llu ms).",
                (unsigned long long)q->opt->timeout_ms);
  return 0;
}

int qerr_store(qctx *q, int rc, unsigned line, unsigned col) {
  const char *why = q->tx ? sl_tx_error(q->tx) : NULL;
  if (!why) why = sl_strerror(rc);
  switch (rc) {
  case -ENOMEM: return qerr_oom(q);
  case SL_ENOTFOUND: return qerr(q, rc, ST_NOTFOUND, line, col, "%s", why);
  case SL_EEXIST:
  case SL_ECONSTRAINT:
  case SL_EHASRELS: return qerr(q, rc, ST_CONSTRAINT, line, col, "%s", why);
  case SL_EINVAL: return qerr(q, rc, ST_ARG, line, col, "%s", why);
  case SL_ETXKIND: return qerr(q, rc, "Neo.ClientError.Transaction.ForbiddenDueToTransactionType", line, col, "%s", why);
  case SL_ETOOBIG: return qerr(q, rc, "Neo.TransientError.General.OutOfMemoryError", line, col, "%s", why);
  case SL_EREADONLY: return qerr(q, rc, ST_ACCESS, line, col, "Writing in read access mode not allowed");
  default: return qerr(q, rc, "Neo.DatabaseError.General.UnknownError", line, col, "%s", why);
  }
}

static void set_err(sl_query_error *err, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(sl_query_error *err, const char *code, const char *fmt, ...) {
  if (!err) return;
  memset(err, 0, sizeof *err);
  snprintf(err->code, sizeof err->code, "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
}

/* ---- transactions ------------------------------------------------------------------------ */
int sl_qtx_begin(sl_store *st, bool write, const sl_query_options *opt, sl_qtx **out) {
  *out = NULL;
  sl_qtx *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->st = st;
  if (opt) t->opt = *opt;
  if (!t->opt.memory_bytes) t->opt.memory_bytes = DEFAULT_MEMORY;
  if (!t->opt.max_hops) t->opt.max_hops = SL_QUERY_MAX_HOPS;
  const uint8_t *u = sl_store_id(st);
  /* 8-4-4-4-12 hex digits; by hand: snprintf cost a point lookup 5% */
  char *p = t->uuid;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = "0123456789abcdef"[u[i] >> 4];
    *p++ = "0123456789abcdef"[u[i] & 15];
  }
  *p = 0;
  int rc;
  if (write) {
    if ((rc = sl_tx_begin(st, &t->tx))) goto fail;
    t->view = sl_tx_view(t->tx);
  } else if ((rc = sl_view_begin(st, &t->view))) {
    goto fail;
  }
  *out = t;
  return 0;
fail:
  free(t);
  return rc;
}

static void cursor_free(sl_qcursor *c) {
  q_op_free(c->q.root);
  sl_arena_free(&c->q.tmp);
  sl_arena_free(&c->q.out);
  sl_arena_free(&c->q.ast);
  q_parsed_release(c->parsed);
  free(c->q.defer_ids);
  free(c);
}

static const char *first_write_clause(const qstmt *s, unsigned *line, unsigned *col) {
  for (int i = 0; i < s->nparts; i++)
    for (int j = 0; j < s->parts[i].nclauses; j++) {
      const qclause *c = &s->parts[i].clauses[j];
      if (c->kind == C_CREATE || c->kind == C_MERGE || c->kind == C_SET || c->kind == C_REMOVE || c->kind == C_DELETE) {
        *line = c->line;
        *col = c->col;
        return "";
      }
    }
  return NULL;
}

/* Every parameter the statement names is given: else ParameterMissing
 * naming all that are not, at the first one. */
static int check_params(qctx *q) {
  char names[512] = "";
  size_t used = 0;
  const qtok *first = NULL;
  for (int i = 0; i < q->stmt->nparams; i++) {
    const qtok *t = q->stmt->params[i];
    size_t k = 0;
    while (k < q->nparams && strcmp(q->params[k].name, t->str)) k++;
    if (k < q->nparams) continue;
    if (!first) first = t;
    int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", t->str);
    if (w > 0) used = SL_MIN(used + (size_t)w, sizeof names - 1);
  }
  if (!first) return 0;
  return qerr(q, SL_EINVAL, ST_PARAM, first->line, first->col, "Expected parameter(s): %s", names);
}

int sl_qtx_run(sl_qtx *t, const char *text, size_t len, const sl_qparam *params, size_t nparams, sl_qcursor **out,
               sl_query_error *err) {
  sl_query_error dummy;
  if (!err) err = &dummy;
  memset(err, 0, sizeof *err);
  *out = NULL;
  if (t->failed) {
    set_err(err, "Neo.ClientError.Transaction.TransactionMarkedAsFailed",
            "The transaction has been marked as failed by an earlier statement: roll it back");
    return SL_EINVAL;
  }
  if (t->open) {
    set_err(err, "Neo.ClientError.Request.Invalid", "close the previous statement's cursor first");
    return SL_EINVAL;
  }
  sl_qcursor *c = calloc(1, sizeof *c);
  if (!c) {
    set_err(err, ST_OOM, "out of memory");
    return -ENOMEM;
  }
  qctx *q = &c->q;
  c->t = t;
  q->st = t->st;
  q->view = t->view;
  q->tx = t->tx;
  q->opt = &t->opt;
  q->err = err;
  q->mem.limit = t->opt.memory_bytes;
  q->max_hops = t->opt.max_hops;
  memcpy(q->store_uuid, t->uuid, sizeof q->store_uuid);
  sl_arena_init(&q->ast, &q->mem);
  sl_arena_init(&q->tmp, &q->mem);
  sl_arena_init(&q->out, &q->mem);
  if (t->opt.timeout_ms) q->deadline_ns = sl_mono_ns() + t->opt.timeout_ms * 1000000ull;
  int rc = q_parse_cached(q, t->opt.cache, text, len, &c->parsed);
  if (rc) goto fail;
  sl_qparam *ps = sl_arena_alloc(&q->ast, sizeof *ps * (nparams ? nparams : 1));
  if (!ps) {
    rc = qerr_oom(q);
    goto fail;
  }
  for (size_t i = 0; i < nparams; i++) {
    ps[i].name = sl_arena_strndup(&q->ast, params[i].name, strlen(params[i].name));
    if (!ps[i].name || qv_from_public(&q->ast, &params[i].value, &ps[i].value)) {
      rc = qerr_oom(q);
      goto fail;
    }
  }
  q->params = ps;
  q->nparams = nparams;
  unsigned line, col;
  if (q->stmt->explain != Q_EXPLAIN && (rc = check_params(q))) goto fail;
  /* Refused before anything runs, so that a caller holding a snapshot
   * (bolt/) can move to a write transaction and run the statement again. */
  bool runs = q->stmt->explain != Q_EXPLAIN; /* EXPLAIN plans and runs nothing: no access mode to check */
  if (runs && !t->tx && q->stmt->schema && q_schema_writes(q->stmt->schema, &line, &col)) {
    rc = qerr(q, SL_EREADONLY, ST_ACCESS, line, col, "Schema operations are not allowed in read access mode%s%s",
              t->opt.read_only_reason ? ": " : "", t->opt.read_only_reason ? t->opt.read_only_reason : "");
    goto fail;
  }
  if (runs && !t->tx && first_write_clause(q->stmt, &line, &col)) {
    rc = qerr(q, SL_EINVAL, ST_ACCESS, line, col, "Writing in read access mode not allowed%s%s",
              t->opt.read_only_reason ? ": " : "", t->opt.read_only_reason ? t->opt.read_only_reason : "");
    goto fail;
  }
  q->stats.contains_updates = runs && q->stmt->writes;
  q->row = sl_arena_zalloc(&q->ast, sizeof *q->row * (size_t)(q->stmt->nslots ? q->stmt->nslots : 1));
  c->ncols = q->stmt->ncols;
  c->colslots = q->stmt->nparts ? q->stmt->parts[0].colslots : NULL;
  c->out = sl_arena_zalloc(&q->ast, sizeof *c->out * (size_t)(c->ncols ? c->ncols : 1));
  if (!q->row || !c->out) {
    rc = qerr_oom(q);
    goto fail;
  }
  if ((rc = q_plan(q, &q->root))) goto fail;
  if (q->stmt->explain) {
    char line_buf[2048];
    q_plan_describe(q->root, line_buf, sizeof line_buf);
    if (!(c->plan = sl_arena_strndup(&q->ast, line_buf, strlen(line_buf)))) {
      rc = qerr_oom(q);
      goto fail;
    }
    c->done = !runs;
  }
  t->open = c;
  *out = c;
  return 0;
fail:
  if (!err->code[0]) set_err(err, "Neo.DatabaseError.General.UnknownError", "%s", sl_strerror(rc));
  t->failed = true;
  cursor_free(c);
  return rc;
}

const char *sl_qcursor_plan(const sl_qcursor *c, bool *profile) {
  if (profile) *profile = c->q.stmt->explain == Q_PROFILE;
  return c->plan;
}

const char *sl_qcursor_type(const sl_qcursor *c) {
  unsigned line, col;
  const qstmt *s = c->q.stmt;
  if (s->schema) return q_schema_writes(s->schema, &line, &col) ? "s" : "r";
  return !s->writes ? "r" : s->ncols ? "rw" : "w";
}

size_t sl_qcursor_columns(const sl_qcursor *c, const char *const **names) {
  *names = c->q.stmt->cols;
  return (size_t)c->ncols;
}

static int cursor_fail(sl_qcursor *c, int rc, sl_query_error *err) {
  c->failed = true;
  c->done = true;
  c->t->failed = true;
  if (err && c->q.err != err && c->q.err) *err = *c->q.err;
  if (err && !err->code[0]) set_err(err, "Neo.DatabaseError.General.UnknownError", "%s", sl_strerror(rc));
  return rc;
}

int sl_qcursor_next(sl_qcursor *c, const sl_qvalue **row, sl_query_error *err) {
  sl_query_error dummy;
  if (!err) err = &dummy;
  *row = NULL;
  if (c->failed) {
    set_err(err, "Neo.ClientError.Transaction.TransactionMarkedAsFailed", "the statement failed earlier");
    return SL_EINVAL;
  }
  if (c->done) return 0;
  qctx *q = &c->q;
  memset(err, 0, sizeof *err);
  q->err = err;
  for (;;) {
    sl_arena_reset(&q->tmp);
    sl_arena_reset(&q->out);
    int rc = q->root->next(q, q->root);
    if (rc < 0) return cursor_fail(c, rc, err);
    if (rc == 0) {
      c->done = true;
      return 0;
    }
    if (!c->ncols) continue; /* a statement without RETURN: run it whole */
    for (int i = 0; i < c->ncols; i++)
      if ((rc = qv_materialize(q, &q->out, &q->row[c->colslots[i]], &c->out[i]))) return cursor_fail(c, rc, err);
    *row = c->out;
    return 1;
  }
}

void sl_qcursor_stats(const sl_qcursor *c, sl_qstats *out) { *out = c->q.stats; }

int sl_qcursor_finish(sl_qcursor *c, sl_query_error *err) {
  int rc = 0;
  if (!c->failed && !c->done && c->q.stmt->writes) {
    const sl_qvalue *row;
    while ((rc = sl_qcursor_next(c, &row, err)) == 1) {
    }
  }
  return rc < 0 ? rc : 0;
}

int sl_qcursor_close(sl_qcursor *c, sl_query_error *err) {
  if (!c) return 0;
  int rc = sl_qcursor_finish(c, err);
  if (c->failed) {
    c->t->failed = true;
    if (!rc) rc = SL_EINVAL;
  }
  c->t->open = NULL;
  cursor_free(c);
  return rc < 0 ? rc : 0;
}

int sl_qtx_commit(sl_qtx *t, uint64_t *txid, sl_query_error *err) {
  if (txid) *txid = 0;
  int rc = 0;
  if (t->open) sl_qcursor_close(t->open, NULL);
  if (t->failed) {
    set_err(err, "Neo.ClientError.Transaction.TransactionMarkedAsFailed",
            "The transaction has been marked as failed by an earlier statement and was rolled back");
    sl_qtx_rollback(t);
    return SL_EINVAL;
  }
  if (t->tx && (rc = sl_tx_check_constraints(t->tx))) { /* schema's constraints, with the reason */
    set_err(err, rc == SL_ECONSTRAINT ? ST_CONSTRAINT : "Neo.DatabaseError.Transaction.TransactionCommitFailed", "%s",
            sl_tx_error(t->tx) ? sl_tx_error(t->tx) : sl_strerror(rc));
    sl_qtx_rollback(t);
    return rc;
  }
  if (t->tx) {
    rc = sl_tx_commit(t->tx, txid);
    if (rc) set_err(err, "Neo.DatabaseError.Transaction.TransactionCommitFailed", "commit failed: %s", sl_strerror(rc));
  } else {
    sl_view_end(t->view);
  }
  free(t);
  return rc;
}

void sl_qtx_rollback(sl_qtx *t) {
  if (!t) return;
  if (t->open) cursor_free(t->open);
  if (t->tx) sl_tx_abort(t->tx);
  else sl_view_end(t->view);
  free(t);
}

/* ---- procedures ---------------------------------------------------------------------------- */
static const char *const cols_label[] = {"label"};
static const char *const cols_type[] = {"relationshipType"};
static const char *const cols_key[] = {"propertyKey"};
static const char *const cols_components[] = {"name", "versions", "edition"};

static const struct proc {
  const char *name;
  const char *const *cols;
  int ncols;
  int min, max; /* arguments */
} procs[] = {
    {"db.labels", cols_label, 1, 0, 0},
    {"db.relationshipTypes", cols_type, 1, 0, 0},
    {"db.propertyKeys", cols_key, 1, 0, 0},
    {"dbms.components", cols_components, 3, 0, 0},
    {"db.awaitIndexes", NULL, 0, 0, 1},
    {"db.awaitIndex", NULL, 0, 1, 2},
};

static const struct proc *find_proc(const char *name) {
  for (size_t i = 0; i < SL_ARRAY_LEN(procs); i++)
    if (!strcasecmp(procs[i].name, name)) return &procs[i];
  return NULL;
}

int q_proc_columns(const char *name, const char *const **cols, int *ncols) {
  const struct proc *p = find_proc(name);
  if (!p) return SL_ENOTFOUND;
  *cols = p->cols;
  *ncols = p->ncols;
  return 0;
}

typedef struct names {
  qctx *q;
  sl_arena *a;
  char **v;
  size_t n, cap;
} names;

static int add_name(void *arg, const char *name) {
  names *ns = arg;
  for (size_t i = 0; i < ns->n; i++)
    if (!strcmp(ns->v[i], name)) return 0;
  if (ns->n == ns->cap) {
    size_t cap = ns->cap ? ns->cap * 2 : 16;
    char **nv = sl_arena_alloc(ns->a, sizeof *nv * cap);
    if (!nv) return -ENOMEM;
    if (ns->n) memcpy(nv, ns->v, sizeof *nv * ns->n);
    ns->v = nv;
    ns->cap = cap;
  }
  if (!(ns->v[ns->n] = sl_arena_strndup(ns->a, name, strlen(name)))) return -ENOMEM;
  ns->n++;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int q_call_rows(qctx *q, qclause *c, sl_arena *a, qv **rows, size_t *nrows, int *ncols) {
  const struct proc *p = find_proc(c->proc);
  *rows = NULL;
  *nrows = 0;
  *ncols = c->nyields;
  if (c->nargs < p->min || c->nargs > p->max)
    return qerr(q, SL_EINVAL, ST_SYNTAX, c->line, c->col, "Procedure call does not provide the required number of arguments: %s takes %d to %d",
                p->name, p->min, p->max);
  for (int i = 0; i < c->nargs; i++) {
    qv v;
    int rc = q_eval(q, c->args[i], &v);
    if (rc) return rc;
  }
  /* which of the procedure's columns each yield takes */
  int map[8];
  for (int i = 0; i < c->nyields; i++) {
    map[i] = 0;
    for (int k = 0; k < p->ncols; k++)
      if (!strcmp(p->cols[k], c->yields[i])) map[i] = k;
  }
  if (c->standalone)
    for (int i = 0; i < c->nyields; i++) map[i] = i;
  /* yields renamed with AS lost the column name: match by position of the
   * original name recorded by the parser */
  qv *all = NULL;
  size_t n = 0;
  int w = p->ncols;
  if (!strcasecmp(p->name, "dbms.components")) {
    all = sl_arena_alloc(a, sizeof *all * 3);
    qv *vers = sl_arena_alloc(a, sizeof *vers);
    if (!all || !vers) return qerr_oom(q);
    *vers = qv_str("5.26.0", 6);
    all[0] = qv_str("Neo4j Kernel", 12);
    all[1].kind = SL_QLIST;
    all[1].u.list.n = 1;
    all[1].u.list.items = vers;
    all[2] = qv_str("community", 9);
    n = 1;
  } else if (p->ncols == 1) {
    names ns = {q, a, NULL, 0, 0};
    int what = !strcasecmp(p->name, "db.labels") ? 0 : !strcasecmp(p->name, "db.relationshipTypes") ? 1 : 2;
    int rc = sl_view_names(q->view, what, add_name, &ns);
    if (rc == -ENOMEM) return qerr_oom(q);
    if (rc) return qerr_store(q, rc, c->line, c->col);
    if (ns.n) qsort(ns.v, ns.n, sizeof *ns.v, cmp_str);
    all = sl_arena_alloc(a, sizeof *all * (ns.n ? ns.n : 1));
    if (!all) return qerr_oom(q);
    for (size_t i = 0; i < ns.n; i++) all[i] = qv_str(ns.v[i], strlen(ns.v[i]));
    n = ns.n;
  }
  if (!c->nyields) {
    *nrows = c->standalone ? 0 : 1;
    return 0;
  }
  qv *out = sl_arena_alloc(a, sizeof *out * (n * (size_t)c->nyields + 1));
  if (!out) return qerr_oom(q);
  for (size_t r = 0; r < n; r++)
    for (int i = 0; i < c->nyields; i++) out[r * (size_t)c->nyields + (size_t)i] = all[r * (size_t)w + (size_t)map[i]];
  *rows = out;
  *nrows = n;
  return 0;
}
