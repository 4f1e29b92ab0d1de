/*
 * `shiplog receive ... --bolt HOST:PORT` (spec/bolt.md): every stream's hot
 * standby served read-only over Bolt, the database name being the stream's.
 * bolt/'s server and query engine run beside the receiver in this process:
 * the engine finds a database through sl_receiver_standby (the receiver's
 * own open standby, read through LMDB read transactions, so applying never
 * waits for a reader), and the receiver stops the Bolt server before it
 * closes its standbys (before_close). Listening starts before the receiver
 * runs, so a Bolt address in use fails the command at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bolt.h"
#include "cli.h"
#include "receiver.h"

static int lookup(void *arg, const char *db, sl_bolt_db *out) {
  cli_bolt_rx *b = arg;
  struct sl__receiver *r = atomic_load(&b->receiver);
  if (!r) return -EAGAIN;
  return sl_receiver_standby(r, db, &out->store, &out->epoch, &out->history, out->name, out->writer);
}

static void on_streams(void *arg, struct sl__receiver *r) {
  cli_bolt_rx *b = arg;
  atomic_store(&b->receiver, r);
}

static void *serve_main(void *arg) {
  cli_bolt_rx *b = arg;
  sl_bolt_server_run(b->server, &b->stop);
  return NULL;
}

/* Stop serving: the requests in flight finish, the connections close. */
static void before_close(void *arg) {
  cli_bolt_rx *b = arg;
  if (b->running) {
    b->stop = 1;
    pthread_join(b->thread, NULL);
    b->running = false;
  }
  atomic_store(&b->receiver, NULL);
}

const char *cli_bolt_bound(const char *listen, int port, char *buf, size_t len) {
  const char *colon = strrchr(listen, ':');
  snprintf(buf, len, "%.*s:%d", colon ? (int)(colon - listen) : (int)strlen(listen), listen, port);
  return buf;
}

const char *cli_bolt_advertised(const char *listen, int port, char *buf, size_t len) {
  const char *colon = strrchr(listen, ':');
  bool any = !colon || colon == listen || !strncmp(listen, "0.0.0.0:", 8) || !strncmp(listen, "[::]:", 5);
  if (!any) return cli_bolt_bound(listen, port, buf, len);
  snprintf(buf, len, "localhost:%d", port);
  return buf;
}

int cli_bolt_rx_check(const cli_bolt_rx *b) {
  if (!b->listen) {
    if (b->auth || b->no_auth || b->advertise || b->tls_cert || b->tls_key || b->tls_ca || b->agent)
      return cli_usage("receive", "the --bolt-* options need --bolt HOST:PORT");
    return CLI_OK;
  }
  if (!b->auth == !b->no_auth)
    return cli_usage("receive", b->auth ? "--bolt-auth and --bolt-no-auth exclude each other"
                                        : "--bolt needs --bolt-auth FILE (shiplog passwd makes one) or --bolt-no-auth");
  if (!b->tls_cert != !b->tls_key) return cli_usage("receive", "--bolt-tls-cert and --bolt-tls-key go together");
  return CLI_OK;
}

int cli_bolt_rx_start(cli_bolt_rx *b, sl_receiver_options *ro) {
  if (!b->listen) return CLI_OK;
  sl_bolt_server_config sc = {.listen = b->listen, .tls_cert = b->tls_cert, .tls_key = b->tls_key, .tls_ca = b->tls_ca};
  if (!sc.tls_cert && ro->tls_cert) { /* the replication certificate by default */
    sc.tls_cert = ro->tls_cert;
    sc.tls_key = ro->tls_key;
  }
  if (b->auth && sl_bolt_users_load(b->auth, &b->users)) goto fail;
  if (sl_bolt_throttle_new(100, 2000, &b->throttle)) goto fail;
  sc.session = (sl_bolt_session_config){.backend = &b->backend, .users = b->users, .throttle = b->throttle,
                                        .server_agent = b->agent};
  if (sl_bolt_server_start(&sc, &b->server)) goto fail;
  char bound[300];
  cli_bolt_bound(b->listen, sl_bolt_server_port(b->server), bound, sizeof bound);
  if (b->no_auth) sl_diag_warn("--bolt-no-auth: anyone who reaches %s may read every standby", bound);
  if (!b->advertise) b->advertise = cli_bolt_advertised(b->listen, sl_bolt_server_port(b->server), b->self, sizeof b->self);
  sl_bolt_engine_config ec = {.lookup = lookup, .lookup_arg = b, .read_only = true,
                              .bookmark_timeout_ms = b->bookmark_timeout_ms, .self = b->advertise};
  if (sl_bolt_engine_new(&ec, &b->engine)) goto fail;
  b->backend = *sl_bolt_engine_backend(b->engine);
  if (pthread_create(&b->thread, NULL, serve_main, b)) {
    sl_diag_error("--bolt: cannot start the server's thread");
    goto fail;
  }
  b->running = true;
  ro->on_streams = on_streams;
  ro->before_close = before_close;
  ro->streams_arg = b;
  ro->bolt_address = b->advertise;
  sl_diag_info("serving the standbys over Bolt on %s (advertised as %s)", bound, b->advertise);
  return CLI_OK;
fail:
  cli_bolt_rx_stop(b);
  return CLI_FAIL;
}

void cli_bolt_rx_stop(cli_bolt_rx *b) {
  before_close(b);
  sl_bolt_server_free(b->server);
  sl_bolt_engine_free(b->engine);
  sl_bolt_throttle_free(b->throttle);
  sl_bolt_users_free(b->users);
  b->server = NULL;
  b->engine = NULL;
  b->throttle = NULL;
  b->users = NULL;
}

int cli_bolt_rx_option(cli_bolt_rx *b, int c, const char *arg) {
  switch (c) {
  case 0x4201: b->listen = arg; return 1;
  case 0x4202: b->advertise = arg; return 1;
  case 0x4203: b->auth = arg; return 1;
  case 0x4204: b->no_auth = true; return 1;
  case 0x4205: b->tls_cert = arg; return 1;
  case 0x4206: b->tls_key = arg; return 1;
  case 0x4207: b->tls_ca = arg; return 1;
  case 0x4208: return cli_parse_ms("receive", "bookmark-timeout", arg, &b->bookmark_timeout_ms) ? CLI_USAGE : 1;
  case 0x4209:
    if (!sl_bolt_agent_parsable(arg))
      return cli_usage("receive", "--bolt-server-agent '%s': drivers parse PRODUCT/MAJOR.MINOR[.PATCH], e.g. %s", arg,
                       SL_BOLT_SERVER_AGENT);
    b->agent = arg;
    return 1;
  default: return 0;
  }
}
