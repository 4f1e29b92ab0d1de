/*
 * receiver: a real receiver (sl_receiver_run in a thread, 127.0.0.1, port
 * 0 reported through a pipe) driven over raw sockets with hand-made
 * messages. Malformed input always gets an Error or a close, never a hang,
 * and never disturbs another stream; refusals carry the right code and
 * permanence; what is durable survives gaps, bad batches, disk errors and
 * restarts; overlapping batches are trimmed so the archive stays dense.
 *
 * The standby is opened here only after the receiver stopped: LMDB forbids
 * opening one environment twice in a process.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "codec.h"
#include "log.h"
#include "receiver.h"
#include "sl_base.h"
#include "sl_status.h"
#include "store.h"
#include "transaction.pb-c.h"

static const uint8_t ID_A[16] = {0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t ID_B[16] = {0xb2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static uint64_t base_us;

/* ---- the receiver in a thread ---------------------------------------------------- */
typedef tu_receiver rx;

static void rx_start(rx *r, const char *dir, int max_connections, int timeout_ms) {
  if (dir != r->dir) snprintf(r->dir, sizeof r->dir, "%s", dir);
  r->stop = 0;
  r->o = (sl_receiver_options){.listen = "127.0.0.1:0", .data_dir = r->dir, .insecure = true, .heartbeat_ms = 100,
                               .timeout_ms = timeout_ms, .max_connections = max_connections};
  tu_receiver_start(r);
}


/* ---- frames and messages --------------------------------------------------------- */

/* The log frame of transaction `txid`: create node txid, or (bad) delete a
 * node that does not exist, which the standby refuses. */
static void add_frame(sl_buf *out, uint64_t txid, bool bad) {
  if (!bad) {
    tu_frame_create(out, txid, base_us + txid, txid, "N");
    return;
  }
  Shiplog__Op op = SHIPLOG__OP__INIT;
  Shiplog__DeleteNode dn = SHIPLOG__DELETE_NODE__INIT;
  dn.id = 1ull << 40;
  op.op_case = SHIPLOG__OP__OP_DELETE_NODE;
  op.delete_node = &dn;
  tu_frame_op(out, txid, base_us + txid, &op);
}

static sl_conn *dial(const rx *r) {
  sl_conn *c;
  assert_int_equal(sl_conn_connect(r->addr, 2000, &c), 0);
  return c;
}

static void send_hello(sl_conn *c, uint32_t version, const char *stream, const uint8_t *id,
                       uint64_t from_txid) {
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Hello h = SHIPLOG__REPL__HELLO__INIT;
  h.protocol_version = version;
  h.stream = (char *)stream;
  h.store_id.data = (uint8_t *)id;
  h.store_id.len = 16;
  if (from_txid) {
    h.has_start = h.has_start_txid = true;
    h.start = SHIPLOG__REPL__START_KIND__START_FROM_TXID;
    h.start_txid = from_txid;
  }
  h.has_committed_txid = h.has_primary_time_us = true;
  h.committed_txid = 0;
  h.primary_time_us = sl_now_us();
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HELLO;
  m.hello = &h;
  assert_int_equal(sl_conn_send(c, &m), 0);
}

/* The next message that is not a heartbeat; NULL with *rc on a receive error. */
static Shiplog__Repl__Message *next_msg(sl_conn *c, int *rc) {
  for (;;) {
    Shiplog__Repl__Message *m;
    *rc = sl_conn_recv(c, 5000, SL_MSG_MAX, &m);
    if (*rc) return NULL;
    if (m->body_case != SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT) return m;
    sl_msg_free(m);
  }
}

/* Hello, then the Welcome; returns its durable txid. */
static uint64_t hello_ok(sl_conn *c, const char *stream, const uint8_t *id, uint64_t from_txid,
                         uint64_t *first_txid) {
  int rc;
  send_hello(c, SL_PROTOCOL_VERSION, stream, id, from_txid);
  Shiplog__Repl__Message *m = next_msg(c, &rc);
  assert_non_null(m);
  if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_ERROR)
    fail_msg("refused: %s", m->error->message ? m->error->message : "?");
  assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_WELCOME);
  assert_int_equal(m->welcome->protocol_version, SL_PROTOCOL_VERSION);
  uint64_t d = m->welcome->durable_txid;
  if (first_txid) *first_txid = m->welcome->first_txid;
  sl_msg_free(m);
  return d;
}

/* The next message that is neither a heartbeat nor an Ack: an Ack for
 * what an earlier batch applied may come before the answer to a bad one. */
static Shiplog__Repl__Message *next_non_ack(sl_conn *c, int *rc) {
  Shiplog__Repl__Message *m;
  while ((m = next_msg(c, rc)) && m->body_case == SHIPLOG__REPL__MESSAGE__BODY_ACK) sl_msg_free(m);
  return m;
}

/* An Error with this code, then the receiver closes (no hang). */
static void expect_error(sl_conn *c, Shiplog__Repl__ErrorCode code, bool permanent) {
  int rc;
  Shiplog__Repl__Message *m = next_non_ack(c, &rc);
  assert_non_null(m);
  assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_ERROR);
  assert_int_equal(m->error->code, code);
  assert_int_equal(m->error->permanent, permanent);
  sl_msg_free(m);
  m = next_msg(c, &rc);
  assert_null(m);
  assert_true(rc == SL_EEND || rc == -ECONNRESET);
}

/* An Error (any code) or a close, within the receive timeout. */
static void expect_error_or_close(sl_conn *c) {
  int rc;
  Shiplog__Repl__Message *m = next_non_ack(c, &rc);
  if (m) {
    assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_ERROR);
    sl_msg_free(m);
    m = next_msg(c, &rc);
    assert_null(m);
  }
  assert_true(rc == SL_EEND || rc == -ECONNRESET || rc == SL_ETRUNCATED);
}

static void send_frames(sl_conn *c, const sl_buf *raw, uint64_t first, uint64_t last, bool lz4) {
  sl_buf scratch = {0};
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Batch b;
  assert_int_equal(sl_batch_seal(raw->data, raw->len, first, last, lz4, &scratch, &b), 0);
  b.has_committed_txid = b.has_sent_time_us = b.has_last_commit_us = true;
  b.committed_txid = last;
  b.sent_time_us = sl_now_us();
  b.last_commit_us = base_us + last;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BATCH;
  m.batch = &b;
  assert_int_equal(sl_conn_send(c, &m), 0);
  sl_buf_free(&scratch);
}

static void send_batch(sl_conn *c, uint64_t first, uint64_t last, bool lz4) {
  sl_buf raw = {0};
  for (uint64_t t = first; t <= last; t++) add_frame(&raw, t, false);
  send_frames(c, &raw, first, last, lz4);
  sl_buf_free(&raw);
}

/* Acks until one reports durable >= want (an Ack also goes out whenever
 * applied moves, so older ones may come first); returns that durable. */
static uint64_t ack_until(sl_conn *c, uint64_t want) {
  for (;;) {
    int rc;
    Shiplog__Repl__Message *m = next_msg(c, &rc);
    if (!m) fail_msg("no ack: %s", sl_strerror(rc));
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_ERROR)
      fail_msg("error %d: %s", m->error->code, m->error->message ? m->error->message : "?");
    assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_ACK);
    uint64_t d = m->ack->durable_txid;
    sl_msg_free(m);
    if (d >= want) return d;
  }
}

/* Read acks and heartbeats until applied reaches txid (5 s at most). */
static void wait_applied(sl_conn *c, uint64_t txid) {
  uint64_t t0 = sl_mono_ns();
  while (sl_mono_ns() - t0 < 5000000000ull) {
    Shiplog__Repl__Message *m;
    assert_int_equal(sl_conn_recv(c, 5000, SL_MSG_MAX, &m), 0);
    uint64_t applied = 0;
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_ACK) applied = m->ack->applied_txid;
    else if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT) applied = m->heartbeat->applied_txid;
    else fail_msg("unexpected %s", sl_msg_kind(m));
    sl_msg_free(m);
    if (applied >= txid) return;
  }
  fail_msg("applied did not reach %llu", (unsigned long long)txid);
}

/* Every txid of DIR/streams/NAME/archive, checked dense from `first`; returns the last. */
static uint64_t archive_last(const rx *r, const char *stream, uint64_t first) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/streams/%s/archive", r->dir, stream);
  sl_log_reader *rd;
  sl_log_reader_options o = {.tolerate_tail = false};
  assert_int_equal(sl_log_reader_open(dir, first, &o, &rd), 0);
  sl_frame f;
  uint64_t expect = first;
  int rc;
  while ((rc = sl_log_reader_next(rd, &f)) == 0) assert_int_equal(f.txid, expect++);
  assert_int_equal(rc, SL_EEND);
  sl_log_reader_close(rd);
  return expect - 1;
}

static void standby_counts(const rx *r, const char *stream, sl_counts *c) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/streams/%s/standby", r->dir, stream);
  sl_store *st;
  sl_view *v;
  assert_int_equal(sl_store_open(dir, SL_OPEN_RDONLY, &st), 0);
  assert_int_equal(sl_view_begin(st, &v), 0);
  assert_int_equal(sl_view_counts(v, c), 0);
  sl_view_end(v);
  sl_store_close(st);
}

/* The status file's value for key, once it equals want (2 s at most). */
static void wait_status(const rx *r, const char *stream, const char *key, const char *want) {
  char path[4200], text[4096], v[256] = "";
  snprintf(path, sizeof path, "%s/streams/%s/status", r->dir, stream);
  for (int i = 0; i < 200; i++) {
    if (sl_status_load(path, text, sizeof text) == 0 && sl_status_get(text, key, v, sizeof v) &&
        strstr(v, want))
      return;
    usleep(10000);
  }
  fail_msg("%s: %s=%s, wanted %s", path, key, v, want);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void receiver_archives_and_applies(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_basic"), 0, 10000);
  sl_conn *c = dial(&r);
  uint64_t first;
  assert_int_equal(hello_ok(c, "s1", ID_A, 0, &first), 0);
  assert_int_equal(first, 1);
  send_batch(c, 1, 10, true);
  assert_int_equal(ack_until(c, 10), 10);
  wait_applied(c, 10);
  send_batch(c, 11, 20, false);
  assert_int_equal(ack_until(c, 20), 20);
  wait_applied(c, 20);
  wait_status(&r, "s1", "state", "connected");
  wait_status(&r, "s1", "applied", "20");
  sl_conn_close(c);
  wait_status(&r, "s1", "state", "disconnected");
  tu_receiver_stop(&r);

  sl_stream_status st;
  assert_int_equal(sl_stream_status_read(r.dir, "s1", &st), 0);
  assert_string_equal(st.state, "disconnected");
  assert_int_equal(st.first_txid, 1);
  assert_int_equal(st.received, 20);
  assert_int_equal(st.durable, 20);
  assert_int_equal(st.applied, 20);
  assert_int_equal(st.batches, 2);
  assert_int_equal(st.lag_ms, 0);
  assert_int_equal(sl_stream_status_read(r.dir, "nope", &st), SL_ENOTFOUND);
  assert_int_equal(archive_last(&r, "s1", 1), 20);
  sl_counts cn;
  standby_counts(&r, "s1", &cn);
  assert_int_equal(cn.nodes, 20);
  assert_int_equal(cn.applied_txid, 20);
  assert_int_equal(cn.last_commit_us, base_us + 20);
}

static void receiver_malformed_frames_isolated(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_malformed"), 0, 10000);
  sl_conn *good = dial(&r);
  assert_int_equal(hello_ok(good, "good", ID_A, 0, NULL), 0);
  send_batch(good, 1, 5, true);
  assert_int_equal(ack_until(good, 5), 5);

  sl_buf hello = {0};
  {
    Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
    Shiplog__Repl__Hello h = SHIPLOG__REPL__HELLO__INIT;
    h.protocol_version = SL_PROTOCOL_VERSION;
    h.stream = "bad";
    h.store_id.data = (uint8_t *)ID_B;
    h.store_id.len = 16;
    m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HELLO;
    m.hello = &h;
    assert_int_equal(sl_msg_encode(&m, &hello), 0);
  }
  /* A bad CRC. */
  sl_conn *c = dial(&r);
  hello.data[5] ^= 1;
  assert_int_equal(write(sl_conn_fd(c), hello.data, hello.len), (ssize_t)hello.len);
  hello.data[5] ^= 1;
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false);
  sl_conn_close(c);
  /* Garbage (an HTTP request): its "length" is far over the hello limit. */
  c = dial(&r);
  const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(sl_conn_fd(c), http, strlen(http)), (ssize_t)strlen(http));
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_TOO_BIG, false);
  sl_conn_close(c);
  /* A length over any limit. */
  c = dial(&r);
  uint8_t h[8];
  sl_put_le32(h, 0x7fffffff);
  sl_put_le32(h + 4, 0);
  assert_int_equal(write(sl_conn_fd(c), h, 8), 8);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_TOO_BIG, false);
  sl_conn_close(c);
  /* Half a message, then the write side closes. */
  c = dial(&r);
  assert_int_equal(write(sl_conn_fd(c), hello.data, hello.len / 2), (ssize_t)(hello.len / 2));
  shutdown(sl_conn_fd(c), SHUT_WR);
  expect_error_or_close(c);
  sl_conn_close(c);
  /* Random bytes of random lengths. */
  uint64_t seed = tu_seed("receiver_malformed_frames_isolated");
  for (int i = 0; i < 20; i++) {
    uint8_t junk[300];
    size_t n = 1 + tu_rand_below(&seed, sizeof junk);
    for (size_t k = 0; k < n; k++) junk[k] = (uint8_t)tu_rand(&seed);
    if (n >= 4 && i % 2) sl_put_le32(junk, (uint32_t)(n - 8)); /* plausible length */
    c = dial(&r);
    assert_int_equal(write(sl_conn_fd(c), junk, n), (ssize_t)n);
    shutdown(sl_conn_fd(c), SHUT_WR);
    expect_error_or_close(c);
    sl_conn_close(c);
  }
  /* Mid-stream: a bad CRC after some batches, then a corrupt batch. */
  c = dial(&r);
  assert_int_equal(hello_ok(c, "bad", ID_B, 0, NULL), 0);
  send_batch(c, 1, 3, true);
  assert_int_equal(ack_until(c, 3), 3);
  hello.data[hello.len - 1] ^= 0x10;
  assert_int_equal(write(sl_conn_fd(c), hello.data, hello.len), (ssize_t)hello.len);
  hello.data[hello.len - 1] ^= 0x10;
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false);
  sl_conn_close(c);
  c = dial(&r);
  assert_int_equal(hello_ok(c, "bad", ID_B, 0, NULL), 3);
  {
    sl_buf raw = {0};
    for (uint64_t t = 4; t <= 6; t++) add_frame(&raw, t, false);
    raw.data[raw.len - 2] ^= 0x01; /* a frame CRC mismatch, batch CRC recomputed */
    send_frames(c, &raw, 4, 6, true);
    sl_buf_free(&raw);
  }
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_CORRUPT, false);
  sl_conn_close(c);
  /* A message that is not a batch while streaming. */
  c = dial(&r);
  assert_int_equal(hello_ok(c, "bad", ID_B, 0, NULL), 3);
  send_hello(c, SL_PROTOCOL_VERSION, "bad", ID_B, 0);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false);
  sl_conn_close(c);
  wait_status(&r, "bad", "error", "unexpected hello");

  /* The other stream never noticed. */
  send_batch(good, 6, 10, true);
  assert_int_equal(ack_until(good, 10), 10);
  sl_conn_close(good);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "good", 1), 10);
  assert_int_equal(archive_last(&r, "bad", 1), 3);
  sl_buf_free(&hello);
}

static void receiver_version_refused(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_version"), 0, 10000);
  sl_conn *c = dial(&r);
  send_hello(c, 99, "v", ID_A, 0);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_VERSION, true);
  sl_conn_close(c);
  /* Not a hello first. */
  c = dial(&r);
  send_batch(c, 1, 1, false);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_BAD_MESSAGE, false);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  struct stat sb;
  char p[4200];
  snprintf(p, sizeof p, "%s/streams/v", r.dir);
  assert_int_not_equal(stat(p, &sb), 0);
}

static void receiver_bad_stream_name(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_name"), 0, 10000);
  const char *bad[] = {"..", "a/b", "", "x~new", "../../etc"};
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    sl_conn *c = dial(&r);
    send_hello(c, SL_PROTOCOL_VERSION, bad[i], ID_A, 0);
    expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_UNKNOWN_STREAM, true);
    sl_conn_close(c);
  }
  tu_receiver_stop(&r);
}

static void receiver_store_id_refused(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_storeid"), 0, 10000);
  sl_conn *a = dial(&r);
  assert_int_equal(hello_ok(a, "s", ID_A, 0, NULL), 0);
  send_batch(a, 1, 3, true);
  assert_int_equal(ack_until(a, 3), 3);
  sl_conn *b = dial(&r);
  send_hello(b, SL_PROTOCOL_VERSION, "s", ID_B, 0);
  expect_error(b, SHIPLOG__REPL__ERROR_CODE__ERR_STORE_ID, true);
  sl_conn_close(b);
  /* The rightful shipper keeps its connection. */
  send_batch(a, 4, 5, true);
  assert_int_equal(ack_until(a, 5), 5);
  sl_conn_close(a);
  tu_receiver_stop(&r);
  /* Also after a restart (the id comes from the archive). */
  rx_start(&r, r.dir, 0, 10000);
  b = dial(&r);
  send_hello(b, SL_PROTOCOL_VERSION, "s", ID_B, 0);
  expect_error(b, SHIPLOG__REPL__ERROR_CODE__ERR_STORE_ID, true);
  sl_conn_close(b);
  tu_receiver_stop(&r);
}

static void receiver_gap_refused(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_gap"), 0, 10000);
  sl_conn *c = dial(&r);
  assert_int_equal(hello_ok(c, "g", ID_A, 0, NULL), 0);
  send_batch(c, 1, 5, true);
  assert_int_equal(ack_until(c, 5), 5);
  send_batch(c, 8, 10, true);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_GAP, false);
  sl_conn_close(c);
  wait_status(&r, "g", "error", "expects txid 6");
  c = dial(&r);
  assert_int_equal(hello_ok(c, "g", ID_A, 0, NULL), 5);
  send_batch(c, 6, 7, true);
  assert_int_equal(ack_until(c, 7), 7);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "g", 1), 7);
}

static void receiver_overlap_trimmed(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_overlap"), 0, 10000);
  sl_conn *c = dial(&r);
  assert_int_equal(hello_ok(c, "o", ID_A, 0, NULL), 0);
  send_batch(c, 1, 5, true);
  assert_int_equal(ack_until(c, 5), 5);
  send_batch(c, 3, 8, true);   /* overlaps */
  assert_int_equal(ack_until(c, 8), 8);
  send_batch(c, 1, 8, false);  /* all old */
  assert_int_equal(ack_until(c, 8), 8);
  send_batch(c, 9, 9, true);
  assert_int_equal(ack_until(c, 9), 9);
  /* Pipelined batches (one group, one sync). */
  for (uint64_t t = 10; t <= 100; t += 10) send_batch(c, t, t + 9, true);
  assert_int_equal(ack_until(c, 109), 109);
  wait_applied(c, 109);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "o", 1), 109);
  sl_counts cn;
  standby_counts(&r, "o", &cn);
  assert_int_equal(cn.nodes, 109);
}

static void send_heartbeat(sl_conn *c) {
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Heartbeat h = SHIPLOG__REPL__HEARTBEAT__INIT;
  h.has_time_us = true;
  h.time_us = sl_now_us();
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &h;
  assert_int_equal(sl_conn_send(c, &m), 0);
}

/* One shipper per stream: a second one is refused for good while the first
 * is heard from; one that closed makes room at once; a silent one is taken
 * over once silent for timeout_ms. */
static void receiver_takeover(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_takeover"), 0, 1500);
  sl_conn *old = dial(&r);
  assert_int_equal(hello_ok(old, "t", ID_A, 0, NULL), 0);
  send_batch(old, 1, 2, true);
  assert_int_equal(ack_until(old, 2), 2);
  /* A second shipper while the first is alive (it heartbeats): refused
   * for good, naming the live one; the first goes on. */
  sl_conn *second = dial(&r);
  send_hello(second, SL_PROTOCOL_VERSION, "t", ID_A, 0);
  usleep(200000);
  send_heartbeat(old);
  int rc;
  Shiplog__Repl__Message *m = next_non_ack(second, &rc);
  assert_non_null(m);
  assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_ERROR);
  assert_int_equal(m->error->code, SHIPLOG__REPL__ERROR_CODE__ERR_BUSY);
  assert_true(m->error->permanent);
  assert_non_null(strstr(m->error->message, "stream t is live"));
  sl_msg_free(m);
  sl_conn_close(second);
  send_batch(old, 3, 4, true);
  assert_int_equal(ack_until(old, 4), 4);
  /* The same shipper reconnecting (its old connection closed) gets in at once. */
  sl_conn_close(old);
  uint64_t t0 = sl_mono_ns();
  old = dial(&r);
  assert_int_equal(hello_ok(old, "t", ID_A, 0, NULL), 4);
  assert_true(sl_mono_ns() - t0 < 1000000000ull);
  /* A newcomer while the owner is silent (dead): it takes over once the
   * owner was silent for timeout_ms; the old connection is closed. */
  sl_conn *new = dial(&r);
  t0 = sl_mono_ns();
  assert_int_equal(hello_ok(new, "t", ID_A, 0, NULL), 4);
  assert_true(sl_mono_ns() - t0 < 3000000000ull);
  while ((m = next_msg(old, &rc)) != NULL) {
    assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_ACK);
    sl_msg_free(m);
  }
  assert_true(rc == SL_EEND || rc == -ECONNRESET);
  send_batch(new, 5, 6, true);
  assert_int_equal(ack_until(new, 6), 6);
  sl_conn_close(old);
  sl_conn_close(new);
  tu_receiver_stop(&r);
}

static void receiver_restart_resumes(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_restart"), 0, 10000);
  sl_conn *c = dial(&r);
  assert_int_equal(hello_ok(c, "r", ID_A, 0, NULL), 0);
  for (uint64_t t = 1; t <= 500; t += 50) send_batch(c, t, t + 49, true);
  assert_int_equal(ack_until(c, 500), 500);
  tu_receiver_stop(&r); /* possibly before the standby caught up */
  sl_conn_close(c);
  rx_start(&r, r.dir, 0, 10000);
  c = dial(&r);
  assert_int_equal(hello_ok(c, "r", ID_A, 0, NULL), 500);
  wait_applied(c, 500);
  send_batch(c, 501, 510, true);
  assert_int_equal(ack_until(c, 510), 510);
  wait_applied(c, 510);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  sl_counts cn;
  standby_counts(&r, "r", &cn);
  assert_int_equal(cn.nodes, 510);
  assert_int_equal(cn.applied_txid, 510);
}

/* APPLIED BEFORE DURABLE and SYNCER (receiver/stream.c): the standby
 * applies what is archived while the archive's fdatasync still runs, and
 * batches that arrive meanwhile are archived and applied too; the durable
 * ack waits for the syncs. */
static void receiver_applies_before_durable(void **state) {
  (void)state;
#ifdef SL_FAULT_INJECTION
  rx r;
  rx_start(&r, tu_tmpdir("receiver_early_apply"), 0, 10000);
  sl_conn *c = dial(&r);
  assert_int_equal(hello_ok(c, "e", ID_A, 0, NULL), 0);
  send_batch(c, 1, 5, true);
  assert_int_equal(ack_until(c, 5), 5);
  wait_applied(c, 5);
  sl_fault_set(SL_FAULT_LOG_FSYNC, SL_FAULT_STALL, 0, 1); /* the next sync takes 3 s */
  uint64_t t0 = sl_mono_ns();
  send_batch(c, 6, 10, true);
  wait_status(&r, "e", "applied", "10");
  send_batch(c, 11, 15, true); /* while the sync of 6..10 stalls */
  wait_status(&r, "e", "applied", "15");
  char path[4200], text[4096];
  snprintf(path, sizeof path, "%s/streams/e/status", r.dir);
  assert_int_equal(sl_status_load(path, text, sizeof text), 0);
  if (sl_mono_ns() - t0 < SL_FAULT_STALL_MS * 1000000ull) /* else the machine was too slow to tell */
    assert_int_equal(sl_status_get_u64(text, "durable"), 5);
  assert_int_equal(ack_until(c, 15), 15);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "e", 1), 15);
  sl_counts cn;
  standby_counts(&r, "e", &cn);
  assert_int_equal(cn.applied_txid, 15);
#endif
}

static void receiver_disk_error_resumes(void **state) {
  (void)state;
#ifdef SL_FAULT_INJECTION
  rx r;
  rx_start(&r, tu_tmpdir("receiver_diskerr"), 0, 10000);
  sl_conn *c = dial(&r);
  assert_int_equal(hello_ok(c, "d", ID_A, 0, NULL), 0);
  send_batch(c, 1, 5, true);
  assert_int_equal(ack_until(c, 5), 5);
  /* Disk full on the write. */
  sl_fault_set(SL_FAULT_LOG_WRITE, -ENOSPC, 0, -1);
  send_batch(c, 6, 10, true);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_IO, false);
  sl_conn_close(c);
  wait_status(&r, "d", "error", "space");
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  c = dial(&r);
  assert_int_equal(hello_ok(c, "d", ID_A, 0, NULL), 5);
  send_batch(c, 6, 10, true);
  assert_int_equal(ack_until(c, 10), 10);
  /* An fdatasync error: the frames may or may not be kept by recovery. */
  sl_fault_set(SL_FAULT_LOG_FSYNC, -EIO, 0, 1);
  send_batch(c, 11, 15, true);
  expect_error(c, SHIPLOG__REPL__ERROR_CODE__ERR_IO, false);
  sl_conn_close(c);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  c = dial(&r);
  uint64_t d = hello_ok(c, "d", ID_A, 0, NULL);
  assert_true(d == 10 || d == 15);
  send_batch(c, d + 1, 20, true);
  assert_int_equal(ack_until(c, 20), 20);
  /* A failure inside a group of pipelined batches: the first batch is
   * appended, the second fails; whatever was appended is kept. */
  sl_fault_set(SL_FAULT_LOG_WRITE, -ENOSPC, 5, -1);
  send_batch(c, 21, 25, true);
  send_batch(c, 26, 30, true);
  int rc;
  Shiplog__Repl__Message *m;
  while ((m = next_msg(c, &rc)) != NULL && m->body_case == SHIPLOG__REPL__MESSAGE__BODY_ACK)
    sl_msg_free(m);
  assert_non_null(m);
  assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_ERROR);
  assert_int_equal(m->error->code, SHIPLOG__REPL__ERROR_CODE__ERR_IO);
  sl_msg_free(m);
  sl_conn_close(c);
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
  c = dial(&r);
  d = hello_ok(c, "d", ID_A, 0, NULL);
  assert_true(d == 20 || d == 25);
  send_batch(c, d + 1, 30, true);
  assert_int_equal(ack_until(c, 30), 30);
  wait_applied(c, 30);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "d", 1), 30);
  sl_counts cn;
  standby_counts(&r, "d", &cn);
  assert_int_equal(cn.nodes, 30);
#else
  skip();
#endif
}

static void receiver_apply_error_stops_standby(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_applyerr"), 0, 10000);
  sl_conn *c = dial(&r);
  assert_int_equal(hello_ok(c, "a", ID_A, 0, NULL), 0);
  send_batch(c, 1, 3, true);
  assert_int_equal(ack_until(c, 3), 3);
  sl_buf raw = {0};
  add_frame(&raw, 4, true);
  add_frame(&raw, 5, false);
  send_frames(c, &raw, 4, 5, true);
  sl_buf_free(&raw);
  assert_int_equal(ack_until(c, 5), 5);  /* archived all the same */
  wait_status(&r, "a", "state", "stopped");
  wait_status(&r, "a", "error", "txid 4");
  send_batch(c, 6, 7, true);
  assert_int_equal(ack_until(c, 7), 7);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "a", 1), 7);
  sl_stream_status st;
  assert_int_equal(sl_stream_status_read(r.dir, "a", &st), 0);
  assert_string_equal(st.state, "stopped");
  assert_int_equal(st.durable, 7);
  assert_int_equal(st.applied, 3);
  assert_non_null(strstr(st.error, "txid 4"));
}

static void receiver_from_txid_has_no_standby(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_from"), 0, 10000);
  sl_conn *c = dial(&r);
  uint64_t first;
  assert_int_equal(hello_ok(c, "late", ID_A, 100, &first), 99);
  assert_int_equal(first, 100);
  send_batch(c, 99, 104, true);  /* 99 is before the archive: trimmed */
  assert_int_equal(ack_until(c, 104), 104);
  sl_conn_close(c);
  tu_receiver_stop(&r);
  assert_int_equal(archive_last(&r, "late", 100), 104);
  char p[4200];
  struct stat sb;
  snprintf(p, sizeof p, "%s/streams/late/standby", r.dir);
  assert_int_not_equal(stat(p, &sb), 0);
  sl_stream_status st;
  assert_int_equal(sl_stream_status_read(r.dir, "late", &st), 0);
  assert_int_equal(st.first_txid, 100);
  assert_int_equal(st.durable, 104);
  assert_int_equal(st.applied, 0);
}

static void receiver_connection_limits(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_limits"), 1, 300);
  sl_conn *a = dial(&r);
  assert_int_equal(hello_ok(a, "x", ID_A, 0, NULL), 0);
  sl_conn *b = dial(&r);
  expect_error(b, SHIPLOG__REPL__ERROR_CODE__ERR_BUSY, false);
  sl_conn_close(b);
  /* a stays silent: closed after the 300 ms timeout, heartbeats first. */
  uint64_t t0 = sl_mono_ns();
  int rc;
  Shiplog__Repl__Message *m = next_msg(a, &rc);
  assert_null(m);
  assert_true(rc == SL_EEND || rc == -ECONNRESET);
  assert_true(sl_mono_ns() - t0 < 3000000000ull);
  sl_conn_close(a);
  /* A connection that never says hello is closed too (once a is reaped). */
  usleep(500000);
  b = dial(&r);
  m = next_msg(b, &rc);
  assert_null(m);
  assert_true(rc == SL_EEND || rc == -ECONNRESET);
  sl_conn_close(b);
  tu_receiver_stop(&r);
}

static void receiver_data_dir_locked(void **state) {
  (void)state;
  rx r;
  rx_start(&r, tu_tmpdir("receiver_locked"), 0, 10000);
  sl_receiver_options o = {.listen = "127.0.0.1:0", .data_dir = r.dir, .ready_fd = -1, .insecure = true};
  atomic_int stop = 0;
  assert_int_equal(sl_receiver_run(&o, &stop), SL_ELOCKED);
  tu_receiver_stop(&r);
}

static int clear_faults(void **state) {
  (void)state;
#ifdef SL_FAULT_INJECTION
  sl_fault_set(SL_FAULT_NONE, 0, 0, 0);
#endif
  return 0;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  base_us = sl_now_us() - 1000000;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(receiver_archives_and_applies),
      cmocka_unit_test(receiver_malformed_frames_isolated),
      cmocka_unit_test(receiver_version_refused),
      cmocka_unit_test(receiver_bad_stream_name),
      cmocka_unit_test(receiver_store_id_refused),
      cmocka_unit_test(receiver_gap_refused),
      cmocka_unit_test(receiver_overlap_trimmed),
      cmocka_unit_test(receiver_takeover),
      cmocka_unit_test(receiver_restart_resumes),
      cmocka_unit_test_teardown(receiver_applies_before_durable, clear_faults),
      cmocka_unit_test_teardown(receiver_disk_error_resumes, clear_faults),
      cmocka_unit_test(receiver_apply_error_stops_standby),
      cmocka_unit_test(receiver_from_txid_has_no_standby),
      cmocka_unit_test(receiver_connection_limits),
      cmocka_unit_test(receiver_data_dir_locked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
