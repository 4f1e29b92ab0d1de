/*
 * lineage.c: the epoch history file and the receiver's rules (lineage.h).
 *
 * The rules compare what each side can prove cheaply: the shipper sends its
 * history (each entry carries cs at the txid before its epoch began) and
 * cs at its committed txid; the receiver can compute cs at any txid its
 * archive holds. So every claim "we share txid t" below is a cs equality
 * at a point both know: t = S, or t = the txid before one of the shipper's
 * epochs. The fork reported for a divergence is the largest such t, a lower
 * bound of the real fork point (log --diverged finds the exact one, having
 * both logs at hand).
 *
 * ORIGIN: a store rebuilt from an image at txid B (snapshot, dump) gets a
 * log starting at B + 1 whose header would say cs(B) = 0 and epoch 0;
 * sl_log_set_origin has log.c write the real values into that header
 * (sl_seg_set_origin) before any frame exists, so every later cs chains on
 * from the history it continues.
 */
#include "lineage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sl_base.h"

#define HISTORY_MAGIC "shiplog-history 1\n"
#define HISTORY_FILE_MAX (SL_HISTORY_MAX * 64 + 64)

int sl_history_load(const char *logdir, sl_history *h) {
  char path[4096];
  uint8_t *text = NULL;
  size_t len = 0;
  h->n = 0;
  if (snprintf(path, sizeof path, "%s/" SL_HISTORY_FILE, logdir) >= (int)sizeof path) return -ENAMETOOLONG;
  int rc = sl_read_file(path, HISTORY_FILE_MAX, &text, &len);
  if (rc == -ENOENT) return 0;
  if (rc) {
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    return rc;
  }
  size_t ml = strlen(HISTORY_MAGIC);
  if (len < ml || memcmp(text, HISTORY_MAGIC, ml) != 0) {
    sl_diag_error("%s:1: not a shiplog history file", path);
    free(text);
    return SL_ECORRUPT;
  }
  const char *p = (const char *)text + ml, *end = (const char *)text + len;
  for (int line = 2; p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    char buf[128];
    uint64_t e, f, cs;
    int used = 0;
    if (!nl || nl - p >= (long)sizeof buf) goto bad_line;
    memcpy(buf, p, (size_t)(nl - p));
    buf[nl - p] = 0;
    if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %16" SCNx64 "%n", &e, &f, &cs, &used) != 3 ||
        buf[used] != 0 || sl_history_add(h, e, f, cs) != 0)
      goto bad_line;
    p = nl + 1;
    continue;
  bad_line:
    sl_diag_error("%s:%d: not an entry \"EPOCH FIRST_TXID CHECKSUM\" following the one before", path, line);
    free(text);
    return SL_ECORRUPT;
  }
  free(text);
  return 0;
}

int sl_history_save(const char *logdir, const sl_history *h) {
  size_t cap = strlen(HISTORY_MAGIC) + h->n * 64 + 1, len;
  char *text = malloc(cap);
  if (!text) return -ENOMEM;
  len = (size_t)snprintf(text, cap, "%s", HISTORY_MAGIC);
  for (size_t i = 0; i < h->n; i++)
    len += (size_t)snprintf(text + len, cap - len, "%" PRIu64 " %" PRIu64 " %016" PRIx64 "\n", h->e[i].epoch,
                            h->e[i].first_txid, h->e[i].prev_checksum);
  int rc = sl_write_file_atomic(logdir, SL_HISTORY_FILE, text, len);
  if (rc) sl_diag_error("%s/" SL_HISTORY_FILE ": %s", logdir, sl_strerror(rc));
  free(text);
  return rc;
}

uint64_t sl_history_epoch(const sl_history *h) { return h->n ? h->e[h->n - 1].epoch : 0; }

int sl_history_add(sl_history *h, uint64_t epoch, uint64_t first_txid, uint64_t prev_checksum) {
  if (epoch == 0 || first_txid == 0) return SL_EINVAL;
  if (h->n && (epoch <= h->e[h->n - 1].epoch || first_txid < h->e[h->n - 1].first_txid)) return SL_EINVAL;
  if (h->n == SL_HISTORY_MAX) return SL_ETOOBIG;
  h->e[h->n++] = (sl_epoch_start){epoch, first_txid, prev_checksum};
  return 0;
}

void sl_history_cut(sl_history *h, uint64_t last_txid) {
  while (h->n && h->e[h->n - 1].first_txid > last_txid) h->n--;
}

bool sl_history_has(const sl_history *h, const sl_epoch_start *e) {
  for (size_t i = 0; i < h->n; i++)
    if (h->e[i].epoch == e->epoch && h->e[i].first_txid == e->first_txid &&
        h->e[i].prev_checksum == e->prev_checksum)
      return true;
  return false;
}

sl_write_place sl_history_place(const sl_history *h, uint64_t current, uint64_t epoch, uint64_t txid,
                                sl_epoch_span *span) {
  *span = (sl_epoch_span){.last = UINT64_MAX};
  if (epoch > current) return SL_WRITE_NEWER;
  size_t i = 0;
  while (i < h->n && h->e[i].epoch < epoch) i++;
  bool listed = i < h->n && h->e[i].epoch == epoch;
  if (listed) span->first = h->e[i++].first_txid;
  else if (epoch == 0 && i == 0) span->first = 1; /* epoch 0 is implicit */
  if (i < h->n) {
    span->last = h->e[i].first_txid - 1;
    span->next_epoch = h->e[i].epoch;
  }
  if (epoch == current) return span->first && txid < span->first ? SL_WRITE_UNKNOWN : SL_WRITE_HELD;
  /* an older epoch: only a history that knows where it began and ended can tell */
  if (!span->first || span->last == UINT64_MAX || txid < span->first) return SL_WRITE_UNKNOWN;
  return txid > span->last ? SL_WRITE_LOST : SL_WRITE_HELD;
}

const char *sl_lineage_verdict_name(sl_lineage_verdict v) {
  switch (v) {
  case SL_LINEAGE_EQUAL: return "equal";
  case SL_LINEAGE_EXTENDS: return "extends";
  case SL_LINEAGE_BEHIND: return "behind";
  case SL_LINEAGE_DIVERGED: return "diverged";
  }
  return "?";
}

/* The largest t <= cap both sides provably share: a point before one of
 * the shipper's epochs where the receiver's cs agrees (0 always is). */
static uint64_t shared_upto(const sl_history *sh, uint64_t cap, sl_checksum_fn cs_r, void *arg) {
  uint64_t best = 0, cs;
  for (size_t i = 0; i < sh->n; i++) {
    uint64_t t = sh->e[i].first_txid - 1;
    if (t <= cap && t > best && cs_r(arg, t, &cs) == 0 && cs == sh->e[i].prev_checksum) best = t;
  }
  return best;
}

void sl_lineage_judge(const sl_history *rh, uint64_t r_last, sl_checksum_fn cs_r, void *arg,
                      const sl_history *sh, uint64_t s_last, uint64_t s_cs, sl_lineage_result *out) {
  uint64_t cs;
  memset(out, 0, sizeof *out);
  /* The first txid where the stream's epochs leave the shipper's. */
  uint64_t r_unknown = UINT64_MAX;
  for (size_t i = 0; i < rh->n; i++)
    if (!sl_history_has(sh, &rh->e[i])) r_unknown = SL_MIN(r_unknown, rh->e[i].first_txid);

  if (s_last <= r_last) {
    int rc = cs_r(arg, s_last, &cs);
    if (rc == 0 && cs != s_cs) {
      /* Txids from a stream epoch the shipper lacks are not shared either. */
      out->verdict = SL_LINEAGE_DIVERGED;
      out->fork_max = r_unknown <= s_last ? r_unknown - 1 : s_last - 1;
      out->fork = shared_upto(sh, out->fork_max, cs_r, arg);
      return;
    }
    if (r_unknown <= s_last) { /* the shipper's txids from there are of another epoch */
      out->verdict = SL_LINEAGE_DIVERGED;
      out->fork = shared_upto(sh, r_unknown - 1, cs_r, arg);
      out->fork_max = r_unknown - 1;
      return;
    }
    out->unverified = rc != 0;
    out->verdict = s_last == r_last && r_unknown == UINT64_MAX && rc == 0 ? SL_LINEAGE_EQUAL : SL_LINEAGE_BEHIND;
    return;
  }
  /* s_last > r_last: the shipper has more. */
  uint64_t conflict = r_unknown; /* a stream epoch the shipper lacks starts at or before r_last + 1 */
  for (size_t i = 0; i < sh->n; i++) {
    const sl_epoch_start *e = &sh->e[i];
    if (sl_history_has(rh, e) || e->first_txid > r_last + 1) continue;
    /* An epoch of the shipper's the stream never saw begin: it must start
     * right after what the stream holds, from the same history. */
    if (e->first_txid <= r_last || cs_r(arg, r_last, &cs) != 0 || cs != e->prev_checksum)
      conflict = SL_MIN(conflict, e->first_txid);
  }
  if (conflict != UINT64_MAX) {
    out->verdict = SL_LINEAGE_DIVERGED;
    out->fork_max = SL_MIN(conflict - 1, r_last);
    out->fork = shared_upto(sh, out->fork_max, cs_r, arg);
    return;
  }
  out->verdict = SL_LINEAGE_EXTENDS;
}

/* ---- origin ---------------------------------------------------------------- */

/* The epoch of txid's own frame (0 when the log does not hold it). */
static uint64_t frame_epoch(const char *logdir, uint64_t txid) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  sl_log_reader *r = NULL;
  sl_log_reader_options ro = {.max_txid = txid, .newest_run = true};
  sl_frame f;
  uint64_t epoch = 0;
  bool held = sl_log_list_newest_run(logdir, &segs, &n, NULL) == 0 && n && txid >= segs[0].first_txid;
  free(segs);
  if (held && sl_log_reader_open(logdir, txid, &ro, &r) == 0 && sl_log_reader_next(r, &f) == 0 && f.txid == txid)
    epoch = f.epoch;
  sl_log_reader_close(r);
  return epoch;
}

int sl_log_lineage_at(const char *logdir, uint64_t txid, sl_history *h, uint64_t *epoch, uint64_t *cs) {
  int rc = sl_history_load(logdir, h);
  if (rc || (rc = sl_log_checksum_at(logdir, txid, cs))) return rc;
  sl_history_cut(h, txid);
  /* The frame says it too: a log without its history file (an object
   * storage copy, a store loaded from a later epoch's dump) knows that much. */
  *epoch = SL_MAX(sl_history_epoch(h), frame_epoch(logdir, txid));
  return 0;
}

bool sl_log_lineage_known(const char *logdir) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  uint64_t cs = 0;
  bool known = false;
  if (sl_log_list(logdir, &segs, &n) == 0 && n > 0)
    known = segs[0].first_txid == 1 || (sl_log_checksum_at(logdir, segs[0].first_txid - 1, &cs) == 0 && cs != 0);
  free(segs);
  return known;
}

int sl_log_set_origin(const char *logdir, uint64_t epoch, uint64_t prev_checksum, const sl_history *h) {
  sl_seg_info *segs = NULL;
  size_t n = 0;
  int rc = sl_log_list(logdir, &segs, &n);
  if (rc) return rc;
  if (n != 1 || segs[0].size != SL_SEG_HEADER_SIZE) {
    sl_diag_error("%s: lineage can only be given to a log of one segment without frames", logdir);
    rc = SL_EINVAL;
    goto out;
  }
  /* log.c owns the segment header: it rewrites and syncs it. */
  if ((rc = sl_seg_set_origin(segs[0].path, epoch, prev_checksum))) goto out;
  if (h && h->n) rc = sl_history_save(logdir, h);
out:
  if (rc) sl_diag_error("%s: cannot set the log's lineage (epoch %" PRIu64 "): %s", logdir, epoch, sl_strerror(rc));
  free(segs);
  return rc;
}
