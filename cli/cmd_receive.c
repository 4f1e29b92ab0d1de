/*
 * `shiplog receive` and `shiplog status` (spec/cli.md, "Shipping").
 *
 * receive runs sl_receiver_run until SIGINT or SIGTERM, which only set a
 * flag: the receiver then closes its connections, stops the appliers and
 * writes each stream's final status before the process exits 0.
 *
 * status reads reports, never live state of another process:
 *   STORE side: STORE/ship/NAME.status per shipper (sl_ship_status_read)
 *               and the store log's durable mark (the primary's committed
 *               txid, fresher than the shipper's report);
 *   DATA side:  sl_stream_status_read per stream (status file, archive
 *               durable mark, the standby's own applied txid).
 * Lag in transactions is committed - applied; lag in bytes is the size of
 * the log frames after the applied txid (the primary's log on the STORE
 * side, the archive on the DATA side), measured from the segment sizes;
 * lag in ms is as each report gives it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_repl.h"
#include "codec.h"
#include "log.h"
#include "receiver.h"
#include "s3.h"
#include "sl_base.h"
#include "sl_status.h"
#include "shipper.h"

/* ---- receive ------------------------------------------------------------------- */
static const char receive_help[] =
    "Usage: shiplog receive --listen HOST:PORT --data DIR [options]\n"
    "\n"
    "Serve replication streams from many primaries. Each stream NAME keeps its\n"
    "archive (DIR/streams/NAME/archive, the log's own segment format) and, when\n"
    "the archive starts at txid 1, a hot standby (DIR/streams/NAME/standby) that\n"
    "any process may open read-only. Sealed archive segments are packed with LZ4\n"
    "(restores read packed and plain ones). Runs until SIGINT or SIGTERM.\n"
    "\n"
    "  --listen HOST:PORT   address to listen on ([v6]:PORT too; port 0: any free port)\n"
    "  --data DIR           data directory (created if missing)\n"
    "  --heartbeat-ms N     heartbeat interval when idle (default 1000)\n"
    "  --timeout-ms N       close a shipper silent this long (default 10000)\n"
    "  --max-connections N  refuse connections past this many (default 256)\n"
    "  --max-batch-bytes N  largest raw batch accepted (suffix K, M; default 64M)\n"
    "  --ready-file FILE    write the listening port to FILE once listening\n"
    "  --segment-size BYTES archive segment size of new streams (suffix K, M, G;\n"
    "                       default 64M)\n"
    "  --snapshot-every S   a base snapshot of each standby every S seconds (default\n"
    "                       0: not by time)\n"
    "  --snapshot-after-bytes N\n"
    "                       a snapshot once the archive grew by N bytes since the\n"
    "                       newest one, which bounds what a restore replays\n"
    "                       (suffix K, M, G; default 1G; 0: not by size)\n"
    "  --retain-snapshots N keep the newest N snapshots of each stream (and what the\n"
    "                       archive needs from the oldest kept one on); older ones\n"
    "                       and the archive segments below it are removed, also in\n"
    "                       object storage (--archive-to), where nothing leaves the\n"
    "                       receiver before its upload is confirmed (default 0: no\n"
    "                       count rule)\n"
    "  --retain-days D      keep every snapshot taken in the last D days and the\n"
    "                       newest before them, so every point of those days stays\n"
    "                       restorable (fractions allowed; default 0: no age rule;\n"
    "                       with both rules a snapshot either keeps stays; without\n"
    "                       either the receiver removes nothing: shiplog prune)\n"
    "  --max-replay-seconds S\n"
    "                       a snapshot whenever a restore from the newest one would\n"
    "                       replay longer than S seconds, estimated from the replay\n"
    "                       speed measured on this receiver (its standby's apply\n"
    "                       rate; shiplog info shows the estimate; default 0: not\n"
    "                       by this rule)\n"
    "  --tls-cert FILE      TLS 1.3: this receiver's certificate (PEM; chain allowed)\n"
    "  --tls-key FILE       its private key (PEM)\n"
    "  --tls-ca FILE        the CA every shipper's certificate must chain to\n"
    "  --allow FILE         which certificates may write which stream: lines\n"
    "                       'STREAM IDENTITY [IDENTITY...]' (subject CN or DNS\n"
    "                       name), '#' comments; other streams are refused\n"
    "                       (without it every certificate from --tls-ca may\n"
    "                       write every stream)\n"
    "  --insecure           plain TCP: no encryption, no authentication (a warning\n"
    "                       says so); either this or the three --tls-* files is\n"
    "                       required\n"
    "  --max-connections-per-peer N\n"
    "                       connections from one address (default 16)\n"
    "  --allow-root         run as root (refused otherwise: run it as its own user)\n"
    "  --key-file FILE      at-rest encryption keys, lines 'KEY_ID HEX' (mode 0600;\n"
    "                       default $SHIPLOG_KEY_FILE): open sealed frames for the\n"
    "                       standby and seal snapshots; a stream sealed with a key\n"
    "                       not in it is archive-only (ciphertext, no standby)\n"
    "  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics\n"
    "                       (port 0: any free port, logged with --verbose)\n"
    "  --archive-to s3://BUCKET/PREFIX\n"
    "                       also upload every sealed archive segment and every\n"
    "                       snapshot there, verified (README \"Object storage\");\n"
    "                       credentials from AWS_ACCESS_KEY_ID and\n"
    "                       AWS_SECRET_ACCESS_KEY or ~/.aws/credentials\n"
    "  --archive-timeout S  with --archive-to: upload what the active archive segment\n"
    "                       durably holds at least every S seconds when it grew, so\n"
    "                       a quiet stream reaches object storage before its\n"
    "                       segment fills (default 60, as PostgreSQL's\n"
    "                       archive_timeout; 0: sealed segments only)\n"
    "  --s3-endpoint URL    the S3 server (http(s)://HOST:PORT; path-style;\n"
    "                       default $SL_S3_ENDPOINT)\n"
    "  --s3-region R        the signing region (default $AWS_REGION or us-east-1)\n"
    "  --bolt HOST:PORT     also serve every stream's standby over Bolt, read-only,\n"
    "                       as the database named as the stream (spec/bolt.md)\n"
    "  --bolt-advertise HOST:PORT  that address in routing tables\n"
    "  --bolt-auth FILE / --bolt-no-auth\n"
    "                       Bolt users file (shiplog passwd), or no login; one\n"
    "                       of the two is required with --bolt\n"
    "  --bolt-tls-cert FILE, --bolt-tls-key FILE, --bolt-tls-ca FILE\n"
    "                       Bolt's TLS (default: --tls-cert/--tls-key); the CA\n"
    "                       also requires client certificates\n"
    "  --bookmark-timeout MS  how long a Bolt transaction waits for the standby\n"
    "                       to reach its bookmarks (default 5000)\n"
    "  --bolt-server-agent AGENT  what drivers are told the server is, as\n"
    "                       PRODUCT/MAJOR.MINOR[.PATCH] (default " SL_BOLT_SERVER_AGENT ")\n"
    "  --verbose            log connections and stream events\n"
    "  --config FILE        read options from FILE ('key = value' lines, keys named\n"
    "                       as the options; the command line wins)\n"
    "  --log-format text|json  log lines for people (default) or log shippers\n"
    "\n"
    "Under systemd (Type=notify) it reports READY=1 once it listens.\n";

int cmd_receive(int argc, char **argv) {
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"data", required_argument, NULL, 'd'},
                                       {"heartbeat-ms", required_argument, NULL, 'b'},
                                       {"timeout-ms", required_argument, NULL, 't'},
                                       {"max-connections", required_argument, NULL, 'c'},
                                       {"max-batch-bytes", required_argument, NULL, 'm'},
                                       {"ready-file", required_argument, NULL, 'r'},
                                       {"segment-size", required_argument, NULL, 'S'},
                                       {"snapshot-every", required_argument, NULL, 'E'},
                                       {"snapshot-after-bytes", required_argument, NULL, 'B'},
                                       {"insecure", no_argument, NULL, 'i'},
                                       {"tls-cert", required_argument, NULL, 'C'},
                                       {"tls-key", required_argument, NULL, 'K'},
                                       {"tls-ca", required_argument, NULL, 'A'},
                                       {"allow", required_argument, NULL, 'W'},
                                       CLI_KEY_FILE_OPTION,
                                       {"max-connections-per-peer", required_argument, NULL, 'P'},
                                       {"allow-root", no_argument, NULL, 'R'},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"metrics", required_argument, NULL, 'M'},
                                       {"archive-to", required_argument, NULL, 'a'},
                                       {"s3-endpoint", required_argument, NULL, 'e'},
                                       {"s3-region", required_argument, NULL, 'g'},
                                       {"archive-timeout", required_argument, NULL, 'T'},
                                       {"max-replay-seconds", required_argument, NULL, 'X'},
                                       {"retain-snapshots", required_argument, NULL, 'N'},
                                       {"retain-days", required_argument, NULL, 'D'},
                                       CLI_BOLT_RX_OPTIONS,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *metrics = NULL, *key_file = NULL;
  sl_upload_options uo = {.archive_timeout_s = 60};
  bool archive_timeout = false;
  sl_receiver_options ro = {.ready_fd = -1, .snapshot_after_bytes = 1ull << 30};
  const char *ready_file = NULL;
  bool allow_root = false;
  uint64_t v;
  int c, taken;
  cli_bolt_rx bolt = {0};
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    if ((taken = cli_bolt_rx_option(&bolt, c, optarg))) {
      if (taken == CLI_USAGE) return CLI_USAGE;
      continue;
    }
    switch (c) {
    case 'h': return cli_help(receive_help);
    case 'l': ro.listen = optarg; break;
    case 'd': ro.data_dir = optarg; break;
    case 'b': if (cli_parse_ms("receive", "heartbeat-ms", optarg, &ro.heartbeat_ms)) return CLI_USAGE; break;
    case 't': if (cli_parse_ms("receive", "timeout-ms", optarg, &ro.timeout_ms)) return CLI_USAGE; break;
    case 'c':
      if (cli_parse_u64("receive", "max-connections", optarg, &v)) return CLI_USAGE;
      if (v < 1 || v > 65536) return cli_usage("receive", "--max-connections must lie between 1 and 65536");
      ro.max_connections = (int)v;
      break;
    case 'm':
      if (cli_parse_size("receive", "max-batch-bytes", optarg, &v)) return CLI_USAGE;
      if (v < 65536 || v > SL_BATCH_RAW_MAX)
        return cli_usage("receive", "--max-batch-bytes must lie between 64K and %uM", SL_BATCH_RAW_MAX >> 20);
      ro.max_batch_bytes = (size_t)v;
      break;
    case 'r': ready_file = optarg; break;
    case 'S':
      if (cli_parse_size("receive", "segment-size", optarg, &ro.segment_size)) return CLI_USAGE;
      if (ro.segment_size < SL_SEG_SIZE_MIN)
        return cli_usage("receive", "--segment-size must be at least %llu", (unsigned long long)SL_SEG_SIZE_MIN);
      break;
    case 'E':
      if (cli_parse_u64("receive", "snapshot-every", optarg, &ro.snapshot_every_s)) return CLI_USAGE;
      break;
    case 'B':
      if (cli_parse_size("receive", "snapshot-after-bytes", optarg, &ro.snapshot_after_bytes)) return CLI_USAGE;
      break;
    case 'i': ro.insecure = true; break;
    case 'C': ro.tls_cert = optarg; break;
    case 'K': ro.tls_key = optarg; break;
    case 'A': ro.tls_ca = optarg; break;
    case 'W': ro.allow_file = optarg; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    case 'P':
      if (cli_parse_u64("receive", "max-connections-per-peer", optarg, &v)) return CLI_USAGE;
      if (v < 1 || v > 65536)
        return cli_usage("receive", "--max-connections-per-peer must lie between 1 and 65536");
      ro.max_connections_per_peer = (int)v;
      break;
    case 'R': allow_root = true; break;
    case 'v': sl_diag_set_verbose(true); break;
    case 'M': metrics = optarg; break;
    case 'a': uo.url = optarg; break;
    case 'e': uo.endpoint = optarg; break;
    case 'g': uo.region = optarg; break;
    case 'X': {
      char *end;
      errno = 0;
      ro.max_replay_s = strtod(optarg, &end);
      if (errno || end == optarg || *end || !(ro.max_replay_s >= 0) || ro.max_replay_s > 1e9)
        return cli_usage("receive", "--max-replay-seconds: '%s' is not a number of seconds >= 0", optarg);
      break;
    }
    case 'N':
      if (cli_parse_u64("receive", "retain-snapshots", optarg, &ro.retain_snapshots)) return CLI_USAGE;
      uo.retain_snapshots = ro.retain_snapshots;
      break;
    case 'D': {
      char *end;
      errno = 0;
      ro.retain_days = strtod(optarg, &end);
      if (errno || end == optarg || *end || !(ro.retain_days >= 0) || ro.retain_days > 36500)
        return cli_usage("receive", "--retain-days: '%s' is not a number of days between 0 and 36500", optarg);
      uo.retain_days = ro.retain_days;
      break;
    }
    case 'T':
      if (cli_parse_u64("receive", "archive-timeout", optarg, &uo.archive_timeout_s)) return CLI_USAGE;
      if (uo.archive_timeout_s > 86400 * 365) return cli_usage("receive", "--archive-timeout: at most a year of seconds");
      archive_timeout = true;
      break;
    default: return cli_usage("receive", NULL);
    }
  }
  if (optind < argc) return cli_usage("receive", "unexpected argument '%s'", argv[optind]);
  if (!ro.listen) return cli_usage("receive", "--listen HOST:PORT is required");
  if (!ro.data_dir) return cli_usage("receive", "--data DIR is required");
  if (cli_bolt_rx_check(&bolt)) return CLI_USAGE;
  sl_s3_url s3url;
  if (uo.url && sl_s3_url_parse(uo.url, &s3url))
    return cli_usage("receive", "--archive-to: '%s' is not s3://BUCKET[/PREFIX] (keys: [A-Za-z0-9._/-])", uo.url);
  if ((uo.endpoint || uo.region || archive_timeout) && !uo.url)
    return cli_usage("receive", "--s3-endpoint, --s3-region and --archive-timeout need --archive-to");
  char host[256], port[16];
  if (sl_hostport_parse(ro.listen, host, sizeof host, port, sizeof port))
    return cli_usage("receive", "--listen: '%s' is not HOST:PORT", ro.listen);
  if (metrics && sl_hostport_parse(metrics, host, sizeof host, port, sizeof port))
    return cli_usage("receive", "--metrics: '%s' is not HOST:PORT", metrics);
  if (cli_tls_check("receive", &(cli_tls){.cert = ro.tls_cert, .key = ro.tls_key, .ca = ro.tls_ca,
                                          .allow = ro.allow_file, .insecure = ro.insecure}))
    return CLI_USAGE;
  if (geteuid() == 0 && !allow_root) {
    sl_diag_error("refusing to run as root: run the receiver as its own unprivileged user "
                 "(README \"Security\"), or pass --allow-root");
    return CLI_FAIL;
  }
  if (cli_keyring(key_file, &ro.keyring)) return CLI_FAIL;
  if (!ro.keyring)
    sl_diag_info("no key file: streams whose frames are sealed are archive-only (no standby)");
  if (ready_file) {
    ro.ready_fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ro.ready_fd < 0) {
      sl_diag_error("%s: %s", ready_file, strerror(errno));
      return CLI_FAIL;
    }
  }

  atomic_int *stop = cli_stop_on_signals();
  cli_daemon d;
  if (cli_daemon_start(&d, metrics)) return CLI_FAIL;
  ro.metrics = d.metrics;
  ro.on_ready = cli_notify_ready;
  ro.ready_arg = (void *)"listening";
  sl_uploader *up = NULL;
  uo.data_dir = ro.data_dir;
  ro.off_site = uo.url != NULL;
  if (uo.url && sl_upload_start(&uo, &up)) {
    cli_daemon_stop(&d);
    return CLI_FAIL;
  }
  if (cli_bolt_rx_start(&bolt, &ro)) {
    sl_upload_stop(up);
    cli_daemon_stop(&d);
    return CLI_FAIL;
  }
  int rc = sl_receiver_run(&ro, stop);
  cli_bolt_rx_stop(&bolt);
  sl_upload_stop(up);
  cli_daemon_stop(&d);
  sl_keyring_free(ro.keyring);
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- status ---------------------------------------------------------------------- */
static const char status_help[] =
    "Usage: shiplog status STORE [--json]\n"
    "       shiplog status --data DIR [--stream NAME] [--json]\n"
    "\n"
    "Per stream: the primary's last committed txid, the shipped, durable (on the\n"
    "receiver's disk) and applied (visible on the standby) txids, the lag in\n"
    "transactions, bytes and milliseconds, and the connection state.\n"
    "STORE: the shippers of that primary store, then every stale consumer of its\n"
    "log (behind the durable txid and not moved for a day: a shipper or dump chain\n"
    "that is gone holds the log for ever; see shiplog consumers STORE).\n"
    "--data: the streams of a receiver's data directory (works whether or not the\n"
    "receiver runs).\n"
    "\n"
    "  --data DIR     a receiver's data directory\n"
    "  --stream NAME  only this stream\n"
    "  --json         one JSON object: {\"streams\": [...]} \n"
    "\n"
    "--data also says from which txid (and commit time) each stream can be\n"
    "restored; a stream that cannot be restored and has no base on its way is\n"
    "in state \"unrestorable\", and status then exits 1.\n"
    "\n"
    "A receiver run with --archive-to also reports, per stream, the newest txid in\n"
    "object storage, the upload lag and the last upload error (--json: \"upload\").\n";

static int names_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_list_names(const char *dir, const char *suffix, char ***out, size_t *count) {
  DIR *d = opendir(dir);
  *out = NULL;
  *count = 0;
  if (!d) return errno == ENOENT ? 0 : -errno;
  size_t cap = 0, sl = strlen(suffix);
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n <= sl || strcmp(e->d_name + n - sl, suffix) != 0) continue;
    char *name = strndup(e->d_name, n - sl);
    if (!name) { rc = -ENOMEM; break; }
    if (!sl_stream_name_valid(name)) { free(name); continue; }
    if (*count == cap) {
      cap = cap ? 2 * cap : 8;
      char **p = realloc(*out, cap * sizeof *p);
      if (!p) { free(name); rc = -ENOMEM; break; }
      *out = p;
    }
    (*out)[(*count)++] = name;
  }
  closedir(d);
  if (*count) qsort(*out, *count, sizeof **out, names_cmp);
  return rc;
}

void cli_free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

static void print_header(void) {
  printf("%-20s %-12s %-21s %10s %10s %10s %10s %8s %10s %8s\n", "STREAM", "STATE", "PEER",
         "COMMITTED", "SHIPPED", "DURABLE", "APPLIED", "LAG_TX", "LAG_BYTES", "LAG_MS");
}

static void print_row(const char *name, const char *state, const char *peer, uint64_t committed,
                      uint64_t shipped, uint64_t durable, const char *applied, uint64_t lag_tx,
                      uint64_t lag_bytes, uint64_t lag_ms, const char *error) {
  printf("%-20s %-12s %-21s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10s %8" PRIu64 " %10" PRIu64
         " %8" PRIu64 "\n",
         name, state, peer[0] ? peer : "-", committed, shipped, durable, applied, lag_tx, lag_bytes,
         lag_ms);
  if (error[0]) printf("  error: %s\n", error);
}

/* The primary's side: STORE/ship/NAME.status. */
static int status_store(const char *store, bool json) {
  char shipdir[4096], logdir[4096];
  char **names;
  size_t n;
  uint64_t committed = 0;
  cli_join(logdir, sizeof logdir, store, "log");
  int rc = sl_log_read_durable_mark(logdir, &committed);
  if (rc && rc != SL_ENOTFOUND) return CLI_FAIL;
  if (rc == SL_ENOTFOUND && access(logdir, F_OK) != 0) {
    sl_diag_error("%s: not a store (no log directory)", store);
    return CLI_FAIL;
  }
  rc = cli_list_names(cli_join(shipdir, sizeof shipdir, store, "ship"), ".status", &names, &n);
  if (rc) {
    sl_diag_error("%s: %s", shipdir, sl_strerror(rc));
    return CLI_FAIL;
  }
  json_t *arr = json_array();
  if (!json) print_header();
  for (size_t i = 0; i < n; i++) {
    sl_ship_status ss;
    rc = sl_ship_status_read(store, names[i], &ss);
    if (rc) {
      sl_diag_error("%s: stream %s: cannot read its status: %s", store, names[i], sl_strerror(rc));
      continue;
    }
    uint64_t com = SL_MAX(committed, ss.committed);
    uint64_t lag_tx = com > ss.applied ? com - ss.applied : 0;
    uint64_t lag_bytes = sl_log_bytes_after(logdir, ss.applied, com);
    if (json) {
      json_array_append_new(
          arr, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
                         "stream", names[i], "state", ss.state, "peer", ss.peer,
                         "committed", (json_int_t)com, "shipped", (json_int_t)ss.shipped,
                         "durable", (json_int_t)ss.durable, "applied", (json_int_t)ss.applied,
                         "lag_tx", (json_int_t)lag_tx, "lag_bytes", (json_int_t)lag_bytes,
                         "lag_ms", (json_int_t)ss.lag_ms, "bytes", (json_int_t)ss.bytes,
                         "batches", (json_int_t)ss.batches, "reconnects", (json_int_t)ss.reconnects,
                         "updated_us", (json_int_t)ss.updated_us, "error", ss.error));
    } else {
      char applied[24];
      snprintf(applied, sizeof applied, "%" PRIu64, ss.applied);
      print_row(names[i], ss.state, ss.peer, com, ss.shipped, ss.durable, applied, lag_tx,
                lag_bytes, ss.lag_ms, ss.error);
    }
  }
  cli_free_names(names, n);
  /* Who holds the log back without moving (cmd_consumers.c, STALE). */
  json_t *consumers = json ? json_array() : NULL;
  size_t listed, stale;
  if (!json && n == 0) printf("(no shipper has run on %s)\n", store);
  if (cli_consumers_report(logdir, CLI_STALE_AFTER_DEFAULT_S, true, consumers, &listed, &stale)) {
    json_decref(arr);
    json_decref(consumers);
    return CLI_FAIL;
  }
  if (!json) {
    json_decref(arr);
    return CLI_OK;
  }
  return cli_json_print(json_pack("{s:s,s:I,s:o,s:o,s:I,s:s}", "store", store, "committed", (json_int_t)committed,
                                  "streams", arr, "consumers", consumers, "stale_consumers", (json_int_t)stale,
                                  "version", sl_version()));
}

/* The receiver's side: DIR/streams/NAME. */
static int status_data(const char *data, const char *only, bool json) {
  char streams[4096], archive[4096];
  char **names = NULL;
  size_t n = 0;
  int rc, status = CLI_OK;
  if (only) {
    if (!sl_stream_name_valid(only))
      return cli_usage("status", "--stream: '%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", only);
    names = malloc(sizeof *names);
    if (!names || !(names[0] = strdup(only))) {
      free(names);
      return CLI_FAIL;
    }
    n = 1;
  } else {
    if (access(data, F_OK) != 0) {
      sl_diag_error("%s: %s", data, strerror(errno));
      return CLI_FAIL;
    }
    rc = cli_list_names(sl_stream_path(streams, sizeof streams, data, NULL, NULL), "", &names, &n);
    if (rc) {
      sl_diag_error("%s: %s", streams, sl_strerror(rc));
      return CLI_FAIL;
    }
  }
  json_t *arr = json_array();
  if (!json) print_header();
  for (size_t i = 0; i < n; i++) {
    sl_stream_status st;
    rc = sl_stream_status_read(data, names[i], &st);
    if (rc) {
      sl_diag_error("%s: stream %s: %s", data, names[i],
                   rc == SL_ENOTFOUND ? "no such stream" : sl_strerror(rc));
      status = CLI_FAIL;
      continue;
    }
    /* A stream nothing can be restored from, and no base on its way, is
     * a failure of the backup it claims to be: exit 1, like an unreadable one. */
    if (strcmp(st.state, "unrestorable") == 0) status = CLI_FAIL;
    sl_upload_status up;
    sl_upload_status_read(data, names[i], &up);
    bool standby = access(sl_stream_path(streams, sizeof streams, data, names[i], SL_STREAM_STANDBY), F_OK) == 0;
    sl_stream_path(archive, sizeof archive, data, names[i], SL_STREAM_ARCHIVE);
    uint64_t com = SL_MAX(st.primary_committed, st.durable);
    uint64_t pos = standby ? st.applied : st.durable;
    uint64_t lag_tx = com > pos ? com - pos : 0;
    uint64_t lag_bytes = standby ? sl_log_bytes_after(archive, st.applied, st.durable) : 0;
    if (json) {
      json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
                            "stream", names[i], "state", st.state, "peer", st.peer,
                            "first_txid", (json_int_t)st.first_txid, "committed", (json_int_t)com,
                            "shipped", (json_int_t)st.received, "durable", (json_int_t)st.durable,
                            "applied", (json_int_t)st.applied, "standby", standby,
                            "lag_tx", (json_int_t)lag_tx, "lag_bytes", (json_int_t)lag_bytes,
                            "lag_ms", (json_int_t)st.lag_ms, "bytes", (json_int_t)st.bytes,
                            "batches", (json_int_t)st.batches,
                            "primary_time_us", (json_int_t)st.primary_time_us,
                            "last_commit_us", (json_int_t)st.last_commit_us,
                            "reachable_time_us", (json_int_t)st.reachable_time_us,
                            "updated_us", (json_int_t)st.updated_us, "error", st.error);
      /* BASE SHIPPING: from where a restore can start; "base" says why not. */
      json_object_set_new(o, "restorable", json_boolean(st.restorable));
      json_object_set_new(o, "restorable_from_txid",
                          st.restorable ? json_integer((json_int_t)st.restorable_txid) : json_null());
      json_object_set_new(o, "restorable_from_time_us",
                          st.restorable ? json_integer((json_int_t)st.restorable_us) : json_null());
      json_object_set_new(o, "base", json_string(st.base));
      if (up.present)
        json_object_set_new(o, "upload",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "uploaded_txid", (json_int_t)up.uploaded_txid,
                                      "lag_tx", (json_int_t)up.lag_tx, "pending_bytes", (json_int_t)up.pending_bytes,
                                      "pending_files", (json_int_t)up.pending_files, "objects", (json_int_t)up.objects,
                                      "bytes", (json_int_t)up.bytes, "updated_us", (json_int_t)up.updated_us,
                                      "error", up.error));
      json_array_append_new(arr, o);
    } else {
      char applied[24];
      if (standby) snprintf(applied, sizeof applied, "%" PRIu64, st.applied);
      else snprintf(applied, sizeof applied, "-");
      print_row(names[i], st.state, st.peer, com, st.received, st.durable, applied, lag_tx,
                lag_bytes, st.lag_ms, st.error);
      char when[64] = "the empty store";
      if (st.restorable && st.restorable_us) sl_time_format(st.restorable_us, when, sizeof when);
      if (st.restorable && !st.restorable_txid) printf("  restorable from txid 1 on (the base is the empty store)\n");
      else if (st.restorable) printf("  restorable from txid %" PRIu64 " (%s)\n", st.restorable_txid, when);
      else if (strcmp(st.base, "none") != 0 && strcmp(st.state, "unrestorable") != 0)
        printf("  not restorable yet: a base is %s\n", strcmp(st.base, "receiving") == 0 ? "arriving"
                                                         : "stored, the archive has not reached its txid");
      if (up.present)
        printf("  upload: object storage holds txids up to %" PRIu64 " (lag %" PRIu64 " tx, %" PRIu64
               " bytes in %" PRIu64 " files to upload)%s%s\n",
               up.uploaded_txid, up.lag_tx, up.pending_bytes, up.pending_files, up.error[0] ? "; error: " : "",
               up.error);
    }
  }
  cli_free_names(names, n);
  if (!json) {
    if (n == 0) printf("(no streams in %s)\n", data);
    json_decref(arr);
    return status;
  }
  int prc = cli_json_print(json_pack("{s:s,s:o,s:s}", "data", data, "streams", arr, "version", sl_version()));
  return status != CLI_OK ? status : prc;
}

int cmd_status(int argc, char **argv) {
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *data = NULL, *stream = NULL;
  bool json = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(status_help);
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    case 'j': json = true; break;
    default: return cli_usage("status", NULL);
    }
  }
  if (data) {
    if (optind < argc) return cli_usage("status", "give either STORE or --data DIR, not both");
    return status_data(data, stream, json);
  }
  if (stream) return cli_usage("status", "--stream needs --data DIR");
  if (cli_positional(argc, argv, "status", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  return status_store(pos[0], json);
}
