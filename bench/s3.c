/*
 * bench_s3: the off-site archive in object storage (receiver/s3.h) against
 * a real S3 server, with the baselines measured in the same run.
 *
 * USAGE (the S3 server and credentials from the environment, as
 * `source <(scripts/radosgw.sh env)` sets them)
 *   bench_s3 [--mib N] [--segment-mib M] [--parallel P] [--dir DIR]
 *
 *   --mib N          archive size (default 256)
 *   --segment-mib M  segment size (default 32: multipart uploads of 16 MiB
 *                    parts; smaller when N is small, so there are >= 4)
 *   --parallel P     concurrent fetches of the parallel restore (default 4)
 *   --dir DIR        scratch directory (default $TMPDIR, else /tmp)
 *
 * SETUP: a receiver's data directory DIR/data/streams/b whose archive is
 * written with sl_log_append: one node per transaction with a 1-3 KB
 * string property. Objects go under s3://$SL_S3_BUCKET/bench-s3-PID/ and
 * are deleted at the end.
 *
 * WHAT IT MEASURES (MB/s of segment bytes)
 *   plain PUT   each sealed segment file PUT once, one after another, with
 *               objstore's put (Content-MD5, CRC32C): the baseline
 *   uploader    the receiver's uploader (sl_upload_start) from start until
 *               every sealed segment is in the manifest: scans, PUT, HEAD
 *               check, manifest PUT and upload.json per object
 *   restore x1  sl_restore_s3 to the last uploaded txid with one fetch at a
 *               time (fetching still overlaps replay)
 *   restore xP  the same with P fetches at a time
 * Nothing asserts on speed: shared machines vary 30-60% between runs.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "objstore.h"
#include "s3.h"
#include "sl_base.h"
#include "transaction.pb-c.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_s3: %s: %s\n", what, sl_strerror(rc));
  exit(1);
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }
static double mbps(uint64_t bytes, uint64_t ns) { return ns ? (double)bytes / 1e6 / secs(ns) : 0; }

/* DATA/streams/b/archive of about mib MiB; returns the last txid. */
static uint64_t write_archive(const char *data, uint64_t mib, uint64_t seg_bytes) {
  char archive[4400];
  snprintf(archive, sizeof archive, "%s/streams/b/archive", data);
  sl_log_options lo = {.first_txid = 1, .segment_size = seg_bytes};
  uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
  for (int i = 0; i < SL_STORE_ID_SIZE; i++) lo.store_id[i] = (uint8_t)(seed >> (i % 8 * 8)) ^ (uint8_t)i;
  int rc;
  if ((rc = sl_mkdir_p(archive)) || (rc = sl_log_create(archive, &lo))) die(archive, rc);
  sl_log *log;
  if ((rc = sl_log_open(archive, NULL, &log))) die("sl_log_open", rc);
  char text[3100], *labels[] = {"Blob"};
  uint8_t pkt[4096];
  uint64_t txid = 0, bytes = 0, t0 = sl_now_us() - 3600000000ull;
  while (bytes < mib << 20) {
    size_t len = 1000 + (size_t)((seed >> 33) % 2000);
    for (size_t i = 0; i < len; i++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      text[i] = (char)('a' + (seed >> 40) % 26);
    }
    text[len] = 0;
    Shiplog__Value v = SHIPLOG__VALUE__INIT;
    v.kind_case = SHIPLOG__VALUE__KIND_STRING_VALUE;
    v.string_value = text;
    Shiplog__Property p = SHIPLOG__PROPERTY__INIT, *pp = &p;
    p.key = "data";
    p.value = &v;
    Shiplog__CreateNode cn = SHIPLOG__CREATE_NODE__INIT;
    cn.id = ++txid;
    cn.n_labels = 1;
    cn.labels = labels;
    cn.n_props = 1;
    cn.props = &pp;
    Shiplog__Op op = SHIPLOG__OP__INIT, *pop = &op;
    op.op_case = SHIPLOG__OP__OP_CREATE_NODE;
    op.create_node = &cn;
    Shiplog__Transaction t = SHIPLOG__TRANSACTION__INIT;
    t.txid = txid;
    t.commit_time_us = t0 + txid * 1000;
    t.n_ops = 1;
    t.ops = &pop;
    size_t n = shiplog__transaction__pack(&t, pkt);
    if ((rc = sl_log_append(log, pkt, n))) die("sl_log_append", rc);
    bytes += n + SL_FRAME_HEADER_SIZE;
  }
  if ((rc = sl_log_wait_durable(log, txid))) die("sl_log_wait_durable", rc);
  sl_log_close(log);
  return txid;
}

int main(int argc, char **argv) {
  const char *dir = NULL, *bucket = getenv("SL_S3_BUCKET");
  uint64_t mib = 256, seg_mib = 32;
  int parallel = 4;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
    else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--segment-mib") && i + 1 < argc) seg_mib = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--parallel") && i + 1 < argc) parallel = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_s3 [--mib N] [--segment-mib M] [--parallel P] [--dir DIR]\n");
      return 2;
    }
  }
  if (!bucket || !*bucket || !getenv("SL_S3_ENDPOINT")) {
    fprintf(stderr, "bench_s3: set SL_S3_ENDPOINT, SL_S3_BUCKET and the AWS_* credentials "
                    "(source <(scripts/radosgw.sh env))\n");
    return 2;
  }
  if (mib < 1 || parallel < 1 || parallel > 64) return 2;
  if (!dir) dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  uint64_t seg_bytes = SL_MAX(SL_MIN(seg_mib << 20, (mib << 20) / 4), SL_SEG_SIZE_MIN);
  char root[4096], data[4200], url[512], prefix[64], into[4300];
  snprintf(root, sizeof root, "%s/bench-s3-%d", dir, (int)getpid());
  snprintf(data, sizeof data, "%s/data", root);
  snprintf(prefix, sizeof prefix, "bench-s3-%d", (int)getpid());
  snprintf(url, sizeof url, "s3://%s/%s", bucket, prefix);
  sl_remove_tree(root);
  uint64_t last = write_archive(data, mib, seg_bytes);

  char archive[4400];
  snprintf(archive, sizeof archive, "%s/streams/b/archive", data);
  sl_seg_info *segs;
  size_t nseg;
  int rc;
  if ((rc = sl_log_list(archive, &segs, &nseg))) die("sl_log_list", rc);
  uint64_t sealed_bytes = 0, sealed_last = segs[nseg - 1].first_txid - 1;
  for (size_t i = 0; i + 1 < nseg; i++) sealed_bytes += segs[i].size;
  printf("bench_s3: %s, archive %.1f MB in %zu segments of %.1f MiB (%zu sealed, txids 1..%" PRIu64
         " of %" PRIu64 "), at %s\n",
         root, (double)(sealed_bytes + segs[nseg - 1].size) / 1e6, nseg, (double)seg_bytes / (1 << 20), nseg - 1,
         sealed_last, last, getenv("SL_S3_ENDPOINT"));

  /* plain PUT: the baseline */
  sl_objstore *s;
  if ((rc = sl_objstore_open(&(sl_objstore_options){.bucket = bucket}, &s))) die("sl_objstore_open", rc);
  uint64_t t0 = sl_mono_ns();
  for (size_t i = 0; i + 1 < nseg; i++) {
    char key[256];
    snprintf(key, sizeof key, "%s/plain/%zu", prefix, i);
    int fd = open(segs[i].path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (rc = sl_objstore_put_file(s, key, fd, segs[i].size, NULL))) die("plain PUT", fd < 0 ? -1 : rc);
    close(fd);
  }
  uint64_t plain_ns = sl_mono_ns() - t0;

  /* the uploader */
  sl_uploader *u;
  t0 = sl_mono_ns();
  if ((rc = sl_upload_start(&(sl_upload_options){.data_dir = data, .url = url, .scan_ms = 20}, &u)))
    die("sl_upload_start", rc);
  sl_upload_status us = {0};
  while (sl_upload_status_read(data, "b", &us) == 0 && (!us.present || us.uploaded_txid < sealed_last)) {
    if (us.error[0]) fprintf(stderr, "bench_s3: upload: %s (retrying)\n", us.error);
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
  }
  uint64_t up_ns = sl_mono_ns() - t0;
  sl_upload_stop(u);

  /* restores: serial and parallel fetch */
  uint64_t r_ns[2], r_bytes[2];
  int par[2] = {1, parallel};
  for (int k = 0; k < 2; k++) {
    snprintf(into, sizeof into, "%s/restored-%d", root, par[k]);
    sl_rx_s3_restore_options ro = {.url = url, .stream = "b", .txid = sealed_last, .into = into, .parallel = par[k]};
    sl_rx_s3_restore_result res;
    if ((rc = sl_restore_s3(&ro, &res))) die("sl_restore_s3", rc);
    r_ns[k] = res.total_ns;
    r_bytes[k] = res.fetched_bytes;
  }
  printf("\n%-38s %10s %8s %8s\n", "", "MB", "s", "MB/s");
  printf("%-38s %10.1f %8.2f %8.1f\n", "plain PUT, one file after another", (double)sealed_bytes / 1e6,
         secs(plain_ns), mbps(sealed_bytes, plain_ns));
  printf("%-38s %10.1f %8.2f %8.1f   (%.0f%% of plain PUT)\n", "uploader (PUT+HEAD+manifest)",
         (double)sealed_bytes / 1e6, secs(up_ns), mbps(sealed_bytes, up_ns),
         100.0 * mbps(sealed_bytes, up_ns) / (mbps(sealed_bytes, plain_ns) + 1e-9));
  printf("%-38s %10.1f %8.2f %8.1f\n", "restore from S3, 1 fetch at a time", (double)r_bytes[0] / 1e6, secs(r_ns[0]),
         mbps(r_bytes[0], r_ns[0]));
  char what[64];
  snprintf(what, sizeof what, "restore from S3, %d fetches at a time", parallel);
  printf("%-38s %10.1f %8.2f %8.1f   (x%.2f of serial)\n", what, (double)r_bytes[1] / 1e6, secs(r_ns[1]),
         mbps(r_bytes[1], r_ns[1]), (double)r_ns[0] / (double)(r_ns[1] ? r_ns[1] : 1));

  /* leave the bucket as it was */
  char **keys;
  size_t nkeys;
  if (sl_objstore_list(s, prefix, &keys, &nkeys) == 0) {
    for (size_t i = 0; i < nkeys; i++) sl_objstore_delete(s, keys[i]);
    sl_objstore_free_list(keys, nkeys);
  }
  sl_objstore_close(s);
  free(segs);
  sl_remove_tree(root);
  return 0;
}
