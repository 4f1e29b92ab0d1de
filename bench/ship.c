/*
 * bench_ship: how fast and how promptly the shipper moves a live primary's
 * transactions to a receiver's archive and hot standby, against the
 * ceilings of the same machine measured in the same run.
 *
 * USAGE
 *   bench_ship [--dir DIR] [--seconds S] [--loads 1000,10000,max]
 *              [--backlog-mb N] [--rounds R] [--pad BYTES] [--io auto|uring|plain]
 *
 *   --dir DIR        scratch directory (default $TMPDIR, else /tmp); a real
 *                    disk: on tmpfs fdatasync is free
 *   --seconds S      duration of each offered load (default 8)
 *   --loads LIST     offered loads in tx/s, "max" = as fast as 16 committers go
 *   --backlog-mb N   size of the pre-written log for the throughput part
 *                    (default 128; 0 skips it)
 *   --rounds R       rounds of ceiling + shipping into the sink (default 3)
 *   --pad BYTES      property bytes per transaction (default 200)
 *   --io BACKEND     the shipper's I/O backend (default auto)
 *   --keep           leave the scratch directory behind
 *
 * SETUP. A receiver (sl_receiver_run) runs in a child process forked before
 * any thread exists, so that this process can open its standby read-only
 * (LMDB allows one open of an environment per process). The primary store,
 * its committers and the shipper (sl_shipper_run in a thread) run here.
 *
 * WHAT IT MEASURES
 *   1. Offered loads. Committers (1 thread at <= 2,000 tx/s, else 16, paced
 *      open-loop at the offered rate) create one node with a PAD-byte
 *      property per transaction and record when each sl_tx_commit returned
 *      (durable on the primary). A probe thread polls, every 100 us, the
 *      receiver archive's durable mark (sl_log_read_durable_mark) and the
 *      standby's applied txid (sl_view_counts on a read-only open) and
 *      records when each txid was first seen. Reported per load: committed
 *      and shipped tx/s, MB/s of log bytes, and the lag from commit return
 *      to durable-on-receiver and to applied-on-standby, p50/p99/max. The
 *      100 us poll is included in every lag (resolution, not cost); a txid
 *      seen before its commit call returned counts as 0.
 *   2. Throughput ceiling. A log of BACKLOG MB is written directly
 *      (sl_log_append, valid CreateNode transactions), then:
 *        - tail read: the shipper's tail reader over it, per backend (MB/s);
 *        - ceilings on the same bytes: LZ4 block compression in 1 MiB
 *          chunks (what sl_batch_seal does) and a copy through a loopback
 *          TCP socket between two threads (MB/s), each alone: the
 *          ceiling is the slower of the two; and "both at once": one
 *          thread compressing the chunks while another sends them,
 *          compressed, through loopback to a reading thread (the
 *          target's work, ideally overlapped, competing for the cores as
 *          the shipper must);
 *        - shipping it into a sink receiver (the shipper's own speed): a
 *          shipper from txid 1 until the sink holds it all, MB/s and its
 *          ratio to the smaller ceiling of the same round (target >= 90%);
 *          R rounds of ceilings + shipping back to back, then the median
 *          ratio and the best shipping against the best ceiling (noise on
 *          a shared machine slows either at times; both get the same
 *          treatment). Each round also prints the CPU seconds this process
 *          spent shipping (shipper threads and the sink) beside those of
 *          lz4 alone: when they are close and the ratio is low, the
 *          shipper waited for a core, not for work of its own;
 *        - shipping it to the real receiver (archive, fdatasync, apply)
 *          until durable there, then until applied on its standby.
 *   Targets printed beside the figures: applied p99 <= 2 ms at 1k tx/s;
 *   shipping >= 90% of the ceiling. Nothing asserts on times: shared
 *   machines vary 30-60% between runs; compare figures of one run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "io.h"
#include "log.h"
#include "receiver.h"
#include "shipper.h"
#include "sl_base.h"
#include "store.h"
#include "tail.h"
#include "transaction.pb-c.h"

#define MAX_TXIDS (8u << 20)
#define POLL_NS 100000
#define MAX_LOADS 8

static struct {
  const char *dir;
  double seconds;
  double loads[MAX_LOADS]; /* 0: max */
  int nloads;
  uint64_t backlog_mb;
  size_t pad;
  sl_io_backend io;
  int rounds;
  bool keep;
} cfg = {.seconds = 8, .backlog_mb = 128, .pad = 200, .rounds = 3};

static char rx_addr[64];
static pid_t rx_pid;

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_ship: %s: %s\n", what, sl_strerror(rc));
  if (rx_pid > 0) kill(rx_pid, SIGTERM);
  exit(1);
}

static void path_cat(char *buf, size_t len, const char *a, const char *b) {
  if (snprintf(buf, len, "%s/%s", a, b) >= (int)len) die("path too long", -ENAMETOOLONG);
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static void sleep_until(uint64_t mono_ns) {
  struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000u), .tv_nsec = (long)(mono_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Text of n bytes from a small vocabulary: compresses like real property
 * values (about 2-3x with LZ4), not like zeros or noise. */
static void fill_text(char *p, size_t n, uint64_t *seed) {
  static const char *const words[] = {"alpha ", "graph ", "node ", "edge ", "label ", "ship ",
                                      "log ", "durable ", "standby ", "replica ", "txid ", "42 ",
                                      "Berlin ", "Lisbon ", "2026-11-25 ", "neo4j "};
  size_t off = 0;
  while (off < n) {
    const char *w = words[rnd(seed) % SL_ARRAY_LEN(words)];
    size_t l = SL_MIN(strlen(w), n - off);
    memcpy(p + off, w, l);
    off += l;
  }
}

/* ---- the receiver, in a child process -------------------------------------------- */

static atomic_int rx_stop;
static void on_term(int sig) {
  (void)sig;
  rx_stop = 1;
}

static void start_receiver(const char *data) {
  int p[2];
  if (pipe(p)) die("pipe", -errno);
  rx_pid = fork();
  if (rx_pid < 0) die("fork", -errno);
  if (rx_pid == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sl_receiver_options o = {.listen = "127.0.0.1:0", .data_dir = data, .ready_fd = p[1], .insecure = true};
    _exit(sl_receiver_run(&o, &rx_stop) ? 1 : 0);
  }
  close(p[1]);
  char buf[16] = {0};
  size_t n = 0;
  while (n < sizeof buf - 1 && !memchr(buf, '\n', n)) {
    ssize_t k = read(p[0], buf + n, sizeof buf - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
  }
  close(p[0]);
  if (atoi(buf) <= 0) die("the receiver did not start", SL_EINVAL);
  snprintf(rx_addr, sizeof rx_addr, "127.0.0.1:%d", atoi(buf));
}

static void stop_receiver(void) {
  kill(rx_pid, SIGTERM);
  int st;
  waitpid(rx_pid, &st, 0);
  rx_pid = 0;
}

/* ---- a sink receiver, in a thread --------------------------------------------------
 * Speaks the protocol but keeps nothing: no decompression, no disk, no
 * standby. It acknowledges every batch as durable on arrival and records
 * when each txid arrived, isolating the shipper (and loopback) from the
 * receiver's fsync and apply. */

typedef struct sinkrx {
  pthread_t t;
  int lfd;
  char addr[64];
  atomic_int stop;
  uint64_t *arrived_ns; /* by txid */
  _Atomic uint64_t last;
} sinkrx;

static void sink_session(sinkrx *k, sl_conn *c) {
  Shiplog__Repl__Message *m;
  if (sl_conn_recv(c, 5000, SL_MSG_MAX, &m)) return;
  sl_msg_free(m);
  Shiplog__Repl__Message out = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__Welcome w = SHIPLOG__REPL__WELCOME__INIT;
  w.protocol_version = SL_PROTOCOL_VERSION;
  w.durable_txid = atomic_load(&k->last);
  out.body_case = SHIPLOG__REPL__MESSAGE__BODY_WELCOME;
  out.welcome = &w;
  if (sl_conn_send(c, &out)) return;
  while (!atomic_load(&k->stop)) {
    int rc = sl_conn_recv(c, 100, SL_MSG_MAX, &m);
    if (rc == -ETIMEDOUT) continue;
    if (rc) return;
    uint64_t now = sl_mono_ns();
    Shiplog__Repl__Ack a = SHIPLOG__REPL__ACK__INIT;
    Shiplog__Repl__Heartbeat hb = SHIPLOG__REPL__HEARTBEAT__INIT;
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BATCH) {
      for (uint64_t t = m->batch->first_txid; t <= m->batch->last_txid && t < MAX_TXIDS; t++)
        k->arrived_ns[t] = now;
      atomic_store(&k->last, m->batch->last_txid);
      a.durable_txid = m->batch->last_txid;
      out.body_case = SHIPLOG__REPL__MESSAGE__BODY_ACK;
      out.ack = &a;
    } else {
      hb.has_durable_txid = true;
      hb.durable_txid = atomic_load(&k->last);
      out.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
      out.heartbeat = &hb;
    }
    sl_msg_free(m);
    if (sl_conn_send(c, &out)) return;
  }
}

static void *sink_rx_main(void *arg) {
  sinkrx *k = arg;
  pthread_setname_np(pthread_self(), "sink");
  while (!atomic_load(&k->stop)) {
    struct pollfd pf = {.fd = k->lfd, .events = POLLIN};
    if (poll(&pf, 1, 50) <= 0) continue;
    int fd = accept4(k->lfd, NULL, NULL, SOCK_CLOEXEC);
    sl_conn *c;
    if (fd < 0 || sl_conn_wrap(fd, &c)) continue;
    sink_session(k, c);
    sl_conn_close(c);
  }
  return NULL;
}

static void sink_rx_start(sinkrx *k) {
  int rc = sl_listen("127.0.0.1:0", 4, &k->lfd);
  if (rc) die("sl_listen", rc);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  getsockname(k->lfd, (struct sockaddr *)&sa, &sl);
  snprintf(k->addr, sizeof k->addr, "127.0.0.1:%d", ntohs(sa.sin_port));
  if (!(k->arrived_ns = calloc(MAX_TXIDS, sizeof *k->arrived_ns))) die("calloc", -ENOMEM);
  if (pthread_create(&k->t, NULL, sink_rx_main, k)) die("pthread_create", -EAGAIN);
}

static void sink_rx_stop(sinkrx *k) {
  atomic_store(&k->stop, 1);
  pthread_join(k->t, NULL);
  close(k->lfd);
  free(k->arrived_ns);
}

/* ---- the shipper, in a thread ---------------------------------------------------- */

typedef struct ship_run {
  pthread_t t;
  sl_shipper_options o;
  atomic_int stop;
  int rc;
} ship_run;

static void *ship_main(void *arg) {
  ship_run *s = arg;
  pthread_setname_np(pthread_self(), "shipper");
  s->rc = sl_shipper_run(&s->o, &s->stop);
  return NULL;
}

static void ship_start(ship_run *s, const char *to, const char *store, const char *stream,
                       bool until_caught_up) {
  memset(s, 0, sizeof *s);
  s->o = (sl_shipper_options){.store_dir = store, .to = to, .stream = stream, .insecure = true,
                              .backend = cfg.io, .exit_when_caught_up = until_caught_up};
  if (pthread_create(&s->t, NULL, ship_main, s)) die("pthread_create", -EAGAIN);
}

static int ship_join(ship_run *s) {
  s->stop = 1;
  pthread_join(s->t, NULL);
  return s->rc;
}

/* ---- probe: when did each txid become durable / applied on the receiver ----------- */

typedef struct probe {
  pthread_t t;
  atomic_int stop;
  char archive[4096], standby[4096];
  uint64_t *durable_ns, *applied_ns; /* by txid */
  _Atomic uint64_t durable, applied;
} probe;

static void *probe_main(void *arg) {
  probe *p = arg;
  pthread_setname_np(pthread_self(), "probe");
  sl_store *sb = NULL;
  uint64_t d = 0, a = 0;
  while (!atomic_load(&p->stop)) {
    uint64_t nd;
    if (sl_log_read_durable_mark(p->archive, &nd) == 0 && nd > d) {
      uint64_t now = sl_mono_ns();
      for (uint64_t t = d + 1; t <= nd && t < MAX_TXIDS; t++) p->durable_ns[t] = now;
      d = nd;
      atomic_store(&p->durable, d);
    }
    if (!sb && access(p->standby, F_OK) == 0 && sl_store_open(p->standby, SL_OPEN_RDONLY, &sb) != 0)
      sb = NULL;
    sl_view *v;
    if (sb && sl_view_begin(sb, &v) == 0) {
      sl_counts c;
      if (sl_view_counts(v, &c) == 0 && c.applied_txid > a) {
        uint64_t now = sl_mono_ns();
        for (uint64_t t = a + 1; t <= c.applied_txid && t < MAX_TXIDS; t++) p->applied_ns[t] = now;
        a = c.applied_txid;
        atomic_store(&p->applied, a);
      }
      sl_view_end(v);
    }
    struct timespec ts = {0, POLL_NS};
    nanosleep(&ts, NULL);
  }
  if (sb) sl_store_close(sb);
  return NULL;
}

static void probe_start(probe *p, const char *data, const char *stream) {
  char sub[256];
  snprintf(sub, sizeof sub, "streams/%s/archive", stream);
  path_cat(p->archive, sizeof p->archive, data, sub);
  snprintf(sub, sizeof sub, "streams/%s/standby", stream);
  path_cat(p->standby, sizeof p->standby, data, sub);
  p->durable_ns = calloc(MAX_TXIDS, sizeof *p->durable_ns);
  p->applied_ns = calloc(MAX_TXIDS, sizeof *p->applied_ns);
  if (!p->durable_ns || !p->applied_ns) die("calloc", -ENOMEM);
  if (pthread_create(&p->t, NULL, probe_main, p)) die("pthread_create", -EAGAIN);
}

static void probe_stop(probe *p) {
  atomic_store(&p->stop, 1);
  pthread_join(p->t, NULL);
}

/* Wait until pos reaches txid, at most limit_s. */
static bool wait_for(_Atomic uint64_t *pos, uint64_t txid, double limit_s) {
  uint64_t until = sl_mono_ns() + (uint64_t)(limit_s * 1e9);
  while (atomic_load(pos) < txid) {
    if (sl_mono_ns() > until) return false;
    usleep(1000);
  }
  return true;
}

/* ---- lags ---------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct lagstat {
  double p50_ms, p99_ms, max_ms;
  uint64_t n;
} lagstat;

static lagstat lags(const uint64_t *commit_ns, const uint64_t *seen_ns, uint64_t last) {
  uint64_t *v = malloc((last + 1) * sizeof *v);
  uint64_t n = 0;
  for (uint64_t t = 1; t <= last && t < MAX_TXIDS; t++) {
    if (!commit_ns[t] || !seen_ns[t]) continue;
    v[n++] = seen_ns[t] > commit_ns[t] ? seen_ns[t] - commit_ns[t] : 0;
  }
  lagstat s = {.n = n};
  if (n) {
    qsort(v, n, sizeof *v, cmp_u64);
    s.p50_ms = (double)v[n / 2] / 1e6;
    s.p99_ms = (double)v[(n * 99) / 100] / 1e6;
    s.max_ms = (double)v[n - 1] / 1e6;
  }
  free(v);
  return s;
}

/* ---- offered loads -------------------------------------------------------------------- */

typedef struct load {
  sl_store *st;
  double rate;           /* 0: max */
  uint64_t t0, until;
  atomic_uint_fast64_t slot;
  uint64_t *commit_ns;   /* by txid */
  _Atomic uint64_t last_txid, failures;
} load;

static void *committer_main(void *arg) {
  load *l = arg;
  uint64_t seed = sl_mono_ns() | 1;
  char *text = malloc(cfg.pad + 1);
  const char *labels[] = {"Item"};
  for (;;) {
    uint64_t k = atomic_fetch_add(&l->slot, 1);
    if (l->rate > 0) {
      uint64_t due = l->t0 + (uint64_t)((double)k * 1e9 / l->rate);
      if (due >= l->until) break;
      if (due > sl_mono_ns()) sleep_until(due);
    } else if (sl_mono_ns() >= l->until) {
      break;
    }
    fill_text(text, cfg.pad, &seed);
    sl_prop p = {.key = "text", .value = {.kind = SL_STRING, .len = cfg.pad, .u.s = text}};
    sl_tx *tx;
    uint64_t txid = 0;
    int rc = sl_tx_begin(l->st, &tx);
    if (rc == 0) rc = sl_tx_create_node(tx, SL_ID_NEW, labels, 1, &p, 1, NULL);
    if (rc == 0) rc = sl_tx_commit(tx, &txid);
    else sl_tx_abort(tx);
    uint64_t now = sl_mono_ns();
    if (rc) {
      atomic_fetch_add(&l->failures, 1);
      continue;
    }
    if (txid < MAX_TXIDS) l->commit_ns[txid] = now;
    uint64_t prev = atomic_load(&l->last_txid);
    while (txid > prev && !atomic_compare_exchange_weak(&l->last_txid, &prev, txid)) {
    }
  }
  free(text);
  return NULL;
}

static void run_load(const char *data, double rate, bool to_sink) {
  char name[32], store[4096];
  if (rate > 0) snprintf(name, sizeof name, "load-%.0f%s", rate, to_sink ? "-sink" : "");
  else snprintf(name, sizeof name, "load-max%s", to_sink ? "-sink" : "");
  path_cat(store, sizeof store, cfg.dir, name);
  sl_remove_tree(store);
  int rc = sl_store_create(store, &(sl_store_options){0});
  if (rc) die("sl_store_create", rc);
  load l = {.rate = rate};
  if ((rc = sl_store_open(store, 0, &l.st))) die("sl_store_open", rc);
  l.commit_ns = calloc(MAX_TXIDS, sizeof *l.commit_ns);

  probe p = {0};
  sinkrx k = {0};
  if (to_sink) sink_rx_start(&k);
  else probe_start(&p, data, name);
  ship_run s;
  ship_start(&s, to_sink ? k.addr : rx_addr, store, name, false);

  int writers = rate > 0 && rate <= 2000 ? 1 : 16;
  pthread_t th[16];
  l.t0 = sl_mono_ns() + 20000000; /* let the shipper connect */
  l.until = l.t0 + (uint64_t)(cfg.seconds * 1e9);
  for (int i = 0; i < writers; i++) pthread_create(&th[i], NULL, committer_main, &l);
  for (int i = 0; i < writers; i++) pthread_join(th[i], NULL);
  uint64_t end = sl_mono_ns();
  uint64_t last = atomic_load(&l.last_txid);
  _Atomic uint64_t *durable = to_sink ? &k.last : &p.durable;
  uint64_t durable_at_end = atomic_load(durable);
  bool durable_ok = wait_for(durable, last, 60);
  uint64_t durable_done = sl_mono_ns();
  bool applied_ok = to_sink || wait_for(&p.applied, last, 120);
  uint64_t applied_done = sl_mono_ns();
  if ((rc = ship_join(&s))) fprintf(stderr, "bench_ship: shipper: %s\n", sl_strerror(rc));
  sl_ship_status ss;
  sl_ship_status_read(store, name, &ss);
  sl_store_close(l.st);

  double dur = secs(end - l.t0);
  lagstat ld = lags(l.commit_ns, to_sink ? k.arrived_ns : p.durable_ns, last);
  lagstat la = {0};
  if (to_sink) {
    sink_rx_stop(&k);
  } else {
    probe_stop(&p);
    la = lags(l.commit_ns, p.applied_ns, last);
  }
  printf("%-14s %9.0f %9.0f %7.2f | %7.3f %7.3f %8.2f | ", name + 5, (double)last / dur,
         (double)durable_at_end / dur, (double)ss.bytes / dur / 1e6, ld.p50_ms, ld.p99_ms, ld.max_ms);
  if (to_sink) printf("%7s %7s %8s | %6.2f %6s%s\n", "-", "-", "-", secs(durable_done - end), "-",
                      durable_ok ? "" : " (incomplete)");
  else printf("%7.3f %7.3f %8.2f | %6.2f %6.2f%s%s\n", la.p50_ms, la.p99_ms, la.max_ms,
              secs(durable_done - end), secs(applied_done - end),
              durable_ok ? "" : " (durable incomplete)", applied_ok ? "" : " (applied incomplete)");
  if (atomic_load(&l.failures))
    printf("           (%" PRIu64 " commits failed)\n", (uint64_t)atomic_load(&l.failures));
  fflush(stdout);
  free(l.commit_ns);
  free(p.durable_ns);
  free(p.applied_ns);
}

/* ---- throughput on a backlog ------------------------------------------------------------ */

/* Write backlog_mb of valid transactions straight into a new store's log
 * (the store's LMDB stays behind: it is derived and would be replayed on
 * the next open for writing). Keeps a copy of the frame bytes in *raw. */
static uint64_t write_backlog(const char *store, sl_buf *raw) {
  sl_remove_tree(store);
  int rc = sl_store_create(store, &(sl_store_options){0});
  if (rc) die("sl_store_create", rc);
  char logdir[4096];
  path_cat(logdir, sizeof logdir, store, "log");
  sl_log *log;
  if ((rc = sl_log_open(logdir, NULL, &log))) die("sl_log_open", rc);
  uint64_t want = cfg.backlog_mb << 20, seed = 7, txid = 0, base = sl_now_us() - 3600000000ull;
  if ((rc = sl_buf_reserve(raw, want + (1u << 20)))) die("reserve", rc);
  char *text = malloc(cfg.pad + 1);
  uint8_t pkt[8192];
  while (raw->len < want) {
    txid++;
    fill_text(text, cfg.pad, &seed);
    text[cfg.pad] = 0;
    Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
    Shiplog__Op op = SHIPLOG__OP__INIT;
    Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
    Shiplog__Property prop = SHIPLOG__PROPERTY__INIT;
    Shiplog__Value val = SHIPLOG__VALUE__INIT;
    Shiplog__Op *ops[] = {&op};
    Shiplog__Property *props[] = {&prop};
    char *labels[] = {"Item"};
    val.kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
    val.string_value = text;
    prop.key = "text";
    prop.value = &val;
    cn.id = txid;
    cn.n_labels = 1;
    cn.labels = labels;
    cn.n_props = 1;
    cn.props = props;
    op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
    op.create_node = &cn;
    t.txid = txid;
    t.commit_time_us = base + txid;
    t.n_ops = 1;
    t.ops = ops;
    size_t n = shiplog__transaction__get_packed_size(&t);
    if (n > sizeof pkt) die("pad too large", SL_ETOOBIG);
    shiplog__transaction__pack(&t, pkt);
    if ((rc = sl_log_append(log, pkt, n))) die("sl_log_append", rc);
    sl_frame_header_encode(pkt, (uint32_t)n, raw->data + raw->len);
    memcpy(raw->data + raw->len + SL_FRAME_HEADER_SIZE, pkt, n);
    raw->len += SL_FRAME_HEADER_SIZE + n;
  }
  if ((rc = sl_log_wait_durable(log, txid))) die("sl_log_wait_durable", rc);
  sl_log_close(log);
  free(text);
  return txid;
}

static double tail_read_mbps(const char *store, sl_io_backend b, const char **name) {
  char logdir[4096];
  path_cat(logdir, sizeof logdir, store, "log");
  uint8_t id[SL_STORE_ID_SIZE];
  sl_seg_info *segs;
  size_t n;
  int rc = sl_log_list(logdir, &segs, &n);
  if (rc || n == 0) die("sl_log_list", rc ? rc : SL_ENOTFOUND);
  int fd = open(segs[0].path, O_RDONLY);
  uint8_t hdr[SL_SEG_HEADER_SIZE];
  sl_seg_header h;
  if (fd < 0 || sl_pread_full(fd, hdr, sizeof hdr, 0) != sizeof hdr || sl_seg_header_decode(hdr, &h))
    die("segment header", SL_ECORRUPT);
  close(fd);
  free(segs);
  memcpy(id, h.store_id, sizeof id);
  sl__io *io;
  sl__tail *t;
  if ((rc = sl__io_open(b, &io))) return -1;
  *name = sl__io_name(io);
  if ((rc = sl__tail_open(logdir, id, io, &t)) || (rc = sl__tail_seek(t, 1))) die("tail", rc);
  sl_buf buf = {0};
  uint64_t bytes = 0, t0 = sl_mono_ns();
  for (;;) {
    sl__tail_run run;
    buf.len = 0;
    if ((rc = sl__tail_read(t, &buf, 1u << 20, &run))) die("sl__tail_read", rc);
    if (!run.bytes) break;
    bytes += run.bytes;
  }
  double mbps = (double)bytes / secs(sl_mono_ns() - t0) / 1e6;
  sl_buf_free(&buf);
  sl__tail_close(t);
  sl__io_close(io);
  return mbps;
}

static uint64_t cpu_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* MB/s of LZ4 over raw; *cpu_s: the CPU seconds it took. */
static double lz4_mbps(const sl_buf *raw, double *cpu_s) {
  int bound = LZ4_compressBound(1 << 20);
  char *out = malloc((size_t)bound);
  uint64_t in = 0, outb = 0, t0 = sl_mono_ns(), c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
  for (size_t off = 0; off < raw->len; off += 1u << 20) {
    int n = (int)SL_MIN((size_t)1 << 20, raw->len - off);
    outb += (uint64_t)LZ4_compress_default((const char *)raw->data + off, out, n, bound);
    in += (uint64_t)n;
  }
  double mbps = (double)in / secs(sl_mono_ns() - t0) / 1e6;
  *cpu_s = secs(cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0);
  static bool said;
  if (!said) printf("  lz4 ratio %.2f\n", (double)in / (double)outb);
  said = true;
  free(out);
  return mbps;
}

typedef struct sink {
  int fd;
  uint64_t got;
} sink;

static void *sink_main(void *arg) {
  sink *s = arg;
  static uint8_t buf[1 << 20];
  ssize_t n;
  while ((n = read(s->fd, buf, sizeof buf)) > 0) s->got += (uint64_t)n;
  return NULL;
}

/* A loopback TCP connection whose far end a sink thread reads. */
typedef struct loopconn {
  int lfd;
  sl_conn *c;
  sink s;
  pthread_t th;
} loopconn;

static void loop_open(loopconn *l) {
  int rc = sl_listen("127.0.0.1:0", 1, &l->lfd);
  if (rc) die("sl_listen", rc);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  getsockname(l->lfd, (struct sockaddr *)&sa, &sl);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
  if ((rc = sl_conn_connect(addr, 2000, &l->c))) die("connect", rc);
  l->s = (sink){.fd = accept(l->lfd, NULL, NULL)};
  pthread_create(&l->th, NULL, sink_main, &l->s);
}

/* Shut the sending side and wait for the sink to have read everything. */
static void loop_close(loopconn *l) {
  sl_conn_shutdown(l->c);
  pthread_join(l->th, NULL);
  sl_conn_close(l->c);
  close(l->s.fd);
  close(l->lfd);
}

static double loopback_mbps(const sl_buf *raw) {
  loopconn l;
  loop_open(&l);
  uint64_t t0 = sl_mono_ns();
  for (size_t off = 0; off < raw->len; off += 1u << 20) {
    int rc = sl_write_all(sl_conn_fd(l.c), raw->data + off, SL_MIN((size_t)1 << 20, raw->len - off));
    if (rc) die("send", rc);
  }
  loop_close(&l);
  return (double)l.s.got / secs(sl_mono_ns() - t0) / 1e6;
}

/* Both steps of the ceiling at once, as an ideal shipper would do them:
 * this thread compresses 1 MiB chunks into a ring of 4 buffers while a
 * sender thread writes each compressed chunk to a loopback socket that the
 * sink reads. No framing, CRC, protocol or acknowledgement: only the
 * target's work, overlapped, competing for the same cores as the shipper. */
#define PIPE_RING 4
typedef struct pipeline {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t made, sent, chunks;
  char *buf[PIPE_RING];
  int len[PIPE_RING];
  int fd;
} pipeline;

static void *pipe_sender(void *arg) {
  pipeline *p = arg;
  for (size_t k = 0; k < p->chunks; k++) {
    pthread_mutex_lock(&p->mu);
    while (p->made <= k) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    int rc = sl_write_all(p->fd, p->buf[k % PIPE_RING], (size_t)p->len[k % PIPE_RING]);
    if (rc) die("send", rc);
    pthread_mutex_lock(&p->mu);
    p->sent++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

static double pipelined_mbps(const sl_buf *raw) {
  int bound = LZ4_compressBound(1 << 20);
  pipeline p = {.chunks = (raw->len + (1u << 20) - 1) >> 20};
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  for (int i = 0; i < PIPE_RING; i++)
    if (!(p.buf[i] = malloc((size_t)bound))) die("malloc", -ENOMEM);
  loopconn l;
  loop_open(&l);
  p.fd = sl_conn_fd(l.c);
  pthread_t th;
  uint64_t t0 = sl_mono_ns();
  pthread_create(&th, NULL, pipe_sender, &p);
  for (size_t k = 0; k < p.chunks; k++) {
    pthread_mutex_lock(&p.mu);
    while (p.made - p.sent >= PIPE_RING) pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    size_t off = k << 20;
    int n = LZ4_compress_default((const char *)raw->data + off, p.buf[k % PIPE_RING],
                                 (int)SL_MIN((size_t)1 << 20, raw->len - off), bound);
    pthread_mutex_lock(&p.mu);
    p.len[k % PIPE_RING] = n;
    p.made++;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
  }
  pthread_join(th, NULL);
  loop_close(&l);
  double mbps = (double)raw->len / secs(sl_mono_ns() - t0) / 1e6;
  for (int i = 0; i < PIPE_RING; i++) free(p.buf[i]);
  pthread_cond_destroy(&p.cv);
  pthread_mutex_destroy(&p.mu);
  return mbps;
}

static void run_backlog(const char *data) {
  char store[4096];
  path_cat(store, sizeof store, cfg.dir, "backlog");
  sl_buf raw = {0};
  uint64_t t0 = sl_mono_ns();
  uint64_t last = write_backlog(store, &raw);
  printf("\nthroughput: backlog of %" PRIu64 " transactions, %.1f MB of frames (written in %.1f s)\n",
         last, (double)raw.len / 1e6, secs(sl_mono_ns() - t0));
  const char *name;
  double plain = tail_read_mbps(store, SL_IO_PLAIN, &name);
  printf("  tail read (plain):    %8.0f MB/s\n", plain);
  double ring = tail_read_mbps(store, SL_IO_URING, &name);
  if (ring >= 0) printf("  tail read (io_uring): %8.0f MB/s\n", ring);
  /* Rounds of ceilings then shipper, back to back: other jobs on a shared
   * machine slow either one at times, so each round's ratios are printed,
   * then their median, and the best shipping against the best ceiling. */
  double best_ceiling = 0, best_both = 0, best_sink = 0, ratio[64], ratio_both[64];
  ship_run s;
  for (int r = 1; r <= cfg.rounds; r++) {
    double lz4_cpu;
    double lz4 = lz4_mbps(&raw, &lz4_cpu);
    double loop = loopback_mbps(&raw);
    double ceiling = SL_MIN(lz4, loop);
    double both = pipelined_mbps(&raw);
    printf("  round %d: ceiling: lz4 %.0f MB/s, loopback TCP %.0f MB/s -> %.0f MB/s (serially in one "
           "thread: %.0f MB/s); both at once: %.0f MB/s\n", r, lz4, loop, ceiling,
           1.0 / (1.0 / lz4 + 1.0 / loop), both);

    /* The shipper alone: into the sink (no decompression, fsync or apply). */
    sinkrx k = {0};
    sink_rx_start(&k);
    t0 = sl_mono_ns();
    uint64_t c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    ship_start(&s, k.addr, store, "backlog-sink", true);
    wait_for(&k.last, last, 120);
    uint64_t sunk = sl_mono_ns(); /* not the shipper's exit: that waits a settle time */
    double ship_cpu = secs(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0);
    pthread_join(s.t, NULL);
    if (s.rc) fprintf(stderr, "bench_ship: shipper: %s\n", sl_strerror(s.rc));
    sink_rx_stop(&k);
    double sink_mbps = (double)raw.len / secs(sunk - t0) / 1e6;
    printf("  round %d: shipped into a sink receiver: %.2f s, %.0f MB/s = %.0f%% of the ceiling, %.0f%% of "
           "both at once; CPU %.2f s (lz4 alone %.2f s)\n", r, secs(sunk - t0), sink_mbps,
           100.0 * sink_mbps / ceiling, 100.0 * sink_mbps / both, ship_cpu, lz4_cpu);
    best_ceiling = SL_MAX(best_ceiling, ceiling);
    best_both = SL_MAX(best_both, both);
    best_sink = SL_MAX(best_sink, sink_mbps);
    ratio[r - 1] = sink_mbps / ceiling;
    ratio_both[r - 1] = sink_mbps / both;
  }
  qsort(ratio, (size_t)cfg.rounds, sizeof *ratio, cmp_double);
  qsort(ratio_both, (size_t)cfg.rounds, sizeof *ratio_both, cmp_double);
  int mid = (cfg.rounds - 1) / 2, end = cfg.rounds - 1;
  printf("  shipping / ceiling over %d rounds: median %.0f%% (%.0f-%.0f%%); best shipping %.0f MB/s = "
         "%.0f%% of the best ceiling %.0f MB/s (target >= 90%%)\n", cfg.rounds, 100.0 * ratio[mid],
         100.0 * ratio[0], 100.0 * ratio[end], best_sink, 100.0 * best_sink / best_ceiling, best_ceiling);
  printf("  shipping / both at once:        median %.0f%% (%.0f-%.0f%%); best = %.0f%% of the best %.0f MB/s "
         "(target >= 90%%)\n", 100.0 * ratio_both[mid], 100.0 * ratio_both[0], 100.0 * ratio_both[end],
         100.0 * best_sink / best_both, best_both);

  /* The system: the real receiver archives (fsync) and applies. */
  probe p = {0};
  probe_start(&p, data, "backlog");
  t0 = sl_mono_ns();
  ship_start(&s, rx_addr, store, "backlog", true);
  wait_for(&p.durable, last, 120);
  uint64_t shipped = sl_mono_ns();
  pthread_join(s.t, NULL);
  if (s.rc) fprintf(stderr, "bench_ship: shipper: %s\n", sl_strerror(s.rc));
  bool applied_ok = wait_for(&p.applied, last, 120);
  uint64_t applied = sl_mono_ns();
  probe_stop(&p);
  double mbps = (double)raw.len / secs(shipped - t0) / 1e6;
  printf("  shipped to the receiver, durable: %.2f s, %.0f MB/s, %.0f tx/s\n", secs(shipped - t0),
         mbps, (double)last / secs(shipped - t0));
  printf("  applied on the standby after %.2f s (%.0f tx/s)%s\n", secs(applied - t0),
         (double)last / secs(applied - t0), applied_ok ? "" : " (incomplete)");
  free(p.durable_ns);
  free(p.applied_ns);
  sl_buf_free(&raw);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: bench_ship [--dir DIR] [--seconds S] [--loads 1000,10000,max] "
                  "[--backlog-mb N] [--rounds R] [--pad BYTES] [--io auto|uring|plain] [--keep]\n");
  exit(2);
}

static void parse_loads(const char *text) {
  cfg.nloads = 0;
  char *copy = strdup(text), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok && cfg.nloads < MAX_LOADS; tok = strtok_r(NULL, ",", &save))
    cfg.loads[cfg.nloads++] = strcmp(tok, "max") == 0 ? 0 : atof(tok);
  free(copy);
}

int main(int argc, char **argv) {
  cfg.dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  parse_loads("1000,10000,max");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--dir") && v) cfg.dir = argv[++i];
    else if (!strcmp(a, "--seconds") && v) cfg.seconds = atof(argv[++i]);
    else if (!strcmp(a, "--loads") && v) parse_loads(argv[++i]);
    else if (!strcmp(a, "--backlog-mb") && v) cfg.backlog_mb = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--keep")) cfg.keep = true;
    else if (!strcmp(a, "--rounds") && v) cfg.rounds = atoi(argv[++i]);
    else if (!strcmp(a, "--pad") && v) cfg.pad = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--io") && v) {
      i++;
      cfg.io = !strcmp(v, "uring") ? SL_IO_URING : !strcmp(v, "plain") ? SL_IO_PLAIN : SL_IO_AUTO;
    } else usage();
  }
  if (cfg.seconds <= 0 || cfg.pad < 1 || cfg.pad > 4000 || cfg.rounds < 1 || cfg.rounds > 64) usage();
  sl_set_progname("bench_ship");
  signal(SIGPIPE, SIG_IGN);

  char root[4096], data[4096];
  snprintf(root, sizeof root, "%s/bench_ship.%d", cfg.dir, (int)getpid());
  cfg.dir = root;
  path_cat(data, sizeof data, root, "rx");
  int rc = sl_mkdir_p(root);
  if (rc) die(root, rc);
  start_receiver(data); /* before any thread exists: see SETUP */

  printf("bench_ship: %s, %.1f s per load, %zu-byte property per transaction, io %s\n", root,
         cfg.seconds, cfg.pad, cfg.io == SL_IO_URING ? "uring" : cfg.io == SL_IO_PLAIN ? "plain" : "auto");
  printf("target: commit -> applied-on-standby p99 <= 2 ms at 1k tx/s\n\n");
  printf("%-14s %9s %9s %7s | %-24s | %-24s | %-13s\n", "", "", "", "", "commit->durable on rx ms",
         "commit->applied ms", "catch-up s");
  printf("%-14s %9s %9s %7s | %7s %7s %8s | %7s %7s %8s | %6s %6s\n", "load tx/s", "commit/s",
         "ship/s", "MB/s", "p50", "p99", "max", "p50", "p99", "max", "dur", "appl");
  for (int i = 0; i < cfg.nloads; i++) run_load(data, cfg.loads[i], false);
  /* The shipper's own share of the lag: the lowest load again, into the sink. */
  if (cfg.nloads) run_load(data, cfg.loads[0], true);
  if (cfg.backlog_mb) run_backlog(data);
  stop_receiver();
  if (!cfg.keep) sl_remove_tree(root);
  return 0;
}
