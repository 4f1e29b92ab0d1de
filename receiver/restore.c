/*
 * restore.c: the state of a stream at a txid or a time, as a complete store
 * (receiver/pitr.h gives what is reachable and the contract).
 *
 * STEPS (sl_restore), each failure leaving nothing behind:
 *   1. Share-lock the stream's snapshots folder (prune waits its turn: the
 *      chosen snapshot and segments stay), read what the stream holds: the
 *      archive's segments (first txid A, store id), its durable mark D and
 *      that txid's commit time, the reachable time R (state and status
 *      files, receiver.h), the snapshots.
 *   2. Resolve the target to a txid N (a time through
 *      sl_log_find_after_time: N = the first txid committed after T, - 1)
 *      and pick the newest base S <= N; refuse a target outside, saying
 *      what is there: past the end, before the oldest base the archive
 *      continues, or before the stream's first commit (N = 0).
 *   3. Build TARGET.restore-tmp-PID: sl_load_full of the snapshot (which
 *      checks every chunk and the trailer of the file), or an empty store
 *      with the stream's store id for S = 0; open it for writing.
 *   4. Replay archive frames S+1..N through sl_store_apply_batch in groups
 *      of about REPLAY_BATCH_BYTES (the size LMDB applies fastest, store.h);
 *      the store appends them to its own log, so the result is a complete
 *      primary store whose log continues at N+1. The reader stops at N and
 *      treats any bad frame below it as damage (tolerate_tail = false).
 *      The store is open SL_OPEN_BULK: no wait for an fdatasync per batch
 *      (the directory is thrown away unless the restore completes); one
 *      log fdatasync and one checkpoint at the end, both checked.
 *   5. Close (checkpoint), rename into place, fsync the parent. In place:
 *      STORE -> STORE.before-restore-<time>, tmp -> STORE, with STORE's
 *      writer.lock flocked from the check that no process uses it until the
 *      swap is done; a failed second rename puts STORE back.
 */
#include "pitr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "receiver_int.h"
#include "lineage.h"
#include "sl_base.h"
#include "sl_status.h"

#define REPLAY_BATCH_BYTES (8u << 20)
#define REPLAY_BATCH_TX 8192

/* What a stream holds (step 1). */
typedef struct holdings {
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t first, durable;      /* archive txids A..D (D = A - 1: none) */
  uint64_t first_commit_us;     /* commit time of A (0 if none) */
  uint64_t durable_commit_us;   /* commit time of D (0 if none) */
  uint64_t reachable_us;        /* R */
  sl_snapshot *snaps;
  size_t nsnaps;
} holdings;

static char *fmt_time(uint64_t us, char *buf, size_t len) {
  if (!us) snprintf(buf, len, "-");
  else sl_time_format(us, buf, len);
  return buf;
}

int sl__seg_header_read(const char *path, sl_seg_header *h) {
  uint8_t b[SL_SEG_HEADER_SIZE];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long n = sl_pread_full(fd, b, sizeof b, 0);
  close(fd);
  if (n < 0) return (int)n;
  return n < (long)sizeof b ? SL_ETRUNCATED : sl_seg_header_decode(b, h);
}

int sl__seg_store_id(const char *path, uint8_t id[SL_STORE_ID_SIZE]) {
  sl_seg_header h;
  int rc = sl__seg_header_read(path, &h);
  if (rc == 0) memcpy(id, h.store_id, SL_STORE_ID_SIZE);
  return rc;
}

uint64_t sl__stream_reachable_us(const char *stream_dir) {
  char path[4200], text[4096];
  uint64_t r = 0;
  snprintf(path, sizeof path, "%s/" SL__STATE_FILE, stream_dir);
  if (sl_status_load(path, text, sizeof text) == 0) r = sl_status_get_u64(text, "reachable_time_us");
  snprintf(path, sizeof path, "%s/status", stream_dir);
  if (sl_status_load(path, text, sizeof text) == 0) r = SL_MAX(r, sl_status_get_u64(text, "reachable_time_us"));
  return r;
}

static int read_holdings(const char *sdir, const char *stream, holdings *h) {
  char archive[4200], snaps[4200];
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  snprintf(archive, sizeof archive, "%s/" SL_STREAM_ARCHIVE, sdir);
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, sdir);
  int rc = sl_log_list_newest_run(archive, &segs, &nseg, NULL); /* a gap cuts off what came before it */
  if (rc) goto out;
  if (nseg == 0) {
    sl_diag_error("stream %s: its archive %s holds no segment", stream, archive);
    rc = SL_ENOTFOUND;
    goto out;
  }
  if ((rc = sl__seg_store_id(segs[0].path, h->store_id))) {
    sl_diag_error("%s: %s", segs[0].path, sl_strerror(rc));
    goto out;
  }
  h->first = segs[0].first_txid;
  if ((rc = sl__archive_durable(archive, segs, nseg, &h->durable))) goto out;
  /* Damage at the durable txid (named above by the reader) does not stop a
   * restore to a point before it: the replay meets any damage it must
   * cross and names it there. */
  if (h->durable >= h->first && (rc = sl__archive_commit_time(archive, h->durable, &h->durable_commit_us))) {
    sl_diag_warn("stream %s: cannot read the archive's durable txid %" PRIu64 " (%s): only targets before the "
                "damage can be restored; `shiplog check --data DIR --stream %s` lists what is damaged",
                stream, h->durable, sl_strerror(rc), stream);
    h->durable_commit_us = 0;
    rc = 0;
  }
  if (h->durable >= h->first && (rc = sl__archive_commit_time(archive, h->first, &h->first_commit_us))) {
    sl_diag_error("stream %s: cannot read the archive's first txid %" PRIu64 ": %s", stream, h->first,
                 sl_strerror(rc));
    goto out;
  }
  /* Everything committed before the newest archived commit is archived
   * (commit times never decrease); the primary's reports may say more. */
  h->reachable_us = SL_MAX(sl__stream_reachable_us(sdir), h->durable_commit_us ? h->durable_commit_us - 1 : 0);
  if ((rc = sl_snapshot_list(snaps, h->store_id, &h->snaps, &h->nsnaps))) goto out;
  size_t kept = 0; /* HISTORY (receiver_int.h): another history's snapshot is no base */
  for (size_t i = 0; i < h->nsnaps; i++) {
    uint64_t us;
    char why[200];
    if (sl__snapshot_in_history(archive, &h->snaps[i], h->first, h->durable, &us)) h->snaps[kept++] = h->snaps[i];
    else
      sl_diag_error("stream %s: %s left out: %s", stream, h->snaps[i].path,
                   sl__other_history_why(why, sizeof why, &h->snaps[i], us));
  }
  h->nsnaps = kept;
out:
  free(segs);
  return rc;
}

/* One line saying what the stream can be restored to. */
static void describe(const holdings *h, char *buf, size_t len) {
  char t0[40], t1[40], t2[40];
  size_t n = 0;
#define ADD(...) (n < len ? n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__) : 0)
  if (h->durable >= h->first)
    ADD("the archive holds txids %" PRIu64 "..%" PRIu64 " (committed from %s to %s; times reachable up to %s)",
        h->first, h->durable, fmt_time(h->first_commit_us, t0, sizeof t0), fmt_time(h->durable_commit_us, t1, sizeof t1),
        fmt_time(h->reachable_us, t2, sizeof t2));
  else
    ADD("the archive holds no transaction yet (it starts at txid %" PRIu64 ")", h->first);
  ADD("; bases: %s", h->first == 1 ? "the empty store (the archive starts at txid 1)" : "");
  for (size_t i = 0; i < h->nsnaps; i++)
    ADD("%ssnapshot at txid %" PRIu64 " (%s)%s", i || h->first == 1 ? ", " : "", h->snaps[i].txid,
        fmt_time(h->snaps[i].commit_us, t1, sizeof t1),
        h->snaps[i].txid + 1 >= h->first ? "" : " which the archive no longer continues");
  if (!h->nsnaps && h->first != 1) ADD("none (no snapshot)");
#undef ADD
}

/* Step 2. *base is NULL for the empty base. */
static int resolve(const sl_restore_options *o, const char *archive, const holdings *h, uint64_t *txid,
                   const sl_snapshot **base) {
  char what[64], tbuf[40], avail[2048];
  uint64_t n;
  describe(h, avail, sizeof avail);
  if (o->by_time) {
    snprintf(what, sizeof what, "time %s", sl_time_format(o->time_us, tbuf, sizeof tbuf));
    if (o->time_us > h->reachable_us) {
      sl_diag_error("stream %s: %s is past what the archive is known to hold: %s", o->stream, what, avail);
      return SL_EINVAL;
    }
    uint64_t after;
    int rc = sl_log_find_after_time_newest_run(archive, o->time_us, &after);
    if (rc) return rc;
    n = SL_MIN(after - 1, h->durable);
  } else {
    snprintf(what, sizeof what, "txid %" PRIu64, o->txid);
    n = o->txid;
    if (n > h->durable) {
      sl_diag_error("stream %s: %s is past the end of the archive: %s", o->stream, what, avail);
      return SL_EINVAL;
    }
  }
  /* Txid 0 is no state of a stream that has commits: the empty store before
   * its first one is refused like a point past the end (a stream with no
   * commit yet has that state only, and gives it). */
  if (n == 0 && h->durable >= 1) {
    sl_diag_error("stream %s: %s is before the stream's first commit: %s", o->stream, what, avail);
    return SL_EINVAL;
  }
  bool found = h->first == 1;
  *base = NULL;
  for (size_t i = 0; i < h->nsnaps; i++) {
    const sl_snapshot *s = &h->snaps[i];
    if (s->txid <= n && s->txid + 1 >= h->first && (!o->by_time || s->commit_us <= o->time_us)) {
      *base = s;
      found = true;
    }
  }
  if (!found) {
    sl_diag_error("stream %s: %s is before the first snapshot the archive continues: %s", o->stream, what, avail);
    return SL_EINVAL;
  }
  *txid = n;
  return 0;
}

/* The newest base older than base that the archive continues (and, for a
 * time target, committed by then); NULL when there is none. */
static const sl_snapshot *older_base(const sl_restore_options *o, const holdings *h, const sl_snapshot *base) {
  const sl_snapshot *found = NULL;
  for (size_t i = 0; i < h->nsnaps; i++) {
    const sl_snapshot *s = &h->snaps[i];
    if (s->txid < base->txid && s->txid + 1 >= h->first && (!o->by_time || s->commit_us <= o->time_us)) found = s;
  }
  return found;
}

int sl__restore_target_free(const char *dir) {
  struct stat sb;
  if (stat(dir, &sb)) return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(sb.st_mode)) {
    sl_diag_error("%s: exists and is not a directory", dir);
    return SL_EEXIST;
  }
  DIR *d = opendir(dir);
  if (!d) return -errno;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) rc = SL_EEXIST;
  closedir(d);
  /* An empty one is replaced by the rename at the end (rename(2) may). */
  if (rc) sl_diag_error("%s: not empty (a restore --into needs a missing or empty directory)", dir);
  return rc;
}

/* The in-place target: the stream's store, used by no process. */
static int check_in_place(const char *dir, const holdings *h, const char *stream, int *lock_fd) {
  sl_store *st;
  int rc = sl_store_open(dir, SL_OPEN_RDONLY, &st);
  if (rc) {
    sl_diag_error("%s: cannot open the store to restore in place: %s", dir, sl_strerror(rc));
    return rc;
  }
  bool same = memcmp(sl_store_id(st), h->store_id, SL_STORE_ID_SIZE) == 0;
  sl_store_close(st);
  if (!same) {
    sl_diag_error("%s is another store than the primary of stream %s: refusing to replace it", dir, stream);
    return SL_ESTOREID;
  }
  if ((rc = sl_store_lock_unshipped(dir, lock_fd)))
    sl_diag_error("%s is in use: stop the processes that have it open, then restore in place", dir);
  return rc;
}

typedef struct replayer {
  sl_store *st;
  uint8_t *buf;
  size_t len, cap;
  size_t *offs, *lens;
  const uint8_t **ptrs;
  size_t n;
} replayer;

static int replay_flush(replayer *r, uint64_t last_txid) {
  if (!r->n) return 0;
  for (size_t i = 0; i < r->n; i++) r->ptrs[i] = r->buf + r->offs[i];
  int rc = sl_store_apply_batch(r->st, r->ptrs, r->lens, r->n);
  if (rc) sl_diag_error("%s: replaying txids %" PRIu64 "..%" PRIu64 ": %s", sl_store_dir(r->st),
                       last_txid - r->n + 1, last_txid, sl_strerror(rc));
  r->n = r->len = 0;
  return rc;
}

/* The next frame; with archive_wait (restore from object storage), the
 * end of what has arrived waits for the segment holding the next txid. */
static int next_frame(const sl_restore_options *o, sl_log_reader *rd, sl_frame *f, uint64_t next, uint64_t to) {
  int rc;
  while ((rc = sl_log_reader_next(rd, f)) == SL_EEND && o->archive_wait && next <= to)
    if ((rc = o->archive_wait(o->archive_wait_arg, next))) break;
  return rc;
}

/* Step 4: archive frames from..to into st. */
static int replay(const sl_restore_options *o, const char *archive, sl_store *st, uint64_t from, uint64_t to,
                  sl_restore_result *res) {
  replayer r = {.st = st};
  sl_log_reader *rd = NULL;
  sl_frame f;
  uint64_t total = to - from + 1, last = from - 1;
  int rc = -ENOMEM;
  r.cap = REPLAY_BATCH_BYTES + (1u << 20);
  if (!(r.buf = malloc(r.cap)) || !(r.offs = malloc(REPLAY_BATCH_TX * sizeof *r.offs)) ||
      !(r.lens = malloc(REPLAY_BATCH_TX * sizeof *r.lens)) || !(r.ptrs = malloc(REPLAY_BATCH_TX * sizeof *r.ptrs)))
    goto out;
  sl_log_reader_options ro = {.max_txid = to, .tolerate_tail = false, .newest_run = true};
  if (o->cancel && atomic_load(o->cancel)) {
    rc = -ECANCELED;
    goto out;
  }
  if (o->archive_wait && (rc = o->archive_wait(o->archive_wait_arg, from))) goto out;
  if ((rc = sl_log_reader_open(archive, from, &ro, &rd))) goto out;
  if (o->replay_progress) o->replay_progress(o->progress_arg, 0, total);
  while ((rc = next_frame(o, rd, &f, last + 1, to)) == 0) {
    if ((rc = sl_log_reader_open_frame(rd, o->keyring, &f))) goto out;
    if (f.txid != last + 1) {
      sl_diag_error("%s: segment %" PRIu64 " offset %" PRIu64 ": txid %" PRIu64 ", expected %" PRIu64, archive,
                   f.segno, f.offset, f.txid, last + 1);
      rc = SL_EGAP;
      goto out;
    }
    if (r.n == REPLAY_BATCH_TX || r.len + f.payload_len > r.cap) {
      if ((rc = replay_flush(&r, last))) goto out;
      if (o->replay_progress) o->replay_progress(o->progress_arg, last - from + 1, total);
      if (o->cancel && atomic_load(o->cancel)) {
        rc = -ECANCELED;
        goto out;
      }
    }
    if (f.payload_len > r.cap) {
      uint8_t *p = realloc(r.buf, f.payload_len);
      if (!p) {
        rc = -ENOMEM;
        goto out;
      }
      r.buf = p;
      r.cap = f.payload_len;
    }
    memcpy(r.buf + r.len, f.payload, f.payload_len);
    r.offs[r.n] = r.len;
    r.lens[r.n++] = f.payload_len;
    r.len += f.payload_len;
    res->replayed_bytes += f.payload_len + SL_FRAME_HEADER_SIZE;
    res->commit_us = f.commit_us;
    last = f.txid;
  }
  if (rc != SL_EEND) goto out;
  if ((rc = replay_flush(&r, last))) goto out;
  if (last != to) {
    sl_diag_error("%s: the archive ends at txid %" PRIu64 ", before txid %" PRIu64, archive, last, to);
    rc = SL_ETRUNCATED;
    goto out;
  }
  res->replayed = total;
  if (o->replay_progress) o->replay_progress(o->progress_arg, total, total);
  rc = 0;
out:
  sl_log_reader_close(rd);
  free(r.buf);
  free(r.offs);
  free(r.lens);
  free(r.ptrs);
  return rc;
}

/* The restored log continues the stream's history after the snapshot's
 * txid (store/lineage.h ORIGIN): the epoch, cs and history the archive has
 * there, so the restored store ships to the stream as the same history.
 * An archive that no longer (or, from object storage, not yet) holds that
 * point leaves the lineage unknown: said, not fatal. */
static int carry_lineage(const sl_restore_options *o, const char *archive, uint64_t base, uint64_t txid,
                         const char *store) {
  sl_history h;
  uint64_t epoch, cs;
  char logdir[4300];
  int rc = txid > base && o->archive_wait ? o->archive_wait(o->archive_wait_arg, base + 1) : 0;
  if (rc == 0) rc = sl_log_lineage_at(archive, base, &h, &epoch, &cs);
  if (rc == SL_ENOTFOUND) {
    sl_diag_warn("%s: holds no checksum at txid %" PRIu64 ": the restored store's lineage is unknown, so the "
                "stream would refuse it as diverged (ship it to a new stream)", archive, base);
    return 0;
  }
  snprintf(logdir, sizeof logdir, "%s/log", store);
  return rc ? rc : sl_log_set_origin(logdir, epoch, cs, &h);
}

int sl__restore_build(const sl_restore_options *o, const char *archive, const uint8_t *store_id,
                      const sl_snapshot *base, uint64_t txid, const char *tmp, sl_restore_result *res, bool *base_bad) {
  sl_store *st = NULL;
  uint64_t t0 = sl_mono_ns();
  int rc;
  if (base_bad) *base_bad = false;
  sl_remove_tree(tmp); /* a leftover of a killed restore with our pid */
  if (base) {
    sl_load_options lo = {.progress = o->load_progress, .progress_arg = o->progress_arg, .keyring = o->keyring};
    rc = sl_load_full(base->path, tmp, &lo, NULL);
    if (base_bad) *base_bad = rc == SL_ECORRUPT || rc == SL_ETRUNCATED || rc == SL_ENOTLOG || rc == SL_EVERSION;
    if (rc == 0) rc = carry_lineage(o, archive, base->txid, txid, tmp);
    res->base_txid = base->txid;
    res->commit_us = base->commit_us;
    snprintf(res->base_path, sizeof res->base_path, "%s", base->path);
  } else {
    sl_store_options so = {.store_id = store_id, .first_txid = 1};
    rc = sl_store_create(tmp, &so);
  }
  if (rc || (rc = sl_store_open(tmp, SL_OPEN_BULK, &st))) goto out;
  res->load_ns = sl_mono_ns() - t0;
  t0 = sl_mono_ns();
  if (txid > res->base_txid && (rc = replay(o, archive, st, res->base_txid + 1, txid, res))) goto out;
  sl_view *v;
  sl_counts c;
  if ((rc = sl_view_begin(st, &v))) goto out;
  rc = sl_view_counts(v, &c);
  sl_view_end(v);
  if (rc == 0 && c.applied_txid != txid) {
    sl_diag_error("%s: holds txid %" PRIu64 " after the restore, expected %" PRIu64, tmp, c.applied_txid, txid);
    rc = SL_ECORRUPT;
  }
  /* SL_OPEN_BULK deferred every sync to here; its failure must fail the restore. */
  if (rc == 0 && sl_store_log(st) && (rc = sl_log_wait_durable(sl_store_log(st), txid)))
    sl_diag_error("%s: making the replayed log durable: %s", tmp, sl_strerror(rc));
  if (rc == 0) rc = sl_store_checkpoint(st);
  res->replay_ns = sl_mono_ns() - t0;
out:
  if (st) sl_store_close(st);
  return rc;
}

static void parent_of(const char *path, char *out, size_t len) {
  const char *slash = strrchr(path, '/');
  snprintf(out, len, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1, slash ? path : ".");
}

int sl_restore(const sl_restore_options *o, sl_restore_result *res) {
  char sdir[4096], archive[4200], snaps[4200], tmp[4200], parent[4096];
  const char *target = o->into ? o->into : o->in_place;
  holdings h = {0};
  const sl_snapshot *base = NULL;
  uint64_t txid = 0;
  int lock = -1, store_lock = -1, rc;
  bool made = false;
  memset(res, 0, sizeof *res);
  if (!sl_stream_name_valid(o->stream) || !o->into == !o->in_place) return SL_EINVAL;
  snprintf(sdir, sizeof sdir, "%s/" SL_STREAMS_DIR "/%s", o->data_dir, o->stream);
  snprintf(archive, sizeof archive, "%s/" SL_STREAM_ARCHIVE, sdir);
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, sdir);
  size_t tl = strlen(target);
  while (tl > 1 && target[tl - 1] == '/') tl--;
  snprintf(tmp, sizeof tmp, "%.*s.restore-tmp-%d", (int)tl, target, (int)getpid());
  parent_of(tmp, parent, sizeof parent);
  if (access(sdir, F_OK)) {
    sl_diag_error("%s: no stream %s in this data directory", o->data_dir, o->stream);
    return SL_ENOTFOUND;
  }
  if (access(snaps, F_OK) == 0 && (rc = sl__stream_lock(snaps, false, &lock))) goto out;
  if ((rc = read_holdings(sdir, o->stream, &h)) || (rc = resolve(o, archive, &h, &txid, &base))) goto out;
  if (o->into && (rc = sl__restore_target_free(o->into))) goto out;
  if (o->in_place && (rc = check_in_place(o->in_place, &h, o->stream, &store_lock))) goto out;
  made = true;
  /* A damaged base (said above by the loader) gives way to the next older
   * one the archive continues, down to the empty store when the archive
   * starts at txid 1: the target stays restorable while one good base is. */
  bool base_bad;
  while ((rc = sl__restore_build(o, archive, h.store_id, base, txid, tmp, res, &base_bad)) && base_bad) {
    const sl_snapshot *older = older_base(o, &h, base);
    if (!older && h.first != 1) break;
    sl_diag_warn("stream %s: %s is damaged (above): restoring from %s instead", o->stream, base->path,
                older ? older->path : "the empty store (the archive starts at txid 1)");
    base = older;
    memset(res, 0, sizeof *res);
  }
  if (rc) goto out;
  res->txid = txid;
  if (o->into) {
    if (rename(tmp, o->into)) {
      rc = -errno;
      sl_diag_error("%s: cannot rename to %s: %s", tmp, o->into, sl_strerror(rc));
      goto out;
    }
    made = false;
    rc = sl_fsync_dir(parent);
  } else {
    /* Step 5, in place (the parent fsynced by the swap). */
    made = (rc = sl_store_swap(o->in_place, tmp, "before-restore", res->kept, sizeof res->kept)) != 0;
  }
out:
  if (made) sl_remove_tree(tmp);
  if (store_lock >= 0) close(store_lock);
  if (lock >= 0) close(lock);
  free(h.snaps);
  return rc;
}
