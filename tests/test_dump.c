/*
 * Tests of backup files (store/dump.h): full dump + load equals the source
 * (canonical exports and counters), chains of incrementals by txid and by
 * time, overlap and the refusals (gap, store id, kind, store ahead, target
 * not empty), every single byte flip and every truncation at a chunk
 * boundary detected with an offset and nothing left behind, and a dump
 * taken while a writer thread commits equals a replay of the log to the
 * dump's txid.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "dump.h"
#include "interchange.h"
#include "log.h"
#include "sl_base.h"
#include "store.h"

/* ---- a random workload ------------------------------------------------------------ */
typedef struct gen {
  uint64_t rng;
  uint64_t *nodes;
  size_t nn, cap;
  uint64_t us; /* commit time of the next transaction; 0: the store's clock */
} gen;

static const char *const labels[] = {"Person", "Post", "Tag", "Forum"};
static const char *const types[] = {"KNOWS", "LIKES", "HAS_TAG"};

static sl_value rand_value(gen *g, char *buf, sl_value *items) {
  uint64_t k = tu_rand_below(&g->rng, 8);
  switch (k) {
  case 0: return (sl_value){.kind = SL_INT, .u.i = (int64_t)tu_rand(&g->rng)};
  case 1: return (sl_value){.kind = SL_DOUBLE, .u.d = tu_rand_below(&g->rng, 10) ? (double)tu_rand(&g->rng) / 7.0 : NAN};
  case 2: return (sl_value){.kind = SL_BOOL, .u.b = tu_rand(&g->rng) & 1};
  case 3: {
    int n = snprintf(buf, 64, "näme-%" PRIu64, tu_rand_below(&g->rng, 100000));
    return (sl_value){.kind = SL_STRING, .len = (size_t)n, .u.s = buf};
  }
  case 4: {
    size_t n = tu_rand_below(&g->rng, 40);
    for (size_t i = 0; i < n; i++) buf[i] = (char)tu_rand(&g->rng);
    return (sl_value){.kind = SL_BYTES, .len = n, .u.bytes = (const uint8_t *)buf};
  }
  case 5: {
    size_t n = tu_rand_below(&g->rng, 5);
    for (size_t i = 0; i < n; i++) items[i] = (sl_value){.kind = SL_INT, .u.i = (int64_t)i * 3};
    return (sl_value){.kind = SL_LIST, .elem_kind = n ? SL_INT : SL_NULL, .len = n, .u.items = items};
  }
  default: {
    int n = snprintf(buf, 64, "a longer text that compresses well %" PRIu64, tu_rand_below(&g->rng, 50));
    return (sl_value){.kind = SL_STRING, .len = (size_t)n, .u.s = buf};
  }
  }
}

static uint64_t pick_node(gen *g) { return g->nodes[tu_rand_below(&g->rng, g->nn)]; }

static int count_rel(void *arg, uint64_t id, const char *type, uint64_t start, uint64_t end) {
  (void)type, (void)start, (void)end;
  *(uint64_t *)arg = id;
  return 0;
}

/* One transaction of `ops` random ops; returns its txid. With g->us set,
 * transactions commit 1 ms apart from g->us on. */
static uint64_t gen_tx(sl_store *st, gen *g, int ops) {
  sl_tx *tx;
  char buf[64], buf2[64];
  sl_value items[8], items2[8];
  OK(sl_tx_begin(st, &tx));
  if (g->us) OK(sl_tx_set_commit_time(tx, g->us));
  for (int i = 0; i < ops; i++) {
    /* The first op creates a node, so every transaction logs something. */
    uint64_t what = g->nn < 4 || i == 0 ? 0 : tu_rand_below(&g->rng, 10), id;
    if (what <= 3) {
      const char *ls[2] = {labels[tu_rand_below(&g->rng, 4)], labels[tu_rand_below(&g->rng, 4)]};
      sl_prop props[2] = {{"k1", rand_value(g, buf, items)}, {"k2", rand_value(g, buf2, items2)}};
      size_t nl = strcmp(ls[0], ls[1]) ? 2 : 1;
      OK(sl_tx_create_node(tx, SL_ID_NEW, ls, nl, props, tu_rand_below(&g->rng, 3), &id));
      if (g->nn == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->nodes = realloc(g->nodes, g->cap * sizeof *g->nodes);
      }
      g->nodes[g->nn++] = id;
    } else if (what <= 5) {
      sl_prop p = {"w", rand_value(g, buf, items)};
      OK(sl_tx_create_rel(tx, SL_ID_NEW, types[tu_rand_below(&g->rng, 3)], pick_node(g), pick_node(g), &p,
                          tu_rand_below(&g->rng, 2), NULL));
    } else if (what == 6) {
      sl_value v = rand_value(g, buf, items);
      OK(sl_tx_set_node_prop(tx, pick_node(g), tu_rand(&g->rng) & 1 ? "k1" : "k3", &v));
    } else if (what == 7) {
      OK(sl_tx_add_label(tx, pick_node(g), labels[tu_rand_below(&g->rng, 4)]));
    } else if (what == 8) {
      uint64_t rel = 0;
      OK(sl_view_node_rels(sl_tx_view(tx), pick_node(g), SL_DIR_OUT, NULL, count_rel, &rel));
      if (rel) OK(sl_tx_delete_rel(tx, rel));
    } else {
      size_t k = tu_rand_below(&g->rng, g->nn);
      OK(sl_tx_delete_node(tx, g->nodes[k], true));
      g->nodes[k] = g->nodes[--g->nn];
    }
  }
  uint64_t txid;
  OK(sl_tx_commit(tx, &txid));
  if (g->us) g->us += 1000;
  return txid;
}

static void gen_many(sl_store *st, gen *g, int txs, int ops) {
  for (int i = 0; i < txs; i++) gen_tx(st, g, 1 + (int)tu_rand_below(&g->rng, (uint64_t)ops));
}

/* ---- helpers ------------------------------------------------------------------------ */
static char *new_dir(const char *name) { return strdup(tu_tmpdir(name)); }

static void done_dir(char *dir) {
  sl_remove_tree(dir);
  free(dir);
}

static sl_store *create_open(const char *dir, const sl_store_options *o) {
  sl_store *st;
  OK(sl_store_create(dir, o));
  OK(sl_store_open(dir, 0, &st));
  return st;
}

static sl_store *open_rw(const char *dir) {
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  return st;
}

/* The canonical export of a store plus its counters, as one string. */
static char *snapshot(sl_store *st) {
  char *buf = NULL;
  size_t len = 0;
  sl_view *v;
  sl_counts c;
  FILE *f = open_memstream(&buf, &len);
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  fprintf(f, "txid %" PRIu64 " at %" PRIu64 ", next ids %" PRIu64 "/%" PRIu64 ", %" PRIu64 " nodes, %" PRIu64 " rels\n",
          c.applied_txid, c.last_commit_us, c.next_node_id, c.next_rel_id, c.nodes, c.rels);
  OK(sl_export_canonical(v, f, "snapshot", NULL, NULL));
  sl_view_end(v);
  fclose(f);
  return buf;
}

static void assert_same_state(sl_store *a, sl_store *b) {
  char *x = snapshot(a), *y = snapshot(b);
  if (strcmp(x, y)) {
    size_t i = 0;
    while (x[i] && x[i] == y[i]) i++;
    fail_msg("states differ at byte %zu:\n  %.120s\n  %.120s", i, x + (i > 40 ? i - 40 : 0), y + (i > 40 ? i - 40 : 0));
  }
  free(x);
  free(y);
}

static uint64_t applied(sl_store *st) {
  sl_view *v;
  sl_counts c;
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  sl_view_end(v);
  return c.applied_txid;
}

static int dump_file(sl_store *st, const char *path, bool incremental, const sl_dump_options *o, sl_dump_info *info) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail_msg("%s: %s", path, strerror(errno));
  int rc = incremental ? sl_dump_incremental(st, fd, o, info) : sl_dump_full(st, fd, o, info);
  close(fd);
  return rc;
}

static uint8_t *read_all(const char *path, size_t *len) {
  uint8_t *b;
  OK(sl_read_file(path, 1u << 30, &b, len));
  return b;
}

static void write_all(const char *path, const uint8_t *b, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  OK(sl_write_all(fd, b, len));
  close(fd);
}

static bool exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* Nothing named NAME or NAME.tmp-* in DIR. */
static void assert_nothing_left(const char *dir, const char *name) {
  DIR *d = opendir(dir);
  struct dirent *e;
  size_t n = strlen(name);
  assert_non_null(d);
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, name, n) && (!e->d_name[n] || !strncmp(e->d_name + n, ".tmp-", 5)))
      fail_msg("%s/%s was left behind", dir, e->d_name);
  closedir(d);
}

/* ---- full dump and load --------------------------------------------------------------- */
typedef struct prog {
  uint64_t calls, done, total;
} prog;

static void on_progress(void *arg, uint64_t done, uint64_t total) {
  prog *p = arg;
  p->calls++;
  p->done = done;
  p->total = total;
}

static void dump_full_roundtrip(void **state) {
  (void)state;
  char *dir = new_dir("dump_full");
  char *src = tu_path(dir, "src"), *file = tu_path(dir, "full.dump"), *dst = tu_path(dir, "dst");
  char *file2 = tu_path(dir, "again.dump"), *dst2 = tu_path(dir, "dst2");
  gen g = {.rng = tu_seed("dump_full_roundtrip")};
  sl_store *st = create_open(src, NULL), *lt;
  gen_many(st, &g, 400, 12);
  sl_tx *tx; /* a value larger than a chunk gets a chunk of its own */
  size_t big = SL_DUMP_CHUNK_RAW + 12345;
  uint8_t *blob = malloc(big);
  for (size_t i = 0; i < big; i++) blob[i] = (uint8_t)(i * 7 + (i >> 9));
  sl_value bv = {.kind = SL_BYTES, .len = big, .u.bytes = blob};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_set_node_prop(tx, g.nodes[0], "blob", &bv));
  uint64_t last;
  OK(sl_tx_commit(tx, &last));
  free(blob);
  gen_many(st, &g, 50, 5);
  last = applied(st);

  prog p = {0};
  sl_dump_info info;
  sl_dump_options o = {.progress = on_progress, .progress_arg = &p};
  OK(dump_file(st, file, false, &o, &info));
  assert_int_equal(info.header.kind, SL_DUMP_FULL);
  assert_int_equal(info.header.first_txid, 1);
  assert_int_equal(info.header.last_txid, last);
  assert_memory_equal(info.header.store_id, sl_store_id(st), SL_STORE_ID_SIZE);
  assert_true(info.records > 0);
  assert_true(p.calls >= 2);
  assert_int_equal(p.done, p.total);
  assert_int_equal(p.done, info.records);
  assert_true(info.file_bytes < info.raw_bytes); /* lz4 did something */

  sl_dump_info vi;
  OK(sl_dump_verify(file, NULL, NULL, &vi));
  assert_int_equal(vi.records, info.records);
  assert_int_equal(vi.raw_bytes, info.raw_bytes);
  assert_int_equal(vi.file_bytes, info.file_bytes);

  prog lp = {0};
  sl_load_options lo = {.progress = on_progress, .progress_arg = &lp};
  OK(sl_load_full(file, dst, &lo, NULL));
  assert_int_equal(lp.done, lp.total);
  assert_nothing_left(dir, "dst.tmp"); /* only dst itself */
  lt = open_rw(dst);
  assert_memory_equal(sl_store_id(lt), sl_store_id(st), SL_STORE_ID_SIZE);
  assert_same_state(st, lt);

  /* Both go on from the same point and stay equal: next txid, next ids. */
  g.us = 0;
  gen g2 = g;
  g2.nodes = malloc(g.cap * sizeof *g.nodes);
  memcpy(g2.nodes, g.nodes, g.nn * sizeof *g.nodes);
  assert_int_equal(gen_tx(st, &g, 6), last + 1);
  assert_int_equal(gen_tx(lt, &g2, 6), last + 1);
  sl_store_close(lt);
  lt = open_rw(dst); /* reopen: log and LMDB agree */
  assert_int_equal(applied(lt), last + 1);

  /* A dump of the loaded store loads again (its log starts past 1). */
  OK(dump_file(lt, file2, false, NULL, NULL));
  OK(sl_load_full(file2, dst2, NULL, NULL));
  sl_store *l2 = open_rw(dst2);
  assert_same_state(lt, l2);
  sl_store_close(l2);

  /* The target must be missing or empty. */
  ERR(SL_EEXIST, sl_load_full(file, dst2, NULL, NULL));
  sl_store_close(lt);
  sl_store_close(st);
  free(g.nodes);
  free(g2.nodes);
  free(src), free(file), free(dst), free(file2), free(dst2);
  done_dir(dir);
}

/* A full dump of a store that never committed, and of a read-only handle. */
static void dump_empty_store(void **state) {
  (void)state;
  char *dir = new_dir("dump_empty");
  char *src = tu_path(dir, "src"), *file = tu_path(dir, "e.dump"), *inc = tu_path(dir, "i.dump");
  char *dst = tu_path(dir, "dst");
  OK(sl_store_create(src, NULL));
  sl_store *ro, *st;
  OK(sl_store_open(src, SL_OPEN_RDONLY, &ro));
  sl_dump_info info;
  OK(dump_file(ro, file, false, NULL, &info));
  assert_int_equal(info.header.last_txid, 0);
  /* The log has no durable mark yet: an empty incremental, not "no limit". */
  OK(dump_file(ro, inc, true, NULL, &info));
  assert_int_equal(info.records, 0);
  assert_int_equal(info.header.first_txid, 1);
  assert_int_equal(info.header.last_txid, 0);
  sl_store_close(ro);
  OK(sl_load_full(file, dst, NULL, NULL));
  st = open_rw(dst);
  sl_load_result res;
  OK(sl_load_incremental(inc, st, NULL, &res));
  assert_int_equal(res.applied, 0);
  gen g = {.rng = 7};
  assert_int_equal(gen_tx(st, &g, 3), 1);
  sl_store_close(st);
  free(g.nodes);
  free(src), free(file), free(inc), free(dst);
  done_dir(dir);
}

/* ---- incremental chains ------------------------------------------------------------------ */
static void dump_incremental_chain(void **state) {
  (void)state;
  char *dir = new_dir("dump_chain");
  char *src = tu_path(dir, "src"), *full = tu_path(dir, "full.dump"), *dst = tu_path(dir, "dst");
  char *i1 = tu_path(dir, "i1.dump"), *i2 = tu_path(dir, "i2.dump"), *i3 = tu_path(dir, "i3.dump");
  char *ov = tu_path(dir, "overlap.dump"), *other = tu_path(dir, "other"), *oi = tu_path(dir, "other.dump");
  char *dst2 = tu_path(dir, "dst2");
  gen g = {.rng = tu_seed("dump_incremental_chain"), .us = sl_now_us() - 3600ull * 1000000};
  sl_store *st = create_open(src, NULL), *lt;
  sl_dump_info info, f1, f2, f3;
  sl_load_result res;

  gen_many(st, &g, 100, 8);
  OK(dump_file(st, full, false, NULL, &info));
  uint64_t a = info.header.last_txid;

  gen_many(st, &g, 60, 8);
  sl_dump_options o1 = {.from_txid = a + 1, .chunk_raw = 512};
  OK(dump_file(st, i1, true, &o1, &f1));
  assert_int_equal(f1.header.kind, SL_DUMP_INCREMENTAL);
  assert_int_equal(f1.header.first_txid, a + 1);
  assert_int_equal(f1.header.last_txid, applied(st));
  assert_int_equal(f1.records, 60);
  uint64_t b = f1.header.last_txid, b_us = g.us - 1000; /* commit time of txid b */
  assert_int_equal(f1.header.last_commit_us, b_us);

  gen_many(st, &g, 40, 8);
  sl_dump_options o2 = {.has_since = true, .since_us = b_us}; /* after txid b's time */
  OK(dump_file(st, i2, true, &o2, &f2));
  assert_int_equal(f2.header.first_txid, b + 1);
  assert_int_equal(f2.header.since_us, b_us);
  assert_int_equal(f2.records, 40);

  gen_many(st, &g, 30, 8);
  sl_dump_options o3 = {.from_txid = f2.header.last_txid + 1};
  OK(dump_file(st, i3, true, &o3, &f3));
  assert_int_equal(f3.records, 30);
  /* Nothing new yet: an empty file that still follows. */
  sl_dump_options o4 = {.from_txid = f3.header.last_txid + 1};
  char *i4 = tu_path(dir, "i4.dump");
  OK(dump_file(st, i4, true, &o4, &info));
  assert_int_equal(info.records, 0);
  assert_int_equal(info.header.first_txid, f3.header.last_txid + 1);
  /* --since later than everything: empty too. */
  sl_dump_options o5 = {.has_since = true, .since_us = g.us + 5000000};
  OK(dump_file(st, ov, true, &o5, &info));
  assert_int_equal(info.records, 0);
  assert_int_equal(info.header.first_txid, f3.header.last_txid + 1);
  /* A start past the durable txid + 1 is refused. */
  sl_dump_options o6 = {.from_txid = f3.header.last_txid + 2};
  ERR(SL_EINVAL, dump_file(st, ov, true, &o6, NULL));

  OK(sl_load_full(full, dst, NULL, NULL));
  lt = open_rw(dst);
  ERR(SL_EGAP, sl_load_incremental(i2, lt, NULL, NULL)); /* i1 is missing */
  assert_int_equal(applied(lt), a);
  ERR(SL_EINVAL, sl_load_incremental(full, lt, NULL, NULL));
  OK(sl_load_incremental(i1, lt, NULL, &res));
  assert_int_equal(res.applied, 60);
  assert_int_equal(res.from_txid, a);
  assert_int_equal(res.to_txid, b);
  ERR(SL_EINVAL, sl_load_full(i1, dst2, NULL, NULL));
  assert_false(exists(dst2));
  OK(sl_load_incremental(i2, lt, NULL, &res));
  OK(sl_load_incremental(i3, lt, NULL, &res));
  OK(sl_load_incremental(i4, lt, NULL, &res));
  assert_int_equal(res.applied, 0);
  assert_same_state(st, lt);
  ERR(SL_EEXIST, sl_load_incremental(i1, lt, NULL, NULL)); /* the store is past it */

  /* Overlap: a file from txid a-9 onto a store at txid a skips 10. */
  sl_store_close(lt);
  OK(sl_remove_tree(dst));
  OK(sl_load_full(full, dst, NULL, NULL));
  lt = open_rw(dst);
  sl_dump_options oo = {.from_txid = a - 9};
  OK(dump_file(st, ov, true, &oo, NULL));
  OK(sl_load_incremental(ov, lt, NULL, &res));
  assert_int_equal(res.skipped, 10);
  assert_int_equal(res.applied, applied(st) - a);
  assert_same_state(st, lt);

  /* Another store's file. */
  sl_store *os = create_open(other, NULL);
  gen go = {.rng = 99};
  gen_many(os, &go, 5, 3);
  sl_dump_options oa = {.from_txid = 1};
  OK(dump_file(os, oi, true, &oa, NULL));
  ERR(SL_ESTOREID, sl_load_incremental(oi, lt, NULL, NULL));
  sl_store_close(os);

  sl_store_close(lt);
  sl_store_close(st);
  free(g.nodes);
  free(go.nodes);
  free(src), free(full), free(dst), free(i1), free(i2), free(i3), free(i4), free(ov), free(other), free(oi);
  free(dst2);
  done_dir(dir);
}

/* Pruned logs: a start before the oldest kept segment is refused, and so is
 * a --since that the kept log cannot prove complete. */
static void dump_incremental_pruned(void **state) {
  (void)state;
  char *dir = new_dir("dump_pruned");
  char *src = tu_path(dir, "src"), *file = tu_path(dir, "i.dump"), *logdir = tu_path(src, "log");
  sl_store_options so = {.segment_size = 4096};
  uint64_t us0 = sl_now_us() - 3600ull * 1000000; /* txid t commits at us0 + (t - 1) ms */
  gen g = {.rng = tu_seed("dump_incremental_pruned"), .us = us0};
  sl_store *st = create_open(src, &so);
  gen_many(st, &g, 300, 6);
  OK(sl_store_checkpoint(st)); /* prunes old segments */
  sl_store_close(st);
  sl_seg_info *segs;
  size_t nseg;
  OK(sl_log_list(logdir, &segs, &nseg));
  uint64_t oldest = segs[0].first_txid;
  free(segs);
  assert_true(oldest > 1);
  OK(sl_store_open(src, SL_OPEN_RDONLY, &st));
  sl_dump_options o = {.from_txid = oldest - 1};
  ERR(SL_ENOTFOUND, dump_file(st, file, true, &o, NULL));
  sl_dump_options s = {.has_since = true, .since_us = 1};
  ERR(SL_ENOTFOUND, dump_file(st, file, true, &s, NULL));
  /* After the oldest kept txid's time: the log holds all that follows. */
  sl_dump_options s2 = {.has_since = true, .since_us = us0 + (oldest - 1) * 1000};
  sl_dump_info info;
  OK(dump_file(st, file, true, &s2, &info));
  assert_int_equal(info.header.first_txid, oldest + 1);
  assert_int_equal(info.records, 300 - oldest);
  sl_dump_options o2 = {.from_txid = oldest};
  OK(dump_file(st, file, true, &o2, &info));
  assert_int_equal(info.records, 301 - oldest);
  sl_store_close(st);
  free(g.nodes);
  free(src), free(file), free(logdir);
  done_dir(dir);
}

/* ---- damage ---------------------------------------------------------------------------- */
static bool damage_code(int rc) {
  return rc == SL_ECORRUPT || rc == SL_ENOTLOG || rc == SL_EVERSION || rc == SL_ETRUNCATED;
}

/* Offsets of every chunk header (the trailer's last). */
static size_t chunk_offsets(const uint8_t *b, size_t len, size_t *offs, size_t max) {
  size_t n = 0, off = SL_DUMP_HEADER_SIZE;
  while (off + SL_DUMP_CHUNK_HEADER_SIZE <= len && n < max) {
    offs[n++] = off;
    off += SL_DUMP_CHUNK_HEADER_SIZE + sl_get_le32(b + off + 4);
  }
  assert_int_equal(off, len);
  return n;
}

/* A scratch directory on tmpfs when there is one: a failed full load has
 * created and removed a store (a dozen fsyncs) before it reaches a damaged
 * trailer, and this test does that for thousands of files. */
static char *fast_dir(const char *name) {
  struct stat sb;
  if (stat("/dev/shm", &sb) || !S_ISDIR(sb.st_mode) || access("/dev/shm", W_OK)) return new_dir(name);
  char *d = malloc(128);
  snprintf(d, 128, "/dev/shm/shiplog-%s.%d", name, (int)getpid());
  sl_remove_tree(d);
  OK(sl_mkdir_p(d));
  return d;
}

static void dump_every_byte_flip(void **state) {
  (void)state;
  char *dir = fast_dir("dump_flip");
  char *src = tu_path(dir, "src"), *full = tu_path(dir, "full.dump"), *inc = tu_path(dir, "inc.dump");
  char *bad = tu_path(dir, "bad.dump"), *dst = tu_path(dir, "dst"), *base = tu_path(dir, "base");
  gen g = {.rng = tu_seed("dump_every_byte_flip"), .us = sl_now_us() - 3600ull * 1000000};
  sl_store *st = create_open(src, NULL), *bt;
  gen_many(st, &g, 3, 3);
  OK(dump_file(st, full, false, NULL, NULL)); /* the base for the incremental */
  OK(sl_load_full(full, base, NULL, NULL));
  uint64_t a = applied(st);
  sl_store_close(st);
  OK(sl_store_open(src, SL_OPEN_RDONLY, &st));
  sl_dump_options small = {.chunk_raw = 200}; /* several chunks from a small store */
  OK(dump_file(st, full, false, &small, NULL));
  sl_store_close(st);
  st = open_rw(src);
  gen_many(st, &g, 10, 3);
  sl_dump_options io = {.from_txid = a + 1, .chunk_raw = 200};
  OK(dump_file(st, inc, true, &io, NULL));
  sl_store_close(st);
  bt = open_rw(base);

  size_t flen, ilen, offs[256];
  uint8_t *fb = read_all(full, &flen), *ib = read_all(inc, &ilen);
  assert_true(chunk_offsets(fb, flen, offs, 256) >= 4);
  assert_true(chunk_offsets(ib, ilen, offs, 256) >= 3);
  fprintf(stderr, "flipping each of %zu + %zu bytes\n", flen, ilen);
  for (int pass = 0; pass < 2; pass++) {
    const uint8_t *orig = pass ? ib : fb;
    size_t len = pass ? ilen : flen;
    uint8_t *b = malloc(len);
    for (size_t i = 0; i < len; i++) {
      memcpy(b, orig, len);
      b[i] ^= (uint8_t)(1u << (i % 8)); /* one bit, at every bit position in turn */
      if (i % 3 == 0) b[i] = (uint8_t)~orig[i];
      write_all(bad, b, len);
      tu_capture_begin();
      int rc = pass ? sl_load_incremental(bad, bt, NULL, NULL) : sl_load_full(bad, dst, NULL, NULL);
      int vrc = sl_dump_verify(bad, NULL, NULL, NULL);
      char *err = tu_capture_end();
      if (!damage_code(rc) || !damage_code(vrc))
        fail_msg("%s dump, byte %zu flipped: load %s, verify %s", pass ? "incremental" : "full", i, sl_errname(rc),
                 sl_errname(vrc));
      if (!strstr(err, ": offset ")) fail_msg("byte %zu: no offset named in: %s", i, err);
      free(err);
      if (pass) assert_int_equal(applied(bt), a);
      else assert_nothing_left(dir, "dst");
    }
    free(b);
  }
  /* The intact files still load. */
  OK(sl_load_incremental(inc, bt, NULL, NULL));
  OK(sl_load_full(full, dst, NULL, NULL));
  sl_store_close(bt);
  free(fb), free(ib), free(g.nodes);
  free(src), free(full), free(inc), free(bad), free(dst), free(base);
  done_dir(dir);
}

static void dump_truncation_detected(void **state) {
  (void)state;
  char *dir = new_dir("dump_trunc");
  char *src = tu_path(dir, "src"), *full = tu_path(dir, "full.dump"), *bad = tu_path(dir, "bad.dump");
  char *dst = tu_path(dir, "dst");
  gen g = {.rng = tu_seed("dump_truncation_detected")};
  sl_store *st = create_open(src, NULL);
  gen_many(st, &g, 30, 6);
  sl_dump_options o = {.chunk_raw = 1024};
  OK(dump_file(st, full, false, &o, NULL));
  sl_store_close(st);
  size_t len, offs[1024];
  uint8_t *b = read_all(full, &len);
  size_t n = chunk_offsets(b, len, offs, 1024);
  assert_true(n >= 5);
  /* At every chunk boundary, inside every chunk header, inside every
   * chunk's stored bytes and inside the trailer. */
  for (size_t k = 0; k < n; k++) {
    size_t at = offs[k], end = k + 1 < n ? offs[k + 1] : len;
    size_t cuts[] = {at, at + 1, at + 8, at + 15, at + 16, (at + 16 + end) / 2, end - 1};
    for (size_t c = 0; c < SL_ARRAY_LEN(cuts); c++) {
      size_t cut = cuts[c];
      write_all(bad, b, cut);
      tu_capture_begin();
      int rc = sl_load_full(bad, dst, NULL, NULL);
      char *err = tu_capture_end();
      if (rc != SL_ETRUNCATED) fail_msg("cut at %zu: %s", cut, sl_errname(rc));
      if (!strstr(err, ": offset ")) fail_msg("cut at %zu: no offset in %s", cut, err);
      free(err);
      assert_nothing_left(dir, "dst");
    }
  }
  for (size_t cut = 0; cut < SL_DUMP_HEADER_SIZE; cut += 37) {
    write_all(bad, b, cut);
    tu_capture_begin();
    ERR(SL_ETRUNCATED, sl_load_full(bad, dst, NULL, NULL));
    free(tu_capture_end());
  }
  /* Bytes after the trailer. */
  uint8_t *more = malloc(len + 1);
  memcpy(more, b, len);
  more[len] = 0;
  write_all(bad, more, len + 1);
  tu_capture_begin();
  ERR(SL_ECORRUPT, sl_load_full(bad, dst, NULL, NULL));
  char *err = tu_capture_end();
  char want[64];
  snprintf(want, sizeof want, ": offset %zu: data after the trailer", len);
  if (!strstr(err, want)) fail_msg("expected '%s' in: %s", want, err);
  free(err);
  assert_nothing_left(dir, "dst");
  free(more), free(b), free(g.nodes);
  free(src), free(full), free(bad), free(dst);
  done_dir(dir);
}

/* A write error (here: a read-only fd) fails the dump with -errno. */
static void dump_write_error(void **state) {
  (void)state;
  char *dir = new_dir("dump_werr");
  char *src = tu_path(dir, "src"), *file = tu_path(dir, "x");
  gen g = {.rng = 3};
  sl_store *st = create_open(src, NULL);
  gen_many(st, &g, 10, 4);
  write_all(file, (const uint8_t *)"", 0);
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  tu_capture_begin();
  ERR(-EBADF, sl_dump_full(st, fd, NULL, NULL));
  free(tu_capture_end());
  close(fd);
  sl_store_close(st);
  free(g.nodes), free(src), free(file);
  done_dir(dir);
}

/* ---- forged files: valid checksums around bad contents --------------------------------- */
typedef struct forge {
  uint8_t buf[8192];
  size_t len;       /* raw bytes of the one chunk */
  uint64_t records;
} forge;

static void forge_record(forge *f, unsigned db, const void *key, size_t klen, const void *val, size_t vlen) {
  uint8_t *p = f->buf + f->len;
  p[0] = (uint8_t)db;
  sl_put_le32(p + 1, (uint32_t)klen);
  sl_put_le32(p + 5, (uint32_t)vlen);
  memcpy(p + 9, key, klen);
  memcpy(p + 9 + klen, val, vlen);
  f->len += 9 + klen + vlen;
  f->records++;
}

static void forge_meta_u64(forge *f, const char *name, uint64_t v) {
  uint8_t b[8];
  sl_put_le64(b, v);
  forge_record(f, 0, name, strlen(name), b, 8);
}

/* Header + one raw chunk + trailer, every CRC right. */
static void forge_write(const char *path, const sl_dump_header *h, const forge *f, uint64_t count_delta) {
  uint8_t out[SL_DUMP_HEADER_SIZE + 2 * SL_DUMP_CHUNK_HEADER_SIZE + sizeof f->buf + SL_DUMP_TRAILER_SIZE];
  size_t n = SL_DUMP_HEADER_SIZE;
  sl_dump_header_encode(h, out);
  if (f->len) {
    uint8_t *c = out + n;
    sl_put_le32(c, (uint32_t)f->len);
    sl_put_le32(c + 4, (uint32_t)f->len);
    sl_put_le32(c + 8, 0);
    memcpy(c + 16, f->buf, f->len);
    sl_put_le32(c + 12, sl_crc32c(sl_crc32c(0, c, 12), f->buf, f->len));
    n += 16 + f->len;
  }
  uint8_t *t = out + n;
  memset(t, 0, 32);
  sl_put_le32(t + 4, SL_DUMP_TRAILER_SIZE);
  sl_put_le64(t + 16, f->records + count_delta);
  sl_put_le32(t + 24, sl_crc32c(0, f->buf, f->len));
  sl_put_le32(t + 12, sl_crc32c(sl_crc32c(0, t, 12), t + 16, 16));
  write_all(path, out, n + 32);
}

/* Load `path` into `dst`; expect `code` and `text` in the message. */
static void expect_refusal(const char *path, const char *dst, int code, const char *text) {
  tu_capture_begin();
  int rc = sl_load_full(path, dst, NULL, NULL);
  char *err = tu_capture_end();
  if (rc != code || !strstr(err, text))
    fail_msg("expected %s with '%s', got %s: %s", sl_errname(code), text, sl_errname(rc), err);
  free(err);
  assert_false(exists(dst));
}

static void dump_forged_contents(void **state) {
  (void)state;
  char *dir = new_dir("dump_forged");
  char *file = tu_path(dir, "f.dump"), *dst = tu_path(dir, "dst"), *ok = tu_path(dir, "ok");
  uint8_t id[SL_STORE_ID_SIZE] = {1, 2, 3};
  sl_dump_header h = {.kind = SL_DUMP_FULL, .first_txid = 1, .last_txid = 0};
  memcpy(h.store_id, id, sizeof id);
  uint8_t k1[8] = {0, 0, 0, 0, 0, 0, 0, 1}, k2[8] = {0, 0, 0, 0, 0, 0, 0, 2};

  /* A minimal valid image: meta only, then one node. */
  forge f = {0};
  forge_meta_u64(&f, "applied_txid", 0);
  forge_meta_u64(&f, "format_version", 1);
  forge_meta_u64(&f, "last_commit_us", 0);
  forge_meta_u64(&f, "next_node_id", 2);
  forge_meta_u64(&f, "next_rel_id", 1);
  forge_meta_u64(&f, "node_count", 1);
  forge_meta_u64(&f, "rel_count", 0);
  forge_record(&f, 0, "store_id", 8, id, sizeof id);
  forge valid = f;
  forge_record(&valid, 1, k1, 8, "", 0);
  forge_write(file, &h, &valid, 0);
  OK(sl_load_full(file, ok, NULL, NULL));
  sl_store *st = open_rw(ok);
  sl_node n;
  sl_view *v;
  OK(sl_view_begin(st, &v));
  OK(sl_view_node(v, 1, &n));
  sl_view_end(v);
  sl_store_close(st);

  forge g = f;
  forge_record(&g, 10, k1, 8, "", 0); /* past the last database (index, 9) */
  forge_write(file, &h, &g, 0);
  expect_refusal(file, dst, SL_ECORRUPT, "unknown database index 10");

  g = f;
  forge_record(&g, 1, k2, 8, "", 0);
  forge_record(&g, 1, k1, 8, "", 0);
  forge_write(file, &h, &g, 0);
  expect_refusal(file, dst, SL_ECORRUPT, "keys of nodes out of order");

  g = f;
  forge_record(&g, 2, k1, 8, "", 0);
  forge_record(&g, 1, k2, 8, "", 0);
  forge_write(file, &h, &g, 0);
  expect_refusal(file, dst, SL_ECORRUPT, "database 1 after database 2");

  forge_write(file, &h, &valid, 1);
  expect_refusal(file, dst, SL_ECORRUPT, "the trailer does not match the chunks");

  g = valid;
  g.buf[(9 + strlen("applied_txid") + 8) + 9 + strlen("format_version")] = 3; /* the 2nd record: format_version (this build reads 1 and 2) */
  forge_write(file, &h, &g, 0);
  expect_refusal(file, dst, SL_EVERSION, "LMDB format version 3 is not supported");

  sl_dump_header h2 = h;
  h2.last_txid = 5; /* the image says 0 */
  forge_write(file, &h2, &valid, 0);
  expect_refusal(file, dst, SL_ECORRUPT, "the image is at txid 0, the header says 5");

  h2 = h;
  snprintf(h2.key_id, sizeof h2.key_id, "k1");
  forge_write(file, &h2, &valid, 0);
  expect_refusal(file, dst, SL_ENOTFOUND, "offset 0: the file is sealed with key k1, and no key file");

  uint8_t b[SL_DUMP_HEADER_SIZE];
  sl_dump_header_encode(&h, b);
  b[8] = 2; /* version 2 (sealed) without a key id, CRC fixed up */
  sl_put_le32(b + 124, sl_crc32c(0, b, 124));
  write_all(file, b, sizeof b);
  expect_refusal(file, dst, SL_ECORRUPT, "offset 0: damaged header");
  b[8] = 3;
  sl_put_le32(b + 124, sl_crc32c(0, b, 124));
  write_all(file, b, sizeof b);
  expect_refusal(file, dst, SL_EVERSION, "offset 0: dump format version not supported");

  /* An incremental whose frames skip a txid. */
  sl_dump_header hi = {.kind = SL_DUMP_INCREMENTAL, .first_txid = 1, .last_txid = 2};
  memcpy(hi.store_id, id, sizeof id);
  forge fi = {0};
  for (uint64_t txid = 1; txid <= 3; txid += 2) {
    uint8_t payload[32];
    size_t plen = 0; /* field 1 (txid) and 2 (commit time) as varints */
    payload[plen++] = 0x08;
    payload[plen++] = (uint8_t)txid;
    payload[plen++] = 0x10;
    payload[plen++] = 1;
    sl_frame_header_encode(payload, (uint32_t)plen, fi.buf + fi.len);
    memcpy(fi.buf + fi.len + SL_FRAME_HEADER_SIZE, payload, plen);
    fi.len += SL_FRAME_HEADER_SIZE + plen;
    fi.records++;
  }
  forge_write(file, &hi, &fi, 0);
  tu_capture_begin();
  int rc = sl_dump_verify(file, NULL, NULL, NULL);
  char *err = tu_capture_end();
  if (rc != SL_ECORRUPT || !strstr(err, "holds txid 3 where 2 was expected")) fail_msg("%s: %s", sl_errname(rc), err);
  free(err);
  free(file), free(dst), free(ok);
  done_dir(dir);
}

/* ---- a dump beside a writer ------------------------------------------------------------ */
typedef struct writer_arg {
  sl_store *st;
  gen g;
  atomic_bool stop;
  uint64_t txs;
} writer_arg;

static void *writer_main(void *p) {
  writer_arg *w = p;
  while (!atomic_load(&w->stop)) {
    gen_tx(w->st, &w->g, 1 + (int)tu_rand_below(&w->g.rng, 20));
    w->txs++;
  }
  return NULL;
}

/* A no-log store holding the source log's txids 1..upto. */
static sl_store *replay_to(const char *logdir, const char *dir, uint64_t upto) {
  sl_store_options so = {.no_log = true};
  sl_store *rs;
  sl_log_reader *r;
  sl_frame f;
  OK(sl_store_create(dir, &so));
  OK(sl_store_open(dir, SL_OPEN_NOLOG, &rs));
  if (!upto) return rs;
  sl_log_reader_options ro = {.max_txid = upto};
  OK(sl_log_reader_open(logdir, 1, &ro, &r));
  enum { BATCH = 500 };
  uint8_t *bufs[BATCH];
  const uint8_t *ptrs[BATCH];
  size_t lens[BATCH], n = 0;
  int rc;
  while ((rc = sl_log_reader_next(r, &f)) == 0 || n) {
    if (rc == 0) {
      bufs[n] = malloc(f.payload_len);
      memcpy(bufs[n], f.payload, f.payload_len);
      ptrs[n] = bufs[n];
      lens[n++] = f.payload_len;
    }
    if (n == BATCH || (rc && n)) {
      OK(sl_store_apply_batch(rs, ptrs, lens, n));
      while (n) free(bufs[--n]);
    }
    if (rc) break;
  }
  ERR(SL_EEND, rc);
  sl_log_reader_close(r);
  assert_int_equal(applied(rs), upto);
  return rs;
}

static void dump_beside_writer(void **state) {
  (void)state;
  char *dir = new_dir("dump_live");
  char *src = tu_path(dir, "src"), *logdir = tu_path(src, "log");
  writer_arg w = {.g = {.rng = tu_seed("dump_beside_writer")}};
  w.st = create_open(src, NULL);
  gen_many(w.st, &w.g, 300, 40); /* enough that a dump takes a while */
  uint64_t before = applied(w.st);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
  enum { DUMPS = 4 };
  sl_dump_info info[DUMPS];
  char *files[DUMPS];
  for (int i = 0; i < DUMPS; i++) {
    char name[32];
    snprintf(name, sizeof name, "live%d.dump", i);
    files[i] = tu_path(dir, name);
    sl_dump_options o = {.chunk_raw = 4096};
    OK(dump_file(w.st, files[i], false, &o, &info[i]));
    usleep(20000);
  }
  atomic_store(&w.stop, true);
  pthread_join(t, NULL);
  fprintf(stderr, "dumps at txids %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " (writer from %" PRIu64 " to %" PRIu64
                  ", %" PRIu64 " commits)\n",
          info[0].header.last_txid, info[1].header.last_txid, info[2].header.last_txid, info[3].header.last_txid,
          before, applied(w.st), w.txs);
  for (int i = 0; i < DUMPS; i++) {
    char name[32], rname[32];
    snprintf(name, sizeof name, "load%d", i);
    snprintf(rname, sizeof rname, "replay%d", i);
    char *ld = tu_path(dir, name), *rd = tu_path(dir, rname);
    OK(sl_load_full(files[i], ld, NULL, NULL));
    sl_store *l, *r = replay_to(logdir, rd, info[i].header.last_txid);
    OK(sl_store_open(ld, SL_OPEN_RDONLY, &l));
    assert_same_state(l, r);
    sl_store_close(l);
    if (i == 0) { /* a standby (no log of its own) dumps to a store with a log */
      char *sf = tu_path(dir, "standby.dump"), *sd = tu_path(dir, "from_standby");
      ERR(SL_EINVAL, dump_file(r, sf, true, NULL, NULL));
      OK(dump_file(r, sf, false, NULL, NULL));
      OK(sl_load_full(sf, sd, NULL, NULL));
      sl_store *s2 = open_rw(sd);
      assert_same_state(r, s2);
      gen g2 = {.rng = 5};
      assert_int_equal(gen_tx(s2, &g2, 2), info[i].header.last_txid + 1);
      sl_store_close(s2);
      free(g2.nodes), free(sf), free(sd);
    }
    sl_store_close(r);
    free(ld), free(rd), free(files[i]);
  }
  sl_store_close(w.st);
  free(w.g.nodes), free(src), free(logdir);
  done_dir(dir);
}

/* An incremental file whose header says nothing of the history before it,
 * as files written before the field (dump.h flags bit 1) are. */
static void strip_prev_checksum(const char *path) {
  size_t len;
  uint8_t *b = read_all(path, &len);
  sl_dump_header h;
  OK(sl_dump_header_decode(b, &h));
  h.has_prev_checksum = false;
  h.prev_checksum = 0;
  sl_dump_header_encode(&h, b);
  write_all(path, b, len);
  free(b);
}

/* Load the incremental FILE onto st and expect the refusal of a diverged
 * history naming `want` (a phrase and the txid), st left as it was. */
static void assert_refused(const char *file, sl_store *st, const char *want) {
  char *before = snapshot(st);
  tu_capture_begin();
  int rc = sl_load_incremental(file, st, NULL, NULL);
  char *err = tu_capture_end();
  if (rc != SL_EGAP) fail_msg("%s: %s, expected SL_EGAP; stderr: %s", file, sl_errname(rc), err);
  if (!strstr(err, want)) fail_msg("the refusal does not say \"%s\": %s", want, err);
  if (!strstr(err, "nothing was loaded")) fail_msg("the refusal does not say nothing was loaded: %s", err);
  char *after = snapshot(st);
  assert_string_equal(before, after);
  free(before), free(after), free(err);
}

/* A generator of another history over the same first nodes. */
static gen fork_gen(const gen *g, uint64_t seed) {
  gen f = {.rng = seed, .cap = g->cap ? g->cap : 1};
  f.nodes = malloc(f.cap * sizeof *f.nodes);
  memcpy(f.nodes, g->nodes, g->nn * sizeof *g->nodes);
  f.nn = g->nn;
  return f;
}

/* No silent merges (dump.h LOADING): a store that holds other transactions
 * under txids an incremental holds too refuses the file, naming the first
 * differing txid, and stays as it was; the same history loads and skips
 * them. Files without cs(first - 1) are compared on the txids both hold. */
static void dump_incremental_diverged(void **state) {
  (void)state;
  char *dir = new_dir("dump_diverged");
  char *src = tu_path(dir, "src"), *full = tu_path(dir, "full.dump"), *a = tu_path(dir, "a"), *b = tu_path(dir, "b");
  char *inc = tu_path(dir, "inc.dump"), *late = tu_path(dir, "late.dump"), *head = tu_path(dir, "head.dump");
  char *old = tu_path(dir, "old.dump"), *logdir = tu_path(src, "log");
  char *b2 = tu_path(dir, "b2"), *b3 = tu_path(dir, "b3");
  gen g = {.rng = tu_seed("dump_incremental_diverged")};
  sl_store *st = create_open(src, NULL), *sa, *sb;
  sl_dump_info info;
  sl_load_result res;
  uint64_t cs50;

  gen_many(st, &g, 50, 6); /* txids 1..50 */
  OK(dump_file(st, full, false, NULL, &info));
  assert_true(info.header.has_lineage);
  OK(sl_load_full(full, a, NULL, NULL));
  OK(sl_load_full(full, b, NULL, NULL));
  gen ga = fork_gen(&g, 99);
  gen_many(st, &g, 10, 6); /* 51..60 */
  gen gb = fork_gen(&g, 98); /* B continues the source's 60: its nodes, not those of 50 */
  sl_dump_options oh = {.from_txid = 51};
  OK(dump_file(st, head, true, &oh, NULL));
  gen_many(st, &g, 20, 6); /* 61..80 */
  sl_dump_options o = {.from_txid = 51, .chunk_raw = 512};
  OK(dump_file(st, inc, true, &o, &info));
  /* The file carries cs(50), the source's. */
  assert_true(info.header.has_prev_checksum);
  assert_false(info.header.has_lineage);
  OK(sl_log_checksum_at(logdir, 50, &cs50));
  assert_true(info.header.prev_checksum == cs50);
  uint64_t cs80; /* and the writer and a reader know the history's end */
  sl_dump_info vi;
  OK(sl_log_checksum_at(logdir, 80, &cs80));
  assert_true(info.has_end_checksum && info.end_checksum == cs80);
  OK(sl_dump_verify(inc, NULL, NULL, &vi));
  assert_true(vi.has_end_checksum && vi.end_checksum == cs80);
  sl_dump_options ol = {.from_txid = 56};
  OK(dump_file(st, late, true, &ol, NULL));
  OK(dump_file(st, old, true, &oh, NULL));
  strip_prev_checksum(old);

  /* A commits a txid 51 of its own (the case: it took 52..80). */
  sa = open_rw(a);
  gen_tx(sa, &ga, 3);
  assert_refused(inc, sa, "the first differing transaction is txid 51");
  assert_int_equal(applied(sa), 51);
  /* An older file is chained from A's own cs(50): txid 51 still differs. */
  assert_refused(old, sa, "the first differing transaction is txid 51");
  /* A file that starts after the fork can say only "at or before" where
   * it starts: A's cs(55) is not the source's. */
  gen_many(sa, &ga, 9, 3); /* 52..60 */
  assert_refused(late, sa, "the histories differ at or before txid 55");
  assert_int_equal(applied(sa), 60);

  /* B takes the source's 51..60, then commits 61..65 of its own: the
   * overlap 51..65 first differs at 61, exactly, in a new file and an old. */
  sb = open_rw(b);
  OK(sl_load_incremental(head, sb, NULL, &res));
  assert_int_equal(res.applied, 10);
  gen_many(sb, &gb, 5, 3);
  assert_refused(inc, sb, "the first differing transaction is txid 61");
  assert_refused(old, sb, "the first differing transaction is txid 61");
  assert_int_equal(applied(sb), 65);
  sl_store_close(sb);

  /* The same history: the overlap is skipped, the rest applied. */
  OK(sl_load_full(full, b2, NULL, NULL));
  sb = open_rw(b2);
  OK(sl_load_incremental(head, sb, NULL, &res));
  OK(sl_load_incremental(inc, sb, NULL, &res));
  assert_int_equal(res.skipped, 10);
  assert_int_equal(res.applied, 20);
  assert_same_state(st, sb);
  sl_store_close(sb);
  /* An older file loads too, with a warning. */
  OK(sl_load_full(full, b3, NULL, NULL));
  sb = open_rw(b3);
  tu_capture_begin();
  int rc = sl_load_incremental(old, sb, NULL, &res);
  char *err = tu_capture_end();
  OK(rc);
  assert_non_null(strstr(err, "an older file without the checksum"));
  free(err);
  assert_same_state(st, sb);
  sl_store_close(sb);
  sl_store_close(sa);
  sl_store_close(st);
  free(g.nodes), free(ga.nodes), free(gb.nodes);
  free(src), free(full), free(a), free(b), free(inc), free(late), free(head), free(old), free(logdir);
  free(b2), free(b3);
  done_dir(dir);
}

/* Header bytes 112..123 (failover lineage): kept when set; a header
 * without them (older files) decodes with the lineage unknown. */
static void dump_header_lineage(void **state) {
  (void)state;
  sl_dump_header h = {.kind = SL_DUMP_FULL, .first_txid = 1, .last_txid = 9, .epoch = 3, .has_lineage = true,
                      .checksum = 0x0123456789abcdefull},
                 g;
  uint8_t b[SL_DUMP_HEADER_SIZE];
  sl_dump_header_encode(&h, b);
  assert_int_equal(sl_dump_header_decode(b, &g), 0);
  assert_true(g.has_lineage);
  assert_int_equal(g.epoch, 3);
  assert_int_equal(g.checksum, 0x0123456789abcdefull);
  h.has_lineage = false;
  sl_dump_header_encode(&h, b);
  for (int i = 112; i < 124; i++) assert_int_equal(b[i], 0); /* as version 1 files have them */
  assert_int_equal(sl_dump_header_decode(b, &g), 0);
  assert_false(g.has_lineage);
  /* An incremental's cs(first - 1) (flags bit 1) uses the same bytes. */
  sl_dump_header i = {.kind = SL_DUMP_INCREMENTAL, .first_txid = 10, .last_txid = 12, .has_prev_checksum = true,
                      .prev_checksum = 0xfedcba9876543210ull};
  sl_dump_header_encode(&i, b);
  assert_int_equal(sl_dump_header_decode(b, &g), 0);
  assert_true(g.has_prev_checksum);
  assert_false(g.has_lineage);
  assert_true(g.prev_checksum == 0xfedcba9876543210ull);
  b[120] |= SL_DUMP_F_LINEAGE; /* both meanings at once: no writer does that */
  sl_put_le32(b + 124, sl_crc32c(0, b, 124));
  assert_int_equal(sl_dump_header_decode(b, &g), SL_ECORRUPT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dump_full_roundtrip),      cmocka_unit_test(dump_empty_store),
      cmocka_unit_test(dump_incremental_chain),   cmocka_unit_test(dump_incremental_pruned),
      cmocka_unit_test(dump_every_byte_flip),     cmocka_unit_test(dump_truncation_detected),
      cmocka_unit_test(dump_write_error),         cmocka_unit_test(dump_forged_contents),
      cmocka_unit_test(dump_beside_writer),       cmocka_unit_test(dump_header_lineage),
      cmocka_unit_test(dump_incremental_diverged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
