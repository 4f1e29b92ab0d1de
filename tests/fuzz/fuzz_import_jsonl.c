/*
 * fuzz_import_jsonl: a JSON Lines export (canonical or APOC) as
 * `shiplog import FILE --into DIR` reads it: sl_import_jsonl builds a new
 * store from the input, which is removed after each run (a failed import
 * removes it itself).
 */
#include "fuzz.h"

#include "interchange.h"
#include "sl_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[32], into[128];
  int fd = fuzz_memfile(data, size, path);
  if (fd < 0) return 0;
  snprintf(into, sizeof into, "%s/jsonl-store", fuzz_scratch());
  sl_import_options o = {.ops_per_tx = 64};
  sl_import_jsonl(path, into, &o, NULL);
  sl_remove_tree(into);
  close(fd);
  return 0;
}
