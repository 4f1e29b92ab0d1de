/*
 * Bump arenas: the one allocator for things that die together (a decoded
 * record, a statement's values, a Bolt message). An arena is a list of
 * malloc'd chunks, newest first; an allocation takes the next aligned bytes
 * of the newest chunk, or starts a chunk twice the size of the last one (at
 * least the request, at most CHUNK_GROW_MAX unless the request is larger).
 *
 * Two caps, both optional. `limit` bounds the bytes this arena hands out
 * (a Bolt message's decoded size). `budget`, shared by several arenas,
 * bounds the chunk bytes they hold together (a statement's memory limit):
 * a hit sets budget->over, so that the caller can tell a limit from a
 * failed malloc after the fact.
 *
 * A reset frees the chunks and, when there were several, allocates one of
 * their total size, as LMDB's reader does with its page buffers: a loop
 * that needs the same amount every cycle stops calling malloc after the
 * first.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "sl_base.h"

struct sl_arena_chunk {
  struct sl_arena_chunk *next;
  size_t size;
  alignas(max_align_t) uint8_t data[];
};

#define ALIGN (alignof(max_align_t))
#define CHUNK_MIN ((size_t)4096)
#define CHUNK_GROW_MAX ((size_t)1 << 20)

void sl_arena_init(sl_arena *a, sl_arena_budget *budget) {
  memset(a, 0, sizeof *a);
  a->budget = budget;
}

/* A chunk of `size` bytes, charged to the budget; NULL when over it. */
static struct sl_arena_chunk *chunk_new(sl_arena *a, size_t size) {
  sl_arena_budget *b = a->budget;
  if (b && (b->over || size > b->limit - SL_MIN(b->used, b->limit))) {
    b->over = true;
    return NULL;
  }
  struct sl_arena_chunk *c = malloc(sizeof *c + size);
  if (!c) return NULL;
  c->size = size;
  c->next = NULL;
  if (b) b->used += size;
  return c;
}

static void chunks_free(sl_arena *a) {
  struct sl_arena_chunk *c = a->chunks;
  while (c) {
    struct sl_arena_chunk *next = c->next;
    if (a->budget) a->budget->used -= c->size;
    free(c);
    c = next;
  }
  a->chunks = NULL;
  a->p = a->end = NULL;
}

void *sl_arena_alloc(sl_arena *a, size_t n) {
  if (n > SIZE_MAX / 2) return NULL;
  n = n ? (n + ALIGN - 1) & ~(ALIGN - 1) : ALIGN;
  if (a->limit && (n > a->limit || a->used > a->limit - n)) return NULL;
  if (!a->chunks || (size_t)(a->end - a->p) < n) {
    size_t size = a->chunks ? SL_MIN(a->chunks->size * 2, CHUNK_GROW_MAX) : CHUNK_MIN;
    struct sl_arena_chunk *c = chunk_new(a, SL_MAX(size, n));
    if (!c) return NULL;
    c->next = a->chunks;
    a->chunks = c;
    a->p = c->data;
    a->end = c->data + c->size;
  }
  void *r = a->p;
  a->p += n;
  a->used += n;
  return r;
}

void *sl_arena_zalloc(sl_arena *a, size_t n) {
  void *p = sl_arena_alloc(a, n);
  if (p) memset(p, 0, n);
  return p;
}

char *sl_arena_strndup(sl_arena *a, const void *s, size_t n) {
  char *r = sl_arena_alloc(a, n + 1);
  if (!r) return NULL;
  if (n) memcpy(r, s, n);
  r[n] = 0;
  return r;
}

void sl_arena_reset(sl_arena *a) {
  a->used = 0;
  if (!a->chunks) return;
  if (a->chunks->next) {
    size_t total = 0;
    for (struct sl_arena_chunk *c = a->chunks; c; c = c->next) total += c->size;
    chunks_free(a);
    a->chunks = chunk_new(a, total); /* on failure the arena starts empty */
  }
  a->p = a->chunks ? a->chunks->data : NULL;
  a->end = a->chunks ? a->chunks->data + a->chunks->size : NULL;
}

void sl_arena_free(sl_arena *a) {
  chunks_free(a);
  a->used = 0;
}
