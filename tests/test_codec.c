/*
 * codec: message framing (round trip, every truncation, every bit flip,
 * oversize lengths refused before allocating), batch sealing and opening
 * (lz4 and none, corrupt data, gaps), connections over a socketpair, stream
 * names, HOST:PORT and status files; ROUTING's bolt.address, named only
 * while its writer lives (SIGKILLed: no longer); BASE SHIPPING messages (round trip,
 * the chunk and end checks, and an old decoder that ignores the new fields).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "codec.h"
#include "log.h"
#include "sl_base.h"
#include "sl_status.h"
#include "transaction.pb-c.h"

/* Append the log frame of a one-op transaction (create node `txid`). */
static void add_frame(sl_buf *out, uint64_t txid) { tu_frame_create(out, txid, 1700000000000000ull + txid, txid, "N"); }

static void frames(sl_buf *out, uint64_t first, uint64_t last) {
  out->len = 0;
  for (uint64_t t = first; t <= last; t++) add_frame(out, t);
}

static void encode_hello(sl_buf *out) {
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Hello h = SHIPLOG__REPL__HELLO__INIT;
  uint8_t id[16];
  for (int i = 0; i < 16; i++) id[i] = (uint8_t)(i * 17);
  h.protocol_version = SL_PROTOCOL_VERSION;
  h.stream = "orders-eu.1";
  h.store_id.data = id;
  h.store_id.len = sizeof id;
  h.has_start = h.has_start_txid = h.has_committed_txid = h.has_primary_time_us = true;
  h.start = SHIPLOG__REPL__START_KIND__START_FROM_TXID;
  h.start_txid = 42;
  h.committed_txid = 1000;
  h.primary_time_us = 1700000000123456ull;
  h.software = "shiplog test";
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HELLO;
  m.hello = &h;
  out->len = 0;
  assert_int_equal(sl_msg_encode(&m, out), 0);
}

static void codec_msg_round_trip(void **state) {
  (void)state;
  sl_buf b = {0};
  encode_hello(&b);
  /* A second message behind the first: decode consumes exactly one. */
  Shiplog__Repl__Message hb = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Heartbeat h = SHIPLOG__REPL__HEARTBEAT__INIT;
  h.has_committed_txid = true;
  h.committed_txid = 7;
  hb.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
  hb.heartbeat = &h;
  size_t first_len = b.len;
  assert_int_equal(sl_msg_encode(&hb, &b), 0);

  Shiplog__Repl__Message *m;
  size_t used;
  assert_int_equal(sl_msg_decode(b.data, b.len, SL_MSG_MAX, &m, &used), 0);
  assert_int_equal(used, first_len);
  assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_HELLO);
  assert_string_equal(sl_msg_kind(m), "hello");
  assert_int_equal(m->hello->protocol_version, SL_PROTOCOL_VERSION);
  assert_string_equal(m->hello->stream, "orders-eu.1");
  assert_int_equal(m->hello->store_id.len, 16);
  assert_int_equal(m->hello->store_id.data[3], 51);
  assert_int_equal(m->hello->start, SHIPLOG__REPL__START_KIND__START_FROM_TXID);
  assert_int_equal(m->hello->start_txid, 42);
  assert_int_equal(m->hello->committed_txid, 1000);
  assert_int_equal(m->hello->primary_time_us, 1700000000123456ull);
  assert_string_equal(m->hello->software, "shiplog test");
  sl_msg_free(m);

  assert_int_equal(sl_msg_decode(b.data + used, b.len - used, SL_MSG_MAX, &m, &used), 0);
  assert_int_equal(m->body_case, SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT);
  assert_int_equal(m->heartbeat->committed_txid, 7);
  sl_msg_free(m);

  /* Error messages as the receiver builds them. */
  Shiplog__Repl__Message em;
  Shiplog__Repl__Error e;
  sl_msg_error(&em, &e, SHIPLOG__REPL__ERROR_CODE__ERR_GAP, false, "expected txid 6");
  b.len = 0;
  assert_int_equal(sl_msg_encode(&em, &b), 0);
  assert_int_equal(sl_msg_decode(b.data, b.len, SL_MSG_MAX, &m, &used), 0);
  assert_int_equal(m->error->code, SHIPLOG__REPL__ERROR_CODE__ERR_GAP);
  assert_true(m->error->has_permanent);
  assert_false(m->error->permanent);
  assert_string_equal(m->error->message, "expected txid 6");
  sl_msg_free(m);
  sl_buf_free(&b);
}

static void codec_msg_every_truncation(void **state) {
  (void)state;
  sl_buf b = {0};
  encode_hello(&b);
  for (size_t n = 0; n < b.len; n++) {
    Shiplog__Repl__Message *m = (void *)1;
    size_t used = 0;
    assert_int_equal(sl_msg_decode(b.data, n, SL_MSG_MAX, &m, &used), SL_ETRUNCATED);
    assert_null(m);
  }
  sl_buf_free(&b);
}

static void codec_msg_every_bit_flip(void **state) {
  (void)state;
  sl_buf b = {0};
  encode_hello(&b);
  for (size_t bit = 0; bit < b.len * 8; bit++) {
    b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    Shiplog__Repl__Message *m;
    size_t used;
    int rc = sl_msg_decode(b.data, b.len, SL_MSG_MAX, &m, &used);
    if (bit >= 32) {
      assert_int_equal(rc, SL_ECORRUPT); /* CRC or body */
    } else {
      /* The length: longer than the buffer, over the limit, or a CRC miss. */
      assert_true(rc == SL_ECORRUPT || rc == SL_ETRUNCATED || rc == SL_ETOOBIG);
    }
    b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  sl_buf_free(&b);
}

static void codec_msg_oversize_refused_first(void **state) {
  (void)state;
  uint8_t h[SL_MSG_HEADER_SIZE];
  Shiplog__Repl__Message *m;
  size_t used;
  sl_put_le32(h, SL_MSG_MAX + 1);
  sl_put_le32(h + 4, 0);
  /* Only the header is there: the length alone decides. */
  assert_int_equal(sl_msg_decode(h, sizeof h, SL_MSG_MAX, &m, &used), SL_ETOOBIG);
  sl_put_le32(h, 2000);
  assert_int_equal(sl_msg_decode(h, sizeof h, 1000, &m, &used), SL_ETOOBIG);
  sl_put_le32(h, 0);
  assert_int_equal(sl_msg_decode(h, sizeof h, 1000, &m, &used), SL_ECORRUPT);

  /* On a connection: refused at once, without waiting for a body that
   * never comes (a 1 GiB claim; the body is not sent). */
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  sl_conn *c;
  assert_int_equal(sl_conn_wrap(sv[0], &c), 0);
  sl_put_le32(h, 1u << 30);
  assert_int_equal(write(sv[1], h, sizeof h), (ssize_t)sizeof h);
  uint64_t t0 = sl_mono_ns();
  assert_int_equal(sl_conn_recv(c, 5000, SL_MSG_MAX, &m), SL_ETOOBIG);
  assert_true(sl_mono_ns() - t0 < 1000000000ull);
  sl_conn_close(c);
  close(sv[1]);
}

static void check_batch(bool compress) {
  sl_buf raw = {0}, scratch = {0}, out = {0}, enc = {0};
  frames(&raw, 5, 204);
  Shiplog__Repl__Batch b;
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 5, 204, compress, &scratch, &b), 0);
  assert_int_equal(b.compression, compress ? SHIPLOG__REPL__COMPRESSION__COMPRESSION_LZ4
                                           : SHIPLOG__REPL__COMPRESSION__COMPRESSION_NONE);
  if (compress) assert_true(b.data.len < raw.len);
  /* Through the wire format and back. */
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BATCH;
  m.batch = &b;
  assert_int_equal(sl_msg_encode(&m, &enc), 0);
  Shiplog__Repl__Message *d;
  size_t used;
  assert_int_equal(sl_msg_decode(enc.data, enc.len, SL_MSG_MAX, &d, &used), 0);
  assert_int_equal(sl_batch_open(d->batch, SL_BATCH_RAW_MAX, &out), 0);
  assert_int_equal(out.len, raw.len);
  assert_memory_equal(out.data, raw.data, raw.len);
  /* The receiver's size limit. */
  assert_int_equal(sl_batch_open(d->batch, raw.len - 1, &out), SL_ETOOBIG);
  sl_msg_free(d);
  sl_buf_free(&raw);
  sl_buf_free(&scratch);
  sl_buf_free(&out);
  sl_buf_free(&enc);
}

static void codec_batch_seal_open_lz4(void **state) {
  (void)state;
  check_batch(true);
}

static void codec_batch_seal_open_none(void **state) {
  (void)state;
  check_batch(false);
}

static void codec_batch_corrupt(void **state) {
  (void)state;
  sl_buf raw = {0}, scratch = {0}, out = {0};
  frames(&raw, 1, 50);
  Shiplog__Repl__Batch b;
  uint64_t seed = tu_seed("codec_batch_corrupt");

  /* Every byte of compressed data damaged in turn: never accepted wrong. */
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 1, 50, true, &scratch, &b), 0);
  for (size_t i = 0; i < b.data.len; i++) {
    uint8_t x = (uint8_t)(1 + tu_rand_below(&seed, 255));
    b.data.data[i] ^= x;
    int rc = sl_batch_open(&b, SL_BATCH_RAW_MAX, &out);
    /* A changed match offset may point at equal bytes: harmless. */
    if (rc == 0) assert_memory_equal(out.data, raw.data, raw.len);
    else assert_int_equal(rc, SL_ECORRUPT);
    b.data.data[i] ^= x;
  }
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), 0);
  /* Truncated data. */
  b.data.len--;
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_ECORRUPT);
  b.data.len++;
  /* Wrong raw CRC. */
  b.raw_crc32c ^= 1;
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_ECORRUPT);
  b.raw_crc32c ^= 1;
  /* An unknown compression. */
  b.compression = 7;
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EVERSION);

  /* Uncompressed: a bad frame CRC inside, with a matching batch CRC (a
   * shipper that read a damaged frame and checksummed what it read). */
  raw.data[SL_FRAME_HEADER_SIZE + 2] ^= 0x40;
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 1, 50, false, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_ECORRUPT);
  raw.data[SL_FRAME_HEADER_SIZE + 2] ^= 0x40;
  /* Data length disagreeing with raw_len. */
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 1, 50, false, &scratch, &b), 0);
  b.data.len--;
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_ECORRUPT);
  /* A cut inside the last frame (raw CRC recomputed to match). */
  assert_int_equal(sl_batch_seal(raw.data, raw.len - 3, 1, 50, false, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_ECORRUPT);
  /* Empty and oversize batches are refused when sealing. */
  assert_int_equal(sl_batch_seal(raw.data, 0, 1, 1, false, &scratch, &b), SL_ETOOBIG);
  sl_buf_free(&raw);
  sl_buf_free(&scratch);
  sl_buf_free(&out);
}

static void codec_batch_gap(void **state) {
  (void)state;
  sl_buf raw = {0}, scratch = {0}, out = {0};
  Shiplog__Repl__Batch b;
  /* 1, 2, 4: a hole inside. */
  frames(&raw, 1, 2);
  add_frame(&raw, 4);
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 1, 3, false, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EGAP);
  /* Frames 1..5 claimed as 2..6, and as 1..4 (last disagrees). */
  frames(&raw, 1, 5);
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 2, 6, true, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EGAP);
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 1, 4, true, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EGAP);
  /* first > last, and txid 0. */
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 5, 1, true, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EGAP);
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 0, 4, true, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EGAP);
  /* Descending frames. */
  frames(&raw, 3, 3);
  add_frame(&raw, 2);
  assert_int_equal(sl_batch_seal(raw.data, raw.len, 3, 4, false, &scratch, &b), 0);
  assert_int_equal(sl_batch_open(&b, SL_BATCH_RAW_MAX, &out), SL_EGAP);
  sl_buf_free(&raw);
  sl_buf_free(&scratch);
  sl_buf_free(&out);
}

static void codec_stream_names(void **state) {
  (void)state;
  const char *good[] = {"a", "A-z_0.9", "orders.eu-1", "..x", "x..",
                        "1234567890123456789012345678901234567890123456789012345678901234"};
  const char *bad[] = {"", ".", "..", "a/b", "a b", "a~new", "é", "a\n", "-\\",
                       "12345678901234567890123456789012345678901234567890123456789012345"};
  for (size_t i = 0; i < SL_ARRAY_LEN(good); i++) assert_true(sl_stream_name_valid(good[i]));
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) assert_false(sl_stream_name_valid(bad[i]));
}

static void codec_conn_send_recv(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  sl_conn *a, *b;
  assert_int_equal(sl_conn_wrap(sv[0], &a), 0);
  assert_int_equal(sl_conn_wrap(sv[1], &b), 0);
  sl_buf enc = {0};
  encode_hello(&enc);
  Shiplog__Repl__Message *m, *hello;
  size_t used;
  assert_int_equal(sl_msg_decode(enc.data, enc.len, SL_MSG_MAX, &hello, &used), 0);
  assert_int_equal(sl_conn_send(a, hello), 0);
  assert_int_equal(sl_conn_recv(b, 1000, SL_MSG_MAX, &m), 0);
  assert_string_equal(m->hello->stream, "orders-eu.1");
  sl_msg_free(m);
  /* Nothing sent: a timeout. */
  assert_int_equal(sl_conn_recv(b, 50, SL_MSG_MAX, &m), -ETIMEDOUT);
  /* Half a message, then the peer closes: truncated, not a clean end. */
  assert_int_equal(write(sv[0], enc.data, enc.len / 2), (ssize_t)(enc.len / 2));
  sl_conn_shutdown(a);
  assert_int_equal(sl_conn_recv(b, 1000, SL_MSG_MAX, &m), SL_ETRUNCATED);
  sl_conn_close(b);
  sl_conn_close(a);

  /* A close at a message boundary is the end. */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(sl_conn_wrap(sv[0], &a), 0);
  assert_int_equal(sl_conn_wrap(sv[1], &b), 0);
  assert_int_equal(sl_conn_send(a, hello), 0);
  sl_conn_close(a);
  assert_int_equal(sl_conn_recv(b, 1000, SL_MSG_MAX, &m), 0);
  sl_msg_free(m);
  assert_int_equal(sl_conn_recv(b, 1000, SL_MSG_MAX, &m), SL_EEND);
  sl_conn_close(b);
  sl_msg_free(hello);
  sl_buf_free(&enc);
}

static void codec_hostport(void **state) {
  (void)state;
  char h[64], p[8];
  assert_int_equal(sl_hostport_parse("127.0.0.1:5000", h, sizeof h, p, sizeof p), 0);
  assert_string_equal(h, "127.0.0.1");
  assert_string_equal(p, "5000");
  assert_int_equal(sl_hostport_parse("[::1]:0", h, sizeof h, p, sizeof p), 0);
  assert_string_equal(h, "::1");
  assert_string_equal(p, "0");
  assert_int_equal(sl_hostport_parse("localhost", h, sizeof h, p, sizeof p), SL_EINVAL);
  assert_int_equal(sl_hostport_parse(":80", h, sizeof h, p, sizeof p), SL_EINVAL);
  assert_int_equal(sl_hostport_parse("host:8x", h, sizeof h, p, sizeof p), SL_EINVAL);
  assert_int_equal(sl_hostport_parse("[::1]80", h, sizeof h, p, sizeof p), SL_EINVAL);
}

static void codec_status_file(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("codec_status");
  char *path = tu_path(dir, "s.status"), text[512], v[64];
  assert_int_equal(sl_status_write(path, "state=streaming\ndurable=42\nerror=\n"), 0);
  assert_int_equal(sl_status_load(path, text, sizeof text), 0);
  assert_true(sl_status_get(text, "state", v, sizeof v));
  assert_string_equal(v, "streaming");
  assert_int_equal(sl_status_get_u64(text, "durable"), 42);
  assert_true(sl_status_get(text, "error", v, sizeof v));
  assert_string_equal(v, "");
  assert_false(sl_status_get(text, "dur", v, sizeof v));
  assert_int_equal(sl_status_get_u64(text, "missing"), 0);
  free(path);
}

/* ROUTING: bolt.address names a writer only while it lives. A reader in
 * the writer's own process sees the lock too (flock is per open file, not
 * per process); a writer SIGKILLed leaves the file, which then names
 * nobody; the next writer's address replaces it. */
static void codec_bolt_address_liveness(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("codec_bolt_address");
  char *path = tu_path(dir, SL_BOLT_ADDRESS_FILE), addr[64];
  struct stat st;
  int fd;
  ERR(-ENOENT, sl_bolt_address_read(dir, addr, sizeof addr));
  ERR(0, sl_bolt_address_write(dir, "127.0.0.1:7687", &fd));
  ERR(0, sl_bolt_address_read(dir, addr, sizeof addr));
  assert_string_equal(addr, "127.0.0.1:7687");
  ERR(0, sl_bolt_address_read(dir, addr, sizeof addr)); /* readers do not refuse each other */
  sl_bolt_address_remove(dir, fd);
  assert_int_equal(stat(path, &st), -1);
  ERR(-ENOENT, sl_bolt_address_read(dir, addr, sizeof addr));

  /* a file no process holds, as a crash of the machine leaves it */
  ERR(0, sl_write_file_atomic(dir, SL_BOLT_ADDRESS_FILE, "10.0.0.1:7687\n", 14));
  ERR(-ENOENT, sl_bolt_address_read(dir, addr, sizeof addr));

  /* a child writes it and waits; SIGKILLed, it cannot remove it */
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(ready[0]);
    if (sl_bolt_address_write(dir, "127.0.0.1:7001", &fd) || write(ready[1], "k", 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char byte;
  assert_int_equal(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  ERR(0, sl_bolt_address_read(dir, addr, sizeof addr));
  assert_string_equal(addr, "127.0.0.1:7001");
  int status;
  assert_int_equal(kill(child, SIGKILL), 0);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(stat(path, &st), 0); /* the file outlived it... */
  ERR(-ENOENT, sl_bolt_address_read(dir, addr, sizeof addr)); /* ...but names nobody */
  assert_int_equal(stat(path, &st), 0); /* and the reader left it there */

  ERR(0, sl_bolt_address_write(dir, "127.0.0.1:7002", &fd)); /* a new serve */
  ERR(0, sl_bolt_address_read(dir, addr, sizeof addr));
  assert_string_equal(addr, "127.0.0.1:7002");
  sl_bolt_address_remove(dir, fd);
  free(path);
}

/* BASE SHIPPING: the three messages survive the wire; the receiver's
 * checks refuse a chunk out of place, an oversized or empty one, and an end
 * whose size or CRC differ from what arrived. */
static void codec_base_messages(void **state) {
  (void)state;
  uint8_t data[3000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
  sl_buf wire = {0};
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__BaseBegin bb = SHIPLOG__REPL__BASE_BEGIN__INIT;
  Shiplog__Repl__BaseChunk bc = SHIPLOG__REPL__BASE_CHUNK__INIT;
  Shiplog__Repl__BaseEnd be = SHIPLOG__REPL__BASE_END__INIT;
  bb.txid = 76;
  bb.has_size_hint = true;
  bb.size_hint = 1u << 30;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN;
  m.base_begin = &bb;
  assert_int_equal(sl_msg_encode(&m, &wire), 0);
  bc.offset = 0;
  bc.data.data = data;
  bc.data.len = 1000;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK;
  m.base_chunk = &bc;
  assert_int_equal(sl_msg_encode(&m, &wire), 0);
  bc.offset = 1000;
  bc.data.data = data + 1000;
  bc.data.len = 2000;
  assert_int_equal(sl_msg_encode(&m, &wire), 0);
  be.size = sizeof data;
  be.crc32c = sl_crc32c(0, data, sizeof data);
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_END;
  m.base_end = &be;
  assert_int_equal(sl_msg_encode(&m, &wire), 0);

  const char *kinds[] = {"base-begin", "base-chunk", "base-chunk", "base-end"};
  size_t off = 0;
  uint64_t got = 0;
  uint32_t crc = 0;
  for (int i = 0; i < 4; i++) {
    Shiplog__Repl__Message *d;
    size_t used;
    assert_int_equal(sl_msg_decode(wire.data + off, wire.len - off, SL_MSG_MAX, &d, &used), 0);
    assert_string_equal(sl_msg_kind(d), kinds[i]);
    off += used;
    if (i == 0) {
      assert_int_equal(d->base_begin->txid, 76);
      assert_int_equal(d->base_begin->size_hint, 1u << 30);
    } else if (i < 3) {
      assert_int_equal(sl_base_chunk_check(d->base_chunk, got, 2000), 0);
      assert_int_equal(sl_base_chunk_check(d->base_chunk, got + 1, 2000), SL_EGAP);
      assert_int_equal(sl_base_chunk_check(d->base_chunk, got, 999), SL_ETOOBIG);
      assert_memory_equal(d->base_chunk->data.data, data + got, d->base_chunk->data.len);
      crc = sl_crc32c(crc, d->base_chunk->data.data, d->base_chunk->data.len);
      got += d->base_chunk->data.len;
    } else {
      assert_int_equal(sl_base_end_check(d->base_end, got, crc), 0);
      assert_int_equal(sl_base_end_check(d->base_end, got - 1, crc), SL_ETRUNCATED);
      assert_int_equal(sl_base_end_check(d->base_end, got, crc ^ 1), SL_ECORRUPT);
    }
    sl_msg_free(d);
  }
  assert_int_equal(off, wire.len);
  Shiplog__Repl__BaseChunk empty = SHIPLOG__REPL__BASE_CHUNK__INIT;
  assert_int_equal(sl_base_chunk_check(&empty, 0, 10), SL_EINVAL);
  sl_buf_free(&wire);
}

/* The new Hello / Welcome fields are optional: a decoder that predates them
 * (here: their absence) sees no base asked for or offered, and a message
 * that carries them keeps every older field. */
static void codec_base_fields_compatible(void **state) {
  (void)state;
  sl_buf wire = {0};
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT, *d;
  Shiplog__Repl__Welcome w = SHIPLOG__REPL__WELCOME__INIT;
  size_t used;
  w.protocol_version = SL_PROTOCOL_VERSION;
  w.durable_txid = 75;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_WELCOME;
  m.welcome = &w;
  assert_int_equal(sl_msg_encode(&m, &wire), 0);
  assert_int_equal(sl_msg_decode(wire.data, wire.len, SL_MSG_MAX, &d, &used), 0);
  assert_false(d->welcome->has_need_base);
  sl_msg_free(d);
  wire.len = 0;
  w.has_need_base = w.need_base = true;
  assert_int_equal(sl_msg_encode(&m, &wire), 0);
  assert_int_equal(sl_msg_decode(wire.data, wire.len, SL_MSG_MAX, &d, &used), 0);
  assert_true(d->welcome->has_need_base && d->welcome->need_base);
  assert_int_equal(d->welcome->durable_txid, 75);
  sl_msg_free(d);
  sl_buf_free(&wire);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(codec_msg_round_trip),
      cmocka_unit_test(codec_msg_every_truncation),
      cmocka_unit_test(codec_msg_every_bit_flip),
      cmocka_unit_test(codec_msg_oversize_refused_first),
      cmocka_unit_test(codec_batch_seal_open_lz4),
      cmocka_unit_test(codec_batch_seal_open_none),
      cmocka_unit_test(codec_batch_corrupt),
      cmocka_unit_test(codec_batch_gap),
      cmocka_unit_test(codec_stream_names),
      cmocka_unit_test(codec_conn_send_recv),
      cmocka_unit_test(codec_hostport),
      cmocka_unit_test(codec_status_file),
      cmocka_unit_test(codec_bolt_address_liveness),
      cmocka_unit_test(codec_base_messages),
      cmocka_unit_test(codec_base_fields_compatible),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
