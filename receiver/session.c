/*
 * session.c: one replication session of `shiplog receive`, on the
 * connection's own thread (sl__conn_main, started by the listener in
 * receiver.c): TLS, the handshake, batches, bases, acks and heartbeats
 * (messages: proto/replication.proto; framing: codec/codec.h; per-stream
 * state: stream.c).
 *
 * SESSION (one connection; every edge names the function that takes it;
 * accept_one() and evict_oldest() are the listener's, in receiver.c)
 *
 *   accepted --secure() (TLS only)--> TLS up --handshake()--> HELLO_WAIT
 *       |          |  plain client: Error{ERR_VERSION, permanent} --> CLOSED
 *       |          |  refused certificate, broken or slow handshake --> CLOSED
 *       | too many connections, overall or from one address, every one
 *       | of them introduced (accept_one())
 *       v
 *     Error{ERR_BUSY} (plain TCP only) --> CLOSED
 *   accepted / TLS up, not introduced: a newer connection needs the room
 *     (evict_oldest()) --> CLOSED
 *
 *   HELLO_WAIT --Hello ok, allowed, lineage ok, sl__stream_attach()--> STREAMING
 *       |  bad version / name / store id, a stream the certificate may not
 *       |  write (ERR_FORBIDDEN), behind or diverged (ERR_DIVERGED), all
 *       |  before the attach: Error{permanent} --> CLOSED
 *       |  TLS + Hello not within timeout_ms of the accept, garbage --> CLOSED
 *
 *   STREAMING --serve()--> CLOSED: EOF, timeout, bad frame (Error{ERR_BAD_MESSAGE}),
 *       bad batch (Error{ERR_CORRUPT|GAP|TOO_BIG}), disk error (Error{ERR_IO}),
 *       takeover by a newer connection, receiver stopping
 *
 * BASE SHIPPING (base.c): when the stream has no base and the Hello says
 * the shipper can send one, the Welcome asks for it (need_base); then
 * BaseBegin, BaseChunk..., BaseEnd arrive before any Batch and are written
 * as the stream's snapshot. Base messages are refused unless asked for; a
 * session that ends inside a base leaves nothing of it.
 *
 * STREAMING, per group of batches (receive_group()):
 *   receive Batch -> sl_batch_open (decompress, CRC of every frame, dense
 *   txids) -> trim frames already appended -> the first new txid must be the
 *   archive's next one (else ERR_GAP) -> sl_log_append each frame -> if more
 *   bytes already wait in the socket, take the next message the same way
 *   (up to GROUP_MAX_BYTES) -> ask the syncer for one fdatasync of all of
 *   it (stream.c, SYNCER) and go on receiving; the syncer pokes the eventfd
 *   once it is durable -> Ack{durable, applied}. The worker applies (what
 *   is appended, before it is durable: stream.c, POSITIONS) and pokes the
 *   eventfd -> Ack{durable, applied} again. Heartbeat both ways when
 *   idle; a peer silent for timeout_ms is closed.
 *
 * LIMITS (messages; the connection limits are in receiver.c): before the
 * Hello a message may be at most HELLO_MAX bytes; after it, the LZ4 bound
 * of max_batch_bytes (at least SL_BATCH_FRAME_MAX: a batch of one frame
 * may be that large, codec.h) plus envelope. The codec checks the length
 * in the header before allocating anything.
 *
 * SECURITY (receiver.h): secure() runs the TLS handshake on the
 * connection's own thread (a slow handshake never stalls accept); the
 * allow list is checked in handshake() right after the Hello names its
 * stream and before the stream is looked up or created.
 */
#include "receiver_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lineage.h"
#include "sl_base.h"
#include "sl_status.h"

#define HELLO_MAX (64u << 10)
#define ENVELOPE_MAX 4096u
#define GROUP_MAX_BYTES (16u << 20)
#define LINGER_MS 1000

/* ---- sending ------------------------------------------------------------------------ */

int sl__conn_send_error(sl__conn_ctx *cx, Shiplog__Repl__ErrorCode code, bool permanent, const char *text) {
  Shiplog__Repl__Message m;
  Shiplog__Repl__Error e;
  sl_msg_error(&m, &e, code, permanent, text);
  int rc = sl_conn_send(cx->c, &m);
  cx->last_tx_ns = sl_mono_ns();
  return rc;
}

static int send_ack(sl__conn_ctx *cx) {
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Ack a = SHIPLOG__REPL__ACK__INIT;
  uint64_t durable, applied;
  sl__stream_positions(cx->s, &durable, &applied);
  a.durable_txid = durable;
  a.has_applied_txid = true;
  a.applied_txid = applied;
  a.has_receiver_time_us = true;
  a.receiver_time_us = sl_now_us();
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_ACK;
  m.ack = &a;
  int rc = sl_conn_send(cx->c, &m);
  cx->last_tx_ns = sl_mono_ns();
  cx->sent_durable = durable;
  cx->sent_applied = applied;
  return rc;
}

static int send_heartbeat(sl__conn_ctx *cx) {
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Heartbeat h = SHIPLOG__REPL__HEARTBEAT__INIT;
  uint64_t durable, applied;
  sl__stream_positions(cx->s, &durable, &applied);
  h.has_time_us = h.has_durable_txid = h.has_applied_txid = true;
  h.time_us = sl_now_us();
  h.durable_txid = durable;
  h.applied_txid = applied;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &h;
  int rc = sl_conn_send(cx->c, &m);
  cx->last_tx_ns = sl_mono_ns();
  return rc;
}

/* "stream NAME from PEER", or "connection from PEER" before the hello. */
static const char *describe(const sl__conn_ctx *cx, char *buf, size_t len) {
  if (cx->s) snprintf(buf, len, "stream %s from %s", cx->s->name, sl_conn_peer(cx->c));
  else snprintf(buf, len, "connection from %s", sl_conn_peer(cx->c));
  return buf;
}

/* A bad message from the peer: log it naming the peer, tell the peer, close.
 * Returns rc so callers can `return refuse(...)`. */
static int refuse(sl__conn_ctx *cx, int rc, Shiplog__Repl__ErrorCode code, bool permanent,
                  const char *what) {
  char who[160];
  sl__conn_log(cx, SL__NOTE_ERROR, "%s: %s", describe(cx, who, sizeof who), what);
  sl__rx_metrics_rejected(cx->r, cx->s, code);
  if (cx->s) sl__stream_set_error(cx->s, "from %s: %s", sl_conn_peer(cx->c), what);
  sl__conn_send_error(cx, code, permanent, what);
  cx->refused = true;
  return rc;
}

/* Map a receive error to what we tell the peer. */
static int recv_failed(sl__conn_ctx *cx, int rc, const char *phase) {
  char why[160], who[160];
  describe(cx, who, sizeof who);
  switch (rc) {
  case SL_ETOOBIG:
    snprintf(why, sizeof why, "%s: message over the limit of %zu bytes", phase, cx->max_body);
    return refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_TOO_BIG, false, why);
  case SL_ECORRUPT:
    snprintf(why, sizeof why, "%s: malformed message (bad checksum or encoding)", phase);
    return refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false, why);
  case SL_ETRUNCATED:
    snprintf(why, sizeof why, "%s: message truncated (peer stopped inside it)", phase);
    return refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false, why);
  case -ETIMEDOUT:
    sl__conn_log(cx, SL__NOTE_ERROR, "%s: %s: nothing received in time, closing", who, phase);
    return rc;
  case SL_EEND:
  case -ECONNRESET:
  case -EPIPE:
    sl__conn_log(cx, SL__NOTE_INFO, "%s: connection closed", who);
    return rc;
  default:
    sl__conn_log(cx, SL__NOTE_ERROR, "%s: %s: %s", who, phase, sl_strerror(rc));
    return rc;
  }
}

/* ---- handshake ---------------------------------------------------------------------- */

/* The archive's cs through a txid (sl_checksum_fn for sl_lineage_judge):
 * the one the caller knows for `last`, else from the segments (any thread
 * may read them: frames up to `last` are written). */
typedef struct archive_point {
  const sl__stream *s;
  uint64_t last, cs;
} archive_point;

static int archive_checksum(void *arg, uint64_t txid, uint64_t *cs) {
  const archive_point *a = arg;
  if (txid == a->last) {
    *cs = a->cs;
    return 0;
  }
  return sl_log_checksum_at(a->s->archive_dir, txid, cs);
}

/* LINEAGE (receiver.h): may this shipper's history write the stream, whose
 * archive holds rh and txids up to r_last with cs r_cs? Refusals are
 * permanent: a store that is behind or diverged must not write. */
static int judge_lineage(sl__conn_ctx *cx, sl__stream *s, const Shiplog__Repl__Hello *h, const sl_history *sh,
                         const sl_history *rh, uint64_t r_last, uint64_t r_cs) {
  archive_point ap = {.s = s, .last = r_last, .cs = r_cs};
  sl_lineage_result res;
  char why[600];
  uint64_t s_last = h->has_committed_txid ? h->committed_txid : 0;
  sl_lineage_judge(rh, r_last, archive_checksum, &ap, sh, s_last, h->checksum, &res);
  unsigned long long R = r_last, S = s_last, E = sl_history_epoch(rh), SE = sl_history_epoch(sh);
  switch (res.verdict) {
  case SL_LINEAGE_EQUAL:
  case SL_LINEAGE_EXTENDS: return 0;
  case SL_LINEAGE_BEHIND:
    snprintf(why, sizeof why,
             "behind: stream %s holds txids up to %llu in epoch %llu; this store has only %llu (epoch %llu)%s, so "
             "it is not the stream's primary and may not write to it; make it a standby of the new primary: "
             "`shiplog rewind STORE --to-txid %llu --standby-data DIR --stream NAME` (README \"Failover\")",
             s->name, R, E, S, SE,
             res.unverified ? " and the archive no longer holds its last txid to compare" : " of the same history", S);
    break;
  case SL_LINEAGE_DIVERGED:
    snprintf(why, sizeof why,
             "diverged: stream %s (epoch %llu, txids up to %llu) and this store (epoch %llu, txids up to %llu) part "
             "after txid %llu at the latest (txid %llu is checked shared): this store's txids %llu..%llu may exist "
             "only here (from %llu on they do). List them with `shiplog log STORE --diverged --data DIR --stream %s`, "
             "then `shiplog rewind STORE --to-txid N` to follow the new primary",
             s->name, E, R, SE, S, (unsigned long long)res.fork_max, (unsigned long long)res.fork,
             (unsigned long long)res.fork + 1, S, (unsigned long long)res.fork_max + 1, s->name);
    break;
  }
  return refuse(cx, SL_EGAP, SHIPLOG__REPL__ERROR_CODE__ERR_DIVERGED, true, why);
}

static int handshake(sl__conn_ctx *cx) {
  sl__receiver *r = cx->r;
  Shiplog__Repl__Message *m = NULL;
  char why[400];
  cx->max_body = HELLO_MAX;
  int rc = sl_conn_recv(cx->c, r->opt.timeout_ms, cx->max_body, &m);
  if (rc) return recv_failed(cx, rc, "waiting for hello");
  sl_conn_set_deadline(cx->c, 0); /* sl__conn_main's: authenticated and introduced in time */
  if (m->body_case != SHIPLOG__REPL__MESSAGE__BODY_HELLO) {
    snprintf(why, sizeof why, "expected a hello, got a %s", sl_msg_kind(m));
    rc = refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false, why);
    goto out;
  }
  const Shiplog__Repl__Hello *h = m->hello;
  if (h->protocol_version != SL_PROTOCOL_VERSION) {
    snprintf(why, sizeof why, "protocol version %u is not spoken here (this receiver speaks %u)",
             h->protocol_version, SL_PROTOCOL_VERSION);
    rc = refuse(cx, SL_EVERSION, SHIPLOG__REPL__ERROR_CODE__ERR_VERSION, true, why);
    goto out;
  }
  if (!sl_stream_name_valid(h->stream)) {
    snprintf(why, sizeof why, "invalid stream name \"%.80s\" (allowed: [A-Za-z0-9_.-]{1,64})",
             h->stream);
    rc = refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_UNKNOWN_STREAM, true, why);
    goto out;
  }
  if (r->allow) {
    const char *const *ids;
    size_t nids = sl_conn_identities(cx->c, &ids);
    if (!sl__allow_check(r->allow, h->stream, ids, nids)) {
      char names[200] = "";
      for (size_t i = 0; i < nids; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", ids[i]);
      snprintf(why, sizeof why, "stream %s: certificate %s may not write it (not in the allow list %s)",
               h->stream, nids ? names : "(no identity)", r->opt.allow_file);
      rc = refuse(cx, -EACCES, SHIPLOG__REPL__ERROR_CODE__ERR_FORBIDDEN, true, why);
      goto out;
    }
  }
  /* Introduced (LIMITS): never evicted from here on. */
  pthread_mutex_lock(&r->mu);
  if (!atomic_load(&cx->evicted)) atomic_store(&cx->introduced, true);
  pthread_mutex_unlock(&r->mu);
  if (!atomic_load(&cx->introduced)) {
    rc = -ECONNABORTED;
    goto out;
  }
  if (h->store_id.len != SL_STORE_ID_SIZE) {
    snprintf(why, sizeof why, "stream %s: store id has %zu bytes, not %d", h->stream,
             h->store_id.len, SL_STORE_ID_SIZE);
    rc = refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_STORE_ID, true, why);
    goto out;
  }
  uint64_t first = 1;
  if (h->has_start && (h->start == SHIPLOG__REPL__START_KIND__START_FROM_TXID ||
                       h->start == SHIPLOG__REPL__START_KIND__START_SINCE_TIME) &&
      h->has_start_txid && h->start_txid > 0)
    first = h->start_txid;

  sl_history sh;
  if (sl_msg_history_get(h->history, h->n_history, &sh)) {
    snprintf(why, sizeof why, "stream %s: the hello's history is not a valid epoch list", h->stream);
    rc = refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, true, why);
    goto out;
  }
  sl__stream *s;
  rc = sl__stream_get(r, h->stream, h->store_id.data, first, h->has_start_checksum ? h->start_checksum : 0, &sh,
                      &s, why, sizeof why);
  if (rc == SL_ESTOREID) {
    rc = refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_STORE_ID, true, why);
    goto out;
  }
  if (rc) {
    rc = refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_IO, false, why);
    goto out;
  }
  /* Judge the lineage before taking the stream, against its durable
   * archive, so that a shipper refused for good never disconnects the live
   * owner; the archive only grows, so a refusal stays right. Judged again
   * once this connection owns the stream: the owner may have archived
   * more meanwhile. */
  sl_history rh;
  uint64_t r_last, r_cs;
  if (h->has_checksum && sl__stream_lineage(s, &rh, &r_last, &r_cs) &&
      (rc = judge_lineage(cx, s, h, &sh, &rh, r_last, r_cs)))
    goto out; /* logged, not put in the stream's status: its live owner is fine */
  rc = sl__stream_attach(s, cx->c, r->opt.timeout_ms, why, sizeof why);
  if (rc) { /* -EBUSY: another shipper is live on it, for good (stream.c); SL_ELOCKED: try again */
    rc = refuse(cx, rc, rc == SL_ELOCKED || rc == -EBUSY ? SHIPLOG__REPL__ERROR_CODE__ERR_BUSY
                                                         : SHIPLOG__REPL__ERROR_CODE__ERR_IO, rc == -EBUSY, why);
    goto out;
  }
  cx->s = s;
  if (h->has_checksum) {
    sl_log_history(s->log, &rh);
    r_last = sl_log_next_txid(s->log) - 1;
    rc = judge_lineage(cx, s, h, &sh, &rh, r_last, sl_log_checksum(s->log));
  }
  if (rc) {
    sl__stream_detach(s, cx->c);
    goto out;
  }
  sl__stream_note_primary(s, h->has_committed_txid ? h->committed_txid : 0,
                          h->has_primary_time_us ? h->primary_time_us : 0);
  pthread_mutex_lock(&s->mu);
  snprintf(s->primary_bolt, sizeof s->primary_bolt, "%s", h->bolt_address ? h->bolt_address : "");
  pthread_mutex_unlock(&s->mu);

  Shiplog__Repl__Message wm = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Welcome w = SHIPLOG__REPL__WELCOME__INIT;
  uint64_t durable, applied;
  sl__stream_positions(s, &durable, &applied);
  pthread_mutex_lock(&s->mu);
  uint64_t archive_first = s->first_txid;
  pthread_mutex_unlock(&s->mu);
  w.protocol_version = SL_PROTOCOL_VERSION;
  w.durable_txid = durable;
  w.has_applied_txid = w.has_first_txid = w.has_max_batch_bytes = true;
  w.applied_txid = applied;
  w.first_txid = archive_first;
  w.max_batch_bytes = (uint32_t)r->opt.max_batch_bytes;
  w.has_accepts_sealed = w.accepts_sealed = true;
  w.has_accepts_sealed_lz4 = w.accepts_sealed_lz4 = true;
  w.bolt_address = (char *)r->opt.bolt_address;
  Shiplog__Repl__EpochStart hist_msg[SL_HISTORY_MAX], *hist_ptrs[SL_HISTORY_MAX];
  sl_log_history(s->log, &rh);
  sl_msg_history_put(&rh, hist_msg, hist_ptrs, &w.history, &w.n_history);
  w.has_checksum = true;
  w.checksum = sl_log_checksum(s->log);
  cx->base_wanted = h->has_sends_base && h->sends_base && sl__stream_needs_base(s);
  w.has_need_base = cx->base_wanted;
  w.need_base = cx->base_wanted;
  wm.body_case = SHIPLOG__REPL__MESSAGE__BODY_WELCOME;
  wm.welcome = &w;
  rc = sl_conn_send(cx->c, &wm);
  cx->last_tx_ns = cx->last_rx_ns = sl_mono_ns();
  cx->sent_durable = durable;
  cx->sent_applied = applied;
  if (rc) {
    sl_diag_error("stream %s from %s: sending welcome: %s", s->name, sl_conn_peer(cx->c),
                 sl_strerror(rc));
    goto out;
  }
  sl_diag_info("stream %s from %s (%s): welcome, durable %llu, applied %llu%s", s->name,
              sl_conn_peer(cx->c), h->software ? h->software : "?", (unsigned long long)durable,
              (unsigned long long)applied, cx->base_wanted ? ", base wanted" : "");
  /* Past the hello: room for a whole compressed batch, one frame of the
   * largest size too (codec.h SL_BATCH_FRAME_MAX). */
  size_t raw = SL_MAX(r->opt.max_batch_bytes, (size_t)SL_BATCH_FRAME_MAX);
  cx->max_body = SL_MIN((size_t)SL_MSG_MAX, raw + raw / 255 + 16 + ENVELOPE_MAX);
out:
  sl_msg_free(m);
  return rc;
}

/* ---- streaming ------------------------------------------------------------------------ */

static Shiplog__Repl__ErrorCode batch_error_code(int rc) {
  switch (rc) {
  case SL_ETOOBIG: return SHIPLOG__REPL__ERROR_CODE__ERR_TOO_BIG;
  case SL_EGAP: return SHIPLOG__REPL__ERROR_CODE__ERR_GAP;
  case SL_ECORRUPT:
  case SL_ETIME: return SHIPLOG__REPL__ERROR_CODE__ERR_CORRUPT;
  case SL_EVERSION: return SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE;
  case SL_EINVAL: return SHIPLOG__REPL__ERROR_CODE__ERR_DIVERGED; /* an epoch the archive left behind */
  default: return SHIPLOG__REPL__ERROR_CODE__ERR_IO;
  }
}

/* SEALING AT THE RECEIVER (receiver.h, at-rest encryption): the frames of
 * a batch that came in clear, from txid `from` on (older ones are not
 * archived), sealed with the keyring's first key exactly as a shipper with
 * that key seals them (store/log.h SEALED FRAMES): the clear fields and the
 * rolling checksum over each frame's plaintext CRC, so lineage and restores
 * cannot tell where a frame was sealed. Into cx->sealed. */
static int seal_batch(sl__conn_ctx *cx, sl_keyring *kr, uint64_t from) {
  uint64_t txid; /* cs(from - 1) is the archive's end */
  return sl_batch_encrypt_frames(kr, cx->s->store_id, cx->raw.data, cx->raw.len, from, sl_log_checksum(cx->s->log),
                                 true, &cx->sealed, &txid);
}

/* Verify one batch and append its new frames (the group syncs them). */
static int on_batch(sl__conn_ctx *cx, const Shiplog__Repl__Batch *b) {
  sl__stream *s = cx->s;
  char why[600];
  unsigned long long first = b->first_txid, last = b->last_txid;
  int rc = sl_batch_open(b, SL_BATCH_LIMIT(cx->r->opt.max_batch_bytes, b->first_txid, b->last_txid), &cx->raw);
  if (rc) {
    snprintf(why, sizeof why, "batch txids %llu..%llu (%u raw bytes): %s", first, last,
             b->raw_len, sl_strerror(rc));
    return refuse(cx, rc, batch_error_code(rc), false, why);
  }
  if (b->key_id && !sl_crypt_key_id_valid(b->key_id)) {
    snprintf(why, sizeof why, "batch txids %llu..%llu: key id is not [A-Za-z0-9_-]{1,32}", first, last);
    return refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false, why);
  }
  sl_keyring *kr = cx->r->opt.keyring;
  const char *key = b->key_id ? b->key_id : kr ? sl_keyring_primary(kr) : NULL;
  sl__stream_set_key(s, key);
  uint64_t next = sl__stream_next_txid(s);
  if (b->first_txid > next) {
    snprintf(why, sizeof why, "batch txids %llu..%llu does not continue the archive, "
             "which expects txid %llu", first, last, (unsigned long long)next);
    return refuse(cx, SL_EGAP, SHIPLOG__REPL__ERROR_CODE__ERR_GAP, false, why);
  }
  if (b->last_txid >= next && b->has_checksum) {
    /* LINEAGE: the batch must continue the archive's history, checked
     * before anything of it is archived. */
    uint64_t cs = sl_log_checksum(s->log);
    if (sl_frames_lineage(cx->raw.data, cx->raw.len, next, &cs) == 0 && cs != b->checksum) {
      snprintf(why, sizeof why, "diverged: batch txids %llu..%llu does not continue the history of stream %s "
               "after txid %llu (rolling checksum mismatch); txids up to %llu on the shipper differ from the "
               "stream's. List them with `shiplog log STORE --diverged --data DIR --stream %s`",
               first, last, s->name, (unsigned long long)(next - 1), last, s->name);
      return refuse(cx, SL_EGAP, SHIPLOG__REPL__ERROR_CODE__ERR_DIVERGED, true, why);
    }
  }
  if (b->last_txid >= next) {
    const sl_buf *frames = &cx->raw;
    if (!b->key_id && kr) { /* at rest is at rest: sealed here what came in clear */
      rc = seal_batch(cx, kr, next);
      if (rc) {
        snprintf(why, sizeof why, "batch txids %llu..%llu: sealing with key %s: %s", first, last, key,
                 sl_strerror(rc));
        return refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_IO, false, why);
      }
      frames = &cx->sealed;
    }
    rc = sl__stream_append(s, frames->data, frames->len);
    if (rc) {
      snprintf(why, sizeof why, "batch txids %llu..%llu: archiving: %s", first, last,
               sl_strerror(rc));
      return refuse(cx, rc, batch_error_code(rc), rc == SL_EINVAL, why);
    }
  }
  sl__stream_note_batch(s, b->raw_len, b->has_last_commit_us ? b->last_commit_us : 0);
  sl__rx_metrics_batch(s, b->raw_len, b->data.len);
  sl__stream_note_primary(s, b->has_committed_txid ? b->committed_txid : 0,
                          b->has_sent_time_us ? b->sent_time_us : 0);
  return 0;
}

/* BASE SHIPPING: one base message, in order begin, chunks, end. */
static int on_base(sl__conn_ctx *cx, const Shiplog__Repl__Message *m) {
  char why[600];
  int rc;
  bool begin = m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN;
  if (!cx->base_wanted || begin == (cx->base != NULL)) {
    snprintf(why, sizeof why, "unexpected %s message (%s)", sl_msg_kind(m),
             !cx->base_wanted ? "no base was asked for" : begin ? "a base is in progress" : "no base begun");
    return refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false, why);
  }
  switch (m->body_case) {
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN:
    rc = sl__base_begin(cx->s, m->base_begin->txid, &cx->base, why, sizeof why);
    break;
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK:
    rc = sl__base_chunk(cx->base, m->base_chunk, cx->r->opt.max_batch_bytes, why, sizeof why);
    break;
  default:
    rc = sl__base_end(cx->base, m->base_end, why, sizeof why);
    cx->base = NULL; /* stored, or dropped */
    if (rc == 0) {
      cx->base_wanted = false;
      return send_ack(cx); /* the shipper waits for it: the base is durable here */
    }
    break;
  }
  if (rc == 0) return 0;
  return refuse(cx, rc, rc == SL_EINVAL || rc == SL_ESTOREID ? SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE
                        : rc < -10000 ? SHIPLOG__REPL__ERROR_CODE__ERR_CORRUPT : SHIPLOG__REPL__ERROR_CODE__ERR_IO,
                false, why);
}

static int on_message(sl__conn_ctx *cx, const Shiplog__Repl__Message *m, bool *batch) {
  char why[300];
  switch (m->body_case) {
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN:
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK:
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_END:
    return on_base(cx, m);
  case SHIPLOG__REPL__MESSAGE__BODY_BATCH:
    if (cx->base) return refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false,
                                "a batch inside a base (BaseEnd missing)");
    *batch = true;
    return on_batch(cx, m->batch);
  case SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT:
    sl__stream_note_primary(cx->s, m->heartbeat->has_committed_txid ? m->heartbeat->committed_txid : 0,
                            m->heartbeat->has_time_us ? m->heartbeat->time_us : 0);
    if (m->heartbeat->bolt_address) { /* ROUTING: the primary's serve started or stopped */
      pthread_mutex_lock(&cx->s->mu);
      snprintf(cx->s->primary_bolt, sizeof cx->s->primary_bolt, "%s", m->heartbeat->bolt_address);
      pthread_mutex_unlock(&cx->s->mu);
    }
    return 0;
  case SHIPLOG__REPL__MESSAGE__BODY_ERROR:
    sl_diag_error("stream %s from %s: the shipper reports error %d: %s", cx->s->name,
                 sl_conn_peer(cx->c), (int)m->error->code,
                 m->error->message ? m->error->message : "");
    /* A shipper that gives up leaves the stream behind: status says why. */
    sl__stream_set_error(cx->s, "shipper %s: %s", sl_conn_peer(cx->c),
                         m->error->message ? m->error->message : "gave up");
    return SL_EEND;
  default:
    snprintf(why, sizeof why, "unexpected %s message while streaming", sl_msg_kind(m));
    return refuse(cx, SL_EINVAL, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false, why);
  }
}

static bool conn_readable(sl_conn *c) {
  struct pollfd p = {.fd = sl_conn_fd(c), .events = POLLIN};
  return sl_conn_pending(c) || poll(&p, 1, 0) > 0;
}

/* One or more messages that are already waiting, then one sync and one Ack. */
static int receive_group(sl__conn_ctx *cx) {
  bool batch = false;
  size_t group_bytes = 0;
  /* Not longer than a heartbeat interval either: on a slow link the next
   * message is always partly there, and the peer must still hear from us. */
  uint64_t until = sl_mono_ns() + (uint64_t)cx->r->opt.heartbeat_ms * 1000000u;
  int rc;
  do {
    Shiplog__Repl__Message *m;
    rc = sl_conn_recv(cx->c, cx->r->opt.timeout_ms, cx->max_body, &m);
    if (rc) {
      recv_failed(cx, rc, "receiving");
      break;
    }
    cx->last_rx_ns = sl_mono_ns();
    sl__stream_heard(cx->s);
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BATCH) group_bytes += m->batch->raw_len;
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK) group_bytes += m->base_chunk->data.len;
    rc = on_message(cx, m, &batch);
    sl_msg_free(m);
  } while (rc == 0 && group_bytes < GROUP_MAX_BYTES && sl_mono_ns() < until && conn_readable(cx->c));
  /* The syncer makes it durable (stream.c, SYNCER); the Ack goes out when
   * it pokes. A batch that only repeated what is appended asks too: frames
   * left unsynced by a refused batch of an earlier session become durable
   * that way. What was appended before a failure is synced as the session
   * ends (serve). */
  if (batch && !sl__syncer_request(cx->s) && rc == 0) rc = send_ack(cx); /* durable already */
  return rc;
}

/* A poke: an Ack when durable or applied moved; a failed sync ends the
 * session (the archive is closed, as after a failed append). */
static int on_poke(sl__conn_ctx *cx) {
  uint64_t v, durable, applied;
  if (read(cx->s->notify_fd, &v, sizeof v) < 0 && errno != EAGAIN) return -errno;
  int src = sl__syncer_failed(cx->s);
  if (src) {
    char why[200];
    snprintf(why, sizeof why, "archive sync failed: %s", sl_strerror(src));
    refuse(cx, src, SHIPLOG__REPL__ERROR_CODE__ERR_IO, false, why);
    return src;
  }
  sl__stream_positions(cx->s, &durable, &applied);
  return applied != cx->sent_applied || durable != cx->sent_durable ? send_ack(cx) : 0;
}

static int serve(sl__conn_ctx *cx) {
  sl__receiver *r = cx->r;
  uint64_t hb_ns = (uint64_t)r->opt.heartbeat_ms * 1000000u;
  uint64_t to_ns = (uint64_t)r->opt.timeout_ms * 1000000u;
  int rc = sl__syncer_start(cx->s);
  while (rc == 0 && !*cx->stop) {
    uint64_t now = sl_mono_ns();
    uint64_t hb_due = cx->last_tx_ns + hb_ns, to_due = cx->last_rx_ns + to_ns;
    uint64_t due = SL_MIN(hb_due, to_due);
    int wait_ms = due > now ? (int)((due - now + 999999) / 1000000) : 0;
    struct pollfd p[2] = {{.fd = sl_conn_fd(cx->c), .events = POLLIN},
                          {.fd = cx->s->notify_fd, .events = POLLIN}};
    /* Bytes TLS already decrypted do not show on the socket. */
    bool pending = sl_conn_pending(cx->c);
    int n = poll(p, 2, pending ? 0 : SL_MIN(wait_ms, SL__POLL_MAX_MS));
    if (n < 0 && errno != EINTR) {
      rc = -errno;
      break;
    }
    if (pending) {
      p[0].revents |= POLLIN;
      n = n > 0 ? n : 1;
    }
    if (n > 0 && (p[1].revents & POLLIN) && (rc = on_poke(cx))) break;
    if (n > 0 && p[0].revents) {
      rc = receive_group(cx);
      if (rc) break;
    }
    /* Heartbeats go out while messages keep coming too: a shipper sending
     * a base over a slow link hears nothing else until the base is stored. */
    now = sl_mono_ns();
    if (now >= cx->last_rx_ns + to_ns) {
      sl_diag_error("stream %s from %s: nothing received for %d ms, closing", cx->s->name,
                   sl_conn_peer(cx->c), r->opt.timeout_ms);
      sl__stream_set_error(cx->s, "from %s: silent for %d ms", sl_conn_peer(cx->c),
                           r->opt.timeout_ms);
      rc = -ETIMEDOUT;
      break;
    }
    if (now >= cx->last_tx_ns + hb_ns) {
      rc = send_heartbeat(cx);
      if (rc) break;
    }
  }
  sl__syncer_stop(cx->s);
  sl__syncer_failed(cx->s); /* a failure after the last poke closes the archive too */
  sl__stream_sync(cx->s);   /* what this session appended, however it ends */
  return rc;
}

/* TLS on a new connection (secure receivers). A plain-TCP client is told in
 * plain framing that TLS is required; a refused certificate got its alert
 * from OpenSSL already. */
static int secure(sl__conn_ctx *cx) {
  sl__receiver *r = cx->r;
  int rc = sl_conn_tls_accept(cx->c, r->tls, r->opt.timeout_ms);
  if (rc == 0) {
    const char *const *ids;
    size_t n = sl_conn_identities(cx->c, &ids);
    /* Its certificate chains to our CA: a shipper, not a squatter. Never
     * evicted from here on (LIMITS), so that its Hello cannot lose a race
     * against the squatters' reconnects on a loaded machine. */
    pthread_mutex_lock(&r->mu);
    if (!atomic_load(&cx->evicted)) atomic_store(&cx->introduced, true);
    pthread_mutex_unlock(&r->mu);
    sl_diag_info("connection from %s: TLS 1.3, certificate %s", sl_conn_peer(cx->c),
                n ? ids[0] : "(no identity)");
    return 0;
  }
  if (rc == SL_EVERSION)
    return refuse(cx, rc, SHIPLOG__REPL__ERROR_CODE__ERR_VERSION, true,
                  "this receiver requires TLS: the shipper connected in plain TCP (give it "
                  "--tls-cert, --tls-key and --tls-ca)");
  sl__rx_metrics_rejected(r, NULL, SHIPLOG__REPL__ERROR_CODE__ERR_FORBIDDEN);
  sl__conn_log(cx, SL__NOTE_ERROR, "connection from %s: TLS handshake failed: %s", sl_conn_peer(cx->c),
           sl_conn_tls_error(cx->c)[0] ? sl_conn_tls_error(cx->c) : sl_strerror(rc));
  /* Let the alert reach the peer before the close (see sl_conn_linger). */
  cx->refused = (rc == SL_EAUTH || rc == SL_ECORRUPT) && !atomic_load(&cx->evicted);
  return rc;
}

void *sl__conn_main(void *arg) {
  sl__conn_ctx *cx = arg;
  sl_diag_context(NULL, sl_conn_peer(cx->c));
  sl__conn_log(cx, SL__NOTE_INFO, "connection from %s", sl_conn_peer(cx->c));
  /* Authentication and the Hello within HELLO_TIMEOUT_MS (at most
   * timeout_ms) of the accept. */
  sl_conn_set_deadline(cx->c, cx->accepted_ns + (uint64_t)sl__hello_ms(cx->r) * 1000000u);
  sl_conn_set_send_timeout(cx->c, cx->r->opt.timeout_ms);
  int rc = cx->r->tls ? secure(cx) : 0;
  if (rc == 0 && handshake(cx) == 0) {
    sl_diag_context(cx->s->name, sl_conn_peer(cx->c));
    serve(cx);
    sl__base_abort(cx->base); /* a session that ended inside a base */
    cx->base = NULL;
  }
  /* Whatever ended the session, even a failed Welcome after the attach:
   * an owner left behind would refuse every later shipper of the stream. */
  if (cx->s) sl__stream_detach(cx->s, cx->c);
  if (cx->refused && !atomic_load(&cx->evicted)) sl_conn_linger(cx->c, LINGER_MS, cx->stop);
  sl_buf_free(&cx->raw);
  sl_buf_free(&cx->sealed);
  pthread_mutex_lock(&cx->r->mu);
  cx->done = true;
  pthread_mutex_unlock(&cx->r->mu);
  return NULL;
}
