/*
 * The `shiplog` binary: one subcommand per job (spec/cli.md). main() only
 * finds the subcommand in the table below and hands it its arguments;
 * each cmd_* parses its own options and returns the exit status
 * (0 done, 1 the job failed, 2 bad usage).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_repl.h"
#include "sl_base.h"

static const struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"init", cmd_init, "create an empty store"},
    {"exec", cmd_exec, "apply a mutation file, or a cypher-shell script (--cypher)"},
    {"query", cmd_query, "run Cypher statements and print their rows"},
    {"stats", cmd_stats, "counts, last txid and time, log segments, sizes"},
    {"log", cmd_log, "print log records: txid, time, ops"},
    {"compact", cmd_compact, "give back the space data.mdb holds beyond its live data (offline)"},
    {"verify", cmd_verify, "check every frame, and that the state equals a replay of the log"},
    {"export", cmd_export, "canonical export (JSON Lines), neo4j-admin CSV or a cypher-shell script"},
    {"import", cmd_import, "canonical or APOC JSON Lines, or neo4j-admin CSV, into a new store"},
    {"dump", cmd_dump, "a full or incremental backup file of a store"},
    {"load", cmd_load, "a backup file into a new store, or onto the store it follows"},
    {"receive", cmd_receive, "serve replication streams from many primaries"},
    {"ship", cmd_ship, "tail a store's log and stream it to a receiver"},
    {"status", cmd_status, "per stream: committed / shipped / durable / applied txid, lag"},
    {"snapshot", cmd_snapshot, "a base snapshot of a receiver's standby now"},
    {"restore", cmd_restore, "a stream's state at a time or txid, from a receiver's data"},
    {"prune", cmd_prune, "retention of a receiver's snapshots and archive segments"},
    {"info", cmd_info, "what a receiver (or object storage) can restore: window, snapshots, archive"},
    {"check", cmd_check, "verify dump files, dump chains or a stream's backups without building a store"},
    {"consumers", cmd_consumers, "who holds back the pruning of a store's log, and since when"},
    {"promote", cmd_promote, "make a stream's standby (a copy) a writable primary in a new epoch"},
    {"rewind", cmd_rewind, "cut a diverged old primary back to a shared txid so it can follow"},
    {"serve", cmd_serve, "serve a store over Bolt (Neo4j's drivers), read-write"},
    {"passwd", cmd_passwd, "add a user to a Bolt users file, or change a password"},
};

static void usage(FILE *out) {
  fputs("Usage: shiplog COMMAND [ARGS...]\n       shiplog --version\n\nCommands:\n", out);
  for (size_t i = 0; i < SL_ARRAY_LEN(commands); i++)
    fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fputs("\nEvery command also takes --config FILE (its options as 'key = value' lines;\n"
        "flags win) and --log-format text|json.\n"
        "\nRun 'shiplog COMMAND --help' for a command's arguments.\n"
        "Exit status: 0 success, 1 the job failed, 2 bad usage.\n",
        out);
}

int main(int argc, char **argv) {
  sl_set_progname("shiplog");
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
    usage(stdout);
    return CLI_OK;
  }
  if (!strcmp(name, "--version") || !strcmp(name, "version")) {
    if (argc > 2) {
      sl_diag_error("%s: unexpected argument '%s'", name, argv[2]);
      return CLI_USAGE;
    }
    printf("%s\n", sl_software());
    return CLI_OK;
  }
  for (size_t i = 0; i < SL_ARRAY_LEN(commands); i++) {
    if (strcmp(name, commands[i].name)) continue;
    optind = 1;
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    int rc = cli_global_options(name, &sub_argc, &sub_argv);
    return rc ? rc : commands[i].run(sub_argc, sub_argv);
  }
  sl_diag_error("unknown command '%s'", name);
  usage(stderr);
  return CLI_USAGE;
}
