/*
 * http.c: the /metrics endpoint, a minimal HTTP/1.1 responder.
 *
 * One thread polls the listening socket and a stop pipe, accepts one
 * connection at a time and answers exactly one request on it, then closes
 * it (Connection: close): scrapes are rare (seconds apart) and small, so a
 * thread per connection or keep-alive would buy nothing. The request head
 * (request line and headers, up to REQUEST_MAX bytes) is read with a
 * deadline of CLIENT_TIMEOUT_MS, so a silent or slow client delays the next
 * scrape by that much at most and never blocks the process. Bodies are not
 * read (GET and HEAD have none). The thread blocks every signal, so that
 * SIGINT/SIGTERM reach the command's own threads.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sl_base.h"

#define REQUEST_MAX 8192
#define CLIENT_TIMEOUT_MS 5000

struct sl_metrics_server {
  sl_metrics *m;
  int listen_fd;
  int stop_pipe[2];
  pthread_t thread;
};

/* Read until the end of the request head ("\r\n\r\n"); returns its length,
 * 0 if the client went away or was too slow, -1 if the head is too long. */
static ssize_t read_head(int fd, char *buf, size_t cap) {
  size_t len = 0;
  uint64_t deadline = sl_mono_ns() + (uint64_t)CLIENT_TIMEOUT_MS * 1000000u;
  while (len < cap - 1) {
    uint64_t now = sl_mono_ns();
    if (now >= deadline) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    ssize_t got = recv(fd, buf + len, cap - 1 - len, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return 0;
    len += (size_t)got;
    buf[len] = 0;
    if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) return (ssize_t)len;
  }
  return -1;
}

static void send_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* the client left: nothing to do */
    p += n;
    len -= (size_t)n;
  }
}

static void respond(int fd, int code, const char *reason, const char *type, const char *extra,
                    const char *body, size_t len, bool head_only) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                   code, reason, type, len, extra);
  send_all(fd, head, (size_t)n);
  if (!head_only) send_all(fd, body, len);
}

static void serve_one(sl_metrics_server *s, int fd) {
  static const char plain[] = "text/plain; charset=utf-8";
  char req[REQUEST_MAX], method[16], target[1024], version[16];
  ssize_t n = read_head(fd, req, sizeof req);
  if (n == 0) return;
  if (n < 0) {
    respond(fd, 431, "Request Header Fields Too Large", plain, "", "request too large\n", 18, false);
    return;
  }
  if (sscanf(req, "%15s %1023s %15s", method, target, version) != 3 ||
      strncmp(version, "HTTP/1.", 7) != 0) {
    respond(fd, 400, "Bad Request", plain, "", "bad request\n", 12, false);
    return;
  }
  bool head_only = strcmp(method, "HEAD") == 0;
  if (!head_only && strcmp(method, "GET") != 0) {
    respond(fd, 405, "Method Not Allowed", plain, "Allow: GET, HEAD\r\n", "only GET and HEAD\n", 18,
            false);
    return;
  }
  char *q = strchr(target, '?');
  if (q) *q = 0;
  if (strcmp(target, "/metrics") != 0) {
    respond(fd, 404, "Not Found", plain, "", "not found: try /metrics\n", 24, head_only);
    return;
  }
  char *text;
  size_t len;
  if (sl_metrics_render(s->m, &text, &len) != 0) {
    respond(fd, 500, "Internal Server Error", plain, "", "out of memory\n", 14, head_only);
    return;
  }
  respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", text, len, head_only);
  free(text);
}

static void *server_main(void *arg) {
  sl_metrics_server *s = arg;
  for (;;) {
    struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->stop_pipe[0], .events = POLLIN}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || p[1].revents) break;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) continue; /* EAGAIN, ECONNABORTED, EMFILE: try the next one */
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* a client that stops reading */
    serve_one(s, fd);
    /* Half-close first so that a client's unread request bytes don't turn
     * our close into a reset that could destroy the response. */
    shutdown(fd, SHUT_WR);
    close(fd);
  }
  return NULL;
}

int sl_metrics_serve(sl_metrics *m, int listen_fd, sl_metrics_server **out) {
  sl_metrics_server *s = calloc(1, sizeof *s);
  if (!s) {
    close(listen_fd);
    return -ENOMEM;
  }
  s->m = m;
  s->listen_fd = listen_fd;
  int rc = 0;
  /* A client that connects and resets before accept() must not block us. */
  int fl = fcntl(listen_fd, F_GETFL);
  if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    rc = -errno;
    goto fail;
  }
  if (pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
    rc = -errno;
    goto fail;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = -pthread_create(&s->thread, NULL, server_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) {
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    goto fail;
  }
  *out = s;
  return 0;
fail:
  close(listen_fd);
  free(s);
  return rc;
}

void sl_metrics_server_stop(sl_metrics_server *s) {
  if (!s) return;
  char one = 1;
  while (write(s->stop_pipe[1], &one, 1) < 0 && errno == EINTR) {
  }
  pthread_join(s->thread, NULL);
  close(s->stop_pipe[0]);
  close(s->stop_pipe[1]);
  close(s->listen_fd);
  free(s);
}
