/*
 * The replication subcommands (spec/cli.md, "Shipping"): same contract as
 * the cmd_* functions in cli.h (argv[0] is the subcommand's name; returns
 * the exit status 0, 1 or 2).
 */
#ifndef SL_CMD_REPL_H
#define SL_CMD_REPL_H

int sl_cmd_ship(int argc, char **argv);
int sl_cmd_receive(int argc, char **argv);
int sl_cmd_status(int argc, char **argv);

#endif
