/*
 * File helpers: the few I/O patterns every module repeats.
 *
 * Writes loop over short transfers and EINTR, so a caller either wrote all
 * of its buffer or has an error. Small metadata files (consumer positions,
 * checkpoints, ids) are replaced with the classic atomic sequence: write
 * DIR/NAME.tmp, fsync it, rename over NAME, fsync DIR. A crash leaves either
 * the old or the new content, plus at most a stale NAME.tmp that the next
 * write truncates. Larger results written elsewhere (dumps, exports) are
 * made durable the same way: their writer fsyncs the file, then
 * sl_rename_durable renames it into place and fsyncs the directory. The
 * fsyncs and the renames pass fault points (SL_FAULT_FILE_FSYNC for every
 * fsync, SL_FAULT_FILE_RENAME, SL_FAULT_FILE_WRITE).
 *
 * A held file says "my writer is alive": its writer flock()s it (LOCK_EX)
 * before renaming it into place and keeps it open while it lives, so the
 * kernel drops the lock when the writer exits, however it exits (SIGKILL
 * included; a crash of the machine leaves no lock at all). A reader tries
 * LOCK_SH|LOCK_NB on its own descriptor: refused means held, and it reads
 * that same descriptor; granted means the file outlived its writer, and it
 * is as if there were none. flock (one lock per open file description, not
 * per process) asks nothing of PIDs, so a reused PID cannot fake a writer,
 * and a reader in the writer's own process still sees the lock. The writer
 * opens it O_CLOEXEC: a program it runs does not inherit the lock.
 *
 * Functions that take a path log their failures with it (sl_read_file stays
 * quiet about a missing file, which callers treat as "not set"); functions
 * on a file descriptor leave the logging to the caller, who knows the name.
 */
#include "sl_base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int sl_path_join(char *out, size_t n, const char *dir, const char *name) {
  int r = snprintf(out, n, "%s/%s", dir, name);
  if (r < 0 || (size_t)r >= n) {
    sl_diag_error("%s/%s: path too long", dir, name);
    return -ENAMETOOLONG;
  }
  return 0;
}

int sl_write_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  int rc = 0;
  sl_fault_write(fd, -1, len);
  while (len && !rc) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno != EINTR) rc = -errno;
      continue;
    }
    if (w == 0) rc = -EIO;
    p += w;
    len -= (size_t)w;
  }
  sl_fault_write_end();
  return rc;
}

int sl_pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
  const uint8_t *p = buf;
  int rc = 0;
  sl_fault_write(fd, (int64_t)off, len);
  while (len && !rc) {
    ssize_t w = pwrite(fd, p, len, (off_t)off);
    if (w < 0) {
      if (errno != EINTR) rc = -errno;
      continue;
    }
    if (w == 0) rc = -EIO;
    p += w;
    off += (uint64_t)w;
    len -= (size_t)w;
  }
  sl_fault_write_end();
  return rc;
}

long sl_pread_full(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (long)got;
}

int sl_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int rc = -errno;
    sl_diag_error("open directory %s: %s", dir, sl_strerror(rc));
    return rc;
  }
  int rc = fsync(fd) ? -errno : 0;
  if (rc) sl_diag_error("fsync directory %s: %s", dir, sl_strerror(rc));
  close(fd);
  return rc;
}

/* DIR/NAME.tmp, fsync, rename, fsync DIR. With held, the file is flocked
 * (LOCK_EX) before the rename, so that it is never in place unlocked, and
 * its descriptor stays open in *held. */
static int write_atomic(const char *dir, const char *name, const void *buf, size_t len, int *held) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
      (size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= sizeof tmp)
    return -ENAMETOOLONG;
  bool renamed = false;
  int rc;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    sl_diag_error("create %s: %s", tmp, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_fault(SL_FAULT_FILE_WRITE)) || (rc = sl_write_all(fd, buf, len))) {
    sl_diag_error("write %s: %s", tmp, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_fault(SL_FAULT_FILE_FSYNC)) || (rc = sl_fsync(fd))) {
    sl_diag_error("fsync %s: %s", tmp, sl_strerror(rc));
    goto fail;
  }
  if (held) {
    /* not blocking: only another writer of the same NAME, mid-way, holds it */
    if (flock(fd, LOCK_EX | LOCK_NB)) {
      rc = -errno;
      sl_diag_error("lock %s: %s", tmp, sl_strerror(rc));
      goto fail;
    }
  } else {
    rc = close(fd) ? -errno : 0;
    fd = -1;
    if (rc) {
      sl_diag_error("close %s: %s", tmp, sl_strerror(rc));
      goto fail;
    }
  }
  if ((rc = sl_fault(SL_FAULT_FILE_RENAME)) || (rc = rename(tmp, path) ? -errno : 0)) {
    sl_diag_error("rename %s to %s: %s", tmp, path, sl_strerror(rc));
    goto fail;
  }
  renamed = true;
  if ((rc = sl_fault(SL_FAULT_FILE_FSYNC))) {
    sl_diag_error("fsync directory %s: %s", dir, sl_strerror(rc));
    goto fail;
  }
  if ((rc = sl_fsync_dir(dir))) goto fail;
  if (held) *held = fd;
  return 0;

fail:
  if (fd >= 0) close(fd);
  if (!renamed) unlink(tmp);
  return rc;
}

int sl_write_file_atomic(const char *dir, const char *name, const void *buf, size_t len) {
  return write_atomic(dir, name, buf, len, NULL);
}

int sl_write_file_held(const char *dir, const char *name, const void *buf, size_t len, int *held_fd) {
  return write_atomic(dir, name, buf, len, held_fd);
}

int sl_rename_durable(const char *from, const char *to) {
  char dir[PATH_MAX];
  size_t n = strlen(to);
  while (n > 1 && to[n - 1] == '/') n--; /* "out/" renames "out" */
  if (n >= sizeof dir) return -ENAMETOOLONG;
  memcpy(dir, to, n);
  dir[n] = 0;
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int rc;
  if ((rc = sl_fault(SL_FAULT_FILE_RENAME)) || (rc = rename(from, to) ? -errno : 0)) {
    sl_diag_error("rename %s to %s: %s", from, to, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_fault(SL_FAULT_FILE_FSYNC))) {
    sl_diag_error("fsync directory %s: %s", dir, sl_strerror(rc));
    return rc;
  }
  return sl_fsync_dir(dir);
}

/* Read fd (opened on path) whole, then close it. */
static int read_whole(int fd, const char *path, size_t max, uint8_t **out, size_t *out_len) {
  uint8_t *buf = NULL;
  int rc;
  struct stat st;
  if (fstat(fd, &st)) {
    rc = -errno;
    sl_diag_error("stat %s: %s", path, sl_strerror(rc));
    goto fail;
  }
  /* One byte more than the size (or the limit) tells growth from EOF. */
  size_t cap = (size_t)SL_MIN((uint64_t)st.st_size, (uint64_t)max) + 1, len = 0;
  for (;;) {
    uint8_t *nb = realloc(buf, cap + 1); /* + NUL, so text callers may parse in place */
    if (!nb) {
      rc = -ENOMEM;
      goto fail;
    }
    buf = nb;
    long r = sl_pread_full(fd, buf + len, cap - len, len);
    if (r < 0) {
      rc = (int)r;
      sl_diag_error("read %s: %s", path, sl_strerror(rc));
      goto fail;
    }
    len += (size_t)r;
    if (len > max) {
      rc = SL_ETOOBIG;
      sl_diag_error("%s: larger than %zu bytes", path, max);
      goto fail;
    }
    if (len < cap) break;
    cap = SL_MIN(cap * 2, max + 1);
  }
  close(fd);
  buf[len] = 0;
  *out = buf;
  *out_len = len;
  return 0;

fail:
  free(buf);
  close(fd);
  return rc;
}

/* open(path) to read; a missing file is -ENOENT, not logged. */
static int open_to_read(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fd = -errno;
    if (fd != -ENOENT) sl_diag_error("open %s: %s", path, sl_strerror(fd));
  }
  return fd;
}

int sl_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len) {
  int fd = open_to_read(path);
  return fd < 0 ? fd : read_whole(fd, path, max, out, out_len);
}

int sl_read_file_held(const char *path, size_t max, uint8_t **out, size_t *out_len) {
  int fd = open_to_read(path);
  if (fd < 0) return fd;
  /* A shared lock is refused only while the writer's exclusive one is
   * held; readers never refuse each other. */
  if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    close(fd); /* releases it */
    return -ENOENT;
  }
  if (errno != EWOULDBLOCK) {
    int rc = -errno;
    sl_diag_error("lock %s: %s", path, sl_strerror(rc));
    close(fd);
    return rc;
  }
  return read_whole(fd, path, max, out, out_len);
}

int sl_mkdir_p(const char *path) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0) return SL_EINVAL;
  if (n >= sizeof buf) return -ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char saved = buf[i];
    buf[i] = 0;
    if (mkdir(buf, 0700) && errno != EEXIST) {
      int rc = -errno;
      sl_diag_error("mkdir %s: %s", buf, sl_strerror(rc));
      return rc;
    }
    buf[i] = saved;
  }
  struct stat st;
  if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
    sl_diag_error("mkdir %s: %s", path, sl_strerror(-ENOTDIR));
    return -ENOTDIR;
  }
  return 0;
}

/* rm -rf NAME relative to the directory dfd, without following symlinks. */
static int remove_at(int dfd, const char *name) {
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) return errno == ENOENT ? 0 : -errno;
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
      close(fd);
      return -errno;
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      rc = remove_at(fd, de->d_name);
    }
    closedir(d);
    if (rc) return rc;
  }
  if (unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) && errno != ENOENT)
    return -errno;
  return 0;
}

int sl_remove_tree(const char *path) {
  int rc = remove_at(AT_FDCWD, path);
  if (rc) sl_diag_error("remove %s: %s", path, sl_strerror(rc));
  return rc;
}
