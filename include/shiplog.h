/*
 * shiplog.h: the public C API of the shiplog graph store (libshiplog).
 *
 * A store is a directory: nodes with labels and properties and typed
 * relationships with properties (Neo4j's model), kept in LMDB and made
 * durable by a transaction log of CRC-framed records. This header is what an
 * application embeds: open a store, write in transactions, read in views.
 * The rest of shiplog (replication, backups, the CLI) is built on the same
 * calls; its modules' own headers (store/store.h, store/log.h, ...) say how
 * it works inside and are not installed.
 *
 * BUILDING AGAINST IT
 *   cc app.c $(pkg-config --cflags --libs shiplog)            # libshiplog.so
 *   cc app.c $(pkg-config --cflags shiplog) \
 *      $(pkg-config --static --libs shiplog | sed 's/-lshiplog/-l:libshiplog.a/')
 *   (the README's "Embed shiplog"; examples/embed.c is a whole program).
 *   Only the functions declared here are exported by libshiplog.so.
 *
 * ERRORS
 *   Every int-returning function returns 0 on success or a negative code:
 *   -errno from the OS (-ENOENT, -ENOSPC, ...) or one of SL_E* below.
 *   sl_strerror() and sl_errname() name both kinds. Failures are also
 *   reported on stderr, one line with the context (file, offset, txid) where
 *   they happened ("shiplog: error: ...").
 *
 * MEMORY
 *   Handles (sl_store, sl_tx, sl_view) are opaque and freed by their
 *   close/commit/abort/end call. Results of reads point into the view's
 *   scratch memory (see "reading"); strings are not NUL-terminated unless
 *   said (sl_value.u.s: use len). Inputs are copied before a call returns.
 *
 * THREADS AND PROCESSES
 *   One process opens a store for writing (SL_ELOCKED otherwise); any number
 *   of processes open it read-only at the same time (SL_OPEN_RDONLY). In a
 *   process, write transactions are serialized (sl_tx_begin blocks), read
 *   views may be used concurrently, each by one thread at a time. A
 *   transaction is used by one thread at a time. sl_store_close needs every
 *   transaction and view ended.
 */
#ifndef SHIPLOG_H
#define SHIPLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Marks what libshiplog.so exports; the library is built with
 * -fvisibility=hidden, so everything else in it stays private. */
#if defined(__GNUC__) || defined(__clang__)
#define SHIPLOG_API __attribute__((visibility("default")))
#else
#define SHIPLOG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---------------------------------------------------------------- */
/* shiplog's own error codes: X(name, value, message). A reserved range from
 * -10000 down, so it never meets -errno. */
#define SL_ERRNO_MAP(X)                                                        \
  X(SL_ECORRUPT, -10001, "corrupt data (checksum or structure mismatch)")      \
  X(SL_EVERSION, -10002, "unsupported format or protocol version")             \
  X(SL_EGAP, -10003, "transaction ids are not contiguous")                     \
  X(SL_ENOTFOUND, -10004, "no such entity")                                    \
  X(SL_EEXIST, -10005, "entity already exists")                                \
  X(SL_EHASRELS, -10006, "node still has relationships (use detach)")          \
  X(SL_EINVAL, -10007, "invalid argument or input")                            \
  X(SL_ELOCKED, -10008, "store is open for writing by another process")        \
  X(SL_EREADONLY, -10009, "store is open read-only")                           \
  X(SL_EFAILED, -10010, "log is in the failed state after an I/O error")       \
  X(SL_ESTOREID, -10011, "store id does not match")                            \
  X(SL_ETIME, -10012, "commit time goes backwards or lies in the future")      \
  X(SL_EEND, -10013, "no more records")                                        \
  X(SL_ETOOBIG, -10014, "record or message exceeds the size limit")            \
  X(SL_ETRUNCATED, -10015, "input ends inside a record")                       \
  X(SL_ENOTLOG, -10016, "not a shiplog file (bad magic)")                      \
  X(SL_EAUTH, -10017, "authentication failed (a TLS peer or certificate, or sealed data: wrong key or changed bytes)") \
  X(SL_ECONSTRAINT, -10018, "a schema constraint refuses the data")          \
  X(SL_ETXKIND, -10019, "a transaction holds data ops or schema ops, not both")

enum sl_error {
#define SL__ERR_ENUM(name, value, msg) name = value,
  SL_ERRNO_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
};

/* Message for any code (0, -errno or SL_E*). Static storage; any thread. */
SHIPLOG_API const char *sl_strerror(int code);
/* "SL_ECORRUPT", "EIO", ...: the symbolic name, for logs and tests. */
SHIPLOG_API const char *sl_errname(int code);

/* "0.1.0": the library's version (CMake's project VERSION). Static. */
SHIPLOG_API const char *sl_version(void);

/* ---- handles and values ------------------------------------------------------ */
#define SL_NAME_MAX 255   /* labels, types and property keys: 1..255 bytes of
                             UTF-8 without NUL */
#define SL_STORE_ID_SIZE 16

typedef struct sl_store sl_store;
typedef struct sl_tx sl_tx;
typedef struct sl_view sl_view;

typedef enum sl_kind {
  SL_NULL = 0, /* only as "remove" in mutation input; never stored */
  SL_BOOL,
  SL_INT,
  SL_DOUBLE,
  SL_STRING,
  SL_BYTES,
  SL_LIST,
  /* Neo4j's temporal and spatial kinds (spec/types.md). The numbers are a
   * format (LMDB value bytes, the log's ValueList kinds): never renumber. */
  SL_DATE = 7,          /* u.t.seconds: days since 1970-01-01 (proleptic
                           Gregorian; years -999,999,999..999,999,999) */
  SL_LOCALTIME = 8,     /* u.t.seconds: second of the day, u.t.nanos */
  SL_TIME = 9,          /* LocalTime + u.t.offset (the time is local) */
  SL_LOCALDATETIME = 10,/* u.t.seconds: seconds since 1970-01-01T00:00 of the
                           same wall clock, u.t.nanos */
  SL_DATETIME = 11,     /* an instant: u.t.seconds since the epoch UTC,
                           u.t.nanos, u.t.offset (seconds east of UTC at
                           that instant), u.t.zone (IANA name or NULL) */
  SL_DURATION = 12,     /* u.dur */
  SL_POINT = 13         /* u.pt */
} sl_kind;

/* Offsets are whole seconds within +-18 hours, as Neo4j's. */
#define SL_OFFSET_MAX (18 * 3600)
/* An IANA zone name: 1..SL_ZONE_MAX bytes ("America/Argentina/ComodRivadavia"). */
#define SL_ZONE_MAX 63

/* The coordinate reference systems of Neo4j's points. */
#define SL_SRID_CARTESIAN 7203    /* "cartesian": x, y */
#define SL_SRID_CARTESIAN_3D 9157 /* "cartesian-3d": x, y, z */
#define SL_SRID_WGS84 4326        /* "wgs-84": x = longitude, y = latitude */
#define SL_SRID_WGS84_3D 4979     /* "wgs-84-3d": + z = height in metres */

typedef struct sl_value {
  sl_kind kind;
  sl_kind elem_kind;   /* SL_LIST: kind of every element; SL_NULL = empty list of unknown kind */
  size_t len;          /* SL_STRING/SL_BYTES: byte length; SL_LIST: element count */
  union {
    bool b;
    int64_t i;
    double d;
    const char *s;             /* UTF-8 without NUL bytes (the log's protobuf
                                  strings cannot hold them); not NUL-terminated
                                  in general: use len */
    const uint8_t *bytes;
    const struct sl_value *items; /* SL_LIST: len scalar values of elem_kind */
    struct {                   /* SL_DATE .. SL_DATETIME (see sl_kind) */
      int64_t seconds;
      int32_t nanos;           /* 0..999,999,999 */
      int32_t offset;          /* SL_TIME, SL_DATETIME; else 0 */
      const char *zone;        /* SL_DATETIME: NUL-terminated IANA name as
                                  written, or NULL for a fixed offset; else NULL */
    } t;
    struct {                   /* SL_DURATION, as Neo4j normalizes it: the
                                  three units never convert into each other;
                                  nanos (|nanos| < 1e9) has seconds' sign */
      int64_t months, days, seconds;
      int32_t nanos;
    } dur;
    struct {                   /* SL_POINT: srid one of SL_SRID_*; z is 0 in 2D */
      uint32_t srid;
      double x, y, z;
    } pt;
  } u;
} sl_value;

typedef struct sl_prop {
  const char *key; /* NUL-terminated */
  sl_value value;
} sl_prop;

/* Compare two values for equality of what is stored: same kind and same
 * bits (doubles bitwise, so NaN equals NaN; 1 is not 1.0; DateTimes equal
 * only with the same instant, offset and zone). Cypher's `=` is
 * sl_value_compare's. */
SHIPLOG_API bool sl_value_equal(const sl_value *a, const sl_value *b);

/* Neo4j's ordering of property values, in one place for ORDER BY, indexes,
 * DISTINCT and `=`/`<` (store/value_order.c gives the rules and sources):
 *   sl_value_order: a total order over every value (ORDER BY, sort-based
 *     DISTINCT, index keys): kinds rank in Neo4j's orderability order
 *     (sl_value_kind_rank), within a kind as Neo4j sorts it (numbers by
 *     value, ints and doubles mixed and exact, NaN after every number;
 *     DateTimes by instant, then offset, then zone; lists element by
 *     element, bytes as a list of signed bytes like Neo4j's byte[]).
 *     Returns -1, 0, 1; 0 exactly when the two are one value for DISTINCT
 *     (1 and 1.0 are).
 *   sl_value_compare: Cypher's comparison. Returns 1 and sets *cmp (-1, 0,
 *     1) when a and b are comparable (`<` etc. give a boolean), 0 when they
 *     are not and leaves *cmp alone (`<` gives null: different kinds, a NaN,
 *     a null, durations, points). *eq (may be NULL) receives Cypher's `=`:
 *     1 true, 0 false, -1 null (a null operand). 1 = 1.0 is true; values of
 *     different kinds are never equal; NaN = NaN is false; durations and
 *     points are equal or not though never comparable with `<`.
 *   sl_value_kind_rank: the kind's place in Neo4j's orderability list:
 *     4 LIST (and bytes), 6 POINT, 7 DATETIME, 8 LOCALDATETIME, 9 DATE,
 *     10 TIME, 11 LOCALTIME, 12 DURATION, 13 STRING, 14 BOOLEAN, 15 NUMBER
 *     (ints and doubles), 16 null; the query engine's MAP, NODE and
 *     RELATIONSHIP take 1, 2, 3 and PATH 5. SL_EINVAL for another kind. */
SHIPLOG_API int sl_value_order(const sl_value *a, const sl_value *b);
SHIPLOG_API int sl_value_compare(const sl_value *a, const sl_value *b, int *cmp, int *eq);
SHIPLOG_API int sl_value_kind_rank(sl_kind kind);

/* ---- temporal and spatial text (ISO-8601 as Cypher's toString prints it) ---- */
/* The longest text sl_value_format writes for a temporal or duration value,
 * NUL included. */
#define SL_TEMPORAL_TEXT_MAX 128

/* Parse the text of a value of `kind` (SL_DATE .. SL_DURATION) as Neo4j's
 * constructors (date("..."), duration("...")) and neo4j-admin's CSV cells
 * read it. Where the text has no offset or zone and the kind needs one
 * (SL_TIME, SL_DATETIME), default_zone applies (NULL: "Z"; a "+01:00"
 * offset or an IANA name). A zone name is copied to zone_buf (size at least
 * SL_ZONE_MAX + 1) and out->u.t.zone points there. Offsets of zones come from
 * the system's zone database (tzdata). Errors: SL_EINVAL with a reason in
 * errbuf ("2023-02-29 is not a date: February 2023 has 28 days", "unknown
 * time zone 'Mars/Olympus'"), never a partial value. */
SHIPLOG_API int sl_temporal_parse(sl_kind kind, const char *text, size_t len, const char *default_zone,
                                  sl_value *out, char *zone_buf, char *errbuf, size_t errlen);
/* The canonical text of a temporal or duration value (spec/types.md):
 * "2024-02-29", "12:30", "12:30:00.000000001", "12:30:15.500+01:00",
 * "2024-02-29T12:30+01:00[Europe/Paris]", "P1Y2M3DT4H5M6.000000007S"
 * (java.time's toString, as Neo4j 5's toString prints them).
 * Returns the length written (buf always NUL-terminated), or SL_EINVAL for
 * another kind. */
SHIPLOG_API int sl_temporal_format(const sl_value *v, char *buf, size_t size);
/* A point's CRS name ("cartesian", "cartesian-3d", "wgs-84", "wgs-84-3d")
 * from its SRID and back (case-insensitive); NULL / 0 when unknown. */
SHIPLOG_API const char *sl_srid_name(uint32_t srid);
SHIPLOG_API uint32_t sl_srid_from_name(const char *name, size_t len);

/* ---- opening ------------------------------------------------------------- */
typedef struct sl_store_options {
  uint64_t segment_size;   /* log segment size; 0: the default (64 MiB) */
  uint64_t map_size;       /* LMDB map size; 0: 64 GiB (sparse) */
  const uint8_t *store_id; /* NULL: a new random id; else SL_STORE_ID_SIZE bytes
                              (a restore keeps its primary's id) */
  uint64_t first_txid;     /* 0 or 1: empty store; N+1 for a store whose LMDB
                              state already holds txids 1..N (restore, load) */
  bool no_log;             /* a standby: no log of its own; the receiver's
                              archive is its log and replays into it
                              (applications leave it false) */
} sl_store_options;

#define SL_OPEN_RDONLY 1u  /* flags of sl_store_open; store/store.h has the
                              others, which only shiplog's own modules use */

/* Create an empty store in DIR (created if missing; must be empty:
 * SL_EEXIST otherwise). opt may be NULL (all defaults). A failed create
 * removes what it made. */
SHIPLOG_API int sl_store_create(const char *dir, const sl_store_options *opt);
/* Open. For writing this takes writer.lock and recovers (log tail, replay).
 * Errors: SL_ELOCKED (another writer, or this process has the store open
 * already, in either mode: LMDB allows one environment per store and
 * process; share the handle), SL_EINVAL (SL_OPEN_NOLOG on a store
 * with a log or its absence on one without), SL_ECORRUPT (LMDB cannot be
 * restored nor rebuilt after a power loss, or is ahead of the log), SL_ESTOREID,
 * SL_EVERSION, -ENOENT (no store.id: not a store, or half created).
 * A no_log store (standby) is written without any sync (MDB_NOSYNC): after
 * a power loss, until its owner rebuilds it, every open of it (read-only
 * too) fails with SL_ECORRUPT; its owner removes it and builds it anew from
 * what it derives from (the receiver: snapshot + archive). */
SHIPLOG_API int sl_store_open(const char *dir, unsigned flags, sl_store **out);
/* Checkpoints (when open for writing) and closes. No tx or view may be open. */
SHIPLOG_API void sl_store_close(sl_store *st);

/* SL_STORE_ID_SIZE bytes, valid while the store is open. */
SHIPLOG_API const uint8_t *sl_store_id(const sl_store *st);
SHIPLOG_API const char *sl_store_dir(const sl_store *st);

/* How data.mdb's pages are used: pages_used up to the last page in use
 * (the file's size after a clean close is pages_used * page_size), of
 * which pages_free are free for LMDB to reuse (now, or after the next
 * checkpoint). live = used - free is what a load of the store's dump
 * takes, about. */
typedef struct sl_space {
  uint64_t page_size, pages_used, pages_free;
} sl_space;
SHIPLOG_API int sl_store_space(sl_store *st, sl_space *out);

/* Give back the space data.mdb holds beyond its live pages (offline: the
 * store must be open nowhere else; SL_ELOCKED otherwise): a compacting
 * copy of LMDB replaces data.mdb, and the checkpoint is taken anew. Works
 * on stores with a log and on standbys. *before and *after are data.mdb's
 * sizes in bytes. */
SHIPLOG_API int sl_store_compact(const char *dir, uint64_t *before, uint64_t *after);

/* Sync LMDB, record the checkpoint, prune segments no one needs. Safe from
 * another thread while one applies or commits (the sync takes no lock). */
SHIPLOG_API int sl_store_checkpoint(sl_store *st);

/* ---- writing ------------------------------------------------------------- */
SHIPLOG_API int sl_tx_begin(sl_store *st, sl_tx **out);
/* Commit time for this transaction (µs); default: the store's clock, never
 * below the previous commit. SL_ETIME if it goes back or is > now + 60 s. */
SHIPLOG_API int sl_tx_set_commit_time(sl_tx *tx, uint64_t us);

/* Ids are unsigned 64-bit integers, 0 included (a Neo4j export's ids start
 * there); SL_ID_NEW, the one value that is no id, asks for the next free id
 * (one above every id used, 1 in a new store). A given id must be unused
 * (SL_EEXIST). *out_id (may be NULL) receives the id. */
#define SL_ID_NEW UINT64_MAX
SHIPLOG_API int sl_tx_create_node(sl_tx *tx, uint64_t id, const char *const *labels, size_t nlabels,
                                  const sl_prop *props, size_t nprops, uint64_t *out_id);
SHIPLOG_API int sl_tx_delete_node(sl_tx *tx, uint64_t id, bool detach); /* SL_EHASRELS */
SHIPLOG_API int sl_tx_add_label(sl_tx *tx, uint64_t id, const char *label);
SHIPLOG_API int sl_tx_remove_label(sl_tx *tx, uint64_t id, const char *label);
SHIPLOG_API int sl_tx_set_node_prop(sl_tx *tx, uint64_t id, const char *key, const sl_value *v);
SHIPLOG_API int sl_tx_remove_node_prop(sl_tx *tx, uint64_t id, const char *key);
SHIPLOG_API int sl_tx_create_rel(sl_tx *tx, uint64_t id, const char *type, uint64_t start, uint64_t end,
                                 const sl_prop *props, size_t nprops, uint64_t *out_id);
SHIPLOG_API int sl_tx_delete_rel(sl_tx *tx, uint64_t id);
SHIPLOG_API int sl_tx_set_rel_prop(sl_tx *tx, uint64_t id, const char *key, const sl_value *v);
SHIPLOG_API int sl_tx_remove_rel_prop(sl_tx *tx, uint64_t id, const char *key);
/* What the first failing write found ("node 17 does not exist"), or NULL
 * while none failed. Valid until the transaction ends. */
SHIPLOG_API const char *sl_tx_error(const sl_tx *tx);
/* Any write error leaves the transaction usable only for sl_tx_abort:
 * commit then returns the first error (nothing of it is applied). Setting a
 * property to SL_NULL removes it. Adding a label the node has, or removing a
 * label or property it lacks, is a no-op and is not logged. */

/* Durable commit. *txid (may be NULL) receives its txid. An empty
 * transaction commits nothing and sets *txid to 0. The tx is freed.
 * SIZE: a transaction holds its ops packed as they will be logged (not as
 * messages), and one that would pack to more than SL_TXN_MAX (store/log.h,
 * SIZE LIMITS: 64 MiB less 4 KiB) is refused with SL_ETOOBIG by the op that
 * passes the limit ("transaction too large: N bytes by op K, the limit is
 * M" in sl_tx_error); nothing of it is logged. */
SHIPLOG_API int sl_tx_commit(sl_tx *tx, uint64_t *txid);
SHIPLOG_API void sl_tx_abort(sl_tx *tx);
/* Reads through the transaction (sees its own writes). Owned by the tx. */
SHIPLOG_API sl_view *sl_tx_view(sl_tx *tx);

/* ---- schema: indexes and constraints ---------------------------------------- */
/* Schema lives in the store and in the log like data: each create or drop
 * is recorded, ships, dumps, loads and replays. A transaction holding a
 * schema op holds schema ops only (SL_EINVAL when mixed with data ops).
 * Names are unique across indexes and constraints (1..SL_NAME_MAX bytes of
 * UTF-8); a NULL name asks for Neo4j's kind of generated name
 * ("index_1a2b3c4d", "constraint_1a2b3c4d", a hash of the rule).
 *
 * An index (and the index behind a UNIQUE or NODE_KEY constraint) holds
 * every node with the label (relationship with the type) that has all its
 * keys, ordered by the keys' values as Neo4j orders them, numbers by value
 * (1 and 1.0 are one key: a seek for 1.0 finds the integer 1), then by id.
 * It is kept in the same LMDB transaction as every write, and built over
 * the existing data when created.
 *
 * Constraints are checked when the transaction commits, for every entity it
 * created or changed: UNIQUE (no two entities with the token share the
 * keys' values, among those having all keys), NODE_KEY (unique, and every
 * key present), NOT_NULL (every key present). A violation refuses the
 * whole commit with SL_ECONSTRAINT and sl_tx_error names the constraint,
 * token, keys, values and entity ids. Creating a constraint that the data
 * already violates is refused the same way. Errors of the create and drop
 * calls: SL_EEXIST (name taken, or an equivalent rule exists: an index and
 * a UNIQUE / NODE_KEY constraint on the same token and keys count as
 * equivalent, as in Neo4j), SL_ENOTFOUND (drop: no index / constraint of
 * that name), SL_EINVAL (names, no keys, more than SL_SCHEMA_KEYS_MAX keys,
 * a key twice, mixed with data ops), SL_ETOOBIG (creating an index over a
 * value too large to index: see sl_view_index_seek). */
typedef enum sl_schema_kind {
  SL_SCHEMA_INDEX = 0,
  SL_SCHEMA_UNIQUE = 1,
  SL_SCHEMA_NODE_KEY = 2, /* on relationships: Neo4j's relationship key */
  SL_SCHEMA_NOT_NULL = 3
} sl_schema_kind;
#define SL_SCHEMA_KEYS_MAX 16

typedef struct sl_schema_rule {
  const char *name;        /* NULL on create: generated */
  sl_schema_kind kind;
  bool rel;                /* false: nodes with label `token`; true:
                              relationships of type `token` */
  const char *token;
  size_t nkeys;
  const char *const *keys; /* property keys, in order */
  uint32_t id;             /* reads: the rule's number (SHOW's id), never
                              reused; ignored on create */
} sl_schema_rule;

/* Create an index (rule->kind SL_SCHEMA_INDEX) or a constraint (the other
 * kinds). name_out (may be NULL) receives the name, NUL-terminated
 * (SL_NAME_MAX + 1 bytes). */
SHIPLOG_API int sl_tx_create_index(sl_tx *tx, const sl_schema_rule *rule, char *name_out);
SHIPLOG_API int sl_tx_create_constraint(sl_tx *tx, const sl_schema_rule *rule, char *name_out);
SHIPLOG_API int sl_tx_drop_index(sl_tx *tx, const char *name);
SHIPLOG_API int sl_tx_drop_constraint(sl_tx *tx, const char *name);

/* ---- reading ------------------------------------------------------------- */
/* A consistent snapshot (LMDB read transaction). */
SHIPLOG_API int sl_view_begin(sl_store *st, sl_view **out);
SHIPLOG_API void sl_view_end(sl_view *v);

typedef struct sl_node {
  uint64_t id;
  size_t nlabels;
  const char **labels; /* sorted bytewise */
  size_t nprops;
  sl_prop *props;      /* sorted by key bytewise */
} sl_node;

typedef struct sl_rel {
  uint64_t id;
  const char *type;
  uint64_t start, end;
  size_t nprops;
  sl_prop *props;      /* sorted by key bytewise */
} sl_rel;

/* Results point into the view's scratch memory: valid until the next
 * sl_view_* call on the same view, or sl_view_end. SL_ENOTFOUND if absent. */
SHIPLOG_API int sl_view_node(sl_view *v, uint64_t id, sl_node *out);
SHIPLOG_API int sl_view_rel(sl_view *v, uint64_t id, sl_rel *out);
SHIPLOG_API int sl_view_node_prop(sl_view *v, uint64_t id, const char *key, sl_value *out);
SHIPLOG_API int sl_view_rel_prop(sl_view *v, uint64_t id, const char *key, sl_value *out);

typedef enum sl_dir { SL_DIR_OUT = 1, SL_DIR_IN = 2, SL_DIR_BOTH = 3 } sl_dir;
/* Callbacks return 0 to go on, anything else stops the walk and is returned.
 * Pointers passed to a callback are valid during the call only. The walk
 * must not call other sl_view_* functions on the same view. */
typedef int (*sl_rel_fn)(void *arg, uint64_t rel_id, const char *type, uint64_t start, uint64_t end);
/* Relationships of a node by direction and type (NULL: any), ascending by
 * (direction, type, id), types ordered by length, then bytewise (the
 * adjacency key); a self-loop is reported once for SL_DIR_BOTH (going out).
 * SL_ENOTFOUND if the node does not exist. */
SHIPLOG_API int sl_view_node_rels(sl_view *v, uint64_t node, sl_dir dir, const char *type, sl_rel_fn fn,
                                  void *arg);
typedef int (*sl_id_fn)(void *arg, uint64_t id);
SHIPLOG_API int sl_view_nodes_by_label(sl_view *v, const char *label, sl_id_fn fn, void *arg);
/* Every node / relationship id, ascending. */
SHIPLOG_API int sl_view_all_nodes(sl_view *v, sl_id_fn fn, void *arg);
SHIPLOG_API int sl_view_all_rels(sl_view *v, sl_id_fn fn, void *arg);

typedef struct sl_counts {
  uint64_t nodes, rels;
  uint64_t applied_txid;    /* last txid applied in this view */
  uint64_t last_commit_us;  /* its commit time */
  uint64_t next_node_id, next_rel_id;
} sl_counts;
SHIPLOG_API int sl_view_counts(sl_view *v, sl_counts *out);
/* Nodes carrying a label. */
SHIPLOG_API int sl_view_count_label(sl_view *v, const char *label, uint64_t *out);

/* Every index and constraint, sorted by name: *rules (in the view's scratch
 * memory, like every read result) holds *n rules. */
SHIPLOG_API int sl_view_schema(sl_view *v, const sl_schema_rule **rules, size_t *n);
/* Seek the index `name` (an index, or a UNIQUE / NODE_KEY constraint's):
 * the ids of the entities whose keys equal values[0..nvalues) as
 * sl_value_order calls values one (1 = 1.0; strings bytewise; DateTimes
 * of one instant, offset and zone), ascending.
 * nvalues must be the index's key count; an SL_NULL value matches nothing.
 * SL_ENOTFOUND: no such index. The walk must not call other sl_view_*
 * functions on the same view; fn returns 0 to go on (sl_rel_fn's rule). */
SHIPLOG_API int sl_view_index_seek(sl_view *v, const char *name, const sl_value *values, size_t nvalues,
                                   sl_id_fn fn, void *arg);
/* A range on the index's first key: lo < key < hi (or <= with *_incl),
 * either bound NULL for none (not both), in the index's order (by value,
 * then id). Only values of the bounds' kind match, as Cypher's `<` compares
 * only comparable values (numbers with numbers, strings with strings, ...):
 * SL_EINVAL when the two bounds are not comparable. */
SHIPLOG_API int sl_view_index_range(sl_view *v, const char *name, const sl_value *lo, bool lo_incl,
                                    const sl_value *hi, bool hi_incl, sl_id_fn fn, void *arg);

/* ---- queries (Cypher, spec/query.md) ------------------------------------------ */
/* A query transaction runs Cypher statements one after another on one
 * snapshot (read) or one write transaction (write); each statement gives a
 * cursor over its rows. Writes become the store's ops (sl_tx_*), recorded as
 * one Transaction when the query transaction commits.
 *
 * VALUES. Results and parameters are sl_qvalue: the property kinds (kind is
 * an sl_kind from SL_BOOL to SL_POINT, never SL_LIST, and u.v holds the
 * value), SL_NULL (null), and the kinds only queries have: heterogeneous
 * lists, maps, nodes, relationships and paths. A stored list property
 * (SL_LIST sl_value) appears in results as an SL_QLIST of its items; inside
 * nodes and relationships properties stay sl_prop as the store keeps them.
 * A parameter given as an SL_LIST sl_value is taken as the same list.
 *
 * ELEMENT IDS are "4:<store id as UUID>:<id>" for nodes and "5:<store id as
 * UUID>:<id>" for relationships (Neo4j 5's shape): the same on the primary,
 * its standbys, restores and dumps.
 *
 * THREADS. A query transaction, its cursor and the values it returns are
 * used by one thread at a time. A write query transaction holds the store's
 * writer (sl_tx_begin) until it commits or rolls back. */
enum {
  SL_QLIST = 32, /* u.list: n values of any kinds */
  SL_QMAP,       /* u.map: n entries, keys distinct */
  SL_QNODE,      /* u.node */
  SL_QREL,       /* u.rel */
  SL_QPATH       /* u.path */
};

typedef struct sl_qvalue sl_qvalue;
typedef struct sl_qentry sl_qentry;

typedef struct sl_qnode {
  uint64_t id;
  const char *element_id;   /* NUL-terminated */
  size_t nlabels;
  const char *const *labels; /* sorted bytewise */
  size_t nprops;
  const sl_prop *props;     /* sorted by key bytewise */
} sl_qnode;

typedef struct sl_qrel {
  uint64_t id, start, end;
  const char *element_id, *start_element_id, *end_element_id;
  const char *type;
  size_t nprops;
  const sl_prop *props;
} sl_qrel;

/* nodes[0], rels[0], nodes[1], ..., rels[n-1], nodes[n]: nnodes = nrels + 1.
 * A relationship may point either way along the path. */
typedef struct sl_qpath {
  size_t nnodes, nrels;
  const sl_qnode *nodes;
  const sl_qrel *rels;
} sl_qpath;

struct sl_qvalue {
  int kind; /* SL_NULL, SL_BOOL .. SL_POINT except SL_LIST, or SL_QLIST .. SL_QPATH */
  union {
    sl_value v; /* the property kinds: v.kind == kind */
    struct {
      size_t n;
      const sl_qvalue *items;
    } list;
    struct {
      size_t n;
      const sl_qentry *entries;
    } map;
    sl_qnode node;
    sl_qrel rel;
    sl_qpath path;
  } u;
};

struct sl_qentry {
  const char *key; /* NUL-terminated */
  sl_qvalue value;
};

/* A statement's parameter ($name). */
typedef struct sl_qparam {
  const char *name;
  sl_qvalue value;
} sl_qparam;

/* Why a statement or a commit failed, as Neo4j reports it. */
typedef struct sl_query_error {
  char code[96];     /* Neo4j's status code: "Neo.ClientError.Statement.SyntaxError" */
  char message[512];
  unsigned line, column; /* 1-based position in the statement's text; 0: none */
} sl_query_error;

/* What a statement changed, by Neo4j's counter names. */
typedef struct sl_qstats {
  bool contains_updates; /* the statement has an updating clause */
  uint64_t nodes_created, nodes_deleted, relationships_created, relationships_deleted;
  uint64_t properties_set, labels_added, labels_removed;
  uint64_t indexes_added, indexes_removed, constraints_added, constraints_removed;
} sl_qstats;

/* A cache of parsed statements, kept by their exact text (parameters are
 * not part of it: a statement run again with other values is not parsed
 * again). Only the parse is kept: each run still plans against the schema
 * its transaction sees. Bounded by max_entries and max_bytes (0: 64 and
 * 1 MiB), the least recently used out first; statements that fail to parse
 * are not kept. Used by one thread at a time (a connection's, say), and
 * must outlive the transactions given it; a statement still running when
 * its entry leaves the cache (or the cache is freed) keeps it until its
 * cursor closes. */
typedef struct sl_qcache sl_qcache;
typedef struct sl_qcache_counters {
  uint64_t hits, misses, evictions;
  size_t entries, bytes;
} sl_qcache_counters;
SHIPLOG_API int sl_qcache_new(size_t max_entries, size_t max_bytes, sl_qcache **out);
SHIPLOG_API void sl_qcache_free(sl_qcache *c);
SHIPLOG_API void sl_qcache_stats(const sl_qcache *c, sl_qcache_counters *out);
/* Whether c holds the statement `text` parsed and it writes (CREATE, MERGE,
 * SET, REMOVE, DELETE or a schema command): a caller that would begin on a
 * snapshot and move to a write transaction at the first write (bolt/) may
 * begin the write transaction at once. False for a statement not in c (no
 * lookup is counted and nothing is parsed). */
SHIPLOG_API bool sl_qcache_writes(const sl_qcache *c, const char *text, size_t len);

typedef struct sl_query_options {
  uint64_t timeout_ms;   /* per statement; 0: none. Past it:
                            Neo.ClientError.Transaction.TransactionTimedOut */
  uint64_t memory_bytes; /* held by one statement (rows kept for sorting,
                            aggregation, DISTINCT, eager writes, collected lists);
                            0: 1 GiB. Past it:
                            Neo.TransientError.General.MemoryPoolOutOfMemoryError */
  uint32_t max_hops;     /* upper bound of variable-length patterns (`*`,
                            `*2..`): 0: SL_QUERY_MAX_HOPS; a larger explicit
                            bound is refused (ArgumentError) */
  const char *read_only_reason; /* added to the refusal of a writing
                            statement in a read transaction ("the store is
                            open for writing by pid 42"); may be NULL */
  sl_qcache *cache;      /* parsed statements to take from and add to; NULL:
                            every statement is parsed */
} sl_query_options;
#define SL_QUERY_MAX_HOPS 32

typedef struct sl_qtx sl_qtx;
typedef struct sl_qcursor sl_qcursor;

/* Begin a query transaction. write: on a new sl_tx of st (blocks while
 * another write transaction of this process is open; SL_EREADONLY on a
 * store opened read-only); else on a new view. opt may be NULL. */
SHIPLOG_API int sl_qtx_begin(sl_store *st, bool write, const sl_query_options *opt, sl_qtx **out);
/* Run one statement (text[0..len), one statement, a final ';' allowed) with
 * its parameters (copied). *out: its cursor, which the caller closes before
 * the next run. Parse and semantic errors are found here, others while rows
 * are pulled. On an error the statement changed nothing visible, err says
 * why (code, message, line, column) and the transaction can only be rolled
 * back (Neo4j's rule too); returns SL_EINVAL (statement errors),
 * SL_ETIME (timeout), -ENOMEM (memory limit) or a store error. */
SHIPLOG_API int sl_qtx_run(sl_qtx *q, const char *text, size_t len, const sl_qparam *params, size_t nparams,
                           sl_qcursor **out, sl_query_error *err);
/* Column names in RETURN order (valid until close). */
SHIPLOG_API size_t sl_qcursor_columns(const sl_qcursor *c, const char *const **names);
/* The next row: 1 and *row = ncolumns values (valid until the next call or
 * close), 0 at the end, or a negative code with err filled as sl_qtx_run. */
SHIPLOG_API int sl_qcursor_next(sl_qcursor *c, const sl_qvalue **row, sl_query_error *err);
/* The statement's query type as Neo4j's summaries name it: "s" a schema
 * change (CREATE/DROP INDEX or CONSTRAINT, whether or not IF [NOT] EXISTS
 * finds anything to do), "w" it writes and returns no columns, "rw" it
 * writes and returns, "r" it only reads (SHOW INDEXES too). Known before
 * the first row, so a caller may refuse it by role before it runs. */
SHIPLOG_API const char *sl_qcursor_type(const sl_qcursor *c);
/* EXPLAIN or PROFILE before the statement: its plan as one line, the
 * operators from ProduceResults down to the leaf as Neo4j names them
 * (EXPLAIN then gives no row and changes nothing); NULL otherwise. Valid
 * until close. *profile (may be NULL): it was PROFILE, which runs. */
SHIPLOG_API const char *sl_qcursor_plan(const sl_qcursor *c, bool *profile);
/* Counters so far (final once next returned 0). */
SHIPLOG_API void sl_qcursor_stats(const sl_qcursor *c, sl_qstats *out);
/* Run the rows not pulled of a statement that writes (their values
 * dropped: Neo4j's consume), so that its writes and sl_qcursor_stats are
 * whole; a statement that only reads stops where it is. 0, or a failure
 * as sl_qcursor_next (the cursor is then still to be closed). */
SHIPLOG_API int sl_qcursor_finish(sl_qcursor *c, sl_query_error *err);
/* Close, finishing first (sl_qcursor_finish): a failure is returned with
 * err filled (err may be NULL when the caller does not care). */
SHIPLOG_API int sl_qcursor_close(sl_qcursor *c, sl_query_error *err);
/* Commit: *txid (may be NULL) receives the txid, 0 when nothing was written
 * or for a read transaction. The transaction is freed in every case. */
SHIPLOG_API int sl_qtx_commit(sl_qtx *q, uint64_t *txid, sl_query_error *err);
SHIPLOG_API void sl_qtx_rollback(sl_qtx *q);
/* "4:UUID:ID" / "5:UUID:ID" of a store (buf: at least SL_ELEMENT_ID_MAX bytes). */
#define SL_ELEMENT_ID_MAX 64
SHIPLOG_API void sl_element_id(const sl_store *st, bool rel, uint64_t id, char *buf);

#ifdef __cplusplus
}
#endif

#endif
