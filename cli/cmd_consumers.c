/*
 * `shiplog consumers STORE [--drop NAME]`: who holds back the pruning of a
 * store's log (store/log.h CONSUMERS), and the stale ones that `status
 * STORE` warns about. A consumer is a file LOGDIR/consumers/NAME holding the
 * last txid it confirmed; its mtime is when it last moved (a consumer
 * rewrites it only when its position moves). What each name means comes
 * from its owner's naming: ship-STREAM@RECEIVER a shipper
 * (sl_ship_consumer_name), dump-chain a dump chain (backup/chain.h).
 *
 * STALE: behind the log's durable txid (it holds segments back) and not
 * moved for --stale-after seconds (default a day): a shipper whose receiver
 * is gone, a dump chain no timer runs any more. A consumer at the durable
 * txid holds nothing, however old its file, so an idle primary's live
 * shipper is never stale. Dropping one lets the next checkpoint prune;
 * a shipper that comes back records its position again, but the segments
 * pruned meanwhile are gone (its receiver then needs a base).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "cli.h"
#include "cmd_repl.h"
#include "sl_base.h"

static const char consumers_help[] =
    "Usage: shiplog consumers STORE [--drop NAME] [--stale-after SECONDS] [--json]\n"
    "\n"
    "List who holds back the pruning of STORE's log: every consumer position in\n"
    "STORE/log/consumers/ with the txid it confirmed, how far behind the log's\n"
    "durable txid it is, the bytes of log it keeps, and since when it has not\n"
    "moved. Shippers are ship-STREAM@RECEIVER (one per stream and receiver),\n"
    "dump chains dump-chain. STORE may also be a receiver's stream directory\n"
    "(DIR/streams/NAME): the consumers of its archive (cascade shippers).\n"
    "\n"
    "A consumer behind the durable txid that has not moved for --stale-after\n"
    "seconds is STALE (also shown by shiplog status STORE): the log is kept for\n"
    "it until it moves on or is dropped.\n"
    "\n"
    "  --drop NAME            remove consumer NAME (its segments may then be\n"
    "                         pruned at the next checkpoint); a shipper still\n"
    "                         running records itself again\n"
    "  --stale-after SECONDS  when a consumer that does not move counts as stale\n"
    "                         (default 86400, a day)\n"
    "  --json                 one JSON object\n";

/* STORE/log, or a stream directory's archive (a cascade's consumers). */
static int consumer_logdir(const char *store, char *out, size_t len) {
  cli_join(out, len, store, "log");
  if (access(out, F_OK) == 0) return CLI_OK;
  cli_join(out, len, store, "archive");
  if (access(out, F_OK) == 0) return CLI_OK;
  sl_diag_error("%s: not a store (no log/) nor a receiver's stream directory (no archive/)", store);
  return CLI_FAIL;
}

static const char *consumer_kind(const char *name) {
  if (!strncmp(name, "ship-", 5)) return "shipper";
  if (!strcmp(name, SL_CHAIN_CONSUMER)) return "dump chain";
  return "other";
}

static void age_text(uint64_t us, char *out, size_t len) {
  uint64_t s = us / 1000000;
  if (s < 120) snprintf(out, len, "%" PRIu64 "s", s);
  else if (s < 7200) snprintf(out, len, "%" PRIu64 "m", s / 60);
  else if (s < 172800) snprintf(out, len, "%" PRIu64 "h", s / 3600);
  else snprintf(out, len, "%" PRIu64 "d", s / 86400);
}

int cli_consumers_report(const char *logdir, uint64_t stale_after_s, bool only_stale, json_t *arr, size_t *listed,
                         size_t *stale) {
  sl_log_consumer *c;
  size_t n;
  uint64_t durable = 0, now = sl_now_us();
  *stale = *listed = 0;
  int rc = sl_log_read_durable_mark(logdir, &durable);
  if ((rc && rc != SL_ENOTFOUND) || (rc = sl_log_consumers_list(logdir, &c, &n))) {
    sl_diag_error("%s: cannot read the consumers: %s", logdir, sl_strerror(rc));
    return CLI_FAIL;
  }
  if (!arr && !only_stale && n)
    printf("%-40s %-10s %12s %10s %10s %8s\n", "CONSUMER", "KIND", "TXID", "BEHIND", "HOLDS", "AGE");
  for (size_t i = 0; i < n; i++) {
    uint64_t behind = durable > c[i].txid ? durable - c[i].txid : 0;
    uint64_t age_us = now > c[i].updated_us ? now - c[i].updated_us : 0;
    uint64_t holds = behind ? sl_log_bytes_after(logdir, c[i].txid, durable) : 0;
    bool is_stale = behind && age_us / 1000000 >= stale_after_s;
    *stale += is_stale;
    if (only_stale && !is_stale) continue;
    char age[32];
    age_text(age_us, age, sizeof age);
    if (arr) {
      json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:f,s:b}", "name", c[i].name, "kind",
                                           consumer_kind(c[i].name), "txid", (json_int_t)c[i].txid, "behind",
                                           (json_int_t)behind, "holds_bytes", (json_int_t)holds, "updated_us",
                                           (json_int_t)c[i].updated_us, "age_seconds", (double)age_us / 1e6,
                                           "stale", is_stale));
    } else if (only_stale) {
      printf("  stale consumer %s (%s) at txid %" PRIu64 ", %" PRIu64 " behind, holds %.1f MiB of log, not "
             "moved for %s: shiplog consumers STORE --drop %s once it is gone for good\n",
             c[i].name, consumer_kind(c[i].name), c[i].txid, behind, (double)holds / (1 << 20), age, c[i].name);
    } else {
      char held[32];
      snprintf(held, sizeof held, "%.1f MiB", (double)holds / (1 << 20));
      printf("%-40s %-10s %12" PRIu64 " %10" PRIu64 " %10s %8s%s\n", c[i].name, consumer_kind(c[i].name), c[i].txid,
             behind, held, age, is_stale ? "  STALE" : "");
    }
  }
  free(c);
  *listed = n;
  return CLI_OK;
}

int cmd_consumers(int argc, char **argv) {
  static const struct option opts[] = {{"drop", required_argument, NULL, 'D'},
                                       {"stale-after", required_argument, NULL, 'S'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *drop = NULL;
  uint64_t stale_after = CLI_STALE_AFTER_DEFAULT_S;
  bool json = false;
  char **pos, logdir[4096];
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(consumers_help);
    case 'D': drop = optarg; break;
    case 'S':
      if (cli_parse_u64("consumers", "stale-after", optarg, &stale_after)) return CLI_USAGE;
      break;
    case 'j': json = true; break;
    default: return cli_usage("consumers", NULL);
    }
  }
  if (cli_positional(argc, argv, "consumers", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  if (consumer_logdir(pos[0], logdir, sizeof logdir)) return CLI_FAIL;
  if (drop) {
    uint64_t txid = 0;
    int rc = sl_log_consumer_get(logdir, drop, &txid);
    if (!rc) rc = sl_log_consumer_remove(logdir, drop);
    if (rc == SL_EINVAL || rc == SL_ENOTFOUND) {
      sl_diag_error("%s: no consumer named \"%s\" (see shiplog consumers %s)", logdir, drop, pos[0]);
      return CLI_FAIL;
    }
    if (rc) return CLI_FAIL; /* logged */
    if (json)
      return cli_json_print(json_pack("{s:s,s:s,s:I}", "store", pos[0], "dropped", drop, "txid", (json_int_t)txid));
    printf("dropped consumer %s (it held the log from txid %" PRIu64 "): segments it kept go at the next "
           "checkpoint\n",
           drop, txid + 1);
    return CLI_OK;
  }
  json_t *arr = json ? json_array() : NULL;
  size_t listed, stale;
  if (cli_consumers_report(logdir, stale_after, false, arr, &listed, &stale)) {
    json_decref(arr);
    return CLI_FAIL;
  }
  uint64_t durable = 0;
  sl_log_read_durable_mark(logdir, &durable);
  if (json)
    return cli_json_print(json_pack("{s:s,s:I,s:o,s:I}", "store", pos[0], "durable", (json_int_t)durable,
                                    "consumers", arr, "stale", (json_int_t)stale));
  if (!listed) printf("(no consumers: %s is pruned up to each checkpoint)\n", logdir);
  return CLI_OK;
}
