/*
 * Damaged stores (issue 16, items 13, 14 and 16): a store that cannot be
 * read says so, naming DIR/data.mdb, before it changes anything, and no
 * command crashes on it. data.mdb is damaged as a bad disk or a careless
 * copy would: truncated, one B-tree page made a non-leaf (LMDB reports
 * MDB_CORRUPTED there, or aborts on an assertion when a cursor steps onto
 * it), or two child pointers of a branch swapped (every page well-formed,
 * keys out of order: LMDB reports nothing). tests/lmdb_damage does the
 * last two. The commands run as real processes ($SL_BIN), whose exit status
 * must be 1 (not 134 or 135: SIGABRT or SIGBUS).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "sl_base.h"
#include "store.h"

#define NODES 3000

static const char *bin;
static char damage_bin[4096];

/* A store of NODES nodes with a property each, in 30 transactions: several
 * levels of B-tree in nodes, node_props, node_labels and label_index. */
static void make_store(const char *dir) {
  sl_store *st;
  OK(sl_store_create(dir, NULL));
  OK(sl_store_open(dir, 0, &st));
  const char *labels[] = {"N"};
  for (int t = 0; t < 30; t++) {
    sl_tx *tx;
    OK(sl_tx_begin(st, &tx));
    for (int i = 0; i < NODES / 30; i++) {
      sl_prop p = {.key = "s", .value = {.kind = SL_STRING, .len = 40, .u.s = "0123456789012345678901234567890123456789"}};
      OK(sl_tx_create_node(tx, SL_ID_NEW, labels, 1, &p, 1, NULL));
    }
    OK(sl_tx_commit(tx, NULL));
  }
  sl_store_close(st);
}

static char *slurp(const char *path) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (sl_read_file(path, 1u << 24, &buf, &len)) return strdup("");
  char *s = malloc(len + 1);
  memcpy(s, buf, len);
  s[len] = 0;
  free(buf);
  return s;
}

/* Run `shiplog ARGS` with stdout into DIR.out and stderr into DIR.err;
 * returns the exit status (128 + signal when killed) and the stderr text
 * in *err. */
static int run(const char *dir, char **err, const char *args) {
  char errpath[4200];
  snprintf(errpath, sizeof errpath, "%s.err", dir);
  int st = tu_system("'%s' %s >'%s.out' 2>'%s'", bin, args, dir, errpath);
  *err = slurp(errpath);
  return st;
}

static void expect_refusal(const char *dir, const char *what, const char *args, const char *text) {
  char *err;
  int st = run(dir, &err, args);
  char want[4200];
  snprintf(want, sizeof want, "%s/data.mdb", dir);
  if (st != 1) fail_msg("%s: exit %d, expected 1 (134: SIGABRT, 135: SIGBUS); stderr: %s", what, st, err);
  if (!strstr(err, want)) fail_msg("%s: the message does not name %s: %s", what, want, err);
  if (text && !strstr(err, text)) fail_msg("%s: the message does not say \"%s\": %s", what, text, err);
  free(err);
}

static uint64_t durable_of(const char *dir) {
  char *logdir = tu_path(dir, "log");
  uint64_t txid = 0;
  OK(sl_log_read_durable_mark(logdir, &txid));
  free(logdir);
  return txid;
}

static int setup(void **state) {
  (void)state;
  bin = tu_shiplog_bin();
  if (!bin) return 0;
  char b[4096];
  snprintf(b, sizeof b, "%s", bin);
  snprintf(damage_bin, sizeof damage_bin, "%s/lmdb_damage", dirname(b));
  return 0;
}

/* Item 14: a truncated data.mdb used to kill stats, verify, export and dump
 * with SIGBUS (exit 135). Now every open refuses it, naming the file and
 * both sizes, and a writer's open leaves the file as it was. */
static void damage_truncated(void **state) {
  (void)state;
  if (!bin) skip();
  char *dir = strdup(tu_tmpdir("damage_truncated"));
  make_store(dir);
  char *data = tu_path(dir, "data.mdb"), *dump = tu_path(dir, "../damage_truncated.dump"), args[8400];
  struct stat sb;
  assert_int_equal(stat(data, &sb), 0);
  off_t cut = sb.st_size / 2 / 4096 * 4096 + 100;
  assert_int_equal(truncate(data, cut), 0);

  snprintf(args, sizeof args, "stats '%s'", dir);
  expect_refusal(dir, "stats", args, "the file was truncated");
  snprintf(args, sizeof args, "verify '%s'", dir);
  expect_refusal(dir, "verify", args, "the file was truncated");
  snprintf(args, sizeof args, "export '%s'", dir);
  expect_refusal(dir, "export", args, "the file was truncated");
  unlink(dump);
  snprintf(args, sizeof args, "dump '%s' --to '%s'", dir, dump);
  expect_refusal(dir, "dump", args, "the file was truncated");
  assert_int_equal(access(dump, F_OK), -1);
  char *err;
  snprintf(args, sizeof args, "stats '%s'", dir);
  assert_int_equal(run(dir, &err, args), 1);
  char sizes[64];
  snprintf(sizes, sizeof sizes, "holds %lld bytes", (long long)cut);
  if (!strstr(err, sizes)) fail_msg("the refusal does not give the file's size: %s", err);
  free(err);

  sl_store *st;
  tu_capture_begin();
  ERR(SL_ECORRUPT, sl_store_open(dir, SL_OPEN_RDONLY, &st));
  ERR(SL_ECORRUPT, sl_store_open(dir, 0, &st));
  free(tu_capture_end());
  assert_int_equal(stat(data, &sb), 0);
  assert_int_equal(sb.st_size, cut); /* the writer's open did not grow it over the hole */
  free(data);
  free(dump);
  sl_remove_tree(dir);
  free(dir);
}

/* Item 13: damaged B-tree pages. dump used to exit 0 with a file only load
 * refused (or abort), verify to print an export error without naming
 * data.mdb, exec to go on writing. */
static void damage_pages(void **state) {
  (void)state;
  if (!bin) skip();
  const char *modes[][2] = {{"nodes", "leaf"}, {"nodes", "swap"}, {"node_props", "swap"}, {"label_index", "leaf"}};
  char *orig = strdup(tu_tmpdir("damage_pages_orig"));
  make_store(orig);
  for (size_t m = 0; m < SL_ARRAY_LEN(modes); m++) {
    char name[64], args[8400];
    snprintf(name, sizeof name, "damage_pages_%zu", m);
    char *dir = strdup(tu_tmpdir(name));
    assert_int_equal(tu_system("cp -a '%s/.' '%s' && '%s' '%s/data.mdb' %s %s", orig, dir, damage_bin, dir,
                               modes[m][0], modes[m][1]),
                     0);
    fprintf(stderr, "damage_pages: %s %s\n", modes[m][0], modes[m][1]);
    uint64_t durable = durable_of(dir);
    char *dump = tu_path(dir, "../damage_pages.dump");
    unlink(dump);
    snprintf(args, sizeof args, "dump '%s' --to '%s'", dir, dump);
    expect_refusal(dir, "dump", args, modes[m][0]);
    if (access(dump, F_OK) == 0) fail_msg("a refused dump left %s", dump);
    snprintf(args, sizeof args, "verify '%s'", dir);
    expect_refusal(dir, "verify", args, "is damaged");
    snprintf(args, sizeof args, "export '%s'", dir);
    expect_refusal(dir, "export", args, "is damaged");
    snprintf(args, sizeof args, "exec '%s' '%s/mut.jsonl'", dir, dir);
    char *mut = tu_path(dir, "mut.jsonl");
    tu_write_file(mut, "{\"ops\":[{\"op\":\"create_node\",\"id\":100000,\"labels\":[\"N\"]}]}\n"
                       "{\"ops\":[{\"op\":\"set_node_prop\",\"id\":3000,\"key\":\"x\",\"value\":1}]}\n");
    expect_refusal(dir, "exec", args, "refusing to write");
    assert_int_equal(durable_of(dir), durable); /* nothing committed */
    free(mut);
    free(dump);
    sl_remove_tree(dir);
    free(dir);
  }
  sl_remove_tree(orig);
  free(orig);
}

/* A page LMDB finds damaged while a writer has the store open: that write
 * fails with SL_ECORRUPT and the store takes no more writes. */
static void damage_write_sticky(void **state) {
  (void)state;
  if (!bin) skip();
  char *dir = strdup(tu_tmpdir("damage_sticky"));
  make_store(dir);
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  OK(sl_store_check(st));
  /* The writer maps data.mdb shared: the damage reaches its pages at once. */
  assert_int_equal(tu_system("'%s' '%s/data.mdb' nodes leaf", damage_bin, dir), 0);
  /* The results are checked after the capture ends, so that a failure
   * shows what the store said. */
  tu_capture_begin();
  int check = sl_store_check(st), begin, create = 0, commit = 0, again;
  sl_tx *tx;
  if (!(begin = sl_tx_begin(st, &tx))) {
    /* A new highest id goes into the damaged rightmost leaf. (Setting a
     * property of a node that has others reads only node_props.) */
    create = sl_tx_create_node(tx, NODES + 1, NULL, 0, NULL, 0, NULL);
    commit = sl_tx_commit(tx, NULL);
  }
  if (!(again = sl_tx_begin(st, &tx))) sl_tx_abort(tx);
  char *err = tu_capture_end();
  if (check != SL_ECORRUPT || begin || create != SL_ECORRUPT || commit != SL_ECORRUPT || again != SL_ECORRUPT)
    fail_msg("check %d, begin %d, create %d, commit %d, begin again %d (want %d but begin 0): %s", check, begin, create,
             commit, again, SL_ECORRUPT, err);
  if (!strstr(err, "data.mdb: LMDB database nodes is damaged")) fail_msg("not named: %s", err);
  free(err);
  uint64_t durable = durable_of(dir);
  sl_store_close(st);
  assert_int_equal(durable_of(dir), durable);
  sl_remove_tree(dir);
  free(dir);
}

/* Item 16: stats on a standby (no log of its own) used to fail with "open
 * log directory ...: No such file". */
static void damage_stats_standby(void **state) {
  (void)state;
  if (!bin) skip();
  char *dir = strdup(tu_tmpdir("damage_standby"));
  sl_store_options so = {.no_log = true};
  OK(sl_store_create(dir, &so));
  char *err, args[8400];
  snprintf(args, sizeof args, "stats '%s'", dir);
  int st = run(dir, &err, args);
  char outpath[4200];
  snprintf(outpath, sizeof outpath, "%s.out", dir);
  char *out = slurp(outpath);
  if (st != 0 || !strstr(out, "standby (no log)") || !strstr(out, "last txid      0"))
    fail_msg("stats on a standby: exit %d: %s%s", st, out, err);
  free(out);
  free(err);
  snprintf(args, sizeof args, "stats '%s' --json", dir);
  st = run(dir, &err, args);
  out = slurp(outpath);
  if (st != 0 || !strstr(out, "\"standby\":true,\"log\":null") || !strstr(out, "\"nodes\":0"))
    fail_msg("stats --json on a standby: exit %d: %s%s", st, out, err);
  free(out);
  free(err);
  sl_remove_tree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(damage_truncated),
      cmocka_unit_test(damage_pages),
      cmocka_unit_test(damage_write_sticky),
      cmocka_unit_test(damage_stats_standby),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
