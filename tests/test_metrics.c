/*
 * metrics: the text exposition of each metric type (HELP/TYPE lines,
 * counters as integers, gauges as doubles that read back exactly, NaN and
 * infinities), escaping of HELP text and label values, histogram buckets
 * (cumulative, le="+Inf" equal to _count, upper bounds inclusive),
 * families and series found again by name and labels, collect callbacks
 * (run before each exposition, removable), concurrent updates, and the
 * HTTP endpoint (200 with the exposition's content type at /metrics, 404,
 * 405, HEAD).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "metrics.h"
#include "sl_base.h"

/* The exposition of m into *text (free()). An out parameter of the
 * caller's, not a local's address returned by value: GCC 12 at -O3 takes
 * pointers into such a result for dangling ones (-Wdangling-pointer). */
static void render(sl_metrics *m, char **text) {
  size_t len = 0;
  *text = NULL;
  assert_int_equal(sl_metrics_render(m, text, &len), 0);
  assert_int_equal(strlen(*text), len);
}

/* text contains line as a whole line */
static void assert_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && p[n] == '\n') return;
  fail_msg("line \"%s\" not in:\n%s", line, text);
}

static void metrics_counter_and_gauge_exposition(void **state) {
  (void)state;
  sl_metrics *m;
  assert_int_equal(sl_metrics_new(&m), 0);
  const char *stream[] = {"stream", NULL};
  sl_metric_family *c = sl_metrics_family(m, SL_METRIC_COUNTER, "shiplog_test_bytes_total",
                                          "Bytes seen.", stream, NULL, 0);
  sl_metric_family *g = sl_metrics_family(m, SL_METRIC_GAUGE, "shiplog_test_lag_seconds", "Lag.",
                                          stream, NULL, 0);
  sl_metric_family *plain = sl_metrics_family(m, SL_METRIC_GAUGE, "shiplog_test_up", "Up.", NULL, NULL, 0);
  assert_non_null(c);
  assert_non_null(g);
  sl_metric *a = sl_metric_series(c, (const char *[]){"a"});
  sl_metric *b = sl_metric_series(c, (const char *[]){"b"});
  assert_ptr_equal(sl_metric_series(c, (const char *[]){"a"}), a);
  sl_metric_add(a, 5);
  sl_metric_add(a, 7);
  sl_metric_set_count(b, 10);
  sl_metric_set_count(b, 3); /* a counter never goes back */
  assert_true(sl_metric_value(a) == 12);
  assert_true(sl_metric_value(b) == 10);
  sl_metric_set(sl_metric_series(g, (const char *[]){"a"}), 0.25);
  sl_metric_set(sl_metric_series(g, (const char *[]){"b"}), 1e21);
  sl_metric_set(sl_metric_series(g, (const char *[]){"c"}), NAN);
  sl_metric_set(sl_metric_series(g, (const char *[]){"d"}), -INFINITY);
  sl_metric_set(sl_metric_series(g, (const char *[]){"e"}), 0.1);
  sl_metric_set(sl_metric_series(g, (const char *[]){"f"}), 18446744073709551615.0);
  sl_metric_set(sl_metric_series(plain, NULL), 1);
  /* an empty family is left out */
  assert_non_null(sl_metrics_family(m, SL_METRIC_GAUGE, "shiplog_test_empty", "x", NULL, NULL, 0));

  char *t;
  render(m, &t);
  assert_line(t, "# HELP shiplog_test_bytes_total Bytes seen.");
  assert_line(t, "# TYPE shiplog_test_bytes_total counter");
  assert_line(t, "shiplog_test_bytes_total{stream=\"a\"} 12");
  assert_line(t, "shiplog_test_bytes_total{stream=\"b\"} 10");
  assert_line(t, "# TYPE shiplog_test_lag_seconds gauge");
  assert_line(t, "shiplog_test_lag_seconds{stream=\"a\"} 0.25");
  assert_line(t, "shiplog_test_lag_seconds{stream=\"b\"} 1e+21");
  assert_line(t, "shiplog_test_lag_seconds{stream=\"c\"} NaN");
  assert_line(t, "shiplog_test_lag_seconds{stream=\"d\"} -Inf");
  assert_line(t, "shiplog_test_lag_seconds{stream=\"e\"} 0.1");
  assert_line(t, "shiplog_test_lag_seconds{stream=\"f\"} 1.8446744073709552e+19");
  assert_line(t, "shiplog_test_up 1");
  assert_null(strstr(t, "shiplog_test_empty"));
  /* families in creation order, HELP before TYPE before samples */
  assert_true(strstr(t, "# HELP shiplog_test_bytes_total") < strstr(t, "# TYPE shiplog_test_bytes_total"));
  assert_true(strstr(t, "shiplog_test_bytes_total{") < strstr(t, "# HELP shiplog_test_lag_seconds"));
  assert_int_equal(t[strlen(t) - 1], '\n');
  free(t);
  sl_metrics_free(m);
}

static void metrics_escaping(void **state) {
  (void)state;
  sl_metrics *m;
  assert_int_equal(sl_metrics_new(&m), 0);
  sl_metric_family *f = sl_metrics_family(m, SL_METRIC_COUNTER, "shiplog_test_total",
                                          "Help with \\ and\nnewline and \"quotes\".",
                                          (const char *[]){"stream", "reason", NULL}, NULL, 0);
  sl_metric_add(sl_metric_series(f, (const char *[]){"a\"b\\c\nd", "x"}), 1);
  char *t;
  render(m, &t);
  assert_line(t, "# HELP shiplog_test_total Help with \\\\ and\\nnewline and \"quotes\".");
  assert_line(t, "shiplog_test_total{stream=\"a\\\"b\\\\c\\nd\",reason=\"x\"} 1");
  free(t);
  /* bad names, reserved label "le", a different shape under a known name */
  assert_null(sl_metrics_family(m, SL_METRIC_GAUGE, "0bad", "x", NULL, NULL, 0));
  assert_null(sl_metrics_family(m, SL_METRIC_GAUGE, "bad-name", "x", NULL, NULL, 0));
  assert_null(sl_metrics_family(m, SL_METRIC_GAUGE, "ok", "x", (const char *[]){"a:b", NULL}, NULL, 0));
  assert_null(sl_metrics_family(m, SL_METRIC_HISTOGRAM, "ok2", "x", (const char *[]){"le", NULL},
                                (const double[]){1}, 1));
  assert_null(sl_metrics_family(m, SL_METRIC_GAUGE, "shiplog_test_total", "x", NULL, NULL, 0));
  assert_ptr_equal(sl_metrics_family(m, SL_METRIC_COUNTER, "shiplog_test_total", "other help",
                                     (const char *[]){"stream", "reason", NULL}, NULL, 0), f);
  assert_null(sl_metrics_family(m, SL_METRIC_HISTOGRAM, "h", "x", NULL, (const double[]){2, 1}, 2));
  sl_metrics_free(m);
}

static void metrics_histogram_buckets_cumulative(void **state) {
  (void)state;
  sl_metrics *m;
  assert_int_equal(sl_metrics_new(&m), 0);
  const double b[] = {0.001, 0.01, 0.1, 1};
  sl_metric_family *f = sl_metrics_family(m, SL_METRIC_HISTOGRAM, "shiplog_test_latency_seconds",
                                          "Latency.", (const char *[]){"stream", NULL}, b, 4);
  assert_non_null(f);
  sl_metric *s = sl_metric_series(f, (const char *[]){"main"});
  const double obs[] = {0.0005, 0.001 /* le is inclusive */, 0.005, 0.05, 0.05, 0.5, 7, 100};
  double sum = 0;
  for (size_t i = 0; i < SL_ARRAY_LEN(obs); i++) {
    sl_metric_observe(s, obs[i]);
    sum += obs[i];
  }
  char *t;
  render(m, &t);
  assert_line(t, "# TYPE shiplog_test_latency_seconds histogram");
  assert_line(t, "shiplog_test_latency_seconds_bucket{stream=\"main\",le=\"0.001\"} 2");
  assert_line(t, "shiplog_test_latency_seconds_bucket{stream=\"main\",le=\"0.01\"} 3");
  assert_line(t, "shiplog_test_latency_seconds_bucket{stream=\"main\",le=\"0.1\"} 5");
  assert_line(t, "shiplog_test_latency_seconds_bucket{stream=\"main\",le=\"1\"} 6");
  assert_line(t, "shiplog_test_latency_seconds_bucket{stream=\"main\",le=\"+Inf\"} 8");
  assert_line(t, "shiplog_test_latency_seconds_count{stream=\"main\"} 8");
  char want[128];
  snprintf(want, sizeof want, "shiplog_test_latency_seconds_sum{stream=\"main\"} %.15g", sum);
  assert_line(t, want);
  /* buckets in ascending order, every one before _sum */
  const char *p1 = strstr(t, "le=\"0.001\""), *p2 = strstr(t, "le=\"1\""), *p3 = strstr(t, "le=\"+Inf\"");
  assert_true(p1 < p2 && p2 < p3 && p3 < strstr(t, "_sum{"));
  free(t);

  /* the shared latency buckets are valid for a family */
  assert_non_null(sl_metrics_family(m, SL_METRIC_HISTOGRAM, "shiplog_test2_seconds", "x", NULL,
                                    sl_metrics_latency_buckets, sl_metrics_latency_nbuckets));
  sl_metrics_free(m);
}

typedef struct hammer {
  sl_metric *c, *h;
} hammer;

static void *hammer_main(void *arg) {
  hammer *x = arg;
  for (int i = 0; i < 100000; i++) {
    sl_metric_add(x->c, 1);
    sl_metric_observe(x->h, 0.5);
  }
  return NULL;
}

static void metrics_concurrent_updates(void **state) {
  (void)state;
  sl_metrics *m;
  assert_int_equal(sl_metrics_new(&m), 0);
  hammer x = {
      .c = sl_metric_series(sl_metrics_family(m, SL_METRIC_COUNTER, "c_total", "c", NULL, NULL, 0), NULL),
      .h = sl_metric_series(sl_metrics_family(m, SL_METRIC_HISTOGRAM, "h_seconds", "h", NULL,
                                              (const double[]){1}, 1), NULL)};
  pthread_t t[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &x), 0);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  char *text;
  render(m, &text);
  assert_line(text, "c_total 400000");
  assert_line(text, "h_seconds_bucket{le=\"1\"} 400000");
  assert_line(text, "h_seconds_count 400000");
  assert_line(text, "h_seconds_sum 200000");
  free(text);
  sl_metrics_free(m);
}

typedef struct collect_arg {
  sl_metric *g;
  int calls;
} collect_arg;

static void collect(void *arg) {
  collect_arg *c = arg;
  c->calls++;
  sl_metric_set(c->g, c->calls);
}

static void metrics_collect_callbacks(void **state) {
  (void)state;
  sl_metrics *m;
  assert_int_equal(sl_metrics_new(&m), 0);
  collect_arg c = {.g = sl_metric_series(sl_metrics_family(m, SL_METRIC_GAUGE, "g", "g", NULL, NULL, 0), NULL)};
  assert_int_equal(sl_metrics_on_collect(m, collect, &c), 0);
  char *t0;
  render(m, &t0);
  free(t0);
  char *t;
  render(m, &t);
  assert_line(t, "g 2");
  free(t);
  sl_metrics_off_collect(m, collect, &c);
  render(m, &t);
  assert_line(t, "g 2");
  assert_int_equal(c.calls, 2);
  free(t);
  sl_metrics_free(m);
}

/* ---- HTTP ------------------------------------------------------------------------ */

static int listen_any(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 8), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* Send req, return the whole response (malloc'd). */
static char *http(int port, const char *req) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while ((n = recv(fd, buf + len, cap - 1 - len, 0)) > 0) len += (size_t)n;
  buf[len] = 0;
  close(fd);
  return buf;
}

static void metrics_http_endpoint(void **state) {
  (void)state;
  sl_metrics *m;
  sl_metrics_server *srv;
  int port;
  assert_int_equal(sl_metrics_new(&m), 0);
  sl_metric_set(sl_metric_series(sl_metrics_family(m, SL_METRIC_GAUGE, "shiplog_up", "Up.", NULL, NULL, 0), NULL), 1);
  assert_int_equal(sl_metrics_serve(m, listen_any(&port), &srv), 0);

  char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  const char *body = strstr(r, "\r\n\r\n");
  assert_non_null(body);
  body += 4;
  char want[64];
  snprintf(want, sizeof want, "Content-Length: %zu\r\n", strlen(body));
  assert_non_null(strstr(r, want));
  assert_line(body, "shiplog_up 1");
  free(r);

  r = http(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  assert_non_null(strstr(r, " 200 OK"));
  free(r);
  r = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, " 200 OK"));
  assert_string_equal(strstr(r, "\r\n\r\n"), "\r\n\r\n");
  free(r);
  r = http(port, "GET / HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 404 Not Found"));
  free(r);
  r = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 405 "));
  assert_non_null(strstr(r, "Allow: GET, HEAD"));
  free(r);
  r = http(port, "nonsense\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 400 "));
  free(r);
  sl_metrics_server_stop(srv);
  sl_metrics_free(m);
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Idle connections (more of them than there are slots) and one that sent
 * half a request never delay a scrape: each holds only its own slot (it
 * used to be served one at a time, 5 s per idle connection). */
static void metrics_http_serves_several_scrapers(void **state) {
  (void)state;
  sl_metrics *m;
  sl_metrics_server *srv;
  int port, idle[24];
  assert_int_equal(sl_metrics_new(&m), 0);
  sl_metric_set(sl_metric_series(sl_metrics_family(m, SL_METRIC_GAUGE, "shiplog_up", "Up.", NULL, NULL, 0), NULL), 1);
  assert_int_equal(sl_metrics_serve(m, listen_any(&port), &srv), 0);
  for (int i = 0; i < 5; i++) idle[i] = connect_to(port);
  int half = connect_to(port);
  assert_int_equal(send(half, "GET /metr", 9, 0), 9);
  usleep(100000);
  uint64_t t0 = sl_mono_ns();
  for (int i = 0; i < 3; i++) {
    char *r = http(port, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_line(strstr(r, "\r\n\r\n") + 4, "shiplog_up 1");
    free(r);
  }
  uint64_t ms = (sl_mono_ns() - t0) / 1000000;
  printf("3 scrapes beside 6 idle connections: %llu ms\n", (unsigned long long)ms);
  assert_true(ms < 6000); /* a generous bound: one at a time, the idle ones would cost 2 s each */
  /* The half request is finished and answered. */
  assert_int_equal(send(half, "ics HTTP/1.0\r\n\r\n", 17, 0), 17);
  char buf[4096];
  ssize_t n = recv(half, buf, sizeof buf - 1, 0);
  assert_true(n > 0);
  buf[n] = 0;
  assert_non_null(strstr(buf, " 200 OK"));
  close(half);
  /* More idle connections than slots: the oldest make room. */
  for (int i = 5; i < 24; i++) idle[i] = connect_to(port);
  usleep(100000);
  t0 = sl_mono_ns();
  char *r = http(port, "GET /metrics HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, " 200 OK"));
  free(r);
  assert_true((sl_mono_ns() - t0) / 1000000 < 1000);
  /* Idle ones lose their slot after the client timeout. */
  struct pollfd pf = {.fd = idle[23], .events = POLLIN};
  assert_int_equal(poll(&pf, 1, 5000), 1);
  assert_int_equal(recv(idle[23], buf, sizeof buf, 0), 0);
  for (int i = 0; i < 24; i++) close(idle[i]);
  sl_metrics_server_stop(srv);
  sl_metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(metrics_counter_and_gauge_exposition),
      cmocka_unit_test(metrics_escaping),
      cmocka_unit_test(metrics_histogram_buckets_cumulative),
      cmocka_unit_test(metrics_concurrent_updates),
      cmocka_unit_test(metrics_collect_callbacks),
      cmocka_unit_test(metrics_http_endpoint),
      cmocka_unit_test(metrics_http_serves_several_scrapers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
