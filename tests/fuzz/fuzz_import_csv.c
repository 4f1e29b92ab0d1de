/*
 * fuzz_import_csv: neo4j-admin CSV files as `shiplog import --nodes=...
 * --relationships=... --into DIR` reads them: sl_import_csv builds a new
 * store (one store per process: each input runs in a transaction that is
 * aborted, sl__sink_borrow_store). Input: the nodes file, then optionally a
 * line "\x01\n" and the relationships file; the first byte's bits choose
 * options (multiline fields, integer ids, skip bad relationships, skip
 * duplicate nodes, ignore extra columns, ignore empty strings, trim).
 */
#include "fuzz.h"

#include <string.h>

#include "interchange_int.h"
#include "sl_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_borrow_store("csv-store");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t bits = data[0];
  data++;
  size--;
  const uint8_t *sep = memmem(data, size, "\x01\n", 2);
  size_t nlen = sep ? (size_t)(sep - data) : size;
  char npath[32], rpath[32], into[128];
  int nfd = fuzz_memfile(data, nlen, npath), rfd = -1;
  if (nfd < 0) return 0;
  if (sep && (rfd = fuzz_memfile(sep + 2, size - nlen - 2, rpath)) < 0) {
    close(nfd);
    return 0;
  }
  const char *nfiles[] = {npath}, *rfiles[] = {rpath};
  const char *labels[] = {"L"};
  sl_csv_source nodes = {.files = nfiles, .nfiles = 1, .labels = labels, .nlabels = bits & 0x80 ? 1 : 0};
  sl_csv_source rels = {.files = rfiles, .nfiles = 1, .type = bits & 0x80 ? "T" : NULL};
  sl_csv_options o = {
      .multiline_fields = bits & 1,
      .id_type = bits & 2 ? SL_CSV_ID_INTEGER : SL_CSV_ID_STRING,
      .skip_bad_relationships = bits & 4,
      .skip_duplicate_nodes = bits & 8,
      .ignore_extra_columns = bits & 16,
      .ignore_empty_strings = bits & 32,
      .trim_strings = bits & 64,
      .ops_per_tx = 64,
  };
  snprintf(into, sizeof into, "%s/csv-store", fuzz_scratch());
  sl_import_csv(&nodes, 1, &rels, rfd >= 0 ? 1 : 0, into, &o, NULL);
  close(nfd);
  if (rfd >= 0) close(rfd);
  return 0;
}
