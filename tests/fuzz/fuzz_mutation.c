/*
 * fuzz_mutation: mutation lines (spec/mutations.md) as `shiplog exec` reads
 * them: each line of the input is parsed and applied by sl_mutation_apply
 * in a transaction of an empty store, which is then aborted, so every input
 * meets the same empty graph (a line may create what its later ops use).
 */
#include "fuzz.h"

#include <string.h>

#include "interchange.h"
#include "sl_base.h"
#include "store.h"

static sl_store *st;
static sl_mutation_line ml;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/mutation-store", fuzz_scratch());
  if (sl_store_create(dir, NULL) || sl_store_open(dir, 0, &st)) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)((nl ? nl : end) - p);
    sl_tx *tx;
    if (sl_tx_begin(st, &tx)) abort();
    sl_mutation_apply(tx, p, len, &ml);
    sl_tx_abort(tx);
    p += len + 1;
  }
  return 0;
}
