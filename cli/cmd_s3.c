/*
 * Object storage on the command line (spec/cli.md; README "Object
 * storage"): `restore --from s3://BUCKET/PREFIX`, `dump STORE --to
 * s3://BUCKET/KEY` and `load s3://BUCKET/KEY`.
 *
 * restore --from is its own command (receiver/s3.h, sl_restore_s3): it has
 * no data directory, and cmd_restore hands over when --from is given.
 * dump and load (cmd_backup.c) stay what they are and only move the file
 * through a scratch file of cli_scratch_file: dump writes its file in
 * $TMPDIR and uploads it once complete, load fetches the object there and
 * loads that file; the transfers, checked by size and CRC32C, are the
 * backup module's (backup/dump_s3.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "s3.h"
#include "sl_base.h"

/* ---- restore --from ------------------------------------------------------------------ */
static const char restore_s3_help[] =
    "Usage: shiplog restore --from s3://BUCKET/PREFIX --stream NAME\n"
    "                       (--to-time TIME | --to-txid N) --into NEW_DIR\n"
    "                       [--s3-endpoint URL] [--s3-region R] [--parallel N]\n"
    "                       [--quiet] [--json]\n"
    "\n"
    "Build the state of stream NAME at a time or txid from what a receiver run\n"
    "with --archive-to s3://BUCKET/PREFIX uploaded, with no data directory: the\n"
    "stream's manifest names the snapshots and sealed segments there. The base\n"
    "snapshot and the segments are fetched N at a time while the base loads and\n"
    "the segments replay; every object is checked against the manifest (size and\n"
    "CRC32C), and a missing or damaged one fails the restore, naming it. What the\n"
    "receiver has not sealed yet (its newest segment) is not in object storage.\n"
    "\n"
    "  --to-time TIME     every transaction committed at or before TIME (ISO-8601\n"
    "                     with a zone, a date alone for midnight UTC, or\n"
    "                     @SECONDS[.FRACTION])\n"
    "  --to-txid N        txids 1..N\n"
    "  --from s3://BUCKET/PREFIX  where the receiver archived to\n"
    "  --s3-endpoint URL  the S3 server (default $SL_S3_ENDPOINT); credentials\n"
    "                     from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
    "  --s3-region R      the signing region (default $AWS_REGION or us-east-1)\n"
    "  --parallel N       concurrent fetches (default 4)\n"
    "  --key-file FILE    at-rest encryption keys (default $SHIPLOG_KEY_FILE): open\n"
    "                     sealed segments and snapshots\n"
    "  --quiet            no progress line on a terminal\n"
    "  --json             one JSON object instead of the summary line\n";

static void fetch_progress(void *arg, uint64_t done, uint64_t total) { cli_progress_update(arg, done, total); }

int cli_restore_s3(int argc, char **argv) {
  static const struct option opts[] = {{"from", required_argument, NULL, 'F'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"to-time", required_argument, NULL, 'T'},
                                       {"to-txid", required_argument, NULL, 'N'},
                                       {"into", required_argument, NULL, 'i'},
                                       {"s3-endpoint", required_argument, NULL, 'e'},
                                       {"s3-region", required_argument, NULL, 'g'},
                                       {"parallel", required_argument, NULL, 'P'},
                                       CLI_KEY_FILE_OPTION,
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  sl_rx_s3_restore_options o = {0};
  const char *key_file = NULL;
  bool quiet = false, json = false, has_txid = false;
  uint64_t v;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(restore_s3_help);
    case 'F': o.url = optarg; break;
    case 's': o.stream = optarg; break;
    case 'T':
    case 'N':
      if (cli_restore_target(c, optarg, &o.by_time, &o.time_us, &o.txid, &has_txid)) return CLI_USAGE;
      break;
    case 'i': o.into = optarg; break;
    case 'e': o.endpoint = optarg; break;
    case 'g': o.region = optarg; break;
    case 'P':
      if (cli_parse_u64("restore", "parallel", optarg, &v)) return CLI_USAGE;
      if (v < 1 || v > 64) return cli_usage("restore", "--parallel must lie between 1 and 64");
      o.parallel = (int)v;
      break;
    case 'q': quiet = true; break;
    case 'j': json = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("restore", NULL);
    }
  }
  sl_s3_url u;
  if (optind < argc) return cli_usage("restore", "unexpected argument '%s'", argv[optind]);
  if (!o.url || sl_s3_url_parse(o.url, &u))
    return cli_usage("restore", "--from: '%s' is not s3://BUCKET[/PREFIX]", o.url ? o.url : "");
  if (!o.stream) return cli_usage("restore", "--stream NAME is required");
  if (o.by_time == has_txid) return cli_usage("restore", "give exactly one of --to-time TIME and --to-txid N");
  if (!o.into) return cli_usage("restore", "--from needs --into NEW_DIR (no data directory to restore in place)");

  cli_progress prog;
  cli_progress_init(&prog, "restore: fetching from object storage", true, quiet);
  o.fetch_progress = fetch_progress;
  o.progress_arg = &prog;
  sl_rx_s3_restore_result res;
  int rc = cli_keyring(key_file, &o.keyring) ? SL_EINVAL : sl_restore_s3(&o, &res);
  sl_keyring_free(o.keyring);
  cli_progress_end(&prog);
  if (rc) return CLI_FAIL;
  double secs = (double)res.total_ns / 1e9, mb = (double)res.fetched_bytes / 1e6;
  char t[40];
  if (res.r.txid) sl_time_format(res.r.commit_us, t, sizeof t);
  else snprintf(t, sizeof t, "empty");
  if (json) {
    json_t *j = json_pack("{s:s,s:I,s:I,s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:f,s:f}", "stream", o.stream, "txid",
                          (json_int_t)res.r.txid, "commit_us", (json_int_t)res.r.commit_us, "commit_time", t, "store",
                          o.into, "base_txid", (json_int_t)res.r.base_txid, "base",
                          res.r.base_path[0] ? res.r.base_path : "empty store", "replayed",
                          (json_int_t)res.r.replayed, "replayed_bytes", (json_int_t)res.r.replayed_bytes,
                          "fetched_objects", (json_int_t)res.fetched_objects, "fetched_bytes",
                          (json_int_t)res.fetched_bytes, "seconds", secs, "fetch_mb_per_s", secs > 0 ? mb / secs : 0.0);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) return CLI_FAIL;
    puts(s);
    free(s);
    return CLI_OK;
  }
  printf("restored %s to txid %" PRIu64 " (%s) in %s from %s\n", o.stream, res.r.txid, t, o.into, o.url);
  if (res.r.base_path[0]) printf("  from snapshot %s (txid %" PRIu64 ")", res.r.base_path, res.r.base_txid);
  else printf("  from an empty store");
  printf(" + %" PRIu64 " transactions replayed; %" PRIu64 " objects, %.1f MB fetched, %.2f s in all (%.0f MB/s)\n",
         res.r.replayed, res.fetched_objects, mb, secs, secs > 0 ? mb / secs : 0.0);
  return CLI_OK;
}

/* ---- dump --to s3:// and load s3:// ------------------------------------------------------ */

int cli_scratch_file(const char *what, char *path, size_t len) {
  const char *tmpdir = getenv("TMPDIR");
  snprintf(path, len, "%s/shiplog-%s-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp", what);
  int fd = mkstemp(path);
  if (fd < 0) {
    sl_diag_error("%s: %s", path, strerror(errno));
    return CLI_FAIL;
  }
  close(fd);
  return CLI_OK;
}
