/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every segment header, frame and durable mark.
 *
 * Two implementations compute the same function:
 *   - SSE4.2's crc32 instruction, 8 bytes per step. It lives in a function
 *     compiled with __attribute__((target("sse4.2"))) so that the rest of
 *     the program keeps the baseline ISA, and is chosen at run time with
 *     __builtin_cpu_supports(). The instruction takes 3 cycles but can
 *     start every cycle, so a long buffer is cut into three blocks whose
 *     CRCs run side by side and are then joined: the CRC register of A
 *     shifted over len(B) zero bytes, XOR the CRC of B from 0, is the
 *     register of A||B (the update is linear). The shift of a 32-bit
 *     register over a fixed length is four table lookups (crc_shift);
 *     the tables for 8 KiB and 256-byte blocks are made with the
 *     instruction itself, once. (Mark Adler's crc32c.c does the same.)
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

#define CRC_LONG 8192
#define CRC_SHORT 256

static uint32_t crc_table[8][256];
static uint32_t crc_long[4][256], crc_short[4][256]; /* shift over CRC_LONG / CRC_SHORT zero bytes */
static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_zeros(uint32_t tab[4][256], size_t n);

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
    crc_table[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++)
      crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
  crc_impl = sl__crc32c_sw;
  if (sl__crc32c_hw_available()) {
    crc_zeros(crc_long, CRC_LONG);
    crc_zeros(crc_short, CRC_SHORT);
    crc_impl = sl__crc32c_hw;
  }
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

static uint32_t crc_shift(const uint32_t tab[4][256], uint32_t c) {
  return tab[0][c & 0xff] ^ tab[1][(c >> 8) & 0xff] ^ tab[2][(c >> 16) & 0xff] ^ tab[3][c >> 24];
}

/* tab[k][v]: the register v << 8k after n zero bytes (n a multiple of 8),
 * built from the 32 single-bit registers (the shift is linear). */
__attribute__((target("sse4.2")))
static void crc_zeros(uint32_t tab[4][256], size_t n) {
  uint32_t bit[32];
  for (int b = 0; b < 32; b++) {
    uint64_t c = 1u << b;
    for (size_t i = 0; i < n; i += 8) c = _mm_crc32_u64(c, 0);
    bit[b] = (uint32_t)c;
  }
  for (int k = 0; k < 4; k++) {
    tab[k][0] = 0;
    for (int v = 1; v < 256; v++) tab[k][v] = tab[k][v & (v - 1)] ^ bit[8 * k + __builtin_ctz((unsigned)v)];
  }
}

/* Whole runs of three blk-byte blocks, their CRCs side by side. */
__attribute__((target("sse4.2")))
static uint64_t crc_three(uint64_t c, const uint8_t **pp, size_t *lenp, size_t blk, const uint32_t tab[4][256]) {
  const uint8_t *p = *pp;
  size_t len = *lenp;
  for (; len >= 3 * blk; len -= 3 * blk, p += 2 * blk) {
    uint64_t c1 = 0, c2 = 0;
    for (const uint8_t *end = p + blk; p < end; p += 8) {
      uint64_t w0, w1, w2;
      memcpy(&w0, p, 8);
      memcpy(&w1, p + blk, 8);
      memcpy(&w2, p + 2 * blk, 8);
      c = _mm_crc32_u64(c, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    c = crc_shift(tab, (uint32_t)c) ^ c1;
    c = crc_shift(tab, (uint32_t)c) ^ c2;
  }
  *pp = p;
  *lenp = len;
  return c;
}

__attribute__((target("sse4.2")))
uint32_t sl__crc32c_hw(uint32_t crc, const void *buf, size_t len) {
  const uint8_t *p = buf;
  uint64_t c = ~crc;
  /* Aligned 8-byte loads are the fast path; memcpy keeps UBSan quiet. */
  for (; len && ((uintptr_t)p & 7); len--) c = _mm_crc32_u8((uint32_t)c, *p++);
  if (len >= 3 * CRC_SHORT) {
    pthread_once(&crc_once, crc_init); /* the shift tables */
    c = crc_three(c, &p, &len, CRC_LONG, crc_long);
    c = crc_three(c, &p, &len, CRC_SHORT, crc_short);
  }
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

static void crc_zeros(uint32_t tab[4][256], size_t n) {
  (void)tab;
  (void)n;
}

/* Never chosen here; keeps one signature for the tests on every CPU. */
uint32_t sl__crc32c_hw(uint32_t crc, const void *buf, size_t len) {
  return sl__crc32c_sw(crc, buf, len);
}
#endif

uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len) {
  pthread_once(&crc_once, crc_init);
  return crc_impl(crc, buf, len);
}
