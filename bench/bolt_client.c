/*
 * The benches' Bolt client (bolt_client.h). Requests are streamed into one
 * buffer with sl_pack_put_* (no value tree to build), each message framed
 * with sl_bolt_chunk, and a request group goes out in one write. Answers
 * are reassembled with sl_bolt_dechunker; a RECORD is only counted, a
 * SUCCESS or FAILURE is decoded with
 * sl_pack_decode into an arena reset per message.
 *
 * A group of k requests gets k summaries back, in order. After a FAILURE
 * the server answers IGNORED to the rest of the group and waits for
 * RESET: the client sends it and reads its SUCCESS, so the next call
 * starts READY, as a driver's does.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt_client.h"
#include "codec.h"

#define IO_TIMEOUT_MS 60000
#define MAX_ANSWER (64u << 20)

struct bolt_client {
  sl_conn *conn;
  uint16_t version;
  sl_buf out, msg;         /* requests being built; the message being read */
  sl_buf body;             /* a request's body while it is framed */
  sl_bolt_dechunker in;
  sl_arena arena;          /* one decoded summary */
  char error[640];
};

uint16_t bolt_client_version(const bolt_client *c) { return c->version; }
const char *bolt_client_error(const bolt_client *c) { return c->error; }

/* ---- sending ------------------------------------------------------------------------ */

static int put_str(sl_buf *b, const char *s) { return sl_pack_put_string(b, s, strlen(s)); }

/* Frame the message body[from..) that was just streamed into c->out. */
static int frame(bolt_client *c, size_t from) {
  size_t len = c->out.len - from;
  int rc = sl_buf_reserve(&c->body, len ? len : 1);
  if (rc) return rc;
  memcpy(c->body.data, c->out.data + from, len);
  c->out.len = from;
  return sl_bolt_chunk(&c->out, c->body.data, len);
}

/* The extra map of BEGIN or an autocommit RUN: db, mode, bookmarks. */
static int put_tx_extra(sl_buf *b, const char *db, bool read_only, const char *bookmark) {
  bool has_db = db && *db, has_bm = bookmark && *bookmark;
  int rc = sl_pack_put_header(b, SL_PACK_MAP, (uint32_t)(has_db + read_only + has_bm), 0);
  if (rc == 0 && has_db && !(rc = put_str(b, "db"))) rc = put_str(b, db);
  if (rc == 0 && read_only && !(rc = put_str(b, "mode"))) rc = put_str(b, "r");
  if (rc == 0 && has_bm && !(rc = put_str(b, "bookmarks")) && !(rc = sl_pack_put_header(b, SL_PACK_LIST, 1, 0)))
    rc = put_str(b, bookmark);
  return rc;
}

static int msg_begin(bolt_client *c, const char *db, bool read_only, const char *bookmark) {
  size_t from = c->out.len;
  int rc = sl_pack_put_header(&c->out, SL_PACK_STRUCT, 1, SL_BOLT_MSG_BEGIN);
  if (rc == 0) rc = put_tx_extra(&c->out, db, read_only, bookmark);
  return rc ? rc : frame(c, from);
}

/* RUN; autocommit: the tx extra, else an empty map. */
static int msg_run(bolt_client *c, const char *query, const sl_pack *params, bool autocommit, const char *db,
                   bool read_only, const char *bookmark) {
  static const sl_pack no_params = {.kind = SL_PACK_MAP};
  size_t from = c->out.len;
  int rc = sl_pack_put_header(&c->out, SL_PACK_STRUCT, 3, SL_BOLT_MSG_RUN);
  if (rc == 0) rc = put_str(&c->out, query);
  if (rc == 0) rc = sl_pack_encode(&c->out, params ? params : &no_params);
  if (rc == 0) rc = autocommit ? put_tx_extra(&c->out, db, read_only, bookmark)
                               : sl_pack_put_header(&c->out, SL_PACK_MAP, 0, 0);
  return rc ? rc : frame(c, from);
}

static int msg_pull_all(bolt_client *c) {
  size_t from = c->out.len;
  int rc = sl_pack_put_header(&c->out, SL_PACK_STRUCT, 1, SL_BOLT_MSG_PULL);
  if (rc == 0) rc = sl_pack_put_header(&c->out, SL_PACK_MAP, 1, 0);
  if (rc == 0) rc = put_str(&c->out, "n");
  if (rc == 0) rc = sl_pack_put_int(&c->out, -1);
  return rc ? rc : frame(c, from);
}

/* A message without fields (COMMIT, RESET, GOODBYE). */
static int msg_bare(bolt_client *c, uint8_t tag) {
  size_t from = c->out.len;
  int rc = sl_pack_put_header(&c->out, SL_PACK_STRUCT, 0, tag);
  return rc ? rc : frame(c, from);
}

static int flush(bolt_client *c) {
  int rc = sl_conn_write_all(c->conn, c->out.data, c->out.len, IO_TIMEOUT_MS);
  c->out.len = 0;
  if (rc) snprintf(c->error, sizeof c->error, "sending to %s: %s", sl_conn_peer(c->conn), sl_strerror(rc));
  return rc;
}

/* ---- receiving ---------------------------------------------------------------------- */

/* Read until `want` bytes of raw input are buffered (the handshake) or,
 * want 0, until a whole message is in c->msg. */
static int fill(bolt_client *c, size_t want) {
  for (;;) {
    if (want && c->in.in.len >= want) return 0;
    if (!want) {
      bool partial;
      int rc = sl_bolt_dechunk_next(&c->in, &c->msg, &partial);
      if (rc != 0) return rc < 0 ? rc : 0;
    }
    uint8_t buf[16384];
    long n = sl_conn_read_some(c->conn, buf, sizeof buf);
    if (n == -EAGAIN) {
      struct pollfd p = {.fd = sl_conn_fd(c->conn), .events = POLLIN};
      int r = poll(&p, 1, IO_TIMEOUT_MS);
      if (r == 0) return -ETIMEDOUT;
      if (r < 0 && errno != EINTR) return -errno;
      continue;
    }
    if (n == 0) return SL_EEND;
    if (n < 0) return (int)n;
    int rc = sl_bolt_dechunk_feed(&c->in, buf, (size_t)n);
    if (rc) return rc;
  }
}

/* The next summary: SUCCESS (0, *meta its map), FAILURE (1, the error
 * noted), IGNORED (2). RECORDs before it are counted into res. */
static int next_summary(bolt_client *c, bolt_result *res, const sl_pack **meta) {
  for (;;) {
    int rc = fill(c, 0);
    if (rc) {
      snprintf(c->error, sizeof c->error, "reading from %s: %s", sl_conn_peer(c->conn), sl_strerror(rc));
      return rc;
    }
    const uint8_t *b = c->msg.data;
    if (c->msg.len < 2 || (b[0] & 0xF0) != 0xB0) {
      snprintf(c->error, sizeof c->error, "%s sent a message that is no struct", sl_conn_peer(c->conn));
      return SL_ECORRUPT;
    }
    if (b[1] == SL_BOLT_MSG_RECORD) {
      if (res) res->rows++;
      continue;
    }
    if (b[1] == SL_BOLT_MSG_IGNORED) return 2;
    sl_arena_reset(&c->arena);
    sl_pack v;
    size_t used;
    if ((rc = sl_pack_decode(b, c->msg.len, &sl_pack_default_limits, &c->arena, &v, &used)) ||
        v.kind != SL_PACK_STRUCT || v.len != 1 || v.u.items[0].kind != SL_PACK_MAP) {
      snprintf(c->error, sizeof c->error, "%s sent an answer that is no Bolt summary", sl_conn_peer(c->conn));
      return rc ? rc : SL_ECORRUPT;
    }
    *meta = &v.u.items[0];
    if (b[1] == SL_BOLT_MSG_SUCCESS) return 0;
    if (b[1] != SL_BOLT_MSG_FAILURE) {
      snprintf(c->error, sizeof c->error, "%s sent message 0x%02x", sl_conn_peer(c->conn), b[1]);
      return SL_ECORRUPT;
    }
    const sl_pack *code = sl_pack_map_get(*meta, "code"), *message = sl_pack_map_get(*meta, "message");
    snprintf(c->error, sizeof c->error, "%s: %s", code && code->kind == SL_PACK_STRING ? code->u.s : "?",
             message && message->kind == SL_PACK_STRING ? message->u.s : "");
    return 1;
  }
}

/* Read the n summaries of a group just sent. Returns 0 when all were
 * SUCCESS (the bookmark of the last one that carries one goes to res),
 * 1 after a FAILURE (then RESET), < 0 when the connection broke. */
static int finish(bolt_client *c, int n, bolt_result *res) {
  int failed = 0;
  for (int i = 0; i < n; i++) {
    const sl_pack *meta = NULL;
    int rc = next_summary(c, res, &meta);
    if (rc < 0) return rc;
    if (rc == 1) failed = 1;
    if (rc == 0 && res) {
      const sl_pack *bm = sl_pack_map_get(meta, "bookmark");
      if (bm && bm->kind == SL_PACK_STRING) snprintf(res->bookmark, sizeof res->bookmark, "%s", bm->u.s);
    }
  }
  if (!failed) return 0;
  char why[sizeof c->error];
  memcpy(why, c->error, sizeof why);
  const sl_pack *meta;
  int rc = msg_bare(c, SL_BOLT_MSG_RESET);
  if (rc == 0) rc = flush(c);
  if (rc == 0) rc = next_summary(c, NULL, &meta);
  if (rc) return rc < 0 ? rc : SL_ECORRUPT;
  memcpy(c->error, why, sizeof why);
  return 1;
}

static void result_init(bolt_result *res) {
  res->rows = 0;
  res->bookmark[0] = 0;
}

/* ---- the API ------------------------------------------------------------------------- */

int bolt_client_run(bolt_client *c, const char *db, bool read_only, const char *bookmark, const char *query,
                    const sl_pack *params, bolt_result *res) {
  result_init(res);
  int rc = msg_run(c, query, params, true, db, read_only, bookmark);
  if (rc == 0) rc = msg_pull_all(c);
  if (rc == 0) rc = flush(c);
  return rc ? rc : finish(c, 2, res);
}

int bolt_client_tx(bolt_client *c, const char *db, const char *query, const sl_pack *params, bolt_result *res) {
  result_init(res);
  int rc = msg_begin(c, db, false, NULL);
  if (rc == 0) rc = msg_run(c, query, params, false, NULL, false, NULL);
  if (rc == 0) rc = msg_pull_all(c);
  if (rc == 0) rc = msg_bare(c, SL_BOLT_MSG_COMMIT);
  if (rc == 0) rc = flush(c);
  return rc ? rc : finish(c, 4, res);
}

void bolt_client_close(bolt_client *c) {
  if (!c) return;
  if (c->conn) {
    if (c->version && msg_bare(c, SL_BOLT_MSG_GOODBYE) == 0) (void)flush(c);
    sl_conn_close(c->conn);
  }
  sl_buf_free(&c->out);
  sl_buf_free(&c->msg);
  sl_buf_free(&c->body);
  sl_bolt_dechunk_free(&c->in);
  sl_arena_free(&c->arena);
  free(c);
}

int bolt_client_connect(const char *hostport, bolt_client **out, char *why, size_t whylen) {
  bolt_client *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->in.max_message = MAX_ANSWER;
  int rc = sl_conn_connect(hostport, IO_TIMEOUT_MS, &c->conn);
  if (rc) {
    snprintf(c->error, sizeof c->error, "connecting to %s: %s", hostport, sl_strerror(rc));
    goto fail;
  }
  /* 5.4 down to 5.0, then 4.4 */
  static const uint8_t hello[SL_BOLT_HANDSHAKE_SIZE] = {0x60, 0x60, 0xB0, 0x17, 0, 4, 4, 5, 0, 0, 4, 4};
  if ((rc = sl_conn_write_all(c->conn, hello, sizeof hello, IO_TIMEOUT_MS)) || (rc = fill(c, 4))) {
    snprintf(c->error, sizeof c->error, "handshake with %s: %s", hostport, sl_strerror(rc));
    goto fail;
  }
  const uint8_t *v = c->in.in.data;
  c->version = SL_BOLT_V(v[3], v[2]);
  memmove(c->in.in.data, c->in.in.data + 4, c->in.in.len - 4);
  c->in.in.len -= 4;
  if (!c->version) {
    snprintf(c->error, sizeof c->error, "%s speaks none of Bolt 5.0-5.4, 4.4", hostport);
    rc = SL_EVERSION;
    goto fail;
  }
  /* HELLO {user_agent}; before 5.1 it carries the auth (scheme "none"), after it LOGON does */
  bool logon = c->version >= SL_BOLT_V(5, 1);
  size_t from = c->out.len;
  rc = sl_pack_put_header(&c->out, SL_PACK_STRUCT, 1, SL_BOLT_MSG_HELLO);
  if (rc == 0) rc = sl_pack_put_header(&c->out, SL_PACK_MAP, logon ? 1 : 2, 0);
  if (rc == 0 && !(rc = put_str(&c->out, "user_agent"))) rc = put_str(&c->out, "shiplog-bench/1");
  if (rc == 0 && !logon && !(rc = put_str(&c->out, "scheme"))) rc = put_str(&c->out, "none");
  if (rc == 0) rc = frame(c, from);
  if (rc == 0 && logon) {
    from = c->out.len;
    rc = sl_pack_put_header(&c->out, SL_PACK_STRUCT, 1, SL_BOLT_MSG_LOGON);
    if (rc == 0) rc = sl_pack_put_header(&c->out, SL_PACK_MAP, 1, 0);
    if (rc == 0 && !(rc = put_str(&c->out, "scheme"))) rc = put_str(&c->out, "none");
    if (rc == 0) rc = frame(c, from);
  }
  if (rc == 0) rc = flush(c);
  if (rc == 0 && (rc = finish(c, logon ? 2 : 1, NULL)) == 1) rc = SL_EAUTH;
  if (rc) goto fail;
  *out = c;
  return 0;
fail:
  snprintf(why, whylen, "%s", c->error);
  c->version = 0; /* no GOODBYE */
  bolt_client_close(c);
  return rc;
}
