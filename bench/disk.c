/*
 * disk.h's baseline: a scratch file of RING_BYTES zeros, written and synced
 * first, then overwritten from its start a 4 KiB block per sample (back to
 * the start at its end), each block fdatasync()ed, latencies kept per
 * sample. No sync carries a new size: a growing file's would also write
 * its inode and block map (15-50% fewer syncs a second here).
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latency.h"
#include "sl_base.h"

#define RING_BYTES (16u << 20)

int disk_sync_rate_measure(const char *dir, double seconds, disk_sync_rate *out) {
  static uint8_t block[4096];
  char path[4096];
  lat l = {0};
  int rc = 0, fd = -1;
  memset(out, 0, sizeof *out);
  memset(block, 0xa5, sizeof block);
  if ((size_t)snprintf(path, sizeof path, "%s/fdatasync.dat", dir) >= sizeof path) return -ENAMETOOLONG;
  if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    goto out;
  }
  static const uint8_t zeros[1 << 16];
  for (uint64_t off = 0; off < RING_BYTES; off += sizeof zeros)
    if ((rc = sl_pwrite_all(fd, zeros, sizeof zeros, off))) goto out;
  if (fdatasync(fd)) {
    rc = -errno;
    goto out;
  }
  uint64_t start = sl_mono_ns(), deadline = start + (uint64_t)(seconds * 1e9), now = start;
  for (uint64_t off = 0; now < deadline; off = (off + sizeof block) % RING_BYTES) {
    uint64_t t0 = now;
    if ((rc = sl_pwrite_all(fd, block, sizeof block, off))) goto out;
    if (fdatasync(fd)) {
      rc = -errno;
      goto out;
    }
    now = sl_mono_ns();
    if ((rc = lat_add(&l, now - t0))) goto out;
  }
  lat_sort(&l);
  out->per_s = (double)l.n / ((double)(now - start) / 1e9);
  out->p50_us = lat_pct(&l, 50, 1e3);
  out->p99_us = lat_pct(&l, 99, 1e3);
out:
  if (rc) fprintf(stderr, "%s: measuring the disk's fdatasync rate: %s\n", path, sl_strerror(rc));
  if (fd >= 0) {
    close(fd);
    unlink(path);
  }
  free(l.ns);
  return rc;
}
