/*
 * bench_peer, the shiplog side (bench/peer.h): a primary store opened for
 * writing in this process, committed to by the driver's client threads
 * through the embedded API (sl_tx_begin -> sl_mutation_apply ->
 * sl_tx_commit, durable on return), and a shipper thread (sl_shipper_run,
 * the code of `shiplog ship`) streaming its log to a `shiplog receive`
 * process that the caller started. The standby is that receiver's
 * DATA/streams/STREAM/standby, opened read-only here by the probe: a marker
 * is a node with label "Marker" and an id from PEER_MARKER_BASE up.
 *
 * Bytes: log_bytes is what the shipper read from the log (raw frames,
 * STORE/ship/STREAM.status "bytes"); wire_bytes is what the kernel says
 * the receiver acknowledged on the shipper's socket (TCP_INFO
 * tcpi_bytes_acked: the lz4-compressed batches and the protocol around
 * them), read from every socket of this process connected to the receiver's
 * port just before the shipper stops.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "interchange.h"
#include "peer.h"
#include "shipper.h"
#include "sl_base.h"
#include "store.h"

struct peer_side {
  sl_store *st;
  const peer_opts *o;
  char standby_dir[4096];
  pthread_mutex_t standby_mu;   /* guards the lazy open of standby */
  sl_store *standby;
  pthread_t ship_thread;
  sl_shipper_options ship;
  atomic_int ship_stop;
  int ship_rc;
  bool shipping;
};

struct peer_client {
  peer_side *s;
  sl_mutation_line ml;
};

static void *ship_main(void *arg) {
  peer_side *s = arg;
  pthread_setname_np(pthread_self(), "shipper");
  s->ship_rc = sl_shipper_run(&s->ship, &s->ship_stop);
  return NULL;
}

static void sl_side_close(peer_side *s) {
  if (s->shipping) {
    s->ship_stop = 1;
    pthread_join(s->ship_thread, NULL);
  }
  if (s->standby) sl_store_close(s->standby);
  if (s->st) sl_store_close(s->st);
  pthread_mutex_destroy(&s->standby_mu);
  free(s);
}

static int sl_side_open(const peer_opts *o, peer_side **out) {
  if (!o->store || !o->receiver || !o->rx_data || !o->stream) {
    sl_diag_error("shiplog side: --store, --receiver, --rx-data and --stream are required");
    return SL_EINVAL;
  }
  peer_side *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->o = o;
  pthread_mutex_init(&s->standby_mu, NULL);
  int rc = 0;
  if (snprintf(s->standby_dir, sizeof s->standby_dir, "%s/streams/%s/standby", o->rx_data, o->stream) >=
      (int)sizeof s->standby_dir) {
    rc = -ENAMETOOLONG;
    goto fail;
  }
  if (access(o->store, F_OK) != 0 && (rc = sl_store_create(o->store, &(sl_store_options){0}))) {
    sl_diag_error("%s: cannot create the store: %s", o->store, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_store_open(o->store, 0, &s->st))) {
    sl_diag_error("%s: cannot open the store: %s", o->store, sl_strerror(rc));
    goto fail;
  }
  s->ship = (sl_shipper_options){.store_dir = o->store, .to = o->receiver, .stream = o->stream,
                                .insecure = true};
  if ((rc = -pthread_create(&s->ship_thread, NULL, ship_main, s))) goto fail;
  s->shipping = true;
  *out = s;
  return 0;
fail:
  sl_side_close(s);
  return rc;
}

static int sl_client_open(peer_side *s, peer_client **out) {
  peer_client *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->s = s;
  *out = c;
  return 0;
}

static void sl_client_close(peer_client *c) {
  sl_mutation_line_free(&c->ml);
  free(c);
}

static int sl_apply(peer_client *c, const char *line, size_t len, size_t *nops, char *why, size_t whylen) {
  sl_tx *tx;
  int rc = sl_tx_begin(c->s->st, &tx);
  if (rc) {
    snprintf(why, whylen, "sl_tx_begin: %s", sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_mutation_apply(tx, line, len, &c->ml))) {
    snprintf(why, whylen, "%s", c->ml.why);
    sl_tx_abort(tx);
    return rc;
  }
  *nops = c->ml.nops;
  if ((rc = sl_tx_commit(tx, NULL))) snprintf(why, whylen, "sl_tx_commit: %s", sl_strerror(rc));
  return rc;
}

static int sl_marker_commit(peer_client *c, uint64_t id) {
  static const char *const label[] = {"Marker"};
  sl_tx *tx;
  int rc = sl_tx_begin(c->s->st, &tx);
  if (rc) return rc;
  if ((rc = sl_tx_create_node(tx, id, label, 1, NULL, 0, NULL))) {
    sl_tx_abort(tx);
    return rc;
  }
  return sl_tx_commit(tx, NULL);
}

/* The standby, opened on first use: the receiver makes it with the
 * stream's first batch. NULL while it does not exist yet. */
static sl_store *standby(peer_side *s) {
  pthread_mutex_lock(&s->standby_mu);
  if (!s->standby && access(s->standby_dir, F_OK) == 0 &&
      sl_store_open(s->standby_dir, SL_OPEN_RDONLY, &s->standby) != 0)
    s->standby = NULL;
  sl_store *sb = s->standby;
  pthread_mutex_unlock(&s->standby_mu);
  return sb;
}

static int sl_marker_seen(peer_client *c, uint64_t id) {
  sl_store *sb = standby(c->s);
  if (!sb) return 0;
  sl_view *v;
  int rc = sl_view_begin(sb, &v);
  if (rc) return rc;
  sl_node n;
  rc = sl_view_node(v, id, &n);
  sl_view_end(v);
  return rc == 0 ? 1 : rc == SL_ENOTFOUND ? 0 : rc;
}

static int counts(sl_store *st, sl_counts *c, uint64_t *markers) {
  sl_view *v;
  int rc = sl_view_begin(st, &v);
  if (rc) return rc;
  rc = sl_view_counts(v, c);
  if (rc == 0 && markers) rc = sl_view_count_label(v, "Marker", markers);
  sl_view_end(v);
  return rc;
}

static int sl_count_nodes(peer_client *c, uint64_t *out) {
  sl_counts n;
  uint64_t markers;
  int rc = counts(c->s->st, &n, &markers);
  if (rc == 0) *out = n.nodes - markers;
  return rc;
}

/* TCP payload bytes the receiver acknowledged on this process's sockets
 * connected to its port. */
static uint64_t wire_bytes(const char *receiver) {
  const char *colon = strrchr(receiver, ':');
  int port = colon ? atoi(colon + 1) : 0;
  uint64_t total = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int fd = atoi(e->d_name);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (e->d_name[0] == '.' || getpeername(fd, (struct sockaddr *)&sa, &sl) != 0) continue;
    int peer_port = sa.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&sa)->sin_port)
                    : sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port) : -1;
    if (peer_port == port && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
      total += ti.tcpi_bytes_acked;
  }
  closedir(d);
  return total;
}

static int sl_settle(peer_side *s, double limit_s, peer_totals *t) {
  sl_counts primary, sb;
  uint64_t markers;
  int rc = counts(s->st, &primary, &markers);
  if (rc) return rc;
  t->nodes = primary.nodes - markers;
  sl_log_stats ls;
  sl_log_get_stats(sl_store_log(s->st), &ls);
  t->syncs = ls.syncs;
  uint64_t start = sl_mono_ns(), until = start + (uint64_t)(limit_s * 1e9);
  for (;;) {
    sl_store *st = standby(s);
    if (primary.applied_txid == 0 || (st && counts(st, &sb, NULL) == 0 && sb.applied_txid >= primary.applied_txid))
      break;
    if (sl_mono_ns() > until) {
      sl_diag_error("%s: the standby did not reach txid %llu within %.0f s", s->standby_dir,
                   (unsigned long long)primary.applied_txid, limit_s);
      return -ETIMEDOUT;
    }
    nanosleep(&(struct timespec){0, 200000}, NULL);
  }
  t->catchup_s = (double)(sl_mono_ns() - start) / 1e9;
  t->wire_bytes = wire_bytes(s->o->receiver);
  s->ship_stop = 1;
  pthread_join(s->ship_thread, NULL);
  s->shipping = false;
  if (s->ship_rc) sl_diag_error("shipper: %s", sl_strerror(s->ship_rc));
  sl_ship_status ss;
  if ((rc = sl_ship_status_read(s->o->store, s->o->stream, &ss)) == 0) t->log_bytes = ss.bytes;
  return s->ship_rc ? s->ship_rc : rc;
}

const peer_ops peer_shiplog_ops = {
    .name = "shiplog",
    .open = sl_side_open,
    .client_open = sl_client_open,
    .apply = sl_apply,
    .marker_commit = sl_marker_commit,
    .marker_seen = sl_marker_seen,
    .count_nodes = sl_count_nodes,
    .client_close = sl_client_close,
    .settle = sl_settle,
    .close = sl_side_close,
};
