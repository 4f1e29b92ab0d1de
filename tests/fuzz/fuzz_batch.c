/*
 * fuzz_batch: sl_batch_open, the receiver's check of a batch (LZ4 block,
 * CRC of the raw bytes, every frame, dense txids) before it archives
 * anything. A decoded message rarely carries a CRC that matches, so this
 * target builds the Batch itself. Input:
 *   0  1  mode: bit 0 = the rest is Batch.data as sent (hostile LZ4 or raw
 *         bytes; raw_len and raw_crc32c taken from the header below); clear
 *         = the rest is raw frames, sealed with sl_batch_seal (bit 1: lz4)
 *         so that the frame walk sees them
 *   1  4  first txid (LE)   5  2  last - first   7 4 raw_len   11 4 raw_crc32c
 *   15 .. data
 */
#include "fuzz.h"

#include "codec.h"
#include "sl_base.h"

#define HDR 15

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HDR) return 0;
  uint8_t mode = data[0];
  uint64_t first = sl_get_le32(data + 1);
  uint64_t last = first + (uint64_t)(data[5] | data[6] << 8);
  const uint8_t *body = data + HDR;
  size_t len = size - HDR;
  Shiplog__Repl__Batch b;
  sl_buf scratch = {0}, raw = {0};
  if (mode & 1) {
    shiplog__repl__batch__init(&b);
    b.first_txid = first;
    b.last_txid = last;
    b.raw_len = sl_get_le32(data + 7) % (2u << 20);
    b.raw_crc32c = sl_get_le32(data + 11);
    b.has_compression = true;
    b.compression = (mode & 2) ? SHIPLOG__REPL__COMPRESSION__COMPRESSION_LZ4
                               : SHIPLOG__REPL__COMPRESSION__COMPRESSION_NONE;
    b.data.data = (uint8_t *)body;
    b.data.len = len;
    sl_batch_open(&b, 1u << 20, &raw);
  } else if (len > 0 && sl_batch_seal(body, len, first, last, mode & 2, &scratch, &b) == 0) {
    sl_batch_open(&b, 1u << 20, &raw);
  }
  sl_buf_free(&scratch);
  sl_buf_free(&raw);
  return 0;
}
