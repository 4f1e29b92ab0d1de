/*
 * codec.c: framing of replication messages, batch sealing/opening, and
 * TCP connections (plain, or TLS through tls.c). The formats are in codec.h.
 *
 * Receiving reads the 8-byte header first and checks the length against the
 * caller's limit before allocating, so a hostile peer cannot make us
 * allocate more than max_body. A connection keeps one receive buffer and one
 * send buffer that grow to the largest message seen and are reused.
 *
 * Every wait is a poll() bounded by the caller's timeout and by the
 * connection's deadline (sl_conn_set_deadline), so a peer that sends
 * nothing, or one byte now and then, holds a connection only so long.
 * Sends never block without a limit either: a peer that stops reading is
 * -ETIMEDOUT after send_timeout_ms.
 */
#include "codec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypt.h"
#include "lineage.h"
#include "log.h"
#include "sl_base.h"

/* ---- messages ------------------------------------------------------------------ */

int sl_msg_encode(const Shiplog__Repl__Message *m, sl_buf *out) {
  size_t body = protobuf_c_message_get_packed_size(&m->base);
  if (body == 0 || body > SL_MSG_MAX) return SL_ETOOBIG;
  int rc = sl_buf_reserve(out, out->len + SL_MSG_HEADER_SIZE + body);
  if (rc) return rc;
  uint8_t *h = out->data + out->len;
  protobuf_c_message_pack(&m->base, h + SL_MSG_HEADER_SIZE);
  sl_put_le32(h, (uint32_t)body);
  uint32_t crc = sl_crc32c(0, h, 4);
  sl_put_le32(h + 4, sl_crc32c(crc, h + SL_MSG_HEADER_SIZE, body));
  out->len += SL_MSG_HEADER_SIZE + body;
  return 0;
}

static int check_header(const uint8_t *h, size_t max_body, uint32_t *body) {
  *body = sl_get_le32(h);
  if (*body == 0) return SL_ECORRUPT;
  if (*body > max_body) return SL_ETOOBIG;
  return 0;
}

static int unpack_body(const uint8_t *h, uint32_t body, Shiplog__Repl__Message **out) {
  uint32_t crc = sl_crc32c(sl_crc32c(0, h, 4), h + SL_MSG_HEADER_SIZE, body);
  if (crc != sl_get_le32(h + 4)) return SL_ECORRUPT;
  *out = shiplog__repl__message__unpack(NULL, body, h + SL_MSG_HEADER_SIZE);
  if (!*out) return SL_ECORRUPT;
  if ((*out)->body_case == SHIPLOG__REPL__MESSAGE__BODY__NOT_SET) {
    sl_msg_free(*out);
    *out = NULL;
    return SL_ECORRUPT;
  }
  return 0;
}

int sl_msg_decode(const uint8_t *buf, size_t len, size_t max_body,
                  Shiplog__Repl__Message **out, size_t *consumed) {
  *out = NULL;
  if (len < SL_MSG_HEADER_SIZE) return SL_ETRUNCATED;
  uint32_t body;
  int rc = check_header(buf, max_body, &body);
  if (rc) return rc;
  if (len - SL_MSG_HEADER_SIZE < body) return SL_ETRUNCATED;
  rc = unpack_body(buf, body, out);
  if (rc) return rc;
  *consumed = SL_MSG_HEADER_SIZE + (size_t)body;
  return 0;
}

void sl_msg_free(Shiplog__Repl__Message *m) {
  if (m) shiplog__repl__message__free_unpacked(m, NULL);
}

const char *sl_msg_kind(const Shiplog__Repl__Message *m) {
  switch (m->body_case) {
  case SHIPLOG__REPL__MESSAGE__BODY_HELLO: return "hello";
  case SHIPLOG__REPL__MESSAGE__BODY_WELCOME: return "welcome";
  case SHIPLOG__REPL__MESSAGE__BODY_BATCH: return "batch";
  case SHIPLOG__REPL__MESSAGE__BODY_ACK: return "ack";
  case SHIPLOG__REPL__MESSAGE__BODY_HEARTBEAT: return "heartbeat";
  case SHIPLOG__REPL__MESSAGE__BODY_ERROR: return "error";
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_BEGIN: return "base-begin";
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_CHUNK: return "base-chunk";
  case SHIPLOG__REPL__MESSAGE__BODY_BASE_END: return "base-end";
  default: return "unknown";
  }
}

void sl_msg_error(Shiplog__Repl__Message *m, Shiplog__Repl__Error *e,
                  Shiplog__Repl__ErrorCode code, bool permanent, const char *text) {
  shiplog__repl__message__init(m);
  shiplog__repl__error__init(e);
  e->code = code;
  e->message = (char *)text;
  e->has_permanent = true;
  e->permanent = permanent;
  m->body_case = SHIPLOG__REPL__MESSAGE__BODY_ERROR;
  m->error = e;
}

int sl_base_chunk_check(const Shiplog__Repl__BaseChunk *c, uint64_t expect, size_t max) {
  if (c->offset != expect) return SL_EGAP;
  if (c->data.len > max) return SL_ETOOBIG;
  return c->data.len == 0 ? SL_EINVAL : 0;
}

int sl_base_end_check(const Shiplog__Repl__BaseEnd *e, uint64_t size, uint32_t crc) {
  if (e->size != size) return SL_ETRUNCATED;
  return e->crc32c == crc ? 0 : SL_ECORRUPT;
}

/* ---- batches ------------------------------------------------------------------- */

int sl_batch_encrypt_frames(struct sl_keyring *kr, const uint8_t store_id[SL_STORE_ID_SIZE], const uint8_t *frames,
                            size_t len, uint64_t from, uint64_t cs_before, bool lz4, sl_buf *out, uint64_t *txid) {
  uint64_t cs = cs_before;
  size_t off = 0;
  out->len = 0;
  *txid = 0;
  while (off < len) {
    const uint8_t *frame = frames + off, *payload, *ct;
    uint32_t plen;
    size_t flen, slen, ct_len;
    sl_sealed_meta m = {0}, already;
    int rc = sl_frame_decode(frame, len - off, &payload, &plen, &flen);
    if (rc == 0) rc = sl_txn_peek(payload, plen, &m.txid, &m.commit_us, &m.epoch);
    if (rc) return rc;
    *txid = m.txid;
    off += flen;
    if (m.txid < from) continue;
    if ((rc = sl_buf_reserve(out, out->len + SL_FRAME_HEADER_SIZE + plen + SL_CRYPT_FRAME_EXTRA))) return rc;
    uint8_t *dst = out->data + out->len;
    cs = m.checksum = sl_frame_lineage(cs, m.txid, frame, plen);
    if (sl_crypt_frame_parse(payload, plen, &already, &ct, &ct_len) == 0) {
      if (already.lz4_len && !lz4) return SL_EVERSION; /* compressed, for an archive that cannot read it */
      memcpy(dst, frame, flen);
      out->len += flen;
      continue;
    }
    if ((rc = sl_crypt_seal_frame(kr, NULL, store_id, &m, payload, plen, lz4, dst + SL_FRAME_HEADER_SIZE, &slen)))
      return rc;
    sl_frame_header_encode(dst + SL_FRAME_HEADER_SIZE, (uint32_t)slen, dst);
    out->len += SL_FRAME_HEADER_SIZE + slen;
  }
  return 0;
}

int sl_batch_seal(const uint8_t *frames, size_t len, uint64_t first_txid, uint64_t last_txid,
                  bool compress, sl_buf *scratch, Shiplog__Repl__Batch *out) {
  return sl_batch_seal_crc(frames, len, sl_crc32c(0, frames, len), first_txid, last_txid, compress,
                           scratch, out);
}

int sl_batch_seal_crc(const uint8_t *frames, size_t len, uint32_t raw_crc, uint64_t first_txid,
                      uint64_t last_txid, bool compress, sl_buf *scratch, Shiplog__Repl__Batch *out) {
  if (len == 0 || len > SL_BATCH_RAW_MAX) return SL_ETOOBIG;
  shiplog__repl__batch__init(out);
  out->first_txid = first_txid;
  out->last_txid = last_txid;
  out->raw_len = (uint32_t)len;
  out->raw_crc32c = raw_crc;
  out->has_compression = true;
  if (compress) {
    int bound = LZ4_compressBound((int)len);
    int rc = sl_buf_reserve(scratch, (size_t)bound);
    if (rc) return rc;
    int n = LZ4_compress_default((const char *)frames, (char *)scratch->data, (int)len, bound);
    if (n <= 0) return SL_EINVAL;
    scratch->len = (size_t)n;
    out->compression = SHIPLOG__REPL__COMPRESSION__COMPRESSION_LZ4;
    out->data.data = scratch->data;
    out->data.len = (size_t)n;
  } else {
    out->compression = SHIPLOG__REPL__COMPRESSION__COMPRESSION_NONE;
    out->data.data = (uint8_t *)frames;
    out->data.len = len;
  }
  return 0;
}

int sl_batch_open(const Shiplog__Repl__Batch *b, size_t max_raw, sl_buf *raw) {
  if (b->raw_len == 0 || b->raw_len > max_raw) return SL_ETOOBIG;
  if (b->first_txid == 0 || b->last_txid < b->first_txid) return SL_EGAP;
  int rc = sl_buf_reserve(raw, b->raw_len);
  if (rc) return rc;
  Shiplog__Repl__Compression comp =
      b->has_compression ? b->compression : SHIPLOG__REPL__COMPRESSION__COMPRESSION_NONE;
  if (comp == SHIPLOG__REPL__COMPRESSION__COMPRESSION_LZ4) {
    if (b->data.len > (size_t)LZ4_compressBound((int)b->raw_len)) return SL_ECORRUPT;
    int n = LZ4_decompress_safe((const char *)b->data.data, (char *)raw->data, (int)b->data.len,
                                (int)b->raw_len);
    if (n != (int)b->raw_len) return SL_ECORRUPT;
  } else if (comp == SHIPLOG__REPL__COMPRESSION__COMPRESSION_NONE) {
    if (b->data.len != b->raw_len) return SL_ECORRUPT;
    memcpy(raw->data, b->data.data, b->raw_len);
  } else {
    return SL_EVERSION;
  }
  raw->len = b->raw_len;
  if (sl_crc32c(0, raw->data, raw->len) != b->raw_crc32c) return SL_ECORRUPT;

  /* Walk the frames: each whole with a good CRC, txids dense first..last. */
  uint64_t expect = b->first_txid;
  size_t off = 0;
  while (off < raw->len) {
    const uint8_t *payload;
    uint32_t plen;
    size_t flen;
    rc = sl_frame_decode(raw->data + off, raw->len - off, &payload, &plen, &flen);
    if (rc) return rc == SL_ETRUNCATED ? SL_ECORRUPT : rc;
    uint64_t txid, ts, epoch;
    rc = sl_txn_peek(payload, plen, &txid, &ts, &epoch);
    if (rc) return rc;
    if (txid != expect) return SL_EGAP;
    expect++;
    off += flen;
  }
  if (expect != b->last_txid + 1) return SL_EGAP;
  return 0;
}

/* ---- connections --------------------------------------------------------------- */

#define SEND_TIMEOUT_MS 30000
#define BODY_TIMEOUT_MS 30000

static void describe_peer(int fd, char *out, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char host[64] = "?";
  int port = 0;
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
      port = ntohs(s4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
      port = ntohs(s6->sin6_port);
    }
  }
  snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

int sl_conn_wrap(int fd, sl_conn **out) {
  sl_conn *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->fd = fd;
  c->send_timeout_ms = SEND_TIMEOUT_MS;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  describe_peer(fd, c->peer, sizeof c->peer);
  *out = c;
  return 0;
}

static int wait_fd(int fd, short events, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = events};
  for (;;) {
    int n = poll(&p, 1, timeout_ms);
    if (n > 0) return 0;
    if (n == 0) return -ETIMEDOUT;
    if (errno != EINTR) return -errno;
  }
}

int sl__conn_wait(sl_conn *c, short events, int timeout_ms) {
  int ms = timeout_ms;
  if (c->deadline_ns) {
    uint64_t now = sl_mono_ns();
    if (now >= c->deadline_ns) return -ETIMEDOUT;
    uint64_t left = (c->deadline_ns - now + 999999) / 1000000;
    if (ms < 0 || left < (uint64_t)ms) ms = (int)SL_MIN(left, (uint64_t)INT32_MAX);
  }
  return wait_fd(c->fd, events, ms);
}

int sl_conn_connect(const char *hostport, int timeout_ms, sl_conn **out) {
  struct addrinfo *res;
  int rc = sl_resolve(hostport, false, &res);
  if (rc) return rc;
  int fd = -1;
  rc = -ECONNREFUSED;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { rc = -errno; continue; }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) { rc = 0; break; }
    rc = -errno;
    if (rc == -EINPROGRESS) {
      rc = wait_fd(fd, POLLOUT, timeout_ms);
      if (rc == 0) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        rc = -err;
      }
      if (rc == 0) break;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (rc) return rc;
  /* Back to blocking mode: sends block, receives wait with poll first. */
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) { rc = -errno; close(fd); return rc; }
  rc = sl_conn_wrap(fd, out);
  if (rc) close(fd);
  return rc;
}

int sl_conn_fd(const sl_conn *c) { return c->fd; }
const char *sl_conn_peer(const sl_conn *c) { return c->peer; }

void sl_conn_set_deadline(sl_conn *c, uint64_t mono_ns) { c->deadline_ns = mono_ns; }
void sl_conn_set_send_timeout(sl_conn *c, int timeout_ms) { c->send_timeout_ms = timeout_ms; }

bool sl_conn_pending(const sl_conn *c) { return c->ssl && SSL_has_pending(c->ssl); }

long sl_conn_read_some(sl_conn *c, void *buf, size_t len) {
  int frc = sl_fault(SL_FAULT_NET_RECV);
  if (frc) return frc;
  if (c->ssl) return sl__tls_read(c, buf, len);
  for (;;) {
    ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
    if (n >= 0) return (long)n;
    if (errno == EWOULDBLOCK) return -EAGAIN;
    if (errno != EINTR) return -errno;
  }
}

int sl_conn_write_all(sl_conn *c, const void *buf, size_t len, int timeout_ms) {
  const uint8_t *p = buf;
  size_t off = 0;
  while (off < len) {
    int rc = sl_fault(SL_FAULT_NET_SEND);
    if (rc) return rc;
    long n;
    if (c->ssl) {
      n = sl__tls_write(c, p + off, len - off);
    } else {
      n = send(c->fd, p + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) n = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n == -EINTR) continue;
    if (n != -EAGAIN) return n ? (int)n : -EPIPE;
    /* A TLS write may need to read first (a post-handshake message). */
    rc = sl__conn_wait(c, c->ssl && SSL_want_read(c->ssl) ? POLLIN : POLLOUT, timeout_ms);
    if (rc) return rc;
  }
  return 0;
}

int sl_conn_send(sl_conn *c, const Shiplog__Repl__Message *m) {
  c->sbuf.len = 0;
  int rc = sl_msg_encode(m, &c->sbuf);
  if (rc) return rc;
  rc = sl_conn_write_all(c, c->sbuf.data, c->sbuf.len, c->send_timeout_ms);
  /* Don't keep a huge send buffer after one large batch. */
  if (c->sbuf.cap > (8u << 20)) sl_buf_free(&c->sbuf);
  return rc;
}

/* Read exactly len bytes into buf, each wait bounded by timeout_ms. The
 * peer closing before the first byte is SL_EEND, inside them SL_ETRUNCATED. */
static int read_exact(sl_conn *c, uint8_t *buf, size_t len, int timeout_ms) {
  size_t off = 0;
  while (off < len) {
    /* Bytes TLS already decrypted do not make the socket readable. */
    if (!sl_conn_pending(c)) {
      int rc = sl__conn_wait(c, c->want_write ? POLLOUT : POLLIN, timeout_ms);
      if (rc) return rc;
    }
    long n = sl_conn_read_some(c, buf + off, len - off);
    if (n == 0) return off ? SL_ETRUNCATED : SL_EEND;
    if (n == -EAGAIN || n == -EINTR) continue;
    if (n < 0) return (int)n;
    off += (size_t)n;
  }
  return 0;
}

int sl_conn_recv(sl_conn *c, int timeout_ms, size_t max_body, Shiplog__Repl__Message **out) {
  *out = NULL;
  int rc = sl_buf_reserve(&c->rbuf, SL_MSG_HEADER_SIZE);
  if (rc) return rc;
  rc = read_exact(c, c->rbuf.data, SL_MSG_HEADER_SIZE, timeout_ms);
  if (rc) return rc;
  uint32_t body;
  rc = check_header(c->rbuf.data, max_body, &body);
  if (rc) return rc;
  rc = sl_buf_reserve(&c->rbuf, SL_MSG_HEADER_SIZE + (size_t)body);
  if (rc) return rc;
  /* Once a header arrived, the body must follow promptly too. */
  rc = read_exact(c, c->rbuf.data + SL_MSG_HEADER_SIZE, body, timeout_ms < 0 ? BODY_TIMEOUT_MS : timeout_ms);
  if (rc) return rc == -ETIMEDOUT || rc == SL_EEND ? SL_ETRUNCATED : rc;
  rc = unpack_body(c->rbuf.data, body, out);
  if (c->rbuf.cap > (8u << 20)) sl_buf_free(&c->rbuf);
  return rc;
}

void sl_conn_shutdown(sl_conn *c) { shutdown(c->fd, SHUT_RDWR); }

void sl_conn_linger(sl_conn *c, int ms, atomic_int *stop) {
  uint8_t junk[4096];
  uint64_t end = sl_mono_ns() + (uint64_t)ms * 1000000u;
  shutdown(c->fd, SHUT_WR);
  for (uint64_t now = sl_mono_ns(); now < end && !(stop && *stop); now = sl_mono_ns()) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0) break;
    ssize_t n = recv(c->fd, junk, sizeof junk, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
  }
}

void sl_conn_close(sl_conn *c) {
  if (!c) return;
  sl__tls_close(c);
  close(c->fd);
  sl_buf_free(&c->rbuf);
  sl_buf_free(&c->sbuf);
  free(c);
}

/* ---- lineage ------------------------------------------------------------------------ */

void sl_msg_history_put(const sl_history *h, Shiplog__Repl__EpochStart *storage, Shiplog__Repl__EpochStart **ptrs,
                        Shiplog__Repl__EpochStart ***v, size_t *n) {
  for (size_t i = 0; i < h->n; i++) {
    shiplog__repl__epoch_start__init(&storage[i]);
    storage[i].epoch = h->e[i].epoch;
    storage[i].first_txid = h->e[i].first_txid;
    storage[i].prev_checksum = h->e[i].prev_checksum;
    ptrs[i] = &storage[i];
  }
  *v = ptrs;
  *n = h->n;
}

int sl_msg_history_get(Shiplog__Repl__EpochStart *const *v, size_t n, sl_history *h) {
  h->n = 0;
  for (size_t i = 0; i < n; i++)
    if (sl_history_add(h, v[i]->epoch, v[i]->first_txid, v[i]->prev_checksum)) return SL_ECORRUPT;
  return 0;
}

/* ---- ROUTING: the primary's Bolt address beside its store ------------------------------ */
int sl_bolt_address_read(const char *store_dir, char *buf, size_t len) {
  char path[4096];
  uint8_t *data = NULL;
  size_t n = 0;
  snprintf(path, sizeof path, "%s/" SL_BOLT_ADDRESS_FILE, store_dir);
  int rc = sl_read_file_held(path, len, &data, &n); /* -ENOENT: serve is gone */
  if (rc) return rc;
  if (n && data[n - 1] == '\n') n--;
  rc = n && n < len && !memchr(data, '\n', n) && !memchr(data, 0, n) ? 0 : SL_EINVAL;
  if (!rc) {
    memcpy(buf, data, n);
    buf[n] = 0;
  }
  free(data);
  return rc;
}

int sl_bolt_address_write(const char *store_dir, const char *address, int *held_fd) {
  char line[300];
  int n = snprintf(line, sizeof line, "%s\n", address);
  if (n < 0 || (size_t)n >= sizeof line) return SL_EINVAL;
  return sl_write_file_held(store_dir, SL_BOLT_ADDRESS_FILE, line, (size_t)n, held_fd);
}

void sl_bolt_address_remove(const char *store_dir, int held_fd) {
  char path[4096];
  snprintf(path, sizeof path, "%s/" SL_BOLT_ADDRESS_FILE, store_dir);
  unlink(path); /* first: while it is there, it is held */
  close(held_fd);
}
