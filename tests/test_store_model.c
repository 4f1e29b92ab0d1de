/*
 * Tests of the graph store (store/store.h): a randomized comparison against
 * an in-memory model of nodes, relationships, labels and properties, with
 * refused and aborted transactions, a reopen, and a replay of the log into
 * a second store that must match entity by entity. SL_SEED=N replays a run.
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
  case SL_BYTES: {
    size_t n = r % 40;
    uint8_t *b = pool_alloc(n);
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)tu_rand(rng);
    v->u.bytes = b;
    v->len = n;
    break;
  }
  case SL_DURATION: {
    static const int64_t I[] = {0, 1, -1, INT64_MIN, INT64_MAX, 86400};
    v->u.dur.months = I[r % 6];
    v->u.dur.days = I[(r >> 4) % 6];
    v->u.dur.seconds = (r >> 8) % 2 ? I[(r >> 12) % 6] : (int64_t)tu_rand(rng);
    v->u.dur.nanos = (int32_t)((r >> 16) % 1000000000);
    if (v->u.dur.seconds < 0) v->u.dur.nanos = -v->u.dur.nanos;
    break;
  }
  case SL_POINT: {
    static const uint32_t SRID[] = {SL_SRID_CARTESIAN, SL_SRID_CARTESIAN_3D, SL_SRID_WGS84, SL_SRID_WGS84_3D};
    const double D[] = {0.0, -0.0, 1.5, -180, 90, 8848.86, -2.25e300, 5e-324};
    v->u.pt.srid = SRID[r % 4];
    v->u.pt.x = D[(r >> 4) % 8];
    v->u.pt.y = (double)(int64_t)tu_rand(rng) / 1e6;
    if (v->u.pt.srid == SL_SRID_CARTESIAN_3D || v->u.pt.srid == SL_SRID_WGS84_3D) v->u.pt.z = D[(r >> 8) % 8];
    break;
  }
  default: { /* SL_DATE .. SL_DATETIME: extremes and any value within range */
    static const char *const Z[] = {"Europe/Paris", "UTC", "America/Argentina/ComodRivadavia", "Etc/GMT+5"};
    const int64_t day_min = INT64_C(-365243219163), day_max = INT64_C(365241780471), day = 86400;
    const int64_t lo = k == SL_DATE ? day_min : k == SL_LOCALTIME || k == SL_TIME ? 0 : day_min * day + 64800;
    const int64_t hi = k == SL_DATE ? day_max : k == SL_LOCALTIME || k == SL_TIME ? day - 1 : day_max * day - 64800;
    int64_t pick[] = {lo, hi, 0, (int64_t)tu_rand_below(rng, (uint64_t)(hi - lo) + 1) + lo};
    v->u.t.seconds = pick[r % 4];
    if (k != SL_DATE) v->u.t.nanos = (r >> 8) % 2 ? 999999999 : (int32_t)((r >> 12) % 1000000000);
    if (k == SL_TIME || k == SL_DATETIME) v->u.t.offset = (int32_t)((r >> 20) % (2 * SL_OFFSET_MAX + 1)) - SL_OFFSET_MAX;
    if (k == SL_DATETIME && (r >> 40) % 2) v->u.t.zone = Z[(r >> 41) % 4];
    break;
  }
  }
}

/* The kinds gen_value draws (SL_LIST last) and those of list elements. */
static const sl_kind KINDS[] = {SL_BOOL, SL_INT, SL_DOUBLE, SL_STRING, SL_BYTES, SL_DATE, SL_LOCALTIME, SL_TIME,
                                SL_LOCALDATETIME, SL_DATETIME, SL_DURATION, SL_POINT, SL_LIST};

/* A value; with `bad_ok` sometimes one the store must refuse (*bad). */
static const sl_value *gen_value(uint64_t *rng, bool bad_ok, bool *bad) {
  sl_value *v = pool_alloc(sizeof *v);
  *bad = false;
  if (bad_ok && tu_rand_below(rng, 100) == 0) {
    *bad = true;
    switch (tu_rand_below(rng, 8)) {
    case 0: *v = (sl_value){.kind = SL_STRING, .len = 3, .u.s = "a\0b"}; break;
    case 4: *v = (sl_value){.kind = SL_DATE, .u.t.seconds = INT64_C(365241780472)}; break;
    case 5: *v = (sl_value){.kind = SL_DATETIME, .u.t.zone = "Europe/../Paris"}; break;
    case 6: *v = (sl_value){.kind = SL_POINT, .u.pt = {.srid = SL_SRID_WGS84, .z = 1}}; break;
    case 7: *v = (sl_value){.kind = SL_DURATION, .u.dur = {.seconds = 1, .nanos = -1}}; break;
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
  sl_kind k = KINDS[tu_rand_below(rng, SL_ARRAY_LEN(KINDS))];
  if (k != SL_LIST) {
    gen_scalar(rng, k, v);
    return v;
  }
  size_t n = tu_rand_below(rng, 4) == 0 ? 0 : tu_rand_below(rng, 6);
  sl_kind ek = n == 0 && tu_rand_below(rng, 2) ? SL_NULL : KINDS[tu_rand_below(rng, SL_ARRAY_LEN(KINDS) - 1)];
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


int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(store_randomized_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
