/*
 * tail.c: the shipper's reader of a live log directory (tail.h).
 *
 * WHAT MAY BE SHIPPED. The log's writer appends a frame with write(),
 * fdatasyncs, and only then rewrites the durable mark (store/log.h,
 * DURABILITY AND GROUP COMMIT). So the tail reads the mark FIRST and the
 * segment data AFTER it: every frame with txid <= mark is then wholly
 * visible in the page cache, and a frame above it may be anything -- half
 * written, or (after a crash of the primary) about to be cut by recovery
 * and replaced. The tail therefore never decodes, keeps or ships bytes
 * past the last durable frame: they are read again, fresh, next time.
 *
 * READING. Each sl__tail_read() reads as much as fits from the current
 * offset into the caller's batch buffer with ONE read (io.h: through the
 * ring, or pread), walks the frames it got (length, CRC32C, txid dense),
 * and keeps the whole frames up to the mark in place: the batch is built
 * without copying. The same walk carries the rolling log checksum (LINEAGE)
 * on, so no later pass decodes the frames again. Short reads are expected (the newest segment grows while
 * we read it) and handled by where the walk stops:
 *
 *   stopped at                       next txid <= mark means
 *   ------------------------------   ---------------------------------------
 *   a frame cut by the read's room   batch full (or grow it for one big frame)
 *   a frame cut by a short read      read again (a short read inside data
 *                                    that is there); after 3 tries: damage
 *   end of data (read returned 0),   the frame opens the next segment:
 *   or bytes that are not a frame    rotate (header's first txid must match)
 *
 * Rotation is thus decided by txids alone: no directory scan and no size
 * check on the hot path. Segment numbers are contiguous (store/log.h FILES).
 *
 * SEEKING. The start position is found once per session: sl_log_list()
 * gives each segment's first txid; the segment holding the txid is scanned
 * from its header, walking frames up to txid - 1 (all durable).
 *
 * WAKING. inotify watches the mark file (IN_MODIFY: the writer pwrites it
 * in place after each group commit) and the directory (IN_CREATE,
 * IN_MOVED_TO: the mark created or replaced). Segment appends wake nobody:
 * only a durability change can make more shippable.
 */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "sl_base.h"

#define SCAN_CHUNK (1u << 20)
#define SHORT_READ_TRIES 3

struct sl__tail {
  char logdir[PATH_MAX];
  char mark_path[PATH_MAX];
  uint8_t store_id[SL_STORE_ID_SIZE];
  sl__io *io;
  int ino_fd, dir_wd, mark_wd;
  uint64_t durable;       /* the mark as last read */
  /* position: the frame of next_txid starts at offset in segment segno */
  int seg_fd;             /* -1 until sl__tail_seek */
  uint64_t segno, offset, next_txid;
  uint64_t last_commit_us; /* of next_txid - 1, once a frame was walked */
  uint64_t cs;            /* rolling checksum through next_txid - 1, as set and walked */
  char seg_path[PATH_MAX];
  sl_buf scan;            /* seek's read buffer */
};

int sl__tail_notify_fd(const sl__tail *t) { return t->ino_fd; }
uint64_t sl__tail_durable(const sl__tail *t) { return t->durable; }
uint64_t sl__tail_next_txid(const sl__tail *t) { return t->next_txid; }
void sl__tail_set_checksum(sl__tail *t, uint64_t cs) { t->cs = cs; }

static void watch_mark(sl__tail *t) {
  t->mark_wd = inotify_add_watch(t->ino_fd, t->mark_path, IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF);
}

int sl__tail_open(const char *logdir, const uint8_t store_id[SL_STORE_ID_SIZE], sl__io *io,
                  sl__tail **out) {
  *out = NULL;
  sl__tail *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  int rc;
  t->io = io;
  t->seg_fd = t->ino_fd = t->dir_wd = t->mark_wd = -1;
  memcpy(t->store_id, store_id, SL_STORE_ID_SIZE);
  if (snprintf(t->logdir, sizeof t->logdir, "%s", logdir) >= (int)sizeof t->logdir ||
      snprintf(t->mark_path, sizeof t->mark_path, "%s/durable", logdir) >= (int)sizeof t->mark_path) {
    rc = -ENAMETOOLONG;
    goto fail;
  }
  /* O_NONBLOCK: see io_uring.c (the ring polls it instead of blocking a worker). */
  t->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (t->ino_fd < 0) {
    rc = -errno;
    sl_diag_error("inotify_init1: %s", sl_strerror(rc));
    goto fail;
  }
  t->dir_wd = inotify_add_watch(t->ino_fd, logdir, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
  if (t->dir_wd < 0) {
    rc = -errno;
    sl_diag_error("%s: cannot watch: %s", logdir, sl_strerror(rc));
    goto fail;
  }
  /* Watch first, then read: a mark written in between still wakes us. */
  rc = sl__tail_refresh(t);
  if (rc) goto fail;
  *out = t;
  return 0;
fail:
  sl__tail_close(t);
  return rc;
}

void sl__tail_close(sl__tail *t) {
  if (!t) return;
  if (t->ino_fd >= 0) {
    sl__io_forget(t->io, t->ino_fd);
    close(t->ino_fd);
  }
  if (t->seg_fd >= 0) close(t->seg_fd);
  sl_buf_free(&t->scan);
  free(t);
}

void sl__tail_notify(sl__tail *t, const uint8_t *records, size_t len) {
  size_t off = 0;
  while (off + sizeof(struct inotify_event) <= len) {
    const struct inotify_event *ev = (const struct inotify_event *)(records + off);
    if (ev->wd == t->mark_wd && (ev->mask & IN_IGNORED)) t->mark_wd = -1;
    if (ev->wd == t->dir_wd && ev->len && strcmp(ev->name, "durable") == 0) watch_mark(t);
    off += sizeof *ev + ev->len;
  }
}

int sl__tail_refresh(sl__tail *t) {
  if (t->mark_wd < 0) watch_mark(t);
  uint64_t d;
  int rc = sl_log_read_durable_mark(t->logdir, &d);
  if (rc == SL_ENOTFOUND) {
    d = 0;
    rc = 0;
  }
  if (rc) {
    sl_diag_error("%s: cannot read the durable mark: %s", t->mark_path, sl_strerror(rc));
    return rc;
  }
  t->durable = d;
  return 0;
}

int sl__tail_oldest(sl__tail *t, uint64_t *txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  int rc = sl_log_list(t->logdir, &segs, &n);
  if (rc == 0 && n == 0) rc = SL_ENOTFOUND;
  if (rc == 0) *txid = segs[0].first_txid;
  free(segs);
  return rc;
}

/* Open segment segno and check its header; expect_first 0: any. -ENOENT
 * (not logged) when the file does not exist. */
static int open_segment(sl__tail *t, uint64_t segno, uint64_t expect_first, int *fd_out,
                        char *path, size_t pathlen) {
  if (snprintf(path, pathlen, "%s/%020llu.seg", t->logdir, (unsigned long long)segno) >= (int)pathlen)
    return -ENAMETOOLONG;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int rc = -errno;
    if (rc != -ENOENT) sl_diag_error("%s: cannot open: %s", path, sl_strerror(rc));
    return rc;
  }
  uint8_t raw[SL_SEG_HEADER_SIZE];
  sl_seg_header h;
  long n = sl__io_read(t->io, fd, raw, sizeof raw, 0);
  int rc = n < 0 ? (int)n : n < (long)sizeof raw ? SL_ECORRUPT : sl_seg_header_decode(raw, &h);
  if (rc) {
    sl_diag_error("%s: bad segment header: %s", path, sl_strerror(rc));
  } else if (memcmp(h.store_id, t->store_id, SL_STORE_ID_SIZE) != 0) {
    rc = SL_ESTOREID;
    sl_diag_error("%s: segment of another store", path);
  } else if (h.segno != segno || (expect_first && h.first_txid != expect_first)) {
    rc = SL_EGAP;
    sl_diag_error("%s: header says segment %llu starting at txid %llu; expected segment %llu "
                 "starting at txid %llu", path, (unsigned long long)h.segno,
                 (unsigned long long)h.first_txid, (unsigned long long)segno,
                 (unsigned long long)expect_first);
  }
  if (rc == 0 && (h.flags & SL_SEG_F_LZ4)) {
    /* a receiver's archive (a cascade) packs sealed segments: read them
     * plain, at the offsets the walk expects */
    int plain = -1;
    rc = sl_log_seg_open_plain(fd, path, &h, &plain);
    if (rc == 0) {
      close(fd);
      fd = plain;
    }
  }
  if (rc) {
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

static int switch_segment(sl__tail *t, uint64_t segno, uint64_t first_txid) {
  char path[PATH_MAX];
  int fd = -1;
  int rc = open_segment(t, segno, first_txid, &fd, path, sizeof path);
  if (rc) return rc;
  if (t->seg_fd >= 0) close(t->seg_fd);
  t->seg_fd = fd;
  t->segno = segno;
  t->offset = SL_SEG_HEADER_SIZE;
  t->next_txid = first_txid;
  memcpy(t->seg_path, path, sizeof path);
  return 0;
}

/* Walk the whole frames at the start of buf[0..len) while next_txid <= limit,
 * advancing the position. *used: bytes walked; *stop: why it stopped early
 * (0, SL_ETRUNCATED: a frame is cut, SL_ECORRUPT: not a frame). A frame
 * whose txid is wrong is an error (logged). */
static int walk(sl__tail *t, const uint8_t *buf, size_t len, uint64_t limit, size_t *used,
                int *stop) {
  size_t off = 0;
  *stop = 0;
  while (off < len && t->next_txid <= limit) {
    const uint8_t *payload;
    uint32_t plen;
    size_t flen;
    int rc = sl_frame_decode(buf + off, len - off, &payload, &plen, &flen);
    if (rc) {
      *stop = rc;
      break;
    }
    uint64_t txid, commit_us, epoch;
    rc = sl_txn_peek(payload, plen, &txid, &commit_us, &epoch);
    if (rc == 0 && txid != t->next_txid) rc = SL_EGAP;
    if (rc) {
      sl_diag_error("%s: frame at offset %llu holds txid %llu, expected %llu: %s", t->seg_path,
                   (unsigned long long)t->offset, (unsigned long long)(rc == SL_EGAP ? txid : 0),
                   (unsigned long long)t->next_txid, sl_strerror(rc));
      *used = off;
      return rc;
    }
    t->cs = sl_frame_lineage(t->cs, txid, buf + off, plen);
    off += flen;
    t->offset += flen;
    t->next_txid++;
    t->last_commit_us = commit_us;
  }
  *used = off;
  return 0;
}

/* No whole frame of next_txid (durable) at the current offset: it must open
 * the next segment. stop says what was found instead, for the message. */
static int rotate(sl__tail *t, int stop) {
  int rc = switch_segment(t, t->segno + 1, t->next_txid);
  if (rc != -ENOENT) return rc;
  if (stop == 0) {
    sl_diag_error("%s ends at offset %llu, but txid %llu is durable (mark %llu) and no segment "
                 "%llu follows", t->seg_path, (unsigned long long)t->offset,
                 (unsigned long long)t->next_txid, (unsigned long long)t->durable,
                 (unsigned long long)(t->segno + 1));
    return SL_EGAP;
  }
  sl_diag_error("%s: %s at offset %llu, where durable txid %llu (mark %llu) should be",
               t->seg_path, stop == SL_ETRUNCATED ? "frame cut short" : "bad frame",
               (unsigned long long)t->offset, (unsigned long long)t->next_txid,
               (unsigned long long)t->durable);
  return SL_ECORRUPT;
}

int sl__tail_seek(sl__tail *t, uint64_t txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  int rc;
  if (txid == 0 || txid > t->durable + 1) {
    sl_diag_error("%s: cannot start at txid %llu: the log is durable up to %llu", t->logdir,
                 (unsigned long long)txid, (unsigned long long)t->durable);
    return SL_EGAP;
  }
  rc = sl_log_list(t->logdir, &segs, &n);
  if (rc) goto fail;
  if (n == 0 || txid < segs[0].first_txid) {
    rc = SL_ENOTFOUND;
    goto fail;
  }
  size_t i = n - 1;
  while (segs[i].first_txid > txid) i--;
  rc = switch_segment(t, segs[i].segno, segs[i].first_txid);
  if (rc == -ENOENT) rc = SL_ENOTFOUND; /* pruned since the listing */
  if (rc) goto fail;

  int tries = 0;
  size_t room = SCAN_CHUNK;
  while (t->next_txid < txid) {
    rc = sl_buf_reserve(&t->scan, room);
    if (rc) goto fail;
    long got = sl__io_read(t->io, t->seg_fd, t->scan.data, room, t->offset);
    if (got < 0) {
      rc = (int)got;
      sl_diag_error("%s: read at offset %llu: %s", t->seg_path, (unsigned long long)t->offset,
                   sl_strerror(rc));
      goto fail;
    }
    size_t used;
    int stop;
    rc = walk(t, t->scan.data, (size_t)got, txid - 1, &used, &stop);
    if (rc) goto fail;
    if (used) {
      tries = 0;
      continue;
    }
    if (stop == SL_ETRUNCATED && (size_t)got == room) {
      room = SL_FRAME_HEADER_SIZE + (size_t)sl_get_le32(t->scan.data);
      continue;
    }
    if (stop == SL_ETRUNCATED && got > 0 && ++tries < SHORT_READ_TRIES) continue;
    rc = rotate(t, stop);
    if (rc) goto fail;
  }
  free(segs);
  return 0;
fail:
  free(segs);
  return rc;
}

int sl__tail_read(sl__tail *t, sl_buf *dst, size_t max, sl__tail_run *run) {
  memset(run, 0, sizeof *run);
  if (t->seg_fd < 0) return SL_EINVAL;
  int tries = 0;
  while (t->next_txid <= t->durable) {
    size_t room = max > dst->len ? max - dst->len : 0;
    if (room < SL_FRAME_HEADER_SIZE) break;
    int rc = sl_buf_reserve(dst, dst->len + room);
    if (rc) return rc;
    uint8_t *p = dst->data + dst->len;
    long got = sl__io_read(t->io, t->seg_fd, p, room, t->offset);
    if (got < 0) {
      sl_diag_error("%s: read at offset %llu: %s", t->seg_path, (unsigned long long)t->offset,
                   sl_strerror((int)got));
      return (int)got;
    }
    uint64_t first = t->next_txid;
    size_t used;
    int stop;
    rc = walk(t, p, (size_t)got, t->durable, &used, &stop);
    if (rc) return rc;
    if (used) {
      if (run->bytes == 0) run->first_txid = first;
      run->last_txid = t->next_txid - 1;
      run->last_commit_us = t->last_commit_us;
      run->checksum = t->cs;
      run->bytes += used;
      dst->len += used;
      tries = 0;
      continue;
    }
    if (stop == SL_ETRUNCATED && (size_t)got == room) {
      if (dst->len > 0) break; /* the next frame opens the next batch */
      /* One frame larger than a batch: it travels alone. */
      max = SL_FRAME_HEADER_SIZE + (size_t)sl_get_le32(p);
      continue;
    }
    if (stop == SL_ETRUNCATED && got > 0 && ++tries < SHORT_READ_TRIES) continue;
    rc = rotate(t, stop);
    if (rc) return rc;
    tries = 0;
  }
  return 0;
}
