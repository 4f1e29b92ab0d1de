/*
 * Fault points (SQLite's sqlite3FaultSim, numbered). Every write, fsync,
 * rename, unlink and send in shiplog first asks sl_fault(POINT); a non-zero
 * answer is the error that operation must fail with, as if the OS had
 * returned it. A test arms a point with a code, a number of passes to let
 * through first (skip) and how many failures to produce (times, -1 for
 * ever), runs the scenario, and checks the recovery. sl_fault_hits() counts
 * passes, so a test can first run clean, then fail each reachable pass in
 * turn.
 *
 * Without SL_FAULT_INJECTION sl_base.h turns sl_fault() into the constant 0
 * and this file compiles to nothing.
 */
#include "sl_base.h"

#ifdef SL_FAULT_INJECTION
#include <pthread.h>
#include <string.h>

struct fault {
  int code;      /* 0: disarmed */
  int skip;      /* passes still to let through */
  int times;     /* failures still to produce; -1: for ever */
  uint64_t hits; /* passes, armed or not */
};

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fault faults[SL_FAULT__COUNT];

int sl_fault(enum sl_fault_point point) {
  if ((unsigned)point >= SL_FAULT__COUNT) return 0;
  int rc = 0;
  pthread_mutex_lock(&fault_mu);
  struct fault *f = &faults[point];
  f->hits++;
  if (f->code && f->times != 0) {
    if (f->skip > 0) {
      f->skip--;
    } else {
      rc = f->code;
      if (f->times > 0) f->times--;
    }
  }
  pthread_mutex_unlock(&fault_mu);
  return rc;
}

void sl_fault_set(enum sl_fault_point point, int code, int skip, int times) {
  if ((unsigned)point >= SL_FAULT__COUNT) return;
  pthread_mutex_lock(&fault_mu);
  if (point == SL_FAULT_NONE) {
    memset(faults, 0, sizeof faults);
  } else {
    faults[point].code = code;
    faults[point].skip = skip;
    faults[point].times = times;
  }
  pthread_mutex_unlock(&fault_mu);
}

uint64_t sl_fault_hits(enum sl_fault_point point) {
  if ((unsigned)point >= SL_FAULT__COUNT) return 0;
  pthread_mutex_lock(&fault_mu);
  uint64_t n = faults[point].hits;
  pthread_mutex_unlock(&fault_mu);
  return n;
}
#endif
