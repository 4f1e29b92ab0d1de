/*
 * tls.c: TLS 1.3 with mutual certificate authentication for replication
 * connections (codec.h, "TLS"), on OpenSSL 3.
 *
 * WHERE TLS SITS. The session wraps the connection's socket: every message
 * (codec.h WIRE FRAMING, CRC included) travels inside TLS records, so the
 * framing checks stay end to end and TLS adds confidentiality and peer
 * authentication. The shipper cannot hand a TLS socket to io_uring RECV and
 * SEND (the kernel would see ciphertext), so with TLS it reads and writes
 * through this session and keeps the ring for file reads, inotify and a
 * readiness poll of the socket (shipper/io.h). Kernel TLS (SSL_OP_ENABLE_KTLS)
 * would give the ring its socket back, but it needs the "tls" kernel module
 * and an OpenSSL built with KTLS, and a TLS 1.3 receive path must still
 * hand non-data records back to OpenSSL; a second code path for a speed-up
 * that loopback numbers do not ask for yet, so not taken.
 *
 * CONTEXTS (sl_tls_ctx_new): TLS 1.3 only (min = max = TLS1_3_VERSION);
 * our certificate chain and key, the CA that every peer certificate must
 * chain to; the server requires a client certificate
 * (SSL_VERIFY_FAIL_IF_NO_PEER_CERT), the client checks the server's
 * against the name it dialled (SSL_set1_host, or the IP address) and sends
 * it as SNI. No session resumption (no tickets, no session cache, hence no
 * 0-RTT early data): every connection is a full handshake with fresh
 * randoms and key shares from both sides, so a recorded session replayed
 * to the receiver fails at the client's Finished message and nothing of it
 * is read as data.
 *
 * IDENTITIES of the peer (sl_conn_identities): the subject's CN entries,
 * then every DNS subjectAltName, as UTF-8; a name with a control character,
 * space or NUL is dropped (an allow-list line could not name it).
 *
 * ERRORS (classify()), with the reason in c->tls_error:
 *   SL_EAUTH     a certificate was refused, by us (the verify callback names
 *                the certificate and why: unknown CA, expired, host name
 *                mismatch, ...) or by the peer (its alert: unknown CA, bad
 *                certificate, certificate required, ...), or the peer does
 *                not speak TLS 1.3 at all: configuration, not weather, so
 *                callers do not retry it blindly.
 *   SL_EEND      the peer closed (close_notify, or EOF; OpenSSL calls an
 *                EOF without close_notify "unexpected"; the message framing
 *                above decides whether a message was cut).
 *   -errno       the socket (-ECONNRESET, -EPIPE, ...).
 *   SL_ECORRUPT  any other TLS failure: a record that does not decrypt or
 *                authenticate (bytes changed or injected on the way), a
 *                malformed handshake.
 *
 * THE SOCKET BIO is our own (bio_*): OpenSSL's socket BIO writes with
 * send(..., 0), which raises SIGPIPE on a closed peer; ours passes
 * MSG_NOSIGNAL, as the plain path does, so a library user needs no signal
 * handling.
 *
 * THREADS: a context may be shared by any number of threads and
 * connections (OpenSSL's SSL_CTX is thread safe once set up); a session
 * belongs to its connection's one thread (codec.h THREADS), except that
 * sl_conn_shutdown from another thread only shuts the socket down.
 */
#include "codec_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_base.h"

struct sl_tls_ctx {
  SSL_CTX *ctx;
  bool server;
};

/* Not errors: what classify() returns when the session waits for the socket. */
enum { WANT_READ = 1, WANT_WRITE = 2 };

/* ---- the socket BIO ------------------------------------------------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

typedef struct bio_state {
  int fd;
  bool eof;
} bio_state;

static int bio_write(BIO *b, const char *buf, int len) {
  bio_state *st = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  ssize_t n = send(st->fd, buf, (size_t)len, MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return (int)n;
}

static int bio_read(BIO *b, char *buf, int len) {
  bio_state *st = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  ssize_t n = recv(st->fd, buf, (size_t)len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
  if (n == 0) st->eof = true;
  return (int)n;
}

static int bio_puts(BIO *b, const char *s) { return bio_write(b, s, (int)strlen(s)); }

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num;
  (void)ptr;
  bio_state *st = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH: return 1;
  case BIO_CTRL_EOF: return st && st->eof;
  default: return 0;
  }
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int bio_destroy(BIO *b) {
  free(BIO_get_data(b));
  BIO_set_data(b, NULL);
  return 1;
}

static void bio_method_init(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                               "shiplog socket");
  if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
      BIO_meth_set_puts(m, bio_puts) && BIO_meth_set_ctrl(m, bio_ctrl) &&
      BIO_meth_set_create(m, bio_create) && BIO_meth_set_destroy(m, bio_destroy)) {
    bio_method = m;
    return;
  }
  BIO_meth_free(m);
}

/* ---- errors ------------------------------------------------------------------- */

/* The first reason in OpenSSL's error queue (the root cause); the queue
 * is emptied. */
static int take_reason(char *text, size_t len) {
  unsigned long e = ERR_get_error();
  int reason = e ? ERR_GET_REASON(e) : 0;
  if (e && text[0] == 0) {
    const char *r = ERR_reason_error_string(e);
    snprintf(text, len, "%s", r ? r : "TLS error");
  }
  ERR_clear_error();
  return reason;
}

/* The peer's alert refusing the handshake (our certificate, our version). */
static bool peer_alert(int r) {
  switch (r) {
  case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
  case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
  case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
  case SSL_R_SSLV3_ALERT_NO_CERTIFICATE:
  case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
  case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
  case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
  case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
  case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
  case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    return true;
  default:
    return false;
  }
}

/* Bytes that are not TLS records: a plain-TCP (or HTTP) peer. */
static bool not_tls_reason(int r) {
  return r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_PACKET_LENGTH_TOO_LONG ||
         r == SSL_R_HTTP_REQUEST || r == SSL_R_HTTPS_PROXY_REQUEST || r == SSL_R_UNKNOWN_PROTOCOL;
}

/* SL_EAUTH: refused by either side, or no TLS 1.3 to speak (see ERRORS). */
static bool auth_reason(int r) {
  return peer_alert(r) || not_tls_reason(r) || r == SSL_R_CERTIFICATE_VERIFY_FAILED ||
         r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE || r == SSL_R_UNSUPPORTED_PROTOCOL ||
         r == SSL_R_NO_PROTOCOLS_AVAILABLE || r == SSL_R_VERSION_TOO_LOW;
}

/* Map the result ret of an SSL call on c (see ERRORS above). */
static int classify(sl_conn *c, int ret) {
  int err = errno;
  int e = SSL_get_error(c->ssl, ret);
  switch (e) {
  case SSL_ERROR_WANT_READ: return WANT_READ;
  case SSL_ERROR_WANT_WRITE: return WANT_WRITE;
  case SSL_ERROR_ZERO_RETURN:
    snprintf(c->tls_error, sizeof c->tls_error, "the peer closed the TLS session");
    return SL_EEND;
  case SSL_ERROR_SYSCALL:
    c->tls_failed = true;
    ERR_clear_error();
    if (err && err != EAGAIN) {
      snprintf(c->tls_error, sizeof c->tls_error, "%s", strerror(err));
      return -err;
    }
    snprintf(c->tls_error, sizeof c->tls_error, "the peer closed the connection");
    return SL_EEND;
  default: break;
  }
  c->tls_failed = true;
  char reason[160] = "";
  int r = take_reason(reason, sizeof reason);
  if (r == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    snprintf(c->tls_error, sizeof c->tls_error, "the peer closed the connection without ending "
             "the TLS session");
    return SL_EEND;
  }
  if (c->tls_error[0] == 0 || r != SSL_R_CERTIFICATE_VERIFY_FAILED) {
    /* The verify callback's text (naming the certificate) is better than
     * "certificate verify failed"; keep it when that is the reason. */
    if (not_tls_reason(r))
      snprintf(c->tls_error, sizeof c->tls_error, "the peer does not speak TLS (%s): a plain "
               "--insecure peer?", reason);
    else if (peer_alert(r))
      snprintf(c->tls_error, sizeof c->tls_error, "refused by the peer: %s", reason);
    else
      snprintf(c->tls_error, sizeof c->tls_error, "%s", reason);
  }
  return auth_reason(r) ? SL_EAUTH : SL_ECORRUPT;
}

static int verify_cb(int ok, X509_STORE_CTX *x) {
  if (ok) return ok;
  SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
  sl_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
  if (c && c->tls_error[0] == 0) {
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    int err = X509_STORE_CTX_get_error(x);
    char subject[160] = "?";
    if (cert) X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    if (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH)
      snprintf(c->tls_error, sizeof c->tls_error, "certificate %s does not name %s (host name "
               "mismatch; --tls-server-name sets the name to check)", subject, c->server_name);
    else
      snprintf(c->tls_error, sizeof c->tls_error, "certificate %s: %s", subject,
               X509_verify_cert_error_string(err));
  }
  return ok;
}

/* ---- contexts ------------------------------------------------------------------- */

/* The file must be readable; OpenSSL's own message for a missing file is
 * a "system library" line without the name. */
static int check_file(const char *what, const char *path) {
  if (!path || !*path) {
    sl_diag_error("TLS: no %s file given", what);
    return SL_EINVAL;
  }
  if (access(path, R_OK) != 0) {
    int rc = -errno;
    sl_diag_error("TLS %s %s: %s", what, path, sl_strerror(rc));
    return rc;
  }
  return 0;
}

static int ctx_fail(sl_tls_ctx *t, const char *what, const char *path) {
  char reason[160] = "";
  take_reason(reason, sizeof reason);
  sl_diag_error("TLS %s %s: %s", what, path, reason[0] ? reason : "cannot be used");
  sl_tls_ctx_free(t);
  return SL_EINVAL;
}

int sl_tls_ctx_new(bool server, const char *cert_file, const char *key_file, const char *ca_file,
                   sl_tls_ctx **out) {
  *out = NULL;
  int rc;
  if ((rc = check_file("certificate", cert_file)) || (rc = check_file("key", key_file)) ||
      (rc = check_file("CA", ca_file)))
    return rc;
  struct stat sb;
  if (stat(key_file, &sb) == 0 && (sb.st_mode & 077))
    sl_diag_warn("TLS key %s is readable by others (mode %04o): chmod 600 it", key_file,
                (unsigned)(sb.st_mode & 07777));
  if (pthread_once(&bio_once, bio_method_init) || !bio_method) return -ENOMEM;
  sl_tls_ctx *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->server = server;
  ERR_clear_error();
  t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!t->ctx) return ctx_fail(t, "context", "(OpenSSL)");
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(t->ctx, 0);
  if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1)
    return ctx_fail(t, "certificate", cert_file);
  if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1 &&
      ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
    return ctx_fail(t, "key", key_file);
  if (SSL_CTX_check_private_key(t->ctx) != 1) {
    ERR_clear_error();
    sl_diag_error("TLS key %s does not belong to certificate %s", key_file, cert_file);
    sl_tls_ctx_free(t);
    return SL_EINVAL;
  }
  if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) return ctx_fail(t, "CA", ca_file);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                     verify_cb);
  if (server) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (!names) return ctx_fail(t, "CA", ca_file);
    SSL_CTX_set_client_CA_list(t->ctx, names);
  }
  *out = t;
  return 0;
}

void sl_tls_ctx_free(sl_tls_ctx *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

/* ---- sessions --------------------------------------------------------------------- */

static int start(sl_conn *c, sl_tls_ctx *t) {
  bio_state *st = calloc(1, sizeof *st);
  if (!st) return -ENOMEM;
  st->fd = c->fd;
  BIO *bio = BIO_new(bio_method);
  c->ssl = bio ? SSL_new(t->ctx) : NULL;
  if (!c->ssl) {
    free(st);
    BIO_free(bio);
    ERR_clear_error();
    return -ENOMEM;
  }
  BIO_set_data(bio, st);
  SSL_set_bio(c->ssl, bio, bio);
  SSL_set_app_data(c->ssl, c);
  return 0;
}

/* The client checks the server's certificate against the name it dialled. */
static int check_name(sl_conn *c, const char *server_name) {
  uint8_t ip[16];
  int ok;
  snprintf(c->server_name, sizeof c->server_name, "%s", server_name);
  if (inet_pton(AF_INET, server_name, ip) == 1 || inet_pton(AF_INET6, server_name, ip) == 1) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), server_name);
  } else {
    SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set_tlsext_host_name(c->ssl, server_name) == 1 && SSL_set1_host(c->ssl, server_name) == 1;
  }
  if (ok) return 0;
  ERR_clear_error();
  snprintf(c->tls_error, sizeof c->tls_error, "'%s' is not a host name to check", server_name);
  return SL_EINVAL;
}

/* A peer identity (see IDENTITIES); names that are not plain text are skipped. */
static int add_id(sl_conn *c, const ASN1_STRING *s) {
  unsigned char *u = NULL;
  int n = ASN1_STRING_to_UTF8(&u, s);
  if (n <= 0) return 0;
  bool ok = strlen((char *)u) == (size_t)n;
  for (int i = 0; ok && i < n; i++)
    if (u[i] <= 0x20 || u[i] == 0x7f) ok = false;
  int rc = 0;
  if (ok) {
    char **ids = realloc(c->ids, (c->nids + 1) * sizeof *ids);
    char *id = strdup((char *)u);
    if (ids) c->ids = ids;
    if (!ids || !id) {
      free(id);
      rc = -ENOMEM;
    } else {
      c->ids[c->nids++] = id;
    }
  }
  OPENSSL_free(u);
  return rc;
}

static int collect_ids(sl_conn *c) {
  X509 *x = SSL_get0_peer_certificate(c->ssl);
  if (!x) return 0;
  X509_NAME *name = X509_get_subject_name(x);
  int rc = 0;
  for (int i = -1; rc == 0 && (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;)
    rc = add_id(c, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  for (int i = 0; rc == 0 && gens && i < sk_GENERAL_NAME_num(gens); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (g->type == GEN_DNS) rc = add_id(c, g->d.dNSName);
  }
  GENERAL_NAMES_free(gens);
  return rc;
}

static int handshake(sl_conn *c, bool server) {
  for (;;) {
    ERR_clear_error();
    int ret = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
    if (ret == 1) return collect_ids(c);
    int rc = classify(c, ret);
    if (rc == WANT_READ || rc == WANT_WRITE) {
      rc = sl__conn_wait(c, rc == WANT_READ ? POLLIN : POLLOUT, -1);
      if (rc == -ETIMEDOUT)
        snprintf(c->tls_error, sizeof c->tls_error, "the TLS handshake did not finish in time");
      if (rc) return rc;
      continue;
    }
    return rc;
  }
}

/* A TLS client's first byte is a handshake record's type, 0x16: anything
 * else is a plain-TCP peer (SL_EVERSION), answered before any session
 * exists, so in plain framing. */
static int peek_client(sl_conn *c) {
  uint8_t b = 0;
  for (;;) {
    int rc = sl__conn_wait(c, POLLIN, -1);
    if (rc == -ETIMEDOUT) {
      snprintf(c->tls_error, sizeof c->tls_error, "no TLS handshake started in time");
      return rc;
    }
    if (rc) return rc;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      snprintf(c->tls_error, sizeof c->tls_error, "the peer closed the connection");
      return SL_EEND;
    }
    if (n > 0) break;
    if (errno != EINTR && errno != EAGAIN) {
      snprintf(c->tls_error, sizeof c->tls_error, "%s", strerror(errno));
      return -errno;
    }
  }
  if (b == 0x16) return 0;
  snprintf(c->tls_error, sizeof c->tls_error, "not a TLS client (first byte 0x%02x): a plain "
           "TCP (--insecure) shipper?", b);
  return SL_EVERSION;
}

/* Set up the session and run the handshake (after, for a server, a look at
 * the first byte), all within timeout_ms: c's deadline is moved in for the
 * duration. */
static int begin(sl_conn *c, sl_tls_ctx *t, int timeout_ms, const char *server_name) {
  uint64_t saved = c->deadline_ns;
  uint64_t until = sl_mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
  if (timeout_ms >= 0 && (!saved || until < saved)) c->deadline_ns = until;
  c->tls_error[0] = 0;
  int rc = 0;
  int fl = fcntl(c->fd, F_GETFL);
  if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) rc = -errno;
  if (rc == 0 && t->server) rc = peek_client(c);
  if (rc == 0) rc = start(c, t);
  if (rc == 0 && server_name) rc = check_name(c, server_name);
  if (rc == 0) rc = handshake(c, t->server);
  c->deadline_ns = saved;
  return rc;
}

int sl_conn_tls_connect(sl_conn *c, sl_tls_ctx *t, const char *server_name, int timeout_ms) {
  return t->server || c->ssl ? SL_EINVAL : begin(c, t, timeout_ms, server_name);
}

int sl_conn_tls_accept(sl_conn *c, sl_tls_ctx *t, int timeout_ms) {
  return !t->server || c->ssl ? SL_EINVAL : begin(c, t, timeout_ms, NULL);
}

bool sl_conn_is_tls(const sl_conn *c) { return c->ssl != NULL; }

const char *sl_conn_tls_error(const sl_conn *c) { return c->tls_error; }

size_t sl_conn_identities(const sl_conn *c, const char *const **ids) {
  *ids = (const char *const *)c->ids;
  return c->nids;
}

long sl__tls_read(sl_conn *c, void *buf, size_t len) {
  size_t n = 0;
  ERR_clear_error();
  c->want_write = false;
  if (SSL_read_ex(c->ssl, buf, len, &n) == 1) return (long)n;
  int rc = classify(c, 0);
  if (rc == WANT_READ || rc == WANT_WRITE) {
    c->want_write = rc == WANT_WRITE;
    return -EAGAIN;
  }
  return rc == SL_EEND ? 0 : rc;
}

long sl__tls_write(sl_conn *c, const void *buf, size_t len) {
  size_t n = 0;
  ERR_clear_error();
  if (SSL_write_ex(c->ssl, buf, len, &n) == 1) return (long)n;
  int rc = classify(c, 0);
  if (rc == WANT_READ || rc == WANT_WRITE) return -EAGAIN;
  return rc == SL_EEND ? -EPIPE : rc;
}

void sl__tls_close(sl_conn *c) {
  if (!c->ssl) return;
  /* close_notify: the peer can tell our end from a cut connection. One
   * non-blocking attempt; a fatal error forbids it. */
  if (!c->tls_failed && SSL_is_init_finished(c->ssl)) SSL_shutdown(c->ssl);
  ERR_clear_error();
  SSL_free(c->ssl);
  c->ssl = NULL;
  for (size_t i = 0; i < c->nids; i++) free(c->ids[i]);
  free(c->ids);
  c->ids = NULL;
  c->nids = 0;
}
