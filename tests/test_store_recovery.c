/*
 * Tests of the graph store (store/store.h) across failures: crash recovery
 * with SIGKILL, readers in another process, concurrent writer threads and
 * group-commit faults, the writer lock, power-loss rebuilds (also of a
 * primary whose log is pruned, and while a checkpoint is in flight on the
 * checkpoint thread), checkpoints, space (data.mdb tracks the
 * live data; compaction), recovery replaying the log past LMDB, every I/O
 * fault point under a commit workload, and replay speed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "store_helpers.h"

#include "sl_base.h"
#include "store.h"
#include "transaction.pb-c.h"

/* ---- crash recovery --------------------------------------------------------------------------------- */
/* Two nodes and a relationship between them; no cmocka asserts, so that
 * forked children may call it. */
static int commit_pair(sl_store *st, uint64_t i, uint64_t *txid) {
  sl_tx *tx;
  uint64_t a = 0, b = 0;
  char payload[64];
  snprintf(payload, sizeof payload, "payload %" PRIu64, i);
  sl_prop p[] = {{"seq", vint((int64_t)i)}, {"s", vstr(payload)}};
  const char *l[] = {"Pair"};
  int rc = sl_tx_begin(st, &tx);
  if (rc) return rc;
  if ((rc = sl_tx_create_node(tx, SL_ID_NEW, l, 1, p, 2, &a)) || (rc = sl_tx_create_node(tx, SL_ID_NEW, l, 1, p, 1, &b)) ||
      (rc = sl_tx_create_rel(tx, SL_ID_NEW, "WITH", a, b, p, 1, NULL)) ||
      (a > 4 && (rc = sl_tx_set_node_prop(tx, a - 3, "touched", &p[0].value)))) {
    sl_tx_abort(tx);
    return rc;
  }
  return sl_tx_commit(tx, txid);
}

static void crash_child(const char *dir, int wfd) {
  sl_store *st;
  if (sl_store_open(dir, 0, &st)) _exit(2);
  for (uint64_t i = 0;; i++) {
    uint64_t txid;
    if (commit_pair(st, i, &txid)) _exit(4);
    if (write(wfd, &txid, sizeof txid) != sizeof txid) _exit(3);
  }
}

/* Fork with a pipe from the child: returns the child's pid in the parent
 * (*rfd: the read end) and 0 in the child (*wfd: the write end). */
static pid_t fork_piped(int *rfd, int *wfd) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  close(fds[pid == 0 ? 0 : 1]);
  *rfd = fds[0];
  *wfd = fds[1];
  return pid;
}

static void check_pairs(sl_store *st) {
  sl_counts c = counts_of(st);
  if (c.nodes != 2 * c.rels) fail_msg("%" PRIu64 " nodes, %" PRIu64 " rels: a transaction is half applied", c.nodes, c.rels);
}

static void store_crash_recovery(void **state) {
  (void)state;
  uint64_t rng = tu_seed("store_crash_recovery");
  char *dir = new_dir("store_crash");
  sl_store_options o = {.segment_size = 32 << 10};
  OK(sl_store_create(dir, &o));
  char *logdir = sub(dir, "log");
  OK(sl_log_consumer_set(logdir, "test", 0));
  for (int round = 0; round < 6; round++) {
    int fds[2];
    pid_t pid = fork_piped(&fds[0], &fds[1]);
    if (pid == 0) crash_child(dir, fds[1]);
    struct timespec ts = {0, (long)(20 + tu_rand_below(&rng, 300)) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    uint64_t txid, last = 0, n = 0;
    while (read(fds[0], &txid, sizeof txid) == sizeof txid) {
      if (txid != last + 1 && last) fail_msg("acknowledged txids jump from %" PRIu64 " to %" PRIu64, last, txid);
      last = txid;
      n++;
    }
    close(fds[0]);
    sl_store *st;
    OK(sl_store_open(dir, 0, &st));
    sl_counts c = counts_of(st);
    fprintf(stderr, "store_crash_recovery: round %d: %" PRIu64 " acknowledged (last %" PRIu64 "), recovered %" PRIu64 "\n",
            round, n, last, c.applied_txid);
    if (c.applied_txid < last) fail_msg("acknowledged txid %" PRIu64 " lost (store at %" PRIu64 ")", last, c.applied_txid);
    assert_int_equal(sl_log_next_txid(sl_store_log(st)), c.applied_txid + 1);
    check_pairs(st);
    compare_with_replay(st, "store_crash_replay");
    sl_store_close(st);
  }
  free(logdir);
  done_dir(dir);
}

/* ---- other processes and threads --------------------------------------------------------------------- */
static void store_reader_process(void **state) {
  (void)state;
  char *dir = new_dir("store_reader");
  OK(sl_store_create(dir, NULL));
  int fds[2], res[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(pipe(res), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[1]);
    close(res[0]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    sl_store *st;
    if (sl_store_open(dir, SL_OPEN_RDONLY, &st)) _exit(2);
    uint64_t reads = 0, max_seen = 0;
    char c;
    while (read(fds[0], &c, 1) != 0) { /* EOF: the writer is done */
      sl_view *v;
      sl_counts cn;
      if (sl_view_begin(st, &v) || sl_view_counts(v, &cn)) _exit(3);
      if (cn.nodes != 2 * cn.rels) _exit(4);
      ids all = {0};
      if (sl_view_all_rels(v, push_id, &all) || all.n != cn.rels) _exit(5);
      for (size_t i = 0; i < all.n; i += 97) {
        sl_rel r;
        sl_node n;
        if (sl_view_rel(v, all.v[i], &r) || sl_view_node(v, r.start, &n) || sl_view_node(v, r.end, &n)) _exit(6);
      }
      free(all.v);
      max_seen = SL_MAX(max_seen, cn.applied_txid);
      sl_view_end(v);
      reads++;
    }
    sl_store_close(st);
    uint64_t out[2] = {reads, max_seen};
    if (write(res[1], out, sizeof out) != sizeof out) _exit(7);
    _exit(0);
  }
  close(fds[0]);
  close(res[1]);
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  for (uint64_t i = 0; i < 400; i++) {
    uint64_t txid;
    OK(commit_pair(st, i, &txid));
  }
  close(fds[1]);
  int status;
  waitpid(pid, &status, 0);
  uint64_t out[2] = {0, 0};
  assert_int_equal(read(res[0], out, sizeof out), sizeof out);
  close(res[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) fail_msg("reader process failed with status %d", status);
  fprintf(stderr, "store_reader_process: %" PRIu64 " consistent reads, last txid seen %" PRIu64 "\n", out[0], out[1]);
  assert_true(out[0] > 0);
  sl_store_close(st);
  done_dir(dir);
}

typedef struct writer_arg {
  sl_store *st;
  int n;
  uint64_t *txids;
} writer_arg;

static void *writer_thread(void *p) {
  writer_arg *a = p;
  for (int i = 0; i < a->n; i++) {
    sl_tx *tx;
    if (sl_tx_begin(a->st, &tx)) return (void *)1;
    sl_prop prop = {"i", vint(i)};
    if (sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, &prop, 1, NULL) || sl_tx_commit(tx, &a->txids[i])) return (void *)1;
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Group commit under faults: writers commit (thread, seq) nodes, one in
 * seven of thread 0's transactions fails an op and aborts inside a group
 * (the opener re-applies the pending records), and a fault hits a group's
 * write or fdatasync. After reopening, every acknowledged commit is there,
 * no (thread, seq) twice, and no failed one. */
enum { GF_T = 6, GF_N = 300 };
typedef struct gf_arg {
  sl_store *st;
  int t;
  bool big; /* each node carries 40 KB: every group syncs ahead (commit.c) */
  bool acked[GF_N], failed[GF_N];
} gf_arg;
static char gf_pad[40 << 10];

static void *gf_writer(void *p) {
  gf_arg *a = p;
  for (int i = 0; i < GF_N; i++) {
    sl_tx *tx;
    if (sl_tx_begin(a->st, &tx)) {
      a->failed[i] = true;
      continue;
    }
    sl_prop props[3] = {{"t", vint(a->t)}, {"i", vint(i)}, {"pad", {.kind = SL_STRING, .len = sizeof gf_pad, .u.s = gf_pad}}};
    if (sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, props, a->big ? 3 : 2, NULL)) {
      sl_tx_abort(tx);
      a->failed[i] = true;
      continue;
    }
    if (a->t == 0 && i % 7 == 3) { /* a failing op after a write: the whole tx goes */
      assert_int_equal(sl_tx_create_rel(tx, SL_ID_NEW, "R", 1u << 30, 1u << 30, NULL, 0, NULL), SL_ENOTFOUND);
      sl_tx_abort(tx);
      continue;
    }
    int rc = sl_tx_commit(tx, NULL);
    a->acked[i] = rc == 0;
    a->failed[i] = rc != 0;
  }
  return NULL;
}

typedef struct gf_ids {
  uint64_t *ids;
  size_t n;
} gf_ids;

static int gf_collect(void *arg, uint64_t id) {
  gf_ids *g = arg;
  g->ids[g->n++] = id;
  return 0;
}

static void gf_run(enum sl_fault_point point, int code, int skip, bool big) {
  char *dir = new_dir("store_group_faults");
  sl_store *st = create_open(dir, NULL);
  pthread_t th[GF_T];
  gf_arg *args = calloc(GF_T, sizeof *args);
  sl_fault_set(point, code, skip, 1);
  for (int t = 0; t < GF_T; t++) {
    args[t].st = st;
    args[t].t = t;
    args[t].big = big;
    assert_int_equal(pthread_create(&th[t], NULL, gf_writer, &args[t]), 0);
  }
  for (int t = 0; t < GF_T; t++) pthread_join(th[t], NULL);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  sl_store_close(st);
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  sl_view *v;
  assert_int_equal(sl_view_begin(st, &v), 0);
  sl_counts c;
  assert_int_equal(sl_view_counts(v, &c), 0);
  gf_ids g = {calloc(c.nodes + 1, sizeof *g.ids), 0};
  assert_int_equal(sl_view_all_nodes(v, gf_collect, &g), 0);
  int *seen = calloc(GF_T * GF_N, sizeof *seen);
  for (size_t k = 0; k < g.n; k++) {
    sl_value t, i;
    assert_int_equal(sl_view_node_prop(v, g.ids[k], "t", &t), 0);
    assert_int_equal(sl_view_node_prop(v, g.ids[k], "i", &i), 0);
    assert_true(t.u.i >= 0 && t.u.i < GF_T && i.u.i >= 0 && i.u.i < GF_N);
    seen[t.u.i * GF_N + i.u.i]++;
  }
  size_t acked = 0, failed = 0;
  for (int t = 0; t < GF_T; t++)
    for (int i = 0; i < GF_N; i++) {
      int n = seen[t * GF_N + i];
      assert_true(n <= 1);                                /* none applied twice */
      if (args[t].acked[i]) assert_int_equal(n, 1);       /* none acknowledged lost */
      if (t == 0 && i % 7 == 3) assert_int_equal(n, 0);   /* none aborted applied */
      if (code == -ENOSPC && args[t].failed[i]) assert_int_equal(n, 0); /* cut back */
      acked += args[t].acked[i];
      failed += args[t].failed[i];
    }
  fprintf(stderr, "store_group_faults: point %d code %d: %zu acknowledged, %zu failed, %zu in the store\n", (int)point,
          code, acked, failed, g.n);
  assert_true(failed > 0);
  assert_int_equal(c.applied_txid, g.n);
  sl_view_end(v);
  sl_store_close(st);
  free(seen);
  free(g.ids);
  free(args);
  done_dir(dir);
}

static void store_group_faults(void **state) {
  (void)state;
  memset(gf_pad, 'x', sizeof gf_pad);
  gf_run(SL_FAULT_LOG_WRITE, -ENOSPC, 40, false); /* a group cut back; the store goes on */
  gf_run(SL_FAULT_LOG_WRITE, -EIO, 60, false);    /* FAILED mid-run */
  gf_run(SL_FAULT_LOG_FSYNC, -EIO, 30, false);    /* a group's fdatasync fails */
  gf_run(SL_FAULT_LOG_FSYNC, -EIO, 30, true);     /* ... on the log's sync-ahead thread */
}

static void store_concurrent_writers(void **state) {
  (void)state;
  char *dir = new_dir("store_writers");
  sl_store *st = create_open(dir, NULL);
  enum { T = 4, N = 500 };
  pthread_t th[T];
  writer_arg args[T];
  uint64_t *all = calloc(T * N, sizeof *all);
  uint64_t t0 = sl_mono_ns();
  for (int i = 0; i < T; i++) {
    args[i] = (writer_arg){st, N, all + i * N};
    assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    void *r;
    pthread_join(th[i], &r);
    assert_null(r);
  }
  double secs = (double)(sl_mono_ns() - t0) / 1e9;
  fprintf(stderr, "store_concurrent_writers: %d durable transactions from %d threads in %.3f s (%.0f tx/s)\n", T * N, T,
          secs, T * N / secs);
  qsort(all, T * N, sizeof *all, cmp_u64);
  for (uint64_t i = 0; i < T * N; i++) assert_int_equal(all[i], i + 1);
  assert_true(sl_log_durable_txid(sl_store_log(st)) >= T * N);
  sl_counts c = counts_of(st);
  assert_int_equal(c.nodes, T * N);
  assert_int_equal(c.applied_txid, T * N);
  sl_store_close(st);
  free(all);
  done_dir(dir);
}

static void store_writer_lock(void **state) {
  (void)state;
  char *dir = new_dir("store_lock");
  sl_store *st = create_open(dir, NULL), *st2;
  ERR(SL_ELOCKED, sl_store_open(dir, 0, &st2));
  /* A reader in the writer's process would re-initialise LMDB's lock file
   * under it (ONE ENVIRONMENT PER PROCESS, store.c): refused too, also
   * through another name for the directory; a reader in another process
   * is welcome. */
  ERR(SL_ELOCKED, sl_store_open(dir, SL_OPEN_RDONLY, &st2));
  char *alias = NULL;
  assert_true(asprintf(&alias, "%s/.", dir) > 0);
  ERR(SL_ELOCKED, sl_store_open(alias, SL_OPEN_RDONLY, &st2));
  free(alias);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (sl_store_open(dir, SL_OPEN_RDONLY, &st2)) _exit(1);
    sl_store_close(st2);
    _exit(0);
  }
  int rd_status;
  waitpid(pid, &rd_status, 0);
  assert_true(WIFEXITED(rd_status) && WEXITSTATUS(rd_status) == 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(sl_store_open(dir, 0, &st2) == SL_ELOCKED ? 0 : 1);
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  sl_store_close(st);
  OK(sl_store_open(dir, 0, &st));
  sl_store_close(st);
  done_dir(dir);
}

/* ---- power loss ----------------------------------------------------------------------------------- */
/* A child opens the store, commits n pairs and exits without closing. */
static void die_open(const char *dir, unsigned flags, int n) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    sl_store *st;
    if (sl_store_open(dir, flags, &st)) _exit(2);
    for (int i = 0; i < n; i++) {
      uint64_t txid;
      if (commit_pair(st, (uint64_t)i, &txid)) _exit(3);
    }
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void fake_other_boot(const char *dir, bool trash_lmdb) {
  char *p = sub(dir, "writer.lock");
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(p, 100, &buf, &len));
  assert_true(len > 5 && memcmp(buf, "open ", 5) == 0);
  free(buf);
  FILE *f = fopen(p, "w");
  fputs("open 00000000-0000-0000-0000-000000000000\n", f);
  fclose(f);
  free(p);
  if (trash_lmdb) {
    p = sub(dir, "data.mdb");
    int fd = open(p, O_WRONLY);
    char junk[8192];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 0), sizeof junk);
    close(fd);
    free(p);
  }
}

/* Flip one hex digit of the saved LMDB meta page in DIR/checkpoint. */
static void corrupt_checkpoint(const char *dir) {
  char *p = sub(dir, "checkpoint");
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(p, 1000, &buf, &len));
  assert_true(len > 40);
  buf[len - 20] = buf[len - 20] == '0' ? '1' : '0';
  FILE *f = fopen(p, "w");
  assert_int_equal(fwrite(buf, 1, len, f), len);
  fclose(f);
  free(buf);
  free(p);
}

/* DIR/checkpoint as stores wrote it before they saved LMDB's meta page. */
static void write_old_checkpoint(const char *dir, uint64_t txid) {
  char text[32];
  int n = snprintf(text, sizeof text, "%" PRIu64 "\n", txid);
  OK(sl_write_file_atomic(dir, "checkpoint", text, (size_t)n));
}

static bool checkpoint_has_meta(const char *dir, uint64_t *txid) {
  char *p = sub(dir, "checkpoint");
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(p, 1000, &buf, &len));
  char *nl = memchr(buf, '\n', len);
  *txid = strtoull((char *)buf, NULL, 10);
  bool has = nl && (size_t)(nl + 1 - (char *)buf) + 10 < len && memcmp(nl + 1, "lmdb-meta ", 10) == 0;
  free(buf);
  free(p);
  return has;
}

static void store_power_loss_rebuild(void **state) {
  (void)state;
  char *dir = new_dir("store_power");
  OK(sl_store_create(dir, NULL));
  die_open(dir, 0, 50);
  sl_store *st;
  /* The same boot: LMDB is trusted (the page cache has it). */
  OK(sl_store_open(dir, 0, &st));
  assert_int_equal(counts_of(st).applied_txid, 50);
  sl_store_close(st);
  die_open(dir, 0, 30);
  fake_other_boot(dir, true); /* torn beyond use: only a rebuild opens it */
  OK(sl_store_open(dir, 0, &st));
  sl_counts c = counts_of(st);
  assert_int_equal(c.applied_txid, 80);
  assert_int_equal(c.nodes, 160);
  compare_with_replay(st, "store_power_replay");
  sl_store_close(st);

  /* A checkpoint file whose saved meta fails its CRC, or one from before
   * meta pages were saved: the log reaches txid 1, so LMDB is rebuilt. */
  die_open(dir, 0, 10);
  fake_other_boot(dir, true);
  corrupt_checkpoint(dir);
  OK(sl_store_open(dir, 0, &st));
  assert_int_equal(counts_of(st).applied_txid, 90);
  compare_with_replay(st, "store_power_replay");
  sl_store_close(st);
  die_open(dir, 0, 10);
  fake_other_boot(dir, true);
  write_old_checkpoint(dir, 90);
  OK(sl_store_open(dir, 0, &st));
  assert_int_equal(counts_of(st).applied_txid, 100);
  sl_store_close(st);
  /* An old checkpoint file after a clean close: opens, and the new format replaces it. */
  write_old_checkpoint(dir, 100);
  OK(sl_store_open(dir, 0, &st));
  assert_int_equal(counts_of(st).applied_txid, 100);
  sl_store_close(st);
  uint64_t cp;
  assert_true(checkpoint_has_meta(dir, &cp) && cp == 100);

  /* A store whose log does not reach txid 1 (here: a restored one) comes
   * back from its checkpoint; with a damaged checkpoint it cannot. */
  char *dir2 = new_dir("store_power_base");
  sl_store_options o = {.first_txid = 100};
  OK(sl_store_create(dir2, &o));
  die_open(dir2, 0, 3);
  fake_other_boot(dir2, true);
  OK(sl_store_open(dir2, 0, &st));
  sl_counts c2 = counts_of(st);
  assert_int_equal(c2.applied_txid, 102);
  assert_int_equal(c2.nodes, 6);
  sl_store_close(st);
  die_open(dir2, 0, 3);
  fake_other_boot(dir2, true);
  corrupt_checkpoint(dir2);
  ERR(SL_ECORRUPT, sl_store_open(dir2, 0, &st));

  /* A no-log store (written without sync) may be torn after a power loss:
   * refused, read-only too, until its owner rebuilds it. */
  char *dir3 = new_dir("store_power_nolog");
  sl_store_options on = {.no_log = true};
  OK(sl_store_create(dir3, &on));
  die_open(dir3, SL_OPEN_NOLOG, 0);
  OK(sl_store_open(dir3, SL_OPEN_RDONLY, &st)); /* the same boot: fine */
  sl_store_close(st);
  fake_other_boot(dir3, false);
  ERR(SL_ECORRUPT, sl_store_open(dir3, SL_OPEN_NOLOG, &st));
  ERR(SL_ECORRUPT, sl_store_open(dir3, SL_OPEN_RDONLY, &st));
  done_dir(dir);
  done_dir(dir2);
  done_dir(dir3);
}

/* ---- checkpoints ---------------------------------------------------------------------------------- */
static void store_checkpoint_prunes(void **state) {
  (void)state;
  char *dir = new_dir("store_ckpt");
  sl_store_options o = {.segment_size = 4096};
  sl_store *st = create_open(dir, &o);
  char *logdir = sub(dir, "log");
  for (uint64_t i = 0; i < 300; i++) {
    uint64_t txid;
    OK(commit_pair(st, i, &txid));
  }
  OK(sl_store_checkpoint(st));
  char *p = sub(dir, "checkpoint");
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(p, 1000, &buf, &len));
  /* The txid, then (a store with a log) the LMDB meta page a power loss restores. */
  assert_true(len > 14);
  assert_memory_equal(buf, "300\nlmdb-meta ", 14);
  free(buf);
  sl_seg_info *segs;
  size_t n;
  OK(sl_log_list(logdir, &segs, &n));
  fprintf(stderr, "store_checkpoint_prunes: %zu segments left, the oldest starts at txid %" PRIu64 "\n", n,
          segs[0].first_txid);
  assert_true(segs[0].first_txid > 1);
  free(segs);

#ifdef SL_FAULT_INJECTION
  /* A failed sync is final for this open: the checkpoint fails, no sync is
   * tried again (a later one that succeeds proves nothing), the store takes
   * no more writes, close does not claim a clean state, and the next open
   * restores LMDB to the last synced checkpoint and replays the log. */
  sl_fault_set(SL_FAULT_STORE_CHECKPOINT, -EIO, 0, 1);
  ERR(-EIO, sl_store_checkpoint(st));
  assert_true(sl_store_checkpoint(st) < 0);
  uint64_t txid;
  assert_true(commit_pair(st, 300, &txid) < 0);
  sl_store_close(st);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  char *lock = sub(dir, "writer.lock");
  OK(sl_read_file(lock, 100, &buf, &len));
  assert_true(len >= 11 && memcmp(buf, "sync-failed", 11) == 0);
  free(buf);
  free(lock);
  OK(sl_store_open(dir, 0, &st));
  assert_int_equal(counts_of(st).applied_txid, 300);
  OK(commit_pair(st, 300, &txid));
  assert_int_equal(txid, 301);
#endif
  sl_store_close(st);
  free(p);
  free(logdir);
  done_dir(dir);
}

/* ---- space: data.mdb tracks the live data, not the write history ------------------------------- */
static uint64_t space_check(sl_store *st, const char *when) {
  sl_space sp;
  OK(sl_store_space(st, &sp));
  uint64_t used = sp.pages_used * sp.page_size, live = (sp.pages_used - sp.pages_free) * sp.page_size;
  fprintf(stderr, "%s: data.mdb uses %" PRIu64 " KiB, %" PRIu64 " KiB of them live\n", when, used >> 10,
          live >> 10);
  assert_true(sp.pages_free <= sp.pages_used);
  assert_true(used <= 2 * live + (16u << 20));
  return used;
}

/* Many small commits with the default segment size (so no checkpoint by log
 * bytes): the pin on the last checkpoint used to let data.mdb grow by a
 * quarter per checkpoint for ever (6,000 commits: 80 MB for 5 MB of data). */
static void store_space_tracks_data(void **state) {
  (void)state;
  char *dir = new_dir("store_space");
  sl_store *st = create_open(dir, NULL);
  for (uint64_t i = 0; i < 6000; i++) {
    uint64_t txid;
    OK(commit_pair(st, i, &txid));
    if (i % 2000 == 1999) space_check(st, "store_space_tracks_data");
  }
  sl_store_close(st);
  done_dir(dir);
}

/* Bulk transactions back to back (each rewrites random nodes, so it frees
 * pages across the store, and its record is large enough for the log to
 * sync ahead): the writer leaves wlock only for moments, and the checkpoint
 * thread, which pins under wlock, used to wait seconds for it while the
 * freed pages piled up (a 1M-node load left data.mdb at 9x its live pages). */
static void store_space_bounded_under_bulk_writes(void **state) {
  (void)state;
  /* Cold nodes with a padding too, so that the live pages (not the 8 MiB
   * budget's floor) dominate the bound checked. */
  enum { NODES = 40000, COLD = 30000, TXS = 120, SETS = 3000 };
  static char pad[400];
  memset(pad, 'p', sizeof pad - 1);
  uint64_t rng = tu_seed("store_space_bounded_under_bulk_writes");
  char *dir = new_dir("store_space_bulk");
  sl_store *st = create_open(dir, NULL);
  const char *l[] = {"Bulk"};
  sl_tx *tx;
  for (uint64_t i = 0; i < NODES + COLD; i++) {
    if (i % 10000 == 0) OK(sl_tx_begin(st, &tx));
    sl_prop p[] = {{"n", vint((int64_t)i)}, {"s", vstr(i < NODES ? "a value to rewrite" : pad)}};
    OK(sl_tx_create_node(tx, i + 1, l, 1, p, 2, NULL));
    if (i % 10000 == 9999) OK(sl_tx_commit(tx, NULL));
  }
  for (uint64_t t = 0; t < TXS; t++) {
    OK(sl_tx_begin(st, &tx));
    for (unsigned k = 0; k < SETS; k++) {
      sl_value v = vint((int64_t)(t * SETS + k));
      OK(sl_tx_set_node_prop(tx, 1 + tu_rand_below(&rng, NODES), "n", &v));
    }
    OK(sl_tx_commit(tx, NULL));
    if (t % 40 == 39) space_check(st, "store_space_bounded_under_bulk_writes");
  }
  sl_store_close(st);
  done_dir(dir);
}

/* shiplog compact: a store grown by an older shiplog (made here by holding a
 * read view, as the old pin did) shrinks to its live data, keeps every
 * transaction, and a power loss after it restores the new checkpoint even
 * with the log pruned (no rebuild from txid 1 possible). */
static void store_compact(void **state) {
  (void)state;
  char *dir = new_dir("store_compact");
  sl_store_options o = {.segment_size = 64 << 10};
  sl_store *st = create_open(dir, &o), *other;
  sl_view *old;
  OK(sl_view_begin(st, &old)); /* LMDB reuses nothing freed from now on */
  for (uint64_t i = 0; i < 2000; i++) {
    uint64_t txid;
    OK(commit_pair(st, i, &txid));
  }
  sl_view_end(old);
  sl_space sp;
  OK(sl_store_space(st, &sp));
  assert_true(sp.pages_free > sp.pages_used / 2);
  /* Offline only. */
  ERR(SL_ELOCKED, sl_store_compact(dir, &(uint64_t){0}, &(uint64_t){0}));
  sl_store_close(st);
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t reader = fork(); /* a reader in another process (LMDB's lock shows only those) */
  assert_true(reader >= 0);
  if (reader == 0) {
    if (sl_store_open(dir, SL_OPEN_RDONLY, &other)) _exit(2);
    if (write(ready[1], "r", 1) != 1) _exit(3);
    pause();
    _exit(0);
  }
  char r;
  assert_int_equal(read(ready[0], &r, 1), 1);
  ERR(SL_ELOCKED, sl_store_compact(dir, &(uint64_t){0}, &(uint64_t){0}));
  kill(reader, SIGKILL);
  waitpid(reader, NULL, 0);
  close(ready[0]);
  close(ready[1]);
  uint64_t before, after;
  OK(sl_store_compact(dir, &before, &after));
  fprintf(stderr, "store_compact: data.mdb %" PRIu64 " -> %" PRIu64 " bytes\n", before, after);
  assert_true(after < before / 2);
  OK(sl_store_open(dir, 0, &st));
  sl_counts c = counts_of(st);
  assert_int_equal(c.applied_txid, 2000);
  assert_int_equal(c.nodes, 4000);
  space_check(st, "store_compact");
  sl_store_close(st);
  die_open(dir, 0, 10);
  fake_other_boot(dir, true);
  sl_seg_info *segs;
  size_t n;
  char *logdir = sub(dir, "log");
  OK(sl_log_list(logdir, &segs, &n));
  assert_true(segs[0].first_txid > 1);
  free(segs);
  OK(sl_store_open(dir, 0, &st));
  c = counts_of(st);
  assert_int_equal(c.applied_txid, 2010);
  assert_int_equal(c.nodes, 4020);
  sl_store_close(st);
  free(logdir);
  done_dir(dir);
}

/* ---- recovery replays the log past LMDB ---------------------------------------------------------- */
static void copy_file(const char *from, const char *to) {
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(from, 1u << 30, &buf, &len));
  FILE *f = fopen(to, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(buf, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  free(buf);
}

/* Put back an older (or another store's) data.mdb, as if LMDB had lost
 * commits the log has. */
static void swap_in_lmdb(const char *dir, const char *saved) {
  char *data = sub(dir, "data.mdb"), *lock = sub(dir, "lock.mdb");
  copy_file(saved, data);
  unlink(lock);
  free(data);
  free(lock);
}

static void store_replays_log_tail(void **state) {
  (void)state;
  char *dir = new_dir("store_tail");
  sl_store *st = create_open(dir, NULL);
  uint8_t id[SL_STORE_ID_SIZE];
  memcpy(id, sl_store_id(st), sizeof id);
  sl_store_close(st);
  char *data = sub(dir, "data.mdb"), *saved = sub(dir, "data.mdb.empty");
  copy_file(data, saved);
  /* More frames than one replay batch holds, appended by sl_store_apply_batch. */
  enum { N = 10050, B = 1000 };
  OK(sl_store_open(dir, 0, &st));
  Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
  Shiplog__Op op = SHIPLOG__OP__INIT, *ops[] = {&op};
  op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
  op.create_node = &cn;
  uint8_t *bufs[B];
  size_t lens[B];
  for (int i = 0; i < B; i++) bufs[i] = malloc(64);
  for (uint64_t done = 0; done < N;) {
    size_t n = SL_MIN(B, N - done);
    for (size_t i = 0; i < n; i++) {
      cn.id = 2 * (done + i) + 1; /* gaps in the ids */
      lens[i] = pack_tx(done + i + 1, 1000000 + done + i, ops, 1, bufs[i]);
    }
    OK(sl_store_apply_batch(st, (const uint8_t *const *)bufs, lens, n));
    done += n;
  }
  for (int i = 0; i < B; i++) free(bufs[i]);
  assert_int_equal(counts_of(st).applied_txid, N);
  sl_store_close(st);

  swap_in_lmdb(dir, saved); /* LMDB at txid 0, the log at N */
  OK(sl_store_open(dir, 0, &st));
  sl_counts c = counts_of(st);
  assert_int_equal(c.applied_txid, N);
  assert_int_equal(c.nodes, N);
  assert_int_equal(c.next_node_id, 2 * N);
  compare_with_replay(st, "store_tail_replay");
  sl_store_close(st);

  /* LMDB ahead of the log: files of different times mixed. */
  char *dir2 = new_dir("store_tail_ahead");
  sl_store_options o = {.store_id = id};
  st = create_open(dir2, &o);
  for (uint64_t i = 0; i < 10; i++) {
    uint64_t txid;
    OK(commit_pair(st, i, &txid));
  }
  sl_store_close(st);
  swap_in_lmdb(dir2, data);
  ERR(SL_ECORRUPT, sl_store_open(dir2, 0, &st));
  free(data);
  free(saved);
  done_dir(dir);
  done_dir(dir2);
}

/* Every file of DIR/log (names, sizes and bytes) as one string, to see that
 * a refused open changed nothing. */
static char *log_files(const char *dir) {
  char *logdir = sub(dir, "log"), *out = NULL;
  size_t outlen = 0;
  FILE *mem = open_memstream(&out, &outlen);
  struct dirent **names;
  int n = scandir(logdir, &names, NULL, alphasort);
  assert_true(n >= 0);
  for (int i = 0; i < n; i++) {
    char *p = sub(logdir, names[i]->d_name);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (names[i]->d_type == DT_REG && sl_read_file(p, 1u << 30, &buf, &len) == 0) {
      fprintf(mem, "%s %zu\n", names[i]->d_name, len);
      fwrite(buf, 1, len, mem);
    }
    free(buf);
    free(p);
    free(names[i]);
  }
  free(names);
  fclose(mem);
  free(logdir);
  return out;
}

/* The last frame damaged and no durable mark to say it was synced: it
 * looks like a torn tail, but LMDB applied its txid, so it is damage. The
 * open is refused before recovery cuts it (it used to cut the frame, then
 * refuse: a failed open that changed the log). */
static void store_damaged_applied_tail_kept(void **state) {
  (void)state;
  for (int mark = 0; mark < 2; mark++) { /* 0: missing, 1: damaged */
    char *dir = new_dir("store_damaged_tail");
    sl_store *st = create_open(dir, NULL);
    for (uint64_t i = 0; i < 5; i++) {
      uint64_t txid;
      OK(commit_pair(st, i, &txid));
    }
    sl_store_close(st);
    char *seg = sub(dir, "log/00000000000000000001.seg"), *durable = sub(dir, "log/durable");
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    int fd = open(seg, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, sb.st_size - 1), 1);
    b ^= 0x5a; /* the last byte of txid 5's payload: its CRC fails */
    assert_int_equal(pwrite(fd, &b, 1, sb.st_size - 1), 1);
    close(fd);
    if (mark) {
      fd = open(durable, O_RDWR);
      assert_int_equal(pwrite(fd, "\xff\xff", 2, 24), 2); /* its CRC */
      close(fd);
    } else {
      assert_int_equal(unlink(durable), 0);
    }
    char *before = log_files(dir);
    tu_capture_begin();
    ERR(SL_ECORRUPT, sl_store_open(dir, 0, &st));
    char *err = tu_capture_end();
    char *after = log_files(dir);
    if (strcmp(before, after) != 0) fail_msg("the refused open (%s mark) changed the log", mark ? "damaged" : "missing");
    if (!strstr(err, "00000000000000000001.seg") || !strstr(err, "offset") || !strstr(err, "not a torn tail"))
      fail_msg("the refusal does not name the segment and offset: %s", err);
    assert_null(strstr(err, "cutting"));
    ERR(SL_ECORRUPT, sl_store_open(dir, 0, &st)); /* and again: still there to refuse */
    free(err);
    free(before);
    free(after);
    free(seg);
    free(durable);
    done_dir(dir);
  }
}

/* ---- every I/O fault point under a commit workload -------------------------------------------------- */
#ifdef SL_FAULT_INJECTION
/* What a fault child reports through its pipe: each acknowledged txid, then
 * the passes of the armed point. */
struct fault_msg {
  char kind; /* 'a' acknowledged, 'h' hits, 'e' errors */
  uint64_t v;
};

static void fault_child(const char *dir, int p, int code, int skip_n, int times, int wfd) {
  sl_store *st;
  if (sl_store_open(dir, 0, &st)) _exit(2);
  uint64_t hits = sl_fault_hits((enum sl_fault_point)p), errors = 0;
  sl_fault_set((enum sl_fault_point)p, code, skip_n, times);
  for (uint64_t i = 0; i < 120; i++) {
    struct fault_msg m = {'a', 0};
    if (commit_pair(st, i, &m.v)) errors++;
    else if (write(wfd, &m, sizeof m) != sizeof m) _exit(3);
  }
  sl_store_close(st);
  struct fault_msg h = {'h', sl_fault_hits((enum sl_fault_point)p) - hits}, e = {'e', errors};
  if (write(wfd, &h, sizeof h) != sizeof h || write(wfd, &e, sizeof e) != sizeof e) _exit(3);
  _exit(0);
}

/* One run: a child commits while point p fails; the parent reopens (after a
 * simulated crash, as a new boot) and checks every acknowledged commit. */
static void fault_run(int p, int code, int persistent, uint64_t *rng) {
  static int boots;
  bool crashes = code == SL_FAULT_CRASH || code == SL_FAULT_TEAR;
  char *dir = new_dir("store_fault");
  sl_store_options o = {.segment_size = 4096};
  OK(sl_store_create(dir, &o));
  char *logdir = sub(dir, "log");
  /* A consumer at 0 keeps every segment (the state is then compared with a
   * replay of the whole log); without one checkpoints prune the log, and a
   * power loss restores LMDB's last checkpoint. */
  bool keep = p != SL_FAULT_LOG_UNLINK && tu_rand_below(rng, 2);
  if (keep) OK(sl_log_consumer_set(logdir, "test", 0));
  /* Frame writes and syncs pass every commit, the others a few times a run. */
  int skip_n = (int)tu_rand_below(rng, p <= SL_FAULT_LOG_FSYNC ? 30 : p == SL_FAULT_STORE_LOCK ? 1 : 3);
  int fds[2];
  pid_t pid = fork_piped(&fds[0], &fds[1]);
  if (pid == 0) fault_child(dir, p, code, skip_n, persistent ? -1 : 1, fds[1]);
  uint64_t acked = 0, hits = 0, errors = 0;
  struct fault_msg m;
  while (read(fds[0], &m, sizeof m) == sizeof m) {
    if (m.kind == 'a') {
      assert_true(m.v > acked);
      acked = m.v;
    } else if (m.kind == 'h') {
      hits = m.v;
    } else {
      errors = m.v;
    }
  }
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  bool crashed = WEXITSTATUS(status) == SL_FAULT_CRASH_EXIT;
  if (!crashed && WEXITSTATUS(status) != 0) fail_msg("point %d code %d: child exit %d", p, code, WEXITSTATUS(status));
  if (crashes && !crashed && hits > (uint64_t)skip_n) fail_msg("point %d: passed but no crash", p);
  if (!crashes && hits <= (uint64_t)skip_n) fail_msg("point %d was not reached", p);
  char boot[32];
  snprintf(boot, sizeof boot, "test-boot-%d", ++boots);
  if (crashed) setenv("SL_TEST_BOOT_ID", boot, 1); /* the machine comes back up */
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  sl_counts c = counts_of(st);
  if (c.applied_txid < acked) fail_msg("point %d code %d: acknowledged txid %" PRIu64 " lost", p, code, acked);
  assert_int_equal(sl_log_next_txid(sl_store_log(st)), c.applied_txid + 1);
  check_pairs(st);
  sl_seg_info *segs;
  size_t nseg;
  OK(sl_log_list(logdir, &segs, &nseg));
  if (segs[0].first_txid == 1) compare_with_replay(st, "store_fault_replay");
  free(segs);
  uint64_t txid;
  OK(commit_pair(st, 1000, &txid));
  assert_int_equal(txid, c.applied_txid + 1);
  fprintf(stderr, "store_fault_points: point %2d %-6s %s after %d passes: %s, %" PRIu64
          " failed commits, recovered at txid %" PRIu64 " (last acknowledged %" PRIu64 ")\n", p,
          code == SL_FAULT_CRASH ? "crash" : code == SL_FAULT_TEAR ? "tear" : sl_errname(code),
          persistent ? "for ever" : "once", skip_n, crashed ? "crashed" : "ran", errors, c.applied_txid, acked);
  sl_store_close(st);
  unsetenv("SL_TEST_BOOT_ID");
  free(logdir);
  done_dir(dir);
}
#endif

/* ---- power loss on a primary whose log is pruned ----------------------------------------------------- */
#ifdef SL_FAULT_INJECTION
/* LMDB is written without sync: what a power loss leaves of data.mdb is,
 * page by page, where it differs from its content at the last sync
 * (SYNCED, kept by the store in test builds: $SL_TEST_LMDB_SYNCED), the old
 * page, the new one, zeros, or a sector-wise mix of old and new. */
static void tear_lmdb(const char *dir, const char *synced, uint64_t *rng, uint64_t *torn) {
  enum { PAGE = 4096 };
  char *p = sub(dir, "data.mdb");
  int fd = open(p, O_RDWR), sfd = open(synced, O_RDONLY);
  assert_true(fd >= 0 && sfd >= 0);
  struct stat sb;
  assert_int_equal(fstat(fd, &sb), 0);
  static uint8_t now[PAGE], old[PAGE];
  for (off_t off = 0; off < sb.st_size; off += PAGE) {
    assert_int_equal(pread(fd, now, PAGE, off), PAGE);
    ssize_t r = pread(sfd, old, PAGE, off);
    if (r < PAGE) memset(old + (r > 0 ? r : 0), 0, (size_t)(PAGE - (r > 0 ? r : 0)));
    if (memcmp(now, old, PAGE) == 0) continue;
    switch (tu_rand_below(rng, 4)) {
    case 0: memcpy(now, old, PAGE); break;
    case 1: continue; /* the new page made it */
    case 2: memset(now, 0, PAGE); break;
    default: {
      size_t cut = 512 * (size_t)tu_rand_below(rng, PAGE / 512);
      memcpy(now + cut, old + cut, PAGE - cut);
    }
    }
    assert_int_equal(pwrite(fd, now, PAGE, off), PAGE);
    (*torn)++;
  }
  close(fd);
  close(sfd);
  free(p);
}

/* Commits pairs from the store's applied txid on (txid i + 1 is pair i, as
 * in the model) until point p loses power. */
static void pruned_child(const char *dir, int p, int code, int skip_n, int wfd) {
  sl_store *st;
  if (sl_store_open(dir, 0, &st)) _exit(2);
  sl_view *v;
  sl_counts c;
  if (sl_view_begin(st, &v) || sl_view_counts(v, &c)) _exit(2);
  sl_view_end(v);
  sl_fault_set((enum sl_fault_point)p, code, skip_n, 1);
  for (uint64_t i = c.applied_txid; i < c.applied_txid + 400; i++) {
    uint64_t txid;
    if (commit_pair(st, i, &txid)) _exit(4);
    if (write(wfd, &txid, sizeof txid) != sizeof txid) _exit(3);
  }
  sl_store_close(st);
  _exit(0);
}

/* Commit times of the store under test and its model agree. */
static uint64_t fixed_clock(void) { return 1700000000000000ull; }
#endif

/* A primary whose checkpoints pruned its log loses power
 * (LMDB torn page by page since its last sync) at each fault point a
 * writer passes, in crash and tear modes, 20 times in a row. Each time it reopens from its
 * checkpoint with every acknowledged commit, and equals the model (the same
 * pairs committed into a store that never lost power). */
static void store_power_loss_pruned(void **state) {
  (void)state;
#ifndef SL_FAULT_INJECTION
  skip();
#else
  uint64_t rng = tu_seed("store_power_loss_pruned");
  char *dir = new_dir("store_pruned"), *mdir = new_dir("store_pruned_model");
  char *synced = sub(dir, "data.mdb.synced"), *logdir = sub(dir, "log");
  sl_store_options o = {.segment_size = 4096, .map_size = 32 << 20};
  OK(sl_store_create(dir, &o));
  OK(sl_store_create(mdir, &o));
  setenv("SL_TEST_LMDB_SYNCED", synced, 1);
  sl_clock_set_for_test(fixed_clock);
  const int points[] = {SL_FAULT_LOG_WRITE,    SL_FAULT_LOG_FSYNC,     SL_FAULT_STORE_CHECKPOINT, SL_FAULT_FILE_WRITE,
                        SL_FAULT_FILE_FSYNC,   SL_FAULT_FILE_RENAME,   SL_FAULT_LOG_UNLINK,       SL_FAULT_LOG_SEG_CREATE,
                        SL_FAULT_LOG_SEG_FSYNC, SL_FAULT_LOG_DIR_FSYNC};
  uint64_t model_txid = 0, pruned = 0;
  enum { ROUNDS = 2 * SL_ARRAY_LEN(points) };
  for (int round = 0; round < ROUNDS; round++) {
    int p = points[round / 2], code = round % 2 ? SL_FAULT_TEAR : SL_FAULT_CRASH;
    int skip_n = (int)tu_rand_below(&rng, p <= SL_FAULT_LOG_FSYNC ? 300 : 12);
    int fds[2];
    pid_t pid = fork_piped(&fds[0], &fds[1]);
    if (pid == 0) pruned_child(dir, p, code, skip_n, fds[1]);
    uint64_t txid, acked = 0;
    while (read(fds[0], &txid, sizeof txid) == sizeof txid) acked = txid;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    bool crashed = WEXITSTATUS(status) == SL_FAULT_CRASH_EXIT;
    if (!crashed && WEXITSTATUS(status) != 0) fail_msg("round %d: child exit %d", round, WEXITSTATUS(status));
    uint64_t torn = 0;
    char boot[48];
    if (crashed) {
      tear_lmdb(dir, synced, &rng, &torn);
      snprintf(boot, sizeof boot, "pruned-boot-%d", round);
      setenv("SL_TEST_BOOT_ID", boot, 1); /* the machine comes back up */
    }
    sl_seg_info *segs;
    size_t nseg;
    OK(sl_log_list(logdir, &segs, &nseg));
    uint64_t first = segs[0].first_txid;
    free(segs);
    if (first > 1) pruned++;
    sl_store *st, *ref;
    OK(sl_store_open(dir, 0, &st));
    sl_counts c = counts_of(st);
    if (c.applied_txid < acked) fail_msg("round %d: acknowledged txid %" PRIu64 " lost (store at %" PRIu64 ")", round, acked, c.applied_txid);
    check_pairs(st);
    OK(sl_store_open(mdir, 0, &ref));
    for (; model_txid < c.applied_txid; model_txid++) OK(commit_pair(ref, model_txid, &txid));
    compare_stores(st, ref);
    sl_store_close(ref);
    fprintf(stderr, "store_power_loss_pruned: round %2d: point %2d %s after %3d passes: %s, %" PRIu64
            " LMDB pages torn, log from txid %" PRIu64 ", recovered at txid %" PRIu64 " (last acknowledged %" PRIu64 ")\n",
            round, p, code == SL_FAULT_CRASH ? "crash" : "tear ", skip_n, crashed ? "power lost" : "ran", torn, first,
            c.applied_txid, acked);
    sl_store_close(st);
    sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  }
  if (pruned < ROUNDS / 2) fail_msg("the log was pruned before only %" PRIu64 " of %d power losses", pruned, ROUNDS);
  unsetenv("SL_TEST_BOOT_ID");
  unsetenv("SL_TEST_LMDB_SYNCED");
  sl_clock_set_for_test(NULL);
  free(synced);
  free(logdir);
  done_dir(dir);
  done_dir(mdir);
#endif
}

/* ---- a power loss while a checkpoint is in flight ------------------------------------------------ */
#ifdef SL_FAULT_INJECTION
/* Holds the checkpoint thread at one step of a checkpoint (after `skip`
 * checkpoints that pass it) until released; checkpoints taken by the
 * child's main thread (its open) pass. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t main;
  enum sl_checkpoint_step step;
  int skip;
  bool held, release;
} hold = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void hold_step(sl_store *st, enum sl_checkpoint_step step) {
  (void)st;
  if (pthread_equal(pthread_self(), hold.main) || step != hold.step) return;
  pthread_mutex_lock(&hold.mu);
  if (!hold.held && hold.skip-- <= 0) {
    hold.held = true;
    while (!hold.release) pthread_cond_wait(&hold.cv, &hold.mu);
  }
  pthread_mutex_unlock(&hold.mu);
}

/* Acknowledged while the checkpoint is held. They must not make a
 * checkpoint due again: a pair frees about ten pages, the pin's budget is
 * at least 2,048 (checkpoint.c, PIN_BUDGET_MIN), and past it a committer
 * waits for the held checkpoint (backpressure). */
enum { INFLIGHT_COMMITS = 40 };

/* Commits pairs (txid i + 1 is pair i) and acknowledges each through wfd;
 * once the checkpoint thread is held at `step`, INFLIGHT_COMMITS more, then
 * the power goes out: at the thread's next fault point once released
 * (crash_point; the commits go on meanwhile), or, with crash_point 0, at
 * the next commit's log sync while the thread is still held. */
static void inflight_child(const char *dir, enum sl_checkpoint_step step, int skip, int code, int crash_point,
                           int wfd) {
  sl_store *st;
  sl_view *v;
  sl_counts c;
  alarm(120); /* commits that wait for the held checkpoint would hang */
  if (sl_store_open(dir, 0, &st) || sl_view_begin(st, &v) || sl_view_counts(v, &c)) _exit(2);
  sl_view_end(v);
  hold.main = pthread_self();
  hold.step = step;
  hold.skip = skip;
  sl_test_checkpoint_step = hold_step;
  uint64_t during = 0;
  for (uint64_t i = c.applied_txid; i < c.applied_txid + 20000; i++) {
    uint64_t txid;
    if (commit_pair(st, i, &txid)) _exit(4);
    if (write(wfd, &txid, sizeof txid) != sizeof txid) _exit(3);
    pthread_mutex_lock(&hold.mu);
    if (hold.held && !hold.release && ++during == INFLIGHT_COMMITS) {
      if (crash_point) {
        sl_fault_set((enum sl_fault_point)crash_point, code, 0, 1);
        hold.release = true;
        pthread_cond_broadcast(&hold.cv);
      } else {
        sl_fault_set(SL_FAULT_LOG_FSYNC, code, 0, 1);
      }
    }
    pthread_mutex_unlock(&hold.mu);
  }
  _exit(5); /* the checkpoint was never held, or the power never went out */
}

static uint64_t checkpoint_txid(const char *dir) {
  char *p = sub(dir, "checkpoint");
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(p, 1000, &buf, &len));
  uint64_t txid = strtoull((const char *)buf, NULL, 10);
  free(buf);
  free(p);
  return txid;
}
#endif

/* Checkpoints run on the store's checkpoint thread while commits go on:
 * the thread is held at each step of a checkpoint (pinned, synced, file
 * written) while INFLIGHT_COMMITS commits are acknowledged, then the power
 * goes out (crash and tear; LMDB torn page by page since its last sync),
 * from a commit while the thread is held or from the thread itself once
 * released. Each time the store reopens from the checkpoint on disk with
 * every acknowledged commit and equals the model. */
static void store_checkpoint_in_flight(void **state) {
  (void)state;
#ifndef SL_FAULT_INJECTION
  skip();
#else
  uint64_t rng = tu_seed("store_checkpoint_in_flight");
  char *dir = new_dir("store_inflight"), *mdir = new_dir("store_inflight_model");
  char *synced = sub(dir, "data.mdb.synced");
  /* A checkpoint falls due once the pin outgrows its budget (every 200 or
   * so pairs), long before a segment's worth of log. */
  sl_store_options o = {.segment_size = 1 << 20, .map_size = 64 << 20};
  OK(sl_store_create(dir, &o));
  OK(sl_store_create(mdir, &o));
  setenv("SL_TEST_LMDB_SYNCED", synced, 1);
  sl_clock_set_for_test(fixed_clock);
  static const struct {
    enum sl_checkpoint_step step;
    int crash_point; /* 0: a commit's log sync, the thread held */
  } runs[] = {{SL_CKPT_STEP_PINNED, 0},
              {SL_CKPT_STEP_SYNCED, 0},
              {SL_CKPT_STEP_WRITTEN, 0},
              {SL_CKPT_STEP_PINNED, SL_FAULT_STORE_CHECKPOINT},
              {SL_CKPT_STEP_SYNCED, SL_FAULT_FILE_WRITE}};
  static const char *const step_names[] = {"pinned", "synced", "written"};
  uint64_t model_txid = 0;
  for (size_t round = 0; round < 2 * SL_ARRAY_LEN(runs); round++) {
    int code = round % 2 ? SL_FAULT_TEAR : SL_FAULT_CRASH, skip_n = (int)tu_rand_below(&rng, 4);
    enum sl_checkpoint_step step = runs[round / 2].step;
    int crash_point = runs[round / 2].crash_point;
    int fds[2];
    pid_t pid = fork_piped(&fds[0], &fds[1]);
    if (pid == 0) inflight_child(dir, step, skip_n, code, crash_point, fds[1]);
    uint64_t txid, acked = 0;
    while (read(fds[0], &txid, sizeof txid) == sizeof txid) acked = txid;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != SL_FAULT_CRASH_EXIT)
      fail_msg("round %zu: the child did not lose power (status 0x%x)", round, status);
    uint64_t torn = 0, ckpt = checkpoint_txid(dir);
    tear_lmdb(dir, synced, &rng, &torn);
    char boot[48];
    snprintf(boot, sizeof boot, "inflight-boot-%zu", round);
    setenv("SL_TEST_BOOT_ID", boot, 1); /* the machine comes back up */
    sl_store *st, *ref;
    OK(sl_store_open(dir, 0, &st));
    sl_counts c = counts_of(st);
    if (c.applied_txid < acked)
      fail_msg("round %zu: acknowledged txid %" PRIu64 " lost (store at %" PRIu64 ")", round, acked, c.applied_txid);
    /* The checkpoint on disk is at most the held one: the commits acknowledged meanwhile came after it. */
    if (acked < ckpt + INFLIGHT_COMMITS)
      fail_msg("round %zu: only %" PRIu64 " acknowledged, checkpoint at %" PRIu64, round, acked, ckpt);
    check_pairs(st);
    OK(sl_store_open(mdir, 0, &ref));
    for (; model_txid < c.applied_txid; model_txid++) OK(commit_pair(ref, model_txid, &txid));
    compare_stores(st, ref);
    sl_store_close(ref);
    fprintf(stderr, "store_checkpoint_in_flight: round %2zu: held %s after %d checkpoints, %s at %s: %" PRIu64
            " LMDB pages torn, checkpoint file at txid %" PRIu64 ", recovered at txid %" PRIu64
            " (last acknowledged %" PRIu64 ")\n", round, step_names[step], skip_n, code == SL_FAULT_CRASH ? "crash" : "tear",
            crash_point ? "the thread's next fault point" : "a commit's log sync", torn, ckpt, c.applied_txid, acked);
    sl_store_close(st);
    sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  }
  unsetenv("SL_TEST_BOOT_ID");
  unsetenv("SL_TEST_LMDB_SYNCED");
  sl_clock_set_for_test(NULL);
  free(synced);
  done_dir(dir);
  done_dir(mdir);
#endif
}

/* Every point a store passes (the log's, sl_write_file_atomic's, its own) x
 * {EIO, ENOSPC, power loss dropping or tearing unsynced writes}: after the
 * reopen every acknowledged commit is there, no commit is half applied, the
 * store equals a replay of its log and accepts the next commit. */
static void store_fault_points(void **state) {
  (void)state;
#ifndef SL_FAULT_INJECTION
  skip();
#else
  uint64_t rng = tu_seed("store_fault_points");
  const int points[] = {SL_FAULT_LOG_WRITE, SL_FAULT_LOG_FSYNC, SL_FAULT_LOG_SEG_CREATE, SL_FAULT_LOG_SEG_FSYNC,
                        SL_FAULT_LOG_DIR_FSYNC, SL_FAULT_LOG_UNLINK, SL_FAULT_FILE_RENAME, SL_FAULT_FILE_FSYNC,
                        SL_FAULT_STORE_CHECKPOINT, SL_FAULT_FILE_WRITE, SL_FAULT_STORE_LOCK};
  const struct {
    int code, persistent;
  } runs[] = {{-EIO, 0}, {-EIO, 1}, {-ENOSPC, 1}, {SL_FAULT_CRASH, 0}, {SL_FAULT_TEAR, 0}};
  for (size_t i = 0; i < SL_ARRAY_LEN(points); i++)
    for (size_t k = 0; k < SL_ARRAY_LEN(runs); k++) fault_run(points[i], runs[k].code, runs[k].persistent, &rng);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
#endif
}

/* ---- replay speed ----------------------------------------------------------------------------------- */
static void store_replay_speed(void **state) {
  (void)state;
  char *dir = new_dir("store_speed");
  sl_store *st = create_open(dir, NULL);
  enum { TX = 250, PER = 4000 }; /* each op group: node, node, rel, set prop = 4 ops */
  const char *l[] = {"Item"};
  uint64_t t0 = sl_mono_ns(), ops = 0;
  for (int t = 0; t < TX; t++) {
    sl_tx *tx;
    OK(sl_tx_begin(st, &tx));
    for (int i = 0; i < PER / 4; i++) {
      uint64_t a, b;
      sl_prop p = {"n", vint(i)};
      OK(sl_tx_create_node(tx, SL_ID_NEW, l, 1, &p, 1, &a));
      OK(sl_tx_create_node(tx, SL_ID_NEW, l, 1, NULL, 0, &b));
      OK(sl_tx_create_rel(tx, SL_ID_NEW, "NEXT", a, b, NULL, 0, NULL));
      OK(sl_tx_set_node_prop(tx, b, "w", &p.value));
      ops += 4;
    }
    commit(tx);
  }
  double commit_s = (double)(sl_mono_ns() - t0) / 1e9;
  sl_store_close(st);
  char *logdir = sub(dir, "log"), *dir2 = new_dir("store_speed_replay");
  double apply_s;
  sl_store *rep = replay_into(logdir, dir2, &apply_s);
  OK(sl_store_open(dir, SL_OPEN_RDONLY, &st));
  compare_stores(st, rep);
  fprintf(stderr, "store_replay_speed: %" PRIu64 " ops committed in %.2f s (%.0f ops/s); replayed with "
          "sl_store_apply_batch in %.2f s (%.0f ops/s)\n", ops, commit_s, ops / commit_s, apply_s, ops / apply_s);
  sl_store_close(rep);
  sl_store_close(st);
  free(logdir);
  done_dir(dir);
  done_dir(dir2);
}


int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(store_crash_recovery),
      cmocka_unit_test(store_reader_process),
      cmocka_unit_test(store_concurrent_writers),
      cmocka_unit_test(store_group_faults),
      cmocka_unit_test(store_writer_lock),
      cmocka_unit_test(store_power_loss_rebuild),
      cmocka_unit_test(store_damaged_applied_tail_kept),
      cmocka_unit_test(store_checkpoint_prunes),
      cmocka_unit_test(store_space_tracks_data),
      cmocka_unit_test(store_space_bounded_under_bulk_writes),
      cmocka_unit_test(store_compact),
      cmocka_unit_test(store_replays_log_tail),
      cmocka_unit_test(store_fault_points),
      cmocka_unit_test(store_power_loss_pruned),
      cmocka_unit_test(store_checkpoint_in_flight),
      cmocka_unit_test(store_replay_speed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
