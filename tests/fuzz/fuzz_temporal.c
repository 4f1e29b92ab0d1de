/*
 * fuzz_temporal: the text of dates, times, datetimes and durations as
 * sl_temporal_parse reads it (mutation files, the canonical export, CSV
 * cells). Input: byte 0 picks the kind (SL_DATE + b % 6), byte 1 the default
 * zone (none, an offset, an IANA name, an unknown name); the rest is the
 * text. Oracle: what parses formats to canonical text that parses back to a
 * value with the same text (parse . format is the identity on canonical
 * text), else abort.
 */
#include "fuzz.h"

#include <string.h>

#include "sl_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const zones[] = {NULL, "+01:00", "Europe/Paris", "America/New_York", "Mars/Olympus", "Z"};
  if (size < 2) return 0;
  sl_kind kind = (sl_kind)(SL_DATE + data[0] % 6);
  const char *dz = zones[data[1] % SL_ARRAY_LEN(zones)];
  char zone[SL_ZONE_MAX + 1], zone2[SL_ZONE_MAX + 1], err[256];
  char text[SL_TEMPORAL_TEXT_MAX], again[SL_TEMPORAL_TEXT_MAX];
  sl_value v, w;
  if (sl_temporal_parse(kind, (const char *)data + 2, size - 2, dz, &v, zone, err, sizeof err) != 0) return 0;
  int n = sl_temporal_format(&v, text, sizeof text);
  if (n <= 0 || (size_t)n >= sizeof text) abort();
  if (sl_temporal_parse(kind, text, (size_t)n, NULL, &w, zone2, err, sizeof err) != 0) abort();
  if (sl_temporal_format(&w, again, sizeof again) != n || memcmp(text, again, (size_t)n) != 0) abort();
  return 0;
}
