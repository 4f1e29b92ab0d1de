/*
 * shipper: tails a live store's transaction log and streams it to a
 * receiver (proto/replication.proto, codec/codec.h).
 *
 * It reads only the durable prefix of the log (the log's durable mark), so
 * nothing a primary could still lose is ever shipped. It waits for growth
 * without polling (inotify on the log directory), follows segment rotation,
 * batches what is ready (bounded by bytes and by delay), compresses with lz4
 * and keeps up to a window of unacknowledged batches in flight. Each durable
 * acknowledgement is recorded as the store's consumer position
 * ("ship-STREAM@RECEIVER" in STORE/log/consumers/, sl_ship_consumer_name),
 * so the primary keeps every segment not yet durable on that receiver. After any network error or
 * receiver restart it reconnects with backoff and resumes at the receiver's
 * durable txid; a permanent refusal (Error.permanent) ends it.
 *
 * I/O backends: io_uring (file reads, inotify reads, socket receive and
 * send through one ring) or plain (pread/poll/send) where io_uring is not
 * available (ENOSYS/EPERM, e.g. seccomp); the fallback is announced once.
 * With TLS the socket's bytes go through the OpenSSL session (codec.h) and
 * the backend only reports that the socket is readable (io.h sock_poll).
 *
 * LINEAGE: the Hello carries the log's history (LOG/history) and rolling
 * checksum at the committed txid, each Batch the checksum through its last
 * txid (store/log.h); a receiver that finds this store behind or diverged
 * refuses it for good (README "Failover").
 *
 * BASE SHIPPING (proto/replication.proto): when the receiver asks for a
 * base, the shipper opens the store read-only (a second open of a store's
 * LMDB in a process that has it open already would break LMDB's locks:
 * an embedding process must not need a base) and sends a full dump of it
 * before the log; a cascade sends its standby (DIR/streams/NAME/standby).
 *
 * CASCADE: store_dir may be a receiver's stream directory (DIR/streams/NAME,
 * recognized by archive/ and no store.id): the shipper then tails that
 * archive's durable prefix, so a receiver's stream is shipped onward. Its
 * consumer position goes to the archive's consumers/ folder, which holds
 * back the receiver's prune (receiver/pitr.h) as it holds a primary's log.
 *
 * Status: STORE/ship/STREAM.status, rewritten at most every 200 ms while
 * something changes (key=value lines: state, peer, committed, shipped,
 * durable, applied, bytes, batches, reconnects, lag_ms, error). Read by
 * `shiplog status STORE`. The same numbers, and latency histograms, go to
 * opt->metrics when given (updated when the status is, at most every
 * 200 ms; histograms as acknowledgements arrive).
 *
 * ALIVE LOCK: the shipper that writes STREAM.status holds an exclusive
 * open-file-description lock on byte 0 of STORE/ship/STREAM.lock for as
 * long as it runs. Another shipper of the same stream name (a second one
 * refused by the receiver, or one shipping to another receiver) finds it
 * held and leaves the file alone until it can take the lock. A status file
 * that says a shipper is at work while no process holds the lock is the
 * report of one that was killed or crashed: sl_ship_status_read says
 * "not-running" instead.
 */
#ifndef SL_SHIPPER_H
#define SL_SHIPPER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypt.h"
#include "metrics.h"

typedef enum sl_io_backend { SL_IO_AUTO = 0, SL_IO_URING, SL_IO_PLAIN } sl_io_backend;

typedef struct sl_shipper_options {
  const char *store_dir;
  const char *to;              /* HOST:PORT */
  const char *stream;
  uint64_t from_txid;          /* 0: not given */
  bool has_since;
  uint64_t since_us;           /* --since: ship transactions committed after it */
  size_t batch_max_bytes;      /* 0: 1 MiB of raw frames */
  uint32_t batch_delay_us;     /* wait up to this long to fill a batch; 0: ship at once */
  size_t window_bytes;         /* unacknowledged raw bytes in flight; 0: 32 MiB */
  int heartbeat_ms;            /* 0: 1000 */
  int timeout_ms;              /* silent receiver; 0: 10000 */
  int backoff_max_ms;          /* 0: 5000 */
  sl_io_backend backend;
  /* Security (README "Security"): TLS 1.3 with our certificate and key,
   * the receiver's checked against tls_ca and tls_server_name (NULL: the
   * host of `to`); or, with insecure, plain TCP. Exactly one of the two:
   * neither, or both, is SL_EINVAL. A certificate refused by either side
   * ends the shipper (SL_EAUTH), as a permanent refusal does. */
  const char *tls_cert, *tls_key, *tls_ca, *tls_server_name;
  bool insecure;
  bool exit_when_caught_up;    /* stop once everything durable is acknowledged */
  /* At-rest encryption (crypt/crypt.h): NULL, or seal every frame with the
   * keyring's first key before batching (Batch.key_id names it), so the
   * receiver's archive holds only ciphertext. Must outlive sl_shipper_run. */
  sl_keyring *keyring;
  sl_metrics *metrics;         /* NULL, or where the stream's metrics go (README "Operations");
                                  must outlive sl_shipper_run */
  void (*on_ready)(void *arg); /* NULL, or called once, when the first session is up */
  void *ready_arg;
} sl_shipper_options;

/* Run until *stop becomes non-zero (signal handler), a permanent refusal
 * (returns SL_EINVAL / SL_ESTOREID / ... with the receiver's message logged)
 * or, with exit_when_caught_up, until caught up (returns 0). */
int sl_shipper_run(const sl_shipper_options *opt, atomic_int *stop);

/* The shipper's consumer name (store/log.h CONSUMERS) for STREAM shipped to
 * TO (HOST:PORT): "ship-STREAM@TO", every character of TO outside
 * [A-Za-z0-9.-] spelled '_' ("ship-orders@backup1_7000"), so that two
 * receivers that both serve a stream NAME hold the log each for itself; a
 * name past SL_LOG_CONSUMER_NAME_MAX ends in the CRC32C of TO instead. A
 * shipper that finds the name older versions used ("ship-STREAM", shared
 * by every receiver of the stream) removes it once its own is on disk. */
void sl_ship_consumer_name(const char *stream, const char *to, char *out, size_t len);

/* Status of the shipper of STREAM on STORE, from its status file. */
typedef struct sl_ship_status {
  char state[32];              /* connecting, streaming, sending-base, backoff, stopped, failed,
                                  not-running (ALIVE LOCK) */
  char peer[80];
  uint64_t committed, shipped, durable, applied;
  uint64_t bytes, batches, reconnects;
  uint64_t lag_ms;             /* now - commit time of the newest applied tx, when behind */
  uint64_t updated_us;
  char bolt[256];              /* the standby's Bolt address (Welcome), "" if none */
  char error[256];
} sl_ship_status;
int sl_ship_status_read(const char *store_dir, const char *stream, sl_ship_status *out);

#endif
