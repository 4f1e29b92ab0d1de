/*
 * log_read.c: reading segments; its design is at the top of log.c (READING).
 * seg_scan reads a segment through a read-ahead buffer, against the file
 * size as last measured; seg_iter walks its frames checking CRC, txid
 * sequence and payload. Recovery and sl_log_checksum_at (log.c) use the same
 * iterator. On top of them: the reader (any process; it chains segments and
 * tails a growing one) and sl_log_find_after_time. Nothing here writes.
 */
#include "log_int.h"
#include "sl_base.h"
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)

/* ---- scanning segments -------------------------------------------------- */

static int scan_refresh(seg_scan *s) {
  struct stat st;
  if (s->packed) return 0; /* whole in the buffer, never growing */
  if (fstat(s->fd, &st)) {
    int rc = -errno;
    sl_diag_error("stat %s: %s", s->path, sl_strerror(rc));
    return rc;
  }
  s->size = (uint64_t)st.st_size;
  return 0;
}

/* Make file bytes [off, off + n) available in the buffer. */
static int scan_fill(seg_scan *s, uint64_t off, size_t n) {
  if (off >= s->buf_off && off + n <= s->buf_off + s->buf_len) return 0;
  if (off > s->size || n > s->size - off) return SL_ETRUNCATED;
  size_t want = (size_t)SL_MIN((uint64_t)SL_MAX(n, (size_t)READ_CHUNK), s->size - off);
  if (want > s->cap) {
    uint8_t *nb = realloc(s->buf, want);
    if (!nb) return -ENOMEM;
    s->buf = nb;
    s->cap = want;
  }
  s->buf_len = 0;
  s->reads++;
  long r = sl_pread_full(s->fd, s->buf, want, off);
  if (r < 0) return (int)r;
  s->buf_off = off;
  s->buf_len = (size_t)r;
  return (size_t)r < n ? SL_ETRUNCATED : 0; /* the file shrank */
}

/* The frame at off, with CRC checked: 0, SL_ETRUNCATED, SL_ECORRUPT, -errno. */
int sl__log_scan_frame(seg_scan *s, uint64_t off, const uint8_t **payload, uint32_t *plen,
                       size_t *flen) {
  int rc = scan_fill(s, off, SL_FRAME_HEADER_SIZE);
  if (rc) return rc;
  uint32_t l = sl_get_le32(s->buf + (off - s->buf_off));
  if (l == 0 || l > SL_FRAME_MAX) return SL_ECORRUPT;
  if ((rc = scan_fill(s, off, SL_FRAME_HEADER_SIZE + (size_t)l))) return rc;
  return sl_frame_decode(s->buf + (off - s->buf_off), SL_FRAME_HEADER_SIZE + (size_t)l, payload,
                         plen, flen);
}

void sl__log_scan_close(seg_scan *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->buf_len = 0;
}

/* Open the segment at path and position at its first frame. The buffer of
 * a previous segment is kept for reuse. */
int sl__log_iter_open(seg_iter *it, const char *path, int flags) {
  int rc;
  it->s.buf_len = 0;
  it->s.packed = false;
  snprintf(it->s.path, sizeof it->s.path, "%s", path);
  if ((it->s.fd = open(path, flags | O_CLOEXEC)) < 0) {
    rc = -errno;
    sl_diag_error("open %s: %s", path, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl__log_seg_read_header(it->s.fd, path, &it->h)) ||
      (rc = it->h.flags & SL_SEG_F_LZ4 ? sl__log_unpack(&it->s, &it->h) : scan_refresh(&it->s))) {
    sl__log_scan_close(&it->s);
    return rc;
  }
  it->off = SL_SEG_HEADER_SIZE;
  it->next_txid = it->h.first_txid;
  it->cs = it->h.prev_checksum;
  it->bad = 0;
  return 0;
}

/* The next frame of the segment: 0 (frame filled, iterator advanced);
 * SL_EEND when the file (as last measured) ends exactly at a frame
 * boundary, or a ZEROED TAIL (log.h) starts there (it->zeroed); BAD_FRAME
 * when the bytes at it->off are not a whole frame with a good CRC (not
 * logged: the caller decides whether that is a torn tail);
 * SL_ECORRUPT / SL_EGAP (logged) for a frame with a good CRC whose payload
 * is not the expected transaction; -errno. */
int sl__log_iter_frame(seg_iter *it, sl_frame *f) {
  it->zeroed = false;
  if (it->off >= it->s.size) return SL_EEND;
  const uint8_t *p;
  uint32_t plen;
  size_t flen;
  static const uint8_t zero_header[SL_FRAME_HEADER_SIZE];
  if (scan_fill(&it->s, it->off, SL_FRAME_HEADER_SIZE) == 0 &&
      memcmp(it->s.buf + (it->off - it->s.buf_off), zero_header, SL_FRAME_HEADER_SIZE) == 0) {
    it->zeroed = true;
    it->bad = SL_ECORRUPT; /* what it is where no zeroed tail may be (a sealed segment) */
    return SL_EEND;
  }
  int rc = sl__log_scan_frame(&it->s, it->off, &p, &plen, &flen);
  if (rc == SL_ETRUNCATED || rc == SL_ECORRUPT) {
    it->bad = rc;
    return BAD_FRAME;
  }
  if (rc) {
    sl_diag_error("read %s at offset %" PRIu64 ": %s", it->s.path, it->off, sl_strerror(rc));
    return rc;
  }
  if (sl_txn_peek(p, plen, &f->txid, &f->commit_us, &f->epoch)) {
    sl_diag_error("%s: frame at offset %" PRIu64 " has a good CRC but is not a transaction",
                 it->s.path, it->off);
    return SL_ECORRUPT;
  }
  if (f->txid != it->next_txid) {
    sl_diag_error("%s: frame at offset %" PRIu64 ": expected txid %" PRIu64 ", found %" PRIu64,
                 it->s.path, it->off, it->next_txid, f->txid);
    return SL_EGAP;
  }
  f->payload = p;
  f->payload_len = plen;
  f->key_id = it->h.flags & SL_SEG_F_SEALED ? it->h.key_id : NULL;
  f->checksum = it->cs = sl_frame_lineage(it->cs, f->txid, p - SL_FRAME_HEADER_SIZE, plen);
  f->segno = it->h.segno;
  f->offset = it->off;
  it->off += flen;
  it->next_txid++;
  return 0;
}

/* Report the bad frame an iterator stopped at as corruption. */
int sl__log_iter_corrupt(const seg_iter *it, const char *why) {
  sl_diag_error("%s: %s at offset %" PRIu64 " (expected txid %" PRIu64 ")%s", it->s.path,
               it->bad == SL_ETRUNCATED ? "frame cut short" : "bad frame", it->off,
               it->next_txid, why);
  return SL_ECORRUPT;
}

/* ---- reader ------------------------------------------------------------------ */

struct sl_log_reader {
  char *dir;
  sl_log_reader_options opt;
  uint64_t from_txid;
  uint8_t store_id[SL_STORE_ID_SIZE];
  int err; /* a failed segment switch leaves no segment to read: sticky */
  bool sealed_seen; /* the next segment was seen: the current one is read once more, as final */
  seg_iter it;
  uint8_t *plain; /* sl_log_reader_open_frame's output */
  size_t plain_cap;
};

int sl_log_reader_open(const char *logdir, uint64_t from_txid, const sl_log_reader_options *opt,
                       sl_log_reader **out) {
  sl_seg_info *segs = NULL;
  size_t n = 0, i;
  sl_log_reader *r = NULL;
  int rc = opt && opt->newest_run ? sl_log_list_newest_run(logdir, &segs, &n, NULL) : sl_log_list(logdir, &segs, &n);
  if (rc) return rc;
  if (n == 0) {
    sl_diag_error("%s: no log segments", logdir);
    rc = SL_ENOTFOUND;
    goto fail;
  }
  if (from_txid == 0) from_txid = segs[0].first_txid;
  if (from_txid < segs[0].first_txid) {
    sl_diag_error("%s: txid %" PRIu64 " is no longer in the log (the oldest segment starts at %" PRIu64
                 ")",
                 logdir, from_txid, segs[0].first_txid);
    rc = SL_ENOTFOUND;
    goto fail;
  }
  for (i = n - 1; segs[i].first_txid > from_txid; i--) continue;
  if (!(r = calloc(1, sizeof *r)) || !(r->dir = strdup(logdir))) {
    rc = -ENOMEM;
    goto fail;
  }
  r->it.s.fd = -1;
  if (opt) r->opt = *opt;
  r->from_txid = from_txid;
  if ((rc = sl__log_iter_open(&r->it, segs[i].path, O_RDONLY))) goto fail;
  memcpy(r->store_id, r->it.h.store_id, SL_STORE_ID_SIZE);
  free(segs);
  *out = r;
  return 0;

fail:
  free(segs);
  sl_log_reader_close(r);
  return rc;
}

/* Move to segment segno + 1, which must continue the txid sequence. */
static int reader_next_segment(sl_log_reader *r) {
  char path[PATH_MAX];
  uint64_t expect = r->it.next_txid, segno = r->it.h.segno + 1;
  int rc = sl__log_seg_path(path, r->dir, segno, "");
  if (rc) return rc;
  sl__log_scan_close(&r->it.s);
  if ((rc = sl__log_iter_open(&r->it, path, O_RDONLY))) return rc;
  if (memcmp(r->it.h.store_id, r->store_id, SL_STORE_ID_SIZE)) {
    sl_diag_error("%s: belongs to another store", path);
    return SL_ESTOREID;
  }
  if (r->it.h.segno != segno) {
    sl_diag_error("%s: header names segment %" PRIu64, path, r->it.h.segno);
    return SL_ECORRUPT;
  }
  if (r->it.h.first_txid != expect) {
    sl_diag_error("%s: starts at txid %" PRIu64 ", expected %" PRIu64 " after the previous segment",
                 path, r->it.h.first_txid, expect);
    return SL_EGAP;
  }
  return 0;
}

int sl_log_reader_next(sl_log_reader *r, sl_frame *frame) {
  uint64_t reads_before = r->it.s.reads;
  for (;;) {
    if (r->opt.max_txid && r->it.next_txid > r->opt.max_txid) return SL_EEND;
    if (r->err) return r->err;
    int rc = sl__log_iter_frame(&r->it, frame);
    if (rc == 0) {
      r->sealed_seen = false;
      if (frame->txid < r->from_txid) continue;
      return 0;
    }
    if (rc != SL_EEND && rc != BAD_FRAME) return rc;
    /* An end seen in bytes read ahead by an earlier call may be a ZEROED
     * TAIL that frames have overwritten since: read them again first. */
    if (r->it.s.buf_len && r->it.s.reads == reads_before) {
      r->it.s.buf_len = 0;
      continue;
    }

    /* No whole frame in what we saw of the file. Look for the next segment
     * first and measure afterwards: if the next one exists then, this one
     * is sealed, and what is read of it after the look is final (frames
     * written over a ZEROED TAIL change no size, so it is read once more). */
    char next[PATH_MAX];
    struct stat st;
    if ((rc = sl__log_seg_path(next, r->dir, r->it.h.segno + 1, ""))) return rc;
    bool has_next = stat(next, &st) == 0;
    uint64_t seen = r->it.s.size;
    r->it.s.buf_len = 0; /* bytes past a torn or zeroed tail may still change */
    if ((rc = scan_refresh(&r->it.s))) return rc;
    if (r->it.s.size != seen) continue;
    if (!has_next) {
      if (r->it.off < r->it.s.size && !r->it.zeroed && !r->opt.tolerate_tail)
        return sl__log_iter_corrupt(&r->it, "");
      return SL_EEND;
    }
    if (!r->sealed_seen) {
      r->sealed_seen = true;
      continue;
    }
    r->sealed_seen = false;
    if (r->it.off < r->it.s.size)
      return sl__log_iter_corrupt(&r->it, " in a sealed segment (a later segment exists)");
    if ((rc = reader_next_segment(r))) {
      sl__log_scan_close(&r->it.s);
      return r->err = rc;
    }
  }
}

int sl_log_reader_open_frame(sl_log_reader *r, sl_keyring *kr, sl_frame *f) {
  if (!f->key_id) return 0;
  char path[PATH_MAX];
  size_t len;
  int rc = SL_ENOTFOUND;
  sl__log_seg_path(path, r->dir, f->segno, "");
  if (!kr) {
    sl_diag_error("%s: offset %" PRIu64 ": txid %" PRIu64 " is sealed with key %s: give the key file "
                 "(--key-file or " SL_CRYPT_ENV ")", path, f->offset, f->txid, f->key_id);
    return rc;
  }
  if (!sl_keyring_has(kr, f->key_id)) {
    sl_diag_error("%s: offset %" PRIu64 ": txid %" PRIu64 " is sealed with key %s, which is not in the key "
                 "file %s", path, f->offset, f->txid, f->key_id, sl_keyring_path(kr));
    return rc;
  }
  /* 0: does not parse, which the open below reports. */
  size_t room = sl_crypt_frame_open_size(f->payload, f->payload_len);
  if (r->plain_cap < room) {
    uint8_t *p = realloc(r->plain, room);
    if (!p) return -ENOMEM;
    r->plain = p;
    r->plain_cap = room;
  }
  if ((rc = sl_crypt_open_frame(kr, f->key_id, r->store_id, f->payload, f->payload_len, r->plain, r->plain_cap,
                                &len, NULL))) {
    sl_diag_error("%s: offset %" PRIu64 ": txid %" PRIu64 " sealed with key %s does not open: %s", path, f->offset,
                 f->txid, f->key_id,
                 rc == SL_EAUTH ? "authentication failed (wrong key, or changed bytes)" : sl_strerror(rc));
    return rc;
  }
  f->payload = r->plain;
  f->payload_len = (uint32_t)len;
  return 0;
}

void sl_log_reader_set_max(sl_log_reader *r, uint64_t max_txid) { r->opt.max_txid = max_txid; }

void sl_log_reader_close(sl_log_reader *r) {
  if (!r) return;
  sl__log_scan_close(&r->it.s);
  free(r->it.s.buf);
  free(r->plain);
  free(r->dir);
  free(r);
}

/* ---- time search ------------------------------------------------------------- */

/* Commit time of a segment's first frame; *none when it has no whole frame
 * (only the newest may: it can be empty or hold an append in progress). */
static int first_commit(seg_iter *it, const sl_seg_info *seg, bool newest, uint64_t *us,
                        bool *none) {
  sl_frame f;
  int rc = sl__log_iter_open(it, seg->path, O_RDONLY);
  if (rc) return rc;
  rc = sl__log_iter_frame(it, &f);
  *none = rc == SL_EEND || rc == BAD_FRAME;
  if (rc == 0) *us = f.commit_us;
  else if (rc == BAD_FRAME && !newest) rc = sl__log_iter_corrupt(it, "");
  else if (rc == SL_EEND && !newest) {
    sl_diag_error("%s: a sealed segment without frames", it->s.path);
    rc = SL_ECORRUPT;
  } else if (*none) rc = 0;
  sl__log_scan_close(&it->s);
  return rc;
}

static int find_after_time(const char *logdir, bool newest_run, uint64_t since_us, uint64_t *txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  seg_iter it = {.s.fd = -1};
  uint64_t us;
  bool none;
  int rc = newest_run ? sl_log_list_newest_run(logdir, &segs, &n, NULL) : sl_log_list(logdir, &segs, &n);
  if (rc) return rc;
  if (n == 0) {
    sl_diag_error("%s: no log segments", logdir);
    rc = SL_ENOTFOUND;
    goto out;
  }
  /* Commit times never decrease: find the last segment whose first frame
   * is at or before since_us (an empty newest segment counts as later). */
  size_t lo = 0, hi = n; /* the answer lies in [lo, hi) once lo's first frame qualifies */
  if ((rc = first_commit(&it, &segs[0], n == 1, &us, &none))) goto out;
  if (none || us > since_us) {
    *txid = segs[0].first_txid;
    goto out;
  }
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if ((rc = first_commit(&it, &segs[mid], mid + 1 == n, &us, &none))) goto out;
    if (!none && us <= since_us) lo = mid;
    else hi = mid;
  }
  if ((rc = sl__log_iter_open(&it, segs[lo].path, O_RDONLY))) goto out;
  sl_frame f;
  while ((rc = sl__log_iter_frame(&it, &f)) == 0) {
    if (f.commit_us > since_us) {
      *txid = f.txid;
      goto out;
    }
  }
  if (sl__log_iter_bad_if_sealed(&it, rc) && lo + 1 < n) {
    rc = sl__log_iter_corrupt(&it, "");
    goto out;
  }
  if (rc != SL_EEND && rc != BAD_FRAME) goto out; /* the newest's tail may be an append */
  rc = 0;
  *txid = lo + 1 < n ? segs[lo + 1].first_txid : it.next_txid;

out:
  sl__log_scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  return rc;
}

int sl_log_find_after_time(const char *logdir, uint64_t since_us, uint64_t *txid) {
  return find_after_time(logdir, false, since_us, txid);
}

int sl_log_find_after_time_newest_run(const char *logdir, uint64_t since_us, uint64_t *txid) {
  return find_after_time(logdir, true, since_us, txid);
}
