/*
 * sl_store_check_state (store.h): does the LMDB state agree with itself?
 * `shiplog verify` compares the state with a replay of the log when the log
 * still begins at txid 1; a store loaded from a full dump (its log begins
 * after the image), an import or a store whose log was pruned has no such
 * log, and used to be reported "state check skipped". What every store can
 * still be checked for is what each write keeps true across the databases
 * (store.h LMDB DATABASES; graph.c writes them together):
 *   - every node_labels key (id, label) names a node, and label_index holds
 *     (len, label, id) for it; the two hold as many keys (so they match one
 *     for one);
 *   - every node_props key names a node, every rel_props key a relationship;
 *   - every relationship's start and end are nodes, adjacency holds
 *     (start, out, type, rel) -> end and (end, in, type, rel) -> start, and
 *     holds exactly two keys per relationship;
 *   - meta's node and relationship counts are the entries of nodes and rels,
 *     and its next ids lie above every id in use.
 * One LMDB read transaction (a writer may go on), cursors in key order and
 * point lookups: memory stays constant. Values are not decoded here (the
 * replay comparison and the exports read them). The first disagreement is
 * logged naming the database and key and returned as SL_ECORRUPT.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"

typedef struct walk {
  sl_store *st;
  MDB_txn *txn;
  const char *dir;
} walk;

__attribute__((format(printf, 2, 3))) static int inconsistent(const walk *w, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  sl_diag_error("%s: FAILED: the state in %s/data.mdb is inconsistent: %s", w->dir, w->dir, what);
  return SL_ECORRUPT;
}

static int lmdb_fail(const walk *w, int rc, enum sl__db db) {
  sl_diag_error("%s: LMDB %s: %s", w->dir, sl__db_names[db], mdb_strerror(rc));
  return sl__mdb_err(rc);
}

static bool has(const walk *w, enum sl__db db, const void *key, size_t klen, MDB_val *val) {
  MDB_val k = {klen, (void *)key}, v;
  if (mdb_get(w->txn, w->st->dbi[db], &k, val ? val : &v)) return false;
  return true;
}

static bool has_id(const walk *w, enum sl__db db, uint64_t id) {
  uint8_t k[8];
  sl_put_be64(k, id);
  return has(w, db, k, 8, NULL);
}

/* Visit every key of db: fn returns 0 to go on. *count: keys visited. */
static int each(const walk *w, enum sl__db db, int (*fn)(const walk *, const MDB_val *, const MDB_val *, void *),
                void *arg, uint64_t *count) {
  MDB_cursor *c;
  MDB_val k, v;
  int rc = mdb_cursor_open(w->txn, w->st->dbi[db], &c);
  if (rc) return lmdb_fail(w, rc, db);
  *count = 0;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    ++*count;
    int frc = fn(w, &k, &v, arg);
    if (frc) {
      mdb_cursor_close(c);
      return frc;
    }
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : lmdb_fail(w, rc, db);
}

static int node_id(const walk *w, const MDB_val *k, const MDB_val *v, void *arg) {
  (void)v;
  uint64_t *max = arg;
  if (k->mv_size != 8) return inconsistent(w, "nodes holds a key of %zu bytes", k->mv_size);
  *max = sl_get_be64(k->mv_data);
  return 0;
}

static int node_label(const walk *w, const MDB_val *k, const MDB_val *v, void *arg) {
  (void)v;
  (void)arg;
  uint8_t key[1 + SL_NAME_MAX + 8];
  size_t ll = k->mv_size - 8;
  if (k->mv_size <= 8 || ll > SL_NAME_MAX)
    return inconsistent(w, "node_labels holds a key of %zu bytes", k->mv_size);
  uint64_t id = sl_get_be64(k->mv_data);
  if (!has_id(w, SL__DB_NODES, id)) return inconsistent(w, "node %" PRIu64 " has a label but is no node", id);
  key[0] = (uint8_t)ll;
  memcpy(key + 1, (const uint8_t *)k->mv_data + 8, ll);
  sl_put_be64(key + 1 + ll, id);
  if (!has(w, SL__DB_LABEL_INDEX, key, 1 + ll + 8, NULL))
    return inconsistent(w, "node %" PRIu64 " has the label \"%.*s\", which the label index lacks", id, (int)ll,
                        (const char *)k->mv_data + 8);
  return 0;
}

static int owned(const walk *w, const MDB_val *k, const MDB_val *v, void *arg) {
  (void)v;
  enum sl__db owner = *(const enum sl__db *)arg;
  const char *what = owner == SL__DB_NODES ? "node" : "relationship";
  if (k->mv_size < 8) return inconsistent(w, "a %s property key of %zu bytes", what, k->mv_size);
  uint64_t id = sl_get_be64(k->mv_data);
  if (!has_id(w, owner, id)) return inconsistent(w, "%s %" PRIu64 " has properties but does not exist", what, id);
  return 0;
}

static int rel(const walk *w, const MDB_val *k, const MDB_val *v, void *arg) {
  uint64_t *max = arg;
  uint8_t ak[10 + SL_NAME_MAX + 8];
  if (k->mv_size != 8 || v->mv_size <= 16 || v->mv_size - 16 > SL_NAME_MAX)
    return inconsistent(w, "rels holds a record of %zu + %zu bytes", k->mv_size, v->mv_size);
  uint64_t id = sl_get_be64(k->mv_data), start = sl_get_be64(v->mv_data), end = sl_get_be64((uint8_t *)v->mv_data + 8);
  size_t tl = v->mv_size - 16;
  *max = id;
  if (!has_id(w, SL__DB_NODES, start) || !has_id(w, SL__DB_NODES, end))
    return inconsistent(w, "relationship %" PRIu64 " connects node %" PRIu64 ", which is no node", id,
                        has_id(w, SL__DB_NODES, start) ? end : start);
  for (int dir = 0; dir < 2; dir++) {
    uint64_t from = dir ? end : start, other = dir ? start : end;
    MDB_val got;
    sl_put_be64(ak, from);
    ak[8] = (uint8_t)(dir ? SL_DIR_IN : SL_DIR_OUT);
    ak[9] = (uint8_t)tl;
    memcpy(ak + 10, (const uint8_t *)v->mv_data + 16, tl);
    sl_put_be64(ak + 10 + tl, id);
    if (!has(w, SL__DB_ADJACENCY, ak, 10 + tl + 8, &got) || got.mv_size != 8 || sl_get_be64(got.mv_data) != other)
      return inconsistent(w, "relationship %" PRIu64 " is missing from node %" PRIu64 "'s adjacency", id, from);
  }
  return 0;
}

int sl_store_check_state(sl_store *st) {
  walk w = {.st = st, .dir = st->dir};
  sl__meta m;
  uint64_t nodes = 0, labels = 0, index, props = 0, rels = 0, rprops = 0, adj, max_node = 0, max_rel = 0;
  enum sl__db node_owner = SL__DB_NODES, rel_owner = SL__DB_RELS;
  int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &w.txn);
  if (rc) return lmdb_fail(&w, rc, SL__DB_META);
  if ((rc = sl__meta_read(w.txn, st->dbi[SL__DB_META], &m)) ||
      (rc = each(&w, SL__DB_NODES, node_id, &max_node, &nodes)) ||
      (rc = each(&w, SL__DB_NODE_LABELS, node_label, NULL, &labels)) ||
      (rc = each(&w, SL__DB_NODE_PROPS, owned, &node_owner, &props)) ||
      (rc = each(&w, SL__DB_RELS, rel, &max_rel, &rels)) ||
      (rc = each(&w, SL__DB_REL_PROPS, owned, &rel_owner, &rprops)))
    goto out;
  MDB_stat ms;
  if ((rc = mdb_stat(w.txn, st->dbi[SL__DB_LABEL_INDEX], &ms))) {
    rc = lmdb_fail(&w, rc, SL__DB_LABEL_INDEX);
    goto out;
  }
  index = ms.ms_entries;
  if ((rc = mdb_stat(w.txn, st->dbi[SL__DB_ADJACENCY], &ms))) {
    rc = lmdb_fail(&w, rc, SL__DB_ADJACENCY);
    goto out;
  }
  adj = ms.ms_entries;
  if (index != labels)
    rc = inconsistent(&w, "the label index holds %" PRIu64 " entries for %" PRIu64 " node labels", index, labels);
  else if (adj != 2 * rels)
    rc = inconsistent(&w, "adjacency holds %" PRIu64 " entries for %" PRIu64 " relationships (two each)", adj, rels);
  else if (m.node_count != nodes)
    rc = inconsistent(&w, "meta counts %" PRIu64 " nodes, nodes holds %" PRIu64, m.node_count, nodes);
  else if (m.rel_count != rels)
    rc = inconsistent(&w, "meta counts %" PRIu64 " relationships, rels holds %" PRIu64, m.rel_count, rels);
  else if (nodes && max_node >= m.next_node_id)
    rc = inconsistent(&w, "node %" PRIu64 " exists, meta's next node id is %" PRIu64, max_node, m.next_node_id);
  else if (rels && max_rel >= m.next_rel_id)
    rc = inconsistent(&w, "relationship %" PRIu64 " exists, meta's next relationship id is %" PRIu64, max_rel,
                      m.next_rel_id);
out:
  mdb_txn_abort(w.txn);
  return rc;
}
