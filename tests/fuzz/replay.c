/*
 * replay: runs a fuzz target's harness (linked beside this file instead of
 * libFuzzer) over every file in the directories given, so that the seed
 * corpus (tests/fuzz/corpus/NAME) and the inputs of every crash found so far
 * (tests/fuzz/regress/NAME) are checked by each ctest run, under ASan and
 * UBSan in the sanitizer build, with gcc as well as clang. A directory that
 * does not exist is skipped (a target without regressions). Exit 0 when
 * every input ran; a crash is the sanitizer's report and a non-zero exit.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int names_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file of dir, in name order; returns the count or -1. */
static long replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return errno == ENOENT ? 0 : -1;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names))) abort();
    if (!(names[n++] = strdup(e->d_name))) abort();
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, names_cmp);
  long ran = 0;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat sb;
    uint8_t *data;
    size_t len;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
      int rc = sl_read_file(path, 64u << 20, &data, &len);
      if (rc == 0) {
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        if (ran >= 0) ran++;
      } else {
        ran = -1;
      }
    }
    free(names[i]);
  }
  free(names);
  return ran;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize(&argc, &argv)) return 1;
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    long n = replay_dir(argv[i]);
    if (n < 0) rc = 1;
    else printf("replay: %ld inputs from %s\n", n, argv[i]);
  }
  return rc;
}
