/*
 * restore_s3.c: a stream's state at a txid or a time from object storage
 * alone (receiver/s3.h), with no data directory.
 *
 * STEPS
 *   1. GET the manifest; resolve the target against it as restore.c does
 *      against a data directory: what object storage holds is its
 *      contiguous segments, the partial one last when it continues them
 *      (s3.h, ARCHIVE TIMEOUT: fetched under its own object name, read as
 *      the segment it is a prefix of), txids A..D, every time before the
 *      last one's next_commit_us, and its snapshots. A time resolves to a segment
 *      (the last whose first commit is at or before it), which is fetched
 *      first and read for the exact txid.
 *   2. Choose the base (newest snapshot at or before the target that the
 *      segments continue, or the empty store when they start at txid 1)
 *      and the segments from base + 1 to the target.
 *   3. THE PIPELINE: `parallel` worker threads, each with its own S3
 *      connection, take the objects in order (the base first), at most
 *      2 x parallel ahead of what the restore has consumed, and GET each
 *      into SCRATCH/fetch, checking its size and CRC32C against the
 *      manifest before renaming it to its name. Meanwhile this thread
 *      loads the base as soon as it is there and replays segment after
 *      segment through restore.c (sl__restore_build): its archive_wait
 *      hook blocks until the next segment has arrived, then moves it (and
 *      any later ones already there, in order) into SCRATCH/archive, where
 *      the log reader finds it. So fetching, loading and replaying overlap
 *      and the scratch space stays bounded.
 *   4. As restore.c: the store is built in INTO.restore-tmp-PID and renamed
 *      to INTO; SCRATCH (INTO.s3-fetch-PID) is removed whatever happens.
 * A failed object stops the workers and the restore, naming its key.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "receiver_int.h"
#include "s3.h"
#include "sl_base.h"
#include "sl_status.h"

typedef struct job {
  const sl_rx_s3_entry *e;
  bool segment;
  bool done;
} job;

typedef struct pipeline {
  const sl_rx_s3_restore_options *o;
  sl_s3_url url;
  char fetch[3900], archive[3900];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *jobs;
  size_t njobs, next, consumed, window;
  int err;
  uint64_t done_bytes, total_bytes, objects;
} pipeline;

static void object_url(const pipeline *p, const job *j, char *key, size_t len) {
  sl_rx_s3_key(key, len, p->url.prefix, p->o->stream, j->segment ? "archive" : "snapshots",
               j->e->object[0] ? j->e->object : j->e->name);
}

/* GET one object into fetch/NAME, checked against the manifest. */
static int fetch_one(pipeline *p, sl_objstore *s, const job *j) {
  char key[2048], part[4400], path[4400];
  uint64_t size = 0;
  uint32_t crc = 0;
  object_url(p, j, key, sizeof key);
  snprintf(part, sizeof part, "%s/%s.part", p->fetch, j->e->name);
  snprintf(path, sizeof path, "%s/%s", p->fetch, j->e->name);
  int fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc;
  if (fd < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", part, sl_strerror(rc));
    return rc;
  }
  rc = sl_objstore_get_file(s, key, fd, &size, &crc);
  close(fd);
  if (rc == SL_ENOTFOUND) {
    sl_diag_error("s3://%s/%s: missing, though the manifest names it", p->url.bucket, key);
  } else if (rc == 0 && (size != j->e->bytes || crc != j->e->crc32c)) {
    sl_diag_error("s3://%s/%s: damaged: %" PRIu64 " bytes with CRC32C %08" PRIx32 ", the manifest says %" PRIu64
                 " with %08" PRIx32,
                 p->url.bucket, key, size, crc, j->e->bytes, j->e->crc32c);
    rc = SL_ECORRUPT;
  } else if (rc == 0 && rename(part, path)) {
    rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
  }
  if (rc) unlink(part);
  return rc;
}

static void *worker(void *arg) {
  pipeline *p = arg;
  sl_objstore *s = NULL;
  int rc = sl_objstore_open(&(sl_objstore_options){.endpoint = p->o->endpoint, .region = p->o->region,
                                                   .bucket = p->url.bucket},
                            &s);
  pthread_mutex_lock(&p->mu);
  if (rc && !p->err) p->err = rc;
  for (;;) {
    while (!p->err && p->next < p->njobs && p->next >= p->consumed + p->window) pthread_cond_wait(&p->cv, &p->mu);
    if (p->err || p->next >= p->njobs) break;
    job *j = &p->jobs[p->next++];
    if (j->done) continue;
    pthread_mutex_unlock(&p->mu);
    rc = fetch_one(p, s, j);
    pthread_mutex_lock(&p->mu);
    if (rc) {
      if (!p->err) p->err = rc;
    } else {
      j->done = true;
      p->done_bytes += j->e->bytes;
      p->objects++;
      if (p->o->fetch_progress) p->o->fetch_progress(p->o->progress_arg, p->done_bytes, p->total_bytes);
    }
    pthread_cond_broadcast(&p->cv);
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  sl_objstore_close(s);
  return NULL;
}

/* Block until job k has arrived; then it counts as consumed. */
static int wait_job(pipeline *p, size_t k) {
  pthread_mutex_lock(&p->mu);
  while (!p->err && !p->jobs[k].done) pthread_cond_wait(&p->cv, &p->mu);
  int rc = p->jobs[k].done ? 0 : p->err;
  if (rc == 0 && p->consumed < k + 1) {
    p->consumed = k + 1;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* restore.c's archive_wait: the segment holding txid, and every one before
 * it, moved into the archive in order. */
static int archive_wait(void *arg, uint64_t txid) {
  pipeline *p = arg;
  char from[4400], to[4400];
  for (size_t k = 0; k < p->njobs; k++) {
    job *j = &p->jobs[k];
    if (!j->segment || j->e->first_txid > txid) continue;
    struct stat sb;
    snprintf(to, sizeof to, "%s/%s", p->archive, j->e->name);
    if (stat(to, &sb) == 0) continue; /* moved already */
    int rc = wait_job(p, k);
    if (rc) return rc;
    snprintf(from, sizeof from, "%s/%s", p->fetch, j->e->name);
    if (rename(from, to)) {
      rc = -errno;
      sl_diag_error("%s: %s", to, sl_strerror(rc));
      return rc;
    }
  }
  return 0;
}

/* By time: the last txid committed at or before T in segment file path. */
static int txid_at_time(const char *dir, const sl_rx_s3_entry *seg, uint64_t t, uint64_t *txid) {
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.max_txid = seg->last_txid, .tolerate_tail = false};
  int rc = sl_log_reader_open(dir, seg->first_txid, &ro, &r);
  if (rc) return rc;
  *txid = seg->first_txid - 1;
  while ((rc = sl_log_reader_next(r, &f)) == 0 && f.commit_us <= t) *txid = f.txid;
  sl_log_reader_close(r);
  return rc == 0 || rc == SL_EEND ? 0 : rc;
}

static void describe(const sl_rx_s3_manifest *m, const char *url, char *buf, size_t len) {
  char t0[40] = "-", t1[40] = "-", t2[40] = "-";
  size_t n = 0;
  const sl_rx_s3_entry *a = &m->segs[0], *d = &m->segs[m->nsegs - 1];
  sl_time_format(a->first_commit_us, t0, sizeof t0);
  sl_time_format(d->last_commit_us, t1, sizeof t1);
  sl_time_format(d->next_commit_us - 1, t2, sizeof t2);
  n += (size_t)snprintf(buf + n, len - n,
                        "%s/%s holds txids %" PRIu64 "..%" PRIu64
                        " (committed from %s to %s; times reachable up to %s)",
                        url, m->stream, a->first_txid, d->last_txid, t0, t1, t2);
  n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "; bases: %s", a->first_txid == 1 ? "the empty store" : "");
  for (size_t i = 0; i < m->nsnaps && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s snapshot at txid %" PRIu64, i || a->first_txid == 1 ? "," : "",
                          m->snaps[i].txid);
}

static int resolve(const sl_rx_s3_restore_options *o, const sl_rx_s3_manifest *m, pipeline *p, sl_objstore *s,
                   const char *probe, uint64_t *txid, const sl_rx_s3_entry **base, const sl_rx_s3_entry **probed) {
  char avail[2048], what[64], tb[40];
  const sl_rx_s3_entry *a = &m->segs[0], *d = &m->segs[m->nsegs - 1];
  describe(m, o->url, avail, sizeof avail);
  uint64_t n;
  if (o->by_time) {
    snprintf(what, sizeof what, "time %s", sl_time_format(o->time_us, tb, sizeof tb));
    if (o->time_us >= d->next_commit_us) {
      sl_diag_error("stream %s: %s is past what object storage holds: %s", o->stream, what, avail);
      return SL_EINVAL;
    }
    size_t j = m->nsegs;
    for (size_t i = 0; i < m->nsegs; i++)
      if (m->segs[i].first_commit_us <= o->time_us) j = i;
    if (j == m->nsegs) {
      n = a->first_txid - 1;
    } else {
      /* the segment that holds the answer, fetched first, read in a folder of its own */
      char from[4400], to[4400];
      job pj = {.e = &m->segs[j], .segment = true};
      int rc = fetch_one(p, s, &pj);
      if (rc) return rc;
      snprintf(from, sizeof from, "%s/%s", p->fetch, m->segs[j].name);
      snprintf(to, sizeof to, "%s/%s", probe, m->segs[j].name);
      if (link(from, to)) {
        rc = -errno;
        sl_diag_error("%s: %s", to, sl_strerror(rc));
        return rc;
      }
      if ((rc = txid_at_time(probe, &m->segs[j], o->time_us, &n))) return rc;
      *probed = &m->segs[j];
    }
  } else {
    snprintf(what, sizeof what, "txid %" PRIu64, o->txid);
    n = o->txid;
    if (n > d->last_txid) {
      sl_diag_error("stream %s: %s is past what object storage holds: %s", o->stream, what, avail);
      return SL_EINVAL;
    }
  }
  /* As restore.c: the empty store before the first commit is no target. */
  if (n == 0 && d->last_txid >= 1) {
    sl_diag_error("stream %s: %s is before the stream's first commit: %s", o->stream, what, avail);
    return SL_EINVAL;
  }
  bool found = a->first_txid == 1 && n >= a->first_txid - 1;
  *base = NULL;
  for (size_t i = 0; i < m->nsnaps; i++) {
    const sl_rx_s3_entry *sn = &m->snaps[i];
    if (sn->txid <= n && sn->txid + 1 >= a->first_txid && (!o->by_time || sn->commit_us <= o->time_us) &&
        (!*base || sn->txid > (*base)->txid)) {
      *base = sn;
      found = true;
    }
  }
  if (!found) {
    sl_diag_error("stream %s: %s is before the first base object storage continues: %s", o->stream, what, avail);
    return SL_EINVAL;
  }
  *txid = n;
  return 0;
}

int sl_rx_s3_manifest_fetch(sl_objstore *s, const sl_s3_url *u, const char *stream, sl_rx_s3_manifest *m) {
  char key[2048];
  uint8_t *text = NULL;
  size_t len = 0;
  sl_rx_s3_key(key, sizeof key, u->prefix, stream, "", SL_RX_S3_MANIFEST_NAME);
  int rc = sl_objstore_get_buf(s, key, 64u << 20, &text, &len);
  if (rc == SL_ENOTFOUND)
    sl_diag_error("s3://%s/%s: no such manifest: no stream %s under s3://%s/%s", u->bucket, key, stream, u->bucket,
                  u->prefix);
  if (rc) return rc;
  rc = sl_rx_s3_manifest_decode((const char *)text, len, m);
  free(text);
  if (rc) sl_diag_error("s3://%s/%s: not a manifest shiplog can read", u->bucket, key);
  else if ((rc = sl_rx_s3_manifest_take_partial(m))) sl_rx_s3_manifest_free(m);
  return rc;
}

static int get_manifest(const sl_rx_s3_restore_options *o, const sl_s3_url *u, sl_objstore *s, sl_rx_s3_manifest *m) {
  int rc = sl_rx_s3_manifest_fetch(s, u, o->stream, m);
  if (!rc && m->nsegs == 0) {
    sl_diag_error("s3://%s/%s: object storage holds no segment of stream %s yet", u->bucket, u->prefix,
                  o->stream);
    rc = SL_EINVAL;
  }
  return rc;
}

int sl_restore_s3(const sl_rx_s3_restore_options *o, sl_rx_s3_restore_result *out) {
  char scratch[3800], tmp[4200], probe[3900], parent[4200];
  sl_rx_s3_manifest m = {0};
  pipeline p = {.o = o};
  sl_objstore *s = NULL;
  pthread_t *th = NULL;
  size_t nth = 0;
  bool made = false, built = false;
  uint64_t t0 = sl_mono_ns(), txid = 0;
  const sl_rx_s3_entry *base = NULL, *probed = NULL;
  int rc;
  memset(out, 0, sizeof *out);
  pthread_mutex_init(&p.mu, NULL);
  pthread_cond_init(&p.cv, NULL);
  if (sl_s3_url_parse(o->url, &p.url)) {
    sl_diag_error("%s: not s3://BUCKET[/PREFIX]", o->url);
    rc = SL_EINVAL;
    goto out;
  }
  if (!sl_stream_name_valid(o->stream)) {
    rc = SL_EINVAL;
    goto out;
  }
  size_t tl = strlen(o->into);
  while (tl > 1 && o->into[tl - 1] == '/') tl--;
  snprintf(tmp, sizeof tmp, "%.*s.restore-tmp-%d", (int)tl, o->into, (int)getpid());
  snprintf(scratch, sizeof scratch, "%.*s.s3-fetch-%d", (int)tl, o->into, (int)getpid());
  snprintf(p.fetch, sizeof p.fetch, "%s/fetch", scratch);
  snprintf(p.archive, sizeof p.archive, "%s/archive", scratch);
  snprintf(probe, sizeof probe, "%s/probe", scratch);
  snprintf(parent, sizeof parent, "%s", tmp);
  char *slash = strrchr(parent, '/');
  if (slash) *(slash == parent ? slash + 1 : slash) = 0;
  else snprintf(parent, sizeof parent, ".");
  if ((rc = sl__restore_target_free(o->into))) goto out;
  if ((rc = sl_objstore_open(&(sl_objstore_options){.endpoint = o->endpoint, .region = o->region,
                                                    .bucket = p.url.bucket},
                             &s)) ||
      (rc = get_manifest(o, &p.url, s, &m)))
    goto out;
  sl_remove_tree(scratch);
  made = true;
  if ((rc = sl_mkdir_p(p.fetch)) || (rc = sl_mkdir_p(p.archive)) || (rc = sl_mkdir_p(probe))) goto out;
  if ((rc = resolve(o, &m, &p, s, probe, &txid, &base, &probed))) goto out;

  /* The jobs: the base, then the segments holding base + 1 .. txid. */
  if (!(p.jobs = calloc(m.nsegs + 1, sizeof *p.jobs))) {
    rc = -ENOMEM;
    goto out;
  }
  if (base) p.jobs[p.njobs++] = (job){.e = base};
  uint64_t from = base ? base->txid + 1 : 1;
  for (size_t i = 0; i < m.nsegs && from <= txid; i++)
    if (m.segs[i].last_txid >= from && m.segs[i].first_txid <= txid)
      p.jobs[p.njobs++] = (job){.e = &m.segs[i], .segment = true, .done = &m.segs[i] == probed};
  for (size_t k = 0; k < p.njobs; k++) p.total_bytes += p.jobs[k].e->bytes;
  if (probed) p.done_bytes = probed->bytes;
  int parallel = o->parallel > 0 ? o->parallel : 4;
  p.window = (size_t)parallel * 2;
  if (!(th = calloc((size_t)parallel, sizeof *th))) {
    rc = -ENOMEM;
    goto out;
  }
  for (; nth < (size_t)parallel; nth++)
    if ((rc = -pthread_create(&th[nth], NULL, worker, &p))) goto out;

  sl_snapshot snap = {0};
  if (base) {
    if ((rc = wait_job(&p, 0))) goto out;
    snap = (sl_snapshot){.txid = base->txid, .commit_us = base->commit_us, .created_us = base->created_us,
                         .bytes = base->bytes};
    snprintf(snap.path, sizeof snap.path, "%s/%s", p.fetch, base->name);
  }
  sl_restore_options ro = {.stream = o->stream,
                           .into = o->into,
                           .replay_progress = o->replay_progress,
                           .progress_arg = o->progress_arg,
                           .archive_wait = archive_wait,
                           .archive_wait_arg = &p,
                           .keyring = o->keyring};
  built = true;
  if ((rc = sl__restore_build(&ro, p.archive, m.store_id, base ? &snap : NULL, txid, tmp, &out->r, NULL))) goto out;
  out->r.txid = txid;
  if (base) snprintf(out->r.base_path, sizeof out->r.base_path, "%.2000s/%s/snapshots/%s", o->url, o->stream, base->name);
  if (rename(tmp, o->into)) {
    rc = -errno;
    sl_diag_error("%s: cannot rename to %s: %s", tmp, o->into, sl_strerror(rc));
    goto out;
  }
  built = false;
  rc = sl_fsync_dir(parent);
out:
  pthread_mutex_lock(&p.mu);
  if (!p.err) p.err = rc ? rc : -ECANCELED; /* the workers stop */
  pthread_cond_broadcast(&p.cv);
  pthread_mutex_unlock(&p.mu);
  for (size_t i = 0; i < nth; i++) pthread_join(th[i], NULL);
  if (rc == 0 && p.err != -ECANCELED) rc = p.err;
  if (built) sl_remove_tree(tmp);
  if (made) sl_remove_tree(scratch);
  out->fetched_bytes = p.done_bytes;
  out->fetched_objects = p.objects + (probed ? 1 : 0);
  out->total_ns = sl_mono_ns() - t0;
  pthread_mutex_destroy(&p.mu);
  pthread_cond_destroy(&p.cv);
  sl_objstore_close(s);
  free(th);
  free(p.jobs);
  sl_rx_s3_manifest_free(&m);
  return rc;
}
