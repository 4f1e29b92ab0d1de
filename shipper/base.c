/*
 * base.c: the shipper's BASE state (shipper.c, SESSION STATES;
 * shipper_int.h).
 *
 * BASE SHIPPING (proto/replication.proto). The image is a full dump
 * (store/dump.h) of the store opened read-only -- one LMDB read transaction,
 * so writers go on -- written by a helper thread into a pipe, from which
 * this thread sends it in chunks; the dump header (its first bytes) names
 * the image's txid B. A cascade (a receiver's stream directory) sends its
 * standby. B may be committed in LMDB a moment before it is durable in the
 * log (store.h, COMMIT PATH), so BaseEnd waits until the durable mark
 * reaches B: the receiver never holds a base the primary could lose. The
 * log then follows from the receiver's durable txid + 1, as without a base.
 */
#include "shipper_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dump.h"

typedef struct base_job {
  sl_store *st;
  int fd;                        /* the pipe's write end, closed by the job */
  sl_keyring *kr;
  int rc;
} base_job;

static void *base_main(void *arg) {
  base_job *j = arg;
  sl_dump_options d = {.keyring = j->kr, .name = "the base (a pipe to the shipper)"};
  j->rc = sl_dump_full(j->st, j->fd, &d, NULL);
  close(j->fd);
  j->fd = -1;
  return NULL;
}

/* Read up to len bytes of the pipe, sending heartbeats and reading the
 * receiver's messages while the dump is slow: > 0 bytes, 0 at its end, or
 * a negative code (the state is then moved already, or -errno). */
static long base_read(shipper *s, int fd, uint8_t *buf, size_t len) {
  const uint64_t ms = 1000000u;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, IDLE_WAKE_MS);
    if (n < 0 && errno != EINTR) return -errno;
    if (n > 0) {
      ssize_t got = read(fd, buf, len);
      if (got >= 0) return got;
      if (errno != EINTR && errno != EAGAIN) return -errno;
    }
    if (*s->stop) return -ECANCELED;
    uint64_t now = sl_mono_ns();
    int rc = 0;
    if (now >= s->last_send_ns + (uint64_t)s->heartbeat_ms * ms) rc = sl__ship_send_heartbeat(s);
    if (rc == 0) rc = sl__ship_pump(s, 0);
    if (rc == 0 && s->st == ST_BASE && now >= s->last_recv_ns + (uint64_t)s->timeout_ms * ms)
      rc = sl__ship_transient(s, -ETIMEDOUT, "receiver %s silent for %d ms", s->opt->to, s->timeout_ms);
    if (rc || s->st != ST_BASE) return rc ? rc : -ECANCELED;
  }
}

static int send_base_msg(shipper *s, Shiplog__Repl__Message *m) {
  int rc = sl__ship_send_msg(s, m);
  if (rc == 0 && s->st == ST_BASE) rc = sl__ship_pump(s, 0);
  return rc ? rc : s->st == ST_BASE ? 0 : -ECANCELED;
}

int sl__ship_session_base(shipper *s) {
  const uint64_t t0 = sl_mono_ns();
  char dir[PATH_MAX];
  base_job j = {.fd = -1, .kr = s->opt->keyring};
  pthread_t thread;
  bool started = false;
  int p[2] = {-1, -1};
  uint8_t *buf = NULL;
  uint64_t nsent = 0, txid = 0;
  uint32_t crc = 0;
  size_t chunk = SL_MIN((size_t)BASE_CHUNK, s->recv_limit);
  long got = 0;
  snprintf(dir, sizeof dir, "%s%s", s->opt->store_dir, s->cascade ? "/standby" : "");
  int rc = sl_store_open(dir, SL_OPEN_RDONLY, &j.st);
  if (rc) {
    sl__ship_fatal(s, rc, "%s: cannot open the store to send stream %s its base: %s", dir, s->opt->stream,
                   sl_strerror(rc));
    goto out;
  }
  if (!(buf = malloc(chunk)) || pipe2(p, O_CLOEXEC) != 0) {
    sl__ship_fatal(s, buf ? -errno : -ENOMEM, "cannot start the base of stream %s: %s", s->opt->stream,
                   sl_strerror(buf ? -errno : -ENOMEM));
    goto out;
  }
  j.fd = p[1];
  p[1] = -1;
  if ((rc = sl_thread_start(&thread, base_main, &j))) {
    close(j.fd);
    sl__ship_fatal(s, rc, "cannot start the base's thread: %s", sl_strerror(rc));
    goto out;
  }
  started = true;
  /* The header first: it names the image's txid. */
  size_t have = 0;
  while (have < SL_DUMP_HEADER_SIZE && (got = base_read(s, p[0], buf + have, SL_DUMP_HEADER_SIZE - have)) > 0)
    have += (size_t)got;
  if (have < SL_DUMP_HEADER_SIZE) goto out; /* the dump failed (below) or the session ended */
  sl_dump_header h;
  if ((rc = sl_dump_header_decode(buf, &h))) {
    sl__ship_fatal(s, rc, "the base of stream %s: the dump header does not decode: %s", s->opt->stream,
                   sl_strerror(rc));
    goto out;
  }
  txid = h.last_txid;
  sl_diag_info("sending stream %s its base: %s at txid %llu%s", s->opt->stream, dir, (unsigned long long)txid,
              h.key_id[0] ? " (sealed)" : "");
  Shiplog__Repl__Message m = SHIPLOG__REPL__MESSAGE__INIT;
  Shiplog__Repl__BaseBegin bb = SHIPLOG__REPL__BASE_BEGIN__INIT;
  Shiplog__Repl__BaseChunk bc = SHIPLOG__REPL__BASE_CHUNK__INIT;
  Shiplog__Repl__BaseEnd be = SHIPLOG__REPL__BASE_END__INIT;
  bb.txid = txid;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN;
  m.base_begin = &bb;
  if (send_base_msg(s, &m)) goto out;
  sl__ship_report(s, sl_mono_ns()); /* state sending-base */
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK;
  m.base_chunk = &bc;
  for (;;) {
    while (have < chunk && (got = base_read(s, p[0], buf + have, chunk - have)) > 0) have += (size_t)got;
    if (got < 0) goto out;
    if (have == 0) break;
    bc.offset = nsent;
    bc.data.data = buf;
    bc.data.len = have;
    if (send_base_msg(s, &m)) goto out;
    crc = sl_crc32c(crc, buf, have);
    nsent += have;
    have = 0;
    if (got == 0) break;
  }
  pthread_join(thread, NULL);
  started = false;
  if (j.rc) {
    sl__ship_fatal(s, j.rc, "the base of stream %s: dumping %s failed: %s", s->opt->stream, dir, sl_strerror(j.rc));
    goto out;
  }
  /* Not before B is durable here (see above). */
  while (s->st == ST_BASE && s->committed < txid) {
    if (*s->stop) goto out;
    if ((rc = sl__ship_pump(s, IDLE_WAKE_MS)) || s->st != ST_BASE || (s->mark_dirty && sl__ship_refresh_mark(s)))
      goto out;
  }
  be.size = nsent;
  be.crc32c = crc;
  m.body_case = SHIPLOG__REPL__MESSAGE__BODY_BASE_END;
  m.base_end = &be;
  uint64_t acks = s->acks;
  if (send_base_msg(s, &m)) goto out;
  /* The receiver answers BaseEnd with an Ack once the base is durable
   * there (or with an Error): only then is the stream restorable, so
   * only then may a caught-up shipper exit 0. */
  while (s->st == ST_BASE && s->acks == acks) {
    if (*s->stop) goto out;
    if (sl_mono_ns() >= s->last_recv_ns + (uint64_t)s->timeout_ms * 1000000u) {
      sl__ship_transient(s, -ETIMEDOUT, "receiver %s did not confirm the base of stream %s within %d ms", s->opt->to,
                         s->opt->stream, s->timeout_ms);
      goto out;
    }
    if (sl__ship_pump(s, IDLE_WAKE_MS)) goto out;
  }
  if (s->st != ST_BASE) goto out;
  sl_diag_info("sent stream %s its base at txid %llu: %.1f MiB in %.1f s; the log follows", s->opt->stream,
              (unsigned long long)txid, (double)nsent / (1 << 20), (double)(sl_mono_ns() - t0) / 1e9);
  s->st = ST_STREAMING;
  s->report_dirty = true;
out:
  if (p[0] >= 0) close(p[0]); /* a dump still writing stops (EPIPE) */
  if (started) pthread_join(thread, NULL);
  if (started && s->st == ST_BASE && j.rc)
    sl__ship_fatal(s, j.rc, "the base of stream %s: dumping %s failed: %s", s->opt->stream, dir, sl_strerror(j.rc));
  if (s->st == ST_BASE && *s->stop) {
    sl__ship_disconnect(s);
    s->st = ST_STOPPED;
  } else if (s->st == ST_BASE) {
    sl__ship_transient(s, SL_EEND, "the base of stream %s ended early (%llu bytes sent)", s->opt->stream,
                       (unsigned long long)nsent);
  }
  if (j.st) sl_store_close(j.st);
  free(buf);
  return s->st == ST_FAILED ? s->rc : 0;
}
