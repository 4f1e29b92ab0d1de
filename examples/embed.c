/*
 * embed: shiplog's store embedded in a program, through the public header
 * alone (README "Embed shiplog"). It creates a store in DIR (which must not
 * exist or be empty), writes two people and who knows whom in one
 * transaction, reads them back through a view and prints them:
 *
 *   cc embed.c $(pkg-config --cflags --libs shiplog) -o embed
 *   ./embed /tmp/graph
 *
 * Every call returns 0 or a negative code that sl_strerror() explains; the
 * store also writes the context of a failure to stderr. CI builds this
 * file against the installed header, libraries and shiplog.pc only
 * (scripts/test.sh), and checks what it prints.
 */
#include <shiplog.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    int rc_ = (call);                                                                \
    if (rc_ != 0) {                                                                  \
      fprintf(stderr, "embed: %s: %s (%s)\n", #call, sl_strerror(rc_), sl_errname(rc_)); \
      goto out;                                                                      \
    }                                                                                \
  } while (0)

static sl_value str(const char *s) {
  sl_value v = {.kind = SL_STRING, .len = strlen(s)};
  v.u.s = s;
  return v;
}

static sl_value num(int64_t i) {
  sl_value v = {.kind = SL_INT};
  v.u.i = i;
  return v;
}

static void print_value(const sl_value *v) {
  switch (v->kind) {
  case SL_STRING: printf("\"%.*s\"", (int)v->len, v->u.s); break;
  case SL_INT: printf("%" PRId64, v->u.i); break;
  case SL_BOOL: printf("%s", v->u.b ? "true" : "false"); break;
  case SL_DOUBLE: printf("%g", v->u.d); break;
  default: printf("(kind %d)", (int)v->kind); break;
  }
}

/* sl_view_node_rels calls this for every relationship of a node; the view's
 * other reads may not be called meanwhile, so it only prints ids. */
static int print_rel(void *arg, uint64_t rel, const char *type, uint64_t start, uint64_t end) {
  (void)arg;
  printf("  (%" PRIu64 ")-[%" PRIu64 ":%s]->(%" PRIu64 ")\n", start, rel, type, end);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: embed DIR   (a new store is created in DIR)\n");
    return 2;
  }
  const char *dir = argv[1];
  sl_store *st = NULL;
  sl_tx *tx = NULL;
  sl_view *v = NULL;
  int status = 1;

  printf("libshiplog %s\n", sl_version());
  CHECK(sl_store_create(dir, NULL));
  CHECK(sl_store_open(dir, 0, &st));

  /* One transaction: two nodes and a relationship, durable when commit returns. */
  const char *person[] = {"Person"};
  sl_prop ada[] = {{"born", num(1815)}, {"name", str("Ada")}};
  sl_prop charles[] = {{"born", num(1791)}, {"name", str("Charles")}};
  sl_prop since[] = {{"since", num(1833)}};
  uint64_t a, c, r, txid;
  CHECK(sl_tx_begin(st, &tx));
  CHECK(sl_tx_create_node(tx, SL_ID_NEW, person, 1, ada, 2, &a));
  CHECK(sl_tx_create_node(tx, SL_ID_NEW, person, 1, charles, 2, &c));
  CHECK(sl_tx_create_rel(tx, SL_ID_NEW, "KNOWS", a, c, since, 1, &r));
  int rc = sl_tx_commit(tx, &txid);
  tx = NULL; /* commit frees the transaction, whatever it returns */
  CHECK(rc);
  printf("committed txid %" PRIu64 "\n", txid);

  /* A write that must fail: the transaction keeps the reason. */
  CHECK(sl_tx_begin(st, &tx));
  rc = sl_tx_delete_node(tx, a, false);
  printf("delete without detach: %s (%s)\n", sl_errname(rc), sl_tx_error(tx));
  sl_tx_abort(tx);
  tx = NULL;

  /* Read back through a snapshot. */
  CHECK(sl_view_begin(st, &v));
  sl_counts n;
  CHECK(sl_view_counts(v, &n));
  printf("%" PRIu64 " nodes, %" PRIu64 " relationships, applied txid %" PRIu64 "\n", n.nodes, n.rels,
         n.applied_txid);
  uint64_t ids[] = {a, c};
  for (size_t i = 0; i < 2; i++) {
    sl_node node;
    CHECK(sl_view_node(v, ids[i], &node));
    printf("node %" PRIu64 " :%s", node.id, node.nlabels ? node.labels[0] : "");
    for (size_t p = 0; p < node.nprops; p++) {
      printf(" %s=", node.props[p].key);
      print_value(&node.props[p].value);
    }
    printf("\n");
  }
  sl_rel rel;
  CHECK(sl_view_rel(v, r, &rel));
  printf("rel %" PRIu64 " %s %" PRIu64 "->%" PRIu64 " since=", rel.id, rel.type, rel.start, rel.end);
  print_value(&rel.props[0].value);
  printf("\n");
  printf("relationships of node %" PRIu64 ":\n", a);
  CHECK(sl_view_node_rels(v, a, SL_DIR_BOTH, NULL, print_rel, NULL));
  status = 0;

out:
  if (v) sl_view_end(v);
  if (tx) sl_tx_abort(tx);
  if (st) sl_store_close(st);
  return status;
}
