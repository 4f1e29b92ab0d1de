/*
 * Checkpoints of a store (store.c opens it, commit.c commits into it): the
 * checkpoint's LMDB image and the pin that keeps it on disk, DIR/checkpoint,
 * the restore of LMDB to its checkpoint after a power loss, the check of
 * data.mdb's size before LMDB maps it, sl_store_checkpoint, sl_store_space
 * and sl_store_compact.
 *
 * CHECKPOINTS: mdb_env_sync, then DIR/checkpoint := txid, then the log may
 * drop segments at or below it. Taken every min(segment size,
 * SL_CHECKPOINT_BYTES) of log and when the pin has outgrown its budget
 * (by the checkpoint thread, asked by the committer that crosses the mark:
 * CHECKPOINT THREAD), at open, during a long replay, and at close, before
 * writer.lock says "closed".
 *   A store with a log keeps the checkpoint's LMDB image intact on disk
 * until the next checkpoint, so that a power loss never needs the log
 * before it. Under the writer lock a checkpoint begins a read transaction
 * (the pin) on the newest snapshot and copies that snapshot's meta page
 * (roots of the trees, last page, LMDB txnid) out of data.mdb; the sync
 * then makes every page of the snapshot durable, and, once the log is
 * durable through the snapshot's applied txid (a restored LMDB must never be
 * ahead of the log), DIR/checkpoint records that txid with the meta page
 * (CRC'd, written atomically). LMDB is
 * copy-on-write and reuses a freed page only once no reader's snapshot is
 * older than the transaction that freed it (mdb_find_oldest), so while the
 * pin lives no page of the snapshot is written again. The previous pin is
 * released only once the new checkpoint file is on disk (after a failed
 * write, both stay: the file may be either).
 * After a power loss the meta page goes back into data.mdb: LMDB then sees
 * exactly the checkpoint (its free-page list and last page make every page
 * written since free again), the reboot emptied lock.mdb's reader table,
 * and the log after the checkpoint is replayed. The cost: pages freed after
 * a checkpoint wait for the next one, so each commit's copied pages are new
 * pages; a checkpoint is therefore also due once the pages freed since the
 * pin reach a quarter of the live pages (at least 8 MiB; pin_outgrown),
 * which keeps data.mdb within 1.5x its live pages + 16 MiB, plus what one
 * transaction frees past each mark (a 1M-node load's 50,000-op
 * transactions: 1.56-1.63x; bench/README).
 *
 * CHECKPOINT THREAD. LMDB's sync (an fdatasync of data.mdb) takes 10-70 ms
 * on a busy disk; a committer that ran it made every commit behind it
 * wait. So a writable
 * store has a thread of its own that takes the automatic checkpoints: a
 * committer past the mark only sets ckpt_wanted and signals it. The
 * thread pins under wlock, which a writer that begins its next
 * transaction as soon as it has committed would take first, again and
 * again: a bulk load kept the thread waiting for seconds, while the pages
 * it freed piled up (data.mdb reached 9x its live pages). So while the
 * thread waits for wlock, new write transactions wait for it
 * (ckpt_pin_pending, sl__wlock_for_begin); commits and group flushes do
 * not, so no acknowledgement waits for a checkpoint. The
 * thread runs the checkpoint above unchanged if it is still due (the
 * committers that saw the mark before its pin ask again after it): it
 * pins the newest snapshot S under the writer lock (a moment), syncs
 * (every page of S was written before the sync began, and while the pin
 * lives later commits write other pages), waits for the log through S's
 * txid, writes DIR/checkpoint, then releases the previous pin and prunes
 * the log. Commits go on throughout; while it is in flight two snapshots
 * are pinned, so the pages freed between them wait for its end. A
 * committer that crosses the mark again before that end waits for it
 * (backpressure: ckpt_pin_seq, ckpt_inflight_seq), so a disk slower than
 * the commits holds them back instead of letting data.mdb grow.
 * A power loss before DIR/checkpoint is renamed into place finds the
 * previous checkpoint, still pinned, whole; after it, S. One checkpoint at
 * a time (ckpt_lock): close, compact and sl_store_checkpoint wait for the
 * thread's; close and compact stop the thread first. A checkpoint file
 * that cannot be written is logged (naming the store and txid), the
 * previous pin stays, and the next mark asks again; a failed sync is final
 * (sync_failed). The pins are LMDB read transactions ended by whichever
 * thread takes the next checkpoint: the environment is opened MDB_NOTLS
 * (store.c).
 *
 * LOCKS: st->ckpt_lock keeps checkpoints one at a time; a checkpoint takes
 * the writer lock (commit.c, LOCKS) only to pin its snapshot. st->ckpt_mu
 * guards the thread's flags (never held with another lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

/* ---- the checkpoint's LMDB image ------------------------------------------------------ */
/* LMDB's meta page as liblmdb 0.9 lays it out (mdb.c, 64-bit): a 16-byte
 * page header (pgno 8, pad 2, flags 2, lower 2, upper 2), then MDB_meta:
 * magic 4, version 4, address 8, mapsize 8, dbs[2] (free pages, main) of 48
 * bytes each (the first's md_pad is the page size), last_pg 8, txnid 8.
 * LMDB reads both meta pages at open and takes the one with the larger
 * txnid; nothing else names the roots of its trees. */
_Static_assert(sizeof(size_t) == 8, "LMDB meta page layout of 64-bit builds");
#define META_BYTES 152
#define META_FLAGS_OFF 10
#define META_MAGIC_OFF 16
#define META_VERSION_OFF 20
#define META_PSIZE_OFF 40
#define META_LAST_PG_OFF 136
#define META_TXNID_OFF 144
#define MDB_META_MAGIC 0xBEEFC0DEu
#define MDB_P_META 0x08u
#define CKPT_META_TAG "lmdb-meta "

static uint64_t meta_u64(const uint8_t *m, size_t off) {
  uint64_t v;
  memcpy(&v, m + off, sizeof v); /* LMDB writes native byte order */
  return v;
}

static uint32_t meta_u32(const uint8_t *m, size_t off) {
  uint32_t v;
  memcpy(&v, m + off, sizeof v);
  return v;
}

static bool meta_valid(const uint8_t m[META_BYTES], unsigned psize) {
  uint16_t flags;
  memcpy(&flags, m + META_FLAGS_OFF, sizeof flags);
  return (flags & MDB_P_META) && meta_u32(m, META_MAGIC_OFF) == MDB_META_MAGIC && meta_u32(m, META_VERSION_OFF) == 1 &&
         meta_u32(m, META_PSIZE_OFF) == psize && psize >= 512 && psize <= 65536 && !(psize & (psize - 1));
}

/* Before LMDB maps data.mdb: a file shorter than the pages its newest meta
 * page says are in use (a truncated copy, a full disk during a copy) would
 * make a reader die with SIGBUS at the first page past its end, and a
 * writer (which extends the file) read zeros there as pages. Refused with
 * SL_ECORRUPT naming the file and both sizes. A file whose meta pages are
 * both invalid is left to LMDB (MDB_INVALID); a missing file is a new
 * store. */
int sl__data_file_check(const sl_store *st) {
  uint8_t m[2][META_BYTES];
  char p[4096];
  struct stat sb;
  int rc = sl_path_join(p, sizeof p, st->dir, "data.mdb");
  if (rc) return rc;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0; /* missing: a new store; unreadable: LMDB says why */
  if (fstat(fd, &sb)) {
    rc = -errno;
    sl_diag_error("%s: %s", p, strerror(errno));
    close(fd);
    return rc;
  }
  uint64_t size = (uint64_t)sb.st_size, need = 0, txnid = 0;
  unsigned psize = 4096;
  if (sl_pread_full(fd, m[0], META_BYTES, 0) == META_BYTES) {
    unsigned ps = meta_u32(m[0], META_PSIZE_OFF);
    if (meta_valid(m[0], ps)) psize = ps;
  }
  bool any = false;
  for (unsigned i = 0; i < 2; i++) {
    if (i && sl_pread_full(fd, m[1], META_BYTES, psize) != META_BYTES) continue;
    if (!meta_valid(m[i], psize) || (any && meta_u64(m[i], META_TXNID_OFF) < txnid)) continue;
    any = true;
    txnid = meta_u64(m[i], META_TXNID_OFF);
    need = (meta_u64(m[i], META_LAST_PG_OFF) + 1) * psize;
  }
  close(fd);
  need = SL_MAX(need, 2ull * psize); /* the two meta pages at least */
  if (size >= need) return 0;
  if (any)
    sl_diag_error("%s: the file holds %" PRIu64 " bytes, but its newest LMDB meta page (transaction %" PRIu64
                 ") says %" PRIu64 " bytes are in use (pages of %u bytes): the file was truncated",
                 p, size, txnid, need, psize);
  else
    sl_diag_error("%s: the file holds %" PRIu64 " bytes, less than LMDB's two meta pages (%" PRIu64
                 " bytes): the file was truncated", p, size, need);
  return SL_ECORRUPT;
}

#ifdef SL_FAULT_INJECTION
/* Tests tear LMDB as a power loss would: with $SL_TEST_LMDB_SYNCED = PATH,
 * PATH receives data.mdb's first `bytes` each time they are known synced,
 * so that the test can tell which pages a power loss may have torn. */
static void test_note_synced(const char *dir, uint64_t bytes) {
  const char *to = getenv("SL_TEST_LMDB_SYNCED");
  char p[4096], tmp[4096];
  if (!to || !*to || sl_path_join(p, sizeof p, dir, "data.mdb") ||
      snprintf(tmp, sizeof tmp, "%s.tmp", to) >= (int)sizeof tmp)
    return;
  int in = open(p, O_RDONLY | O_CLOEXEC), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  loff_t off = 0;
  while (in >= 0 && out >= 0 && (uint64_t)off < bytes && copy_file_range(in, &off, out, NULL, bytes - (uint64_t)off, 0) > 0) {
  }
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  /* Whole or not at all: another thread may lose power meanwhile. */
  if ((uint64_t)off == bytes) (void)rename(tmp, to);
}

void (*sl_test_checkpoint_step)(sl_store *st, enum sl_checkpoint_step step);
#define test_step(st, step) (sl_test_checkpoint_step ? sl_test_checkpoint_step(st, step) : (void)0)
#else
#define test_note_synced(dir, bytes) ((void)0)
#define test_step(st, step) ((void)0)
#endif

/* The page counts of the free-page tree's records keyed (by the LMDB
 * transaction that freed the pages) from `from` on: each record is an
 * MDB_IDL whose first word is its length. *last is the newest key seen. */
static int free_pages_from(MDB_txn *txn, uint64_t from, uint64_t *pages, uint64_t *last) {
  MDB_cursor *c;
  MDB_val k, d;
  size_t key = (size_t)from; /* LMDB's txnid_t, an MDB_INTEGERKEY */
  int rc = mdb_cursor_open(txn, 0 /* FREE_DBI */, &c);
  if (rc) return sl__mdb_err(rc);
  *pages = 0;
  k.mv_size = sizeof key;
  k.mv_data = &key;
  for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    size_t n = 0;
    if (d.mv_size >= sizeof n) memcpy(&n, d.mv_data, sizeof n);
    if (k.mv_size == sizeof key) memcpy(&key, k.mv_data, sizeof key);
    *pages += n;
    *last = key;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : sl__mdb_err(rc);
}

/* What a pin may cost before a checkpoint is due: a quarter of the live
 * pages, at least PIN_BUDGET_MIN. Once pages freed since the pin reach it,
 * the next checkpoint moves the pin and they are reused: data.mdb holds
 * the live pages, those freed in the last interval (being reused) and those
 * freed in this one: the live pages + 2x the budget at most, 1.5x (each
 * interval may overshoot by the frees of the transaction that passes the
 * mark: the check runs between transactions). The
 * budget is also how often the checkpoint comes: a small transaction
 * copies some 30 pages (a path in each tree it touches) and, pinned, none
 * is reused, so each is written back once; a sixteenth (as before) made a
 * store of 140 MB checkpoint every 62 Bolt writes, 46 ms of write-back each,
 * back to back, and the log's fdatasync and the committers waited behind
 * it (bench/README, "Where shiplog's commit tail comes from"). A budget
 * relative to data.mdb's size instead (before that) let each interval use
 * up the whole free list and then grow by a quarter: geometric growth. */
#define PIN_BUDGET_MIN (8u << 20)

/* Begin a read transaction on the newest snapshot (from now on LMDB reuses
 * none of its pages) and copy that snapshot's meta page out of data.mdb.
 * The caller holds wlock, so no LMDB commit rewrites the meta pages
 * meanwhile. */
static int pin_snapshot(sl_store *st, MDB_txn **pin, uint8_t meta[META_BYTES], unsigned *psize) {
  MDB_stat ms;
  int fd, rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, pin);
  if (rc) {
    sl_diag_error("%s: LMDB read transaction for a checkpoint: %s", st->dir, mdb_strerror(rc));
    *pin = NULL;
    return sl__mdb_err(rc);
  }
  uint64_t txnid = mdb_txn_id(*pin), free_pages = 0, last = 0;
  MDB_envinfo info;
  if (!mdb_env_stat(st->env, &ms) && !mdb_env_get_fd(st->env, &fd) && !mdb_env_info(st->env, &info) &&
      !free_pages_from(*pin, 0, &free_pages, &last)) {
    uint64_t used = (uint64_t)info.me_last_pgno + 1, live = used > free_pages ? used - free_pages : 0;
    *psize = ms.ms_psize;
    st->pin_txnid = txnid;
    st->pin_scanned = txnid - 1; /* records from the pin's own transaction on are held */
    st->pin_held = 0;
    st->pin_budget = SL_MAX((uint64_t)PIN_BUDGET_MIN / ms.ms_psize, live / 4);
    for (unsigned i = 0; i < 2; i++) {
      long r = sl_pread_full(fd, meta, META_BYTES, (uint64_t)i * ms.ms_psize);
      if (r == META_BYTES && meta_valid(meta, ms.ms_psize) && meta_u64(meta, META_TXNID_OFF) == txnid) return 0;
    }
  }
  sl_diag_error("%s/data.mdb: no meta page holds LMDB transaction %" PRIu64 ", the newest", st->dir, txnid);
  mdb_txn_abort(*pin);
  *pin = NULL;
  return SL_ECORRUPT;
}

/* Unlock wlock after a checkpoint's pin (or its decision to take none),
 * and let the write transactions that waited for it begin. */
static void pin_pending_end(sl_store *st) {
  pthread_mutex_unlock(&st->wlock);
  pthread_mutex_lock(&st->ckpt_mu);
  atomic_store(&st->ckpt_pin_pending, false);
  pthread_cond_broadcast(&st->ckpt_done_cv);
  pthread_mutex_unlock(&st->ckpt_mu);
}

void sl__wlock_for_begin(sl_store *st) {
  if (atomic_load(&st->ckpt_pin_pending)) {
    pthread_mutex_lock(&st->ckpt_mu);
    while (atomic_load(&st->ckpt_pin_pending)) pthread_cond_wait(&st->ckpt_done_cv, &st->ckpt_mu);
    pthread_mutex_unlock(&st->ckpt_mu);
  }
  pthread_mutex_lock(&st->wlock);
}

/* `pin` is the snapshot DIR/checkpoint now names (written) or may name
 * (the write failed after a rename perhaps reached the disk). */
static void pins_add(sl_store *st, MDB_txn *pin, bool written) {
  if (written) {
    for (size_t i = 0; i < st->npins; i++) mdb_txn_abort(st->pins[i]);
    st->npins = 0;
  }
  st->pins[st->npins++] = pin;
}

void sl__pins_release(sl_store *st) {
  for (size_t i = 0; i < st->npins; i++) mdb_txn_abort(st->pins[i]);
  st->npins = 0;
  if (st->scan_txn) mdb_txn_abort(st->scan_txn);
  st->scan_txn = NULL;
}

/* While pinned, every commit writes its copied pages to new pages (a small
 * transaction copies ten or more): true once the pages freed since the pin
 * reach its budget. Counts only the records added since the last call, so
 * a call costs a read transaction and a few cursor steps. Under wlock. */
bool sl__pin_outgrown(sl_store *st) {
  uint64_t n = 0, last = st->pin_scanned;
  if (!st->pin_txnid) return false;
  if (st->scan_txn ? mdb_txn_renew(st->scan_txn) : mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->scan_txn)) {
    st->scan_txn = NULL;
    return false;
  }
  if (free_pages_from(st->scan_txn, st->pin_scanned + 1, &n, &last) == 0) {
    st->pin_held += n;
    st->pin_scanned = last;
  }
  mdb_txn_reset(st->scan_txn);
  return st->pin_held >= st->pin_budget;
}

/* DIR/checkpoint: "TXID\n", then for a store with a log
 * "lmdb-meta PSIZE HEX CRC\n": the meta page (META_BYTES, hex) of the
 * synced LMDB snapshot that holds txids up to TXID, and the CRC32C (8 hex
 * digits) of every byte before the space ahead of it. */
static int checkpoint_file_write(sl_store *st, uint64_t txid, const uint8_t *meta, unsigned psize) {
  char buf[64 + 2 * META_BYTES];
  int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", txid);
  if (meta) {
    n += snprintf(buf + n, sizeof buf - (size_t)n, CKPT_META_TAG "%u ", psize);
    sl_hex_encode(meta, META_BYTES, buf + n); /* fits: at most 42 bytes come before it */
    n += 2 * META_BYTES;
    n += snprintf(buf + n, sizeof buf - (size_t)n, " %08x\n", sl_crc32c(0, buf, (size_t)n));
  }
  int rc = sl_write_file_atomic(st->dir, "checkpoint", buf, (size_t)n);
  if (rc) sl_diag_error("%s/checkpoint: %s", st->dir, sl_strerror(rc));
  return rc;
}

/* Read DIR/checkpoint's saved meta page. SL_ENOTFOUND: none saved (no
 * file, or one from before meta pages were saved); SL_ECORRUPT: malformed
 * or failing its CRC. `why` says which. */
static int checkpoint_file_read(const char *dir, uint64_t *txid, uint8_t meta[META_BYTES], unsigned *psize, char *why,
                                size_t why_n) {
  char p[4096], *text = NULL, *end, *line2;
  uint8_t *buf = NULL;
  size_t len = 0, tl = strlen(CKPT_META_TAG);
  unsigned crc;
  int rc = sl_path_join(p, sizeof p, dir, "checkpoint");
  if (!rc) rc = sl_read_file(p, 1024, &buf, &len);
  if (rc) {
    snprintf(why, why_n, "%s", rc == -ENOENT ? "there is no checkpoint file" : sl_strerror(rc));
    return rc == -ENOENT ? SL_ENOTFOUND : rc;
  }
  if (!(text = malloc(len + 1))) {
    free(buf);
    return -ENOMEM;
  }
  memcpy(text, buf, len);
  text[len] = 0;
  free(buf);
  rc = SL_ECORRUPT;
  *txid = strtoull(text, &end, 10);
  if (end == text || *end != '\n') {
    snprintf(why, why_n, "the checkpoint file is malformed");
    goto out;
  }
  line2 = end + 1;
  if (*line2 == 0) {
    snprintf(why, why_n, "the checkpoint file holds no LMDB meta page (written before they were saved)");
    rc = SL_ENOTFOUND;
    goto out;
  }
  size_t l2 = strlen(line2), crc_at = l2 - 10; /* " XXXXXXXX\n" */
  if (l2 < tl + 4 + 2 * META_BYTES + 10 || strncmp(line2, CKPT_META_TAG, tl) != 0 || line2[crc_at] != ' ' ||
      line2[l2 - 1] != '\n' || sscanf(line2 + crc_at + 1, "%8x", &crc) != 1 ||
      sscanf(line2 + tl, "%u", psize) != 1 || !(end = strchr(line2 + tl, ' ')) ||
      crc_at - (size_t)(end + 1 - line2) != 2 * META_BYTES) {
    snprintf(why, why_n, "the checkpoint file's LMDB meta line is malformed");
    goto out;
  }
  if (sl_crc32c(0, text, (size_t)(line2 + crc_at - text)) != crc) {
    snprintf(why, why_n, "the checkpoint file fails its CRC");
    goto out;
  }
  for (size_t i = 0; i < META_BYTES; i++) {
    unsigned v;
    if (sscanf(end + 1 + 2 * i, "%2x", &v) != 1) goto out;
    meta[i] = (uint8_t)v;
  }
  if (!meta_valid(meta, *psize)) {
    snprintf(why, why_n, "the checkpoint file's LMDB meta page is not one of this LMDB version");
    goto out;
  }
  rc = 0;
out:
  free(text);
  return rc;
}

/* After a power loss: put the checkpoint's meta page back into both meta
 * pages of data.mdb, so that LMDB opens on the checkpoint's snapshot. Its
 * pages were synced by the checkpoint and never reused since (the writer
 * pinned it until a later checkpoint was on disk); pages written after it
 * are free pages of that snapshot, torn or not. Then check that LMDB holds
 * exactly the checkpoint and that the log reaches on from it. On success
 * LMDB is open with its meta loaded; SL_ECORRUPT or SL_ENOTFOUND (and
 * `why`) when the checkpoint cannot be used. */
int sl__restore_checkpoint(sl_store *st, const char *logdir, const char *reason, char *why, size_t why_n) {
  uint8_t meta[META_BYTES], page[META_BYTES];
  unsigned psize;
  uint64_t txid;
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  MDB_envinfo info;
  char p[4096];
  int fd = -1, rc = checkpoint_file_read(st->dir, &txid, meta, &psize, why, why_n);
  if (rc) return rc;
  if ((rc = sl_log_list(logdir, &segs, &nseg))) return rc;
  uint64_t first = nseg ? segs[0].first_txid : 0;
  free(segs);
  if (nseg == 0 || first > txid + 1) {
    snprintf(why, why_n, "the checkpoint is at txid %" PRIu64 " but the log starts at txid %" PRIu64, txid, first);
    return SL_ECORRUPT;
  }
  sl_diag_warn("%s: %s: restoring LMDB to its checkpoint at txid %" PRIu64 " (LMDB transaction %" PRIu64
              "), then replaying the log after it", st->dir, reason, txid, meta_u64(meta, META_TXNID_OFF));
  if ((rc = sl_path_join(p, sizeof p, st->dir, "data.mdb"))) return rc;
  if ((fd = open(p, O_RDWR | O_CLOEXEC)) < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", p, strerror(errno));
    return rc;
  }
  for (uint64_t i = 0; i < 2 && !rc; i++) {
    memcpy(page, meta, META_BYTES);
    memcpy(page, &i, sizeof i); /* the page header's pgno */
    rc = sl_pwrite_all(fd, page, META_BYTES, i * psize);
  }
  if (!rc) rc = sl_fsync(fd);
  close(fd);
  if (rc) {
    sl_diag_error("%s: writing the checkpoint's meta pages: %s", p, sl_strerror(rc));
    return rc;
  }
  test_note_synced(st->dir, (meta_u64(meta, META_LAST_PG_OFF) + 1) * psize);
  if ((rc = sl__env_open(st, SL__ENV_FLAGS, 0)) || (rc = sl__load_meta(st)) || (rc = sl__mdb_err(mdb_env_info(st->env, &info)))) {
    snprintf(why, why_n, "LMDB does not open on the checkpoint's meta page: %s", sl_strerror(rc));
    rc = SL_ECORRUPT;
  } else if (info.me_last_txnid != meta_u64(meta, META_TXNID_OFF) || st->meta.applied_txid != txid) {
    snprintf(why, why_n, "LMDB opened on the checkpoint's meta page holds txid %" PRIu64 " (LMDB transaction %zu), "
             "not the checkpoint's %" PRIu64, st->meta.applied_txid, info.me_last_txnid, txid);
    rc = SL_ECORRUPT;
  }
  if (rc && st->env) {
    mdb_env_close(st->env);
    st->env = NULL;
  }
  return rc;
}

/* Before LMDB is written: pin the snapshot DIR/checkpoint names if LMDB is
 * still there (a clean close, or a restore), else take a checkpoint of
 * what LMDB holds now. Until one of these, LMDB might reuse pages of the
 * last checkpoint that a power loss would restore. */
int sl__pin_at_open(sl_store *st) {
  uint8_t saved[META_BYTES], meta[META_BYTES];
  unsigned psize, saved_psize;
  uint64_t txid;
  char why[160];
  MDB_txn *pin;
  if (checkpoint_file_read(st->dir, &txid, saved, &saved_psize, why, sizeof why) == 0 &&
      txid == st->meta.applied_txid && pin_snapshot(st, &pin, meta, &psize) == 0) {
    if (psize == saved_psize && memcmp(meta + 8, saved + 8, META_BYTES - 8) == 0) {
      pins_add(st, pin, true);
      return 0;
    }
    mdb_txn_abort(pin);
  }
  return sl_store_checkpoint(st);
}
/* ---- checkpoints ------------------------------------------------------------------------- */
/* A failed sync of data.mdb is final for this open (PostgreSQL's lesson):
 * Linux marks pages whose write-back failed clean, reports the error once,
 * and a retried sync then succeeds over pages that never reached the disk;
 * a checkpoint recorded after it would let a power loss restore them and
 * the log before it be pruned. So the store takes no more writes, and
 * writer.lock says "sync-failed": the next open restores LMDB to the last
 * checkpoint that did sync and replays the log after it, which still holds
 * every acknowledged transaction (nothing past that checkpoint was pruned). */
static void sync_failed(sl_store *st, uint64_t txid, int rc) {
  pthread_mutex_lock(&st->wlock);
  if (!st->failed) st->failed = rc;
  pthread_mutex_unlock(&st->wlock);
  (void)sl__lock_state_write(st, SL__LOCK_SYNC_FAILED);
  sl_diag_error("%s/data.mdb: LMDB's sync for the checkpoint at txid %" PRIu64 " failed: %s; the store takes no "
               "more writes: reopen it (LMDB goes back to its last synced checkpoint and the log is replayed)",
               st->dir, txid, sl_strerror(rc));
}

/* if_due: only if still due (a request of the checkpoint thread: committers
 * that saw the mark before the last checkpoint's pin ask again after it). */
static int checkpoint_locked(sl_store *st, bool if_due) {
  MDB_txn *pin = NULL;
  uint8_t meta[META_BYTES];
  unsigned psize = 0;
  MDB_envinfo info;
  sl__meta m;
  int rc = 0;
  bool image = !st->no_log; /* a power loss restores a store with a log to its checkpoint */
  if (image && st->npins == SL_ARRAY_LEN(st->pins)) {
    sl_diag_error("%s: the last %zu checkpoint files could not be written: no checkpoints until the store is reopened",
                 st->dir, st->npins);
    return SL_EFAILED;
  }
  atomic_store(&st->ckpt_pin_pending, true); /* new write transactions wait (sl__wlock_for_begin) */
  pthread_mutex_lock(&st->wlock);
  if (st->failed) { /* its LMDB may not be what it logged, or did not sync */
    rc = st->failed;
    pin_pending_end(st);
    return rc;
  }
  if (if_due && st->bytes_since_ckpt < st->ckpt_every) {
    pin_pending_end(st);
    return 0;
  }
  uint64_t txid = st->meta.applied_txid;
  st->bytes_since_ckpt = 0;
  if (image) rc = pin_snapshot(st, &pin, meta, &psize);
  if (pin) atomic_store(&st->ckpt_inflight_seq, ++st->ckpt_pin_seq);
  pin_pending_end(st);
  if (!rc && pin && (rc = sl__meta_read(pin, st->dbi[SL__DB_META], &m)) == 0) txid = m.applied_txid;
  if (rc) {
    if (pin) mdb_txn_abort(pin);
    return rc;
  }
  /* Every commit up to txid is in the page cache: one sync covers them.
   * Commits go on meanwhile, into pages the pin keeps apart. */
  test_step(st, SL_CKPT_STEP_PINNED);
  rc = sl_fault(SL_FAULT_STORE_CHECKPOINT);
  if (!rc) rc = sl__mdb_err(mdb_env_sync(st->env, 1));
  if (rc) {
    sync_failed(st, txid, rc);
    if (pin) mdb_txn_abort(pin);
    return rc;
  }
  if (!mdb_env_info(st->env, &info)) test_note_synced(st->dir, ((uint64_t)info.me_last_pgno + 1) * psize);
  test_step(st, SL_CKPT_STEP_SYNCED);
  /* Other committers' txids in the snapshot may not be durable yet: a
   * restored checkpoint must never be ahead of the log that survives. */
  if (st->log && (rc = sl_log_wait_durable(st->log, txid))) {
    sl_diag_error("%s: the checkpoint at txid %" PRIu64 " waits for the log: %s", st->dir, txid, sl_strerror(rc));
    if (pin) mdb_txn_abort(pin);
    return rc;
  }
  rc = checkpoint_file_write(st, txid, pin ? meta : NULL, psize);
  if (!rc) test_step(st, SL_CKPT_STEP_WRITTEN);
  /* The previous pin goes only once the new checkpoint is surely on disk. */
  if (pin) pins_add(st, pin, rc == 0);
  if (rc) return rc;
  if (st->log && (rc = sl_log_prune(st->log, txid)) < 0) return rc;
  return 0;
}

/* One checkpoint under ckpt_lock; then committers held back by it go on. */
static int checkpoint_run(sl_store *st, bool if_due) {
  pthread_mutex_lock(&st->ckpt_lock);
  int rc = checkpoint_locked(st, if_due);
  pthread_mutex_unlock(&st->ckpt_lock);
  pthread_mutex_lock(&st->ckpt_mu);
  atomic_store(&st->ckpt_inflight_seq, 0);
  pthread_cond_broadcast(&st->ckpt_done_cv);
  pthread_mutex_unlock(&st->ckpt_mu);
  return rc;
}

int sl_store_checkpoint(sl_store *st) {
  if (st->rdonly) return SL_EREADONLY;
  return checkpoint_run(st, false);
}

/* ---- space ------------------------------------------------------------------------------- */
int sl_store_space(sl_store *st, sl_space *out) {
  MDB_txn *txn;
  MDB_envinfo info;
  MDB_stat ms;
  uint64_t last = 0;
  memset(out, 0, sizeof *out);
  int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (rc) return sl__mdb_err(rc);
  if ((rc = mdb_env_info(st->env, &info)) || (rc = mdb_env_stat(st->env, &ms))) {
    mdb_txn_abort(txn);
    return sl__mdb_err(rc);
  }
  out->page_size = ms.ms_psize;
  out->pages_used = (uint64_t)info.me_last_pgno + 1;
  rc = free_pages_from(txn, 0, &out->pages_free, &last);
  mdb_txn_abort(txn);
  return rc;
}

/* Bytes a file takes: its size, or less where it is sparse (data.mdb of a
 * writer of an older shiplog that died is as large as LMDB's map). */
static uint64_t file_bytes(const char *dir, const char *name) {
  char p[4096];
  struct stat sb;
  if (sl_path_join(p, sizeof p, dir, name) || stat(p, &sb)) return 0;
  return SL_MIN((uint64_t)sb.st_size, (uint64_t)sb.st_blocks * 512);
}

/* The swap is safe against a crash or power loss at any point: data.mdb
 * is either the old file (synced by the checkpoint before the copy, and
 * not written since) or the synced copy, and writer.lock says "closed"
 * from before the rename until the checkpoint file names the copy's meta
 * page, so no open restores the old checkpoint's meta page into the copy. */
int sl_store_compact(const char *dir, uint64_t *before, uint64_t *after) {
  char tmp[4096] = "", p[4096];
  sl_store *st = NULL;
  int fd = -1, lock_fd = -1;
  int rc = sl_store_lock_unused(dir, &lock_fd); /* nobody else has it open */
  if (rc) return rc;
  close(lock_fd);
  *before = file_bytes(dir, "data.mdb");
  *after = 0;
  if ((rc = sl_store_open(dir, sl__exists(dir, "log") ? 0 : SL_OPEN_NOLOG, &st))) return rc;
  if ((rc = sl_store_checkpoint(st)) || (rc = sl_path_join(tmp, sizeof tmp, dir, "data.mdb.compact")) ||
      (rc = sl_path_join(p, sizeof p, dir, "data.mdb")))
    goto out;
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", tmp, strerror(errno));
    goto out;
  }
  if ((rc = sl__mdb_err(mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT))) || (rc = sl_fsync(fd))) {
    sl_diag_error("%s: compacting copy of LMDB: %s", tmp, sl_strerror(rc));
    goto out;
  }
  close(fd);
  fd = -1;
  st->failed = SL_EFAILED; /* until LMDB is open again: no checkpoint at close */
  sl__checkpointer_stop(st); /* nothing commits here: the checkpoints below are explicit */
  sl__pins_release(st);
  mdb_env_close(st->env);
  st->env = NULL;
  if ((rc = sl__lock_state_write(st, "closed"))) goto out;
  if ((rc = sl_rename_durable(tmp, p))) goto out; /* renamed, then dir fsynced */
  tmp[0] = 0;
  if ((rc = sl_path_join(p, sizeof p, dir, "lock.mdb"))) goto out;
  unlink(p); /* LMDB's reader table still names the old file's transactions */
  if ((rc = sl__env_open(st, SL__ENV_FLAGS, 0)) || (rc = sl__load_meta(st))) goto out;
  st->failed = 0;
  rc = sl_store_checkpoint(st);
out:
  if (fd >= 0) close(fd);
  if (tmp[0]) unlink(tmp);
  sl_store_close(st); /* a clean close when all went well: "closed" again, the file trimmed */
  if (!rc) *after = file_bytes(dir, "data.mdb");
  return rc;
}

/* ---- the checkpoint thread ----------------------------------------------------------- */
static void *checkpointer_main(void *arg) {
  sl_store *st = arg;
  pthread_mutex_lock(&st->ckpt_mu);
  for (;;) {
    while (!st->ckpt_wanted && !st->ckpt_stop) pthread_cond_wait(&st->ckpt_cv, &st->ckpt_mu);
    if (st->ckpt_stop) break;
    st->ckpt_wanted = false;
    pthread_mutex_unlock(&st->ckpt_mu);
    /* A failure is logged (checkpoint_locked names the step, the store and
     * the txid), the previous checkpoint stays pinned, and the next mark
     * asks again. */
    (void)checkpoint_run(st, true);
    pthread_mutex_lock(&st->ckpt_mu);
  }
  pthread_mutex_unlock(&st->ckpt_mu);
  return NULL;
}

int sl__checkpointer_start(sl_store *st) {
  int rc = sl_thread_start(&st->ckpt_thread, checkpointer_main, st);
  if (rc) {
    sl_diag_error("%s: cannot start the checkpoint thread: %s", st->dir, sl_strerror(rc));
    return rc;
  }
  st->ckpt_thread_on = true;
  return 0;
}

void sl__checkpointer_stop(sl_store *st) {
  if (!st->ckpt_thread_on) return;
  pthread_mutex_lock(&st->ckpt_mu);
  st->ckpt_stop = true;
  pthread_cond_signal(&st->ckpt_cv);
  pthread_cond_broadcast(&st->ckpt_done_cv);
  pthread_mutex_unlock(&st->ckpt_mu);
  pthread_join(st->ckpt_thread, NULL);
  st->ckpt_thread_on = false;
}

void sl__checkpoint_if_due(sl_store *st, bool due, uint64_t pin_seq) {
  if (!due) return;
  pthread_mutex_lock(&st->ckpt_mu);
  /* Due again since the in-flight checkpoint's pin: its sync lags the
   * commits, and the pages freed meanwhile wait for it; wait too. */
  while (pin_seq && atomic_load(&st->ckpt_inflight_seq) == pin_seq && !st->ckpt_stop)
    pthread_cond_wait(&st->ckpt_done_cv, &st->ckpt_mu);
  st->ckpt_wanted = true;
  pthread_cond_signal(&st->ckpt_cv);
  pthread_mutex_unlock(&st->ckpt_mu);
}
