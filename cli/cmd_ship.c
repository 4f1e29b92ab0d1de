/*
 * `shiplog ship` (spec/cli.md, "Shipping"): tail a store's log and stream
 * it to a receiver, until SIGINT or SIGTERM (exit 0), a permanent refusal
 * or a local failure (exit 1), or, with --exit-when-caught-up, until the
 * receiver holds everything durable here (exit 0). The signal handlers only
 * set the flag sl_shipper_run polls; it then writes the final consumer
 * position and status before returning.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "cmd_repl.h"
#include "codec.h"
#include "sl_base.h"
#include "sl_status.h"
#include "shipper.h"

static const char ship_help[] =
    "Usage: shiplog ship STORE --to HOST:PORT --stream NAME [options]\n"
    "\n"
    "Tail STORE's transaction log and stream every durable transaction to the\n"
    "receiver at HOST:PORT as stream NAME. Network failures and receiver\n"
    "restarts are retried with backoff for ever, resuming at the receiver's\n"
    "durable txid; a permanent refusal ends it (exit 1). Segments the receiver\n"
    "does not hold yet are kept (consumer ship-NAME). Status: STORE/ship/NAME.status\n"
    "(see shiplog status STORE). Runs until SIGINT or SIGTERM.\n"
    "\n"
    "  --to HOST:PORT          the receiver ([v6]:PORT too)\n"
    "  --stream NAME           stream name, [A-Za-z0-9_.-]{1,64}\n"
    "  --since TIME            a new stream starts with the first transaction\n"
    "                          committed after TIME (incremental backup; ISO-8601\n"
    "                          with a zone, a date alone for midnight UTC, or\n"
    "                          @SECONDS[.FRACTION])\n"
    "  --from-txid N           a new stream starts at txid N\n"
    "                          (both are ignored when the stream already holds txids)\n"
    "  --batch-bytes N         raw bytes per batch (suffix K, M; default 1M)\n"
    "  --batch-delay-us N      wait up to N us to fill a batch (default 0: ship at once)\n"
    "  --window-bytes N        unacknowledged raw bytes in flight (default 32M)\n"
    "  --heartbeat-ms N        heartbeat when idle this long (default 1000)\n"
    "  --timeout-ms N          a receiver silent this long is dead (default 10000)\n"
    "  --backoff-max-ms N      longest wait between reconnects (default 5000)\n"
    "  --io auto|uring|plain   I/O backend (default auto: io_uring when available;\n"
    "                          $SHIPLOG_IO also chooses)\n"
    "  --exit-when-caught-up   exit 0 once the receiver holds everything durable\n"
    "  --tls-cert FILE         TLS 1.3: this shipper's certificate (PEM; chain allowed)\n"
    "  --tls-key FILE          its private key (PEM)\n"
    "  --tls-ca FILE           the CA the receiver's certificate must chain to\n"
    "  --tls-server-name NAME  the name the receiver's certificate must carry\n"
    "                          (default: the HOST of --to)\n"
    "  --insecure              plain TCP: no encryption, no authentication (a\n"
    "                          warning says so); either this or the three --tls-*\n"
    "                          files is required\n"
    "  --key-file FILE         at-rest encryption keys, lines 'KEY_ID HEX' (mode\n"
    "                          0600; default $SHIPLOG_KEY_FILE): every frame is\n"
    "                          sealed with the first key before it leaves\n"
    "  --metrics HOST:PORT     serve Prometheus metrics at http://HOST:PORT/metrics\n"
    "                          (port 0: any free port, logged with --verbose)\n"
    "  --verbose               log connections\n"
    "  --config FILE           read options from FILE ('key = value' lines, keys\n"
    "                          named as the options; the command line wins)\n"
    "  --log-format text|json  log lines for people (default) or log shippers\n"
    "\n"
    "Under systemd (Type=notify) it reports READY=1 once the first session\n"
    "with the receiver is up.\n";

int cmd_ship(int argc, char **argv) {
  static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"since", required_argument, NULL, 'S'},
                                       {"from-txid", required_argument, NULL, 'f'},
                                       {"batch-bytes", required_argument, NULL, 'b'},
                                       {"batch-delay-us", required_argument, NULL, 'd'},
                                       {"window-bytes", required_argument, NULL, 'w'},
                                       {"heartbeat-ms", required_argument, NULL, 'H'},
                                       {"timeout-ms", required_argument, NULL, 'T'},
                                       {"backoff-max-ms", required_argument, NULL, 'B'},
                                       {"io", required_argument, NULL, 'i'},
                                       {"exit-when-caught-up", no_argument, NULL, 'x'},
                                       {"insecure", no_argument, NULL, 'I'},
                                       {"tls-cert", required_argument, NULL, 'C'},
                                       {"tls-key", required_argument, NULL, 'K'},
                                       {"tls-ca", required_argument, NULL, 'A'},
                                       {"tls-server-name", required_argument, NULL, 'N'},
                                       CLI_KEY_FILE_OPTION,
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"metrics", required_argument, NULL, 'M'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  sl_shipper_options o = {0};
  const char *metrics = NULL, *key_file = NULL;
  uint64_t v;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(ship_help);
    case 't': o.to = optarg; break;
    case 's': o.stream = optarg; break;
    case 'S':
      if (cli_parse_time("ship", "since", optarg, &o.since_us)) return CLI_USAGE;
      o.has_since = true;
      break;
    case 'f':
      if (cli_parse_u64("ship", "from-txid", optarg, &o.from_txid)) return CLI_USAGE;
      if (o.from_txid == 0) return cli_usage("ship", "--from-txid: txids start at 1");
      break;
    case 'b':
      if (cli_parse_size("ship", "batch-bytes", optarg, &v)) return CLI_USAGE;
      if (v < 4096 || v > SL_BATCH_RAW_MAX)
        return cli_usage("ship", "--batch-bytes must lie between 4K and %uM", SL_BATCH_RAW_MAX >> 20);
      o.batch_max_bytes = (size_t)v;
      break;
    case 'd':
      if (cli_parse_u64("ship", "batch-delay-us", optarg, &v)) return CLI_USAGE;
      if (v > 10000000) return cli_usage("ship", "--batch-delay-us must be at most 10000000");
      o.batch_delay_us = (uint32_t)v;
      break;
    case 'w':
      if (cli_parse_size("ship", "window-bytes", optarg, &v)) return CLI_USAGE;
      if (v < 65536 || v > (1ull << 32)) return cli_usage("ship", "--window-bytes must lie between 64K and 4G");
      o.window_bytes = (size_t)v;
      break;
    case 'H': if (cli_parse_ms("ship", "heartbeat-ms", optarg, &o.heartbeat_ms)) return CLI_USAGE; break;
    case 'T': if (cli_parse_ms("ship", "timeout-ms", optarg, &o.timeout_ms)) return CLI_USAGE; break;
    case 'B': if (cli_parse_ms("ship", "backoff-max-ms", optarg, &o.backoff_max_ms)) return CLI_USAGE; break;
    case 'i':
      if (!strcmp(optarg, "auto")) o.backend = SL_IO_AUTO;
      else if (!strcmp(optarg, "uring")) o.backend = SL_IO_URING;
      else if (!strcmp(optarg, "plain")) o.backend = SL_IO_PLAIN;
      else return cli_usage("ship", "--io: '%s' is not auto, uring or plain", optarg);
      break;
    case 'x': o.exit_when_caught_up = true; break;
    case 'I': o.insecure = true; break;
    case 'C': o.tls_cert = optarg; break;
    case 'K': o.tls_key = optarg; break;
    case 'A': o.tls_ca = optarg; break;
    case 'N': o.tls_server_name = optarg; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    case 'v': sl_diag_set_verbose(true); break;
    case 'M': metrics = optarg; break;
    default: return cli_usage("ship", NULL);
    }
  }
  if (cli_positional(argc, argv, "ship", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  o.store_dir = pos[0];
  if (!o.to) return cli_usage("ship", "--to HOST:PORT is required");
  if (!o.stream) return cli_usage("ship", "--stream NAME is required");
  if (o.has_since && o.from_txid) return cli_usage("ship", "give either --since or --from-txid, not both");
  char host[256], port[16];
  if (sl_hostport_parse(o.to, host, sizeof host, port, sizeof port))
    return cli_usage("ship", "--to: '%s' is not HOST:PORT", o.to);
  if (!sl_stream_name_valid(o.stream))
    return cli_usage("ship", "--stream: '%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", o.stream);
  if (metrics && sl_hostport_parse(metrics, host, sizeof host, port, sizeof port))
    return cli_usage("ship", "--metrics: '%s' is not HOST:PORT", metrics);
  if (cli_tls_check("ship", &(cli_tls){.cert = o.tls_cert, .key = o.tls_key, .ca = o.tls_ca,
                                       .server_name = o.tls_server_name, .insecure = o.insecure}))
    return CLI_USAGE;

  if (cli_keyring(key_file, &o.keyring)) return CLI_FAIL;
  atomic_int *stop = cli_stop_on_signals();
  cli_daemon d;
  if (cli_daemon_start(&d, metrics)) {
    sl_keyring_free(o.keyring);
    return CLI_FAIL;
  }
  o.metrics = d.metrics;
  o.on_ready = cli_notify_ready;
  o.ready_arg = (void *)"streaming";
  int rc = sl_shipper_run(&o, stop);
  cli_daemon_stop(&d);
  sl_keyring_free(o.keyring);
  return rc ? CLI_FAIL : CLI_OK;
}
