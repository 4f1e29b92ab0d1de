/*
 * Module-private declarations of codec/ (codec.c, tls.c). Nothing outside
 * codec/ includes this file.
 *
 * A connection is a socket plus, once sl_conn_tls_connect/accept succeeded,
 * an OpenSSL session on it. Every byte then goes through the session: the
 * message framing of codec.h lies inside TLS records. A TLS connection's
 * socket is non-blocking (waits are poll()s with the caller's timeout); a
 * plain one stays blocking, as the shipper's io_uring backend expects.
 */
#ifndef SL_CODEC_INT_H
#define SL_CODEC_INT_H

#include <openssl/ssl.h>

#include "codec.h"

struct sl_conn {
  int fd;
  char peer[80];
  sl_buf rbuf;           /* receive: header + body of the current message */
  sl_buf sbuf;           /* send: the framed message */
  uint64_t deadline_ns;  /* sl_conn_set_deadline: every wait ends by then; 0: none */
  int send_timeout_ms;   /* sl_conn_send's limit on a peer that reads nothing */
  /* TLS (tls.c) */
  SSL *ssl;              /* NULL: plain TCP */
  bool tls_failed;       /* a fatal TLS error: no close_notify at close */
  bool want_write;       /* the session must write before it can read on */
  char **ids;            /* the peer certificate's identities: CN, then DNS SANs */
  size_t nids;
  char tls_error[512];   /* why the last TLS call failed */
  char server_name[256]; /* client: the name the server's certificate must carry */
};

/* Non-blocking read and write of up to len bytes through the session:
 * > 0 bytes moved; 0 (read) the peer closed; -EAGAIN; or an error
 * (SL_EAUTH, SL_ECORRUPT, -errno) with c->tls_error set. */
long sl__tls_read(sl_conn *c, void *buf, size_t len);
long sl__tls_write(sl_conn *c, const void *buf, size_t len);
/* Send close_notify when the session is healthy, then free it. */
void sl__tls_close(sl_conn *c);

/* Wait for events on c's socket until timeout_ms (-1: none) or c's
 * deadline, whichever comes first: 0 or -ETIMEDOUT / -errno. */
int sl__conn_wait(sl_conn *c, short events, int timeout_ms);

#endif
