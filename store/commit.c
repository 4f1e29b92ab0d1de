/*
 * The commit path of a store (store.c opens it): write transactions on
 * LMDB (also replay's, store.c), the space LMDB grows into, group commit,
 * sl_tx_begin/commit/abort and sl_store_apply*. graph.c holds the ops a
 * transaction applies and records; checkpoint.c the checkpoint a committer
 * past the mark asks the checkpoint thread for.
 *
 * GROUP COMMIT (the commit path). A small commit used to hold the writer
 * lock for its ops, its write() to the log and its LMDB commit, which
 * bounded a store to about 28k tx/s however many shared an fdatasync. Now
 * a commit leaves its packed record pending in the open LMDB transaction
 * (st->tx.w) and the next sl_tx_begin continues in that transaction, so the
 * lock is held only for the ops and the packing. LMDB's writer mutex
 * belongs to the thread that began the transaction, so that committer (the
 * group's opener) alone ends it: once the previous group's fdatasync is
 * done it takes the writer lock, appends every pending record with one
 * sl_log_append_many, commits LMDB (the records' frames are in the log
 * first, as before; a large group has the log's helper thread start the
 * fdatasync meanwhile: SYNC AHEAD, log.c) and leads or waits for the
 * fdatasync; the group's other committers wait for done + durable.
 * WAKE-UPS: a flush wakes no one (its committers wait for durable as
 * well); the end of a group's sync wakes that group's committers and the
 * next opener (gc_cv), not the next group's members, which used to wake
 * and sleep again. The other committers wait on a futex word of their group's
 * parity (gc_member_seq), not on a condition variable: woken, each finds
 * its outcome in its own waiter (done, an atomic) and returns without
 * gc_mu, where a broadcast had all of them queue to take gc_mu again (with
 * 64 Bolt clients, half of serve's futex calls).
 * COMMIT DELAY: with four Bolt clients, groups used to alternate halves
 * of them (2 transactions per fdatasync): when a sync ends, the committers
 * it releases are still answering their clients and running their next
 * statements while the next opener, whose group gathered during the sync,
 * flushes at once. So the leader notes, when its sync ends, how many
 * records it synced plus how many are pending (gc_join_target: the
 * committers of the last two groups), and the next opener waits, for at
 * most GC_JOIN_WAIT_US, until its group holds that many (join_wait, on
 * gc_join_cv with wlock released, signalled by the commit that completes
 * it). One client never waits: its group is the one just synced. A wait
 * in vain (slow or departed clients) turns the wait off for the next
 * GC_JOIN_SKIP groups. PostgreSQL's commit_delay waits unconditionally.
 * ROLLBACK: a transaction that fails or aborts after writing cannot abort its part of
 * the shared LMDB transaction: it sets gc_rollback, no
 * transaction begins until the opener's flush has aborted it and
 * re-applied the pending records (sl__apply_record), and the flush goes on.
 * Asserted in every build (SL_ASSERT): the pending records' txids are
 * contiguous and continue the log, and a committer is released with
 * success only once its txid is durable. Callers that need their own LMDB
 * transaction (sl_store_apply_batch, a begin past GROUP_MAX_BYTES) wait
 * for the flush.
 *
 * LOCKS: st->wlock is the writer lock: held from sl_tx_begin to the end of
 * commit/abort, by sl_store_apply* and by a group's flush. It guards
 * st->meta, the reusable tx and its open group, the pending records and
 * the apply arena. st->gc_mu guards the committers' outcomes and the
 * syncing flag (order: wlock before gc_mu). st->ckpt_lock keeps checkpoints one at a
 * time. Views need no lock (LMDB read transactions, MDB_NOTLS so that a
 * view may move between threads). LMDB's writer mutex is held by a group's
 * opener from its sl_tx_begin to its flush, and the flush takes wlock:
 * not a cycle, since the mutex is only asked for under wlock when no
 * group is open (sl__wbegin), and is given back under wlock (ThreadSanitizer
 * reports this hand-off as a lock-order inversion).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "schema_int.h"

#define COMMIT_AHEAD_MAX_US (60ull * 1000000)
#define TX_OPS_KEEP (1u << 20) /* packed ops / pending records kept for the next */
#define PEND_KEEP (4u << 20)   /* transactions; larger buffers are freed */

/* ---- write transactions on LMDB ------------------------------------------------- */
int sl__wbegin(sl_store *st, sl__wctx *w) {
  memset(&w->cur, 0, sizeof w->cur);
  w->st = st;
  w->meta = st->meta;
  w->err[0] = 0;
  int rc = mdb_txn_begin(st->env, NULL, 0, &w->txn);
  if (rc) {
    w->txn = NULL;
    sl_diag_error("%s: LMDB write transaction: %s", st->dir, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  w->cur.txn = w->txn;
  return 0;
}

void sl__wabort(sl__wctx *w) {
  sl__cursors_close(&w->cur);
  sl__schema_free(w);
  if (w->txn) mdb_txn_abort(w->txn);
  w->txn = NULL;
}

/* Put the meta into the transaction (before anything reaches the log, so
 * that only the LMDB commit itself can fail after an append). */
static int wmeta(sl__wctx *w) {
  return sl__meta_write(w->txn, w->st->dbi[SL__DB_META], &w->meta, &w->st->meta);
}

/* Commit (after wmeta). On failure the transaction is gone too. */
static int wfinish(sl__wctx *w) {
  sl_store *st = w->st;
  sl__cursors_close(&w->cur);
  sl__schema_free(w);
  int rc = mdb_txn_commit(w->txn);
  w->txn = NULL;
  if (rc) {
    sl_diag_error("%s: LMDB commit of txid %" PRIu64 ": %s", st->dir, w->meta.applied_txid, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  st->meta = w->meta;
  return 0;
}

int sl__wcommit(sl__wctx *w) {
  int rc = wmeta(w);
  if (rc) {
    sl__wabort(w);
    return rc;
  }
  return wfinish(w);
}
/* ---- the commit path ---------------------------------------------------------------------- */
/* LMDB writes a commit's pages after the group's frames went into the log
 * (GROUP COMMIT): a full disk there would leave LMDB behind the log and
 * fail the store until it is reopened. So before each write transaction
 * the pages in use plus RESERVE_BYTES / 2 must be allocated; when they are
 * not, fallocate() up to RESERVE_BYTES past them (once per few MiB of
 * growth). A full disk then fails the transaction with ENOSPC before
 * anything is written. A single transaction that adds more than
 * RESERVE_BYTES / 2 of new pages may still meet it at LMDB's commit.
 *
 * SMALL FOLIOS. Unless the store is opened SL_OPEN_BULK, the range just
 * reserved is then read into the page cache (POSIX_FADV_WILLNEED: unwritten
 * extents read as zeros, without I/O) in 4 KiB folios. Left to LMDB, a
 * commit's run of new pages is cached as one large folio (ext4 from kernel
 * 6.16 sizes a new folio by the write that creates it, and LMDB writes a run
 * with one writev), and every later pwrite of one page of it walks the
 * blocks of the whole folio: under small Bolt transactions that was 6-15%
 * of the CPU of a primary and of its standby (ext4_block_write_begin),
 * 2-3% with this (bench/README, "Small folios"). A bulk load's pages are
 * written once, in long runs, which large folios serve best.
 * Caller holds wlock. */
#define RESERVE_BYTES (8u << 20)
static int reserve_space(sl_store *st) {
  MDB_envinfo info;
  MDB_stat ms;
  int fd;
  if (mdb_env_info(st->env, &info) || mdb_env_stat(st->env, &ms) || mdb_env_get_fd(st->env, &fd)) return 0;
  uint64_t used = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
  if (sl__pin_outgrown(st)) st->bytes_since_ckpt = SL_MAX(st->bytes_since_ckpt, st->ckpt_every); /* due */
  if (used + RESERVE_BYTES / 2 <= st->reserved) return 0;
  uint64_t want = SL_MIN(used + RESERVE_BYTES, (uint64_t)info.me_mapsize);
  int rc = fallocate(fd, 0, 0, (off_t)want) ? -errno : 0;
  if (rc == -EOPNOTSUPP) rc = 0; /* a file system without fallocate: nothing to be done */
  if (rc) {
    sl_diag_error("%s/data.mdb: cannot allocate %" PRIu64 " bytes for LMDB to grow into: %s", st->dir, want,
                 sl_strerror(rc));
    return rc;
  }
  if (!(st->flags & SL_OPEN_BULK) && want > used) /* a hint: its failure changes nothing */
    (void)posix_fadvise(fd, (off_t)used, (off_t)(want - used), POSIX_FADV_WILLNEED);
  st->reserved = want;
  return 0;
}

/* ---- group commit ---------------------------------------------------------------------- */
/* A committer whose record is pending: on its stack, linked under wlock. */
typedef struct sl__waiter {
  struct sl__waiter *next;
  uint64_t txid;
  int rc;      /* under gc_mu: the outcome of the flush that took the record */
  _Atomic bool done; /* set under gc_mu, after rc and logged: the record is in
                        the log and LMDB, or failed (rc) */
  bool logged; /* under gc_mu: the record reached the log */
  bool opener; /* its thread began the group's LMDB transaction */
  uint64_t group; /* st->gc_flushes when it joined: its group's number */
} sl__waiter;

/* Wake the committers of groups of this parity (caller holds gc_mu). */
static void wake_members(sl_store *st, uint64_t group) {
  _Atomic uint32_t *word = &st->gc_member_seq[group & 1];
  atomic_fetch_add_explicit(word, 1, memory_order_release);
  (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Wait until a wake_members of this parity after `seen` was read (or a
 * spurious return); the caller checks its condition again. */
static void wait_members(sl_store *st, uint64_t group, uint32_t seen) {
  (void)syscall(SYS_futex, (uint32_t *)&st->gc_member_seq[group & 1], FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

/* COMMIT DELAY: the opener's wait for the committers the last sync
 * released (caller holds wlock; returns holding it). */
#define GC_JOIN_WAIT_US 200
#define GC_JOIN_SKIP 8
static void join_wait(sl_store *st, size_t target) {
  if (st->pend_n >= target) return;
  if (st->gc_join_skip) {
    st->gc_join_skip--;
    return;
  }
  struct timespec until;
  sl_deadline_after_ns(&until, CLOCK_MONOTONIC, GC_JOIN_WAIT_US * 1000ull);
  st->gc_join_want = target;
  int rc = 0;
  while (st->pend_n < target && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&st->gc_join_cv, &st->wlock, &until);
  st->gc_join_want = 0;
  if (st->pend_n < target) st->gc_join_skip = GC_JOIN_SKIP;
}

/* Wake every committer: after a failure, or a sync no opener led. */
static void wake_all(sl_store *st) {
  pthread_cond_broadcast(&st->gc_cv);
  wake_members(st, 0);
  wake_members(st, 1);
}

/* Pending records past which the next sl_tx_begin flushes first: bounds
 * the LMDB transaction (and what reserve_space must cover). */
#define GROUP_MAX_BYTES (1u << 20)

/* Hand a flush's outcome to the pending committers (the first `logged` of
 * which reached the log) and forget the records (caller holds wlock). */
static void waiters_done(sl_store *st, int rc, size_t logged) {
  pthread_mutex_lock(&st->gc_mu);
  for (sl__waiter *w = st->waiters, *next; w; w = next) {
    next = w->next; /* w may return once done */
    w->rc = rc;
    w->logged = logged > 0;
    if (logged) logged--;
    atomic_store_explicit(&w->done, true, memory_order_release);
  }
  st->gc_flushes++;
  /* A committer taken without error waits for durable too: the flush's
   * leader wakes it after the fdatasync. Only a failure, or a thread in
   * group_drain, needs waking now (spares each committer a wake-up). */
  if (rc) wake_all(st);
  else if (st->gc_draining) pthread_cond_broadcast(&st->gc_cv);
  pthread_mutex_unlock(&st->gc_mu);
  st->waiters = NULL;
  st->waiters_tail = &st->waiters;
  st->pend_n = st->pend_len = 0;
  atomic_store_explicit(&st->gc_pend_n, 0, memory_order_relaxed);
  if (st->pend_cap > PEND_KEEP) { /* after a large transaction: give it back */
    free(st->pend);
    st->pend = NULL;
    st->pend_cap = 0;
  }
}

/* Undo the open transaction's writes but keep the pending records before
 * it: LMDB cannot abort part of a transaction, so abort it all and apply
 * the pending records again (caller holds wlock). */
static void tx_rollback(sl_tx *tx) {
  sl_store *st = tx->st;
  int rc = 0;
  sl__wabort(&tx->w);
  if (st->pend_n == 0) return;
  rc = sl__wbegin(st, &tx->w);
  for (size_t i = 0; !rc && i < st->pend_n; i++) {
    rc = sl__apply_record(&tx->w, &st->apply_arena, st->pend + st->pend_off[i], st->pend_lens[i]);
    sl_arena_reset(&st->apply_arena);
  }
  if (rc) {
    sl_diag_error("%s: re-applying %zu pending transactions after an abort: %s", st->dir, st->pend_n,
                 sl_strerror(rc));
    sl__wabort(&tx->w);
    st->failed = rc;
    waiters_done(st, rc, 0);
  }
}

/* Pending record bytes from which a flush has the log's helper thread sync
 * while LMDB commits (SYNC AHEAD, log.c). Below it the LMDB commit of a few
 * small transactions is shorter than the helper's wake-up: the committer
 * syncs after it, as before (bench/README, "Sync ahead and hand-packed
 * ops"). */
#define AHEAD_MIN_BYTES (32u << 10)

/* Write the pending records to the log (one append) and commit the LMDB
 * transaction holding them: the order of a single commit, for the group.
 * Caller holds wlock, between transactions. */
static int flush_locked(sl_store *st) {
  sl__wctx *w = &st->tx.w;
  size_t appended = 0;
  int rc;
  if (st->gc_rollback) {
    st->gc_rollback = false;
    tx_rollback(&st->tx);
  }
  if (st->pend_n == 0) return 0;
  for (size_t i = 0; i < st->pend_n; i++) st->pend_ptrs[i] = st->pend + st->pend_off[i];
  if (!(rc = st->failed) && !(rc = wmeta(w))) {
    /* The pending records continue the log (sl_tx_commit checked them contiguous). */
    SL_ASSERT(st->waiters && st->waiters->txid == sl_log_next_txid(st->log),
              "%s: pending txids from %" PRIu64 ", the log's next is %" PRIu64, st->dir,
              st->waiters ? st->waiters->txid : 0, sl_log_next_txid(st->log));
    rc = sl_log_append_many(st->log, st->pend_ptrs, st->pend_lens, st->pend_n, &appended);
  }
  /* SYNC AHEAD: for a large group the log's fdatasync runs while LMDB
   * commits (the frames are written first, so the order is kept);
   * group_wait waits for it. */
  if (!rc && st->pend_len >= AHEAD_MIN_BYTES) sl_log_sync_ahead(st->log);
  if (!rc && (rc = wfinish(w))) appended = st->pend_n;
  if (rc) {
    if (appended) {
      st->failed = rc;
      sl_diag_error("%s: txids up to %" PRIu64 " are in the log but not in LMDB: reopen the store to replay them",
                   st->dir, w->meta.applied_txid - (st->pend_n - appended));
    }
    sl__wabort(w);
  }
  waiters_done(st, rc, rc ? appended : st->pend_n);
  return rc;
}

/* Room for one more pending record of len bytes. */
static int pend_reserve(sl_store *st, size_t len) {
  if (st->pend_n == st->pend_max) {
    size_t max = st->pend_max ? 2 * st->pend_max : 64;
    size_t *off = realloc(st->pend_off, max * sizeof *off);
    if (off) st->pend_off = off;
    size_t *lens = realloc(st->pend_lens, max * sizeof *lens);
    if (lens) st->pend_lens = lens;
    const uint8_t **ptrs = realloc(st->pend_ptrs, max * sizeof *ptrs);
    if (ptrs) st->pend_ptrs = ptrs;
    if (!off || !lens || !ptrs) return -ENOMEM;
    st->pend_max = max;
  }
  if (st->pend_len + len > st->pend_cap) {
    size_t cap = SL_MAX(st->pend_len + len, st->pend_cap * 2);
    uint8_t *p = realloc(st->pend, cap);
    if (!p) return -ENOMEM;
    st->pend = p;
    st->pend_cap = cap;
  }
  return 0;
}

/* Wait until the committer's record is durable. LMDB's write lock belongs
 * to the thread that began the write transaction, so only that committer
 * (the group's opener) commits it: it waits until the previous group's
 * fdatasync is done, flushes every pending record (one append, one LMDB
 * commit: records committed meanwhile joined the group) and leads the
 * fdatasync. A committer whose record is in the log but not yet durable
 * when no one syncs (the syncing opener failed) leads a sync itself. */
static bool released(sl_store *st, sl__waiter *me) {
  return atomic_load_explicit(&me->done, memory_order_acquire) &&
         (me->rc || me->txid <= sl_log_durable_txid(st->log));
}

static int group_wait(sl_store *st, sl__waiter *me) {
  pthread_mutex_lock(&st->gc_mu);
  while (!me->rc && !released(st, me)) {
    if (st->gc_syncing || (!me->done && !me->opener)) {
      /* WAKE-UPS: an opener waits to lead, the others for their own
       * group's sync, so a sync wakes its group and the next opener and
       * not the next group's members. */
      if (me->opener && !me->done) {
        pthread_cond_wait(&st->gc_cv, &st->gc_mu);
        continue;
      }
      uint32_t seen = atomic_load_explicit(&st->gc_member_seq[me->group & 1], memory_order_relaxed);
      pthread_mutex_unlock(&st->gc_mu);
      wait_members(st, me->group, seen);
      if (released(st, me)) goto out; /* without gc_mu: WAKE-UPS */
      pthread_mutex_lock(&st->gc_mu);
      continue;
    }
    st->gc_syncing = true;
    size_t join_target = st->gc_join_target, flushed = 0;
    pthread_mutex_unlock(&st->gc_mu);
    bool flushes = !me->done;
    if (flushes) {
      pthread_mutex_lock(&st->wlock);
      join_wait(st, join_target);
      flushed = st->pend_n;
      (void)flush_locked(st); /* its outcome reaches every committer it took, this one included */
      pthread_mutex_unlock(&st->wlock);
    }
    int rc = sl_log_wait_durable(st->log, sl_log_next_txid(st->log) - 1);
    pthread_mutex_lock(&st->gc_mu);
    if (rc && !me->rc) me->rc = rc;
    st->gc_syncing = false;
    if (flushes && !rc) {
      /* COMMIT DELAY: the committers woken now, and those that gathered meanwhile */
      st->gc_join_target = flushed + atomic_load_explicit(&st->gc_pend_n, memory_order_relaxed);
      pthread_cond_broadcast(&st->gc_cv);
      wake_members(st, me->group);
    } else {
      wake_all(st);
    }
  }
  pthread_mutex_unlock(&st->gc_mu);
out:;
  /* me->rc, done and logged are final once done is seen (waiters_done). */
  int rc = me->rc;
  /* A committer is released with 0 only once its record is logged and durable. */
  SL_ASSERT(rc || (me->done && me->logged && me->txid <= sl_log_durable_txid(st->log)),
            "%s: committer of txid %" PRIu64 " released (done %d, logged %d) at durable %" PRIu64, st->dir, me->txid,
            (int)me->done, me->logged, sl_log_durable_txid(st->log));
  return rc;
}

/* Wait, holding wlock, until the open group is flushed by its opener
 * (another thread: LMDB lets no other end that transaction): for `all`,
 * until no group is open; else until no group is too big or poisoned. */
static void group_drain(sl_store *st, bool all) {
  while (st->pend_n && (all || st->pend_len >= GROUP_MAX_BYTES || st->gc_rollback)) {
    pthread_mutex_lock(&st->gc_mu);
    uint64_t gen = st->gc_flushes;
    pthread_mutex_unlock(&st->wlock);
    st->gc_draining++;
    while (st->gc_flushes == gen) pthread_cond_wait(&st->gc_cv, &st->gc_mu);
    st->gc_draining--;
    pthread_mutex_unlock(&st->gc_mu);
    pthread_mutex_lock(&st->wlock);
  }
}

int sl_tx_begin(sl_store *st, sl_tx **out) {
  *out = NULL;
  if (st->rdonly || st->no_log) return SL_EREADONLY;
  sl__wlock_for_begin(st);
  group_drain(st, false);
  if (st->failed) {
    int rc = st->failed;
    pthread_mutex_unlock(&st->wlock);
    return rc;
  }
  sl_tx *tx = &st->tx;
  tx->st = st;
  tx->err = 0;
  tx->has_commit_time = false;
  tx->nops = tx->ops_len = 0;
  tx->ops_kind = 0;
  if (tx->ops_cap > TX_OPS_KEEP) { /* after a large transaction: give it back */
    free(tx->ops);
    tx->ops = NULL;
    tx->ops_cap = 0;
  }
  tx->view_open = false;
  sl_arena_reset(&tx->arena);
  int rc = reserve_space(st);
  if (!rc && !tx->w.txn) rc = sl__wbegin(st, &tx->w); /* else: the group's, holding the pending records */
  tx->w.err[0] = 0;
  tx->w.track = true; /* constraints are checked at commit (schema.c) */
  tx->w.ntouched = 0;
  if (rc) {
    pthread_mutex_unlock(&st->wlock);
    return rc;
  }
  *out = tx;
  return 0;
}

int sl_tx_set_commit_time(sl_tx *tx, uint64_t us) {
  if (tx->err) return tx->err;
  uint64_t now = sl_now_us();
  if (us < tx->w.meta.last_commit_us || us > now + COMMIT_AHEAD_MAX_US) {
    snprintf(tx->w.err, sizeof tx->w.err, "commit time %" PRIu64 " is %s", us,
             us < tx->w.meta.last_commit_us ? "before the previous commit" : "more than 60 s in the future");
    return tx->err = SL_ETIME;
  }
  tx->has_commit_time = true;
  tx->commit_us = us;
  return 0;
}

sl_view *sl_tx_view(sl_tx *tx) {
  sl_view *v = &tx->view;
  if (!tx->view_open) {
    v->st = tx->st;
    v->txn = tx->w.txn;
    v->owned_by_tx = true;
    v->tx_meta = &tx->w.meta;
    memset(&v->cur, 0, sizeof v->cur);
    v->cur.txn = tx->w.txn;
    tx->view_open = true;
  }
  return v;
}

static void tx_end(sl_tx *tx) {
  if (tx->view_open) sl__cursors_close(&tx->view.cur);
  tx->view_open = false;
  /* A transaction that recorded no op and failed none wrote nothing. Only
   * the group's opener may abort its LMDB transaction: it rolls back at
   * its flush, and until then no transaction begins. */
  if (tx->st->pend_n == 0) sl__wabort(&tx->w);
  else if (tx->nops || tx->err) tx->st->gc_rollback = true;
  pthread_mutex_unlock(&tx->st->wlock);
}

void sl_tx_abort(sl_tx *tx) {
  if (tx) tx_end(tx);
}

int sl_tx_check_constraints(sl_tx *tx) {
  int rc = tx->err;
  if (!rc && (rc = sl__schema_check(&tx->w))) tx->err = rc;
  return rc;
}

int sl_tx_commit(sl_tx *tx, uint64_t *txid_out) {
  sl_store *st = tx->st;
  int rc = tx->err;
  if (txid_out) *txid_out = 0;
  if (!rc && tx->nops && (rc = sl__schema_check(&tx->w)) != 0) { /* SL_ECONSTRAINT: the commit is refused */
    tx->err = rc;
    sl_diag_error("%s: commit refused: %s", st->dir, tx->w.err[0] ? tx->w.err : sl_strerror(rc));
  }
  if (rc || tx->nops == 0) {
    tx_end(tx);
    return rc;
  }
  if (tx->view_open) sl__cursors_close(&tx->view.cur);
  tx->view_open = false;
  sl__meta *m = &tx->w.meta;
  uint64_t txid = m->applied_txid + 1;
  Shiplog__Transaction rec = SHIPLOG__TRANSACTION__INIT;
  rec.txid = txid;
  rec.commit_time_us = tx->has_commit_time ? tx->commit_us : SL_MAX(sl_now_us(), m->last_commit_us);
  rec.epoch = sl_log_epoch(st->log); /* LINEAGE: the epoch this primary writes in */
  rec.has_epoch = rec.epoch != 0;
  /* Fields 1-3, then the ops packed as they were recorded (graph.c,
   * record()): the encoding protobuf-c gives the whole message. */
  size_t head = shiplog__transaction__get_packed_size(&rec), len = head + tx->ops_len;
  if (len > SL_TXN_MAX) {
    snprintf(tx->w.err, sizeof tx->w.err, "transaction too large: %zu bytes, the limit is %u", len, SL_TXN_MAX);
    sl_diag_error("%s: a transaction of %zu ops is %zu bytes, more than the %u a log frame may carry to a receiver; "
                 "nothing was logged", st->dir, tx->nops, len, SL_TXN_MAX);
    tx->err = rc = SL_ETOOBIG;
    goto abort;
  }
  if ((rc = pend_reserve(st, len))) goto abort;
  shiplog__transaction__pack(&rec, st->pend + st->pend_len);
  memcpy(st->pend + st->pend_len + head, tx->ops, tx->ops_len);
  st->pend_off[st->pend_n] = st->pend_len;
  st->pend_lens[st->pend_n++] = len;
  st->pend_len += len;
  atomic_store_explicit(&st->gc_pend_n, st->pend_n, memory_order_relaxed);
  if (st->gc_join_want && st->pend_n >= st->gc_join_want) pthread_cond_signal(&st->gc_join_cv); /* COMMIT DELAY */
  m->applied_txid = txid;
  m->last_commit_us = rec.commit_time_us;
  /* The record waits in the open LMDB transaction for its group's flush. */
  sl__waiter me = {.txid = txid, .opener = st->pend_n == 1, .group = st->gc_flushes};
  *st->waiters_tail = &me;
  st->waiters_tail = &me.next;
  /* One waiter per pending record, their txids contiguous from the first. */
  SL_ASSERT(st->waiters->txid + (st->pend_n - 1) == txid, "%s: pending txids from %" PRIu64 ", %zu records, then %" PRIu64,
            st->dir, st->waiters->txid, st->pend_n, txid);
  st->bytes_since_ckpt += len + SL_FRAME_HEADER_SIZE;
  bool due = st->bytes_since_ckpt >= st->ckpt_every;
  uint64_t pin_seq = st->ckpt_pin_seq;
  pthread_mutex_unlock(&st->wlock);
  rc = group_wait(st, &me);
  if (txid_out && me.logged) *txid_out = txid; /* in the log, durable or not */
  if (rc) return rc;
  sl__checkpoint_if_due(st, due, pin_seq);
  return 0;
abort:
  tx_end(tx);
  return rc;
}

int sl_store_apply_batch(sl_store *st, const uint8_t *const *payloads, const size_t *lens, size_t n) {
  sl__wctx w = {0};
  size_t appended = 0, bytes = 0;
  int rc;
  if (st->rdonly) return SL_EREADONLY;
  if (n == 0) return 0;
  sl__wlock_for_begin(st);
  group_drain(st, true); /* the pending records go first */
  if ((rc = st->failed) || (rc = reserve_space(st)) || (rc = sl__wbegin(st, &w))) goto out;
  for (size_t i = 0; i < n; i++) {
    rc = sl__apply_record(&w, &st->apply_arena, payloads[i], lens[i]);
    sl_arena_reset(&st->apply_arena);
    if (rc) goto out;
    bytes += lens[i] + SL_FRAME_HEADER_SIZE;
  }
  /* Every record applies: only now do they reach the log. */
  if ((rc = wmeta(&w))) goto out;
  for (; st->log && appended < n; appended++)
    if ((rc = sl_log_append(st->log, payloads[appended], lens[appended]))) goto out;
  if ((rc = wfinish(&w))) goto out;
  st->bytes_since_ckpt += bytes;
  bool due = st->bytes_since_ckpt >= st->ckpt_every;
  uint64_t last = st->meta.applied_txid, pin_seq = st->ckpt_pin_seq;
  pthread_mutex_unlock(&st->wlock);
  if (st->log && !(st->flags & SL_OPEN_BULK) && (rc = sl_log_wait_durable(st->log, last))) return rc;
  sl__checkpoint_if_due(st, due, pin_seq);
  return 0;
out:
  if (appended) {
    st->failed = rc;
    sl_diag_error("%s: records up to txid %" PRIu64 " are in the log but not in LMDB: reopen the store to replay",
                 st->dir, w.meta.applied_txid - (n - appended));
  }
  sl__wabort(&w);
  pthread_mutex_unlock(&st->wlock);
  return rc;
}

int sl_store_apply(sl_store *st, const uint8_t *payload, size_t len) {
  return sl_store_apply_batch(st, &payload, &len, 1);
}
