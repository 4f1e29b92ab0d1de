/*
 * Latency samples for the benches: nanoseconds appended as they are
 * measured (one array per client thread, merged after the run), sorted
 * once, then read as nearest-rank percentiles.
 */
#ifndef SL_BENCH_LATENCY_H
#define SL_BENCH_LATENCY_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct lat {
  uint64_t *ns;
  size_t n, cap;
} lat;

static inline int lat_add(lat *l, uint64_t ns) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4096;
    uint64_t *p = realloc(l->ns, cap * sizeof *p);
    if (!p) return -ENOMEM;
    l->ns = p;
    l->cap = cap;
  }
  l->ns[l->n++] = ns;
  return 0;
}

static inline int lat_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static inline void lat_sort(lat *l) {
  if (l->n) qsort(l->ns, l->n, sizeof *l->ns, lat_cmp);
}

/* Percentile p (0..100) of a sorted sample in units of unit_ns (1e3: µs,
 * 1e6: ms); -1 when there is no sample. */
static inline double lat_pct(const lat *l, double p, double unit_ns) {
  if (!l->n) return -1;
  return (double)l->ns[(size_t)(p / 100.0 * (double)(l->n - 1) + 0.5)] / unit_ns;
}

#endif
