/*
 * shipper_int.h: what the files of shipper/ share (module-private, not the
 * contract: that is shipper.h). The session (shipper.c) owns the shipper
 * object and its state machine; the pipeline (pipeline.c) fills, seals and
 * sends batches under the window; base.c sends a base; reporter.c writes
 * the consumer position and the status file in the background.
 *
 * Every sl__ship_* function here takes the streaming thread's shipper and is
 * called on that thread only, except the reporter's and the sealer's, which
 * are the hand-offs to their threads. A function that fails has already
 * moved the state (sl__ship_transient or sl__ship_fatal) and logged, as
 * shipper.c's SESSION STATES says.
 */
#ifndef SL_SHIPPER_INT_H
#define SL_SHIPPER_INT_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "io.h"
#include "lineage.h"
#include "log.h"
#include "ship_metrics.h"
#include "shipper.h"
#include "sl_base.h"
#include "store.h"
#include "tail.h"

/* The options' defaults (as shipper.h states them) and the tunables. */
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

typedef enum state { ST_CONNECTING, ST_HANDSHAKE, ST_STREAMING, ST_BACKOFF, ST_STOPPED, ST_FAILED, ST_BASE } state;

typedef struct reporter {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char logdir[PATH_MAX];
  char consumer[SL_LOG_CONSUMER_NAME_MAX + 1];
  char status_path[PATH_MAX];
  int alive_fd;             /* ship/STREAM.lock (shipper.h ALIVE LOCK); -1: none */
  bool owner;               /* holds it: the status file is this shipper's (reporter thread) */
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

/* A batch on its way: raw frames, the compressed Batch, then the whole
 * framed message. */
typedef struct slot {
  sl_buf raw, lz4, wire;
  sl_buf sealed;                 /* raw with every frame sealed (keyring) */
  sl_keyring *kr;                /* NULL: frames go as they are */
  bool lz4_frames;               /* kr: compress before sealing (the session's receiver reads it) */
  const uint8_t *store_id;
  uint64_t first, last, commit_us, start_ns;
  uint64_t cs_before, cs;        /* LINEAGE: rolling checksum before first / through last */
  uint32_t raw_crc;              /* CRC32C of raw, folded in as it is read (no keyring) */
  Shiplog__Repl__Batch bt;       /* sealed: Batch.data points into lz4 */
  int rc;                        /* sealing result */
} slot;

/* Batches in order through a ring (see pipeline.c, PIPELINE): batch i lies in
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

typedef struct sent {
  uint64_t last_txid, commit_us;
  size_t bytes;
} sent;

typedef struct shipper {
  const sl_shipper_options *opt;
  atomic_int *stop;
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
  int lock_fd; /* store.h SHIPPING LOCK: held while shipping a store (not a cascade) */
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
  bool sealed_lz4;               /* the receiver reads compressed sealed frames (Welcome) */
  uint64_t bytes, batches, reconnects, sessions;
  uint64_t acks;                 /* Acks received (the one that confirms a base) */
  uint64_t compressed_bytes;     /* Batch.data bytes sent (after compression) */
  uint64_t last_send_ns, last_recv_ns, report_ns, caught_up_ns;
  bool mark_dirty, report_dirty;
  int backoff_ms;
  uint64_t rng;
  int logged_rc;
  char error[1024];           /* a receiver's refusal may name commands to run */
  char standby_bolt[256];     /* the last Welcome's bolt_address (ROUTING), "" if none */
  char primary_bolt[256];     /* STORE/bolt.address as last sent (Hello, Heartbeat), "" if none */
  uint64_t bolt_check_ns;     /* when STORE/bolt.address was last looked at */
} shipper;

/* ---- shipper.c: the session ------------------------------------------------------ */

/* Close the connection and forget every batch on its way. */
void sl__ship_disconnect(shipper *s);
/* A failure worth retrying (to BACKOFF) / one that ends the shipper (to
 * FAILED; fmt NULL: already logged). Both return rc. */
__attribute__((format(printf, 3, 4))) int sl__ship_transient(shipper *s, int rc, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int sl__ship_fatal(shipper *s, int rc, const char *fmt, ...);
/* Hand the status file and the metrics the current numbers. */
void sl__ship_report(shipper *s, uint64_t now_ns);
int sl__ship_send_bytes(shipper *s, const uint8_t *buf, size_t len);
int sl__ship_net_failed(shipper *s, int rc, const char *what);
int sl__ship_send_msg(shipper *s, const Shiplog__Repl__Message *m);
/* Read the log's durable mark into s->committed. */
int sl__ship_refresh_mark(shipper *s);
/* The receiver takes the stream again: end the quiet period of a logged failure. */
void sl__ship_recovered(shipper *s);
/* Wait for the log, the receiver or timeout_ms, and handle what came. */
int sl__ship_pump(shipper *s, int timeout_ms);

/* ---- pipeline.c: batches, the sealer, the window, STREAMING -------------------------- */

int sl__ship_sealer_start(sealer *z);
/* Wait until the sealer is idle, and empty the ring. */
void sl__ship_sealer_reset(sealer *z);
void sl__ship_sealer_stop(sealer *z);
/* The send window's invariants, asserted in every build. */
void sl__ship_window_check(const shipper *s);
int sl__ship_send_heartbeat(shipper *s);
/* ROUTING: read STORE/bolt.address into primary_bolt ("" when there is
 * none); true when it differs from what was there (a Heartbeat says so). */
bool sl__ship_bolt_changed(shipper *s);
/* STREAMING until the state moves on. */
int sl__ship_session_stream(shipper *s);

/* ---- base.c: BASE ---------------------------------------------------------------- */

/* Send the base, then move on to STREAMING (or the state a failure takes). */
int sl__ship_session_base(shipper *s);

/* ---- reporter.c: the background writer --------------------------------------------- */

int sl__ship_reporter_start(reporter *r);
/* Post a consumer position; with wait, return once it is on disk. */
int sl__ship_reporter_consumer(reporter *r, uint64_t txid, bool wait);
void sl__ship_reporter_status(reporter *r, const char *text);
bool sl__ship_reporter_own(reporter *r);
/* Write what is pending and end the thread. */
void sl__ship_reporter_stop(reporter *r);

#endif
