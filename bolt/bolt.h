/*
 * bolt: Neo4j's Bolt protocol, the way Neo4j's drivers reach shiplog
 * (spec/bolt.md). This module is the wire: PackStream values, chunked
 * messages, the handshake, the server's state machine, users and
 * passwords, and a TCP server. It knows no storage format and no query
 * language: what a RUN means is a backend's business (struct
 * sl_bolt_backend), which the query engine (query/) supplies; until it
 * lands, sl_bolt_echo_backend answers with the parameters it is given.
 *
 * LAYERS (each usable alone, bottom up)
 *   packstream.c  values <-> bytes (sl_pack), bounded by sl_pack_limits,
 *                 decoded into a caller's sl_arena; Bolt's structures
 *                 (temporal, spatial, graph) <-> sl_value (include/shiplog.h)
 *   chunk.c       the handshake and the chunked message framing
 *   session.c     one connection's state machine: a pure function from a
 *                 request message to response bytes, calling the backend
 *   auth.c        the users file, scrypt hashes, login throttling per peer
 *   server.c      listener, one thread per connection (capped), deadlines, TLS
 *   echo.c        the test backend
 *
 * THREADS: an sl_arena, an sl_bolt_session and what they hand out belong to
 * one thread at a time. sl_bolt_users and sl_bolt_server are safe from any
 * thread (the server calls the backend from one thread per connection).
 *
 * ERRORS: 0 or a negative code (include/shiplog.h): SL_ETOOBIG (a limit),
 * SL_ETRUNCATED (input ends inside a value), SL_ECORRUPT (bytes that are no
 * PackStream or no Bolt message), SL_EINVAL (a value of the wrong shape),
 * SL_EVERSION (no common protocol version), -ENOMEM.
 */
#ifndef SL_BOLT_H
#define SL_BOLT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lineage.h"
#include "sl_base.h"

/* ---- PackStream values ---------------------------------------------------------------- */
typedef enum sl_pack_kind {
  SL_PACK_NULL, SL_PACK_BOOL, SL_PACK_INT, SL_PACK_FLOAT, SL_PACK_STRING, SL_PACK_BYTES,
  SL_PACK_LIST, SL_PACK_MAP, SL_PACK_STRUCT
} sl_pack_kind;

/* One value. STRING/BYTES: len bytes at u.s / u.bytes (strings are valid
 * UTF-8 and NUL-terminated after len when decoded). LIST: len items.
 * STRUCT: tag and len fields in u.items. MAP: len entries in u.items as
 * 2*len values, key (a STRING) then value. Decoded values point into the
 * arena they were decoded into; encoding only reads them. */
typedef struct sl_pack {
  sl_pack_kind kind;
  uint8_t tag;
  uint32_t len;
  union {
    bool b;
    int64_t i;
    double f;
    const char *s;
    const uint8_t *bytes;
    struct sl_pack *items;
  } u;
} sl_pack;

/* What a decoder accepts (a declared size over a limit is refused before
 * anything is allocated). */
typedef struct sl_pack_limits {
  uint32_t max_depth;  /* nesting of lists, maps and structs */
  uint32_t max_items;  /* entries of one list, map or struct */
  uint32_t max_string; /* bytes of one string or byte array */
  size_t max_total;    /* arena bytes for one decoded message */
} sl_pack_limits;
/* Defaults a server uses: depth 64, 1M items, 16 MiB strings, 64 MiB. */
extern const sl_pack_limits sl_pack_default_limits;

/* Decode one value from buf[0..len): 0, *out and *used (bytes consumed).
 * Errors: SL_ETRUNCATED, SL_ECORRUPT (a reserved marker, bad UTF-8, a map
 * key that is no string), SL_ETOOBIG (a limit; also the arena's). On error
 * *out is undefined and the arena keeps what was allocated. */
int sl_pack_decode(const uint8_t *buf, size_t len, const sl_pack_limits *lim, sl_arena *a, sl_pack *out,
                   size_t *used);
/* Append the encoding of v (smallest marker for each size) to out. */
int sl_pack_encode(sl_buf *out, const sl_pack *v);
/* Headers and scalars, for callers that stream (a RECORD's fields). */
int sl_pack_put_header(sl_buf *out, sl_pack_kind kind, uint32_t len, uint8_t tag);
int sl_pack_put_string(sl_buf *out, const char *s, size_t len);
int sl_pack_put_int(sl_buf *out, int64_t i);

/* Builders (values in the arena a; NULL when it is full). */
sl_pack sl_pack_null(void);
sl_pack sl_pack_bool(bool b);
sl_pack sl_pack_int(int64_t i);
sl_pack sl_pack_float(double f);
sl_pack sl_pack_str(const char *s); /* s must outlive the value */
sl_pack *sl_pack_new_list(sl_arena *a, sl_pack *v, uint32_t n);              /* n null items */
sl_pack *sl_pack_new_map(sl_arena *a, sl_pack *v, uint32_t n);               /* n entries */
sl_pack *sl_pack_new_struct(sl_arena *a, sl_pack *v, uint8_t tag, uint32_t n);
/* Map entry i := key (copied into a), value. */
int sl_pack_map_set(sl_arena *a, sl_pack *map, uint32_t i, const char *key, sl_pack value);
/* A map's value for key, or NULL. */
const sl_pack *sl_pack_map_get(const sl_pack *map, const char *key);

/* ---- Bolt structures ------------------------------------------------------------------- */
/* Tags of Bolt's structures (Bolt 4.4 / 5.x "structure semantics"). */
enum {
  SL_BOLT_NODE = 'N', SL_BOLT_REL = 'R', SL_BOLT_UNBOUND_REL = 'r', SL_BOLT_PATH = 'P',
  SL_BOLT_DATE = 'D', SL_BOLT_TIME = 'T', SL_BOLT_LOCALTIME = 't',
  SL_BOLT_DATETIME = 'I',           /* UTC seconds + offset (5.x; 4.4 with the "utc" patch) */
  SL_BOLT_DATETIME_ZONEID = 'i',    /* UTC seconds + zone name (5.x; 4.4 + "utc") */
  SL_BOLT_DATETIME_LEGACY = 'F',    /* local seconds + offset (4.4 without "utc") */
  SL_BOLT_DATETIME_ZONEID_LEGACY = 'f',
  SL_BOLT_LOCALDATETIME = 'd', SL_BOLT_DURATION = 'E', SL_BOLT_POINT2D = 'X', SL_BOLT_POINT3D = 'Y'
};

/* How values look on one connection: element ids (5.x) and the UTC
 * DateTimes (5.x, or 4.4 when the client asked for the "utc" patch). */
typedef struct sl_bolt_dialect {
  bool element_ids;
  bool utc;
} sl_bolt_dialect;

/* A zone's offset (seconds east of UTC) at an instant, and back: the
 * instant of a wall-clock time in a zone. 0 or SL_EINVAL (unknown zone).
 * The default (NULL in sl_bolt_to_value) is sl_bolt_zone_offset_tzdb:
 * base's zone database (sl_tz_*), which never touches the process's TZ. */
typedef int (*sl_bolt_zone_fn)(const char *zone, int64_t seconds, bool seconds_are_local, int32_t *offset);
int sl_bolt_zone_offset_tzdb(const char *zone, int64_t seconds, bool seconds_are_local, int32_t *offset);

/* An sl_value (every kind of shiplog.h) as the PackStream value a driver
 * reads: scalars as themselves, lists item by item, SL_DATE .. SL_POINT as
 * their structures in the dialect. Strings are not copied (v must outlive
 * *out). */
int sl_bolt_from_value(sl_arena *a, const sl_value *v, sl_bolt_dialect d, sl_pack *out);
/* A parameter back: p's scalars, temporal and spatial structures and
 * lists of one such kind (a list mixing kinds, a map, a graph structure or
 * an unknown tag is SL_EINVAL with the reason in why[0..whylen)). A zone
 * name is copied into a. */
int sl_bolt_to_value(sl_arena *a, const sl_pack *p, sl_bolt_dialect d, sl_bolt_zone_fn zone, sl_value *out,
                     char *why, size_t whylen);

/* Graph structures for results; element ids are sent in 5.x (NULL: the
 * decimal id). labels: n strings; props: a MAP (NULL: empty). */
int sl_bolt_node(sl_arena *a, sl_bolt_dialect d, int64_t id, const char *element_id, const char *const *labels,
                 uint32_t n, const sl_pack *props, sl_pack *out);
int sl_bolt_rel(sl_arena *a, sl_bolt_dialect d, int64_t id, const char *element_id, int64_t start,
                const char *start_element_id, int64_t end, const char *end_element_id, const char *type,
                const sl_pack *props, sl_pack *out);
/* A path: nodes[0..n_nodes) and rels[0..n_rels) as 'R' structures (they
 * become unbound 'r'), indices as Bolt wants them (1-based, negative when a
 * relationship is walked against its direction, then the node index). */
int sl_bolt_path(sl_arena *a, const sl_pack *nodes, uint32_t n_nodes, const sl_pack *rels, uint32_t n_rels,
                 const int64_t *indices, uint32_t n_indices, sl_pack *out);

/* ---- handshake and chunks (chunk.c) ----------------------------------------------------- */
#define SL_BOLT_MAGIC 0x6060B017u /* the drivers send 60 60 B0 17 */
#define SL_BOLT_HANDSHAKE_SIZE 20 /* magic + four proposals */
/* Versions as major << 8 | minor: 0x0404 = 4.4, 0x0504 = 5.4. */
#define SL_BOLT_V(major, minor) ((uint16_t)((major) << 8 | (minor)))
/* The versions a server speaks, best first. */
extern const uint16_t sl_bolt_versions[];
extern const size_t sl_bolt_n_versions;
/* The client's 20 bytes -> the version chosen (the highest of ours,
 * at most max_version, that a proposal covers: major, minor, and a range of
 * minors below it), or 0 when none fits (the server then answers 4 zero
 * bytes and closes). SL_ECORRUPT when the magic is wrong (e.g. an HTTP
 * request: a browser pointed at the port). */
int sl_bolt_handshake(const uint8_t in[SL_BOLT_HANDSHAKE_SIZE], uint16_t max_version, uint16_t *chosen);
/* The 4-byte answer for a version (0: none). */
void sl_bolt_handshake_reply(uint16_t version, uint8_t out[4]);

/* Chunk one message body: [size 2 BE][bytes] per chunk of at most 65535
 * bytes, then the 0x0000 end marker, appended to out. */
int sl_bolt_chunk(sl_buf *out, const uint8_t *body, size_t len);
/* Reassembly of messages from a byte stream. Feed what arrives; take
 * whole messages out. NOOP chunks (a lone 0x0000 between messages, the
 * drivers' keep-alive) are skipped. A message whose chunks add up to more
 * than max_message is SL_ETOOBIG as soon as the chunk header that crosses
 * the limit arrives (nothing more is buffered). */
typedef struct sl_bolt_dechunker {
  sl_buf in;           /* bytes received, not yet consumed */
  size_t max_message;
} sl_bolt_dechunker;
/* Append received bytes (SL_ETOOBIG when the unconsumed input would pass
 * max_message plus the chunk headers' room). */
int sl_bolt_dechunk_feed(sl_bolt_dechunker *d, const uint8_t *buf, size_t len);
/* The next whole message's body, copied into msg (reset first): 1 when a
 * message was taken, 0 when more bytes are needed, SL_ETOOBIG. *partial
 * tells whether bytes of an unfinished message wait (for deadlines). */
int sl_bolt_dechunk_next(sl_bolt_dechunker *d, sl_buf *msg, bool *partial);
/* How many whole messages waiting in the input have the request tag `tag`
 * (the byte after the struct marker): RESET detection. */
size_t sl_bolt_dechunk_count_tag(const sl_bolt_dechunker *d, uint8_t tag);
void sl_bolt_dechunk_free(sl_bolt_dechunker *d);

/* ---- messages ----------------------------------------------------------------------------- */
enum {
  SL_BOLT_MSG_HELLO = 0x01, SL_BOLT_MSG_GOODBYE = 0x02, SL_BOLT_MSG_RESET = 0x0F, SL_BOLT_MSG_RUN = 0x10,
  SL_BOLT_MSG_BEGIN = 0x11, SL_BOLT_MSG_COMMIT = 0x12, SL_BOLT_MSG_ROLLBACK = 0x13,
  SL_BOLT_MSG_DISCARD = 0x2F, SL_BOLT_MSG_PULL = 0x3F, SL_BOLT_MSG_TELEMETRY = 0x54,
  SL_BOLT_MSG_ROUTE = 0x66, SL_BOLT_MSG_LOGON = 0x6A, SL_BOLT_MSG_LOGOFF = 0x6B,
  SL_BOLT_MSG_SUCCESS = 0x70, SL_BOLT_MSG_RECORD = 0x71, SL_BOLT_MSG_IGNORED = 0x7E,
  SL_BOLT_MSG_FAILURE = 0x7F
};
/* "HELLO", "RUN", ...; "UNKNOWN" for another tag. Static. */
const char *sl_bolt_msg_name(uint8_t tag);
/* Decode one message body: a STRUCT whose tag is a request we know, with
 * the field count and field kinds that version expects. SL_ECORRUPT (no
 * struct, trailing bytes, a bad field) with the reason in why. */
int sl_bolt_msg_decode(const uint8_t *body, size_t len, const sl_pack_limits *lim, sl_arena *a, sl_pack *msg,
                       char *why, size_t whylen);

/* ---- the backend: what a RUN means -------------------------------------------------------- */
/* A failure for the client: a Neo4j status code
 * ("Neo.ClientError.Statement.SyntaxError") and a message. */
typedef struct sl_bolt_error {
  char code[96];
  char message[512];
} sl_bolt_error;
void sl_bolt_error_set(sl_bolt_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What BEGIN and an autocommit RUN carry (fields of their extra map). */
typedef struct sl_bolt_tx_params {
  const char *db;            /* NULL: the default database */
  const sl_pack *bookmarks;  /* LIST of STRING or NULL */
  const sl_pack *metadata;   /* MAP or NULL */
  int64_t timeout_ms;        /* -1: none given */
  bool read_only;            /* mode "r" */
  const char *imp_user;      /* impersonation, or NULL */
} sl_bolt_tx_params;

/* Who is on the other side, once logged in. */
typedef enum sl_bolt_role { SL_BOLT_ROLE_NONE, SL_BOLT_ROLE_READER, SL_BOLT_ROLE_EDITOR, SL_BOLT_ROLE_ADMIN } sl_bolt_role;
typedef struct sl_bolt_peer {
  const char *address; /* "127.0.0.1:50432" */
  const char *user;    /* "" without authentication */
  sl_bolt_role role;   /* ADMIN without authentication */
  const char *user_agent;
  sl_bolt_dialect dialect;
  uint16_t version;
} sl_bolt_peer;

/* A RUN's answer. fields: names, valid until the result ends. */
typedef struct sl_bolt_run_result {
  const char *const *fields;
  uint32_t n_fields;
} sl_bolt_run_result;

/* Where a PULL's records go: one call per record, the values in `a` (the
 * session resets it after each record). Returns 0 or an error (the client
 * went away), which the backend returns. */
typedef struct sl_bolt_sink {
  int (*record)(struct sl_bolt_sink *s, const sl_pack *values, uint32_t n);
  sl_arena *a;
  sl_bolt_dialect dialect;
} sl_bolt_sink;

/* The end of a result (the last PULL or DISCARD). */
typedef struct sl_bolt_summary {
  const char *type;        /* "r", "w", "rw", "s"; NULL: "r" */
  const sl_pack *stats;    /* MAP of counters or NULL */
  const sl_pack *plan;     /* EXPLAIN: "plan", PROFILE: "profile" (a MAP tree of operators), or NULL */
  bool profiled;
  char bookmark[128];      /* autocommit: the commit's bookmark, or "" */
  const char *db;          /* NULL: the session's */
} sl_bolt_summary;

/* The callbacks. conn is what open() made for one connection. Each returns
 * 0, or 1 with *err filled (the request failed: the client sees FAILURE,
 * the connection goes to FAILED, the backend has ended any transaction),
 * or a negative code (the connection is closed). A query runs either in an
 * explicit transaction (after begin) or alone (autocommit, p given to run).
 * qid numbers the open results of a transaction from 0; -1 in pull/discard
 * means the last one. pull: at most n records (n -1: all), *has_more when
 * some remain; when the result ends the summary is filled. A RESET calls
 * rollback, also for an autocommit result (it ends unconsumed). */
typedef struct sl_bolt_backend {
  void *ctx;
  int (*open)(void *ctx, const sl_bolt_peer *peer, void **conn, sl_bolt_error *err);
  void (*close)(void *conn); /* also ends an open transaction (rollback) */
  int (*begin)(void *conn, const sl_bolt_tx_params *p, sl_bolt_error *err);
  int (*run)(void *conn, const char *query, const sl_pack *params, const sl_bolt_tx_params *autocommit,
             sl_arena *a, sl_bolt_run_result *res, int64_t *qid, sl_bolt_error *err);
  int (*pull)(void *conn, int64_t qid, int64_t n, sl_bolt_sink *sink, bool *has_more, sl_bolt_summary *sum,
              sl_bolt_error *err);
  int (*discard)(void *conn, int64_t qid, int64_t n, bool *has_more, sl_bolt_summary *sum, sl_bolt_error *err);
  int (*commit)(void *conn, char bookmark[128], sl_bolt_error *err);
  int (*rollback)(void *conn, sl_bolt_error *err);
  /* The routing table for db: SUCCESS's "rt" map (ttl, db, servers), built
   * in a. NULL callback: the session answers with its own address as every
   * role (a single server). */
  int (*route)(void *conn, const sl_pack *routing, const sl_pack *bookmarks, const char *db, sl_arena *a,
               sl_pack *rt, sl_bolt_error *err);
  /* Stop what runs for conn now (RESET arrived); may be called from another
   * thread. NULL: nothing to stop. */
  void (*interrupt)(void *conn);
  /* Called by the connection's thread while it waits for the client: the
   * ms until it wants to be called again, or -1 (not before the next
   * request). NULL: never. (The engine's transaction timeouts.) */
  int64_t (*tick)(void *conn);
} sl_bolt_backend;

/* The test backend (echo.c), for the server's tests until query/ lands:
 *   "RETURN ..." (any query not below): one record, the parameters' values
 *      (property values converted to sl_value and back: sl_bolt_to_value)
 *      in the parameters' order, the fields their names ("x" for none: 1).
 *   "ROWS N": N records of one field "i", 1..N (for PULL n, DISCARD).
 *   "GRAPH": fields node, rel, path: (a:Person {name:'Alice'})-[:KNOWS {since: 2020}]->(b).
 *   "ERROR CODE MESSAGE": fails with that Neo4j code.
 *   "SLEEP MS": waits (interruptible), then one record.
 * Commits answer bookmarks "echo:N". */
extern const sl_bolt_backend sl_bolt_echo_backend;

/* ---- the query engine as the backend (engine.c) ------------------------------------------ */
/*
 * Bolt requests on query/'s transactions (sl_qtx), for one store served
 * under one database name: `serve` gives it the primary (read-write), the
 * receiver its standbys (read-only).
 *   TRANSACTIONS. Every transaction starts on a read snapshot, which never
 *   waits for the writer; the first statement that writes moves it to a
 *   write transaction (the snapshot is dropped: nothing was written yet),
 *   unless it may not write: mode "r" (Neo.ClientError.Statement.AccessMode),
 *   a reader (Neo.ClientError.Security.Forbidden), a read-only database
 *   (Neo.ClientError.General.ForbiddenOnReadOnlyDatabase). Schema changes
 *   need an admin. Commits go through the store's group commit.
 *   RESULTS. Several results may be open in a transaction; the engine runs
 *   one statement at a time, so starting a new one first reads the rows of
 *   the open one into memory (bounded by the query memory limit).
 *   BOOKMARKS. "shiplog:<store id, 32 hex>:<epoch>:<txid>". A transaction
 *   that brings bookmarks waits until its store has applied their txid (a
 *   standby: until the archive is replayed that far), up to
 *   bookmark_timeout_ms (Neo.TransientError.Transaction.BookmarkTimeout).
 *   Epochs (failover) are judged against the database's history
 *   (sl_history_place): a bookmark of an older epoch names a write the
 *   database holds when its txid lies before the next epoch began, and is
 *   waited for like any other; one whose write was lost at failover (its
 *   txid past the end of its epoch), of an epoch the history does not
 *   know, or of another store is Neo.ClientError.Transaction.
 *   InvalidBookmark, saying which txid and epoch and where the next epoch
 *   began. A newer epoch than the database's is refused by a writable
 *   database (an old primary: the bookmark's writer was promoted after it)
 *   and waited for by a standby (lookup again until it knows the epoch:
 *   its primary may have been promoted and not shipped to it yet).
 *   ROUTING. WRITE: the database's writer, else `writer` (none when NULL);
 *   READ: `readers` and more_readers', or `self` when there are none;
 *   ROUTE: self and the readers.
 */
struct sl_store;
/* A database: its store (open for as long as the engine may use it), the
 * store's epoch and epoch history (store/lineage.h; the epoch may be newer
 * than the history's last entry), name, and its writer's Bolt address for
 * routing tables ("": the engine's `writer`). */
typedef struct sl_bolt_db {
  struct sl_store *store;
  uint64_t epoch;
  sl_history history;
  char name[65];
  char writer[256];
} sl_bolt_db;
typedef struct sl_bolt_engine_config {
  /* One database (store), or many found by name (lookup; db NULL: the
   * default one): 0 with *out filled, -ENOENT (no such database), -EAGAIN
   * (not available yet). Called from connection threads. */
  struct sl_store *store;
  int (*lookup)(void *arg, const char *db, sl_bolt_db *out);
  void *lookup_arg;
  const char *database;        /* store's name; NULL: "neo4j" */
  bool read_only;              /* standbys */
  uint64_t epoch;              /* store's epoch (store/lineage.h) */
  const sl_history *history;   /* store's epoch history (copied); NULL: none */
  uint64_t query_timeout_ms;   /* per statement; 0: none */
  uint64_t query_memory;       /* per statement; 0: query/'s default */
  int64_t tx_timeout_ms;       /* a transaction older than this is rolled back (at
                                  once if its client is silent: the store's writer is
                                  free again) and fails; 0: none (a client's tx_timeout
                                  wins) */
  int bookmark_timeout_ms;     /* 0: 5000 */
  const char *self;            /* this server's advertised HOST:PORT */
  const char *writer;          /* WRITE in routing tables; NULL: none known */
  const char *const *readers;  /* READ; none (here and from more_readers): self */
  size_t n_readers;
  /* NULL, or READ addresses found at each ROUTE (the primary's standbys):
   * at most max of them into out (strings in a); returns how many. */
  size_t (*more_readers)(void *arg, sl_arena *a, const char **out, size_t max);
  void *more_readers_arg;
  /* NULL, or called (from connection threads) as each statement ends:
   * seconds from RUN to its last row (-1 for a failure outside a
   * statement) and the Neo4j code of its failure (NULL: it succeeded). */
  void (*on_statement)(void *arg, double seconds, const char *code);
  void *on_statement_arg;
} sl_bolt_engine_config;

typedef struct sl_bolt_engine sl_bolt_engine;
/* The strings of cfg are copied. */
int sl_bolt_engine_new(const sl_bolt_engine_config *cfg, sl_bolt_engine **out);
/* The backend to put in sl_bolt_session_config (valid while e lives). */
const sl_bolt_backend *sl_bolt_engine_backend(sl_bolt_engine *e);
/* Counters: transactions committed, rolled back, statements, failures. */
typedef struct sl_bolt_engine_stats {
  uint64_t commits, rollbacks, statements, failures;
} sl_bolt_engine_stats;
void sl_bolt_engine_get_stats(sl_bolt_engine *e, sl_bolt_engine_stats *out);
/* Every connection must be closed first. */
void sl_bolt_engine_free(sl_bolt_engine *e);

/* ---- users (auth.c) --------------------------------------------------------------------- */
/*
 * USERS FILE (`shiplog passwd`; mode 0600, refused when group or others may
 * read it): UTF-8 lines; '#' starts a comment line; each user one line of
 * three fields separated by single spaces:
 *     USER ROLE $scrypt$LOG2N$R$P$SALT$HASH
 * USER: 1..64 bytes, no space, ':' or control character; ROLE: reader,
 * editor or admin; SALT: 16 random bytes, HASH: the 32-byte scrypt output
 * (EVP_PBE_scrypt, N = 2^LOG2N, r = R, p = P), both lower-case hex.
 * New hashes use 2^15, 8, 1 (32 MiB, ~0.1 s).
 */
typedef struct sl_bolt_users sl_bolt_users;
/* Read FILE. Errors, logged naming FILE:LINE: -errno, SL_EINVAL (a bad
 * line), -EPERM (group/world readable). */
int sl_bolt_users_load(const char *path, sl_bolt_users **out);
void sl_bolt_users_free(sl_bolt_users *u);
/* 0 and *role when the password is right; SL_EAUTH otherwise (unknown
 * users cost the same time). Thread-safe; at most two hashes run at once. */
int sl_bolt_users_check(sl_bolt_users *u, const char *user, const char *password, size_t pwlen, sl_bolt_role *role);
/* Add or change USER in FILE (created 0600; an existing file must be 0600
 * or stricter), written to FILE.tmp and renamed. role NONE keeps an existing
 * user's role (reader for a new one). *added tells which. Every failure is
 * logged (naming FILE or the user), so a caller need not. */
int sl_bolt_passwd(const char *path, const char *user, const char *password, size_t pwlen, sl_bolt_role role,
                   bool *added);
const char *sl_bolt_role_name(sl_bolt_role r);
sl_bolt_role sl_bolt_role_parse(const char *name);

/* Failed logins slow a peer down: after k failures in a row from one
 * address (port ignored), its next answer waits min(2^(k-1) * base_ms,
 * max_ms). Thread-safe; bounded table (oldest entries forgotten). */
typedef struct sl_bolt_throttle sl_bolt_throttle;
int sl_bolt_throttle_new(int base_ms, int max_ms, sl_bolt_throttle **out);
void sl_bolt_throttle_free(sl_bolt_throttle *t);
int sl_bolt_throttle_delay_ms(sl_bolt_throttle *t, const char *address); /* before answering */
void sl_bolt_throttle_result(sl_bolt_throttle *t, const char *address, bool ok);

/* ---- one connection's state machine (session.c) ------------------------------------------- */
typedef enum sl_bolt_state {
  SL_BOLT_CONNECTED, SL_BOLT_AUTHENTICATION, SL_BOLT_READY, SL_BOLT_STREAMING, SL_BOLT_TX_READY,
  SL_BOLT_TX_STREAMING, SL_BOLT_FAILED, SL_BOLT_INTERRUPTED, SL_BOLT_DEFUNCT
} sl_bolt_state;
const char *sl_bolt_state_name(sl_bolt_state s);

/* What HELLO's SUCCESS says the server is unless configured: drivers read
 * PRODUCT/MAJOR.MINOR[.PATCH] from it (some refuse what they cannot parse). */
#define SL_BOLT_SERVER_AGENT "Neo4j/5.26.0"
/* Whether agent is one drivers parse: printable ASCII, at most 100 bytes,
 * PRODUCT/MAJOR.MINOR followed by anything. */
bool sl_bolt_agent_parsable(const char *agent);

typedef struct sl_bolt_session_config {
  const sl_bolt_backend *backend;
  sl_bolt_users *users;        /* NULL: no authentication (scheme "none" or any) */
  sl_bolt_throttle *throttle;  /* NULL: failed logins are not slowed */
  const char *server_agent;    /* NULL: SL_BOLT_SERVER_AGENT */
  const char *advertise;       /* HOST:PORT for the default routing table (server: NULL = the listen
                                  address with its port) */
  int idle_timeout_s;          /* told to drivers as connection.recv_timeout_seconds; 0: not */
  sl_pack_limits limits;
} sl_bolt_session_config;

typedef struct sl_bolt_session sl_bolt_session;
/* A session for a connection that chose version `version`; peer_address
 * is copied. connection_id: "bolt-N". */
int sl_bolt_session_new(const sl_bolt_session_config *cfg, uint16_t version, const char *peer_address,
                        uint64_t connection_id, sl_bolt_session **out);
/* Close the backend's connection (rolls back an open transaction). */
void sl_bolt_session_free(sl_bolt_session *s);
/* Handle one message body: responses (chunked) are appended to out, which
 * the caller sends in order. Returns 0, or a negative code when the
 * connection must close (out may still hold a FAILURE to send first: the
 * state is then DEFUNCT). Every request gets exactly one summary
 * (SUCCESS, FAILURE or IGNORED), PULL's RECORDs before it. flush, when
 * given, is called with out when it grows past 64 KiB during a PULL (so
 * that a large result streams). */
int sl_bolt_session_handle(sl_bolt_session *s, const uint8_t *body, size_t len, sl_buf *out,
                           int (*flush)(void *arg, sl_buf *out), void *flush_arg);
/* A RESET waits in the input: until it is handled, requests are IGNORED
 * (state INTERRUPTED), and the backend's interrupt runs. */
void sl_bolt_session_interrupt(sl_bolt_session *s);
sl_bolt_state sl_bolt_session_state(const sl_bolt_session *s);
/* Logged in (READY or later reached at least once). */
bool sl_bolt_session_authenticated(const sl_bolt_session *s);
/* The backend's tick (sl_bolt_backend), or -1 without one or a login. */
int64_t sl_bolt_session_tick(sl_bolt_session *s);

/* ---- the server (server.c) ---------------------------------------------------------------- */
typedef struct sl_bolt_server_config {
  const char *listen;          /* HOST:PORT (port 0: any; sl_bolt_server_port says which) */
  sl_bolt_session_config session;
  uint16_t max_version;        /* 0: the highest we speak */
  int max_connections;         /* beyond it, a new connection is closed at once; default 256 */
  int idle_timeout_s;          /* no request for this long: closed; default 600 */
  int hello_timeout_ms;        /* handshake + HELLO (+ LOGON) within; default 10000 */
  int message_timeout_ms;      /* a started message must be whole within; default 30000 */
  size_t max_message;          /* largest message body; default 16 MiB */
  size_t max_buffered;         /* bytes all connections together may hold in messages being
                                  received; past it, the connection holding most of it (more
                                  than 1 MiB) fails; default 256 MiB */
  const char *tls_cert, *tls_key; /* PEM files: TLS (bolt+s://); NULL: plain TCP */
  const char *tls_ca;          /* also require client certificates from this CA; NULL: not */
} sl_bolt_server_config;

/* Counters (for metrics and tests). */
typedef struct sl_bolt_server_stats {
  uint64_t accepted, refused_full, closed_idle, closed_slow, closed_bad, closed_memory, auth_failed, requests;
  int open;
} sl_bolt_server_stats;

typedef struct sl_bolt_server sl_bolt_server;
/* Listen. Errors, logged: -errno (address in use...), SL_EINVAL (bad
 * address; a TLS file that is no certificate or key, or a key of another
 * certificate). */
int sl_bolt_server_start(const sl_bolt_server_config *cfg, sl_bolt_server **out);
int sl_bolt_server_port(const sl_bolt_server *s);
/* Accept and serve until *stop becomes true; then stop accepting, wake
 * every connection and wait for their threads. */
int sl_bolt_server_run(sl_bolt_server *s, atomic_int *stop);
void sl_bolt_server_get_stats(sl_bolt_server *s, sl_bolt_server_stats *out);
void sl_bolt_server_free(sl_bolt_server *s);

#endif
