/*
 * stream.c: one replication stream on the receiver -- its archive, its hot
 * standby, its worker thread and its status file -- and the registry of
 * streams.
 *
 * DIRECTORY (receiver.h): DIR/streams/NAME/{archive,standby,snapshots,status}.
 * A new stream is built under NAME~new (archive created with the hello's
 * store id and first txid; standby created only when that first txid is 1)
 * and renamed into place, then the streams directory is fsynced: a crash
 * leaves either no stream or a whole one, and leftovers are removed at start.
 * A standby that is missing at start, or torn by a power loss (store.h:
 * it is written without sync, so its open then fails with SL_ECORRUPT), is
 * rebuilt (rebuild_standby): from the newest snapshot the archive continues,
 * else from an empty store when the archive begins at txid 1; the worker
 * then replays the archive into it. Remove it to rebuild it. A standby
 * damaged otherwise (data.mdb truncated, pages that fail sl_store_check at
 * the worker's start, an apply or a snapshot meeting a damaged page) is
 * not rebuilt: the standby stops with the reason in status, naming its
 * data.mdb, and never goes on differing from the primary.
 *
 * POSITIONS (inclusive txids; first_txid - 1 means "nothing yet"),
 * applied <= durable <= received <= the archive's next txid - 1:
 *   received: appended to the archive by the owner (write(), not yet synced)
 *   durable:  covered by an fdatasync of the archive; only these are acked
 *             and only these are applied
 *   applied:  committed in the standby's LMDB. The standby records its own
 *             applied txid in the same LMDB transaction as the ops, so after
 *             any crash the worker resumes exactly at applied + 1, reading
 *             the archive: no gap, no duplicate (a duplicate would be
 *             SL_EEXIST anyway).
 * Each moves only forward while the archive stays open (reopening it after
 * a failure starts again from what recovery finds), and positions_check
 * asserts the order wherever one changes (SL_ASSERT, every build). The one
 * exception: after a tail cut (cut_damaged_tail) the standby may hold txids
 * the archive lost until the shipper sends them again, and a standby that
 * stopped keeps whatever it held.
 *
 * DERIVED STATE. The standby is derived from the archive: "what is the graph
 * after txid N" is answered by replaying archive frames first_txid..N into
 * it. The status file is derived from live state and only a report.
 *
 * WORKER THREAD (one per stream): waits on `cond`; when durable > applied
 * it reads archived frames (up to the durable txid, never beyond) and
 * applies them in groups of up to APPLY_MAX_TX transactions per LMDB
 * transaction (sl_store_apply_batch: a reader of the standby sees whole
 * transactions only), publishes `applied` and pokes the owner through an
 * eventfd, which sends Ack{applied}. It also rewrites the status file, at
 * most every STATUS_EVERY_MS while something changed. An apply failure stops
 * the standby (state "stopped", error in status and log); archiving goes on.
 *
 * KEEPER THREAD (one per stream) wakes once a second and does what may
 * take an fsync or longer, so that the worker's apply path never waits for
 * it: writes the state file (receiver.h) when it changed, syncs the
 * standby (sl_store_checkpoint: LMDB is written without sync) when it
 * applied something, takes a snapshot when one is due (options
 * snapshot_every_s / snapshot_after_bytes; pitr.h) and re-reads the
 * archive's first txid (prune runs in other processes) every
 * FIRST_TXID_EVERY_MS. A snapshot in progress is cancelled at close.
 *
 * REACHABLE TIME (receiver.h, "state"): a report of the primary's clock T
 * with its committed txid C counts once durable >= C (the latest report
 * waits in pending_* until then); a durable transaction committed at time
 * t also makes t - 1 reachable, as commit times never decrease.
 *
 * SEALED FRAMES (at-rest encryption; README "Security"). The archive stores
 * frames in segments of the batch's key; with a keyring, frames that arrive
 * in clear are sealed by the session first (receiver.c, seal_batch). The
 * worker opens sealed frames with the receiver's keyring before applying
 * them; a frame sealed with a key the keyring lacks makes the stream
 * ARCHIVE-ONLY (state "archive-only": archiving and durable acks go on, the
 * standby stays where it is); a frame that does not open (wrong key bytes,
 * a changed byte) stops the standby naming file, offset, txid and key.
 * Nothing sealed is ever applied: the store refuses it too.
 *
 * BASE SHIPPING (base.c receives it; proto/replication.proto). A stream
 * without a standby whose archive starts after txid 1 asks its shipper for
 * a base when none is held or on the way (sl__stream_needs_base); once one
 * is stored as a snapshot, the worker builds the standby from it
 * (install_base, the same rebuild as after a power loss) as soon as the
 * archive is durable up to its txid, and applies the archive from there.
 * The status file says base=receiving / pending while one is on its way.
 *
 * ARCHIVE FAILURE. An append or fdatasync error leaves the log FAILED
 * (store/log.h); the stream closes it and the next connection reopens it,
 * whose recovery cuts any torn tail, so the stream resumes once the disk
 * has room again. A newest segment damaged below the durable mark is cut
 * too, and re-sent by the shipper (TAIL REPAIR, cut_damaged_tail); an
 * archive that still cannot be opened keeps the store id its segment
 * headers carry (learn_store_id), so its shipper is refused for now with
 * the true reason, never as another store's.
 */
#include "receiver_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lineage.h"
#include "pitr.h"
#include "sl_base.h"
#include "sl_status.h"

#define APPLY_MAX_TX 4096
#define APPLY_MAX_BYTES (8u << 20)
#define STATUS_EVERY_MS 100
#define KEEPER_TICK_MS 1000
#define FIRST_TXID_EVERY_MS 10000
#define SNAPSHOT_RETRY_S 60

static char *join(const char *a, const char *b) {
  char *p;
  return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static void hex_id(const uint8_t *id, char out[2 * SL_STORE_ID_SIZE + 1]) {
  for (int i = 0; i < SL_STORE_ID_SIZE; i++) sprintf(out + 2 * i, "%02x", id[i]);
}

static bool dir_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void deadline_after_ms(struct timespec *ts, long ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* ---- lifetime -------------------------------------------------------------------- */

static void stream_free(sl__stream *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cond);
  pthread_cond_destroy(&s->owner_cond);
  pthread_cond_destroy(&s->keeper_cond);
  if (s->notify_fd >= 0) close(s->notify_fd);
  free(s->dir);
  free(s->archive_dir);
  free(s->standby_dir);
  free(s->status_path);
  free(s->snap_dir);
  sl__rx_metrics_stream_free(s);
  free(s);
}

static sl__stream *stream_new(sl__receiver *r, const char *name) {
  sl__stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->r = r;
  s->notify_fd = -1;
  snprintf(s->name, sizeof s->name, "%s", name);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cond, &ca);
  pthread_cond_init(&s->owner_cond, &ca);
  pthread_cond_init(&s->keeper_cond, &ca);
  pthread_condattr_destroy(&ca);
  s->dir = join(r->streams_dir, name);
  s->archive_dir = s->dir ? join(s->dir, SL_STREAM_ARCHIVE) : NULL;
  s->standby_dir = s->dir ? join(s->dir, SL_STREAM_STANDBY) : NULL;
  s->status_path = s->dir ? join(s->dir, "status") : NULL;
  s->snap_dir = s->dir ? join(s->dir, SL_STREAM_SNAPSHOTS) : NULL;
  s->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!s->archive_dir || !s->standby_dir || !s->status_path || !s->snap_dir || s->notify_fd < 0) {
    stream_free(s);
    return NULL;
  }
  return s;
}

/* The status of the previous run, so that counters and the primary's last
 * report survive a receiver restart. */
static void load_old_status(sl__stream *s) {
  char text[4096];
  if (sl_status_load(s->status_path, text, sizeof text) != 0) return;
  s->primary_committed = sl_status_get_u64(text, "primary_committed");
  s->primary_time_us = sl_status_get_u64(text, "primary_time_us");
  s->bytes = sl_status_get_u64(text, "bytes");
  s->batches = sl_status_get_u64(text, "batches");
  sl_status_get(text, "peer", s->peer, sizeof s->peer);
}

/* Keep reachable_us up with durable and the primary's reports (mu held). */
static void update_reachable(sl__stream *s) {
  if (s->last_commit_us > 1 && s->last_commit_us - 1 > s->reachable_us) s->reachable_us = s->last_commit_us - 1;
  if (s->pending_time_us && s->pending_committed <= s->durable) {
    if (s->pending_time_us > s->reachable_us) s->reachable_us = s->pending_time_us;
    s->pending_time_us = s->pending_committed = 0;
  }
}

/* The store id from any readable segment header of the archive (all of
 * them carry the same one), so that a stream whose archive cannot be opened
 * still knows whose it is. */
static void learn_store_id(sl__stream *s) {
  DIR *d = opendir(s->archive_dir);
  struct dirent *e;
  if (!d) return;
  while (!s->id_known && (e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    char *p;
    if (n < 5 || strcmp(e->d_name + n - 4, ".seg") != 0 || !(p = join(s->archive_dir, e->d_name))) continue;
    if (sl__seg_store_id(p, s->store_id) == 0) s->id_known = true;
    free(p);
  }
  closedir(d);
}

/* Whether a valid frame with txid `txid + 1` lies where the length of the
 * bad frame at `off` (expected to be txid) says the next one starts: the
 * rule by which recovery tells damage in the middle from a damaged tail
 * (store/log.h RECOVERY). */
static bool frame_follows(const char *path, uint64_t off, uint64_t txid) {
  uint8_t h[SL_FRAME_HEADER_SIZE], *buf = NULL;
  bool follows = false;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  if (sl_pread_full(fd, h, sizeof h, (off_t)off) == (long)sizeof h) {
    uint32_t l = sl_get_le32(h), l2;
    uint64_t next = off + SL_FRAME_HEADER_SIZE + l;
    const uint8_t *p;
    uint32_t plen;
    size_t flen;
    uint64_t t;
    if (l && l <= SL_FRAME_MAX && sl_pread_full(fd, h, sizeof h, (off_t)next) == (long)sizeof h &&
        (l2 = sl_get_le32(h)) && l2 <= SL_FRAME_MAX && (buf = malloc(SL_FRAME_HEADER_SIZE + (size_t)l2)) &&
        sl_pread_full(fd, buf, SL_FRAME_HEADER_SIZE + (size_t)l2, (off_t)next) == (long)(SL_FRAME_HEADER_SIZE + l2))
      follows = sl_frame_decode(buf, SL_FRAME_HEADER_SIZE + (size_t)l2, &p, &plen, &flen) == 0 &&
                sl_txn_peek(p, plen, &t, NULL, NULL) == 0 && t == txid + 1;
  }
  free(buf);
  close(fd);
  return follows;
}

/* TAIL REPAIR. Recovery (store/log.h) refuses a newest segment damaged
 * below its durable mark: for a primary those are acknowledged commits that
 * no one else holds. An archive's frames are copies of the primary's, so
 * a damaged TAIL is cut instead -- at the first bad frame of the newest
 * segment, when no valid frame follows it, with sl_log_truncate (durable
 * mark rewritten) -- and the rightful shipper re-sends from there (its
 * Welcome names the new durable txid). Damage in the middle (a valid frame
 * follows) or in an older segment is left alone: the frames after it are
 * history the primary may no longer hold. *last gets the txid the archive
 * now ends at; SL_ECORRUPT when it is not a damaged tail. */
static int cut_damaged_tail(sl__stream *s, uint64_t *last) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  sl_log_reader *rd = NULL;
  sl_frame f;
  int rc = sl_log_list(s->archive_dir, &segs, &n);
  if (rc || n == 0) goto out;
  *last = segs[n - 1].first_txid - 1;
  uint64_t bad_off = SL_SEG_HEADER_SIZE;
  sl_log_reader_options ro = {.tolerate_tail = true}; /* a bad frame in the newest segment ends it */
  rc = sl_log_reader_open(s->archive_dir, segs[n - 1].first_txid, &ro, &rd);
  while (rc == 0 && (rc = sl_log_reader_next(rd, &f)) == 0) {
    *last = f.txid;
    bad_off = f.offset + SL_FRAME_HEADER_SIZE + f.payload_len;
  }
  if (rc != SL_EEND) goto out;
  rc = SL_ECORRUPT;
  if (frame_follows(segs[n - 1].path, bad_off, *last + 1)) goto out;
  rc = sl_log_truncate(s->archive_dir, *last);
out:
  if (rd) sl_log_reader_close(rd);
  free(segs);
  return rc ? rc : n ? 0 : SL_ENOTFOUND;
}

/* Open (recover) the archive. Called at start and by attach after a failure. */
static int open_archive(sl__stream *s, const uint8_t *store_id) {
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  uint64_t mark = 0, cut = 0;
  int rc = sl_log_open(s->archive_dir, store_id, &s->log);
  if (rc == SL_ECORRUPT && sl_log_read_durable_mark(s->archive_dir, &mark) == 0 &&
      cut_damaged_tail(s, &cut) == 0) {
    sl_diag_warn("stream %s: archive %s: its newest segment was damaged below the durable mark (txid %llu); "
                "cut after txid %llu: the shipper sends the rest again", s->name, s->archive_dir,
                (unsigned long long)mark, (unsigned long long)cut);
    s->tail_cut_from = mark;
    rc = sl_log_open(s->archive_dir, store_id, &s->log);
  }
  if (rc) goto fail;
  rc = sl_log_list(s->archive_dir, &segs, &nseg);
  if (rc) goto fail;
  memcpy(s->store_id, sl_log_store_id(s->log), SL_STORE_ID_SIZE);
  s->id_known = true;
  s->first_txid = nseg ? segs[0].first_txid : sl_log_next_txid(s->log);
  /* Recovery synced everything that is there. */
  s->received = s->durable = sl_log_next_txid(s->log) - 1;
  s->last_commit_us = sl_log_last_commit_us(s->log);
  s->lin_last = s->durable;
  s->lin_cs = sl_log_checksum(s->log);
  sl_log_history(s->log, &s->lin_hist);
  s->lin_valid = true;
  s->log_error[0] = 0;
  free(segs);
  return 0;
fail:
  snprintf(s->log_error, sizeof s->log_error, "archive %s: %s", s->archive_dir, sl_strerror(rc));
  sl_diag_error("stream %s: cannot open archive %s: %s", s->name, s->archive_dir, sl_strerror(rc));
  if (s->log) sl_log_close(s->log);
  s->log = NULL;
  if (!s->id_known) learn_store_id(s);
  free(segs);
  return rc;
}

/* Stop applying for good (until restart); mu held. */
static void stop_standby_v(sl__stream *s, const char *fmt, va_list ap) {
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  s->standby_stopped = true;
  s->dirty = true;
  sl_diag_error("stream %s: %s; the standby stops applying, the archive goes on", s->name, s->error);
}

static void stop_standby_locked(sl__stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stop_standby_locked(sl__stream *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  stop_standby_v(s, fmt, ap);
  va_end(ap);
}

static void stop_standby(sl__stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stop_standby(sl__stream *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&s->mu);
  stop_standby_v(s, fmt, ap);
  pthread_mutex_unlock(&s->mu);
  va_end(ap);
}

/* mu held, or the stream not yet shared. A failure stops the standby,
 * except SL_ECORRUPT when torn_ok (torn by a power loss: the caller
 * rebuilds it). Returns the open's code. */
static int open_standby(sl__stream *s, bool torn_ok) {
  sl_view *v = NULL;
  sl_counts c;
  int rc = sl_store_open(s->standby_dir, SL_OPEN_NOLOG, &s->standby);
  if (rc) {
    s->standby = NULL;
    if (rc == SL_ECORRUPT && !torn_ok)
      stop_standby_locked(s, "standby %s/data.mdb is damaged (the receiver's log says how); remove %s to rebuild it "
                          "from the snapshots and the archive", s->standby_dir, s->standby_dir);
    else if (rc != SL_ECORRUPT)
      stop_standby_locked(s, "standby %s: %s", s->standby_dir, sl_strerror(rc));
    return rc;
  }
  if (memcmp(sl_store_id(s->standby), s->store_id, SL_STORE_ID_SIZE) != 0) {
    stop_standby_locked(s, "standby %s belongs to another store than the archive", s->standby_dir);
    return SL_ESTOREID;
  }
  rc = sl_view_begin(s->standby, &v);
  if (rc == 0) rc = sl_view_counts(v, &c);
  if (v) sl_view_end(v);
  if (rc) {
    stop_standby_locked(s, "standby %s: %s", s->standby_dir, sl_strerror(rc));
    return rc;
  }
  s->applied = c.applied_txid;
  s->applied_commit_us = c.last_commit_us;
  if (s->applied > s->durable && !s->tail_cut_from)
    stop_standby_locked(s, "standby %s holds txid %llu, past the archive's durable txid %llu", s->standby_dir,
                 (unsigned long long)s->applied, (unsigned long long)s->durable);
  return 0;
}

/* ---- status file ------------------------------------------------------------------ */

static const char *state_of(const sl__stream *s) {
  if (s->archive_only) return "archive-only";
  if (s->standby_stopped) return "stopped";
  return s->owner ? "connected" : "disconnected";
}

/* Keep `behind_since_us` right after any position moved (mu held). */
static void update_behind(sl__stream *s) {
  uint64_t target = SL_MAX(s->primary_committed, s->durable);
  bool behind = s->standby && !s->archive_only ? s->applied < target : s->durable < target;
  if (!behind) s->behind_since_us = 0;
  else if (!s->behind_since_us) s->behind_since_us = sl_now_us();
}

static void status_format(const sl__stream *s, char *buf, size_t len) {
  char id[2 * SL_STORE_ID_SIZE + 1], err[sizeof s->error];
  hex_id(s->store_id, id);
  snprintf(err, sizeof err, "%s", s->error[0] ? s->error : s->log_error);
  for (char *p = err; *p; p++)
    if (*p == '\n') *p = ' ';
  snprintf(buf, len,
           "stream=%s\nstate=%s\npeer=%s\nstore_id=%s\nstandby=%s\nfirst_txid=%llu\n"
           "received=%llu\ndurable=%llu\napplied=%llu\nprimary_committed=%llu\n"
           "primary_time_us=%llu\nlast_commit_us=%llu\napplied_commit_us=%llu\n"
           "behind_since_us=%llu\nbytes=%llu\nbatches=%llu\nupdated_us=%llu\nreachable_time_us=%llu\n"
           "base=%s\nerror=%s\n",
           s->name, state_of(s), s->peer, id,
           s->standby ? (s->standby_stopped ? "stopped" : "applying") : "none",
           (unsigned long long)s->first_txid, (unsigned long long)s->received,
           (unsigned long long)s->durable, (unsigned long long)s->applied,
           (unsigned long long)s->primary_committed, (unsigned long long)s->primary_time_us,
           (unsigned long long)s->last_commit_us, (unsigned long long)s->applied_commit_us,
           (unsigned long long)s->behind_since_us, (unsigned long long)s->bytes,
           (unsigned long long)s->batches, (unsigned long long)sl_now_us(),
           (unsigned long long)s->reachable_us,
           s->base_receiving ? "receiving" : s->base_txid ? "pending" : "", err);
}

/* Write the status file if it changed (mu held; released during the write). */
static void flush_status(sl__stream *s) {
  char text[2048];
  if (!s->dirty) return;
  s->dirty = false;
  s->status_written_ns = sl_mono_ns();
  status_format(s, text, sizeof text);
  pthread_mutex_unlock(&s->mu);
  int rc = sl_status_write(s->status_path, text);
  if (rc) sl_diag_warn("stream %s: cannot write %s: %s", s->name, s->status_path, sl_strerror(rc));
  pthread_mutex_lock(&s->mu);
}

/* ---- the worker: applies the archive to the standby ----------------------------- */

typedef struct applier {
  sl__stream *s;
  sl_log_reader *rd;
  sl_buf data;                 /* copies of the payloads of one group */
  size_t *offs, *lens;
  const uint8_t **ptrs;
  uint64_t *commit_us;
  uint64_t next_txid;          /* the reader's next frame */
  unsigned empty_reads;        /* reads that found nothing below durable */
} applier;

static void poke_owner(sl__stream *s) {
  uint64_t one = 1;
  if (write(s->notify_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    sl_diag_warn("stream %s: eventfd: %s", s->name, strerror(errno));
}

/* POSITIONS in order (mu held): applied <= durable <= received. */
static void positions_check(const sl__stream *s) {
  SL_ASSERT(s->durable <= s->received, "stream %s: durable %llu > received %llu", s->name,
            (unsigned long long)s->durable, (unsigned long long)s->received);
  SL_ASSERT(s->applied <= s->durable || s->tail_cut_from || s->standby_stopped,
            "stream %s: applied %llu > durable %llu", s->name, (unsigned long long)s->applied,
            (unsigned long long)s->durable);
}

/* Publish applied = last (mu not held). */
static void publish_applied(sl__stream *s, uint64_t last, uint64_t commit_us) {
  pthread_mutex_lock(&s->mu);
  SL_ASSERT(last >= s->applied, "stream %s: applied back from %llu to %llu", s->name,
            (unsigned long long)s->applied, (unsigned long long)last);
  s->applied = last;
  positions_check(s);
  s->applied_commit_us = commit_us;
  if (strncmp(s->error, "standby paused", 14) == 0) s->error[0] = 0; /* space came back */
  update_behind(s);
  s->dirty = true;
  pthread_mutex_unlock(&s->mu);
  sl__rx_metrics_applied(s, commit_us);
  poke_owner(s);
}

/* After SL_ECORRUPT from the standby: is its data.mdb damaged (the page
 * check, which logs the page)? Then the standby stops, saying so: it must
 * never go on differing from its primary. mu not held. */
static bool standby_damaged(sl__stream *s, sl_store *standby, const char *when) {
  if (sl_store_check(standby) != SL_ECORRUPT) return false;
  stop_standby(s, "standby stopped %s: %s/data.mdb is damaged (the receiver's log names the page); remove %s to "
               "rebuild it from the snapshots and the archive", when, s->standby_dir, s->standby_dir);
  return true;
}

/* Apply records one at a time after a group failed, to apply its good
 * prefix and name the record that fails. */
static void apply_singly(applier *a, size_t n, int group_rc) {
  sl__stream *s = a->s;
  uint64_t first = a->next_txid - n;
  for (size_t i = 0; i < n; i++) {
    int rc = sl_store_apply(s->standby, a->ptrs[i], a->lens[i]);
    if (rc == 0 || rc == SL_EEXIST) {
      publish_applied(s, first + i, a->commit_us[i]);
      continue;
    }
    if (rc == -ENOSPC || rc == -EDQUOT) { /* a full disk passes: paused, retried each second */
      pthread_mutex_lock(&s->mu);
      bool first_time = strncmp(s->error, "standby paused", 14) != 0;
      snprintf(s->error, sizeof s->error, "standby paused at txid %llu: %s; retrying",
               (unsigned long long)(first + i), sl_strerror(rc));
      s->dirty = true;
      pthread_mutex_unlock(&s->mu);
      if (first_time) sl_diag_error("stream %s: %s", s->name, s->error);
      return;
    }
    char when[64];
    snprintf(when, sizeof when, "at txid %llu", (unsigned long long)(first + i));
    if (rc == SL_ECORRUPT && standby_damaged(s, s->standby, when)) return;
    stop_standby(s, "standby stopped at txid %llu: %s", (unsigned long long)(first + i),
                 sl_strerror(rc));
    return;
  }
  /* Every record went in alone: the group failed for another reason. */
  if (group_rc) sl_diag_warn("stream %s: group apply failed (%s), single applies succeeded", s->name,
                            sl_strerror(group_rc));
}

static int grow_arrays(applier *a) {
  if (a->offs) return 0;
  a->offs = calloc(APPLY_MAX_TX, sizeof *a->offs);
  a->lens = calloc(APPLY_MAX_TX, sizeof *a->lens);
  a->ptrs = calloc(APPLY_MAX_TX, sizeof *a->ptrs);
  a->commit_us = calloc(APPLY_MAX_TX, sizeof *a->commit_us);
  return a->offs && a->lens && a->ptrs && a->commit_us ? 0 : -ENOMEM;
}

/* Open the sealed frame f into a->data (room reserved). Without its key the
 * stream becomes archive-only; a frame that does not open stops the
 * standby. Either way nothing of the group is applied (negative return). */
static int open_sealed(applier *a, const sl_frame *f, size_t *plen) {
  sl__stream *s = a->s;
  sl_keyring *kr = s->r->opt.keyring;
  char seg[32];
  snprintf(seg, sizeof seg, "%020llu.seg", (unsigned long long)f->segno);
  if (!kr || !sl_keyring_has(kr, f->key_id)) {
    pthread_mutex_lock(&s->mu);
    if (!s->archive_only) {
      s->archive_only = true;
      stop_standby_locked(s, "archive-only: frames sealed with key %s, not in the key file%s%s", f->key_id,
                          kr ? " " : "", kr ? sl_keyring_path(kr) : "");
    }
    pthread_mutex_unlock(&s->mu);
    return SL_ENOTFOUND;
  }
  int rc = sl_crypt_open_frame(kr, f->key_id, s->store_id, f->payload, f->payload_len,
                               a->data.data + a->data.len, plen, NULL);
  if (rc)
    stop_standby(s, "standby stopped at txid %llu: %s/%s offset %llu: sealed frame (key %s) does not open: %s",
                 (unsigned long long)f->txid, s->archive_dir, seg, (unsigned long long)f->offset, f->key_id,
                 rc == SL_EAUTH ? "authentication failed (wrong key or changed bytes)" : sl_strerror(rc));
  return rc;
}

/* Read durable frames from applied+1 and apply one group. Returns the number
 * applied (0: nothing readable yet) or a negative code (standby stopped). */
static int apply_group(applier *a, uint64_t applied, uint64_t durable) {
  sl__stream *s = a->s;
  sl_frame f;
  int rc = grow_arrays(a);
  if (rc) goto fail;
  if (a->rd && a->next_txid != applied + 1) {
    sl_log_reader_close(a->rd);
    a->rd = NULL;
  }
  if (!a->rd) {
    sl_log_reader_options ro = {.max_txid = durable, .tolerate_tail = true};
    rc = sl_log_reader_open(s->archive_dir, applied + 1, &ro, &a->rd);
    if (rc) goto fail;
    a->next_txid = applied + 1;
  } else {
    sl_log_reader_set_max(a->rd, durable);
  }
  size_t n = 0;
  a->data.len = 0;
  while (n < APPLY_MAX_TX && a->data.len < APPLY_MAX_BYTES && a->next_txid <= durable) {
    rc = sl_log_reader_next(a->rd, &f);
    if (rc == SL_EEND) break;
    if (rc) goto fail;
    if (f.txid != a->next_txid) {
      rc = SL_EGAP;
      sl_diag_error("stream %s: archive frame has txid %llu, expected %llu", s->name,
                   (unsigned long long)f.txid, (unsigned long long)a->next_txid);
      goto fail;
    }
    rc = sl_buf_reserve(&a->data, a->data.len + f.payload_len);
    if (rc) goto fail;
    size_t plen = f.payload_len;
    if (f.key_id) {
      if ((rc = open_sealed(a, &f, &plen))) return rc;
    } else {
      memcpy(a->data.data + a->data.len, f.payload, f.payload_len);
    }
    a->offs[n] = a->data.len;
    a->lens[n] = plen;
    a->commit_us[n] = f.commit_us;
    a->data.len += plen;
    a->next_txid++;
    n++;
  }
  if (n == 0) {
    /* Durable frames must be readable; a reader that keeps finding none
     * (e.g. it saw a segment before its rotation settled) is reopened,
     * and after that the standby is stopped rather than spun. */
    if (++a->empty_reads > 100) {
      rc = SL_ECORRUPT;
      sl_diag_error("stream %s: archive %s: durable txid %llu cannot be read", s->name,
                   s->archive_dir, (unsigned long long)(applied + 1));
      goto fail;
    }
    sl_log_reader_close(a->rd);
    a->rd = NULL;
    return 0;
  }
  a->empty_reads = 0;
  for (size_t i = 0; i < n; i++) a->ptrs[i] = a->data.data + a->offs[i];
  rc = sl_store_apply_batch(s->standby, a->ptrs, a->lens, n);
  if (rc) {
    apply_singly(a, n, rc);
    return -1;
  }
  publish_applied(s, a->next_txid - 1, a->commit_us[n - 1]);
  return (int)n;
fail:
  stop_standby(s, "standby stopped at txid %llu: reading archive %s: %s",
               (unsigned long long)(applied + 1), s->archive_dir, sl_strerror(rc));
  return rc;
}

static int rebuild_standby(sl__stream *s, const char *why);

/* The key id a snapshot file is sealed with ("" when plaintext or unreadable). */
static void snapshot_key(const char *path, char key[SL_KEY_ID_SIZE + 1]) {
  uint8_t raw[SL_DUMP_HEADER_SIZE];
  sl_dump_header h;
  key[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (sl_pread_full(fd, raw, sizeof raw, 0) == (long)sizeof raw && sl_dump_header_decode(raw, &h) == 0)
    snprintf(key, SL_KEY_ID_SIZE + 1, "%s", h.key_id);
  close(fd);
}

/* BASE SHIPPING: build the standby from the base the archive now reaches
 * (mu held; released while building). A base sealed with a key this
 * receiver lacks makes the stream archive-only, as sealed frames do. */
static void install_base(sl__stream *s, uint64_t txid) {
  char path[4096], key[SL_KEY_ID_SIZE + 1];
  sl_keyring *kr = s->r->opt.keyring;
  snprintf(path, sizeof path, "%s/%020llu" SL_SNAP_SUFFIX, s->snap_dir, (unsigned long long)txid);
  pthread_mutex_unlock(&s->mu);
  snapshot_key(path, key);
  bool keyless = key[0] && !(kr && sl_keyring_has(kr, key));
  int rc = keyless ? SL_ENOTFOUND : rebuild_standby(s, "is built from the base the primary sent");
  pthread_mutex_lock(&s->mu);
  if (keyless) {
    s->archive_only = true;
    stop_standby_locked(s, "archive-only: the base at txid %llu is sealed with key %s, not in the key file%s%s",
                        (unsigned long long)txid, key, kr ? " " : "", kr ? sl_keyring_path(kr) : "");
  } else if (rc) {
    stop_standby_locked(s, "the standby cannot be built from the base at txid %llu: %s", (unsigned long long)txid,
                        sl_strerror(rc));
  } else if (open_standby(s, false) == 0) {
    update_behind(s);
  }
  s->dirty = true;
}

static void *worker_main(void *arg) {
  sl__stream *s = arg;
  applier a = {.s = s};
  sl_diag_context(s->name, NULL);
  /* Before the first apply: the standby's pages (a data.mdb damaged while
   * the receiver was down would take writes and differ in silence). */
  pthread_mutex_lock(&s->mu);
  sl_store *standby = s->standby_stopped ? NULL : s->standby;
  pthread_mutex_unlock(&s->mu);
  if (standby) standby_damaged(s, standby, "at start");
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    if (!s->standby && !s->standby_stopped && s->base_txid && s->durable >= s->base_txid) {
      uint64_t txid = s->base_txid;
      s->base_txid = 0;
      install_base(s, txid);
      continue;
    }
    if (s->standby && !s->standby_stopped && s->applied < s->durable) {
      uint64_t applied = s->applied, durable = s->durable;
      pthread_mutex_unlock(&s->mu);
      int n = apply_group(&a, applied, durable);
      pthread_mutex_lock(&s->mu);
      if (n <= 0) { /* < 0 and still applying: paused by a full disk */
        struct timespec ts;
        deadline_after_ms(&ts, n < 0 ? 1000 : 5);
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
      }
      /* Status goes out between groups too while catching up. */
      if (sl_mono_ns() - s->status_written_ns >= (uint64_t)STATUS_EVERY_MS * 1000000u)
        flush_status(s);
      continue;
    }
    uint64_t since_ms = (sl_mono_ns() - s->status_written_ns) / 1000000u;
    if (s->dirty && since_ms >= STATUS_EVERY_MS) {
      flush_status(s);
      continue;
    }
    struct timespec ts;
    deadline_after_ms(&ts, s->dirty ? (long)(STATUS_EVERY_MS - since_ms) : 1000);
    pthread_cond_timedwait(&s->cond, &s->mu, &ts);
  }
  s->dirty = true;
  flush_status(s);
  pthread_mutex_unlock(&s->mu);
  if (a.rd) sl_log_reader_close(a.rd);
  sl_buf_free(&a.data);
  free(a.offs);
  free(a.lens);
  free(a.ptrs);
  free(a.commit_us);
  return NULL;
}

static int start_thread(sl__stream *s, pthread_t *t, bool *running, void *(*fn)(void *), const char *what) {
  int rc = -pthread_create(t, NULL, fn, s);
  if (rc) {
    sl_diag_error("stream %s: cannot start its %s thread: %s", s->name, what, sl_strerror(rc));
    return rc;
  }
  *running = true;
  return 0;
}

static void stream_stop_threads(sl__stream *s) {
  pthread_mutex_lock(&s->mu);
  s->stop = true;
  s->owner = NULL;
  s->dirty = true;
  atomic_store(&s->snap_cancel, true);
  pthread_cond_broadcast(&s->cond);
  pthread_cond_broadcast(&s->keeper_cond);
  pthread_mutex_unlock(&s->mu);
  if (s->worker_running) pthread_join(s->worker, NULL);
  if (s->keeper_running) pthread_join(s->keeper, NULL);
  s->worker_running = s->keeper_running = false;
}

/* ---- the keeper: state file, standby syncs, snapshots ---------------------------- */

typedef struct keeper {
  sl__stream *s;
  uint64_t state_reachable, state_durable; /* as last written */
  uint64_t synced_applied;
  uint64_t snap_txid, snap_us;             /* the newest snapshot, or (0, start) */
  uint64_t snap_retry_us;
  uint64_t first_txid_ns;
} keeper;

static void write_state(keeper *k, uint64_t reachable, uint64_t durable) {
  char text[128];
  if (reachable == k->state_reachable && durable == k->state_durable) return;
  int n = snprintf(text, sizeof text, "durable=%llu\nreachable_time_us=%llu\n", (unsigned long long)durable,
                   (unsigned long long)reachable);
  int rc = sl_write_file_atomic(k->s->dir, SL__STATE_FILE, text, (size_t)n);
  if (rc) {
    sl_diag_warn("stream %s: cannot write %s/%s: %s", k->s->name, k->s->dir, SL__STATE_FILE, sl_strerror(rc));
    return;
  }
  k->state_reachable = reachable;
  k->state_durable = durable;
}

/* Archive bytes after txid (about: whole segments that hold any later txid). */
static uint64_t archive_bytes_after(const char *archive, uint64_t txid) {
  sl_seg_info *segs;
  size_t n;
  uint64_t total = 0;
  if (sl_log_list(archive, &segs, &n)) return 0;
  for (size_t i = 0; i < n; i++)
    if (i + 1 == n || segs[i + 1].first_txid - 1 > txid) total += segs[i].size - SL_SEG_HEADER_SIZE;
  free(segs);
  return total;
}

static void keeper_init(keeper *k) {
  sl__stream *s = k->s;
  sl_snapshot *snaps;
  size_t n;
  k->snap_us = sl_now_us();
  sl__snapshots_clean(s->snap_dir);
  if (sl_snapshot_list(s->snap_dir, s->store_id, &snaps, &n) == 0 && n) {
    k->snap_txid = snaps[n - 1].txid;
    k->snap_us = snaps[n - 1].created_us;
    free(snaps);
  }
  uint64_t bytes = archive_bytes_after(s->archive_dir, k->snap_txid);
  pthread_mutex_lock(&s->mu);
  s->snap_bytes = bytes;
  pthread_mutex_unlock(&s->mu);
  k->first_txid_ns = sl_mono_ns();
}

static void maybe_snapshot(keeper *k, sl_store *standby, uint64_t applied, uint64_t bytes) {
  sl__stream *s = k->s;
  const sl_receiver_options *o = &s->r->opt;
  uint64_t now = sl_now_us();
  bool by_time = o->snapshot_every_s && now - k->snap_us >= o->snapshot_every_s * 1000000u;
  bool by_bytes = o->snapshot_after_bytes && bytes >= o->snapshot_after_bytes;
  if (!standby || applied <= k->snap_txid || !(by_time || by_bytes) || now < k->snap_retry_us) return;
  sl_snapshot_options so = {.cancel = &s->snap_cancel, .keyring = s->r->opt.keyring};
  sl_snapshot snap;
  bool existed;
  uint64_t t0 = sl_mono_ns();
  int rc = sl_snapshot_take(standby, s->snap_dir, &so, &snap, &existed);
  if (rc) {
    if (rc == SL_ECORRUPT && standby_damaged(s, standby, "taking a snapshot")) return;
    if (rc != -ECANCELED)
      sl_diag_warn("stream %s: snapshot failed (%s); next try in %d s", s->name, sl_strerror(rc), SNAPSHOT_RETRY_S);
    k->snap_retry_us = now + SNAPSHOT_RETRY_S * 1000000ull;
    return;
  }
  pthread_mutex_lock(&s->mu);
  s->snap_bytes -= SL_MIN(bytes, s->snap_bytes); /* what arrived meanwhile still counts */
  pthread_mutex_unlock(&s->mu);
  k->snap_txid = snap.txid;
  k->snap_us = now;
  sl_diag_info("stream %s: snapshot at txid %llu (%s): %s, %.1f MiB in %.1f s", s->name,
              (unsigned long long)snap.txid, by_bytes ? "archive grew" : "schedule", snap.path,
              (double)snap.bytes / (1 << 20), (double)(sl_mono_ns() - t0) / 1e9);
}

/* The archive's first txid moves when prune (another process) removes segments. */
static void refresh_first_txid(keeper *k) {
  sl_seg_info *segs;
  size_t n;
  if (sl_mono_ns() - k->first_txid_ns < FIRST_TXID_EVERY_MS * 1000000ull) return;
  k->first_txid_ns = sl_mono_ns();
  if (sl_log_list(k->s->archive_dir, &segs, &n) != 0) return;
  if (n) {
    pthread_mutex_lock(&k->s->mu);
    if (k->s->first_txid != segs[0].first_txid) k->s->dirty = true;
    k->s->first_txid = segs[0].first_txid;
    pthread_mutex_unlock(&k->s->mu);
  }
  free(segs);
}

static void *keeper_main(void *arg) {
  sl__stream *s = arg;
  keeper k = {.s = s, .synced_applied = UINT64_MAX};
  keeper_init(&k);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    uint64_t reachable = s->reachable_us, durable = s->durable, applied = s->applied, bytes = s->snap_bytes;
    sl_store *standby = s->standby_stopped ? NULL : s->standby;
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    write_state(&k, reachable, durable);
    if (stop) break;
    if (standby && applied != k.synced_applied) {
      int rc = sl_store_checkpoint(standby);
      if (rc) sl_diag_warn("stream %s: standby sync: %s", s->name, sl_strerror(rc));
      else k.synced_applied = applied;
    }
    maybe_snapshot(&k, standby, applied, bytes);
    refresh_first_txid(&k);
    pthread_mutex_lock(&s->mu);
    if (!s->stop) {
      struct timespec ts;
      deadline_after_ms(&ts, KEEPER_TICK_MS);
      pthread_cond_timedwait(&s->keeper_cond, &s->mu, &ts);
    }
  }
  return NULL;
}

/* The newest snapshot the archive continues and the standby may start from
 * (its txid + 1 within the archive, not past the durable txid); loading
 * a damaged one is logged and the next older one tried. 0: none loaded. */
static int load_snapshot_standby(sl__stream *s, const char *tmp, uint64_t *txid) {
  sl_snapshot *snaps;
  size_t n;
  int rc = sl_snapshot_list(s->snap_dir, s->store_id, &snaps, &n);
  *txid = 0;
  if (rc) return rc;
  rc = SL_ENOTFOUND;
  for (size_t i = n; i-- > 0;) {
    if (snaps[i].txid + 1 < s->first_txid || snaps[i].txid > s->durable) continue;
    sl_load_options lo = {.no_log = true, .keyring = s->r->opt.keyring};
    sl_remove_tree(tmp);
    if ((rc = sl_load_full(snaps[i].path, tmp, &lo, NULL)) == 0) {
      *txid = snaps[i].txid;
      break;
    }
    sl_diag_warn("stream %s: cannot rebuild the standby from %s: %s", s->name, snaps[i].path, sl_strerror(rc));
  }
  free(snaps);
  return rc;
}

/* The standby is derived from the archive: when it is missing (an operator
 * removed it to rebuild it) or was torn by a power loss, build it anew
 * under standby~new, renamed into place: from the newest usable snapshot,
 * else empty when the archive starts at txid 1; the worker then replays
 * the archive into it. SL_ENOTFOUND when neither is possible. */
static int rebuild_standby(sl__stream *s, const char *why) {
  char *tmp = NULL;
  uint64_t base = 0;
  int rc = -ENOMEM;
  if (asprintf(&tmp, "%s" SL__NEW_SUFFIX, s->standby_dir) < 0) return rc;
  rc = load_snapshot_standby(s, tmp, &base);
  if (rc && s->first_txid == 1) {
    sl_store_options so = {.store_id = s->store_id, .first_txid = 1, .no_log = true};
    rc = sl_remove_tree(tmp);
    if (rc == 0) rc = sl_store_create(tmp, &so);
  }
  if (rc == 0) rc = sl_remove_tree(s->standby_dir);
  if (rc == 0 && rename(tmp, s->standby_dir) != 0) rc = -errno;
  if (rc == 0) rc = sl_fsync_dir(s->dir);
  if (rc) {
    sl_diag_error("stream %s: the standby %s %s and cannot be rebuilt: %s", s->name, s->standby_dir, why,
                 rc == SL_ENOTFOUND ? "no snapshot continued by the archive, which does not start at txid 1"
                                    : sl_strerror(rc));
    sl_remove_tree(tmp);
  } else {
    sl_diag_warn("stream %s: the standby %s %s: rebuilt from %s; replaying the archive from txid %llu", s->name,
                s->standby_dir, why, base ? "the newest snapshot" : "an empty store",
                (unsigned long long)base + 1);
  }
  free(tmp);
  return rc;
}

static bool has_snapshot(sl__stream *s) {
  sl_snapshot *snaps;
  size_t n;
  if (sl_snapshot_list(s->snap_dir, s->store_id, &snaps, &n) || !n) return false;
  free(snaps);
  return true;
}

/* At load: open the standby, rebuilding it when missing or torn by a power
 * loss. Other damage (a truncated or damaged data.mdb) is no power loss:
 * the standby stops, naming it, and is not rebuilt behind the operator's
 * back (who removes it to rebuild it). */
static void prepare_standby(sl__stream *s) {
  char *data = join(s->standby_dir, "data.mdb");
  struct stat sb;
  bool exists = dir_exists(s->standby_dir);
  bool no_data = exists && data && stat(data, &sb) != 0 && errno == ENOENT; /* removed: rebuilt like the directory */
  bool torn = exists && !no_data && sl_store_power_lost(s->standby_dir);
  free(data);
  if (exists && !no_data && (open_standby(s, torn) != SL_ECORRUPT || !torn)) {
    if (!s->standby || s->applied <= s->durable) return;
    /* It applied frames of a tail that was cut (TAIL REPAIR): rebuilt, so
     * that it holds only what the archive holds. */
    sl_store_close(s->standby);
    s->standby = NULL;
    if (rebuild_standby(s, "was ahead of the archive's cut tail") == 0) open_standby(s, false);
    else stop_standby_locked(s, "standby %s is ahead of the archive and cannot be rebuilt", s->standby_dir);
    return;
  }
  if (!exists && s->first_txid != 1 && !has_snapshot(s)) return; /* a stream without a standby */
  if (!exists && s->first_txid != 1) {
    sl__bases b;
    sl__stream_bases(s->snap_dir, s->store_id, s->first_txid, s->durable, &b);
    if (b.newest > s->durable) { /* a shipped base the archive has not reached yet: the worker builds it */
      s->base_txid = b.newest;
      return;
    }
  }
  const char *why = no_data ? "has no data.mdb" : exists ? "was torn by a power loss" : "was missing";
  if (rebuild_standby(s, why) == 0) open_standby(s, false);
  else if (exists) stop_standby_locked(s, "standby %s %s and cannot be rebuilt", s->standby_dir, why);
}

/* A stream directory that exists: open archive and standby, start the threads. */
static int stream_load(sl__receiver *r, const char *name, sl__stream **out) {
  sl__stream *s = stream_new(r, name);
  if (!s) return -ENOMEM;
  load_old_status(s);
  sl__rx_metrics_stream(s);
  s->reachable_us = sl__stream_reachable_us(s->dir);
  if (open_archive(s, NULL) == 0) prepare_standby(s);
  update_behind(s);
  update_reachable(s);
  s->dirty = true;
  int rc = start_thread(s, &s->worker, &s->worker_running, worker_main, "worker");
  if (rc == 0) rc = start_thread(s, &s->keeper, &s->keeper_running, keeper_main, "keeper");
  if (rc) {
    stream_stop_threads(s);
    if (s->standby) sl_store_close(s->standby);
    if (s->log) sl_log_close(s->log);
    stream_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void stream_close(sl__stream *s) {
  stream_stop_threads(s);
  if (s->standby) sl_store_close(s->standby);
  if (s->log) sl_log_close(s->log);
  stream_free(s);
}

/* ---- registry -------------------------------------------------------------------- */

static int registry_add(sl__receiver *r, sl__stream *s) {
  if (r->nstreams == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    sl__stream **p = realloc(r->streams, cap * sizeof *p);
    if (!p) return -ENOMEM;
    r->streams = p;
    r->cap = cap;
  }
  r->streams[r->nstreams++] = s;
  return 0;
}

int sl__streams_open_all(sl__receiver *r) {
  DIR *d = opendir(r->streams_dir);
  if (!d) {
    int rc = -errno;
    sl_diag_error("cannot read %s: %s", r->streams_dir, sl_strerror(rc));
    return rc;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    size_t n = strlen(name), sn = strlen(SL__NEW_SUFFIX);
    if (n > sn && strcmp(name + n - sn, SL__NEW_SUFFIX) == 0) {
      char *p = join(r->streams_dir, name);
      sl_diag_warn("removing %s, a stream whose creation was interrupted", p ? p : name);
      if (p) sl_remove_tree(p);
      free(p);
      continue;
    }
    if (!sl_stream_name_valid(name)) continue;
    char *p = join(r->streams_dir, name);
    bool isdir = p && dir_exists(p);
    free(p);
    if (!isdir) continue;
    sl__stream *s;
    rc = stream_load(r, name, &s);
    if (rc) break;
    rc = registry_add(r, s);
    if (rc) {
      stream_close(s);
      break;
    }
    sl_diag_info("stream %s: archive %llu..%llu, applied %llu", s->name,
                (unsigned long long)s->first_txid, (unsigned long long)s->durable,
                (unsigned long long)s->applied);
  }
  closedir(d);
  return rc;
}

void sl__streams_close_all(sl__receiver *r) {
  for (size_t i = 0; i < r->nstreams; i++) stream_close(r->streams[i]);
  free(r->streams);
  r->streams = NULL;
  r->nstreams = r->cap = 0;
}

/* Build NAME~new/{archive,standby,snapshots} and rename it to NAME. */
static int stream_create(sl__receiver *r, const char *name, const uint8_t *store_id,
                         uint64_t first_txid, uint64_t start_cs, const sl_history *hist) {
  char *tmp = NULL, *final = NULL, *archive = NULL, *standby = NULL, *snaps = NULL;
  char tmpname[80];
  int rc = -ENOMEM;
  snprintf(tmpname, sizeof tmpname, "%s%s", name, SL__NEW_SUFFIX);
  tmp = join(r->streams_dir, tmpname);
  final = join(r->streams_dir, name);
  if (!tmp || !final) goto fail;
  archive = join(tmp, SL_STREAM_ARCHIVE);
  standby = join(tmp, SL_STREAM_STANDBY);
  snaps = join(tmp, SL_STREAM_SNAPSHOTS);
  if (!archive || !standby || !snaps) goto fail;
  rc = sl_remove_tree(tmp);
  if (rc == 0) rc = sl_mkdir_p(archive);
  if (rc == 0) rc = sl_mkdir_p(snaps);
  if (rc) goto fail;
  sl_log_options lo = {.first_txid = first_txid, .segment_size = r->opt.segment_size,
                      .prev_checksum = start_cs};
  memcpy(lo.store_id, store_id, SL_STORE_ID_SIZE);
  /* The shipper's epochs up to where the archive begins are its past too. */
  sl_history base = {0};
  for (size_t i = 0; hist && i < hist->n && hist->e[i].first_txid <= first_txid; i++) base.e[base.n++] = hist->e[i];
  lo.epoch = sl_history_epoch(&base);
  rc = sl_log_create(archive, &lo);
  if (rc == 0 && base.n) rc = sl_history_save(archive, &base);
  if (rc) goto fail;
  if (first_txid == 1) {
    sl_store_options so = {.store_id = store_id, .first_txid = 1, .no_log = true};
    rc = sl_store_create(standby, &so);
    if (rc) goto fail;
  }
  if (rename(tmp, final) != 0) {
    rc = -errno;
    goto fail;
  }
  rc = sl_fsync_dir(r->streams_dir);
  if (rc) goto fail;
  free(tmp);
  free(final);
  free(archive);
  free(standby);
  free(snaps);
  return 0;
fail:
  sl_diag_error("stream %s: cannot create it in %s: %s", name, r->streams_dir, sl_strerror(rc));
  if (tmp) sl_remove_tree(tmp);
  free(tmp);
  free(final);
  free(archive);
  free(standby);
  free(snaps);
  return rc;
}

int sl__stream_get(sl__receiver *r, const char *name, const uint8_t *store_id,
                   uint64_t first_txid, uint64_t start_cs, const sl_history *hist,
                   sl__stream **out, char *why, size_t whylen) {
  int rc = 0;
  sl__stream *s = NULL;
  why[0] = 0;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nstreams; i++)
    if (strcmp(r->streams[i]->name, name) == 0) s = r->streams[i];
  if (s) {
    pthread_mutex_lock(&s->mu);
    /* An archive that cannot be opened (now): try again; its store id
     * comes from the segment headers even when that fails. A stream whose
     * owner is not known is refused for now (transient), never for good. */
    if (!s->log && !s->owner) open_archive(s, s->id_known ? s->store_id : NULL);
    if (!s->id_known) {
      snprintf(why, whylen, "stream %s: %s", name, s->log_error);
      rc = SL_ECORRUPT;
    } else if (memcmp(s->store_id, store_id, SL_STORE_ID_SIZE) != 0) {
      char have[2 * SL_STORE_ID_SIZE + 1], got[2 * SL_STORE_ID_SIZE + 1];
      hex_id(s->store_id, have);
      hex_id(store_id, got);
      snprintf(why, whylen, "stream %s belongs to store %s, not %s", name, have, got);
      rc = SL_ESTOREID;
    }
    pthread_mutex_unlock(&s->mu);
  } else {
    rc = stream_create(r, name, store_id, first_txid, start_cs, hist);
    if (rc == 0) rc = stream_load(r, name, &s);
    if (rc == 0) {
      rc = registry_add(r, s);
      if (rc) stream_close(s);
    }
    if (rc) snprintf(why, whylen, "cannot create stream %s: %s", name, sl_strerror(rc));
    else
      sl_diag_info("stream %s: created, archive starts at txid %llu%s", name,
                  (unsigned long long)first_txid, first_txid == 1 ? ", with a standby" : "");
  }
  pthread_mutex_unlock(&r->mu);
  if (rc == 0) *out = s;
  return rc;
}

/* ---- the owner's side -------------------------------------------------------------- */

/* ONE SHIPPER PER STREAM. Two shippers for one stream used to take it
 * from each other on every reconnect, with only warnings. Now the owner
 * keeps it while it is alive: the newcomer waits until the owner either
 * receives a message (a data batch or the heartbeat every idle shipper
 * sends) -- then the newcomer is refused for good, naming the owner -- or
 * leaves (the usual case of a shipper that reconnects: its old connection
 * closed; the owner's thread has only to notice), or stays silent for
 * live_ms since it was last heard (the receiver's timeout_ms, after which
 * it would be closed anyway): dead, so it is shut down and the newcomer
 * takes over, as before. */
#define ATTACH_POLL_MS 50

int sl__stream_attach(sl__stream *s, sl_conn *c, int live_ms, char *why, size_t whylen) {
  int rc = 0;
  struct timespec ts;
  uint64_t arrived = sl_mono_ns(), live_ns = (uint64_t)live_ms * 1000000u;
  pthread_mutex_lock(&s->mu);
  while (s->owner && !s->stop) {
    uint64_t heard = atomic_load(&s->owner_rx_ns), now = sl_mono_ns();
    if (heard > arrived) {
      snprintf(why, whylen, "stream %s is live: it is shipped from %s, heard from %llu ms ago; a second shipper "
               "for it is refused while the first one is (stop that one, or wait until it has been silent "
               "for %d ms)", s->name, s->peer, (unsigned long long)(now - heard) / 1000000u, live_ms);
      rc = -EBUSY;
      goto out;
    }
    if (now >= heard + live_ns) break;
    deadline_after_ms(&ts, (long)SL_MIN((uint64_t)ATTACH_POLL_MS, (heard + live_ns - now) / 1000000u + 1));
    pthread_cond_timedwait(&s->owner_cond, &s->mu, &ts);
  }
  if (s->owner && !s->stop) {
    sl_diag_warn("stream %s: %s takes over from %s, silent for %d ms", s->name, sl_conn_peer(c), s->peer, live_ms);
    sl_conn_shutdown(s->owner);
    deadline_after_ms(&ts, live_ms);
    while (s->owner && !s->stop)
      if (pthread_cond_timedwait(&s->owner_cond, &s->mu, &ts) == ETIMEDOUT) break;
  }
  if (s->owner || s->stop) {
    snprintf(why, whylen, "stream %s: the previous connection from %s has not left yet", s->name, s->peer);
    rc = SL_ELOCKED;
    goto out;
  }
  if (!s->log) {
    rc = open_archive(s, s->store_id);
    if (rc) {
      snprintf(why, whylen, "stream %s: %s", s->name, s->log_error);
      goto out;
    }
  }
  /* An archive that opened only now (sl__stream_get or above): its standby. */
  if (!s->standby && !s->standby_stopped) prepare_standby(s);
  s->owner = c;
  atomic_store(&s->owner_rx_ns, sl_mono_ns());
  snprintf(s->peer, sizeof s->peer, "%s", sl_conn_peer(c));
  /* The last session's trouble is history, unless it was the archive's
   * (a full disk): that one holds until something is durable again, so
   * that status never looks healthy while every batch fails. */
  if (!s->standby_stopped && !s->archive_failing) s->error[0] = 0;
  s->dirty = true;
  uint64_t drain;
  if (read(s->notify_fd, &drain, sizeof drain) < 0 && errno != EAGAIN)
    sl_diag_warn("stream %s: eventfd: %s", s->name, strerror(errno));
  pthread_cond_signal(&s->cond);
out:
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void sl__stream_heard(sl__stream *s) { atomic_store(&s->owner_rx_ns, sl_mono_ns()); }

void sl__stream_detach(sl__stream *s, sl_conn *c) {
  pthread_mutex_lock(&s->mu);
  if (s->owner == c) {
    s->owner = NULL;
    s->dirty = true;
    pthread_cond_broadcast(&s->owner_cond);
    pthread_cond_signal(&s->cond);
  }
  pthread_mutex_unlock(&s->mu);
}

/* After an append or sync failure: the log is FAILED; close it so that the
 * next owner reopens (recovers) it. Only the owner calls this. */
static void archive_failed(sl__stream *s, int rc) {
  pthread_mutex_lock(&s->mu);
  snprintf(s->log_error, sizeof s->log_error, "archive %s: %s", s->archive_dir, sl_strerror(rc));
  snprintf(s->error, sizeof s->error, "%s", s->log_error);
  s->archive_failing = true;
  sl_log *log = s->log;
  s->log = NULL;
  s->received = s->durable;
  s->dirty = true;
  positions_check(s);
  pthread_mutex_unlock(&s->mu);
  sl_log_close(log);
}

uint64_t sl__stream_next_txid(sl__stream *s) { return sl_log_next_txid(s->log); }

void sl__stream_set_key(sl__stream *s, const char *key_id) {
  if (s->log && strcmp(sl_log_key_id(s->log), key_id ? key_id : "")) sl_log_set_key_id(s->log, key_id);
}

/* Publish received = last, the archive's newest txid (owner; mu not held). */
static void set_received(sl__stream *s, uint64_t last) {
  pthread_mutex_lock(&s->mu);
  SL_ASSERT(last >= s->received, "stream %s: received back from %llu to %llu", s->name,
            (unsigned long long)s->received, (unsigned long long)last);
  s->received = last;
  positions_check(s);
  pthread_mutex_unlock(&s->mu);
}

int sl__stream_append(sl__stream *s, const uint8_t *raw, size_t len) {
  uint64_t next = sl_log_next_txid(s->log);
  size_t off = 0;
  while (off < len) {
    const uint8_t *payload;
    uint32_t plen;
    size_t flen;
    uint64_t txid, ts, epoch;
    int rc = sl_frame_decode(raw + off, len - off, &payload, &plen, &flen);
    if (rc == 0) rc = sl_txn_peek(payload, plen, &txid, &ts, &epoch);
    if (rc) return rc; /* sl_batch_open checked these already */
    off += flen;
    if (txid < next) continue;
    rc = sl_log_append(s->log, payload, plen);
    if (rc) {
      sl_diag_error("stream %s: archive %s: append txid %llu: %s", s->name, s->archive_dir,
                   (unsigned long long)txid, sl_strerror(rc));
      /* Refusals (time, size) leave the log usable, and the frames before
       * the refused one appended (the next sync covers them); write errors
       * do not. */
      if (rc > -10000 || rc == SL_EFAILED) archive_failed(s, rc);
      else set_received(s, next - 1);
      return rc;
    }
    next++;
  }
  set_received(s, next - 1);
  return 0;
}

int sl__stream_sync(sl__stream *s) {
  if (!s->log) return SL_EFAILED; /* closed by a failure earlier in this group */
  uint64_t target = sl_log_next_txid(s->log) - 1;
  pthread_mutex_lock(&s->mu);
  bool done = target <= s->durable;
  pthread_mutex_unlock(&s->mu);
  if (done) return 0;
  int rc = sl_log_wait_durable(s->log, target);
  if (rc) {
    sl_diag_error("stream %s: archive %s: sync up to txid %llu: %s", s->name, s->archive_dir,
                 (unsigned long long)target, sl_strerror(rc));
    archive_failed(s, rc);
    return rc;
  }
  uint64_t commit_us = sl_log_last_commit_us(s->log), cs = sl_log_checksum(s->log);
  sl_history h;
  sl_log_history(s->log, &h);
  pthread_mutex_lock(&s->mu);
  if (s->archive_failing) { /* durable again: the archive's trouble is over */
    s->archive_failing = false;
    if (!s->standby_stopped) s->error[0] = 0;
    s->dirty = true;
  }
  if (target > s->durable) {
    s->durable = target;
    s->lin_last = target;
    s->lin_cs = cs;
    s->lin_hist = h;
    s->last_commit_us = commit_us;
    update_behind(s);
    update_reachable(s);
    s->dirty = true;
    pthread_cond_signal(&s->cond);
  }
  positions_check(s);
  pthread_mutex_unlock(&s->mu);
  sl__rx_metrics_durable(s, commit_us);
  return 0;
}

void sl__stream_note_primary(sl__stream *s, uint64_t committed, uint64_t time_us) {
  pthread_mutex_lock(&s->mu);
  if (committed > s->primary_committed) s->primary_committed = committed;
  if (time_us > s->primary_time_us) s->primary_time_us = time_us;
  if (time_us > s->pending_time_us) {
    s->pending_time_us = time_us;
    s->pending_committed = SL_MAX(committed, s->pending_committed);
  }
  update_behind(s);
  update_reachable(s);
  s->dirty = true;
  pthread_mutex_unlock(&s->mu);
}

void sl__stream_note_batch(sl__stream *s, uint64_t bytes, uint64_t last_commit_us) {
  pthread_mutex_lock(&s->mu);
  s->bytes += bytes;
  s->snap_bytes += bytes;
  s->batches++;
  /* A commit the primary made is also a reading of its clock. */
  if (last_commit_us > s->primary_time_us) s->primary_time_us = last_commit_us;
  s->dirty = true;
  pthread_mutex_unlock(&s->mu);
}

void sl__stream_set_error(sl__stream *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&s->mu);
  if (!s->standby_stopped) vsnprintf(s->error, sizeof s->error, fmt, ap);
  s->dirty = true;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->mu);
  va_end(ap);
}

void sl__stream_positions(sl__stream *s, uint64_t *durable, uint64_t *applied) {
  pthread_mutex_lock(&s->mu);
  *durable = s->durable;
  *applied = s->applied;
  pthread_mutex_unlock(&s->mu);
}

bool sl__stream_lineage(sl__stream *s, sl_history *h, uint64_t *last, uint64_t *cs) {
  pthread_mutex_lock(&s->mu);
  bool valid = s->lin_valid;
  *h = s->lin_hist;
  *last = s->lin_last;
  *cs = s->lin_cs;
  pthread_mutex_unlock(&s->mu);
  return valid;
}

/* ---- BASE SHIPPING ------------------------------------------------------------------ */

void sl__stream_bases(const char *snap_dir, const uint8_t *store_id, uint64_t first_txid, uint64_t durable,
                      sl__bases *out) {
  sl_snapshot *snaps = NULL;
  size_t n = 0;
  memset(out, 0, sizeof *out);
  if (first_txid <= 1) out->usable = true; /* the empty store, txid 0 */
  if (sl_snapshot_list(snap_dir, store_id, &snaps, &n)) return;
  for (size_t i = 0; i < n; i++) {
    if (snaps[i].txid + 1 < first_txid) continue; /* the archive no longer continues it */
    out->newest = snaps[i].txid;
    if (snaps[i].txid > durable) out->pending = true;
    else if (!out->usable) {
      out->usable = true;
      out->from_txid = snaps[i].txid;
      out->from_us = snaps[i].commit_us;
    }
  }
  free(snaps);
}

bool sl__stream_needs_base(sl__stream *s) {
  pthread_mutex_lock(&s->mu);
  bool maybe = !s->standby && s->log && s->first_txid > 1 && !s->base_txid && !s->base_receiving;
  uint64_t first = s->first_txid, durable = s->durable;
  pthread_mutex_unlock(&s->mu);
  if (!maybe) return false;
  sl__bases b;
  sl__stream_bases(s->snap_dir, s->store_id, first, durable, &b);
  return b.newest == 0 && !b.usable;
}

void sl__stream_base_receiving(sl__stream *s, bool on) {
  pthread_mutex_lock(&s->mu);
  s->base_receiving = on;
  s->dirty = true;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->mu);
}

void sl__stream_base_stored(sl__stream *s, uint64_t txid) {
  pthread_mutex_lock(&s->mu);
  s->base_receiving = false;
  if (!s->standby) s->base_txid = txid;
  s->dirty = true;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->mu);
}

/* ---- reading the status of a stream from another process ------------------------------ */

/* Is a receiver running on data_dir? It holds receiver.lock. */
static bool receiver_running(const char *data_dir) {
  char *p = join(data_dir, SL_RECEIVER_LOCK_FILE);
  if (!p) return false;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  free(p);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);
  return held;
}

int sl_stream_status_read(const char *data_dir, const char *stream, sl_stream_status *out) {
  char text[4096];
  char *dir = NULL, *archive = NULL, *standby = NULL, *status = NULL;
  int rc;
  memset(out, 0, sizeof *out);
  if (!sl_stream_name_valid(stream)) return SL_EINVAL;
  snprintf(out->name, sizeof out->name, "%s", stream);
  rc = -ENOMEM;
  if (asprintf(&dir, "%s/%s/%s", data_dir, SL_STREAMS_DIR, stream) < 0) {
    dir = NULL;
    goto out;
  }
  archive = join(dir, SL_STREAM_ARCHIVE);
  standby = join(dir, SL_STREAM_STANDBY);
  status = join(dir, "status");
  if (!archive || !standby || !status) goto out;
  if (!dir_exists(dir)) {
    rc = SL_ENOTFOUND;
    goto out;
  }
  rc = 0;
  if (sl_status_load(status, text, sizeof text) != 0) text[0] = 0;
  if (!sl_status_get(text, "state", out->state, sizeof out->state))
    snprintf(out->state, sizeof out->state, "disconnected");
  sl_status_get(text, "peer", out->peer, sizeof out->peer);
  sl_status_get(text, "error", out->error, sizeof out->error);
  out->first_txid = sl_status_get_u64(text, "first_txid");
  out->received = sl_status_get_u64(text, "received");
  out->durable = sl_status_get_u64(text, "durable");
  out->applied = sl_status_get_u64(text, "applied");
  out->primary_committed = sl_status_get_u64(text, "primary_committed");
  out->primary_time_us = sl_status_get_u64(text, "primary_time_us");
  out->last_commit_us = sl_status_get_u64(text, "last_commit_us");
  out->bytes = sl_status_get_u64(text, "bytes");
  out->batches = sl_status_get_u64(text, "batches");
  out->updated_us = sl_status_get_u64(text, "updated_us");
  uint64_t applied_commit_us = sl_status_get_u64(text, "applied_commit_us");
  out->reachable_time_us = sl__stream_reachable_us(dir);
  uint64_t behind_since = sl_status_get_u64(text, "behind_since_us");

  /* The archive's durable mark and the standby itself are fresher than a
   * status file written up to STATUS_EVERY_MS ago (or by a dead receiver). */
  uint64_t mark;
  if (sl_log_read_durable_mark(archive, &mark) == 0 && mark > out->durable) out->durable = mark;
  if (out->received < out->durable) out->received = out->durable;
  if (out->first_txid == 0) {
    sl_seg_info *segs;
    size_t n;
    if (sl_log_list(archive, &segs, &n) == 0) {
      if (n) out->first_txid = segs[0].first_txid;
      free(segs);
    }
  }
  sl_store *st;
  if (dir_exists(standby) && sl_store_open(standby, SL_OPEN_RDONLY, &st) == 0) {
    sl_view *v;
    sl_counts c;
    if (sl_view_begin(st, &v) == 0) {
      if (sl_view_counts(v, &c) == 0) {
        out->applied = c.applied_txid;
        applied_commit_us = c.last_commit_us;
      }
      sl_view_end(v);
    }
    sl_store_close(st);
  }
  bool running = receiver_running(data_dir);
  if (strcmp(out->state, "connected") == 0 && !running)
    snprintf(out->state, sizeof out->state, "disconnected");

  /* BASE SHIPPING: what a restore can reach. Not restorable, with no base
   * on the way, is an error state, never a healthy one. */
  char base[16] = "", *snaps = join(dir, SL_STREAM_SNAPSHOTS);
  sl__bases b;
  sl_status_get(text, "base", base, sizeof base);
  if (!running) base[0] = 0; /* no receiver: nothing is on its way */
  sl__stream_bases(snaps ? snaps : dir, NULL, out->first_txid, out->durable, &b);
  free(snaps);
  out->restorable = b.usable;
  out->restorable_txid = b.from_txid;
  out->restorable_us = b.from_us;
  snprintf(out->base, sizeof out->base, "%s",
           b.usable ? "ok" : strcmp(base, "receiving") == 0 ? "receiving" : b.pending ? "pending" : "none");
  if (strcmp(out->base, "none") == 0 && out->first_txid > 1) {
    snprintf(out->state, sizeof out->state, "unrestorable");
    snprintf(out->error, sizeof out->error,
             "not restorable: the archive starts at txid %llu and no base (a snapshot at txid %llu or later) is "
             "held or on its way; a shipper of this version sends one when it connects",
             (unsigned long long)out->first_txid, (unsigned long long)out->first_txid - 1);
  }

  /* Lag in time: since the newest applied commit, or since falling behind
   * if that is later (an idle primary's old commit is not lag). */
  bool has_standby = dir_exists(standby);
  uint64_t target = SL_MAX(out->primary_committed, out->durable);
  uint64_t pos = has_standby ? out->applied : out->durable;
  if (pos < target) {
    uint64_t from = SL_MAX(applied_commit_us, behind_since);
    uint64_t now = sl_now_us();
    out->lag_ms = from && now > from ? (now - from) / 1000 : 0;
  }
out:
  free(dir);
  free(archive);
  free(standby);
  free(status);
  return rc;
}
