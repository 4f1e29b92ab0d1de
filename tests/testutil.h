/*
 * Helpers shared by the cmocka tests: OK/ERR checks that name the error
 * (sl_errname), scratch directories under $SL_TEST_TMP (the build tree's
 * testtmp/ when run by ctest), a printed, replayable random seed
 * (SL_SEED=N reruns a failure), a log frame builder, and the path of the
 * shiplog binary for tests that start real processes.
 */
#ifndef SL_TESTUTIL_H
#define SL_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "codec.h"
#include "receiver.h"
#include "sl_base.h"
#include "transaction.pb-c.h"

/* expr returns 0; a failure names the call, the file:line and the error. */
#define OK(expr)                                                                                       \
  do {                                                                                                 \
    int rc_ = (expr);                                                                                  \
    if (rc_ != 0) fail_msg("%s:%d: %s -> %s (%d)", __FILE__, __LINE__, #expr, sl_errname(rc_), rc_); \
  } while (0)
/* expr returns exactly code (0 included). */
#define ERR(code, expr)                                                                                \
  do {                                                                                                 \
    int rc_ = (expr), want_ = (code);                                                                  \
    if (rc_ != want_)                                                                                  \
      fail_msg("%s:%d: %s -> %s, expected %s", __FILE__, __LINE__, #expr, sl_errname(rc_),             \
               sl_errname(want_));                                                                     \
  } while (0)

/* A fresh empty directory (removed first if it exists); returns a static
 * buffer that stays valid until the next call in the process. */
const char *tu_tmpdir(const char *name);
/* Copy a path into a malloc'd "DIR/NAME" string. */
char *tu_path(const char *dir, const char *name);

/* Seed for randomized tests: $SL_SEED or time-based; printed once. */
uint64_t tu_seed(const char *test_name);
/* xorshift64*; state must be non-zero. */
uint64_t tu_rand(uint64_t *state);
/* Uniform in [0, n). */
uint64_t tu_rand_below(uint64_t *state, uint64_t n);

/* $SL_BIN (the shiplog binary) or NULL; tests that need it skip (77). */
const char *tu_shiplog_bin(void);
/* Run a shell command, return its exit status (-1 on failure to run). */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write text to path (created or truncated). */
void tu_write_file(const char *path, const char *text);
/* The canonical export (spec/export.md) of the store in dir, opened
 * read-only, as a malloc'd string; *len (may be NULL) gets its length. */
char *tu_export(const char *dir, size_t *len);

/* A receiver in a thread of the test process (sl_receiver_run). */
typedef struct tu_receiver {
  pthread_t t;
  atomic_int stop;
  int rc;                  /* what sl_receiver_run returned */
  sl_receiver_options o;   /* set by the test; ready_fd is set by start */
  char dir[4096];          /* room for its data directory's path */
  char allow[4200];        /* room for its --allow file's path */
  char addr[64];           /* "127.0.0.1:PORT" once it listens */
} tu_receiver;
/* Run r->o in a thread and return once it listens (port 0 allowed). */
void tu_receiver_start(tu_receiver *r);
/* Ask it to stop, join it, and assert it returned 0. */
void tu_receiver_stop(tu_receiver *r);

/* stderr into a scratch file between begin and end; end returns what was
 * written (malloc'd, NUL-terminated). Not nested. */
void tu_capture_begin(void);
char *tu_capture_end(void);

/* Append to out the log frame (store/log.h: frame header, then the packed
 * Transaction) of transaction txid, committed at commit_us, holding op. */
void tu_frame_op(sl_buf *out, uint64_t txid, uint64_t commit_us, Shiplog__Op *op);
/* The same with one op: create node `node` with label (NULL: no label). */
void tu_frame_create(sl_buf *out, uint64_t txid, uint64_t commit_us, uint64_t node, const char *label);

/* Exit status that ctest counts as "skipped". */
#define TU_SKIP 77

#endif
