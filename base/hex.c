/*
 * hex.c: lower-case hex text of bytes, as store ids, meta pages and CRCs are
 * written in files, manifests and messages. A table instead of a sprintf
 * per byte; the output is the same ("%02x" each byte).
 */
#include "sl_base.h"

void sl_hex_encode(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}
