/*
 * bench_dump: how fast `shiplog dump` writes a full backup file and `shiplog
 * load` reads it back, against a plain copy of the same store's LMDB file
 * measured in the same run.
 *
 * USAGE
 *   bench_dump [--dir DIR] [--mb N] [--rounds R]
 *
 *   --dir DIR    where the scratch store and files go (default $TMPDIR, else
 *                /tmp); use the disk you care about.
 *   --mb N       size of the store's data.mdb to build, in MiB (default 200).
 *   --rounds R   measurements of each kind, alternating (default 3); the
 *                best of each is reported, with the range.
 *
 * WHAT IT MEASURES
 *   The store is built once with transactions of a few thousand ops: nodes
 *   with 1-2 labels and 3-4 properties (ints, doubles, names and sentences
 *   drawn from small vocabularies, as real graphs compress), relationships
 *   between recent nodes with a property. It is closed, so data.mdb holds
 *   only the pages in use. Then, R times, in turn:
 *     copy  read data.mdb with 1 MiB read()s, write a copy with 1 MiB
 *           write()s, fdatasync, close: what any file-level backup costs;
 *     dump  open the store read-only, sl_dump_full into a new file,
 *           fdatasync, close (what `shiplog dump STORE --to FILE` does);
 *   each once with data.mdb in the page cache ("cached": the build just
 *   wrote it) and once after dropping its pages (POSIX_FADV_DONTNEED, "from
 *   disk": a store larger than memory, or a backup at night); then
 *     load  sl_load_full of the dump into a new directory (LMDB appends,
 *           a checkpoint sync, rename).
 *   Rates are data.mdb bytes per second for all of them, so they compare
 *   directly: the dump does the same job as the copy (the store, made
 *   durable in one file). The target is dump >= 90% of copy. A cached copy
 *   costs little CPU, while a dump walks every key and compresses it, so on
 *   a machine whose disk absorbs writes at memory speed the cached ratio
 *   shows the CPU cost; the from-disk ratio is the one a real backup sees.
 *   Nothing here asserts on times: shared machines vary by 30-60% between
 *   runs; compare within one run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "dump.h"
#include "sl_base.h"
#include "store.h"

#define OPS_PER_TX 4000
#define IO_BUF (1u << 20)

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_dump: %s: %s\n", what, sl_strerror(rc));
  exit(1);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const char *const words[] = {"graph", "node", "edge", "shipping", "log", "store", "replica", "backup",
                                    "durable", "commit", "query", "person", "forum", "post", "tag", "likes"};
static const char *const first_names[] = {"Ann", "Bo", "Chen", "Dara", "Emil", "Fatima", "Goran", "Hana",
                                          "Ivan", "Jun", "Kofi", "Lena", "Mateo", "Noor", "Olga", "Pavel"};
static const char *const label_names[] = {"Person", "Post", "Comment", "Forum", "Tag"};

static uint64_t used_bytes(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* Build a store whose data.mdb holds about `target` bytes. */
static void build(const char *dir, const char *mdb, uint64_t target) {
  sl_store *st;
  int rc;
  if ((rc = sl_store_create(dir, NULL)) || (rc = sl_store_open(dir, 0, &st))) die(dir, rc);
  uint64_t nodes = 0, t0 = sl_mono_ns();
  char text[256], name[64];
  for (int tx_no = 0; used_bytes(mdb) < target; tx_no++) {
    sl_tx *tx;
    if ((rc = sl_tx_begin(st, &tx))) die("begin", rc);
    for (int i = 0; i < OPS_PER_TX; i++) {
      if (nodes < 16 || rnd() % 3) {
        int n = 0;
        for (int w = 0, k = 4 + (int)(rnd() % 12); w < k; w++)
          n += snprintf(text + n, sizeof text - (size_t)n, "%s%s", w ? " " : "", words[rnd() % 16]);
        snprintf(name, sizeof name, "%s %s", first_names[rnd() % 16], first_names[rnd() % 16]);
        const char *ls[2] = {label_names[rnd() % 5], "Active"};
        sl_prop props[4] = {
            {"name", {.kind = SL_STRING, .len = strlen(name), .u.s = name}},
            {"score", {.kind = SL_INT, .u.i = (int64_t)(rnd() % 100000)}},
            {"text", {.kind = SL_STRING, .len = (size_t)n, .u.s = text}},
            {"weight", {.kind = SL_DOUBLE, .u.d = (double)(rnd() % 1000) / 8.0}},
        };
        if ((rc = sl_tx_create_node(tx, SL_ID_NEW, ls, 1 + rnd() % 2, props, 3 + rnd() % 2, NULL))) die("create node", rc);
        nodes++;
      } else {
        uint64_t a = nodes - rnd() % SL_MIN(nodes, 5000), b = nodes - rnd() % SL_MIN(nodes, 5000);
        sl_prop p = {"since", {.kind = SL_INT, .u.i = 2000 + (int64_t)(rnd() % 25)}};
        if ((rc = sl_tx_create_rel(tx, SL_ID_NEW, rnd() % 2 ? "KNOWS" : "LIKES", a, b, &p, 1, NULL))) die("create rel", rc);
      }
    }
    if ((rc = sl_tx_commit(tx, NULL))) die("commit", rc);
  }
  sl_store_close(st);
  printf("built %s: %.1f MiB data.mdb, %" PRIu64 " nodes, in %.1f s\n", dir, (double)used_bytes(mdb) / (1 << 20), nodes,
         (double)(sl_mono_ns() - t0) / 1e9);
}

/* Drop data.mdb's pages from the page cache (it is clean after the build). */
static void evict(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) die("evict", -errno);
  close(fd);
}

static double plain_copy(const char *from, const char *to) {
  uint8_t *buf = malloc(IO_BUF);
  uint64_t t0 = sl_mono_ns();
  int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (in < 0 || out < 0 || !buf) die("copy: open", -errno);
  for (;;) {
    ssize_t n = read(in, buf, IO_BUF);
    if (n < 0) die("copy: read", -errno);
    if (n == 0) break;
    int rc = sl_write_all(out, buf, (size_t)n);
    if (rc) die("copy: write", rc);
  }
  if (fdatasync(out)) die("copy: fdatasync", -errno);
  close(in);
  close(out);
  free(buf);
  return (double)(sl_mono_ns() - t0) / 1e9;
}

static double dump(const char *dir, const char *to, sl_dump_info *info) {
  uint64_t t0 = sl_mono_ns();
  sl_store *st;
  int rc = sl_store_open(dir, SL_OPEN_RDONLY, &st);
  if (rc) die(dir, rc);
  int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) die(to, -errno);
  if ((rc = sl_dump_full(st, fd, NULL, info))) die("dump", rc);
  if (fdatasync(fd)) die("dump: fdatasync", -errno);
  close(fd);
  sl_store_close(st);
  return (double)(sl_mono_ns() - t0) / 1e9;
}

static double load(const char *file, const char *into) {
  sl_remove_tree(into);
  uint64_t t0 = sl_mono_ns();
  int rc = sl_load_full(file, into, NULL, NULL);
  if (rc) die("load", rc);
  return (double)(sl_mono_ns() - t0) / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: bench_dump [--dir DIR] [--mb N] [--rounds R]\n");
  exit(2);
}

typedef struct stat3 {
  double best, worst;
} stat3;

static void note(stat3 *s, double mbps) {
  if (mbps > s->best) s->best = mbps;
  if (!s->worst || mbps < s->worst) s->worst = mbps;
}

int main(int argc, char **argv) {
  const char *base = getenv("TMPDIR");
  uint64_t mb = 200, rounds = 3;
  if (!base || !*base) base = "/tmp";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") || i + 1 >= argc) usage();
    const char *f = argv[i], *v = argv[++i];
    char *end;
    if (!strcmp(f, "--dir")) {
      base = v;
    } else if (!strcmp(f, "--mb")) {
      mb = strtoull(v, &end, 10);
      if (*end || !mb) usage();
    } else if (!strcmp(f, "--rounds")) {
      rounds = strtoull(v, &end, 10);
      if (*end || !rounds) usage();
    } else {
      usage();
    }
  }
  char root[4096], dir[4200], mdb[4300], copy[4200], file[4200], into[4200];
  snprintf(root, sizeof root, "%s/bench_dump.%d", base, (int)getpid());
  snprintf(dir, sizeof dir, "%s/store", root);
  snprintf(mdb, sizeof mdb, "%s/data.mdb", dir);
  snprintf(copy, sizeof copy, "%s/copy.mdb", root);
  snprintf(file, sizeof file, "%s/store.dump", root);
  snprintf(into, sizeof into, "%s/loaded", root);
  int rc = sl_mkdir_p(root);
  if (rc) die(root, rc);
  struct statfs sfs;
  if (statfs(root, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
    printf("note: %s is on tmpfs: fdatasync is free, so these are CPU figures\n", root);

  build(dir, mdb, mb << 20);
  struct stat sb;
  if (stat(mdb, &sb)) die(mdb, -errno);
  double size = (double)sb.st_size / (1 << 20);
  stat3 c = {0}, d = {0}, cc = {0}, dc = {0}, l = {0};
  sl_dump_info info = {0};
  for (uint64_t r = 0; r < rounds; r++) {
    unlink(copy);
    unlink(file);
    note(&c, size / plain_copy(mdb, copy));
    unlink(copy);
    note(&d, size / dump(dir, file, &info));
    unlink(file);
    evict(mdb);
    note(&cc, size / plain_copy(mdb, copy));
    unlink(copy);
    evict(mdb);
    note(&dc, size / dump(dir, file, &info));
    note(&l, size / load(file, into));
  }
  printf("data.mdb %.1f MiB; dump file %.1f MiB (records %.1f MiB, %" PRIu64 " key/values, lz4 %.0f%%)\n", size,
         (double)info.file_bytes / (1 << 20), (double)info.raw_bytes / (1 << 20), info.records,
         100.0 * (double)info.file_bytes / (double)info.raw_bytes);
  printf("%-34s %8s %8s   (data.mdb MiB/s, best and worst of %" PRIu64 ")\n", "", "best", "worst", rounds);
  printf("%-34s %8.1f %8.1f\n", "plain copy + fdatasync, cached", c.best, c.worst);
  printf("%-34s %8.1f %8.1f\n", "dump (full) + fdatasync, cached", d.best, d.worst);
  printf("%-34s %8.1f %8.1f\n", "plain copy + fdatasync, from disk", cc.best, cc.worst);
  printf("%-34s %8.1f %8.1f\n", "dump (full) + fdatasync, from disk", dc.best, dc.worst);
  printf("%-34s %8.1f %8.1f\n", "load (full)", l.best, l.worst);
  printf("dump / plain copy: %.0f%% cached, %.0f%% from disk (target >= 90%%)\n", 100.0 * d.best / c.best,
         100.0 * dc.best / cc.best);
  sl_remove_tree(root);
  return 0;
}
