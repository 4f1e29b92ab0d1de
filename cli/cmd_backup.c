/*
 * dump and load: backup files for moving a store between machines
 * (spec/cli.md, "Point in time"; the file format is store/dump.h).
 *
 * dump opens the store read-only, so it runs beside the store's writer: a
 * full dump is one LMDB read snapshot, an incremental one reads the log up
 * to its durable mark. The file is written as FILE.tmp, fsynced and renamed
 * (then its directory fsynced), so FILE appears complete or not at all;
 * "-" streams to standard output.
 *
 * load --into builds a new store beside NEW_DIR and renames it into place;
 * load --onto opens STORE for writing and checks the whole file before it
 * applies the first transaction. The store module logs every refusal with
 * the file and offset ("shiplog: FILE: offset N: reason").
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "dump.h"
#include "dump_s3.h"
#include "objstore.h"
#include "sl_base.h"

static double mib(uint64_t b) { return (double)b / (1 << 20); }

/* ---- dump -------------------------------------------------------------------------- */
static const char dump_help[] =
    "Usage: shiplog dump STORE --to FILE|- [--since TIME] [--from-txid N] [--overwrite]\n"
    "                    [--quiet] [--json]\n"
    "\n"
    "Write a backup file of STORE, which is opened read-only (its writer goes on).\n"
    "\n"
    "Without --since or --from-txid: a full dump, a consistent image of the store\n"
    "at its last applied txid (one read snapshot), loaded with\n"
    "  shiplog load FILE --into NEW_DIR\n"
    "With them: an incremental dump, the durable transactions of STORE's log from\n"
    "the given point on, loaded onto the store it follows with\n"
    "  shiplog load FILE --onto STORE\n"
    "Commit times may repeat across txids, so chains are safest by txid: dump the\n"
    "next incremental --from-txid (the previous file's last txid + 1).\n"
    "\n"
    "The file is lz4-compressed and checksummed (format: store/dump.h); it is\n"
    "written as FILE.tmp and renamed when complete, so a failed dump leaves no FILE.\n"
    "An existing FILE (or object) is a backup already: it is refused (exit 1)\n"
    "unless --overwrite is given.\n"
    "\n"
    "  --to FILE         the backup file; '-' writes to standard output;\n"
    "                    s3://BUCKET/KEY uploads it there once complete (checked by\n"
    "                    size and CRC32C; --s3-endpoint URL, --s3-region R)\n"
    "  --since TIME      every transaction committed after TIME (ISO-8601 with a\n"
    "                    zone, a date alone for midnight UTC, or @SECONDS[.FRACTION])\n"
    "  --from-txid N     the transactions from txid N on (with --since: whichever\n"
    "                    starts later)\n"
    "  --overwrite       replace FILE if it exists\n"
    "  --quiet           no progress line on a terminal, no summary\n"
    "  --json            one JSON object on standard output instead of the summary\n"
    "                    (not with --to -)\n"
    "  --key-file FILE   at-rest encryption keys (default $SHIPLOG_KEY_FILE;\n"
    "                    README \"Security\"): the file is sealed (AES-256-GCM)\n"
    "                    with the first key\n"
    "\n"
    "Scheduled backups into a folder of full and incremental dumps, and their\n"
    "check: shiplog dump [STORE] --chain DIR (see shiplog dump --chain . --help).\n";

/* dump never replaces a backup unless told to (--overwrite): a FILE that
 * exists as a regular file, or an object at s3://. Pipes and devices are
 * written in place as before. CLI_OK, or CLI_FAIL with the reason logged. */
static int refuse_existing(const char *to, const char *endpoint, const char *region) {
  struct stat sb;
  bool exists = false;
  if (sl_s3_is_url(to)) {
    if (sl_dump_s3_exists(to, endpoint, region, &exists)) return CLI_FAIL;
  } else {
    exists = strcmp(to, "-") && stat(to, &sb) == 0 && S_ISREG(sb.st_mode);
  }
  if (!exists) return CLI_OK;
  sl_diag_error("%s exists: a backup is never replaced silently (pass --overwrite to replace it)", to);
  return CLI_FAIL;
}

int cmd_dump(int argc, char **argv) {
  if (cli_option_given(argc, argv, "chain")) return cli_dump_chain(argc, argv);
  static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                       {"s3-endpoint", required_argument, NULL, 'E'},
                                       {"s3-region", required_argument, NULL, 'R'},
                                       {"since", required_argument, NULL, 's'},
                                       {"from-txid", required_argument, NULL, 'f'},
                                       {"overwrite", no_argument, NULL, 'O'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  sl_dump_options o = {0};
  const char *to = NULL, *key_file = NULL, *endpoint = NULL, *region = NULL, *url = NULL;
  char local[PATH_MAX];
  bool quiet = false, json = false, overwrite = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(dump_help);
    case 'O': overwrite = true; break;
    case 'j': json = true; break;
    case 't': to = optarg; break;
    case 'E': endpoint = optarg; break;
    case 'R': region = optarg; break;
    case 's':
      if (cli_parse_time("dump", "since", optarg, &o.since_us)) return CLI_USAGE;
      o.has_since = true;
      break;
    case 'f':
      if (cli_parse_u64("dump", "from-txid", optarg, &o.from_txid)) return CLI_USAGE;
      if (!o.from_txid) return cli_usage("dump", "--from-txid must be at least 1");
      break;
    case 'q': quiet = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("dump", NULL);
    }
  }
  if (cli_positional(argc, argv, "dump", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  if (!to) return cli_usage("dump", "missing --to FILE (or --to - for standard output)");
  if ((endpoint || region) && !sl_s3_is_url(to))
    return cli_usage("dump", "--s3-endpoint and --s3-region go with --to s3://BUCKET/KEY");
  if (json && !strcmp(to, "-")) return cli_usage("dump", "--json goes with --to FILE: standard output holds the dump");
  if (!overwrite && refuse_existing(to, endpoint, region)) return CLI_FAIL;
  if (sl_s3_is_url(to)) { /* written here first, uploaded once complete (backup/dump_s3.h) */
    url = to;
    if (cli_scratch_file("dump", local, sizeof local)) return CLI_FAIL;
    to = local;
  }
  bool incremental = o.has_since || o.from_txid;
  sl_store *st;
  cli_out out = {0};
  cli_progress prog;
  sl_dump_info info;
  uint64_t t0 = sl_mono_ns();
  int rc;

  if (cli_keyring(key_file, &o.keyring) || cli_open_store(pos[0], SL_OPEN_RDONLY, &st)) {
    sl_keyring_free(o.keyring);
    if (url) unlink(local);
    return CLI_FAIL;
  }
  if ((rc = cli_out_open(&out, to))) goto fail;
  cli_progress_init(&prog, incremental ? "dump (transactions)" : "dump (records)", false, quiet);
  o.progress = cli_progress_update;
  o.progress_arg = &prog;
  o.name = out.path;
  rc = incremental ? sl_dump_incremental(st, fileno(out.f), &o, &info) : sl_dump_full(st, fileno(out.f), &o, &info);
  cli_progress_end(&prog);
  if (rc) goto fail;
  bool renamed = out.tmp != NULL;
  if ((rc = cli_out_commit(&out))) goto fail;
  if (renamed) { /* the rename itself must survive a crash: fsync the directory */
    char dir[PATH_MAX];
    const char *slash = strrchr(to, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == to ? 1 : slash - to) : 1, slash ? to : ".");
    if ((rc = sl_fsync_dir(dir))) goto fail;
  }
  if (url) {
    if ((rc = sl_dump_s3_put(url, endpoint, region, local))) goto fail;
    if (!quiet && !json) fprintf(stderr, "dump: uploaded to %s\n", url);
  }
  const sl_dump_header *h = &info.header;
  if (json) {
    rc = cli_json_print(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:f}", "dump",
                                  incremental ? "incremental" : "full", "store", pos[0], "file", url ? url : out.path,
                                  "first_txid", (json_int_t)h->first_txid, "last_txid", (json_int_t)h->last_txid,
                                  "last_commit_us", (json_int_t)h->last_commit_us, "records", (json_int_t)info.records,
                                  "bytes", (json_int_t)info.file_bytes, "raw_bytes", (json_int_t)info.raw_bytes,
                                  "key_id", h->key_id, "seconds", cli_seconds_since(t0)))
             ? SL_EINVAL
             : 0;
  } else if (!quiet) {
    if (h->first_txid > h->last_txid)
      fprintf(stderr, "dump: incremental, no transaction after txid %" PRIu64 " yet", h->last_txid);
    else
      fprintf(stderr, "dump: %s, txids %" PRIu64 "..%" PRIu64, incremental ? "incremental" : "full", h->first_txid,
              h->last_txid);
    fprintf(stderr, ", %" PRIu64 " %s, %.1f MiB (%.1f MiB before compression) to %s\n", info.records,
            incremental ? "transactions" : "records", mib(info.file_bytes), mib(info.raw_bytes),
            url ? url : out.path);
  }
fail:
  if (rc) cli_out_abort(&out);
  if (url) unlink(local);
  sl_store_close(st);
  sl_keyring_free(o.keyring);
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- load -------------------------------------------------------------------------- */
static const char load_help[] =
    "Usage: shiplog load FILE --into NEW_DIR [--overwrite-destination] [--quiet] [--json]\n"
    "       shiplog load FILE --onto STORE [--quiet] [--json]\n"
    "\n"
    "Load a backup file written by shiplog dump. FILE may be s3://BUCKET/KEY\n"
    "(fetched first, checked by size and CRC32C; --s3-endpoint URL, --s3-region R).\n"
    "\n"
    "--into NEW_DIR: a full dump becomes a new store in NEW_DIR (missing or empty)\n"
    "with the source's store id and graph; its log continues from the dump's\n"
    "txid + 1. It is built in NEW_DIR.tmp-PID and renamed when complete: a\n"
    "damaged file leaves nothing behind. With --overwrite-destination, NEW_DIR\n"
    "may hold a store (no process may have it open): once the new store is\n"
    "complete the old one is renamed NEW_DIR.old-<UTC time> (said on stderr,\n"
    "never removed: remove it yourself) and the new one takes its name.\n"
    "\n"
    "--onto STORE: an incremental dump is applied to the store it follows. The\n"
    "whole file is checked before anything is applied. Refused: another store's\n"
    "file, a file starting past STORE's last txid + 1 (a gap: load the dumps in\n"
    "between first), a file ending before STORE's last txid. Transactions STORE\n"
    "already holds are skipped.\n"
    "\n"
    "Damage is reported as FILE: offset N: reason (exit status 1).\n"
    "\n"
    "  --into NEW_DIR    a new store from a full dump\n"
    "  --onto STORE      apply an incremental dump to STORE\n"
    "  --overwrite-destination\n"
    "                    --into: replace the store in NEW_DIR, keeping it aside\n"
    "  --quiet           no progress line on a terminal, no summary\n"
    "  --json            one JSON object on standard output instead of the summary\n"
    "  --key-file FILE   at-rest encryption keys (default $SHIPLOG_KEY_FILE):\n"
    "                    any listed key opens a sealed file\n"
    "\n"
    "shiplog load --chain DIR --into NEW_DIR restores the newest chain of dumps in\n"
    "DIR (see shiplog dump --chain . --help).\n";

typedef struct load_flags {
  const char *key_file;
  bool quiet, json, overwrite;
  const char *shown;  /* FILE as given (s3:// before it was fetched) */
} load_flags;

static int load_one(const char *file, const char *into, const char *onto, const load_flags *f);

int cmd_load(int argc, char **argv) {
  if (cli_option_given(argc, argv, "chain")) return cli_load_chain(argc, argv);
  static const struct option opts[] = {{"into", required_argument, NULL, 'i'},
                                       {"s3-endpoint", required_argument, NULL, 'E'},
                                       {"s3-region", required_argument, NULL, 'R'},
                                       {"onto", required_argument, NULL, 'o'},
                                       {"overwrite-destination", no_argument, NULL, 'O'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *into = NULL, *onto = NULL, *endpoint = NULL, *region = NULL;
  load_flags f = {0};
  char **pos, local[PATH_MAX];
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(load_help);
    case 'E': endpoint = optarg; break;
    case 'R': region = optarg; break;
    case 'i': into = optarg; break;
    case 'o': onto = optarg; break;
    case 'O': f.overwrite = true; break;
    case 'q': f.quiet = true; break;
    case 'j': f.json = true; break;
    case CLI_OPT_KEY_FILE: f.key_file = optarg; break;
    default: return cli_usage("load", NULL);
    }
  }
  if (cli_positional(argc, argv, "load", 1, (const char *[]){"FILE"}, &pos)) return CLI_USAGE;
  if (!into == !onto) return cli_usage("load", "give exactly one of --into NEW_DIR and --onto STORE");
  if (f.overwrite && !into) return cli_usage("load", "--overwrite-destination goes with --into DIR");
  const char *file = pos[0];
  f.shown = file;
  if ((endpoint || region) && !sl_s3_is_url(file))
    return cli_usage("load", "--s3-endpoint and --s3-region go with FILE s3://BUCKET/KEY");
  if (!sl_s3_is_url(file)) return load_one(file, into, onto, &f);
  /* Fetched next to nothing first (checked by size and CRC32C), then loaded. */
  if (cli_scratch_file("load", local, sizeof local)) return CLI_FAIL;
  int rc = sl_dump_s3_get(file, endpoint, region, local) ? CLI_FAIL : load_one(local, into, onto, &f);
  unlink(local);
  return rc;
}

/* load FILE (local) --into or --onto. */
static int load_one(const char *file, const char *into, const char *onto, const load_flags *f) {
  cli_progress prog;
  char kept[4200] = "";
  cli_progress_init(&prog, "load", true, f->quiet);
  sl_load_options lo = {.progress = cli_progress_update, .progress_arg = &prog, .overwrite = f->overwrite,
                        .kept = kept, .kept_len = sizeof kept};
  uint64_t t0 = sl_mono_ns();
  int rc;
  if (cli_keyring(f->key_file, &lo.keyring)) return CLI_FAIL;

  if (into) {
    sl_dump_info info;
    rc = sl_load_full(file, into, &lo, &info);
    cli_progress_end(&prog);
    sl_keyring_free(lo.keyring);
    if (rc) return CLI_FAIL;
    if (f->json)
      return cli_json_print(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s?,s:f}", "load", "full", "file", f->shown,
                                      "store", into, "txid", (json_int_t)info.header.last_txid, "records",
                                      (json_int_t)info.records, "bytes", (json_int_t)info.file_bytes, "raw_bytes",
                                      (json_int_t)info.raw_bytes, "kept", kept[0] ? kept : NULL, "seconds",
                                      cli_seconds_since(t0)));
    if (!f->quiet)
      fprintf(stderr, "load: %s holds the store at txid %" PRIu64 " (%" PRIu64 " records from %.1f MiB)\n", into,
              info.header.last_txid, info.records, mib(info.file_bytes));
    if (kept[0]) fprintf(stderr, "load: the store that was in %s is kept in %s (remove it yourself)\n", into, kept);
    return CLI_OK;
  }
  sl_store *st;
  sl_load_result res;
  if (cli_open_store(onto, 0, &st)) {
    sl_keyring_free(lo.keyring);
    return CLI_FAIL;
  }
  rc = sl_load_incremental(file, st, &lo, &res);
  cli_progress_end(&prog);
  sl_store_close(st);
  sl_keyring_free(lo.keyring);
  if (rc) return CLI_FAIL;
  if (f->json)
    return cli_json_print(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:f}", "load", "incremental", "file", f->shown,
                                    "store", onto, "from_txid", (json_int_t)res.from_txid, "txid",
                                    (json_int_t)res.to_txid, "applied", (json_int_t)res.applied, "skipped",
                                    (json_int_t)res.skipped, "seconds", cli_seconds_since(t0)));
  if (!f->quiet)
    fprintf(stderr, "load: applied %" PRIu64 " transactions to %s (now at txid %" PRIu64 "), skipped %" PRIu64
                    " it held already\n",
            res.applied, onto, res.to_txid, res.skipped);
  return CLI_OK;
}
