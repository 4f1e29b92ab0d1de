/*
 * shipper.c: the shipping session (shipper.h): tail the durable log, batch,
 * compress, send, and record what the receiver made durable.
 *
 * SESSION STATES (the state each function leaves the shipper in; the
 * status file names them connecting / streaming / backoff / stopped /
 * failed, and HANDSHAKE reports as "connecting")
 *
 *                      session_connect()            on_welcome()
 *      +-> CONNECTING --------------------> HANDSHAKE -----------> STREAMING --+
 *      |        |  TCP (+TLS) up, Hello sent    |     start found,     |        |
 *      |        |                               |     consumer set     |        |
 *      |        | transient()                   | transient()          |        | stop flag,
 *      |        | (connect failed)              | (Error, timeout,     |        | caught up
 *      |        v                               |  closed)             |        | (session_stream)
 *      +---- BACKOFF <--------------------------+----------------------+        v
 *    session_backoff()  ^            transient(): network error, silent      STOPPED
 *    (100 ms .. max,    |            receiver, transient Error{}
 *     with jitter)      |
 *                       |  fatal(): Error{permanent}, receiver ahead of the log,
 *                       +- start pruned, damaged log, local I/O, a certificate
 *                          refused by either side (SL_EAUTH)  ------------------> FAILED
 *
 * BASE: when the Welcome asks for a base (need_base; proto/replication.proto,
 * BASE SHIPPING), on_welcome() leaves the shipper in BASE instead of
 * STREAMING; session_base() sends it and moves on to STREAMING, or fails
 * like any session (transient: the next session starts the base again).
 *
 * Every function that fails has already moved the state (transient() or
 * fatal()) and logged; callers only check the state.
 *
 * BATCH WIRE FORMAT: codec.h (BATCH PAYLOAD) is its one description, with
 * the framing; proto/replication.proto has the messages. Here a keyed
 * batch's frames are sealed on the thread that seals the batch (pipeline.c, PIPELINE).
 *
 * POSITIONS (txids, inclusive unless said otherwise)
 *   committed  the log's durable mark as last read (tail.h)
 *   next       tail's next txid (exclusive: the next frame to batch)
 *   shipped    last txid handed to the socket
 *   durable    last txid the receiver acknowledged as fsynced (Ack)
 *   applied    last txid the receiver reports visible on its standby
 * applied <= durable <= shipped < next <= committed + 1. Only `durable`
 * may become the store's consumer position ("ship-STREAM"), so the primary
 * keeps every segment the receiver could still ask for after a crash.
 *
 * The names in the diagram are those of this file's static functions;
 * transient() and fatal() are sl__ship_transient() and sl__ship_fatal(),
 * session_stream is sl__ship_session_stream() (pipeline.c) and the BASE
 * state's sl__ship_session_base() is in base.c.
 *
 * FILES. This file is the session: connect, handshake, acknowledgements,
 * backoff, setup and the status file. pipeline.c holds the batches on their
 * way (FLOW, PIPELINE: the slots, the sealer thread, the send window and the
 * STREAMING loop), base.c the BASE state, reporter.c the background writer
 * of the consumer position and the status file (BACKGROUND WRITER);
 * shipper_int.h is what they share.
 */
#include "shipper_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sl_status.h"

/* Every transaction a store commits ships, sealed or not (log.h, SIZE LIMITS). */
_Static_assert(SL_TXN_MAX + SL_CRYPT_FRAME_EXTRA <= SL_FRAME_SHIP_MAX, "a sealed transaction must fit a frame");

static const char *const state_name[] = {"connecting", "connecting", "streaming",
                                         "backoff", "stopped", "failed", "sending-base"};

/* ---- the shipper: failures, reports, sends ------------------------------------------ */

static const char *err_code_name(Shiplog__Repl__ErrorCode code) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&shiplog__repl__error_code__descriptor, (int)code);
  return v ? v->name : "ERR_UNKNOWN";
}

void sl__ship_disconnect(shipper *s) {
  if (s->conn) {
    sl__io_forget(s->io, s->fd);
    sl_conn_close(s->conn);
  }
  s->conn = NULL;
  s->fd = -1;
  s->rbuf.len = 0;
  sl__ship_sealer_reset(&s->z);
  s->to_send = 0;
  for (int i = 0; i < SLOTS; i++) s->slots[i].raw.len = 0;
  s->q_applied = s->q_durable = s->q_end = 0;
  s->inflight = 0;
}

static void set_error(shipper *s, const char *fmt, va_list ap) {
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  /* One line: the status file is key=value lines, and the text may carry a
   * receiver's message. */
  for (char *c = s->error; *c; c++)
    if ((unsigned char)*c < 0x20) *c = ' ';
  s->report_dirty = true;
}

/* A failure worth retrying: close, go to BACKOFF; log it unless the same
 * failure was logged last time (a receiver down for an hour is one line). */
__attribute__((format(printf, 3, 4))) int sl__ship_transient(shipper *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error(s, fmt, ap);
  va_end(ap);
  if (rc != s->logged_rc) sl_diag_warn("%s; retrying", s->error);
  s->logged_rc = rc;
  sl__ship_disconnect(s);
  s->st = ST_BACKOFF;
  return rc;
}

/* A failure that ends the shipper (exit 1). fmt NULL: already logged. */
__attribute__((format(printf, 3, 4))) int sl__ship_fatal(shipper *s, int rc, const char *fmt, ...) {
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    set_error(s, fmt, ap);
    va_end(ap);
    sl_diag_error("%s", s->error);
  } else {
    snprintf(s->error, sizeof s->error, "%s", sl_strerror(rc));
  }
  sl__ship_disconnect(s);
  s->st = ST_FAILED;
  s->rc = rc;
  return rc;
}

void sl__ship_report(shipper *s, uint64_t now_ns) {
  uint64_t now_us = sl_now_us();
  uint64_t lag_ms = 0;
  if (s->applied < s->committed && s->applied_commit_us && now_us > s->applied_commit_us)
    lag_ms = (now_us - s->applied_commit_us) / 1000;
  char text[2048];
  snprintf(text, sizeof text,
           "state=%s\npeer=%s\ncommitted=%llu\nshipped=%llu\ndurable=%llu\napplied=%llu\n"
           "bytes=%llu\nbatches=%llu\nreconnects=%llu\nlag_ms=%llu\nio=%s\nupdated_us=%llu\n"
           "bolt=%s\nerror=%s\n",
           state_name[s->st], s->opt->to, (unsigned long long)s->committed,
           (unsigned long long)s->shipped, (unsigned long long)s->durable,
           (unsigned long long)s->applied, (unsigned long long)s->bytes,
           (unsigned long long)s->batches, (unsigned long long)s->reconnects,
           (unsigned long long)lag_ms, sl__io_name(s->io), (unsigned long long)now_us, s->standby_bolt, s->error);
  sl__ship_reporter_status(&s->rep, text);
  sl__ship_metrics_report(s->mx, &(sl__ship_numbers){
      .streaming = s->st == ST_STREAMING, .committed = s->committed, .shipped = s->shipped,
      .durable = s->durable, .applied = s->applied, .applied_commit_us = s->applied_commit_us,
      .bytes = s->bytes, .compressed_bytes = s->compressed_bytes, .batches = s->batches,
      .reconnects = s->reconnects});
  s->report_ns = now_ns;
  s->report_dirty = false;
}

/* Whole bytes to the receiver: through the TLS session, or the backend's
 * send on the plain socket. */
int sl__ship_send_bytes(shipper *s, const uint8_t *buf, size_t len) {
  if (s->tls) return sl_conn_write_all(s->conn, buf, len, s->timeout_ms);
  int rc = sl_fault(SL_FAULT_NET_SEND);
  return rc ? rc : sl__io_send_all(s->io, s->fd, buf, len, s->timeout_ms);
}

/* A failed send or receive: a refused certificate ends the shipper. */
int sl__ship_net_failed(shipper *s, int rc, const char *what) {
  if (rc == SL_EAUTH)
    return sl__ship_fatal(s, rc, "TLS with receiver %s: %s", s->opt->to, sl_conn_tls_error(s->conn));
  if (s->tls && (rc == SL_ECORRUPT || rc == SL_EEND) && sl_conn_tls_error(s->conn)[0])
    return sl__ship_transient(s, rc, "%s %s: %s", what, s->opt->to, sl_conn_tls_error(s->conn));
  return sl__ship_transient(s, rc, "%s %s: %s", what, s->opt->to, sl_strerror(rc));
}

int sl__ship_send_msg(shipper *s, const Shiplog__Repl__Message *m) {
  s->sbuf.len = 0;
  int rc = sl_msg_encode(m, &s->sbuf);
  if (rc == 0) rc = sl__ship_send_bytes(s, s->sbuf.data, s->sbuf.len);
  if (rc) return sl__ship_net_failed(s, rc, "send to");
  s->last_send_ns = sl_mono_ns();
  return 0;
}

int sl__ship_refresh_mark(shipper *s) {
  s->mark_dirty = false;
  int rc = sl__tail_refresh(s->tail);
  if (rc) return sl__ship_fatal(s, rc, NULL);
  uint64_t d = sl__tail_durable(s->tail);
  if (d != s->committed) {
    s->committed = d;
    s->report_dirty = true;
  }
  return 0;
}

/* ---- edges out of CONNECTING ---------------------------------------------------- */

static int session_connect(shipper *s) {
  /* Bounded so that a stop request during a connect to a silent host is
   * honoured within seconds. */
  int rc = sl_conn_connect(s->opt->to, SL_MIN(s->timeout_ms, 5000), &s->conn);
  if (rc) {
    s->conn = NULL;
    return sl__ship_transient(s, rc, "cannot connect to receiver %s: %s", s->opt->to, sl_strerror(rc));
  }
  s->fd = sl_conn_fd(s->conn);
  if (s->tls && (rc = sl_conn_tls_connect(s->conn, s->tls, s->server_name, SL_MIN(s->timeout_ms, 5000)))) {
    /* A certificate refused (ours by the receiver, or the receiver's by
     * us) or a receiver that does not speak TLS: configuration, so final. */
    if (rc == SL_EAUTH)
      return sl__ship_fatal(s, rc, "TLS handshake with receiver %s: %s", s->opt->to,
                            sl_conn_tls_error(s->conn));
    return sl__ship_transient(s, rc, "TLS handshake with receiver %s: %s", s->opt->to,
                              sl_conn_tls_error(s->conn)[0] ? sl_conn_tls_error(s->conn) : sl_strerror(rc));
  }
  if ((rc = sl_buf_reserve(&s->rbuf, RECV_BUF_BYTES))) return sl__ship_fatal(s, rc, "out of memory");
  if ((rc = sl__ship_refresh_mark(s))) return rc;

  Shiplog__Repl__Hello h = SHIPLOG__REPL__HELLO__INIT;
  h.protocol_version = SL_PROTOCOL_VERSION;
  h.stream = (char *)s->opt->stream;
  h.store_id.data = s->store_id;
  h.store_id.len = SL_STORE_ID_SIZE;
  h.has_start = true;
  h.start = SHIPLOG__REPL__START_KIND__START_RESUME;
  if ((rc = sl__tail_oldest(s->tail, &s->oldest)))
    return sl__ship_fatal(s, rc, "%s: cannot list the log: %s", s->logdir, sl_strerror(rc));
  if (s->opt->from_txid) {
    h.start = SHIPLOG__REPL__START_KIND__START_FROM_TXID;
    h.has_start_txid = true;
    h.start_txid = s->opt->from_txid;
  } else if (s->opt->has_since) {
    h.start = SHIPLOG__REPL__START_KIND__START_SINCE_TIME;
    h.has_start_txid = true;
    h.start_txid = s->since_txid;
    h.has_since_time_us = true;
    h.since_time_us = s->opt->since_us;
  } else if (s->oldest > 1) {
    /* A new stream must start where the log does; a receiver that already
     * holds the stream ignores this and answers with its durable txid. */
    h.start = SHIPLOG__REPL__START_KIND__START_FROM_TXID;
    h.has_start_txid = true;
    h.start_txid = s->oldest;
  }
  h.has_committed_txid = true;
  h.committed_txid = s->committed;
  sl__ship_bolt_changed(s);
  if (s->primary_bolt[0]) h.bolt_address = s->primary_bolt;
  /* LINEAGE: what the receiver judges this store's history by. */
  h.has_checksum = h.has_start_checksum = true;
  if ((rc = sl_history_load(s->logdir, &s->hist)) ||
      (rc = sl_log_checksum_at(s->logdir, s->committed, &h.checksum)) ||
      (rc = sl_log_checksum_at(s->logdir, (h.has_start_txid ? h.start_txid : 1) - 1, &h.start_checksum)))
    return sl__ship_fatal(s, rc, "%s: cannot read the log's lineage: %s", s->logdir, sl_strerror(rc));
  sl_msg_history_put(&s->hist, s->hist_msg, s->hist_ptrs, &h.history, &h.n_history);
  h.has_epoch = true;
  h.epoch = sl_history_epoch(&s->hist);
  h.has_primary_time_us = true;
  h.primary_time_us = sl_now_us();
  h.software = (char *)sl_software();
  h.has_sends_base = h.sends_base = true;
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HELLO;
  m.hello = &h;
  if ((rc = sl__ship_send_msg(s, &m))) return rc;
  s->last_recv_ns = sl_mono_ns();
  s->st = ST_HANDSHAKE;
  s->report_dirty = true;
  return 0;
}

/* ---- edges out of HANDSHAKE ------------------------------------------------------- */

static int on_welcome(shipper *s, const Shiplog__Repl__Welcome *w) {
  const sl_shipper_options *o = s->opt;
  uint64_t d = w->durable_txid, start;
  int rc = sl__ship_refresh_mark(s);
  if (rc) return rc;
  bool first = s->sessions++ == 0;
  if (!first) s->reconnects++;
  snprintf(s->standby_bolt, sizeof s->standby_bolt, "%s", w->bolt_address ? w->bolt_address : "");

  s->recv_limit = SL_BATCH_RAW_MAX;
  if (w->has_max_batch_bytes && w->max_batch_bytes > 0 && w->max_batch_bytes < s->recv_limit)
    s->recv_limit = w->max_batch_bytes;
  s->batch_cap = SL_MIN(s->batch_max, s->recv_limit);

  if (o->keyring && !(w->has_accepts_sealed && w->accepts_sealed))
    return sl__ship_fatal(s, SL_EVERSION,
                          "receiver %s does not archive sealed frames (an older shiplog): upgrade it, or ship "
                          "without --key-file", o->to);
  s->sealed_lz4 = w->has_accepts_sealed_lz4 && w->accepts_sealed_lz4;
  if (d > s->committed)
    return sl__ship_fatal(s, SL_EGAP,
                          "receiver %s holds stream %s up to txid %llu, but this store's log is durable "
                          "only up to txid %llu: not the history it was shipped from",
                          o->to, o->stream, (unsigned long long)d, (unsigned long long)s->committed);
  if (d > 0) {
    start = d + 1;
    if (first && (o->from_txid || o->has_since))
      sl_diag_warn("stream %s on %s already holds txids up to %llu; resuming at %llu (%s applies "
                  "only to a new stream)", o->stream, o->to, (unsigned long long)d,
                  (unsigned long long)start, o->from_txid ? "--from-txid" : "--since");
  } else if (o->from_txid) {
    start = o->from_txid;
  } else if (o->has_since) {
    start = s->since_txid;
  } else {
    start = s->oldest;
    if (start > 1 && first)
      sl_diag_warn("%s: the log starts at txid %llu (older segments were pruned); shipping "
                  "stream %s from there", s->logdir, (unsigned long long)start, o->stream);
  }
  if (start > s->committed + 1)
    return sl__ship_fatal(s, SL_EGAP, "cannot ship from txid %llu: %s is durable only up to txid %llu",
                          (unsigned long long)start, s->logdir, (unsigned long long)s->committed);

  /* Protect the segments we are about to read before reading them. */
  if ((rc = sl__ship_reporter_consumer(&s->rep, start - 1, true)))
    return sl__ship_fatal(s, rc, "%s: cannot record consumer %s: %s", s->logdir, s->rep.consumer,
                          sl_strerror(rc));
  /* The name older versions shared among every receiver of the stream:
   * ours is on disk now, so it holds nothing we need. */
  char legacy[80];
  snprintf(legacy, sizeof legacy, "ship-%s", o->stream);
  if (first && sl_log_consumer_remove(s->logdir, legacy) == 0)
    sl_diag_info("%s: consumer %s (the name older versions shared among every receiver of stream %s) replaced "
                 "by %s", s->logdir, legacy, o->stream, s->rep.consumer);
  rc = sl__tail_seek(s->tail, start);
  if (rc == SL_ENOTFOUND)
    return sl__ship_fatal(s, rc, "%s: segment for txid %llu was removed", s->logdir,
                          (unsigned long long)start);
  if (rc) return sl__ship_fatal(s, rc, NULL);
  if ((rc = sl_log_checksum_at(s->logdir, start - 1, &s->cs)))
    return sl__ship_fatal(s, rc, "%s: cannot read the log's checksum at txid %llu: %s", s->logdir,
                          (unsigned long long)(start - 1), sl_strerror(rc));
  sl__tail_set_checksum(s->tail, s->cs);

  s->shipped = s->confirmed = start - 1;
  s->durable = d;
  s->applied = w->has_applied_txid ? w->applied_txid : 0;
  s->applied_commit_us = 0;
  s->st = w->has_need_base && w->need_base ? ST_BASE : ST_STREAMING;
  s->backoff_ms = 0;
  s->caught_up_ns = 0;
  s->error[0] = 0;
  s->report_dirty = true;
  s->last_send_ns = s->last_recv_ns = sl_mono_ns();
  sl_diag_info("shipping stream %s to %s from txid %llu (%s, %s)", o->stream, o->to,
              (unsigned long long)start, sl__io_name(s->io), s->tls ? "TLS 1.3" : "plain TCP");
  if (first && o->on_ready) o->on_ready(o->ready_arg);
  return 0;
}

/* The session works again (the receiver acknowledged something, or there
 * was nothing to acknowledge): end the quiet period of a logged failure. */
void sl__ship_recovered(shipper *s) {
  if (!s->logged_rc) return;
  sl_diag_warn("receiver %s takes stream %s again (durable txid %llu)", s->opt->to, s->opt->stream,
              (unsigned long long)s->durable);
  s->logged_rc = 0;
}

static int on_error_msg(shipper *s, const Shiplog__Repl__Error *e) {
  int rc;
  switch (e->code) {
  case SHIPLOG__REPL__ERROR_CODE__ERR_VERSION: rc = SL_EVERSION; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_STORE_ID: rc = SL_ESTOREID; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_GAP: rc = SL_EGAP; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_DIVERGED: rc = SL_EGAP; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_CORRUPT: rc = SL_ECORRUPT; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_TOO_BIG: rc = SL_ETOOBIG; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_UNKNOWN_STREAM: rc = SL_ENOTFOUND; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_FORBIDDEN: rc = -EACCES; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_IO: rc = -EIO; break;
  case SHIPLOG__REPL__ERROR_CODE__ERR_BUSY: rc = -EBUSY; break;
  default: rc = SL_EINVAL; break;
  }
  const char *text = e->message ? e->message : "";
  sl__ship_metrics_refused(s->mx, err_code_name(e->code));
  if (e->has_permanent && e->permanent)
    return sl__ship_fatal(s, rc, "receiver %s refused stream %s: %s (%s)", s->opt->to, s->opt->stream, text,
                          err_code_name(e->code));
  return sl__ship_transient(s, rc, "receiver %s refused stream %s: %s (%s)", s->opt->to, s->opt->stream,
                            text, err_code_name(e->code));
}

/* ---- acknowledgements ---------------------------------------------------------------- */

static int on_positions(shipper *s, uint64_t durable, bool has_applied, uint64_t applied) {
  if (durable > s->shipped)
    return sl__ship_transient(s, SL_EINVAL, "receiver %s acknowledged txid %llu, but only %llu was shipped",
                              s->opt->to, (unsigned long long)durable, (unsigned long long)s->shipped);
  if (durable > s->durable) {
    sl__ship_recovered(s);
    s->durable = durable;
    while (s->q_durable < s->q_end && s->q[s->q_durable % SENT_RING].last_txid <= durable) {
      sl__ship_metrics_durable(s->mx, s->q[s->q_durable % SENT_RING].commit_us);
      s->inflight -= s->q[s->q_durable++ % SENT_RING].bytes;
    }
    s->report_dirty = true;
  }
  if (durable > s->confirmed) {
    s->confirmed = durable;
    sl__ship_reporter_consumer(&s->rep, durable, false);
  }
  if (has_applied && applied > s->applied) {
    s->applied = SL_MIN(applied, s->durable);
    while (s->q_applied < s->q_durable && s->q[s->q_applied % SENT_RING].last_txid <= s->applied) {
      s->applied_commit_us = s->q[s->q_applied++ % SENT_RING].commit_us;
      sl__ship_metrics_applied(s->mx, s->applied_commit_us);
    }
    s->report_dirty = true;
  }
  sl__ship_window_check(s);
  return 0;
}

static int handle_msg(shipper *s, const Shiplog__Repl__Message *m) {
  switch (m->body_case) {
  case SHIPLOG__REPL__MESSAGE__BODY_WELCOME:
    if (s->st == ST_HANDSHAKE) return on_welcome(s, m->welcome);
    break;
  case SHIPLOG__REPL__MESSAGE__BODY_ACK:
    s->acks++;
    if (s->st == ST_STREAMING || s->st == ST_BASE)
      return on_positions(s, m->ack->durable_txid, m->ack->has_applied_txid, m->ack->applied_txid);
    break;
  case SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT:
    if ((s->st == ST_STREAMING || s->st == ST_BASE) && m->heartbeat->has_durable_txid)
      return on_positions(s, m->heartbeat->durable_txid, m->heartbeat->has_applied_txid,
                          m->heartbeat->applied_txid);
    return 0;
  case SHIPLOG__REPL__MESSAGE__BODY_ERROR: return on_error_msg(s, m->error);
  default: break;
  }
  return sl__ship_transient(s, SL_EINVAL, "receiver %s sent an unexpected %s message", s->opt->to,
                            sl_msg_kind(m));
}

/* Received bytes: decode and handle every whole message, keep the rest. */
static int on_received(shipper *s, long got) {
  if (got == 0) return sl__ship_transient(s, SL_EEND, "receiver %s closed the connection", s->opt->to);
  if (got < 0) return sl__ship_net_failed(s, (int)got, "receive from");
  s->rbuf.len += (size_t)got;
  s->last_recv_ns = sl_mono_ns();
  size_t off = 0;
  int rc;
  for (;;) {
    Shiplog__Repl__Message *m;
    size_t used;
    rc = sl_msg_decode(s->rbuf.data + off, s->rbuf.len - off, RECV_MAX_BODY, &m, &used);
    if (rc) break;
    rc = handle_msg(s, m);
    sl_msg_free(m);
    if (rc || (s->st != ST_HANDSHAKE && s->st != ST_STREAMING && s->st != ST_BASE)) return rc;
    off += used;
  }
  if (rc != SL_ETRUNCATED)
    return sl__ship_transient(s, rc, "bad message from receiver %s: %s", s->opt->to, sl_strerror(rc));
  memmove(s->rbuf.data, s->rbuf.data + off, s->rbuf.len - off);
  s->rbuf.len -= off;
  /* Room for the whole next message (nothing is in flight on rbuf now). */
  size_t need = RECV_BUF_BYTES;
  if (s->rbuf.len >= SL_MSG_HEADER_SIZE) need = SL_MSG_HEADER_SIZE + sl_get_le32(s->rbuf.data) + 4096;
  if ((rc = sl_buf_reserve(&s->rbuf, need))) return sl__ship_fatal(s, rc, "out of memory");
  return 0;
}

/* TLS: read what the session has for us (the socket was readable, or the
 * session holds decrypted bytes), until it has nothing more. */
static int tls_receive(shipper *s) {
  while (s->fd >= 0) {
    long got = sl_conn_read_some(s->conn, s->rbuf.data + s->rbuf.len, s->rbuf.cap - s->rbuf.len);
    if (got == -EAGAIN) return 0;
    int rc = on_received(s, got);
    if (rc || s->fd < 0 || !sl_conn_pending(s->conn)) return rc;
  }
  return 0;
}

/* Wait for the log, the receiver or timeout_ms, and handle what came. */
int sl__ship_pump(shipper *s, int timeout_ms) {
  bool pending = s->tls && s->fd >= 0 && sl_conn_pending(s->conn);
  sl__io_waitset w = {.notify_fd = sl__tail_notify_fd(s->tail), .sock_fd = s->fd,
                   .sock_poll = s->tls != NULL, .timeout_ms = pending ? 0 : timeout_ms};
  if (s->fd >= 0 && !s->tls) {
    w.recv_buf = s->rbuf.data + s->rbuf.len;
    w.recv_len = s->rbuf.cap - s->rbuf.len;
  }
  sl__io_events ev;
  int rc = sl__io_wait(s->io, &w, &ev);
  if (rc) return sl__ship_fatal(s, rc, "%s: wait: %s", sl__io_name(s->io), sl_strerror(rc));
  if (ev.ready & SL__IO_NOTIFY) sl__tail_notify(s->tail, ev.notify, ev.notify_len);
  /* Also after a quiet wait: inotify is the fast path, not the only one. */
  if ((ev.ready & SL__IO_NOTIFY) || ev.ready == 0) s->mark_dirty = true;
  if (ev.ready & SL__IO_RECV) return on_received(s, ev.received);
  if ((ev.ready & SL__IO_READABLE) || pending) return tls_receive(s);
  return 0;
}

static int session_handshake(shipper *s) {
  while (s->st == ST_HANDSHAKE) {
    if (*s->stop) {
      sl__ship_disconnect(s);
      s->st = ST_STOPPED;
      return 0;
    }
    uint64_t now = sl_mono_ns(), until = s->last_recv_ns + (uint64_t)s->timeout_ms * 1000000u;
    if (now >= until)
      return sl__ship_transient(s, -ETIMEDOUT, "receiver %s did not answer the hello within %d ms",
                                s->opt->to, s->timeout_ms);
    int rc = sl__ship_pump(s, (int)SL_MIN((until - now) / 1000000u + 1, (uint64_t)IDLE_WAKE_MS));
    if (rc) return rc;
  }
  return 0;
}

/* ---- BACKOFF ------------------------------------------------------------------------------ */

static int session_backoff(shipper *s) {
  s->backoff_ms = s->backoff_ms ? SL_MIN(2 * s->backoff_ms, s->backoff_max_ms) : BACKOFF_MIN_MS;
  /* xorshift jitter: wait between half and all of the delay, so that many
   * shippers of one restarted receiver don't come back in step. */
  s->rng ^= s->rng << 13;
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  uint64_t delay_ms = (uint64_t)s->backoff_ms / 2 + s->rng % ((uint64_t)s->backoff_ms / 2 + 1);
  uint64_t until = sl_mono_ns() + delay_ms * 1000000u;
  sl__ship_report(s, sl_mono_ns());
  for (;;) {
    if (*s->stop) {
      s->st = ST_STOPPED;
      return 0;
    }
    uint64_t now = sl_mono_ns();
    if (now >= until) break;
    int rc = sl__ship_pump(s, (int)SL_MIN((until - now) / 1000000u + 1, (uint64_t)IDLE_WAKE_MS));
    if (rc) return rc;
  }
  s->st = ST_CONNECTING;
  return 0;
}

/* ---- setup ------------------------------------------------------------------------------------ */

/* CASCADE: a receiver's stream directory (DIR/streams/NAME) as the source:
 * its archive is a log like any store's, whose durable mark the receiver
 * keeps, so the tail ships exactly what that receiver made durable. The
 * store id is the archive's (its first segment's header). */
static int read_archive_id(shipper *s) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  uint8_t hdr[SL_SEG_HEADER_SIZE];
  sl_seg_header h;
  int rc = sl_log_list(s->logdir, &segs, &n);
  if (rc) return rc;
  rc = SL_ENOTFOUND;
  int fd = n ? open(segs[0].path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd >= 0 && sl_pread_full(fd, hdr, sizeof hdr, 0) == (long)sizeof hdr && sl_seg_header_decode(hdr, &h) == 0) {
    memcpy(s->store_id, h.store_id, SL_STORE_ID_SIZE);
    rc = 0;
  }
  if (fd >= 0) close(fd);
  if (rc) sl_diag_error("%s: no readable archive segment to take the store id from", s->logdir);
  free(segs);
  return rc;
}

/* STORE/store.id through the store's own reader (sl_store_read_id), not
 * sl_store_open(): opening the store's LMDB environment a second time in a
 * process that already has it open (a shipper thread embedded next to the
 * writer, bench_ship) would break LMDB's locks. */
static int read_store_id(shipper *s) {
  if (s->cascade) return read_archive_id(s);
  return sl_store_read_id(s->opt->store_dir, s->store_id);
}

/* ALIVE LOCK (shipper.h): byte 0 of ship/STREAM.lock. */
static int alive_lock_path(const char *shipdir, const char *stream, char *out, size_t len) {
  return snprintf(out, len, "%s/%s.lock", shipdir, stream) >= (int)len ? -ENAMETOOLONG : 0;
}

static void open_alive_lock(shipper *s, const char *shipdir) {
  char path[PATH_MAX];
  if (alive_lock_path(shipdir, s->opt->stream, path, sizeof path)) return;
  if ((s->rep.alive_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
    sl_diag_warn("%s: %s: shiplog status will say this shipper is not running", path, strerror(errno));
  else if (!sl__ship_reporter_own(&s->rep))
    sl_diag_info("stream %s: another shipper of it writes %s; this one reports to its log only",
                 s->opt->stream, s->rep.status_path);
}

/* Does a process hold the ALIVE LOCK of STREAM? A lock that cannot be
 * tested counts as held: the status file then speaks for itself. */
static bool shipper_alive(const char *store_dir, const char *stream) {
  char shipdir[PATH_MAX], path[PATH_MAX];
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  snprintf(shipdir, sizeof shipdir, "%s/ship", store_dir);
  if (alive_lock_path(shipdir, stream, path, sizeof path)) return true;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  bool held = fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK;
  close(fd);
  return held;
}

static int setup(shipper *s, const sl_shipper_options *opt, atomic_int *stop) {
  int rc;
  s->opt = opt;
  s->stop = stop;
  s->fd = -1;
  s->lock_fd = -1;
  s->rep.alive_fd = -1;
  s->batch_max = opt->batch_max_bytes ? opt->batch_max_bytes : DEFAULT_BATCH_BYTES;
  s->batch_max = SL_MIN(s->batch_max, (size_t)SL_BATCH_RAW_MAX);
  s->batch_cap = s->batch_max;
  s->window = opt->window_bytes ? opt->window_bytes : DEFAULT_WINDOW_BYTES;
  s->heartbeat_ms = opt->heartbeat_ms > 0 ? opt->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
  s->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
  s->backoff_max_ms = opt->backoff_max_ms > 0 ? opt->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
  s->backoff_max_ms = SL_MAX(s->backoff_max_ms, BACKOFF_MIN_MS);
  s->rng = sl_mono_ns() | 1;
  s->mark_dirty = true;
  if (!opt->store_dir || !opt->to || !opt->stream) {
    sl_diag_error("shipper: store, receiver address and stream are required");
    return SL_EINVAL;
  }
  if (!sl_stream_name_valid(opt->stream)) {
    sl_diag_error("stream name '%s' is not valid ([A-Za-z0-9_.-]{1,64})", opt->stream);
    return SL_EINVAL;
  }
  bool tls = opt->tls_cert || opt->tls_key || opt->tls_ca || opt->tls_server_name;
  if (tls == opt->insecure) {
    sl_diag_error(tls ? "shipper: TLS files and insecure (plain TCP) both given: choose one"
                     : "shipper: give a TLS certificate, key and CA, or choose insecure plain TCP");
    return SL_EINVAL;
  }
  if (tls) {
    char port[16];
    if (opt->tls_server_name) {
      snprintf(s->server_name, sizeof s->server_name, "%s", opt->tls_server_name);
    } else if (sl_hostport_parse(opt->to, s->server_name, sizeof s->server_name, port, sizeof port)) {
      sl_diag_error("receiver address '%s' is not HOST:PORT", opt->to);
      return SL_EINVAL;
    }
    if ((rc = sl_tls_ctx_new(false, opt->tls_cert, opt->tls_key, opt->tls_ca, &s->tls))) return rc;
  }
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/" SL_STORE_ID_FILE, opt->store_dir);
  if (access(probe, F_OK) != 0) {
    snprintf(probe, sizeof probe, "%s/archive", opt->store_dir);
    s->cascade = access(probe, F_OK) == 0;
  }
  if (snprintf(s->logdir, sizeof s->logdir, "%s/%s", opt->store_dir, s->cascade ? "archive" : "log") >=
      (int)sizeof s->logdir)
    return -ENAMETOOLONG;
  snprintf(s->rep.logdir, sizeof s->rep.logdir, "%s", s->logdir);
  sl_ship_consumer_name(opt->stream, opt->to, s->rep.consumer, sizeof s->rep.consumer);
  char shipdir[PATH_MAX];
  snprintf(shipdir, sizeof shipdir, "%s/ship", opt->store_dir);
  if (snprintf(s->rep.status_path, sizeof s->rep.status_path, "%s/%s.status", shipdir,
               opt->stream) >= (int)sizeof s->rep.status_path)
    return -ENAMETOOLONG;

  if ((rc = read_store_id(s))) return rc;
  if (!s->cascade && (rc = sl_store_lock_shipping(opt->store_dir, &s->lock_fd))) return rc;
  if ((rc = sl__ship_metrics_open(opt->metrics, opt->stream, s->logdir, &s->mx))) return rc;
  if ((rc = sl_mkdir_p(shipdir))) {
    sl_diag_error("%s: %s", shipdir, sl_strerror(rc));
    return rc;
  }
  open_alive_lock(s, shipdir);
  if (opt->has_since && (rc = sl_log_find_after_time(s->logdir, opt->since_us, &s->since_txid))) {
    sl_diag_error("%s: cannot find where --since starts: %s", s->logdir, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl__io_open(opt->backend, &s->io))) return rc;
  if ((rc = sl__tail_open(s->logdir, s->store_id, s->io, &s->tail))) return rc;
  if (!(s->q = calloc(SENT_RING, sizeof *s->q))) return -ENOMEM;
  s->z.slots = s->slots;
  for (int i = 0; i < SLOTS; i++) {
    if ((rc = sl_buf_reserve(&s->slots[i].raw, s->batch_max))) return rc;
    s->slots[i].kr = opt->keyring;
    s->slots[i].store_id = s->store_id;
  }
  if ((rc = sl_buf_reserve(&s->rbuf, RECV_BUF_BYTES)) || (rc = sl__ship_sealer_start(&s->z))) return rc;
  return sl__ship_reporter_start(&s->rep);
}

void sl_ship_consumer_name(const char *stream, const char *to, char *out, size_t len) {
  int n = snprintf(out, len, "ship-%s@", stream);
  size_t at = n < 0 ? 0 : SL_MIN((size_t)n, len - 1), room = SL_MIN(len - 1, SL_LOG_CONSUMER_NAME_MAX);
  for (const char *p = to; *p && at < room; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    out[at++] = ok ? c : '_';
  }
  out[at] = 0;
  if (at == room && strlen(to) + (size_t)n > room) /* cut short: keep names of different receivers apart */
    snprintf(out + room - 9, 10, "-%08x", (unsigned)sl_crc32c(0, to, strlen(to)));
}

int sl_shipper_run(const sl_shipper_options *opt, atomic_int *stop) {
  shipper *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  sl_diag_context(opt->stream, opt->to);
  int rc = setup(s, opt, stop);
  if (rc) goto done;
  sl__ship_report(s, sl_mono_ns());
  while (s->st != ST_STOPPED && s->st != ST_FAILED) {
    switch (s->st) {
    case ST_CONNECTING: session_connect(s); break;
    case ST_HANDSHAKE: session_handshake(s); break;
    case ST_STREAMING: sl__ship_session_stream(s); break;
    case ST_BASE: sl__ship_session_base(s); break;
    case ST_BACKOFF: session_backoff(s); break;
    default: break;
    }
    if (*stop && s->st != ST_FAILED) {
      sl__ship_disconnect(s);
      s->st = ST_STOPPED;
    }
  }
  rc = s->st == ST_FAILED ? s->rc : 0;
  /* Final reports: the last acknowledged position and the final state. */
  if (s->sessions) sl__ship_reporter_consumer(&s->rep, s->confirmed, false);
  sl__ship_report(s, sl_mono_ns());
done:
  sl__ship_disconnect(s);
  sl__ship_sealer_stop(&s->z);
  sl__ship_reporter_stop(&s->rep);
  sl__ship_metrics_close(s->mx);
  sl__tail_close(s->tail);
  sl__io_close(s->io);
  if (s->lock_fd >= 0) close(s->lock_fd);
  if (s->rep.alive_fd >= 0) close(s->rep.alive_fd);
  sl_tls_ctx_free(s->tls);
  sl_buf_free(&s->rbuf);
  sl_buf_free(&s->sbuf);
  for (int i = 0; i < SLOTS; i++) {
    sl_buf_free(&s->slots[i].raw);
    sl_buf_free(&s->slots[i].lz4);
    sl_buf_free(&s->slots[i].wire);
    sl_buf_free(&s->slots[i].sealed);
  }
  free(s->q);
  free(s);
  return rc;
}

/* ---- status file ------------------------------------------------------------------------------ */

int sl_ship_status_read(const char *store_dir, const char *stream, sl_ship_status *out) {
  char path[PATH_MAX], text[2048];
  memset(out, 0, sizeof *out);
  if (!sl_stream_name_valid(stream)) return SL_EINVAL;
  if (snprintf(path, sizeof path, "%s/ship/%s.status", store_dir, stream) >= (int)sizeof path)
    return -ENAMETOOLONG;
  int rc = sl_status_load(path, text, sizeof text);
  if (rc) return rc;
  sl_status_get(text, "state", out->state, sizeof out->state);
  sl_status_get(text, "peer", out->peer, sizeof out->peer);
  sl_status_get(text, "error", out->error, sizeof out->error);
  out->committed = sl_status_get_u64(text, "committed");
  out->shipped = sl_status_get_u64(text, "shipped");
  out->durable = sl_status_get_u64(text, "durable");
  out->applied = sl_status_get_u64(text, "applied");
  out->bytes = sl_status_get_u64(text, "bytes");
  out->batches = sl_status_get_u64(text, "batches");
  out->reconnects = sl_status_get_u64(text, "reconnects");
  out->lag_ms = sl_status_get_u64(text, "lag_ms");
  out->updated_us = sl_status_get_u64(text, "updated_us");
  sl_status_get(text, "bolt", out->bolt, sizeof out->bolt);
  bool final = !strcmp(out->state, "stopped") || !strcmp(out->state, "failed");
  if (!final && !shipper_alive(store_dir, stream)) {
    snprintf(out->state, sizeof out->state, "not-running");
    if (!out->error[0])
      snprintf(out->error, sizeof out->error,
               "no shipper runs: the last one ended without a final report (killed, crashed or "
               "the machine restarted)");
  }
  return 0;
}
