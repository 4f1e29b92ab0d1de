/*
 * Schema (indexes and constraints, shiplog.h's sl_schema_rule) as the
 * interchange formats write it:
 *
 * CANONICAL EXPORT (spec/export.md), one line per rule after the
 * relationships, by name, only when the store has schema (so an export of a
 * store without schema is what it always was):
 *   {"type":"index","name":"ix","kind":"RANGE","entity":"node","label":"P","properties":["name"]}
 *   {"type":"constraint","name":"c","kind":"UNIQUENESS","entity":"node","label":"P","properties":["name"]}
 * "kind" is the type column of Neo4j 5's SHOW INDEXES / SHOW CONSTRAINTS:
 * RANGE; UNIQUENESS, NODE_KEY, NODE_PROPERTY_EXISTENCE,
 * RELATIONSHIP_UNIQUENESS, RELATIONSHIP_KEY, RELATIONSHIP_PROPERTY_EXISTENCE.
 * "entity" is "node" or "relationship"; "label" is the label or the
 * relationship type (APOC's name for both, as on relationship lines).
 *
 * CYPHER (export --cypher): Neo4j 5's statements,
 *   CREATE INDEX `ix` FOR (n:`P`) ON (n.`name`)
 *   CREATE INDEX `ix` FOR ()-[r:`T`]-() ON (r.`a`, r.`b`)
 *   CREATE CONSTRAINT `c` FOR (n:`P`) REQUIRE (n.`name`) IS UNIQUE
 *   ... IS NODE KEY / IS RELATIONSHIP KEY / IS NOT NULL
 */
#include <string.h>

#include "interchange_int.h"
#include "sl_base.h"

static const char *const type_names[2][4] = {
    {"RANGE", "UNIQUENESS", "NODE_KEY", "NODE_PROPERTY_EXISTENCE"},
    {"RANGE", "RELATIONSHIP_UNIQUENESS", "RELATIONSHIP_KEY", "RELATIONSHIP_PROPERTY_EXISTENCE"}};

const char *sl__schema_type_name(const sl_schema_rule *r) { return type_names[r->rel][r->kind]; }

int sl__schema_type_parse(const char *s, bool index, bool rel, sl_schema_kind *kind) {
  for (int k = index ? 0 : 1; k < (index ? 1 : 4); k++)
    if (!strcmp(s, type_names[rel][k])) {
      *kind = (sl_schema_kind)k;
      return 0;
    }
  return SL_EINVAL;
}

void sl__jbuf_schema_line(sl__jbuf *b, const sl_schema_rule *r) {
  sl__jbuf_puts(b, r->kind == SL_SCHEMA_INDEX ? "{\"type\":\"index\",\"name\":" : "{\"type\":\"constraint\",\"name\":");
  sl__jbuf_str(b, r->name, strlen(r->name));
  sl__jbuf_puts(b, ",\"kind\":\"");
  sl__jbuf_puts(b, sl__schema_type_name(r));
  sl__jbuf_puts(b, r->rel ? "\",\"entity\":\"relationship\",\"label\":" : "\",\"entity\":\"node\",\"label\":");
  sl__jbuf_str(b, r->token, strlen(r->token));
  sl__jbuf_puts(b, ",\"properties\":[");
  for (size_t i = 0; i < r->nkeys; i++) {
    if (i) sl__jbuf_putc(b, ',');
    sl__jbuf_str(b, r->keys[i], strlen(r->keys[i]));
  }
  sl__jbuf_puts(b, "]}\n");
}

static void put_name(sl__jbuf *b, const char *s) {
  sl__jbuf_putc(b, '`');
  for (const char *p = s; *p; p++) {
    if (*p == '`') sl__jbuf_putc(b, '`');
    sl__jbuf_putc(b, *p);
  }
  sl__jbuf_putc(b, '`');
}

void sl__cypher_schema(sl__jbuf *b, const sl_schema_rule *r) {
  const char *var = r->rel ? "r" : "n";
  sl__jbuf_puts(b, r->kind == SL_SCHEMA_INDEX ? "CREATE INDEX " : "CREATE CONSTRAINT ");
  put_name(b, r->name);
  sl__jbuf_puts(b, r->rel ? " FOR ()-[r:" : " FOR (n:");
  put_name(b, r->token);
  sl__jbuf_puts(b, r->rel ? "]-() " : ") ");
  sl__jbuf_puts(b, r->kind == SL_SCHEMA_INDEX ? "ON (" : "REQUIRE (");
  for (size_t i = 0; i < r->nkeys; i++) {
    if (i) sl__jbuf_puts(b, ", ");
    sl__jbuf_puts(b, var);
    sl__jbuf_putc(b, '.');
    put_name(b, r->keys[i]);
  }
  static const char *const tails[] = {")", ") IS UNIQUE", ") IS NODE KEY", ") IS NOT NULL"};
  sl__jbuf_puts(b, r->kind == SL_SCHEMA_NODE_KEY && r->rel ? ") IS RELATIONSHIP KEY" : tails[r->kind]);
}
