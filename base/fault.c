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
 * A point may also "lose power" (SL_FAULT_CRASH, SL_FAULT_TEAR), as
 * SQLite's crash-test VFS does: while such a code is armed, every write
 * through sl_write_all / sl_pwrite_all / the log's frame write first
 * reports itself (sl_fault_write), and the tracker keeps, per file (by
 * inode, through a dup of the descriptor, so that renames and closes do
 * not lose it), its size before the first write since its last sync and
 * the bytes those writes overwrite (a small file's whole content). A
 * successful sl_fsync / sl_fdatasync forgets the file. At the crash every
 * tracked file is put back as the disk would hold it after a power loss:
 * CRASH restores the old bytes and size; TEAR keeps, per overwrite, the old
 * or the new bytes, and a random prefix of the appended bytes whose tail
 * reads as zeros (an allocated block never written). Then _exit, with no
 * atexit handlers and no flush: the page cache now holds the "disk". The
 * power goes out for every thread at once: the crash waits for the tracked
 * writes other threads are inside of (sl_fault_write .. sl_fault_write_end)
 * and keeps fault_mu, so that no later write, and no sync's "durable",
 * lands after the restore (a store's checkpoint thread writes and syncs
 * while its committers do).
 *
 * A point may also stall (SL_FAULT_STALL): it sleeps, outside fault_mu,
 * then lets the operation go on, as a disk that takes seconds to sync.
 *
 * Processes (the e2e and nemesis scripts) arm points through $SL_FAULTS,
 * read at the first fault point or tracked write.
 *
 * Without SL_FAULT_INJECTION sl_base.h turns sl_fault() into the constant 0
 * and this file compiles only the sync wrappers.
 */
#include "sl_base.h"

#include <errno.h>
#include <unistd.h>

#ifdef SL_FAULT_INJECTION
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void fault_forget(int fd);
#endif

int sl_fsync(int fd) {
  if (fsync(fd)) return -errno;
#ifdef SL_FAULT_INJECTION
  fault_forget(fd);
#endif
  return 0;
}

int sl_fdatasync(int fd) {
  if (fdatasync(fd)) return -errno;
#ifdef SL_FAULT_INJECTION
  fault_forget(fd);
#endif
  return 0;
}

#ifdef SL_FAULT_INJECTION

struct fault {
  int code;      /* 0: disarmed */
  int skip;      /* passes still to let through */
  int times;     /* failures still to produce; -1: for ever */
  uint64_t hits; /* passes, armed or not */
};

/* Bytes a not yet durable write overwrote. */
struct preimage {
  uint64_t off;
  size_t len;
  uint8_t *old;
};

/* A file with writes since its last sync. */
struct tracked {
  dev_t dev;
  ino_t ino;
  int fd;             /* our dup */
  uint64_t orig_size; /* at its first write since the sync */
  bool whole;         /* pre[0] is the whole original content */
  struct preimage *pre;
  size_t npre;
};

enum { WHOLE_MAX = 64 << 10 }; /* smaller files are saved whole at their first write */

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fault faults[SL_FAULT__COUNT];
static struct tracked *trk; /* under fault_mu */
static size_t ntrk;
static bool tracking; /* a crash or tear is armed */
/* Tracked writes between sl_fault_write and sl_fault_write_end (atomic),
 * and this thread's share of them. */
static unsigned writes_in_flight;
static __thread unsigned my_writes_in_flight;
static __thread bool crashing; /* this thread is restoring the files */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static uint64_t rand_below(uint64_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return n ? rng % n : 0;
}

void sl_fault_seed(uint64_t seed) {
  pthread_mutex_lock(&fault_mu);
  rng = seed ? seed : 1;
  pthread_mutex_unlock(&fault_mu);
}

static void env_init(void) {
  const char *seed = getenv("SL_SEED");
  if (seed) sl_fault_seed(strtoull(seed, NULL, 10) * 2654435761u + 1);
  const char *spec = getenv("SL_FAULTS");
  if (spec && *spec && sl_fault_parse(spec)) sl_diag_error("SL_FAULTS=%s: not POINT:CODE[:SKIP[:TIMES]],...", spec);
}

static bool is_crash(int code) { return code == SL_FAULT_CRASH || code == SL_FAULT_TEAR; }

static void track_free(struct tracked *t) {
  close(t->fd);
  for (size_t i = 0; i < t->npre; i++) free(t->pre[i].old);
  free(t->pre);
}

static struct tracked *track_find(const struct stat *st) {
  for (size_t i = 0; i < ntrk; i++)
    if (trk[i].dev == st->st_dev && trk[i].ino == st->st_ino) return &trk[i];
  return NULL;
}

static void save_pre(struct tracked *t, int fd, uint64_t off, size_t len) {
  struct preimage *np = realloc(t->pre, (t->npre + 1) * sizeof *np);
  if (!np) return;
  t->pre = np;
  struct preimage *p = &t->pre[t->npre];
  p->off = off;
  p->len = len;
  p->old = malloc(len ? len : 1);
  if (!p->old) return;
  long r = sl_pread_full(fd, p->old, len, off);
  if (r < 0) {
    free(p->old);
    return;
  }
  p->len = (size_t)r;
  t->npre++;
}

void sl_fault_write(int fd, int64_t off, size_t len) {
  pthread_once(&env_once, env_init);
  if (crashing || !__atomic_load_n(&tracking, __ATOMIC_ACQUIRE)) return;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) return;
  if (off < 0 && (off = lseek(fd, 0, SEEK_CUR)) < 0) return;
  pthread_mutex_lock(&fault_mu); /* during a crash: for ever */
  __atomic_add_fetch(&writes_in_flight, 1, __ATOMIC_ACQ_REL);
  my_writes_in_flight++;
  struct tracked *t = track_find(&st);
  if (!t) {
    struct tracked *nt = realloc(trk, (ntrk + 1) * sizeof *nt);
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (!nt || dup < 0) {
      if (nt) trk = nt;
      if (dup >= 0) close(dup);
      goto out;
    }
    trk = nt;
    t = &trk[ntrk++];
    *t = (struct tracked){.dev = st.st_dev, .ino = st.st_ino, .fd = dup, .orig_size = (uint64_t)st.st_size};
    if (st.st_size <= WHOLE_MAX) {
      t->whole = true;
      save_pre(t, fd, 0, (size_t)st.st_size);
    }
  }
  if (!t->whole && (uint64_t)off < t->orig_size)
    save_pre(t, fd, (uint64_t)off, (size_t)SL_MIN((uint64_t)len, t->orig_size - (uint64_t)off));
out:
  pthread_mutex_unlock(&fault_mu);
}

void sl_fault_write_end(void) {
  if (!my_writes_in_flight) return;
  my_writes_in_flight--;
  __atomic_sub_fetch(&writes_in_flight, 1, __ATOMIC_ACQ_REL);
}

static void fault_forget(int fd) {
  if (crashing || !__atomic_load_n(&tracking, __ATOMIC_ACQUIRE)) return;
  struct stat st;
  if (fstat(fd, &st)) return;
  pthread_mutex_lock(&fault_mu); /* during a crash: for ever, the sync did not finish */
  struct tracked *t = track_find(&st);
  if (t) {
    track_free(t);
    *t = trk[--ntrk];
  }
  pthread_mutex_unlock(&fault_mu);
}

/* The power goes out (caller holds fault_mu), for every thread: tracked
 * writes other threads began are waited for, and from now on their
 * sl_fault_write and their syncs' fault_forget wait for fault_mu, which is
 * never released, so that no write or sync lands after the restore. */
static void __attribute__((noreturn)) crash(enum sl_fault_point point, int code) {
  char msg[96];
  int n = snprintf(msg, sizeof msg, "fault point %d: simulated power loss (%s of %zu unsynced files)\n",
                   (int)point, code == SL_FAULT_TEAR ? "tear" : "drop", ntrk);
  if (write(STDERR_FILENO, msg, (size_t)n) < 0) { /* nothing to do */
  }
  crashing = true; /* our own restores are not tracked */
  while (__atomic_load_n(&writes_in_flight, __ATOMIC_ACQUIRE) > my_writes_in_flight) sched_yield();
  for (size_t i = 0; i < ntrk; i++) {
    struct tracked *t = &trk[i];
    struct stat st;
    if (fstat(t->fd, &st)) continue;
    uint64_t cur = (uint64_t)st.st_size, size = t->orig_size;
    bool tear = code == SL_FAULT_TEAR;
    if (tear && cur > t->orig_size) size = t->orig_size + rand_below(cur - t->orig_size + 1);
    for (size_t j = t->npre; j-- > 0;) {
      if (tear && rand_below(2)) continue; /* this overwrite reached the disk */
      (void)sl_pwrite_all(t->fd, t->pre[j].old, t->pre[j].len, t->pre[j].off);
      if (t->whole) size = t->orig_size; /* the old file, whole */
    }
    if (ftruncate(t->fd, (off_t)size)) continue;
    if (tear && size > t->orig_size) { /* the last block was allocated but never written */
      uint8_t zero[512] = {0};
      size_t z = (size_t)rand_below(SL_MIN(size - t->orig_size, sizeof zero) + 1);
      (void)sl_pwrite_all(t->fd, zero, z, size - z);
    }
  }
  _exit(SL_FAULT_CRASH_EXIT);
}

int sl_fault(enum sl_fault_point point) {
  if ((unsigned)point >= SL_FAULT__COUNT) return 0;
  pthread_once(&env_once, env_init);
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
  if (is_crash(rc)) crash(point, rc);
  pthread_mutex_unlock(&fault_mu);
  if (rc == SL_FAULT_STALL) {
    struct timespec ts = {SL_FAULT_STALL_MS / 1000, (SL_FAULT_STALL_MS % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
    rc = 0;
  }
  return rc;
}

/* Whether any point still holds a crash code (caller holds fault_mu). */
static void tracking_update(void) {
  bool on = false;
  for (int i = 0; i < SL_FAULT__COUNT; i++) on |= is_crash(faults[i].code) && faults[i].times != 0;
  if (!on) {
    for (size_t i = 0; i < ntrk; i++) track_free(&trk[i]);
    ntrk = 0;
  }
  __atomic_store_n(&tracking, on, __ATOMIC_RELEASE);
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
  tracking_update();
  pthread_mutex_unlock(&fault_mu);
}

int sl_fault_parse(const char *spec) {
  static const struct {
    const char *name;
    int code;
  } codes[] = {{"EIO", -EIO}, {"ENOSPC", -ENOSPC}, {"EDQUOT", -EDQUOT}, {"EACCES", -EACCES},
               {"crash", SL_FAULT_CRASH}, {"tear", SL_FAULT_TEAR}, {"stall", SL_FAULT_STALL}};
  const char *p = spec;
  while (*p) {
    char name[16];
    int point, skip = 0, times = 1, used = 0;
    int n = sscanf(p, "%d:%15[A-Za-z]%n:%d%n:%d%n", &point, name, &used, &skip, &used, &times, &used);
    if (n < 2 || point <= 0 || point >= SL_FAULT__COUNT) return SL_EINVAL;
    int code = 0;
    for (size_t i = 0; i < SL_ARRAY_LEN(codes); i++)
      if (strcmp(name, codes[i].name) == 0) code = codes[i].code;
    if (!code) return SL_EINVAL;
    sl_fault_set((enum sl_fault_point)point, code, skip, times);
    p += used;
    if (*p == ',') p++;
    else if (*p) return SL_EINVAL;
  }
  return 0;
}

uint64_t sl_fault_hits(enum sl_fault_point point) {
  if ((unsigned)point >= SL_FAULT__COUNT) return 0;
  pthread_mutex_lock(&fault_mu);
  uint64_t n = faults[point].hits;
  pthread_mutex_unlock(&fault_mu);
  return n;
}
#endif
