/*
 * log_size.c: how many bytes of a log lie after a txid (store/log.h,
 * sl_log_bytes_after), the "lag in bytes" of `shiplog status` and of the
 * metrics. Read-only, from any process, through the listing and the reader:
 * the frame after the txid gives the starting segment and offset, and
 * segment sizes give the rest without reading frames -- but the newest
 * segment's size counts its ZEROED TAIL (log.h), so where the durable mark
 * lies in it, its frames end at the mark.
 */
#include <stdlib.h>

#include "log_int.h"
#include "sl_base.h"

uint64_t sl_log_bytes_after(const char *logdir, uint64_t after, uint64_t last) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  sl_log_reader *rd = NULL;
  sl_frame f;
  uint64_t total = 0;
  if (after >= last || sl_log_list(logdir, &segs, &n) != 0 || n == 0) goto out;
  uint64_t segno = segs[0].segno, off = SL_SEG_HEADER_SIZE;
  sl_log_reader_options o = {.max_txid = last, .tolerate_tail = true};
  if (after + 1 >= segs[0].first_txid && sl_log_reader_open(logdir, after + 1, &o, &rd) == 0 &&
      sl_log_reader_next(rd, &f) == 0) {
    segno = f.segno;
    off = f.offset;
  }
  mark m;
  bool have_mark = sl__log_mark_read(logdir, &m) == 0;
  for (size_t i = 0; i < n; i++) {
    if (segs[i].segno < segno) continue;
    uint64_t from = segs[i].segno == segno ? off : SL_SEG_HEADER_SIZE, size = segs[i].size;
    if (i + 1 == n && have_mark && m.segno == segs[i].segno) size = SL_MIN(size, m.end);
    if (size > from) total += size - from;
  }
out:
  if (rd) sl_log_reader_close(rd);
  free(segs);
  return total;
}
