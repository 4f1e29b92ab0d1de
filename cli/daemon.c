/*
 * What the long-running commands (ship, receive) share: log lines with
 * time and context, the /metrics endpoint (--metrics HOST:PORT), and
 * systemd's readiness protocol.
 *
 * READINESS (sd_notify(3), Type=notify units in dist/systemd/): when
 * $NOTIFY_SOCKET names a unix datagram socket (a leading '@' is Linux's
 * abstract namespace), "READY=1" is sent there once the command can do its
 * job -- the receiver when it listens, the shipper when its first session
 * with the receiver is up -- and "STOPPING=1" when it begins to stop. It is
 * the whole protocol, a datagram of NEWLINE-separated assignments, so no
 * libsystemd is needed; without $NOTIFY_SOCKET nothing is sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_repl.h"
#include "codec.h"
#include "sl_base.h"

void cli_notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = path ? strlen(path) : 0;
  if (n == 0 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) return;
  memcpy(sa.sun_path, path, n);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
    sl_diag_warn("cannot tell systemd (%s): %s", path, strerror(errno));
  close(fd);
}

void cli_notify_ready(void *status) {
  char msg[512];
  snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status ? (const char *)status : "ready");
  cli_notify(msg);
}

int cli_daemon_start(cli_daemon *d, const char *metrics_addr) {
  *d = (cli_daemon){0};
  sl_diag_set_timestamps(true);
  if (!metrics_addr) return 0;
  int fd, rc = sl_metrics_new(&d->metrics);
  if (rc) return rc;
  rc = sl_listen(metrics_addr, 16, &fd);
  if (rc) {
    sl_diag_error("--metrics: cannot listen on %s: %s", metrics_addr, sl_strerror(rc));
    goto fail;
  }
  /* The address as bound: port 0 in --metrics picks a free one. */
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[64] = "?";
  int port = 0;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  rc = sl_metrics_serve(d->metrics, fd, &d->server);
  if (rc) {
    sl_diag_error("--metrics: cannot serve on %s: %s", metrics_addr, sl_strerror(rc));
    goto fail;
  }
  sl_diag_info(ss.ss_family == AF_INET6 ? "metrics at http://[%s]:%d/metrics" : "metrics at http://%s:%d/metrics",
              host, port);
  return 0;
fail:
  sl_metrics_free(d->metrics);
  d->metrics = NULL;
  return rc;
}

void cli_daemon_stop(cli_daemon *d) {
  cli_notify("STOPPING=1");
  sl_metrics_server_stop(d->server);
  sl_metrics_free(d->metrics);
  *d = (cli_daemon){0};
}
