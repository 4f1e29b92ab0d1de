/*
 * Helpers shared by the store tests (test_store.c, test_store_model.c,
 * test_store_recovery.c; linked into those alone): scratch directories,
 * short forms of common calls, walk collectors, and comparing two stores
 * entity by entity (also against a replay of one's log). Each checks with
 * cmocka and stops the test on the first failure.
 */
#ifndef SL_STORE_HELPERS_H
#define SL_STORE_HELPERS_H

#include "testutil.h"

#include "sl_base.h"
#include "store.h"
#include "transaction.pb-c.h"

/* A fresh scratch directory (malloc'd path); done_dir removes it once the
 * test passed (failures leave theirs) and frees the path. */
char *new_dir(const char *name);
void done_dir(char *dir);
/* "DIR/NAME", malloc'd. */
char *sub(const char *dir, const char *name);
/* sl_store_create then sl_store_open (flags 0). */
sl_store *create_open(const char *dir, const sl_store_options *o);

sl_value vint(int64_t i);
sl_value vstr(const char *s); /* s must outlive the value */
sl_counts counts_of(sl_store *st);
/* sl_tx_commit that must succeed; returns the txid (0: nothing logged). */
uint64_t commit(sl_tx *tx);

/* ---- collecting walk results ---- */
typedef struct ids {
  uint64_t *v;
  size_t n, cap;
} ids;
/* An sl_view_all_nodes / all_rels callback appending to the ids at arg. */
int push_id(void *arg, uint64_t id);

typedef struct relrec {
  uint64_t id, start, end;
  char type[SL_NAME_MAX + 1];
} relrec;
typedef struct rels {
  relrec *v;
  size_t n, cap;
} rels;
/* An sl_view_node_rels callback appending to the rels at arg. */
int push_rel(void *arg, uint64_t id, const char *type, uint64_t start, uint64_t end);
/* The relationships of node in dir (of type, NULL: any); free .v. */
rels walk(sl_view *v, uint64_t node, sl_dir dir, const char *type);

/* ---- comparing two stores entity by entity ---- */
void compare_views(sl_view *a, sl_view *b);
void compare_stores(sl_store *x, sl_store *y);
/* Replay the whole log of `logdir` into a new no-log store at `dir` with
 * sl_store_apply_batch; returns the open store. *seconds (may be NULL) gets
 * the time spent applying. */
sl_store *replay_into(const char *logdir, const char *dir, double *seconds);
/* Replay st's log into a scratch store `name` and compare the two. */
void compare_with_replay(sl_store *st, const char *name);

/* Pack into buf a Transaction txid committed at us holding ops[0..n);
 * returns its length. */
size_t pack_tx(uint64_t txid, uint64_t us, Shiplog__Op **ops, size_t n, uint8_t *buf);

#endif
