/*
 * bench_peer: shiplog against PostgreSQL streaming replication, the same
 * workload through the same driver. bench/peer (a bash script) sets the
 * stage (PostgreSQL primary + hot standby + WAL archive, a `shiplog receive`
 * process, the workload files) and calls this program once per figure;
 * each call prints one JSON object (a "record") on standard output, and
 * `bench_peer report` turns the records of a whole run into the table.
 *
 * USAGE
 *   bench_peer run --system shiplog|pg --workload DIR --clients N
 *                  (--seconds S [--rate R] [--probe-ms P] | --lines L [--target])
 *                  [--rep K] [--label NAME]
 *                  shiplog: --store DIR --receiver HOST:PORT --rx-data DIR --stream NAME
 *                  pg:      --primary CONNINFO --standby CONNINFO
 *   bench_peer report FILE [--json OUT]
 *   bench_peer has-pg        exit 0 when built with the PostgreSQL side (libpq)
 *
 * RUN. Client k applies the lines of DIR/client-k.jsonl (bench_gen output
 * with its own seed and id base, so no two clients touch the same entity
 * and each file is valid in its own order) from the first, one transaction
 * per line, through the system's apply (bench/peer.h), which returns once
 * the transaction is durable on the primary. Connections are opened before
 * the clock starts.
 *   --seconds S   stop after S seconds; a client that runs out of lines
 *                 first is reported ("exhausted": the rate is then a floor).
 *   --rate R      open loop: the clients together start one line every 1/R
 *                 s (a shared schedule; a late client does not catch up by
 *                 bunching, it just runs behind). Without it: closed loop,
 *                 each client as fast as its commits return.
 *   --probe-ms P  the visibility probe: every P ms a marker is committed on
 *                 the primary through its own connection, then the standby
 *                 is polled every 100 us until it shows the marker. The lag
 *                 is from the marker's commit returning to the first poll
 *                 that saw it (poll resolution and, for PostgreSQL, one
 *                 query round trip included). Probes run one at a time.
 *   --lines L     each client applies its first L lines, to the end (the
 *                 restore workload).
 *   --target      then: the recovery target. Records the wall-clock time T
 *                 (after the last commit returned) and the node count, waits
 *                 20 ms and commits a marker after T, so that restoring "to
 *                 T" has something to leave out.
 * After the load the system settles (the standby catches up; bench/peer.h)
 * and reports its byte counters.
 *
 * REPORT. Figures per system and repetition, and shiplog / PostgreSQL for
 * each repetition (the two systems were measured interleaved in the same
 * run, so the ratio is the figure to quote: shared machines move absolute
 * numbers by 30-60%). With --json the same as one object, records included,
 * for later runs to compare.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "latency.h"
#include "peer.h"
#include "sl_base.h"

#define MAX_CLIENTS 64
#define POLL_NS 100000
#define PROBE_GIVE_UP_NS 30000000000ull
#define TARGET_MARKER (PEER_MARKER_BASE + (1ull << 41))
#define WORKLOAD_MAX (4ull << 30)

static void usage(void) {
  fprintf(stderr,
          "usage: bench_peer run --system shiplog|pg --workload DIR --clients N\n"
          "                      (--seconds S [--rate R] [--probe-ms P] | --lines L [--target])\n"
          "                      [--rep K] [--label NAME]\n"
          "                      shiplog: --store DIR --receiver HOST:PORT --rx-data DIR --stream NAME\n"
          "                      pg:      --primary CONNINFO --standby CONNINFO\n"
          "       bench_peer report FILE [--json OUT]\n"
          "       bench_peer has-pg\n");
  exit(2);
}

static void sleep_until(uint64_t mono_ns) {
  struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000u), .tv_nsec = (long)(mono_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* ---- latency samples -------------------------------------------------------------- */


/* ---- run ----------------------------------------------------------------------------- */

typedef struct run {
  const peer_ops *ops;
  peer_side *side;
  double rate;              /* 0: closed loop */
  uint64_t lines;           /* 0: until the time is up */
  uint64_t t0, until;       /* monotonic ns */
  atomic_uint_fast64_t slot;
} run;

typedef struct client {
  run *r;
  pthread_t thread;
  peer_client *pc;
  uint8_t *buf;             /* the client's workload file */
  size_t len, off;
  uint64_t tx, ops, failed;
  bool exhausted, broken;
  lat lat;
  char why[512];            /* the first failure */
} client;

/* The next non-blank line of c's file, or false at its end. */
static bool next_line(client *c, const char **line, size_t *len) {
  while (c->off < c->len) {
    const char *p = (const char *)c->buf + c->off;
    const char *nl = memchr(p, '\n', c->len - c->off);
    size_t n = nl ? (size_t)(nl - p) : c->len - c->off;
    c->off += n + (nl != NULL);
    if (n) {
      *line = p;
      *len = n;
      return true;
    }
  }
  return false;
}

static void *client_main(void *arg) {
  client *c = arg;
  run *r = c->r;
  pthread_setname_np(pthread_self(), "peer-client"); /* what bench/peer --perf groups by */
  sleep_until(r->t0);
  for (uint64_t done = 0; !r->lines || done < r->lines; done++) {
    if (r->rate > 0) {
      uint64_t k = atomic_fetch_add(&r->slot, 1);
      uint64_t due = r->t0 + (uint64_t)((double)k * 1e9 / r->rate);
      if (due >= r->until || sl_mono_ns() >= r->until) break; /* a system behind stops in time too */
      sleep_until(due);
    } else if (!r->lines && sl_mono_ns() >= r->until) {
      break;
    }
    const char *line;
    size_t len, nops = 0;
    if (!next_line(c, &line, &len)) {
      c->exhausted = true;
      break;
    }
    char why[512];
    uint64_t t = sl_mono_ns();
    int rc = r->ops->apply(c->pc, line, len, &nops, why, sizeof why);
    uint64_t now = sl_mono_ns();
    if (rc) {
      if (!c->failed++) snprintf(c->why, sizeof c->why, "%s", why);
      if (rc == SL_EINVAL && strstr(why, "sending")) { /* the connection is gone */
        c->broken = true;
        break;
      }
      continue;
    }
    c->tx++;
    c->ops += nops;
    if (lat_add(&c->lat, now - t)) break;
  }
  return NULL;
}

typedef struct probe {
  run *r;
  pthread_t thread;
  peer_client *pc;
  uint64_t period_ns;
  lat lat;
  uint64_t lost;            /* markers not seen within PROBE_GIVE_UP_NS */
  int rc;
} probe;

static void *probe_main(void *arg) {
  probe *p = arg;
  run *r = p->r;
  pthread_setname_np(pthread_self(), "peer-probe");
  for (uint64_t k = 0;; k++) {
    uint64_t due = r->t0 + k * p->period_ns;
    if (due >= r->until) break;
    sleep_until(due);
    uint64_t id = PEER_MARKER_BASE + k;
    if ((p->rc = r->ops->marker_commit(p->pc, id))) break;
    uint64_t committed = sl_mono_ns(), now = committed;
    int seen;
    while ((seen = r->ops->marker_seen(p->pc, id)) == 0) {
      now = sl_mono_ns();
      if (now - committed > PROBE_GIVE_UP_NS) break;
      nanosleep(&(struct timespec){0, POLL_NS}, NULL);
    }
    if (seen < 0) {
      p->rc = seen;
      break;
    }
    now = sl_mono_ns();
    if (seen) lat_add(&p->lat, now - committed);
    else p->lost++;
  }
  return NULL;
}

static int load_workload(const char *dir, int k, client *c) {
  char path[4096];
  snprintf(path, sizeof path, "%s/client-%d.jsonl", dir, k);
  int rc = sl_read_file(path, WORKLOAD_MAX, &c->buf, &c->len);
  if (rc) sl_diag_error("%s: %s", path, sl_strerror(rc));
  return rc;
}

static int cmd_run(int argc, char **argv) {
  peer_opts o = {0};
  const char *system = NULL, *workload = NULL, *label = "run";
  int nclients = 0, rep = 1;
  double seconds = 0, rate = 0, probe_ms = 0;
  uint64_t lines = 0;
  bool target = false;
  for (int i = 2; i < argc; i++) {
    const char *f = argv[i];
    if (!strcmp(f, "--target")) {
      target = true;
      continue;
    }
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(f, "--system")) system = v;
    else if (!strcmp(f, "--workload")) workload = v;
    else if (!strcmp(f, "--clients")) nclients = atoi(v);
    else if (!strcmp(f, "--seconds")) seconds = atof(v);
    else if (!strcmp(f, "--rate")) rate = atof(v);
    else if (!strcmp(f, "--probe-ms")) probe_ms = atof(v);
    else if (!strcmp(f, "--lines")) lines = strtoull(v, NULL, 10);
    else if (!strcmp(f, "--rep")) rep = atoi(v);
    else if (!strcmp(f, "--label")) label = v;
    else if (!strcmp(f, "--store")) o.store = v;
    else if (!strcmp(f, "--receiver")) o.receiver = v;
    else if (!strcmp(f, "--rx-data")) o.rx_data = v;
    else if (!strcmp(f, "--stream")) o.stream = v;
    else if (!strcmp(f, "--primary")) o.primary = v;
    else if (!strcmp(f, "--standby")) o.standby = v;
    else usage();
  }
  if (!system || !workload || nclients < 1 || nclients > MAX_CLIENTS || (seconds > 0) == (lines > 0) ||
      rate < 0 || probe_ms < 0 || (lines && (rate > 0 || probe_ms > 0)) || (target && !lines))
    usage();
  const peer_ops *ops = NULL;
  if (!strcmp(system, "shiplog")) ops = &peer_shiplog_ops;
#ifdef SL_HAVE_LIBPQ
  else if (!strcmp(system, "pg")) ops = &peer_pg_ops;
#endif
  if (!ops) {
    sl_diag_error("unknown system '%s'%s", system,
                 strcmp(system, "pg") ? "" : " (this build has no libpq: install libpq-dev and rebuild)");
    return 2;
  }

  client *cs = calloc((size_t)nclients, sizeof *cs);
  probe p = {.period_ns = (uint64_t)(probe_ms * 1e6)};
  run r = {.ops = ops, .rate = rate, .lines = lines};
  int rc = 0, started = 0;
  bool probing = false;
  if (!cs) return 1;
  for (int k = 0; k < nclients; k++)
    if ((rc = load_workload(workload, k, &cs[k]))) goto done;
  if ((rc = ops->open(&o, &r.side))) goto done;
  for (int k = 0; k < nclients; k++) {
    cs[k].r = &r;
    if ((rc = ops->client_open(r.side, &cs[k].pc))) goto done;
  }
  p.r = &r;
  if ((rc = ops->client_open(r.side, &p.pc))) goto done;

  r.t0 = sl_mono_ns() + 100000000; /* every thread is waiting by then */
  r.until = lines ? UINT64_MAX : r.t0 + (uint64_t)(seconds * 1e9);
  for (; started < nclients; started++)
    if ((rc = -pthread_create(&cs[started].thread, NULL, client_main, &cs[started]))) break;
  if (rc == 0 && p.period_ns && !(rc = -pthread_create(&p.thread, NULL, probe_main, &p))) probing = true;
  for (int k = 0; k < started; k++) pthread_join(cs[k].thread, NULL);
  uint64_t end = sl_mono_ns();
  if (probing) pthread_join(p.thread, NULL);
  if (rc) goto done;

  uint64_t target_us = 0, nodes_at_target = 0;
  if (target) {
    if ((rc = ops->count_nodes(p.pc, &nodes_at_target))) goto done;
    target_us = sl_now_us();
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    if ((rc = ops->marker_commit(p.pc, TARGET_MARKER))) goto done;
  }
  for (int k = 0; k < nclients; k++) { /* before settle: PostgreSQL's backends report their WAL stats at exit */
    ops->client_close(cs[k].pc);
    cs[k].pc = NULL;
  }
  peer_totals tot = {0};
  if ((rc = ops->settle(r.side, 300, &tot))) goto done;

  lat all = {0};
  uint64_t tx = 0, nops = 0, failed = 0;
  int exhausted = 0;
  for (int k = 0; k < nclients; k++) {
    tx += cs[k].tx;
    nops += cs[k].ops;
    failed += cs[k].failed;
    exhausted += cs[k].exhausted && !lines;
    for (size_t i = 0; i < cs[k].lat.n; i++) lat_add(&all, cs[k].lat.ns[i]);
    if (cs[k].failed)
      sl_diag_error("%s client %d: %" PRIu64 " lines failed; the first: %s", ops->name, k, cs[k].failed, cs[k].why);
  }
  if (exhausted) sl_diag_warn("%d clients ran out of lines before the time was up: make the workload longer", exhausted);
  if (p.rc) sl_diag_error("probe: %s", sl_strerror(p.rc));
  lat_sort(&all);
  lat_sort(&p.lat);
  double secs = (double)(end - r.t0) / 1e9;
  char iso[40] = "";
  if (target_us) sl_time_format(target_us, iso, sizeof iso);
  printf("{\"rep\":%d,\"system\":\"%s\",\"label\":\"%s\",\"clients\":%d,\"rate\":%.0f,\"seconds\":%.3f,"
         "\"tx\":%" PRIu64 ",\"tx_per_s\":%.1f,\"ops_per_s\":%.1f,\"failed\":%" PRIu64 ",\"exhausted\":%d,"
         "\"commit_p50_ms\":%.3f,\"commit_p99_ms\":%.3f,\"commit_max_ms\":%.3f,"
         "\"probes\":%zu,\"probes_lost\":%" PRIu64 ",\"lag_p50_ms\":%.3f,\"lag_p99_ms\":%.3f,\"lag_max_ms\":%.3f,"
         "\"catchup_s\":%.3f,\"log_bytes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ","
         "\"log_bytes_per_tx\":%.1f,\"wire_bytes_per_tx\":%.1f,\"syncs\":%" PRIu64 ",\"tx_per_sync\":%.2f,"
         "\"nodes\":%" PRIu64,
         rep, ops->name, label, nclients, rate, secs, tx, (double)tx / secs, (double)nops / secs, failed,
         exhausted, lat_pct(&all, 50, 1e6), lat_pct(&all, 99, 1e6), lat_pct(&all, 100, 1e6), p.lat.n, p.lost,
         lat_pct(&p.lat, 50, 1e6), lat_pct(&p.lat, 99, 1e6), lat_pct(&p.lat, 100, 1e6), tot.catchup_s, tot.log_bytes,
         tot.wire_bytes, tx ? (double)tot.log_bytes / (double)tx : 0, tx ? (double)tot.wire_bytes / (double)tx : 0,
         tot.syncs, tot.syncs ? (double)tx / (double)tot.syncs : 0, tot.nodes);
  if (target) printf(",\"target_us\":%" PRIu64 ",\"target\":\"%s\",\"nodes_at_target\":%" PRIu64, target_us, iso,
                     nodes_at_target);
  printf("}\n");
  fflush(stdout);
  free(all.ns);
  if (failed || p.rc || p.lost) rc = SL_EINVAL;

done:
  for (int k = 0; k < nclients; k++) {
    if (cs[k].pc) ops->client_close(cs[k].pc);
    free(cs[k].buf);
    free(cs[k].lat.ns);
  }
  if (p.pc) ops->client_close(p.pc);
  free(p.lat.ns);
  if (r.side) ops->close(r.side);
  free(cs);
  return rc ? 1 : 0;
}

/* ---- report ------------------------------------------------------------------------------ */

static const struct row {
  const char *title, *label, *field, *unit;
  bool higher_better;
} rows[] = {
    {"durable commits/s, 1 client", "commit-1", "tx_per_s", "tx/s", true},
    {"durable commits/s, 4 clients", "commit-4", "tx_per_s", "tx/s", true},
    {"durable commits/s, 16 clients", "commit-16", "tx_per_s", "tx/s", true},
    {"commit latency p99, 4 clients", "commit-4", "commit_p99_ms", "ms", false},
    {"commit latency p50, 16 clients", "commit-16", "commit_p50_ms", "ms", false},
    {"transactions per log fdatasync, 16 cl.", "commit-16", "tx_per_sync", "tx", true},
    {"commit->visible p50, 1k tx/s offered", "lag-1000", "lag_p50_ms", "ms", false},
    {"commit->visible p99, 1k tx/s offered", "lag-1000", "lag_p99_ms", "ms", false},
    {"commit->visible max, 1k tx/s offered", "lag-1000", "lag_max_ms", "ms", false},
    {"achieved, 10k tx/s offered", "lag-10000", "tx_per_s", "tx/s", true},
    {"commit->visible p50, 10k tx/s offered", "lag-10000", "lag_p50_ms", "ms", false},
    {"commit->visible p99, 10k tx/s offered", "lag-10000", "lag_p99_ms", "ms", false},
    {"commit->visible max, 10k tx/s offered", "lag-10000", "lag_max_ms", "ms", false},
    {"achieved at max (16 clients)", "lag-max", "tx_per_s", "tx/s", true},
    {"commit->visible p50 at max", "lag-max", "lag_p50_ms", "ms", false},
    {"commit->visible p99 at max", "lag-max", "lag_p99_ms", "ms", false},
    {"commit->visible max at max", "lag-max", "lag_max_ms", "ms", false},
    {"restore workload, applied (4 clients)", "load", "tx_per_s", "tx/s", true},
    {"point-in-time restore of it", "restore", "seconds", "s", false},
    {"  log replayed per second", "restore", "replay_mb_per_s", "MB/s", true},
    {"full backup (pg_basebackup / dump)", "backup", "mb_per_s", "MB/s", true},
    {"  its duration", "backup", "seconds", "s", false},
    {"  the state it copies (data dir / LMDB)", "backup", "source_mb", "MB", false},
    {"  its size", "backup", "mb", "MB", false},
    {"log (WAL) bytes per tx", "load", "log_bytes_per_tx", "B", false},
    {"wire bytes per tx", "load", "wire_bytes_per_tx", "B", false},
    {"archive bytes per tx", "archive", "bytes_per_tx", "B", false},
};

static const char *const systems[] = {"pg", "shiplog"};

static double field(json_t *records, int rep, const char *system, const char *label, const char *name) {
  size_t i;
  json_t *r;
  json_array_foreach(records, i, r) {
    if (json_integer_value(json_object_get(r, "rep")) == rep &&
        !strcmp(json_string_value(json_object_get(r, "system")) ?: "", system) &&
        !strcmp(json_string_value(json_object_get(r, "label")) ?: "", label)) {
      json_t *v = json_object_get(r, name);
      return json_is_number(v) ? json_number_value(v) : -1;
    }
  }
  return -1; /* not measured */
}

static void put_num(double v) {
  if (v < 0) printf(" %9s", "-");
  else if (v >= 100) printf(" %9.0f", v);
  else if (v >= 10) printf(" %9.1f", v);
  else printf(" %9.2f", v);
}

/* The best commit rate of a system in a repetition, over the client counts. */
static double best_rate(json_t *records, int rep, const char *system) {
  double best = -1;
  for (size_t i = 0; i < 3; i++) best = SL_MAX(best, field(records, rep, system, rows[i].label, rows[i].field));
  return best;
}

static int cmd_report(int argc, char **argv) {
  const char *path = argc > 2 ? argv[2] : NULL, *json_out = NULL;
  if (!path || (argc != 3 && (argc != 5 || strcmp(argv[3], "--json")))) usage();
  if (argc == 5) json_out = argv[4];
  FILE *in = fopen(path, "r");
  if (!in) {
    sl_diag_error("%s: %s", path, strerror(errno));
    return 1;
  }
  json_t *records = json_array();
  char line[8192];
  int reps = 0;
  while (fgets(line, sizeof line, in)) {
    json_error_t err;
    json_t *r = json_loads(line, 0, &err);
    if (!json_is_object(r)) {
      json_decref(r);
      continue;
    }
    reps = SL_MAX(reps, (int)json_integer_value(json_object_get(r, "rep")));
    json_array_append_new(records, r);
  }
  fclose(in);
  if (reps < 1) {
    sl_diag_error("%s: no records", path);
    return 1;
  }

  json_t *figs = json_array();
  static const char *const heads[] = {"PostgreSQL", "shiplog", "shiplog/PG"};
  printf("%-40s %-5s", "figure (run 1, run 2, ...)", "unit");
  for (size_t k = 0; k < SL_ARRAY_LEN(heads); k++) printf(" %*s%*s", 9, heads[k], 10 * (reps - 1), "");
  printf("  better\n");
  for (size_t i = 0; i < SL_ARRAY_LEN(rows); i++) {
    const struct row *w = &rows[i];
    json_t *pg = json_array(), *sl = json_array(), *ratio = json_array();
    printf("%-40s %-5s", w->title, w->unit);
    for (size_t s = 0; s < SL_ARRAY_LEN(systems); s++)
      for (int rep = 1; rep <= reps; rep++) {
        double v = field(records, rep, systems[s], w->label, w->field);
        put_num(v);
        json_array_append_new(s ? sl : pg, v < 0 ? json_null() : json_real(v));
      }
    for (int rep = 1; rep <= reps; rep++) {
      double a = field(records, rep, "shiplog", w->label, w->field), b = field(records, rep, "pg", w->label, w->field);
      double q = a >= 0 && b > 0 ? a / b : -1;
      put_num(q);
      json_array_append_new(ratio, q < 0 ? json_null() : json_real(q));
    }
    printf("  %s\n", w->higher_better ? "higher" : "lower");
    json_array_append_new(figs, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "figure", w->title, "label",
                                          w->label, "field", w->field, "unit", w->unit, "better",
                                          w->higher_better ? "higher" : "lower", "pg", pg, "shiplog", sl,
                                          "ratio", ratio));
  }

  /* The targets, per repetition. */
  json_t *targets = json_array();
  printf("\ntargets (per run):\n");
  static const char *const names[] = {"commit rate >= 10x PostgreSQL's (best client count of each)",
                                      "commit->visible p99 <= 5 ms at 10k tx/s offered",
                                      "commit->visible p99 <= 2 ms at 1k tx/s offered",
                                      "point-in-time restore >= 3x faster"};
  for (size_t t = 0; t < SL_ARRAY_LEN(names); t++) {
    json_t *vals = json_array();
    printf("  %-62s", names[t]);
    bool all_met = true;
    for (int rep = 1; rep <= reps; rep++) {
      double v = -1;
      bool met = false;
      if (t == 0) {
        double a = best_rate(records, rep, "shiplog"), b = best_rate(records, rep, "pg");
        v = a >= 0 && b > 0 ? a / b : -1;
        met = v >= 10;
        if (v >= 0) printf(" %6.1fx", v);
      } else if (t == 1 || t == 2) {
        const char *label = t == 1 ? "lag-10000" : "lag-1000";
        v = field(records, rep, "shiplog", label, "lag_p99_ms");
        double got = field(records, rep, "shiplog", label, "tx_per_s"), want = t == 1 ? 10000 : 1000;
        met = v >= 0 && v <= (t == 1 ? 5 : 2) && got >= 0.95 * want;
        if (v >= 0) printf(" %5.2fms", v);
      } else {
        double a = field(records, rep, "pg", "restore", "seconds"), b = field(records, rep, "shiplog", "restore", "seconds");
        v = a >= 0 && b > 0 ? a / b : -1;
        met = v >= 3;
        if (v >= 0) printf(" %6.1fx", v);
      }
      if (v < 0) printf(" %7s", "-");
      all_met = all_met && met;
      json_array_append_new(vals, v < 0 ? json_null() : json_real(v));
    }
    printf("  %s\n", all_met ? "met" : "NOT met");
    json_array_append_new(targets, json_pack("{s:s, s:o, s:b}", "target", names[t], "values", vals, "met", all_met));
  }

  int rc = 0;
  if (json_out) {
    json_t *doc = json_pack("{s:s, s:I, s:i, s:o, s:o, s:o}", "bench", "bench/peer", "written_us",
                            (json_int_t)sl_now_us(), "runs", reps, "figures", figs, "targets", targets,
                            "records", records);
    if (json_dump_file(doc, json_out, JSON_INDENT(1)) != 0) {
      sl_diag_error("%s: cannot write", json_out);
      rc = 1;
    }
    json_decref(doc);
  } else {
    json_decref(figs);
    json_decref(targets);
    json_decref(records);
  }
  return rc;
}

int main(int argc, char **argv) {
  sl_set_progname("bench_peer");
  if (argc < 2) usage();
  if (!strcmp(argv[1], "run")) return cmd_run(argc, argv);
  if (!strcmp(argv[1], "report")) return cmd_report(argc, argv);
#ifdef SL_HAVE_LIBPQ
  if (!strcmp(argv[1], "has-pg")) return 0;
#else
  if (!strcmp(argv[1], "has-pg")) return 1;
#endif
  usage();
}
