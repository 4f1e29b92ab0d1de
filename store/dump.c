/*
 * Writing backup files; the format is specified in dump.h, reading them is
 * dump_reader.c, loading them into stores is load.c.
 *
 * WRITING streams through a small pipeline. The caller's thread (the
 * producer: LMDB cursors or the log reader) appends records to the raw
 * buffer of a chunk slot; when the next record would pass SL_DUMP_CHUNK_RAW
 * (or the chunk size a test asks for) it numbers the slot and hands it to
 * WRITER_WORKERS threads, which LZ4-compress slots in parallel
 * (LZ4_compress_default) and write them strictly in number order, each
 * with one write() of header + stored bytes; the worker whose turn it is
 * also continues the CRC of all raw bytes, so that runs in order too. The
 * raw buffer keeps 16 bytes of headroom so that a chunk LZ4 cannot shrink is
 * written from it directly. Why threads: LZ4 costs more CPU than walking
 * LMDB, and a plain copy of data.mdb (the yardstick) costs almost none, so
 * on one core a dump could not keep up with a fast disk. Memory is
 * WRITER_SLOTS chunks (two buffers each) whatever the store's size (more
 * only while a record larger than a chunk passes through), and the output
 * is one sequential stream, so a pipe works as well as a file. The first
 * write error is sticky: the producer sees it at its next hand-over.
 *
 * A FULL DUMP is one LMDB read transaction: the meta database in it gives
 * the applied txid and commit time of exactly the image that the cursors
 * then walk, database by database in index order. Nothing is locked: the
 * store's writers go on, and LMDB keeps the snapshot's pages alive until
 * the transaction ends.
 *
 * AN INCREMENTAL DUMP reads the store's log directory with sl_log_reader
 * up to the durable mark read at the start (a frame past it may be an
 * append in progress); it re-encodes each frame header (same bytes as in
 * the segment) in front of the payload. Its header carries cs(first - 1),
 * from which the reader chains every record's cs(txid) as it goes (the
 * loader compares them with the store's, load.c).
 *
 * SEALED FILES (dump.h, AT-REST ENCRYPTION): the worker that compressed a
 * chunk also seals it (crypt.h) into a third buffer of the slot, so sealing
 * runs in parallel with compression; the chunk's index is its sequence
 * number, known before its turn to write. The trailer is sealed last, with
 * index = the number of chunks.
 */
#include "dump.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lz4.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypt.h"
#include "lineage.h"
#include "store_int.h"

#define PROGRESS_EVERY 8192 /* records between progress calls */
#define WRITER_SLOTS 4      /* chunks being filled, compressed or written */
#define WRITER_WORKERS 2    /* threads compressing chunks (writes stay in order) */
#define PREFETCH_STEP (8u << 20) /* readahead() piece for a cold full dump */
#define PREFETCH_MEM_SHARE 4     /* prefetch only stores up to 1/4 of RAM */

/* ---- header --------------------------------------------------------------------- */
void sl_dump_header_encode(const sl_dump_header *h, uint8_t out[SL_DUMP_HEADER_SIZE]) {
  memset(out, 0, SL_DUMP_HEADER_SIZE);
  memcpy(out, SL_DUMP_MAGIC, 8);
  out[8] = h->key_id[0] ? SL_DUMP_VERSION_SEALED : SL_DUMP_VERSION;
  out[9] = 0;
  out[10] = SL_DUMP_HEADER_SIZE & 0xff;
  out[11] = SL_DUMP_HEADER_SIZE >> 8;
  sl_put_le32(out + 12, h->kind);
  memcpy(out + 16, h->store_id, SL_STORE_ID_SIZE);
  sl_put_le64(out + 32, h->first_txid);
  sl_put_le64(out + 40, h->last_txid);
  sl_put_le64(out + 48, h->last_commit_us);
  sl_put_le64(out + 56, h->since_us);
  sl_put_le64(out + 64, h->created_us);
  sl_put_le64(out + 72, h->epoch);
  memcpy(out + 80, h->key_id, strnlen(h->key_id, SL_KEY_ID_SIZE));
  if (h->kind == SL_DUMP_INCREMENTAL && h->has_prev_checksum) {
    sl_put_le64(out + 112, h->prev_checksum);
    sl_put_le32(out + 120, SL_DUMP_F_PREV_CHECKSUM);
  } else if (h->has_lineage) {
    sl_put_le64(out + 112, h->checksum);
    sl_put_le32(out + 120, SL_DUMP_F_LINEAGE);
  }
  sl_put_le32(out + 124, sl_crc32c(0, out, 124));
}

int sl_dump_header_decode(const uint8_t in[SL_DUMP_HEADER_SIZE], sl_dump_header *h) {
  static const uint8_t zero[SL_KEY_ID_SIZE];
  if (memcmp(in, SL_DUMP_MAGIC, 8)) return SL_ENOTLOG;
  uint16_t version = (uint16_t)(in[8] | in[9] << 8);
  if (version != SL_DUMP_VERSION && version != SL_DUMP_VERSION_SEALED) return SL_EVERSION;
  if (sl_get_le32(in + 124) != sl_crc32c(0, in, 124)) return SL_ECORRUPT;
  if ((in[10] | in[11] << 8) != SL_DUMP_HEADER_SIZE) return SL_ECORRUPT;
  memset(h, 0, sizeof *h);
  h->version = version;
  h->kind = sl_get_le32(in + 12);
  memcpy(h->store_id, in + 16, SL_STORE_ID_SIZE);
  h->first_txid = sl_get_le64(in + 32);
  h->last_txid = sl_get_le64(in + 40);
  h->last_commit_us = sl_get_le64(in + 48);
  h->since_us = sl_get_le64(in + 56);
  h->created_us = sl_get_le64(in + 64);
  h->epoch = sl_get_le64(in + 72);
  memcpy(h->key_id, in + 80, SL_KEY_ID_SIZE);
  uint32_t flags = sl_get_le32(in + 120);
  h->has_lineage = flags & SL_DUMP_F_LINEAGE;
  h->checksum = h->has_lineage ? sl_get_le64(in + 112) : 0;
  h->has_prev_checksum = h->kind == SL_DUMP_INCREMENTAL && (flags & SL_DUMP_F_PREV_CHECKSUM);
  h->prev_checksum = h->has_prev_checksum ? sl_get_le64(in + 112) : 0;
  if (h->kind != SL_DUMP_FULL && h->kind != SL_DUMP_INCREMENTAL) return SL_ECORRUPT;
  if ((flags & SL_DUMP_F_LINEAGE) && (flags & SL_DUMP_F_PREV_CHECKSUM)) return SL_ECORRUPT; /* one field, two meanings */
  if (h->first_txid == 0 || h->last_txid + 1 < h->first_txid) return SL_ECORRUPT;
  if (h->kind == SL_DUMP_FULL && h->first_txid != 1) return SL_ECORRUPT;
  /* Version 1 is plaintext, version 2 sealed: the key id says the same. */
  if (!memcmp(in + 80, zero, SL_KEY_ID_SIZE) != (version == SL_DUMP_VERSION)) return SL_ECORRUPT;
  if (version == SL_DUMP_VERSION_SEALED && !sl_crypt_key_id_valid(h->key_id)) return SL_ECORRUPT;
  return 0;
}

/* The lineage of a full dump's image (its log's epoch and checksum at the
 * image's txid), so that a store loaded from it continues the same history.
 * A log that no longer holds that point leaves it unknown. */
static void dump_lineage(sl_store *st, sl_dump_header *h) {
  char logdir[4200];
  sl_history hist;
  snprintf(logdir, sizeof logdir, "%s/log", st->dir);
  h->has_lineage = sl_log_lineage_known(logdir) &&
                   sl_log_lineage_at(logdir, h->last_txid, &hist, &h->epoch, &h->checksum) == 0;
  if (!h->has_lineage) h->epoch = h->checksum = 0;
}

/* ---- writer ------------------------------------------------------------------------ */
/* A slot holds one chunk on its way out: FILLING (the producer appends
 * records), READY (handed over, numbered), BUSY (a worker compresses it,
 * then waits for its turn to write). Chunks are written in the order they
 * were numbered. */
enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_BUSY };

typedef struct slot {
  uint8_t *rawbuf; /* SL_DUMP_CHUNK_HEADER_SIZE headroom, then the raw chunk */
  size_t len, cap; /* raw bytes in the chunk, capacity after the headroom */
  uint8_t *out;    /* chunk header + LZ4 block */
  size_t out_cap;
  uint8_t *sealed; /* sealed files: chunk header + nonce | ciphertext | tag */
  uint64_t seq;
  int state;
} slot;

typedef struct writer {
  int fd;
  const char *name;
  size_t chunk_raw; /* hand a chunk over before a record would pass this */
  slot slots[WRITER_SLOTS];
  slot *cur;        /* FILLING, owned by the producer */
  sl_keyring *kr;   /* sealed file: the key (kr's first) and the header */
  uint8_t header[SL_DUMP_HEADER_SIZE];
  uint64_t records; /* producer's count */
  pthread_t workers[WRITER_WORKERS];
  int nworkers;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t next_seq, next_write;
  int err;          /* sticky: the first failure */
  bool closing;
  /* Changed only by the worker whose turn it is to write (the turns are
   * passed under mu), read by the producer after joining them. */
  uint32_t raw_crc;
  uint64_t raw_bytes, file_bytes;
} writer;

/* Room for cap raw bytes (and their sealed form when sealed). */
static int slot_grow(slot *s, size_t cap, bool sealed) {
  if (cap > SL_DUMP_CHUNK_MAX) return SL_ETOOBIG;
  size_t out_cap = SL_DUMP_CHUNK_HEADER_SIZE + (size_t)LZ4_compressBound((int)cap);
  uint8_t *r = realloc(s->rawbuf, SL_DUMP_CHUNK_HEADER_SIZE + cap);
  if (!r) return -ENOMEM;
  s->rawbuf = r;
  s->cap = cap;
  uint8_t *o = realloc(s->out, out_cap);
  if (!o) return -ENOMEM;
  s->out = o;
  s->out_cap = out_cap;
  if (!sealed) return 0;
  uint8_t *z = realloc(s->sealed, out_cap + SL_CRYPT_OVERHEAD);
  if (!z) return -ENOMEM;
  s->sealed = z;
  return 0;
}

/* Write p[0..n) (by the producer before the workers have anything, or by
 * the worker whose turn it is). */
static int writer_put(writer *w, const void *p, size_t n) {
  int rc = sl_write_all(w->fd, p, n);
  if (rc) {
    sl_diag_error("%s: write: %s", w->name, sl_strerror(rc));
    return rc;
  }
  w->file_bytes += n;
  return 0;
}

static void chunk_header(uint8_t h[SL_DUMP_CHUNK_HEADER_SIZE], uint32_t raw_len, uint32_t stored_len, uint32_t flags,
                         const uint8_t *stored) {
  sl_put_le32(h, raw_len);
  sl_put_le32(h + 4, stored_len);
  sl_put_le32(h + 8, flags);
  sl_put_le32(h + 12, sl_crc32c(sl_crc32c(0, h, 12), stored, stored_len));
}

/* Seal a chunk's stored bytes: h[0..16) receives the chunk header, the bytes
 * after it nonce | ciphertext | tag, with additional data chunk header
 * bytes 0..11 | le64 index | the file header (dump.h). */
static int chunk_seal(writer *w, uint64_t index, uint32_t raw_len, uint32_t flags, const uint8_t *in, size_t len,
                      uint8_t *h) {
  uint8_t aad[12 + 8 + SL_DUMP_HEADER_SIZE];
  uint32_t stored_len = (uint32_t)(len + SL_CRYPT_OVERHEAD);
  sl_put_le32(aad, raw_len);
  sl_put_le32(aad + 4, stored_len);
  sl_put_le32(aad + 8, flags | SL_DUMP_CHUNK_F_SEALED);
  sl_put_le64(aad + 12, index);
  memcpy(aad + 20, w->header, SL_DUMP_HEADER_SIZE);
  const uint8_t *store_id = w->header + 16;
  int rc = sl_crypt_seal_chunk(w->kr, NULL, store_id, aad, sizeof aad, in, len, h + SL_DUMP_CHUNK_HEADER_SIZE);
  if (rc) {
    sl_diag_error("%s: sealing chunk %" PRIu64 ": %s", w->name, index, sl_strerror(rc));
    return rc;
  }
  chunk_header(h, raw_len, stored_len, flags | SL_DUMP_CHUNK_F_SEALED, h + SL_DUMP_CHUNK_HEADER_SIZE);
  return 0;
}

/* Compress (and seal) a slot's chunk; *chunk = header + stored bytes, *n
 * their size. */
static int slot_seal(writer *w, slot *s, const uint8_t **chunk, size_t *n) {
  uint8_t *raw = s->rawbuf + SL_DUMP_CHUNK_HEADER_SIZE;
  int c = LZ4_compress_default((const char *)raw, (char *)s->out + SL_DUMP_CHUNK_HEADER_SIZE, (int)s->len,
                               (int)(s->out_cap - SL_DUMP_CHUNK_HEADER_SIZE));
  uint8_t *h = s->out;
  size_t stored = (size_t)c;
  uint32_t flags = 1;
  if (c <= 0 || stored >= s->len) { /* incompressible: store raw */
    h = s->rawbuf;
    stored = s->len;
    flags = 0;
  }
  if (w->kr) {
    int rc = chunk_seal(w, s->seq, (uint32_t)s->len, flags, h + SL_DUMP_CHUNK_HEADER_SIZE, stored, s->sealed);
    if (rc) return rc;
    *chunk = s->sealed;
    *n = SL_DUMP_CHUNK_HEADER_SIZE + stored + SL_CRYPT_OVERHEAD;
    return 0;
  }
  chunk_header(h, (uint32_t)s->len, (uint32_t)stored, flags, h + SL_DUMP_CHUNK_HEADER_SIZE);
  *chunk = h;
  *n = SL_DUMP_CHUNK_HEADER_SIZE + stored;
  return 0;
}

static void *worker_main(void *arg) {
  writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    slot *s = NULL;
    for (int i = 0; i < WRITER_SLOTS; i++)
      if (w->slots[i].state == SLOT_READY && (!s || w->slots[i].seq < s->seq)) s = &w->slots[i];
    if (!s) {
      if (w->closing) break;
      pthread_cond_wait(&w->cv, &w->mu);
      continue;
    }
    s->state = SLOT_BUSY;
    pthread_mutex_unlock(&w->mu);
    const uint8_t *chunk = NULL;
    size_t n = 0;
    int src = slot_seal(w, s, &chunk, &n);
    pthread_mutex_lock(&w->mu);
    if (src && !w->err) w->err = src;
    while (w->next_write != s->seq && !w->err) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->err) {
      pthread_mutex_unlock(&w->mu);
      w->raw_crc = sl_crc32c(w->raw_crc, s->rawbuf + SL_DUMP_CHUNK_HEADER_SIZE, s->len);
      w->raw_bytes += s->len;
      int rc = writer_put(w, chunk, n);
      pthread_mutex_lock(&w->mu);
      if (rc && !w->err) w->err = rc;
    }
    w->next_write++;
    s->len = 0;
    s->state = SLOT_FREE;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Hand the filling chunk (if it holds anything) to the workers and take a
 * free slot. Returns the sticky error, if any. */
static int writer_submit(writer *w) {
  pthread_mutex_lock(&w->mu);
  if (w->cur && w->cur->len) {
    w->cur->seq = w->next_seq++;
    w->cur->state = SLOT_READY;
    w->cur = NULL;
    pthread_cond_broadcast(&w->cv);
  }
  while (!w->cur && !w->err) {
    for (int i = 0; i < WRITER_SLOTS && !w->cur; i++)
      if (w->slots[i].state == SLOT_FREE) w->cur = &w->slots[i];
    if (w->cur) w->cur->state = SLOT_FILLING;
    else pthread_cond_wait(&w->cv, &w->mu);
  }
  int rc = w->err;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

/* Let the workers drain what was handed over, and join them. With
 * `abandon` they drop it unwritten. Returns the sticky error. */
static int writer_stop(writer *w, bool abandon) {
  pthread_mutex_lock(&w->mu);
  w->closing = true;
  if (abandon && !w->err) w->err = -ECANCELED;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  for (int i = 0; i < w->nworkers; i++) pthread_join(w->workers[i], NULL);
  w->nworkers = 0;
  return w->err;
}

static void writer_free(writer *w) {
  if (w->nworkers) writer_stop(w, true);
  for (int i = 0; i < WRITER_SLOTS; i++) {
    free(w->slots[i].rawbuf);
    free(w->slots[i].out);
    free(w->slots[i].sealed);
  }
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

static int writer_init(writer *w, int fd, const sl_dump_options *o) {
  *w = (writer){.fd = fd,
                .kr = o ? o->keyring : NULL,
                .name = o && o->name ? o->name : "dump output",
                .chunk_raw = o && o->chunk_raw ? SL_MIN(o->chunk_raw, SL_DUMP_CHUNK_MAX) : SL_DUMP_CHUNK_RAW};
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  int rc = 0;
  for (int i = 0; i < WRITER_SLOTS && !rc; i++) rc = slot_grow(&w->slots[i], w->chunk_raw, w->kr != NULL);
  for (int i = 0; i < WRITER_WORKERS && !rc; i++)
    if (!(rc = -pthread_create(&w->workers[i], NULL, worker_main, w))) w->nworkers++;
  return rc ? rc : writer_submit(w);
}

/* Room for a record of n bytes in the current chunk (handing the chunk over
 * first if the record would make it pass the chunk size); the caller fills
 * it. */
static int writer_reserve(writer *w, size_t n, uint8_t **p) {
  int rc;
  if (w->cur->len && w->cur->len + n > w->chunk_raw && (rc = writer_submit(w))) return rc;
  slot *s = w->cur;
  if (n > s->cap && (rc = slot_grow(s, n, w->kr != NULL))) {
    if (rc == SL_ETOOBIG) sl_diag_error("%s: a record of %zu bytes exceeds the largest chunk", w->name, n);
    return rc;
  }
  *p = s->rawbuf + SL_DUMP_CHUNK_HEADER_SIZE + s->len;
  s->len += n;
  w->records++;
  return 0;
}

/* The last chunk, then the trailer. */
static int writer_finish(writer *w) {
  uint8_t t[SL_DUMP_CHUNK_HEADER_SIZE + SL_DUMP_TRAILER_SIZE] = {0};
  uint8_t st[SL_DUMP_CHUNK_HEADER_SIZE + SL_DUMP_TRAILER_SIZE + SL_CRYPT_OVERHEAD];
  int rc = writer_submit(w);
  if (rc || (rc = writer_stop(w, false))) return rc;
  uint8_t *body = t + SL_DUMP_CHUNK_HEADER_SIZE;
  sl_put_le64(body, w->records);
  sl_put_le32(body + 8, w->raw_crc);
  if (w->kr) {
    if ((rc = chunk_seal(w, w->next_seq, 0, 0, body, SL_DUMP_TRAILER_SIZE, st))) return rc;
    return writer_put(w, st, sizeof st);
  }
  chunk_header(t, 0, SL_DUMP_TRAILER_SIZE, 0, body);
  return writer_put(w, t, sizeof t);
}

/* Also names the key (sealed files), as the header must before it is written. */
static int write_header(writer *w, sl_dump_header *h) {
  if (w->kr) snprintf(h->key_id, sizeof h->key_id, "%s", sl_keyring_primary(w->kr));
  h->version = w->kr ? SL_DUMP_VERSION_SEALED : SL_DUMP_VERSION;
  sl_dump_header_encode(h, w->header);
  return writer_put(w, w->header, sizeof w->header);
}

/* After writer_finish (the workers are joined). */
static void fill_info(sl_dump_info *out, const sl_dump_header *h, const writer *w) {
  if (!out) return;
  *out = (sl_dump_info){.header = *h, .records = w->records, .raw_bytes = w->raw_bytes, .file_bytes = w->file_bytes};
  out->has_end_checksum = h->kind == SL_DUMP_FULL ? h->has_lineage : h->has_prev_checksum;
  out->end_checksum = h->kind == SL_DUMP_FULL ? h->checksum : h->prev_checksum; /* incremental: see its caller */
}

static void progress(const sl_dump_options *o, uint64_t done, uint64_t total) {
  if (o && o->progress) o->progress(o->progress_arg, done, total);
}

/* ---- full dump ------------------------------------------------------------------- */
/* A cold full dump is bound by page-fault latency: the cursors touch
 * LMDB's pages in key order, which is not file order, one fault and one
 * small read at a time. When the pages in use fit easily in memory, a
 * thread reads them into the page cache in large sequential pieces ahead of
 * the walk (bigger stores would only evict what the walk still needs). */
typedef struct prefetch {
  pthread_t th;
  bool running;
  int fd;
  uint64_t len;
  atomic_bool stop;
} prefetch;

static void *prefetch_main(void *arg) {
  prefetch *p = arg;
  for (uint64_t off = 0; off < p->len && !atomic_load(&p->stop); off += PREFETCH_STEP)
    (void)readahead(p->fd, (off64_t)off, SL_MIN(PREFETCH_STEP, p->len - off)); /* only a hint */
  return NULL;
}

static void prefetch_start(prefetch *p, sl_store *st) {
  MDB_envinfo ei;
  MDB_stat ms;
  char path[4096];
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  p->running = false;
  p->fd = -1;
  atomic_init(&p->stop, false);
  if (mdb_env_info(st->env, &ei) || mdb_env_stat(st->env, &ms) || pages <= 0 || psize <= 0) return;
  p->len = (uint64_t)(ei.me_last_pgno + 1) * ms.ms_psize;
  if (p->len > (uint64_t)pages * (uint64_t)psize / PREFETCH_MEM_SHARE) return;
  if (snprintf(path, sizeof path, "%s/data.mdb", st->dir) >= (int)sizeof path) return;
  if ((p->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return;
  p->running = pthread_create(&p->th, NULL, prefetch_main, p) == 0;
  if (!p->running) close(p->fd);
}

static void prefetch_stop(prefetch *p) {
  if (!p->running) return;
  atomic_store(&p->stop, true);
  pthread_join(p->th, NULL);
  close(p->fd);
  p->running = false;
}

int sl_dump_full(sl_store *st, int fd, const sl_dump_options *opt, sl_dump_info *out) {
  MDB_txn *txn = NULL;
  MDB_cursor *c = NULL;
  sl__meta m;
  writer w;
  prefetch pf;
  uint64_t total = 0;
  prefetch_start(&pf, st);
  int rc = writer_init(&w, fd, opt);
  if (rc) goto fail;
  /* The snapshot's pages are checked before the cursors walk them: a
   * damaged page fails the dump (SL_ECORRUPT naming data.mdb), never a file
   * that only a load refuses, nor an LMDB assertion. */
  for (int tries = 0;; tries++) {
    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))) {
      sl_diag_error("%s: LMDB read transaction: %s", st->dir, mdb_strerror(rc));
      rc = sl__mdb_err(rc);
      txn = NULL;
      goto fail;
    }
    if ((rc = sl__lmdb_check(st, txn)) != -EAGAIN || tries == 100) break;
    mdb_txn_abort(txn); /* a writer rewrote both meta pages meanwhile */
    txn = NULL;
  }
  if (rc) goto fail;
  if ((rc = sl__meta_read(txn, st->dbi[SL__DB_META], &m))) goto fail;
  /* A store of format 1 opened read-only may lack the schema databases. */
  int ndbs = st->schema_dbs ? SL__DB_COUNT : SL__DB_SCHEMA;
  for (int db = 0; db < ndbs; db++) {
    MDB_stat s;
    if (mdb_stat(txn, st->dbi[db], &s) == 0) total += s.ms_entries;
  }
  sl_dump_header h = {.kind = SL_DUMP_FULL,
                      .first_txid = 1,
                      .last_txid = m.applied_txid,
                      .last_commit_us = m.last_commit_us,
                      .created_us = sl_now_us()};
  memcpy(h.store_id, st->id, SL_STORE_ID_SIZE);
  if (!st->no_log) dump_lineage(st, &h);
  if ((rc = write_header(&w, &h))) goto fail;
  progress(opt, 0, total);
  for (int db = 0; db < ndbs; db++) {
    MDB_val k, v;
    if ((rc = mdb_cursor_open(txn, st->dbi[db], &c))) {
      sl_diag_error("%s: LMDB cursor on %s: %s", st->dir, sl__db_names[db], mdb_strerror(rc));
      rc = sl__mdb_err(rc);
      goto fail;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      uint8_t *p;
      if (k.mv_size == 0 || k.mv_size > SL_DUMP_KEY_MAX || v.mv_size > SL_FRAME_MAX) {
        sl_diag_error("%s: LMDB %s holds a key of %zu bytes with a value of %zu bytes: not dumpable", st->dir,
                     sl__db_names[db], k.mv_size, v.mv_size);
        rc = SL_ECORRUPT;
        goto fail;
      }
      if ((rc = writer_reserve(&w, SL_DUMP_RECORD_HEADER_SIZE + k.mv_size + v.mv_size, &p))) goto fail;
      p[0] = (uint8_t)db;
      sl_put_le32(p + 1, (uint32_t)k.mv_size);
      sl_put_le32(p + 5, (uint32_t)v.mv_size);
      memcpy(p + SL_DUMP_RECORD_HEADER_SIZE, k.mv_data, k.mv_size);
      memcpy(p + SL_DUMP_RECORD_HEADER_SIZE + k.mv_size, v.mv_data, v.mv_size);
      if (w.records % PROGRESS_EVERY == 0) progress(opt, w.records, total);
    }
    if (rc != MDB_NOTFOUND) {
      sl_diag_error("%s: LMDB %s: %s", st->dir, sl__db_names[db], mdb_strerror(rc));
      rc = sl__mdb_err(rc);
      goto fail;
    }
    mdb_cursor_close(c);
    c = NULL;
  }
  if ((rc = writer_finish(&w))) goto fail;
  progress(opt, w.records, total);
  fill_info(out, &h, &w);
  rc = 0;
fail:
  prefetch_stop(&pf);
  if (c) mdb_cursor_close(c);
  if (txn) mdb_txn_abort(txn);
  writer_free(&w);
  return rc;
}

/* ---- incremental dump ------------------------------------------------------------ */
/* The commit time of txid (which the log holds up to max). */
static int commit_time_of(const char *logdir, uint64_t txid, uint64_t *us) {
  sl_log_reader *r;
  sl_frame f;
  sl_log_reader_options ro = {.max_txid = txid};
  int rc = sl_log_reader_open(logdir, txid, &ro, &r);
  if (rc) return rc;
  rc = sl_log_reader_next(r, &f);
  if (!rc) *us = f.commit_us;
  sl_log_reader_close(r);
  return rc == SL_EEND ? SL_ECORRUPT : rc;
}

/* Resolve the txid range [*first, *last] the options ask for. */
static int incremental_range(const char *logdir, const sl_dump_options *o, uint64_t *first, uint64_t *last) {
  sl_seg_info *segs = NULL;
  size_t nseg = 0;
  uint64_t durable = 0;
  int rc = sl_log_list(logdir, &segs, &nseg);
  if (rc) {
    sl_diag_error("%s: cannot list the log: %s", logdir, sl_strerror(rc));
    return rc;
  }
  uint64_t oldest = nseg ? segs[0].first_txid : 0;
  free(segs);
  if (!nseg) {
    sl_diag_error("%s: the log has no segments", logdir);
    return SL_ECORRUPT;
  }
  rc = sl_log_read_durable_mark(logdir, &durable);
  if (rc && rc != SL_ENOTFOUND) {
    sl_diag_error("%s: cannot read the durable mark: %s", logdir, sl_strerror(rc));
    return rc;
  }
  /* No mark: never opened for writing since it was made, so nothing past
   * the log's start is durable (and max_txid 0 would mean "no limit"). */
  durable = SL_MAX(durable, oldest - 1);
  uint64_t from = oldest;
  if (o && o->from_txid) {
    if (o->from_txid < oldest) {
      sl_diag_error("%s: txid %" PRIu64 " is no longer in the log (it begins at txid %" PRIu64 ")", logdir,
                   o->from_txid, oldest);
      return SL_ENOTFOUND;
    }
    if (o->from_txid > durable + 1) {
      sl_diag_error("%s: txid %" PRIu64 " lies past the last durable txid %" PRIu64, logdir, o->from_txid, durable);
      return SL_EINVAL;
    }
    from = o->from_txid;
  }
  if (o && o->has_since) {
    uint64_t after;
    char t[32];
    if ((rc = sl_log_find_after_time(logdir, o->since_us, &after))) {
      sl_diag_error("%s: cannot search the log by time: %s", logdir, sl_strerror(rc));
      return rc;
    }
    if (!o->from_txid && after == oldest && oldest > 1) {
      sl_diag_error("%s: the log begins at txid %" PRIu64 " (older ones were pruned) and its first transaction is "
                   "after %s, so pruned ones may be after it too: dump with --from-txid, or take a full dump",
                   logdir, oldest, sl_time_format(o->since_us, t, sizeof t));
      return SL_ENOTFOUND;
    }
    /* Past the durable mark all is "not yet": nothing after TIME is durable. */
    from = SL_MAX(from, SL_MIN(after, durable + 1));
  }
  *first = from;
  *last = durable;
  return 0;
}

int sl_dump_incremental(sl_store *st, int fd, const sl_dump_options *opt, sl_dump_info *out) {
  char logdir[4096];
  sl_log_reader *r = NULL;
  uint64_t first, last;
  sl_frame f;
  writer w;
  int rc = writer_init(&w, fd, opt);
  if (rc) goto fail;
  if (st->no_log) {
    sl_diag_error("%s: has no log of its own (a standby): an incremental dump reads the store's log", st->dir);
    rc = SL_EINVAL;
    goto fail;
  }
  if (snprintf(logdir, sizeof logdir, "%s/log", st->dir) >= (int)sizeof logdir) {
    rc = -ENAMETOOLONG;
    goto fail;
  }
  if ((rc = incremental_range(logdir, opt, &first, &last))) goto fail;
  sl_dump_header h = {.kind = SL_DUMP_INCREMENTAL,
                      .first_txid = first,
                      .last_txid = first > last ? first - 1 : last,
                      .since_us = opt && opt->has_since ? opt->since_us : 0,
                      .created_us = sl_now_us()};
  memcpy(h.store_id, st->id, SL_STORE_ID_SIZE);
  if (first <= last && (rc = commit_time_of(logdir, last, &h.last_commit_us))) {
    sl_diag_error("%s: cannot read txid %" PRIu64 ": %s", logdir, last, sl_strerror(rc));
    goto fail;
  }
  /* The history the file continues, so that a load can compare the txids
   * its target holds already (dump.h LOADING). A log whose checksums are
   * relative to its own start would give a false one: left out. */
  h.has_prev_checksum =
      sl_log_lineage_known(logdir) && sl_log_checksum_at(logdir, first - 1, &h.prev_checksum) == 0;
  if (!h.has_prev_checksum) h.prev_checksum = 0;
  if ((rc = write_header(&w, &h))) goto fail;
  uint64_t total = first <= last ? last - first + 1 : 0, next = first, end_cs = h.prev_checksum;
  progress(opt, 0, total);
  if (first <= last) {
    sl_log_reader_options ro = {.max_txid = last, .tolerate_tail = false};
    if ((rc = sl_log_reader_open(logdir, first, &ro, &r))) {
      sl_diag_error("%s: cannot read from txid %" PRIu64 ": %s", logdir, first, sl_strerror(rc));
      goto fail;
    }
    while ((rc = sl_log_reader_next(r, &f)) == 0) {
      uint8_t *p;
      if (f.txid != next) {
        sl_diag_error("%s: segment %" PRIu64 " offset %" PRIu64 ": txid %" PRIu64 " where %" PRIu64 " was expected",
                     logdir, f.segno, f.offset, f.txid, next);
        rc = SL_EGAP;
        goto fail;
      }
      if ((rc = writer_reserve(&w, SL_FRAME_HEADER_SIZE + f.payload_len, &p))) goto fail;
      sl_frame_header_encode(f.payload, f.payload_len, p);
      memcpy(p + SL_FRAME_HEADER_SIZE, f.payload, f.payload_len);
      end_cs = f.checksum;
      next++;
      if (w.records % PROGRESS_EVERY == 0) progress(opt, w.records, total);
    }
    if (rc != SL_EEND) goto fail;
    if (next != last + 1) {
      sl_diag_error("%s: the log ends at txid %" PRIu64 ", before its durable mark %" PRIu64, logdir, next - 1, last);
      rc = SL_ECORRUPT;
      goto fail;
    }
  }
  if ((rc = writer_finish(&w))) goto fail;
  progress(opt, w.records, total);
  fill_info(out, &h, &w);
  if (out) out->end_checksum = h.has_prev_checksum ? end_cs : 0;
  rc = 0;
fail:
  if (r) sl_log_reader_close(r);
  writer_free(&w);
  return rc;
}
