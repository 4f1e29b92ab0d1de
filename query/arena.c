/*
 * Bump arenas for the query engine: chunks from malloc, counted against the
 * statement's memory limit (qmem), freed or reset in one call. A reset keeps
 * the newest chunk so that a steady loop does not call malloc again.
 */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

struct qchunk {
  qchunk *next;
  size_t size;
  max_align_t data[];
};

#define CHUNK_MIN 4096

void qa_init(qarena *a, qmem *mem) {
  memset(a, 0, sizeof *a);
  a->mem = mem;
}

void *qa_alloc(qarena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if ((size_t)(a->end - a->p) < n || !a->p) {
    size_t size = a->chunks ? a->chunks->size * 2 : CHUNK_MIN;
    if (size > (1u << 20)) size = 1u << 20;
    if (size < n) size = n;
    if (a->mem) {
      if (a->mem->over || a->mem->used + size > a->mem->limit) {
        a->mem->over = true;
        return NULL;
      }
    }
    qchunk *c = malloc(sizeof *c + size);
    if (!c) {
      if (a->mem) a->mem->over = true;
      return NULL;
    }
    if (a->mem) a->mem->used += size;
    c->size = size;
    c->next = a->chunks;
    a->chunks = c;
    a->p = (uint8_t *)c->data;
    a->end = a->p + size;
  }
  void *r = a->p;
  a->p += n;
  return r;
}

void *qa_zalloc(qarena *a, size_t n) {
  void *p = qa_alloc(a, n);
  if (p) memset(p, 0, n);
  return p;
}

char *qa_strndup(qarena *a, const char *s, size_t n) {
  char *p = qa_alloc(a, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void qa_reset(qarena *a) {
  if (!a->chunks) return;
  qchunk *keep = a->chunks, *c = keep->next;
  while (c) {
    qchunk *next = c->next;
    if (a->mem) a->mem->used -= c->size;
    free(c);
    c = next;
  }
  keep->next = NULL;
  a->chunks = keep;
  a->p = (uint8_t *)keep->data;
  a->end = a->p + keep->size;
}

void qa_free(qarena *a) {
  qchunk *c = a->chunks;
  while (c) {
    qchunk *next = c->next;
    if (a->mem) a->mem->used -= c->size;
    free(c);
    c = next;
  }
  a->chunks = NULL;
  a->p = a->end = NULL;
}
