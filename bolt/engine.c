/*
 * The query engine as Bolt's backend (bolt.h, "the query engine as the
 * backend"): one engine_conn per connection holds at most one query
 * transaction (sl_qtx) and the results open in it.
 *
 * A transaction begins on a read snapshot and becomes a write transaction
 * at its first writing statement: query/ refuses a write on a snapshot
 * (AccessMode) before anything runs, so the snapshot is rolled back and the
 * statement runs again on a write transaction. Reads therefore never queue
 * behind the store's single writer, and a driver's default session mode
 * (WRITE) costs nothing to the reads it runs.
 *
 * query/ runs one statement of a transaction at a time (a cursor is closed
 * before the next run); Bolt lets a client keep several results open. So a
 * RUN first reads what is left of the open cursor into its result's buffer
 * (rows as PackStream lists), and a later PULL of that result replays them.
 *
 * Values: sl_qvalue -> sl_pack with bolt's builders (packstream.c), in the
 * connection's dialect; parameters come back as sl_qvalue, maps and lists
 * of any kinds included.
 *
 * Each connection keeps the statements it ran parsed (an sl_qcache, freed
 * with it), so a text sent again, or run again on a write transaction
 * after AccessMode, is not lexed and parsed again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bolt.h"
#include "shiplog.h"

#define MAX_RESULTS 64
#define ACCESS_MODE "Neo.ClientError.Statement.AccessMode"
#define MAX_FOUND_READERS 64 /* more_readers' per ROUTE */
/* Parsed statements kept per connection (drivers send the same texts again
 * and again): at most 256 KiB each, 64 MiB for the default 256 connections. */
#define PARSED_ENTRIES 64
#define PARSED_BYTES (256u << 10)

struct sl_bolt_engine {
  sl_bolt_engine_config cfg;
  char *database, *self, *writer, **readers;
  sl_history history;       /* cfg.history's copy */
  sl_bolt_backend backend;
  sl_bolt_engine_stats stats; /* atomics by __atomic builtins */
};

typedef struct result {
  bool open;
  int64_t qid;
  sl_qcursor *cur;   /* live, or NULL once its rows are buffered */
  sl_buf rows;       /* buffered rows: one PackStream LIST each */
  size_t rows_off;
  uint32_t ncols;
  const char *type; /* sl_qcursor_type */
  char *plan;       /* sl_qcursor_plan, copied (EXPLAIN, PROFILE); NULL: none */
  bool profiled;
  sl_qstats stats;
} result;

typedef struct engine_conn {
  sl_bolt_engine *e;
  bool reaped;       /* tick ended the transaction (timeout) */
  uint64_t run_ns;   /* when the running statement's RUN came; 0: none */
  sl_bolt_peer peer;
  char user[65];
  sl_bolt_db db;     /* the transaction's database */
  char store_hex[2 * SL_STORE_ID_SIZE + 1];
  sl_qtx *qtx;
  bool write;        /* qtx is a write transaction */
  bool wrote;        /* a write transaction began here: look statements up
                        in `parsed` to begin writes as such (eng_run) */
  bool explicit_tx;  /* BEGIN ... COMMIT */
  bool mode_read;    /* mode "r" */
  uint64_t deadline_ns; /* the transaction's timeout; 0: none */
  int64_t next_qid;
  result results[MAX_RESULTS];
  sl_arena scratch;  /* buffered rows' conversion, DISCARD's summary */
  sl_qcache *parsed; /* the connection's statements, parsed */
} engine_conn;

static void count(uint64_t *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }

/* A statement ended (code NULL) or a request failed (on_statement). */
static void observe(engine_conn *c, const char *code) {
  sl_bolt_engine *e = c->e;
  if (e->cfg.on_statement)
    e->cfg.on_statement(e->cfg.on_statement_arg, c->run_ns ? (double)(sl_mono_ns() - c->run_ns) / 1e9 : -1, code);
  c->run_ns = 0;
}

/* ---- values out ------------------------------------------------------------------------ */
static int to_pack(sl_arena *a, sl_bolt_dialect d, const sl_qvalue *v, sl_pack *out);

static int props_pack(sl_arena *a, sl_bolt_dialect d, const sl_prop *props, size_t n, sl_pack *out) {
  if (!sl_pack_new_map(a, out, (uint32_t)n)) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    sl_pack v;
    int rc = sl_bolt_from_value(a, &props[i].value, d, &v);
    if (!rc) rc = sl_pack_map_set(a, out, (uint32_t)i, props[i].key, v);
    if (rc) return rc;
  }
  return 0;
}

static int node_pack(sl_arena *a, sl_bolt_dialect d, const sl_qnode *n, sl_pack *out) {
  sl_pack props;
  int rc = props_pack(a, d, n->props, n->nprops, &props);
  if (rc) return rc;
  return sl_bolt_node(a, d, (int64_t)n->id, n->element_id, n->labels, (uint32_t)n->nlabels, &props, out);
}

static int rel_pack(sl_arena *a, sl_bolt_dialect d, const sl_qrel *r, sl_pack *out) {
  sl_pack props;
  int rc = props_pack(a, d, r->props, r->nprops, &props);
  if (rc) return rc;
  return sl_bolt_rel(a, d, (int64_t)r->id, r->element_id, (int64_t)r->start, r->start_element_id, (int64_t)r->end,
                     r->end_element_id, r->type, &props, out);
}

static int path_pack(sl_arena *a, sl_bolt_dialect d, const sl_qpath *p, sl_pack *out) {
  sl_pack *nodes = sl_arena_alloc(a, (p->nnodes ? p->nnodes : 1) * sizeof *nodes);
  sl_pack *rels = sl_arena_alloc(a, (p->nrels ? p->nrels : 1) * sizeof *rels);
  int64_t *idx = sl_arena_alloc(a, (2 * p->nrels + 1) * sizeof *idx);
  if (!nodes || !rels || !idx) return -ENOMEM;
  for (size_t i = 0; i < p->nnodes; i++) {
    int rc = node_pack(a, d, &p->nodes[i], &nodes[i]);
    if (rc) return rc;
  }
  /* Bolt: (rel index, 1-based, negative against its direction; node index) per step */
  for (size_t i = 0; i < p->nrels; i++) {
    int rc = rel_pack(a, d, &p->rels[i], &rels[i]);
    if (rc) return rc;
    bool forward = p->rels[i].start == p->nodes[i].id && p->rels[i].end == p->nodes[i + 1].id;
    idx[2 * i] = forward ? (int64_t)i + 1 : -((int64_t)i + 1);
    idx[2 * i + 1] = (int64_t)i + 1;
  }
  return sl_bolt_path(a, nodes, (uint32_t)p->nnodes, rels, (uint32_t)p->nrels, idx, (uint32_t)(2 * p->nrels), out);
}

static int to_pack(sl_arena *a, sl_bolt_dialect d, const sl_qvalue *v, sl_pack *out) {
  switch (v->kind) {
  case SL_NULL: *out = sl_pack_null(); return 0;
  case SL_QLIST:
    if (!sl_pack_new_list(a, out, (uint32_t)v->u.list.n)) return -ENOMEM;
    for (size_t i = 0; i < v->u.list.n; i++) {
      int rc = to_pack(a, d, &v->u.list.items[i], &out->u.items[i]);
      if (rc) return rc;
    }
    return 0;
  case SL_QMAP:
    if (!sl_pack_new_map(a, out, (uint32_t)v->u.map.n)) return -ENOMEM;
    for (size_t i = 0; i < v->u.map.n; i++) {
      sl_pack item;
      int rc = to_pack(a, d, &v->u.map.entries[i].value, &item);
      if (!rc) rc = sl_pack_map_set(a, out, (uint32_t)i, v->u.map.entries[i].key, item);
      if (rc) return rc;
    }
    return 0;
  case SL_QNODE: return node_pack(a, d, &v->u.node, out);
  case SL_QREL: return rel_pack(a, d, &v->u.rel, out);
  case SL_QPATH: return path_pack(a, d, &v->u.path, out);
  default: return sl_bolt_from_value(a, &v->u.v, d, out);
  }
}

/* ---- parameters in ---------------------------------------------------------------------- */
static int from_pack(sl_arena *a, sl_bolt_dialect d, const sl_pack *p, sl_qvalue *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  switch (p->kind) {
  case SL_PACK_NULL: out->kind = SL_NULL; return 0;
  case SL_PACK_LIST: {
    sl_qvalue *items = sl_arena_alloc(a, (p->len ? p->len : 1) * sizeof *items);
    if (!items) return -ENOMEM;
    for (uint32_t i = 0; i < p->len; i++) {
      int rc = from_pack(a, d, &p->u.items[i], &items[i], why, whylen);
      if (rc) return rc;
    }
    out->kind = SL_QLIST;
    out->u.list.n = p->len;
    out->u.list.items = items;
    return 0;
  }
  case SL_PACK_MAP: {
    sl_qentry *es = sl_arena_alloc(a, (p->len ? p->len : 1) * sizeof *es);
    if (!es) return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->len; i++) {
      const sl_pack *k = &p->u.items[2 * i];
      /* a key given twice: the last wins, as in PackStream */
      uint32_t j = 0;
      while (j < n && strcmp(es[j].key, k->u.s)) j++;
      if (j == n) n++;
      es[j].key = k->u.s;
      int rc = from_pack(a, d, &p->u.items[2 * i + 1], &es[j].value, why, whylen);
      if (rc) return rc;
    }
    out->kind = SL_QMAP;
    out->u.map.n = n;
    out->u.map.entries = es;
    return 0;
  }
  default: {
    int rc = sl_bolt_to_value(a, p, d, NULL, &out->u.v, why, whylen);
    if (rc) return rc;
    out->kind = out->u.v.kind;
    return 0;
  }
  }
}

/* ---- transactions ------------------------------------------------------------------------ */
static void close_result(result *r) {
  if (r->cur) sl_qcursor_close(r->cur, NULL);
  r->cur = NULL;
  free(r->plan);
  r->plan = NULL;
  sl_buf_free(&r->rows);
  r->open = false;
}

static void end_results(engine_conn *c) {
  for (int i = 0; i < MAX_RESULTS; i++) close_result(&c->results[i]);
}

static void end_tx(engine_conn *c) {
  end_results(c);
  if (c->qtx) {
    sl_qtx_rollback(c->qtx);
    count(&c->e->stats.rollbacks);
  }
  c->qtx = NULL;
  c->explicit_tx = c->write = false;
  c->deadline_ns = 0;
}

/* A failure ends the transaction (Neo4j's rule). */
static int fail(engine_conn *c, sl_bolt_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(engine_conn *c, sl_bolt_error *err, const char *code, const char *fmt, ...) {
  snprintf(err->code, sizeof err->code, "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  end_tx(c);
  count(&c->e->stats.failures);
  observe(c, err->code);
  return 1;
}

/* A query error as the client should see it: a refused write says why. */
static int query_failed(engine_conn *c, int rc, const sl_query_error *qe, sl_bolt_error *err) {
  sl_bolt_engine *e = c->e;
  if (rc == -ENOMEM && !qe->code[0]) return rc;
  if (!strcmp(qe->code, ACCESS_MODE) && !c->mode_read) {
    if (e->cfg.read_only)
      return fail(c, err, "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
                  "Writing to a database in read-only mode is not allowed: '%s' is a hot standby; write to its "
                  "primary.",
                  c->db.name);
    if (c->peer.role < SL_BOLT_ROLE_EDITOR)
      return fail(c, err, "Neo.ClientError.Security.Forbidden",
                  "Write operations are not allowed for user '%s' with roles [%s].", c->user,
                  sl_bolt_role_name(c->peer.role));
  }
  if (qe->line)
    return fail(c, err, qe->code[0] ? qe->code : "Neo.DatabaseError.General.UnknownError", "%s (line %u, column %u)",
                qe->message, qe->line, qe->column);
  return fail(c, err, qe->code[0] ? qe->code : "Neo.DatabaseError.General.UnknownError", "%s",
              qe->message[0] ? qe->message : sl_strerror(rc));
}

static bool may_write(const engine_conn *c) {
  return !c->e->cfg.read_only && !c->mode_read && c->peer.role >= SL_BOLT_ROLE_EDITOR;
}

static int begin_qtx(engine_conn *c, bool write, uint64_t timeout_ms) {
  sl_bolt_engine *e = c->e;
  char reason[160];
  sl_query_options o = {.timeout_ms = timeout_ms, .memory_bytes = e->cfg.query_memory, .cache = c->parsed};
  if (!write && c->peer.role < SL_BOLT_ROLE_EDITOR) {
    snprintf(reason, sizeof reason, "user '%s' has role %s", c->user, sl_bolt_role_name(c->peer.role));
    o.read_only_reason = reason;
  }
  c->write = write;
  c->wrote |= write;
  return sl_qtx_begin(c->db.store, write, &o, &c->qtx);
}

static uint64_t statement_timeout(const engine_conn *c) {
  uint64_t t = c->e->cfg.query_timeout_ms;
  if (c->deadline_ns) {
    uint64_t now = sl_mono_ns();
    uint64_t left = c->deadline_ns > now ? (c->deadline_ns - now) / 1000000 + 1 : 1;
    if (!t || left < t) t = left;
  }
  return t;
}

/* A decimal number of at most 20 digits that fits in 64 bits, then `end`. */
static bool parse_u64_until(const char **p, char end, uint64_t *out) {
  const char *s = *p;
  uint64_t v = 0;
  size_t n = 0;
  for (; *s >= '0' && *s <= '9'; s++, n++) {
    if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (!n || *s != end) return false;
  *out = v;
  *p = s + (end ? 1 : 0);
  return true;
}

/* Parse one of our bookmarks, "shiplog:HEX32:EPOCH:TXID" (bolt.h,
 * BOOKMARKS): 1 when it is one, 0 when it is not. By hand: every
 * transaction that carries bookmarks parses them, and sscanf cost more
 * than the rest of the bookkeeping. */
static int parse_bookmark(const char *b, char hex[2 * SL_STORE_ID_SIZE + 1], uint64_t *epoch, uint64_t *txid) {
  static const char prefix[] = "shiplog:";
  if (strncmp(b, prefix, sizeof prefix - 1)) return 0;
  b += sizeof prefix - 1;
  for (int i = 0; i < 2 * SL_STORE_ID_SIZE; i++, b++) {
    if (!((*b >= '0' && *b <= '9') || (*b >= 'a' && *b <= 'f'))) return 0;
    hex[i] = *b;
  }
  hex[2 * SL_STORE_ID_SIZE] = 0;
  return *b++ == ':' && parse_u64_until(&b, ':', epoch) && parse_u64_until(&b, 0, txid);
}

static int applied_txid(sl_store *st, uint64_t *txid) {
  sl_view *v;
  sl_counts counts;
  int rc = sl_view_begin(st, &v);
  if (rc) return rc;
  rc = sl_view_counts(v, &counts);
  sl_view_end(v);
  *txid = counts.applied_txid;
  return rc;
}

/* The database's epochs for a message: "0 from txid 1, 1 from txid 101". */
static void describe_epochs(const sl_bolt_db *db, char *buf, size_t len) {
  const sl_history *h = &db->history;
  size_t from = h->n > 4 ? h->n - 4 : 0, off = 0;
  if (!from && (!h->n || h->e[0].epoch > 0)) off += (size_t)snprintf(buf, len, "0 from txid 1");
  else off += (size_t)snprintf(buf, len, "%s", from ? "..." : "");
  for (size_t i = from; i < h->n && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, "%s%" PRIu64 " from txid %" PRIu64, off ? ", " : "", h->e[i].epoch,
                            h->e[i].first_txid);
  if (sl_history_epoch(h) < db->epoch && off < len)
    snprintf(buf + off, len - off, ", then %" PRIu64 " (where it began is not recorded)", db->epoch);
}

/* Judge bookmark b against the database's lineage (bolt.h, BOOKMARKS):
 * 0 with *want raised to its txid when it is to be waited for (*newer
 * raised to its epoch when the database does not know that epoch yet),
 * or 1 with err set when it is refused. */
static int judge_bookmark(engine_conn *c, const char *b, uint64_t *want, uint64_t *newer, sl_bolt_error *err) {
  const char *invalid = "Neo.ClientError.Transaction.InvalidBookmark";
  char hex[2 * SL_STORE_ID_SIZE + 1], epochs[200];
  uint64_t epoch, txid;
  if (!parse_bookmark(b, hex, &epoch, &txid))
    return fail(c, err, invalid, "Supplied bookmark '%.200s' is not a shiplog bookmark.", b);
  if (strcmp(hex, c->store_hex))
    return fail(c, err, invalid, "Supplied bookmark '%.200s' is of another store (database '%s' is store %s).", b,
                c->db.name, c->store_hex);
  sl_epoch_span span;
  switch (sl_history_place(&c->db.history, c->db.epoch, epoch, txid, &span)) {
  case SL_WRITE_HELD: break;
  case SL_WRITE_NEWER:
    if (!c->e->cfg.read_only)
      return fail(c, err, invalid,
                  "Supplied bookmark '%.200s' is of epoch %" PRIu64 ", but database '%s' is at epoch %" PRIu64
                  ": its write was made on a primary promoted after this one (a failover), so this server is "
                  "no longer the primary. Connect to the current primary.",
                  b, epoch, c->db.name, c->db.epoch);
    if (epoch > *newer) *newer = epoch;
    break;
  case SL_WRITE_LOST:
    return fail(c, err, invalid,
                "Supplied bookmark '%.200s' names txid %" PRIu64 " of epoch %" PRIu64
                ", which database '%s' does not hold: epoch %" PRIu64 " ended at txid %" PRIu64 " and epoch %" PRIu64
                " began at txid %" PRIu64 " (a failover: `shiplog promote`). The transaction was never archived "
                "and was lost with the old primary; start a new session without this bookmark.",
                b, txid, epoch, c->db.name, epoch, span.last, span.next_epoch, span.last + 1);
  case SL_WRITE_UNKNOWN:
    describe_epochs(&c->db, epochs, sizeof epochs);
    return fail(c, err, invalid,
                "Supplied bookmark '%.200s' names txid %" PRIu64 " of epoch %" PRIu64
                ", which is not in the history of database '%s' (epochs %s): it is of another history of this "
                "store. Start a new session without this bookmark.",
                b, txid, epoch, c->db.name, epochs);
  }
  if (txid > *want) *want = txid;
  return 0;
}

/* The database's lineage now: a standby's grows with its archive (a
 * promotion upstream reaches it as a new epoch). */
static void refresh_lineage(engine_conn *c) {
  sl_bolt_engine *e = c->e;
  sl_bolt_db now = {0};
  if (!e->cfg.store && e->cfg.lookup(e->cfg.lookup_arg, c->db.name, &now) == 0 && now.store == c->db.store) {
    c->db.epoch = now.epoch;
    c->db.history = now.history;
  }
}

/* Wait until the store has applied every bookmark's txid, judging them
 * again against the lineage as it was when that txid was applied (the
 * history is read after the applied txid, so it covers it). */
static int await_bookmarks(engine_conn *c, const sl_pack *bookmarks, sl_bolt_error *err) {
  sl_bolt_engine *e = c->e;
  if (!bookmarks || !bookmarks->len) return 0;
  int timeout_ms = e->cfg.bookmark_timeout_ms > 0 ? e->cfg.bookmark_timeout_ms : 5000;
  uint64_t end = sl_mono_ns() + (uint64_t)timeout_ms * 1000000u, have = 0, want = 0, newer = 0;
  for (long nap_us = 200;; nap_us = nap_us < 5000 ? nap_us * 2 : 5000) {
    int rc = applied_txid(c->db.store, &have);
    if (rc) return rc;
    refresh_lineage(c);
    want = newer = 0;
    for (uint32_t i = 0; i < bookmarks->len; i++)
      if ((rc = judge_bookmark(c, bookmarks->u.items[i].u.s, &want, &newer, err))) return rc;
    if (!newer && have >= want) return 0;
    if (sl_mono_ns() >= end) break;
    nanosleep(&(struct timespec){0, nap_us * 1000}, NULL);
  }
  if (newer)
    return fail(c, err, "Neo.TransientError.Transaction.BookmarkTimeout",
                "Database '%s' has not heard of epoch %" PRIu64 " of the given bookmarks within %d ms (it is at "
                "epoch %" PRIu64 ", txid %" PRIu64 "): its primary was promoted and does not ship to it yet.",
                c->db.name, newer, timeout_ms, c->db.epoch, have);
  return fail(c, err, "Neo.TransientError.Transaction.BookmarkTimeout",
              "Database '%s' has not reached txid %" PRIu64 " of the given bookmarks within %d ms (it is at %" PRIu64
              ").",
              c->db.name, want, timeout_ms, have);
}

/* Which database a request means (db NULL: the default). */
static int resolve_db(engine_conn *c, const char *db, sl_bolt_error *err) {
  sl_bolt_engine *e = c->e;
  int rc;
  if (e->cfg.store) {
    if (db && strcmp(db, e->database)) rc = -ENOENT;
    else {
      c->db = (sl_bolt_db){.store = e->cfg.store, .epoch = e->cfg.epoch, .history = e->history};
      snprintf(c->db.name, sizeof c->db.name, "%s", e->database);
      rc = 0;
    }
  } else {
    memset(&c->db, 0, sizeof c->db);
    rc = e->cfg.lookup(e->cfg.lookup_arg, db, &c->db);
  }
  if (rc == -ENOENT)
    return fail(c, err, "Neo.ClientError.Database.DatabaseNotFound",
                db ? "Database does not exist. Database name: '%.100s'." : "%s%.100s",
                db ? db : "No database named and there is no default one: name a database", db ? "" : ".");
  if (rc == -EAGAIN)
    return fail(c, err, "Neo.TransientError.Database.DatabaseUnavailable",
                "Database '%.100s' is not available yet (its standby is being built).", db ? db : c->db.name);
  if (rc) return rc;
  const uint8_t *id = sl_store_id(c->db.store);
  sl_hex_encode(id, SL_STORE_ID_SIZE, c->store_hex); /* per transaction: 16 snprintf were 7% of a write's CPU */
  return 0;
}

static int start_tx(engine_conn *c, const sl_bolt_tx_params *p, bool explicit_tx, sl_bolt_error *err) {
  end_tx(c);
  int rc = resolve_db(c, p->db, err);
  if (!rc) rc = await_bookmarks(c, p->bookmarks, err);
  if (rc) return rc;
  c->explicit_tx = explicit_tx;
  c->mode_read = p->read_only;
  int64_t t = p->timeout_ms > 0 ? p->timeout_ms : c->e->cfg.tx_timeout_ms;
  if (t > 0) c->deadline_ns = sl_mono_ns() + (uint64_t)t * 1000000u;
  c->next_qid = 0;
  return 0;
}

static int timed_out(engine_conn *c, sl_bolt_error *err) {
  bool reaped = c->reaped;
  c->reaped = false;
  if (!reaped && (!c->deadline_ns || sl_mono_ns() < c->deadline_ns)) return 0;
  return fail(c, err, "Neo.ClientError.Transaction.TransactionTimedOut",
              "The transaction has not completed within the timeout specified at its start by the client or the "
              "server (--tx-timeout); it was rolled back.");
}

/* ---- results ---------------------------------------------------------------------------- */
static result *find(engine_conn *c, int64_t qid) {
  for (int i = 0; i < MAX_RESULTS; i++)
    if (c->results[i].open && c->results[i].qid == qid) return &c->results[i];
  return NULL;
}

/* The statement's end: its counters, or the failure of the rest of it. */
static int statement_done(engine_conn *c, result *r, sl_bolt_error *err) {
  sl_query_error qe = {0};
  int rc = sl_qcursor_finish(r->cur, &qe); /* a write's rows not pulled count too (DISCARD) */
  sl_qcursor_stats(r->cur, &r->stats);
  int closed = sl_qcursor_close(r->cur, rc ? NULL : &qe);
  if (!rc) rc = closed;
  r->cur = NULL;
  if (rc) return query_failed(c, rc, &qe, err);
  observe(c, NULL);
  return 0;
}

/* Read the rest of the live cursor into r->rows (a new RUN is coming). */
static int buffer_rows(engine_conn *c, result *r, sl_bolt_error *err) {
  const sl_qvalue *row;
  sl_query_error qe = {0};
  int rc;
  while ((rc = sl_qcursor_next(r->cur, &row, &qe)) == 1) {
    sl_arena_reset(&c->scratch);
    sl_pack list;
    if (!sl_pack_new_list(&c->scratch, &list, r->ncols)) return -ENOMEM;
    int prc = 0;
    for (uint32_t i = 0; i < r->ncols && !prc; i++) prc = to_pack(&c->scratch, c->peer.dialect, &row[i], &list.u.items[i]);
    if (!prc) prc = sl_pack_encode(&r->rows, &list);
    if (prc) return prc;
    if (c->e->cfg.query_memory && r->rows.len > c->e->cfg.query_memory)
      return fail(c, err, "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                  "The rows of an open result pass the query memory limit (%" PRIu64
                  " bytes) while a later statement runs: consume results before running the next.",
                  c->e->cfg.query_memory);
  }
  if (rc < 0) return query_failed(c, rc, &qe, err);
  return statement_done(c, r, err);
}

/* EXPLAIN's plan line (query/: "A <- B(details) <- C") as the operator
 * tree drivers read: operatorType NAME@shiplog, args.Details, children (a
 * profile's rows and db hits are not counted: PROFILE gives the plan). */
static sl_pack *plan_tree(sl_arena *a, const char *line, bool profiled) {
  const char *sep = strstr(line, " <- ");
  size_t len = sep ? (size_t)(sep - line) : strlen(line);
  const char *paren = memchr(line, '(', len);
  size_t nlen = paren ? (size_t)(paren - line) : len;
  sl_pack *node = sl_arena_alloc(a, sizeof *node), ids, args, children;
  char *type = sl_arena_alloc(a, nlen + 9);
  if (!node || !type || !sl_pack_new_map(a, node, profiled ? 6 : 4) || !sl_pack_new_list(a, &ids, 0) ||
      !sl_pack_new_map(a, &args, paren ? 1 : 0) || !sl_pack_new_list(a, &children, sep ? 1 : 0))
    return NULL;
  snprintf(type, nlen + 9, "%.*s@shiplog", (int)nlen, line);
  if (paren) {
    char *details = sl_arena_strndup(a, paren + 1, len - nlen - 2);
    if (!details) return NULL;
    sl_pack_map_set(a, &args, 0, "Details", sl_pack_str(details));
  }
  if (sep) {
    sl_pack *child = plan_tree(a, sep + 4, profiled);
    if (!child) return NULL;
    children.u.items[0] = *child;
  }
  uint32_t k = 0;
  sl_pack_map_set(a, node, k++, "operatorType", sl_pack_str(type));
  sl_pack_map_set(a, node, k++, "args", args);
  sl_pack_map_set(a, node, k++, "identifiers", ids);
  sl_pack_map_set(a, node, k++, "children", children);
  if (profiled) {
    sl_pack_map_set(a, node, k++, "dbHits", sl_pack_int(0));
    sl_pack_map_set(a, node, k++, "rows", sl_pack_int(0));
  }
  return node;
}

static void summarize(engine_conn *c, result *r, sl_bolt_summary *sum, sl_arena *a) {
  const sl_qstats *s = &r->stats;
  sum->type = r->type;
  if (r->plan) {
    sum->plan = plan_tree(a, r->plan, r->profiled); /* a courtesy: NULL on no memory */
    sum->profiled = r->profiled;
  }
  sum->db = c->db.name;
  static const char *const names[] = {"nodes-created",  "nodes-deleted",   "relationships-created",
                                      "relationships-deleted", "properties-set", "labels-added",
                                      "labels-removed", "indexes-added",   "indexes-removed",
                                      "constraints-added", "constraints-removed"};
  const uint64_t values[] = {s->nodes_created,  s->nodes_deleted,    s->relationships_created,
                             s->relationships_deleted, s->properties_set, s->labels_added,
                             s->labels_removed, s->indexes_added,    s->indexes_removed,
                             s->constraints_added, s->constraints_removed};
  uint32_t n = 0;
  for (size_t i = 0; i < SL_ARRAY_LEN(values); i++) n += values[i] > 0;
  if (!n && !s->contains_updates) return;
  sl_pack *stats = sl_arena_alloc(a, sizeof *stats);
  if (!stats || !sl_pack_new_map(a, stats, n + 1)) return; /* counters are a courtesy */
  uint32_t k = 0;
  for (size_t i = 0; i < SL_ARRAY_LEN(values); i++)
    if (values[i]) sl_pack_map_set(a, stats, k++, names[i], sl_pack_int((int64_t)values[i]));
  sl_pack_map_set(a, stats, k, "contains-updates", sl_pack_bool(s->contains_updates));
  sum->stats = stats;
}


/* Commit c's transaction; bookmark filled when it wrote. */
static int commit_tx(engine_conn *c, char bookmark[128], sl_bolt_error *err) {
  sl_bolt_engine *e = c->e;
  end_results(c);
  sl_qtx *q = c->qtx;
  c->qtx = NULL;
  uint64_t txid = 0;
  sl_query_error qe = {0};
  int rc = q ? sl_qtx_commit(q, &txid, &qe) : 0;
  if (rc) return query_failed(c, rc, &qe, err);
  count(&e->stats.commits);
  if (txid) snprintf(bookmark, 128, "shiplog:%s:%" PRIu64 ":%" PRIu64, c->store_hex, c->db.epoch, txid);
  end_tx(c);
  return 0;
}

/* ---- the callbacks ------------------------------------------------------------------------- */
static int eng_open(void *ctx, const sl_bolt_peer *peer, void **conn, sl_bolt_error *err) {
  (void)err;
  engine_conn *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  if (sl_qcache_new(PARSED_ENTRIES, PARSED_BYTES, &c->parsed)) {
    free(c);
    return -ENOMEM;
  }
  c->e = ctx;
  c->peer = *peer;
  snprintf(c->user, sizeof c->user, "%s", peer->user ? peer->user : "");
  c->peer.user = c->user;
  c->peer.address = c->peer.user_agent = NULL; /* the session's memory */
  c->scratch.limit = 64u << 20;
  *conn = c;
  return 0;
}

static void eng_close(void *conn) {
  engine_conn *c = conn;
  end_tx(c);
  sl_arena_free(&c->scratch);
  sl_qcache_free(c->parsed);
  free(c);
}

static int eng_begin(void *conn, const sl_bolt_tx_params *p, sl_bolt_error *err) {
  engine_conn *c = conn;
  c->reaped = false;
  return start_tx(c, p, true, err);
}

/* TIMEOUTS: a transaction past its deadline while its client is silent
 * (one that began, wrote and went quiet holds the store's only writer) is
 * rolled back here, in the connection's thread (LMDB ends a write
 * transaction only there); its next request fails with TransactionTimedOut. */
static int64_t eng_tick(void *conn) {
  engine_conn *c = conn;
  if (!c->qtx || !c->deadline_ns) return -1;
  uint64_t now = sl_mono_ns();
  if (now < c->deadline_ns) return (int64_t)((c->deadline_ns - now) / 1000000) + 1;
  end_tx(c);
  c->reaped = true;
  return -1;
}

static int eng_run(void *conn, const char *query, const sl_pack *params, const sl_bolt_tx_params *autocommit,
                   sl_arena *a, sl_bolt_run_result *res, int64_t *qid, sl_bolt_error *err) {
  engine_conn *c = conn;
  int rc;
  if (autocommit && (rc = start_tx(c, autocommit, false, err))) return rc;
  if ((rc = timed_out(c, err))) return rc;
  result *r = NULL;
  for (int i = 0; i < MAX_RESULTS; i++) {
    result *o = &c->results[i];
    if (o->open && o->cur && (rc = buffer_rows(c, o, err))) return rc;
    if (!o->open && !r) r = o;
  }
  if (!r) return fail(c, err, "Neo.ClientError.Request.Invalid", "more than %d open results", MAX_RESULTS);
  /* parameters */
  size_t np = params && params->kind == SL_PACK_MAP ? params->len : 0;
  sl_qparam *ps = sl_arena_alloc(a, (np ? np : 1) * sizeof *ps);
  if (!ps) return -ENOMEM;
  for (size_t i = 0; i < np; i++) {
    char why[160];
    ps[i].name = params->u.items[2 * i].u.s;
    rc = from_pack(a, c->peer.dialect, &params->u.items[2 * i + 1], &ps[i].value, why, sizeof why);
    if (rc == -ENOMEM || rc == SL_ETOOBIG) return -ENOMEM;
    if (rc) return fail(c, err, "Neo.ClientError.Statement.TypeError", "Parameter $%s: %s", ps[i].name, why);
  }
  count(&c->e->stats.statements);
  c->run_ns = sl_mono_ns();
  sl_query_error qe = {0};
  sl_qcursor *cur = NULL;
  /* A transaction begins on a snapshot and moves to a write transaction at
   * its first write (below); a statement this connection ran before and
   * knows to write begins there at once (a connection that never wrote
   * does not look). */
  if (!c->qtx && (rc = begin_qtx(c, c->wrote && may_write(c) && sl_qcache_writes(c->parsed, query, strlen(query)),
                                 statement_timeout(c))))
    return fail(c, err, "Neo.TransientError.General.DatabaseUnavailable", "cannot begin a transaction: %s",
                sl_strerror(rc));
  rc = sl_qtx_run(c->qtx, query, strlen(query), ps, np, &cur, &qe);
  if (rc && !c->write && !strcmp(qe.code, ACCESS_MODE) && may_write(c)) {
    /* a snapshot so far: nothing to lose by moving to a write transaction */
    sl_qtx_rollback(c->qtx);
    c->qtx = NULL;
    if ((rc = begin_qtx(c, true, statement_timeout(c))))
      return fail(c, err, "Neo.TransientError.General.DatabaseUnavailable", "cannot begin a write transaction: %s",
                  sl_strerror(rc));
    memset(&qe, 0, sizeof qe);
    rc = sl_qtx_run(c->qtx, query, strlen(query), ps, np, &cur, &qe);
  }
  if (rc) return query_failed(c, rc, &qe, err);
  const char *type = sl_qcursor_type(cur);
  if (!strcmp(type, "s") && c->peer.role < SL_BOLT_ROLE_ADMIN) /* before it runs (fail's rollback frees cur) */
    return fail(c, err, "Neo.ClientError.Security.Forbidden",
                "Schema operations are not allowed for user '%s' with roles [%s].", c->user,
                sl_bolt_role_name(c->peer.role));
  const char *const *names;
  memset(r, 0, sizeof *r);
  r->type = type;
  const char *plan = sl_qcursor_plan(cur, &r->profiled);
  if (plan && !(r->plan = strdup(plan))) return -ENOMEM; /* the connection ends: its rollback frees cur */
  r->open = true;
  r->cur = cur;
  r->ncols = (uint32_t)sl_qcursor_columns(cur, &names);
  r->qid = c->explicit_tx ? c->next_qid++ : 0;
  res->fields = names;
  res->n_fields = r->ncols;
  *qid = r->qid;
  return 0;
}

/* After a result's last row: an autocommit transaction commits. */
static int result_end(engine_conn *c, result *r, sl_bolt_summary *sum, sl_arena *a, sl_bolt_error *err) {
  summarize(c, r, sum, a);
  close_result(r);
  if (c->explicit_tx) return 0;
  return commit_tx(c, sum->bookmark, err);
}

static int eng_pull(void *conn, int64_t qid, int64_t n, sl_bolt_sink *sink, bool *has_more, sl_bolt_summary *sum,
                    sl_bolt_error *err) {
  engine_conn *c = conn;
  int rc = timed_out(c, err);
  if (rc) return rc;
  result *r = find(c, qid);
  if (!r) return fail(c, err, "Neo.ClientError.Request.Invalid", "no open result with qid %lld", (long long)qid);
  int64_t k = 0;
  for (; n < 0 || k < n; k++) {
    if (r->cur) {
      const sl_qvalue *row;
      sl_query_error qe = {0};
      rc = sl_qcursor_next(r->cur, &row, &qe);
      if (rc < 0) return query_failed(c, rc, &qe, err);
      if (rc == 0) {
        if ((rc = statement_done(c, r, err))) return rc;
        break;
      }
      sl_pack *values = sl_arena_alloc(sink->a, (r->ncols ? r->ncols : 1) * sizeof *values);
      if (!values) return -ENOMEM;
      for (uint32_t i = 0; i < r->ncols; i++)
        if ((rc = to_pack(sink->a, sink->dialect, &row[i], &values[i]))) return rc;
      if ((rc = sink->record(sink, values, r->ncols))) return rc;
    } else {
      if (r->rows_off >= r->rows.len) break;
      sl_pack list;
      size_t used;
      rc = sl_pack_decode(r->rows.data + r->rows_off, r->rows.len - r->rows_off, NULL, sink->a, &list, &used);
      if (rc) return rc;
      r->rows_off += used;
      if ((rc = sink->record(sink, list.u.items, list.len))) return rc;
    }
  }
  *has_more = r->cur || r->rows_off < r->rows.len;
  if (*has_more) return 0;
  return result_end(c, r, sum, sink->a, err);
}

static int eng_discard(void *conn, int64_t qid, int64_t n, bool *has_more, sl_bolt_summary *sum, sl_bolt_error *err) {
  engine_conn *c = conn;
  (void)n; /* what is discarded needs no counting: the rest goes */
  int rc = timed_out(c, err);
  if (rc) return rc;
  result *r = find(c, qid);
  if (!r) return fail(c, err, "Neo.ClientError.Request.Invalid", "no open result with qid %lld", (long long)qid);
  /* a statement that writes runs whole (statement_done) */
  if (r->cur && (rc = statement_done(c, r, err))) return rc;
  *has_more = false;
  return result_end(c, r, sum, &c->scratch, err);
}

static int eng_commit(void *conn, char bookmark[128], sl_bolt_error *err) {
  engine_conn *c = conn;
  int rc = timed_out(c, err);
  if (rc) return rc;
  /* open results finish first: their statements' writes are part of it */
  for (int i = 0; i < MAX_RESULTS; i++)
    if (c->results[i].open && c->results[i].cur && (rc = statement_done(c, &c->results[i], err))) return rc;
  return commit_tx(c, bookmark, err);
}

static int eng_rollback(void *conn, sl_bolt_error *err) {
  (void)err;
  end_tx(conn);
  return 0;
}

static int add_server(sl_arena *a, sl_pack *srv, const char *role, const char *const *addrs, size_t n) {
  sl_pack list;
  if (!sl_pack_new_map(a, srv, 2) || !sl_pack_new_list(a, &list, (uint32_t)n)) return -ENOMEM;
  for (size_t i = 0; i < n; i++) list.u.items[i] = sl_pack_str(addrs[i]);
  sl_pack_map_set(a, srv, 0, "addresses", list);
  return sl_pack_map_set(a, srv, 1, "role", sl_pack_str(role));
}

static int eng_route(void *conn, const sl_pack *routing, const sl_pack *bookmarks, const char *db, sl_arena *a,
                     sl_pack *rt, sl_bolt_error *err) {
  engine_conn *c = conn;
  sl_bolt_engine *e = c->e;
  (void)routing;
  (void)bookmarks;
  int rc = resolve_db(c, db, err);
  if (rc) return rc;
  /* READ: the configured readers and the ones found now; self when none */
  size_t max = e->cfg.n_readers + MAX_FOUND_READERS + 1, nr = 0;
  const char **readers = sl_arena_alloc(a, max * sizeof *readers);
  const char **routers = sl_arena_alloc(a, (max + 1) * sizeof *routers);
  if (!readers || !routers) return -ENOMEM;
  for (size_t i = 0; i < e->cfg.n_readers; i++) readers[nr++] = e->readers[i];
  if (e->cfg.more_readers) nr += e->cfg.more_readers(e->cfg.more_readers_arg, a, readers + nr, MAX_FOUND_READERS);
  if (!nr) readers[nr++] = e->self;
  size_t nroute = 0;
  routers[nroute++] = e->self;
  for (size_t i = 0; i < nr; i++)
    if (strcmp(readers[i], e->self)) routers[nroute++] = readers[i];
  sl_pack servers;
  const char *writer = c->db.writer[0] ? sl_arena_strndup(a, c->db.writer, strlen(c->db.writer)) : e->writer;
  uint32_t ns = writer ? 3 : 2, i = 0;
  if (!sl_pack_new_map(a, rt, 3) || !sl_pack_new_list(a, &servers, ns)) return -ENOMEM;
  if (writer) rc = add_server(a, &servers.u.items[i++], "WRITE", &writer, 1);
  if (!rc) rc = add_server(a, &servers.u.items[i++], "READ", readers, nr);
  if (!rc) rc = add_server(a, &servers.u.items[i++], "ROUTE", routers, nroute);
  if (rc) return rc;
  sl_pack_map_set(a, rt, 0, "ttl", sl_pack_int(300));
  char *name = sl_arena_strndup(a, c->db.name, strlen(c->db.name));
  if (!name) return -ENOMEM;
  sl_pack_map_set(a, rt, 1, "db", sl_pack_str(name));
  return sl_pack_map_set(a, rt, 2, "servers", servers);
}

/* ---- the engine ---------------------------------------------------------------------------- */
int sl_bolt_engine_new(const sl_bolt_engine_config *cfg, sl_bolt_engine **out) {
  sl_bolt_engine *e = calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  e->cfg = *cfg;
  e->database = strdup(cfg->database ? cfg->database : "neo4j");
  e->self = strdup(cfg->self ? cfg->self : "localhost:7687");
  e->writer = cfg->writer ? strdup(cfg->writer) : NULL;
  e->readers = calloc(cfg->n_readers + 1, sizeof *e->readers);
  if (cfg->history) e->history = *cfg->history;
  bool ok = e->database && e->self && (e->writer || !cfg->writer) && e->readers;
  for (size_t i = 0; ok && i < cfg->n_readers; i++) ok = (e->readers[i] = strdup(cfg->readers[i])) != NULL;
  if (!ok) {
    sl_bolt_engine_free(e);
    return -ENOMEM;
  }
  e->backend = (sl_bolt_backend){.ctx = e, .open = eng_open, .close = eng_close, .begin = eng_begin, .run = eng_run,
                                 .pull = eng_pull, .discard = eng_discard, .commit = eng_commit,
                                 .rollback = eng_rollback, .route = eng_route, .tick = eng_tick};
  *out = e;
  return 0;
}

const sl_bolt_backend *sl_bolt_engine_backend(sl_bolt_engine *e) { return &e->backend; }

void sl_bolt_engine_get_stats(sl_bolt_engine *e, sl_bolt_engine_stats *out) {
  out->commits = __atomic_load_n(&e->stats.commits, __ATOMIC_RELAXED);
  out->rollbacks = __atomic_load_n(&e->stats.rollbacks, __ATOMIC_RELAXED);
  out->statements = __atomic_load_n(&e->stats.statements, __ATOMIC_RELAXED);
  out->failures = __atomic_load_n(&e->stats.failures, __ATOMIC_RELAXED);
}

void sl_bolt_engine_free(sl_bolt_engine *e) {
  if (!e) return;
  for (size_t i = 0; e->readers && i < e->cfg.n_readers; i++) free(e->readers[i]);
  free(e->readers);
  free(e->database);
  free(e->self);
  free(e->writer);
  free(e);
}
