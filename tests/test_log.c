/* Tests of store/log: codecs, recovery of every kind of damage, rotation,
 * group commit, readers (also while a writer appends), consumers and
 * pruning, fault injection. Payloads are real packed shiplog.Transaction
 * messages built with the protobuf-c generated code; frame layout constants
 * come from log.h. */
#include "testutil.h"

#include "log.h"
#include "sl_base.h"
#include "transaction.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 1700000000000000ull

static const uint8_t STORE_ID[SL_STORE_ID_SIZE] = {0x5b, 1, 2, 3, 4, 5, 6, 7,
                                                   8, 9, 10, 11, 12, 13, 14, 15};

/* ---- payloads ------------------------------------------------------------ */

typedef struct blob {
  uint8_t *buf;
  size_t len;
} blob;

/* A Transaction with one CreateNode whose string property pads it to about
 * `pad` bytes; the content depends only on the arguments. */
static blob make_txn(uint64_t txid, uint64_t commit_us, uint64_t epoch, size_t pad) {
  char *s = malloc(pad + 1);
  for (size_t i = 0; i < pad; i++) s[i] = (char)('a' + (txid + i) % 26);
  s[pad] = 0;
  Shiplog__Value v = SHIPLOG__VALUE__INIT;
  v.kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
  v.string_value = s;
  Shiplog__Property p = SHIPLOG__PROPERTY__INIT;
  p.key = "k";
  p.value = &v;
  Shiplog__Property *pp = &p;
  char *label = "Label";
  Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
  cn.id = txid;
  cn.n_labels = 1;
  cn.labels = &label;
  cn.n_props = 1;
  cn.props = &pp;
  Shiplog__Op op = SHIPLOG__OP__INIT;
  op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
  op.create_node = &cn;
  Shiplog__Op *opp = &op;
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = txid;
  t.commit_time_us = commit_us;
  t.has_epoch = epoch != 0;
  t.epoch = epoch;
  t.n_ops = 1;
  t.ops = &opp;
  blob b;
  b.len = shiplog__transaction__get_packed_size(&t);
  b.buf = malloc(b.len);
  assert_int_equal(shiplog__transaction__pack(&t, b.buf), b.len);
  free(s);
  return b;
}

static uint64_t tcommit(uint64_t txid) { return T0 + txid * 1000; }
static size_t tpad(uint64_t txid) { return 10 + (size_t)(txid * 37 % 200); }
static blob txn(uint64_t txid) { return make_txn(txid, tcommit(txid), 0, tpad(txid)); }
static size_t frame_len(uint64_t txid) {
  blob b = txn(txid);
  free(b.buf);
  return SL_FRAME_HEADER_SIZE + b.len;
}

static int append_txid(sl_log *log, uint64_t txid) {
  blob b = txn(txid);
  int rc = sl_log_append(log, b.buf, b.len);
  free(b.buf);
  return rc;
}

static void append_range(sl_log *log, uint64_t from, uint64_t to) {
  for (uint64_t t = from; t <= to; t++) {
    int rc = append_txid(log, t);
    if (rc) fail_msg("append %llu: %s", (unsigned long long)t, sl_errname(rc));
  }
}

static void check_frame(const sl_frame *f, uint64_t txid) {
  blob b = txn(txid);
  assert_int_equal(f->txid, txid);
  assert_int_equal(f->commit_us, tcommit(txid));
  assert_int_equal(f->payload_len, b.len);
  assert_memory_equal(f->payload, b.buf, b.len);
  free(b.buf);
}

/* ---- files ----------------------------------------------------------------- */

static char *new_log(const char *name, uint64_t seg_size) {
  char *dir = tu_path(tu_tmpdir(name), "log");
  sl_log_options opt = {.segment_size = seg_size};
  memcpy(opt.store_id, STORE_ID, SL_STORE_ID_SIZE);
  assert_int_equal(sl_log_create(dir, &opt), 0);
  return dir;
}

static char *seg_file(const char *dir, uint64_t segno) {
  char name[64];
  snprintf(name, sizeof name, "%020llu.seg", (unsigned long long)segno);
  return tu_path(dir, name);
}

static uint64_t file_size(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

static uint8_t *read_whole(const char *path, size_t *len) {
  uint8_t *buf;
  assert_int_equal(sl_read_file(path, 1u << 30, &buf, len), 0);
  return buf;
}

static void write_whole(const char *path, const void *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(sl_write_all(fd, buf, len), 0);
  close(fd);
}

static void xor_byte(const char *path, uint64_t off, uint8_t mask) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t b;
  assert_int_equal(sl_pread_full(fd, &b, 1, off), 1);
  b ^= mask;
  assert_int_equal(sl_pwrite_all(fd, &b, 1, off), 0);
  close(fd);
}

static void append_bytes(const char *path, const void *buf, size_t len) {
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(sl_write_all(fd, buf, len), 0);
  close(fd);
}

static void assert_contains(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("\"%s\" not in:\n%s", needle, text);
}

/* Read txids from..to with a strict reader, then expect SL_EEND. */
static void read_all(const char *dir, uint64_t from, uint64_t to) {
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_reader_open(dir, from, NULL, &r), 0);
  for (uint64_t t = from; t <= to; t++) {
    int rc = sl_log_reader_next(r, &f);
    if (rc) fail_msg("reading txid %llu: %s", (unsigned long long)t, sl_errname(rc));
    check_frame(&f, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_close(r);
}

/* Offsets of the frames of txids 1..n as the reader reports them. */
static void frame_offsets(const char *dir, uint64_t n, uint64_t *off, uint64_t *segno) {
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), 0);
  for (uint64_t t = 1; t <= n; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    off[t] = f.offset;
    if (segno) segno[t] = f.segno;
  }
  sl_log_reader_close(r);
}

/* ---- codecs ------------------------------------------------------------------ */

static void log_frame_codec(void **state) {
  (void)state;
  blob b = txn(7);
  size_t fl = SL_FRAME_HEADER_SIZE + b.len;
  uint8_t *frame = malloc(fl);
  sl_frame_header_encode(b.buf, (uint32_t)b.len, frame);
  memcpy(frame + SL_FRAME_HEADER_SIZE, b.buf, b.len);
  const uint8_t *p;
  uint32_t pl;
  size_t got;
  assert_int_equal(sl_frame_decode(frame, fl, &p, &pl, &got), 0);
  assert_int_equal(got, fl);
  assert_int_equal(pl, b.len);
  assert_ptr_equal(p, frame + SL_FRAME_HEADER_SIZE);
  /* Longer buffers decode the same frame. */
  uint8_t *more = calloc(1, fl + 10);
  memcpy(more, frame, fl);
  assert_int_equal(sl_frame_decode(more, fl + 10, &p, &pl, &got), 0);
  assert_int_equal(got, fl);
  free(more);
  for (size_t len = 0; len < fl; len++)
    assert_int_equal(sl_frame_decode(frame, len, &p, &pl, &got), SL_ETRUNCATED);
  /* Every single-bit flip is detected. */
  for (size_t bit = 0; bit < fl * 8; bit++) {
    frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int rc = sl_frame_decode(frame, fl, &p, &pl, &got);
    if (rc != SL_ECORRUPT && rc != SL_ETRUNCATED)
      fail_msg("flip of bit %zu not detected: %s", bit, sl_errname(rc));
    frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  uint8_t hdr[SL_FRAME_HEADER_SIZE] = {0};
  assert_int_equal(sl_frame_decode(hdr, sizeof hdr, &p, &pl, &got), SL_ECORRUPT); /* length 0 */
  sl_put_le32(hdr, SL_FRAME_MAX + 1);
  assert_int_equal(sl_frame_decode(hdr, sizeof hdr, &p, &pl, &got), SL_ECORRUPT);
  free(frame);
  free(b.buf);
}

static void log_header_codec(void **state) {
  (void)state;
  sl_seg_header h = {.version = SL_SEG_VERSION, .flags = 0, .segno = 42,
                     .first_txid = 1000, .epoch = 3, .prev_checksum = 0xabcdef,
                     .key_id = "key-1", .segment_size = 1 << 20};
  memcpy(h.store_id, STORE_ID, SL_STORE_ID_SIZE);
  uint8_t b[SL_SEG_HEADER_SIZE];
  sl_seg_header_encode(&h, b);
  assert_memory_equal(b, SL_SEG_MAGIC, 8);
  assert_int_equal(sl_get_le32(b + 124), sl_crc32c(0, b, 124));
  assert_int_equal(sl_get_le64(b + 40), 1000);
  sl_seg_header d;
  assert_int_equal(sl_seg_header_decode(b, &d), 0);
  assert_int_equal(d.version, SL_SEG_VERSION);
  assert_int_equal(d.segno, 42);
  assert_int_equal(d.first_txid, 1000);
  assert_int_equal(d.epoch, 3);
  assert_int_equal(d.prev_checksum, 0xabcdef);
  assert_int_equal(d.segment_size, 1 << 20);
  assert_string_equal(d.key_id, "key-1");
  assert_memory_equal(d.store_id, STORE_ID, SL_STORE_ID_SIZE);
  for (int i = 104; i < 124; i++) assert_int_equal(b[i], 0); /* reserved */

  uint8_t x[SL_SEG_HEADER_SIZE];
  memcpy(x, b, sizeof x);
  x[0] ^= 1;
  assert_int_equal(sl_seg_header_decode(x, &d), SL_ENOTLOG);
  memcpy(x, b, sizeof x);
  x[8] = 2; /* version 2, with a CRC that matches */
  sl_put_le32(x + 124, sl_crc32c(0, x, 124));
  assert_int_equal(sl_seg_header_decode(x, &d), SL_EVERSION);
  memcpy(x, b, sizeof x);
  x[125] ^= 0x10;
  assert_int_equal(sl_seg_header_decode(x, &d), SL_ECORRUPT);
  for (size_t bit = 0; bit < SL_SEG_HEADER_SIZE * 8; bit++) {
    memcpy(x, b, sizeof x);
    x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_not_equal(sl_seg_header_decode(x, &d), 0);
  }
}

static void log_txn_peek(void **state) {
  (void)state;
  uint64_t t, c, e;
  blob b = make_txn(12345678901ull, T0 + 5, 9, 300);
  assert_int_equal(sl_txn_peek(b.buf, b.len, &t, &c, &e), 0);
  assert_int_equal(t, 12345678901ull);
  assert_int_equal(c, T0 + 5);
  assert_int_equal(e, 9);
  /* Cut inside the op: the length-delimited field runs past the end. */
  for (size_t len = b.len - 300; len < b.len; len++)
    assert_int_equal(sl_txn_peek(b.buf, len, &t, &c, &e), SL_ECORRUPT);
  free(b.buf);

  b = make_txn(1, 2, 0, 0); /* no epoch: 0 */
  e = 99;
  assert_int_equal(sl_txn_peek(b.buf, b.len, &t, &c, &e), 0);
  assert_int_equal(e, 0);
  free(b.buf);

  /* Hand-built encodings. */
  static const struct {
    const char *name;
    uint8_t bytes[24];
    size_t len;
    int rc;
    uint64_t txid;
  } cases[] = {
      {"minimal", {0x08, 0x05, 0x10, 0x07}, 4, 0, 5},
      {"unknown fixed64, fixed32, bytes skipped",
       {0x08, 0x05, 0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x35, 1, 2, 3, 4, 0x42, 2, 0xaa, 0xbb, 0x10, 0x07},
       22, 0, 5},
      {"repeated txid: last wins", {0x08, 0x05, 0x10, 0x07, 0x08, 0x06}, 6, 0, 6},
      {"no txid", {0x10, 0x07}, 2, SL_ECORRUPT, 0},
      {"no commit time", {0x08, 0x05}, 2, SL_ECORRUPT, 0},
      {"empty", {0}, 0, SL_ECORRUPT, 0},
      {"txid as bytes", {0x0a, 0x01, 0x05, 0x10, 0x07}, 5, SL_ECORRUPT, 0},
      {"field 0", {0x00, 0x01, 0x08, 0x05, 0x10, 0x07}, 6, SL_ECORRUPT, 0},
      {"group wire type", {0x08, 0x05, 0x10, 0x07, 0x2b}, 5, SL_ECORRUPT, 0},
      {"wire type 7", {0x08, 0x05, 0x10, 0x07, 0x2f}, 5, SL_ECORRUPT, 0},
      {"varint cut", {0x08, 0x85}, 2, SL_ECORRUPT, 0},
      {"11-byte varint",
       {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x10, 0x07}, 14,
       SL_ECORRUPT, 0},
      {"varint over 64 bits",
       {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x10, 0x07}, 13,
       SL_ECORRUPT, 0},
      {"max varint",
       {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0x07}, 13, 0,
       UINT64_MAX},
      {"length past end", {0x08, 0x05, 0x10, 0x07, 0x22, 0x05, 0x00}, 7, SL_ECORRUPT, 0},
      {"huge length", {0x08, 0x05, 0x10, 0x07, 0x22, 0xff, 0xff, 0xff, 0xff, 0x0f}, 10,
       SL_ECORRUPT, 0},
      {"fixed64 cut", {0x08, 0x05, 0x10, 0x07, 0x29, 1, 2}, 7, SL_ECORRUPT, 0},
      {"fixed32 cut", {0x08, 0x05, 0x10, 0x07, 0x35, 1}, 6, SL_ECORRUPT, 0},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    t = 0;
    int rc = sl_txn_peek(cases[i].bytes, cases[i].len, &t, NULL, NULL);
    if (rc != cases[i].rc) fail_msg("%s: %s", cases[i].name, sl_errname(rc));
    if (rc == 0) assert_int_equal(t, cases[i].txid);
  }
}

/* ---- create, open, append ------------------------------------------------------ */

static void log_create_and_open_refusals(void **state) {
  (void)state;
  char *dir = new_log("log_create", 4096);
  sl_log_options opt = {.segment_size = 4096};
  memcpy(opt.store_id, STORE_ID, SL_STORE_ID_SIZE);
  assert_int_equal(sl_log_create(dir, &opt), SL_EEXIST);
  char *other = tu_path(tu_tmpdir("log_create2"), "log");
  opt.segment_size = SL_SEG_SIZE_MIN - 1;
  assert_int_equal(sl_log_create(other, &opt), SL_EINVAL);
  assert_int_equal(sl_mkdir_p(other), 0);
  sl_log *log;
  assert_int_equal(sl_log_open(other, NULL, &log), SL_ENOTFOUND);

  uint8_t wrong[SL_STORE_ID_SIZE] = {0};
  assert_int_equal(sl_log_open(dir, wrong, &log), SL_ESTOREID);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_next_txid(log), 1);
  assert_int_equal(sl_log_durable_txid(log), 0);
  assert_int_equal(sl_log_last_commit_us(log), 0);
  assert_memory_equal(sl_log_store_id(log), STORE_ID, SL_STORE_ID_SIZE);
  assert_int_equal(sl_log_wait_durable(log, 0), 0);
  sl_log_close(log);

  /* Damaged headers of the (only) segment, each naming the file. */
  char *seg = seg_file(dir, 1);
  size_t len;
  uint8_t *orig = read_whole(seg, &len);
  uint8_t bad[SL_SEG_HEADER_SIZE];
  const struct {
    int off;
    uint8_t val;
    bool fix_crc;
    int rc;
  } cases[] = {{0, 'X', true, SL_ENOTLOG}, {8, 9, true, SL_EVERSION},
               {40, 0x77, false, SL_ECORRUPT}, {12, 8, true, SL_EVERSION} /* unknown flag */,
               {12, 1, true, SL_ECORRUPT} /* sealed without a key id */,
               {12, 4, true, SL_ECORRUPT} /* compressed sealed frames, not sealed */};
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    memcpy(bad, orig, sizeof bad);
    bad[cases[i].off] = cases[i].val;
    if (cases[i].fix_crc) sl_put_le32(bad + 124, sl_crc32c(0, bad, 124));
    write_whole(seg, bad, sizeof bad);
    tu_capture_begin();
    int rc = sl_log_open(dir, NULL, &log);
    char *msg = tu_capture_end();
    assert_int_equal(rc, cases[i].rc);
    assert_contains(msg, seg);
    free(msg);
  }
  write_whole(seg, orig, 60); /* shorter than a header */
  assert_int_equal(sl_log_open(dir, NULL, &log), SL_ECORRUPT);
  write_whole(seg, orig, len);
  assert_int_equal(sl_log_open(dir, NULL, &log), 0);
  sl_log_close(log);
  free(orig);
  free(seg);
  free(other);
  free(dir);
}

static void log_append_validation(void **state) {
  (void)state;
  char *dir = new_log("log_validate", 0);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  blob b = make_txn(2, T0, 0, 5);
  assert_int_equal(sl_log_append(log, b.buf, b.len), SL_EGAP);
  free(b.buf);
  b = make_txn(1, T0, 0, 5);
  assert_int_equal(sl_log_append(log, b.buf, b.len), 0);
  assert_int_equal(sl_log_append(log, b.buf, b.len), SL_EGAP); /* again */
  free(b.buf);
  b = make_txn(2, T0 - 1, 0, 5);
  assert_int_equal(sl_log_append(log, b.buf, b.len), SL_ETIME);
  free(b.buf);
  b = make_txn(2, T0, 0, 5); /* equal time is fine */
  assert_int_equal(sl_log_append(log, b.buf, b.len), 0);
  free(b.buf);
  assert_int_equal(sl_log_append(log, (const uint8_t *)"junk", 4), SL_EINVAL);
  assert_int_equal(sl_log_append(log, (const uint8_t *)"", 0), SL_EINVAL);
  assert_int_equal(sl_log_append(log, (const uint8_t *)"x", (size_t)SL_FRAME_MAX + 1), SL_ETOOBIG);
  assert_int_equal(sl_log_wait_durable(log, 3), SL_EINVAL); /* never appended */
  assert_int_equal(sl_log_wait_durable(log, 2), 0);
  assert_int_equal(sl_log_next_txid(log), 3);
  assert_int_equal(sl_log_last_commit_us(log), T0);
  uint64_t mark;
  assert_int_equal(sl_log_read_durable_mark(dir, &mark), 0);
  assert_int_equal(mark, 2);
  sl_log_close(log);
  char *nolog = tu_path(dir, "nothing");
  assert_int_equal(sl_log_read_durable_mark(nolog, &mark), SL_ENOTFOUND);
  free(nolog);
  free(dir);
}

static void log_rotation_and_reopen(void **state) {
  (void)state;
  char *dir = new_log("log_rotation", 4096);
  sl_log *log;
  const uint64_t n = 600;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, n / 2);
  assert_int_equal(sl_log_wait_durable(log, n / 2), 0);
  sl_log_close(log);
  /* The segment size chosen at create survives reopening. */
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_next_txid(log), n / 2 + 1);
  assert_int_equal(sl_log_last_commit_us(log), tcommit(n / 2));
  append_range(log, n / 2 + 1, n);
  /* A frame bigger than a segment gets a segment of its own. */
  blob big = make_txn(n + 1, tcommit(n + 1), 0, 6000);
  assert_int_equal(sl_log_append(log, big.buf, big.len), 0);
  assert_int_equal(append_txid(log, n + 2), 0);
  assert_int_equal(sl_log_wait_durable(log, n + 2), 0);
  sl_log_stats st;
  sl_log_get_stats(log, &st);
  assert_int_equal(st.appends, n / 2 + 2);
  assert_true(st.rotations > 5);
  sl_log_close(log);

  sl_seg_info *segs;
  size_t count;
  assert_int_equal(sl_log_list(dir, &segs, &count), 0);
  assert_true(count > 10);
  uint64_t expect_first = 1;
  for (size_t i = 0; i < count; i++) {
    char *path = seg_file(dir, i + 1);
    assert_int_equal(segs[i].segno, i + 1);
    assert_string_equal(segs[i].path, path);
    assert_int_equal(segs[i].first_txid, expect_first);
    assert_int_equal(segs[i].size, file_size(path));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* Count the frames: the next segment starts right after the last. */
    sl_log_reader *r;
    sl_frame f;
    sl_log_reader_options ro = {.max_txid = i + 1 < count ? segs[i + 1].first_txid - 1 : 0};
    assert_int_equal(sl_log_reader_open(dir, expect_first, &ro, &r), 0);
    uint64_t end = SL_SEG_HEADER_SIZE;
    while (sl_log_reader_next(r, &f) == 0) {
      assert_int_equal(f.segno, i + 1);
      assert_int_equal(f.offset, end);
      end += SL_FRAME_HEADER_SIZE + f.payload_len;
      expect_first = f.txid + 1;
    }
    sl_log_reader_close(r);
    assert_int_equal(end, segs[i].size);
    if (segs[i].size > 4096) { /* only the big frame, alone */
      assert_int_equal(segs[i].first_txid, n + 1);
      assert_int_equal(expect_first, n + 2);
    }
    free(path);
  }
  assert_int_equal(expect_first, n + 3);
  free(segs);

  /* Read everything back. */
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), 0);
  for (uint64_t t = 1; t <= n; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), 0);
  assert_int_equal(f.payload_len, big.len);
  assert_memory_equal(f.payload, big.buf, big.len);
  assert_int_equal(sl_log_reader_next(r, &f), 0);
  check_frame(&f, n + 2);
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_close(r);
  free(big.buf);

  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_next_txid(log), n + 3);
  assert_int_equal(sl_log_durable_txid(log), n + 2);
  sl_log_close(log);
  free(dir);
}

/* ---- recovery ------------------------------------------------------------------- */

static void log_torn_tail_every_offset(void **state) {
  (void)state;
  char *dir = new_log("log_torn", 0);
  char *seg = seg_file(dir, 1), *markp = tu_path(dir, "durable");
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 4);
  assert_int_equal(sl_log_wait_durable(log, 4), 0);
  append_range(log, 5, 5); /* never acknowledged: may be torn by a crash */
  sl_log_close(log);
  size_t len, mlen;
  uint8_t *full = read_whole(seg, &len), *mark = read_whole(markp, &mlen);
  uint64_t start = len - frame_len(5);
  char want[128];
  snprintf(want, sizeof want, "cutting a torn tail at offset %llu", (unsigned long long)start);
  for (uint64_t cut = start; cut < len; cut++) {
    write_whole(seg, full, cut);
    write_whole(markp, mark, mlen);
    tu_capture_begin();
    int rc = sl_log_open(dir, STORE_ID, &log);
    char *msg = tu_capture_end();
    if (rc) fail_msg("cut at %llu: %s\n%s", (unsigned long long)cut, sl_errname(rc), msg);
    if (cut > start) assert_contains(msg, want);
    free(msg);
    assert_int_equal(file_size(seg), start);
    assert_int_equal(sl_log_next_txid(log), 5);
    assert_int_equal(sl_log_durable_txid(log), 4);
    assert_int_equal(sl_log_last_commit_us(log), tcommit(4));
    append_range(log, 5, 6);
    assert_int_equal(sl_log_wait_durable(log, 6), 0);
    sl_log_close(log);
    read_all(dir, 1, 6);
  }
  free(full);
  free(mark);
  free(seg);
  free(markp);
  free(dir);
}

static void log_garbage_tail_is_cut(void **state) {
  (void)state;
  char *dir = new_log("log_garbage", 0);
  char *seg = seg_file(dir, 1);
  uint64_t seed = tu_seed("log_garbage_tail_is_cut");
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 3);
  assert_int_equal(sl_log_wait_durable(log, 3), 0);
  sl_log_close(log);
  size_t len;
  uint8_t *full = read_whole(seg, &len);
  static const size_t sizes[] = {1, 4, 7, 8, 9, 100, 1000, 4096, 70000};
  uint8_t *g = malloc(70000);
  for (int zero = 0; zero < 2; zero++) {
    for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
      for (size_t k = 0; k < sizes[i]; k++) g[k] = zero ? 0 : (uint8_t)tu_rand(&seed);
      write_whole(seg, full, len);
      append_bytes(seg, g, sizes[i]);
      tu_capture_begin();
      int rc = sl_log_open(dir, STORE_ID, &log);
      char *msg = tu_capture_end();
      if (rc) fail_msg("%zu %s bytes: %s\n%s", sizes[i], zero ? "zero" : "random", sl_errname(rc), msg);
      free(msg);
      /* Eight zero bytes or more are a ZEROED TAIL: kept while open, cut at close. */
      bool kept = zero && sizes[i] >= SL_FRAME_HEADER_SIZE;
      assert_int_equal(file_size(seg), kept ? len + sizes[i] : len);
      assert_int_equal(sl_log_next_txid(log), 4);
      sl_log_close(log);
      assert_int_equal(file_size(seg), len);
    }
  }
  /* A frame header claiming a huge length, and nothing behind it. */
  write_whole(seg, full, len);
  uint8_t hdr[SL_FRAME_HEADER_SIZE];
  sl_put_le32(hdr, SL_FRAME_MAX);
  sl_put_le32(hdr + 4, 0);
  append_bytes(seg, hdr, sizeof hdr);
  tu_capture_begin();
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  free(tu_capture_end());
  assert_int_equal(file_size(seg), len);
  sl_log_close(log);

  /* A frame with a good CRC whose payload is not a transaction is not a
   * torn write: refused. */
  uint8_t junk[SL_FRAME_HEADER_SIZE + 3] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff};
  sl_frame_header_encode(junk + SL_FRAME_HEADER_SIZE, 3, junk);
  append_bytes(seg, junk, sizeof junk);
  tu_capture_begin();
  int rc = sl_log_open(dir, STORE_ID, &log);
  free(tu_capture_end());
  assert_int_equal(rc, SL_ECORRUPT);
  assert_int_equal(file_size(seg), len + sizeof junk);
  free(g);
  free(full);
  free(seg);
  free(dir);
}

/* The bytes of path from off to its end are all zero (and there are some). */
static void assert_zero_after(const char *path, uint64_t off) {
  size_t len;
  uint8_t *b = read_whole(path, &len);
  assert_true(len > off);
  for (size_t i = off; i < len; i++)
    if (b[i]) fail_msg("%s: byte %zu is %u, not zero", path, i, b[i]);
  free(b);
}

/* log.h, ZEROED TAIL: zeros ahead of the frames while a writer has the log
 * open, read as the end by every reader, kept by recovery after a crash,
 * cut when a segment is sealed and at close. */
static void log_zeroed_tail(void **state) {
  (void)state;
  char *dir = new_log("log_zeroed", 0);
  char *seg = seg_file(dir, 1);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 3);
  assert_int_equal(sl_log_wait_durable(log, 3), 0);
  uint64_t end = SL_SEG_HEADER_SIZE + frame_len(1) + frame_len(2) + frame_len(3);
  assert_true(file_size(seg) > end && file_size(seg) <= end + SL_SEG_ZERO_AHEAD);
  assert_zero_after(seg, end);
  read_all(dir, 1, 3); /* a strict reader: the zeros are the end, not damage */
  assert_int_equal(sl_log_bytes_after(dir, 1, 3), frame_len(2) + frame_len(3)); /* no zeros counted */
  sl_log_close(log);
  assert_int_equal(file_size(seg), end);

  /* A writer killed with its zeros in place: reopened without a word, the
   * zeros kept and appended over. */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    sl_log *child;
    if (sl_log_open(dir, STORE_ID, &child) || append_txid(child, 4) || append_txid(child, 5) ||
        sl_log_wait_durable(child, 5))
      _exit(1);
    _exit(0); /* no close: as SIGKILL leaves it */
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  end += frame_len(4) + frame_len(5);
  assert_true(file_size(seg) > end);
  assert_zero_after(seg, end);
  uint64_t kept = file_size(seg);
  tu_capture_begin();
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  char *msg = tu_capture_end();
  assert_string_equal(msg, "");
  free(msg);
  assert_int_equal(file_size(seg), kept);
  assert_int_equal(sl_log_next_txid(log), 6);
  assert_int_equal(sl_log_durable_txid(log), 5);
  append_range(log, 6, 6);
  assert_int_equal(sl_log_wait_durable(log, 6), 0);
  read_all(dir, 1, 6);
  sl_log_close(log);
  end += frame_len(6);
  assert_int_equal(file_size(seg), end);

  /* Zeros with anything after them are a torn tail: cut, and said so. */
  static const uint8_t torn[17] = {[16] = 0x5a};
  append_bytes(seg, torn, sizeof torn);
  tu_capture_begin();
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  msg = tu_capture_end();
  assert_contains(msg, "cutting a torn tail");
  free(msg);
  assert_true(file_size(seg) == end || file_size(seg) == end + SL_SEG_ZERO_AHEAD);
  sl_log_close(log);
  assert_int_equal(file_size(seg), end);
  read_all(dir, 1, 6);

  /* A reader gets the frames written over the zeros at its very next
   * call, though the file's size did not change: after a frame whose read
   * ahead took in the zeros, and after an end it reported. */
  char *dir3 = new_log("log_zeroed_tailing", 0);
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_open(dir3, STORE_ID, &log), 0);
  append_range(log, 1, 2);
  assert_int_equal(sl_log_reader_open(dir3, 1, NULL, &r), 0);
  for (uint64_t t = 1; t <= 2; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  char *seg3 = seg_file(dir3, 1);
  uint64_t size = file_size(seg3);
  append_range(log, 3, 3);
  assert_int_equal(file_size(seg3), size);
  assert_int_equal(sl_log_reader_next(r, &f), 0);
  check_frame(&f, 3);
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  append_range(log, 4, 4);
  assert_int_equal(file_size(seg3), size);
  assert_int_equal(sl_log_reader_next(r, &f), 0);
  check_frame(&f, 4);
  sl_log_reader_close(r);
  sl_log_close(log);
  free(seg3);
  free(dir3);

  /* Sealed segments hold their frames and nothing after them. */
  char *dir2 = new_log("log_zeroed_rotation", 4096);
  assert_int_equal(sl_log_open(dir2, STORE_ID, &log), 0);
  append_range(log, 1, 200);
  assert_int_equal(sl_log_wait_durable(log, 200), 0);
  sl_seg_info *segs;
  size_t count;
  assert_int_equal(sl_log_list(dir2, &segs, &count), 0);
  assert_true(count > 3);
  uint64_t off[201], segno[201];
  frame_offsets(dir2, 200, off, segno);
  for (uint64_t t = 1; t < 200; t++)
    if (segno[t + 1] != segno[t]) assert_int_equal(file_size(segs[segno[t] - 1].path), off[t] + frame_len(t));
  sl_log_close(log);
  read_all(dir2, 1, 200);
  free(segs);
  free(dir2);
  free(seg);
  free(dir);
}

/* Open expecting failure `want`; the message must name seg and `offset`. */
static void open_fails(const char *dir, int want, const char *seg, uint64_t offset) {
  sl_log *log = NULL;
  tu_capture_begin();
  int rc = sl_log_open(dir, STORE_ID, &log);
  char *msg = tu_capture_end();
  if (rc != want) fail_msg("open: %s, want %s\n%s", sl_errname(rc), sl_errname(want), msg);
  char off[64];
  snprintf(off, sizeof off, "offset %llu", (unsigned long long)offset);
  assert_contains(msg, seg);
  assert_contains(msg, off);
  free(msg);
}

static void log_corrupt_middle_refused(void **state) {
  (void)state;
  char *dir = new_log("log_middle", 0);
  char *seg = seg_file(dir, 1), *markp = tu_path(dir, "durable");
  const uint64_t n = 10;
  uint64_t off[11];
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, n);
  assert_int_equal(sl_log_wait_durable(log, n), 0);
  sl_log_close(log);
  frame_offsets(dir, n, off, NULL);
  size_t len, mlen;
  uint8_t *full = read_whole(seg, &len), *mark = read_whole(markp, &mlen);

  for (int with_mark = 1; with_mark >= 0; with_mark--) {
    for (uint64_t k = 1; k < n; k++) {
      /* payload byte, CRC byte: a valid frame follows */
      const uint64_t where[] = {off[k] + SL_FRAME_HEADER_SIZE + 3, off[k] + 5};
      for (size_t w = 0; w < SL_ARRAY_LEN(where); w++) {
        write_whole(seg, full, len);
        if (with_mark) write_whole(markp, mark, mlen);
        else unlink(markp);
        xor_byte(seg, where[w], 0x40);
        open_fails(dir, SL_ECORRUPT, seg, off[k]);
        assert_int_equal(file_size(seg), len); /* nothing changed */
      }
    }
  }
  /* The last frame, or a damaged length field: no valid frame follows, but
   * the durable mark says the bytes were synced, so it is no torn tail. */
  const uint64_t where[] = {off[n] + SL_FRAME_HEADER_SIZE + 2, off[4] + 1};
  const uint64_t frame_at[] = {off[n], off[4]};
  for (size_t w = 0; w < SL_ARRAY_LEN(where); w++) {
    write_whole(seg, full, len);
    write_whole(markp, mark, mlen);
    xor_byte(seg, where[w], 0x01);
    open_fails(dir, SL_ECORRUPT, seg, frame_at[w]);
    assert_int_equal(file_size(seg), len);
    /* Without the mark it is indistinguishable from a torn tail (log.h). */
    unlink(markp);
    tu_capture_begin();
    assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
    free(tu_capture_end());
    assert_int_equal(sl_log_next_txid(log), w == 0 ? n : 4);
    sl_log_close(log);
  }
  /* A segment cut below the durable mark lost synced frames. */
  write_whole(seg, full, off[7]);
  write_whole(markp, mark, mlen);
  open_fails(dir, SL_ECORRUPT, seg, off[7]);
  free(full);
  free(mark);
  free(seg);
  free(markp);
  free(dir);
}

static void log_txid_gap_refused(void **state) {
  (void)state;
  char *dir = new_log("log_gap", 0);
  char *seg = seg_file(dir, 1);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 3);
  assert_int_equal(sl_log_wait_durable(log, 3), 0);
  sl_log_close(log);
  size_t len;
  uint8_t *full = read_whole(seg, &len);
  const uint64_t found[] = {5, 3};
  for (size_t i = 0; i < SL_ARRAY_LEN(found); i++) {
    write_whole(seg, full, len);
    blob b = txn(found[i]);
    uint8_t hdr[SL_FRAME_HEADER_SIZE];
    sl_frame_header_encode(b.buf, (uint32_t)b.len, hdr);
    append_bytes(seg, hdr, sizeof hdr);
    append_bytes(seg, b.buf, b.len);
    free(b.buf);
    tu_capture_begin();
    int rc = sl_log_open(dir, STORE_ID, &log);
    char *msg = tu_capture_end();
    assert_int_equal(rc, SL_EGAP);
    char want[128];
    snprintf(want, sizeof want, "offset %zu: expected txid 4, found %llu", len,
             (unsigned long long)found[i]);
    assert_contains(msg, want);
    assert_contains(msg, seg);
    free(msg);
  }
  free(full);
  free(seg);
  free(dir);
}

static void log_corrupt_older_segment(void **state) {
  (void)state;
  char *dir = new_log("log_older", 4096);
  const uint64_t n = 200;
  uint64_t off[201], segno[201];
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, n);
  assert_int_equal(sl_log_wait_durable(log, n), 0);
  sl_log_close(log);
  frame_offsets(dir, n, off, segno);
  assert_true(segno[n] >= 3);
  uint64_t k = 1;
  while (segno[k + 1] == 1) k++; /* k: the last frame of segment 1 */
  char *seg1 = seg_file(dir, 1), *seg2 = seg_file(dir, 2);
  size_t len1, len2;
  uint8_t *full1 = read_whole(seg1, &len1), *full2 = read_whole(seg2, &len2);

  struct {
    const char *what;
    uint64_t frame; /* offset the reader must name */
  } cases[] = {{"flip in a middle frame", off[k / 2]},
               {"flip in the last frame", off[k]},
               {"garbage after the last frame", len1},
               {"last frame cut short", off[k]}};
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    write_whole(seg1, full1, len1);
    if (i == 0) xor_byte(seg1, off[k / 2] + SL_FRAME_HEADER_SIZE + 1, 0x04);
    if (i == 1) xor_byte(seg1, off[k] + SL_FRAME_HEADER_SIZE + 1, 0x04);
    if (i == 2) append_bytes(seg1, "\0\0\0\0\0\0\0\0\0", 9);
    if (i == 3) write_whole(seg1, full1, len1 - 3);
    /* Open scans only the newest segment: older ones were synced whole. */
    assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
    sl_log_close(log);
    for (int tolerate = 0; tolerate < 2; tolerate++) {
      sl_log_reader_options ro = {.tolerate_tail = tolerate};
      sl_log_reader *r;
      sl_frame f;
      int rc;
      assert_int_equal(sl_log_reader_open(dir, 1, &ro, &r), 0);
      tu_capture_begin();
      while ((rc = sl_log_reader_next(r, &f)) == 0) continue;
      int again = sl_log_reader_next(r, &f);
      char *msg = tu_capture_end();
      if (rc != SL_ECORRUPT) fail_msg("%s: %s", cases[i].what, sl_errname(rc));
      assert_int_equal(again, SL_ECORRUPT); /* stays */
      char want[64];
      snprintf(want, sizeof want, "offset %llu", (unsigned long long)cases[i].frame);
      assert_contains(msg, seg1);
      assert_contains(msg, want);
      free(msg);
      sl_log_reader_close(r);
    }
  }
  write_whole(seg1, full1, len1);
  read_all(dir, 1, n);

  /* Segment 2's header says it starts one txid late. */
  sl_seg_header h;
  assert_int_equal(sl_seg_header_decode(full2, &h), 0);
  h.first_txid++;
  uint8_t hb[SL_SEG_HEADER_SIZE];
  sl_seg_header_encode(&h, hb);
  int fd = open(seg2, O_WRONLY);
  assert_int_equal(sl_pwrite_all(fd, hb, sizeof hb, 0), 0);
  close(fd);
  sl_log_reader *r;
  sl_frame f;
  int rc;
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), 0);
  tu_capture_begin();
  while ((rc = sl_log_reader_next(r, &f)) == 0) continue;
  free(tu_capture_end());
  assert_int_equal(rc, SL_EGAP);
  sl_log_reader_close(r);
  write_whole(seg2, full2, len2);

  /* A missing middle segment. */
  char *seg2b = tu_path(dir, "moved");
  assert_int_equal(rename(seg2, seg2b), 0);
  tu_capture_begin();
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), SL_EGAP);
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), SL_EGAP);
  free(tu_capture_end());
  assert_int_equal(rename(seg2b, seg2), 0);
  free(seg2b);
  free(full1);
  free(full2);
  free(seg1);
  free(seg2);
  free(dir);
}

/* ---- group commit ----------------------------------------------------------- */

typedef struct gc_ctx {
  sl_log *log;
  pthread_mutex_t mu; /* the store's writer lock */
  int errors;
} gc_ctx;

#define GC_THREADS 8
#define GC_ITERS 500

static void *gc_thread(void *arg) {
  gc_ctx *c = arg;
  for (int i = 0; i < GC_ITERS; i++) {
    pthread_mutex_lock(&c->mu);
    uint64_t t = sl_log_next_txid(c->log);
    blob b = make_txn(t, tcommit(t), 0, 40);
    int rc = sl_log_append(c->log, b.buf, b.len);
    pthread_mutex_unlock(&c->mu);
    free(b.buf);
    if (!rc) rc = sl_log_wait_durable(c->log, t);
    if (!rc && sl_log_durable_txid(c->log) < t) rc = -1;
    if (rc) __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void log_group_commit(void **state) {
  (void)state;
  char *dir = new_log("log_group", 16384); /* rotations race with leaders */
  gc_ctx c = {.mu = PTHREAD_MUTEX_INITIALIZER};
  assert_int_equal(sl_log_open(dir, STORE_ID, &c.log), 0);
  pthread_t th[GC_THREADS];
  uint64_t t0 = sl_mono_ns();
  for (int i = 0; i < GC_THREADS; i++) pthread_create(&th[i], NULL, gc_thread, &c);
  for (int i = 0; i < GC_THREADS; i++) pthread_join(th[i], NULL);
  uint64_t total = GC_THREADS * GC_ITERS;
  assert_int_equal(c.errors, 0);
  assert_int_equal(sl_log_durable_txid(c.log), total);
  sl_log_stats st;
  sl_log_get_stats(c.log, &st);
  fprintf(stderr, "group commit: %llu appends, %llu syncs, %llu rotations, %.1f ms\n",
          (unsigned long long)st.appends, (unsigned long long)st.syncs,
          (unsigned long long)st.rotations, (double)(sl_mono_ns() - t0) / 1e6);
  assert_int_equal(st.appends, total);
  assert_true(st.syncs < st.appends);
  assert_true(st.rotations > 0);
  uint64_t mark;
  assert_int_equal(sl_log_read_durable_mark(dir, &mark), 0);
  assert_int_equal(mark, total);
  sl_log_close(c.log);
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), 0);
  for (uint64_t t = 1; t <= total; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    assert_int_equal(f.txid, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_close(r);
  free(dir);
}

/* ---- readers ------------------------------------------------------------------ */

static void log_reader_from_middle(void **state) {
  (void)state;
  char *dir = new_log("log_reader", 4096);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 300);
  assert_int_equal(sl_log_wait_durable(log, 300), 0);
  read_all(dir, 150, 300);
  read_all(dir, 300, 300);
  sl_log_reader *r;
  sl_frame f;
  assert_int_equal(sl_log_reader_open(dir, 0, NULL, &r), 0); /* 0: from the oldest kept */
  assert_int_equal(sl_log_reader_next(r, &f), 0);
  check_frame(&f, 1);
  sl_log_reader_close(r);

  sl_log_reader_options ro = {.max_txid = 200};
  assert_int_equal(sl_log_reader_open(dir, 150, &ro, &r), 0);
  for (uint64_t t = 150; t <= 200; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_set_max(r, 0);
  for (uint64_t t = 201; t <= 300; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  /* The same reader sees later appends (tailing), across a rotation. */
  append_range(log, 301, 330);
  for (uint64_t t = 301; t <= 330; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_close(r);

  /* A txid past the end: nothing yet, then it arrives. */
  assert_int_equal(sl_log_reader_open(dir, 332, NULL, &r), 0);
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  append_range(log, 331, 333);
  assert_int_equal(sl_log_reader_next(r, &f), 0);
  check_frame(&f, 332);
  sl_log_reader_close(r);
  sl_log_close(log);
  free(dir);
}

typedef struct tail_ctx {
  sl_log *log;
  uint64_t n;
  int errors;
} tail_ctx;

static void *tail_writer(void *arg) {
  tail_ctx *c = arg;
  for (uint64_t t = 1; t <= c->n; t++) {
    int rc = append_txid(c->log, t);
    if (!rc && (t % 7 == 0 || t == c->n)) rc = sl_log_wait_durable(c->log, t);
    if (rc) __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
    if (t % 100 == 0) usleep(500);
  }
  return NULL;
}

static void log_reader_tails_writer(void **state) {
  (void)state;
  char *dir = new_log("log_tail", 8192);
  tail_ctx c = {.n = 3000};
  assert_int_equal(sl_log_open(dir, STORE_ID, &c.log), 0);
  /* r1 ships only the durable prefix; r2 reads whatever is written. */
  sl_log_reader *r1, *r2;
  sl_log_reader_options o1 = {.tolerate_tail = true}, o2 = {.tolerate_tail = true};
  assert_int_equal(sl_log_reader_open(dir, 1, &o1, &r1), 0);
  assert_int_equal(sl_log_reader_open(dir, 1, &o2, &r2), 0);
  pthread_t th;
  pthread_create(&th, NULL, tail_writer, &c);
  uint64_t next1 = 1, next2 = 1;
  uint64_t deadline = sl_mono_ns() + 120ull * 1000000000u;
  while ((next1 <= c.n || next2 <= c.n) && sl_mono_ns() < deadline) {
    sl_frame f;
    int rc;
    uint64_t mark;
    bool progress = false;
    if (sl_log_read_durable_mark(dir, &mark) == 0 && mark > 0) {
      sl_log_reader_set_max(r1, mark);
      while ((rc = sl_log_reader_next(r1, &f)) == 0) {
        assert_int_equal(f.txid, next1);
        assert_true(f.txid <= mark);
        check_frame(&f, next1++);
        progress = true;
      }
      assert_int_equal(rc, SL_EEND);
    }
    while ((rc = sl_log_reader_next(r2, &f)) == 0) {
      assert_int_equal(f.txid, next2);
      check_frame(&f, next2++);
      progress = true;
    }
    assert_int_equal(rc, SL_EEND);
    if (!progress) usleep(200);
  }
  pthread_join(th, NULL);
  assert_int_equal(c.errors, 0);
  assert_int_equal(next1, c.n + 1);
  assert_int_equal(next2, c.n + 1);
  sl_log_reader_close(r1);
  sl_log_reader_close(r2);
  sl_log_close(c.log);
  free(dir);
}

static void log_find_after_time(void **state) {
  (void)state;
  char *dir = new_log("log_find", 4096);
  sl_log *log;
  uint64_t txid;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_find_after_time(dir, 0, &txid), 0); /* empty log */
  assert_int_equal(txid, 1);
  /* Three transactions per millisecond: equal commit times. */
  const uint64_t n = 400;
  for (uint64_t t = 1; t <= n; t++) {
    blob b = make_txn(t, T0 + t / 3 * 1000, 0, tpad(t));
    assert_int_equal(sl_log_append(log, b.buf, b.len), 0);
    free(b.buf);
  }
  assert_int_equal(sl_log_wait_durable(log, n), 0);
  for (uint64_t since = T0 - 1000; since <= T0 + (n / 3 + 2) * 1000; since += 500) {
    uint64_t want = n + 1;
    for (uint64_t t = 1; t <= n; t++) {
      if (T0 + t / 3 * 1000 > since) {
        want = t;
        break;
      }
    }
    assert_int_equal(sl_log_find_after_time(dir, since, &txid), 0);
    if (txid != want)
      fail_msg("since %llu: %llu, want %llu", (unsigned long long)(since - T0),
               (unsigned long long)txid, (unsigned long long)want);
  }
  sl_log_close(log);
  free(dir);
}

/* ---- consumers and pruning --------------------------------------------------------- */

static void log_consumers_and_prune(void **state) {
  (void)state;
  char *dir = new_log("log_prune", 4096);
  sl_log *log;
  uint64_t v;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 400);
  assert_int_equal(sl_log_wait_durable(log, 400), 0);
  sl_seg_info *segs;
  size_t n0, n;
  assert_int_equal(sl_log_list(dir, &segs, &n0), 0);
  free(segs);
  assert_true(n0 >= 8);

  assert_int_equal(sl_log_consumer_get(dir, "ship", &v), SL_ENOTFOUND);
  assert_int_equal(sl_log_consumer_set(dir, "ship", 100), 0);
  assert_int_equal(sl_log_consumer_set(dir, "backup-1.x", 300), 0);
  assert_int_equal(sl_log_consumer_get(dir, "ship", &v), 0);
  assert_int_equal(v, 100);
  assert_int_equal(sl_log_consumer_set(dir, "../evil", 1), SL_EINVAL);
  assert_int_equal(sl_log_consumer_set(dir, "", 1), SL_EINVAL);
  assert_int_equal(sl_log_consumer_set(dir, ".hidden", 1), SL_EINVAL);
  assert_int_equal(sl_log_consumer_set(dir, "x.tmp", 1), SL_EINVAL);

  /* Removes exactly the segments whose last txid <= min(checkpoint, consumers). */
  const struct {
    uint64_t checkpoint;
    uint64_t limit;
  } steps[] = {{50, 50}, {1000, 100}, {1000, 100}};
  for (size_t s = 0; s < SL_ARRAY_LEN(steps); s++) {
    assert_int_equal(sl_log_list(dir, &segs, &n), 0);
    int want = 0;
    while ((size_t)want + 1 < n && segs[want + 1].first_txid - 1 <= steps[s].limit) want++;
    uint64_t oldest_kept = segs[want].first_txid;
    free(segs);
    assert_int_equal(sl_log_prune(log, steps[s].checkpoint), want);
    assert_int_equal(sl_log_list(dir, &segs, &n), 0);
    assert_int_equal(segs[0].first_txid, oldest_kept);
    assert_true(segs[0].first_txid <= steps[s].limit + 1);
    free(segs);
  }
  sl_log_reader *r;
  tu_capture_begin();
  assert_int_equal(sl_log_reader_open(dir, 1, NULL, &r), SL_ENOTFOUND);
  free(tu_capture_end());
  assert_int_equal(sl_log_reader_open(dir, 101, NULL, &r), 0); /* still kept */
  sl_log_reader_close(r);

  /* Without consumers, the checkpoint alone rules; the active segment stays. */
  assert_int_equal(sl_log_consumer_remove(dir, "ship"), 0);
  assert_int_equal(sl_log_consumer_remove(dir, "ship"), SL_ENOTFOUND);
  assert_int_equal(sl_log_consumer_set(dir, "backup-1.x", UINT64_MAX), 0);
  assert_true(sl_log_prune(log, UINT64_MAX) > 0);
  assert_int_equal(sl_log_list(dir, &segs, &n), 0);
  assert_int_equal(n, 1);
  free(segs);
  assert_int_equal(sl_log_prune(log, UINT64_MAX), 0);
  append_range(log, 401, 410);
  assert_int_equal(sl_log_wait_durable(log, 410), 0);
  sl_log_close(log);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_next_txid(log), 411);
  sl_log_close(log);
  free(dir);
}

/* SYNC AHEAD: the helper thread makes what is written durable without the
 * caller leading the sync; the caller's wait then finds it done. */
static void log_sync_ahead(void **state) {
  (void)state;
  char *dir = new_log("log_sync_ahead", 0);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 3);
  sl_log_sync_ahead(log);
  for (int i = 0; i < 5000 && sl_log_durable_txid(log) < 3; i++) usleep(1000);
  assert_int_equal(sl_log_durable_txid(log), 3);
  assert_int_equal(sl_log_wait_durable(log, 3), 0);
  sl_log_sync_ahead(log); /* nothing to sync: no request */
  append_range(log, 4, 6);
  sl_log_sync_ahead(log);
  assert_int_equal(sl_log_wait_durable(log, 6), 0);
  sl_log_close(log); /* joins the helper */
  read_all(dir, 1, 6);
  free(dir);
}

/* ---- fault injection -------------------------------------------------------------- */

#ifdef SL_FAULT_INJECTION
/* A failed fdatasync makes the log FAILED, whether the caller's wait or
 * the SYNC AHEAD thread (`ahead`) led it; reopening recovers. */
static void fsync_failure_is_sticky(const char *name, bool ahead) {
  char *dir = new_log(name, 0);
  sl_log *log;
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 2);
  assert_int_equal(sl_log_wait_durable(log, 2), 0);
  assert_int_equal(append_txid(log, 3), 0);
  sl_fault_set(SL_FAULT_LOG_FSYNC, -EIO, 0, 1); /* fails once: never retried anyway */
  tu_capture_begin();
  if (ahead) {
    uint64_t hits = sl_fault_hits(SL_FAULT_LOG_FSYNC);
    sl_log_sync_ahead(log);
    for (int i = 0; i < 5000 && sl_fault_hits(SL_FAULT_LOG_FSYNC) == hits; i++) usleep(1000);
  }
  int rc = sl_log_wait_durable(log, 3);
  char *msg = tu_capture_end();
  if (ahead) assert_true(rc == SL_EFAILED || rc == -EIO); /* the helper failed, or the caller led */
  else assert_int_equal(rc, -EIO);
  assert_contains(msg, "FAILED");
  free(msg);
  assert_int_equal(sl_log_wait_durable(log, 3), SL_EFAILED);
  assert_int_equal(sl_log_wait_durable(log, 1), SL_EFAILED);
  assert_int_equal(append_txid(log, 4), SL_EFAILED);
  assert_int_equal(sl_log_prune(log, 10), SL_EFAILED);
  assert_int_equal(sl_log_durable_txid(log), 2);
  assert_int_equal(sl_fault_hits(SL_FAULT_LOG_FSYNC), 3); /* open, wait 2, the failed one */
  sl_log_close(log);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  /* Reopen recovers: frame 3 reached the file (the page cache). */
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_next_txid(log), 4);
  assert_int_equal(sl_log_durable_txid(log), 3);
  append_range(log, 4, 5);
  assert_int_equal(sl_log_wait_durable(log, 5), 0);
  sl_log_close(log);
  read_all(dir, 1, 5);
  free(dir);
}

static void log_fsync_failure_is_sticky(void **state) {
  (void)state;
  fsync_failure_is_sticky("log_fsync_fail", false);
}

static void log_sync_ahead_failure(void **state) {
  (void)state;
  fsync_failure_is_sticky("log_sync_ahead_fail", true);
}

static void log_write_failure_tears_frame(void **state) {
  (void)state;
  char *dir = new_log("log_write_fail", 0);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 2);
  assert_int_equal(sl_log_wait_durable(log, 2), 0);
  /* A full disk: the half frame is cut back and the log stays usable. */
  sl_fault_set(SL_FAULT_LOG_WRITE, -ENOSPC, 0, 1);
  tu_capture_begin();
  int rc = append_txid(log, 3);
  char *msg = tu_capture_end();
  assert_int_equal(rc, -ENOSPC);
  assert_contains(msg, "cut back");
  free(msg);
  append_range(log, 3, 4);
  assert_int_equal(sl_log_wait_durable(log, 4), 0);
  sl_log_close(log);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  assert_int_equal(sl_log_next_txid(log), 5);
  /* Any other write error: FAILED, and the torn frame is cut at reopen. */
  sl_fault_set(SL_FAULT_LOG_WRITE, -EIO, 0, 1);
  tu_capture_begin();
  rc = append_txid(log, 5);
  free(tu_capture_end());
  assert_int_equal(rc, -EIO);
  assert_int_equal(append_txid(log, 5), SL_EFAILED);
  assert_int_equal(sl_log_wait_durable(log, 4), SL_EFAILED);
  sl_log_close(log);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  tu_capture_begin();
  rc = sl_log_open(dir, STORE_ID, &log);
  msg = tu_capture_end();
  assert_int_equal(rc, 0);
  assert_contains(msg, "cutting a torn tail");
  free(msg);
  assert_int_equal(sl_log_next_txid(log), 5);
  append_range(log, 5, 6);
  assert_int_equal(sl_log_wait_durable(log, 6), 0);
  sl_log_close(log);
  read_all(dir, 1, 6);
  free(dir);
}

/* Appends until the first rotation is attempted (segment 2 would start). */
static int fill_first_segment(sl_log *log, uint64_t *next) {
  int rc;
  for (;;) {
    uint64_t before = sl_fault_hits(SL_FAULT_LOG_SEG_CREATE) + sl_fault_hits(SL_FAULT_LOG_SEG_FSYNC);
    rc = append_txid(log, *next);
    if (rc) return rc;
    (*next)++;
    if (sl_fault_hits(SL_FAULT_LOG_SEG_CREATE) + sl_fault_hits(SL_FAULT_LOG_SEG_FSYNC) != before)
      return 0;
  }
}

static void log_rotation_faults(void **state) {
  (void)state;
  /* Creating the next segment fails: the append fails, the log stays usable. */
  char *dir = new_log("log_rot_fault", 4096);
  sl_log *log;
  uint64_t next = 1;
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  sl_fault_set(SL_FAULT_LOG_SEG_CREATE, -ENOSPC, 0, 1);
  tu_capture_begin();
  int rc = fill_first_segment(log, &next);
  free(tu_capture_end());
  assert_int_equal(rc, -ENOSPC);
  assert_int_equal(sl_log_durable_txid(log), next - 1); /* sealing synced segment 1 */
  assert_int_equal(append_txid(log, next), 0);           /* rotation retried */
  assert_int_equal(sl_log_wait_durable(log, next), 0);
  sl_log_close(log);
  read_all(dir, 1, next);
  free(dir);

  /* Sealing fdatasync or the directory fsync fails: FAILED; reopen recovers. */
  const enum sl_fault_point points[] = {SL_FAULT_LOG_SEG_FSYNC, SL_FAULT_LOG_DIR_FSYNC};
  for (size_t i = 0; i < SL_ARRAY_LEN(points); i++) {
    dir = new_log("log_rot_fault2", 4096);
    next = 1;
    sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
    assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
    sl_fault_set(points[i], -EIO, 0, 1);
    tu_capture_begin();
    rc = fill_first_segment(log, &next);
    char *msg = tu_capture_end();
    assert_int_equal(rc, -EIO);
    assert_contains(msg, "FAILED");
    free(msg);
    assert_int_equal(append_txid(log, next), SL_EFAILED);
    assert_int_equal(sl_log_wait_durable(log, 1), SL_EFAILED);
    sl_log_close(log);
    sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
    assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
    assert_int_equal(sl_log_next_txid(log), next);
    assert_int_equal(sl_log_last_commit_us(log), tcommit(next - 1));
    append_range(log, next, next + 50);
    assert_int_equal(sl_log_wait_durable(log, next + 50), 0);
    sl_log_close(log);
    read_all(dir, 1, next + 50);
    free(dir);
  }
}

static void log_prune_faults(void **state) {
  (void)state;
  char *dir = new_log("log_prune_fault", 4096);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 200);
  assert_int_equal(sl_log_wait_durable(log, 200), 0);
  sl_fault_set(SL_FAULT_LOG_UNLINK, -EACCES, 1, 1); /* the second unlink fails */
  tu_capture_begin();
  int rc = sl_log_prune(log, UINT64_MAX);
  free(tu_capture_end());
  assert_int_equal(rc, -EACCES);
  sl_seg_info *segs;
  size_t n;
  assert_int_equal(sl_log_list(dir, &segs, &n), 0);
  assert_int_equal(segs[0].segno, 2); /* the first removal happened */
  free(segs);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  assert_true(sl_log_prune(log, UINT64_MAX) > 0);
  sl_log_close(log);
  free(dir);
}
#endif

/* PACKED SEGMENTS: sealed segments packed in place read as before (frames,
 * offsets, lineage, time search, truncation); the newest is never touched;
 * a damaged packed file or a damaged frame before packing is SL_ECORRUPT. */
static void log_pack(void **state) {
  (void)state;
  char *dir = new_log("log_pack", 4096);
  sl_log *log;
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 120);
  assert_int_equal(sl_log_wait_durable(log, 120), 0);
  sl_log_close(log);
  sl_seg_info *segs;
  size_t n;
  assert_int_equal(sl_log_list(dir, &segs, &n), 0);
  assert_true(n >= 4);
  uint64_t cs_before, cs_after, plain, packed, offsets[121] = {0};
  assert_int_equal(sl_log_checksum_at(dir, 77, &cs_before), 0);
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.tolerate_tail = false};
  assert_int_equal(sl_log_reader_open(dir, 1, &ro, &r), 0);
  for (uint64_t t = 1; t <= 120; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    offsets[t] = f.offset;
  }
  sl_log_reader_close(r);
  for (size_t i = 0; i + 1 < n; i++) {
    assert_int_equal(sl_log_seg_pack(segs[i].path, &plain, &packed), 0);
    assert_int_equal(plain, segs[i].size);
    assert_true(packed > 0 && packed < plain); /* the padding compresses */
    sl_seg_info packed_info = segs[i];
    packed_info.size = packed;
    assert_int_equal(sl_log_seg_plain_size(&packed_info), plain);
    assert_int_equal(sl_log_seg_pack(segs[i].path, &plain, &packed), 0); /* packed already */
    assert_int_equal(packed, 0);
  }
  assert_int_equal(file_size(segs[n - 1].path), segs[n - 1].size);
  free(segs);
  assert_int_equal(sl_log_reader_open(dir, 1, &ro, &r), 0);
  for (uint64_t t = 1; t <= 120; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
    assert_int_equal(f.offset, offsets[t]);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_close(r);
  assert_int_equal(sl_log_checksum_at(dir, 77, &cs_after), 0);
  assert_int_equal(cs_after, cs_before);
  uint64_t txid;
  assert_int_equal(sl_log_find_after_time(dir, tcommit(40), &txid), 0);
  assert_int_equal(txid, 41);
  /* reopened for writing: recovery reads the packed previous segment */
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 121, 125);
  sl_log_close(log);
  /* truncation into a packed segment cuts it as the plain file */
  assert_int_equal(sl_log_truncate(dir, 30), 0);
  assert_int_equal(sl_log_reader_open(dir, 1, &ro, &r), 0);
  for (uint64_t t = 1; t <= 30; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  assert_int_equal(sl_log_reader_next(r, &f), SL_EEND);
  sl_log_reader_close(r);

  free(dir);
  /* damage: a byte of a packed file; a frame of a segment to pack */
  dir = new_log("log_pack_damage", 4096);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 120);
  sl_log_close(log);
  char *s1 = seg_file(dir, 1), *s2 = seg_file(dir, 2);
  assert_int_equal(sl_log_seg_pack(s1, &plain, &packed), 0);
  xor_byte(s1, packed - 10, 0x40);
  ro.tolerate_tail = true;
  assert_int_equal(sl_log_reader_open(dir, 1, &ro, &r), SL_ECORRUPT);
  xor_byte(s2, SL_SEG_HEADER_SIZE + 20, 0x40);
  assert_int_equal(sl_log_seg_pack(s2, &plain, &packed), SL_ECORRUPT);
  /* zeros after the last frame of a sealed segment: damage there (log.h, ZEROED TAIL) */
  char *s3 = seg_file(dir, 3);
  static const uint8_t zeros[16];
  append_bytes(s3, zeros, sizeof zeros);
  tu_capture_begin();
  assert_int_equal(sl_log_seg_pack(s3, &plain, &packed), SL_ECORRUPT);
  char *msg = tu_capture_end();
  assert_contains(msg, s3);
  free(msg);
  free(s3);
  free(s1);
  free(s2);
  free(dir);
}

/* NEWEST RUN: a segment missing in the middle fails the strict listing;
 * readers of an archive list the run after it, and read and find
 * checksums there as before. */
static void log_newest_run_after_gap(void **state) {
  (void)state;
  sl_log *log;
  sl_seg_info *segs;
  size_t n;
  uint64_t cut, cs_before, cs_after, txid;
  char *dir = new_log("log_newest_run", 4096);
  assert_int_equal(sl_log_open(dir, STORE_ID, &log), 0);
  append_range(log, 1, 120);
  sl_log_close(log);
  assert_int_equal(sl_log_list(dir, &segs, &n), 0);
  assert_true(n >= 4);
  size_t whole = n;
  uint64_t third_first = segs[2].first_txid;
  free(segs);
  assert_int_equal(sl_log_checksum_at(dir, 110, &cs_before), 0);

  char *second = seg_file(dir, 2);
  assert_int_equal(unlink(second), 0);
  free(second);
  assert_int_equal(sl_log_list(dir, &segs, &n), SL_EGAP);
  assert_int_equal(sl_log_list_newest_run(dir, &segs, &n, &cut), 0);
  assert_int_equal(cut, 3);
  assert_int_equal(n, whole - 2);
  assert_int_equal(segs[0].first_txid, third_first);
  free(segs);

  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options strict = {0}, run = {.newest_run = true};
  assert_int_equal(sl_log_reader_open(dir, 110, &strict, &r), SL_EGAP);
  assert_int_equal(sl_log_reader_open(dir, 1, &run, &r), SL_ENOTFOUND); /* cut off */
  assert_int_equal(sl_log_reader_open(dir, 110, &run, &r), 0);
  for (uint64_t t = 110; t <= 120; t++) {
    assert_int_equal(sl_log_reader_next(r, &f), 0);
    check_frame(&f, t);
  }
  sl_log_reader_close(r);
  assert_int_equal(sl_log_checksum_at(dir, 110, &cs_after), 0);
  assert_int_equal(cs_after, cs_before);
  assert_int_equal(sl_log_find_after_time_newest_run(dir, tcommit(115), &txid), 0);
  assert_int_equal(txid, 116);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(log_frame_codec),
      cmocka_unit_test(log_header_codec),
      cmocka_unit_test(log_txn_peek),
      cmocka_unit_test(log_create_and_open_refusals),
      cmocka_unit_test(log_append_validation),
      cmocka_unit_test(log_sync_ahead),
      cmocka_unit_test(log_rotation_and_reopen),
      cmocka_unit_test(log_torn_tail_every_offset),
      cmocka_unit_test(log_garbage_tail_is_cut),
      cmocka_unit_test(log_zeroed_tail),
      cmocka_unit_test(log_corrupt_middle_refused),
      cmocka_unit_test(log_txid_gap_refused),
      cmocka_unit_test(log_corrupt_older_segment),
      cmocka_unit_test(log_group_commit),
      cmocka_unit_test(log_reader_from_middle),
      cmocka_unit_test(log_reader_tails_writer),
      cmocka_unit_test(log_find_after_time),
      cmocka_unit_test(log_newest_run_after_gap),
      cmocka_unit_test(log_consumers_and_prune),
#ifdef SL_FAULT_INJECTION
      cmocka_unit_test(log_fsync_failure_is_sticky),
      cmocka_unit_test(log_sync_ahead_failure),
      cmocka_unit_test(log_write_failure_tears_frame),
      cmocka_unit_test(log_rotation_faults),
      cmocka_unit_test(log_prune_faults),
      cmocka_unit_test(log_pack),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
