/*
 * io_uring.c: the shipper's io_uring backend (io.h), on liburing 2.3.
 *
 * One ring, owned by the shipper's thread, with at most one request of each
 * kind in flight; a request's kind is its user_data:
 *
 *   NOTIFY  READ of the inotify fd (O_NONBLOCK: the kernel arms its own
 *           poll and completes the READ when the watched file is written;
 *           a blocking inotify fd would instead park an io-wq worker
 *           thread in read(), measured 2-3x slower to wake). Kernels that
 *           complete it with -EAGAIN get POLL_ADD + read() instead.
 *   RECV    receive into the caller's buffer; with sock_poll (TLS) a
 *           POLL_ADD for POLLIN in its place, reported as READABLE
 *   READ    segment data at an offset
 *   SEND    message bytes (MSG_NOSIGNAL; partial sends are resubmitted)
 *   CANCEL  ASYNC_CANCEL of one of the above (its completion is ignored)
 *
 * NOTIFY and RECV stay armed across calls, so the idle shipper sleeps in
 * one io_uring_enter() that returns on whichever comes first: the log's
 * durable mark changed, the receiver sent something, or the timeout (the
 * wait's timeout is passed to io_uring_enter with IORING_ENTER_EXT_ARG;
 * liburing posts a TIMEOUT request on kernels without it). READ and SEND
 * are waited for at once; completions of the other kinds that arrive
 * meanwhile are kept in their slot and reported by the next wait().
 *
 * Short reads and sends are normal (liburing's io_uring-cp requeues them
 * the same way): send_all resubmits the rest; read returns the count and
 * the tail reader decides.
 */
#include "io.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_base.h"

enum { TAG_NOTIFY = 1, TAG_RECV, TAG_READ, TAG_SEND, TAG_CANCEL };

/* One request kind: in flight (armed) or completed and not yet reported. */
typedef struct slot {
  bool armed, done;
  int fd;
  int res;
} slot;

typedef struct uring_io {
  sl__io base;
  struct io_uring ring;
  slot notify, recv, read, send;
  bool notify_by_poll;  /* the kernel refused a READ of the inotify fd */
  bool recv_is_poll;    /* the RECV slot holds a POLL_ADD (sock_poll) */
  uint8_t notify_buf[4096] __attribute__((aligned(8)));
} uring_io;

static slot *slot_of(uring_io *u, uint64_t tag) {
  switch (tag) {
  case TAG_NOTIFY: return &u->notify;
  case TAG_RECV: return &u->recv;
  case TAG_READ: return &u->read;
  case TAG_SEND: return &u->send;
  default: return NULL; /* CANCEL, liburing's own timeouts */
  }
}

static struct io_uring_sqe *get_sqe(uring_io *u) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (!sqe) {
    /* Cannot stay full: at most five requests are ever outstanding. */
    io_uring_submit(&u->ring);
    sqe = io_uring_get_sqe(&u->ring);
  }
  return sqe;
}

static void arm(uring_io *u, struct io_uring_sqe *sqe, uint64_t tag, int fd) {
  io_uring_sqe_set_data64(sqe, tag);
  slot *s = slot_of(u, tag);
  s->armed = true;
  s->done = false;
  s->fd = fd;
}

/* Move every available completion into its slot. */
static void reap(uring_io *u) {
  struct io_uring_cqe *cqe;
  unsigned head, n = 0;
  io_uring_for_each_cqe(&u->ring, head, cqe) {
    slot *s = slot_of(u, cqe->user_data);
    if (s && s->armed) {
      s->armed = false;
      s->done = true;
      s->res = cqe->res;
    }
    n++;
  }
  io_uring_cq_advance(&u->ring, n);
}

/* Submit what is queued and wait for one completion, at most until
 * deadline_ns (0: no limit). 0, -ETIMEDOUT, -EINTR or -errno. */
static int enter(uring_io *u, uint64_t deadline_ns) {
  struct io_uring_cqe *cqe;
  int rc;
  if (deadline_ns == 0) {
    rc = io_uring_submit_and_wait(&u->ring, 1);
  } else {
    uint64_t now = sl_mono_ns();
    uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
    struct __kernel_timespec ts = {.tv_sec = (long long)(left / 1000000000u),
                                   .tv_nsec = (long long)(left % 1000000000u)};
    rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
  }
  if (rc == -ETIME) return -ETIMEDOUT;
  return rc < 0 ? rc : 0;
}

/* Wait until slot s completes (signals do not interrupt: READ and SEND
 * finish promptly or time out). */
static int wait_slot(uring_io *u, slot *s, uint64_t deadline_ns) {
  for (;;) {
    reap(u);
    if (s->done) return 0;
    int rc = enter(u, deadline_ns);
    if (rc && rc != -EINTR) {
      reap(u);
      return s->done ? 0 : rc;
    }
  }
}

/* Cancel the request in slot s (if armed) and reap it; its result is dropped. */
static void cancel(uring_io *u, slot *s, uint64_t tag) {
  if (s->armed) {
    struct io_uring_sqe *sqe = get_sqe(u);
    io_uring_prep_cancel64(sqe, tag, 0);
    io_uring_sqe_set_data64(sqe, TAG_CANCEL);
    wait_slot(u, s, 0);
  }
  s->done = false;
}

static long uring_read(sl__io *io, int fd, void *buf, size_t len, uint64_t off) {
  uring_io *u = (uring_io *)io;
  struct io_uring_sqe *sqe = get_sqe(u);
  io_uring_prep_read(sqe, fd, buf, (unsigned)SL_MIN(len, (size_t)1 << 30), off);
  arm(u, sqe, TAG_READ, fd);
  int rc = wait_slot(u, &u->read, 0);
  u->read.done = false;
  return rc ? rc : u->read.res;
}

static int uring_send_all(sl__io *io, int fd, const void *buf, size_t len, int timeout_ms) {
  uring_io *u = (uring_io *)io;
  const uint8_t *p = buf;
  while (len > 0) {
    struct io_uring_sqe *sqe = get_sqe(u);
    io_uring_prep_send(sqe, fd, p, SL_MIN(len, (size_t)1 << 30), MSG_NOSIGNAL);
    arm(u, sqe, TAG_SEND, fd);
    int rc = wait_slot(u, &u->send, sl_mono_ns() + (uint64_t)timeout_ms * 1000000u);
    if (rc) {
      cancel(u, &u->send, TAG_SEND);
      return rc;
    }
    u->send.done = false;
    int res = u->send.res;
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res < 0) return res;
    if (res == 0) return -EPIPE;
    p += res;
    len -= (size_t)res;
  }
  return 0;
}

static void arm_notify(uring_io *u, int fd) {
  struct io_uring_sqe *sqe = get_sqe(u);
  if (u->notify_by_poll) io_uring_prep_poll_add(sqe, fd, POLLIN);
  else io_uring_prep_read(sqe, fd, u->notify_buf, sizeof u->notify_buf, 0);
  arm(u, sqe, TAG_NOTIFY, fd);
}

/* A completed NOTIFY: 0 with the records in ev, or -errno. */
static int take_notify(uring_io *u, int fd, sl__io_events *ev) {
  int res = u->notify.res;
  u->notify.done = false;
  if (res == -EAGAIN && !u->notify_by_poll) {
    u->notify_by_poll = true;
    return 0; /* re-armed as a poll by the next wait */
  }
  if (u->notify_by_poll && res > 0) {
    ssize_t n = read(fd, u->notify_buf, sizeof u->notify_buf);
    res = n < 0 ? -errno : (int)n;
    if (res == -EAGAIN) res = 0;
  }
  if (res == -EINTR || res == -ECANCELED || res == 0) return 0;
  if (res < 0) return res;
  ev->ready |= SL__IO_NOTIFY;
  ev->notify = u->notify_buf;
  ev->notify_len = (size_t)res;
  return 0;
}

static int uring_wait(sl__io *io, const sl__io_waitset *w, sl__io_events *ev) {
  uring_io *u = (uring_io *)io;
  ev->ready = 0;
  ev->notify = NULL;
  ev->notify_len = 0;
  ev->received = 0;
  if (w->notify_fd >= 0 && !u->notify.armed && !u->notify.done) arm_notify(u, w->notify_fd);
  if (w->sock_fd >= 0 && !u->recv.armed && !u->recv.done) {
    struct io_uring_sqe *sqe = get_sqe(u);
    if (w->sock_poll) io_uring_prep_poll_add(sqe, w->sock_fd, POLLIN);
    else io_uring_prep_recv(sqe, w->sock_fd, w->recv_buf, w->recv_len, 0);
    u->recv_is_poll = w->sock_poll;
    arm(u, sqe, TAG_RECV, w->sock_fd);
  }
  reap(u);
  bool have = (w->notify_fd >= 0 && u->notify.done) || (w->sock_fd >= 0 && u->recv.done);
  if (have) {
    io_uring_submit(&u->ring);
  } else {
    int rc = enter(u, sl_mono_ns() + (uint64_t)w->timeout_ms * 1000000u + 1);
    if (rc && rc != -ETIMEDOUT && rc != -EINTR) return rc;
    reap(u);
  }
  if (w->notify_fd >= 0 && u->notify.done && u->notify.fd == w->notify_fd) {
    int rc = take_notify(u, w->notify_fd, ev);
    if (rc) return rc;
  }
  if (w->sock_fd >= 0 && u->recv.done && u->recv.fd == w->sock_fd) {
    u->recv.done = false;
    if (u->recv_is_poll) {
      /* Readable, or an error the session's read will report. */
      if (u->recv.res != -EINTR && u->recv.res != -ECANCELED) ev->ready |= SL__IO_READABLE;
    } else if (u->recv.res != -EINTR && u->recv.res != -EAGAIN) {
      ev->ready |= SL__IO_RECV;
      ev->received = u->recv.res;
    }
  }
  return 0;
}

static void uring_forget(sl__io *io, int fd) {
  uring_io *u = (uring_io *)io;
  if (u->notify.fd == fd) cancel(u, &u->notify, TAG_NOTIFY);
  if (u->recv.fd == fd) cancel(u, &u->recv, TAG_RECV);
}

static void uring_close(sl__io *io) {
  uring_io *u = (uring_io *)io;
  cancel(u, &u->notify, TAG_NOTIFY);
  cancel(u, &u->recv, TAG_RECV);
  io_uring_queue_exit(&u->ring);
  free(u);
}

static const sl__io_ops uring_ops = {
    .name = "io_uring",
    .read = uring_read,
    .send_all = uring_send_all,
    .wait = uring_wait,
    .forget = uring_forget,
    .close = uring_close,
};

int sl__io_uring_open(sl__io **out, char *why, size_t whylen) {
  static const struct { int op; const char *name; } need[] = {
      {IORING_OP_READ, "READ"},       {IORING_OP_RECV, "RECV"},
      {IORING_OP_SEND, "SEND"},       {IORING_OP_TIMEOUT, "TIMEOUT"},
      {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
  };
  *out = NULL;
  uring_io *u = calloc(1, sizeof *u);
  if (!u) return -ENOMEM;
  u->notify.fd = u->recv.fd = u->read.fd = u->send.fd = -1;
  int rc = io_uring_queue_init(16, &u->ring, 0);
  if (rc < 0) {
    snprintf(why, whylen, "io_uring_queue_init: %s", strerror(-rc));
    free(u);
    return rc;
  }
  struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
  rc = 0;
  if (!probe) {
    snprintf(why, whylen, "the kernel has no io_uring opcode probe");
    rc = -EOPNOTSUPP;
  }
  for (size_t i = 0; rc == 0 && i < SL_ARRAY_LEN(need); i++) {
    if (!io_uring_opcode_supported(probe, need[i].op)) {
      snprintf(why, whylen, "the kernel lacks IORING_OP_%s", need[i].name);
      rc = -EOPNOTSUPP;
    }
  }
  if (probe) io_uring_free_probe(probe);
  if (rc) {
    io_uring_queue_exit(&u->ring);
    free(u);
    return rc;
  }
  u->base.ops = &uring_ops;
  *out = &u->base;
  return 0;
}
