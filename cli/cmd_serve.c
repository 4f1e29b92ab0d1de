/*
 * `shiplog serve STORE --listen HOST:PORT ...` (spec/bolt.md): the primary's
 * Bolt server. It holds STORE open for writing (so another writer is
 * refused, `query` may still read it and `ship` tails its log) and serves it
 * through bolt/'s server on the query engine backend (bolt/engine.c). Many
 * connections' commits share the store's group commit. While it runs,
 * STORE/bolt.address names its advertised address, which the shipper
 * passes on to the standbys (codec.h, ROUTING); it holds a lock on that
 * file while it lives, so a serve that is killed is not named by a file it
 * could not remove. SIGTERM/SIGINT: stop
 * accepting, let the requests in flight finish, close the store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bolt.h"
#include "cli.h"
#include "cmd_repl.h"
#include "codec.h"
#include "log.h"
#include "shipper.h"

#define MAX_READ_REPLICAS 64

static const char serve_help[] =
    "Usage: shiplog serve STORE --listen HOST:PORT (--auth FILE | --no-auth)\n"
    "                     [--database NAME] [--advertise HOST:PORT]\n"
    "                     [--read-replica HOST:PORT ...] [--max-replica-lag MS]\n"
    "                     [--tls-cert FILE --tls-key FILE\n"
    "                     [--tls-ca FILE]] [--max-connections N] [--idle-timeout SECONDS]\n"
    "                     [--max-message BYTES] [--query-timeout MS] [--query-memory BYTES]\n"
    "                     [--tx-timeout MS] [--bookmark-timeout MS] [--metrics HOST:PORT]\n"
    "                     [--server-agent AGENT] [--ready-file FILE]\n"
    "\n"
    "Hold STORE open for writing and serve it over Bolt, the protocol of Neo4j's\n"
    "drivers (bolt://, neo4j://; bolt+s://, neo4j+s:// with TLS). Another writer\n"
    "is refused while it runs; `shiplog query` can still read the store and\n"
    "`shiplog ship` tails its log.\n"
    "\n"
    "  --listen HOST:PORT     where to accept connections (port 0: any free one)\n"
    "  --auth FILE            users file (shiplog passwd): reader, editor, admin\n"
    "  --no-auth              anyone may connect, as admin (a warning is logged)\n"
    "  --database NAME        the database's name (default neo4j; also what a\n"
    "                         driver gets when it names none)\n"
    "  --advertise HOST:PORT  the address in routing tables (default: --listen)\n"
    "  --read-replica H:P     a reader for routing tables (repeatable), beside the\n"
    "                         standbys the shippers of STORE report (receive --bolt);\n"
    "                         none of either: this server reads too\n"
    "  --max-replica-lag MS   leave out a standby further behind (default 10000)\n"
    "  --tls-cert/--tls-key   PEM certificate and key: TLS only\n"
    "  --tls-ca FILE          also require client certificates from this CA\n"
    "  --max-connections N    beyond it new connections are closed (default 256)\n"
    "  --idle-timeout S       close a connection idle this long (default 600)\n"
    "  --max-message BYTES    largest request (K, M, G; default 16M)\n"
    "  --query-timeout MS     fail a statement that runs longer (default: none)\n"
    "  --query-memory BYTES   what a statement may hold (K, M, G; default 1G)\n"
    "  --tx-timeout MS        roll back a transaction older than this, even one\n"
    "                         whose client went quiet (default 600000; a driver's\n"
    "                         own timeout wins)\n"
    "  --bookmark-timeout MS  how long a transaction waits for its bookmarks\n"
    "                         (default 5000)\n"
    "  --metrics HOST:PORT    serve Prometheus metrics at /metrics\n"
    "  --server-agent AGENT   what drivers are told the server is, as\n"
    "                         PRODUCT/MAJOR.MINOR[.PATCH] (default " SL_BOLT_SERVER_AGENT ")\n"
    "  --ready-file FILE      write the listening port to FILE once listening\n";

/* The engine's and server's counters as metrics, read at each scrape;
 * statement latencies and failures by code as they happen. */
typedef struct serve_metrics {
  sl_bolt_server *server;
  sl_bolt_engine *engine;
  sl_store *store;
  sl_metric *lmdb_used, *lmdb_free;
  sl_metric *latency;
  sl_metric_family *errors;
  sl_metric *accepted, *refused, *auth_failed, *requests, *open, *commits, *rollbacks, *statements, *failures;
} serve_metrics;

static void collect(void *arg) {
  serve_metrics *m = arg;
  sl_bolt_server_stats s;
  sl_bolt_engine_stats e;
  sl_bolt_server_get_stats(m->server, &s);
  sl_bolt_engine_get_stats(m->engine, &e);
  sl_metric_set_count(m->accepted, s.accepted);
  sl_metric_set_count(m->refused, s.refused_full);
  sl_metric_set_count(m->auth_failed, s.auth_failed);
  sl_metric_set_count(m->requests, s.requests);
  sl_metric_set(m->open, s.open);
  sl_metric_set_count(m->commits, e.commits);
  sl_metric_set_count(m->rollbacks, e.rollbacks);
  sl_metric_set_count(m->statements, e.statements);
  sl_metric_set_count(m->failures, e.failures);
  sl_space sp;
  if (sl_store_space(m->store, &sp) == 0) {
    sl_metric_set(m->lmdb_used, (double)(sp.pages_used * sp.page_size));
    sl_metric_set(m->lmdb_free, (double)(sp.pages_free * sp.page_size));
  }
}

static void on_statement(void *arg, double seconds, const char *code) {
  serve_metrics *m = arg;
  if (!m->latency) return; /* before metrics_start */
  if (seconds >= 0) sl_metric_observe(m->latency, seconds);
  if (code) sl_metric_add(sl_metric_series(m->errors, (const char *const[]){code}), 1);
}

static sl_metric *series(sl_metrics *m, sl_metric_type t, const char *name, const char *help) {
  sl_metric_family *f = sl_metrics_family(m, t, name, help, NULL, NULL, 0);
  return f ? sl_metric_series(f, NULL) : NULL;
}

/* ROUTING: the standbys of STORE's streams that serve Bolt (their address
 * came back in the shipper's Welcome, shipper.h status "bolt") and lag no
 * more than max_lag_ms, read from STORE/ship/NAME.status at each ROUTE. */
typedef struct standby_readers {
  const char *store;
  uint64_t max_lag_ms;
} standby_readers;

static size_t find_standbys(void *arg, sl_arena *a, const char **out, size_t max) {
  standby_readers *sr = arg;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/ship", sr->store);
  DIR *d = opendir(dir);
  size_t n = 0;
  struct dirent *de;
  while (d && n < max && (de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len <= 7 || strcmp(de->d_name + len - 7, ".status")) continue;
    char stream[256];
    snprintf(stream, sizeof stream, "%.*s", (int)(len - 7), de->d_name);
    sl_ship_status st;
    if (sl_ship_status_read(sr->store, stream, &st) || !st.bolt[0] || strcmp(st.state, "streaming") ||
        st.lag_ms > sr->max_lag_ms)
      continue;
    if ((out[n] = sl_arena_strndup(a, st.bolt, strlen(st.bolt)))) n++;
  }
  if (d) closedir(d);
  return n;
}

static int metrics_start(sl_metrics *mx, serve_metrics *m) {
  m->accepted = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_connections_total", "Bolt connections accepted");
  m->refused = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_connections_refused_total",
                      "Bolt connections closed at once (--max-connections)");
  m->auth_failed = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_auth_failures_total", "failed Bolt logins");
  m->requests = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_requests_total", "Bolt requests handled");
  m->open = series(mx, SL_METRIC_GAUGE, "shiplog_bolt_connections_open", "Bolt connections open");
  m->commits = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_commits_total", "transactions committed over Bolt");
  m->rollbacks = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_rollbacks_total", "transactions rolled back over Bolt");
  m->statements = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_statements_total", "Cypher statements run over Bolt");
  m->failures = series(mx, SL_METRIC_COUNTER, "shiplog_bolt_failures_total", "Bolt requests that failed");
  m->lmdb_used = series(mx, SL_METRIC_GAUGE, "shiplog_lmdb_used_bytes", "data.mdb up to LMDB's last page");
  m->lmdb_free = series(mx, SL_METRIC_GAUGE, "shiplog_lmdb_free_bytes",
                        "data.mdb's free pages (reused by later commits; shiplog compact gives them back)");
  m->errors = sl_metrics_family(mx, SL_METRIC_COUNTER, "shiplog_bolt_errors_total",
                                "Bolt requests that failed, by Neo4j status code", (const char *const[]){"code", NULL},
                                NULL, 0);
  sl_metric_family *lat = sl_metrics_family(mx, SL_METRIC_HISTOGRAM, "shiplog_bolt_statement_seconds",
                                            "Cypher statements over Bolt, RUN to their last row", NULL,
                                            sl_metrics_latency_buckets, sl_metrics_latency_nbuckets);
  if (!m->errors || !lat) return -ENOMEM;
  m->latency = sl_metric_series(lat, NULL);
  if (!m->latency || !m->accepted || !m->refused || !m->auth_failed || !m->requests || !m->open || !m->commits || !m->rollbacks ||
      !m->statements || !m->failures || !m->lmdb_used || !m->lmdb_free)
    return -ENOMEM;
  return sl_metrics_on_collect(mx, collect, m);
}

int cmd_serve(int argc, char **argv) {
  enum { O_AUTH = 256, O_NOAUTH, O_DB, O_ADV, O_RR, O_CERT, O_KEY, O_CA, O_MAXC, O_IDLE, O_MAXMSG, O_QT, O_QM, O_TXT,
         O_BMT, O_METRICS, O_READY, O_LAG, O_AGENT };
  static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                       {"auth", required_argument, NULL, O_AUTH},
                                       {"no-auth", no_argument, NULL, O_NOAUTH},
                                       {"database", required_argument, NULL, O_DB},
                                       {"advertise", required_argument, NULL, O_ADV},
                                       {"read-replica", required_argument, NULL, O_RR},
                                       {"tls-cert", required_argument, NULL, O_CERT},
                                       {"tls-key", required_argument, NULL, O_KEY},
                                       {"tls-ca", required_argument, NULL, O_CA},
                                       {"max-connections", required_argument, NULL, O_MAXC},
                                       {"idle-timeout", required_argument, NULL, O_IDLE},
                                       {"max-message", required_argument, NULL, O_MAXMSG},
                                       {"query-timeout", required_argument, NULL, O_QT},
                                       {"query-memory", required_argument, NULL, O_QM},
                                       {"tx-timeout", required_argument, NULL, O_TXT},
                                       {"bookmark-timeout", required_argument, NULL, O_BMT},
                                       {"metrics", required_argument, NULL, O_METRICS},
                                       {"ready-file", required_argument, NULL, O_READY},
                                       {"server-agent", required_argument, NULL, O_AGENT},
                                       {"max-replica-lag", required_argument, NULL, O_LAG},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *auth = NULL, *metrics = NULL, *ready_file = NULL, *agent = NULL, *readers[MAX_READ_REPLICAS];
  bool no_auth = false;
  uint64_t u;
  int ms;
  sl_bolt_server_config sc = {0};
  sl_bolt_engine_config ec = {.tx_timeout_ms = 600000};
  standby_readers standbys = {.max_lag_ms = 10000};
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(serve_help);
    case 'l': sc.listen = optarg; break;
    case O_AUTH: auth = optarg; break;
    case O_NOAUTH: no_auth = true; break;
    case O_DB: ec.database = optarg; break;
    case O_ADV: ec.self = optarg; break;
    case O_RR:
      if (ec.n_readers == MAX_READ_REPLICAS) return cli_usage("serve", "more than %d --read-replica", MAX_READ_REPLICAS);
      readers[ec.n_readers++] = optarg;
      break;
    case O_CERT: sc.tls_cert = optarg; break;
    case O_KEY: sc.tls_key = optarg; break;
    case O_CA: sc.tls_ca = optarg; break;
    case O_MAXC:
      if (cli_parse_u64("serve", "max-connections", optarg, &u)) return CLI_USAGE;
      if (!u || u > 100000) return cli_usage("serve", "--max-connections: 1..100000");
      sc.max_connections = (int)u;
      break;
    case O_IDLE:
      if (cli_parse_u64("serve", "idle-timeout", optarg, &u)) return CLI_USAGE;
      if (!u || u > 86400) return cli_usage("serve", "--idle-timeout: 1..86400 seconds");
      sc.idle_timeout_s = (int)u;
      break;
    case O_MAXMSG:
      if (cli_parse_size("serve", "max-message", optarg, &u)) return CLI_USAGE;
      if (u < 1024 || u > (1u << 30)) return cli_usage("serve", "--max-message: 1K..1G");
      sc.max_message = u;
      break;
    case O_QT:
      if (cli_parse_u64("serve", "query-timeout", optarg, &ec.query_timeout_ms)) return CLI_USAGE;
      break;
    case O_QM:
      if (cli_parse_size("serve", "query-memory", optarg, &ec.query_memory)) return CLI_USAGE;
      break;
    case O_TXT:
      if (cli_parse_u64("serve", "tx-timeout", optarg, &u)) return CLI_USAGE;
      ec.tx_timeout_ms = (int64_t)u;
      break;
    case O_BMT:
      if (cli_parse_ms("serve", "bookmark-timeout", optarg, &ms)) return CLI_USAGE;
      ec.bookmark_timeout_ms = ms;
      break;
    case O_METRICS: metrics = optarg; break;
    case O_AGENT:
      if (!sl_bolt_agent_parsable(optarg))
        return cli_usage("serve", "--server-agent '%s': drivers parse PRODUCT/MAJOR.MINOR[.PATCH], e.g. %s", optarg,
                         SL_BOLT_SERVER_AGENT);
      agent = optarg;
      break;
    case O_READY: ready_file = optarg; break;
    case O_LAG:
      if (cli_parse_ms("serve", "max-replica-lag", optarg, &ms)) return CLI_USAGE;
      standbys.max_lag_ms = (uint64_t)ms;
      break;
    default: return cli_usage("serve", NULL);
    }
  }
  if (cli_positional(argc, argv, "serve", 1, (const char *[]){"STORE"}, &pos)) return CLI_USAGE;
  if (!sc.listen) return cli_usage("serve", "--listen HOST:PORT is required");
  if (!auth == !no_auth)
    return cli_usage("serve", auth ? "--auth and --no-auth exclude each other"
                                   : "give --auth FILE (shiplog passwd makes one) or --no-auth explicitly");
  if (!sc.tls_cert != !sc.tls_key) return cli_usage("serve", "--tls-cert and --tls-key go together");
  if (sc.tls_ca && !sc.tls_cert) return cli_usage("serve", "--tls-ca needs --tls-cert and --tls-key");
  ec.readers = readers;
  standbys.store = pos[0];
  ec.more_readers = find_standbys;
  ec.more_readers_arg = &standbys;

  int rc = CLI_FAIL, ready_fd = -1;
  sl_store *st = NULL;
  sl_bolt_users *users = NULL;
  sl_bolt_throttle *throttle = NULL;
  sl_bolt_engine *engine = NULL;
  sl_bolt_server *server = NULL;
  cli_daemon d = {0};
  serve_metrics sm = {0};
  bool daemon = false;
  int address_fd = -1; /* bolt.address's lock, held while we live */
  char self[300];
  sl_history history;
  if (auth && sl_bolt_users_load(auth, &users)) goto out;
  if (sl_bolt_throttle_new(100, 2000, &throttle)) goto out;
  if (ready_file && (ready_fd = open(ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
    sl_diag_error("%s: %s", ready_file, strerror(errno));
    goto out;
  }
  if (cli_open_store(pos[0], 0, &st)) goto out;
  ec.store = st;
  ec.epoch = sl_log_epoch(sl_store_log(st));
  sl_log_history(sl_store_log(st), &history); /* bookmarks of older epochs are judged by it */
  ec.history = &history;
  atomic_int *stop = cli_stop_on_signals();
  if (cli_daemon_start(&d, metrics)) goto out;
  daemon = true;
  /* The server needs the engine's backend and the engine the server's
   * address (port 0): the backend struct is the engine's, filled below. */
  sc.session = (sl_bolt_session_config){.users = users, .throttle = throttle, .server_agent = agent};
  sl_bolt_backend placeholder = {0};
  sc.session.backend = &placeholder;
  if (sl_bolt_server_start(&sc, &server)) goto out;
  char bound[300];
  cli_bolt_bound(sc.listen, sl_bolt_server_port(server), bound, sizeof bound);
  if (no_auth) sl_diag_warn("--no-auth: anyone who reaches %s may read and write the store, as admin", bound);
  if (!ec.self) ec.self = cli_bolt_advertised(sc.listen, sl_bolt_server_port(server), self, sizeof self);
  ec.writer = ec.self;
  if (d.metrics) {
    ec.on_statement = on_statement;
    ec.on_statement_arg = &sm;
  }
  if (sl_bolt_engine_new(&ec, &engine)) goto out;
  placeholder = *sl_bolt_engine_backend(engine);
  if (d.metrics) {
    sm.server = server;
    sm.engine = engine;
    sm.store = st;
    if (metrics_start(d.metrics, &sm)) goto out;
  }
  /* the shipper tells the standbys where their writer is (Hello.bolt_address) */
  if ((rc = sl_bolt_address_write(pos[0], ec.self, &address_fd))) {
    sl_diag_error("%s/%s: %s", pos[0], SL_BOLT_ADDRESS_FILE, sl_strerror(rc));
    rc = CLI_FAIL;
    goto out;
  }
  if (ready_fd >= 0) {
    dprintf(ready_fd, "%d\n", sl_bolt_server_port(server));
    close(ready_fd);
    ready_fd = -1;
  }
  sl_diag_info("serving %s as database '%s' over Bolt on %s (advertised as %s)", pos[0],
               ec.database ? ec.database : "neo4j", bound, ec.self);
  cli_notify_ready((void *)"serving");
  rc = sl_bolt_server_run(server, stop) ? CLI_FAIL : CLI_OK;
out:
  if (d.metrics && sm.engine) sl_metrics_off_collect(d.metrics, collect, &sm);
  if (daemon) cli_daemon_stop(&d);
  if (address_fd >= 0) sl_bolt_address_remove(pos[0], address_fd);
  sl_bolt_server_free(server);
  sl_bolt_engine_free(engine);
  sl_bolt_throttle_free(throttle);
  sl_bolt_users_free(users);
  if (st) sl_store_close(st);
  if (ready_fd >= 0) close(ready_fd);
  return rc;
}
