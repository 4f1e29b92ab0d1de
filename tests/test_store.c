/*
 * Tests of the graph store (store/store.h): each op and refusal, reads,
 * a randomized comparison against an in-memory model (with reopen and log
 * replay), crash recovery with SIGKILL, readers in another process,
 * concurrent writer threads, the writer lock, power-loss rebuilds and
 * checkpoints.
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

#include "sl_base.h"
#include "store.h"
#include "transaction.pb-c.h"

#define OK(expr)                                                                              \
  do {                                                                                        \
    int rc_ = (expr);                                                                         \
    if (rc_ != 0) fail_msg("%s:%d: %s -> %s (%d)", __FILE__, __LINE__, #expr, sl_errname(rc_), rc_); \
  } while (0)
#define ERR(code, expr)                                                                       \
  do {                                                                                        \
    int rc_ = (expr), want_ = (code);                                                         \
    if (rc_ != want_)                                                                         \
      fail_msg("%s:%d: %s -> %s, expected %s", __FILE__, __LINE__, #expr, sl_errname(rc_),    \
               sl_errname(want_));                                                            \
  } while (0)

static char *new_dir(const char *name) { return strdup(tu_tmpdir(name)); }

/* Remove a test's directory once it passed (failures leave theirs). */
static void done_dir(char *dir) {
  sl_remove_tree(dir);
  free(dir);
}

static char *sub(const char *dir, const char *name) { return tu_path(dir, name); }

static sl_store *create_open(const char *dir, const sl_store_options *o) {
  sl_store *st;
  OK(sl_store_create(dir, o));
  OK(sl_store_open(dir, 0, &st));
  return st;
}

static sl_value vint(int64_t i) { return (sl_value){.kind = SL_INT, .u.i = i}; }
static sl_value vstr(const char *s) { return (sl_value){.kind = SL_STRING, .len = strlen(s), .u.s = s}; }

static sl_counts counts_of(sl_store *st) {
  sl_view *v;
  sl_counts c;
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  sl_view_end(v);
  return c;
}

static uint64_t commit(sl_tx *tx) {
  uint64_t txid = 0;
  OK(sl_tx_commit(tx, &txid));
  return txid;
}

/* ---- collecting walk results ---------------------------------------------------- */
typedef struct ids {
  uint64_t *v;
  size_t n, cap;
} ids;

static int push_id(void *arg, uint64_t id) {
  ids *l = arg;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = id;
  return 0;
}

typedef struct relrec {
  uint64_t id, start, end;
  char type[SL_NAME_MAX + 1];
} relrec;

typedef struct rels {
  relrec *v;
  size_t n, cap;
} rels;

static int push_rel(void *arg, uint64_t id, const char *type, uint64_t start, uint64_t end) {
  rels *l = arg;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
  }
  relrec *r = &l->v[l->n++];
  r->id = id;
  r->start = start;
  r->end = end;
  snprintf(r->type, sizeof r->type, "%s", type);
  return 0;
}

static rels walk(sl_view *v, uint64_t node, sl_dir dir, const char *type) {
  rels l = {0};
  OK(sl_view_node_rels(v, node, dir, type, push_rel, &l));
  return l;
}

/* ---- comparing two stores entity by entity --------------------------------------- */
typedef struct node_copy {
  size_t nlabels, nprops;
  char **labels;
  sl_prop *props;
} node_copy;

static void assert_props_equal(const sl_prop *a, size_t na, const sl_prop *b, size_t nb, const char *what,
                               uint64_t id) {
  if (na != nb) fail_msg("%s %" PRIu64 ": %zu vs %zu properties", what, id, na, nb);
  for (size_t i = 0; i < na; i++) {
    if (strcmp(a[i].key, b[i].key)) fail_msg("%s %" PRIu64 ": key %s vs %s", what, id, a[i].key, b[i].key);
    if (!sl_value_equal(&a[i].value, &b[i].value)) fail_msg("%s %" PRIu64 ": value of %s differs", what, id, a[i].key);
  }
}

static void compare_views(sl_view *a, sl_view *b) {
  sl_counts ca, cb;
  OK(sl_view_counts(a, &ca));
  OK(sl_view_counts(b, &cb));
  assert_int_equal(ca.nodes, cb.nodes);
  assert_int_equal(ca.rels, cb.rels);
  assert_int_equal(ca.applied_txid, cb.applied_txid);
  assert_int_equal(ca.last_commit_us, cb.last_commit_us);
  assert_int_equal(ca.next_node_id, cb.next_node_id);
  assert_int_equal(ca.next_rel_id, cb.next_rel_id);
  ids na = {0}, nb = {0}, ra = {0}, rb = {0};
  OK(sl_view_all_nodes(a, push_id, &na));
  OK(sl_view_all_nodes(b, push_id, &nb));
  assert_int_equal(na.n, nb.n);
  assert_int_equal(na.n, ca.nodes);
  assert_memory_equal(na.v, nb.v, na.n * sizeof *na.v);
  for (size_t i = 0; i < na.n; i++) {
    sl_node x, y;
    OK(sl_view_node(a, na.v[i], &x));
    OK(sl_view_node(b, na.v[i], &y));
    assert_int_equal(x.nlabels, y.nlabels);
    for (size_t k = 0; k < x.nlabels; k++) assert_string_equal(x.labels[k], y.labels[k]);
    assert_props_equal(x.props, x.nprops, y.props, y.nprops, "node", na.v[i]);
    rels wa = walk(a, na.v[i], SL_DIR_BOTH, NULL), wb = walk(b, na.v[i], SL_DIR_BOTH, NULL);
    assert_int_equal(wa.n, wb.n);
    for (size_t k = 0; k < wa.n; k++) {
      assert_int_equal(wa.v[k].id, wb.v[k].id);
      assert_int_equal(wa.v[k].start, wb.v[k].start);
      assert_int_equal(wa.v[k].end, wb.v[k].end);
      assert_string_equal(wa.v[k].type, wb.v[k].type);
    }
    free(wa.v);
    free(wb.v);
  }
  OK(sl_view_all_rels(a, push_id, &ra));
  OK(sl_view_all_rels(b, push_id, &rb));
  assert_int_equal(ra.n, rb.n);
  assert_int_equal(ra.n, ca.rels);
  assert_memory_equal(ra.v, rb.v, ra.n * sizeof *ra.v);
  for (size_t i = 0; i < ra.n; i++) {
    sl_rel x, y;
    OK(sl_view_rel(a, ra.v[i], &x));
    OK(sl_view_rel(b, ra.v[i], &y));
    assert_string_equal(x.type, y.type);
    assert_int_equal(x.start, y.start);
    assert_int_equal(x.end, y.end);
    assert_props_equal(x.props, x.nprops, y.props, y.nprops, "rel", ra.v[i]);
  }
  free(na.v);
  free(nb.v);
  free(ra.v);
  free(rb.v);
}

static void compare_stores(sl_store *x, sl_store *y) {
  sl_view *a, *b;
  OK(sl_view_begin(x, &a));
  OK(sl_view_begin(y, &b));
  compare_views(a, b);
  sl_view_end(a);
  sl_view_end(b);
}

/* Replay the whole log of `logdir` into a new no-log store at `dir` with
 * sl_store_apply_batch; returns the open store. *seconds gets the time
 * spent applying. */
static sl_store *replay_into(const char *logdir, const char *dir, double *seconds) {
  sl_store *st;
  sl_store_options o = {.no_log = true};
  OK(sl_store_create(dir, &o));
  OK(sl_store_open(dir, SL_OPEN_NOLOG, &st));
  sl_log_reader *r;
  sl_log_reader_options ro = {0};
  OK(sl_log_reader_open(logdir, 1, &ro, &r));
  enum { BATCH = 128 };
  uint8_t *bufs[BATCH];
  size_t lens[BATCH], n = 0;
  double t = 0;
  sl_frame f;
  int rc;
  for (;;) {
    rc = sl_log_reader_next(r, &f);
    if (rc == 0) {
      bufs[n] = malloc(f.payload_len);
      memcpy(bufs[n], f.payload, f.payload_len);
      lens[n++] = f.payload_len;
    }
    if (n == BATCH || (rc && n)) {
      uint64_t t0 = sl_mono_ns();
      OK(sl_store_apply_batch(st, (const uint8_t *const *)bufs, lens, n));
      t += (double)(sl_mono_ns() - t0) / 1e9;
      for (size_t i = 0; i < n; i++) free(bufs[i]);
      n = 0;
    }
    if (rc) break;
  }
  ERR(SL_EEND, rc);
  sl_log_reader_close(r);
  if (seconds) *seconds = t;
  return st;
}

static void compare_with_replay(sl_store *st, const char *name) {
  char *logdir = sub(sl_store_dir(st), "log");
  char *dir = new_dir(name);
  sl_store *rep = replay_into(logdir, dir, NULL);
  compare_stores(st, rep);
  sl_store_close(rep);
  free(logdir);
  done_dir(dir);
}

/* ---- basics ----------------------------------------------------------------------------- */
static void store_create_open_close(void **state) {
  (void)state;
  char *dir = new_dir("store_create");
  uint8_t id[SL_STORE_ID_SIZE];
  for (int i = 0; i < SL_STORE_ID_SIZE; i++) id[i] = (uint8_t)(0xa0 + i);
  sl_store_options o = {.store_id = id, .segment_size = 64 << 10};
  sl_store *st = create_open(dir, &o);
  assert_memory_equal(sl_store_id(st), id, SL_STORE_ID_SIZE);
  assert_string_equal(sl_store_dir(st), dir);
  assert_non_null(sl_store_log(st));
  sl_counts c = counts_of(st);
  assert_int_equal(c.nodes, 0);
  assert_int_equal(c.applied_txid, 0);
  assert_int_equal(c.next_node_id, 1);
  assert_int_equal(sl_log_next_txid(sl_store_log(st)), 1);
  sl_store_close(st);
  /* MDB_WRITEMAP's sparse map is trimmed by a clean close. */
  char *data = sub(dir, "data.mdb");
  struct stat dsb;
  assert_int_equal(stat(data, &dsb), 0);
  assert_true(dsb.st_size < (1 << 20));
  free(data);

  /* The files store.h promises. */
  const char *files[] = {"store.id", "data.mdb", "lock.mdb", "writer.lock", "checkpoint", "log"};
  for (size_t i = 0; i < SL_ARRAY_LEN(files); i++) {
    char *p = sub(dir, files[i]);
    struct stat sb;
    if (stat(p, &sb)) fail_msg("%s missing", p);
    free(p);
  }
  char *p = sub(dir, "writer.lock");
  uint8_t *buf;
  size_t len;
  OK(sl_read_file(p, 100, &buf, &len));
  assert_int_equal(len, 7);
  assert_memory_equal(buf, "closed\n", 7);
  free(buf);
  free(p);

  ERR(SL_EEXIST, sl_store_create(dir, NULL)); /* not empty */
  OK(sl_store_open(dir, 0, &st));
  assert_memory_equal(sl_store_id(st), id, SL_STORE_ID_SIZE);
  sl_store_close(st);

  sl_store *ro;
  OK(sl_store_open(dir, SL_OPEN_RDONLY, &ro));
  assert_null(sl_store_log(ro));
  sl_tx *tx;
  ERR(SL_EREADONLY, sl_tx_begin(ro, &tx));
  ERR(SL_EREADONLY, sl_store_checkpoint(ro));
  sl_store_close(ro);

  /* Wrong mode for the kind of store. */
  ERR(SL_EINVAL, sl_store_open(dir, SL_OPEN_NOLOG, &st));
  char *missing = sub(dir, "nope");
  ERR(-ENOENT, sl_store_open(missing, 0, &st));
  free(missing);

  /* A store whose base state holds txids 1..9. */
  char *dir2 = new_dir("store_create_base");
  o.first_txid = 10;
  o.store_id = NULL;
  st = create_open(dir2, &o);
  c = counts_of(st);
  assert_int_equal(c.applied_txid, 9);
  assert_int_equal(sl_log_next_txid(sl_store_log(st)), 10);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, NULL));
  assert_int_equal(commit(tx), 10);
  sl_store_close(st);

  /* A no-log store refuses local transactions. */
  char *dir3 = new_dir("store_create_nolog");
  sl_store_options on = {.no_log = true};
  OK(sl_store_create(dir3, &on));
  ERR(SL_EINVAL, sl_store_open(dir3, 0, &st));
  OK(sl_store_open(dir3, SL_OPEN_NOLOG, &st));
  assert_null(sl_store_log(st));
  ERR(SL_EREADONLY, sl_tx_begin(st, &tx));
  sl_store_close(st);
  done_dir(dir);
  done_dir(dir2);
  done_dir(dir3);
}

static void store_ops_and_refusals(void **state) {
  (void)state;
  char *dir = new_dir("store_ops");
  sl_store *st = create_open(dir, NULL);
  sl_log *log = sl_store_log(st);
  sl_tx *tx;
  uint64_t a, b, r;
  const char *labels[] = {"Person", "Admin", "Person"};
  sl_prop props[] = {{"name", vstr("Ann")}, {"born", vint(1984)}};

  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, labels, 3, props, 2, &a));
  OK(sl_tx_create_node(tx, SL_ID_NEW, labels, 1, NULL, 0, &b));
  OK(sl_tx_create_node(tx, 10, NULL, 0, NULL, 0, NULL));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "KNOWS", a, b, props + 1, 1, &r));
  assert_null(sl_tx_error(tx));
  assert_int_equal(commit(tx), 1);
  assert_int_equal(a, 1);
  assert_int_equal(b, 2);
  assert_int_equal(r, 1);
  sl_counts c = counts_of(st);
  assert_int_equal(c.nodes, 3);
  assert_int_equal(c.rels, 1);
  assert_int_equal(c.next_node_id, 11);
  assert_int_equal(c.next_rel_id, 2);

  /* Refusals: each fails the whole transaction, nothing is logged. */
  struct {
    int code;
    int op;
  } cases[] = {
      {SL_EEXIST, 0},    {SL_ENOTFOUND, 1}, {SL_EHASRELS, 2}, {SL_EINVAL, 3},  {SL_EINVAL, 4},
      {SL_EINVAL, 5},    {SL_EINVAL, 6},    {SL_EINVAL, 7},   {SL_ENOTFOUND, 8}, {SL_EINVAL, 9},
      {SL_EINVAL, 10},   {SL_ENOTFOUND, 11}, {SL_EEXIST, 12}, {SL_EINVAL, 13}, {SL_ENOTFOUND, 14},
      {SL_ENOTFOUND, 15},
  };
  char long_name[SL_NAME_MAX + 2];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[SL_NAME_MAX + 1] = 0;
  sl_value nul_str = {.kind = SL_STRING, .len = 3, .u.s = "a\0b"};
  sl_value mixed_items[2] = {vint(1), vstr("x")};
  sl_value mixed = {.kind = SL_LIST, .elem_kind = SL_INT, .len = 2, .u.items = mixed_items};
  sl_value nested = {.kind = SL_LIST, .elem_kind = SL_LIST, .len = 1, .u.items = &mixed};
  sl_prop dup[] = {{"k", vint(1)}, {"k", vint(2)}};
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    uint64_t next = sl_log_next_txid(log);
    OK(sl_tx_begin(st, &tx));
    OK(sl_tx_set_node_prop(tx, a, "touched", &(sl_value){.kind = SL_BOOL, .u.b = true}));
    int rc = 0;
    switch (cases[i].op) {
    case 0: rc = sl_tx_create_node(tx, 10, NULL, 0, NULL, 0, NULL); break;
    case 1: rc = sl_tx_create_rel(tx, SL_ID_NEW, "T", a, 99, NULL, 0, NULL); break;
    case 2: rc = sl_tx_delete_node(tx, a, false); break;
    case 3: rc = sl_tx_add_label(tx, a, ""); break;
    case 4: rc = sl_tx_add_label(tx, a, long_name); break;
    case 5: rc = sl_tx_add_label(tx, a, "\xff\xfe"); break;
    case 6: rc = sl_tx_set_node_prop(tx, a, "s", &nul_str); break;
    case 7: rc = sl_tx_set_node_prop(tx, a, "l", &mixed); break;
    case 8: rc = sl_tx_delete_rel(tx, 77); break;
    case 9: rc = sl_tx_set_rel_prop(tx, r, "n", &nested); break;
    case 10: rc = sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, dup, 2, NULL); break;
    case 11: rc = sl_tx_remove_label(tx, 55, "Person"); break;
    case 12: rc = sl_tx_create_rel(tx, 1, "T", a, b, NULL, 0, NULL); break;
    case 13: rc = sl_tx_create_rel(tx, SL_ID_NEW, "\xc0\x80", a, b, NULL, 0, NULL); break;
    case 14: rc = sl_tx_set_rel_prop(tx, 42, "k", &(sl_value){.kind = SL_INT}); break;
    case 15: rc = sl_tx_create_rel(tx, SL_ID_NEW, "T", 0, b, NULL, 0, NULL); break; /* no node 0 */
    }
    if (rc != cases[i].code) fail_msg("case %zu: %s, expected %s", i, sl_errname(rc), sl_errname(cases[i].code));
    assert_non_null(sl_tx_error(tx));
    /* Later ops return the first error; commit returns it and applies nothing. */
    ERR(cases[i].code, sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, NULL));
    uint64_t txid = 99;
    ERR(cases[i].code, sl_tx_commit(tx, &txid));
    assert_int_equal(txid, 0);
    assert_int_equal(sl_log_next_txid(log), next);
  }
  sl_view *v;
  OK(sl_view_begin(st, &v));
  sl_value out;
  ERR(SL_ENOTFOUND, sl_view_node_prop(v, a, "touched", &out));
  sl_counts c2;
  OK(sl_view_counts(v, &c2));
  assert_memory_equal(&c, &c2, sizeof c);
  sl_view_end(v);

  /* No-ops are not logged: an all-no-op transaction commits nothing. */
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_add_label(tx, a, "Person"));
  OK(sl_tx_remove_label(tx, a, "Nope"));
  OK(sl_tx_remove_node_prop(tx, a, "nope"));
  OK(sl_tx_set_node_prop(tx, a, "nope", NULL));
  OK(sl_tx_set_node_prop(tx, a, "nope", &(sl_value){.kind = SL_NULL}));
  OK(sl_tx_remove_rel_prop(tx, r, "nope"));
  uint64_t txid = 99;
  OK(sl_tx_commit(tx, &txid));
  assert_int_equal(txid, 0);
  assert_int_equal(sl_log_next_txid(log), 2);

  /* Each op, and reads through the transaction see its own writes. */
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_add_label(tx, b, "Admin"));
  OK(sl_tx_remove_label(tx, a, "Admin"));
  OK(sl_tx_set_node_prop(tx, b, "x", &(sl_value){.kind = SL_DOUBLE, .u.d = 2.5}));
  OK(sl_tx_set_node_prop(tx, a, "name", &(sl_value){.kind = SL_NULL})); /* null = remove */
  OK(sl_tx_remove_node_prop(tx, a, "born"));
  OK(sl_tx_set_rel_prop(tx, r, "w", &(sl_value){.kind = SL_BOOL, .u.b = true}));
  OK(sl_tx_remove_rel_prop(tx, r, "born"));
  sl_view *tv = sl_tx_view(tx);
  sl_node n;
  OK(sl_view_node(tv, a, &n));
  assert_int_equal(n.nlabels, 1);
  assert_string_equal(n.labels[0], "Person");
  assert_int_equal(n.nprops, 0);
  OK(sl_view_node_prop(tv, b, "x", &out));
  assert_true(out.kind == SL_DOUBLE && out.u.d == 2.5);
  sl_counts tc;
  OK(sl_view_counts(tv, &tc));
  assert_int_equal(tc.nodes, 3);
  sl_view_end(tv); /* owned by the tx: a no-op */
  assert_int_equal(commit(tx), 2);

  /* Delete refused while relationships remain; detach deletes them. */
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "SELF", a, a, NULL, 0, NULL));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "BACK", b, a, NULL, 0, NULL));
  assert_int_equal(commit(tx), 3);
  OK(sl_tx_begin(st, &tx));
  ERR(SL_EHASRELS, sl_tx_delete_node(tx, a, false));
  sl_tx_abort(tx);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_delete_node(tx, a, true));
  OK(sl_tx_delete_node(tx, 10, false));
  assert_int_equal(commit(tx), 4);
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  assert_int_equal(c.nodes, 1);
  assert_int_equal(c.rels, 0);
  ERR(SL_ENOTFOUND, sl_view_node(v, a, &n));
  ERR(SL_ENOTFOUND, sl_view_rel(v, r, &(sl_rel){0}));
  rels w = walk(v, b, SL_DIR_BOTH, NULL);
  assert_int_equal(w.n, 0);
  free(w.v);
  uint64_t cnt;
  OK(sl_view_count_label(v, "Person", &cnt));
  assert_int_equal(cnt, 1);
  sl_view_end(v);

  /* Commit times: explicit ones may not go back nor run ahead. */
  OK(sl_tx_begin(st, &tx));
  ERR(SL_ETIME, sl_tx_set_commit_time(tx, c.last_commit_us - 1));
  ERR(SL_ETIME, sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, NULL));
  sl_tx_abort(tx);
  OK(sl_tx_begin(st, &tx));
  ERR(SL_ETIME, sl_tx_set_commit_time(tx, sl_now_us() + 120 * 1000000ull));
  sl_tx_abort(tx);
  uint64_t t = sl_now_us() + 30 * 1000000ull;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_set_commit_time(tx, t));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, NULL));
  assert_int_equal(commit(tx), 5);
  assert_int_equal(counts_of(st).last_commit_us, t);
  /* The default clock never goes below the last commit. */
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, NULL));
  assert_int_equal(commit(tx), 6);
  assert_true(counts_of(st).last_commit_us >= t);

  sl_store_close(st);
  OK(sl_store_open(dir, 0, &st));
  compare_with_replay(st, "store_ops_replay");
  sl_store_close(st);
  done_dir(dir);
}

static void store_reads(void **state) {
  (void)state;
  char *dir = new_dir("store_reads");
  sl_store *st = create_open(dir, NULL);
  sl_tx *tx;
  const char *l1[] = {"B", "A"}, *l2[] = {"B"};
  sl_prop p1[] = {{"b", vint(2)}, {"ab", vstr("")}, {"a", vint(1)}};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, 1, l1, 2, p1, 3, NULL));
  OK(sl_tx_create_node(tx, 2, l2, 1, NULL, 0, NULL));
  OK(sl_tx_create_node(tx, 3, NULL, 0, NULL, 0, NULL));
  OK(sl_tx_create_rel(tx, 1, "KNOWS", 1, 2, NULL, 0, NULL));
  OK(sl_tx_create_rel(tx, 2, "LIKES", 2, 1, NULL, 0, NULL));
  OK(sl_tx_create_rel(tx, 3, "KNOWS", 1, 1, p1, 1, NULL));
  OK(sl_tx_create_rel(tx, 4, "AB", 1, 3, NULL, 0, NULL));
  commit(tx);

  sl_view *v;
  OK(sl_view_begin(st, &v));
  sl_node n;
  OK(sl_view_node(v, 1, &n));
  assert_int_equal(n.id, 1);
  assert_int_equal(n.nlabels, 2);
  assert_string_equal(n.labels[0], "A");
  assert_string_equal(n.labels[1], "B");
  assert_int_equal(n.nprops, 3);
  assert_string_equal(n.props[0].key, "a");
  assert_string_equal(n.props[1].key, "ab");
  assert_string_equal(n.props[2].key, "b");
  assert_int_equal(n.props[1].value.kind, SL_STRING);
  assert_int_equal(n.props[1].value.len, 0);
  ERR(SL_ENOTFOUND, sl_view_node(v, 4, &n));
  sl_rel r;
  OK(sl_view_rel(v, 3, &r));
  assert_string_equal(r.type, "KNOWS");
  assert_int_equal(r.start, 1);
  assert_int_equal(r.end, 1);
  assert_int_equal(r.nprops, 1);
  assert_string_equal(r.props[0].key, "b");
  sl_value val;
  OK(sl_view_rel_prop(v, 3, "b", &val));
  assert_int_equal(val.u.i, 2);
  ERR(SL_ENOTFOUND, sl_view_rel_prop(v, 1, "b", &val));
  ERR(SL_ENOTFOUND, sl_view_node_prop(v, 9, "b", &val));

  /* By direction, then type (length first), then id; a loop once for BOTH. */
  struct {
    sl_dir dir;
    const char *type;
    uint64_t want[5];
  } q[] = {
      {SL_DIR_OUT, NULL, {4, 1, 3}},     {SL_DIR_IN, NULL, {3, 2}},  {SL_DIR_BOTH, NULL, {4, 1, 3, 2}},
      {SL_DIR_OUT, "KNOWS", {1, 3}},     {SL_DIR_BOTH, "KNOWS", {1, 3}}, {SL_DIR_IN, "AB", {0}},
      {SL_DIR_BOTH, "LIKES", {2}},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(q); i++) {
    rels w = walk(v, 1, q[i].dir, q[i].type);
    size_t want_n = 0;
    while (want_n < 5 && q[i].want[want_n]) want_n++;
    if (w.n != want_n) fail_msg("query %zu: %zu rels, expected %zu", i, w.n, want_n);
    for (size_t k = 0; k < w.n; k++) assert_int_equal(w.v[k].id, q[i].want[k]);
    free(w.v);
  }
  rels w = walk(v, 2, SL_DIR_IN, NULL);
  assert_int_equal(w.n, 1);
  assert_int_equal(w.v[0].id, 1);
  assert_int_equal(w.v[0].start, 1);
  assert_int_equal(w.v[0].end, 2);
  assert_string_equal(w.v[0].type, "KNOWS");
  free(w.v);
  ERR(SL_ENOTFOUND, sl_view_node_rels(v, 9, SL_DIR_BOTH, NULL, push_rel, &w));
  ERR(SL_EINVAL, sl_view_node_rels(v, 1, SL_DIR_BOTH, "", push_rel, &w));

  ids l = {0};
  OK(sl_view_nodes_by_label(v, "B", push_id, &l));
  assert_int_equal(l.n, 2);
  assert_int_equal(l.v[0], 1);
  assert_int_equal(l.v[1], 2);
  uint64_t cnt;
  OK(sl_view_count_label(v, "A", &cnt));
  assert_int_equal(cnt, 1);
  OK(sl_view_count_label(v, "C", &cnt));
  assert_int_equal(cnt, 0);
  l.n = 0;
  OK(sl_view_all_nodes(v, push_id, &l));
  assert_int_equal(l.n, 3);
  assert_int_equal(l.v[2], 3);
  l.n = 0;
  OK(sl_view_all_rels(v, push_id, &l));
  assert_int_equal(l.n, 4);
  free(l.v);
  sl_counts c;
  OK(sl_view_counts(v, &c));
  assert_int_equal(c.nodes, 3);
  assert_int_equal(c.rels, 4);
  assert_int_equal(c.applied_txid, 1);
  sl_view_end(v);
  sl_store_close(st);
  done_dir(dir);
}

static int stop_at_2(void *arg, uint64_t id) {
  (void)arg;
  return id == 2 ? 7 : 0;
}

static void store_values_and_walk_stop(void **state) {
  (void)state;
  char *dir = new_dir("store_values");
  sl_store *st = create_open(dir, NULL);
  sl_value ints[] = {vint(INT64_MIN), vint(INT64_MAX), vint(0)};
  sl_value dbl[] = {{.kind = SL_DOUBLE, .u.d = NAN}, {.kind = SL_DOUBLE, .u.d = -INFINITY},
                    {.kind = SL_DOUBLE, .u.d = -0.0}};
  sl_value strs[] = {vstr(""), vstr("日本語 😀"), vstr("x")};
  sl_value bytes[] = {{.kind = SL_BYTES, .len = 3, .u.bytes = (const uint8_t *)"\0\1\0"},
                      {.kind = SL_BYTES, .len = 0}};
  sl_value bools[] = {{.kind = SL_BOOL, .u.b = true}, {.kind = SL_BOOL}};
  sl_prop props[] = {
      {"i", vint(-7)},
      {"d", {.kind = SL_DOUBLE, .u.d = -NAN}},
      {"s", vstr("ünï")},
      {"b", {.kind = SL_BYTES, .len = 2, .u.bytes = (const uint8_t *)"\0\xff"}},
      {"t", {.kind = SL_BOOL, .u.b = true}},
      {"li", {.kind = SL_LIST, .elem_kind = SL_INT, .len = 3, .u.items = ints}},
      {"ld", {.kind = SL_LIST, .elem_kind = SL_DOUBLE, .len = 3, .u.items = dbl}},
      {"ls", {.kind = SL_LIST, .elem_kind = SL_STRING, .len = 3, .u.items = strs}},
      {"lb", {.kind = SL_LIST, .elem_kind = SL_BYTES, .len = 2, .u.items = bytes}},
      {"lt", {.kind = SL_LIST, .elem_kind = SL_BOOL, .len = 2, .u.items = bools}},
      {"le", {.kind = SL_LIST, .elem_kind = SL_NULL, .len = 0}},
      {"lei", {.kind = SL_LIST, .elem_kind = SL_INT, .len = 0}},
  };
  sl_tx *tx;
  OK(sl_tx_begin(st, &tx));
  for (int i = 1; i <= 3; i++) OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, i == 1 ? props : NULL, i == 1 ? SL_ARRAY_LEN(props) : 0, NULL));
  commit(tx);
  sl_store_close(st);
  OK(sl_store_open(dir, 0, &st));
  sl_view *v;
  OK(sl_view_begin(st, &v));
  for (size_t i = 0; i < SL_ARRAY_LEN(props); i++) {
    sl_value out;
    OK(sl_view_node_prop(v, 1, props[i].key, &out));
    if (!sl_value_equal(&out, &props[i].value)) fail_msg("property %s changed on the way", props[i].key);
  }
  /* Equality is bitwise for doubles, strict about list element kinds. */
  sl_value z = {.kind = SL_DOUBLE, .u.d = 0.0}, nz = {.kind = SL_DOUBLE, .u.d = -0.0};
  assert_false(sl_value_equal(&z, &nz));
  assert_true(sl_value_equal(&dbl[0], &dbl[0]));
  assert_false(sl_value_equal(&props[10].value, &props[11].value));
  assert_int_equal(sl_view_all_nodes(v, stop_at_2, NULL), 7);
  sl_view_end(v);
  compare_with_replay(st, "store_values_replay");
  sl_store_close(st);
  done_dir(dir);
}

/* ---- the randomized model test --------------------------------------------------------------- */
#define MAXID 30000
#define NL 6
#define NK 6
#define NT 4
static const char *LBL[NL], *KEY[NK], *TYP[NT];
static char long_label[SL_NAME_MAX + 1];
static const char *const BAD_NAMES[] = {"", "\xff", "\xc0\x80", "a\xed\xa0\x80", long_label /* +1 below */};
static char too_long[SL_NAME_MAX + 2];

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void names_init(void) {
  memset(long_label, 'L', SL_NAME_MAX);
  memset(too_long, 'Z', SL_NAME_MAX + 1);
  const char *l[NL] = {"Person", "A", "B", "Ünïcødé", "\xf0\x9f\x98\x80", long_label};
  const char *k[NK] = {"name", "a", "ключ", "z", "ab", long_label};
  const char *t[NT] = {"KNOWS", "T", "Ω", "LIKES"};
  memcpy(LBL, l, sizeof l);
  memcpy(KEY, k, sizeof k);
  memcpy(TYP, t, sizeof t);
  qsort(LBL, NL, sizeof *LBL, cmp_str);
  qsort(KEY, NK, sizeof *KEY, cmp_str);
}

typedef struct mnode {
  bool live;
  unsigned labels;
  const sl_value *props[NK];
} mnode;
typedef struct mrel {
  bool live;
  int type;
  uint64_t start, end;
  const sl_value *props[NK];
} mrel;
typedef struct undo {
  bool rel;
  uint64_t id;
  mnode n;
  mrel r;
} undo;
typedef struct model {
  mnode *n;
  mrel *r;
  uint64_t next_node, next_rel, txid, saved_next_node, saved_next_rel;
  undo *u;
  size_t nu, ucap;
  uint64_t ops;
} model;

/* Every generated value, freed at the end (the model shares them). */
static void **pool;
static size_t npool, pool_cap;
static void *pool_alloc(size_t n) {
  if (npool == pool_cap) {
    pool_cap = pool_cap ? pool_cap * 2 : 1024;
    pool = realloc(pool, pool_cap * sizeof *pool);
  }
  return pool[npool++] = calloc(1, n ? n : 1);
}
static void pool_free(void) {
  for (size_t i = 0; i < npool; i++) free(pool[i]);
  free(pool);
  pool = NULL;
  npool = pool_cap = 0;
}

static void gen_scalar(uint64_t *rng, sl_kind k, sl_value *v) {
  static const char *const S[] = {"", "a", "héllo wörld", "日本語テキスト", "😀 emoji", "tab\tnew\nline", "\"q\"\\"};
  memset(v, 0, sizeof *v);
  v->kind = k;
  uint64_t r = tu_rand(rng);
  switch (k) {
  case SL_BOOL: v->u.b = r & 1; break;
  case SL_INT: {
    static const int64_t I[] = {0, 1, -1, INT64_MIN, INT64_MAX, 42};
    v->u.i = (r >> 8) % 3 ? I[r % 6] : (int64_t)tu_rand(rng);
    break;
  }
  case SL_DOUBLE: {
    const double D[] = {0.0, -0.0, 1.5, -2.25e300, NAN, INFINITY, -INFINITY, 5e-324};
    if ((r >> 8) % 3) v->u.d = D[r % 8];
    else {
      uint64_t bits = tu_rand(rng);
      memcpy(&v->u.d, &bits, 8);
    }
    break;
  }
  case SL_STRING: {
    if (r % 9 == 0) {
      size_t n = 300 + r % 700;
      char *s = pool_alloc(n);
      for (size_t i = 0; i < n; i++) s[i] = (char)('a' + i % 26);
      v->u.s = s;
      v->len = n;
    } else {
      v->u.s = S[r % SL_ARRAY_LEN(S)];
      v->len = strlen(v->u.s);
    }
    break;
  }
  default: { /* SL_BYTES */
    size_t n = r % 40;
    uint8_t *b = pool_alloc(n);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)tu_rand(rng);
    v->u.bytes = b;
    v->len = n;
    break;
  }
  }
}

/* A value; with `bad_ok` sometimes one the store must refuse (*bad). */
static const sl_value *gen_value(uint64_t *rng, bool bad_ok, bool *bad) {
  sl_value *v = pool_alloc(sizeof *v);
  *bad = false;
  if (bad_ok && tu_rand_below(rng, 100) == 0) {
    *bad = true;
    switch (tu_rand_below(rng, 4)) {
    case 0: *v = (sl_value){.kind = SL_STRING, .len = 3, .u.s = "a\0b"}; break;
    case 1: *v = (sl_value){.kind = SL_STRING, .len = 2, .u.s = "\xff\xfe"}; break;
    case 2: {
      sl_value *it = pool_alloc(2 * sizeof *it);
      it[0] = vint(1);
      it[1] = vstr("s");
      *v = (sl_value){.kind = SL_LIST, .elem_kind = SL_INT, .len = 2, .u.items = it};
      break;
    }
    default: {
      sl_value *it = pool_alloc(sizeof *it);
      *it = (sl_value){.kind = SL_LIST, .elem_kind = SL_NULL};
      *v = (sl_value){.kind = SL_LIST, .elem_kind = SL_LIST, .len = 1, .u.items = it};
      break;
    }
    }
    return v;
  }
  sl_kind k = (sl_kind)(1 + tu_rand_below(rng, 6));
  if (k != SL_LIST) {
    gen_scalar(rng, k, v);
    return v;
  }
  size_t n = tu_rand_below(rng, 4) == 0 ? 0 : tu_rand_below(rng, 6);
  sl_kind ek = n == 0 && tu_rand_below(rng, 2) ? SL_NULL : (sl_kind)(1 + tu_rand_below(rng, 5));
  sl_value *items = pool_alloc(n * sizeof *items);
  for (size_t i = 0; i < n; i++) gen_scalar(rng, ek, &items[i]);
  *v = (sl_value){.kind = SL_LIST, .elem_kind = ek, .len = n, .u.items = items};
  return v;
}

static void save_node(model *m, uint64_t id) {
  if (m->nu == m->ucap) {
    m->ucap = m->ucap ? m->ucap * 2 : 64;
    m->u = realloc(m->u, m->ucap * sizeof *m->u);
  }
  m->u[m->nu++] = (undo){.rel = false, .id = id, .n = m->n[id]};
}
static void save_rel(model *m, uint64_t id) {
  if (m->nu == m->ucap) {
    m->ucap = m->ucap ? m->ucap * 2 : 64;
    m->u = realloc(m->u, m->ucap * sizeof *m->u);
  }
  m->u[m->nu++] = (undo){.rel = true, .id = id, .r = m->r[id]};
}
static void model_begin(model *m) {
  m->nu = 0;
  m->saved_next_node = m->next_node;
  m->saved_next_rel = m->next_rel;
}
static void model_rollback(model *m) {
  while (m->nu) {
    undo *u = &m->u[--m->nu];
    if (u->rel) m->r[u->id] = u->r;
    else m->n[u->id] = u->n;
  }
  m->next_node = m->saved_next_node;
  m->next_rel = m->saved_next_rel;
}

static bool node_live(const model *m, uint64_t id) { return id < MAXID && m->n[id].live; }
static bool rel_live(const model *m, uint64_t id) { return id < MAXID && m->r[id].live; }

static uint64_t pick(uint64_t *rng, uint64_t next, bool (*live)(const model *, uint64_t), const model *m) {
  if (tu_rand_below(rng, 40) == 0) return tu_rand_below(rng, next + 3);
  for (int i = 0; i < 40; i++) {
    uint64_t id = 1 + tu_rand_below(rng, next > 1 ? next - 1 : 1);
    if (live(m, id)) return id;
  }
  return 1 + tu_rand_below(rng, next);
}

static const char *pick_name(uint64_t *rng, const char *const *names, size_t n, bool *bad) {
  *bad = tu_rand_below(rng, 150) == 0;
  if (!*bad) return names[tu_rand_below(rng, n)];
  size_t i = tu_rand_below(rng, SL_ARRAY_LEN(BAD_NAMES));
  return i == SL_ARRAY_LEN(BAD_NAMES) - 1 ? too_long : BAD_NAMES[i];
}

static int key_index(const char *k) {
  for (int i = 0; i < NK; i++)
    if (!strcmp(KEY[i], k)) return i;
  return -1;
}
static int label_index(const char *l) {
  for (int i = 0; i < NL; i++)
    if (!strcmp(LBL[i], l)) return i;
  return -1;
}
static int type_index(const char *t) {
  for (int i = 0; i < NT; i++)
    if (!strcmp(TYP[i], t)) return i;
  return -1;
}

/* The id for a create: SL_ID_NEW (assign) or a given one, mostly fresh
 * (leaving gaps), sometimes any id (0 included; taken, or freed by a delete). */
static uint64_t explicit_id(uint64_t *rng, uint64_t next) {
  uint64_t r = tu_rand_below(rng, 20);
  return r < 12 ? SL_ID_NEW : r < 18 ? next + tu_rand_below(rng, 3) : tu_rand_below(rng, next + 2);
}

/* Random props with distinct keys; *bad if a key or value must be refused. */
static size_t gen_props(uint64_t *rng, sl_prop *out, bool *bad) {
  size_t n = tu_rand_below(rng, 4);
  bool used[NK] = {0};
  *bad = false;
  for (size_t i = 0; i < n; i++) {
    bool b1, b2;
    const char *k = pick_name(rng, KEY, NK, &b1);
    if (!b1) {
      int ki = key_index(k);
      while (used[ki]) ki = (ki + 1) % NK;
      used[ki] = true;
      k = KEY[ki];
    }
    out[i].key = k;
    out[i].value = *gen_value(rng, true, &b2);
    *bad |= b1 || b2;
  }
  return n;
}

static void set_props(const sl_value **dst, const sl_prop *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sl_value *v = pool_alloc(sizeof *v);
    *v = p[i].value;
    dst[key_index(p[i].key)] = v;
  }
}

static bool has_rels(const model *m, uint64_t id) {
  for (uint64_t r = 0; r < m->next_rel && r < MAXID; r++)
    if (m->r[r].live && (m->r[r].start == id || m->r[r].end == id)) return true;
  return false;
}

/* One random op on tx and on the model; checks the store's answer.
 * Returns 0 (applied), 1 (a no-op by the model) or the refusal. */
static int random_op(sl_tx *tx, model *m, uint64_t *rng) {
  int want = 0, got = 0;
  bool bad = false, bad2 = false;
  uint64_t id, out = 0;
  sl_prop props[4];
  unsigned op = (unsigned)tu_rand_below(rng, 100);
  if (m->next_node > MAXID - 50 || m->next_rel > MAXID - 50) op = 30 + op % 70; /* stop creating */
  if (op < 16) { /* create_node */
    const char *labels[4];
    size_t nl = tu_rand_below(rng, 4), np;
    unsigned mask = 0;
    for (size_t i = 0; i < nl; i++) {
      bool b;
      labels[i] = pick_name(rng, LBL, NL, &b);
      bad |= b;
      if (!b) mask |= 1u << label_index(labels[i]);
    }
    np = gen_props(rng, props, &bad2);
    id = explicit_id(rng, m->next_node);
    want = bad || bad2 ? SL_EINVAL : (id != SL_ID_NEW && node_live(m, id)) ? SL_EEXIST : 0;
    got = sl_tx_create_node(tx, id, labels, nl, props, np, &out);
    if (got == 0 && want == 0) {
      uint64_t nid = id != SL_ID_NEW ? id : m->next_node;
      assert_int_equal(out, nid);
      save_node(m, nid);
      m->n[nid] = (mnode){.live = true, .labels = mask};
      set_props(m->n[nid].props, props, np);
      if (nid >= m->next_node) m->next_node = nid + 1;
    }
  } else if (op < 21) { /* delete_node */
    id = pick(rng, m->next_node, node_live, m);
    bool detach = tu_rand_below(rng, 10) < 7;
    want = !node_live(m, id) ? SL_ENOTFOUND : (!detach && has_rels(m, id)) ? SL_EHASRELS : 0;
    got = sl_tx_delete_node(tx, id, detach);
    if (got == 0 && want == 0) {
      for (uint64_t r = 0; r < m->next_rel; r++)
        if (m->r[r].live && (m->r[r].start == id || m->r[r].end == id)) {
          save_rel(m, r);
          m->r[r].live = false;
        }
      save_node(m, id);
      m->n[id] = (mnode){0};
    }
  } else if (op < 35) { /* add_label / remove_label */
    bool add = op < 29;
    id = pick(rng, m->next_node, node_live, m);
    const char *l = pick_name(rng, LBL, NL, &bad);
    unsigned bit = bad ? 0 : 1u << label_index(l);
    want = bad ? SL_EINVAL : !node_live(m, id) ? SL_ENOTFOUND : (add == !!(m->n[id].labels & bit)) ? 1 : 0;
    got = add ? sl_tx_add_label(tx, id, l) : sl_tx_remove_label(tx, id, l);
    if (got == 0 && want == 0) {
      save_node(m, id);
      m->n[id].labels ^= bit;
    }
  } else if (op < 72) { /* set / remove a node or rel prop */
    bool rel = op >= 55;
    bool remove = tu_rand_below(rng, 6) == 0, null_value = !remove && tu_rand_below(rng, 7) == 0;
    id = rel ? pick(rng, m->next_rel, rel_live, m) : pick(rng, m->next_node, node_live, m);
    bool live = rel ? rel_live(m, id) : node_live(m, id);
    const char *k = pick_name(rng, KEY, NK, &bad);
    const sl_value *v = NULL;
    if (!remove && !null_value) v = gen_value(rng, true, &bad2);
    const sl_value **slot = bad || !live ? NULL : rel ? &m->r[id].props[key_index(k)] : &m->n[id].props[key_index(k)];
    if (remove || null_value) {
      want = bad ? SL_EINVAL : !live ? SL_ENOTFOUND : !*slot ? 1 : 0;
      sl_value nullv = {.kind = SL_NULL};
      const sl_value *pv = tu_rand_below(rng, 2) ? &nullv : NULL;
      got = remove ? (rel ? sl_tx_remove_rel_prop(tx, id, k) : sl_tx_remove_node_prop(tx, id, k))
                   : (rel ? sl_tx_set_rel_prop(tx, id, k, pv) : sl_tx_set_node_prop(tx, id, k, pv));
    } else {
      want = bad || bad2 ? SL_EINVAL : !live ? SL_ENOTFOUND : 0;
      got = rel ? sl_tx_set_rel_prop(tx, id, k, v) : sl_tx_set_node_prop(tx, id, k, v);
    }
    if (got == 0 && want == 0) {
      if (rel) save_rel(m, id);
      else save_node(m, id);
      *slot = v; /* NULL for a removal */
    }
  } else if (op < 92) { /* create_rel */
    const char *t = pick_name(rng, TYP, NT, &bad);
    size_t np = gen_props(rng, props, &bad2);
    uint64_t s = pick(rng, m->next_node, node_live, m);
    uint64_t e = tu_rand_below(rng, 7) == 0 ? s : pick(rng, m->next_node, node_live, m);
    id = explicit_id(rng, m->next_rel);
    want = bad || bad2 ? SL_EINVAL
           : !node_live(m, s) || !node_live(m, e) ? SL_ENOTFOUND
           : (id != SL_ID_NEW && rel_live(m, id)) ? SL_EEXIST : 0;
    got = sl_tx_create_rel(tx, id, t, s, e, props, np, &out);
    if (got == 0 && want == 0) {
      uint64_t rid = id != SL_ID_NEW ? id : m->next_rel;
      assert_int_equal(out, rid);
      save_rel(m, rid);
      m->r[rid] = (mrel){.live = true, .type = type_index(t), .start = s, .end = e};
      set_props(m->r[rid].props, props, np);
      if (rid >= m->next_rel) m->next_rel = rid + 1;
    }
  } else { /* delete_rel */
    id = pick(rng, m->next_rel, rel_live, m);
    want = rel_live(m, id) ? 0 : SL_ENOTFOUND;
    got = sl_tx_delete_rel(tx, id);
    if (got == 0 && want == 0) {
      save_rel(m, id);
      m->r[id].live = false;
    }
  }
  bool noop = want == 1;
  if (noop) want = 0; /* the API answers 0 for a no-op */
  if (got != want)
    fail_msg("op class %u on id %" PRIu64 ": store says %s (%s), model says %s", op, id, sl_errname(got),
             sl_tx_error(tx) ? sl_tx_error(tx) : "", sl_errname(want));
  return noop ? 1 : got;
}

static int cmp_adj(const void *a, const void *b) {
  const relrec *x = a, *y = b;
  /* (dir encoded in .start/.end by the caller), type length, type, id */
  size_t lx = strlen(x->type), ly = strlen(y->type);
  if (lx != ly) return lx < ly ? -1 : 1;
  int c = strcmp(x->type, y->type);
  if (c) return c;
  return x->id < y->id ? -1 : x->id > y->id;
}

static void check_node(sl_view *v, const model *m, uint64_t id) {
  sl_node n;
  OK(sl_view_node(v, id, &n));
  size_t k = 0;
  for (int i = 0; i < NL; i++)
    if (m->n[id].labels & (1u << i)) {
      if (k >= n.nlabels || strcmp(n.labels[k], LBL[i])) fail_msg("node %" PRIu64 ": labels differ", id);
      k++;
    }
  if (k != n.nlabels) fail_msg("node %" PRIu64 ": %zu labels, model %zu", id, n.nlabels, k);
  k = 0;
  for (int i = 0; i < NK; i++)
    if (m->n[id].props[i]) {
      if (k >= n.nprops || strcmp(n.props[k].key, KEY[i])) fail_msg("node %" PRIu64 ": keys differ", id);
      if (!sl_value_equal(&n.props[k].value, m->n[id].props[i]))
        fail_msg("node %" PRIu64 ": value of %s differs", id, KEY[i]);
      k++;
    }
  if (k != n.nprops) fail_msg("node %" PRIu64 ": %zu props, model %zu", id, n.nprops, k);
}

static void check_rel(sl_view *v, const model *m, uint64_t id) {
  sl_rel r;
  OK(sl_view_rel(v, id, &r));
  const mrel *mr = &m->r[id];
  assert_string_equal(r.type, TYP[mr->type]);
  assert_int_equal(r.start, mr->start);
  assert_int_equal(r.end, mr->end);
  size_t k = 0;
  for (int i = 0; i < NK; i++)
    if (mr->props[i]) {
      if (k >= r.nprops || strcmp(r.props[k].key, KEY[i])) fail_msg("rel %" PRIu64 ": keys differ", id);
      if (!sl_value_equal(&r.props[k].value, mr->props[i])) fail_msg("rel %" PRIu64 ": value differs", id);
      k++;
    }
  assert_int_equal(k, r.nprops);
}

static void verify_view(sl_view *v, const model *m) {
  sl_counts c;
  OK(sl_view_counts(v, &c));
  ids all = {0};
  uint64_t live_nodes = 0, live_rels = 0;
  OK(sl_view_all_nodes(v, push_id, &all));
  size_t k = 0;
  for (uint64_t id = 0; id < m->next_node; id++) {
    if (!m->n[id].live) continue;
    live_nodes++;
    if (k >= all.n || all.v[k] != id) fail_msg("node %" PRIu64 " missing from the store", id);
    k++;
    check_node(v, m, id);
    /* Adjacency: out-going by (type length, type, id), then in-coming without loops. */
    relrec out[256], in[256];
    size_t no = 0, ni = 0;
    for (uint64_t r = 0; r < m->next_rel; r++) {
      const mrel *mr = &m->r[r];
      if (!mr->live) continue;
      if (mr->start == id && no < 256) {
        out[no] = (relrec){.id = r, .start = mr->start, .end = mr->end};
        snprintf(out[no++].type, SL_NAME_MAX + 1, "%s", TYP[mr->type]);
      }
      if (mr->end == id && mr->start != id && ni < 256) {
        in[ni] = (relrec){.id = r, .start = mr->start, .end = mr->end};
        snprintf(in[ni++].type, SL_NAME_MAX + 1, "%s", TYP[mr->type]);
      }
    }
    qsort(out, no, sizeof *out, cmp_adj);
    qsort(in, ni, sizeof *in, cmp_adj);
    rels w = walk(v, id, SL_DIR_BOTH, NULL);
    if (w.n != no + ni) fail_msg("node %" PRIu64 ": %zu relationships, model %zu", id, w.n, no + ni);
    for (size_t i = 0; i < w.n; i++) {
      const relrec *e = i < no ? &out[i] : &in[i - no];
      if (w.v[i].id != e->id || w.v[i].start != e->start || w.v[i].end != e->end || strcmp(w.v[i].type, e->type))
        fail_msg("node %" PRIu64 ": relationship %zu is %" PRIu64 ", model %" PRIu64, id, i, w.v[i].id, e->id);
    }
    free(w.v);
  }
  if (k != all.n) fail_msg("store has %zu nodes, model %zu", all.n, k);
  all.n = 0;
  OK(sl_view_all_rels(v, push_id, &all));
  k = 0;
  for (uint64_t id = 0; id < m->next_rel; id++) {
    if (!m->r[id].live) continue;
    live_rels++;
    if (k >= all.n || all.v[k] != id) fail_msg("rel %" PRIu64 " missing from the store", id);
    k++;
    check_rel(v, m, id);
  }
  if (k != all.n) fail_msg("store has %zu rels, model %zu", all.n, k);
  for (int l = 0; l < NL; l++) {
    all.n = 0;
    OK(sl_view_nodes_by_label(v, LBL[l], push_id, &all));
    k = 0;
    for (uint64_t id = 0; id < m->next_node; id++)
      if (m->n[id].live && (m->n[id].labels & (1u << l))) {
        if (k >= all.n || all.v[k] != id) fail_msg("label %s: node %" PRIu64 " missing", LBL[l], id);
        k++;
      }
    assert_int_equal(k, all.n);
    uint64_t cnt;
    OK(sl_view_count_label(v, LBL[l], &cnt));
    assert_int_equal(cnt, k);
  }
  free(all.v);
  assert_int_equal(c.nodes, live_nodes);
  assert_int_equal(c.rels, live_rels);
  assert_int_equal(c.applied_txid, m->txid);
  assert_int_equal(c.next_node_id, m->next_node);
  assert_int_equal(c.next_rel_id, m->next_rel);
}

static void verify_model(sl_store *st, const model *m) {
  sl_view *v;
  OK(sl_view_begin(st, &v));
  verify_view(v, m);
  sl_view_end(v);
}

static void store_randomized_model(void **state) {
  (void)state;
  uint64_t rng = tu_seed("store_randomized_model");
  names_init();
  char *dir = new_dir("store_random");
  sl_store_options o = {.segment_size = 256 << 10};
  sl_store *st = create_open(dir, &o);
  char *logdir = sub(dir, "log");
  OK(sl_log_consumer_set(logdir, "test", 0)); /* keep every segment for the replay below */
  model m = {.n = calloc(MAXID, sizeof(mnode)), .r = calloc(MAXID, sizeof(mrel)), .next_node = 1, .next_rel = 1};
  const int NTX = 4000;
  unsigned failed = 0, empty = 0, aborted = 0, by_code[5] = {0};
  const int codes[5] = {SL_EINVAL, SL_ENOTFOUND, SL_EEXIST, SL_EHASRELS, 0};
  uint64_t t0 = sl_mono_ns();
  for (int t = 0; t < NTX; t++) {
    sl_tx *tx;
    OK(sl_tx_begin(st, &tx));
    model_begin(&m);
    size_t nops = 1 + tu_rand_below(&rng, 6), applied_ops = 0;
    int err = 0;
    for (size_t i = 0; i < nops && !err; i++) {
      int rc = random_op(tx, &m, &rng);
      if (rc < 0) err = rc;
      else if (rc == 0) applied_ops++;
    }
    if (!err && tu_rand_below(&rng, 10) == 0) verify_view(sl_tx_view(tx), &(model){.n = m.n, .r = m.r,
        .next_node = m.next_node, .next_rel = m.next_rel, .txid = m.txid});
    uint64_t next = sl_log_next_txid(sl_store_log(st)), txid = 0;
    if (err) {
      ERR(err, sl_tx_add_label(tx, 1, "A")); /* later ops repeat the first error */
      ERR(err, sl_tx_commit(tx, &txid));
      assert_int_equal(sl_log_next_txid(sl_store_log(st)), next);
      model_rollback(&m);
      failed++;
      for (int i = 0; i < 5; i++)
        if (codes[i] == err || i == 4) {
          by_code[i]++;
          break;
        }
    } else if (tu_rand_below(&rng, 30) == 0) {
      sl_tx_abort(tx);
      model_rollback(&m);
      aborted++;
    } else {
      OK(sl_tx_commit(tx, &txid));
      if (applied_ops) {
        assert_int_equal(txid, m.txid + 1);
        m.txid = txid;
        m.ops += applied_ops;
      } else { /* only no-ops: nothing logged */
        assert_int_equal(txid, 0);
        assert_int_equal(sl_log_next_txid(sl_store_log(st)), next);
        empty++;
      }
    }
    if (t % 250 == 249) verify_model(st, &m);
  }
  double secs = (double)(sl_mono_ns() - t0) / 1e9;
  verify_model(st, &m);
  fprintf(stderr, "store_randomized_model: %d transactions (%" PRIu64 " committed, %u refused: %u EINVAL, %u "
          "ENOTFOUND, %u EEXIST, %u EHASRELS; %u aborted, %u empty) in %.2f s; %" PRIu64 " node ids, %" PRIu64
          " rel ids used\n", NTX, m.txid, failed, by_code[0], by_code[1], by_code[2], by_code[3], aborted, empty,
          secs, m.next_node - 1, m.next_rel - 1);
  sl_store_close(st);
  OK(sl_store_open(dir, 0, &st));
  verify_model(st, &m);

  double apply_s;
  char *dir2 = new_dir("store_random_replay");
  sl_store *rep = replay_into(logdir, dir2, &apply_s);
  verify_model(rep, &m);
  compare_stores(st, rep);
  fprintf(stderr, "store_randomized_model: replayed %" PRIu64 " transactions in %.3f s\n", m.txid, apply_s);

  /* Duplicates and gaps through sl_store_apply. */
  sl_log_reader *r;
  sl_log_reader_options ro = {0};
  sl_frame f;
  OK(sl_log_reader_open(logdir, 1, &ro, &r));
  OK(sl_log_reader_next(r, &f));
  ERR(SL_EEXIST, sl_store_apply(rep, f.payload, f.payload_len));
  sl_log_reader_close(r);
  sl_store_close(rep);
  sl_store_close(st);
  free(m.n);
  free(m.r);
  free(m.u);
  pool_free();
  free(logdir);
  done_dir(dir);
  done_dir(dir2);
}

/* ---- apply ---------------------------------------------------------------------------------------- */
static size_t pack_tx(uint64_t txid, uint64_t us, Shiplog__Op **ops, size_t n, uint8_t *buf) {
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = txid;
  t.commit_time_us = us;
  t.n_ops = n;
  t.ops = ops;
  return shiplog__transaction__pack(&t, buf);
}

/* Id 0 is an id like any other (Neo4j's ids start there): it is created,
 * read, referenced, logged and replayed as itself; SL_ID_NEW asks for a
 * fresh id, which is 1 in a new store whatever 0 holds. */
static void store_id_zero(void **state) {
  (void)state;
  char *dir = new_dir("store_id_zero");
  sl_store *st = create_open(dir, NULL);
  sl_tx *tx;
  uint64_t a = 99, b = 99, r = 99;
  const char *l = "L";
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, 0, &l, 1, NULL, 0, &a));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, &b));
  OK(sl_tx_create_rel(tx, 0, "T", 0, b, NULL, 0, &r));
  OK(sl_tx_set_node_prop(tx, 0, "k", &(sl_value){.kind = SL_INT, .u.i = 7}));
  OK(sl_tx_commit(tx, NULL));
  assert_int_equal(a, 0);
  assert_int_equal(b, 1);
  assert_int_equal(r, 0);
  OK(sl_tx_begin(st, &tx));
  ERR(SL_EEXIST, sl_tx_create_node(tx, 0, NULL, 0, NULL, 0, NULL));
  sl_tx_abort(tx);
  sl_counts c = counts_of(st);
  assert_int_equal(c.nodes, 2);
  assert_int_equal(c.rels, 1);
  assert_int_equal(c.next_node_id, 2);
  sl_view *v;
  sl_node n;
  sl_rel rel;
  OK(sl_view_begin(st, &v));
  OK(sl_view_node(v, 0, &n));
  assert_int_equal(n.nlabels, 1);
  OK(sl_view_rel(v, 0, &rel));
  assert_int_equal(rel.start, 0);
  assert_int_equal(rel.end, 1);
  sl_view_end(v);
  /* The log carries id 0 and a replay creates node 0 and relationship 0. */
  compare_with_replay(st, "store_id_zero_replay");
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_delete_node(tx, 0, true));
  OK(sl_tx_commit(tx, NULL));
  compare_with_replay(st, "store_id_zero_replay2");
  sl_store_close(st);
  done_dir(dir);
}

/* A transaction is bounded by what a receiver can take (log.h SL_TXN_MAX):
 * the op that passes the limit is refused with SL_ETOOBIG and the reason,
 * nothing is logged, and the store goes on. One just below it commits, and
 * its frame is what the transaction recorded. */
static void store_tx_too_large(void **state) {
  (void)state;
  char *dir = new_dir("store_tx_too_large");
  sl_store *st = create_open(dir, NULL);
  sl_log *log = sl_store_log(st);
  size_t big = 4u << 20;
  char *s = malloc(2 * big);
  assert_non_null(s);
  memset(s, 'x', 2 * big);
  sl_value v = {.kind = SL_STRING, .len = big, .u.s = s};
  sl_tx *tx;
  uint64_t n, txid;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, &n));
  char key[16];
  int rc = 0;
  size_t i;
  for (i = 0; i < 20 && rc == 0; i++) {
    snprintf(key, sizeof key, "k%zu", i);
    rc = sl_tx_set_node_prop(tx, n, key, &v);
  }
  ERR(SL_ETOOBIG, rc);
  assert_int_equal(i, SL_TXN_MAX / big + 1); /* the op that passed the limit */
  assert_non_null(strstr(sl_tx_error(tx), "transaction too large"));
  assert_non_null(strstr(sl_tx_error(tx), "the limit is 67104768"));
  ERR(SL_ETOOBIG, sl_tx_commit(tx, &txid));
  assert_int_equal(sl_log_next_txid(log), 1);
  assert_int_equal(counts_of(st).nodes, 0);
  /* Just below the limit: committed, and the frame holds every op. */
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, &n));
  for (i = 0; i < SL_TXN_MAX / big - 1; i++) {
    snprintf(key, sizeof key, "k%zu", i);
    OK(sl_tx_set_node_prop(tx, n, key, &v));
  }
  v.len = SL_TXN_MAX - (SL_TXN_MAX / big - 1) * big - 1024;
  OK(sl_tx_set_node_prop(tx, n, "last", &v));
  OK(sl_tx_commit(tx, &txid));
  assert_int_equal(txid, 1);
  sl_log_reader *r;
  sl_frame f;
  char *logdir = sub(sl_store_dir(st), "log");
  OK(sl_log_reader_open(logdir, 1, &(sl_log_reader_options){0}, &r));
  OK(sl_log_reader_next(r, &f));
  assert_true(f.payload_len <= SL_TXN_MAX);
  assert_true(f.payload_len > SL_TXN_MAX - 4096);
  sl_log_reader_close(r);
  free(logdir);
  compare_with_replay(st, "store_tx_too_large_replay");
  free(s);
  sl_store_close(st);
  done_dir(dir);
}

static void store_apply_records(void **state) {
  (void)state;
  char *dir = new_dir("store_apply");
  sl_store *st = create_open(dir, NULL);
  uint8_t buf[3][256];
  size_t len[3];
  Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
  Shiplog__Op op = SHIPLOG__OP__INIT, *ops[] = {&op};
  op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
  op.create_node = &cn;
  cn.id = 5;
  len[0] = pack_tx(1, 1000, ops, 1, buf[0]);
  cn.id = 6;
  len[1] = pack_tx(2, 1000, ops, 1, buf[1]);
  Shiplog__DeleteRelationship dr = SHIPLOG__DELETE_RELATIONSHIP__INIT;
  Shiplog__Op bad = SHIPLOG__OP__INIT, *bad_ops[] = {&bad};
  bad.op_case = SHIPLOG__OP__OP_DELETE_REL;
  bad.delete_rel = &dr;
  dr.id = 9;
  len[2] = pack_tx(3, 1000, bad_ops, 1, buf[2]);
  const uint8_t *p[3] = {buf[0], buf[1], buf[2]};

  ERR(SL_EGAP, sl_store_apply(st, p[1], len[1]));
  /* A failing record anywhere in a batch: none of it applies, nothing is logged. */
  ERR(SL_ENOTFOUND, sl_store_apply_batch(st, p, len, 3));
  assert_int_equal(counts_of(st).applied_txid, 0);
  assert_int_equal(sl_log_next_txid(sl_store_log(st)), 1);
  OK(sl_store_apply_batch(st, p, len, 2));
  ERR(SL_EEXIST, sl_store_apply(st, p[1], len[1]));
  ERR(SL_ECORRUPT, sl_store_apply(st, (const uint8_t *)"\xff\xff\xff", 3));
  sl_counts c = counts_of(st);
  assert_int_equal(c.applied_txid, 2);
  assert_int_equal(c.nodes, 2);
  assert_int_equal(c.next_node_id, 7);
  assert_int_equal(c.last_commit_us, 1000);
  /* The same bytes went to the log. */
  sl_log_reader *r;
  sl_log_reader_options ro = {0};
  sl_frame f;
  char *logdir = sub(dir, "log");
  OK(sl_log_reader_open(logdir, 1, &ro, &r));
  for (int i = 0; i < 2; i++) {
    OK(sl_log_reader_next(r, &f));
    assert_int_equal(f.payload_len, len[i]);
    assert_memory_equal(f.payload, buf[i], len[i]);
  }
  sl_log_reader_close(r);
  /* A local commit continues the sequence. */
  sl_tx *tx;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, NULL));
  assert_int_equal(commit(tx), 3);
  sl_store_close(st);
  free(logdir);
  done_dir(dir);
}

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
  bool acked[GF_N], failed[GF_N];
} gf_arg;

static void *gf_writer(void *p) {
  gf_arg *a = p;
  for (int i = 0; i < GF_N; i++) {
    sl_tx *tx;
    if (sl_tx_begin(a->st, &tx)) {
      a->failed[i] = true;
      continue;
    }
    sl_prop props[2] = {{"t", vint(a->t)}, {"i", vint(i)}};
    if (sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, props, 2, NULL)) {
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

static void gf_run(enum sl_fault_point point, int code, int skip) {
  char *dir = new_dir("store_group_faults");
  sl_store *st = create_open(dir, NULL);
  pthread_t th[GF_T];
  gf_arg *args = calloc(GF_T, sizeof *args);
  sl_fault_set(point, code, skip, 1);
  for (int t = 0; t < GF_T; t++) {
    args[t].st = st;
    args[t].t = t;
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
  gf_run(SL_FAULT_LOG_WRITE, -ENOSPC, 40); /* a group cut back; the store goes on */
  gf_run(SL_FAULT_LOG_WRITE, -EIO, 60);    /* FAILED mid-run */
  gf_run(SL_FAULT_LOG_FSYNC, -EIO, 30);    /* a group's fdatasync fails */
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
  pid_t pid = fork();
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
  /* A failed sync: the checkpoint fails and close does not claim a clean state. */
  sl_fault_set(SL_FAULT_STORE_CHECKPOINT, -EIO, 0, -1);
  ERR(-EIO, sl_store_checkpoint(st));
  sl_store_close(st);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  char *lock = sub(dir, "writer.lock");
  OK(sl_read_file(lock, 100, &buf, &len));
  assert_true(len > 5 && memcmp(buf, "open ", 5) == 0);
  free(buf);
  free(lock);
  OK(sl_store_open(dir, 0, &st));
  assert_int_equal(counts_of(st).applied_txid, 300);
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
      cmocka_unit_test(store_create_open_close),
      cmocka_unit_test(store_ops_and_refusals),
      cmocka_unit_test(store_reads),
      cmocka_unit_test(store_values_and_walk_stop),
      cmocka_unit_test(store_apply_records),
      cmocka_unit_test(store_id_zero),
      cmocka_unit_test(store_tx_too_large),
      cmocka_unit_test(store_randomized_model),
      cmocka_unit_test(store_crash_recovery),
      cmocka_unit_test(store_reader_process),
      cmocka_unit_test(store_concurrent_writers),
      cmocka_unit_test(store_group_faults),
      cmocka_unit_test(store_writer_lock),
      cmocka_unit_test(store_power_loss_rebuild),
      cmocka_unit_test(store_damaged_applied_tail_kept),
      cmocka_unit_test(store_checkpoint_prunes),
      cmocka_unit_test(store_space_tracks_data),
      cmocka_unit_test(store_compact),
      cmocka_unit_test(store_replays_log_tail),
      cmocka_unit_test(store_fault_points),
      cmocka_unit_test(store_power_loss_pruned),
      cmocka_unit_test(store_replay_speed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
