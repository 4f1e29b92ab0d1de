/*
 * stream_status.c: a stream's status file (receiver.h): formatted from
 * live state and written by the worker (standby.c) at most every
 * STATUS_EVERY_MS while something changed, read back at load so that
 * counters survive a restart, and read by other processes
 * (sl_stream_status_read, with fresher facts from the archive and standby).
 *
 * DERIVED STATE. The status file is derived from live state and only a report.
 */
#include "receiver_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "pitr.h"
#include "sl_base.h"
#include "sl_status.h"

/* ---- status file ------------------------------------------------------------------ */

static const char *state_of(const sl__stream *s) {
  if (s->archive_only) return "archive-only";
  if (s->standby_stopped) return "stopped";
  return s->owner ? "connected" : "disconnected";
}

/* Keep `behind_since_us` right after any position moved (mu held). */
void sl__stream_update_behind(sl__stream *s) {
  uint64_t target = SL_MAX(s->primary_committed, s->durable);
  bool behind = s->standby && !s->archive_only ? s->applied < target : s->durable < target;
  if (!behind) s->behind_since_us = 0;
  else if (!s->behind_since_us) s->behind_since_us = sl_now_us();
}

static void status_format(const sl__stream *s, char *buf, size_t len) {
  char id[2 * SL_STORE_ID_SIZE + 1], err[sizeof s->error];
  sl__hex_id(s->store_id, id);
  snprintf(err, sizeof err, "%s", s->error[0] ? s->error : s->log_error);
  for (char *p = err; *p; p++)
    if (*p == '\n') *p = ' ';
  snprintf(buf, len,
           "stream=%s\nstate=%s\npeer=%s\nstore_id=%s\nstandby=%s\nfirst_txid=%llu\n"
           "received=%llu\ndurable=%llu\napplied=%llu\nprimary_committed=%llu\n"
           "primary_time_us=%llu\nlast_commit_us=%llu\napplied_commit_us=%llu\n"
           "behind_since_us=%llu\nbytes=%llu\nbatches=%llu\nupdated_us=%llu\nreachable_time_us=%llu\n"
           "replay_bytes_per_s=%llu\nreplay_estimate_ms=%lld\nretain_snapshots=%llu\nretain_days=%g\n"
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
           (unsigned long long)(s->apply_ns ? (uint64_t)((double)s->apply_bytes * 1e9 / (double)s->apply_ns) : 0),
           s->replay_estimate_ms == UINT64_MAX ? -1LL : (long long)s->replay_estimate_ms,
           (unsigned long long)s->r->opt.retain_snapshots, s->r->opt.retain_days,
           s->base_receiving ? "receiving" : s->base_txid ? "pending" : "", err);
}

/* Write the status file if it changed (mu held; released during the write). */
void sl__stream_flush_status(sl__stream *s) {
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

/* The status of the previous run, so that counters and the primary's last
 * report survive a receiver restart. */
void sl__stream_load_old_status(sl__stream *s) {
  char text[4096];
  if (sl_status_load(s->status_path, text, sizeof text) != 0) return;
  s->primary_committed = sl_status_get_u64(text, "primary_committed");
  s->primary_time_us = sl_status_get_u64(text, "primary_time_us");
  s->bytes = sl_status_get_u64(text, "bytes");
  s->batches = sl_status_get_u64(text, "batches");
  sl_status_get(text, "peer", s->peer, sizeof s->peer);
  /* the replay speed measured before, until this run measured its own */
  s->apply_bytes = sl_status_get_u64(text, "replay_bytes_per_s");
  s->apply_ns = s->apply_bytes ? 1000000000ull : 0;
}

/* ---- reading the status of a stream from another process ------------------------------ */

/* Is a receiver running on data_dir? It holds receiver.lock. */
static bool receiver_running(const char *data_dir) {
  char *p = sl__rx_join(data_dir, SL_RECEIVER_LOCK_FILE);
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
  archive = sl__rx_join(dir, SL_STREAM_ARCHIVE);
  standby = sl__rx_join(dir, SL_STREAM_STANDBY);
  status = sl__rx_join(dir, "status");
  if (!archive || !standby || !status) goto out;
  if (!sl__dir_exists(dir)) {
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
  char est[32] = "";
  out->replay_bytes_per_s = sl_status_get_u64(text, "replay_bytes_per_s");
  out->has_replay_estimate = sl_status_get(text, "replay_estimate_ms", est, sizeof est) && est[0] != '-' && est[0];
  out->replay_estimate_s = out->has_replay_estimate ? (double)strtoull(est, NULL, 10) / 1000 : 0;
  out->retain_snapshots = sl_status_get_u64(text, "retain_snapshots");
  out->retain_days = sl_status_get(text, "retain_days", est, sizeof est) ? strtod(est, NULL) : 0;
  out->reachable_time_us = sl__stream_reachable_us(dir);
  uint64_t behind_since = sl_status_get_u64(text, "behind_since_us");

  /* The archive's durable mark and the standby itself are fresher than a
   * status file written up to STATUS_EVERY_MS ago (or by a dead receiver). */
  uint64_t mark;
  if (sl_log_read_durable_mark(archive, &mark) == 0 && mark > out->durable) out->durable = mark;
  if (out->received < out->durable) out->received = out->durable;
  /* The archive's oldest segment, not the status file's word: a segment
   * removed behind the receiver's back must not leave a base "continued". */
  sl_seg_info *segs;
  size_t n;
  uint64_t cut = 0;
  int lrc = sl_log_list_newest_run(archive, &segs, &n, &cut); /* as a restore lists it */
  if (lrc == 0) {
    if (n) out->first_txid = segs[0].first_txid;
    free(segs);
  }
  sl_store *st;
  if (sl__dir_exists(standby) && sl_store_open(standby, SL_OPEN_RDONLY, &st) == 0) {
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
  char base[16] = "", *snaps = sl__rx_join(dir, SL_STREAM_SNAPSHOTS);
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
  if (lrc) {
    /* Every restore reads the archive's list first, and fails with it. */
    out->restorable = false;
    snprintf(out->state, sizeof out->state, "unrestorable");
    snprintf(out->error, sizeof out->error, "not restorable: the archive cannot be listed (%s; named above)",
             sl_strerror(lrc));
  } else if (strcmp(out->base, "none") == 0 && out->first_txid > 1) {
    snprintf(out->state, sizeof out->state, "unrestorable");
    snprintf(out->error, sizeof out->error,
             "not restorable: the archive starts at txid %llu and no base (a snapshot at txid %llu or later) is "
             "held or on its way; a shipper of this version sends one when it connects",
             (unsigned long long)out->first_txid, (unsigned long long)out->first_txid - 1);
  } else if (cut && !out->error[0]) {
    snprintf(out->error, sizeof out->error,
             "archive segments before %llu cannot be reached: one is missing or its header is damaged (named "
             "above); restores start from a base at txid %llu or later",
             (unsigned long long)cut, (unsigned long long)out->first_txid - 1);
  }

  /* Lag in time: since the newest applied commit, or since falling behind
   * if that is later (an idle primary's old commit is not lag). */
  bool has_standby = sl__dir_exists(standby);
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
