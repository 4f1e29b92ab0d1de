/*
 * objstore: a small S3 client (README "Object storage") on libcurl, which
 * signs every request with AWS Signature V4 itself (CURLOPT_AWS_SIGV4).
 * Path-style addressing only (http://ENDPOINT/BUCKET/KEY), so any S3
 * server works without DNS names per bucket (radosgw, MinIO, AWS).
 *
 * WHAT IT SENDS
 *   - every PUT carries Content-Length (never chunked: some servers answer
 *     411) and Content-MD5, so the server refuses a body damaged on the way
 *     (BadDigest); no newer checksum headers (x-amz-checksum-*).
 *   - x-amz-content-sha256: UNSIGNED-PAYLOAD (radosgw refuses a SigV4
 *     request without the header; the MD5 above protects the body).
 *   - an object larger than part_size is sent as a multipart upload of
 *     part_size parts; any failure aborts the upload (AbortMultipartUpload),
 *     so a half-sent object never stays behind as parts.
 *   - put_file stores the CRC32C of the whole object as user metadata
 *     (x-amz-meta-crc32c, 8 hex digits) that head returns, so a reader
 *     checks a whole object against what its writer read from disk.
 *
 * ERRORS: 0 or a negative code, each logged naming the operation, bucket/key,
 * HTTP status and the S3 error code: SL_ENOTFOUND (404), SL_EAUTH (401,
 * 403), SL_EINVAL (other 4xx, a bad URL or key), SL_ECORRUPT (a body that
 * does not match its size or checksum), -EIO (5xx or the connection, after
 * the retries). 5xx answers and connection errors are retried `retries`
 * times with jittered exponential backoff (100 ms doubling, at most 5 s).
 *
 * THREADS: one handle belongs to one thread at a time; open one per
 * thread for parallel transfers.
 */
#ifndef SL_OBJSTORE_H
#define SL_OBJSTORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* s3://BUCKET[/PREFIX]: the prefix without leading or trailing '/'. */
typedef struct sl_s3_url {
  char bucket[64];
  char prefix[1024];
} sl_s3_url;

bool sl_s3_is_url(const char *text);
/* SL_EINVAL (not logged) for anything else, a bucket that is not 3-63 of
 * [a-z0-9.-], or a prefix with a character sl_s3_key_valid refuses. */
int sl_s3_url_parse(const char *text, sl_s3_url *out);
/* Keys are kept to [A-Za-z0-9._/-] (no empty segment): they need no
 * escaping in a URL or a signature. */
bool sl_s3_key_valid(const char *key);

typedef struct sl_objstore_options {
  const char *endpoint;     /* http(s)://HOST[:PORT]; NULL: $SL_S3_ENDPOINT, else $AWS_ENDPOINT_URL */
  const char *region;       /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, else "us-east-1" */
  const char *bucket;
  /* NULL: $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY, else the [default]
   * (or $AWS_PROFILE) section of $AWS_SHARED_CREDENTIALS_FILE or
   * ~/.aws/credentials. */
  const char *access_key, *secret_key;
  int retries;              /* after the first try; 0: 4, < 0: none */
  uint64_t part_size;       /* multipart above this; 0: 16 MiB (min 5 MiB, S3's) */
  int timeout_ms;           /* one request without progress; 0: 30000 */
  /* NULL, or set from any thread to end the transfer in progress and the
   * retries: the call then fails with -ECANCELED. */
  const atomic_bool *cancel;
} sl_objstore_options;

typedef struct sl_objstore sl_objstore;

/* SL_EINVAL (logged) without an endpoint, a bucket or credentials. */
int sl_objstore_open(const sl_objstore_options *o, sl_objstore **out);
void sl_objstore_close(sl_objstore *s);
const char *sl_objstore_bucket(const sl_objstore *s);

typedef struct sl_obj_info {
  uint64_t size;
  bool has_crc;             /* x-amz-meta-crc32c was there */
  uint32_t crc32c;
} sl_obj_info;

/* Upload size bytes of fd (from offset 0) as KEY; *crc (may be NULL) gets
 * their CRC32C, which is also stored with the object. */
int sl_objstore_put_file(sl_objstore *s, const char *key, int fd, uint64_t size, uint32_t *crc);
int sl_objstore_put_buf(sl_objstore *s, const char *key, const void *buf, size_t len);
/* HEAD: SL_ENOTFOUND when there is no such object. */
int sl_objstore_head(sl_objstore *s, const char *key, sl_obj_info *out);
/* The object into fd from offset 0 (the file is truncated first and after
 * a retried attempt); *size and *crc (may be NULL) of what was written. */
int sl_objstore_get_file(sl_objstore *s, const char *key, int fd, uint64_t *size, uint32_t *crc);
/* The object into a malloc'd buffer (free()); SL_ETOOBIG past max. */
int sl_objstore_get_buf(sl_objstore *s, const char *key, size_t max, uint8_t **out, size_t *len);
int sl_objstore_delete(sl_objstore *s, const char *key);
/* Keys under prefix, in S3's order, as a malloc'd array of malloc'd strings
 * (sl_objstore_free_list). */
int sl_objstore_list(sl_objstore *s, const char *prefix, char ***keys, size_t *n);
void sl_objstore_free_list(char **keys, size_t n);
/* Abort every unfinished multipart upload of a key under prefix (left by a
 * process killed mid-upload, or by an abort the server did not take);
 * *n (may be NULL) gets how many. */
int sl_objstore_abort_uploads(sl_objstore *s, const char *prefix, size_t *n);

#endif
