/*
 * Tests of sl_store_verify (store.h, store/verify.c) on real stores: a
 * store verifies, with its frame and state facts; a store whose data.mdb
 * holds a state its log does not replay to (another history's LMDB file at
 * the same txid) is reported FAILED, naming the differing line; a damaged
 * frame is reported with its txid.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "interchange.h"
#include "sl_base.h"
#include "store.h"


static int canonical(sl_view *v, FILE *f, const char *name) { return sl_export_canonical(v, f, name, NULL, NULL); }

/* n one-node transactions on the store in dir, values from salt. */
static void commit(const char *dir, uint64_t first_id, int n, int64_t salt) {
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  for (int i = 0; i < n; i++) {
    sl_tx *tx;
    const char *label = "Person";
    sl_value v = {.kind = SL_INT, .u.i = salt + i};
    OK(sl_tx_begin(st, &tx));
    OK(sl_tx_create_node(tx, first_id + (uint64_t)i, &label, 1, NULL, 0, NULL));
    OK(sl_tx_set_node_prop(tx, first_id + (uint64_t)i, "v", &v));
    OK(sl_tx_commit(tx, NULL));
  }
  sl_store_close(st);
}

static void verify_good_store(void **state) {
  (void)state;
  char *st = tu_path(tu_tmpdir("verify_good"), "store");
  OK(sl_store_create(st, NULL));
  commit(st, 1, 7, 100);
  sl_verify_result res;
  OK(sl_store_verify(st, canonical, &res));
  assert_true(res.state_checked);
  assert_int_equal(res.frames, 7);
  assert_int_equal(res.segments, 1);
  assert_int_equal(res.first_txid, 1);
  assert_int_equal(res.last_txid, 7);
  assert_int_equal(res.applied_txid, 7);
  assert_int_equal(res.nodes, 7);
  assert_int_equal(res.rels, 0);
  free(st);
}

/* Two copies share txids 1..3, then each commits a different txid 4; the
 * second's data.mdb put under the first's log is a state the log does not
 * replay to. */
static void verify_lmdb_differs_from_log(void **state) {
  (void)state;
  const char *base = tu_tmpdir("verify_differs");
  char *a = tu_path(base, "a"), *b = tu_path(base, "b");
  OK(sl_store_create(a, NULL));
  commit(a, 1, 3, 0);
  assert_int_equal(tu_system("cp -a '%s' '%s'", a, b), 0);
  commit(a, 10, 1, 1000);
  commit(b, 10, 1, 2000);
  assert_int_equal(tu_system("cp '%s/data.mdb' '%s/data.mdb'", b, a), 0);

  sl_verify_result res;
  tu_capture_begin();
  int rc = sl_store_verify(a, canonical, &res);
  char *err = tu_capture_end();
  assert_int_equal(rc, SL_ECORRUPT);
  assert_non_null(strstr(err, "FAILED: the state at txid 4"));
  assert_non_null(strstr(err, "differs from a replay of the log, from line"));
  free(err);
  OK(sl_store_verify(b, canonical, &res)); /* the copy itself is whole */
  free(a);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verify_good_store),
      cmocka_unit_test(verify_lmdb_differs_from_log),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
