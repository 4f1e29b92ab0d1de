/*
 * Lineage (store/log.h "LINEAGE", store/lineage.h): the rolling checksum
 * across rotation, reopen and truncation; epochs and the history file; the
 * receiver's rules (equal / extends / behind / diverged) as a pure function;
 * a log given the lineage it continues (ORIGIN).
 */
#include "testutil.h"

#include "lineage.h"
#include "log.h"
#include "sl_base.h"
#include "transaction.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_TX 900

static const uint8_t ID[SL_STORE_ID_SIZE] = {0x11, 0x22, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* An op-less transaction: enough for the log, which never unpacks ops. The
 * salt makes two histories with the same txids differ. */
static size_t pack_tx(uint64_t txid, uint64_t epoch, uint64_t salt, uint8_t *buf) {
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = txid;
  t.commit_time_us = 1700000000000000ull + txid * 1000 + salt;
  t.has_epoch = epoch != 0;
  t.epoch = epoch;
  return shiplog__transaction__pack(&t, buf);
}

static void append(sl_log *log, uint64_t txid, uint64_t epoch, uint64_t salt) {
  uint8_t buf[64];
  size_t len = pack_tx(txid, epoch, salt, buf);
  assert_int_equal(sl_log_append(log, buf, len), 0);
}

static sl_log *new_log(const char *dir) {
  sl_log_options o = {.segment_size = SL_SEG_SIZE_MIN, .first_txid = 1};
  memcpy(o.store_id, ID, SL_STORE_ID_SIZE);
  sl_log *log;
  assert_int_equal(sl_log_create(dir, &o), 0);
  assert_int_equal(sl_log_open(dir, ID, &log), 0);
  return log;
}

static void lineage_chain_rotation_reopen(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("lineage_chain");
  uint64_t cs[N_TX + 1] = {0};
  sl_log *log = new_log(dir);
  for (uint64_t t = 1; t <= N_TX; t++) {
    append(log, t, t > 200 ? 1 : 0, 0);
    cs[t] = sl_log_checksum(log);
    assert_int_not_equal(cs[t], cs[t - 1]);
  }
  assert_int_equal(sl_log_wait_durable(log, N_TX), 0);
  sl_log_stats st;
  sl_log_get_stats(log, &st);
  assert_true(st.rotations > 3); /* the chain crosses segment headers */
  /* An older epoch after a newer one is refused. */
  uint8_t buf[64];
  size_t len = pack_tx(N_TX + 1, 0, 0, buf);
  assert_int_equal(sl_log_append(log, buf, len), SL_EINVAL);
  sl_log_close(log);

  /* Reopen (recovery) keeps cs and epoch; the history names epoch 1. */
  assert_int_equal(sl_log_open(dir, ID, &log), 0);
  assert_true(sl_log_checksum(log) == cs[N_TX]);
  assert_int_equal(sl_log_epoch(log), 1);
  sl_history h;
  sl_log_history(log, &h);
  assert_int_equal(h.n, 1);
  assert_int_equal(h.e[0].epoch, 1);
  assert_int_equal(h.e[0].first_txid, 201);
  assert_true(h.e[0].prev_checksum == cs[200]);
  sl_log_close(log);

  /* Every point from the files alone, and from the reader. */
  for (uint64_t t = 0; t <= N_TX; t++) {
    uint64_t v = 0;
    assert_int_equal(sl_log_checksum_at(dir, t, &v), 0);
    assert_true(v == cs[t]);
  }
  uint64_t v;
  assert_int_equal(sl_log_checksum_at(dir, N_TX + 1, &v), SL_ENOTFOUND);
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), 0);
  for (uint64_t t = 1; t <= N_TX; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    assert_true(f.checksum == cs[t]);
  }
  sl_log_reader_close(r);
}

static void lineage_truncate_and_diverge(void **state) {
  (void)state;
  const char *a = tu_tmpdir("lineage_a");
  char b[4200];
  snprintf(b, sizeof b, "%s.b", a);
  sl_remove_tree(b);
  sl_log *la = new_log(a), *lb = new_log(b);
  for (uint64_t t = 1; t <= 100; t++) append(la, t, 0, 0);
  for (uint64_t t = 1; t <= 100; t++) append(lb, t, 0, t > 60); /* b parts after txid 60 */
  uint64_t ca, cb;
  assert_true(sl_log_checksum(la) != sl_log_checksum(lb));
  assert_int_equal(sl_log_wait_durable(la, 100), 0);
  assert_int_equal(sl_log_wait_durable(lb, 100), 0);
  assert_int_equal(sl_log_begin_epoch(lb, 3), 0); /* promote: recorded before any frame */
  assert_int_equal(sl_log_begin_epoch(lb, 2), SL_EINVAL);
  sl_log_close(la);
  sl_log_close(lb);
  assert_int_equal(sl_log_checksum_at(a, 60, &ca), 0);
  assert_int_equal(sl_log_checksum_at(b, 60, &cb), 0);
  assert_true(ca == cb);
  assert_int_equal(sl_log_checksum_at(a, 61, &ca), 0);
  assert_int_equal(sl_log_checksum_at(b, 61, &cb), 0);
  assert_true(ca != cb);

  /* Rewind b to 60: the log ends there, its epoch-3 entry (txid 101) is gone. */
  assert_int_equal(sl_log_truncate(b, 60), 0);
  assert_int_equal(sl_log_truncate(b, 61), SL_ENOTFOUND);
  assert_int_equal(sl_log_open(b, ID, &lb), 0);
  assert_int_equal(sl_log_next_txid(lb), 61);
  assert_int_equal(sl_log_epoch(lb), 0);
  assert_int_equal(sl_log_checksum_at(a, 60, &ca), 0);
  assert_true(sl_log_checksum(lb) == ca);
  /* Re-appending a's transactions gives a's chain again. */
  for (uint64_t t = 61; t <= 100; t++) append(lb, t, 0, 0);
  assert_int_equal(sl_log_checksum_at(a, 100, &ca), 0);
  assert_true(sl_log_checksum(lb) == ca);
  sl_log_close(lb);
}

static void lineage_frames_match_reader(void **state) {
  (void)state;
  uint8_t raw[4096], buf[64];
  size_t off = 0;
  uint64_t cs = 0, expect = 0;
  for (uint64_t t = 1; t <= 20; t++) {
    size_t len = pack_tx(t, 0, 7, buf);
    sl_frame_header_encode(buf, (uint32_t)len, raw + off);
    memcpy(raw + off + SL_FRAME_HEADER_SIZE, buf, len);
    expect = sl_lineage_next(expect, t, sl_get_le32(raw + off + 4));
    off += SL_FRAME_HEADER_SIZE + len;
  }
  assert_int_equal(sl_frames_lineage(raw, off, 1, &cs), 0);
  assert_true(cs == expect);
  raw[off - 1] ^= 1;
  assert_int_equal(sl_frames_lineage(raw, off, 1, &cs), SL_ECORRUPT);
  /* A sealed frame's Transaction carries cs itself. */
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = 5;
  t.commit_time_us = 1;
  t.has_checksum = true;
  t.checksum = 0x1234567890abcdefull;
  size_t len = shiplog__transaction__pack(&t, buf);
  sl_frame_header_encode(buf, (uint32_t)len, raw);
  memcpy(raw + SL_FRAME_HEADER_SIZE, buf, len);
  assert_true(sl_frame_lineage(99, 5, raw, (uint32_t)len) == 0x1234567890abcdefull);
}

static void lineage_history_file(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("lineage_history");
  sl_history h = {0}, g;
  assert_int_equal(sl_history_load(dir, &g), 0); /* absent: epoch 0 only */
  assert_int_equal(g.n, 0);
  assert_int_equal(sl_history_add(&h, 1, 50, 0xabc), 0);
  assert_int_equal(sl_history_add(&h, 1, 60, 1), SL_EINVAL); /* epochs increase */
  assert_int_equal(sl_history_add(&h, 2, 40, 1), SL_EINVAL); /* first txids do not go back */
  assert_int_equal(sl_history_add(&h, 4, 90, UINT64_MAX), 0);
  assert_int_equal(sl_history_save(dir, &h), 0);
  assert_int_equal(sl_history_load(dir, &g), 0);
  assert_int_equal(g.n, 2);
  assert_true(g.e[1].epoch == 4 && g.e[1].first_txid == 90 && g.e[1].prev_checksum == UINT64_MAX);
  assert_int_equal(sl_history_epoch(&g), 4);
  sl_history_cut(&g, 89);
  assert_int_equal(g.n, 1);
  char path[4200];
  snprintf(path, sizeof path, "%s/" SL_HISTORY_FILE, dir);
  tu_write_file(path, "shiplog-history 1\n1 50 zz\n");
  assert_int_equal(sl_history_load(dir, &g), SL_ECORRUPT);
  tu_write_file(path, "shiplog-history 1\n2 50 1\n1 60 1\n");
  assert_int_equal(sl_history_load(dir, &g), SL_ECORRUPT);
}

/* The receiver's cs(t) = t * 10 for t <= limit; the shipper may differ. */
typedef struct fake {
  uint64_t limit, first;
} fake;
static int fake_cs(void *arg, uint64_t t, uint64_t *cs) {
  fake *f = arg;
  if (t > f->limit || t + 1 < f->first) return SL_ENOTFOUND;
  *cs = t * 10;
  return 0;
}

static sl_lineage_verdict judge(const sl_history *rh, uint64_t r, const sl_history *sh, uint64_t s, uint64_t s_cs,
                                uint64_t *fork, uint64_t *fork_max) {
  fake f = {.limit = r, .first = 1};
  sl_lineage_result res;
  sl_lineage_judge(rh, r, fake_cs, &f, sh, s, s_cs, &res);
  if (fork) *fork = res.fork;
  if (fork_max) *fork_max = res.fork_max;
  return res.verdict;
}

/* Where a bookmark's write lies: epochs 0 (1..49), 1 (50..89), 4 (90..). */
static void lineage_write_place(void **state) {
  (void)state;
  sl_history h = {0};
  sl_epoch_span sp;
  assert_int_equal(sl_history_place(&h, 0, 0, 7, &sp), SL_WRITE_HELD); /* never promoted */
  assert_int_equal(sl_history_place(&h, 0, 1, 7, &sp), SL_WRITE_NEWER);
  assert_int_equal(sl_history_add(&h, 1, 50, 0), 0);
  assert_int_equal(sl_history_add(&h, 4, 90, 0), 0);
  assert_int_equal(sl_history_place(&h, 4, 0, 49, &sp), SL_WRITE_HELD); /* archived before the failover */
  assert_int_equal(sl_history_place(&h, 4, 0, 50, &sp), SL_WRITE_LOST); /* the old primary's alone */
  assert_true(sp.first == 1 && sp.last == 49 && sp.next_epoch == 1);
  assert_int_equal(sl_history_place(&h, 4, 1, 89, &sp), SL_WRITE_HELD);
  assert_int_equal(sl_history_place(&h, 4, 1, 95, &sp), SL_WRITE_LOST);
  assert_true(sp.first == 50 && sp.last == 89 && sp.next_epoch == 4);
  assert_int_equal(sl_history_place(&h, 4, 1, 20, &sp), SL_WRITE_UNKNOWN); /* before epoch 1 began here */
  assert_int_equal(sl_history_place(&h, 4, 2, 60, &sp), SL_WRITE_UNKNOWN); /* an epoch this history skipped */
  assert_int_equal(sl_history_place(&h, 4, 4, 1000, &sp), SL_WRITE_HELD);  /* the current one: may be to come */
  assert_int_equal(sl_history_place(&h, 4, 4, 80, &sp), SL_WRITE_UNKNOWN);
  assert_int_equal(sl_history_place(&h, 4, 5, 95, &sp), SL_WRITE_NEWER);
  /* a log in epoch 6 whose history stops at 4 (loaded from a dump): 4's end is unknown */
  assert_int_equal(sl_history_place(&h, 6, 4, 95, &sp), SL_WRITE_UNKNOWN);
  assert_int_equal(sl_history_place(&h, 6, 6, 95, &sp), SL_WRITE_HELD);
  assert_int_equal(sl_history_place(&h, 6, 1, 60, &sp), SL_WRITE_HELD);
}

static void lineage_judge_rules(void **state) {
  (void)state;
  sl_history none = {0}, promoted = {0}, other = {0}, late = {0}, early = {0};
  uint64_t fork, fork_max;
  sl_history_add(&promoted, 1, 101, 1000); /* stream promoted after txid 100 */
  /* Same history. */
  assert_int_equal(judge(&none, 100, &none, 100, 1000, NULL, NULL), SL_LINEAGE_EQUAL);
  assert_int_equal(judge(&none, 100, &none, 150, 1500, NULL, NULL), SL_LINEAGE_EXTENDS);
  assert_int_equal(judge(&none, 0, &none, 150, 1500, NULL, NULL), SL_LINEAGE_EXTENDS); /* a new stream */
  /* Behind: fewer txids of the same history, or the stream moved on. */
  assert_int_equal(judge(&none, 100, &none, 80, 800, NULL, NULL), SL_LINEAGE_BEHIND);
  assert_int_equal(judge(&promoted, 100, &none, 100, 1000, NULL, NULL), SL_LINEAGE_BEHIND);
  assert_int_equal(judge(&promoted, 130, &none, 90, 900, NULL, NULL), SL_LINEAGE_BEHIND);
  /* The new primary continues the promoted stream, and a fresh receiver. */
  assert_int_equal(judge(&promoted, 100, &promoted, 130, 77, NULL, NULL), SL_LINEAGE_EXTENDS);
  assert_int_equal(judge(&none, 100, &promoted, 130, 77, NULL, NULL), SL_LINEAGE_EXTENDS);
  assert_int_equal(judge(&none, 60, &promoted, 130, 77, NULL, NULL), SL_LINEAGE_EXTENDS); /* batches check */
  /* Diverged: the old primary committed past the promotion point. */
  assert_int_equal(judge(&promoted, 100, &none, 140, 5, &fork, &fork_max), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork_max, 100);
  assert_int_equal(judge(&promoted, 120, &none, 140, 5, NULL, &fork_max), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork_max, 100);
  /* ... and the new primary's stream went further than the old one did:
   * its txids from the promotion on are its own, not just the last one. */
  assert_int_equal(judge(&promoted, 200, &none, 140, 5, NULL, &fork_max), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork_max, 100);
  /* Diverged: the same length, another checksum. */
  assert_int_equal(judge(&none, 100, &none, 90, 901, &fork, NULL), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork, 0);
  /* A shipper's epoch at R + 1 must descend from the stream's cs(R). */
  sl_history_add(&other, 1, 101, 999);
  assert_int_equal(judge(&none, 100, &other, 130, 77, &fork, &fork_max), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork_max, 100);
  /* ... and one that begins at or below R: the stream has old-epoch txids there. */
  sl_history_add(&early, 1, 91, 900);
  assert_int_equal(judge(&none, 100, &early, 130, 77, &fork, &fork_max), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork, 90);
  assert_int_equal(fork_max, 90);
  /* Two promotions of the same point: the stream knows epoch 1 at 101, the
   * shipper epoch 2 there. */
  sl_history_add(&late, 2, 101, 1000);
  assert_int_equal(judge(&promoted, 110, &late, 130, 77, &fork, &fork_max), SL_LINEAGE_DIVERGED);
  assert_int_equal(fork, 100);
  assert_int_equal(fork_max, 100);
}

/* ORIGIN: a log continuing a history from txid 300 (a restore, a load)
 * chains on exactly as the log it came from. */
static void lineage_origin(void **state) {
  (void)state;
  char *a = strdup(tu_tmpdir("lineage_origin_a")), *b = strdup(tu_tmpdir("lineage_origin_b"));
  sl_log *log = new_log(a);
  for (uint64_t t = 1; t <= 400; t++) append(log, t, t > 150 ? 2 : 0, 0);
  uint64_t want = sl_log_checksum(log);
  assert_int_equal(sl_log_wait_durable(log, 400), 0);
  sl_log_close(log);
  sl_history h;
  uint64_t epoch, cs;
  assert_int_equal(sl_log_lineage_at(a, 300, &h, &epoch, &cs), 0);
  assert_int_equal(epoch, 2);
  assert_int_equal(h.n, 1);
  assert_int_equal(h.e[0].first_txid, 151);
  /* Without its history file the log still knows the frame's epoch. */
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", a, SL_HISTORY_FILE);
  assert_int_equal(unlink(path), 0);
  sl_history none;
  uint64_t e2, cs2;
  assert_int_equal(sl_log_lineage_at(a, 300, &none, &e2, &cs2), 0);
  assert_int_equal(none.n, 0);
  assert_int_equal(e2, 2);
  assert_int_equal(cs2, cs);
  sl_log_options o = {.segment_size = SL_SEG_SIZE_MIN, .first_txid = 301};
  memcpy(o.store_id, ID, SL_STORE_ID_SIZE);
  assert_int_equal(sl_log_create(b, &o), 0);
#ifdef SL_FAULT_INJECTION
  /* The header's rewrite and its fdatasync pass the fault layer (log.c
   * owns them): a failed sync fails the call. */
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  sl_fault_set(SL_FAULT_LOG_HEADER, -EIO, 1, 1);
  assert_int_equal(sl_log_set_origin(b, epoch, cs, &h), -EIO);
  assert_int_equal(sl_fault_hits(SL_FAULT_LOG_HEADER), 2);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
#endif
  assert_int_equal(sl_log_set_origin(b, epoch, cs, &h), 0);
  assert_int_equal(sl_log_open(b, ID, &log), 0);
  assert_int_equal(sl_log_epoch(log), 2);
  assert_int_equal(sl_log_checksum(log), cs);
  for (uint64_t t = 301; t <= 400; t++) append(log, t, 2, 0);
  assert_int_equal(sl_log_checksum(log), want);
  sl_history got;
  sl_log_history(log, &got);
  assert_true(got.n == 1 && sl_history_has(&got, &h.e[0]));
  assert_int_equal(sl_log_wait_durable(log, 400), 0);
  sl_log_close(log);
  /* Only a log without frames takes an origin. */
  assert_int_equal(sl_log_set_origin(b, 2, cs, NULL), SL_EINVAL);
  free(a);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lineage_chain_rotation_reopen),
      cmocka_unit_test(lineage_truncate_and_diverge),
      cmocka_unit_test(lineage_frames_match_reader),
      cmocka_unit_test(lineage_history_file),
      cmocka_unit_test(lineage_write_place),
      cmocka_unit_test(lineage_judge_rules),
      cmocka_unit_test(lineage_origin),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
