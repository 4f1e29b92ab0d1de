/*
 * The cache of parsed statements (sl_qcache, include/shiplog.h): a caller
 * that runs the same text again (a Bolt connection, an application's loop)
 * skips the lexer and the parser.
 *
 * WHAT IS KEPT: what q_parse leaves in q->ast: the text's copy (column
 * names and aggregate positions point into it), its tokens and the AST
 * (q->stmt and everything under it), as one arena moved into the entry
 * after a successful parse. That is safe to share between runs because the
 * parse is a function of the text alone (the lexer and the parser read no
 * parameter, store, schema or option; their semantic checks are scope
 * checks) and nothing after it writes the AST: the planner builds its
 * operators and matchers in their own arenas and chooses index seeks from
 * the schema the running transaction sees (so a CREATE INDEX or a dropped
 * constraint between two runs is planned for), and the executor only reads
 * it (values go to rows and arenas of the cursor). Plans are not kept.
 * The parameters, the row and the caller's row stay in the cursor's q->ast.
 * A statement that fails to parse is not kept: parsed again, it fails with
 * the same message at the same line:column.
 *
 * LIFETIME: an entry is reference-counted: one reference while it is in
 * the cache, one per cursor running it; so an entry evicted, or a cache
 * freed, while a cursor runs the statement lives until that cursor closes.
 *
 * BOUNDS: max_entries and max_bytes (the arena's chunks plus the entry),
 * the least recently used out first (a list, most recent at its head); a
 * statement bigger than max_bytes is run but not kept. The AST of a cached
 * statement does not count against the memory limit of the runs that
 * reuse it (it counts once, in the run that parsed it).
 *
 * LOOKUP: FNV-1a of the text into chained buckets (twice max_entries, a
 * power of two, at most MAX_BUCKETS), then the length and the bytes: an
 * exact match.
 *
 * THREADS: no locks: a cache and the cursors using it belong to one thread
 * at a time (the references are plain counters).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

#define DEFAULT_ENTRIES 64
#define DEFAULT_BYTES (1u << 20)
#define MAX_BUCKETS (1u << 16) /* more entries than that share buckets */

struct qparsed {
  sl_arena mem;       /* the text's copy, its tokens, the AST */
  const char *text;
  size_t len;
  uint64_t hash;
  qstmt *stmt;
  size_t bytes;       /* mem's chunks and this struct */
  unsigned refs;
  qparsed *hnext;     /* the bucket's chain */
  qparsed *prev, *next; /* the recency list */
};

struct sl_qcache {
  size_t max_entries, max_bytes;
  qparsed **buckets;
  size_t mask;        /* buckets - 1 */
  qparsed lru;        /* the list's head: lru.next most recent, lru.prev least */
  sl_qcache_counters stats;
};

int sl_qcache_new(size_t max_entries, size_t max_bytes, sl_qcache **out) {
  *out = NULL;
  sl_qcache *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->max_entries = max_entries ? max_entries : DEFAULT_ENTRIES;
  c->max_bytes = max_bytes ? max_bytes : DEFAULT_BYTES;
  size_t n = 2;
  while (n / 2 < c->max_entries && n < MAX_BUCKETS) n *= 2;
  if (!(c->buckets = calloc(n, sizeof *c->buckets))) {
    free(c);
    return -ENOMEM;
  }
  c->mask = n - 1;
  c->lru.next = c->lru.prev = &c->lru;
  *out = c;
  return 0;
}

void q_parsed_release(qparsed *p) {
  if (!p || --p->refs) return;
  sl_arena_free(&p->mem);
  free(p);
}

static void lru_unlink(qparsed *p) {
  p->prev->next = p->next;
  p->next->prev = p->prev;
}

static void lru_push(sl_qcache *c, qparsed *p) {
  p->prev = &c->lru;
  p->next = c->lru.next;
  c->lru.next->prev = p;
  c->lru.next = p;
}

/* Out of the cache; freed once no cursor runs it. */
static void evict(sl_qcache *c, qparsed *p) {
  qparsed **link = &c->buckets[p->hash & c->mask];
  while (*link != p) link = &(*link)->hnext;
  *link = p->hnext;
  lru_unlink(p);
  c->stats.entries--;
  c->stats.bytes -= p->bytes;
  q_parsed_release(p);
}

static void insert(sl_qcache *c, qparsed *p) {
  while (c->stats.entries && (c->stats.entries >= c->max_entries || c->stats.bytes + p->bytes > c->max_bytes)) {
    evict(c, c->lru.prev);
    c->stats.evictions++;
  }
  qparsed **b = &c->buckets[p->hash & c->mask];
  p->hnext = *b;
  *b = p;
  lru_push(c, p);
  p->refs++;
  c->stats.entries++;
  c->stats.bytes += p->bytes;
}

static qparsed *find(const sl_qcache *c, uint64_t hash, const char *text, size_t len) {
  for (qparsed *p = c->buckets[hash & c->mask]; p; p = p->hnext)
    if (p->hash == hash && p->len == len && !memcmp(p->text, text, len)) return p;
  return NULL;
}

int q_parse_cached(qctx *q, sl_qcache *cache, const char *text, size_t len, qparsed **held) {
  *held = NULL;
  uint64_t hash = 0;
  if (cache) {
    hash = q_hash_bytes(text, len);
    qparsed *p = find(cache, hash, text, len);
    if (p) {
      cache->stats.hits++;
      lru_unlink(p);
      lru_push(cache, p);
      p->refs++;
      *held = p;
      q->text = p->text;
      q->len = len;
      q->stmt = p->stmt;
      return 0;
    }
    cache->stats.misses++;
  }
  size_t before = q->mem.used;
  char *copy = sl_arena_strndup(&q->ast, text, len);
  if (!copy) return qerr_oom(q);
  q->text = copy;
  q->len = len;
  TRY(q_parse(q));
  qparsed *p = cache ? calloc(1, sizeof *p) : NULL;
  if (!p) return 0; /* no cache, or no memory to keep it: the AST stays the cursor's */
  p->mem = q->ast;
  p->mem.budget = NULL; /* its chunks were counted once, in this run's budget */
  sl_arena_init(&q->ast, &q->mem);
  p->text = copy;
  p->len = len;
  p->hash = hash;
  p->stmt = q->stmt;
  p->bytes = sizeof *p + (q->mem.used - before);
  p->refs = 1;
  *held = p;
  if (p->bytes <= cache->max_bytes) insert(cache, p);
  return 0;
}

void sl_qcache_free(sl_qcache *c) {
  if (!c) return;
  while (c->lru.next != &c->lru) evict(c, c->lru.next);
  free(c->buckets);
  free(c);
}

void sl_qcache_stats(const sl_qcache *c, sl_qcache_counters *out) { *out = c->stats; }

bool sl_qcache_writes(const sl_qcache *c, const char *text, size_t len) {
  const qparsed *p = c ? find(c, q_hash_bytes(text, len), text, len) : NULL;
  unsigned line, col;
  return p && (p->stmt->writes || (p->stmt->schema && q_schema_writes(p->stmt->schema, &line, &col)));
}
