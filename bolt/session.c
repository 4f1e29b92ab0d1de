/*
 * One Bolt connection's server state machine (Bolt 4.4 and 5.0-5.4), as a
 * function from a request to response bytes. No sockets here: server.c
 * feeds messages in and sends what comes out, and the tests drive it
 * directly. What queries mean is the backend's (bolt.h).
 *
 *   CONNECTED --HELLO (4.4, 5.0: with credentials)--> READY
 *   CONNECTED --HELLO (5.1+)--> AUTHENTICATION --LOGON--> READY
 *   READY --LOGOFF (5.1+)--> AUTHENTICATION
 *   READY --RUN--> STREAMING --PULL/DISCARD, has_more--> STREAMING
 *                            --PULL/DISCARD, done-----> READY
 *   READY --BEGIN--> TX_READY --RUN--> TX_STREAMING --PULL/DISCARD of the
 *                    last open result--> TX_READY --COMMIT/ROLLBACK--> READY
 *   READY --ROUTE, TELEMETRY (5.4+)--> READY
 *   any of READY.. TX_STREAMING --a request fails (backend_failed)--> FAILED
 *   FAILED --anything but RESET, GOODBYE--> IGNORED, FAILED
 *   any --RESET--> READY (a transaction, also an autocommit one, is rolled
 *                        back)                                 [handle_reset]
 *   any --sl_bolt_session_interrupt--> INTERRUPTED: IGNORED until the RESET
 *   any --GOODBYE, a protocol violation, a failed login--> DEFUNCT [defunct]
 * A protocol violation is a message the version does not know, one the
 * state does not take, or a malformed one: FAILURE
 * Neo.ClientError.Request.Invalid, then the connection closes (Neo4j does
 * the same). COMMIT and ROLLBACK are also taken in TX_STREAMING (open
 * results are discarded), as Neo4j 5 does. Every request gets exactly one
 * summary; RECORDs precede PULL's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bolt.h"

#define MAX_OPEN_RESULTS 64 /* open results of one transaction */

struct sl_bolt_session {
  sl_bolt_session_config cfg;
  uint16_t version;
  sl_bolt_dialect dialect;
  sl_bolt_state state;
  int pending_resets; /* RESETs that wait in the input (INTERRUPTED) */
  bool authenticated;
  bool hello_done;
  char address[64];
  char connection_id[32];
  char user[65];
  char user_agent[128];
  sl_bolt_role role;
  void *conn;         /* the backend's, while logged in */
  bool in_tx;
  int64_t open_qids[MAX_OPEN_RESULTS];
  int n_open;
  sl_arena arena;     /* the request and what answers it */
  sl_arena records;   /* one record at a time */
  sl_buf scratch;     /* one response before chunking */
  sl_buf *out;
  int (*flush)(void *, sl_buf *);
  void *flush_arg;
};

const char *sl_bolt_state_name(sl_bolt_state s) {
  static const char *const names[] = {"CONNECTED", "AUTHENTICATION", "READY", "STREAMING", "TX_READY",
                                      "TX_STREAMING", "FAILED", "INTERRUPTED", "DEFUNCT"};
  return (unsigned)s < SL_ARRAY_LEN(names) ? names[s] : "?";
}

void sl_bolt_error_set(sl_bolt_error *e, const char *code, const char *fmt, ...) {
  snprintf(e->code, sizeof e->code, "%s", code);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
}

bool sl_bolt_agent_parsable(const char *agent) {
  size_t len = strlen(agent);
  const char *slash = strchr(agent, '/'), *p;
  if (len == 0 || len > 100 || !slash || slash == agent) return false;
  for (p = agent; *p; p++)
    if (*p <= ' ' || *p > '~') return false;
  for (p = slash + 1; *p >= '0' && *p <= '9'; p++) {
  }
  if (p == slash + 1 || *p++ != '.' || *p < '0' || *p > '9') return false;
  return true;
}

int sl_bolt_session_new(const sl_bolt_session_config *cfg, uint16_t version, const char *peer_address,
                        uint64_t connection_id, sl_bolt_session **out) {
  sl_bolt_session *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->cfg = *cfg;
  if (!s->cfg.limits.max_depth) s->cfg.limits = sl_pack_default_limits;
  if (!s->cfg.server_agent) s->cfg.server_agent = SL_BOLT_SERVER_AGENT;
  s->version = version;
  s->dialect.element_ids = version >= SL_BOLT_V(5, 0);
  s->dialect.utc = version >= SL_BOLT_V(5, 0);
  s->state = SL_BOLT_CONNECTED;
  snprintf(s->address, sizeof s->address, "%s", peer_address ? peer_address : "");
  snprintf(s->connection_id, sizeof s->connection_id, "bolt-%llu", (unsigned long long)connection_id);
  *out = s;
  return 0;
}

static void close_backend(sl_bolt_session *s) {
  if (s->conn && s->cfg.backend->close) s->cfg.backend->close(s->conn);
  s->conn = NULL;
  s->in_tx = false;
  s->n_open = 0;
}

void sl_bolt_session_free(sl_bolt_session *s) {
  if (!s) return;
  close_backend(s);
  sl_arena_free(&s->arena);
  sl_arena_free(&s->records);
  sl_buf_free(&s->scratch);
  free(s);
}

sl_bolt_state sl_bolt_session_state(const sl_bolt_session *s) { return s->state; }
bool sl_bolt_session_authenticated(const sl_bolt_session *s) { return s->authenticated; }
int64_t sl_bolt_session_tick(sl_bolt_session *s) {
  return s->conn && s->cfg.backend->tick ? s->cfg.backend->tick(s->conn) : -1;
}

void sl_bolt_session_interrupt(sl_bolt_session *s) {
  if (s->state == SL_BOLT_DEFUNCT) return;
  s->pending_resets++;
  s->state = SL_BOLT_INTERRUPTED;
  if (s->conn && s->cfg.backend->interrupt) s->cfg.backend->interrupt(s->conn);
}

/* ---- responses ------------------------------------------------------------------------ */
/* A response struct with one field (meta) or none, chunked into out. */
static int respond(sl_bolt_session *s, uint8_t tag, const sl_pack *field) {
  s->scratch.len = 0;
  int rc = sl_pack_put_header(&s->scratch, SL_PACK_STRUCT, field ? 1 : 0, tag);
  if (!rc && field) rc = sl_pack_encode(&s->scratch, field);
  if (!rc) rc = sl_bolt_chunk(s->out, s->scratch.data, s->scratch.len);
  return rc;
}

static int success(sl_bolt_session *s, const sl_pack *meta) {
  sl_pack empty;
  if (!meta) meta = sl_pack_new_map(&s->arena, &empty, 0);
  return respond(s, SL_BOLT_MSG_SUCCESS, meta);
}

static int failure(sl_bolt_session *s, const char *code, const char *message) {
  sl_pack meta;
  if (!sl_pack_new_map(&s->arena, &meta, 2)) return -ENOMEM;
  sl_pack_map_set(&s->arena, &meta, 0, "code", sl_pack_str(code));
  sl_pack_map_set(&s->arena, &meta, 1, "message", sl_pack_str(message));
  return respond(s, SL_BOLT_MSG_FAILURE, &meta);
}

/* A protocol violation: FAILURE, then the connection closes. */
static int defunct(sl_bolt_session *s, int why_rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int defunct(sl_bolt_session *s, int why_rc, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  failure(s, "Neo.ClientError.Request.Invalid", msg);
  close_backend(s);
  s->state = SL_BOLT_DEFUNCT;
  return why_rc;
}

/* A request the session itself refuses (not a protocol violation): the
 * backend's transaction ends, as after a backend's own failure. */
static int request_failed(sl_bolt_session *s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The backend said no (rc 1): FAILED; negative: the connection ends. */
static int backend_failed(sl_bolt_session *s, int rc, const sl_bolt_error *err) {
  s->in_tx = false;
  s->n_open = 0;
  if (rc > 0) {
    s->state = SL_BOLT_FAILED;
    return failure(s, err->code[0] ? err->code : "Neo.DatabaseError.General.UnknownError", err->message);
  }
  failure(s, "Neo.DatabaseError.General.UnknownError", sl_strerror(rc));
  close_backend(s);
  s->state = SL_BOLT_DEFUNCT;
  return rc;
}

static int request_failed(sl_bolt_session *s, const char *code, const char *fmt, ...) {
  sl_bolt_error err, ignored;
  va_list ap;
  va_start(ap, fmt);
  snprintf(err.code, sizeof err.code, "%s", code);
  vsnprintf(err.message, sizeof err.message, fmt, ap);
  va_end(ap);
  if (s->in_tx) s->cfg.backend->rollback(s->conn, &ignored);
  return backend_failed(s, 1, &err);
}

static uint64_t now_ms(void) { return sl_mono_ns() / 1000000; }

/* ---- login ---------------------------------------------------------------------------- */
static const char *map_string(const sl_pack *map, const char *key, uint32_t *len) {
  const sl_pack *v = sl_pack_map_get(map, key);
  if (!v || v->kind != SL_PACK_STRING) return NULL;
  if (len) *len = v->len;
  return v->u.s;
}

static int login(sl_bolt_session *s, const sl_pack *auth) {
  const char *scheme = map_string(auth, "scheme", NULL);
  uint32_t ulen = 0, plen = 0;
  const char *user = map_string(auth, "principal", &ulen);
  const char *password = map_string(auth, "credentials", &plen);
  sl_bolt_role role = SL_BOLT_ROLE_ADMIN;
  if (s->cfg.users) {
    int delay = s->cfg.throttle ? sl_bolt_throttle_delay_ms(s->cfg.throttle, s->address) : 0;
    if (delay > 0) {
      struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
    bool ok = scheme && !strcmp(scheme, "basic") && user && password && ulen < sizeof s->user &&
              !memchr(user, 0, ulen) && sl_bolt_users_check(s->cfg.users, user, password, plen, &role) == 0;
    if (s->cfg.throttle) sl_bolt_throttle_result(s->cfg.throttle, s->address, ok);
    if (!ok) {
      sl_diag_warn("bolt: %s: failed login%s%.*s%s", s->address, user ? " as '" : "", user ? (int)(ulen > 64 ? 64 : ulen) : 0,
                   user ? user : "", user ? "'" : "");
      failure(s, "Neo.ClientError.Security.Unauthorized",
              "The client is unauthorized due to authentication failure.");
      s->state = SL_BOLT_DEFUNCT;
      return SL_EAUTH;
    }
    snprintf(s->user, sizeof s->user, "%.*s", (int)ulen, user);
  } else if (user && ulen < sizeof s->user) {
    snprintf(s->user, sizeof s->user, "%.*s", (int)ulen, user);
  }
  s->role = role;
  sl_bolt_peer peer = {.address = s->address, .user = s->user, .role = role, .user_agent = s->user_agent,
                       .dialect = s->dialect, .version = s->version};
  sl_bolt_error err = {0};
  int rc = s->cfg.backend->open ? s->cfg.backend->open(s->cfg.backend->ctx, &peer, &s->conn, &err) : 0;
  if (rc) {
    failure(s, err.code[0] ? err.code : "Neo.DatabaseError.General.UnknownError",
            err.message[0] ? err.message : "the server cannot take this connection");
    s->state = SL_BOLT_DEFUNCT;
    return rc < 0 ? rc : SL_EAUTH;
  }
  s->authenticated = true;
  s->state = SL_BOLT_READY;
  return 0;
}

static int handle_hello(sl_bolt_session *s, const sl_pack *extra) {
  const char *agent = map_string(extra, "user_agent", NULL);
  if (!agent) return defunct(s, SL_ECORRUPT, "HELLO without a user_agent");
  snprintf(s->user_agent, sizeof s->user_agent, "%s", agent);
  bool utc_patch = false;
  const sl_pack *patches = sl_pack_map_get(extra, "patch_bolt");
  if (s->version == SL_BOLT_V(4, 4) && patches && patches->kind == SL_PACK_LIST)
    for (uint32_t i = 0; i < patches->len; i++)
      if (patches->u.items[i].kind == SL_PACK_STRING && !strcmp(patches->u.items[i].u.s, "utc")) utc_patch = true;
  if (utc_patch) s->dialect.utc = true;
  s->hello_done = true;
  if (s->version < SL_BOLT_V(5, 1)) {
    int rc = login(s, extra);
    if (rc) return rc;
  } else {
    s->state = SL_BOLT_AUTHENTICATION;
  }
  sl_pack meta, hints, patch;
  uint32_t n = 2 + (s->cfg.idle_timeout_s > 0) + utc_patch;
  if (!sl_pack_new_map(&s->arena, &meta, n)) return -ENOMEM;
  uint32_t i = 0;
  sl_pack_map_set(&s->arena, &meta, i++, "server", sl_pack_str(s->cfg.server_agent));
  sl_pack_map_set(&s->arena, &meta, i++, "connection_id", sl_pack_str(s->connection_id));
  if (s->cfg.idle_timeout_s > 0) {
    /* drivers close (or test) a pooled connection idle longer than this */
    if (!sl_pack_new_map(&s->arena, &hints, 1)) return -ENOMEM;
    sl_pack_map_set(&s->arena, &hints, 0, "connection.recv_timeout_seconds", sl_pack_int(s->cfg.idle_timeout_s));
    sl_pack_map_set(&s->arena, &meta, i++, "hints", hints);
  }
  if (utc_patch) {
    if (!sl_pack_new_list(&s->arena, &patch, 1)) return -ENOMEM;
    patch.u.items[0] = sl_pack_str("utc");
    sl_pack_map_set(&s->arena, &meta, i++, "patch_bolt", patch);
  }
  return success(s, &meta);
}

/* ---- requests --------------------------------------------------------------------------- */
static int tx_params(sl_bolt_session *s, const sl_pack *extra, sl_bolt_tx_params *p) {
  memset(p, 0, sizeof *p);
  p->timeout_ms = -1;
  const sl_pack *v;
  if ((v = sl_pack_map_get(extra, "db")) && v->kind == SL_PACK_STRING && v->len) p->db = v->u.s;
  if ((v = sl_pack_map_get(extra, "bookmarks")) && v->kind == SL_PACK_LIST) {
    for (uint32_t i = 0; i < v->len; i++)
      if (v->u.items[i].kind != SL_PACK_STRING) return defunct(s, SL_ECORRUPT, "bookmarks must be strings");
    p->bookmarks = v;
  }
  if ((v = sl_pack_map_get(extra, "tx_metadata")) && v->kind == SL_PACK_MAP) p->metadata = v;
  if ((v = sl_pack_map_get(extra, "tx_timeout")) && v->kind == SL_PACK_INT) p->timeout_ms = v->u.i;
  if ((v = sl_pack_map_get(extra, "mode")) && v->kind == SL_PACK_STRING) p->read_only = !strcmp(v->u.s, "r");
  if ((v = sl_pack_map_get(extra, "imp_user")) && v->kind == SL_PACK_STRING) p->imp_user = v->u.s;
  return 0;
}

static int handle_run(sl_bolt_session *s, const sl_pack *msg) {
  const sl_pack *query = &msg->u.items[0], *params = &msg->u.items[1], *extra = &msg->u.items[2];
  bool in_tx = s->in_tx;
  if (in_tx && s->n_open == MAX_OPEN_RESULTS)
    return request_failed(s, "Neo.ClientError.Request.Invalid", "more than %d open results in one transaction",
                          MAX_OPEN_RESULTS);
  sl_bolt_tx_params p;
  int rc = tx_params(s, extra, &p);
  if (rc) return rc;
  uint64_t t0 = now_ms();
  sl_bolt_run_result res = {0};
  int64_t qid = -1;
  sl_bolt_error err = {0};
  rc = s->cfg.backend->run(s->conn, query->u.s, params, in_tx ? NULL : &p, &s->arena, &res, &qid, &err);
  if (rc) return backend_failed(s, rc, &err);
  sl_pack meta, fields;
  if (!sl_pack_new_map(&s->arena, &meta, in_tx ? 3 : 2) || !sl_pack_new_list(&s->arena, &fields, res.n_fields))
    return -ENOMEM;
  for (uint32_t i = 0; i < res.n_fields; i++) fields.u.items[i] = sl_pack_str(res.fields[i]);
  sl_pack_map_set(&s->arena, &meta, 0, "fields", fields);
  sl_pack_map_set(&s->arena, &meta, 1, "t_first", sl_pack_int((int64_t)(now_ms() - t0)));
  if (in_tx) {
    sl_pack_map_set(&s->arena, &meta, 2, "qid", sl_pack_int(qid));
    s->open_qids[s->n_open++] = qid;
    s->state = SL_BOLT_TX_STREAMING;
  } else {
    s->open_qids[0] = qid;
    s->n_open = 1;
    s->state = SL_BOLT_STREAMING;
  }
  return success(s, &meta);
}

static int sink_record(sl_bolt_sink *sink, const sl_pack *values, uint32_t n);

typedef struct session_sink {
  sl_bolt_sink sink;
  sl_bolt_session *s;
} session_sink;

static int sink_record(sl_bolt_sink *sink, const sl_pack *values, uint32_t n) {
  sl_bolt_session *s = ((session_sink *)sink)->s;
  s->scratch.len = 0;
  int rc = sl_pack_put_header(&s->scratch, SL_PACK_STRUCT, 1, SL_BOLT_MSG_RECORD);
  if (!rc) rc = sl_pack_put_header(&s->scratch, SL_PACK_LIST, n, 0);
  for (uint32_t i = 0; i < n && !rc; i++) rc = sl_pack_encode(&s->scratch, &values[i]);
  if (!rc) rc = sl_bolt_chunk(s->out, s->scratch.data, s->scratch.len);
  sl_arena_reset(&s->records);
  if (!rc && s->flush && s->out->len >= 65536) rc = s->flush(s->flush_arg, s->out);
  return rc;
}

/* PULL and DISCARD */
static int handle_stream(sl_bolt_session *s, const sl_pack *msg) {
  bool pull = msg->tag == SL_BOLT_MSG_PULL;
  const sl_pack *extra = &msg->u.items[0];
  const sl_pack *v = sl_pack_map_get(extra, "n");
  int64_t n = v && v->kind == SL_PACK_INT ? v->u.i : -1;
  if (n == 0 || n < -1) return defunct(s, SL_ECORRUPT, "%s with n = %lld", sl_bolt_msg_name(msg->tag), (long long)n);
  int64_t qid = -1;
  if ((v = sl_pack_map_get(extra, "qid")) && v->kind == SL_PACK_INT) qid = v->u.i;
  int slot = s->n_open - 1;
  if (s->state == SL_BOLT_TX_STREAMING && qid != -1) {
    for (slot = s->n_open - 1; slot >= 0 && s->open_qids[slot] != qid; slot--) {}
    if (slot < 0) return request_failed(s, "Neo.ClientError.Request.Invalid", "no open result with qid %lld", (long long)qid);
  }
  qid = s->open_qids[slot];
  uint64_t t0 = now_ms();
  bool has_more = false;
  sl_bolt_summary sum = {0};
  sl_bolt_error err = {0};
  int rc;
  if (pull) {
    session_sink sink = {.sink = {.record = sink_record, .a = &s->records, .dialect = s->dialect}, .s = s};
    rc = s->cfg.backend->pull(s->conn, qid, n, &sink.sink, &has_more, &sum, &err);
  } else {
    rc = s->cfg.backend->discard(s->conn, qid, n, &has_more, &sum, &err);
  }
  if (rc) return backend_failed(s, rc, &err);
  sl_pack meta;
  if (has_more) {
    if (!sl_pack_new_map(&s->arena, &meta, 1)) return -ENOMEM;
    sl_pack_map_set(&s->arena, &meta, 0, "has_more", sl_pack_bool(true));
    return success(s, &meta);
  }
  memmove(&s->open_qids[slot], &s->open_qids[slot + 1], (size_t)(s->n_open - slot - 1) * sizeof s->open_qids[0]);
  s->n_open--;
  bool autocommit = s->state == SL_BOLT_STREAMING;
  if (autocommit) s->state = SL_BOLT_READY;
  else if (!s->n_open) s->state = SL_BOLT_TX_READY;
  uint32_t k = 2 + (sum.stats != NULL) + (sum.plan != NULL) + (sum.db != NULL) + (autocommit && sum.bookmark[0]);
  if (!sl_pack_new_map(&s->arena, &meta, k)) return -ENOMEM;
  uint32_t i = 0;
  sl_pack_map_set(&s->arena, &meta, i++, "type", sl_pack_str(sum.type ? sum.type : "r"));
  sl_pack_map_set(&s->arena, &meta, i++, "t_last", sl_pack_int((int64_t)(now_ms() - t0)));
  if (sum.stats) sl_pack_map_set(&s->arena, &meta, i++, "stats", *sum.stats);
  if (sum.plan) sl_pack_map_set(&s->arena, &meta, i++, sum.profiled ? "profile" : "plan", *sum.plan);
  if (sum.db) sl_pack_map_set(&s->arena, &meta, i++, "db", sl_pack_str(sum.db));
  if (autocommit && sum.bookmark[0]) {
    char *b = sl_arena_strndup(&s->arena, sum.bookmark, strlen(sum.bookmark));
    if (!b) return -ENOMEM;
    sl_pack_map_set(&s->arena, &meta, i++, "bookmark", sl_pack_str(b));
  }
  return success(s, &meta);
}

static int handle_begin(sl_bolt_session *s, const sl_pack *msg) {
  sl_bolt_tx_params p;
  int rc = tx_params(s, &msg->u.items[0], &p);
  if (rc) return rc;
  sl_bolt_error err = {0};
  if ((rc = s->cfg.backend->begin(s->conn, &p, &err))) return backend_failed(s, rc, &err);
  s->in_tx = true;
  s->n_open = 0;
  s->state = SL_BOLT_TX_READY;
  return success(s, NULL);
}

static int handle_end_tx(sl_bolt_session *s, bool commit) {
  sl_bolt_error err = {0};
  char bookmark[128] = "";
  int rc = commit ? s->cfg.backend->commit(s->conn, bookmark, &err) : s->cfg.backend->rollback(s->conn, &err);
  if (rc) return backend_failed(s, rc, &err);
  s->in_tx = false;
  s->n_open = 0;
  s->state = SL_BOLT_READY;
  if (!commit || !bookmark[0]) return success(s, NULL);
  sl_pack meta;
  char *b = sl_arena_strndup(&s->arena, bookmark, strlen(bookmark));
  if (!b || !sl_pack_new_map(&s->arena, &meta, 1)) return -ENOMEM;
  sl_pack_map_set(&s->arena, &meta, 0, "bookmark", sl_pack_str(b));
  return success(s, &meta);
}

/* The single-server routing table: this address in every role. */
static int own_routing_table(sl_bolt_session *s, const char *db, sl_pack *rt) {
  static const char *const roles[] = {"WRITE", "READ", "ROUTE"};
  sl_pack servers;
  if (!sl_pack_new_map(&s->arena, rt, 3) || !sl_pack_new_list(&s->arena, &servers, 3)) return -ENOMEM;
  for (int i = 0; i < 3; i++) {
    sl_pack *srv = &servers.u.items[i], addrs;
    if (!sl_pack_new_map(&s->arena, srv, 2) || !sl_pack_new_list(&s->arena, &addrs, 1)) return -ENOMEM;
    addrs.u.items[0] = sl_pack_str(s->cfg.advertise ? s->cfg.advertise : "localhost:7687");
    sl_pack_map_set(&s->arena, srv, 0, "addresses", addrs);
    sl_pack_map_set(&s->arena, srv, 1, "role", sl_pack_str(roles[i]));
  }
  sl_pack_map_set(&s->arena, rt, 0, "ttl", sl_pack_int(300));
  sl_pack_map_set(&s->arena, rt, 1, "db", sl_pack_str(db ? db : "neo4j"));
  sl_pack_map_set(&s->arena, rt, 2, "servers", servers);
  return 0;
}

static int handle_route(sl_bolt_session *s, const sl_pack *msg) {
  const sl_pack *routing = &msg->u.items[0], *bookmarks = &msg->u.items[1], *extra = &msg->u.items[2];
  const char *db = NULL;
  if (extra->kind == SL_PACK_MAP) db = map_string(extra, "db", NULL);
  else if (extra->kind == SL_PACK_STRING) db = extra->u.s;
  sl_pack rt, meta;
  sl_bolt_error err = {0};
  int rc = s->cfg.backend->route ? s->cfg.backend->route(s->conn, routing, bookmarks, db, &s->arena, &rt, &err)
                                 : own_routing_table(s, db, &rt);
  if (rc) return backend_failed(s, rc, &err);
  if (!sl_pack_new_map(&s->arena, &meta, 1)) return -ENOMEM;
  sl_pack_map_set(&s->arena, &meta, 0, "rt", rt);
  return success(s, &meta);
}

static int handle_reset(sl_bolt_session *s) {
  if (s->pending_resets) s->pending_resets--;
  if (s->pending_resets) return respond(s, SL_BOLT_MSG_IGNORED, NULL); /* a later RESET ends it */
  if (s->in_tx || s->n_open) {
    /* an autocommit result too: RESET terminates, it does not consume
     * (a DISCARD would run a write to its end and commit it) */
    sl_bolt_error err = {0};
    s->cfg.backend->rollback(s->conn, &err);
  }
  s->in_tx = false;
  s->n_open = 0;
  if (s->conn) s->state = SL_BOLT_READY;
  else s->state = s->hello_done && s->version >= SL_BOLT_V(5, 1) ? SL_BOLT_AUTHENTICATION : SL_BOLT_CONNECTED;
  return success(s, NULL);
}

/* Which requests each state takes. */
static bool allowed(const sl_bolt_session *s, uint8_t tag) {
  sl_bolt_state st = s->state;
  switch (tag) {
  case SL_BOLT_MSG_HELLO: return st == SL_BOLT_CONNECTED;
  case SL_BOLT_MSG_LOGON: return st == SL_BOLT_AUTHENTICATION && s->version >= SL_BOLT_V(5, 1);
  case SL_BOLT_MSG_LOGOFF: return st == SL_BOLT_READY && s->version >= SL_BOLT_V(5, 1);
  case SL_BOLT_MSG_RUN: return st == SL_BOLT_READY || st == SL_BOLT_TX_READY || st == SL_BOLT_TX_STREAMING;
  case SL_BOLT_MSG_PULL:
  case SL_BOLT_MSG_DISCARD: return st == SL_BOLT_STREAMING || st == SL_BOLT_TX_STREAMING;
  case SL_BOLT_MSG_BEGIN: return st == SL_BOLT_READY;
  case SL_BOLT_MSG_COMMIT:
  case SL_BOLT_MSG_ROLLBACK: return st == SL_BOLT_TX_READY || st == SL_BOLT_TX_STREAMING;
  case SL_BOLT_MSG_ROUTE: return st == SL_BOLT_READY;
  case SL_BOLT_MSG_TELEMETRY: return st == SL_BOLT_READY && s->version >= SL_BOLT_V(5, 4);
  default: return false;
  }
}

int sl_bolt_session_handle(sl_bolt_session *s, const uint8_t *body, size_t len, sl_buf *out,
                           int (*flush)(void *arg, sl_buf *out), void *flush_arg) {
  s->out = out;
  s->flush = flush;
  s->flush_arg = flush_arg;
  sl_arena_reset(&s->arena);
  if (s->state == SL_BOLT_DEFUNCT) return SL_EEND;
  sl_pack msg;
  char why[160];
  int rc = sl_bolt_msg_decode(body, len, &s->cfg.limits, &s->arena, &msg, why, sizeof why);
  if (rc) return defunct(s, rc, "%s", why);
  uint8_t tag = msg.tag;
  if (tag == SL_BOLT_MSG_GOODBYE) {
    close_backend(s);
    s->state = SL_BOLT_DEFUNCT;
    return SL_EEND;
  }
  if (tag == SL_BOLT_MSG_RESET) return handle_reset(s);
  if (s->state == SL_BOLT_INTERRUPTED || s->state == SL_BOLT_FAILED) return respond(s, SL_BOLT_MSG_IGNORED, NULL);
  if (!allowed(s, tag))
    return defunct(s, SL_ECORRUPT, "Message '%s' cannot be handled by a session in the %s state (Bolt %d.%d).",
                   sl_bolt_msg_name(tag), sl_bolt_state_name(s->state), s->version >> 8, s->version & 0xFF);
  switch (tag) {
  case SL_BOLT_MSG_HELLO: return handle_hello(s, &msg.u.items[0]);
  case SL_BOLT_MSG_LOGON:
    if ((rc = login(s, &msg.u.items[0]))) return rc;
    return success(s, NULL);
  case SL_BOLT_MSG_LOGOFF:
    close_backend(s);
    s->authenticated = false;
    s->state = SL_BOLT_AUTHENTICATION;
    return success(s, NULL);
  case SL_BOLT_MSG_RUN: return handle_run(s, &msg);
  case SL_BOLT_MSG_PULL:
  case SL_BOLT_MSG_DISCARD: return handle_stream(s, &msg);
  case SL_BOLT_MSG_BEGIN: return handle_begin(s, &msg);
  case SL_BOLT_MSG_COMMIT: return handle_end_tx(s, true);
  case SL_BOLT_MSG_ROLLBACK: return handle_end_tx(s, false);
  case SL_BOLT_MSG_ROUTE: return handle_route(s, &msg);
  case SL_BOLT_MSG_TELEMETRY: return success(s, NULL);
  }
  return defunct(s, SL_ECORRUPT, "unknown message");
}
