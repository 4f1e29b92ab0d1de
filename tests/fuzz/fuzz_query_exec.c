/*
 * fuzz_query_exec: generated statements run against a small graph, with
 * the engine's limits set (time, memory, variable-length hops), each in a
 * write query transaction that is rolled back, so every input meets the
 * same graph. An input is a stream of choices for a small generator of
 * Cypher (clauses, patterns, expressions, functions, aggregations, writes),
 * which reaches the executor with valid queries far more often than mutated
 * text does (fuzz_query mutates text: the TCK's queries are among its
 * seeds). Each statement runs twice through one small sl_qcache kept
 * across inputs: the second run takes the first's parse, and must get as
 * far and fail the same way. Any input must end in rows or a statement error: no crash, no
 * leak, no memory past the limit (the engine's own, and libFuzzer's
 * -rss_limit_mb in tests/fuzz/run.sh).
 *
 * Until the engine's API is in shiplog.h (SL_QUERY_MAX_HOPS marks it), the
 * harness compiles to nothing that runs.
 */
#include "fuzz.h"

#include <stdarg.h>
#include <string.h>

#include "shiplog.h"

#ifdef SL_QUERY_MAX_HOPS

static sl_store *st;
static const sl_query_options limits = {.timeout_ms = 2000, .memory_bytes = 8u << 20, .max_hops = 4};

/* Three labels, two types, a cycle, a self loop, lists, a null-less mix of kinds. */
static const char graph[] =
    "CREATE (a:A {name: 'a', n: 1, f: 1.5, l: [1, 2, 3], s: 'x'}), (b:B {name: 'b', n: 2}),"
    " (c:A:C {name: 'c', n: -3, t: true}), (d {name: 'd', l: ['p', 'q']}), (e:B),"
    " (a)-[:T {w: 1}]->(b), (b)-[:T {w: 2}]->(c), (c)-[:U]->(a), (c)-[:U {w: 0.5}]->(d),"
    " (d)-[:T]->(d), (a)-[:U]->(e)";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/query-exec-store", fuzz_scratch());
  if (sl_store_create(dir, NULL) || sl_store_open(dir, 0, &st)) abort();
  sl_qtx *q;
  sl_qcursor *c;
  sl_query_error err;
  if (sl_qtx_begin(st, true, &limits, &q) || sl_qtx_run(q, graph, sizeof graph - 1, NULL, 0, &c, &err) ||
      sl_qcursor_close(c, &err) || sl_qtx_commit(q, NULL, &err))
    abort();
  return 0;
}

/* ---- the generator: choices come from the input, 0 once it is used up,
 * and choice 0 is always the simplest, so a short input ends the query ---- */

typedef struct gen {
  const uint8_t *p, *end;
  char buf[4096];
  size_t len;
  int depth;
  unsigned nwith; /* aliases w0, w1, ... and u0, u1, ... made so far */
} gen;

static unsigned pick(gen *g, unsigned n) { return g->p < g->end ? *g->p++ % n : 0; }

static void put(gen *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(g->buf + g->len, sizeof g->buf - g->len, fmt, ap);
  va_end(ap);
  if (n > 0) g->len += (size_t)n < sizeof g->buf - g->len ? (size_t)n : sizeof g->buf - g->len - 1;
}

#define ONE_OF(g, ...)                                                                       \
  do {                                                                                       \
    static const char *const opts_[] = {__VA_ARGS__};                                         \
    put(g, "%s", opts_[pick(g, sizeof opts_ / sizeof *opts_)]);                               \
  } while (0)

static void expr(gen *g);

/* The variables generate() binds first; patterns bind those or n and m. */
static void var(gen *g) { ONE_OF(g, "a", "b", "r", "x", "p"); }
static void pattern_var(gen *g) { ONE_OF(g, "n", "m", "a", "b"); }

static void args(gen *g, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    if (i) put(g, ", ");
    expr(g);
  }
}

static void expr(gen *g) {
  if (++g->depth > 6) {
    ONE_OF(g, "1", "a", "'s'", "null", "[1, 2]", "a.n", "x");
    g->depth--;
    return;
  }
  switch (pick(g, 18)) {
  case 0: put(g, "%u", pick(g, 256)); break;
  case 1: ONE_OF(g, "0.5", "-0.0", "1e308", "1.0/0.0", "0.0/0.0", "9223372036854775807", "-9223372036854775808"); break;
  case 2: ONE_OF(g, "''", "'a'", "'x\\ny'", "'\\u00e9'", "'%'", "'A.*'"); break;
  case 3: ONE_OF(g, "null", "true", "false", "$p", "$missing"); break;
  case 4: var(g); break;
  case 5: var(g); ONE_OF(g, ".name", ".n", ".l", ".w", ".f", ".nope"); break;
  case 6:
    put(g, "(");
    expr(g);
    ONE_OF(g, " + ", " - ", " * ", " / ", " % ", " ^ ", " = ", " <> ", " < ", " >= ", " AND ", " OR ", " XOR ",
           " IN ", " STARTS WITH ", " ENDS WITH ", " CONTAINS ", " =~ ");
    expr(g);
    put(g, ")");
    break;
  case 7: ONE_OF(g, "NOT ", "-", "+"); expr(g); break;
  case 8: put(g, "("); expr(g); ONE_OF(g, " IS NULL)", " IS NOT NULL)"); break;
  case 9: {
    static const struct { const char *name; unsigned arity; } fn[] = {
        {"id", 1}, {"elementId", 1}, {"labels", 1}, {"type", 1}, {"keys", 1}, {"properties", 1},
        {"startNode", 1}, {"endNode", 1}, {"nodes", 1}, {"relationships", 1}, {"length", 1}, {"size", 1},
        {"head", 1}, {"last", 1}, {"tail", 1}, {"range", 2}, {"range", 3}, {"reverse", 1}, {"coalesce", 2},
        {"toString", 1}, {"toInteger", 1}, {"toFloat", 1}, {"toBoolean", 1}, {"abs", 1}, {"ceil", 1},
        {"floor", 1}, {"round", 1}, {"sign", 1}, {"sqrt", 1}, {"toLower", 1}, {"toUpper", 1}, {"trim", 1},
        {"replace", 3}, {"split", 2}, {"substring", 3}, {"left", 2}, {"right", 2}, {"date", 1},
        {"datetime", 1}, {"duration", 1}, {"localtime", 1}, {"point", 1}, {"exists", 1}, {"nosuchfn", 1}};
    unsigned i = pick(g, sizeof fn / sizeof *fn);
    put(g, "%s(", fn[i].name);
    args(g, fn[i].arity);
    put(g, ")");
    break;
  }
  case 10: put(g, "["); args(g, pick(g, 4)); put(g, "]"); break;
  case 11: put(g, "{k: "); expr(g); put(g, ", name: "); expr(g); put(g, "}"); break;
  case 12: put(g, "CASE WHEN "); expr(g); put(g, " THEN "); expr(g); put(g, " ELSE "); expr(g); put(g, " END"); break;
  case 13: put(g, "CASE "); expr(g); put(g, " WHEN 1 THEN "); expr(g); put(g, " END"); break;
  case 14: put(g, "[x IN "); expr(g); put(g, " WHERE "); expr(g); put(g, " | "); expr(g); put(g, "]"); break;
  case 15: expr(g); put(g, "["); expr(g); if (pick(g, 2)) { put(g, ".."); expr(g); } put(g, "]"); break;
  case 16: ONE_OF(g, "count(*)", "count(DISTINCT ", "collect(", "sum(", "avg(", "min(", "max(", "count(");
    if (g->buf[g->len - 1] == '(') { expr(g); put(g, ")"); }
    break;
  default: ONE_OF(g, "all(x IN ", "any(x IN ", "none(x IN ", "single(x IN "); expr(g); put(g, " WHERE "); expr(g); put(g, ")");
  }
  g->depth--;
}

static void node(gen *g) {
  put(g, "(");
  if (pick(g, 4)) pattern_var(g);
  if (pick(g, 2)) ONE_OF(g, ":A", ":B", ":C", ":A:C", ":Z");
  if (pick(g, 4) == 1) { put(g, " {name: "); expr(g); put(g, "}"); }
  put(g, ")");
}

static void pattern(gen *g) {
  if (pick(g, 4) == 1) put(g, "p = ");
  node(g);
  for (unsigned i = 0, n = pick(g, 3); i < n; i++) {
    ONE_OF(g, "-[", "<-[");
    if (pick(g, 2) == 1) ONE_OF(g, "s", "r");
    if (pick(g, 2)) ONE_OF(g, ":T", ":U", ":T|U", ":V");
    if (pick(g, 3) == 1) ONE_OF(g, "*", "*2", "*1..3", "*0..", "*..2", "*3..1");
    ONE_OF(g, "]->", "]-");
    node(g);
  }
}

static void projection(gen *g) {
  if (pick(g, 4) == 1) put(g, "DISTINCT ");
  if (pick(g, 6) == 1) {
    put(g, "*");
    return;
  }
  for (unsigned i = 0, n = 1 + pick(g, 3); i < n; i++) {
    if (i) put(g, ", ");
    expr(g);
    put(g, " AS c%u", i);
  }
  if (pick(g, 2)) { put(g, " ORDER BY "); expr(g); ONE_OF(g, "", " DESC"); }
  if (pick(g, 3) == 1) { put(g, " SKIP "); expr(g); }
  if (pick(g, 3) == 1) { put(g, " LIMIT "); expr(g); }
}

static void clause(gen *g) {
  switch (pick(g, 12)) {
  case 0: case 1: put(g, "MATCH "); pattern(g); if (pick(g, 2)) { put(g, " WHERE "); expr(g); } break;
  case 2: put(g, "OPTIONAL MATCH "); pattern(g); break;
  case 3:
    if (pick(g, 3) == 1) {
      put(g, "WITH ");
      projection(g);
    } else {
      put(g, "WITH *, ");
      expr(g);
      put(g, " AS w%u", g->nwith++);
    }
    if (pick(g, 2)) { put(g, " WHERE "); expr(g); }
    break;
  case 4: put(g, "UNWIND "); expr(g); put(g, " AS u%u", g->nwith++); break;
  case 5: put(g, "CREATE "); pattern(g); break;
  case 6: put(g, "MERGE "); pattern(g); if (pick(g, 2)) { put(g, " ON CREATE SET "); var(g); put(g, ".k = "); expr(g); } break;
  case 7: put(g, "SET "); var(g); ONE_OF(g, ".k = ", " += ", " = ", ":L"); if (g->buf[g->len - 1] != 'L') expr(g); break;
  case 8: put(g, "REMOVE "); var(g); ONE_OF(g, ".name", ":A"); break;
  case 9: ONE_OF(g, "DELETE ", "DETACH DELETE "); var(g); break;
  case 10: put(g, "CALL "); ONE_OF(g, "db.labels() YIELD label", "db.relationshipTypes() YIELD relationshipType", "db.propertyKeys() YIELD propertyKey", "dbms.components() YIELD name", "db.nope()"); break;
  default: put(g, "WITH * "); break;
  }
  put(g, pick(g, 2) ? "\n" : " ");
}

static size_t generate(gen *g) {
  /* most queries start with their variables bound, so that they get past
   * the semantic checks to the executor */
  if (pick(g, 4) != 1) put(g, "MATCH p = (a)-[r]->(b) UNWIND [1, 2] AS x ");
  for (unsigned i = 0, n = 1 + pick(g, 4); i < n; i++) clause(g);
  put(g, "RETURN ");
  projection(g);
  if (pick(g, 8) == 1) { put(g, " UNION "); ONE_OF(g, "", "ALL "); put(g, "RETURN 1 AS c0"); }
  return g->len;
}

/* Run the statement in a transaction rolled back; *err: sl_qtx_run's. */
static int run_once(const sl_query_options *opt, const char *text, size_t len, sl_query_error *err) {
  sl_qparam param = {.name = "p", .value = {.kind = SL_QLIST}};
  sl_qtx *q;
  if (sl_qtx_begin(st, true, opt, &q)) abort();
  sl_qcursor *c;
  int rc = sl_qtx_run(q, text, len, &param, 1, &c, err);
  if (rc == 0) {
    const sl_qvalue *row;
    sl_query_error rows_err;
    for (int n = 0; n < 5000 && sl_qcursor_next(c, &row, &rows_err) > 0; n++) {
    }
    sl_qcursor_close(c, &rows_err);
  }
  sl_qtx_rollback(q);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static gen g;
  static sl_qcache *cache; /* kept across inputs, small: entries come and go */
  memset(&g, 0, sizeof g);
  g.p = data;
  g.end = data + size;
  size_t len = generate(&g);
  if (!cache && sl_qcache_new(4, 0, &cache)) abort();
  sl_query_options opt = limits;
  opt.cache = cache;
  /* twice through the cache: parsed, then (when it parsed) the cached
   * parse, which must plan and fail as the first did */
  sl_query_error e1, e2;
  int rc1 = run_once(&opt, g.buf, len, &e1), rc2 = run_once(&opt, g.buf, len, &e2);
  if (rc1 != rc2 || strcmp(e1.code, e2.code) || strcmp(e1.message, e2.message) || e1.line != e2.line ||
      e1.column != e2.column)
    abort();
  return 0;
}

#else

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)data;
  (void)size;
  return 0;
}

#endif
