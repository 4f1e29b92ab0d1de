/*
 * The transaction log. The on-disk format (segment header, frame, durable
 * mark, consumer files) and the recovery rule are specified in log.h; log.c
 * and the files beside it are the one implementation of them, and this
 * comment is the design of all of them. The parts (log_int.h declares what
 * they share):
 *   log.c            segments: names, listing, headers; sl_log_create, open
 *                    with RECOVERY, close; lineage of an open log; truncation
 *   log_format.c     the byte codecs of log.h's format (no I/O)
 *   log_write.c      the durable mark, creating segments and ROTATION,
 *                    append, GROUP COMMIT
 *   log_read.c       READING: seg_scan, seg_iter, the reader, time search
 *   log_consumers.c  consumer positions and pruning
 *   log_size.c       bytes after a txid (lag), on the public API only
 *
 * WRITER STATE
 *   One sl_log owns the newest segment ("active") through an O_RDWR fd.
 *   Two locks:
 *     append_mu  serializes sl_log_append (and thereby rotation): the
 *                appender alone changes fd, segno, seg_end and next_txid.
 *     mu + cv    guard the published positions: written (last frame fully
 *                handed to write()), durable (covered by an fdatasync),
 *                the `syncing` flag, the sticky fail code and the counters.
 *   Lock order: append_mu before mu. Nothing does I/O while holding mu
 *   except the 32-byte pwrite of the durable mark.
 *   sl__log_check asserts the whole writer state after each change of it, and
 *   the group commit asserts its own steps (SL_ASSERT, on in every build).
 *
 * GROUP COMMIT (sl_log_wait_durable)
 *   A waiter whose txid is not durable becomes the leader if nobody is
 *   syncing: it sets `syncing`, captures written txid and the fd, drops mu,
 *   fdatasyncs, retakes mu, publishes durable = captured txid, rewrites the
 *   durable mark and broadcasts. Waiters that arrive meanwhile sleep on cv
 *   and either find their txid covered when woken or lead the next round, so
 *   N concurrent committers cost about two fdatasyncs, not N. A failed
 *   fdatasync stores the error in fail_code: the log is FAILED, every later
 *   call returns SL_EFAILED, and nothing retries the sync (the kernel may
 *   have dropped the dirty pages and would report success the second time).
 *
 * SYNC AHEAD (sl_log_sync_ahead)
 *   A writer with more to do between its append and its wait (the store's
 *   LMDB commit, commit.c) asks the log's helper thread to lead the group
 *   commit for what is written, and waits later: the fdatasync overlaps
 *   that work instead of following it. The helper is an ordinary waiter of
 *   sl_log_wait_durable, started by the first request, stopped at close;
 *   whichever of it and the writer comes first leads the sync.
 *
 * ROTATION
 *   When the next frame would pass the segment size, the appender (holding
 *   append_mu) waits until no leader is syncing and takes the `syncing` role
 *   itself, so no leader can fdatasync an fd that is about to be closed.
 *   It fdatasyncs the old segment (everything in it is then durable and is
 *   published as such), writes NNN.seg.tmp with the header, fdatasyncs and
 *   renames it, fsyncs the directory, and swaps fds. A segment therefore
 *   appears under its final name only with a whole header, and only after
 *   its predecessor received its last byte: a reader that sees segment N+1
 *   knows segment N is complete. A failure before the rename leaves the old
 *   segment active and the log usable; a failed fsync makes it FAILED.
 *
 * RECOVERY (sl_log_open) follows log.h, plus one guard: the durable mark
 *   names the end of the last frame an fdatasync covered. A bad frame below
 *   that offset cannot be an unacknowledged torn append, so it is reported
 *   as SL_ECORRUPT instead of being cut (this also catches a damaged length
 *   field, after which the "valid frame follows" test cannot find the next
 *   frame). A torn or missing mark gives no evidence and is ignored: the
 *   mark is derived and rewritten at the end of recovery. Only the newest
 *   segment is scanned (and its predecessor when the newest holds no frame,
 *   for the last commit time); older segments were fdatasynced when sealed
 *   and are checked by every reader that passes them.
 *
 * READING
 *   A segment is read through seg_scan: pread into a buffer that reads ahead
 *   in READ_CHUNK pieces, against the file size as last seen (fstat), so a
 *   length field from a torn frame never makes it allocate or read past EOF.
 *   seg_iter walks the frames of one segment checking CRC, txid sequence and
 *   payload. The reader (any process) chains iterators across segments;
 *   recovery and sl_log_find_after_time use the same iterator.
 *
 * SEALED SEGMENTS (log.h, SEALED FRAMES). The log neither seals nor opens:
 *   the caller appends payloads it sealed and names their key with
 *   sl_log_set_key_id. A key other than the active segment's starts a new
 *   segment; when the active one holds no frame yet its header is rewritten
 *   in place instead (no empty segment in the middle of the log; the next
 *   group-commit fdatasync covers the header with the frame). Readers hand
 *   out the segment's key id with every frame.
 */
#include "log_int.h"
#include "sl_base.h"
#include "crypt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_NAME_DIGITS 20
#define SEG_SUFFIX ".seg"

/* log.h and crypt.h name the same sizes (crypt does not include store/). */
_Static_assert(SL_KEY_ID_SIZE == SL_CRYPT_KEY_ID_MAX, "key id sizes differ");
_Static_assert(SL_STORE_ID_SIZE == SL_CRYPT_STORE_ID_SIZE, "store id sizes differ");
_Static_assert(SL_FRAME_MAX == SL_CRYPT_PLAIN_MAX, "a compressed sealed frame declares at most a frame");

/* ---- invariants (SL_ASSERT: on in every build) ------------------------ */

/* The whole writer state; caller holds mu and the appender is quiescent
 * (append_mu held, or inside open). Positions are (segno, end) pairs and
 * txids: durable <= written <= next - 1. */
void sl__log_check(const sl_log *log) {
  SL_ASSERT(log->seg_size >= SL_SEG_SIZE_MIN, "%s: segment size %" PRIu64, log->dir, log->seg_size);
  SL_ASSERT(log->fd >= 0, "%s: no active segment", log->dir);
  SL_ASSERT(log->seg_end >= SL_SEG_HEADER_SIZE, "%s: segment end %" PRIu64, log->dir, log->seg_end);
  SL_ASSERT(log->written_txid + 1 == log->next_txid, "%s: written %" PRIu64 ", next %" PRIu64, log->dir,
            log->written_txid, log->next_txid);
  SL_ASSERT(log->seg_first_txid <= log->next_txid, "%s: segment starts at %" PRIu64 ", next %" PRIu64,
            log->dir, log->seg_first_txid, log->next_txid);
  SL_ASSERT(log->durable_txid <= log->written_txid, "%s: durable %" PRIu64 " > written %" PRIu64, log->dir,
            log->durable_txid, log->written_txid);
  SL_ASSERT(log->written_segno <= log->segno && log->durable_segno <= log->written_segno,
            "%s: segno durable %" PRIu64 ", written %" PRIu64 ", active %" PRIu64, log->dir, log->durable_segno,
            log->written_segno, log->segno);
  SL_ASSERT(log->durable_segno < log->written_segno || log->durable_end <= log->written_end,
            "%s: segment %" PRIu64 ": durable end %" PRIu64 " > written end %" PRIu64, log->dir,
            log->durable_segno, log->durable_end, log->written_end);
  SL_ASSERT(log->written_segno < log->segno || log->written_end <= log->seg_end,
            "%s: segment %" PRIu64 ": written end %" PRIu64 " > end %" PRIu64, log->dir, log->segno,
            log->written_end, log->seg_end);
}

/* ---- paths and directory listing ---------------------------------------- */

int sl__log_seg_path(char out[PATH_MAX], const char *dir, uint64_t segno, const char *suffix) {
  int n = snprintf(out, PATH_MAX, "%s/%020" PRIu64 SEG_SUFFIX "%s", dir, segno, suffix);
  return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* "NNNNNNNNNNNNNNNNNNNN.seg" followed by `suffix`. */
static bool parse_seg_name(const char *name, const char *suffix, uint64_t *segno) {
  size_t sl = strlen(suffix);
  if (strlen(name) != SEG_NAME_DIGITS + strlen(SEG_SUFFIX) + sl) return false;
  uint64_t v = 0;
  for (int i = 0; i < SEG_NAME_DIGITS; i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(name[i] - '0');
  }
  if (memcmp(name + SEG_NAME_DIGITS, SEG_SUFFIX, strlen(SEG_SUFFIX)) ||
      memcmp(name + SEG_NAME_DIGITS + strlen(SEG_SUFFIX), suffix, sl))
    return false;
  *segno = v;
  return true;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Segment numbers in dir whose file name ends in `suffix` ("" for
 * segments), sorted; malloc'd. */
static int list_segnos(const char *dir, const char *suffix, uint64_t **out, size_t *count) {
  DIR *d = opendir(dir);
  if (!d) {
    int rc = -errno;
    sl_diag_error("open log directory %s: %s", dir, sl_strerror(rc));
    return rc;
  }
  uint64_t *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d))) {
    uint64_t segno;
    if (!parse_seg_name(de->d_name, suffix, &segno)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      uint64_t *nv = realloc(v, cap * sizeof *v);
      if (!nv) {
        rc = -ENOMEM;
        goto fail;
      }
      v = nv;
    }
    v[n++] = segno;
  }
  if (errno) {
    rc = -errno;
    sl_diag_error("read log directory %s: %s", dir, sl_strerror(rc));
    goto fail;
  }
  closedir(d);
  if (n) qsort(v, n, sizeof *v, cmp_u64);
  *out = v;
  *count = n;
  return 0;

fail:
  closedir(d);
  free(v);
  return rc;
}

/* Read and check the header of an open segment file; why (may be NULL)
 * gets the reason, which is logged unless quiet. */
#define HDR_FAIL(...)                                      \
  do {                                                     \
    if (why) snprintf(why, whylen, __VA_ARGS__);           \
    if (!quiet) sl_diag_error(__VA_ARGS__);                \
  } while (0)
static int read_header(int fd, const char *path, sl_seg_header *h, bool quiet, char *why, size_t whylen) {
  uint8_t buf[SL_SEG_HEADER_SIZE];
  long r = sl_pread_full(fd, buf, sizeof buf, 0);
  int rc;
  if (r < 0) {
    rc = (int)r;
    HDR_FAIL("read header of %s: %s", path, sl_strerror(rc));
    return rc;
  }
  if (r < SL_SEG_HEADER_SIZE) {
    HDR_FAIL("%s: %ld bytes, shorter than a segment header", path, r);
    return r >= 8 && memcmp(buf, SL_SEG_MAGIC, 8) == 0 ? SL_ECORRUPT : SL_ENOTLOG;
  }
  if ((rc = sl_seg_header_decode(buf, h))) {
    HDR_FAIL("%s: segment header: %s", path, sl_strerror(rc));
    return rc;
  }
  if (h->flags & ~(SL_SEG_F_SEALED | SL_SEG_F_LZ4 | SL_SEG_F_SEALED_LZ4)) {
    HDR_FAIL("%s: segment flags 0x%" PRIx32 " are not supported (written by a newer shiplog?)", path, h->flags);
    return SL_EVERSION;
  }
  if ((h->flags & SL_SEG_F_SEALED_LZ4) && !(h->flags & SL_SEG_F_SEALED)) {
    HDR_FAIL("%s: segment header: compressed sealed frames in a segment that is not sealed", path);
    return SL_ECORRUPT;
  }
  if (!(h->flags & SL_SEG_F_SEALED) != !h->key_id[0]) {
    HDR_FAIL("%s: segment header: the sealed flag and the key id disagree", path);
    return SL_ECORRUPT;
  }
  return 0;
}

#undef HDR_FAIL

int sl__log_seg_read_header(int fd, const char *path, sl_seg_header *h) {
  return read_header(fd, path, h, false, NULL, 0);
}

/* NEWEST RUN's warning, once per process for each log directory and cut:
 * every reader's open lists the segments again. */
static void warn_cut_once(const char *logdir, uint64_t from, const char *why) {
  static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  static struct {
    char dir[256];
    uint64_t from;
  } seen[8];
  static unsigned next;
  bool warned = false;
  pthread_mutex_lock(&mu);
  for (size_t i = 0; i < 8 && !warned; i++)
    warned = seen[i].from == from && !strncmp(seen[i].dir, logdir, sizeof seen[i].dir - 1);
  if (!warned) {
    snprintf(seen[next % 8].dir, sizeof seen[0].dir, "%s", logdir);
    seen[next++ % 8].from = from;
  }
  pthread_mutex_unlock(&mu);
  if (!warned)
    sl_diag_warn("%s; so %s is read from segment %" PRIu64 " on, and nothing before it can be reached", why, logdir,
                from);
}

/* Both listings (log.h). A segment that cannot be opened, whose header is
 * damaged, or before which a number is missing fails the strict listing;
 * with newest_run it starts the list again after it (a missing number: at
 * it), and *cut (may be NULL) is then the first segment number kept. */
static int list_segments(const char *logdir, bool newest_run, sl_seg_info **out, size_t *count, uint64_t *cut) {
  uint64_t *segnos = NULL;
  size_t n = 0, k = 0; /* k: entries of v kept */
  sl_seg_info *v = NULL;
  uint8_t store_id[SL_STORE_ID_SIZE];
  bool have_id = false;
  uint64_t from = 0; /* newest_run: where the kept run starts, when something was left out */
  char why[4400] = "";
  int fd = -1;
  int rc = list_segnos(logdir, "", &segnos, &n);
  if (cut) *cut = 0;
  if (rc) return rc;
  if (n && !(v = calloc(n, sizeof *v))) {
    rc = -ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    sl_seg_info *s = &v[k];
    sl_seg_header h;
    struct stat st;
    if ((rc = sl__log_seg_path(s->path, logdir, segnos[i], ""))) goto fail;
    if ((fd = open(s->path, O_RDONLY | O_CLOEXEC)) < 0) {
      rc = -errno;
      if (newest_run && rc == -ENOENT && k == 0) continue; /* the oldest, pruned while listing */
      snprintf(why, sizeof why, "open %s: %s", s->path, sl_strerror(rc));
      goto broken;
    }
    if ((rc = read_header(fd, s->path, &h, true, why, sizeof why))) goto broken;
    if (fstat(fd, &st)) {
      rc = -errno;
      sl_diag_error("stat %s: %s", s->path, sl_strerror(rc));
      goto fail;
    }
    close(fd);
    fd = -1;
    if (h.segno != segnos[i]) {
      snprintf(why, sizeof why, "%s: header names segment %" PRIu64, s->path, h.segno);
      rc = SL_ECORRUPT;
      goto broken;
    }
    if (!have_id) {
      memcpy(store_id, h.store_id, SL_STORE_ID_SIZE);
      have_id = true;
    } else if (memcmp(store_id, h.store_id, SL_STORE_ID_SIZE)) {
      sl_diag_error("%s: belongs to another store than %s", s->path, v[0].path);
      rc = SL_ESTOREID;
      goto fail;
    }
    if (k && segnos[i] != v[k - 1].segno + 1) {
      snprintf(why, sizeof why, "%s: segment %" PRIu64 " is missing before it", s->path, v[k - 1].segno + 1);
      rc = SL_EGAP;
      if (!newest_run) goto broken;
      memmove(v, s, sizeof *s); /* this one starts the run */
      s = v;
      k = 0;
      from = segnos[i];
    } else if (k && h.first_txid <= v[k - 1].first_txid) {
      sl_diag_error("%s: first txid %" PRIu64 " does not follow segment %" PRIu64
                   "'s first txid %" PRIu64,
                   s->path, h.first_txid, v[k - 1].segno, v[k - 1].first_txid);
      rc = SL_ECORRUPT;
      goto fail;
    }
    s->segno = h.segno;
    s->first_txid = h.first_txid;
    s->size = (uint64_t)st.st_size;
    k++;
    continue;
  broken: /* strict: the listing fails; newest_run: what came before this one cannot be reached */
    if (!newest_run) {
      sl_diag_error("%s", why);
      goto fail;
    }
    if (fd >= 0) close(fd);
    fd = -1;
    k = 0;
    from = segnos[i] + 1;
  }
  if (from) {
    if (k) from = v[0].segno; /* a gap may follow a damaged one */
    warn_cut_once(logdir, from, why);
    if (cut) *cut = from;
  }
  free(segnos);
  *out = v;
  *count = k;
  return 0;

fail:
  if (fd >= 0) close(fd);
  free(segnos);
  free(v);
  return rc;
}

int sl_log_list(const char *logdir, sl_seg_info **out, size_t *count) {
  return list_segments(logdir, false, out, count, NULL);
}

int sl_log_list_newest_run(const char *logdir, sl_seg_info **out, size_t *count, uint64_t *cut) {
  return list_segments(logdir, true, out, count, cut);
}

/* ---- segment headers of lineage (lineage.c) --------------------------------- */

int sl_seg_set_origin(const char *path, uint64_t epoch, uint64_t prev_checksum) {
  uint8_t b[SL_SEG_HEADER_SIZE];
  sl_seg_header h;
  struct stat sb;
  int rc, fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    sl_diag_error("open %s: %s", path, sl_strerror(rc));
    return rc;
  }
  long got = sl_pread_full(fd, b, sizeof b, 0);
  if (got != (long)sizeof b) {
    rc = got < 0 ? (int)got : SL_ETRUNCATED;
    sl_diag_error("read header of %s: %s", path, sl_strerror(rc));
    goto out;
  }
  if ((rc = sl_seg_header_decode(b, &h))) {
    sl_diag_error("%s: bad segment header: %s", path, sl_strerror(rc));
    goto out;
  }
  if (fstat(fd, &sb) || (uint64_t)sb.st_size != SL_SEG_HEADER_SIZE) {
    rc = SL_EINVAL; /* the frames' checksums chain on from the old value */
    sl_diag_error("%s: holds frames: its lineage can no longer change", path);
    goto out;
  }
  h.epoch = epoch;
  h.prev_checksum = prev_checksum;
  sl_seg_header_encode(&h, b);
  if ((rc = sl_fault(SL_FAULT_LOG_HEADER)) || (rc = sl_pwrite_all(fd, b, sizeof b, 0)) ||
      (rc = sl_fault(SL_FAULT_LOG_HEADER)) || (rc = sl_fdatasync(fd)))
    sl_diag_error("rewrite header of %s: %s", path, sl_strerror(rc));
out:
  close(fd);
  return rc;
}

/* ---- create, open (RECOVERY), close, accessors ------------------------------ */

int sl_log_create(const char *logdir, const sl_log_options *opt) {
  uint64_t *segnos = NULL;
  size_t n = 0;
  int fd = -1, rc;
  bool renamed;
  uint64_t seg_size = opt->segment_size ? opt->segment_size : SL_SEG_SIZE_DEFAULT;
  uint64_t first = opt->first_txid ? opt->first_txid : 1;
  if (seg_size < SL_SEG_SIZE_MIN) {
    sl_diag_error("%s: segment size %" PRIu64 " is below the minimum %llu", logdir, seg_size,
                 SL_SEG_SIZE_MIN);
    return SL_EINVAL;
  }
  if ((rc = sl_mkdir_p(logdir)) || (rc = list_segnos(logdir, "", &segnos, &n))) return rc;
  free(segnos);
  if (n) {
    sl_diag_error("%s already holds log segments", logdir);
    return SL_EEXIST;
  }
  sl_seg_header h = {.version = SL_SEG_VERSION, .segno = 1, .first_txid = first,
                     .epoch = opt->epoch, .prev_checksum = first > 1 ? opt->prev_checksum : 0,
                     .segment_size = seg_size};
  memcpy(h.store_id, opt->store_id, SL_STORE_ID_SIZE);
  if ((rc = sl__log_seg_create(logdir, &h, &fd, &renamed))) return rc;
  close(fd);
  uint8_t b[SL_DURABLE_MARK_SIZE];
  sl__log_mark_encode(b, first - 1, h.segno, SL_SEG_HEADER_SIZE);
  return sl_write_file_atomic(logdir, MARK_NAME, b, sizeof b);
}

/* Remove NNN.seg.tmp files left by a crash during rotation. */
static int remove_stale_tmp(const char *logdir) {
  uint64_t *segnos = NULL;
  size_t n = 0;
  int rc = list_segnos(logdir, TMP_SUFFIX, &segnos, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    char path[PATH_MAX];
    if (!(rc = sl__log_seg_path(path, logdir, segnos[i], TMP_SUFFIX)) && unlink(path) &&
        errno != ENOENT) {
      rc = -errno;
      sl_diag_error("remove %s: %s", path, sl_strerror(rc));
    }
  }
  free(segnos);
  return rc;
}

/* After BAD_FRAME: does a valid frame with the following txid start where
 * the bad frame's length says the next one begins? */
static bool valid_frame_follows(seg_iter *it) {
  if (it->bad != SL_ECORRUPT) return false; /* cut short: nothing can follow */
  uint32_t l = sl_get_le32(it->s.buf + (it->off - it->s.buf_off));
  const uint8_t *p;
  uint32_t plen;
  size_t flen;
  uint64_t txid;
  return l && l <= SL_FRAME_MAX &&
         sl__log_scan_frame(&it->s, it->off + SL_FRAME_HEADER_SIZE + l, &p, &plen, &flen) == 0 &&
         sl_txn_peek(p, plen, &txid, NULL, NULL) == 0 && txid == it->next_txid + 1;
}

/* Walk a segment that must be whole to its end (any bad frame: corrupt).
 * Leaves the last frame in *last (txid 0 if the segment has none). */
static int iter_walk_sealed(seg_iter *it, sl_frame *last) {
  sl_frame f;
  int rc;
  last->txid = 0;
  while ((rc = sl__log_iter_frame(it, &f)) == 0) *last = f;
  if (sl__log_iter_bad_if_sealed(it, rc)) return sl__log_iter_corrupt(it, "");
  return rc == SL_EEND ? 0 : rc;
}

/* Is every byte of the segment from off to its end zero? */
static int zero_to_end(seg_iter *it, uint64_t off, bool *zero) {
  uint8_t b[4096];
  *zero = true;
  while (*zero && off < it->s.size) {
    long r = sl_pread_full(it->s.fd, b, (size_t)SL_MIN((uint64_t)sizeof b, it->s.size - off), off);
    if (r <= 0) {
      int rc = r < 0 ? (int)r : SL_ETRUNCATED;
      sl_diag_error("read %s at offset %" PRIu64 ": %s", it->s.path, off, sl_strerror(rc));
      return rc;
    }
    for (long i = 0; i < r; i++) *zero = *zero && !b[i];
    off += (uint64_t)r;
  }
  return 0;
}

/* RECOVERY of log.h on the newest segment, opened in it (O_RDWR). Sets the
 * appender state. `m` is the durable mark or NULL. */
static int recover_newest(sl_log *log, seg_iter *it, const mark *m, uint64_t keep_txid) {
  sl_frame f = {0};
  uint64_t last_commit = 0, epoch = it->h.epoch;
  int rc;
  while ((rc = sl__log_iter_frame(it, &f)) == 0) {
    last_commit = f.commit_us;
    epoch = f.epoch;
  }
  if (rc != SL_EEND && rc != BAD_FRAME) return rc;
  if (rc == SL_EEND && it->zeroed) {
    /* A ZEROED TAIL is kept; zeros followed by anything else are torn. */
    bool zero;
    int zrc = zero_to_end(it, it->off, &zero);
    if (zrc) return zrc;
    if (!zero) {
      rc = BAD_FRAME;
      it->bad = SL_ECORRUPT;
    }
  }

  if (rc == BAD_FRAME && valid_frame_follows(it))
    return sl__log_iter_corrupt(it, "; a valid frame follows it, so this is not a torn tail");
  if (m && (m->segno > it->h.segno || (m->segno == it->h.segno && m->end > it->off))) {
    if (rc == BAD_FRAME)
      return sl__log_iter_corrupt(it, "; it lies below the durable mark, so this is not a torn tail");
    sl_diag_error("%s: ends at offset %" PRIu64 " (txid %" PRIu64 ") but the durable mark says "
                 "txid %" PRIu64 " ending at segment %" PRIu64 " offset %" PRIu64 " is durable",
                 it->s.path, it->off, it->next_txid - 1, m->txid, m->segno, m->end);
    return SL_ECORRUPT;
  }
  /* Decided before anything is cut: frames a caller already applied
   * (LMDB's applied txid) are no torn tail, whatever the mark says. */
  if (it->next_txid <= keep_txid) {
    if (rc == BAD_FRAME) {
      char why[160];
      snprintf(why, sizeof why, "; the store's state already applied txids through %" PRIu64
               ", so this is not a torn tail", keep_txid);
      return sl__log_iter_corrupt(it, why);
    }
    sl_diag_error("%s: ends at offset %" PRIu64 " (txid %" PRIu64 ") but the store's state already applied txids "
                 "through %" PRIu64, it->s.path, it->off, it->next_txid - 1, keep_txid);
    return SL_ECORRUPT;
  }
  if (rc == BAD_FRAME) {
    sl_diag_warn("%s: cutting a torn tail at offset %" PRIu64 " (%" PRIu64 " bytes, %s); "
                "the next txid is %" PRIu64,
                it->s.path, it->off, it->s.size - it->off,
                it->bad == SL_ETRUNCATED ? "frame cut short" : "bad frame", it->next_txid);
    if (ftruncate(it->s.fd, (off_t)it->off)) {
      rc = -errno;
      sl_diag_error("truncate %s at offset %" PRIu64 ": %s", it->s.path, it->off, sl_strerror(rc));
      return rc;
    }
    it->s.size = it->off;
    it->s.buf_len = 0;
  }
  log->seg_end = it->off;
  log->zeroed_end = it->s.size;
  log->next_txid = it->next_txid;
  log->last_commit_us = last_commit;
  log->epoch = epoch;
  log->cs = it->cs;
  return 0;
}

int sl_log_open(const char *logdir, const uint8_t *store_id, sl_log **out) {
  return sl_log_open_keep(logdir, store_id, 0, out);
}

int sl_log_open_keep(const char *logdir, const uint8_t *store_id, uint64_t keep_txid, sl_log **out) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  seg_iter it = {.s.fd = -1};
  sl_log *log = NULL;
  char path[PATH_MAX];
  int rc;
  mark m;
  bool have_mark;

  if ((rc = remove_stale_tmp(logdir)) || (rc = sl_log_list(logdir, &segs, &n))) goto fail;
  if (n == 0) {
    sl_diag_error("%s: no log segments", logdir);
    rc = SL_ENOTFOUND;
    goto fail;
  }
  if (!(log = calloc(1, sizeof *log))) {
    rc = -ENOMEM;
    goto fail;
  }
  log->fd = log->mark_fd = -1;
  pthread_mutex_init(&log->append_mu, NULL);
  pthread_mutex_init(&log->mu, NULL);
  pthread_cond_init(&log->cv, NULL);
  pthread_cond_init(&log->ahead_cv, NULL);
  if (!(log->dir = strdup(logdir))) {
    rc = -ENOMEM;
    goto fail;
  }

  const sl_seg_info *newest = &segs[n - 1];
  if ((rc = sl__log_iter_open(&it, newest->path, O_RDWR))) goto fail;
  if (store_id && memcmp(store_id, it.h.store_id, SL_STORE_ID_SIZE)) {
    sl_diag_error("%s: belongs to another store", newest->path);
    rc = SL_ESTOREID;
    goto fail;
  }
  memcpy(log->store_id, it.h.store_id, SL_STORE_ID_SIZE);
  log->seg_size = it.h.segment_size ? it.h.segment_size : SL_SEG_SIZE_DEFAULT;
  log->segno = it.h.segno;
  log->seg_first_txid = it.h.first_txid;
  memcpy(log->seg_key_id, it.h.key_id, sizeof log->seg_key_id);
  memcpy(log->key_id, it.h.key_id, sizeof log->key_id);
  log->seg_lz4 = log->lz4_frames = (it.h.flags & SL_SEG_F_SEALED_LZ4) != 0;

  rc = sl__log_mark_read(logdir, &m);
  have_mark = rc == 0;
  if (rc == SL_ECORRUPT) sl_diag_warn("%s/" MARK_NAME " is damaged; ignoring it", logdir);
  else if (rc && rc != SL_ENOTFOUND) goto fail;
  if ((rc = recover_newest(log, &it, have_mark ? &m : NULL, keep_txid))) goto fail;
  log->fd = it.s.fd;
  it.s.fd = -1;

  /* Durable position: the end of the newest segment, or of its predecessor
   * when the newest holds no frame yet (which also supplies the last commit
   * time and epoch, and must end right before the newest's first txid). */
  uint64_t dseg = log->segno, dend = log->seg_end;
  if (log->next_txid == log->seg_first_txid && n > 1) {
    sl_frame last;
    if ((rc = sl__log_iter_open(&it, segs[n - 2].path, O_RDONLY)) ||
        (rc = iter_walk_sealed(&it, &last)))
      goto fail;
    if (it.next_txid != log->seg_first_txid) {
      sl_diag_error("%s: ends before txid %" PRIu64 " but %s starts at txid %" PRIu64, it.s.path,
                   it.next_txid, newest->path, log->seg_first_txid);
      rc = SL_EGAP;
      goto fail;
    }
    if (last.txid) {
      log->last_commit_us = last.commit_us;
      log->epoch = last.epoch;
    }
    dseg = it.h.segno;
    dend = it.off;
    sl__log_scan_close(&it.s);
  }

  if ((rc = sl_history_load(logdir, &log->hist))) goto fail;
  log->epoch = SL_MAX(log->epoch, sl_history_epoch(&log->hist));
  if ((rc = sl_fault(SL_FAULT_LOG_FSYNC)) || (rc = sl_fdatasync(log->fd))) {
    sl_diag_error("fdatasync %s: %s", newest->path, sl_strerror(rc));
    goto fail;
  }
  snprintf(path, sizeof path, "%s/" MARK_NAME, logdir);
  if ((log->mark_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    sl_diag_error("open %s: %s", path, sl_strerror(rc));
    goto fail;
  }
  log->written_txid = log->next_txid - 1;
  log->written_segno = dseg;
  log->written_end = dend;
  pthread_mutex_lock(&log->mu);
  sl__log_publish_durable(log, log->written_txid, dseg, dend);
  sl__log_check(log);
  pthread_mutex_unlock(&log->mu);

  free(it.s.buf);
  free(segs);
  *out = log;
  return 0;

fail:
  sl__log_scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  sl_log_close(log);
  return rc;
}

void sl_log_close(sl_log *log) {
  if (!log) return;
  sl__log_ahead_stop(log);
  pthread_mutex_lock(&log->mu);
  while (log->syncing) pthread_cond_wait(&log->cv, &log->mu);
  pthread_mutex_unlock(&log->mu);
  if (log->fd >= 0) (void)sl__log_cut_zeroed(log); /* the zeros left are a kept tail (RECOVERY) */
  pthread_cond_destroy(&log->cv);
  pthread_cond_destroy(&log->ahead_cv);
  pthread_mutex_destroy(&log->mu);
  pthread_mutex_destroy(&log->append_mu);
  if (log->fd >= 0) close(log->fd);
  if (log->mark_fd >= 0) close(log->mark_fd);
  free(log->stage);
  free(log->dir);
  free(log);
}

uint64_t sl_log_next_txid(const sl_log *log) {
  return __atomic_load_n(&log->next_txid, __ATOMIC_ACQUIRE);
}

uint64_t sl_log_last_commit_us(const sl_log *log) {
  return __atomic_load_n(&log->last_commit_us, __ATOMIC_ACQUIRE);
}

uint64_t sl_log_durable_txid(sl_log *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t t = log->durable_txid;
  pthread_mutex_unlock(&log->mu);
  return t;
}

const uint8_t *sl_log_store_id(const sl_log *log) { return log->store_id; }

/* ---- lineage of an open log ------------------------------------------------ */

uint64_t sl_log_checksum(sl_log *log) {
  pthread_mutex_lock(&log->append_mu);
  uint64_t cs = log->cs;
  pthread_mutex_unlock(&log->append_mu);
  return cs;
}

uint64_t sl_log_epoch(sl_log *log) {
  pthread_mutex_lock(&log->append_mu);
  uint64_t e = log->epoch;
  pthread_mutex_unlock(&log->append_mu);
  return e;
}

void sl_log_history(sl_log *log, sl_history *out) {
  pthread_mutex_lock(&log->append_mu);
  *out = log->hist;
  pthread_mutex_unlock(&log->append_mu);
}

int sl_log_begin_epoch(sl_log *log, uint64_t epoch) {
  int rc;
  pthread_mutex_lock(&log->append_mu);
  sl_history h = log->hist;
  if (epoch <= log->epoch) {
    sl_diag_error("%s: epoch %" PRIu64 " does not follow the current epoch %" PRIu64, log->dir, epoch, log->epoch);
    rc = SL_EINVAL;
  } else if (!(rc = sl_history_add(&h, epoch, log->next_txid, log->cs)) && !(rc = sl_history_save(log->dir, &h))) {
    log->hist = h;
    log->epoch = epoch;
  }
  pthread_mutex_unlock(&log->append_mu);
  return rc;
}

/* The last segment of segs whose first txid is <= txid (segs[0] if none). */
static size_t seg_holding(const sl_seg_info *segs, size_t n, uint64_t txid) {
  size_t i = n - 1;
  while (i > 0 && segs[i].first_txid > txid) i--;
  return i;
}

int sl_log_checksum_at(const char *logdir, uint64_t txid, uint64_t *cs) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  seg_iter it = {.s.fd = -1};
  sl_frame f;
  /* Only the segment holding txid is read: a gap before it does not matter (NEWEST RUN). */
  int rc = sl_log_list_newest_run(logdir, &segs, &n, NULL);
  if (rc) return rc;
  if (n == 0 || txid + 1 < segs[0].first_txid) {
    rc = SL_ENOTFOUND;
    goto out;
  }
  if ((rc = sl__log_iter_open(&it, segs[seg_holding(segs, n, txid + 1)].path, O_RDONLY))) goto out;
  *cs = it.cs;
  while (it.next_txid <= txid && (rc = sl__log_iter_frame(&it, &f)) == 0) *cs = f.checksum;
  if (it.next_txid <= txid) rc = rc == SL_EEND || rc == BAD_FRAME ? SL_ENOTFOUND : rc;
  else rc = 0;
out:
  sl__log_scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  return rc;
}

int sl_log_truncate(const char *logdir, uint64_t last_txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0, k;
  seg_iter it = {.s.fd = -1};
  sl_frame f;
  sl_history h;
  int rc = sl_log_list(logdir, &segs, &n);
  if (rc) return rc;
  if (n == 0 || last_txid + 1 < segs[0].first_txid) {
    sl_diag_error("%s: the log does not reach back to txid %" PRIu64, logdir, last_txid);
    rc = SL_ENOTFOUND;
    goto out;
  }
  k = seg_holding(segs, n, last_txid + 1);
  /* a packed segment is cut as the plain file it was */
  if ((rc = sl__log_seg_unpack_file(segs[k].path)) || (rc = sl__log_iter_open(&it, segs[k].path, O_RDWR))) goto out;
  while (it.next_txid <= last_txid && (rc = sl__log_iter_frame(&it, &f)) == 0) continue;
  if (it.next_txid <= last_txid) {
    sl_diag_error("%s: ends before txid %" PRIu64, it.s.path, last_txid);
    rc = rc == SL_EEND || rc == BAD_FRAME ? SL_ENOTFOUND : rc;
    goto out;
  }
  /* Newest first, so that a crash in between leaves a log whose segments
   * are still contiguous (recovery then cuts the torn rest). */
  for (size_t i = n; i-- > k + 1;)
    if (unlink(segs[i].path)) {
      rc = -errno;
      sl_diag_error("remove %s: %s", segs[i].path, sl_strerror(rc));
      goto out;
    }
  if ((rc = ftruncate(it.s.fd, (off_t)it.off) ? -errno : sl_fdatasync(it.s.fd))) {
    sl_diag_error("truncate %s at offset %" PRIu64 ": %s", it.s.path, it.off, sl_strerror(rc));
    goto out;
  }
  uint8_t b[SL_DURABLE_MARK_SIZE];
  sl__log_mark_encode(b, last_txid, segs[k].segno, it.off);
  if ((rc = sl_fsync_dir(logdir)) || (rc = sl_write_file_atomic(logdir, MARK_NAME, b, sizeof b)) ||
      (rc = sl_history_load(logdir, &h)))
    goto out;
  sl_history_cut(&h, last_txid);
  rc = sl_history_save(logdir, &h);
out:
  sl__log_scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  return rc;
}
