/*
 * fuzz_pack: a packed archive segment (store/log.h PACKED SEGMENTS) as a
 * restore or a standby rebuild finds it on disk: the input is what follows
 * the header (an LZ4 frame, in a valid file), placed behind a valid header
 * with flag SL_SEG_F_LZ4 as segment 1 of a log directory of its own; a
 * reader then unpacks it (log_pack.c) and reads every frame. Seeds
 * (tests/fuzz/corpus/pack): packed real segments.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <string.h>

#include "log.h"
#include "sl_base.h"

static char dir[64], seg[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(dir, sizeof dir, "/tmp/fuzz_pack-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(seg, sizeof seg, "%s/00000000000000000001.seg", dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sl_seg_header h = {.version = SL_SEG_VERSION, .flags = SL_SEG_F_LZ4, .segno = 1, .first_txid = 1,
                     .segment_size = 65536};
  uint8_t head[SL_SEG_HEADER_SIZE];
  sl_seg_header_encode(&h, head);
  int fd = open(seg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  int rc = sl_write_all(fd, head, sizeof head);
  if (rc == 0) rc = sl_write_all(fd, data, size);
  close(fd);
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.tolerate_tail = false};
  if (rc == 0 && sl_log_reader_open(dir, 1, &ro, &r) == 0) {
    while (sl_log_reader_next(r, &f) == 0) continue;
    sl_log_reader_close(r);
  }
  unlink(seg);
  return 0;
}
