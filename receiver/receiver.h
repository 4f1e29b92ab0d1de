/*
 * receiver: accepts replication streams from many primaries, keeps each
 * stream's durable archive and applies it to the stream's hot standby.
 *
 * DATA DIRECTORY (spec/cli.md)
 *   DIR/streams/NAME/archive/    the stream's log: the store's own segment
 *                                format (store/log.h), store id = the primary's
 *   DIR/streams/NAME/standby/    a no_log store (store/store.h) that any
 *                                process may open read-only; present when the
 *                                archive starts at txid 1, or once a base
 *                                (a snapshot the archive continues; base.c,
 *                                BASE SHIPPING) is there and reached
 *   DIR/streams/NAME/snapshots/  base snapshots of the standby (receiver/
 *                                pitr.h): on a schedule, after so many
 *                                archived bytes, or by `shiplog snapshot`
 *   DIR/streams/NAME/status      key=value lines, rewritten (no fsync) as
 *                                things change; read by `shiplog status`
 *   DIR/streams/NAME/state       key=value lines written atomically (fsync)
 *                                at most once a second when they change:
 *                                durable (txid) and reachable_time_us, the
 *                                primary's clock as last reported (commits
 *                                and heartbeats) counted only once the
 *                                archive durably held every transaction the
 *                                primary had committed by then. A restore
 *                                to a time T <= reachable_time_us misses
 *                                nothing; status carries the same key,
 *                                fresher (every 100 ms, no fsync), and a
 *                                reader takes the larger: each value is
 *                                backed by fsynced archive frames when it
 *                                is written, so neither can overstate.
 *
 * STANDBY DURABILITY: the standby is written without sync (store.h, no_log)
 * and synced about once a second by the stream's keeper thread; after a
 * power loss the receiver rebuilds it at start from the newest snapshot the
 * archive continues (or from an empty store when the archive starts at
 * txid 1) and the worker replays the archive into it.
 *
 * PER BATCH: verify (sl_batch_open) -> append frames to the archive ->
 * fdatasync (group: batches already waiting in the socket are appended first)
 * -> Ack{durable} -> the stream's applier thread applies archived frames to
 * the standby in order, one LMDB transaction per group of transactions
 * (readers never see half a transaction) -> Ack{applied}. Everything is
 * positioned by txid: a batch that overlaps what is durable is trimmed, a
 * gap is refused (ERR_GAP), another store id is refused for good
 * (ERR_STORE_ID), a corrupt batch is refused (ERR_CORRUPT) and the
 * connection closed; what is durable stays. Other streams go on.
 *
 * One shipper per stream: a new connection for a stream (same store id)
 * is refused for good (Error{ERR_BUSY, permanent}, naming the owner) while
 * the connection that has it is alive -- the owner receives a batch or a
 * heartbeat while the newcomer waits; it waits for the owner to leave (a
 * shipper that reconnects closed its old connection) or to stay silent for
 * timeout_ms, and then takes over (the old one is shut down) -- only once
 * nothing refuses it for good (forbidden, another store id, behind,
 * diverged: all judged before the takeover), so a refused shipper never
 * disturbs the live one.
 *
 * LINEAGE (failover; store/lineage.h has the rules, README "Failover").
 * The archive keeps its history (ARCHIVE/history) and rolling checksum
 * like any log. On every Hello that carries a checksum the receiver
 * judges the shipper's history (its epochs and cs at its committed txid)
 * against the archive's -- first against the stream's durable lineage
 * (history, txid, cs, kept under the stream's lock) before taking the
 * stream, then again as its owner (the archive may have grown): equal or extends -> Welcome (with the archive's
 * history and cs at its last txid); behind (fewer txids of the same
 * history, or as many but the stream moved on to a newer epoch: it was
 * promoted) -> Error{ERR_DIVERGED, permanent, "behind: ..."}; diverged ->
 * Error{ERR_DIVERGED, permanent, "diverged: ..."} naming the txids only
 * the shipper has and the commands (log --diverged, rewind). Every Batch
 * carries cs at its last txid; the receiver folds the new frames into its
 * own chain before archiving them and refuses a mismatch the same way, so
 * a diverged transaction never reaches the archive. A frame of an epoch
 * older than the archive's is refused by the log itself. A new stream's
 * archive starts from the Hello's start_checksum and the shipper's epochs
 * up to its first txid. `shiplog promote` (receiver stopped) records the
 * new epoch in the archive: from then on the old primary is behind or
 * diverged, and the new one (same history) extends the stream.
 *
 * SECURITY (README "Security"): with TLS (tls_cert, tls_key, tls_ca) a
 * shipper must present a certificate that chains to tls_ca, and with an
 * allow list it may open only the streams that name one of its
 * certificate's identities (subject CN or DNS SAN): anything else is
 * Error{ERR_FORBIDDEN, permanent}, checked before the stream is looked at,
 * so a shipper cannot create, take over or write another's stream. A
 * plain-TCP shipper is answered Error{ERR_VERSION, permanent} ("this
 * receiver requires TLS"). insecure: plain TCP, no authentication.
 * Limits that hold before authentication: max_connections overall,
 * max_connections_per_peer per peer address -- a connection past either
 * evicts the oldest one that has not said its Hello yet (older than 1 s,
 * at most half the Hello deadline), and is closed at accept only when there
 * is none -- and the TLS handshake plus the Hello
 * must arrive within 5 s (at most timeout_ms) of the accept (a silent or
 * trickling client loses its slot). Log lines about such connections are
 * rate-limited per address (a line a second after a burst, with a count of
 * the suppressed ones). The data
 * directory (and DIR/streams) must not be writable by group or others
 * (SL_EINVAL naming it and its mode); what the receiver creates is 0700 /
 * 0600.
 */
#ifndef SL_RECEIVER_H
#define SL_RECEIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "metrics.h"

struct sl__receiver;
struct sl_store;
typedef struct sl_receiver_options {
  const char *listen;          /* HOST:PORT; port 0 picks one (see ready_fd) */
  const char *data_dir;
  int heartbeat_ms;            /* 0: 1000 */
  int timeout_ms;              /* silent shipper; 0: 10000 */
  size_t max_batch_bytes;      /* raw; 0: SL_BATCH_RAW_MAX. A batch of one frame is
                                  taken up to SL_BATCH_FRAME_MAX whatever this is */
  int max_connections;         /* 0: 256 */
  int max_connections_per_peer;/* from one peer address; 0: 16 */
  /* TLS 1.3 files (PEM), or insecure (plain TCP): exactly one of the two,
   * else sl_receiver_run returns SL_EINVAL. allow_file (TLS only): the
   * allow list (receiver/allow.c); NULL lets every certificate that
   * chains to tls_ca open every stream (warned at start). */
  const char *tls_cert, *tls_key, *tls_ca;
  const char *allow_file;
  bool insecure;
  /* At-rest encryption (crypt/crypt.h; README "Security"): NULL, or the
   * keys that open sealed frames for the standby and seal snapshots. Frames
   * that arrive in clear are sealed with its first key before they are
   * archived, as a shipper with that key would seal them (the standby
   * still applies the plaintext). A stream whose frames are sealed with a
   * key not in it is archive-only: durable acks, no standby. Must outlive
   * sl_receiver_run. */
  sl_keyring *keyring;
  int ready_fd;                /* >= 0: write "PORT\n" here once listening, then close it */
  uint64_t segment_size;       /* archive segments of new streams; 0: SL_SEG_SIZE_DEFAULT */
  /* Snapshots of each standby (0: never by that rule): every N seconds,
   * and when the archive grew by N bytes since the newest snapshot (what a
   * restore from it would replay). Taken by the stream's keeper thread from
   * an LMDB read transaction while the worker goes on applying. */
  uint64_t snapshot_every_s;
  uint64_t snapshot_after_bytes;
  /* BOUNDED RTO: also snapshot when a restore from the newest snapshot
   * would replay longer than this (0: not by that rule), estimated as the
   * archive bytes since that snapshot over the replay speed measured on
   * this receiver (the standby's apply rate: bytes applied per second of
   * applying). Status files carry the rate and the estimate (`shiplog info`). */
  double max_replay_s;
  /* RETENTION kept by the receiver (pitr.h sl_prune_stream's rules, run by
   * each stream's keeper every 10 s and after each snapshot): keep the
   * newest retain_snapshots snapshots and those of the last retain_days
   * days (plus the newest before them); 0 for both: nothing is removed.
   * Archive segments below the oldest kept base go too; a file whose
   * upload to object storage is not confirmed stays. The uploader applies
   * the same rules to object storage (receiver/s3.h). */
  uint64_t retain_snapshots;
  double retain_days;
  bool off_site;               /* an uploader archives DIR to object storage (s3.h) */
  sl_metrics *metrics;         /* NULL, or where the streams' metrics go (README
                                  "Operations"); must outlive sl_receiver_run */
  void (*on_ready)(void *arg); /* NULL, or called once the listener is up */
  void *ready_arg;
  /* Readers of the standbys in this process (`receive --bolt`): NULL, or
   * on_streams is called with the receiver once its streams are open (for
   * sl_receiver_standby, from any thread), and before_close once the
   * listener stopped, before the standbys close: the readers must be gone
   * when it returns. The receiver never waits for them otherwise (LMDB read
   * transactions: applying goes on beside them). */
  void (*on_streams)(void *arg, struct sl__receiver *r);
  void (*before_close)(void *arg);
  void *streams_arg;
  const char *bolt_address;    /* NULL, or the standbys' Bolt address, told to shippers
                                  (Welcome.bolt_address) for the primary's routing table */
} sl_receiver_options;

int sl_receiver_run(const sl_receiver_options *opt, atomic_int *stop);

/* The hot standby of stream `name` (NULL: the only stream, when there is
 * exactly one) while sl_receiver_run runs: 0 with *st (open until
 * before_close returns; read it through views), *epoch and *history (the
 * archive's newest epoch and its epoch history through its durable txid,
 * store/lineage.h; read after the standby's applied txid, they cover it),
 * its name in name_out and the primary's Bolt address as its shipper last
 * said ("" when none) in primary_bolt. -ENOENT: no such stream; -EAGAIN:
 * it has no standby now (being built, stopped, archive only). */
struct sl_history;
int sl_receiver_standby(struct sl__receiver *r, const char *name, struct sl_store **st, uint64_t *epoch,
                        struct sl_history *history, char name_out[65], char primary_bolt[256]);

typedef struct sl_stream_status {
  char name[65];
  char state[32];              /* connected, disconnected, stopped, archive-only, unrestorable */
  char peer[80];
  uint64_t first_txid;         /* archive's first txid */
  uint64_t received;           /* newest txid appended to the archive (durable soon) */
  uint64_t durable, applied;
  uint64_t primary_committed;  /* as last reported by the shipper */
  uint64_t primary_time_us;    /* primary clock as last reported (commits, heartbeats) */
  uint64_t last_commit_us;     /* commit time of the newest durable transaction */
  uint64_t reachable_time_us;  /* restores to times up to this miss nothing (state above) */
  uint64_t bytes, batches;
  uint64_t lag_ms;
  uint64_t updated_us;
  /* What a restore can reach (pitr.h; README "Base shipping"): restorable
   * from restorable_txid (the oldest base the archive continues; 0: the
   * empty store) whose commit time is restorable_us. base: "ok", "pending"
   * (a base is stored, the archive has not reached its txid yet),
   * "receiving" (a base on its way) or "none": then state is
   * "unrestorable" and error says why. */
  bool restorable;
  uint64_t restorable_txid, restorable_us;
  char base[16];
  char error[256];
  /* BOUNDED RTO (options above): the standby's apply rate in archive bytes
   * per second, and how long a restore from the newest snapshot would
   * replay, at that rate (has_replay_estimate false: nothing applied yet). */
  bool has_replay_estimate;
  uint64_t replay_bytes_per_s;
  double replay_estimate_s;
  /* the running (or last) receiver's retention rules (options above) */
  uint64_t retain_snapshots;
  double retain_days;
} sl_stream_status;
/* Status of one stream, from its directory (works while the receiver runs). */
int sl_stream_status_read(const char *data_dir, const char *stream, sl_stream_status *out);

/* ---- the data directory's layout (DATA DIRECTORY above): its one spelling ---------
 * Everything outside receiver/ that finds a stream's parts (cli/, tools)
 * goes through these names and helpers. */
#define SL_RECEIVER_LOCK_FILE "receiver.lock" /* DIR/receiver.lock */
#define SL_STREAMS_DIR "streams"              /* DIR/streams/NAME */
#define SL_STREAM_ARCHIVE "archive"
#define SL_STREAM_STANDBY "standby"
#define SL_STREAM_SNAPSHOTS "snapshots"
#define SL_STREAM_PROMOTED "promoted"         /* receiver/failover.h */
/* Into buf (len bytes, truncated to fit; returns buf): DIR/streams when
 * stream is NULL, else DIR/streams/STREAM, and /SUB after it when sub is
 * not NULL (one of the names above). */
const char *sl_stream_path(char *buf, size_t len, const char *data_dir, const char *stream, const char *sub);
/* Take DIR's receiver lock (DIR/receiver.lock, created 0600, flock()ed
 * exclusively without waiting): while the caller holds it no receiver
 * serves DIR, and a receiver holds it for its whole run. *fd_out: close it
 * to release. SL_ELOCKED when it is held (not logged: the caller says what
 * it was for); -errno opening it, logged naming the file. */
int sl_receiver_lock(const char *data_dir, int *fd_out);

#endif
