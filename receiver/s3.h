/*
 * Off-site archive in object storage (README "Object storage"): a receiver
 * uploads every sealed archive segment and every snapshot of its streams to
 * s3://BUCKET/PREFIX, and a stream can be restored from there alone.
 * Names here are sl_rx_s3_* (the receiver's manifest, paths and restore),
 * apart from objstore/'s sl_s3_* (the S3 client and its URLs).
 *
 * LAYOUT under PREFIX (objects are the local files byte for byte: what
 * is compressed or encrypted on disk stays so)
 *   PREFIX/NAME/manifest.json          the stream's manifest (below)
 *   PREFIX/NAME/archive/<20 digits>.seg   sealed archive segments
 *   PREFIX/NAME/archive/<segno>-<last txid>.partial   the durable prefix of
 *                                      the active segment (ARCHIVE TIMEOUT)
 *   PREFIX/NAME/snapshots/<20 digits>.snap  base snapshots
 *
 * MANIFEST (JSON, version 1): what has been uploaded AND verified, so a
 * reader trusts only objects it names:
 *   {"version":1, "stream":NAME, "store_id":HEX32, "updated_us":N,
 *    "segments":[{"name","bytes","crc32c":HEX8,"first_txid","last_txid",
 *                 "first_commit_us","last_commit_us","next_commit_us"}...],
 *    "snapshots":[{"name","bytes","crc32c","txid","commit_us","created_us"}...]}
 *    "partial":{segment's fields + "object"}   (optional, below)
 * segments ascend and are contiguous (each starts where the previous one
 * ended); next_commit_us is the commit time of the txid after the segment
 * (the next segment's first), so every time before it is covered. The
 * receiver keeps the same document in DIR/streams/NAME/upload.json
 * (written atomically after the object store accepted it): retention
 * (sl_prune_stream) removes only files it names, and a restarted receiver
 * continues from it.
 *
 * ARCHIVE TIMEOUT (bounded RPO off-site, as PostgreSQL's archive_timeout):
 * with 64 MiB segments a quiet stream may not seal one for days, so every
 * archive_timeout_s seconds in which the archive's durable txid moved
 * past what object storage holds, the uploader PUTs the active segment's
 * durable prefix (whole frames up to the durable mark: a valid segment
 * file, as the active segment itself is) as the object
 * archive/<segno>-<last txid>.partial and names it in the manifest's
 * "partial" entry: name is the segment's own NNN.seg (what a restore calls
 * its copy), object the key under archive/, next_commit_us the stream's
 * reachable time + 1 at the upload (every time before it is covered;
 * republished, the object unchanged, every archive_timeout_s while the
 * stream is quiet and its reachable time moves on). A
 * new object per upload rather than one replaced in place: a restore that
 * read the previous manifest still finds what it names (a retired partial
 * is deleted one upload later, or when its segment is sealed and uploaded,
 * which also drops the entry). Restores treat the partial as the last
 * segment when it continues the sealed ones; readers that know only
 * version 1 without it ignore the key (their window ends at the sealed
 * segments). upload.json keeps the entry too, but retention never counts
 * a partial as an uploaded segment.
 *
 * RETENTION (retain_snapshots / retain_days, the receiver's rules:
 * receiver.h): every 10 s the uploader judges the manifest's snapshots by
 * the rules, as sl_prune_stream judges the local ones, and drops an entry
 * the rules let go -- a snapshot, or a leading segment whose txids all lie
 * at or below the oldest kept snapshot -- only once its local file is gone
 * too (local retention removes only what the manifest confirms, so the two
 * never wait for each other, and object storage never loses what the
 * receiver still keeps). The manifest without them is published first,
 * then the objects are deleted: a manifest never names a missing object
 * (a failed delete leaves an object no manifest names, logged).
 *
 * UPLOAD (sl_uploader): one thread per receiver scans the streams once a
 * second. Its first pass over a stream aborts any unfinished multipart
 * upload under PREFIX/NAME/ (a receiver killed mid-upload leaves one). A segment is uploaded once a later segment exists and the
 * archive's durable mark lies past it (sealed and fsynced); a snapshot once
 * its *.snap name exists (written whole, fsynced, renamed). Each object is
 * PUT (multipart when large), then HEADed: its size and stored CRC32C must
 * be the file's; then the manifest is PUT and upload.json written. A
 * failing object store never holds up the receiver: it keeps acknowledging
 * from its disk, the uploader retries with backoff (1 s doubling to 30 s)
 * and reports the lag in DIR/streams/NAME/upload-status (read by `shiplog
 * status`), then catches up.
 */
#ifndef SL_RECEIVER_S3_H
#define SL_RECEIVER_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objstore.h"
#include "pitr.h"

#define SL_RX_S3_MANIFEST_NAME "manifest.json"
#define SL_RX_S3_LOCAL_MANIFEST "upload.json"
#define SL_RX_S3_UPLOAD_STATUS "upload-status"

typedef struct sl_rx_s3_entry {
  char name[64];                 /* file name: NNN.seg or NNN.snap */
  char object[64];               /* the partial's object name under archive/ ("" otherwise) */
  uint64_t bytes;
  uint32_t crc32c;
  /* segments */
  uint64_t first_txid, last_txid, first_commit_us, last_commit_us, next_commit_us;
  /* snapshots */
  uint64_t txid, commit_us, created_us;
} sl_rx_s3_entry;

typedef struct sl_rx_s3_manifest {
  char stream[65];
  uint8_t store_id[16];
  uint64_t updated_us;
  sl_rx_s3_entry *segs, *snaps;     /* malloc'd (sl_rx_s3_manifest_free) */
  size_t nsegs, nsnaps;
  bool has_partial;              /* ARCHIVE TIMEOUT */
  sl_rx_s3_entry partial;
} sl_rx_s3_manifest;

/* Encode into a malloc'd NUL-terminated string. */
int sl_rx_s3_manifest_encode(const sl_rx_s3_manifest *m, char **out);
/* SL_ECORRUPT (logged, naming what) for anything that is not a version 1
 * manifest with ascending, contiguous segments. */
int sl_rx_s3_manifest_decode(const char *text, size_t len, sl_rx_s3_manifest *out);
void sl_rx_s3_manifest_free(sl_rx_s3_manifest *m);
/* Append a copy of e (segments must continue the last one). */
int sl_rx_s3_manifest_add(sl_rx_s3_manifest *m, bool segment, const sl_rx_s3_entry *e);
/* The segments a restore reads: the partial appended to segs when it
 * continues them (a stale one, that a sealed segment covers, is dropped). */
int sl_rx_s3_manifest_take_partial(sl_rx_s3_manifest *m);

/* GET and decode PREFIX/STREAM/manifest.json from s (opened on u's
 * bucket), the partial taken into the segments (what a reader restores). SL_ENOTFOUND: no such manifest; SL_ECORRUPT: unreadable; each
 * logged naming the object. */
int sl_rx_s3_manifest_fetch(sl_objstore *s, const sl_s3_url *u, const char *stream, sl_rx_s3_manifest *m);

/* KEY of a stream's object under PREFIX ("" for the manifest's own name). */
void sl_rx_s3_key(char *out, size_t len, const char *prefix, const char *stream, const char *sub,
               const char *name);

/* ---- the receiver's uploader ---------------------------------------------- */
typedef struct sl_upload_options {
  const char *data_dir;
  const char *url;               /* s3://BUCKET/PREFIX */
  const char *endpoint, *region; /* NULL: objstore.h's environment */
  int scan_ms;                   /* 0: 1000 (at most archive_timeout_s) */
  uint64_t archive_timeout_s;    /* ARCHIVE TIMEOUT; 0: only sealed segments */
  uint64_t retain_snapshots;     /* RETENTION; both 0: nothing is deleted */
  double retain_days;
} sl_upload_options;

typedef struct sl_uploader sl_uploader;
/* Check the URL and the credentials, start the thread. */
int sl_upload_start(const sl_upload_options *o, sl_uploader **out);
/* Stop after the object in progress (a multipart upload is aborted). */
void sl_upload_stop(sl_uploader *u);

/* What DIR/streams/NAME/upload-status says (all 0 when absent). */
typedef struct sl_upload_status {
  bool present;
  uint64_t uploaded_txid;        /* the newest txid in object storage (partial included) */
  uint64_t sealed_txid;          /* the newest txid of an uploaded sealed segment */
  uint64_t partial_us;           /* when the partial was uploaded (0: none) */
  uint64_t lag_tx;               /* durable - uploaded */
  uint64_t pending_bytes;        /* local files not yet uploaded */
  uint64_t pending_files;
  uint64_t objects, bytes;       /* uploaded since start */
  uint64_t updated_us;
  char error[256];
} sl_upload_status;
int sl_upload_status_read(const char *data_dir, const char *stream, sl_upload_status *out);

/* ---- restore from object storage ---------------------------------------------- */
typedef struct sl_rx_s3_restore_options {
  const char *url, *endpoint, *region;
  const char *stream;
  bool by_time;
  uint64_t time_us, txid;
  const char *into;              /* missing or empty */
  int parallel;                  /* concurrent fetches; 0: 4 */
  sl_keyring *keyring;           /* opens sealed segments and snapshots */
  /* NULL, or called as objects arrive (bytes fetched of the total) and as
   * transactions are replayed (restore options' replay_progress) */
  void (*fetch_progress)(void *arg, uint64_t done, uint64_t total);
  sl_dump_progress_fn replay_progress;
  void *progress_arg;
} sl_rx_s3_restore_options;

typedef struct sl_rx_s3_restore_result {
  sl_restore_result r;
  uint64_t fetched_bytes, fetched_objects;
  uint64_t total_ns;
} sl_rx_s3_restore_result;

/* Like sl_restore (pitr.h) into INTO, from the manifest's objects alone:
 * fetches the base and the segments with `parallel` connections into a
 * scratch folder beside INTO while the base loads and the segments replay
 * in order. A missing object, or one whose size or CRC32C differs from the
 * manifest, fails the restore naming its key (SL_ENOTFOUND, SL_ECORRUPT). */
int sl_restore_s3(const sl_rx_s3_restore_options *o, sl_rx_s3_restore_result *out);

#endif
