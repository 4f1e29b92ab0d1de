/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every segment header, frame and durable mark.
 *
 * Two implementations compute the same function:
 *   - SSE4.2's crc32 instruction, 8 bytes per step. It lives in a function
 *     compiled with __attribute__((target("sse4.2"))) so that the rest of
 *     the program keeps the baseline ISA, and is chosen at run time with
 *     __builtin_cpu_supports().
 *   - slicing-by-8: eight 256-entry tables fold 8 input bytes per step
 *     without the instruction (other CPUs, or x86 without SSE4.2).
 * The choice and the tables are made once (pthread_once), so sl_crc32c is
 * safe from any thread. Both take and return the finished (inverted) value,
 * so a CRC can be continued across calls.
 */
#include "base_int.h"
#include "sl_base.h"

#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
    crc_table[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
  crc_impl = sl__crc32c_hw_available() ? sl__crc32c_hw : sl__crc32c_sw;
}

uint32_t sl__crc32c_sw(uint32_t crc, const void *buf, size_t len) {
  pthread_once(&crc_once, crc_init);
  const uint8_t *p = buf;
  uint32_t c = ~crc;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w = sl_get_le64(p) ^ c;
    c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
        crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
        crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
        crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
  }
  while (len--) c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
bool sl__crc32c_hw_available(void) {
  return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t sl__crc32c_hw(uint32_t crc, const void *buf, size_t len) {
  const uint8_t *p = buf;
  uint64_t c = ~crc;
  /* Aligned 8-byte loads are the fast path; memcpy keeps UBSan quiet. */
  for (; len && ((uintptr_t)p & 7); len--) c = _mm_crc32_u8((uint32_t)c, *p++);
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
  }
  while (len--) c = _mm_crc32_u8((uint32_t)c, *p++);
  return ~(uint32_t)c;
}
#else
bool sl__crc32c_hw_available(void) { return false; }

/* Never chosen here; keeps one signature for the tests on every CPU. */
uint32_t sl__crc32c_hw(uint32_t crc, const void *buf, size_t len) {
  return sl__crc32c_sw(crc, buf, len);
}
#endif

uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len) {
  pthread_once(&crc_once, crc_init);
  return crc_impl(crc, buf, len);
}
