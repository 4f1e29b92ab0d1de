/*
 * cmd_failover.c: `shiplog promote`, `shiplog rewind` and `shiplog log
 * --diverged` (README "Failover"; the rules: store/lineage.h). Flags and
 * messages only: promote and seeding a stream are receiver/failover.h's,
 * rewind and the fork of two logs store/lineage.h's, and the data
 * directory's layout receiver.h's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "codec.h"
#include "failover.h"
#include "interchange.h"
#include "lineage.h"
#include "log.h"
#include "receiver.h"
#include "sl_base.h"
#include "sl_status.h"

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
  sl_promote_result res;
  int c;
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
  if (sl_promote(data, stream, into, &res)) return CLI_FAIL;
  /* An empty archive promotes too: the new primary is the stream's store
   * with nothing in it yet, and the old primary is fenced off all the same. */
  if (res.last_txid)
    printf("promoted stream %s: epoch %" PRIu64 " begins at txid %" PRIu64 " (the archive held 1..%" PRIu64
           ", all of it in the new primary)\n", stream, res.epoch, res.last_txid + 1, res.last_txid);
  else printf("promoted stream %s: epoch %" PRIu64 " begins at txid 1 (the archive was empty: so is the new primary)\n",
              stream, res.epoch);
  printf("new primary: %s\n"
         "the receiver now refuses the old primary; ship the new one with\n"
         "  shiplog ship %s --to HOST:PORT --stream %s ...\n",
         res.into, res.into, stream);
  return CLI_OK;
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

/* sl_store_rewind's keep: a cut transaction as a `shiplog log --json` line. */
static int keep_json(void *arg, const sl_frame *f, FILE *out) {
  (void)arg;
  return sl_txn_print(f->payload, f->payload_len, true, out);
}

int cmd_rewind(int argc, char **argv) {
  static const struct option opts[] = {{"to-txid", required_argument, NULL, 't'},
                                       {"standby-data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  uint64_t to = 0;
  bool has_to = false;
  const char *data = NULL, *stream = NULL;
  char logdir[4096];
  char **pos;
  int c, rc;
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
  sl_rewind_options ro = {.keep = keep_json};
  sl_rewind_result res;
  if (data && (rc = sl_stream_seed_check(data, stream))) goto out; /* before anything is cut */
  if ((rc = sl_store_rewind(store, to, &ro, &res))) goto out;
  if (data && (rc = sl_stream_seed(data, stream, cli_join(logdir, sizeof logdir, store, "log")))) goto out;
  printf("rewound %s to txid %" PRIu64 "\n", store, to);
  if (res.kept[0]) printf("txids %" PRIu64 "..%" PRIu64 " were cut and are kept in %s\n", to + 1, res.last_txid, res.kept);
  if (data)
    printf("stream %s of %s now holds this history: start its receiver and ship the new primary to it as "
           "stream %s\n", stream, data, stream);
out:
  if (rc) sl_diag_error("rewind %s to txid %" PRIu64 ": %s", store, to, sl_strerror(rc));
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- log --diverged ---------------------------------------------------------------------- */

int cli_log_diverged(const char *store, const char *data, const char *stream, bool json) {
  char mine[4096], theirs[4200];
  uint64_t fork = 0, last = 0;
  if (!sl_stream_name_valid(stream)) return cli_usage("log", "invalid stream name '%s'", stream);
  cli_join(mine, sizeof mine, store, "log");
  sl_stream_path(theirs, sizeof theirs, data, stream, SL_STREAM_ARCHIVE);
  int rc = sl_log_find_fork(mine, theirs, &fork, &last);
  if (rc) {
    sl_diag_error("%s: cannot compare with stream %s of %s: %s", store, stream, data, sl_strerror(rc));
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
  if (rc) sl_diag_error("%s: %s", mine, sl_strerror(rc));
  return rc ? CLI_FAIL : CLI_OK;
}
