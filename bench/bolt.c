/*
 * bench_bolt: shiplog over the network against PostgreSQL over the
 * network, the same workload in the same run: shiplog's clients speak Bolt
 * (bench/bolt_client.c) to `shiplog serve` (the primary) and to `shiplog
 * receive --bolt` (its standby), PostgreSQL's speak libpq to a primary and
 * its streaming hot standby. bench/peer --bolt starts all four servers on
 * 127.0.0.1 and calls this; without --pg only shiplog is measured (the
 * smoke run of scripts/test.sh).
 *
 * USAGE
 *   bench_bolt --bolt HOST:PORT --standby-bolt HOST:PORT --standby-db NAME
 *              [--pg CONNINFO --pg-standby CONNINFO] [--nodes N] [--degree D]
 *              [--seconds S] [--lag-seconds S] [--writers 1,4,16,64]
 *              [--readers 1,4] [--lag-rate R] [--reps K] [--disk DIR] [--json FILE]
 *              [--quick]
 *   Defaults: 100,000 nodes of degree 4, 5 s per load, 10 s of lag at
 *   1,000 tx/s, 2 repetitions. --quick: 5,000 nodes, 1 s per load, 2 s of
 *   lag, one repetition (tens of seconds).
 *
 * THE DATA, loaded into both before the clock starts (deterministic, the
 * same on both sides): Person nodes 1..N (id, name "p<i>", age 18..80) and
 * D KNOWS per node, node i -> (i * 7919 + k * 104729) mod N + 1, k = 1..D,
 * with a `since` year. shiplog: UNIQUE constraints on :Person(id) and
 * :Marker(id), then UNWIND batches over Bolt; PostgreSQL: person(id primary
 * key, name, age), knows(src references person, dst references person,
 * since) with indexes on src and dst, markers(id primary key), loaded
 * with INSERT ... SELECT generate_series, VACUUM ANALYZE.
 *
 * THE FIGURES, per repetition, the two systems alternately (PostgreSQL
 * first in odd repetitions), each client on its own connection opened
 * before the clock starts:
 *   write-W   durable write transactions/s, W closed-loop clients: a new
 *             Person and a KNOWS from it to a random existing one.
 *             shiplog: BEGIN, RUN `MATCH (b:Person {id: $dst}) CREATE
 *             (a:Person {...})-[:KNOWS {since: $since}]->(b)`, PULL, COMMIT,
 *             sent in one write (as a driver pipelines them); COMMIT's
 *             SUCCESS comes once the group commit made it durable.
 *             PostgreSQL: BEGIN, INSERT person, INSERT knows, COMMIT in one
 *             pipeline (synchronous_commit=on, fsync=on). A CHECKPOINT
 *             before each PostgreSQL run.
 *             With each: the machine's busy CPU time over the run (every
 *             process: the clients, the servers, their standbys; other
 *             jobs too) divided by the transactions: once both systems
 *             are CPU-bound, the ratio of writes/s is about the inverse
 *             of this one.
 *   point-R   reads/s, R clients: one Person by id (random 1..N), its name
 *             and age. shiplog: autocommit RUN + PULL in mode "r" on the
 *             primary; PostgreSQL: a prepared SELECT by primary key.
 *   hop1-R    the same for `MATCH (p:Person {id: $id})-[k:KNOWS]->(f:Person)
 *             RETURN f.id, f.name, k.since` / the join knows -> person.
 *   disk-1    with --disk DIR (the disk the servers keep their data on),
 *             right before each system's write runs: the disk's own rate
 *             of 4 KiB writes each fdatasync()ed, one writer (disk.h).
 *             W closed-loop clients of a system that answers a commit once
 *             it is durable commit at most W times that; the targets say
 *             where 3x PostgreSQL's rate with one client lies beyond it.
 *   lag       commit -> visible on the standby: 4 clients writing at
 *             --lag-rate tx/s together (open loop, a shared schedule), and
 *             every 10 ms a marker committed on the primary, then the
 *             standby polled every 100 us through its own read path
 *             (shiplog: a Bolt read of the stream's database on the
 *             receiver; PostgreSQL: a SELECT on the hot standby) until it
 *             shows the marker; the lag is from the commit's answer to the
 *             answer of the first poll that saw it. p50/p99/max.
 * Before timing, the row counts of a few reads are compared between the
 * systems (a mismatch stops the bench: the figures would not be of the same
 * work). The table gives each figure per repetition for both systems and
 * the ratio shiplog / PostgreSQL, then the targets; --json writes
 * the same. Nothing fails on a figure: machines are shared.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef SL_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "bolt_client.h"
#include "disk.h"
#include "latency.h"
#include "sl_base.h"

#define MAX_CLIENTS 64
#define MAX_COUNTS 8
#define LAG_CLIENTS 4
#define PROBE_NS 10000000ull
#define POLL_NS 100000
#define PROBE_GIVE_UP_NS 30000000000ull
#define LOAD_BATCH 5000
#define CHECKS 20
#define NEW_ID_BASE 1000000000000ll /* ids of written nodes; markers have their own label / table */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_bolt --bolt HOST:PORT --standby-bolt HOST:PORT --standby-db NAME\n"
          "                  [--pg CONNINFO --pg-standby CONNINFO] [--nodes N] [--degree D]\n"
          "                  [--seconds S] [--lag-seconds S] [--writers 1,4,16,64] [--readers 1,4]\n"
          "                  [--lag-rate R] [--reps K] [--disk DIR] [--json FILE] [--quick]\n");
  exit(2);
}

static void sleep_until(uint64_t mono_ns) {
  struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000u), .tv_nsec = (long)(mono_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

typedef struct opts {
  const char *bolt, *standby_bolt, *standby_db, *pg, *pg_standby, *json, *disk;
  int64_t nodes;
  int degree, reps;
  double seconds, lag_seconds, lag_rate;
  int writers[MAX_COUNTS], n_writers, readers[MAX_COUNTS], n_readers;
} opts;

/* ---- the systems ---------------------------------------------------------------- */

typedef enum work { W_WRITE, W_POINT, W_HOP1 } work;

/* One system: how its clients connect and what each operation sends.
 * Each returns 0, or a negative code with the reason in why. */
typedef struct sys_ops {
  const char *name;
  int (*open)(const opts *o, bool standby, void **cl, char *why, size_t whylen);
  void (*close)(void *cl);
  /* write: durable on return; reads: *rows rows read */
  int (*op)(void *cl, work w, int64_t id, int64_t dst, uint64_t *rows, char *why, size_t whylen);
  int (*marker_commit)(void *cl, int64_t id, char *why, size_t whylen);
  /* 1 when the standby shows marker id, 0 not yet */
  int (*marker_seen)(void *standby, int64_t id, char *why, size_t whylen);
  /* the schema and the data, on a connection of its own */
  int (*load)(const opts *o, char *why, size_t whylen);
} sys_ops;

/* -- shiplog over Bolt -- */

typedef struct sl_cl {
  bolt_client *b;
  const char *db; /* NULL on the primary (the server's default); the stream on the standby */
} sl_cl;

static const char *const sl_queries[] = {
    [W_WRITE] = ("MATCH (b:Person {id: $dst}) "
                 "CREATE (a:Person {id: $id, name: $name, age: $age})-[:KNOWS {since: $since}]->(b)"),
    [W_POINT] = "MATCH (p:Person {id: $id}) RETURN p.name, p.age",
    [W_HOP1] = "MATCH (p:Person {id: $id})-[k:KNOWS]->(f:Person) RETURN f.id, f.name, k.since",
};

static int sl_open(const opts *o, bool standby, void **out, char *why, size_t whylen) {
  sl_cl *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->db = standby ? o->standby_db : NULL;
  int rc = bolt_client_connect(standby ? o->standby_bolt : o->bolt, &c->b, why, whylen);
  if (rc) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

static void sl_close(void *cl) {
  sl_cl *c = cl;
  bolt_client_close(c->b);
  free(c);
}

/* A Bolt call's failure as a negative code with the server's reason. */
static int sl_check(sl_cl *c, int rc, char *why, size_t whylen) {
  if (rc == 0) return 0;
  snprintf(why, whylen, "%s", bolt_client_error(c->b));
  return rc < 0 ? rc : SL_EINVAL;
}

static int sl_op(void *cl, work w, int64_t id, int64_t dst, uint64_t *rows, char *why, size_t whylen) {
  sl_cl *c = cl;
  bolt_result res;
  char name[32];
  if (w != W_WRITE) {
    sl_pack kv[2] = {sl_pack_str("id"), sl_pack_int(id)};
    sl_pack params = {.kind = SL_PACK_MAP, .len = 1, .u.items = kv};
    int rc = sl_check(c, bolt_client_run(c->b, c->db, true, NULL, sl_queries[w], &params, &res), why, whylen);
    *rows = res.rows;
    return rc;
  }
  snprintf(name, sizeof name, "w%" PRId64, id);
  sl_pack kv[10] = {sl_pack_str("dst"), sl_pack_int(dst), sl_pack_str("id"),  sl_pack_int(id),
                    sl_pack_str("name"), sl_pack_str(name), sl_pack_str("age"), sl_pack_int(18 + id % 63),
                    sl_pack_str("since"), sl_pack_int(1990 + id % 30)};
  sl_pack params = {.kind = SL_PACK_MAP, .len = 5, .u.items = kv};
  int rc = sl_check(c, bolt_client_tx(c->b, c->db, sl_queries[W_WRITE], &params, &res), why, whylen);
  if (rc == 0 && !res.bookmark[0]) {
    snprintf(why, whylen, "COMMIT returned no bookmark");
    rc = SL_EINVAL;
  }
  *rows = 0;
  return rc;
}

static int sl_marker_commit(void *cl, int64_t id, char *why, size_t whylen) {
  sl_cl *c = cl;
  bolt_result res;
  sl_pack kv[2] = {sl_pack_str("id"), sl_pack_int(id)};
  sl_pack params = {.kind = SL_PACK_MAP, .len = 1, .u.items = kv};
  return sl_check(c, bolt_client_run(c->b, c->db, false, NULL, "CREATE (:Marker {id: $id})", &params, &res), why,
                  whylen);
}

static int sl_marker_seen(void *cl, int64_t id, char *why, size_t whylen) {
  sl_cl *c = cl;
  bolt_result res;
  sl_pack kv[2] = {sl_pack_str("id"), sl_pack_int(id)};
  sl_pack params = {.kind = SL_PACK_MAP, .len = 1, .u.items = kv};
  int rc = sl_check(c, bolt_client_run(c->b, c->db, true, NULL, "MATCH (m:Marker {id: $id}) RETURN m.id", &params,
                                       &res),
                    why, whylen);
  return rc ? rc : res.rows > 0;
}

static int sl_exec(sl_cl *c, const char *query, const sl_pack *params, char *why, size_t whylen) {
  bolt_result res;
  return sl_check(c, bolt_client_run(c->b, c->db, false, NULL, query, params, &res), why, whylen);
}

static int sl_load(const opts *o, char *why, size_t whylen) {
  void *cl;
  int rc = sl_open(o, false, &cl, why, whylen);
  if (rc) return rc;
  sl_cl *c = cl;
  rc = sl_exec(c, "CREATE CONSTRAINT person_id IF NOT EXISTS FOR (p:Person) REQUIRE p.id IS UNIQUE", NULL, why,
                   whylen);
  if (rc == 0)
    rc = sl_exec(c, "CREATE CONSTRAINT marker_id IF NOT EXISTS FOR (m:Marker) REQUIRE m.id IS UNIQUE", NULL, why,
                 whylen);
  for (int pass = 0; pass < 2 && rc == 0; pass++)
    for (int64_t from = 1; from <= o->nodes && rc == 0; from += LOAD_BATCH) {
      int64_t to = SL_MIN(from + LOAD_BATCH - 1, o->nodes);
      sl_pack kv[8] = {sl_pack_str("from"),   sl_pack_int(from),         sl_pack_str("to"), sl_pack_int(to),
                       sl_pack_str("degree"), sl_pack_int(o->degree), sl_pack_str("n"),  sl_pack_int(o->nodes)};
      sl_pack params = {.kind = SL_PACK_MAP, .len = pass ? 4 : 2, .u.items = kv};
      rc = sl_exec(c,
                   pass ? "UNWIND range($from, $to) AS i MATCH (a:Person {id: i}) "
                          "UNWIND range(1, $degree) AS k MATCH (b:Person {id: (i * 7919 + k * 104729) % $n + 1}) "
                          "CREATE (a)-[:KNOWS {since: 1990 + (i + k) % 30}]->(b)"
                        : "UNWIND range($from, $to) AS i "
                          "CREATE (:Person {id: i, name: 'p' + toString(i), age: 18 + i % 63})",
                   &params, why, whylen);
    }
  sl_close(cl);
  return rc;
}

static const sys_ops sl_sys = {"shiplog", sl_open, sl_close, sl_op, sl_marker_commit, sl_marker_seen, sl_load};

/* -- PostgreSQL over libpq -- */
#ifdef SL_HAVE_LIBPQ

static const struct {
  const char *name, *sql;
  int nparams;
} pg_stmts[] = {
    {"w1", "INSERT INTO person(id, name, age) VALUES ($1::bigint, $2::text, $3::int)", 3},
    {"w2", "INSERT INTO knows(src, dst, since) VALUES ($1::bigint, $2::bigint, $3::int)", 3},
    {"pt", "SELECT name, age FROM person WHERE id = $1::bigint", 1},
    {"h1", "SELECT f.id, f.name, k.since FROM knows k JOIN person f ON f.id = k.dst WHERE k.src = $1::bigint", 1},
    {"mk", "INSERT INTO markers(id) VALUES ($1::bigint)", 1},
    {"seen", "SELECT 1 FROM markers WHERE id = $1::bigint", 1},
};

static int pg_fail(PGconn *c, PGresult *r, const char *what, char *why, size_t whylen) {
  snprintf(why, whylen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  PQclear(r);
  return SL_EINVAL;
}

static int pg_open(const opts *o, bool standby, void **out, char *why, size_t whylen) {
  PGconn *c = PQconnectdb(standby ? o->pg_standby : o->pg);
  if (PQstatus(c) != CONNECTION_OK) {
    snprintf(why, whylen, "connecting: %s", PQerrorMessage(c));
    PQfinish(c);
    return SL_EINVAL;
  }
  for (size_t i = 0; i < SL_ARRAY_LEN(pg_stmts); i++) {
    if (standby != !strcmp(pg_stmts[i].name, "seen")) continue;
    PGresult *r = PQprepare(c, pg_stmts[i].name, pg_stmts[i].sql, pg_stmts[i].nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      int rc = pg_fail(c, r, pg_stmts[i].sql, why, whylen);
      PQfinish(c);
      return rc;
    }
    PQclear(r);
  }
  *out = c;
  return 0;
}

static void pg_close(void *cl) { PQfinish(cl); }

/* A prepared statement: rows read (or touched). */
static int pg_exec(PGconn *c, const char *stmt, int n, const char *const *v, uint64_t *rows, char *why,
                   size_t whylen) {
  PGresult *r = PQexecPrepared(c, stmt, n, v, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return pg_fail(c, r, stmt, why, whylen);
  if (rows) *rows = st == PGRES_TUPLES_OK ? (uint64_t)PQntuples(r) : strtoull(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return 0;
}

/* The write: BEGIN, two INSERTs, COMMIT and a sync in one pipeline. */
static int pg_write(PGconn *c, int64_t id, int64_t dst, char *why, size_t whylen) {
  char sid[24], sdst[24], name[32], age[8], since[8];
  snprintf(sid, sizeof sid, "%" PRId64, id);
  snprintf(sdst, sizeof sdst, "%" PRId64, dst);
  snprintf(name, sizeof name, "w%" PRId64, id);
  snprintf(age, sizeof age, "%d", (int)(18 + id % 63));
  snprintf(since, sizeof since, "%d", (int)(1990 + id % 30));
  const char *p1[] = {sid, name, age}, *p2[] = {sid, sdst, since};
  if (!PQenterPipelineMode(c) || !PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
      !PQsendQueryPrepared(c, "w1", 3, p1, NULL, NULL, 0) || !PQsendQueryPrepared(c, "w2", 3, p2, NULL, NULL, 0) ||
      !PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(c))
    return pg_fail(c, NULL, "sending", why, whylen);
  int rc = 0;
  for (int i = 0; i < 4; i++) {
    PGresult *r = PQgetResult(c);
    if (!r) return pg_fail(c, NULL, "a result is missing", why, whylen);
    if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
      snprintf(why, whylen, "statement %d: %s", i, PQresultErrorMessage(r));
      rc = SL_EINVAL;
    }
    PQclear(r);
    PQclear(PQgetResult(c)); /* each query's results end with NULL */
  }
  PGresult *r = PQgetResult(c);
  if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && rc == 0) rc = pg_fail(c, NULL, "no pipeline sync", why, whylen);
  PQclear(r);
  PQexitPipelineMode(c);
  return rc;
}

static int pg_op(void *cl, work w, int64_t id, int64_t dst, uint64_t *rows, char *why, size_t whylen) {
  if (w == W_WRITE) {
    *rows = 0;
    return pg_write(cl, id, dst, why, whylen);
  }
  char sid[24];
  snprintf(sid, sizeof sid, "%" PRId64, id);
  const char *v[] = {sid};
  return pg_exec(cl, w == W_POINT ? "pt" : "h1", 1, v, rows, why, whylen);
}

static int pg_marker_commit(void *cl, int64_t id, char *why, size_t whylen) {
  char sid[24];
  snprintf(sid, sizeof sid, "%" PRId64, id);
  const char *v[] = {sid};
  return pg_exec(cl, "mk", 1, v, NULL, why, whylen);
}

static int pg_marker_seen(void *cl, int64_t id, char *why, size_t whylen) {
  char sid[24];
  uint64_t rows = 0;
  snprintf(sid, sizeof sid, "%" PRId64, id);
  const char *v[] = {sid};
  int rc = pg_exec(cl, "seen", 1, v, &rows, why, whylen);
  return rc ? rc : rows > 0;
}

static int pg_sql(PGconn *c, const char *sql, char *why, size_t whylen) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    return pg_fail(c, r, sql, why, whylen);
  PQclear(r);
  return 0;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int pg_load(const opts *o, char *why, size_t whylen) {
  char sql[512];
  PGconn *cl = PQconnectdb(o->pg);
  if (PQstatus(cl) != CONNECTION_OK) {
    snprintf(why, whylen, "connecting: %s", PQerrorMessage(cl));
    PQfinish(cl);
    return SL_EINVAL;
  }
  PQsetNoticeProcessor(cl, quiet, NULL); /* DROP TABLE IF EXISTS's notices */
  int rc = pg_sql(cl,
                  "DROP TABLE IF EXISTS knows, person, markers;"
                  "CREATE TABLE person (id bigint PRIMARY KEY, name text NOT NULL, age int NOT NULL);"
                  "CREATE TABLE knows (src bigint NOT NULL REFERENCES person, dst bigint NOT NULL REFERENCES person,"
                  "                    since int NOT NULL);"
                  "CREATE TABLE markers (id bigint PRIMARY KEY)",
                  why, whylen);
  if (rc == 0) {
    snprintf(sql, sizeof sql,
             "INSERT INTO person SELECT i, 'p' || i, 18 + i %% 63 FROM generate_series(1, %" PRId64 ") i", o->nodes);
    rc = pg_sql(cl, sql, why, whylen);
  }
  if (rc == 0) {
    snprintf(sql, sizeof sql,
             "INSERT INTO knows SELECT i, (i * 7919 + k * 104729) %% %" PRId64 " + 1, 1990 + (i + k) %% 30 "
             "FROM generate_series(1, %" PRId64 ") i, generate_series(1, %d) k ORDER BY i, k",
             o->nodes, o->nodes, o->degree);
    rc = pg_sql(cl, sql, why, whylen);
  }
  if (rc == 0) rc = pg_sql(cl, "CREATE INDEX knows_src ON knows (src); CREATE INDEX knows_dst ON knows (dst)", why, whylen);
  /* one statement each: VACUUM cannot run in the transaction a multi-statement query is */
  static const char *const after[] = {"VACUUM ANALYZE person", "VACUUM ANALYZE knows", "CHECKPOINT"};
  for (size_t i = 0; i < SL_ARRAY_LEN(after) && rc == 0; i++) rc = pg_sql(cl, after[i], why, whylen);
  PQfinish(cl);
  return rc;
}

static const sys_ops pg_sys = {"pg", pg_open, pg_close, pg_op, pg_marker_commit, pg_marker_seen, pg_load};
#endif

/* ---- one timed run ------------------------------------------------------------------ */


typedef struct run {
  const sys_ops *ops;
  const opts *o;
  work w;
  double rate;              /* > 0: open loop, the clients together */
  uint64_t t0, until;
  atomic_uint_fast64_t slot;
  atomic_int_fast64_t *next_id; /* the system's next new node id */
} run;

typedef struct client {
  run *r;
  pthread_t thread;
  void *cl;
  uint64_t done, failed, rows, seed;
  lat lat;
  char why[512];
} client;

static void *client_main(void *arg) {
  client *c = arg;
  run *r = c->r;
  sleep_until(r->t0);
  for (uint64_t k = 0;; k++) {
    if (r->rate > 0) {
      uint64_t s = atomic_fetch_add(&r->slot, 1);
      uint64_t due = r->t0 + (uint64_t)((double)s * 1e9 / r->rate);
      if (due >= r->until || sl_mono_ns() >= r->until) break;
      sleep_until(due);
    } else if (sl_mono_ns() >= r->until) {
      break;
    }
    int64_t pick = (int64_t)(mix64(c->seed + k) % (uint64_t)r->o->nodes) + 1, id = pick;
    if (r->w == W_WRITE) id = atomic_fetch_add(r->next_id, 1);
    uint64_t rows = 0, t = sl_mono_ns();
    char why[512];
    int rc = r->ops->op(c->cl, r->w, id, pick, &rows, why, sizeof why);
    uint64_t now = sl_mono_ns();
    if (rc) {
      if (!c->failed++) snprintf(c->why, sizeof c->why, "%s", why);
      if (rc != SL_EINVAL) break; /* the connection is gone */
      continue;
    }
    c->done++;
    c->rows += rows;
    if (lat_add(&c->lat, now - t)) break;
  }
  return NULL;
}

typedef struct probe {
  run *r;
  pthread_t thread;
  void *primary, *standby;
  lat lat;
  uint64_t lost;
  atomic_int_fast64_t *next_marker;
  int rc;
  char why[512];
} probe;

static void *probe_main(void *arg) {
  probe *p = arg;
  run *r = p->r;
  for (uint64_t k = 0;; k++) {
    uint64_t due = r->t0 + k * PROBE_NS;
    if (due >= r->until) break;
    sleep_until(due);
    int64_t id = atomic_fetch_add(p->next_marker, 1);
    if ((p->rc = r->ops->marker_commit(p->primary, id, p->why, sizeof p->why))) break;
    uint64_t committed = sl_mono_ns();
    int seen;
    while ((seen = r->ops->marker_seen(p->standby, id, p->why, sizeof p->why)) == 0) {
      if (sl_mono_ns() - committed > PROBE_GIVE_UP_NS) break;
      nanosleep(&(struct timespec){0, POLL_NS}, NULL);
    }
    if (seen < 0) {
      p->rc = seen;
      break;
    }
    if (seen) lat_add(&p->lat, sl_mono_ns() - committed);
    else p->lost++;
  }
  return NULL;
}

/* What one run measured. */
typedef struct figures {
  double per_s, p50_ms, p99_ms, lag_p50_ms, lag_p99_ms, lag_max_ms;
  double busy_us; /* the machine's busy CPU time (every process) over the timed run */
  uint64_t done, rows;
} figures;

/* The machine's busy CPU time so far, in microseconds (/proc/stat: user,
 * nice, system, irq and softirq of every CPU), or -1. */
static double machine_busy_us(void) {
  unsigned long long user, nice, sys, idle, iowait, irq, softirq;
  FILE *f = fopen("/proc/stat", "r");
  int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq, &softirq) : 0;
  if (f) fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  return n == 7 && hz > 0 ? (double)(user + nice + sys + irq + softirq) * 1e6 / (double)hz : -1;
}

/* n clients on `w` for `seconds` (rate > 0: open loop), with the
 * visibility probe when probing. */
static int measure(const sys_ops *ops, const opts *o, work w, int n, double seconds, double rate, bool probing,
                   atomic_int_fast64_t *next_id, atomic_int_fast64_t *next_marker, figures *f) {
  client *cs = calloc((size_t)n, sizeof *cs);
  run r = {.ops = ops, .o = o, .w = w, .rate = rate, .next_id = next_id};
  probe p = {.r = &r, .next_marker = next_marker};
  char why[512] = "";
  int rc = 0, started = 0;
  bool probe_started = false;
  if (!cs) return -ENOMEM;
  for (int k = 0; k < n && rc == 0; k++) {
    cs[k].r = &r;
    cs[k].seed = mix64((uint64_t)sl_mono_ns() ^ (uint64_t)k << 48);
    rc = ops->open(o, false, &cs[k].cl, why, sizeof why);
  }
  if (rc == 0 && probing && (rc = ops->open(o, false, &p.primary, why, sizeof why)) == 0)
    rc = ops->open(o, true, &p.standby, why, sizeof why);
  if (rc) {
    sl_diag_error("%s: connecting: %s", ops->name, why);
    goto done;
  }
  r.t0 = sl_mono_ns() + 100000000; /* every thread is waiting by then */
  r.until = r.t0 + (uint64_t)(seconds * 1e9);
  for (; started < n; started++)
    if ((rc = -pthread_create(&cs[started].thread, NULL, client_main, &cs[started]))) break;
  if (rc == 0 && probing && !(rc = -pthread_create(&p.thread, NULL, probe_main, &p))) probe_started = true;
  sleep_until(r.t0);
  double busy0 = machine_busy_us();
  for (int k = 0; k < started; k++) pthread_join(cs[k].thread, NULL);
  uint64_t end = sl_mono_ns();
  double busy1 = machine_busy_us();
  if (probe_started) pthread_join(p.thread, NULL);
  if (rc) goto done;

  lat all = {0};
  memset(f, 0, sizeof *f);
  for (int k = 0; k < n; k++) {
    f->done += cs[k].done;
    f->rows += cs[k].rows;
    for (size_t i = 0; i < cs[k].lat.n; i++) lat_add(&all, cs[k].lat.ns[i]);
    if (cs[k].failed) {
      sl_diag_error("%s client %d: %" PRIu64 " requests failed; the first: %s", ops->name, k, cs[k].failed,
                    cs[k].why);
      rc = SL_EINVAL;
    }
  }
  if (p.rc) {
    sl_diag_error("%s probe: %s", ops->name, p.why);
    rc = p.rc;
  }
  if (p.lost) sl_diag_error("%s probe: %" PRIu64 " markers not seen within 30 s", ops->name, p.lost);
  lat_sort(&all);
  lat_sort(&p.lat);
  f->per_s = (double)f->done / ((double)(end - r.t0) / 1e9);
  f->busy_us = busy0 >= 0 && busy1 >= busy0 ? busy1 - busy0 : -1;
  f->p50_ms = lat_pct(&all, 50, 1e6);
  f->p99_ms = lat_pct(&all, 99, 1e6);
  f->lag_p50_ms = lat_pct(&p.lat, 50, 1e6);
  f->lag_p99_ms = lat_pct(&p.lat, 99, 1e6);
  f->lag_max_ms = lat_pct(&p.lat, 100, 1e6);
  free(all.ns);
done:
  for (int k = 0; k < n; k++) {
    if (cs[k].cl) ops->close(cs[k].cl);
    free(cs[k].lat.ns);
  }
  if (p.primary) ops->close(p.primary);
  if (p.standby) ops->close(p.standby);
  free(p.lat.ns);
  free(cs);
  return rc;
}

/* Commit a marker and wait until the standby shows it: everything
 * committed before is there too. */
static int settle(const sys_ops *ops, const opts *o, atomic_int_fast64_t *next_marker, double limit_s) {
  void *pc = NULL, *sc = NULL;
  char why[512] = "";
  int rc = ops->open(o, false, &pc, why, sizeof why);
  if (rc == 0) rc = ops->open(o, true, &sc, why, sizeof why);
  int64_t id = atomic_fetch_add(next_marker, 1);
  if (rc == 0) rc = ops->marker_commit(pc, id, why, sizeof why);
  uint64_t until = sl_mono_ns() + (uint64_t)(limit_s * 1e9);
  while (rc == 0 && (rc = ops->marker_seen(sc, id, why, sizeof why)) == 0) {
    if (sl_mono_ns() > until) {
      snprintf(why, sizeof why, "the standby did not catch up within %.0f s", limit_s);
      rc = -ETIMEDOUT;
      break;
    }
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  if (rc < 0 || rc == SL_EINVAL) sl_diag_error("%s: settling: %s", ops->name, why);
  if (pc) ops->close(pc);
  if (sc) ops->close(sc);
  return rc > 0 ? 0 : rc;
}

/* ---- the figures -------------------------------------------------------------------- */

typedef struct row {
  char label[32], title[64];
  const char *unit;
  bool higher_better;
  double v[2][16]; /* [system][rep], -1: not measured */
} row;

typedef struct table {
  row rows[48];
  int n;
} table;

static row *table_row(table *t, const char *label, const char *title, const char *unit, bool higher) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->rows[i].label, label)) return &t->rows[i];
  row *r = &t->rows[t->n++];
  snprintf(r->label, sizeof r->label, "%s", label);
  snprintf(r->title, sizeof r->title, "%s", title);
  r->unit = unit;
  r->higher_better = higher;
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < 16; k++) r->v[s][k] = -1;
  return r;
}

static void put_num(double v) {
  if (v < 0) printf(" %9s", "-");
  else if (v >= 100) printf(" %9.0f", v);
  else if (v >= 10) printf(" %9.1f", v);
  else printf(" %9.2f", v);
}

static double ratio(const row *r, int rep) {
  return r->v[0][rep] > 0 && r->v[1][rep] >= 0 ? r->v[1][rep] / r->v[0][rep] : -1;
}

static json_t *num_or_null(double v) { return v < 0 ? json_null() : json_real(v); }

/* Print the table and the targets; the JSON document goes to o->json. */
static int report(const opts *o, table *t, int nsys) {
  static const char *const heads[] = {"PostgreSQL", "shiplog", "shiplog/PG"};
  int reps = o->reps;
  printf("%-42s %-6s", "figure (run 1, run 2, ...)", "unit");
  for (size_t k = 0; k < SL_ARRAY_LEN(heads); k++) printf(" %*s%*s", 9, heads[k], 10 * (reps - 1), "");
  printf("  better\n");
  json_t *figs = json_array();
  for (int i = 0; i < t->n; i++) {
    row *r = &t->rows[i];
    json_t *js[3] = {json_array(), json_array(), json_array()};
    printf("%-42s %-6s", r->title, r->unit);
    for (int s = 0; s < 2; s++)
      for (int k = 0; k < reps; k++) {
        put_num(r->v[s][k]);
        json_array_append_new(js[s], num_or_null(r->v[s][k]));
      }
    for (int k = 0; k < reps; k++) {
      put_num(ratio(r, k));
      json_array_append_new(js[2], num_or_null(ratio(r, k)));
    }
    printf("  %s\n", r->higher_better ? "higher" : "lower");
    json_array_append_new(figs, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "figure", r->title, "label",
                                          r->label, "unit", r->unit, "better", r->higher_better ? "higher" : "lower",
                                          "pg", js[0], "shiplog", js[1], "ratio", js[2]));
  }

  /* The targets, per repetition: worst case over the rows each covers. */
  json_t *targets = json_array();
  static const struct {
    const char *name, *prefix, *field;
    double want;
  } goals[] = {
      {"durable writes >= 3x PostgreSQL (each client count)", "write-", NULL, 3},
      {"reads >= PostgreSQL (point and 1-hop, each client count)", "point-", "hop1-", 1},
      {"commit->visible p99 <= 5 ms at the lag rate", "lag-p99", NULL, 5},
  };
  printf("\ntargets (per run; the worst figure each covers)%s:\n", nsys < 2 ? " (no PostgreSQL: ratios unknown)" : "");
  for (size_t g = 0; g < SL_ARRAY_LEN(goals); g++) {
    json_t *vals = json_array();
    bool met = true, measured = false;
    printf("  %-60s", goals[g].name);
    for (int k = 0; k < reps; k++) {
      double worst = -1;
      for (int i = 0; i < t->n; i++) {
        row *r = &t->rows[i];
        bool mine = !strncmp(r->label, goals[g].prefix, strlen(goals[g].prefix)) ||
                    (goals[g].field && !strncmp(r->label, goals[g].field, strlen(goals[g].field)));
        if (!mine || strstr(r->label, "-lat") || strstr(r->label, "-cpu")) continue;
        double v = g == 2 ? r->v[1][k] : ratio(r, k);
        if (v < 0) continue;
        if (worst < 0 || (g == 2 ? v > worst : v < worst)) worst = v;
      }
      measured = measured || worst >= 0;
      met = met && worst >= 0 && (g == 2 ? worst <= goals[g].want : worst >= goals[g].want);
      if (worst < 0) printf(" %8s", "-");
      else printf(g == 2 ? " %6.2fms" : " %7.2fx", worst);
      json_array_append_new(vals, num_or_null(worst));
    }
    printf("  %s\n", !measured ? "not measured" : met ? "met" : "NOT met");
    json_array_append_new(targets, json_pack("{s:s, s:o, s:o}", "target", goals[g].name, "values", vals, "met",
                                             measured ? json_boolean(met) : json_null()));
  }
  /* One client waits for one fdatasync per commit on either system: its
   * 3x target can lie beyond what the disk does for one writer. */
  const row *w1 = NULL, *disk = NULL;
  for (int i = 0; i < t->n; i++) {
    if (!strcmp(t->rows[i].label, "write-1")) w1 = &t->rows[i];
    if (!strcmp(t->rows[i].label, "disk-1")) disk = &t->rows[i];
  }
  if (w1 && disk && nsys == 2) {
    printf("  %-60s", "3x PostgreSQL with 1 client / the disk's 1-writer rate");
    for (int k = 0; k < reps; k++) {
      double need = 3 * w1->v[0][k], fs = SL_MAX(disk->v[0][k], disk->v[1][k]);
      if (w1->v[0][k] < 0 || fs <= 0) printf(" %8s", "-");
      else printf(" %7.2fx", need / fs);
    }
    printf("  (above 1x: beyond the disk for any system that syncs each commit)\n");
  }
  int rc = 0;
  if (o->json) {
    json_t *doc = json_pack("{s:s, s:I, s:I, s:i, s:f, s:i, s:o, s:o}", "bench", "bench_bolt", "written_us",
                            (json_int_t)sl_now_us(), "nodes", (json_int_t)o->nodes, "degree", o->degree, "seconds",
                            o->seconds, "runs", reps, "figures", figs, "targets", targets);
    if (json_dump_file(doc, o->json, JSON_INDENT(1)) != 0) {
      sl_diag_error("%s: cannot write", o->json);
      rc = 1;
    }
    json_decref(doc);
  } else {
    json_decref(figs);
    json_decref(targets);
  }
  return rc;
}

/* ---- main ----------------------------------------------------------------------------- */

static int parse_counts(const char *s, int *out, int *n) {
  *n = 0;
  for (const char *p = s; *p && *n < MAX_COUNTS;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > MAX_CLIENTS) return -1;
    out[(*n)++] = (int)v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return *n ? 0 : -1;
}

/* The same reads must find the same rows on both systems. */
static int compare_reads(const sys_ops *const *sys, int nsys, const opts *o) {
  void *cl[2] = {0};
  char why[512];
  int rc = 0;
  for (int s = 0; s < nsys && rc == 0; s++) rc = sys[s]->open(o, false, &cl[s], why, sizeof why);
  for (int i = 0; i < CHECKS && rc == 0; i++) {
    int64_t id = (int64_t)(mix64((uint64_t)i) % (uint64_t)o->nodes) + 1;
    for (work w = W_POINT; w <= W_HOP1 && rc == 0; w++) {
      uint64_t rows[2] = {0};
      for (int s = 0; s < nsys && rc == 0; s++) rc = sys[s]->op(cl[s], w, id, 0, &rows[s], why, sizeof why);
      if (rc == 0 && (rows[0] != (w == W_POINT ? 1 : (uint64_t)o->degree) || (nsys > 1 && rows[0] != rows[1]))) {
        snprintf(why, sizeof why, "%s of %" PRId64 ": %" PRIu64 " rows on %s, %" PRIu64 " on %s (expected %d)",
                 w == W_POINT ? "point read" : "1-hop read", id, rows[0], sys[0]->name, rows[1],
                 nsys > 1 ? sys[1]->name : "-", w == W_POINT ? 1 : o->degree);
        rc = SL_EINVAL;
      }
    }
  }
  if (rc) sl_diag_error("checking reads: %s", why);
  for (int s = 0; s < nsys; s++)
    if (cl[s]) sys[s]->close(cl[s]);
  return rc;
}

int main(int argc, char **argv) {
  sl_set_progname("bench_bolt");
  opts o = {.nodes = 100000, .degree = 4, .reps = 2, .seconds = 5, .lag_seconds = 10, .lag_rate = 1000};
  parse_counts("1,4,16,64", o.writers, &o.n_writers);
  parse_counts("1,4", o.readers, &o.n_readers);
  bool quick = false;
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i];
    if (!strcmp(f, "--quick")) {
      quick = true;
      continue;
    }
    if (!strcmp(f, "-h") || !strcmp(f, "--help") || i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(f, "--bolt")) o.bolt = v;
    else if (!strcmp(f, "--standby-bolt")) o.standby_bolt = v;
    else if (!strcmp(f, "--standby-db")) o.standby_db = v;
    else if (!strcmp(f, "--pg")) o.pg = v;
    else if (!strcmp(f, "--pg-standby")) o.pg_standby = v;
    else if (!strcmp(f, "--json")) o.json = v;
    else if (!strcmp(f, "--disk")) o.disk = v;
    else if (!strcmp(f, "--nodes")) o.nodes = strtoll(v, NULL, 10);
    else if (!strcmp(f, "--degree")) o.degree = atoi(v);
    else if (!strcmp(f, "--seconds")) o.seconds = atof(v);
    else if (!strcmp(f, "--lag-seconds")) o.lag_seconds = atof(v);
    else if (!strcmp(f, "--lag-rate")) o.lag_rate = atof(v);
    else if (!strcmp(f, "--reps")) o.reps = atoi(v);
    else if (!strcmp(f, "--writers")) {
      if (parse_counts(v, o.writers, &o.n_writers)) usage();
    } else if (!strcmp(f, "--readers")) {
      if (parse_counts(v, o.readers, &o.n_readers)) usage();
    } else usage();
  }
  if (quick) {
    o.nodes = 5000;
    o.seconds = 1;
    o.lag_seconds = 2;
    o.reps = 1;
  }
  if (!o.bolt || !o.standby_bolt || !o.standby_db || o.nodes < 1 || o.degree < 1 || o.degree > 100 ||
      o.reps < 1 || o.reps > 16 || o.seconds <= 0 || o.lag_seconds <= 0 || o.lag_rate <= 0 ||
      !o.pg != !o.pg_standby)
    usage();

  const sys_ops *sys[2] = {NULL, &sl_sys}; /* [0] PostgreSQL, [1] shiplog */
  if (o.pg) {
#ifdef SL_HAVE_LIBPQ
    sys[0] = &pg_sys;
#else
    sl_diag_error("--pg: this build has no libpq (install libpq-dev and rebuild)");
    return 2;
#endif
  }
  const sys_ops *order[2];
  int nsys = 0;
  for (int s = 0; s < 2; s++)
    if (sys[s]) order[nsys++] = sys[s];

  atomic_int_fast64_t next_id[2], next_marker[2];
  for (int s = 0; s < 2; s++) {
    atomic_init(&next_id[s], NEW_ID_BASE);
    atomic_init(&next_marker[s], 1);
  }
  int rc = 0;
  for (int s = 0; s < nsys && rc == 0; s++) {
    char why[512] = "";
    uint64_t t = sl_mono_ns();
    rc = order[s]->load(&o, why, sizeof why);
    if (rc) sl_diag_error("%s: loading: %s", order[s]->name, why);
    else
      fprintf(stderr, "bench_bolt: %s: %" PRId64 " nodes, %" PRId64 " relationships loaded in %.1f s\n",
              order[s]->name, o.nodes, o.nodes * o.degree, (double)(sl_mono_ns() - t) / 1e9);
  }
  if (rc == 0) rc = compare_reads(order, nsys, &o);
  if (rc) return 1;

  table t = {0};
  for (int rep = 0; rep < o.reps && rc == 0; rep++) {
    for (int i = 0; i < nsys && rc == 0; i++) {
      /* PostgreSQL first in odd repetitions (rep 0, 2, ...) */
      int s = sys[0] ? ((rep % 2) ? 1 - i : i) : 1;
      const sys_ops *ops = sys[s];
      figures f;
      char label[32], title[64];
      for (int k = 0; k < o.n_readers && rc == 0; k++)
        for (work w = W_POINT; w <= W_HOP1 && rc == 0; w++) {
          int n = o.readers[k];
          if ((rc = measure(ops, &o, w, n, o.seconds, 0, false, &next_id[s], &next_marker[s], &f))) break;
          snprintf(label, sizeof label, "%s-%d", w == W_POINT ? "point" : "hop1", n);
          snprintf(title, sizeof title, "%s reads/s, %d client%s", w == W_POINT ? "point" : "1-hop", n,
                   n > 1 ? "s" : "");
          table_row(&t, label, title, "/s", true)->v[s][rep] = f.per_s;
          fprintf(stderr, "  %-8s %-10s %9.0f /s   p50 %.3f ms  p99 %.3f ms  (%.1f rows each)\n", ops->name, label,
                  f.per_s, f.p50_ms, f.p99_ms, f.done ? (double)f.rows / (double)f.done : 0);
        }
      if (o.disk && o.n_writers && rc == 0) {
        disk_sync_rate d;
        if ((rc = disk_sync_rate_measure(o.disk, 1.0, &d))) break;
        table_row(&t, "disk-1", "disk: 4 KiB write+fdatasync/s, 1 writer", "/s", true)->v[s][rep] = d.per_s;
        fprintf(stderr, "  %-8s %-10s %9.0f /s   p50 %.3f ms  p99 %.3f ms  (before %s's writes)\n", "disk", "disk-1",
                d.per_s, d.p50_us / 1e3, d.p99_us / 1e3, ops->name);
      }
      for (int k = 0; k < o.n_writers && rc == 0; k++) {
        int n = o.writers[k];
#ifdef SL_HAVE_LIBPQ
        if (ops == &pg_sys) { /* a fresh start for each run, as bench/peer's TRUNCATE + CHECKPOINT */
          void *cl;
          char why[512];
          if ((rc = pg_open(&o, false, &cl, why, sizeof why)) == 0) {
            rc = pg_sql(cl, "CHECKPOINT", why, sizeof why);
            pg_close(cl);
          }
          if (rc) {
            sl_diag_error("pg: %s", why);
            break;
          }
        }
#endif
        if ((rc = measure(ops, &o, W_WRITE, n, o.seconds, 0, false, &next_id[s], &next_marker[s], &f))) break;
        snprintf(label, sizeof label, "write-%d", n);
        snprintf(title, sizeof title, "durable write tx/s, %d client%s", n, n > 1 ? "s" : "");
        table_row(&t, label, title, "tx/s", true)->v[s][rep] = f.per_s;
        fprintf(stderr, "  %-8s %-10s %9.0f tx/s p50 %.3f ms  p99 %.3f ms\n", ops->name, label, f.per_s, f.p50_ms,
                f.p99_ms);
        snprintf(label, sizeof label, "write-%d-lat", n);
        snprintf(title, sizeof title, "  commit latency p99, %d client%s", n, n > 1 ? "s" : "");
        table_row(&t, label, title, "ms", false)->v[s][rep] = f.p99_ms;
        snprintf(label, sizeof label, "write-%d-cpu", n);
        snprintf(title, sizeof title, "  machine's busy CPU per tx, %d client%s", n, n > 1 ? "s" : "");
        table_row(&t, label, title, "us", false)->v[s][rep] = f.busy_us >= 0 && f.done ? f.busy_us / (double)f.done : -1;
      }
      if (rc == 0) rc = settle(ops, &o, &next_marker[s], 300);
      if (rc == 0)
        rc = measure(ops, &o, W_WRITE, LAG_CLIENTS, o.lag_seconds, o.lag_rate, true, &next_id[s], &next_marker[s], &f);
      if (rc == 0) {
        table_row(&t, "lag-tx", "achieved tx/s at the lag rate", "tx/s", true)->v[s][rep] = f.per_s;
        table_row(&t, "lag-p50", "commit->visible on standby p50", "ms", false)->v[s][rep] = f.lag_p50_ms;
        table_row(&t, "lag-p99", "commit->visible on standby p99", "ms", false)->v[s][rep] = f.lag_p99_ms;
        table_row(&t, "lag-max", "commit->visible on standby max", "ms", false)->v[s][rep] = f.lag_max_ms;
        fprintf(stderr, "  %-8s %-10s %9.0f tx/s visible p50/p99/max %.3f/%.3f/%.3f ms\n", ops->name, "lag", f.per_s,
                f.lag_p50_ms, f.lag_p99_ms, f.lag_max_ms);
      }
    }
  }
  if (rc) return 1;
  return report(&o, &t, nsys);
}
