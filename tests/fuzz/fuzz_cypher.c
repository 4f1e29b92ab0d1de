/*
 * fuzz_cypher: the Cypher parser (and the semantic checks behind it) through
 * the public query API: each input is one statement, run in a read query
 * transaction on an empty store, its rows pulled (there are few: the graph
 * is empty), then rolled back. Any input must give rows or a statement
 * error, never a crash or a leak; an error must carry a Neo4j status code, a
 * message, and (for a syntax error) a position inside the text.
 *
 * Until the engine's API is in shiplog.h (SL_QUERY_MAX_HOPS marks it), the
 * harness compiles to nothing that runs, so that the tree builds before the
 * query module is merged.
 */
#include "fuzz.h"

#include <string.h>

#include "shiplog.h"

#ifdef SL_QUERY_MAX_HOPS

static sl_store *st;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/cypher-store", fuzz_scratch());
  if (sl_store_create(dir, NULL) || sl_store_open(dir, 0, &st)) abort();
  return 0;
}

/* The error a statement gave must say what and where, as spec/query.md's
 * FILE:LINE:COL messages need. */
static void check_error(const sl_query_error *err, const char *text, size_t len) {
  if (!memchr(err->code, '\0', sizeof err->code) || !memchr(err->message, '\0', sizeof err->message)) abort();
  if (strncmp(err->code, "Neo.", 4) != 0 || !err->message[0]) abort();
  if (!strstr(err->code, "SyntaxError")) return;
  unsigned lines = 1;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  if (err->line < 1 || err->line > lines || err->column < 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  sl_query_options opt = {.timeout_ms = 1000, .memory_bytes = 16u << 20, .max_hops = 4};
  sl_qtx *q;
  if (sl_qtx_begin(st, false, &opt, &q)) abort();
  sl_qcursor *c = NULL;
  sl_query_error err;
  memset(&err, 0, sizeof err);
  int rc = sl_qtx_run(q, text, size, NULL, 0, &c, &err);
  if (rc == 0) {
    const sl_qvalue *row;
    const char *const *names;
    size_t ncols = sl_qcursor_columns(c, &names);
    for (size_t i = 0; i < ncols; i++)
      if (!names[i]) abort();
    for (int n = 0; n < 1000 && (rc = sl_qcursor_next(c, &row, &err)) > 0; n++) {
    }
    if (rc < 0) check_error(&err, text, size);
    memset(&err, 0, sizeof err);
    /* a failure close reports is new only when the rows ran out cleanly */
    if (sl_qcursor_close(c, &err) < 0 && rc == 0) check_error(&err, text, size);
  } else if (rc == SL_EINVAL) {
    check_error(&err, text, size);
  }
  sl_qtx_rollback(q);
  return 0;
}

#else

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)data;
  (void)size;
  return 0;
}

#endif
