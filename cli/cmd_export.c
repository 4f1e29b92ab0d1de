/*
 * export and import: the canonical JSON Lines form (spec/export.md) and
 * Neo4j's forms (spec/cli.md): neo4j-admin CSV files both ways and
 * cypher-shell scripts.
 *
 * export reads one snapshot of a store opened read-only (a writer may be
 * running) and writes to standard output or, through a temporary file that
 * is renamed when complete, to --to FILE; --csv DIR appears complete or not
 * at all (interchange renames a temporary directory). import builds a new
 * store; on failure interchange removes what it made.
 *
 * CSV IMPORT takes neo4j-admin's option names and spellings, so that an
 * existing `neo4j-admin database import full` script works with the command
 * word and the target changed: --nodes=[L1:L2=]F1,F2 (repeatable),
 * --relationships=[TYPE=]F1,F2, characters as `;` (any one Unicode
 * character, UTF-8 in the argument), TAB, \t or U+XXXX, booleans as bare
 * flags or --flag=true|false.
 *
 * @FILE ARGUMENTS are read as picocli (and so neo4j-admin) reads them:
 * whitespace separates arguments, double or single quotes group one with
 * spaces (inside double quotes \" and \\ escape), a line whose first
 * non-blank character is # is a comment. Paths inside stay relative to the
 * working directory, as for neo4j-admin: `export --csv` writes its
 * import.args to be run from the directory it describes.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "cmd_repl.h"
#include "interchange.h"
#include "sl_base.h"

#define ARGS_FILE_MAX (1u << 20)

/* Allocations that live until the command returns. */
typedef struct cli_mem {
  void **p;
  size_t n, cap;
} cli_mem;

static void *keep(cli_mem *m, void *p) {
  if (!p) return NULL;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    void **q = realloc(m->p, cap * sizeof *q);
    if (!q) {
      free(p);
      return NULL;
    }
    m->p = q;
    m->cap = cap;
  }
  return m->p[m->n++] = p;
}

static void mem_free(cli_mem *m) {
  for (size_t i = 0; i < m->n; i++) free(m->p[i]);
  free(m->p);
}

static const char export_help[] = "Usage: shiplog export STORE [--to FILE] [--quiet]\n"
                                  "       shiplog export --data DIR --stream NAME --at-txid N [--to FILE] [--quiet]\n"
                                  "       shiplog export STORE --csv DIR [--quiet]\n"
                                  "       shiplog export STORE --cypher [--to FILE] [--batch-size N] [--quiet]\n"
                                  "\n"
                                  "Write the graph of STORE, read from one snapshot (a writer may be running).\n"
                                  "\n"
                                  "Without a form option: the canonical export (spec/export.md), JSON Lines in\n"
                                  "the shape of APOC's apoc.export.json.all, every node ascending by id, then\n"
                                  "every relationship; equal graphs give byte-identical exports.\n"
                                  "\n"
                                  "--csv DIR: files that `neo4j-admin database import full` accepts, in DIR\n"
                                  "(new or empty; complete or not at all): nodes_N.csv, relationships_N.csv\n"
                                  "and import.args, the options that load them. Lossless for shiplog import:\n"
                                  "  cd DIR && shiplog import @import.args --into STORE2\n"
                                  "  cd DIR && neo4j-admin database import full @import.args\n"
                                  "A key with values of different kinds splits its entities over several files.\n"
                                  "Refused, having no CSV form: lists of byte arrays, a list of one empty\n"
                                  "string, keys holding '(' or '{'.\n"
                                  "\n"
                                  "--cypher: a cypher-shell script that recreates the graph in an empty Neo4j 5\n"
                                  "database (as apoc.export.cypher.all writes it: CREATE statements in\n"
                                  ":begin/:commit batches, matched through a temporary indexed import label):\n"
                                  "  cypher-shell -f FILE\n"
                                  "Bytes become lists of integers (Cypher has no byte-array literal).\n"
                                  "\n"
                                  "--data DIR --stream NAME --at-txid N: the state of a receiver's stream as of\n"
                                  "txid N instead of a store, restored on the fly (shiplog restore) into a\n"
                                  "temporary store under $TMPDIR (else /tmp) that is removed afterwards; any of\n"
                                  "the forms above.\n"
                                  "\n"
                                  "  --to FILE         write to FILE (created complete or not at all) instead\n"
                                  "                    of standard output\n"
                                  "  --csv DIR         neo4j-admin CSV files into DIR\n"
                                  "  --cypher          a cypher-shell script\n"
                                  "  --batch-size N    statements per transaction in the script (20000)\n"
                                  "  --quiet           no progress line on a terminal, no summary\n"
                                  "  --key-file FILE   at-rest encryption keys (default $SHIPLOG_KEY_FILE):\n"
                                  "                    --data opens a sealed archive and snapshots\n";

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                       {"csv", required_argument, NULL, 'c'},
                                       {"cypher", no_argument, NULL, 'y'},
                                       {"batch-size", required_argument, NULL, 'b'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"at-txid", required_argument, NULL, 'a'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *to = NULL, *csv = NULL, *data = NULL, *stream = NULL, *key_file = NULL;
  bool quiet = false, cypher = false, at = false;
  uint64_t batch = 0, at_txid = 0;
  char *restored = NULL;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(export_help);
    case 't': to = optarg; break;
    case 'c': csv = optarg; break;
    case 'y': cypher = true; break;
    case 'b':
      if (cli_parse_u64("export", "batch-size", optarg, &batch)) return CLI_USAGE;
      if (!batch) return cli_usage("export", "--batch-size must be at least 1");
      break;
    case 'q': quiet = true; break;
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    case 'a':
      if (cli_parse_u64("export", "at-txid", optarg, &at_txid)) return CLI_USAGE;
      at = true;
      break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("export", NULL);
    }
  }
  if (data || stream || at) {
    if (!data || !stream || !at) return cli_usage("export", "--data, --stream and --at-txid go together");
    if (optind < argc) return cli_usage("export", "give either STORE or --data DIR, not both");
  } else if (cli_positional(argc, argv, "export", 1, (const char *[]){"STORE"}, &pos)) {
    return CLI_USAGE;
  }
  if (csv && (to || cypher))
    return cli_usage("export", "--csv writes a directory; it goes with neither --to nor --cypher");
  if (batch && !cypher) return cli_usage("export", "--batch-size belongs to --cypher");
  if (data) {
    if (cli_restore_temp(data, stream, at_txid, quiet, key_file, &restored)) return CLI_FAIL;
    pos = &restored;
  }
  sl_store *st;
  sl_view *v = NULL;
  cli_out out = {0};
  cli_progress prog;
  int rc;

  if (cli_open_store(pos[0], SL_OPEN_RDONLY, &st)) {
    cli_restore_temp_remove(restored);
    return CLI_FAIL;
  }
  /* Every page is read: check them first (a damaged one may abort LMDB). */
  if ((rc = sl_store_check(st)) || (rc = sl_view_begin(st, &v))) {
    sl_diag_error("%s: cannot read the store: %s", pos[0], sl_strerror(rc));
    goto fail;
  }
  cli_progress_init(&prog, "export", false, quiet);
  if (csv) {
    sl_csv_export_result res;
    rc = sl_export_csv(v, csv, cli_progress_update, &prog, &res);
    cli_progress_end(&prog);
    if (!rc && !quiet)
      fprintf(stderr, "exported %" PRIu64 " nodes and %" PRIu64 " relationships to %s (%zu + %zu files)\n", res.nodes,
              res.rels, csv, res.node_files, res.rel_files);
    goto fail;
  }
  if ((rc = cli_out_open(&out, to))) goto fail;
  if (cypher) {
    sl_cypher_options co = {.batch_size = batch, .progress = cli_progress_update, .progress_arg = &prog};
    rc = sl_export_cypher(v, out.f, out.path, &co);
  } else {
    rc = sl_export_canonical(v, out.f, out.path, cli_progress_update, &prog);
  }
  cli_progress_end(&prog);
  if (!rc) rc = cli_out_commit(&out);
fail:
  if (rc) cli_out_abort(&out);
  if (v) sl_view_end(v);
  sl_store_close(st);
  cli_restore_temp_remove(restored);
  return rc ? CLI_FAIL : CLI_OK;
}

/* ---- import ------------------------------------------------------------------------ */
static const char import_help[] = "Usage: shiplog import FILE --into DIR [--quiet]\n"
                                  "       shiplog import --nodes=[LABEL[:LABEL...]=]FILE[,FILE...] ...\n"
                                  "                      [--relationships=[TYPE=]FILE[,FILE...] ...] --into DIR\n"
                                  "                      [CSV options] [--quiet]\n"
                                  "       shiplog import @ARGS_FILE --into DIR\n"
                                  "\n"
                                  "Create a new store in DIR (missing or empty). Bad input is reported as\n"
                                  "FILE:LINE: reason; nothing is left behind in DIR.\n"
                                  "\n"
                                  "FILE: JSON Lines, a canonical export (spec/export.md) or the output of\n"
                                  "APOC's apoc.export.json.all; '-' reads standard input. Node lines come\n"
                                  "before relationship lines; relationships are read by start.id / end.id.\n"
                                  "When the first node's id is an integer >= 1 (as in a canonical export) node\n"
                                  "ids are kept, so export | import | export is the identity; otherwise (APOC's\n"
                                  "ids from 0, element ids) new ids are assigned from 1 in input order.\n"
                                  "Relationship ids likewise. Map and point values are refused.\n"
                                  "\n"
                                  "--nodes / --relationships: neo4j-admin import CSV files, with the options of\n"
                                  "`neo4j-admin database import full` (same names and meanings; @FILE reads\n"
                                  "options from FILE as neo4j-admin does). Files after '=' are read as one: the\n"
                                  "first line of the first is the header (name:ID(GROUP), :LABEL, :START_ID(GROUP),\n"
                                  ":END_ID(GROUP), :TYPE, :IGNORE, name:TYPE with int long short byte float double\n"
                                  "boolean char string, and TYPE[] arrays; byte[] is a bytes value). Node and\n"
                                  "relationship ids are assigned from 1 in input order.\n"
                                  "\n"
                                  "  --into DIR                    the new store\n"
                                  "  --delimiter=C                 between fields (,): any one character, also\n"
                                  "                                TAB, \\t or U+XXXX (as for the next two)\n"
                                  "  --array-delimiter=C           between array elements (;)\n"
                                  "  --quote=C                     around fields (\")\n"
                                  "  --id-type=string|integer      ids as strings (default) or int64\n"
                                  "  --multiline-fields[=BOOL]     quoted fields may span lines (false)\n"
                                  "  --skip-bad-relationships[=BOOL]  skip relationships without a type or to\n"
                                  "                                unknown ids, with a warning (false)\n"
                                  "  --skip-duplicate-nodes[=BOOL] skip nodes whose id is taken (false)\n"
                                  "  --ignore-extra-columns[=BOOL] ignore fields beyond the header (false)\n"
                                  "  --ignore-empty-strings[=BOOL] a quoted empty string is no property (false)\n"
                                  "  --trim-strings[=BOOL]         trim whitespace around strings (false)\n"
                                  "  --default-time-zone=ZONE      of time and datetime cells without an offset:\n"
                                  "                                an offset (+01:00) or an IANA name (UTC)\n"
                                  "  --quiet                       no progress line on a terminal, no summary\n";

/* Read FILE's arguments as picocli does (see the top of this file). */
static int args_file(const char *path, cli_mem *mem, char ***v, size_t *n, size_t *cap) {
  uint8_t *text;
  size_t len;
  int rc = sl_read_file(path, ARGS_FILE_MAX, &text, &len);
  if (rc) return cli_usage("import", "@%s: cannot read: %s", path, sl_strerror(rc));
  keep(mem, text);
  char *tok = keep(mem, malloc(len + 1));
  if (!tok) return cli_usage("import", "@%s: %s", path, sl_strerror(-ENOMEM));
  size_t i = 0, o = 0;
  bool line_start = true;
  while (i < len) {
    char ch = (char)text[i];
    if (ch == '\n') line_start = true;
    if (isspace((unsigned char)ch)) {
      i++;
      continue;
    }
    if (line_start && ch == '#') {
      while (i < len && text[i] != '\n') i++;
      continue;
    }
    line_start = false;
    size_t start = o;
    while (i < len && !isspace((unsigned char)text[i])) {
      char q = (char)text[i];
      if (q != '"' && q != '\'') {
        tok[o++] = q;
        i++;
        continue;
      }
      for (i++; i < len && text[i] != (uint8_t)q; i++) {
        if (q == '"' && text[i] == '\\' && i + 1 < len && (text[i + 1] == '"' || text[i + 1] == '\\')) i++;
        tok[o++] = (char)text[i];
      }
      if (i == len) return cli_usage("import", "@%s: a quote is not closed", path);
      i++;
    }
    tok[o++] = 0;
    if (*n + 1 >= *cap) {
      *cap = *cap * 2 + 16;
      char **p = realloc(*v, *cap * sizeof *p);
      if (!p) return cli_usage("import", "@%s: %s", path, sl_strerror(-ENOMEM));
      *v = p;
    }
    (*v)[(*n)++] = tok + start;
  }
  return CLI_OK;
}

/* argv with every @FILE replaced by the arguments it holds. */
static int expand_args(int argc, char **argv, cli_mem *mem, int *out_argc, char ***out_argv) {
  char **v = NULL;
  size_t n = 0, cap = 0;
  int rc = CLI_OK;
  for (int i = 0; i < argc && rc == CLI_OK; i++) {
    if (i > 0 && argv[i][0] == '@' && argv[i][1]) {
      rc = args_file(argv[i] + 1, mem, &v, &n, &cap);
      continue;
    }
    if (n + 1 >= cap) {
      cap = cap * 2 + 16;
      char **p = realloc(v, cap * sizeof *p);
      if (!p) {
        rc = cli_usage("import", "%s", sl_strerror(-ENOMEM));
        break;
      }
      v = p;
    }
    v[n++] = argv[i];
  }
  if (v) v[n] = NULL;
  keep(mem, v);
  *out_argc = (int)n;
  *out_argv = v;
  return rc;
}

/* --delimiter and friends: any one Unicode character as neo4j-admin takes
 * it (UTF-8 in the argument, so 'Ö' is two bytes), TAB, \t or U+XXXX.
 * Never NUL or a line end, which end records. */
static int parse_char(const char *opt, const char *text, uint32_t *out) {
  uint32_t code = 0;
  size_t len = strlen(text);
  char u[4];
  if (!strcmp(text, "TAB") || !strcmp(text, "\\t")) {
    code = '\t';
  } else if (!len || sl_utf8_decode(text, len, &code) != len) { /* not one character as it is */
    code = 0;
    if ((text[0] == 'U' || text[0] == 'u') && text[1] == '+' && text[2] && len <= 8 &&
        strspn(text + 2, "0123456789abcdefABCDEF") == len - 2)
      code = (uint32_t)strtoul(text + 2, NULL, 16);
  }
  if (code == 0 || code == '\n' || code == '\r' || !sl_utf8_encode(code, u))
    return cli_usage("import", "--%s: '%s' is not one character (TAB, \\t and U+XXXX also name one)", opt, text);
  *out = code;
  return CLI_OK;
}

static int parse_bool(const char *opt, const char *text, bool *out) {
  if (!text || !strcasecmp(text, "true"))
    *out = true;
  else if (!strcasecmp(text, "false"))
    *out = false;
  else
    return cli_usage("import", "--%s: '%s' is neither true nor false", opt, text);
  return CLI_OK;
}

/* "[PREFIX=]F1,F2" into a source: labels split on ':' (nodes) or a type. */
static int add_source(cli_mem *mem, sl_csv_source **list, size_t *n, const char *spec, bool rels) {
  const char *opt = rels ? "relationships" : "nodes";
  char *copy = keep(mem, strdup(spec));
  sl_csv_source *l = realloc(*list, (*n + 1) * sizeof *l);
  if (!copy || !l) return cli_usage("import", "%s", sl_strerror(-ENOMEM));
  *list = l;
  sl_csv_source *s = &l[(*n)++];
  *s = (sl_csv_source){0};
  char *files = copy, *eq = strchr(copy, '=');
  size_t parts = 2;
  for (const char *p = copy; *p; p++) parts += *p == ',' || *p == ':';
  const char **arr = keep(mem, calloc(parts, sizeof *arr));
  if (!arr) return cli_usage("import", "%s", sl_strerror(-ENOMEM));
  if (eq) {
    *eq = 0;
    files = eq + 1;
    if (rels) {
      s->type = copy;
    } else {
      s->labels = arr;
      for (char *save, *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) arr[s->nlabels++] = t;
      arr += s->nlabels;
    }
  }
  s->files = arr;
  for (char *p = files;; p++) {
    char *end = strchr(p, ',');
    if (end) *end = 0;
    if (!*p) return cli_usage("import", "--%s=%s: an empty file name", opt, spec);
    arr[s->nfiles++] = p;
    if (!end) break;
    p = end;
  }
  return CLI_OK;
}

static int import_csv(const char *into, sl_csv_source *nodes, size_t nnodes, sl_csv_source *rels, size_t nrels,
                      sl_csv_options *co, bool quiet) {
  cli_progress prog;
  cli_progress_init(&prog, "import", true, quiet);
  co->progress = cli_progress_update;
  co->progress_arg = &prog;
  sl_csv_result res;
  int rc = sl_import_csv(nodes, nnodes, rels, nrels, into, co, &res);
  cli_progress_end(&prog);
  if (rc) return CLI_FAIL;
  if (!quiet) {
    fprintf(stderr, "imported %" PRIu64 " nodes and %" PRIu64 " relationships into %s", res.nodes, res.rels, into);
    if (res.skipped_nodes || res.skipped_rels)
      fprintf(stderr, " (skipped %" PRIu64 " nodes and %" PRIu64 " relationships)", res.skipped_nodes,
              res.skipped_rels);
    fputc('\n', stderr);
  }
  return CLI_OK;
}

int cmd_import(int argc, char **argv) {
  static const struct option opts[] = {{"into", required_argument, NULL, 'i'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"nodes", required_argument, NULL, 'N'},
                                       {"relationships", required_argument, NULL, 'R'},
                                       {"delimiter", required_argument, NULL, 'd'},
                                       {"array-delimiter", required_argument, NULL, 'a'},
                                       {"quote", required_argument, NULL, 'Q'},
                                       {"id-type", required_argument, NULL, 'I'},
                                       {"multiline-fields", optional_argument, NULL, 'm'},
                                       {"skip-bad-relationships", optional_argument, NULL, 'B'},
                                       {"skip-duplicate-nodes", optional_argument, NULL, 'D'},
                                       {"ignore-extra-columns", optional_argument, NULL, 'x'},
                                       {"ignore-empty-strings", optional_argument, NULL, 'e'},
                                       {"trim-strings", optional_argument, NULL, 'T'},
                                       {"default-time-zone", required_argument, NULL, 'z'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  cli_mem mem = {0};
  sl_csv_source *src[2] = {NULL, NULL};
  size_t nsrc[2] = {0, 0};
  sl_csv_options co = {0};
  const char *into = NULL;
  bool quiet = false, csv_opts = false;
  char **pos;
  int c, rc = expand_args(argc, argv, &mem, &argc, &argv);

  while (rc == CLI_OK && (c = cli_getopt(argc, argv, opts)) != -1) {
    const char *name = "";
    for (const struct option *o = opts; o->name; o++)
      if (o->val == c) name = o->name;
    csv_opts |= c != 'i' && c != 'q' && c != 'N' && c != 'R' && c != 'h';
    switch (c) {
    case 'h': rc = cli_help(import_help); goto done;
    case 'i': into = optarg; break;
    case 'q': quiet = true; break;
    case 'N': rc = add_source(&mem, &src[0], &nsrc[0], optarg, false); break;
    case 'R': rc = add_source(&mem, &src[1], &nsrc[1], optarg, true); break;
    case 'd': rc = parse_char(name, optarg, &co.delimiter); break;
    case 'a': rc = parse_char(name, optarg, &co.array_delimiter); break;
    case 'Q': rc = parse_char(name, optarg, &co.quote); break;
    case 'I':
      if (!strcasecmp(optarg, "string"))
        co.id_type = SL_CSV_ID_STRING;
      else if (!strcasecmp(optarg, "integer"))
        co.id_type = SL_CSV_ID_INTEGER;
      else
        rc = cli_usage("import", "--id-type: '%s' is not string or integer (shiplog assigns its own ids)", optarg);
      break;
    case 'm': rc = parse_bool(name, optarg, &co.multiline_fields); break;
    case 'B': rc = parse_bool(name, optarg, &co.skip_bad_relationships); break;
    case 'D': rc = parse_bool(name, optarg, &co.skip_duplicate_nodes); break;
    case 'x': rc = parse_bool(name, optarg, &co.ignore_extra_columns); break;
    case 'e': rc = parse_bool(name, optarg, &co.ignore_empty_strings); break;
    case 'T': rc = parse_bool(name, optarg, &co.trim_strings); break;
    case 'z': {
      /* checked here, so that a bad zone is a usage error before any file is read */
      sl_value probe;
      char zone[SL_ZONE_MAX + 1], why[200];
      co.default_time_zone = strcasecmp(optarg, "UTC") ? optarg : NULL; /* neo4j-admin's default: Z */
      if (sl_temporal_parse(SL_DATETIME, "2000-01-01", 10, co.default_time_zone, &probe, zone, why, sizeof why) < 0)
        rc = cli_usage("import", "--default-time-zone: %s", why);
      break;
    }
    default: rc = cli_usage("import", NULL); break;
    }
  }
  if (rc != CLI_OK) goto done;
  bool csv = nsrc[0] || nsrc[1];
  if ((rc = cli_positional(argc, argv, "import", csv ? 0 : 1, (const char *[]){"FILE"}, &pos))) goto done;
  if (!into) {
    rc = cli_usage("import", "missing --into DIR");
  } else if (!csv && csv_opts) {
    rc = cli_usage("import", "CSV options go with --nodes (and --relationships)");
  } else if (csv && !nsrc[0]) {
    rc = cli_usage("import", "--relationships needs --nodes: relationships connect the nodes those files hold");
  } else if (csv) {
    uint32_t d = co.delimiter ? co.delimiter : ',', q = co.quote ? co.quote : '"';
    if (d == q)
      rc = cli_usage("import", "the delimiter and the quote must differ");
    else
      rc = import_csv(into, src[0], nsrc[0], src[1], nsrc[1], &co, quiet);
  } else {
    cli_progress prog;
    cli_progress_init(&prog, "import", true, quiet);
    sl_import_options io = {.progress = cli_progress_update, .progress_arg = &prog};
    sl_import_result res;
    int irc = sl_import_jsonl(pos[0], into, &io, &res);
    cli_progress_end(&prog);
    rc = irc ? CLI_FAIL : CLI_OK;
    if (!irc && !quiet)
      fprintf(stderr, "imported %" PRIu64 " nodes and %" PRIu64 " relationships into %s\n", res.nodes, res.rels, into);
  }
done:
  free(src[0]);
  free(src[1]);
  mem_free(&mem);
  return rc;
}
