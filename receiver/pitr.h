/*
 * Point-in-time recovery from a receiver's data directory (spec/cli.md,
 * "Point in time"): base snapshots of a stream's standby, restores to a txid
 * or a time, and retention. Everything here works from another process
 * while the receiver runs, and the receiver uses it too (its own snapshots).
 *
 * SNAPSHOTS: DIR/streams/NAME/snapshots/<txid, 20 digits>.snap
 *   A full dump (store/dump.h) of the stream's standby, one LMDB read
 *   transaction taken while the standby goes on applying. Its header holds
 *   the store id, the txid the image holds (last_txid), that transaction's
 *   commit time and when the snapshot was taken (created_us); the name
 *   repeats the txid. Written as tmp-<pid>-<n>.snap.tmp, fsynced, renamed,
 *   then the folder fsynced: a *.snap name always holds a whole file. A
 *   .tmp whose process is gone is removed by the receiver at start and by
 *   prune. Two snapshots of the same txid are the same image: the second
 *   is dropped. A base a shipper sent (receiver_int.h, base.c: BASE
 *   SHIPPING) is a snapshot like the others, a dump of the primary.
 *
 * WHAT A STREAM CAN BE RESTORED TO
 *   archive    txids A..D: A the first txid of the oldest kept segment, D
 *              the archive's durable txid (its durable mark).
 *   bases      each snapshot S whose successor txid the archive still holds
 *              (A <= S + 1 <= D + 1), and the empty store (S = 0) when the
 *              archive starts at txid 1.
 *   txid N     reachable when some base S <= N and N <= D; the newest such
 *              base is used and the archive replays S+1..N.
 *   time T     every transaction committed at or before T (spec/cli.md):
 *              T must not be later than the stream's reachable time R (see
 *              receiver.h, DIR/streams/NAME/state: the primary's clock as
 *              last reported, counted only once the archive durably held
 *              everything the primary had committed by then, and never
 *              below the newest archived commit time - 1 µs). T resolves to
 *              N = the last txid committed at or before T (commit times
 *              never decrease along the log), then as a txid -- except that
 *              a base is taken only if its own commit time is <= T.
 *   txid 0     (or a time before the first commit) is no point of a stream
 *              that has commits: the empty store is a base to replay from,
 *              never a target. Only a stream with no commit yet gives it.
 *   Anything else is refused with SL_EINVAL, and a message that says what
 *   the stream holds (bases, archive range with its first and last commit
 *   times, reachable time).
 *
 * THREADS: each call works on its own arguments; none keeps state.
 */
#ifndef SL_PITR_H
#define SL_PITR_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dump.h"
#include "store.h"

#define SL_SNAP_SUFFIX ".snap"

typedef struct sl_snapshot {
  uint64_t txid;        /* the image holds txids 1..txid */
  uint64_t commit_us;   /* commit time of txid (0 for an empty standby) */
  uint64_t created_us;  /* when it was taken */
  uint64_t bytes;       /* file size */
  char key_id[SL_KEY_ID_SIZE + 1]; /* sealed with this key; "" plaintext */
  char path[4096];
} sl_snapshot;

/* The snapshots in SNAP_DIR, ascending by txid, in a malloc'd array (free();
 * NULL and 0 when there are none or the folder is missing). A *.snap file
 * whose header does not decode, or names another txid than its file name,
 * is logged and left out; store_id (may be NULL) leaves out, logged, those
 * of another store. Only headers are read: a damaged body is found when
 * the file is loaded. */
int sl_snapshot_list(const char *snap_dir, const uint8_t *store_id, sl_snapshot **out, size_t *n);

typedef struct sl_snapshot_options {
  sl_dump_progress_fn progress; /* records written of the image's total; may be NULL */
  void *progress_arg;
  /* May be NULL. Set (from any thread) to stop a snapshot in progress: it
   * then fails with -ECANCELED and leaves no file behind. */
  const atomic_bool *cancel;
  sl_keyring *keyring;          /* NULL, or seal the snapshot with its first key */
} sl_snapshot_options;

/* Take a snapshot of st (a standby open read-only or for applying) into
 * SNAP_DIR. *out describes it; *existed is true when a snapshot of that
 * txid was there already (the new image is dropped). Errors: those of
 * sl_dump_full, -errno of the file operations (logged, naming the file),
 * -ECANCELED. */
int sl_snapshot_take(sl_store *st, const char *snap_dir, const sl_snapshot_options *o, sl_snapshot *out,
                     bool *existed);

/* `shiplog snapshot`: open DATA_DIR/streams/STREAM/standby read-only (the
 * receiver may be applying to it) and take a snapshot. SL_ENOTFOUND (logged)
 * when the stream or its standby does not exist. */
int sl_snapshot_stream(const char *data_dir, const char *stream, const sl_snapshot_options *o,
                       sl_snapshot *out, bool *existed);

/* ---- restore ---------------------------------------------------------------------- */
typedef struct sl_restore_options {
  const char *data_dir, *stream;
  bool by_time;          /* the target: time_us (inclusive) or txid */
  uint64_t time_us, txid;
  /* Exactly one: a new store in INTO (missing or empty), or IN_PLACE, the
   * stream's primary store (same store id), which must not be open in any
   * process (sl_store_lock_unused); it is renamed IN_PLACE.before-restore-
   * <UTC time> once the restored store is complete, and the restored store
   * takes its name. */
  const char *into, *in_place;
  /* Progress, may be NULL: loading the base snapshot (bytes of its file),
   * then replaying (transactions of those to replay). */
  sl_dump_progress_fn load_progress, replay_progress;
  void *progress_arg;
  /* May be NULL. Set (e.g. by a signal handler) to stop between replay
   * groups: the restore then fails with -ECANCELED, leaving nothing. */
  const atomic_bool *cancel;
  sl_keyring *keyring;          /* opens sealed archive frames and snapshots */
  /* NULL, or (restore from object storage, receiver/s3.h) called before
   * replay reads txid and whenever the archive has no further frame yet:
   * returns 0 once the segment holding txid is in the archive. */
  int (*archive_wait)(void *arg, uint64_t txid);
  void *archive_wait_arg;
} sl_restore_options;

typedef struct sl_restore_result {
  uint64_t txid, commit_us;     /* the point reached (commit_us 0 at txid 0) */
  uint64_t base_txid;           /* the snapshot used; 0 with no snapshot */
  char base_path[4096];         /* "" for the empty base */
  uint64_t replayed;            /* transactions replayed from the archive */
  uint64_t replayed_bytes;      /* their frame bytes */
  uint64_t load_ns, replay_ns;  /* time spent loading the base and replaying
                                   (the final log fdatasync and checkpoint included) */
  char kept[4096];              /* in place: where the store's old state is */
} sl_restore_result;

/* Build the state of the stream at the target (see above) as a complete
 * store: the stream's store id, the graph as of txid N, its own log
 * starting at N + 1, so that opening it for writing continues from there.
 * It is built in TARGET.restore-tmp-PID beside the target and renamed into
 * place when complete: a failure leaves nothing behind and IN_PLACE
 * untouched. Errors: SL_EINVAL (target outside what the stream holds),
 * SL_ENOTFOUND (no such stream), SL_EEXIST (INTO not empty), SL_ELOCKED
 * (IN_PLACE in use), SL_ESTOREID (IN_PLACE is another store), those of
 * loading and replaying (SL_ECORRUPT naming file and offset, -errno). Each
 * is logged. */
int sl_restore(const sl_restore_options *o, sl_restore_result *out);

/* ---- retention ---------------------------------------------------------------------- */
typedef struct sl_prune_options {
  /* Keep the newest keep_snapshots snapshots (0: no count rule) and every
   * snapshot taken in the last keep_days days plus the newest one taken
   * before them, so that every point of those days stays restorable (0: no
   * age rule). A snapshot that no rule keeps is removed; the newest one is
   * always kept. Neither rule: no snapshot is removed. */
  uint64_t keep_snapshots;
  double keep_days;
  /* true: remove nothing; the result and `removed` say what would go. */
  bool dry_run;
  /* The stream is archived to object storage (a receiver run with
   * --archive-to prunes it): before the uploader's first upload.json
   * nothing counts as confirmed. false: a stream without upload.json is
   * taken as never archived there. */
  bool off_site;
  /* NULL: the standby's applied txid is read from the standby; else this
   * value is (a receiver pruning its own streams: it has the standby open,
   * and LMDB must not be opened twice in one process). */
  const uint64_t *standby_applied;
  /* NULL, or told each file once it is removed (or, dry_run, would be):
   * a snapshot (first = last = its txid) or an archive segment (its txids
   * first..last), with its size. */
  void (*removed)(void *arg, bool snapshot, const char *path, uint64_t first, uint64_t last, uint64_t bytes);
  void *removed_arg;
  /* Opens sealed snapshots for the BASE CHECK (may be NULL: a sealed
   * base cannot be checked, and nothing is removed). */
  sl_keyring *keyring;
} sl_prune_options;

typedef struct sl_prune_result {
  size_t snapshots_removed, snapshots_kept;
  size_t segments_removed;
  uint64_t bytes_removed;
  uint64_t archive_first_txid;  /* the archive's first txid afterwards */
} sl_prune_result;

/* BASE CHECK: what goes (snapshots and segments alike) is given up for the
 * oldest snapshot kept, so before anything is removed that snapshot is read
 * whole as a restore would load it (every chunk's checksum, the trailer,
 * opened with the keyring when sealed) and checked to be of the archive's
 * history (its last commit time is the archive's for its txid); damaged,
 * of another history, or sealed with a key not at hand, it stops the prune
 * with SL_ECORRUPT (or the reader's error)
 * naming the file and offset, and nothing is removed. A dry run checks it
 * too.
 *
 * Apply the rules to DATA_DIR/streams/STREAM, then remove the archive
 * segments whose every txid is at or below the oldest kept snapshot's txid,
 * already applied by the standby and confirmed to every consumer of the
 * archive (ARCHIVE/consumers/: a cascade shipper's ship-NAME), oldest
 * first, never the newest
 * segment: what the oldest kept snapshot needs to reach the present stays.
 * With no snapshot no segment is removed. Safe while the receiver runs (it
 * appends to the newest segment only and reads above the applied txid)
 * and while other processes restore (sealed segments and snapshots are
 * unlinked, so readers that have them open go on). A dry run takes the
 * same decisions on the same facts and unlinks nothing. */
int sl_prune_stream(const char *data_dir, const char *stream, const sl_prune_options *o, sl_prune_result *out);

#endif
