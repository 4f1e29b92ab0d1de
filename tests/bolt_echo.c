/*
 * bolt_echo: a Bolt server on the echo backend (bolt.h), for the driver
 * tests (tests/e2e_bolt_wire.sh) until the query engine lands.
 *   bolt_echo --listen HOST:PORT (--auth FILE | --no-auth) [--max-version 4.4]
 *             [--max-connections N] [--idle-timeout S] [--hello-timeout MS]
 *             [--message-timeout MS] [--max-message BYTES] [--port-file FILE]
 *             [--tls-cert FILE --tls-key FILE [--tls-ca FILE]] [--max-buffered BYTES]
 * Prints nothing; writes the port it listens on to --port-file (port 0 picks
 * one). SIGTERM/SIGINT stop it; then it prints its counters as one line:
 * "stats accepted=.. refused_full=.. closed_idle=.. closed_slow=..
 * closed_bad=.. closed_memory=.. auth_failed=.. requests=..".
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt.h"

static atomic_int stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, 'l'},          {"auth", required_argument, NULL, 'a'},
      {"no-auth", no_argument, NULL, 'n'},               {"max-version", required_argument, NULL, 'v'},
      {"max-connections", required_argument, NULL, 'c'}, {"idle-timeout", required_argument, NULL, 'i'},
      {"hello-timeout", required_argument, NULL, 'H'},   {"message-timeout", required_argument, NULL, 'm'},
      {"max-message", required_argument, NULL, 'M'},     {"port-file", required_argument, NULL, 'p'},
      {"tls-cert", required_argument, NULL, 'C'},        {"tls-key", required_argument, NULL, 'K'},
      {"tls-ca", required_argument, NULL, 'A'},          {"max-buffered", required_argument, NULL, 'B'},
      {0}};
  sl_bolt_server_config cfg = {.listen = "127.0.0.1:0"};
  const char *auth = NULL, *port_file = NULL;
  bool no_auth = false;
  int c, major, minor;
  sl_set_progname("bolt_echo");
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'l': cfg.listen = optarg; break;
    case 'a': auth = optarg; break;
    case 'n': no_auth = true; break;
    case 'v':
      if (sscanf(optarg, "%d.%d", &major, &minor) != 2) return 2;
      cfg.max_version = SL_BOLT_V(major, minor);
      break;
    case 'c': cfg.max_connections = atoi(optarg); break;
    case 'i': cfg.idle_timeout_s = atoi(optarg); break;
    case 'H': cfg.hello_timeout_ms = atoi(optarg); break;
    case 'm': cfg.message_timeout_ms = atoi(optarg); break;
    case 'M': cfg.max_message = strtoull(optarg, NULL, 10); break;
    case 'p': port_file = optarg; break;
    case 'C': cfg.tls_cert = optarg; break;
    case 'K': cfg.tls_key = optarg; break;
    case 'A': cfg.tls_ca = optarg; break;
    case 'B': cfg.max_buffered = strtoull(optarg, NULL, 10); break;
    default: return 2;
    }
  }
  if (!auth == !no_auth) {
    fprintf(stderr, "bolt_echo: give --auth FILE or --no-auth\n");
    return 2;
  }
  sl_bolt_users *users = NULL;
  sl_bolt_throttle *throttle = NULL;
  if (auth && sl_bolt_users_load(auth, &users)) return 1;
  if (sl_bolt_throttle_new(100, 2000, &throttle)) return 1;
  cfg.session = (sl_bolt_session_config){.backend = &sl_bolt_echo_backend, .users = users, .throttle = throttle,
                                         .server_agent = "Neo4j/5.26.0"};
  sl_bolt_server *server;
  if (sl_bolt_server_start(&cfg, &server)) return 1;
  if (port_file) {
    FILE *f = fopen(port_file, "w");
    if (!f || fprintf(f, "%d\n", sl_bolt_server_port(server)) < 0 || fclose(f)) return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  sl_bolt_server_run(server, &stop);
  sl_bolt_server_stats st;
  sl_bolt_server_get_stats(server, &st);
  printf("stats accepted=%llu refused_full=%llu closed_idle=%llu closed_slow=%llu closed_bad=%llu closed_memory=%llu "
         "auth_failed=%llu requests=%llu\n",
         (unsigned long long)st.accepted, (unsigned long long)st.refused_full, (unsigned long long)st.closed_idle,
         (unsigned long long)st.closed_slow, (unsigned long long)st.closed_bad, (unsigned long long)st.closed_memory,
         (unsigned long long)st.auth_failed, (unsigned long long)st.requests);
  sl_bolt_server_free(server);
  sl_bolt_throttle_free(throttle);
  sl_bolt_users_free(users);
  return 0;
}
