/*
 * status.c: stream names and status files (sl_status.h). Status files are
 * key=value lines through which a running shipper or receiver tells
 * `shiplog status` (another process) where it is. They are
 * reports, rebuilt from live state every few hundred ms, so they are
 * replaced atomically by rename but never fsynced. On a full disk a new
 * file cannot be created, and the status matters most then ("no space"):
 * the old file is overwritten in place, in the blocks it already has (a
 * reader may catch a mix of two reports; the next one repairs it).
 */
#include "sl_status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_base.h"

int sl_status_write(const char *path, const char *text) {
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  int rc = sl_write_all(fd, text, strlen(text));
  close(fd);
  if (rc == 0 && rename(tmp, path) != 0) rc = -errno;
  if (rc) unlink(tmp);
  if ((rc == -ENOSPC || rc == -EDQUOT) && (fd = open(path, O_WRONLY | O_CLOEXEC)) >= 0) {
    size_t n = strlen(text);
    rc = sl_pwrite_all(fd, text, n, 0);
    if (!rc && ftruncate(fd, (off_t)n)) rc = -errno;
    close(fd);
  }
  return rc;
}

int sl_status_load(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long n = sl_pread_full(fd, buf, len - 1, 0);
  close(fd);
  if (n < 0) return (int)n;
  buf[n] = 0;
  return 0;
}

bool sl_status_get(const char *text, const char *key, char *out, size_t outlen) {
  size_t kl = strlen(key);
  for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
      const char *v = line + kl + 1;
      size_t n = strcspn(v, "\n");
      if (n >= outlen) n = outlen - 1;
      memcpy(out, v, n);
      out[n] = 0;
      return true;
    }
  }
  if (outlen) out[0] = 0;
  return false;
}

uint64_t sl_status_get_u64(const char *text, const char *key) {
  char v[32];
  return sl_status_get(text, key, v, sizeof v) ? strtoull(v, NULL, 10) : 0;
}

bool sl_stream_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n < 1 || n > 64) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == '-'))
      return false;
  }
  /* "." and ".." would name directories that are not the stream's own. */
  return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}
