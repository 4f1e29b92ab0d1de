/*
 * bench_crypt: what at-rest encryption costs next to what shipping already
 * pays for, on one core, measured in the same run.
 *
 * USAGE
 *   bench_crypt [--mb N] [--rounds R]
 *
 *   --mb N       MiB of log frames to push through each step (default 64)
 *   --rounds R   measurements of each step, alternating (default 3); the
 *                best of each is reported
 *
 * WHAT IT MEASURES
 *   Frames are packed transactions like a primary's log holds: a few nodes
 *   with labels, an int, a double and a sentence drawn from a small
 *   vocabulary (so LZ4 finds what it finds in real graphs), ~300-600 bytes
 *   each. Per round and step, over the same frames:
 *     lz4   LZ4_compress_default of 1 MiB batches (the shipper's
 *           compression: the baseline, the step the pipeline already
 *           overlaps with sending)
 *     seal  sl_crypt_seal_frame of every frame (what the shipper adds per
 *           frame with a key: HKDF is cached, so AES-256-GCM and a nonce)
 *     open  sl_crypt_open_frame of every sealed frame (what the receiver
 *           adds before applying to its standby, and a restore)
 *     seal+lz4, open+lz4  the same with each frame's plaintext compressed
 *           before sealing (crypt.h COMPRESSED: what the shipper does for
 *           a receiver that reads it), and the sealed bytes of both forms
 *   Rates are plaintext MB/s (10^6 bytes). Nothing is asserted: compare the
 *   figures of one run (a shared machine varies by tens of percent).
 */
#include <errno.h>
#include <inttypes.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypt.h"
#include "log.h"
#include "sl_base.h"
#include "transaction.pb-c.h"

static const char *const words[] = {"graph", "node", "shipping", "archive", "replica", "standby",
                                    "sealed", "frame", "segment", "commit", "durable", "primary"};

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_crypt: %s: %s\n", what, sl_strerror(rc));
  exit(1);
}

/* One packed transaction of 2-5 created nodes into out; returns its length. */
static size_t make_txn(uint64_t txid, uint64_t *rng, uint8_t *out) {
  Shiplog__CreateNode cn[5];
  Shiplog__Op op[5], *ops[5];
  Shiplog__Property p[5][3], *pp[5][3];
  Shiplog__Value v[5][3];
  char text[5][160];
  char *labels[] = {(char *)"Person", (char *)"Post"};
  size_t n = 2 + (*rng = *rng * 6364136223846793005ull + 1442695040888963407ull) % 4;
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    for (int w = 0; w < 12; w++) {
      *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
      len += (size_t)snprintf(text[i] + len, sizeof text[i] - len, "%s ", words[(*rng >> 33) % 12]);
    }
    shiplog__create_node__init(&cn[i]);
    cn[i].id = txid * 8 + i;
    cn[i].labels = labels + (i & 1);
    cn[i].n_labels = 1;
    const char *keys[] = {"age", "score", "bio"};
    for (int k = 0; k < 3; k++) {
      shiplog__property__init(&p[i][k]);
      shiplog__value__init(&v[i][k]);
      p[i][k].key = (char *)keys[k];
      p[i][k].value = &v[i][k];
      pp[i][k] = &p[i][k];
    }
    v[i][0].kind_case = SHIPLOG__VALUE__KIND_INT_VALUE;
    v[i][0].int_value = (int64_t)(*rng >> 40) % 100;
    v[i][1].kind_case = SHIPLOG__VALUE__KIND_DOUBLE_VALUE;
    v[i][1].double_value = (double)(*rng >> 11) / 9007199254740992.0;
    v[i][2].kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
    v[i][2].string_value = text[i];
    cn[i].props = pp[i];
    cn[i].n_props = 3;
    shiplog__op__init(&op[i]);
    op[i].op_case = SHIPLOG__OP__OP_CREATE_NODE;
    op[i].create_node = &cn[i];
    ops[i] = &op[i];
  }
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = txid;
  t.commit_time_us = 1700000000000000ull + txid;
  t.ops = ops;
  t.n_ops = n;
  return shiplog__transaction__pack(&t, out);
}

int main(int argc, char **argv) {
  uint64_t mb = 64, rounds = 3;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: bench_crypt [--mb N] [--rounds R]\n");
      return 2;
    }
  }
  if (!mb || !rounds) return 2;
  const size_t total = (size_t)mb << 20;
  uint8_t *plain = malloc(total + 4096), *sealed = NULL, *out = malloc(64 << 10);
  size_t *offs = NULL, *lens = NULL, *slens = NULL, n = 0, cap = 0, used = 0;
  uint64_t rng = 42;
  if (!plain || !out) die("memory", -ENOMEM);
  while (used < total) {
    if (n == cap) {
      cap = cap ? cap * 2 : 65536;
      offs = realloc(offs, cap * sizeof *offs);
      lens = realloc(lens, cap * sizeof *lens);
      if (!offs || !lens) die("memory", -ENOMEM);
    }
    offs[n] = used;
    lens[n] = make_txn(n + 1, &rng, plain + used);
    used += lens[n++];
  }
  sealed = malloc(used + n * SL_CRYPT_FRAME_EXTRA);
  slens = malloc(n * sizeof *slens);
  int bound = LZ4_compressBound(1 << 20);
  char *lz = malloc((size_t)bound);
  if (!sealed || !slens || !lz) die("memory", -ENOMEM);

  /* A throwaway key file. */
  char path[] = "/tmp/bench_crypt-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) die("mkstemp", -errno);
  const char line[] = "bench 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
  if (sl_write_all(fd, line, sizeof line - 1)) die("key file", -EIO);
  close(fd);
  sl_keyring *kr;
  int rc = sl_keyring_load(path, &kr);
  unlink(path);
  if (rc) die("key file", rc);
  uint8_t store_id[SL_STORE_ID_SIZE] = {7};

  double best[5] = {0, 0, 0, 0, 0};
  size_t lz_bytes = 0, sealed_bytes[2] = {0, 0};
  for (uint64_t r = 0; r < rounds * 2; r++) {
    bool lz4 = r % 2; /* rounds alternate: sealed as it is, then compressed */
    uint64_t t0 = sl_mono_ns();
    if (lz4) goto timed_seal; /* the lz4 baseline is measured once per pair */
    lz_bytes = 0;
    for (size_t off = 0; off < used; off += 1 << 20) {
      int len = (int)SL_MIN((size_t)1 << 20, used - off);
      int c = LZ4_compress_default((const char *)plain + off, lz, len, bound);
      if (c <= 0) die("lz4", SL_EFAILED);
      lz_bytes += (size_t)c;
    }
  timed_seal:;
    uint64_t t1 = sl_mono_ns();
    size_t so = 0;
    for (size_t i = 0; i < n; i++) {
      sl_sealed_meta m = {.txid = i + 1, .commit_us = 1700000000000000ull + i + 1};
      if ((rc = sl_crypt_seal_frame(kr, NULL, store_id, &m, plain + offs[i], lens[i], lz4, sealed + so, &slens[i])))
        die("seal", rc);
      so += slens[i];
    }
    uint64_t t2 = sl_mono_ns();
    sealed_bytes[lz4] = so;
    so = 0;
    for (size_t i = 0; i < n; i++) {
      size_t olen;
      if ((rc = sl_crypt_open_frame(kr, "bench", store_id, sealed + so, slens[i], out, 64 << 10, &olen, NULL))) die("open", rc);
      if (olen != lens[i] || memcmp(out, plain + offs[i], olen)) die("open: different bytes", SL_ECORRUPT);
      so += slens[i];
    }
    uint64_t t3 = sl_mono_ns();
    double rate[3] = {used / ((t1 - t0) / 1e3), used / ((t2 - t1) / 1e3), used / ((t3 - t2) / 1e3)};
    if (!lz4) best[0] = SL_MAX(best[0], rate[0]);
    for (int k = 1; k < 3; k++) best[k + 2 * lz4] = SL_MAX(best[k + 2 * lz4], rate[k]);
  }
  printf("bench_crypt: %zu frames, %.1f MB of packed transactions (avg %zu bytes), best of %" PRIu64 " rounds, 1 core\n",
         n, used / 1e6, used / n, rounds);
  printf("  lz4 compress (baseline)   %8.0f MB/s   (ratio %.2f)\n", best[0], (double)used / (double)lz_bytes);
  printf("  seal (AES-256-GCM)        %8.0f MB/s   %.2fx the lz4 time\n", best[1], best[0] / best[1]);
  printf("  open (AES-256-GCM)        %8.0f MB/s   %.2fx the lz4 time\n", best[2], best[0] / best[2]);
  printf("  seal + open               %8.0f MB/s\n", 1.0 / (1.0 / best[1] + 1.0 / best[2]));
  printf("  seal+lz4 (per frame)      %8.0f MB/s   %.2fx the lz4 time\n", best[3], best[0] / best[3]);
  printf("  open+lz4 (per frame)      %8.0f MB/s   %.2fx the lz4 time\n", best[4], best[0] / best[4]);
  printf("  sealed bytes: %.1f MB as they are, %.1f MB compressed per frame (%.0f%%)\n", sealed_bytes[0] / 1e6,
         sealed_bytes[1] / 1e6, 100.0 * (double)sealed_bytes[1] / (double)sealed_bytes[0]);
  sl_keyring_free(kr);
  free(plain);
  free(sealed);
  free(out);
  free(offs);
  free(lens);
  free(slens);
  free(lz);
  return 0;
}
