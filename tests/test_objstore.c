/*
 * The parts of object storage that need no server (objstore/objstore.h,
 * receiver/s3.h): s3:// URLs and keys, where credentials and the endpoint
 * come from, the manifest's JSON both ways and its refusals, the object
 * layout, and retention's question "is this file uploaded?". The S3
 * exchanges themselves run against a real radosgw in tests/e2e_s3.sh.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "objstore.h"
#include "receiver_int.h"
#include "s3.h"
#include "sl_base.h"

static void test_url(void **state) {
  (void)state;
  sl_s3_url u;
  OK(sl_s3_url_parse("s3://shiplog/a/b/", &u));
  assert_string_equal(u.bucket, "shiplog");
  assert_string_equal(u.prefix, "a/b");
  OK(sl_s3_url_parse("s3://my-bucket.1", &u));
  assert_string_equal(u.bucket, "my-bucket.1");
  assert_string_equal(u.prefix, "");
  OK(sl_s3_url_parse("s3://abc/", &u));
  assert_string_equal(u.prefix, "");
  const char *bad[] = {"http://b/x", "s3://", "s3://ab", "s3://Upper/x", "s3://b_c/x", "s3://abc/a//b",
                       "s3://abc/a b", "s3://abc//x", "s3://abc/x?y", "/tmp/file"};
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) ERR(SL_EINVAL, sl_s3_url_parse(bad[i], &u));
  assert_true(sl_s3_is_url("s3://x"));
  assert_false(sl_s3_is_url("./s3://x"));
  assert_true(sl_s3_key_valid("p/s/archive/00000000000000000001.seg"));
  assert_false(sl_s3_key_valid(""));
  assert_false(sl_s3_key_valid("/abs"));
  assert_false(sl_s3_key_valid("a/../b%"));
}

static void test_layout(void **state) {
  (void)state;
  char k[256];
  sl_rx_s3_key(k, sizeof k, "pre/fix", "s", "archive", "00000000000000000007.seg");
  assert_string_equal(k, "pre/fix/s/archive/00000000000000000007.seg");
  sl_rx_s3_key(k, sizeof k, "", "s", "", SL_RX_S3_MANIFEST_NAME);
  assert_string_equal(k, "s/manifest.json");
  sl_rx_s3_key(k, sizeof k, "p", "s", "snapshots", "00000000000000000042.snap");
  assert_string_equal(k, "p/s/snapshots/00000000000000000042.snap");
}

/* Endpoint, region and credentials: options, then the environment, then the
 * credentials file; nothing at all is refused before any request. */
static void test_config(void **state) {
  (void)state;
  const char *dir = tu_tmpdir("objstore_config");
  char *creds = tu_path(dir, "credentials");
  tu_write_file(creds, "# comment\n[other]\naws_access_key_id = NO\n[default]\naws_access_key_id = AK\n"
                       "aws_secret_access_key=SK\n");
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_PROFILE");
  unsetenv("SL_S3_ENDPOINT");
  unsetenv("AWS_ENDPOINT_URL");
  setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
  sl_objstore *s;
  ERR(SL_EINVAL, sl_objstore_open(&(sl_objstore_options){.bucket = "b"}, &s)); /* no endpoint */
  assert_null(s);
  ERR(SL_EINVAL, sl_objstore_open(&(sl_objstore_options){.endpoint = "ftp://x", .bucket = "b"}, &s));
  ERR(SL_EINVAL, sl_objstore_open(&(sl_objstore_options){.endpoint = "http://127.0.0.1:1"}, &s)); /* no bucket */
  OK(sl_objstore_open(&(sl_objstore_options){.endpoint = "http://127.0.0.1:1/", .bucket = "b"}, &s)); /* file */
  assert_string_equal(sl_objstore_bucket(s), "b");
  sl_objstore_close(s);
  setenv("AWS_PROFILE", "missing", 1);
  ERR(SL_EINVAL, sl_objstore_open(&(sl_objstore_options){.endpoint = "http://127.0.0.1:1", .bucket = "b"}, &s));
  setenv("AWS_ACCESS_KEY_ID", "K", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "S", 1);
  setenv("SL_S3_ENDPOINT", "http://127.0.0.1:1", 1);
  OK(sl_objstore_open(&(sl_objstore_options){.bucket = "b"}, &s)); /* environment */
  /* nothing listens on port 1: a connection error, after the (here no) retries */
  sl_obj_info info;
  sl_objstore_close(s);
  OK(sl_objstore_open(&(sl_objstore_options){.bucket = "b", .retries = -1}, &s));
  ERR(-EIO, sl_objstore_head(s, "k", &info));
  ERR(SL_EINVAL, sl_objstore_head(s, "bad key", &info));
  sl_objstore_close(s);
  unsetenv("AWS_PROFILE");
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  free(creds);
}

static sl_rx_s3_manifest sample(void) {
  sl_rx_s3_manifest m = {.updated_us = 1700000000000000};
  snprintf(m.stream, sizeof m.stream, "orders");
  for (int i = 0; i < 16; i++) m.store_id[i] = (uint8_t)(0xa0 + i);
  for (uint64_t i = 0; i < 3; i++) {
    sl_rx_s3_entry e = {.bytes = 65000 + i, .crc32c = 0xdeadbe00u + (uint32_t)i, .first_txid = 1 + 100 * i,
                     .last_txid = 100 * (i + 1), .first_commit_us = 10 + i, .last_commit_us = 20 + i,
                     .next_commit_us = 30 + i};
    snprintf(e.name, sizeof e.name, "%020" PRIu64 ".seg", i + 1);
    OK(sl_rx_s3_manifest_add(&m, true, &e));
  }
  sl_rx_s3_entry sn = {.bytes = 4096, .crc32c = 7, .txid = 150, .commit_us = 15, .created_us = 99};
  snprintf(sn.name, sizeof sn.name, "%020d.snap", 150);
  OK(sl_rx_s3_manifest_add(&m, false, &sn));
  return m;
}

static void test_manifest(void **state) {
  (void)state;
  sl_rx_s3_manifest m = sample(), d;
  sl_rx_s3_entry gap = m.segs[2];
  gap.first_txid = 302, gap.last_txid = 400;
  ERR(SL_EGAP, sl_rx_s3_manifest_add(&m, true, &gap));
  char *text;
  OK(sl_rx_s3_manifest_encode(&m, &text));
  OK(sl_rx_s3_manifest_decode(text, strlen(text), &d));
  assert_string_equal(d.stream, "orders");
  assert_memory_equal(d.store_id, m.store_id, 16);
  assert_int_equal(d.updated_us, m.updated_us);
  assert_int_equal(d.nsegs, 3);
  assert_int_equal(d.nsnaps, 1);
  assert_memory_equal(d.segs, m.segs, 3 * sizeof *m.segs);
  assert_memory_equal(d.snaps, m.snaps, sizeof *m.snaps);
  sl_rx_s3_manifest_free(&d);

  /* refusals: what a restore would trust must be exactly a manifest */
  struct {
    const char *from, *to;
  } bad[] = {
      {"\"version\": 1", "\"version\": 2"},
      {"\"first_txid\": 201", "\"first_txid\": 202"},       /* not contiguous */
      {"00000000000000000002.seg", "../../etc/passwd.seg"}, /* not a file name */
      {"\"crc32c\": \"deadbe00\"", "\"crc32c\": \"xyz\""},
      {"\"bytes\": 4096", "\"bytes\": \"4096\""},
      {"\"last_txid\": 100,", "\"last_txid\": 100, \"extra\": 1,"},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    char *p = strstr(text, bad[i].from), edited[8192];
    assert_non_null(p);
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(p - text), text, bad[i].to, p + strlen(bad[i].from));
    assert_true(sl_rx_s3_manifest_decode(edited, strlen(edited), &d) < 0);
  }
  ERR(SL_ECORRUPT, sl_rx_s3_manifest_decode("{", 1, &d));
  ERR(SL_ECORRUPT, sl_rx_s3_manifest_decode(text, strlen(text) / 2, &d));
  free(text);
  sl_rx_s3_manifest_free(&m);
}

/* The partial segment (s3.h, ARCHIVE TIMEOUT): kept apart from the sealed
 * segments in the manifest, never confirming a segment for retention,
 * taken into the segments by readers only when it continues them. */
static void test_manifest_partial(void **state) {
  (void)state;
  const char *sdir = tu_tmpdir("objstore_partial");
  sl_rx_s3_manifest m = sample(), d;
  m.has_partial = true;
  m.partial = (sl_rx_s3_entry){.bytes = 900, .crc32c = 0x1234, .first_txid = 301, .last_txid = 340,
                               .first_commit_us = 40, .last_commit_us = 50, .next_commit_us = 77};
  snprintf(m.partial.name, sizeof m.partial.name, "%020d.seg", 4);
  snprintf(m.partial.object, sizeof m.partial.object, "4-340.partial");
  char *text;
  OK(sl_rx_s3_manifest_encode(&m, &text));
  OK(sl_rx_s3_manifest_decode(text, strlen(text), &d));
  assert_true(d.has_partial);
  assert_memory_equal(&d.partial, &m.partial, sizeof m.partial);
  assert_int_equal(d.nsegs, 3);
  OK(sl_rx_s3_manifest_take_partial(&d));
  assert_false(d.has_partial);
  assert_int_equal(d.nsegs, 4);
  assert_string_equal(d.segs[3].object, "4-340.partial");
  assert_int_equal(d.segs[3].next_commit_us, 77);
  sl_rx_s3_manifest_free(&d);
  OK(sl_write_file_atomic(sdir, SL_RX_S3_LOCAL_MANIFEST, text, strlen(text)));
  assert_false(sl__upload_confirmed(sdir, "/x/archive/00000000000000000004.seg"));
  /* a stale partial (a sealed segment covers it) is dropped */
  OK(sl_rx_s3_manifest_decode(text, strlen(text), &d));
  d.partial.first_txid = 201;
  OK(sl_rx_s3_manifest_take_partial(&d));
  assert_int_equal(d.nsegs, 3);
  sl_rx_s3_manifest_free(&d);
  /* its object must be a partial's name */
  char *p = strstr(text, "4-340.partial"), edited[8192];
  assert_non_null(p);
  snprintf(edited, sizeof edited, "%.*s../x.partial%s", (int)(p - text), text, p + strlen("4-340.partial"));
  ERR(SL_ECORRUPT, sl_rx_s3_manifest_decode(edited, strlen(edited), &d));
  free(text);
  sl_rx_s3_manifest_free(&m);
}

/* Retention asks upload.json; a stream never archived to S3 has none. */
static void test_confirmed(void **state) {
  (void)state;
  const char *sdir = tu_tmpdir("objstore_confirmed");
  assert_true(sl__upload_confirmed(sdir, "/x/archive/00000000000000000009.seg"));
  sl_rx_s3_manifest m = sample();
  char *text;
  OK(sl_rx_s3_manifest_encode(&m, &text));
  OK(sl_write_file_atomic(sdir, SL_RX_S3_LOCAL_MANIFEST, text, strlen(text)));
  assert_true(sl__upload_confirmed(sdir, "/x/archive/00000000000000000002.seg"));
  assert_true(sl__upload_confirmed(sdir, "/x/snapshots/00000000000000000150.snap"));
  assert_false(sl__upload_confirmed(sdir, "/x/archive/00000000000000000004.seg"));
  assert_false(sl__upload_confirmed(sdir, "/x/snapshots/00000000000000000151.snap"));
  /* an unreadable upload.json keeps everything */
  OK(sl_write_file_atomic(sdir, SL_RX_S3_LOCAL_MANIFEST, "{", 1));
  assert_false(sl__upload_confirmed(sdir, "/x/archive/00000000000000000002.seg"));
  free(text);
  sl_rx_s3_manifest_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url),      cmocka_unit_test(test_layout),    cmocka_unit_test(test_config),
      cmocka_unit_test(test_manifest), cmocka_unit_test(test_manifest_partial), cmocka_unit_test(test_confirmed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
