/*
 * The sink every importer writes through: a new store, filled in
 * transactions of ops_per_tx ops, and removed again when the import fails,
 * so that a failed import leaves nothing behind (spec/cli.md).
 *
 * Why batches: one transaction per entity would cost one group-commit
 * fdatasync each; one transaction for the whole file would hold every op of
 * it in memory. A batch commits durably before the next one starts, and a
 * failure anywhere throws all batches away with the directory.
 */
#include <sys/stat.h>

#include "interchange_int.h"
#include "sl_base.h"

static sl_store *borrowed_store;

void sl__sink_borrow_store(sl_store *st) { borrowed_store = st; }

int sl__sink_open(sl__sink *s, const char *dir, const sl_store_options *opt, uint64_t ops_per_tx) {
  struct stat sb;
  if (borrowed_store) {
    *s = (sl__sink){.dir = dir, .st = borrowed_store, .borrowed = true, .ops_per_tx = UINT64_MAX};
    return 0;
  }
  *s = (sl__sink){.dir = dir, .ops_per_tx = ops_per_tx ? ops_per_tx : 1};
  s->existed = stat(dir, &sb) == 0;
  int rc = sl_store_create(dir, opt);
  if (rc) {
    sl_diag_error("%s: cannot create a store: %s", dir, sl_strerror(rc));
    return rc;
  }
  s->created = true;
  if ((rc = sl_store_open(dir, 0, &s->st))) sl_diag_error("%s: cannot open the new store: %s", dir, sl_strerror(rc));
  return rc;
}

int sl__sink_tx(sl__sink *s, sl_tx **tx) {
  int rc = 0;
  if (!s->tx) rc = sl_tx_begin(s->st, &s->tx);
  *tx = s->tx;
  return rc;
}

int sl__sink_op_done(sl__sink *s) {
  if (++s->ops_in_tx < s->ops_per_tx) return 0;
  sl_tx *tx = s->tx;
  s->tx = NULL;
  s->ops_in_tx = 0;
  return sl_tx_commit(tx, NULL);
}

int sl__sink_close(sl__sink *s, int rc) {
  if (s->borrowed) {
    if (s->tx) sl_tx_abort(s->tx);
    *s = (sl__sink){0};
    return rc;
  }
  if (!rc && s->tx) {
    sl_tx *tx = s->tx;
    s->tx = NULL;
    if ((rc = sl_tx_commit(tx, NULL))) sl_diag_error("%s: commit: %s", s->dir, sl_strerror(rc));
  }
  if (s->tx) sl_tx_abort(s->tx);
  s->tx = NULL;
  if (s->st) sl_store_close(s->st);
  s->st = NULL;
  if (rc && s->created) {
    int rm = sl_remove_tree(s->dir);
    if (rm)
      sl_diag_error("%s: cannot remove the partial store: %s", s->dir, sl_strerror(rm));
    else if (s->existed)
      sl_mkdir_p(s->dir);
  }
  s->created = false;
  return rc;
}
