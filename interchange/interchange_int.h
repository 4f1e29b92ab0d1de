/*
 * Internals shared by the files of interchange/ (not part of its contract):
 * an output buffer with JSON writers, a scratch arena, the conversion of
 * jansson values into sl_value (the mapping interchange.h describes), and
 * the plumbing of importers and exporters (id lists, id maps, the sink
 * that builds a new store).
 */
#ifndef SL_INTERCHANGE_INT_H
#define SL_INTERCHANGE_INT_H

#include <jansson.h>

#include "interchange.h"

/* ---- output buffer ------------------------------------------------------------ */
/* A growable byte buffer. An allocation failure is sticky in err (-ENOMEM):
 * later appends do nothing, and sl__jbuf_flush reports it. */
typedef struct sl__jbuf {
  char *p;
  size_t len, cap;
  int err;
} sl__jbuf;

void sl__jbuf_put(sl__jbuf *b, const void *s, size_t n);
static inline void sl__jbuf_puts(sl__jbuf *b, const char *s) { sl__jbuf_put(b, s, __builtin_strlen(s)); }
void sl__jbuf_putc(sl__jbuf *b, char c);
void sl__jbuf_u64(sl__jbuf *b, uint64_t v);
void sl__jbuf_i64(sl__jbuf *b, int64_t v);
/* A JSON string: quotes and minimal escaping. */
void sl__jbuf_str(sl__jbuf *b, const char *s, size_t n);
/* A value in the JSON mapping ($double and $bytes forms included). */
void sl__jbuf_value(sl__jbuf *b, const sl_value *v);
/* A query result value (spec/query.md's JSONL shapes; results.c). */
void sl__jbuf_qvalue(sl__jbuf *b, const sl_qvalue *v);
/* The text of a temporal or duration value (sl_temporal_format), of `kind`
 * (a list's items may leave their own kind to the list's elem_kind). */
void sl__jbuf_temporal(sl__jbuf *b, sl_kind kind, const sl_value *v);
/* A point as a Cypher map, as neo4j-admin's CSV cells and point({...})
 * read it: {x:1.0,y:2.0[,z:3.0],crs:'wgs-84'} (x is the longitude). */
void sl__jbuf_point_map(sl__jbuf *b, const sl_value *v, const char *sep);
/* Properties as a JSON object with keys in the given order. */
void sl__jbuf_props(sl__jbuf *b, const sl_prop *props, size_t n);
/* Write the buffer to out and empty it. Returns 0, b->err, or -errno
 * (logged as a write error on `name`). */
int sl__jbuf_flush(sl__jbuf *b, FILE *out, const char *name);
void sl__jbuf_free(sl__jbuf *b);

/* ---- scratch arena ------------------------------------------------------------ */
/* Bump allocation for one line's values; reset between lines. */
typedef struct sl__scratch sl__scratch;
sl__scratch *sl__scratch_new(void);
void *sl__scratch_alloc(sl__scratch *a, size_t n);      /* NULL when out of memory */
void sl__scratch_reset(sl__scratch *a);                 /* keeps one block */
void sl__scratch_free(sl__scratch *a);

/* ---- JSON input -> values ------------------------------------------------------- */
/* Convert j. Strings point into j (valid while j lives); lists and bytes
 * into the arena. allow_null: null becomes SL_NULL (set_*_prop), else it is
 * refused. Returns 0, SL_EINVAL with the reason in why, or -ENOMEM. */
int sl__json_value(json_t *j, sl__scratch *a, bool allow_null, sl_value *out, char *why, size_t whylen);
/* Convert a JSON object of properties into an arena array (keys in the
 * object's order). Reasons name the key. */
int sl__json_props(json_t *obj, sl__scratch *a, sl_prop **out, size_t *n, char *why, size_t whylen);
/* The point a map describes (APOC JSON maps, neo4j-admin CSV cells), as
 * apoc.import.json and neo4j-admin read it: coordinates by key (x, y, z,
 * longitude, latitude, height: has[i] false when absent) and the coordinate
 * system as crs (a name; NULL when absent) or srid (0 when absent); with
 * neither, the keys decide (cartesian or wgs-84, 3D with a third
 * coordinate). SL_EINVAL with the reason in why. */
enum { SL__PT_X, SL__PT_Y, SL__PT_Z, SL__PT_LON, SL__PT_LAT, SL__PT_HEIGHT, SL__PT_NCOORD };
extern const char *const sl__point_keys[SL__PT_NCOORD];
typedef struct sl__point_parts {
  bool has[SL__PT_NCOORD];
  double c[SL__PT_NCOORD];
  const char *crs;
  size_t crs_len;
  int64_t srid;
} sl__point_parts;
int sl__point_make(const sl__point_parts *pp, sl_value *out, char *why, size_t whylen);
/* A label, type or key: a string of 1..SL_NAME_MAX bytes without NUL. */
int sl__json_name(json_t *j, const char **out, char *why, size_t whylen);
/* Check a name given as a C string (object keys). */
int sl__json_key_check(const char *s, char *why, size_t whylen);

/* ---- id lists ------------------------------------------------------------------ */
/* The ids of a view walk, collected first because a walk may not call other
 * view functions. 8 bytes per id. */
typedef struct sl__idvec {
  uint64_t *v;
  size_t n, cap;
} sl__idvec;
/* An sl_id_fn: appends id to the sl__idvec arg; -ENOMEM stops the walk. */
int sl__idvec_push(void *vec, uint64_t id);

/* ---- id text -> id ---------------------------------------------------------------- */
/* Open-addressing hash map from byte-string keys (ids as a file spells them)
 * to the ids a new store assigned. Keys are copied into the map's own arena:
 * about key length + 32 bytes per entry. Start from a zeroed map. */
typedef struct sl__idslot {
  const char *key; /* NULL: empty */
  size_t len;
  uint64_t hash;
  uint64_t val;
} sl__idslot;

typedef struct sl__idmap {
  sl__idslot *slots;
  size_t cap, n; /* cap: a power of two */
  sl__scratch *keys;
} sl__idmap;

/* *slot: the key's slot; its key is NULL when the key is new (then call
 * sl__idmap_insert on it before any other lookup). Returns 0 or -ENOMEM. */
int sl__idmap_lookup(sl__idmap *m, const char *key, size_t len, sl__idslot **slot);
int sl__idmap_insert(sl__idmap *m, sl__idslot *slot, const char *key, size_t len, uint64_t val);
void sl__idmap_free(sl__idmap *m);

/* ---- building a new store ------------------------------------------------------------ */
/* What every importer shares: create the store, write in transactions of
 * ops_per_tx ops, and on failure remove what was made (the directory itself
 * stays, empty, if it existed before). */
typedef struct sl__sink {
  const char *dir;
  bool existed, created;
  bool borrowed; /* sl__sink_borrow_store's store: one transaction, aborted */
  sl_store *st;
  sl_tx *tx;
  uint64_t ops_in_tx, ops_per_tx;
} sl__sink;

/* Fuzz targets only (set once, before any import): importers then write
 * into st, an open empty store, in one transaction that sl__sink_close
 * aborts whatever happened, instead of creating a store in dir, which costs
 * a directory, an LMDB environment and several fsyncs per input. NULL
 * restores the normal behaviour. Not thread-safe. */
void sl__sink_borrow_store(sl_store *st);
/* Create and open a new store in dir (missing or empty). Logs failures. */
int sl__sink_open(sl__sink *s, const char *dir, const sl_store_options *opt, uint64_t ops_per_tx);
/* The open transaction, begun if none is. Logs nothing. */
int sl__sink_tx(sl__sink *s, sl_tx **tx);
/* Count one op; commits (durably) once ops_per_tx are pending. Logs nothing. */
int sl__sink_op_done(sl__sink *s);
/* rc == 0: commit what is pending (logged on failure) and close. Otherwise,
 * or when that commit fails: abort, close and remove the store. Returns the
 * final code. Safe on a sink that was never opened. */
int sl__sink_close(sl__sink *s, int rc);

#endif
