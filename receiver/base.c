/*
 * base.c: BASE SHIPPING on the receiver (proto/replication.proto). A
 * stream whose archive does not start at txid 1 can be restored only from
 * a base (receiver/pitr.h); when it has none, the handshake asks the
 * shipper for one (Welcome.need_base), which then arrives on the owning
 * connection as BaseBegin, BaseChunks, BaseEnd.
 *
 * The bytes are a full dump (store/dump.h) and go, in order, to
 * snapshots/tmp-<pid>-base<n>.snap.tmp -- the name of a snapshot being
 * taken, so a killed receiver's leftover is removed at start like one. At
 * BaseEnd: the size and CRC32C the shipper counted must match what arrived,
 * the header must be a full dump of the stream's store at the announced
 * txid; then fsync, rename to <txid>.snap, fsync the folder: a .snap name
 * always holds a whole base. A sealed base (dump version 2) is kept as it
 * is, whether or not this receiver has its key (the standby then needs the
 * key; a restore elsewhere can use it). The chunks' own CRCs are checked
 * when the standby is built from the file (sl_load_full), not here: a
 * connection thread must not read gigabytes while its shipper waits.
 *
 * A session that ends inside a base removes the .tmp (sl__base_abort):
 * restartable, the next session starts the base again.
 */
#include "receiver_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"
#include "sl_base.h"

struct sl__base_rx {
  sl__stream *s;
  int fd;
  char tmp[4096];
  uint64_t txid, got;
  uint32_t crc;
  uint64_t t0_ns;
};

int sl__base_begin(sl__stream *s, uint64_t txid, sl__base_rx **out, char *why, size_t whylen) {
  static atomic_uint seq;
  pthread_mutex_lock(&s->mu);
  uint64_t first = s->first_txid;
  pthread_mutex_unlock(&s->mu);
  *out = NULL;
  if (txid + 1 < first) {
    snprintf(why, whylen, "base at txid %" PRIu64 ": the archive of stream %s starts at txid %" PRIu64
             ", so it cannot continue that base", txid, s->name, first);
    return SL_EINVAL;
  }
  sl__base_rx *b = calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  b->s = s;
  b->txid = txid;
  b->t0_ns = sl_mono_ns();
  snprintf(b->tmp, sizeof b->tmp, "%s/tmp-%d-base%u" SL_SNAP_SUFFIX ".tmp", s->snap_dir, (int)getpid(),
           atomic_fetch_add(&seq, 1));
  int rc = sl_mkdir_p(s->snap_dir);
  if (rc == 0 && (b->fd = open(b->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) rc = -errno;
  if (rc) {
    snprintf(why, whylen, "base at txid %" PRIu64 ": cannot create %s: %s", txid, b->tmp, sl_strerror(rc));
    free(b);
    return rc;
  }
  sl__stream_base_receiving(s, true);
  sl_diag_info("stream %s: receiving a base at txid %" PRIu64 " into %s", s->name, txid, b->tmp);
  *out = b;
  return 0;
}

int sl__base_chunk(sl__base_rx *b, const Shiplog__Repl__BaseChunk *c, size_t max, char *why, size_t whylen) {
  int rc = sl_base_chunk_check(c, b->got, max);
  if (rc) {
    snprintf(why, whylen, "base at txid %" PRIu64 ": chunk at offset %" PRIu64 " of %zu bytes%s", b->txid,
             c->offset, c->data.len,
             rc == SL_EGAP ? ", but the bytes received end elsewhere" : rc == SL_ETOOBIG ? ", over the limit" : " (empty)");
    return rc;
  }
  if ((rc = sl_write_all(b->fd, c->data.data, c->data.len))) {
    snprintf(why, whylen, "base at txid %" PRIu64 ": %s: %s", b->txid, b->tmp, sl_strerror(rc));
    return rc;
  }
  b->crc = sl_crc32c(b->crc, c->data.data, c->data.len);
  b->got += c->data.len;
  return 0;
}

/* The header of the file written: a full dump of the stream's store at b->txid. */
static int check_header(sl__base_rx *b, char *why, size_t whylen) {
  uint8_t raw[SL_DUMP_HEADER_SIZE];
  sl_dump_header h;
  long n = sl_pread_full(b->fd, raw, sizeof raw, 0);
  int rc = n < 0 ? (int)n : n < (long)sizeof raw ? SL_ETRUNCATED : sl_dump_header_decode(raw, &h);
  if (rc == 0 && h.kind != SL_DUMP_FULL) rc = SL_EINVAL;
  if (rc == 0 && memcmp(h.store_id, b->s->store_id, SL_STORE_ID_SIZE)) rc = SL_ESTOREID;
  if (rc == 0 && h.last_txid != b->txid) rc = SL_EINVAL;
  if (rc)
    snprintf(why, whylen, "base at txid %" PRIu64 ": %s is not a full dump of the stream's store at that txid (%s)",
             b->txid, b->tmp, sl_strerror(rc));
  return rc;
}

int sl__base_end(sl__base_rx *b, const Shiplog__Repl__BaseEnd *e, char *why, size_t whylen) {
  char path[4096];
  int rc = sl_base_end_check(e, b->got, b->crc);
  if (rc) {
    snprintf(why, whylen, "base at txid %" PRIu64 ": %s (the shipper sent %" PRIu64 " bytes, %" PRIu64 " arrived)",
             b->txid, rc == SL_ECORRUPT ? "CRC32C mismatch" : "size mismatch", e->size, b->got);
    goto fail;
  }
  if ((rc = check_header(b, why, whylen))) goto fail;
  if ((rc = sl_fsync(b->fd))) {
    snprintf(why, whylen, "base at txid %" PRIu64 ": fsync %s: %s", b->txid, b->tmp, sl_strerror(rc));
    goto fail;
  }
  close(b->fd);
  b->fd = -1;
  snprintf(path, sizeof path, "%s/%020" PRIu64 SL_SNAP_SUFFIX, b->s->snap_dir, b->txid);
  if (rename(b->tmp, path) != 0 || (rc = sl_fsync_dir(b->s->snap_dir))) {
    rc = rc ? rc : -errno;
    snprintf(why, whylen, "base at txid %" PRIu64 ": cannot make %s: %s", b->txid, path, sl_strerror(rc));
    goto fail;
  }
  sl_diag_info("stream %s: base at txid %" PRIu64 " stored as %s (%.1f MiB in %.1f s)", b->s->name, b->txid, path,
              (double)b->got / (1 << 20), (double)(sl_mono_ns() - b->t0_ns) / 1e9);
  sl__stream_base_stored(b->s, b->txid);
  free(b);
  return 0;
fail:
  sl__base_abort(b);
  return rc;
}

void sl__base_abort(sl__base_rx *b) {
  if (!b) return;
  if (b->fd >= 0) close(b->fd);
  if (unlink(b->tmp) == 0)
    sl_diag_warn("stream %s: base at txid %" PRIu64 " not completed (%" PRIu64 " bytes arrived): %s removed; the "
                "next session sends it again", b->s->name, b->txid, b->got, b->tmp);
  sl__stream_base_receiving(b->s, false);
  free(b);
}
