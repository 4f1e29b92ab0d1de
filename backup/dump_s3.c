/*
 * dump_s3.c: a backup file as one object (backup/dump_s3.h), the sink of
 * `dump --to s3://` and the source of `load s3://`. Moved here from the
 * receiver, which has nothing to do with backup files: the CLI writes the
 * dump to a local scratch file first and uploads it once complete (an
 * object never holds part of a dump), and fetches before it loads.
 *
 * Both directions verify what crossed the network: after the upload the
 * object's size and CRC32C (HEAD) must be the file's; after the download
 * the bytes written must have the object's size and CRC32C.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump_s3.h"
#include "objstore.h"
#include "sl_base.h"


static int open_url(const char *url, const char *endpoint, const char *region, sl_objstore **s, sl_s3_url *u) {
  if (sl_s3_url_parse(url, u) || !u->prefix[0]) {
    sl_diag_error("%s: not s3://BUCKET/KEY (keys: [A-Za-z0-9._/-])", url);
    return SL_EINVAL;
  }
  return sl_objstore_open(&(sl_objstore_options){.endpoint = endpoint, .region = region, .bucket = u->bucket}, s);
}

int sl_dump_s3_put(const char *url, const char *endpoint, const char *region, const char *path) {
  sl_objstore *s = NULL;
  sl_s3_url u;
  sl_obj_info info;
  struct stat st;
  uint32_t crc = 0;
  int fd = -1, rc = open_url(url, endpoint, region, &s, &u);
  if (rc) return rc;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st)) {
    rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto out;
  }
  if ((rc = sl_objstore_put_file(s, u.prefix, fd, (uint64_t)st.st_size, &crc)) ||
      (rc = sl_objstore_head(s, u.prefix, &info)))
    goto out;
  if (info.size != (uint64_t)st.st_size || !info.has_crc || info.crc32c != crc) {
    sl_diag_error("%s: after the upload the object holds %" PRIu64 " bytes (CRC32C %08" PRIx32
                 "), the file %lld (%08" PRIx32 ")",
                 url, info.size, info.crc32c, (long long)st.st_size, crc);
    rc = SL_ECORRUPT;
  }
out:
  if (fd >= 0) close(fd);
  sl_objstore_close(s);
  return rc;
}

int sl_dump_s3_exists(const char *url, const char *endpoint, const char *region, bool *exists) {
  sl_objstore *s = NULL;
  sl_s3_url u;
  sl_obj_info info;
  int rc = open_url(url, endpoint, region, &s, &u);
  if (rc) return rc;
  rc = sl_objstore_head(s, u.prefix, &info);
  *exists = rc == 0;
  if (rc == SL_ENOTFOUND) rc = 0;
  else if (rc) sl_diag_error("%s: %s", url, sl_strerror(rc));
  sl_objstore_close(s);
  return rc;
}

int sl_dump_s3_get(const char *url, const char *endpoint, const char *region, const char *path) {
  sl_objstore *s = NULL;
  sl_s3_url u;
  sl_obj_info info;
  uint64_t size = 0;
  uint32_t crc = 0;
  int fd = -1, rc = open_url(url, endpoint, region, &s, &u);
  if (rc) return rc;
  if ((rc = sl_objstore_head(s, u.prefix, &info))) {
    if (rc == SL_ENOTFOUND) sl_diag_error("%s: no such object", url);
    goto out;
  }
  if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto out;
  }
  if ((rc = sl_objstore_get_file(s, u.prefix, fd, &size, &crc))) goto out;
  if (size != info.size || (info.has_crc && crc != info.crc32c)) {
    sl_diag_error("%s: the object is damaged: %" PRIu64 " bytes with CRC32C %08" PRIx32 ", stored as %" PRIu64
                 " with %08" PRIx32,
                 url, size, crc, info.size, info.crc32c);
    rc = SL_ECORRUPT;
  }
out:
  if (fd >= 0) close(fd);
  sl_objstore_close(s);
  return rc;
}
