/*
 * The store directory: creating and opening it, the writer lock, recovery,
 * checkpoints and the commit path. graph.c holds the schema and the ops,
 * value.c the value encodings; store.h describes the directory.
 *
 * LMDB IS DERIVED STATE. The log is the truth; LMDB answers one question
 * fast: "what is the graph after txid meta.applied_txid?". It is opened
 * MDB_NOSYNC for a store with a log: a group of commits appends its frames
 * to the log (write()), commits LMDB without syncing and only then waits
 * for the fdatasync of the log (GROUP COMMIT below). Since LMDB's meta
 * (applied_txid) changes in the same LMDB transaction as the ops, the
 * state LMDB holds is always exactly some prefix of the log.
 *   MDB_WRITEMAP too: without it every LMDB commit write()s its dirty pages,
 * which cost more than half of the time a small commit holds the writer
 * lock on ext4. The price: LMDB extends data.mdb to the map size (a sparse
 * file) while a writer has it open; a clean close truncates it to the pages
 * in use.
 *
 * RECOVERY (sl_store_open for writing)
 *   1. flock(writer.lock): one writer process (SL_ELOCKED otherwise).
 *   2. writer.lock says "open BOOT" while a writer has the store open and
 *      "closed" after a clean close. "open" with another boot's id means the
 *      machine went down with the store open: unsynced LMDB pages may be
 *      torn, so LMDB is restored to its last checkpoint (restore_checkpoint:
 *      the saved meta page goes back into both of data.mdb's meta pages).
 *      If the checkpoint file has no meta page or it fails its checks, LMDB
 *      is deleted and rebuilt from the log, which must then start at txid 1
 *      (SL_ECORRUPT, "restore from a backup", otherwise). The log line says
 *      which. The same boot's id means only the process died: the page
 *      cache holds every LMDB commit, and LMDB is trusted.
 *   3. writer.lock := "open <this boot>" (fdatasync'd) before anything is
 *      written to LMDB without sync. A restore or rebuild writes it only
 *      after LMDB is whole again, so a crash meanwhile leads to another.
 *   4. sl_log_open_keep repairs the log's tail and syncs it, refusing
 *      first (nothing changed) when the log would end below LMDB's applied
 *      txid: a damaged frame that LMDB applied is no torn tail. Before LMDB is
 *      written, the checkpoint's snapshot is pinned (pin_at_open), or, when
 *      LMDB moved past it, a checkpoint is taken.
 *   5. Frames past applied_txid (those
 *      appended by commits whose LMDB commit did not happen) are replayed,
 *      one LMDB transaction per REPLAY_BATCH_TX frames or REPLAY_BATCH_BYTES. LMDB ahead
 *      of the log cannot happen with these rules and is SL_ECORRUPT.
 *
 * CHECKPOINTS: mdb_env_sync, then DIR/checkpoint := txid, then the log may
 * drop segments at or below it. Taken every min(segment size,
 * SL_CHECKPOINT_BYTES) of log (by the committer that crosses the mark,
 * after its own commit is durable, so no one waits for it under the writer
 * lock), during a long replay, and at close, before writer.lock says
 * "closed".
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
 * pin lives no page of the snapshot is written again, even with
 * MDB_WRITEMAP. The previous pin is released only once the new checkpoint
 * file is on disk (after a failed write, both stay: the file may be either).
 * After a power loss the meta page goes back into data.mdb: LMDB then sees
 * exactly the checkpoint (its free-page list and last page make every page
 * written since free again), the reboot emptied lock.mdb's reader table,
 * and the log after the checkpoint is replayed. The cost: pages freed after
 * a checkpoint wait for the next one, so each commit's copied pages are new
 * pages; a checkpoint is therefore also due once the pages freed since the
 * pin reach a sixteenth of the live pages (at least 8 MiB; pin_outgrown),
 * which keeps data.mdb within about 1.1x its live pages + 16 MiB.
 *
 * A NO-LOG STORE (standby) is opened MDB_NOSYNC | MDB_WRITEMAP too: an
 * apply costs no fsync, so a standby follows its primary within a
 * fraction of a millisecond. It has no log to rebuild from, so after a
 * power loss (writer.lock left "open" by another boot) LMDB may be torn and
 * any open of it, for writing or reading, fails with SL_ECORRUPT until its
 * owner rebuilds it from what it is derived from (the receiver: the newest
 * snapshot and its archive). sl_store_checkpoint syncs it (the receiver does
 * so about once a second), which bounds the dirty pages, not what a power
 * loss costs.
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
 * first, as before) and leads the fdatasync; the group's other committers
 * wait on gc_cv for done + durable. A transaction that fails or aborts
 * after writing cannot abort its part of the shared LMDB transaction: it
 * sets gc_rollback, no transaction begins until the opener's flush has
 * aborted it and re-applied the pending records (sl__apply_record), and the
 * flush goes on. Asserted in every build (SL_ASSERT): the pending records'
 * txids are contiguous and continue the log, and a committer is released
 * with success only once its txid is durable. Callers that need their own LMDB transaction
 * (sl_store_apply_batch, a begin past GROUP_MAX_BYTES) wait for the flush.
 *
 * LOCKS: st->wlock is the writer lock: held from sl_tx_begin to the end of
 * commit/abort, by sl_store_apply* and by a group's flush. It guards
 * st->meta, the reusable tx and its open group, the pending records and
 * the apply arena. st->gc_mu guards the committers' outcomes and the
 * syncing flag (order: wlock before gc_mu). st->ckpt_lock keeps checkpoints one at a
 * time. Views need no lock (LMDB read transactions, MDB_NOTLS so that a
 * view may move between threads).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

#define STORE_ID_HEADER "shiplog-store "
#define STORE_ID_VERSION 1
#define MAP_SIZE_DEFAULT (64ull << 30)
#define MAX_DBS 16
#define MAX_READERS 256
#define REPLAY_BATCH_TX 10000
#define REPLAY_BATCH_BYTES (16u << 20) /* larger LMDB transactions spill dirty pages */
#define ENV_FLAGS (MDB_NOSYNC | MDB_WRITEMAP) /* for writing, log or not */
#define COMMIT_AHEAD_MAX_US (60ull * 1000000)
#define TX_OPS_KEEP (1u << 20) /* packed ops / pending records kept for the next */
#define PEND_KEEP (4u << 20)   /* transactions; larger buffers are freed */
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

static int join(char *out, size_t n, const char *dir, const char *name) {
  int r = snprintf(out, n, "%s/%s", dir, name);
  if (r < 0 || (size_t)r >= n) {
    sl_diag_error("%s/%s: path too long", dir, name);
    return -ENAMETOOLONG;
  }
  return 0;
}

static bool exists(const char *dir, const char *name) {
  char p[4096];
  struct stat sb;
  return join(p, sizeof p, dir, name) == 0 && stat(p, &sb) == 0;
}

/* ---- store.id --------------------------------------------------------------- */
int sl_store_read_id(const char *dir, uint8_t id[SL_STORE_ID_SIZE]) {
  char p[4096];
  uint8_t *buf = NULL;
  size_t len = 0, hl = strlen(STORE_ID_HEADER);
  int rc = join(p, sizeof p, dir, SL_STORE_ID_FILE);
  if (rc) return rc;
  if ((rc = sl_read_file(p, 256, &buf, &len))) {
    if (rc == -ENOENT) sl_diag_error("%s: not a shiplog store (no " SL_STORE_ID_FILE ")", dir);
    else sl_diag_error("%s: %s", p, sl_strerror(rc));
    return rc;
  }
  rc = SL_ECORRUPT;
  if (len < hl + 2 || memcmp(buf, STORE_ID_HEADER, hl) != 0) goto bad;
  if (buf[hl] != '0' + STORE_ID_VERSION || buf[hl + 1] != '\n') {
    rc = SL_EVERSION;
    goto bad;
  }
  if (len != hl + 2 + 2 * SL_STORE_ID_SIZE + 1 || buf[len - 1] != '\n') goto bad;
  for (size_t i = 0; i < SL_STORE_ID_SIZE; i++) {
    unsigned v;
    char h[3] = {(char)buf[hl + 2 + 2 * i], (char)buf[hl + 3 + 2 * i], 0};
    if (sscanf(h, "%2x", &v) != 1) goto bad;
    id[i] = (uint8_t)v;
  }
  free(buf);
  return 0;
bad:
  sl_diag_error("%s: %s", p, rc == SL_EVERSION ? "store format version not supported" : "malformed");
  free(buf);
  return rc;
}

static int write_store_id(const char *dir, const uint8_t id[SL_STORE_ID_SIZE]) {
  char text[128];
  int n = snprintf(text, sizeof text, "%s%d\n", STORE_ID_HEADER, STORE_ID_VERSION);
  for (size_t i = 0; i < SL_STORE_ID_SIZE; i++) n += snprintf(text + n, sizeof text - (size_t)n, "%02x", id[i]);
  text[n++] = '\n';
  int rc = sl_write_file_atomic(dir, SL_STORE_ID_FILE, text, (size_t)n);
  if (rc) sl_diag_error("%s/" SL_STORE_ID_FILE ": %s", dir, sl_strerror(rc));
  return rc;
}

/* ---- LMDB environment ---------------------------------------------------------- */
static int data_file_check(const sl_store *st);

/* LMDB aborts the process when an assertion meets a damaged page it did
 * not expect (a cursor step onto a page that is not a leaf, ...): name the
 * file first. sl_store_check finds such pages before anything walks them. */
static void env_assert(MDB_env *env, const char *msg) {
  const sl_store *st = mdb_env_get_userctx(env);
  sl_diag_error("%s/data.mdb: LMDB met a damaged page and stops the process: %s", st ? st->dir : "?", msg);
}

static int env_open(sl_store *st, unsigned flags, uint64_t map_size) {
  int rc = data_file_check(st);
  if (rc) return rc;
  rc = mdb_env_create(&st->env);
  if (!rc) rc = mdb_env_set_userctx(st->env, st);
  if (!rc) rc = mdb_env_set_assert(st->env, env_assert);
  if (!rc) rc = mdb_env_set_maxdbs(st->env, MAX_DBS);
  if (!rc) rc = mdb_env_set_maxreaders(st->env, MAX_READERS);
  if (!rc && map_size) rc = mdb_env_set_mapsize(st->env, map_size);
  if (!rc) rc = mdb_env_open(st->env, st->dir, flags | MDB_NOTLS, 0600);
  if (rc) {
    if (rc == EACCES && (flags & MDB_RDONLY))
      sl_diag_error("%s: LMDB: %s (reading needs write access to lock.mdb, LMDB's reader table)", st->dir,
                   mdb_strerror(rc));
    else
      sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
    mdb_env_close(st->env);
    st->env = NULL;
    return sl__mdb_err(rc);
  }
  return 0;
}

static int dbis_open(sl_store *st, MDB_txn *txn, unsigned flags) {
  for (int i = 0; i < SL__DB_COUNT; i++) {
    int rc = mdb_dbi_open(txn, sl__db_names[i], flags, &st->dbi[i]);
    if (rc) {
      sl_diag_error("%s: LMDB database %s: %s", st->dir, sl__db_names[i], mdb_strerror(rc));
      return rc == MDB_NOTFOUND ? SL_ECORRUPT : sl__mdb_err(rc);
    }
  }
  return 0;
}

/* A new LMDB holding an empty graph whose state is "txids 1..base applied". */
static int lmdb_init(sl_store *st, uint64_t base_txid, uint64_t segment_size, bool no_log) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) {
    sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  sl__meta m = {.applied_txid = base_txid, .next_node_id = 1, .next_rel_id = 1};
  MDB_dbi meta;
  if ((rc = dbis_open(st, txn, MDB_CREATE))) goto fail;
  meta = st->dbi[SL__DB_META];
  if ((rc = sl__meta_put_u64(txn, meta, "format_version", SL__FORMAT_VERSION)) ||
      (rc = sl__meta_put_bytes(txn, meta, "store_id", st->id, SL_STORE_ID_SIZE)) ||
      (rc = sl__meta_put_u64(txn, meta, "base_txid", base_txid)) ||
      (rc = sl__meta_put_u64(txn, meta, "segment_size", segment_size)) ||
      (rc = sl__meta_put_u64(txn, meta, "no_log", no_log)) || (rc = sl__meta_write(txn, meta, &m, NULL)))
    goto fail;
  if ((rc = mdb_txn_commit(txn)) || (rc = mdb_env_sync(st->env, 1))) {
    sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  st->meta = m;
  return 0;
fail:
  mdb_txn_abort(txn);
  return rc;
}

/* Check format and store id; load the meta a writer needs. */
static int load_meta(sl_store *st) {
  MDB_txn *txn;
  MDB_val id;
  uint64_t version = 0, no_log = 0, seg = 0;
  int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (rc) {
    sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  MDB_dbi meta;
  if ((rc = dbis_open(st, txn, 0))) goto out;
  meta = st->dbi[SL__DB_META];
  if ((rc = sl__meta_get_u64(txn, meta, "format_version", &version))) goto missing;
  if (version != SL__FORMAT_VERSION) {
    sl_diag_error("%s: LMDB format version %" PRIu64 " is not supported (this build reads %d)", st->dir, version,
                 SL__FORMAT_VERSION);
    rc = SL_EVERSION;
    goto out;
  }
  if ((rc = sl__meta_get_bytes(txn, meta, "store_id", &id))) goto missing;
  if (id.mv_size != SL_STORE_ID_SIZE || memcmp(id.mv_data, st->id, SL_STORE_ID_SIZE) != 0) {
    sl_diag_error("%s: LMDB belongs to another store than store.id names", st->dir);
    rc = SL_ESTOREID;
    goto out;
  }
  if ((rc = sl__meta_get_u64(txn, meta, "no_log", &no_log)) ||
      (rc = sl__meta_get_u64(txn, meta, "segment_size", &seg)) || (rc = sl__meta_read(txn, meta, &st->meta)))
    goto missing;
  st->no_log = no_log != 0;
  st->ckpt_every = SL_MIN(seg ? seg : SL_SEG_SIZE_DEFAULT, SL_CHECKPOINT_BYTES);
  rc = mdb_txn_commit(txn); /* keeps the dbi handles */
  txn = NULL;
  if (rc) {
    sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
    rc = sl__mdb_err(rc);
  }
  goto out;
missing:
  if (rc == SL_ENOTFOUND) {
    sl_diag_error("%s: LMDB meta is incomplete", st->dir);
    rc = SL_ECORRUPT;
  }
out:
  if (txn) mdb_txn_abort(txn);
  return rc;
}

/* ---- write transactions on LMDB ------------------------------------------------- */
static int wbegin(sl_store *st, sl__wctx *w) {
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

static void wabort(sl__wctx *w) {
  sl__cursors_close(&w->cur);
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
  int rc = mdb_txn_commit(w->txn);
  w->txn = NULL;
  if (rc) {
    sl_diag_error("%s: LMDB commit of txid %" PRIu64 ": %s", st->dir, w->meta.applied_txid, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  st->meta = w->meta;
  return 0;
}

static int wcommit(sl__wctx *w) {
  int rc = wmeta(w);
  if (rc) {
    wabort(w);
    return rc;
  }
  return wfinish(w);
}

/* ---- writer.lock ------------------------------------------------------------------ */
static void read_boot_id(char *out, size_t n) {
#ifdef SL_FAULT_INJECTION
  /* Tests simulate a reboot after a simulated power loss (SL_FAULT_CRASH). */
  const char *fake = getenv("SL_TEST_BOOT_ID");
  if (fake && *fake) {
    snprintf(out, n, "%s", fake);
    return;
  }
#endif
  /* Plain read(): /proc files report size 0. */
  char buf[64];
  int fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
  ssize_t r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (r <= 0) {
    snprintf(out, n, "unknown"); /* no power-loss detection without a boot id */
    return;
  }
  buf[r] = 0;
  buf[strcspn(buf, "\n")] = 0;
  snprintf(out, n, "%s", buf);
}

static int lock_state_write(sl_store *st, const char *state) {
  char buf[128];
  int n = snprintf(buf, sizeof buf, "%s\n", state);
  int rc = sl_fault(SL_FAULT_STORE_LOCK);
  if (!rc) rc = sl_pwrite_all(st->lock_fd, buf, (size_t)n, 0);
  if (!rc && ftruncate(st->lock_fd, n)) rc = -errno;
  if (!rc) rc = sl_fdatasync(st->lock_fd);
  if (rc) sl_diag_error("%s/writer.lock: %s", st->dir, sl_strerror(rc));
  return rc;
}

/* writer.lock's text says "open BOOT" with another boot's id: copy BOOT. */
static void foreign_of(char *text, const char *boot, char *foreign_boot, size_t n) {
  text[strcspn(text, "\n")] = 0;
  foreign_boot[0] = 0;
  if (strncmp(text, "open ", 5) == 0 && strcmp(text + 5, boot) != 0)
    snprintf(foreign_boot, n, "%.*s", (int)n - 1, text + 5);
}

/* Take writer.lock; *foreign_boot gets the boot id of a writer that never
 * closed the store, if it was another boot's (else ""). */
static int lock_take(sl_store *st, char *foreign_boot, size_t n) {
  char p[4096], buf[128];
  int rc = join(p, sizeof p, st->dir, "writer.lock");
  if (rc) return rc;
  foreign_boot[0] = 0;
  if ((st->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", p, strerror(errno));
    return rc;
  }
  if (flock(st->lock_fd, LOCK_EX | LOCK_NB)) {
    rc = errno == EWOULDBLOCK ? SL_ELOCKED : -errno;
    sl_diag_error("%s: %s", st->dir, rc == SL_ELOCKED ? "open for writing by another process" : strerror(errno));
    return rc;
  }
  read_boot_id(st->boot_id, sizeof st->boot_id);
  long r = sl_pread_full(st->lock_fd, buf, sizeof buf - 1, 0);
  if (r < 0) {
    sl_diag_error("%s: %s", p, sl_strerror((int)r));
    return (int)r;
  }
  buf[r] = 0;
  foreign_of(buf, st->boot_id, foreign_boot, n);
  return 0;
}

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
 * writer (MDB_WRITEMAP extends the file to the map size) read zeros there
 * as pages. Refused with SL_ECORRUPT naming the file and both sizes. A file
 * whose meta pages are both invalid is left to LMDB (MDB_INVALID); a
 * missing file is a new store. */
static int data_file_check(const sl_store *st) {
  uint8_t m[2][META_BYTES];
  char p[4096];
  struct stat sb;
  int rc = join(p, sizeof p, st->dir, "data.mdb");
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
  char p[4096];
  if (!to || !*to || join(p, sizeof p, dir, "data.mdb")) return;
  int in = open(p, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  loff_t off = 0;
  while (in >= 0 && out >= 0 && (uint64_t)off < bytes && copy_file_range(in, &off, out, NULL, bytes - (uint64_t)off, 0) > 0) {
  }
  if (in >= 0) close(in);
  if (out >= 0) close(out);
}
#else
#define test_note_synced(dir, bytes) ((void)0)
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

/* What a pin may cost before a checkpoint is due: a sixteenth of the live
 * pages, at least PIN_BUDGET_MIN. Once pages freed since the pin reach it,
 * the next checkpoint moves the pin and they are reused: data.mdb holds
 * the live pages, those freed in the last interval (being reused) and those
 * freed in this one: the live pages + 2x the budget at most. Live pages
 * written by commits are fuller than a load's (MDB_APPEND) by up to 2x
 * (page splits, deletes), so a sixteenth keeps data.mdb near 2x what a
 * load of the store's dump takes. A budget relative to data.mdb's size
 * instead (as before) let each interval use up the whole free list and
 * then grow by a quarter: geometric growth. */
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
    st->pin_budget = SL_MAX((uint64_t)PIN_BUDGET_MIN / ms.ms_psize, live / 16);
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

/* `pin` is the snapshot DIR/checkpoint now names (written) or may name
 * (the write failed after a rename perhaps reached the disk). */
static void pins_add(sl_store *st, MDB_txn *pin, bool written) {
  if (written) {
    for (size_t i = 0; i < st->npins; i++) mdb_txn_abort(st->pins[i]);
    st->npins = 0;
  }
  st->pins[st->npins++] = pin;
}

static void pins_release(sl_store *st) {
  for (size_t i = 0; i < st->npins; i++) mdb_txn_abort(st->pins[i]);
  st->npins = 0;
  if (st->scan_txn) mdb_txn_abort(st->scan_txn);
  st->scan_txn = NULL;
}

/* While pinned, every commit writes its copied pages to new pages (a small
 * transaction copies ten or more): true once the pages freed since the pin
 * reach its budget. Counts only the records added since the last call, so
 * a call costs a read transaction and a few cursor steps. Under wlock. */
static bool pin_outgrown(sl_store *st) {
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
    for (size_t i = 0; i < META_BYTES; i++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%02x", meta[i]);
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
  int rc = join(p, sizeof p, dir, "checkpoint");
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
static int restore_checkpoint(sl_store *st, const char *logdir, const char *reason, char *why, size_t why_n) {
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
  if ((rc = join(p, sizeof p, st->dir, "data.mdb"))) return rc;
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
  if ((rc = env_open(st, ENV_FLAGS, 0)) || (rc = load_meta(st)) || (rc = sl__mdb_err(mdb_env_info(st->env, &info)))) {
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
static int pin_at_open(sl_store *st) {
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

/* ---- recovery ------------------------------------------------------------------------ */
/* Replay the log's frames past LMDB's applied txid. */
static int replay(sl_store *st, const char *logdir) {
  uint64_t last = sl_log_next_txid(st->log) - 1, applied = st->meta.applied_txid, n = 0, bytes = 0, ckpt_bytes = 0;
  sl_log_reader *r = NULL;
  sl__wctx w = {0};
  sl_frame f;
  int rc;
  if (applied > last) {
    sl_diag_error("%s: LMDB has applied txid %" PRIu64 " but the log ends at %" PRIu64
                 " (files from different stores or times mixed?)", st->dir, applied, last);
    return SL_ECORRUPT;
  }
  /* LMDB is not ahead of the (now durable) log: pin its checkpoint or take one. */
  if ((rc = pin_at_open(st))) return rc;
  if (applied == last) return 0;
  sl_log_reader_options ro = {.max_txid = last, .tolerate_tail = false};
  if ((rc = sl_log_reader_open(logdir, applied + 1, &ro, &r))) {
    if (rc == SL_ENOTFOUND) {
      sl_diag_error("%s: LMDB has applied txid %" PRIu64 " but the log no longer holds txid %" PRIu64, st->dir,
                   applied, applied + 1);
      rc = SL_ECORRUPT;
    }
    return rc;
  }
  uint64_t t0 = sl_mono_ns();
  if ((rc = wbegin(st, &w))) goto out;
  while ((rc = sl_log_reader_next(r, &f)) == 0) {
    rc = sl__apply_record(&w, &st->apply_arena, f.payload, f.payload_len);
    sl__arena_reset(&st->apply_arena);
    if (rc) {
      sl_diag_error("%s: replaying txid %" PRIu64 " (segment %" PRIu64 " offset %" PRIu64 ") failed", st->dir,
                   f.txid, f.segno, f.offset);
      goto out;
    }
    bytes += f.payload_len;
    if (++n % REPLAY_BATCH_TX == 0 || bytes >= REPLAY_BATCH_BYTES) {
      ckpt_bytes += bytes;
      bytes = 0;
      if ((rc = wcommit(&w))) goto out;
      /* The pinned checkpoint keeps LMDB from reusing pages: move it on
       * as commits do, so that a long replay does not grow data.mdb. */
      if (ckpt_bytes >= st->ckpt_every || pin_outgrown(st)) {
        ckpt_bytes = 0;
        if ((rc = sl_store_checkpoint(st))) goto out;
      }
      if ((rc = wbegin(st, &w))) goto out;
    }
  }
  if (rc != SL_EEND) goto out;
  if ((rc = wcommit(&w))) goto out;
  if (st->meta.applied_txid != last) {
    sl_diag_error("%s: log replay stopped at txid %" PRIu64 ", expected %" PRIu64, st->dir, st->meta.applied_txid,
                 last);
    rc = SL_ECORRUPT;
    goto out;
  }
  sl_diag_info("%s: replayed %" PRIu64 " transactions from the log in %.3f s", st->dir, n,
              (double)(sl_mono_ns() - t0) / 1e9);
  rc = 0;
out:
  wabort(&w);
  sl_log_reader_close(r);
  return rc;
}

/* After a power loss: LMDB may be torn; make a new one to replay into. */
static int rebuild(sl_store *st, const char *logdir, const char *why) {
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  char p[4096];
  struct stat sb;
  int rc = sl_log_list(logdir, &segs, &nseg);
  if (rc) return rc;
  if (nseg == 0 || segs[0].first_txid != 1) {
    sl_diag_error("%s: %s, and the log starts at txid %" PRIu64 ", not 1, so LMDB cannot be rebuilt: restore "
                 "the store from a backup", st->dir, why, nseg ? segs[0].first_txid : 0);
    free(segs);
    return SL_ECORRUPT;
  }
  /* segment_size is in the LMDB we distrust; sealed segments show it. */
  uint64_t seg = 0;
  for (size_t i = 0; i + 1 < nseg; i++) seg = SL_MAX(seg, segs[i].size);
  free(segs);
  sl_diag_warn("%s: %s: rebuilding LMDB from the log", st->dir, why);
  uint64_t map = MAP_SIZE_DEFAULT;
  if ((rc = join(p, sizeof p, st->dir, "data.mdb"))) return rc;
  /* The bytes in use, not st_size: a writer that died kept data.mdb at its map size (sparse), and
   * doubling that at each power loss grew the map until the file system refused (EFBIG). */
  if (stat(p, &sb) == 0) map = SL_MAX(map, 2 * (uint64_t)sb.st_blocks * 512);
  if (unlink(p) && errno != ENOENT) goto unlink_failed;
  if ((rc = join(p, sizeof p, st->dir, "lock.mdb"))) return rc;
  if (unlink(p) && errno != ENOENT) goto unlink_failed;
  if ((rc = env_open(st, ENV_FLAGS, map))) return rc;
  return lmdb_init(st, 0, seg ? seg : SL_SEG_SIZE_DEFAULT, false);
unlink_failed:
  rc = -errno;
  sl_diag_error("%s: %s", p, strerror(errno));
  return rc;
}

static int open_writer(sl_store *st) {
  char foreign[64], logdir[4096], why[512];
  bool has_log = exists(st->dir, "log");
  int rc = lock_take(st, foreign, sizeof foreign);
  if (rc) return rc;
  if (has_log != !(st->flags & SL_OPEN_NOLOG)) {
    sl_diag_error("%s: %s", st->dir, has_log ? "has a log: open it without SL_OPEN_NOLOG"
                                            : "has no log of its own (a standby): open it with SL_OPEN_NOLOG");
    return SL_EINVAL;
  }
  if ((rc = join(logdir, sizeof logdir, st->dir, "log"))) return rc;
  bool have_data = exists(st->dir, "data.mdb");
  why[0] = 0;
  if (foreign[0] && has_log)
    snprintf(why, sizeof why, "the machine went down while the store was open (boot %s)", foreign);
  else if (!have_data && has_log)
    snprintf(why, sizeof why, "data.mdb is missing");
  if (!have_data && !has_log) {
    sl_diag_error("%s: data.mdb is missing", st->dir);
    return SL_ECORRUPT;
  }
  if (foreign[0] && !has_log) {
    sl_diag_error("%s: the machine went down while this standby was open (boot %s): its LMDB, written without "
                 "sync, may be torn; rebuild it from its archive", st->dir, foreign);
    return SL_ECORRUPT;
  }
  bool restored = false;
  if (why[0] && have_data) {
    char why_not[300];
    rc = restore_checkpoint(st, logdir, why, why_not, sizeof why_not);
    if (rc != 0 && rc != SL_ECORRUPT && rc != SL_ENOTFOUND) return rc;
    restored = rc == 0;
    if (!restored) {
      size_t l = strlen(why);
      snprintf(why + l, sizeof why - l, "; the checkpoint cannot restore LMDB: %s", why_not);
    }
  }
  if (!restored) {
    rc = why[0] ? rebuild(st, logdir, why) : env_open(st, ENV_FLAGS, 0);
    if (rc || (rc = load_meta(st))) return rc;
  }
  if (st->no_log == has_log) {
    sl_diag_error("%s: LMDB says the store %s a log, the directory disagrees", st->dir, st->no_log ? "has no" : "has");
    return SL_ECORRUPT;
  }
  int dead = 0;
  mdb_reader_check(st->env, &dead); /* slots of killed readers */
  char state[80];
  snprintf(state, sizeof state, "open %s", st->boot_id);
  if ((rc = lock_state_write(st, state))) return rc;
  if (!has_log) return 0;
  /* LMDB ahead of the log is refused inside the log's recovery, before it
   * cuts anything: a damaged last frame of an applied txid is no torn tail. */
  if ((rc = sl_log_open_keep(logdir, st->id, st->meta.applied_txid, &st->log))) return rc;
  return replay(st, logdir);
}

/* The boot id in DIR's writer.lock when a writer of another boot had DIR
 * open (the machine went down with it open); "" otherwise. */
static void foreign_writer(const char *dir, char *foreign, size_t n) {
  char p[4096], boot[64], buf[128];
  uint8_t *text = NULL;
  size_t len = 0;
  foreign[0] = 0;
  if (join(p, sizeof p, dir, "writer.lock") || sl_read_file(p, 127, &text, &len) != 0) return;
  snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)text);
  free(text);
  read_boot_id(boot, sizeof boot);
  foreign_of(buf, boot, foreign, n);
}

bool sl_store_power_lost(const char *dir) {
  char foreign[64];
  foreign_writer(dir, foreign, sizeof foreign);
  return foreign[0] != 0;
}

static int open_rdonly(sl_store *st) {
  if (!exists(st->dir, "data.mdb")) {
    sl_diag_error("%s: data.mdb is missing", st->dir);
    return -ENOENT;
  }
  int rc = env_open(st, MDB_RDONLY, 0);
  if (rc || (rc = load_meta(st)) || !st->no_log) return rc;
  /* A standby is written without sync: after a power loss it may be torn
   * until its owner rebuilds it (and writes writer.lock anew). */
  char foreign[64];
  foreign_writer(st->dir, foreign, sizeof foreign);
  if (!foreign[0]) return 0;
  sl_diag_error("%s: the machine went down while this standby was open (boot %s): it may be torn until its "
               "receiver rebuilds it", st->dir, foreign);
  return SL_ECORRUPT;
}

int sl_store_lock_unused(const char *dir, int *lock_fd) {
  char p[4096];
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  int rc, fd = -1, lfd = -1;
  *lock_fd = -1;
  if ((rc = join(p, sizeof p, dir, "writer.lock"))) return rc;
  if ((fd = open(p, O_RDWR | O_CLOEXEC)) < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", p, strerror(errno));
    return rc;
  }
  if (flock(fd, LOCK_EX | LOCK_NB)) {
    rc = errno == EWOULDBLOCK ? SL_ELOCKED : -errno;
    sl_diag_error("%s: %s", dir, rc == SL_ELOCKED ? "open for writing by another process" : strerror(errno));
    goto fail;
  }
  /* Every process with the LMDB environment open holds a shared fcntl lock
   * on byte 0 of lock.mdb (LMDB's "is anyone else here" test). */
  if ((rc = join(p, sizeof p, dir, "lock.mdb"))) goto fail;
  if ((lfd = open(p, O_RDONLY | O_CLOEXEC)) >= 0) {
    if (fcntl(lfd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
      sl_diag_error("%s: open (for reading) by process %d", dir, (int)fl.l_pid);
      rc = SL_ELOCKED;
    }
    close(lfd);
    if (rc) goto fail;
  } else if (errno != ENOENT) {
    rc = -errno;
    sl_diag_error("%s: %s", p, strerror(errno));
    goto fail;
  }
  *lock_fd = fd;
  return 0;
fail:
  close(fd);
  return rc;
}

/* ---- open / close -------------------------------------------------------------------- */
/* MDB_WRITEMAP grew data.mdb to the map size: give back the unused tail.
 * Readers in other processes touch only pages of their snapshots, which lie
 * below the last page in use. */
static void env_close_trimmed(sl_store *st, bool trim) {
  MDB_envinfo info;
  MDB_stat ms;
  char p[4096];
  unsigned flags = 0;
  trim = trim && !mdb_env_get_flags(st->env, &flags) && (flags & MDB_WRITEMAP) && !mdb_env_info(st->env, &info) &&
         !mdb_env_stat(st->env, &ms) && !join(p, sizeof p, st->dir, "data.mdb");
  mdb_env_close(st->env);
  st->env = NULL;
  if (trim && truncate(p, (off_t)(info.me_last_pgno + 1) * ms.ms_psize))
    sl_diag_warn("%s: cannot trim to its used size: %s", p, strerror(errno));
}

static void store_free(sl_store *st, bool mark_clean) {
  if (st->log) sl_log_close(st->log);
  pins_release(st);
  if (st->env) env_close_trimmed(st, mark_clean);
  if (st->lock_fd >= 0) {
    if (mark_clean) lock_state_write(st, "closed");
    close(st->lock_fd); /* releases the flock */
  }
  sl__arena_free(&st->tx.arena);
  sl__arena_free(&st->tx.view.scratch);
  sl__arena_free(&st->apply_arena);
  free(st->tx.ops);
  free(st->pend);
  free(st->pend_off);
  free(st->pend_lens);
  free(st->pend_ptrs);
  pthread_mutex_destroy(&st->wlock);
  pthread_mutex_destroy(&st->gc_mu);
  pthread_cond_destroy(&st->gc_cv);
  pthread_mutex_destroy(&st->ckpt_lock);
  free(st->dir);
  free(st);
}

int sl_store_open(const char *dir, unsigned flags, sl_store **out) {
  *out = NULL;
  sl_store *st = calloc(1, sizeof *st);
  if (!st || !(st->dir = strdup(dir))) {
    free(st);
    return -ENOMEM;
  }
  st->flags = flags;
  st->rdonly = flags & SL_OPEN_RDONLY;
  st->lock_fd = -1;
  pthread_mutex_init(&st->wlock, NULL);
  pthread_mutex_init(&st->gc_mu, NULL);
  pthread_cond_init(&st->gc_cv, NULL);
  st->waiters_tail = &st->waiters;
  pthread_mutex_init(&st->ckpt_lock, NULL);
  sl__arena_init(&st->tx.arena);
  sl__arena_init(&st->tx.view.scratch);
  sl__arena_init(&st->apply_arena);
  int rc = sl_store_read_id(dir, st->id);
  if (!rc) rc = st->rdonly ? open_rdonly(st) : open_writer(st);
  if (rc) {
    store_free(st, false);
    return rc;
  }
  *out = st;
  return 0;
}

void sl_store_close(sl_store *st) {
  if (!st) return;
  bool clean = false;
  if (!st->rdonly) {
    /* "closed" promises a synced LMDB that no durable txid is missing from. */
    clean = !st->failed && (!st->log || sl_log_wait_durable(st->log, st->meta.applied_txid) == 0) &&
            sl_store_checkpoint(st) == 0;
  }
  store_free(st, clean);
}

const uint8_t *sl_store_id(const sl_store *st) { return st->id; }
const char *sl_store_dir(const sl_store *st) { return st->dir; }
sl_log *sl_store_log(sl_store *st) { return st->log; }
bool sl_store_no_log(const sl_store *st) { return st->no_log; }

/* ---- create --------------------------------------------------------------------------- */
static int dir_check_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    int rc = -errno;
    sl_diag_error("%s: %s", dir, strerror(errno));
    return rc;
  }
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      sl_diag_error("%s: not empty (a new store needs an empty or missing directory)", dir);
      rc = SL_EEXIST;
      break;
    }
  closedir(d);
  return rc;
}

int sl_store_create(const char *dir, const sl_store_options *opt) {
  static const char *const created[] = {"data.mdb", "lock.mdb", "writer.lock", "writer.lock.tmp",
                                        SL_STORE_ID_FILE ".tmp"};
  sl_store_options o = {0};
  sl_store st = {.dir = (char *)dir, .lock_fd = -1};
  char logdir[4096], p[4096];
  bool made_dir = false;
  struct stat sb;
  int rc;
  if (opt) o = *opt;
  uint64_t first = o.first_txid ? o.first_txid : 1;
  if ((rc = join(logdir, sizeof logdir, dir, "log"))) return rc;
  if (stat(dir, &sb) == 0) {
    if ((rc = dir_check_empty(dir))) return rc;
  } else if (errno == ENOENT) {
    if ((rc = sl_mkdir_p(dir))) {
      sl_diag_error("%s: %s", dir, sl_strerror(rc));
      return rc;
    }
    made_dir = true;
  } else {
    rc = -errno;
    sl_diag_error("%s: %s", dir, strerror(errno));
    return rc;
  }
  if (o.store_id) {
    memcpy(st.id, o.store_id, SL_STORE_ID_SIZE);
  } else if (getrandom(st.id, SL_STORE_ID_SIZE, 0) != SL_STORE_ID_SIZE) {
    rc = -errno;
    sl_diag_error("getrandom: %s", strerror(errno));
    goto fail;
  }
  if ((rc = env_open(&st, 0, o.map_size ? o.map_size : MAP_SIZE_DEFAULT)) ||
      (rc = lmdb_init(&st, first - 1, o.segment_size ? o.segment_size : SL_SEG_SIZE_DEFAULT, o.no_log)))
    goto fail;
  mdb_env_close(st.env);
  st.env = NULL;
  if (!o.no_log) {
    sl_log_options lo = {.segment_size = o.segment_size, .first_txid = first};
    memcpy(lo.store_id, st.id, SL_STORE_ID_SIZE);
    if ((rc = sl_log_create(logdir, &lo))) goto fail;
  }
  if ((rc = sl_write_file_atomic(dir, "writer.lock", "closed\n", 7))) {
    sl_diag_error("%s/writer.lock: %s", dir, sl_strerror(rc));
    goto fail;
  }
  /* Last: a directory without store.id is a half-created store. */
  if ((rc = write_store_id(dir, st.id))) goto fail;
  return 0;
fail:
  if (st.env) mdb_env_close(st.env);
  if (made_dir) {
    sl_remove_tree(dir);
  } else {
    for (size_t i = 0; i < SL_ARRAY_LEN(created); i++)
      if (join(p, sizeof p, dir, created[i]) == 0) unlink(p);
    if (!o.no_log) sl_remove_tree(logdir);
  }
  return rc;
}

/* ---- checkpoints ------------------------------------------------------------------------- */
static int checkpoint_locked(sl_store *st) {
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
  pthread_mutex_lock(&st->wlock);
  uint64_t txid = st->meta.applied_txid;
  st->bytes_since_ckpt = 0;
  if (image) rc = pin_snapshot(st, &pin, meta, &psize);
  pthread_mutex_unlock(&st->wlock);
  if (!rc && pin && (rc = sl__meta_read(pin, st->dbi[SL__DB_META], &m)) == 0) txid = m.applied_txid;
  if (rc) {
    if (pin) mdb_txn_abort(pin);
    return rc;
  }
  /* Every commit up to txid is in the page cache: one sync covers them. */
  rc = sl_fault(SL_FAULT_STORE_CHECKPOINT);
  if (!rc) rc = sl__mdb_err(mdb_env_sync(st->env, 1));
  if (rc) {
    sl_diag_error("%s: LMDB sync for the checkpoint at txid %" PRIu64 ": %s", st->dir, txid, sl_strerror(rc));
    if (pin) mdb_txn_abort(pin);
    return rc;
  }
  if (!mdb_env_info(st->env, &info)) test_note_synced(st->dir, ((uint64_t)info.me_last_pgno + 1) * psize);
  /* Other committers' txids in the snapshot may not be durable yet: a
   * restored checkpoint must never be ahead of the log that survives. */
  if (st->log && (rc = sl_log_wait_durable(st->log, txid))) {
    sl_diag_error("%s: the checkpoint at txid %" PRIu64 " waits for the log: %s", st->dir, txid, sl_strerror(rc));
    if (pin) mdb_txn_abort(pin);
    return rc;
  }
  rc = checkpoint_file_write(st, txid, pin ? meta : NULL, psize);
  /* The previous pin goes only once the new checkpoint is surely on disk. */
  if (pin) pins_add(st, pin, rc == 0);
  if (rc) return rc;
  if (st->log && (rc = sl_log_prune(st->log, txid)) < 0) return rc;
  return 0;
}

int sl_store_checkpoint(sl_store *st) {
  if (st->rdonly) return SL_EREADONLY;
  pthread_mutex_lock(&st->ckpt_lock);
  int rc = checkpoint_locked(st);
  pthread_mutex_unlock(&st->ckpt_lock);
  return rc;
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
 * writer that died is as large as LMDB's map). */
static uint64_t file_bytes(const char *dir, const char *name) {
  char p[4096];
  struct stat sb;
  if (join(p, sizeof p, dir, name) || stat(p, &sb)) return 0;
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
  if ((rc = sl_store_open(dir, exists(dir, "log") ? 0 : SL_OPEN_NOLOG, &st))) return rc;
  if ((rc = sl_store_checkpoint(st)) || (rc = join(tmp, sizeof tmp, dir, "data.mdb.compact")) ||
      (rc = join(p, sizeof p, dir, "data.mdb")))
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
  pins_release(st);
  mdb_env_close(st->env);
  st->env = NULL;
  if ((rc = lock_state_write(st, "closed"))) goto out;
  if ((rc = sl_rename_durable(tmp, p))) goto out; /* renamed, then dir fsynced */
  tmp[0] = 0;
  if ((rc = join(p, sizeof p, dir, "lock.mdb"))) goto out;
  unlink(p); /* LMDB's reader table still names the old file's transactions */
  if ((rc = env_open(st, ENV_FLAGS, 0)) || (rc = load_meta(st))) goto out;
  st->failed = 0;
  rc = sl_store_checkpoint(st);
out:
  if (fd >= 0) close(fd);
  if (tmp[0]) unlink(tmp);
  sl_store_close(st); /* a clean close when all went well: "closed" again, the file trimmed */
  if (!rc) *after = file_bytes(dir, "data.mdb");
  return rc;
}

/* From a committer past the mark; skipped if another checkpoint runs. */
static void checkpoint_if_due(sl_store *st, bool due) {
  if (!due || pthread_mutex_trylock(&st->ckpt_lock)) return;
  checkpoint_locked(st); /* a failure is logged; the next mark retries */
  pthread_mutex_unlock(&st->ckpt_lock);
}

/* ---- the commit path ---------------------------------------------------------------------- */
/* MDB_WRITEMAP stores pages straight into the mapped data.mdb, a sparse
 * file: on a full disk a store into a hole is SIGBUS, not an error. So
 * before each write transaction the pages in use plus RESERVE_BYTES / 2 must
 * be allocated; when they are not, fallocate() up to RESERVE_BYTES past
 * them (once per few MiB of growth). A full disk then fails the
 * transaction with ENOSPC before anything is written. A single transaction
 * that adds more than RESERVE_BYTES / 2 of new pages still risks SIGBUS.
 * Caller holds wlock. */
#define RESERVE_BYTES (8u << 20)
static int reserve_space(sl_store *st) {
  MDB_envinfo info;
  MDB_stat ms;
  int fd;
  if (mdb_env_info(st->env, &info) || mdb_env_stat(st->env, &ms) || mdb_env_get_fd(st->env, &fd)) return 0;
  uint64_t used = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
  if (pin_outgrown(st)) st->bytes_since_ckpt = SL_MAX(st->bytes_since_ckpt, st->ckpt_every); /* due */
  if (used + RESERVE_BYTES / 2 <= st->reserved) return 0;
  uint64_t want = SL_MIN(used + RESERVE_BYTES, (uint64_t)info.me_mapsize);
  int rc = fallocate(fd, 0, 0, (off_t)want) ? -errno : 0;
  if (rc == -EOPNOTSUPP) rc = 0; /* a file system without fallocate: nothing to be done */
  if (rc) {
    sl_diag_error("%s/data.mdb: cannot allocate %" PRIu64 " bytes for LMDB to grow into: %s", st->dir, want,
                 sl_strerror(rc));
    return rc;
  }
  st->reserved = want;
  return 0;
}

/* ---- group commit ---------------------------------------------------------------------- */
/* A committer whose record is pending: on its stack, linked under wlock. */
typedef struct sl__waiter {
  struct sl__waiter *next;
  uint64_t txid;
  int rc;      /* under gc_mu: the outcome of the flush that took the record */
  bool done;   /* under gc_mu: the record is in the log and LMDB, or failed (rc) */
  bool logged; /* under gc_mu: the record reached the log */
  bool opener; /* its thread began the group's LMDB transaction */
} sl__waiter;

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
    w->done = true;
  }
  st->gc_flushes++;
  pthread_cond_broadcast(&st->gc_cv);
  pthread_mutex_unlock(&st->gc_mu);
  st->waiters = NULL;
  st->waiters_tail = &st->waiters;
  st->pend_n = st->pend_len = 0;
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
  wabort(&tx->w);
  if (st->pend_n == 0) return;
  rc = wbegin(st, &tx->w);
  for (size_t i = 0; !rc && i < st->pend_n; i++) {
    rc = sl__apply_record(&tx->w, &st->apply_arena, st->pend + st->pend_off[i], st->pend_lens[i]);
    sl__arena_reset(&st->apply_arena);
  }
  if (rc) {
    sl_diag_error("%s: re-applying %zu pending transactions after an abort: %s", st->dir, st->pend_n,
                 sl_strerror(rc));
    wabort(&tx->w);
    st->failed = rc;
    waiters_done(st, rc, 0);
  }
}

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
  if (!rc && (rc = wfinish(w))) appended = st->pend_n;
  if (rc) {
    if (appended) {
      st->failed = rc;
      sl_diag_error("%s: txids up to %" PRIu64 " are in the log but not in LMDB: reopen the store to replay them",
                   st->dir, w->meta.applied_txid - (st->pend_n - appended));
    }
    wabort(w);
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
static int group_wait(sl_store *st, sl__waiter *me) {
  pthread_mutex_lock(&st->gc_mu);
  while (!me->rc && !(me->done && me->txid <= sl_log_durable_txid(st->log))) {
    if (st->gc_syncing || (!me->done && !me->opener)) {
      pthread_cond_wait(&st->gc_cv, &st->gc_mu);
      continue;
    }
    st->gc_syncing = true;
    pthread_mutex_unlock(&st->gc_mu);
    if (!me->done) {
      pthread_mutex_lock(&st->wlock);
      (void)flush_locked(st); /* its outcome reaches every committer it took, this one included */
      pthread_mutex_unlock(&st->wlock);
    }
    int rc = sl_log_wait_durable(st->log, sl_log_next_txid(st->log) - 1);
    pthread_mutex_lock(&st->gc_mu);
    if (rc && !me->rc) me->rc = rc;
    st->gc_syncing = false;
    pthread_cond_broadcast(&st->gc_cv);
  }
  int rc = me->rc;
  /* A committer is released with 0 only once its record is logged and durable. */
  SL_ASSERT(rc || (me->done && me->logged && me->txid <= sl_log_durable_txid(st->log)),
            "%s: committer of txid %" PRIu64 " released (done %d, logged %d) at durable %" PRIu64, st->dir, me->txid,
            me->done, me->logged, sl_log_durable_txid(st->log));
  pthread_mutex_unlock(&st->gc_mu);
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
    while (st->gc_flushes == gen) pthread_cond_wait(&st->gc_cv, &st->gc_mu);
    pthread_mutex_unlock(&st->gc_mu);
    pthread_mutex_lock(&st->wlock);
  }
}

int sl_tx_begin(sl_store *st, sl_tx **out) {
  *out = NULL;
  if (st->rdonly || st->no_log) return SL_EREADONLY;
  pthread_mutex_lock(&st->wlock);
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
  if (tx->ops_cap > TX_OPS_KEEP) { /* after a large transaction: give it back */
    free(tx->ops);
    tx->ops = NULL;
    tx->ops_cap = 0;
  }
  tx->view_open = false;
  sl__arena_reset(&tx->arena);
  int rc = reserve_space(st);
  if (!rc && !tx->w.txn) rc = wbegin(st, &tx->w); /* else: the group's, holding the pending records */
  tx->w.err[0] = 0;
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
  if (tx->st->pend_n == 0) wabort(&tx->w);
  else if (tx->nops || tx->err) tx->st->gc_rollback = true;
  pthread_mutex_unlock(&tx->st->wlock);
}

void sl_tx_abort(sl_tx *tx) {
  if (tx) tx_end(tx);
}

int sl_tx_commit(sl_tx *tx, uint64_t *txid_out) {
  sl_store *st = tx->st;
  int rc = tx->err;
  if (txid_out) *txid_out = 0;
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
  m->applied_txid = txid;
  m->last_commit_us = rec.commit_time_us;
  /* The record waits in the open LMDB transaction for its group's flush. */
  sl__waiter me = {.txid = txid, .opener = st->pend_n == 1};
  *st->waiters_tail = &me;
  st->waiters_tail = &me.next;
  /* One waiter per pending record, their txids contiguous from the first. */
  SL_ASSERT(st->waiters->txid + (st->pend_n - 1) == txid, "%s: pending txids from %" PRIu64 ", %zu records, then %" PRIu64,
            st->dir, st->waiters->txid, st->pend_n, txid);
  st->bytes_since_ckpt += len + SL_FRAME_HEADER_SIZE;
  bool due = st->bytes_since_ckpt >= st->ckpt_every;
  pthread_mutex_unlock(&st->wlock);
  rc = group_wait(st, &me);
  if (txid_out && me.logged) *txid_out = txid; /* in the log, durable or not */
  if (rc) return rc;
  checkpoint_if_due(st, due);
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
  pthread_mutex_lock(&st->wlock);
  group_drain(st, true); /* the pending records go first */
  if ((rc = st->failed) || (rc = reserve_space(st)) || (rc = wbegin(st, &w))) goto out;
  for (size_t i = 0; i < n; i++) {
    rc = sl__apply_record(&w, &st->apply_arena, payloads[i], lens[i]);
    sl__arena_reset(&st->apply_arena);
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
  uint64_t last = st->meta.applied_txid;
  pthread_mutex_unlock(&st->wlock);
  if (st->log && !(st->flags & SL_OPEN_BULK) && (rc = sl_log_wait_durable(st->log, last))) return rc;
  checkpoint_if_due(st, due);
  return 0;
out:
  if (appended) {
    st->failed = rc;
    sl_diag_error("%s: records up to txid %" PRIu64 " are in the log but not in LMDB: reopen the store to replay",
                 st->dir, w.meta.applied_txid - (n - appended));
  }
  wabort(&w);
  pthread_mutex_unlock(&st->wlock);
  return rc;
}

int sl_store_apply(sl_store *st, const uint8_t *payload, size_t len) {
  return sl_store_apply_batch(st, &payload, &len, 1);
}

/* ---- views --------------------------------------------------------------------------------- */
int sl_view_begin(sl_store *st, sl_view **out) {
  *out = NULL;
  sl_view *v = calloc(1, sizeof *v);
  if (!v) return -ENOMEM;
  v->st = st;
  sl__arena_init(&v->scratch);
  int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &v->txn);
  if (rc) {
    sl_diag_error("%s: LMDB read transaction: %s", st->dir, mdb_strerror(rc));
    free(v);
    return sl__mdb_err(rc);
  }
  v->cur.txn = v->txn;
  *out = v;
  return 0;
}

void sl_view_end(sl_view *v) {
  if (!v || v->owned_by_tx) return;
  sl__cursors_close(&v->cur);
  mdb_txn_abort(v->txn);
  sl__arena_free(&v->scratch);
  free(v);
}
