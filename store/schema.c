/*
 * Schema in the store: indexes and constraints, kept in LMDB beside the
 * graph, changed only by schema ops (which the log records like any op, so
 * schema ships, dumps, loads and replays) and kept up to date by every
 * write in the same LMDB transaction.
 *
 * DATABASES (derived from the log, as all of LMDB)
 *   schema  name -> id(4, big-endian) | packed Shiplog__SchemaRule
 *   index   id(4) values entity(8) -> empty       (index_key.c: values)
 *   meta    next_schema_id -> u64 LE (absent: 1), format_version 2 once a
 *           rule was created
 * An index (and a UNIQUE or NODE_KEY constraint, which owns one under its
 * own name, as in Neo4j) holds every entity with its token (label or
 * relationship type) that has all its keys; a NOT_NULL constraint has no
 * entries. Ids are never reused, so a dropped index's entries cannot be
 * mistaken for a new one's.
 *
 * MAINTENANCE: graph.c's ops call sl__schema_entity before a change (remove
 * the entity's entries for the rules the change touches) and after it (put
 * them back from the new state): one rule of code for labels, properties,
 * creates and deletes. The rules are read once per LMDB write transaction
 * (w->schema); with none, every hook returns at once.
 *
 * CONSTRAINTS are checked at the commit of a sl_tx (sl__schema_check), so
 * that a transaction may pass through states that violate them (create a
 * node, then set its key): the hooks record each entity a constraint
 * applies to in w->touched, and the check reads their state at commit.
 * Replay does not check: the primary did. Creating a constraint checks the
 * existing data.
 *
 * OLDER STORES: a store of format 1 lacks the two databases until a writer
 * of this build opens it (sl__schema_dbs_ensure, after the checkpoint's
 * pin, like any write); a read-only open then sees no schema.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_int.h"

/* ---- databases ------------------------------------------------------------------ */
int sl__schema_dbs_open(sl_store *st, MDB_txn *txn, unsigned flags) {
  st->schema_dbs = false;
  for (int i = SL__DB_SCHEMA; i <= SL__DB_INDEX; i++) {
    int rc = mdb_dbi_open(txn, sl__db_names[i], flags, &st->dbi[i]);
    if (rc == MDB_NOTFOUND && !(flags & MDB_CREATE)) return 0;
    if (rc) {
      sl_diag_error("%s: LMDB database %s: %s", st->dir, sl__db_names[i], mdb_strerror(rc));
      return sl__mdb_err(rc);
    }
  }
  st->schema_dbs = true;
  return 0;
}

int sl__schema_dbs_ensure(sl_store *st) {
  MDB_txn *txn;
  if (st->schema_dbs) return 0;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (!rc && (rc = sl__schema_dbs_open(st, txn, MDB_CREATE)) == 0) {
    rc = mdb_txn_commit(txn);
    if (rc) st->schema_dbs = false;
  } else if (txn) {
    mdb_txn_abort(txn);
  }
  if (rc > 0) {
    sl_diag_error("%s: LMDB: creating the schema databases: %s", st->dir, mdb_strerror(rc));
    rc = sl__mdb_err(rc);
  }
  return rc;
}

/* ---- rules ------------------------------------------------------------------------ */
/* A read or write context: the snapshot, and where decoded values go. */
typedef struct rctx {
  sl_store *st;
  MDB_txn *txn;
  sl_arena *a;
} rctx;

static int mdb_error(rctx *c, int rc, enum sl__db db) {
  sl_diag_error("%s/data.mdb: LMDB %s: %s", c->st->dir, sl__db_names[db], mdb_strerror(rc));
  return sl__mdb_err(rc);
}

/* Decode a schema record into *out (strings in a). */
static int rule_decode(sl_arena *a, const MDB_val *k, const MDB_val *d, sl__rule *out) {
  ProtobufCAllocator al;
  const uint8_t *p = d->mv_data;
  if (d->mv_size < 4) return SL_ECORRUPT;
  sl__arena_pb_allocator(a, &al);
  Shiplog__SchemaRule *pb = shiplog__schema_rule__unpack(&al, d->mv_size - 4, p + 4);
  if (!pb || !pb->n_keys || pb->n_keys > SL_SCHEMA_KEYS_MAX || (unsigned)pb->kind > SL_SCHEMA_NOT_NULL ||
      k->mv_size != strlen(pb->name) || memcmp(k->mv_data, pb->name, k->mv_size) != 0)
    return SL_ECORRUPT;
  out->id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  out->r.name = pb->name;
  out->r.kind = (sl_schema_kind)pb->kind;
  out->r.rel = pb->has_relationship && pb->relationship;
  out->r.token = pb->token;
  out->r.nkeys = pb->n_keys;
  out->r.keys = (const char *const *)pb->keys;
  return 0;
}

/* Every rule, in name order, into a (an array of *n). */
static int rules_read(rctx *c, sl__rule **out, size_t *n) {
  MDB_cursor *cur = NULL;
  MDB_val k, d;
  size_t cap = 0;
  int rc = 0, mrc;
  *out = NULL;
  *n = 0;
  if (!c->st->schema_dbs) return 0;
  if ((mrc = mdb_cursor_open(c->txn, c->st->dbi[SL__DB_SCHEMA], &cur))) return mdb_error(c, mrc, SL__DB_SCHEMA);
  for (mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
    if (*n == cap) {
      cap = cap ? 2 * cap : 8;
      sl__rule *r = sl_arena_alloc(c->a, cap * sizeof *r);
      if (!r) {
        rc = -ENOMEM;
        goto out;
      }
      if (*n) memcpy(r, *out, *n * sizeof *r);
      *out = r;
    }
    if ((rc = rule_decode(c->a, &k, &d, &(*out)[*n]))) {
      sl_diag_error("%s/data.mdb: LMDB schema: the rule %.*s is malformed", c->st->dir, (int)k.mv_size,
                   (const char *)k.mv_data);
      goto out;
    }
    (*n)++;
  }
  if (mrc != MDB_NOTFOUND) rc = mdb_error(c, mrc, SL__DB_SCHEMA);
out:
  mdb_cursor_close(cur);
  return rc;
}

void sl__schema_free(sl__wctx *w) {
  if (!w->schema) return;
  sl_arena_free(&w->schema->arena);
  sl_arena_free(&w->schema->scratch);
  free(w->schema);
  w->schema = NULL;
}

int sl__schema_get(sl__wctx *w, sl__schema **out) {
  if (!w->schema) {
    sl__schema *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    sl_arena_init(&s->arena, NULL);
    sl_arena_init(&s->scratch, NULL);
    w->schema = s;
    rctx c = {w->st, w->txn, &s->arena};
    int rc = rules_read(&c, &s->rules, &s->n);
    if (rc) {
      sl__schema_free(w);
      return rc;
    }
    for (size_t i = 0; i < s->n; i++) s->constraints |= s->rules[i].r.kind != SL_SCHEMA_INDEX;
  }
  *out = w->schema;
  return 0;
}

/* ---- entities ------------------------------------------------------------------- */
/* 1 if entity id has the token (a node the label, a relationship the type), 0 if not or absent. */
static int entity_has(rctx *c, bool rel, uint64_t id, const char *token) {
  uint8_t k[8 + SL_NAME_MAX];
  size_t tl = strlen(token);
  MDB_val key = {8, k}, val;
  sl_put_be64(k, id);
  if (!rel) {
    memcpy(k + 8, token, tl);
    key.mv_size = 8 + tl;
  }
  int rc = mdb_get(c->txn, c->st->dbi[rel ? SL__DB_RELS : SL__DB_NODE_LABELS], &key, &val);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc) return mdb_error(c, rc, rel ? SL__DB_RELS : SL__DB_NODE_LABELS);
  if (!rel) return 1;
  return val.mv_size == 16 + tl && memcmp((uint8_t *)val.mv_data + 16, token, tl) == 0;
}

/* The values of r's keys on entity id into vals (SL_NULL where missing):
 * 1 when every key is present, else 0. */
static int entity_values(rctx *c, bool rel, uint64_t id, const sl_schema_rule *r, sl_value *vals) {
  uint8_t k[8 + SL_NAME_MAX];
  enum sl__db db = rel ? SL__DB_REL_PROPS : SL__DB_NODE_PROPS;
  int all = 1;
  sl_put_be64(k, id);
  for (size_t i = 0; i < r->nkeys; i++) {
    size_t kl = strlen(r->keys[i]);
    memcpy(k + 8, r->keys[i], kl);
    MDB_val key = {8 + kl, k}, val;
    memset(&vals[i], 0, sizeof vals[i]);
    int rc = mdb_get(c->txn, c->st->dbi[db], &key, &val);
    if (rc == MDB_NOTFOUND) {
      all = 0;
      continue;
    }
    if (rc) return mdb_error(c, rc, db);
    if ((rc = sl__value_decode(val.mv_data, val.mv_size, c->a, &vals[i]))) {
      sl_diag_error("%s/data.mdb: LMDB: property %s of %s %" PRIu64 " is malformed", c->st->dir, r->keys[i],
                   rel ? "relationship" : "node", id);
      return rc;
    }
  }
  return all;
}

/* The key of rule ru for vals; with the entity id unless it is SL_ID_NEW. */
static void rule_key(sl__keybuf *b, const sl__rule *ru, const sl_value *vals, uint64_t entity) {
  sl__index_key_begin(b, ru->id);
  for (size_t i = 0; i < ru->r.nkeys; i++) sl__index_key_value(b, &vals[i]);
  sl__index_key_finish(b);
  if (entity != SL_ID_NEW) {
    sl_put_be64(b->buf + b->len, entity);
    b->len += 8;
  }
}

static bool rule_has_key(const sl_schema_rule *r, const char *key) {
  for (size_t i = 0; i < r->nkeys; i++)
    if (!strcmp(r->keys[i], key)) return true;
  return false;
}

/* Do two values make the same index key (Cypher's `=` as the index sees it)? */
static bool same_key(const sl_value *a, const sl_value *b) {
  if ((a->kind == SL_STRING || a->kind == SL_BYTES) && a->kind == b->kind)
    return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
  static __thread sl__keybuf ka, kb;
  ka.len = kb.len = 0;
  sl__index_key_value(&ka, a);
  sl__index_key_value(&kb, b);
  if (ka.len > SL__KEYBUF || kb.len > SL__KEYBUF) return sl_value_order(a, b) == 0; /* long lists */
  return ka.len == kb.len && memcmp(ka.buf, kb.buf, ka.len) == 0;
}

static bool same_keys(const sl_value *a, const sl_value *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!same_key(&a[i], &b[i])) return false;
  return true;
}

/* ---- messages -------------------------------------------------------------------- */
static int fail(sl__wctx *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(sl__wctx *w, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->err, sizeof w->err, fmt, ap);
  va_end(ap);
  return rc;
}

/* A value as Cypher writes it, cut to fit: 'Alice', 42, 1.5, true. */
static void value_text(char *buf, size_t n, const sl_value *v) {
  switch (v->kind) {
  case SL_BOOL: snprintf(buf, n, "%s", v->u.b ? "true" : "false"); break;
  case SL_INT: snprintf(buf, n, "%" PRId64, v->u.i); break;
  case SL_DOUBLE: snprintf(buf, n, "%.17g", v->u.d); break;
  case SL_STRING: snprintf(buf, n, "'%.*s%s'", (int)SL_MIN(v->len, 60), v->u.s, v->len > 60 ? "..." : ""); break;
  case SL_LIST: snprintf(buf, n, "a list of %zu", v->len); break;
  default: snprintf(buf, n, "a value of kind %d", (int)v->kind); break;
  }
}

/* "`name` = 'Alice'" or "`a` = 1, `b` = 'x'" */
static void props_text(char *buf, size_t n, const sl_schema_rule *r, const sl_value *vals) {
  size_t off = 0;
  buf[0] = 0;
  for (size_t i = 0; i < r->nkeys && off < n; i++) {
    char vt[100];
    value_text(vt, sizeof vt, &vals[i]);
    int k = snprintf(buf + off, n - off, "%s`%s` = %s", i ? ", " : "", r->keys[i], vt);
    if (k < 0) break;
    off += (size_t)k;
  }
}

static int violation_unique(sl__wctx *w, const sl__rule *ru, uint64_t have, uint64_t dup, const sl_value *vals) {
  char pt[300];
  props_text(pt, sizeof pt, &ru->r, vals);
  return fail(w, SL_ECONSTRAINT, "%s(%" PRIu64 ") already exists with %s `%s` and propert%s %s (%s %" PRIu64
              " has the same; constraint %s)", ru->r.rel ? "Relationship" : "Node", have,
              ru->r.rel ? "type" : "label", ru->r.token, ru->r.nkeys > 1 ? "ies" : "y", pt,
              ru->r.rel ? "relationship" : "node", dup, ru->r.name);
}

static int violation_missing(sl__wctx *w, const sl__rule *ru, uint64_t id, const sl_value *vals) {
  size_t i = 0;
  while (i + 1 < ru->r.nkeys && vals[i].kind != SL_NULL) i++;
  return fail(w, SL_ECONSTRAINT, "%s(%" PRIu64 ") with %s `%s` must have the property `%s` (constraint %s)",
              ru->r.rel ? "Relationship" : "Node", id, ru->r.rel ? "type" : "label", ru->r.token, ru->r.keys[i],
              ru->r.name);
}

/* ---- maintenance ------------------------------------------------------------------ */
static int touch(sl__wctx *w, bool rel, uint64_t id) {
  if (w->ntouched && w->touched[w->ntouched - 1].id == id && w->touched[w->ntouched - 1].rel == rel) return 0;
  if (w->ntouched == w->touched_cap) {
    size_t cap = w->touched_cap ? 2 * w->touched_cap : 64;
    sl__touched *t = realloc(w->touched, cap * sizeof *t);
    if (!t) return -ENOMEM;
    w->touched = t;
    w->touched_cap = cap;
  }
  w->touched[w->ntouched++] = (sl__touched){id, rel};
  return 0;
}

int sl__schema_entity(sl__wctx *w, bool rel, uint64_t id, const char *token, const char *key, bool add) {
  sl__schema *s;
  sl_value vals[SL_SCHEMA_KEYS_MAX];
  int rc = sl__schema_get(w, &s);
  if (rc || !s->n) return rc;
  rctx c = {w->st, w->txn, &s->scratch};
  sl_arena_reset(&s->scratch);
  for (size_t i = 0; i < s->n; i++) {
    const sl__rule *ru = &s->rules[i];
    if (ru->r.rel != rel || (token && strcmp(ru->r.token, token)) || (key && !rule_has_key(&ru->r, key))) continue;
    int has = entity_has(&c, rel, id, ru->r.token);
    if (has <= 0) {
      if (has < 0) return has;
      continue;
    }
    if (ru->r.kind != SL_SCHEMA_INDEX && w->track && (add || key) && (rc = touch(w, rel, id))) return rc;
    if (!sl__rule_indexed(ru->r.kind)) continue;
    int all = entity_values(&c, rel, id, &ru->r, vals);
    if (all <= 0) {
      if (all < 0) return all;
      continue;
    }
    static __thread sl__keybuf b;
    rule_key(&b, ru, vals, id);
    MDB_val k = {b.len, b.buf}, none = {0, ""};
    int mrc = add ? mdb_put(w->txn, w->st->dbi[SL__DB_INDEX], &k, &none, 0)
                  : mdb_del(w->txn, w->st->dbi[SL__DB_INDEX], &k, NULL);
    if (mrc && !(mrc == MDB_NOTFOUND && !add)) {
      rc = mdb_error(&c, mrc, SL__DB_INDEX);
      return fail(w, rc, "index %s: %s", ru->r.name, mdb_strerror(mrc));
    }
  }
  return 0;
}

/* ---- walks -------------------------------------------------------------------------- */
typedef int (*entity_fn)(void *arg, uint64_t id);

/* Every entity with the token, ascending: nodes by the label index,
 * relationships by a scan of them all (there is no type index). */
static int each_entity(rctx *c, bool rel, const char *token, entity_fn fn, void *arg) {
  MDB_cursor *cur;
  uint8_t k[1 + SL_NAME_MAX];
  size_t tl = strlen(token), pn = rel ? 0 : 1 + tl;
  enum sl__db db = rel ? SL__DB_RELS : SL__DB_LABEL_INDEX;
  int rc = 0, mrc = mdb_cursor_open(c->txn, c->st->dbi[db], &cur);
  if (mrc) return mdb_error(c, mrc, db);
  k[0] = (uint8_t)tl;
  memcpy(k + 1, token, tl);
  MDB_val key = {pn, k}, val;
  for (mrc = mdb_cursor_get(cur, &key, &val, pn ? MDB_SET_RANGE : MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    if (key.mv_size < pn + 8 || memcmp(key.mv_data, k, pn)) break;
    if (rel && !(val.mv_size == 16 + tl && memcmp((uint8_t *)val.mv_data + 16, token, tl) == 0)) continue;
    if ((rc = fn(arg, sl_get_be64((uint8_t *)key.mv_data + key.mv_size - 8)))) break;
  }
  if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mdb_error(c, mrc, db);
  mdb_cursor_close(cur);
  return rc;
}

/* Every entry of the index from key `from` on while it starts with
 * from[0..pn): fn(arg, key, entity); fn's non-zero return stops the walk
 * and is returned. */
typedef int (*entry_fn)(void *arg, const MDB_val *k, uint64_t entity);
static int each_entry(rctx *c, const uint8_t *from, size_t from_n, size_t pn, entry_fn fn, void *arg) {
  MDB_cursor *cur;
  int rc = 0, mrc = mdb_cursor_open(c->txn, c->st->dbi[SL__DB_INDEX], &cur);
  if (mrc) return mdb_error(c, mrc, SL__DB_INDEX);
  MDB_val key = {from_n, (void *)from}, val;
  for (mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); mrc == 0;
       mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    if (key.mv_size < pn + 8 || memcmp(key.mv_data, from, pn)) break;
    if ((rc = fn(arg, &key, sl_get_be64((uint8_t *)key.mv_data + key.mv_size - 8)))) break;
  }
  if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mdb_error(c, mrc, SL__DB_INDEX);
  mdb_cursor_close(cur);
  return rc;
}

/* ---- uniqueness ----------------------------------------------------------------------- */
/* Looking for another entity with the same values than `self`. */
typedef struct dup_find {
  rctx *c;
  const sl__rule *ru;
  const sl_value *vals;
  uint64_t self, other;
} dup_find;

static int dup_entry(void *arg, const MDB_val *k, uint64_t entity) {
  dup_find *d = arg;
  sl_value theirs[SL_SCHEMA_KEYS_MAX];
  if (entity == d->self) return 0;
  if (sl__index_key_truncated(k->mv_size)) { /* the key holds a hash: compare the values */
    int all = entity_values(d->c, d->ru->r.rel, entity, &d->ru->r, theirs);
    if (all < 0) return all;
    if (!all || !same_keys(d->vals, theirs, d->ru->r.nkeys)) return 0;
  }
  d->other = entity;
  return 1;
}

/* Another entity (the first by id) whose keys equal vals: its id, or SL_ID_NEW. */
static int find_dup(rctx *c, const sl__rule *ru, const sl_value *vals, uint64_t self, uint64_t *other) {
  static __thread sl__keybuf b;
  rule_key(&b, ru, vals, SL_ID_NEW);
  dup_find d = {c, ru, vals, self, SL_ID_NEW};
  int rc = each_entry(c, b.buf, b.len, b.len, dup_entry, &d);
  *other = d.other;
  return rc < 0 ? rc : 0;
}

/* The constraint rule ru on entity id (which has ru's token). */
static int check_entity(sl__wctx *w, rctx *c, const sl__rule *ru, uint64_t id) {
  sl_value vals[SL_SCHEMA_KEYS_MAX];
  uint64_t other;
  int all = entity_values(c, ru->r.rel, id, &ru->r, vals), rc;
  if (all < 0) return all;
  if (!all && ru->r.kind != SL_SCHEMA_UNIQUE) return violation_missing(w, ru, id, vals);
  if (!all || ru->r.kind == SL_SCHEMA_NOT_NULL) return 0;
  if ((rc = find_dup(c, ru, vals, id, &other))) return rc;
  if (other == SL_ID_NEW) return 0;
  return violation_unique(w, ru, SL_MIN(id, other), SL_MAX(id, other), vals);
}

static int touched_cmp(const void *a, const void *b) {
  const sl__touched *x = a, *y = b;
  if (x->rel != y->rel) return x->rel - y->rel;
  return x->id < y->id ? -1 : x->id > y->id;
}

int sl__schema_check(sl__wctx *w) {
  sl__schema *s;
  int rc = 0;
  if (!w->ntouched) return 0;
  if ((rc = sl__schema_get(w, &s))) return rc;
  rctx c = {w->st, w->txn, &s->scratch};
  qsort(w->touched, w->ntouched, sizeof *w->touched, touched_cmp);
  for (size_t t = 0; t < w->ntouched && !rc; t++) {
    if (t && !touched_cmp(&w->touched[t], &w->touched[t - 1])) continue;
    sl_arena_reset(&s->scratch);
    for (size_t i = 0; i < s->n && !rc; i++) {
      const sl__rule *ru = &s->rules[i];
      if (ru->r.kind == SL_SCHEMA_INDEX || ru->r.rel != w->touched[t].rel) continue;
      int has = entity_has(&c, ru->r.rel, w->touched[t].id, ru->r.token); /* 0 also when deleted since */
      rc = has <= 0 ? has : check_entity(w, &c, ru, w->touched[t].id);
    }
  }
  w->ntouched = 0;
  return rc;
}

/* ---- creating and dropping ------------------------------------------------------------ */
typedef struct build {
  sl__wctx *w;
  rctx *c;
  const sl__rule *ru;
} build;

/* Put one existing entity into a new index; check it against a new constraint. */
static int build_entity(void *arg, uint64_t id) {
  build *b = arg;
  sl_value vals[SL_SCHEMA_KEYS_MAX];
  int rc;
  sl_arena_reset(b->c->a);
  if (sl__rule_indexed(b->ru->r.kind)) {
    int all = entity_values(b->c, b->ru->r.rel, id, &b->ru->r, vals);
    if (all < 0) return all;
    if (all) {
      static __thread sl__keybuf k;
      rule_key(&k, b->ru, vals, id);
      MDB_val key = {k.len, k.buf}, none = {0, ""};
      if ((rc = mdb_put(b->w->txn, b->w->st->dbi[SL__DB_INDEX], &key, &none, 0)))
        return fail(b->w, mdb_error(b->c, rc, SL__DB_INDEX), "index %s: %s", b->ru->r.name, mdb_strerror(rc));
    }
  }
  return b->ru->r.kind == SL_SCHEMA_INDEX ? 0 : check_entity(b->w, b->c, b->ru, id);
}

static bool same_schema(const sl_schema_rule *a, const sl_schema_rule *b) {
  if (a->rel != b->rel || strcmp(a->token, b->token) || a->nkeys != b->nkeys) return false;
  for (size_t i = 0; i < a->nkeys; i++)
    if (strcmp(a->keys[i], b->keys[i])) return false;
  return true;
}

/* The rule's parts first: a generated name is "" when they are wrong. */
static int rule_check(sl__wctx *w, const sl_schema_rule *r) {
  if (!r->name) return fail(w, SL_EINVAL, "a schema rule without a name");
  if ((unsigned)r->kind > SL_SCHEMA_NOT_NULL) return fail(w, SL_EINVAL, "%s: unknown kind %d", r->name, (int)r->kind);
  if (!r->token || sl__name_check(r->token) < 0)
    return fail(w, SL_EINVAL, "%s: the %s is not 1..%d bytes of UTF-8", r->name, r->rel ? "type" : "label", SL_NAME_MAX);
  if (!r->nkeys || r->nkeys > SL_SCHEMA_KEYS_MAX || !r->keys)
    return fail(w, SL_EINVAL, "%s: 1..%d property keys, not %zu", r->name, SL_SCHEMA_KEYS_MAX, r->nkeys);
  for (size_t i = 0; i < r->nkeys; i++) {
    if (!r->keys[i] || sl__name_check(r->keys[i]) < 0)
      return fail(w, SL_EINVAL, "%s: a property key is not 1..%d bytes of UTF-8", r->name, SL_NAME_MAX);
    for (size_t j = 0; j < i; j++)
      if (!strcmp(r->keys[i], r->keys[j])) return fail(w, SL_EINVAL, "%s: property %s given twice", r->name, r->keys[i]);
  }
  if (sl__name_check(r->name) < 0) return fail(w, SL_EINVAL, "a schema name is 1..%d bytes of UTF-8", SL_NAME_MAX);
  return 0;
}

/* The rule's record: id(4) | packed SchemaRule. */
static int rule_put(sl__wctx *w, const sl_schema_rule *r, uint32_t id) {
  Shiplog__SchemaRule pb = SHIPLOG__SCHEMA_RULE__INIT;
  pb.name = (char *)r->name;
  pb.has_kind = true;
  pb.kind = (Shiplog__SchemaRule__Kind)r->kind;
  pb.has_relationship = r->rel;
  pb.relationship = r->rel;
  pb.token = (char *)r->token;
  pb.n_keys = r->nkeys;
  pb.keys = (char **)r->keys;
  size_t n = shiplog__schema_rule__get_packed_size(&pb);
  MDB_val k = {strlen(r->name), (void *)r->name}, d = {4 + n, NULL};
  int rc = mdb_put(w->txn, w->st->dbi[SL__DB_SCHEMA], &k, &d, MDB_RESERVE | MDB_NOOVERWRITE);
  if (rc) {
    rctx c = {w->st, w->txn, NULL};
    return fail(w, mdb_error(&c, rc, SL__DB_SCHEMA), "schema %s: %s", r->name, mdb_strerror(rc));
  }
  uint8_t *p = d.mv_data;
  p[0] = (uint8_t)(id >> 24), p[1] = (uint8_t)(id >> 16), p[2] = (uint8_t)(id >> 8), p[3] = (uint8_t)id;
  shiplog__schema_rule__pack(&pb, p + 4);
  return 0;
}

int sl__schema_op_create(sl__wctx *w, const sl_schema_rule *r) {
  sl__schema *s;
  uint64_t next = 1, version = 0;
  MDB_dbi meta = w->st->dbi[SL__DB_META];
  int rc = rule_check(w, r);
  if (rc) return rc;
  if (!w->st->schema_dbs) return fail(w, SL_EREADONLY, "the store has no schema databases (opened read-only)");
  if ((rc = sl__schema_get(w, &s))) return rc;
  for (size_t i = 0; i < s->n; i++) {
    const sl_schema_rule *o = &s->rules[i].r;
    if (!strcmp(o->name, r->name))
      return fail(w, SL_EEXIST, "an %s named %s already exists", o->kind == SL_SCHEMA_INDEX ? "index" : "constraint",
                  r->name);
    bool clash = o->kind == r->kind || (sl__rule_indexed(o->kind) && sl__rule_indexed(r->kind));
    if (clash && same_schema(o, r))
      return fail(w, SL_EEXIST, "%s %s already covers %s `%s` (%s): an equivalent %s cannot be added",
                  o->kind == SL_SCHEMA_INDEX ? "index" : "constraint", o->name, r->rel ? "type" : "label", r->token,
                  r->keys[0], r->kind == SL_SCHEMA_INDEX ? "index" : "constraint");
  }
  rc = sl__meta_get_u64(w->txn, meta, "next_schema_id", &next);
  if (rc && rc != SL_ENOTFOUND) return fail(w, rc, "LMDB meta next_schema_id");
  if (next == 0 || next > UINT32_MAX) return fail(w, SL_EINVAL, "no index ids left");
  if ((rc = sl__meta_get_u64(w->txn, meta, "format_version", &version))) return fail(w, rc, "LMDB meta format_version");
  if ((rc = sl__meta_put_u64(w->txn, meta, "next_schema_id", next + 1)) ||
      (version < SL__FORMAT_VERSION && (rc = sl__meta_put_u64(w->txn, meta, "format_version", SL__FORMAT_VERSION))))
    return fail(w, rc, "LMDB meta");
  if ((rc = rule_put(w, r, (uint32_t)next))) return rc;
  sl__schema_free(w); /* the rules changed */
  sl__rule ru = {(uint32_t)next, *r};
  sl_arena scratch;
  sl_arena_init(&scratch, NULL);
  rctx c = {w->st, w->txn, &scratch};
  build b = {w, &c, &ru};
  rc = each_entity(&c, r->rel, r->token, build_entity, &b);
  sl_arena_free(&scratch);
  if (rc == SL_ECONSTRAINT) {
    size_t l = strlen(w->err);
    snprintf(w->err + l, sizeof w->err - l, ": the existing data violates the new constraint");
  }
  return rc;
}

int sl__schema_op_drop(sl__wctx *w, bool constraint, const char *name) {
  sl__schema *s;
  int rc;
  if (!name || sl__name_check(name) < 0) return fail(w, SL_EINVAL, "a schema name is 1..%d bytes of UTF-8", SL_NAME_MAX);
  if (!w->st->schema_dbs || (rc = sl__schema_get(w, &s))) return fail(w, SL_ENOTFOUND, "no %s named %s",
                                                                       constraint ? "constraint" : "index", name);
  const sl__rule *ru = NULL;
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->rules[i].r.name, name) && (s->rules[i].r.kind != SL_SCHEMA_INDEX) == constraint) ru = &s->rules[i];
  if (!ru) return fail(w, SL_ENOTFOUND, "no %s named %s", constraint ? "constraint" : "index", name);
  rctx c = {w->st, w->txn, NULL};
  MDB_val k = {strlen(name), (void *)name};
  if ((rc = mdb_del(w->txn, w->st->dbi[SL__DB_SCHEMA], &k, NULL)))
    return fail(w, mdb_error(&c, rc, SL__DB_SCHEMA), "schema %s: %s", name, mdb_strerror(rc));
  if (sl__rule_indexed(ru->r.kind)) {
    uint8_t prefix[4];
    MDB_cursor *cur;
    int mrc;
    prefix[0] = (uint8_t)(ru->id >> 24), prefix[1] = (uint8_t)(ru->id >> 16), prefix[2] = (uint8_t)(ru->id >> 8);
    prefix[3] = (uint8_t)ru->id;
    if ((rc = mdb_cursor_open(w->txn, w->st->dbi[SL__DB_INDEX], &cur))) return mdb_error(&c, rc, SL__DB_INDEX);
    MDB_val key = {4, prefix}, val;
    for (mrc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         mrc == 0 && key.mv_size >= 4 && !memcmp(key.mv_data, prefix, 4);
         mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
      if ((mrc = mdb_cursor_del(cur, 0))) break;
    mdb_cursor_close(cur);
    if (mrc && mrc != MDB_NOTFOUND) return fail(w, mdb_error(&c, mrc, SL__DB_INDEX), "index %s", name);
  }
  sl__schema_free(w);
  return 0;
}

/* ---- reads (sl_view_*) ----------------------------------------------------------------------- */
int sl_view_schema(sl_view *v, const sl_schema_rule **rules, size_t *n) {
  sl__rule *ru;
  sl_arena_reset(&v->scratch);
  rctx c = {v->st, v->txn, &v->scratch};
  *rules = NULL;
  int rc = rules_read(&c, &ru, n);
  if (rc || !*n) return rc;
  sl_schema_rule *out = sl_arena_alloc(&v->scratch, *n * sizeof *out);
  if (!out) return -ENOMEM;
  for (size_t i = 0; i < *n; i++) {
    out[i] = ru[i].r;
    out[i].id = ru[i].id;
  }
  *rules = out;
  return 0;
}

/* The indexed rule `name` of a view (SL_ENOTFOUND). A transaction's view
 * finds it among the rules its transaction holds decoded (sl__schema_get:
 * dropped when a schema op changes them), so that a MERGE of 10k rows does
 * not read and decode the rule 10k times. */
static int view_rule(sl_view *v, rctx *c, const char *name, sl__rule *out) {
  MDB_val d;
  if (!name || sl__name_check(name) < 0) return SL_EINVAL;
  MDB_val k = {strlen(name), (void *)name};
  if (!c->st->schema_dbs) return SL_ENOTFOUND;
  if (v->owned_by_tx) {
    sl_tx *tx = (sl_tx *)((char *)v - offsetof(sl_tx, view));
    sl__schema *s;
    int rc = sl__schema_get(&tx->w, &s);
    if (rc) return rc;
    for (size_t i = 0; i < s->n; i++)
      if (!strcmp(s->rules[i].r.name, name)) {
        *out = s->rules[i];
        return sl__rule_indexed(out->r.kind) ? 0 : SL_ENOTFOUND;
      }
    return SL_ENOTFOUND;
  }
  int rc = mdb_get(c->txn, c->st->dbi[SL__DB_SCHEMA], &k, &d);
  if (rc == MDB_NOTFOUND) return SL_ENOTFOUND;
  if (rc) return mdb_error(c, rc, SL__DB_SCHEMA);
  if ((rc = rule_decode(c->a, &k, &d, out))) {
    sl_diag_error("%s/data.mdb: LMDB schema: the rule %s is malformed", c->st->dir, name);
    return rc;
  }
  return sl__rule_indexed(out->r.kind) ? 0 : SL_ENOTFOUND;
}

typedef struct seek {
  rctx *c;
  const sl__rule *ru;
  const sl_value *vals;
  sl_id_fn fn;
  void *arg;
} seek;

static int seek_entry(void *arg, const MDB_val *k, uint64_t entity) {
  seek *s = arg;
  if (s->vals && sl__index_key_truncated(k->mv_size)) {
    sl_value theirs[SL_SCHEMA_KEYS_MAX];
    int all = entity_values(s->c, s->ru->r.rel, entity, &s->ru->r, theirs);
    if (all < 0) return all;
    if (!all || !same_keys(s->vals, theirs, s->ru->r.nkeys)) return 0;
  }
  return s->fn(s->arg, entity);
}

int sl_view_index_seek(sl_view *v, const char *name, const sl_value *values, size_t nvalues, sl_id_fn fn,
                       void *arg) {
  sl__rule ru;
  sl_arena_reset(&v->scratch);
  rctx c = {v->st, v->txn, &v->scratch};
  int rc = view_rule(v, &c, name, &ru);
  if (rc) return rc;
  if (nvalues != ru.r.nkeys || (nvalues && !values)) return SL_EINVAL;
  for (size_t i = 0; i < nvalues; i++)
    if (values[i].kind == SL_NULL || sl__value_check(&values[i], NULL, 0)) return values[i].kind == SL_NULL ? 0 : SL_EINVAL;
  sl__keybuf *b = sl_arena_alloc(&v->scratch, sizeof *b);
  if (!b) return -ENOMEM;
  rule_key(b, &ru, values, SL_ID_NEW);
  seek s = {&c, &ru, values, fn, arg};
  rc = each_entry(&c, b->buf, b->len, b->len, seek_entry, &s);
  return rc > 0 ? 0 : rc;
}

/* Where a bound's kind begins and ends among the index's keys: its tag, and
 * for numbers the classes before NaN. */
static void class_bounds(uint8_t tag, sl__keybuf *lo, sl__keybuf *hi) {
  lo->buf[lo->len++] = tag;
  hi->buf[hi->len++] = tag;
  if (tag == SL__TAG_NUMBER) {
    lo->buf[lo->len++] = 0x01;
    hi->buf[hi->len++] = 0x04;
  } else {
    hi->buf[hi->len - 1]++;
  }
}

typedef struct range {
  seek s;
  const uint8_t *skip; /* an exclusive lower bound: entries starting with it are skipped */
  size_t skip_n;
  const uint8_t *hi;
  size_t hi_n;
  bool hi_incl;
} range;

static int range_entry(void *arg, const MDB_val *k, uint64_t entity) {
  range *r = arg;
  if (r->skip && k->mv_size >= r->skip_n + 8 && !memcmp(k->mv_data, r->skip, r->skip_n)) return 0;
  int cmp = memcmp(k->mv_data, r->hi, SL_MIN(k->mv_size, r->hi_n));
  if (cmp > 0 || (cmp == 0 && !r->hi_incl)) return 1; /* past the end */
  return seek_entry(&r->s, k, entity);
}

int sl_view_index_range(sl_view *v, const char *name, const sl_value *lo, bool lo_incl, const sl_value *hi,
                        bool hi_incl, sl_id_fn fn, void *arg) {
  sl__rule ru;
  sl_arena_reset(&v->scratch);
  rctx c = {v->st, v->txn, &v->scratch};
  int rc = view_rule(v, &c, name, &ru);
  if (rc) return rc;
  if ((!lo && !hi) || (lo && sl__value_check(lo, NULL, 0)) || (hi && sl__value_check(hi, NULL, 0))) return SL_EINVAL;
  if ((lo && lo->kind == SL_DOUBLE && lo->u.d != lo->u.d) || (hi && hi->kind == SL_DOUBLE && hi->u.d != hi->u.d))
    return 0; /* nothing compares with NaN */
  sl__keybuf *from = sl_arena_alloc(&v->scratch, sizeof *from), *to = sl_arena_alloc(&v->scratch, sizeof *to),
             *cls_lo = sl_arena_alloc(&v->scratch, sizeof *cls_lo), *cls_hi = sl_arena_alloc(&v->scratch, sizeof *cls_hi);
  if (!from || !to || !cls_lo || !cls_hi) return -ENOMEM;
  sl__keybuf *bound[2] = {from, to};
  const sl_value *val[2] = {lo, hi};
  uint8_t tag[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    if (!val[i]) continue;
    sl__index_key_begin(bound[i], ru.id);
    sl__index_key_value(bound[i], val[i]);
    sl__index_key_finish(bound[i]);
    tag[i] = bound[i]->buf[4];
  }
  if (lo && hi && tag[0] != tag[1]) return SL_EINVAL;
  sl__index_key_begin(cls_lo, ru.id);
  sl__index_key_begin(cls_hi, ru.id);
  class_bounds(tag[lo ? 0 : 1], cls_lo, cls_hi);
  range r = {{&c, &ru, NULL, fn, arg}, NULL, 0, NULL, 0, false};
  const sl__keybuf *start = lo ? from : cls_lo;
  if (lo && !lo_incl) r.skip = from->buf, r.skip_n = from->len;
  r.hi = hi ? to->buf : cls_hi->buf;
  r.hi_n = hi ? to->len : cls_hi->len;
  r.hi_incl = hi ? hi_incl : false;
  rc = each_entry(&c, start->buf, start->len, 4, range_entry, &r);
  return rc == 1 ? 0 : rc; /* 1: past the end */
}

/* ---- verify ------------------------------------------------------------------------------ */
/* Keys, back to back as len(2) bytes, and their count. */
typedef struct keyset {
  uint8_t *buf;
  size_t len, cap, n;
  rctx *c;
  const sl__rule *ru;
} keyset;

static int keyset_add(keyset *ks, const void *k, size_t n) {
  if (ks->len + 2 + n > ks->cap) {
    size_t cap = SL_MAX(ks->cap * 2, ks->len + 2 + n + 4096);
    uint8_t *b = realloc(ks->buf, cap);
    if (!b) return -ENOMEM;
    ks->buf = b;
    ks->cap = cap;
  }
  ks->buf[ks->len] = (uint8_t)(n >> 8);
  ks->buf[ks->len + 1] = (uint8_t)n;
  memcpy(ks->buf + ks->len + 2, k, n);
  ks->len += 2 + n;
  ks->n++;
  return 0;
}

static int expect_entity(void *arg, uint64_t id) {
  keyset *ks = arg;
  sl_value vals[SL_SCHEMA_KEYS_MAX];
  static __thread sl__keybuf b;
  sl_arena_reset(ks->c->a);
  int all = entity_values(ks->c, ks->ru->r.rel, id, &ks->ru->r, vals);
  if (all <= 0) return all;
  rule_key(&b, ks->ru, vals, id);
  return keyset_add(ks, b.buf, b.len);
}

static int actual_entry(void *arg, const MDB_val *k, uint64_t entity) {
  (void)entity;
  return keyset_add(arg, k->mv_data, k->mv_size);
}

static int key_cmp(const void *a, const void *b) {
  const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
  size_t xn = (size_t)x[0] << 8 | x[1], yn = (size_t)y[0] << 8 | y[1];
  int c = memcmp(x + 2, y + 2, SL_MIN(xn, yn));
  return c ? c : (xn > yn) - (xn < yn);
}

/* The keys of ks as a sorted array of pointers (malloc'd). */
static const uint8_t **keyset_sorted(const keyset *ks) {
  const uint8_t **v = malloc((ks->n ? ks->n : 1) * sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0, off = 0; i < ks->n; i++) {
    v[i] = ks->buf + off;
    off += 2 + ((size_t)ks->buf[off] << 8 | ks->buf[off + 1]);
  }
  qsort(v, ks->n, sizeof *v, key_cmp);
  return v;
}

static uint64_t key_entity(const uint8_t *k) {
  size_t n = (size_t)k[0] << 8 | k[1];
  return sl_get_be64(k + 2 + n - 8);
}

/* Compare one index with what the data implies. */
static int verify_index(rctx *c, const sl__rule *ru, char *why, size_t wn, size_t *entries) {
  keyset want = {.c = c, .ru = ru}, have = {.c = c, .ru = ru};
  const uint8_t **w = NULL, **h = NULL;
  uint8_t prefix[4] = {(uint8_t)(ru->id >> 24), (uint8_t)(ru->id >> 16), (uint8_t)(ru->id >> 8), (uint8_t)ru->id};
  int rc = each_entity(c, ru->r.rel, ru->r.token, expect_entity, &want);
  if (!rc) rc = each_entry(c, prefix, 4, 4, actual_entry, &have);
  if (rc) goto out;
  *entries += have.n;
  if (!(w = keyset_sorted(&want)) || !(h = keyset_sorted(&have))) {
    rc = -ENOMEM;
    goto out;
  }
  const char *what = ru->r.rel ? "relationship" : "node";
  for (size_t i = 0, j = 0; i < want.n || j < have.n;) {
    int cmp = i == want.n ? 1 : j == have.n ? -1 : key_cmp(&w[i], &h[j]);
    if (cmp < 0) {
      snprintf(why, wn, "index %s lacks the entry of %s %" PRIu64, ru->r.name, what, key_entity(w[i]));
      rc = SL_ECORRUPT;
      break;
    }
    if (cmp > 0) {
      snprintf(why, wn, "index %s holds an entry for %s %" PRIu64 " that its data does not imply", ru->r.name, what,
               key_entity(h[j]));
      rc = SL_ECORRUPT;
      break;
    }
    i++, j++;
  }
out:
  free(w);
  free(h);
  free(want.buf);
  free(have.buf);
  return rc;
}

typedef struct cverify {
  sl__wctx *w;
  rctx *c;
  const sl__rule *ru;
} cverify;

static int verify_entity(void *arg, uint64_t id) {
  cverify *cv = arg;
  sl_arena_reset(cv->c->a);
  return check_entity(cv->w, cv->c, cv->ru, id);
}

int sl_store_schema_verify(sl_view *v, char *why, size_t wn) {
  sl__rule *rules;
  size_t n, entries = 0;
  sl_arena rules_a, vals_a;
  sl__wctx w = {.st = v->st, .txn = v->txn};
  MDB_stat ms;
  sl_arena_init(&rules_a, NULL);
  sl_arena_init(&vals_a, NULL);
  rctx rc_rules = {v->st, v->txn, &rules_a}, c = {v->st, v->txn, &vals_a};
  int rc = rules_read(&rc_rules, &rules, &n);
  why[0] = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    const sl__rule *ru = &rules[i];
    if (sl__rule_indexed(ru->r.kind) && (rc = verify_index(&c, ru, why, wn, &entries))) break;
    if (ru->r.kind == SL_SCHEMA_INDEX) continue;
    cverify cv = {&w, &c, ru};
    if ((rc = each_entity(&c, ru->r.rel, ru->r.token, verify_entity, &cv)) == SL_ECONSTRAINT)
      snprintf(why, wn, "%s", w.err);
  }
  if (!rc && v->st->schema_dbs && mdb_stat(v->txn, v->st->dbi[SL__DB_INDEX], &ms) == 0 && ms.ms_entries != entries) {
    snprintf(why, wn, "the index database holds %zu entries, its %zu indexes %zu", (size_t)ms.ms_entries, n, entries);
    rc = SL_ECORRUPT;
  }
  if (rc && !why[0]) snprintf(why, wn, "cannot read the schema: %s", sl_strerror(rc));
  sl_arena_free(&rules_a);
  sl_arena_free(&vals_a);
  return rc;
}
