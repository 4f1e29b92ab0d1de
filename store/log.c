/*
 * The transaction log. The on-disk format (segment header, frame, durable
 * mark, consumer files) and the recovery rule are specified in log.h; this
 * file is the one implementation of them.
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
 *   log_check asserts the whole writer state after each change of it, and
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
#include "log.h"
#include "lineage.h"
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
#include <sys/uio.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)
#define SEG_NAME_DIGITS 20
#define SEG_SUFFIX ".seg"
#define TMP_SUFFIX ".tmp"
#define MARK_NAME SL_DURABLE_MARK_FILE
#define MARK_RETRIES 200
#define CONSUMERS_DIR "consumers"
#define CONSUMER_NAME_MAX 64
/* iter_frame: no whole, valid frame at the current offset (it->bad says why). */
#define BAD_FRAME 1

struct sl_log {
  char *dir;
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t seg_size;
  int mark_fd;

  pthread_mutex_t append_mu;
  /* Changed by the appender under append_mu (fd and segno also under mu). */
  int fd;
  uint64_t segno;
  uint64_t seg_first_txid;
  uint64_t seg_end;        /* offset of the next frame in the active segment */
  uint64_t epoch;          /* current (LINEAGE): the next header's epoch */
  uint64_t cs;             /* rolling checksum through next_txid - 1 */
  sl_history hist;         /* LOGDIR/history as on disk */
  uint64_t next_txid;      /* atomic: read by sl_log_next_txid without locks */
  uint64_t last_commit_us; /* atomic, as next_txid */
  char key_id[SL_KEY_ID_SIZE + 1];     /* of frames appended from now on ("": plain) */
  char seg_key_id[SL_KEY_ID_SIZE + 1]; /* of the active segment */
  struct staged *stage;    /* sl_log_append_many's frames, allocated once */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t written_txid, written_segno, written_end;
  uint64_t durable_txid, durable_segno, durable_end;
  bool syncing;  /* a leader or a rotation owns the fd's sync */
  int fail_code; /* 0, or the error that made the log FAILED */
  sl_log_stats stats;
};

/* log.h and crypt.h name the same sizes (crypt does not include store/). */
_Static_assert(SL_KEY_ID_SIZE == SL_CRYPT_KEY_ID_MAX, "key id sizes differ");
_Static_assert(SL_STORE_ID_SIZE == SL_CRYPT_STORE_ID_SIZE, "store id sizes differ");

/* ---- invariants (SL_ASSERT: on in every build) ------------------------ */

/* The whole writer state; caller holds mu and the appender is quiescent
 * (append_mu held, or inside open). Positions are (segno, end) pairs and
 * txids: durable <= written <= next - 1. */
static void log_check(const sl_log *log) {
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

/* ---- codecs ------------------------------------------------------------ */

void sl_seg_header_encode(const sl_seg_header *h, uint8_t out[SL_SEG_HEADER_SIZE]) {
  memset(out, 0, SL_SEG_HEADER_SIZE);
  memcpy(out, SL_SEG_MAGIC, 8);
  out[8] = (uint8_t)h->version;
  out[9] = (uint8_t)(h->version >> 8);
  out[10] = SL_SEG_HEADER_SIZE;
  sl_put_le32(out + 12, h->flags);
  memcpy(out + 16, h->store_id, SL_STORE_ID_SIZE);
  sl_put_le64(out + 32, h->segno);
  sl_put_le64(out + 40, h->first_txid);
  sl_put_le64(out + 48, h->epoch);
  sl_put_le64(out + 56, h->prev_checksum);
  memcpy(out + 64, h->key_id, strnlen(h->key_id, SL_KEY_ID_SIZE));
  sl_put_le64(out + 96, h->segment_size);
  sl_put_le32(out + 124, sl_crc32c(0, out, 124));
}

int sl_seg_header_decode(const uint8_t in[SL_SEG_HEADER_SIZE], sl_seg_header *h) {
  if (memcmp(in, SL_SEG_MAGIC, 8)) return SL_ENOTLOG;
  uint16_t version = (uint16_t)(in[8] | in[9] << 8);
  if (version != SL_SEG_VERSION) return SL_EVERSION;
  if (sl_get_le32(in + 124) != sl_crc32c(0, in, 124)) return SL_ECORRUPT;
  if ((in[10] | in[11] << 8) != SL_SEG_HEADER_SIZE) return SL_ECORRUPT;
  memset(h, 0, sizeof *h);
  h->version = version;
  h->flags = sl_get_le32(in + 12);
  memcpy(h->store_id, in + 16, SL_STORE_ID_SIZE);
  h->segno = sl_get_le64(in + 32);
  h->first_txid = sl_get_le64(in + 40);
  h->epoch = sl_get_le64(in + 48);
  h->prev_checksum = sl_get_le64(in + 56);
  memcpy(h->key_id, in + 64, SL_KEY_ID_SIZE);
  h->segment_size = sl_get_le64(in + 96);
  return 0;
}

static uint32_t frame_crc(const uint8_t len_le[4], const void *payload, uint32_t payload_len) {
  return sl_crc32c(sl_crc32c(0, len_le, 4), payload, payload_len);
}

void sl_frame_header_encode(const void *payload, uint32_t payload_len,
                            uint8_t out[SL_FRAME_HEADER_SIZE]) {
  sl_put_le32(out, payload_len);
  sl_put_le32(out + 4, frame_crc(out, payload, payload_len));
}

int sl_frame_decode(const uint8_t *buf, size_t len, const uint8_t **payload,
                    uint32_t *payload_len, size_t *frame_len) {
  if (len < SL_FRAME_HEADER_SIZE) return SL_ETRUNCATED;
  uint32_t l = sl_get_le32(buf);
  if (l == 0 || l > SL_FRAME_MAX) return SL_ECORRUPT;
  if (len - SL_FRAME_HEADER_SIZE < l) return SL_ETRUNCATED;
  if (sl_get_le32(buf + 4) != frame_crc(buf, buf + SL_FRAME_HEADER_SIZE, l)) return SL_ECORRUPT;
  *payload = buf + SL_FRAME_HEADER_SIZE;
  *payload_len = l;
  *frame_len = SL_FRAME_HEADER_SIZE + (size_t)l;
  return 0;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return SL_ECORRUPT;
    uint8_t b = *(*p)++;
    if (shift == 63 && b > 1) return SL_ECORRUPT; /* more than 64 bits */
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return SL_ECORRUPT;
}

/* Top-level fields of shiplog.Transaction: 1 txid, 2 commit_time_us,
 * 3 epoch (varints); everything else is skipped by its wire type. */
int sl_txn_peek(const uint8_t *payload, size_t len, uint64_t *txid, uint64_t *commit_us,
                uint64_t *epoch) {
  const uint8_t *p = payload, *end = payload + len;
  uint64_t f[4] = {0};
  bool seen[4] = {false};
  while (p < end) {
    uint64_t key, v;
    if (get_varint(&p, end, &key)) return SL_ECORRUPT;
    uint64_t field = key >> 3;
    unsigned wire = (unsigned)(key & 7);
    if (field == 0 || field > 0x1fffffff) return SL_ECORRUPT;
    if (field <= 3 && wire != 0) return SL_ECORRUPT;
    switch (wire) {
    case 0: /* varint */
      if (get_varint(&p, end, &v)) return SL_ECORRUPT;
      if (field <= 3) {
        f[field] = v;
        seen[field] = true;
      }
      break;
    case 1: /* fixed64 */
      if (end - p < 8) return SL_ECORRUPT;
      p += 8;
      break;
    case 2: /* length-delimited */
      if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return SL_ECORRUPT;
      p += v;
      break;
    case 5: /* fixed32 */
      if (end - p < 4) return SL_ECORRUPT;
      p += 4;
      break;
    default: /* groups (3, 4) are not used by shiplog's schema; 6, 7 do not exist */
      return SL_ECORRUPT;
    }
  }
  if (!seen[1] || !seen[2]) return SL_ECORRUPT;
  if (txid) *txid = f[1];
  if (commit_us) *commit_us = f[2];
  if (epoch) *epoch = f[3];
  return 0;
}

/* A 64-bit mix (the finalizer of MurmurHash3, with the txid and CRC folded
 * in): every input bit reaches every output bit, so a changed transaction,
 * order or position changes every later cs. */
uint64_t sl_lineage_next(uint64_t prev, uint64_t txid, uint32_t plain_crc) {
  uint64_t x = prev ^ (txid * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)plain_crc << 17);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x ^ ((prev << 1) | (prev >> 63));
}

/* Transaction.checksum (field 5, fixed64), which only sealed frames carry. */
static bool txn_checksum(const uint8_t *p, const uint8_t *end, uint64_t *cs) {
  while (p < end) {
    uint64_t key, v;
    if (get_varint(&p, end, &key)) return false;
    switch (key & 7) {
    case 0:
      if (get_varint(&p, end, &v)) return false;
      break;
    case 1:
      if (end - p < 8) return false;
      if (key >> 3 == 5) {
        *cs = sl_get_le64(p);
        return true;
      }
      p += 8;
      break;
    case 2:
      if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return false;
      p += v;
      break;
    case 5:
      if (end - p < 4) return false;
      p += 4;
      break;
    default: return false;
    }
  }
  return false;
}

uint64_t sl_frame_lineage(uint64_t prev, uint64_t txid, const uint8_t *frame, uint32_t payload_len) {
  uint64_t cs;
  const uint8_t *payload = frame + SL_FRAME_HEADER_SIZE;
  if (txn_checksum(payload, payload + payload_len, &cs)) return cs;
  return sl_lineage_next(prev, txid, sl_get_le32(frame + 4));
}

int sl_frames_lineage(const uint8_t *raw, size_t len, uint64_t from_txid, uint64_t *cs) {
  size_t off = 0;
  while (off < len) {
    const uint8_t *payload;
    uint32_t plen;
    size_t flen;
    uint64_t txid;
    if (sl_frame_decode(raw + off, len - off, &payload, &plen, &flen) ||
        sl_txn_peek(payload, plen, &txid, NULL, NULL))
      return SL_ECORRUPT;
    if (txid >= from_txid) *cs = sl_frame_lineage(*cs, txid, raw + off, plen);
    off += flen;
  }
  return 0;
}

static void mark_encode(uint8_t out[SL_DURABLE_MARK_SIZE], uint64_t txid, uint64_t segno,
                        uint64_t end) {
  sl_put_le64(out, txid);
  sl_put_le64(out + 8, segno);
  sl_put_le64(out + 16, end);
  sl_put_le32(out + 24, sl_crc32c(0, out, 24));
  sl_put_le32(out + 28, 0);
}

/* ---- paths and directory listing ---------------------------------------- */

static int seg_path(char out[PATH_MAX], const char *dir, uint64_t segno, const char *suffix) {
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

/* Read and check the header of an open segment file. */
static int seg_read_header(int fd, const char *path, sl_seg_header *h) {
  uint8_t buf[SL_SEG_HEADER_SIZE];
  long r = sl_pread_full(fd, buf, sizeof buf, 0);
  int rc;
  if (r < 0) {
    rc = (int)r;
    sl_diag_error("read header of %s: %s", path, sl_strerror(rc));
    return rc;
  }
  if (r < SL_SEG_HEADER_SIZE) {
    sl_diag_error("%s: %ld bytes, shorter than a segment header", path, r);
    return r >= 8 && memcmp(buf, SL_SEG_MAGIC, 8) == 0 ? SL_ECORRUPT : SL_ENOTLOG;
  }
  if ((rc = sl_seg_header_decode(buf, h))) {
    sl_diag_error("%s: segment header: %s", path, sl_strerror(rc));
    return rc;
  }
  if (h->flags & ~SL_SEG_F_SEALED) {
    sl_diag_error("%s: segment flags 0x%" PRIx32 " are not supported", path, h->flags);
    return SL_EVERSION;
  }
  if (!(h->flags & SL_SEG_F_SEALED) != !h->key_id[0]) {
    sl_diag_error("%s: segment header: the sealed flag and the key id disagree", path);
    return SL_ECORRUPT;
  }
  return 0;
}

int sl_log_list(const char *logdir, sl_seg_info **out, size_t *count) {
  uint64_t *segnos = NULL;
  size_t n = 0;
  sl_seg_info *v = NULL;
  uint8_t store_id[SL_STORE_ID_SIZE];
  int fd = -1;
  int rc = list_segnos(logdir, "", &segnos, &n);
  if (rc) return rc;
  if (n && !(v = calloc(n, sizeof *v))) {
    rc = -ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    sl_seg_info *s = &v[i];
    sl_seg_header h;
    struct stat st;
    if ((rc = seg_path(s->path, logdir, segnos[i], ""))) goto fail;
    if ((fd = open(s->path, O_RDONLY | O_CLOEXEC)) < 0) {
      rc = -errno;
      sl_diag_error("open %s: %s", s->path, sl_strerror(rc));
      goto fail;
    }
    if ((rc = seg_read_header(fd, s->path, &h))) goto fail;
    if (fstat(fd, &st)) {
      rc = -errno;
      sl_diag_error("stat %s: %s", s->path, sl_strerror(rc));
      goto fail;
    }
    close(fd);
    fd = -1;
    if (h.segno != segnos[i]) {
      sl_diag_error("%s: header names segment %" PRIu64, s->path, h.segno);
      rc = SL_ECORRUPT;
      goto fail;
    }
    if (i == 0) {
      memcpy(store_id, h.store_id, SL_STORE_ID_SIZE);
    } else if (memcmp(store_id, h.store_id, SL_STORE_ID_SIZE)) {
      sl_diag_error("%s: belongs to another store than %s", s->path, v[0].path);
      rc = SL_ESTOREID;
      goto fail;
    } else if (segnos[i] != segnos[i - 1] + 1) {
      sl_diag_error("%s: segment %" PRIu64 " is missing before it", s->path, segnos[i - 1] + 1);
      rc = SL_EGAP;
      goto fail;
    } else if (h.first_txid <= v[i - 1].first_txid) {
      sl_diag_error("%s: first txid %" PRIu64 " does not follow segment %" PRIu64
                   "'s first txid %" PRIu64,
                   s->path, h.first_txid, v[i - 1].segno, v[i - 1].first_txid);
      rc = SL_ECORRUPT;
      goto fail;
    }
    s->segno = h.segno;
    s->first_txid = h.first_txid;
    s->size = (uint64_t)st.st_size;
  }
  free(segnos);
  *out = v;
  *count = n;
  return 0;

fail:
  if (fd >= 0) close(fd);
  free(segnos);
  free(v);
  return rc;
}

/* ---- scanning segments -------------------------------------------------- */

typedef struct seg_scan {
  int fd;
  char path[PATH_MAX];
  uint64_t size; /* file size when last looked (fstat) */
  uint8_t *buf;
  size_t cap;
  uint64_t buf_off; /* file offset of buf[0] */
  size_t buf_len;
} seg_scan;

typedef struct seg_iter {
  seg_scan s;
  sl_seg_header h;
  uint64_t off;       /* of the next frame */
  uint64_t next_txid; /* the txid the frame at off must carry */
  uint64_t cs;        /* LINEAGE: through next_txid - 1 */
  int bad;            /* after BAD_FRAME: SL_ETRUNCATED or SL_ECORRUPT */
} seg_iter;

static int scan_refresh(seg_scan *s) {
  struct stat st;
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
  long r = sl_pread_full(s->fd, s->buf, want, off);
  if (r < 0) return (int)r;
  s->buf_off = off;
  s->buf_len = (size_t)r;
  return (size_t)r < n ? SL_ETRUNCATED : 0; /* the file shrank */
}

/* The frame at off, with CRC checked: 0, SL_ETRUNCATED, SL_ECORRUPT, -errno. */
static int scan_frame(seg_scan *s, uint64_t off, const uint8_t **payload, uint32_t *plen,
                      size_t *flen) {
  int rc = scan_fill(s, off, SL_FRAME_HEADER_SIZE);
  if (rc) return rc;
  uint32_t l = sl_get_le32(s->buf + (off - s->buf_off));
  if (l == 0 || l > SL_FRAME_MAX) return SL_ECORRUPT;
  if ((rc = scan_fill(s, off, SL_FRAME_HEADER_SIZE + (size_t)l))) return rc;
  return sl_frame_decode(s->buf + (off - s->buf_off), SL_FRAME_HEADER_SIZE + (size_t)l, payload,
                         plen, flen);
}

static void scan_close(seg_scan *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->buf_len = 0;
}

/* Open the segment at path and position at its first frame. The buffer of
 * a previous segment is kept for reuse. */
static int iter_open(seg_iter *it, const char *path, int flags) {
  int rc;
  it->s.buf_len = 0;
  snprintf(it->s.path, sizeof it->s.path, "%s", path);
  if ((it->s.fd = open(path, flags | O_CLOEXEC)) < 0) {
    rc = -errno;
    sl_diag_error("open %s: %s", path, sl_strerror(rc));
    return rc;
  }
  if ((rc = seg_read_header(it->s.fd, path, &it->h)) || (rc = scan_refresh(&it->s))) {
    scan_close(&it->s);
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
 * boundary; BAD_FRAME when the bytes at it->off are not a whole frame with a
 * good CRC (not logged: the caller decides whether that is a torn tail);
 * SL_ECORRUPT / SL_EGAP (logged) for a frame with a good CRC whose payload
 * is not the expected transaction; -errno. */
static int iter_frame(seg_iter *it, sl_frame *f) {
  if (it->off >= it->s.size) return SL_EEND;
  const uint8_t *p;
  uint32_t plen;
  size_t flen;
  int rc = scan_frame(&it->s, it->off, &p, &plen, &flen);
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
static int iter_corrupt(const seg_iter *it, const char *why) {
  sl_diag_error("%s: %s at offset %" PRIu64 " (expected txid %" PRIu64 ")%s", it->s.path,
               it->bad == SL_ETRUNCATED ? "frame cut short" : "bad frame", it->off,
               it->next_txid, why);
  return SL_ECORRUPT;
}

/* Walk a segment that must be whole to its end (any bad frame: corrupt).
 * Leaves the last frame in *last (txid 0 if the segment has none). */
static int iter_walk_sealed(seg_iter *it, sl_frame *last) {
  sl_frame f;
  int rc;
  last->txid = 0;
  while ((rc = iter_frame(it, &f)) == 0) *last = f;
  if (rc == BAD_FRAME) return iter_corrupt(it, "");
  return rc == SL_EEND ? 0 : rc;
}

/* ---- durable mark ------------------------------------------------------- */

typedef struct mark {
  uint64_t txid, segno, end;
} mark;

/* SL_ENOTFOUND if absent, SL_ECORRUPT if it stays torn across retries. */
static int mark_read(const char *logdir, mark *m) {
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
  int rc = mark_read(logdir, &m);
  if (rc == SL_ECORRUPT) sl_diag_error("%s/" MARK_NAME ": %s", logdir, sl_strerror(rc));
  if (!rc) *txid = m.txid;
  return rc;
}

/* Publish a durable position (caller holds mu) and wake the waiters. The
 * mark is derived, so failing to rewrite it only costs tailers latency. */
static void publish_durable(sl_log *log, uint64_t txid, uint64_t segno, uint64_t end) {
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
    mark_encode(b, txid, segno, end);
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

/* ---- creating segments ---------------------------------------------------- */

/* Write the segment h describes: NAME.tmp with the header, fdatasync, rename
 * to NAME, fsync the directory. *fd_out stays open O_RDWR. On failure before
 * the rename nothing is left; *renamed says whether it got that far. */
static int seg_create(const char *dir, const sl_seg_header *h, int *fd_out, bool *renamed) {
  char path[PATH_MAX], tmp[PATH_MAX];
  uint8_t hdr[SL_SEG_HEADER_SIZE];
  int fd = -1, rc;
  *renamed = false;
  if ((rc = seg_path(path, dir, h->segno, "")) || (rc = seg_path(tmp, dir, h->segno, TMP_SUFFIX)))
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

  seg_path(path, log->dir, log->segno, "");
  if ((rc = sl_fault(SL_FAULT_LOG_SEG_FSYNC)) || (rc = sl_fdatasync(log->fd))) {
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
    h.flags = h.key_id[0] ? SL_SEG_F_SEALED : 0;
    rc = seg_create(log->dir, &h, &new_fd, &renamed);
  }

  pthread_mutex_lock(&log->mu);
  log->syncing = false;
  if (synced) publish_durable(log, txid, segno, end);
  if (rc && renamed)
    sl_diag_error("%s: the log is FAILED until reopened", log->dir);
  if (rc && (!synced || renamed)) set_failed(log, rc); /* a failed fsync is never retried */
  if (!rc) {
    close(log->fd);
    log->fd = new_fd;
    log->segno++;
    log->seg_first_txid = log->next_txid;
    log->seg_end = SL_SEG_HEADER_SIZE;
    memcpy(log->seg_key_id, log->key_id, sizeof log->seg_key_id);
    log->stats.rotations++;
    log_check(log);
  }
  pthread_cond_broadcast(&log->cv);
  pthread_mutex_unlock(&log->mu);
  return rc;
}

/* ---- writer API ---------------------------------------------------------- */

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
  if ((rc = seg_create(logdir, &h, &fd, &renamed))) return rc;
  close(fd);
  uint8_t b[SL_DURABLE_MARK_SIZE];
  mark_encode(b, first - 1, h.segno, SL_SEG_HEADER_SIZE);
  return sl_write_file_atomic(logdir, MARK_NAME, b, sizeof b);
}

/* Remove NNN.seg.tmp files left by a crash during rotation. */
static int remove_stale_tmp(const char *logdir) {
  uint64_t *segnos = NULL;
  size_t n = 0;
  int rc = list_segnos(logdir, TMP_SUFFIX, &segnos, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    char path[PATH_MAX];
    if (!(rc = seg_path(path, logdir, segnos[i], TMP_SUFFIX)) && unlink(path) && errno != ENOENT) {
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
         scan_frame(&it->s, it->off + SL_FRAME_HEADER_SIZE + l, &p, &plen, &flen) == 0 &&
         sl_txn_peek(p, plen, &txid, NULL, NULL) == 0 && txid == it->next_txid + 1;
}

/* RECOVERY of log.h on the newest segment, opened in it (O_RDWR). Sets the
 * appender state. `m` is the durable mark or NULL. */
static int recover_newest(sl_log *log, seg_iter *it, const mark *m, uint64_t keep_txid) {
  sl_frame f = {0};
  uint64_t last_commit = 0, epoch = it->h.epoch;
  int rc;
  while ((rc = iter_frame(it, &f)) == 0) {
    last_commit = f.commit_us;
    epoch = f.epoch;
  }
  if (rc != SL_EEND && rc != BAD_FRAME) return rc;

  if (rc == BAD_FRAME && valid_frame_follows(it))
    return iter_corrupt(it, "; a valid frame follows it, so this is not a torn tail");
  if (m && (m->segno > it->h.segno || (m->segno == it->h.segno && m->end > it->off))) {
    if (rc == BAD_FRAME)
      return iter_corrupt(it, "; it lies below the durable mark, so this is not a torn tail");
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
      return iter_corrupt(it, why);
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
  if (!(log->dir = strdup(logdir))) {
    rc = -ENOMEM;
    goto fail;
  }

  const sl_seg_info *newest = &segs[n - 1];
  if ((rc = iter_open(&it, newest->path, O_RDWR))) goto fail;
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

  rc = mark_read(logdir, &m);
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
    if ((rc = iter_open(&it, segs[n - 2].path, O_RDONLY)) || (rc = iter_walk_sealed(&it, &last)))
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
    scan_close(&it.s);
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
  publish_durable(log, log->written_txid, dseg, dend);
  log_check(log);
  pthread_mutex_unlock(&log->mu);

  free(it.s.buf);
  free(segs);
  *out = log;
  return 0;

fail:
  scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  sl_log_close(log);
  return rc;
}

void sl_log_close(sl_log *log) {
  if (!log) return;
  pthread_mutex_lock(&log->mu);
  while (log->syncing) pthread_cond_wait(&log->cv, &log->mu);
  pthread_mutex_unlock(&log->mu);
  pthread_cond_destroy(&log->cv);
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
  int rc = sl_log_list(logdir, &segs, &n);
  if (rc) return rc;
  if (n == 0 || txid + 1 < segs[0].first_txid) {
    rc = SL_ENOTFOUND;
    goto out;
  }
  if ((rc = iter_open(&it, segs[seg_holding(segs, n, txid + 1)].path, O_RDONLY))) goto out;
  *cs = it.cs;
  while (it.next_txid <= txid && (rc = iter_frame(&it, &f)) == 0) *cs = f.checksum;
  if (it.next_txid <= txid) rc = rc == SL_EEND || rc == BAD_FRAME ? SL_ENOTFOUND : rc;
  else rc = 0;
out:
  scan_close(&it.s);
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
  if ((rc = iter_open(&it, segs[k].path, O_RDWR))) goto out;
  while (it.next_txid <= last_txid && (rc = iter_frame(&it, &f)) == 0) continue;
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
  mark_encode(b, last_txid, segs[k].segno, it.off);
  if ((rc = sl_fsync_dir(logdir)) || (rc = sl_write_file_atomic(logdir, MARK_NAME, b, sizeof b)) ||
      (rc = sl_history_load(logdir, &h)))
    goto out;
  sl_history_cut(&h, last_txid);
  rc = sl_history_save(logdir, &h);
out:
  scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  return rc;
}

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
  return pwritev_all(log->fd, s->iov, cnt, off);
}

/* The active segment holds no frame: give its header the log's key id
 * (caller holds append_mu). */
static int rekey_empty_segment(sl_log *log) {
  uint8_t b[SL_SEG_HEADER_SIZE];
  char path[PATH_MAX];
  sl_seg_header h;
  seg_path(path, log->dir, log->segno, "");
  long r = sl_pread_full(log->fd, b, sizeof b, 0);
  int rc = r < 0 ? (int)r : r < SL_SEG_HEADER_SIZE ? SL_ECORRUPT : sl_seg_header_decode(b, &h);
  if (rc == 0) {
    memcpy(h.key_id, log->key_id, sizeof h.key_id);
    h.flags = h.key_id[0] ? h.flags | SL_SEG_F_SEALED : h.flags & ~SL_SEG_F_SEALED;
    sl_seg_header_encode(&h, b);
    rc = sl_pwrite_all(log->fd, b, sizeof b, 0);
  }
  if (rc) {
    sl_diag_error("%s: rewriting the header for key %s: %s", path, log->key_id[0] ? log->key_id : "(none)",
                 sl_strerror(rc));
    return rc;
  }
  memcpy(log->seg_key_id, log->key_id, sizeof log->seg_key_id);
  return 0;
}

void sl_log_set_key_id(sl_log *log, const char *key_id) {
  pthread_mutex_lock(&log->append_mu);
  memset(log->key_id, 0, sizeof log->key_id);
  if (key_id) snprintf(log->key_id, sizeof log->key_id, "%s", key_id);
  pthread_mutex_unlock(&log->append_mu);
}

const char *sl_log_key_id(sl_log *log) { return log->key_id; }

/* Write the staged frames and publish them as written (append_mu held). */
static int flush_staged(sl_log *log, staged *s) {
  char path[PATH_MAX];
  if (s->n == 0) return 0;
  /* The staged frames continue the log: txids next..last, no gap. */
  SL_ASSERT(s->last_txid + 1 - s->n == log->next_txid, "%s: staged txids %" PRIu64 "..%" PRIu64 ", next %" PRIu64,
            log->dir, s->last_txid + 1 - s->n, s->last_txid, log->next_txid);
  int rc = write_staged(log, s);
  if (rc) {
    seg_path(path, log->dir, log->segno, "");
    /* A full disk: cut the partial frames back; nothing of them was ever
     * synced or published, so the log stays usable for when space returns. */
    if ((rc == -ENOSPC || rc == -EDQUOT) && ftruncate(log->fd, (off_t)log->seg_end) == 0) {
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
  log->cs = s->cs;
  __atomic_store_n(&log->last_commit_us, s->last_commit_us, __ATOMIC_RELEASE);
  pthread_mutex_lock(&log->mu);
  log->written_txid = s->last_txid;
  log->written_segno = log->segno;
  log->written_end = log->seg_end;
  log->stats.appends += s->n;
  __atomic_store_n(&log->next_txid, s->last_txid + 1, __ATOMIC_RELEASE);
  log_check(log);
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
  if (log->key_id[0] && sl_crypt_frame_parse(payload, len, &(sl_sealed_meta){0}, &(const uint8_t *){0},
                                              &(size_t){0})) {
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
  bool new_key = strcmp(log->key_id, log->seg_key_id) != 0;
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
  if (!txn_checksum(payload, payload + len, &cs)) cs = sl_lineage_next(prev_cs, txid, sl_get_le32(hdr + 4));
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
      seg_path(path, log->dir, log->segno, "");
      sl_diag_error("fdatasync %s (txid %" PRIu64 "): %s; the log is FAILED until reopened", path,
                   t, sl_strerror(rc));
      set_failed(log, rc);
      break;
    }
    log->stats.syncs++;
    publish_durable(log, t, seg, end);
  }
  /* A committer returns 0 only once its txid is covered by an fdatasync. */
  SL_ASSERT(rc || txid <= log->durable_txid, "%s: waiter for txid %" PRIu64 " released at durable %" PRIu64,
            log->dir, txid, log->durable_txid);
  pthread_mutex_unlock(&log->mu);
  return rc;
}

/* ---- consumers and pruning ------------------------------------------------ */

static bool consumer_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > CONSUMER_NAME_MAX || name[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '-'))
      return false;
  }
  /* NAME.tmp is sl_write_file_atomic's scratch file. */
  return n < strlen(TMP_SUFFIX) || strcmp(name + n - strlen(TMP_SUFFIX), TMP_SUFFIX) != 0;
}

static int consumer_dir(char out[PATH_MAX], const char *logdir) {
  int n = snprintf(out, PATH_MAX, "%s/" CONSUMERS_DIR, logdir);
  return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

int sl_log_consumer_set(const char *logdir, const char *name, uint64_t txid) {
  char dir[PATH_MAX], text[32];
  int rc;
  if (!consumer_name_ok(name)) {
    sl_diag_error("%s: invalid consumer name \"%s\"", logdir, name);
    return SL_EINVAL;
  }
  if ((rc = consumer_dir(dir, logdir)) || (rc = sl_mkdir_p(dir))) return rc;
  int n = snprintf(text, sizeof text, "%" PRIu64 "\n", txid);
  return sl_write_file_atomic(dir, name, text, (size_t)n);
}

int sl_log_consumer_get(const char *logdir, const char *name, uint64_t *txid) {
  char path[PATH_MAX];
  uint8_t *buf;
  size_t len;
  if (!consumer_name_ok(name)) return SL_EINVAL;
  int n = snprintf(path, sizeof path, "%s/" CONSUMERS_DIR "/%s", logdir, name);
  if (n < 0 || n >= (int)sizeof path) return -ENAMETOOLONG;
  int rc = sl_read_file(path, 32, &buf, &len);
  if (rc) return rc == -ENOENT ? SL_ENOTFOUND : rc;
  uint64_t v = 0;
  size_t i = 0;
  bool overflow = false;
  for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
    unsigned d = (unsigned)(buf[i] - '0');
    overflow |= v > (UINT64_MAX - d) / 10;
    v = v * 10 + d;
  }
  if (overflow || i == 0 || i + 1 != len || buf[i] != '\n') {
    sl_diag_error("%s: not a consumer position (\"txid\\n\")", path);
    rc = SL_ECORRUPT;
  } else {
    *txid = v;
  }
  free(buf);
  return rc;
}

int sl_log_consumer_remove(const char *logdir, const char *name) {
  char dir[PATH_MAX], path[PATH_MAX];
  int rc;
  if (!consumer_name_ok(name)) return SL_EINVAL;
  if ((rc = consumer_dir(dir, logdir))) return rc;
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || n >= (int)sizeof path) return -ENAMETOOLONG;
  if (unlink(path)) {
    rc = -errno;
    if (rc == -ENOENT) return SL_ENOTFOUND;
    sl_diag_error("remove %s: %s", path, sl_strerror(rc));
    return rc;
  }
  return sl_fsync_dir(dir);
}

/* The lowest position of all consumers, or UINT64_MAX when there are none. */
static int consumers_min(const char *logdir, uint64_t *min) {
  char dir[PATH_MAX];
  int rc = consumer_dir(dir, logdir);
  *min = UINT64_MAX;
  if (rc) return rc;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    rc = -errno;
    sl_diag_error("open %s: %s", dir, sl_strerror(rc));
    return rc;
  }
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    uint64_t t;
    if (!consumer_name_ok(de->d_name)) continue;
    rc = sl_log_consumer_get(logdir, de->d_name, &t);
    if (rc == SL_ENOTFOUND) rc = 0; /* removed meanwhile */
    else if (!rc) *min = SL_MIN(*min, t);
  }
  closedir(d);
  return rc;
}

int sl_log_consumers_min(const char *logdir, uint64_t *min) { return consumers_min(logdir, min); }

int sl_log_prune(sl_log *log, uint64_t checkpoint_txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  uint64_t limit;
  int removed = 0, rc;
  pthread_mutex_lock(&log->mu);
  rc = log->fail_code ? SL_EFAILED : 0;
  uint64_t active = log->segno;
  pthread_mutex_unlock(&log->mu);
  if (rc || (rc = consumers_min(log->dir, &limit)) || (rc = sl_log_list(log->dir, &segs, &n)))
    return rc;
  limit = SL_MIN(limit, checkpoint_txid);
  /* A segment's last txid is its successor's first txid - 1. */
  for (size_t i = 0; i + 1 < n && segs[i].segno < active && segs[i + 1].first_txid - 1 <= limit;
       i++) {
    if ((rc = sl_fault(SL_FAULT_LOG_UNLINK)) || (rc = unlink(segs[i].path) ? -errno : 0)) {
      sl_diag_error("remove %s: %s", segs[i].path, sl_strerror(rc));
      break;
    }
    removed++;
  }
  free(segs);
  if (removed) {
    int frc = sl_fault(SL_FAULT_LOG_DIR_FSYNC);
    if (frc) sl_diag_error("fsync directory %s: %s", log->dir, sl_strerror(frc));
    else frc = sl_fsync_dir(log->dir);
    if (!rc) rc = frc;
  }
  return rc ? rc : removed;
}

/* ---- reader ------------------------------------------------------------------ */

struct sl_log_reader {
  char *dir;
  sl_log_reader_options opt;
  uint64_t from_txid;
  uint8_t store_id[SL_STORE_ID_SIZE];
  int err; /* a failed segment switch leaves no segment to read: sticky */
  seg_iter it;
  uint8_t *plain; /* sl_log_reader_open_frame's output */
  size_t plain_cap;
};

int sl_log_reader_open(const char *logdir, uint64_t from_txid, const sl_log_reader_options *opt,
                       sl_log_reader **out) {
  sl_seg_info *segs = NULL;
  size_t n = 0, i;
  sl_log_reader *r = NULL;
  int rc = sl_log_list(logdir, &segs, &n);
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
  if ((rc = iter_open(&r->it, segs[i].path, O_RDONLY))) goto fail;
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
  int rc = seg_path(path, r->dir, segno, "");
  if (rc) return rc;
  scan_close(&r->it.s);
  if ((rc = iter_open(&r->it, path, O_RDONLY))) return rc;
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
  for (;;) {
    if (r->opt.max_txid && r->it.next_txid > r->opt.max_txid) return SL_EEND;
    if (r->err) return r->err;
    int rc = iter_frame(&r->it, frame);
    if (rc == 0) {
      if (frame->txid < r->from_txid) continue;
      return 0;
    }
    if (rc != SL_EEND && rc != BAD_FRAME) return rc;

    /* No whole frame in what we saw of the file. Look for the next segment
     * first and measure afterwards: if the next one exists then, the size
     * measured later is final. */
    char next[PATH_MAX];
    struct stat st;
    if ((rc = seg_path(next, r->dir, r->it.h.segno + 1, ""))) return rc;
    bool has_next = stat(next, &st) == 0;
    uint64_t seen = r->it.s.size;
    r->it.s.buf_len = 0; /* bytes past a torn tail may still change */
    if ((rc = scan_refresh(&r->it.s))) return rc;
    if (r->it.s.size != seen) continue;
    if (!has_next) {
      if (r->it.off < r->it.s.size && !r->opt.tolerate_tail) return iter_corrupt(&r->it, "");
      return SL_EEND;
    }
    if (r->it.off < r->it.s.size)
      return iter_corrupt(&r->it, " in a sealed segment (a later segment exists)");
    if ((rc = reader_next_segment(r))) {
      scan_close(&r->it.s);
      return r->err = rc;
    }
  }
}

int sl_log_reader_open_frame(sl_log_reader *r, sl_keyring *kr, sl_frame *f) {
  if (!f->key_id) return 0;
  char path[PATH_MAX];
  size_t len;
  int rc = SL_ENOTFOUND;
  seg_path(path, r->dir, f->segno, "");
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
  if (r->plain_cap < f->payload_len) {
    uint8_t *p = realloc(r->plain, f->payload_len);
    if (!p) return -ENOMEM;
    r->plain = p;
    r->plain_cap = f->payload_len;
  }
  if ((rc = sl_crypt_open_frame(kr, f->key_id, r->store_id, f->payload, f->payload_len, r->plain, &len, NULL))) {
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
  scan_close(&r->it.s);
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
  int rc = iter_open(it, seg->path, O_RDONLY);
  if (rc) return rc;
  rc = iter_frame(it, &f);
  *none = rc == SL_EEND || rc == BAD_FRAME;
  if (rc == 0) *us = f.commit_us;
  else if (rc == BAD_FRAME && !newest) rc = iter_corrupt(it, "");
  else if (rc == SL_EEND && !newest) {
    sl_diag_error("%s: a sealed segment without frames", it->s.path);
    rc = SL_ECORRUPT;
  } else if (*none) rc = 0;
  scan_close(&it->s);
  return rc;
}

int sl_log_find_after_time(const char *logdir, uint64_t since_us, uint64_t *txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  seg_iter it = {.s.fd = -1};
  uint64_t us;
  bool none;
  int rc = sl_log_list(logdir, &segs, &n);
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
  if ((rc = iter_open(&it, segs[lo].path, O_RDONLY))) goto out;
  sl_frame f;
  while ((rc = iter_frame(&it, &f)) == 0) {
    if (f.commit_us > since_us) {
      *txid = f.txid;
      goto out;
    }
  }
  if (rc == BAD_FRAME && lo + 1 < n) {
    rc = iter_corrupt(&it, "");
    goto out;
  }
  if (rc != SL_EEND && rc != BAD_FRAME) goto out; /* the newest's tail may be an append */
  rc = 0;
  *txid = lo + 1 < n ? segs[lo + 1].first_txid : it.next_txid;

out:
  scan_close(&it.s);
  free(it.s.buf);
  free(segs);
  return rc;
}
