/*
 * query: Cypher over the store (spec/query.md). The application-facing API
 * (sl_qtx_*, sl_qcursor_*, the sl_qvalue model) is declared in
 * include/shiplog.h; this header adds what shiplog's own modules use: the
 * statement splitter and the cypher-shell script runner that `shiplog query`
 * and `shiplog exec --cypher` call.
 *
 * Inside (query_int.h has the details): lexer -> recursive-descent parser
 * (AST, variables resolved to row slots, semantic checks) -> planner (one
 * pull operator per clause) -> executor; expressions in eval.c; the pattern
 * matcher in match.c; writes through sl_tx_* in write.c. Reads go through
 * an sl_view (sl_tx_view inside a write transaction). With an sl_qcache in
 * the options, a text parsed before is taken from it (cache.c).
 *
 * LIMITS (sl_query_options): time per statement, memory per statement
 * (every arena the statement holds: rows kept for sorting, aggregation,
 * DISTINCT, eager writes, collected lists), variable-length hops
 * (SL_QUERY_MAX_HOPS unless set). Past them a statement fails with Neo4j's
 * status code and the process goes on.
 *
 * THREADS: a query transaction belongs to one thread at a time; different
 * transactions may run in different threads.
 */
#ifndef SL_QUERY_H
#define SL_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shiplog.h"

/* ---- statements in a text ---------------------------------------------------------------- */
/* The next statement of text[*pos..len): skips blanks and comments, ends
 * at a ';' outside strings, quoted names and comments (the ';' is not part
 * of it). start, slen: the statement (0 length: none left); *line, *col:
 * where it starts (1-based, counted from the text's start). *pos moves
 * past the ';'. */
void sl_query_next_statement(const char *text, size_t len, size_t *pos, size_t *start, size_t *slen, unsigned *line,
                             unsigned *col);

/* ---- cypher-shell scripts ------------------------------------------------------------------- */
/* Called for each statement's cursor (after it ran, before its rows are
 * pulled): the callback pulls and prints them (or not) and returns 0, or a
 * negative code to stop the script (err filled by sl_qcursor_next). */
typedef int (*sl_script_rows_fn)(void *arg, sl_qcursor *c, sl_query_error *err);

typedef struct sl_script_result {
  uint64_t statements;   /* statements run */
  uint64_t committed;    /* transactions committed */
  uint64_t last_txid;    /* of the last commit that wrote, or 0 */
} sl_script_result;

/* Run a cypher-shell script (spec/query.md): statements end with ';';
 * `:begin` ... `:commit` make one transaction (`:rollback` drops it); a
 * statement outside them is a transaction of its own; `:param name => expr`
 * / `:param name: expr` and `:params {map}` set parameters (evaluated as
 * Cypher expressions); `//` comments and blank lines are skipped; other
 * client commands (`:use`, `:source`, ...) are refused. The first failure
 * stops the script: "NAME:LINE:COL: Neo4j code: message" on stderr (LINE
 * and COL in the file), plus how many transactions committed before it;
 * the open transaction is rolled back. Returns 0, SL_EINVAL (a statement
 * failed) or the error's code; res (may be NULL) is filled in every case.
 * read_only: the store is open read-only (statements that write are
 * refused, opt->read_only_reason says why). */
int sl_query_script(sl_store *st, bool read_only, const char *text, size_t len, const char *name,
                    const sl_query_options *opt, const sl_qparam *params, size_t nparams, sl_script_rows_fn rows,
                    void *rows_arg, sl_script_result *res);

#endif
