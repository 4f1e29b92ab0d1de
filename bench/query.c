/*
 * bench_query: Cypher queries through the public query API (sl_qtx_*) on a
 * generated social graph, beside PostgreSQL running the equivalent SQL on
 * the same data in the same run (bench/query sets PostgreSQL up and calls
 * this with --pg; without --pg only shiplog is measured).
 *
 * USAGE
 *   bench_query [--dir DIR] [--nodes N] [--degree D] [--seconds S]
 *               [--threads 1,2] [--batch ROWS] [--pg CONNINFO]
 *               [--shiplog PATH] [--only LIST] [--map-mib M] [--quick] [--keep]
 *
 *   --dir DIR       scratch directory (default $TMPDIR, else /tmp); the store
 *                   goes to DIR/bench-query-store (removed unless --keep)
 *   --nodes N       Person nodes (default 1,000,000)
 *   --degree D      KNOWS relationships per node (default 5: 5M for 1M nodes)
 *   --seconds S     duration of each timed run (default 5)
 *   --threads LIST  client thread counts of the reads (default 1,2)
 *   --batch ROWS    rows per upsert transaction (default 10,000)
 *   --pg CONNINFO   libpq connection string of an empty database to load
 *   --shiplog PATH  the CLI, to time `shiplog query` once per invocation
 *   --only LIST     only these workloads (point,hop1,hop2,agg,upsert)
 *   --map-mib M     the store's LMDB map size (default 64 GiB; valgrind
 *                   needs a smaller one, e.g. 4096)
 *   --keep          leave the store behind
 *   --quick         a smoke run: 20,000 nodes, 0.3 s runs, 1,000-row batches
 *
 * THE GRAPH (deterministic: the same flags give the same graph). Node i
 * (1..N, its store id and its `id` property) is a Person with name "p<i>",
 * age 18..80 and one of 40 cities; every 20th is also a Student, every 4th
 * an Employee. Each node KNOWS D others (uniform, never itself) with a
 * `since` year. shiplog: sl_tx_* in transactions of 50,000 ops, then a
 * UNIQUE constraint on :Person(id) (its index serves the lookups and
 * MERGE). PostgreSQL: COPY into person(id, name, age, city, labels text[])
 * and knows(src, dst, since), then the primary key, indexes on knows(src),
 * knows(dst), a GIN index on person(labels), VACUUM ANALYZE.
 *
 * THE WORKLOADS, each with parameters drawn per query (same seeds on both
 * sides), run for S seconds by T client threads; a shiplog client runs each
 * query as an application does: sl_qtx_begin (read) -> sl_qtx_run (parse,
 * or the parse from the client's sl_qcache; plan, execute) -> every row ->
 * close -> commit; a PostgreSQL client runs a prepared statement on its own
 * connection and reads every row.
 *   point   MATCH (p:Person {id: $id}) RETURN p.name, p.age, p.city
 *   hop1    MATCH (p:Person {id: $id})-[k:KNOWS]->(f:Person) WHERE f.age >= $age
 *           RETURN f.id, f.name, k.since
 *   hop2    MATCH (p:Person {id: $id})-[:KNOWS]->(:Person)-[:KNOWS]->(ff:Person)
 *           WHERE ff.city = $city RETURN ff.id, ff.name
 *   agg     MATCH (p:Student) RETURN p.city, count(*), avg(p.age)
 *   upsert  UNWIND $rows AS r MERGE (p:Person {id: r.id}) SET p.name = r.name
 *           (ROWS rows per durable transaction, ids 1..1.1 N: ~90% updates)
 *           vs INSERT ... SELECT unnest($ids, $names) ON CONFLICT (id) DO
 *           UPDATE in one transaction (synchronous_commit on), one client.
 * Before timing, a few parameter sets run on both sides and their row
 * counts are compared (a mismatch is printed: the figures would not be of
 * the same work). Printed per run: queries/s, p50/p99 latency and the ratio
 * shiplog / PostgreSQL. With --shiplog, `shiplog query STORE TEXT --param`
 * is timed per invocation (process start, store open, one query).
 * Nothing is asserted on times: the machines are shared.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef SL_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "latency.h"
#include "shiplog.h"
#include "sl_base.h"

#define NCITIES 40
#define LOAD_OPS_PER_TX 50000
#define CHECKS 25
#define MAX_THREADS 16

static const char *const cities[NCITIES] = {
    "Amsterdam", "Athens",    "Barcelona", "Berlin",   "Bern",    "Bogota",    "Boston",    "Brussels",
    "Budapest",  "Cairo",     "Chicago",   "Delhi",    "Dublin",  "Geneva",    "Helsinki",  "Istanbul",
    "Jakarta",   "Kyiv",      "Lagos",     "Lima",     "Lisbon",  "London",    "Madrid",    "Manila",
    "Melbourne", "Mexico",    "Milan",     "Montreal", "Mumbai",  "Nairobi",   "Oslo",      "Paris",
    "Prague",    "Riga",      "Rome",      "Santiago", "Seoul",   "Stockholm", "Tokyo",     "Vienna"};

typedef struct cfg {
  const char *dir, *pg, *shiplog;
  uint64_t nodes;
  unsigned degree, batch;
  double seconds;
  int threads[MAX_THREADS], nthreads;
  const char *only;
  bool keep;
  uint64_t map_mib;
} cfg;

static cfg C = {.nodes = 1000000, .degree = 5, .batch = 10000, .seconds = 5, .threads = {1, 2}, .nthreads = 2};
static char store_dir[4096];

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_query: %s: %s (%s)\n", what, sl_strerror(rc), sl_errname(rc));
  exit(1);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) die("allocating", -ENOMEM);
  return p;
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* The generated graph, a pure function of the node number. */
static int64_t person_age(uint64_t i) { return 18 + (int64_t)(mix64(i * 3 + 1) % 63); }
static const char *person_city(uint64_t i) { return cities[mix64(i * 3 + 2) % NCITIES]; }
static bool is_student(uint64_t i) { return i % 20 == 0; }
static bool is_employee(uint64_t i) { return i % 4 == 1; }
static uint64_t knows_dst(uint64_t i, unsigned k) {
  uint64_t d = 1 + mix64(i * 64 + k) % (C.nodes - 1); /* 1..N-1 away: never i itself */
  return (i - 1 + d) % C.nodes + 1;
}
static int64_t knows_since(uint64_t i, unsigned k) { return 2000 + (int64_t)(mix64(i * 64 + k + 32) % 25); }

/* ---- latencies ---------------------------------------------------------------- */

/* ---- workloads ---------------------------------------------------------------- */
enum { W_POINT, W_HOP1, W_HOP2, W_AGG, W_UPSERT, W_COUNT };

static const struct {
  const char *name, *cypher, *sql;
  int nparams;
} work[W_COUNT] = {
    [W_POINT] = {"point", "MATCH (p:Person {id: $id}) RETURN p.name, p.age, p.city",
                 "SELECT name, age, city FROM person WHERE id = $1", 1},
    [W_HOP1] = {"hop1",
                "MATCH (p:Person {id: $id})-[k:KNOWS]->(f:Person) WHERE f.age >= $age RETURN f.id, f.name, k.since",
                "SELECT f.id, f.name, k.since FROM knows k JOIN person f ON f.id = k.dst "
                "WHERE k.src = $1 AND f.age >= $2",
                2},
    [W_HOP2] = {"hop2",
                "MATCH (p:Person {id: $id})-[:KNOWS]->(:Person)-[:KNOWS]->(ff:Person) WHERE ff.city = $city "
                "RETURN ff.id, ff.name",
                "SELECT ff.id, ff.name FROM knows k1 JOIN knows k2 ON k2.src = k1.dst JOIN person ff ON ff.id = k2.dst "
                "WHERE k1.src = $1 AND ff.city = $2",
                2},
    [W_AGG] = {"agg", "MATCH (p:Student) RETURN p.city, count(*), avg(p.age)",
               "SELECT city, count(*), avg(age) FROM person WHERE labels @> '{Student}' GROUP BY city", 0},
    [W_UPSERT] = {"upsert", "UNWIND $rows AS r MERGE (p:Person {id: r.id}) SET p.name = r.name",
                  "INSERT INTO person(id, name) SELECT * FROM unnest($1::bigint[], $2::text[]) "
                  "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
                  2},
};

/* One query's parameters, drawn from a sequence number: both sides draw
 * the same ones. */
typedef struct qargs {
  int64_t id, age;
  const char *city;
} qargs;

static qargs draw(uint64_t seq) {
  uint64_t h = mix64(seq ^ 0x5eed);
  return (qargs){.id = (int64_t)(1 + h % C.nodes), .age = 18 + (int64_t)((h >> 32) % 63), .city = cities[(h >> 20) % NCITIES]};
}

/* The upsert batch b: ROWS distinct ids of 1..1.1 N (a stride prime to the
 * range walks it without repeats), names "u<b>-<id>". */
static uint64_t upsert_range(void) { return C.nodes + C.nodes / 10; }
static uint64_t upsert_id(uint64_t b, unsigned r) {
  uint64_t m = upsert_range();
  return (mix64(b) % m + (uint64_t)r * 1000003ull) % m + 1;
}

/* ---- shiplog ------------------------------------------------------------------ */
static sl_store *store;

/* data.mdb against its live pages, so that a speed bought with space
 * shows beside it (README, "Derived state"). */
static void print_space(const char *when) {
  sl_space sp;
  if (sl_store_space(store, &sp)) return;
  uint64_t live = sp.pages_used - sp.pages_free;
  printf("space %s: data.mdb %.1f MB, %.1f MB of it live (%.2fx)\n", when,
         (double)(sp.pages_used * sp.page_size) / 1e6, (double)(live * sp.page_size) / 1e6,
         live ? (double)sp.pages_used / (double)live : 0.0);
  fflush(stdout);
}

static void load_shiplog(void) {
  uint64_t t0 = sl_mono_ns();
  sl_store_options o = {.map_size = C.map_mib << 20};
  int rc = sl_store_create(store_dir, &o);
  if (rc) die(store_dir, rc);
  if ((rc = sl_store_open(store_dir, 0, &store))) die(store_dir, rc);
  sl_tx *tx = NULL;
  unsigned ops = 0;
  char name[32];
#define TX_STEP()                                                     \
  do {                                                                \
    if (rc) die(sl_tx_error(tx) ? sl_tx_error(tx) : "loading", rc);   \
    if (++ops == LOAD_OPS_PER_TX) {                                   \
      if ((rc = sl_tx_commit(tx, NULL))) die("committing a load", rc); \
      tx = NULL, ops = 0;                                             \
    }                                                                 \
  } while (0)
  for (uint64_t i = 1; i <= C.nodes; i++) {
    if (!tx && (rc = sl_tx_begin(store, &tx))) die("sl_tx_begin", rc);
    const char *labels[3] = {"Person"};
    size_t nl = 1;
    if (is_student(i)) labels[nl++] = "Student";
    if (is_employee(i)) labels[nl++] = "Employee";
    int n = snprintf(name, sizeof name, "p%" PRIu64, i);
    const char *city = person_city(i);
    sl_prop props[4] = {
        {"age", {.kind = SL_INT, .u.i = person_age(i)}},
        {"city", {.kind = SL_STRING, .len = strlen(city), .u.s = city}},
        {"id", {.kind = SL_INT, .u.i = (int64_t)i}},
        {"name", {.kind = SL_STRING, .len = (size_t)n, .u.s = name}},
    };
    rc = sl_tx_create_node(tx, i, labels, nl, props, 4, NULL);
    TX_STEP();
  }
  uint64_t rid = 1;
  for (uint64_t i = 1; i <= C.nodes; i++)
    for (unsigned k = 0; k < C.degree; k++) {
      if (!tx && (rc = sl_tx_begin(store, &tx))) die("sl_tx_begin", rc);
      sl_prop since = {"since", {.kind = SL_INT, .u.i = knows_since(i, k)}};
      rc = sl_tx_create_rel(tx, rid++, "KNOWS", i, knows_dst(i, k), &since, 1, NULL);
      TX_STEP();
    }
#undef TX_STEP
  if (tx && (rc = sl_tx_commit(tx, NULL))) die("committing a load", rc);
  uint64_t t1 = sl_mono_ns();
  const char *keys[] = {"id"};
  sl_schema_rule rule = {.kind = SL_SCHEMA_UNIQUE, .token = "Person", .nkeys = 1, .keys = keys};
  if ((rc = sl_tx_begin(store, &tx))) die("sl_tx_begin", rc);
  if ((rc = sl_tx_create_constraint(tx, &rule, NULL)) || (rc = sl_tx_commit(tx, NULL))) die("the :Person(id) constraint", rc);
  uint64_t t2 = sl_mono_ns();
  printf("load shiplog: %" PRIu64 " nodes, %" PRIu64 " relationships in %.1f s (sl_tx_*, %d ops per tx) "
         "+ UNIQUE :Person(id) in %.1f s\n",
         C.nodes, rid - 1, (double)(t1 - t0) / 1e9, LOAD_OPS_PER_TX, (double)(t2 - t1) / 1e9);
  fflush(stdout);
}

static sl_qvalue qint(int64_t v) { return (sl_qvalue){.kind = SL_INT, .u.v = {.kind = SL_INT, .u.i = v}}; }
static sl_qvalue qstr(const char *s) {
  return (sl_qvalue){.kind = SL_STRING, .u.v = {.kind = SL_STRING, .len = strlen(s), .u.s = s}};
}

/* A statement's rows, pulled as an application would; what the rows add up
 * to lands in *rows (agg: the sum of its counts, so both sides compare). */
static int sl_run(sl_qtx *q, int w, const sl_qparam *params, size_t np, uint64_t *rows, sl_query_error *err) {
  sl_qcursor *cur;
  const char *text = work[w].cypher;
  int rc = sl_qtx_run(q, text, strlen(text), params, np, &cur, err);
  if (rc) return rc;
  const sl_qvalue *row;
  *rows = 0;
  while ((rc = sl_qcursor_next(cur, &row, err)) == 1) *rows += w == W_AGG ? (uint64_t)row[1].u.v.u.i : 1;
  int rc2 = sl_qcursor_close(cur, err);
  return rc < 0 ? rc : rc2;
}

/* One read query in a read transaction of its own (cache: the client's
 * parsed statements, or NULL). */
static int sl_read(sl_qcache *cache, int w, uint64_t seq, uint64_t *rows, sl_query_error *err) {
  qargs a = draw(seq);
  sl_qparam p[2] = {{"id", qint(a.id)}, {w == W_HOP2 ? "city" : "age", w == W_HOP2 ? qstr(a.city) : qint(a.age)}};
  sl_query_options o = {.cache = cache};
  sl_qtx *q;
  int rc = sl_qtx_begin(store, false, &o, &q);
  if (rc) return rc;
  if ((rc = sl_run(q, w, p, (size_t)work[w].nparams, rows, err))) {
    sl_qtx_rollback(q);
    return rc;
  }
  return sl_qtx_commit(q, NULL, err);
}

/* Upsert batch b in one durable write transaction. */
static int sl_upsert(sl_qcache *cache, uint64_t b, uint64_t *rows, sl_query_error *err) {
  sl_qvalue *items = xcalloc(C.batch, sizeof *items);
  sl_qentry *entries = xcalloc(2 * (size_t)C.batch, sizeof *entries);
  char *names = xcalloc(C.batch, 32);
  for (unsigned r = 0; r < C.batch; r++) {
    uint64_t id = upsert_id(b, r);
    snprintf(names + 32 * r, 32, "u%" PRIu64 "-%" PRIu64, b, id);
    entries[2 * r] = (sl_qentry){"id", qint((int64_t)id)};
    entries[2 * r + 1] = (sl_qentry){"name", qstr(names + 32 * r)};
    items[r] = (sl_qvalue){.kind = SL_QMAP, .u.map = {2, &entries[2 * r]}};
  }
  sl_qparam p = {"rows", {.kind = SL_QLIST, .u.list = {C.batch, items}}};
  sl_query_options o = {.cache = cache};
  sl_qtx *q;
  int rc = sl_qtx_begin(store, true, &o, &q);
  if (!rc) {
    if ((rc = sl_run(q, W_UPSERT, &p, 1, rows, err))) sl_qtx_rollback(q);
    else rc = sl_qtx_commit(q, NULL, err);
  }
  free(items);
  free(entries);
  free(names);
  *rows = C.batch; /* rows written (the statement returns none) */
  return rc;
}

/* ---- PostgreSQL --------------------------------------------------------------- */
#ifdef SL_HAVE_LIBPQ
static PGconn *pg_connect(void) {
  PGconn *c = PQconnectdb(C.pg);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "bench_query: cannot connect to '%s': %s", C.pg, PQerrorMessage(c));
    exit(1);
  }
  for (int w = 0; w < W_COUNT; w++) {
    char name[8];
    snprintf(name, sizeof name, "w%d", w);
    PGresult *r = PQprepare(c, name, work[w].sql, work[w].nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      fprintf(stderr, "bench_query: preparing %s: %s", work[w].sql, PQresultErrorMessage(r));
      exit(1);
    }
    PQclear(r);
  }
  return c;
}

static void pg_exec(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    fprintf(stderr, "bench_query: %s: %s", sql, PQresultErrorMessage(r));
    exit(1);
  }
  PQclear(r);
}

static void pg_copy(PGconn *c, const char *sql, void (*rows)(PGconn *c)) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COPY_IN) {
    fprintf(stderr, "bench_query: %s: %s", sql, PQresultErrorMessage(r));
    exit(1);
  }
  PQclear(r);
  rows(c);
  if (PQputCopyEnd(c, NULL) != 1) die("COPY end", -EIO);
  r = PQgetResult(c);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "bench_query: %s: %s", sql, PQresultErrorMessage(r));
    exit(1);
  }
  PQclear(r);
  while ((r = PQgetResult(c))) PQclear(r);
}

/* COPY text rows, buffered: a put per 64 KiB. */
typedef struct copybuf {
  char b[1 << 16];
  size_t n;
} copybuf;

static void cb_flush(PGconn *c, copybuf *cb) {
  if (cb->n && PQputCopyData(c, cb->b, (int)cb->n) != 1) die("COPY data", -EIO);
  cb->n = 0;
}

static void person_rows(PGconn *c) {
  static copybuf cb;
  for (uint64_t i = 1; i <= C.nodes; i++) {
    if (sizeof cb.b - cb.n < 256) cb_flush(c, &cb);
    cb.n += (size_t)snprintf(cb.b + cb.n, sizeof cb.b - cb.n, "%" PRIu64 "\tp%" PRIu64 "\t%" PRId64 "\t%s\t{Person%s%s}\n", i, i,
                             person_age(i), person_city(i), is_student(i) ? ",Student" : "", is_employee(i) ? ",Employee" : "");
  }
  cb_flush(c, &cb);
}

static void knows_rows(PGconn *c) {
  static copybuf cb;
  for (uint64_t i = 1; i <= C.nodes; i++)
    for (unsigned k = 0; k < C.degree; k++) {
      if (sizeof cb.b - cb.n < 128) cb_flush(c, &cb);
      cb.n += (size_t)snprintf(cb.b + cb.n, sizeof cb.b - cb.n, "%" PRIu64 "\t%" PRIu64 "\t%" PRId64 "\n", i, knows_dst(i, k),
                               knows_since(i, k));
    }
  cb_flush(c, &cb);
}

static void load_pg(void) {
  uint64_t t0 = sl_mono_ns();
  PGconn *c = PQconnectdb(C.pg);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "bench_query: cannot connect to '%s': %s", C.pg, PQerrorMessage(c));
    exit(1);
  }
  pg_exec(c, "SET client_min_messages = warning");
  pg_exec(c, "DROP TABLE IF EXISTS knows, person");
  pg_exec(c, "CREATE TABLE person (id bigint NOT NULL, name text, age int, city text, labels text[] NOT NULL DEFAULT '{Person}')");
  pg_exec(c, "CREATE TABLE knows (src bigint NOT NULL, dst bigint NOT NULL, since int)");
  pg_copy(c, "COPY person (id, name, age, city, labels) FROM STDIN", person_rows);
  pg_copy(c, "COPY knows FROM STDIN", knows_rows);
  uint64_t t1 = sl_mono_ns();
  pg_exec(c, "ALTER TABLE person ADD PRIMARY KEY (id)");
  pg_exec(c, "CREATE INDEX knows_src ON knows (src)");
  pg_exec(c, "CREATE INDEX knows_dst ON knows (dst)");
  pg_exec(c, "CREATE INDEX person_labels ON person USING gin (labels)");
  pg_exec(c, "VACUUM ANALYZE person, knows");
  uint64_t t2 = sl_mono_ns();
  printf("load pg: COPY in %.1f s + primary key, 3 indexes, VACUUM ANALYZE in %.1f s\n", (double)(t1 - t0) / 1e9,
         (double)(t2 - t1) / 1e9);
  fflush(stdout);
  PQfinish(c);
}

static int pg_read(PGconn *c, int w, uint64_t seq, uint64_t *rows) {
  qargs a = draw(seq);
  char id[24], second[24], name[8];
  snprintf(id, sizeof id, "%" PRId64, a.id);
  if (w == W_HOP2) snprintf(second, sizeof second, "%s", a.city);
  else snprintf(second, sizeof second, "%" PRId64, a.age);
  const char *vals[2] = {id, second};
  snprintf(name, sizeof name, "w%d", w);
  PGresult *r = PQexecPrepared(c, name, work[w].nparams, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "bench_query: %s: %s", work[w].sql, PQresultErrorMessage(r));
    PQclear(r);
    return SL_EINVAL;
  }
  int n = PQntuples(r);
  *rows = 0;
  for (int i = 0; i < n; i++) *rows += w == W_AGG ? strtoull(PQgetvalue(r, i, 1), NULL, 10) : 1;
  PQclear(r);
  return 0;
}

static int pg_upsert(PGconn *c, uint64_t b, uint64_t *rows) {
  size_t cap = (size_t)C.batch * 32 + 16;
  char *ids = xcalloc(cap, 1), *names = xcalloc(cap, 1);
  size_t ni = 0, nn = 0;
  ids[ni++] = '{', names[nn++] = '{';
  for (unsigned r = 0; r < C.batch; r++) {
    uint64_t id = upsert_id(b, r);
    const char *sep = r ? "," : "";
    ni += (size_t)snprintf(ids + ni, cap - ni, "%s%" PRIu64, sep, id);
    nn += (size_t)snprintf(names + nn, cap - nn, "%su%" PRIu64 "-%" PRIu64, sep, b, id);
  }
  snprintf(ids + ni, cap - ni, "}");
  snprintf(names + nn, cap - nn, "}");
  const char *vals[2] = {ids, names};
  char name[8];
  snprintf(name, sizeof name, "w%d", W_UPSERT);
  PGresult *r = PQexecPrepared(c, name, 2, vals, NULL, NULL, 0);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "bench_query: upsert: %s", PQresultErrorMessage(r));
    rc = SL_EINVAL;
  }
  PQclear(r);
  free(ids);
  free(names);
  *rows = C.batch;
  return rc;
}
#endif

/* ---- timed runs --------------------------------------------------------------- */
typedef struct client {
  pthread_t th;
  bool pg;
  int w, k;
  uint64_t deadline, queries, rows;
  lat l;
  int rc;
  char why[sizeof ((sl_query_error *)0)->code + sizeof ((sl_query_error *)0)->message + 4];
#ifdef SL_HAVE_LIBPQ
  PGconn *conn;
#endif
} client;

static void *client_main(void *arg) {
  client *c = arg;
  /* Each client its own sequence of parameters, the same on both sides. */
  uint64_t seq = (uint64_t)c->k << 40;
  if (c->w == W_UPSERT) seq = 1000 + (uint64_t)c->k * 1000000;
  sl_qcache *cache; /* the client's statements parsed once, as a Bolt connection's */
  if (sl_qcache_new(0, 0, &cache)) die("allocating", -ENOMEM);
  for (uint64_t now = sl_mono_ns(); now < c->deadline || (c->w == W_UPSERT && c->queries < 2);) {
    uint64_t rows = 0;
    sl_query_error err = {0};
    int rc;
#ifdef SL_HAVE_LIBPQ
    if (c->pg) rc = c->w == W_UPSERT ? pg_upsert(c->conn, seq, &rows) : pg_read(c->conn, c->w, seq, &rows);
    else
#endif
      rc = c->w == W_UPSERT ? sl_upsert(cache, seq, &rows, &err) : sl_read(cache, c->w, seq, &rows, &err);
    if (rc) {
      c->rc = rc;
      snprintf(c->why, sizeof c->why, "%s: %s", err.code, err.message);
      break;
    }
    seq++;
    uint64_t t = sl_mono_ns();
    if (lat_add(&c->l, t - now)) die("allocating", -ENOMEM);
    now = t;
    c->queries++;
    c->rows += rows;
  }
  sl_qcache_free(cache);
  return NULL;
}

typedef struct result {
  double qps, rows_per_s, p50_us, p99_us;
} result;

static result timed(bool pg, int w, int nthreads) {
  client *cs = xcalloc((size_t)nthreads, sizeof *cs);
  for (int k = 0; k < nthreads; k++) {
    cs[k] = (client){.pg = pg, .w = w, .k = k};
#ifdef SL_HAVE_LIBPQ
    if (pg) cs[k].conn = pg_connect();
#endif
  }
  uint64_t t0 = sl_mono_ns(); /* the connections are made: the clock starts */
  for (int k = 0; k < nthreads; k++) {
    cs[k].deadline = t0 + (uint64_t)(C.seconds * 1e9);
    if (pthread_create(&cs[k].th, NULL, client_main, &cs[k])) die("pthread_create", -errno);
  }
  lat all = {0};
  uint64_t queries = 0, rows = 0;
  for (int k = 0; k < nthreads; k++) pthread_join(cs[k].th, NULL);
  uint64_t t1 = sl_mono_ns();
  for (int k = 0; k < nthreads; k++) {
    if (cs[k].rc) {
      fprintf(stderr, "bench_query: %s on %s: %s %s\n", work[w].name, pg ? "pg" : "shiplog", sl_strerror(cs[k].rc), cs[k].why);
      exit(1);
    }
    for (size_t i = 0; i < cs[k].l.n; i++)
      if (lat_add(&all, cs[k].l.ns[i])) die("allocating", -ENOMEM);
    queries += cs[k].queries;
    rows += cs[k].rows;
    free(cs[k].l.ns);
#ifdef SL_HAVE_LIBPQ
    if (cs[k].conn) PQfinish(cs[k].conn);
#endif
  }
  lat_sort(&all);
  double s = (double)(t1 - t0) / 1e9;
  result r = {(double)queries / s, (double)rows / s, lat_pct(&all, 50, 1e3), lat_pct(&all, 99, 1e3)};
  free(all.ns);
  free(cs);
  return r;
}

/* Row counts of both sides for the first CHECKS parameter sets of client 0. */
static void check_same(int w) {
#ifdef SL_HAVE_LIBPQ
  if (!C.pg) return;
  PGconn *c = pg_connect();
  uint64_t total = 0, bad = 0;
  for (uint64_t seq = 0; seq < (w == W_AGG ? 1 : CHECKS); seq++) {
    uint64_t a, b;
    sl_query_error err = {0};
    int rc = sl_read(NULL, w, seq, &a, &err);
    if (rc) {
      fprintf(stderr, "bench_query: %s: %s %s: %s\n", work[w].name, sl_strerror(rc), err.code, err.message);
      exit(1);
    }
    if (pg_read(c, w, seq, &b)) exit(1);
    if (a != b) printf("  MISMATCH %s #%" PRIu64 ": shiplog %" PRIu64 " rows, pg %" PRIu64 "\n", work[w].name, seq, a, b);
    bad += a != b;
    total += a;
  }
  if (!bad) printf("  %-7s checked: the same rows on both sides (%" PRIu64 " in all)\n", work[w].name, total);
  PQfinish(c);
#else
  (void)w;
#endif
}

static void print_row(const char *name, int threads, const char *unit, const result *pg, const result *sl, bool rows) {
  double pv = rows ? pg->rows_per_s : pg->qps, sv = rows ? sl->rows_per_s : sl->qps;
  char ratio[32] = "-", pgs[64] = "-";
  if (pg->qps > 0) {
    snprintf(ratio, sizeof ratio, "%.2fx", sv / pv);
    snprintf(pgs, sizeof pgs, "%10.0f %8.0f/%-8.0f", pv, pg->p50_us, pg->p99_us);
  }
  printf("  %-7s %7d %-7s %-28s %10.0f %8.0f/%-8.0f %8s\n", name, threads, unit, pgs, sv, sl->p50_us, sl->p99_us, ratio);
  fflush(stdout);
}

/* `shiplog query` once per process: the CLI's cost for one lookup. */
static void time_cli(void) {
  if (!C.shiplog) return;
  int n = C.seconds < 1 ? 3 : 20;
  uint64_t t0 = sl_mono_ns();
  for (int i = 0; i < n; i++) {
    char param[48];
    snprintf(param, sizeof param, "id=%" PRId64, draw((uint64_t)i).id);
    pid_t pid = fork();
    if (pid < 0) die("fork", -errno);
    if (pid == 0) {
      if (!freopen("/dev/null", "w", stdout)) _exit(127);
      execl(C.shiplog, C.shiplog, "query", store_dir, work[W_POINT].cypher, "--param", param, "--format", "jsonl", (char *)NULL);
      _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
      fprintf(stderr, "bench_query: %s query failed (status %d)\n", C.shiplog, st);
      exit(1);
    }
  }
  double ms = (double)(sl_mono_ns() - t0) / 1e6 / n;
  printf("  `shiplog query STORE '<point>' --param id=N`: %.1f ms per invocation (%d runs: process, store open, one query)\n",
         ms, n);
}

/* Is workload w in --only's comma-separated names (or is there no --only)? */
static bool wanted(int w) {
  if (!C.only) return true;
  size_t n = strlen(work[w].name);
  for (const char *s = C.only; (s = strstr(s, work[w].name)); s += n)
    if ((s == C.only || s[-1] == ',') && (s[n] == ',' || !s[n])) return true;
  return false;
}

static void usage(int code) {
  fprintf(code ? stderr : stdout,
          "usage: bench_query [--dir DIR] [--nodes N] [--degree D] [--seconds S] [--threads 1,2]\n"
          "                   [--batch ROWS] [--pg CONNINFO] [--shiplog PATH] [--only point,hop1,...]\n"
          "                   [--map-mib M] [--quick] [--keep]\n"
          "Cypher through the query API on a generated social graph, beside PostgreSQL (bench/query).\n");
  exit(code);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool has = true;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage(0);
    else if (!strcmp(a, "--quick")) C.nodes = 20000, C.seconds = 0.3, C.batch = 1000, has = false;
    else if (!strcmp(a, "--keep")) C.keep = true, has = false;
    else if (!v) usage(2);
    else if (!strcmp(a, "--dir")) C.dir = v;
    else if (!strcmp(a, "--pg")) C.pg = v;
    else if (!strcmp(a, "--shiplog")) C.shiplog = v;
    else if (!strcmp(a, "--only")) C.only = v;
    else if (!strcmp(a, "--nodes")) C.nodes = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--degree")) C.degree = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--map-mib")) C.map_mib = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--batch")) C.batch = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--seconds")) C.seconds = strtod(v, NULL);
    else if (!strcmp(a, "--threads")) {
      C.nthreads = 0;
      char *end;
      for (const char *s = v; *s && C.nthreads < MAX_THREADS; s = *end ? end + 1 : end) {
        long t = strtol(s, &end, 10);
        if (end == s || t < 1) usage(2);
        C.threads[C.nthreads++] = (int)t;
      }
    } else usage(2);
    if (has) i++;
  }
  if (C.nodes < 100 || C.degree < 1 || C.degree > 32 || C.batch < 1 || C.seconds <= 0) usage(2);
#ifndef SL_HAVE_LIBPQ
  if (C.pg) {
    fprintf(stderr, "bench_query: built without libpq: --pg is not available\n");
    exit(2);
  }
#endif
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  if (!C.dir) C.dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(store_dir, sizeof store_dir, "%s/bench-query-store", C.dir);
  if (!access(store_dir, F_OK)) {
    fprintf(stderr, "bench_query: %s exists: remove it first\n", store_dir);
    return 1;
  }
  printf("bench_query: %" PRIu64 " Person nodes, %u KNOWS each, %.1f s per run%s\n", C.nodes, C.degree, C.seconds,
         C.pg ? "" : " (no --pg: shiplog only)");
  load_shiplog();
  print_space("after the load");
#ifdef SL_HAVE_LIBPQ
  if (C.pg) load_pg();
#endif
  for (int w = 0; w < W_COUNT; w++)
    if (w != W_UPSERT && wanted(w)) check_same(w);
  printf("  %-7s %7s %-7s %-28s %-28s %8s\n", "query", "threads", "unit", "pg rate  p50/p99 us", "shiplog rate  p50/p99 us",
         "sl/pg");
  for (int w = 0; w < W_COUNT; w++) {
    if (!wanted(w)) continue;
    int nt = w == W_UPSERT ? 1 : C.nthreads;
    for (int t = 0; t < nt; t++) {
      int threads = w == W_UPSERT ? 1 : C.threads[t];
      result pg = {0}, sl;
      /* PostgreSQL first on even rounds, shiplog first on odd ones */
      bool pg_first = (w + t) % 2 == 0;
      if (pg_first && C.pg) pg = timed(true, w, threads);
      sl = timed(false, w, threads);
      if (!pg_first && C.pg) pg = timed(true, w, threads);
      print_row(work[w].name, threads, w == W_UPSERT ? "rows/s" : "q/s", &pg, &sl, w == W_UPSERT);
    }
  }
  time_cli();
  print_space("at the end");
  sl_store_close(store);
  if (!C.keep) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
    if (system(cmd)) fprintf(stderr, "bench_query: could not remove %s\n", store_dir);
  }
  return 0;
}
