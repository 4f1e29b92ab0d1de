/*
 * stream.c: one replication stream on the receiver -- its archive, its
 * positions and the owner's side (attach, append, sync) -- and the registry
 * of streams. The standby (its worker and keeper threads, its rebuild) is
 * in standby.c, the status file in stream_status.c.
 *
 * DIRECTORY (receiver.h): DIR/streams/NAME/{archive,standby,snapshots,status}.
 * A new stream is built under NAME~new (archive created with the hello's
 * store id and first txid; standby created only when that first txid is 1)
 * and renamed into place, then the streams directory is fsynced: a crash
 * leaves either no stream or a whole one, and leftovers are removed at start.
 * A standby that is missing or torn at start is rebuilt (standby.c).
 *
 * POSITIONS (inclusive txids; first_txid - 1 means "nothing yet"),
 * durable <= received <= the archive's next txid - 1, applied <= received:
 *   received: appended to the archive by the owner (write(), not yet synced)
 *   durable:  covered by an fdatasync of the archive; only these are acked
 *             as durable (the shipper's consumer position)
 *   applied:  committed in the standby's LMDB. The standby records its own
 *             applied txid in the same LMDB transaction as the ops, so after
 *             any crash the worker resumes exactly at applied + 1, reading
 *             the archive: no gap, no duplicate (a duplicate would be
 *             SL_EEXIST anyway).
 * APPLIED BEFORE DURABLE. The worker applies what is received, while the
 * owner's fdatasync of the same frames runs: commit -> visible on the
 * standby then waits for one fsync (the primary's) instead of two: with the
 * SYNCER below, its p99 at 1k tx/s went from 6.9-13 ms to 1.4-3.2 ms
 * (bench/README, "Applied before durable"). It is safe because the standby
 * is derived state: every frame shipped is durable on the primary, which
 * sends again whatever the archive does not hold durably (it resumes at the
 * durable ack); a process crash keeps written frames in the page cache, so
 * the archive reopens with them; a power loss tears the standby, which is
 * rebuilt from the archive (standby.c, DERIVED STATE); and a standby found
 * ahead of its archive at start is rebuilt too. What is left is an archive
 * whose fdatasync fails at run time: it is reopened by the next owner, and
 * if it then ends below applied the standby is ahead of it (standby_ahead)
 * until the shipper has sent those txids again, applying nothing meanwhile
 * (applied >= received); one still ahead at the next start is rebuilt.
 * Each moves only forward while the archive stays open (reopening it after
 * a failure starts again from what recovery finds), and
 * sl__stream_positions_check asserts the order wherever one changes
 * (SL_ASSERT, every build). The exceptions: after a tail cut
 * (cut_damaged_tail) or an archive failure (standby_ahead above) the
 * standby may hold txids the archive lost until the shipper sends them
 * again, and a standby that stopped keeps whatever it held.
 *
 * REACHABLE TIME (receiver.h, "state"): a report of the primary's clock T
 * with its committed txid C counts once durable >= C (the latest report
 * waits in pending_* until then); a durable transaction committed at time
 * t also makes t - 1 reachable, as commit times never decrease.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lineage.h"
#include "sl_base.h"
#include "sl_status.h"

char *sl__rx_join(const char *a, const char *b) {
  char *p;
  return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

void sl__hex_id(const uint8_t *id, char out[2 * SL_STORE_ID_SIZE + 1]) {
  sl_hex_encode(id, SL_STORE_ID_SIZE, out);
}

bool sl__dir_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void sl__deadline_after_ms(struct timespec *ts, long ms) {
  sl_deadline_after_ns(ts, CLOCK_MONOTONIC, ms > 0 ? (uint64_t)ms * 1000000u : 0);
}

/* ---- lifetime -------------------------------------------------------------------- */

static void stream_free(sl__stream *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cond);
  pthread_cond_destroy(&s->owner_cond);
  pthread_cond_destroy(&s->keeper_cond);
  pthread_cond_destroy(&s->sync_cv);
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
  s->replay_estimate_ms = UINT64_MAX; /* nothing applied yet */
  snprintf(s->name, sizeof s->name, "%s", name);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cond, &ca);
  pthread_cond_init(&s->owner_cond, &ca);
  pthread_cond_init(&s->keeper_cond, &ca);
  pthread_cond_init(&s->sync_cv, &ca);
  pthread_condattr_destroy(&ca);
  s->dir = sl__rx_join(r->streams_dir, name);
  s->archive_dir = s->dir ? sl__rx_join(s->dir, SL_STREAM_ARCHIVE) : NULL;
  s->standby_dir = s->dir ? sl__rx_join(s->dir, SL_STREAM_STANDBY) : NULL;
  s->status_path = s->dir ? sl__rx_join(s->dir, "status") : NULL;
  s->snap_dir = s->dir ? sl__rx_join(s->dir, SL_STREAM_SNAPSHOTS) : NULL;
  s->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!s->archive_dir || !s->standby_dir || !s->status_path || !s->snap_dir || s->notify_fd < 0) {
    stream_free(s);
    return NULL;
  }
  return s;
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
    if (n < 5 || strcmp(e->d_name + n - 4, ".seg") != 0 || !(p = sl__rx_join(s->archive_dir, e->d_name))) continue;
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
  s->standby_ahead = s->standby && s->applied > s->durable; /* POSITIONS: after a failure */
  if (s->standby_ahead)
    sl_diag_warn("stream %s: the standby holds txids up to %llu, past the reopened archive's %llu: it waits for the "
                 "shipper to send them again", s->name,
                 (unsigned long long)s->applied, (unsigned long long)s->durable);
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

/* POSITIONS in order (mu held): durable <= received, applied <= received. */
void sl__stream_positions_check(const sl__stream *s) {
  SL_ASSERT(s->durable <= s->received, "stream %s: durable %llu > received %llu", s->name,
            (unsigned long long)s->durable, (unsigned long long)s->received);
  SL_ASSERT(s->applied <= s->received || s->tail_cut_from || s->standby_ahead || s->standby_stopped,
            "stream %s: applied %llu > received %llu", s->name, (unsigned long long)s->applied,
            (unsigned long long)s->received);
}

/* A stream directory that exists: open archive and standby, start the threads. */
static int stream_load(sl__receiver *r, const char *name, sl__stream **out) {
  sl__stream *s = stream_new(r, name);
  if (!s) return -ENOMEM;
  sl__stream_load_old_status(s);
  sl__rx_metrics_stream(s);
  s->reachable_us = sl__stream_reachable_us(s->dir);
  if (open_archive(s, NULL) == 0) sl__stream_prepare_standby(s);
  sl__stream_update_behind(s);
  update_reachable(s);
  s->dirty = true;
  int rc = sl__stream_start_threads(s);
  if (rc) {
    sl__stream_stop_threads(s);
    if (s->standby) sl_store_close(s->standby);
    if (s->log) sl_log_close(s->log);
    stream_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void stream_close(sl__stream *s) {
  sl__stream_stop_threads(s);
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
      char *p = sl__rx_join(r->streams_dir, name);
      sl_diag_warn("removing %s, a stream whose creation was interrupted", p ? p : name);
      if (p) sl_remove_tree(p);
      free(p);
      continue;
    }
    if (!sl_stream_name_valid(name)) continue;
    char *p = sl__rx_join(r->streams_dir, name);
    bool isdir = p && sl__dir_exists(p);
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

int sl_receiver_standby(sl__receiver *r, const char *name, sl_store **st, uint64_t *epoch, sl_history *history,
                        char name_out[65], char primary_bolt[256]) {
  sl__stream *s = NULL;
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nstreams; i++)
    if (name ? !strcmp(r->streams[i]->name, name) : r->nstreams == 1) s = r->streams[i];
  pthread_mutex_unlock(&r->mu); /* streams stay until close_all */
  if (!s) return -ENOENT;
  pthread_mutex_lock(&s->mu);
  int rc = s->standby && !s->standby_stopped ? 0 : -EAGAIN;
  if (!rc) {
    *st = s->standby;
    if (s->lin_valid) *history = s->lin_hist;
    else history->n = 0;
    *epoch = sl_history_epoch(history);
    snprintf(name_out, 65, "%s", s->name);
    snprintf(primary_bolt, 256, "%s", s->primary_bolt);
  }
  pthread_mutex_unlock(&s->mu);
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
  tmp = sl__rx_join(r->streams_dir, tmpname);
  final = sl__rx_join(r->streams_dir, name);
  if (!tmp || !final) goto fail;
  archive = sl__rx_join(tmp, SL_STREAM_ARCHIVE);
  standby = sl__rx_join(tmp, SL_STREAM_STANDBY);
  snaps = sl__rx_join(tmp, SL_STREAM_SNAPSHOTS);
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
      sl__hex_id(s->store_id, have);
      sl__hex_id(store_id, got);
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
    sl__deadline_after_ms(&ts, (long)SL_MIN((uint64_t)ATTACH_POLL_MS, (heard + live_ns - now) / 1000000u + 1));
    pthread_cond_timedwait(&s->owner_cond, &s->mu, &ts);
  }
  if (s->owner && !s->stop) {
    sl_diag_warn("stream %s: %s takes over from %s, silent for %d ms", s->name, sl_conn_peer(c), s->peer, live_ms);
    sl_conn_shutdown(s->owner);
    sl__deadline_after_ms(&ts, live_ms);
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
  if (!s->standby && !s->standby_stopped) sl__stream_prepare_standby(s);
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
  while (s->syncing) pthread_cond_wait(&s->sync_cv, &s->mu); /* SYNCER: it uses the log */
  snprintf(s->log_error, sizeof s->log_error, "archive %s: %s", s->archive_dir, sl_strerror(rc));
  snprintf(s->error, sizeof s->error, "%s", s->log_error);
  s->archive_failing = true;
  sl_log *log = s->log;
  s->log = NULL;
  s->received = s->durable;
  if (s->applied > s->durable) s->standby_ahead = true; /* POSITIONS: the archive may lose them */
  s->dirty = true;
  sl__stream_positions_check(s);
  pthread_mutex_unlock(&s->mu);
  sl_log_close(log);
}

uint64_t sl__stream_next_txid(sl__stream *s) { return sl_log_next_txid(s->log); }

void sl__stream_set_key(sl__stream *s, const char *key_id) {
  if (s->log && strcmp(sl_log_key_id(s->log), key_id ? key_id : "")) sl_log_set_key_id(s->log, key_id);
}

/* Publish received = last, the archive's newest txid, and wake the worker
 * (POSITIONS: it applies while the owner syncs). Owner; mu not held. */
static void set_received(sl__stream *s, uint64_t last) {
  pthread_mutex_lock(&s->mu);
  SL_ASSERT(last >= s->received, "stream %s: received back from %llu to %llu", s->name,
            (unsigned long long)s->received, (unsigned long long)last);
  if (last > s->received) {
    s->received = last;
    if (last >= s->applied) s->standby_ahead = false;
    pthread_cond_signal(&s->cond);
  }
  sl__stream_positions_check(s);
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

/* The sync point of the archive's newest frame; by the owner, the only one
 * appending. */
static void sync_point_now(sl__stream *s, sl__sync_point *p) {
  p->target = sl_log_next_txid(s->log) - 1;
  p->cs = sl_log_checksum(s->log);
  p->commit_us = sl_log_last_commit_us(s->log);
  sl_log_history(s->log, &p->hist);
}

/* Wait until p->target is durable in log, then publish durable with the
 * lineage there and wake the worker. 0, or the log's error (logged; the
 * caller's to handle: only the owner closes the log). mu not held. */
static int sync_publish(sl__stream *s, sl_log *log, const sl__sync_point *p) {
  int rc = sl_log_wait_durable(log, p->target);
  if (rc) {
    sl_diag_error("stream %s: archive %s: sync up to txid %llu: %s", s->name, s->archive_dir,
                  (unsigned long long)p->target, sl_strerror(rc));
    return rc;
  }
  pthread_mutex_lock(&s->mu);
  if (s->archive_failing) { /* durable again: the archive's trouble is over */
    s->archive_failing = false;
    if (!s->standby_stopped) s->error[0] = 0;
    s->dirty = true;
  }
  if (p->target > s->durable) {
    s->durable = p->target;
    s->lin_last = p->target;
    s->lin_cs = p->cs;
    s->lin_hist = p->hist;
    s->last_commit_us = p->commit_us;
    sl__stream_update_behind(s);
    update_reachable(s);
    s->dirty = true;
    pthread_cond_signal(&s->cond);
  }
  sl__stream_positions_check(s);
  pthread_mutex_unlock(&s->mu);
  sl__rx_metrics_durable(s, p->commit_us);
  return 0;
}

int sl__stream_sync(sl__stream *s) {
  if (!s->log) return SL_EFAILED; /* closed by a failure earlier in this group */
  uint64_t target = sl_log_next_txid(s->log) - 1;
  pthread_mutex_lock(&s->mu);
  bool done = target <= s->durable;
  pthread_mutex_unlock(&s->mu);
  if (done) return 0;
  sl__sync_point p;
  sync_point_now(s, &p);
  int rc = sync_publish(s, s->log, &p);
  if (rc) archive_failed(s, rc);
  return rc;
}

/* ---- SYNCER ---------------------------------------------------------------------------- */
/* SYNCER. The session's thread receives and appends; the fdatasync that
 * makes its groups durable runs on a thread of the session's own, so that
 * batches arriving meanwhile are appended (and applied: POSITIONS) at once
 * instead of after it; the next sync covers all of them (the log's group
 * commit). A sync used to hold every later batch for its whole length: on a
 * disk shared with a busy primary, 2-5 ms at the 99th percentile. The owner
 * asks with the lineage of its newest frame (the syncer must not read it
 * from the log, which the owner appends to meanwhile); the syncer publishes
 * durable and pokes the owner, who sends the Ack. Only the owner closes the
 * log: a failed sync is left in sync_rc for it (sl__syncer_failed), and
 * archive_failed first waits for a sync in flight. */
void sl__stream_poke(sl__stream *s) {
  uint64_t one = 1;
  if (write(s->notify_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    sl_diag_warn("stream %s: eventfd: %s", s->name, strerror(errno));
}

static void *syncer_main(void *arg) {
  sl__stream *s = arg;
  sl__sync_point p;
  sl_diag_context(s->name, NULL);
  pthread_mutex_lock(&s->mu);
  while (!s->syncer_stop) {
    if (s->sync_rc || !s->log || s->sync_want.target <= s->durable) {
      pthread_cond_wait(&s->sync_cv, &s->mu);
      continue;
    }
    p = s->sync_want; /* the owner may ask again meanwhile */
    sl_log *log = s->log;
    s->syncing = true;
    pthread_mutex_unlock(&s->mu);
    int rc = sync_publish(s, log, &p);
    pthread_mutex_lock(&s->mu);
    s->syncing = false;
    pthread_cond_broadcast(&s->sync_cv);
    if (rc) s->sync_rc = rc;
    pthread_mutex_unlock(&s->mu);
    sl__stream_poke(s);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int sl__syncer_start(sl__stream *s) {
  pthread_mutex_lock(&s->mu);
  s->syncer_stop = false;
  s->sync_want.target = 0;
  s->sync_rc = 0;
  pthread_mutex_unlock(&s->mu);
  int rc = -pthread_create(&s->syncer, NULL, syncer_main, s);
  if (rc) sl_diag_error("stream %s: cannot start its sync thread: %s", s->name, sl_strerror(rc));
  else s->syncer_running = true;
  return rc;
}

bool sl__syncer_request(sl__stream *s) {
  if (!s->log) return false; /* closed by a failure: nothing to sync */
  uint64_t target = sl_log_next_txid(s->log) - 1;
  pthread_mutex_lock(&s->mu);
  bool asked = target > s->durable;
  if (asked && target > s->sync_want.target) {
    sync_point_now(s, &s->sync_want);
    pthread_cond_signal(&s->sync_cv);
  }
  pthread_mutex_unlock(&s->mu);
  return asked;
}

int sl__syncer_failed(sl__stream *s) {
  pthread_mutex_lock(&s->mu);
  int rc = s->sync_rc;
  s->sync_rc = 0;
  pthread_mutex_unlock(&s->mu);
  if (rc && s->log) archive_failed(s, rc);
  return rc;
}

void sl__syncer_stop(sl__stream *s) {
  if (!s->syncer_running) return;
  pthread_mutex_lock(&s->mu);
  s->syncer_stop = true;
  pthread_cond_broadcast(&s->sync_cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->syncer, NULL);
  s->syncer_running = false;
}

void sl__stream_note_primary(sl__stream *s, uint64_t committed, uint64_t time_us) {
  pthread_mutex_lock(&s->mu);
  if (committed > s->primary_committed) s->primary_committed = committed;
  if (time_us > s->primary_time_us) s->primary_time_us = time_us;
  if (time_us > s->pending_time_us) {
    s->pending_time_us = time_us;
    s->pending_committed = SL_MAX(committed, s->pending_committed);
  }
  sl__stream_update_behind(s);
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
