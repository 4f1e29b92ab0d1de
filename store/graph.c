/*
 * The graph in LMDB: the schema, the ops, and the log records they come
 * from and go to; every read is graph_read.c.
 *
 * SCHEMA (store.h lists it too; integers in keys are big-endian so that
 * memcmp order is numeric order)
 *   meta        name -> u64 LE (applied_txid, last_commit_us, next_node_id,
 *               next_rel_id, node_count, rel_count, base_txid,
 *               segment_size, no_log, format_version) or bytes (store_id)
 *   nodes       id(8) -> empty
 *   node_labels id(8) label -> empty
 *   label_index len(1) label id(8) -> empty
 *   node_props  id(8) key -> value (value.c)
 *   rels        id(8) -> start(8) end(8) type
 *   rel_props   id(8) key -> value
 *   adjacency   node(8) dir(1) tlen(1) type rel(8) -> other node(8)
 *               dir 1 = out (node is the start), 2 = in; a self-loop has
 *               one entry of each
 *   schema, index   indexes and constraints (schema.c); every op below
 *               keeps the index entries of what it changes (the
 *               sl__schema_entity calls)
 * Every key is unique, so a label, property or adjacency entry is one put
 * and one delete, and "everything of node N" is one prefix scan.
 *
 * OPS (op_*) validate and apply in one pass to an LMDB write
 * transaction. A failing op leaves that transaction half-changed; callers
 * never commit it (sl_tx_commit and sl_store_apply abort), which is what
 * makes a transaction all-or-nothing without a separate validation pass.
 * Checks run in this order, so that one input has one answer: names and
 * values (SL_EINVAL), referenced entities (SL_ENOTFOUND), the new id
 * (SL_EEXIST), then relationships left (SL_EHASRELS).
 *
 * ONE APPLY PATH: the sl_tx_* wrappers call the ops and, when an op
 * changed something, record it into the Transaction being built (the ids
 * assigned included); sl__apply_record decodes a packed Transaction and
 * calls the same ops. Replay is therefore the commit path minus recording,
 * and deterministic: ids come from the record, detach deletes walk the
 * adjacency in key order.
 *
 * Meta counters live in sl__wctx.meta during a transaction and are written
 * once, at its commit (commit.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_int.h"

const char *const sl__db_names[SL__DB_COUNT] = {
    "meta", "nodes", "node_labels", "label_index", "node_props", "rels", "rel_props", "adjacency", "schema", "index"};

enum { DIR_OUT = SL_DIR_OUT, DIR_IN = SL_DIR_IN };

int sl__mdb_err(int rc) {
  if (rc >= 0) return -rc;
  switch (rc) {
  case MDB_MAP_FULL:
  case MDB_TXN_FULL:
  case MDB_CURSOR_FULL:
  case MDB_PAGE_FULL:
    return -ENOSPC;
  case MDB_READERS_FULL:
    return -EAGAIN;
  case MDB_VERSION_MISMATCH:
    return SL_EVERSION;
  case MDB_NOTFOUND:
    return SL_ENOTFOUND;
  case MDB_KEYEXIST:
    return SL_EEXIST;
  case MDB_BAD_VALSIZE:
    return SL_EINVAL;
  default:
    return SL_ECORRUPT;
  }
}

/* *out is set on every path (NULL on failure), so that no caller reads an
 * unset cursor: the compiler cannot prove sl__mdb_err(rc) != 0. */
int sl__cursor(sl__cursors *cs, const MDB_dbi *dbis, enum sl__db db, MDB_cursor **out) {
  *out = NULL;
  if (!cs->c[db]) {
    int rc = mdb_cursor_open(cs->txn, dbis[db], &cs->c[db]);
    if (rc) {
      sl_diag_error("LMDB cursor on %s: %s", sl__db_names[db], mdb_strerror(rc));
      return sl__mdb_err(rc);
    }
  }
  *out = cs->c[db];
  return 0;
}

void sl__cursors_close(sl__cursors *cs) {
  for (int i = 0; i < SL__DB_COUNT; i++) {
    if (cs->c[i]) mdb_cursor_close(cs->c[i]);
    cs->c[i] = NULL;
  }
}

/* ---- meta ------------------------------------------------------------------ */
static const struct {
  const char *name;
  size_t off;
} meta_fields[] = {
    {"applied_txid", offsetof(sl__meta, applied_txid)},
    {"last_commit_us", offsetof(sl__meta, last_commit_us)},
    {"next_node_id", offsetof(sl__meta, next_node_id)},
    {"next_rel_id", offsetof(sl__meta, next_rel_id)},
    {"node_count", offsetof(sl__meta, node_count)},
    {"rel_count", offsetof(sl__meta, rel_count)},
};

int sl__meta_get_bytes(MDB_txn *txn, MDB_dbi dbi, const char *name, MDB_val *out) {
  MDB_val k = {strlen(name), (void *)name};
  int rc = mdb_get(txn, dbi, &k, out);
  if (rc == MDB_NOTFOUND) return SL_ENOTFOUND;
  if (rc) {
    sl_diag_error("LMDB meta %s: %s", name, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  return 0;
}

int sl__meta_put_bytes(MDB_txn *txn, MDB_dbi dbi, const char *name, const void *p, size_t n) {
  MDB_val k = {strlen(name), (void *)name}, d = {n, (void *)p};
  int rc = mdb_put(txn, dbi, &k, &d, 0);
  if (rc) {
    sl_diag_error("LMDB meta %s: %s", name, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  return 0;
}

int sl__meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out) {
  MDB_val d;
  int rc = sl__meta_get_bytes(txn, dbi, name, &d);
  if (rc) return rc;
  if (d.mv_size != 8) {
    sl_diag_error("LMDB meta %s: %zu bytes, expected 8", name, d.mv_size);
    return SL_ECORRUPT;
  }
  *out = sl_get_le64(d.mv_data);
  return 0;
}

int sl__meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v) {
  uint8_t b[8];
  sl_put_le64(b, v);
  return sl__meta_put_bytes(txn, dbi, name, b, 8);
}

int sl__meta_read(MDB_txn *txn, MDB_dbi dbi, sl__meta *m) {
  for (size_t i = 0; i < SL_ARRAY_LEN(meta_fields); i++) {
    int rc = sl__meta_get_u64(txn, dbi, meta_fields[i].name, (uint64_t *)((char *)m + meta_fields[i].off));
    if (rc == SL_ENOTFOUND) {
      sl_diag_error("LMDB meta %s is missing", meta_fields[i].name);
      return SL_ECORRUPT;
    }
    if (rc) return rc;
  }
  return 0;
}

int sl__meta_write(MDB_txn *txn, MDB_dbi dbi, const sl__meta *m, const sl__meta *old) {
  for (size_t i = 0; i < SL_ARRAY_LEN(meta_fields); i++) {
    uint64_t v = *(const uint64_t *)((const char *)m + meta_fields[i].off);
    if (old && v == *(const uint64_t *)((const char *)old + meta_fields[i].off)) continue;
    int rc = sl__meta_put_u64(txn, dbi, meta_fields[i].name, v);
    if (rc) return rc;
  }
  return 0;
}

/* ---- op helpers --------------------------------------------------------------- */
static int op_fail(sl__wctx *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int op_fail(sl__wctx *w, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->err, sizeof w->err, fmt, ap);
  va_end(ap);
  return rc;
}

/* An LMDB failure (I/O, map full): logged, unlike refused input. A page
 * LMDB finds damaged makes the store take no more writes (sticky, as after
 * a failed fsync): nothing is committed into a corrupt LMDB. Under wlock. */
static int mdb_fail(sl__wctx *w, int rc, enum sl__db db) {
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
    sl_diag_error("%s/data.mdb: LMDB database %s is damaged (%s): the store takes no more writes", w->st->dir,
                 sl__db_names[db], mdb_strerror(rc));
    w->st->failed = SL_ECORRUPT;
    return op_fail(w, SL_ECORRUPT, "%s/data.mdb: LMDB %s: %s", w->st->dir, sl__db_names[db], mdb_strerror(rc));
  }
  sl_diag_error("LMDB %s: %s", sl__db_names[db], mdb_strerror(rc));
  return op_fail(w, sl__mdb_err(rc), "LMDB %s: %s", sl__db_names[db], mdb_strerror(rc));
}

static MDB_dbi dbi(const sl__wctx *w, enum sl__db db) { return w->st->dbi[db]; }

/* mdb_put of key k[0..kn) and data; returns the raw LMDB code. */
static int put(sl__wctx *w, enum sl__db db, const void *k, size_t kn, const void *d, size_t dn, unsigned flags) {
  MDB_val key = {kn, (void *)k}, val = {dn, (void *)d};
  return mdb_put(w->txn, dbi(w, db), &key, &val, flags);
}

static int del(sl__wctx *w, enum sl__db db, const void *k, size_t kn) {
  MDB_val key = {kn, (void *)k};
  return mdb_del(w->txn, dbi(w, db), &key, NULL);
}

/* 0 if the node / relationship exists, else SL_ENOTFOUND with w->err. */
static int must_exist(sl__wctx *w, bool rel, uint64_t id, const char *role) {
  uint8_t k[8];
  sl_put_be64(k, id);
  MDB_val key = {8, k}, val;
  enum sl__db db = rel ? SL__DB_RELS : SL__DB_NODES;
  int rc = mdb_get(w->txn, dbi(w, db), &key, &val);
  if (rc == MDB_NOTFOUND)
    return op_fail(w, SL_ENOTFOUND, "%s%s %llu does not exist", role, rel ? "relationship" : "node",
                   (unsigned long long)id);
  return rc ? mdb_fail(w, rc, db) : 0;
}

static int check_name(sl__wctx *w, const char *name, const char *what) {
  int n = sl__name_check(name);
  if (n < 0) return op_fail(w, SL_EINVAL, "%s is not 1..%d bytes of UTF-8", what, SL_NAME_MAX);
  return n;
}

static int check_props(sl__wctx *w, const sl_prop *props, size_t n) {
  char why[120];
  if (n && !props) return op_fail(w, SL_EINVAL, "properties missing");
  for (size_t i = 0; i < n; i++) {
    if (check_name(w, props[i].key, "property key") < 0) return SL_EINVAL;
    if (props[i].value.kind == SL_NULL)
      return op_fail(w, SL_EINVAL, "property %s: null is only allowed to remove a property", props[i].key);
    if (sl__value_check(&props[i].value, why, sizeof why))
      return op_fail(w, SL_EINVAL, "property %s: not a storable value: %s", props[i].key, why);
  }
  return 0;
}

/* Take the given id or assign the next one (SL_ID_NEW); keeps next_id above
 * every id used. Returns MDB_APPEND when the id lies above every id in use (the
 * common case: LMDB then fills pages instead of splitting them in half),
 * else MDB_NOOVERWRITE. */
static int take_id(sl__wctx *w, uint64_t *id, uint64_t *next_id, const char *what) {
  int flag = *id == SL_ID_NEW || *id >= *next_id ? MDB_APPEND : MDB_NOOVERWRITE;
  if (*id == SL_ID_NEW) {
    if (*next_id == SL_ID_NEW) return op_fail(w, SL_EINVAL, "no %s ids left", what);
    *id = *next_id;
  }
  if (*id >= *next_id) *next_id = *id + 1;
  return flag;
}

/* mdb_put of a key that must be new (MDB_KEYEXIST if not). For an entity
 * just created above every id in use (`fresh`), its keys sort after every
 * key of the database as long as they come in order: MDB_APPEND then
 * finds the place without a binary search per level (replay is bound by
 * these searches). An append out of order fails with MDB_KEYEXIST without
 * changing anything, and the ordinary put decides. */
static int put_new(sl__wctx *w, enum sl__db db, MDB_val *key, MDB_val *val, unsigned flags, bool fresh) {
  if (fresh) {
    int rc = mdb_put(w->txn, dbi(w, db), key, val, flags | MDB_APPEND);
    if (rc != MDB_KEYEXIST) return rc;
  }
  return mdb_put(w->txn, dbi(w, db), key, val, flags | MDB_NOOVERWRITE);
}

/* Put a new property of entity id: 1 if it existed (`fresh`: see put_new). */
static int put_prop(sl__wctx *w, bool rel, uint64_t id, const char *key, size_t kl, const sl_value *v, bool fresh) {
  enum sl__db db = rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS;
  uint8_t k[8 + SL_NAME_MAX];
  sl_put_be64(k, id);
  memcpy(k + 8, key, kl);
  MDB_val key_v = {8 + kl, k}, val = {sl__value_encoded_size(v), NULL};
  int rc = put_new(w, db, &key_v, &val, MDB_RESERVE, fresh);
  if (rc == MDB_KEYEXIST) return 1;
  if (rc) return mdb_fail(w, rc, db);
  sl__value_encode(v, val.mv_data);
  return 0;
}

static size_t label_index_key(uint8_t *k, const char *label, size_t ll, uint64_t id) {
  k[0] = (uint8_t)ll;
  memcpy(k + 1, label, ll);
  sl_put_be64(k + 1 + ll, id);
  return 1 + ll + 8;
}

/* 1 if the node already had the label (`fresh`: see put_new). */
static int add_label(sl__wctx *w, uint64_t id, const char *label, size_t ll, bool fresh) {
  uint8_t k[1 + SL_NAME_MAX + 8];
  sl_put_be64(k, id);
  memcpy(k + 8, label, ll);
  MDB_val key = {8 + ll, k}, none = {0, ""};
  int rc = put_new(w, SL__DB_NODE_LABELS, &key, &none, 0, fresh);
  if (rc == MDB_KEYEXIST) return 1;
  if (rc) return mdb_fail(w, rc, SL__DB_NODE_LABELS);
  rc = put(w, SL__DB_LABEL_INDEX, k, label_index_key(k, label, ll, id), "", 0, 0);
  return rc ? mdb_fail(w, rc, SL__DB_LABEL_INDEX) : 0;
}

static size_t adj_key(uint8_t *k, uint64_t node, int dir, const char *type, size_t tl, uint64_t rel) {
  sl_put_be64(k, node);
  k[8] = (uint8_t)dir;
  k[9] = (uint8_t)tl;
  memcpy(k + 10, type, tl);
  sl_put_be64(k + 10 + tl, rel);
  return 10 + tl + 8;
}

/* Delete every key of `db` starting with id(8); for node_labels also the
 * label_index entries. */
static int delete_owned(sl__wctx *w, enum sl__db db, uint64_t id) {
  MDB_cursor *c;
  uint8_t prefix[8], k2[1 + SL_NAME_MAX + 8];
  int rc = sl__cursor(&w->cur, w->st->dbi, db, &c);
  if (rc) return op_fail(w, rc, "LMDB cursor");
  sl_put_be64(prefix, id);
  MDB_val k = {8, prefix}, d;
  int mrc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
  while (mrc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, prefix, 8) == 0) {
    if (db == SL__DB_NODE_LABELS) {
      size_t ll = k.mv_size - 8;
      size_t n = label_index_key(k2, (const char *)k.mv_data + 8, ll, id);
      if ((mrc = del(w, SL__DB_LABEL_INDEX, k2, n))) return mdb_fail(w, mrc, SL__DB_LABEL_INDEX);
    }
    if ((mrc = mdb_cursor_del(c, 0))) return mdb_fail(w, mrc, db);
    mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT);
  }
  return mrc && mrc != MDB_NOTFOUND ? mdb_fail(w, mrc, db) : 0;
}

/* ---- ops -------------------------------------------------------------------------- */
static int op_create_node(sl__wctx *w, uint64_t *id, const char *const *labels, size_t nlabels,
                       const sl_prop *props, size_t nprops) {
  uint8_t k[8];
  int rc;
  if (nlabels && !labels) return op_fail(w, SL_EINVAL, "labels missing");
  for (size_t i = 0; i < nlabels; i++)
    if (check_name(w, labels[i], "label") < 0) return SL_EINVAL;
  if ((rc = check_props(w, props, nprops))) return rc;
  int flag = take_id(w, id, &w->meta.next_node_id, "node");
  if (flag < 0) return flag;
  sl_put_be64(k, *id);
  rc = put(w, SL__DB_NODES, k, 8, "", 0, (unsigned)flag);
  if (rc == MDB_KEYEXIST) return op_fail(w, SL_EEXIST, "node %llu exists", (unsigned long long)*id);
  if (rc) return mdb_fail(w, rc, SL__DB_NODES);
  for (size_t i = 0; i < nlabels; i++)
    if ((rc = add_label(w, *id, labels[i], strlen(labels[i]), flag == MDB_APPEND)) < 0) return rc;
  for (size_t i = 0; i < nprops; i++) {
    rc = put_prop(w, false, *id, props[i].key, strlen(props[i].key), &props[i].value, flag == MDB_APPEND);
    if (rc < 0) return rc;
    if (rc) return op_fail(w, SL_EINVAL, "property %s given twice", props[i].key);
  }
  w->meta.node_count++;
  return sl__schema_entity(w, false, *id, NULL, NULL, true);
}

static int op_delete_rel(sl__wctx *w, uint64_t id) {
  uint8_t k[8], ak[SL__KEY_MAX];
  char type[SL_NAME_MAX];
  sl_put_be64(k, id);
  MDB_val key = {8, k}, val;
  int rc = mdb_get(w->txn, dbi(w, SL__DB_RELS), &key, &val);
  if (rc == MDB_NOTFOUND) return op_fail(w, SL_ENOTFOUND, "relationship %llu does not exist", (unsigned long long)id);
  if (rc) return mdb_fail(w, rc, SL__DB_RELS);
  if (val.mv_size < 17 || val.mv_size > 16 + SL_NAME_MAX) {
    sl_diag_error("LMDB rels: relationship %llu has a %zu-byte record", (unsigned long long)id, val.mv_size);
    return op_fail(w, SL_ECORRUPT, "relationship %llu: bad record", (unsigned long long)id);
  }
  uint64_t start = sl_get_be64(val.mv_data), end = sl_get_be64((uint8_t *)val.mv_data + 8);
  size_t tl = val.mv_size - 16;
  memcpy(type, (uint8_t *)val.mv_data + 16, tl);
  if ((rc = sl__schema_entity(w, true, id, NULL, NULL, false))) return rc;
  if ((rc = del(w, SL__DB_ADJACENCY, ak, adj_key(ak, start, DIR_OUT, type, tl, id))) ||
      (rc = del(w, SL__DB_ADJACENCY, ak, adj_key(ak, end, DIR_IN, type, tl, id))))
    return mdb_fail(w, rc, SL__DB_ADJACENCY);
  if ((rc = delete_owned(w, SL__DB_REL_PROPS, id))) return rc;
  if ((rc = del(w, SL__DB_RELS, k, 8))) return mdb_fail(w, rc, SL__DB_RELS);
  w->meta.rel_count--;
  return 0;
}

static int op_delete_node(sl__wctx *w, uint64_t id, bool detach) {
  uint8_t k[8];
  MDB_cursor *c;
  int rc = must_exist(w, false, id, "");
  if (rc) return rc;
  if ((rc = sl__cursor(&w->cur, w->st->dbi, SL__DB_ADJACENCY, &c))) return op_fail(w, rc, "LMDB cursor");
  sl_put_be64(k, id);
  for (;;) {
    MDB_val key = {8, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND || (mrc == 0 && memcmp(key.mv_data, k, 8) != 0)) break;
    if (mrc) return mdb_fail(w, mrc, SL__DB_ADJACENCY);
    if (!detach)
      return op_fail(w, SL_EHASRELS, "node %llu has relationships (delete with detach)", (unsigned long long)id);
    /* Deleting the relationship removes this entry (and its twin). */
    if ((rc = op_delete_rel(w, sl_get_be64((uint8_t *)key.mv_data + key.mv_size - 8)))) return rc;
  }
  if ((rc = sl__schema_entity(w, false, id, NULL, NULL, false)) || (rc = delete_owned(w, SL__DB_NODE_LABELS, id)) ||
      (rc = delete_owned(w, SL__DB_NODE_PROPS, id)))
    return rc;
  if ((rc = del(w, SL__DB_NODES, k, 8))) return mdb_fail(w, rc, SL__DB_NODES);
  w->meta.node_count--;
  return 0;
}

static int op_add_label(sl__wctx *w, uint64_t id, const char *label) {
  int ll = check_name(w, label, "label"), rc;
  if (ll < 0) return ll;
  if ((rc = must_exist(w, false, id, ""))) return rc;
  if ((rc = add_label(w, id, label, (size_t)ll, false))) return rc;
  return sl__schema_entity(w, false, id, label, NULL, true);
}

static int op_remove_label(sl__wctx *w, uint64_t id, const char *label) {
  uint8_t k[1 + SL_NAME_MAX + 8];
  int ll = check_name(w, label, "label"), rc;
  if (ll < 0) return ll;
  if ((rc = must_exist(w, false, id, "")) || (rc = sl__schema_entity(w, false, id, label, NULL, false))) return rc;
  sl_put_be64(k, id);
  memcpy(k + 8, label, (size_t)ll);
  rc = del(w, SL__DB_NODE_LABELS, k, 8 + (size_t)ll);
  if (rc == MDB_NOTFOUND) return 1;
  if (rc) return mdb_fail(w, rc, SL__DB_NODE_LABELS);
  rc = del(w, SL__DB_LABEL_INDEX, k, label_index_key(k, label, (size_t)ll, id));
  return rc ? mdb_fail(w, rc, SL__DB_LABEL_INDEX) : 0;
}

static int op_remove_prop(sl__wctx *w, bool rel, uint64_t id, const char *key) {
  uint8_t k[8 + SL_NAME_MAX];
  int kl = check_name(w, key, "property key"), rc;
  if (kl < 0) return kl;
  if ((rc = must_exist(w, rel, id, "")) || (rc = sl__schema_entity(w, rel, id, NULL, key, false))) return rc;
  sl_put_be64(k, id);
  memcpy(k + 8, key, (size_t)kl);
  enum sl__db db = rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS;
  rc = del(w, db, k, 8 + (size_t)kl);
  if (rc == MDB_NOTFOUND) return 1;
  return rc ? mdb_fail(w, rc, db) : 0;
}

/* 0 if entity id exists, else SL_ENOTFOUND (must_exist). A property is
 * only ever stored with its entity, so a key of id's next to where k (id
 * and a property key) sorts says so without a look-up in nodes / rels:
 * the common case of a set, whose entity has properties. Leaves c there. */
static int prop_owner_exists(sl__wctx *w, bool rel, uint64_t id, MDB_cursor *c, const uint8_t *k, size_t kn) {
  enum sl__db db = rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS;
  MDB_val key = {kn, (void *)k}, val;
  int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
  if (mrc == 0 && key.mv_size > 8 && !memcmp(key.mv_data, k, 8)) return 0;
  if (mrc == 0 || mrc == MDB_NOTFOUND) mrc = mdb_cursor_get(c, &key, &val, MDB_PREV); /* at the end: the last key */
  if (mrc == 0 && key.mv_size > 8 && !memcmp(key.mv_data, k, 8)) return 0;
  if (mrc && mrc != MDB_NOTFOUND) return mdb_fail(w, mrc, db);
  return must_exist(w, rel, id, "");
}

static int op_set_prop(sl__wctx *w, bool rel, uint64_t id, const char *key, const sl_value *v) {
  if (!v || v->kind == SL_NULL) return op_remove_prop(w, rel, id, key);
  int kl = check_name(w, key, "property key"), rc;
  if (kl < 0) return kl;
  char why[120];
  if (sl__value_check(v, why, sizeof why))
    return op_fail(w, SL_EINVAL, "property %s: not a storable value: %s", key, why);
  enum sl__db db = rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS;
  uint8_t k[8 + SL_NAME_MAX];
  MDB_cursor *c;
  sl_put_be64(k, id);
  memcpy(k + 8, key, (size_t)kl);
  if ((rc = sl__cursor(&w->cur, w->st->dbi, db, &c))) return op_fail(w, rc, "LMDB cursor");
  if ((rc = prop_owner_exists(w, rel, id, c, k, 8 + (size_t)kl)) || (rc = sl__schema_entity(w, rel, id, NULL, key, false)))
    return rc;
  /* through the cursor: LMDB finds the place on the leaf it is on */
  MDB_val key_v = {8 + (size_t)kl, k}, val = {sl__value_encoded_size(v), NULL};
  int mrc = mdb_cursor_put(c, &key_v, &val, MDB_RESERVE);
  if (mrc) return mdb_fail(w, mrc, db);
  sl__value_encode(v, val.mv_data);
  return sl__schema_entity(w, rel, id, NULL, key, true);
}

static int op_create_rel(sl__wctx *w, uint64_t *id, const char *type, uint64_t start, uint64_t end,
                      const sl_prop *props, size_t nprops) {
  uint8_t k[8], val[16 + SL_NAME_MAX], ak[SL__KEY_MAX], other[8];
  int tl = check_name(w, type, "relationship type"), rc;
  if (tl < 0) return tl;
  if ((rc = check_props(w, props, nprops))) return rc;
  if ((rc = must_exist(w, false, start, "start ")) || (rc = must_exist(w, false, end, "end "))) return rc;
  int flag = take_id(w, id, &w->meta.next_rel_id, "relationship");
  if (flag < 0) return flag;
  sl_put_be64(k, *id);
  sl_put_be64(val, start);
  sl_put_be64(val + 8, end);
  memcpy(val + 16, type, (size_t)tl);
  rc = put(w, SL__DB_RELS, k, 8, val, 16 + (size_t)tl, (unsigned)flag);
  if (rc == MDB_KEYEXIST) return op_fail(w, SL_EEXIST, "relationship %llu exists", (unsigned long long)*id);
  if (rc) return mdb_fail(w, rc, SL__DB_RELS);
  sl_put_be64(other, end);
  if ((rc = put(w, SL__DB_ADJACENCY, ak, adj_key(ak, start, DIR_OUT, type, (size_t)tl, *id), other, 8, 0)))
    return mdb_fail(w, rc, SL__DB_ADJACENCY);
  sl_put_be64(other, start);
  if ((rc = put(w, SL__DB_ADJACENCY, ak, adj_key(ak, end, DIR_IN, type, (size_t)tl, *id), other, 8, 0)))
    return mdb_fail(w, rc, SL__DB_ADJACENCY);
  for (size_t i = 0; i < nprops; i++) {
    rc = put_prop(w, true, *id, props[i].key, strlen(props[i].key), &props[i].value, flag == MDB_APPEND);
    if (rc < 0) return rc;
    if (rc) return op_fail(w, SL_EINVAL, "property %s given twice", props[i].key);
  }
  w->meta.rel_count++;
  return sl__schema_entity(w, true, *id, NULL, NULL, true);
}

/* ---- replaying a record ------------------------------------------------------------- */
static int pb_props(sl__wctx *w, sl_arena *a, Shiplog__Property **pp, size_t n, sl_prop **out) {
  sl_prop *props = NULL;
  *out = NULL;
  if (!n) return 0;
  if (!(props = sl_arena_alloc(a, n * sizeof *props))) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    props[i].key = pp[i]->key;
    if (sl__value_from_pb(a, pp[i]->value, &props[i].value))
      return op_fail(w, SL_EINVAL, "property %s: malformed value", pp[i]->key);
  }
  *out = props;
  return 0;
}

static int apply_op(sl__wctx *w, sl_arena *a, const Shiplog__Op *op) {
  sl_prop *props;
  sl_value v;
  uint64_t id;
  int rc;
  switch (op->op_case) {
  case SHIPLOG__OP__OP_CREATE_NODE: {
    const Shiplog__CreateNode *c = op->create_node;
    /* A record always carries the id (0 is one); SL_ID_NEW never is. */
    if ((id = c->id) == SL_ID_NEW)
      return op_fail(w, SL_EINVAL, "create_node with the reserved id %llu", (unsigned long long)id);
    if ((rc = pb_props(w, a, c->props, c->n_props, &props))) return rc;
    return op_create_node(w, &id, (const char *const *)c->labels, c->n_labels, props, c->n_props);
  }
  case SHIPLOG__OP__OP_DELETE_NODE:
    return op_delete_node(w, op->delete_node->id, op->delete_node->has_detach && op->delete_node->detach);
  case SHIPLOG__OP__OP_ADD_LABEL:
    return op_add_label(w, op->add_label->id, op->add_label->label);
  case SHIPLOG__OP__OP_REMOVE_LABEL:
    return op_remove_label(w, op->remove_label->id, op->remove_label->label);
  case SHIPLOG__OP__OP_SET_NODE_PROP:
  case SHIPLOG__OP__OP_SET_REL_PROP: {
    const Shiplog__SetProperty *s = op->op_case == SHIPLOG__OP__OP_SET_NODE_PROP ? op->set_node_prop : op->set_rel_prop;
    if (sl__value_from_pb(a, s->value, &v) || v.kind == SL_NULL)
      return op_fail(w, SL_EINVAL, "property %s: malformed value", s->key);
    return op_set_prop(w, op->op_case == SHIPLOG__OP__OP_SET_REL_PROP, s->id, s->key, &v);
  }
  case SHIPLOG__OP__OP_REMOVE_NODE_PROP:
    return op_remove_prop(w, false, op->remove_node_prop->id, op->remove_node_prop->key);
  case SHIPLOG__OP__OP_REMOVE_REL_PROP:
    return op_remove_prop(w, true, op->remove_rel_prop->id, op->remove_rel_prop->key);
  case SHIPLOG__OP__OP_CREATE_REL: {
    const Shiplog__CreateRelationship *c = op->create_rel;
    if ((id = c->id) == SL_ID_NEW)
      return op_fail(w, SL_EINVAL, "create_rel with the reserved id %llu", (unsigned long long)id);
    if ((rc = pb_props(w, a, c->props, c->n_props, &props))) return rc;
    return op_create_rel(w, &id, c->type, c->start, c->end, props, c->n_props);
  }
  case SHIPLOG__OP__OP_DELETE_REL:
    return op_delete_rel(w, op->delete_rel->id);
  case SHIPLOG__OP__OP_CREATE_INDEX:
  case SHIPLOG__OP__OP_CREATE_CONSTRAINT: {
    const Shiplog__SchemaRule *c = op->op_case == SHIPLOG__OP__OP_CREATE_INDEX ? op->create_index : op->create_constraint;
    sl_schema_rule r = {c->name, (sl_schema_kind)c->kind, c->has_relationship && c->relationship, c->token, c->n_keys,
                        (const char *const *)c->keys};
    if ((r.kind == SL_SCHEMA_INDEX) != (op->op_case == SHIPLOG__OP__OP_CREATE_INDEX))
      return op_fail(w, SL_EINVAL, "schema rule %s: kind %d in a create_%s", c->name, (int)c->kind,
                     r.kind == SL_SCHEMA_INDEX ? "constraint" : "index");
    return sl__schema_op_create(w, &r);
  }
  case SHIPLOG__OP__OP_DROP_INDEX:
    return sl__schema_op_drop(w, false, op->drop_index->name);
  case SHIPLOG__OP__OP_DROP_CONSTRAINT:
    return sl__schema_op_drop(w, true, op->drop_constraint->name);
  default:
    /* A newer writer's op (an unknown oneof member). */
    return op_fail(w, SL_EVERSION, "an op this version does not know");
  }
}

int sl__apply_record(sl__wctx *w, sl_arena *a, const uint8_t *payload, size_t len) {
  ProtobufCAllocator al;
  sl__arena_pb_allocator(a, &al);
  Shiplog__Transaction *t = shiplog__transaction__unpack(&al, len, payload);
  if (!t) {
    sl_diag_error("transaction after txid %llu: cannot decode the %zu-byte record",
                 (unsigned long long)w->meta.applied_txid, len);
    return SL_ECORRUPT;
  }
  if (t->has_sealed) { /* log.h, SEALED FRAMES: opened with its key first, never applied as is */
    sl_diag_error("apply txid %llu: the transaction is sealed (at-rest encryption); it must be opened "
                 "with its key before it is applied", (unsigned long long)t->txid);
    return SL_EINVAL;
  }
  if (t->txid != w->meta.applied_txid + 1) {
    if (t->txid <= w->meta.applied_txid) return SL_EEXIST; /* a duplicate: the caller skips it */
    sl_diag_error("apply: expected txid %llu, found %llu", (unsigned long long)w->meta.applied_txid + 1,
                 (unsigned long long)t->txid);
    return SL_EGAP;
  }
  if (t->commit_time_us < w->meta.last_commit_us) {
    sl_diag_error("apply txid %llu: commit time %llu is before the previous one (%llu)",
                 (unsigned long long)t->txid, (unsigned long long)t->commit_time_us,
                 (unsigned long long)w->meta.last_commit_us);
    return SL_ETIME;
  }
  for (size_t i = 0; i < t->n_ops; i++) {
    w->err[0] = 0;
    int rc = apply_op(w, a, t->ops[i]);
    if (rc < 0) {
      sl_diag_error("apply txid %llu op %zu: %s (%s)", (unsigned long long)t->txid, i + 1, w->err,
                   sl_errname(rc));
      return rc;
    }
  }
  w->meta.applied_txid = t->txid;
  w->meta.last_commit_us = t->commit_time_us;
  return 0;
}

/* ---- writing through a transaction: apply, then record ---------------------------------- */
static int tx_done(sl_tx *tx, int rc) {
  if (rc < 0) {
    if (!tx->err) tx->err = rc;
    return rc;
  }
  return 0;
}

/* Protobuf's base-128 varint: its size, and written at p (returns the end). */
static size_t pb_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, n++;
  return n;
}

static uint8_t *pb_put_varint(uint8_t *p, uint64_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = (uint8_t)(v | 0x80);
  *p++ = (uint8_t)v;
  return p;
}

/* Record an applied op (its message built in tx->arena) by packing it at
 * once: a Transaction's `repeated Op ops = 4` is the concatenation of
 * [tag 0x22][varint length][packed Op] per op, so sl_tx_commit only puts
 * the packed txid, time and epoch before tx->ops. A transaction then holds
 * the bytes it will log, not a tree of messages (several times as large),
 * and the arena is reset for the next op. SL_ETOOBIG (with the reason in
 * sl_tx_error) once the ops pass what a frame may carry (SL_TXN_MAX).
 * op_begin makes room for an Op of n bytes and writes its tag and length;
 * the op's bytes go where it points, and op_end counts them. */
static uint8_t *op_begin(sl_tx *tx, Shiplog__Op__OpCase kind, size_t n, int *rc) {
  int ops_kind = kind >= SHIPLOG__OP__OP_CREATE_INDEX ? 2 : 1;
  if (tx->ops_kind && tx->ops_kind != ops_kind) { /* the op is applied, but the tx can only abort */
    snprintf(tx->w.err, sizeof tx->w.err, "Cannot perform %s updates in a transaction that has performed %s updates.",
             ops_kind == 2 ? "schema" : "data", ops_kind == 2 ? "data" : "schema"); /* Neo4j's words */
    *rc = SL_ETXKIND;
    return NULL;
  }
  size_t need = tx->ops_len + 1 + 10 + n;
  /* The packed txid, time and epoch come before the ops: 3 x (tag + varint). */
  if (need + 3 * 11 > SL_TXN_MAX) {
    snprintf(tx->w.err, sizeof tx->w.err, "transaction too large: %zu bytes by op %zu, the limit is %u",
             need + 3 * 11, tx->nops + 1, SL_TXN_MAX);
    *rc = SL_ETOOBIG;
    return NULL;
  }
  if (need > tx->ops_cap) {
    size_t cap = SL_MAX(need, tx->ops_cap + tx->ops_cap / 2 + 4096);
    uint8_t *ops = realloc(tx->ops, cap);
    if (!ops) {
      *rc = -ENOMEM;
      return NULL;
    }
    tx->ops = ops;
    tx->ops_cap = cap;
  }
  tx->ops_kind = ops_kind;
  uint8_t *p = tx->ops + tx->ops_len;
  *p++ = 4 << 3 | 2; /* field 4, length-delimited */
  return pb_put_varint(p, n);
}

static void op_end(sl_tx *tx, uint8_t *end) {
  tx->ops_len = (size_t)(end - tx->ops);
  tx->nops++;
}

static int record(sl_tx *tx, Shiplog__Op__OpCase kind, void *msg) {
  int rc = -ENOMEM;
  if (msg) {
    Shiplog__Op op = SHIPLOG__OP__INIT;
    op.op_case = kind;
    op.create_node = msg; /* every member of the union is a message pointer */
    size_t n = shiplog__op__get_packed_size(&op);
    uint8_t *p = op_begin(tx, kind, n, &rc);
    if (p) {
      op_end(tx, p + shiplog__op__pack(&op, p));
      rc = 0;
    }
  }
  sl_arena_reset(&tx->arena);
  return rc;
}

/* HAND-PACKED OPS. The common ops whose values are all scalars (bool,
 * int, float, string, bytes) are written directly as the bytes protobuf-c
 * gives record() for the same message: fields in order, required ones
 * always, minimal varints, no message built or string copied. Bulk loads
 * and updates record one per row, where protobuf-c's generic field walk
 * (sizing, then packing) cost a tenth of an upsert row (bench/README,
 * "Sync ahead and hand-packed ops"). Every tag here is one byte (fields
 * 1-15). record_* return 1 for an op with a value of another kind: the
 * caller record()s it. */
static bool pb_scalar(const sl_value *v) { return v->kind >= SL_BOOL && v->kind <= SL_BYTES; }

/* tag + length + n bytes */
static size_t pb_len_field_size(size_t n) { return 1 + pb_varint_size(n) + n; }

static uint8_t *pb_put_len_field(uint8_t *p, unsigned field, size_t n) {
  *p++ = (uint8_t)(field << 3 | 2);
  return pb_put_varint(p, n);
}

static uint64_t pb_zigzag(int64_t i) { return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63); }

/* Value{one of bool_value = 1, int_value = 2 (sint64), double_value = 3,
 * string_value = 4, bytes_value = 5} */
static size_t pb_value_size(const sl_value *v) {
  switch (v->kind) {
  case SL_BOOL: return 2;
  case SL_INT: return 1 + pb_varint_size(pb_zigzag(v->u.i));
  case SL_DOUBLE: return 9;
  default: return pb_len_field_size(v->len); /* SL_STRING, SL_BYTES */
  }
}

static uint8_t *pb_put_value(uint8_t *p, const sl_value *v) {
  switch (v->kind) {
  case SL_BOOL:
    *p++ = 1 << 3;
    *p++ = v->u.b ? 1 : 0;
    return p;
  case SL_INT:
    *p++ = 2 << 3;
    return pb_put_varint(p, pb_zigzag(v->u.i));
  case SL_DOUBLE: {
    uint64_t bits;
    memcpy(&bits, &v->u.d, 8);
    *p++ = 3 << 3 | 1;
    sl_put_le64(p, bits);
    return p + 8;
  }
  default:
    p = pb_put_len_field(p, v->kind == SL_STRING ? 4 : 5, v->len);
    memcpy(p, v->kind == SL_STRING ? (const void *)v->u.s : (const void *)v->u.bytes, v->len);
    return p + v->len;
  }
}

/* Property{key = 1, value = 2} */
static size_t pb_prop_size(const char *key, const sl_value *v) {
  return pb_len_field_size(strlen(key)) + pb_len_field_size(pb_value_size(v));
}

static uint8_t *pb_put_prop(uint8_t *p, unsigned field, const char *key, const sl_value *v) {
  size_t kl = strlen(key);
  p = pb_put_len_field(p, field, pb_prop_size(key, v));
  p = pb_put_len_field(p, 1, kl);
  memcpy(p, key, kl);
  p = pb_put_len_field(p + kl, 2, pb_value_size(v));
  return pb_put_value(p, v);
}

/* The props as `repeated Property` (field): their size, or 0 with *other
 * when one is not a scalar. */
static size_t pb_props_size(const sl_prop *props, size_t n, bool *other) {
  size_t sz = 0;
  for (size_t i = 0; i < n; i++) {
    if (!pb_scalar(&props[i].value)) *other = true;
    else sz += pb_len_field_size(pb_prop_size(props[i].key, &props[i].value));
  }
  return sz;
}

/* Op{kind: the message of mn bytes} at op_begin's place: where the message goes. */
static uint8_t *pb_op_begin(sl_tx *tx, Shiplog__Op__OpCase kind, size_t mn, int *rc) {
  uint8_t *p = op_begin(tx, kind, pb_len_field_size(mn), rc);
  return p ? pb_put_len_field(p, (unsigned)kind, mn) : NULL;
}

/* SetProperty{id = 1, key = 2, value = 3} as set_node_prop (5) / set_rel_prop (9) */
static int record_set_prop(sl_tx *tx, bool rel, uint64_t id, const char *key, const sl_value *v) {
  if (!pb_scalar(v)) return 1;
  size_t kl = strlen(key), vn = pb_value_size(v);
  size_t mn = 1 + pb_varint_size(id) + pb_len_field_size(kl) + pb_len_field_size(vn);
  int rc;
  uint8_t *p = pb_op_begin(tx, rel ? SHIPLOG__OP__OP_SET_REL_PROP : SHIPLOG__OP__OP_SET_NODE_PROP, mn, &rc);
  if (!p) return rc;
  *p++ = 1 << 3;
  p = pb_put_varint(p, id);
  p = pb_put_len_field(p, 2, kl);
  memcpy(p, key, kl);
  p = pb_put_len_field(p + kl, 3, vn);
  op_end(tx, pb_put_value(p, v));
  return 0;
}

/* CreateNode{id = 1, labels = 2 (repeated), props = 3 (repeated)} */
static int record_create_node(sl_tx *tx, uint64_t id, const char *const *labels, size_t nlabels, const sl_prop *props,
                              size_t nprops) {
  bool other = false;
  size_t mn = 1 + pb_varint_size(id) + pb_props_size(props, nprops, &other);
  if (other) return 1;
  for (size_t i = 0; i < nlabels; i++) mn += pb_len_field_size(strlen(labels[i]));
  int rc;
  uint8_t *p = pb_op_begin(tx, SHIPLOG__OP__OP_CREATE_NODE, mn, &rc);
  if (!p) return rc;
  *p++ = 1 << 3;
  p = pb_put_varint(p, id);
  for (size_t i = 0; i < nlabels; i++) {
    size_t ll = strlen(labels[i]);
    p = pb_put_len_field(p, 2, ll);
    memcpy(p, labels[i], ll);
    p += ll;
  }
  for (size_t i = 0; i < nprops; i++) p = pb_put_prop(p, 3, props[i].key, &props[i].value);
  op_end(tx, p);
  return 0;
}

/* CreateRelationship{id = 1, type = 2, start = 3, end = 4, props = 5 (repeated)} */
static int record_create_rel(sl_tx *tx, uint64_t id, const char *type, uint64_t start, uint64_t end,
                             const sl_prop *props, size_t nprops) {
  bool other = false;
  size_t tl = strlen(type);
  size_t mn = 1 + pb_varint_size(id) + pb_len_field_size(tl) + 1 + pb_varint_size(start) + 1 + pb_varint_size(end) +
              pb_props_size(props, nprops, &other);
  if (other) return 1;
  int rc;
  uint8_t *p = pb_op_begin(tx, SHIPLOG__OP__OP_CREATE_REL, mn, &rc);
  if (!p) return rc;
  *p++ = 1 << 3;
  p = pb_put_varint(p, id);
  p = pb_put_len_field(p, 2, tl);
  memcpy(p, type, tl);
  p += tl;
  *p++ = 3 << 3;
  p = pb_put_varint(p, start);
  *p++ = 4 << 3;
  p = pb_put_varint(p, end);
  for (size_t i = 0; i < nprops; i++) p = pb_put_prop(p, 5, props[i].key, &props[i].value);
  op_end(tx, p);
  return 0;
}

/* The messages built for record() are packed before the call returns, so
 * they point at the caller's strings rather than copy them. */
static Shiplog__Property **pb_props_of(sl_tx *tx, const sl_prop *props, size_t n) {
  Shiplog__Property **pp = sl_arena_alloc(&tx->arena, (n ? n : 1) * sizeof *pp);
  if (!pp) return NULL;
  for (size_t i = 0; i < n; i++) {
    Shiplog__Property *p = sl_arena_alloc(&tx->arena, sizeof *p);
    if (!p) return NULL;
    shiplog__property__init(p);
    p->key = (char *)props[i].key;
    if (sl__value_to_pb(&tx->arena, &props[i].value, &p->value)) return NULL;
    pp[i] = p;
  }
  return pp;
}

#define NEW_MSG(tx, type, init) ({ type *m_ = sl_arena_alloc(&(tx)->arena, sizeof(type)); if (m_) init(m_); m_; })

int sl_tx_create_node(sl_tx *tx, uint64_t id, const char *const *labels, size_t nlabels, const sl_prop *props,
                      size_t nprops, uint64_t *out_id) {
  if (tx->err) return tx->err;
  int rc = op_create_node(&tx->w, &id, labels, nlabels, props, nprops);
  if (rc == 0 && (rc = record_create_node(tx, id, labels, nlabels, props, nprops)) == 1) {
    Shiplog__CreateNode *m = NEW_MSG(tx, Shiplog__CreateNode, shiplog__create_node__init);
    if (m && (m->props = pb_props_of(tx, props, nprops))) {
      m->id = id;
      m->labels = (char **)labels;
      m->n_labels = nlabels;
      m->n_props = nprops;
    }
    rc = record(tx, SHIPLOG__OP__OP_CREATE_NODE, m && m->props ? m : NULL);
  }
  if (rc == 0 && out_id) *out_id = id;
  return tx_done(tx, rc);
}

int sl_tx_delete_node(sl_tx *tx, uint64_t id, bool detach) {
  if (tx->err) return tx->err;
  int rc = op_delete_node(&tx->w, id, detach);
  if (rc == 0) {
    Shiplog__DeleteNode *m = NEW_MSG(tx, Shiplog__DeleteNode, shiplog__delete_node__init);
    if (m) {
      m->id = id;
      m->has_detach = detach;
      m->detach = detach;
    }
    rc = record(tx, SHIPLOG__OP__OP_DELETE_NODE, m);
  }
  return tx_done(tx, rc);
}

static int tx_label(sl_tx *tx, bool add, uint64_t id, const char *label) {
  if (tx->err) return tx->err;
  int rc = add ? op_add_label(&tx->w, id, label) : op_remove_label(&tx->w, id, label);
  if (rc == 0) {
    Shiplog__NodeLabel *m = NEW_MSG(tx, Shiplog__NodeLabel, shiplog__node_label__init);
    if (m) {
      m->id = id;
      m->label = (char *)label;
    }
    rc = record(tx, add ? SHIPLOG__OP__OP_ADD_LABEL : SHIPLOG__OP__OP_REMOVE_LABEL, m);
  }
  return tx_done(tx, rc);
}

int sl_tx_add_label(sl_tx *tx, uint64_t id, const char *label) { return tx_label(tx, true, id, label); }
int sl_tx_remove_label(sl_tx *tx, uint64_t id, const char *label) { return tx_label(tx, false, id, label); }

static int tx_remove_prop(sl_tx *tx, bool rel, uint64_t id, const char *key) {
  if (tx->err) return tx->err;
  int rc = op_remove_prop(&tx->w, rel, id, key);
  if (rc == 0) {
    Shiplog__RemoveProperty *m = NEW_MSG(tx, Shiplog__RemoveProperty, shiplog__remove_property__init);
    if (m) {
      m->id = id;
      m->key = (char *)key;
    }
    rc = record(tx, rel ? SHIPLOG__OP__OP_REMOVE_REL_PROP : SHIPLOG__OP__OP_REMOVE_NODE_PROP, m);
  }
  return tx_done(tx, rc);
}

static int tx_set_prop(sl_tx *tx, bool rel, uint64_t id, const char *key, const sl_value *v) {
  if (!v || v->kind == SL_NULL) return tx_remove_prop(tx, rel, id, key);
  if (tx->err) return tx->err;
  int rc = op_set_prop(&tx->w, rel, id, key, v);
  if (rc == 0 && (rc = record_set_prop(tx, rel, id, key, v)) == 1) {
    Shiplog__SetProperty *m = NEW_MSG(tx, Shiplog__SetProperty, shiplog__set_property__init);
    if (m) {
      m->id = id;
      m->key = (char *)key;
    }
    rc = record(tx, rel ? SHIPLOG__OP__OP_SET_REL_PROP : SHIPLOG__OP__OP_SET_NODE_PROP,
                m && !sl__value_to_pb(&tx->arena, v, &m->value) ? m : NULL);
  }
  return tx_done(tx, rc);
}

int sl_tx_set_node_prop(sl_tx *tx, uint64_t id, const char *key, const sl_value *v) {
  return tx_set_prop(tx, false, id, key, v);
}
int sl_tx_remove_node_prop(sl_tx *tx, uint64_t id, const char *key) { return tx_remove_prop(tx, false, id, key); }
int sl_tx_set_rel_prop(sl_tx *tx, uint64_t id, const char *key, const sl_value *v) {
  return tx_set_prop(tx, true, id, key, v);
}
int sl_tx_remove_rel_prop(sl_tx *tx, uint64_t id, const char *key) { return tx_remove_prop(tx, true, id, key); }

int sl_tx_create_rel(sl_tx *tx, uint64_t id, const char *type, uint64_t start, uint64_t end, const sl_prop *props,
                     size_t nprops, uint64_t *out_id) {
  if (tx->err) return tx->err;
  int rc = op_create_rel(&tx->w, &id, type, start, end, props, nprops);
  if (rc == 0 && (rc = record_create_rel(tx, id, type, start, end, props, nprops)) == 1) {
    Shiplog__CreateRelationship *m = NEW_MSG(tx, Shiplog__CreateRelationship, shiplog__create_relationship__init);
    if (m) {
      m->id = id;
      m->start = start;
      m->end = end;
      m->n_props = nprops;
      m->type = (char *)type;
      m->props = pb_props_of(tx, props, nprops);
    }
    rc = record(tx, SHIPLOG__OP__OP_CREATE_REL, m && m->props ? m : NULL);
  }
  if (rc == 0 && out_id) *out_id = id;
  return tx_done(tx, rc);
}

int sl_tx_delete_rel(sl_tx *tx, uint64_t id) {
  if (tx->err) return tx->err;
  int rc = op_delete_rel(&tx->w, id);
  if (rc == 0) {
    Shiplog__DeleteRelationship *m = NEW_MSG(tx, Shiplog__DeleteRelationship, shiplog__delete_relationship__init);
    if (m) m->id = id;
    rc = record(tx, SHIPLOG__OP__OP_DELETE_REL, m);
  }
  return tx_done(tx, rc);
}

const char *sl_tx_error(const sl_tx *tx) {
  if (!tx->err) return NULL;
  return tx->w.err[0] ? tx->w.err : sl_strerror(tx->err);
}

/* ---- schema through a transaction ----------------------------------------------------------- */
/* Neo4j's kind of generated name: the kind's word and a hash of the rule,
 * so that a replay, another store or a second run names it the same. */
static void schema_name(const sl_schema_rule *r, char *out) {
  uint8_t head[2] = {(uint8_t)r->kind, r->rel};
  uint32_t h = sl_crc32c(0, head, 2);
  h = sl_crc32c(h, r->token, strlen(r->token) + 1);
  for (size_t i = 0; i < r->nkeys; i++) h = sl_crc32c(h, r->keys[i], strlen(r->keys[i]) + 1);
  snprintf(out, SL_NAME_MAX + 1, "%s_%08x", r->kind == SL_SCHEMA_INDEX ? "index" : "constraint", h);
}

static int tx_schema_create(sl_tx *tx, const sl_schema_rule *rule, bool constraint, char *name_out) {
  char name[SL_NAME_MAX + 1];
  if (tx->err) return tx->err;
  int rc = SL_EINVAL;
  if (!rule || (rule->kind != SL_SCHEMA_INDEX) != constraint) {
    snprintf(tx->w.err, sizeof tx->w.err, "%s: the rule's kind is %s", constraint ? "create_constraint" : "create_index",
             constraint ? "no constraint" : "no index");
    return tx_done(tx, rc);
  }
  sl_schema_rule r = *rule;
  if (!r.name && r.token && r.keys && r.nkeys && r.nkeys <= SL_SCHEMA_KEYS_MAX &&
      sl__name_check(r.token) >= 0) {
    bool ok = true;
    for (size_t i = 0; i < r.nkeys; i++) ok &= r.keys[i] && sl__name_check(r.keys[i]) >= 0;
    if (ok) {
      schema_name(&r, name);
      r.name = name;
    }
  }
  if (!r.name) r.name = ""; /* refused by the op with its reason */
  if ((rc = sl__schema_op_create(&tx->w, &r)) == 0) {
    Shiplog__SchemaRule *m = NEW_MSG(tx, Shiplog__SchemaRule, shiplog__schema_rule__init);
    if (m) {
      m->name = (char *)r.name;
      m->has_kind = true;
      m->kind = (Shiplog__SchemaRule__Kind)r.kind;
      m->has_relationship = r.rel;
      m->relationship = r.rel;
      m->token = (char *)r.token;
      m->n_keys = r.nkeys;
      m->keys = (char **)r.keys;
    }
    if (name_out) snprintf(name_out, SL_NAME_MAX + 1, "%s", r.name);
    rc = record(tx, constraint ? SHIPLOG__OP__OP_CREATE_CONSTRAINT : SHIPLOG__OP__OP_CREATE_INDEX, m);
  }
  return tx_done(tx, rc);
}

int sl_tx_create_index(sl_tx *tx, const sl_schema_rule *rule, char *name_out) {
  return tx_schema_create(tx, rule, false, name_out);
}
int sl_tx_create_constraint(sl_tx *tx, const sl_schema_rule *rule, char *name_out) {
  return tx_schema_create(tx, rule, true, name_out);
}

static int tx_schema_drop(sl_tx *tx, bool constraint, const char *name) {
  if (tx->err) return tx->err;
  int rc = sl__schema_op_drop(&tx->w, constraint, name);
  if (rc == 0) {
    Shiplog__DropSchema *m = NEW_MSG(tx, Shiplog__DropSchema, shiplog__drop_schema__init);
    if (m) m->name = (char *)name;
    rc = record(tx, constraint ? SHIPLOG__OP__OP_DROP_CONSTRAINT : SHIPLOG__OP__OP_DROP_INDEX, m);
  }
  return tx_done(tx, rc);
}

int sl_tx_drop_index(sl_tx *tx, const char *name) { return tx_schema_drop(tx, false, name); }
int sl_tx_drop_constraint(sl_tx *tx, const char *name) { return tx_schema_drop(tx, true, name); }
