/*
 * failover.c: promote and stream seeding (failover.h) on a receiver's data
 * directory, laid out and locked through layout.c's helpers (receiver.h),
 * with the store's side (copying a log) from store/lineage.h.
 *
 * Both hold the receiver's lock for their whole run: the archive must stand
 * still while it is fenced and copied (promote), and no receiver may load a
 * stream while it is being built (seeding). A held lock is the operator's
 * to clear (stop the receiver; its shippers retry until it is back), so it
 * is refused at once, never waited for.
 */
#include "failover.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "lineage.h"
#include "log.h"
#include "pitr.h"
#include "receiver.h"
#include "receiver_int.h"
#include "sl_status.h"
#include "sl_base.h"

static const char *join(char *buf, size_t len, const char *dir, const char *name) {
  snprintf(buf, len, "%s/%s", dir, name);
  return buf;
}

/* Take DIR's receiver lock for a failover step, saying why on SL_ELOCKED. */
static int lock_receiver(const char *data_dir, int *fd_out) {
  int rc = sl_receiver_lock(data_dir, fd_out);
  if (rc == SL_ELOCKED)
    sl_diag_error("%s/%s: a receiver is serving %s: stop it first (promote needs the archive to stand still; "
                 "its shippers retry until it is back)", data_dir, SL_RECEIVER_LOCK_FILE, data_dir);
  return rc;
}

/* ---- promote ---------------------------------------------------------------------------- */

/* The folder that holds path (for its fsync after a rename). */
static void parent_of(const char *path, char *out, size_t len) {
  const char *slash = strrchr(path, '/');
  snprintf(out, len, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1, slash ? path : ".");
}

int sl_promote(const char *data_dir, const char *stream, const char *into, sl_promote_result *out) {
  char sdir[4096], archive[4096], newlog[4400], text[4200], tmp[4300], parent[4300];
  sl_log *log = NULL;
  int lock = -1, rc;
  bool built = false, placed = false, fenced = false;
  uint64_t last = 0, epoch = 0;
  memset(out, 0, sizeof *out);
  if (!sl_stream_name_valid(stream)) {
    sl_diag_error("invalid stream name '%s'", stream);
    return SL_EINVAL;
  }
  sl_stream_path(sdir, sizeof sdir, data_dir, stream, NULL);
  sl_stream_path(archive, sizeof archive, data_dir, stream, SL_STREAM_ARCHIVE);
  if ((into ? snprintf(out->into, sizeof out->into, "%s", into)
            : snprintf(out->into, sizeof out->into, "%s/primary", sdir)) >= (int)sizeof out->into) {
    sl_diag_error("%s: path too long", into ? into : sdir);
    return -ENAMETOOLONG;
  }
  into = out->into;
  size_t il = strlen(into);
  while (il > 1 && into[il - 1] == '/') il--;
  snprintf(tmp, sizeof tmp, "%.*s.promote-tmp-%d", (int)il, into, (int)getpid());
  parent_of(tmp, parent, sizeof parent);
  if (access(archive, F_OK) != 0) {
    sl_diag_error("%s: no stream %s in this data directory", data_dir, stream);
    return SL_ENOTFOUND;
  }
  if ((rc = lock_receiver(data_dir, &lock))) return rc;
  /* 1: the archive, recovered: everything in it is durable. */
  if ((rc = sl_log_open(archive, NULL, &log))) goto out;
  last = sl_log_next_txid(log) - 1;
  epoch = sl_log_epoch(log) + 1;
  uint64_t cs = sl_log_checksum(log);
  /* 2: the new primary's state at R, built beside INTO before anything is
   * fenced: a promote that fails here (INTO not empty, no base, a full
   * disk) leaves the stream as it was and the old primary may ship on. It
   * fenced first and then failed, which refused the old primary with no
   * new one, and said nothing of the fence. */
  if ((rc = sl__restore_target_free(into))) goto out;
  sl_remove_tree(tmp); /* a leftover of a killed promote with our pid */
  sl_restore_options ro = {.data_dir = data_dir, .stream = stream, .txid = last, .into = tmp};
  sl_restore_result res;
  if ((rc = sl_restore(&ro, &res))) goto out;
  built = true;
  /* 3: the fence. Until INTO appears (step 4) no new primary exists, so
   * there is never one beside an unfenced old primary. */
  if ((rc = sl_log_begin_epoch(log, epoch))) goto out;
  fenced = true;
  /* 4: the new primary's log is the archive's (its history included), then it goes into place. */
  snprintf(newlog, sizeof newlog, "%s/log", tmp);
  if ((rc = sl_remove_tree(newlog)) || (rc = sl_log_copy(archive, newlog))) goto out;
  if (rename(tmp, into) != 0) {
    rc = -errno;
    sl_diag_error("%s: cannot rename to %s: %s", tmp, into, sl_strerror(rc));
    goto out;
  }
  placed = true;
  if ((rc = sl_fsync_dir(parent))) goto out;
  /* 5: the record. */
  int n = snprintf(text, sizeof text, "epoch=%" PRIu64 "\ntxid=%" PRIu64 "\nchecksum=%016" PRIx64 "\ntime_us=%" PRIu64
                   "\ninto=%s\n", epoch, last, cs, sl_now_us(), into);
  if ((rc = sl_write_file_atomic(sdir, SL_STREAM_PROMOTED, text, (size_t)n))) goto out;
  built = placed = false;
  out->epoch = epoch;
  out->last_txid = last;
  out->checksum = cs;
out:
  if (rc) sl_diag_error("promote %s in %s: %s", stream, data_dir, sl_strerror(rc));
  if (rc && fenced)
    sl_diag_error("stream %s is fenced all the same: epoch %" PRIu64 " begins at txid %" PRIu64 " in %s, so the "
                 "receiver refuses the old primary from now on, and no new primary was left: run promote again",
                 stream, epoch, last + 1, archive);
  if (placed) sl_remove_tree(into);
  else if (built) sl_remove_tree(tmp);
  sl_log_close(log);
  if (lock >= 0) close(lock);
  return rc;
}

/* ---- seeding a stream ---------------------------------------------------------------------- */

static int seed_free(const char *data_dir, const char *stream) {
  char final[4200];
  if (!sl_stream_name_valid(stream)) {
    sl_diag_error("invalid stream name '%s'", stream);
    return SL_EINVAL;
  }
  sl_stream_path(final, sizeof final, data_dir, stream, NULL);
  if (access(final, F_OK) == 0) {
    sl_diag_error("%s: stream %s exists already", data_dir, stream);
    return SL_EEXIST;
  }
  return 0;
}

int sl_stream_seed_check(const char *data_dir, const char *stream) {
  int lock = -1, rc = seed_free(data_dir, stream);
  if (rc == 0 && access(data_dir, F_OK) == 0 && (rc = lock_receiver(data_dir, &lock)) == 0) close(lock);
  return rc;
}

int sl_stream_seed(const char *data_dir, const char *stream, const char *logdir) {
  char streams[4096], tmp[4200], final[4200], p[4300];
  int lock = -1, rc;
  if ((rc = seed_free(data_dir, stream))) return rc;
  sl_stream_path(streams, sizeof streams, data_dir, NULL, NULL);
  snprintf(tmp, sizeof tmp, "%s/%s" SL__NEW_SUFFIX, streams, stream);
  sl_stream_path(final, sizeof final, data_dir, stream, NULL);
  if ((rc = sl_mkdir_p(streams)) || (rc = lock_receiver(data_dir, &lock))) return rc;
  /* The receiver refuses a data directory others may write (receiver.h). */
  chmod(data_dir, 0700);
  chmod(streams, 0700);
  if ((rc = sl_remove_tree(tmp)) || (rc = sl_mkdir_p(join(p, sizeof p, tmp, SL_STREAM_SNAPSHOTS))) ||
      (rc = sl_log_copy(logdir, join(p, sizeof p, tmp, SL_STREAM_ARCHIVE))))
    goto out;
  if (rename(tmp, final) != 0) {
    rc = -errno;
    sl_diag_error("rename %s to %s: %s", tmp, final, sl_strerror(rc));
    goto out;
  }
  rc = sl_fsync_dir(streams);
out:
  if (rc) sl_remove_tree(tmp);
  close(lock);
  return rc;
}
