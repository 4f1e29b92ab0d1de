/*
 * lmdb_damage: damage one B-tree page of a store's data.mdb the way a bad
 * disk or a stray write would, for the tests of damaged stores
 * (test_damage.c, e2e_ship.sh). It reads LMDB's own layout (liblmdb 0.9,
 * 64-bit; store.c describes the meta page): the newest of the two meta
 * pages gives the main tree's root, whose leaf holds one record (an MDB_db)
 * per named database; that gives the database's root.
 *
 *   lmdb_damage FILE DB leaf   zero the page flags of DB's rightmost leaf:
 *                              LMDB reports MDB_CORRUPTED ("Located page
 *                              was wrong type") whenever it reaches it
 *   lmdb_damage FILE DB swap   swap the child pointers of entries 1 and 2
 *                              of DB's root branch page: every page stays
 *                              well-formed and LMDB reports nothing, but a
 *                              walk meets keys out of order and lookups
 *                              miss keys that are there
 *
 * Exit 0 when damaged, 1 with a message otherwise (the database too small
 * for the mode, a file it does not understand).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define META_TXNID 144
#define META_MAIN_ROOT (16 + 4 + 4 + 8 + 8 + 48 + 40)
#define META_PSIZE (16 + 4 + 4 + 8 + 8) /* md_pad of the free-page db */
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define F_SUBDATA 0x02
#define NODE_HDR 8
#define DB_ROOT 40

static int fd;
static unsigned psize;
static uint8_t *page;

static void die(const char *msg) {
  fprintf(stderr, "lmdb_damage: %s\n", msg);
  exit(1);
}

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void read_page(uint64_t pg) {
  if (pread(fd, page, psize, (off_t)(pg * psize)) != (ssize_t)psize) die("cannot read a page");
}
static void write_page(uint64_t pg) {
  if (pwrite(fd, page, psize, (off_t)(pg * psize)) != (ssize_t)psize || fsync(fd)) die("cannot write the page");
}
static unsigned nkeys(void) { return (unsigned)(u16(page + 12) - 16) / 2; }
static uint8_t *node(unsigned i) { return page + u16(page + 16 + 2 * i); }
static uint64_t child(const uint8_t *n) { return u16(n) | (uint64_t)u16(n + 2) << 16 | (uint64_t)u16(n + 4) << 32; }

int main(int argc, char **argv) {
  if (argc != 4) die("usage: lmdb_damage FILE DB leaf|swap");
  if ((fd = open(argv[1], O_RDWR)) < 0) die("cannot open the file");
  uint8_t m0[160], m1[160];
  if (pread(fd, m0, sizeof m0, 0) != sizeof m0) die("no meta page");
  memcpy(&psize, m0 + META_PSIZE, 4);
  if (psize < 512 || psize > 65536) die("not an LMDB file");
  if (pread(fd, m1, sizeof m1, psize) != sizeof m1) die("no second meta page");
  const uint8_t *m = u64(m1 + META_TXNID) > u64(m0 + META_TXNID) ? m1 : m0;
  if (!(page = malloc(psize))) die("out of memory");

  read_page(u64(m + META_MAIN_ROOT));
  if (!(u16(page + 10) & P_LEAF)) die("the main tree is not one leaf");
  uint64_t root = UINT64_MAX;
  for (unsigned i = 0; i < nkeys(); i++) {
    uint8_t *n = node(i);
    if ((u16(n + 4) & F_SUBDATA) && u16(n + 6) == strlen(argv[2]) && !memcmp(n + NODE_HDR, argv[2], u16(n + 6)))
      root = u64(n + NODE_HDR + u16(n + 6) + DB_ROOT);
  }
  if (root == UINT64_MAX) die("no such database, or it is empty");

  read_page(root);
  if (!strcmp(argv[3], "leaf")) {
    uint64_t pg = root;
    while (u16(page + 10) & P_BRANCH) {
      pg = child(node(nkeys() - 1));
      read_page(pg);
    }
    page[10] = page[11] = 0;
    write_page(pg);
  } else if (!strcmp(argv[3], "swap")) {
    if (!(u16(page + 10) & P_BRANCH) || nkeys() < 3) die("the database's root is not a branch of 3 or more");
    uint8_t a[6], *n1 = node(1), *n2 = node(2);
    memcpy(a, n1, 6);
    memcpy(n1, n2, 6);
    memcpy(n2, a, 6);
    write_page(root);
  } else {
    die("the mode is leaf or swap");
  }
  free(page);
  close(fd);
  return 0;
}
