/*
 * metrics.c: the registry, the metric objects and the text exposition
 * (metrics.h has the model and the format).
 *
 * STORAGE. Every value is a uint64_t updated with __atomic builtins
 * (relaxed: a scrape needs each number to be a value it really had, not an
 * ordering between numbers). A gauge keeps the bits of a double; setting it
 * is a store. A histogram keeps one count per bucket (not cumulative: an
 * observation is one increment) plus an overflow bucket and the bits of
 * its sum (a compare-and-swap loop). The cumulative bucket counts and
 * _count are summed at scrape time from one pass over the counts, so _count
 * always equals the +Inf bucket even while observations go on.
 *
 * LOCKS, outermost first: collect_mu (collectors; rendering) -> mu (the
 * family list) -> a family's mu (its series list). Lists only grow, and
 * nodes are freed only by sl_metrics_free.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_base.h"

const double sl_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,   0.5,   1,      2.5,   5,    10,   30,    60};
const size_t sl_metrics_latency_nbuckets = SL_ARRAY_LEN(sl_metrics_latency_buckets);

struct sl_metric {
  sl_metric_family *f;
  char *values[SL_METRIC_LABELS_MAX];
  uint64_t v;           /* counter value, or gauge bits */
  uint64_t sum_bits;    /* histogram */
  uint64_t *counts;     /* histogram: nbuckets + 1 (overflow) */
  sl_metric *next;
};

struct sl_metric_family {
  sl_metrics *m;
  sl_metric_type type;
  char *name, *help;
  char *labels[SL_METRIC_LABELS_MAX];
  size_t nlabels;
  double buckets[SL_METRIC_BUCKETS_MAX];
  size_t nbuckets;
  pthread_mutex_t mu;
  sl_metric *first, *last;
  sl_metric_family *next;
};

typedef struct collector {
  sl_metrics_collect_fn fn;
  void *arg;
  struct collector *next;
} collector;

struct sl_metrics {
  pthread_mutex_t collect_mu, mu;
  collector *collectors;
  sl_metric_family *first, *last;
};

static uint64_t dbits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static double bitsd(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

int sl_metrics_new(sl_metrics **out) {
  sl_metrics *m = calloc(1, sizeof *m);
  if (!m) return -ENOMEM;
  pthread_mutex_init(&m->collect_mu, NULL);
  pthread_mutex_init(&m->mu, NULL);
  *out = m;
  return 0;
}

static void series_free(sl_metric *s) {
  for (size_t i = 0; i < SL_METRIC_LABELS_MAX; i++) free(s->values[i]);
  free(s->counts);
  free(s);
}

static void family_free(sl_metric_family *f) {
  for (sl_metric *s = f->first, *n; s; s = n) {
    n = s->next;
    series_free(s);
  }
  for (size_t i = 0; i < f->nlabels; i++) free(f->labels[i]);
  free(f->name);
  free(f->help);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

void sl_metrics_free(sl_metrics *m) {
  if (!m) return;
  for (sl_metric_family *f = m->first, *n; f; f = n) {
    n = f->next;
    family_free(f);
  }
  for (collector *c = m->collectors, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  pthread_mutex_destroy(&m->collect_mu);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static bool name_ok(const char *s, bool colon) {
  if (!s || !*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || (colon && *s == ':')))
      return false;
  return true;
}

/* Same shape: type, label names, buckets. */
static bool family_matches(const sl_metric_family *f, sl_metric_type type, const char *const *labels,
                           size_t nlabels, const double *buckets, size_t nbuckets) {
  if (f->type != type || f->nlabels != nlabels || f->nbuckets != nbuckets) return false;
  for (size_t i = 0; i < nlabels; i++)
    if (strcmp(f->labels[i], labels[i]) != 0) return false;
  for (size_t i = 0; i < nbuckets; i++)
    if (f->buckets[i] != buckets[i]) return false;
  return true;
}

sl_metric_family *sl_metrics_family(sl_metrics *m, sl_metric_type type, const char *name,
                                    const char *help, const char *const *labels,
                                    const double *buckets, size_t nbuckets) {
  size_t nlabels = 0;
  while (labels && labels[nlabels]) {
    if (nlabels == SL_METRIC_LABELS_MAX || !name_ok(labels[nlabels], false) ||
        strcmp(labels[nlabels], "le") == 0)
      return NULL;
    nlabels++;
  }
  if (!name_ok(name, true)) return NULL;
  if (type != SL_METRIC_HISTOGRAM) nbuckets = 0;
  if (nbuckets > SL_METRIC_BUCKETS_MAX) return NULL;
  for (size_t i = 1; i < nbuckets; i++)
    if (!(buckets[i] > buckets[i - 1])) return NULL;

  sl_metric_family *f = NULL;
  pthread_mutex_lock(&m->mu);
  for (sl_metric_family *g = m->first; g; g = g->next) {
    if (strcmp(g->name, name) != 0) continue;
    f = family_matches(g, type, labels, nlabels, buckets, nbuckets) ? g : NULL;
    goto out;
  }
  f = calloc(1, sizeof *f);
  if (!f) goto out;
  f->m = m;
  f->type = type;
  f->name = strdup(name);
  f->help = strdup(help ? help : "");
  pthread_mutex_init(&f->mu, NULL);
  bool ok = f->name && f->help;
  for (size_t i = 0; i < nlabels; i++) {
    f->labels[i] = strdup(labels[i]);
    ok = ok && f->labels[i];
    f->nlabels = i + 1;
  }
  if (nbuckets) memcpy(f->buckets, buckets, nbuckets * sizeof *buckets);
  f->nbuckets = nbuckets;
  if (!ok) {
    family_free(f);
    f = NULL;
    goto out;
  }
  if (m->last) m->last->next = f;
  else m->first = f;
  m->last = f;
out:
  pthread_mutex_unlock(&m->mu);
  return f;
}

sl_metric *sl_metric_series(sl_metric_family *f, const char *const *values) {
  if (!f) return NULL;
  sl_metric *s;
  pthread_mutex_lock(&f->mu);
  for (s = f->first; s; s = s->next) {
    size_t i = 0;
    while (i < f->nlabels && strcmp(s->values[i], values[i] ? values[i] : "") == 0) i++;
    if (i == f->nlabels) goto out;
  }
  s = calloc(1, sizeof *s);
  if (!s) goto out;
  s->f = f;
  bool ok = true;
  for (size_t i = 0; i < f->nlabels; i++) ok = ok && (s->values[i] = strdup(values[i] ? values[i] : ""));
  if (f->type == SL_METRIC_HISTOGRAM) ok = ok && (s->counts = calloc(f->nbuckets + 1, sizeof *s->counts));
  if (!ok) {
    series_free(s);
    s = NULL;
    goto out;
  }
  if (f->type == SL_METRIC_GAUGE) s->v = dbits(0.0);
  s->sum_bits = dbits(0.0);
  if (f->last) f->last->next = s;
  else f->first = s;
  f->last = s;
out:
  pthread_mutex_unlock(&f->mu);
  return s;
}

/* ---- updates (hot path: atomics only) ----------------------------------------------- */

void sl_metric_add(sl_metric *s, uint64_t n) {
  if (s) __atomic_fetch_add(&s->v, n, __ATOMIC_RELAXED);
}

void sl_metric_set_count(sl_metric *s, uint64_t v) {
  if (!s) return;
  uint64_t cur = __atomic_load_n(&s->v, __ATOMIC_RELAXED);
  while (v > cur && !__atomic_compare_exchange_n(&s->v, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

void sl_metric_set(sl_metric *s, double v) {
  if (s) __atomic_store_n(&s->v, dbits(v), __ATOMIC_RELAXED);
}

double sl_metric_value(const sl_metric *s) {
  if (!s) return 0;
  uint64_t v = __atomic_load_n(&s->v, __ATOMIC_RELAXED);
  return s->f->type == SL_METRIC_GAUGE ? bitsd(v) : (double)v;
}

void sl_metric_observe(sl_metric *s, double v) {
  if (!s || !s->counts) return;
  const sl_metric_family *f = s->f;
  size_t i = 0;
  while (i < f->nbuckets && v > f->buckets[i]) i++; /* buckets are upper bounds (le) */
  __atomic_fetch_add(&s->counts[i], 1, __ATOMIC_RELAXED);
  uint64_t old = __atomic_load_n(&s->sum_bits, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(&s->sum_bits, &old, dbits(bitsd(old) + v), true,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

/* ---- collectors ------------------------------------------------------------------ */

int sl_metrics_on_collect(sl_metrics *m, sl_metrics_collect_fn fn, void *arg) {
  collector *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->fn = fn;
  c->arg = arg;
  pthread_mutex_lock(&m->collect_mu);
  collector **pp = &m->collectors;
  while (*pp) pp = &(*pp)->next;
  *pp = c;
  pthread_mutex_unlock(&m->collect_mu);
  return 0;
}

void sl_metrics_off_collect(sl_metrics *m, sl_metrics_collect_fn fn, void *arg) {
  pthread_mutex_lock(&m->collect_mu);
  for (collector **pp = &m->collectors; *pp; pp = &(*pp)->next) {
    collector *c = *pp;
    if (c->fn == fn && c->arg == arg) {
      *pp = c->next;
      free(c);
      break;
    }
  }
  pthread_mutex_unlock(&m->collect_mu);
}

/* ---- exposition --------------------------------------------------------------------- */

/* A double as Prometheus reads it: the shortest %g that reads back exactly. */
static void put_double(FILE *o, double v) {
  if (isnan(v)) {
    fputs("NaN", o);
  } else if (isinf(v)) {
    fputs(v > 0 ? "+Inf" : "-Inf", o);
  } else {
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, o);
  }
}

/* HELP text: backslash and newline escaped; label values: double quote too. */
static void put_escaped(FILE *o, const char *s, bool quote) {
  for (; *s; s++) {
    if (*s == '\\') fputs("\\\\", o);
    else if (*s == '\n') fputs("\\n", o);
    else if (quote && *s == '"') fputs("\\\"", o);
    else fputc(*s, o);
  }
}

/* NAME{labels[,le="..."]} */
static void put_name(FILE *o, const sl_metric *s, const char *suffix, const double *le) {
  const sl_metric_family *f = s->f;
  fputs(f->name, o);
  fputs(suffix, o);
  if (f->nlabels == 0 && !le) return;
  fputc('{', o);
  for (size_t i = 0; i < f->nlabels; i++) {
    fprintf(o, "%s%s=\"", i ? "," : "", f->labels[i]);
    put_escaped(o, s->values[i], true);
    fputc('"', o);
  }
  if (le) {
    fprintf(o, "%sle=\"", f->nlabels ? "," : "");
    put_double(o, *le);
    fputc('"', o);
  }
  fputc('}', o);
}

static void put_series(FILE *o, const sl_metric *s) {
  const sl_metric_family *f = s->f;
  uint64_t v = __atomic_load_n(&s->v, __ATOMIC_RELAXED);
  switch (f->type) {
  case SL_METRIC_COUNTER:
    put_name(o, s, "", NULL);
    fprintf(o, " %" PRIu64 "\n", v);
    break;
  case SL_METRIC_GAUGE:
    put_name(o, s, "", NULL);
    fputc(' ', o);
    put_double(o, bitsd(v));
    fputc('\n', o);
    break;
  case SL_METRIC_HISTOGRAM: {
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbuckets; i++) {
      double le = i < f->nbuckets ? f->buckets[i] : INFINITY;
      cum += __atomic_load_n(&s->counts[i], __ATOMIC_RELAXED);
      put_name(o, s, "_bucket", &le);
      fprintf(o, " %" PRIu64 "\n", cum);
    }
    put_name(o, s, "_sum", NULL);
    fputc(' ', o);
    put_double(o, bitsd(__atomic_load_n(&s->sum_bits, __ATOMIC_RELAXED)));
    fputc('\n', o);
    put_name(o, s, "_count", NULL);
    fprintf(o, " %" PRIu64 "\n", cum);
    break;
  }
  }
}

static const char *type_name(sl_metric_type t) {
  return t == SL_METRIC_COUNTER ? "counter" : t == SL_METRIC_GAUGE ? "gauge" : "histogram";
}

int sl_metrics_render(sl_metrics *m, char **text, size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *o = open_memstream(&buf, &n);
  if (!o) return -errno;
  pthread_mutex_lock(&m->collect_mu);
  for (collector *c = m->collectors; c; c = c->next) c->fn(c->arg);
  pthread_mutex_lock(&m->mu);
  for (sl_metric_family *f = m->first; f; f = f->next) {
    pthread_mutex_lock(&f->mu);
    if (f->first) {
      fprintf(o, "# HELP %s ", f->name);
      put_escaped(o, f->help, false);
      fprintf(o, "\n# TYPE %s %s\n", f->name, type_name(f->type));
      for (const sl_metric *s = f->first; s; s = s->next) put_series(o, s);
    }
    pthread_mutex_unlock(&f->mu);
  }
  pthread_mutex_unlock(&m->mu);
  pthread_mutex_unlock(&m->collect_mu);
  int rc = ferror(o) ? -ENOMEM : 0;
  if (fclose(o) != 0 && !rc) rc = -ENOMEM;
  if (rc) {
    free(buf);
    return rc;
  }
  *text = buf;
  *len = n;
  return 0;
}
