/*
 * bench_peer's systems under test. bench/peer.c drives a run (clients,
 * pacing, the visibility probe, statistics); each system is a table of
 * operations: bench/peer_shiplog.c (a shiplog primary store in this process
 * shipping to a `shiplog receive` process) and bench/peer_pg.c (a PostgreSQL
 * primary with a streaming hot standby, through libpq; compiled only where
 * libpq is installed: SL_HAVE_LIBPQ).
 *
 * THREADS. open, settle and close are called from the driver's main
 * thread; each peer_client belongs to one thread (a client or the probe),
 * which may run concurrently with other clients.
 */
#ifndef SL_BENCH_PEER_H
#define SL_BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marker nodes/rows of the visibility probe take ids from here up, far
 * above any workload id (bench/peer gives client k the id base 1 + k * 1e9). */
#define PEER_MARKER_BASE (1ull << 62)

typedef struct peer_opts {
  /* shiplog */
  const char *store;      /* the primary store (created when missing) */
  const char *receiver;   /* HOST:PORT of `shiplog receive` */
  const char *rx_data;    /* its --data directory (the standby is read from there) */
  const char *stream;
  /* PostgreSQL: libpq connection strings */
  const char *primary, *standby;
} peer_opts;

typedef struct peer_side peer_side;
typedef struct peer_client peer_client;

/* What settle reports about the run (since open). */
typedef struct peer_totals {
  uint64_t log_bytes;   /* log (WAL) bytes the primary wrote */
  uint64_t wire_bytes;  /* TCP payload bytes primary -> standby; 0: not measured here */
  uint64_t syncs;       /* WAL / log fdatasyncs on the primary (group commit: tx per sync) */
  uint64_t nodes;       /* nodes on the primary, markers excluded */
  double catchup_s;     /* from settle's call until the standby held everything */
} peer_totals;

typedef struct peer_ops {
  const char *name;
  int (*open)(const peer_opts *o, peer_side **out);
  int (*client_open)(peer_side *s, peer_client **out);
  /* Apply one mutation line (spec/mutations.md) as one transaction; returns
   * 0 once it is durable on the primary, else a negative code with a reason
   * in why. *nops receives the ops it held. */
  int (*apply)(peer_client *c, const char *line, size_t len, size_t *nops, char *why, size_t whylen);
  /* Commit marker `id` on the primary (durable on return). */
  int (*marker_commit)(peer_client *c, uint64_t id);
  /* 1 once marker `id` is visible on the standby, 0 if not yet, < 0 on error. */
  int (*marker_seen)(peer_client *c, uint64_t id);
  /* Nodes on the primary now (markers excluded). */
  int (*count_nodes)(peer_client *c, uint64_t *out);
  void (*client_close)(peer_client *c);
  /* Wait (at most limit_s) until the standby holds everything committed. */
  int (*settle)(peer_side *s, double limit_s, peer_totals *t);
  void (*close)(peer_side *s);
} peer_ops;

extern const peer_ops peer_shiplog_ops;
#ifdef SL_HAVE_LIBPQ
extern const peer_ops peer_pg_ops;
#endif

#endif
