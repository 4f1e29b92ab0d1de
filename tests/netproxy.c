/*
 * netproxy: a TCP proxy for the fault tests, standing in for tc netem
 * (which these machines lack): it slows a link down and resets it.
 *
 *   netproxy --listen HOST:PORT --to HOST:PORT [--delay-ms N] [--rate BYTES/S]
 *            [--ready-file FILE]
 *
 * Every accepted connection gets its own connection to --to. Bytes read
 * from either side are queued with the time they arrived and written to
 * the other side no earlier than delay-ms later (one-way latency), and no
 * faster than --rate bytes per second per direction (a token bucket
 * refilled each loop). SIGUSR1 resets every connection (close with
 * SO_LINGER 0: the peers get an RST); new ones are accepted as before.
 * SIGTERM/SIGINT end it. One thread, poll(); a queue is bounded (the side
 * it comes from is not read while 4 MiB wait), so a slow link pushes back
 * on the sender as a real one does.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAXC = 64, CHUNK = 16384, QMAX = 4 << 20 };

typedef struct chunk {
  struct chunk *next;
  uint64_t due_ms;
  size_t len, off;
  uint8_t data[];
} chunk;

typedef struct dir {
  chunk *head, *tail;
  size_t queued;
  double tokens;
} dir;

typedef struct conn {
  int fd[2];  /* 0: the client, 1: upstream */
  dir d[2];   /* d[i]: bytes read from fd[i], to be written to fd[1 - i] */
  bool eof[2];
} conn;

static volatile sig_atomic_t stop, reset;
static void on_term(int s) { (void)s; stop = 1; }
static void on_usr1(int s) { (void)s; reset = 1; }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int split(const char *hp, char *host, size_t n, char **port) {
  snprintf(host, n, "%s", hp);
  char *c = strrchr(host, ':');
  if (!c) return -1;
  *c = 0;
  *port = c + 1;
  return 0;
}

static int tcp(const char *hp, bool listen_it) {
  char host[256], *port;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = listen_it ? AI_PASSIVE : 0}, *ai;
  if (split(hp, host, sizeof host, &port) || getaddrinfo(host, port, &hints, &ai)) return -1;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = listen_it ? bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)
                     : connect(fd, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  if (rc) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static void conn_close(conn *c, bool rst) {
  for (int i = 0; i < 2; i++) {
    if (rst) {
      struct linger l = {1, 0};
      setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd[i]);
    while (c->d[i].head) {
      chunk *k = c->d[i].head;
      c->d[i].head = k->next;
      free(k);
    }
  }
  memset(c, 0, sizeof *c);
  c->fd[0] = c->fd[1] = -1;
}

int main(int argc, char **argv) {
  const char *listen_at = NULL, *to = NULL, *ready = NULL;
  long delay = 0;
  double rate = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--listen")) listen_at = argv[i + 1];
    else if (!strcmp(argv[i], "--to")) to = argv[i + 1];
    else if (!strcmp(argv[i], "--delay-ms")) delay = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--ready-file")) ready = argv[i + 1];
    else break;
  }
  if (!listen_at || !to) {
    fprintf(stderr, "usage: netproxy --listen HOST:PORT --to HOST:PORT [--delay-ms N] [--rate BYTES/S] "
                    "[--ready-file FILE]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGUSR1, on_usr1);
  int lfd = tcp(listen_at, true);
  if (lfd < 0) {
    fprintf(stderr, "netproxy: cannot listen on %s: %s\n", listen_at, strerror(errno));
    return 1;
  }
  if (ready) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(lfd, (struct sockaddr *)&ss, &sl);
    FILE *f = fopen(ready, "w");
    if (f) fprintf(f, "%d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port)), fclose(f);
  }
  static conn cs[MAXC];
  for (int i = 0; i < MAXC; i++) cs[i].fd[0] = cs[i].fd[1] = -1;
  uint64_t last = now_ms();
  while (!stop) {
    if (reset) {
      reset = 0;
      for (int i = 0; i < MAXC; i++)
        if (cs[i].fd[0] >= 0) conn_close(&cs[i], true);
      fprintf(stderr, "netproxy: reset every connection\n");
    }
    uint64_t t = now_ms();
    double burst = rate / 20 > CHUNK ? rate / 20 : CHUNK;
    for (int i = 0; i < MAXC; i++)
      for (int k = 0; k < 2 && rate > 0; k++) {
        cs[i].d[k].tokens += rate * (double)(t - last) / 1000;
        if (cs[i].d[k].tokens > burst) cs[i].d[k].tokens = burst;
      }
    last = t;
    /* Write what is due, as far as the rate allows. */
    for (int i = 0; i < MAXC; i++) {
      conn *c = &cs[i];
      for (int k = 0; k < 2 && c->fd[0] >= 0; k++) {
        dir *d = &c->d[k];
        while (d->head && d->head->due_ms <= t && (rate <= 0 || d->tokens >= 1)) {
          chunk *h = d->head;
          size_t n = h->len - h->off;
          if (rate > 0 && n > (size_t)d->tokens) n = (size_t)d->tokens;
          ssize_t w = send(c->fd[1 - k], h->data + h->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w < 0) {
            if (errno != EAGAIN) conn_close(c, true);
            break;
          }
          h->off += (size_t)w;
          d->queued -= (size_t)w;
          if (rate > 0) d->tokens -= (double)w;
          if (h->off == h->len) {
            d->head = h->next;
            if (!d->head) d->tail = NULL;
            free(h);
          }
        }
        if (c->fd[0] >= 0 && c->eof[k] && !d->head) shutdown(c->fd[1 - k], SHUT_WR);
      }
      if (c->fd[0] >= 0 && c->eof[0] && c->eof[1] && !c->d[0].head && !c->d[1].head) conn_close(c, false);
    }
    /* Wait for input, or until the next chunk is due (rate limits: 5 ms steps). */
    struct pollfd pf[1 + 2 * MAXC];
    int np = 0, slot[2 * MAXC], side[2 * MAXC], timeout = 100;
    pf[np++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (int i = 0; i < MAXC; i++) {
      conn *c = &cs[i];
      if (c->fd[0] < 0) continue;
      for (int k = 0; k < 2; k++) {
        dir *d = &c->d[k];
        short ev = !c->eof[k] && d->queued < QMAX ? POLLIN : 0;
        if (d->head) {
          if (d->head->due_ms > t) {
            if ((int)(d->head->due_ms - t) < timeout) timeout = (int)(d->head->due_ms - t);
          } else {
            timeout = timeout < 5 ? timeout : 5; /* a full send buffer or no tokens: retry soon */
          }
        }
        slot[np - 1] = i;
        side[np - 1] = k;
        pf[np++] = (struct pollfd){.fd = c->fd[k], .events = ev};
      }
    }
    if (poll(pf, (nfds_t)np, timeout) < 0 && errno != EINTR) break;
    if (pf[0].revents & POLLIN) {
      int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      int ufd = cfd >= 0 ? tcp(to, false) : -1;
      int i = 0;
      while (i < MAXC && cs[i].fd[0] >= 0) i++;
      if (cfd >= 0 && (ufd < 0 || i == MAXC)) {
        struct linger l = {1, 0};
        setsockopt(cfd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(cfd);
        if (ufd >= 0) close(ufd);
      } else if (cfd >= 0) {
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs[i].fd[0] = cfd;
        cs[i].fd[1] = ufd;
      }
    }
    for (int j = 1; j < np; j++) {
      conn *c = &cs[slot[j - 1]];
      int k = side[j - 1];
      if (c->fd[0] < 0 || !(pf[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (c->fd[k] != pf[j].fd) continue; /* closed and reused in this round */
      chunk *h = malloc(sizeof *h + CHUNK);
      ssize_t r = recv(c->fd[k], h->data, CHUNK, MSG_DONTWAIT);
      if (r <= 0) {
        free(h);
        if (r == 0) c->eof[k] = true;
        else if (errno != EAGAIN && errno != EINTR) conn_close(c, true);
        continue;
      }
      *h = (chunk){.due_ms = now_ms() + (uint64_t)delay, .len = (size_t)r};
      dir *d = &c->d[k];
      if (d->tail) d->tail->next = h;
      else d->head = h;
      d->tail = h;
      d->queued += (size_t)r;
    }
  }
  return 0;
}
