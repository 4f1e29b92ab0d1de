/*
 * The echo backend (bolt.h lists its queries): a stand-in for the query
 * engine, so that the protocol, the server and the drivers can be tested
 * end to end before query/ exists. It keeps results the way an engine
 * would (several open in a transaction, pulled in batches), copies what it
 * needs out of the request (the session's memory is reused), and fails as
 * an engine would (a failure ends the transaction).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bolt.h"

#define ECHO_RESULTS 64

enum echo_kind { ECHO_RETURN, ECHO_ROWS, ECHO_GRAPH, ECHO_SLEEP };

typedef struct echo_result {
  bool open;
  int64_t qid;
  enum echo_kind kind;
  int64_t next, total; /* rows sent, rows in all */
  sl_buf params;       /* RETURN: the parameter map, encoded */
} echo_result;

typedef struct echo_conn {
  bool in_tx;
  int64_t next_qid;
  uint64_t commits;
  atomic_bool interrupted;
  sl_bolt_dialect dialect;
  echo_result results[ECHO_RESULTS];
} echo_conn;

static int echo_open(void *ctx, const sl_bolt_peer *peer, void **conn, sl_bolt_error *err) {
  (void)ctx;
  (void)err;
  echo_conn *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->dialect = peer->dialect;
  *conn = c;
  return 0;
}

static void end_results(echo_conn *c) {
  for (int i = 0; i < ECHO_RESULTS; i++) {
    sl_buf_free(&c->results[i].params);
    c->results[i].open = false;
  }
}

static void echo_close(void *conn) {
  echo_conn *c = conn;
  end_results(c);
  free(c);
}

static int echo_begin(void *conn, const sl_bolt_tx_params *p, sl_bolt_error *err) {
  (void)p;
  (void)err;
  echo_conn *c = conn;
  c->in_tx = true;
  c->next_qid = 0;
  return 0;
}

static bool prefix(const char *q, const char *word, const char **rest) {
  size_t n = strlen(word);
  if (strncmp(q, word, n) || (q[n] && q[n] != ' ')) return false;
  *rest = q[n] ? q + n + 1 : q + n;
  return true;
}

/* A failure ends the transaction, as an engine's does. */
static int fail(echo_conn *c, sl_bolt_error *err, const char *code, const char *msg) {
  sl_bolt_error_set(err, code, "%s", msg);
  c->in_tx = false;
  end_results(c);
  return 1;
}

static int echo_run(void *conn, const char *query, const sl_pack *params, const sl_bolt_tx_params *autocommit,
                    sl_arena *a, sl_bolt_run_result *res, int64_t *qid, sl_bolt_error *err) {
  echo_conn *c = conn;
  const char *rest;
  echo_result *r = NULL;
  atomic_store(&c->interrupted, false); /* an interrupt ends what ran before */
  if (autocommit) end_results(c);
  for (int i = 0; i < ECHO_RESULTS && !r; i++)
    if (!c->results[i].open) r = &c->results[i];
  if (!r) return fail(c, err, "Neo.ClientError.Request.Invalid", "too many open results");
  memset(r, 0, sizeof *r);
  static const char *const one_field_i[] = {"i"};
  static const char *const graph_fields[] = {"node", "rel", "path"};
  static const char *const x_field[] = {"x"};
  if (prefix(query, "ERROR", &rest)) {
    char code[96];
    int n = 0;
    if (sscanf(rest, "%95s %n", code, &n) < 1) return fail(c, err, "Neo.ClientError.Statement.SyntaxError", "ERROR CODE MESSAGE");
    return fail(c, err, code, rest + n);
  } else if (prefix(query, "ROWS", &rest)) {
    char *end;
    long long n = strtoll(rest, &end, 10);
    if (end == rest || *end || n < 0) return fail(c, err, "Neo.ClientError.Statement.SyntaxError", "ROWS N");
    r->kind = ECHO_ROWS;
    r->total = n;
    res->fields = one_field_i;
    res->n_fields = 1;
  } else if (prefix(query, "GRAPH", &rest)) {
    r->kind = ECHO_GRAPH;
    r->total = 1;
    res->fields = graph_fields;
    res->n_fields = 3;
  } else if (prefix(query, "SLEEP", &rest)) {
    r->kind = ECHO_SLEEP;
    r->total = strtoll(rest, NULL, 10);
    res->fields = x_field;
    res->n_fields = 1;
  } else {
    r->kind = ECHO_RETURN;
    r->total = 1;
    int rc = sl_pack_encode(&r->params, params);
    if (rc) return rc;
    if (params->len) {
      const char **names = sl_arena_alloc(a, params->len * sizeof *names);
      if (!names) return -ENOMEM;
      for (uint32_t i = 0; i < params->len; i++) names[i] = params->u.items[2 * i].u.s;
      res->fields = names;
      res->n_fields = params->len;
    } else {
      res->fields = x_field;
      res->n_fields = 1;
    }
  }
  r->open = true;
  r->qid = c->in_tx ? c->next_qid++ : 0;
  *qid = r->qid;
  return 0;
}

static echo_result *find(echo_conn *c, int64_t qid) {
  for (int i = 0; i < ECHO_RESULTS; i++)
    if (c->results[i].open && c->results[i].qid == qid) return &c->results[i];
  return NULL;
}

static int graph_record(sl_bolt_sink *sink) {
  sl_arena *a = sink->a;
  sl_pack v[3], props_a, props_b, props_r, nodes[2];
  static const char *const person[] = {"Person"};
  if (!sl_pack_new_map(a, &props_a, 1) || !sl_pack_new_map(a, &props_b, 1) || !sl_pack_new_map(a, &props_r, 1))
    return -ENOMEM;
  sl_pack_map_set(a, &props_a, 0, "name", sl_pack_str("Alice"));
  sl_pack_map_set(a, &props_b, 0, "name", sl_pack_str("Bob"));
  sl_pack_map_set(a, &props_r, 0, "since", sl_pack_int(2020));
  int rc = sl_bolt_node(a, sink->dialect, 1, "4:echo:1", person, 1, &props_a, &nodes[0]);
  if (!rc) rc = sl_bolt_node(a, sink->dialect, 2, "4:echo:2", person, 1, &props_b, &nodes[1]);
  if (!rc) rc = sl_bolt_rel(a, sink->dialect, 10, "5:echo:10", 1, "4:echo:1", 2, "4:echo:2", "KNOWS", &props_r, &v[1]);
  if (!rc) rc = sl_bolt_path(a, nodes, 2, &v[1], 1, (const int64_t[]){1, 1}, 2, &v[2]);
  if (rc) return rc;
  v[0] = nodes[0];
  return sink->record(sink, v, 3);
}

static int row(echo_conn *c, echo_result *r, sl_bolt_sink *sink, sl_bolt_error *err) {
  switch (r->kind) {
  case ECHO_ROWS: return sink->record(sink, (sl_pack[]){sl_pack_int(r->next + 1)}, 1);
  case ECHO_GRAPH: return graph_record(sink);
  case ECHO_SLEEP:
    for (int64_t waited = 0; waited < r->total; waited += 10) {
      if (atomic_load(&c->interrupted)) {
        atomic_store(&c->interrupted, false);
        return fail(c, err, "Neo.TransientError.Transaction.Terminated", "The transaction has been terminated.");
      }
      nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    return sink->record(sink, (sl_pack[]){sl_pack_int(r->total)}, 1);
  case ECHO_RETURN: {
    sl_pack map;
    int rc = sl_pack_decode(r->params.data, r->params.len, NULL, sink->a, &map, NULL);
    if (rc) return rc;
    if (!map.len) return sink->record(sink, (sl_pack[]){sl_pack_int(1)}, 1);
    sl_pack *values = sl_arena_alloc(sink->a, map.len * sizeof *values);
    if (!values) return -ENOMEM;
    for (uint32_t i = 0; i < map.len; i++) {
      /* property values make the trip through sl_value, as they will
       * through the store; the rest (maps, mixed lists) come back as sent */
      const sl_pack *p = &map.u.items[2 * i + 1];
      sl_value v;
      char why[128];
      values[i] = *p;
      if (!sl_bolt_to_value(sink->a, p, sink->dialect, NULL, &v, why, sizeof why) &&
          (rc = sl_bolt_from_value(sink->a, &v, sink->dialect, &values[i])))
        return rc;
    }
    return sink->record(sink, values, map.len);
  }
  }
  return SL_EINVAL;
}

static void finish(echo_conn *c, echo_result *r, sl_bolt_summary *sum) {
  sl_buf_free(&r->params);
  r->open = false;
  sum->type = "r";
  sum->db = "neo4j";
  (void)c;
}

static int echo_pull(void *conn, int64_t qid, int64_t n, sl_bolt_sink *sink, bool *has_more, sl_bolt_summary *sum,
                     sl_bolt_error *err) {
  echo_conn *c = conn;
  echo_result *r = find(c, qid);
  if (!r) return fail(c, err, "Neo.ClientError.Request.Invalid", "no such result");
  for (int64_t k = 0; r->next < r->total && (n < 0 || k < n); k++) {
    int rc = row(c, r, sink, err);
    if (rc) return rc;
    r->next++;
  }
  *has_more = r->next < r->total;
  if (!*has_more) finish(c, r, sum);
  return 0;
}

static int echo_discard(void *conn, int64_t qid, int64_t n, bool *has_more, sl_bolt_summary *sum, sl_bolt_error *err) {
  echo_conn *c = conn;
  echo_result *r = find(c, qid);
  if (!r) return fail(c, err, "Neo.ClientError.Request.Invalid", "no such result");
  r->next = n < 0 || r->total - r->next <= n ? r->total : r->next + n;
  *has_more = r->next < r->total;
  if (!*has_more) finish(c, r, sum);
  return 0;
}

static int echo_commit(void *conn, char bookmark[128], sl_bolt_error *err) {
  (void)err;
  echo_conn *c = conn;
  c->in_tx = false;
  end_results(c);
  snprintf(bookmark, 128, "echo:%llu", (unsigned long long)++c->commits);
  return 0;
}

static int echo_rollback(void *conn, sl_bolt_error *err) {
  (void)err;
  echo_conn *c = conn;
  c->in_tx = false;
  end_results(c);
  return 0;
}

static void echo_interrupt(void *conn) {
  echo_conn *c = conn;
  atomic_store(&c->interrupted, true);
}

const sl_bolt_backend sl_bolt_echo_backend = {
    .open = echo_open, .close = echo_close, .begin = echo_begin, .run = echo_run, .pull = echo_pull,
    .discard = echo_discard, .commit = echo_commit, .rollback = echo_rollback, .interrupt = echo_interrupt};
