/*
 * receiver.c: the listener of `shiplog receive` -- sl_receiver_run, the
 * accept loop, the connection limits and the log budget (messages:
 * proto/replication.proto; framing: codec/codec.h; one connection's
 * session: session.c; per-stream state: stream.c).
 *
 * THREADS. The thread calling sl_receiver_run accepts connections (and
 * notices *stop); each connection gets a thread of its own for its whole
 * life; each stream has a worker thread (standby.c) that applies to the
 * standby. Only a connection's own thread sends on it, so no send lock:
 * the worker tells the owner that `applied` moved through the stream's
 * eventfd, and the owner sends the Ack.
 *
 * LIMITS (connections; the message sizes are in session.c): at most
 * max_connections, and max_connections_per_peer from one address, counted
 * at accept (before TLS). A connection is INTRODUCED once its client
 * certificate is verified (TLS), or once its Hello came and passed the
 * allow list (plain TCP). A connection
 * past a limit evicts the oldest one that is not introduced (from that
 * address, or overall): first among those that have not sent a byte
 * (squatters), else among those older than EVICT_GRACE_MS, and is refused
 * only when there is none: so connections that never authenticate cannot
 * lock a shipper out (it gets a slot, and once its first bytes arrive, a
 * few ms later, the grace to introduce itself); at worst they lose their
 * own slots to it. The TLS handshake and the Hello
 * together must arrive within HELLO_TIMEOUT_MS (at most timeout_ms) of the
 * accept (the connection's deadline, codec.h), so a silent or trickling
 * peer cannot hold a slot long; sends to a peer that stops reading time
 * out as well.
 *
 * LOG BUDGET: lines about connections that are not introduced (accepted,
 * refused, evicted, TLS failures, garbage or silence before the Hello) are
 * rate-limited per address: NOTE_BURST at once, then one a second, the
 * next line saying how many were suppressed. A flood of connections costs
 * a line a second, not a disk.
 */
#include "receiver_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_base.h"

#define HELLO_TIMEOUT_MS 5000     /* TLS and the Hello, at most (and at most timeout_ms) */
#define EVICT_GRACE_MS 1000       /* an unintroduced connection is not evicted younger (at most half the above) */
#define NOTE_BURST 30             /* LOG BUDGET: lines at once about one peer's unintroduced connections */
#define NOTE_EVERY_MS 1000        /* ...then one a second */

/* ---- the log budget ---------------------------------------------------------------------- */

/* LOG BUDGET (LIMITS): whether a line about a connection from host may go
 * out now (a token bucket per address, NOTE_BURST deep, refilled one a
 * NOTE_EVERY_MS); *suppressed gets the lines dropped since the last one. */
static bool note_take(sl__receiver *r, const char *host, unsigned *suppressed) {
  uint64_t now = sl_mono_ns(), every = (uint64_t)NOTE_EVERY_MS * 1000000u;
  sl__peer_note *n = NULL, *lru = &r->notes[0];
  pthread_mutex_lock(&r->note_mu);
  for (size_t i = 0; i < SL__NOTE_PEERS && !n; i++) {
    if (r->notes[i].host[0] && strcmp(r->notes[i].host, host) == 0) n = &r->notes[i];
    else if (r->notes[i].refill_ns < lru->refill_ns) lru = &r->notes[i];
  }
  if (!n) { /* the address heard from longest ago makes room */
    n = lru;
    snprintf(n->host, sizeof n->host, "%s", host);
    n->tokens = NOTE_BURST;
    n->suppressed = 0;
    n->refill_ns = now;
  }
  uint64_t add = (now - n->refill_ns) / every;
  n->tokens = (unsigned)SL_MIN((uint64_t)NOTE_BURST, n->tokens + add);
  n->refill_ns = n->tokens == NOTE_BURST ? now : n->refill_ns + add * every;
  bool ok = n->tokens > 0;
  if (ok) {
    n->tokens--;
    *suppressed = n->suppressed;
    n->suppressed = 0;
  } else {
    n->suppressed++;
  }
  pthread_mutex_unlock(&r->note_mu);
  return ok;
}

static void peer_note(sl__receiver *r, const char *host, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void peer_note(sl__receiver *r, const char *host, int level, const char *fmt, ...) {
  unsigned suppressed;
  if (!note_take(r, host, &suppressed)) return;
  char line[800], more[128] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (suppressed)
    snprintf(more, sizeof more, " (%u more lines about connections from %s suppressed)", suppressed, host);
  if (level == SL__NOTE_ERROR) sl_diag_error("%s%s", line, more);
  else if (level == SL__NOTE_WARN) sl_diag_warn("%s%s", line, more);
  else sl_diag_info("%s%s", line, more);
}

/* A line about connection cx: within its address's budget until it is
 * introduced (a flood of connections cannot flood the log); nothing once
 * it was evicted (the eviction said why). */
void sl__conn_log(sl__conn_ctx *cx, int level, const char *fmt, ...) {
  char line[800];
  va_list ap;
  if (atomic_load(&cx->evicted)) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (!atomic_load(&cx->introduced)) peer_note(cx->r, cx->host, level, "%s", line);
  else if (level == SL__NOTE_ERROR) sl_diag_error("%s", line);
  else if (level == SL__NOTE_WARN) sl_diag_warn("%s", line);
  else sl_diag_info("%s", line);
}

/* LIMITS: the deadline for TLS and the Hello, and the grace before an
 * unintroduced connection may be evicted: long enough for a shipper to
 * introduce itself, so that evictions cannot chase each other round the
 * slots faster than a handshake (each evicted squatter that reconnects
 * would otherwise evict the next, the shipper's turn coming within ms). */
int sl__hello_ms(const sl__receiver *r) { return SL_MIN(r->opt.timeout_ms, HELLO_TIMEOUT_MS); }
static int evict_grace_ms(const sl__receiver *r) { return SL_MIN(EVICT_GRACE_MS, sl__hello_ms(r) / 2); }

/* ---- the listener ------------------------------------------------------------------------ */

static int lock_data_dir(sl__receiver *r) {
  int rc = sl_receiver_lock(r->data_dir, &r->lock_fd);
  if (rc == SL_ELOCKED)
    sl_diag_error("%s/%s: another receiver serves this data directory", r->data_dir, SL_RECEIVER_LOCK_FILE);
  return rc;
}

static int tell_port(int listen_fd, int ready_fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) != 0) return -errno;
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  char line[16];
  int n = snprintf(line, sizeof line, "%d\n", port);
  int rc = sl_write_all(ready_fd, line, (size_t)n);
  close(ready_fd);
  return rc;
}

/* The data directory and DIR/streams: a directory others may write to
 * would let them plant or swap archives and standbys. */
static int check_private_dir(const char *dir) {
  struct stat sb;
  if (stat(dir, &sb) != 0) {
    int rc = -errno;
    sl_diag_error("%s: %s", dir, sl_strerror(rc));
    return rc;
  }
  if (!(sb.st_mode & 022)) return 0;
  sl_diag_error("%s is writable by %s (mode %04o): a receiver's data directory must not be; "
               "chmod go-w %s", dir, (sb.st_mode & 022) == 022 ? "group and others"
               : (sb.st_mode & 020) ? "its group" : "others", (unsigned)(sb.st_mode & 07777), dir);
  return SL_EINVAL;
}

/* TLS context and allow list from the options, or plain TCP. */
static int setup_security(sl__receiver *r) {
  const sl_receiver_options *o = &r->opt;
  bool tls = o->tls_cert || o->tls_key || o->tls_ca;
  if (tls == o->insecure) {
    sl_diag_error(tls ? "receiver: TLS files and insecure (plain TCP) both given: choose one"
                     : "receiver: give a TLS certificate, key and CA, or choose insecure plain TCP");
    return SL_EINVAL;
  }
  if (o->allow_file && !tls) {
    sl_diag_error("receiver: an allow list needs TLS (identities come from certificates)");
    return SL_EINVAL;
  }
  if (!tls) return 0;
  int rc = sl_tls_ctx_new(true, o->tls_cert, o->tls_key, o->tls_ca, &r->tls);
  if (rc) return rc;
  if (!o->allow_file) {
    sl_diag_warn("no allow list (--allow): every certificate issued by %s may write every stream",
                o->tls_ca);
    return 0;
  }
  rc = sl__allow_load(o->allow_file, &r->allow);
  if (rc == 0)
    sl_diag_info("allow list %s: %zu streams", o->allow_file, sl__allow_count(r->allow));
  return rc;
}

/* Join finished connection threads; with all, shut down and join the rest. */
static size_t reap(sl__receiver *r, sl__conn_ctx **list, bool all) {
  size_t live = 0;
  pthread_mutex_lock(&r->mu);
  if (all)
    for (sl__conn_ctx *cx = *list; cx; cx = cx->next)
      if (!cx->done) sl_conn_shutdown(cx->c);
  pthread_mutex_unlock(&r->mu);
  for (sl__conn_ctx **pp = list; *pp;) {
    sl__conn_ctx *cx = *pp;
    pthread_mutex_lock(&r->mu);
    bool done = cx->done;
    pthread_mutex_unlock(&r->mu);
    if (done || all) {
      pthread_join(cx->thread, NULL);
      *pp = cx->next;
      sl_conn_close(cx->c);
      free(cx);
    } else {
      live++;
      pp = &cx->next;
    }
  }
  return live;
}

/* The address part of "HOST:PORT" / "[V6]:PORT". */
static void peer_host(const char *peer, char *host, size_t len) {
  char port[16];
  if (sl_hostport_parse(peer, host, len, port, sizeof port)) snprintf(host, len, "%s", peer);
}

/* Refuse c at accept: plain peers get Error{ERR_BUSY} (retry later); a
 * TLS receiver cannot answer before a handshake, so it just closes. */
static void refuse_busy(sl__receiver *r, sl_conn *c, const char *text) {
  if (!r->tls) {
    sl__conn_ctx tmp = {.r = r, .c = c};
    sl_conn_set_send_timeout(c, 1000);
    sl__conn_send_error(&tmp, SHIPLOG__REPL__ERROR_CODE__ERR_BUSY, false, text);
  }
  sl__rx_metrics_rejected(r, NULL, SHIPLOG__REPL__ERROR_CODE__ERR_BUSY);
  sl_conn_close(c);
}

/* LIMITS: has the peer sent its first bytes (a TLS ClientHello, or a Hello
 * in plain TCP, which a shipper sends at once)? Asked of the socket as
 * well, so that the answer does not wait for the connection's thread. */
static bool spoke(sl__conn_ctx *o) {
  if (atomic_load(&o->spoke)) return true;
  struct pollfd p = {.fd = sl_conn_fd(o->c), .events = POLLIN};
  if (poll(&p, 1, 0) == 1) atomic_store(&o->spoke, true);
  return atomic_load(&o->spoke);
}

/* LIMITS: close, to make room for a newer connection, the oldest one (from
 * host, or from anywhere) that has not sent a byte: it costs nothing to
 * drop, and it cannot be a shipper still introducing itself, so it needs
 * no grace (a grace would leave a newcomer the slots only squatters, which
 * reconnect at once, free); else the oldest that has not been introduced
 * and is past its grace. r->mu held. Returns it (its thread ends soon: its socket is shut
 * down), or NULL when there is none. */
static sl__conn_ctx *evict_oldest(sl__receiver *r, sl__conn_ctx *list, const char *host) {
  sl__conn_ctx *old = NULL, *silent = NULL;
  uint64_t now = sl_mono_ns(), grace = (uint64_t)evict_grace_ms(r) * 1000000u;
  for (sl__conn_ctx *o = list; o; o = o->next) {
    if (o->done || atomic_load(&o->introduced) || atomic_load(&o->evicted) || (host && strcmp(o->host, host) != 0))
      continue;
    if (!spoke(o) && (!silent || o->accepted_ns <= silent->accepted_ns)) silent = o;
    if (now - o->accepted_ns >= grace && (!old || o->accepted_ns <= old->accepted_ns)) old = o;
  }
  if (silent) old = silent;
  if (old) {
    atomic_store(&old->evicted, true);
    sl_conn_shutdown(old->c);
  }
  return old;
}

/* LIMITS: a new connection past max_connections, or past
 * max_connections_per_peer from its address, evicts the oldest one that
 * has not said its Hello (overall, or from that address) instead of being
 * refused, so that connections which never authenticate cannot keep a
 * shipper out; only when all of them are introduced is it refused. Lines
 * about it are within its address's budget (LOG BUDGET). */
static void accept_one(sl__receiver *r, int lfd, sl__conn_ctx **list, atomic_int *stop) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
      sl_diag_warn("accept: %s", strerror(errno));
    return;
  }
  sl_conn *c;
  if (sl_conn_wrap(fd, &c) != 0) {
    close(fd);
    return;
  }
  char host[64], evicted_peer[80] = "";
  peer_host(sl_conn_peer(c), host, sizeof host);
  int live = 0, from_peer = 0, closing = 0, max = r->opt.max_connections, per_peer = r->opt.max_connections_per_peer;
  const char *why = NULL;
  pthread_mutex_lock(&r->mu);
  for (sl__conn_ctx *o = *list; o; o = o->next) {
    if (o->done) continue;
    if (atomic_load(&o->evicted)) {
      closing++;
      continue;
    }
    live++;
    if (strcmp(o->host, host) == 0) from_peer++;
  }
  sl__conn_ctx *ev = NULL;
  if (live + closing >= 2 * max) { /* evicted ones not gone yet: no more threads */
    why = "too many connections";
  } else if (live >= max && !(ev = evict_oldest(r, *list, NULL))) {
    why = "too many connections";
  } else {
    if (ev && strcmp(ev->host, host) == 0) from_peer--;
    if (from_peer >= per_peer) {
      sl__conn_ctx *ev2 = evict_oldest(r, *list, host);
      if (!ev2) why = "too many connections from this address";
      ev = ev2 ? ev2 : ev;
    }
  }
  if (ev) snprintf(evicted_peer, sizeof evicted_peer, "%s", sl_conn_peer(ev->c));
  pthread_mutex_unlock(&r->mu);
  if (why) {
    peer_note(r, host, SL__NOTE_ERROR, "connection from %s refused: %s (%d from %s, %d in all; none that has "
              "not said its hello is older than %d ms)", sl_conn_peer(c), why, from_peer, host, live, evict_grace_ms(r));
    refuse_busy(r, c, why);
    return;
  }
  if (ev)
    peer_note(r, host, SL__NOTE_WARN, "connection from %s closed before its hello, to make room for %s "
              "(--max-connections%s)", evicted_peer, sl_conn_peer(c), live >= max ? "" : "-per-peer");
  sl__conn_ctx *cx = calloc(1, sizeof *cx);
  if (!cx) {
    sl_conn_close(c);
    return;
  }
  snprintf(cx->host, sizeof cx->host, "%s", host);
  cx->r = r;
  cx->stop = stop;
  cx->c = c;
  cx->accepted_ns = sl_mono_ns();
  int rc = pthread_create(&cx->thread, NULL, sl__conn_main, cx);
  if (rc) {
    sl_diag_error("connection from %s: cannot start a thread: %s", sl_conn_peer(c), strerror(rc));
    sl_conn_close(c);
    free(cx);
    return;
  }
  pthread_mutex_lock(&r->mu);
  cx->next = *list;
  *list = cx;
  pthread_mutex_unlock(&r->mu);
}

int sl_receiver_run(const sl_receiver_options *opt, atomic_int *stop) {
  static atomic_int never;
  sl__receiver r = {.opt = *opt, .lock_fd = -1};
  sl__conn_ctx *conns = NULL;
  int lfd = -1, ready_fd = opt->ready_fd;
  int rc;
  bool streams_shared = false;
  if (!stop) stop = &never;
  if (!r.opt.heartbeat_ms) r.opt.heartbeat_ms = 1000;
  if (!r.opt.timeout_ms) r.opt.timeout_ms = 10000;
  if (!r.opt.max_batch_bytes || r.opt.max_batch_bytes > SL_BATCH_RAW_MAX)
    r.opt.max_batch_bytes = SL_BATCH_RAW_MAX;
  if (!r.opt.max_connections) r.opt.max_connections = 256;
  if (!r.opt.max_connections_per_peer) r.opt.max_connections_per_peer = 16;
  pthread_mutex_init(&r.mu, NULL);
  pthread_mutex_init(&r.note_mu, NULL);
  rc = setup_security(&r);
  if (rc) goto fail;
  rc = -ENOMEM;
  r.data_dir = strdup(opt->data_dir);
  if (!r.data_dir || asprintf(&r.streams_dir, "%s/%s", opt->data_dir, SL_STREAMS_DIR) < 0) {
    r.streams_dir = NULL;
    goto fail;
  }
  rc = sl_mkdir_p(r.streams_dir);
  if (rc) {
    sl_diag_error("cannot create %s: %s", r.streams_dir, sl_strerror(rc));
    goto fail;
  }
  if ((rc = check_private_dir(r.data_dir)) || (rc = check_private_dir(r.streams_dir))) goto fail;
  rc = lock_data_dir(&r);
  if (rc) goto fail;
  rc = sl__streams_open_all(&r);
  if (rc) goto fail;
  rc = sl__rx_metrics_start(&r);
  if (rc) goto fail;
  if (opt->on_streams) opt->on_streams(opt->streams_arg, &r);
  streams_shared = opt->on_streams != NULL;
  rc = sl_listen(opt->listen, 128, &lfd);
  if (rc) {
    sl_diag_error("cannot listen on %s: %s", opt->listen, sl_strerror(rc));
    goto fail;
  }
  if (ready_fd >= 0) {
    rc = tell_port(lfd, ready_fd);
    ready_fd = -1;
    if (rc) {
      sl_diag_error("cannot report the port: %s", sl_strerror(rc));
      goto fail;
    }
  }
  sl_diag_info("receiving on %s into %s (%zu streams)", opt->listen, r.data_dir, r.nstreams);
  if (opt->on_ready) opt->on_ready(opt->ready_arg);
  while (!*stop) {
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int n = poll(&p, 1, SL__POLL_MAX_MS);
    int err = errno; /* before reap() */
    reap(&r, &conns, false);
    if (n > 0) accept_one(&r, lfd, &conns, stop);
    else if (n < 0 && err != EINTR) {
      rc = -err;
      sl_diag_error("poll on the listening socket: %s", sl_strerror(rc));
      break;
    }
  }
fail:
  if (ready_fd >= 0) close(ready_fd); /* the waiting side sees EOF, not a hang */
  if (lfd >= 0) close(lfd);
  reap(&r, &conns, true);
  if (streams_shared && opt->before_close) opt->before_close(opt->streams_arg);
  sl__rx_metrics_stop(&r);
  sl__streams_close_all(&r);
  if (r.lock_fd >= 0) close(r.lock_fd);
  sl_tls_ctx_free(r.tls);
  sl__allow_free(r.allow);
  free(r.data_dir);
  free(r.streams_dir);
  pthread_mutex_destroy(&r.mu);
  pthread_mutex_destroy(&r.note_mu);
  return rc;
}
