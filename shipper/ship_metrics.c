/*
 * ship_metrics.c: the shipper's metrics (see ship_metrics.h for where the
 * numbers come from and when). Names and meanings match the receiver's
 * where both sides know a number (positions, lag, latencies), so one
 * query serves either side's scrape (their `job` label tells them apart).
 */
#include "ship_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sl_base.h"

struct sl__ship_metrics {
  sl_metrics *reg;
  char stream[72];
  char logdir[4096];
  sl_metric_family *rejected;
  sl_metric *committed, *shipped, *durable, *applied, *connected;
  sl_metric *lag_tx, *lag_bytes, *lag_seconds;
  sl_metric *to_durable, *to_applied;
  sl_metric *bytes, *compressed_bytes, *batches, *ratio, *reconnects;
  uint64_t reported_committed, applied_commit_us; /* atomics */
};

static sl_metric *one(sl__ship_metrics *x, sl_metric_type type, const char *name, const char *help) {
  const char *const labels[] = {"stream", NULL}, *const values[] = {x->stream};
  sl_metric_family *f = sl_metrics_family(x->reg, type, name, help, labels, sl_metrics_latency_buckets,
                                          sl_metrics_latency_nbuckets);
  return f ? sl_metric_series(f, values) : NULL;
}

/* At scrape time: the freshest committed txid, and the lags against it
 * (as `shiplog status STORE` computes them). */
static void collect(void *arg) {
  sl__ship_metrics *x = arg;
  uint64_t mark = 0, now = sl_now_us();
  uint64_t committed = __atomic_load_n(&x->reported_committed, __ATOMIC_RELAXED);
  if (sl_log_read_durable_mark(x->logdir, &mark) == 0 && mark > committed) committed = mark;
  uint64_t applied = (uint64_t)sl_metric_value(x->applied);
  uint64_t at = __atomic_load_n(&x->applied_commit_us, __ATOMIC_RELAXED);
  sl_metric_set(x->committed, (double)committed);
  sl_metric_set(x->lag_tx, (double)(committed > applied ? committed - applied : 0));
  sl_metric_set(x->lag_bytes, (double)sl_log_bytes_after(x->logdir, applied, committed));
  sl_metric_set(x->lag_seconds, applied < committed && at && now > at ? (double)(now - at) / 1e6 : 0);
  double raw = sl_metric_value(x->bytes), compressed = sl_metric_value(x->compressed_bytes);
  sl_metric_set(x->ratio, compressed > 0 ? raw / compressed : 1);
}

int sl__ship_metrics_open(sl_metrics *reg, const char *stream, const char *logdir, sl__ship_metrics **out) {
  *out = NULL;
  if (!reg) return 0;
  sl__ship_metrics *x = calloc(1, sizeof *x);
  if (!x) return -ENOMEM;
  x->reg = reg;
  snprintf(x->stream, sizeof x->stream, "%s", stream);
  snprintf(x->logdir, sizeof x->logdir, "%s", logdir);
  const sl_metric_type G = SL_METRIC_GAUGE, C = SL_METRIC_COUNTER, H = SL_METRIC_HISTOGRAM;
  x->committed = one(x, G, "shiplog_committed_txid", "Newest transaction durable in the primary's log.");
  x->shipped = one(x, G, "shiplog_shipped_txid", "Newest transaction sent to the receiver.");
  x->durable = one(x, G, "shiplog_durable_txid", "Newest transaction the receiver made durable in its archive.");
  x->applied = one(x, G, "shiplog_applied_txid", "Newest transaction applied to the receiver's standby.");
  x->lag_tx = one(x, G, "shiplog_lag_transactions", "Transactions committed on the primary and not yet applied on the standby.");
  x->lag_bytes = one(x, G, "shiplog_lag_bytes", "Log bytes after the applied transaction.");
  x->lag_seconds = one(x, G, "shiplog_lag_seconds",
                       "Age of the newest applied transaction (primary's commit time against now) while the standby is behind; 0 when caught up.");
  x->to_durable = one(x, H, "shiplog_commit_to_durable_seconds",
                      "Time from a transaction's commit on the primary to its acknowledgement as durable by the receiver.");
  x->to_applied = one(x, H, "shiplog_commit_to_applied_seconds",
                      "Time from a transaction's commit on the primary to its acknowledgement as applied on the standby.");
  x->bytes = one(x, C, "shiplog_shipped_bytes_total", "Log bytes shipped (before compression).");
  x->compressed_bytes = one(x, C, "shiplog_shipped_compressed_bytes_total", "Log bytes shipped, as compressed in batches.");
  x->batches = one(x, C, "shiplog_shipped_batches_total", "Batches shipped.");
  x->ratio = one(x, G, "shiplog_compression_ratio", "Log bytes per compressed byte shipped, since start.");
  x->reconnects = one(x, C, "shiplog_reconnects_total", "Sessions started after the first one.");
  x->connected = one(x, G, "shiplog_connected", "1 while a session with the receiver is streaming.");
  x->rejected = sl_metrics_family(reg, C, "shiplog_rejected_frames_total",
                                  "Messages the other side refused, by reason.",
                                  (const char *const[]){"stream", "reason", NULL}, NULL, 0);
  int rc = 0;
  if (!x->committed || !x->shipped || !x->durable || !x->applied || !x->lag_tx || !x->lag_bytes ||
      !x->lag_seconds || !x->to_durable || !x->to_applied || !x->bytes || !x->compressed_bytes ||
      !x->batches || !x->ratio || !x->reconnects || !x->connected || !x->rejected)
    rc = SL_EINVAL; /* a family of that name with another shape: a bug */
  if (!rc) rc = sl_metrics_on_collect(reg, collect, x);
  if (rc) {
    sl_diag_error("stream %s: cannot set up its metrics: %s", stream, sl_strerror(rc));
    free(x);
    return rc;
  }
  *out = x;
  return 0;
}

void sl__ship_metrics_close(sl__ship_metrics *x) {
  if (!x) return;
  sl_metrics_off_collect(x->reg, collect, x);
  free(x);
}

void sl__ship_metrics_report(sl__ship_metrics *x, const sl__ship_numbers *n) {
  if (!x) return;
  __atomic_store_n(&x->reported_committed, n->committed, __ATOMIC_RELAXED);
  __atomic_store_n(&x->applied_commit_us, n->applied_commit_us, __ATOMIC_RELAXED);
  sl_metric_set(x->shipped, (double)n->shipped);
  sl_metric_set(x->durable, (double)n->durable);
  sl_metric_set(x->applied, (double)n->applied);
  sl_metric_set(x->connected, n->streaming ? 1 : 0);
  sl_metric_set_count(x->bytes, n->bytes);
  sl_metric_set_count(x->compressed_bytes, n->compressed_bytes);
  sl_metric_set_count(x->batches, n->batches);
  sl_metric_set_count(x->reconnects, n->reconnects);
}

static double since(uint64_t commit_us) {
  uint64_t now = sl_now_us();
  return now > commit_us ? (double)(now - commit_us) / 1e6 : 0;
}

void sl__ship_metrics_durable(sl__ship_metrics *x, uint64_t commit_us) {
  if (x && commit_us) sl_metric_observe(x->to_durable, since(commit_us));
}

void sl__ship_metrics_applied(sl__ship_metrics *x, uint64_t commit_us) {
  if (x && commit_us) sl_metric_observe(x->to_applied, since(commit_us));
}

void sl__ship_metrics_refused(sl__ship_metrics *x, const char *code_name) {
  if (x) sl_metric_add(sl_metric_series(x->rejected, (const char *const[]){x->stream, code_name}), 1);
}
