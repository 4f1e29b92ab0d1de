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
 *     the PackStream limits; the buffers of all connections together count
 *     against max_buffered (charge): past it, a connection holding more than
 *     1 MiB fails (MemoryPoolOutOfMemoryError) and the small ones go on.
 * A limit closes that connection (after a FAILURE where the protocol allows
 * one); the others are not disturbed.
 *
 * CONNECTION (serve_connection):
 *   accept -> read 20 handshake bytes -> answer the version (or 0, close)
 *   -> loop { poll until the deadline -> read -> every whole message:
 *             (a RESET queued behind it: sl_bolt_session_interrupt) ->
 *             sl_bolt_session_handle -> once no whole message is left,
 *             send all their responses at once }
 *   -> close (after a last FAILURE: shut down writing, drain briefly).
 * A pipelined transaction (BEGIN, RUN, PULL, COMMIT in one write, as the
 * drivers send them) is answered with one send: each send on loopback
 * wakes the client and runs its receive path, and four of them cost more
 * than the statement. The session sends early only past 64 KiB.
 * Stopping: sl_bolt_server_run's caller sets *stop; the listener closes,
 * every connection's socket is shut down (its poll wakes), and run waits
 * for the threads. A request in flight finishes first (its thread notices
 * the shutdown at its next read).
 *
 * TLS (tls_cert/tls_key given): the server's certificate only, as
 * Neo4j's drivers expect (bolt+s://, neo4j+s://); with tls_ca, clients must
 * also present a certificate from that CA. TLS 1.2 or later. The handshake
 * counts against the hello deadline. Sockets are nonblocking and every
 * wait is a poll() with a deadline, for TLS and plain TCP alike (codec/'s
 * TLS requires client certificates, and bolt/ does not use codec/).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bolt.h"

#define READ_SIZE 65536
#define SEND_TIMEOUT_MS 30000

typedef struct conn {
  struct conn *next, *prev;
  sl_bolt_server *server;
  int fd;
  SSL *ssl; /* NULL: plain TCP */
  uint64_t id;
  char peer[64];
} conn;

struct sl_bolt_server {
  sl_bolt_server_config cfg;
  int listen_fd, port;
  SSL_CTX *tls;        /* NULL: plain TCP */
  _Atomic size_t buffered; /* bytes of message buffers, all connections (max_buffered) */
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
static int tls_context(const sl_bolt_server_config *cfg, SSL_CTX **out) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  const char *file = cfg->tls_cert;
  if (!ctx) return -ENOMEM;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) goto fail;
  file = cfg->tls_key;
  if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    goto fail;
  if (cfg->tls_ca) {
    file = cfg->tls_ca;
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1) goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  *out = ctx;
  return 0;
fail:;
  char why[160] = "unreadable";
  unsigned long err = ERR_peek_last_error();
  if (err) ERR_error_string_n(err, why, sizeof why);
  sl_diag_error("bolt: %s: %s", file, why);
  SSL_CTX_free(ctx);
  return SL_EINVAL;
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
  if (!s->cfg.max_buffered) s->cfg.max_buffered = (size_t)256 << 20;
  if (!s->cfg.session.idle_timeout_s) s->cfg.session.idle_timeout_s = s->cfg.idle_timeout_s;
  if (!s->cfg.session.limits.max_depth) s->cfg.session.limits = sl_pack_default_limits;
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->idle, NULL);
  s->listen_fd = -1;
  int rc = cfg->tls_cert ? tls_context(cfg, &s->tls) : 0;
  if (rc) goto fail;
  if ((rc = sl_listen(cfg->listen, 128, &s->listen_fd)) == 0 && (s->port = sl_socket_port(s->listen_fd)) < 0)
    rc = s->port;
  if (rc) {
    sl_diag_error("bolt: cannot listen on %s: %s", cfg->listen, sl_strerror(rc));
    goto fail;
  }
  if (!s->cfg.session.advertise) {
    /* routing tables name this server as the client reached it */
    const char *colon = strrchr(cfg->listen, ':');
    snprintf(s->advertise, sizeof s->advertise, "%.*s:%d", (int)(colon - cfg->listen), cfg->listen, s->port);
    if (!strncmp(s->advertise, "0.0.0.0:", 8) || s->advertise[0] == '*' || !strncmp(s->advertise, "[::]:", 5))
      snprintf(s->advertise, sizeof s->advertise, "localhost:%d", s->port);
    s->cfg.session.advertise = s->advertise;
  }
  *out = s;
  return 0;
fail:
  sl_bolt_server_free(s);
  return rc;
}

int sl_bolt_server_port(const sl_bolt_server *s) { return s->port; }

void sl_bolt_server_get_stats(sl_bolt_server *s, sl_bolt_server_stats *out) {
  pthread_mutex_lock(&s->lock);
  *out = s->stats;
  pthread_mutex_unlock(&s->lock);
}

/* ---- one connection's bytes (plain TCP or TLS over a nonblocking socket) ---- */
/* Wait for input until deadline (mono ms): 1 ready, 0 timed out, <0 error.
 * Bytes TLS has decrypted already count as ready. */
static int wait_io(conn *c, short events, uint64_t deadline) {
  if (events == POLLIN && c->ssl && SSL_pending(c->ssl) > 0) return 1;
  for (;;) {
    uint64_t now = mono_ms();
    if (now >= deadline) return 0;
    uint64_t left = deadline - now;
    struct pollfd p = {.fd = c->fd, .events = events};
    int n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return -errno;
  }
}

/* Read what is there: > 0 bytes, 0 the peer closed, -EAGAIN nothing yet
 * (TLS: also when the session needs to write), or an error. */
static long conn_read(conn *c, void *buf, size_t len) {
  if (c->ssl) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0) return n;
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -EAGAIN;
    return e == SSL_ERROR_ZERO_RETURN ? 0 : SL_ECORRUPT;
  }
  ssize_t n = recv(c->fd, buf, len, 0);
  if (n >= 0) return n;
  return errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static int send_all(conn *c, const uint8_t *p, size_t len) {
  while (len) {
    long n;
    short want = POLLOUT;
    if (c->ssl) {
      ERR_clear_error();
      int k = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
      int e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, k);
      if (e == SSL_ERROR_WANT_READ) want = POLLIN;
      n = k > 0 ? k : e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -EAGAIN : SL_ECORRUPT;
    } else {
      ssize_t k = send(c->fd, p, len, MSG_NOSIGNAL);
      n = k >= 0 ? k : errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n != -EAGAIN) return (int)n;
    int w = wait_io(c, want, mono_ms() + SEND_TIMEOUT_MS);
    if (w == 0) return -ETIMEDOUT;
    if (w < 0) return w;
  }
  return 0;
}

static int flush_out(void *arg, sl_buf *out) {
  conn *c = arg;
  int rc = send_all(c, out->data, out->len);
  out->len = 0;
  return rc;
}

/* After a last message: stop writing, let the peer read it, drop what it
 * still sends (closing with unread input would reset the connection and
 * could destroy that message), for a moment at most. */
static void linger_close(conn *c) {
  if (c->ssl) SSL_shutdown(c->ssl);
  shutdown(c->fd, SHUT_WR);
  uint8_t junk[4096];
  uint64_t deadline = mono_ms() + 500;
  long n;
  while (wait_io(c, POLLIN, deadline) == 1 && ((n = conn_read(c, junk, sizeof junk)) > 0 || n == -EAGAIN)) {}
}

/* Read exactly n bytes before deadline: 0, SL_EEND (closed), -ETIMEDOUT. */
static int read_exact(conn *c, uint8_t *buf, size_t n, uint64_t deadline) {
  size_t got = 0;
  while (got < n) {
    int w = wait_io(c, POLLIN, deadline);
    if (w == 0) return -ETIMEDOUT;
    if (w < 0) return w;
    long k = conn_read(c, buf + got, n - got);
    if (k == 0) return SL_EEND;
    if (k < 0 && k != -EAGAIN) return (int)k;
    if (k > 0) got += (size_t)k;
  }
  return 0;
}

/* The TLS handshake, within deadline: 0, -ETIMEDOUT, SL_EAUTH (refused:
 * no TLS, a client certificate missing or not from the CA). */
static int tls_accept(conn *c, SSL_CTX *ctx, uint64_t deadline) {
  if (!(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, c->fd)) return -ENOMEM;
  for (;;) {
    ERR_clear_error();
    int k = SSL_accept(c->ssl);
    if (k == 1) return 0;
    int e = SSL_get_error(c->ssl, k);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      char why[160] = "the client closed";
      unsigned long err = ERR_peek_last_error();
      if (err) ERR_error_string_n(err, why, sizeof why);
      sl_diag_warn("bolt: %s: TLS handshake failed: %s", c->peer, why);
      return SL_EAUTH;
    }
    int w = wait_io(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    if (w == 0) return -ETIMEDOUT;
    if (w < 0) return w;
  }
}

#define BIG_BUFFER (1u << 20) /* a connection's buffers past this count as big */

/* Charge the connection's message buffers (now `bytes`) to the server's
 * budget: true when the budget is exceeded and this connection holds a big
 * share, so it must give way. */
static bool charge(sl_bolt_server *s, size_t *charged, size_t bytes) {
  if (bytes >= *charged) atomic_fetch_add(&s->buffered, bytes - *charged);
  else atomic_fetch_sub(&s->buffered, *charged - bytes);
  *charged = bytes;
  return bytes > BIG_BUFFER && atomic_load(&s->buffered) > s->cfg.max_buffered;
}

/* A FAILURE outside any request (the connection closes after it). */
static void failure_message(sl_buf *out, const char *code, const char *text) {
  sl_buf body = {0};
  sl_pack items[4] = {sl_pack_str("code"), sl_pack_str(code), sl_pack_str("message"), sl_pack_str(text)};
  sl_pack meta = {.kind = SL_PACK_MAP, .len = 2, .u.items = items};
  if (!sl_pack_put_header(&body, SL_PACK_STRUCT, 1, SL_BOLT_MSG_FAILURE) && !sl_pack_encode(&body, &meta))
    sl_bolt_chunk(out, body.data, body.len);
  sl_buf_free(&body);
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
  size_t charged = 0; /* this connection's share of s->buffered */
  sl_diag_context(NULL, c->peer);
  if (!rbuf) goto out;
  int rc = s->tls ? tls_accept(c, s->tls, hello_deadline) : 0;
  if (rc) {
    count(s, rc == -ETIMEDOUT ? &s->stats.closed_slow : &s->stats.closed_bad);
    goto out;
  }
  rc = read_exact(c, hs, sizeof hs, hello_deadline);
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
  if (send_all(c, reply, 4) || !version) {
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
    /* the backend's timers (a transaction's timeout) run in this thread */
    int64_t tick = sl_bolt_session_tick(session);
    uint64_t until = tick >= 0 && mono_ms() + (uint64_t)tick < deadline ? mono_ms() + (uint64_t)tick : deadline;
    int w = wait_io(c, POLLIN, until);
    if (w == 0 && until < deadline) continue;
    if (w == 0) {
      sl_diag_info("bolt: %s: %s, closed", c->peer, why == &s->stats.closed_idle ? "idle" : "too slow");
      count(s, why);
      goto out;
    }
    if (w < 0) goto out;
    long n = conn_read(c, rbuf, READ_SIZE);
    if (n == -EAGAIN) continue;
    if (n <= 0) goto out;
    if ((rc = sl_bolt_dechunk_feed(&dc, rbuf, (size_t)n))) goto out;
    if (charge(s, &charged, dc.in.cap + msg.cap)) {
      sl_diag_warn("bolt: %s: messages being received take more than %zu bytes in all; this one's %zu closed",
                   c->peer, cfg->max_buffered, charged);
      failure_message(&out, "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
                      "The server holds too many large messages at once; try again.");
      count(s, &s->stats.closed_memory);
      last_failure = true;
      goto send_and_close;
    }
    /* RESETs queued: what precedes each is IGNORED (INTERRUPTED), as in Neo4j */
    size_t resets = sl_bolt_dechunk_count_tag(&dc, SL_BOLT_MSG_RESET);
    for (;;) {
      bool partial = false;
      rc = sl_bolt_dechunk_next(&dc, &msg, &partial);
      if (rc == SL_ETOOBIG) {
        char text[160];
        snprintf(text, sizeof text, "a message larger than the server's limit of %zu bytes", cfg->max_message);
        sl_diag_warn("bolt: %s: %s, closed", c->peer, text);
        failure_message(&out, "Neo.ClientError.Request.Invalid", text);
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
      if (msg.len >= 2 && msg.data[1] == SL_BOLT_MSG_RESET) {
        if (resets) resets--;
      } else if (resets && sl_bolt_session_authenticated(session) &&
                 sl_bolt_session_state(session) != SL_BOLT_INTERRUPTED) {
        sl_bolt_session_interrupt(session);
      }
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
    }
    if (out.len && flush_out(c, &out)) goto out;
    /* give back what a big message took, once it is handled */
    if (!dc.in.len && dc.in.cap > BIG_BUFFER) sl_bolt_dechunk_free(&dc);
    if (msg.cap > BIG_BUFFER) sl_buf_free(&msg);
    charge(s, &charged, dc.in.cap + msg.cap);
  }
send_and_close:
  if (out.len) flush_out(c, &out);
  if (last_failure) linger_close(c);
out:
  charge(s, &charged, 0);
  sl_bolt_session_free(session);
  sl_bolt_dechunk_free(&dc);
  sl_buf_free(&msg);
  sl_buf_free(&out);
  free(rbuf);
  if (c->ssl) {
    if (!last_failure) SSL_shutdown(c->ssl); /* close_notify; best effort */
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
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

int sl_bolt_server_run(sl_bolt_server *s, atomic_int *stop) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 8u << 20); /* reserved, touched as used: a query SL_QUERY_MAX_DEPTH deep */
  while (!*stop) {
    struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
    int n = poll(&p, 1, 200);
    if (n <= 0) continue;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
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
  SSL_CTX_free(s->tls);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->idle);
  free(s);
}
