/*
 * metrics: Prometheus metrics for the long-running commands (`ship`,
 * `receive`): counters, gauges and histograms with fixed buckets, kept in a
 * registry, written in the Prometheus text exposition format (version
 * 0.0.4) and served over HTTP at /metrics. A leaf module: it uses base/
 * only, and shipper/ and receiver/ update its metric objects.
 *
 * MODEL. A family is one metric name with its HELP text, type and label
 * names (at most SL_METRIC_LABELS_MAX). A series is a family plus one value
 * per label (e.g. shiplog_applied_txid{stream="main"}). Families and series
 * are created once and live as long as the registry; the handles returned
 * stay valid until sl_metrics_free(). Series are never removed.
 *
 * HOT PATH. Updating a series (sl_metric_add, _set, _observe) is a relaxed
 * atomic operation on its own storage: no lock, no allocation, safe from any
 * thread, so shipper and receiver threads update metrics where things
 * happen. Values that are cheaper to read at scrape time (positions guarded
 * by a mutex, directory sizes, ages) are set by collect callbacks, which the
 * registry runs just before it writes the exposition.
 *
 * EXPOSITION (sl_metrics_render): families in creation order, each as
 *     # HELP NAME TEXT            (backslash and newline escaped)
 *     # TYPE NAME counter|gauge|histogram
 *     NAME{label="value",...} VALUE
 * label values escape backslash, double quote and newline; histograms write
 * cumulative NAME_bucket{...,le="B"} lines for every bucket and le="+Inf",
 * then NAME_sum and NAME_count (count equals the +Inf bucket). Counters are
 * integers; gauges and sums are doubles in the shortest form that reads
 * back exactly ("NaN", "+Inf", "-Inf" for those). A family without series
 * is left out.
 *
 * LOCKING. Collect callbacks run, and the text is written, under the
 * registry's collect lock, so a callback may take its own locks; the
 * caller must not hold any of those while calling sl_metrics_render,
 * _on_collect or _off_collect. Creating families and series takes only
 * short inner locks (never held while anything else is taken), so it is
 * safe anywhere, inside a callback or under a caller's lock.
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define SL_METRIC_LABELS_MAX 4
#define SL_METRIC_BUCKETS_MAX 32

typedef enum sl_metric_type { SL_METRIC_COUNTER, SL_METRIC_GAUGE, SL_METRIC_HISTOGRAM } sl_metric_type;

typedef struct sl_metrics sl_metrics;
typedef struct sl_metric_family sl_metric_family;
typedef struct sl_metric sl_metric;

/* Buckets (seconds) for replication latencies, 0.5 ms .. 60 s. */
extern const double sl_metrics_latency_buckets[];
extern const size_t sl_metrics_latency_nbuckets;

int sl_metrics_new(sl_metrics **out);
void sl_metrics_free(sl_metrics *m);

/* The family NAME: created, or the existing one when type, label names and
 * buckets are the same (NULL when they differ, or on a bad name or no
 * memory). labels: NULL-terminated, may be NULL for none. buckets: upper
 * bounds, strictly increasing (histograms only; +Inf is implied). Names
 * follow Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*, labels without ':'. */
sl_metric_family *sl_metrics_family(sl_metrics *m, sl_metric_type type, const char *name,
                                    const char *help, const char *const *labels,
                                    const double *buckets, size_t nbuckets);

/* The series of f with these label values (one per label name; NULL when
 * f has none): created at zero, or the existing one. NULL on no memory. */
sl_metric *sl_metric_series(sl_metric_family *f, const char *const *values);

/* Counters: add n; or set to v, for a counter mirrored from a count that
 * only grows elsewhere (a going-back value is ignored). */
void sl_metric_add(sl_metric *s, uint64_t n);
void sl_metric_set_count(sl_metric *s, uint64_t v);
/* Gauges. */
void sl_metric_set(sl_metric *s, double v);
/* A counter's or gauge's current value. */
double sl_metric_value(const sl_metric *s);
/* Histograms: count one observation of v. */
void sl_metric_observe(sl_metric *s, double v);

/* Run fn(arg) before each exposition (in registration order). off removes
 * it, waiting for a scrape that is running it. */
typedef void (*sl_metrics_collect_fn)(void *arg);
int sl_metrics_on_collect(sl_metrics *m, sl_metrics_collect_fn fn, void *arg);
void sl_metrics_off_collect(sl_metrics *m, sl_metrics_collect_fn fn, void *arg);

/* The text exposition into a malloc'd, NUL-terminated *text (free()). */
int sl_metrics_render(sl_metrics *m, char **text, size_t *len);

/* ---- HTTP ------------------------------------------------------------------------ */
/* Serve m on listen_fd (a listening TCP socket, now owned by the server)
 * from a thread of its own: GET or HEAD /metrics answers 200 with the
 * exposition (Content-Type "text/plain; version=0.0.4; charset=utf-8"),
 * other paths 404, other methods 405, malformed requests 400; one request
 * per connection (Connection: close). Up to 16 clients are served at once
 * (one thread, poll); a client that has not sent its request, or not taken
 * its response, within 2 s is dropped, and when all 16 slots are taken a
 * new client closes the oldest one still sending its request, so idle
 * connections never hold up a scrape. */
typedef struct sl_metrics_server sl_metrics_server;
int sl_metrics_serve(sl_metrics *m, int listen_fd, sl_metrics_server **out);
/* Stop serving, join the thread, close the socket. NULL is a no-op. */
void sl_metrics_server_stop(sl_metrics_server *s);

#endif
