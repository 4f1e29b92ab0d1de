/*
 * The pattern matcher: a resumable backtracking enumerator over the levels
 * of a MATCH pattern. Each comma-separated path becomes a start level (a
 * node source: a bound variable, a label scan or all nodes) followed by one
 * expand level per relationship (its candidates are the node's
 * relationships of the wanted direction and types, collected at once), or a
 * variable-length level (every trail of min..max hops, collected at once,
 * bounded by max_hops and the memory limit). qmatch_next binds one match
 * into q->row and returns; the next call resumes at the deepest level.
 *
 * A path is walked from the end that is cheaper to start from: a bound
 * node first, then a labelled one (choose_start). choose_source() picks
 * where a start node comes from: its variable, an index seek (a label and
 * a property map that an index covers: schema.c's q_schema_seek_plan), a
 * label scan (batched, resumable: sl_view_scan_ids) or all nodes. An
 * exact equality seek's candidates are not compared again on the values
 * sought (q_schema_seek_ids says when the index's equality is Cypher's).
 *
 * Relationship uniqueness (Cypher's relationship isomorphism): every
 * relationship bound in one MATCH is distinct.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"
#include "store.h"

enum { LV_START, LV_EXPAND, LV_VARLEN };
enum { SRC_BOUND, SRC_ID, SRC_LABEL, SRC_ALL, SRC_INDEX };

#define SCAN_BATCH 256

typedef struct cand {
  uint64_t rel, start, end, other;
  const char *type;
} cand;

typedef struct trail {
  size_t off, len; /* in lv->trail_rels */
  uint64_t end;
} trail;

typedef struct level {
  int kind;
  qnodepat *node;   /* the node this level binds */
  bool node_bound;  /* bound before this level: check, do not bind */
  qrelpat *rel;     /* LV_EXPAND, LV_VARLEN */
  bool rel_bound;
  int dir;          /* walking direction (flipped when the path is walked backwards) */
  int from_slot;    /* the node expanded from */
  int shortest;     /* LV_VARLEN of shortestPath (1) / allShortestPaths (2) */
  int src;
  const char *label;
  q_seek seek;      /* SRC_INDEX */
  bool seeking;     /* SRC_INDEX with values the index can seek (else: the label scan) */
  bool exact;       /* seeking, and the candidates equal the sought values by `=` */
  uint64_t *sids;
  qexpr *id_seek;   /* SRC_ID: the id the node must have (qmatch_seek) */
  sl_arena arena;
  /* LV_START */
  uint64_t ids[SCAN_BATCH];
  size_t nids, pos;
  uint64_t next_from;
  bool scan_end;
  /* LV_EXPAND */
  cand *cands;
  size_t ncands, ccap;
  /* LV_VARLEN */
  cand *trail_rels;
  size_t ntr, trcap;
  trail *trails;
  size_t ntrails, tcap;
  int prev_rel_levels; /* levels before this one (for uniqueness): its own index */
  bool reversed;       /* walked from the pattern's right end: a trail is in reverse pattern order */
} level;

struct qmatch {
  qpattern *pat;
  level *lv;
  int nlv;
  int cur;
  bool started;
  sl_arena_budget *mem;
};

/* ---- planning ---------------------------------------------------------------------------- */
static bool slot_in(const int *set, int n, int slot) {
  for (int i = 0; i < n; i++)
    if (set[i] == slot) return true;
  return false;
}

/* Which end of the path to walk from: a bound node, then a labelled one. */
static bool choose_reverse(const qpath *p, const int *bound, int nb) {
  const qnodepat *first = &p->nodes[0], *last = &p->nodes[p->nrels];
  if (slot_in(bound, nb, first->slot)) return false;
  if (slot_in(bound, nb, last->slot)) return true;
  if (first->nlabels || first->props) return false;
  if (last->nlabels) return true;
  return false;
}

/* The node source of a start level: its variable, an index covering its
 * label and property map, its label, or every node; qmatch_seek then
 * prefers `id(n) = expr` (SRC_ID). */
static void choose_source(qctx *q, level *lv, const qexpr *where, const int *bound, int nb, sl_arena *a) {
  if (lv->node_bound) lv->src = SRC_BOUND;
  else if (lv->node->nlabels) {
    lv->src = q_schema_seek_plan(q, lv->node, where, bound, nb, a, &lv->seek) ? SRC_INDEX : SRC_LABEL;
    lv->label = lv->node->labels[0];
  } else {
    lv->src = SRC_ALL;
  }
}

int qmatch_new(qctx *q, qpattern *pat, sl_arena *a, qmatch **out) {
  qmatch *m = sl_arena_zalloc(a, sizeof *m);
  int nlv = 0;
  for (int i = 0; i < pat->npaths; i++) nlv += 1 + pat->paths[i].nrels;
  if (!m || !(m->lv = sl_arena_zalloc(a, sizeof *m->lv * (size_t)nlv))) return qerr_oom(q);
  m->pat = pat;
  m->mem = &q->mem;
  /* bound before the clause: the first mention of a slot says */
  int *bound = sl_arena_alloc(a, sizeof(int) * (size_t)(nlv * 2 + 1)), nb = 0;
  int *seen = sl_arena_alloc(a, sizeof(int) * (size_t)(nlv * 2 + 1)), ns = 0, nb_before;
  if (!bound || !seen) return qerr_oom(q);
  for (int i = 0; i < pat->npaths; i++) {
    qpath *p = &pat->paths[i];
    for (int j = 0; j <= p->nrels; j++) {
      if (!slot_in(seen, ns, p->nodes[j].slot)) {
        seen[ns++] = p->nodes[j].slot;
        if (p->nodes[j].bound) bound[nb++] = p->nodes[j].slot;
      }
      if (j < p->nrels && !slot_in(seen, ns, p->rels[j].slot)) {
        seen[ns++] = p->rels[j].slot;
        if (p->rels[j].bound) bound[nb++] = p->rels[j].slot;
      }
    }
  }
  int k = 0;
  nb_before = nb; /* bound before the clause: what a seek's values may read */
  for (int i = 0; i < pat->npaths; i++) {
    qpath *p = &pat->paths[i];
    bool rev = p->shortest ? false : choose_reverse(p, bound, nb);
    for (int j = 0; j <= p->nrels; j++) {
      int ni = rev ? p->nrels - j : j;
      level *lv = &m->lv[k++];
      sl_arena_init(&lv->arena, &q->mem);
      lv->node = &p->nodes[ni];
      lv->node_bound = slot_in(bound, nb, lv->node->slot);
      if (j == 0) {
        lv->kind = LV_START;
        choose_source(q, lv, pat->seek_where, bound, nb_before, a);
      } else {
        int ri = rev ? ni : ni - 1;
        lv->rel = &p->rels[ri];
        lv->rel_bound = slot_in(bound, nb, lv->rel->slot);
        lv->kind = lv->rel->varlen || p->shortest ? LV_VARLEN : LV_EXPAND;
        lv->shortest = p->shortest;
        int d = lv->rel->dir;
        if (rev && d != SL_DIR_BOTH) d = d == SL_DIR_OUT ? SL_DIR_IN : SL_DIR_OUT;
        lv->dir = d;
        lv->reversed = rev;
        lv->from_slot = m->lv[k - 2].node->slot;
        if (!lv->rel_bound) bound[nb++] = lv->rel->slot;
      }
      lv->prev_rel_levels = k - 1;
      if (!lv->node_bound) bound[nb++] = lv->node->slot;
    }
  }
  m->nlv = nlv;
  *out = m;
  return 0;
}

/* Does e read any of the slots the pattern binds (so it cannot be known
 * before the match starts)? */
static bool reads_pattern(const qexpr *e, const qpattern *pat) {
  if (!e) return false;
  if (e->op == E_VAR) {
    for (int i = 0; i < pat->npaths; i++) {
      const qpath *p = &pat->paths[i];
      if (p->slot == e->slot) return true;
      for (int j = 0; j <= p->nrels; j++)
        if ((!p->nodes[j].bound && p->nodes[j].slot == e->slot) || (j < p->nrels && !p->rels[j].bound && p->rels[j].slot == e->slot))
          return true;
    }
    return false;
  }
  if (e->op == E_PATTERN || e->op == E_PATCOMP || e->op == E_AGG || e->op == E_COUNTSTAR) return true;
  if (reads_pattern(e->a, pat) || reads_pattern(e->b, pat) || reads_pattern(e->c, pat)) return true;
  for (int i = 0; i < e->nargs; i++)
    if (reads_pattern(e->args[i], pat)) return true;
  return false;
}

static bool is_id_of(const qexpr *e, int slot) {
  return e->op == E_FUNC && !strcasecmp(e->name, "id") && e->nargs == 1 && e->args[0]->op == E_VAR && e->args[0]->slot == slot;
}

void qmatch_seek(qmatch *m, qexpr *where) {
  if (!where) return;
  if (where->op == E_AND) {
    qmatch_seek(m, where->a);
    qmatch_seek(m, where->b);
    return;
  }
  if (where->op != E_EQ) return;
  for (int i = 0; i < m->nlv; i++) {
    level *lv = &m->lv[i];
    if (lv->kind != LV_START || lv->node_bound || lv->id_seek) continue;
    qexpr *other = is_id_of(where->a, lv->node->slot) ? where->b : is_id_of(where->b, lv->node->slot) ? where->a : NULL;
    if (!other || reads_pattern(other, m->pat)) continue;
    lv->id_seek = other;
    lv->src = SRC_ID; /* one node at most: better than any scan or index */
  }
}

size_t qmatch_describe(const qmatch *m, char *buf, size_t len) {
  size_t n = 0;
#define PUT(...) (n < len ? n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__) : 0)
  for (int i = m->nlv; i-- > 0;) { /* from the last level down to the source */
    const level *lv = &m->lv[i];
    if (lv->kind == LV_EXPAND) PUT("Expand(All)");
    else if (lv->kind == LV_VARLEN) PUT("%s", lv->shortest ? "ShortestPath" : "VarLengthExpand(All)");
    else if (lv->src == SRC_ID) PUT("NodeByIdSeek");
    else if (lv->src == SRC_INDEX) /* as planned: a row whose values an index cannot seek scans the label */
      PUT("%s(:%s, %s)", lv->seek.range ? "NodeIndexSeekByRange" : "NodeIndexSeek", lv->node->labels[lv->seek.label],
          lv->seek.index);
    else if (lv->src == SRC_LABEL) PUT("NodeByLabelScan(:%s)", lv->label);
    else if (lv->src == SRC_ALL) PUT("AllNodesScan");
    else PUT("Argument");
    if (i) PUT(" <- ");
  }
#undef PUT
  return n < len ? n : len;
}

void qmatch_free(qmatch *m) {
  if (!m) return;
  for (int i = 0; i < m->nlv; i++) sl_arena_free(&m->lv[i].arena);
}

int qmatch_reset(qctx *q, qmatch *m) {
  (void)q;
  m->started = false;
  return 0;
}

/* ---- checks ------------------------------------------------------------------------------- */
/* The property map of an exact seek's node, but for the values sought
 * (its candidates equal them). A key given twice: the map keeps the last
 * value, and so does the seek. */
static int check_unsought_props(qctx *q, const level *lv, const qv *ent, bool *ok) {
  const qexpr *m = lv->node->props;
  *ok = true;
  for (int i = 0; i < m->nargs; i++) { /* every other value evaluated, as the whole map would be */
    bool sought = false, shadowed = false;
    for (int k = 0; k < lv->seek.nkeys; k++) sought |= lv->seek.vals[k] == m->args[i];
    if (sought) continue;
    for (int j = i + 1; j < m->nargs; j++) shadowed |= !strcmp(m->keys[j], m->keys[i]);
    qv want, have;
    int rc = q_eval(q, m->args[i], &want);
    if (rc) return rc;
    if (shadowed || !*ok) continue;
    if ((rc = q_prop(q, ent, m->keys[i], &have))) return rc;
    *ok = qv_equal(&have, &want) == 1;
  }
  return 0;
}

static int check_props(qctx *q, qexpr *props, const qv *ent, bool *ok) {
  *ok = true;
  if (!props) return 0;
  qv m;
  int rc = q_eval(q, props, &m);
  if (rc) return rc;
  if (m.kind == SL_NULL) return 0;
  if (m.kind != SL_QMAP) return qerr(q, SL_EINVAL, ST_TYPE, props->line, props->col, "Type mismatch: expected a map but was %s", qv_type_name(&m));
  for (size_t i = 0; i < m.u.map.n && *ok; i++) {
    qv v;
    if ((rc = q_prop(q, ent, m.u.map.entries[i].key, &v))) return rc;
    *ok = qv_equal(&v, &m.u.map.entries[i].value) == 1;
  }
  return 0;
}

static int check_node(qctx *q, level *lv, uint64_t id, bool *ok) {
  qnodepat *n = lv->node;
  *ok = true;
  if (lv->node_bound) {
    const qv *b = &q->row[n->slot];
    if (b->kind != SL_QNODE || b->u.node.id != id) {
      *ok = false;
      return 0;
    }
  }
  /* the label the candidates came from needs no check: a scan's, an index's */
  int known = lv->kind != LV_START ? -1 : lv->src == SRC_LABEL || (lv->src == SRC_INDEX && !lv->seeking) ? 0
              : lv->src == SRC_INDEX ? lv->seek.label : -1;
  for (int i = 0; i < n->nlabels && *ok; i++) {
    if (i == known) continue;
    int rc = sl_view_node_has_label(q->view, id, n->labels[i], ok);
    if (rc) return qerr_store(q, rc, n->line, n->col);
  }
  if (!*ok || !n->props) return 0;
  qv node = qv_node(id);
  if (lv->kind == LV_START && lv->src == SRC_INDEX && lv->exact && n->props->op == E_MAP)
    return check_unsought_props(q, lv, &node, ok);
  return check_props(q, n->props, &node, ok);
}

static bool rel_used(qctx *q, qmatch *m, int upto, uint64_t rel) {
  for (int i = 1; i < upto; i++) {
    level *lv = &m->lv[i];
    if (lv->kind == LV_START) continue;
    const qv *v = &q->row[lv->rel->slot];
    if (v->kind == SL_QREL && v->u.rel.id == rel) return true;
    if (v->kind == SL_QLIST)
      for (size_t j = 0; j < v->u.list.n; j++)
        if (v->u.list.items[j].u.rel.id == rel) return true;
  }
  return false;
}

/* ---- candidates ------------------------------------------------------------------------- */
typedef struct collect {
  level *lv;
  qctx *q;
  uint64_t from;
  cand **arr;
  size_t *n, *cap;
  int rc;
} collect;

static int collect_rel(void *arg, uint64_t rel, const char *type, uint64_t start, uint64_t end) {
  collect *c = arg;
  if (*c->n == *c->cap) {
    size_t cap = *c->cap ? *c->cap * 2 : 16;
    cand *nc = sl_arena_alloc(&c->lv->arena, sizeof *nc * cap);
    if (!nc) return -ENOMEM;
    if (*c->n) memcpy(nc, *c->arr, sizeof *nc * *c->n);
    *c->arr = nc;
    *c->cap = cap;
  }
  cand *x = &(*c->arr)[(*c->n)++];
  x->rel = rel;
  x->start = start;
  x->end = end;
  x->other = start == c->from ? end : start;
  x->type = type; /* fixed below: the walk's buffer is temporary */
  size_t tl = strlen(type);
  char *t = sl_arena_strndup(&c->lv->arena, type, tl);
  if (!t) return -ENOMEM;
  x->type = t;
  return 0;
}

/* The relationships of node `from` that lv's pattern allows, appended. */
static int node_rels(qctx *q, level *lv, uint64_t from, cand **arr, size_t *n, size_t *cap) {
  collect c = {lv, q, from, arr, n, cap, 0};
  qrelpat *r = lv->rel;
  int rc;
  if (!r->ntypes) {
    rc = sl_view_node_rels(q->view, from, (sl_dir)lv->dir, NULL, collect_rel, &c);
  } else {
    rc = 0;
    for (int i = 0; i < r->ntypes && !rc; i++) {
      bool dup = false;
      for (int j = 0; j < i; j++) dup |= !strcmp(r->types[i], r->types[j]);
      if (!dup) rc = sl_view_node_rels(q->view, from, (sl_dir)lv->dir, r->types[i], collect_rel, &c);
    }
  }
  if (rc == SL_ENOTFOUND) return 0; /* deleted */
  if (rc == -ENOMEM) return qerr_oom(q);
  return rc ? qerr_store(q, rc, r->line, r->col) : 0;
}

static int rel_props_ok(qctx *q, level *lv, const cand *c, bool *ok) {
  *ok = true;
  if (!lv->rel->props) return 0;
  qv r = qv_rel(c->rel, c->start, c->end, c->type);
  return check_props(q, lv->rel->props, &r, ok);
}

static int push_trail(qctx *q, level *lv, const cand *path, size_t len, uint64_t end) {
  if (lv->ntrails == lv->tcap) {
    size_t cap = lv->tcap ? lv->tcap * 2 : 16;
    trail *nt = sl_arena_alloc(&lv->arena, sizeof *nt * cap);
    if (!nt) return qerr_oom(q);
    if (lv->ntrails) memcpy(nt, lv->trails, sizeof *nt * lv->ntrails);
    lv->trails = nt;
    lv->tcap = cap;
  }
  if (lv->ntr + len > lv->trcap) {
    size_t cap = lv->trcap ? lv->trcap * 2 : 64;
    while (cap < lv->ntr + len) cap *= 2;
    cand *nr = sl_arena_alloc(&lv->arena, sizeof *nr * cap);
    if (!nr) return qerr_oom(q);
    if (lv->ntr) memcpy(nr, lv->trail_rels, sizeof *nr * lv->ntr);
    lv->trail_rels = nr;
    lv->trcap = cap;
  }
  trail *t = &lv->trails[lv->ntrails++];
  t->off = lv->ntr;
  t->len = len;
  t->end = end;
  if (len) memcpy(lv->trail_rels + lv->ntr, path, sizeof *path * len);
  lv->ntr += len;
  return 0;
}

/* Depth-first: every trail from `node` of depth..max hops. */
static int dfs(qctx *q, qmatch *m, level *lv, uint64_t node, cand *path, size_t depth, uint32_t min, uint32_t max,
               int64_t target) {
  int rc;
  if ((rc = qtick(q))) return rc;
  if (depth >= min && (target < 0 || (uint64_t)target == node))
    if ((rc = push_trail(q, lv, path, depth, node))) return rc;
  if (depth == max) return 0;
  cand *cs = NULL;
  size_t n = 0, cap = 0;
  if ((rc = node_rels(q, lv, node, &cs, &n, &cap))) return rc;
  for (size_t i = 0; i < n; i++) {
    bool dup = rel_used(q, m, lv->prev_rel_levels, cs[i].rel), ok;
    for (size_t j = 0; j < depth && !dup; j++) dup = path[j].rel == cs[i].rel;
    if (dup) continue;
    if ((rc = rel_props_ok(q, lv, &cs[i], &ok))) return rc;
    if (!ok) continue;
    path[depth] = cs[i];
    if ((rc = dfs(q, m, lv, cs[i].other, path, depth + 1, min, max, target))) return rc;
  }
  return 0;
}

/* Hops of the shortest path from `from` to `to` (breadth first), or -1. */
static int bfs_len(qctx *q, level *lv, uint64_t from, uint64_t to, uint32_t max, int *len) {
  *len = -1;
  if (from == to) {
    *len = 0;
    return 0;
  }
  sl_arena a;
  sl_arena_init(&a, &q->mem);
  size_t cap = 1024, n = 1, head = 0, lvl_end = 1;
  uint64_t *queue = sl_arena_alloc(&a, sizeof *queue * cap);
  int rc = 0;
  if (!queue) {
    rc = qerr_oom(q);
    goto out;
  }
  queue[0] = from;
  /* visited: a simple open-addressing set */
  size_t vcap = 4096, vn = 0;
  uint64_t *vis = sl_arena_alloc(&a, sizeof *vis * vcap);
  if (!vis) {
    rc = qerr_oom(q);
    goto out;
  }
  memset(vis, 0xff, sizeof *vis * vcap);
  vis[(from * 0x9e3779b97f4a7c15ull) & (vcap - 1)] = from;
  vn = 1;
  for (uint32_t depth = 1; depth <= max && head < n; depth++) {
    lvl_end = n;
    for (; head < lvl_end; head++) {
      cand *cs = NULL;
      size_t nc = 0, cc = 0;
      if ((rc = node_rels(q, lv, queue[head], &cs, &nc, &cc))) goto out;
      for (size_t i = 0; i < nc; i++) {
        uint64_t o = cs[i].other;
        if (o == to) {
          *len = (int)depth;
          goto out;
        }
        size_t h = (o * 0x9e3779b97f4a7c15ull) & (vcap - 1);
        while (vis[h] != UINT64_MAX && vis[h] != o) h = (h + 1) & (vcap - 1);
        if (vis[h] == o) continue;
        if (vn * 2 >= vcap) {
          /* grow the set */
          size_t ncap = vcap * 2;
          uint64_t *nv = sl_arena_alloc(&a, sizeof *nv * ncap);
          if (!nv) {
            rc = qerr_oom(q);
            goto out;
          }
          memset(nv, 0xff, sizeof *nv * ncap);
          for (size_t j = 0; j < vcap; j++)
            if (vis[j] != UINT64_MAX) {
              size_t g = (vis[j] * 0x9e3779b97f4a7c15ull) & (ncap - 1);
              while (nv[g] != UINT64_MAX) g = (g + 1) & (ncap - 1);
              nv[g] = vis[j];
            }
          vis = nv;
          vcap = ncap;
          h = (o * 0x9e3779b97f4a7c15ull) & (vcap - 1);
          while (vis[h] != UINT64_MAX) h = (h + 1) & (vcap - 1);
        }
        vis[h] = o;
        vn++;
        if (n == cap) {
          uint64_t *nq = sl_arena_alloc(&a, sizeof *nq * cap * 2);
          if (!nq) {
            rc = qerr_oom(q);
            goto out;
          }
          memcpy(nq, queue, sizeof *nq * n);
          queue = nq;
          cap *= 2;
        }
        queue[n++] = o;
      }
      sl_arena_reset(&lv->arena);
    }
  }
out:
  sl_arena_free(&a);
  return rc;
}

static int init_level(qctx *q, qmatch *m, int i) {
  level *lv = &m->lv[i];
  sl_arena_reset(&lv->arena);
  lv->pos = 0;
  if (lv->kind == LV_START) {
    lv->nids = 0;
    lv->next_from = 0;
    lv->scan_end = false;
    if (lv->src == SRC_BOUND) {
      const qv *b = &q->row[lv->node->slot];
      if (b->kind == SL_QNODE) lv->ids[lv->nids++] = b->u.node.id;
      else if (b->kind != SL_NULL)
        return qerr(q, SL_EINVAL, ST_TYPE, lv->node->line, lv->node->col, "Type mismatch: expected Node but was %s", qv_type_name(b));
      lv->scan_end = true;
    } else if (lv->src == SRC_INDEX) {
      int rc = q_schema_seek_ids(q, &lv->seek, &lv->arena, &lv->sids, &lv->nids, &lv->exact);
      if (rc < 0) return rc;
      lv->seeking = rc == 1;
      lv->scan_end = lv->seeking;
    } else if (lv->src == SRC_ID) {
      qv id;
      int rc = q_eval(q, lv->id_seek, &id);
      if (rc) return rc;
      if (id.kind == SL_INT && id.u.v.u.i >= 0) {
        bool exists = false;
        size_t n;
        rc = sl_view_scan_ids(q->view, false, NULL, (uint64_t)id.u.v.u.i, lv->ids, 1, &n);
        if (rc) return qerr_store(q, rc, lv->node->line, lv->node->col);
        exists = n == 1 && lv->ids[0] == (uint64_t)id.u.v.u.i;
        lv->nids = exists;
      }
      lv->scan_end = true;
    }
    return 0;
  }
  const qv *from = &q->row[lv->from_slot];
  lv->ncands = lv->ccap = 0;
  lv->cands = NULL;
  if (from->kind != SL_QNODE) return 0;
  if (lv->kind == LV_EXPAND) return node_rels(q, lv, from->u.node.id, &lv->cands, &lv->ncands, &lv->ccap);
  /* variable length */
  lv->ntr = lv->trcap = lv->ntrails = lv->tcap = 0;
  uint32_t min = lv->rel->varlen ? lv->rel->min : 1, max = lv->rel->varlen ? lv->rel->max : 1;
  if (!lv->rel->varlen && lv->shortest) min = 1, max = 1;
  if (lv->rel->varlen && max == QREL_UNBOUNDED) max = q->max_hops;
  if (max > q->max_hops)
    return qerr(q, SL_EINVAL, ST_ARG, lv->rel->line, lv->rel->col,
                "variable length relationship of up to %u hops exceeds the limit of %u (--max-hops)", max, q->max_hops);
  int64_t target = -1;
  if (lv->node_bound) {
    const qv *b = &q->row[lv->node->slot];
    if (b->kind != SL_QNODE) return 0;
    target = (int64_t)b->u.node.id;
  }
  if (lv->rel_bound) {
    /* the relationships are given (a list bound earlier): follow them */
    const qv *l = &q->row[lv->rel->slot];
    if (l->kind != SL_QLIST) return 0;
    size_t n = l->u.list.n;
    cand *path = sl_arena_alloc(&lv->arena, sizeof *path * (n ? n : 1));
    if (!path) return qerr_oom(q);
    uint64_t cur = from->u.node.id;
    for (size_t k = 0; k < n; k++) {
      const qv *r = &l->u.list.items[lv->reversed ? n - 1 - k : k];
      if (r->kind != SL_QREL) return 0;
      bool out = r->u.rel.start == cur, in = r->u.rel.end == cur;
      if (!((lv->dir & SL_DIR_OUT) && out) && !((lv->dir & SL_DIR_IN) && in)) return 0;
      const char *type;
      sl_rel rel;
      int rc = sl_view_rel(q->view, r->u.rel.id, &rel);
      if (rc == SL_ENOTFOUND) return 0;
      if (rc) return qerr_store(q, rc, lv->rel->line, lv->rel->col);
      type = sl_arena_strndup(&lv->arena, rel.type, strlen(rel.type));
      if (!type) return qerr_oom(q);
      bool ok = !lv->rel->ntypes;
      for (int t = 0; t < lv->rel->ntypes && !ok; t++) ok = !strcmp(lv->rel->types[t], type);
      if (!ok) return 0;
      path[k] = (cand){r->u.rel.id, rel.start, rel.end, out ? rel.end : rel.start, type};
      if ((rc = rel_props_ok(q, lv, &path[k], &ok))) return rc;
      if (!ok) return 0;
      cur = path[k].other;
    }
    if (n < min || n > max || (target >= 0 && (uint64_t)target != cur)) return 0;
    return push_trail(q, lv, path, n, cur);
  }
  cand *path = sl_arena_alloc(&lv->arena, sizeof *path * (max + 1));
  if (!path) return qerr_oom(q);
  if (lv->shortest) {
    if (target < 0)
      return qerr(q, SL_EINVAL, ST_SEMANTIC, lv->rel->line, lv->rel->col, "shortestPath needs both end nodes bound");
    int len;
    int rc = bfs_len(q, lv, from->u.node.id, (uint64_t)target, max, &len);
    if (rc) return rc;
    sl_arena_reset(&lv->arena);
    path = sl_arena_alloc(&lv->arena, sizeof *path * (max + 1));
    if (!path) return qerr_oom(q);
    if (len < 0 || (uint32_t)len < min) return 0;
    rc = dfs(q, m, lv, from->u.node.id, path, 0, (uint32_t)len, (uint32_t)len, target);
    if (rc) return rc;
    if (lv->shortest == 1 && lv->ntrails > 1) lv->ntrails = 1;
    return 0;
  }
  return dfs(q, m, lv, from->u.node.id, path, 0, min, max, target);
}

/* Bind the next candidate of level i: 1, 0 when exhausted, <0. */
static int advance(qctx *q, qmatch *m, int i) {
  level *lv = &m->lv[i];
  int rc;
  bool ok;
  if (lv->kind == LV_START) {
    for (;;) {
      if ((rc = qtick(q))) return rc;
      if (lv->pos == lv->nids) {
        if (lv->scan_end) return 0;
        size_t n;
        rc = sl_view_scan_ids(q->view, false, lv->src != SRC_ALL ? lv->label : NULL, lv->next_from, lv->ids, SCAN_BATCH, &n);
        if (rc) return qerr_store(q, rc, lv->node->line, lv->node->col);
        lv->nids = n;
        lv->pos = 0;
        if (n < SCAN_BATCH) lv->scan_end = true;
        if (n) lv->next_from = lv->ids[n - 1] + 1;
        if (!n) return 0;
      }
      uint64_t id = lv->seeking ? lv->sids[lv->pos++] : lv->ids[lv->pos++];
      if ((rc = check_node(q, lv, id, &ok))) return rc;
      if (!ok) continue;
      if (!lv->node_bound) q->row[lv->node->slot] = qv_node(id);
      return 1;
    }
  }
  if (lv->kind == LV_EXPAND) {
    while (lv->pos < lv->ncands) {
      if ((rc = qtick(q))) return rc;
      cand *c = &lv->cands[lv->pos++];
      if (lv->rel_bound) {
        const qv *b = &q->row[lv->rel->slot];
        if (b->kind != SL_QREL || b->u.rel.id != c->rel) continue;
      }
      if (rel_used(q, m, i, c->rel)) continue;
      if ((rc = rel_props_ok(q, lv, c, &ok))) return rc;
      if (!ok) continue;
      if ((rc = check_node(q, lv, c->other, &ok))) return rc;
      if (!ok) continue;
      if (!lv->rel_bound) q->row[lv->rel->slot] = qv_rel(c->rel, c->start, c->end, c->type);
      if (!lv->node_bound) q->row[lv->node->slot] = qv_node(c->other);
      return 1;
    }
    return 0;
  }
  while (lv->pos < lv->ntrails) {
    if ((rc = qtick(q))) return rc;
    trail *t = &lv->trails[lv->pos++];
    if ((rc = check_node(q, lv, t->end, &ok))) return rc;
    if (!ok) continue;
    if (lv->rel_bound) {
      /* the list is bound already */
    } else if (lv->shortest && !lv->rel->varlen) {
      cand *c = &lv->trail_rels[t->off];
      q->row[lv->rel->slot] = qv_rel(c->rel, c->start, c->end, c->type);
    } else {
      qv *items = sl_arena_alloc(&lv->arena, sizeof *items * (t->len ? t->len : 1));
      if (!items) return qerr_oom(q);
      for (size_t k = 0; k < t->len; k++) {
        cand *c = &lv->trail_rels[t->off + k];
        items[lv->reversed ? t->len - 1 - k : k] = qv_rel(c->rel, c->start, c->end, c->type);
      }
      qv list;
      list.kind = SL_QLIST;
      list.u.list.n = t->len;
      list.u.list.items = items;
      q->row[lv->rel->slot] = list;
    }
    if (!lv->node_bound) q->row[lv->node->slot] = qv_node(t->end);
    return 1;
  }
  return 0;
}

/* Named paths: nodes and relationships in pattern order. */
static int build_paths(qctx *q, qmatch *m) {
  for (int i = 0; i < m->pat->npaths; i++) {
    qpath *p = &m->pat->paths[i];
    if (p->slot < 0) continue;
    size_t nrels = 0;
    for (int j = 0; j < p->nrels; j++) {
      const qv *r = &q->row[p->rels[j].slot];
      nrels += r->kind == SL_QLIST ? r->u.list.n : 1;
    }
    sl_qnode *nodes = sl_arena_zalloc(&q->tmp, sizeof *nodes * (nrels + 1));
    sl_qrel *rels = sl_arena_zalloc(&q->tmp, sizeof *rels * (nrels ? nrels : 1));
    if (!nodes || !rels) return qerr_oom(q);
    uint64_t cur = q->row[p->nodes[0].slot].u.node.id;
    size_t nn = 0, nr = 0;
    nodes[nn++].id = cur;
    for (int j = 0; j < p->nrels; j++) {
      const qv *r = &q->row[p->rels[j].slot];
      size_t cnt = r->kind == SL_QLIST ? r->u.list.n : 1;
      for (size_t k = 0; k < cnt; k++) {
        const qv *one = r->kind == SL_QLIST ? &r->u.list.items[k] : r;
        rels[nr++] = one->u.rel;
        cur = one->u.rel.start == cur ? one->u.rel.end : one->u.rel.start;
        nodes[nn++].id = cur;
      }
    }
    qv *pv = &q->row[p->slot];
    pv->kind = SL_QPATH;
    pv->u.path.nnodes = nn;
    pv->u.path.nrels = nr;
    pv->u.path.nodes = nodes;
    pv->u.path.rels = rels;
  }
  return 0;
}

int qmatch_next(qctx *q, qmatch *m) {
  int rc;
  if (!m->started) {
    m->started = true;
    m->cur = 0;
    if ((rc = init_level(q, m, 0))) return rc;
  } else {
    m->cur = m->nlv - 1;
  }
  while (m->cur >= 0) {
    rc = advance(q, m, m->cur);
    if (rc < 0) return rc;
    if (rc == 0) {
      m->cur--;
      continue;
    }
    if (m->cur == m->nlv - 1) {
      if ((rc = build_paths(q, m))) return rc;
      return 1;
    }
    m->cur++;
    if ((rc = init_level(q, m, m->cur))) return rc;
  }
  m->cur = -1;
  return 0;
}

int q_pattern_exists(qctx *q, qpattern *pat, bool *out) {
  sl_arena a;
  sl_arena_init(&a, &q->mem);
  qmatch *m;
  /* the matcher binds the pattern's own slots; keep the row as it was */
  qv *saved = sl_arena_alloc(&a, sizeof *saved * (size_t)q->stmt->nslots);
  int rc = saved ? qmatch_new(q, pat, &a, &m) : qerr_oom(q);
  if (rc) goto out;
  memcpy(saved, q->row, sizeof *saved * (size_t)q->stmt->nslots);
  rc = qmatch_next(q, m);
  memcpy(q->row, saved, sizeof *saved * (size_t)q->stmt->nslots);
  qmatch_free(m);
  if (rc >= 0) {
    *out = rc == 1;
    rc = 0;
  }
out:
  sl_arena_free(&a);
  return rc;
}
