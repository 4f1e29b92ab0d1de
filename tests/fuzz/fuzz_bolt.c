/*
 * fuzz_bolt: bytes from a Bolt client after the handshake, as the server
 * reads them (bolt/server.c): the first byte picks the protocol version
 * (an index into sl_bolt_versions), the rest is a chunk stream, reassembled
 * with a small message limit and handled message by message by a session
 * on the echo backend (so parameters go through sl_bolt_to_value and back),
 * until the session ends it. The same bytes are also decoded as one
 * PackStream value under tight limits, converted to sl_value, and encoded
 * again. SLEEP queries and ROWS over 1000 are refused (they would only
 * take time).
 */
#include <string.h>

#include "bolt.h"
#include "fuzz.h"

static sl_bolt_backend backend;

static int no_sleep_run(void *conn, const char *query, const sl_pack *params, const sl_bolt_tx_params *autocommit,
                        sl_arena *a, sl_bolt_run_result *res, int64_t *qid, sl_bolt_error *err) {
  if (!strncmp(query, "SLEEP", 5) || (!strncmp(query, "ROWS", 4) && strtoll(query + 4, NULL, 10) > 1000))
    return sl_bolt_echo_backend.run(conn, "ERROR Neo.X.Y neither sleeping nor millions of rows", params, autocommit, a,
                                    res, qid, err);
  return sl_bolt_echo_backend.run(conn, query, params, autocommit, a, res, qid, err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  backend = sl_bolt_echo_backend;
  backend.run = no_sleep_run;
  sl_diag_set_verbose(false);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const sl_pack_limits lim = {.max_depth = 16, .max_items = 4096, .max_string = 1 << 16, .max_total = 1 << 20};
  uint16_t version = sl_bolt_versions[data[0] % sl_bolt_n_versions];
  sl_bolt_session_config cfg = {.backend = &backend, .limits = lim, .idle_timeout_s = 1};
  sl_bolt_session *s = NULL;
  sl_bolt_dechunker dc = {.max_message = 1 << 16};
  sl_buf msg = {0}, out = {0};
  if (sl_bolt_session_new(&cfg, version, "fuzz:1", 1, &s)) return 0;
  if (sl_bolt_dechunk_feed(&dc, data + 1, size - 1) == 0) {
    bool partial;
    while (sl_bolt_dechunk_next(&dc, &msg, &partial) == 1) {
      out.len = 0;
      if (sl_bolt_session_handle(s, msg.data, msg.len, &out, NULL, NULL) < 0) break;
    }
  }
  sl_bolt_session_free(s);

  /* the bytes as one value */
  sl_arena a = {0};
  sl_pack v;
  size_t used;
  if (sl_pack_decode(data + 1, size - 1, &lim, &a, &v, &used) == 0) {
    sl_value sv;
    char why[128];
    sl_bolt_dialect d = {.element_ids = data[0] & 1, .utc = data[0] & 2};
    out.len = 0;
    (void)sl_pack_encode(&out, &v);
    if (sl_bolt_to_value(&a, &v, d, NULL, &sv, why, sizeof why) == 0) {
      sl_pack back;
      (void)sl_bolt_from_value(&a, &sv, d, &back);
    }
  }
  sl_arena_free(&a);
  sl_bolt_dechunk_free(&dc);
  sl_buf_free(&msg);
  sl_buf_free(&out);
  return 0;
}
