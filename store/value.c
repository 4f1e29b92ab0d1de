/*
 * Property values, in the three shapes the store handles them, and the
 * arena they are decoded into.
 *
 * IN LMDB (node_props / rel_props values): one kind byte, then the payload.
 *   1 SL_BOOL    1 byte, 0 or 1
 *   2 SL_INT     8 bytes, int64 little-endian
 *   3 SL_DOUBLE  8 bytes, the IEEE-754 bit pattern little-endian (NaN
 *                payloads and -0.0 survive)
 *   4 SL_STRING  the UTF-8 bytes, to the end of the value
 *   5 SL_BYTES   the bytes, to the end of the value
 *   6 SL_LIST    elem kind(1) count(4 LE) elements: bools 1 byte, ints and
 *                doubles 8 bytes, strings and bytes u32 LE length + bytes.
 *                An empty list of unknown kind has elem kind 0.
 * The kind numbers are sl_kind's and Shiplog__ValueList__Kind's (1..5 agree),
 * so these bytes are a format: changing them needs a new format_version.
 *
 * IN THE LOG: Shiplog__Value (proto/transaction.proto). protobuf-c strings
 * are NUL-terminated C strings, so a string value may not contain NUL (the
 * store refuses it rather than log a truncated string). Strings are checked
 * to be UTF-8, which every protobuf reader requires of `string` fields.
 *
 * IN THE API: sl_value (store.h). Decoded values are copied into an arena,
 * strings NUL-terminated for convenience.
 *
 * THE ARENA: a bump allocator of malloc'd chunks. Transactions, record
 * unpacking and view results each own one and reset it per use; reset
 * coalesces the chunks into one big enough for the last cycle, so a steady
 * workload stops calling malloc.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ---- arena ----------------------------------------------------------------- */
struct sl__chunk {
  sl__chunk *next;
  size_t size;
  alignas(max_align_t) uint8_t data[];
};

#define ARENA_MIN_CHUNK (16u << 10)
#define ARENA_ALIGN (alignof(max_align_t))

void sl__arena_init(sl__arena *a) { memset(a, 0, sizeof *a); }

static sl__chunk *chunk_new(size_t size) {
  sl__chunk *c = malloc(sizeof *c + size);
  if (!c) return NULL;
  c->next = NULL;
  c->size = size;
  return c;
}

void *sl__arena_alloc(sl__arena *a, size_t n) {
  n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
  if (n == 0) n = ARENA_ALIGN;
  if (!a->chunks || (size_t)(a->end - a->p) < n) {
    size_t size = a->chunks ? a->chunks->size * 2 : ARENA_MIN_CHUNK;
    if (size < n) size = n;
    sl__chunk *c = chunk_new(size);
    if (!c) return NULL;
    c->next = a->chunks;
    a->chunks = c;
    a->p = c->data;
    a->end = c->data + size;
  }
  void *r = a->p;
  a->p += n;
  a->used += n;
  return r;
}

char *sl__arena_strndup(sl__arena *a, const void *s, size_t n) {
  char *r = sl__arena_alloc(a, n + 1);
  if (!r) return NULL;
  if (n) memcpy(r, s, n);
  r[n] = 0;
  return r;
}

void sl__arena_reset(sl__arena *a) {
  sl__chunk *c = a->chunks;
  if (!c) return;
  if (c->next) {
    size_t total = 0;
    while (c) {
      sl__chunk *next = c->next;
      total += c->size;
      free(c);
      c = next;
    }
    /* One chunk for what the last cycle needed; on failure start empty. */
    a->chunks = chunk_new(total);
    c = a->chunks;
  }
  a->p = c ? c->data : NULL;
  a->end = c ? c->data + c->size : NULL;
  a->used = 0;
}

void sl__arena_free(sl__arena *a) {
  sl__chunk *c = a->chunks;
  while (c) {
    sl__chunk *next = c->next;
    free(c);
    c = next;
  }
  memset(a, 0, sizeof *a);
}

static void *pb_alloc(void *data, size_t size) { return sl__arena_alloc(data, size); }
static void pb_free(void *data, void *p) { (void)data; (void)p; }

void sl__arena_pb_allocator(sl__arena *a, ProtobufCAllocator *out) {
  out->alloc = pb_alloc;
  out->free = pb_free;
  out->allocator_data = a;
}

/* ---- names and UTF-8 --------------------------------------------------------- */
static bool utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return false;
    if (n - i < len) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return false;
    i += len;
  }
  return true;
}

int sl__name_check(const char *name) {
  if (!name) return SL_EINVAL;
  size_t n = strnlen(name, SL_NAME_MAX + 1);
  if (n == 0 || n > SL_NAME_MAX || !utf8_valid((const uint8_t *)name, n)) return SL_EINVAL;
  return (int)n;
}

/* ---- checks and equality ----------------------------------------------------- */
static bool scalar_kind(sl_kind k) { return k >= SL_BOOL && k <= SL_BYTES; }

static int scalar_check(const sl_value *v) {
  switch (v->kind) {
  case SL_BOOL:
  case SL_INT:
  case SL_DOUBLE:
    return 0;
  case SL_STRING:
    if (v->len && !v->u.s) return SL_EINVAL;
    if (v->len > UINT32_MAX || (v->len && memchr(v->u.s, 0, v->len))) return SL_EINVAL;
    return utf8_valid((const uint8_t *)v->u.s, v->len) ? 0 : SL_EINVAL;
  case SL_BYTES:
    if (v->len && !v->u.bytes) return SL_EINVAL;
    return v->len > UINT32_MAX ? SL_EINVAL : 0;
  default:
    return SL_EINVAL;
  }
}

int sl__value_check(const sl_value *v) {
  if (v->kind != SL_LIST) return scalar_check(v);
  if (v->elem_kind == SL_NULL) return v->len == 0 ? 0 : SL_EINVAL;
  if (!scalar_kind(v->elem_kind) || v->len > UINT32_MAX || (v->len && !v->u.items)) return SL_EINVAL;
  for (size_t i = 0; i < v->len; i++) {
    if (v->u.items[i].kind != v->elem_kind) return SL_EINVAL;
    int rc = scalar_check(&v->u.items[i]);
    if (rc) return rc;
  }
  return 0;
}

static bool scalar_equal(const sl_value *a, const sl_value *b) {
  switch (a->kind) {
  case SL_BOOL: return a->u.b == b->u.b;
  case SL_INT: return a->u.i == b->u.i;
  case SL_DOUBLE: return memcmp(&a->u.d, &b->u.d, sizeof a->u.d) == 0;
  case SL_STRING: return a->len == b->len && (!a->len || memcmp(a->u.s, b->u.s, a->len) == 0);
  case SL_BYTES: return a->len == b->len && (!a->len || memcmp(a->u.bytes, b->u.bytes, a->len) == 0);
  default: return true; /* SL_NULL */
  }
}

bool sl_value_equal(const sl_value *a, const sl_value *b) {
  if (a->kind != b->kind) return false;
  if (a->kind != SL_LIST) return scalar_equal(a, b);
  if (a->elem_kind != b->elem_kind || a->len != b->len) return false;
  for (size_t i = 0; i < a->len; i++) {
    if (a->u.items[i].kind != b->u.items[i].kind || !scalar_equal(&a->u.items[i], &b->u.items[i]))
      return false;
  }
  return true;
}

/* ---- LMDB encoding ------------------------------------------------------------- */
static size_t scalar_size(const sl_value *v, bool in_list) {
  switch (v->kind) {
  case SL_BOOL: return 1;
  case SL_INT:
  case SL_DOUBLE: return 8;
  default: return (in_list ? 4 : 0) + v->len; /* SL_STRING, SL_BYTES */
  }
}

size_t sl__value_encoded_size(const sl_value *v) {
  if (v->kind != SL_LIST) return 1 + scalar_size(v, false);
  size_t n = 1 + 1 + 4;
  for (size_t i = 0; i < v->len; i++) n += scalar_size(&v->u.items[i], true);
  return n;
}

static uint8_t *scalar_encode(const sl_value *v, uint8_t *p, bool in_list) {
  uint64_t bits;
  switch (v->kind) {
  case SL_BOOL:
    *p++ = v->u.b ? 1 : 0;
    return p;
  case SL_INT:
    sl_put_le64(p, (uint64_t)v->u.i);
    return p + 8;
  case SL_DOUBLE:
    memcpy(&bits, &v->u.d, 8);
    sl_put_le64(p, bits);
    return p + 8;
  default: /* SL_STRING, SL_BYTES: both are bytes here */
    if (in_list) {
      sl_put_le32(p, (uint32_t)v->len);
      p += 4;
    }
    if (v->len) memcpy(p, v->u.bytes, v->len);
    return p + v->len;
  }
}

void sl__value_encode(const sl_value *v, uint8_t *out) {
  *out++ = (uint8_t)v->kind;
  if (v->kind != SL_LIST) {
    scalar_encode(v, out, false);
    return;
  }
  *out++ = (uint8_t)v->elem_kind;
  sl_put_le32(out, (uint32_t)v->len);
  out += 4;
  for (size_t i = 0; i < v->len; i++) out = scalar_encode(&v->u.items[i], out, true);
}

/* Decode one scalar of `kind` from p[0..n); *used gets its size. */
static int scalar_decode(sl_kind kind, const uint8_t *p, size_t n, bool in_list, sl__arena *a,
                         sl_value *out, size_t *used) {
  uint64_t bits;
  size_t len;
  memset(out, 0, sizeof *out);
  out->kind = kind;
  switch (kind) {
  case SL_BOOL:
    if (n < 1 || p[0] > 1) return SL_ECORRUPT;
    out->u.b = p[0] == 1;
    *used = 1;
    return 0;
  case SL_INT:
  case SL_DOUBLE:
    if (n < 8) return SL_ECORRUPT;
    bits = sl_get_le64(p);
    if (kind == SL_INT) out->u.i = (int64_t)bits;
    else memcpy(&out->u.d, &bits, 8);
    *used = 8;
    return 0;
  case SL_STRING:
  case SL_BYTES:
    if (in_list) {
      if (n < 4 || n - 4 < sl_get_le32(p)) return SL_ECORRUPT;
      len = sl_get_le32(p);
      p += 4;
      *used = 4 + len;
    } else {
      len = n;
      *used = n;
    }
    out->len = len;
    out->u.s = sl__arena_strndup(a, p, len);
    return out->u.s ? 0 : -ENOMEM;
  default:
    return SL_ECORRUPT;
  }
}

int sl__value_decode(const uint8_t *p, size_t n, sl__arena *a, sl_value *out) {
  size_t used;
  if (n < 1) return SL_ECORRUPT;
  sl_kind kind = p[0];
  p++, n--;
  if (kind != SL_LIST) {
    int rc = scalar_decode(kind, p, n, false, a, out, &used);
    return rc == 0 && used != n ? SL_ECORRUPT : rc;
  }
  if (n < 5) return SL_ECORRUPT;
  sl_kind elem = p[0];
  uint32_t count = sl_get_le32(p + 1);
  p += 5, n -= 5;
  if ((elem == SL_NULL && count) || (elem != SL_NULL && !scalar_kind(elem)) || count > n)
    return SL_ECORRUPT; /* every element takes at least one byte */
  sl_value *items = NULL;
  if (count && !(items = sl__arena_alloc(a, count * sizeof *items))) return -ENOMEM;
  for (uint32_t i = 0; i < count; i++) {
    int rc = scalar_decode(elem, p, n, true, a, &items[i], &used);
    if (rc) return rc;
    p += used, n -= used;
  }
  if (n) return SL_ECORRUPT;
  memset(out, 0, sizeof *out);
  out->kind = SL_LIST;
  out->elem_kind = elem;
  out->len = count;
  out->u.items = items;
  return 0;
}

/* ---- protobuf ------------------------------------------------------------------- */
int sl__value_to_pb(sl__arena *a, const sl_value *v, Shiplog__Value **out) {
  Shiplog__Value *pb = sl__arena_alloc(a, sizeof *pb);
  if (!pb) return -ENOMEM;
  shiplog__value__init(pb);
  switch (v->kind) {
  case SL_BOOL:
    pb->kind_case = SHIPLOG__VALUE__KIND_BOOL_VALUE;
    pb->bool_value = v->u.b;
    break;
  case SL_INT:
    pb->kind_case = SHIPLOG__VALUE__KIND_INT_VALUE;
    pb->int_value = v->u.i;
    break;
  case SL_DOUBLE:
    pb->kind_case = SHIPLOG__VALUE__KIND_DOUBLE_VALUE;
    pb->double_value = v->u.d;
    break;
  case SL_STRING:
    pb->kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
    if (!(pb->string_value = sl__arena_strndup(a, v->u.s, v->len))) return -ENOMEM;
    break;
  case SL_BYTES:
    pb->kind_case = SHIPLOG__VALUE__KIND_BYTES_VALUE;
    pb->bytes_value.len = v->len;
    if (!(pb->bytes_value.data = (uint8_t *)sl__arena_strndup(a, v->u.bytes, v->len))) return -ENOMEM;
    break;
  case SL_LIST: {
    Shiplog__ValueList *l = sl__arena_alloc(a, sizeof *l);
    if (!l) return -ENOMEM;
    shiplog__value_list__init(l);
    pb->kind_case = SHIPLOG__VALUE__KIND_LIST_VALUE;
    pb->list_value = l;
    if (v->elem_kind != SL_NULL) {
      l->has_kind = 1;
      l->kind = (Shiplog__ValueList__Kind)v->elem_kind;
    }
    size_t n = v->len;
    if (!n) break;
    const sl_value *it = v->u.items;
    switch (v->elem_kind) {
    case SL_BOOL:
      if (!(l->bools = sl__arena_alloc(a, n * sizeof *l->bools))) return -ENOMEM;
      for (size_t i = 0; i < n; i++) l->bools[i] = it[i].u.b;
      l->n_bools = n;
      break;
    case SL_INT:
      if (!(l->ints = sl__arena_alloc(a, n * sizeof *l->ints))) return -ENOMEM;
      for (size_t i = 0; i < n; i++) l->ints[i] = it[i].u.i;
      l->n_ints = n;
      break;
    case SL_DOUBLE:
      if (!(l->doubles = sl__arena_alloc(a, n * sizeof *l->doubles))) return -ENOMEM;
      for (size_t i = 0; i < n; i++) l->doubles[i] = it[i].u.d;
      l->n_doubles = n;
      break;
    case SL_STRING:
      if (!(l->strings = sl__arena_alloc(a, n * sizeof *l->strings))) return -ENOMEM;
      for (size_t i = 0; i < n; i++)
        if (!(l->strings[i] = sl__arena_strndup(a, it[i].u.s, it[i].len))) return -ENOMEM;
      l->n_strings = n;
      break;
    case SL_BYTES:
      if (!(l->bytes_list = sl__arena_alloc(a, n * sizeof *l->bytes_list))) return -ENOMEM;
      for (size_t i = 0; i < n; i++) {
        l->bytes_list[i].len = it[i].len;
        if (!(l->bytes_list[i].data = (uint8_t *)sl__arena_strndup(a, it[i].u.bytes, it[i].len)))
          return -ENOMEM;
      }
      l->n_bytes_list = n;
      break;
    default:
      return SL_EINVAL;
    }
    break;
  }
  default:
    return SL_EINVAL;
  }
  *out = pb;
  return 0;
}

int sl__value_from_pb(sl__arena *a, const Shiplog__Value *pb, sl_value *out) {
  memset(out, 0, sizeof *out);
  if (!pb) return SL_EINVAL;
  switch (pb->kind_case) {
  case SHIPLOG__VALUE__KIND_BOOL_VALUE:
    out->kind = SL_BOOL;
    out->u.b = pb->bool_value;
    return 0;
  case SHIPLOG__VALUE__KIND_INT_VALUE:
    out->kind = SL_INT;
    out->u.i = pb->int_value;
    return 0;
  case SHIPLOG__VALUE__KIND_DOUBLE_VALUE:
    out->kind = SL_DOUBLE;
    out->u.d = pb->double_value;
    return 0;
  case SHIPLOG__VALUE__KIND_STRING_VALUE:
    out->kind = SL_STRING;
    out->u.s = pb->string_value;
    out->len = strlen(pb->string_value);
    return 0;
  case SHIPLOG__VALUE__KIND_BYTES_VALUE:
    out->kind = SL_BYTES;
    out->u.bytes = pb->bytes_value.data;
    out->len = pb->bytes_value.len;
    return 0;
  case SHIPLOG__VALUE__KIND_LIST_VALUE:
    break;
  default:
    return SL_EINVAL;
  }
  const Shiplog__ValueList *l = pb->list_value;
  sl_kind elem = l->has_kind ? (sl_kind)l->kind : SL_NULL;
  size_t counts[6] = {0, l->n_bools, l->n_ints, l->n_doubles, l->n_strings, l->n_bytes_list};
  if (elem != SL_NULL && !scalar_kind(elem)) return SL_EINVAL;
  /* Elements only in the array of the declared kind. */
  for (sl_kind k = SL_BOOL; k <= SL_BYTES; k++)
    if (k != elem && counts[k]) return SL_EINVAL;
  size_t n = counts[elem];
  sl_value *items = NULL;
  if (n && !(items = sl__arena_alloc(a, n * sizeof *items))) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    sl_value *it = &items[i];
    memset(it, 0, sizeof *it);
    it->kind = elem;
    switch (elem) {
    case SL_BOOL: it->u.b = l->bools[i]; break;
    case SL_INT: it->u.i = l->ints[i]; break;
    case SL_DOUBLE: it->u.d = l->doubles[i]; break;
    case SL_STRING:
      it->u.s = l->strings[i];
      it->len = strlen(l->strings[i]);
      break;
    default: /* SL_BYTES */
      it->u.bytes = l->bytes_list[i].data;
      it->len = l->bytes_list[i].len;
      break;
    }
  }
  out->kind = SL_LIST;
  out->elem_kind = elem;
  out->len = n;
  out->u.items = items;
  return 0;
}
