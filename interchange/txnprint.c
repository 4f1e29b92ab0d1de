/*
 * Printing log records (packed shiplog.Transaction, proto/transaction.proto)
 * for `shiplog log`, in two shapes built by one walk over the ops:
 *
 *   json  {"txid":42,"ts":"2026-11-25T14:03:07Z","commit_time_us":...,"ops":[
 *          {"op":"create_node","id":1,"labels":["Person"],"props":{...}}, ...]}
 *         The ops are mutation-file ops (spec/mutations.md) with every id
 *         given, so `shiplog exec` can run the line again.
 *   text  42 2026-11-25T14:03:07Z create_node id=1 labels=[Person] props={name:"Ann"}; ...
 *         Names raw, values spelled as in JSON.
 *
 * Values are converted to sl_value by the store's own decoder and written by
 * the same writer as the export, so a double, a byte string, a date or a
 * point is spelled the same everywhere ({"$date":"2024-02-29"} etc.).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "interchange_int.h"
#include "sl_base.h"
#include "store_int.h" /* sl__value_from_pb: the log's values, every kind */
#include "transaction.pb-c.h"

typedef struct printer {
  sl__jbuf b;
  bool json;
  bool first; /* no field written yet in this op */
  sl_arena arena;
} printer;

static void field(printer *p, const char *name) {
  if (p->json) {
    sl__jbuf_puts(&p->b, p->first ? "\"" : ",\"");
    sl__jbuf_puts(&p->b, name);
    sl__jbuf_puts(&p->b, "\":");
  } else {
    sl__jbuf_putc(&p->b, ' ');
    sl__jbuf_puts(&p->b, name);
    sl__jbuf_putc(&p->b, '=');
  }
  p->first = false;
}

static void name_text(printer *p, const char *s) {
  if (p->json)
    sl__jbuf_str(&p->b, s, strlen(s));
  else
    sl__jbuf_puts(&p->b, s);
}

static void u64_field(printer *p, const char *name, uint64_t v) {
  field(p, name);
  sl__jbuf_u64(&p->b, v);
}

static void name_field(printer *p, const char *name, const char *s) {
  field(p, name);
  name_text(p, s);
}

/* The store's own protobuf -> sl_value (every kind; lists' items go to the
 * arena, which holds them for this record). */
static int convert(printer *p, const Shiplog__Value *pv, sl_value *out) {
  int rc = sl__value_from_pb(&p->arena, pv, out);
  return rc == SL_EINVAL ? SL_ECORRUPT : rc;
}

static int value_field(printer *p, const char *name, const Shiplog__Value *pv) {
  sl_value v;
  int rc = pv ? convert(p, pv, &v) : SL_ECORRUPT;
  if (rc) return rc;
  field(p, name);
  sl__jbuf_value(&p->b, &v);
  return 0;
}

static int props_field(printer *p, Shiplog__Property **props, size_t n) {
  if (!n && !p->json) return 0;
  field(p, "props");
  sl__jbuf_putc(&p->b, '{');
  for (size_t i = 0; i < n; i++) {
    sl_value v;
    int rc = props[i]->value ? convert(p, props[i]->value, &v) : SL_ECORRUPT;
    if (rc) return rc;
    if (i) sl__jbuf_putc(&p->b, ',');
    name_text(p, props[i]->key);
    sl__jbuf_putc(&p->b, ':');
    sl__jbuf_value(&p->b, &v);
  }
  sl__jbuf_putc(&p->b, '}');
  return 0;
}

static int print_op(printer *p, const Shiplog__Op *op) {
  static const char *names[] = {NULL, "create_node", "delete_node", "add_label", "remove_label",
                                "set_node_prop", "remove_node_prop", "create_rel", "delete_rel",
                                "set_rel_prop", "remove_rel_prop", "create_index", "drop_index",
                                "create_constraint", "drop_constraint"};
  if (op->op_case < 1 || op->op_case >= (int)SL_ARRAY_LEN(names)) return SL_ECORRUPT;
  if (p->json) {
    sl__jbuf_puts(&p->b, "{\"op\":\"");
    sl__jbuf_puts(&p->b, names[op->op_case]);
    sl__jbuf_putc(&p->b, '"');
    p->first = false;
  } else {
    sl__jbuf_puts(&p->b, names[op->op_case]);
  }
  int rc = 0;
  switch (op->op_case) {
  case SHIPLOG__OP__OP_CREATE_NODE:
    u64_field(p, "id", op->create_node->id);
    field(p, "labels");
    sl__jbuf_putc(&p->b, '[');
    for (size_t i = 0; i < op->create_node->n_labels; i++) {
      if (i) sl__jbuf_putc(&p->b, ',');
      name_text(p, op->create_node->labels[i]);
    }
    sl__jbuf_putc(&p->b, ']');
    rc = props_field(p, op->create_node->props, op->create_node->n_props);
    break;
  case SHIPLOG__OP__OP_DELETE_NODE:
    u64_field(p, "id", op->delete_node->id);
    if (op->delete_node->has_detach && op->delete_node->detach) {
      field(p, "detach");
      sl__jbuf_puts(&p->b, "true");
    }
    break;
  case SHIPLOG__OP__OP_ADD_LABEL:
  case SHIPLOG__OP__OP_REMOVE_LABEL:
    u64_field(p, "id", op->add_label->id); /* same member for both cases */
    name_field(p, "label", op->add_label->label);
    break;
  case SHIPLOG__OP__OP_SET_NODE_PROP:
  case SHIPLOG__OP__OP_SET_REL_PROP:
    u64_field(p, "id", op->set_node_prop->id);
    name_field(p, "key", op->set_node_prop->key);
    rc = value_field(p, "value", op->set_node_prop->value);
    break;
  case SHIPLOG__OP__OP_REMOVE_NODE_PROP:
  case SHIPLOG__OP__OP_REMOVE_REL_PROP:
    u64_field(p, "id", op->remove_node_prop->id);
    name_field(p, "key", op->remove_node_prop->key);
    break;
  case SHIPLOG__OP__OP_CREATE_REL:
    u64_field(p, "id", op->create_rel->id);
    name_field(p, "type", op->create_rel->type);
    u64_field(p, "start", op->create_rel->start);
    u64_field(p, "end", op->create_rel->end);
    rc = props_field(p, op->create_rel->props, op->create_rel->n_props);
    break;
  case SHIPLOG__OP__OP_DELETE_REL:
    u64_field(p, "id", op->delete_rel->id);
    break;
  case SHIPLOG__OP__OP_CREATE_INDEX:
  case SHIPLOG__OP__OP_CREATE_CONSTRAINT: {
    const Shiplog__SchemaRule *r = op->create_index; /* same member for both cases */
    sl_schema_rule rule = {r->name, (sl_schema_kind)r->kind, r->has_relationship && r->relationship, r->token,
                           r->n_keys, (const char *const *)r->keys};
    if ((unsigned)r->kind > SL_SCHEMA_NOT_NULL) return SL_ECORRUPT;
    name_field(p, "name", r->name);
    name_field(p, "kind", sl__schema_type_name(&rule));
    name_field(p, rule.rel ? "type" : "label", r->token);
    field(p, "properties");
    sl__jbuf_putc(&p->b, '[');
    for (size_t i = 0; i < r->n_keys; i++) {
      if (i) sl__jbuf_putc(&p->b, ',');
      name_text(p, r->keys[i]);
    }
    sl__jbuf_putc(&p->b, ']');
    break;
  }
  case SHIPLOG__OP__OP_DROP_INDEX:
  case SHIPLOG__OP__OP_DROP_CONSTRAINT:
    name_field(p, "name", op->drop_index->name);
    break;
  default:
    break;
  }
  if (p->json) sl__jbuf_putc(&p->b, '}');
  return rc;
}

int sl_txn_print(const uint8_t *payload, size_t len, bool json, FILE *out) {
  printer p = {.json = json};
  char t[32];
  int rc = SL_ECORRUPT;
  Shiplog__Transaction *tx = shiplog__transaction__unpack(NULL, len, payload);
  if (!tx) return SL_ECORRUPT;
  sl_arena_init(&p.arena, NULL);
  sl_time_format(tx->commit_time_us, t, sizeof t);
  if (json) {
    sl__jbuf_puts(&p.b, "{\"txid\":");
    sl__jbuf_u64(&p.b, tx->txid);
    sl__jbuf_puts(&p.b, ",\"ts\":\"");
    sl__jbuf_puts(&p.b, t);
    sl__jbuf_puts(&p.b, "\",\"commit_time_us\":");
    sl__jbuf_u64(&p.b, tx->commit_time_us);
    sl__jbuf_puts(&p.b, ",\"ops\":[");
  } else {
    sl__jbuf_u64(&p.b, tx->txid);
    sl__jbuf_putc(&p.b, ' ');
    sl__jbuf_puts(&p.b, t);
  }
  for (size_t i = 0; i < tx->n_ops; i++) {
    if (i) sl__jbuf_puts(&p.b, json ? "," : ";");
    if (!json) sl__jbuf_putc(&p.b, ' ');
    p.first = true;
    if ((rc = print_op(&p, tx->ops[i]))) goto fail;
  }
  sl__jbuf_puts(&p.b, json ? "]}\n" : "\n");
  rc = sl__jbuf_flush(&p.b, out, "output");
fail:
  shiplog__transaction__free_unpacked(tx, NULL);
  sl__jbuf_free(&p.b);
  sl_arena_free(&p.arena);
  return rc;
}
