/*
 * snapshot.c: base snapshots of a stream's standby and retention
 * (receiver/pitr.h gives the files and the rules).
 *
 * TAKING ONE. sl_dump_full writes the standby's image from one LMDB read
 * transaction into snapshots/tmp-<pid>-<n>.snap.tmp while the applier goes
 * on; only once the dump returns is the image's txid known, so the file is
 * then fsynced and renamed to <txid>.snap and the folder fsynced. A
 * snapshot of a txid that already has one is dropped (same image).
 *   Cancelling: the dump cannot be asked to stop, but it reports progress
 *   about once per chunk from the thread that drives it; when the cancel
 *   flag is set, that callback dup2()s a read-only /dev/null over the
 *   output descriptor, so the dump's next write fails (EBADF) and it
 *   returns. The descriptor number stays ours throughout: no other file
 *   can be written by mistake.
 *
 * LEFTOVERS. A killed snapshot leaves its .tmp; the pid in its name tells a
 * live writer's from a dead one's (sl__snapshots_clean).
 *
 * RETENTION (sl_prune_stream). Snapshots first (count and age rules), then
 * archive segments below the oldest kept snapshot, the standby's applied
 * txid and every archive consumer's position (a cascade shipper), oldest
 * first so that segment numbers stay contiguous after each unlink
 * (store/log.h). The stream's snapshots folder is flock()ed: prune
 * takes it exclusively (and refuses to wait), restores share it, so a
 * restore never loses the files it chose halfway. A stream archived to
 * object storage (receiver/s3.h) keeps every file whose upload is not
 * confirmed yet, whatever the rules say.
 */
#include "pitr.h"
#include "s3.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "receiver_int.h"
#include "sl_base.h"
#include "sl_status.h"

#define SNAP_DIGITS 20
#define TMP_PREFIX "tmp-"
#define TMP_SUFFIX SL_SNAP_SUFFIX ".tmp"
#define US_PER_DAY (86400.0 * 1e6)

/* ---- listing ---------------------------------------------------------------------- */

/* "<20 digits>.snap" -> txid. */
static bool snap_name(const char *name, uint64_t *txid) {
  size_t n = strlen(name);
  if (n != SNAP_DIGITS + strlen(SL_SNAP_SUFFIX) || strcmp(name + SNAP_DIGITS, SL_SNAP_SUFFIX)) return false;
  uint64_t v = 0;
  for (int i = 0; i < SNAP_DIGITS; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + (uint64_t)(name[i] - '0');
  }
  *txid = v;
  return true;
}

static int read_snap_header(const char *path, sl_dump_header *h, uint64_t *size) {
  uint8_t b[SL_DUMP_HEADER_SIZE];
  struct stat sb;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long n = fstat(fd, &sb) ? -errno : sl_pread_full(fd, b, sizeof b, 0);
  close(fd);
  if (n < 0) return (int)n;
  *size = (uint64_t)sb.st_size;
  if (n < (long)sizeof b) return SL_ETRUNCATED;
  return sl_dump_header_decode(b, h);
}

static int snap_cmp(const void *a, const void *b) {
  const sl_snapshot *x = a, *y = b;
  return x->txid < y->txid ? -1 : x->txid > y->txid;
}

int sl_snapshot_list(const char *snap_dir, const uint8_t *store_id, sl_snapshot **out, size_t *count) {
  *out = NULL;
  *count = 0;
  DIR *d = opendir(snap_dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    int rc = -errno;
    sl_diag_error("%s: %s", snap_dir, sl_strerror(rc));
    return rc;
  }
  sl_snapshot *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    uint64_t txid, size;
    sl_dump_header h;
    if (!snap_name(e->d_name, &txid)) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      sl_snapshot *p = realloc(v, cap * sizeof *p);
      if (!p) {
        rc = -ENOMEM;
        break;
      }
      v = p;
    }
    sl_snapshot *s = &v[n];
    snprintf(s->path, sizeof s->path, "%s/%s", snap_dir, e->d_name);
    int hrc = read_snap_header(s->path, &h, &size);
    if (hrc == -ENOENT) continue; /* pruned meanwhile */
    if (hrc || h.kind != SL_DUMP_FULL || h.last_txid != txid) {
      sl_diag_warn("%s: not a usable snapshot (%s), left out", s->path,
                  hrc ? sl_strerror(hrc) : h.kind != SL_DUMP_FULL ? "not a full dump" : "header names another txid");
      continue;
    }
    if (store_id && memcmp(h.store_id, store_id, SL_STORE_ID_SIZE)) {
      sl_diag_warn("%s: a snapshot of another store than the stream's archive, left out", s->path);
      continue;
    }
    s->txid = txid;
    s->commit_us = h.last_commit_us;
    s->created_us = h.created_us;
    s->bytes = size;
    snprintf(s->key_id, sizeof s->key_id, "%s", h.key_id);
    n++;
  }
  closedir(d);
  if (rc) {
    free(v);
    return rc;
  }
  if (n) qsort(v, n, sizeof *v, snap_cmp);
  else {
    free(v);
    v = NULL;
  }
  *out = v;
  *count = n;
  return 0;
}

void sl__snapshots_clean(const char *snap_dir) {
  DIR *d = opendir(snap_dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    size_t n = strlen(name), sn = strlen(TMP_SUFFIX);
    if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) || n <= sn || strcmp(name + n - sn, TMP_SUFFIX)) continue;
    long pid = strtol(name + strlen(TMP_PREFIX), NULL, 10);
    if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue; /* its writer lives */
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", snap_dir, name);
    if (unlink(p) == 0) sl_diag_info("removed %s, left by a snapshot that did not finish", p);
  }
  closedir(d);
}

int sl__archive_commit_time(const char *archive, uint64_t txid, uint64_t *us) {
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.max_txid = txid, .tolerate_tail = false, .newest_run = true}; /* at most durable: damage, not a tail */
  int rc = sl_log_reader_open(archive, txid, &ro, &r);
  if (rc) return rc;
  rc = sl_log_reader_next(r, &f);
  if (rc == 0 && f.txid != txid) rc = SL_ENOTFOUND;
  if (rc == 0) *us = f.commit_us;
  else if (rc == SL_EEND) rc = SL_ENOTFOUND;
  sl_log_reader_close(r);
  return rc;
}

int sl__archive_durable(const char *archive, const sl_seg_info *segs, size_t nseg, uint64_t *durable) {
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.tolerate_tail = true, .newest_run = true}; /* as the archive's recovery reads it */
  int rc = sl_log_read_durable_mark(archive, durable);
  if (rc != SL_ENOTFOUND) return rc;
  *durable = nseg ? segs[0].first_txid - 1 : 0;
  if (!nseg) return 0;
  if ((rc = sl_log_reader_open(archive, segs[nseg - 1].first_txid, &ro, &r))) return rc;
  *durable = segs[nseg - 1].first_txid - 1;
  while ((rc = sl_log_reader_next(r, &f)) == 0) *durable = f.txid;
  sl_log_reader_close(r);
  if (rc != SL_EEND) return rc;
  sl_diag_warn("%s/" SL_DURABLE_MARK_FILE ": missing; the archive's end (txid %" PRIu64 ") was found by reading its "
              "newest segment (a receiver rewrites the file when it opens the archive)", archive, *durable);
  return 0;
}

bool sl__snapshot_in_history(const char *archive, const sl_snapshot *s, uint64_t first, uint64_t durable,
                             uint64_t *archive_us) {
  uint64_t us = 0;
  *archive_us = 0;
  if (s->txid < first || s->txid > durable || sl__archive_commit_time(archive, s->txid, &us)) return true;
  *archive_us = us;
  return us == s->commit_us;
}

/* ---- taking one ----------------------------------------------------------------------- */

typedef struct take_ctx {
  const sl_snapshot_options *o;
  int fd;
  bool cancelled;
} take_ctx;

static void take_progress(void *arg, uint64_t done, uint64_t total) {
  take_ctx *c = arg;
  if (c->o->progress) c->o->progress(c->o->progress_arg, done, total);
  if (c->o->cancel && !c->cancelled && atomic_load(c->o->cancel)) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0 && dup2(null, c->fd) >= 0) c->cancelled = true;
    if (null >= 0) close(null);
  }
}

int sl_snapshot_take(sl_store *st, const char *snap_dir, const sl_snapshot_options *opt, sl_snapshot *out,
                     bool *existed) {
  static atomic_uint seq;
  static const sl_snapshot_options none;
  char tmp[4096];
  sl_dump_info info;
  take_ctx c = {.o = opt ? opt : &none, .fd = -1};
  int rc;
  *existed = false;
  memset(out, 0, sizeof *out);
  snprintf(tmp, sizeof tmp, "%s/" TMP_PREFIX "%d-%u" TMP_SUFFIX, snap_dir, (int)getpid(), atomic_fetch_add(&seq, 1));
  if (c.o->cancel && atomic_load(c.o->cancel)) return -ECANCELED;
  if ((c.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    sl_diag_error("%s: cannot create: %s", tmp, sl_strerror(rc));
    return rc;
  }
  sl_dump_options d = {.progress = take_progress, .progress_arg = &c, .name = tmp, .keyring = c.o->keyring};
  rc = sl_dump_full(st, c.fd, &d, &info);
  if (c.cancelled) {
    rc = -ECANCELED;
    goto fail;
  }
  if (rc) goto fail;
  if ((rc = sl_fsync(c.fd))) {
    sl_diag_error("%s: fsync: %s", tmp, sl_strerror(rc));
    goto fail;
  }
  close(c.fd);
  c.fd = -1;
  snprintf(out->path, sizeof out->path, "%s/%0*" PRIu64 SL_SNAP_SUFFIX, snap_dir, SNAP_DIGITS, info.header.last_txid);
  out->txid = info.header.last_txid;
  out->commit_us = info.header.last_commit_us;
  out->created_us = info.header.created_us;
  out->bytes = info.file_bytes;
  if (access(out->path, F_OK) == 0) {
    *existed = true;
    unlink(tmp);
    sl_dump_header h;
    if (read_snap_header(out->path, &h, &out->bytes) == 0) out->created_us = h.created_us;
    return 0;
  }
  if (rename(tmp, out->path)) {
    rc = -errno;
    sl_diag_error("%s: cannot rename to %s: %s", tmp, out->path, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_fsync_dir(snap_dir))) {
    sl_diag_error("%s: fsync: %s", snap_dir, sl_strerror(rc));
    unlink(out->path);
    return rc;
  }
  return 0;
fail:
  if (c.fd >= 0) close(c.fd);
  unlink(tmp);
  return rc;
}

int sl_snapshot_stream(const char *data_dir, const char *stream, const sl_snapshot_options *o, sl_snapshot *out,
                       bool *existed) {
  char sdir[4096], standby[4200], snaps[4200];
  struct stat sb;
  sl_store *st;
  if (!sl_stream_name_valid(stream)) {
    sl_diag_error("'%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
    return SL_EINVAL;
  }
  snprintf(sdir, sizeof sdir, "%s/" SL_STREAMS_DIR "/%s", data_dir, stream);
  snprintf(standby, sizeof standby, "%s/" SL_STREAM_STANDBY, sdir);
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, sdir);
  if (stat(sdir, &sb) || !S_ISDIR(sb.st_mode)) {
    sl_diag_error("%s: no stream %s in this data directory", data_dir, stream);
    return SL_ENOTFOUND;
  }
  if (stat(standby, &sb)) {
    sl_diag_error("stream %s has no standby to snapshot (%s: its archive does not start at txid 1)", stream,
                 standby);
    return SL_ENOTFOUND;
  }
  int rc = sl_mkdir_p(snaps);
  if (rc) {
    sl_diag_error("%s: %s", snaps, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_store_open(standby, SL_OPEN_RDONLY, &st))) {
    sl_diag_error("%s: cannot open the standby: %s", standby, sl_strerror(rc));
    return rc;
  }
  rc = sl_snapshot_take(st, snaps, o, out, existed);
  sl_store_close(st);
  return rc;
}

/* ---- retention ------------------------------------------------------------------------ */

int sl__stream_lock(const char *snap_dir, bool exclusive, int *fd_out) {
  int fd = open(snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  *fd_out = -1;
  if (fd < 0) {
    int rc = -errno;
    sl_diag_error("%s: %s", snap_dir, sl_strerror(rc));
    return rc;
  }
  if (flock(fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH)) {
    int rc = errno == EWOULDBLOCK ? SL_ELOCKED : -errno;
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

/* The standby's applied txid; 0 when it cannot be read (then nothing below
 * it counts as applied, and no segment goes). */
static uint64_t standby_applied(const char *standby) {
  sl_store *st;
  sl_view *v;
  sl_counts c = {0};
  if (access(standby, F_OK) || sl_store_open(standby, SL_OPEN_RDONLY, &st)) return 0;
  if (sl_view_begin(st, &v) == 0) {
    if (sl_view_counts(v, &c)) c.applied_txid = 0;
    sl_view_end(v);
  }
  sl_store_close(st);
  return c.applied_txid;
}

/* Which snapshots the rules keep (see pitr.h); s ascending by txid. */
void sl__prune_choose_kept(const sl_snapshot *s, size_t n, const sl_prune_options *o, bool *keep) {
  bool rules = o->keep_snapshots || o->keep_days > 0;
  uint64_t cutoff = 0, now = sl_now_us();
  if (o->keep_days > 0) {
    double span = o->keep_days * US_PER_DAY;
    cutoff = span >= (double)now ? 0 : now - (uint64_t)span;
  }
  bool base_kept = false; /* the newest one taken before the age window */
  for (size_t k = n; k-- > 0;) {
    keep[k] = !rules || k + 1 == n;
    if (o->keep_snapshots && n - k <= o->keep_snapshots) keep[k] = true;
    if (o->keep_days > 0) {
      if (s[k].created_us >= cutoff) keep[k] = true;
      else if (!base_kept) keep[k] = base_kept = true;
    }
  }
}

/* May path go as far as object storage is concerned (receiver/s3.h)? */
static bool confirmed(const char *sdir, const char *path, const sl_prune_options *o) {
  char manifest[4200];
  snprintf(manifest, sizeof manifest, "%s/" SL_RX_S3_LOCAL_MANIFEST, sdir);
  if (o->off_site && access(manifest, F_OK) != 0) return false; /* nothing uploaded yet */
  return sl__upload_confirmed(sdir, path);
}

const char *sl__other_history_why(char *buf, size_t len, const sl_snapshot *s, uint64_t archive_us) {
  snprintf(buf, len, "a snapshot of another history (its txid %" PRIu64 " committed at %" PRIu64 " us, the archive's at %" PRIu64 " us)",
           s->txid, s->commit_us, archive_us);
  return buf;
}

/* pitr.h, BASE CHECK: the oldest snapshot kept is read whole before the
 * files it replaces go. Only when something would go: a prune that removes
 * nothing (the receiver's periodic retention, mostly) reads nothing. */
static int check_base(const char *stream, const char *sdir, const char *archive, const sl_snapshot *s, size_t n,
                      const bool *keep, const sl_seg_info *segs, size_t nseg, const sl_prune_options *o) {
  size_t base = n;
  bool removes = false;
  for (size_t k = 0; k < n; k++) {
    bool kept = keep[k] || !confirmed(sdir, s[k].path, o);
    if (kept && base == n) base = k;
    if (!kept) removes = true;
  }
  if (base == n) return 0; /* nothing kept, nothing removed (pitr.h: the newest always stays) */
  uint64_t first = nseg ? segs[0].first_txid : 0, durable = 0, us;
  if (nseg >= 2 && segs[1].first_txid - 1 <= s[base].txid) removes = true;
  if (!removes) return 0;
  if (sl__archive_durable(archive, segs, nseg, &durable)) durable = first ? first - 1 : 0;
  if (!sl__snapshot_in_history(archive, &s[base], first, durable, &us)) {
    char why[200];
    sl_diag_error("stream %s: nothing pruned: %s, the oldest snapshot that would be kept, is %s: move it out", stream,
                 s[base].path, sl__other_history_why(why, sizeof why, &s[base], us));
    return SL_ECORRUPT;
  }
  int rc = sl_dump_verify_keyed(s[base].path, o->keyring, NULL, NULL, NULL);
  if (rc)
    sl_diag_error("stream %s: nothing pruned: %s, the oldest snapshot that would be kept (txid %" PRIu64
                 "), cannot be loaded (%s, above), so the older snapshots and archive it would replace stay; "
                 "move it aside (a restore then starts from the older base) or take a new snapshot",
                 stream, s[base].path, s[base].txid, sl_strerror(rc));
  return rc;
}

int sl_prune_stream(const char *data_dir, const char *stream, const sl_prune_options *o, sl_prune_result *out) {
  char sdir[4096], snaps[4200], archive[4200], standby[4200];
  sl_snapshot *s = NULL;
  sl_seg_info *segs = NULL;
  bool *keep = NULL;
  size_t n = 0, nseg = 0;
  int lock = -1, rc;
  memset(out, 0, sizeof *out);
  if (!sl_stream_name_valid(stream)) {
    sl_diag_error("'%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
    return SL_EINVAL;
  }
  snprintf(sdir, sizeof sdir, "%s/" SL_STREAMS_DIR "/%s", data_dir, stream);
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, sdir);
  snprintf(archive, sizeof archive, "%s/" SL_STREAM_ARCHIVE, sdir);
  snprintf(standby, sizeof standby, "%s/" SL_STREAM_STANDBY, sdir);
  if (access(sdir, F_OK)) {
    sl_diag_error("%s: no stream %s in this data directory", data_dir, stream);
    return SL_ENOTFOUND;
  }
  if ((rc = sl_mkdir_p(snaps)) || (rc = sl__stream_lock(snaps, !o->dry_run, &lock))) {
    if (rc == SL_ELOCKED)
      sl_diag_error("stream %s: a restore or export is reading its snapshots and archive: prune it later", stream);
    goto out;
  }
  if (!o->dry_run) sl__snapshots_clean(snaps);
  if ((rc = sl_snapshot_list(snaps, NULL, &s, &n))) goto out;
  if (n && !(keep = calloc(n, sizeof *keep))) {
    rc = -ENOMEM;
    goto out;
  }
  sl__prune_choose_kept(s, n, o, keep);
  /* Listed once, before anything goes: the receiver only appends segments
   * after these, and only these are judged below. */
  if ((rc = sl_log_list(archive, &segs, &nseg))) goto out;
  if ((rc = check_base(stream, sdir, archive, s, n, keep, segs, nseg, o))) goto out;
  uint64_t oldest_kept = 0;
  bool any_kept = false;
  for (size_t k = 0; k < n; k++) {
    if (keep[k] || !confirmed(sdir, s[k].path, o)) { /* not yet in object storage */
      if (!any_kept) oldest_kept = s[k].txid;
      any_kept = true;
      out->snapshots_kept++;
      continue;
    }
    if (!o->dry_run && unlink(s[k].path) && errno != ENOENT) {
      rc = -errno;
      sl_diag_error("%s: cannot remove: %s", s[k].path, sl_strerror(rc));
      goto out;
    }
    out->snapshots_removed++;
    out->bytes_removed += s[k].bytes;
    if (o->removed) o->removed(o->removed_arg, true, s[k].path, s[k].txid, s[k].txid, s[k].bytes);
    else sl_diag_info("removed snapshot %s (txid %" PRIu64 ")", s[k].path, s[k].txid);
  }
  if (out->snapshots_removed && !o->dry_run && (rc = sl_fsync_dir(snaps))) goto out;

  if (nseg) out->archive_first_txid = segs[0].first_txid;
  if (!any_kept || nseg < 2) goto out;
  /* A dry run removes no snapshot: the segments are judged against the
   * oldest snapshot a real run would have kept. */
  uint64_t applied = o->standby_applied ? *o->standby_applied : standby_applied(standby);
  uint64_t limit = SL_MIN(oldest_kept, applied), held;
  /* A cascade shipper reading this archive (shipper.h) keeps what it has
   * not had confirmed yet, as a primary's consumers keep its log. */
  if ((rc = sl_log_consumers_min(archive, &held))) goto out;
  if (held < limit) {
    sl_diag_info("stream %s: archive consumers hold pruning at txid %" PRIu64 " (%s/consumers)", stream, held,
                archive);
    limit = held;
  }
  size_t removed = 0;
  /* Segment i holds txids first_i .. first_{i+1} - 1; the newest is never removed. */
  while (removed + 1 < nseg && segs[removed + 1].first_txid - 1 <= limit &&
         confirmed(sdir, segs[removed].path, o)) {
    if (!o->dry_run && unlink(segs[removed].path) && errno != ENOENT) {
      rc = -errno;
      sl_diag_error("%s: cannot remove: %s", segs[removed].path, sl_strerror(rc));
      break;
    }
    out->bytes_removed += segs[removed].size;
    if (o->removed)
      o->removed(o->removed_arg, false, segs[removed].path, segs[removed].first_txid, segs[removed + 1].first_txid - 1,
                 segs[removed].size);
    removed++;
  }
  out->segments_removed = removed;
  out->archive_first_txid = segs[removed].first_txid;
  if (removed && !o->dry_run) {
    int frc = sl_fsync_dir(archive);
    if (!rc) rc = frc;
  }
out:
  if (lock >= 0) close(lock);
  free(keep);
  free(segs);
  free(s);
  return rc;
}
