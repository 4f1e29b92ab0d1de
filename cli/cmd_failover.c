/*
 * cmd_failover.c: `shiplog promote`, `shiplog rewind` and `shiplog log
 * --diverged` (README "Failover"; the rules: store/lineage.h).
 *
 * PROMOTE runs while no receiver serves the data directory (it takes the
 * receiver's lock for its whole run, so none starts meanwhile): then the
 * archive stands still and everything in it is durable and acknowledged.
 * Order, so that no acknowledged transaction is lost and the old primary
 * can never write on:
 *   1. open the archive (recovery: R = its last txid, all durable);
 *   2. record epoch E+1 starting at R+1 in the archive's history: from now
 *      on the receiver refuses the old primary's history (behind or
 *      diverged) -- the fence comes before the new primary exists;
 *   3. build the new primary: the state at R (sl_restore: newest snapshot +
 *      archive replay), its log replaced by a copy of the archive (same
 *      bytes, so the same rolling checksums) and the archive's history;
 *   4. DIR/streams/NAME/promoted records when, where and which epoch.
 * The stream's standby stays a standby: when the new primary ships to the
 * same stream it continues the archive, and the standby follows it.
 *
 * REWIND cuts a store's log after txid N. The transactions after N are
 * first written to STORE/rewound/txids-A-B.jsonl (shiplog log --json
 * lines: `shiplog exec` can re-apply their ops), then the log is cut, the
 * history forgets the epochs after N and LMDB is rebuilt from the log
 * (which must begin at txid 1). With --standby-data DIR --stream NAME, the
 * rewound log also seeds stream NAME of the receiver data directory DIR
 * (which must not have it, and whose receiver must be stopped): started
 * there, the receiver builds the stream's standby from it and accepts the
 * new primary's stream as its continuation -- the old primary's host now
 * holds a standby of the new primary.
 *
 * LOG --DIVERGED compares STORE's log with the stream's archive frame by
 * frame (rolling checksums) and prints the transactions after the last
 * shared txid that only STORE has.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "interchange.h"
#include "lineage.h"
#include "pitr.h"
#include "sl_base.h"
#include "sl_status.h"

#define RECEIVER_LOCK "receiver.lock"
#define PROMOTED_FILE "promoted"

/* Take DIR's receiver lock: no receiver runs on DIR while we hold it. */
static int lock_receiver(const char *data_dir, int *fd_out) {
  char p[4096];
  cli_join(p, sizeof p, data_dir, RECEIVER_LOCK);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int rc = -errno;
    sl_log_error("%s: %s", p, sl_strerror(rc));
    return rc;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    sl_log_error("%s: a receiver is serving %s: stop it first (promote needs the archive to stand still; "
                 "its shippers retry until it is back)", p, data_dir);
    close(fd);
    return SL_ELOCKED;
  }
  *fd_out = fd;
  return 0;
}

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
  if (fsync(out) != 0) rc = -errno;
out:
  if (rc) sl_log_error("copy %s to %s: %s", from, to, sl_strerror(rc));
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return rc;
}

/* A copy of log directory FROM (segments, durable mark, history) as TO. */
static int copy_log(const char *from, const char *to) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  char dst[4096], src[4096];
  sl_history h;
  int rc = sl_log_list(from, &segs, &n);
  if (rc || (rc = sl_mkdir_p(to))) goto out;
  for (size_t i = 0; i < n && !rc; i++) {
    const char *base = strrchr(segs[i].path, '/');
    rc = copy_file(segs[i].path, cli_join(dst, sizeof dst, to, base ? base + 1 : segs[i].path));
  }
  if (!rc) rc = copy_file(cli_join(src, sizeof src, from, "durable"), cli_join(dst, sizeof dst, to, "durable"));
  if (!rc) rc = sl_history_load(from, &h);
  if (!rc && h.n) rc = sl_history_save(to, &h);
  if (!rc) rc = sl_fsync_dir(to);
out:
  free(segs);
  return rc;
}

/* ---- promote ---------------------------------------------------------------------------- */

static const char promote_help[] =
    "Usage: shiplog promote --data DIR --stream NAME [--into NEW_DIR]\n"
    "\n"
    "Make a copy of stream NAME's standby a writable primary in a new epoch that\n"
    "starts after the archive's last txid (every acknowledged transaction is in\n"
    "it), and record the promotion in the stream, so that the receiver refuses\n"
    "the old primary from then on (behind or diverged). The receiver serving DIR\n"
    "must be stopped while promote runs. The stream's standby stays a standby:\n"
    "ship the new primary to the same stream and it continues the archive.\n"
    "\n"
    "  --into NEW_DIR   where the new primary goes (missing or empty);\n"
    "                   default DIR/streams/NAME/primary\n";

int cmd_promote(int argc, char **argv) {
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"into", required_argument, NULL, 'i'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *data = NULL, *stream = NULL, *into = NULL;
  char sdir[4096], archive[4096], into_buf[4096], newlog[4096], text[4200];
  sl_log *log = NULL;
  int lock = -1, c, rc;
  bool built = false;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(promote_help);
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    case 'i': into = optarg; break;
    default: return cli_usage("promote", NULL);
    }
  }
  if (!data || !stream) return cli_usage("promote", "--data and --stream are required");
  if (!sl_stream_name_valid(stream)) return cli_usage("promote", "invalid stream name '%s'", stream);
  if (optind < argc) return cli_usage("promote", "unexpected argument '%s'", argv[optind]);
  snprintf(sdir, sizeof sdir, "%s/streams/%s", data, stream);
  cli_join(archive, sizeof archive, sdir, "archive");
  if (!into) into = cli_join(into_buf, sizeof into_buf, sdir, "primary");
  if (access(archive, F_OK) != 0) {
    sl_log_error("%s: no stream %s in this data directory", data, stream);
    return CLI_FAIL;
  }
  if ((rc = lock_receiver(data, &lock))) return CLI_FAIL;
  if ((rc = sl_log_open(archive, NULL, &log))) goto out;
  uint64_t last = sl_log_next_txid(log) - 1, cs = sl_log_checksum(log), epoch = sl_log_epoch(log) + 1;
  /* 2: the fence. */
  if ((rc = sl_log_begin_epoch(log, epoch))) goto out;
  /* 3: the new primary. */
  sl_restore_options ro = {.data_dir = data, .stream = stream, .txid = last, .into = into};
  sl_restore_result res;
  if ((rc = sl_restore(&ro, &res))) goto out;
  built = true;
  cli_join(newlog, sizeof newlog, into, "log");
  if ((rc = sl_remove_tree(newlog)) || (rc = copy_log(archive, newlog))) goto out;
  int n = snprintf(text, sizeof text, "epoch=%" PRIu64 "\ntxid=%" PRIu64 "\nchecksum=%016" PRIx64 "\ntime_us=%" PRIu64
                   "\ninto=%s\n", epoch, last, cs, sl_now_us(), into);
  if ((rc = sl_write_file_atomic(sdir, PROMOTED_FILE, text, (size_t)n))) goto out;
  built = false;
  /* An empty archive promotes too: the new primary is the stream's store
   * with nothing in it yet, and the old primary is fenced off all the same. */
  if (last) printf("promoted stream %s: epoch %" PRIu64 " begins at txid %" PRIu64 " (the archive held 1..%" PRIu64
                   ", all of it in the new primary)\n", stream, epoch, last + 1, last);
  else printf("promoted stream %s: epoch %" PRIu64 " begins at txid 1 (the archive was empty: so is the new primary)\n",
              stream, epoch);
  printf("new primary: %s\n"
         "the receiver now refuses the old primary; ship the new one with\n"
         "  shiplog ship %s --to HOST:PORT --stream %s ...\n",
         into, into, stream);
out:
  if (rc) sl_log_error("promote %s in %s: %s", stream, data, sl_strerror(rc));
  if (built) sl_remove_tree(into);
  sl_log_close(log);
  if (lock >= 0) close(lock);
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- rewind ------------------------------------------------------------------------------ */

static const char rewind_help[] =
    "Usage: shiplog rewind STORE --to-txid N [--standby-data DIR --stream NAME]\n"
    "\n"
    "Cut STORE's log after txid N (a txid it shares with the new primary: see\n"
    "`shiplog log STORE --diverged`), so that it can follow the new primary.\n"
    "The cut transactions are kept in STORE/rewound/txids-A-B.jsonl (the path is\n"
    "printed; `shiplog exec` can re-apply their ops); the state is rebuilt from\n"
    "the log, which must begin at txid 1. STORE must not be open.\n"
    "\n"
    "  --standby-data DIR --stream NAME\n"
    "                   then seed stream NAME of receiver data directory DIR\n"
    "                   (its receiver stopped) with the rewound log: started,\n"
    "                   the receiver builds the standby from it, and the new\n"
    "                   primary's stream NAME continues it\n";

/* Write txids from..last of logdir as JSON Lines to path. */
static int keep_cut(const char *logdir, uint64_t from, uint64_t last, const char *path) {
  sl_log_reader_options ro = {.max_txid = last};
  sl_log_reader *r = NULL;
  sl_frame f;
  cli_out o;
  int rc = cli_out_open(&o, path);
  if (rc) return rc;
  if ((rc = sl_log_reader_open(logdir, from, &ro, &r)) == 0) {
    while ((rc = sl_log_reader_next(r, &f)) == 0 && (rc = sl_txn_print(f.payload, f.payload_len, true, o.f)) == 0)
      continue;
    if (rc == SL_EEND) rc = 0;
  }
  sl_log_reader_close(r);
  if (rc) cli_out_abort(&o);
  else rc = cli_out_commit(&o);
  return rc;
}

/* Build DIR/streams/NAME from logdir, as stream.c would (NAME~new, renamed). */
static int seed_stream(const char *logdir, const char *data, const char *stream) {
  char streams[4096], tmp[4200], final[4200], p[4300];
  int lock = -1, rc;
  cli_join(streams, sizeof streams, data, "streams");
  snprintf(tmp, sizeof tmp, "%s/%s~new", streams, stream);
  snprintf(final, sizeof final, "%s/%s", streams, stream);
  if (access(final, F_OK) == 0) {
    sl_log_error("%s: stream %s exists already", data, stream);
    return SL_EEXIST;
  }
  if ((rc = sl_mkdir_p(streams)) || (rc = lock_receiver(data, &lock))) return rc;
  chmod(data, 0700);
  chmod(streams, 0700);
  if ((rc = sl_remove_tree(tmp)) || (rc = sl_mkdir_p(cli_join(p, sizeof p, tmp, "snapshots"))) ||
      (rc = copy_log(logdir, cli_join(p, sizeof p, tmp, "archive"))))
    goto out;
  if (rename(tmp, final) != 0) {
    rc = -errno;
    sl_log_error("rename %s to %s: %s", tmp, final, sl_strerror(rc));
    goto out;
  }
  rc = sl_fsync_dir(streams);
out:
  if (rc) sl_remove_tree(tmp);
  close(lock);
  return rc;
}

int cmd_rewind(int argc, char **argv) {
  static const struct option opts[] = {{"to-txid", required_argument, NULL, 't'},
                                       {"standby-data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  uint64_t to = 0, last = 0;
  bool has_to = false;
  const char *data = NULL, *stream = NULL;
  char logdir[4096], keepdir[4096], keep[4300], p[4096];
  char **pos;
  int c, rc, lock = -1;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(rewind_help);
    case 't':
      if (cli_parse_u64("rewind", "to-txid", optarg, &to)) return CLI_USAGE;
      has_to = true;
      break;
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    default: return cli_usage("rewind", NULL);
    }
  }
  if (cli_positional(argc, argv, "rewind", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  if (!has_to) return cli_usage("rewind", "--to-txid N is required");
  if (!data != !stream) return cli_usage("rewind", "--standby-data and --stream go together");
  if (stream && !sl_stream_name_valid(stream)) return cli_usage("rewind", "invalid stream name '%s'", stream);
  const char *store = pos[0];
  cli_join(logdir, sizeof logdir, store, "log");
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  sl_log *log = NULL;
  /* Recovery first: what a killed primary appended counts as its own. */
  if ((rc = sl_store_lock_unused(store, &lock)) || (rc = sl_log_open(logdir, NULL, &log))) goto out;
  sl_log_close(log);
  if ((rc = sl_log_list(logdir, &segs, &nseg))) goto out;
  uint64_t first = nseg ? segs[0].first_txid : 0;
  free(segs);
  if (first != 1) {
    sl_log_error("%s: the log begins at txid %" PRIu64 ", not 1, so the state cannot be rebuilt from it: restore "
                 "the store from the new primary's stream instead (shiplog restore --data DIR --stream NAME "
                 "--to-txid N --in-place %s)", store, first, store);
    rc = SL_EINVAL;
    goto out;
  }
  if ((rc = sl_log_read_durable_mark(logdir, &last))) goto out;
  if (to > last) {
    sl_log_error("%s: the log ends at txid %" PRIu64 ", before txid %" PRIu64, store, last, to);
    rc = SL_EINVAL;
    goto out;
  }
  keep[0] = 0;
  if (to < last) {
    cli_join(keepdir, sizeof keepdir, store, "rewound");
    snprintf(keep, sizeof keep, "%s/txids-%" PRIu64 "-%" PRIu64 ".jsonl", keepdir, to + 1, last);
    if ((rc = sl_mkdir_p(keepdir)) || (rc = keep_cut(logdir, to + 1, last, keep))) goto out;
  }
  if ((rc = sl_log_truncate(logdir, to))) goto out;
  /* LMDB holds the cut transactions: rebuilt from the log on open. */
  if ((unlink(cli_join(p, sizeof p, store, "data.mdb")) && errno != ENOENT) ||
      (unlink(cli_join(p, sizeof p, store, "lock.mdb")) && errno != ENOENT)) {
    rc = -errno;
    sl_log_error("%s: %s", p, sl_strerror(rc));
    goto out;
  }
  close(lock);
  lock = -1;
  sl_store *st;
  if ((rc = cli_open_store(store, 0, &st))) goto out;
  sl_store_close(st);
  if (data && (rc = seed_stream(logdir, data, stream))) goto out;
  printf("rewound %s to txid %" PRIu64 "\n", store, to);
  if (keep[0]) printf("txids %" PRIu64 "..%" PRIu64 " were cut and are kept in %s\n", to + 1, last, keep);
  if (data)
    printf("stream %s of %s now holds this history: start its receiver and ship the new primary to it as "
           "stream %s\n", stream, data, stream);
out:
  if (rc) sl_log_error("rewind %s to txid %" PRIu64 ": %s", store, to, sl_strerror(rc));
  if (lock >= 0) close(lock);
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- log --diverged ---------------------------------------------------------------------- */

/* The last txid STORE's log (mine) shares with the archive, and mine's end. */
static int find_fork(const char *mine, const char *theirs, uint64_t *fork, uint64_t *my_last) {
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
    sl_log_error("%s and %s differ already before txid %" PRIu64 ", where both begin", mine, theirs, start);
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

int cli_log_diverged(const char *store, const char *data, const char *stream, bool json) {
  char mine[4096], theirs[4200];
  uint64_t fork = 0, last = 0;
  if (!sl_stream_name_valid(stream)) return cli_usage("log", "invalid stream name '%s'", stream);
  cli_join(mine, sizeof mine, store, "log");
  snprintf(theirs, sizeof theirs, "%s/streams/%s/archive", data, stream);
  int rc = find_fork(mine, theirs, &fork, &last);
  if (rc) {
    sl_log_error("%s: cannot compare with stream %s of %s: %s", store, stream, data, sl_strerror(rc));
    return CLI_FAIL;
  }
  if (fork >= last) {
    fprintf(stderr, "shiplog: %s has no transactions that stream %s lacks (they share txids up to %" PRIu64 ")\n",
            store, stream, fork);
    return CLI_OK;
  }
  fprintf(stderr, "shiplog: %s and stream %s share txids up to %" PRIu64 "; txids %" PRIu64 "..%" PRIu64
          " exist only in %s (shiplog rewind %s --to-txid %" PRIu64 " cuts them off, keeping them in a file)\n",
          store, stream, fork, fork + 1, last, store, store, fork);
  sl_log_reader_options ro = {.max_txid = last};
  sl_log_reader *r;
  sl_frame f;
  if ((rc = sl_log_reader_open(mine, fork + 1, &ro, &r)) == 0) {
    while ((rc = sl_log_reader_next(r, &f)) == 0 && (rc = sl_txn_print(f.payload, f.payload_len, json, stdout)) == 0)
      continue;
    sl_log_reader_close(r);
  }
  if (rc == SL_EEND) rc = 0;
  if (fflush(stdout) != 0 && !rc) rc = -errno;
  if (rc) sl_log_error("%s: %s", mine, sl_strerror(rc));
  return rc ? CLI_FAIL : CLI_OK;
}
