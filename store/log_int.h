/*
 * Private declarations of the transaction log, shared by its files. Nothing
 * outside store/log*.c includes this file; log.h is the contract, and the
 * design (writer state, group commit, rotation, recovery, reading) is
 * described at the top of log.c.
 *
 * Who does what:
 *   log.c            segment names and listing, sl_log_create, open with
 *                    recovery, close, the accessors, lineage of an open log,
 *                    truncation, the writer-state invariant (sl__log_check)
 *   log_format.c     the byte codecs: segment header, frame, durable mark,
 *                    sl_txn_peek and the lineage checksum (pure, no I/O)
 *   log_write.c      the durable mark, segment creation and rotation,
 *                    append (staging, one pwritev), group commit
 *   log_read.c       segment scanning and the frame iterator (used by
 *                    recovery too), the reader, the time search
 *   log_consumers.c  consumer positions and pruning
 *   log_size.c       sl_log_bytes_after, on the public API only
 *
 * sl__log_* functions are library-internal (hidden in libshiplog); plain
 * static names stay inside one file.
 */
#ifndef SL_LOG_INT_H
#define SL_LOG_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "lineage.h"

#define TMP_SUFFIX ".tmp"
#define MARK_NAME SL_DURABLE_MARK_FILE
/* sl__log_iter_frame: no whole, valid frame at the current offset (it->bad says why). */
#define BAD_FRAME 1

struct sl_log {
  char *dir;
  uint8_t store_id[SL_STORE_ID_SIZE];
  uint64_t seg_size;
  int mark_fd;

  pthread_mutex_t append_mu;
  /* Changed by the appender under append_mu (fd and segno also under mu). */
  int fd;
  uint64_t segno;
  uint64_t seg_first_txid;
  uint64_t seg_end;        /* offset of the next frame in the active segment */
  uint64_t zeroed_end;     /* ZEROED TAIL: [seg_end, zeroed_end) holds zeros (log_write.c) */
  bool zero_refused;       /* writing zeros ahead failed once: this log appends without */
  uint64_t epoch;          /* current (LINEAGE): the next header's epoch */
  uint64_t cs;             /* rolling checksum through next_txid - 1 */
  sl_history hist;         /* LOGDIR/history as on disk */
  uint64_t next_txid;      /* atomic: read by sl_log_next_txid without locks */
  uint64_t last_commit_us; /* atomic, as next_txid */
  char key_id[SL_KEY_ID_SIZE + 1];     /* of frames appended from now on ("": plain) */
  char seg_key_id[SL_KEY_ID_SIZE + 1]; /* of the active segment */
  bool seg_lz4;            /* the active segment has SL_SEG_F_SEALED_LZ4 */
  bool lz4_frames;         /* so do sealed segments started from now on: a compressed
                            * sealed frame was appended, or the newest segment had it */
  struct staged *stage;    /* sl_log_append_many's frames, allocated once (log_write.c) */

  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t written_txid, written_segno, written_end;
  uint64_t durable_txid, durable_segno, durable_end;
  bool syncing;  /* a leader or a rotation owns the fd's sync */
  int fail_code; /* 0, or the error that made the log FAILED */
  sl_log_stats stats;
  /* SYNC AHEAD (log_write.c): the helper thread, started by the first
   * sl_log_sync_ahead; its fields are under mu. */
  pthread_t ahead_thread;
  pthread_cond_t ahead_cv;
  uint64_t ahead_txid;  /* to make durable; 0: nothing asked */
  bool ahead_on;        /* started, not yet joined */
  bool ahead_stop;
  bool ahead_refused;   /* pthread_create failed: callers sync themselves */
};

/* ---- log.c: invariants, paths, headers ------------------------------------ */

/* The whole writer state; caller holds mu and the appender is quiescent. */
void sl__log_check(const sl_log *log);
/* DIR/NNNNNNNNNNNNNNNNNNNN.seg followed by suffix ("" or TMP_SUFFIX). */
int sl__log_seg_path(char out[PATH_MAX], const char *dir, uint64_t segno, const char *suffix);
/* Read and check the header of an open segment file (errors logged). */
int sl__log_seg_read_header(int fd, const char *path, sl_seg_header *h);

/* ---- log_format.c --------------------------------------------------------- */

void sl__log_mark_encode(uint8_t out[SL_DURABLE_MARK_SIZE], uint64_t txid, uint64_t segno,
                         uint64_t end);
/* Transaction.checksum (field 5, fixed64), which only sealed frames carry. */
bool sl__log_txn_checksum(const uint8_t *p, const uint8_t *end, uint64_t *cs);

/* ---- log_write.c: durable mark, segment creation --------------------------- */

typedef struct mark {
  uint64_t txid, segno, end;
} mark;

/* SL_ENOTFOUND if absent, SL_ECORRUPT if it stays torn across retries. */
int sl__log_mark_read(const char *logdir, mark *m);
/* Publish a durable position (caller holds mu) and wake the waiters. */
void sl__log_publish_durable(sl_log *log, uint64_t txid, uint64_t segno, uint64_t end);
/* Cut the active segment's ZEROED TAIL (log.h); append_mu held or the log
 * quiescent, no sync running on its fd. Logged on failure. */
int sl__log_cut_zeroed(sl_log *log);
/* Stop the SYNC AHEAD thread, if started (sl_log_close). */
void sl__log_ahead_stop(sl_log *log);
/* Write the segment h describes (tmp, fdatasync, rename, fsync the
 * directory); *fd_out stays open O_RDWR; *renamed says whether it got that far. */
int sl__log_seg_create(const char *dir, const sl_seg_header *h, int *fd_out, bool *renamed);

/* ---- log_read.c: scanning segments ----------------------------------------- */

typedef struct seg_scan {
  int fd;
  char path[PATH_MAX];
  uint64_t size; /* file size when last looked (fstat) */
  uint8_t *buf;
  size_t cap;
  uint64_t buf_off; /* file offset of buf[0] */
  size_t buf_len;
  uint64_t reads;   /* preads into buf so far */
  bool packed;      /* log_pack.c: buf holds the whole unpacked segment, size its length */
} seg_scan;

typedef struct seg_iter {
  seg_scan s;
  sl_seg_header h;
  uint64_t off;       /* of the next frame */
  uint64_t next_txid; /* the txid the frame at off must carry */
  uint64_t cs;        /* LINEAGE: through next_txid - 1 */
  int bad;            /* after BAD_FRAME: SL_ETRUNCATED or SL_ECORRUPT */
  bool zeroed;        /* after SL_EEND: it stopped at a ZEROED TAIL (log.h), not at the file's end */
} seg_iter;

/* After sl__log_iter_frame returned rc: did it stop where a sealed segment
 * (one a later segment follows) may not end -- at a bad frame, or at zeros
 * after its last frame (log.h, ZEROED TAIL: only the newest may have them)? */
static inline bool sl__log_iter_bad_if_sealed(const seg_iter *it, int rc) {
  return rc == BAD_FRAME || (rc == SL_EEND && it->zeroed);
}

/* The frame at off, with CRC checked: 0, SL_ETRUNCATED, SL_ECORRUPT, -errno. */
int sl__log_scan_frame(seg_scan *s, uint64_t off, const uint8_t **payload, uint32_t *plen,
                       size_t *flen);
void sl__log_scan_close(seg_scan *s);
/* Open the segment at path and position at its first frame. */
int sl__log_iter_open(seg_iter *it, const char *path, int flags);
/* The next frame: 0, SL_EEND, BAD_FRAME (not logged), SL_ECORRUPT / SL_EGAP
 * (logged), -errno (see log_read.c). */
int sl__log_iter_frame(seg_iter *it, sl_frame *f);
/* Report the bad frame an iterator stopped at as corruption. */
int sl__log_iter_corrupt(const seg_iter *it, const char *why);
/* log_pack.c: unpack s's packed segment (header h) into s->buf, whole;
 * SL_ECORRUPT (logged) when it does not unpack. */
int sl__log_unpack(seg_scan *s, const sl_seg_header *h);
/* Rewrite a packed segment plain (before sl_log_truncate cuts it). */
int sl__log_seg_unpack_file(const char *path);

#endif
