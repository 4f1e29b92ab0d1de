/*
 * The fault layer itself and the faults that need no disk or network:
 *   - $SL_FAULTS parsing, and the crash tracker: a simulated power loss
 *     keeps exactly what was synced (CRASH) or a prefix of the rest with a
 *     zeroed tail (TEAR), in a forked child that _exits as a crash would;
 *   - clock jumps: the primary's wall clock stepping back and forward while
 *     it commits. Commit times never decrease (a commit takes max(clock,
 *     previous)), and a restore to any time T holds exactly the
 *     transactions committed at or before T.
 * The store's every-point loop is store_fault_points (test_store.c); the
 * network, full disks and the randomized run are tests/e2e_partition.sh,
 * e2e_fulldisk.sh and e2e_nemesis.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "log.h"
#include "pitr.h"
#include "sl_base.h"
#include "store.h"

#ifdef SL_FAULT_INJECTION
static void fault_spec_parse(void **state) {
  (void)state;
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  OK(sl_fault_parse("2:EIO:1:2,10:ENOSPC"));
  int want[] = {0, -EIO, -EIO, 0};
  for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) assert_int_equal(sl_fault(SL_FAULT_LOG_FSYNC), want[i]);
  assert_int_equal(sl_fault(SL_FAULT_NET_SEND), -ENOSPC);
  assert_int_equal(sl_fault(SL_FAULT_NET_SEND), 0);
  assert_int_equal(sl_fault_parse("2:EWHAT"), SL_EINVAL);
  assert_int_equal(sl_fault_parse("99:EIO"), SL_EINVAL);
  assert_int_equal(sl_fault_parse("2:EIO;3:EIO"), SL_EINVAL);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
}

/* In a child: 4 KiB synced, then an overwrite of its first bytes and 6000
 * appended bytes, unsynced; then the armed point crashes. */
static void crash_child(const char *path, int code) {
  uint8_t a[4096], b[6000];
  memset(a, 'a', sizeof a);
  memset(b, 'b', sizeof b);
  sl_fault_set(SL_FAULT_NET_SEND, code, 0, 1);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || sl_pwrite_all(fd, a, sizeof a, 0) || sl_fsync(fd)) _exit(2);
  if (sl_pwrite_all(fd, b, 100, 0) || sl_pwrite_all(fd, b, sizeof b, sizeof a)) _exit(2);
  close(fd); /* the tracker keeps its own descriptor */
  (void)sl_fault(SL_FAULT_NET_SEND);
  _exit(3);
}

static void crash_tracker(void **state) {
  (void)state;
  char *path = tu_path(tu_tmpdir("crash_tracker"), "f");
  for (int code = SL_FAULT_CRASH; code <= SL_FAULT_TEAR; code++) {
    for (int round = 0; round < 8; round++) {
      pid_t pid = fork();
      assert_true(pid >= 0);
      if (pid == 0) {
        sl_fault_seed((uint64_t)round + 1);
        crash_child(path, code);
      }
      int status;
      assert_int_equal(waitpid(pid, &status, 0), pid);
      assert_true(WIFEXITED(status));
      assert_int_equal(WEXITSTATUS(status), SL_FAULT_CRASH_EXIT);
      uint8_t *buf;
      size_t len;
      OK(sl_read_file(path, 1 << 20, &buf, &len));
      if (code == SL_FAULT_CRASH) {
        assert_int_equal(len, 4096); /* exactly what was synced */
        for (size_t i = 0; i < len; i++) assert_int_equal(buf[i], 'a');
      } else {
        assert_true(len >= 4096 && len <= 4096 + 6000);
        /* The whole small file is old or new; appended bytes are 'b' up to a zeroed tail. */
        assert_true(buf[0] == 'a' || buf[0] == 'b');
        for (size_t i = 100; i < 4096; i++) assert_int_equal(buf[i], 'a');
        size_t i = 4096;
        while (i < len && buf[i] == 'b') i++;
        while (i < len && buf[i] == 0) i++;
        assert_int_equal(i, len);
      }
      free(buf);
    }
  }
  free(path);
}

/* Power losses in a row: each reopen rebuilds LMDB from the log, and the
 * map must not grow with each one (it doubled from the dead writer's sparse
 * file size, until the file system said EFBIG after a few dozen losses). */
static void repeated_power_loss(void **state) {
  (void)state;
  char *dir = tu_path(tu_tmpdir("repeated_power_loss"), "s");
  char *data = tu_path(dir, "data.mdb");
  OK(sl_store_create(dir, NULL));
  for (int boot = 1; boot <= 12; boot++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      sl_store *st;
      if (sl_store_open(dir, 0, &st)) _exit(2);
      sl_fault_set(SL_FAULT_LOG_FSYNC, SL_FAULT_CRASH, 3, 1);
      for (int i = 0;; i++) {
        sl_tx *tx;
        const char *l = "N";
        uint64_t txid;
        if (sl_tx_begin(st, &tx) || sl_tx_create_node(tx, SL_ID_NEW, &l, 1, NULL, 0, NULL) || sl_tx_commit(tx, &txid))
          _exit(3);
      }
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), SL_FAULT_CRASH_EXIT);
    char id[32];
    snprintf(id, sizeof id, "boot-%d", boot);
    setenv("SL_TEST_BOOT_ID", id, 1);
    sl_store *st;
    OK(sl_store_open(dir, 0, &st)); /* rebuilds */
    struct stat sb;
    OK(stat(data, &sb));
    if ((uint64_t)sb.st_size > (128ull << 30))
      fail_msg("after %d power losses data.mdb maps %llu bytes", boot, (unsigned long long)sb.st_size);
    sl_store_close(st);
  }
  unsetenv("SL_TEST_BOOT_ID");
  sl_remove_tree(dir);
  free(dir);
  free(data);
}
#endif

/* ---- clock jumps ---------------------------------------------------------------------------- */
static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

static void clock_jumps(void **state) {
  (void)state;
  enum { N = 400 };
  uint64_t rng = tu_seed("clock_jumps");
  const char *root = tu_tmpdir("clock_jumps");
  char *primary = tu_path(root, "primary"), *data = tu_path(root, "data");
  char *stream = tu_path(data, "streams/s"), *archive = tu_path(stream, "archive"), *into = tu_path(root, "r");
  static uint64_t clock_at[N + 1], commit[N + 1];
  fake_now = 1700000000ull * 1000000;
  sl_clock_set_for_test(fake_clock);
  sl_store *p;
  OK(sl_store_create(primary, NULL));
  OK(sl_store_open(primary, 0, &p));
  int backs = 0;
  for (uint64_t t = 1; t <= N; t++) {
    /* Mostly forward by up to a second; one step in eight jumps back up to
     * an hour (NTP stepping, a VM restored), one in 32 forward a day. */
    uint64_t r = tu_rand_below(&rng, 32);
    if (r < 4) {
      fake_now -= tu_rand_below(&rng, 3600ull * 1000000);
      backs++;
    } else if (r == 4) {
      fake_now += 86400ull * 1000000;
    } else {
      fake_now += tu_rand_below(&rng, 1000000);
    }
    clock_at[t] = fake_now;
    sl_tx *tx;
    const char *l = "Tick";
    sl_prop prop = {"t", {.kind = SL_INT, .u.i = (int64_t)t}};
    uint64_t txid;
    OK(sl_tx_begin(p, &tx));
    OK(sl_tx_create_node(tx, SL_ID_NEW, &l, 1, &prop, 1, NULL));
    OK(sl_tx_commit(tx, &txid));
    assert_int_equal(txid, t);
  }
  sl_store_close(p);
  /* The log's commit times: max(clock, previous), never decreasing. */
  char *plog = tu_path(primary, "log");
  sl_log_reader *rd;
  sl_frame f;
  OK(sl_log_reader_open(plog, 1, NULL, &rd));
  for (uint64_t t = 1; t <= N; t++) {
    OK(sl_log_reader_next(rd, &f));
    assert_int_equal(f.txid, t);
    commit[t] = f.commit_us;
    assert_int_equal(commit[t], SL_MAX(clock_at[t], t > 1 ? commit[t - 1] : 0));
  }
  sl_log_reader_close(rd);

  /* An archive of the log (as a receiver holds it) and restores by time. */
  OK(sl_store_open(primary, SL_OPEN_RDONLY, &p));
  sl_log_options lo = {.first_txid = 1};
  memcpy(lo.store_id, sl_store_id(p), SL_STORE_ID_SIZE);
  sl_store_close(p);
  sl_log *alog;
  OK(sl_mkdir_p(archive));
  OK(sl_log_create(archive, &lo));
  OK(sl_log_open(archive, NULL, &alog));
  OK(sl_log_reader_open(plog, 1, NULL, &rd));
  for (uint64_t t = 1; t <= N; t++) {
    OK(sl_log_reader_next(rd, &f));
    OK(sl_log_append(alog, f.payload, f.payload_len));
  }
  sl_log_reader_close(rd);
  OK(sl_log_wait_durable(alog, N));
  sl_log_close(alog);
  char text[100];
  int n = snprintf(text, sizeof text, "durable=%d\nreachable_time_us=%" PRIu64 "\n", N, commit[N]);
  OK(sl_write_file_atomic(stream, "state", text, (size_t)n));
  for (int i = 0; i < 12; i++) {
    uint64_t k = 1 + tu_rand_below(&rng, N), us = commit[k] - (i % 3 == 0); /* exact, or just before */
    uint64_t want = 0;
    for (uint64_t t = 1; t <= N && commit[t] <= us; t++) want = t;
    sl_restore_options o = {.data_dir = data, .stream = "s", .by_time = true, .time_us = us, .into = into};
    sl_restore_result res;
    sl_remove_tree(into);
    if (want == 0) { /* just before the first commit: refused, naming the window */
      assert_int_equal(sl_restore(&o, &res), SL_EINVAL);
      continue;
    }
    OK(sl_restore(&o, &res));
    assert_int_equal(res.txid, want);
    sl_counts c;
    sl_view *v;
    OK(sl_store_open(into, SL_OPEN_RDONLY, &p));
    OK(sl_view_begin(p, &v));
    OK(sl_view_counts(v, &c));
    sl_view_end(v);
    assert_int_equal(c.nodes, want);
    assert_int_equal(c.applied_txid, want);
    sl_store_close(p);
  }
  fprintf(stderr, "clock_jumps: %d commits, the clock stepped back %d times; commit times never decrease, 12 "
          "restores by time exact\n", N, backs);
  sl_clock_set_for_test(NULL);
  sl_remove_tree(root);
  free(primary), free(data), free(stream), free(archive), free(into), free(plog);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#ifdef SL_FAULT_INJECTION
      cmocka_unit_test(fault_spec_parse),
      cmocka_unit_test(crash_tracker),
      cmocka_unit_test(repeated_power_loss),
#endif
      cmocka_unit_test(clock_jumps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
