/*
 * The disk's own durable-write rate, the baseline of every durable-commit
 * figure: one thread writing 4 KiB blocks one after the other into a file
 * whose blocks were written (zeros) and synced before, and fdatasync()ing
 * each (a commit's shape when nobody shares its sync, in a log that keeps
 * zeros ahead of its end as shiplog's and PostgreSQL's do: store/log.h,
 * ZEROED TAIL).
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
