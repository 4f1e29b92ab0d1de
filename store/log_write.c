/*
 * log_write.c: the writer side of an open log; its design is at the top of
 * log.c (WRITER STATE, GROUP COMMIT, ROTATION, SEALED SEGMENTS). Here: the
 * durable mark (read, publish), creating segments and rotation, append
 * (each frame checked and staged, then all written with one pwritev), the key
 * of new frames, and sl_log_wait_durable's group commit. The FAILED state is
 * entered only here (set_failed). Lock order: append_mu before mu.
 */
#include "log_int.h"
#include "sl_base.h"
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MARK_RETRIES 200

/* ---- durable mark ------------------------------------------------------- */

/* SL_ENOTFOUND if absent, SL_ECORRUPT if it stays torn across retries. */
int sl__log_mark_read(const char *logdir, mark *m) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/" MARK_NAME, logdir) >= (int)sizeof path)
    return -ENAMETOOLONG;
  int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return SL_ENOTFOUND;
    rc = -errno;
    sl_diag_error("open %s: %s", path, sl_strerror(rc));
    return rc;
  }
  rc = SL_ECORRUPT;
  for (int i = 0; i < MARK_RETRIES; i++) {
    uint8_t b[SL_DURABLE_MARK_SIZE];
    long r = sl_pread_full(fd, b, sizeof b, 0);
    if (r < 0) {
      rc = (int)r;
      sl_diag_error("read %s: %s", path, sl_strerror(rc));
      break;
    }
    if (r == SL_DURABLE_MARK_SIZE && sl_get_le32(b + 24) == sl_crc32c(0, b, 24)) {
      m->txid = sl_get_le64(b);
      m->segno = sl_get_le64(b + 8);
      m->end = sl_get_le64(b + 16);
      rc = 0;
      break;
    }
    usleep(1000); /* a writer's pwrite in progress */
  }
  close(fd);
  return rc;
}

int sl_log_read_durable_mark(const char *logdir, uint64_t *txid) {
  mark m;
  int rc = sl__log_mark_read(logdir, &m);
  if (rc == SL_ECORRUPT) sl_diag_error("%s/" MARK_NAME ": %s", logdir, sl_strerror(rc));
  if (!rc) *txid = m.txid;
  return rc;
}

/* Publish a durable position (caller holds mu) and wake the waiters. The
 * mark is derived, so failing to rewrite it only costs tailers latency. */
void sl__log_publish_durable(sl_log *log, uint64_t txid, uint64_t segno, uint64_t end) {
  /* Only what was written can be durable, and the mark never moves back:
   * an older leader's smaller txid is ignored, never published. */
  SL_ASSERT(txid <= log->written_txid, "%s: durable txid %" PRIu64 " > written %" PRIu64, log->dir, txid,
            log->written_txid);
  if (txid >= log->durable_txid &&
      (txid != log->durable_txid || segno != log->durable_segno || end != log->durable_end)) {
    SL_ASSERT(segno > log->durable_segno || (segno == log->durable_segno && end >= log->durable_end),
              "%s: durable mark back from txid %" PRIu64 " (segment %" PRIu64 " offset %" PRIu64 ") to txid %" PRIu64
              " (segment %" PRIu64 " offset %" PRIu64 ")", log->dir, log->durable_txid, log->durable_segno,
              log->durable_end, txid, segno, end);
    log->durable_txid = txid;
    log->durable_segno = segno;
    log->durable_end = end;
    uint8_t b[SL_DURABLE_MARK_SIZE];
    sl__log_mark_encode(b, txid, segno, end);
    int rc = sl_pwrite_all(log->mark_fd, b, sizeof b, 0);
    if (rc) sl_diag_warn("%s/" MARK_NAME ": %s", log->dir, sl_strerror(rc));
  }
  pthread_cond_broadcast(&log->cv);
}

/* Enter the FAILED state (caller holds mu). */
static void set_failed(sl_log *log, int code) {
  if (!log->fail_code) log->fail_code = code ? code : SL_EFAILED;
  pthread_cond_broadcast(&log->cv);
}

/* ---- creating segments and rotation ---------------------------------------- */

/* Write the segment h describes: NAME.tmp with the header, fdatasync, rename
 * to NAME, fsync the directory. *fd_out stays open O_RDWR. On failure before
 * the rename nothing is left; *renamed says whether it got that far. */
int sl__log_seg_create(const char *dir, const sl_seg_header *h, int *fd_out, bool *renamed) {
  char path[PATH_MAX], tmp[PATH_MAX];
  uint8_t hdr[SL_SEG_HEADER_SIZE];
  int fd = -1, rc;
  *renamed = false;
  if ((rc = sl__log_seg_path(path, dir, h->segno, "")) ||
      (rc = sl__log_seg_path(tmp, dir, h->segno, TMP_SUFFIX)))
    return rc;
  if ((rc = sl_fault(SL_FAULT_LOG_SEG_CREATE))) {
    sl_diag_error("create %s: %s", tmp, sl_strerror(rc));
    return rc;
  }
  if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    sl_diag_error("create %s: %s", tmp, sl_strerror(rc));
    return rc;
  }
  sl_seg_header_encode(h, hdr);
  if ((rc = sl_pwrite_all(fd, hdr, sizeof hdr, 0)) || (rc = sl_fdatasync(fd))) {
    sl_diag_error("write header of %s: %s", tmp, sl_strerror(rc));
    goto fail;
  }
  if (rename(tmp, path)) {
    rc = -errno;
    sl_diag_error("rename %s: %s", tmp, sl_strerror(rc));
    goto fail;
  }
  *renamed = true;
  if ((rc = sl_fault(SL_FAULT_LOG_DIR_FSYNC))) {
    sl_diag_error("fsync directory %s: %s", dir, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_fsync_dir(dir))) goto fail;
  *fd_out = fd;
  return 0;

fail:
  close(fd);
  if (!*renamed) unlink(tmp);
  return rc;
}

/* The flags of a segment the log starts now (or rekeys). */
static uint32_t new_seg_flags(const sl_log *log) {
  if (!log->key_id[0]) return 0;
  return SL_SEG_F_SEALED | (log->lz4_frames ? SL_SEG_F_SEALED_LZ4 : 0);
}

/* Seal the active segment and start the next (caller holds append_mu). */
static int rotate(sl_log *log) {
  char path[PATH_MAX];
  int new_fd = -1, rc;
  bool renamed = false, synced = false;

  pthread_mutex_lock(&log->mu);
  while (log->syncing) pthread_cond_wait(&log->cv, &log->mu);
  if (log->fail_code) {
    pthread_mutex_unlock(&log->mu);
    return SL_EFAILED;
  }
  log->syncing = true; /* from here no leader touches the old fd */
  uint64_t txid = log->written_txid, segno = log->written_segno, end = log->written_end;
  pthread_mutex_unlock(&log->mu);

  sl__log_seg_path(path, log->dir, log->segno, "");
  /* A sealed segment ends with its last frame (log.h, ZEROED TAIL): cut
   * and synced before the next segment exists. */
  if ((rc = sl__log_cut_zeroed(log))) {
    sl_diag_error("%s: the log is FAILED until reopened", log->dir);
  } else if ((rc = sl_fault(SL_FAULT_LOG_SEG_FSYNC)) || (rc = sl_fdatasync(log->fd))) {
    sl_diag_error("fdatasync %s (sealing it): %s; the log is FAILED until reopened", path,
                 sl_strerror(rc));
  } else {
    synced = true;
    sl_seg_header h = {.version = SL_SEG_VERSION,
                       .segno = log->segno + 1,
                       .first_txid = log->next_txid,
                       .epoch = log->epoch,
                       .prev_checksum = log->cs,
                       .segment_size = log->seg_size};
    memcpy(h.store_id, log->store_id, SL_STORE_ID_SIZE);
    memcpy(h.key_id, log->key_id, sizeof h.key_id);
    h.flags = new_seg_flags(log);
    rc = sl__log_seg_create(log->dir, &h, &new_fd, &renamed);
  }

  pthread_mutex_lock(&log->mu);
  log->syncing = false;
  if (synced) sl__log_publish_durable(log, txid, segno, end);
  if (rc && renamed)
    sl_diag_error("%s: the log is FAILED until reopened", log->dir);
  if (rc && (!synced || renamed)) set_failed(log, rc); /* a failed fsync is never retried */
  if (!rc) {
    close(log->fd);
    log->fd = new_fd;
    log->segno++;
    log->seg_first_txid = log->next_txid;
    log->seg_end = log->zeroed_end = SL_SEG_HEADER_SIZE;
    memcpy(log->seg_key_id, log->key_id, sizeof log->seg_key_id);
    log->seg_lz4 = (new_seg_flags(log) & SL_SEG_F_SEALED_LZ4) != 0;
    log->stats.rotations++;
    sl__log_check(log);
  }
  pthread_cond_broadcast(&log->cv);
  pthread_mutex_unlock(&log->mu);
  return rc;
}

/* ---- append and group commit ------------------------------------------------ */

void sl_log_get_stats(sl_log *log, sl_log_stats *out) {
  pthread_mutex_lock(&log->mu);
  *out = log->stats;
  pthread_mutex_unlock(&log->mu);
}

/* Frames checked and waiting for one pwritev (sl_log_append_many; append_mu
 * held): their headers, the iovecs, and the writer state after the last. */
#define STAGE_MAX 256
struct staged {
  uint8_t hdr[STAGE_MAX][SL_FRAME_HEADER_SIZE];
  struct iovec iov[2 * STAGE_MAX];
  size_t n, bytes;
  uint64_t last_txid, last_commit_us, cs;
};
typedef struct staged staged;

/* pwritev every byte of iov[0..cnt) at off (consumes iov). */
static int pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off) {
  while (cnt > 0) {
    ssize_t w = pwritev(fd, iov, SL_MIN(cnt, IOV_MAX), (off_t)off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    if (w == 0) return -EIO;
    off += (uint64_t)w;
    for (; cnt > 0 && (size_t)w >= iov->iov_len; iov++, cnt--) w -= (ssize_t)iov->iov_len;
    if (cnt > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* The staged frames at the end of the active segment, in one pwritev. */
static int write_staged(sl_log *log, staged *s) {
  uint64_t off = log->seg_end;
  int cnt = (int)(2 * s->n);
  int rc = sl_fault(SL_FAULT_LOG_WRITE);
  if (rc) {
    /* Leave half of the last frame behind, as a crash inside write() can. */
    s->iov[cnt - 1].iov_len /= 2;
    (void)pwritev_all(log->fd, s->iov, cnt, off);
    return rc;
  }
  sl_fault_write(log->fd, (int64_t)off, s->bytes);
  rc = pwritev_all(log->fd, s->iov, cnt, off);
  sl_fault_write_end();
  return rc;
}

/* The active segment holds no frame: give its header the log's key id
 * and the flags that go with it (caller holds append_mu). */
static int rekey_empty_segment(sl_log *log) {
  uint8_t b[SL_SEG_HEADER_SIZE];
  char path[PATH_MAX];
  sl_seg_header h;
  sl__log_seg_path(path, log->dir, log->segno, "");
  long r = sl_pread_full(log->fd, b, sizeof b, 0);
  int rc = r < 0 ? (int)r : r < SL_SEG_HEADER_SIZE ? SL_ECORRUPT : sl_seg_header_decode(b, &h);
  if (rc == 0) {
    memcpy(h.key_id, log->key_id, sizeof h.key_id);
    h.flags = (h.flags & ~(SL_SEG_F_SEALED | SL_SEG_F_SEALED_LZ4)) | new_seg_flags(log);
    sl_seg_header_encode(&h, b);
    rc = sl_pwrite_all(log->fd, b, sizeof b, 0);
  }
  if (rc) {
    sl_diag_error("%s: rewriting the header for key %s: %s", path, log->key_id[0] ? log->key_id : "(none)",
                 sl_strerror(rc));
    return rc;
  }
  memcpy(log->seg_key_id, log->key_id, sizeof log->seg_key_id);
  log->seg_lz4 = (h.flags & SL_SEG_F_SEALED_LZ4) != 0;
  return 0;
}

void sl_log_set_key_id(sl_log *log, const char *key_id) {
  pthread_mutex_lock(&log->append_mu);
  memset(log->key_id, 0, sizeof log->key_id);
  if (key_id) snprintf(log->key_id, sizeof log->key_id, "%s", key_id);
  pthread_mutex_unlock(&log->append_mu);
}

const char *sl_log_key_id(sl_log *log) { return log->key_id; }

/* ZEROED TAIL (log.h): keep zeros written ahead of the last frame, so that
 * the group's fdatasync overwrites allocated blocks. The file grows here in
 * steps of at least half of SL_SEG_ZERO_AHEAD, and the next fdatasync (the
 * one of the frames just written) writes the inode once for the step. A
 * failure only costs speed: whatever zeros were written stay a valid tail,
 * and this sl_log appends without them from then on. append_mu held. */
static void zero_ahead(sl_log *log) {
  static const uint8_t zeros[SL_SEG_ZERO_AHEAD];
  if (log->zero_refused || log->zeroed_end >= log->seg_end + SL_SEG_ZERO_AHEAD / 2) return;
  uint64_t from = SL_MAX(log->seg_end, log->zeroed_end);
  uint64_t to = SL_MIN(log->seg_end + SL_SEG_ZERO_AHEAD, log->seg_size);
  if (to <= from) return;
  int rc = sl_pwrite_all(log->fd, zeros, (size_t)(to - from), from);
  if (rc) {
    char path[PATH_MAX];
    sl__log_seg_path(path, log->dir, log->segno, "");
    sl_diag_warn("%s: writing zeros ahead of offset %" PRIu64 ": %s; appends go on without them until it is reopened", path, from,
                 sl_strerror(rc));
    log->zero_refused = true;
    return;
  }
  log->zeroed_end = to;
}

/* Cut the active segment's ZEROED TAIL (append_mu held, no sync running on
 * fd): before it is sealed, and at close. Logged on failure. */
int sl__log_cut_zeroed(sl_log *log) {
  if (log->zeroed_end <= log->seg_end) return 0;
  if (ftruncate(log->fd, (off_t)log->seg_end)) {
    char path[PATH_MAX];
    int rc = -errno;
    sl__log_seg_path(path, log->dir, log->segno, "");
    sl_diag_error("%s: cutting the zeros after offset %" PRIu64 ": %s", path, log->seg_end, sl_strerror(rc));
    return rc;
  }
  log->zeroed_end = log->seg_end;
  return 0;
}

/* Write the staged frames and publish them as written (append_mu held). */
static int flush_staged(sl_log *log, staged *s) {
  char path[PATH_MAX];
  if (s->n == 0) return 0;
  /* The staged frames continue the log: txids next..last, no gap. */
  SL_ASSERT(s->last_txid + 1 - s->n == log->next_txid, "%s: staged txids %" PRIu64 "..%" PRIu64 ", next %" PRIu64,
            log->dir, s->last_txid + 1 - s->n, s->last_txid, log->next_txid);
  int rc = write_staged(log, s);
  if (rc) {
    sl__log_seg_path(path, log->dir, log->segno, "");
    /* A full disk: cut the partial frames back; nothing of them was ever
     * synced or published, so the log stays usable for when space returns. */
    if ((rc == -ENOSPC || rc == -EDQUOT) && ftruncate(log->fd, (off_t)log->seg_end) == 0) {
      log->zeroed_end = log->seg_end;
      sl_diag_error("write txids %" PRIu64 "..%" PRIu64 " to %s at offset %" PRIu64 ": %s; the transactions "
                   "are not logged (the frames were cut back)", s->last_txid + 1 - s->n, s->last_txid, path,
                   log->seg_end, sl_strerror(rc));
    } else {
      sl_diag_error("write txids %" PRIu64 "..%" PRIu64 " to %s at offset %" PRIu64
                   ": %s; the log is FAILED until reopened",
                   s->last_txid + 1 - s->n, s->last_txid, path, log->seg_end, sl_strerror(rc));
      pthread_mutex_lock(&log->mu);
      set_failed(log, rc);
      pthread_mutex_unlock(&log->mu);
    }
    s->n = s->bytes = 0;
    return rc;
  }
  log->seg_end += s->bytes;
  zero_ahead(log);
  log->cs = s->cs;
  __atomic_store_n(&log->last_commit_us, s->last_commit_us, __ATOMIC_RELEASE);
  pthread_mutex_lock(&log->mu);
  log->written_txid = s->last_txid;
  log->written_segno = log->segno;
  log->written_end = log->seg_end;
  log->stats.appends += s->n;
  __atomic_store_n(&log->next_txid, s->last_txid + 1, __ATOMIC_RELEASE);
  sl__log_check(log);
  pthread_mutex_unlock(&log->mu);
  s->n = s->bytes = 0;
  return 0;
}

/* Check one frame against the writer state after the staged ones, rotate
 * if it does not fit, and stage it (append_mu held). */
static int stage_frame(sl_log *log, staged *s, const uint8_t *payload, size_t len) {
  uint64_t txid, commit_us, epoch;
  int rc;
  if (len > SL_FRAME_MAX) {
    sl_diag_error("%s: transaction of %zu bytes exceeds the frame limit of %u", log->dir, len,
                 SL_FRAME_MAX);
    return SL_ETOOBIG;
  }
  if (sl_txn_peek(payload, len, &txid, &commit_us, &epoch)) {
    sl_diag_error("%s: append of %zu bytes that are not a packed transaction", log->dir, len);
    return SL_EINVAL;
  }
  uint64_t next = s->n ? s->last_txid + 1 : log->next_txid;
  uint64_t last_us = s->n ? s->last_commit_us : log->last_commit_us;
  uint64_t prev_cs = s->n ? s->cs : log->cs;
  if (txid != next) {
    sl_diag_error("%s: append of txid %" PRIu64 ", expected %" PRIu64, log->dir, txid, next);
    return SL_EGAP;
  }
  if (commit_us < last_us) {
    sl_diag_error("%s: txid %" PRIu64 " commit time %" PRIu64 " is before the previous %" PRIu64,
                 log->dir, txid, commit_us, last_us);
    return SL_ETIME;
  }
  sl_sealed_meta sealed = {0};
  if (log->key_id[0] && sl_crypt_frame_parse(payload, len, &sealed, &(const uint8_t *){0}, &(size_t){0})) {
    sl_diag_error("%s: txid %" PRIu64 " is not sealed but the log's key is %s", log->dir, txid, log->key_id);
    return SL_EINVAL;
  }
  if (epoch < log->epoch) {
    sl_diag_error("%s: txid %" PRIu64 " is of epoch %" PRIu64 ", but the log is in epoch %" PRIu64
                 " already (a transaction of a superseded primary)",
                 log->dir, txid, epoch, log->epoch);
    return SL_EINVAL;
  }
  if (epoch > log->epoch) { /* the history knows an epoch before its first frame lands */
    sl_history h = log->hist;
    if ((rc = sl_history_add(&h, epoch, txid, prev_cs)) || (rc = sl_history_save(log->dir, &h))) return rc;
    log->hist = h;
    log->epoch = epoch;
  }
  size_t frame_len = SL_FRAME_HEADER_SIZE + len;
  uint64_t end = log->seg_end + s->bytes;
  /* A compressed sealed frame goes only into a segment flagged for it, so
   * that a reader that does not know the flag refuses the segment. */
  if (sealed.lz4_len) log->lz4_frames = true;
  bool new_key = strcmp(log->key_id, log->seg_key_id) != 0 || (sealed.lz4_len && !log->seg_lz4);
  if (new_key && end == SL_SEG_HEADER_SIZE) {
    if ((rc = rekey_empty_segment(log))) return rc;
  } else if (end > SL_SEG_HEADER_SIZE && (new_key || end + frame_len > log->seg_size)) {
    if ((rc = flush_staged(log, s)) || (rc = rotate(log))) return rc;
  } else if (s->n == STAGE_MAX && (rc = flush_staged(log, s))) {
    return rc;
  }
  uint8_t *hdr = s->hdr[s->n];
  sl_frame_header_encode(payload, (uint32_t)len, hdr);
  uint64_t cs; /* as sl_frame_lineage, with header and payload apart */
  if (!sl__log_txn_checksum(payload, payload + len, &cs))
    cs = sl_lineage_next(prev_cs, txid, sl_get_le32(hdr + 4));
  s->iov[2 * s->n] = (struct iovec){hdr, SL_FRAME_HEADER_SIZE};
  s->iov[2 * s->n + 1] = (struct iovec){(void *)payload, len};
  s->n++;
  s->bytes += frame_len;
  s->last_txid = txid;
  s->last_commit_us = commit_us;
  s->cs = cs;
  return 0;
}

int sl_log_append_many(sl_log *log, const uint8_t *const *payloads, const size_t *lens, size_t n,
                       size_t *appended) {
  int rc = 0;
  if (appended) *appended = 0;
  pthread_mutex_lock(&log->append_mu);
  if (!log->stage && !(log->stage = malloc(sizeof *log->stage))) rc = -ENOMEM;
  staged *s = log->stage;
  uint64_t first = log->next_txid;
  pthread_mutex_lock(&log->mu);
  if (!rc && log->fail_code) rc = SL_EFAILED;
  pthread_mutex_unlock(&log->mu);
  if (!rc) s->n = s->bytes = 0;
  for (size_t i = 0; !rc && i < n; i++) rc = stage_frame(log, s, payloads[i], lens[i]);
  if (!rc) rc = flush_staged(log, s);
  else if (s) s->n = s->bytes = 0; /* frames that failed a check are not written */
  if (appended) *appended = (size_t)(log->next_txid - first);
  pthread_mutex_unlock(&log->append_mu);
  return rc;
}

int sl_log_append(sl_log *log, const uint8_t *payload, size_t len) {
  return sl_log_append_many(log, &payload, &len, 1, NULL);
}

int sl_log_wait_durable(sl_log *log, uint64_t txid) {
  int rc = 0;
  pthread_mutex_lock(&log->mu);
  for (;;) {
    if (log->fail_code) {
      rc = SL_EFAILED;
      break;
    }
    if (txid <= log->durable_txid) break;
    if (txid > log->written_txid) {
      sl_diag_error("%s: waiting for txid %" PRIu64 ", but only %" PRIu64 " was appended",
                   log->dir, txid, log->written_txid);
      rc = SL_EINVAL;
      break;
    }
    if (log->syncing) {
      pthread_cond_wait(&log->cv, &log->mu);
      continue;
    }
    /* Lead one group commit: append -> fdatasync -> publish -> wake. */
    log->syncing = true;
    uint64_t t = log->written_txid, seg = log->written_segno, end = log->written_end;
    int fd = log->fd;
    pthread_mutex_unlock(&log->mu);
    rc = sl_fault(SL_FAULT_LOG_FSYNC);
    if (!rc) rc = sl_fdatasync(fd);
    pthread_mutex_lock(&log->mu);
    log->syncing = false;
    if (rc) {
      char path[PATH_MAX];
      sl__log_seg_path(path, log->dir, log->segno, "");
      sl_diag_error("fdatasync %s (txid %" PRIu64 "): %s; the log is FAILED until reopened", path,
                   t, sl_strerror(rc));
      set_failed(log, rc);
      break;
    }
    log->stats.syncs++;
    sl__log_publish_durable(log, t, seg, end);
  }
  /* A committer returns 0 only once its txid is covered by an fdatasync. */
  SL_ASSERT(rc || txid <= log->durable_txid, "%s: waiter for txid %" PRIu64 " released at durable %" PRIu64,
            log->dir, txid, log->durable_txid);
  pthread_mutex_unlock(&log->mu);
  return rc;
}

/* ---- SYNC AHEAD (log.c) --------------------------------------------------- */

static void *ahead_main(void *arg) {
  sl_log *log = arg;
  pthread_mutex_lock(&log->mu);
  while (!log->ahead_stop) {
    uint64_t t = log->ahead_txid;
    if (!t) {
      pthread_cond_wait(&log->ahead_cv, &log->mu);
      continue;
    }
    log->ahead_txid = 0;
    pthread_mutex_unlock(&log->mu);
    (void)sl_log_wait_durable(log, t); /* a failure is logged and sticky: the writer's own wait returns it */
    pthread_mutex_lock(&log->mu);
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

void sl_log_sync_ahead(sl_log *log) {
  pthread_mutex_lock(&log->mu);
  if (!log->ahead_on && !log->ahead_refused) {
    int rc = sl_thread_start(&log->ahead_thread, ahead_main, log);
    if (rc) {
      log->ahead_refused = true;
      sl_diag_warn("%s: no sync-ahead thread (%s): commits sync after their LMDB commit", log->dir, sl_strerror(rc));
    } else {
      log->ahead_on = true;
    }
  }
  /* During a sync the helper waits for it, then leads the next. */
  if (log->ahead_on && !log->fail_code && log->written_txid > log->durable_txid) {
    log->ahead_txid = log->written_txid;
    pthread_cond_signal(&log->ahead_cv);
  }
  pthread_mutex_unlock(&log->mu);
}

void sl__log_ahead_stop(sl_log *log) {
  pthread_mutex_lock(&log->mu);
  bool on = log->ahead_on;
  log->ahead_stop = true;
  pthread_cond_signal(&log->ahead_cv);
  pthread_mutex_unlock(&log->mu);
  if (on) pthread_join(log->ahead_thread, NULL);
  log->ahead_on = false;
}
