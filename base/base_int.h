/*
 * base internals shared between base's files and its tests; no other module
 * includes this.
 */
#ifndef SL_BASE_INT_H
#define SL_BASE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The two CRC32C implementations behind sl_crc32c(), with its convention
 * (crc 0 to start). sl__crc32c_hw may only be called when
 * sl__crc32c_hw_available() says the CPU has SSE4.2. */
uint32_t sl__crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t sl__crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool sl__crc32c_hw_available(void);

/* The proleptic Gregorian calendar on int64 days since 1970-01-01
 * (temporal.c; tzdb.c uses it for the rules of zone files). */
int64_t sl__floor_div(int64_t a, int64_t b);
bool sl__is_leap(int64_t year);
int sl__month_len(int64_t year, int month);
int64_t sl__days_from_civil(int64_t year, int month, int day);
void sl__civil_from_days(int64_t days, int64_t *year, int *month, int *day);

#endif
