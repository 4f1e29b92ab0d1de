/*
 * fuzz_query: a Cypher statement (the whole input) parsed, planned and run
 * to its last row against a small graph, then rolled back, so every input
 * meets the same graph. Time, memory and hops are bounded as a server
 * would bound them: the engine must refuse or finish, never crash or leak.
 */
#include "fuzz.h"

#include <string.h>

#include "sl_base.h"
#include "store.h"

static sl_store *st;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/query-store", fuzz_scratch());
  if (sl_store_create(dir, NULL) || sl_store_open(dir, 0, &st)) abort();
  static const char graph[] =
      "CREATE (a:A {n: 1, s: 'x', l: [1, 2]})-[:R {w: 1.5}]->(b:B {n: 2}), (b)-[:R]->(c:A:C), (c)-[:S]->(a), (a)-[:R]->(a)";
  sl_qtx *t;
  sl_qcursor *c;
  if (sl_qtx_begin(st, true, NULL, &t) || sl_qtx_run(t, graph, strlen(graph), NULL, 0, &c, NULL) ||
      sl_qcursor_close(c, NULL) || sl_qtx_commit(t, NULL, NULL))
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sl_query_options o = {.timeout_ms = 1000, .memory_bytes = 16u << 20, .max_hops = 4};
  sl_qvalue one = {.kind = SL_INT, .u.v = {.kind = SL_INT, .u.i = 1}};
  sl_qparam params[] = {{"p", one}};
  sl_qtx *t;
  sl_qcursor *c;
  sl_query_error err;
  if (sl_qtx_begin(st, true, &o, &t)) abort();
  if (!sl_qtx_run(t, (const char *)data, size, params, 1, &c, &err)) {
    const sl_qvalue *row;
    while (sl_qcursor_next(c, &row, &err) == 1) {
    }
    sl_qcursor_close(c, NULL);
  }
  sl_qtx_rollback(t);
  return 0;
}
