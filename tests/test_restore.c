/*
 * Point-in-time recovery (receiver/pitr.h): snapshots, restores to txids
 * and times, retention, in-place restores.
 *
 * A FIXTURE builds what a receiver's data directory holds without a
 * network: a primary store commits a random workload with known commit
 * times (some equal, as the log allows), its log frames are appended to
 * DATA/streams/s/archive (small segments, so that retention has something
 * to remove) and applied to a standby, which is snapshotted at a few
 * txids on the way; the state file says the primary's clock was read
 * after the last commit. THE MODEL is an independent replay of the
 * primary's own log into a fresh store, exported canonically (spec/
 * export.md) at each target: a restore must export byte for byte the same.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "interchange.h"
#include "dump.h"
#include "log.h"
#include "pitr.h"
#include "sl_base.h"
#include "store.h"

enum { NTX = 1500, NSNAP = 3, SEG_SIZE = 16384 };

/* ---- the workload ------------------------------------------------------------------------ */
typedef struct gen {
  uint64_t rng;
  uint64_t *nodes;
  size_t nn, cap;
  uint64_t us;
} gen;

static const char *const labels[] = {"Person", "Post", "Tag"};

static uint64_t pick(gen *g) { return g->nodes[tu_rand_below(&g->rng, g->nn)]; }

static int first_rel(void *arg, uint64_t rel, const char *type, uint64_t start, uint64_t end) {
  (void)type, (void)start, (void)end;
  *(uint64_t *)arg = rel;
  return 1;
}

/* One transaction of 1..5 ops at commit time g->us. */
static void gen_tx(sl_store *st, gen *g) {
  sl_tx *tx;
  char s[32];
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_set_commit_time(tx, g->us));
  int ops = 1 + (int)tu_rand_below(&g->rng, 5);
  for (int i = 0; i < ops; i++) {
    uint64_t what = g->nn < 4 || i == 0 ? 0 : tu_rand_below(&g->rng, 8), id;
    if (what <= 2) {
      const char *l = labels[tu_rand_below(&g->rng, 3)];
      int n = snprintf(s, sizeof s, "n%" PRIu64, tu_rand_below(&g->rng, 1000000));
      sl_prop p = {"name", {.kind = SL_STRING, .len = (size_t)n, .u.s = s}};
      OK(sl_tx_create_node(tx, SL_ID_NEW, &l, 1, &p, 1, &id));
      if (g->nn == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->nodes = realloc(g->nodes, g->cap * sizeof *g->nodes);
      }
      g->nodes[g->nn++] = id;
    } else if (what <= 4) {
      sl_prop p = {"w", {.kind = SL_INT, .u.i = (int64_t)tu_rand(&g->rng)}};
      OK(sl_tx_create_rel(tx, SL_ID_NEW, "KNOWS", pick(g), pick(g), &p, 1, NULL));
    } else if (what == 5) {
      sl_value v = {.kind = SL_DOUBLE, .u.d = (double)tu_rand_below(&g->rng, 1000) / 8};
      OK(sl_tx_set_node_prop(tx, pick(g), "score", &v));
    } else if (what == 6) {
      uint64_t rel = 0;
      int rc = sl_view_node_rels(sl_tx_view(tx), pick(g), SL_DIR_OUT, NULL, first_rel, &rel);
      assert_true(rc == 0 || rc == 1); /* 1: first_rel stopped the walk */
      if (rel) OK(sl_tx_delete_rel(tx, rel));
    } else {
      OK(sl_tx_add_label(tx, pick(g), "Active"));
    }
  }
  uint64_t txid;
  OK(sl_tx_commit(tx, &txid));
}

/* ---- the fixture ------------------------------------------------------------------------- */
typedef struct fixture {
  char *root, *primary, *data, *stream, *archive, *standby, *snaps;
  uint64_t last;                 /* txids 1..last */
  uint64_t commit[NTX + 1];      /* commit time of each txid */
  uint64_t snap_at[NSNAP];       /* snapshot txids, ascending */
} fixture;

static fixture F;

static char *cat(const char *a, const char *b) { return tu_path(a, b); }

/* Payloads of the primary's log from..to, one at a time. */
typedef int (*frame_fn)(void *arg, const sl_frame *f);
static void each_frame(const char *logdir, uint64_t from, uint64_t to, frame_fn fn, void *arg) {
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.max_txid = to};
  OK(sl_log_reader_open(logdir, from, &ro, &r));
  int rc;
  while ((rc = sl_log_reader_next(r, &f)) == 0) OK(fn(arg, &f));
  ERR(SL_EEND, rc);
  sl_log_reader_close(r);
}

static int to_archive(void *arg, const sl_frame *f) { return sl_log_append(arg, f->payload, f->payload_len); }
static int to_store(void *arg, const sl_frame *f) {
  const uint8_t *p = f->payload;
  size_t n = f->payload_len;
  return sl_store_apply_batch(arg, &p, &n, 1);
}

static void write_state(uint64_t reachable) {
  char text[100];
  int n = snprintf(text, sizeof text, "durable=%" PRIu64 "\nreachable_time_us=%" PRIu64 "\n", F.last, reachable);
  OK(sl_write_file_atomic(F.stream, "state", text, (size_t)n));
}

static int setup(void **state) {
  (void)state;
  uint64_t seed = tu_seed("test_restore");
  gen g = {.rng = seed, .us = sl_now_us() - 30ull * 86400 * 1000000};
  F.root = strdup(tu_tmpdir("restore"));
  F.primary = cat(F.root, "primary");
  F.data = cat(F.root, "data");
  F.stream = cat(F.data, "streams/s");
  F.archive = cat(F.stream, "archive");
  F.standby = cat(F.stream, "standby");
  F.snaps = cat(F.stream, "snapshots");
  sl_store *p, *sb;
  OK(sl_store_create(F.primary, NULL));
  OK(sl_store_open(F.primary, 0, &p));
  for (uint64_t t = 1; t <= NTX; t++) {
    /* Gaps of 0..2 s: equal commit times happen (a quarter of the time). */
    g.us += tu_rand_below(&g.rng, 4) ? 1000000 * (1 + tu_rand_below(&g.rng, 2)) + tu_rand_below(&g.rng, 1000) : 0;
    gen_tx(p, &g);
    F.commit[t] = g.us;
  }
  F.last = NTX;
  sl_store_close(p);
  free(g.nodes);

  sl_log *log;
  sl_log_options lo = {.segment_size = SEG_SIZE, .first_txid = 1};
  OK(sl_store_open(F.primary, SL_OPEN_RDONLY, &p));
  memcpy(lo.store_id, sl_store_id(p), SL_STORE_ID_SIZE);
  sl_store_options so = {.store_id = sl_store_id(p), .no_log = true};
  OK(sl_mkdir_p(F.archive));
  OK(sl_mkdir_p(F.snaps));
  OK(sl_log_create(F.archive, &lo));
  OK(sl_log_open(F.archive, NULL, &log));
  OK(sl_store_create(F.standby, &so));
  sl_store_close(p);
  char *plog = cat(F.primary, "log");
  each_frame(plog, 1, F.last, to_archive, log);
  OK(sl_log_wait_durable(log, F.last));
  sl_log_close(log);
  /* The standby follows; snapshots at three txids on the way. */
  OK(sl_store_open(F.standby, SL_OPEN_NOLOG, &sb));
  uint64_t at = 0;
  for (int i = 0; i < NSNAP; i++) {
    F.snap_at[i] = (uint64_t)(i + 1) * NTX / (NSNAP + 1) + tu_rand_below(&g.rng, 50);
    each_frame(F.archive, at + 1, F.snap_at[i], to_store, sb);
    at = F.snap_at[i];
    sl_snapshot snap;
    bool existed;
    OK(sl_snapshot_take(sb, F.snaps, NULL, &snap, &existed));
    assert_false(existed);
    assert_int_equal(snap.txid, at);
    assert_int_equal(snap.commit_us, F.commit[at]);
  }
  each_frame(F.archive, at + 1, F.last, to_store, sb);
  sl_store_close(sb);
  free(plog);
  write_state(F.commit[F.last] + 1000000);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sl_remove_tree(F.root);
  free(F.root), free(F.primary), free(F.data), free(F.stream), free(F.archive), free(F.standby), free(F.snaps);
  return 0;
}

/* ---- the model ---------------------------------------------------------------------------- */

/* The model's export at each of the sorted txids. */
static char **model_exports(const uint64_t *txids, size_t n, size_t *lens) {
  char *dir = cat(F.root, "model"), *plog = cat(F.primary, "log");
  char **out = calloc(n, sizeof *out);
  sl_store_options so = {.no_log = true};
  sl_store *m;
  sl_remove_tree(dir);
  OK(sl_store_create(dir, &so));
  uint64_t at = 0;
  for (size_t i = 0; i < n; i++) {
    if (txids[i] > at) {
      OK(sl_store_open(dir, SL_OPEN_NOLOG, &m));
      each_frame(plog, at + 1, txids[i], to_store, m);
      sl_store_close(m);
      at = txids[i];
    }
    out[i] = tu_export(dir, &lens[i]);
  }
  sl_remove_tree(dir);
  free(dir);
  free(plog);
  return out;
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The last txid committed at or before us (0: none). */
static uint64_t txid_at_time(uint64_t us) {
  uint64_t n = 0;
  for (uint64_t t = 1; t <= F.last && F.commit[t] <= us; t++) n = t;
  return n;
}

/* The base a restore to txid n (time: commit limit) must pick, given the archive's first txid. */
static uint64_t expected_base(uint64_t n, uint64_t first, bool by_time, uint64_t us) {
  uint64_t b = 0;
  for (int i = 0; i < NSNAP; i++)
    if (F.snap_at[i] <= n && F.snap_at[i] + 1 >= first && (!by_time || F.commit[F.snap_at[i]] <= us)) b = F.snap_at[i];
  return b;
}

typedef struct target {
  bool by_time;
  uint64_t us, txid; /* txid: the given one, or the one the time resolves to */
} target;

static int target_cmp(const void *a, const void *b) { return u64_cmp(&((const target *)a)->txid, &((const target *)b)->txid); }

/* Restore each target into a new store and compare with the model. */
static void restore_and_compare(target *t, size_t n, uint64_t archive_first, const char *what) {
  qsort(t, n, sizeof *t, target_cmp);
  uint64_t *txids = malloc(n * sizeof *txids);
  size_t *lens = malloc(n * sizeof *lens);
  for (size_t i = 0; i < n; i++) txids[i] = t[i].txid;
  char **model = model_exports(txids, n, lens);
  char *into = cat(F.root, "restored");
  for (size_t i = 0; i < n; i++) {
    sl_restore_options o = {.data_dir = F.data, .stream = "s", .by_time = t[i].by_time, .time_us = t[i].us,
                            .txid = t[i].txid, .into = into};
    sl_restore_result r;
    sl_remove_tree(into);
    OK(sl_restore(&o, &r));
    assert_int_equal(r.txid, t[i].txid);
    assert_int_equal(r.commit_us, t[i].txid ? F.commit[t[i].txid] : 0);
    assert_int_equal(r.base_txid, expected_base(t[i].txid, archive_first, t[i].by_time, t[i].us));
    assert_int_equal(r.replayed, t[i].txid - r.base_txid);
    size_t len;
    char *got = tu_export(into, &len);
    if (len != lens[i] || memcmp(got, model[i], len))
      fail_msg("%s: restore to %s %" PRIu64 " (txid %" PRIu64 ", base %" PRIu64 ") differs from the model", what,
               t[i].by_time ? "time" : "txid", t[i].by_time ? t[i].us : t[i].txid, t[i].txid, r.base_txid);
    free(got);
    free(model[i]);
    /* A complete primary store: it continues at the next txid. */
    if (i % 4 == 0) {
      sl_store *st;
      sl_tx *tx;
      uint64_t txid;
      const char *l = "After";
      OK(sl_store_open(into, 0, &st));
      OK(sl_tx_begin(st, &tx));
      OK(sl_tx_create_node(tx, SL_ID_NEW, &l, 1, NULL, 0, NULL));
      OK(sl_tx_commit(tx, &txid));
      assert_int_equal(txid, t[i].txid + 1);
      sl_store_close(st);
    }
  }
  sl_remove_tree(into);
  free(into);
  free(model);
  free(lens);
  free(txids);
}

/* ---- tests -------------------------------------------------------------------------------- */
static void restore_random_targets(void **state) {
  (void)state;
  uint64_t rng = tu_seed("restore_random_targets");
  enum { N = 24 };
  target t[N];
  for (int i = 0; i < N; i++) {
    t[i].by_time = i % 2;
    if (t[i].by_time) {
      /* Exact commit times (ties included), times between commits, just before
       * one (before the first is refused: restore_refusals). */
      uint64_t k = 1 + tu_rand_below(&rng, F.last);
      int how = (int)tu_rand_below(&rng, 3);
      if (how == 2 && F.commit[k] - 1 < F.commit[1]) how = 0;
      t[i].us = how == 0 ? F.commit[k] : how == 1 ? F.commit[k] + 1 + tu_rand_below(&rng, 900000) : F.commit[k] - 1;
      if (i == 1) t[i].us = F.commit[1]; /* the first commit: the earliest point */
      if (i == 3) t[i].us = F.commit[F.last] + 500000; /* after the last commit, before the clock's report */
      t[i].txid = txid_at_time(t[i].us);
    } else {
      t[i].txid = 1 + tu_rand_below(&rng, F.last);
      if (i == 0) t[i].txid = F.snap_at[1]; /* exactly a snapshot */
      if (i == 2) t[i].txid = F.last;
      if (i == 4) t[i].txid = 1;
    }
  }
  restore_and_compare(t, N, 1, "random targets");
}

static void restore_refusals(void **state) {
  (void)state;
  char *into = cat(F.root, "refused");
  sl_restore_options o = {.data_dir = F.data, .stream = "s", .txid = F.last + 1, .into = into};
  sl_restore_result r;
  ERR(SL_EINVAL, sl_restore(&o, &r)); /* past the durable txid */
  o.by_time = true;
  o.time_us = F.commit[F.last] + 1000001; /* past the primary's reported clock */
  ERR(SL_EINVAL, sl_restore(&o, &r));
  assert_int_equal(access(into, F_OK), -1);
  /* Before the stream's first commit: the empty store is no target. */
  o.time_us = F.commit[1] - 1;
  ERR(SL_EINVAL, sl_restore(&o, &r));
  o.by_time = false;
  o.txid = 0;
  ERR(SL_EINVAL, sl_restore(&o, &r));
  assert_int_equal(access(into, F_OK), -1);
  o.by_time = true;
  o.time_us = F.commit[F.last] + 1000000; /* exactly it: reachable */
  OK(sl_restore(&o, &r));
  assert_int_equal(r.txid, F.last);
  ERR(SL_EEXIST, sl_restore(&o, &r)); /* not empty: refused */
  sl_remove_tree(into);
  o.stream = "nope";
  ERR(SL_ENOTFOUND, sl_restore(&o, &r));
  free(into);
}

/* Nothing but the F.root entries named in keep may exist. */
static void only_these(const char *const *keep, size_t n) {
  DIR *d = opendir(F.root);
  struct dirent *e;
  assert_non_null(d);
  while ((e = readdir(d))) {
    bool ok = e->d_name[0] == '.';
    for (size_t i = 0; i < n; i++) ok |= !strcmp(e->d_name, keep[i]);
    if (!ok) fail_msg("%s/%s was left behind", F.root, e->d_name);
  }
  closedir(d);
}

static void restore_failure_leaves_nothing(void **state) {
  (void)state;
  static const char *const fixture_dirs[] = {"primary", "data"};
  char *into = cat(F.root, "damaged"), seg[4096], saved[4200];
  /* One byte changed in the middle of the last sealed archive segment,
   * which the replay from the newest snapshot reads (a damaged snapshot
   * gives way to an older base: restore_after_prune). */
  sl_seg_info *segs;
  size_t nseg;
  OK(sl_log_list(F.archive, &segs, &nseg));
  assert_true(nseg >= 2);
  if (segs[nseg - 2].first_txid <= F.snap_at[NSNAP - 1]) fail_msg("the fixture's last sealed segment is below the newest snapshot");
  snprintf(seg, sizeof seg, "%s", segs[nseg - 2].path);
  free(segs);
  snprintf(saved, sizeof saved, "%s/saved.seg", F.root);
  assert_int_equal(tu_system("cp '%s' '%s'", seg, saved), 0);
  int fd = open(seg, O_RDWR);
  struct stat sb;
  assert_true(fd >= 0 && fstat(fd, &sb) == 0);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, sb.st_size / 2), 1);
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, sb.st_size / 2), 1);
  close(fd);
  sl_restore_options o = {.data_dir = F.data, .stream = "s", .txid = F.last, .into = into};
  sl_restore_result r;
  ERR(SL_ECORRUPT, sl_restore(&o, &r));
  assert_int_equal(access(into, F_OK), -1);
  assert_int_equal(tu_system("mv '%s' '%s'", saved, seg), 0);
  only_these(fixture_dirs, 2);
  /* Interrupted: nothing either. */
  atomic_bool cancel = true;
  o.cancel = &cancel;
  o.txid = F.snap_at[0] + 10;
  ERR(-ECANCELED, sl_restore(&o, &r));
  assert_int_equal(access(into, F_OK), -1);
  only_these(fixture_dirs, 2);
  free(into);
}

static void cancel_on_first(void *arg, uint64_t done, uint64_t total) {
  (void)done, (void)total;
  atomic_store((atomic_bool *)arg, true);
}

static size_t count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  struct dirent *e;
  size_t n = 0, sl = strlen(suffix);
  while (d && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    n += l > sl && !strcmp(e->d_name + l - sl, suffix);
  }
  if (d) closedir(d);
  return n;
}

static void snapshot_take_and_list(void **state) {
  (void)state;
  sl_store *sb;
  sl_snapshot snap, *list;
  size_t n;
  bool existed;
  atomic_bool cancel = false;
  OK(sl_store_open(F.standby, SL_OPEN_RDONLY, &sb));
  /* Cancelled on its first progress report: -ECANCELED, no file. */
  sl_snapshot_options so = {.progress = cancel_on_first, .progress_arg = &cancel, .cancel = &cancel};
  ERR(-ECANCELED, sl_snapshot_take(sb, F.snaps, &so, &snap, &existed));
  assert_int_equal(count_files(F.snaps, ".snap"), NSNAP);
  assert_int_equal(count_files(F.snaps, ".tmp"), 0);
  /* The standby's final state, twice: the second is the same image. */
  OK(sl_snapshot_take(sb, F.snaps, NULL, &snap, &existed));
  assert_false(existed);
  assert_int_equal(snap.txid, F.last);
  OK(sl_snapshot_take(sb, F.snaps, NULL, &snap, &existed));
  assert_true(existed);
  sl_store_close(sb);
  /* A damaged name or header is left out of the list. */
  char bad[4200];
  snprintf(bad, sizeof bad, "%s/00000000000000000007.snap", F.snaps);
  assert_int_equal(tu_system("echo garbage > '%s'", bad), 0);
  OK(sl_snapshot_list(F.snaps, NULL, &list, &n));
  assert_int_equal(n, NSNAP + 1);
  for (size_t i = 0; i < NSNAP; i++) assert_int_equal(list[i].txid, F.snap_at[i]);
  assert_int_equal(list[NSNAP].txid, F.last);
  assert_int_equal(list[NSNAP].commit_us, F.commit[F.last]);
  free(list);
  unlink(bad);
  unlink(snap.path); /* back to the fixture's snapshots */
  /* The command's path: a stream without a standby is refused. */
  ERR(SL_ENOTFOUND, sl_snapshot_stream(F.data, "nope", NULL, &snap, &existed));
}

/* A child that holds STORE open read-only in a view until its pipe closes. */
static pid_t hold_reader(const char *store, int *pipe_out) {
  int up[2], down[2];
  assert_int_equal(pipe(up), 0);
  assert_int_equal(pipe(down), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    sl_store *st;
    sl_view *v;
    char c = 1;
    close(up[0]);
    close(down[1]);
    if (sl_store_open(store, SL_OPEN_RDONLY, &st) || sl_view_begin(st, &v)) _exit(1);
    if (write(up[1], &c, 1) != 1) _exit(1);
    if (read(down[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  char c;
  assert_int_equal(read(up[0], &c, 1), 1);
  close(up[0]);
  *pipe_out = down[1];
  return pid;
}

static void restore_in_place(void **state) {
  (void)state;
  char *store = cat(F.root, "inplace"), *other = cat(F.root, "other"), *into = cat(F.root, "expected");
  assert_int_equal(tu_system("cp -r '%s' '%s'", F.primary, store), 0);
  size_t old_len, want_len, got_len;
  char *old = tu_export(store, &old_len);
  uint64_t at = F.snap_at[1] + 7;
  sl_restore_options o = {.data_dir = F.data, .stream = "s", .txid = at, .in_place = store};
  sl_restore_result r;

  /* Open for writing (here), open for reading (another process), another store: refused. */
  sl_store *st;
  OK(sl_store_open(store, 0, &st));
  ERR(SL_ELOCKED, sl_restore(&o, &r));
  sl_store_close(st);
  int hold;
  pid_t pid = hold_reader(store, &hold);
  ERR(SL_ELOCKED, sl_restore(&o, &r));
  close(hold);
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  OK(sl_store_create(other, NULL));
  o.in_place = other;
  ERR(SL_ESTOREID, sl_restore(&o, &r));
  o.in_place = store;

  OK(sl_restore(&o, &r));
  assert_int_equal(r.txid, at);
  assert_true(r.kept[0] != 0);
  char *kept = tu_export(r.kept, &got_len);
  assert_true(got_len == old_len && !memcmp(kept, old, old_len)); /* the old state, aside */
  sl_restore_options e = {.data_dir = F.data, .stream = "s", .txid = at, .into = into};
  sl_restore_result er;
  OK(sl_restore(&e, &er));
  char *want = tu_export(into, &want_len), *got = tu_export(store, &got_len);
  assert_true(want_len == got_len && !memcmp(want, got, got_len));
  assert_int_equal(tu_system("rm -rf '%s' '%s' '%s' '%s'", store, r.kept, other, into), 0);
  free(old), free(kept), free(want), free(got);
  free(store), free(other), free(into);
}

/* Last: it removes snapshots and segments of the fixture. */
static void restore_after_prune(void **state) {
  (void)state;
  uint64_t rng = tu_seed("restore_after_prune");
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/tmp-999999999-1.snap.tmp", F.snaps); /* a dead writer's leftover */
  assert_int_equal(tu_system("touch '%s'", tmp), 0);
  sl_prune_result pr;
  sl_prune_options po = {.keep_days = 1}; /* every snapshot is younger: all kept */
  OK(sl_prune_stream(F.data, "s", &po, &pr));
  assert_int_equal(pr.snapshots_removed, 0);
  assert_int_equal(pr.snapshots_kept, NSNAP);
  assert_true(pr.segments_removed > 0); /* those below the oldest snapshot */
  assert_int_equal(access(tmp, F_OK), -1);
  /* Bit rot in the newest snapshot: prune keeps what it would replace, and
   * a restore past it starts from the next older base. */
  char newest[4300], aside[4400];
  snprintf(newest, sizeof newest, "%s/%020" PRIu64 ".snap", F.snaps, F.snap_at[NSNAP - 1]);
  snprintf(aside, sizeof aside, "%s.good", newest);
  assert_int_equal(tu_system("cp '%s' '%s' && printf '\\377' | dd of='%s' bs=1 seek=1000 conv=notrunc 2>/dev/null",
                             newest, aside, newest), 0);
  po = (sl_prune_options){.keep_snapshots = 1};
  ERR(SL_ECORRUPT, sl_prune_stream(F.data, "s", &po, &pr));
  assert_int_equal(count_files(F.snaps, ".snap"), NSNAP);
  po.dry_run = true;
  ERR(SL_ECORRUPT, sl_prune_stream(F.data, "s", &po, &pr));
  char *fallback = cat(F.root, "fallback");
  sl_restore_options fo = {.data_dir = F.data, .stream = "s", .txid = F.last, .into = fallback};
  sl_restore_result fr;
  OK(sl_restore(&fo, &fr));
  assert_int_equal(fr.txid, F.last);
  assert_int_equal(fr.base_txid, F.snap_at[NSNAP - 2]);
  assert_int_equal(tu_system("rm -rf '%s' && mv '%s' '%s'", fallback, aside, newest), 0);

  /* A snapshot of another history with the same store id (its last txid
   * committed at another time than the archive's): no base, and no prune. */
  assert_int_equal(tu_system("cp '%s' '%s'", newest, aside), 0);
  uint8_t hb[SL_DUMP_HEADER_SIZE];
  sl_dump_header hh;
  int hfd = open(newest, O_RDWR);
  assert_true(hfd >= 0 && pread(hfd, hb, sizeof hb, 0) == (ssize_t)sizeof hb);
  OK(sl_dump_header_decode(hb, &hh));
  hh.last_commit_us += 1;
  sl_dump_header_encode(&hh, hb);
  assert_true(pwrite(hfd, hb, sizeof hb, 0) == (ssize_t)sizeof hb);
  close(hfd);
  OK(sl_restore(&fo, &fr));
  assert_int_equal(fr.base_txid, F.snap_at[NSNAP - 2]);
  po = (sl_prune_options){.keep_snapshots = 1};
  ERR(SL_ECORRUPT, sl_prune_stream(F.data, "s", &po, &pr));
  assert_int_equal(count_files(F.snaps, ".snap"), NSNAP);
  assert_int_equal(tu_system("rm -rf '%s' && mv '%s' '%s'", fallback, aside, newest), 0);
  free(fallback);

  po = (sl_prune_options){.keep_snapshots = 2};
  OK(sl_prune_stream(F.data, "s", &po, &pr));
  assert_int_equal(pr.snapshots_removed, 1);
  assert_int_equal(pr.snapshots_kept, 2);
  uint64_t first = pr.archive_first_txid;
  assert_true(first > 1 && first <= F.snap_at[1] + 1);
  assert_int_equal(count_files(F.snaps, ".snap"), 2);

  /* Before the oldest kept snapshot: refused, by txid and by time. */
  char *into = cat(F.root, "pruned");
  sl_restore_options o = {.data_dir = F.data, .stream = "s", .txid = F.snap_at[1] - 1, .into = into};
  sl_restore_result r;
  ERR(SL_EINVAL, sl_restore(&o, &r));
  o.by_time = true;
  o.time_us = F.commit[F.snap_at[1]] - 1;
  if (F.commit[F.snap_at[1]] > F.commit[1]) ERR(SL_EINVAL, sl_restore(&o, &r));
  free(into);

  enum { N = 10 };
  target t[N];
  for (int i = 0; i < N; i++) {
    t[i].by_time = i % 2;
    uint64_t k = F.snap_at[1] + tu_rand_below(&rng, F.last - F.snap_at[1] + 1);
    t[i].us = F.commit[k] + (i % 4 == 1 ? 1 : 0);
    t[i].txid = t[i].by_time ? txid_at_time(t[i].us) : k;
    /* A time whose commit ties with the snapshot's predecessors must still find the snapshot. */
    if (t[i].by_time && txid_at_time(t[i].us) < F.snap_at[1]) t[i].by_time = false, t[i].txid = k;
  }
  restore_and_compare(t, N, first, "after prune");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(restore_random_targets),
      cmocka_unit_test(restore_refusals),
      cmocka_unit_test(restore_failure_leaves_nothing),
      cmocka_unit_test(snapshot_take_and_list),
      cmocka_unit_test(restore_in_place),
      cmocka_unit_test(restore_after_prune),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
