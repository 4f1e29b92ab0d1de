/*
 * Module-private declarations of the graph store (store.c, checkpoint.c,
 * commit.c, graph.c, graph_read.c, value.c). Nothing outside store/
 * includes this file.
 *
 * Who does what:
 *   store.c  directory layout, store.id, open/create/close, writer lock and
 *            power-loss detection, recovery (rebuild, log replay), views.
 *   checkpoint.c  the checkpoint's LMDB image and its pin, DIR/checkpoint,
 *            the restore after a power loss, checkpoints, space, compaction.
 *   commit.c write transactions on LMDB, the commit path and group commit
 *            (sl_tx_begin/commit/abort) and sl_store_apply*.
 *   graph.c  the LMDB schema, the ops (validate + apply to one MDB_txn), the
 *            sl_tx_* write wrappers that also record each op into the
 *            Transaction being built, the decoding of a packed Transaction
 *            into the same ops (replay).
 *   graph_read.c  every read (sl_view_*).
 *   value.c  sl_value <-> LMDB bytes, sl_value <-> Shiplog__Value, equality,
 *            the value ranges and the UTF-8 / name checks.
 *   value_order.c  Neo4j's ordering and comparison of values.
 */
#ifndef SL_STORE_INT_H
#define SL_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <lmdb.h>

#include "sl_base.h"

#include "store.h"
#include "transaction.pb-c.h"

/* ---- arenas (sl_arena, base/arena.c) ----------------------------------- */
/* A protobuf-c allocator drawing from the arena (free is a no-op). */
void sl__arena_pb_allocator(sl_arena *a, ProtobufCAllocator *out);

/* ---- LMDB schema ------------------------------------------------------------ */
enum sl__db {
  SL__DB_META,
  SL__DB_NODES,
  SL__DB_NODE_LABELS,
  SL__DB_LABEL_INDEX,
  SL__DB_NODE_PROPS,
  SL__DB_RELS,
  SL__DB_REL_PROPS,
  SL__DB_ADJACENCY,
  SL__DB_SCHEMA, /* the schema databases (schema.c); a store of format 1 */
  SL__DB_INDEX,  /* that no writer of this build opened may lack them */
  SL__DB_COUNT
};
extern const char *const sl__db_names[SL__DB_COUNT];

/* LMDB's format_version: 1 for a graph, 2 once it holds schema (which
 * older builds do not maintain, so they must refuse it). This build reads
 * both. */
#define SL__FORMAT_VERSION 2
#define SL__FORMAT_VERSION_PLAIN 1
/* Longest key: adjacency node(8) dir(1) tlen(1) type(255) rel(8). */
#define SL__KEY_MAX (8 + 1 + 1 + SL_NAME_MAX + 8)

/* The counters kept in the meta database, all written in the LMDB
 * transaction that applies the ops they describe. */
typedef struct sl__meta {
  uint64_t applied_txid;
  uint64_t last_commit_us;
  uint64_t next_node_id, next_rel_id;
  uint64_t node_count, rel_count;
} sl__meta;

/* Map an LMDB return code to ours (positive errno -> -errno). */
int sl__mdb_err(int rc);

/* Cursors of one MDB_txn, opened on first use (graph.c). */
typedef struct sl__cursors {
  MDB_txn *txn;
  MDB_cursor *c[SL__DB_COUNT];
} sl__cursors;
/* The cursor on db, opened now if needed; *out is NULL on failure. */
int sl__cursor(sl__cursors *cs, const MDB_dbi *dbis, enum sl__db db, MDB_cursor **out);
void sl__cursors_close(sl__cursors *cs);

/* One LMDB write transaction applying ops: the meta it will commit and the
 * cursors it uses. */
typedef struct sl__schema sl__schema;
typedef struct sl__touched {
  uint64_t id;
  bool rel;
} sl__touched;
typedef struct sl__wctx {
  sl_store *st;
  MDB_txn *txn;
  sl__cursors cur;
  sl__meta meta;
  char err[400]; /* what the failing op found (for sl_tx_error and logs) */
  sl__schema *schema;    /* the rules, loaded on first use (schema.c) */
  /* Entities a constraint applies to that the sl_tx changed: checked at its
   * commit (schema.c). Only a sl_tx tracks them (track). */
  bool track;
  sl__touched *touched;
  size_t ntouched, touched_cap;
} sl__wctx;

/* ---- the store ------------------------------------------------------------- */
struct sl_view {
  sl_store *st;
  MDB_txn *txn;
  bool owned_by_tx;
  const sl__meta *tx_meta; /* a tx view reads the tx's uncommitted meta */
  sl__cursors cur;
  sl_arena scratch;
};

struct sl_tx {
  sl_store *st;
  sl__wctx w;
  int err;                 /* first error: the tx may only be aborted */
  bool has_commit_time;
  uint64_t commit_us;
  sl_arena arena;         /* the op message being recorded (reset per op) */
  uint8_t *ops;            /* the packed ops (graph.c, record()); kept across
                              transactions up to TX_OPS_KEEP bytes */
  size_t nops, ops_len, ops_cap;
  int ops_kind;            /* 0 none yet, 1 data ops, 2 schema ops */
  struct sl_view view;     /* sl_tx_view */
  bool view_open;
};

struct sl_store {
  char *dir;
  unsigned flags;
  bool rdonly, no_log;
  uint8_t id[SL_STORE_ID_SIZE];
  MDB_env *env;
  MDB_dbi dbi[SL__DB_COUNT];
  bool schema_dbs;          /* dbi[SL__DB_SCHEMA..] are open (false: a store
                               of format 1 opened read-only that lacks them) */
  sl_log *log;
  int lock_fd;              /* writer.lock, flock()ed; -1 when read-only */
  char boot_id[64];
  struct sl__open_dir *open_dir; /* this process's claim on dir (ONE ENVIRONMENT PER PROCESS, store.c) */

  pthread_mutex_t wlock;    /* the writer lock: one tx or apply at a time */
  sl__meta meta;            /* committed meta (under wlock) */
  int failed;               /* sticky until reopen: LMDB and the log disagree, or
                               LMDB met a damaged page (SL_ECORRUPT) */
  sl_tx tx;                 /* the one write transaction, reused */
  sl_arena apply_arena;    /* unpacked records (under wlock) */

  /* Group commit (commit.c, GROUP COMMIT): transactions committed into the
   * open LMDB transaction tx.w but not yet in the log (under wlock). */
  uint8_t *pend;              /* their packed records, back to back */
  size_t pend_len, pend_cap;
  size_t *pend_off, *pend_lens, pend_n, pend_max;
  const uint8_t **pend_ptrs;
  struct sl__waiter *waiters, **waiters_tail;
  pthread_mutex_t gc_mu;      /* guards gc_syncing, gc_flushes, gc_draining, the waiters' outcome */
  pthread_cond_t gc_cv;        /* openers waiting to lead, group_drain */
  /* The other committers wait for their group's sync on a futex word (by
   * the group's parity), bumped under gc_mu (commit.c, WAKE-UPS). */
  _Atomic uint32_t gc_member_seq[2];
  bool gc_syncing;            /* an opener flushes and syncs its group */
  uint64_t gc_flushes;        /* groups flushed (under gc_mu) */
  unsigned gc_draining;       /* threads in group_drain waiting for a flush (under gc_mu) */
  /* COMMIT DELAY (commit.c): an opener waits a moment for the committers
   * the last sync released to join its group. */
  pthread_cond_t gc_join_cv;  /* with wlock: a record joined the open group */
  size_t gc_join_want;        /* under wlock: an opener waits for this many records (0: none) */
  unsigned gc_join_skip;      /* under wlock: groups left that do not wait (after a wait in vain) */
  size_t gc_join_target;      /* under gc_mu: records of the last synced group + those pending then */
  _Atomic size_t gc_pend_n;   /* pend_n, read by the syncing leader without wlock */
  bool gc_rollback;           /* the group's LMDB transaction holds a failed
                                 transaction's writes: its opener re-applies
                                 the pending records at its flush (wlock) */

  pthread_mutex_t ckpt_lock;  /* one checkpoint at a time */
  /* The checkpoint thread (checkpoint.c, CHECKPOINT THREAD) of a writable
   * store: committers past the mark only ask it for a checkpoint, so that
   * no commit waits for LMDB's sync. Under ckpt_mu. */
  pthread_mutex_t ckpt_mu;
  pthread_cond_t ckpt_cv;
  pthread_t ckpt_thread;
  bool ckpt_thread_on;        /* started, not yet joined */
  bool ckpt_wanted;           /* a committer asked for a checkpoint */
  bool ckpt_stop;             /* the thread is to end */
  /* Backpressure: a checkpoint falls due again after the pin of the one in
   * flight (its sync lags the commits): the committer waits for that one,
   * so that data.mdb stays bounded. pin_seq counts pins (under wlock; a
   * committer reads it with its `due`); inflight_seq is the in-flight
   * checkpoint's (0: none); done_cv is broadcast when it ends. */
  uint64_t ckpt_pin_seq;
  _Atomic uint64_t ckpt_inflight_seq;
  pthread_cond_t ckpt_done_cv;
  /* A checkpoint waits for wlock to pin: new write transactions wait for
   * it (set by the checkpoint, cleared under ckpt_mu with done_cv). */
  _Atomic bool ckpt_pin_pending;
  uint64_t ckpt_every;        /* log bytes between automatic checkpoints */
  uint64_t bytes_since_ckpt;  /* under wlock */
  uint64_t reserved;          /* data.mdb bytes known allocated (under wlock) */

  /* Read transactions on the snapshots DIR/checkpoint may name (a store
   * with a log): they keep LMDB from reusing any page of those snapshots,
   * so a power loss can restore one (checkpoint.c, CHECKPOINTS). Normally one;
   * more after checkpoint files that failed to write. Under ckpt_lock. */
  MDB_txn *pins[4];
  size_t npins;
  /* What the newest pin costs (checkpoint.c, CHECKPOINTS; under wlock): the
   * pages freed since it, which LMDB may not reuse until the next
   * checkpoint, counted from the free-page tree's records keyed by the
   * freeing transaction; a checkpoint is due once they pass pin_budget. */
  uint64_t pin_txnid;         /* LMDB transaction of the newest pin; 0: none */
  uint64_t pin_scanned;       /* free-page records up to this key are counted */
  uint64_t pin_held;          /* pages freed since the pin */
  uint64_t pin_budget;        /* pages: 1/4 of the live pages, >= 8 MiB */
  MDB_txn *scan_txn;          /* a reset read transaction for the count */
};

/* ---- the store directory (store.c) ------------------------------------------ */
/* How a writer opens LMDB, log or not (store.c, LMDB IS DERIVED STATE and
 * NOT MDB_WRITEMAP). */
#define SL__ENV_FLAGS MDB_NOSYNC
/* Paths are joined with base's sl_path_join (-ENAMETOOLONG, logged). */
bool sl__exists(const char *dir, const char *name);
/* Open st->env on st->dir (after sl__data_file_check); logged. */
int sl__env_open(sl_store *st, unsigned flags, uint64_t map_size);
/* Check format and store id; load the meta a writer needs. */
int sl__load_meta(sl_store *st);
/* writer.lock := STATE ("open BOOT", "closed"), fdatasync'd. */
int sl__lock_state_write(sl_store *st, const char *state);

/* ---- write transactions on LMDB (commit.c) ---------------------------------- */
/* Begin w on st's LMDB with st's committed meta (caller holds wlock). */
int sl__wbegin(sl_store *st, sl__wctx *w);
void sl__wabort(sl__wctx *w);
/* Write w's meta and commit; on failure the transaction is gone too. */
int sl__wcommit(sl__wctx *w);

/* ---- checkpoints (checkpoint.c) ---------------------------------------------- */
/* writer.lock's text after a failed sync of data.mdb (checkpoint.c). */
#define SL__LOCK_SYNC_FAILED "sync-failed"
/* Refuse (SL_ECORRUPT) a data.mdb shorter than its newest meta page says. */
int sl__data_file_check(const sl_store *st);
/* After a power loss: LMDB back to its checkpoint, opened, meta loaded;
 * SL_ECORRUPT or SL_ENOTFOUND (and `why`) when the checkpoint cannot be used. */
int sl__restore_checkpoint(sl_store *st, const char *logdir, const char *reason, char *why, size_t why_n);
/* Before LMDB is written: pin the checkpoint's snapshot, or take one. */
int sl__pin_at_open(sl_store *st);
void sl__pins_release(sl_store *st);
/* The pages freed since the pin reached its budget: a checkpoint is due. */
bool sl__pin_outgrown(sl_store *st);
/* From a committer past the mark (pin_seq: ckpt_pin_seq when it saw the
 * mark): asks the checkpoint thread for a checkpoint and returns at once,
 * unless the mark was passed again since the pin of the checkpoint in
 * flight: then it waits for that one first. */
void sl__checkpoint_if_due(sl_store *st, bool due, uint64_t pin_seq);
/* Take wlock to begin a write transaction: after the pin of a checkpoint
 * that waits for it (checkpoint.c, CHECKPOINT THREAD). */
void sl__wlock_for_begin(sl_store *st);
/* Start the checkpoint thread of a writable store (at the end of its
 * open); stop it, waiting for a checkpoint it runs (close, compact; no-op
 * when not running). */
int sl__checkpointer_start(sl_store *st);
void sl__checkpointer_stop(sl_store *st);

/* ---- meta (graph.c) -------------------------------------------------------- */
int sl__meta_read(MDB_txn *txn, MDB_dbi meta_dbi, sl__meta *m);
/* Write the fields of `m` that differ from `old` (all when old is NULL). */
int sl__meta_write(MDB_txn *txn, MDB_dbi meta_dbi, const sl__meta *m, const sl__meta *old);
int sl__meta_get_u64(MDB_txn *txn, MDB_dbi meta_dbi, const char *name, uint64_t *out);
int sl__meta_put_u64(MDB_txn *txn, MDB_dbi meta_dbi, const char *name, uint64_t v);
int sl__meta_get_bytes(MDB_txn *txn, MDB_dbi meta_dbi, const char *name, MDB_val *out);
int sl__meta_put_bytes(MDB_txn *txn, MDB_dbi meta_dbi, const char *name, const void *p, size_t n);

/* ---- replay (graph.c) ------------------------------------------------------ */
/* Apply one packed Transaction to w (its txid must be w->meta.applied_txid
 * + 1 and its commit time not below the last); updates w->meta. The arena
 * holds the unpacked record (the caller resets it). */
int sl__apply_record(sl__wctx *w, sl_arena *a, const uint8_t *payload, size_t len);

/* ---- structural check (lmdb_check.c) ------------------------------------------ */
/* Check every B-tree page of txn's snapshot (a read transaction) before a
 * cursor walks them: SL_ECORRUPT, logged naming DIR/data.mdb, the database,
 * page and offset; -EAGAIN when a writer has rewritten both meta pages
 * since txn began (begin a new one and check again). */
int sl__lmdb_check(sl_store *st, MDB_txn *txn);

/* ---- schema (schema.c) ---------------------------------------------------------- */
/* Open the schema databases in txn (MDB_CREATE in flags: create them). A
 * read-only open of a store that lacks them leaves st->schema_dbs false. */
int sl__schema_dbs_open(sl_store *st, MDB_txn *txn, unsigned flags);
/* A writer of a store that lacks them creates them (after the pin). */
int sl__schema_dbs_ensure(sl_store *st);
/* Index entries of entity `id` for the rules on token `token` (NULL: each
 * the entity has) that use property `key` (NULL: any): removed before a
 * change (add false) and put after it (add true). Records the entity for
 * the commit's constraint check when a constraint applies. */
int sl__schema_entity(sl__wctx *w, bool rel, uint64_t id, const char *token, const char *key, bool add);
/* The ops behind sl_tx_create_* / drop_* and their records. */
int sl__schema_op_create(sl__wctx *w, const sl_schema_rule *r);
int sl__schema_op_drop(sl__wctx *w, bool constraint, const char *name);
/* Check the constraints for the entities w->touched names (a commit):
 * SL_ECONSTRAINT with w->err. */
int sl__schema_check(sl__wctx *w);

/* ---- values (value.c) ------------------------------------------------------ */
/* Checks a name (label, type, key): 1..SL_NAME_MAX bytes of UTF-8, no NUL.
 * Returns its length or SL_EINVAL. */
int sl__name_check(const char *name);
/* A storable value: not SL_NULL, strings UTF-8 without NUL (the log's
 * protobuf strings are NUL-terminated), temporal, duration and point values
 * within their ranges (value.c, RANGES), lists of one non-list kind. 0 or
 * SL_EINVAL with the reason in why (may be NULL): "list element 3: offset
 * outside -18:00..+18:00". */
int sl__value_check(const sl_value *v, char *why, size_t whylen);
size_t sl__value_encoded_size(const sl_value *v);
void sl__value_encode(const sl_value *v, uint8_t *out);
/* Decode LMDB bytes; strings are copied into the arena, NUL-terminated. */
int sl__value_decode(const uint8_t *p, size_t n, sl_arena *a, sl_value *out);
/* sl_value -> protobuf (copies into the arena) and back (points into pb). */
int sl__value_to_pb(sl_arena *a, const sl_value *v, Shiplog__Value **out);
int sl__value_from_pb(sl_arena *a, const Shiplog__Value *pb, sl_value *out);

#endif
