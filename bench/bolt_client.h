/*
 * A small Bolt client for the benches (bench/bolt.c): what a Neo4j driver
 * does on one connection, without pools or routing. It speaks Bolt 5.4
 * (4.4 as a fallback), logs in with scheme "none" (a server run with
 * --no-auth / --bolt-no-auth), and sends each request group in one write
 * (pipelined, as the drivers do): RUN + PULL for an autocommit query,
 * BEGIN + RUN + PULL + COMMIT for an explicit transaction. Messages are
 * encoded and framed with bolt/'s own PackStream and chunk code.
 *
 * A failed request leaves the connection READY again (the client sends
 * RESET); the server's code and message are in bolt_client_error.
 * One thread per client.
 */
#ifndef SL_BENCH_BOLT_CLIENT_H
#define SL_BENCH_BOLT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "bolt.h"

typedef struct bolt_client bolt_client;

/* What one request group returned. */
typedef struct bolt_result {
  uint64_t rows;           /* RECORDs received */
  char bookmark[128];      /* the commit's bookmark ("" for a read) */
} bolt_result;

/* Connect to HOST:PORT, handshake, HELLO (+ LOGON from 5.1 on). Errors:
 * -errno (connect), SL_EVERSION (no common version), SL_EAUTH (login
 * refused), SL_ECORRUPT (an answer that is no Bolt); the reason in why. */
int bolt_client_connect(const char *hostport, bolt_client **out, char *why, size_t whylen);
void bolt_client_close(bolt_client *c);
/* The version chosen in the handshake (SL_BOLT_V). */
uint16_t bolt_client_version(const bolt_client *c);

/* An autocommit query: RUN + PULL all, in one write. db: NULL for the
 * server's default; read_only sends mode "r"; bookmark (NULL or "") makes
 * the server wait until it has applied it. params: a MAP or NULL. Returns
 * 0, 1 (the server answered FAILURE: bolt_client_error), or a negative
 * code (the connection is broken). */
int bolt_client_run(bolt_client *c, const char *db, bool read_only, const char *bookmark, const char *query,
                    const sl_pack *params, bolt_result *res);
/* The same query in an explicit write transaction: BEGIN + RUN + PULL +
 * COMMIT in one write; the result's bookmark is COMMIT's. */
int bolt_client_tx(bolt_client *c, const char *db, const char *query, const sl_pack *params, bolt_result *res);
/* "Neo.ClientError...: message" of the last FAILURE, or the last local error. */
const char *bolt_client_error(const bolt_client *c);

#endif
