/*
 * csv_import_int.h: what the files of the CSV import share (private to
 * interchange/; the contract is interchange.h, sl_import_csv). csv_reader.c
 * reads records, csv_columns.c parses a header into columns and a field
 * into a value, csv_import.c drives the import: sources, rows, the store.
 *
 * A function that refuses the input returns SL_EINVAL (or the code it
 * names) and leaves the reason in a why buffer (the reader's argument, or
 * the import's im->why), which csv_import.c's report() logs with the file
 * and line.
 */
#ifndef SL_CSV_IMPORT_INT_H
#define SL_CSV_IMPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "interchange_int.h"

#define READ_CHUNK (64u << 10) /* the reader's buffer: bytes read from a file at a time */

/* ---- the record reader ------------------------------------------------------------- */
typedef struct csv_field {
  size_t off, len;
  bool quoted;
} csv_field;

typedef struct csv_reader {
  int delim, quote;  /* code points */
  bool utf8;         /* hand out whole characters (a separator is not ASCII) */
  bool multiline;
  const char *const *files;
  size_t nfiles, next_file;
  FILE *f;
  const char *name;  /* the file being read, for messages */
  unsigned char *in; /* read buffer */
  size_t ipos, ilen;
  uint64_t line;     /* line of the next byte, from 1 */
  uint64_t rec_line; /* line the current record started on */
  uint64_t err_line; /* line a reader error names (0: none) */
  uint64_t bytes;    /* consumed from all files */
  int err;           /* read error (sticky) */
  char *buf;         /* fields of the current record, each NUL-terminated */
  size_t len, cap;
  csv_field *fields;
  size_t nfields, fcap;
} csv_reader;

/* ---- headers and values -------------------------------------------------------------- */
typedef enum vtype {
  VT_STRING, VT_LONG, VT_INT, VT_SHORT, VT_BYTE, VT_DOUBLE, VT_FLOAT, VT_BOOL, VT_CHAR,
  VT_DATE, VT_LOCALTIME, VT_TIME, VT_LOCALDATETIME, VT_DATETIME, VT_DURATION, /* in sl_kind's order */
  VT_POINT
} vtype;

typedef enum colkind { COL_IGNORE, COL_ID, COL_LABEL, COL_START, COL_END, COL_TYPE, COL_PROP } colkind;

typedef struct column {
  colkind kind;
  vtype type;
  bool array;   /* TYPE[]; byte[] is a bytes value */
  char *name;   /* property key, or NULL */
  char *text;   /* the header field, for messages */
  size_t space; /* id space of ID / START_ID / END_ID */
  char *zone;     /* time, datetime: {timezone:..}, the column's default zone; NULL: none */
  int64_t srid;   /* point: {crs:..} or {srid:..}, the cells' default CRS; 0: none */
} column;

typedef struct idspace {
  char *name; /* "" for the default space */
  sl__idmap map;
} idspace;

typedef struct csvimp {
  const sl_csv_options *o;
  sl_csv_options defaults;
  sl__sink sink;
  idspace *spaces;
  size_t nspaces;
  csv_reader rd;
  const sl_csv_source *src;
  bool rels; /* reading a relationship source */
  column *cols;
  size_t ncols;
  sl__scratch *arena; /* this row's values */
  sl_prop *props;     /* this row's properties, ncols + 1 */
  const char **labels;
  size_t labels_cap;
  sl_csv_result res;
  uint64_t total_bytes, rows;
  uint64_t skip_warnings;
  char ad[4];   /* the array delimiter's UTF-8 bytes */
  size_t adlen;
  char why[512];
} csvimp;

/* ---- csv_reader.c ------------------------------------------------------------------ */

/* Read the next record into r->fields. Returns 1, 0 after the last file, or
 * a negative code with why set (r->err_line: the line it names, 0 for none). */
int sl__csv_rd_next(csv_reader *r, char *why, size_t wl);
void sl__csv_rd_close_file(csv_reader *r);
void sl__csv_rd_free(csv_reader *r);

/* ---- csv_columns.c ------------------------------------------------------------------ */

/* Where the next array delimiter starts in s[at..n), or n. */
size_t sl__csv_ad_next(const csvimp *im, const char *s, size_t n, size_t at);
/* Set im->why; returns rc. */
int sl__csv_why(csvimp *im, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "column N (HEADER): " then the reason; returns SL_EINVAL. */
int sl__csv_col_why(csvimp *im, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sl__csv_cols_free(csvimp *im);
/* The header record in im->rd into im->cols (and room for a row's props). */
int sl__csv_parse_header(csvimp *im);
/* Cut the ASCII blanks and control characters at both ends. */
void sl__csv_trim(const char **s, size_t *n);
/* The value of property column col from field f; *has = false for none. */
int sl__csv_prop_value(csvimp *im, size_t col, const csv_field *f, sl_value *v, bool *has);
/* The key of an id field in its space's map (see csv_columns.c). */
int sl__csv_id_key(csvimp *im, size_t col, const csv_field *f, char key8[8], const char **key, size_t *len,
                   sl_value *v);

#endif
