/*
 * Tests of sl_store_verify (store.h, store/verify.c) on real stores: a
 * store verifies, with its frame and state facts; a store whose data.mdb
 * holds a state its log does not replay to (another history's LMDB file at
 * the same txid) is reported FAILED, naming the differing line; a damaged
 * frame is reported with its txid; a store loaded from a full dump (its log
 * begins after the image) has its state checked for consistency, and a
 * database that disagrees with the others (an adjacency entry, a label
 * index entry removed behind the store's back) is named.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>
#include <unistd.h>

#include "testutil.h"

#include "dump.h"
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

/* Two nodes, labelled, and a relationship between them, in dir. */
static void small_graph(const char *dir) {
  sl_store *st;
  sl_tx *tx;
  const char *label = "Person";
  OK(sl_store_create(dir, NULL));
  OK(sl_store_open(dir, 0, &st));
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, 1, &label, 1, NULL, 0, NULL));
  OK(sl_tx_create_node(tx, 2, &label, 1, NULL, 0, NULL));
  OK(sl_tx_create_rel(tx, 1, "KNOWS", 1, 2, NULL, 0, NULL));
  OK(sl_tx_commit(tx, NULL));
  sl_store_close(st);
}

/* Remove the first key of LMDB database `db` of the store in dir, as
 * damage that keeps every page whole would. */
static void drop_first_key(const char *dir, const char *db) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *c;
  MDB_val k, v;
  OK(mdb_env_create(&env));
  OK(mdb_env_set_maxdbs(env, 16));
  OK(mdb_env_set_mapsize(env, 1ull << 30));
  OK(mdb_env_open(env, dir, MDB_NOTLS, 0600));
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, db, 0, &dbi));
  OK(mdb_cursor_open(txn, dbi, &c));
  OK(mdb_cursor_get(c, &k, &v, MDB_FIRST));
  OK(mdb_cursor_del(c, 0));
  mdb_cursor_close(c);
  OK(mdb_txn_commit(txn));
  mdb_env_close(env);
}

static void verify_loaded_store_is_checked(void **state) {
  (void)state;
  const char *base = tu_tmpdir("verify_loaded");
  char *a = tu_path(base, "a"), *dump = tu_path(base, "a.dump"), *b = tu_path(base, "b");
  small_graph(a);
  sl_store *st;
  OK(sl_store_open(a, SL_OPEN_RDONLY, &st));
  FILE *f = fopen(dump, "w");
  assert_non_null(f);
  OK(sl_dump_full(st, fileno(f), NULL, NULL));
  fclose(f);
  sl_store_close(st);
  OK(sl_load_full(dump, b, NULL, NULL));
  sl_verify_result res;
  OK(sl_store_verify(b, canonical, &res));
  assert_false(res.state_checked); /* its log begins after the image */
  assert_true(res.state_consistent);
  assert_int_equal(res.first_txid, 2);
  assert_int_equal(res.nodes, 2);
  assert_int_equal(res.rels, 1);
  free(a);
  free(dump);
  free(b);
}

static void verify_names_inconsistent_state(void **state) {
  (void)state;
  static const struct {
    const char *db, *says;
  } cases[] = {
      {"adjacency", "relationship 1 is missing from node 1's adjacency"},
      {"label_index", "node 1 has the label \"Person\", which the label index lacks"},
      {"nodes", "node 1 has a label but is no node"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char name[64];
    snprintf(name, sizeof name, "verify_inconsistent_%zu", i);
    char *dir = tu_path(tu_tmpdir(name), "store");
    small_graph(dir);
    drop_first_key(dir, cases[i].db);
    sl_verify_result res;
    tu_capture_begin();
    int rc = sl_store_verify(dir, canonical, &res);
    char *err = tu_capture_end();
    assert_int_equal(rc, SL_ECORRUPT);
    assert_non_null(strstr(err, "is inconsistent"));
    if (!strstr(err, cases[i].says)) fail_msg("%s: want \"%s\" in: %s", cases[i].db, cases[i].says, err);
    free(err);
    free(dir);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verify_good_store),
      cmocka_unit_test(verify_lmdb_differs_from_log),
      cmocka_unit_test(verify_loaded_store_is_checked),
      cmocka_unit_test(verify_names_inconsistent_state),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
