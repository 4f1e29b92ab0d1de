/*
 * Tests of the graph store (store/store.h), core: each op and refusal,
 * reads, walks, and applying logged transactions (sl_store_apply). The
 * randomized model is in test_store_model.c; crashes, power loss,
 * checkpoints and space in test_store_recovery.c; the helpers they share
 * in store_helpers.c.
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

/* ---- apply ---------------------------------------------------------------------------------------- */
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
    snprintf(key, sizeof key, "k%u", (unsigned)i);
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


/* Creates and scalar property sets are packed by hand (graph.c,
 * HAND-PACKED OPS): the logged transactions must be the bytes protobuf-c
 * gives the same messages, and read back as what was written. */
static void store_scalar_sets_pack_as_protobuf(void **state) {
  (void)state;
  char *dir = new_dir("store_scalar_pack");
  sl_store *st = create_open(dir, NULL);
  char long_s[300];
  memset(long_s, 's', sizeof long_s);
  const sl_value vals[] = {
      {.kind = SL_BOOL, .u.b = true}, {.kind = SL_BOOL, .u.b = false}, vint(0), vint(1), vint(-1), vint(63), vint(-64),
      vint(300), vint(INT64_MAX), vint(INT64_MIN), {.kind = SL_DOUBLE, .u.d = 0.0}, {.kind = SL_DOUBLE, .u.d = -0.0},
      {.kind = SL_DOUBLE, .u.d = 1.5}, {.kind = SL_DOUBLE, .u.d = NAN}, {.kind = SL_STRING, .len = 0, .u.s = ""},
      {.kind = SL_STRING, .len = 3, .u.s = "a\xc3\xa9"}, {.kind = SL_STRING, .len = sizeof long_s, .u.s = long_s},
      {.kind = SL_BYTES, .len = 3, .u.bytes = (const uint8_t *)"\0\1\2"}};
  enum { N = sizeof vals / sizeof vals[0] };
  sl_tx *tx;
  uint64_t node, rel, other;
  sl_prop props[N];
  char pkeys[N][8];
  for (int i = 0; i < N; i++) {
    snprintf(pkeys[i], sizeof pkeys[i], "p%d", i);
    props[i] = (sl_prop){pkeys[i], vals[i]};
  }
  const char *labels[] = {"A", "Label-two"};
  const sl_value items[] = {vint(1), vint(2)};
  sl_prop list_prop = {"l", {.kind = SL_LIST, .elem_kind = SL_INT, .len = 2, .u.items = items}};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, NULL, 0, &node));
  OK(sl_tx_create_node(tx, 1000, labels, 2, props, N, &other));
  OK(sl_tx_create_node(tx, SL_ID_NEW, labels, 1, &list_prop, 1, NULL)); /* not a scalar: protobuf-c packs it */
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "R", node, node, NULL, 0, &rel));
  OK(sl_tx_create_rel(tx, 1u << 20, "KNOWS", node, other, props, N, NULL));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "L", other, node, &list_prop, 1, NULL));
  assert_int_equal(commit(tx), 1);
  assert_int_equal(other, 1000);
  OK(sl_tx_begin(st, &tx));
  char keys[N][8];
  for (int i = 0; i < N; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    OK(sl_tx_set_node_prop(tx, node, keys[i], &vals[i]));
    OK(sl_tx_set_rel_prop(tx, rel, keys[i], &vals[i]));
  }
  /* A large id and a long key: multi-byte varints around the value. */
  OK(sl_tx_set_node_prop(tx, node, "a-key-longer-than-one-hundred-and-twenty-seven-bytes-................................"
                                   "..........................................", &vals[7]));
  assert_int_equal(commit(tx), 2);
  sl_log_reader *r;
  sl_log_reader_options ro = {0};
  sl_frame f;
  char *logdir = sub(dir, "log");
  OK(sl_log_reader_open(logdir, 1, &ro, &r));
  for (int k = 0; k < 2; k++) { /* both transactions: byte for byte what protobuf-c packs */
    OK(sl_log_reader_next(r, &f));
    Shiplog__Transaction *t = shiplog__transaction__unpack(NULL, f.payload_len, f.payload);
    assert_non_null(t);
    size_t n = shiplog__transaction__get_packed_size(t);
    uint8_t *again = malloc(n);
    shiplog__transaction__pack(t, again);
    assert_int_equal(n, f.payload_len);
    assert_memory_equal(again, f.payload, n);
    free(again);
    if (k == 0) {
      assert_int_equal(t->n_ops, 6);
      const Shiplog__CreateNode *cn = t->ops[1]->create_node;
      assert_true(cn->id == 1000 && cn->n_labels == 2 && cn->n_props == N);
      assert_string_equal(cn->labels[1], "Label-two");
      assert_string_equal(cn->props[N - 1]->key, pkeys[N - 1]);
      const Shiplog__CreateRelationship *cr = t->ops[4]->create_rel;
      assert_true(cr->id == 1u << 20 && cr->start == node && cr->end == other && cr->n_props == N);
      assert_string_equal(cr->type, "KNOWS");
      assert_int_equal(t->ops[2]->create_node->props[0]->value->kind_case, SHIPLOG__VALUE__KIND_LIST_VALUE);
    }
    shiplog__transaction__free_unpacked(t, NULL);
  }
  sl_log_reader_close(r);
  OK(sl_log_reader_open(logdir, 2, &ro, &r));
  OK(sl_log_reader_next(r, &f));
  Shiplog__Transaction *t = shiplog__transaction__unpack(NULL, f.payload_len, f.payload);
  assert_non_null(t);
  assert_int_equal(t->n_ops, 2 * N + 1);
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < 2; k++) {
      const Shiplog__Op *op = t->ops[2 * i + k];
      assert_int_equal(op->op_case, k ? SHIPLOG__OP__OP_SET_REL_PROP : SHIPLOG__OP__OP_SET_NODE_PROP);
      const Shiplog__SetProperty *sp = k ? op->set_rel_prop : op->set_node_prop;
      assert_int_equal(sp->id, k ? rel : node);
      assert_string_equal(sp->key, keys[i]);
      const Shiplog__Value *pv = sp->value;
      switch (vals[i].kind) {
      case SL_BOOL: assert_int_equal(pv->bool_value, vals[i].u.b); break;
      case SL_INT: assert_true(pv->kind_case == SHIPLOG__VALUE__KIND_INT_VALUE && pv->int_value == vals[i].u.i); break;
      case SL_DOUBLE: assert_memory_equal(&pv->double_value, &vals[i].u.d, 8); break;
      case SL_STRING:
        assert_int_equal(strlen(pv->string_value), vals[i].len);
        assert_memory_equal(pv->string_value, vals[i].u.s, vals[i].len);
        break;
      default:
        assert_int_equal(pv->bytes_value.len, vals[i].len);
        assert_memory_equal(pv->bytes_value.data, vals[i].u.bytes, vals[i].len);
      }
    }
  }
  size_t n = shiplog__transaction__get_packed_size(t);
  uint8_t *again = malloc(n);
  shiplog__transaction__pack(t, again);
  assert_int_equal(n, f.payload_len);
  assert_memory_equal(again, f.payload, n); /* byte for byte */
  free(again);
  shiplog__transaction__free_unpacked(t, NULL);
  sl_log_reader_close(r);
  /* And applied: the store reads them back. */
  sl_view *v;
  OK(sl_view_begin(st, &v));
  for (int i = 0; i < N; i++) {
    sl_value got;
    OK(sl_view_node_prop(v, node, keys[i], &got));
    assert_int_equal(got.kind, vals[i].kind);
    OK(sl_view_node_prop(v, other, pkeys[i], &got));
    assert_int_equal(got.kind, vals[i].kind);
  }
  sl_view_end(v);
  sl_store_close(st);
  free(logdir);
  done_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(store_create_open_close),
      cmocka_unit_test(store_ops_and_refusals),
      cmocka_unit_test(store_reads),
      cmocka_unit_test(store_values_and_walk_stop),
      cmocka_unit_test(store_apply_records),
      cmocka_unit_test(store_scalar_sets_pack_as_protobuf),
      cmocka_unit_test(store_id_zero),
      cmocka_unit_test(store_tx_too_large),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
