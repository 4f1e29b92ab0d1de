/*
 * The Bolt TCP server: one listener, one thread per connection, capped.
 *
 * Why threads: a backend's calls block (a commit waits for the log's
 * fsync, a query reads LMDB), so each connection needs a thread of its own
 * while it runs a request anyway; between requests the thread sleeps in
 * poll(). What a hostile client can hold is bounded:
 *   - connections: max_connections; one more is accepted and closed at once
 *     (counted in refused_full), so the listen queue never fills;
 *   - time before login: the handshake and HELLO/LOGON must be done within
 *     hello_timeout_ms of the connect (a client that sends nothing, or a
 *     byte a second, is closed then);
 *   - a started message must be whole within message_timeout_ms;
 *   - an idle logged-in connection is closed after idle_timeout_s (the
 *     drivers are told, HELLO's hints, and reconnect);
 *   - memory: a message's declared chunks count against max_message before
 *     they are buffered (sl_bolt_dechunker), and a decoded message against
 *     the PackStream limits.
 * A limit closes that connection (after a FAILURE where the protocol allows
 * one); the others are not disturbed.
 *
 * CONNECTION (serve_connection):
 *   accept -> read 20 handshake bytes -> answer the version (or 0, close)
 *   -> loop { poll until the deadline -> read -> every whole message:
 *             (a RESET queued behind it: sl_bolt_session_interrupt) ->
 *             sl_bolt_session_handle -> send its responses }
 *   -> close (after a last FAILURE: shut down writing, drain briefly).
 * Stopping: sl_bolt_server_run's caller sets *stop; the listener closes,
 * every connection's socket is shut down (its poll wakes), and run waits
 * for the threads. A request in flight finishes first (its thread notices
 * the shutdown at its next read).
 *
 * TLS: not yet; the seam is read_some/send_all below, which would go
 * through a TLS session (codec/'s helpers require client certificates,
 * which Neo4j's drivers do not present unless asked).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bolt.h"

#define READ_SIZE 65536
#define SEND_TIMEOUT_MS 30000

typedef struct conn {
  struct conn *next, *prev;
  sl_bolt_server *server;
  int fd;
  uint64_t id;
  char peer[64];
} conn;

struct sl_bolt_server {
  sl_bolt_server_config cfg;
  int listen_fd, port;
  char advertise[300]; /* the listen address with its real port, when none is given */
  pthread_mutex_t lock;
  pthread_cond_t idle; /* signalled when a connection ends */
  conn *conns;
  uint64_t next_id;
  bool stopping;
  sl_bolt_server_stats stats;
};

static uint64_t mono_ms(void) { return sl_mono_ns() / 1000000; }

static void count(sl_bolt_server *s, uint64_t *field) {
  pthread_mutex_lock(&s->lock);
  (*field)++;
  pthread_mutex_unlock(&s->lock);
}

/* ---- listening --------------------------------------------------------------------------- */
static int listen_on(const char *hostport, int *fd_out, int *port_out) {
  char host[256], port[16];
  const char *colon = strrchr(hostport, ':');
  if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host || strlen(colon + 1) >= sizeof port)
    return SL_EINVAL;
  size_t hl = (size_t)(colon - hostport);
  if (hostport[0] == '[' && hostport[hl - 1] == ']') {
    memcpy(host, hostport + 1, hl - 2);
    host[hl - 2] = 0;
  } else {
    memcpy(host, hostport, hl);
    host[hl] = 0;
  }
  snprintf(port, sizeof port, "%s", colon + 1);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
  if (getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, port, &hints, &ai)) return SL_EINVAL;
  int rc = -EADDRNOTAVAIL;
  for (struct addrinfo *p = ai; p; p = p->ai_next) {
    int fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, p->ai_addr, p->ai_addrlen) < 0 || listen(fd, 128) < 0) {
      rc = -errno;
      close(fd);
      continue;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    rc = 0;
    break;
  }
  freeaddrinfo(ai);
  return rc;
}

int sl_bolt_server_start(const sl_bolt_server_config *cfg, sl_bolt_server **out) {
  sl_bolt_server *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->cfg = *cfg;
  if (!s->cfg.max_connections) s->cfg.max_connections = 256;
  if (!s->cfg.idle_timeout_s) s->cfg.idle_timeout_s = 600;
  if (!s->cfg.hello_timeout_ms) s->cfg.hello_timeout_ms = 10000;
  if (!s->cfg.message_timeout_ms) s->cfg.message_timeout_ms = 30000;
  if (!s->cfg.max_message) s->cfg.max_message = 16u << 20;
  if (!s->cfg.session.idle_timeout_s) s->cfg.session.idle_timeout_s = s->cfg.idle_timeout_s;
  if (!s->cfg.session.limits.max_depth) s->cfg.session.limits = sl_pack_default_limits;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->idle, NULL);
  int rc = listen_on(cfg->listen, &s->listen_fd, &s->port);
  if (rc) {
    sl_diag_error("bolt: cannot listen on %s: %s", cfg->listen, sl_strerror(rc));
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle);
    free(s);
    return rc;
  }
  if (!s->cfg.session.advertise) {
    /* routing tables name this server as the client reached it */
    const char *colon = strrchr(cfg->listen, ':');
    snprintf(s->advertise, sizeof s->advertise, "%.*s:%d", (int)(colon - cfg->listen), cfg->listen, s->port);
    if (!strncmp(s->advertise, "0.0.0.0:", 8) || s->advertise[0] == ':' || !strncmp(s->advertise, "[::]:", 5))
      snprintf(s->advertise, sizeof s->advertise, "localhost:%d", s->port);
    s->cfg.session.advertise = s->advertise;
  }
  *out = s;
  return 0;
}

int sl_bolt_server_port(const sl_bolt_server *s) { return s->port; }

void sl_bolt_server_get_stats(sl_bolt_server *s, sl_bolt_server_stats *out) {
  pthread_mutex_lock(&s->lock);
  *out = s->stats;
  pthread_mutex_unlock(&s->lock);
}

/* ---- one connection ---------------------------------------------------------------------- */
/* Wait for input until deadline (mono ms): 1 ready, 0 timed out, <0 error. */
static int wait_readable(int fd, uint64_t deadline) {
  for (;;) {
    uint64_t now = mono_ms();
    if (now >= deadline) return 0;
    uint64_t left = deadline - now;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return -errno;
  }
}

static int send_all(int fd, const uint8_t *p, size_t len) {
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int k = poll(&pf, 1, SEND_TIMEOUT_MS);
    if (k == 0) return -ETIMEDOUT;
    if (k < 0 && errno != EINTR) return -errno;
  }
  return 0;
}

static int flush_out(void *arg, sl_buf *out) {
  conn *c = arg;
  int rc = send_all(c->fd, out->data, out->len);
  out->len = 0;
  return rc;
}

/* After a last message: stop writing, let the peer read it, drop what it
 * still sends (closing with unread input would reset the connection and
 * could destroy that message), for a moment at most. */
static void linger_close(int fd) {
  shutdown(fd, SHUT_WR);
  uint8_t junk[4096];
  uint64_t deadline = mono_ms() + 500;
  while (wait_readable(fd, deadline) == 1 && recv(fd, junk, sizeof junk, 0) > 0) {}
}

/* Read exactly n bytes before deadline: 0, SL_EEND (closed), -ETIMEDOUT. */
static int read_exact(int fd, uint8_t *buf, size_t n, uint64_t deadline) {
  size_t got = 0;
  while (got < n) {
    int w = wait_readable(fd, deadline);
    if (w == 0) return -ETIMEDOUT;
    if (w < 0) return w;
    ssize_t k = recv(fd, buf + got, n - got, 0);
    if (k == 0) return SL_EEND;
    if (k < 0 && errno != EINTR && errno != EAGAIN) return -errno;
    if (k > 0) got += (size_t)k;
  }
  return 0;
}

static void serve_connection(conn *c) {
  sl_bolt_server *s = c->server;
  const sl_bolt_server_config *cfg = &s->cfg;
  sl_bolt_session *session = NULL;
  sl_bolt_dechunker dc = {.max_message = cfg->max_message};
  sl_buf msg = {0}, out = {0};
  uint8_t *rbuf = malloc(READ_SIZE);
  uint64_t hello_deadline = mono_ms() + (uint64_t)cfg->hello_timeout_ms;
  uint8_t hs[SL_BOLT_HANDSHAKE_SIZE], reply[4];
  bool last_failure = false;
  uint16_t version = 0;
  sl_diag_context(NULL, c->peer);
  if (!rbuf) goto out;
  int rc = read_exact(c->fd, hs, sizeof hs, hello_deadline);
  if (rc) {
    if (rc == -ETIMEDOUT) count(s, &s->stats.closed_slow);
    goto out;
  }
  if (sl_bolt_handshake(hs, cfg->max_version, &version)) {
    sl_diag_info("bolt: %s: not a Bolt client (bad magic), closed", c->peer);
    count(s, &s->stats.closed_bad);
    goto out;
  }
  sl_bolt_handshake_reply(version, reply);
  if (send_all(c->fd, reply, 4) || !version) {
    if (!version) sl_diag_info("bolt: %s: no common protocol version, closed", c->peer);
    goto out;
  }
  if (sl_bolt_session_new(&cfg->session, version, c->peer, c->id, &session)) goto out;
  uint64_t last_request = mono_ms(), partial_since = 0;
  for (;;) {
    /* what ends the wait: login not done, a message not whole, or idleness */
    uint64_t deadline;
    uint64_t *why;
    if (!sl_bolt_session_authenticated(session)) {
      deadline = hello_deadline;
      why = &s->stats.closed_slow;
    } else if (partial_since) {
      deadline = partial_since + (uint64_t)cfg->message_timeout_ms;
      why = &s->stats.closed_slow;
    } else {
      deadline = last_request + (uint64_t)cfg->idle_timeout_s * 1000;
      why = &s->stats.closed_idle;
    }
    int w = wait_readable(c->fd, deadline);
    if (w == 0) {
      sl_diag_info("bolt: %s: %s, closed", c->peer, why == &s->stats.closed_idle ? "idle" : "too slow");
      count(s, why);
      goto out;
    }
    if (w < 0) goto out;
    ssize_t n = recv(c->fd, rbuf, READ_SIZE, 0);
    if (n == 0) goto out;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      goto out;
    }
    if ((rc = sl_bolt_dechunk_feed(&dc, rbuf, (size_t)n))) goto out;
    for (;;) {
      bool partial = false;
      rc = sl_bolt_dechunk_next(&dc, &msg, &partial);
      if (rc == SL_ETOOBIG) {
        char text[160];
        snprintf(text, sizeof text, "a message larger than the server's limit of %zu bytes", cfg->max_message);
        sl_diag_warn("bolt: %s: %s, closed", c->peer, text);
        /* a FAILURE the client can read; RECORD streams are not in flight here */
        sl_buf body = {0};
        sl_pack meta, items[4];
        meta = (sl_pack){.kind = SL_PACK_MAP, .len = 2, .u.items = items};
        items[0] = sl_pack_str("code");
        items[1] = sl_pack_str("Neo.ClientError.Request.Invalid");
        items[2] = sl_pack_str("message");
        items[3] = sl_pack_str(text);
        if (!sl_pack_put_header(&body, SL_PACK_STRUCT, 1, SL_BOLT_MSG_FAILURE) && !sl_pack_encode(&body, &meta))
          sl_bolt_chunk(&out, body.data, body.len);
        sl_buf_free(&body);
        count(s, &s->stats.closed_bad);
        last_failure = true;
        goto send_and_close;
      }
      if (rc < 0) goto out;
      if (rc == 0) {
        if (!partial) partial_since = 0;
        else if (!partial_since) partial_since = mono_ms();
        break;
      }
      partial_since = partial ? mono_ms() : 0;
      last_request = mono_ms();
      count(s, &s->stats.requests);
      /* a RESET behind this message: it and what precedes the RESET are IGNORED */
      if (msg.len >= 2 && msg.data[1] != SL_BOLT_MSG_RESET && sl_bolt_session_authenticated(session) &&
          sl_bolt_dechunk_count_tag(&dc, SL_BOLT_MSG_RESET) > 0 && sl_bolt_session_state(session) != SL_BOLT_INTERRUPTED)
        sl_bolt_session_interrupt(session);
      bool was_authenticated = sl_bolt_session_authenticated(session);
      rc = sl_bolt_session_handle(session, msg.data, msg.len, &out, flush_out, c);
      if (rc == SL_EAUTH && !was_authenticated) count(s, &s->stats.auth_failed);
      else if (rc < 0 && rc != SL_EEND) count(s, &s->stats.closed_bad);
      if (rc < 0) {
        last_failure = out.len > 0;
        goto send_and_close;
      }
      if (was_authenticated && !sl_bolt_session_authenticated(session)) /* LOGOFF: a new login's time */
        hello_deadline = mono_ms() + (uint64_t)cfg->hello_timeout_ms;
      if (out.len && flush_out(c, &out)) goto out;
    }
  }
send_and_close:
  if (out.len) flush_out(c, &out);
  if (last_failure) linger_close(c->fd);
out:
  sl_bolt_session_free(session);
  sl_bolt_dechunk_free(&dc);
  sl_buf_free(&msg);
  sl_buf_free(&out);
  free(rbuf);
}

static void *conn_thread(void *arg) {
  conn *c = arg;
  sl_bolt_server *s = c->server;
  serve_connection(c);
  pthread_mutex_lock(&s->lock);
  close(c->fd);
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->stats.open--;
  pthread_cond_broadcast(&s->idle);
  pthread_mutex_unlock(&s->lock);
  free(c);
  return NULL;
}

static void peer_name(const struct sockaddr_storage *ss, char out[64]) {
  char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
  getnameinfo((const struct sockaddr *)ss, sizeof *ss, host, sizeof host, port, sizeof port,
              NI_NUMERICHOST | NI_NUMERICSERV);
  snprintf(out, 64, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

int sl_bolt_server_run(sl_bolt_server *s, volatile sig_atomic_t *stop) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 1u << 20);
  while (!*stop) {
    struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
    int n = poll(&p, 1, 200);
    if (n <= 0) continue;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) poll(NULL, 0, 100); /* let connections end */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&s->lock);
    s->stats.accepted++;
    bool full = s->stats.open >= s->cfg.max_connections;
    if (full) s->stats.refused_full++;
    pthread_mutex_unlock(&s->lock);
    conn *c = full ? NULL : calloc(1, sizeof *c);
    if (!c) {
      if (full) {
        char peer[64];
        peer_name(&ss, peer);
        sl_diag_warn("bolt: %s: refused, %d connections open (the limit)", peer, s->cfg.max_connections);
      }
      close(fd);
      continue;
    }
    c->server = s;
    c->fd = fd;
    peer_name(&ss, c->peer);
    pthread_mutex_lock(&s->lock);
    c->id = ++s->next_id;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->stats.open++;
    pthread_mutex_unlock(&s->lock);
    pthread_t t;
    if (pthread_create(&t, &attr, conn_thread, c)) {
      pthread_mutex_lock(&s->lock);
      s->conns = c->next;
      if (c->next) c->next->prev = NULL;
      s->stats.open--;
      pthread_mutex_unlock(&s->lock);
      close(fd);
      free(c);
    }
  }
  pthread_attr_destroy(&attr);
  close(s->listen_fd);
  s->listen_fd = -1;
  pthread_mutex_lock(&s->lock);
  s->stopping = true;
  for (conn *c = s->conns; c; c = c->next) shutdown(c->fd, SHUT_RDWR);
  while (s->stats.open > 0) pthread_cond_wait(&s->idle, &s->lock);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

void sl_bolt_server_free(sl_bolt_server *s) {
  if (!s) return;
  if (s->listen_fd >= 0) close(s->listen_fd);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->idle);
  free(s);
}
