/*
 * backup/dump_s3.h: backup files in object storage, `dump --to
 * s3://BUCKET/KEY` (the sink) and `load s3://BUCKET/KEY` (the source): one
 * local file as one object (KEY = the URL's whole path) and back, checked
 * by size and CRC32C. Uses objstore/ (credentials from
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; endpoint NULL:
 * $SL_S3_ENDPOINT; region NULL: $AWS_REGION or us-east-1). Errors are
 * logged naming the URL or the file; 0 or a negative code.
 */
#ifndef SL_BACKUP_DUMP_S3_H
#define SL_BACKUP_DUMP_S3_H

#include <stdbool.h>

/* Upload the complete file PATH to URL, then compare the object's size and
 * CRC32C with the file's (SL_ECORRUPT when they differ). SL_EINVAL: URL is
 * not s3://BUCKET/KEY. */
int sl_dump_s3_put(const char *url, const char *endpoint, const char *region, const char *path);
/* Is there an object at URL? (dump refuses to replace a backup without
 * --overwrite.) 0 with *exists set, or the error (logged). */
int sl_dump_s3_exists(const char *url, const char *endpoint, const char *region, bool *exists);
/* Fetch URL into PATH (created 0600 or truncated), checked against the
 * object's size and CRC32C. SL_ENOTFOUND: no such object. */
int sl_dump_s3_get(const char *url, const char *endpoint, const char *region, const char *path);

#endif
