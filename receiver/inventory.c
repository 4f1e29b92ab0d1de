/*
 * inventory.c: `shiplog info` and `shiplog check --data` on a stream's
 * directory (inventory.h). Everything is read from files other processes
 * write (the receiver, prune, the uploader), each of which appears whole or
 * not at all, so a file that vanishes between the listing and the read was
 * pruned meanwhile: it is left out (info) or reported (check), never a
 * crash. Nothing here writes.
 */
#include "inventory.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "receiver_int.h"
#include "sl_base.h"

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* The commit time of txid in the archive (0 when it cannot be read). */
static uint64_t commit_time_of(const char *archive, uint64_t txid) {
  uint64_t us = 0;
  return sl__archive_commit_time(archive, txid, &us) ? 0 : us;
}

static bool in_manifest(const sl_rx_s3_manifest *m, bool segment, const char *path) {
  const char *name = base_name(path);
  size_t n = segment ? m->nsegs : m->nsnaps;
  const sl_rx_s3_entry *e = segment ? m->segs : m->snaps;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(e[i].name, name)) return true;
  return false;
}

void sl_stream_inventory_free(sl_stream_inventory *inv) {
  free(inv->snaps);
  free(inv->segs);
  free(inv->consumers);
  inv->snaps = NULL;
  inv->segs = NULL;
  inv->consumers = NULL;
  inv->nsnaps = inv->nsegs = inv->nconsumers = 0;
}

int sl_stream_inventory_read(const char *data_dir, const char *stream, sl_stream_inventory *out) {
  char sdir[4096], archive[4200], snaps[4200];
  sl_seg_info *segs = NULL;
  sl_snapshot *s = NULL;
  sl_rx_s3_manifest m = {0};
  size_t nseg = 0, nsnap = 0;
  int rc;
  memset(out, 0, sizeof *out);
  sl_stream_path(sdir, sizeof sdir, data_dir, stream, NULL);
  snprintf(archive, sizeof archive, "%s/" SL_STREAM_ARCHIVE, sdir);
  snprintf(snaps, sizeof snaps, "%s/" SL_STREAM_SNAPSHOTS, sdir);
  if ((rc = sl_stream_status_read(data_dir, stream, &out->status))) {
    if (rc == SL_ENOTFOUND) sl_diag_error("%s: no stream %s in this data directory", data_dir, stream);
    else sl_diag_error("%s: stream %s: %s", data_dir, stream, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_log_list_newest_run(archive, &segs, &nseg, &out->cut_segno))) {
    sl_diag_error("%s: cannot list the archive: %s", archive, sl_strerror(rc));
    goto out;
  }
  if (nseg && (rc = sl__seg_store_id(segs[0].path, out->store_id))) {
    sl_diag_error("%s: %s", segs[0].path, sl_strerror(rc));
    goto out;
  }
  out->first_txid = nseg ? segs[0].first_txid : 1;
  if ((rc = sl__archive_durable(archive, segs, nseg, &out->durable))) goto out;
  if (out->durable >= out->first_txid) {
    out->first_commit_us = commit_time_of(archive, out->first_txid);
    out->durable_commit_us = commit_time_of(archive, out->durable);
  }
  out->reachable_us = SL_MAX(sl__stream_reachable_us(sdir), out->durable_commit_us ? out->durable_commit_us - 1 : 0);

  rc = sl__upload_local_manifest(sdir, &m);
  out->s3 = rc == 0;
  if (rc && rc != SL_ENOTFOUND) goto out;
  rc = 0;
  for (size_t i = 0; i < m.nsegs; i++) out->uploaded_txid = SL_MAX(out->uploaded_txid, m.segs[i].last_txid);
  if (m.has_partial) out->uploaded_txid = SL_MAX(out->uploaded_txid, m.partial.last_txid);
  sl_upload_status_read(data_dir, stream, &out->upload);

  if (nseg && !(out->segs = calloc(nseg, sizeof *out->segs))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nseg; i++) {
    sl_inv_segment *g = &out->segs[out->nsegs];
    sl_seg_header h;
    if (sl__seg_header_read(segs[i].path, &h)) continue; /* pruned meanwhile */
    snprintf(g->path, sizeof g->path, "%s", segs[i].path);
    snprintf(g->key_id, sizeof g->key_id, "%s", h.key_id);
    g->first_txid = segs[i].first_txid;
    g->active = i + 1 == nseg;
    g->last_txid = g->active ? SL_MAX(out->durable, g->first_txid - 1) : segs[i + 1].first_txid - 1;
    g->bytes = segs[i].size;
    g->uploaded = out->s3 && in_manifest(&m, true, g->path);
    if (out->s3 && !g->uploaded && !g->active) out->pending_files++, out->pending_bytes += g->bytes;
    out->nsegs++;
  }

  if ((rc = sl_snapshot_list(snaps, nseg ? out->store_id : NULL, &s, &nsnap))) goto out;
  if (nsnap && !(out->snaps = calloc(nsnap, sizeof *out->snaps))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nsnap; i++) {
    sl_inv_snapshot *p = &out->snaps[out->nsnaps];
    p->s = s[i];
    p->other_history = !sl__snapshot_in_history(archive, &s[i], out->first_txid, out->durable, &p->archive_commit_us);
    p->base = s[i].txid + 1 >= out->first_txid && s[i].txid <= out->durable && !p->other_history;
    p->uploaded = out->s3 && in_manifest(&m, false, s[i].path);
    if (out->s3 && !p->uploaded) out->pending_files++, out->pending_bytes += s[i].bytes;
    out->nsnaps++;
  }
  rc = sl_log_consumers_list(archive, &out->consumers, &out->nconsumers);
out:
  if (m.segs || m.snaps) sl_rx_s3_manifest_free(&m);
  free(segs);
  free(s);
  return rc;
}

/* ---- object storage ---------------------------------------------------------------- */
void sl_rx_s3_manifests_free(sl_rx_s3_manifest *m, size_t n) {
  for (size_t i = 0; i < n; i++) sl_rx_s3_manifest_free(&m[i]);
  free(m);
}

int sl_rx_s3_manifests(const char *url, const char *endpoint, const char *region, const char *stream,
                       sl_rx_s3_manifest **out, size_t *n) {
  sl_s3_url u;
  sl_objstore *s = NULL;
  char **keys = NULL, **names = NULL;
  size_t nkeys = 0, nnames = 0;
  int rc;
  *out = NULL;
  *n = 0;
  if (sl_s3_url_parse(url, &u)) {
    sl_diag_error("%s: not s3://BUCKET[/PREFIX]", url);
    return SL_EINVAL;
  }
  if ((rc = sl_objstore_open(&(sl_objstore_options){.endpoint = endpoint, .region = region, .bucket = u.bucket}, &s)))
    return rc;
  if (stream) {
    nnames = 1;
  } else {
    /* PREFIX/NAME/manifest.json for every NAME. */
    char prefix[1100];
    snprintf(prefix, sizeof prefix, "%s%s", u.prefix, u.prefix[0] ? "/" : "");
    if ((rc = sl_objstore_list(s, prefix, &keys, &nkeys))) goto out;
    for (size_t i = 0; i < nkeys; i++) {
      const char *rest = keys[i] + strlen(prefix), *slash = strchr(rest, '/');
      if (slash && !strcmp(slash + 1, SL_RX_S3_MANIFEST_NAME)) keys[nnames++] = keys[i], keys[i] = NULL;
    }
    names = keys;
  }
  if (nnames && !(*out = calloc(nnames, sizeof **out))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nnames; i++) {
    char name[65];
    if (stream) {
      snprintf(name, sizeof name, "%s", stream);
    } else {
      const char *rest = names[i] + strlen(u.prefix) + (u.prefix[0] ? 1 : 0);
      snprintf(name, sizeof name, "%.*s", (int)(strchr(rest, '/') - rest), rest);
    }
    if ((rc = sl_rx_s3_manifest_fetch(s, &u, name, &(*out)[*n]))) goto out;
    ++*n;
  }
out:
  if (!stream) {
    for (size_t i = 0; i < nkeys; i++) free(keys[i]);
    free(keys);
  }
  sl_objstore_close(s);
  if (rc) {
    sl_rx_s3_manifests_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

void sl_rx_s3_manifest_window(const sl_rx_s3_manifest *m, sl_restore_window *w) {
  memset(w, 0, sizeof *w);
  if (!m->nsegs) return;
  uint64_t first = m->segs[0].first_txid, last = m->segs[m->nsegs - 1].last_txid;
  w->last_txid = last;
  w->last_us = m->segs[m->nsegs - 1].last_commit_us;
  if (first == 1) {
    w->restorable = last >= 1;
    w->first_txid = 1;
    w->first_us = m->segs[0].first_commit_us;
    return;
  }
  for (size_t i = 0; i < m->nsnaps; i++) /* in upload order: take the oldest base */
    if (m->snaps[i].txid + 1 >= first && m->snaps[i].txid <= last &&
        (!w->restorable || m->snaps[i].txid < w->base_txid)) {
      w->restorable = true;
      w->base_txid = w->first_txid = m->snaps[i].txid;
      w->first_us = m->snaps[i].commit_us;
    }
}

/* ---- check ---------------------------------------------------------------------------- */
typedef struct checker {
  void (*item)(void *arg, const sl_check_item *it);
  void *arg;
  sl_stream_check_result *out;
} checker;

static void report(checker *c, const sl_check_item *it) {
  if (it->problem) c->out->damaged++;
  if (c->item) c->item(c->arg, it);
}

/* The *.snap files the inventory left out (sl_snapshot_list: a header that
 * does not decode, names another txid, or another store; it said why):
 * each is damage to check, not a file to pass over quietly. */
static void report_left_out(checker *c, const char *data_dir, const char *stream, const sl_stream_inventory *inv) {
  char dir[4200], path[4400];
  sl_stream_path(dir, sizeof dir, data_dir, stream, SL_STREAM_SNAPSHOTS);
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len <= 5 || strcmp(e->d_name + len - 5, ".snap")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    bool listed = false;
    for (size_t i = 0; i < inv->nsnaps && !listed; i++) listed = !strcmp(inv->snaps[i].s.path, path);
    if (listed) continue;
    sl_check_item it = {.snapshot = true, .path = path,
                        .problem = "not a usable snapshot of this stream (the warning above says why)"};
    report(c, &it);
    c->out->snapshots++;
  }
  if (d) closedir(d);
}

/* Frames of segment g (txids g->first_txid .. last, last at most durable):
 * *problem set on damage. Returns the frames read. */
static uint64_t check_segment(const char *archive, const sl_inv_segment *g, uint64_t last, sl_keyring *kr,
                              char *problem, size_t plen) {
  sl_log_reader *r = NULL;
  sl_frame f;
  uint64_t frames = 0, want = g->first_txid;
  sl_log_reader_options ro = {.max_txid = last, .tolerate_tail = false, .newest_run = true};
  int rc = last < g->first_txid ? SL_EEND : sl_log_reader_open(archive, g->first_txid, &ro, &r);
  while (rc == 0 && (rc = sl_log_reader_next(r, &f)) == 0) {
    if (f.txid != want) {
      snprintf(problem, plen, "txid %" PRIu64 " where %" PRIu64 " belongs (offset %" PRIu64 ")", f.txid, want,
               f.offset);
      rc = SL_EGAP;
      break;
    }
    if (kr && f.key_id && (rc = sl_log_reader_open_frame(r, kr, &f))) break;
    frames++;
    want++;
    if (f.txid == last) break;
  }
  if (rc == SL_EEND && want <= last)
    snprintf(problem, plen, "ends after txid %" PRIu64 ", the archive is durable through %" PRIu64, want - 1, last);
  else if (rc && rc != SL_EEND && !problem[0])
    snprintf(problem, plen, "%s after txid %" PRIu64 " (the offset is in the message above)", sl_strerror(rc),
             want - 1);
  if (r) sl_log_reader_close(r);
  return frames;
}

int sl_stream_check(const char *data_dir, const char *stream, sl_keyring *kr,
                    void (*item)(void *arg, const sl_check_item *it), void *arg, sl_stream_check_result *out) {
  char archive[4200], problem[512];
  sl_stream_inventory inv;
  checker c = {.item = item, .arg = arg, .out = out};
  memset(out, 0, sizeof *out);
  int rc = sl_stream_inventory_read(data_dir, stream, &inv);
  if (rc) goto out;
  sl_stream_path(archive, sizeof archive, data_dir, stream, SL_STREAM_ARCHIVE);
  out->first_txid = inv.first_txid;
  out->durable = inv.durable;

  /* Snapshots: every chunk, record and trailer. The whole ones the archive
   * continues are the bases (with the empty store when it starts at 1). */
  uint64_t *bases = calloc(inv.nsnaps + 1, sizeof *bases);
  uint64_t before = 0; /* the newest whole snapshot the archive starts after, with a gap */
  size_t nbases = 0;
  if (!bases) {
    rc = -ENOMEM;
    goto out;
  }
  if (inv.first_txid == 1) bases[nbases++] = 0;
  for (size_t i = 0; i < inv.nsnaps; i++) {
    const sl_inv_snapshot *p = &inv.snaps[i];
    sl_dump_info info = {0};
    problem[0] = 0;
    if (p->other_history) {
      sl__other_history_why(problem, sizeof problem, &p->s, p->archive_commit_us);
    } else if (p->s.key_id[0] && !kr) {
      snprintf(problem, sizeof problem, "sealed with key %s: pass --key-file to check it", p->s.key_id);
    } else {
      int vrc = sl_dump_verify_keyed(p->s.path, kr, NULL, NULL, &info);
      if (vrc) snprintf(problem, sizeof problem, "%s (the offset is in the message above)", sl_strerror(vrc));
    }
    sl_check_item it = {.snapshot = true, .path = p->s.path, .first_txid = p->s.txid, .last_txid = p->s.txid,
                        .bytes = p->s.bytes, .units = info.records, .problem = problem[0] ? problem : NULL};
    report(&c, &it);
    out->snapshots++;
    out->bytes += p->s.bytes;
    if (!it.problem && p->base) bases[nbases++] = p->s.txid;
    if (!it.problem && !p->other_history && p->s.txid + 1 < inv.first_txid) before = SL_MAX(before, p->s.txid);
  }

  report_left_out(&c, data_dir, stream, &inv);
  if (inv.cut_segno) {
    char what[4400];
    snprintf(what, sizeof what, "%s/ (segments before %" PRIu64 ")", archive, inv.cut_segno);
    sl_check_item it = {.path = what, .last_txid = inv.first_txid - 1,
                        .problem = "a segment is missing or its header is damaged (named above): the archive is read "
                                   "from the next one on, and no restore reaches what came before it"};
    report(&c, &it);
  }

  /* Archive segments: every frame up to the durable mark, dense. */
  bool *seg_ok = inv.nsegs ? calloc(inv.nsegs, sizeof *seg_ok) : NULL;
  if (inv.nsegs && !seg_ok) {
    free(bases);
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < inv.nsegs; i++) {
    const sl_inv_segment *g = &inv.segs[i];
    uint64_t last = SL_MIN(g->last_txid, inv.durable);
    problem[0] = 0;
    if (i && g->first_txid != inv.segs[i - 1].last_txid + 1)
      snprintf(problem, sizeof problem, "starts at txid %" PRIu64 ", the segment before ends at %" PRIu64,
               g->first_txid, inv.segs[i - 1].last_txid);
    uint64_t frames = problem[0] ? 0 : check_segment(archive, g, last, kr, problem, sizeof problem);
    sl_check_item it = {.path = g->path, .first_txid = g->first_txid, .last_txid = last, .bytes = g->bytes,
                        .units = frames, .problem = problem[0] ? problem : NULL};
    report(&c, &it);
    seg_ok[i] = !it.problem;
    out->segments++;
    out->frames += frames;
    out->bytes += g->bytes;
  }

  /* Continuity: from a whole base through whole segments to the durable
   * txid. The oldest base should get there; when only a later one does,
   * the stream is restorable from there on, and the gap is still reported. */
  uint64_t oldest_reach = 0;
  for (size_t b = 0; b < nbases && !out->restorable; b++) {
    uint64_t reached = bases[b];
    for (size_t i = 0; i < inv.nsegs; i++) {
      const sl_inv_segment *g = &inv.segs[i];
      if (g->last_txid <= reached) continue;
      if (g->first_txid > reached + 1 || !seg_ok[i]) break;
      reached = SL_MIN(g->last_txid, inv.durable);
    }
    if (b == 0) oldest_reach = reached;
    out->restorable = reached >= inv.durable;
    if (out->restorable) out->base_txid = bases[b];
  }
  free(seg_ok);
  if (nbases == 0 && before)
    snprintf(out->gap, sizeof out->gap,
             "no whole base: the archive starts at txid %" PRIu64 ", and the newest whole snapshot before it is at "
             "txid %" PRIu64 ": no archive segment holds txids %" PRIu64 "..%" PRIu64 " (removed or lost?)",
             inv.first_txid, before, before + 1, inv.first_txid - 1);
  else if (nbases == 0)
    snprintf(out->gap, sizeof out->gap,
             "no whole base: the archive starts at txid %" PRIu64 " and no whole snapshot is continued by it",
             inv.first_txid);
  else if (!out->restorable || out->base_txid != bases[0])
    snprintf(out->gap, sizeof out->gap,
             "from the oldest base (txid %" PRIu64 ") the archive is whole only through txid %" PRIu64
             ", not through the durable txid %" PRIu64 "%s",
             bases[0], oldest_reach, inv.durable,
             out->restorable ? "; restores can start only from a later snapshot" : "");
  free(bases);
  rc = out->damaged || out->gap[0] ? SL_ECORRUPT : 0;
out:
  sl_stream_inventory_free(&inv);
  return rc;
}
