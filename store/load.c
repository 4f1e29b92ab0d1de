/*
 * Loading backup files (dump.h): a full dump into a new store, an
 * incremental onto the store it follows. Neither leaves half a result.
 *
 * A FULL LOAD builds the store in DIR.tmp-PID beside DIR:
 *   1. the meta records (database 0, first in the file) are read and kept:
 *      the LMDB format version must be this build's, the store id and the
 *      applied txid must be the header's; the source's segment size is
 *      kept for the new log;
 *   2. sl_store_create makes an empty store with the source's store id and
 *      first_txid = last txid + 1 (its LMDB says "txids 1..last applied",
 *      its log starts at the next one), and sl_store_open opens it for
 *      writing, which gives the LMDB environment and database handles;
 *   3. the meta records are put (except those that describe the new
 *      store's own directory: store id, base txid, no_log, segment size,
 *      format version), then every other record is appended with
 *      MDB_APPEND through one cursor per database (the file holds keys in
 *      LMDB's order, checked by the reader), in write transactions of about
 *      LOAD_TXN_BYTES;
 *   4. at the trailer: the store's cached meta is reloaded, a checkpoint
 *      syncs LMDB, the store is closed clean, the directory is renamed to
 *      DIR and DIR's parent is fsynced.
 *   Any failure closes the store and removes DIR.tmp-PID.
 *
 * AN INCREMENTAL LOAD checks the header against the store (store id, txid
 * range), then reads the whole file once only to check it (every chunk,
 * frame and the trailer) and, in the same pass, that the txids the store
 * holds already are the file's (NO SILENT MERGES below), then reads it
 * again and applies the transactions
 * past the store's applied txid with sl_store_apply_batch in groups of
 * about APPLY_BATCH_BYTES. The second pass checks every chunk again, so a
 * file changed in between is still caught (the groups applied before the
 * damage stay: each is a whole, durable set of transactions).
 *
 * NO SILENT MERGES (dump.h LOADING). The overlap is txids first - 1 ..
 * applied. The file gives cs(first - 1) (header) and each record's
 * cs(txid); the store's log gives its own (sl_log_checksum_at for the
 * start, then a log reader alongside the file's records). The first txid
 * whose values differ is named: exactly when the txid before it was seen
 * to agree, else "at or before" it (the store's log was pruned past the
 * file's start). A file without cs(first - 1) is chained from the store's
 * value, so it is compared on the txids both hold only. A store whose log
 * does not know its lineage (sl_log_lineage_known) cannot be compared at
 * all: a warning says so and the load goes on as it always did.
 */
#include "dump.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lineage.h"
#include "store_int.h"

#define LOAD_TXN_BYTES (64u << 20)
#define META_MAX 1024
#define APPLY_BATCH_BYTES (16u << 20)
#define APPLY_BATCH_COUNT 4096

static void progress(const sl_load_options *o, uint64_t done, uint64_t total) {
  if (o && o->progress) o->progress(o->progress_arg, done, total);
}

static void id_hex(const uint8_t id[SL_STORE_ID_SIZE], char out[2 * SL_STORE_ID_SIZE + 1]) {
  sl_hex_encode(id, SL_STORE_ID_SIZE, out);
}

/* ---- full ----------------------------------------------------------------------- */
typedef struct meta_rec {
  char name[SL_DUMP_KEY_MAX + 1];
  uint8_t *val;
  size_t vlen;
} meta_rec;

typedef struct meta_set {
  meta_rec *v;
  size_t n;
  uint64_t offset; /* of the chunk holding them, for messages */
} meta_set;

static void meta_free(meta_set *m) {
  for (size_t i = 0; i < m->n; i++) free(m->v[i].val);
  free(m->v);
}

static const meta_rec *meta_find(const meta_set *m, const char *name) {
  for (size_t i = 0; i < m->n; i++)
    if (!strcmp(m->v[i].name, name)) return &m->v[i];
  return NULL;
}

/* The u64 meta value `name`; SL_ECORRUPT (logged) if missing or malformed. */
static int meta_u64(const meta_set *m, const char *path, const char *name, bool required, uint64_t *out) {
  const meta_rec *r = meta_find(m, name);
  *out = 0;
  if (!r && !required) return 0;
  if (!r || r->vlen != 8) {
    sl_diag_error("%s: offset %" PRIu64 ": the image's meta %s is %s", path, m->offset, name,
                 r ? "malformed" : "missing");
    return SL_ECORRUPT;
  }
  *out = sl_get_le64(r->val);
  return 0;
}

/* Keep the meta records (database 0) and stop at the first other record,
 * left in *rec (*have_rec false at the end of the file). */
static int read_meta(sl_dump_reader *r, const char *path, meta_set *m, sl_dump_record *rec, bool *have_rec) {
  int rc;
  *have_rec = false;
  m->offset = SL_DUMP_HEADER_SIZE;
  while ((rc = sl_dump_next(r, rec)) == 0) {
    if (rec->db != SL__DB_META) {
      *have_rec = true;
      return 0;
    }
    if (m->n == META_MAX) {
      sl_diag_error("%s: offset %" PRIu64 ": more than %d meta records", path, rec->offset, META_MAX);
      return SL_ECORRUPT;
    }
    if (!m->n) {
      m->v = calloc(META_MAX, sizeof *m->v);
      if (!m->v) return -ENOMEM;
    }
    meta_rec *e = &m->v[m->n];
    memcpy(e->name, rec->key, rec->klen);
    e->name[rec->klen] = 0;
    if (!(e->val = malloc(rec->vlen ? rec->vlen : 1))) return -ENOMEM;
    memcpy(e->val, rec->val, rec->vlen);
    e->vlen = rec->vlen;
    m->offset = rec->offset;
    m->n++;
  }
  return rc;
}

/* Check the image's meta against the header and this build. */
static int meta_check(const meta_set *m, const char *path, const sl_dump_header *h, uint64_t *segment_size) {
  uint64_t version, applied;
  int rc;
  if ((rc = meta_u64(m, path, "format_version", true, &version))) return rc;
  if (version < SL__FORMAT_VERSION_PLAIN || version > SL__FORMAT_VERSION) {
    sl_diag_error("%s: offset %" PRIu64 ": LMDB format version %" PRIu64 " is not supported (this build reads %d..%d)",
                 path, m->offset, version, SL__FORMAT_VERSION_PLAIN, SL__FORMAT_VERSION);
    return SL_EVERSION;
  }
  const meta_rec *id = meta_find(m, "store_id");
  if (!id || id->vlen != SL_STORE_ID_SIZE || memcmp(id->val, h->store_id, SL_STORE_ID_SIZE)) {
    sl_diag_error("%s: offset %" PRIu64 ": the image's store id differs from the header's", path, m->offset);
    return SL_ECORRUPT;
  }
  if ((rc = meta_u64(m, path, "applied_txid", true, &applied))) return rc;
  if (applied != h->last_txid) {
    sl_diag_error("%s: offset %" PRIu64 ": the image is at txid %" PRIu64 ", the header says %" PRIu64, path,
                 m->offset, applied, h->last_txid);
    return SL_ECORRUPT;
  }
  return meta_u64(m, path, "segment_size", false, segment_size);
}

/* Put the meta records that describe the graph (not the new directory). */
static int meta_put(const meta_set *m, MDB_txn *txn, MDB_dbi dbi) {
  /* format_version is the image's (2 once it holds schema): copied. */
  static const char *const own[] = {"store_id", "base_txid", "no_log", "segment_size"};
  for (size_t i = 0; i < m->n; i++) {
    bool skip = false;
    for (size_t j = 0; j < SL_ARRAY_LEN(own); j++) skip |= !strcmp(m->v[i].name, own[j]);
    int rc;
    if (!skip && (rc = sl__meta_put_bytes(txn, dbi, m->v[i].name, m->v[i].val, m->v[i].vlen))) return rc;
  }
  return 0;
}

/* 0 if dir is missing or an empty directory, else SL_EEXIST (logged). */
static int target_free(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    int rc = errno == ENOTDIR ? SL_EEXIST : -errno;
    sl_diag_error("%s: %s", dir, rc == SL_EEXIST ? "exists and is not a directory" : sl_strerror(rc));
    return rc;
  }
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      sl_diag_error("%s: not empty (a load needs a missing or empty directory; load --overwrite-destination "
                    "replaces a store, keeping the old one aside)",
                    dir);
      rc = SL_EEXIST;
      break;
    }
  closedir(d);
  return rc;
}

/* --overwrite-destination: *replace when DIR holds a store, which is then
 * held unused (*lock_fd) until the swap; a missing or empty DIR is loaded
 * into as without the flag; anything else is SL_EEXIST (logged). */
static int target_replaceable(const char *dir, bool *replace, int *lock_fd) {
  char id[4200];
  *replace = false;
  snprintf(id, sizeof id, "%s/" SL_STORE_ID_FILE, dir);
  if (access(id, F_OK) != 0) return 0; /* target_free decides */
  int rc = sl_store_lock_unused(dir, lock_fd);
  if (rc) {
    sl_diag_error("%s is in use: stop the processes that have it open, then load over it", dir);
    return rc;
  }
  *replace = true;
  return 0;
}

/* Append records (from *rec on) to the LMDB of st, in big transactions. */
static int append_records(sl_store *st, sl_dump_reader *r, const char *path, const meta_set *m, sl_dump_record *rec,
                          bool have_rec, const sl_load_options *o) {
  MDB_txn *txn = NULL;
  MDB_cursor *cur[SL__DB_COUNT] = {0};
  uint64_t bytes = 0, chunk = 0;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) {
    txn = NULL;
    goto mdb_fail;
  }
  if ((rc = meta_put(m, txn, st->dbi[SL__DB_META]))) goto fail;
  for (; have_rec; have_rec = (rc = sl_dump_next(r, rec)) == 0) {
    MDB_val k = {rec->klen, (void *)rec->key}, v = {rec->vlen, (void *)rec->val};
    if (rec->offset != chunk) {
      chunk = rec->offset;
      progress(o, sl_dump_reader_pos(r), sl_dump_reader_size(r));
    }
    if (bytes >= LOAD_TXN_BYTES) {
      for (int i = 0; i < SL__DB_COUNT; i++) cur[i] = NULL; /* a commit frees them */
      rc = mdb_txn_commit(txn);
      txn = NULL;
      if (rc || (rc = mdb_txn_begin(st->env, NULL, 0, &txn))) goto mdb_fail;
      bytes = 0;
    }
    if (!cur[rec->db] && (rc = mdb_cursor_open(txn, st->dbi[rec->db], &cur[rec->db]))) goto mdb_fail;
    if ((rc = mdb_cursor_put(cur[rec->db], &k, &v, MDB_APPEND))) {
      sl_diag_error("%s: offset %" PRIu64 ": cannot load a record of %s: %s", path, rec->offset,
                   sl__db_names[rec->db], mdb_strerror(rc));
      rc = sl__mdb_err(rc);
      goto fail;
    }
    bytes += rec->klen + rec->vlen;
  }
  if (rc != SL_EEND && rc != 0) goto fail;
  rc = mdb_txn_commit(txn);
  txn = NULL;
  if (rc) goto mdb_fail;
  return 0;
mdb_fail:
  sl_diag_error("%s: LMDB: %s", st->dir, mdb_strerror(rc));
  rc = sl__mdb_err(rc);
fail:
  if (txn) mdb_txn_abort(txn);
  return rc;
}

int sl_load_full(const char *path, const char *dir, const sl_load_options *o, sl_dump_info *out) {
  sl_dump_reader *r = NULL;
  sl_store *st = NULL;
  meta_set m = {0};
  sl_dump_record rec;
  char target[4096], tmp[4200];
  bool have_rec, made = false;
  uint64_t segment_size = 0;
  int lock = -1, rc;

  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--; /* "D/" must not put the scratch store inside D */
  if (n >= sizeof target) return -ENAMETOOLONG;
  memcpy(target, dir, n);
  target[n] = 0;
  snprintf(tmp, sizeof tmp, "%s.tmp-%d", target, (int)getpid());

  bool replace = false;
  if (o && o->kept_len) o->kept[0] = 0;
  if (o && o->overwrite && (rc = target_replaceable(target, &replace, &lock))) goto fail;
  if ((!replace && (rc = target_free(target))) || (rc = sl_dump_open_keyed(path, o ? o->keyring : NULL, &r)))
    goto fail;
  const sl_dump_header *h = sl_dump_reader_header(r);
  if (h->kind != SL_DUMP_FULL) {
    sl_diag_error("%s: an incremental dump (txids %" PRIu64 "..%" PRIu64 "): load it onto the store it follows "
                 "(--onto)", path, h->first_txid, h->last_txid);
    rc = SL_EINVAL;
    goto fail;
  }
  progress(o, 0, sl_dump_reader_size(r));
  rc = read_meta(r, path, &m, &rec, &have_rec);
  if (rc == SL_EEND) rc = 0;
  if (rc || (rc = meta_check(&m, path, h, &segment_size))) goto fail;

  /* The default LMDB map (64 GiB, sparse) unless the image may need more:
   * records compress to about a third, and LMDB pages are not full. */
  uint64_t map = 8 * sl_dump_reader_size(r);
  sl_store_options so = {.store_id = h->store_id,
                         .first_txid = h->last_txid + 1,
                         .segment_size = segment_size,
                         .map_size = map > (64ull << 30) ? map : 0,
                         .no_log = o && o->no_log};
  sl_remove_tree(tmp); /* a leftover of a killed load with our pid */
  if ((rc = sl_store_create(tmp, &so))) goto fail;
  made = true;
  /* The log continues the image's history (store/lineage.h ORIGIN). Only
   * epoch 0 has an empty history; a later epoch's entries are not in the
   * file, so the loaded log knows its epoch and checksum but not when
   * earlier epochs began. */
  char logdir[4300];
  snprintf(logdir, sizeof logdir, "%s/log", tmp);
  if (!so.no_log && h->has_lineage && (rc = sl_log_set_origin(logdir, h->epoch, h->checksum, NULL))) goto fail;
  if ((rc = sl_store_open(tmp, so.no_log ? SL_OPEN_NOLOG : 0, &st))) goto fail;
  if ((rc = append_records(st, r, path, &m, &rec, have_rec, o))) goto fail;

  /* LMDB was written behind the store's back: reload what it caches. */
  MDB_txn *txn;
  if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))) {
    sl_diag_error("%s: LMDB: %s", tmp, mdb_strerror(rc));
    rc = sl__mdb_err(rc);
    goto fail;
  }
  rc = sl__meta_read(txn, st->dbi[SL__DB_META], &st->meta);
  mdb_txn_abort(txn);
  if (rc || (rc = sl_store_checkpoint(st))) goto fail;
  sl_store_close(st);
  st = NULL;
  if (replace) {
    char kept[4200];
    if ((rc = sl_store_swap(target, tmp, "old", kept, sizeof kept))) goto fail;
    if (o->kept_len) snprintf(o->kept, o->kept_len, "%s", kept);
  } else if ((rc = sl_rename_durable(tmp, target))) { /* renamed, then parent fsynced */
    goto fail;
  }
  made = false;
  if (out) sl_dump_reader_info(r, out);
  progress(o, sl_dump_reader_size(r), sl_dump_reader_size(r));
fail:
  if (st) sl_store_close(st);
  if (made) sl_remove_tree(tmp);
  if (lock >= 0) close(lock);
  sl_dump_close(r);
  meta_free(&m);
  return rc;
}

/* ---- incremental ------------------------------------------------------------------ */
/* Comparing the overlap: the store's side, read alongside the file. */
typedef struct overlap {
  bool on;              /* comparing at all */
  bool agreed;          /* cs(txid - 1) of the next compared txid agrees */
  uint64_t from, to;    /* txids whose frames are compared (from > to: none) */
  sl_log_reader *lr;
  char logdir[4200];
} overlap;

static void diverged(const char *path, sl_store *st, const sl_dump_header *h, uint64_t txid, bool exact,
                     uint64_t ours, uint64_t theirs, uint64_t applied) {
  char id[2 * SL_STORE_ID_SIZE + 1];
  id_hex(h->store_id, id);
  sl_diag_error("%s: %s txid %" PRIu64 ": %s (store %s, at txid %" PRIu64 ") holds another history than the dump "
               "(rolling log checksum %016" PRIx64 ", the dump's %016" PRIx64 "), so the dump does not continue it; "
               "nothing was loaded",
               path, exact ? "the first differing transaction is" : "the histories differ at or before", txid,
               st->dir, id, applied, ours, theirs);
}

/* Set up the comparison of the txids first - 1 .. applied (r not read yet).
 * SL_EGAP (logged) when cs(first - 1) already differs. */
static int overlap_begin(overlap *ov, const char *path, sl_store *st, sl_dump_reader *r, uint64_t applied) {
  const sl_dump_header *h = sl_dump_reader_header(r);
  uint64_t first = h->first_txid, cs = 0;
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  memset(ov, 0, sizeof *ov);
  snprintf(ov->logdir, sizeof ov->logdir, "%s/log", st->dir);
  if (!sl_log_lineage_known(ov->logdir)) {
    sl_diag_warn("%s: the log of %s does not know the checksum of its history (it was loaded from a dump that did "
                "not carry it), so txids up to %" PRIu64 " cannot be compared with %s",
                ov->logdir, st->dir, applied, path);
    return 0;
  }
  int rc = sl_log_list(ov->logdir, &segs, &nseg);
  uint64_t oldest = nseg ? segs[0].first_txid : applied + 1;
  free(segs);
  if (rc) return rc;
  bool have_prev = sl_log_checksum_at(ov->logdir, first - 1, &cs) == 0;
  if (h->has_prev_checksum) {
    if (have_prev && cs != h->prev_checksum) {
      diverged(path, st, h, first - 1, false, cs, h->prev_checksum, applied);
      return SL_EGAP;
    }
    ov->agreed = have_prev;
  } else if (have_prev) {
    sl_dump_reader_chain_from(r, cs);
    ov->agreed = true;
    if (applied >= first)
      sl_diag_warn("%s: an older file without the checksum of the history before txid %" PRIu64 ": txids %" PRIu64
                  "..%" PRIu64 " are compared with %s, the history before them is not",
                  path, first, first, applied, st->dir);
    else
      sl_diag_warn("%s: an older file without the checksum of the history before txid %" PRIu64 ": it cannot be "
                  "checked to continue the history of %s",
                  path, first, st->dir);
  } else {
    sl_diag_warn("%s: an older file without the checksum of the history before txid %" PRIu64 ", and the log of %s "
                "no longer holds that point: txids %" PRIu64 "..%" PRIu64 " are not compared",
                path, first, st->dir, first, applied);
    return 0;
  }
  ov->on = true;
  ov->from = SL_MAX(first, oldest);
  ov->to = applied;
  if (ov->from <= ov->to) {
    sl_log_reader_options ro = {.max_txid = ov->to, .tolerate_tail = false};
    if ((rc = sl_log_reader_open(ov->logdir, ov->from, &ro, &ov->lr))) {
      sl_diag_error("%s: cannot read from txid %" PRIu64 ": %s", ov->logdir, ov->from, sl_strerror(rc));
      return rc;
    }
  }
  return 0;
}

/* Compare one record of the file with the store's transaction. */
static int overlap_check(overlap *ov, const char *path, sl_store *st, const sl_dump_header *h,
                         const sl_dump_record *rec) {
  sl_frame f;
  if (!ov->on || rec->txid < ov->from || rec->txid > ov->to) return 0;
  int rc = sl_log_reader_next(ov->lr, &f);
  if (rc == 0 && f.txid != rec->txid) rc = SL_EGAP;
  if (rc) {
    sl_diag_error("%s: cannot read txid %" PRIu64 " to compare it with %s: %s", ov->logdir, rec->txid, path,
                 sl_strerror(rc == SL_EEND ? SL_ETRUNCATED : rc));
    return rc == SL_EEND ? SL_ETRUNCATED : rc;
  }
  if (f.checksum != rec->checksum) {
    diverged(path, st, h, rec->txid, ov->agreed, f.checksum, rec->checksum, ov->to);
    return SL_EGAP;
  }
  ov->agreed = true;
  return 0;
}

/* Transactions waiting to be applied in one sl_store_apply_batch call. */
typedef struct batch {
  uint8_t *buf;
  size_t len, cap;
  size_t offs[APPLY_BATCH_COUNT + 1];
  size_t n;
  uint64_t first_txid, first_offset;
} batch;

static int batch_flush(batch *b, sl_store *st, const char *path, uint64_t *applied) {
  const uint8_t *ptrs[APPLY_BATCH_COUNT];
  size_t lens[APPLY_BATCH_COUNT];
  if (!b->n) return 0;
  for (size_t i = 0; i < b->n; i++) {
    ptrs[i] = b->buf + b->offs[i];
    lens[i] = b->offs[i + 1] - b->offs[i];
  }
  int rc = sl_store_apply_batch(st, ptrs, lens, b->n);
  if (rc) {
    sl_diag_error("%s: offset %" PRIu64 ": cannot apply txids %" PRIu64 "..%" PRIu64 " to %s: %s", path,
                 b->first_offset, b->first_txid, b->first_txid + b->n - 1, st->dir, sl_strerror(rc));
    return rc;
  }
  *applied += b->n;
  b->n = b->len = 0;
  return 0;
}

static int batch_add(batch *b, const sl_dump_record *rec) {
  if (b->len + rec->len > b->cap) {
    size_t cap = SL_MAX(SL_MAX(b->cap * 2, b->len + rec->len), (size_t)1 << 20);
    uint8_t *p = realloc(b->buf, cap);
    if (!p) return -ENOMEM;
    b->buf = p;
    b->cap = cap;
  }
  if (!b->n) {
    b->first_txid = rec->txid;
    b->first_offset = rec->offset;
  }
  b->offs[b->n] = b->len;
  memcpy(b->buf + b->len, rec->payload, rec->len);
  b->len += rec->len;
  b->offs[++b->n] = b->len;
  return 0;
}

int sl_load_incremental(const char *path, sl_store *st, const sl_load_options *o, sl_load_result *out) {
  sl_dump_reader *r = NULL;
  batch *b = NULL;
  sl_view *v = NULL;
  sl_dump_record rec;
  sl_counts cn;
  sl_load_result res = {0};
  overlap ov = {0};
  char a[2 * SL_STORE_ID_SIZE + 1], c[2 * SL_STORE_ID_SIZE + 1];
  uint64_t chunk = 0;
  int rc;

  if ((rc = sl_dump_open_keyed(path, o ? o->keyring : NULL, &r))) goto fail;
  const sl_dump_header *h = sl_dump_reader_header(r);
  uint64_t size = sl_dump_reader_size(r);
  if (h->kind != SL_DUMP_INCREMENTAL) {
    sl_diag_error("%s: a full dump: load it into a new store (--into)", path);
    rc = SL_EINVAL;
    goto fail;
  }
  if (memcmp(h->store_id, sl_store_id(st), SL_STORE_ID_SIZE)) {
    id_hex(h->store_id, a);
    id_hex(sl_store_id(st), c);
    sl_diag_error("%s: a dump of store %s; %s is store %s", path, a, st->dir, c);
    rc = SL_ESTOREID;
    goto fail;
  }
  if ((rc = sl_view_begin(st, &v)) || (rc = sl_view_counts(v, &cn))) goto fail;
  sl_view_end(v);
  v = NULL;
  res.from_txid = res.to_txid = cn.applied_txid;
  if (h->first_txid > cn.applied_txid + 1) {
    sl_diag_error("%s: starts at txid %" PRIu64 " but %s is at txid %" PRIu64 ": txids %" PRIu64 "..%" PRIu64
                 " are missing (load the dumps between them first)",
                 path, h->first_txid, st->dir, cn.applied_txid, cn.applied_txid + 1, h->first_txid - 1);
    rc = SL_EGAP;
    goto fail;
  }
  if (cn.applied_txid > h->last_txid) {
    sl_diag_error("%s: ends at txid %" PRIu64 " but %s is already at txid %" PRIu64 ": nothing to load", path,
                 h->last_txid, st->dir, cn.applied_txid);
    rc = SL_EEXIST;
    goto fail;
  }

  /* 1. Check everything before applying anything: the file, and that the
   * txids the store holds already are the file's. */
  if ((rc = overlap_begin(&ov, path, st, r, cn.applied_txid))) goto fail;
  progress(o, 0, 2 * size);
  while ((rc = sl_dump_next(r, &rec)) == 0) {
    if (rec.offset != chunk) progress(o, chunk = rec.offset, 2 * size);
    if ((rc = overlap_check(&ov, path, st, h, &rec))) goto fail;
  }
  if (rc != SL_EEND || (rc = sl_dump_rewind(r))) goto fail;

  /* 2. Apply what the store lacks. */
  if (!(b = calloc(1, sizeof *b))) {
    rc = -ENOMEM;
    goto fail;
  }
  chunk = 0;
  while ((rc = sl_dump_next(r, &rec)) == 0) {
    if (rec.offset != chunk) progress(o, size + (chunk = rec.offset), 2 * size);
    if (rec.txid <= cn.applied_txid) {
      res.skipped++;
      continue;
    }
    if ((rc = batch_add(b, &rec))) goto fail;
    if ((b->n == APPLY_BATCH_COUNT || b->len >= APPLY_BATCH_BYTES) && (rc = batch_flush(b, st, path, &res.applied)))
      goto fail;
  }
  if (rc != SL_EEND || (rc = batch_flush(b, st, path, &res.applied))) goto fail;
  rc = 0;
  res.to_txid = cn.applied_txid + res.applied;
  progress(o, 2 * size, 2 * size);
fail:
  if (out) *out = res;
  if (v) sl_view_end(v);
  if (b) free(b->buf);
  free(b);
  if (ov.lr) sl_log_reader_close(ov.lr);
  sl_dump_close(r);
  return rc;
}
