/*
 * What a receiver holds of a stream, for the people who run it (README
 * "Day-to-day operation"): `shiplog info` (what can be restored, from where)
 * and `shiplog check --data` (is every byte of it whole). Both read the
 * stream's directory (receiver.h DATA DIRECTORY) while the receiver runs,
 * without building a store, and change nothing.
 *
 * INVENTORY (sl_stream_inventory_read): the restorable window (pitr.h WHAT A
 * STREAM CAN BE RESTORED TO: first and last txid and their commit times,
 * the reachable time), the snapshots (txid, commit and creation time, size,
 * key id, whether the archive continues it: a base), the archive segments
 * (txids, sealed or active, size, key id), what object storage holds
 * (upload.json, s3.h) and what waits for upload, the consumers of the
 * archive (cascade shippers, store/log.h CONSUMERS), the primary as last
 * reported and the standby's applied txid (the status file, receiver.h).
 * Only headers and the first and last frames are read.
 *
 * CHECK (sl_stream_check): every snapshot read whole (sl_dump_verify: every
 * chunk's CRC, the records, the trailer; sealed chunks opened when the
 * keys are given) and every archive frame from the oldest segment to the
 * durable mark (CRC, dense txids across segments, segment headers of one
 * store); damage in a segment is reported and the check goes on at the
 * next segment. Continuity: the oldest whole base must reach the durable
 * txid through whole segments with no gap (when only a later base does,
 * the stream is still restorable from there, and the gap is reported). Damage is logged as "FILE: offset N:
 * reason" by the readers and also handed to the caller per file.
 *
 * THREADS: calls keep no state; results belong to the caller.
 */
#ifndef SL_RECEIVER_INVENTORY_H
#define SL_RECEIVER_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "pitr.h"
#include "receiver.h"
#include "s3.h"

typedef struct sl_inv_snapshot {
  sl_snapshot s;
  bool base;                       /* the archive continues it: a restore may start here */
  bool other_history;              /* HISTORY (receiver_int.h): not of this archive's history */
  uint64_t archive_commit_us;      /* with other_history: the archive's commit time of its txid */
  bool uploaded;                   /* object storage holds it (upload.json) */
} sl_inv_snapshot;

typedef struct sl_inv_segment {
  char path[4096];
  uint64_t first_txid, last_txid;  /* last < first: it holds no durable frame yet */
  uint64_t bytes;
  bool active;                     /* the newest segment, still appended to */
  bool uploaded;
  char key_id[SL_KEY_ID_SIZE + 1];
} sl_inv_segment;

typedef struct sl_stream_inventory {
  sl_stream_status status;         /* state, peer, primary, applied, restorable from */
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t first_txid, durable;    /* the archive's txids (durable < first: none yet) */
  uint64_t cut_segno;              /* a segment before it missing or unreadable: the archive is read
                                      from this segment on (store/log.h NEWEST RUN); 0: none */
  uint64_t first_commit_us, durable_commit_us, reachable_us;
  sl_inv_snapshot *snaps;
  size_t nsnaps;
  sl_inv_segment *segs;
  size_t nsegs;
  sl_log_consumer *consumers;      /* of the archive */
  size_t nconsumers;
  bool s3;                         /* archived to object storage (upload.json present) */
  sl_upload_status upload;         /* the uploader's last report */
  uint64_t uploaded_txid;          /* the newest txid object storage holds */
  uint64_t pending_files, pending_bytes; /* sealed segments and snapshots not uploaded yet */
} sl_stream_inventory;

/* Fill *out for DATA_DIR/streams/STREAM. SL_ENOTFOUND (logged) when there is
 * no such stream; -errno / SL_ECORRUPT reading its files (logged). Free
 * with sl_stream_inventory_free (also after a failure). */
int sl_stream_inventory_read(const char *data_dir, const char *stream, sl_stream_inventory *out);
void sl_stream_inventory_free(sl_stream_inventory *inv);

/* ---- object storage (s3.h LAYOUT): what a restore --from would find ---------------- */
/* The manifests under URL (s3://BUCKET/PREFIX): STREAM's alone, or (stream
 * NULL) every stream's, by name. *out: malloc'd array of manifests
 * (sl_rx_s3_manifests_free). Errors logged naming the object. */
int sl_rx_s3_manifests(const char *url, const char *endpoint, const char *region, const char *stream,
                       sl_rx_s3_manifest **out, size_t *n);
void sl_rx_s3_manifests_free(sl_rx_s3_manifest *m, size_t n);

/* The window a restore from a manifest reaches (pitr.h rules on its
 * objects): from the oldest snapshot its segments continue (or txid 1 when
 * they start there) to the last uploaded segment's last txid. */
typedef struct sl_restore_window {
  bool restorable;
  uint64_t base_txid;              /* 0: the empty store */
  uint64_t first_txid, first_us;   /* the earliest point, its commit time */
  uint64_t last_txid, last_us;
} sl_restore_window;
void sl_rx_s3_manifest_window(const sl_rx_s3_manifest *m, sl_restore_window *w);

/* ---- check ---------------------------------------------------------------------------- */
typedef struct sl_check_item {
  bool snapshot;                   /* else an archive segment */
  const char *path;
  uint64_t first_txid, last_txid;  /* snapshot: its txid twice */
  uint64_t bytes;
  uint64_t units;                  /* records (snapshot) or frames (segment) checked */
  const char *problem;             /* NULL when whole */
} sl_check_item;

typedef struct sl_stream_check_result {
  size_t snapshots, segments, damaged;
  uint64_t frames, bytes;
  uint64_t first_txid, durable;    /* the archive's */
  bool restorable;                 /* some whole base and a whole archive from it to durable */
  uint64_t base_txid;              /* the oldest such base (0: the empty store) */
  char gap[320];                   /* why the oldest base does not reach durable ("" when it does) */
} sl_stream_check_result;

/* Check DATA_DIR/streams/STREAM as CHECK says; item (may be NULL) is told
 * each file, snapshots first. Returns 0 when everything is whole and the
 * oldest base reaches the durable txid; SL_ECORRUPT when something is
 * damaged or not continuous (out says what); SL_ENOTFOUND: no such stream;
 * other errors (-errno) when it could not be read at all. kr (may be NULL)
 * opens sealed snapshots and frames: without it their CRCs are checked,
 * not their authentication tags. */
int sl_stream_check(const char *data_dir, const char *stream, sl_keyring *kr,
                    void (*item)(void *arg, const sl_check_item *it), void *arg, sl_stream_check_result *out);

#endif
