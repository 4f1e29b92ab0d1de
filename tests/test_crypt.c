/*
 * Tests of at-rest encryption (crypt/crypt.h, store/log.h SEALED FRAMES,
 * store/dump.h AT-REST ENCRYPTION): key file parsing (every kind of bad
 * line named FILE:LINE, permissions, the environment variable), seal/open
 * round trips, every flipped byte of a sealed frame and of a sealed dump
 * chunk refused, a wrong key and an unlisted key (named), sealed segments
 * in a log (a new key starts a segment, rotation: a file written with key A
 * reads with "B, A" and new files use B), and sealed dump files: every
 * flipped byte, a removed, moved or cut-off chunk refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "codec.h"
#include "crypt.h"
#include "dump.h"
#include "log.h"
#include "sl_base.h"
#include "store.h"
#include "transaction.pb-c.h"

#define KEY_A "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_A2 "1111111111111111111111111111111111111111111111111111111111111112"
#define KEY_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const uint8_t store_id[SL_STORE_ID_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- helpers ---------------------------------------------------------------------------- */

static void assert_contains(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("\"%s\" not in:\n%s", needle, text);
}

/* A key file holding text, mode 0600; returns its path (malloc'd). */
static char *key_file(const char *dir, const char *name, const char *text) {
  char *p = tu_path(dir, name);
  tu_write_file(p, text);
  chmod(p, 0600);
  return p;
}

static sl_keyring *keyring(const char *dir, const char *name, const char *text) {
  char *p = key_file(dir, name, text);
  sl_keyring *kr;
  OK(sl_keyring_load(p, &kr));
  free(p);
  return kr;
}

/* A packed plaintext Transaction with one op creating node `txid` with one label. */
static size_t labelled_txn(uint64_t txid, uint64_t commit_us, char *label, uint8_t *out) {
  Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
  cn.id = txid;
  char *labels[] = {label};
  cn.labels = labels;
  cn.n_labels = 1;
  Shiplog__Op op = SHIPLOG__OP__INIT, *ops[] = {&op};
  op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
  op.create_node = &cn;
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = txid;
  t.commit_time_us = commit_us;
  t.ops = ops;
  t.n_ops = 1;
  return shiplog__transaction__pack(&t, out);
}

static size_t plain_txn(uint64_t txid, uint64_t commit_us, uint8_t *out) {
  return labelled_txn(txid, commit_us, (char *)"Secret", out);
}

/* A transaction LZ4 shrinks: a node with a long label of repeated words. */
static size_t compressible_txn(uint64_t txid, uint64_t commit_us, uint8_t *out) {
  char label[400];
  for (size_t i = 0; i + 1 < sizeof label; i++) label[i] = "Secret label "[i % 13];
  label[sizeof label - 1] = 0;
  return labelled_txn(txid, commit_us, label, out);
}

/* ---- key files --------------------------------------------------------------------------- */

static void keyfile_parsing(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("crypt_keyfile");
  const struct {
    const char *text, *why;
  } bad[] = {
      {"# keys\n\nbad!id " KEY_A "\n", ":3: key id holds a character"},
      {"k " KEY_A "\nk " KEY_B "\n", ":2: key id k is listed twice"},
      {"k\n", ":1: key id without a key"},
      {"k 1234\n", ":1: the key is not 64 hex digits"},
      {"k " KEY_A "00\n", ":1: the key is not 64 hex digits"},
      {"k 111111111111111111111111111111111111111111111111111111111111111g\n", ":1: the key holds a character"},
      {"k " KEY_A " extra\n", ":1: text after the key"},
      {"abcdefghijabcdefghijabcdefghijabc " KEY_A "\n", ":1: key id longer than 32"},
      {" =k " KEY_A "\n", ":1: expected KEY_ID HEX"},
      {"# only a comment\n\n", "holds no key"},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    char *p = key_file(dir, "keys", bad[i].text);
    sl_keyring *kr = NULL;
    tu_capture_begin();
    int rc = sl_keyring_load(p, &kr);
    char *msg = tu_capture_end();
    if (rc != SL_EINVAL) fail_msg("case %zu: %s, expected SL_EINVAL", i, sl_errname(rc));
    assert_contains(msg, p);
    assert_contains(msg, bad[i].why);
    /* A key is never printed. */
    if (strstr(msg, "1111111111111111") || strstr(msg, "bbbbbbbbbbbbbbbb")) fail_msg("key bytes in: %s", msg);
    free(msg);
    free(p);
  }

  /* Comments, blank lines, tabs and CRLF; the first key seals. */
  sl_keyring *kr = keyring(dir, "good", "# rotation: new key first\r\n\r\nk-2_B\t" KEY_B "\r\n  k1 " KEY_A "  \n");
  assert_string_equal(sl_keyring_primary(kr), "k-2_B");
  assert_true(sl_keyring_has(kr, "k1"));
  assert_false(sl_keyring_has(kr, "k2"));
  sl_keyring_free(kr);

  /* Readable by group or others: refused, as ssh refuses a private key. */
  char *p = key_file(dir, "open", "k " KEY_A "\n");
  for (int mode = 0; mode < 2; mode++) {
    chmod(p, mode ? 0604 : 0640);
    tu_capture_begin();
    int rc = sl_keyring_load(p, &kr);
    char *msg = tu_capture_end();
    assert_int_equal(rc, SL_EINVAL);
    assert_contains(msg, "too open");
    assert_contains(msg, "chmod 600");
    free(msg);
  }
  chmod(p, 0400);
  OK(sl_keyring_load(p, &kr));
  sl_keyring_free(kr);

  /* The environment variable when no flag is given; the flag wins. */
  setenv(SL_CRYPT_ENV, p, 1);
  OK(sl_keyring_load_default(NULL, &kr));
  assert_non_null(kr);
  sl_keyring_free(kr);
  char *missing = tu_path(dir, "missing");
  tu_capture_begin();
  int rc = sl_keyring_load_default(missing, &kr);
  free(tu_capture_end());
  assert_int_equal(rc, -ENOENT);
  unsetenv(SL_CRYPT_ENV);
  OK(sl_keyring_load_default(NULL, &kr));
  assert_null(kr);
  assert_true(sl_crypt_key_id_valid("abc-_9"));
  assert_false(sl_crypt_key_id_valid(""));
  assert_false(sl_crypt_key_id_valid("a b"));
  assert_false(sl_crypt_key_id_valid("abcdefghijabcdefghijabcdefghijabc"));
  free(missing);
  free(p);
}

/* ---- frames ----------------------------------------------------------------------------- */

static void frame_round_trip_and_flips(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("crypt_frame");
  sl_keyring *kr = keyring(dir, "k", "a " KEY_A "\n");
  sl_keyring *wrong = keyring(dir, "w", "a " KEY_A2 "\n");
  sl_keyring *other = keyring(dir, "o", "b " KEY_B "\n");
  uint8_t plain[256], sealed[256 + SL_CRYPT_FRAME_EXTRA], out[512], flipped[sizeof sealed];
  size_t plen = plain_txn(1u << 25, 1700000000000000ull, plain), slen, olen;
  sl_sealed_meta m = {.txid = 1u << 25, .commit_us = 1700000000000000ull, .epoch = 3, .checksum = 0x1234};
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, plain, plen, false, sealed, &slen));
  assert_true(slen <= plen + SL_CRYPT_FRAME_EXTRA);
  assert_null(memmem(sealed, slen, "Secret", 6));

  /* sl_txn_peek reads the clear fields of a sealed transaction. */
  uint64_t txid, us, epoch;
  OK(sl_txn_peek(sealed, slen, &txid, &us, &epoch));
  assert_int_equal(txid, m.txid);
  assert_int_equal(us, m.commit_us);
  assert_int_equal(epoch, 3);

  sl_sealed_meta got;
  OK(sl_crypt_open_frame(kr, "a", store_id, sealed, slen, out, sizeof out, &olen, &got));
  assert_int_equal(olen, plen);
  assert_memory_equal(out, plain, plen);
  assert_int_equal(got.checksum, 0x1234);

  /* Every flipped bit of every byte: refused, never opened. */
  for (size_t i = 0; i < slen; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(flipped, sealed, slen);
      flipped[i] ^= (uint8_t)(1u << bit);
      int rc = sl_crypt_open_frame(kr, "a", store_id, flipped, slen, out, sizeof out, &olen, NULL);
      if (rc != SL_EAUTH && rc != SL_ECORRUPT)
        fail_msg("byte %zu bit %d flipped: %s", i, bit, sl_errname(rc));
    }
  /* Cut short at every length. */
  for (size_t n = 0; n < slen; n++)
    if (sl_crypt_open_frame(kr, "a", store_id, sealed, n, out, sizeof out, &olen, NULL) == 0) fail_msg("opened %zu bytes", n);

  /* Wrong key bytes under the same id, another store, another key id. */
  assert_int_equal(sl_crypt_open_frame(wrong, "a", store_id, sealed, slen, out, sizeof out, &olen, NULL), SL_EAUTH);
  uint8_t other_store[SL_STORE_ID_SIZE] = {9};
  assert_int_equal(sl_crypt_open_frame(kr, "a", other_store, sealed, slen, out, sizeof out, &olen, NULL), SL_EAUTH);
  tu_capture_begin();
  int rc = sl_crypt_open_frame(other, "a", store_id, sealed, slen, out, sizeof out, &olen, NULL);
  char *msg = tu_capture_end();
  assert_int_equal(rc, SL_ENOTFOUND);
  assert_contains(msg, "key id a is not in the key file");
  free(msg);

  /* A plaintext transaction is not a sealed one. */
  const uint8_t *ct;
  size_t ct_len;
  assert_int_equal(sl_crypt_frame_parse(plain, plen, &got, &ct, &ct_len), SL_ECORRUPT);

  /* Each seal draws a new nonce: the same frame seals differently. */
  uint8_t again[sizeof sealed];
  size_t alen;
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, plain, plen, false, again, &alen));
  assert_int_equal(alen, slen);
  assert_true(memcmp(again, sealed, slen) != 0);
  sl_keyring_free(kr);
  sl_keyring_free(wrong);
  sl_keyring_free(other);
}

/* crypt.h COMPRESSED: smaller, opens to the same bytes, and field 7 is
 * bound to the seal; a frame LZ4 cannot shrink is sealed as it is. */
static void frame_lz4(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("crypt_lz4");
  sl_keyring *kr = keyring(dir, "k", "a " KEY_A "\n");
  uint8_t plain[600], sealed[600 + SL_CRYPT_FRAME_EXTRA], as_is[sizeof sealed], out[600], bad[sizeof sealed + 8];
  size_t plen = compressible_txn(7, 1700000000000000ull, plain), slen, alen, olen;
  sl_sealed_meta m = {.txid = 7, .commit_us = 1700000000000000ull, .checksum = 99}, got;
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, plain, plen, true, sealed, &slen));
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, plain, plen, false, as_is, &alen));
  assert_true(slen < alen / 2);
  assert_null(memmem(sealed, slen, "Secret", 6));
  const uint8_t *ct;
  size_t ct_len;
  OK(sl_crypt_frame_parse(sealed, slen, &got, &ct, &ct_len));
  assert_int_equal(got.lz4_len, plen);
  assert_int_equal(sl_crypt_frame_open_size(sealed, slen), plen);
  assert_int_equal(sl_crypt_frame_open_size(as_is, alen), plen);
  OK(sl_crypt_open_frame(kr, "a", store_id, sealed, slen, out, sizeof out, &olen, &got));
  assert_int_equal(olen, plen);
  assert_memory_equal(out, plain, plen);
  assert_int_equal(got.checksum, 99);
  /* Room for the compressed body but not the plaintext: refused first. */
  assert_int_equal(sl_crypt_open_frame(kr, "a", store_id, sealed, slen, out, plen - 1, &olen, NULL), SL_ETOOBIG);

  /* Every flipped bit: refused, never opened. */
  for (size_t i = 0; i < slen; i++)
    for (int bit = 0; bit < 8; bit++) {
      memcpy(bad, sealed, slen);
      bad[i] ^= (uint8_t)(1u << bit);
      int rc = sl_crypt_open_frame(kr, "a", store_id, bad, slen, out, sizeof out, &olen, NULL);
      if (rc != SL_EAUTH && rc != SL_ECORRUPT && rc != SL_ETOOBIG)
        fail_msg("byte %zu bit %d flipped: %s", i, bit, sl_errname(rc));
    }
  /* Field 7 is the last: dropped (the body read as plaintext), or a
   * different length declared: the tag does not verify. */
  size_t f7 = 1 + 2; /* 0x38, varint of a length in 128..16383 */
  assert_int_equal(sealed[slen - f7], 0x38);
  assert_int_equal(sl_crypt_open_frame(kr, "a", store_id, sealed, slen - f7, out, sizeof out, &olen, NULL), SL_EAUTH);
  memcpy(bad, sealed, slen);
  bad[slen - 2] ^= 1;
  assert_int_equal(sl_crypt_open_frame(kr, "a", store_id, bad, slen, out, sizeof out, &olen, NULL), SL_EAUTH);
  /* ...added to a frame sealed as it is. */
  memcpy(bad, as_is, alen);
  memcpy(bad + alen, sealed + slen - f7, f7);
  assert_int_equal(sl_crypt_open_frame(kr, "a", store_id, bad, alen + f7, out, sizeof out, &olen, NULL), SL_EAUTH);
  /* A declared length past SL_CRYPT_PLAIN_MAX, or zero, does not parse. */
  uint8_t *q = bad + slen - f7;
  memcpy(bad, sealed, slen - f7);
  *q++ = 0x38;
  q[0] = 0x81, q[1] = 0x80, q[2] = 0x80, q[3] = 0x80, q[4] = 0x01; /* 2^28 + 1 */
  assert_int_equal(sl_crypt_frame_open_size(bad, slen - f7 + 6), 0);
  assert_int_equal(sl_crypt_open_frame(kr, "a", store_id, bad, slen - f7 + 6, out, sizeof out, &olen, NULL),
                   SL_ECORRUPT);
  q[0] = 0;
  assert_int_equal(sl_crypt_open_frame(kr, "a", store_id, bad, slen - f7 + 2, out, sizeof out, &olen, NULL),
                   SL_ECORRUPT);

  /* The decompression alone: exactly the declared length, nothing else. */
  OK(sl_crypt_frame_parse(sealed, slen, &got, &ct, &ct_len));
  int zn = LZ4_compress_default((const char *)plain, (char *)bad, (int)plen, (int)sizeof bad);
  assert_true(zn > 0);
  OK(sl_crypt_frame_inflate(bad, (size_t)zn, plen, out, sizeof out));
  assert_memory_equal(out, plain, plen);
  assert_int_equal(sl_crypt_frame_inflate(bad, (size_t)zn, plen - 1, out, sizeof out), SL_ECORRUPT);
  assert_int_equal(sl_crypt_frame_inflate(bad, (size_t)zn, plen + 1, out, sizeof out), SL_ECORRUPT);
  assert_int_equal(sl_crypt_frame_inflate(bad, (size_t)zn - 1, plen, out, sizeof out), SL_ECORRUPT);
  assert_int_equal(sl_crypt_frame_inflate(bad, (size_t)zn, plen, out, plen - 1), SL_ETOOBIG);
  assert_int_equal(sl_crypt_frame_inflate(bad, (size_t)zn, (uint64_t)SL_CRYPT_PLAIN_MAX + 1, out, sizeof out),
                   SL_ECORRUPT);

  /* What LZ4 does not shrink is sealed as it is. */
  uint8_t noise[200], sn[200 + SL_CRYPT_FRAME_EXTRA];
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < sizeof noise; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    noise[i] = (uint8_t)x;
  }
  size_t nlen, nlen_as_is;
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, noise, sizeof noise, true, sn, &nlen));
  OK(sl_crypt_frame_parse(sn, nlen, &got, &ct, &ct_len));
  assert_int_equal(got.lz4_len, 0);
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, noise, sizeof noise, false, sn, &nlen_as_is));
  assert_int_equal(nlen, nlen_as_is);
  sl_keyring_free(kr);
}

static void chunk_round_trip_and_flips(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("crypt_chunk");
  sl_keyring *kr = keyring(dir, "k", "a " KEY_A "\n");
  uint8_t in[300], sealed[300 + SL_CRYPT_OVERHEAD], out[300], aad[20] = {7};
  for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i * 7);
  OK(sl_crypt_seal_chunk(kr, NULL, store_id, aad, sizeof aad, in, sizeof in, sealed));
  OK(sl_crypt_open_chunk(kr, "a", store_id, aad, sizeof aad, sealed, sizeof sealed, out));
  assert_memory_equal(in, out, sizeof in);
  for (size_t i = 0; i < sizeof sealed; i++) {
    sealed[i] ^= 0x20;
    assert_int_equal(sl_crypt_open_chunk(kr, "a", store_id, aad, sizeof aad, sealed, sizeof sealed, out), SL_EAUTH);
    sealed[i] ^= 0x20;
  }
  for (size_t i = 0; i < sizeof aad; i++) { /* chunk header, index, file header */
    aad[i] ^= 1;
    assert_int_equal(sl_crypt_open_chunk(kr, "a", store_id, aad, sizeof aad, sealed, sizeof sealed, out), SL_EAUTH);
    aad[i] ^= 1;
  }
  assert_int_equal(sl_crypt_open_chunk(kr, "a", store_id, aad, sizeof aad, sealed, 10, out), SL_ECORRUPT);
  sl_keyring_free(kr);
}

/* ---- sealed log segments and rotation ---------------------------------------------------- */

static void append_sealed(sl_log *log, sl_keyring *kr, uint64_t txid) {
  uint8_t plain[256], sealed[256 + SL_CRYPT_FRAME_EXTRA];
  size_t plen = plain_txn(txid, 1700000000000000ull + txid, plain), slen;
  sl_sealed_meta m = {.txid = txid, .commit_us = 1700000000000000ull + txid};
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, plain, plen, false, sealed, &slen));
  OK(sl_log_append(log, sealed, slen));
}

static void log_rotation(void **state) {
  (void)state;
  const char *base = tu_tmpdir("crypt_log");
  char *logdir = tu_path(base, "log");
  sl_keyring *a = keyring(base, "a", "A " KEY_A "\n");
  sl_keyring *ba = keyring(base, "ba", "B " KEY_B "\nA " KEY_A "\n");
  sl_keyring *b_only = keyring(base, "b", "B " KEY_B "\n");
  sl_log_options lo = {.first_txid = 1};
  memcpy(lo.store_id, store_id, sizeof store_id);
  OK(sl_log_create(logdir, &lo));
  sl_log *log;
  OK(sl_log_open(logdir, store_id, &log));

  /* A plaintext payload where the key says sealed is refused. */
  sl_log_set_key_id(log, "A");
  uint8_t plain[256];
  size_t plen = plain_txn(1, 1700000000000001ull, plain);
  tu_capture_begin();
  int rc = sl_log_append(log, plain, plen);
  free(tu_capture_end());
  assert_int_equal(rc, SL_EINVAL);

  /* Key A (the empty first segment takes it in place), then key B. */
  for (uint64_t t = 1; t <= 3; t++) append_sealed(log, a, t);
  sl_log_set_key_id(log, ba ? sl_keyring_primary(ba) : NULL);
  for (uint64_t t = 4; t <= 5; t++) append_sealed(log, ba, t);
  OK(sl_log_wait_durable(log, 5));
  sl_log_close(log);

  sl_seg_info *segs;
  size_t n;
  OK(sl_log_list(logdir, &segs, &n));
  assert_int_equal(n, 2);
  free(segs);

  /* Reopened, the writer keeps the newest segment's key. */
  OK(sl_log_open(logdir, store_id, &log));
  assert_string_equal(sl_log_key_id(log), "B");
  sl_log_close(log);

  /* "B, A" reads both; each frame names its segment's key. */
  sl_log_reader *r;
  sl_frame f;
  OK(sl_log_reader_open(logdir, 1, NULL, &r));
  for (uint64_t t = 1; t <= 5; t++) {
    OK(sl_log_reader_next(r, &f));
    assert_string_equal(f.key_id, t <= 3 ? "A" : "B");
    OK(sl_log_reader_open_frame(r, ba, &f));
    Shiplog__Transaction *tx = shiplog__transaction__unpack(NULL, f.payload_len, f.payload);
    assert_non_null(tx);
    assert_int_equal(tx->txid, t);
    assert_int_equal(tx->n_ops, 1);
    assert_false(tx->has_sealed);
    shiplog__transaction__free_unpacked(tx, NULL);
  }
  sl_log_reader_close(r);

  /* Without A: refused naming the key id and the key file, nothing given. */
  OK(sl_log_reader_open(logdir, 1, NULL, &r));
  OK(sl_log_reader_next(r, &f));
  tu_capture_begin();
  rc = sl_log_reader_open_frame(r, b_only, &f);
  char *msg = tu_capture_end();
  assert_int_equal(rc, SL_ENOTFOUND);
  assert_contains(msg, "00000000000000000001.seg: offset 128: txid 1 is sealed with key A, which is not in the key file");
  free(msg);
  tu_capture_begin();
  rc = sl_log_reader_open_frame(r, NULL, &f);
  msg = tu_capture_end();
  assert_int_equal(rc, SL_ENOTFOUND);
  assert_contains(msg, "give the key file");
  free(msg);
  sl_log_reader_close(r);

  /* A flipped byte inside a sealed payload (CRC fixed up, so only the seal
   * can tell): refused naming file, offset, txid and key. */
  char seg[4200];
  snprintf(seg, sizeof seg, "%s/00000000000000000001.seg", logdir);
  uint8_t *bytes;
  size_t len;
  OK(sl_read_file(seg, 1 << 20, &bytes, &len));
  uint32_t flen = sl_get_le32(bytes + SL_SEG_HEADER_SIZE);
  bytes[SL_SEG_HEADER_SIZE + SL_FRAME_HEADER_SIZE + flen - 20] ^= 1;
  sl_frame_header_encode(bytes + SL_SEG_HEADER_SIZE + SL_FRAME_HEADER_SIZE, flen, bytes + SL_SEG_HEADER_SIZE);
  int fd = open(seg, O_WRONLY);
  OK(sl_pwrite_all(fd, bytes, len, 0));
  close(fd);
  free(bytes);
  OK(sl_log_reader_open(logdir, 1, NULL, &r));
  OK(sl_log_reader_next(r, &f));
  tu_capture_begin();
  rc = sl_log_reader_open_frame(r, ba, &f);
  msg = tu_capture_end();
  assert_int_equal(rc, SL_EAUTH);
  assert_contains(msg, "00000000000000000001.seg: offset 128: txid 1 sealed with key A does not open");
  free(msg);
  sl_log_reader_close(r);

  sl_keyring_free(a);
  sl_keyring_free(ba);
  sl_keyring_free(b_only);
  free(logdir);
}

/* sl_batch_encrypt_frames compresses for an archive that reads it, and a
 * frame sealed compressed already is not passed on to one that does not. */
static void batch_lz4(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("crypt_batch_lz4");
  sl_keyring *kr = keyring(dir, "k", "a " KEY_A "\n");
  uint8_t raw[3 * 700];
  size_t len = 0;
  for (uint64_t t = 1; t <= 3; t++) {
    size_t n = compressible_txn(t, 1700000000000000ull + t, raw + len + SL_FRAME_HEADER_SIZE);
    sl_frame_header_encode(raw + len + SL_FRAME_HEADER_SIZE, (uint32_t)n, raw + len);
    len += SL_FRAME_HEADER_SIZE + n;
  }
  sl_buf plain_sealed = {0}, lz4_sealed = {0}, again = {0};
  uint64_t txid;
  OK(sl_batch_encrypt_frames(kr, store_id, raw, len, 1, 0, false, &plain_sealed, &txid));
  OK(sl_batch_encrypt_frames(kr, store_id, raw, len, 1, 0, true, &lz4_sealed, &txid));
  assert_true(lz4_sealed.len < len && len < plain_sealed.len);
  for (size_t off = 0; off < lz4_sealed.len;) {
    const uint8_t *payload, *ct;
    uint32_t plen;
    size_t flen, ct_len;
    sl_sealed_meta m;
    OK(sl_frame_decode(lz4_sealed.data + off, lz4_sealed.len - off, &payload, &plen, &flen));
    OK(sl_crypt_frame_parse(payload, plen, &m, &ct, &ct_len));
    assert_true(m.lz4_len > 0);
    off += flen;
  }
  /* Sealed already (a cascade from an archive): as they are, or refused. */
  OK(sl_batch_encrypt_frames(kr, store_id, lz4_sealed.data, lz4_sealed.len, 1, 0, true, &again, &txid));
  assert_int_equal(again.len, lz4_sealed.len);
  assert_memory_equal(again.data, lz4_sealed.data, again.len);
  assert_int_equal(sl_batch_encrypt_frames(kr, store_id, lz4_sealed.data, lz4_sealed.len, 1, 0, false, &again, &txid),
                   SL_EVERSION);
  assert_int_equal(txid, 1);
  sl_buf_free(&plain_sealed);
  sl_buf_free(&lz4_sealed);
  sl_buf_free(&again);
  sl_keyring_free(kr);
}

static uint32_t seg_flags(const char *logdir, uint64_t segno) {
  char path[4200];
  uint8_t h[SL_SEG_HEADER_SIZE];
  snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", logdir, segno);
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(sl_pread_full(fd, h, sizeof h, 0), sizeof h);
  close(fd);
  return sl_get_le32(h + 12);
}

/* Compressed sealed frames go only into SL_SEG_F_SEALED_LZ4 segments
 * (log.h): the first one starts such a segment (or flags the empty one),
 * later segments keep the flag, and readers open both kinds of frames. */
static void log_lz4_segments(void **state) {
  (void)state;
  const char *base = tu_tmpdir("crypt_log_lz4");
  char *logdir = tu_path(base, "log"), *fresh = tu_path(base, "fresh");
  sl_keyring *a = keyring(base, "a", "A " KEY_A "\n");
  sl_log_options lo = {.first_txid = 1, .segment_size = 4096};
  memcpy(lo.store_id, store_id, sizeof store_id);
  OK(sl_log_create(logdir, &lo));
  OK(sl_log_create(fresh, &lo));
  sl_log *log;
  uint8_t plain[64][600], sealed[600 + SL_CRYPT_FRAME_EXTRA];
  size_t plens[64], slen;

  /* A fresh log whose first frame is compressed: its empty segment is
   * flagged in place. */
  OK(sl_log_open(fresh, store_id, &log));
  sl_log_set_key_id(log, "A");
  plens[0] = compressible_txn(1, 1700000000000001ull, plain[0]);
  sl_sealed_meta m = {.txid = 1, .commit_us = 1700000000000001ull};
  OK(sl_crypt_seal_frame(a, NULL, store_id, &m, plain[0], plens[0], true, sealed, &slen));
  OK(sl_log_append(log, sealed, slen));
  OK(sl_log_wait_durable(log, 1));
  sl_log_close(log);
  assert_int_equal(seg_flags(fresh, 1), SL_SEG_F_SEALED | SL_SEG_F_SEALED_LZ4);

  /* An archive written before compression (txids 1-2 as they are), then
   * compressed frames: a new segment, flagged; frames after it too. */
  OK(sl_log_open(logdir, store_id, &log));
  sl_log_set_key_id(log, "A");
  for (uint64_t t = 1; t <= 40; t++) {
    plens[t] = compressible_txn(t, 1700000000000000ull + t, plain[t]);
    m = (sl_sealed_meta){.txid = t, .commit_us = 1700000000000000ull + t};
    OK(sl_crypt_seal_frame(a, NULL, store_id, &m, plain[t], plens[t], t > 2 && t != 5, sealed, &slen));
    OK(sl_log_append(log, sealed, slen));
    if (t == 20) { /* reopened: the writer keeps compressing into flagged segments */
      OK(sl_log_wait_durable(log, t));
      sl_log_close(log);
      OK(sl_log_open(logdir, store_id, &log));
    }
  }
  OK(sl_log_wait_durable(log, 40));
  sl_log_close(log);
  sl_seg_info *segs;
  size_t n;
  OK(sl_log_list(logdir, &segs, &n));
  assert_true(n >= 3);
  assert_int_equal(segs[1].first_txid, 3);
  free(segs);
  assert_int_equal(seg_flags(logdir, 1), SL_SEG_F_SEALED);
  for (uint64_t seg = 2; seg <= n; seg++) assert_int_equal(seg_flags(logdir, seg), SL_SEG_F_SEALED | SL_SEG_F_SEALED_LZ4);

  sl_log_reader *r;
  sl_frame f;
  OK(sl_log_reader_open(logdir, 1, NULL, &r));
  for (uint64_t t = 1; t <= 40; t++) {
    OK(sl_log_reader_next(r, &f));
    assert_int_equal(f.txid, t);
    assert_true(t <= 2 || t == 5 ? f.payload_len > plens[t] : f.payload_len < plens[t] / 2);
    OK(sl_log_reader_open_frame(r, a, &f));
    assert_int_equal(f.payload_len, plens[t]);
    assert_memory_equal(f.payload, plain[t], plens[t]);
  }
  sl_log_reader_close(r);
  sl_keyring_free(a);
  free(logdir);
  free(fresh);
}

/* ---- sealed dump files ---------------------------------------------------------------------- */

static void make_store(const char *dir, int txs) {
  sl_store_options so = {.store_id = store_id};
  sl_store *st;
  OK(sl_store_create(dir, &so));
  OK(sl_store_open(dir, 0, &st));
  for (int i = 0; i < txs; i++) {
    sl_tx *tx;
    char text[64];
    int n = snprintf(text, sizeof text, "distinctive-secret-%d", i);
    sl_prop p = {.key = "name", .value = {.kind = SL_STRING, .len = (size_t)n, .u.s = text}};
    const char *label = "Person";
    OK(sl_tx_begin(st, &tx));
    OK(sl_tx_create_node(tx, SL_ID_NEW, &label, 1, &p, 1, NULL));
    OK(sl_tx_commit(tx, NULL));
  }
  sl_store_close(st);
}

static void write_dump(const char *store, const char *path, sl_keyring *kr, bool incremental, sl_dump_info *info) {
  sl_store *st;
  OK(sl_store_open(store, SL_OPEN_RDONLY, &st));
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  sl_dump_options o = {.keyring = kr, .chunk_raw = 256, .name = path};
  OK(incremental ? sl_dump_incremental(st, fd, &o, info) : sl_dump_full(st, fd, &o, info));
  close(fd);
  sl_store_close(st);
}

static int verify_quiet(const char *path, sl_keyring *kr) {
  tu_capture_begin();
  int rc = sl_dump_verify_keyed(path, kr, NULL, NULL, NULL);
  free(tu_capture_end());
  return rc;
}

static void dump_sealed(void **state) {
  (void)state;
  const char *base = tu_tmpdir("crypt_dump");
  char *store = tu_path(base, "store"), *full = tu_path(base, "full.dump"), *incr = tu_path(base, "incr.dump");
  char *into = tu_path(base, "into"), *bad = tu_path(base, "bad.dump");
  sl_keyring *a = keyring(base, "a", "A " KEY_A "\n");
  sl_keyring *ba = keyring(base, "ba", "B " KEY_B "\nA " KEY_A "\n");
  sl_keyring *b_only = keyring(base, "b", "B " KEY_B "\n");
  make_store(store, 20);
  sl_dump_info info;
  write_dump(store, full, a, false, &info);
  assert_string_equal(info.header.key_id, "A");
  write_dump(store, incr, a, true, &info);

  uint8_t *bytes;
  size_t len;
  OK(sl_read_file(full, 1 << 24, &bytes, &len));
  assert_int_equal(bytes[8], SL_DUMP_VERSION_SEALED);
  assert_null(memmem(bytes, len, "distinctive-secret", 18));

  /* Rotation: "B, A" reads A's files; a new dump is sealed with B. */
  OK(sl_dump_verify_keyed(full, ba, NULL, NULL, NULL));
  OK(sl_dump_verify_keyed(incr, ba, NULL, NULL, NULL));
  sl_load_options lo = {.keyring = ba};
  OK(sl_load_full(full, into, &lo, NULL));
  char *e1 = tu_export(store, NULL), *e2 = tu_export(into, NULL);
  assert_string_equal(e1, e2);
  free(e1);
  free(e2);
  char *again = tu_path(base, "again.dump");
  write_dump(store, again, ba, false, &info);
  assert_string_equal(info.header.key_id, "B");
  free(again);

  /* Without A: refused at the header, naming the key id. */
  tu_capture_begin();
  int rc = sl_dump_verify_keyed(full, b_only, NULL, NULL, NULL);
  char *msg = tu_capture_end();
  assert_int_equal(rc, SL_ENOTFOUND);
  assert_contains(msg, "offset 0: the file is sealed with key A, which is not in the key file");
  free(msg);
  /* Wrong bytes under the same id: the first chunk does not open. */
  sl_keyring *wrong = keyring(base, "w", "A " KEY_A2 "\n");
  tu_capture_begin();
  rc = sl_dump_verify_keyed(full, wrong, NULL, NULL, NULL);
  msg = tu_capture_end();
  assert_int_equal(rc, SL_EAUTH);
  assert_contains(msg, "offset 128: sealed chunk 0 (key A) does not open: authentication failed");
  free(msg);
  sl_keyring_free(wrong);

  /* Every flipped byte of the file (CRCs not fixed: the CRC or the seal
   * catches it), and of every chunk with its CRC fixed up (only the seal
   * can tell). */
  for (size_t i = 0; i < len; i++) {
    bytes[i] ^= 0x10;
    tu_write_file(bad, "");
    int fd = open(bad, O_WRONLY);
    OK(sl_write_all(fd, bytes, len));
    close(fd);
    if (verify_quiet(bad, a) == 0) fail_msg("byte %zu flipped: the file still verifies", i);
    bytes[i] ^= 0x10;
  }
  /* The chunks' offsets, trailer last. */
  size_t offs[512], nch = 0;
  for (size_t off = SL_DUMP_HEADER_SIZE; off < len && nch < SL_ARRAY_LEN(offs);
       off += SL_DUMP_CHUNK_HEADER_SIZE + sl_get_le32(bytes + off + 4))
    offs[nch++] = off;
  assert_true(nch >= 4);
  for (size_t c = 0; c < nch; c++) {
    size_t off = offs[c], slen = sl_get_le32(bytes + off + 4);
    uint8_t *copy = malloc(len);
    memcpy(copy, bytes, len);
    copy[off + SL_DUMP_CHUNK_HEADER_SIZE + slen / 2] ^= 1;
    sl_put_le32(copy + off + 12, sl_crc32c(sl_crc32c(0, copy + off, 12), copy + off + 16, slen));
    int fd = open(bad, O_WRONLY | O_TRUNC);
    OK(sl_write_all(fd, copy, len));
    close(fd);
    tu_capture_begin();
    rc = sl_dump_verify_keyed(bad, a, NULL, NULL, NULL);
    msg = tu_capture_end();
    if (rc != SL_EAUTH) fail_msg("chunk %zu changed, CRC fixed: %s", c, sl_errname(rc));
    assert_contains(msg, "authentication failed");
    free(msg);
    free(copy);
  }
  /* Chunk 1 removed; chunks 1 and 2 swapped; the last chunk cut off with
   * the trailer kept: each refused. */
  size_t c1 = offs[1], c2 = offs[2], c3 = offs[3], tr = offs[nch - 1], last = offs[nch - 2];
  uint8_t *w = malloc(len);
  size_t wl = 0;
  memcpy(w, bytes, c1), wl = c1;
  memcpy(w + wl, bytes + c2, len - c2), wl += len - c2;
  tu_write_file(bad, "");
  int fd = open(bad, O_WRONLY);
  OK(sl_write_all(fd, w, wl));
  close(fd);
  assert_int_not_equal(verify_quiet(bad, a), 0);
  wl = 0;
  memcpy(w, bytes, c1), wl = c1;
  memcpy(w + wl, bytes + c2, c3 - c2), wl += c3 - c2;
  memcpy(w + wl, bytes + c1, c2 - c1), wl += c2 - c1;
  memcpy(w + wl, bytes + c3, len - c3), wl += len - c3;
  fd = open(bad, O_WRONLY | O_TRUNC);
  OK(sl_write_all(fd, w, wl));
  close(fd);
  assert_int_not_equal(verify_quiet(bad, a), 0);
  wl = 0;
  memcpy(w, bytes, last), wl = last;
  memcpy(w + wl, bytes + tr, len - tr), wl += len - tr;
  fd = open(bad, O_WRONLY | O_TRUNC);
  OK(sl_write_all(fd, w, wl));
  close(fd);
  assert_int_not_equal(verify_quiet(bad, a), 0);
  free(w);
  free(bytes);

  sl_keyring_free(a);
  sl_keyring_free(ba);
  sl_keyring_free(b_only);
  free(store);
  free(full);
  free(incr);
  free(into);
  free(bad);
}

/* Nothing applies a sealed transaction (defense in depth). */
static void sealed_never_applied(void **state) {
  (void)state;
  const char *base = tu_tmpdir("crypt_apply");
  char *store = tu_path(base, "store");
  sl_keyring *kr = keyring(base, "a", "A " KEY_A "\n");
  make_store(store, 0);
  uint8_t plain[256], sealed[256 + SL_CRYPT_FRAME_EXTRA];
  size_t plen = plain_txn(1, sl_now_us(), plain), slen;
  sl_sealed_meta m = {.txid = 1, .commit_us = sl_now_us()};
  OK(sl_crypt_seal_frame(kr, NULL, store_id, &m, plain, plen, false, sealed, &slen));
  sl_store *st;
  OK(sl_store_open(store, 0, &st));
  tu_capture_begin();
  int rc = sl_store_apply(st, sealed, slen);
  char *msg = tu_capture_end();
  assert_int_equal(rc, SL_EINVAL);
  assert_contains(msg, "sealed");
  free(msg);
  sl_store_close(st);
  sl_keyring_free(kr);
  free(store);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(keyfile_parsing),   cmocka_unit_test(frame_round_trip_and_flips),
      cmocka_unit_test(chunk_round_trip_and_flips), cmocka_unit_test(log_rotation),
      cmocka_unit_test(frame_lz4),         cmocka_unit_test(log_lz4_segments),
      cmocka_unit_test(batch_lz4),
      cmocka_unit_test(dump_sealed),       cmocka_unit_test(sealed_never_applied),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
