/*
 * fuzz_dump: a backup file (store/dump.h) as `shiplog load` and
 * `dump --chain` read it: sl_dump_open (header), then every record through
 * sl_dump_next until the trailer or the first damage, then the reader read
 * again from the start (sl_dump_rewind), as --onto does.
 */
#include "fuzz.h"

#include "dump.h"
#include "sl_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

static void read_all(sl_dump_reader *r) {
  sl_dump_record rec;
  while (sl_dump_next(r, &rec) == 0) {
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[32];
  int fd = fuzz_memfile(data, size, path);
  if (fd < 0) return 0;
  sl_dump_reader *r;
  if (sl_dump_open(path, &r) == 0) {
    read_all(r);
    if (sl_dump_rewind(r) == 0) read_all(r);
    sl_dump_close(r);
  }
  close(fd);
  return 0;
}
