/*
 * s3_manifest.c: the per-stream manifest of the object-storage archive
 * (receiver/s3.h gives the format) as JSON through jansson, and object
 * keys. (The one-file transfers behind `dump --to s3://` and `load s3://`
 * are backup/dump_s3.c's.)
 *
 * Decoding is strict: a manifest is what a restore trusts, so a field of the
 * wrong type, a segment that does not continue the previous one or a name
 * that is not a plain file name is SL_ECORRUPT rather than guessed at.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "sl_base.h"

void sl_rx_s3_key(char *out, size_t len, const char *prefix, const char *stream, const char *sub, const char *name) {
  snprintf(out, len, "%s%s%s/%s%s%s", prefix, *prefix ? "/" : "", stream, sub, *sub ? "/" : "", name);
}

void sl_rx_s3_manifest_free(sl_rx_s3_manifest *m) {
  free(m->segs);
  free(m->snaps);
  m->segs = m->snaps = NULL;
  m->nsegs = m->nsnaps = 0;
  m->has_partial = false;
}

int sl_rx_s3_manifest_add(sl_rx_s3_manifest *m, bool segment, const sl_rx_s3_entry *e) {
  sl_rx_s3_entry **v = segment ? &m->segs : &m->snaps;
  size_t *n = segment ? &m->nsegs : &m->nsnaps;
  if (segment && *n && e->first_txid != (*v)[*n - 1].last_txid + 1) return SL_EGAP;
  sl_rx_s3_entry *p = realloc(*v, (*n + 1) * sizeof *p);
  if (!p) return -ENOMEM;
  p[(*n)++] = *e;
  *v = p;
  return 0;
}

int sl_rx_s3_manifest_take_partial(sl_rx_s3_manifest *m) {
  const sl_rx_s3_entry *last = m->nsegs ? &m->segs[m->nsegs - 1] : NULL;
  bool take = m->has_partial && (!last || m->partial.first_txid == last->last_txid + 1);
  int rc = take ? sl_rx_s3_manifest_add(m, true, &m->partial) : 0;
  m->has_partial = false;
  return rc;
}

int sl_rx_s3_manifest_encode(const sl_rx_s3_manifest *m, char **out) {
  char id[33], crc[9];
  json_t *segs = json_array(), *snaps = json_array();
  sl_hex_encode(m->store_id, 16, id);
  for (size_t i = 0; i < m->nsegs; i++) {
    const sl_rx_s3_entry *e = &m->segs[i];
    snprintf(crc, sizeof crc, "%08" PRIx32, e->crc32c);
    json_array_append_new(segs, json_pack("{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I}", "name", e->name, "bytes",
                                          (json_int_t)e->bytes, "crc32c", crc, "first_txid",
                                          (json_int_t)e->first_txid, "last_txid", (json_int_t)e->last_txid,
                                          "first_commit_us", (json_int_t)e->first_commit_us, "last_commit_us",
                                          (json_int_t)e->last_commit_us, "next_commit_us",
                                          (json_int_t)e->next_commit_us));
  }
  for (size_t i = 0; i < m->nsnaps; i++) {
    const sl_rx_s3_entry *e = &m->snaps[i];
    snprintf(crc, sizeof crc, "%08" PRIx32, e->crc32c);
    json_array_append_new(snaps, json_pack("{s:s,s:I,s:s,s:I,s:I,s:I}", "name", e->name, "bytes",
                                           (json_int_t)e->bytes, "crc32c", crc, "txid", (json_int_t)e->txid,
                                           "commit_us", (json_int_t)e->commit_us, "created_us",
                                           (json_int_t)e->created_us));
  }
  json_t *o = json_pack("{s:i,s:s,s:s,s:I,s:o,s:o}", "version", 1, "stream", m->stream, "store_id", id,
                        "updated_us", (json_int_t)m->updated_us, "segments", segs, "snapshots", snaps);
  if (o && m->has_partial) {
    const sl_rx_s3_entry *e = &m->partial;
    snprintf(crc, sizeof crc, "%08" PRIx32, e->crc32c);
    json_object_set_new(o, "partial",
                        json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I}", "name", e->name, "object", e->object,
                                  "bytes", (json_int_t)e->bytes, "crc32c", crc, "first_txid",
                                  (json_int_t)e->first_txid, "last_txid", (json_int_t)e->last_txid,
                                  "first_commit_us", (json_int_t)e->first_commit_us, "last_commit_us",
                                  (json_int_t)e->last_commit_us, "next_commit_us", (json_int_t)e->next_commit_us));
  }
  *out = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
  json_decref(o);
  return *out ? 0 : -ENOMEM;
}

static bool plain_name(const char *s, const char *suffix) {
  size_t n = strlen(s), sl = strlen(suffix);
  return n > sl && n < 64 && strcmp(s + n - sl, suffix) == 0 && strspn(s, "0123456789") == n - sl;
}

/* <segno>-<last txid>.partial: digits, one '-', digits. */
static bool partial_object_name(const char *s) {
  size_t a = strspn(s, "0123456789"), b = a && s[a] == '-' ? strspn(s + a + 1, "0123456789") : 0;
  return b && strlen(s) < 64 && strcmp(s + a + 1 + b, ".partial") == 0;
}

/* partial: a segment entry with "object" (ARCHIVE TIMEOUT). */
static int decode_entry(json_t *j, bool segment, bool partial, sl_rx_s3_entry *e) {
  const char *name = NULL, *crc = NULL, *object = "";
  json_int_t v[6] = {0};
  json_error_t err;
  int rc = partial ? json_unpack_ex(j, &err, JSON_STRICT, "{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I}", "name", &name,
                                    "object", &object, "bytes", &v[0], "crc32c", &crc, "first_txid", &v[1],
                                    "last_txid", &v[2], "first_commit_us", &v[3], "last_commit_us", &v[4],
                                    "next_commit_us", &v[5])
           : segment ? json_unpack_ex(j, &err, JSON_STRICT, "{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I}", "name", &name,
                                    "bytes", &v[0], "crc32c", &crc, "first_txid", &v[1], "last_txid", &v[2],
                                    "first_commit_us", &v[3], "last_commit_us", &v[4], "next_commit_us", &v[5])
                   : json_unpack_ex(j, &err, JSON_STRICT, "{s:s,s:I,s:s,s:I,s:I,s:I}", "name", &name, "bytes",
                                    &v[0], "crc32c", &crc, "txid", &v[1], "commit_us", &v[2], "created_us", &v[3]);
  if (rc) {
    sl_diag_error("manifest: a %s entry: %s", partial ? "partial" : segment ? "segment" : "snapshot", err.text);
    return SL_ECORRUPT;
  }
  char *end;
  memset(e, 0, sizeof *e);
  for (size_t i = 0; i < SL_ARRAY_LEN(v); i++)
    if (v[i] < 0) return SL_ECORRUPT;
  if (!plain_name(name, segment ? ".seg" : ".snap") || strlen(crc) != 8 || (partial && !partial_object_name(object))) {
    sl_diag_error("manifest: entry %s: not a %s file name or checksum", name, segment ? "segment" : "snapshot");
    return SL_ECORRUPT;
  }
  snprintf(e->object, sizeof e->object, "%s", object);
  e->crc32c = (uint32_t)strtoul(crc, &end, 16);
  if (*end) return SL_ECORRUPT;
  snprintf(e->name, sizeof e->name, "%s", name);
  e->bytes = (uint64_t)v[0];
  if (segment) {
    e->first_txid = (uint64_t)v[1], e->last_txid = (uint64_t)v[2];
    e->first_commit_us = (uint64_t)v[3], e->last_commit_us = (uint64_t)v[4], e->next_commit_us = (uint64_t)v[5];
    if (e->last_txid < e->first_txid) return SL_ECORRUPT;
  } else {
    e->txid = (uint64_t)v[1], e->commit_us = (uint64_t)v[2], e->created_us = (uint64_t)v[3];
  }
  return 0;
}

int sl_rx_s3_manifest_decode(const char *text, size_t len, sl_rx_s3_manifest *m) {
  json_error_t err;
  json_t *o = json_loadb(text, len, 0, &err), *segs = NULL, *snaps = NULL;
  const char *stream = NULL, *id = NULL;
  json_int_t version = 0, updated = 0;
  int rc = SL_ECORRUPT;
  memset(m, 0, sizeof *m);
  if (!o) {
    sl_diag_error("manifest: not JSON: %s (line %d)", err.text, err.line);
    return SL_ECORRUPT;
  }
  if (json_unpack_ex(o, &err, 0, "{s:I,s:s,s:s,s:I,s:o,s:o}", "version", &version, "stream", &stream, "store_id",
                     &id, "updated_us", &updated, "segments", &segs, "snapshots", &snaps)) {
    sl_diag_error("manifest: %s", err.text);
    goto out;
  }
  if (version != 1) {
    sl_diag_error("manifest: version %lld (this shiplog reads version 1)", (long long)version);
    rc = SL_EVERSION;
    goto out;
  }
  if (!json_is_array(segs) || !json_is_array(snaps) || strlen(id) != 32 || strlen(stream) >= sizeof m->stream)
    goto out;
  for (int i = 0; i < 16; i++) {
    unsigned b;
    if (sscanf(id + 2 * i, "%2x", &b) != 1) goto out;
    m->store_id[i] = (uint8_t)b;
  }
  snprintf(m->stream, sizeof m->stream, "%s", stream);
  m->updated_us = (uint64_t)updated;
  size_t i;
  json_t *j;
  json_array_foreach(segs, i, j) {
    sl_rx_s3_entry e;
    if ((rc = decode_entry(j, true, false, &e))) goto out;
    if ((rc = sl_rx_s3_manifest_add(m, true, &e))) {
      if (rc == SL_EGAP) sl_diag_error("manifest: segment %s does not continue the one before it", e.name);
      rc = rc == SL_EGAP ? SL_ECORRUPT : rc;
      goto out;
    }
  }
  json_array_foreach(snaps, i, j) {
    sl_rx_s3_entry e;
    if ((rc = decode_entry(j, false, false, &e)) || (rc = sl_rx_s3_manifest_add(m, false, &e))) goto out;
  }
  json_t *partial = json_object_get(o, "partial");
  if (partial && (rc = decode_entry(partial, true, true, &m->partial))) goto out;
  m->has_partial = partial != NULL;
  rc = 0;
out:
  json_decref(o);
  if (rc) sl_rx_s3_manifest_free(m);
  return rc;
}
