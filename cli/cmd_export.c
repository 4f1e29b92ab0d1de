/*
 * export and import of the canonical JSON Lines form (spec/export.md).
 * export reads one snapshot of a store opened read-only (a writer may be
 * running) and writes to standard output or, through a temporary file that
 * is renamed when complete, to --to FILE. import builds a new store; on
 * failure interchange removes what it made.
 */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "interchange.h"
#include "sl_base.h"

static const char export_help[] =
    "Usage: shiplog export STORE [--to FILE] [--quiet]\n"
    "\n"
    "Write the canonical export of STORE (spec/export.md): JSON Lines in the\n"
    "shape of APOC's apoc.export.json.all, every node ascending by id, then\n"
    "every relationship; equal graphs give byte-identical exports. Reads one\n"
    "snapshot; a writer may be running.\n"
    "\n"
    "  --to FILE  write to FILE (created complete or not at all) instead of\n"
    "             standard output\n"
    "  --quiet    no progress line on a terminal\n";

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *to = NULL;
  bool quiet = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(export_help);
    case 't': to = optarg; break;
    case 'q': quiet = true; break;
    default: return cli_usage("export", NULL);
    }
  }
  if (cli_positional(argc, argv, "export", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  sl_store *st;
  sl_view *v = NULL;
  cli_out out = {0};
  cli_progress prog;
  int rc;

  if (cli_open_store(pos[0], SL_OPEN_RDONLY, &st)) return CLI_FAIL;
  if ((rc = sl_view_begin(st, &v))) {
    sl_log_error("%s: cannot read the store: %s", pos[0], sl_strerror(rc));
    goto fail;
  }
  if ((rc = cli_out_open(&out, to))) goto fail;
  cli_progress_init(&prog, "export", false, quiet);
  rc = sl_export_canonical(v, out.f, out.path, cli_progress_update, &prog);
  cli_progress_end(&prog);
  if (!rc) rc = cli_out_commit(&out);
fail:
  if (rc) cli_out_abort(&out);
  if (v) sl_view_end(v);
  sl_store_close(st);
  return rc ? CLI_FAIL : CLI_OK;
}

static const char import_help[] =
    "Usage: shiplog import FILE --into DIR [--quiet]\n"
    "\n"
    "Create a new store in DIR (missing or empty) from JSON Lines: a canonical\n"
    "export (spec/export.md) or the output of APOC's apoc.export.json.all.\n"
    "'-' reads standard input. Node lines come before relationship lines;\n"
    "relationships are read by start.id / end.id.\n"
    "\n"
    "Ids: when the first node's id is an integer >= 1 (as in a canonical\n"
    "export) node ids are kept, so export | import | export is the identity;\n"
    "otherwise (APOC's ids from 0, element ids) new ids are assigned from 1 in\n"
    "input order. Relationship ids likewise.\n"
    "\n"
    "Bad input is reported as FILE:LINE: reason (map and point values are\n"
    "refused); nothing is left behind in DIR.\n"
    "\n"
    "  --into DIR  the new store\n"
    "  --quiet     no progress line on a terminal\n";

int cmd_import(int argc, char **argv) {
  static const struct option opts[] = {{"into", required_argument, NULL, 'i'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *into = NULL;
  bool quiet = false;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(import_help);
    case 'i': into = optarg; break;
    case 'q': quiet = true; break;
    default: return cli_usage("import", NULL);
    }
  }
  if (cli_positional(argc, argv, "import", 1, (const char *[]){"FILE"}, &pos)) return CLI_USAGE;
  if (!into) return cli_usage("import", "missing --into DIR");
  cli_progress prog;
  cli_progress_init(&prog, "import", true, quiet);
  sl_import_options io = {.progress = cli_progress_update, .progress_arg = &prog};
  sl_import_result res;
  int rc = sl_import_jsonl(pos[0], into, &io, &res);
  cli_progress_end(&prog);
  if (rc) return CLI_FAIL;
  if (!quiet)
    fprintf(stderr, "imported %" PRIu64 " nodes and %" PRIu64 " relationships into %s\n", res.nodes, res.rels, into);
  return CLI_OK;
}
