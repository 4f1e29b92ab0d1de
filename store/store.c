/*
 * The store directory: creating and opening it, store.id, the LMDB
 * environment, the writer lock, recovery (power loss, rebuild, replay) and
 * views. checkpoint.c holds the checkpoint pin, checkpoints, space and
 * compaction; commit.c the write transactions on LMDB and the commit path;
 * graph.c the schema and the ops, value.c the value encodings; store.h
 * describes the directory.
 *
 * LMDB IS DERIVED STATE. The log is the truth; LMDB answers one question
 * fast: "what is the graph after txid meta.applied_txid?". It is opened
 * MDB_NOSYNC for a store with a log: a group of commits appends its frames
 * to the log (write()), commits LMDB without syncing and only then waits
 * for the fdatasync of the log (GROUP COMMIT, commit.c). Since LMDB's meta
 * (applied_txid) changes in the same LMDB transaction as the ops, the
 * state LMDB holds is always exactly some prefix of the log.
 *
 * NOT MDB_WRITEMAP. LMDB commits its dirty pages with pwrite(). Through the
 * map a commit would save those copies and writes, but a store into a
 * mapped page dirties the page cache's whole folio, and kernels from 6.16
 * cache ext4 files in large folios (up to hundreds of KiB): on a 6.18
 * kernel a small Bolt transaction (about 33 LMDB pages) then wrote 0.8-1 MB
 * of data.mdb, 1 GB/s from one client, and the checkpoints' write-back of
 * it made the commit tails (bench/README, "data.mdb write-back"). A pwrite
 * dirties only the blocks it writes (and commit.c, SMALL FOLIOS, keeps the
 * folios it writes into small).
 *
 * RECOVERY (sl_store_open for writing)
 *   1. flock(writer.lock): one writer process (SL_ELOCKED otherwise).
 *   2. writer.lock says "open BOOT" while a writer has the store open and
 *      "closed" after a clean close. "open" with another boot's id means the
 *      machine went down with the store open: unsynced LMDB pages may be
 *      torn, so LMDB is restored to its last checkpoint
 *      (sl__restore_checkpoint, checkpoint.c: the saved meta page goes back
 *      into both of data.mdb's meta pages).
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
 *      written, the checkpoint's snapshot is pinned (sl__pin_at_open,
 *      checkpoint.c), or, when LMDB moved past it, a checkpoint is taken.
 *   5. Frames past applied_txid (those
 *      appended by commits whose LMDB commit did not happen) are replayed,
 *      one LMDB transaction per REPLAY_BATCH_TX frames or REPLAY_BATCH_BYTES. LMDB ahead
 *      of the log cannot happen with these rules and is SL_ECORRUPT.
 *
 * A NO-LOG STORE (standby) is opened MDB_NOSYNC too: an
 * apply costs no fsync, so a standby follows its primary within a
 * fraction of a millisecond. It has no log to rebuild from, so after a
 * power loss (writer.lock left "open" by another boot) LMDB may be torn and
 * any open of it, for writing or reading, fails with SL_ECORRUPT until its
 * owner rebuilds it from what it is derived from (the receiver: the newest
 * snapshot and its archive). sl_store_checkpoint syncs it (the receiver does
 * so about once a second), which bounds the dirty pages, not what a power
 * loss costs.
 *
 * ONE ENVIRONMENT PER PROCESS. LMDB's locks on lock.mdb are fcntl locks,
 * which never conflict within a process: a second environment on the same
 * store in one process believes it is alone, initialises lock.mdb anew
 * under the first (its reader table, its writer mutex, the last txnid, so
 * that the next write transaction may start from an older meta page), and
 * closing it drops the first's locks. An open of a store this process has
 * open already is therefore refused (SL_ELOCKED), whatever the two modes;
 * the directory's device and inode name the store (a rename keeps them).
 *
 * LOCKS: the writer lock and the group commit's mutex are commit.c's
 * (LOCKS there), the checkpoint lock checkpoint.c's. A shipper marks that
 * it reads the log by byte 1 of writer.lock (store.h SHIPPING LOCK), which
 * a restore in place and a rewind test. Views need no lock
 * (LMDB read transactions, MDB_NOTLS so that a view may move between
 * threads).
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
#include <time.h>
#include <unistd.h>

#include "store_int.h"

#define STORE_ID_HEADER "shiplog-store "
#define STORE_ID_VERSION 1
#define MAP_SIZE_DEFAULT (64ull << 30)
#define MAX_DBS 16
#define MAX_READERS 256
#define REPLAY_BATCH_TX 10000
#define REPLAY_BATCH_BYTES (16u << 20) /* larger LMDB transactions spill dirty pages */
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

bool sl__exists(const char *dir, const char *name) {
  char p[4096];
  struct stat sb;
  return sl_path_join(p, sizeof p, dir, name) == 0 && stat(p, &sb) == 0;
}

/* ---- store.id --------------------------------------------------------------- */
int sl_store_read_id(const char *dir, uint8_t id[SL_STORE_ID_SIZE]) {
  char p[4096];
  uint8_t *buf = NULL;
  size_t len = 0, hl = strlen(STORE_ID_HEADER);
  int rc = sl_path_join(p, sizeof p, dir, SL_STORE_ID_FILE);
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
  sl_hex_encode(id, SL_STORE_ID_SIZE, text + n); /* fits: the header is 16 bytes */
  n += 2 * SL_STORE_ID_SIZE;
  text[n++] = '\n';
  int rc = sl_write_file_atomic(dir, SL_STORE_ID_FILE, text, (size_t)n);
  if (rc) sl_diag_error("%s/" SL_STORE_ID_FILE ": %s", dir, sl_strerror(rc));
  return rc;
}

/* ---- LMDB environment ---------------------------------------------------------- */
/* LMDB aborts the process when an assertion meets a damaged page it did
 * not expect (a cursor step onto a page that is not a leaf, ...): name the
 * file first. sl_store_check finds such pages before anything walks them. */
static void env_assert(MDB_env *env, const char *msg) {
  const sl_store *st = mdb_env_get_userctx(env);
  sl_diag_error("%s/data.mdb: LMDB met a damaged page and stops the process: %s", st ? st->dir : "?", msg);
}

int sl__env_open(sl_store *st, unsigned flags, uint64_t map_size) {
  int rc = sl__data_file_check(st);
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
  for (int i = 0; i < SL__DB_SCHEMA; i++) {
    int rc = mdb_dbi_open(txn, sl__db_names[i], flags, &st->dbi[i]);
    if (rc) {
      sl_diag_error("%s: LMDB database %s: %s", st->dir, sl__db_names[i], mdb_strerror(rc));
      return rc == MDB_NOTFOUND ? SL_ECORRUPT : sl__mdb_err(rc);
    }
  }
  return sl__schema_dbs_open(st, txn, flags);
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
  if ((rc = sl__meta_put_u64(txn, meta, "format_version", SL__FORMAT_VERSION_PLAIN)) ||
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
int sl__load_meta(sl_store *st) {
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
  if (version < SL__FORMAT_VERSION_PLAIN || version > SL__FORMAT_VERSION) {
    sl_diag_error("%s: LMDB format version %" PRIu64 " is not supported (this build reads %d..%d)", st->dir, version,
                 SL__FORMAT_VERSION_PLAIN, SL__FORMAT_VERSION);
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

int sl__lock_state_write(sl_store *st, const char *state) {
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
 * closed the store, if it was another boot's (else ""); *sync_failed says
 * whether a checkpoint's sync of data.mdb failed in the last open. */
static int lock_take(sl_store *st, char *foreign_boot, size_t n, bool *sync_failed) {
  char p[4096], buf[128];
  int rc = sl_path_join(p, sizeof p, st->dir, "writer.lock");
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
  *sync_failed = strcmp(buf, SL__LOCK_SYNC_FAILED) == 0;
  return 0;
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
  if ((rc = sl__pin_at_open(st)) || (rc = sl__schema_dbs_ensure(st))) return rc;
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
  if ((rc = sl__wbegin(st, &w))) goto out;
  while ((rc = sl_log_reader_next(r, &f)) == 0) {
    rc = sl__apply_record(&w, &st->apply_arena, f.payload, f.payload_len);
    sl_arena_reset(&st->apply_arena);
    if (rc) {
      sl_diag_error("%s: replaying txid %" PRIu64 " (segment %" PRIu64 " offset %" PRIu64 ") failed", st->dir,
                   f.txid, f.segno, f.offset);
      goto out;
    }
    bytes += f.payload_len;
    if (++n % REPLAY_BATCH_TX == 0 || bytes >= REPLAY_BATCH_BYTES) {
      ckpt_bytes += bytes;
      bytes = 0;
      if ((rc = sl__wcommit(&w))) goto out;
      /* The pinned checkpoint keeps LMDB from reusing pages: move it on
       * as commits do, so that a long replay does not grow data.mdb. */
      if (ckpt_bytes >= st->ckpt_every || sl__pin_outgrown(st)) {
        ckpt_bytes = 0;
        if ((rc = sl_store_checkpoint(st))) goto out;
      }
      if ((rc = sl__wbegin(st, &w))) goto out;
    }
  }
  if (rc != SL_EEND) goto out;
  if ((rc = sl__wcommit(&w))) goto out;
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
  sl__wabort(&w);
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
  if ((rc = sl_path_join(p, sizeof p, st->dir, "data.mdb"))) return rc;
  /* The bytes in use, not st_size: a writer that died kept data.mdb at its map size (sparse), and
   * doubling that at each power loss grew the map until the file system refused (EFBIG). */
  if (stat(p, &sb) == 0) map = SL_MAX(map, 2 * (uint64_t)sb.st_blocks * 512);
  if (unlink(p) && errno != ENOENT) goto unlink_failed;
  if ((rc = sl_path_join(p, sizeof p, st->dir, "lock.mdb"))) return rc;
  if (unlink(p) && errno != ENOENT) goto unlink_failed;
  if ((rc = sl__env_open(st, SL__ENV_FLAGS, map))) return rc;
  return lmdb_init(st, 0, seg ? seg : SL_SEG_SIZE_DEFAULT, false);
unlink_failed:
  rc = -errno;
  sl_diag_error("%s: %s", p, strerror(errno));
  return rc;
}

static int open_writer(sl_store *st) {
  char foreign[64], logdir[4096], why[512];
  bool has_log = sl__exists(st->dir, "log"), sync_failed = false;
  int rc = lock_take(st, foreign, sizeof foreign, &sync_failed);
  if (rc) return rc;
  if (has_log != !(st->flags & SL_OPEN_NOLOG)) {
    sl_diag_error("%s: %s", st->dir, has_log ? "has a log: open it without SL_OPEN_NOLOG"
                                            : "has no log of its own (a standby): open it with SL_OPEN_NOLOG");
    return SL_EINVAL;
  }
  if ((rc = sl_path_join(logdir, sizeof logdir, st->dir, "log"))) return rc;
  bool have_data = sl__exists(st->dir, "data.mdb");
  why[0] = 0;
  if (foreign[0])
    snprintf(why, sizeof why, "the machine went down while the store was open (boot %s)", foreign);
  else if (sync_failed)
    snprintf(why, sizeof why, "a sync of data.mdb failed while the store was open");
  else if (!have_data && has_log)
    snprintf(why, sizeof why, "data.mdb is missing");
  if (!have_data && !has_log) {
    sl_diag_error("%s: data.mdb is missing", st->dir);
    return SL_ECORRUPT;
  }
  if (why[0] && !has_log) { /* a standby has no checkpoint to go back to */
    sl_diag_error("%s: %s: this standby's LMDB, written without sync, may be torn or lack pages; rebuild it from "
                 "its archive", st->dir, why);
    return SL_ECORRUPT;
  }
  bool restored = false;
  if (why[0] && have_data) {
    char why_not[300];
    rc = sl__restore_checkpoint(st, logdir, why, why_not, sizeof why_not);
    if (rc != 0 && rc != SL_ECORRUPT && rc != SL_ENOTFOUND) return rc;
    restored = rc == 0;
    if (!restored) {
      size_t l = strlen(why);
      snprintf(why + l, sizeof why - l, "; the checkpoint cannot restore LMDB: %s", why_not);
    }
  }
  if (!restored) {
    rc = why[0] ? rebuild(st, logdir, why) : sl__env_open(st, SL__ENV_FLAGS, 0);
    if (rc || (rc = sl__load_meta(st))) return rc;
  }
  if (st->no_log == has_log) {
    sl_diag_error("%s: LMDB says the store %s a log, the directory disagrees", st->dir, st->no_log ? "has no" : "has");
    return SL_ECORRUPT;
  }
  int dead = 0;
  mdb_reader_check(st->env, &dead); /* slots of killed readers */
  char state[80];
  snprintf(state, sizeof state, "open %s", st->boot_id);
  if ((rc = sl__lock_state_write(st, state))) return rc;
  if (!has_log) return sl__schema_dbs_ensure(st);
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
  if (sl_path_join(p, sizeof p, dir, "writer.lock") || sl_read_file(p, 127, &text, &len) != 0) return;
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
  if (!sl__exists(st->dir, "data.mdb")) {
    sl_diag_error("%s: data.mdb is missing", st->dir);
    return -ENOENT;
  }
  int rc = sl__env_open(st, MDB_RDONLY, 0);
  if (rc || (rc = sl__load_meta(st)) || !st->no_log) return rc;
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
  if ((rc = sl_path_join(p, sizeof p, dir, "writer.lock"))) return rc;
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
  if ((rc = sl_path_join(p, sizeof p, dir, "lock.mdb"))) goto fail;
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

/* SHIPPING LOCK (store.h): byte 1 of writer.lock, by open-file-description
 * locks, which neither writers' flock of the file nor LMDB's fcntl locks
 * (another file) meet. */
static int shipping_lock(int fd, short type) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return 0;
  return errno == EAGAIN || errno == EACCES ? SL_ELOCKED : -errno;
}

int sl_store_lock_shipping(const char *dir, int *lock_fd) {
  char p[4096];
  int rc;
  *lock_fd = -1;
  if ((rc = sl_path_join(p, sizeof p, dir, "writer.lock"))) return rc;
  int fd = open(p, O_RDONLY | O_CLOEXEC); /* a read lock needs no more */
  if (fd < 0) {
    sl_diag_warn("%s: %s: a restore in place would not see this reader", p, strerror(errno));
    return 0; /* shipping goes on: the lock guards a rarer mistake than it would cause */
  }
  if ((rc = shipping_lock(fd, F_RDLCK))) {
    close(fd);
    if (rc == SL_ELOCKED) sl_diag_error("%s: being replaced (a restore in place or a rewind): ship it once that is done", dir);
    return rc;
  }
  *lock_fd = fd;
  return 0;
}

int sl_store_lock_unshipped(const char *dir, int *lock_fd) {
  int rc = sl_store_lock_unused(dir, lock_fd);
  if (rc == 0 && (rc = shipping_lock(*lock_fd, F_WRLCK))) {
    close(*lock_fd);
    *lock_fd = -1;
    sl_diag_error("%s: its log is being shipped (a `shiplog ship` of it runs): stop it first", dir);
  }
  return rc;
}

int sl_store_swap(const char *store, const char *built, const char *tag, char *kept, size_t klen) {
  char stamp[32], parent[4096];
  time_t now = (time_t)(sl_now_us() / 1000000);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  snprintf(kept, klen, "%s.%s-%s", store, tag, stamp);
  for (int i = 2; access(kept, F_OK) == 0; i++) snprintf(kept, klen, "%s.%s-%s-%d", store, tag, stamp, i);
  if (rename(store, kept)) {
    int rc = -errno;
    sl_diag_error("%s: cannot rename to %s: %s", store, kept, sl_strerror(rc));
    return rc;
  }
  if (rename(built, store)) {
    int rc = -errno;
    sl_diag_error("%s: cannot rename to %s: %s", built, store, sl_strerror(rc));
    if (rename(kept, store)) sl_diag_error("%s: cannot rename back to %s: %s", kept, store, strerror(errno));
    return rc;
  }
  const char *slash = strrchr(store, '/');
  snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash == store ? 1 : slash - store) : 1, slash ? store : ".");
  return sl_fsync_dir(parent);
}

/* ---- open / close -------------------------------------------------------------------- */
/* Give back the tail of data.mdb past the last page in use: the space
 * reserve_space (commit.c) allocated ahead of LMDB, or the whole map when an
 * older shiplog wrote through it (MDB_WRITEMAP). Readers in other processes
 * touch only pages of their snapshots, which lie below the last page in use. */
static void env_close_trimmed(sl_store *st, bool trim) {
  MDB_envinfo info;
  MDB_stat ms;
  char p[4096];
  /* trim: a writer's clean close (sl_store_close); a reader never trims */
  trim = trim && !mdb_env_info(st->env, &info) && !mdb_env_stat(st->env, &ms) &&
         !sl_path_join(p, sizeof p, st->dir, "data.mdb");
  mdb_env_close(st->env);
  st->env = NULL;
  if (trim && truncate(p, (off_t)(info.me_last_pgno + 1) * ms.ms_psize))
    sl_diag_warn("%s: cannot trim to its used size: %s", p, strerror(errno));
}

/* ---- one environment per process ------------------------------------------------------- */
struct sl__open_dir {
  dev_t dev;
  ino_t ino;
  struct sl__open_dir *next;
};
static pthread_mutex_t open_dirs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sl__open_dir *open_dirs;
static pthread_once_t open_dirs_once = PTHREAD_ONCE_INIT;

/* A forked child inherits neither the parent's fcntl locks nor the use of
 * its environments (LMDB's rule): its own opens are another process's.
 * The claims stay with the handles that own them, unlisted. */
static void open_dirs_lock(void) { pthread_mutex_lock(&open_dirs_mu); }
static void open_dirs_unlock(void) { pthread_mutex_unlock(&open_dirs_mu); }
static void open_dirs_forget(void) {
  open_dirs = NULL;
  pthread_mutex_unlock(&open_dirs_mu);
}
static void open_dirs_at_fork(void) { pthread_atfork(open_dirs_lock, open_dirs_unlock, open_dirs_forget); }

static int open_dir_claim(sl_store *st) {
  struct stat sb;
  pthread_once(&open_dirs_once, open_dirs_at_fork);
  if (stat(st->dir, &sb)) {
    int rc = -errno;
    sl_diag_error("%s: %s", st->dir, strerror(errno));
    return rc;
  }
  int rc = 0;
  pthread_mutex_lock(&open_dirs_mu);
  for (struct sl__open_dir *d = open_dirs; d; d = d->next)
    if (d->dev == sb.st_dev && d->ino == sb.st_ino) rc = SL_ELOCKED;
  if (rc == 0 && (st->open_dir = malloc(sizeof *st->open_dir))) {
    *st->open_dir = (struct sl__open_dir){sb.st_dev, sb.st_ino, open_dirs};
    open_dirs = st->open_dir;
  } else if (rc == 0) {
    rc = -ENOMEM;
  }
  pthread_mutex_unlock(&open_dirs_mu);
  if (rc == SL_ELOCKED)
    sl_diag_error("%s: open in this process already (LMDB allows one environment per store and process: use "
                 "that handle)", st->dir);
  return rc;
}

static void open_dir_release(sl_store *st) {
  if (!st->open_dir) return;
  pthread_mutex_lock(&open_dirs_mu);
  for (struct sl__open_dir **p = &open_dirs; *p; p = &(*p)->next)
    if (*p == st->open_dir) {
      *p = st->open_dir->next;
      break;
    }
  pthread_mutex_unlock(&open_dirs_mu);
  free(st->open_dir);
  st->open_dir = NULL;
}

static void store_free(sl_store *st, bool mark_clean) {
  sl__checkpointer_stop(st);
  if (st->log) sl_log_close(st->log);
  sl__pins_release(st);
  if (st->env) env_close_trimmed(st, mark_clean);
  if (st->lock_fd >= 0) {
    if (mark_clean) sl__lock_state_write(st, "closed");
    close(st->lock_fd); /* releases the flock */
  }
  open_dir_release(st); /* after the environment is closed */
  sl_arena_free(&st->tx.arena);
  sl_arena_free(&st->tx.view.scratch);
  sl_arena_free(&st->apply_arena);
  free(st->tx.ops);
  free(st->tx.w.touched);
  free(st->pend);
  free(st->pend_off);
  free(st->pend_lens);
  free(st->pend_ptrs);
  pthread_mutex_destroy(&st->wlock);
  pthread_mutex_destroy(&st->gc_mu);
  pthread_cond_destroy(&st->gc_cv);
  pthread_cond_destroy(&st->gc_join_cv);
  pthread_mutex_destroy(&st->ckpt_lock);
  pthread_mutex_destroy(&st->ckpt_mu);
  pthread_cond_destroy(&st->ckpt_cv);
  pthread_cond_destroy(&st->ckpt_done_cv);
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
  pthread_condattr_t monotonic;
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC); /* commit.c's join_wait times out on it */
  pthread_cond_init(&st->gc_join_cv, &monotonic);
  pthread_condattr_destroy(&monotonic);
  st->waiters_tail = &st->waiters;
  pthread_mutex_init(&st->ckpt_lock, NULL);
  pthread_mutex_init(&st->ckpt_mu, NULL);
  pthread_cond_init(&st->ckpt_cv, NULL);
  pthread_cond_init(&st->ckpt_done_cv, NULL);
  sl_arena_init(&st->tx.arena, NULL);
  sl_arena_init(&st->tx.view.scratch, NULL);
  sl_arena_init(&st->apply_arena, NULL);
  int rc = sl_store_read_id(dir, st->id);
  if (!rc) rc = open_dir_claim(st);
  if (!rc) rc = st->rdonly ? open_rdonly(st) : open_writer(st);
  if (!rc && !st->rdonly) rc = sl__checkpointer_start(st);
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
    sl__checkpointer_stop(st); /* after the checkpoint it runs, if any */
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
  if ((rc = sl_path_join(logdir, sizeof logdir, dir, "log"))) return rc;
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
  if ((rc = sl__env_open(&st, 0, o.map_size ? o.map_size : MAP_SIZE_DEFAULT)) ||
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
      if (sl_path_join(p, sizeof p, dir, created[i]) == 0) unlink(p);
    if (!o.no_log) sl_remove_tree(logdir);
  }
  return rc;
}
/* ---- views --------------------------------------------------------------------------------- */
int sl_view_begin(sl_store *st, sl_view **out) {
  *out = NULL;
  sl_view *v = calloc(1, sizeof *v);
  if (!v) return -ENOMEM;
  v->st = st;
  sl_arena_init(&v->scratch, NULL);
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
  sl_arena_free(&v->scratch);
  free(v);
}
