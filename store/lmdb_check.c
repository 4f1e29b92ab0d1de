/*
 * A structural check of data.mdb's B-trees, page by page, for what reads
 * every page (dump, export, verify) and for a standby's receiver: LMDB has
 * no page checksums, trusts every page it reaches, and meets a damaged one
 * with MDB_CORRUPTED at best; at worst with an assertion that aborts the
 * process (mdb_cursor_next on a page that is no longer a leaf) or with
 * silently wrong answers (a branch pointing at the wrong leaf: keys out of
 * order, lookups that miss keys that are there). This check reads the pages
 * of one read transaction's snapshot through a read-only map, each only once its
 * number is known to lie inside the file (data.mdb's size is checked at
 * open, and again here), before LMDB's cursors walk them, and refuses the first page that breaks a rule, naming the file, the
 * database, the page and its offset.
 *
 * LAYOUT (liblmdb 0.9, 64-bit builds; store.c's meta page notes agree):
 *   page header 16 bytes: pgno 8 | pad 2 | flags 2 | lower 2 | upper 2
 *   (an overflow page holds its page count at 12, 4 bytes); flags P_BRANCH
 *   1, P_LEAF 2, P_OVERFLOW 4, P_META 8 (P_DIRTY 0x10 and bits from 0x100
 *   up are LMDB's bookkeeping); node pointers (u16 offsets from the page
 *   start) from byte 16 up to `lower`, nodes from `upper` to the page end.
 *   node: lo 2 | hi 2 | flags 2 | ksize 2 | key | data; in a branch
 *   lo | hi << 16 | flags << 32 is the child's page number; in a leaf
 *   lo | hi << 16 is the data size, and flag F_BIGDATA 1 puts an 8-byte
 *   overflow page number in place of the data, F_SUBDATA 2 (main tree only)
 *   an MDB_db: pad 4 | flags 2 | depth 2 | branch pages 8 | leaf pages 8 |
 *   overflow pages 8 | entries 8 | root 8.
 *   meta page (pages 0 and 1, the one with the snapshot's txnid): at 16
 *   magic, version, address, mapsize, then the free-page tree's MDB_db at
 *   40 and the main tree's at 88, last page at 136, txnid at 144.
 *
 * RULES for every page reached from a root: its number lies in the file
 * and at most the meta's last page; its header's pgno is its own; it is a
 * branch or a leaf at the right depth (every leaf at the tree's depth);
 * 16 <= lower <= upper <= page size; every node lies wholly in the page;
 * keys increase within the tree in walk order and lie within the bounds the
 * branch above gives its child; overflow pages are overflow pages of their
 * own number and within the file; the pages and entries counted equal the
 * tree's MDB_db. Shiplog's databases use LMDB's default key order (memcmp,
 * then shorter first) and no DUPSORT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"

#define PAGE_HDR 16
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_TYPES 0x6fu /* branch, leaf, overflow, meta, leaf2, subp */
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define NODE_HDR 8
#define DB_SIZE 48
#define META_MAIN_DB (16 + 72)
#define META_LAST_PG 136
#define META_TXNID 144
#define MAX_DEPTH 32
#define KEY_MAX 511 /* LMDB's default largest key */
#define INVALID_PGNO UINT64_MAX

typedef struct tree {
  const char *name;
  uint64_t depth, branch_pages, leaf_pages, overflow_pages, entries, root;
} tree;

typedef struct key {
  const uint8_t *p; /* NULL: no bound */
  size_t n;
} key;

typedef struct checker {
  const char *dir;
  const uint8_t *map; /* data.mdb, mapped read-only for the check */
  unsigned psize;
  uint64_t last_pg, file_pages; /* file_pages: pages mapped */
  const uint8_t *prev; /* the last key walked (in the map), NULL: none yet */
  size_t prev_n;
  uint64_t n_branch, n_leaf, n_overflow, n_entries;
  const tree *t;
  void (*on_subdb)(struct checker *, const uint8_t *key, size_t klen, const uint8_t *db);
  tree subs[16];
  char names[16][64];
  size_t nsubs;
} checker;

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)u16(p) | (uint32_t)u16(p + 2) << 16; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  int c = memcmp(a, b, SL_MIN(an, bn));
  return c ? c : (an > bn) - (an < bn);
}

static int bad(const checker *c, uint64_t pg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(const checker *c, uint64_t pg, const char *fmt, ...) {
  char why[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  sl_diag_error("%s/data.mdb: LMDB database %s is damaged: page %" PRIu64 " (offset %" PRIu64 "): %s", c->dir,
               c->t->name, pg, pg * c->psize, why);
  return SL_ECORRUPT;
}

/* Page pg in LMDB's map, once it is known to lie inside the file (a page
 * past the file's end would be SIGBUS). */
static int get_page(checker *c, uint64_t pg, const uint8_t **out) {
  if (pg < 2 || pg > c->last_pg || pg >= c->file_pages)
    return bad(c, pg, "the page lies outside the %" PRIu64 " pages in use", SL_MIN(c->last_pg + 1, c->file_pages));
  const uint8_t *p = c->map + pg * c->psize;
  if (u64(p) != pg) return bad(c, pg, "the page header says page %" PRIu64, u64(p));
  *out = p;
  return 0;
}

static int check_overflow(checker *c, uint64_t pg, uint64_t size) {
  const uint8_t *buf = NULL;
  int rc = get_page(c, pg, &buf);
  if (rc) return rc;
  uint64_t n = u32(buf + 12), need = (PAGE_HDR + size + c->psize - 1) / c->psize;
  if (!(u16(buf + 10) & P_OVERFLOW)) return bad(c, pg, "a value's overflow page is not one (flags 0x%x)", u16(buf + 10));
  if (n < need || pg + n - 1 > c->last_pg)
    return bad(c, pg, "an overflow run of %" PRIu64 " pages for a value of %" PRIu64 " bytes", n, size);
  c->n_overflow += n;
  return 0;
}

/* Walk the subtree at pg (level 1 = the root) whose keys lie in [lo, hi). */
static int walk(checker *c, uint64_t pg, unsigned level, key lo, key hi) {
  const uint8_t *p = NULL;
  int rc = get_page(c, pg, &p);
  if (rc) return rc;
  unsigned flags = u16(p + 10) & P_TYPES, lower = u16(p + 12), upper = u16(p + 14);
  bool leaf = level == c->t->depth;
  if (flags != (leaf ? P_LEAF : P_BRANCH))
    return bad(c, pg, "a %s was expected at depth %u of %" PRIu64 ", the page's flags are 0x%x",
               leaf ? "leaf" : "branch", level, c->t->depth, u16(p + 10));
  if (lower < PAGE_HDR || lower > upper || upper > c->psize || (lower - PAGE_HDR) % 2)
    return bad(c, pg, "bad free-space bounds (lower %u, upper %u)", lower, upper);
  unsigned n = (lower - PAGE_HDR) / 2;
  if (n == 0) return bad(c, pg, "an empty %s page", leaf ? "leaf" : "branch");
  if (leaf) c->n_leaf++;
  else c->n_branch++;
  for (unsigned i = 0; i < n; i++) {
    unsigned off = u16(p + PAGE_HDR + 2 * i);
    if (off < upper || off > c->psize - NODE_HDR) return bad(c, pg, "node %u at offset %u lies outside the page", i, off);
    const uint8_t *nd = p + off, *k = nd + NODE_HDR;
    unsigned nflags = u16(nd + 4), ksize = u16(nd + 6);
    uint64_t dsize = leaf ? (uint64_t)u16(nd) | (uint64_t)u16(nd + 2) << 16 : 0;
    uint64_t room = leaf ? ((nflags & F_BIGDATA) ? 8 : dsize) : 0;
    if (ksize > KEY_MAX || off + NODE_HDR + ksize + room > c->psize)
      return bad(c, pg, "node %u (key of %u bytes) runs past the page", i, ksize);
    if (!leaf) {
      /* Child i holds the keys from its own key (none for the first) to the next one. */
      key clo = i ? (key){k, ksize} : lo, chi = hi;
      if (i && ((lo.p && key_cmp(k, ksize, lo.p, lo.n) < 0) || (hi.p && key_cmp(k, ksize, hi.p, hi.n) >= 0)))
        return bad(c, pg, "branch key %u lies outside the bounds of the branch above", i);
      if (i + 1 < n) {
        const uint8_t *nx = p + u16(p + PAGE_HDR + 2 * (i + 1));
        if (nx < p + upper || nx > p + c->psize - NODE_HDR || u16(nx + 6) > c->psize - (size_t)(nx - p) - NODE_HDR)
          return bad(c, pg, "node %u lies outside the page", i + 1);
        chi = (key){nx + NODE_HDR, u16(nx + 6)};
        if (i && key_cmp(k, ksize, chi.p, chi.n) >= 0) return bad(c, pg, "branch keys %u and %u out of order", i, i + 1);
      }
      uint64_t child = (uint64_t)u16(nd) | (uint64_t)u16(nd + 2) << 16 | (uint64_t)nflags << 32;
      if (c->n_branch + c->n_leaf > c->t->branch_pages + c->t->leaf_pages)
        return bad(c, pg, "the tree reaches more pages than its %" PRIu64 " (a loop?)",
                   c->t->branch_pages + c->t->leaf_pages);
      if ((rc = walk(c, child, level + 1, clo, chi))) return rc;
      continue;
    }
    if (nflags & ~(F_BIGDATA | F_SUBDATA) || ((nflags & F_SUBDATA) && c->on_subdb == NULL))
      return bad(c, pg, "node %u has flags 0x%x", i, nflags);
    /* Keys increase along the walk; so the page's first key against the
     * lower bound and its last against the upper one bound them all. */
    if ((i == 0 && lo.p && key_cmp(k, ksize, lo.p, lo.n) < 0) ||
        (i == n - 1 && hi.p && key_cmp(k, ksize, hi.p, hi.n) >= 0))
      return bad(c, pg, "key %u lies outside the bounds its branch gives the page", i);
    if (c->prev && key_cmp(c->prev, c->prev_n, k, ksize) >= 0)
      return bad(c, pg, "key %u is not above the key before it", i);
    c->prev = k;
    c->prev_n = ksize;
    c->n_entries++;
    if (nflags & F_BIGDATA) {
      if ((rc = check_overflow(c, u64(k + ksize), dsize))) return rc;
    } else if (nflags & F_SUBDATA) {
      if (dsize != DB_SIZE) return bad(c, pg, "database record %u of %" PRIu64 " bytes", i, dsize);
      c->on_subdb(c, k, ksize, k + ksize);
    }
  }
  return 0;
}

static void tree_of(tree *t, const uint8_t *db) {
  t->depth = u16(db + 6);
  t->branch_pages = u64(db + 8);
  t->leaf_pages = u64(db + 16);
  t->overflow_pages = u64(db + 24);
  t->entries = u64(db + 32);
  t->root = u64(db + 40);
}

static void collect_subdb(checker *c, const uint8_t *k, size_t klen, const uint8_t *db) {
  if (c->nsubs == SL_ARRAY_LEN(c->subs)) return; /* shiplog has 8; more were never made by it */
  snprintf(c->names[c->nsubs], sizeof c->names[0], "%.*s", (int)SL_MIN(klen, 63), (const char *)k);
  tree *t = &c->subs[c->nsubs];
  tree_of(t, db);
  t->name = c->names[c->nsubs++];
}

static int check_tree(checker *c, const tree *t) {
  c->t = t;
  c->prev = NULL;
  c->n_branch = c->n_leaf = c->n_overflow = c->n_entries = 0;
  if (t->root == INVALID_PGNO) {
    if (t->entries || t->depth) return bad(c, 0, "no root, but %" PRIu64 " entries", t->entries);
    return 0;
  }
  if (t->depth == 0 || t->depth > MAX_DEPTH) return bad(c, t->root, "a tree of depth %" PRIu64, t->depth);
  int rc = walk(c, t->root, 1, (key){0}, (key){0});
  if (rc) return rc;
  if (c->n_entries != t->entries || c->n_branch != t->branch_pages || c->n_leaf != t->leaf_pages ||
      c->n_overflow != t->overflow_pages)
    return bad(c, t->root,
               "the tree holds %" PRIu64 " entries in %" PRIu64 "+%" PRIu64 "+%" PRIu64 " branch+leaf+overflow pages, "
               "its record says %" PRIu64 " in %" PRIu64 "+%" PRIu64 "+%" PRIu64,
               c->n_entries, c->n_branch, c->n_leaf, c->n_overflow, t->entries, t->branch_pages, t->leaf_pages,
               t->overflow_pages);
  return 0;
}

int sl__lmdb_check(sl_store *st, MDB_txn *txn) {
  checker c = {.dir = st->dir};
  MDB_stat ms;
  struct stat sb;
  uint8_t meta[160];
  const uint8_t *m = NULL;
  uint64_t txnid = mdb_txn_id(txn);
  int fd, rc = mdb_env_get_fd(st->env, &fd);
  if (rc == 0) rc = mdb_env_stat(st->env, &ms);
  if (rc) {
    sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
    return sl__mdb_err(rc);
  }
  c.psize = ms.ms_psize;
  if (fstat(fd, &sb)) {
    rc = -errno;
    sl_diag_error("%s/data.mdb: %s", st->dir, strerror(errno));
    return rc;
  }
  c.file_pages = (uint64_t)sb.st_size / c.psize;
  /* The meta page of this snapshot; both were rewritten since when a
   * writer committed twice meanwhile (the caller begins anew). */
  for (unsigned i = 0; i < 2 && !m; i++)
    if (sl_pread_full(fd, meta, sizeof meta, (uint64_t)i * c.psize) == (long)sizeof meta &&
        u64(meta + META_TXNID) == txnid)
      m = meta;
  if (!m) return -EAGAIN;
  c.last_pg = u64(m + META_LAST_PG);
  /* Our own map (LMDB does not hand out its own), of the pages in use: a
   * page read costs no system call. */
  size_t maplen = (size_t)(SL_MIN(c.file_pages, c.last_pg + 1) * c.psize);
  void *map = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    rc = -errno;
    sl_diag_error("%s/data.mdb: mmap: %s", st->dir, strerror(errno));
    return rc;
  }
  c.map = map;
  c.file_pages = maplen / c.psize;
  tree main_tree = {.name = "(main)"};
  tree_of(&main_tree, m + META_MAIN_DB);
  c.on_subdb = collect_subdb;
  if ((rc = check_tree(&c, &main_tree)) == 0) {
    c.on_subdb = NULL;
    for (size_t i = 0; i < c.nsubs && !rc; i++) rc = check_tree(&c, &c.subs[i]);
  }
  munmap(map, maplen);
  return rc;
}

int sl_store_check(sl_store *st) {
  for (int tries = 0; tries < 100; tries++) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
      sl_diag_error("%s: LMDB read transaction: %s", st->dir, mdb_strerror(rc));
      return sl__mdb_err(rc);
    }
    rc = sl__lmdb_check(st, txn);
    mdb_txn_abort(txn);
    if (rc != -EAGAIN) return rc;
  }
  sl_diag_error("%s/data.mdb: cannot check it: a writer keeps moving on", st->dir);
  return -EAGAIN;
}
