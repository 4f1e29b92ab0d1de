/*
 * log_pack.c: compressed segments (log.h, PACKED SEGMENTS).
 *
 * A sealed segment (not the newest: nothing appends to it any more) is
 * packed into NNN.seg.pack-PID-N.tmp beside it -- its 128-byte header with flag
 * SL_SEG_F_LZ4 added (header CRC recomputed), then one LZ4 frame (content
 * size and content checksum on) of every byte after the header -- fsynced
 * and renamed over NNN.seg, then the folder fsynced. The name stays, so
 * listing, pruning, uploads and retention see the same files; readers that
 * opened the plain file keep reading it (rename keeps the inode), readers
 * that open it afterwards get the packed one, which seg_scan (log_read.c)
 * unpacks into its buffer whole: frame offsets are those of the plain file.
 * Every frame is checked (CRC, txid sequence) before packing, so damage is
 * never sealed into a packed file; one that would not shrink stays plain.
 * Segments of sealed frames (ciphertext) stay plain too: compressing after
 * encryption gains nothing.
 */
#include "log_int.h"
#include "sl_base.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4frame.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* NNN.seg.pack-PID-N.tmp: two threads may pack the same segment at once
 * (the receiver's keeper and uploader); each writes its own file and the
 * second rename puts an equal file in place. */
static void pack_tmp(char *out, size_t len, const char *path) {
  static atomic_uint n;
  snprintf(out, len, "%s.pack-%d-%u.tmp", path, (int)getpid(), atomic_fetch_add(&n, 1));
}

#define UNPACK_SLICE (64 * 1024) /* packed bytes per LZ4F_decompress call */

/* The plain image (header, then the frames) of the packed segment open as
 * fd, in one malloc'd buffer. */
static int unpack_image(int fd, const char *path, const sl_seg_header *h, uint8_t **image, size_t *image_len) {
  struct stat st;
  uint8_t *in = NULL, *out = NULL;
  LZ4F_dctx *dctx = NULL;
  LZ4F_frameInfo_t fi;
  int rc = 0;
  if (fstat(fd, &st)) {
    rc = -errno;
    sl_diag_error("stat %s: %s", path, sl_strerror(rc));
    return rc;
  }
  if ((size_t)st.st_size < SL_SEG_HEADER_SIZE) {
    sl_diag_error("%s: a packed segment shorter than its header", path);
    return SL_ETRUNCATED;
  }
  size_t in_len = (size_t)st.st_size - SL_SEG_HEADER_SIZE, src = in_len;
  if (!(in = malloc(in_len ? in_len : 1))) return -ENOMEM;
  long r = sl_pread_full(fd, in, in_len, SL_SEG_HEADER_SIZE);
  if (r < 0 || (size_t)r != in_len) {
    rc = r < 0 ? (int)r : SL_ETRUNCATED;
    sl_diag_error("read %s: %s", path, sl_strerror(rc));
    goto out;
  }
  if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
    rc = -ENOMEM;
    goto out;
  }
  size_t used = src;
  if (LZ4F_isError(LZ4F_getFrameInfo(dctx, &fi, in, &used)) || fi.contentSize == 0 ||
      fi.contentSize > (h->segment_size ? h->segment_size : SL_SEG_SIZE_DEFAULT) + SL_FRAME_MAX + SL_FRAME_HEADER_SIZE) {
    sl_diag_error("%s: a packed segment whose LZ4 frame does not give a plausible size", path);
    rc = SL_ECORRUPT;
    goto out;
  }
  size_t total = SL_SEG_HEADER_SIZE + (size_t)fi.contentSize, dst = (size_t)fi.contentSize, at = used;
  if (!(out = malloc(total))) {
    rc = -ENOMEM;
    goto out;
  }
  if (sl_pread_full(fd, out, SL_SEG_HEADER_SIZE, 0) != SL_SEG_HEADER_SIZE) {
    rc = SL_ETRUNCATED;
    goto out;
  }
  size_t done = 0;
  for (;;) {
    /* Fed in slices so that damage is named by where in the file it lies. */
    size_t d = dst - done, n = SL_MIN(in_len - at, (size_t)UNPACK_SLICE);
    size_t more = LZ4F_decompress(dctx, out + SL_SEG_HEADER_SIZE + done, &d, in + at, &n, NULL);
    if (LZ4F_isError(more)) {
      size_t from = SL_SEG_HEADER_SIZE + at, to = from + n;
      if (!strcmp(LZ4F_getErrorName(more), "ERROR_contentChecksum_invalid"))
        sl_diag_error("%s: packed segment: its content checksum does not match: a byte changed somewhere in "
                      "offsets %d..%zu", path, SL_SEG_HEADER_SIZE, SL_SEG_HEADER_SIZE + in_len);
      else
        sl_diag_error("%s: packed segment: %s in the bytes at offsets %zu..%zu", path, LZ4F_getErrorName(more),
                      from, to);
      rc = SL_ECORRUPT;
      goto out;
    }
    done += d;
    at += n;
    if (more == 0) break;
    if (n == 0 && d == 0) {
      sl_diag_error("%s: packed segment cut short", path);
      rc = SL_ECORRUPT;
      goto out;
    }
  }
  if (done != dst || at != in_len) {
    sl_diag_error("%s: packed segment holds %zu bytes, its frame says %zu", path, done, dst);
    rc = SL_ECORRUPT;
    goto out;
  }
  *image = out;
  *image_len = total;
  out = NULL;
out:
  LZ4F_freeDecompressionContext(dctx);
  free(in);
  free(out);
  return rc;
}

int sl__log_unpack(seg_scan *s, const sl_seg_header *h) {
  uint8_t *image;
  size_t total;
  int rc = unpack_image(s->fd, s->path, h, &image, &total);
  if (rc) return rc;
  free(s->buf);
  s->buf = image;
  s->cap = s->buf_len = total;
  s->buf_off = 0;
  s->size = total;
  s->packed = true;
  return 0;
}

int sl_log_seg_open_plain(int fd, const char *path, const sl_seg_header *h, int *plain_fd) {
  uint8_t *image = NULL;
  size_t total = 0;
  int rc = unpack_image(fd, path, h, &image, &total);
  if (rc) return rc;
  int mfd = memfd_create("shiplog-unpacked-segment", MFD_CLOEXEC);
  if (mfd < 0) {
    rc = -errno;
    sl_diag_error("%s: no memory file to unpack into: %s", path, sl_strerror(rc));
  } else if ((rc = sl_write_all(mfd, image, total)) < 0) {
    sl_diag_error("%s: unpacking into a memory file: %s", path, sl_strerror(rc));
    close(mfd);
  } else {
    rc = 0;
    *plain_fd = mfd;
  }
  free(image);
  return rc;
}

uint64_t sl_log_seg_plain_size(const sl_seg_info *seg) {
  uint8_t b[SL_SEG_HEADER_SIZE + LZ4F_HEADER_SIZE_MAX];
  sl_seg_header h;
  LZ4F_dctx *dctx = NULL;
  LZ4F_frameInfo_t fi;
  uint64_t size = seg->size;
  int fd = open(seg->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return size;
  long r = sl_pread_full(fd, b, sizeof b, 0);
  close(fd);
  if (r <= SL_SEG_HEADER_SIZE || sl_seg_header_decode(b, &h) || !(h.flags & SL_SEG_F_LZ4)) return size;
  size_t used = (size_t)r - SL_SEG_HEADER_SIZE;
  if (!LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)) &&
      !LZ4F_isError(LZ4F_getFrameInfo(dctx, &fi, b + SL_SEG_HEADER_SIZE, &used)) && fi.contentSize)
    size = SL_SEG_HEADER_SIZE + fi.contentSize;
  LZ4F_freeDecompressionContext(dctx);
  return size;
}

int sl_log_seg_pack(const char *path, uint64_t *plain_bytes, uint64_t *packed_bytes) {
  seg_iter it = {.s.fd = -1};
  sl_frame f;
  char tmp[PATH_MAX + 48];
  uint8_t *out = NULL, head[SL_SEG_HEADER_SIZE];
  int fd = -1, rc;
  *plain_bytes = *packed_bytes = 0;
  if ((rc = sl__log_iter_open(&it, path, O_RDONLY))) goto out;
  if (it.h.flags & (SL_SEG_F_LZ4 | SL_SEG_F_SEALED)) goto out; /* packed already, or ciphertext */
  while ((rc = sl__log_iter_frame(&it, &f)) == 0) continue;
  if (sl__log_iter_bad_if_sealed(&it, rc)) rc = sl__log_iter_corrupt(&it, ": not packed");
  if (rc != SL_EEND) goto out;
  rc = 0;
  size_t plain = (size_t)it.s.size - SL_SEG_HEADER_SIZE;
  uint8_t *body = malloc(plain ? plain : 1);
  if (!body) {
    rc = -ENOMEM;
    goto out;
  }
  if (sl_pread_full(it.s.fd, body, plain, SL_SEG_HEADER_SIZE) != (long)plain) {
    free(body);
    rc = SL_ETRUNCATED;
    sl_diag_error("read %s: %s", path, sl_strerror(rc));
    goto out;
  }
  LZ4F_preferences_t pref = {.frameInfo = {.contentSize = plain, .contentChecksumFlag = LZ4F_contentChecksumEnabled,
                                           .blockSizeID = LZ4F_max4MB}};
  size_t cap = LZ4F_compressFrameBound(plain, &pref);
  size_t n = (out = malloc(cap)) ? LZ4F_compressFrame(out, cap, body, plain, &pref) : 0;
  free(body);
  if (!out || LZ4F_isError(n)) {
    rc = out ? SL_EINVAL : -ENOMEM;
    goto out;
  }
  *plain_bytes = it.s.size;
  if (SL_SEG_HEADER_SIZE + n >= it.s.size) goto out; /* would not shrink: stays plain */
  sl_seg_header h = it.h;
  h.flags |= SL_SEG_F_LZ4;
  sl_seg_header_encode(&h, head);
  pack_tmp(tmp, sizeof tmp, path);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 || (rc = sl_write_all(fd, head, sizeof head)) ||
      (rc = sl_write_all(fd, out, n)) || (rc = sl_fsync(fd))) {
    rc = rc ? rc : -errno;
    sl_diag_error("%s: %s", tmp, sl_strerror(rc));
    unlink(tmp);
    goto out;
  }
  if ((rc = sl_rename_durable(tmp, path))) {
    unlink(tmp);
    goto out;
  }
  *packed_bytes = SL_SEG_HEADER_SIZE + n;
out:
  if (fd >= 0) close(fd);
  sl__log_scan_close(&it.s);
  free(it.s.buf);
  free(out);
  return rc;
}

int sl__log_seg_unpack_file(const char *path) {
  seg_iter it = {.s.fd = -1};
  char tmp[PATH_MAX + 48];
  uint8_t head[SL_SEG_HEADER_SIZE];
  int fd = -1, rc = sl__log_iter_open(&it, path, O_RDONLY);
  if (rc || !it.s.packed) goto out;
  sl_seg_header h = it.h;
  h.flags &= ~SL_SEG_F_LZ4;
  sl_seg_header_encode(&h, head);
  pack_tmp(tmp, sizeof tmp, path);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 || (rc = sl_write_all(fd, head, sizeof head)) ||
      (rc = sl_write_all(fd, it.s.buf + SL_SEG_HEADER_SIZE, it.s.size - SL_SEG_HEADER_SIZE)) || (rc = sl_fsync(fd))) {
    rc = rc ? rc : -errno;
    sl_diag_error("%s: %s", tmp, sl_strerror(rc));
    unlink(tmp);
    goto out;
  }
  if ((rc = sl_rename_durable(tmp, path))) unlink(tmp);
out:
  if (fd >= 0) close(fd);
  sl__log_scan_close(&it.s);
  free(it.s.buf);
  return rc;
}
