/* Tests of base/: CRC32C, errors, clocks and TIME text, file helpers, fault
 * points, diagnostics, buffers, path joins and hex. */
#include "testutil.h"

#include "base_int.h"
#include "sl_base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- CRC32C ------------------------------------------------------------- */

static void base_crc32c_vectors(void **state) {
  (void)state;
  uint8_t buf[32];
  assert_int_equal(sl_crc32c(0, "123456789", 9), 0xE3069283u);
  assert_int_equal(sl_crc32c(0, "", 0), 0);
  /* RFC 3720, B.4 */
  memset(buf, 0, sizeof buf);
  assert_int_equal(sl_crc32c(0, buf, 32), 0x8A9136AAu);
  memset(buf, 0xff, sizeof buf);
  assert_int_equal(sl_crc32c(0, buf, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
  assert_int_equal(sl_crc32c(0, buf, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
  assert_int_equal(sl_crc32c(0, buf, 32), 0x113FDB5Cu);
  /* Continuing a CRC equals computing it in one go. */
  for (size_t cut = 0; cut <= 9; cut++)
    assert_int_equal(sl_crc32c(sl_crc32c(0, "123456789", cut), "123456789" + cut, 9 - cut),
                     0xE3069283u);
  assert_int_equal(sl__crc32c_sw(0, "123456789", 9), 0xE3069283u);
}

static void base_crc32c_paths_agree(void **state) {
  (void)state;
  uint64_t seed = tu_seed("base_crc32c_paths_agree");
  uint8_t buf[300 + 16];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)tu_rand(&seed);
  bool hw = sl__crc32c_hw_available();
  if (!hw) fprintf(stderr, "no SSE4.2: only the table path is checked\n");
  for (size_t start = 0; start < 16; start++) {
    for (size_t len = 0; len <= 300; len++) {
      uint32_t init = (uint32_t)tu_rand(&seed);
      uint32_t sw = sl__crc32c_sw(init, buf + start, len);
      assert_int_equal(sl_crc32c(init, buf + start, len), sw);
      if (hw) assert_int_equal(sl__crc32c_hw(init, buf + start, len), sw);
    }
  }
  /* Long buffers: the hardware path joins three blocks' CRCs (8 KiB and
   * 256-byte blocks), around every block boundary and at any alignment. */
  size_t big_len = 3 * 8192 * 2 + 3 * 256 * 3 + 64;
  uint8_t *big = malloc(big_len);
  assert_non_null(big);
  for (size_t i = 0; i < big_len; i++) big[i] = (uint8_t)tu_rand(&seed);
  size_t lens[] = {767, 768, 769, 3 * 256 * 2, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 3 * 256 + 7,
                   big_len - 16};
  for (size_t i = 0; i < SL_ARRAY_LEN(lens); i++) {
    for (size_t start = 0; start < 16; start += 5) {
      uint32_t init = (uint32_t)tu_rand(&seed);
      uint32_t sw = sl__crc32c_sw(init, big + start, lens[i]);
      assert_int_equal(sl_crc32c(init, big + start, lens[i]), sw);
      if (hw) assert_int_equal(sl__crc32c_hw(init, big + start, lens[i]), sw);
    }
  }
  free(big);
}

/* ---- errors ---------------------------------------------------------------- */

static void base_error_names(void **state) {
  (void)state;
  assert_string_equal(sl_errname(0), "OK");
  assert_string_equal(sl_errname(SL_ECORRUPT), "SL_ECORRUPT");
  assert_string_equal(sl_errname(SL_ENOTLOG), "SL_ENOTLOG");
  assert_string_equal(sl_errname(-EIO), "EIO");
  assert_string_equal(sl_errname(-ENOSPC), "ENOSPC");
  assert_string_equal(sl_strerror(SL_EGAP), "transaction ids are not contiguous");
  assert_string_equal(sl_strerror(-ENOENT), "No such file or directory");
  assert_non_null(sl_strerror(-99999));
  assert_non_null(sl_errname(-99999));
  assert_non_null(sl_strerror(12345));
}

/* ---- clocks and TIME ---------------------------------------------------------- */

static uint64_t fixed_clock(void) { return 1234567890123456ull; }

static void base_clock_injectable(void **state) {
  (void)state;
  uint64_t real = sl_now_us();
  assert_true(real > 1700000000ull * 1000000u);
  sl_clock_set_for_test(fixed_clock);
  assert_int_equal(sl_now_us(), 1234567890123456ull);
  sl_clock_set_for_test(NULL);
  assert_true(sl_now_us() >= real);
  uint64_t a = sl_mono_ns(), b = sl_mono_ns();
  assert_true(b >= a);
}

#define T2026 1795615387ull /* 2026-11-25T14:03:07Z */

static void base_time_parse_valid(void **state) {
  (void)state;
  static const struct {
    const char *text;
    uint64_t us;
  } cases[] = {
      {"2026-11-25T14:03:07Z", T2026 * 1000000},
      {"2026-11-25T15:03:07.250+01:00", T2026 * 1000000 + 250000},
      {"2026-11-25T15:03:07.250+0100", T2026 * 1000000 + 250000},
      {"2026-11-25T09:03:07-05:00", T2026 * 1000000},
      {"2026-11-25T14:03:07.000001Z", T2026 * 1000000 + 1},
      {"2026-11-25T14:03:07.123456Z", T2026 * 1000000 + 123456},
      {"2026-11-25T14:03:07.5Z", T2026 * 1000000 + 500000},
      {"2026-11-26T00:03:07+10:00", T2026 * 1000000},
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T01:00:00+01:00", 0},
      {"2024-02-29T12:00:00Z", 1709208000ull * 1000000},
      {"2000-03-01T00:00:00Z", 951868800ull * 1000000},
      {"9999-12-31T23:59:59Z", 253402300799ull * 1000000},
      {"@0", 0},
      {"@1795615387", T2026 * 1000000},
      {"@1795615387.25", T2026 * 1000000 + 250000},
      {"@1.000001", 1000001},
      {"@0.123456", 123456},
      {"@18446744073709.551615", UINT64_MAX},
      /* a date alone: midnight UTC of that day */
      {"2021-01-01", 1609459200ull * 1000000},
      {"1970-01-01", 0},
      {"2024-02-29", 1709164800ull * 1000000},
      {"2026-11-25", (T2026 - 14 * 3600 - 3 * 60 - 7) * 1000000},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    uint64_t us = 0;
    int rc = sl_time_parse(cases[i].text, &us);
    if (rc || us != cases[i].us)
      fail_msg("%s: rc %s, %llu (want %llu)", cases[i].text, sl_errname(rc),
               (unsigned long long)us, (unsigned long long)cases[i].us);
  }
}

static void base_time_parse_invalid(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "2026-11-25T14:03:07",          /* no zone */
      "2026-11-25 14:03:07Z",         /* space instead of T */
      "2026-11-25t14:03:07Z",
      "2026-11-25T14:03:07z",
      "2026-11-25T14:03Z",
      "26-11-25T14:03:07Z",
      "2026-1-25T14:03:07Z",
      "2026-13-01T00:00:00Z",
      "2026-00-01T00:00:00Z",
      "2026-11-00T00:00:00Z",
      "2026-11-31T00:00:00Z",
      "2026-02-29T00:00:00Z",
      "2100-02-29T00:00:00Z",
      "2026-11-25T24:00:00Z",
      "2026-11-25T14:60:00Z",
      "2026-11-25T14:03:60Z",
      "2026-11-25T14:03:07.1234567Z", /* more than µs */
      "2026-11-25T14:03:07.Z",
      "2026-11-25T14:03:07,5Z",
      "2026-11-25T14:03:07+1:00",
      "2026-11-25T14:03:07+01",
      "2026-11-25T14:03:07+01:60",
      "2026-11-25T14:03:07+24:00",
      "2026-11-25T14:03:07+01:00:00",
      "2026-11-25T14:03:07Zjunk",
      " 2026-11-25T14:03:07Z",
      "1969-12-31T23:59:59Z",         /* before the epoch */
      "1970-01-01T00:30:00+01:00",
      "@",
      "@-1",
      "@+1",
      "@1.",
      "@.5",
      "@1.1234567",
      "@12x",
      "@ 1",
      "@99999999999999999999",
      "@18446744073709.551616",       /* UINT64_MAX + 1 µs */
      "tomorrow",
      "2021-01-01Z",                  /* a date alone takes no zone */
      "2021-01-01T",
      "2021-1-01",
      "2021-01-1",
      "2021-01-32",
      "2021-02-29",
      "2021-13-01",
      "1969-12-31",
      "2021-01-01 ",
      "20210101",
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    uint64_t us = 42;
    int rc = sl_time_parse(bad[i], &us);
    if (rc != SL_EINVAL) fail_msg("\"%s\" accepted: %llu", bad[i], (unsigned long long)us);
    assert_int_equal(us, 42);
  }
  uint64_t us;
  assert_int_equal(sl_time_parse(NULL, &us), SL_EINVAL);
}

static void base_time_format_round_trip(void **state) {
  (void)state;
  char buf[32];
  assert_string_equal(sl_time_format(0, buf, sizeof buf), "1970-01-01T00:00:00Z");
  assert_string_equal(sl_time_format(T2026 * 1000000 + 250000, buf, sizeof buf),
                      "2026-11-25T14:03:07.250000Z");
  assert_string_equal(sl_time_format(1709208000ull * 1000000 + 1, buf, sizeof buf),
                      "2024-02-29T12:00:00.000001Z");
  assert_string_equal(sl_time_format(253402300799ull * 1000000, buf, sizeof buf),
                      "9999-12-31T23:59:59Z");
  /* The largest value still fits the 32 bytes the header promises. */
  assert_true(strlen(sl_time_format(UINT64_MAX, buf, sizeof buf)) < sizeof buf);
  /* A short buffer is cut, never overrun. */
  char small[8];
  assert_int_equal(strlen(sl_time_format(0, small, sizeof small)), 7);

  uint64_t seed = tu_seed("base_time_format_round_trip");
  for (int i = 0; i < 100000; i++) {
    uint64_t us = tu_rand_below(&seed, 253402300800ull * 1000000);
    if (i % 3 == 0) us -= us % 1000000; /* whole seconds: no fraction printed */
    uint64_t back = 0;
    sl_time_format(us, buf, sizeof buf);
    if (sl_time_parse(buf, &back) || back != us)
      fail_msg("%llu -> %s -> %llu", (unsigned long long)us, buf, (unsigned long long)back);
    char epoch[40];
    snprintf(epoch, sizeof epoch, "@%llu.%06llu", (unsigned long long)(us / 1000000),
             (unsigned long long)(us % 1000000));
    assert_int_equal(sl_time_parse(epoch, &back), 0);
    assert_int_equal(back, us);
  }
}

/* ---- files -------------------------------------------------------------------- */

static void base_files_write_read(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("base_files");
  char *path = tu_path(dir, "f");
  uint8_t *buf;
  size_t len;

  assert_int_equal(sl_read_file(path, 100, &buf, &len), -ENOENT);
  assert_int_equal(sl_write_file_atomic(dir, "f", "hello\n", 6), 0);
  assert_int_equal(sl_read_file(path, 100, &buf, &len), 0);
  assert_int_equal(len, 6);
  assert_memory_equal(buf, "hello\n", 6);
  assert_int_equal(buf[6], 0);
  free(buf);
  assert_int_equal(sl_read_file(path, 6, &buf, &len), 0);
  free(buf);
  assert_int_equal(sl_read_file(path, 5, &buf, &len), SL_ETOOBIG);
  assert_int_equal(sl_write_file_atomic(dir, "f", "", 0), 0); /* replace; empty is fine */
  assert_int_equal(sl_read_file(path, 100, &buf, &len), 0);
  assert_int_equal(len, 0);
  free(buf);
  struct stat st;
  char *tmp = tu_path(dir, "f.tmp");
  assert_int_equal(stat(tmp, &st), -1);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* pwrite_all / pread_full: short read at EOF. */
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  assert_int_equal(sl_pwrite_all(fd, "abcdef", 6, 10), 0);
  uint8_t r[32];
  assert_int_equal(sl_pread_full(fd, r, sizeof r, 8), 8);
  assert_memory_equal(r, "\0\0abcdef", 8);
  assert_int_equal(sl_pread_full(fd, r, sizeof r, 100), 0);
  assert_int_equal(sl_write_all(fd, "xy", 2), 0); /* file position 0 */
  assert_int_equal(sl_pread_full(fd, r, 2, 0), 2);
  assert_memory_equal(r, "xy", 2);
  close(fd);
  assert_int_equal(sl_pread_full(-1, r, 1, 0), -EBADF);
  assert_int_equal(sl_fsync_dir(dir), 0);
  free(tmp);
  free(path);
}

static void base_files_mkdir_remove(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("base_tree");
  char *deep = tu_path(dir, "a/b/c");
  char *a = tu_path(dir, "a");
  struct stat st;
  assert_int_equal(sl_mkdir_p(deep), 0);
  assert_int_equal(sl_mkdir_p(deep), 0); /* existing is fine */
  assert_int_equal(stat(deep, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(sl_write_file_atomic(deep, "x", "1", 1), 0);
  char *file = tu_path(deep, "x");
  char *under_file = tu_path(file, "y");
  assert_int_equal(sl_mkdir_p(under_file), -ENOTDIR);

  /* A symlink out of the tree is removed, not followed. */
  const char *outside = tu_tmpdir("base_tree_outside");
  char *keep = tu_path(outside, "keep");
  assert_int_equal(sl_write_file_atomic(outside, "keep", "k", 1), 0);
  char *link = tu_path(a, "link");
  assert_int_equal(symlink(outside, link), 0);
  assert_int_equal(sl_remove_tree(a), 0);
  assert_int_equal(stat(a, &st), -1);
  assert_int_equal(stat(keep, &st), 0);
  assert_int_equal(sl_remove_tree(a), 0); /* missing is success */
  assert_int_equal(sl_remove_tree(keep), 0); /* a plain file */
  assert_int_equal(stat(keep, &st), -1);
  free(deep);
  free(a);
  free(file);
  free(under_file);
  free(keep);
  free(link);
}

#ifdef SL_FAULT_INJECTION
static void base_fault_points(void **state) {
  (void)state;
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  assert_int_equal(sl_fault(SL_FAULT_LOG_FSYNC), 0);
  assert_int_equal(sl_fault_hits(SL_FAULT_LOG_FSYNC), 1);
  /* Let two passes through, fail twice, then pass again. */
  sl_fault_set(SL_FAULT_LOG_FSYNC, -EIO, 2, 2);
  int want[] = {0, 0, -EIO, -EIO, 0, 0};
  for (size_t i = 0; i < SL_ARRAY_LEN(want); i++)
    assert_int_equal(sl_fault(SL_FAULT_LOG_FSYNC), want[i]);
  assert_int_equal(sl_fault_hits(SL_FAULT_LOG_FSYNC), 7);
  assert_int_equal(sl_fault(SL_FAULT_LOG_WRITE), 0); /* other points unaffected */
  sl_fault_set(SL_FAULT_LOG_WRITE, -ENOSPC, 0, -1);
  for (int i = 0; i < 5; i++) assert_int_equal(sl_fault(SL_FAULT_LOG_WRITE), -ENOSPC);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  assert_int_equal(sl_fault(SL_FAULT_LOG_WRITE), 0);
  assert_int_equal(sl_fault_hits(SL_FAULT_LOG_WRITE), 1);
  assert_int_equal(sl_fault_hits(SL_FAULT_LOG_FSYNC), 0);
}

static void base_write_file_atomic_faults(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("base_atomic_faults");
  char *path = tu_path(dir, "f"), *tmp = tu_path(dir, "f.tmp");
  uint8_t *buf;
  size_t len;
  struct stat st;
  assert_int_equal(sl_write_file_atomic(dir, "f", "old", 3), 0);

  /* Rename or file fsync failing: the old content stays, no scratch file. */
  const struct {
    enum sl_fault_point point;
    int skip;
  } before[] = {{SL_FAULT_FILE_RENAME, 0}, {SL_FAULT_FILE_FSYNC, 0}};
  for (size_t i = 0; i < SL_ARRAY_LEN(before); i++) {
    sl_fault_set(before[i].point, -EIO, before[i].skip, 1);
    assert_int_equal(sl_write_file_atomic(dir, "f", "new", 3), -EIO);
    assert_int_equal(sl_read_file(path, 10, &buf, &len), 0);
    assert_memory_equal(buf, "old", 3);
    free(buf);
    assert_int_equal(stat(tmp, &st), -1);
  }
  /* The directory fsync failing comes after the rename: new content, error. */
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  sl_fault_set(SL_FAULT_FILE_FSYNC, -EIO, 1, 1);
  assert_int_equal(sl_write_file_atomic(dir, "f", "new", 3), -EIO);
  assert_int_equal(sl_read_file(path, 10, &buf, &len), 0);
  assert_memory_equal(buf, "new", 3);
  free(buf);
  assert_int_equal(sl_fault_hits(SL_FAULT_FILE_FSYNC), 2);
  assert_int_equal(sl_fault_hits(SL_FAULT_FILE_RENAME), 1);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  free(path);
  free(tmp);
}

/* sl_rename_durable: the rename, then the fsync of the target's directory
 * (a trailing '/' names the same directory), each through its fault point. */
static void base_rename_durable_faults(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("base_rename_durable");
  char *a = tu_path(dir, "a"), *b = tu_path(dir, "b"), *d = tu_path(dir, "d"), *e = tu_path(dir, "e/");
  struct stat st;
  assert_int_equal(sl_write_file_atomic(dir, "a", "x", 1), 0);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  sl_fault_set(SL_FAULT_FILE_RENAME, -EIO, 0, 1);
  assert_int_equal(sl_rename_durable(a, b), -EIO);
  assert_int_equal(stat(a, &st), 0); /* not renamed */
  sl_fault_set(SL_FAULT_FILE_FSYNC, -ENOSPC, 0, 1);
  assert_int_equal(sl_rename_durable(a, b), -ENOSPC); /* renamed, not known durable */
  assert_int_equal(stat(b, &st), 0);
  assert_int_equal(sl_fault_hits(SL_FAULT_FILE_RENAME), 2);
  assert_int_equal(sl_fault_hits(SL_FAULT_FILE_FSYNC), 1);
  assert_int_equal(mkdir(d, 0700), 0);
  assert_int_equal(sl_rename_durable(d, e), 0);
  assert_int_equal(stat(e, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(sl_rename_durable(d, b), -ENOENT);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  free(a);
  free(b);
  free(d);
  free(e);
}
#endif

/* ---- diagnostics ---------------------------------------------------------------- */

/* Run fn with stderr redirected to a file; return what it printed. */
static char *capture_stderr(void (*fn)(void)) {
  const char *dir = tu_tmpdir("base_diag");
  char *path = tu_path(dir, "err");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);
  uint8_t *buf;
  size_t len;
  assert_int_equal(sl_read_file(path, 1 << 20, &buf, &len), 0);
  free(path);
  return (char *)buf;
}

static void print_lines(void) {
  sl_set_progname("tprog");
  errno = EAGAIN;
  sl_diag_error("file %s offset %d", "x.seg", 42);
  assert_int_equal(errno, EAGAIN);
  sl_diag_warn("careful");
  sl_diag_info("hidden");
  sl_diag_set_verbose(true);
  sl_diag_info("shown");
  sl_diag_set_verbose(false);
  sl_diag_error("in '%s'", "a\x1b[2J\x07\xff\xc2\x9b\xc3\xa9\x7f\tb\r\nc\xe2\x82");
  char big[10000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = 0;
  sl_diag_error("%s", big);
  sl_set_progname("shiplog");
}

static void base_diag_lines(void **state) {
  (void)state;
  char *out = capture_stderr(print_lines);
  const char *want = "tprog: error: file x.seg offset 42\n"
                     "tprog: warning: careful\n"
                     "tprog: shown\n"
                     "tprog: error: in 'a\\x1b[2J\\x07\\xff\\xc2\\x9b\xc3\xa9\\x7f b  c\\xe2\\x82'\n"
                     "tprog: error: zzz";
  assert_memory_equal(out, want, strlen(want));
  char *last = out + strlen(want) - strlen("tprog: error: zzz");
  assert_int_equal(strlen(last), 4096 - 1);
  assert_memory_equal(last + strlen(last) - 4, "...\n", 4);
  free(out);
}

/* ---- buffers ----------------------------------------------------------- */

static void base_buf_reserve(void **state) {
  (void)state;
  sl_buf b = {0};
  assert_int_equal(sl_buf_reserve(&b, 0), 0); /* an empty buffer may stay empty */
  assert_null(b.data);
  assert_int_equal(sl_buf_reserve(&b, 1), 0); /* grows from 4 KiB, doubling */
  assert_non_null(b.data);
  assert_int_equal(b.cap, 4096);
  memcpy(b.data, "abc", 3);
  b.len = 3;
  assert_int_equal(sl_buf_reserve(&b, 4096), 0); /* cap is total bytes, not more */
  assert_int_equal(b.cap, 4096);
  assert_int_equal(sl_buf_reserve(&b, 4097), 0);
  assert_int_equal(b.cap, 8192);
  assert_int_equal(sl_buf_reserve(&b, 40000), 0);
  assert_int_equal(b.cap, 65536);
  assert_int_equal(b.len, 3); /* the content is kept */
  assert_memory_equal(b.data, "abc", 3);
  sl_buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  sl_buf_free(&b); /* twice is harmless */
}

/* ---- path joins --------------------------------------------------------- */

static int join_rc;
static void join_too_long(void) {
  char out[16];
  join_rc = sl_path_join(out, sizeof out, "0123456789", "abcde");
}

static void base_path_join(void **state) {
  (void)state;
  char out[16];
  assert_int_equal(sl_path_join(out, sizeof out, "/a/b", "c.txt"), 0);
  assert_string_equal(out, "/a/b/c.txt");
  assert_int_equal(sl_path_join(out, sizeof out, "", "x"), 0); /* no rules about slashes: "DIR/NAME" */
  assert_string_equal(out, "/x");
  /* 15 characters fit 16 bytes; 16 do not, and the failure is logged. */
  assert_int_equal(sl_path_join(out, sizeof out, "0123456789", "abcd"), 0);
  assert_string_equal(out, "0123456789/abcd");
  char *got = capture_stderr(join_too_long);
  assert_int_equal(join_rc, -ENAMETOOLONG);
  assert_non_null(strstr(got, "0123456789/abcde: path too long"));
  free(got);
}

/* ---- hex ---------------------------------------------------------------- */

static void base_hex_encode(void **state) {
  (void)state;
  uint8_t in[256];
  char out[2 * sizeof in + 1], want[2 * sizeof in + 1];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)i;
  /* The same text as "%02x" per byte, for every byte value. */
  for (size_t i = 0; i < sizeof in; i++) sprintf(want + 2 * i, "%02x", in[i]);
  memset(out, 'Z', sizeof out);
  sl_hex_encode(in, sizeof in, out);
  assert_string_equal(out, want);
  memset(out, 'Z', sizeof out);
  sl_hex_encode(in, 0, out); /* empty: just the NUL */
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 'Z');
  sl_hex_encode((const uint8_t *)"\x01\xab\xff", 3, out);
  assert_string_equal(out, "01abff");
}

static void base_utf8(void **state) {
  (void)state;
  char b[4];
  uint32_t cp;
  for (uint32_t c = 1; c <= 0x10ffff; c++) {
    size_t n = sl_utf8_encode(c, b);
    if (c >= 0xd800 && c <= 0xdfff) {
      assert_int_equal(n, 0);
      continue;
    }
    assert_int_equal(n, c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4);
    assert_int_equal(sl_utf8_decode(b, n, &cp), n);
    assert_int_equal(cp, c);
    if (n > 1) assert_int_equal(sl_utf8_decode(b, n - 1, &cp), 0); /* cut short */
  }
  assert_int_equal(sl_utf8_encode(0x110000, b), 0);
  static const char *const bad[] = {"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
                                    "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80", "\xc3\x28", "\xff"};
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) assert_int_equal(sl_utf8_decode(bad[i], strlen(bad[i]), &cp), 0);
  assert_int_equal(sl_utf8_decode("\xc3\x96x", 3, &cp), 2);
  assert_int_equal(cp, 0xd6);
  assert_int_equal(sl_utf8_decode("", 0, &cp), 0);
}

static uint64_t diag_clock(void) { return 1795615387250000ull; } /* 2026-11-25T14:03:07.25Z */

static void print_formats(void) {
  sl_clock_set_for_test(diag_clock);
  sl_diag_set_timestamps(true);
  sl_diag_error("no context");
  sl_diag_context("main", "10.0.0.5:41000");
  sl_diag_warn("line\nbreak");
  sl_diag_set_format(SL_DIAG_JSON);
  sl_diag_error("q\"b\\s\x01 \xc3\xa9 \xff");
  sl_diag_context(NULL, "p:1");
  sl_diag_set_verbose(true);
  sl_diag_info("i");
  sl_diag_set_verbose(false);
  sl_diag_context(NULL, NULL);
  sl_diag_set_format(SL_DIAG_TEXT);
  sl_diag_set_timestamps(false);
  sl_clock_set_for_test(NULL);
}

static void base_diag_formats(void **state) {
  (void)state;
  char *out = capture_stderr(print_formats);
  const char *want =
      "2026-11-25T14:03:07.250000Z shiplog: error: no context\n"
      "2026-11-25T14:03:07.250000Z shiplog: stream=main peer=10.0.0.5:41000: warning: line break\n"
      "{\"time\":\"2026-11-25T14:03:07.250000Z\",\"level\":\"error\",\"program\":\"shiplog\","
      "\"stream\":\"main\",\"peer\":\"10.0.0.5:41000\",\"msg\":\"q\\\"b\\\\s\\u0001 \xc3\xa9 \\ufffd\"}\n"
      "{\"time\":\"2026-11-25T14:03:07.250000Z\",\"level\":\"info\",\"program\":\"shiplog\","
      "\"peer\":\"p:1\",\"msg\":\"i\"}\n";
  assert_string_equal(out, want);
  free(out);
}

/* ---- invariants --------------------------------------------------------- */

/* SL_ASSERT holds in every build type: this file is compiled with NDEBUG in
 * a Release build and the check must still fire. A true condition costs
 * nothing; a false one logs FILE:LINE, the condition and the message, then
 * aborts (in a child, so the test sees SIGABRT and the line on stderr). */
enum { FIRE_LINE = __LINE__ + 2 }; /* the line of the SL_ASSERT below */
static void fire(int x) {
  SL_ASSERT(x > 5, "x is %d", x);
}

static void base_assert_always_on(void **state) {
  (void)state;
  int x = 3;
  SL_ASSERT(x == 3, "x %d", x);
  char path[4200];
  snprintf(path, sizeof path, "%s/assert.err", tu_tmpdir("base_assert"));
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    sl_set_progname("shiplog");
    fire(x);
    _exit(0);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
  uint8_t *text;
  size_t len;
  OK(sl_read_file(path, 1 << 16, &text, &len));
  char want[256];
  snprintf(want, sizeof want, "shiplog: error: %s:%d: invariant `x > 5` failed: x is 3\n", __FILE__, FIRE_LINE);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(text, want, len);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(base_crc32c_vectors),
      cmocka_unit_test(base_crc32c_paths_agree),
      cmocka_unit_test(base_error_names),
      cmocka_unit_test(base_clock_injectable),
      cmocka_unit_test(base_time_parse_valid),
      cmocka_unit_test(base_time_parse_invalid),
      cmocka_unit_test(base_time_format_round_trip),
      cmocka_unit_test(base_files_write_read),
      cmocka_unit_test(base_files_mkdir_remove),
#ifdef SL_FAULT_INJECTION
      cmocka_unit_test(base_fault_points),
      cmocka_unit_test(base_write_file_atomic_faults),
      cmocka_unit_test(base_rename_durable_faults),
#endif
      cmocka_unit_test(base_buf_reserve),
      cmocka_unit_test(base_path_join),
      cmocka_unit_test(base_hex_encode),
      cmocka_unit_test(base_utf8),
      cmocka_unit_test(base_diag_lines),
      cmocka_unit_test(base_diag_formats),
      cmocka_unit_test(base_assert_always_on),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
