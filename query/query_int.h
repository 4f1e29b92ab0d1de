/*
 * Internals shared by the files of query/ (not part of its contract).
 *
 *   lex.c     tokens with line:column
 *   parse.c   recursive descent into the AST below; variables are resolved
 *             to row slots while parsing (scopes), so semantic errors carry
 *             positions
 *   value.c   runtime values: copy, Cypher equality/comparison/ordering
 *             (property kinds through sl_value_compare/sl_value_order),
 *             hashing for DISTINCT and grouping, conversion to and from
 *             stored property values, text
 *   eval.c    expressions and functions
 *   match.c   the pattern matcher (a resumable backtracking enumerator)
 *   exec.c    the operators, one per clause, pulled one row at a time
 *   write.c   CREATE, MERGE, SET, REMOVE, DELETE
 *   api.c     the public sl_qtx_* / sl_qcursor_* calls, procedures
 *   cache.c   parsed statements kept by their text (sl_qcache)
 *   script.c  statement splitting and cypher-shell scripts (query.h)
 *
 * ROWS. A statement's variables each own a slot of one row array (slots
 * are assigned by the parser; a WITH gives its outputs new slots). Operators
 * pass the same row array up: each writes only its own slots.
 *
 * MEMORY. Values in a row point either into q->tmp (temporaries: reset
 * before an operator pulls its child's next row and before each
 * sl_qcursor_next) or into an operator's own arena. An operator that keeps an
 * input row across its next() calls copies it into its own arena first
 * (row_stabilize). Every arena chunk counts against the statement's memory
 * limit.
 */
#ifndef SL_QUERY_INT_H
#define SL_QUERY_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query.h"
#include "sl_base.h"

typedef sl_qvalue qv;
typedef struct qctx qctx;

/* Return x when it is an error (non-zero). */
#define TRY(x)             \
  do {                     \
    int rc_ = (x);         \
    if (rc_) return rc_;   \
  } while (0)

/* ---- tokens ------------------------------------------------------------------------ */
enum tok_type { T_EOF, T_IDENT, T_QIDENT, T_INT, T_FLOAT, T_STRING, T_PARAM, T_PUNCT };
enum { P_LE = 256, P_GE, P_NE, P_REGEX, P_PLUSEQ, P_DOTDOT };

typedef struct qtok {
  int type;
  int punct;           /* T_PUNCT: the character or P_* */
  const char *s;       /* the source text of the token */
  size_t n;
  const char *str;     /* T_IDENT, T_QIDENT, T_STRING, T_PARAM: decoded, NUL-terminated */
  size_t slen;
  int64_t i;
  double d;
  bool int_overflow;   /* T_INT too large for int64 */
  unsigned line, col;
} qtok;

/* ---- AST ----------------------------------------------------------------------------- */
enum expr_op {
  E_LIT, E_PARAM, E_VAR, E_PROP, E_INDEX, E_SLICE, E_LIST, E_MAP, E_FUNC, E_AGG, E_COUNTSTAR,
  E_NOT, E_NEG, E_AND, E_OR, E_XOR, E_EQ, E_NE, E_LT, E_LE, E_GT, E_GE, E_ADD, E_SUB, E_MUL,
  E_DIV, E_MOD, E_POW, E_IN, E_STARTS, E_ENDS, E_CONTAINS, E_REGEX, E_ISNULL, E_ISNOTNULL,
  E_CASE, E_LISTCOMP, E_HASLABELS, E_PATTERN, E_PATCOMP, E_QUANT, E_REDUCE
};

enum agg_kind { AGG_COUNT, AGG_COLLECT, AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_STDEV, AGG_STDEVP,
                AGG_PERCENTILE_DISC, AGG_PERCENTILE_CONT /* the percentile is E_AGG's b */ };
enum quant_kind { Q_ALL, Q_ANY, Q_NONE, Q_SINGLE };

typedef struct qexpr qexpr;
typedef struct qpattern qpattern;
typedef int (*qfunc_fn)(qctx *q, qexpr *e, qv *args, qv *out);

struct qexpr {
  uint8_t op;
  unsigned line, col;
  const char *src;  /* source text (column names) */
  size_t srclen;
  qv lit;           /* E_LIT */
  const char *name; /* E_VAR, E_PARAM, E_PROP key, E_FUNC name */
  int slot;         /* E_VAR; E_LISTCOMP/E_QUANT/E_REDUCE: the local variable; E_REDUCE acc in slot2 */
  int slot2;
  int agg;          /* E_AGG: enum agg_kind; E_QUANT: enum quant_kind */
  int aggidx;       /* E_AGG, E_COUNTSTAR: index in the projection's aggregate states */
  bool distinct;
  qexpr *a, *b, *c; /* operands; E_CASE: a = subject (may be NULL), c = else */
  qexpr **args;     /* E_FUNC, E_LIST, E_MAP values, E_CASE when/then pairs */
  int nargs;        /* always the length of args: tree walkers rely on it */
  const char **keys; /* E_MAP keys (nargs of them); E_HASLABELS labels (nlabels) */
  int nlabels;
  qfunc_fn fn;      /* E_FUNC */
  qpattern *pat;    /* E_PATTERN, E_PATCOMP */
  int depth;        /* levels of the tree below and with it; 0: not yet counted (parse.c, NESTING) */
};
/* NESTING: an expression tree deeper than this is refused when parsed
 * (SyntaxError): the parser, the planner and the evaluator recurse over
 * it, on a Bolt connection's thread too. */
#define SL_QUERY_MAX_DEPTH 1000

typedef struct qnodepat {
  int slot;          /* -1: anonymous (a hidden slot is still assigned) */
  bool bound;        /* bound before this pattern's level that reaches it */
  const char **labels;
  int nlabels;
  qexpr *props;      /* E_MAP or E_PARAM or NULL */
  unsigned line, col;
} qnodepat;

#define QREL_UNBOUNDED UINT32_MAX
typedef struct qrelpat {
  int slot;
  bool bound;
  const char **types;
  int ntypes;
  qexpr *props;
  int dir;           /* SL_DIR_OUT (->), SL_DIR_IN (<-), SL_DIR_BOTH */
  bool varlen;
  uint32_t min, max; /* max QREL_UNBOUNDED: up to the statement's hop limit */
  unsigned line, col;
} qrelpat;

typedef struct qpath {
  int slot;          /* named path variable, -1: none */
  int shortest;      /* 0, 1 shortestPath, 2 allShortestPaths */
  int nrels;         /* nodes: nrels + 1 */
  qnodepat *nodes;
  qrelpat *rels;
  unsigned line, col;
} qpath;

struct qpattern {
  int npaths;
  qpath *paths;
  qexpr *where;      /* pattern comprehension's WHERE */
  qexpr *seek_where; /* a MATCH clause's WHERE: its equalities may seek an index */
  qexpr *proj;       /* pattern comprehension's value */
};

enum clause_kind { C_MATCH, C_UNWIND, C_WITH, C_RETURN, C_CREATE, C_MERGE, C_SET, C_REMOVE, C_DELETE, C_CALL };
enum set_kind { SI_PROP, SI_MERGE_MAP, SI_REPLACE_MAP, SI_LABELS, SI_REMOVE_PROP, SI_REMOVE_LABELS };

typedef struct qitem {
  qexpr *e;
  const char *name; /* the column name: alias or the expression's text */
  int slot;
} qitem;

typedef struct qsetitem {
  int kind;
  qexpr *target;    /* the entity (SI_PROP: the E_PROP's object) */
  const char *key;  /* SI_PROP, SI_REMOVE_PROP */
  qexpr *value;
  const char **labels;
  int nlabels;
  unsigned line, col;
} qsetitem;

typedef struct qclause {
  int kind;
  unsigned line, col;
  bool optional;
  qpattern pat;
  qexpr *where;
  /* WITH, RETURN */
  bool distinct;
  qitem *items;
  int nitems;
  int naggs;         /* aggregate expressions among the items */
  qexpr **aggs;      /* the E_AGG / E_COUNTSTAR nodes, by aggidx */
  qexpr **order;
  bool *desc;
  int norder;
  qexpr *skip, *limit;
  /* UNWIND */
  qexpr *expr;
  int slot;
  /* SET, REMOVE, MERGE's ON CREATE / ON MATCH */
  qsetitem *sets;
  int nsets;
  qsetitem *on_create, *on_match;
  int non_create, non_match;
  /* DELETE */
  bool detach;
  qexpr **dels;
  int ndels;
  /* CALL */
  const char *proc;
  qexpr **args;
  int nargs;
  const char **yields; /* output names of the procedure yielded */
  int *yslots;
  int nyields;
  bool standalone;     /* CALL without YIELD as the whole query */
  /* the slots of the variables in scope before and after the clause: the
   * only slots an operator copies (the others may point at freed memory) */
  int *live_in, *live_out;
  int nlive_in, nlive_out;
} qclause;

typedef struct qsingle {
  qclause *clauses;
  int nclauses;
  int ncols;
  const char **cols;
  int *colslots;       /* the RETURN's slots */
} qsingle;

typedef struct qschema qschema;
typedef struct qstmt {
  qschema *schema;   /* a schema statement (schema.c): no parts' clauses */
  qsingle *parts;
  int nparts;
  bool union_all;
  bool writes;
  uint8_t explain;   /* Q_EXPLAIN: plan only, no row; Q_PROFILE: run, with the plan */
  int nslots;
  int ncols;
  const char **cols;
  const qtok **params; /* each $name the text uses, once, in order (checked before a run) */
  int nparams;
} qstmt;

/* ---- the statement context --------------------------------------------------------------- */
typedef struct qop qop;

typedef struct qctx {
  sl_store *st;
  sl_view *view;
  sl_tx *tx;         /* NULL: read-only */
  const sl_query_options *opt;
  sl_query_error *err;
  const char *text;  /* the statement */
  size_t len;
  sl_arena_budget mem;
  sl_arena ast;        /* the text's copy and the AST (unless cached: cache.c), the
                          parameters: lives as long as the statement */
  sl_arena tmp;        /* temporaries (see MEMORY) */
  sl_arena out;        /* the row handed to the caller */
  qstmt *stmt;
  const sl_qparam *params;
  size_t nparams;
  qv *row;
  qv *aggres;        /* E_AGG results while a grouped projection emits */
  qop *root;
  sl_qstats stats;
  uint64_t deadline_ns; /* 0: none */
  uint64_t clock_us;    /* the clock functions' time: read once, so every call in a statement agrees */
  uint32_t ticks;
  uint32_t max_hops;
  char store_uuid[40];
  /* DELETE without DETACH: node deletions checked after the clause (write.c) */
  uint64_t *defer_ids;
  size_t ndefer, defer_cap;
  unsigned defer_line, defer_col;
} qctx;

/* The statement's clock (date(), datetime.transaction(), ...): read once,
 * so every clock function of a statement sees the same instant. */
static inline uint64_t q_clock_us(qctx *q) { return q->clock_us ? q->clock_us : (q->clock_us = sl_now_us()); }

/* Errors: set q->err (the first one wins) and return the code. */
int qerr(qctx *q, int rc, const char *code, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define ST_SYNTAX "Neo.ClientError.Statement.SyntaxError"
#define ST_SEMANTIC "Neo.ClientError.Statement.SemanticError"
#define ST_TYPE "Neo.ClientError.Statement.TypeError"
#define ST_ARG "Neo.ClientError.Statement.ArgumentError"
#define ST_PARAM "Neo.ClientError.Statement.ParameterMissing"
#define ST_NOTFOUND "Neo.ClientError.Statement.EntityNotFound"
#define ST_ACCESS "Neo.ClientError.Statement.AccessMode"
#define ST_CONSTRAINT "Neo.ClientError.Schema.ConstraintValidationFailed"
#define ST_TIMEOUT "Neo.ClientError.Transaction.TransactionTimedOut"
#define ST_OOM "Neo.TransientError.General.MemoryPoolOutOfMemoryError"
#define ST_NOPROC "Neo.ClientError.Procedure.ProcedureNotFound"
#define ST_GENERAL "Neo.DatabaseError.General.UnknownError"
/* -ENOMEM from an arena: the memory error (once). */
int qerr_oom(qctx *q);
/* Every so many rows: the deadline (SL_ETIME) and the memory flag. */
int qtick(qctx *q);
/* A store error as a query error (EntityNotFound, ConstraintValidation, ...). */
int qerr_store(qctx *q, int rc, unsigned line, unsigned col);

/* ---- lex.c ------------------------------------------------------------------------------ */
int q_lex(qctx *q, qtok **toks, int *n);

/* ---- parse.c --------------------------------------------------------------------------- */
/* q->stmt from q->text (allocated in q->ast, as the tokens are). */
int q_parse(qctx *q);

/* ---- cache.c: parsed statements kept by text (sl_qcache) ------------------------------- */
typedef struct qparsed qparsed;
/* q->stmt for text[0..len): cache's (a hit), else parsed now into q->ast
 * (a copy of the text first); with a cache the parse then moves into a new
 * entry. *held: the entry the statement runs (a reference: release it
 * with q_parsed_release when the statement ends), NULL when its AST is
 * q->ast's. */
int q_parse_cached(qctx *q, sl_qcache *cache, const char *text, size_t len, qparsed **held);
void q_parsed_release(qparsed *p);

/* ---- value.c ----------------------------------------------------------------------------- */
static inline qv qv_null(void) { qv v; v.kind = SL_NULL; return v; }
static inline qv qv_bool(bool b) { qv v; v.kind = SL_BOOL; v.u.v.kind = SL_BOOL; v.u.v.u.b = b; return v; }
static inline qv qv_int(int64_t i) { qv v; v.kind = SL_INT; v.u.v.kind = SL_INT; v.u.v.u.i = i; return v; }
static inline qv qv_double(double d) { qv v; v.kind = SL_DOUBLE; v.u.v.kind = SL_DOUBLE; v.u.v.u.d = d; return v; }
qv qv_str(const char *s, size_t n);
qv qv_node(uint64_t id);
qv qv_rel(uint64_t id, uint64_t start, uint64_t end, const char *type);
/* Deep copy into a. */
int qv_copy(sl_arena *a, const qv *in, qv *out);
/* Cypher's `=`: 1 true, 0 false, -1 null. */
int qv_equal(const qv *a, const qv *b);
/* Cypher's `<` etc.: 1 with *cmp set when comparable, 0 when null. */
int qv_compare(const qv *a, const qv *b, int *cmp);
/* ORDER BY's total order (null last); 0 also means "equivalent" (DISTINCT). */
int qv_order(const qv *a, const qv *b);
uint64_t qv_hash(const qv *v);
uint64_t q_hash_bytes(const void *p, size_t n); /* FNV-1a */
/* A stored property value as a runtime value (lists become SL_QLIST);
 * strings copied into a. */
int qv_from_prop(sl_arena *a, const sl_value *in, qv *out);
/* A runtime value as a storable property (SL_NULL for null); TypeError
 * otherwise. */
int qv_to_prop(qctx *q, sl_arena *a, const qv *in, sl_value *out, unsigned line, unsigned col);
/* A parameter (public form) into a runtime value. */
int qv_from_public(sl_arena *a, const sl_qvalue *in, qv *out);
/* The value materialized for the caller: nodes and relationships read
 * with labels, type and properties, element ids. */
int qv_materialize(qctx *q, sl_arena *a, const qv *in, qv *out);
/* Cypher's toString text (strings as they are); NULL for kinds without one. */
const char *qv_text(qctx *q, sl_arena *a, const qv *v, size_t *len);
/* "Integer", "String", "Node", ... for messages. */
const char *qv_type_name(const qv *v);
/* Java's Double.toString, as Neo4j prints doubles. */
size_t q_double_text(double d, char *buf, size_t size);
/* Is the value true (for WHERE): only boolean true. */
static inline bool qv_true(const qv *v) { return v->kind == SL_BOOL && v->u.v.u.b; }
void q_element_id(qctx *q, bool rel, uint64_t id, char *buf);
/* Read an entity's property (null when absent; EntityNotFound when this
 * transaction deleted the entity). */
int q_prop(qctx *q, const qv *ent, const char *key, qv *out);
/* The EntityNotFound error of reading an entity this transaction deleted. */
int q_deleted_entity(qctx *q, bool node, uint64_t id);

/* ---- eval.c ---------------------------------------------------------------------------- */
int q_eval(qctx *q, qexpr *e, qv *out);
/* range(): whether e calls it, and its bounds from evaluated args (errors
 * as the function's), for UNWIND to count through it without a list. */
bool q_is_range(const qexpr *e);
int q_range_bounds(qctx *q, const qexpr *e, const qv *args, int64_t *from, int64_t *step, uint64_t *count);
/* Temporal helpers of eval.c, shared with temporal_fn.c. */
int64_t days_from_civil(int64_t y, int64_t m, int64_t d);
void civil_from_days(int64_t days, int64_t *y, int64_t *m, int64_t *d);
void iso_week(int64_t days, int64_t *wy, int64_t *week, int64_t *dow);
int temporal_field(qctx *q, qexpr *e, const qv *v, const char *key, qv *out);
int temporal_from_map(qctx *q, qexpr *e, const qv *m, sl_kind kind, qv *out);
int fn_truncate(qctx *q, qexpr *e, qv *args, qv *out);         /* temporal_fn.c */
int fn_duration_between(qctx *q, qexpr *e, qv *args, qv *out); /* temporal_fn.c */
int fn_clock(qctx *q, qexpr *e, qv *args, qv *out);            /* temporal_fn.c */
int fn_fromepoch(qctx *q, qexpr *e, qv *args, qv *out);        /* temporal_fn.c */
int instant_in_zone(qctx *q, qexpr *e, int64_t secs, int32_t nanos, const char *zone, size_t zlen, qv *out);
int temporal_to_zone(qctx *q, qexpr *e, const qv *v, const qv *zone, qv *out);
qfunc_fn q_func_lookup(const char *name, int nargs, int *minargs, int *maxargs);
bool q_is_agg_name(const char *name, int *kind);

/* ---- match.c ----------------------------------------------------------------------------- */
typedef struct qmatch qmatch;
/* An enumerator of the matches of a pattern given the bindings in q->row. */
int qmatch_new(qctx *q, qpattern *pat, sl_arena *a, qmatch **out);
/* Start nodes known from the WHERE (`id(n) = expr`): seek, do not scan. */
void qmatch_seek(qmatch *m, qexpr *where);
/* Start over with the current row's bindings. */
int qmatch_reset(qctx *q, qmatch *m);
/* 1: a match bound into q->row; 0: no more; <0: error. */
int qmatch_next(qctx *q, qmatch *m);
void qmatch_free(qmatch *m);
/* Is there any match (pattern predicates)? */
int q_pattern_exists(qctx *q, qpattern *pat, bool *out);
/* The shortest path search of a MATCH path (1 = found). */

/* ---- exec.c ------------------------------------------------------------------------------ */
enum { Q_EXPLAIN = 1, Q_PROFILE = 2 };

struct qop {
  int (*next)(qctx *q, qop *op); /* 1 row ready in q->row, 0 done, <0 error */
  void (*free)(qop *op);
  qop *child;
  const char *name;              /* Neo4j's operator name, for EXPLAIN */
};
int q_plan(qctx *q, qop **out);
/* EXPLAIN's plan line: the operators from the root (ProduceResults) down
 * to the leaf, as Neo4j names them, the MATCH sources with what they read
 * (NodeIndexSeek(n:Person(id)), NodeByLabelScan(n:Person), ...). */
void q_plan_describe(const qop *root, char *buf, size_t len);
/* A MATCH's operators, leaf last (match.c). */
size_t qmatch_describe(const qmatch *m, char *buf, size_t len);
void q_op_free(qop *op);
/* Copy the live slots of q->row into a (the operator keeps the row). */
int row_stabilize(qctx *q, sl_arena *a, const int *live, int nlive);

/* ---- write.c --------------------------------------------------------------------------- */
int q_write_row(qctx *q, qclause *c);   /* CREATE, SET, REMOVE, DELETE on one row */
int q_write_finish(qctx *q, qclause *c, sl_arena *a); /* deferred node deletions */
int q_merge_create(qctx *q, qclause *c); /* MERGE found nothing: create the path */
int q_apply_sets(qctx *q, qsetitem *items, int n);
int q_create_path(qctx *q, qpath *p, bool merge); /* merge: MERGE's create (null properties refused) */

/* ---- schema statements (schema.c) -------------------------------------------------------- */
/* Do the tokens start a schema statement (CREATE INDEX/CONSTRAINT, DROP, SHOW)? */
bool q_schema_statement(const qtok *t, int n);
/* Parse one into q->stmt (stmt->schema set). */
int q_schema_parse(qctx *q, qtok *t, int n);
/* Its one operator: the create or drop, or SHOW's rows. */
int q_schema_plan(qctx *q, qop **out);
/* An index seek for a start node (match.c's SRC_INDEX): the index whose
 * label the pattern has and whose keys its property map gives. */
typedef struct q_seek {
  const char *index;
  int label;                       /* the node pattern's label the index is on */
  int nkeys;
  qexpr *vals[SL_SCHEMA_KEYS_MAX]; /* the map's value for each key, in the index's order */
  bool range;                      /* else: equality on every key */
  qexpr *lo, *hi;                  /* range: bounds of the first key (either may be NULL) */
  bool lo_incl, hi_incl;
} q_seek;
/* 1 and *out when an index fits node pattern n (names copied into a), else
 * 0. The keys' values come from n's property map, or from `n.key = expr`
 * conjuncts of where whose expr reads no variable but those in bound[0..nb)
 * (bound before the clause); without those, `n.key < expr` (<=, >, >=,
 * either way round) conjuncts on an index's first key give a range. */
/* A schema statement that changes the schema (not SHOW): *line, *col say
 * where it starts. */
bool q_schema_writes(const qschema *s, unsigned *line, unsigned *col);
int q_schema_seek_plan(qctx *q, const qnodepat *n, const qexpr *where, const int *bound, int nb, sl_arena *a,
                       q_seek *out);
/* The candidates of a seek with the current row's values (into a): 1, or 0
 * when the values cannot be sought (lists: scan the label instead).
 * *exact: an equality seek whose candidates equal every sought value by
 * Cypher's `=` as well (no need to compare them again). */
int q_schema_seek_ids(qctx *q, const q_seek *s, sl_arena *a, uint64_t **ids, size_t *n, bool *exact);

/* ---- procedures (api.c) ---------------------------------------------------------------- */
/* Rows of a procedure: each call of fn sets the yielded slots. */
int q_call_rows(qctx *q, qclause *c, sl_arena *a, qv **rows, size_t *nrows, int *ncols);
int q_proc_columns(const char *name, const char *const **cols, int *ncols);

/* ---- store scans: batched, resumable (store/store.h sl_view_scan_ids) ---------------------- */
#endif
