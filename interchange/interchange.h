/*
 * interchange: the text formats through which graphs enter and leave a store.
 *
 *   - Mutation files (spec/mutations.md): JSON Lines, one transaction per
 *     line, applied by `shiplog exec`, load generators and tests.
 *   - The canonical export (spec/export.md): JSON Lines in the shape of APOC's
 *     apoc.export.json.all, byte-identical for equal graphs.
 *   - Import of that export (and of APOC's own output) into a new store.
 *   - neo4j-admin's CSV files, both ways, and cypher-shell scripts
 *     (spec/cli.md: import --nodes/--relationships, export --csv/--cypher).
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
 *   {"$date":"2024-02-29"}   SL_DATE; likewise $localtime, $time,
 *                            $localdatetime, $datetime, $duration (text as
 *                            sl_temporal_parse reads and sl_temporal_format
 *                            writes it, spec/types.md)
 *   {"$point":{"srid":4326,"x":1.0,"y":2.0}}  SL_POINT ("z" exactly in 3D)
 *   {"x":..,"y":..[,"z":..][,"crs":"cartesian"|"srid":7203]} or
 *   {"longitude":..,"latitude":..[,"height":..][,"crs":..]}  SL_POINT as
 *                            APOC writes it (null coordinates are absent;
 *                            without crs/srid the keys decide)
 *   [v, ...]                 SL_LIST, every element of one scalar kind;
 *                            [] is an empty list of unknown kind
 *   null                     SL_NULL: only as the value of set_*_prop (remove)
 *   Other objects (maps) are refused. The $double form is an extension of
 *   spec/mutations.md so that every stored value can be written as a
 *   mutation (and `shiplog log --json` output can be executed again).
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

#include "query.h"
#include "store.h"

/* Progress of long work: done out of total (total 0: unknown), called
 * every few thousand entities or so many KiB read. May be NULL. */
typedef void (*sl_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* ---- mutation files (spec/mutations.md) ------------------------------------ */
typedef struct sl_exec_options {
  bool stop_on_error;   /* end the run at the first failed line */
  FILE *ids_out;        /* "node 17" / "rel 4" for ids the store assigned; NULL: silent */
  sl_progress_fn progress; /* bytes read of the input's size (0: unknown, a pipe), after each line; may be NULL */
  void *progress_arg;
} sl_exec_options;

typedef struct sl_exec_result {
  uint64_t lines;       /* lines read (blank and comment lines included) */
  uint64_t committed;   /* transactions committed (an empty one counts) */
  uint64_t failed;      /* lines whose transaction was refused */
  uint64_t last_txid;   /* txid of the last commit that logged something, or 0 */
  uint64_t ops;         /* ops the committed transactions applied */
  uint64_t bytes;       /* bytes of input read */
} sl_exec_result;

/* The longest mutation line `exec` takes: twice the largest transaction
 * (store/log.h SL_TXN_MAX), room for JSON's longer spelling of one. A
 * longer line is refused ("FILE:LINE: line longer than N bytes") without
 * being held in memory. */
#define SL_MUTATION_LINE_MAX (2u * SL_FRAME_SHIP_MAX)

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
 *   - an id that is a decimal integer >= 0 (a string, as export and APOC
 *     write it, without sign or leading zeros, or a JSON integer): every id
 *     of that kind is kept as it is, 0 included, so that `export | import |
 *     export` is the identity and a Neo4j export keeps its ids. A later id
 *     that is not such an integer is refused.
 *   - anything else (element ids such as "4:ab..:0"): new ids are assigned
 *     from 1 in input order, and relationship endpoints are mapped through
 *     the node ids read.
 * Duplicate ids, endpoints that name no node, maps that are not points and
 * anything malformed are refused as "FILE:LINE: reason"; the half-made store
 * is removed (into_dir itself is left, empty, if it existed before).
 * Transactions of ops_per_tx ops. Returns 0 or the first error's code. */
int sl_import_jsonl(const char *path, const char *into_dir, const sl_import_options *opt,
                    sl_import_result *res);

/* ---- neo4j-admin CSV import (spec/cli.md) --------------------------------------------- */
/* The header conventions of `neo4j-admin database import full`:
 *   name:ID  :ID(GROUP)       node id in an id space (default: one unnamed
 *                             space); kept as property `name` when named
 *                             (a string, or an int64 with SL_CSV_ID_INTEGER)
 *   :LABEL                    labels, array-delimited, empty elements ignored
 *   :START_ID(GROUP) :END_ID(GROUP) :TYPE     relationships
 *   :IGNORE, or an empty header field         column skipped
 *   name, name:TYPE, name:TYPE[]              properties: string (default),
 *       int long short byte (int64, range-checked for the type), float double
 *       (double), boolean (true/false, any case), char (one character, kept
 *       as a string), date localtime time localdatetime datetime duration
 *       (text as Neo4j's constructors read it, base/temporal.c; a time or
 *       datetime without an offset or zone gets default_time_zone), point
 *       ({x:1,y:2,crs:'cartesian'}, {latitude:..,longitude:..[,height:..]},
 *       as neo4j-admin reads it: crs or srid optional, the keys decide);
 *       TYPE[] is a list split on the array delimiter; byte[] is a bytes
 *       value. Type names and keywords in any case. Header options as
 *       neo4j-admin's: {crs:NAME} or {srid:N} on a point column, the CRS of
 *       cells that name none; {timezone:ZONE} on a time or datetime column,
 *       its cells' default zone (before default_time_zone); others refused.
 * The header is parsed as neo4j-admin parses it: options {..} are cut out,
 * then a group (..), then the type after the LAST ':', so a key may hold ':'.
 * Fields: an unquoted empty field is no property; a quoted empty one is an
 * empty string, an empty list in an array column, empty bytes in byte[]
 * (and no property in the other scalar columns, as neo4j-admin reads them).
 * Inside quotes a doubled quote is one quote; a quote counts only at the
 * start of a field; after the closing quote comes a delimiter or a line
 * end. Lines end with \n, \r\n or \r; blank lines are skipped; a UTF-8 BOM
 * at the start of a file is skipped. Numbers may carry surrounding
 * whitespace (neo4j-admin trims it); doubles are spelled as Java reads them
 * (NaN, Infinity, -Infinity, 1e+300, an f/d suffix), hexadecimal excepted. */
typedef enum sl_csv_id_type { SL_CSV_ID_STRING = 0, SL_CSV_ID_INTEGER } sl_csv_id_type;

/* One --nodes or --relationships: files read as one (the first record of
 * files[0] is the header, so a separate header file goes first; each later
 * file holds rows only). */
typedef struct sl_csv_source {
  const char *const *files;
  size_t nfiles;
  const char *const *labels; /* nodes: added to every node (LABEL:LABEL=) */
  size_t nlabels;
  const char *type;          /* relationships: the type of rows without one (TYPE=); may be NULL */
} sl_csv_source;

typedef struct sl_csv_options {
  /* Any one Unicode character each, as code points (matched as their UTF-8
   * bytes, so e.g. U+00D6 'Ö' is two); SL_EINVAL for a surrogate or one
   * past U+10FFFF. */
  uint32_t delimiter;        /* 0: ',' */
  uint32_t array_delimiter;  /* 0: ';' */
  uint32_t quote;            /* 0: '"' */
  sl_csv_id_type id_type;
  bool multiline_fields; /* a quoted field may hold line breaks */
  bool skip_bad_relationships; /* skip relationships without a type or with an unknown endpoint */
  bool skip_duplicate_nodes;   /* skip a node whose id its id space already has */
  bool ignore_extra_columns;   /* ignore fields beyond the header */
  bool ignore_empty_strings;   /* a quoted empty string is no property */
  bool trim_strings;           /* trim whitespace around strings, labels, types, ids */
  const char *default_time_zone; /* time and datetime cells without an offset or
                                    zone: an offset ("+01:00") or an IANA name;
                                    NULL: UTC (Z) */
  uint64_t ops_per_tx;           /* 0: 10000 */
  const sl_store_options *store; /* NULL: defaults */
  sl_progress_fn progress;       /* bytes read of the files' total size */
  void *progress_arg;
} sl_csv_options;

typedef struct sl_csv_result {
  uint64_t nodes, rels;
  uint64_t skipped_nodes, skipped_rels; /* by the skip options */
} sl_csv_result;

/* Create a new store in into_dir (missing or empty) from CSV files: every
 * node source in order, then every relationship source (as neo4j-admin
 * does). Node and relationship ids are assigned from 1 in input order.
 * Refused as "FILE:LINE: column N (HEADER): reason" on stderr (the column
 * where there is one): a value that does not parse as its type, a type
 * shiplog does not hold, a missing end quote, a line break in a quoted field
 * without multiline_fields, extra fields, duplicate node ids and
 * relationships without a type or to unknown ids (unless the matching option
 * skips them: each skip is a warning on stderr, the first 100 of them
 * shown). A failed import removes the store (into_dir itself is left, empty,
 * if it existed before). Returns 0 or the first error's code; res (may be
 * NULL) is filled in every case. Memory: an id map entry (key + 32 bytes)
 * per node id, plus one row. */
int sl_import_csv(const sl_csv_source *nodes, size_t nnodes, const sl_csv_source *rels, size_t nrels,
                  const char *into_dir, const sl_csv_options *opt, sl_csv_result *res);

/* ---- neo4j-admin CSV export (spec/cli.md) ---------------------------------------------- */
typedef struct sl_csv_export_result {
  size_t node_files, rel_files;
  uint64_t nodes, rels;
} sl_csv_export_result;

/* Write the view's graph as files that `neo4j-admin database import full`
 * accepts, into dir (missing or empty; made complete or not at all: the
 * files are written into a temporary sibling that is renamed to dir):
 *   nodes_N.csv          :ID,:LABEL,key:type,...   (ids are shiplog's)
 *   relationships_N.csv  :START_ID,:END_ID,:TYPE,key:type,...
 *   import.args          the options that load them, paths relative to dir:
 *                        --id-type=integer, --array-delimiter=C when not ';',
 *                        --multiline-fields=true when a field holds a line
 *                        break, then one --nodes= / --relationships= per file.
 * Entities go to the first file whose columns agree with every key they
 * have (first fit in id order), so a key with values of different kinds
 * leads to separate files. Values: boolean, long, double (Java's spelling,
 * NaN and +-Infinity included), string (always quoted), byte[] for bytes
 * (signed decimals), TYPE[] for lists; an empty list is "" in an array
 * column. The array delimiter is the first of ; | ^ ~ ! $ % & * + / < > ?
 * TAB and the ASCII control characters that no label and no list string
 * holds. Refused (SL_EINVAL, logged naming the entity and key), because the
 * format has no spelling for them: a list of byte arrays, a list of one
 * empty string (it reads back as an empty list), a property key holding '('
 * or '{' (neo4j-admin reads those as an id space or header options), and a
 * graph whose labels and list strings leave no array delimiter free.
 * Note that neo4j-admin itself drops empty arrays; shiplog import keeps them.
 * Memory: 12 bytes per node and relationship (20 while sorting them by file). Returns 0, -errno (logged
 * with the path) or a store error. */
int sl_export_csv(sl_view *v, const char *dir, sl_progress_fn progress, void *progress_arg,
                  sl_csv_export_result *res);

/* ---- cypher-shell script export (spec/cli.md) -------------------------------------------- */
typedef struct sl_cypher_options {
  uint64_t batch_size;   /* statements per :begin/:commit; 0: 20000 */
  sl_progress_fn progress;
  void *progress_arg;
} sl_cypher_options;

/* Write a cypher-shell script that recreates the view's graph in an empty
 * Neo4j 5 database, in the shape of apoc.export.cypher.all (format
 * cypher-shell): a uniqueness constraint on a temporary label `UNIQUE IMPORT
 * LABEL` and key `UNIQUE IMPORT ID` (the shiplog node id); nodes as CREATE
 * statements, relationships as MATCH ... CREATE on that key, each in
 * :begin/:commit batches of batch_size; then the temporary label and key
 * removed in batches and the constraint dropped. Values are inlined as
 * literals: strings double-quoted with \" \\ and \uXXXX escapes, names in
 * backticks (` doubled), NaN as 0.0/0.0 and +-Infinity as +-1.0/0.0. Cypher
 * has no byte-array literal: bytes are written as lists of signed integers
 * (a warning says how many), and a list of byte arrays is refused
 * (SL_EINVAL), as is a graph that already uses the temporary label or key.
 * `name` names the output in messages. Returns 0, -errno on a write error
 * (logged) or a store error. */
int sl_export_cypher(sl_view *v, FILE *out, const char *name, const sl_cypher_options *opt);

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

/* ---- query results and parameters (spec/query.md) ------------------------------------------ */
typedef enum sl_results_format { SL_RESULTS_TABLE = 0, SL_RESULTS_JSONL, SL_RESULTS_CSV } sl_results_format;
/* Pull every row of c and write them to out: JSONL (one object per row,
 * keys in column order; nodes {"elementId","labels","properties"},
 * relationships {"elementId","type","start","end","properties"}, paths
 * {"nodes","relationships"}; then, for a statement with an updating clause,
 * {"stats":{...}} with all of Neo4j's eleven counters), CSV (a header line,
 * strings as they are, other values as cypher-shell prints them, null
 * empty) or a table for people. Returns 0, the cursor's error (err filled)
 * or -errno on a write error (logged naming `name`). *nrows (may be NULL):
 * rows written. */
int sl_results_write(FILE *out, sl_results_format f, sl_qcursor *c, sl_query_error *err, const char *name,
                     uint64_t *nrows);

/* Statement parameters from JSON: values in the mapping above, objects as
 * maps (except the tagged forms: $bytes, $double, $date .. $duration,
 * $point), arrays as lists of any values. */
typedef struct sl_param_set sl_param_set;
sl_param_set *sl_param_set_new(void); /* NULL when out of memory */
void sl_param_set_free(sl_param_set *ps);
/* name: one parameter named name[0..nlen) with the JSON value json[0..len);
 * NULL: json is an object whose members are parameters. A name given again
 * is replaced. SL_EINVAL with the reason in why. */
int sl_param_set_add(sl_param_set *ps, const char *name, size_t nlen, const char *json, size_t len, char *why,
                     size_t whylen);
const sl_qparam *sl_param_set_items(const sl_param_set *ps, size_t *n);

#endif
