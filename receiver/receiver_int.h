/*
 * Module-private declarations of the receiver (every receiver/ source).
 * Nothing outside receiver/ includes this file.
 *
 * Who does what:
 *   receiver.c  the listener: the accept loop, one thread per connection,
 *               the connection limits (eviction) and the log budget.
 *   session.c   one connection's session (TLS, handshake, batches, bases,
 *               acks, heartbeats).
 *   stream.c    one stream's state: its archive log and positions, the
 *               owner's side (attach, append, sync, takeover), the stream
 *               registry.
 *   standby.c   the stream's hot standby: the worker thread (applies,
 *               writes status), the keeper thread, its rebuild, bases.
 *   stream_status.c  the status file (written, and read by other processes).
 *
 * LOCKING: sl__receiver.mu guards the registry (streams are added, never
 * removed while the receiver runs). sl__stream.mu guards every field of a
 * stream marked (mu); the archive log is used only by the stream's owner
 * (the one connection attached to it), so appends need no lock of ours.
 */
#ifndef SL_RECEIVER_INT_H
#define SL_RECEIVER_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "codec.h"
#include "lineage.h"
#include "log.h"
#include "pitr.h"
#include "receiver.h"
#include "store.h"

/* The data directory's names (DIR/receiver.lock, DIR/streams/NAME/...) are
 * in receiver.h, with the helpers cli/ uses. A stream directory is built under NAME~new and renamed into place, so a
 * crash never leaves half a stream ('~' is not allowed in stream names). */
#define SL__NEW_SUFFIX "~new"
/* DIR/streams/NAME/state (receiver.h). */
#define SL__STATE_FILE "state"

typedef struct sl__receiver sl__receiver;
typedef struct sl__allow sl__allow;
typedef struct sl__stream_metrics sl__stream_metrics;
typedef struct sl__base_rx sl__base_rx;   /* base.c */

/* SYNCER (stream.c): what a sync through the archive's newest frame
 * publishes: that txid and the archive's lineage there. */
typedef struct sl__sync_point {
  uint64_t target, cs, commit_us;
  sl_history hist;
} sl__sync_point;

typedef struct sl__stream {
  sl__receiver *r;
  char name[65];
  char *dir, *archive_dir, *standby_dir, *status_path, *snap_dir;
  /* (mu) The primary's store id, from the archive's segment headers; known
   * (id_known) even when the archive cannot be opened, so that a shipper
   * is judged by the archive's real owner, never by a zero id. */
  uint8_t store_id[SL_STORE_ID_SIZE];
  bool id_known;
  uint64_t tail_cut_from;   /* at load: the durable mark a damaged tail was cut below (0: none) */

  pthread_mutex_t mu;
  pthread_cond_t cond;      /* worker: durable moved, status dirty, stop */
  pthread_cond_t owner_cond;/* takeover: the owner left */

  /* Archive, used by the owner only. NULL after an I/O failure: the next
   * owner reopens it (recovery cuts a torn tail). */
  sl_log *log;
  char log_error[200];      /* why log is NULL */

  sl_store *standby;        /* NULL when the archive does not start at 1 */
  pthread_t worker;
  bool worker_running;
  /* The keeper thread: state file, standby syncs, snapshots (standby.c). */
  pthread_t keeper;
  bool keeper_running;
  pthread_cond_t keeper_cond; /* stop */
  atomic_bool snap_cancel;

  int notify_fd;            /* eventfd: applied or durable moved, or a sync failed; the owner sends an Ack */
  /* SYNCER (stream.c), all (mu): the owner's session's sync thread, the
   * newest sync it was asked for (the archive's lineage at that frame),
   * a sync in flight, and a failed one left for the owner. */
  pthread_t syncer;
  bool syncer_running, syncer_stop, syncing;
  pthread_cond_t sync_cv;   /* a request, stop, or the end of a sync in flight */
  sl__sync_point sync_want;
  int sync_rc;
  sl_conn *owner;           /* (mu) the attached connection, or NULL */
  _Atomic uint64_t owner_rx_ns; /* when the owner last received a message (sl_mono_ns) */
  char peer[80];            /* (mu) the owner's, or the last one's */
  char primary_bolt[256];   /* (mu) the last Hello's Bolt address ("": none) */

  /* (mu) the archive's lineage through its durable txid (history, txid,
   * cs): what a Hello is judged against before the connection takes the
   * stream, so that a refused shipper never disturbs the live owner.
   * lin_valid is false until the archive was opened once. */
  sl_history lin_hist;
  uint64_t lin_last, lin_cs;
  bool lin_valid;

  /* (mu) positions, inclusive txids */
  uint64_t first_txid, received, durable, applied;
  uint64_t primary_committed, primary_time_us, primary_report_us;
  uint64_t last_commit_us;       /* newest durable transaction */
  uint64_t applied_commit_us;    /* newest applied transaction */
  uint64_t behind_since_us;      /* receiver clock when applied fell behind; 0: caught up */
  uint64_t bytes, batches;
  uint64_t reachable_us;         /* receiver.h, "state" */
  uint64_t pending_committed, pending_time_us; /* a report not yet covered by durable */
  uint64_t snap_bytes;           /* archived since the newest snapshot (about) */
  /* BOUNDED RTO (receiver.h max_replay_s): archive bytes the standby
   * applied and the time its applies took (apply calls only, so an idle
   * stream does not look slow), seeded from the last run's status; and
   * the replay a restore from the newest snapshot would need now, in ms,
   * from the two (UINT64_MAX: not measured yet). */
  uint64_t apply_bytes, apply_ns;
  uint64_t replay_estimate_ms;
  /* BASE SHIPPING (base.c): a base stored as snapshot base_txid, from
   * which the worker builds the standby once durable reaches it (0: none
   * waiting); base_receiving while a connection writes one. */
  uint64_t base_txid;
  bool base_receiving;
  bool standby_stopped;          /* an apply failed: archiving goes on */
  bool standby_ahead;            /* the archive failed below applied (stream.c, POSITIONS) */
  bool archive_only;             /* with standby_stopped: frames sealed with a key we lack */
  bool archive_failing;          /* an append or sync failed, nothing durable since: error stays */
  char error[256];
  bool stop, dirty;
  uint64_t status_written_ns;
  sl__stream_metrics *mx;   /* rx_metrics.c; NULL without metrics */
} sl__stream;

/* receiver.c, LOG BUDGET: per peer address, a token bucket for the lines
 * logged about its connections before they are authenticated. */
#define SL__NOTE_PEERS 64
typedef struct sl__peer_note {
  char host[64];
  uint64_t refill_ns;       /* tokens were last counted then */
  unsigned tokens, suppressed;
} sl__peer_note;

struct sl__receiver {
  sl_receiver_options opt;
  pthread_mutex_t note_mu;  /* notes */
  sl__peer_note notes[SL__NOTE_PEERS];
  char *data_dir, *streams_dir;
  int lock_fd;
  sl_tls_ctx *tls;          /* NULL: insecure plain TCP */
  sl__allow *allow;         /* NULL: no allow list */
  pthread_mutex_t mu;
  sl__stream **streams;     /* (mu) */
  size_t nstreams, cap;
};

/* ---- receiver.c: the listener ------------------------------------------------------ */
/* Longest sleep of a poll loop (the listener's, a session's): *stop is
 * noticed within it. */
#define SL__POLL_MAX_MS 200

/* One connection, owned by the listener's list (freed when its thread is
 * joined); its thread (session.c) uses every field. */
typedef struct sl__conn_ctx {
  sl__receiver *r;
  atomic_int *stop;
  sl_conn *c;
  pthread_t thread;
  bool done;                /* (r->mu) the thread has finished */
  struct sl__conn_ctx *next;    /* (r->mu) */
  char host[64];            /* the peer's address without the port */
  uint64_t accepted_ns;
  /* (r->mu to change) introduced: its certificate verified (TLS) or its
   * Hello passed the allow list, so it is never evicted; evicted: closed
   * before that to make room
   * for a newer connection (LIMITS). */
  atomic_bool introduced, evicted;
  atomic_bool spoke;        /* its first bytes arrived (LIMITS, spoke()) */
  sl__stream *s;
  size_t max_body;
  sl_buf raw;               /* decompressed batch */
  sl_buf sealed;            /* its new frames sealed here (seal_batch) */
  uint64_t sent_durable, sent_applied;
  uint64_t last_tx_ns, last_rx_ns;
  bool refused;             /* an Error was sent: close gently (sl_conn_linger) */
  bool base_wanted;         /* BASE SHIPPING: Welcome.need_base was sent, no base stored yet */
  sl__base_rx *base;        /* a base being received (base.c) */
} sl__conn_ctx;

/* LOG BUDGET: a line about connection cx, within its address's budget
 * until it is introduced (a flood of connections cannot flood the log);
 * nothing once it was evicted (the eviction said why). */
enum { SL__NOTE_INFO, SL__NOTE_WARN, SL__NOTE_ERROR };
void sl__conn_log(sl__conn_ctx *cx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* LIMITS: the deadline for TLS and the Hello after the accept, in ms. */
int sl__hello_ms(const sl__receiver *r);

/* ---- session.c: one connection's session ------------------------------------------ */
/* The connection's thread (arg: its sl__conn_ctx): TLS, the handshake,
 * then the session until it ends; sets done (r->mu) last. */
void *sl__conn_main(void *arg);
/* Send Error{code} to the peer (any time, also before a session starts). */
int sl__conn_send_error(sl__conn_ctx *cx, Shiplog__Repl__ErrorCode code, bool permanent, const char *text);

/* ---- allow.c: the allow list (README "Security") ---------------------------------- */
/* Read FILE; a bad line refuses it all ("FILE:LINE: reason" logged):
 * SL_EINVAL, -errno. */
int sl__allow_load(const char *path, sl__allow **out);
/* May a certificate with these identities open stream? */
bool sl__allow_check(const sl__allow *a, const char *stream, const char *const *ids, size_t nids);
size_t sl__allow_count(const sl__allow *a);   /* streams named */
void sl__allow_free(sl__allow *a);

/* ---- stream.c --------------------------------------------------------------- */
/* Small helpers shared by stream.c, standby.c and stream_status.c. */
char *sl__rx_join(const char *a, const char *b);     /* "a/b", malloc'd; NULL: no memory */
void sl__hex_id(const uint8_t *id, char out[2 * SL_STORE_ID_SIZE + 1]);
bool sl__dir_exists(const char *path);
void sl__deadline_after_ms(struct timespec *ts, long ms); /* CLOCK_MONOTONIC, as the conds use */
/* POSITIONS in order (mu held): durable <= received, applied <= received
 * (SL_ASSERT; stream.c says when applied may be past received). */
void sl__stream_positions_check(const sl__stream *s);

/* Open every stream under DIR/streams (archive recovery; appliers start and
 * catch up from the archive). A stream that cannot be opened is logged and
 * kept with log == NULL, so other streams are served. */
int sl__streams_open_all(sl__receiver *r);
/* Stop appliers, write final status, close everything. */
void sl__streams_close_all(sl__receiver *r);

/* Find stream `name`, or create it with the hello's store id and first txid;
 * a new archive's lineage starts from start_cs (cs(first_txid - 1)) and the
 * entries of hist up to first_txid (store/lineage.h).
 * SL_ESTOREID when it exists with another id; *why gets the text to log and
 * send back. */
struct sl_history;
int sl__stream_get(sl__receiver *r, const char *name, const uint8_t *store_id,
                   uint64_t first_txid, uint64_t start_cs, const struct sl_history *hist,
                   sl__stream **out, char *why, size_t whylen);

/* Make connection c the stream's only one (ONE SHIPPER PER STREAM in
 * stream.c). An attached owner that shows it is alive (a message received
 * after c arrived) keeps the stream: -EBUSY, *why says so (a permanent
 * refusal). One that leaves meanwhile (a shipper that reconnects closed it)
 * makes room; one silent for live_ms is dead: it is shut down and waited
 * for (up to live_ms; SL_ELOCKED if it does not leave). Reopens a failed
 * archive (its error in *why). */
int sl__stream_attach(sl__stream *s, sl_conn *c, int live_ms, char *why, size_t whylen);
/* The owner received a message (any thread; atomic). */
void sl__stream_heard(sl__stream *s);
void sl__stream_detach(sl__stream *s, sl_conn *c);

/* Append the frames of a verified batch whose txids continue the archive
 * (frames below the archive's next txid are skipped). Errors as
 * sl_log_append; after a write error the archive is closed (see log). */
int sl__stream_append(sl__stream *s, const uint8_t *raw, size_t len);
/* Wait until every appended frame is durable, publish it, wake the worker.
 * SL_EFAILED when a failure closed the archive. On the owner's thread,
 * while its syncer is stopped. */
int sl__stream_sync(sl__stream *s);
/* SYNCER (stream.c): the owner's session starts its sync thread once it
 * streams and stops it before it leaves; meanwhile it asks for a sync of
 * everything appended after each group (false: all of it is durable
 * already; else the syncer pokes notify_fd once it is), and after a poke
 * takes a failed sync's code (0: none; the archive is then closed, as after
 * a failed append). Owner only. */
int sl__syncer_start(sl__stream *s);
bool sl__syncer_request(sl__stream *s);
int sl__syncer_failed(sl__stream *s);
void sl__syncer_stop(sl__stream *s);
/* Wake the owner (notify_fd). */
void sl__stream_poke(sl__stream *s);
/* Archive the next frames in segments of key_id (NULL: plaintext), as the
 * batch carrying them says (log.h: a new key starts a segment). */
void sl__stream_set_key(sl__stream *s, const char *key_id);
/* Next txid the archive expects. */
uint64_t sl__stream_next_txid(sl__stream *s);

void sl__stream_note_primary(sl__stream *s, uint64_t committed, uint64_t time_us);
void sl__stream_note_batch(sl__stream *s, uint64_t bytes, uint64_t last_commit_us);
void sl__stream_set_error(sl__stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl__stream_positions(sl__stream *s, uint64_t *durable, uint64_t *applied);
/* The archive's lineage as of its durable txid (lin_* above); false when
 * it is not known (the archive never opened). */
bool sl__stream_lineage(sl__stream *s, sl_history *h, uint64_t *last, uint64_t *cs);

/* ---- standby.c: the standby's threads and rebuild ------------------------------------ */
/* Start the worker and keeper threads; stop them (wakes and joins both). */
int sl__stream_start_threads(sl__stream *s);
void sl__stream_stop_threads(sl__stream *s);
/* At load, or once the archive opened (mu held, or the stream not yet
 * shared): open the standby, rebuilding it when missing or torn by a
 * power loss; other damage stops it, naming it. */
void sl__stream_prepare_standby(sl__stream *s);

/* BASE SHIPPING: whether the stream has neither a standby nor a base its
 * archive continues (a snapshot S with S + 1 >= its first txid), nor one
 * on the way: then a shipper that can is asked for one (Welcome.need_base). */
bool sl__stream_needs_base(sl__stream *s);
/* A connection starts (true) or stops (false) writing a base. */
void sl__stream_base_receiving(sl__stream *s, bool on);
/* A base is stored as snapshot txid: the worker builds the standby from it
 * once the archive is durable up to txid. */
void sl__stream_base_stored(sl__stream *s, uint64_t txid);

/* The bases of a stream whose archive holds first_txid..durable (pitr.h,
 * "What a stream can be restored to"), from SNAP_DIR's headers. */
typedef struct sl__bases {
  bool usable;                 /* a base at or below durable: restorable */
  uint64_t from_txid, from_us; /* the oldest usable one (0, 0: the empty store) */
  bool pending;                /* a base past durable: restorable once the archive reaches it */
  uint64_t newest;             /* the newest base the archive continues (0: none) */
} sl__bases;
void sl__stream_bases(const char *snap_dir, const uint8_t *store_id, uint64_t first_txid, uint64_t durable,
                      sl__bases *out);

/* ---- stream_status.c: the status file ------------------------------------------------ */
/* The status of the previous run, so that counters and the primary's last
 * report survive a receiver restart. */
void sl__stream_load_old_status(sl__stream *s);
/* Keep behind_since_us right after any position moved (mu held). */
void sl__stream_update_behind(sl__stream *s);
/* Write the status file if it changed (mu held; released during the write). */
void sl__stream_flush_status(sl__stream *s);

/* ---- base.c: receiving a base (proto/replication.proto, BASE SHIPPING) ------------- */
/* Start writing the base at txid for s (its owner's connection). Errors
 * (-errno, SL_EINVAL for a txid the archive does not continue) with the
 * reason in why. */
int sl__base_begin(sl__stream *s, uint64_t txid, sl__base_rx **out, char *why, size_t whylen);
/* Append a chunk (at most max bytes): errors as sl_base_chunk_check, -errno. */
int sl__base_chunk(sl__base_rx *b, const Shiplog__Repl__BaseChunk *c, size_t max, char *why, size_t whylen);
/* Check size, CRC and the dump header, make the file durable as the
 * stream's snapshot, tell the stream (sl__stream_base_stored), free b.
 * On error b is aborted and freed too. */
int sl__base_end(sl__base_rx *b, const Shiplog__Repl__BaseEnd *e, char *why, size_t whylen);
/* Drop a base in progress (its .tmp removed) and free b; NULL is a no-op. */
void sl__base_abort(sl__base_rx *b);

/* ---- snapshot.c, restore.c (pitr.h) ----------------------------------------------- */
/* Remove snapshot .tmp files whose writing process is gone. */
void sl__snapshots_clean(const char *snap_dir);
/* keep[k]: whether o's rules (keep_snapshots, keep_days) keep s[k] (s
 * ascending by txid; pitr.h, sl_prune_options). snapshot.c; the uploader
 * judges object storage's snapshots with it too. */
void sl__prune_choose_kept(const sl_snapshot *s, size_t n, const sl_prune_options *o, bool *keep);
/* flock() a stream's snapshots folder: shared by restores (waits), exclusive
 * by prune (SL_ELOCKED at once when held). *fd_out: close it to release. */
int sl__stream_lock(const char *snap_dir, bool exclusive, int *fd_out);
/* The larger reachable_time_us of the stream's state and status files (0
 * when neither says). */
uint64_t sl__stream_reachable_us(const char *stream_dir);
/* restore.c, shared with restore_s3.c: TARGET is missing or an empty
 * directory (else SL_EEXIST, logged); steps 3-4 of a restore into tmp. */
int sl__restore_target_free(const char *dir);
/* A segment file's header (-errno, SL_ETRUNCATED, or sl_seg_header_decode's
 * codes; not logged), and the store id in it. */
int sl__seg_header_read(const char *path, sl_seg_header *h);
int sl__seg_store_id(const char *path, uint8_t id[SL_STORE_ID_SIZE]);
/* The commit time of txid in ARCHIVE: 0, SL_ENOTFOUND when the archive does
 * not hold it, or the reader's error. */
int sl__archive_commit_time(const char *archive, uint64_t txid, uint64_t *us);
/* The archive's durable txid: its durable mark (store/log.h), or, when the
 * file is missing (it is derived), the last whole frame of the newest of
 * segs, as the archive's recovery would find it (warned). No segment:
 * 0. Errors of reading the mark or the segment otherwise. */
int sl__archive_durable(const char *archive, const sl_seg_info *segs, size_t nseg, uint64_t *durable);
/* HISTORY: whether snapshot s is of the history ARCHIVE holds (txids
 * first..durable): its last commit time is the archive's commit time of its
 * txid. A snapshot of another history with the same store id (a copied
 * store's, a file copied between streams) committed that txid at another
 * microsecond; one taken before the two forked is the same state and
 * passes. True when the archive does not hold the txid (nothing to
 * compare). *archive_us: the archive's time (0 when not compared). */
bool sl__snapshot_in_history(const char *archive, const sl_snapshot *s, uint64_t first, uint64_t durable,
                             uint64_t *archive_us);
/* "a snapshot of another history (its txid N committed at .. us, the
 * archive's at .. us)" in buf, for the messages of those that leave one out. */
const char *sl__other_history_why(char *buf, size_t len, const sl_snapshot *s, uint64_t archive_us);
/* *base_bad (may be NULL): the failure was base's damage (its load found
 * it corrupt or cut short), so an older base may serve instead. */
int sl__restore_build(const sl_restore_options *o, const char *archive, const uint8_t *store_id,
                      const sl_snapshot *base, uint64_t txid, const char *tmp, sl_restore_result *res, bool *base_bad);
/* upload.c: whether retention may remove the file at path of the stream in
 * sdir: true when the stream is not archived to object storage, or when its
 * upload is confirmed (listed in sdir/upload.json). */
bool sl__upload_confirmed(const char *sdir, const char *path);
/* sdir/upload.json (s3.h MANIFEST): SL_ENOTFOUND when the stream is not
 * archived to object storage; SL_ECORRUPT when it does not decode (logged). */
typedef struct sl_rx_s3_manifest sl_rx_s3_manifest;
int sl__upload_local_manifest(const char *sdir, sl_rx_s3_manifest *m);

/* ---- rx_metrics.c: Prometheus metrics (no-ops without opt.metrics) ------------------ */
/* Register / unregister the collect callback (stop before closing streams). */
int sl__rx_metrics_start(sl__receiver *r);
void sl__rx_metrics_stop(sl__receiver *r);
/* The stream's series (s->mx), when it is loaded; freed with the stream. */
void sl__rx_metrics_stream(sl__stream *s);
void sl__rx_metrics_stream_free(sl__stream *s);
/* Hot path, atomics only: a group made durable / applied whose newest
 * transaction committed at commit_us; a batch's raw and compressed bytes; a
 * refusal (s NULL before the hello). */
void sl__rx_metrics_durable(sl__stream *s, uint64_t commit_us);
void sl__rx_metrics_applied(sl__stream *s, uint64_t commit_us);
void sl__rx_metrics_batch(sl__stream *s, uint64_t raw, uint64_t compressed);
void sl__rx_metrics_rejected(sl__receiver *r, sl__stream *s, Shiplog__Repl__ErrorCode code);

#endif
