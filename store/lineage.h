/*
 * Lineage (failover): which history a log holds, and how two logs' histories
 * relate. store/log.h ("LINEAGE") gives the rolling checksum cs(txid) kept
 * in segment headers and frames; this header adds the epoch history and the
 * rules a receiver applies to a shipper.
 *
 * HISTORY FILE (LOGDIR/history, written with sl_write_file_atomic)
 *   "shiplog-history 1\n", then one line per epoch after the first:
 *       EPOCH FIRST_TXID PREV_CHECKSUM\n     (decimal, decimal, 16 hex)
 *   "epoch EPOCH starts at FIRST_TXID, and the log through FIRST_TXID - 1
 *   has checksum PREV_CHECKSUM". Epoch 0 begins at txid 1 and is implicit,
 *   so a log that was never promoted has no file (or an empty list).
 *   Epochs and first txids strictly increase along the list. The log
 *   writer appends an entry when a frame of a newer epoch is appended, and
 *   sl_log_begin_epoch (promote) appends one before any such frame exists;
 *   both a primary's log and a receiver's archive keep it, so each side of
 *   a replication session knows its own history.
 *
 * RULES (sl_lineage_judge; the receiver on every Hello, receiver.h)
 *   R = the stream's last archived txid, S = the shipper's committed txid.
 *   equal     S == R, cs(S) agrees, and every epoch the stream knows is in
 *             the shipper's history: accepted (nothing to send yet).
 *   extends   S > R, every epoch the stream knows is in the shipper's
 *             history, and each epoch only the shipper has starts at or
 *             after R + 1 (at R + 1 its recorded cs(R) must agree):
 *             accepted; every Batch then carries cs(last txid), which the
 *             receiver checks against its own chain before archiving.
 *   behind    S < R with cs(S) agreeing, or S == R but the stream moved on
 *             to an epoch the shipper does not have (it was promoted
 *             elsewhere): refused for good -- this store may not write.
 *   diverged  cs(S) disagrees, the stream's epochs and the shipper's part
 *             before R + 1, or a shipper epoch starting at or below R does
 *             not descend from the stream: refused for good. fork is the
 *             last txid both are known to share; txids fork+1..S are the
 *             shipper's alone (shiplog log --diverged lists them exactly,
 *             shiplog rewind cuts them off).
 */
#ifndef SL_LINEAGE_H
#define SL_LINEAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SL_HISTORY_MAX 256
#define SL_HISTORY_FILE "history"

typedef struct sl_epoch_start {
  uint64_t epoch, first_txid, prev_checksum;
} sl_epoch_start;

typedef struct sl_history {
  size_t n;
  sl_epoch_start e[SL_HISTORY_MAX];
} sl_history;

/* LOGDIR/history into *h (n = 0 when the file is absent). SL_ECORRUPT
 * naming FILE:LINE for a bad file. */
int sl_history_load(const char *logdir, sl_history *h);
int sl_history_save(const char *logdir, const sl_history *h);
/* The newest epoch (0 for an empty history). */
uint64_t sl_history_epoch(const sl_history *h);
/* Append an entry: epoch and first txid must exceed the last ones
 * (SL_EINVAL), at most SL_HISTORY_MAX entries (SL_ETOOBIG). */
int sl_history_add(sl_history *h, uint64_t epoch, uint64_t first_txid, uint64_t prev_checksum);
/* Forget the epochs that start after last_txid (rewind). */
void sl_history_cut(sl_history *h, uint64_t last_txid);
bool sl_history_has(const sl_history *h, const sl_epoch_start *e);

/* WHERE A WRITE LIES (Bolt's bookmarks name epoch:txid, bolt/bolt.h): does
 * the log whose history is h and whose current epoch is `current`
 * (sl_log_epoch; h may stop short of it, e.g. a store loaded from a dump)
 * hold txid as committed in `epoch`? Epoch 0 begins at txid 1 unless h
 * lists it; each epoch runs up to the txid before the next one's start.
 *   HELD     the current epoch at or after its start (txid may be still to
 *            come), or an older epoch that ran through txid: it is there.
 *   LOST     an older epoch that ended before txid (at span.last, when
 *            span.next_epoch began: a failover): the write was never
 *            archived, and the log's txid is another transaction.
 *   NEWER    an epoch after `current`: written after a promotion this log
 *            has not seen (yet).
 *   UNKNOWN  an older epoch h does not list or whose end it does not know,
 *            or txid before the epoch's start: not of this history, as far
 *            as it can tell.
 * span: the epoch's txids here (first 0: unknown; last UINT64_MAX: open)
 * and the epoch that followed it (next_epoch, when last is known). */
typedef enum sl_write_place { SL_WRITE_HELD, SL_WRITE_LOST, SL_WRITE_NEWER, SL_WRITE_UNKNOWN } sl_write_place;
typedef struct sl_epoch_span {
  uint64_t first, last, next_epoch;
} sl_epoch_span;
sl_write_place sl_history_place(const sl_history *h, uint64_t current, uint64_t epoch, uint64_t txid,
                                sl_epoch_span *span);

typedef enum sl_lineage_verdict {
  SL_LINEAGE_EQUAL,
  SL_LINEAGE_EXTENDS,
  SL_LINEAGE_BEHIND,
  SL_LINEAGE_DIVERGED,
} sl_lineage_verdict;

/* The receiver's checksum through txid: 0, or SL_ENOTFOUND when its log no
 * longer (or not yet) holds that point. */
typedef int (*sl_checksum_fn)(void *arg, uint64_t txid, uint64_t *cs);

typedef struct sl_lineage_result {
  sl_lineage_verdict verdict;
  uint64_t fork;        /* diverged: the last txid known to be shared ... */
  uint64_t fork_max;    /* ... and the last one that may be: fork_max+1..S
                           are the shipper's alone */
  bool unverified;      /* behind: cs(S) could not be checked (pruned) */
} sl_lineage_result;

/* The rules above, as a pure function of both histories and positions.
 * cs_r answers for the receiver's log; s_cs is the shipper's cs(S). */
void sl_lineage_judge(const sl_history *rh, uint64_t r_last, sl_checksum_fn cs_r, void *arg,
                      const sl_history *sh, uint64_t s_last, uint64_t s_cs, sl_lineage_result *out);

const char *sl_lineage_verdict_name(sl_lineage_verdict v);

/* ORIGIN of a log that continues a history from its middle (a store
 * restored from a snapshot and an archive, or loaded from a dump): its
 * lineage at txid in LOGDIR -- the history cut there, the epoch txid was
 * committed in, cs(txid) -- SL_ENOTFOUND as sl_log_checksum_at ... */
int sl_log_lineage_at(const char *logdir, uint64_t txid, sl_history *h, uint64_t *epoch, uint64_t *cs);
/* Whether LOGDIR's checksums are those of its history: false for a log
 * that begins past txid 1 with checksum 0 -- one given no ORIGIN (a store
 * loaded from a full dump that did not carry its lineage), whose values
 * are then relative to its own start and say nothing when compared with
 * another log's. False too when the log cannot be listed. */
bool sl_log_lineage_known(const char *logdir);
/* ... and given to a new log (one segment, no frame yet; no writer has it
 * open): its segment header gets epoch and cs(first txid - 1), LOGDIR/history
 * h (entries up to the first txid; NULL or empty: none). SL_EINVAL when
 * the log holds frames or more than one segment. */
int sl_log_set_origin(const char *logdir, uint64_t epoch, uint64_t prev_checksum, const sl_history *h);

/* ---- failover operations on logs and stores (store/failover.c) -------------------
 * What promote (receiver/failover.h), `shiplog rewind` and `shiplog log
 * --diverged` do to a log or a store; nothing here knows of streams. */
struct sl_frame;

/* A copy of log directory FROM (segments, durable mark, history) as TO
 * (created; must not hold them): the same bytes, so the same checksums.
 * Each file is fsynced (sl_fsync), then TO. Errors -errno, logged naming
 * both files; those of sl_log_list and sl_history_load. */
int sl_log_copy(const char *from, const char *to);

/* The fork of log MINE (a store's) and log THEIRS (e.g. a stream's archive)
 * compared frame by frame (rolling checksums) over the txids both hold:
 * *fork = the last txid both share, *my_last = MINE's durable txid. So
 * fork+1..*my_last are MINE's alone (none when fork >= *my_last).
 * SL_ENOTFOUND when either has no segment; SL_EINVAL (logged) when they
 * differ already where the later of the two begins; those of the readers. */
int sl_log_find_fork(const char *mine, const char *theirs, uint64_t *fork, uint64_t *my_last);

/* REWIND (sl_store_rewind): cut store DIR's log after txid N so that it can
 * follow a new primary that shares txids 1..N with it.
 *   1. DIR must be unused (sl_store_lock_unused, held throughout); the log
 *      is opened once for recovery (what a killed primary appended counts
 *      as its own) and must begin at txid 1 (the state is rebuilt from it);
 *   2. txids N+1..L (L its durable txid) are written, one keep() call per
 *      transaction, to DIR/rewound/txids-A-B.jsonl (A = N+1, B = L; through
 *      a .tmp, fsynced, renamed): nothing cut is lost;
 *   3. the log is cut (sl_log_truncate: the history forgets later epochs);
 *   4. LMDB is removed and rebuilt from the log by an sl_store_open.
 * Errors (each logged with DIR and txids): SL_ELOCKED, SL_EINVAL (the log
 * begins past txid 1, or ends before N; keep NULL with something to cut),
 * those of the log, the keep file and sl_store_open. */
typedef struct sl_rewind_options {
  /* Writes one cut transaction to out (shiplog: `shiplog log --json`'s line,
   * interchange's sl_txn_print); 0 or a negative code, which stops the rewind
   * before anything is cut. */
  int (*keep)(void *arg, const struct sl_frame *f, FILE *out);
  void *keep_arg;
} sl_rewind_options;

typedef struct sl_rewind_result {
  uint64_t last_txid;   /* the log's durable txid before the cut (L) */
  char kept[4096];      /* the file of txids N+1..L; "" when nothing was cut */
} sl_rewind_result;

int sl_store_rewind(const char *dir, uint64_t to_txid, const sl_rewind_options *o, sl_rewind_result *out);

#endif
