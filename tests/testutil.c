/* Shared test helpers; see testutil.h. */
#include "testutil.h"

#include "interchange.h"
#include "log.h"
#include "sl_base.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tu_tmpdir(const char *name) {
  static char buf[4096];
  const char *root = getenv("SL_TEST_TMP");
  if (!root || !*root) root = "/tmp/shiplog-test";
  mkdir(root, 0700);
  snprintf(buf, sizeof buf, "%s/%s.%d", root, name, (int)getpid());
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
  if (system(cmd) != 0) fail_msg("cannot clear %s", buf);
  if (mkdir(buf, 0700) != 0) fail_msg("mkdir %s: %s", buf, strerror(errno));
  return buf;
}

char *tu_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

uint64_t tu_seed(const char *test_name) {
  const char *env = getenv("SL_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  if (seed == 0) seed = 1;
  fprintf(stderr, "%s: seed %llu (rerun with SL_SEED=%llu)\n", test_name,
          (unsigned long long)seed, (unsigned long long)seed);
  return seed;
}

uint64_t tu_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

uint64_t tu_rand_below(uint64_t *s, uint64_t n) { return n ? tu_rand(s) % n : 0; }

void tu_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
  fputs(text, f);
  fclose(f);
}

char *tu_export(const char *dir, size_t *len) {
  sl_store *st;
  sl_view *v;
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_int_equal(sl_store_open(dir, SL_OPEN_RDONLY, &st), 0);
  assert_int_equal(sl_view_begin(st, &v), 0);
  assert_int_equal(sl_export_canonical(v, f, dir, NULL, NULL), 0);
  sl_view_end(v);
  sl_store_close(st);
  fclose(f);
  if (len) *len = n;
  return buf;
}

static void *receiver_main(void *arg) {
  tu_receiver *r = arg;
  r->rc = sl_receiver_run(&r->o, &r->stop);
  return NULL;
}

void tu_receiver_start(tu_receiver *r) {
  int p[2];
  char buf[16] = {0};
  size_t n = 0;
  r->stop = 0;
  assert_int_equal(pipe(p), 0);
  r->o.ready_fd = p[1];  /* the receiver writes "PORT\n" and closes it */
  assert_int_equal(pthread_create(&r->t, NULL, receiver_main, r), 0);
  while (n < sizeof buf - 1 && !memchr(buf, '\n', n)) {
    ssize_t k = read(p[0], buf + n, sizeof buf - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
  }
  close(p[0]);
  int port = atoi(buf);
  assert_true(port > 0);
  snprintf(r->addr, sizeof r->addr, "127.0.0.1:%d", port);
}

void tu_receiver_stop(tu_receiver *r) {
  r->stop = 1;
  assert_int_equal(pthread_join(r->t, NULL), 0);
  assert_int_equal(r->rc, 0);
}

const char *tu_shiplog_bin(void) {
  const char *b = getenv("SL_BIN");
  return (b && *b && access(b, X_OK) == 0) ? b : NULL;
}

int tu_system(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  if (st == -1) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char capture_path[4200];
static int capture_saved = -1;

void tu_capture_begin(void) {
  const char *root = getenv("SL_TEST_TMP");
  snprintf(capture_path, sizeof capture_path, "%s/stderr.%d", root && *root ? root : "/tmp", (int)getpid());
  fflush(stderr);
  int fd = open(capture_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail_msg("cannot capture stderr in %s: %s", capture_path, strerror(errno));
  capture_saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
}

char *tu_capture_end(void) {
  uint8_t *text = NULL;
  size_t len = 0;
  fflush(stderr);
  dup2(capture_saved, STDERR_FILENO);
  close(capture_saved);
  if (sl_read_file(capture_path, 1 << 24, &text, &len)) fail_msg("cannot read %s", capture_path);
  unlink(capture_path);
  char *s = malloc(len + 1);
  memcpy(s, text, len);
  s[len] = 0;
  free(text);
  return s;
}

void tu_frame_op(sl_buf *out, uint64_t txid, uint64_t commit_us, Shiplog__Op *op) {
  Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
  Shiplog__Op *ops[] = {op};
  t.txid = txid;
  t.commit_time_us = commit_us;
  t.n_ops = 1;
  t.ops = ops;
  size_t n = shiplog__transaction__get_packed_size(&t);
  assert_int_equal(sl_buf_reserve(out, out->len + SL_FRAME_HEADER_SIZE + n), 0);
  uint8_t *p = out->data + out->len;
  shiplog__transaction__pack(&t, p + SL_FRAME_HEADER_SIZE);
  sl_frame_header_encode(p + SL_FRAME_HEADER_SIZE, (uint32_t)n, p);
  out->len += SL_FRAME_HEADER_SIZE + n;
}

void tu_frame_create(sl_buf *out, uint64_t txid, uint64_t commit_us, uint64_t node, const char *label) {
  Shiplog__Op op = SHIPLOG__OP__INIT;
  Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
  char *labels[] = {(char *)label};
  cn.id = node;
  if (label) {
    cn.n_labels = 1;
    cn.labels = labels;
  }
  op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
  op.create_node = &cn;
  tu_frame_op(out, txid, commit_us, &op);
}
