/*
 * The disk's own durable-write rate, the baseline of every durable-commit
 * figure: one thread appending 4 KiB blocks to a new file in a directory
 * and fdatasync()ing each (a commit's shape when nobody shares its sync).
 * A system that answers a commit only once it is durable can commit at most
 * W times this rate with W closed-loop clients, each waiting for its own.
 */
#ifndef SL_BENCH_DISK_H
#define SL_BENCH_DISK_H

typedef struct disk_sync_rate {
  double per_s, p50_us, p99_us;
} disk_sync_rate;

/* Measure for `seconds` in dir (a scratch file, removed after). 0 or a
 * negative errno code, with the file named on stderr. */
int disk_sync_rate_measure(const char *dir, double seconds, disk_sync_rate *out);

#endif
