/*
 * Backup files ("dumps", `shiplog dump` / `shiplog load`): one file that
 * carries a store between machines. A FULL dump is a consistent image of a
 * store's LMDB state, taken from one read transaction while writers go on;
 * an INCREMENTAL dump holds the log frames of the transactions after a txid
 * or a time. A full dump followed by incrementals whose txids follow on
 * rebuilds the store. Files are lz4-compressed and checksummed so that
 * every damaged byte is found before anything is built from them.
 *
 * FILE LAYOUT (all integers little-endian)
 *
 * HEADER (128 bytes)
 *   0   8  magic "SHIPDUMP"
 *   8   2  format version: 1 plaintext, 2 sealed (AT-REST ENCRYPTION)
 *   10  2  header length (128)
 *   12  4  kind: 1 full, 2 incremental
 *   16 16  store id of the source store
 *   32  8  first txid: full 1; incremental the txid of its first frame
 *   40  8  last txid: full the applied txid of the image; incremental the
 *          txid of its last frame (first - 1 when it holds none)
 *   48  8  commit time of the last txid, µs since the epoch (0 if none)
 *   56  8  since, µs: the TIME of `dump --since`, else 0
 *   64  8  created, µs since the epoch
 *   72  8  epoch of the last txid (failover lineage, store/lineage.h)
 *   80 32  key id, NUL-padded: all zero in version 1; in version 2 the
 *          key every chunk is sealed with ([A-Za-z0-9_-]{1,32})
 *   112 8  full: rolling log checksum through the last txid (LINEAGE,
 *          log.h); incremental: cs(first txid - 1), the checksum of the
 *          history the file continues (flags bit 1)
 *   120 4  flags: bit 0 = bytes 72 and 112 hold the lineage (a full dump of
 *          a store with a log). Clear (older files, a standby's snapshot):
 *          unknown -- a store loaded from the file then starts its log
 *          with checksum 0 in epoch 0, so the stream it came from would
 *          refuse it as diverged (a restore from a stream's snapshot takes
 *          the lineage from the archive instead).
 *          Bit 1 (incremental only) = bytes 112 hold cs(first txid - 1);
 *          with each frame's CRC (or a sealed frame's own checksum) it
 *          gives cs(txid) of every transaction in the file, which a load
 *          compares with the store's (LOADING). Clear (files written before
 *          the field, or by a store whose log does not know its lineage):
 *          the load seeds the chain from the store's cs(first txid - 1), so
 *          only the transactions both hold are compared, with a warning.
 *          Bits 0 and 1 together are SL_ECORRUPT; other bits zero; readers
 *          that predate a bit ignore it.
 *   124 4  CRC32C of bytes 0..123
 *
 * CHUNKS (from offset 128, back to back)
 *   0   4  raw_len R: bytes of records the chunk holds (1 .. SL_DUMP_CHUNK_MAX)
 *   4   4  stored_len S: bytes that follow the chunk header
 *   8   4  flags: bit 0 = the S bytes are one LZ4 block that decompresses
 *          to exactly R bytes (1 <= S <= LZ4_compressBound(R)); clear = the
 *          R raw bytes themselves (S = R). Bit 1 = sealed (below): set on
 *          every chunk of a version 2 file, on none of a version 1 file.
 *          Other bits zero.
 *   12  4  CRC32C over bytes 0..11 of this chunk header followed by the S
 *          stored bytes
 *   16  S  stored bytes
 *   The CRC covers the bytes as stored, so every changed byte of a chunk
 *   is caught at that chunk before LZ4 sees it (an LZ4 match offset can be
 *   changed without changing what it decompresses to, so a CRC of the raw
 *   bytes alone would not see that). The raw bytes are covered end to end
 *   by the trailer.
 *   Writers fill chunks to about SL_DUMP_CHUNK_RAW raw bytes. A record
 *   never spans chunks: a record larger than SL_DUMP_CHUNK_RAW gets a chunk
 *   of its own. A writer stores a chunk raw when LZ4 does not make it
 *   smaller.
 *
 * RECORDS (the raw bytes of the chunks, back to back)
 *   full:        0 1 db index | 1 4 key length K (1..SL_DUMP_KEY_MAX) |
 *                5 4 value length V (0..SL_FRAME_MAX) | 9 K key | 9+K V value
 *                Every key/value of every LMDB database of the store (the
 *                meta database included: applied txid, commit time, next
 *                ids, counts), databases in index order, keys ascending
 *                (LMDB's order: memcmp, then shorter first) within each.
 *                Db index = the store's schema order (store.h, LMDB
 *                DATABASES): 0 meta, 1 nodes, 2 node_labels, 3 label_index,
 *                4 node_props, 5 rels, 6 rel_props, 7 adjacency. An index
 *                past the last is refused (SL_ECORRUPT); the meta record
 *                "format_version" says how keys and values are laid out,
 *                and a loader refuses a version it does not know (SL_EVERSION).
 *   incremental: whole log frames exactly as store/log.h lays them out
 *                ([length][CRC32C][packed shiplog.Transaction]), txids
 *                dense from first txid to last txid.
 *
 * TRAILER: a chunk header with raw_len 0, stored_len 16, flags 0 and its
 *   CRC over those 12 bytes and the 16 that follow:
 *   0 8 record count | 8 4 CRC32C of the raw bytes of every chunk, in order
 *   | 12 4 zero
 *   The file ends right after it.
 *
 * AT-REST ENCRYPTION (version 2; crypt/crypt.h). Compress first, then
 *   seal: a sealed chunk's S stored bytes are nonce (12) | AES-256-GCM
 *   ciphertext | tag (16) of what a plaintext chunk would store (the LZ4
 *   block or the raw bytes, bit 0 as above, so S is 28 more), under
 *   HKDF-SHA256(key, salt = store id, info = "shiplog dump v1") with
 *   additional data: chunk header bytes 0..11 | le64 chunk index (0, 1, ...
 *   in file order) | the 128 header bytes. The trailer is sealed the same
 *   way (flags 2, stored_len 44) with index = the number of chunks. So a
 *   chunk changed, moved to another place or file, removed, or cut off at
 *   the end fails to open (SL_EAUTH), and a header changed after writing
 *   fails every chunk. The CRC still covers the stored (sealed) bytes, so
 *   damage is named as such before any key is used. Version 1 files are
 *   written exactly as before (old readers read them); an old reader
 *   refuses a version 2 file (SL_EVERSION) instead of misreading it. What
 *   stays in clear: the header (store id, kind, txids, times, key id) and
 *   the chunk sizes.
 *
 * A VALID FILE has a header that decodes, chunks whose lengths, flags and
 * CRCs hold and whose raw bytes parse into whole records as above (full:
 * databases not going backwards, keys strictly ascending within a database;
 * incremental: every frame's CRC, txids first..last), then a trailer whose
 * count and CRC match, then end of file. A reader refuses a wrong magic
 * (SL_ENOTLOG), a version it does not know (SL_EVERSION), a file that ends
 * before the trailer (SL_ETRUNCATED) and anything else (bytes after the
 * trailer included) with SL_ECORRUPT, each logged as "FILE: offset N:
 * reason" where N is the offset of the header, chunk or trailer at fault.
 *
 * LOADING leaves nothing half-done behind. A full dump is loaded into a new
 * store built in DIR.tmp-PID beside the target and renamed into place when
 * complete; an incremental is read and checked entirely before its first
 * transaction is applied. No silent merges: the txids an incremental holds
 * that the store holds already are compared by the rolling log checksum
 * before anything is applied -- equal ones are skipped, the first one that
 * differs refuses the whole file (SL_EGAP, naming that txid) and the store
 * is left as it was.
 *
 * THREADS: every function here works on its own arguments; a reader
 * belongs to one thread. sl_dump_full and sl_dump_incremental may run while
 * other threads or processes write to the store; they compress on helper
 * threads of their own, which end before they return.
 */
#ifndef SL_DUMP_H
#define SL_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SL_DUMP_MAGIC "SHIPDUMP"
#define SL_DUMP_VERSION 1                    /* plaintext */
#define SL_DUMP_VERSION_SEALED 2             /* at-rest encryption */
#define SL_DUMP_CHUNK_F_SEALED 0x2u
#define SL_DUMP_HEADER_SIZE 128
#define SL_DUMP_CHUNK_HEADER_SIZE 16
#define SL_DUMP_TRAILER_SIZE 16              /* bytes after the trailer's chunk header */
#define SL_DUMP_CHUNK_RAW (1u << 20)         /* raw bytes a writer puts in a chunk */
#define SL_DUMP_CHUNK_MAX (SL_FRAME_MAX + 4096u) /* largest raw_len accepted */
#define SL_DUMP_RECORD_HEADER_SIZE 9         /* full: db, key length, value length */
#define SL_DUMP_KEY_MAX 511                  /* LMDB's longest key */
#define SL_DUMP_F_LINEAGE 0x1u               /* header flags (offset 120) */
#define SL_DUMP_F_PREV_CHECKSUM 0x2u         /* incremental: offset 112 is cs(first - 1) */

typedef enum sl_dump_kind { SL_DUMP_FULL = 1, SL_DUMP_INCREMENTAL = 2 } sl_dump_kind;

/* A decoded file header. */
typedef struct sl_dump_header {
  uint16_t version;
  uint32_t kind;                       /* sl_dump_kind */
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t first_txid, last_txid;
  uint64_t last_commit_us;
  uint64_t since_us;
  uint64_t created_us;
  uint64_t epoch;
  char key_id[SL_KEY_ID_SIZE + 1];     /* "" = plaintext */
  bool has_lineage;                    /* epoch and checksum are known */
  uint64_t checksum;                   /* cs(last_txid) */
  bool has_prev_checksum;              /* incremental: prev_checksum is known */
  uint64_t prev_checksum;              /* incremental: cs(first_txid - 1) */
} sl_dump_header;

/* Encode into 128 bytes / decode and check 128 bytes. decode returns
 * SL_ENOTLOG, SL_EVERSION (version) or SL_ECORRUPT (CRC, header length,
 * kind, a key id that disagrees with the version); it logs nothing
 * (callers name the file). encode writes version 2 when h->key_id is set,
 * else 1. */
void sl_dump_header_encode(const sl_dump_header *h, uint8_t out[SL_DUMP_HEADER_SIZE]);
int sl_dump_header_decode(const uint8_t in[SL_DUMP_HEADER_SIZE], sl_dump_header *h);

/* Progress of long work: done out of total (0: unknown). Called about once
 * per chunk. Same shape as interchange's sl_progress_fn. */
typedef void (*sl_dump_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* What a dump wrote or a reader found. */
typedef struct sl_dump_info {
  sl_dump_header header;
  uint64_t records;     /* key/values (full) or transactions (incremental) */
  uint64_t raw_bytes;   /* record bytes before compression */
  uint64_t file_bytes;  /* bytes of the file */
  bool has_end_checksum; /* end_checksum is known: a full dump with its
                            lineage; an incremental with prev_checksum,
                            read to its end */
  uint64_t end_checksum; /* cs(last txid) */
} sl_dump_info;

/* ---- writing ------------------------------------------------------------------ */
typedef struct sl_dump_options {
  /* incremental only: the first txid wanted (0: none given) and/or every
   * transaction committed after since_us (has_since); with both, whichever
   * starts later. Neither: the whole log. */
  uint64_t from_txid;
  bool has_since;
  uint64_t since_us;
  /* full: key/values written of the image's total; incremental:
   * transactions written of those to write. May be NULL. */
  sl_dump_progress_fn progress;
  void *progress_arg;
  const char *name; /* names the output in messages (NULL: "dump output") */
  uint32_t chunk_raw; /* raw bytes per chunk; 0: SL_DUMP_CHUNK_RAW (tests use
                         small ones to get many chunks from a small store) */
  sl_keyring *keyring; /* NULL: plaintext (version 1); else sealed with its
                          first key (version 2, AT-REST ENCRYPTION) */
} sl_dump_options;

/* Write a full dump of st to fd (written sequentially; any kind of fd: a
 * file, a pipe). st may be open read-only or for writing; the image is one
 * LMDB read transaction, so writers go on meanwhile (LMDB keeps the pages
 * of that snapshot while it lasts, so data.mdb may grow during a long
 * dump). Memory stays at a few chunks (8 MiB) whatever the store's size;
 * the call uses helper threads of its own (compression, and readahead of
 * data.mdb when it is small next to RAM) and joins them before returning.
 * The caller makes the file durable (fsync) and names it. Errors: -errno
 * from write (logged with opt->name), LMDB errors. out (may be NULL) is
 * filled on success. */
int sl_dump_full(sl_store *st, int fd, const sl_dump_options *opt, sl_dump_info *out);

/* Write an incremental dump of st's log (DIR/log) to fd: the durable
 * transactions from the start the options give up to the durable mark at
 * the time of the call. A start past the durable mark + 1 is SL_EINVAL; a
 * start before the oldest kept segment (pruned) is SL_ENOTFOUND; so is a
 * --since TIME older than what the log still covers (the log begins after
 * txid 1 and its first transaction is after TIME: pruned transactions may
 * be after TIME too). A store without a log of its own (a standby) is
 * SL_EINVAL. The file may hold no transaction (first = last + 1). */
int sl_dump_incremental(sl_store *st, int fd, const sl_dump_options *opt, sl_dump_info *out);

/* ---- reading ------------------------------------------------------------------ */
typedef struct sl_dump_reader sl_dump_reader;

/* One record. Pointers are valid until the next sl_dump_next call. */
typedef struct sl_dump_record {
  uint64_t offset;           /* file offset of the chunk holding it */
  /* full */
  unsigned db;
  const uint8_t *key, *val;
  size_t klen, vlen;
  /* incremental: the frame's payload and its txid */
  uint64_t txid;
  uint64_t commit_us;
  const uint8_t *payload;
  size_t len;
  uint64_t checksum;         /* cs(txid), chained from the header's
                                prev_checksum (or sl_dump_reader_chain_from) */
} sl_dump_record;

/* Open PATH and check its header (logged as "PATH: offset 0: reason").
 * Errors: -errno (open, read), SL_ENOTLOG, SL_EVERSION, SL_ECORRUPT,
 * SL_ETRUNCATED. */
int sl_dump_open(const char *path, sl_dump_reader **out);
/* The same with the keys that open a sealed file (kr may be NULL; it must
 * outlive the reader). A sealed file whose key is not in kr (or without
 * kr) is refused at open, naming the key id: SL_ENOTFOUND. A sealed chunk
 * that does not open is SL_EAUTH, logged like other damage. */
int sl_dump_open_keyed(const char *path, sl_keyring *kr, sl_dump_reader **out);
const sl_dump_header *sl_dump_reader_header(const sl_dump_reader *r);
/* Bytes of the file read so far, and its size (for progress). */
uint64_t sl_dump_reader_pos(const sl_dump_reader *r);
uint64_t sl_dump_reader_size(const sl_dump_reader *r);
/* The next record: 0; SL_EEND once the trailer checked out and the file
 * ends there (the totals are then in *info, see sl_dump_reader_info);
 * SL_ECORRUPT / SL_ETRUNCATED / -errno on damage, logged as "PATH: offset
 * N: reason" (sl_dump_reader_error_offset gives N). */
int sl_dump_next(sl_dump_reader *r, sl_dump_record *rec);
uint64_t sl_dump_reader_error_offset(const sl_dump_reader *r);
/* Header and totals (records, raw bytes; file bytes read so far). */
void sl_dump_reader_info(const sl_dump_reader *r, sl_dump_info *out);
/* Back to the first record, to read the file again. */
int sl_dump_rewind(sl_dump_reader *r);
/* Incremental: chain the records' checksums from cs instead of the
 * header's prev_checksum (a file without one); holds across rewinds. Call
 * before the first sl_dump_next. */
void sl_dump_reader_chain_from(sl_dump_reader *r, uint64_t cs);
void sl_dump_close(sl_dump_reader *r);

/* Read and check the whole file (as sl_dump_next does); out (may be NULL)
 * receives header and totals. */
int sl_dump_verify(const char *path, sl_dump_progress_fn progress, void *progress_arg, sl_dump_info *out);
int sl_dump_verify_keyed(const char *path, sl_keyring *kr, sl_dump_progress_fn progress, void *progress_arg,
                         sl_dump_info *out);

/* ---- loading ------------------------------------------------------------------ */
typedef struct sl_load_options {
  sl_dump_progress_fn progress;  /* bytes of the file processed of its size */
  void *progress_arg;            /* (--onto reads the file twice: 2 x size) */
  bool no_log;                   /* full: build a no_log store (a receiver's
                                    standby, rebuilt from a snapshot) */
  sl_keyring *keyring;           /* opens sealed files (may be NULL) */
  /* full: DIR may hold a store (`load --overwrite-destination`), which no
   * process may have open (sl_store_lock_unused, SL_ELOCKED). Once the new
   * store is complete, the old one is renamed DIR.old-<UTC time> (kept
   * aside, never removed; its name into `kept`) and the new one takes the
   * name DIR (sl_store_swap). A DIR that is neither missing, empty nor a
   * store stays SL_EEXIST. */
  bool overwrite;
  char *kept;                    /* kept_len bytes, "" when nothing was kept */
  size_t kept_len;
} sl_load_options;

/* Build a new store in DIR (missing or an empty directory: SL_EEXIST
 * otherwise) from the full dump PATH: same store id, the same graph and
 * counters; its log starts at the image's txid + 1, so opening it for
 * writing continues from there. The store is built in DIR.tmp-PID and
 * renamed to DIR when complete; on any failure that directory is removed
 * and DIR is left as it was. An incremental dump is SL_EINVAL. */
int sl_load_full(const char *path, const char *dir, const sl_load_options *opt, sl_dump_info *out);

typedef struct sl_load_result {
  uint64_t applied;  /* transactions applied */
  uint64_t skipped;  /* at or below the store's applied txid (overlap) */
  uint64_t from_txid, to_txid; /* the store's applied txid before / after */
} sl_load_result;

/* Apply the incremental dump PATH to st (open for writing, with a log).
 * The whole file is checked first; nothing is applied from a damaged file.
 * Refused before anything is applied: a full dump (SL_EINVAL), another
 * store's file (SL_ESTOREID), a file that starts past the store's applied
 * txid + 1 (SL_EGAP, naming both txids), a file that ends before it
 * (SL_EEXIST: the store is ahead), a file whose history differs from the
 * store's at a txid both hold (SL_EGAP, naming the first differing txid,
 * or "at or before" the first txid both can compare when the difference
 * lies before it). Transactions at or below the applied txid are
 * compared by the rolling log checksum and skipped; the rest go through
 * sl_store_apply_batch in groups (each group is durable in st's log when
 * that call returns). What cannot be compared (a file without
 * prev_checksum whose first txid - 1 the store's log no longer holds, a
 * store whose log does not know its lineage, sl_log_lineage_known) is
 * warned about and loaded as before. */
int sl_load_incremental(const char *path, sl_store *st, const sl_load_options *opt, sl_load_result *out);

#endif
