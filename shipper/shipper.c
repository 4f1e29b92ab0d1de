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
 * batch's frames are sealed on the thread that seals the batch (PIPELINE).
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
 *
 * BACKGROUND WRITER. The consumer position file is written with fsync
 * (sl_log_consumer_set) and the status file with rename; both are done by a
 * reporter thread, at most every 200 ms and at exit, so that the streaming
 * thread never waits for a disk flush between a commit and its shipping.
 * The one exception is the registration at the start of a session (start
 * txid - 1), which the streaming thread waits for BEFORE shipping.
 */
#include "shipper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "dump.h"
#include "io.h"
#include "lineage.h"
#include "log.h"
#include "ship_metrics.h"
#include "sl_base.h"
#include "sl_status.h"
#include "store.h"
#include "tail.h"

#define DEFAULT_BATCH_BYTES (1u << 20)
#define DEFAULT_WINDOW_BYTES (32u << 20)
#define DEFAULT_HEARTBEAT_MS 1000
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_BACKOFF_MAX_MS 5000
#define BACKOFF_MIN_MS 100
#define REPORT_MS 200         /* status and consumer file: at most this often */
#define SETTLE_MS 100         /* exit_when_caught_up: quiet this long first */
#define IDLE_WAKE_MS 200      /* longest sleep: re-read the mark, check stop */
#define RECV_BUF_BYTES 65536
#define RECV_MAX_BODY (1u << 20) /* a receiver sends only small messages */
#define SENT_RING 4096        /* unacknowledged batches tracked */
#define SLOTS 4               /* batches on their way: filling, with the sealer, sealed */
#define BASE_CHUNK (256u << 10) /* base bytes per message: small next to what a slow link
                                   carries between two heartbeats of the receiver */

/* Every transaction a store commits ships, sealed or not (log.h, SIZE LIMITS). */
_Static_assert(SL_TXN_MAX + SL_CRYPT_FRAME_EXTRA <= SL_FRAME_SHIP_MAX, "a sealed transaction must fit a frame");

typedef enum state { ST_CONNECTING, ST_HANDSHAKE, ST_STREAMING, ST_BACKOFF, ST_STOPPED, ST_FAILED, ST_BASE } state;
static const char *const state_name[] = {"connecting", "connecting", "streaming",
                                         "backoff", "stopped", "failed", "sending-base"};

/* Helper threads block every signal, so that SIGINT/SIGTERM reach the
 * streaming thread and cut its wait short. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return -rc;
}

/* ---- reporter thread --------------------------------------------------------- */

typedef struct reporter {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char logdir[PATH_MAX];
  char consumer[80];
  char status_path[PATH_MAX];
  /* guarded by mu */
  bool stop, urgent;
  bool have_want;
  uint64_t want, written;   /* consumer position wanted / on disk */
  bool written_valid;
  uint64_t gen, gen_done;   /* requests posted / completed */
  int write_rc;
  char status[2048];
  bool status_new;
} reporter;

static void *reporter_main(void *arg) {
  reporter *r = arg;
  char status[sizeof r->status];
  int logged_rc = 0;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->stop && !r->status_new &&
           !(r->have_want && (!r->written_valid || r->want != r->written)) && r->gen_done == r->gen)
      pthread_cond_wait(&r->cv, &r->mu);
    bool stopping = r->stop;
    bool write_consumer = r->have_want && (!r->written_valid || r->want != r->written);
    uint64_t want = r->want, gen = r->gen;
    bool write_status = r->status_new;
    if (write_status) memcpy(status, r->status, sizeof status);
    r->status_new = false;
    r->urgent = false;
    pthread_mutex_unlock(&r->mu);

    int rc = write_consumer ? sl_log_consumer_set(r->logdir, r->consumer, want) : 0;
    if (rc && rc != logged_rc)
      sl_diag_warn("%s: cannot record consumer %s at txid %llu: %s", r->logdir, r->consumer,
                  (unsigned long long)want, sl_strerror(rc));
    logged_rc = rc;
    if (write_status) (void)sl_status_write(r->status_path, status);

    pthread_mutex_lock(&r->mu);
    if (write_consumer && rc == 0) {
      r->written = want;
      r->written_valid = true;
    }
    r->write_rc = rc;
    r->gen_done = gen;
    pthread_cond_broadcast(&r->cv);
    if (stopping && !r->status_new && (!r->have_want || r->want == r->written)) break;
    if (stopping) continue;
    /* Rate limit: sleep REPORT_MS unless stopped or asked to hurry. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += REPORT_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!r->stop && !r->urgent && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static int reporter_start(reporter *r) {
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  int rc = start_thread(&r->thread, reporter_main, r);
  if (rc) return rc;
  r->started = true;
  return 0;
}

/* Post a consumer position; with wait, return once it is on disk. */
static int reporter_consumer(reporter *r, uint64_t txid, bool wait) {
  pthread_mutex_lock(&r->mu);
  r->want = txid;
  r->have_want = true;
  uint64_t gen = ++r->gen;
  if (wait) r->urgent = true;
  pthread_cond_broadcast(&r->cv);
  int rc = 0;
  if (wait) {
    while (r->gen_done < gen) pthread_cond_wait(&r->cv, &r->mu);
    rc = r->write_rc;
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

static void reporter_status(reporter *r, const char *text) {
  pthread_mutex_lock(&r->mu);
  snprintf(r->status, sizeof r->status, "%s", text);
  r->status_new = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Write what is pending and end the thread. */
static void reporter_stop(reporter *r) {
  if (!r->started) return;
  pthread_mutex_lock(&r->mu);
  r->stop = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  r->started = false;
}

/* ---- sealer thread ------------------------------------------------------------------ */

/* A batch on its way: raw frames, the compressed Batch, then the whole
 * framed message. */
typedef struct slot {
  sl_buf raw, lz4, wire;
  sl_buf sealed;                 /* raw with every frame sealed (keyring) */
  sl_keyring *kr;                /* NULL: frames go as they are */
  const uint8_t *store_id;
  uint64_t first, last, commit_us, start_ns;
  uint64_t cs_before, cs;        /* LINEAGE: rolling checksum before first / through last */
  uint32_t raw_crc;              /* CRC32C of raw, folded in as it is read (no keyring) */
  Shiplog__Repl__Batch bt;       /* sealed: Batch.data points into lz4 */
  int rc;                        /* sealing result */
} slot;

/* Seal every frame of b->raw into b->sealed (at-rest encryption). A frame
 * that is sealed already (a log that is itself a sealed archive) goes as
 * it is: the tail does not report a segment's key, so Batch.key_id names
 * the keyring's first key, which such a log must then be sealed with (a
 * frame under another key fails to open on the receiver, naming it). */
static int seal_frames(slot *b) {
  uint64_t txid;
  int rc = sl_batch_encrypt_frames(b->kr, b->store_id, b->raw.data, b->raw.len, 0, b->cs_before, &b->sealed, &txid);
  if (rc)
    sl_diag_error("seal txid %llu with key %s: %s", (unsigned long long)txid, sl_keyring_primary(b->kr),
                 sl_strerror(rc));
  return rc;
}

/* Compress the batch in b (sealing its frames first with a keyring): the
 * one step the sealer thread takes over (PIPELINE), so it does nothing else. */
static int seal_slot(slot *b) {
  if (!b->kr) return sl_batch_seal_crc(b->raw.data, b->raw.len, b->raw_crc, b->first, b->last, true,
                                       &b->lz4, &b->bt);
  int rc = seal_frames(b);
  if (rc == 0) rc = sl_batch_seal(b->sealed.data, b->sealed.len, b->first, b->last, true, &b->lz4, &b->bt);
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

/* Batches in order through a ring (see PIPELINE): batch i lies in
 * slots[i % SLOTS]; the streaming thread hands batches over (given) and
 * sends them once sealed, the sealer seals them in turn (sealed). */
typedef struct sealer {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  slot *slots;
  uint64_t given, sealed;        /* written under mu; given only by the streaming thread */
} sealer;

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

static int sealer_start(sealer *z) {
  pthread_mutex_init(&z->mu, NULL);
  pthread_cond_init(&z->cv, NULL);
  int rc = start_thread(&z->thread, sealer_main, z);
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
static void sealer_reset(sealer *z) {
  if (!z->started) return;
  pthread_mutex_lock(&z->mu);
  while (z->sealed < z->given) pthread_cond_wait(&z->cv, &z->mu);
  z->given = z->sealed = 0;
  pthread_mutex_unlock(&z->mu);
}

static void sealer_stop(sealer *z) {
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

/* ---- the shipper ------------------------------------------------------------------ */

typedef struct sent {
  uint64_t last_txid, commit_us;
  size_t bytes;
} sent;

typedef struct shipper {
  const sl_shipper_options *opt;
  volatile sig_atomic_t *stop;
  size_t batch_max, batch_cap, window;
  int heartbeat_ms, timeout_ms, backoff_max_ms;
  char logdir[PATH_MAX];
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t since_txid;           /* --since resolved at start */
  bool cascade;                  /* store_dir is a receiver's stream directory */
  uint64_t oldest;               /* the log's first txid at the last connect */
  sl__io *io;
  sl__tail *tail;
  reporter rep;
  sl_tls_ctx *tls;               /* NULL: plain TCP (insecure) */
  char server_name[256];         /* the name the receiver's certificate must carry */
  sl__ship_metrics *mx;          /* NULL without opt->metrics */

  state st;
  int rc;                        /* FAILED: the code sl_shipper_run returns */
  sl_conn *conn;
  int fd;
  sl_buf rbuf, sbuf;              /* received bytes; small messages to send */
  slot slots[SLOTS];             /* slots[z.given % SLOTS] fills (see sealer) */
  uint64_t to_send;              /* the next batch of the ring to send */
  sealer z;

  /* sent batches: [q_applied, q_durable) acknowledged durable, kept for the
   * applied commit time; [q_durable, q_end) in flight. Counters, index % SENT_RING. */
  sent *q;
  uint64_t q_applied, q_durable, q_end;
  size_t inflight;

  uint64_t committed, shipped, durable, applied, applied_commit_us;
  uint64_t cs;                   /* LINEAGE: rolling checksum through the last frame batched */
  sl_history hist;               /* the log's history, read at each connect */
  Shiplog__Repl__EpochStart hist_msg[SL_HISTORY_MAX], *hist_ptrs[SL_HISTORY_MAX];
  uint64_t confirmed;            /* consumer position: max(durable, start - 1) */
  size_t recv_limit;             /* the receiver's largest raw batch */
  uint64_t bytes, batches, reconnects, sessions;
  uint64_t acks;                 /* Acks received (the one that confirms a base) */
  uint64_t compressed_bytes;     /* Batch.data bytes sent (after compression) */
  uint64_t last_send_ns, last_recv_ns, report_ns, caught_up_ns;
  bool mark_dirty, report_dirty;
  int backoff_ms;
  uint64_t rng;
  int logged_rc;
  char error[1024];           /* a receiver's refusal may name commands to run */
} shipper;

static const char *err_code_name(Shiplog__Repl__ErrorCode code) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&shiplog__repl__error_code__descriptor, (int)code);
  return v ? v->name : "ERR_UNKNOWN";
}

static void disconnect(shipper *s) {
  if (s->conn) {
    sl__io_forget(s->io, s->fd);
    sl_conn_close(s->conn);
  }
  s->conn = NULL;
  s->fd = -1;
  s->rbuf.len = 0;
  sealer_reset(&s->z);
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
__attribute__((format(printf, 3, 4))) static int transient(shipper *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error(s, fmt, ap);
  va_end(ap);
  if (rc != s->logged_rc) sl_diag_warn("%s; retrying", s->error);
  s->logged_rc = rc;
  disconnect(s);
  s->st = ST_BACKOFF;
  return rc;
}

/* A failure that ends the shipper (exit 1). fmt NULL: already logged. */
__attribute__((format(printf, 3, 4))) static int fatal(shipper *s, int rc, const char *fmt, ...) {
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    set_error(s, fmt, ap);
    va_end(ap);
    sl_diag_error("%s", s->error);
  } else {
    snprintf(s->error, sizeof s->error, "%s", sl_strerror(rc));
  }
  disconnect(s);
  s->st = ST_FAILED;
  s->rc = rc;
  return rc;
}

static void report(shipper *s, uint64_t now_ns) {
  uint64_t now_us = sl_now_us();
  uint64_t lag_ms = 0;
  if (s->applied < s->committed && s->applied_commit_us && now_us > s->applied_commit_us)
    lag_ms = (now_us - s->applied_commit_us) / 1000;
  char text[2048];
  snprintf(text, sizeof text,
           "state=%s\npeer=%s\ncommitted=%llu\nshipped=%llu\ndurable=%llu\napplied=%llu\n"
           "bytes=%llu\nbatches=%llu\nreconnects=%llu\nlag_ms=%llu\nio=%s\nupdated_us=%llu\n"
           "error=%s\n",
           state_name[s->st], s->opt->to, (unsigned long long)s->committed,
           (unsigned long long)s->shipped, (unsigned long long)s->durable,
           (unsigned long long)s->applied, (unsigned long long)s->bytes,
           (unsigned long long)s->batches, (unsigned long long)s->reconnects,
           (unsigned long long)lag_ms, sl__io_name(s->io), (unsigned long long)now_us, s->error);
  reporter_status(&s->rep, text);
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
static int send_bytes(shipper *s, const uint8_t *buf, size_t len) {
  if (s->tls) return sl_conn_write_all(s->conn, buf, len, s->timeout_ms);
  int rc = sl_fault(SL_FAULT_NET_SEND);
  return rc ? rc : sl__io_send_all(s->io, s->fd, buf, len, s->timeout_ms);
}

/* A failed send or receive: a refused certificate ends the shipper. */
static int net_failed(shipper *s, int rc, const char *what) {
  if (rc == SL_EAUTH)
    return fatal(s, rc, "TLS with receiver %s: %s", s->opt->to, sl_conn_tls_error(s->conn));
  if (s->tls && (rc == SL_ECORRUPT || rc == SL_EEND) && sl_conn_tls_error(s->conn)[0])
    return transient(s, rc, "%s %s: %s", what, s->opt->to, sl_conn_tls_error(s->conn));
  return transient(s, rc, "%s %s: %s", what, s->opt->to, sl_strerror(rc));
}

static int send_msg(shipper *s, const Shiplog__Repl__Message *m) {
  s->sbuf.len = 0;
  int rc = sl_msg_encode(m, &s->sbuf);
  if (rc == 0) rc = send_bytes(s, s->sbuf.data, s->sbuf.len);
  if (rc) return net_failed(s, rc, "send to");
  s->last_send_ns = sl_mono_ns();
  return 0;
}

static int refresh_mark(shipper *s) {
  s->mark_dirty = false;
  int rc = sl__tail_refresh(s->tail);
  if (rc) return fatal(s, rc, NULL);
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
    return transient(s, rc, "cannot connect to receiver %s: %s", s->opt->to, sl_strerror(rc));
  }
  s->fd = sl_conn_fd(s->conn);
  if (s->tls && (rc = sl_conn_tls_connect(s->conn, s->tls, s->server_name, SL_MIN(s->timeout_ms, 5000)))) {
    /* A certificate refused (ours by the receiver, or the receiver's by
     * us) or a receiver that does not speak TLS: configuration, so final. */
    if (rc == SL_EAUTH)
      return fatal(s, rc, "TLS handshake with receiver %s: %s", s->opt->to,
                   sl_conn_tls_error(s->conn));
    return transient(s, rc, "TLS handshake with receiver %s: %s", s->opt->to,
                     sl_conn_tls_error(s->conn)[0] ? sl_conn_tls_error(s->conn) : sl_strerror(rc));
  }
  if ((rc = sl_buf_reserve(&s->rbuf, RECV_BUF_BYTES))) return fatal(s, rc, "out of memory");
  if ((rc = refresh_mark(s))) return rc;

  Shiplog__Repl__Hello h = SHIPLOG__REPL__HELLO__INIT;
  h.protocol_version = SL_PROTOCOL_VERSION;
  h.stream = (char *)s->opt->stream;
  h.store_id.data = s->store_id;
  h.store_id.len = SL_STORE_ID_SIZE;
  h.has_start = true;
  h.start = SHIPLOG__REPL__START_KIND__START_RESUME;
  if ((rc = sl__tail_oldest(s->tail, &s->oldest)))
    return fatal(s, rc, "%s: cannot list the log: %s", s->logdir, sl_strerror(rc));
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
  /* LINEAGE: what the receiver judges this store's history by. */
  h.has_checksum = h.has_start_checksum = true;
  if ((rc = sl_history_load(s->logdir, &s->hist)) ||
      (rc = sl_log_checksum_at(s->logdir, s->committed, &h.checksum)) ||
      (rc = sl_log_checksum_at(s->logdir, (h.has_start_txid ? h.start_txid : 1) - 1, &h.start_checksum)))
    return fatal(s, rc, "%s: cannot read the log's lineage: %s", s->logdir, sl_strerror(rc));
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
  if ((rc = send_msg(s, &m))) return rc;
  s->last_recv_ns = sl_mono_ns();
  s->st = ST_HANDSHAKE;
  s->report_dirty = true;
  return 0;
}

/* ---- edges out of HANDSHAKE ------------------------------------------------------- */

static int on_welcome(shipper *s, const Shiplog__Repl__Welcome *w) {
  const sl_shipper_options *o = s->opt;
  uint64_t d = w->durable_txid, start;
  int rc = refresh_mark(s);
  if (rc) return rc;
  bool first = s->sessions++ == 0;
  if (!first) s->reconnects++;

  s->recv_limit = SL_BATCH_RAW_MAX;
  if (w->has_max_batch_bytes && w->max_batch_bytes > 0 && w->max_batch_bytes < s->recv_limit)
    s->recv_limit = w->max_batch_bytes;
  s->batch_cap = SL_MIN(s->batch_max, s->recv_limit);

  if (o->keyring && !(w->has_accepts_sealed && w->accepts_sealed))
    return fatal(s, SL_EVERSION,
                 "receiver %s does not archive sealed frames (an older shiplog): upgrade it, or ship "
                 "without --key-file", o->to);
  if (d > s->committed)
    return fatal(s, SL_EGAP,
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
    return fatal(s, SL_EGAP, "cannot ship from txid %llu: %s is durable only up to txid %llu",
                 (unsigned long long)start, s->logdir, (unsigned long long)s->committed);

  /* Protect the segments we are about to read before reading them. */
  if ((rc = reporter_consumer(&s->rep, start - 1, true)))
    return fatal(s, rc, "%s: cannot record consumer ship-%s: %s", s->logdir, o->stream,
                 sl_strerror(rc));
  rc = sl__tail_seek(s->tail, start);
  if (rc == SL_ENOTFOUND)
    return fatal(s, rc, "%s: segment for txid %llu was removed", s->logdir,
                 (unsigned long long)start);
  if (rc) return fatal(s, rc, NULL);
  if ((rc = sl_log_checksum_at(s->logdir, start - 1, &s->cs)))
    return fatal(s, rc, "%s: cannot read the log's checksum at txid %llu: %s", s->logdir,
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
static void recovered(shipper *s) {
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
    return fatal(s, rc, "receiver %s refused stream %s: %s (%s)", s->opt->to, s->opt->stream, text,
                 err_code_name(e->code));
  return transient(s, rc, "receiver %s refused stream %s: %s (%s)", s->opt->to, s->opt->stream,
                   text, err_code_name(e->code));
}

/* ---- acknowledgements ---------------------------------------------------------------- */

/* The send window, asserted where it changes (SL_ASSERT, every build):
 * acknowledged <= shipped, the ring's counters in order and within
 * SENT_RING, bytes in flight only while a batch is, and the in-flight
 * batches exactly those past the durable ack, the newest ending at shipped. */
static void window_check(const shipper *s) {
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

static int on_positions(shipper *s, uint64_t durable, bool has_applied, uint64_t applied) {
  if (durable > s->shipped)
    return transient(s, SL_EINVAL, "receiver %s acknowledged txid %llu, but only %llu was shipped",
                     s->opt->to, (unsigned long long)durable, (unsigned long long)s->shipped);
  if (durable > s->durable) {
    recovered(s);
    s->durable = durable;
    while (s->q_durable < s->q_end && s->q[s->q_durable % SENT_RING].last_txid <= durable) {
      sl__ship_metrics_durable(s->mx, s->q[s->q_durable % SENT_RING].commit_us);
      s->inflight -= s->q[s->q_durable++ % SENT_RING].bytes;
    }
    s->report_dirty = true;
  }
  if (durable > s->confirmed) {
    s->confirmed = durable;
    reporter_consumer(&s->rep, durable, false);
  }
  if (has_applied && applied > s->applied) {
    s->applied = SL_MIN(applied, s->durable);
    while (s->q_applied < s->q_durable && s->q[s->q_applied % SENT_RING].last_txid <= s->applied) {
      s->applied_commit_us = s->q[s->q_applied++ % SENT_RING].commit_us;
      sl__ship_metrics_applied(s->mx, s->applied_commit_us);
    }
    s->report_dirty = true;
  }
  window_check(s);
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
  return transient(s, SL_EINVAL, "receiver %s sent an unexpected %s message", s->opt->to,
                   sl_msg_kind(m));
}

/* Received bytes: decode and handle every whole message, keep the rest. */
static int on_received(shipper *s, long got) {
  if (got == 0) return transient(s, SL_EEND, "receiver %s closed the connection", s->opt->to);
  if (got < 0) return net_failed(s, (int)got, "receive from");
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
    return transient(s, rc, "bad message from receiver %s: %s", s->opt->to, sl_strerror(rc));
  memmove(s->rbuf.data, s->rbuf.data + off, s->rbuf.len - off);
  s->rbuf.len -= off;
  /* Room for the whole next message (nothing is in flight on rbuf now). */
  size_t need = RECV_BUF_BYTES;
  if (s->rbuf.len >= SL_MSG_HEADER_SIZE) need = SL_MSG_HEADER_SIZE + sl_get_le32(s->rbuf.data) + 4096;
  if ((rc = sl_buf_reserve(&s->rbuf, need))) return fatal(s, rc, "out of memory");
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
static int pump(shipper *s, int timeout_ms) {
  bool pending = s->tls && s->fd >= 0 && sl_conn_pending(s->conn);
  sl__io_waitset w = {.notify_fd = sl__tail_notify_fd(s->tail), .sock_fd = s->fd,
                   .sock_poll = s->tls != NULL, .timeout_ms = pending ? 0 : timeout_ms};
  if (s->fd >= 0 && !s->tls) {
    w.recv_buf = s->rbuf.data + s->rbuf.len;
    w.recv_len = s->rbuf.cap - s->rbuf.len;
  }
  sl__io_events ev;
  int rc = sl__io_wait(s->io, &w, &ev);
  if (rc) return fatal(s, rc, "%s: wait: %s", sl__io_name(s->io), sl_strerror(rc));
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
      disconnect(s);
      s->st = ST_STOPPED;
      return 0;
    }
    uint64_t now = sl_mono_ns(), until = s->last_recv_ns + (uint64_t)s->timeout_ms * 1000000u;
    if (now >= until)
      return transient(s, -ETIMEDOUT, "receiver %s did not answer the hello within %d ms",
                       s->opt->to, s->timeout_ms);
    int rc = pump(s, (int)SL_MIN((until - now) / 1000000u + 1, (uint64_t)IDLE_WAKE_MS));
    if (rc) return rc;
  }
  return 0;
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
    return fatal(s, b->rc, "cannot seal batch of txids %llu..%llu: %s",
                 (unsigned long long)b->first, (unsigned long long)b->last, sl_strerror(b->rc));
  int rc = send_bytes(s, b->wire.data, b->wire.len);
  if (rc) return net_failed(s, rc, "send to");
  s->last_send_ns = sl_mono_ns();
  if (s->q_end - s->q_applied == SENT_RING) s->q_applied++; /* forget the oldest applied-time hint */
  s->q[s->q_end++ % SENT_RING] = (sent){b->last, b->commit_us, b->raw.len};
  s->inflight += b->raw.len;
  s->shipped = b->last;
  window_check(s);
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
    if (sl_msg_encode(&m, &s->sbuf) == 0) (void)send_bytes(s, s->sbuf.data, s->sbuf.len);
  }
  return fatal(s, SL_ETOOBIG, "%s", why);
}

/* Batch whatever is durable and not yet shipped, shipping full batches (and
 * every batch when there is no delay). */
static int fill(shipper *s, uint64_t now) {
  int rc;
  while (sl__tail_next_txid(s->tail) <= s->committed) {
    /* Acknowledgements may have arrived: read them rather than drain the
     * ring to wait for them. */
    if (!window_open(s) && s->to_send < s->z.given && (rc = pump(s, 0))) return rc;
    if (!window_open(s)) break;
    slot *b = filling(s);
    size_t before = b->raw.len;
    sl__tail_run run;
    if ((rc = sl__tail_read(s->tail, &b->raw, s->batch_cap, &run))) return fatal(s, rc, NULL);
    if (run.bytes == 0) break;
    if (before == 0) {
      b->cs_before = s->cs;
      b->raw_crc = 0;
      b->first = run.first_txid;
      b->start_ns = now;
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

static int send_heartbeat(shipper *s) {
  Shiplog__Repl__Heartbeat hb = SHIPLOG__REPL__HEARTBEAT__INIT;
  hb.has_time_us = true;
  hb.time_us = sl_now_us();
  /* The clock first, then the durable mark: "every commit up to time_us is
   * at or below committed_txid" must hold, and the receiver bounds
   * --to-time restores by it. A mark read before the clock could miss a
   * commit made in between. */
  int rc = refresh_mark(s);
  if (rc) return rc;
  hb.has_committed_txid = true;
  hb.committed_txid = s->committed;
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &hb;
  return send_msg(s, &m);
}

static uint64_t earlier(uint64_t a, uint64_t b) { return a < b ? a : b; }

static int session_stream(shipper *s) {
  const uint64_t ms = 1000000u;
  while (s->st == ST_STREAMING) {
    if (*s->stop) {
      disconnect(s);
      s->st = ST_STOPPED;
      return 0;
    }
    int rc;
    if (s->mark_dirty && (rc = refresh_mark(s))) return rc;
    uint64_t now = sl_mono_ns();
    if ((rc = fill(s, now))) return rc;
    if (now >= s->last_send_ns + (uint64_t)s->heartbeat_ms * ms && (rc = send_heartbeat(s)))
      return rc;
    if (now >= s->last_recv_ns + (uint64_t)s->timeout_ms * ms)
      return transient(s, -ETIMEDOUT, "receiver %s silent for %d ms", s->opt->to, s->timeout_ms);

    uint64_t wake = earlier(s->last_send_ns + (uint64_t)s->heartbeat_ms * ms,
                            s->last_recv_ns + (uint64_t)s->timeout_ms * ms);
    const slot *f = filling(s);
    if (f->raw.len > 0) wake = earlier(wake, f->start_ns + (uint64_t)s->opt->batch_delay_us * 1000u);
    bool caught_up = f->raw.len == 0 && s->shipped == s->committed && s->q_durable == s->q_end;
    if (caught_up) recovered(s);
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
      if (now >= s->report_ns + REPORT_MS * ms) report(s, now);
      else wake = earlier(wake, s->report_ns + REPORT_MS * ms);
    }
    uint64_t left = wake > now ? (wake - now + ms - 1) / ms : 0;
    if ((rc = pump(s, (int)SL_MIN(left, (uint64_t)IDLE_WAKE_MS)))) return rc;
  }
  return 0;
}

/* ---- BASE --------------------------------------------------------------------------------- */

/* BASE SHIPPING (proto/replication.proto). The image is a full dump
 * (store/dump.h) of the store opened read-only -- one LMDB read transaction,
 * so writers go on -- written by a helper thread into a pipe, from which
 * this thread sends it in chunks; the dump header (its first bytes) names
 * the image's txid B. A cascade (a receiver's stream directory) sends its
 * standby. B may be committed in LMDB a moment before it is durable in the
 * log (store.h, COMMIT PATH), so BaseEnd waits until the durable mark
 * reaches B: the receiver never holds a base the primary could lose. The
 * log then follows from the receiver's durable txid + 1, as without a base. */
typedef struct base_job {
  sl_store *st;
  int fd;                        /* the pipe's write end, closed by the job */
  sl_keyring *kr;
  int rc;
} base_job;

static void *base_main(void *arg) {
  base_job *j = arg;
  sl_dump_options d = {.keyring = j->kr, .name = "the base (a pipe to the shipper)"};
  j->rc = sl_dump_full(j->st, j->fd, &d, NULL);
  close(j->fd);
  j->fd = -1;
  return NULL;
}

/* Read up to len bytes of the pipe, sending heartbeats and reading the
 * receiver's messages while the dump is slow: > 0 bytes, 0 at its end, or
 * a negative code (the state is then moved already, or -errno). */
static long base_read(shipper *s, int fd, uint8_t *buf, size_t len) {
  const uint64_t ms = 1000000u;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, IDLE_WAKE_MS);
    if (n < 0 && errno != EINTR) return -errno;
    if (n > 0) {
      ssize_t got = read(fd, buf, len);
      if (got >= 0) return got;
      if (errno != EINTR && errno != EAGAIN) return -errno;
    }
    if (*s->stop) return -ECANCELED;
    uint64_t now = sl_mono_ns();
    int rc = 0;
    if (now >= s->last_send_ns + (uint64_t)s->heartbeat_ms * ms) rc = send_heartbeat(s);
    if (rc == 0) rc = pump(s, 0);
    if (rc == 0 && s->st == ST_BASE && now >= s->last_recv_ns + (uint64_t)s->timeout_ms * ms)
      rc = transient(s, -ETIMEDOUT, "receiver %s silent for %d ms", s->opt->to, s->timeout_ms);
    if (rc || s->st != ST_BASE) return rc ? rc : -ECANCELED;
  }
}

static int send_base_msg(shipper *s, Shiplog__Repl__Message *m) {
  int rc = send_msg(s, m);
  if (rc == 0 && s->st == ST_BASE) rc = pump(s, 0);
  return rc ? rc : s->st == ST_BASE ? 0 : -ECANCELED;
}

static int session_base(shipper *s) {
  const uint64_t t0 = sl_mono_ns();
  char dir[PATH_MAX];
  base_job j = {.fd = -1, .kr = s->opt->keyring};
  pthread_t thread;
  bool started = false;
  int p[2] = {-1, -1};
  uint8_t *buf = NULL;
  uint64_t nsent = 0, txid = 0;
  uint32_t crc = 0;
  size_t chunk = SL_MIN((size_t)BASE_CHUNK, s->recv_limit);
  long got = 0;
  snprintf(dir, sizeof dir, "%s%s", s->opt->store_dir, s->cascade ? "/standby" : "");
  int rc = sl_store_open(dir, SL_OPEN_RDONLY, &j.st);
  if (rc) {
    fatal(s, rc, "%s: cannot open the store to send stream %s its base: %s", dir, s->opt->stream, sl_strerror(rc));
    goto out;
  }
  if (!(buf = malloc(chunk)) || pipe2(p, O_CLOEXEC) != 0) {
    fatal(s, buf ? -errno : -ENOMEM, "cannot start the base of stream %s: %s", s->opt->stream,
          sl_strerror(buf ? -errno : -ENOMEM));
    goto out;
  }
  j.fd = p[1];
  p[1] = -1;
  if ((rc = start_thread(&thread, base_main, &j))) {
    close(j.fd);
    fatal(s, rc, "cannot start the base's thread: %s", sl_strerror(rc));
    goto out;
  }
  started = true;
  /* The header first: it names the image's txid. */
  size_t have = 0;
  while (have < SL_DUMP_HEADER_SIZE && (got = base_read(s, p[0], buf + have, SL_DUMP_HEADER_SIZE - have)) > 0)
    have += (size_t)got;
  if (have < SL_DUMP_HEADER_SIZE) goto out; /* the dump failed (below) or the session ended */
  sl_dump_header h;
  if ((rc = sl_dump_header_decode(buf, &h))) {
    fatal(s, rc, "the base of stream %s: the dump header does not decode: %s", s->opt->stream, sl_strerror(rc));
    goto out;
  }
  txid = h.last_txid;
  sl_diag_info("sending stream %s its base: %s at txid %llu%s", s->opt->stream, dir, (unsigned long long)txid,
              h.key_id[0] ? " (sealed)" : "");
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__BaseBegin bb = SHIPLOG__REPL__BASE_BEGIN__INIT;
  Shiplog__Repl__BaseChunk bc = SHIPLOG__REPL__BASE_CHUNK__INIT;
  Shiplog__Repl__BaseEnd be = SHIPLOG__REPL__BASE_END__INIT;
  bb.txid = txid;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN;
  m.base_begin = &bb;
  if (send_base_msg(s, &m)) goto out;
  report(s, sl_mono_ns()); /* state sending-base */
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK;
  m.base_chunk = &bc;
  for (;;) {
    while (have < chunk && (got = base_read(s, p[0], buf + have, chunk - have)) > 0) have += (size_t)got;
    if (got < 0) goto out;
    if (have == 0) break;
    bc.offset = nsent;
    bc.data.data = buf;
    bc.data.len = have;
    if (send_base_msg(s, &m)) goto out;
    crc = sl_crc32c(crc, buf, have);
    nsent += have;
    have = 0;
    if (got == 0) break;
  }
  pthread_join(thread, NULL);
  started = false;
  if (j.rc) {
    fatal(s, j.rc, "the base of stream %s: dumping %s failed: %s", s->opt->stream, dir, sl_strerror(j.rc));
    goto out;
  }
  /* Not before B is durable here (see above). */
  while (s->st == ST_BASE && s->committed < txid) {
    if (*s->stop) goto out;
    if ((rc = pump(s, IDLE_WAKE_MS)) || s->st != ST_BASE || (s->mark_dirty && refresh_mark(s))) goto out;
  }
  be.size = nsent;
  be.crc32c = crc;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_END;
  m.base_end = &be;
  uint64_t acks = s->acks;
  if (send_base_msg(s, &m)) goto out;
  /* The receiver answers BaseEnd with an Ack once the base is durable
   * there (or with an Error): only then is the stream restorable, so
   * only then may a caught-up shipper exit 0. */
  while (s->st == ST_BASE && s->acks == acks) {
    if (*s->stop) goto out;
    if (sl_mono_ns() >= s->last_recv_ns + (uint64_t)s->timeout_ms * 1000000u) {
      transient(s, -ETIMEDOUT, "receiver %s did not confirm the base of stream %s within %d ms", s->opt->to,
                s->opt->stream, s->timeout_ms);
      goto out;
    }
    if (pump(s, IDLE_WAKE_MS)) goto out;
  }
  if (s->st != ST_BASE) goto out;
  sl_diag_info("sent stream %s its base at txid %llu: %.1f MiB in %.1f s; the log follows", s->opt->stream,
              (unsigned long long)txid, (double)nsent / (1 << 20), (double)(sl_mono_ns() - t0) / 1e9);
  s->st = ST_STREAMING;
  s->report_dirty = true;
out:
  if (p[0] >= 0) close(p[0]); /* a dump still writing stops (EPIPE) */
  if (started) pthread_join(thread, NULL);
  if (started && s->st == ST_BASE && j.rc)
    fatal(s, j.rc, "the base of stream %s: dumping %s failed: %s", s->opt->stream, dir, sl_strerror(j.rc));
  if (s->st == ST_BASE && *s->stop) {
    disconnect(s);
    s->st = ST_STOPPED;
  } else if (s->st == ST_BASE) {
    transient(s, SL_EEND, "the base of stream %s ended early (%llu bytes sent)", s->opt->stream,
              (unsigned long long)nsent);
  }
  if (j.st) sl_store_close(j.st);
  free(buf);
  return s->st == ST_FAILED ? s->rc : 0;
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
  report(s, sl_mono_ns());
  for (;;) {
    if (*s->stop) {
      s->st = ST_STOPPED;
      return 0;
    }
    uint64_t now = sl_mono_ns();
    if (now >= until) break;
    int rc = pump(s, (int)SL_MIN((until - now) / 1000000u + 1, (uint64_t)IDLE_WAKE_MS));
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

static int setup(shipper *s, const sl_shipper_options *opt, volatile sig_atomic_t *stop) {
  int rc;
  s->opt = opt;
  s->stop = stop;
  s->fd = -1;
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
  snprintf(s->rep.consumer, sizeof s->rep.consumer, "ship-%s", opt->stream);
  char shipdir[PATH_MAX];
  snprintf(shipdir, sizeof shipdir, "%s/ship", opt->store_dir);
  if (snprintf(s->rep.status_path, sizeof s->rep.status_path, "%s/%s.status", shipdir,
               opt->stream) >= (int)sizeof s->rep.status_path)
    return -ENAMETOOLONG;

  if ((rc = read_store_id(s))) return rc;
  if ((rc = sl__ship_metrics_open(opt->metrics, opt->stream, s->logdir, &s->mx))) return rc;
  if ((rc = sl_mkdir_p(shipdir))) {
    sl_diag_error("%s: %s", shipdir, sl_strerror(rc));
    return rc;
  }
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
  if ((rc = sl_buf_reserve(&s->rbuf, RECV_BUF_BYTES)) || (rc = sealer_start(&s->z))) return rc;
  return reporter_start(&s->rep);
}

int sl_shipper_run(const sl_shipper_options *opt, volatile sig_atomic_t *stop) {
  shipper *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  sl_diag_context(opt->stream, opt->to);
  int rc = setup(s, opt, stop);
  if (rc) goto done;
  report(s, sl_mono_ns());
  while (s->st != ST_STOPPED && s->st != ST_FAILED) {
    switch (s->st) {
    case ST_CONNECTING: session_connect(s); break;
    case ST_HANDSHAKE: session_handshake(s); break;
    case ST_STREAMING: session_stream(s); break;
    case ST_BASE: session_base(s); break;
    case ST_BACKOFF: session_backoff(s); break;
    default: break;
    }
    if (*stop && s->st != ST_FAILED) {
      disconnect(s);
      s->st = ST_STOPPED;
    }
  }
  rc = s->st == ST_FAILED ? s->rc : 0;
  /* Final reports: the last acknowledged position and the final state. */
  if (s->sessions) reporter_consumer(&s->rep, s->confirmed, false);
  report(s, sl_mono_ns());
done:
  disconnect(s);
  sealer_stop(&s->z);
  reporter_stop(&s->rep);
  sl__ship_metrics_close(s->mx);
  sl__tail_close(s->tail);
  sl__io_close(s->io);
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
  return 0;
}
