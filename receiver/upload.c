/*
 * upload.c: the receiver's uploader to object storage (receiver/s3.h gives
 * the layout, the manifest and when a file is ready).
 *
 * One thread, one S3 connection. It works from the files only -- the
 * archive's segments and durable mark, the snapshots folder -- never from
 * the receiver's in-memory state, so the receiver's hot path is untouched:
 * a slow or absent object store costs it nothing, and what is durable
 * locally is acknowledged as before.
 *
 * Per stream, each pass: (1) the confirmed manifest, from upload.json, or
 * at first from the object store (a receiver that lost its upload.json but
 * not its archive continues the existing manifest); (2) each sealed and
 * durable segment after the manifest's last one, in order: scan its frames
 * for the commit times, PUT, HEAD (size and CRC32C must match the file),
 * add to the manifest, PUT the manifest, write upload.json (fsync,
 * rename); (3) each snapshot not in the manifest, the same way; (4) the
 * upload-status file. The order of (2) keeps the manifest's segments
 * contiguous, which is what a restore needs; since retention removes only
 * what upload.json names, the next segment to upload is always still on
 * disk. A failure stops the pass for that stream, is recorded in
 * upload-status, and the stream is tried again after a backoff (1 s
 * doubling to 30 s) while the other streams go on.
 *
 * THE PARTIAL (s3.h, ARCHIVE TIMEOUT): once every sealed segment is up,
 * (2b) the active segment's durable prefix, when the durable txid moved
 * past what object storage holds and archive_timeout_s passed since the
 * last partial: the frames are scanned up to the durable txid (the
 * reachable time is read before the durable mark, so it never claims a
 * time whose transactions the partial lacks), the prefix is PUT under a
 * new name, HEADed, and the manifest published naming it. A quiet stream
 * (nothing new since) gets only its manifest republished when its
 * reachable time moved, so a restore to "now" reaches it. The object it
 * replaces is retired and deleted at the next replacement (or at the next
 * start's sweep), so a restore that read the older manifest finds it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "receiver_int.h"
#include "s3.h"
#include "sl_base.h"
#include "sl_status.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MANIFEST_MAX (64u << 20)

typedef struct upstream {
  char name[65];
  bool loaded;                   /* manifest read */
  bool swept;                    /* unfinished multipart uploads aborted */
  sl_rx_s3_manifest m;
  uint64_t retry_at_ns;
  int backoff_ms;
  uint64_t objects, bytes;
  uint64_t partial_at_ns;        /* when the last partial was uploaded */
  uint64_t partial_us;           /* the same, wall clock (upload-status) */
  char retired[64];              /* a replaced partial's object, deleted at the next replacement */
  uint64_t retain_ns;            /* when retention last ran */
  char error[256];
} upstream;

struct sl_uploader {
  pthread_t thread;
  atomic_bool stop;
  char data_dir[2048];
  sl_s3_url url;
  sl_objstore *s;
  int scan_ms;
  uint64_t archive_timeout_ns;
  sl_prune_options retain;       /* keep_snapshots, keep_days (RETENTION) */
  upstream *streams;
  size_t nstreams;
};

/* ---- files ------------------------------------------------------------------------ */

static void stream_dir(const sl_uploader *u, const char *name, char *out, size_t len) {
  snprintf(out, len, "%s/" SL_STREAMS_DIR "/%s", u->data_dir, name);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

int sl__upload_local_manifest(const char *sdir, sl_rx_s3_manifest *m) {
  char path[4200];
  uint8_t *text = NULL;
  size_t len = 0;
  snprintf(path, sizeof path, "%s/" SL_RX_S3_LOCAL_MANIFEST, sdir);
  int rc = sl_read_file(path, MANIFEST_MAX, &text, &len);
  if (rc == -ENOENT) return SL_ENOTFOUND;
  if (rc == 0 && (rc = sl_rx_s3_manifest_decode((const char *)text, len, m))) sl_diag_error("%s: unreadable", path);
  free(text);
  return rc;
}

bool sl__upload_confirmed(const char *sdir, const char *path) {
  sl_rx_s3_manifest m;
  int rc = sl__upload_local_manifest(sdir, &m);
  if (rc == SL_ENOTFOUND) return true; /* not archived to object storage */
  if (rc) return false;
  const char *name = base_name(path);
  bool found = false;
  for (size_t i = 0; i < m.nsegs && !found; i++) found = !strcmp(m.segs[i].name, name);
  for (size_t i = 0; i < m.nsnaps && !found; i++) found = !strcmp(m.snaps[i].name, name);
  sl_rx_s3_manifest_free(&m);
  return found;
}

/* ---- one stream ----------------------------------------------------------------------- */

static int publish(sl_uploader *u, upstream *st, const char *sdir) {
  char key[2048], *text = NULL;
  st->m.updated_us = sl_now_us();
  int rc = sl_rx_s3_manifest_encode(&st->m, &text);
  if (rc) return rc;
  sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "", SL_RX_S3_MANIFEST_NAME);
  if ((rc = sl_objstore_put_buf(u->s, key, text, strlen(text))) == 0 &&
      (rc = sl_write_file_atomic(sdir, SL_RX_S3_LOCAL_MANIFEST, text, strlen(text))))
    sl_diag_error("%s/" SL_RX_S3_LOCAL_MANIFEST ": %s", sdir, sl_strerror(rc));
  free(text);
  return rc;
}

/* PUT the file (its first `prefix` bytes; 0: all of it), then HEAD it: the
 * object must hold that size and CRC32C. */
static int put_verified(sl_uploader *u, upstream *st, const char *path, uint64_t prefix, const char *key,
                        sl_rx_s3_entry *e) {
  struct stat sb;
  sl_obj_info info;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
  if (fd < 0 || fstat(fd, &sb)) {
    rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    if (fd >= 0) close(fd);
    return rc;
  }
  e->bytes = prefix ? SL_MIN(prefix, (uint64_t)sb.st_size) : (uint64_t)sb.st_size;
  rc = sl_objstore_put_file(u->s, key, fd, e->bytes, &e->crc32c);
  close(fd);
  if (rc || (rc = sl_objstore_head(u->s, key, &info))) return rc;
  if (info.size != e->bytes || !info.has_crc || info.crc32c != e->crc32c) {
    sl_diag_error("s3://%s/%s: after the upload it holds %" PRIu64 " bytes (CRC32C %08" PRIx32 "), %s %" PRIu64
                 " (%08" PRIx32 ")",
                 u->url.bucket, key, info.size, info.crc32c, path, e->bytes, e->crc32c);
    return SL_ECORRUPT;
  }
  snprintf(e->name, sizeof e->name, "%s", base_name(path));
  st->objects++;
  st->bytes += e->bytes;
  return 0;
}

/* Commit times of txids first (first frame), last and last + 1 (the next
 * segment's first frame). */
static int segment_times(const char *archive, sl_rx_s3_entry *e) {
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.max_txid = e->last_txid + 1, .tolerate_tail = true};
  int rc = sl_log_reader_open(archive, e->first_txid, &ro, &r);
  if (rc) return rc;
  while ((rc = sl_log_reader_next(r, &f)) == 0) {
    if (f.txid == e->first_txid) e->first_commit_us = f.commit_us;
    if (f.txid == e->last_txid) e->last_commit_us = f.commit_us;
    if (f.txid == e->last_txid + 1) {
      e->next_commit_us = f.commit_us;
      break;
    }
  }
  sl_log_reader_close(r);
  if (rc == SL_EEND || !e->next_commit_us) {
    sl_diag_error("%s: cannot read txids %" PRIu64 "..%" PRIu64 " of a sealed segment", archive, e->first_txid,
                 e->last_txid + 1);
    return SL_ECORRUPT;
  }
  return rc;
}

/* The manifest to continue: upload.json, else the object store's, else new. */
static int load_manifest(sl_uploader *u, upstream *st, const char *sdir, const uint8_t *store_id) {
  char key[2048];
  uint8_t *text = NULL;
  size_t len = 0;
  int rc = sl__upload_local_manifest(sdir, &st->m);
  if (rc == SL_ENOTFOUND) {
    sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "", SL_RX_S3_MANIFEST_NAME);
    rc = sl_objstore_get_buf(u->s, key, MANIFEST_MAX, &text, &len);
    if (rc == 0) {
      rc = sl_rx_s3_manifest_decode((const char *)text, len, &st->m);
      if (rc) sl_diag_error("s3://%s/%s: unreadable", u->url.bucket, key);
    } else if (rc == SL_ENOTFOUND) {
      memset(&st->m, 0, sizeof st->m);
      snprintf(st->m.stream, sizeof st->m.stream, "%s", st->name);
      memcpy(st->m.store_id, store_id, SL_STORE_ID_SIZE);
      rc = 0;
    }
    free(text);
  }
  if (rc) return rc;
  if (memcmp(st->m.store_id, store_id, SL_STORE_ID_SIZE)) {
    sl_diag_error("stream %s: s3://%s/%s/%s holds another store's archive: refusing to mix them", st->name,
                 u->url.bucket, u->url.prefix, st->name);
    sl_rx_s3_manifest_free(&st->m);
    return SL_ESTOREID;
  }
  st->loaded = true;
  return 0;
}

static uint64_t sealed_txid(const upstream *st) {
  return st->m.nsegs ? st->m.segs[st->m.nsegs - 1].last_txid : 0;
}

static uint64_t uploaded_txid(const upstream *st) {
  return SL_MAX(sealed_txid(st), st->m.has_partial ? st->m.partial.last_txid : 0);
}

static int write_status(const char *sdir, const upstream *st, uint64_t durable, uint64_t pending_bytes,
                        uint64_t pending_files) {
  char path[4200], text[1024];
  uint64_t up = uploaded_txid(st);
  snprintf(path, sizeof path, "%s/" SL_RX_S3_UPLOAD_STATUS, sdir);
  snprintf(text, sizeof text,
           "uploaded_txid=%" PRIu64 "\nsealed_txid=%" PRIu64 "\npartial_us=%" PRIu64 "\nlag_tx=%" PRIu64
           "\npending_bytes=%" PRIu64 "\npending_files=%" PRIu64
           "\nobjects=%" PRIu64 "\nbytes=%" PRIu64 "\nupdated_us=%" PRIu64 "\nerror=%s\n",
           up, sealed_txid(st), st->m.has_partial ? st->partial_us : 0, durable > up ? durable - up : 0,
           pending_bytes, pending_files, st->objects, st->bytes, sl_now_us(), st->error);
  return sl_status_write(path, text);
}

/* Delete a retired partial object (a failure only leaves it for the next
 * start's sweep). */
static void drop_object(sl_uploader *u, upstream *st, const char *object) {
  char key[2048];
  if (!object[0]) return;
  sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "archive", object);
  if (sl_objstore_delete(u->s, key) && !atomic_load(&u->stop))
    sl_diag_warn("stream %s: s3://%s/%s: cannot delete this retired partial segment", st->name, u->url.bucket, key);
}

/* The first start's sweep: *.partial objects the manifest does not name. */
static int sweep_partials(sl_uploader *u, upstream *st) {
  char prefix[2048], **keys = NULL;
  size_t n = 0;
  sl_rx_s3_key(prefix, sizeof prefix, u->url.prefix, st->name, "archive", "");
  int rc = sl_objstore_list(u->s, prefix, &keys, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *name = base_name(keys[i]);
    size_t len = strlen(name);
    if (len > 8 && !strcmp(name + len - 8, ".partial") && !(st->m.has_partial && !strcmp(st->m.partial.object, name)))
      drop_object(u, st, name);
  }
  sl_objstore_free_list(keys, n);
  return rc;
}

/* (2b) the durable prefix of the active segment seg (THE PARTIAL). */
static int upload_partial(sl_uploader *u, upstream *st, const char *sdir, const char *archive, const sl_seg_info *seg) {
  char key[2048];
  sl_log_reader *r = NULL;
  sl_frame f;
  uint64_t reachable = sl__stream_reachable_us(sdir), durable = 0, end = 0;
  sl_rx_s3_entry e = {.first_txid = seg->first_txid, .last_txid = seg->first_txid - 1};
  int rc = sl_log_read_durable_mark(archive, &durable);
  if (rc) return rc;
  if (st->m.has_partial && st->m.partial.first_txid == seg->first_txid && st->m.partial.last_txid == durable) {
    /* A quiet stream: nothing new, but time went on (heartbeats), and a
     * restore to now should reach it: the manifest alone is republished. */
    if (reachable + 1 <= st->m.partial.next_commit_us) return 0;
    uint64_t was = st->m.partial.next_commit_us;
    st->m.partial.next_commit_us = reachable + 1;
    if ((rc = publish(u, st, sdir))) st->m.partial.next_commit_us = was;
    else st->partial_at_ns = sl_mono_ns();
    return rc;
  }
  sl_log_reader_options ro = {.max_txid = durable, .tolerate_tail = true};
  if ((rc = sl_log_reader_open(archive, seg->first_txid, &ro, &r))) return rc;
  while ((rc = sl_log_reader_next(r, &f)) == 0 && f.segno == seg->segno) {
    if (f.txid == e.first_txid) e.first_commit_us = f.commit_us;
    e.last_txid = f.txid;
    e.last_commit_us = f.commit_us;
    end = f.offset + SL_FRAME_HEADER_SIZE + f.payload_len;
  }
  sl_log_reader_close(r);
  if (rc && rc != SL_EEND) return rc;
  if (e.last_txid < e.first_txid || (st->m.has_partial && e.last_txid <= st->m.partial.last_txid)) return 0;
  /* Every time before next_commit_us is covered: up to the reachable time
   * when the prefix holds all that was durable after it was read, else up
   * to the last commit (a later txid may share its time). */
  e.next_commit_us = e.last_txid == durable ? SL_MAX(reachable + 1, e.last_commit_us) : e.last_commit_us;
  snprintf(e.object, sizeof e.object, "%" PRIu64 "-%" PRIu64 ".partial", seg->segno, e.last_txid);
  sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "archive", e.object);
  if ((rc = put_verified(u, st, seg->path, end, key, &e))) return rc;
  sl_rx_s3_entry was = st->m.partial;
  bool had = st->m.has_partial;
  st->m.partial = e;
  st->m.has_partial = true;
  if ((rc = publish(u, st, sdir))) {
    st->m.partial = was;
    st->m.has_partial = had;
    drop_object(u, st, e.object);
    return rc;
  }
  st->partial_at_ns = sl_mono_ns();
  st->partial_us = sl_now_us();
  drop_object(u, st, st->retired);
  snprintf(st->retired, sizeof st->retired, "%s", had ? was.object : "");
  sl_diag_info("stream %s: txids %" PRIu64 "..%" PRIu64 " of the active segment uploaded as %s", st->name,
               e.first_txid, e.last_txid, key);
  return 0;
}

static bool local_gone(const char *sdir, const char *sub, const char *name) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s/%s", sdir, sub, name);
  return access(path, F_OK) != 0 && errno == ENOENT;
}

static int by_txid(const void *a, const void *b) {
  const sl_snapshot *x = a, *y = b;
  return x->txid < y->txid ? -1 : x->txid > y->txid;
}

/* RETENTION (s3.h): drop what the rules let go and the receiver no longer
 * keeps; publish; then delete the objects. */
static int retain_objects(sl_uploader *u, upstream *st, const char *sdir) {
  sl_rx_s3_manifest *m = &st->m;
  sl_snapshot *sv = m->nsnaps ? calloc(m->nsnaps, sizeof *sv) : NULL;
  bool *keep = m->nsnaps ? calloc(m->nsnaps, sizeof *keep) : NULL;
  sl_rx_s3_entry *segs = NULL, *snaps = NULL;
  size_t nsegs = 0, nsnaps = 0, drop_segs = 0;
  int rc = 0;
  if (!m->nsnaps) goto out; /* no base: nothing below one */
  if (!sv || !keep) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < m->nsnaps; i++) /* .bytes: the entry's index */
    sv[i] = (sl_snapshot){.txid = m->snaps[i].txid, .created_us = m->snaps[i].created_us, .bytes = i};
  qsort(sv, m->nsnaps, sizeof *sv, by_txid);
  sl__prune_choose_kept(sv, m->nsnaps, &u->retain, keep);
  if (!(snaps = calloc(m->nsnaps, sizeof *snaps))) {
    rc = -ENOMEM;
    goto out;
  }
  uint64_t oldest = UINT64_MAX;
  for (size_t k = 0; k < m->nsnaps; k++) {
    const sl_rx_s3_entry *e = &m->snaps[sv[k].bytes];
    if (!keep[k] && local_gone(sdir, SL_STREAM_SNAPSHOTS, e->name)) continue;
    snaps[nsnaps++] = *e;
    oldest = SL_MIN(oldest, e->txid);
  }
  while (drop_segs + 1 < m->nsegs && m->segs[drop_segs].last_txid <= oldest &&
         local_gone(sdir, SL_STREAM_ARCHIVE, m->segs[drop_segs].name))
    drop_segs++;
  if (nsnaps == m->nsnaps && !drop_segs) goto out;
  nsegs = m->nsegs - drop_segs;
  if (nsegs && !(segs = malloc(nsegs * sizeof *segs))) {
    rc = -ENOMEM;
    goto out;
  }
  if (nsegs) memcpy(segs, m->segs + drop_segs, nsegs * sizeof *segs);
  sl_rx_s3_manifest was = *m;
  m->segs = segs, m->nsegs = nsegs, m->snaps = snaps, m->nsnaps = nsnaps;
  if ((rc = publish(u, st, sdir))) {
    m->segs = was.segs, m->nsegs = was.nsegs, m->snaps = was.snaps, m->nsnaps = was.nsnaps;
    free(segs);
    goto out;
  }
  snaps = NULL;
  char key[2048];
  for (size_t i = 0; i < drop_segs; i++) {
    sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "archive", was.segs[i].name);
    if (sl_objstore_delete(u->s, key)) sl_diag_warn("stream %s: s3://%s/%s: expired, not deleted", st->name, u->url.bucket, key);
  }
  for (size_t i = 0; i < was.nsnaps; i++) {
    bool kept = false;
    for (size_t k = 0; k < nsnaps && !kept; k++) kept = !strcmp(m->snaps[k].name, was.snaps[i].name);
    if (kept) continue;
    sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "snapshots", was.snaps[i].name);
    if (sl_objstore_delete(u->s, key)) sl_diag_warn("stream %s: s3://%s/%s: expired, not deleted", st->name, u->url.bucket, key);
  }
  sl_diag_info("stream %s: retention in object storage: %zu segments and %zu snapshots expired", st->name, drop_segs,
               was.nsnaps - nsnaps);
  free(was.segs);
  free(was.snaps);
out:
  free(sv);
  free(keep);
  free(snaps);
  return rc;
}

static int sync_stream(sl_uploader *u, upstream *st) {
  char sdir[4096], archive[4200], snaps[4200], key[2048];
  sl_seg_info *segs = NULL;
  sl_snapshot *sn = NULL;
  size_t nseg = 0, nsn = 0;
  uint64_t durable = 0, pending_bytes = 0, pending_files = 0;
  uint8_t store_id[SL_STORE_ID_SIZE];
  stream_dir(u, st->name, sdir, sizeof sdir);
  snprintf(archive, sizeof archive, "%s/" SL_STREAM_ARCHIVE, sdir);
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, sdir);
  int rc = sl_log_list(archive, &segs, &nseg);
  if (rc || nseg == 0) goto out;
  if ((rc = sl_log_read_durable_mark(archive, &durable)) == SL_ENOTFOUND) rc = 0;
  if (rc || (rc = sl__seg_store_id(segs[0].path, store_id))) goto out;
  if (!st->loaded && (rc = load_manifest(u, st, sdir, store_id))) goto out;
  if (!st->swept) { /* what a killed receiver left half sent */
    sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "", "");
    if ((rc = sl_objstore_abort_uploads(u->s, key, NULL)) || (rc = sweep_partials(u, st))) goto out;
    st->swept = true;
  }
  for (size_t i = 0; i < nseg; i++) {
    uint64_t up = st->m.nsegs ? st->m.segs[st->m.nsegs - 1].last_txid : 0;
    bool sealed = i + 1 < nseg && durable >= segs[i + 1].first_txid - 1;
    if (i + 1 < nseg && segs[i + 1].first_txid - 1 <= up) continue; /* uploaded */
    pending_bytes += segs[i].size;
    pending_files++;
    if (rc || !sealed || atomic_load(&u->stop)) continue;
    if (st->m.nsegs && segs[i].first_txid != up + 1) {
      sl_diag_error("stream %s: the archive holds txids from %" PRIu64 " but object storage ends at %" PRIu64
                   ": the archive was pruned before it was uploaded",
                   st->name, segs[i].first_txid, up);
      rc = SL_EGAP;
      continue;
    }
    sl_rx_s3_entry e = {.first_txid = segs[i].first_txid, .last_txid = segs[i + 1].first_txid - 1};
    uint64_t plain, packed;
    if ((rc = sl_log_seg_pack(segs[i].path, &plain, &packed))) continue; /* the keeper may not have yet */
    sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "archive", base_name(segs[i].path));
    if ((rc = segment_times(archive, &e)) || (rc = put_verified(u, st, segs[i].path, 0, key, &e)) ||
        (rc = sl_rx_s3_manifest_add(&st->m, true, &e)))
      continue;
    /* the sealed segment covers the partial of its prefix */
    bool covers = st->m.has_partial && st->m.partial.first_txid <= e.last_txid;
    st->m.has_partial = st->m.has_partial && !covers;
    if ((rc = publish(u, st, sdir))) {
      st->m.nsegs--; /* not confirmed: tried again */
      st->m.has_partial = st->m.has_partial || covers;
      continue;
    }
    if (covers) {
      drop_object(u, st, st->retired);
      snprintf(st->retired, sizeof st->retired, "%s", st->m.partial.object);
    }
    pending_bytes -= segs[i].size;
    pending_files--;
  }
  const sl_seg_info *active = &segs[nseg - 1];
  bool caught_up = st->m.nsegs ? sealed_txid(st) + 1 == active->first_txid : nseg == 1;
  bool grew = durable > SL_MAX(uploaded_txid(st), active->first_txid - 1);
  bool quiet = st->m.has_partial && st->m.partial.first_txid == active->first_txid;
  if (rc == 0 && u->archive_timeout_ns && caught_up && (grew || quiet) &&
      (!st->partial_at_ns || sl_mono_ns() - st->partial_at_ns >= u->archive_timeout_ns) && !atomic_load(&u->stop))
    rc = upload_partial(u, st, sdir, archive, active);
  if (sl_snapshot_list(snaps, store_id, &sn, &nsn) == 0) {
    for (size_t i = 0; i < nsn; i++) {
      const char *name = base_name(sn[i].path);
      bool done = false;
      for (size_t k = 0; k < st->m.nsnaps && !done; k++) done = !strcmp(st->m.snaps[k].name, name);
      if (done) continue;
      pending_bytes += sn[i].bytes;
      pending_files++;
      if (rc || atomic_load(&u->stop)) continue;
      sl_rx_s3_entry e = {.txid = sn[i].txid, .commit_us = sn[i].commit_us, .created_us = sn[i].created_us};
      sl_rx_s3_key(key, sizeof key, u->url.prefix, st->name, "snapshots", name);
      if ((rc = put_verified(u, st, sn[i].path, 0, key, &e)) || (rc = sl_rx_s3_manifest_add(&st->m, false, &e))) continue;
      if ((rc = publish(u, st, sdir))) {
        st->m.nsnaps--;
        continue;
      }
      pending_bytes -= sn[i].bytes;
      pending_files--;
    }
  }
  if (rc == 0 && (u->retain.keep_snapshots || u->retain.keep_days > 0) && !atomic_load(&u->stop) &&
      (!st->retain_ns || sl_mono_ns() - st->retain_ns >= 10000000000ull)) {
    st->retain_ns = sl_mono_ns();
    rc = retain_objects(u, st, sdir);
  }
out:
  if (rc) snprintf(st->error, sizeof st->error, "%s", sl_strerror(rc));
  else st->error[0] = 0;
  if (nseg) write_status(sdir, st, durable, pending_bytes, pending_files);
  free(segs);
  free(sn);
  return rc;
}

/* ---- the thread ------------------------------------------------------------------------- */

static upstream *stream_of(sl_uploader *u, const char *name) {
  for (size_t i = 0; i < u->nstreams; i++)
    if (!strcmp(u->streams[i].name, name)) return &u->streams[i];
  upstream *p = realloc(u->streams, (u->nstreams + 1) * sizeof *p);
  if (!p) return NULL;
  u->streams = p;
  p = &u->streams[u->nstreams++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%.64s", name);
  return p;
}

static void pass(sl_uploader *u) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/" SL_STREAMS_DIR, u->data_dir);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && !atomic_load(&u->stop)) {
    if (!sl_stream_name_valid(e->d_name)) continue;
    upstream *st = stream_of(u, e->d_name);
    if (!st || sl_mono_ns() < st->retry_at_ns) continue;
    if (sync_stream(u, st) && !atomic_load(&u->stop)) {
      st->backoff_ms = SL_MIN(SL_MAX(st->backoff_ms * 2, BACKOFF_MIN_MS), BACKOFF_MAX_MS);
      st->retry_at_ns = sl_mono_ns() + (uint64_t)st->backoff_ms * 1000000u;
      sl_diag_warn("stream %s: upload to s3://%s/%s: %s; trying again in %d ms", st->name, u->url.bucket,
                  u->url.prefix, st->error, st->backoff_ms);
    } else {
      st->backoff_ms = 0;
    }
  }
  closedir(d);
}

static void *run(void *arg) {
  sl_uploader *u = arg;
  while (!atomic_load(&u->stop)) {
    pass(u);
    for (int waited = 0; waited < u->scan_ms && !atomic_load(&u->stop); waited += 50) {
      struct timespec ts = {0, 50 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

int sl_upload_start(const sl_upload_options *o, sl_uploader **out) {
  sl_uploader *u = calloc(1, sizeof *u);
  int rc;
  *out = NULL;
  if (!u) return -ENOMEM;
  if (sl_s3_url_parse(o->url, &u->url)) {
    sl_diag_error("--archive-to %s: not s3://BUCKET[/PREFIX] (keys: [A-Za-z0-9._/-])", o->url);
    free(u);
    return SL_EINVAL;
  }
  snprintf(u->data_dir, sizeof u->data_dir, "%s", o->data_dir);
  u->scan_ms = o->scan_ms > 0 ? o->scan_ms : 1000;
  u->archive_timeout_ns = o->archive_timeout_s * 1000000000ull;
  u->retain = (sl_prune_options){.keep_snapshots = o->retain_snapshots, .keep_days = o->retain_days};
  if (u->archive_timeout_ns) u->scan_ms = (int)SL_MIN((uint64_t)u->scan_ms, o->archive_timeout_s * 1000);
  atomic_init(&u->stop, false);
  sl_objstore_options so = {.endpoint = o->endpoint, .region = o->region, .bucket = u->url.bucket,
                            .cancel = &u->stop};
  if ((rc = sl_objstore_open(&so, &u->s))) {
    free(u);
    return rc;
  }
  if ((rc = pthread_create(&u->thread, NULL, run, u))) {
    sl_objstore_close(u->s);
    free(u);
    return -rc;
  }
  sl_diag_info("archiving every stream to s3://%s/%s", u->url.bucket, u->url.prefix);
  *out = u;
  return 0;
}

void sl_upload_stop(sl_uploader *u) {
  if (!u) return;
  atomic_store(&u->stop, true);
  pthread_join(u->thread, NULL);
  for (size_t i = 0; i < u->nstreams; i++) sl_rx_s3_manifest_free(&u->streams[i].m);
  free(u->streams);
  sl_objstore_close(u->s);
  free(u);
}

int sl_upload_status_read(const char *data_dir, const char *stream, sl_upload_status *out) {
  char path[4200], text[2048];
  memset(out, 0, sizeof *out);
  snprintf(path, sizeof path, "%s/" SL_STREAMS_DIR "/%s/" SL_RX_S3_UPLOAD_STATUS, data_dir, stream);
  int rc = sl_status_load(path, text, sizeof text);
  if (rc) return rc == -ENOENT ? 0 : rc;
  out->present = true;
  out->uploaded_txid = sl_status_get_u64(text, "uploaded_txid");
  out->sealed_txid = sl_status_get_u64(text, "sealed_txid");
  out->partial_us = sl_status_get_u64(text, "partial_us");
  out->lag_tx = sl_status_get_u64(text, "lag_tx");
  out->pending_bytes = sl_status_get_u64(text, "pending_bytes");
  out->pending_files = sl_status_get_u64(text, "pending_files");
  out->objects = sl_status_get_u64(text, "objects");
  out->bytes = sl_status_get_u64(text, "bytes");
  out->updated_us = sl_status_get_u64(text, "updated_us");
  sl_status_get(text, "error", out->error, sizeof out->error);
  return 0;
}
