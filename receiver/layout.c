/*
 * layout.c: the receiver's data directory as other code finds it
 * (receiver.h, DATA DIRECTORY): the one spelling of DIR/streams/NAME/SUB
 * and the one taker of DIR/receiver.lock. The receiver itself
 * (receiver.c), promote and seeding a stream (failover.c) and the CLI all
 * take the lock here, so "no receiver serves DIR" means the same thing
 * everywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "receiver.h"
#include "sl_base.h"

const char *sl_stream_path(char *buf, size_t len, const char *data_dir, const char *stream, const char *sub) {
  if (!stream) snprintf(buf, len, "%s/" SL_STREAMS_DIR, data_dir);
  else if (!sub) snprintf(buf, len, "%s/" SL_STREAMS_DIR "/%s", data_dir, stream);
  else snprintf(buf, len, "%s/" SL_STREAMS_DIR "/%s/%s", data_dir, stream, sub);
  return buf;
}

int sl_receiver_lock(const char *data_dir, int *fd_out) {
  char p[4096];
  snprintf(p, sizeof p, "%s/" SL_RECEIVER_LOCK_FILE, data_dir);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600), rc;
  if (fd < 0) {
    rc = -errno;
    sl_diag_error("cannot open %s: %s", p, sl_strerror(rc));
    return rc;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    rc = errno == EWOULDBLOCK ? SL_ELOCKED : -errno;
    if (rc != SL_ELOCKED) sl_diag_error("%s: %s", p, sl_strerror(rc));
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}
