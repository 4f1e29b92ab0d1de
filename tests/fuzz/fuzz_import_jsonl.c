/*
 * fuzz_import_jsonl: a JSON Lines export (canonical or APOC) as
 * `shiplog import FILE --into DIR` reads it: sl_import_jsonl writes the
 * input into one store per process, in a transaction that is aborted after
 * each input (sl__sink_borrow_store), so every input meets an empty store.
 */
#include "fuzz.h"

#include "interchange_int.h"
#include "sl_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_borrow_store("jsonl-store");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[32], into[128];
  int fd = fuzz_memfile(data, size, path);
  if (fd < 0) return 0;
  snprintf(into, sizeof into, "%s/jsonl-store", fuzz_scratch());
  sl_import_options o = {.ops_per_tx = 64};
  sl_import_jsonl(path, into, &o, NULL);
  close(fd);
  return 0;
}
