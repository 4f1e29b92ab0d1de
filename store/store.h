/*
 * The graph store: nodes with labels and properties, typed relationships with
 * properties (Neo4j's model), kept in LMDB and made durable by the
 * transaction log (store/log.h).
 *
 * STORE DIRECTORY
 *   DIR/store.id     "shiplog-store 1\n" + store id (32 hex) + "\n"
 *   DIR/log/         the transaction log (the truth)
 *   DIR/data.mdb     LMDB state (derived from the log; see below). While a
 *                    writer has it open, up to 8 MiB is allocated past the
 *                    pages in use (commit.c, reserve_space); a clean close
 *                    trims it to them
 *   DIR/lock.mdb     LMDB's reader table
 *   DIR/writer.lock  flock()ed by the one process that opens for writing;
 *                    holds the boot id while open, for power-loss detection;
 *                    "sync-failed" once a checkpoint's sync of data.mdb failed
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
 *   The sync runs off the commit path, on the store's checkpoint thread: a
 *   committer past a mark only asks for a checkpoint; the thread pins the
 *   newest snapshot (under the writer lock, a moment), syncs data.mdb while
 *   commits go on into pages the pins keep apart, writes the checkpoint
 *   file, and only then releases the previous pin and prunes the log. One
 *   at a time; close, compact and sl_store_checkpoint wait for it.
 *   A failed sync of data.mdb is not retried: after a failed write-back
 *   the kernel may call the same pages clean, so a second sync can succeed
 *   over lost pages. The store takes no more writes and writer.lock says
 *   "sync-failed"; the next open treats LMDB as after a power loss.
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
 *   quarter of the live pages (at least 8 MiB), which keeps data.mdb
 *   within 1.5x its live pages + 16 MiB.
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
 *   schema      name -> index id(4) | packed SchemaRule   (store/schema.c)
 *   index       index id(4) values entity(8) -> empty     (store/index_key.c)
 *   Labels, types and property keys are 1..255 bytes of UTF-8 without NUL.
 *
 * THREADS AND PROCESSES, ERRORS, MEMORY: include/shiplog.h.
 *
 * PUBLIC AND INTERNAL
 *   The application-facing half of this module (values, open/create/close,
 *   transactions, views, space/compact/checkpoint) is declared once, in
 *   include/shiplog.h, the installed header of libshiplog; every
 *   declaration there carries SHIPLOG_API and is exported by the .so. This
 *   header adds what only shiplog's own modules use (the log, applying
 *   another log's records, standbys, locks, page checks); the library is
 *   built with -fvisibility=hidden, so these stay private to it.
 */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "shiplog.h"

#define SL_CHECKPOINT_BYTES (256ull << 20)

/* Flags of sl_store_open besides SL_OPEN_RDONLY (shiplog.h). */
#define SL_OPEN_NOLOG 2u   /* open a no_log store for applying (standby) */
#define SL_OPEN_BULK 4u    /* building a store that is thrown away unless
                              complete (restore): sl_store_apply_batch does
                              not wait for the log's fdatasync (checkpoints
                              still bound the log); the builder makes it
                              durable at the end (sl_log_wait_durable,
                              sl_store_checkpoint), as sl_store_close does */

/* Is DIR in use by any process? 0 when none has it open, for writing
 * (writer.lock flocked) or reading (LMDB's shared lock on lock.mdb); then
 * *lock_fd holds writer.lock flocked, so that no writer opens DIR until the
 * caller closes it (an in-place restore swaps the directory meanwhile).
 * SL_ELOCKED otherwise, logged naming DIR and, for a reader, its pid. The
 * caller's own process must not have DIR open. */
int sl_store_lock_unused(const char *dir, int *lock_fd);
/* SHIPPING LOCK. A process that reads DIR's log without opening the store
 * (the shipper) holds *lock_fd, a shared lock on byte 1 of writer.lock that
 * writers do not meet; SL_ELOCKED (logged) while DIR is being replaced;
 * 0 with *lock_fd -1 (and a warning) when writer.lock cannot be opened.
 * sl_store_lock_unshipped is sl_store_lock_unused plus that byte locked
 * exclusively, for what replaces or cuts the log under a shipper (a
 * restore in place, a rewind): SL_ELOCKED, logged, while one ships it. */
int sl_store_lock_shipping(const char *dir, int *lock_fd);
int sl_store_lock_unshipped(const char *dir, int *lock_fd);
/* Put the complete store BUILT (a directory beside STORE) in STORE's place,
 * keeping STORE's old state: STORE is renamed STORE.TAG-<UTC time
 * YYYYMMDDTHHMMSSZ>[-N] (that name into kept, klen bytes), BUILT takes the
 * name STORE, then the parent is fsynced. A failed second rename puts STORE
 * back. The caller holds STORE unused (sl_store_lock_unused). 0 or -errno,
 * logged naming the paths. */
int sl_store_swap(const char *store, const char *built, const char *tag, char *kept, size_t klen);
/* Did the machine go down while DIR was open for writing (writer.lock
 * names another boot)? A no_log store (standby) is then torn, and its owner
 * rebuilds it; any other SL_ECORRUPT from opening one is damage. */
bool sl_store_power_lost(const char *dir);

/* DIR/store.id (STORE DIRECTORY above), the one reader of that file: the
 * id without opening the store (a shipper thread next to the writer must
 * not open LMDB a second time). SL_ECORRUPT for a malformed file,
 * SL_EVERSION for another format version, -ENOENT when DIR is no store;
 * each logged naming the file. */
#define SL_STORE_ID_FILE "store.id"
int sl_store_read_id(const char *dir, uint8_t id[SL_STORE_ID_SIZE]);
/* The log of a store opened for writing (NULL when read-only). */
sl_log *sl_store_log(sl_store *st);

/* Check the constraints now, as sl_tx_commit will (the query engine
 * reports a violation while sl_tx_error can still say why): 0, or
 * SL_ECONSTRAINT (the transaction may then only be aborted). */
int sl_tx_check_constraints(sl_tx *tx);

/* ---- applying another log's records ------------------------------------ */
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

/* `shiplog verify` (store/verify.c): data.mdb's pages (sl_store_check),
 * every frame of the log up to the last txid the store knows, and, when
 * the log still begins at txid 1, that the state equals a replay of the
 * log: export_fn writes the store's and a scratch replay's state (under
 * $TMPDIR, removed) and the two must be byte-equal (the CLI passes the
 * canonical export). Opens DIR read-only: a writer may run. 0 with *out
 * filled; SL_ECORRUPT (or the error that stopped it) after logging
 * "DIR: FAILED: reason" naming the file and offset or the first differing
 * line. */
typedef int (*sl_store_export_fn)(sl_view *v, FILE *out, const char *name);
/* Do st's databases agree with each other (store/state_check.c: labels and
 * their index, properties and their owners, relationships, their nodes and
 * adjacency, meta's counts and next ids)? One read transaction; a writer
 * may go on. 0, SL_ECORRUPT naming the first disagreement (logged as "DIR:
 * FAILED: ..."), or an LMDB error (logged). */
int sl_store_check_state(sl_store *st);
typedef struct sl_verify_result {
  uint64_t frames;       /* frames checked */
  size_t segments;       /* log segments */
  uint64_t first_txid;   /* the log's first txid (0: no segment) */
  uint64_t last_txid;    /* the last frame's txid */
  bool state_checked;    /* equal to a replay; false: the log no longer begins at txid 1 */
  bool state_consistent; /* sl_store_check_state passed (every store) */
  uint64_t applied_txid; /* LMDB's applied txid and counts */
  uint64_t nodes, rels;
} sl_verify_result;
int sl_store_verify(const char *dir, sl_store_export_fn export_fn, sl_verify_result *out);
/* Is every index entry what the view's data implies (none missing, none
 * extra), and does the data keep every constraint? 0, or SL_ECORRUPT /
 * SL_ECONSTRAINT with the first difference in why ("index NAME lacks the
 * entry of node 17"). */
int sl_store_schema_verify(sl_view *v, char *why, size_t n);

/* ---- query scans (for query/: pull-driven, resumable reads) --------------------------- */
/* Up to max ids >= from, ascending, into ids (*n of them; fewer than max
 * means the end): every node (label NULL), the nodes with label, or every
 * relationship (rels). The next batch starts at the last id + 1. */
int sl_view_scan_ids(sl_view *v, bool rels, const char *label, uint64_t from, uint64_t *ids, size_t max, size_t *n);
/* Does node id carry label (a node that does not exist has none)? */
int sl_view_node_has_label(sl_view *v, uint64_t id, const char *label, bool *out);
/* The names in use: what 0 labels (each once, sorted as the label index
 * keeps them), 1 relationship types, 2 property keys (these two once per
 * use: callers deduplicate). fn's name is NUL-terminated, valid during the
 * call; a nonzero return stops the walk and is returned. */
typedef int (*sl_name_fn)(void *arg, const char *name);
int sl_view_names(sl_view *v, int what, sl_name_fn fn, void *arg);

#ifdef SL_FAULT_INJECTION
/* ---- tests: the steps of a checkpoint ------------------------------------------------ */
/* When set, every checkpoint calls it at each step, from the thread that
 * takes it (the checkpoint thread, or an open, close or sl_store_checkpoint
 * caller): a test may hold a checkpoint there while commits go on, or lose
 * power (sl_fault) at a step. */
enum sl_checkpoint_step {
  SL_CKPT_STEP_PINNED,  /* snapshot pinned, LMDB not yet synced */
  SL_CKPT_STEP_SYNCED,  /* LMDB synced, DIR/checkpoint not yet written */
  SL_CKPT_STEP_WRITTEN, /* DIR/checkpoint written; the old pin not yet released, the log not pruned */
};
extern void (*sl_test_checkpoint_step)(sl_store *st, enum sl_checkpoint_step step);
#endif

#endif
