/*
 * `shiplog query` and `shiplog exec --cypher` (spec/query.md): options,
 * parameters and the store; the statements run in query/ (sl_query_script)
 * and the rows are written by interchange/ (sl_results_write).
 *
 * A store that another process holds for writing (writer.lock flocked: a
 * running `serve`, an `exec`), or a standby (no log of its own), is opened
 * read-only; a writing statement there is refused naming that process
 * (found in /proc/locks).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"
#include "interchange.h"
#include "query.h"
#include "sl_base.h"

/* The pid holding DIR/writer.lock, or 0. */
static long lock_holder(const char *dir) {
  char path[4096];
  struct stat sb;
  if (!cli_join(path, sizeof path, dir, "writer.lock") || stat(path, &sb)) return 0;
  FILE *f = fopen("/proc/locks", "r");
  if (!f) return 0;
  char line[512], want[64];
  snprintf(want, sizeof want, "%02x:%02x:%llu ", major(sb.st_dev), minor(sb.st_dev), (unsigned long long)sb.st_ino);
  long pid = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "FLOCK") || !strstr(line, want)) continue;
    char *p = strstr(line, "WRITE");
    if (!p) p = strstr(line, "READ");
    if (p) pid = strtol(p + 5, NULL, 10);
    if (pid == (long)getpid()) pid = 0;
    if (pid) break;
  }
  fclose(f);
  return pid;
}

/* Open for writing when we may, else read-only with the reason. */
static int open_for_query(const char *dir, sl_store **st, bool *read_only, char *reason, size_t rlen) {
  char path[4096];
  struct stat sb;
  long pid = lock_holder(dir);
  bool standby = cli_join(path, sizeof path, dir, "store.id") && !stat(path, &sb) &&
                 cli_join(path, sizeof path, dir, "log") && stat(path, &sb) != 0;
  *read_only = pid || standby;
  reason[0] = 0;
  if (pid) {
    char comm[64] = "", cpath[64];
    snprintf(cpath, sizeof cpath, "/proc/%ld/comm", pid);
    FILE *f = fopen(cpath, "r");
    if (f) {
      if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
      fclose(f);
    }
    snprintf(reason, rlen, "%s is open for writing by another process (pid %ld%s%s); it is open read-only here", dir, pid,
             comm[0] ? ", " : "", comm);
  } else if (standby) {
    snprintf(reason, rlen, "%s is a standby (it follows its primary's log); it is open read-only", dir);
  }
  return cli_open_store(dir, *read_only ? SL_OPEN_RDONLY : 0, st);
}

static int read_all(FILE *in, char **out, size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  if (!buf) return -ENOMEM;
  for (;;) {
    if (n == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        return -ENOMEM;
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, in);
    n += got;
    if (got == 0) break;
  }
  if (ferror(in)) {
    free(buf);
    return -EIO;
  }
  *out = buf;
  *len = n;
  return 0;
}

static int read_file(const char *path, char **out, size_t *len) {
  if (!strcmp(path, "-")) return read_all(stdin, out, len);
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  int rc = read_all(f, out, len);
  fclose(f);
  return rc;
}

typedef struct rows_out {
  sl_results_format fmt;
  bool quiet_stats; /* exec: only statements that return columns print */
} rows_out;

static int print_rows(void *arg, sl_qcursor *c, sl_query_error *err) {
  rows_out *ro = arg;
  const char *const *cols;
  if (ro->quiet_stats && !sl_qcursor_columns(c, &cols)) {
    const sl_qvalue *row;
    int rc;
    while ((rc = sl_qcursor_next(c, &row, err)) == 1) {
    }
    return rc;
  }
  int rc = sl_results_write(stdout, ro->fmt, c, err, "<stdout>", NULL);
  if (rc == 0) fflush(stdout);
  return rc;
}

enum { OPT_PARAM = 1000, OPT_PARAMS, OPT_FORMAT, OPT_TIMEOUT, OPT_MEMORY, OPT_HOPS, OPT_CYPHER };

static const char query_help[] =
    "Usage: shiplog query STORE [QUERY] [--param NAME=JSON ...] [--params FILE|JSON]\n"
    "                     [--format table|jsonl|csv] [--query-timeout MS] [--query-memory BYTES]\n"
    "\n"
    "Run Cypher statements (';'-separated, the last ';' optional; from standard\n"
    "input without QUERY) on STORE, each its own transaction, and print their\n"
    "rows (spec/query.md). A store another process holds for writing, or a\n"
    "standby, is queried read-only: a statement that writes is refused.\n"
    "Errors: QUERY:LINE:COLUMN: Neo4j status code: message, exit status 1.\n"
    "\n"
    "  --param NAME=JSON   a parameter ($NAME), repeatable\n"
    "  --params FILE|JSON  a JSON object of parameters (a file, or the text)\n"
    "  --format F          table (default on a terminal), jsonl (default\n"
    "                      otherwise: one object per row, then a stats line\n"
    "                      after a statement that writes) or csv\n"
    "  --query-timeout MS  fail a statement that runs longer (default: none)\n"
    "  --query-memory N    bytes a statement may hold (K, M, G; default 1G)\n"
    "  --max-hops N        bound of variable-length patterns (default 32)\n";

static const char exec_cypher_help[] =
    "Usage: shiplog exec STORE FILE.cypher\n"
    "       shiplog exec STORE --cypher FILE|-\n"
    "       [--param NAME=JSON ...] [--params FILE|JSON] [--format table|jsonl|csv]\n"
    "       [--query-timeout MS] [--query-memory BYTES]\n"
    "\n"
    "Run a cypher-shell script (spec/query.md): statements end with ';';\n"
    ":begin ... :commit makes one transaction of the statements between\n"
    "(:rollback drops them); a statement outside them is a transaction of its\n"
    "own; :param name => expr and :params {map} set parameters; // comments\n"
    "are skipped. Rows of statements that return some are printed. The first\n"
    "failing statement stops the script: FILE:LINE:COL: code: message, with\n"
    "how many transactions committed before it; exit status 1.\n";

static int run(int argc, char **argv, const char *cmd, bool exec) {
  static const struct option opts[] = {{"param", required_argument, NULL, OPT_PARAM},
                                       {"params", required_argument, NULL, OPT_PARAMS},
                                       {"format", required_argument, NULL, OPT_FORMAT},
                                       {"query-timeout", required_argument, NULL, OPT_TIMEOUT},
                                       {"query-memory", required_argument, NULL, OPT_MEMORY},
                                       {"max-hops", required_argument, NULL, OPT_HOPS},
                                       {"cypher", required_argument, NULL, OPT_CYPHER},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  sl_query_options qo = {0};
  rows_out ro = {isatty(STDOUT_FILENO) ? SL_RESULTS_TABLE : SL_RESULTS_JSONL, exec};
  const char *cypher_file = NULL;
  char why[300];
  int status = CLI_USAGE, c;
  sl_param_set *ps = sl_param_set_new();
  char *text = NULL;
  size_t len = 0;
  sl_store *st = NULL;
  if (!ps) {
    sl_diag_error("out of memory");
    return CLI_FAIL;
  }
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h':
      status = cli_help(exec ? exec_cypher_help : query_help);
      goto out;
    case OPT_PARAM: {
      const char *eq = strchr(optarg, '=');
      if (!eq || eq == optarg) {
        cli_usage(cmd, "--param takes NAME=JSON, not '%s'", optarg);
        goto out;
      }
      if (sl_param_set_add(ps, optarg, (size_t)(eq - optarg), eq + 1, strlen(eq + 1), why, sizeof why)) {
        cli_usage(cmd, "--param %.*s: %s", (int)(eq - optarg), optarg, why);
        goto out;
      }
      break;
    }
    case OPT_PARAMS: {
      char *buf = NULL;
      size_t n = 0;
      const char *json = optarg;
      n = strlen(optarg);
      if (optarg[0] != '{') {
        int rc = read_file(optarg, &buf, &n);
        if (rc) {
          sl_diag_error("%s: %s", optarg, sl_strerror(rc));
          status = CLI_FAIL;
          goto out;
        }
        json = buf;
      }
      int rc = sl_param_set_add(ps, NULL, 0, json, n, why, sizeof why);
      free(buf);
      if (rc) {
        cli_usage(cmd, "--params %s: %s", optarg, why);
        goto out;
      }
      break;
    }
    case OPT_FORMAT:
      if (!strcmp(optarg, "table")) ro.fmt = SL_RESULTS_TABLE;
      else if (!strcmp(optarg, "jsonl")) ro.fmt = SL_RESULTS_JSONL;
      else if (!strcmp(optarg, "csv")) ro.fmt = SL_RESULTS_CSV;
      else {
        cli_usage(cmd, "--format takes table, jsonl or csv, not '%s'", optarg);
        goto out;
      }
      break;
    case OPT_TIMEOUT:
      if (cli_parse_u64(cmd, "query-timeout", optarg, &qo.timeout_ms)) goto out;
      break;
    case OPT_MEMORY:
      if (cli_parse_size(cmd, "query-memory", optarg, &qo.memory_bytes)) goto out;
      break;
    case OPT_HOPS: {
      uint64_t h;
      if (cli_parse_u64(cmd, "max-hops", optarg, &h)) goto out;
      if (!h || h > 1000) {
        cli_usage(cmd, "--max-hops takes 1..1000");
        goto out;
      }
      qo.max_hops = (uint32_t)h;
      break;
    }
    case OPT_CYPHER:
      if (!exec) {
        cli_usage(cmd, "unknown option --cypher");
        goto out;
      }
      cypher_file = optarg;
      break;
    default: cli_usage(cmd, NULL); goto out;
    }
  }
  int npos = argc - optind;
  const char *dir, *name;
  if (exec) {
    if (npos != (cypher_file ? 1 : 2)) {
      cli_usage(cmd, cypher_file ? "exec --cypher takes STORE" : "exec takes STORE FILE.cypher");
      goto out;
    }
    dir = argv[optind];
    if (!cypher_file) cypher_file = argv[optind + 1];
    name = strcmp(cypher_file, "-") ? cypher_file : "<stdin>";
    int rc = read_file(cypher_file, &text, &len);
    if (rc) {
      sl_diag_error("%s: %s", cypher_file, sl_strerror(rc));
      status = CLI_FAIL;
      goto out;
    }
  } else {
    if (npos < 1 || npos > 2) {
      cli_usage(cmd, npos < 1 ? "missing STORE" : "too many arguments (quote the query)");
      goto out;
    }
    dir = argv[optind];
    if (npos == 2) {
      text = strdup(argv[optind + 1]);
      len = text ? strlen(text) : 0;
      name = "query";
      if (!text) {
        status = CLI_FAIL;
        goto out;
      }
    } else {
      name = "<stdin>";
      int rc = read_all(stdin, &text, &len);
      if (rc) {
        sl_diag_error("<stdin>: %s", sl_strerror(rc));
        status = CLI_FAIL;
        goto out;
      }
    }
  }
  bool read_only;
  char reason[512];
  if (open_for_query(dir, &st, &read_only, reason, sizeof reason)) {
    status = CLI_FAIL;
    goto out;
  }
  if (read_only) qo.read_only_reason = reason;
  size_t np;
  const sl_qparam *params = sl_param_set_items(ps, &np);
  sl_script_result res;
  int rc = sl_query_script(st, read_only, text, len, name, &qo, params, np, print_rows, &ro, &res);
  status = rc ? CLI_FAIL : CLI_OK;
out:
  if (st) sl_store_close(st);
  free(text);
  sl_param_set_free(ps);
  return status;
}

int cmd_query(int argc, char **argv) { return run(argc, argv, "query", false); }

int cli_exec_cypher(int argc, char **argv) { return run(argc, argv, "exec", true); }
