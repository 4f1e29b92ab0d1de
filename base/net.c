/*
 * TCP addresses and listening sockets, shared by the replication codec, the
 * Bolt server and the metrics endpoint. An address is "HOST:PORT" or
 * "[V6]:PORT"; for a listening socket the host "*" means every interface.
 * Resolution is getaddrinfo's, and a listener binds the first address that
 * takes it (SO_REUSEADDR, so that a restarted server gets its port back
 * while old connections sit in TIME_WAIT).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_base.h"

int sl_hostport_parse(const char *text, char *host, size_t hostlen, char *port, size_t portlen) {
  const char *colon;
  const char *h = text;
  size_t hl;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':') return SL_EINVAL;
    h = text + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon) return SL_EINVAL;
    hl = (size_t)(colon - text);
  }
  size_t pl = strlen(colon + 1);
  if (hl == 0 || hl >= hostlen || pl == 0 || pl >= portlen) return SL_EINVAL;
  for (const char *p = colon + 1; *p; p++)
    if (*p < '0' || *p > '9') return SL_EINVAL;
  memcpy(host, h, hl);
  host[hl] = 0;
  memcpy(port, colon + 1, pl + 1);
  return 0;
}

int sl_resolve(const char *hostport, bool passive, struct addrinfo **res) {
  char host[256], port[16];
  int rc = sl_hostport_parse(hostport, host, sizeof host, port, sizeof port);
  if (rc) return rc;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = passive ? AI_PASSIVE : 0};
  rc = getaddrinfo(passive && !strcmp(host, "*") ? NULL : host, port, &hints, res);
  if (rc) return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
  return 0;
}

int sl_listen(const char *hostport, int backlog, int *fd_out) {
  struct addrinfo *res;
  int rc = sl_resolve(hostport, true, &res);
  if (rc) return rc;
  int fd = -1;
  rc = -EADDRNOTAVAIL;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      rc = -errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
      rc = 0;
      break;
    }
    rc = -errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (rc == 0) *fd_out = fd;
  return rc;
}

int sl_socket_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len)) return -errno;
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
}
