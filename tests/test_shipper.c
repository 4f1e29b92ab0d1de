/*
 * shipper: the tail reader against real stores being written (dense txids
 * across segment rotation with tiny segments, never past the durable mark,
 * never a torn tail, start by txid and by time, pruned starts refused), the
 * two I/O backends (waits, sockets, the fallback when io_uring_setup is
 * blocked by seccomp), and whole sessions against a scripted receiver
 * (resume from its durable txid, reconnect after a drop, permanent
 * refusal) and against the real receiver (the standby ends up with every
 * transaction, also through the sealer's ring behind a tiny window). The
 * tail's rolling checksum is checked against the log's on every read.
 *
 * Every case runs once per backend: group "plain", then group "uring".
 * Without io_uring the uring group is not run and the binary exits 77
 * after the plain group passed (a skip, never a pass).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "codec.h"
#include "io.h"
#include "log.h"
#include "receiver.h"
#include "shipper.h"
#include "sl_status.h"
#include "sl_base.h"
#include "store.h"
#include "tail.h"
#include "transaction.pb-c.h"

static sl_io_backend g_backend;

static int use_plain(void **state) {
  (void)state;
  g_backend = SL_IO_PLAIN;
  return 0;
}

static int use_uring(void **state) {
  (void)state;
  g_backend = SL_IO_URING;
  return 0;
}

/* ---- stores ------------------------------------------------------------------------ */

static char *make_store(const char *name, uint64_t seg_size) {
  char *dir = tu_path(tu_tmpdir(name), "store");
  sl_store_options o = {.segment_size = seg_size};
  assert_int_equal(sl_store_create(dir, &o), 0);
  /* Checkpoints prune what no consumer needs: keep every segment. */
  char *logdir = tu_path(dir, "log");
  assert_int_equal(sl_log_consumer_set(logdir, "test-hold", 0), 0);
  free(logdir);
  return dir;
}

/* Commit one transaction creating a node with a payload of pad bytes. */
static uint64_t commit_one(sl_store *st, size_t pad, uint64_t commit_us) {
  static char buf[4096];
  memset(buf, 'x', sizeof buf);
  sl_tx *tx;
  uint64_t txid;
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  if (commit_us) assert_int_equal(sl_tx_set_commit_time(tx, commit_us), 0);
  const char *labels[] = {"Item"};
  sl_prop p = {.key = "pad", .value = {.kind = SL_STRING, .len = SL_MIN(pad, sizeof buf), .u.s = buf}};
  assert_int_equal(sl_tx_create_node(tx, SL_ID_NEW, labels, 1, &p, 1, NULL), 0);
  assert_int_equal(sl_tx_commit(tx, &txid), 0);
  return txid;
}

static void commit_n(const char *dir, int n, size_t pad) {
  sl_store *st;
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  for (int i = 0; i < n; i++) commit_one(st, pad, 0);
  sl_store_close(st);
}

static void store_id_of(const char *dir, uint8_t id[SL_STORE_ID_SIZE]) {
  sl_store *st;
  assert_int_equal(sl_store_open(dir, SL_OPEN_RDONLY, &st), 0);
  memcpy(id, sl_store_id(st), SL_STORE_ID_SIZE);
  sl_store_close(st);
}

typedef struct tailer {
  sl__io *io;
  sl__tail *tail;
  char logdir[4096];
} tailer;

static void tailer_open(tailer *tl, const char *store) {
  uint8_t id[SL_STORE_ID_SIZE];
  store_id_of(store, id);
  snprintf(tl->logdir, sizeof tl->logdir, "%s/log", store);
  assert_int_equal(sl__io_open(g_backend, &tl->io), 0);
  assert_int_equal(sl__tail_open(tl->logdir, id, tl->io, &tl->tail), 0);
}

static void tailer_close(tailer *tl) {
  sl__tail_close(tl->tail);
  sl__io_close(tl->io);
}

/* Check buf holds whole frames with txids first..first+count-1; returns count. */
static uint64_t check_frames(const uint8_t *buf, size_t len, uint64_t first, uint64_t *last_commit) {
  uint64_t n = 0;
  size_t off = 0;
  while (off < len) {
    const uint8_t *payload;
    uint32_t plen;
    size_t flen;
    assert_int_equal(sl_frame_decode(buf + off, len - off, &payload, &plen, &flen), 0);
    uint64_t txid, us, ep;
    assert_int_equal(sl_txn_peek(payload, plen, &txid, &us, &ep), 0);
    assert_int_equal(txid, first + n);
    if (last_commit) *last_commit = us;
    n++;
    off += flen;
  }
  return n;
}

/* Read everything durable from the current position in batches of max.
 * Each run's rolling checksum must be the log's own through its last txid
 * (the tail carries it on from the value set at the start). */
static uint64_t drain(tailer *tl, size_t max) {
  sl_buf b = {0};
  uint64_t total = 0, cs;
  assert_int_equal(sl_log_checksum_at(tl->logdir, sl__tail_next_txid(tl->tail) - 1, &cs), 0);
  sl__tail_set_checksum(tl->tail, cs);
  for (;;) {
    sl__tail_run run;
    b.len = 0;
    uint64_t first = sl__tail_next_txid(tl->tail);
    assert_int_equal(sl__tail_read(tl->tail, &b, max, &run), 0);
    if (run.bytes == 0) break;
    assert_int_equal(run.first_txid, first);
    assert_int_equal(run.bytes, b.len);
    uint64_t commit_us = 0;
    uint64_t n = check_frames(b.data, b.len, first, &commit_us);
    assert_int_equal(run.last_txid, first + n - 1);
    assert_int_equal(run.last_commit_us, commit_us);
    assert_true(run.last_txid <= sl__tail_durable(tl->tail));
    assert_true(b.len <= max || n == 1);
    assert_int_equal(sl_log_checksum_at(tl->logdir, run.last_txid, &cs), 0);
    assert_true(run.checksum == cs);
    total += n;
  }
  sl_buf_free(&b);
  return total;
}

/* ---- tail ----------------------------------------------------------------------------- */

static void shipper_tail_reads_across_rotation(void **state) {
  (void)state;
  char *dir = make_store("tail_rotation", SL_SEG_SIZE_MIN);
  commit_n(dir, 300, 200);
  tailer tl;
  tailer_open(&tl, dir);
  sl_seg_info *segs;
  size_t nsegs;
  assert_int_equal(sl_log_list(tl.logdir, &segs, &nsegs), 0);
  assert_true(nsegs > 10); /* the test is about rotation */
  free(segs);
  assert_int_equal(sl__tail_durable(tl.tail), 300);
  assert_int_equal(sl__tail_seek(tl.tail, 1), 0);
  /* Batches smaller than a segment, larger than a segment, and one frame
   * larger than the batch limit (returned alone). */
  assert_int_equal(drain(&tl, 1000), 300);
  assert_int_equal(sl__tail_next_txid(tl.tail), 301);
  assert_int_equal(sl__tail_seek(tl.tail, 1), 0);
  assert_int_equal(drain(&tl, 64 * 1024), 300);
  assert_int_equal(sl__tail_seek(tl.tail, 1), 0);
  assert_int_equal(drain(&tl, 100), 300);
  tailer_close(&tl);
  free(dir);
}

typedef struct writer_arg {
  const char *dir;
  int n;
  int done;
} writer_arg;

static void *writer_main(void *arg) {
  writer_arg *w = arg;
  sl_store *st;
  if (sl_store_open(w->dir, 0, &st) != 0) return NULL;
  for (int i = 0; i < w->n; i++) {
    commit_one(st, 50 + (size_t)(i % 7) * 60, 0);
    if (i % 50 == 0) usleep(2000);
  }
  sl_store_close(st);
  __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* Tail a store while another thread commits: wakes come from inotify
 * (counted), every frame is durable when returned, txids are dense across
 * many rotations. */
static void shipper_tail_follows_live_writer(void **state) {
  (void)state;
  char *dir = make_store("tail_live", SL_SEG_SIZE_MIN);
  tailer tl;
  tailer_open(&tl, dir);
  assert_int_equal(sl__tail_seek(tl.tail, 1), 0);
  writer_arg w = {.dir = dir, .n = 600};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
  sl_buf b = {0};
  uint64_t got = 0, wakes = 0;
  uint64_t deadline = sl_mono_ns() + 60ull * 1000000000u;
  while (got < (uint64_t)w.n && sl_mono_ns() < deadline) {
    sl__io_waitset ws = {.notify_fd = sl__tail_notify_fd(tl.tail), .sock_fd = -1, .timeout_ms = 1000};
    sl__io_events ev;
    assert_int_equal(sl__io_wait(tl.io, &ws, &ev), 0);
    if (ev.ready & SL__IO_NOTIFY) {
      wakes++;
      sl__tail_notify(tl.tail, ev.notify, ev.notify_len);
    }
    assert_int_equal(sl__tail_refresh(tl.tail), 0);
    uint64_t mark = sl__tail_durable(tl.tail);
    for (;;) {
      sl__tail_run run;
      b.len = 0;
      assert_int_equal(sl__tail_read(tl.tail, &b, 3000, &run), 0);
      if (!run.bytes) break;
      assert_int_equal(run.first_txid, got + 1);
      assert_true(run.last_txid <= mark);
      got += check_frames(b.data, b.len, got + 1, NULL);
    }
  }
  pthread_join(th, NULL);
  assert_int_equal(got, (uint64_t)w.n);
  assert_true(wakes > 0);
  fprintf(stderr, "tail_live (%s): %llu inotify wakes for %d commits\n", sl__io_name(tl.io),
          (unsigned long long)wakes, w.n);
  sl_buf_free(&b);
  tailer_close(&tl);
  free(dir);
}

static void *commit_later_main(void *arg) {
  usleep(50000);
  commit_n(arg, 1, 10);
  return NULL;
}

/* One commit wakes a waiting tail at once (the mark's inotify watch, not a
 * timeout or a segment rotation). */
static void shipper_tail_wakes_on_commit(void **state) {
  (void)state;
  char *dir = make_store("tail_wake", 0);
  commit_n(dir, 1, 10);
  tailer tl;
  tailer_open(&tl, dir);
  assert_int_equal(sl__tail_seek(tl.tail, 2), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, commit_later_main, dir), 0);
  sl__io_waitset ws = {.notify_fd = sl__tail_notify_fd(tl.tail), .sock_fd = -1, .timeout_ms = 1000};
  sl__io_events ev;
  uint64_t durable = 1;
  for (int i = 0; i < 10 && durable < 2; i++) {
    assert_int_equal(sl__io_wait(tl.io, &ws, &ev), 0);
    assert_int_equal(ev.ready, SL__IO_NOTIFY); /* never the 1 s timeout */
    sl__tail_notify(tl.tail, ev.notify, ev.notify_len);
    assert_int_equal(sl__tail_refresh(tl.tail), 0);
    durable = sl__tail_durable(tl.tail);
  }
  pthread_join(th, NULL);
  assert_int_equal(durable, 2);
  assert_int_equal(drain(&tl, 4096), 1);
  tailer_close(&tl);
  free(dir);
}

/* A frame for txid on the end of the newest segment, as the log would write it. */
static void make_frame(sl_buf *out, uint64_t txid, uint64_t commit_us) {
  out->len = 0;
  tu_frame_create(out, txid, commit_us, 1000000 + txid, NULL);
}

/* Rewrite LOGDIR/durable as log.h lays it out (what a group commit does). */
static void forge_mark(const char *logdir, uint64_t txid, uint64_t segno, uint64_t end) {
  uint8_t b[SL_DURABLE_MARK_SIZE] = {0};
  sl_put_le64(b, txid);
  sl_put_le64(b + 8, segno);
  sl_put_le64(b + 16, end);
  sl_put_le32(b + 24, sl_crc32c(0, b, 24));
  char *path = tu_path(logdir, "durable");
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(sl_pwrite_all(fd, b, sizeof b, 0), 0);
  close(fd);
  free(path);
}

static void shipper_tail_never_returns_torn_tail(void **state) {
  (void)state;
  char *dir = make_store("tail_torn", 0);
  commit_n(dir, 5, 100);
  tailer tl;
  tailer_open(&tl, dir);
  sl_seg_info *segs;
  size_t nsegs;
  assert_int_equal(sl_log_list(tl.logdir, &segs, &nsegs), 0);
  sl_seg_info newest = segs[nsegs - 1];
  free(segs);
  sl_buf f = {0}, b = {0};
  sl__tail_run run;
  make_frame(&f, 6, sl_now_us());
  int fd = open(newest.path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);

  /* Half a frame, mark at 5: nothing. */
  assert_int_equal(sl__tail_seek(tl.tail, 6), 0);
  assert_int_equal(sl_write_all(fd, f.data, f.len / 2), 0);
  assert_int_equal(sl__tail_refresh(tl.tail), 0);
  assert_int_equal(sl__tail_read(tl.tail, &b, 1 << 20, &run), 0);
  assert_int_equal(run.bytes, 0);
  assert_int_equal(b.len, 0);

  /* A mark that claims the half frame is damage, never a shipped frame. */
  forge_mark(tl.logdir, 6, newest.segno, newest.size + f.len);
  assert_int_equal(sl__tail_refresh(tl.tail), 0);
  assert_int_equal(sl__tail_read(tl.tail, &b, 1 << 20, &run), SL_ECORRUPT);
  assert_int_equal(b.len, 0);

  /* The rest of the frame, mark back at 5 (not yet synced): still nothing. */
  forge_mark(tl.logdir, 5, newest.segno, newest.size);
  assert_int_equal(sl_write_all(fd, f.data + f.len / 2, f.len - f.len / 2), 0);
  assert_int_equal(sl__tail_seek(tl.tail, 6), 0);
  assert_int_equal(sl__tail_refresh(tl.tail), 0);
  assert_int_equal(sl__tail_read(tl.tail, &b, 1 << 20, &run), 0);
  assert_int_equal(run.bytes, 0);

  /* Synced and published: returned, byte for byte. */
  forge_mark(tl.logdir, 6, newest.segno, newest.size + f.len);
  assert_int_equal(sl__tail_refresh(tl.tail), 0);
  assert_int_equal(sl__tail_read(tl.tail, &b, 1 << 20, &run), 0);
  assert_int_equal(run.first_txid, 6);
  assert_int_equal(run.last_txid, 6);
  assert_int_equal(b.len, f.len);
  assert_memory_equal(b.data, f.data, f.len);
  close(fd);
  sl_buf_free(&f);
  sl_buf_free(&b);
  tailer_close(&tl);
  free(dir);
}

static void shipper_tail_seeks_by_txid(void **state) {
  (void)state;
  char *dir = make_store("tail_seek", SL_SEG_SIZE_MIN);
  commit_n(dir, 200, 150);
  tailer tl;
  tailer_open(&tl, dir);
  sl_seg_info *segs;
  size_t nsegs;
  assert_int_equal(sl_log_list(tl.logdir, &segs, &nsegs), 0);
  assert_true(nsegs > 3);
  uint64_t starts[] = {1, 2, segs[1].first_txid, segs[1].first_txid - 1, segs[2].first_txid + 1,
                       199, 200, 201};
  free(segs);
  for (size_t i = 0; i < SL_ARRAY_LEN(starts); i++) {
    assert_int_equal(sl__tail_seek(tl.tail, starts[i]), 0);
    assert_int_equal(sl__tail_next_txid(tl.tail), starts[i]);
    assert_int_equal(drain(&tl, 4096), 201 - starts[i]);
  }
  assert_int_equal(sl__tail_seek(tl.tail, 202), SL_EGAP);

  /* Prune: a checkpoint removes what no consumer needs. */
  char *logdir = tu_path(dir, "log");
  assert_int_equal(sl_log_consumer_remove(logdir, "test-hold"), 0);
  free(logdir);
  sl_store *st;
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  assert_int_equal(sl_store_checkpoint(st), 0);
  sl_store_close(st);
  uint64_t oldest;
  assert_int_equal(sl__tail_oldest(tl.tail, &oldest), 0);
  assert_true(oldest > 1);
  assert_int_equal(sl__tail_seek(tl.tail, oldest - 1), SL_ENOTFOUND);
  assert_int_equal(sl__tail_seek(tl.tail, oldest), 0);
  assert_int_equal(drain(&tl, 4096), 201 - oldest);
  tailer_close(&tl);
  free(dir);
}

static void shipper_tail_seeks_by_time(void **state) {
  (void)state;
  char *dir = make_store("tail_time", SL_SEG_SIZE_MIN);
  uint64_t base = sl_now_us() - 10000000;
  sl_store *st;
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  for (uint64_t i = 1; i <= 100; i++) assert_int_equal(commit_one(st, 100, base + i * 1000), i);
  sl_store_close(st);
  tailer tl;
  tailer_open(&tl, dir);
  uint64_t txid;
  /* "after T": the first commit strictly later than T. */
  assert_int_equal(sl_log_find_after_time(tl.logdir, base + 50 * 1000, &txid), 0);
  assert_int_equal(txid, 51);
  assert_int_equal(sl_log_find_after_time(tl.logdir, base + 50 * 1000 - 1, &txid), 0);
  assert_int_equal(txid, 50);
  assert_int_equal(sl__tail_seek(tl.tail, txid), 0);
  assert_int_equal(drain(&tl, 2000), 51);
  assert_int_equal(sl_log_find_after_time(tl.logdir, base + 100 * 1000, &txid), 0);
  assert_int_equal(txid, 101);
  tailer_close(&tl);
  free(dir);
}

/* ---- io backends ------------------------------------------------------------------------ */

typedef struct reader_arg {
  int fd;
  size_t want, got;
  uint32_t crc;
} reader_arg;

static void *reader_main(void *arg) {
  reader_arg *r = arg;
  static uint8_t buf[65536];
  while (r->got < r->want) {
    ssize_t n = read(r->fd, buf, sizeof buf);
    if (n <= 0) break;
    r->crc = sl_crc32c(r->crc, buf, (size_t)n);
    r->got += (size_t)n;
  }
  return NULL;
}

static void shipper_io_waits_and_moves_bytes(void **state) {
  (void)state;
  sl__io *io;
  assert_int_equal(sl__io_open(g_backend, &io), 0);
  assert_string_equal(sl__io_name(io), g_backend == SL_IO_URING ? "io_uring" : "plain");
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const char *dir = tu_tmpdir("io_wait");
  char *file = tu_path(dir, "watched");
  int wfd = open(file, O_CREAT | O_WRONLY, 0600);
  int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  assert_true(inotify_add_watch(ino, file, IN_MODIFY) >= 0);
  uint8_t rbuf[256];
  sl__io_waitset w = {.notify_fd = ino, .sock_fd = sv[0], .recv_buf = rbuf, .recv_len = sizeof rbuf,
                      .timeout_ms = 50};
  sl__io_events ev;

  /* Nothing happens: a timeout, after about 50 ms, not at once. */
  uint64_t t0 = sl_mono_ns();
  assert_int_equal(sl__io_wait(io, &w, &ev), 0);
  assert_int_equal(ev.ready, 0);
  assert_true(sl_mono_ns() - t0 >= 40ull * 1000000u);

  /* The watched file is written: NOTIFY. */
  w.timeout_ms = 5000;
  assert_int_equal(pwrite(wfd, "x", 1, 0), 1);
  assert_int_equal(sl__io_wait(io, &w, &ev), 0);
  assert_int_equal(ev.ready, SL__IO_NOTIFY);
  assert_true(ev.notify_len >= sizeof(struct inotify_event));

  /* The peer sends: RECV with the bytes. */
  assert_int_equal(write(sv[1], "hello", 5), 5);
  assert_int_equal(sl__io_wait(io, &w, &ev), 0);
  assert_int_equal(ev.ready, SL__IO_RECV);
  assert_int_equal(ev.received, 5);
  assert_memory_equal(rbuf, "hello", 5);

  /* send_all of more than the socket buffer holds. */
  size_t big = 8u << 20;
  uint8_t *data = malloc(big);
  for (size_t i = 0; i < big; i++) data[i] = (uint8_t)(i * 7 + (i >> 13));
  reader_arg ra = {.fd = sv[1], .want = big};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, reader_main, &ra), 0);
  assert_int_equal(sl__io_send_all(io, sv[0], data, big, 5000), 0);
  pthread_join(th, NULL);
  assert_int_equal(ra.got, big);
  assert_int_equal(ra.crc, sl_crc32c(0, data, big));

  /* Reads at an offset, short at the end of the file. */
  assert_int_equal(pwrite(wfd, "abcdef", 6, 0), 6);
  int rfd = open(file, O_RDONLY);
  uint8_t got[16];
  assert_int_equal(sl__io_read(io, rfd, got, sizeof got, 2), 4);
  assert_memory_equal(got, "cdef", 4);
  assert_int_equal(sl__io_read(io, rfd, got, sizeof got, 6), 0);

  /* The peer closes: RECV of 0 bytes. */
  close(sv[1]);
  w.notify_fd = -1;
  assert_int_equal(sl__io_wait(io, &w, &ev), 0);
  assert_int_equal(ev.ready, SL__IO_RECV);
  assert_int_equal(ev.received, 0);

  sl__io_forget(io, ino);
  sl__io_forget(io, sv[0]);
  close(ino);
  close(sv[0]);
  close(wfd);
  close(rfd);
  sl__io_close(io);
  free(data);
  free(file);
}

/* A child whose io_uring_setup fails with ENOSYS (seccomp, as in locked-down
 * containers) must fall back to plain reads and say so once. */
static void shipper_io_falls_back_without_uring(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(p[1], 2);
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = SL_ARRAY_LEN(f), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
      _exit(3);
    sl__io *io;
    if (sl__io_open(SL_IO_AUTO, &io)) _exit(4);
    int plain = strcmp(sl__io_name(io), "plain") == 0;
    sl__io_close(io);
    if (sl__io_open(SL_IO_AUTO, &io)) _exit(4); /* announced once only */
    sl__io_close(io);
    if (sl__io_open(SL_IO_URING, &io) == 0) _exit(5); /* a named backend is not replaced */
    _exit(plain ? 0 : 6);
  }
  close(p[1]);
  char out[2048] = {0};
  size_t n = 0;
  ssize_t k;
  while (n < sizeof out - 1 && (k = read(p[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)k;
  close(p[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  const char *line = "io_uring unavailable (io_uring_queue_init: Function not implemented); using plain reads";
  char *hit = strstr(out, line);
  assert_non_null(hit);
  assert_null(strstr(hit + strlen(line), "using plain reads")); /* once */
}

/* ---- sessions against a scripted receiver ----------------------------------------------------- */

typedef struct fake {
  pthread_t t;
  int lfd;
  char addr[64];
  volatile int quit;
  /* script */
  uint64_t archived;          /* durable txid told in Welcome */
  int drop_after;             /* first connection: vanish after this many batches, unacked */
  bool refuse;                /* answer Hello with a permanent ERR_STORE_ID */
  /* seen */
  int connections;
  bool dense;
  uint64_t received_txids;
  Shiplog__Repl__StartKind start;
  uint64_t start_txid, since_us, hello_committed;
  uint8_t store_id[SL_STORE_ID_SIZE];
} fake;

static void fake_send(sl_conn *c, Shiplog__Repl__Message *m) { (void)sl_conn_send(c, m); }

static void fake_session(fake *fk, sl_conn *c) {
  Shiplog__Repl__Message *m;
  if (sl_conn_recv(c, 5000, SL_MSG_MAX, &m) != 0) return;
  if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_HELLO) {
    Shiplog__Repl__Hello *h = m->hello;
    fk->start = h->start;
    fk->start_txid = h->start_txid;
    fk->since_us = h->since_time_us;
    fk->hello_committed = h->committed_txid;
    if (h->store_id.len == SL_STORE_ID_SIZE) memcpy(fk->store_id, h->store_id.data, SL_STORE_ID_SIZE);
  }
  sl_msg_free(m);
  Shiplog__Repl__Message out = SHIPLOG__REPL__MESSAGE__INIT;
  if (fk->refuse) {
    Shiplog__Repl__Error e;
    sl_msg_error(&out, &e, SHIPLOG__REPL__ERROR_CODE__ERR_STORE_ID, true, "stream belongs to another store");
    fake_send(c, &out);
    return;
  }
  Shiplog__Repl__Welcome w = SHIPLOG__REPL__WELCOME__INIT;
  w.protocol_version = SL_PROTOCOL_VERSION;
  w.durable_txid = fk->archived;
  out.body_case = SHIPLOG__REPL__MESSAGE__BODY_WELCOME;
  out.welcome = &w;
  fake_send(c, &out);
  uint64_t acked = fk->archived;
  int batches = 0;
  sl_buf raw = {0};
  while (!fk->quit) {
    int rc = sl_conn_recv(c, 100, SL_MSG_MAX, &m);
    if (rc == -ETIMEDOUT) continue;
    if (rc) break;
    if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_BATCH) {
      Shiplog__Repl__Batch *b = m->batch;
      if (fk->archived == 0 && fk->received_txids == 0) fk->archived = b->first_txid - 1; /* a new stream */
      if (sl_batch_open(b, SL_BATCH_RAW_MAX, &raw) != 0 || b->first_txid != fk->archived + 1)
        fk->dense = false;
      fk->archived = b->last_txid;
      fk->received_txids += b->last_txid - b->first_txid + 1;
      if (++batches == fk->drop_after && fk->connections == 1) {
        fk->archived = acked; /* crashed before its fsync */
        sl_msg_free(m);
        break;
      }
      Shiplog__Repl__Ack a = SHIPLOG__REPL__ACK__INIT;
      a.durable_txid = acked = fk->archived;
      a.has_applied_txid = true;
      a.applied_txid = acked;
      out.body_case = SHIPLOG__REPL__MESSAGE__BODY_ACK;
      out.ack = &a;
      fake_send(c, &out);
    } else if (m->body_case == SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT) {
      Shiplog__Repl__Heartbeat hb = SHIPLOG__REPL__HEARTBEAT__INIT;
      hb.has_durable_txid = true;
      hb.durable_txid = acked;
      out.body_case = SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT;
      out.heartbeat = &hb;
      fake_send(c, &out);
    }
    sl_msg_free(m);
  }
  sl_buf_free(&raw);
}

static void *fake_main(void *arg) {
  fake *fk = arg;
  while (!fk->quit) {
    struct pollfd p = {.fd = fk->lfd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept4(fk->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue;
    sl_conn *c;
    if (sl_conn_wrap(fd, &c)) continue;
    fk->connections++;
    fake_session(fk, c);
    sl_conn_close(c);
  }
  return NULL;
}

static void fake_start(fake *fk) {
  fk->dense = true;
  assert_int_equal(sl_listen("127.0.0.1:0", 4, &fk->lfd), 0);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&ss, &sl), 0);
  snprintf(fk->addr, sizeof fk->addr, "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  assert_int_equal(pthread_create(&fk->t, NULL, fake_main, fk), 0);
}

static void fake_stop(fake *fk) {
  fk->quit = 1;
  pthread_join(fk->t, NULL);
  close(fk->lfd);
}

static sl_shipper_options ship_opts(const char *store, const char *to) {
  return (sl_shipper_options){.store_dir = store, .to = to, .stream = "s1", .insecure = true, .batch_max_bytes = 4096,
                              .heartbeat_ms = 100, .timeout_ms = 3000, .backoff_max_ms = 200,
                              .backend = g_backend, .exit_when_caught_up = true};
}

/* The position of the shipper of o's stream to o's receiver. */
static uint64_t consumer_of(const char *store, const sl_shipper_options *o) {
  char *logdir = tu_path(store, "log"), name[SL_LOG_CONSUMER_NAME_MAX + 1];
  uint64_t v = 0;
  sl_ship_consumer_name(o->stream, o->to, name, sizeof name);
  assert_int_equal(sl_log_consumer_get(logdir, name, &v), 0);
  free(logdir);
  return v;
}

static void shipper_session_resumes_from_receiver(void **state) {
  (void)state;
  char *dir = make_store("session_resume", SL_SEG_SIZE_MIN);
  commit_n(dir, 150, 120);
  fake fk = {.archived = 40};
  fake_start(&fk);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, fk.addr);
  o.from_txid = 7; /* ignored: the stream already holds 1..40 */
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  fake_stop(&fk);
  assert_true(fk.dense);
  assert_int_equal(fk.archived, 150);
  assert_int_equal(fk.received_txids, 110);
  assert_int_equal(fk.start, SHIPLOG__REPL__START_KIND__START_FROM_TXID);
  assert_int_equal(fk.hello_committed, 150);
  uint8_t id[SL_STORE_ID_SIZE];
  store_id_of(dir, id);
  assert_memory_equal(fk.store_id, id, SL_STORE_ID_SIZE);
  assert_int_equal(consumer_of(dir, &o), 150);
  sl_ship_status ss;
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "stopped");
  assert_int_equal(ss.committed, 150);
  assert_int_equal(ss.shipped, 150);
  assert_int_equal(ss.durable, 150);
  assert_int_equal(ss.applied, 150);
  assert_true(ss.batches > 1);
  assert_int_equal(ss.reconnects, 0);
  free(dir);
}

/* A status file left by a shipper that was killed says it is at work:
 * without the ALIVE LOCK held, status reads "not-running" (shipper.h); a
 * final state stands as written. */
static void shipper_status_of_a_killed_shipper(void **state) {
  (void)state;
  char *dir = make_store("status_killed", SL_SEG_SIZE_MIN);
  char shipdir[PATH_MAX], path[PATH_MAX + 16];
  snprintf(shipdir, sizeof shipdir, "%s/ship", dir);
  assert_int_equal(sl_mkdir_p(shipdir), 0);
  snprintf(path, sizeof path, "%s/s1.status", shipdir);
  assert_int_equal(sl_status_write(path, "state=streaming\npeer=127.0.0.1:1\napplied=5\nerror=\n"), 0);
  sl_ship_status ss;
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "not-running");
  assert_non_null(strstr(ss.error, "no shipper runs"));
  assert_int_equal(ss.applied, 5);

  snprintf(path, sizeof path, "%s/s1.lock", shipdir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "streaming");
  assert_string_equal(ss.error, "");
  close(fd);
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "not-running");

  snprintf(path, sizeof path, "%s/s1.status", shipdir);
  assert_int_equal(sl_status_write(path, "state=stopped\n"), 0);
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "stopped");
  free(dir);
}

static void shipper_session_reconnects_after_drop(void **state) {
  (void)state;
  char *dir = make_store("session_drop", SL_SEG_SIZE_MIN);
  commit_n(dir, 120, 200);
  fake fk = {.drop_after = 2};
  fake_start(&fk);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, fk.addr);
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  fake_stop(&fk);
  assert_true(fk.dense);
  assert_int_equal(fk.connections, 2);
  assert_int_equal(fk.archived, 120);
  assert_int_equal(fk.start, SHIPLOG__REPL__START_KIND__START_RESUME);
  sl_ship_status ss;
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_int_equal(ss.reconnects, 1);
  assert_int_equal(ss.durable, 120);
  assert_int_equal(consumer_of(dir, &o), 120);
  free(dir);
}

static void shipper_session_since_time(void **state) {
  (void)state;
  char *dir = make_store("session_since", SL_SEG_SIZE_MIN);
  uint64_t base = sl_now_us() - 10000000;
  sl_store *st;
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  for (uint64_t i = 1; i <= 60; i++) commit_one(st, 100, base + i * 1000);
  sl_store_close(st);
  fake fk = {0};
  fake_start(&fk);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, fk.addr);
  o.has_since = true;
  o.since_us = base + 45 * 1000;
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  fake_stop(&fk);
  assert_int_equal(fk.start, SHIPLOG__REPL__START_KIND__START_SINCE_TIME);
  assert_int_equal(fk.start_txid, 46);
  assert_int_equal(fk.since_us, base + 45 * 1000);
  assert_true(fk.dense);
  assert_int_equal(fk.received_txids, 15);
  assert_int_equal(fk.archived, 60);
  assert_int_equal(consumer_of(dir, &o), 60);
  free(dir);
}

/* A new stream from a log pruned past txid 1 starts at the oldest kept txid,
 * and says so in the hello (the receiver then expects that txid first). */
static void shipper_session_pruned_log_starts_at_oldest(void **state) {
  (void)state;
  char *dir = make_store("session_pruned", SL_SEG_SIZE_MIN);
  char *logdir = tu_path(dir, "log");
  assert_int_equal(sl_log_consumer_remove(logdir, "test-hold"), 0);
  commit_n(dir, 200, 150); /* the close checkpoints and prunes */
  sl_seg_info *segs;
  size_t n;
  assert_int_equal(sl_log_list(logdir, &segs, &n), 0);
  uint64_t oldest = segs[0].first_txid;
  free(segs);
  assert_true(oldest > 1);
  fake fk = {0};
  fake_start(&fk);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, fk.addr);
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  fake_stop(&fk);
  assert_int_equal(fk.start, SHIPLOG__REPL__START_KIND__START_FROM_TXID);
  assert_int_equal(fk.start_txid, oldest);
  assert_true(fk.dense);
  assert_int_equal(fk.received_txids, 201 - oldest);
  assert_int_equal(consumer_of(dir, &o), 200);
  free(logdir);
  free(dir);
}

static void shipper_session_permanent_refusal(void **state) {
  (void)state;
  char *dir = make_store("session_refused", 0);
  commit_n(dir, 3, 10);
  fake fk = {.refuse = true};
  fake_start(&fk);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, fk.addr);
  assert_int_equal(sl_shipper_run(&o, &stop), SL_ESTOREID);
  fake_stop(&fk);
  assert_int_equal(fk.connections, 1);
  sl_ship_status ss;
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "failed");
  assert_non_null(strstr(ss.error, "stream belongs to another store (ERR_STORE_ID)"));
  free(dir);
}

/* The shipper reads store.id by the store's rules (sl_store_read_id): a
 * file the store refuses -- another format version, bytes after the id --
 * it refuses with the same code (it used to parse the file itself and
 * take both). */
static void shipper_store_id_rules_are_the_stores(void **state) {
  (void)state;
  char *dir = make_store("store_id_rules", 0);
  uint8_t id[SL_STORE_ID_SIZE];
  assert_int_equal(sl_store_read_id(dir, id), 0);
  char hex[2 * SL_STORE_ID_SIZE + 1], text[128];
  sl_hex_encode(id, SL_STORE_ID_SIZE, hex);
  struct { const char *fmt; int rc; } bad[] = {
      {"shiplog-store 2\n%s\n", SL_EVERSION},
      {"shiplog-store 1\n%s\nmore\n", SL_ECORRUPT},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    int n = snprintf(text, sizeof text, bad[i].fmt, hex);
    assert_int_equal(sl_write_file_atomic(dir, SL_STORE_ID_FILE, text, (size_t)n), 0);
    sl_store *st = NULL;
    assert_int_equal(sl_store_open(dir, SL_OPEN_RDONLY, &st), bad[i].rc);
    atomic_int stop = 1; /* a shipper that got past setup stops at once */
    sl_shipper_options o = ship_opts(dir, "127.0.0.1:1");
    assert_int_equal(sl_shipper_run(&o, &stop), bad[i].rc);
  }
  free(dir);
}

static void *stopper_main(void *arg) {
  usleep(300000);
  *(atomic_int *)arg = 1;
  return NULL;
}

/* No receiver at all: retries (one warning), then stops on the flag. */
static void shipper_session_stops_while_retrying(void **state) {
  (void)state;
  char *dir = make_store("session_noreceiver", 0);
  commit_n(dir, 3, 10);
  int lfd;
  assert_int_equal(sl_listen("127.0.0.1:0", 1, &lfd), 0);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &sl), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  close(lfd); /* nobody listens there now */
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, addr);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, stopper_main, (void *)&stop), 0);
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  pthread_join(th, NULL);
  sl_ship_status st;
  assert_int_equal(sl_ship_status_read(dir, "s1", &st), 0);
  assert_string_equal(st.state, "stopped");
  assert_non_null(strstr(st.error, "cannot connect"));
  free(dir);
}

/* ---- against the real receiver ------------------------------------------------------------------ */

typedef tu_receiver rx;

static void rx_start(rx *r, const char *data) {
  r->o = (sl_receiver_options){.listen = "127.0.0.1:0", .data_dir = data, .insecure = true, .heartbeat_ms = 100};
  tu_receiver_start(r);
}

/* Ship n transactions of the store `name` to a real receiver with the
 * given batch and window limits (0: defaults): the standby ends up with
 * every one and the consumer position at n. Returns the batches sent. */
static uint64_t ship_to_real_receiver(const char *name, int n, size_t batch_max, size_t window) {
  char *dir = make_store(name, 0); /* one segment: nothing pruned before the shipper registers */
  char data_name[64];
  snprintf(data_name, sizeof data_name, "%s_data", name);
  char *data = tu_path(tu_tmpdir(data_name), "rx");
  commit_n(dir, n, 300);
  rx r = {0};
  rx_start(&r, data);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, r.addr);
  o.batch_max_bytes = batch_max;
  o.window_bytes = window;
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  r.stop = 1;
  pthread_join(r.t, NULL);
  assert_int_equal(r.rc, 0);
  sl_ship_status ss;
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_int_equal(ss.durable, (uint64_t)n);
  char *standby = tu_path(data, "streams/s1/standby");
  sl_store *st;
  assert_int_equal(sl_store_open(standby, SL_OPEN_RDONLY, &st), 0);
  sl_view *v;
  sl_counts c;
  assert_int_equal(sl_view_begin(st, &v), 0);
  assert_int_equal(sl_view_counts(v, &c), 0);
  sl_view_end(v);
  sl_store_close(st);
  assert_int_equal(c.nodes, n);
  assert_int_equal(consumer_of(dir, &o), (uint64_t)n);
  free(standby);
  free(data);
  free(dir);
  return ss.batches;
}

static void shipper_ships_to_real_receiver(void **state) {
  (void)state;
  ship_to_real_receiver("real_receiver", 500, 0, 0);
}

/* Commit one transaction whose frame is about `bytes` long (a string
 * property of that size). */
static void commit_big(const char *dir, size_t bytes) {
  char *buf = malloc(bytes);
  assert_non_null(buf);
  memset(buf, 'y', bytes);
  sl_store *st;
  sl_tx *tx;
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  sl_prop p = {.key = "big", .value = {.kind = SL_STRING, .len = bytes, .u.s = buf}};
  assert_int_equal(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, &p, 1, NULL), 0);
  assert_int_equal(sl_tx_commit(tx, NULL), 0);
  sl_store_close(st);
  free(buf);
}

static sl_counts standby_counts(const char *data) {
  char *standby = tu_path(data, "streams/s1/standby");
  sl_store *st;
  sl_view *v;
  sl_counts c;
  assert_int_equal(sl_store_open(standby, SL_OPEN_RDONLY, &st), 0);
  assert_int_equal(sl_view_begin(st, &v), 0);
  assert_int_equal(sl_view_counts(v, &c), 0);
  sl_view_end(v);
  sl_store_close(st);
  free(standby);
  return c;
}

/* A frame larger than the receiver's batch limit (--max-batch-bytes) goes
 * alone in its batch, which the receiver takes (codec.h SL_BATCH_FRAME_MAX):
 * the stream does not stop at it. */
static void shipper_big_frame_goes_alone(void **state) {
  (void)state;
  char *dir = make_store("big_frame", 0);
  char *data = tu_path(tu_tmpdir("big_frame_data"), "rx");
  commit_n(dir, 20, 300);
  commit_big(dir, 3u << 20);
  commit_n(dir, 20, 300);
  rx r = {0};
  r.o = (sl_receiver_options){.listen = "127.0.0.1:0", .data_dir = data, .insecure = true, .heartbeat_ms = 100,
                              .max_batch_bytes = 64u << 10};
  tu_receiver_start(&r);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, r.addr);
  assert_int_equal(sl_shipper_run(&o, &stop), 0);
  tu_receiver_stop(&r);
  sl_counts c = standby_counts(data);
  assert_int_equal(c.applied_txid, 41);
  assert_int_equal(c.nodes, 41);
  free(data);
  free(dir);
}

/* A frame over what replication carries (only an older shiplog committed
 * such, log.h SIZE LIMITS): the shipper gives up naming the txid and tells
 * the receiver, whose status shows the stream behind, with the reason. */
static void shipper_unshippable_frame_says_so(void **state) {
  (void)state;
  char *dir = make_store("unshippable", 0);
  char *data = tu_path(tu_tmpdir("unshippable_data"), "rx");
  commit_n(dir, 3, 300);
  /* Txid 4, as a writer without the limit appended it. */
  size_t bytes = SL_FRAME_SHIP_MAX + (1u << 20);
  char *buf = malloc(bytes), *logdir = tu_path(dir, "log");
  uint8_t *payload = malloc(bytes + 4096);
  assert_non_null(buf);
  assert_non_null(payload);
  memset(buf, 'z', bytes);
  Shiplog__Value val = SHIPLOG__VALUE__INIT;
  val.kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
  val.string_value = buf;
  buf[bytes - 1] = 0;
  Shiplog__Property prop = SHIPLOG__PROPERTY__INIT, *props[] = {&prop};
  prop.key = "big";
  prop.value = &val;
  Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
  cn.id = 100;
  cn.n_props = 1;
  cn.props = props;
  Shiplog__Op op = SHIPLOG__OP__INIT, *ops[] = {&op};
  op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
  op.create_node = &cn;
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  t.txid = 4;
  t.commit_time_us = sl_now_us();
  t.n_ops = 1;
  t.ops = ops;
  size_t len = shiplog__transaction__pack(&t, payload);
  sl_log *log;
  assert_int_equal(sl_log_open(logdir, NULL, &log), 0);
  assert_int_equal(sl_log_append(log, payload, len), 0);
  assert_int_equal(sl_log_wait_durable(log, 4), 0);
  sl_log_close(log);
  free(payload);
  free(buf);

  rx r = {0};
  rx_start(&r, data);
  atomic_int stop = 0;
  sl_shipper_options o = ship_opts(dir, r.addr);
  assert_int_equal(sl_shipper_run(&o, &stop), SL_ETOOBIG);
  sl_ship_status ss;
  assert_int_equal(sl_ship_status_read(dir, "s1", &ss), 0);
  assert_string_equal(ss.state, "failed");
  assert_non_null(strstr(ss.error, "txid 4 is a"));
  assert_non_null(strstr(ss.error, "more than the replication protocol carries"));
  /* The receiver: txids 1..3 durable, the primary at 4, the reason. */
  sl_stream_status st = {0};
  for (int i = 0; i < 1200; i++) { /* 60 s at most: a loaded machine writes status files late */
    assert_int_equal(sl_stream_status_read(data, "s1", &st), 0);
    if (strstr(st.error, "more than the replication protocol carries") && st.durable == 3) break;
    usleep(50 * 1000);
  }
  if (!strstr(st.error, "more than the replication protocol carries")) fprintf(stderr, "status error: %s\n", st.error);
  assert_int_equal(st.durable, 3);
  assert_int_equal(st.primary_committed, 4);
  assert_non_null(strstr(st.error, "more than the replication protocol carries"));
  tu_receiver_stop(&r);
  free(logdir);
  free(data);
  free(dir);
}

/* A backlog of many small batches behind a window of two: the sealer's
 * ring fills, the window closes again and again and is reopened by the
 * acknowledgements read in between; the receiver checks every batch's raw
 * CRC and rolling checksum. */
static void shipper_pipeline_with_small_window(void **state) {
  (void)state;
  assert_true(ship_to_real_receiver("pipeline", 2000, 4096, 8192) > 100);
}

#define SHIPPER_TESTS                                                    \
  cmocka_unit_test(shipper_tail_reads_across_rotation),                  \
  cmocka_unit_test(shipper_tail_follows_live_writer),                    \
  cmocka_unit_test(shipper_tail_wakes_on_commit),                        \
  cmocka_unit_test(shipper_tail_never_returns_torn_tail),                \
  cmocka_unit_test(shipper_tail_seeks_by_txid),                          \
  cmocka_unit_test(shipper_tail_seeks_by_time),                          \
  cmocka_unit_test(shipper_io_waits_and_moves_bytes),                    \
  cmocka_unit_test(shipper_session_resumes_from_receiver),               \
  cmocka_unit_test(shipper_session_reconnects_after_drop),               \
  cmocka_unit_test(shipper_status_of_a_killed_shipper),                  \
  cmocka_unit_test(shipper_session_since_time),                          \
  cmocka_unit_test(shipper_session_pruned_log_starts_at_oldest),         \
  cmocka_unit_test(shipper_session_permanent_refusal),                   \
  cmocka_unit_test(shipper_session_stops_while_retrying),                \
  cmocka_unit_test(shipper_ships_to_real_receiver),                     \
  cmocka_unit_test(shipper_pipeline_with_small_window),                  \
  cmocka_unit_test(shipper_big_frame_goes_alone),                        \
  cmocka_unit_test(shipper_unshippable_frame_says_so)

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest plain[] = {SHIPPER_TESTS, cmocka_unit_test(shipper_io_falls_back_without_uring),
                                     cmocka_unit_test(shipper_store_id_rules_are_the_stores)};
  const struct CMUnitTest uring[] = {SHIPPER_TESTS};
  int failed = _cmocka_run_group_tests("shipper_plain", plain, SL_ARRAY_LEN(plain), use_plain, NULL);
  char why[128];
  sl__io *probe;
  if (sl__io_uring_open(&probe, why, sizeof why) != 0) {
    fprintf(stderr, "shipper: io_uring unavailable (%s): uring group skipped\n", why);
    return failed ? failed : TU_SKIP;
  }
  sl__io_close(probe);
  failed += _cmocka_run_group_tests("shipper_uring", uring, SL_ARRAY_LEN(uring), use_uring, NULL);
  return failed;
}
