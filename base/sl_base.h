/*
 * base: what every shiplog module shares and nothing else provides.
 *
 *   - Errors. Every function returns 0 on success or a negative code:
 *     either -errno passed through from the OS, or one of shiplog's own codes
 *     below (a reserved range starting at -10000 so it never meets errno).
 *     sl_strerror() and sl_errname() cover both.
 *   - CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
 *   - Clocks: wall time in µs (injectable for tests), monotonic ns.
 *   - The program's version (CMake's project VERSION) and strict UTF-8.
 *   - A small toolkit: the growable byte buffer (sl_buf), path joins, hex.
 *   - Diagnostics: sl_diag_error() etc. write one line to stderr with the
 *     program name (text or JSON, with time, stream and peer for daemons);
 *     modules log the context (file, offset, txid, peer) where the failure
 *     happens and return the code. Never log secrets.
 *   - Invariants: SL_ASSERT, on in every build type (NDEBUG leaves it in).
 *   - Fault points: numbered hooks at every write, fsync, rename and send.
 *     In release builds sl_fault() is the constant 0 and costs nothing; test
 *     builds (SL_FAULT_INJECTION) can make any point fail. Numbers are never
 *     reused.
 *
 * Thread safety: everything here is safe from any thread, except
 * sl_clock_set_for_test() and sl_fault_set(), which tests call before
 * starting threads.
 */
#ifndef SL_BASE_H
#define SL_BASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The error codes (SL_ERRNO_MAP, enum sl_error), sl_strerror, sl_errname and
 * sl_version are part of the public API: their one home is include/shiplog.h
 * (which this header includes), implemented here (errors.c, version.c). */
#include "shiplog.h"

/* ---- version ------------------------------------------------------------ */
/* "shiplog 0.1.0" as `shiplog --version` prints it and the replication
 * Hello carries it (sl_version, "0.1.0", is in shiplog.h). Static. */
const char *sl_software(void);

/* ---- diagnostics ---------------------------------------------------- */
/* Program name printed before each line ("shiplog"); set once by main(). */
void sl_set_progname(const char *name);
void sl_diag_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_diag_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_diag_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Info lines are printed only when verbose; errors and warnings always. */
void sl_diag_set_verbose(bool on);
/* Line format (base/diag.c has examples): TEXT "shiplog: error: TEXT", or
 * JSON, one object per line with time, level, program, stream, peer, msg.
 * Timestamps (long-running commands) add the time and the thread's context
 * to text lines. Set once by main() before threads start. */
typedef enum sl_diag_format { SL_DIAG_TEXT = 0, SL_DIAG_JSON } sl_diag_format;
void sl_diag_set_format(sl_diag_format f);
void sl_diag_set_timestamps(bool on);
/* The calling thread's context, added to every line it logs from now on:
 * the stream and the peer (HOST:PORT) it works for; NULL or "" for none.
 * Copied; thread-local. */
void sl_diag_context(const char *stream, const char *peer);

/* ---- invariants ---------------------------------------------------- */
/* SL_ASSERT(cond, fmt, ...): when cond is false, log one error line
 * "FILE:LINE: invariant `cond` failed: MESSAGE" and abort(). It is compiled
 * in every build type (unlike assert(), NDEBUG does not remove it), so
 * conditions must be cheap: comparisons of fields already in hand, no I/O,
 * no locks, no walks over data. The message names the values involved.
 * Used for states that a bug alone can reach (a durable mark going back,
 * a window overrun), never for bad input or I/O errors, which are returned. */
#define SL_ASSERT(cond, ...)                                                   \
  do {                                                                         \
    if (__builtin_expect(!(cond), 0)) sl__assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)
_Noreturn void sl__assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- CRC32C --------------------------------------------------------- */
/* crc: 0 to start, or the result of a previous call to continue. */
uint32_t sl_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- clocks ----------------------------------------------------------- */
/* Wall clock, µs since the epoch (UTC). Tests may replace it. */
uint64_t sl_now_us(void);
void sl_clock_set_for_test(uint64_t (*fn)(void));
/* Monotonic clock in ns, for latencies and timeouts. */
uint64_t sl_mono_ns(void);
/* *ts := ns from now on `clock`, the absolute time pthread_cond_timedwait
 * takes (CLOCK_REALTIME unless the condition variable was given another). */
void sl_deadline_after_ns(struct timespec *ts, clockid_t clock, uint64_t ns);

/* ---- threads (thread.c) ---------------------------------------------- */
/* pthread_create with every signal blocked in the new thread (signals go to
 * the application's threads). 0 or -errno. */
int sl_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* Parse a TIME as spec/cli.md defines it: ISO-8601 with a zone
 * ("2026-11-25T14:03:07Z", "2026-11-25T15:03:07.250+01:00", up to µs), a
 * date alone ("2021-01-01": midnight UTC) or "@SECONDS[.FRACTION]".
 * Returns 0 and µs since the epoch, or SL_EINVAL. */
int sl_time_parse(const char *text, uint64_t *out_us);
/* Format µs since the epoch as "2026-11-25T14:03:07.123456Z" (fraction
 * omitted when zero). buf must hold 32 bytes. Returns buf. */
char *sl_time_format(uint64_t us, char *buf, size_t len);

/* ---- time zones (base/tzdb.c; the public text functions are in
 * include/shiplog.h, base/temporal.c) -------------------------------------- */
/* IANA zones from the system's zone database: the TZif files under $TZDIR or
 * /usr/share/zoneinfo (Debian's tzdata), read once per zone and cached for the
 * life of the process; safe from any thread (the process's TZ is never
 * touched). A name is a relative path of the database as written
 * ("Europe/Paris", case-sensitive); anything else (not found, not TZif, "..",
 * the leap-second "right/" tree) is SL_EINVAL, without a log line: the caller
 * names its input. */
/* 0 when name is a zone of the database. */
int sl_tz_exists(const char *name);
/* The offset (seconds east of UTC) in force at utc_seconds. */
int sl_tz_offset_at(const char *name, int64_t utc_seconds, int32_t *offset);
/* The instant of a wall-clock time (local_seconds since 1970-01-01T00:00 of
 * that clock) in the zone, as java.time's ZonedDateTime.ofLocal (Neo4j):
 * in an overlap the earlier offset, or *preferred when it is the other valid
 * one; in a gap the time moves forward by the gap's length (returns 1 then).
 * With preferred not valid there: SL_EINVAL ("offset and zone do not
 * match"), except that, as java.time, the offset before a gap is accepted. */
int sl_tz_resolve_local(const char *name, int64_t local_seconds, const int32_t *preferred, int64_t *utc_seconds,
                        int32_t *offset);
/* The database's version ("2025b", the "# version" line of tzdata.zi), or
 * "unknown". Static. */
const char *sl_tz_version(void);
/* Parse a TZif image (the fuzz target's entry) and give the offset at probe. */
int sl__tzif_parse(const uint8_t *buf, size_t len, int64_t probe, int32_t *offset);

/* ---- UTF-8 (strict: no overlong forms, surrogates or code points past
 * U+10FFFF) ----------------------------------------------------------- */
/* The character at buf[0..n): its length (1..4) and *cp, or 0 when the
 * bytes there are not one valid UTF-8 character (or n is 0). */
size_t sl_utf8_decode(const void *buf, size_t n, uint32_t *cp);
/* cp as UTF-8 into out: its length (1..4), or 0 for a surrogate or a code
 * point past U+10FFFF. */
size_t sl_utf8_encode(uint32_t cp, char out[4]);

/* ---- buffers ---------------------------------------------------------- */
/* A growable byte buffer; {0} is an empty one. data[0..len) is the content,
 * cap the bytes allocated. Not thread-safe: one owner at a time. */
typedef struct sl_buf {
  uint8_t *data;
  size_t len, cap;
} sl_buf;
/* Make cap >= `cap` total bytes (not `cap` more), keeping data[0..len).
 * Returns 0 or -ENOMEM (the buffer is then unchanged). */
int sl_buf_reserve(sl_buf *b, size_t cap);
/* Free the memory and reset to {0}; safe on an empty buffer. */
void sl_buf_free(sl_buf *b);

/* ---- arenas (base/arena.c) ----------------------------------------------
 * Bump allocation, freed or reset in one call: decoded records (the store),
 * a statement's rows and values (the query engine), a Bolt message's values.
 * `limit` caps the bytes one arena hands out (0: none); `budget`, when set,
 * caps the chunk bytes of every arena that shares it (a statement's memory
 * limit over its several arenas) and remembers that it was hit. */
typedef struct sl_arena_budget {
  size_t used, limit;
  bool over;
} sl_arena_budget;
typedef struct sl_arena {
  struct sl_arena_chunk *chunks; /* newest first */
  uint8_t *p, *end;
  size_t used;  /* bytes handed out since the last reset */
  size_t limit; /* 0: none */
  sl_arena_budget *budget;
} sl_arena;
void sl_arena_init(sl_arena *a, sl_arena_budget *budget); /* a zeroed sl_arena is one with neither */
/* Aligned for any scalar type. NULL: malloc failed, or the limit or budget
 * (then budget->over) was hit. */
void *sl_arena_alloc(sl_arena *a, size_t n);
void *sl_arena_zalloc(sl_arena *a, size_t n);
char *sl_arena_strndup(sl_arena *a, const void *s, size_t n); /* n bytes and a NUL */
/* Forget everything handed out; keeps one chunk as big as the last cycle
 * needed, so that a steady loop stops calling malloc. */
void sl_arena_reset(sl_arena *a);
void sl_arena_free(sl_arena *a);

/* ---- TCP addresses (base/net.c) --------------------------------------- */
struct addrinfo;
/* Parse "HOST:PORT" ("[v6]:PORT" too): SL_EINVAL when it is neither. */
int sl_hostport_parse(const char *text, char *host, size_t hostlen, char *port, size_t portlen);
/* getaddrinfo of HOST:PORT; passive: for a listener, where host "*" is any. */
int sl_resolve(const char *hostport, bool passive, struct addrinfo **res);
/* A listening TCP socket (SO_REUSEADDR, CLOEXEC) on the first address that binds. */
int sl_listen(const char *hostport, int backlog, int *fd_out);
/* The local port of a socket (a listener on port 0 learns its own), or -errno. */
int sl_socket_port(int fd);

/* ---- hex -------------------------------------------------------------- */
/* in[0..n) as lower-case hex ("%02x" per byte): out gets 2n characters and
 * a NUL, so it must hold 2n + 1 bytes. */
void sl_hex_encode(const uint8_t *in, size_t n, char *out);

/* ---- little-endian helpers ------------------------------------------- */
static inline void sl_put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t sl_get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void sl_put_le64(uint8_t *p, uint64_t v) {
  sl_put_le32(p, (uint32_t)v); sl_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t sl_get_le64(const uint8_t *p) {
  return (uint64_t)sl_get_le32(p) | (uint64_t)sl_get_le32(p + 4) << 32;
}
/* Big-endian, for LMDB keys that must sort numerically under memcmp. */
static inline void sl_put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint64_t sl_get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* ---- files ------------------------------------------------------------ */
/* out := "DIR/NAME". Returns 0, or -ENAMETOOLONG when it does not fit in n
 * bytes (logged, naming DIR/NAME; out then holds a truncated prefix, which
 * the caller must not use). */
int sl_path_join(char *out, size_t n, const char *dir, const char *name);
/* write()/pwrite() the whole buffer, retrying short writes and EINTR. */
int sl_write_all(int fd, const void *buf, size_t len);
int sl_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* pread() up to len bytes; returns bytes read (short at EOF) or -errno. */
long sl_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* fsync a directory, so that a create/rename/unlink in it is durable. */
int sl_fsync_dir(const char *dir);
/* Write a small file atomically: DIR/NAME.tmp, fsync, rename, fsync dir. */
int sl_write_file_atomic(const char *dir, const char *name, const void *buf, size_t len);
/* rename(from, to), then fsync to's directory, so that the rename
 * survives a power loss: how a file or directory written as TMP and
 * fsynced is put in place. Fault points SL_FAULT_FILE_RENAME, then
 * SL_FAULT_FILE_FSYNC. Logs its failures naming both paths. */
int sl_rename_durable(const char *from, const char *to);
/* Read a whole small file (at most max bytes) into a malloc'd buffer. */
int sl_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* A held file exists only while its writer lives (files.c): written as
 * sl_write_file_atomic, but flock()ed (LOCK_EX) before it is put in place,
 * its descriptor left open in *held_fd. The writer keeps it open while it
 * lives (the kernel releases the lock when it exits, SIGKILL included), and
 * at a clean end unlinks the file, then closes held_fd. -EWOULDBLOCK when
 * another writer of DIR/NAME is half-way. */
int sl_write_file_held(const char *dir, const char *name, const void *buf, size_t len, int *held_fd);
/* sl_read_file of a held file: -ENOENT also when the file is there but no
 * writer holds it any more (it outlived a writer that was killed, or the
 * machine crashed); the reader leaves such a file where it is (not its own:
 * a new writer may be replacing it). */
int sl_read_file_held(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* mkdir -p with mode 0700 for the created components. */
int sl_mkdir_p(const char *path);
/* rm -rf; missing is success. */
int sl_remove_tree(const char *path);

/* ---- fault points ----------------------------------------------------- */
/* Numbered hooks; a number is never reused for another place. */
enum sl_fault_point {
  SL_FAULT_NONE = 0,
  SL_FAULT_LOG_WRITE = 1,        /* frame write to the active segment */
  SL_FAULT_LOG_FSYNC = 2,        /* group-commit fdatasync */
  SL_FAULT_LOG_SEG_CREATE = 3,   /* creating a new segment file */
  SL_FAULT_LOG_SEG_FSYNC = 4,    /* fdatasync of a segment being sealed */
  SL_FAULT_LOG_DIR_FSYNC = 5,    /* fsync of the log directory */
  SL_FAULT_LOG_UNLINK = 6,       /* removing an old segment */
  SL_FAULT_FILE_RENAME = 7,      /* sl_write_file_atomic, sl_rename_durable rename */
  SL_FAULT_FILE_FSYNC = 8,       /* their fsyncs; fsync of an output file (dump, export) */
  SL_FAULT_STORE_CHECKPOINT = 9, /* LMDB env sync at a checkpoint */
  SL_FAULT_NET_SEND = 10,        /* send() of a replication message */
  SL_FAULT_NET_RECV = 11,        /* recv() of replication bytes */
  SL_FAULT_FILE_WRITE = 12,      /* sl_write_file_atomic write of NAME.tmp */
  SL_FAULT_STORE_LOCK = 13,      /* writer.lock state write + fdatasync */
  SL_FAULT_LOG_HEADER = 14,      /* rewrite of a frameless segment's header + fdatasync */
  SL_FAULT__COUNT
};
/* Codes beyond errno for sl_fault_set: the process "loses power" at the
 * point. Every write the tracker saw since its file's last sl_fsync /
 * sl_fdatasync is dropped (CRASH) or torn (TEAR: a random prefix of the
 * appended bytes survives, its tail zeroed as an unwritten block reads),
 * then the process _exits with SL_FAULT_CRASH_EXIT. LMDB's writes (NOSYNC)
 * are not tracked: after a crash the test simulates a new boot
 * ($SL_TEST_BOOT_ID, test builds), which makes the store restore LMDB to
 * its last checkpoint ($SL_TEST_LMDB_SYNCED: the store copies data.mdb at
 * each sync, so that a test can tear the pages written since). Creates, renames and unlinks are kept (directories are not
 * tracked). */
#define SL_FAULT_CRASH 1
#define SL_FAULT_TEAR 2
#define SL_FAULT_CRASH_EXIT 86
/* A slow disk: the point waits SL_FAULT_STALL_MS, then goes on (returns 0). */
#define SL_FAULT_STALL 3
#define SL_FAULT_STALL_MS 3000
/* fsync / fdatasync that also tell the crash tracker the file is durable.
 * Return 0 or -errno. */
int sl_fsync(int fd);
int sl_fdatasync(int fd);
#ifdef SL_FAULT_INJECTION
/* Returns 0, or the negative code the point must fail with. */
int sl_fault(enum sl_fault_point point);
/* Make `point` fail with `code` after `skip` more passes, `times` times
 * (-1: for ever). point SL_FAULT_NONE clears everything. */
void sl_fault_set(enum sl_fault_point point, int code, int skip, int times);
/* How often each point was passed (to loop over reachable points). */
uint64_t sl_fault_hits(enum sl_fault_point point);
/* Arm points from text "POINT:CODE[:SKIP[:TIMES]],..." where CODE is EIO,
 * ENOSPC, crash, tear or stall (skip 0, times 1 by default). Processes read it
 * from $SL_FAULTS at their first fault point; tests may call it directly.
 * Returns 0 or SL_EINVAL. */
int sl_fault_parse(const char *spec);
/* Crash tracker: a write of len bytes at off (-1: the file position) is
 * about to happen on fd, and sl_fault_write_end: it happened (or failed).
 * Only active while a crash or tear is armed; a power loss in another
 * thread waits for the writes in between. */
void sl_fault_write(int fd, int64_t off, size_t len);
void sl_fault_write_end(void);
/* Seed of the tear's random choices ($SL_SEED in processes). */
void sl_fault_seed(uint64_t seed);
#else
#define sl_fault(point) 0
#define sl_fault_write(fd, off, len) ((void)0)
#define sl_fault_write_end() ((void)0)
#endif

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
