/*
 * Id bookkeeping shared by the importers and exporters of interchange/.
 *
 * ID LISTS. An exporter walks a view's ids first and reads each entity by id
 * afterwards, because a walk may not call other view functions; the list is
 * a plain growing array (8 bytes per id).
 *
 * ID MAPS. An importer meets ids as a file spells them (APOC's "0", an
 * element id, a CSV :ID value) and must find the id the new store assigned
 * when a relationship names them. The map is open addressing with linear
 * probing over a power-of-two table, grown at 70% load; keys are copied into
 * an arena that lives as long as the map, so an entry costs its key plus one
 * 32-byte slot. FNV-1a with a final mix spreads the short decimal keys that
 * dominate real inputs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "interchange_int.h"

int sl__idvec_push(void *vec, uint64_t id) {
  sl__idvec *ids = vec;
  if (ids->n == ids->cap) {
    size_t cap = ids->cap ? ids->cap * 2 : 4096;
    uint64_t *v = realloc(ids->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    ids->v = v;
    ids->cap = cap;
  }
  ids->v[ids->n++] = id;
  return 0;
}

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

static sl__idslot *find(sl__idmap *m, const char *key, size_t len, uint64_t h) {
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    sl__idslot *s = &m->slots[i];
    if (!s->key || (s->hash == h && s->len == len && !memcmp(s->key, key, len))) return s;
  }
}

static int grow(sl__idmap *m) {
  size_t cap = m->cap ? m->cap * 2 : 1024;
  sl__idslot *old = m->slots;
  size_t oldcap = m->cap;
  if (!(m->slots = calloc(cap, sizeof *m->slots))) {
    m->slots = old;
    return -ENOMEM;
  }
  m->cap = cap;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].key) *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
  free(old);
  return 0;
}

int sl__idmap_lookup(sl__idmap *m, const char *key, size_t len, sl__idslot **slot) {
  int rc;
  if (m->n * 10 >= m->cap * 7 && (rc = grow(m))) return rc;
  *slot = find(m, key, len, hash_bytes(key, len));
  return 0;
}

int sl__idmap_insert(sl__idmap *m, sl__idslot *s, const char *key, size_t len, uint64_t val) {
  if (!m->keys && !(m->keys = sl__scratch_new())) return -ENOMEM;
  char *copy = sl__scratch_alloc(m->keys, len ? len : 1);
  if (!copy) return -ENOMEM;
  memcpy(copy, key, len);
  *s = (sl__idslot){.key = copy, .len = len, .hash = hash_bytes(key, len), .val = val};
  m->n++;
  return 0;
}

void sl__idmap_free(sl__idmap *m) {
  free(m->slots);
  sl__scratch_free(m->keys);
  *m = (sl__idmap){0};
}
