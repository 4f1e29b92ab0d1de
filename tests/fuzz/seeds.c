/*
 * seeds: writes the seed inputs of fuzz_msg and fuzz_batch, which need
 * framed messages and sealed batches that only the codec can make:
 *   seeds LOGDIR OUTDIR   (LOGDIR: a store's log with a few transactions)
 * writes OUTDIR/msg/ (each message kind, and a hello + batches stream) and
 * OUTDIR/batch/ (the fuzz_batch input layout, see fuzz_batch.c), and
 * OUTDIR/sealed/frame and chunk (fuzz_sealed.c), and OUTDIR/bolt/ (Bolt
 * conversations, fuzz_bolt.c). Run by tests/fuzz/make_corpus.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bolt.h"
#include "codec.h"
#include "crypt.h"
#include "fuzz.h"
#include "log.h"
#include "sl_base.h"

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

/* ---- fuzz_bolt: a version byte, then what a client sends after the handshake ---- */
typedef struct bolt_seed {
  sl_buf out;
  sl_arena a;
} bolt_seed;

static sl_pack bolt_map(bolt_seed *b, uint32_t n, const char *const *keys, const sl_pack *values) {
  sl_pack m;
  if (!sl_pack_new_map(&b->a, &m, n)) exit(1);
  for (uint32_t i = 0; i < n; i++) sl_pack_map_set(&b->a, &m, i, keys[i], values[i]);
  return m;
}

static void bolt_msg(bolt_seed *b, uint8_t tag, uint32_t n, const sl_pack *fields) {
  sl_pack m;
  sl_buf body = {0};
  if (!sl_pack_new_struct(&b->a, &m, tag, n)) exit(1);
  for (uint32_t i = 0; i < n; i++) m.u.items[i] = fields[i];
  if (sl_pack_encode(&body, &m) || sl_bolt_chunk(&b->out, body.data, body.len)) exit(1);
  sl_buf_free(&body);
}

static void bolt_put(const char *dir, const char *name, bolt_seed *b) {
  put(dir, name, b->out.data, b->out.len);
  sl_buf_free(&b->out);
  sl_arena_free(&b->a);
}

/* The first byte picks the version (fuzz_bolt.c: index into sl_bolt_versions). */
static void bolt_start(bolt_seed *b, uint8_t version_index, bool logon) {
  static const char *const hk[] = {"user_agent", "patch_bolt"};
  sl_pack patches;
  if (!sl_pack_new_list(&b->a, &patches, 1)) exit(1);
  patches.u.items[0] = sl_pack_str("utc");
  if (sl_buf_reserve(&b->out, 1)) exit(1);
  b->out.data[b->out.len++] = version_index;
  bolt_msg(b, SL_BOLT_MSG_HELLO, 1, (sl_pack[]){bolt_map(b, 2, hk, (sl_pack[]){sl_pack_str("seed/1"), patches})});
  static const char *const lk[] = {"scheme", "principal", "credentials"};
  if (logon)
    bolt_msg(b, SL_BOLT_MSG_LOGON, 1,
             (sl_pack[]){bolt_map(b, 3, lk, (sl_pack[]){sl_pack_str("basic"), sl_pack_str("u"), sl_pack_str("p")})});
}

static void bolt_seeds(const char *outdir) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/bolt", outdir);
  mkdir(dir, 0755);
  bolt_seed b = {0};
  sl_pack empty = bolt_map(&b, 0, NULL, NULL);
  static const char *const n_all[] = {"n"};
  sl_pack pull_all = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(-1)});
  sl_pack pull_one = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(1)});
  sl_bolt_dialect d5 = {.element_ids = true, .utc = true};

  /* 5.4: every value kind as a parameter, pulled; GOODBYE */
  bolt_start(&b, 0, true);
  sl_value vals[] = {
      {.kind = SL_DATE, .u.t.seconds = 19782},
      {.kind = SL_TIME, .u.t = {.seconds = 45000, .nanos = 5, .offset = 3600}},
      {.kind = SL_LOCALTIME, .u.t = {.seconds = 1, .nanos = 2}},
      {.kind = SL_DATETIME, .u.t = {.seconds = 1709209800, .nanos = 1, .offset = -7200}},
      {.kind = SL_DATETIME, .u.t = {.seconds = 1719828000, .offset = 7200, .zone = "Europe/Paris"}},
      {.kind = SL_LOCALDATETIME, .u.t = {.seconds = -1, .nanos = 3}},
      {.kind = SL_DURATION, .u.dur = {.months = 1, .days = 2, .seconds = -3, .nanos = -4}},
      {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_WGS84, .x = 1, .y = 2}},
      {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_CARTESIAN_3D, .x = 1, .y = 2, .z = 3}},
      {.kind = SL_STRING, .len = 4, .u.s = "text"},
      {.kind = SL_BYTES, .len = 2, .u.bytes = (const uint8_t *)"\x01\xff"},
      {.kind = SL_DOUBLE, .u.d = 0.5},
      {.kind = SL_INT, .u.i = -1000000},
      {.kind = SL_BOOL, .u.b = true}};
  static const char *const keys[] = {"date", "time", "lt", "dt", "dtz", "ldt", "dur", "p2", "p3", "s", "b", "f", "i", "t"};
  sl_pack pv[SL_ARRAY_LEN(vals)];
  for (size_t i = 0; i < SL_ARRAY_LEN(vals); i++)
    if (sl_bolt_from_value(&b.a, &vals[i], d5, &pv[i])) exit(1);
  sl_pack params = bolt_map(&b, SL_ARRAY_LEN(vals), keys, pv);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("RETURN $all"), params, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_GOODBYE, 0, NULL);
  bolt_put(dir, "values", &b);

  /* 4.4 (index 5) with the utc patch: a transaction pulled in parts */
  empty = bolt_map(&b, 0, NULL, NULL);
  pull_all = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(-1)});
  pull_one = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(1)});
  bolt_start(&b, 5, false);
  bolt_msg(&b, SL_BOLT_MSG_BEGIN, 1, &empty);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("ROWS 3"), empty, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_one);
  bolt_msg(&b, SL_BOLT_MSG_DISCARD, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("GRAPH"), empty, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_COMMIT, 0, NULL);
  bolt_put(dir, "transaction", &b);

  /* 5.4: a failure, IGNORED, RESET; ROUTE, TELEMETRY, LOGOFF */
  empty = bolt_map(&b, 0, NULL, NULL);
  pull_all = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(-1)});
  bolt_start(&b, 0, true);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("ERROR Neo.ClientError.Statement.SyntaxError x"), empty, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_RESET, 0, NULL);
  static const char *const db[] = {"db"};
  bolt_msg(&b, SL_BOLT_MSG_ROUTE, 3,
           (sl_pack[]){empty, sl_pack_null(), bolt_map(&b, 1, db, (sl_pack[]){sl_pack_str("neo4j")})});
  bolt_msg(&b, SL_BOLT_MSG_TELEMETRY, 1, (sl_pack[]){sl_pack_int(0)});
  bolt_msg(&b, SL_BOLT_MSG_LOGOFF, 0, NULL);
  bolt_put(dir, "failure", &b);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: seeds LOGDIR OUTDIR\n");
    return 2;
  }
  bolt_seeds(argv[2]);
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
      sl_crypt_seal_frame(kr, NULL, fz_store, &sm, p0, l0, sbuf + 1, &sl0))
    return 1;
  sbuf[0] = 0;
  put(sealed, "frame", sbuf, 1 + sl0);
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
