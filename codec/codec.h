/*
 * codec: the bytes a shipper and a receiver exchange, shared by both sides
 * (neither includes the other). Messages are proto/replication.proto.
 *
 * WIRE FRAMING (one message; integers little-endian)
 *   0  4  body length B (1 .. SL_MSG_MAX)
 *   4  4  CRC32C over bytes 0..3 followed by the B body bytes
 *   8  B  body: a packed shiplog.repl.Message
 * A receiver reads the 8-byte header, refuses a length over its limit before
 * allocating (SL_ETOOBIG), reads the body, checks the CRC (SL_ECORRUPT) and
 * unpacks (SL_ECORRUPT on malformed protobuf). TLS wraps these bytes (see
 * TLS below); the CRC stays, so plain TCP is checked end to end as well.
 *
 * BATCH PAYLOAD (the one description of a Batch's bytes; the shipper and
 * the receiver point here)
 *   Batch.data is the LZ4 block compression (or a copy, COMPRESSION_NONE) of
 *   raw_len bytes of consecutive log frames exactly as store/log.h lays them
 *   out in the primary's segments:
 *       [len 4 LE][crc32c 4 LE over len+payload][payload: shiplog.Transaction]...
 *   covering txids first_txid..last_txid (dense, inclusive), raw_crc32c over
 *   the raw bytes. last_commit_us is last_txid's commit time, committed_txid
 *   the primary's durable mark when sent, sent_time_us the primary's clock,
 *   checksum the rolling log checksum through last_txid (store/log.h
 *   LINEAGE). A batch never holds a frame above the durable mark and never
 *   splits one. With a keyring (at-rest encryption) every frame is sealed
 *   (store/log.h SEALED FRAMES; sl_batch_encrypt_frames) before the batch is
 *   compressed, and Batch.key_id names the key; the primary's own log stays
 *   plaintext. sl_batch_open() decompresses into the caller's buffer, checks
 *   raw_crc32c, then walks the frames: every frame's CRC, txids dense from
 *   first_txid to last_txid. Only then does the receiver archive them.
 *
 * TLS (codec/tls.c has the design): TLS 1.3 only, both sides present a
 * certificate that must chain to the other side's CA file; the client also
 * checks the server's name. No session resumption, so no 0-RTT data and no
 * replayable session. A connection becomes a TLS one with
 * sl_conn_tls_connect / sl_conn_tls_accept right after TCP is up; from then
 * on sl_conn_send/recv/read_some/write_all go through the session.
 *
 * THREADS: a plain sl_conn is used by one thread at a time for sending and
 * one for receiving (a send lock is the caller's business); a TLS one by
 * one thread at a time for both (an OpenSSL session is not safe for a
 * concurrent read and write). sl_conn_shutdown may be called from any
 * thread. Other functions are pure; an sl_tls_ctx may be shared by threads.
 */
#ifndef SL_CODEC_H
#define SL_CODEC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "replication.pb-c.h"

#include "log.h"
#include "sl_base.h" /* sl_buf */

#define SL_PROTOCOL_VERSION 1
#define SL_MSG_HEADER_SIZE 8
#define SL_MSG_MAX (72u << 20)          /* largest message body accepted */
#define SL_BATCH_RAW_MAX (64u << 20)    /* largest raw batch a receiver may be set to take */
/* A batch of ONE frame may be this large whatever the receiver's batch limit
 * (max_batch_bytes): a frame is never split, so a receiver that refused it
 * would stop its stream for good. Every frame a store commits fits
 * (store/log.h SL_FRAME_SHIP_MAX); the shipper sends a larger one alone. */
#define SL_BATCH_FRAME_MAX (SL_FRAME_SHIP_MAX + SL_FRAME_HEADER_SIZE)
/* The largest raw batch a receiver whose limit is max_raw accepts when it
 * holds frames first..last (SL_BATCH_FRAME_MAX for a single frame). */
#define SL_BATCH_LIMIT(max_raw, first, last) \
  ((first) == (last) && (max_raw) < SL_BATCH_FRAME_MAX ? (size_t)SL_BATCH_FRAME_MAX : (size_t)(max_raw))
/* The LZ4 bound of a batch of raw bytes plus the message around it. */
#define SL_BATCH_MSG_MAX(raw) ((raw) + (raw) / 255 + 16 + 4096)
_Static_assert(SL_BATCH_MSG_MAX((size_t)SL_BATCH_FRAME_MAX) <= SL_MSG_MAX &&
                   SL_BATCH_MSG_MAX((size_t)SL_BATCH_RAW_MAX) <= SL_MSG_MAX,
               "a whole batch must fit a message");

/* Buffers are base's sl_buf (sl_base.h). */

/* ---- messages on buffers -------------------------------------------------- */
/* Append the framed message to out. */
int sl_msg_encode(const Shiplog__Repl__Message *m, sl_buf *out);
/* Decode one framed message from buf[0..len). Returns 0 with *out (free with
 * sl_msg_free) and *consumed; SL_ETRUNCATED when more bytes are needed;
 * SL_ETOOBIG / SL_ECORRUPT on bad input. */
int sl_msg_decode(const uint8_t *buf, size_t len, size_t max_body,
                  Shiplog__Repl__Message **out, size_t *consumed);
void sl_msg_free(Shiplog__Repl__Message *m);
/* "hello", "batch", ...: the message's kind, for logs. */
const char *sl_msg_kind(const Shiplog__Repl__Message *m);

/* ---- lineage (store/lineage.h) ------------------------------------------------ */
/* A history as `repeated EpochStart`: *v gets h->n pointers into storage
 * (both arrays of at least h->n entries, owned by the caller). */
struct sl_history;
void sl_msg_history_put(const struct sl_history *h, Shiplog__Repl__EpochStart *storage,
                        Shiplog__Repl__EpochStart **ptrs, Shiplog__Repl__EpochStart ***v, size_t *n);
/* Back into *h: SL_ECORRUPT when the entries are not a valid history. */
int sl_msg_history_get(Shiplog__Repl__EpochStart *const *v, size_t n, struct sl_history *h);

/* ---- batches ------------------------------------------------------------------ */
/* Compress raw frames into out->data (bytes kept in scratch, which must
 * outlive *out) and fill the Batch's required fields. */
int sl_batch_seal(const uint8_t *frames, size_t len, uint64_t first_txid, uint64_t last_txid,
                  bool compress, sl_buf *scratch, Shiplog__Repl__Batch *out);
/* The same with raw_crc32c given: CRC32C of frames[0..len), which a caller
 * that had the frames in cache anyway (the shipper, as it reads them)
 * computed already, so that compressing is the only pass left here. */
int sl_batch_seal_crc(const uint8_t *frames, size_t len, uint32_t raw_crc, uint64_t first_txid,
                      uint64_t last_txid, bool compress, sl_buf *scratch, Shiplog__Repl__Batch *out);
/* At-rest encryption of a batch's frames (store/log.h SEALED FRAMES), as
 * the shipper with a key file does and a keyed receiver does for frames
 * that came in clear: every frame of frames[0..len) from txid `from` on
 * (older ones are left out) sealed with the keyring's first key into out,
 * the rolling checksum folded on from cs_before over each frame's
 * plaintext, so no one can tell where a frame was sealed. A frame sealed
 * already goes as it is. lz4: compress each frame's plaintext before
 * sealing it where that saves bytes (crypt.h COMPRESSED; only for an
 * archive that says it reads them, Welcome.accepts_sealed_lz4). On failure
 * *txid names the frame. */
struct sl_keyring;
int sl_batch_encrypt_frames(struct sl_keyring *kr, const uint8_t store_id[SL_STORE_ID_SIZE], const uint8_t *frames,
                            size_t len, uint64_t from, uint64_t cs_before, bool lz4, sl_buf *out, uint64_t *txid);
/* Decompress and check a batch (see BATCH PAYLOAD). raw receives the frames.
 * Errors: SL_ETOOBIG (raw_len over max_raw), SL_ECORRUPT (decompression,
 * CRC, a frame), SL_EGAP (txids not dense or not first..last). */
int sl_batch_open(const Shiplog__Repl__Batch *b, size_t max_raw, sl_buf *raw);

/* ---- base shipping (proto/replication.proto, BASE SHIPPING) ------------------------ */
/* A BaseChunk against what arrived so far: 0; SL_EGAP when its offset is
 * not expect (the bytes received), SL_ETOOBIG over max bytes, SL_EINVAL
 * when empty. */
int sl_base_chunk_check(const Shiplog__Repl__BaseChunk *c, uint64_t expect, size_t max);
/* A BaseEnd against what arrived: 0; SL_ETRUNCATED when size differs from
 * the bytes received, SL_ECORRUPT when the CRC32C of them differs. */
int sl_base_end_check(const Shiplog__Repl__BaseEnd *e, uint64_t size, uint32_t crc);

/* ---- connections -------------------------------------------------------------- */
typedef struct sl_conn sl_conn;

/* Addresses and listening sockets: sl_hostport_parse, sl_listen (sl_base.h). */
/* Connect with a timeout; TCP_NODELAY. */
int sl_conn_connect(const char *hostport, int timeout_ms, sl_conn **out);
/* Wrap an accepted/connected socket; the conn owns fd. */
int sl_conn_wrap(int fd, sl_conn **out);
int sl_conn_fd(const sl_conn *c);
/* "127.0.0.1:5432": the peer's address, for logs. */
const char *sl_conn_peer(const sl_conn *c);
/* Send one message (blocking, whole). */
int sl_conn_send(sl_conn *c, const Shiplog__Repl__Message *m);
/* Receive one message, waiting at most timeout_ms (-1: for ever):
 * 0 and *out; -ETIMEDOUT; -ECONNRESET / SL_EEND when the peer closed;
 * SL_ETRUNCATED when it closed (or stalled) inside a message;
 * SL_ETOOBIG / SL_ECORRUPT on bad input. */
int sl_conn_recv(sl_conn *c, int timeout_ms, size_t max_body, Shiplog__Repl__Message **out);
/* Shut down both directions (wakes a thread blocked in recv). */
void sl_conn_shutdown(sl_conn *c);
/* After a last message (an Error): closing a socket that still holds
 * unread input sends a reset, which can destroy that message before the
 * peer reads it. So stop sending, then read and drop what comes until the
 * peer closes, for ms at most (or until *stop, when stop is given). */
void sl_conn_linger(sl_conn *c, int ms, atomic_int *stop);
/* Close (a TLS session first sends close_notify) and free. */
void sl_conn_close(sl_conn *c);

/* Every later wait of c (receive, send, handshake) ends by this
 * sl_mono_ns() time at the latest (-ETIMEDOUT); 0 removes the limit. */
void sl_conn_set_deadline(sl_conn *c, uint64_t mono_ns);
/* How long sl_conn_send waits for a peer that reads nothing (default 30 s). */
void sl_conn_set_send_timeout(sl_conn *c, int timeout_ms);
/* For callers that wait on the socket themselves (poll, io_uring): read up
 * to len bytes without blocking: > 0 bytes, 0 the peer closed, -EAGAIN
 * nothing yet, or an error (TLS: SL_EAUTH, SL_ECORRUPT; -errno). */
long sl_conn_read_some(sl_conn *c, void *buf, size_t len);
/* Whether received bytes wait inside the connection (TLS decrypted them
 * already), where a poll of the socket does not see them. Read them first. */
bool sl_conn_pending(const sl_conn *c);
/* Send all len bytes: 0, -ETIMEDOUT when no progress for timeout_ms, or
 * an error as for sl_conn_read_some. */
int sl_conn_write_all(sl_conn *c, const void *buf, size_t len, int timeout_ms);

/* ---- TLS ------------------------------------------------------------------------ */
typedef struct sl_tls_ctx sl_tls_ctx;

/* A client (server false) or server context from PEM files: our
 * certificate chain, its private key, and the CA every peer's certificate
 * must chain to. Errors, logged naming the file: -errno (unreadable),
 * SL_EINVAL (not a certificate / key, or a key of another certificate).
 * A key file readable by group or others is a warning. */
int sl_tls_ctx_new(bool server, const char *cert_file, const char *key_file, const char *ca_file,
                   sl_tls_ctx **out);
void sl_tls_ctx_free(sl_tls_ctx *t);
/* The handshake on a connected c, all of it within timeout_ms.
 * connect: the server's certificate must name server_name (a DNS name,
 * or an IP address); it is also sent as SNI. accept: the client must
 * present a certificate; a first byte that cannot start a TLS handshake
 * is SL_EVERSION at once (a plain-TCP peer, which can still be answered
 * in plain framing). Errors: SL_EAUTH (a certificate refused, by either
 * side, or the peer does not speak TLS 1.3), -ETIMEDOUT, SL_EEND or
 * -errno (the peer went away), SL_ECORRUPT (a broken handshake); the
 * reason is in sl_conn_tls_error. Nothing is logged. */
int sl_conn_tls_connect(sl_conn *c, sl_tls_ctx *t, const char *server_name, int timeout_ms);
int sl_conn_tls_accept(sl_conn *c, sl_tls_ctx *t, int timeout_ms);
bool sl_conn_is_tls(const sl_conn *c);
/* Why the last TLS operation on c failed ("" if none). Valid until the
 * next call on c. */
const char *sl_conn_tls_error(const sl_conn *c);
/* The peer certificate's identities (subject CN, then each DNS
 * subjectAltName); 0 for a plain connection. Valid until close. */
size_t sl_conn_identities(const sl_conn *c, const char *const **ids);

/* ROUTING (Hello.bolt_address): `shiplog serve` keeps its advertised Bolt
 * address in STORE/bolt.address while it runs (one line HOST:PORT; removed
 * at exit), and the shipper reads it for each Hello and once a heartbeat
 * interval, sending a Heartbeat at once when it changed (every Heartbeat
 * carries it, "" for none: serve may start or stop while the session
 * lives, and the receiver names what it last heard).
 * Liveness: the file is a held file (sl_base.h, sl_write_file_held): serve
 * holds a flock on it from before it is in place to its exit. A serve that
 * was SIGKILLed, or a machine that crashed, leaves the file but no lock;
 * read then takes it for no Bolt server (-ENOENT), so the standbys stop
 * naming a dead writer within a heartbeat interval, and the stale file
 * stays until the next serve replaces it (readers never remove it).
 * write: the lock's descriptor in *held_fd, which serve keeps open, and
 * gives to remove at a clean exit (unlink, then close). read: 0 and the
 * address in buf, or -ENOENT (no Bolt server, or none alive) / -errno /
 * SL_EINVAL (not one line of at most len - 1 bytes). */
#define SL_BOLT_ADDRESS_FILE "bolt.address"
int sl_bolt_address_read(const char *store_dir, char *buf, size_t len);
int sl_bolt_address_write(const char *store_dir, const char *address, int *held_fd);
void sl_bolt_address_remove(const char *store_dir, int held_fd);

/* Build common messages (fields owned by the caller's storage). */
void sl_msg_error(Shiplog__Repl__Message *m, Shiplog__Repl__Error *e,
                  Shiplog__Repl__ErrorCode code, bool permanent, const char *text);

#endif
