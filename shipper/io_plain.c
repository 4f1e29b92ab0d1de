/*
 * io_plain.c: the shipper's fallback I/O backend (io.h) with ordinary
 * system calls: pread for segment data, poll over {inotify fd, socket} with
 * a timeout, then a non-blocking read of the inotify fd and recv of the
 * socket (with sock_poll, only the readiness is reported), and send with MSG_DONTWAIT + poll(POLLOUT) so that a stuck
 * receiver is noticed after timeout_ms.
 *
 * Nothing is ever in flight between calls, so forget() has nothing to do.
 * A short read is passed up unchanged: the tail reader expects them (the
 * newest segment is growing while we read it).
 */
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct plain_io {
  sl__io base;
  /* inotify records; aligned for struct inotify_event */
  uint8_t notify_buf[4096] __attribute__((aligned(8)));
} plain_io;

static long plain_read(sl__io *io, int fd, void *buf, size_t len, uint64_t off) {
  (void)io;
  for (;;) {
    ssize_t n = pread(fd, buf, len, (off_t)off);
    if (n >= 0) return (long)n;
    if (errno != EINTR) return -errno;
  }
}

static int plain_send_all(sl__io *io, int fd, const void *buf, size_t len, int timeout_ms) {
  (void)io;
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int r = poll(&pf, 1, timeout_ms);
    if (r == 0) return -ETIMEDOUT;
    if (r < 0 && errno != EINTR) return -errno;
  }
  return 0;
}

static int plain_wait(sl__io *io, const sl__io_waitset *w, sl__io_events *ev) {
  plain_io *p = (plain_io *)io;
  ev->ready = 0;
  ev->notify = NULL;
  ev->notify_len = 0;
  ev->received = 0;
  struct pollfd pf[2];
  int n = 0, ni = -1, si = -1;
  if (w->notify_fd >= 0) {
    ni = n;
    pf[n++] = (struct pollfd){.fd = w->notify_fd, .events = POLLIN};
  }
  if (w->sock_fd >= 0) {
    si = n;
    pf[n++] = (struct pollfd){.fd = w->sock_fd, .events = POLLIN};
  }
  int r = poll(pf, (nfds_t)n, w->timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : -errno;
  if (ni >= 0 && pf[ni].revents) {
    ssize_t got = read(w->notify_fd, p->notify_buf, sizeof p->notify_buf);
    if (got > 0) {
      ev->ready |= SL__IO_NOTIFY;
      ev->notify = p->notify_buf;
      ev->notify_len = (size_t)got;
    } else if (got < 0 && errno != EAGAIN && errno != EINTR) {
      return -errno;
    }
  }
  if (si >= 0 && pf[si].revents && w->sock_poll) {
    ev->ready |= SL__IO_READABLE;
  } else if (si >= 0 && pf[si].revents) {
    ssize_t got = recv(w->sock_fd, w->recv_buf, w->recv_len, MSG_DONTWAIT);
    if (got >= 0) {
      ev->ready |= SL__IO_RECV;
      ev->received = got;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      ev->ready |= SL__IO_RECV;
      ev->received = -errno;
    }
  }
  return 0;
}

static void plain_forget(sl__io *io, int fd) {
  (void)io;
  (void)fd;
}

static void plain_close(sl__io *io) { free(io); }

static const sl__io_ops plain_ops = {
    .name = "plain",
    .read = plain_read,
    .send_all = plain_send_all,
    .wait = plain_wait,
    .forget = plain_forget,
    .close = plain_close,
};

int sl__io_plain_open(sl__io **out) {
  plain_io *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->base.ops = &plain_ops;
  *out = &p->base;
  return 0;
}
