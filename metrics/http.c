/*
 * http.c: the /metrics endpoint, a minimal HTTP/1.1 responder.
 *
 * One thread serves up to CLIENTS_MAX connections at once with poll():
 * the listening socket, a stop pipe and every client (non-blocking). Each
 * client answers exactly one request and is closed (Connection: close):
 * its request head (request line and headers, up to REQUEST_MAX bytes) is
 * read as it trickles in, the response is rendered at once when the head
 * is complete and sent as the client takes it. A client has
 * CLIENT_TIMEOUT_MS to send its head and again to take its response, so a
 * silent or slow client holds only its own slot, for that long at most,
 * and never delays another scrape (it used to: one connection at a time,
 * 5 s per idle one). When every slot is taken, a new connection closes
 * the oldest one still sending its request. Bodies are not read (GET and
 * HEAD have none). The thread blocks every signal, so that SIGINT/SIGTERM
 * reach the command's own threads.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_base.h"

#define REQUEST_MAX 8192
#define CLIENT_TIMEOUT_MS 2000
#define CLIENTS_MAX 16

typedef struct client {
  int fd;                   /* -1: a free slot */
  uint64_t since_ns;        /* accepted */
  uint64_t deadline_ns;     /* of the current phase (reading, then writing) */
  size_t in_len;
  char in[REQUEST_MAX];
  char *out;                /* the response once the head is read; NULL while reading */
  size_t out_len, out_off;
} client;

struct sl_metrics_server {
  sl_metrics *m;
  int listen_fd;
  int stop_pipe[2];
  pthread_t thread;
  client clients[CLIENTS_MAX];
};

/* Half-close first so that a client's unread request bytes don't turn
 * our close into a reset that could destroy the response. */
static void client_close(client *c) {
  shutdown(c->fd, SHUT_WR);
  close(c->fd);
  free(c->out);
  c->fd = -1;
  c->out = NULL;
  c->in_len = c->out_len = c->out_off = 0;
}

static void respond(client *c, int code, const char *reason, const char *type, const char *extra,
                    const char *body, size_t len, bool head_only) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                   code, reason, type, len, extra);
  size_t blen = head_only ? 0 : len;
  c->out = malloc((size_t)n + blen);
  if (!c->out) return; /* closed by the caller: nothing to say */
  memcpy(c->out, head, (size_t)n);
  if (blen) memcpy(c->out + n, body, blen);
  c->out_len = (size_t)n + blen;
  c->out_off = 0;
}

/* The response to the complete request head in c->in (sets c->out). */
static void answer(sl_metrics_server *s, client *c, bool too_long) {
  static const char plain[] = "text/plain; charset=utf-8";
  char method[16], target[1024], version[16];
  if (too_long) {
    respond(c, 431, "Request Header Fields Too Large", plain, "", "request too large\n", 18, false);
    return;
  }
  if (sscanf(c->in, "%15s %1023s %15s", method, target, version) != 3 ||
      strncmp(version, "HTTP/1.", 7) != 0) {
    respond(c, 400, "Bad Request", plain, "", "bad request\n", 12, false);
    return;
  }
  bool head_only = strcmp(method, "HEAD") == 0;
  if (!head_only && strcmp(method, "GET") != 0) {
    respond(c, 405, "Method Not Allowed", plain, "Allow: GET, HEAD\r\n", "only GET and HEAD\n", 18, false);
    return;
  }
  char *q = strchr(target, '?');
  if (q) *q = 0;
  if (strcmp(target, "/metrics") != 0) {
    respond(c, 404, "Not Found", plain, "", "not found: try /metrics\n", 24, head_only);
    return;
  }
  char *text;
  size_t len;
  if (sl_metrics_render(s->m, &text, &len) != 0) {
    respond(c, 500, "Internal Server Error", plain, "", "out of memory\n", 14, head_only);
    return;
  }
  respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", text, len, head_only);
  free(text);
}

/* Send what the client takes now; closed when all is sent or it left. */
static void client_write(client *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return; /* POLLOUT later */
    if (n <= 0) break; /* the client left: nothing to do */
    c->out_off += (size_t)n;
  }
  client_close(c);
}

/* Read what arrived; once the head is whole, answer. */
static void client_read(sl_metrics_server *s, client *c) {
  for (;;) {
    ssize_t got = recv(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0) {
      client_close(c);
      return;
    }
    c->in_len += (size_t)got;
    c->in[c->in_len] = 0;
    bool whole = strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n");
    bool too_long = !whole && c->in_len >= sizeof c->in - 1;
    if (whole || too_long) {
      answer(s, c, too_long);
      if (!c->out) {
        client_close(c);
        return;
      }
      c->deadline_ns = sl_mono_ns() + (uint64_t)CLIENT_TIMEOUT_MS * 1000000u;
      client_write(c);
      return;
    }
  }
}

/* Take every waiting connection; when no slot is free, the oldest client
 * still sending its request makes room (or the newcomer is closed). */
static void accept_all(sl_metrics_server *s) {
  for (;;) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return; /* EAGAIN, ECONNABORTED, EMFILE: the next poll tries again */
    client *slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < CLIENTS_MAX && !slot; i++) {
      client *c = &s->clients[i];
      if (c->fd < 0) slot = c;
      else if (!c->out && (!oldest || c->since_ns < oldest->since_ns)) oldest = c;
    }
    if (!slot && oldest) {
      client_close(oldest);
      slot = oldest;
    }
    if (!slot) {
      close(fd);
      continue;
    }
    slot->fd = fd;
    slot->since_ns = sl_mono_ns();
    slot->deadline_ns = slot->since_ns + (uint64_t)CLIENT_TIMEOUT_MS * 1000000u;
  }
}

static void *server_main(void *arg) {
  sl_metrics_server *s = arg;
  for (;;) {
    struct pollfd p[2 + CLIENTS_MAX];
    client *who[2 + CLIENTS_MAX];
    nfds_t n = 0;
    uint64_t now = sl_mono_ns(), wake = UINT64_MAX;
    p[n++] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
    p[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < CLIENTS_MAX; i++) {
      client *c = &s->clients[i];
      if (c->fd < 0) continue;
      if (now >= c->deadline_ns) { /* silent, trickling or not reading: its slot back */
        client_close(c);
        continue;
      }
      wake = SL_MIN(wake, c->deadline_ns);
      who[n] = c;
      p[n++] = (struct pollfd){.fd = c->fd, .events = c->out ? POLLOUT : POLLIN};
    }
    int timeout = wake == UINT64_MAX ? -1 : (int)((wake - now) / 1000000u) + 1;
    int ready = poll(p, n, timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || p[0].revents) break;
    for (nfds_t i = 2; i < n; i++) {
      client *c = who[i];
      if (!p[i].revents || c->fd < 0) continue;
      if (c->out) client_write(c);
      else client_read(s, c);
    }
    if (p[1].revents) accept_all(s);
  }
  for (size_t i = 0; i < CLIENTS_MAX; i++)
    if (s->clients[i].fd >= 0) client_close(&s->clients[i]);
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
  for (size_t i = 0; i < CLIENTS_MAX; i++) s->clients[i].fd = -1;
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
  rc = sl_thread_start(&s->thread, server_main, s);
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
