/*
 * fuzz_tzif: the TZif reader of base/tzdb.c (zone files of the system's
 * tzdata, RFC 8536, with the POSIX TZ footer of v2+ files), on any bytes:
 * parse, then ask for the offset at a few instants, the far past and future
 * included (which walk the transitions and the footer's rule).
 */
#include "fuzz.h"

#include "sl_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int64_t probes[] = {INT64_MIN / 4, -62135596800LL, 0, 1700000000, 4102444800LL,
                                   31556889832780799LL};
  for (size_t i = 0; i < SL_ARRAY_LEN(probes); i++) {
    int32_t off;
    if (sl__tzif_parse(data, size, probes[i], &off) != 0) return 0;
    if (off < -26 * 3600 || off > 26 * 3600) abort();
  }
  return 0;
}
