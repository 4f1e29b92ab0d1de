/*
 * csv_reader.c: the record reader of the CSV import (csv_import_int.h;
 * csv_import.c is the import itself).
 *
 * READING. A byte-level reader walks the files of one source as one stream
 * of records: the first record of the first file is the header, every later
 * record of every file is a row. A record's fields are unquoted into one
 * buffer, each followed by a NUL (so labels and keys can be used as C
 * strings; a NUL inside a field is refused where it would be cut). The rules
 * are neo4j-admin's BufferedCharSeeker's: a quote only opens a field at its
 * first byte, a doubled quote inside is one quote, anything but a delimiter
 * or a line end after the closing quote is an error, a line break inside
 * quotes needs --multiline-fields, blank lines are skipped, and \r, \n and
 * \r\n all end a line. Line numbers are physical lines of each file; a row is
 * reported at the line it starts on (a missing end quote at the line where
 * the quote opened).
 *
 * CHARACTERS. The delimiter, the quote and the array delimiter are any one
 * Unicode character, as neo4j-admin takes them, so possibly several bytes.
 * When the delimiter or the quote is not ASCII the reader hands out whole
 * UTF-8 characters (code points; a byte that is not part of valid UTF-8 as
 * RD_RAW + the byte, kept as it is) and compares those; otherwise bytes, as
 * no byte of a multi-byte character equals an ASCII one. A character cut by
 * the end of the read buffer is completed by moving it to the front before
 * reading on (rd_need). The array delimiter is looked for as its UTF-8
 * bytes inside a field (sl__csv_ad_next, csv_columns.c): in UTF-8 a character's bytes can only
 * match at a character's start.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "csv_import_int.h"
#include "sl_base.h"

#define RD_EOF (-1)
#define RD_RAW 0x200000 /* + a byte >= 0x80 handed out alone (see CHARACTERS) */

static int rd_fill(csv_reader *r) {
  if (r->err || !r->f) return RD_EOF;
  r->ipos = 0;
  r->ilen = fread(r->in, 1, READ_CHUNK, r->f);
  if (r->ilen == 0 && ferror(r->f)) r->err = errno ? -errno : -EIO;
  return r->ilen ? 0 : RD_EOF;
}

/* At least n unread bytes in the buffer unless the file ends first: the
 * unread tail moves to the front and more is read. Returns how many. */
static size_t rd_need(csv_reader *r, size_t n) {
  size_t have = r->ilen - r->ipos;
  if (have >= n || r->err || !r->f) return have;
  memmove(r->in, r->in + r->ipos, have);
  r->ipos = 0;
  r->ilen = have;
  while (r->ilen < n) {
    size_t got = fread(r->in + r->ilen, 1, READ_CHUNK - r->ilen, r->f);
    if (got == 0) {
      if (ferror(r->f)) r->err = errno ? -errno : -EIO;
      break;
    }
    r->ilen += got;
  }
  return r->ilen - r->ipos;
}

/* The character at the read position, whose first byte is >= 0x80: its
 * code point, or RD_RAW + the byte; *len its bytes. */
static int rd_wide(csv_reader *r, size_t *len) {
  int b = r->in[r->ipos];
  uint32_t cp;
  *len = 1;
  if (!r->utf8) return RD_RAW + b;
  size_t have = rd_need(r, 4);
  size_t n = sl_utf8_decode(r->in + r->ipos, have, &cp);
  if (n == 0) return RD_RAW + r->in[r->ipos];
  *len = n;
  return (int)cp;
}

static inline int rd_getc(csv_reader *r) {
  if (r->ipos == r->ilen && rd_fill(r)) return RD_EOF;
  int c = r->in[r->ipos];
  size_t n = 1;
  if (c >= 0x80) c = rd_wide(r, &n);
  r->ipos += n;
  r->bytes += n;
  return c;
}

static inline int rd_peek(csv_reader *r) {
  if (r->ipos == r->ilen && rd_fill(r)) return RD_EOF;
  int c = r->in[r->ipos];
  size_t n;
  return c < 0x80 ? c : rd_wide(r, &n);
}

static int rd_put(csv_reader *r, char c) {
  if (r->len == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4096;
    char *p = realloc(r->buf, cap);
    if (!p) return -ENOMEM;
    r->buf = p;
    r->cap = cap;
  }
  r->buf[r->len++] = c;
  return 0;
}

/* A character from rd_getc into the record, as the bytes it was read from. */
static int rd_putc(csv_reader *r, int c) {
  char u[4];
  size_t n = 1;
  if (c < 0x80)
    u[0] = (char)c;
  else if (c >= RD_RAW)
    u[0] = (char)(c - RD_RAW);
  else
    n = sl_utf8_encode((uint32_t)c, u);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) rc = rd_put(r, u[i]);
  return rc;
}

static int rd_field(csv_reader *r, size_t off, bool quoted) {
  if (r->nfields == r->fcap) {
    size_t cap = r->fcap ? r->fcap * 2 : 32;
    csv_field *p = realloc(r->fields, cap * sizeof *p);
    if (!p) return -ENOMEM;
    r->fields = p;
    r->fcap = cap;
  }
  r->fields[r->nfields++] = (csv_field){off, r->len - off, quoted};
  return rd_put(r, 0);
}

void sl__csv_rd_close_file(csv_reader *r) {
  if (r->f) fclose(r->f);
  r->f = NULL;
  r->ipos = r->ilen = 0;
}

static int rd_open_next(csv_reader *r, char *why, size_t wl) {
  r->name = r->files[r->next_file++];
  r->line = 1;
  r->rec_line = 0;
  if (!(r->f = fopen(r->name, "r"))) {
    int rc = -errno;
    snprintf(why, wl, "cannot open: %s", sl_strerror(rc));
    return rc;
  }
  if (rd_fill(r) == 0 && r->ilen >= 3 && !memcmp(r->in, "\xef\xbb\xbf", 3)) {
    r->ipos = 3; /* a UTF-8 byte order mark */
    r->bytes += 3;
  }
  return r->err;
}

/* A line end just read as c: \r\n counts once. */
static void rd_eol(csv_reader *r, int c) {
  if (c == '\r' && rd_peek(r) == '\n') rd_getc(r);
  r->line++;
}

static int rd_fail(csv_reader *r, uint64_t line, char *why, size_t wl, const char *msg) {
  r->err_line = line;
  snprintf(why, wl, "%s", msg);
  return SL_EINVAL;
}

/* Read the next record into r->fields. Returns 1, 0 after the last file, or
 * a negative code with why set (r->err_line: the line it names, 0 for none). */
int sl__csv_rd_next(csv_reader *r, char *why, size_t wl) {
  int c, rc;
  r->len = r->nfields = 0;
  r->err_line = 0;
  for (;;) { /* skip blank lines; move on to the next file at the end of one */
    if (!r->f) {
      if (r->next_file == r->nfiles) return 0;
      if ((rc = rd_open_next(r, why, wl))) return rc;
    }
    c = rd_getc(r);
    if (c == RD_EOF) {
      if (r->err) {
        snprintf(why, wl, "read failed: %s", sl_strerror(r->err));
        r->err_line = r->line;
        return r->err;
      }
      sl__csv_rd_close_file(r);
      continue;
    }
    if (c == '\n' || c == '\r') {
      rd_eol(r, c);
      continue;
    }
    break;
  }
  r->rec_line = r->line;
  for (;;) { /* one field per turn; c is its first byte */
    size_t off = r->len;
    bool quoted = c == r->quote;
    if (quoted) {
      uint64_t qline = r->line;
      for (;;) {
        c = rd_getc(r);
        if (c == RD_EOF)
          return rd_fail(r, qline, why, wl,
                         r->err ? "read failed inside a quoted field" : "missing end quote (the field opens here)");
        if (c == r->quote) {
          int next = rd_peek(r);
          if (next == r->quote) {
            rd_getc(r);
          } else {
            if (next != r->delim && next != '\n' && next != '\r' && next != RD_EOF)
              return rd_fail(r, r->line, why, wl,
                             "characters after a closing quote (a quote inside a quoted field is doubled)");
            break;
          }
        } else if (c == '\n' || c == '\r') {
          if (!r->multiline)
            return rd_fail(r, qline, why, wl, "a quoted field spans lines (allow it with --multiline-fields)");
          if (c == '\n' || rd_peek(r) != '\n') r->line++;
        }
        if ((rc = rd_putc(r, c))) return rc;
      }
      c = rd_getc(r);
    } else {
      while (c != RD_EOF && c != r->delim && c != '\n' && c != '\r') {
        if ((rc = rd_putc(r, c))) return rc;
        c = rd_getc(r);
      }
    }
    if ((rc = rd_field(r, off, quoted))) return rc;
    if (c == r->delim) {
      c = rd_getc(r);
      if (c == RD_EOF || c == '\n' || c == '\r') { /* a trailing delimiter: one more, empty field */
        if ((rc = rd_field(r, r->len, false))) return rc;
        break;
      }
      continue;
    }
    break;
  }
  if (c == '\n' || c == '\r') rd_eol(r, c);
  if (c == RD_EOF && r->err) {
    snprintf(why, wl, "read failed: %s", sl_strerror(r->err));
    r->err_line = r->line;
    return r->err;
  }
  return 1;
}

void sl__csv_rd_free(csv_reader *r) {
  sl__csv_rd_close_file(r);
  free(r->in);
  free(r->buf);
  free(r->fields);
}
