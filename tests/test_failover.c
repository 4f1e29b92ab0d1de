/*
 * Failover as library calls (README "Failover"): store/lineage.h's log
 * copy, fork finder and rewind; receiver/failover.h's stream seeding and
 * promote, on a data directory a real receiver (sl_receiver_run in a
 * thread) has loaded, so the stream's layout is the receiver's own. The
 * whole commands with real processes are tests/e2e_failover.sh.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "failover.h"
#include "interchange.h"
#include "lineage.h"
#include "log.h"
#include "receiver.h"
#include "sl_base.h"
#include "store.h"
#include "transaction.pb-c.h"


static const uint8_t ID[SL_STORE_ID_SIZE] = {0xfa, 0x11, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- helpers ------------------------------------------------------------------------------ */

/* A store in dir with n transactions, one node each (name "nT"). */
static void make_store(const char *dir, int n) {
  sl_store_options so = {.segment_size = SL_SEG_SIZE_MIN};
  sl_store *st;
  OK(sl_store_create(dir, &so));
  OK(sl_store_open(dir, 0, &st));
  for (int i = 1; i <= n; i++) {
    char s[32];
    int len = snprintf(s, sizeof s, "n%d", i);
    const char *l = "Person";
    sl_prop p = {"name", {.kind = SL_STRING, .len = (size_t)len, .u.s = s}};
    sl_tx *tx;
    uint64_t id, txid;
    OK(sl_tx_begin(st, &tx));
    OK(sl_tx_create_node(tx, SL_ID_NEW, &l, 1, &p, 1, &id));
    OK(sl_tx_commit(tx, &txid));
    assert_int_equal(txid, (uint64_t)i);
  }
  sl_store_close(st);
}

static sl_counts counts_of(const char *dir) {
  sl_store *st;
  sl_view *v;
  sl_counts c;
  OK(sl_store_open(dir, SL_OPEN_RDONLY, &st));
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  sl_view_end(v);
  sl_store_close(st);
  return c;
}

static size_t count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = 0;
  for (int ch; (ch = fgetc(f)) != EOF;) n += ch == '\n';
  fclose(f);
  return n;
}

/* An op-less transaction (the log never unpacks ops); salt tells two
 * histories with the same txids apart. */
static void append(sl_log *log, uint64_t txid, uint64_t salt) {
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  uint8_t buf[64];
  t.txid = txid;
  t.commit_time_us = 1700000000000000ull + txid * 1000 + salt;
  OK(sl_log_append(log, buf, shiplog__transaction__pack(&t, buf)));
}

/* A log in dir: txids 1..n, those after fork_after with salt 1. */
static void make_log(const char *dir, uint64_t n, uint64_t fork_after) {
  sl_log_options o = {.segment_size = SL_SEG_SIZE_MIN, .first_txid = 1};
  sl_log *log;
  memcpy(o.store_id, ID, SL_STORE_ID_SIZE);
  OK(sl_log_create(dir, &o));
  OK(sl_log_open(dir, ID, &log));
  for (uint64_t t = 1; t <= n; t++) append(log, t, t > fork_after ? 1 : 0);
  OK(sl_log_wait_durable(log, n));
  sl_log_close(log);
}

/* sl_store_rewind's keep, as `shiplog rewind` writes it. */
static int keep_json(void *arg, const sl_frame *f, FILE *out) {
  (*(int *)arg)++;
  return sl_txn_print(f->payload, f->payload_len, true, out);
}

/* ---- the fork of two logs, and a copy -------------------------------------------------------- */

static void failover_find_fork(void **state) {
  (void)state;
  char *root = strdup(tu_tmpdir("failover_fork"));
  char *a = tu_path(root, "a"), *b = tu_path(root, "b"), *c = tu_path(root, "c"), *d = tu_path(root, "d");
  uint64_t fork = 99, last = 99, cs1, cs2;
  /* a: 1..300; b shares 1..120, then its own 121..250 (several segments). */
  make_log(a, 300, 300);
  make_log(b, 250, 120);
  OK(sl_log_find_fork(a, b, &fork, &last));
  assert_int_equal(fork, 120);
  assert_int_equal(last, 300);
  OK(sl_log_find_fork(b, a, &fork, &last));
  assert_int_equal(fork, 120);
  assert_int_equal(last, 250);
  /* c: a prefix of a: nothing of c's own, a has 201..300 alone. */
  make_log(c, 200, 200);
  OK(sl_log_find_fork(c, a, &fork, &last));
  assert_int_equal(fork, 200);
  assert_int_equal(last, 200);
  OK(sl_log_find_fork(a, c, &fork, &last));
  assert_int_equal(fork, 200);
  assert_int_equal(last, 300);
  /* A copy is the same history: shares everything, same checksums. */
  OK(sl_log_copy(b, d));
  OK(sl_log_find_fork(d, b, &fork, &last));
  assert_int_equal(fork, 250);
  assert_int_equal(last, 250);
  OK(sl_log_checksum_at(b, 250, &cs1));
  OK(sl_log_checksum_at(d, 250, &cs2));
  assert_int_equal(cs1, cs2);
  /* ... and a copy onto existing segments is refused. */
  assert_int_not_equal(sl_log_copy(b, d), 0);
  free(a), free(b), free(c), free(d), free(root);
}

/* ---- rewind ------------------------------------------------------------------------------ */

static void failover_rewind_store(void **state) {
  (void)state;
  char *dir = strdup(tu_tmpdir("failover_rewind"));
  char *logdir = tu_path(dir, "log");
  sl_rewind_options o = {.keep = keep_json};
  sl_rewind_result res;
  int kept = 0;
  uint64_t durable;
  o.keep_arg = &kept;
  make_store(dir, 40);
  /* Past the end, or cutting without keeping: refused, nothing changed. */
  ERR(SL_EINVAL, sl_store_rewind(dir, 41, &o, &res));
  ERR(SL_EINVAL, sl_store_rewind(dir, 30, NULL, &res));
  assert_int_equal(counts_of(dir).applied_txid, 40);
  /* In use: refused. */
  sl_store *st;
  OK(sl_store_open(dir, 0, &st));
  ERR(SL_ELOCKED, sl_store_rewind(dir, 30, &o, &res));
  sl_store_close(st);

  OK(sl_store_rewind(dir, 25, &o, &res));
  assert_int_equal(res.last_txid, 40);
  assert_int_equal(kept, 15);
  assert_non_null(strstr(res.kept, "/rewound/txids-26-40.jsonl"));
  assert_int_equal(count_lines(res.kept), 15);
  OK(sl_log_read_durable_mark(logdir, &durable));
  assert_int_equal(durable, 25);
  sl_counts c = counts_of(dir);
  assert_int_equal(c.applied_txid, 25);
  assert_int_equal(c.nodes, 25);
  /* The store writes on from there. */
  sl_tx *tx;
  uint64_t id, txid;
  const char *l = "Person";
  OK(sl_store_open(dir, 0, &st));
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &l, 1, NULL, 0, &id));
  OK(sl_tx_commit(tx, &txid));
  assert_int_equal(txid, 26);
  sl_store_close(st);
  /* To its own end: nothing cut, nothing kept. */
  OK(sl_store_rewind(dir, 26, &o, &res));
  assert_string_equal(res.kept, "");
  assert_int_equal(kept, 15);
  assert_int_equal(counts_of(dir).applied_txid, 26);
  free(logdir), free(dir);
}

/* ---- seeding a stream and promoting it ------------------------------------------------------ */

static void failover_promote_stream(void **state) {
  (void)state;
  char *root = strdup(tu_tmpdir("failover_promote"));
  char *prim = tu_path(root, "primary"), *data = tu_path(root, "data"), *into = tu_path(root, "new");
  char *plog = tu_path(prim, "log"), *nlog = tu_path(into, "log");
  char archive[4096], promoted[4096];
  sl_promote_result res;
  make_store(prim, 30);
  OK(sl_mkdir_p(data));
  /* Seeded as the receiver builds a stream; a second seed is refused. */
  OK(sl_stream_seed(data, "s", plog));
  ERR(SL_EEXIST, sl_stream_seed(data, "s", plog));
  ERR(SL_ENOTFOUND, sl_promote(data, "nope", into, &res));

  /* A real receiver loads it and builds the standby from the archive;
   * while it serves the directory, promote is refused. */
  tu_receiver r = {0};
  snprintf(r.dir, sizeof r.dir, "%s", data);
  r.o = (sl_receiver_options){.listen = "127.0.0.1:0", .data_dir = r.dir, .insecure = true};
  tu_receiver_start(&r);
  sl_stream_status ss = {0};
  for (int i = 0; i < 500 && ss.applied < 30; i++) {
    OK(sl_stream_status_read(data, "s", &ss));
    if (ss.applied < 30) usleep(10000);
  }
  assert_int_equal(ss.applied, 30);
  ERR(SL_ELOCKED, sl_promote(data, "s", into, &res));
  tu_receiver_stop(&r);
  assert_int_equal(access(into, F_OK), -1);

  /* A promote that cannot build the new primary (INTO holds a file) fences
   * nothing: the old primary's history is still the stream's. It used to
   * record epoch 1 first and fail after, so the only primary was refused
   * as diverged and no new one existed. */
  sl_stream_path(archive, sizeof archive, data, "s", SL_STREAM_ARCHIVE);
  sl_stream_path(promoted, sizeof promoted, data, "s", SL_STREAM_PROMOTED);
  char *stray = tu_path(into, "stray");
  OK(sl_mkdir_p(into));
  FILE *sf = fopen(stray, "w");
  assert_non_null(sf);
  fclose(sf);
  ERR(SL_EEXIST, sl_promote(data, "s", into, &res));
  sl_history h0;
  OK(sl_history_load(archive, &h0));
  assert_int_equal(sl_history_epoch(&h0), 0);
  assert_int_equal(access(promoted, F_OK), -1);
  uint64_t f0, l0;
  OK(sl_log_find_fork(plog, archive, &f0, &l0));
  assert_int_equal(f0, 30); /* the old primary shares all 30: it may ship on */
  assert_int_equal(unlink(stray), 0);
  free(stray);

  OK(sl_promote(data, "s", into, &res));
  assert_int_equal(res.epoch, 1);
  assert_int_equal(res.last_txid, 30);
  assert_string_equal(res.into, into);
  /* The new primary holds everything, with the archive's history and
   * checksums; the fence is in the archive. */
  char *want = tu_export(prim, NULL), *got = tu_export(into, NULL);
  assert_string_equal(got, want);
  free(want), free(got);
  uint64_t fork, last, cs;
  sl_stream_path(archive, sizeof archive, data, "s", SL_STREAM_ARCHIVE);
  OK(sl_log_find_fork(nlog, archive, &fork, &last));
  assert_int_equal(fork, 30);
  OK(sl_log_checksum_at(archive, 30, &cs));
  assert_int_equal(cs, res.checksum);
  sl_history h;
  OK(sl_history_load(archive, &h));
  assert_int_equal(sl_history_epoch(&h), 1);
  assert_int_equal(h.e[h.n - 1].first_txid, 31);
  OK(sl_history_load(nlog, &h));
  assert_int_equal(sl_history_epoch(&h), 1);
  sl_stream_path(promoted, sizeof promoted, data, "s", SL_STREAM_PROMOTED);
  uint8_t *text;
  size_t len;
  OK(sl_read_file(promoted, 4096, &text, &len));
  assert_true(len > 16 && memcmp(text, "epoch=1\ntxid=30\n", 16) == 0);
  free(text);
  /* It writes on in epoch 1. */
  sl_store *st;
  sl_tx *tx;
  uint64_t id, txid;
  const char *l = "Person";
  OK(sl_store_open(into, 0, &st));
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &l, 1, NULL, 0, &id));
  OK(sl_tx_commit(tx, &txid));
  assert_int_equal(txid, 31);
  sl_store_close(st);
  /* The old primary has only txids the stream has: it shares all 30. */
  OK(sl_log_find_fork(plog, archive, &fork, &last));
  assert_int_equal(fork, 30);
  assert_int_equal(last, 30);
  /* Into a directory that holds something: refused, left as it was. */
  assert_int_not_equal(sl_promote(data, "s", into, &res), 0);
  assert_int_equal(counts_of(into).applied_txid, 31);
  free(prim), free(data), free(into), free(plog), free(nlog), free(root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(failover_find_fork),
      cmocka_unit_test(failover_rewind_store),
      cmocka_unit_test(failover_promote_stream),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
