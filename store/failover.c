/*
 * failover.c: the store's side of failover (lineage.h, "failover
 * operations"): copying a log with its history, finding where two logs
 * forked, and rewinding a store to a txid it shares with a new primary.
 *
 * Everything goes through the log's own API (store/log.h: list, readers,
 * checksums, sl_log_truncate): this file never parses or rewrites segment
 * bytes. A copy is byte for byte (copy_file_range), so the copy's rolling
 * checksums are the original's; every copied file is fsynced through the
 * fault layer (sl_fsync) and the directory after them.
 *
 * REWIND's order keeps the cut transactions before anything is cut: the
 * keep file is complete and durable (fsync, rename) before sl_log_truncate
 * runs, and LMDB -- derived from the log -- is removed only after the log
 * is cut, then rebuilt by opening the store. A crash between the cut and
 * the rebuild leaves an LMDB ahead of its log, which sl_store_open refuses
 * (SL_ECORRUPT) rather than trusting: running rewind again finishes it
 * (its target txid is then the log's end, nothing more is cut).
 */
#include "lineage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sl_base.h"
#include "store.h"

#define REWOUND_DIR "rewound"

/* ---- copying a log ---------------------------------------------------------------------- */

static int copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
  struct stat st;
  if (in < 0 || fstat(in, &st) != 0 ||
      (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    goto out;
  }
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
    if (n <= 0) {
      rc = n < 0 ? -errno : -EIO;
      goto out;
    }
    left -= n;
  }
  rc = sl_fsync(out);
out:
  if (rc) sl_diag_error("copy %s to %s: %s", from, to, sl_strerror(rc));
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return rc;
}

/* DIR/NAME into buf; a path too long for it becomes "", which every file
 * operation then refuses (ENOENT), rather than a truncated other path. */
static const char *join(char *buf, size_t len, const char *dir, const char *name) {
  if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len) buf[0] = 0;
  return buf;
}

int sl_log_copy(const char *from, const char *to) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  char dst[4096], src[4096];
  sl_history h;
  int rc = sl_log_list(from, &segs, &n);
  if (rc || (rc = sl_mkdir_p(to))) goto out;
  for (size_t i = 0; i < n && !rc; i++) {
    const char *base = strrchr(segs[i].path, '/');
    rc = copy_file(segs[i].path, join(dst, sizeof dst, to, base ? base + 1 : segs[i].path));
  }
  if (!rc)
    rc = copy_file(join(src, sizeof src, from, SL_DURABLE_MARK_FILE), join(dst, sizeof dst, to, SL_DURABLE_MARK_FILE));
  if (!rc) rc = sl_history_load(from, &h);
  if (!rc && h.n) rc = sl_history_save(to, &h);
  if (!rc) rc = sl_fsync_dir(to);
out:
  free(segs);
  return rc;
}

/* ---- the fork of two logs ----------------------------------------------------------------- */

int sl_log_find_fork(const char *mine, const char *theirs, uint64_t *fork, uint64_t *my_last) {
  sl_seg_info *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  sl_log_reader *ra = NULL, *rb = NULL;
  uint64_t their_last = 0, cs_a, cs_b;
  sl_frame fa, fb;
  int rc;
  if ((rc = sl_log_list(mine, &a, &na)) || (rc = sl_log_list(theirs, &b, &nb)) ||
      (rc = sl_log_read_durable_mark(mine, my_last)) || (rc = sl_log_read_durable_mark(theirs, &their_last)))
    goto out;
  if (!na || !nb) {
    rc = SL_ENOTFOUND;
    goto out;
  }
  uint64_t start = SL_MAX(a[0].first_txid, b[0].first_txid);
  *fork = start - 1;
  if ((rc = sl_log_checksum_at(mine, start - 1, &cs_a)) || (rc = sl_log_checksum_at(theirs, start - 1, &cs_b)))
    goto out;
  if (cs_a != cs_b) {
    sl_diag_error("%s and %s differ already before txid %" PRIu64 ", where both begin", mine, theirs, start);
    rc = SL_EINVAL;
    goto out;
  }
  uint64_t end = SL_MIN(*my_last, their_last);
  if (end < start) goto out;
  sl_log_reader_options oa = {.max_txid = end}, ob = {.max_txid = end};
  if ((rc = sl_log_reader_open(mine, start, &oa, &ra)) || (rc = sl_log_reader_open(theirs, start, &ob, &rb))) goto out;
  while ((rc = sl_log_reader_next(ra, &fa)) == 0 && (rc = sl_log_reader_next(rb, &fb)) == 0 &&
         fa.checksum == fb.checksum)
    *fork = fa.txid;
  if (rc == SL_EEND) rc = 0;
out:
  sl_log_reader_close(ra);
  sl_log_reader_close(rb);
  free(a);
  free(b);
  return rc;
}

/* ---- rewind ------------------------------------------------------------------------------- */

/* Txids from..last of logdir through o->keep into path (via path.tmp,
 * fsynced and renamed: a failure leaves no file). */
static int keep_cut(const char *logdir, uint64_t from, uint64_t last, const sl_rewind_options *o, const char *path) {
  sl_log_reader_options ro = {.max_txid = last};
  sl_log_reader *r = NULL;
  sl_frame f;
  char tmp[4200];
  FILE *out = NULL;
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  /* 0600: the cut transactions hold graph data (README "Security"). */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc = 0;
  if (fd < 0 || !(out = fdopen(fd, "w"))) {
    rc = -errno;
    if (fd >= 0) close(fd);
    sl_diag_error("%s: cannot create: %s", tmp, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_log_reader_open(logdir, from, &ro, &r)) == 0) {
    while ((rc = sl_log_reader_next(r, &f)) == 0 && (rc = o->keep(o->keep_arg, &f, out)) == 0) continue;
    if (rc == SL_EEND) rc = 0;
  }
  sl_log_reader_close(r);
  if (!rc && fflush(out) != 0) rc = errno ? -errno : -EIO;
  if (!rc) rc = sl_fsync(fileno(out));
  if (fclose(out) != 0 && !rc) rc = errno ? -errno : -EIO;
  if (!rc && rename(tmp, path) != 0) rc = -errno;
  if (rc) {
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    unlink(tmp);
  }
  return rc;
}

int sl_store_rewind(const char *dir, uint64_t to, const sl_rewind_options *o, sl_rewind_result *out) {
  char logdir[4096], keepdir[4096], p[4096];
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  sl_log *log = NULL;
  sl_store *st;
  int lock = -1, rc;
  uint64_t last = 0;
  memset(out, 0, sizeof *out);
  join(logdir, sizeof logdir, dir, "log");
  /* Recovery first: what a killed primary appended counts as its own. */
  if ((rc = sl_store_lock_unshipped(dir, &lock)) || (rc = sl_log_open(logdir, NULL, &log))) goto out;
  sl_log_close(log);
  if ((rc = sl_log_list(logdir, &segs, &nseg))) goto out;
  uint64_t first = nseg ? segs[0].first_txid : 0;
  free(segs);
  if (first != 1) {
    sl_diag_error("%s: the log begins at txid %" PRIu64 ", not 1, so the state cannot be rebuilt from it: restore "
                 "the store from the new primary's stream instead (shiplog restore --data DIR --stream NAME "
                 "--to-txid N --in-place %s)", dir, first, dir);
    rc = SL_EINVAL;
    goto out;
  }
  if ((rc = sl_log_read_durable_mark(logdir, &last))) goto out;
  out->last_txid = last;
  if (to > last) {
    sl_diag_error("%s: the log ends at txid %" PRIu64 ", before txid %" PRIu64, dir, last, to);
    rc = SL_EINVAL;
    goto out;
  }
  if (to < last) {
    if (!o || !o->keep) {
      sl_diag_error("%s: txids %" PRIu64 "..%" PRIu64 " would be cut and not kept", dir, to + 1, last);
      rc = SL_EINVAL;
      goto out;
    }
    join(keepdir, sizeof keepdir, dir, REWOUND_DIR);
    if (snprintf(out->kept, sizeof out->kept, "%s/txids-%" PRIu64 "-%" PRIu64 ".jsonl", keepdir, to + 1, last) >=
        (int)sizeof out->kept) {
      sl_diag_error("%s: path too long", keepdir);
      rc = -ENAMETOOLONG;
    }
    if (rc || (rc = sl_mkdir_p(keepdir)) || (rc = keep_cut(logdir, to + 1, last, o, out->kept))) {
      out->kept[0] = 0;
      goto out;
    }
  }
  if ((rc = sl_log_truncate(logdir, to))) goto out;
  /* LMDB holds the cut transactions: rebuilt from the log on open. */
  if ((unlink(join(p, sizeof p, dir, "data.mdb")) && errno != ENOENT) ||
      (unlink(join(p, sizeof p, dir, "lock.mdb")) && errno != ENOENT)) {
    rc = -errno;
    sl_diag_error("%s: %s", p, sl_strerror(rc));
    goto out;
  }
  close(lock);
  lock = -1;
  if ((rc = sl_store_open(dir, 0, &st))) {
    sl_diag_error("%s: cannot open store: %s", dir, sl_strerror(rc));
    goto out;
  }
  sl_store_close(st);
out:
  if (lock >= 0) close(lock);
  return rc;
}
