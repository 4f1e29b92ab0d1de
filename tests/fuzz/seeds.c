/*
 * seeds: writes the seed inputs of fuzz_msg and fuzz_batch, which need
 * framed messages and sealed batches that only the codec can make:
 *   seeds LOGDIR OUTDIR   (LOGDIR: a store's log with a few transactions)
 * writes OUTDIR/msg/ (each message kind, and a hello + batches stream) and
 * OUTDIR/batch/ (the fuzz_batch input layout, see fuzz_batch.c),
 * OUTDIR/sealed/frame, frame-lz4, block-lz4 and chunk (fuzz_sealed.c), and OUTDIR/value/ (a value
 * of every kind and a list, as LMDB bytes and as a packed Shiplog__Value,
 * fuzz_value.c). Run by
 * tests/fuzz/make_corpus.sh.
 */
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "crypt.h"
#include "fuzz.h"
#include "log.h"
#include "sl_base.h"
#include "store_int.h"

static void put(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
    fprintf(stderr, "seeds: %s: %s\n", path, strerror(errno));
    exit(1);
  }
}

static void put_msg(const char *dir, const char *name, const Shiplog__Repl__Message *m) {
  sl_buf b = {0};
  if (sl_msg_encode(m, &b)) exit(1);
  put(dir, name, b.data, b.len);
  sl_buf_free(&b);
}

/* fuzz_value: each value as LMDB bytes (first byte 0) and packed (1). */
static void value_seeds(const char *outdir) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/value", outdir);
  mkdir(dir, 0755);
  static const uint8_t bytes[] = {0, 0xff};
  sl_value dates[] = {{.kind = SL_DATE, .u.t.seconds = -365243219163}, {.kind = SL_DATE, .u.t.seconds = 19782}};
  sl_value items[] = {{.kind = SL_INT, .u.i = -1}, {.kind = SL_INT, .u.i = INT64_MAX}};
  sl_value v[] = {
      {.kind = SL_BOOL, .u.b = true},
      {.kind = SL_INT, .u.i = INT64_MIN},
      {.kind = SL_DOUBLE, .u.d = -0.0},
      {.kind = SL_STRING, .len = 6, .u.s = "h\xc3\xa9llo"},
      {.kind = SL_BYTES, .len = 2, .u.bytes = bytes},
      {.kind = SL_LIST, .elem_kind = SL_INT, .len = 2, .u.items = items},
      {.kind = SL_DATE, .u.t.seconds = 19782},
      {.kind = SL_LOCALTIME, .u.t = {.seconds = 86399, .nanos = 999999999}},
      {.kind = SL_TIME, .u.t = {.seconds = 45000, .nanos = 1, .offset = -64800}},
      {.kind = SL_LOCALDATETIME, .u.t = {.seconds = 1709209800, .nanos = 5}},
      {.kind = SL_DATETIME, .u.t = {.seconds = 1709209800, .offset = 3600, .zone = "Europe/Paris"}},
      {.kind = SL_DATETIME, .u.t = {.seconds = -1, .nanos = 999999999, .offset = -3600}},
      {.kind = SL_DURATION, .u.dur = {.months = 14, .days = -3, .seconds = -4, .nanos = -7}},
      {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_WGS84, .x = 12.99, .y = 55.61}},
      {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_CARTESIAN_3D, .x = 1, .y = -2, .z = 3.5}},
      {.kind = SL_LIST, .elem_kind = SL_DATE, .len = 2, .u.items = dates},
      {.kind = SL_LIST, .elem_kind = SL_NULL},
  };
  sl_arena a;
  sl_arena_init(&a, NULL);
  for (size_t i = 0; i < SL_ARRAY_LEN(v); i++) {
    uint8_t buf[256];
    char name[64];
    size_t n = sl__value_encoded_size(&v[i]);
    Shiplog__Value *pb;
    if (n + 1 > sizeof buf || sl__value_to_pb(&a, &v[i], &pb) ||
        shiplog__value__get_packed_size(pb) + 1 > sizeof buf)
      exit(1);
    buf[0] = 0;
    sl__value_encode(&v[i], buf + 1);
    snprintf(name, sizeof name, "lmdb-%02zu-kind%d", i, v[i].kind);
    put(dir, name, buf, 1 + n);
    buf[0] = 1;
    n = shiplog__value__pack(pb, buf + 1);
    snprintf(name, sizeof name, "pb-%02zu-kind%d", i, v[i].kind);
    put(dir, name, buf, 1 + n);
  }
  sl_arena_free(&a);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: seeds LOGDIR OUTDIR\n");
    return 2;
  }
  value_seeds(argv[2]);
  /* The first frames of the log, raw. */
  sl_log_reader *r;
  sl_frame f;
  uint8_t frames[16384];
  size_t len = 0;
  uint64_t first = 0, last = 0;
  if (sl_log_reader_open(argv[1], 1, NULL, &r)) return 1;
  while (sl_log_reader_next(r, &f) == 0 && len + SL_FRAME_HEADER_SIZE + f.payload_len <= sizeof frames) {
    sl_frame_header_encode(f.payload, f.payload_len, frames + len);
    memcpy(frames + len + SL_FRAME_HEADER_SIZE, f.payload, f.payload_len);
    len += SL_FRAME_HEADER_SIZE + f.payload_len;
    if (!first) first = f.txid;
    last = f.txid;
    if (last - first == 7) break;
  }
  sl_log_reader_close(r);
  if (!len) return 1;

  /* fuzz_sealed: the first frame sealed, and a chunk, under its key
   * (fuzz_sealed.c); the first byte selects the decoder. */
  char sealed[4096], keys[4096];
  snprintf(sealed, sizeof sealed, "%s/sealed", argv[2]);
  snprintf(keys, sizeof keys, "%s/keys", argv[2]);
  mkdir(sealed, 0755);
  sl_write_file_atomic(argv[2], "keys", FUZZ_SEALED_KEY, sizeof FUZZ_SEALED_KEY - 1);
  chmod(keys, 0600);
  sl_keyring *kr;
  int krc = sl_keyring_load(keys, &kr);
  unlink(keys);
  if (krc) return 1;
  static const uint8_t fz_store[SL_STORE_ID_SIZE] = FUZZ_SEALED_STORE_ID;
  uint8_t sbuf[1 + 16384 + SL_CRYPT_FRAME_EXTRA];
  const uint8_t *p0 = frames + SL_FRAME_HEADER_SIZE;
  size_t l0 = sl_get_le32(frames), sl0;
  sl_sealed_meta sm = {.txid = first, .checksum = 1};
  if (sl_txn_peek(p0, l0, &sm.txid, &sm.commit_us, &sm.epoch) ||
      sl_crypt_seal_frame(kr, NULL, fz_store, &sm, p0, l0, false, sbuf + 1, &sl0))
    return 1;
  sbuf[0] = 0;
  put(sealed, "frame", sbuf, 1 + sl0);
  /* ...compressed before sealing (crypt.h COMPRESSED): a transaction that
   * LZ4 shrinks, sealed that way, and its block as mode 3 takes it. */
  uint8_t ztxn[1024];
  if (l0 > 512) return 1;
  memcpy(ztxn, p0, l0);
  size_t zl = l0;
  while (zl + 12 <= sizeof ztxn) { /* field 15, unknown to readers of the plaintext: bytes that repeat */
    ztxn[zl++] = 0x7a;
    ztxn[zl++] = 10;
    memcpy(ztxn + zl, "repeatrepe", 10);
    zl += 10;
  }
  if (sl_crypt_seal_frame(kr, NULL, fz_store, &sm, ztxn, zl, true, sbuf + 1, &sl0)) return 1;
  sbuf[0] = 0;
  put(sealed, "frame-lz4", sbuf, 1 + sl0);
  int zn = LZ4_compress_default((const char *)ztxn, (char *)sbuf + 4, (int)zl, (int)sizeof sbuf - 4);
  if (zn <= 0) return 1;
  sbuf[0] = 3;
  sbuf[1] = (uint8_t)zl;
  sbuf[2] = (uint8_t)(zl >> 8);
  sbuf[3] = 0;
  put(sealed, "block-lz4", sbuf, 4 + (size_t)zn);
  sbuf[0] = 1;
  memset(sbuf + 1, 3, 20);
  if (sl_crypt_seal_chunk(kr, NULL, fz_store, sbuf + 1, 20, frames, 64, sbuf + 21)) return 1;
  put(sealed, "chunk", sbuf, 21 + 64 + SL_CRYPT_OVERHEAD);
  sl_keyring_free(kr);

  char msg[4096], bat[4096];
  snprintf(msg, sizeof msg, "%s/msg", argv[2]);
  snprintf(bat, sizeof bat, "%s/batch", argv[2]);
  mkdir(msg, 0755);
  mkdir(bat, 0755);

  uint8_t id[SL_STORE_ID_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Hello h = SHIPLOG__REPL__HELLO__INIT;
  h.protocol_version = SL_PROTOCOL_VERSION;
  h.stream = "s1";
  h.store_id.data = id;
  h.store_id.len = sizeof id;
  h.has_start = h.has_start_txid = h.has_committed_txid = true;
  h.start = SHIPLOG__REPL__START_KIND__START_FROM_TXID;
  h.start_txid = first;
  h.committed_txid = last;
  h.software = "seeds";
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HELLO;
  m.hello = &h;
  put_msg(msg, "hello", &m);

  Shiplog__Repl__Welcome w = SHIPLOG__REPL__WELCOME__INIT;
  w.protocol_version = SL_PROTOCOL_VERSION;
  w.durable_txid = first - 1;
  w.has_max_batch_bytes = true;
  w.max_batch_bytes = 1u << 20;
  m = (Shiplog__Repl__Message)SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_WELCOME;
  m.welcome = &w;
  put_msg(msg, "welcome", &m);

  Shiplog__Repl__Ack a = SHIPLOG__REPL__ACK__INIT;
  a.durable_txid = last;
  a.has_applied_txid = true;
  a.applied_txid = first;
  m = (Shiplog__Repl__Message)SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_ACK;
  m.ack = &a;
  put_msg(msg, "ack", &m);

  Shiplog__Repl__Heartbeat hb = SHIPLOG__REPL__HEARTBEAT__INIT;
  hb.has_time_us = hb.has_committed_txid = true;
  hb.time_us = 1700000000000000ull;
  hb.committed_txid = last;
  m = (Shiplog__Repl__Message)SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &hb;
  put_msg(msg, "heartbeat", &m);

  Shiplog__Repl__Error e;
  sl_msg_error(&m, &e, SHIPLOG__REPL__ERROR_CODE__ERR_FORBIDDEN, true, "stream s1 is not yours");
  put_msg(msg, "error", &m);

  /* A session: hello, then the frames as an lz4 batch and as a raw one. */
  sl_buf stream = {0}, scratch = {0};
  Shiplog__Repl__Batch b;
  m = (Shiplog__Repl__Message)SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_HELLO;
  m.hello = &h;
  if (sl_msg_encode(&m, &stream)) return 1;
  for (int lz4 = 1; lz4 >= 0; lz4--) {
    if (sl_batch_seal(frames, len, first, last, lz4, &scratch, &b)) return 1;
    m = (Shiplog__Repl__Message)SHIPLOG__REPL__MESSAGE__INIT;
    m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BATCH;
    m.batch = &b;
    put_msg(msg, lz4 ? "batch-lz4" : "batch-raw", &m);
    if (sl_msg_encode(&m, &stream)) return 1;
  }
  put(msg, "session", stream.data, stream.len);

  /* BASE SHIPPING: begin, two chunks of a small byte run, end. */
  uint8_t base[600];
  for (size_t i = 0; i < sizeof base; i++) base[i] = (uint8_t)(i * 13);
  Shiplog__Repl__BaseBegin bb = SHIPLOG__REPL__BASE_BEGIN__INIT;
  Shiplog__Repl__BaseChunk bc = SHIPLOG__REPL__BASE_CHUNK__INIT;
  Shiplog__Repl__BaseEnd be = SHIPLOG__REPL__BASE_END__INIT;
  stream.len = 0;
  bb.txid = 75;
  m = (Shiplog__Repl__Message)SHIPLOG__REPL__MESSAGE__INIT;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN;
  m.base_begin = &bb;
  if (sl_msg_encode(&m, &stream)) return 1;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK;
  m.base_chunk = &bc;
  for (size_t at = 0; at < sizeof base; at += 300) {
    bc.offset = at;
    bc.data.data = base + at;
    bc.data.len = 300;
    if (sl_msg_encode(&m, &stream)) return 1;
  }
  be.size = sizeof base;
  be.crc32c = sl_crc32c(0, base, sizeof base);
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_END;
  m.base_end = &be;
  if (sl_msg_encode(&m, &stream)) return 1;
  put(msg, "base", stream.data, stream.len);

  /* fuzz_batch inputs: header, then frames (mode 0/2) or Batch.data (1/3). */
  for (int mode = 0; mode < 4; mode++) {
    uint8_t in[SL_FRAME_HEADER_SIZE + sizeof frames + 64];
    const uint8_t *data = frames;
    size_t dlen = len;
    if (mode & 1) {
      if (sl_batch_seal(frames, len, first, last, mode & 2, &scratch, &b)) return 1;
      data = b.data.data;
      dlen = b.data.len;
    }
    in[0] = (uint8_t)mode;
    sl_put_le32(in + 1, (uint32_t)first);
    in[5] = (uint8_t)(last - first);
    in[6] = 0;
    sl_put_le32(in + 7, (uint32_t)len);
    sl_put_le32(in + 11, sl_crc32c(0, frames, len));
    memcpy(in + 15, data, dlen);
    char name[32];
    snprintf(name, sizeof name, "mode%d", mode);
    put(bat, name, in, 15 + dlen);
  }
  sl_buf_free(&stream);
  sl_buf_free(&scratch);
  return 0;
}
