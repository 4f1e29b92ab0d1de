/*
 * Helpers shared by the `shiplog` subcommands (cli/cmd_*.c): exit codes,
 * option parsing, opening stores with a clear message, progress lines and
 * output files that appear only when complete.
 *
 * Every subcommand is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * subcommand's name; it returns the process exit status (spec/cli.md):
 * CLI_OK, CLI_FAIL (the job failed; a message naming the file, offset, line
 * or peer is already on stderr) or CLI_USAGE.
 */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <getopt.h>
#include <pthread.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bolt.h"
#include "crypt.h"
#include "store.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* The subcommands (one table in main.c). */
int cmd_init(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_load(int argc, char **argv);
/* Cypher (cli/cmd_query.c): `query`, and `exec STORE FILE.cypher` / `exec
 * STORE --cypher FILE|-`, which cmd_exec hands over. */
int cmd_query(int argc, char **argv);
int cli_exec_cypher(int argc, char **argv);
/* Failover (cli/cmd_failover.c): promote, rewind, and `log STORE --diverged
 * --data DIR --stream NAME` (cmd_log hands over to cli_log_diverged). */
int cmd_promote(int argc, char **argv);
int cmd_rewind(int argc, char **argv);
/* Bolt users (cli/cmd_passwd.c; the work is bolt/auth.c's). */
int cmd_passwd(int argc, char **argv);
/* The primary's Bolt server (cli/cmd_serve.c; the work is bolt/'s). */
int cmd_serve(int argc, char **argv);
/* `receive --bolt` (cli/bolt_rx.c): the standbys over Bolt, read-only.
 * The options fill the first fields; check (CLI_OK or a usage error),
 * then start before sl_receiver_run (it sets the receiver's hooks) and
 * stop after it. */
struct sl_receiver_options;
typedef struct cli_bolt_rx {
  const char *listen, *advertise, *auth, *tls_cert, *tls_key, *tls_ca, *agent;
  bool no_auth;
  int bookmark_timeout_ms;
  sl_bolt_users *users;
  sl_bolt_throttle *throttle;
  sl_bolt_engine *engine;
  sl_bolt_server *server;
  sl_bolt_backend backend;
  pthread_t thread;
  bool running;
  atomic_int stop;
  struct sl__receiver *_Atomic receiver;
  char self[300];
} cli_bolt_rx;
#define CLI_BOLT_RX_OPTIONS                                                                                        \
  {"bolt", required_argument, NULL, 0x4201}, {"bolt-advertise", required_argument, NULL, 0x4202},                 \
      {"bolt-auth", required_argument, NULL, 0x4203}, {"bolt-no-auth", no_argument, NULL, 0x4204},                \
      {"bolt-tls-cert", required_argument, NULL, 0x4205}, {"bolt-tls-key", required_argument, NULL, 0x4206},      \
      {"bolt-tls-ca", required_argument, NULL, 0x4207}, {"bookmark-timeout", required_argument, NULL, 0x4208},    \
      {"bolt-server-agent", required_argument, NULL, 0x4209}
/* Take option c (one of CLI_BOLT_RX_OPTIONS): 1 taken, 0 not ours, CLI_USAGE. */
int cli_bolt_rx_option(cli_bolt_rx *b, int c, const char *arg);
int cli_bolt_rx_check(const cli_bolt_rx *b);
/* A Bolt server's address for routing tables when none is given: the
 * listening host (localhost for a wildcard) with the port bound. */
const char *cli_bolt_advertised(const char *listen, int port, char *buf, size_t len);
/* The address a Bolt server listens on, for people: HOST:PORT with the
 * port it bound (a listen port of 0 says nothing). */
const char *cli_bolt_bound(const char *listen, int port, char *buf, size_t len);
int cli_bolt_rx_start(cli_bolt_rx *b, struct sl_receiver_options *ro);
void cli_bolt_rx_stop(cli_bolt_rx *b);
int cli_log_diverged(const char *store, const char *data, const char *stream, bool json);
/* Dump chains (cli/dump_chain.c): `dump [STORE] --chain DIR ...` and
 * `load --chain DIR --into NEW_DIR`; cmd_dump and cmd_load hand over to
 * them when --chain is given (cli_option_given: on the command line or in
 * the --config file). */
int cli_dump_chain(int argc, char **argv);
int cli_load_chain(int argc, char **argv);
bool cli_option_given(int argc, char **argv, const char *name);
/* List DIR's chains, every file read whole (`dump --chain DIR`, `check
 * --chain DIR`): CLI_OK, or CLI_FAIL when a file is damaged or does not
 * follow its parent (each named on stderr). */
int cli_chain_show(const char *dir, sl_keyring *keys, bool json);
/* Object storage (cli/cmd_s3.c): cmd_restore hands over on --from. */
int cli_restore_s3(int argc, char **argv);
/* restore's --to-time ('T') or --to-txid ('N') with its argument into the
 * target (cmd_pitr.c; cmd_s3.c parses the same for --from). 0 or CLI_USAGE. */
int cli_restore_target(int opt, const char *arg, bool *by_time, uint64_t *time_us, uint64_t *txid, bool *has_txid);
/* A scratch file $TMPDIR/shiplog-WHAT-XXXXXX (created empty) for dump
 * --to s3:// and load s3://; CLI_OK or CLI_FAIL (logged). */
int cli_scratch_file(const char *what, char *path, size_t len);

/* ---- options ------------------------------------------------------------------ */
/* getopt_long over a subcommand's argv: long options, plus "-h" as 'h' (opts
 * carry {"help", no_argument, NULL, 'h'}). Options may follow positional
 * arguments. getopt's own complaints name "shiplog CMD". */
int cli_getopt(int argc, char **argv, const struct option *opts);
/* The text of `shiplog CMD --help` on stdout; returns CLI_OK. */
int cli_help(const char *text);
/* "shiplog: <message>" and a pointer to --help on stderr; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The positional arguments left after cli_getopt: exactly n of them, or a
 * usage error naming what is missing (names: e.g. {"DIR", "FILE"}). Returns
 * CLI_OK with *pos pointing at them, or CLI_USAGE. */
int cli_positional(int argc, char **argv, const char *cmd, int n, const char *const *names, char ***pos);

/* Option values; each returns CLI_OK or a usage error naming the option. */
int cli_parse_u64(const char *cmd, const char *opt, const char *text, uint64_t *out);
/* A duration in ms for --OPT, 1..3600000 (an hour). */
int cli_parse_ms(const char *cmd, const char *opt, const char *text, int *out);
/* For long-running commands: SIGINT and SIGTERM set the returned flag, which
 * the command's loop polls to stop cleanly; SIGPIPE is ignored (a closed
 * peer shows up as EPIPE instead). */
atomic_int *cli_stop_on_signals(void);
/* BYTES with an optional K, M, G suffix (powers of 1024). */
int cli_parse_size(const char *cmd, const char *opt, const char *text, uint64_t *out);
/* TIME as spec/cli.md defines it. */
int cli_parse_time(const char *cmd, const char *opt, const char *text, uint64_t *out);

/* ---- global options and configuration files (cli/config.c) -------------------------- */
/* Before a subcommand runs (main.c): take `--log-format text|json` and
 * `--config FILE` out of its arguments (argv[0] is its name), set the log
 * format, and put FILE's keys in front of the remaining arguments as flags
 * given first (so the real flags win). *argv may become a new array that
 * lives until exit. Returns CLI_OK, CLI_USAGE (bad option or a bad line,
 * named FILE:LINE) or CLI_FAIL (FILE unreadable). */
int cli_global_options(const char *cmd, int *argc, char ***argv);
/* cli_getopt's and cli_usage's hooks: hand out the file's keys (true with
 * the option in *c), note an option given on the command line, and
 * "FILE:LINE: " for a usage message about a value that came from the file
 * (else ""). */
bool cli__config_getopt(const struct option *opts, int *c);
void cli__config_seen(const struct option *opts, int c, int longindex);
void cli__config_where(const char *msg, char *out, size_t len);
/* Does the --config file give KEY? */
bool cli__config_has(const char *key);

/* ---- at-rest encryption keys (cli/security.c; README "Security") --------------------- */
/* `--key-file FILE` in every command that reads or writes archives or dumps
 * (config key `key-file`); getopt returns CLI_OPT_KEY_FILE for it. */
#define CLI_OPT_KEY_FILE 0x4b46
#define CLI_KEY_FILE_OPTION {"key-file", required_argument, NULL, CLI_OPT_KEY_FILE}
/* Load --key-file PATH, else $SHIPLOG_KEY_FILE, else none (*out = NULL).
 * CLI_OK, or CLI_FAIL with the reason (FILE:LINE) on stderr. */
int cli_keyring(const char *path, sl_keyring **out);

/* ---- stores ---------------------------------------------------------------------- */
/* sl_store_open, with "shiplog: DIR: cannot open store: reason" on failure. */
int cli_open_store(const char *dir, unsigned flags, sl_store **out);
/* "DIR/NAME" into buf (PATH_MAX). */
const char *cli_join(char *buf, size_t len, const char *dir, const char *name);

/* ---- progress ------------------------------------------------------------------------ */
/* A line rewritten in place on stderr, at most 5 times a second, only when
 * stderr is a terminal and not quiet: done of total, percent, rate and time
 * left (from the average rate since init). Pass cli_progress_update and the
 * struct as an sl_progress_fn (or sl_dump_progress_fn) and its argument. */
typedef struct cli_progress {
  const char *what;
  bool on, bytes, shown;
  uint64_t start_ns, last_ns;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *what, bool bytes, bool quiet);
void cli_progress_update(void *arg, uint64_t done, uint64_t total);
void cli_progress_end(cli_progress *p);

/* ---- --json ------------------------------------------------------------------------ */
/* Print o (taken: decref'd) as one compact line on standard output, with
 * "version" (sl_version) added when o has none (spec/cli.md). CLI_OK, or
 * CLI_FAIL when o is NULL (a failed json_pack) or cannot be encoded. */
int cli_json_print(json_t *o);
/* Seconds since a sl_mono_ns() reading, for the figures of --json and summaries. */
double cli_seconds_since(uint64_t start_ns);

/* ---- output files ---------------------------------------------------------------------- */
/* Writing to PATH.tmp (created 0600), renamed over PATH (after fsync; the
 * directory is fsynced after the rename: sl_rename_durable) by
 * cli_out_commit, so that a failed job leaves no file behind. NULL or "-" is standard output;
 * a path that exists and is not a regular file (a pipe, /dev/null) is
 * written in place. */
typedef struct cli_out {
  FILE *f;
  const char *path; /* for messages */
  char *tmp;        /* NULL: written in place */
} cli_out;
int cli_out_open(cli_out *o, const char *path);
int cli_out_commit(cli_out *o);
void cli_out_abort(cli_out *o);

#endif
