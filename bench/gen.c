/*
 * bench_gen: a random, graph-like workload as a mutation file
 * (spec/mutations.md) on standard output, for `shiplog exec` and every bench
 * that needs writes (commit, ship, restore, the PostgreSQL peer).
 *
 * USAGE
 *   bench_gen --tx N [--ops-per-tx A[-B]] [--seed S] [--nodes-first K]
 *             [--id-base I] [--ts-start US [--ts-step US]]
 *
 *   --tx N            N random transactions (lines). Default 1000.
 *   --ops-per-tx A-B  each transaction holds A..B ops, uniformly; "A" alone
 *                     means exactly A. Default 1-5.
 *   --seed S          the same seed and flags give the same bytes. Default 1.
 *   --nodes-first K   before the N random transactions, K node creations in
 *                     transactions of B ops each (so relationships have
 *                     somewhere to go from the start). Default 0.
 *   --id-base I       the first node id and the first relationship id; every
 *                     create gives an explicit id (so that later lines can
 *                     name it), counting up from I. Use a base above the ids
 *                     a target store already holds. Default 1.
 *   --ts-start US     give every line a "ts": US (µs since the epoch) for the
 *                     first, then +ts-step per line (default 1000). Without
 *                     it the store's clock dates the commits.
 *
 * WHAT IT WRITES
 *   Nodes with one primary label (Person, Post, Comment, Forum, Tag) and
 *   sometimes extra ones (Active, Archived, Pinned); relationships (KNOWS,
 *   LIKES, HAS_CREATOR, REPLY_OF, HAS_MEMBER, HAS_TAG) between live nodes,
 *   self-loops included; property writes of every value kind (bool, int64
 *   including its extremes, doubles always written with "." or an exponent,
 *   strings with escapes and multi-byte UTF-8, {"$bytes": ...}, dates,
 *   times, datetimes with offsets and zones, durations (years to
 *   +-999999999, nanoseconds, negative), points of the four coordinate
 *   systems, lists of each scalar kind, the empty list, and null = remove);
 *   label adds and removes;
 *   relationship deletes; node deletes with "detach" (or without it when the
 *   node has no relationships).
 *
 *   Every line is valid against a store that holds none of its ids: the
 *   generator mirrors the graph it has built (live nodes, their labels and
 *   relationships), deletes only what exists, and forgets a node's
 *   relationships when it deletes the node with detach.
 *
 * Randomness is splitmix64 seeded by --seed, so output depends on nothing
 * else (not libc's rand, not the time).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interchange.h"
#include "sl_base.h"

/* ---- randomness ------------------------------------------------------------ */
static uint64_t rng_state;

static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
/* Uniform in [0, n), n > 0. */
static uint64_t below(uint64_t n) { return rnd() % n; }
static bool chance(unsigned percent) { return below(100) < percent; }

/* ---- output line ------------------------------------------------------------ */
static char *out;
static size_t out_len, out_cap;

static void put(const char *s, size_t n) {
  if (out_len + n > out_cap) {
    while (out_len + n > out_cap) out_cap = out_cap ? out_cap * 2 : 1 << 16;
    out = realloc(out, out_cap);
    if (!out) {
      fprintf(stderr, "bench_gen: out of memory\n");
      exit(1);
    }
  }
  memcpy(out + out_len, s, n);
  out_len += n;
}
static void puts_(const char *s) { put(s, strlen(s)); }
static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void putf(const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  put(buf, (size_t)n);
}

/* A JSON string, escaped as spec/export.md escapes (minimal). */
static void put_str(const char *s) {
  put("\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      put("\\", 1);
      put((const char *)p, 1);
    } else if (*p < 0x20 || *p == 0x7f) {
      putf("\\u%04x", *p);
    } else {
      put((const char *)p, 1);
    }
  }
  put("\"", 1);
}

/* ---- values of every kind ------------------------------------------------------ */
static const char *const strings[] = {
    "Ann", "Bo", "Cedric", "a much longer string of plain words to make some lines bigger",
    "quote \" and backslash \\", "tab\tnew line\ncontrol \x01", "café", "日本語のテキスト",
    "emoji 🚀🙂", "", "x", "Ünïcödé ∑ ≠ ∞",
};
static const char *const keys[] = {"name", "age", "score", "active", "tags", "data",
                                   "created", "weights", "flags", "blob", "title", "rank"};

static void put_int(void) {
  int64_t v;
  switch (below(8)) {
  case 0: v = INT64_MAX; break;
  case 1: v = INT64_MIN; break;
  case 2: v = -(int64_t)below(1000000); break;
  case 3: v = (int64_t)(rnd() >> 1); break;
  default: v = (int64_t)below(100000); break;
  }
  putf("%" PRId64, v);
}

static void put_double(void) {
  static const double specials[] = {0.0, -0.0, 1.0, -2.5, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, 0.1};
  double d;
  if (chance(20))
    d = specials[below(SL_ARRAY_LEN(specials))];
  else
    d = ((double)(rnd() >> 11) / 9007199254740992.0 - 0.5) * (double)(1ull << below(40));
  char buf[SL_DOUBLE_BUF];
  put(buf, sl_double_format(d, buf));
}

static void put_bytes(void) {
  uint8_t raw[48];
  char enc[4 * (sizeof raw + 2) / 3 + 4];
  size_t n = below(sizeof raw + 1);
  for (size_t i = 0; i < n; i++) raw[i] = (uint8_t)rnd();
  puts_("{\"$bytes\":\"");
  put(enc, sl_base64_encode(raw, n, enc));
  puts_("\"}");
}

/* Dates, times, datetimes (offsets and IANA zones) and durations as their
 * canonical text: now-ish mostly, the extremes sometimes. */
static void put_temporal(sl_kind kind) {
  static const char *const tags[] = {"date", "localtime", "time", "localdatetime", "datetime", "duration"};
  static const char *const zones[] = {"Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
                                      "UTC"};
  sl_value v = {.kind = kind};
  int64_t days = chance(10) ? (chance(50) ? -365243219162LL : 365241780471LL) /* years -999999999, 999999999 */
                            : (int64_t)below(80000) - 20000;
  int64_t sod = (int64_t)below(86400);
  int32_t nanos = chance(50) ? 0 : (int32_t)below(1000000000);
  switch (kind) {
  case SL_DATE: v.u.t.seconds = days; break;
  case SL_LOCALTIME: v.u.t.seconds = sod, v.u.t.nanos = nanos; break;
  case SL_TIME: v.u.t.seconds = sod, v.u.t.nanos = nanos, v.u.t.offset = ((int32_t)below(145) - 72) * 900; break;
  case SL_LOCALDATETIME: v.u.t.seconds = days * 86400 + sod, v.u.t.nanos = nanos; break;
  case SL_DATETIME:
    v.u.t.seconds = (days < 0 ? days + 1 : days - 1) * 86400 + sod, v.u.t.nanos = nanos;
    if (chance(50)) {
      v.u.t.zone = zones[below(SL_ARRAY_LEN(zones))];
      if (sl_tz_offset_at(v.u.t.zone, v.u.t.seconds, &v.u.t.offset)) v.u.t.zone = NULL, v.u.t.offset = 0;
    } else {
      v.u.t.offset = ((int32_t)below(145) - 72) * 900;
    }
    break;
  default: {
    int64_t sign = chance(30) ? -1 : 1;
    v.u.dur.months = sign * (int64_t)below(240);
    v.u.dur.days = sign * (int64_t)below(400);
    v.u.dur.seconds = sign * (int64_t)below(1000000);
    v.u.dur.nanos = (int32_t)sign * nanos;
    break;
  }
  }
  char text[SL_TEMPORAL_TEXT_MAX];
  int n = sl_temporal_format(&v, text, sizeof text);
  putf("{\"$%s\":\"", tags[kind - SL_DATE]);
  put(text, n > 0 ? (size_t)n : 0);
  puts_("\"}");
}

/* Points of the four coordinate systems. */
static void put_point(void) {
  static const uint32_t srids[] = {SL_SRID_CARTESIAN, SL_SRID_CARTESIAN_3D, SL_SRID_WGS84, SL_SRID_WGS84_3D};
  uint32_t srid = srids[below(4)];
  putf("{\"$point\":{\"srid\":%u,\"x\":", srid);
  put_double();
  puts_(",\"y\":");
  put_double();
  if (srid == SL_SRID_CARTESIAN_3D || srid == SL_SRID_WGS84_3D) {
    puts_(",\"z\":");
    put_double();
  }
  puts_("}}");
}

enum { K_BOOL, K_INT, K_DOUBLE, K_STRING, K_BYTES, K_TEMPORAL_0, K_POINT = K_TEMPORAL_0 + 6, K_SCALARS };

static void put_scalar(int kind) {
  switch (kind) {
  case K_BOOL: puts_(chance(50) ? "true" : "false"); break;
  case K_INT: put_int(); break;
  case K_DOUBLE: put_double(); break;
  case K_STRING: put_str(strings[below(SL_ARRAY_LEN(strings))]); break;
  case K_BYTES: put_bytes(); break;
  case K_POINT: put_point(); break;
  default: put_temporal((sl_kind)(SL_DATE + (kind - K_TEMPORAL_0))); break;
  }
}

/* A value; allow_null for set_*_prop, where null means remove. */
static void put_value(bool allow_null) {
  if (allow_null && chance(5)) {
    puts_("null");
  } else if (chance(20)) {
    int kind = (int)below(K_SCALARS);
    size_t n = chance(10) ? 0 : 1 + below(6);
    put("[", 1);
    for (size_t i = 0; i < n; i++) {
      if (i) put(",", 1);
      put_scalar(kind);
    }
    put("]", 1);
  } else {
    /* Strings and ints dominate real graphs. */
    static const int weights[] = {K_STRING, K_STRING, K_STRING, K_INT, K_INT, K_INT, K_DOUBLE,
                                  K_DOUBLE, K_BOOL,   K_BYTES,  -1,    -1,    K_POINT};
    int k = weights[below(SL_ARRAY_LEN(weights))];
    put_scalar(k < 0 ? K_TEMPORAL_0 + (int)below(6) : k);
  }
}

static void put_props(size_t n) {
  size_t start = below(SL_ARRAY_LEN(keys));
  puts_("\"props\":{");
  for (size_t i = 0; i < n; i++) {
    if (i) put(",", 1);
    put_str(keys[(start + i) % SL_ARRAY_LEN(keys)]); /* distinct keys */
    put(":", 1);
    put_value(false);
  }
  put("}", 1);
}

/* ---- the mirrored graph ----------------------------------------------------------- */
static const char *const labels[] = {"Person", "Post", "Comment", "Forum", "Tag",
                                     "Active", "Archived", "Pinned"};
#define PRIMARY_LABELS 5
static const char *const types[] = {"KNOWS", "LIKES", "HAS_CREATOR", "REPLY_OF", "HAS_MEMBER", "HAS_TAG"};

typedef struct node {
  uint64_t id;
  unsigned labels;    /* bit i: labels[i] */
  size_t *rels;       /* indexes into rels[] of live relationships touching it */
  size_t nrels, cap;
} node;

typedef struct rel {
  uint64_t id;
  size_t start, end;  /* indexes into nodes[] */
} rel;

/* Live entities in dense arrays; deleting swaps the last one in. */
static node *nodes;
static size_t nnodes, nodes_cap;
static rel *rels;
static size_t nrels, rels_cap;
static uint64_t next_node_id, next_rel_id;

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return p;
  *cap = *cap ? *cap * 2 : 1024;
  if (*cap < need) *cap = need;
  p = realloc(p, *cap * size);
  if (!p) {
    fprintf(stderr, "bench_gen: out of memory\n");
    exit(1);
  }
  return p;
}

static void node_add_rel(node *n, size_t r) {
  n->rels = grow(n->rels, &n->cap, n->nrels + 1, sizeof *n->rels);
  n->rels[n->nrels++] = r;
}
static void node_drop_rel(node *n, size_t r) {
  for (size_t i = 0; i < n->nrels; i++)
    if (n->rels[i] == r) {
      n->rels[i] = n->rels[--n->nrels];
      return;
    }
}
static void node_rename_rel(node *n, size_t from, size_t to) {
  for (size_t i = 0; i < n->nrels; i++)
    if (n->rels[i] == from) n->rels[i] = to;
}

/* Forget relationship r: unlink it from its ends, then move the last one
 * into its slot (fixing that one's entries in its ends' lists). */
static void rel_forget(size_t r) {
  node_drop_rel(&nodes[rels[r].start], r);
  if (rels[r].end != rels[r].start) node_drop_rel(&nodes[rels[r].end], r);
  size_t last = --nrels;
  if (r != last) {
    rels[r] = rels[last];
    node_rename_rel(&nodes[rels[r].start], last, r);
    if (rels[r].end != rels[r].start) node_rename_rel(&nodes[rels[r].end], last, r);
  }
}

static void node_forget(size_t n) {
  while (nodes[n].nrels) rel_forget(nodes[n].rels[0]);
  free(nodes[n].rels);
  size_t last = --nnodes;
  if (n != last) {
    nodes[n] = nodes[last];
    for (size_t i = 0; i < nodes[n].nrels; i++) {
      rel *r = &rels[nodes[n].rels[i]];
      if (r->start == last) r->start = n;
      if (r->end == last) r->end = n;
    }
  }
}

/* ---- ops ------------------------------------------------------------------------- */
static void op_create_node(void) {
  nodes = grow(nodes, &nodes_cap, nnodes + 1, sizeof *nodes);
  node *n = &nodes[nnodes++];
  *n = (node){.id = next_node_id++, .labels = 1u << below(PRIMARY_LABELS)};
  if (chance(20)) n->labels |= 1u << (PRIMARY_LABELS + below(SL_ARRAY_LEN(labels) - PRIMARY_LABELS));
  if (chance(3)) n->labels = 0;   /* a node without labels is legal too */
  putf("{\"op\":\"create_node\",\"id\":%" PRIu64 ",\"labels\":[", n->id);
  bool first = true;
  for (size_t i = 0; i < SL_ARRAY_LEN(labels); i++)
    if (n->labels & (1u << i)) {
      if (!first) put(",", 1);
      put_str(labels[i]);
      first = false;
    }
  puts_("],");
  put_props(below(5));
  put("}", 1);
}

static void op_create_rel(void) {
  size_t s = below(nnodes), e = chance(3) ? s : below(nnodes);
  rels = grow(rels, &rels_cap, nrels + 1, sizeof *rels);
  size_t r = nrels++;
  rels[r] = (rel){.id = next_rel_id++, .start = s, .end = e};
  node_add_rel(&nodes[s], r);
  if (e != s) node_add_rel(&nodes[e], r);
  putf("{\"op\":\"create_rel\",\"id\":%" PRIu64 ",\"type\":", rels[r].id);
  put_str(types[below(SL_ARRAY_LEN(types))]);
  putf(",\"start\":%" PRIu64 ",\"end\":%" PRIu64, nodes[s].id, nodes[e].id);
  if (chance(70)) {
    put(",", 1);
    put_props(below(3));
  }
  put("}", 1);
}

static void op_set_prop(const char *op, uint64_t id) {
  putf("{\"op\":\"%s\",\"id\":%" PRIu64 ",\"key\":", op, id);
  put_str(keys[below(SL_ARRAY_LEN(keys))]);
  puts_(",\"value\":");
  put_value(true);
  put("}", 1);
}

static void op_remove_prop(const char *op, uint64_t id) {
  putf("{\"op\":\"%s\",\"id\":%" PRIu64 ",\"key\":", op, id);
  put_str(keys[below(SL_ARRAY_LEN(keys))]);
  put("}", 1);
}

static void op_label(node *n) {
  size_t l = below(SL_ARRAY_LEN(labels));
  bool add = !(n->labels & (1u << l));
  if (add) n->labels |= 1u << l;
  else n->labels &= ~(1u << l);
  putf("{\"op\":\"%s\",\"id\":%" PRIu64 ",\"label\":", add ? "add_label" : "remove_label", n->id);
  put_str(labels[l]);
  put("}", 1);
}

static void op_delete_rel(void) {
  size_t r = below(nrels);
  putf("{\"op\":\"delete_rel\",\"id\":%" PRIu64 "}", rels[r].id);
  rel_forget(r);
}

static void op_delete_node(void) {
  size_t n = below(nnodes);
  if (nodes[n].nrels || chance(50))
    putf("{\"op\":\"delete_node\",\"id\":%" PRIu64 ",\"detach\":true}", nodes[n].id);
  else
    putf("{\"op\":\"delete_node\",\"id\":%" PRIu64 "}", nodes[n].id);
  node_forget(n);
}

/* One random op. Creates outweigh deletes, so the graph grows. */
static void random_op(void) {
  unsigned p = (unsigned)below(100);
  if (nnodes == 0 || p < 28)
    op_create_node();
  else if (p < 53 || (p >= 81 && p < 96 && nrels == 0))
    op_create_rel();
  else if (p < 68)
    op_set_prop("set_node_prop", nodes[below(nnodes)].id);
  else if (p < 72)
    op_remove_prop("remove_node_prop", nodes[below(nnodes)].id);
  else if (p < 81)
    op_label(&nodes[below(nnodes)]);
  else if (p < 88)
    op_set_prop("set_rel_prop", rels[below(nrels)].id);
  else if (p < 90)
    op_remove_prop("remove_rel_prop", rels[below(nrels)].id);
  else if (p < 96)
    op_delete_rel();
  else
    op_delete_node();
}

/* ---- main ------------------------------------------------------------------------- */
static uint64_t ts_next, ts_step;
static bool with_ts;

static void begin_line(void) {
  out_len = 0;
  put("{", 1);
  if (with_ts) {
    putf("\"ts\":%" PRIu64 ",", ts_next);
    ts_next += ts_step;
  }
  puts_("\"ops\":[");
}

static void end_line(void) {
  puts_("]}\n");
  if (fwrite(out, 1, out_len, stdout) != out_len) {
    fprintf(stderr, "bench_gen: writing standard output: %s\n", strerror(errno));
    exit(1);
  }
}

static void usage(void) {
  fprintf(stderr, "usage: bench_gen --tx N [--ops-per-tx A[-B]] [--seed S] [--nodes-first K]\n"
                  "                 [--id-base I] [--ts-start US [--ts-step US]]\n");
  exit(2);
}

static uint64_t num_arg(const char *flag, const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || *s == '-') {
    fprintf(stderr, "bench_gen: %s: not a number: %s\n", flag, s);
    usage();
  }
  return v;
}

int main(int argc, char **argv) {
  uint64_t ntx = 1000, ops_min = 1, ops_max = 5, seed = 1, nodes_first = 0, id_base = 1;
  ts_step = 1000;
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i];
    if (!strcmp(f, "-h") || !strcmp(f, "--help")) usage();
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(f, "--tx")) {
      ntx = num_arg(f, v);
    } else if (!strcmp(f, "--ops-per-tx")) {
      char buf[64];
      snprintf(buf, sizeof buf, "%s", v);
      char *dash = strchr(buf, '-');
      if (dash) *dash = 0;
      ops_min = num_arg(f, buf);
      ops_max = dash ? num_arg(f, dash + 1) : ops_min;
      if (ops_min == 0 || ops_max < ops_min) {
        fprintf(stderr, "bench_gen: --ops-per-tx: want 1 <= A <= B, got %s\n", v);
        usage();
      }
    } else if (!strcmp(f, "--seed")) {
      seed = num_arg(f, v);
    } else if (!strcmp(f, "--nodes-first")) {
      nodes_first = num_arg(f, v);
    } else if (!strcmp(f, "--id-base")) {
      id_base = num_arg(f, v);
      if (id_base == 0) usage();
    } else if (!strcmp(f, "--ts-start")) {
      ts_next = num_arg(f, v);
      with_ts = true;
    } else if (!strcmp(f, "--ts-step")) {
      ts_step = num_arg(f, v);
    } else {
      fprintf(stderr, "bench_gen: unknown flag %s\n", f);
      usage();
    }
  }
  rng_state = seed;
  next_node_id = next_rel_id = id_base;
  static char obuf[1 << 20];
  setvbuf(stdout, obuf, _IOFBF, sizeof obuf);

  for (uint64_t made = 0; made < nodes_first;) {
    begin_line();
    for (uint64_t k = 0; k < ops_max && made < nodes_first; k++, made++) {
      if (k) put(",", 1);
      op_create_node();
    }
    end_line();
  }
  for (uint64_t t = 0; t < ntx; t++) {
    begin_line();
    uint64_t nops = ops_min + below(ops_max - ops_min + 1);
    for (uint64_t k = 0; k < nops; k++) {
      if (k) put(",", 1);
      random_op();
    }
    end_line();
  }
  if (fflush(stdout) != 0) {
    fprintf(stderr, "bench_gen: writing standard output: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}
