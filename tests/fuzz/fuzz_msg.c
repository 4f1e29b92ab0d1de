/*
 * fuzz_msg: bytes from a replication socket (codec.h WIRE FRAMING), as the
 * receiver and the shipper read them: sl_msg_decode over the whole input,
 * message after message, with the receiver's largest limit; every batch
 * that decodes is opened as the receiver would (sl_batch_open), and every
 * base chunk / end checked as the receiver checks them (BASE SHIPPING).
 */
#include "fuzz.h"

#include "codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  sl_buf raw = {0};
  uint64_t base_got = 0;
  uint32_t base_crc = 0;
  while (off < size) {
    Shiplog__Repl__Message *m;
    size_t used;
    if (sl_msg_decode(data + off, size - off, SL_MSG_MAX, &m, &used)) break;
    (void)sl_msg_kind(m);
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BATCH)
      sl_batch_open(m->batch, 1u << 20, &raw);
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK &&
        sl_base_chunk_check(m->base_chunk, base_got, 1u << 20) == 0) {
      base_crc = sl_crc32c(base_crc, m->base_chunk->data.data, m->base_chunk->data.len);
      base_got += m->base_chunk->data.len;
    }
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BASE_END) (void)sl_base_end_check(m->base_end, base_got, base_crc);
    sl_msg_free(m);
    off += used;
  }
  sl_buf_free(&raw);
  return 0;
}
