/*
 * log_consumers.c: consumer positions and pruning (log.h, CONSUMERS; the
 * log's design is at the top of log.c). A position is the file
 * LOGDIR/consumers/NAME holding "txid\n", written atomically, so that any
 * process may set or read it; pruning removes the segments every consumer
 * and the checkpoint are past, and needs the open log only to spare the
 * active segment and to refuse while the log is FAILED.
 */
#include "log_int.h"
#include "sl_base.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONSUMERS_DIR "consumers"

/* ---- consumers and pruning ------------------------------------------------ */

static bool consumer_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > SL_LOG_CONSUMER_NAME_MAX || name[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '-' || c == '@'))
      return false;
  }
  /* NAME.tmp is sl_write_file_atomic's scratch file. */
  return n < strlen(TMP_SUFFIX) || strcmp(name + n - strlen(TMP_SUFFIX), TMP_SUFFIX) != 0;
}

static int consumer_dir(char out[PATH_MAX], const char *logdir) {
  int n = snprintf(out, PATH_MAX, "%s/" CONSUMERS_DIR, logdir);
  return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

int sl_log_consumer_set(const char *logdir, const char *name, uint64_t txid) {
  char dir[PATH_MAX], text[32];
  int rc;
  if (!consumer_name_ok(name)) {
    sl_diag_error("%s: invalid consumer name \"%s\"", logdir, name);
    return SL_EINVAL;
  }
  if ((rc = consumer_dir(dir, logdir)) || (rc = sl_mkdir_p(dir))) return rc;
  int n = snprintf(text, sizeof text, "%" PRIu64 "\n", txid);
  return sl_write_file_atomic(dir, name, text, (size_t)n);
}

int sl_log_consumer_get(const char *logdir, const char *name, uint64_t *txid) {
  char path[PATH_MAX];
  uint8_t *buf;
  size_t len;
  if (!consumer_name_ok(name)) return SL_EINVAL;
  int n = snprintf(path, sizeof path, "%s/" CONSUMERS_DIR "/%s", logdir, name);
  if (n < 0 || n >= (int)sizeof path) return -ENAMETOOLONG;
  int rc = sl_read_file(path, 32, &buf, &len);
  if (rc) return rc == -ENOENT ? SL_ENOTFOUND : rc;
  uint64_t v = 0;
  size_t i = 0;
  bool overflow = false;
  for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
    unsigned d = (unsigned)(buf[i] - '0');
    overflow |= v > (UINT64_MAX - d) / 10;
    v = v * 10 + d;
  }
  if (overflow || i == 0 || i + 1 != len || buf[i] != '\n') {
    sl_diag_error("%s: not a consumer position (\"txid\\n\")", path);
    rc = SL_ECORRUPT;
  } else {
    *txid = v;
  }
  free(buf);
  return rc;
}

int sl_log_consumer_remove(const char *logdir, const char *name) {
  char dir[PATH_MAX], path[PATH_MAX];
  int rc;
  if (!consumer_name_ok(name)) return SL_EINVAL;
  if ((rc = consumer_dir(dir, logdir))) return rc;
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || n >= (int)sizeof path) return -ENAMETOOLONG;
  if (unlink(path)) {
    rc = -errno;
    if (rc == -ENOENT) return SL_ENOTFOUND;
    sl_diag_error("remove %s: %s", path, sl_strerror(rc));
    return rc;
  }
  return sl_fsync_dir(dir);
}

/* The lowest position of all consumers, or UINT64_MAX when there are none. */
static int consumers_min(const char *logdir, uint64_t *min) {
  char dir[PATH_MAX];
  int rc = consumer_dir(dir, logdir);
  *min = UINT64_MAX;
  if (rc) return rc;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    rc = -errno;
    sl_diag_error("open %s: %s", dir, sl_strerror(rc));
    return rc;
  }
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    uint64_t t;
    if (!consumer_name_ok(de->d_name)) continue;
    rc = sl_log_consumer_get(logdir, de->d_name, &t);
    if (rc == SL_ENOTFOUND) rc = 0; /* removed meanwhile */
    else if (!rc) *min = SL_MIN(*min, t);
  }
  closedir(d);
  return rc;
}

int sl_log_consumers_min(const char *logdir, uint64_t *min) { return consumers_min(logdir, min); }

static int consumer_cmp(const void *a, const void *b) {
  return strcmp(((const sl_log_consumer *)a)->name, ((const sl_log_consumer *)b)->name);
}

int sl_log_consumers_list(const char *logdir, sl_log_consumer **out, size_t *n) {
  char dir[PATH_MAX], path[PATH_MAX];
  sl_log_consumer *v = NULL;
  size_t cap = 0;
  int rc = consumer_dir(dir, logdir);
  *out = NULL;
  *n = 0;
  if (rc) return rc;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    rc = -errno;
    sl_diag_error("open %s: %s", dir, sl_strerror(rc));
    return rc;
  }
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    struct stat sb;
    uint64_t txid;
    if (!consumer_name_ok(de->d_name)) continue;
    rc = sl_log_consumer_get(logdir, de->d_name, &txid);
    if (!rc && sl_path_join(path, sizeof path, dir, de->d_name)) continue;
    if (rc == SL_ENOTFOUND || (!rc && stat(path, &sb))) { /* removed meanwhile */
      rc = 0;
      continue;
    }
    if (rc) break;
    if (*n == cap) {
      sl_log_consumer *nv = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof *v);
      if (!nv) {
        rc = -ENOMEM;
        break;
      }
      v = nv;
    }
    sl_log_consumer *c = &v[(*n)++];
    memcpy(c->name, de->d_name, strlen(de->d_name) + 1); /* consumer_name_ok: it fits */
    c->txid = txid;
    c->updated_us = (uint64_t)sb.st_mtim.tv_sec * 1000000u + (uint64_t)sb.st_mtim.tv_nsec / 1000u;
  }
  closedir(d);
  if (rc) {
    free(v);
    *n = 0;
    return rc;
  }
  if (*n) qsort(v, *n, sizeof *v, consumer_cmp);
  *out = v;
  return 0;
}

int sl_log_prune(sl_log *log, uint64_t checkpoint_txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  uint64_t limit;
  int removed = 0, rc;
  pthread_mutex_lock(&log->mu);
  rc = log->fail_code ? SL_EFAILED : 0;
  uint64_t active = log->segno;
  pthread_mutex_unlock(&log->mu);
  if (rc || (rc = consumers_min(log->dir, &limit)) || (rc = sl_log_list(log->dir, &segs, &n)))
    return rc;
  limit = SL_MIN(limit, checkpoint_txid);
  /* A segment's last txid is its successor's first txid - 1. */
  for (size_t i = 0; i + 1 < n && segs[i].segno < active && segs[i + 1].first_txid - 1 <= limit;
       i++) {
    if ((rc = sl_fault(SL_FAULT_LOG_UNLINK)) || (rc = unlink(segs[i].path) ? -errno : 0)) {
      sl_diag_error("remove %s: %s", segs[i].path, sl_strerror(rc));
      break;
    }
    removed++;
  }
  free(segs);
  if (removed) {
    int frc = sl_fault(SL_FAULT_LOG_DIR_FSYNC);
    if (frc) sl_diag_error("fsync directory %s: %s", log->dir, sl_strerror(frc));
    else frc = sl_fsync_dir(log->dir);
    if (!rc) rc = frc;
  }
  return rc ? rc : removed;
}
