/*
 * Helpers shared by the subcommands; see cli.h. Kept free of any one
 * command's logic: parsing, messages, progress and safe output files.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_base.h"

int cli_getopt(int argc, char **argv, const struct option *opts) {
  /* getopt names argv[0] in its complaints: "shiplog CMD", made once (the
   * loop calls this again with argv[0] already the name made here). */
  static char progname[64];
  if (argv[0] != progname) {
    snprintf(progname, sizeof progname, "shiplog %s", argv[0]);
    argv[0] = progname;
  }
  int c, idx = -1;
  if (cli__config_getopt(opts, &c)) return c;
  c = getopt_long(argc, argv, "h", opts, &idx);
  cli__config_seen(opts, c, idx);
  return c;
}

int cli_help(const char *text) {
  fputs(text, stdout);
  return CLI_OK;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  if (fmt) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[600];
    cli__config_where(msg, where, sizeof where);
    sl_diag_error("%s%s: %s", where, cmd, msg);
  }
  fprintf(stderr, "Try 'shiplog %s --help'.\n", cmd);
  return CLI_USAGE;
}

int cli_positional(int argc, char **argv, const char *cmd, int n, const char *const *names, char ***pos) {
  int have = argc - optind;
  if (have < n) return cli_usage(cmd, "missing %s", names[have]);
  if (have > n) return cli_usage(cmd, "unexpected argument '%s'", argv[optind + n]);
  *pos = argv + optind;
  return CLI_OK;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *text, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-')
    return cli_usage(cmd, "--%s: '%s' is not a non-negative integer", opt, text);
  *out = v;
  return CLI_OK;
}

int cli_parse_ms(const char *cmd, const char *opt, const char *text, int *out) {
  uint64_t v = 0;
  if (cli_parse_u64(cmd, opt, text, &v)) return CLI_USAGE;
  if (v < 1 || v > 3600000) return cli_usage(cmd, "--%s must lie between 1 and 3600000", opt);
  *out = (int)v;
  return CLI_OK;
}

/* Read by other threads (the receiver's sessions, serve's connections), so
 * an atomic: a signal handler may store to a lock-free one, and a volatile
 * sig_atomic_t is only safe within the handler's own thread. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag is set from a signal handler");
static atomic_int stop_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

atomic_int *cli_stop_on_signals(void) {
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return &stop_requested;
}

int cli_parse_size(const char *cmd, const char *opt, const char *text, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  int shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10;
  if (*end == 'M' || *end == 'm') shift = 20;
  if (*end == 'G' || *end == 'g') shift = 30;
  if (shift) end++;
  if (errno || end == text || *end || text[0] == '-' || (v << shift >> shift) != v)
    return cli_usage(cmd, "--%s: '%s' is not a size in bytes (suffix K, M or G allowed)", opt, text);
  *out = v << shift;
  return CLI_OK;
}

int cli_parse_time(const char *cmd, const char *opt, const char *text, uint64_t *out) {
  if (sl_time_parse(text, out))
    return cli_usage(cmd, "--%s: '%s' is not a TIME (ISO-8601 with a zone, a date, or @SECONDS)", opt, text);
  return CLI_OK;
}

int cli_open_store(const char *dir, unsigned flags, sl_store **out) {
  int rc = sl_store_open(dir, flags, out);
  if (rc) sl_diag_error("%s: cannot open store: %s", dir, sl_strerror(rc));
  return rc;
}

const char *cli_join(char *buf, size_t len, const char *dir, const char *name) {
  snprintf(buf, len, "%s/%s", dir, name);
  return buf;
}

/* ---- progress ---------------------------------------------------------------------- */
void cli_progress_init(cli_progress *p, const char *what, bool bytes, bool quiet) {
  *p = (cli_progress){.what = what, .bytes = bytes, .on = !quiet && isatty(STDERR_FILENO), .start_ns = sl_mono_ns()};
}

static void amount(char *buf, size_t len, double v, bool bytes) {
  if (bytes)
    snprintf(buf, len, "%.1f MiB", v / (1 << 20));
  else
    snprintf(buf, len, "%.0f", v);
}

static void duration(char *buf, size_t len, double s) {
  uint64_t n = (uint64_t)(s + 0.5);
  if (n < 60)
    snprintf(buf, len, "%us", (unsigned)n);
  else if (n < 3600)
    snprintf(buf, len, "%um%02us", (unsigned)(n / 60), (unsigned)(n % 60));
  else
    snprintf(buf, len, "%uh%02um", (unsigned)(n / 3600), (unsigned)(n / 60 % 60));
}

void cli_progress_update(void *arg, uint64_t done, uint64_t total) {
  cli_progress *p = arg;
  uint64_t now = sl_mono_ns();
  if (!p->on || (p->shown && now - p->last_ns < 200000000ull)) return;
  p->last_ns = now;
  p->shown = true;
  char d[32], t[32], r[32], l[32], tail[96] = "";
  double secs = (double)(now - p->start_ns) / 1e9, per = secs > 0 ? (double)done / secs : 0;
  amount(d, sizeof d, (double)done, p->bytes);
  if (secs >= 0.5 && done) { /* a rate from the first instants says nothing */
    amount(r, sizeof r, per, p->bytes);
    if (total > done) {
      duration(l, sizeof l, (double)(total - done) / per);
      snprintf(tail, sizeof tail, ", %s/s, %s left", r, l);
    } else {
      snprintf(tail, sizeof tail, ", %s/s", r);
    }
  }
  if (total) {
    amount(t, sizeof t, (double)total, p->bytes);
    fprintf(stderr, "\r%s: %s of %s (%.0f%%)%s\033[K", p->what, d, t, 100.0 * (double)done / (double)total, tail);
  } else {
    fprintf(stderr, "\r%s: %s%s\033[K", p->what, d, tail);
  }
}

void cli_progress_end(cli_progress *p) {
  if (p->shown) fputs("\r\033[K", stderr);
  p->shown = false;
}

/* ---- --json ------------------------------------------------------------------------ */
int cli_json_print(json_t *o) {
  if (o && !json_object_get(o, "version")) json_object_set_new(o, "version", json_string(sl_version()));
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) return CLI_FAIL;
  puts(s);
  free(s);
  return fflush(stdout) ? CLI_FAIL : CLI_OK;
}

double cli_seconds_since(uint64_t start_ns) { return (double)(sl_mono_ns() - start_ns) / 1e9; }

/* ---- output files ---------------------------------------------------------------------- */
int cli_out_open(cli_out *o, const char *path) {
  struct stat sb;
  *o = (cli_out){.path = path && strcmp(path, "-") ? path : "<stdout>"};
  if (!path || !strcmp(path, "-")) {
    o->f = stdout;
    return 0;
  }
  if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
    o->f = fopen(path, "w");
  } else {
    size_t n = strlen(path) + 5;
    if (!(o->tmp = malloc(n))) return -ENOMEM;
    snprintf(o->tmp, n, "%s.tmp", path);
    /* 0600: dumps and exports hold the whole graph (README "Security"). */
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    o->f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd >= 0 && !o->f) close(fd);
  }
  if (!o->f) {
    int rc = -errno;
    sl_diag_error("%s: cannot create: %s", o->tmp ? o->tmp : path, sl_strerror(rc));
    free(o->tmp);
    o->tmp = NULL;
    return rc;
  }
  setvbuf(o->f, NULL, _IOFBF, 1 << 20);
  return 0;
}

int cli_out_commit(cli_out *o) {
  int rc = 0;
  if (fflush(o->f) != 0) rc = errno ? -errno : -EIO;
  /* The file, then its name in the directory, through the fault layer. */
  else if (o->tmp && !(rc = sl_fault(SL_FAULT_FILE_FSYNC))) rc = sl_fsync(fileno(o->f));
  if (o->f != stdout && fclose(o->f) != 0 && !rc) rc = errno ? -errno : -EIO;
  o->f = NULL;
  if (rc) sl_diag_error("%s: %s", o->path, sl_strerror(rc));
  else if (o->tmp) rc = sl_rename_durable(o->tmp, o->path);
  if (rc && o->tmp) unlink(o->tmp);
  free(o->tmp);
  o->tmp = NULL;
  return rc;
}

void cli_out_abort(cli_out *o) {
  if (o->f && o->f != stdout) fclose(o->f);
  if (o->tmp) unlink(o->tmp);
  free(o->tmp);
  *o = (cli_out){0};
}
