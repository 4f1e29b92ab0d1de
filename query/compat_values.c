/*
 * Stand-ins for the value functions that include/shiplog.h declares and the
 * values-text branch implements (sl_temporal_*, sl_srid_*). They are weak:
 * once the store's own definitions are linked they win and these are dead
 * code, to be deleted when that branch is merged. (sl_value_order, _compare
 * and _kind_rank came with values-store, store/value_order.c: their
 * stand-ins are gone, since a weak one pulled from an archive first kept the
 * store's out of a static link.) Temporal values have no text here.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"

#define WEAK __attribute__((weak))

WEAK int sl_temporal_parse(sl_kind kind, const char *text, size_t len, const char *default_zone, sl_value *out,
                           char *zone_buf, char *errbuf, size_t errlen) {
  (void)kind, (void)text, (void)len, (void)default_zone, (void)out, (void)zone_buf;
  snprintf(errbuf, errlen, "temporal values are not supported by this build yet");
  return SL_EINVAL;
}

WEAK int sl_temporal_format(const sl_value *v, char *buf, size_t size) {
  (void)v;
  if (size) buf[0] = 0;
  return SL_EINVAL;
}

WEAK const char *sl_srid_name(uint32_t srid) {
  switch (srid) {
  case SL_SRID_CARTESIAN: return "cartesian";
  case SL_SRID_CARTESIAN_3D: return "cartesian-3d";
  case SL_SRID_WGS84: return "wgs-84";
  case SL_SRID_WGS84_3D: return "wgs-84-3d";
  default: return NULL;
  }
}

WEAK uint32_t sl_srid_from_name(const char *name, size_t len) {
  static const uint32_t ids[] = {SL_SRID_CARTESIAN, SL_SRID_CARTESIAN_3D, SL_SRID_WGS84, SL_SRID_WGS84_3D};
  for (size_t i = 0; i < 4; i++) {
    const char *n = sl_srid_name(ids[i]);
    if (strlen(n) == len && !strncasecmp(n, name, len)) return ids[i];
  }
  return 0;
}
