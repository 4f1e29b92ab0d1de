/*
 * log_format.c: the byte codecs of the transaction log's format (log.h:
 * SEGMENT HEADER, FRAME, LINEAGE, SEALED FRAMES, DURABLE MARK): encoding and
 * decoding, the minimal protobuf walk of sl_txn_peek, and the rolling lineage
 * checksum. Pure functions on buffers, without I/O or locks, safe from any
 * thread; every file that reads or writes the log (log.c, log_write.c,
 * log_read.c; the shipper and receiver through log.h) goes through them.
 * The design of the log is at the top of log.c.
 */
#include "log_int.h"
#include "sl_base.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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
bool sl__log_txn_checksum(const uint8_t *p, const uint8_t *end, uint64_t *cs) {
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
  if (sl__log_txn_checksum(payload, payload + payload_len, &cs)) return cs;
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

void sl__log_mark_encode(uint8_t out[SL_DURABLE_MARK_SIZE], uint64_t txid, uint64_t segno,
                         uint64_t end) {
  sl_put_le64(out, txid);
  sl_put_le64(out + 8, segno);
  sl_put_le64(out + 16, end);
  sl_put_le32(out + 24, sl_crc32c(0, out, 24));
  sl_put_le32(out + 28, 0);
}
