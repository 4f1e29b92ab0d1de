/*
 * Dump chains on the command line (spec/cli.md `dump --chain DIR`; README
 * "Operations", scheduled backups):
 *
 *   shiplog dump --chain DIR [--json]          list the chains, check them
 *   shiplog dump STORE --chain DIR [--full-every D] [--keep-full N]
 *                                              add the next file (a run of
 *                                              shiplog-dump@.timer)
 *   shiplog load --chain DIR --into NEW_DIR    restore the newest state
 *
 * What a chain is, which kind of file comes next, retention and loading
 * are the backup module's (backup/chain.h); this file parses the flags,
 * loads the keys and prints the listing and the one-line summaries.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "cli.h"
#include "sl_base.h"

/* ---- listing ---------------------------------------------------------------------- */

static bool is_full(const sl_chain_file *e) { return e->h.kind == SL_DUMP_FULL; }

int cli_chain_show(const char *dir, sl_keyring *keys, bool json) {
  sl_chain_listing l;
  if (sl_chain_list(dir, keys, true, &l)) return CLI_FAIL;
  json_t *chains = json_array(), *loose = json_array();
  if (!json) printf("%-48s %-5s %10s %10s %-27s %10s\n", "FILE", "KIND", "FIRST", "LAST", "CREATED", "BYTES");
  for (int c = -1; c < l.chains; c++) {
    json_t *files = json_array();
    uint64_t last = 0;
    for (size_t i = 0; i < l.n; i++) {
      const sl_chain_file *e = &l.e[i];
      if (e->chain != c) continue;
      char created[40];
      sl_time_format(e->h.created_us, created, sizeof created);
      const char *kind = e->problem[0] && !e->h.kind ? "?" : is_full(e) ? "full" : "incr";
      if (!json) {
        printf("%-48s %-5s %10" PRIu64 " %10" PRIu64 " %-27s %10" PRIu64 "\n", e->name, kind, e->h.first_txid,
               e->h.last_txid, e->h.kind ? created : "-", e->size);
        if (e->problem[0]) printf("  error: %s\n", e->problem);
      }
      if (e->problem[0]) sl_diag_error("%s/%s: %s", dir, e->name, e->problem);
      json_array_append_new(files, json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:s}", "file", e->name, "kind", kind,
                                             "first_txid", (json_int_t)e->h.first_txid, "last_txid",
                                             (json_int_t)e->h.last_txid, "created", created, "bytes",
                                             (json_int_t)e->size, "error", e->problem));
      if (c >= 0 && e->h.last_txid > last) last = e->h.last_txid;
    }
    if (c < 0) {
      json_array_extend(loose, files);
      json_decref(files);
    } else {
      json_array_append_new(chains, json_pack("{s:I,s:o}", "last_txid", (json_int_t)last, "files", files));
      if (!json) printf("  chain %d: restores txids 1..%" PRIu64 "\n", c + 1, last);
    }
  }
  if (json) {
    cli_json_print(json_pack("{s:s,s:b,s:o,s:o}", "dir", dir, "ok", !l.broken, "chains", chains, "unchained", loose));
  } else {
    json_decref(chains);
    json_decref(loose);
    if (l.n == 0) printf("(no dumps in %s)\n", dir);
  }
  int rc = l.broken ? CLI_FAIL : CLI_OK;
  sl_chain_listing_free(&l);
  return rc;
}

/* ---- adding to a chain -------------------------------------------------------------- */

/* DURATION: N with an optional s, m, h, d or w suffix (seconds by default). */
static int parse_duration(const char *text, uint64_t *out_s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  uint64_t mul = 1;
  switch (*end) {
  case 's': mul = 1; end++; break;
  case 'm': mul = 60; end++; break;
  case 'h': mul = 3600; end++; break;
  case 'd': mul = 86400; end++; break;
  case 'w': mul = 7 * 86400; end++; break;
  default: break;
  }
  if (errno || end == text || *end || text[0] == '-' || v > UINT64_MAX / mul)
    return cli_usage("dump", "--full-every: '%s' is not a duration (N with s, m, h, d or w)", text);
  *out_s = v * mul;
  return CLI_OK;
}

/* One progress line per file written, named by its kind. */
typedef struct add_progress {
  cli_progress p;
  bool quiet;
} add_progress;

static void progress_begin(void *arg, const char *what) {
  add_progress *a = arg;
  cli_progress_init(&a->p, what, false, a->quiet);
}

static void progress_update(void *arg, uint64_t done, uint64_t total) {
  cli_progress_update(&((add_progress *)arg)->p, done, total);
}

static void progress_end(void *arg) { cli_progress_end(&((add_progress *)arg)->p); }

static void removed(void *arg, const char *name) {
  fprintf(stderr, "dump: removed %s (--keep-full %" PRIu64 ")\n", name, *(const uint64_t *)arg);
}

static int add(const char *store, const char *dir, sl_keyring *keys, uint64_t full_every_s, uint64_t keep,
               bool quiet) {
  add_progress prog = {.quiet = quiet};
  sl_chain_add_options o = {.full_every_s = full_every_s, .keyring = keys, .progress_begin = progress_begin,
                            .progress = progress_update, .progress_end = progress_end, .progress_arg = &prog};
  sl_chain_add_result res;
  if (sl_chain_add(store, dir, &o, &res)) return CLI_FAIL;
  if (!quiet && !res.written)
    fprintf(stderr, "dump: nothing new since txid %" PRIu64 " (%s)\n", res.last_txid, res.name);
  if (!quiet && res.written)
    fprintf(stderr, "dump: %s, txids %" PRIu64 "..%" PRIu64 " to %s/%s%s%s%s\n", res.why ? "full" : "incremental",
            res.info.header.first_txid, res.info.header.last_txid, dir, res.name, res.why ? " (" : "",
            res.why ? res.why : "", res.why ? ")" : "");
  return sl_chain_retain(dir, keep, keys, quiet ? NULL : removed, &keep) ? CLI_FAIL : CLI_OK;
}

static const char chain_help[] =
    "Usage: shiplog dump --chain DIR [--json]\n"
    "       shiplog dump STORE --chain DIR [--full-every DURATION] [--keep-full N] [--quiet]\n"
    "       shiplog load --chain DIR --into NEW_DIR [--quiet]\n"
    "\n"
    "A dump chain is a folder of backup files: a full dump, then incrementals that\n"
    "each start where the one before ended, named\n"
    "  <UTC time>-<full|incr>-<first txid>-<last txid>.dump\n"
    "\n"
    "Without STORE: list the chains in DIR, reading every file whole, and check\n"
    "that each incremental follows its parent (same store, first txid = the\n"
    "parent's last + 1). Exit status 1 names any file that does not.\n"
    "\n"
    "With STORE (what shiplog-dump@.timer runs): add one file to DIR. A full dump\n"
    "when DIR has no chain of STORE, when the newest full is older than\n"
    "--full-every, or when the newest chain cannot go on; else an incremental from\n"
    "the chain's last txid + 1 (nothing when no transaction came since). Then keep\n"
    "the newest --keep-full chains, removing older ones whole.\n"
    "\n"
    "load --chain restores the newest chain: its full dump into NEW_DIR, then its\n"
    "incrementals in order; NEW_DIR appears only when all of it is loaded.\n"
    "\n"
    "  --chain DIR           the chain's folder (created by the first dump)\n"
    "  --full-every DURATION a new full dump after this long: N with s, m, h, d\n"
    "                        or w (default 7d; 0: every time)\n"
    "  --keep-full N         keep the newest N chains (default 0: all)\n"
    "  --json                list as one JSON object\n"
    "  --quiet               no progress line, no summary\n"
    "  --key-file FILE       at-rest encryption keys (default\n"
    "                        $SHIPLOG_KEY_FILE): new files are sealed with the\n"
    "                        first, every listed key opens old ones\n";

int cli_dump_chain(int argc, char **argv) {
  static const struct option opts[] = {{"chain", required_argument, NULL, 'c'},
                                       {"full-every", required_argument, NULL, 'F'},
                                       {"keep-full", required_argument, NULL, 'k'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *dir = NULL, *key_file = NULL;
  uint64_t full_every = SL_CHAIN_FULL_EVERY_DEFAULT_S, keep = 0;
  bool json = false, quiet = false, scheduling = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(chain_help);
    case 'c': dir = optarg; break;
    case 'F':
      if (parse_duration(optarg, &full_every)) return CLI_USAGE;
      scheduling = true;
      break;
    case 'k':
      if (cli_parse_u64("dump", "keep-full", optarg, &keep)) return CLI_USAGE;
      scheduling = true;
      break;
    case 'j': json = true; break;
    case 'q': quiet = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("dump", NULL);
    }
  }
  if (!dir) return cli_usage("dump", "--chain needs a DIR");
  if (argc - optind > 1) return cli_usage("dump", "unexpected argument '%s'", argv[optind + 1]);
  if (argc - optind == 0 && scheduling) return cli_usage("dump", "--full-every and --keep-full need a STORE to dump");
  if (argc - optind == 1 && json) return cli_usage("dump", "--json lists a chain: give no STORE");
  sl_keyring *keys;
  if (cli_keyring(key_file, &keys)) return CLI_FAIL;
  int rc = argc - optind == 0 ? cli_chain_show(dir, keys, json) : add(argv[optind], dir, keys, full_every, keep, quiet);
  sl_keyring_free(keys);
  return rc;
}

/* ---- loading a chain ------------------------------------------------------------------ */

int cli_load_chain(int argc, char **argv) {
  static const struct option opts[] = {{"chain", required_argument, NULL, 'c'},
                                       {"into", required_argument, NULL, 'i'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *dir = NULL, *into = NULL, *key_file = NULL;
  bool quiet = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(chain_help);
    case 'c': dir = optarg; break;
    case 'i': into = optarg; break;
    case 'q': quiet = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("load", NULL);
    }
  }
  if (optind < argc) return cli_usage("load", "unexpected argument '%s' (--chain reads DIR)", argv[optind]);
  if (!dir || !into) return cli_usage("load", "--chain DIR needs --into NEW_DIR");
  sl_keyring *keys;
  if (cli_keyring(key_file, &keys)) return CLI_FAIL;
  cli_progress prog;
  cli_progress_init(&prog, "load", true, quiet);
  sl_chain_load_options o = {.keyring = keys, .progress = cli_progress_update, .progress_arg = &prog};
  sl_chain_load_result res;
  int rc = sl_chain_load(dir, into, &o, &res);
  cli_progress_end(&prog);
  sl_keyring_free(keys);
  if (!rc && !quiet)
    fprintf(stderr, "load: %s holds the store at txid %" PRIu64 ": %s and %zu incrementals (%" PRIu64
                    " transactions)\n",
            into, res.last_txid, res.full, res.incrementals, res.applied);
  return rc ? CLI_FAIL : CLI_OK;
}

bool cli_option_given(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, n) && (!argv[i][2 + n] || argv[i][2 + n] == '='))
      return true;
  return cli__config_has(name);
}
