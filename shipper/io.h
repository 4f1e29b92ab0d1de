/*
 * io.h: the shipper's I/O backends (module-private to shipper/).
 *
 * The shipper does four kinds of I/O and nothing else: it reads segment
 * data at an offset, waits for any of {the log changed (inotify), the
 * receiver sent something, a timeout}, sends whole messages, and receives
 * whatever the receiver sent. Two backends implement them:
 *
 *   io_uring.c  one ring: READ for file data and for the inotify fd, RECV
 *               on the socket, SEND, and a ring timeout for the wait.
 *               The inotify READ and the socket RECV stay armed between
 *               waits, so a wait is one io_uring_enter().
 *   io_plain.c  pread / poll / read / recv / send, for kernels or sandboxes
 *               (seccomp, containers) without io_uring.
 *
 * A TLS connection's bytes must pass through its OpenSSL session, so for
 * one the caller sets sock_poll: the backend then only waits for the
 * socket to become readable (io_uring: POLL_ADD instead of RECV) and
 * reports SL__IO_READABLE; the caller reads and sends through the session
 * (sl_conn_read_some / sl_conn_write_all), never with send_all.
 *
 * sl__io_open() picks one: the caller's choice, else $SHIPLOG_IO
 * ("uring" or "plain"), else io_uring when the probe succeeds, else plain,
 * announced once per process ("io_uring unavailable (reason); using plain
 * reads").
 *
 * BUFFER OWNERSHIP (completion-based I/O): a receive buffer passed to
 * wait() belongs to the kernel until wait() reports SL__IO_RECV for it or
 * forget() is called for its socket; the caller must neither move nor free
 * it in between. The same holds for the backend's own inotify buffer. A fd
 * with I/O in flight must be forgotten before it is closed.
 *
 * THREADS: an sl__io belongs to one thread.
 */
#ifndef SL_SHIPPER_IO_H
#define SL_SHIPPER_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shipper.h"

typedef struct sl__io sl__io;

enum { SL__IO_NOTIFY = 1u, SL__IO_RECV = 2u, SL__IO_READABLE = 4u };

typedef struct sl__io_waitset {
  int notify_fd;          /* inotify fd (O_NONBLOCK), or -1 */
  int sock_fd;            /* connected socket, or -1 */
  bool sock_poll;         /* TLS: only report sock_fd readable (SL__IO_READABLE) */
  uint8_t *recv_buf;      /* received bytes land here (see BUFFER OWNERSHIP) */
  size_t recv_len;        /* > 0 when sock_fd >= 0 and not sock_poll */
  int timeout_ms;         /* >= 0 */
} sl__io_waitset;

typedef struct sl__io_events {
  unsigned ready;         /* SL__IO_NOTIFY | SL__IO_RECV | SL__IO_READABLE; 0: timeout or signal */
  const uint8_t *notify;  /* inotify records read; valid until the next wait */
  size_t notify_len;
  long received;          /* SL__IO_RECV: bytes received, 0 = peer closed, or -errno */
} sl__io_events;

typedef struct sl__io_ops {
  const char *name;       /* "io_uring" or "plain" */
  /* Read up to len bytes at off: the count (short at end of file, and
   * possibly short before it), or -errno. */
  long (*read)(sl__io *io, int fd, void *buf, size_t len, uint64_t off);
  /* Send all len bytes; -ETIMEDOUT when no progress for timeout_ms. */
  int (*send_all)(sl__io *io, int fd, const void *buf, size_t len, int timeout_ms);
  /* Wait for an event or the timeout. Returns 0 (ev filled) or -errno. */
  int (*wait)(sl__io *io, const sl__io_waitset *w, sl__io_events *ev);
  /* Cancel and reap whatever is in flight on fd (before closing it). */
  void (*forget)(sl__io *io, int fd);
  void (*close)(sl__io *io);
} sl__io_ops;

struct sl__io {
  const sl__io_ops *ops;
};

/* Pick and open a backend (see above). A backend named explicitly, by the
 * caller or $SHIPLOG_IO, that cannot be opened is an error. */
int sl__io_open(sl_io_backend want, sl__io **out);

/* The backends. uring_open returns -errno (or SL_EVERSION for a kernel that
 * lacks an opcode) with the reason in why. */
int sl__io_uring_open(sl__io **out, char *why, size_t whylen);
int sl__io_plain_open(sl__io **out);

static inline const char *sl__io_name(const sl__io *io) { return io->ops->name; }
static inline long sl__io_read(sl__io *io, int fd, void *buf, size_t len, uint64_t off) {
  return io->ops->read(io, fd, buf, len, off);
}
static inline int sl__io_send_all(sl__io *io, int fd, const void *buf, size_t len, int timeout_ms) {
  return io->ops->send_all(io, fd, buf, len, timeout_ms);
}
static inline int sl__io_wait(sl__io *io, const sl__io_waitset *w, sl__io_events *ev) {
  return io->ops->wait(io, w, ev);
}
static inline void sl__io_forget(sl__io *io, int fd) { io->ops->forget(io, fd); }
static inline void sl__io_close(sl__io *io) {
  if (io) io->ops->close(io);
}

#endif
