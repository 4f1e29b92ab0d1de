/*
 * The updating clauses on one row: CREATE, MERGE's create, SET, REMOVE,
 * DELETE. Every write is an sl_tx_* call (so the log records effects, as
 * spec/mutations.md ops), counted in q->stats with Neo4j's counters.
 *
 * DELETE without DETACH of a node that still has relationships is checked
 * after the whole clause (Neo4j checks at commit, so `DELETE n, r` works in
 * any order): such deletions are deferred to q_write_finish.
 */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "store.h"

/* A map of properties from an expression (map literal or parameter). A null
 * value is no property, except in what MERGE creates (merge names the
 * entity): Neo4j refuses it there, since no later MERGE could find it. */
static int eval_props(qctx *q, qexpr *e, const char *merge, sl_prop **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!e) return 0;
  qv m;
  TRY(q_eval(q, e, &m));
  if (m.kind == SL_NULL) return 0;
  if (m.kind != SL_QMAP) return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "Type mismatch: expected a map but was %s", qv_type_name(&m));
  sl_prop *ps = sl_arena_alloc(&q->tmp, sizeof *ps * (m.u.map.n ? m.u.map.n : 1));
  if (!ps) return qerr_oom(q);
  size_t k = 0;
  for (size_t i = 0; i < m.u.map.n; i++) {
    sl_value v;
    TRY(qv_to_prop(q, &q->tmp, &m.u.map.entries[i].value, &v, e->line, e->col));
    if (v.kind == SL_NULL && merge)
      return qerr(q, SL_EINVAL, ST_SEMANTIC, e->line, e->col, "Cannot merge the following %s because of null property value for '%s'",
                  merge, m.u.map.entries[i].key);
    if (v.kind == SL_NULL) continue;
    ps[k].key = m.u.map.entries[i].key;
    ps[k].value = v;
    k++;
  }
  *out = ps;
  *n = k;
  return 0;
}

static int create_node(qctx *q, qnodepat *np, bool merge) {
  sl_prop *props;
  size_t n;
  TRY(eval_props(q, np->props, merge ? "node" : NULL, &props, &n));
  uint64_t id;
  int rc = sl_tx_create_node(q->tx, SL_ID_NEW, np->labels, (size_t)np->nlabels, props, n, &id);
  if (rc) return qerr_store(q, rc, np->line, np->col);
  q->stats.nodes_created++;
  q->stats.labels_added += (uint64_t)np->nlabels;
  q->stats.properties_set += n;
  q->row[np->slot] = qv_node(id);
  return 0;
}

static int node_of(qctx *q, qnodepat *np, uint64_t *id) {
  const qv *v = &q->row[np->slot];
  if (v->kind != SL_QNODE) {
    if (v->kind == SL_NULL)
      return qerr(q, SL_EINVAL, "Neo.ClientError.Statement.SemanticError", np->line, np->col,
                  "Failed to create relationship, node is missing: null");
    return qerr(q, SL_EINVAL, ST_TYPE, np->line, np->col, "Type mismatch: expected Node but was %s", qv_type_name(v));
  }
  *id = v->u.node.id;
  return 0;
}

int q_create_path(qctx *q, qpath *p, bool merge) {
  /* nodes first (a bound one is used as it is), then the relationships */
  for (int j = 0; j <= p->nrels; j++) {
    qnodepat *np = &p->nodes[j];
    bool earlier = false;
    for (int k = 0; k < j; k++) earlier |= p->nodes[k].slot == np->slot;
    if (!np->bound && !earlier) TRY(create_node(q, np, merge));
  }
  for (int j = 0; j < p->nrels; j++) {
    qrelpat *r = &p->rels[j];
    uint64_t a = 0, b = 0, id = 0;
    TRY(node_of(q, &p->nodes[j], &a));
    TRY(node_of(q, &p->nodes[j + 1], &b));
    if (r->dir == SL_DIR_IN) {
      uint64_t t = a;
      a = b;
      b = t;
    }
    sl_prop *props;
    size_t n;
    TRY(eval_props(q, r->props, merge ? "relationship" : NULL, &props, &n));
    int rc = sl_tx_create_rel(q->tx, SL_ID_NEW, r->types[0], a, b, props, n, &id);
    if (rc) return qerr_store(q, rc, r->line, r->col);
    q->stats.relationships_created++;
    q->stats.properties_set += n;
    q->row[r->slot] = qv_rel(id, a, b, r->types[0]);
  }
  if (p->slot >= 0) {
    sl_qnode *nodes = sl_arena_zalloc(&q->tmp, sizeof *nodes * (size_t)(p->nrels + 1));
    sl_qrel *rels = sl_arena_zalloc(&q->tmp, sizeof *rels * (size_t)(p->nrels ? p->nrels : 1));
    if (!nodes || !rels) return qerr_oom(q);
    for (int j = 0; j <= p->nrels; j++) nodes[j].id = q->row[p->nodes[j].slot].u.node.id;
    for (int j = 0; j < p->nrels; j++) rels[j] = q->row[p->rels[j].slot].u.rel;
    qv *pv = &q->row[p->slot];
    pv->kind = SL_QPATH;
    pv->u.path.nnodes = (size_t)p->nrels + 1;
    pv->u.path.nrels = (size_t)p->nrels;
    pv->u.path.nodes = nodes;
    pv->u.path.rels = rels;
  }
  return 0;
}

int q_merge_create(qctx *q, qclause *c) { return q_create_path(q, &c->pat.paths[0], true); }

/* ---- SET / REMOVE ---------------------------------------------------------------------------------- */
static int set_prop(qctx *q, const qv *ent, const char *key, const qv *val, unsigned line, unsigned col) {
  sl_value v;
  TRY(qv_to_prop(q, &q->tmp, val, &v, line, col));
  int rc;
  bool node = ent->kind == SL_QNODE;
  uint64_t id = node ? ent->u.node.id : ent->u.rel.id;
  if (v.kind == SL_NULL) {
    sl_value old;
    rc = node ? sl_view_node_prop(q->view, id, key, &old) : sl_view_rel_prop(q->view, id, key, &old);
    if (rc == SL_ENOTFOUND) return 0;
    if (rc) return qerr_store(q, rc, line, col);
    rc = node ? sl_tx_remove_node_prop(q->tx, id, key) : sl_tx_remove_rel_prop(q->tx, id, key);
  } else {
    rc = node ? sl_tx_set_node_prop(q->tx, id, key, &v) : sl_tx_set_rel_prop(q->tx, id, key, &v);
  }
  if (rc) return qerr_store(q, rc, line, col);
  q->stats.properties_set++;
  return 0;
}

static int entity_keys(qctx *q, const qv *ent, const char ***keys, size_t *n) {
  const sl_prop *props;
  int rc;
  if (ent->kind == SL_QNODE) {
    sl_node nd;
    rc = sl_view_node(q->view, ent->u.node.id, &nd);
    props = nd.props;
    *n = nd.nprops;
  } else {
    sl_rel r;
    rc = sl_view_rel(q->view, ent->u.rel.id, &r);
    props = r.props;
    *n = r.nprops;
  }
  if (rc) return qerr_store(q, rc, 0, 0);
  *keys = sl_arena_alloc(&q->tmp, sizeof **keys * (*n ? *n : 1));
  if (!*keys) return qerr_oom(q);
  for (size_t i = 0; i < *n; i++)
    if (!((*keys)[i] = sl_arena_strndup(&q->tmp, props[i].key, strlen(props[i].key)))) return qerr_oom(q);
  return 0;
}

static int set_map(qctx *q, qsetitem *si, const qv *ent, bool replace) {
  qv m;
  TRY(q_eval(q, si->value, &m));
  if (m.kind == SL_QNODE || m.kind == SL_QREL) {
    qv props;
    /* SET a = b copies b's properties */
    const char **keys;
    size_t n;
    TRY(entity_keys(q, &m, &keys, &n));
    sl_qentry *es = sl_arena_alloc(&q->tmp, sizeof *es * (n ? n : 1));
    if (!es) return qerr_oom(q);
    for (size_t i = 0; i < n; i++) {
      es[i].key = keys[i];
      TRY(q_prop(q, &m, keys[i], &es[i].value));
    }
    props.kind = SL_QMAP;
    props.u.map.n = n;
    props.u.map.entries = es;
    m = props;
  }
  if (m.kind == SL_NULL) m.kind = SL_QMAP, m.u.map.n = 0;
  if (m.kind != SL_QMAP) return qerr(q, SL_EINVAL, ST_TYPE, si->line, si->col, "Type mismatch: expected a map but was %s", qv_type_name(&m));
  if (replace) {
    const char **keys;
    size_t n;
    TRY(entity_keys(q, ent, &keys, &n));
    for (size_t i = 0; i < n; i++) {
      bool keep = false;
      for (size_t k = 0; k < m.u.map.n && !keep; k++) keep = !strcmp(m.u.map.entries[k].key, keys[i]);
      if (!keep) {
        qv null = qv_null();
        TRY(set_prop(q, ent, keys[i], &null, si->line, si->col));
      }
    }
  }
  for (size_t k = 0; k < m.u.map.n; k++) TRY(set_prop(q, ent, m.u.map.entries[k].key, &m.u.map.entries[k].value, si->line, si->col));
  return 0;
}

static int apply_item(qctx *q, qsetitem *si) {
  qv ent;
  TRY(q_eval(q, si->target, &ent));
  if (ent.kind == SL_NULL) return 0;
  bool labels = si->kind == SI_LABELS || si->kind == SI_REMOVE_LABELS;
  if (labels ? ent.kind != SL_QNODE : (ent.kind != SL_QNODE && ent.kind != SL_QREL)) {
    if (si->kind == SI_PROP && ent.kind == SL_QMAP)
      return qerr(q, SL_EINVAL, ST_TYPE, si->line, si->col, "Type mismatch: expected Node or Relationship but was Map");
    return qerr(q, SL_EINVAL, ST_TYPE, si->line, si->col, "Type mismatch: expected %s but was %s", labels ? "Node" : "Node or Relationship",
                qv_type_name(&ent));
  }
  switch (si->kind) {
  case SI_PROP: {
    qv v;
    TRY(q_eval(q, si->value, &v));
    return set_prop(q, &ent, si->key, &v, si->line, si->col);
  }
  case SI_REMOVE_PROP: {
    qv null = qv_null();
    return set_prop(q, &ent, si->key, &null, si->line, si->col);
  }
  case SI_MERGE_MAP: return set_map(q, si, &ent, false);
  case SI_REPLACE_MAP: return set_map(q, si, &ent, true);
  default:
    for (int i = 0; i < si->nlabels; i++) {
      bool has;
      int rc = sl_view_node_has_label(q->view, ent.u.node.id, si->labels[i], &has);
      if (rc) return qerr_store(q, rc, si->line, si->col);
      if (si->kind == SI_LABELS && !has) {
        if ((rc = sl_tx_add_label(q->tx, ent.u.node.id, si->labels[i]))) return qerr_store(q, rc, si->line, si->col);
        q->stats.labels_added++;
      } else if (si->kind == SI_REMOVE_LABELS && has) {
        if ((rc = sl_tx_remove_label(q->tx, ent.u.node.id, si->labels[i]))) return qerr_store(q, rc, si->line, si->col);
        q->stats.labels_removed++;
      }
    }
    return 0;
  }
}

int q_apply_sets(qctx *q, qsetitem *items, int n) {
  for (int i = 0; i < n; i++) TRY(apply_item(q, &items[i]));
  return 0;
}

/* ---- DELETE ---------------------------------------------------------------------------------------- */
static int count_rel(void *arg, uint64_t rel, const char *type, uint64_t start, uint64_t end) {
  (void)rel, (void)type, (void)start, (void)end;
  (*(uint64_t *)arg)++;
  return 0;
}

static int delete_rel(qctx *q, uint64_t id, unsigned line, unsigned col) {
  /* deleted already (by another row): look first, as a failed write would
   * fail the whole transaction */
  sl_rel r;
  int rc = sl_view_rel(q->view, id, &r);
  if (rc == SL_ENOTFOUND) return 0;
  if (!rc) rc = sl_tx_delete_rel(q->tx, id);
  if (rc) return qerr_store(q, rc, line, col);
  q->stats.relationships_deleted++;
  return 0;
}

static int delete_node(qctx *q, uint64_t id, bool detach, unsigned line, unsigned col) {
  uint64_t nrels = 0;
  int rc = sl_view_node_rels(q->view, id, SL_DIR_BOTH, NULL, count_rel, &nrels);
  if (rc == SL_ENOTFOUND) return 0;
  if (rc) return qerr_store(q, rc, line, col);
  /* one with relationships waits for the end of the clause, which may
   * delete them; the others go now, so later clauses see them deleted */
  if (!detach && nrels) {
    if (q->ndefer == q->defer_cap) {
      size_t cap = q->defer_cap ? q->defer_cap * 2 : 64;
      uint64_t *ni = realloc(q->defer_ids, sizeof *ni * cap);
      if (!ni) return qerr_oom(q);
      q->defer_ids = ni;
      q->defer_cap = cap;
    }
    if (!q->ndefer) q->defer_line = line, q->defer_col = col;
    q->defer_ids[q->ndefer++] = id;
    return 0;
  }
  if ((rc = sl_tx_delete_node(q->tx, id, detach))) return qerr_store(q, rc, line, col);
  q->stats.nodes_deleted++;
  q->stats.relationships_deleted += nrels;
  return 0;
}

static int delete_value(qctx *q, qclause *c, qexpr *e, const qv *v) {
  switch (v->kind) {
  case SL_NULL: return 0;
  case SL_QNODE: return delete_node(q, v->u.node.id, c->detach, e->line, e->col);
  case SL_QREL: return delete_rel(q, v->u.rel.id, e->line, e->col);
  case SL_QPATH:
    for (size_t i = 0; i < v->u.path.nrels; i++) TRY(delete_rel(q, v->u.path.rels[i].id, e->line, e->col));
    for (size_t i = 0; i < v->u.path.nnodes; i++) TRY(delete_node(q, v->u.path.nodes[i].id, c->detach, e->line, e->col));
    return 0;
  case SL_QLIST:
    for (size_t i = 0; i < v->u.list.n; i++) TRY(delete_value(q, c, e, &v->u.list.items[i]));
    return 0;
  default:
    return qerr(q, SL_EINVAL, ST_TYPE, e->line, e->col, "Type mismatch: expected Node, Path or Relationship but was %s", qv_type_name(v));
  }
}

int q_write_row(qctx *q, qclause *c) {
  switch (c->kind) {
  case C_CREATE:
    for (int i = 0; i < c->pat.npaths; i++) TRY(q_create_path(q, &c->pat.paths[i], false));
    return 0;
  case C_SET:
  case C_REMOVE: return q_apply_sets(q, c->sets, c->nsets);
  case C_DELETE:
    for (int i = 0; i < c->ndels; i++) {
      qv v;
      TRY(q_eval(q, c->dels[i], &v));
      TRY(delete_value(q, c, c->dels[i], &v));
    }
    return 0;
  default: return 0;
  }
}

int q_write_finish(qctx *q, qclause *c, sl_arena *a) {
  (void)a;
  if (c->kind != C_DELETE) return 0;
  int rc = 0;
  for (size_t i = 0; i < q->ndefer && !rc; i++) {
    sl_node n;
    int r = sl_view_node(q->view, q->defer_ids[i], &n);
    if (r == SL_ENOTFOUND) continue;
    r = sl_tx_delete_node(q->tx, q->defer_ids[i], false);
    if (r == SL_EHASRELS)
      rc = qerr(q, SL_EINVAL, ST_CONSTRAINT, q->defer_line, q->defer_col,
                "Cannot delete node<%llu>, because it still has relationships. To delete this node, you must first delete its relationships.",
                (unsigned long long)q->defer_ids[i]);
    else if (r)
      rc = qerr_store(q, r, q->defer_line, q->defer_col);
    else
      q->stats.nodes_deleted++;
  }
  q->ndefer = 0;
  return rc;
}
