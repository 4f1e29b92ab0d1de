/*
 * Helpers shared by the store tests (test_store*.c); see store_helpers.h.
 * They check with cmocka and stop the test on the first difference.
 */
#include "store_helpers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *new_dir(const char *name) { return strdup(tu_tmpdir(name)); }

/* Remove a test's directory once it passed (failures leave theirs). */
void done_dir(char *dir) {
  sl_remove_tree(dir);
  free(dir);
}

char *sub(const char *dir, const char *name) { return tu_path(dir, name); }

sl_store *create_open(const char *dir, const sl_store_options *o) {
  sl_store *st;
  OK(sl_store_create(dir, o));
  OK(sl_store_open(dir, 0, &st));
  return st;
}

sl_value vint(int64_t i) { return (sl_value){.kind = SL_INT, .u.i = i}; }
sl_value vstr(const char *s) { return (sl_value){.kind = SL_STRING, .len = strlen(s), .u.s = s}; }

sl_counts counts_of(sl_store *st) {
  sl_view *v;
  sl_counts c;
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  sl_view_end(v);
  return c;
}

uint64_t commit(sl_tx *tx) {
  uint64_t txid = 0;
  OK(sl_tx_commit(tx, &txid));
  return txid;
}

/* ---- collecting walk results ---------------------------------------------------- */
int push_id(void *arg, uint64_t id) {
  ids *l = arg;
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = id;
  return 0;
}

int push_rel(void *arg, uint64_t id, const char *type, uint64_t start, uint64_t end) {
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

rels walk(sl_view *v, uint64_t node, sl_dir dir, const char *type) {
  rels l = {0};
  OK(sl_view_node_rels(v, node, dir, type, push_rel, &l));
  return l;
}

/* ---- comparing two stores entity by entity --------------------------------------- */
static void assert_props_equal(const sl_prop *a, size_t na, const sl_prop *b, size_t nb, const char *what,
                               uint64_t id) {
  if (na != nb) fail_msg("%s %" PRIu64 ": %zu vs %zu properties", what, id, na, nb);
  for (size_t i = 0; i < na; i++) {
    if (strcmp(a[i].key, b[i].key)) fail_msg("%s %" PRIu64 ": key %s vs %s", what, id, a[i].key, b[i].key);
    if (!sl_value_equal(&a[i].value, &b[i].value)) fail_msg("%s %" PRIu64 ": value of %s differs", what, id, a[i].key);
  }
}

void compare_views(sl_view *a, sl_view *b) {
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

void compare_stores(sl_store *x, sl_store *y) {
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
sl_store *replay_into(const char *logdir, const char *dir, double *seconds) {
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

void compare_with_replay(sl_store *st, const char *name) {
  char *logdir = sub(sl_store_dir(st), "log");
  char *dir = new_dir(name);
  sl_store *rep = replay_into(logdir, dir, NULL);
  compare_stores(st, rep);
  sl_store_close(rep);
  free(logdir);
  done_dir(dir);
}

size_t pack_tx(uint64_t txid, uint64_t us, Shiplog__Op **ops, size_t n, uint8_t *buf) {
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = txid;
  t.commit_time_us = us;
  t.n_ops = n;
  t.ops = ops;
  return shiplog__transaction__pack(&t, buf);
}
