/*
 * rx_metrics.c: the receiver's Prometheus metrics (registry: metrics/
 * metrics.h; the list: README "Operations"). Every per-stream series
 * carries the label stream="NAME"; names and meanings match the
 * shipper's where both sides know a number.
 *
 * WHERE THE NUMBERS COME FROM
 *   - Positions, counters, connection state: read at scrape time from each
 *     stream's fields under its mutex (collect), so a scrape costs nothing
 *     between scrapes. Lags are computed the way `shiplog status --data`
 *     computes them (cli/cmd_receive.c, sl_stream_status_read): committed
 *     = max(primary's report, durable); the position is the applied txid
 *     with a standby, else the durable one; lag in seconds counts from the
 *     newer of the newest applied commit and the moment it fell behind.
 *   - Archive size and snapshot age: from the stream's directories at
 *     scrape time (segment sizes; the newest *.snap file's mtime); the
 *     standby's data.mdb and its free pages from LMDB (a read transaction).
 *   - Latencies (commit -> durable, commit -> applied; the primary's commit
 *     time against this host's clock, so clock skew shows), compressed
 *     bytes and refusals: counted on the hot path with atomics only, through
 *     the stream's handles (s->mx), created when the stream is loaded.
 * Streams are never removed while the receiver runs, so collect takes the
 * list under r->mu and reads each stream after releasing it.
 */
#include "receiver_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pitr.h"
#include "sl_base.h"

struct sl__stream_metrics {
  sl_metric *committed, *shipped, *durable, *applied, *connected;
  sl_metric *lag_tx, *lag_bytes, *lag_seconds;
  sl_metric *to_durable, *to_applied;
  sl_metric *bytes, *compressed_bytes, *batches, *ratio;
  sl_metric *archive_bytes, *snapshot_age;
  sl_metric *lmdb_used, *lmdb_free; /* the standby's data.mdb (absent without one) */
  sl_metric *restorable, *restorable_txid;
  uint64_t raw_run, compressed_run; /* atomics: this run's batches, for the ratio */
};

static sl_metric *one(sl_metrics *reg, sl_metric_type type, const char *name, const char *help,
                      const char *stream) {
  const char *const labels[] = {"stream", NULL}, *const values[] = {stream};
  sl_metric_family *f = sl_metrics_family(reg, type, name, help, labels, sl_metrics_latency_buckets,
                                          sl_metrics_latency_nbuckets);
  return f ? sl_metric_series(f, values) : NULL;
}

static sl_metric_family *rejected_family(sl_metrics *reg) {
  return sl_metrics_family(reg, SL_METRIC_COUNTER, "shiplog_rejected_frames_total",
                           "Messages the other side refused, by reason.",
                           (const char *const[]){"stream", "reason", NULL}, NULL, 0);
}

void sl__rx_metrics_stream(sl__stream *s) {
  sl_metrics *reg = s->r->opt.metrics;
  if (!reg || s->mx) return;
  sl__stream_metrics *x = calloc(1, sizeof *x);
  if (!x) return; /* no metrics for this stream: every hook checks */
  const sl_metric_type G = SL_METRIC_GAUGE, C = SL_METRIC_COUNTER, H = SL_METRIC_HISTOGRAM;
  const char *n = s->name;
  x->committed = one(reg, G, "shiplog_committed_txid", "Newest transaction committed on the primary, as last reported (at least the durable one).", n);
  x->shipped = one(reg, G, "shiplog_shipped_txid", "Newest transaction received and appended to the archive.", n);
  x->durable = one(reg, G, "shiplog_durable_txid", "Newest transaction durable in the archive.", n);
  x->applied = one(reg, G, "shiplog_applied_txid", "Newest transaction applied to the standby.", n);
  x->lag_tx = one(reg, G, "shiplog_lag_transactions", "Transactions committed on the primary and not yet applied on the standby (durable in the archive, without a standby).", n);
  x->lag_bytes = one(reg, G, "shiplog_lag_bytes", "Archive bytes after the applied transaction.", n);
  x->lag_seconds = one(reg, G, "shiplog_lag_seconds", "How long the standby has been behind: now against the newer of the newest applied commit time and the moment it fell behind; 0 when caught up.", n);
  x->to_durable = one(reg, H, "shiplog_commit_to_durable_seconds", "Time from a transaction's commit on the primary to its fsync in the archive (per group of batches, its newest transaction).", n);
  x->to_applied = one(reg, H, "shiplog_commit_to_applied_seconds", "Time from a transaction's commit on the primary to its apply on the standby (per apply group, its newest transaction).", n);
  x->bytes = one(reg, C, "shiplog_received_bytes_total", "Log bytes received (before compression).", n);
  x->compressed_bytes = one(reg, C, "shiplog_received_compressed_bytes_total", "Log bytes received, as compressed in batches, since start.", n);
  x->batches = one(reg, C, "shiplog_received_batches_total", "Batches received.", n);
  x->ratio = one(reg, G, "shiplog_compression_ratio", "Log bytes per compressed byte received, since start.", n);
  x->connected = one(reg, G, "shiplog_connected", "1 while a shipper is attached to the stream.", n);
  x->archive_bytes = one(reg, G, "shiplog_archive_bytes", "Size of the stream's archive segments.", n);
  x->restorable = one(reg, G, "shiplog_restorable", "1 when the stream can be restored (a base its archive continues), 0 when not (alert on it).", n);
  x->restorable_txid = one(reg, G, "shiplog_restorable_from_txid", "The oldest txid a restore can reach (the oldest usable base; 0: the empty store); absent meaning while shiplog_restorable is 0.", n);
  /* snapshot_age gets its series once a snapshot exists (collect) */
  sl_metric *check[] = {x->committed, x->shipped, x->durable, x->applied, x->lag_tx, x->lag_bytes,
                        x->lag_seconds, x->to_durable, x->to_applied, x->bytes, x->compressed_bytes,
                        x->batches, x->ratio, x->connected, x->archive_bytes, x->restorable,
                        x->restorable_txid};
  for (size_t i = 0; i < SL_ARRAY_LEN(check); i++) {
    if (check[i]) continue;
    sl_diag_warn("stream %s: its metrics could not be set up", n);
    free(x);
    return;
  }
  s->mx = x;
}

void sl__rx_metrics_stream_free(sl__stream *s) {
  free(s->mx);
  s->mx = NULL;
}

static double since(uint64_t commit_us) {
  uint64_t now = sl_now_us();
  return now > commit_us ? (double)(now - commit_us) / 1e6 : 0;
}

void sl__rx_metrics_durable(sl__stream *s, uint64_t commit_us) {
  if (s->mx && commit_us) sl_metric_observe(s->mx->to_durable, since(commit_us));
}

void sl__rx_metrics_applied(sl__stream *s, uint64_t commit_us) {
  if (s->mx && commit_us) sl_metric_observe(s->mx->to_applied, since(commit_us));
}

void sl__rx_metrics_batch(sl__stream *s, uint64_t raw, uint64_t compressed) {
  if (!s->mx) return;
  sl_metric_add(s->mx->compressed_bytes, compressed);
  __atomic_fetch_add(&s->mx->raw_run, raw, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->mx->compressed_run, compressed, __ATOMIC_RELAXED);
}

void sl__rx_metrics_rejected(sl__receiver *r, sl__stream *s, Shiplog__Repl__ErrorCode code) {
  if (!r->opt.metrics) return;
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&shiplog__repl__error_code__descriptor, (int)code);
  const char *const values[] = {s ? s->name : "", v ? v->name : "ERR_UNKNOWN"};
  sl_metric_add(sl_metric_series(rejected_family(r->opt.metrics), values), 1);
}

/* ---- scrape time ---------------------------------------------------------------------- */

/* Sum of the sizes of DIR's files ending in suffix, and the newest mtime
 * (µs) among them. */
static void dir_files(const char *dir, const char *suffix, uint64_t *bytes, uint64_t *newest_us) {
  *bytes = *newest_us = 0;
  DIR *d = opendir(dir);
  if (!d) return;
  size_t sl = strlen(suffix);
  struct dirent *e;
  struct stat st;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n <= sl || strcmp(e->d_name + n - sl, suffix) != 0) continue;
    if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
    *bytes += (uint64_t)st.st_size;
    uint64_t us = (uint64_t)st.st_mtim.tv_sec * 1000000u + (uint64_t)st.st_mtim.tv_nsec / 1000u;
    if (us > *newest_us) *newest_us = us;
  }
  closedir(d);
}

static void collect_stream(sl__stream *s, sl_metrics *reg) {
  sl__stream_metrics *x = s->mx;
  pthread_mutex_lock(&s->mu);
  uint64_t received = s->received, durable = s->durable, applied = s->applied;
  uint64_t primary = s->primary_committed, applied_us = s->applied_commit_us;
  uint64_t behind_since = s->behind_since_us, bytes = s->bytes, batches = s->batches;
  uint64_t first = s->first_txid;
  bool connected = s->owner != NULL;
  sl_store *standby_st = s->standby; /* open until the streams close, after the metrics stop */
  pthread_mutex_unlock(&s->mu);

  bool standby = access(s->standby_dir, F_OK) == 0;
  uint64_t committed = SL_MAX(primary, durable), pos = standby ? applied : durable, now = sl_now_us();
  uint64_t from = SL_MAX(applied_us, behind_since);
  sl_metric_set(x->committed, (double)committed);
  sl_metric_set(x->shipped, (double)received);
  sl_metric_set(x->durable, (double)durable);
  sl_metric_set(x->applied, (double)applied);
  sl_metric_set(x->connected, connected ? 1 : 0);
  sl_metric_set(x->lag_tx, (double)(committed > pos ? committed - pos : 0));
  sl_metric_set(x->lag_bytes, standby ? (double)sl_log_bytes_after(s->archive_dir, applied, durable) : 0);
  sl_metric_set(x->lag_seconds, pos < committed && from && now > from ? (double)(now - from) / 1e6 : 0);
  sl_metric_set_count(x->bytes, bytes);
  sl_metric_set_count(x->batches, batches);
  uint64_t raw = __atomic_load_n(&x->raw_run, __ATOMIC_RELAXED);
  uint64_t compressed = __atomic_load_n(&x->compressed_run, __ATOMIC_RELAXED);
  sl_metric_set(x->ratio, compressed ? (double)raw / (double)compressed : 1);

  uint64_t size, newest;
  dir_files(s->archive_dir, ".seg", &size, &newest);
  sl_metric_set(x->archive_bytes, (double)size);
  char snaps[4096];
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, s->dir);
  sl__bases b;
  sl__stream_bases(snaps, s->store_id, first, durable, &b);
  sl_metric_set(x->restorable, b.usable ? 1 : 0);
  sl_metric_set(x->restorable_txid, (double)b.from_txid);
  dir_files(snaps, SL_SNAP_SUFFIX, &size, &newest);
  if (newest && !x->snapshot_age)
    x->snapshot_age = one(reg, SL_METRIC_GAUGE, "shiplog_snapshot_age_seconds",
                          "Age of the stream's newest snapshot (absent without one).", s->name);
  if (x->snapshot_age) sl_metric_set(x->snapshot_age, newest && now > newest ? (double)(now - newest) / 1e6 : 0);
  sl_space sp;
  if (standby_st && sl_store_space(standby_st, &sp) == 0) {
    if (!x->lmdb_used) {
      x->lmdb_used = one(reg, SL_METRIC_GAUGE, "shiplog_lmdb_used_bytes", "The standby's data.mdb up to LMDB's last page.", s->name);
      x->lmdb_free = one(reg, SL_METRIC_GAUGE, "shiplog_lmdb_free_bytes",
                         "The standby's free pages in data.mdb (reused by later applies).", s->name);
    }
    if (x->lmdb_used) sl_metric_set(x->lmdb_used, (double)(sp.pages_used * sp.page_size));
    if (x->lmdb_free) sl_metric_set(x->lmdb_free, (double)(sp.pages_free * sp.page_size));
  }
}

static void collect(void *arg) {
  sl__receiver *r = arg;
  sl_metrics *reg = r->opt.metrics;
  pthread_mutex_lock(&r->mu);
  size_t n = r->nstreams;
  sl__stream **list = n ? malloc(n * sizeof *list) : NULL;
  if (list) memcpy(list, r->streams, n * sizeof *list);
  pthread_mutex_unlock(&r->mu);
  if (!list) n = 0;
  sl_metric_set(sl_metric_series(sl_metrics_family(reg, SL_METRIC_GAUGE, "shiplog_streams",
                                                   "Streams in the data directory.", NULL, NULL, 0), NULL),
                (double)n);
  for (size_t i = 0; i < n; i++)
    if (list[i]->mx) collect_stream(list[i], reg);
  free(list);
}

int sl__rx_metrics_start(sl__receiver *r) {
  if (!r->opt.metrics) return 0;
  /* Declared up front so that its HELP is there before the first refusal. */
  if (!rejected_family(r->opt.metrics)) return SL_EINVAL;
  int rc = sl_metrics_on_collect(r->opt.metrics, collect, r);
  if (rc) sl_diag_error("cannot set up the metrics: %s", sl_strerror(rc));
  return rc;
}

void sl__rx_metrics_stop(sl__receiver *r) {
  if (r->opt.metrics) sl_metrics_off_collect(r->opt.metrics, collect, r);
}
