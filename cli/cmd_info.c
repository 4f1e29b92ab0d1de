/*
 * `shiplog info`: what a receiver can restore, as pgBackRest's `info` and
 * `neo4j-admin database info` show it (README "Day-to-day operation"):
 *   info --data DIR [--stream NAME]   per stream, from its directory
 *                                     (receiver/inventory.h INVENTORY)
 *   info --from s3://BUCKET/PREFIX [--stream NAME]
 *                                     per stream, from its manifest in
 *                                     object storage: what a restore --from
 *                                     reads (receiver/s3.h)
 * This file only prints what those return; --json prints one object.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_repl.h"
#include "inventory.h"
#include "sl_base.h"
#include "sl_status.h"

static const char info_help[] =
    "Usage: shiplog info --data DIR [--stream NAME] [--json]\n"
    "       shiplog info --from s3://BUCKET/PREFIX [--stream NAME] [--json]\n"
    "                    [--s3-endpoint URL] [--s3-region R]\n"
    "\n"
    "What can be restored, per stream (every stream, or NAME):\n"
    "  - the restorable window: the first and last txid a restore can reach and\n"
    "    their commit times, and the latest reachable time (shiplog restore\n"
    "    --to-time accepts times up to it);\n"
    "  - the snapshots (bases): txid, commit time, when taken, size, key id, and\n"
    "    whether the archive continues them;\n"
    "  - the archive segments: txids, sealed or active, size, key id;\n"
    "  - object storage (a receiver run with --archive-to): what it holds, what\n"
    "    waits for upload, the uploader's last error;\n"
    "  - the primary as last reported (state, peer, committed txid), the\n"
    "    standby's applied txid, and the consumers of the archive (cascade\n"
    "    shippers: they hold back its pruning).\n"
    "--from reads only the stream's manifest in object storage: what a restore\n"
    "--from would use (sealed segments and snapshots that were uploaded and\n"
    "verified). Works while the receiver runs; changes nothing.\n"
    "\n"
    "  --data DIR          a receiver's data directory\n"
    "  --from URL          s3://BUCKET/PREFIX (the receiver's --archive-to);\n"
    "                      credentials AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\n"
    "  --s3-endpoint URL   --s3-region R: as for restore --from\n"
    "  --stream NAME       only this stream\n"
    "  --json              one JSON object: {\"streams\": [...]}\n";

static const char *when(uint64_t us, char *buf, size_t len) {
  if (!us) snprintf(buf, len, "-");
  else sl_time_format(us, buf, len);
  return buf;
}

static double mib(uint64_t b) { return (double)b / (1 << 20); }

/* ---- --data ------------------------------------------------------------------------- */
static json_t *inventory_json(const char *name, const sl_stream_inventory *v) {
  const sl_stream_status *st = &v->status;
  char id[2 * SL_STORE_ID_SIZE + 1];
  sl_hex_encode(v->store_id, SL_STORE_ID_SIZE, id);
  uint64_t first = st->restorable_txid ? st->restorable_txid : v->first_txid;
  uint64_t first_us = st->restorable_txid ? st->restorable_us : v->first_commit_us;
  json_t *snaps = json_array(), *segs = json_array(), *cons = json_array();
  for (size_t i = 0; i < v->nsnaps; i++) {
    const sl_inv_snapshot *p = &v->snaps[i];
    json_array_append_new(snaps, json_pack("{s:s,s:I,s:I,s:I,s:I,s:s,s:b,s:b,s:b}", "path", p->s.path, "txid",
                                           (json_int_t)p->s.txid, "commit_us", (json_int_t)p->s.commit_us,
                                           "created_us", (json_int_t)p->s.created_us, "bytes", (json_int_t)p->s.bytes,
                                           "key_id", p->s.key_id, "base", p->base, "uploaded", p->uploaded,
                                           "other_history", p->other_history));
  }
  for (size_t i = 0; i < v->nsegs; i++) {
    const sl_inv_segment *g = &v->segs[i];
    json_array_append_new(segs, json_pack("{s:s,s:I,s:I,s:s,s:I,s:s,s:b}", "path", g->path, "first_txid",
                                          (json_int_t)g->first_txid, "last_txid", (json_int_t)g->last_txid, "state",
                                          g->active ? "active" : "sealed", "bytes", (json_int_t)g->bytes, "key_id",
                                          g->key_id, "uploaded", g->uploaded));
  }
  for (size_t i = 0; i < v->nconsumers; i++)
    json_array_append_new(cons, json_pack("{s:s,s:I,s:I}", "name", v->consumers[i].name, "txid",
                                          (json_int_t)v->consumers[i].txid, "updated_us",
                                          (json_int_t)v->consumers[i].updated_us));
  json_t *o = json_pack(
      "{s:s,s:s,s:s,s:s,s:I,s:I,s:b,s:{s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "stream", name,
      "store_id", id, "state", st->state, "peer", st->peer, "primary_committed", (json_int_t)st->primary_committed,
      "primary_time_us", (json_int_t)st->primary_time_us, "restorable", st->restorable, "window", "first_txid",
      (json_int_t)first, "first_commit_us", (json_int_t)first_us, "last_txid", (json_int_t)v->durable,
      "last_commit_us", (json_int_t)v->durable_commit_us, "reachable_time_us", (json_int_t)v->reachable_us,
      "archive_first_txid", (json_int_t)v->first_txid, "durable", (json_int_t)v->durable, "applied",
      (json_int_t)st->applied, "base_txid", (json_int_t)st->restorable_txid, "snapshots", snaps, "segments", segs,
      "consumers", cons);
  if (o && v->cut_segno) json_object_set_new(o, "cut_before_segment", json_integer((json_int_t)v->cut_segno));
  if (o && v->s3)
    json_object_set_new(o, "upload", json_pack("{s:I,s:I,s:I,s:I,s:s}", "uploaded_txid", (json_int_t)v->uploaded_txid,
                                               "pending_files", (json_int_t)v->pending_files, "pending_bytes",
                                               (json_int_t)v->pending_bytes, "updated_us",
                                               (json_int_t)v->upload.updated_us, "error", v->upload.error));
  if (o && !st->restorable) json_object_set_new(o, "error", json_string(st->error));
  if (o) /* what the receiver's retention keeps (receive --retain-*) */
    json_object_set_new(o, "retention", json_pack("{s:I,s:f}", "snapshots", (json_int_t)st->retain_snapshots,
                                                  "days", st->retain_days));
  if (o) /* BOUNDED RTO: the replay a restore from the newest snapshot needs, at the measured speed */
    json_object_set_new(o, "replay",
                        json_pack("{s:I,s:o}", "bytes_per_s", (json_int_t)st->replay_bytes_per_s, "estimate_s",
                                  st->has_replay_estimate ? json_real(st->replay_estimate_s) : json_null()));
  return o;
}

static void inventory_print(const char *name, const sl_stream_inventory *v) {
  const sl_stream_status *st = &v->status;
  char a[40], b[40], c[40];
  char id[2 * SL_STORE_ID_SIZE + 1];
  sl_hex_encode(v->store_id, SL_STORE_ID_SIZE, id);
  printf("stream %s (store %s): %s%s%s, primary committed txid %" PRIu64 " as of %s\n", name, id, st->state,
         st->peer[0] ? ", shipper " : "", st->peer, st->primary_committed, when(st->primary_time_us, a, sizeof a));
  if (st->restorable) {
    uint64_t first = st->restorable_txid ? st->restorable_txid : v->first_txid;
    uint64_t first_us = st->restorable_txid ? st->restorable_us : v->first_commit_us;
    printf("  restorable   txids %" PRIu64 "..%" PRIu64 ", committed %s .. %s; times up to %s\n", first, v->durable,
           when(first_us, a, sizeof a), when(v->durable_commit_us, b, sizeof b), when(v->reachable_us, c, sizeof c));
    printf("               from %s\n", st->restorable_txid ? "the oldest snapshot the archive continues"
                                                          : "the empty store (the archive starts at txid 1)");
  } else {
    printf("  restorable   no%s%s\n", st->error[0] ? ": " : "", st->error);
  }
  printf("  archive      txids %" PRIu64 "..%" PRIu64 " in %zu segments; standby applied txid %" PRIu64 "\n",
         v->first_txid, v->durable, v->nsegs, st->applied);
  if (v->cut_segno)
    printf("               segments before %" PRIu64 " cannot be reached: one is missing or its header is damaged "
           "(shiplog check --data names it)\n", v->cut_segno);
  if (st->retain_snapshots || st->retain_days > 0) {
    char rule[128] = "";
    if (st->retain_snapshots) snprintf(rule, sizeof rule, "the newest %" PRIu64 " snapshots", st->retain_snapshots);
    if (st->retain_days > 0)
      snprintf(rule + strlen(rule), sizeof rule - strlen(rule), "%sthose of the last %g days and the newest before",
               rule[0] ? ", " : "", st->retain_days);
    printf("  retention    the receiver keeps %s, and the archive from the oldest kept one on%s\n", rule,
           v->s3 ? " (object storage too)" : "");
  } else {
    printf("  retention    none in the receiver: it keeps everything (shiplog prune removes)\n");
  }
  if (st->has_replay_estimate)
    printf("  replay       a restore from the newest snapshot replays about %.1f s (at %.1f MiB/s, the standby's "
           "apply rate)\n", st->replay_estimate_s, mib(st->replay_bytes_per_s));
  if (v->nsnaps) {
    printf("  snapshots    %-10s %-27s %-27s %10s  %-12s %s\n", "TXID", "COMMITTED", "TAKEN", "MIB", "KEY", "");
    for (size_t i = 0; i < v->nsnaps; i++) {
      const sl_inv_snapshot *p = &v->snaps[i];
      printf("               %-10" PRIu64 " %-27s %-27s %10.1f  %-12s %s%s\n", p->s.txid,
             when(p->s.commit_us, a, sizeof a), when(p->s.created_us, b, sizeof b), mib(p->s.bytes),
             p->s.key_id[0] ? p->s.key_id : "-", p->base ? "base" : p->other_history ? "of another history (not a base)" : "not continued by the archive",
             v->s3 ? (p->uploaded ? ", uploaded" : ", upload pending") : "");
    }
  } else {
    printf("  snapshots    none\n");
  }
  printf("  segments     %-21s %-7s %10s  %-12s\n", "TXIDS", "STATE", "MIB", "KEY");
  for (size_t i = 0; i < v->nsegs; i++) {
    const sl_inv_segment *g = &v->segs[i];
    char range[48];
    if (g->last_txid >= g->first_txid) snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64, g->first_txid, g->last_txid);
    else snprintf(range, sizeof range, "%" PRIu64 "..(none yet)", g->first_txid);
    printf("               %-21s %-7s %10.1f  %-12s%s\n", range, g->active ? "active" : "sealed", mib(g->bytes),
           g->key_id[0] ? g->key_id : "-",
           !v->s3                                              ? ""
           : g->uploaded                                       ? " uploaded"
           : g->active && v->uploaded_txid >= g->first_txid    ? " uploaded in part (--archive-timeout)"
           : g->active                                         ? " (uploaded as it grows)"
                                                               : " upload pending");
  }
  if (v->s3)
    printf("  upload       object storage holds txids up to %" PRIu64 "; %" PRIu64 " files (%.1f MiB) wait%s%s\n",
           v->uploaded_txid, v->pending_files, mib(v->pending_bytes), v->upload.error[0] ? "; last error: " : "",
           v->upload.error);
  for (size_t i = 0; i < v->nconsumers; i++)
    printf("  consumer     %s at txid %" PRIu64 " (moved %s)\n", v->consumers[i].name, v->consumers[i].txid,
           when(v->consumers[i].updated_us, a, sizeof a));
}

static int info_data(const char *data, const char *only, bool json) {
  char dir[4096];
  char **names = NULL;
  size_t n = 0;
  int status = CLI_OK;
  if (only) {
    names = malloc(sizeof *names);
    if (!names || !(names[0] = strdup(only))) {
      free(names);
      return CLI_FAIL;
    }
    n = 1;
  } else {
    int rc = cli_list_names(sl_stream_path(dir, sizeof dir, data, NULL, NULL), "", &names, &n);
    if (rc) {
      sl_diag_error("%s: %s", dir, sl_strerror(rc));
      return CLI_FAIL;
    }
  }
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    sl_stream_inventory v;
    if (sl_stream_inventory_read(data, names[i], &v)) {
      status = CLI_FAIL;
    } else if (json) {
      json_array_append_new(arr, inventory_json(names[i], &v));
    } else {
      if (i) putchar('\n');
      inventory_print(names[i], &v);
    }
    sl_stream_inventory_free(&v);
  }
  if (!json && n == 0) printf("(no streams in %s)\n", data);
  cli_free_names(names, n);
  if (!json) {
    json_decref(arr);
    return status;
  }
  int prc = cli_json_print(json_pack("{s:s,s:o}", "data", data, "streams", arr));
  return status ? status : prc;
}

/* ---- --from s3:// ------------------------------------------------------------------- */
static int info_s3(const char *url, const char *endpoint, const char *region, const char *only, bool json) {
  sl_rx_s3_manifest *m;
  size_t n;
  char a[40], b[40], id[2 * SL_STORE_ID_SIZE + 1];
  if (sl_rx_s3_manifests(url, endpoint, region, only, &m, &n)) return CLI_FAIL;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    sl_restore_window w;
    sl_rx_s3_manifest_window(&m[i], &w);
    sl_hex_encode(m[i].store_id, SL_STORE_ID_SIZE, id);
    uint64_t bytes = 0;
    for (size_t k = 0; k < m[i].nsegs; k++) bytes += m[i].segs[k].bytes;
    if (json) {
      json_t *snaps = json_array(), *segs = json_array();
      for (size_t k = 0; k < m[i].nsnaps; k++) {
        const sl_rx_s3_entry *e = &m[i].snaps[k];
        json_array_append_new(snaps, json_pack("{s:s,s:I,s:I,s:I,s:I}", "name", e->name, "txid", (json_int_t)e->txid,
                                               "commit_us", (json_int_t)e->commit_us, "created_us",
                                               (json_int_t)e->created_us, "bytes", (json_int_t)e->bytes));
      }
      for (size_t k = 0; k < m[i].nsegs; k++) {
        const sl_rx_s3_entry *e = &m[i].segs[k];
        json_array_append_new(segs, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "name", e->name, "first_txid",
                                              (json_int_t)e->first_txid, "last_txid", (json_int_t)e->last_txid,
                                              "first_commit_us", (json_int_t)e->first_commit_us, "last_commit_us",
                                              (json_int_t)e->last_commit_us, "bytes", (json_int_t)e->bytes));
      }
      json_array_append_new(
          arr, json_pack("{s:s,s:s,s:I,s:b,s:{s:I,s:I,s:I,s:I},s:I,s:o,s:o}", "stream", m[i].stream, "store_id", id,
                         "updated_us", (json_int_t)m[i].updated_us, "restorable", w.restorable, "window",
                         "first_txid", (json_int_t)w.first_txid, "first_commit_us", (json_int_t)w.first_us,
                         "last_txid", (json_int_t)w.last_txid, "last_commit_us", (json_int_t)w.last_us, "base_txid",
                         (json_int_t)w.base_txid, "snapshots", snaps, "segments", segs));
      continue;
    }
    if (i) putchar('\n');
    printf("stream %s (store %s) in %s, manifest updated %s\n", m[i].stream, id, url,
           when(m[i].updated_us, a, sizeof a));
    if (w.restorable)
      printf("  restorable   txids %" PRIu64 "..%" PRIu64 ", committed %s .. %s, from %s\n", w.first_txid, w.last_txid,
             when(w.first_us, a, sizeof a), when(w.last_us, b, sizeof b),
             w.base_txid ? "the oldest snapshot the segments continue" : "the empty store");
    else
      printf("  restorable   no: %s\n", m[i].nsegs ? "no snapshot the uploaded segments continue"
                                                  : "no sealed segment uploaded yet");
    printf("  segments     %zu sealed, txids %" PRIu64 "..%" PRIu64 ", %.1f MiB (the receiver's active segment is "
           "uploaded once sealed)\n",
           m[i].nsegs, m[i].nsegs ? m[i].segs[0].first_txid : 0, m[i].nsegs ? m[i].segs[m[i].nsegs - 1].last_txid : 0,
           mib(bytes));
    for (size_t k = 0; k < m[i].nsnaps; k++)
      printf("  snapshot     txid %-10" PRIu64 " committed %s, %.1f MiB (%s)\n", m[i].snaps[k].txid,
             when(m[i].snaps[k].commit_us, a, sizeof a), mib(m[i].snaps[k].bytes), m[i].snaps[k].name);
  }
  if (!json && n == 0) printf("(no streams under %s)\n", url);
  sl_rx_s3_manifests_free(m, n);
  if (!json) {
    json_decref(arr);
    return CLI_OK;
  }
  return cli_json_print(json_pack("{s:s,s:o}", "from", url, "streams", arr));
}

int cmd_info(int argc, char **argv) {
  static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                       {"from", required_argument, NULL, 'f'},
                                       {"s3-endpoint", required_argument, NULL, 'E'},
                                       {"s3-region", required_argument, NULL, 'R'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *data = NULL, *from = NULL, *stream = NULL, *endpoint = NULL, *region = NULL;
  bool json = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(info_help);
    case 'd': data = optarg; break;
    case 'f': from = optarg; break;
    case 'E': endpoint = optarg; break;
    case 'R': region = optarg; break;
    case 's': stream = optarg; break;
    case 'j': json = true; break;
    default: return cli_usage("info", NULL);
    }
  }
  if (optind < argc) return cli_usage("info", "unexpected argument '%s'", argv[optind]);
  if (!data == !from) return cli_usage("info", "give exactly one of --data DIR and --from s3://BUCKET/PREFIX");
  if ((endpoint || region) && !from) return cli_usage("info", "--s3-endpoint and --s3-region go with --from");
  if (from && !sl_s3_is_url(from)) return cli_usage("info", "--from: '%s' is not s3://BUCKET/PREFIX", from);
  if (stream && !sl_stream_name_valid(stream))
    return cli_usage("info", "--stream: '%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
  return data ? info_data(data, stream, json) : info_s3(from, endpoint, region, stream, json);
}
