/*
 * The transaction log: a directory of fixed-size segment files holding
 * CRC-framed protobuf transactions (proto/transaction.proto). The primary's
 * store, the receiver's archive and every restore read and write it with this
 * module, so the bytes below are a contract.
 *
 * FILES
 *   LOGDIR/NNNNNNNNNNNNNNNNNNNN.seg  segment number, 20 decimal digits,
 *                                    numbers contiguous from the oldest kept
 *   LOGDIR/durable                   durable mark (below); derived
 *   LOGDIR/consumers/NAME            consumer positions (below)
 *
 * SEGMENT HEADER (128 bytes, all integers little-endian)
 *   0   8  magic "SHIPLOG\x1a"
 *   8   2  format version (1)
 *   10  2  header length (128)
 *   12  4  flags: bit 0 SL_SEG_F_SEALED = every frame's payload is a
 *          sealed transaction under the key named at 64 (SEALED FRAMES);
 *          bit 1 SL_SEG_F_LZ4 = a packed segment (PACKED SEGMENTS);
 *          bit 2 SL_SEG_F_SEALED_LZ4 (with bit 0 only) = sealed frames
 *          may hold LZ4-compressed plaintext (SEALED FRAMES, compressed);
 *          other bits zero (a reader refuses bits it does not know)
 *   16 16  store id (random, fixed at sl_store_create)
 *   32  8  segment number
 *   40  8  first txid: the txid of the first frame in this segment
 *   48  8  epoch at the start of the segment (LINEAGE)
 *   56  8  rolling log checksum through first txid - 1 (LINEAGE)
 *   64 32  key id, NUL-padded: the key of the segment's sealed frames
 *          (all zero = plaintext, flags bit 0 clear)
 *   96  8  segment size the writer rotates at (sl_log_options.segment_size;
 *          0 = SL_SEG_SIZE_DEFAULT): sl_log_open takes it from the newest
 *          segment, so the size chosen at create survives reopening
 *   104 20 reserved, zero
 *   124 4  CRC32C of bytes 0..123
 * A reader refuses a wrong magic (SL_ENOTLOG), a version it does not know
 * (SL_EVERSION), a bad header CRC (SL_ECORRUPT) and, where it expects one,
 * another store id (SL_ESTOREID) -- each naming the file.
 *
 * FRAME (from offset 128, back to back)
 *   0   4  payload length L (1 .. SL_FRAME_MAX)
 *   4   4  CRC32C over bytes 0..3 (the length) followed by the L payload bytes
 *   8   L  payload: a packed shiplog.Transaction
 * A frame is valid when L is in range, the whole frame lies inside the file,
 * the CRC matches, and the payload's txid is the previous frame's txid + 1
 * (the segment header's first txid for the first frame). A segment holds
 * only whole frames; the active segment grows until appending the next frame
 * would pass the segment size, then a new segment starts (a frame larger than
 * the segment size gets a segment of its own).
 *
 * ZEROED TAIL. The active segment may end in zeros after its last frame:
 * the writer keeps up to SL_SEG_ZERO_AHEAD zero bytes written ahead of it,
 * so that the fdatasync of a commit overwrites blocks the file already has
 * instead of growing the file (which makes the fdatasync also write the
 * inode and its block map: 15-50% fewer syncs a second on the project's
 * ext4; PostgreSQL zero-fills its WAL segments for the same reason). A
 * frame header of eight zero bytes therefore ends a segment's frames, as the
 * end of the file does: readers stop there, never call it damage, and read
 * it again when tailing. The writer cuts the tail before it seals the
 * segment (ROTATION), so a sealed segment still ends with its last frame and
 * zeros after it are damage there; it also cuts it when it closes the log,
 * and one left by a crash stays until the next writer appends over it
 * (RECOVERY). A build without this rule reads a zeroed tail only where it
 * tolerates a torn tail, and its recovery cuts it as one.
 *
 * PACKED SEGMENTS (receivers' archives; log_pack.c)
 *   A sealed segment may be stored packed: its header (flag SL_SEG_F_LZ4)
 *   followed by one LZ4 frame (lz4frame format, content size and content
 *   checksum present) whose content is every byte the plain file held
 *   after its header. Readers unpack it whole and read the frames at the
 *   offsets they had; the newest segment (the one appended to) is never
 *   packed. Shiplog before packing refuses such a file by its flag.
 *
 * LINEAGE (failover)
 *   Every transaction carries the epoch it was committed in (0 until the
 *   first promotion). The rolling log checksum is a 64-bit chain over the
 *   history: cs(first_txid - 1) is the segment header's value (0 for a log
 *   that starts at txid 1) and
 *       cs(txid) = sl_lineage_next(cs(txid - 1), txid, plain CRC)
 *   where plain CRC is the frame CRC (bytes 4..7) the transaction has as a
 *   plaintext frame. It is not a cryptographic hash: it lets two logs
 *   (a primary's and a receiver's archive, an old primary and the new one)
 *   tell whether they share their history up to a txid. sl_frame.checksum
 *   gives it for every frame read.
 *
 * SEALED FRAMES (at-rest encryption)
 *   In a segment with flag SL_SEG_F_SEALED, the frame envelope is unchanged
 *   ([length][CRC32C over the stored bytes]) but the payload is a packed
 *   Transaction holding only txid, commit_time_us, epoch (in clear, so
 *   sl_txn_peek, ordering and lineage work without the key), checksum =
 *   cs(txid), and sealed = nonce (12) | ciphertext | tag (16): AES-256-GCM
 *   of the packed plaintext Transaction under
 *       HKDF-SHA256(key, salt = store id,
 *                   info = "shiplog frame v1" | le64(txid >> 24))
 *   (one subkey per 2^24 txids, so random 96-bit nonces never come near
 *   their collision bound), with additional data le64 txid | le64
 *   commit_time_us | le64 epoch | le64 checksum | store id | key id (32
 *   bytes, NUL-padded). crypt/crypt.h seals and opens them. All frames of a
 *   segment use the segment's key; a writer whose key changes starts a new
 *   segment.
 *   Compressed: a sealed frame may instead encrypt the LZ4 block (block
 *   format) of the packed plaintext Transaction, when that is shorter. It
 *   then carries lz4_len (field 7, varint) = the plaintext's length, 1 ..
 *   SL_FRAME_MAX, and its additional data is the above followed by le64
 *   lz4_len, so the field cannot be added, dropped or changed without the
 *   frame failing to open. Readers check lz4_len against SL_FRAME_MAX before
 *   allocating and decompress into exactly lz4_len bytes. Such frames are
 *   written only into segments with flag SL_SEG_F_SEALED_LZ4 (a writer
 *   whose active segment lacks it starts a new one, and keeps the flag on
 *   the sealed segments after), which shiplog before compression refuses
 *   by that flag ("segment flags 0x5 are not supported"); other frames of
 *   such segments are sealed as before. The shipper compresses only for a
 *   receiver whose Welcome says accepts_sealed_lz4.
 *
 * RECOVERY (sl_log_open for writing)
 *   Frames are scanned from the newest segment's start. At the first frame
 *   that is not valid:
 *     - if a valid frame continuing the txid sequence follows it (read at the
 *       offset the bad frame's length implies), the damage is in the middle
 *       of the log: SL_ECORRUPT naming file and offset, nothing is changed;
 *     - otherwise it is a torn tail (a crash during an unacknowledged append):
 *       the file is truncated at the bad frame and the cut is logged.
 *   A ZEROED TAIL with nothing but zeros to the end of the file is no bad
 *   frame: it is kept, and appended over.
 *   A bad frame in any segment but the newest is always SL_ECORRUPT. So is
 *   a torn tail holding a txid the opener's derived state already applied
 *   (sl_log_open_keep); that is decided before anything is changed.
 *   Recovery then fdatasyncs the newest segment and publishes the durable mark.
 *
 * DURABILITY AND GROUP COMMIT
 *   sl_log_append() writes the frame to the segment with write() (so a killed
 *   process loses nothing it appended) and returns; sl_log_wait_durable()
 *   then blocks until an fdatasync covers the frame. Committers that wait at
 *   the same time share one fdatasync: the first becomes the leader, syncs
 *   everything written so far, publishes, and wakes the rest. Order:
 *   append frames -> fdatasync -> publish durable txid -> wake waiters.
 *   After a failed fdatasync the log is FAILED: every later call returns
 *   SL_EFAILED until the log is closed and reopened (recovery). The fsync is
 *   never retried: the kernel may already have dropped the dirty pages.
 *
 * DURABLE MARK (LOGDIR/durable, 32 bytes)
 *   0 8 durable txid (every frame up to it is on stable storage) | 8 8 its
 *   segment number | 16 8 end offset of its frame in that segment | 24 4
 *   CRC32C of 0..23 | 28 4 zero. Rewritten in place (pwrite, no fsync) after
 *   every group commit, so tailing readers in other processes may ship
 *   exactly the durable prefix and can wait for it with inotify. Derived:
 *   recovery rewrites it; a reader that finds it torn retries.
 *
 * CONSUMERS (LOGDIR/consumers/NAME, written with sl_write_file_atomic)
 *   "txid\n": the consumer (e.g. a shipper) has confirmed every txid up to
 *   and including it. A segment is removed only when all of its frames are at
 *   or below both the store's checkpoint txid and every consumer's txid.
 *
 * POSITIONS are txids. "durable txid" and "consumer txid" are inclusive: the
 * last txid covered. "next txid" is exclusive: the txid the next append gets.
 *
 * THREADS: one sl_log may be used from many threads; appends are serialized
 * by the caller (the store's writer lock) or by the log's own mutex. A reader
 * (sl_log_reader) belongs to one thread.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shiplog.h" /* SL_STORE_ID_SIZE */

#define SL_SEG_MAGIC "SHIPLOG\x1a"
#define SL_SEG_VERSION 1
#define SL_SEG_HEADER_SIZE 128
#define SL_FRAME_HEADER_SIZE 8
#define SL_FRAME_MAX (256u << 20)                 /* largest payload: 256 MiB */
/* SIZE LIMITS. SL_FRAME_MAX is what the format allows and every reader
 * accepts (shiplog before 0.2 committed transactions up to it). The
 * replication protocol carries frames up to SL_FRAME_SHIP_MAX: a Batch of
 * one frame may be that large whatever the receiver's batch limit (codec.h
 * SL_BATCH_FRAME_MAX; the shipper and the receiver size their limits from
 * it). sl_tx_commit refuses a transaction that packs to more than
 * SL_TXN_MAX (SL_ETOOBIG, before anything is logged), so that every new
 * frame can be shipped, sealed too: the room between the two covers the
 * sealing (crypt.h SL_CRYPT_FRAME_EXTRA, checked where both are known). */
#define SL_FRAME_SHIP_MAX (64u << 20)
#define SL_TXN_MAX (SL_FRAME_SHIP_MAX - 4096u)
#define SL_SEG_SIZE_DEFAULT (64ull << 20)
#define SL_SEG_SIZE_MIN (4096ull)
#define SL_SEG_ZERO_AHEAD (64u << 10) /* ZEROED TAIL */
#define SL_KEY_ID_SIZE 32
#define SL_DURABLE_MARK_SIZE 32
#define SL_DURABLE_MARK_FILE "durable"   /* LOGDIR/durable (DURABLE MARK) */
#define SL_SEG_F_SEALED 0x1u
#define SL_SEG_F_LZ4 0x2u
#define SL_SEG_F_SEALED_LZ4 0x4u

typedef struct sl_log sl_log;
typedef struct sl_log_reader sl_log_reader;

/* A decoded segment header. */
typedef struct sl_seg_header {
  uint16_t version;
  uint32_t flags;
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t segno;
  uint64_t first_txid;
  uint64_t epoch;
  uint64_t prev_checksum;
  char key_id[SL_KEY_ID_SIZE + 1];
  uint64_t segment_size;
} sl_seg_header;

/* Encode into 128 bytes / decode and validate 128 bytes. decode returns
 * SL_ENOTLOG, SL_EVERSION or SL_ECORRUPT (no logging: callers name the file). */
void sl_seg_header_encode(const sl_seg_header *h, uint8_t out[SL_SEG_HEADER_SIZE]);
int sl_seg_header_decode(const uint8_t in[SL_SEG_HEADER_SIZE], sl_seg_header *h);

/* Frame codec on a buffer. encode writes the 8-byte frame header for the
 * payload (the caller places the payload after it). decode looks at buf[0..len):
 * returns 0 and sets *payload, *payload_len, *frame_len for a whole frame
 * with a good CRC; SL_ETRUNCATED if the buffer ends inside the frame (or is
 * shorter than a frame header); SL_ECORRUPT for a zero or oversized length or
 * a CRC mismatch. */
void sl_frame_header_encode(const void *payload, uint32_t payload_len, uint8_t out[SL_FRAME_HEADER_SIZE]);
int sl_frame_decode(const uint8_t *buf, size_t len, const uint8_t **payload,
                    uint32_t *payload_len, size_t *frame_len);

/* Read txid, commit time and epoch from a packed Transaction without
 * unpacking its ops. Returns 0, or SL_ECORRUPT if the fields are missing. */
int sl_txn_peek(const uint8_t *payload, size_t len, uint64_t *txid,
                uint64_t *commit_us, uint64_t *epoch);

/* The rolling log checksum (LINEAGE): the value through txid, given the
 * value through txid - 1 and the transaction's plaintext frame CRC. */
uint64_t sl_lineage_next(uint64_t prev, uint64_t txid, uint32_t plain_crc);
/* cs through one frame (8-byte header + payload_len bytes) given cs before
 * it: the Transaction's checksum field when it carries one (a sealed
 * frame), else the chain over the frame's CRC. */
uint64_t sl_frame_lineage(uint64_t prev, uint64_t txid, const uint8_t *frame, uint32_t payload_len);
/* Fold raw frames (as they lie in a segment or a Batch) whose txid is >=
 * from_txid into *cs. SL_ECORRUPT when the bytes are not whole frames. */
int sl_frames_lineage(const uint8_t *raw, size_t len, uint64_t from_txid, uint64_t *cs);
/* cs through txid in LOGDIR (any process): from the segment header and a
 * scan of that segment. SL_ENOTFOUND when the log does not hold that point
 * (before the oldest segment's first txid - 1, or past its end). */
int sl_log_checksum_at(const char *logdir, uint64_t txid, uint64_t *cs);

/* ---- writing ---------------------------------------------------------- */
typedef struct sl_log_options {
  uint64_t segment_size;                /* 0: SL_SEG_SIZE_DEFAULT */
  uint8_t store_id[SL_STORE_ID_SIZE];   /* required when creating */
  uint64_t first_txid;                  /* creating: txid of the first frame (1) */
  uint64_t epoch;                       /* creating: the first segment's epoch (LINEAGE) */
  uint64_t prev_checksum;               /* creating: cs(first_txid - 1) (LINEAGE) */
} sl_log_options;

/* Create LOGDIR (must not hold segments) with its first segment. */
int sl_log_create(const char *logdir, const sl_log_options *opt);
/* Set the LINEAGE fields of the header of the segment file at path (epoch
 * at its start, cs(first txid - 1)) in place and fdatasync it (fault point
 * SL_FAULT_LOG_HEADER), for a log that continues a history from its middle
 * (lineage.h, sl_log_set_origin). The segment must hold no frame (SL_EINVAL)
 * and no writer may have it open. Other errors as sl_seg_header_decode,
 * -errno; each logged naming the file. */
int sl_seg_set_origin(const char *path, uint64_t epoch, uint64_t prev_checksum);

/* Open for appending: runs RECOVERY above. store_id (if not NULL) must match
 * the segments'. The caller holds the store's exclusive lock. */
int sl_log_open(const char *logdir, const uint8_t *store_id, sl_log **out);
/* The same, for a caller whose derived state already holds txids up to
 * keep_txid (the store: LMDB's applied txid): a log that would end below
 * it after recovery -- a bad last frame of such a txid is then damage, not
 * a torn tail -- is SL_ECORRUPT, refused before anything is cut or the
 * durable mark is rewritten (nothing in LOGDIR changes). */
int sl_log_open_keep(const char *logdir, const uint8_t *store_id, uint64_t keep_txid, sl_log **out);
void sl_log_close(sl_log *log);

/* The txid the next append must carry, and the last durable txid. */
uint64_t sl_log_next_txid(const sl_log *log);
uint64_t sl_log_durable_txid(sl_log *log);
/* The commit time of the last appended transaction (0 when empty). */
uint64_t sl_log_last_commit_us(const sl_log *log);
const uint8_t *sl_log_store_id(const sl_log *log);

/* Append one packed Transaction whose txid must be sl_log_next_txid() and
 * whose commit time must not be below the previous one. Writes the frame
 * (rotating segments as needed) but does not wait for durability. Callers
 * serialize appends. Errors: SL_EGAP, SL_ETIME, SL_ETOOBIG, SL_EFAILED,
 * -errno from write (the log is then FAILED: the frame may be half-written). */
int sl_log_append(sl_log *log, const uint8_t *payload, size_t len);
/* Append n packed Transactions (consecutive txids) as sl_log_append does
 * each, with one pwritev for all the frames that go to one segment (a
 * group commit's batch). Stops at the first error; *appended (may be NULL)
 * receives how many frames reached the log before it (frames before a
 * rotation are written even when a later one fails; a full disk cuts back
 * only the frames of the failed write). */
int sl_log_append_many(sl_log *log, const uint8_t *const *payloads, const size_t *lens, size_t n,
                       size_t *appended);

/* The key id of the frames appended from now on (NULL or "": plaintext).
 * The caller seals the payloads (crypt/crypt.h); sl_log_append then refuses
 * a payload that is not a sealed transaction (SL_EINVAL). A key other than
 * the active segment's starts a new segment at the next append. After
 * sl_log_open it is the newest segment's key. sl_log_set_key_id
 * serializes with appends; sl_log_key_id returns the key ("" = plaintext;
 * valid until the next sl_log_set_key_id) to the thread that sets it. */
void sl_log_set_key_id(sl_log *log, const char *key_id);
const char *sl_log_key_id(sl_log *log);

/* Block until every txid <= txid is durable (group commit). Returns 0 or the
 * log's sticky error (SL_EFAILED after a failed fdatasync). */
int sl_log_wait_durable(sl_log *log, uint64_t txid);

/* Start making what is written durable now, on the log's own thread, and
 * return at once: for a writer with more to do before it waits for durable
 * (the store commits LMDB meanwhile). The caller still calls
 * sl_log_wait_durable, which finds the sync led already, or leads it. */
void sl_log_sync_ahead(sl_log *log);

/* LINEAGE of an open log: cs through the last appended txid; the epoch
 * new transactions carry (the newest of the history and the frames); a
 * copy of LOGDIR/history (store/lineage.h). An appended transaction of a
 * newer epoch adds a history entry (written before the frame); one of an
 * older epoch is refused (SL_EINVAL). */
uint64_t sl_log_checksum(sl_log *log);
uint64_t sl_log_epoch(sl_log *log);
struct sl_history;
void sl_log_history(sl_log *log, struct sl_history *out);
/* Start epoch `epoch` (> the current one) at the next txid: recorded in
 * the history at once, before any transaction of it exists (promote). */
int sl_log_begin_epoch(sl_log *log, uint64_t epoch);
/* Cut LOGDIR (no writer may have it open) after last_txid: later segments
 * are removed, the one holding last_txid truncated after it, the durable
 * mark rewritten and the history's later epochs forgotten (rewind).
 * SL_ENOTFOUND when the log does not reach back to last_txid. */
int sl_log_truncate(const char *logdir, uint64_t last_txid);

/* Counters since open, for tests and stats: appended frames, group-commit
 * fdatasyncs (syncs < appends shows that commits shared them), rotations. */
typedef struct sl_log_stats {
  uint64_t appends;
  uint64_t syncs;
  uint64_t rotations;
} sl_log_stats;
void sl_log_get_stats(sl_log *log, sl_log_stats *out);

/* Remove segments whose every frame is <= min(checkpoint_txid, all
 * consumers' txids). Never removes the active segment. Returns the number
 * of segments removed, or a negative code. */
int sl_log_prune(sl_log *log, uint64_t checkpoint_txid);

/* Consumer positions (shared with other processes through files). */
int sl_log_consumer_set(const char *logdir, const char *name, uint64_t txid);
int sl_log_consumer_get(const char *logdir, const char *name, uint64_t *txid);
int sl_log_consumer_remove(const char *logdir, const char *name);
/* Every consumer of LOGDIR (`shiplog consumers`, `status`): its name, its
 * position and when it was last written (the file's mtime: a consumer
 * rewrites its file only when its position moves). A malloc'd array
 * (free()) sorted by name; none (or no consumers/ folder): NULL and 0.
 * Names: [A-Za-z0-9_.@-]{1,SL_LOG_CONSUMER_NAME_MAX}, not starting with a
 * dot. A file that does not hold a position is SL_ECORRUPT (logged). */
#define SL_LOG_CONSUMER_NAME_MAX 200
typedef struct sl_log_consumer {
  char name[SL_LOG_CONSUMER_NAME_MAX + 1];
  uint64_t txid;        /* confirmed every txid up to this one */
  uint64_t updated_us;  /* last written, µs since the epoch */
} sl_log_consumer;
int sl_log_consumers_list(const char *logdir, sl_log_consumer **out, size_t *n);
/* The lowest position of LOGDIR's consumers (UINT64_MAX: none), for
 * pruners of logs without an sl_log of theirs (a receiver's archive). */
int sl_log_consumers_min(const char *logdir, uint64_t *min);

/* Read the durable mark of LOGDIR (any process). SL_ENOTFOUND if absent. */
int sl_log_read_durable_mark(const char *logdir, uint64_t *txid);

/* ---- listing and reading --------------------------------------------- */
typedef struct sl_seg_info {
  uint64_t segno;
  uint64_t first_txid;
  uint64_t size;        /* file size in bytes */
  char path[4096];
} sl_seg_info;

/* List LOGDIR's segments in order into a malloc'd array (free()).
 * Checks every header (store id against the first). */
int sl_log_list(const char *logdir, sl_seg_info **out, size_t *count);
/* NEWEST RUN, for readers of a receiver's archive (restore, check, status):
 * as sl_log_list, but a segment that is missing (a gap in the numbers) or
 * whose file or header cannot be read does not fail the listing: what came
 * before it is left out, as if pruned, and the list is the newest run of
 * readable segments numbered without a gap (possibly none). *cut (cut may
 * be NULL) is the first segment number that run starts at when anything
 * was left out, 0 otherwise; the cut is warned once per process, naming
 * the damage. A segment of another store fails both. */
int sl_log_list_newest_run(const char *logdir, sl_seg_info **out, size_t *count, uint64_t *cut);

/* A forward reader over a log directory, usable from any process while a
 * writer appends. It starts at from_txid (the first txid it returns; a txid
 * before the oldest kept segment is SL_ENOTFOUND) and returns frames in txid
 * order across segment boundaries. */
typedef struct sl_frame {
  uint64_t txid;
  uint64_t commit_us;
  uint64_t epoch;
  const uint8_t *payload;   /* packed Transaction; valid until the next call */
  uint32_t payload_len;
  uint64_t checksum;        /* rolling log checksum through txid (LINEAGE) */
  const char *key_id;       /* sealed frame: its segment's key id; NULL: plaintext */
  uint64_t segno;           /* where the frame lies */
  uint64_t offset;          /* offset of its frame header in the segment */
} sl_frame;

typedef struct sl_log_reader_options {
  /* Stop at this txid (inclusive). 0: no limit. Tailers pass the durable
   * txid so that they never return a frame that is not yet durable. */
  uint64_t max_txid;
  /* true: a bad frame at the end of the newest segment is reported as
   * SL_EEND (it may be an append in progress); false: any bad frame is
   * SL_ECORRUPT with file and offset (verify, restore from an archive). */
  bool tolerate_tail;
  /* true: list the segments as sl_log_list_newest_run does (an archive). */
  bool newest_run;
} sl_log_reader_options;

int sl_log_reader_open(const char *logdir, uint64_t from_txid,
                       const sl_log_reader_options *opt, sl_log_reader **out);
/* 0 and *frame filled; SL_EEND when no further frame is available now (call
 * again later to tail); SL_ECORRUPT / SL_EGAP / -errno on damage, logged
 * with the file and offset. */
int sl_log_reader_next(sl_log_reader *r, sl_frame *frame);
/* Make *frame (just returned by sl_log_reader_next) plaintext: a sealed
 * frame is opened with kr into a buffer of the reader's (payload valid
 * until the next call); a plaintext one is left as it is. Errors, logged
 * naming file, offset, txid and key id: SL_ENOTFOUND (no kr, or its key is
 * not in kr), SL_EAUTH (wrong key, or a changed byte), SL_ECORRUPT. */
typedef struct sl_keyring sl_keyring;
int sl_log_reader_open_frame(sl_log_reader *r, sl_keyring *kr, sl_frame *frame);
/* Change the txid limit (e.g. after the durable mark moved). */
void sl_log_reader_set_max(sl_log_reader *r, uint64_t max_txid);
void sl_log_reader_close(sl_log_reader *r);

/* Find the first txid whose commit time is > since_us (for --since), by
 * scanning segment headers then frames. *txid = next txid if none. */
int sl_log_find_after_time(const char *logdir, uint64_t since_us, uint64_t *txid);
/* The same over the segments sl_log_list_newest_run keeps (an archive). */
int sl_log_find_after_time_newest_run(const char *logdir, uint64_t since_us, uint64_t *txid);

/* Pack the sealed segment at path (PACKED SEGMENTS): every frame checked,
 * then written packed beside it and renamed over it. Nothing is done (0)
 * to a segment packed already, one of sealed frames, or one that would not
 * shrink. *plain_bytes / *packed_bytes: its size before and after (0 when
 * nothing was done). SL_ECORRUPT (logged, naming file and offset) for a
 * damaged frame, -errno. Only for a segment nothing appends to. */
int sl_log_seg_pack(const char *path, uint64_t *plain_bytes, uint64_t *packed_bytes);
/* The size seg's file has (or had, packed) plain: what replaying it reads;
 * the file size when its header cannot be read. */
uint64_t sl_log_seg_plain_size(const sl_seg_info *seg);
/* A reader that reads a segment file by offsets (the shipper's tail) and
 * finds it packed (header flag SL_SEG_F_LZ4): *plain_fd receives a memory
 * file (memfd) holding the plain image, header included, at the plain
 * file's offsets. h is the header read from fd. The caller closes both. */
int sl_log_seg_open_plain(int fd, const char *path, const sl_seg_header *h, int *plain_fd);

/* Lag in bytes (`shiplog status`, metrics): the bytes of LOGDIR's frames
 * after txid `after`, from that frame's offset to the end of the newest
 * segment, segment headers in between not counted; 0 when after >= last
 * (the newest txid of interest) or the log cannot be read. Any process. */
uint64_t sl_log_bytes_after(const char *logdir, uint64_t after, uint64_t last);

#endif
