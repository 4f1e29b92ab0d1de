/*
 * Helper threads. A library thread (a store's checkpointer, a log's sync
 * helper, the shipper's sealer and reporter, the metrics server) starts with
 * every signal blocked, so that SIGINT and SIGTERM reach the application's
 * own threads, which wait for them, and never a helper that would leave the
 * signal unnoticed.
 */
#include "sl_base.h"

#include <signal.h>

int sl_thread_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return -rc;
}
