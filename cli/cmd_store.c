/*
 * The store subcommands: init, exec, stats, log, verify (spec/cli.md, "The
 * store").
 *
 * stats, log and verify open the store read-only or read only its log
 * directory, so they work beside a running writer. log and verify read the
 * log with sl_log_reader up to the durable mark (frames past it may be an
 * append in progress).
 *
 * VERIFY is the store's sl_store_verify (store/verify.c: pages, every
 * frame, state against a replay); verify here passes it the canonical
 * export and prints its one-line summary.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "interchange.h"
#include "sl_base.h"

/* ---- init ----------------------------------------------------------------------- */
static const char init_help[] =
    "Usage: shiplog init DIR [--segment-size BYTES]\n"
    "\n"
    "Create an empty store in DIR (created if missing; must be empty).\n"
    "\n"
    "  --segment-size BYTES  size of each log segment file (suffix K, M or G;\n"
    "                        default 64M, at least 4K)\n";

int cmd_init(int argc, char **argv) {
  static const struct option opts[] = {
      {"segment-size", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {0}};
  sl_store_options so = {0};
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(init_help);
    case 's':
      if (cli_parse_size("init", "segment-size", optarg, &so.segment_size)) return CLI_USAGE;
      if (so.segment_size < SL_SEG_SIZE_MIN || so.segment_size > SL_FRAME_MAX * 4ull)
        return cli_usage("init", "--segment-size must lie between %llu and %llu bytes",
                         (unsigned long long)SL_SEG_SIZE_MIN, (unsigned long long)SL_FRAME_MAX * 4);
      break;
    default: return cli_usage("init", NULL);
    }
  }
  if (cli_positional(argc, argv, "init", 1, (const char *[]){"DIR"}, &pos)) return CLI_USAGE;
  int rc = sl_store_create(pos[0], &so);
  if (rc) {
    sl_diag_error("%s: cannot create store: %s", pos[0], sl_strerror(rc));
    return CLI_FAIL;
  }
  return CLI_OK;
}

/* ---- exec ------------------------------------------------------------------------- */
static const char exec_help[] =
    "Usage: shiplog exec DIR FILE|- [--stop-on-error] [--quiet] [--json]\n"
    "       shiplog exec DIR FILE.cypher | --cypher FILE|-   (see exec --cypher --help)\n"
    "\n"
    "Apply a mutation file (JSON Lines, one transaction per line; see\n"
    "spec/mutations.md) to the store in DIR. '-' reads standard input.\n"
    "A store whose data.mdb fails its page check is refused before any write.\n"
    "Ids the store assigns are printed as 'node ID' / 'rel ID'. A line that is\n"
    "malformed or breaks a rule is reported as FILE:LINE: reason and applies\n"
    "nothing; the other lines go on. Exit status 1 if any line failed.\n"
    "A progress line shows on a terminal; a summary line (transactions applied\n"
    "and failed, ops, seconds) ends the run on stderr.\n"
    "\n"
    "  --stop-on-error  end the run at the first failed line\n"
    "  --quiet          no progress line, no summary\n"
    "  --json           one JSON object on standard output instead of the summary\n"
    "                   (the assigned ids are then not printed)\n";

static bool cypher_exec(int argc, char **argv) {
  if (cli_option_given(argc, argv, "cypher")) return true;
  for (int i = 1; i < argc; i++) {
    size_t n = strlen(argv[i]);
    if (argv[i][0] != '-' && n > 7 && !strcmp(argv[i] + n - 7, ".cypher")) return true;
  }
  return false;
}

int cmd_exec(int argc, char **argv) {
  if (cypher_exec(argc, argv)) return cli_exec_cypher(argc, argv);
  static const struct option opts[] = {{"stop-on-error", no_argument, NULL, 's'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  sl_exec_options eo = {.ids_out = stdout};
  bool quiet = false, json = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(exec_help);
    case 's': eo.stop_on_error = true; break;
    case 'q': quiet = true; break;
    case 'j': json = true; break;
    default: return cli_usage("exec", NULL);
    }
  }
  if (cli_positional(argc, argv, "exec", 2, (const char *[]){"DIR", "FILE"}, &pos)) return CLI_USAGE;
  const char *dir = pos[0], *file = pos[1];
  bool std = !strcmp(file, "-");
  FILE *in = std ? stdin : fopen(file, "r");
  if (!in) {
    sl_diag_error("%s: %s", file, sl_strerror(-errno));
    return CLI_FAIL;
  }
  sl_store *st;
  if (cli_open_store(dir, 0, &st)) {
    if (!std) fclose(in);
    return CLI_FAIL;
  }
  /* LMDB trusts every page it reaches and may abort on a damaged one while
   * writing: no commit goes into a data.mdb that fails its check. */
  int crc = sl_store_check(st);
  if (crc) {
    sl_diag_error("%s: refusing to write: %s/data.mdb: %s", dir, dir, sl_strerror(crc));
    sl_store_close(st);
    if (!std) fclose(in);
    return CLI_FAIL;
  }
  cli_progress prog;
  cli_progress_init(&prog, "exec", true, quiet);
  eo.progress = cli_progress_update;
  eo.progress_arg = &prog;
  if (json) eo.ids_out = NULL;
  sl_exec_result res;
  uint64_t t0 = sl_mono_ns();
  int rc = sl_mutations_exec(st, in, std ? "<stdin>" : file, &eo, &res);
  sl_store_close(st);
  cli_progress_end(&prog);
  if (!std) fclose(in);
  double secs = cli_seconds_since(t0);
  if (res.failed)
    sl_diag_error("%" PRIu64 " of %" PRIu64 " transactions failed", res.failed, res.failed + res.committed);
  if (json) {
    int prc = cli_json_print(json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:f}", "store", dir, "file", file,
                                       "lines", (json_int_t)res.lines, "committed", (json_int_t)res.committed,
                                       "failed", (json_int_t)res.failed, "ops", (json_int_t)res.ops, "last_txid",
                                       (json_int_t)res.last_txid, "bytes", (json_int_t)res.bytes, "ok", rc == 0,
                                       "seconds", secs));
    return rc ? CLI_FAIL : prc;
  }
  if (!quiet)
    fprintf(stderr, "exec: %" PRIu64 " transactions applied, %" PRIu64 " failed, %" PRIu64 " ops, last txid %" PRIu64
                    ", %.2f s (%.0f tx/s)\n",
            res.committed, res.failed, res.ops, res.last_txid, secs, secs > 0 ? (double)res.committed / secs : 0.0);
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- compact ------------------------------------------------------------------------- */
static const char compact_help[] =
    "Usage: shiplog compact STORE\n"
    "\n"
    "Give back the space STORE's data.mdb holds beyond its live data: a\n"
    "compacting copy of LMDB replaces data.mdb (a store, a standby or a\n"
    "restored store). Offline: refused while any process has STORE open.\n"
    "Needs free space for the copy, about the size of the live data.\n";

int cmd_compact(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(compact_help);
    default: return cli_usage("compact", NULL);
    }
  }
  if (cli_positional(argc, argv, "compact", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  uint64_t before, after;
  int rc = sl_store_compact(pos[0], &before, &after);
  if (rc) {
    sl_diag_error("%s: not compacted: %s", pos[0], sl_strerror(rc));
    return CLI_FAIL;
  }
  printf("compact: %s/data.mdb %" PRIu64 " -> %" PRIu64 " bytes\n", pos[0], before, after);
  return CLI_OK;
}

/* ---- stats ------------------------------------------------------------------------- */
static const char stats_help[] =
    "Usage: shiplog stats DIR [--json]\n"
    "\n"
    "Print the store's node and relationship counts, its last txid and commit\n"
    "time, its log segments (count, bytes, txid range), the LMDB file size, the\n"
    "bytes LMDB uses of it and the share of those free for reuse, and the\n"
    "checkpoint txid. Opens the store read-only (a writer may be running).\n"
    "A receiver's standby (DIR/streams/NAME/standby) has no log: its log line\n"
    "says \"standby (no log)\" (\"standby\":true, \"log\":null in JSON).\n"
    "\n"
    "  --json  one JSON object instead of the table\n";

typedef struct log_facts {
  size_t segments;
  uint64_t bytes, first_txid, durable_txid;
  bool has_durable;
} log_facts;

/* Segments and durable mark of DIR/log, with a message naming it on failure. */
static int read_log_facts(const char *logdir, log_facts *lf) {
  sl_seg_info *segs = NULL;
  *lf = (log_facts){0};
  int rc = sl_log_list(logdir, &segs, &lf->segments);
  if (rc) {
    sl_diag_error("%s: cannot list the log: %s", logdir, sl_strerror(rc));
    return rc;
  }
  for (size_t i = 0; i < lf->segments; i++) lf->bytes += segs[i].size;
  lf->first_txid = lf->segments ? segs[0].first_txid : 0;
  free(segs);
  rc = sl_log_read_durable_mark(logdir, &lf->durable_txid);
  lf->has_durable = rc == 0;
  if (rc && rc != SL_ENOTFOUND) {
    sl_diag_error("%s: cannot read the durable mark: %s", logdir, sl_strerror(rc));
    return rc;
  }
  return 0;
}

static void put_u64_or_null(bool has, uint64_t v) {
  if (has)
    printf("%" PRIu64, v);
  else
    fputs("null", stdout);
}

int cmd_stats(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
  bool json = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(stats_help);
    case 'j': json = true; break;
    default: return cli_usage("stats", NULL);
    }
  }
  if (cli_positional(argc, argv, "stats", 1, (const char *[]){"DIR"}, &pos)) return CLI_USAGE;
  const char *dir = pos[0];
  char path[4096], idhex[2 * SL_STORE_ID_SIZE + 1], t[32];
  sl_store *st;
  sl_view *v = NULL;
  sl_counts cn;
  log_facts lf = {0};
  int status = CLI_FAIL, rc;

  if (cli_open_store(dir, SL_OPEN_RDONLY, &st)) return CLI_FAIL;
  if ((rc = sl_view_begin(st, &v)) || (rc = sl_view_counts(v, &cn))) {
    sl_diag_error("%s: cannot read the store: %s", dir, sl_strerror(rc));
    goto fail;
  }
  /* A standby (DIR/streams/NAME/standby of a receiver) has no log of its own. */
  bool standby = sl_store_no_log(st);
  if (!standby && read_log_facts(cli_join(path, sizeof path, dir, "log"), &lf)) goto fail;
  sl_hex_encode(sl_store_id(st), SL_STORE_ID_SIZE, idhex);

  struct stat sb;
  uint64_t lmdb_bytes = stat(cli_join(path, sizeof path, dir, "data.mdb"), &sb) == 0 ? (uint64_t)sb.st_size : 0;
  sl_space sp;
  if ((rc = sl_store_space(st, &sp))) {
    sl_diag_error("%s/data.mdb: cannot read LMDB's free pages: %s", dir, sl_strerror(rc));
    goto fail;
  }
  double free_share = sp.pages_used ? (double)sp.pages_free / (double)sp.pages_used : 0;
  uint8_t *cp = NULL;
  size_t cplen;
  bool has_cp = sl_read_file(cli_join(path, sizeof path, dir, "checkpoint"), 1024, &cp, &cplen) == 0;
  uint64_t cp_txid = has_cp ? strtoull((char *)cp, NULL, 10) : 0; /* "txid\n" (+ the LMDB meta line) */
  free(cp);
  if (cn.last_commit_us)
    sl_time_format(cn.last_commit_us, t, sizeof t);
  else
    strcpy(t, "-");

  if (json) {
    fputs("{\"store\":", stdout);
    sl_json_put_string(stdout, dir, strlen(dir));
    printf(",\"store_id\":\"%s\",\"nodes\":%" PRIu64 ",\"relationships\":%" PRIu64 ",\"last_txid\":%" PRIu64
           ",\"last_commit_us\":%" PRIu64 ",\"last_commit\":",
           idhex, cn.nodes, cn.rels, cn.applied_txid, cn.last_commit_us);
    if (cn.last_commit_us)
      printf("\"%s\"", t);
    else
      fputs("null", stdout);
    printf(",\"standby\":%s,\"log\":", standby ? "true" : "false");
    if (standby) {
      fputs("null", stdout);
    } else {
      printf("{\"segments\":%zu,\"bytes\":%" PRIu64 ",\"first_txid\":%" PRIu64 ",\"durable_txid\":", lf.segments,
             lf.bytes, lf.first_txid);
      put_u64_or_null(lf.has_durable, lf.durable_txid);
      fputs("}", stdout);
    }
    printf(",\"lmdb_bytes\":%" PRIu64 ",\"lmdb_used_bytes\":%" PRIu64 ",\"lmdb_free_bytes\":%" PRIu64
           ",\"checkpoint_txid\":",
           lmdb_bytes, sp.pages_used * sp.page_size, sp.pages_free * sp.page_size);
    put_u64_or_null(has_cp, cp_txid);
    printf(",\"version\":\"%s\"}\n", sl_version());
  } else {
    printf("store          %s\n", dir);
    printf("store id       %s\n", idhex);
    printf("nodes          %" PRIu64 "\n", cn.nodes);
    printf("relationships  %" PRIu64 "\n", cn.rels);
    printf("last txid      %" PRIu64 " (%s)\n", cn.applied_txid, t);
    if (standby) {
      printf("log            standby (no log)");
    } else {
      printf("log            %zu segment%s, %" PRIu64 " bytes, from txid %" PRIu64, lf.segments,
             lf.segments == 1 ? "" : "s", lf.bytes, lf.first_txid);
      if (lf.has_durable) printf(", durable through %" PRIu64, lf.durable_txid);
    }
    printf("\nlmdb           %" PRIu64 " bytes, %" PRIu64 " in use, %.0f%% of that free", lmdb_bytes,
           sp.pages_used * sp.page_size, 100 * free_share);
    printf(free_share > 0.5 && sp.pages_used * sp.page_size > (64u << 20) ? " (shiplog compact gives it back)\n" : "\n");
    if (has_cp)
      printf("checkpoint     txid %" PRIu64 "\n", cp_txid);
    else
      printf("checkpoint     none\n");
  }
  status = CLI_OK;
fail:
  if (v) sl_view_end(v);
  sl_store_close(st);
  return status;
}

/* ---- log --------------------------------------------------------------------------------- */
static const char log_help[] =
    "Usage: shiplog log DIR [--since TIME] [--from-txid N] [--json]\n"
    "\n"
    "Print the durable records of the store's log, one line each: txid,\n"
    "commit time, ops. Reads the log only (a writer may be running).\n"
    "\n"
    "  --since TIME     only transactions committed after TIME (ISO-8601 with a\n"
    "                   zone, a date alone for midnight UTC, or @SECONDS[.FRACTION])\n"
    "  --from-txid N    start at txid N (with --since: whichever is later)\n"
    "  --json           JSON Lines {\"txid\",\"ts\",\"commit_time_us\",\"ops\"}, the ops\n"
    "                   in the mutation-file format (shiplog exec can run them)\n"
    "  --key-file FILE  at-rest encryption keys (default $SHIPLOG_KEY_FILE):\n"
    "                   open sealed frames (refused without them)\n"
    "  --diverged --data DIR --stream NAME\n"
    "                   only the transactions DIR's stream NAME lacks: those after\n"
    "                   the last txid both histories share (README \"Failover\")\n";

int cmd_log(int argc, char **argv) {
  static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                       {"from-txid", required_argument, NULL, 'f'},
                                       {"json", no_argument, NULL, 'j'},
                                       CLI_KEY_FILE_OPTION,
                                       {"diverged", no_argument, NULL, 'D'},
                                       {"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  bool json = false, has_since = false, diverged = false;
  const char *data = NULL, *stream = NULL;
  uint64_t since = 0, from = 0;
  const char *key_file = NULL;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(log_help);
    case 'j': json = true; break;
    case 's':
      if (cli_parse_time("log", "since", optarg, &since)) return CLI_USAGE;
      has_since = true;
      break;
    case 'f':
      if (cli_parse_u64("log", "from-txid", optarg, &from)) return CLI_USAGE;
      break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    case 'D': diverged = true; break;
    case 'd': data = optarg; break;
    case 'n': stream = optarg; break;
    default: return cli_usage("log", NULL);
    }
  }
  if (cli_positional(argc, argv, "log", 1, (const char *[]){"DIR"}, &pos)) return CLI_USAGE;
  if (diverged != (data && stream) || (!diverged && (data || stream)))
    return cli_usage("log", "--diverged needs --data DIR and --stream NAME (and they need it)");
  if (diverged) return cli_log_diverged(pos[0], data, stream, json);
  char logdir[4096];
  cli_join(logdir, sizeof logdir, pos[0], "log");
  log_facts lf;
  if (read_log_facts(logdir, &lf)) return CLI_FAIL;
  if (from && from < lf.first_txid) {
    sl_diag_error("%s: txid %" PRIu64 " is no longer in the log (it begins at txid %" PRIu64 ")", logdir, from,
                 lf.first_txid);
    return CLI_FAIL;
  }
  from = SL_MAX(from, lf.first_txid);
  if (has_since) {
    uint64_t after;
    int rc = sl_log_find_after_time(logdir, since, &after);
    if (rc) {
      sl_diag_error("%s: cannot search the log by time: %s", logdir, sl_strerror(rc));
      return CLI_FAIL;
    }
    from = SL_MAX(from, after);
  }
  if (lf.has_durable && from > lf.durable_txid) return CLI_OK; /* nothing after it yet */

  sl_log_reader *r;
  sl_keyring *kr;
  /* Frames up to the durable mark are whole and synced: damage among them is
   * corruption, not an append in progress. */
  sl_log_reader_options ro = {.max_txid = lf.durable_txid, .tolerate_tail = !lf.has_durable};
  if (cli_keyring(key_file, &kr)) return CLI_FAIL;
  int rc = sl_log_reader_open(logdir, from, &ro, &r);
  if (rc) {
    sl_diag_error("%s: cannot read from txid %" PRIu64 ": %s", logdir, from, sl_strerror(rc));
    sl_keyring_free(kr);
    return CLI_FAIL;
  }
  sl_frame f;
  while ((rc = sl_log_reader_next(r, &f)) == 0) {
    if ((rc = sl_log_reader_open_frame(r, kr, &f))) break;
    if ((rc = sl_txn_print(f.payload, f.payload_len, json, stdout))) {
      if (rc == SL_ECORRUPT)
        sl_diag_error("%s: segment %" PRIu64 " offset %" PRIu64 ": txid %" PRIu64 " does not unpack", logdir, f.segno,
                     f.offset, f.txid);
      break;
    }
  }
  sl_log_reader_close(r);
  sl_keyring_free(kr);
  if (rc == SL_EEND) rc = 0;
  if (fflush(stdout) != 0 && !rc) {
    rc = -errno;
    sl_diag_error("<stdout>: %s", sl_strerror(rc));
  }
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- verify ---------------------------------------------------------------------------------- */
static const char verify_help[] =
    "Usage: shiplog verify DIR [--json]\n"
    "\n"
    "Check data.mdb's B-tree pages (page numbers, types, key order, counts; a\n"
    "damaged page is named with its offset) and that its databases agree with\n"
    "each other (every label in the label index, properties and relationships\n"
    "of existing entities, adjacency for every relationship, the counts); then\n"
    "every frame of the store's log (length, CRC, txid sequence); then, if the\n"
    "log still begins at txid 1, that the store's state equals a replay of the\n"
    "log (their canonical exports must be byte-equal; the replay is built under\n"
    "$TMPDIR and removed). A store loaded from a dump, imported in several\n"
    "transactions or whose log was pruned has no log from txid 1: its state is\n"
    "checked for consistency only, and the summary says so. Opens the store\n"
    "read-only, so a writer may be running. Prints a one-line summary; exit\n"
    "status 1 on any damage or difference, naming the file and offset, the\n"
    "inconsistent key or the first differing line.\n"
    "\n"
    "  --json  one JSON object instead of the summary\n";

static int export_canonical(sl_view *v, FILE *f, const char *name) {
  return sl_export_canonical(v, f, name, NULL, NULL);
}

int cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
  bool json = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(verify_help);
    case 'j': json = true; break;
    default: return cli_usage("verify", NULL);
    }
  }
  if (cli_positional(argc, argv, "verify", 1, (const char *[]){"DIR"}, &pos)) return CLI_USAGE;
  const char *dir = pos[0];
  sl_verify_result res;
  uint64_t t0 = sl_mono_ns();
  if (sl_store_verify(dir, export_canonical, &res)) {
    if (json) cli_json_print(json_pack("{s:s,s:b}", "store", dir, "ok", false));
    return CLI_FAIL;
  }
  if (json)
    return cli_json_print(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:I,s:I,s:f}", "store", dir, "ok", true,
                                    "frames", (json_int_t)res.frames, "segments", (json_int_t)res.segments,
                                    "first_txid", (json_int_t)res.first_txid, "last_txid", (json_int_t)res.last_txid,
                                    "applied_txid", (json_int_t)res.applied_txid, "state_consistent",
                                    res.state_consistent, "state_replayed", res.state_checked, "nodes",
                                    (json_int_t)res.nodes, "relationships", (json_int_t)res.rels, "seconds",
                                    cli_seconds_since(t0)));
  printf("%s: OK: %" PRIu64 " frames in %zu segment%s valid (txid %" PRIu64 "..%" PRIu64 "); ", dir, res.frames,
         res.segments, res.segments == 1 ? "" : "s", res.first_txid, res.last_txid);
  if (res.state_checked)
    printf("state at txid %" PRIu64 " is consistent and equals a replay of the log (%" PRIu64 " nodes, %" PRIu64
           " relationships)\n",
           res.applied_txid, res.nodes, res.rels);
  else
    printf("state at txid %" PRIu64 " is consistent (%" PRIu64 " nodes, %" PRIu64 " relationships); not compared with "
           "a replay: the log begins at txid %" PRIu64 ", not 1\n",
           res.applied_txid, res.nodes, res.rels, res.first_txid);
  return CLI_OK;
}
