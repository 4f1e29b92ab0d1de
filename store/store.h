/*
 * The graph store: nodes with labels and properties, typed relationships with
 * properties (Neo4j's model), kept in LMDB and made durable by the
 * transaction log (store/log.h).
 *
 * STORE DIRECTORY
 *   DIR/store.id     "shiplog-store 1\n" + store id (32 hex) + "\n"
 *   DIR/log/         the transaction log (the truth)
 *   DIR/data.mdb     LMDB state (derived from the log; see below). While a
 *                    writer has a store with a log open, a sparse file as
 *                    large as the LMDB map (MDB_WRITEMAP; `du` shows what it
 *                    holds); a clean close trims it to the pages in use
 *   DIR/lock.mdb     LMDB's reader table
 *   DIR/writer.lock  flock()ed by the one process that opens for writing;
 *                    holds the boot id while open, for power-loss detection
 *   DIR/checkpoint   "txid\n": LMDB was synced to disk with every txid up to
 *                    this one applied; a store with a log adds
 *                    "lmdb-meta PSIZE HEX CRC\n": the meta page of that
 *                    synced LMDB snapshot (CRC32C over the text before it)
 *
 * COMMIT PATH
 *   sl_tx_begin takes the store's writer lock and an LMDB write transaction;
 *   each write is validated and applied to it at once (so a failing op
 *   aborts the whole transaction with nothing logged, and reads through the
 *   transaction see its own writes). sl_tx_commit packs the transaction,
 *   leaves it pending in the open LMDB write transaction, releases the writer
 *   lock and waits. Group commit: transactions committed while the previous
 *   group's fdatasync runs share one LMDB transaction (each begins where the
 *   last pending one ended, so txids stay in order); then one committer
 *   appends all their frames with one write() (so a killed process loses
 *   nothing acknowledged), commits LMDB (no sync) and fdatasyncs the log.
 *   Order: append -> LMDB commit -> fdatasync -> publish durable -> wake;
 *   LMDB never holds a transaction the log lacks. sl_tx_commit returns 0
 *   only when the transaction is durable. Other readers may see a
 *   transaction a moment before its commit call returns; a transaction whose
 *   commit failed with SL_EFAILED may or may not survive a power loss (as
 *   with any database after a failed fsync); one that failed with a full
 *   disk (-ENOSPC, its group's frames cut back) is in neither the log nor
 *   LMDB, and the store goes on.
 *
 * DERIVED STATE
 *   LMDB is derived from the log: `applied txid` in LMDB's meta says which
 *   prefix of the log it holds (applied in the same LMDB transaction as the
 *   ops, so it is exact). On open for writing, every frame past it is
 *   replayed. LMDB is opened without sync; checkpoints (after every segment
 *   size of log appended, at most SL_CHECKPOINT_BYTES, at open and at close)
 *   sync it and record the checkpoint txid with the meta page of the synced
 *   snapshot, and only segments at or below the checkpoint may be pruned.
 *   The writer keeps a read transaction on the checkpoint's snapshot until
 *   the next checkpoint is on disk, so LMDB overwrites none of its pages.
 *   After a power loss (writer.lock left behind by another boot) LMDB may be
 *   torn: the saved meta page is written back into data.mdb, which puts
 *   LMDB back at the checkpoint, and the log after it is replayed; every
 *   durable transaction survives, with any log pruning. Only when the
 *   checkpoint file lacks the meta page (a store of an older shiplog) or it
 *   fails its checks (CRC, LMDB transaction and applied txid) is LMDB rebuilt
 *   by replaying the log from txid 1, and when the log no longer reaches
 *   back that far, the open fails with SL_ECORRUPT and says to restore from
 *   a backup. The price of the pin: pages freed after a checkpoint are reused
 *   only after the next one, so every commit writes new pages; checkpoints
 *   are also taken whenever the pages freed since the last one reach a
 *   sixteenth of the live pages (at least 8 MiB), which keeps data.mdb
 *   within about 1.1x its live pages + 16 MiB.
 *
 * LMDB DATABASES (keys big-endian so that memcmp order is numeric order)
 *   meta        name -> value (applied_txid, last_commit_us, next ids, counts)
 *   nodes       id(8) -> empty
 *   node_labels id(8) label -> empty            labels of a node, sorted
 *   label_index len(1) label id(8) -> empty     nodes by label
 *   node_props  id(8) key -> value              properties, sorted by key
 *   rels        id(8) -> start(8) end(8) type
 *   rel_props   id(8) key -> value
 *   adjacency   node(8) dir(1) tlen(1) type rel(8) -> other(8)
 *   Labels, types and property keys are 1..255 bytes of UTF-8 without NUL.
 *
 * THREADS AND PROCESSES
 *   One process opens a store for writing (SL_ELOCKED otherwise); any number
 *   of processes open it read-only at the same time (SL_OPEN_RDONLY). In a
 *   process, write transactions are serialized (sl_tx_begin blocks), read
 *   views may be used concurrently, each by one thread at a time.
 */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define SL_NAME_MAX 255
#define SL_CHECKPOINT_BYTES (256ull << 20)

typedef struct sl_store sl_store;
typedef struct sl_tx sl_tx;
typedef struct sl_view sl_view;

/* ---- values ------------------------------------------------------------ */
typedef enum sl_kind {
  SL_NULL = 0, /* only as "remove" in mutation input; never stored */
  SL_BOOL,
  SL_INT,
  SL_DOUBLE,
  SL_STRING,
  SL_BYTES,
  SL_LIST
} sl_kind;

typedef struct sl_value {
  sl_kind kind;
  sl_kind elem_kind;   /* SL_LIST: kind of every element; SL_NULL = empty list of unknown kind */
  size_t len;          /* SL_STRING/SL_BYTES: byte length; SL_LIST: element count */
  union {
    bool b;
    int64_t i;
    double d;
    const char *s;             /* UTF-8 without NUL bytes (the log's protobuf
                                  strings cannot hold them); not NUL-terminated
                                  in general: use len */
    const uint8_t *bytes;
    const struct sl_value *items; /* SL_LIST: len scalar values of elem_kind */
  } u;
} sl_value;

typedef struct sl_prop {
  const char *key; /* NUL-terminated */
  sl_value value;
} sl_prop;

/* Compare two values for equality (doubles bitwise, so NaN equals NaN). */
bool sl_value_equal(const sl_value *a, const sl_value *b);

/* ---- opening ------------------------------------------------------------- */
typedef struct sl_store_options {
  uint64_t segment_size;   /* 0: SL_SEG_SIZE_DEFAULT */
  uint64_t map_size;       /* LMDB map size; 0: 64 GiB (sparse) */
  const uint8_t *store_id; /* NULL: a new random id; else SL_STORE_ID_SIZE bytes
                              (a restore keeps its primary's id) */
  uint64_t first_txid;     /* 0 or 1: empty store; N+1 for a store whose LMDB
                              state already holds txids 1..N (restore, load) */
  bool no_log;             /* a standby: no log of its own; the receiver's
                              archive is its log and replays into it */
} sl_store_options;

#define SL_OPEN_RDONLY 1u
#define SL_OPEN_NOLOG 2u   /* open a no_log store for applying (standby) */
#define SL_OPEN_BULK 4u    /* building a store that is thrown away unless
                              complete (restore): sl_store_apply_batch does
                              not wait for the log's fdatasync (checkpoints
                              still bound the log); the builder makes it
                              durable at the end (sl_log_wait_durable,
                              sl_store_checkpoint), as sl_store_close does */

/* Create an empty store in DIR (created if missing; must be empty:
 * SL_EEXIST otherwise). A failed create removes what it made. */
int sl_store_create(const char *dir, const sl_store_options *opt);
/* Open. For writing this takes writer.lock and recovers (log tail, replay).
 * Errors: SL_ELOCKED (another writer), SL_EINVAL (SL_OPEN_NOLOG on a store
 * with a log or its absence on one without), SL_ECORRUPT (LMDB cannot be
 * restored nor rebuilt after a power loss, or is ahead of the log), SL_ESTOREID,
 * SL_EVERSION, -ENOENT (no store.id: not a store, or half created).
 * A no_log store (standby) is written without any sync (MDB_NOSYNC): after
 * a power loss, until its owner rebuilds it, every open of it (read-only
 * too) fails with SL_ECORRUPT; its owner removes it and builds it anew from
 * what it derives from (the receiver: snapshot + archive). */
int sl_store_open(const char *dir, unsigned flags, sl_store **out);
/* Is DIR in use by any process? 0 when none has it open, for writing
 * (writer.lock flocked) or reading (LMDB's shared lock on lock.mdb); then
 * *lock_fd holds writer.lock flocked, so that no writer opens DIR until the
 * caller closes it (an in-place restore swaps the directory meanwhile).
 * SL_ELOCKED otherwise, logged naming DIR and, for a reader, its pid. The
 * caller's own process must not have DIR open. */
int sl_store_lock_unused(const char *dir, int *lock_fd);
/* Did the machine go down while DIR was open for writing (writer.lock
 * names another boot)? A no_log store (standby) is then torn, and its owner
 * rebuilds it; any other SL_ECORRUPT from opening one is damage. */
bool sl_store_power_lost(const char *dir);
/* Checkpoints (when open for writing) and closes. No tx or view may be open. */
void sl_store_close(sl_store *st);

const uint8_t *sl_store_id(const sl_store *st);
/* DIR/store.id (STORE DIRECTORY above), the one reader of that file: the
 * id without opening the store (a shipper thread next to the writer must
 * not open LMDB a second time). SL_ECORRUPT for a malformed file,
 * SL_EVERSION for another format version, -ENOENT when DIR is no store;
 * each logged naming the file. */
#define SL_STORE_ID_FILE "store.id"
int sl_store_read_id(const char *dir, uint8_t id[SL_STORE_ID_SIZE]);
const char *sl_store_dir(const sl_store *st);
/* The log of a store opened for writing (NULL when read-only). */
sl_log *sl_store_log(sl_store *st);
/* How data.mdb's pages are used: pages_used up to the last page in use
 * (the file's size after a clean close is pages_used * page_size), of
 * which pages_free are free for LMDB to reuse (now, or after the next
 * checkpoint). live = used - free is what a load of the store's dump
 * takes, about. */
typedef struct sl_space {
  uint64_t page_size, pages_used, pages_free;
} sl_space;
int sl_store_space(sl_store *st, sl_space *out);

/* Give back the space data.mdb holds beyond its live pages (offline: the
 * store must be open nowhere else; SL_ELOCKED otherwise): a compacting
 * copy of LMDB replaces data.mdb, and the checkpoint is taken anew. Works
 * on stores with a log and on standbys. *before and *after are data.mdb's
 * sizes in bytes. */
int sl_store_compact(const char *dir, uint64_t *before, uint64_t *after);

/* Sync LMDB, record the checkpoint, prune segments no one needs. Safe from
 * another thread while one applies or commits (the sync takes no lock). */
int sl_store_checkpoint(sl_store *st);

/* ---- writing ------------------------------------------------------------- */
int sl_tx_begin(sl_store *st, sl_tx **out);
/* Commit time for this transaction (µs); default: the store's clock, never
 * below the previous commit. SL_ETIME if it goes back or is > now + 60 s. */
int sl_tx_set_commit_time(sl_tx *tx, uint64_t us);

/* Ids are unsigned 64-bit integers, 0 included (a Neo4j export's ids start
 * there); SL_ID_NEW, the one value that is no id, asks for the next free id
 * (one above every id used, 1 in a new store). A given id must be unused
 * (SL_EEXIST). *out_id (may be NULL) receives the id. */
#define SL_ID_NEW UINT64_MAX
int sl_tx_create_node(sl_tx *tx, uint64_t id, const char *const *labels, size_t nlabels,
                      const sl_prop *props, size_t nprops, uint64_t *out_id);
int sl_tx_delete_node(sl_tx *tx, uint64_t id, bool detach); /* SL_EHASRELS */
int sl_tx_add_label(sl_tx *tx, uint64_t id, const char *label);
int sl_tx_remove_label(sl_tx *tx, uint64_t id, const char *label);
int sl_tx_set_node_prop(sl_tx *tx, uint64_t id, const char *key, const sl_value *v);
int sl_tx_remove_node_prop(sl_tx *tx, uint64_t id, const char *key);
int sl_tx_create_rel(sl_tx *tx, uint64_t id, const char *type, uint64_t start, uint64_t end,
                     const sl_prop *props, size_t nprops, uint64_t *out_id);
int sl_tx_delete_rel(sl_tx *tx, uint64_t id);
int sl_tx_set_rel_prop(sl_tx *tx, uint64_t id, const char *key, const sl_value *v);
int sl_tx_remove_rel_prop(sl_tx *tx, uint64_t id, const char *key);
/* What the first failing write found ("node 17 does not exist"), or NULL
 * while none failed. Valid until the transaction ends. */
const char *sl_tx_error(const sl_tx *tx);
/* Any write error leaves the transaction usable only for sl_tx_abort:
 * commit then returns the first error (nothing of it is applied). Setting a
 * property to SL_NULL removes it. Adding a label the node has, or removing a
 * label or property it lacks, is a no-op and is not logged. */

/* Durable commit. *txid (may be NULL) receives its txid. An empty
 * transaction commits nothing and sets *txid to 0. The tx is freed.
 * SIZE: a transaction holds its ops packed as they will be logged (not as
 * messages), and one that would pack to more than SL_TXN_MAX (log.h, SIZE
 * LIMITS) is refused with SL_ETOOBIG by the op that passes the limit
 * ("transaction too large: N bytes by op K, the limit is M" in
 * sl_tx_error); nothing of it is logged. */
int sl_tx_commit(sl_tx *tx, uint64_t *txid);
void sl_tx_abort(sl_tx *tx);
/* Reads through the transaction (sees its own writes). Owned by the tx. */
sl_view *sl_tx_view(sl_tx *tx);

/* Apply one packed Transaction from another log (receiver's standby,
 * restore, load) as one atomic LMDB transaction. Its txid must be the next
 * one (SL_EGAP otherwise; a txid at or below the applied one is
 * SL_EEXIST, so a caller can skip duplicates); ids and commit time come from
 * the record. Validates every op as a commit would (SL_ENOTFOUND, ...). A
 * store with a log appends the record to it and waits for durability; a
 * no_log store only applies (its caller's archive is durable already). */
int sl_store_apply(sl_store *st, const uint8_t *payload, size_t len);
/* Apply many records in one LMDB transaction (faster replay). Stops at the
 * first failure, applying none of that call's records. Batches of about
 * 4-16 MiB of records replay fastest; much larger ones make LMDB spill
 * dirty pages. */
int sl_store_apply_batch(sl_store *st, const uint8_t *const *payloads, const size_t *lens, size_t n);

/* Check data.mdb's B-trees page by page (store/lmdb_check.c) in one read
 * snapshot: page numbers, types, depths, bounds, key order, counts. LMDB has
 * no page checksums and may abort the process on a damaged page a cursor
 * walks, so what reads every page (dump, export, verify, a receiver's
 * standby at load) checks first. Reads every page once. SL_ECORRUPT,
 * logged naming DIR/data.mdb, the database, the page and its offset;
 * damage inside a value is not seen (verify compares with the log).
 * Any thread; read-only stores too. */
int sl_store_check(sl_store *st);
/* A standby (a store without a log of its own: sl_store_options.no_log). */
bool sl_store_no_log(const sl_store *st);

/* ---- reading ------------------------------------------------------------- */
/* A consistent snapshot (LMDB read transaction). */
int sl_view_begin(sl_store *st, sl_view **out);
void sl_view_end(sl_view *v);

typedef struct sl_node {
  uint64_t id;
  size_t nlabels;
  const char **labels; /* sorted bytewise */
  size_t nprops;
  sl_prop *props;      /* sorted by key bytewise */
} sl_node;

typedef struct sl_rel {
  uint64_t id;
  const char *type;
  uint64_t start, end;
  size_t nprops;
  sl_prop *props;      /* sorted by key bytewise */
} sl_rel;

/* Results point into the view's scratch memory: valid until the next
 * sl_view_* call on the same view, or sl_view_end. SL_ENOTFOUND if absent. */
int sl_view_node(sl_view *v, uint64_t id, sl_node *out);
int sl_view_rel(sl_view *v, uint64_t id, sl_rel *out);
int sl_view_node_prop(sl_view *v, uint64_t id, const char *key, sl_value *out);
int sl_view_rel_prop(sl_view *v, uint64_t id, const char *key, sl_value *out);

typedef enum sl_dir { SL_DIR_OUT = 1, SL_DIR_IN = 2, SL_DIR_BOTH = 3 } sl_dir;
/* Callbacks return 0 to go on, anything else stops the walk and is returned.
 * Pointers passed to a callback are valid during the call only. The walk
 * must not call other sl_view_* functions on the same view. */
typedef int (*sl_rel_fn)(void *arg, uint64_t rel_id, const char *type, uint64_t start, uint64_t end);
/* Relationships of a node by direction and type (NULL: any), ascending by
 * (direction, type, id), types ordered by length, then bytewise (the
 * adjacency key); a self-loop is reported once for SL_DIR_BOTH (going out).
 * SL_ENOTFOUND if the node does not exist. */
int sl_view_node_rels(sl_view *v, uint64_t node, sl_dir dir, const char *type, sl_rel_fn fn, void *arg);
typedef int (*sl_id_fn)(void *arg, uint64_t id);
int sl_view_nodes_by_label(sl_view *v, const char *label, sl_id_fn fn, void *arg);
/* Every node / relationship id, ascending. */
int sl_view_all_nodes(sl_view *v, sl_id_fn fn, void *arg);
int sl_view_all_rels(sl_view *v, sl_id_fn fn, void *arg);

typedef struct sl_counts {
  uint64_t nodes, rels;
  uint64_t applied_txid;    /* last txid applied in this view */
  uint64_t last_commit_us;  /* its commit time */
  uint64_t next_node_id, next_rel_id;
} sl_counts;
int sl_view_counts(sl_view *v, sl_counts *out);
/* Nodes carrying a label. */
int sl_view_count_label(sl_view *v, const char *label, uint64_t *out);

#endif
