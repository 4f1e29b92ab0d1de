/*
 * The Cypher lexer: the whole statement into an array of tokens, each with
 * its 1-based line and column (columns count characters, not bytes, as
 * Neo4j's messages do). Keywords are identifiers here; the parser matches
 * them case-insensitively. '<', '-' and '>' stay single characters so that
 * the parser can read arrows and comparisons alike.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

typedef struct lexer {
  qctx *q;
  const char *s, *end, *p;
  unsigned line, col;
} lexer;

static void adv(lexer *l, size_t n) {
  while (n-- && l->p < l->end) {
    unsigned char c = (unsigned char)*l->p++;
    if (c == '\n') {
      l->line++;
      l->col = 1;
    } else if ((c & 0xc0) != 0x80) {
      l->col++;
    }
  }
}

static bool ident_start(unsigned char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
static bool ident_char(unsigned char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

static int skip_space(lexer *l) {
  for (;;) {
    if (l->p >= l->end) return 0;
    char c = *l->p;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      adv(l, 1);
    } else if (c == '/' && l->p + 1 < l->end && l->p[1] == '/') {
      while (l->p < l->end && *l->p != '\n') adv(l, 1);
    } else if (c == '/' && l->p + 1 < l->end && l->p[1] == '*') {
      unsigned line = l->line, col = l->col;
      adv(l, 2);
      while (l->p < l->end && !(*l->p == '*' && l->p + 1 < l->end && l->p[1] == '/')) adv(l, 1);
      if (l->p >= l->end) return qerr(l->q, SL_EINVAL, ST_SYNTAX, line, col, "Failed to parse comment: missing '*/'");
      adv(l, 2);
    } else {
      return 0;
    }
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int lex_string(lexer *l, qtok *t) {
  char quote = *l->p;
  adv(l, 1);
  char *buf = sl_arena_alloc(&l->q->ast, (size_t)(l->end - l->p) + 1);
  if (!buf) return qerr_oom(l->q);
  size_t n = 0;
  for (;;) {
    if (l->p >= l->end) return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Failed to parse string literal: missing closing %c", quote);
    char c = *l->p;
    if (c == quote) {
      adv(l, 1);
      break;
    }
    if (c != '\\') {
      buf[n++] = c;
      adv(l, 1);
      continue;
    }
    if (l->p + 1 >= l->end) /* a backslash last: the string never closes */
      return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Failed to parse string literal: missing closing %c", quote);
    char e = l->p[1];
    unsigned line = l->line, col = l->col;
    adv(l, 2);
    switch (e) {
    case 'n': buf[n++] = '\n'; break;
    case 't': buf[n++] = '\t'; break;
    case 'r': buf[n++] = '\r'; break;
    case 'b': buf[n++] = '\b'; break;
    case 'f': buf[n++] = '\f'; break;
    case '\\': buf[n++] = '\\'; break;
    case '\'': buf[n++] = '\''; break;
    case '"': buf[n++] = '"'; break;
    case 'u':
    case 'U': {
      int digits = e == 'u' ? 4 : 8;
      uint32_t cp = 0;
      for (int i = 0; i < digits; i++) {
        int h = l->p < l->end ? hexval(*l->p) : -1;
        if (h < 0) return qerr(l->q, SL_EINVAL, ST_SYNTAX, line, col, "Invalid input: bad unicode escape in string literal");
        cp = cp * 16 + (uint32_t)h;
        adv(l, 1);
      }
      char u[4];
      size_t un = sl_utf8_encode(cp, u);
      if (cp == 0) /* README, Values: the log's strings cannot hold it */
        return qerr(l->q, SL_EINVAL, ST_ARG, line, col, "A string cannot hold U+0000 (NUL) in shiplog: use bytes");
      if (!un) return qerr(l->q, SL_EINVAL, ST_SYNTAX, line, col, "Invalid input: bad unicode escape in string literal");
      memcpy(buf + n, u, un);
      n += un;
      break;
    }
    default: return qerr(l->q, SL_EINVAL, ST_SYNTAX, line, col, "Invalid input '\\%c': unknown escape in string literal", e);
    }
  }
  buf[n] = 0;
  t->type = T_STRING;
  t->str = buf;
  t->slen = n;
  return 0;
}

static int lex_number(lexer *l, qtok *t) {
  const char *s = l->p;
  bool isfloat = false;
  if (s[0] == '0' && s + 1 < l->end && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O')) {
    int base = (s[1] == 'x' || s[1] == 'X') ? 16 : 8;
    const char *p = s + 2;
    uint64_t v = 0;
    bool over = false;
    while (p < l->end && ident_char((unsigned char)*p)) {
      int h = hexval(*p);
      if (h < 0 || h >= base) return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input '%.*s': not a number", (int)(p - s + 1), s);
      if (v > (UINT64_MAX - (uint64_t)h) / (uint64_t)base) over = true;
      v = v * (uint64_t)base + (uint64_t)h;
      p++;
    }
    if (p == s + 2) /* `0x` alone */
      return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input '%.*s': expected a number", 2, s);
    t->type = T_INT;
    t->i = (int64_t)v;
    t->int_overflow = over || v > (uint64_t)INT64_MAX + 1;
    if (v == (uint64_t)INT64_MAX + 1) t->int_overflow = true; /* only valid negated; parser handles */
    adv(l, (size_t)(p - s));
    return 0;
  }
  const char *p = s;
  while (p < l->end && *p >= '0' && *p <= '9') p++;
  if (p + 1 < l->end && *p == '.' && p[1] >= '0' && p[1] <= '9') {
    isfloat = true;
    p++;
    while (p < l->end && *p >= '0' && *p <= '9') p++;
  }
  if (p < l->end && (*p == 'e' || *p == 'E')) {
    const char *q = p + 1;
    if (q < l->end && (*q == '+' || *q == '-')) q++;
    if (q < l->end && *q >= '0' && *q <= '9') {
      isfloat = true;
      p = q;
      while (p < l->end && *p >= '0' && *p <= '9') p++;
    }
  }
  if (p < l->end && ident_start((unsigned char)*p))
    return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input '%.*s': expected a number", (int)(p - s + 1), s);
  char buf[400];
  size_t n = (size_t)(p - s);
  if (n >= sizeof buf) return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "number literal too long");
  memcpy(buf, s, n);
  buf[n] = 0;
  if (isfloat) {
    t->type = T_FLOAT;
    errno = 0;
    t->d = strtod(buf, NULL);
    if (errno == ERANGE && isinf(t->d))
      return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "floating point number is too large: %s", buf);
  } else {
    t->type = T_INT;
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, 10);
    t->int_overflow = errno == ERANGE || v > (unsigned long long)INT64_MAX;
    t->i = (int64_t)v;
  }
  adv(l, n);
  return 0;
}

static int lex_ident(lexer *l, qtok *t) {
  const char *s = l->p, *p = s;
  while (p < l->end && ident_char((unsigned char)*p)) p++;
  t->type = T_IDENT;
  t->str = sl_arena_strndup(&l->q->ast, s, (size_t)(p - s));
  if (!t->str) return qerr_oom(l->q);
  t->slen = (size_t)(p - s);
  adv(l, (size_t)(p - s));
  return 0;
}

static int lex_quoted(lexer *l, qtok *t) {
  adv(l, 1);
  char *buf = sl_arena_alloc(&l->q->ast, (size_t)(l->end - l->p) + 1);
  if (!buf) return qerr_oom(l->q);
  size_t n = 0;
  for (;;) {
    if (l->p >= l->end) return qerr(l->q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Failed to parse quoted name: missing closing `");
    if (*l->p == '`') {
      if (l->p + 1 < l->end && l->p[1] == '`') {
        buf[n++] = '`';
        adv(l, 2);
        continue;
      }
      adv(l, 1);
      break;
    }
    buf[n++] = *l->p;
    adv(l, 1);
  }
  buf[n] = 0;
  t->type = T_QIDENT;
  t->str = buf;
  t->slen = n;
  return 0;
}

int q_lex(qctx *q, qtok **out, int *nout) {
  lexer l = {q, q->text, q->text + q->len, q->text, 1, 1};
  int cap = 64, n = 0;
  qtok *toks = sl_arena_alloc(&q->ast, sizeof *toks * (size_t)cap);
  if (!toks) return qerr_oom(q);
  for (;;) {
    int rc = skip_space(&l);
    if (rc) return rc;
    if (n == cap) {
      qtok *nt = sl_arena_alloc(&q->ast, sizeof *toks * (size_t)cap * 2);
      if (!nt) return qerr_oom(q);
      memcpy(nt, toks, sizeof *toks * (size_t)n);
      toks = nt;
      cap *= 2;
    }
    qtok *t = &toks[n];
    memset(t, 0, sizeof *t);
    t->line = l.line;
    t->col = l.col;
    t->s = l.p;
    if (l.p >= l.end) {
      t->type = T_EOF;
      n++;
      break;
    }
    unsigned char c = (unsigned char)*l.p;
    char c1 = l.p + 1 < l.end ? l.p[1] : 0;
    if (c == '\'' || c == '"') {
      rc = lex_string(&l, t);
    } else if (c >= '0' && c <= '9') {
      rc = lex_number(&l, t);
    } else if (c == '.' && c1 >= '0' && c1 <= '9') {
      rc = lex_number(&l, t);
    } else if (ident_start(c)) {
      rc = lex_ident(&l, t);
    } else if (c == '`') {
      rc = lex_quoted(&l, t);
    } else if (c == '$') {
      adv(&l, 1);
      if (l.p < l.end && *l.p == '`') {
        rc = lex_quoted(&l, t);
      } else if (l.p < l.end && ident_char((unsigned char)*l.p)) {
        const char *s = l.p, *p = s;
        while (p < l.end && ident_char((unsigned char)*p)) p++;
        t->str = sl_arena_strndup(&q->ast, s, (size_t)(p - s));
        if (!t->str) return qerr_oom(q);
        t->slen = (size_t)(p - s);
        adv(&l, (size_t)(p - s));
      } else {
        return qerr(q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input '$': expected a parameter name");
      }
      t->type = T_PARAM;
    } else {
      t->type = T_PUNCT;
      t->punct = c;
      size_t w = 1;
      if (c == '<' && c1 == '=') t->punct = P_LE, w = 2;
      else if (c == '>' && c1 == '=') t->punct = P_GE, w = 2;
      else if (c == '<' && c1 == '>') t->punct = P_NE, w = 2;
      else if (c == '!' && c1 == '=') t->punct = P_NE, w = 2;
      else if (c == '=' && c1 == '~') t->punct = P_REGEX, w = 2;
      else if (c == '+' && c1 == '=') t->punct = P_PLUSEQ, w = 2;
      else if (c == '.' && c1 == '.') t->punct = P_DOTDOT, w = 2;
      else if (!strchr("()[]{},.:|;+-*/%^=<>", c) || c == 0)
        return qerr(q, SL_EINVAL, ST_SYNTAX, t->line, t->col, "Invalid input '%.*s'", (int)sl_utf8_decode(l.p, (size_t)(l.end - l.p), &(uint32_t){0}) ?: 1, l.p);
      adv(&l, w);
    }
    if (rc) return rc;
    t->n = (size_t)(l.p - t->s);
    n++;
  }
  *out = toks;
  *nout = n;
  return 0;
}
