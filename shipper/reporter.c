/*
 * reporter.c: the shipper's background writer (shipper_int.h).
 *
 * BACKGROUND WRITER. The consumer position file is written with fsync
 * (sl_log_consumer_set) and the status file with rename; both are done by a
 * reporter thread, at most every 200 ms and at exit, so that the streaming
 * thread never waits for a disk flush between a commit and its shipping.
 * The one exception is the registration at the start of a session (start
 * txid - 1), which the streaming thread waits for BEFORE shipping.
 */
#include "shipper_int.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sl_status.h"

static void *reporter_main(void *arg) {
  reporter *r = arg;
  char status[sizeof r->status];
  int logged_rc = 0;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->stop && !r->status_new &&
           !(r->have_want && (!r->written_valid || r->want != r->written)) && r->gen_done == r->gen)
      pthread_cond_wait(&r->cv, &r->mu);
    bool stopping = r->stop;
    bool write_consumer = r->have_want && (!r->written_valid || r->want != r->written);
    uint64_t want = r->want, gen = r->gen;
    bool write_status = r->status_new;
    if (write_status) memcpy(status, r->status, sizeof status);
    r->status_new = false;
    r->urgent = false;
    pthread_mutex_unlock(&r->mu);

    int rc = write_consumer ? sl_log_consumer_set(r->logdir, r->consumer, want) : 0;
    if (rc && rc != logged_rc)
      sl_diag_warn("%s: cannot record consumer %s at txid %llu: %s", r->logdir, r->consumer,
                  (unsigned long long)want, sl_strerror(rc));
    logged_rc = rc;
    if (write_status && sl__ship_reporter_own(r)) (void)sl_status_write(r->status_path, status);

    pthread_mutex_lock(&r->mu);
    if (write_consumer && rc == 0) {
      r->written = want;
      r->written_valid = true;
    }
    r->write_rc = rc;
    r->gen_done = gen;
    pthread_cond_broadcast(&r->cv);
    if (stopping && !r->status_new && (!r->have_want || r->want == r->written)) break;
    if (stopping) continue;
    /* Rate limit: sleep REPORT_MS unless stopped or asked to hurry. */
    struct timespec until;
    sl_deadline_after_ns(&until, CLOCK_REALTIME, REPORT_MS * 1000000ull);
    while (!r->stop && !r->urgent && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* ALIVE LOCK (shipper.h): take the status file's lock unless another
 * running shipper of the stream holds it. Without a lock file, write as
 * before: the report is still right, only not known to be alive. */
bool sl__ship_reporter_own(reporter *r) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  if (r->owner || r->alive_fd < 0) return true;
  return r->owner = fcntl(r->alive_fd, F_OFD_SETLK, &fl) == 0;
}

int sl__ship_reporter_start(reporter *r) {
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  int rc = sl_thread_start(&r->thread, reporter_main, r);
  if (rc) return rc;
  r->started = true;
  return 0;
}

/* Post a consumer position; with wait, return once it is on disk. */
int sl__ship_reporter_consumer(reporter *r, uint64_t txid, bool wait) {
  pthread_mutex_lock(&r->mu);
  r->want = txid;
  r->have_want = true;
  uint64_t gen = ++r->gen;
  if (wait) r->urgent = true;
  pthread_cond_broadcast(&r->cv);
  int rc = 0;
  if (wait) {
    while (r->gen_done < gen) pthread_cond_wait(&r->cv, &r->mu);
    rc = r->write_rc;
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

void sl__ship_reporter_status(reporter *r, const char *text) {
  pthread_mutex_lock(&r->mu);
  snprintf(r->status, sizeof r->status, "%s", text);
  r->status_new = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Write what is pending and end the thread. */
void sl__ship_reporter_stop(reporter *r) {
  if (!r->started) return;
  pthread_mutex_lock(&r->mu);
  r->stop = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  r->started = false;
}
