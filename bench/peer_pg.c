/*
 * bench_peer, the PostgreSQL side (bench/peer.h), through libpq: the same
 * mutation lines as the shiplog side, translated to SQL on a graph schema
 * that bench/peer creates:
 *
 *   nodes(id bigint primary key, labels text[], props jsonb)
 *   rels(id bigint primary key, type text, start_id bigint references nodes,
 *        end_id bigint references nodes, props jsonb)
 *   indexes on rels(start_id) and rels(end_id); markers(id bigint primary key)
 *
 * ONE LINE = ONE SQL TRANSACTION, sent in one round trip: libpq pipeline
 * mode carries BEGIN, one prepared statement per op and COMMIT, then a sync;
 * the results are read after. With synchronous_commit=on the COMMIT returns
 * once the WAL is flushed on the primary: the same "durable on the primary"
 * as sl_tx_commit. The standby streams asynchronously, as shiplog ships.
 *
 *   create_node       INSERT INTO nodes VALUES (id, labels, props)
 *   delete_node       DELETE FROM nodes (the foreign keys refuse it while
 *                     relationships remain); with detach, their rels first,
 *                     in the same statement (a data-modifying CTE)
 *   add/remove_label  UPDATE nodes SET labels = array_append/array_remove
 *   set_node_prop     UPDATE nodes SET props = props || {key: value}
 *                     (null: props - key, as remove_node_prop)
 *   create_rel        INSERT INTO rels (the foreign keys check the ends)
 *   delete_rel, set/remove_rel_prop   likewise on rels
 * Property values go to jsonb as the JSON text of the mutation line ({"$bytes":
 * ...} stays an object). Every statement must touch exactly one row; one that
 * does not is a failed line (the workload is valid, so that would be a bug in
 * this translation), counted by the driver. A line's "ts" is ignored:
 * PostgreSQL dates commits itself.
 *
 * Markers are rows of `markers`; the probe polls the standby for the row
 * with a prepared SELECT on its own connection. Bytes: log_bytes is the WAL
 * the primary wrote (pg_current_wal_lsn difference); wire_bytes the TCP
 * payload the standby acknowledged on the walsender's connection (`ss -ti`
 * bytes_acked of the connection pg_stat_replication names).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peer.h"
#include "sl_base.h"

enum { S_CREATE_NODE, S_DELETE_NODE, S_DETACH_DELETE_NODE, S_ADD_LABEL, S_REMOVE_LABEL,
       S_SET_NODE_PROP, S_REMOVE_NODE_PROP, S_CREATE_REL, S_DELETE_REL, S_SET_REL_PROP,
       S_REMOVE_REL_PROP, S_MARKER, S_COUNT };

static const struct {
  const char *name, *sql;
  int nparams;
} stmts[S_COUNT] = {
    [S_CREATE_NODE] = {"cn", "INSERT INTO nodes(id, labels, props) VALUES ($1::bigint, $2::text[], $3::jsonb)", 3},
    [S_DELETE_NODE] = {"dn", "DELETE FROM nodes WHERE id = $1::bigint", 1},
    [S_DETACH_DELETE_NODE] = {"ddn", "WITH r AS (DELETE FROM rels WHERE start_id = $1::bigint OR end_id = $1::bigint) "
                                     "DELETE FROM nodes WHERE id = $1::bigint", 1},
    [S_ADD_LABEL] = {"al", "UPDATE nodes SET labels = CASE WHEN $2::text = ANY(labels) THEN labels "
                           "ELSE array_append(labels, $2::text) END WHERE id = $1::bigint", 2},
    [S_REMOVE_LABEL] = {"rl", "UPDATE nodes SET labels = array_remove(labels, $2::text) WHERE id = $1::bigint", 2},
    [S_SET_NODE_PROP] = {"snp", "UPDATE nodes SET props = props || jsonb_build_object($2::text, $3::jsonb) "
                                "WHERE id = $1::bigint", 3},
    [S_REMOVE_NODE_PROP] = {"rnp", "UPDATE nodes SET props = props - $2::text WHERE id = $1::bigint", 2},
    [S_CREATE_REL] = {"cr", "INSERT INTO rels(id, type, start_id, end_id, props) "
                            "VALUES ($1::bigint, $2::text, $3::bigint, $4::bigint, $5::jsonb)", 5},
    [S_DELETE_REL] = {"dr", "DELETE FROM rels WHERE id = $1::bigint", 1},
    [S_SET_REL_PROP] = {"srp", "UPDATE rels SET props = props || jsonb_build_object($2::text, $3::jsonb) "
                               "WHERE id = $1::bigint", 3},
    [S_REMOVE_REL_PROP] = {"rrp", "UPDATE rels SET props = props - $2::text WHERE id = $1::bigint", 2},
    [S_MARKER] = {"mk", "INSERT INTO markers(id) VALUES ($1::bigint)", 1},
};

#define SETTLE_MARKER (PEER_MARKER_BASE + (1ull << 40))
#define MAX_OPS 4096

struct peer_side {
  const peer_opts *o;
  PGconn *admin;          /* primary: LSNs, counts, the settle marker */
  peer_client *settler;   /* for the settle marker */
  char lsn0[64];
  uint64_t wire0, syncs0;
  int walsender_port;     /* the standby's end of the replication connection */
};

struct peer_client {
  peer_side *s;
  PGconn *c, *sb;         /* primary; standby (opened by the first marker_seen) */
};

static PGconn *connect_db(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    sl_diag_error("cannot connect to '%s': %s", conninfo, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* The first row's first column of `sql` into buf; 0 or SL_EINVAL (logged). */
static int query_one(PGconn *c, const char *sql, char *buf, size_t len) {
  PGresult *r = PQexec(c, sql);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
    sl_diag_error("%s: %s", sql, PQresultErrorMessage(r));
    rc = SL_EINVAL;
  } else {
    snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
  }
  PQclear(r);
  return rc;
}

/* TCP payload bytes acknowledged on the connection from local_port to
 * peer_port on 127.0.0.1 (`ss -ti`); 0 when ss cannot tell. */
static uint64_t ss_bytes_acked(int local_port, int peer_port) {
  char cmd[160], line[1024];
  snprintf(cmd, sizeof cmd, "ss -tinH state established '( sport = :%d and dport = :%d )' 2>/dev/null",
           local_port, peer_port);
  FILE *p = popen(cmd, "r");
  if (!p) return 0;
  uint64_t v = 0;
  while (fgets(line, sizeof line, p)) {
    const char *k = strstr(line, "bytes_acked:");
    if (k) v = strtoull(k + strlen("bytes_acked:"), NULL, 10);
  }
  pclose(p);
  return v;
}

static uint64_t walsender_bytes(peer_side *s) {
  return s->walsender_port ? ss_bytes_acked(atoi(PQport(s->admin)), s->walsender_port) : 0;
}

static void pg_client_close(peer_client *c) {
  if (c->c) PQfinish(c->c);
  if (c->sb) PQfinish(c->sb);
  free(c);
}

static int pg_client_open(peer_side *s, peer_client **out) {
  peer_client *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->s = s;
  int rc = SL_EINVAL;
  if (!(c->c = connect_db(s->o->primary))) goto fail;
  for (int i = 0; i < S_COUNT; i++) {
    PGresult *r = PQprepare(c->c, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) sl_diag_error("preparing %s: %s", stmts[i].sql, PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) goto fail;
  }
  *out = c;
  return 0;
fail:
  pg_client_close(c);
  return rc;
}

static void pg_side_close(peer_side *s) {
  if (s->settler) pg_client_close(s->settler);
  if (s->admin) PQfinish(s->admin);
  free(s);
}

static int pg_side_open(const peer_opts *o, peer_side **out) {
  if (!o->primary || !o->standby) {
    sl_diag_error("pg side: --primary and --standby are required");
    return SL_EINVAL;
  }
  peer_side *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->o = o;
  char port[32];
  int rc = SL_EINVAL;
  if (!(s->admin = connect_db(o->primary))) goto fail;
  if ((rc = query_one(s->admin, "SELECT pg_current_wal_lsn()", s->lsn0, sizeof s->lsn0))) goto fail;
  if (query_one(s->admin, "SELECT coalesce(max(client_port), 0) FROM pg_stat_replication", port, sizeof port) == 0)
    s->walsender_port = atoi(port);
  s->wire0 = walsender_bytes(s);
  char syncs[32];
  if ((rc = query_one(s->admin, "SELECT wal_sync FROM pg_stat_wal", syncs, sizeof syncs))) goto fail;
  s->syncs0 = strtoull(syncs, NULL, 10);
  if ((rc = pg_client_open(s, &s->settler))) goto fail;
  *out = s;
  return 0;
fail:
  pg_side_close(s);
  return rc;
}

/* ---- a mutation line as SQL ---------------------------------------------------- */

/* One op's parameters as text. Owned strings are freed by params_clear. */
typedef struct params {
  const char *v[5];
  char *owned[5];
  char num[5][24];
  int n;
} params;

static void params_clear(params *p) {
  for (int i = 0; i < p->n; i++) free(p->owned[i]);
  memset(p, 0, sizeof *p);
}

static int add_id(params *p, json_t *op, const char *key) {
  json_t *j = json_object_get(op, key);
  if (!json_is_integer(j)) return SL_EINVAL;
  snprintf(p->num[p->n], sizeof p->num[p->n], "%" JSON_INTEGER_FORMAT, json_integer_value(j));
  p->v[p->n] = p->num[p->n];
  p->n++;
  return 0;
}

static int add_str(params *p, json_t *op, const char *key) {
  json_t *j = json_object_get(op, key);
  if (!json_is_string(j)) return SL_EINVAL;
  p->v[p->n++] = json_string_value(j);
  return 0;
}

/* A JSON value (or "{}" when absent) as jsonb text. */
static int add_json(params *p, json_t *j) {
  if (!j) {
    p->v[p->n++] = "{}";
    return 0;
  }
  if (!(p->owned[p->n] = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY))) return -ENOMEM;
  p->v[p->n] = p->owned[p->n];
  p->n++;
  return 0;
}

/* labels as a text[] literal: {"a","b"} with " and \ escaped. */
static int add_labels(params *p, json_t *op) {
  json_t *arr = json_object_get(op, "labels");
  if (!json_is_array(arr)) return SL_EINVAL;
  size_t cap = 3, i;
  json_t *l;
  json_array_foreach(arr, i, l) {
    if (!json_is_string(l)) return SL_EINVAL;
    cap += 2 * json_string_length(l) + 3;
  }
  char *s = malloc(cap), *w = s;
  if (!s) return -ENOMEM;
  *w++ = '{';
  json_array_foreach(arr, i, l) {
    if (i) *w++ = ',';
    *w++ = '"';
    for (const char *c = json_string_value(l); *c; c++) {
      if (*c == '"' || *c == '\\') *w++ = '\\';
      *w++ = *c;
    }
    *w++ = '"';
  }
  *w++ = '}';
  *w = 0;
  p->owned[p->n] = s;
  p->v[p->n++] = s;
  return 0;
}

/* The statement and parameters of one op. */
static int translate(json_t *op, params *p, int *stmt) {
  const char *name = json_string_value(json_object_get(op, "op"));
  if (!name) return SL_EINVAL;
  bool node = strstr(name, "node") != NULL;
  if (!strcmp(name, "create_node")) {
    *stmt = S_CREATE_NODE;
    int rc = add_id(p, op, "id");
    if (rc == 0) rc = add_labels(p, op);
    return rc ? rc : add_json(p, json_object_get(op, "props"));
  }
  if (!strcmp(name, "delete_node")) {
    *stmt = json_is_true(json_object_get(op, "detach")) ? S_DETACH_DELETE_NODE : S_DELETE_NODE;
    return add_id(p, op, "id");
  }
  if (!strcmp(name, "add_label") || !strcmp(name, "remove_label")) {
    *stmt = name[0] == 'a' ? S_ADD_LABEL : S_REMOVE_LABEL;
    int rc = add_id(p, op, "id");
    return rc ? rc : add_str(p, op, "label");
  }
  if (!strcmp(name, "set_node_prop") || !strcmp(name, "set_rel_prop")) {
    json_t *v = json_object_get(op, "value");
    if (!v) return SL_EINVAL;
    int rc = add_id(p, op, "id");
    if (rc == 0) rc = add_str(p, op, "key");
    if (json_is_null(v)) {
      *stmt = node ? S_REMOVE_NODE_PROP : S_REMOVE_REL_PROP;
      return rc;
    }
    *stmt = node ? S_SET_NODE_PROP : S_SET_REL_PROP;
    return rc ? rc : add_json(p, v);
  }
  if (!strcmp(name, "remove_node_prop") || !strcmp(name, "remove_rel_prop")) {
    *stmt = node ? S_REMOVE_NODE_PROP : S_REMOVE_REL_PROP;
    int rc = add_id(p, op, "id");
    return rc ? rc : add_str(p, op, "key");
  }
  if (!strcmp(name, "create_rel")) {
    *stmt = S_CREATE_REL;
    int rc = add_id(p, op, "id");
    if (rc == 0) rc = add_str(p, op, "type");
    if (rc == 0) rc = add_id(p, op, "start");
    if (rc == 0) rc = add_id(p, op, "end");
    return rc ? rc : add_json(p, json_object_get(op, "props"));
  }
  if (!strcmp(name, "delete_rel")) {
    *stmt = S_DELETE_REL;
    return add_id(p, op, "id");
  }
  return SL_EINVAL;
}

static int send_plain(PGconn *c, const char *sql) {
  return PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) ? 0 : SL_EINVAL;
}

/* Read the results of nq pipelined queries and the sync. Queries 1..nq-2
 * (the ops) must each touch one row. */
static int read_results(PGconn *c, int nq, char *why, size_t whylen) {
  int rc = 0;
  for (int i = 0; i < nq; i++) {
    PGresult *r = PQgetResult(c);
    if (!r) {
      snprintf(why, whylen, "result %d of %d missing: %s", i, nq, PQerrorMessage(c));
      return SL_EINVAL;
    }
    ExecStatusType st = PQresultStatus(r);
    if (rc == 0 && st != PGRES_COMMAND_OK) {
      snprintf(why, whylen, "statement %d: %s", i, st == PGRES_PIPELINE_ABORTED ? "aborted" : PQresultErrorMessage(r));
      rc = SL_EINVAL;
    } else if (rc == 0 && i > 0 && i < nq - 1 && strcmp(PQcmdTuples(r), "1") != 0) {
      snprintf(why, whylen, "op %d touched %s rows, not 1", i - 1, PQcmdTuples(r));
      rc = SL_ENOTFOUND;
    }
    PQclear(r);
    if ((r = PQgetResult(c))) { /* each query's results end with NULL */
      PQclear(r);
      snprintf(why, whylen, "unexpected extra result");
      return SL_EINVAL;
    }
  }
  PGresult *r = PQgetResult(c);
  if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && rc == 0) {
    snprintf(why, whylen, "no pipeline sync: %s", PQerrorMessage(c));
    rc = SL_EINVAL;
  }
  PQclear(r);
  return rc;
}

static int pg_apply(peer_client *cl, const char *line, size_t len, size_t *nops, char *why, size_t whylen) {
  PGconn *c = cl->c;
  json_error_t jerr;
  json_t *root = json_loadb(line, len, 0, &jerr);
  json_t *ops = json_object_get(root, "ops");
  int rc = 0;
  if (!json_is_array(ops) || json_array_size(ops) > MAX_OPS) {
    snprintf(why, whylen, "not a mutation line: %s", root ? "no ops" : jerr.text);
    json_decref(root);
    return SL_EINVAL;
  }
  if (!PQenterPipelineMode(c)) {
    snprintf(why, whylen, "pipeline mode: %s", PQerrorMessage(c));
    json_decref(root);
    return SL_EINVAL;
  }
  int sent = 0;
  if ((rc = send_plain(c, "BEGIN"))) goto send_failed;
  sent++;
  size_t i;
  json_t *op;
  json_array_foreach(ops, i, op) {
    params p = {0};
    int stmt;
    if ((rc = translate(op, &p, &stmt))) {
      params_clear(&p);
      snprintf(why, whylen, "op %zu: cannot translate", i);
      break;
    }
    int ok = PQsendQueryPrepared(c, stmts[stmt].name, p.n, p.v, NULL, NULL, 0);
    params_clear(&p);
    if (!ok) {
      rc = SL_EINVAL;
      goto send_failed;
    }
    sent++;
  }
  /* A line that did not translate is rolled back, as shiplog aborts it. */
  if (send_plain(c, rc ? "ROLLBACK" : "COMMIT") || !PQpipelineSync(c)) goto send_failed;
  sent++;
  char rwhy[512];
  int rrc = read_results(c, sent, rwhy, sizeof rwhy);
  if (rc == 0 && rrc) {
    rc = rrc;
    snprintf(why, whylen, "%s", rwhy);
  }
  PQexitPipelineMode(c);
  *nops = json_array_size(ops);
  json_decref(root);
  return rc;
send_failed:
  snprintf(why, whylen, "sending: %s", PQerrorMessage(c));
  json_decref(root);
  return SL_EINVAL; /* the connection is unusable: the driver stops this client */
}

static int exec_marker(PGconn *c, uint64_t id) {
  char num[24];
  snprintf(num, sizeof num, "%" PRIu64, id);
  const char *v[] = {num};
  PGresult *r = PQexecPrepared(c, stmts[S_MARKER].name, 1, v, NULL, NULL, 0);
  int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : SL_EINVAL;
  if (rc) sl_diag_error("marker %" PRIu64 ": %s", id, PQresultErrorMessage(r));
  PQclear(r);
  return rc;
}

static int pg_marker_commit(peer_client *c, uint64_t id) { return exec_marker(c->c, id); }

static int pg_marker_seen(peer_client *c, uint64_t id) {
  if (!c->sb) {
    if (!(c->sb = connect_db(c->s->o->standby))) return SL_EINVAL;
    PGresult *r = PQprepare(c->sb, "seen", "SELECT 1 FROM markers WHERE id = $1::bigint", 1, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) sl_diag_error("standby: %s", PQresultErrorMessage(r));
    PQclear(r);
    if (!ok) return SL_EINVAL;
  }
  char num[24];
  snprintf(num, sizeof num, "%" PRIu64, id);
  const char *v[] = {num};
  PGresult *r = PQexecPrepared(c->sb, "seen", 1, v, NULL, NULL, 0);
  int rc = PQresultStatus(r) != PGRES_TUPLES_OK ? SL_EINVAL : PQntuples(r) > 0;
  if (rc < 0) sl_diag_error("standby: %s", PQresultErrorMessage(r));
  PQclear(r);
  return rc;
}

static int pg_count_nodes(peer_client *c, uint64_t *out) {
  char buf[32];
  int rc = query_one(c->c, "SELECT count(*) FROM nodes", buf, sizeof buf);
  if (rc == 0) *out = strtoull(buf, NULL, 10);
  return rc;
}

/* A marker committed now is visible on the standby only after everything
 * committed before it: wait for it. */
static int pg_settle(peer_side *s, double limit_s, peer_totals *t) {
  char buf[64];
  int rc = pg_count_nodes(s->settler, &t->nodes);
  if (rc) return rc;
  uint64_t start = sl_mono_ns(), until = start + (uint64_t)(limit_s * 1e9);
  if ((rc = exec_marker(s->settler->c, SETTLE_MARKER))) return rc;
  while ((rc = pg_marker_seen(s->settler, SETTLE_MARKER)) == 0) {
    if (sl_mono_ns() > until) {
      sl_diag_error("the standby did not catch up within %.0f s", limit_s);
      return -ETIMEDOUT;
    }
    nanosleep(&(struct timespec){0, 200000}, NULL);
  }
  if (rc < 0) return rc;
  t->catchup_s = (double)(sl_mono_ns() - start) / 1e9;
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '%s')", s->lsn0);
  if ((rc = query_one(s->admin, sql, buf, sizeof buf))) return rc;
  t->log_bytes = strtoull(buf, NULL, 10);
  /* Backends report their WAL statistics when they exit: the clients have
   * disconnected by now (bench/peer.c), give their exits a moment. */
  nanosleep(&(struct timespec){0, 50000000}, NULL);
  if ((rc = query_one(s->admin, "SELECT wal_sync FROM pg_stat_wal", buf, sizeof buf))) return rc;
  t->syncs = strtoull(buf, NULL, 10) - s->syncs0;
  uint64_t wire = walsender_bytes(s);
  t->wire_bytes = wire > s->wire0 ? wire - s->wire0 : 0;
  return 0;
}

const peer_ops peer_pg_ops = {
    .name = "pg",
    .open = pg_side_open,
    .client_open = pg_client_open,
    .apply = pg_apply,
    .marker_commit = pg_marker_commit,
    .marker_seen = pg_marker_seen,
    .count_nodes = pg_count_nodes,
    .client_close = pg_client_close,
    .settle = pg_settle,
    .close = pg_side_close,
};
