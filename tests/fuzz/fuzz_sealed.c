/*
 * fuzz_sealed: sealed (at-rest encrypted) bytes as a receiver, a restore
 * or `shiplog load --key-file` find them on disk, opened with a known key:
 * the first byte chooses the decoder, the rest is its input:
 *   0  a sealed frame payload: sl_crypt_frame_parse, sl_crypt_open_frame
 *   1  a sealed dump chunk: 20 bytes of additional data, then the sealed
 *      bytes (sl_crypt_open_chunk)
 *   2  a sealed dump file (version 2): sl_dump_open_keyed, then every
 *      record until the trailer or the first damage
 *   3  the LZ4 block of a compressed sealed frame (crypt.h COMPRESSED) as
 *      it is once the tag verified: le24 declared length (its low 20 bits,
 *      so at most 1 MiB is allocated), then the block
 *      (sl_crypt_frame_inflate)
 * A forged tag never opens, so the fuzzer mostly exercises the parsing
 * around the seal (field tags, lengths -- lz4_len too --, chunk headers,
 * trailer), and mode 3 reaches the decompression a sealer's block goes
 * through; the seeds (tests/fuzz/corpus/sealed) are valid inputs under
 * FUZZ_SEALED_KEY (frame, frame-lz4, block-lz4).
 */
#include "fuzz.h"

#include <string.h>

#include "crypt.h"
#include "dump.h"
#include "sl_base.h"

static const uint8_t store_id[16] = FUZZ_SEALED_STORE_ID;
static sl_keyring *kr;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char path[] = "/tmp/fuzz_sealed-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  int rc = sl_write_all(fd, FUZZ_SEALED_KEY, sizeof FUZZ_SEALED_KEY - 1);
  close(fd);
  if (rc == 0) rc = sl_keyring_load(path, &kr);
  unlink(path);
  return rc ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || !kr) return 0;
  const uint8_t *in = data + 1;
  size_t len = size - 1;
  /* Mode 0 opens into what the frame declares, up to 1 MiB (a larger
   * declaration is refused as too big before anything is decrypted). */
  size_t room = data[0] % 4 == 0 ? SL_MIN(sl_crypt_frame_open_size(in, len), (size_t)1 << 20) : 0;
  uint8_t *out = malloc(SL_MAX(len, room) + 1);
  if (!out) return 0;
  switch (data[0] % 4) {
  case 0: {
    sl_sealed_meta m;
    const uint8_t *ct;
    size_t ct_len, olen;
    if (sl_crypt_frame_parse(in, len, &m, &ct, &ct_len) == 0)
      (void)sl_crypt_open_frame(kr, "fz", store_id, in, len, out, room, &olen, &m);
    break;
  }
  case 3:
    if (len >= 3) {
      size_t declared = (in[0] | (size_t)in[1] << 8 | (size_t)in[2] << 16) & 0xfffff;
      uint8_t *plain = malloc(declared + 1);
      if (plain) (void)sl_crypt_frame_inflate(in + 3, len - 3, declared, plain, declared);
      free(plain);
    }
    break;
  case 1:
    if (len >= 20 + SL_CRYPT_OVERHEAD) (void)sl_crypt_open_chunk(kr, "fz", store_id, in, 20, in + 20, len - 20, out);
    break;
  default: {
    char path[32];
    int fd = fuzz_memfile(in, len, path);
    sl_dump_reader *r;
    sl_dump_record rec;
    if (fd >= 0 && sl_dump_open_keyed(path, kr, &r) == 0) {
      while (sl_dump_next(r, &rec) == 0) {
      }
      sl_dump_close(r);
    }
    if (fd >= 0) close(fd);
  }
  }
  free(out);
  return 0;
}
