/*
 * Reading backup files (sl_dump_reader, sl_dump_verify); the format is
 * specified in dump.h, writing them is dump.c, loading them into stores is
 * load.c.
 *
 * SEALED FILES (dump.h, AT-REST ENCRYPTION): the reader opens each chunk
 * (crypt.h) after its CRC checked out and before LZ4 sees it.
 *
 * READING checks a chunk completely (lengths, flags, the CRC over the
 * stored bytes, LZ4 decoding to exactly raw_len bytes) before handing out
 * its first record, and the trailer (count, CRC of all raw bytes, end of
 * file) before reporting SL_EEND. Every failure is logged once, as
 * "PATH: offset N: reason", and is sticky.
 */
#include "dump.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypt.h"
#include "lineage.h"
#include "store_int.h"

/* ---- reader ------------------------------------------------------------------------ */
struct sl_dump_reader {
  char *path;
  int fd;
  uint64_t size;
  sl_dump_header h;
  uint64_t pos;       /* offset of the next chunk header */
  uint64_t chunk_off; /* offset of the chunk being read */
  uint8_t *stored;
  size_t stored_cap;
  uint8_t *raw;
  size_t raw_cap, raw_len, raw_pos;
  uint32_t raw_crc;
  uint64_t records, raw_bytes;
  int state;          /* 0 while reading; then SL_EEND or the sticky error */
  uint64_t err_off;
  /* order checks */
  int last_db;
  uint8_t prev_key[SL_DUMP_KEY_MAX];
  size_t prev_klen;
  uint64_t next_txid;
  uint64_t cs_start, cs; /* incremental: cs(first - 1) and cs(next_txid - 1) */
  sl_keyring *kr;     /* sealed file: opens its chunks */
  uint64_t chunk_index;
  uint8_t header[SL_DUMP_HEADER_SIZE];
  uint8_t *opened;    /* a sealed chunk's stored bytes, opened */
  size_t opened_cap;
};

static int bad(sl_dump_reader *r, int rc, uint64_t off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(sl_dump_reader *r, int rc, uint64_t off, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_diag_error("%s: offset %" PRIu64 ": %s", r->path, off, msg);
  r->err_off = off;
  return r->state = rc;
}

static int reserve(uint8_t **buf, size_t *cap, size_t n) {
  if (n <= *cap) return 0;
  uint8_t *p = realloc(*buf, n);
  if (!p) return -ENOMEM;
  *buf = p;
  *cap = n;
  return 0;
}

static void reader_reset(sl_dump_reader *r) {
  r->pos = SL_DUMP_HEADER_SIZE;
  r->chunk_off = SL_DUMP_HEADER_SIZE;
  r->raw_len = r->raw_pos = 0;
  r->raw_crc = 0;
  r->records = r->raw_bytes = 0;
  r->state = 0;
  r->err_off = 0;
  r->last_db = -1;
  r->prev_klen = 0;
  r->next_txid = r->h.first_txid;
  r->cs = r->cs_start;
  r->chunk_index = 0;
}

int sl_dump_open(const char *path, sl_dump_reader **out) { return sl_dump_open_keyed(path, NULL, out); }

int sl_dump_open_keyed(const char *path, sl_keyring *kr, sl_dump_reader **out) {
  uint8_t *b;
  struct stat sb;
  int rc;
  *out = NULL;
  sl_dump_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    return -ENOMEM;
  }
  r->fd = -1;
  r->kr = kr;
  b = r->header;
  if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(r->fd, &sb)) {
    rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto fail;
  }
  r->size = (uint64_t)sb.st_size;
  posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  long n = sl_pread_full(r->fd, b, SL_DUMP_HEADER_SIZE, 0);
  if (n < 0) {
    rc = (int)n;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto fail;
  }
  if (n >= 8 && memcmp(b, SL_DUMP_MAGIC, 8)) {
    rc = bad(r, SL_ENOTLOG, 0, "not a shiplog dump (bad magic)");
    goto fail;
  }
  if (n < SL_DUMP_HEADER_SIZE) {
    rc = bad(r, SL_ETRUNCATED, 0, "the file ends inside the %d-byte header", SL_DUMP_HEADER_SIZE);
    goto fail;
  }
  if ((rc = sl_dump_header_decode(b, &r->h))) {
    bad(r, rc, 0, "%s",
        rc == SL_EVERSION ? "dump format version not supported" : "damaged header (checksum or field mismatch)");
    goto fail;
  }
  if (r->h.key_id[0] && (!kr || !sl_keyring_has(kr, r->h.key_id))) {
    rc = bad(r, SL_ENOTFOUND, 0, "the file is sealed with key %s, %s%s", r->h.key_id,
             kr ? "which is not in the key file " : "and no key file was given (--key-file or " SL_CRYPT_ENV ")",
             kr ? sl_keyring_path(kr) : "");
    goto fail;
  }
  r->cs_start = r->h.prev_checksum;
  reader_reset(r);
  *out = r;
  return 0;
fail:
  sl_dump_close(r);
  return rc;
}

const sl_dump_header *sl_dump_reader_header(const sl_dump_reader *r) { return &r->h; }
uint64_t sl_dump_reader_pos(const sl_dump_reader *r) { return r->pos; }
uint64_t sl_dump_reader_size(const sl_dump_reader *r) { return r->size; }
uint64_t sl_dump_reader_error_offset(const sl_dump_reader *r) { return r->err_off; }

void sl_dump_reader_info(const sl_dump_reader *r, sl_dump_info *out) {
  *out = (sl_dump_info){.header = r->h, .records = r->records, .raw_bytes = r->raw_bytes, .file_bytes = r->pos};
  if (r->h.kind == SL_DUMP_FULL) {
    out->has_end_checksum = r->h.has_lineage;
    out->end_checksum = r->h.checksum;
  } else {
    out->has_end_checksum = r->h.has_prev_checksum && r->state == SL_EEND;
    out->end_checksum = out->has_end_checksum ? r->cs : 0;
  }
}

int sl_dump_rewind(sl_dump_reader *r) {
  reader_reset(r);
  return 0;
}

void sl_dump_reader_chain_from(sl_dump_reader *r, uint64_t cs) { r->cs = r->cs_start = cs; }

void sl_dump_close(sl_dump_reader *r) {
  if (!r) return;
  if (r->fd >= 0) close(r->fd);
  free(r->stored);
  free(r->raw);
  free(r->opened);
  free(r->path);
  free(r);
}

/* Read len bytes at off; a short read is truncation. */
static int read_at(sl_dump_reader *r, void *buf, size_t len, uint64_t off, uint64_t chunk, const char *what) {
  long n = sl_pread_full(r->fd, buf, len, off);
  if (n < 0) return bad(r, (int)n, chunk, "read: %s", sl_strerror((int)n));
  if ((size_t)n < len)
    return bad(r, SL_ETRUNCATED, chunk, "the file ends inside %s (truncated)", what);
  return 0;
}

/* Open the sealed stored bytes in[0..len) of the chunk at off (header hdr)
 * into out (len - SL_CRYPT_OVERHEAD bytes). */
static int open_sealed(sl_dump_reader *r, const uint8_t hdr[SL_DUMP_CHUNK_HEADER_SIZE], uint64_t off,
                       const uint8_t *in, size_t len, uint8_t *out) {
  uint8_t aad[12 + 8 + SL_DUMP_HEADER_SIZE];
  memcpy(aad, hdr, 12);
  sl_put_le64(aad + 12, r->chunk_index);
  memcpy(aad + 20, r->header, SL_DUMP_HEADER_SIZE);
  int rc = sl_crypt_open_chunk(r->kr, r->h.key_id, r->h.store_id, aad, sizeof aad, in, len, out);
  if (rc == SL_EAUTH)
    return bad(r, rc, off, "sealed chunk %" PRIu64 " (key %s) does not open: authentication failed (wrong key, "
               "changed bytes, or chunks moved, removed or cut off)", r->chunk_index, r->h.key_id);
  if (rc) return bad(r, rc, off, "sealed chunk %" PRIu64 " (key %s): %s", r->chunk_index, r->h.key_id, sl_strerror(rc));
  r->chunk_index++;
  return 0;
}

static int read_trailer(sl_dump_reader *r, const uint8_t hdr[SL_DUMP_CHUNK_HEADER_SIZE]) {
  uint8_t t[SL_DUMP_TRAILER_SIZE + SL_CRYPT_OVERHEAD], extra;
  uint64_t off = r->pos;
  bool sealed = r->h.key_id[0];
  uint32_t stored_len = SL_DUMP_TRAILER_SIZE + (sealed ? SL_CRYPT_OVERHEAD : 0);
  int rc;
  if (sl_get_le32(hdr + 4) != stored_len || sl_get_le32(hdr + 8) != (sealed ? SL_DUMP_CHUNK_F_SEALED : 0))
    return bad(r, SL_ECORRUPT, off, "damaged trailer (length or flags)");
  if ((rc = read_at(r, t, stored_len, off + SL_DUMP_CHUNK_HEADER_SIZE, off, "the trailer"))) return rc;
  if (sl_get_le32(hdr + 12) != sl_crc32c(sl_crc32c(0, hdr, 12), t, stored_len))
    return bad(r, SL_ECORRUPT, off, "trailer checksum mismatch");
  if (sealed) {
    uint8_t plain[SL_DUMP_TRAILER_SIZE];
    if ((rc = open_sealed(r, hdr, off, t, stored_len, plain))) return rc;
    memcpy(t, plain, sizeof plain);
  }
  uint64_t count = sl_get_le64(t);
  if (count != r->records || sl_get_le32(t + 8) != r->raw_crc || sl_get_le32(t + 12) != 0)
    return bad(r, SL_ECORRUPT, off,
               "the trailer does not match the chunks (it counts %" PRIu64 " records, the chunks hold %" PRIu64
               "; checksum of the records %s)",
               count, r->records, sl_get_le32(t + 8) == r->raw_crc ? "matches" : "differs");
  if (r->h.kind == SL_DUMP_INCREMENTAL && r->next_txid != r->h.last_txid + 1)
    return bad(r, SL_ECORRUPT, off, "the file ends at txid %" PRIu64 ", its header says %" PRIu64, r->next_txid - 1,
               r->h.last_txid);
  uint64_t end = off + SL_DUMP_CHUNK_HEADER_SIZE + stored_len;
  long n = sl_pread_full(r->fd, &extra, 1, end);
  if (n < 0) return bad(r, (int)n, end, "read: %s", sl_strerror((int)n));
  if (n > 0) return bad(r, SL_ECORRUPT, end, "data after the trailer");
  r->pos = end;
  return r->state = SL_EEND;
}

/* Read and check the chunk at r->pos into r->raw. */
static int read_chunk(sl_dump_reader *r) {
  uint8_t hdr[SL_DUMP_CHUNK_HEADER_SIZE];
  uint64_t off = r->pos;
  long n = sl_pread_full(r->fd, hdr, sizeof hdr, off);
  int rc;
  if (n < 0) return bad(r, (int)n, off, "read: %s", sl_strerror((int)n));
  if (n == 0) return bad(r, SL_ETRUNCATED, off, "the file ends before the trailer (truncated)");
  if ((size_t)n < sizeof hdr) return bad(r, SL_ETRUNCATED, off, "the file ends inside a chunk header (truncated)");
  uint32_t raw_len = sl_get_le32(hdr), stored_len = sl_get_le32(hdr + 4), flags = sl_get_le32(hdr + 8);
  if (raw_len == 0) return read_trailer(r, hdr);
  /* A sealed file's chunks are all sealed (bit 1), a plain file's none;
   * the checks below are on the stored bytes inside the seal. */
  bool sealed = r->h.key_id[0];
  uint32_t extra = sealed ? SL_CRYPT_OVERHEAD : 0, inner = stored_len - extra;
  if (sealed != !!(flags & SL_DUMP_CHUNK_F_SEALED) || stored_len < extra)
    return bad(r, SL_ECORRUPT, off, "damaged chunk header (flags %" PRIu32 " in a %s file)", flags,
               sealed ? "sealed" : "plaintext");
  flags &= ~SL_DUMP_CHUNK_F_SEALED;
  if (raw_len > SL_DUMP_CHUNK_MAX || flags > 1 || (flags == 0 && inner != raw_len) ||
      (flags == 1 && (inner == 0 || inner > (uint32_t)LZ4_compressBound((int)raw_len))))
    return bad(r, SL_ECORRUPT, off, "damaged chunk header (raw %" PRIu32 ", stored %" PRIu32 ", flags %" PRIu32 ")",
               raw_len, stored_len, flags);
  if (off + SL_DUMP_CHUNK_HEADER_SIZE + stored_len > r->size)
    return bad(r, SL_ETRUNCATED, off,
               "the chunk's %" PRIu32 " bytes run past the end of the file at offset %" PRIu64
               " (truncated, or a damaged length)",
               stored_len, r->size);
  if ((rc = reserve(&r->raw, &r->raw_cap, raw_len)) ||
      ((flags || sealed) && (rc = reserve(&r->stored, &r->stored_cap, stored_len))) ||
      (sealed && flags && (rc = reserve(&r->opened, &r->opened_cap, inner))))
    return bad(r, rc, off, "%s", sl_strerror(rc));
  uint8_t *stored = flags || sealed ? r->stored : r->raw;
  if ((rc = read_at(r, stored, stored_len, off + SL_DUMP_CHUNK_HEADER_SIZE, off, "a chunk"))) return rc;
  if (sl_get_le32(hdr + 12) != sl_crc32c(sl_crc32c(0, hdr, 12), stored, stored_len))
    return bad(r, SL_ECORRUPT, off, "chunk checksum mismatch");
  if (sealed) {
    uint8_t *opened = flags ? r->opened : r->raw;
    if ((rc = open_sealed(r, hdr, off, stored, stored_len, opened))) return rc;
    stored = opened;
  }
  if (flags && LZ4_decompress_safe((const char *)stored, (char *)r->raw, (int)inner, (int)raw_len) !=
                   (int)raw_len)
    return bad(r, SL_ECORRUPT, off, "the chunk does not decompress to its %" PRIu32 " bytes", raw_len);
  r->raw_crc = sl_crc32c(r->raw_crc, r->raw, raw_len);
  r->raw_bytes += raw_len;
  r->raw_len = raw_len;
  r->raw_pos = 0;
  r->chunk_off = off;
  r->pos = off + SL_DUMP_CHUNK_HEADER_SIZE + stored_len;
  return 0;
}

/* LMDB's default key order: memcmp, then the shorter first. */
static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  int c = memcmp(a, b, SL_MIN(an, bn));
  return c ? c : (an > bn) - (an < bn);
}

static int parse_full(sl_dump_reader *r, const uint8_t *p, size_t left, sl_dump_record *rec, size_t *used) {
  uint64_t off = r->chunk_off;
  size_t at = r->raw_pos;
  if (left < SL_DUMP_RECORD_HEADER_SIZE)
    return bad(r, SL_ECORRUPT, off, "record at raw byte %zu runs past the chunk", at);
  unsigned db = p[0];
  uint32_t klen = sl_get_le32(p + 1), vlen = sl_get_le32(p + 5);
  if (db >= SL__DB_COUNT) return bad(r, SL_ECORRUPT, off, "record at raw byte %zu: unknown database index %u", at, db);
  if ((int)db < r->last_db)
    return bad(r, SL_ECORRUPT, off, "record at raw byte %zu: database %u after database %d", at, db, r->last_db);
  if (klen == 0 || klen > SL_DUMP_KEY_MAX || vlen > SL_FRAME_MAX ||
      (uint64_t)klen + vlen > left - SL_DUMP_RECORD_HEADER_SIZE)
    return bad(r, SL_ECORRUPT, off, "record at raw byte %zu: bad lengths (key %" PRIu32 ", value %" PRIu32 ")", at,
               klen, vlen);
  const uint8_t *key = p + SL_DUMP_RECORD_HEADER_SIZE;
  if ((int)db == r->last_db && key_cmp(r->prev_key, r->prev_klen, key, klen) >= 0)
    return bad(r, SL_ECORRUPT, off, "record at raw byte %zu: keys of %s out of order", at, sl__db_names[db]);
  r->last_db = (int)db;
  memcpy(r->prev_key, key, klen);
  r->prev_klen = klen;
  rec->db = db;
  rec->key = key;
  rec->klen = klen;
  rec->val = key + klen;
  rec->vlen = vlen;
  *used = SL_DUMP_RECORD_HEADER_SIZE + klen + vlen;
  return 0;
}

static int parse_frame(sl_dump_reader *r, const uint8_t *p, size_t left, sl_dump_record *rec, size_t *used) {
  uint64_t off = r->chunk_off, epoch;
  const uint8_t *payload;
  uint32_t plen;
  int rc = sl_frame_decode(p, left, &payload, &plen, used);
  if (rc) return bad(r, SL_ECORRUPT, off, "frame at raw byte %zu: %s", r->raw_pos, sl_strerror(rc));
  if (sl_txn_peek(payload, plen, &rec->txid, &rec->commit_us, &epoch))
    return bad(r, SL_ECORRUPT, off, "frame at raw byte %zu is not a transaction", r->raw_pos);
  if (rec->txid != r->next_txid || rec->txid > r->h.last_txid)
    return bad(r, SL_ECORRUPT, off, "frame at raw byte %zu holds txid %" PRIu64 " where %" PRIu64 " was expected",
               r->raw_pos, rec->txid, r->next_txid);
  r->next_txid++;
  rec->payload = payload;
  rec->len = plen;
  rec->checksum = r->cs = sl_frame_lineage(r->cs, rec->txid, p, plen);
  return 0;
}

int sl_dump_next(sl_dump_reader *r, sl_dump_record *rec) {
  int rc;
  if (r->state) return r->state;
  if (r->raw_pos == r->raw_len && (rc = read_chunk(r))) return rc;
  memset(rec, 0, sizeof *rec);
  rec->offset = r->chunk_off;
  const uint8_t *p = r->raw + r->raw_pos;
  size_t left = r->raw_len - r->raw_pos, used = 0;
  rc = r->h.kind == SL_DUMP_FULL ? parse_full(r, p, left, rec, &used) : parse_frame(r, p, left, rec, &used);
  if (rc) return rc;
  r->raw_pos += used;
  r->records++;
  return 0;
}

int sl_dump_verify(const char *path, sl_dump_progress_fn fn, void *arg, sl_dump_info *out) {
  return sl_dump_verify_keyed(path, NULL, fn, arg, out);
}

int sl_dump_verify_keyed(const char *path, sl_keyring *kr, sl_dump_progress_fn fn, void *arg, sl_dump_info *out) {
  sl_dump_reader *r;
  sl_dump_record rec;
  uint64_t chunk = 0;
  int rc = sl_dump_open_keyed(path, kr, &r);
  if (rc) return rc;
  while ((rc = sl_dump_next(r, &rec)) == 0) {
    if (fn && rec.offset != chunk) fn(arg, r->pos, r->size);
    chunk = rec.offset;
  }
  if (rc == SL_EEND) {
    rc = 0;
    if (fn) fn(arg, r->pos, r->size);
    if (out) sl_dump_reader_info(r, out);
  }
  sl_dump_close(r);
  return rc;
}
