/*
 * Statements in a text and cypher-shell scripts (query.h): what
 * `shiplog query` and `shiplog exec --cypher` run. A script is a sequence
 * of statements ending in ';' and client commands (a line starting with
 * ':'): :begin, :commit, :rollback, :param, :params. Positions in messages
 * are the file's: a statement's error line:column is shifted by where the
 * statement starts.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query_int.h"

typedef struct cursor_pos {
  const char *t;
  size_t len, i;
  unsigned line, col;
} cursor_pos;

static void step(cursor_pos *c) {
  if (c->i >= c->len) return;
  unsigned char ch = (unsigned char)c->t[c->i++];
  if (ch == '\n') {
    c->line++;
    c->col = 1;
  } else if ((ch & 0xc0) != 0x80) {
    c->col++;
  }
}

static bool at(const cursor_pos *c, const char *s) {
  size_t n = strlen(s);
  return c->i + n <= c->len && !memcmp(c->t + c->i, s, n);
}

/* Skip blanks and comments. */
static void skip_blank(cursor_pos *c) {
  for (;;) {
    if (c->i >= c->len) return;
    char ch = c->t[c->i];
    if (isspace((unsigned char)ch)) step(c);
    else if (at(c, "//")) {
      while (c->i < c->len && c->t[c->i] != '\n') step(c);
    } else if (at(c, "/*")) {
      step(c), step(c);
      while (c->i < c->len && !at(c, "*/")) step(c);
      step(c), step(c);
    } else {
      return;
    }
  }
}

/* From c->i (a statement's start) to its ';' or the end. */
static void scan_statement(cursor_pos *c) {
  while (c->i < c->len) {
    char ch = c->t[c->i];
    if (ch == ';') return;
    if (ch == '\'' || ch == '"' || ch == '`') {
      step(c);
      while (c->i < c->len && c->t[c->i] != ch) {
        if (c->t[c->i] == '\\' && ch != '`') step(c);
        step(c);
      }
      step(c);
    } else if (at(c, "//")) {
      while (c->i < c->len && c->t[c->i] != '\n') step(c);
    } else if (at(c, "/*")) {
      step(c), step(c);
      while (c->i < c->len && !at(c, "*/")) step(c);
      step(c), step(c);
    } else {
      step(c);
    }
  }
}

/* Line and column of text[pos], counted from the start (1-based). */
static void position_of(const char *text, size_t pos, unsigned *line, unsigned *col) {
  cursor_pos c = {text, pos, 0, 1, 1};
  while (c.i < pos) step(&c);
  *line = c.line;
  *col = c.col;
}

void sl_query_next_statement(const char *text, size_t len, size_t *pos, size_t *start, size_t *slen, unsigned *line,
                             unsigned *col) {
  cursor_pos c = {text, len, *pos, 1, 1};
  position_of(text, *pos, &c.line, &c.col);
  skip_blank(&c);
  *start = c.i;
  *line = c.line;
  *col = c.col;
  scan_statement(&c);
  *slen = c.i - *start;
  if (c.i < len) c.i++; /* the ';' */
  *pos = c.i;
}

/* ---- scripts ----------------------------------------------------------------------------------- */
typedef struct script {
  sl_store *st;
  bool read_only;
  const char *name;
  const sl_query_options *opt;
  sl_arena params_arena;
  sl_qparam *params;
  size_t nparams, pcap;
  sl_qtx *open;       /* between :begin and :commit */
  sl_script_rows_fn rows;
  void *rows_arg;
  sl_script_result res;
} script;

static void report(script *s, unsigned sline, unsigned scol, const sl_query_error *err) {
  unsigned line = sline, col = scol;
  if (err->line) {
    line = sline + err->line - 1;
    col = err->line == 1 ? scol + err->column - 1 : err->column;
  }
  fprintf(stderr, "%s:%u:%u: %s: %s\n", s->name, line, col, err->code, err->message);
}

static void report_committed(script *s) {
  fprintf(stderr, "%s: stopped at the first failure; %llu transaction%s committed before it\n", s->name,
          (unsigned long long)s->res.committed, s->res.committed == 1 ? "" : "s");
}

static int set_param(script *s, const char *name, size_t nlen, const sl_qvalue *v) {
  size_t i;
  for (i = 0; i < s->nparams; i++)
    if (strlen(s->params[i].name) == nlen && !memcmp(s->params[i].name, name, nlen)) break;
  if (i == s->nparams) {
    if (s->nparams == s->pcap) {
      size_t cap = s->pcap ? s->pcap * 2 : 16;
      sl_qparam *np = realloc(s->params, sizeof *np * cap);
      if (!np) return -ENOMEM;
      s->params = np;
      s->pcap = cap;
    }
    s->params[i].name = sl_arena_strndup(&s->params_arena, name, nlen);
    if (!s->params[i].name) return -ENOMEM;
    s->nparams++;
  }
  return qv_copy(&s->params_arena, v, &s->params[i].value);
}

/* Evaluate expr (Cypher) as `RETURN expr`. */
static int eval_expr(script *s, const char *expr, size_t n, unsigned line, unsigned col, sl_qvalue *out, bool *ok) {
  *ok = false;
  char *text = malloc(n + 16);
  if (!text) return -ENOMEM;
  int tl = snprintf(text, n + 16, "RETURN %.*s", (int)n, expr);
  sl_qtx *t = s->open;
  int rc = 0;
  if (!t && (rc = sl_qtx_begin(s->st, false, s->opt, &t))) {
    free(text);
    return rc;
  }
  sl_qcursor *c;
  sl_query_error err;
  const sl_qvalue *row = NULL;
  rc = sl_qtx_run(t, text, (size_t)tl, s->params, s->nparams, &c, &err);
  if (!rc) {
    rc = sl_qcursor_next(c, &row, &err);
    if (rc == 1) {
      *out = row[0];
      /* copy before the cursor goes */
      qv tmp;
      if (qv_copy(&s->params_arena, out, &tmp)) rc = -ENOMEM;
      else {
        *out = tmp;
        *ok = true;
        rc = 0;
      }
    }
    sl_qcursor_close(c, NULL);
  }
  if (!*ok && rc != -ENOMEM) {
    /* "RETURN " shifted the columns */
    if (err.line == 1 && err.column > 7) err.column -= 7;
    report(s, line, col, &err);
    rc = SL_EINVAL;
  }
  if (!s->open) sl_qtx_rollback(t);
  else if (!*ok) {
    sl_qtx_rollback(s->open);
    s->open = NULL;
  }
  free(text);
  return rc;
}

static int command(script *s, const char *cmd, size_t n, unsigned line, unsigned col) {
  /* cmd: the line without the leading ':' and trailing blanks/';' */
  while (n && (isspace((unsigned char)cmd[n - 1]) || cmd[n - 1] == ';')) n--;
  size_t w = 0;
  while (w < n && !isspace((unsigned char)cmd[w])) w++;
  const char *arg = cmd + w;
  size_t an = n - w;
  while (an && isspace((unsigned char)*arg)) arg++, an--;
  sl_query_error err = {0};
  if (w == 5 && !strncasecmp(cmd, "begin", 5)) {
    if (s->open) {
      snprintf(err.code, sizeof err.code, "Neo.ClientError.Request.Invalid");
      snprintf(err.message, sizeof err.message, ":begin inside an open transaction");
      report(s, line, col, &err);
      return SL_EINVAL;
    }
    int rc = sl_qtx_begin(s->st, !s->read_only, s->opt, &s->open);
    if (rc) {
      fprintf(stderr, "%s:%u:%u: cannot begin a transaction: %s\n", s->name, line, col, sl_strerror(rc));
      return rc;
    }
    return 0;
  }
  if ((w == 6 && !strncasecmp(cmd, "commit", 6)) || (w == 8 && !strncasecmp(cmd, "rollback", 8))) {
    bool commit = w == 6;
    if (!s->open) {
      snprintf(err.code, sizeof err.code, "Neo.ClientError.Request.Invalid");
      snprintf(err.message, sizeof err.message, "There is no open transaction to %s", commit ? "commit" : "rollback");
      report(s, line, col, &err);
      return SL_EINVAL;
    }
    sl_qtx *t = s->open;
    s->open = NULL;
    if (!commit) {
      sl_qtx_rollback(t);
      return 0;
    }
    uint64_t txid;
    int rc = sl_qtx_commit(t, &txid, &err);
    if (rc) {
      report(s, line, col, &err);
      return rc;
    }
    s->res.committed++;
    if (txid) s->res.last_txid = txid;
    return 0;
  }
  if ((w == 5 && !strncasecmp(cmd, "param", 5)) || (w == 6 && !strncasecmp(cmd, "params", 6))) {
    unsigned acol = col + 1 + (unsigned)(arg - cmd);
    if (!an) return 0; /* listing */
    if (*arg == '{') {
      sl_qvalue m;
      bool ok;
      int rc = eval_expr(s, arg, an, line, acol, &m, &ok);
      if (rc) return rc;
      if (m.kind != SL_QMAP) {
        snprintf(err.code, sizeof err.code, ST_TYPE);
        snprintf(err.message, sizeof err.message, ":params takes a map");
        report(s, line, acol, &err);
        return SL_EINVAL;
      }
      if (w == 6) s->nparams = 0;
      for (size_t i = 0; i < m.u.map.n; i++)
        if ((rc = set_param(s, m.u.map.entries[i].key, strlen(m.u.map.entries[i].key), &m.u.map.entries[i].value))) return rc;
      return 0;
    }
    /* name => expr, or name: expr */
    size_t nl = 0;
    const char *name = arg;
    if (*arg == '`') {
      name = arg + 1;
      while (nl + 1 < an && name[nl] != '`') nl++;
      arg = name + nl + 1;
    } else {
      while (nl < an && (isalnum((unsigned char)arg[nl]) || arg[nl] == '_')) nl++;
      arg += nl;
    }
    an = n - (size_t)(arg - cmd);
    while (an && isspace((unsigned char)*arg)) arg++, an--;
    if (an >= 2 && !memcmp(arg, "=>", 2)) arg += 2, an -= 2;
    else if (an >= 1 && *arg == ':') arg += 1, an -= 1;
    else {
      snprintf(err.code, sizeof err.code, ST_SYNTAX);
      snprintf(err.message, sizeof err.message, "usage: :param name => expression");
      report(s, line, col, &err);
      return SL_EINVAL;
    }
    while (an && isspace((unsigned char)*arg)) arg++, an--;
    sl_qvalue v;
    bool ok;
    int rc = eval_expr(s, arg, an, line, col + 1 + (unsigned)(arg - cmd), &v, &ok);
    if (rc) return rc;
    return set_param(s, name, nl, &v);
  }
  snprintf(err.code, sizeof err.code, "Neo.ClientError.Request.Invalid");
  snprintf(err.message, sizeof err.message, "unsupported client command :%.*s", (int)w, cmd);
  report(s, line, col, &err);
  return SL_EINVAL;
}

static int statement(script *s, const char *text, size_t n, unsigned line, unsigned col) {
  sl_query_error err = {0};
  sl_qtx *t = s->open;
  int rc;
  bool own = !t;
  if (own && (rc = sl_qtx_begin(s->st, !s->read_only, s->opt, &t))) {
    fprintf(stderr, "%s:%u:%u: cannot begin a transaction: %s\n", s->name, line, col, sl_strerror(rc));
    return rc;
  }
  sl_qcursor *c;
  s->res.statements++;
  rc = sl_qtx_run(t, text, n, s->params, s->nparams, &c, &err);
  if (!rc) {
    if (s->rows) {
      rc = s->rows(s->rows_arg, c, &err);
    } else {
      const sl_qvalue *row;
      while ((rc = sl_qcursor_next(c, &row, &err)) == 1) {
      }
    }
    int crc = sl_qcursor_close(c, rc ? NULL : &err);
    if (!rc) rc = crc;
  }
  if (rc) {
    report(s, line, col, &err);
    sl_qtx_rollback(t);
    if (!own) s->open = NULL;
    return rc;
  }
  if (own) {
    uint64_t txid;
    if ((rc = sl_qtx_commit(t, &txid, &err))) {
      report(s, line, col, &err);
      return rc;
    }
    s->res.committed++;
    if (txid) s->res.last_txid = txid;
  }
  return 0;
}

/* neo4j-shell's script format (APOC's apoc.export.cypher "neo4j-shell"): a
 * line that is only BEGIN, COMMIT or ROLLBACK (a ';' allowed) is cypher-shell's
 * :begin, :commit or :rollback; SCHEMA AWAIT waits for indexes, which are
 * built by the statement that creates them here. Returns the command, "" for
 * SCHEMA AWAIT, NULL for any other line; *end: where the line ends. */
static const char *neo4j_shell_line(const char *t, size_t i, size_t len, size_t *end) {
  static const char *const words[] = {"begin", "commit", "rollback"};
  size_t e = i;
  while (e < len && t[e] != '\n') e++;
  *end = e;
  size_t n = e - i;
  while (n && (isspace((unsigned char)t[i + n - 1]) || t[i + n - 1] == ';')) n--;
  for (size_t k = 0; k < sizeof words / sizeof *words; k++)
    if (n == strlen(words[k]) && !strncasecmp(t + i, words[k], n)) return words[k];
  if (n >= 12 && !strncasecmp(t + i, "SCHEMA AWAIT", 12) && (n == 12 || isspace((unsigned char)t[i + 12]))) return "";
  return NULL;
}

int sl_query_script(sl_store *st, bool read_only, const char *text, size_t len, const char *name,
                    const sl_query_options *opt, const sl_qparam *params, size_t nparams, sl_script_rows_fn rows,
                    void *rows_arg, sl_script_result *res) {
  script s = {.st = st, .read_only = read_only, .name = name, .opt = opt, .rows = rows, .rows_arg = rows_arg};
  sl_arena_init(&s.params_arena, NULL);
  int rc = 0;
  for (size_t i = 0; i < nparams && !rc; i++) rc = set_param(&s, params[i].name, strlen(params[i].name), &params[i].value);
  cursor_pos c = {text, len, 0, 1, 1};
  while (!rc) {
    skip_blank(&c);
    if (c.i >= len) break;
    unsigned line = c.line, col = c.col;
    if (text[c.i] == ':') {
      size_t start = c.i + 1;
      while (c.i < len && text[c.i] != '\n') step(&c);
      rc = command(&s, text + start, c.i - start, line, col);
      continue;
    }
    size_t line_end;
    const char *kw = neo4j_shell_line(text, c.i, len, &line_end);
    if (kw) {
      while (c.i < line_end) step(&c);
      rc = *kw ? command(&s, kw, strlen(kw), line, col) : 0;
      continue;
    }
    if (text[c.i] == ';') { /* an empty statement */
      step(&c);
      continue;
    }
    size_t start = c.i;
    scan_statement(&c);
    size_t n = c.i - start;
    if (c.i < len) step(&c);
    rc = statement(&s, text + start, n, line, col);
  }
  if (!rc && s.open) {
    /* a script that ends inside :begin: cypher-shell rolls it back */
    fprintf(stderr, "%s: the script ended inside :begin; that transaction is rolled back\n", name);
    sl_qtx_rollback(s.open);
    s.open = NULL;
  }
  if (rc) {
    if (s.open) sl_qtx_rollback(s.open);
    if (s.res.statements > 1 || s.res.committed) report_committed(&s);
  }
  free(s.params);
  sl_arena_free(&s.params_arena);
  if (res) *res = s.res;
  return rc;
}
