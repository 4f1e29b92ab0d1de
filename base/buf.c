/*
 * buf.c: the growable byte buffer (sl_buf) every module may use.
 *
 * It lived in codec/ because the codec was its first user (a connection's
 * send and receive buffers, sealed batches); it is not a wire concern, so it
 * lives here. Capacity grows by doubling from 4 KiB, so appending n bytes one
 * piece at a time costs O(n) copies; a buffer is never shrunk except by
 * sl_buf_free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sl_base.h"

int sl_buf_reserve(sl_buf *b, size_t cap) {
  if (cap <= b->cap) return 0;
  size_t n = b->cap ? b->cap : 4096;
  while (n < cap) n *= 2;
  uint8_t *p = realloc(b->data, n);
  if (!p) return -ENOMEM;
  b->data = p;
  b->cap = n;
  return 0;
}

void sl_buf_free(sl_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}
