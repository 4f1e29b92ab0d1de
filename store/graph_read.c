/*
 * Every read of the graph (sl_view_*): prefix scans and point gets on a
 * view's LMDB transaction (a read transaction, or the open write
 * transaction of sl_tx_view, which also reads the transaction's meta).
 * The schema is graph.c's (SCHEMA there); what a read returns lives in the
 * view's scratch arena until the view's next read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

enum { DIR_OUT = SL_DIR_OUT, DIR_IN = SL_DIR_IN };

/* ---- reading ----------------------------------------------------------------------------- */
typedef int (*kv_fn)(void *arg, const MDB_val *k, const MDB_val *d);

/* Call fn for every key of db starting with prefix[0..pn) (all keys when
 * pn is 0), in key order. */
static int scan(sl_view *v, enum sl__db db, const uint8_t *prefix, size_t pn, kv_fn fn, void *arg) {
  MDB_cursor *c;
  int rc = sl__cursor(&v->cur, v->st->dbi, db, &c);
  if (rc) return rc;
  MDB_val k = {pn, (void *)prefix}, d;
  int mrc = mdb_cursor_get(c, &k, &d, pn ? MDB_SET_RANGE : MDB_FIRST);
  while (mrc == 0 && k.mv_size >= pn && (!pn || memcmp(k.mv_data, prefix, pn) == 0)) {
    if ((rc = fn(arg, &k, &d))) return rc;
    mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  if (mrc && mrc != MDB_NOTFOUND) {
    sl_diag_error("%s/data.mdb: LMDB %s: %s", v->st->dir, sl__db_names[db], mdb_strerror(mrc));
    return sl__mdb_err(mrc);
  }
  return 0;
}

static int view_get(sl_view *v, enum sl__db db, const void *k, size_t kn, MDB_val *out) {
  MDB_val key = {kn, (void *)k};
  int rc = mdb_get(v->txn, v->st->dbi[db], &key, out);
  if (rc == MDB_NOTFOUND) return SL_ENOTFOUND;
  if (rc) {
    sl_diag_error("%s/data.mdb: LMDB %s: %s", v->st->dir, sl__db_names[db], mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  return 0;
}

/* A growing array in the view's scratch arena. */
typedef struct grow {
  sl_view *v;
  void *items;
  size_t n, cap, size;
} grow;

static void *grow_next(grow *g) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : 8;
    void *items = sl_arena_alloc(&g->v->scratch, cap * g->size);
    if (!items) return NULL;
    if (g->n) memcpy(items, g->items, g->n * g->size);
    g->items = items;
    g->cap = cap;
  }
  return (char *)g->items + g->size * g->n++;
}

static int collect_label(void *arg, const MDB_val *k, const MDB_val *d) {
  (void)d;
  grow *g = arg;
  const char **slot = grow_next(g);
  if (!slot || !(*slot = sl_arena_strndup(&g->v->scratch, (const uint8_t *)k->mv_data + 8, k->mv_size - 8)))
    return -ENOMEM;
  return 0;
}

static int collect_prop(void *arg, const MDB_val *k, const MDB_val *d) {
  grow *g = arg;
  sl_prop *p = grow_next(g);
  if (!p || !(p->key = sl_arena_strndup(&g->v->scratch, (const uint8_t *)k->mv_data + 8, k->mv_size - 8)))
    return -ENOMEM;
  int rc = sl__value_decode(d->mv_data, d->mv_size, &g->v->scratch, &p->value);
  if (rc == SL_ECORRUPT) sl_diag_error("LMDB: property %s has a malformed value", p->key);
  return rc;
}

static int read_props(sl_view *v, bool rel, uint64_t id, size_t *n, sl_prop **props) {
  uint8_t k[8];
  grow g = {v, NULL, 0, 0, sizeof(sl_prop)};
  sl_put_be64(k, id);
  int rc = scan(v, rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS, k, 8, collect_prop, &g);
  *n = g.n;
  *props = g.items;
  return rc;
}

int sl_view_node(sl_view *v, uint64_t id, sl_node *out) {
  uint8_t k[8];
  MDB_val val;
  sl_arena_reset(&v->scratch);
  memset(out, 0, sizeof *out);
  sl_put_be64(k, id);
  int rc = view_get(v, SL__DB_NODES, k, 8, &val);
  if (rc) return rc;
  grow g = {v, NULL, 0, 0, sizeof(char *)};
  if ((rc = scan(v, SL__DB_NODE_LABELS, k, 8, collect_label, &g))) return rc;
  out->id = id;
  out->nlabels = g.n;
  out->labels = g.items;
  return read_props(v, false, id, &out->nprops, &out->props);
}

int sl_view_rel(sl_view *v, uint64_t id, sl_rel *out) {
  uint8_t k[8];
  MDB_val val;
  sl_arena_reset(&v->scratch);
  memset(out, 0, sizeof *out);
  sl_put_be64(k, id);
  int rc = view_get(v, SL__DB_RELS, k, 8, &val);
  if (rc) return rc;
  if (val.mv_size < 17) {
    sl_diag_error("LMDB rels: relationship %llu has a %zu-byte record", (unsigned long long)id, val.mv_size);
    return SL_ECORRUPT;
  }
  out->id = id;
  out->start = sl_get_be64(val.mv_data);
  out->end = sl_get_be64((uint8_t *)val.mv_data + 8);
  if (!(out->type = sl_arena_strndup(&v->scratch, (uint8_t *)val.mv_data + 16, val.mv_size - 16))) return -ENOMEM;
  return read_props(v, true, id, &out->nprops, &out->props);
}

static int view_prop(sl_view *v, bool rel, uint64_t id, const char *key, sl_value *out) {
  uint8_t k[8 + SL_NAME_MAX];
  MDB_val val;
  sl_arena_reset(&v->scratch);
  memset(out, 0, sizeof *out);
  int kl = sl__name_check(key);
  if (kl < 0) return SL_EINVAL;
  sl_put_be64(k, id);
  memcpy(k + 8, key, (size_t)kl);
  int rc = view_get(v, rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS, k, 8 + (size_t)kl, &val);
  if (rc) return rc;
  rc = sl__value_decode(val.mv_data, val.mv_size, &v->scratch, out);
  if (rc == SL_ECORRUPT) sl_diag_error("LMDB: property %s has a malformed value", key);
  return rc;
}

int sl_view_node_prop(sl_view *v, uint64_t id, const char *key, sl_value *out) {
  return view_prop(v, false, id, key, out);
}
int sl_view_rel_prop(sl_view *v, uint64_t id, const char *key, sl_value *out) {
  return view_prop(v, true, id, key, out);
}

typedef struct rel_walk {
  uint64_t node;
  bool skip_loops; /* the in-walk of SL_DIR_BOTH: loops were reported going out */
  sl_rel_fn fn;
  void *arg;
} rel_walk;

static int walk_rel(void *arg, const MDB_val *k, const MDB_val *d) {
  rel_walk *rw = arg;
  const uint8_t *p = k->mv_data;
  char type[SL_NAME_MAX + 1];
  size_t tl = p[9];
  if (k->mv_size != 10 + tl + 8 || d->mv_size != 8) {
    sl_diag_error("LMDB adjacency: malformed entry of node %llu", (unsigned long long)rw->node);
    return SL_ECORRUPT;
  }
  uint64_t rel = sl_get_be64(p + 10 + tl), other = sl_get_be64(d->mv_data);
  if (rw->skip_loops && other == rw->node) return 0;
  memcpy(type, p + 10, tl);
  type[tl] = 0;
  return p[8] == DIR_OUT ? rw->fn(rw->arg, rel, type, rw->node, other) : rw->fn(rw->arg, rel, type, other, rw->node);
}

int sl_view_node_rels(sl_view *v, uint64_t node, sl_dir dir, const char *type, sl_rel_fn fn, void *arg) {
  uint8_t k[10 + SL_NAME_MAX];
  MDB_val val;
  int tl = 0, rc;
  sl_arena_reset(&v->scratch);
  if ((dir & ~SL_DIR_BOTH) || !dir || (type && (tl = sl__name_check(type)) < 0)) return SL_EINVAL;
  sl_put_be64(k, node);
  if ((rc = view_get(v, SL__DB_NODES, k, 8, &val))) return rc;
  rel_walk rw = {node, false, fn, arg};
  for (int d = DIR_OUT; d <= DIR_IN; d++) {
    if (!(dir & d)) continue;
    k[8] = (uint8_t)d;
    size_t pn = 9;
    if (type) {
      k[9] = (uint8_t)tl;
      memcpy(k + 10, type, (size_t)tl);
      pn = 10 + (size_t)tl;
    }
    rw.skip_loops = dir == SL_DIR_BOTH && d == DIR_IN;
    if ((rc = scan(v, SL__DB_ADJACENCY, k, pn, walk_rel, &rw))) return rc;
  }
  return 0;
}

typedef struct id_walk {
  sl_id_fn fn;
  void *arg;
  uint64_t count;
} id_walk;

static int walk_tail_id(void *arg, const MDB_val *k, const MDB_val *d) {
  (void)d;
  id_walk *iw = arg;
  iw->count++;
  return iw->fn ? iw->fn(iw->arg, sl_get_be64((uint8_t *)k->mv_data + k->mv_size - 8)) : 0;
}

static int label_scan(sl_view *v, const char *label, id_walk *iw) {
  uint8_t k[1 + SL_NAME_MAX];
  sl_arena_reset(&v->scratch);
  int ll = sl__name_check(label);
  if (ll < 0) return SL_EINVAL;
  k[0] = (uint8_t)ll;
  memcpy(k + 1, label, (size_t)ll);
  return scan(v, SL__DB_LABEL_INDEX, k, 1 + (size_t)ll, walk_tail_id, iw);
}

int sl_view_nodes_by_label(sl_view *v, const char *label, sl_id_fn fn, void *arg) {
  id_walk iw = {fn, arg, 0};
  return label_scan(v, label, &iw);
}

int sl_view_count_label(sl_view *v, const char *label, uint64_t *out) {
  id_walk iw = {NULL, NULL, 0};
  int rc = label_scan(v, label, &iw);
  *out = iw.count;
  return rc;
}

int sl_view_all_nodes(sl_view *v, sl_id_fn fn, void *arg) {
  id_walk iw = {fn, arg, 0};
  sl_arena_reset(&v->scratch);
  return scan(v, SL__DB_NODES, NULL, 0, walk_tail_id, &iw);
}

int sl_view_all_rels(sl_view *v, sl_id_fn fn, void *arg) {
  id_walk iw = {fn, arg, 0};
  sl_arena_reset(&v->scratch);
  return scan(v, SL__DB_RELS, NULL, 0, walk_tail_id, &iw);
}

int sl_view_counts(sl_view *v, sl_counts *out) {
  sl__meta m;
  sl_arena_reset(&v->scratch);
  memset(out, 0, sizeof *out);
  if (v->tx_meta) {
    m = *v->tx_meta;
  } else {
    int rc = sl__meta_read(v->txn, v->st->dbi[SL__DB_META], &m);
    if (rc) return rc;
  }
  out->nodes = m.node_count;
  out->rels = m.rel_count;
  out->applied_txid = m.applied_txid;
  out->last_commit_us = m.last_commit_us;
  out->next_node_id = m.next_node_id;
  out->next_rel_id = m.next_rel_id;
  return 0;
}

/* ---- for the query engine (store.h, QUERY SCANS) ------------------------------------------------ */
int sl_view_scan_ids(sl_view *v, bool rels, const char *label, uint64_t from, uint64_t *ids, size_t max, size_t *n) {
  uint8_t k[1 + SL_NAME_MAX + 8];
  size_t pn = 0, kn;
  enum sl__db db = rels ? SL__DB_RELS : label ? SL__DB_LABEL_INDEX : SL__DB_NODES;
  *n = 0;
  sl_arena_reset(&v->scratch);
  if (label) {
    int ll = sl__name_check(label);
    if (ll < 0) return SL_EINVAL;
    k[0] = (uint8_t)ll;
    memcpy(k + 1, label, (size_t)ll);
    pn = 1 + (size_t)ll;
  }
  sl_put_be64(k + pn, from);
  kn = pn + 8;
  MDB_cursor *c;
  int rc = sl__cursor(&v->cur, v->st->dbi, db, &c);
  if (rc) return rc;
  MDB_val key = {kn, k}, d;
  int mrc = mdb_cursor_get(c, &key, &d, MDB_SET_RANGE);
  while (mrc == 0 && *n < max && key.mv_size == kn && (!pn || memcmp(key.mv_data, k, pn) == 0)) {
    ids[(*n)++] = sl_get_be64((uint8_t *)key.mv_data + pn);
    mrc = mdb_cursor_get(c, &key, &d, MDB_NEXT);
  }
  if (mrc && mrc != MDB_NOTFOUND) {
    sl_diag_error("%s/data.mdb: LMDB %s: %s", v->st->dir, sl__db_names[db], mdb_strerror(mrc));
    return sl__mdb_err(mrc);
  }
  return 0;
}

int sl_view_node_has_label(sl_view *v, uint64_t id, const char *label, bool *out) {
  uint8_t k[8 + SL_NAME_MAX];
  MDB_val val;
  int ll = sl__name_check(label);
  if (ll < 0) return SL_EINVAL;
  sl_put_be64(k, id);
  memcpy(k + 8, label, (size_t)ll);
  int rc = view_get(v, SL__DB_NODE_LABELS, k, 8 + (size_t)ll, &val);
  *out = rc == 0;
  return rc == SL_ENOTFOUND ? 0 : rc;
}

typedef struct name_walk {
  sl_name_fn fn;
  void *arg;
  int what;
} name_walk;

static int walk_name(void *arg, const MDB_val *k, const MDB_val *d) {
  name_walk *nw = arg;
  char name[SL_NAME_MAX + 1];
  const uint8_t *p;
  size_t n;
  if (nw->what == 1) { /* rels: start end type */
    if (d->mv_size < 17) return SL_ECORRUPT;
    p = (const uint8_t *)d->mv_data + 16;
    n = d->mv_size - 16;
  } else { /* props: id key */
    if (k->mv_size < 9) return SL_ECORRUPT;
    p = (const uint8_t *)k->mv_data + 8;
    n = k->mv_size - 8;
  }
  if (n > SL_NAME_MAX) return SL_ECORRUPT;
  memcpy(name, p, n);
  name[n] = 0;
  return nw->fn(nw->arg, name);
}

int sl_view_names(sl_view *v, int what, sl_name_fn fn, void *arg) {
  sl_arena_reset(&v->scratch);
  if (what == 0) {
    /* label_index: len(1) label id(8); jump from label to label */
    MDB_cursor *c;
    int rc = sl__cursor(&v->cur, v->st->dbi, SL__DB_LABEL_INDEX, &c);
    if (rc) return rc;
    MDB_val k, d;
    int mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    while (mrc == 0) {
      const uint8_t *p = k.mv_data;
      size_t ll = p[0];
      if (k.mv_size != 1 + ll + 8) return SL_ECORRUPT;
      char name[SL_NAME_MAX + 1];
      memcpy(name, p + 1, ll);
      name[ll] = 0;
      if ((rc = fn(arg, name))) return rc;
      uint8_t next[1 + SL_NAME_MAX + 8];
      memcpy(next, p, 1 + ll);
      memset(next + 1 + ll, 0xff, 8);
      MDB_val nk = {1 + ll + 8, next};
      mrc = mdb_cursor_get(c, &nk, &d, MDB_SET_RANGE);
      if (mrc == 0 && nk.mv_size == 1 + ll + 8 && !memcmp(nk.mv_data, next, 1 + ll + 8)) mrc = mdb_cursor_get(c, &nk, &d, MDB_NEXT);
      k = nk;
    }
    return mrc == MDB_NOTFOUND ? 0 : sl__mdb_err(mrc);
  }
  name_walk nw = {fn, arg, what};
  if (what == 1) return scan(v, SL__DB_RELS, NULL, 0, walk_name, &nw);
  int rc = scan(v, SL__DB_NODE_PROPS, NULL, 0, walk_name, &nw);
  return rc ? rc : scan(v, SL__DB_REL_PROPS, NULL, 0, walk_name, &nw);
}
