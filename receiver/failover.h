/*
 * Failover on a receiver's data directory (README "Failover"; the rules:
 * store/lineage.h): promote a stream's copy to a new primary, and seed a
 * stream with a rewound store's log. The store's side (rewind, the fork of
 * two logs, copying a log) is store/lineage.h's.
 *
 * PROMOTE runs while no receiver serves the data directory (it takes the
 * receiver's lock, sl_receiver_lock, for its whole run, so none starts
 * meanwhile): then the archive stands still and everything in it is
 * durable and acknowledged. Order, so that no acknowledged transaction is
 * lost, the old primary can never write on once a new primary exists, and
 * a promote that fails before the new primary is whole leaves the stream
 * as it was:
 *   1. open the archive (recovery: R = its last txid, all durable);
 *   2. build the new primary's state at R beside INTO, in
 *      INTO.promote-tmp-PID (sl_restore: newest snapshot + archive replay),
 *      INTO checked missing or empty first;
 *   3. record epoch E+1 starting at R+1 in the archive's history: from now
 *      on the receiver refuses the old primary's history (behind or
 *      diverged) -- the fence comes before the new primary exists;
 *   4. replace the new primary's log by a copy of the archive (same bytes,
 *      so the same rolling checksums) and the archive's history, and rename
 *      it to INTO;
 *   5. DIR/streams/NAME/promoted records when, where and which epoch:
 *      "epoch=E+1\ntxid=R\nchecksum=<16 hex>\ntime_us=T\ninto=PATH\n",
 *      written atomically.
 * The stream's standby stays a standby: when the new primary ships to the
 * same stream it continues the archive, and the standby follows it. A
 * failure in step 2 (INTO not empty, a base that cannot be loaded, a full
 * disk) fences nothing: the old primary may ship on (the fence used to come
 * first, so such a failure refused the only primary, unsaid). A failure
 * after step 3 leaves the fence and no new primary, and says so: promote
 * can be run again.
 *
 * SEEDING (rewind --standby-data): DIR/streams/NAME is built from a log, as
 * the receiver builds a new stream (NAME~new/{archive,snapshots}, renamed
 * into place), under the receiver's lock. Started there, the receiver
 * builds the standby from it and accepts the new primary's stream as its
 * continuation.
 *
 * THREADS: each call works on its own arguments; none keeps state.
 */
#ifndef SL_RECEIVER_FAILOVER_H
#define SL_RECEIVER_FAILOVER_H

#include <stdint.h>

typedef struct sl_promote_result {
  uint64_t epoch;       /* the new epoch; it begins at txid last_txid + 1 */
  uint64_t last_txid;   /* R: the archive held 1..R, all in the new primary (0: empty) */
  uint64_t checksum;    /* cs(R) */
  char into[4096];      /* where the new primary is */
} sl_promote_result;

/* PROMOTE above: stream STREAM of DATA_DIR into INTO (missing or empty;
 * NULL: DIR/streams/STREAM/primary). Errors, each logged (the last line
 * "promote STREAM in DATA_DIR: reason" when the stream was found and
 * locked): SL_EINVAL (bad stream name), SL_ENOTFOUND (no such stream),
 * SL_ELOCKED (a receiver serves DATA_DIR), those of the archive, of
 * sl_restore (SL_EEXIST: INTO not empty) and of the files. On failure no
 * new primary is left in INTO. */
int sl_promote(const char *data_dir, const char *stream, const char *into, sl_promote_result *out);

/* SEEDING above: stream STREAM of DATA_DIR (which must not have it:
 * SL_EEXIST) from log directory LOGDIR (copied, sl_log_copy). SL_ELOCKED
 * when a receiver serves DATA_DIR. Errors logged; nothing is left half
 * built. */
int sl_stream_seed(const char *data_dir, const char *stream, const char *logdir);
/* Whether sl_stream_seed could begin now (a valid name, no such stream, no
 * receiver serving DATA_DIR): 0 or its error, logged, with nothing written,
 * for a job that must not start what it cannot finish (rewind). */
int sl_stream_seed_check(const char *data_dir, const char *stream);

#endif
