/*
 * fuzz_log: the bytes of a log segment as a reader finds them on disk (the
 * primary's log, a receiver's archive, a restore's input): the 128-byte
 * segment header (sl_seg_header_decode), then frames back to back
 * (sl_frame_decode), each payload's txid and time (sl_txn_peek) and the
 * whole Transaction as `shiplog log` prints it (sl_txn_print, text and
 * JSON). Input: a segment file, or frames alone when it is shorter than a
 * header.
 */
#include "fuzz.h"

#include "interchange.h"
#include "log.h"
#include "sl_base.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  devnull = fopen("/dev/null", "w");
  return devnull ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  if (size >= SL_SEG_HEADER_SIZE) {
    sl_seg_header h;
    if (sl_seg_header_decode(data, &h) == 0) off = SL_SEG_HEADER_SIZE;
  }
  while (off < size) {
    const uint8_t *payload;
    uint32_t plen;
    size_t flen;
    if (sl_frame_decode(data + off, size - off, &payload, &plen, &flen)) break;
    uint64_t txid, ts, epoch;
    if (sl_txn_peek(payload, plen, &txid, &ts, &epoch) == 0) {
      sl_txn_print(payload, plen, false, devnull);
      sl_txn_print(payload, plen, true, devnull);
    }
    off += flen;
  }
  return 0;
}
