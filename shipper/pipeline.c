/*
 * pipeline.c: the batches of the shipping session on their way (shipper.c
 * is the session; shipper_int.h what the files share): the slots a batch
 * is read into, the sealer thread that compresses it, the send window, and
 * the STREAMING state's loop.
 *
 * FLOW. Sent batches wait in a ring (last txid, raw bytes, commit time)
 * until acknowledged; the raw bytes of unacknowledged batches are bounded by
 * window_bytes. A batch is sent at once (batch_delay_us 0) or when it is
 * full or has waited batch_delay_us. Each loop turn reads the mark only when
 * inotify said it changed (or after an idle wait), so an idle primary costs
 * one sleeping io_uring_enter and a busy one a handful of system calls per
 * batch, none per frame: the mark read, one segment read, one send. Batch
 * buffers are allocated once and reused: no allocation per frame or batch.
 *
 * PIPELINE. LZ4 is the slowest step (about 600-800 MB/s a core against
 * 2-3 GB/s for reading and for loopback sends), so when a backlog is
 * waiting, a sealer thread compresses batch k while this thread reads
 * batch k+1 and sends batch k-1 (ship()). The sealer does nothing but LZ4
 * (and the sealing of frames with a keyring): this thread decodes each
 * frame once as it reads it (the tail carries the rolling checksum along),
 * folds the batch's raw CRC32C in while the bytes are in cache, and packs
 * and frames the message when it sends it. Batches wait for the sealer in
 * a ring of SLOTS, so it starts the next one as soon as it finishes one,
 * without a round trip through this thread; a full window is reopened by
 * reading the acknowledgements that arrived, not by draining the ring. A
 * batch with nothing behind it is sealed on this thread: at low rates no
 * thread handoff sits between a commit and its send.
 */
#include "shipper_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- sealer thread ------------------------------------------------------------------ */

/* Seal every frame of b->raw into b->sealed (at-rest encryption). A frame
 * that is sealed already (a log that is itself a sealed archive) goes as
 * it is: the tail does not report a segment's key, so Batch.key_id names
 * the keyring's first key, which such a log must then be sealed with (a
 * frame under another key fails to open on the receiver, naming it). */
static int seal_frames(slot *b) {
  uint64_t txid;
  int rc = sl_batch_encrypt_frames(b->kr, b->store_id, b->raw.data, b->raw.len, 0, b->cs_before, b->lz4_frames,
                                   &b->sealed, &txid);
  if (rc == SL_EVERSION)
    sl_diag_error("txid %llu is sealed compressed (store/log.h SEALED FRAMES) and the receiver does not read "
                 "compressed sealed frames (an older shiplog): upgrade it", (unsigned long long)txid);
  else if (rc)
    sl_diag_error("seal txid %llu with key %s: %s", (unsigned long long)txid, sl_keyring_primary(b->kr),
                 sl_strerror(rc));
  return rc;
}

/* Compress the batch in b (sealing its frames first with a keyring): the
 * one step the sealer thread takes over (PIPELINE), so it does nothing else.
 * Frames compressed before sealing leave the batch nothing to compress
 * (ciphertext), so it goes without a second LZ4 pass. */
static int seal_slot(slot *b) {
  if (!b->kr) return sl_batch_seal_crc(b->raw.data, b->raw.len, b->raw_crc, b->first, b->last, true,
                                       &b->lz4, &b->bt);
  int rc = seal_frames(b);
  if (rc == 0)
    rc = sl_batch_seal(b->sealed.data, b->sealed.len, b->first, b->last, !b->lz4_frames, &b->lz4, &b->bt);
  if (rc == 0) b->bt.key_id = (char *)sl_keyring_primary(b->kr);
  return rc;
}

/* The sealed batch as a framed message (protobuf, codec frame), at the
 * moment it is sent. */
static int frame_slot(slot *b, uint64_t committed) {
  Shiplog__Repl__Batch *bt = &b->bt;
  bt->has_last_commit_us = true;
  bt->last_commit_us = b->commit_us;
  bt->has_sent_time_us = true;
  bt->sent_time_us = sl_now_us();
  bt->has_committed_txid = true;
  bt->committed_txid = committed;
  bt->has_checksum = true;
  bt->checksum = b->cs;
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BATCH;
  m.batch = bt;
  b->wire.len = 0;
  return sl_msg_encode(&m, &b->wire);
}

static void *sealer_main(void *arg) {
  sealer *z = arg;
  pthread_mutex_lock(&z->mu);
  for (;;) {
    while (!z->stop && z->sealed == z->given) pthread_cond_wait(&z->cv, &z->mu);
    if (z->stop) break;
    slot *b = &z->slots[z->sealed % SLOTS];
    pthread_mutex_unlock(&z->mu);
    b->rc = seal_slot(b);
    pthread_mutex_lock(&z->mu);
    z->sealed++;
    pthread_cond_broadcast(&z->cv);
  }
  pthread_mutex_unlock(&z->mu);
  return NULL;
}

int sl__ship_sealer_start(sealer *z) {
  pthread_mutex_init(&z->mu, NULL);
  pthread_cond_init(&z->cv, NULL);
  int rc = sl_thread_start(&z->thread, sealer_main, z);
  if (rc) return rc;
  z->started = true;
  return 0;
}

static void sealer_give(sealer *z) {
  pthread_mutex_lock(&z->mu);
  z->given++;
  pthread_cond_broadcast(&z->cv);
  pthread_mutex_unlock(&z->mu);
}

/* Whether batch i is sealed; with wait, wait until it is. */
static bool sealer_done(sealer *z, uint64_t i, bool wait) {
  pthread_mutex_lock(&z->mu);
  while (wait && z->sealed <= i) pthread_cond_wait(&z->cv, &z->mu);
  bool done = z->sealed > i;
  pthread_mutex_unlock(&z->mu);
  return done;
}

/* Wait until the sealer is idle, and empty the ring. */
void sl__ship_sealer_reset(sealer *z) {
  if (!z->started) return;
  pthread_mutex_lock(&z->mu);
  while (z->sealed < z->given) pthread_cond_wait(&z->cv, &z->mu);
  z->given = z->sealed = 0;
  pthread_mutex_unlock(&z->mu);
}

void sl__ship_sealer_stop(sealer *z) {
  if (!z->started) return;
  pthread_mutex_lock(&z->mu);
  z->stop = true;
  pthread_cond_broadcast(&z->cv);
  pthread_mutex_unlock(&z->mu);
  pthread_join(z->thread, NULL);
  pthread_cond_destroy(&z->cv);
  pthread_mutex_destroy(&z->mu);
  z->started = false;
}

/* ---- the send window ------------------------------------------------------------ */

/* The send window, asserted where it changes (SL_ASSERT, every build):
 * acknowledged <= shipped, the ring's counters in order and within
 * SENT_RING, bytes in flight only while a batch is, and the in-flight
 * batches exactly those past the durable ack, the newest ending at shipped. */
void sl__ship_window_check(const shipper *s) {
  SL_ASSERT(s->durable <= s->shipped, "stream %s: durable ack %llu > shipped %llu", s->opt->stream,
            (unsigned long long)s->durable, (unsigned long long)s->shipped);
  SL_ASSERT(s->q_applied <= s->q_durable && s->q_durable <= s->q_end && s->q_end - s->q_applied <= SENT_RING,
            "stream %s: sent ring applied %llu, durable %llu, end %llu", s->opt->stream,
            (unsigned long long)s->q_applied, (unsigned long long)s->q_durable, (unsigned long long)s->q_end);
  SL_ASSERT(s->q_durable < s->q_end || s->inflight == 0, "stream %s: %zu bytes in flight, no batch",
            s->opt->stream, s->inflight);
  SL_ASSERT(s->q_durable == s->q_end || (s->q[s->q_durable % SENT_RING].last_txid > s->durable &&
                                         s->q[(s->q_end - 1) % SENT_RING].last_txid == s->shipped),
            "stream %s: in flight up to txid %llu, shipped %llu, durable %llu", s->opt->stream,
            (unsigned long long)s->q[(s->q_end - 1) % SENT_RING].last_txid, (unsigned long long)s->shipped,
            (unsigned long long)s->durable);
}

/* ---- STREAMING ---------------------------------------------------------------------------- */

/* Room is kept in the sent ring for every batch already on its way (the
 * SLOTS of the sealer's ring and the filling one), which leave even when
 * the window has closed meanwhile: they never overwrite an unacked entry. */
static bool window_open(const shipper *s) {
  return s->inflight < s->window && s->q_end - s->q_durable + SLOTS < SENT_RING;
}

/* Send the sealed batch in b and start waiting for its acknowledgement. */
static int send_slot(shipper *s, slot *b) {
  if (b->rc == 0) b->rc = frame_slot(b, s->committed);
  if (b->rc)
    return sl__ship_fatal(s, b->rc, "cannot seal batch of txids %llu..%llu: %s",
                          (unsigned long long)b->first, (unsigned long long)b->last, sl_strerror(b->rc));
  int rc = sl__ship_send_bytes(s, b->wire.data, b->wire.len);
  if (rc) return sl__ship_net_failed(s, rc, "send to");
  s->last_send_ns = sl_mono_ns();
  if (s->q_end - s->q_applied == SENT_RING) s->q_applied++; /* forget the oldest applied-time hint */
  s->q[s->q_end++ % SENT_RING] = (sent){b->last, b->commit_us, b->raw.len};
  s->inflight += b->raw.len;
  s->shipped = b->last;
  sl__ship_window_check(s);
  s->bytes += b->raw.len;
  s->compressed_bytes += b->bt.data.len;
  s->batches++;
  s->report_dirty = true;
  b->raw.len = 0;
  /* Don't keep huge buffers after one oversized frame. */
  if (b->raw.cap > 4 * s->batch_max) sl_buf_free(&b->raw);
  if (b->lz4.cap > 8 * s->batch_max) sl_buf_free(&b->lz4);
  if (b->wire.cap > 8 * s->batch_max) sl_buf_free(&b->wire);
  if (b->sealed.cap > 8 * s->batch_max) sl_buf_free(&b->sealed);
  return 0;
}

static slot *filling(shipper *s) { return &s->slots[s->z.given % SLOTS]; }

/* Send the oldest batch of the ring, once it is sealed. */
static int send_next(shipper *s) {
  sealer_done(&s->z, s->to_send, true);
  return send_slot(s, &s->slots[s->to_send++ % SLOTS]);
}

/* Send every batch of the ring. */
static int flush_sealer(shipper *s) {
  int rc = 0;
  while (rc == 0 && s->to_send < s->z.given) rc = send_next(s);
  return rc;
}

/* The filling slot is a complete batch: seal and send it. With more to
 * ship behind it, it joins the sealer's ring, and this thread sends what
 * is sealed (waiting only when the ring is full) and reads on; alone, it
 * is sealed here (no thread handoff on the latency path). Batches leave in
 * txid order. */
static int ship(shipper *s) {
  int rc;
  if (sl__tail_next_txid(s->tail) <= s->committed && window_open(s)) {
    sealer_give(&s->z);
    while (s->to_send < s->z.given &&
           (s->z.given - s->to_send >= SLOTS || sealer_done(&s->z, s->to_send, false)))
      if ((rc = send_next(s))) return rc;
    return 0;
  }
  if ((rc = flush_sealer(s))) return rc;
  slot *b = filling(s);
  b->rc = seal_slot(b);
  return send_slot(s, b);
}

/* A close with the receiver's acknowledgements unread would send a reset,
 * which can fail the receiver's next send before it has read our Error
 * (seen under load): linger after it (codec.h). */
#define LINGER_MS 2000

/* A frame no receiver takes: give up, and tell the receiver why, so that its
 * status shows the stream as stuck rather than idle. */
static int unshippable(shipper *s, uint64_t txid, size_t len) {
  char why[sizeof s->logdir + 512];
  snprintf(why, sizeof why,
           "%s: txid %llu is a %zu-byte frame, more than the replication protocol carries (%u bytes; it was "
           "committed by a shiplog without that limit): this log cannot be shipped past txid %llu",
           s->logdir, (unsigned long long)txid, len, (unsigned)SL_BATCH_FRAME_MAX, (unsigned long long)(txid - 1));
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Error e = SHIPLOG__REPL__ERROR__INIT;
  sl_msg_error(&m, &e, SHIPLOG__REPL__ERROR_CODE__ERR_TOO_BIG, true, why);
  /* The batches before it first: the receiver may archive them. */
  if (s->conn && flush_sealer(s) == 0 && s->conn) {
    s->sbuf.len = 0;
    if (sl_msg_encode(&m, &s->sbuf) == 0 && sl__ship_send_bytes(s, s->sbuf.data, s->sbuf.len) == 0)
      sl_conn_linger(s->conn, LINGER_MS, NULL);
  }
  return sl__ship_fatal(s, SL_ETOOBIG, "%s", why);
}

/* Batch whatever is durable and not yet shipped, shipping full batches (and
 * every batch when there is no delay). */
static int fill(shipper *s, uint64_t now) {
  int rc;
  while (sl__tail_next_txid(s->tail) <= s->committed) {
    /* Acknowledgements may have arrived: read them rather than drain the
     * ring to wait for them. */
    if (!window_open(s) && s->to_send < s->z.given && (rc = sl__ship_pump(s, 0))) return rc;
    if (!window_open(s)) break;
    slot *b = filling(s);
    size_t before = b->raw.len;
    sl__tail_run run;
    if ((rc = sl__tail_read(s->tail, &b->raw, s->batch_cap, &run))) return sl__ship_fatal(s, rc, NULL);
    if (run.bytes == 0) break;
    if (before == 0) {
      b->cs_before = s->cs;
      b->raw_crc = 0;
      b->first = run.first_txid;
      b->start_ns = now;
      b->lz4_frames = s->sealed_lz4;
    }
    /* While the frames are in cache: the sealer only compresses. */
    if (!b->kr) b->raw_crc = sl_crc32c(b->raw_crc, b->raw.data + before, run.bytes);
    b->cs = s->cs = run.checksum;
    b->last = run.last_txid;
    b->commit_us = run.last_commit_us;
    /* A frame larger than the receiver's batch limit is alone in its batch
     * (the tail returns it so), which the receiver takes up to
     * SL_BATCH_FRAME_MAX. Only a frame no store commits any more (log.h,
     * SIZE LIMITS: an older shiplog's) cannot be shipped at all. */
    size_t sealed_max = b->raw.len + (b->kr ? SL_CRYPT_FRAME_EXTRA : 0);
    if (b->raw.len > s->recv_limit && sealed_max > SL_BATCH_FRAME_MAX)
      return unshippable(s, run.first_txid, b->raw.len);
    if (s->opt->batch_delay_us && b->raw.len < s->batch_cap) break;
    if ((rc = ship(s))) return rc;
  }
  slot *b = filling(s);
  if (b->raw.len > 0 && now >= b->start_ns + (uint64_t)s->opt->batch_delay_us * 1000u &&
      (rc = ship(s)))
    return rc;
  return flush_sealer(s);
}

bool sl__ship_bolt_changed(shipper *s) {
  char now[sizeof s->primary_bolt];
  if (sl_bolt_address_read(s->opt->store_dir, now, sizeof now)) now[0] = 0;
  s->bolt_check_ns = sl_mono_ns();
  if (!strcmp(now, s->primary_bolt)) return false;
  memcpy(s->primary_bolt, now, sizeof now);
  return true;
}

int sl__ship_send_heartbeat(shipper *s) {
  Shiplog__Repl__Heartbeat hb = SHIPLOG__REPL__HEARTBEAT__INIT;
  hb.bolt_address = s->primary_bolt;
  hb.has_time_us = true;
  hb.time_us = sl_now_us();
  /* The clock first, then the durable mark: "every commit up to time_us is
   * at or below committed_txid" must hold, and the receiver bounds
   * --to-time restores by it. A mark read before the clock could miss a
   * commit made in between. */
  int rc = sl__ship_refresh_mark(s);
  if (rc) return rc;
  hb.has_committed_txid = true;
  hb.committed_txid = s->committed;
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &hb;
  return sl__ship_send_msg(s, &m);
}

static uint64_t earlier(uint64_t a, uint64_t b) { return a < b ? a : b; }

int sl__ship_session_stream(shipper *s) {
  const uint64_t ms = 1000000u;
  while (s->st == ST_STREAMING) {
    if (*s->stop) {
      sl__ship_disconnect(s);
      s->st = ST_STOPPED;
      return 0;
    }
    int rc;
    if (s->mark_dirty && (rc = sl__ship_refresh_mark(s))) return rc;
    uint64_t now = sl_mono_ns();
    if ((rc = fill(s, now))) return rc;
    /* a heartbeat when idle, or at once when `serve` started or stopped (ROUTING) */
    bool bolt_moved = now >= s->bolt_check_ns + (uint64_t)s->heartbeat_ms * ms && sl__ship_bolt_changed(s);
    if ((bolt_moved || now >= s->last_send_ns + (uint64_t)s->heartbeat_ms * ms) && (rc = sl__ship_send_heartbeat(s)))
      return rc;
    if (now >= s->last_recv_ns + (uint64_t)s->timeout_ms * ms)
      return sl__ship_transient(s, -ETIMEDOUT, "receiver %s silent for %d ms", s->opt->to, s->timeout_ms);

    uint64_t wake = earlier(s->last_send_ns + (uint64_t)s->heartbeat_ms * ms,
                            s->last_recv_ns + (uint64_t)s->timeout_ms * ms);
    const slot *f = filling(s);
    if (f->raw.len > 0) wake = earlier(wake, f->start_ns + (uint64_t)s->opt->batch_delay_us * 1000u);
    bool caught_up = f->raw.len == 0 && s->shipped == s->committed && s->q_durable == s->q_end;
    if (caught_up) sl__ship_recovered(s);
    if (s->opt->exit_when_caught_up) {
      if (!caught_up) {
        s->caught_up_ns = 0;
      } else if (!s->caught_up_ns) {
        s->caught_up_ns = now;
      } else if (now >= s->caught_up_ns + SETTLE_MS * ms) {
        s->st = ST_STOPPED;
        return 0;
      }
      if (caught_up) {
        s->mark_dirty = true; /* look again before declaring it */
        wake = earlier(wake, s->caught_up_ns + SETTLE_MS * ms);
      }
    }
    if (s->report_dirty) {
      if (now >= s->report_ns + REPORT_MS * ms) sl__ship_report(s, now);
      else wake = earlier(wake, s->report_ns + REPORT_MS * ms);
    }
    uint64_t left = wake > now ? (wake - now + ms - 1) / ms : 0;
    if ((rc = sl__ship_pump(s, (int)SL_MIN(left, (uint64_t)IDLE_WAKE_MS)))) return rc;
  }
  return 0;
}
