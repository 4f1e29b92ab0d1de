/*
 * Tests of dump chains (backup/chain.h) on real stores and real files: a
 * chain of a store (a full dump, then incrementals, then nothing new) is
 * listed and checked; a missing middle file breaks the chain and loading
 * it is refused with nothing built, and so is a newest file that cannot
 * be read (its name places it); --keep-full retention removes whole
 * older chains; loading the chain gives a store whose canonical export
 * equals the source's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "chain.h"
#include "log.h"
#include "sl_base.h"
#include "store.h"


/* n transactions of one node each (ids from *next) on the store in dir;
 * the store is closed again, as a timer's dump would find it. */
static void commit(const char *dir, uint64_t *next, int n) {
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  for (int i = 0; i < n; i++) {
    sl_tx *tx;
    const char *label = "Person";
    sl_value v = {.kind = SL_INT, .u.i = (int64_t)*next * 7};
    OK(sl_tx_begin(st, &tx));
    OK(sl_tx_create_node(tx, *next, &label, 1, NULL, 0, NULL));
    OK(sl_tx_set_node_prop(tx, *next, "n", &v));
    OK(sl_tx_commit(tx, NULL));
    ++*next;
  }
  sl_store_close(st);
}

static char *store_dir(const char *name) {
  char *d = tu_path(tu_tmpdir(name), "store");
  OK(sl_store_create(d, NULL));
  return d;
}

static void add(const char *store, const char *dir, uint64_t full_every_s, sl_chain_add_result *res) {
  sl_chain_add_options o = {.full_every_s = full_every_s};
  OK(sl_chain_add(store, dir, &o, res));
}

static char *chain_path(const char *dir, const char *name) { return tu_path(dir, name); }

/* The store a chain was loaded into holds the source's graph, byte for byte. */
static void assert_same_graph(const char *src, const char *loaded) {
  size_t la, lb;
  char *a = tu_export(src, &la), *b = tu_export(loaded, &lb);
  assert_true(la > 0);
  assert_int_equal(la, lb);
  assert_memory_equal(a, b, la);
  free(a);
  free(b);
}

/* Full, two incrementals, nothing new: listed as one whole chain. */
static void chain_build_list_load(void **state) {
  (void)state;
  char *st = store_dir("backup_chain");
  char *dir = tu_path(tu_tmpdir("backup_chain_files"), "chain");
  char *into = tu_path(tu_tmpdir("backup_chain_into"), "restored");
  uint64_t next = 1;
  sl_chain_add_result r;

  commit(st, &next, 5);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_true(r.written);
  assert_non_null(r.why); /* no chain yet: a full dump */
  assert_int_equal(r.info.header.kind, SL_DUMP_FULL);
  assert_int_equal(r.last_txid, 5);
  assert_non_null(strstr(r.name, "-full-"));

  commit(st, &next, 3);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_true(r.written);
  assert_null(r.why);
  assert_int_equal(r.info.header.first_txid, 6);
  assert_int_equal(r.info.header.last_txid, 8);
  assert_non_null(strstr(r.name, "-incr-6-8.dump"));

  commit(st, &next, 2);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_true(r.written && !r.why);
  assert_int_equal(r.last_txid, 10);

  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_false(r.written);
  assert_int_equal(r.last_txid, 10);

  /* The store's log is held for the next incremental. */
  char *logdir = tu_path(st, "log");
  uint64_t pos = 0;
  OK(sl_log_consumer_get(logdir, SL_CHAIN_CONSUMER, &pos));
  assert_int_equal(pos, 10);

  for (int verify = 0; verify < 2; verify++) {
    sl_chain_listing l;
    size_t first, end;
    OK(sl_chain_list(dir, NULL, verify, &l));
    assert_int_equal(l.n, 3);
    assert_int_equal(l.chains, 1);
    assert_false(l.broken);
    assert_true(sl_chain_newest(&l, &first, &end));
    assert_int_equal(first, 0);
    assert_int_equal(end, 3);
    for (size_t i = 0; i < l.n; i++) {
      assert_int_equal(l.e[i].chain, 0);
      assert_string_equal(l.e[i].problem, "");
    }
    assert_int_equal(l.e[2].h.last_txid, 10);
    sl_chain_listing_free(&l);
  }

  sl_chain_load_result lr;
  OK(sl_chain_load(dir, into, &(sl_chain_load_options){0}, &lr));
  assert_int_equal(lr.last_txid, 10);
  assert_int_equal(lr.incrementals, 2);
  assert_int_equal(lr.applied, 5);
  assert_same_graph(st, into);
  free(logdir);
  free(st);
  free(dir);
  free(into);
}

/* A missing middle file: the listing names the file after the gap, and
 * loading is refused before anything is built. */
static void chain_missing_middle(void **state) {
  (void)state;
  char *st = store_dir("backup_gap");
  char *dir = tu_path(tu_tmpdir("backup_gap_files"), "chain");
  char *into = tu_path(tu_tmpdir("backup_gap_into"), "restored");
  uint64_t next = 1;
  sl_chain_add_result r;
  char middle[320];

  commit(st, &next, 2);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  commit(st, &next, 2);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  snprintf(middle, sizeof middle, "%s", r.name);
  commit(st, &next, 2);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_int_equal(r.info.header.first_txid, 5);

  char *p = chain_path(dir, middle);
  assert_int_equal(unlink(p), 0);
  free(p);

  sl_chain_listing l;
  OK(sl_chain_list(dir, NULL, true, &l));
  assert_int_equal(l.n, 2);
  assert_true(l.broken);
  assert_int_equal(l.e[0].chain, 0);
  assert_int_equal(l.e[1].chain, -1);
  assert_non_null(strstr(l.e[1].problem, "does not follow its parent"));
  assert_non_null(strstr(l.e[1].problem, "starts at txid 5, the parent ends at txid 2"));
  sl_chain_listing_free(&l);

  sl_chain_load_result lr;
  ERR(SL_EGAP, sl_chain_load(dir, into, &(sl_chain_load_options){0}, &lr));
  struct stat sb;
  assert_int_equal(stat(into, &sb), -1);

  /* The next scheduled run starts a new chain instead of continuing. */
  commit(st, &next, 1);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_true(r.written);
  assert_non_null(r.why);
  assert_int_equal(r.info.header.kind, SL_DUMP_FULL);
  free(st);
  free(dir);
  free(into);
}

/* Flip one byte of the file at off. */
static void flip_byte(const char *path, long off) {
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, off, SEEK_SET), 0);
  int c = fgetc(f);
  assert_true(c != EOF);
  assert_int_equal(fseek(f, off, SEEK_SET), 0);
  assert_int_equal(fputc(c ^ 0x55, f), c ^ 0x55);
  assert_int_equal(fclose(f), 0);
}

/* The newest incremental's header damaged: the file cannot be read, so it
 * has no creation time of its own. It used to sort first (a zeroed
 * header), the chain before it counted as whole, and loading gave txid 4
 * of a chain that holds 6, exit 0. Its name places it now: loading is
 * refused, the next run starts a new chain, and a damaged file that its
 * name puts before the newest full (an older chain's) no longer matters;
 * one whose name says nothing is refused as possibly the newest. */
static void chain_damaged_newest(void **state) {
  (void)state;
  char *st = store_dir("backup_dmg");
  char *dir = tu_path(tu_tmpdir("backup_dmg_files"), "chain");
  char *into = tu_path(tu_tmpdir("backup_dmg_into"), "restored");
  uint64_t next = 1;
  sl_chain_add_result r;
  char newest[320];
  struct stat sb;

  for (int i = 0; i < 3; i++) {
    commit(st, &next, 2);
    add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  }
  assert_int_equal(r.info.header.kind, SL_DUMP_INCREMENTAL);
  assert_int_equal(r.last_txid, 6);
  snprintf(newest, sizeof newest, "%s", r.name);
  char *p = chain_path(dir, newest);
  flip_byte(p, 10);

  sl_chain_listing l;
  OK(sl_chain_list(dir, NULL, false, &l));
  assert_int_equal(l.n, 3);
  assert_true(l.broken);
  assert_string_equal(l.e[2].name, newest); /* after the chain it belongs to */
  assert_int_equal(l.e[2].chain, -1);
  assert_non_null(strstr(l.e[2].problem, "cannot be read"));
  sl_chain_listing_free(&l);
  sl_chain_load_result lr;
  ERR(SL_EGAP, sl_chain_load(dir, into, &(sl_chain_load_options){0}, &lr));
  assert_int_equal(stat(into, &sb), -1);

  /* The next run does not continue the chain past a file it cannot read. */
  commit(st, &next, 1);
  add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
  assert_true(r.written);
  assert_non_null(r.why);
  assert_int_equal(r.info.header.kind, SL_DUMP_FULL);
  assert_int_equal(r.last_txid, 7);

  /* Named as written before that full: an older chain's, passed over. */
  char *older = chain_path(dir, "20000101T000000Z-incr-5-6.dump");
  assert_int_equal(rename(p, older), 0);
  OK(sl_chain_load(dir, into, &(sl_chain_load_options){0}, &lr));
  assert_int_equal(lr.last_txid, 7);
  assert_same_graph(st, into);
  OK(sl_remove_tree(into));

  /* A name that gives no time: it may be the newest file. */
  char *odd = chain_path(dir, "copy.dump");
  assert_int_equal(rename(older, odd), 0);
  ERR(SL_EGAP, sl_chain_load(dir, into, &(sl_chain_load_options){0}, &lr));
  assert_int_equal(stat(into, &sb), -1);
  free(odd);
  free(older);
  free(p);
  free(st);
  free(dir);
  free(into);
}

static void count_removed(void *arg, const char *name) {
  (void)name;
  ++*(int *)arg;
}

/* --keep-full: older chains go whole, the newest N stay. */
static void chain_keep_full(void **state) {
  (void)state;
  char *st = store_dir("backup_keep");
  char *dir = tu_path(tu_tmpdir("backup_keep_files"), "chain");
  uint64_t next = 1;
  sl_chain_add_result r;

  for (int c = 0; c < 3; c++) { /* three chains of a full and an incremental */
    commit(st, &next, 2);
    add(st, dir, 0 /* a full dump every time */, &r);
    assert_int_equal(r.info.header.kind, SL_DUMP_FULL);
    commit(st, &next, 1);
    add(st, dir, SL_CHAIN_FULL_EVERY_DEFAULT_S, &r);
    assert_int_equal(r.info.header.kind, SL_DUMP_INCREMENTAL);
  }
  sl_chain_listing l;
  OK(sl_chain_list(dir, NULL, false, &l));
  assert_int_equal(l.chains, 3);
  assert_int_equal(l.n, 6);
  sl_chain_listing_free(&l);

  int removed = 0;
  OK(sl_chain_retain(dir, 0, NULL, count_removed, &removed)); /* 0: keep all */
  assert_int_equal(removed, 0);
  OK(sl_chain_retain(dir, 5, NULL, count_removed, &removed));
  assert_int_equal(removed, 0);
  OK(sl_chain_retain(dir, 2, NULL, count_removed, &removed));
  assert_int_equal(removed, 2);
  OK(sl_chain_list(dir, NULL, true, &l));
  assert_int_equal(l.chains, 2);
  assert_int_equal(l.n, 4);
  assert_false(l.broken);
  assert_int_equal(l.e[0].h.kind, SL_DUMP_FULL);
  assert_int_equal(l.e[0].h.last_txid, 5);
  sl_chain_listing_free(&l);
  OK(sl_chain_retain(dir, 1, NULL, count_removed, &removed));
  assert_int_equal(removed, 4);
  OK(sl_chain_list(dir, NULL, false, &l));
  assert_int_equal(l.chains, 1);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.e[1].h.last_txid, 9);
  sl_chain_listing_free(&l);
  free(st);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(chain_build_list_load),
      cmocka_unit_test(chain_missing_middle),
      cmocka_unit_test(chain_damaged_newest),
      cmocka_unit_test(chain_keep_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
