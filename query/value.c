/*
 * Runtime values of the query engine (sl_qvalue, "qv"): copying, Cypher's
 * equality, comparison and ordering, hashing, conversion to and from stored
 * properties, text. Property kinds are compared through sl_value_compare
 * and sl_value_order (the store's one home of Neo4j's rules); this file adds
 * only what property values lack: null, maps, nodes, relationships, paths
 * and heterogeneous lists, ranked as Neo4j 5 orders them, in the places
 * sl_value_kind_rank leaves for them: MAP 1, NODE 2, RELATIONSHIP 3, LIST 4
 * (with stored lists and bytes), PATH 5, then the property kinds, null 16.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"
#include "store.h"

qv qv_str(const char *s, size_t n) {
  qv v;
  v.kind = SL_STRING;
  v.u.v.kind = SL_STRING;
  v.u.v.u.s = s;
  v.u.v.len = n;
  return v;
}

qv qv_node(uint64_t id) {
  qv v;
  memset(&v, 0, sizeof v);
  v.kind = SL_QNODE;
  v.u.node.id = id;
  return v;
}

qv qv_rel(uint64_t id, uint64_t start, uint64_t end, const char *type) {
  qv v;
  memset(&v, 0, sizeof v);
  v.kind = SL_QREL;
  v.u.rel.id = id;
  v.u.rel.start = start;
  v.u.rel.end = end;
  v.u.rel.type = type;
  return v;
}

static bool is_prop_kind(int k) { return k >= SL_BOOL && k <= SL_POINT && k != SL_LIST; }

int qv_copy(sl_arena *a, const qv *in, qv *out) {
  *out = *in;
  switch (in->kind) {
  case SL_STRING:
  case SL_BYTES:
    if (in->u.v.len) {
      void *p = sl_arena_alloc(a, in->u.v.len);
      if (!p) return -ENOMEM;
      memcpy(p, in->u.v.u.s, in->u.v.len);
      out->u.v.u.s = p;
    }
    return 0;
  case SL_DATETIME:
    if (in->u.v.u.t.zone) {
      char *z = sl_arena_strndup(a, in->u.v.u.t.zone, strlen(in->u.v.u.t.zone));
      if (!z) return -ENOMEM;
      out->u.v.u.t.zone = z;
    }
    return 0;
  case SL_QLIST: {
    if (!in->u.list.n) return 0;
    qv *items = sl_arena_alloc(a, sizeof *items * in->u.list.n);
    if (!items) return -ENOMEM;
    for (size_t i = 0; i < in->u.list.n; i++)
      if (qv_copy(a, &in->u.list.items[i], &items[i])) return -ENOMEM;
    out->u.list.items = items;
    return 0;
  }
  case SL_QMAP: {
    if (!in->u.map.n) return 0;
    sl_qentry *es = sl_arena_alloc(a, sizeof *es * in->u.map.n);
    if (!es) return -ENOMEM;
    for (size_t i = 0; i < in->u.map.n; i++) {
      es[i].key = sl_arena_strndup(a, in->u.map.entries[i].key, strlen(in->u.map.entries[i].key));
      if (!es[i].key || qv_copy(a, &in->u.map.entries[i].value, &es[i].value)) return -ENOMEM;
    }
    out->u.map.entries = es;
    return 0;
  }
  case SL_QREL:
    if (in->u.rel.type) {
      char *t = sl_arena_strndup(a, in->u.rel.type, strlen(in->u.rel.type));
      if (!t) return -ENOMEM;
      out->u.rel.type = t;
    }
    return 0;
  case SL_QPATH: {
    size_t nn = in->u.path.nnodes, nr = in->u.path.nrels;
    sl_qnode *nodes = sl_arena_alloc(a, sizeof *nodes * nn);
    sl_qrel *rels = sl_arena_alloc(a, sizeof *rels * (nr ? nr : 1));
    if (!nodes || !rels) return -ENOMEM;
    memcpy(nodes, in->u.path.nodes, sizeof *nodes * nn);
    for (size_t i = 0; i < nr; i++) {
      qv r, rc;
      r.kind = SL_QREL;
      r.u.rel = in->u.path.rels[i];
      if (qv_copy(a, &r, &rc)) return -ENOMEM;
      rels[i] = rc.u.rel;
    }
    out->u.path.nodes = nodes;
    out->u.path.rels = rels;
    return 0;
  }
  default: return 0;
  }
}

/* ---- ordering ------------------------------------------------------------------------------ */
static int rank(const qv *v) {
  switch (v->kind) {
  case SL_QMAP: return 1;
  case SL_QNODE: return 2;
  case SL_QREL: return 3;
  case SL_QLIST: return 4;
  case SL_QPATH: return 5;
  case SL_NULL: return 16;
  default: return sl_value_kind_rank((sl_kind)v->kind);
  }
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

static int keycmp(const void *a, const void *b) {
  return strcmp((*(const sl_qentry *const *)a)->key, (*(const sl_qentry *const *)b)->key);
}

int qv_order(const qv *a, const qv *b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (a->kind != b->kind && (a->kind == SL_QLIST || b->kind == SL_QLIST)) /* a list and bytes */
    return a->kind == SL_QLIST ? -1 : 1;
  switch (a->kind) {
  case SL_NULL: return 0;
  case SL_QNODE: return cmp_u64(a->u.node.id, b->u.node.id);
  case SL_QREL: return cmp_u64(a->u.rel.id, b->u.rel.id);
  case SL_QLIST: {
    size_t n = a->u.list.n < b->u.list.n ? a->u.list.n : b->u.list.n;
    for (size_t i = 0; i < n; i++) {
      int c = qv_order(&a->u.list.items[i], &b->u.list.items[i]);
      if (c) return c;
    }
    return cmp_u64(a->u.list.n, b->u.list.n);
  }
  case SL_QPATH: {
    size_t n = a->u.path.nnodes < b->u.path.nnodes ? a->u.path.nnodes : b->u.path.nnodes;
    for (size_t i = 0; i < n; i++) {
      int c = cmp_u64(a->u.path.nodes[i].id, b->u.path.nodes[i].id);
      if (!c && i < a->u.path.nrels && i < b->u.path.nrels) c = cmp_u64(a->u.path.rels[i].id, b->u.path.rels[i].id);
      if (c) return c;
    }
    return cmp_u64(a->u.path.nnodes, b->u.path.nnodes);
  }
  case SL_QMAP: {
    /* by sorted keys, then values (Neo4j orders maps by their entries) */
    size_t na = a->u.map.n, nb = b->u.map.n;
    if (na != nb) return na < nb ? -1 : 1;
    const sl_qentry *sa[64], *sb[64];
    if (na > 64) return 0;
    for (size_t i = 0; i < na; i++) sa[i] = &a->u.map.entries[i], sb[i] = &b->u.map.entries[i];
    qsort(sa, na, sizeof *sa, keycmp);
    qsort(sb, nb, sizeof *sb, keycmp);
    for (size_t i = 0; i < na; i++) {
      int c = strcmp(sa[i]->key, sb[i]->key);
      if (c) return c;
      c = qv_order(&sa[i]->value, &sb[i]->value);
      if (c) return c;
    }
    return 0;
  }
  default: return sl_value_order(&a->u.v, &b->u.v);
  }
}

static const qv *map_get(const qv *m, const char *key) {
  for (size_t i = 0; i < m->u.map.n; i++)
    if (!strcmp(m->u.map.entries[i].key, key)) return &m->u.map.entries[i].value;
  return NULL;
}

int qv_equal(const qv *a, const qv *b) {
  if (a->kind == SL_NULL || b->kind == SL_NULL) return -1;
  bool anum = a->kind == SL_INT || a->kind == SL_DOUBLE, bnum = b->kind == SL_INT || b->kind == SL_DOUBLE;
  if (a->kind != b->kind && !(anum && bnum)) return 0;
  switch (a->kind) {
  case SL_QNODE: return a->u.node.id == b->u.node.id;
  case SL_QREL: return a->u.rel.id == b->u.rel.id;
  case SL_QPATH: return qv_order(a, b) == 0;
  case SL_QLIST: {
    if (a->u.list.n != b->u.list.n) return 0;
    int r = 1;
    for (size_t i = 0; i < a->u.list.n; i++) {
      int e = qv_equal(&a->u.list.items[i], &b->u.list.items[i]);
      if (e == 0) return 0;
      if (e < 0) r = -1;
    }
    return r;
  }
  case SL_QMAP: {
    if (a->u.map.n != b->u.map.n) return 0;
    int r = 1;
    for (size_t i = 0; i < a->u.map.n; i++) {
      const qv *bv = map_get(b, a->u.map.entries[i].key);
      if (!bv) return 0;
      int e = qv_equal(&a->u.map.entries[i].value, bv);
      if (e == 0) return 0;
      if (e < 0) r = -1;
    }
    return r;
  }
  default: {
    int cmp, eq = 0;
    sl_value_compare(&a->u.v, &b->u.v, &cmp, &eq);
    return eq;
  }
  }
}

int qv_compare(const qv *a, const qv *b, int *cmp) {
  if (a->kind == SL_NULL || b->kind == SL_NULL) return 0;
  if (a->kind == SL_QLIST && b->kind == SL_QLIST) {
    size_t n = a->u.list.n < b->u.list.n ? a->u.list.n : b->u.list.n;
    for (size_t i = 0; i < n; i++) {
      int c;
      if (!qv_compare(&a->u.list.items[i], &b->u.list.items[i], &c)) return 0;
      if (c) {
        *cmp = c;
        return 1;
      }
    }
    *cmp = cmp_u64(a->u.list.n, b->u.list.n);
    return 1;
  }
  if (!is_prop_kind(a->kind) || !is_prop_kind(b->kind)) return 0;
  return sl_value_compare(&a->u.v, &b->u.v, cmp, NULL);
}

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

uint64_t q_hash_bytes(const void *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

uint64_t qv_hash(const qv *v) {
  switch (v->kind) {
  case SL_NULL: return 7;
  case SL_BOOL: return 11 + v->u.v.u.b;
  case SL_INT: {
    double d = (double)v->u.v.u.i;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    return mix(13, bits);
  }
  case SL_DOUBLE: {
    double d = v->u.v.u.d;
    if (d == 0) d = 0; /* -0.0 */
    if (isnan(d)) return 17;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    return mix(13, bits);
  }
  case SL_STRING:
  case SL_BYTES: return mix((uint64_t)v->kind, q_hash_bytes(v->u.v.u.s, v->u.v.len));
  case SL_QNODE: return mix(19, v->u.node.id);
  case SL_QREL: return mix(23, v->u.rel.id);
  case SL_QLIST: {
    uint64_t h = 29;
    for (size_t i = 0; i < v->u.list.n; i++) h = mix(h, qv_hash(&v->u.list.items[i]));
    return h;
  }
  case SL_QMAP: {
    uint64_t h = 31;
    for (size_t i = 0; i < v->u.map.n; i++)
      h += mix(q_hash_bytes(v->u.map.entries[i].key, strlen(v->u.map.entries[i].key)), qv_hash(&v->u.map.entries[i].value));
    return h;
  }
  case SL_QPATH: {
    uint64_t h = 37;
    for (size_t i = 0; i < v->u.path.nnodes; i++) h = mix(h, v->u.path.nodes[i].id);
    return h;
  }
  default: return mix((uint64_t)v->kind, (uint64_t)v->u.v.u.t.seconds);
  }
}

/* ---- properties ------------------------------------------------------------------------------ */
int qv_from_prop(sl_arena *a, const sl_value *in, qv *out) {
  if (in->kind == SL_LIST) {
    out->kind = SL_QLIST;
    out->u.list.n = in->len;
    out->u.list.items = NULL;
    if (!in->len) return 0;
    qv *items = sl_arena_alloc(a, sizeof *items * in->len);
    if (!items) return -ENOMEM;
    for (size_t i = 0; i < in->len; i++) {
      sl_value e = in->u.items[i];
      e.kind = in->elem_kind;
      if (qv_from_prop(a, &e, &items[i])) return -ENOMEM;
    }
    out->u.list.items = items;
    return 0;
  }
  if (in->kind == SL_NULL) {
    *out = qv_null();
    return 0;
  }
  qv tmp;
  tmp.kind = in->kind;
  tmp.u.v = *in;
  return qv_copy(a, &tmp, out);
}

int qv_to_prop(qctx *q, sl_arena *a, const qv *in, sl_value *out, unsigned line, unsigned col) {
  memset(out, 0, sizeof *out);
  if (in->kind == SL_NULL) return 0;
  if (is_prop_kind(in->kind)) {
    *out = in->u.v;
    return 0;
  }
  if (in->kind == SL_QLIST) {
    size_t n = in->u.list.n;
    sl_value *items = sl_arena_alloc(a, sizeof *items * (n ? n : 1));
    if (!items) return qerr_oom(q);
    int kind = SL_NULL;
    for (size_t i = 0; i < n; i++) {
      const qv *e = &in->u.list.items[i];
      if (!is_prop_kind(e->kind))
        return qerr(q, SL_EINVAL, ST_TYPE, line, col,
                    "Property values can only be of primitive types or arrays thereof. Encountered: %s.",
                    e->kind == SL_NULL ? "a list containing null" : qv_type_name(e));
      if (kind == SL_NULL) kind = e->kind;
      else if (kind != e->kind)
        return qerr(q, SL_EINVAL, ST_TYPE, line, col, "Collections containing mixed types can not be stored in properties.");
      items[i] = e->u.v;
    }
    out->kind = SL_LIST;
    out->elem_kind = (sl_kind)kind;
    out->len = n;
    out->u.items = items;
    return 0;
  }
  return qerr(q, SL_EINVAL, ST_TYPE, line, col,
              "Property values can only be of primitive types or arrays thereof. Encountered: %s.", qv_type_name(in));
}

int qv_from_public(sl_arena *a, const sl_qvalue *in, qv *out) {
  if (in->kind == SL_LIST) return qv_from_prop(a, &in->u.v, out);
  return qv_copy(a, in, out);
}

const char *qv_type_name(const qv *v) {
  switch (v->kind) {
  case SL_NULL: return "NULL";
  case SL_BOOL: return "Boolean";
  case SL_INT: return "Long";
  case SL_DOUBLE: return "Double";
  case SL_STRING: return "String";
  case SL_BYTES: return "ByteArray";
  case SL_DATE: return "Date";
  case SL_LOCALTIME: return "LocalTime";
  case SL_TIME: return "Time";
  case SL_LOCALDATETIME: return "LocalDateTime";
  case SL_DATETIME: return "DateTime";
  case SL_DURATION: return "Duration";
  case SL_POINT: return "Point";
  case SL_QLIST: return "List";
  case SL_QMAP: return "Map";
  case SL_QNODE: return "Node";
  case SL_QREL: return "Relationship";
  case SL_QPATH: return "Path";
  default: return "Value";
  }
}

/* Java's Double.toString: decimal for 1e-3 <= |d| < 1e7, else d.dddE[-]n;
 * the shortest digits that read back to the same double. */
size_t q_double_text(double d, char *buf, size_t size) {
  if (isnan(d)) return (size_t)snprintf(buf, size, "NaN");
  if (isinf(d)) return (size_t)snprintf(buf, size, d > 0 ? "Infinity" : "-Infinity");
  if (d == 0) return (size_t)snprintf(buf, size, signbit(d) ? "-0.0" : "0.0");
  char digits[40];
  int prec;
  for (prec = 1; prec <= 17; prec++) {
    snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
    if (strtod(digits, NULL) == d) break;
  }
  /* digits: [-]D.DDDDe[+-]XX */
  bool neg = digits[0] == '-';
  const char *m = digits + neg;
  char mant[24];
  size_t mn = 0;
  const char *e = strchr(m, 'e');
  for (const char *c = m; c < e; c++)
    if (*c != '.') mant[mn++] = *c;
  while (mn > 1 && mant[mn - 1] == '0') mn--;
  mant[mn] = 0;
  int exp = atoi(e + 1);
  char out[64];
  size_t o = 0;
  if (neg) out[o++] = '-';
  double ad = fabs(d);
  if (ad >= 1e-3 && ad < 1e7) {
    if (exp >= 0) {
      for (int i = 0; i <= exp; i++) out[o++] = (size_t)i < mn ? mant[i] : '0';
      out[o++] = '.';
      if ((size_t)exp + 1 < mn)
        for (size_t i = (size_t)exp + 1; i < mn; i++) out[o++] = mant[i];
      else
        out[o++] = '0';
    } else {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
      for (size_t i = 0; i < mn; i++) out[o++] = mant[i];
    }
    out[o] = 0;
  } else {
    out[o++] = mant[0];
    out[o++] = '.';
    if (mn > 1)
      for (size_t i = 1; i < mn; i++) out[o++] = mant[i];
    else
      out[o++] = '0';
    o += (size_t)snprintf(out + o, sizeof out - o, "E%d", exp);
  }
  return (size_t)snprintf(buf, size, "%s", out);
}

const char *qv_text(qctx *q, sl_arena *a, const qv *v, size_t *len) {
  char buf[SL_TEMPORAL_TEXT_MAX + 64];
  size_t n;
  switch (v->kind) {
  case SL_STRING:
    *len = v->u.v.len;
    return v->u.v.u.s;
  case SL_BOOL: n = (size_t)snprintf(buf, sizeof buf, "%s", v->u.v.u.b ? "true" : "false"); break;
  case SL_INT: n = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)v->u.v.u.i); break;
  case SL_DOUBLE: n = q_double_text(v->u.v.u.d, buf, sizeof buf); break;
  case SL_DATE:
  case SL_LOCALTIME:
  case SL_TIME:
  case SL_LOCALDATETIME:
  case SL_DATETIME:
  case SL_DURATION: {
    int r = sl_temporal_format(&v->u.v, buf, sizeof buf);
    if (r < 0) return NULL;
    n = (size_t)r;
    break;
  }
  case SL_POINT: {
    const char *crs = sl_srid_name(v->u.v.u.pt.srid);
    (void)crs;
    char x[40], y[40], z[40];
    q_double_text(v->u.v.u.pt.x, x, sizeof x);
    q_double_text(v->u.v.u.pt.y, y, sizeof y);
    if (v->u.v.u.pt.srid == SL_SRID_CARTESIAN_3D || v->u.v.u.pt.srid == SL_SRID_WGS84_3D) {
      q_double_text(v->u.v.u.pt.z, z, sizeof z);
      n = (size_t)snprintf(buf, sizeof buf, "point({x: %s, y: %s, z: %s, crs: '%s'})", x, y, z, crs ? crs : "?");
    } else {
      n = (size_t)snprintf(buf, sizeof buf, "point({x: %s, y: %s, crs: '%s'})", x, y, crs ? crs : "?");
    }
    break;
  }
  default: (void)q; return NULL;
  }
  char *s = sl_arena_strndup(a, buf, n);
  *len = n;
  return s;
}

/* ---- entities ------------------------------------------------------------------------------- */
void q_element_id(qctx *q, bool rel, uint64_t id, char *buf) {
  snprintf(buf, SL_ELEMENT_ID_MAX, "%c:%s:%llu", rel ? '5' : '4', q->store_uuid, (unsigned long long)id);
}

void sl_element_id(const sl_store *st, bool rel, uint64_t id, char *buf) {
  const uint8_t *u = sl_store_id(st);
  snprintf(buf, SL_ELEMENT_ID_MAX,
           "%c:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x:%llu", rel ? '5' : '4', u[0],
           u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15],
           (unsigned long long)id);
}

int q_deleted_entity(qctx *q, bool node, uint64_t id) {
  return qerr(q, SL_EINVAL, ST_NOTFOUND, 0, 0, "%s with id %llu has been deleted in this transaction", node ? "Node" : "Relationship",
              (unsigned long long)id);
}

int q_prop(qctx *q, const qv *ent, const char *key, qv *out) {
  sl_value v;
  bool node = ent->kind == SL_QNODE;
  uint64_t id = node ? ent->u.node.id : ent->u.rel.id;
  int rc = node ? sl_view_node_prop(q->view, id, key, &v) : sl_view_rel_prop(q->view, id, key, &v);
  if (rc == SL_ENOTFOUND && (q->stats.nodes_deleted || q->stats.relationships_deleted)) {
    /* absent, or the entity itself was deleted by this transaction? */
    size_t n;
    uint64_t got;
    int r = sl_view_scan_ids(q->view, !node, NULL, id, &got, 1, &n);
    if (!r && (n == 0 || got != id)) return q_deleted_entity(q, node, id);
  }
  if (rc == SL_ENOTFOUND || (rc == SL_EINVAL && strlen(key) > SL_NAME_MAX)) {
    *out = qv_null();
    return 0;
  }
  if (rc) return qerr_store(q, rc, 0, 0);
  return qv_from_prop(&q->tmp, &v, out) ? qerr_oom(q) : 0;
}

static int copy_props(sl_arena *a, const sl_prop *in, size_t n, const sl_prop **out) {
  sl_prop *ps = sl_arena_alloc(a, sizeof *ps * (n ? n : 1));
  if (!ps) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    ps[i].key = sl_arena_strndup(a, in[i].key, strlen(in[i].key));
    if (!ps[i].key) return -ENOMEM;
    ps[i].value = in[i].value;
    qv t, c;
    if (in[i].value.kind == SL_LIST) {
      size_t len = in[i].value.len;
      sl_value *items = sl_arena_alloc(a, sizeof *items * (len ? len : 1));
      if (!items) return -ENOMEM;
      for (size_t j = 0; j < len; j++) {
        t.kind = in[i].value.elem_kind;
        t.u.v = in[i].value.u.items[j];
        t.u.v.kind = in[i].value.elem_kind;
        if (qv_copy(a, &t, &c)) return -ENOMEM;
        items[j] = c.u.v;
        items[j].kind = in[i].value.u.items[j].kind;
      }
      ps[i].value.u.items = items;
    } else {
      t.kind = in[i].value.kind;
      t.u.v = in[i].value;
      if (qv_copy(a, &t, &c)) return -ENOMEM;
      ps[i].value = c.u.v;
    }
  }
  *out = ps;
  return 0;
}

static int mat_node(qctx *q, sl_arena *a, uint64_t id, sl_qnode *out) {
  memset(out, 0, sizeof *out);
  out->id = id;
  char eid[SL_ELEMENT_ID_MAX];
  q_element_id(q, false, id, eid);
  out->element_id = sl_arena_strndup(a, eid, strlen(eid));
  if (!out->element_id) return qerr_oom(q);
  sl_node n;
  int rc = sl_view_node(q->view, id, &n);
  if (rc == SL_ENOTFOUND) return 0; /* deleted in this transaction */
  if (rc) return qerr_store(q, rc, 0, 0);
  const char **labels = sl_arena_alloc(a, sizeof *labels * (n.nlabels ? n.nlabels : 1));
  if (!labels) return qerr_oom(q);
  for (size_t i = 0; i < n.nlabels; i++)
    if (!(labels[i] = sl_arena_strndup(a, n.labels[i], strlen(n.labels[i])))) return qerr_oom(q);
  out->labels = labels;
  out->nlabels = n.nlabels;
  out->nprops = n.nprops;
  return copy_props(a, n.props, n.nprops, &out->props) ? qerr_oom(q) : 0;
}

static int mat_rel(qctx *q, sl_arena *a, const sl_qrel *in, sl_qrel *out) {
  memset(out, 0, sizeof *out);
  out->id = in->id;
  out->start = in->start;
  out->end = in->end;
  char eid[SL_ELEMENT_ID_MAX];
  sl_rel r;
  int rc = sl_view_rel(q->view, in->id, &r);
  if (rc && rc != SL_ENOTFOUND) return qerr_store(q, rc, 0, 0);
  if (!rc) {
    out->start = r.start;
    out->end = r.end;
    out->type = sl_arena_strndup(a, r.type, strlen(r.type));
    out->nprops = r.nprops;
    if (!out->type || copy_props(a, r.props, r.nprops, &out->props)) return qerr_oom(q);
  } else {
    out->type = in->type ? sl_arena_strndup(a, in->type, strlen(in->type)) : "";
  }
  q_element_id(q, true, out->id, eid);
  out->element_id = sl_arena_strndup(a, eid, strlen(eid));
  q_element_id(q, false, out->start, eid);
  out->start_element_id = sl_arena_strndup(a, eid, strlen(eid));
  q_element_id(q, false, out->end, eid);
  out->end_element_id = sl_arena_strndup(a, eid, strlen(eid));
  if (!out->element_id || !out->start_element_id || !out->end_element_id || !out->type) return qerr_oom(q);
  return 0;
}

int qv_materialize(qctx *q, sl_arena *a, const qv *in, qv *out) {
  int rc;
  switch (in->kind) {
  case SL_QNODE:
    out->kind = SL_QNODE;
    return mat_node(q, a, in->u.node.id, &out->u.node);
  case SL_QREL:
    out->kind = SL_QREL;
    return mat_rel(q, a, &in->u.rel, &out->u.rel);
  case SL_QPATH: {
    out->kind = SL_QPATH;
    size_t nn = in->u.path.nnodes, nr = in->u.path.nrels;
    sl_qnode *nodes = sl_arena_alloc(a, sizeof *nodes * nn);
    sl_qrel *rels = sl_arena_alloc(a, sizeof *rels * (nr ? nr : 1));
    if (!nodes || !rels) return qerr_oom(q);
    for (size_t i = 0; i < nn; i++)
      if ((rc = mat_node(q, a, in->u.path.nodes[i].id, &nodes[i]))) return rc;
    for (size_t i = 0; i < nr; i++)
      if ((rc = mat_rel(q, a, &in->u.path.rels[i], &rels[i]))) return rc;
    out->u.path.nnodes = nn;
    out->u.path.nrels = nr;
    out->u.path.nodes = nodes;
    out->u.path.rels = rels;
    return 0;
  }
  case SL_QLIST: {
    out->kind = SL_QLIST;
    out->u.list.n = in->u.list.n;
    qv *items = sl_arena_alloc(a, sizeof *items * (in->u.list.n ? in->u.list.n : 1));
    if (!items) return qerr_oom(q);
    for (size_t i = 0; i < in->u.list.n; i++)
      if ((rc = qv_materialize(q, a, &in->u.list.items[i], &items[i]))) return rc;
    out->u.list.items = items;
    return 0;
  }
  case SL_QMAP: {
    out->kind = SL_QMAP;
    out->u.map.n = in->u.map.n;
    sl_qentry *es = sl_arena_alloc(a, sizeof *es * (in->u.map.n ? in->u.map.n : 1));
    if (!es) return qerr_oom(q);
    for (size_t i = 0; i < in->u.map.n; i++) {
      es[i].key = sl_arena_strndup(a, in->u.map.entries[i].key, strlen(in->u.map.entries[i].key));
      if (!es[i].key) return qerr_oom(q);
      if ((rc = qv_materialize(q, a, &in->u.map.entries[i].value, &es[i].value))) return rc;
    }
    out->u.map.entries = es;
    return 0;
  }
  default: return qv_copy(a, in, out) ? qerr_oom(q) : 0;
  }
}
