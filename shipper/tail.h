/*
 * tail.h: the shipper's reader of a live log directory (module-private to
 * shipper/). It hands out runs of whole, durable frames as the raw bytes
 * that go into a Batch (codec.h), without decoding transactions.
 *
 * POSITIONS. durable is the log's durable mark (LOGDIR/durable) as last
 * read by sl__tail_refresh(): every txid <= durable is on the primary's
 * stable storage. next_txid is exclusive: the txid of the next frame
 * sl__tail_read() returns. Nothing above durable is ever returned, so a
 * frame being appended (a torn tail) is never shipped.
 *
 * WAKING. The tail owns an inotify fd (O_NONBLOCK) watching the durable
 * mark file and, for the mark being created or replaced, the directory.
 * The caller waits on sl__tail_notify_fd() (through its io backend),
 * passes the records it read to sl__tail_notify(), and calls
 * sl__tail_refresh() after a wake or a timeout.
 *
 * ERRORS. SL_ENOTFOUND: the segment holding the txid was removed (pruned).
 * SL_EGAP: a position beyond the log's end, or txids not dense.
 * SL_ECORRUPT / SL_ESTOREID / SL_ENOTLOG / SL_EVERSION: a damaged or foreign
 * segment. Each is logged with file and offset where it is found.
 *
 * THREADS: a tail belongs to one thread, as does its io.
 */
#ifndef SL_SHIPPER_TAIL_H
#define SL_SHIPPER_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "io.h"
#include "log.h"

typedef struct sl__tail sl__tail;

/* What one sl__tail_read() appended: frames first_txid..last_txid,
 * bytes of them (0: nothing was ready), commit time of last_txid, and the
 * rolling log checksum through last_txid (see sl__tail_set_checksum). */
typedef struct sl__tail_run {
  uint64_t first_txid, last_txid;
  uint64_t last_commit_us;
  uint64_t checksum;
  size_t bytes;
} sl__tail_run;

/* Watch LOGDIR and read its durable mark. Segments must carry store_id. */
int sl__tail_open(const char *logdir, const uint8_t store_id[SL_STORE_ID_SIZE], sl__io *io,
                  sl__tail **out);
void sl__tail_close(sl__tail *t);

int sl__tail_notify_fd(const sl__tail *t);
/* Digest inotify records (re-arms the mark's watch if the file was
 * replaced). */
void sl__tail_notify(sl__tail *t, const uint8_t *records, size_t len);
/* Re-read the durable mark (a missing mark reads as 0). */
int sl__tail_refresh(sl__tail *t);
uint64_t sl__tail_durable(const sl__tail *t);

/* The oldest txid the log still holds (first txid of its oldest segment). */
int sl__tail_oldest(sl__tail *t, uint64_t *txid);
/* Position so that the next frame returned is txid (1 <= txid <= durable + 1). */
int sl__tail_seek(sl__tail *t, uint64_t txid);
uint64_t sl__tail_next_txid(const sl__tail *t);
/* LINEAGE: cs is the rolling log checksum through next_txid - 1 (store/
 * log.h); sl__tail_read carries it on through every frame it walks, so the
 * frames are decoded (length, CRC32C, txid) once, not once more for their
 * checksum. A seek does not compute it: set it after each seek. */
void sl__tail_set_checksum(sl__tail *t, uint64_t cs);

/* Append to dst the whole frames from next_txid up to the durable mark
 * that fit while dst->len <= max (a single frame larger than max is
 * returned alone, into an empty dst). Follows segment rotation. */
int sl__tail_read(sl__tail *t, sl_buf *dst, size_t max, sl__tail_run *run);

#endif
