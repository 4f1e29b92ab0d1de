/*
 * Module-private declarations of the store's schema: indexes and
 * constraints (schema.c), their keys (index_key.c). graph.c calls the
 * hooks from its ops, commit.c the constraint check, graph_read.c nothing
 * (the reads are in schema.c).
 */
#ifndef SL_SCHEMA_INT_H
#define SL_SCHEMA_INT_H

#include "store_int.h"

/* ---- index keys (index_key.c) ------------------------------------------------ */
enum {
  SL__TAG_LIST = 0x10,
  SL__TAG_POINT = 0x18,
  SL__TAG_DATETIME = 0x20,
  SL__TAG_LOCALDATETIME = 0x21,
  SL__TAG_DATE = 0x22,
  SL__TAG_TIME = 0x23,
  SL__TAG_LOCALTIME = 0x24,
  SL__TAG_DURATION = 0x25,
  SL__TAG_STRING = 0x30,
  SL__TAG_BOOL = 0x40,
  SL__TAG_NUMBER = 0x50
};
/* The values' share of an index key: 511 (LMDB's key limit) - id(4) -
 * truncation byte(1) - entity(8). */
#define SL__INDEX_VALUES_MAX 498
#define SL__KEYBUF 4096

/* A key being built: len counts every byte written, also past buf (then
 * only the first SL__KEYBUF bytes are kept; sl__index_key_finish cuts). */
typedef struct sl__keybuf {
  size_t len;
  uint8_t buf[SL__KEYBUF];
} sl__keybuf;

/* index id(4) */
void sl__index_key_begin(sl__keybuf *b, uint32_t index_id);
/* One value (never SL_NULL). */
void sl__index_key_value(sl__keybuf *b, const sl_value *v);
/* Cut a key whose values pass SL__INDEX_VALUES_MAX (true: it was cut). */
bool sl__index_key_finish(sl__keybuf *b);
/* Does an index entry of keylen bytes (entity id included) hold cut values? */
bool sl__index_key_truncated(size_t keylen);

/* ---- rules (schema.c) -------------------------------------------------------- */
typedef struct sl__rule {
  uint32_t id;          /* the index's key prefix (NOT_NULL: unused) */
  sl_schema_rule r;     /* strings in the schema's arena */
} sl__rule;

struct sl__schema {
  sl__rule *rules;
  size_t n;
  bool constraints;     /* any rule is a constraint */
  sl_arena arena;      /* the rules */
  sl_arena scratch;    /* values read by one hook */
};

/* Does this kind keep index entries? */
static inline bool sl__rule_indexed(sl_schema_kind k) { return k != SL_SCHEMA_NOT_NULL; }

/* The rules of w's transaction, loaded on first use; w->schema caches them
 * until a schema op changes them or w ends (sl__schema_free). */
int sl__schema_get(sl__wctx *w, sl__schema **out);
void sl__schema_free(sl__wctx *w);

#endif
