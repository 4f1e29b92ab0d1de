/*
 * bench_restore: how fast `shiplog restore` rebuilds a stream's state from a
 * receiver's archive, next to how fast the same archive can merely be read,
 * measured in the same run.
 *
 * USAGE
 *   bench_restore [--dir DIR] [--ops-per-tx K] [--big] [--keep]
 *
 *   --dir DIR        scratch directory (default $TMPDIR, else /tmp)
 *   --ops-per-tx K   operations per transaction (default 10)
 *   --big            also the 10^7-operation archive (several minutes)
 *   --keep           leave the scratch directory behind
 *
 * SETUP, per size (10^5 and 10^6 operations; 10^7 with --big): a receiver's
 * data directory DIR/data/streams/b whose archive is written directly with
 * sl_log_append: transactions of K graph operations (45% node creations
 * with labels and three properties, 35% relationship creations between
 * recent nodes, 15% property updates on any node, 5% relationship deletes),
 * commit times 1 ms apart. The archive is in the page cache when measured
 * (just written), as it is for a restore soon after the fact; cold-cache
 * figures depend on the disk, which the read() ceiling shows.
 *
 * WHAT IT MEASURES
 *   read()      every segment file read in 1 MiB blocks: the ceiling of any
 *               pass over the archive (MB/s)
 *   reader      the log reader (framing, CRC32C, txid order) over it: what
 *               a restore's reading costs (MB/s, tx/s)
 *   from empty  sl_restore to the last txid with no snapshot: every
 *               transaction replayed into a new store (which logs it again)
 *               and made durable (its log's fdatasync and an LMDB
 *               checkpoint) -- ops/s and MB/s of log replayed, and its
 *               ratio to reader
 *   nearby      a snapshot 1% of the transactions before the end (taken from
 *               a restore to that txid, not timed), then sl_restore to the
 *               last txid: snapshot load + the last 1% replayed, total time
 *   Target: replay >= 1,000,000 ops/s. Nothing asserts on times: shared
 *   machines vary 30-60% between runs; compare figures of one run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pitr.h"
#include "sl_base.h"
#include "store.h"
#include "transaction.pb-c.h"

#define READ_BLOCK (1u << 20)

static struct {
  const char *dir;
  unsigned ops_per_tx;
  bool big, keep;
} cfg = {.ops_per_tx = 10};

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_restore: %s: %s\n", what, sl_strerror(rc));
  exit(1);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }
static double mb(uint64_t b) { return (double)b / 1e6; }

/* ---- the archive ----------------------------------------------------------------- */
typedef struct gen {
  uint64_t nodes, rels, deleted; /* ids 1..nodes, 1..rels; rels 1..deleted are gone */
} gen;

static const char *const label_names[] = {"Person", "Post", "Comment", "Forum", "Tag"};
static const char *const first_names[] = {"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Ken", "Leslie"};

/* Fill op i of a transaction (storage in the caller's arrays). */
typedef struct op_store {
  Shiplog__Op op;
  Shiplog__CreateNode cn;
  Shiplog__CreateRelationship cr;
  Shiplog__SetProperty sp;
  Shiplog__DeleteRelationship dr;
  Shiplog__Property props[3], *pprops[3];
  Shiplog__Value vals[3];
  char *labels[2];
  char name[32];
} op_store;

static void make_op(gen *g, op_store *s) {
  uint64_t r = rnd() % 100;
  s->op = (Shiplog__Op)SHIPLOG__OP__INIT;
  for (int i = 0; i < 3; i++) {
    s->props[i] = (Shiplog__Property)SHIPLOG__PROPERTY__INIT;
    s->vals[i] = (Shiplog__Value)SHIPLOG__VALUE__INIT;
    s->props[i].value = &s->vals[i];
    s->pprops[i] = &s->props[i];
  }
  if (g->nodes < 16 || r < 45) {
    s->cn = (Shiplog__CreateNode)SHIPLOG__CREATE_NODE__INIT;
    snprintf(s->name, sizeof s->name, "%s %s", first_names[rnd() % 8], first_names[rnd() % 8]);
    s->labels[0] = (char *)label_names[rnd() % 5];
    s->labels[1] = "Active";
    s->props[0].key = "name";
    s->vals[0].kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
    s->vals[0].string_value = s->name;
    s->props[1].key = "score";
    s->vals[1].kind_case = SHIPLOG__VALUE__KIND_INT_VALUE;
    s->vals[1].int_value = (int64_t)(rnd() % 100000);
    s->props[2].key = "weight";
    s->vals[2].kind_case = SHIPLOG__VALUE__KIND_DOUBLE_VALUE;
    s->vals[2].double_value = (double)(rnd() % 1000) / 8.0;
    s->cn.id = ++g->nodes;
    s->cn.n_labels = 1 + rnd() % 2;
    s->cn.labels = s->labels;
    s->cn.n_props = 3;
    s->cn.props = s->pprops;
    s->op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
    s->op.create_node = &s->cn;
  } else if (r < 80 || g->rels - g->deleted < 1000) {
    s->cr = (Shiplog__CreateRelationship)SHIPLOG__CREATE_RELATIONSHIP__INIT;
    uint64_t span = SL_MIN(g->nodes, 5000);
    s->props[0].key = "since";
    s->vals[0].kind_case = SHIPLOG__VALUE__KIND_INT_VALUE;
    s->vals[0].int_value = 2000 + (int64_t)(rnd() % 25);
    s->cr.id = ++g->rels;
    s->cr.type = rnd() % 2 ? "KNOWS" : "LIKES";
    s->cr.start = g->nodes - rnd() % span;
    s->cr.end = g->nodes - rnd() % span;
    s->cr.n_props = 1;
    s->cr.props = s->pprops;
    s->op.op_case = SHIPLOG__OP__OP_CREATE_REL;
    s->op.create_rel = &s->cr;
  } else if (r < 95) {
    s->sp = (Shiplog__SetProperty)SHIPLOG__SET_PROPERTY__INIT;
    s->sp.id = 1 + rnd() % g->nodes;
    s->sp.key = "score";
    s->vals[0].kind_case = SHIPLOG__VALUE__KIND_INT_VALUE;
    s->vals[0].int_value = (int64_t)(rnd() % 100000);
    s->sp.value = &s->vals[0];
    s->op.op_case = SHIPLOG__OP__OP_SET_NODE_PROP;
    s->op.set_node_prop = &s->sp;
  } else {
    s->dr = (Shiplog__DeleteRelationship)SHIPLOG__DELETE_RELATIONSHIP__INIT;
    s->dr.id = ++g->deleted;
    s->op.op_case = SHIPLOG__OP__OP_DELETE_REL;
    s->op.delete_rel = &s->dr;
  }
}

/* DATA/streams/b/{archive,snapshots} holding ntx transactions; returns the archive's bytes. */
static uint64_t write_archive(const char *data, uint64_t ntx) {
  char archive[4400], snaps[4400];
  snprintf(archive, sizeof archive, "%s/streams/b/archive", data);
  snprintf(snaps, sizeof snaps, "%s/streams/b/snapshots", data);
  sl_log_options lo = {.first_txid = 1};
  for (int i = 0; i < SL_STORE_ID_SIZE; i++) lo.store_id[i] = (uint8_t)rnd();
  int rc;
  if ((rc = sl_mkdir_p(archive)) || (rc = sl_mkdir_p(snaps)) || (rc = sl_log_create(archive, &lo))) die(archive, rc);
  sl_log *log;
  if ((rc = sl_log_open(archive, NULL, &log))) die("sl_log_open", rc);
  gen g = {0};
  op_store *st = calloc(cfg.ops_per_tx, sizeof *st);
  Shiplog__Op **ops = calloc(cfg.ops_per_tx, sizeof *ops);
  size_t cap = 1 << 16;
  uint8_t *pkt = malloc(cap);
  uint64_t base = sl_now_us() - ntx * 1000 - 3600000000ull, bytes = 0;
  for (uint64_t txid = 1; txid <= ntx; txid++) {
    Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
    for (unsigned i = 0; i < cfg.ops_per_tx; i++) {
      make_op(&g, &st[i]);
      ops[i] = &st[i].op;
    }
    t.txid = txid;
    t.commit_time_us = base + txid * 1000;
    t.n_ops = cfg.ops_per_tx;
    t.ops = ops;
    size_t n = shiplog__transaction__get_packed_size(&t);
    if (n > cap) pkt = realloc(pkt, cap = 2 * n);
    shiplog__transaction__pack(&t, pkt);
    if ((rc = sl_log_append(log, pkt, n))) die("sl_log_append", rc);
    bytes += n + SL_FRAME_HEADER_SIZE;
  }
  if ((rc = sl_log_wait_durable(log, ntx))) die("sl_log_wait_durable", rc);
  sl_log_close(log);
  free(pkt);
  free(ops);
  free(st);
  return bytes;
}

/* ---- the ceilings ---------------------------------------------------------------- */
static double read_mbps(const char *archive) {
  sl_seg_info *segs;
  size_t n;
  uint64_t bytes = 0, t0 = sl_mono_ns();
  uint8_t *buf = malloc(READ_BLOCK);
  int rc = sl_log_list(archive, &segs, &n);
  if (rc) die("sl_log_list", rc);
  for (size_t i = 0; i < n; i++) {
    int fd = open(segs[i].path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(segs[i].path, -errno);
    ssize_t r;
    while ((r = read(fd, buf, READ_BLOCK)) > 0) bytes += (uint64_t)r;
    close(fd);
  }
  free(segs);
  free(buf);
  return mb(bytes) / secs(sl_mono_ns() - t0);
}

static double reader_mbps(const char *archive, uint64_t ntx) {
  sl_log_reader *r;
  sl_frame f;
  uint64_t bytes = 0, n = 0, t0 = sl_mono_ns();
  sl_log_reader_options ro = {.max_txid = ntx};
  int rc = sl_log_reader_open(archive, 1, &ro, &r);
  if (rc) die("sl_log_reader_open", rc);
  while ((rc = sl_log_reader_next(r, &f)) == 0) {
    bytes += f.payload_len + SL_FRAME_HEADER_SIZE;
    n++;
  }
  if (rc != SL_EEND || n != ntx) die("reading the archive", rc ? rc : SL_ETRUNCATED);
  sl_log_reader_close(r);
  return mb(bytes) / secs(sl_mono_ns() - t0);
}

/* ---- restores ---------------------------------------------------------------------- */
static sl_restore_result restore(const char *data, uint64_t txid, const char *into, uint64_t *ns) {
  sl_restore_options o = {.data_dir = data, .stream = "b", .txid = txid, .into = into};
  sl_restore_result r;
  sl_remove_tree(into);
  uint64_t t0 = sl_mono_ns();
  int rc = sl_restore(&o, &r);
  *ns = sl_mono_ns() - t0;
  if (rc) die("sl_restore", rc);
  return r;
}

static void run_size(uint64_t ops, bool *met) {
  char root[4096], data[4200], into[4200], archive[4300], snaps[4300];
  uint64_t ntx = ops / cfg.ops_per_tx, ns, t0 = sl_mono_ns();
  snprintf(root, sizeof root, "%s/bench_restore.%d.%" PRIu64, cfg.dir, (int)getpid(), ops);
  snprintf(data, sizeof data, "%s/data", root);
  snprintf(into, sizeof into, "%s/restored", root);
  snprintf(archive, sizeof archive, "%s/streams/b/archive", data);
  snprintf(snaps, sizeof snaps, "%s/streams/b/snapshots", data);
  sl_remove_tree(root);
  uint64_t bytes = write_archive(data, ntx);
  double gen_s = secs(sl_mono_ns() - t0);
  double raw = read_mbps(archive), rd = reader_mbps(archive, ntx);

  sl_restore_result r = restore(data, ntx, into, &ns);
  double full_s = secs(ns), replay_s = secs(r.replay_ns);
  double ops_s = (double)(r.replayed * cfg.ops_per_tx) / replay_s, log_mbps = mb(r.replayed_bytes) / replay_s;
  *met = *met && ops_s >= 1e6;

  /* A snapshot 1% before the end (from a restore to that txid, untimed). */
  uint64_t near = ntx - SL_MAX(ntx / 100, 1);
  restore(data, near, into, &ns);
  sl_store *st;
  sl_snapshot snap;
  bool existed;
  int rc;
  if ((rc = sl_store_open(into, SL_OPEN_RDONLY, &st))) die("open the restored store", rc);
  if ((rc = sl_snapshot_take(st, snaps, NULL, &snap, &existed))) die("sl_snapshot_take", rc);
  sl_store_close(st);
  sl_restore_result rn = restore(data, ntx, into, &ns);
  double near_s = secs(ns);

  printf("%9" PRIu64 " %8" PRIu64 " %8.1f | %8.0f %8.0f | %7.2f %7.2f %10.0f %7.1f %5.0f%% | %8.1f %6.2f %6.2f %7.2f %10.0f\n",
         ops, ntx, mb(bytes), raw, rd, full_s, replay_s, ops_s, log_mbps, 100.0 * log_mbps / rd, mb(snap.bytes),
         secs(rn.load_ns), secs(rn.replay_ns), near_s, (double)ops / near_s);
  fprintf(stderr, "  (%" PRIu64 " ops: archive written in %.1f s; restore from empty: load %.2f s, replay %.2f s)\n",
          ops, gen_s, secs(r.load_ns), replay_s);
  if (!cfg.keep) sl_remove_tree(root);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) cfg.dir = argv[++i];
    else if (!strcmp(argv[i], "--ops-per-tx") && i + 1 < argc) cfg.ops_per_tx = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--big")) cfg.big = true;
    else if (!strcmp(argv[i], "--keep")) cfg.keep = true;
    else {
      fprintf(stderr, "usage: bench_restore [--dir DIR] [--ops-per-tx K] [--big] [--keep]\n");
      return 2;
    }
  }
  if (!cfg.dir) cfg.dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  if (cfg.ops_per_tx < 1 || cfg.ops_per_tx > 10000) {
    fprintf(stderr, "bench_restore: --ops-per-tx must lie between 1 and 10000\n");
    return 2;
  }
  printf("bench_restore: %s, %u ops per transaction, archive in the page cache\n", cfg.dir, cfg.ops_per_tx);
  printf("target: restore replay >= 1,000,000 ops/s\n\n");
  printf("                             | ceilings (MB/s)   | restore from an empty store                | "
         "snapshot 1%% before the end\n");
  printf("      ops       tx  log MB  |   read() reader   | total s replay s     ops/s    MB/s vs rdr | "
         " snap MB load s replay  total s  ops/s eq.\n");
  bool met = true;
  uint64_t sizes[] = {100000, 1000000, 10000000};
  for (size_t i = 0; i < (cfg.big ? 3u : 2u); i++) run_size(sizes[i], &met);
  printf("\nreplay >= 1,000,000 ops/s at every size: %s\n", met ? "yes" : "no");
  printf("(ops/s eq.: the archive's operations / the nearby restore's total time)\n");
  return 0;
}
