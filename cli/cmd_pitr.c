/*
 * `shiplog snapshot`, `restore` and `prune` (spec/cli.md, "Point in time"):
 * thin front ends of receiver/pitr.h on a receiver's data directory. They
 * run beside the receiver: snapshot opens the standby read-only (one LMDB
 * read transaction while the receiver applies), restore reads the archive
 * up to its durable mark, prune unlinks only what pitr.h says no kept
 * snapshot needs.
 *
 * restore stops between replay groups on SIGINT or SIGTERM (a flag the
 * restore polls), so an interrupted restore leaves nothing behind either.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_repl.h"
#include "codec.h"
#include "pitr.h"
#include "receiver.h"
#include "sl_base.h"
#include "sl_status.h"

static double mib(uint64_t b) { return (double)b / (1 << 20); }

static int check_stream(const char *cmd, const char *data, const char *stream) {
  if (!data) return cli_usage(cmd, "--data DIR is required");
  if (!stream) return cli_usage(cmd, "--stream NAME is required");
  if (!sl_stream_name_valid(stream))
    return cli_usage(cmd, "--stream: '%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
  return CLI_OK;
}

/* ---- snapshot ---------------------------------------------------------------------- */
static const char snapshot_help[] =
    "Usage: shiplog snapshot --data DIR --stream NAME [--quiet] [--json]\n"
    "\n"
    "Take a base snapshot of stream NAME's standby now, while the receiver keeps\n"
    "applying (one LMDB read transaction): a full dump (store/dump.h) named by the\n"
    "txid it holds, DIR/streams/NAME/snapshots/<txid>.snap, written to a temporary\n"
    "file and renamed when complete. A restore starts from the newest snapshot at\n"
    "or before its target and replays the archive from there. The receiver also\n"
    "takes them itself (receive --snapshot-every, --snapshot-after-bytes).\n"
    "\n"
    "  --data DIR      the receiver's data directory\n"
    "  --stream NAME   the stream\n"
    "  --quiet         no progress line on a terminal\n"
    "  --json          one JSON object instead of the summary line\n"
    "  --key-file FILE the receiver's at-rest encryption keys (default\n"
    "                  $SHIPLOG_KEY_FILE): the snapshot is sealed with the first\n";

int cmd_snapshot(int argc, char **argv) {
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *data = NULL, *stream = NULL, *key_file = NULL;
  bool quiet = false, json = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(snapshot_help);
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    case 'q': quiet = true; break;
    case 'j': json = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("snapshot", NULL);
    }
  }
  if (optind < argc) return cli_usage("snapshot", "unexpected argument '%s'", argv[optind]);
  if (check_stream("snapshot", data, stream)) return CLI_USAGE;
  cli_progress prog;
  cli_progress_init(&prog, "snapshot (records)", false, quiet);
  sl_snapshot_options so = {.progress = cli_progress_update, .progress_arg = &prog};
  sl_snapshot snap;
  bool existed;
  uint64_t t0 = sl_mono_ns();
  if (cli_keyring(key_file, &so.keyring)) return CLI_FAIL;
  int rc = sl_snapshot_stream(data, stream, &so, &snap, &existed);
  sl_keyring_free(so.keyring);
  cli_progress_end(&prog);
  if (rc) return CLI_FAIL;
  char t[40];
  if (snap.commit_us) sl_time_format(snap.commit_us, t, sizeof t);
  else snprintf(t, sizeof t, "empty");
  if (json)
    return cli_json_print(json_pack("{s:s,s:I,s:I,s:s,s:s,s:I,s:b,s:f}", "stream", stream, "txid", (json_int_t)snap.txid,
                                "commit_us", (json_int_t)snap.commit_us, "commit_time", t, "path", snap.path,
                                "bytes", (json_int_t)snap.bytes, "existed", existed,
                                "seconds", (double)(sl_mono_ns() - t0) / 1e9));
  if (existed)
    printf("stream %s already has a snapshot at txid %" PRIu64 " (%s): %s\n", stream, snap.txid, t, snap.path);
  else
    printf("snapshot of stream %s at txid %" PRIu64 " (%s): %s, %.1f MiB in %.1f s\n", stream, snap.txid, t,
           snap.path, mib(snap.bytes), (double)(sl_mono_ns() - t0) / 1e9);
  return CLI_OK;
}

/* ---- restore ------------------------------------------------------------------------ */
static const char restore_help[] =
    "Usage: shiplog restore --data DIR --stream NAME (--to-time TIME | --to-txid N)\n"
    "                       (--into NEW_DIR | --in-place STORE) [--quiet] [--json]\n"
    "\n"
    "Materialize stream NAME as it was at a point in time, from a receiver's data\n"
    "directory: the newest snapshot at or before the target (or an empty store\n"
    "when the archive starts at txid 1), then the archive replayed up to the\n"
    "target. The result is a complete store (the stream's store id, its own log\n"
    "continuing at the next txid) that shiplog and the store API open and write.\n"
    "\n"
    "Targets are inclusive: --to-time TIME keeps every transaction committed at or\n"
    "before TIME (ISO-8601 with a zone, a date alone for midnight UTC, or\n"
    "@SECONDS[.FRACTION]); --to-txid N keeps txids 1..N. A target past what the\n"
    "archive is known to hold (a txid past its durable one, a time later than the\n"
    "primary's clock as last reported with everything before it archived), before\n"
    "the first snapshot the archive continues, or before the stream's first commit\n"
    "(txid 0: the empty store is no point of a stream that has commits) is refused,\n"
    "saying what the stream holds: its txids and their commit times.\n"
    "\n"
    "  --into NEW_DIR    a new store in NEW_DIR (missing or empty)\n"
    "  --in-place STORE  replace STORE, the stream's primary, which no process may\n"
    "                    have open; its old state is kept as\n"
    "                    STORE.before-restore-<UTC time> (remove it yourself)\n"
    "  --quiet           no progress line on a terminal\n"
    "  --json            one JSON object instead of the summary line\n"
    "  --key-file FILE   at-rest encryption keys (default $SHIPLOG_KEY_FILE): open\n"
    "                    a sealed archive and sealed snapshots\n"
    "\n"
    "The store is built beside the target and renamed into place when complete:\n"
    "a failed or interrupted restore leaves nothing behind.\n"
    "\n"
    "From object storage alone (a receiver run with --archive-to):\n"
    "  shiplog restore --from s3://BUCKET/PREFIX --stream NAME ... --into NEW_DIR\n"
    "(see shiplog restore --from s3://x/y --help).\n";

static atomic_bool restore_cancel;

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&restore_cancel, true);
}

typedef struct restore_progress {
  cli_progress load, replay;
  bool replaying;
} restore_progress;

static void load_progress(void *arg, uint64_t done, uint64_t total) {
  restore_progress *p = arg;
  cli_progress_update(&p->load, done, total);
}

static void replay_progress(void *arg, uint64_t done, uint64_t total) {
  restore_progress *p = arg;
  if (!p->replaying) {
    cli_progress_end(&p->load);
    p->replay.start_ns = sl_mono_ns(); /* the rate counts replay time only */
    p->replaying = true;
  }
  cli_progress_update(&p->replay, done, total);
}

int cli_restore_target(int opt, const char *arg, bool *by_time, uint64_t *time_us, uint64_t *txid, bool *has_txid) {
  if (opt == 'T') {
    if (cli_parse_time("restore", "to-time", arg, time_us)) return CLI_USAGE;
    *by_time = true;
  } else {
    if (cli_parse_u64("restore", "to-txid", arg, txid)) return CLI_USAGE;
    *has_txid = true;
  }
  return 0;
}

int cmd_restore(int argc, char **argv) {
  if (cli_option_given(argc, argv, "from")) return cli_restore_s3(argc, argv);
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"to-time", required_argument, NULL, 'T'},
                                       {"to-txid", required_argument, NULL, 'N'},
                                       {"into", required_argument, NULL, 'i'},
                                       {"in-place", required_argument, NULL, 'p'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  sl_restore_options o = {.cancel = &restore_cancel};
  const char *key_file = NULL;
  bool quiet = false, json = false, has_txid = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(restore_help);
    case 'd': o.data_dir = optarg; break;
    case 's': o.stream = optarg; break;
    case 'T':
    case 'N':
      if (cli_restore_target(c, optarg, &o.by_time, &o.time_us, &o.txid, &has_txid)) return CLI_USAGE;
      break;
    case 'i': o.into = optarg; break;
    case 'p': o.in_place = optarg; break;
    case 'q': quiet = true; break;
    case 'j': json = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("restore", NULL);
    }
  }
  if (optind < argc) return cli_usage("restore", "unexpected argument '%s'", argv[optind]);
  if (check_stream("restore", o.data_dir, o.stream)) return CLI_USAGE;
  if (o.by_time == has_txid) return cli_usage("restore", "give exactly one of --to-time TIME and --to-txid N");
  if (!o.into == !o.in_place) return cli_usage("restore", "give exactly one of --into NEW_DIR and --in-place STORE");

  restore_progress rp = {0};
  cli_progress_init(&rp.load, "restore: loading the snapshot", true, quiet);
  cli_progress_init(&rp.replay, "restore: replaying (transactions)", false, quiet);
  o.load_progress = load_progress;
  o.replay_progress = replay_progress;
  o.progress_arg = &rp;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sl_restore_result res;
  uint64_t t0 = sl_mono_ns();
  if (cli_keyring(key_file, &o.keyring)) return CLI_FAIL;
  int rc = sl_restore(&o, &res);
  sl_keyring_free(o.keyring);
  cli_progress_end(&rp.load);
  cli_progress_end(&rp.replay);
  if (rc == -ECANCELED) sl_diag_error("restore interrupted: nothing was left behind");
  if (rc) return CLI_FAIL;
  double secs = (double)(sl_mono_ns() - t0) / 1e9, replay_s = (double)res.replay_ns / 1e9;
  char t[40];
  if (res.txid) sl_time_format(res.commit_us, t, sizeof t);
  else snprintf(t, sizeof t, "empty");
  const char *where = o.into ? o.into : o.in_place;
  if (json)
    return cli_json_print(json_pack(
        "{s:s,s:I,s:I,s:s,s:s,s:I,s:s,s:I,s:I,s:f,s:f,s:s}", "stream", o.stream, "txid", (json_int_t)res.txid,
        "commit_us", (json_int_t)res.commit_us, "commit_time", t, "store", where, "base_txid",
        (json_int_t)res.base_txid, "base", res.base_path[0] ? res.base_path : "empty store", "replayed",
        (json_int_t)res.replayed, "replayed_bytes", (json_int_t)res.replayed_bytes, "seconds", secs,
        "replay_seconds", replay_s, "kept", res.kept));
  printf("restored %s to txid %" PRIu64 " (%s) in %s\n", o.stream, res.txid, t, where);
  if (res.base_path[0])
    printf("  from snapshot %s (txid %" PRIu64 ")", res.base_path, res.base_txid);
  else
    printf("  from an empty store");
  printf(" + %" PRIu64 " transactions replayed (%.1f MiB", res.replayed, mib(res.replayed_bytes));
  if (res.replayed && replay_s > 0) printf(", %.0f tx/s", (double)res.replayed / replay_s);
  printf("), %.2f s in all\n", secs);
  if (res.kept[0]) printf("  the store's state before the restore is kept in %s\n", res.kept);
  return CLI_OK;
}

/* ---- export --at-txid --------------------------------------------------------------- */
int cli_restore_temp(const char *data, const char *stream, uint64_t txid, bool quiet, const char *key_file,
                     char **store_dir) {
  const char *base = getenv("TMPDIR");
  char *root = NULL;
  *store_dir = NULL;
  if (asprintf(&root, "%s/shiplog-export-XXXXXX", base && *base ? base : "/tmp") < 0) return CLI_FAIL;
  if (!mkdtemp(root)) {
    sl_diag_error("%s: cannot create a temporary directory: %s", root, strerror(errno));
    free(root);
    return CLI_FAIL;
  }
  if (asprintf(store_dir, "%s/store", root) < 0) *store_dir = NULL;
  free(root);
  if (!*store_dir) return CLI_FAIL;
  restore_progress rp = {0};
  cli_progress_init(&rp.load, "export: loading the snapshot", true, quiet);
  cli_progress_init(&rp.replay, "export: replaying (transactions)", false, quiet);
  sl_restore_options o = {.data_dir = data, .stream = stream, .txid = txid, .into = *store_dir,
                          .load_progress = load_progress, .replay_progress = replay_progress, .progress_arg = &rp};
  sl_restore_result res;
  int rc = cli_keyring(key_file, &o.keyring) ? SL_EINVAL : sl_restore(&o, &res);
  sl_keyring_free(o.keyring);
  cli_progress_end(&rp.load);
  cli_progress_end(&rp.replay);
  if (rc) {
    cli_restore_temp_remove(*store_dir);
    *store_dir = NULL;
    return CLI_FAIL;
  }
  return CLI_OK;
}

void cli_restore_temp_remove(char *store_dir) {
  if (!store_dir) return;
  char *slash = strrchr(store_dir, '/');
  if (slash) *slash = 0; /* the mkdtemp directory */
  sl_remove_tree(store_dir);
  free(store_dir);
}

/* ---- prune -------------------------------------------------------------------------- */
static const char prune_help[] =
    "Usage: shiplog prune --data DIR [--stream NAME] [--keep-snapshots N] [--keep-days D]\n"
    "                     [--dry-run] [--key-file FILE] [--json]\n"
    "\n"
    "Retention of a receiver's snapshots and archive segments (every stream, or\n"
    "NAME). A snapshot is kept when it is one of the newest N, or was taken in the\n"
    "last D days, or is the newest one taken before them (so that every point of\n"
    "those days stays restorable); the newest snapshot is always kept, and with\n"
    "neither option none is removed. Then the archive segments whose every txid is\n"
    "at or below the oldest kept snapshot (and applied by the standby, and\n"
    "confirmed to every consumer of the archive: see shiplog consumers) are\n"
    "removed, oldest first, never the newest: what the oldest kept snapshot needs\n"
    "to reach the present stays. With no snapshot, no segment is removed. Nothing\n"
    "that waits for its upload to object storage is removed. Runs while the\n"
    "receiver runs; refused while a restore reads the stream. Before anything is\n"
    "removed, the oldest snapshot kept is read whole as a restore would load it:\n"
    "a damaged one (or one sealed with a key not given) stops the prune, naming\n"
    "the file and offset, and nothing is removed.\n"
    "\n"
    "Each file removed is named on its own line (standard output), then a summary\n"
    "per stream.\n"
    "\n"
    "  --data DIR            the receiver's data directory\n"
    "  --stream NAME         only this stream\n"
    "  --keep-snapshots N    keep the newest N snapshots\n"
    "  --keep-days D         keep the snapshots of the last D days (fractions allowed)\n"
    "  --dry-run             remove nothing: print what would be removed\n"
    "  --key-file FILE       at-rest encryption keys (default $SHIPLOG_KEY_FILE): open\n"
    "                        a sealed snapshot for the check below\n"
    "  --json                JSON Lines, one object per stream, with its files\n";

typedef struct prune_report {
  bool json, dry_run;
  json_t *files; /* --json: the stream's files */
} prune_report;

static void prune_removed(void *arg, bool snapshot, const char *path, uint64_t first, uint64_t last,
                          uint64_t bytes) {
  prune_report *p = arg;
  if (p->json) {
    json_array_append_new(p->files, json_pack("{s:s,s:s,s:I,s:I,s:I}", "kind", snapshot ? "snapshot" : "segment",
                                              "path", path, "first_txid", (json_int_t)first, "last_txid",
                                              (json_int_t)last, "bytes", (json_int_t)bytes));
    return;
  }
  const char *verb = p->dry_run ? "would remove" : "removed";
  if (snapshot)
    printf("%s snapshot %s (txid %" PRIu64 ", %.1f MiB)\n", verb, path, first, mib(bytes));
  else
    printf("%s archive segment %s (txids %" PRIu64 "..%" PRIu64 ", %.1f MiB)\n", verb, path, first, last,
           mib(bytes));
}

static int prune_one(const char *data, const char *stream, sl_prune_options *o, bool json) {
  prune_report rep = {.json = json, .dry_run = o->dry_run, .files = json ? json_array() : NULL};
  sl_prune_result r;
  o->removed = prune_removed;
  o->removed_arg = &rep;
  if (sl_prune_stream(data, stream, o, &r)) {
    json_decref(rep.files);
    return CLI_FAIL;
  }
  if (json)
    return cli_json_print(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:o,s:s}", "stream", stream, "dry_run", o->dry_run,
                                "snapshots_removed", (json_int_t)r.snapshots_removed, "snapshots_kept",
                                (json_int_t)r.snapshots_kept, "segments_removed", (json_int_t)r.segments_removed,
                                "bytes_removed", (json_int_t)r.bytes_removed, "archive_first_txid",
                                (json_int_t)r.archive_first_txid, "files", rep.files, "version", sl_version()));
  printf("stream %s: %s %zu snapshots (kept %zu) and %zu archive segments, %.1f MiB; the archive %s at txid "
         "%" PRIu64 "\n",
         stream, o->dry_run ? "would remove" : "removed", r.snapshots_removed, r.snapshots_kept, r.segments_removed,
         mib(r.bytes_removed), o->dry_run ? "would then start" : "now starts", r.archive_first_txid);
  return CLI_OK;
}

int cmd_prune(int argc, char **argv) {
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"keep-snapshots", required_argument, NULL, 'n'},
                                       {"keep-days", required_argument, NULL, 'D'},
                                       {"dry-run", no_argument, NULL, 'n' + 256},
                                       CLI_KEY_FILE_OPTION,
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *data = NULL, *stream = NULL, *key_file = NULL;
  sl_prune_options o = {0};
  bool json = false;
  char *end;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(prune_help);
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    case 'n':
      if (cli_parse_u64("prune", "keep-snapshots", optarg, &o.keep_snapshots)) return CLI_USAGE;
      if (!o.keep_snapshots) return cli_usage("prune", "--keep-snapshots must be at least 1");
      break;
    case 'D':
      o.keep_days = strtod(optarg, &end);
      if (end == optarg || *end || !(o.keep_days > 0) || o.keep_days > 1e6)
        return cli_usage("prune", "--keep-days: '%s' is not a positive number of days", optarg);
      break;
    case 'n' + 256: o.dry_run = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    case 'j': json = true; break;
    default: return cli_usage("prune", NULL);
    }
  }
  if (optind < argc) return cli_usage("prune", "unexpected argument '%s'", argv[optind]);
  if (!data) return cli_usage("prune", "--data DIR is required");
  if (stream && !sl_stream_name_valid(stream))
    return cli_usage("prune", "--stream: '%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
  if (cli_keyring(key_file, &o.keyring)) return CLI_FAIL;
  char dir[4096];
  char **names = NULL;
  size_t n = 0;
  int rc, status = CLI_OK;
  if (stream) {
    status = prune_one(data, stream, &o, json);
  } else if ((rc = cli_list_names(sl_stream_path(dir, sizeof dir, data, NULL, NULL), "", &names, &n))) {
    sl_diag_error("%s: %s", dir, sl_strerror(rc));
    status = CLI_FAIL;
  } else {
    for (size_t i = 0; i < n; i++)
      if (prune_one(data, names[i], &o, json)) status = CLI_FAIL;
    cli_free_names(names, n);
    if (n == 0 && !json) printf("(no streams in %s)\n", data);
  }
  sl_keyring_free(o.keyring);
  return status;
}
