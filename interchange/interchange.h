/*
 * interchange: the text formats through which graphs enter and leave a store.
 *
 *   - Mutation files (spec/mutations.md): JSON Lines, one transaction per
 *     line, applied by `shiplog exec`, load generators and tests.
 *   - The canonical export (spec/export.md): JSON Lines in the shape of APOC's
 *     apoc.export.json.all, byte-identical for equal graphs.
 *   - Import of that export (and of APOC's own output) into a new store.
 *   - Printing log records (`shiplog log`): as mutation lines or as text.
 *
 * VALUES IN JSON (one mapping, shared by every format here)
 *   true/false               SL_BOOL
 *   integer                  SL_INT (int64; a larger one is refused)
 *   number with . or e/E     SL_DOUBLE (1.0 and 1e3 are doubles)
 *   {"$double":"NaN"}        SL_DOUBLE NaN; also "Infinity", "-Infinity"
 *   string                   SL_STRING (without \u0000: the log's protobuf
 *                            strings cannot hold NUL, so the store refuses it)
 *   {"$bytes":"BASE64"}      SL_BYTES (standard alphabet, with padding)
 *   [v, ...]                 SL_LIST, every element of one scalar kind;
 *                            [] is an empty list of unknown kind
 *   null                     SL_NULL: only as the value of set_*_prop (remove)
 *   Other objects (maps, APOC points) are refused. The $double form is an
 *   extension of spec/mutations.md so that every stored value can be written
 *   as a mutation (and `shiplog log --json` output can be executed again).
 *
 * DOUBLES ARE WRITTEN as the shortest decimal that strtod() reads back to
 * the same bits, laid out as ECMAScript's Number.prototype.toString does
 * (fixed notation for 1e-7 <= |d| < 1e21, else d.ddde+N / d.ddde-N), with
 * ".0" appended when the result would read as an integer: 1.0, -0.0, 0.1,
 * 1e+300, 5e-324, 123456789.0.
 *
 * STRINGS ARE WRITTEN with minimal escaping: \" and \\, and every byte below
 * 0x20 and 0x7f as \u00XX (lowercase hex); all other bytes raw.
 *
 * THREADS: functions here are reentrant; each call uses only its arguments.
 */
#ifndef SL_INTERCHANGE_H
#define SL_INTERCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* Progress of long work: done out of total (total 0: unknown), called
 * every few thousand entities or so many KiB read. May be NULL. */
typedef void (*sl_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* ---- mutation files (spec/mutations.md) ------------------------------------ */
typedef struct sl_exec_options {
  bool stop_on_error;   /* end the run at the first failed line */
  FILE *ids_out;        /* "node 17" / "rel 4" for ids the store assigned; NULL: silent */
} sl_exec_options;

typedef struct sl_exec_result {
  uint64_t lines;       /* lines read (blank and comment lines included) */
  uint64_t committed;   /* transactions committed (an empty one counts) */
  uint64_t failed;      /* lines whose transaction was refused */
  uint64_t last_txid;   /* txid of the last commit that logged something, or 0 */
} sl_exec_result;

/* Read mutation lines from `in` and apply each as one transaction. `name`
 * names the input in messages ("FILE:LINE: reason" on stderr for every
 * refused line). A refused line applies nothing and the run goes on (unless
 * stop_on_error). Returns 0 when every line committed; SL_EINVAL (or the
 * line's own code) when at least one line was refused; a fatal code at once
 * when reading fails or the store can no longer commit (SL_EFAILED).
 * res (may be NULL) is filled in every case. */
int sl_mutations_exec(sl_store *st, FILE *in, const char *name, const sl_exec_options *opt,
                      sl_exec_result *res);

/* One parsed-and-applied line, for callers that drive their own
 * transactions (benches, tests). Start from a zeroed sl_mutation_line,
 * reuse it for every line, and free it with sl_mutation_line_free. */
typedef struct sl_assigned_id {
  bool rel;             /* false: a node id */
  uint64_t id;
} sl_assigned_id;

typedef struct sl_mutation_line {
  size_t nassigned;          /* ids the store assigned to this line, in op order */
  sl_assigned_id *assigned;  /* valid until the next call */
  size_t cap;
  size_t nops;               /* ops applied */
  char why[512];             /* on failure: the reason, without FILE:LINE */
  struct sl__scratch *arena; /* private scratch, reused across calls */
} sl_mutation_line;

/* Parse line[0..len) (without its newline) and apply its ops to tx, and its
 * "ts" with sl_tx_set_commit_time. A blank or // line does nothing. On
 * failure returns SL_EINVAL for malformed input or the store's code
 * (SL_ENOTFOUND, SL_EEXIST, SL_EHASRELS, SL_ETIME, ...), with ml->why set;
 * the tx is then good only for sl_tx_abort. Logs nothing itself. The
 * ids in ml->assigned are final only once the caller's commit succeeds. */
int sl_mutation_apply(sl_tx *tx, const char *line, size_t len, sl_mutation_line *ml);
void sl_mutation_line_free(sl_mutation_line *ml);

/* ---- log records ---------------------------------------------------------- */
/* Print one packed shiplog.Transaction (a log frame's payload) as one line.
 * json: {"txid":N,"ts":"ISO-8601","commit_time_us":N,"ops":[...]} whose ops
 *   are in the mutation-file format (ids always given), so the line can be
 *   executed again (`exec` ignores the txid and commit_time_us fields; "ts"
 *   keeps the commit time).
 * text: "TXID TIME op k=v ...; op ..." for people.
 * SL_ECORRUPT if the payload does not unpack; -errno on a write error. */
int sl_txn_print(const uint8_t *payload, size_t len, bool json, FILE *out);

/* ---- canonical export (spec/export.md) ---------------------------------------- */
/* Write every node (ascending id), then every relationship, of the view's
 * snapshot. `name` names the output in messages. Memory: 8 bytes per node
 * or relationship id, plus one entity's worth of buffers. Returns 0,
 * -errno on a write error (logged with name), or a store error. */
int sl_export_canonical(sl_view *v, FILE *out, const char *name, sl_progress_fn progress,
                        void *progress_arg);

/* ---- import (canonical export or APOC JSON Lines) ------------------------------- */
typedef struct sl_import_options {
  uint64_t ops_per_tx;          /* 0: 10000 */
  const sl_store_options *store; /* NULL: defaults */
  sl_progress_fn progress;      /* bytes read of the file size (0 if unknown) */
  void *progress_arg;
} sl_import_options;

typedef struct sl_import_result {
  uint64_t nodes, rels;
} sl_import_result;

/* Create a new store in into_dir (missing or empty) holding the graph of the
 * JSON Lines file `path` ("-": standard input). Every node line must precede
 * every relationship line; relationships are read by start.id / end.id (the
 * labels copied beside them are ignored). APOC's "label" key holds the type.
 *
 * IDS. The first node line decides, and likewise the first relationship line
 * for relationship ids:
 *   - an id that is a decimal integer >= 1 (a string, as export writes it, or
 *     a JSON integer): every id of that kind is kept as it is, so that
 *     `export | import | export` is the identity. A later id that is not
 *     such an integer is refused.
 *   - anything else (APOC's 0-based ids, element ids such as "4:ab..:0"):
 *     new ids are assigned from 1 in input order, and relationship endpoints
 *     are mapped through the node ids read.
 * Duplicate ids, endpoints that name no node, map or point values and
 * anything malformed are refused as "FILE:LINE: reason"; the half-made store
 * is removed (into_dir itself is left, empty, if it existed before).
 * Transactions of ops_per_tx ops. Returns 0 or the first error's code. */
int sl_import_jsonl(const char *path, const char *into_dir, const sl_import_options *opt,
                    sl_import_result *res);

/* ---- text helpers (also used by the other exporters) ------------------------------ */
#define SL_DOUBLE_BUF 32
/* Format d as described above ("NaN", "Infinity", "-Infinity" for the
 * non-finite, which JSON writers wrap in {"$double":...}). Returns length. */
size_t sl_double_format(double d, char buf[SL_DOUBLE_BUF]);
/* Standard base64 with padding. encode writes 4*ceil(len/3) bytes (no NUL)
 * and returns that count. decode accepts exactly that form (padding
 * required, no whitespace); returns the decoded length or SL_EINVAL. out must
 * hold 3*(len/4) bytes. */
size_t sl_base64_encode(const uint8_t *in, size_t len, char *out);
long sl_base64_decode(const char *in, size_t len, uint8_t *out);
/* s[0..n) as a JSON string (quotes, minimal escaping) on out, for the
 * --json output of commands. Returns 0 or -errno. */
int sl_json_put_string(FILE *out, const char *s, size_t n);

#endif
