/*
 * The replication subcommands (spec/cli.md, "Shipping"): same contract as
 * the cmd_* functions in cli.h (argv[0] is the subcommand's name; returns
 * the exit status 0, 1 or 2).
 */
#ifndef SL_CMD_REPL_H
#define SL_CMD_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "metrics.h"

int cmd_ship(int argc, char **argv);
int cmd_receive(int argc, char **argv);
int cmd_status(int argc, char **argv);
/* Point in time (cmd_pitr.c). */
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_prune(int argc, char **argv);
/* Operations (cmd_consumers.c, cmd_info.c, cmd_check.c). */
int cmd_consumers(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* A consumer behind the durable txid that has not moved for this long is
 * stale (cmd_consumers.c, STALE). */
#define CLI_STALE_AFTER_DEFAULT_S 86400u
/* The consumers of LOGDIR (store/log.h CONSUMERS) into arr (JSON objects),
 * or with arr NULL printed: a table, or with only_stale a warning line per
 * stale one (status). *listed: consumers found; *stale: the stale ones.
 * CLI_OK or CLI_FAIL (logged). */
int cli_consumers_report(const char *logdir, uint64_t stale_after_s, bool only_stale, json_t *arr, size_t *listed,
                         size_t *stale);
/* export --at-txid: restore the stream's state at txid into a new store in
 * a temporary directory under $TMPDIR (else /tmp); *store_dir (malloc'd) names
 * it. Returns CLI_OK or CLI_FAIL (logged). cli_restore_temp_remove removes
 * the directory and frees the name (NULL: nothing). */
int cli_restore_temp(const char *data, const char *stream, uint64_t txid, bool quiet, const char *key_file,
                     char **store_dir);
void cli_restore_temp_remove(char *store_dir);

/* Sorted names of DIR's entries that end in suffix (suffix removed) and are
 * valid stream names (a missing DIR has none). *out is malloc'd, with
 * malloc'd strings: cli_free_names. */
int cli_list_names(const char *dir, const char *suffix, char ***out, size_t *count);
void cli_free_names(char **names, size_t n);

/* ---- cli/security.c: --tls-cert/--tls-key/--tls-ca or --insecure ------------------------ */
typedef struct cli_tls {
  const char *cert, *key, *ca;
  const char *server_name;    /* ship --tls-server-name */
  const char *allow;          /* receive --allow */
  bool insecure;
} cli_tls;
/* Exactly TLS (all three files) or --insecure (warned about on stderr):
 * CLI_OK, or a usage error that names what to pass (CLI_USAGE). */
int cli_tls_check(const char *cmd, const cli_tls *t);

/* ---- cli/daemon.c: what ship and receive share ------------------------------------- */
typedef struct cli_daemon {
  sl_metrics *metrics;        /* NULL without --metrics */
  sl_metrics_server *server;
} cli_daemon;
/* Log lines with time and context from now on; with metrics_addr
 * (HOST:PORT, port 0: any free one, logged with --verbose), serve /metrics
 * there. Returns 0 or the error, logged. */
int cli_daemon_start(cli_daemon *d, const char *metrics_addr);
/* Tell systemd we stop, stop serving, free the metrics. */
void cli_daemon_stop(cli_daemon *d);
/* sd_notify(3): send STATE to $NOTIFY_SOCKET, if set. */
void cli_notify(const char *state);
/* An on_ready callback: "READY=1" and STATUS=status (a const char *). */
void cli_notify_ready(void *status);

#endif
