/*
 * standby.c: a stream's hot standby on the receiver (the stream and its
 * archive: stream.c) -- the worker thread that applies the archive to it,
 * the keeper thread, its rebuild, and the bookkeeping of BASE SHIPPING.
 *
 * DERIVED STATE. The standby is derived from the archive: "what is the graph
 * after txid N" is answered by replaying archive frames first_txid..N into
 * it. A standby that is missing at start, or torn by a power loss (store.h:
 * it is written without sync, so its open then fails with SL_ECORRUPT), is
 * rebuilt (rebuild_standby): from the newest snapshot the archive continues,
 * else from an empty store when the archive begins at txid 1; the worker
 * then replays the archive into it. Remove it to rebuild it. A standby
 * damaged otherwise (data.mdb truncated, pages that fail sl_store_check at
 * the worker's start, an apply or a snapshot meeting a damaged page) is
 * not rebuilt: the standby stops with the reason in status, naming its
 * data.mdb, and never goes on differing from the primary.
 *
 * WORKER THREAD (one per stream): waits on `cond`; when received > applied
 * it reads archived frames (up to the received txid: written, their
 * fdatasync perhaps still running; stream.c, APPLIED BEFORE DURABLE) and
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
 * snapshot_every_s / snapshot_after_bytes / max_replay_s; pitr.h; the
 * replay estimate is the archive bytes since the newest snapshot over the
 * worker's apply rate: a restore replays with the same code, on the same
 * disk) and re-reads the
 * archive's first txid (prune runs in other processes) every
 * FIRST_TXID_EVERY_MS. A snapshot in progress is cancelled at close. It
 * applies the receiver's retention (options retain_snapshots /
 * retain_days: sl_prune_stream, as `shiplog prune` would) every
 * RETAIN_EVERY_MS and after each snapshot. It
 * also packs (LZ4, store/log.h PACKED SEGMENTS) each archive segment once
 * it is sealed and durable, one a tick, oldest first; the uploader packs
 * one it reaches first (receiver/s3.h), so objects are packed too.
 *
 * SEALED FRAMES (at-rest encryption; README "Security"). The archive stores
 * frames in segments of the batch's key; with a keyring, frames that arrive
 * in clear are sealed by the session first (session.c, seal_batch). The
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
 */
#include "receiver_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pitr.h"
#include "sl_base.h"

#define APPLY_MAX_TX 4096
#define APPLY_MAX_BYTES (8u << 20)
#define STATUS_EVERY_MS 100
#define KEEPER_TICK_MS 1000
#define FIRST_TXID_EVERY_MS 10000
#define SNAPSHOT_RETRY_S 60
#define RETAIN_EVERY_MS 10000

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
  return 0; /* past the archive (only at load): sl__stream_prepare_standby rebuilds it */
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
  unsigned empty_reads;        /* reads that found nothing below received */
} applier;

/* Publish applied = last (mu not held). */
static void publish_applied(sl__stream *s, uint64_t last, uint64_t commit_us) {
  pthread_mutex_lock(&s->mu);
  SL_ASSERT(last >= s->applied, "stream %s: applied back from %llu to %llu", s->name,
            (unsigned long long)s->applied, (unsigned long long)last);
  s->applied = last;
  if (last > s->received) s->standby_ahead = true; /* the archive failed meanwhile (stream.c, POSITIONS) */
  sl__stream_positions_check(s);
  s->applied_commit_us = commit_us;
  if (strncmp(s->error, "standby paused", 14) == 0) s->error[0] = 0; /* space came back */
  sl__stream_update_behind(s);
  s->dirty = true;
  pthread_mutex_unlock(&s->mu);
  sl__rx_metrics_applied(s, commit_us);
  sl__stream_poke(s);
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

/* Open the sealed frame f into a->data (room reserved: *plen bytes, its
 * sl_crypt_frame_open_size; *plen gets the plaintext length). Without its key the
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
                               a->data.data + a->data.len, *plen, plen, NULL);
  if (rc)
    stop_standby(s, "standby stopped at txid %llu: %s/%s offset %llu: sealed frame (key %s) does not open: %s",
                 (unsigned long long)f->txid, s->archive_dir, seg, (unsigned long long)f->offset, f->key_id,
                 rc == SL_EAUTH ? "authentication failed (wrong key or changed bytes)" : sl_strerror(rc));
  return rc;
}

/* Read archived frames from applied+1 up to received and apply one group.
 * Returns the number applied (0: nothing readable yet) or a negative code
 * (standby stopped). */
static int apply_group(applier *a, uint64_t applied, uint64_t received) {
  sl__stream *s = a->s;
  sl_frame f;
  int rc = grow_arrays(a);
  if (rc) goto fail;
  if (a->rd && a->next_txid != applied + 1) {
    sl_log_reader_close(a->rd);
    a->rd = NULL;
  }
  if (!a->rd) {
    sl_log_reader_options ro = {.max_txid = received, .tolerate_tail = true};
    rc = sl_log_reader_open(s->archive_dir, applied + 1, &ro, &a->rd);
    if (rc) goto fail;
    a->next_txid = applied + 1;
  } else {
    sl_log_reader_set_max(a->rd, received);
  }
  size_t n = 0;
  uint64_t archived = 0; /* the frames' bytes in the archive (compressed sealed ones are fewer) */
  a->data.len = 0;
  while (n < APPLY_MAX_TX && a->data.len < APPLY_MAX_BYTES && a->next_txid <= received) {
    rc = sl_log_reader_next(a->rd, &f);
    if (rc == SL_EEND) break;
    if (rc) goto fail;
    if (f.txid != a->next_txid) {
      rc = SL_EGAP;
      sl_diag_error("stream %s: archive frame has txid %llu, expected %llu", s->name,
                   (unsigned long long)f.txid, (unsigned long long)a->next_txid);
      goto fail;
    }
    /* A sealed frame that does not parse (0) is refused by open_sealed. */
    size_t plen = f.key_id ? sl_crypt_frame_open_size(f.payload, f.payload_len) : f.payload_len;
    rc = sl_buf_reserve(&a->data, a->data.len + plen);
    if (rc) goto fail;
    if (f.key_id) {
      if ((rc = open_sealed(a, &f, &plen))) return rc;
    } else {
      memcpy(a->data.data + a->data.len, f.payload, f.payload_len);
    }
    a->offs[n] = a->data.len;
    a->lens[n] = plen;
    a->commit_us[n] = f.commit_us;
    a->data.len += plen;
    archived += SL_FRAME_HEADER_SIZE + f.payload_len;
    a->next_txid++;
    n++;
  }
  if (n == 0) {
    /* Received frames must be readable; a reader that keeps finding none
     * (e.g. it saw a segment before its rotation settled) is reopened,
     * and after that the standby is stopped rather than spun. */
    if (++a->empty_reads > 100) {
      rc = SL_ECORRUPT;
      sl_diag_error("stream %s: archive %s: archived txid %llu cannot be read", s->name,
                   s->archive_dir, (unsigned long long)(applied + 1));
      goto fail;
    }
    sl_log_reader_close(a->rd);
    a->rd = NULL;
    return 0;
  }
  a->empty_reads = 0;
  for (size_t i = 0; i < n; i++) a->ptrs[i] = a->data.data + a->offs[i];
  uint64_t t0 = sl_mono_ns();
  rc = sl_store_apply_batch(s->standby, a->ptrs, a->lens, n);
  if (rc) {
    apply_singly(a, n, rc);
    return -1;
  }
  pthread_mutex_lock(&s->mu); /* BOUNDED RTO: the replay speed (frame bytes, as the archive counts them) */
  s->apply_bytes += archived;
  s->apply_ns += sl_mono_ns() - t0;
  pthread_mutex_unlock(&s->mu);
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
    sl__stream_update_behind(s);
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
    if (s->standby && !s->standby_stopped && s->applied < s->received) {
      uint64_t applied = s->applied, received = s->received;
      pthread_mutex_unlock(&s->mu);
      int n = apply_group(&a, applied, received);
      pthread_mutex_lock(&s->mu);
      if (n <= 0) { /* < 0 and still applying: paused by a full disk */
        struct timespec ts;
        sl__deadline_after_ms(&ts, n < 0 ? 1000 : 5);
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
      }
      /* Status goes out between groups too while catching up. */
      if (sl_mono_ns() - s->status_written_ns >= (uint64_t)STATUS_EVERY_MS * 1000000u)
        sl__stream_flush_status(s);
      continue;
    }
    uint64_t since_ms = (sl_mono_ns() - s->status_written_ns) / 1000000u;
    if (s->dirty && since_ms >= STATUS_EVERY_MS) {
      sl__stream_flush_status(s);
      continue;
    }
    struct timespec ts;
    sl__deadline_after_ms(&ts, s->dirty ? (long)(STATUS_EVERY_MS - since_ms) : 1000);
    pthread_cond_timedwait(&s->cond, &s->mu, &ts);
  }
  s->dirty = true;
  sl__stream_flush_status(s);
  pthread_mutex_unlock(&s->mu);
  if (a.rd) sl_log_reader_close(a.rd);
  sl_buf_free(&a.data);
  free(a.offs);
  free(a.lens);
  free(a.ptrs);
  free(a.commit_us);
  return NULL;
}

/* ---- the keeper: state file, standby syncs, snapshots ---------------------------- */

typedef struct keeper {
  sl__stream *s;
  uint64_t state_reachable, state_durable; /* as last written */
  uint64_t synced_applied;
  uint64_t snap_txid, snap_us;             /* the newest snapshot, or (0, start) */
  uint64_t snap_retry_us;
  uint64_t first_txid_ns;
  uint64_t packed_segno;                   /* segments up to it are packed or left plain */
  uint64_t retain_ns;                      /* when retention last ran (0: due) */
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

/* Archive bytes after txid (about: whole segments that hold any later txid;
 * packed ones as their plain size, what a replay reads). */
static uint64_t archive_bytes_after(const char *archive, uint64_t txid) {
  sl_seg_info *segs;
  size_t n;
  uint64_t total = 0;
  if (sl_log_list(archive, &segs, &n)) return 0;
  for (size_t i = 0; i < n; i++)
    if (i + 1 == n || segs[i + 1].first_txid - 1 > txid) total += sl_log_seg_plain_size(&segs[i]) - SL_SEG_HEADER_SIZE;
  free(segs);
  return total;
}

static void retain_removed(void *arg, bool snapshot, const char *path, uint64_t first, uint64_t last, uint64_t bytes) {
  sl_diag_info("stream %s: retention removed %s %s (txids %llu..%llu, %.1f MiB)", (const char *)arg,
               snapshot ? "snapshot" : "archive segment", path, (unsigned long long)first, (unsigned long long)last,
               (double)bytes / (1 << 20));
}

/* RETENTION (receiver.h): the rules of `prune`, applied by the receiver. */
static void retain(keeper *k, uint64_t applied) {
  const sl_receiver_options *o = &k->s->r->opt;
  if (!o->retain_snapshots && !(o->retain_days > 0)) return;
  if (k->retain_ns && sl_mono_ns() - k->retain_ns < RETAIN_EVERY_MS * 1000000ull) return;
  k->retain_ns = sl_mono_ns();
  sl_prune_options po = {.keep_snapshots = o->retain_snapshots, .keep_days = o->retain_days,
                         .off_site = o->off_site, .standby_applied = &applied, .removed = retain_removed,
                         .removed_arg = k->s->name, .keyring = o->keyring};
  sl_prune_result pr;
  int rc = sl_prune_stream(o->data_dir, k->s->name, &po, &pr);
  if (rc && rc != SL_ELOCKED) /* SL_ELOCKED: a restore reads the stream; next time */
    sl_diag_warn("stream %s: retention: %s", k->s->name, sl_strerror(rc));
  if (rc == 0 && pr.segments_removed) k->first_txid_ns = 0; /* status shows the new first txid soon */
}

/* Pack the oldest sealed, durable segment not looked at yet. */
static void pack_sealed(keeper *k, uint64_t durable) {
  sl_seg_info *segs;
  size_t n;
  if (sl_log_list(k->s->archive_dir, &segs, &n) != 0) return;
  for (size_t i = 0; i + 1 < n; i++) {
    if (segs[i].segno <= k->packed_segno) continue;
    if (durable + 1 < segs[i + 1].first_txid) break;
    uint64_t plain, packed;
    int rc = sl_log_seg_pack(segs[i].path, &plain, &packed);
    if (rc == 0 && packed)
      sl_diag_info("stream %s: %s packed: %.1f MiB -> %.1f MiB", k->s->name, segs[i].path,
                   (double)plain / (1 << 20), (double)packed / (1 << 20));
    else if (rc && rc != -ENOENT) /* -ENOENT: pruned meanwhile */
      sl_diag_warn("stream %s: %s stays unpacked: %s", k->s->name, segs[i].path, sl_strerror(rc));
    k->packed_segno = segs[i].segno;
    break;
  }
  free(segs);
}

/* What a killed packer left: NNN.seg.pack-PID-N.tmp. */
static void pack_clean(const char *archive) {
  DIR *d = opendir(archive);
  struct dirent *e;
  char path[4400];
  if (!d) return;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".seg.pack-") && strstr(e->d_name, ".tmp")) {
      snprintf(path, sizeof path, "%s/%s", archive, e->d_name);
      unlink(path);
    }
  closedir(d);
}

static void keeper_init(keeper *k) {
  sl__stream *s = k->s;
  sl_snapshot *snaps;
  size_t n;
  k->snap_us = sl_now_us();
  sl__snapshots_clean(s->snap_dir);
  pack_clean(s->archive_dir);
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

/* BOUNDED RTO: how long replaying `bytes` would take at the measured
 * apply rate, in ms (UINT64_MAX: nothing measured yet); published for the
 * status file (mu taken). */
static uint64_t replay_estimate(sl__stream *s, uint64_t bytes) {
  pthread_mutex_lock(&s->mu);
  uint64_t ms = s->apply_bytes ? (uint64_t)((double)bytes * (double)s->apply_ns / (double)s->apply_bytes / 1e6)
                               : UINT64_MAX;
  if (ms != s->replay_estimate_ms) s->dirty = true;
  s->replay_estimate_ms = ms;
  pthread_mutex_unlock(&s->mu);
  return ms;
}

static void maybe_snapshot(keeper *k, sl_store *standby, uint64_t applied, uint64_t bytes) {
  sl__stream *s = k->s;
  const sl_receiver_options *o = &s->r->opt;
  uint64_t now = sl_now_us(), replay_ms = replay_estimate(s, bytes);
  bool by_time = o->snapshot_every_s && now - k->snap_us >= o->snapshot_every_s * 1000000u;
  bool by_bytes = o->snapshot_after_bytes && bytes >= o->snapshot_after_bytes;
  bool by_rto = o->max_replay_s > 0 && replay_ms != UINT64_MAX && (double)replay_ms > o->max_replay_s * 1000;
  if (!standby || applied <= k->snap_txid || !(by_time || by_bytes || by_rto) || now < k->snap_retry_us) return;
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
  k->retain_ns = 0; /* an older snapshot may go now */
  sl_diag_info("stream %s: snapshot at txid %llu (%s): %s, %.1f MiB in %.1f s", s->name,
              (unsigned long long)snap.txid,
              by_rto ? "a restore would replay too long" : by_bytes ? "archive grew" : "schedule", snap.path,
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
    retain(&k, standby ? applied : 0);
    pack_sealed(&k, durable);
    refresh_first_txid(&k);
    pthread_mutex_lock(&s->mu);
    if (!s->stop) {
      struct timespec ts;
      sl__deadline_after_ms(&ts, KEEPER_TICK_MS);
      pthread_cond_timedwait(&s->keeper_cond, &s->mu, &ts);
    }
  }
  return NULL;
}

/* ---- the threads ------------------------------------------------------------------ */

static int start_thread(sl__stream *s, pthread_t *t, bool *running, void *(*fn)(void *), const char *what) {
  int rc = -pthread_create(t, NULL, fn, s);
  if (rc) {
    sl_diag_error("stream %s: cannot start its %s thread: %s", s->name, what, sl_strerror(rc));
    return rc;
  }
  *running = true;
  return 0;
}

int sl__stream_start_threads(sl__stream *s) {
  int rc = start_thread(s, &s->worker, &s->worker_running, worker_main, "worker");
  if (rc == 0) rc = start_thread(s, &s->keeper, &s->keeper_running, keeper_main, "keeper");
  return rc;
}

void sl__stream_stop_threads(sl__stream *s) {
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
void sl__stream_prepare_standby(sl__stream *s) {
  char *data = sl__rx_join(s->standby_dir, "data.mdb");
  struct stat sb;
  bool exists = sl__dir_exists(s->standby_dir);
  bool no_data = exists && data && stat(data, &sb) != 0 && errno == ENOENT; /* removed: rebuilt like the directory */
  bool torn = exists && !no_data && sl_store_power_lost(s->standby_dir);
  free(data);
  if (exists && !no_data && (open_standby(s, torn) != SL_ECORRUPT || !torn)) {
    if (!s->standby || s->applied <= s->durable) return;
    /* It applied frames of a tail that was cut (TAIL REPAIR), or frames the
     * archive lost when its sync failed (stream.c, POSITIONS): rebuilt, so
     * that it holds only what the archive holds. */
    sl_store_close(s->standby);
    s->standby = NULL;
    sl_diag_warn("stream %s: the standby holds txid %llu, past the archive's %llu", s->name,
                 (unsigned long long)s->applied, (unsigned long long)s->durable);
    if (rebuild_standby(s, "was ahead of the archive") == 0) open_standby(s, false);
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
