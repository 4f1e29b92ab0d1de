/*
 * ship_metrics.h: the shipper's Prometheus metrics (module-private to
 * shipper/; the registry is metrics/metrics.h, the list of metrics the
 * README's "Operations"). Every series carries the label stream="NAME".
 *
 * The positions and counters are the numbers of the status file, handed
 * over by the streaming thread each time it writes that file
 * (sl__ship_metrics_report: atomic stores, no lock), so `shiplog status`
 * and a scrape agree. What depends on the moment of the scrape (the
 * primary's durable mark read again, lag in bytes and seconds) is
 * computed by a collect callback. Latencies are observed as
 * acknowledgements arrive: commit -> durable and commit -> applied, per
 * batch, for its newest transaction, on the primary's own clock.
 *
 * All functions accept NULL (no metrics) and do nothing then.
 */
#ifndef SL_SHIPPER_METRICS_H
#define SL_SHIPPER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"

typedef struct sl__ship_metrics sl__ship_metrics;

typedef struct sl__ship_numbers {
  bool streaming;
  uint64_t committed, shipped, durable, applied;
  uint64_t applied_commit_us;    /* commit time of the newest applied txid, 0 unknown */
  uint64_t bytes, compressed_bytes, batches, reconnects;
} sl__ship_numbers;

/* Register the stream's series and the collect callback. LOGDIR is the
 * store's log directory (read at scrape time). */
int sl__ship_metrics_open(sl_metrics *reg, const char *stream, const char *logdir, sl__ship_metrics **out);
/* Unregister (waits for a scrape in progress) and free. */
void sl__ship_metrics_close(sl__ship_metrics *x);

void sl__ship_metrics_report(sl__ship_metrics *x, const sl__ship_numbers *n);
/* A batch whose newest transaction committed at commit_us became durable /
 * applied on the receiver now. */
void sl__ship_metrics_durable(sl__ship_metrics *x, uint64_t commit_us);
void sl__ship_metrics_applied(sl__ship_metrics *x, uint64_t commit_us);
/* The receiver refused us; code_name is its Error code as the protocol
 * names it ("ERR_GAP"), the label reason. */
void sl__ship_metrics_refused(sl__ship_metrics *x, const char *code_name);

#endif
