/*
 * Shared by the libFuzzer targets in tests/fuzz/ (built with -DSL_FUZZ=ON by
 * clang only; tests/fuzz/run.sh runs them). Each target feeds one decoder of
 * bytes that come from a file or a socket. A target must not leak, must
 * not keep state between inputs that changes what an input does, and must
 * accept any input: the decoders' own errors are the expected outcome.
 */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sl_base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A file holding data for decoders that take a path: a memfd, named by
 * /proc/self/fd/N (path must hold 32 bytes). Returns the fd (close it after
 * use) or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path) {
  int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < size) {
    ssize_t n = write(fd, data + off, size - off);
    if (n <= 0) {
      close(fd);
      return -1;
    }
    off += (size_t)n;
  }
  snprintf(path, 32, "/proc/self/fd/%d", fd);
  return fd;
}

/* fuzz_sealed's key file line and store id; seeds.c seals its seeds with them. */
#define FUZZ_SEALED_KEY "fz 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define FUZZ_SEALED_STORE_ID {0xf0, 0x22}

/* A scratch directory for targets that build stores (made once per
 * process): in /dev/shm where there is one, since every store created
 * fsyncs, which costs nothing in memory. */
static char fuzz_scratch_dir[64];
static inline void fuzz_scratch_remove(void) { sl_remove_tree(fuzz_scratch_dir); }
static inline const char *fuzz_scratch(void) {
  if (!fuzz_scratch_dir[0]) {
    snprintf(fuzz_scratch_dir, sizeof fuzz_scratch_dir, "%s/shiplog-fuzz.XXXXXX",
             access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
    if (!mkdtemp(fuzz_scratch_dir)) abort();
    atexit(fuzz_scratch_remove);
  }
  return fuzz_scratch_dir;
}

/* For the import targets: one empty store per process that every import
 * writes into, in a transaction aborted after each input (creating a store
 * per input made them ~5x slower). Needs interchange_int.h. */
#define fuzz_borrow_store(name)                                                         \
  do {                                                                                  \
    char dir_[128];                                                                     \
    sl_store *st_;                                                                      \
    snprintf(dir_, sizeof dir_, "%s/%s", fuzz_scratch(), name);                         \
    if (sl_store_create(dir_, NULL) || sl_store_open(dir_, 0, &st_)) abort();           \
    sl__sink_borrow_store(st_);                                                         \
  } while (0)

#endif
