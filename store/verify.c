/*
 * sl_store_verify (store.h): `shiplog verify`'s algorithm, moved out of the
 * command line. It checks three things:
 *   0. data.mdb's B-tree pages (sl_store_check), before anything walks
 *      them: a damaged page is named with its offset, never an LMDB abort;
 *      then that the databases agree with each other (sl_store_check_state:
 *      labels and their index, properties, relationships and adjacency,
 *      counts), which needs no log: a store loaded from a full dump (its log
 *      begins after the image), imported or pruned gets this check too.
 *   1. Every frame from the oldest kept segment to the last txid the store
 *      knows of (max of LMDB's applied txid and the durable mark) is whole,
 *      with a good CRC and the next txid (reader with tolerate_tail off: any
 *      damage is reported with its file and offset).
 *   1b. The indexes hold exactly what the data implies and the data keeps
 *      every constraint (sl_store_schema_verify): always, pruned log or not.
 *   2. When the log still starts at txid 1, the LMDB state equals a replay of
 *      the log: the frames up to the applied txid are applied to a scratch
 *      no_log store under $TMPDIR and the exports of the two (the store's
 *      taken from the same read snapshot that gave the applied txid) must be
 *      byte-equal. When the log does not begin at txid 1 (pruned, or a
 *      store loaded from a dump) the state cannot be rebuilt from it: only
 *      step 0's consistency check vouches for the state.
 *
 * The export is the caller's (export_fn; the CLI passes interchange's
 * canonical export): the store may not depend on interchange/, and any
 * writer that is a function of the graph alone compares states equally.
 * Opens the store read-only and reads the log up to its durable mark, so
 * it runs beside a writer. Every failure is logged as "DIR: FAILED: ..."
 * (or names what could not be read) before it returns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sl_base.h"
#include "store.h"

/* Segments, first txid and durable mark of LOGDIR, with a message naming
 * it on failure. */
static int log_facts(const char *logdir, size_t *segments, uint64_t *first_txid, uint64_t *durable_txid) {
  sl_seg_info *segs = NULL;
  int rc = sl_log_list(logdir, &segs, segments);
  if (rc) {
    sl_diag_error("%s: cannot list the log: %s", logdir, sl_strerror(rc));
    return rc;
  }
  *first_txid = *segments ? segs[0].first_txid : 0;
  free(segs);
  rc = sl_log_read_durable_mark(logdir, durable_txid);
  if (rc == SL_ENOTFOUND) return 0;
  if (rc) sl_diag_error("%s: cannot read the durable mark: %s", logdir, sl_strerror(rc));
  return rc;
}

#define REPLAY_BATCH_BYTES (16u << 20)
#define REPLAY_BATCH_COUNT 4096

/* Frames waiting to be applied to the replay store in one LMDB transaction. */
typedef struct replay {
  sl_store *st;
  uint8_t *buf;
  size_t len, cap;
  size_t *offs; /* n + 1 offsets into buf */
  size_t n;
} replay;

static int replay_flush(replay *rp) {
  if (!rp->n) return 0;
  const uint8_t *ptrs[REPLAY_BATCH_COUNT];
  size_t lens[REPLAY_BATCH_COUNT];
  for (size_t i = 0; i < rp->n; i++) {
    ptrs[i] = rp->buf + rp->offs[i];
    lens[i] = rp->offs[i + 1] - rp->offs[i];
  }
  int rc = sl_store_apply_batch(rp->st, ptrs, lens, rp->n);
  rp->n = rp->len = 0;
  return rc;
}

static int replay_add(replay *rp, const sl_frame *f) {
  if (rp->len + f->payload_len > rp->cap) {
    size_t cap = SL_MAX(rp->cap * 2, rp->len + f->payload_len);
    uint8_t *b = realloc(rp->buf, cap);
    if (!b) return -ENOMEM;
    rp->buf = b;
    rp->cap = cap;
  }
  if (!rp->offs && !(rp->offs = malloc((REPLAY_BATCH_COUNT + 1) * sizeof *rp->offs))) return -ENOMEM;
  rp->offs[rp->n] = rp->len;
  memcpy(rp->buf + rp->len, f->payload, f->payload_len);
  rp->len += f->payload_len;
  rp->offs[++rp->n] = rp->len;
  if (rp->n == REPLAY_BATCH_COUNT || rp->len >= REPLAY_BATCH_BYTES) return replay_flush(rp);
  return 0;
}

static int export_to(sl_store_export_fn export_fn, sl_view *v, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    int rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    return rc;
  }
  int rc = export_fn(v, f, path);
  if (fclose(f) != 0 && !rc) rc = -errno;
  return rc;
}

/* 0 if equal; 1 with *line set to the first differing line; <0 on error. */
static int compare_files(const char *a, const char *b, uint64_t *line) {
  FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
  char *la = NULL, *lb = NULL;
  size_t ca = 0, cb = 0;
  int rc = 0;
  *line = 0;
  if (!fa || !fb) {
    rc = -errno;
    goto out;
  }
  for (;;) {
    ssize_t na = getline(&la, &ca, fa), nb = getline(&lb, &cb, fb);
    ++*line;
    if (na < 0 && nb < 0) break;
    if (na != nb || memcmp(la, lb, (size_t)na)) {
      rc = 1;
      break;
    }
  }
out:
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  free(la);
  free(lb);
  return rc;
}

int sl_store_verify(const char *dir, sl_store_export_fn export_fn, sl_verify_result *out) {
  char logdir[4096], tmp[4096] = "", path[4096], path2[4096];
  sl_store *st = NULL;
  sl_view *v = NULL, *rv = NULL;
  sl_log_reader *r = NULL;
  replay rp = {0};
  sl_counts cn, rcn;
  uint64_t first_txid = 0, durable_txid = 0;
  size_t segments = 0;
  int status = SL_ECORRUPT, rc;

  *out = (sl_verify_result){0};
  if ((rc = sl_store_open(dir, SL_OPEN_RDONLY, &st))) {
    sl_diag_error("%s: cannot open store: %s", dir, sl_strerror(rc));
    return rc;
  }
  /* 0. LMDB's pages, before anything walks them (the export below), then
   * whether its databases agree with each other: the one state check a
   * store whose log does not begin at txid 1 can have. */
  if ((rc = sl_store_check(st))) {
    sl_diag_error("%s: FAILED: %s/data.mdb: %s", dir, dir, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_store_check_state(st))) goto fail;
  out->state_consistent = true;
  if ((rc = sl_view_begin(st, &v)) || (rc = sl_view_counts(v, &cn))) {
    sl_diag_error("%s: cannot read the store: %s", dir, sl_strerror(rc));
    goto fail;
  }
  char why[512];
  if ((rc = sl_store_schema_verify(v, why, sizeof why))) {
    sl_diag_error("%s: FAILED: %s", dir, why);
    goto fail;
  }
  snprintf(logdir, sizeof logdir, "%s/log", dir);
  if ((rc = log_facts(logdir, &segments, &first_txid, &durable_txid))) goto fail;
  uint64_t last = SL_MAX(cn.applied_txid, durable_txid);
  bool check_state = first_txid == 1;

  if (check_state) {
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/shiplog-verify.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(tmp)) {
      rc = -errno;
      sl_diag_error("%s: cannot create a scratch directory: %s", tmp, sl_strerror(rc));
      tmp[0] = 0;
      goto fail;
    }
    sl_store_options so = {.no_log = true};
    if ((rc = sl_path_join(path, sizeof path, tmp, "replay")) || (rc = sl_store_create(path, &so)) || (rc = sl_store_open(path, SL_OPEN_NOLOG, &rp.st))) {
      sl_diag_error("%s: cannot create the replay store: %s", path, sl_strerror(rc));
      goto fail;
    }
  }

  /* 1. Every frame. */
  sl_log_reader_options ro = {.max_txid = last, .tolerate_tail = false};
  if (first_txid && (rc = sl_log_reader_open(logdir, first_txid, &ro, &r))) {
    sl_diag_error("%s: cannot read from txid %" PRIu64 ": %s", logdir, first_txid, sl_strerror(rc));
    goto fail;
  }
  uint64_t frames = 0, seen = first_txid ? first_txid - 1 : 0;
  sl_frame f;
  int replay_rc = 0;
  while (r && (rc = sl_log_reader_next(r, &f)) == 0) {
    frames++;
    seen = f.txid;
    if (check_state && f.txid <= cn.applied_txid && (replay_rc = replay_add(&rp, &f))) break;
  }
  if (replay_rc) {
    sl_diag_error("%s: FAILED: the log does not replay (near txid %" PRIu64 "): %s", dir, seen, sl_strerror(replay_rc));
    goto fail;
  }
  if (rc != SL_EEND && rc != 0) {
    sl_diag_error("%s: FAILED: the log is damaged after txid %" PRIu64 " (%s)", dir, seen, sl_strerror(rc));
    goto fail;
  }
  if (seen < last) {
    sl_diag_error("%s: FAILED: the store knows txid %" PRIu64 " but the log ends at txid %" PRIu64, dir, last, seen);
    goto fail;
  }

  /* 2. State against a replay. */
  if (check_state) {
    if ((rc = replay_flush(&rp))) {
      sl_diag_error("%s: FAILED: the log does not replay (near txid %" PRIu64 "): %s", dir, seen, sl_strerror(rc));
      goto fail;
    }
    if ((rc = sl_view_begin(rp.st, &rv)) || (rc = sl_view_counts(rv, &rcn))) {
      sl_diag_error("%s: cannot read the replay store: %s", tmp, sl_strerror(rc));
      goto fail;
    }
    if (rcn.applied_txid != cn.applied_txid) {
      sl_diag_error("%s: FAILED: the replay reached txid %" PRIu64 ", the store is at %" PRIu64, dir, rcn.applied_txid,
                   cn.applied_txid);
      goto fail;
    }
    uint64_t line;
    if ((rc = sl_path_join(path, sizeof path, tmp, "store.jsonl")) ||
        (rc = sl_path_join(path2, sizeof path2, tmp, "replay.jsonl")) || (rc = export_to(export_fn, v, path))) {
      sl_diag_error("%s: FAILED: the state in %s/data.mdb cannot be read whole: %s", dir, dir, sl_strerror(rc));
      goto fail;
    }
    if ((rc = export_to(export_fn, rv, path2))) goto fail;
    if ((rc = compare_files(path, path2, &line)) < 0) {
      sl_diag_error("%s: cannot compare exports: %s", tmp, sl_strerror(rc));
      goto fail;
    }
    if (rc) {
      sl_diag_error("%s: FAILED: the state at txid %" PRIu64 " in %s/data.mdb differs from a replay of the log, from "
                   "line %" PRIu64 " of their canonical exports",
                   dir, cn.applied_txid, dir, line);
      goto fail;
    }
    out->state_checked = true;
  }
  out->frames = frames;
  out->segments = segments;
  out->first_txid = first_txid;
  out->last_txid = seen;
  out->applied_txid = cn.applied_txid;
  out->nodes = cn.nodes;
  out->rels = cn.rels;
  status = 0;
fail:
  if (status) status = rc < 0 && rc != SL_EEND ? rc : SL_ECORRUPT;
  if (r) sl_log_reader_close(r);
  if (rv) sl_view_end(rv);
  if (rp.st) sl_store_close(rp.st);
  free(rp.buf);
  free(rp.offs);
  if (v) sl_view_end(v);
  if (st) sl_store_close(st);
  if (tmp[0]) sl_remove_tree(tmp);
  return status;
}
