/*
 * Dump chains (spec/cli.md `dump --chain DIR`; README "Operations",
 * scheduled backups): a directory of backup files (store/dump.h) that a
 * timer fills, one full dump followed by incrementals, each starting where
 * the one before it ended.
 *
 *   shiplog dump --chain DIR [--json]          list the chains, check them
 *   shiplog dump STORE --chain DIR [--full-every D] [--keep-full N]
 *                                              add the next file (a run of
 *                                              shiplog-dump@.timer)
 *   shiplog load --chain DIR --into NEW_DIR    restore the newest state
 *
 * FILE NAMES: <created, UTC, YYYYMMDDTHHMMSSZ>-<full|incr>-<first txid>-
 * <last txid>.dump. The names are for people; everything is decided from
 * the headers (kind, store id, first and last txid, creation time). A file
 * is written as DIR/.partial-PID, fsynced, renamed and the folder fsynced,
 * so a *.dump name always holds a whole file.
 *
 * A CHAIN is a full dump and the incrementals after it (ordered by creation
 * time, then first txid) up to the next full. Each incremental must belong
 * to the same store and start at its parent's last txid + 1 (an empty one,
 * first = last + 1, changes nothing) and, where both are known, continue
 * its parent's history (its cs(first - 1) is the parent's cs(last), dump.h
 * LOADING; a listing knows every file's, load --chain and the scheduled
 * mode those of full dumps and empty files). Listing reads every file whole
 * (sl_dump_verify), so damage anywhere is found; a file that does not
 * follow its parent is named with the parent and both txids, and the
 * listing exits 1.
 *
 * WHICH KIND (the scheduled mode): a full dump when DIR holds no chain of
 * this store, when the newest full is older than --full-every (default 7
 * days; 0: always), or when the newest chain cannot go on (it is broken,
 * the store's log no longer holds the txid after it, or the store is
 * behind it); else an incremental from the chain's last txid + 1, or
 * nothing when no transaction came since. A store whose history differs
 * from the chain's (its cs(chain's last txid) is not the chain's: a copy
 * that diverged, same store id) starts a new chain too, never joins it.
 * Then --keep-full N removes the
 * oldest chains beyond the newest N (0: keep all), a full dump with all its
 * incrementals at a time, and only after the new file is in place. Each
 * file written records its last txid as the store's log consumer
 * "dump-chain", so the store keeps every segment the next incremental needs.
 *
 * LOADING a chain takes the newest chain: its full dump becomes a new
 * store in NEW_DIR.chain-tmp-PID, each incremental is applied in order
 * (each checked whole, and compared by the rolling log checksum with what
 * the store holds, before it is applied: dump.h LOADING), and the
 * directory is renamed to NEW_DIR when all went well; a failure removes
 * it. A chain broken after its full dump (an incremental missing in the
 * middle, a file that does not follow its parent) is refused before
 * anything is built: loading the part before the break would give an older
 * state than the newest file, silently.
 *
 * KEYS: with --key-file (or SHIPLOG_KEY_FILE) new files are sealed with its
 * first key and every file is read with its keys (one keyring per
 * process, in chain_keys); a chain may mix keys after a rotation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dump.h"
#include "lineage.h"
#include "log.h"
#include "sl_base.h"

static sl_keyring *chain_keys; /* --key-file: the command's keys, or NULL */

#define DEFAULT_FULL_EVERY_S (7 * 86400ull)

typedef struct entry {
  char name[256];
  sl_dump_header h;
  uint64_t size;
  int chain;          /* index of its chain; -1: it belongs to none */
  bool has_end_cs;    /* end_cs = cs(last txid) is known (dump.h sl_dump_info) */
  uint64_t end_cs;
  char problem[512];  /* why it does not follow, or its damage */
} entry;

typedef struct listing {
  entry *e;
  size_t n;
  int chains;
  bool broken;        /* some file has a problem */
} listing;

/* The consumer name under STORE/log/consumers/ that keeps the log a chain
 * needs (one per store: a store is dumped into one chain folder). */
#define CHAIN_CONSUMER "dump-chain"

static bool is_full(const entry *e) { return e->h.kind == SL_DUMP_FULL; }

static int by_time(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->h.created_us != y->h.created_us) return x->h.created_us < y->h.created_us ? -1 : 1;
  if (is_full(x) != is_full(y)) return is_full(x) ? -1 : 1;
  if (x->h.first_txid != y->h.first_txid) return x->h.first_txid < y->h.first_txid ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* The *.dump files of DIR with their headers, grouped into chains. With
 * verify, every file is read whole. Files that cannot be read are kept with
 * their problem. Returns 0 or -errno (DIR unreadable, logged). */
static int list_dir(const char *dir, bool verify, listing *out) {
  *out = (listing){0};
  DIR *d = opendir(dir);
  if (!d) {
    int rc = -errno;
    sl_log_error("%s: %s", dir, sl_strerror(rc));
    return rc;
  }
  size_t cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len < 6 || len >= sizeof out->e->name || de->d_name[0] == '.' || strcmp(de->d_name + len - 5, ".dump"))
      continue;
    if (out->n == cap) {
      cap = cap ? 2 * cap : 32;
      entry *p = realloc(out->e, cap * sizeof *p);
      if (!p) {
        rc = -ENOMEM;
        break;
      }
      out->e = p;
    }
    entry *e = &out->e[out->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", de->d_name);
    e->chain = -1;
    char path[PATH_MAX];
    cli_join(path, sizeof path, dir, e->name);
    sl_dump_info info;
    sl_dump_reader *r;
    int frc = verify ? sl_dump_verify_keyed(path, chain_keys, NULL, NULL, &info)
                     : sl_dump_open_keyed(path, chain_keys, &r);
    if (frc) {
      snprintf(e->problem, sizeof e->problem, "cannot be read: %s", sl_strerror(frc));
      out->broken = true;
      continue;
    }
    if (verify) {
      e->h = info.header;
      e->size = info.file_bytes;
      e->has_end_cs = info.has_end_checksum;
      e->end_cs = info.end_checksum;
    } else {
      e->h = *sl_dump_reader_header(r);
      e->size = sl_dump_reader_size(r);
      sl_dump_close(r);
      /* Without reading it whole: a full's from its header, an empty
       * incremental's is the one before it. */
      e->has_end_cs = is_full(e) ? e->h.has_lineage
                                 : e->h.has_prev_checksum && e->h.first_txid > e->h.last_txid;
      e->end_cs = is_full(e) ? e->h.checksum : e->h.prev_checksum;
    }
  }
  closedir(d);
  if (rc) return rc;
  if (out->n) qsort(out->e, out->n, sizeof *out->e, by_time);

  /* Chains: each full starts one; an incremental joins the current chain
   * when it follows its parent. */
  int cur = -1;
  const entry *parent = NULL;
  for (size_t i = 0; i < out->n; i++) {
    entry *e = &out->e[i];
    if (e->problem[0]) continue;
    if (is_full(e)) {
      e->chain = cur = out->chains++;
      parent = e;
      continue;
    }
    if (!parent) {
      snprintf(e->problem, sizeof e->problem, "incremental from txid %" PRIu64 " has no full dump before it",
               e->h.first_txid);
    } else if (memcmp(e->h.store_id, parent->h.store_id, SL_STORE_ID_SIZE) != 0) {
      snprintf(e->problem, sizeof e->problem, "belongs to another store than its parent %s", parent->name);
    } else if (e->h.first_txid != parent->h.last_txid + 1) {
      snprintf(e->problem, sizeof e->problem,
               "does not follow its parent %s: it starts at txid %" PRIu64 ", the parent ends at txid %" PRIu64,
               parent->name, e->h.first_txid, parent->h.last_txid);
    } else if (e->h.has_prev_checksum && parent->has_end_cs && e->h.prev_checksum != parent->end_cs) {
      snprintf(e->problem, sizeof e->problem,
               "does not continue the history of its parent %s: the histories differ at or before txid %" PRIu64
               " (rolling log checksum %016" PRIx64 ", the parent's %016" PRIx64 "; a file of a copy that diverged?)",
               parent->name, parent->h.last_txid, e->h.prev_checksum, parent->end_cs);
    } else {
      e->chain = cur;
      parent = e;
      continue;
    }
    out->broken = true;
    parent = NULL; /* what follows a broken link belongs to no chain */
    cur = -1;
  }
  return 0;
}

static void listing_free(listing *l) {
  free(l->e);
  *l = (listing){0};
}

/* The newest chain's files: [first, end) indices; false without a chain
 * (then [SIZE_MAX, 0), so that no caller reads an unset index). */
static bool newest_chain(const listing *l, size_t *first, size_t *end) {
  int c = -1;
  *first = SIZE_MAX;
  *end = 0;
  for (size_t i = 0; i < l->n; i++)
    if (l->e[i].chain >= 0 && l->e[i].chain > c) c = l->e[i].chain;
  if (c < 0) return false;
  for (size_t i = 0; i < l->n; i++) {
    if (l->e[i].chain != c) continue;
    if (*first == SIZE_MAX) *first = i;
    *end = i + 1;
  }
  return true;
}

static void utc_name(uint64_t us, char *buf, size_t len) {
  time_t t = (time_t)(us / 1000000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- listing ---------------------------------------------------------------------- */

static int show(const char *dir, bool json) {
  listing l;
  if (list_dir(dir, true, &l)) return CLI_FAIL;
  json_t *chains = json_array(), *loose = json_array();
  if (!json) printf("%-48s %-5s %10s %10s %-27s %10s\n", "FILE", "KIND", "FIRST", "LAST", "CREATED", "BYTES");
  for (int c = -1; c < l.chains; c++) {
    json_t *files = json_array();
    uint64_t last = 0;
    for (size_t i = 0; i < l.n; i++) {
      const entry *e = &l.e[i];
      if (e->chain != c) continue;
      char created[40];
      sl_time_format(e->h.created_us, created, sizeof created);
      const char *kind = e->problem[0] && !e->h.kind ? "?" : is_full(e) ? "full" : "incr";
      if (!json) {
        printf("%-48s %-5s %10" PRIu64 " %10" PRIu64 " %-27s %10" PRIu64 "\n", e->name, kind, e->h.first_txid,
               e->h.last_txid, e->h.kind ? created : "-", e->size);
        if (e->problem[0]) printf("  error: %s\n", e->problem);
      }
      if (e->problem[0]) sl_log_error("%s/%s: %s", dir, e->name, e->problem);
      json_array_append_new(files, json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:s}", "file", e->name, "kind", kind,
                                             "first_txid", (json_int_t)e->h.first_txid, "last_txid",
                                             (json_int_t)e->h.last_txid, "created", created, "bytes",
                                             (json_int_t)e->size, "error", e->problem));
      if (c >= 0 && e->h.last_txid > last) last = e->h.last_txid;
    }
    if (c < 0) {
      json_array_extend(loose, files);
      json_decref(files);
    } else {
      json_array_append_new(chains, json_pack("{s:I,s:o}", "last_txid", (json_int_t)last, "files", files));
      if (!json) printf("  chain %d: restores txids 1..%" PRIu64 "\n", c + 1, last);
    }
  }
  if (json) {
    char *s = json_dumps(json_pack("{s:s,s:b,s:o,s:o}", "dir", dir, "ok", !l.broken, "chains", chains,
                                   "unchained", loose), JSON_COMPACT);
    if (s) puts(s);
    free(s);
  } else {
    json_decref(chains);
    json_decref(loose);
    if (l.n == 0) printf("(no dumps in %s)\n", dir);
  }
  int rc = l.broken ? CLI_FAIL : CLI_OK;
  listing_free(&l);
  return rc;
}

/* ---- adding to a chain -------------------------------------------------------------- */

/* DURATION: N with an optional s, m, h, d or w suffix (seconds by default). */
static int parse_duration(const char *text, uint64_t *out_s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  uint64_t mul = 1;
  switch (*end) {
  case 's': mul = 1; end++; break;
  case 'm': mul = 60; end++; break;
  case 'h': mul = 3600; end++; break;
  case 'd': mul = 86400; end++; break;
  case 'w': mul = 7 * 86400; end++; break;
  default: break;
  }
  if (errno || end == text || *end || text[0] == '-' || v > UINT64_MAX / mul)
    return cli_usage("dump", "--full-every: '%s' is not a duration (N with s, m, h, d or w)", text);
  *out_s = v * mul;
  return CLI_OK;
}

/* Write one dump of st into DIR under its final name. */
static int write_one(sl_store *st, const char *dir, bool full, uint64_t from, bool quiet, char *name, size_t namelen,
                     sl_dump_info *info) {
  char tmp[PATH_MAX], path[PATH_MAX], leaf[64];
  snprintf(leaf, sizeof leaf, ".partial-%d", (int)getpid());
  cli_join(tmp, sizeof tmp, dir, leaf);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int rc = -errno;
    sl_log_error("%s: cannot create: %s", tmp, sl_strerror(rc));
    return rc;
  }
  cli_progress prog;
  cli_progress_init(&prog, full ? "dump (records)" : "dump (transactions)", false, quiet);
  sl_dump_options o = {.from_txid = from, .progress = cli_progress_update, .progress_arg = &prog, .name = tmp,
                       .keyring = chain_keys};
  int rc = full ? sl_dump_full(st, fd, &o, info) : sl_dump_incremental(st, fd, &o, info);
  cli_progress_end(&prog);
  if (!rc && fsync(fd) != 0) {
    rc = -errno;
    sl_log_error("%s: fsync: %s", tmp, sl_strerror(rc));
  }
  if (close(fd) != 0 && !rc) rc = -errno;
  if (!rc) {
    char when[32];
    utc_name(info->header.created_us, when, sizeof when);
    snprintf(name, namelen, "%s-%s-%" PRIu64 "-%" PRIu64 ".dump", when, full ? "full" : "incr",
             info->header.first_txid, info->header.last_txid);
    cli_join(path, sizeof path, dir, name);
    if (access(path, F_OK) == 0) rc = -EEXIST; /* two runs in one second: keep the first */
    else if (rename(tmp, path) != 0) rc = -errno;
    if (!rc) rc = sl_fsync_dir(dir);
    if (rc) sl_log_error("%s: %s", path, sl_strerror(rc));
  }
  if (rc) unlink(tmp);
  return rc;
}

/* --keep-full N: remove the chains (and unchained files) older than the
 * newest N chains. */
static int retain(const char *dir, uint64_t keep, bool quiet) {
  listing l;
  int rc = list_dir(dir, false, &l);
  if (rc || keep == 0 || (uint64_t)l.chains <= keep) {
    listing_free(&l);
    return rc;
  }
  int first_kept = l.chains - (int)keep;
  size_t first_kept_file = l.n;
  for (size_t i = 0; i < l.n; i++)
    if (l.e[i].chain == first_kept) {
      first_kept_file = i;
      break;
    }
  for (size_t i = 0; i < first_kept_file; i++) {
    char path[PATH_MAX];
    cli_join(path, sizeof path, dir, l.e[i].name);
    if (unlink(path) != 0 && errno != ENOENT) {
      rc = -errno;
      sl_log_error("%s: cannot remove: %s", path, sl_strerror(rc));
      break;
    }
    if (!quiet) fprintf(stderr, "dump: removed %s (--keep-full %" PRIu64 ")\n", l.e[i].name, keep);
  }
  if (!rc) rc = sl_fsync_dir(dir);
  listing_free(&l);
  return rc;
}

/* cs(last txid) of a chain's last file e: from what listing found, else
 * by reading the file whole. false when it is not known. */
static bool chain_end_checksum(const char *dir, const entry *e, uint64_t *cs) {
  char path[PATH_MAX];
  sl_dump_info info;
  if (e->has_end_cs) {
    *cs = e->end_cs;
    return true;
  }
  if (is_full(e) || !e->h.has_prev_checksum ||
      sl_dump_verify_keyed(cli_join(path, sizeof path, dir, e->name), chain_keys, NULL, NULL, &info) ||
      !info.has_end_checksum)
    return false;
  *cs = info.end_checksum;
  return true;
}

static int add(const char *store, const char *dir, uint64_t full_every_s, uint64_t keep, bool quiet) {
  listing l = {0};
  sl_store *st = NULL;
  char logdir[PATH_MAX], name[320];
  sl_dump_info info;
  int rc = sl_mkdir_p(dir);
  if (rc) {
    sl_log_error("%s: %s", dir, sl_strerror(rc));
    return CLI_FAIL;
  }
  if (cli_open_store(store, SL_OPEN_RDONLY, &st)) return CLI_FAIL;
  if ((rc = list_dir(dir, false, &l))) goto out;

  /* Full or incremental (see WHICH KIND). */
  const char *why = NULL;
  uint64_t from = 0, mark = 0;
  size_t first, end;
  if (!newest_chain(&l, &first, &end)) {
    why = "no chain yet";
  } else if (memcmp(l.e[first].h.store_id, sl_store_id(st), SL_STORE_ID_SIZE) != 0) {
    why = "the newest chain is another store's";
  } else if (sl_now_us() - SL_MIN(sl_now_us(), l.e[first].h.created_us) >= full_every_s * 1000000u) {
    why = "the newest full dump is due for renewal";
  } else if (end < l.n) {
    why = "the newest chain is broken after it";
    sl_log_warn("%s: %s: %s; starting a new chain", dir, l.e[end].name, l.e[end].problem);
  } else {
    from = l.e[end - 1].h.last_txid + 1;
    int mrc = sl_log_read_durable_mark(cli_join(logdir, sizeof logdir, store, "log"), &mark);
    if (mrc && mrc != SL_ENOTFOUND) {
      rc = mrc;
      sl_log_error("%s: %s", logdir, sl_strerror(rc));
      goto out;
    }
    uint64_t chain_cs = 0, store_cs = 0;
    if (mark + 1 >= from && chain_end_checksum(dir, &l.e[end - 1], &chain_cs) &&
        sl_log_lineage_known(logdir) && sl_log_checksum_at(logdir, from - 1, &store_cs) == 0 && store_cs != chain_cs) {
      why = "the store's history differs from the chain's";
      sl_log_warn("%s differs from the chain in %s at or before txid %" PRIu64 " (rolling log checksum %016" PRIx64
                  ", the chain's %016" PRIx64 "); starting a new chain",
                  store, dir, from - 1, store_cs, chain_cs);
    } else if (mark + 1 < from) {
      why = "the store is behind the chain";
      sl_log_warn("%s is at txid %" PRIu64 ", behind the chain in %s (txid %" PRIu64 "); starting a new chain", store,
                  mark, dir, from - 1);
    } else if (mark + 1 == from) {
      if (!quiet) fprintf(stderr, "dump: nothing new since txid %" PRIu64 " (%s)\n", from - 1, l.e[end - 1].name);
      rc = 0;
      goto retain;
    }
  }
  rc = write_one(st, dir, why != NULL, from, quiet, name, sizeof name, &info);
  if (rc == SL_ENOTFOUND && !why) {
    sl_log_warn("%s: the log no longer holds txid %" PRIu64 "; starting a new chain", store, from);
    why = "the log was pruned past the chain";
    rc = write_one(st, dir, true, 0, quiet, name, sizeof name, &info);
  }
  if (rc) goto out;
  /* Hold the store's log from here on, so that the next incremental finds
   * its first txid (a checkpoint would otherwise prune it, breaking the
   * chain). Not fatal: the next run would start a new chain. */
  int crc = sl_log_consumer_set(cli_join(logdir, sizeof logdir, store, "log"), CHAIN_CONSUMER, info.header.last_txid);
  if (crc) sl_log_warn("%s: cannot record consumer %s: %s", logdir, CHAIN_CONSUMER, sl_strerror(crc));
  if (!quiet)
    fprintf(stderr, "dump: %s, txids %" PRIu64 "..%" PRIu64 " to %s/%s%s%s%s\n", why ? "full" : "incremental",
            info.header.first_txid, info.header.last_txid, dir, name, why ? " (" : "", why ? why : "",
            why ? ")" : "");
retain:
  if (!rc) rc = retain(dir, keep, quiet);
out:
  listing_free(&l);
  sl_store_close(st);
  return rc ? CLI_FAIL : CLI_OK;
}

static const char chain_help[] =
    "Usage: shiplog dump --chain DIR [--json]\n"
    "       shiplog dump STORE --chain DIR [--full-every DURATION] [--keep-full N] [--quiet]\n"
    "       shiplog load --chain DIR --into NEW_DIR [--quiet]\n"
    "\n"
    "A dump chain is a folder of backup files: a full dump, then incrementals that\n"
    "each start where the one before ended, named\n"
    "  <UTC time>-<full|incr>-<first txid>-<last txid>.dump\n"
    "\n"
    "Without STORE: list the chains in DIR, reading every file whole, and check\n"
    "that each incremental follows its parent (same store, first txid = the\n"
    "parent's last + 1). Exit status 1 names any file that does not.\n"
    "\n"
    "With STORE (what shiplog-dump@.timer runs): add one file to DIR. A full dump\n"
    "when DIR has no chain of STORE, when the newest full is older than\n"
    "--full-every, or when the newest chain cannot go on; else an incremental from\n"
    "the chain's last txid + 1 (nothing when no transaction came since). Then keep\n"
    "the newest --keep-full chains, removing older ones whole.\n"
    "\n"
    "load --chain restores the newest chain: its full dump into NEW_DIR, then its\n"
    "incrementals in order; NEW_DIR appears only when all of it is loaded.\n"
    "\n"
    "  --chain DIR           the chain's folder (created by the first dump)\n"
    "  --full-every DURATION a new full dump after this long: N with s, m, h, d\n"
    "                        or w (default 7d; 0: every time)\n"
    "  --keep-full N         keep the newest N chains (default 0: all)\n"
    "  --json                list as one JSON object\n"
    "  --quiet               no progress line, no summary\n"
    "  --key-file FILE       at-rest encryption keys (default\n"
    "                        $SHIPLOG_KEY_FILE): new files are sealed with the\n"
    "                        first, every listed key opens old ones\n";

int cli_dump_chain(int argc, char **argv) {
  static const struct option opts[] = {{"chain", required_argument, NULL, 'c'},
                                       {"full-every", required_argument, NULL, 'F'},
                                       {"keep-full", required_argument, NULL, 'k'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *dir = NULL, *key_file = NULL;
  uint64_t full_every = DEFAULT_FULL_EVERY_S, keep = 0;
  bool json = false, quiet = false, scheduling = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(chain_help);
    case 'c': dir = optarg; break;
    case 'F':
      if (parse_duration(optarg, &full_every)) return CLI_USAGE;
      scheduling = true;
      break;
    case 'k':
      if (cli_parse_u64("dump", "keep-full", optarg, &keep)) return CLI_USAGE;
      scheduling = true;
      break;
    case 'j': json = true; break;
    case 'q': quiet = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("dump", NULL);
    }
  }
  if (!dir) return cli_usage("dump", "--chain needs a DIR");
  if (argc - optind > 1) return cli_usage("dump", "unexpected argument '%s'", argv[optind + 1]);
  if (argc - optind == 0 && scheduling) return cli_usage("dump", "--full-every and --keep-full need a STORE to dump");
  if (argc - optind == 1 && json) return cli_usage("dump", "--json lists a chain: give no STORE");
  if (cli_keyring(key_file, &chain_keys)) return CLI_FAIL;
  int rc = argc - optind == 0 ? show(dir, json) : add(argv[optind], dir, full_every, keep, quiet);
  sl_keyring_free(chain_keys);
  chain_keys = NULL;
  return rc;
}

/* ---- loading a chain ------------------------------------------------------------------ */

int cli_load_chain(int argc, char **argv) {
  static const struct option opts[] = {{"chain", required_argument, NULL, 'c'},
                                       {"into", required_argument, NULL, 'i'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *dir = NULL, *into = NULL, *key_file = NULL;
  bool quiet = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(chain_help);
    case 'c': dir = optarg; break;
    case 'i': into = optarg; break;
    case 'q': quiet = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("load", NULL);
    }
  }
  if (optind < argc) return cli_usage("load", "unexpected argument '%s' (--chain reads DIR)", argv[optind]);
  if (!dir || !into) return cli_usage("load", "--chain DIR needs --into NEW_DIR");
  listing l;
  size_t first, end;
  if (cli_keyring(key_file, &chain_keys)) return CLI_FAIL;
  if (list_dir(dir, false, &l)) {
    sl_keyring_free(chain_keys);
    return CLI_FAIL;
  }
  if (!newest_chain(&l, &first, &end)) {
    sl_log_error("%s: no full dump to start from", dir);
    listing_free(&l);
    sl_keyring_free(chain_keys);
    return CLI_FAIL;
  }
  char tmp[PATH_MAX], path[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.chain-tmp-%d", into, (int)getpid());
  struct stat sb;
  int rc = 0;
  for (size_t i = first + 1; i < l.n; i++) {
    if (l.e[i].chain >= 0) continue; /* a newer full's chain would be the newest: only breaks of this one */
    sl_log_error("%s/%s: %s; the chain of %s is broken there and would restore only up to txid %" PRIu64
                 ", older than the files after it: nothing was loaded (`shiplog dump --chain %s` lists the chain)",
                 dir, l.e[i].name, l.e[i].problem, l.e[first].name, l.e[end - 1].h.last_txid, dir);
    rc = SL_EGAP;
    goto out;
  }
  if (stat(into, &sb) == 0 && (!S_ISDIR(sb.st_mode) || rmdir(into) != 0)) {
    rc = SL_EEXIST;
    sl_log_error("%s: exists and is not an empty directory", into);
    goto out;
  }
  cli_progress prog;
  cli_progress_init(&prog, "load", true, quiet);
  sl_load_options lo = {.progress = cli_progress_update, .progress_arg = &prog, .keyring = chain_keys};
  sl_dump_info info;
  sl_store *st = NULL;
  sl_load_result res = {0};
  uint64_t applied = 0;
  rc = sl_load_full(cli_join(path, sizeof path, dir, l.e[first].name), tmp, &lo, &info);
  if (!rc) rc = cli_open_store(tmp, 0, &st);
  for (size_t i = first + 1; i < end && !rc; i++) {
    if (l.e[i].h.first_txid > l.e[i].h.last_txid) continue; /* empty */
    rc = sl_load_incremental(cli_join(path, sizeof path, dir, l.e[i].name), st, &lo, &res);
    applied += res.applied;
  }
  cli_progress_end(&prog);
  if (st) sl_store_close(st);
  if (!rc && rename(tmp, into) != 0) {
    rc = -errno;
    sl_log_error("%s: cannot rename %s to it: %s", into, tmp, sl_strerror(rc));
  }
  if (!rc) {
    char parent[PATH_MAX], *slash;
    snprintf(parent, sizeof parent, "%s", into);
    slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    rc = sl_fsync_dir(slash ? (parent[0] ? parent : "/") : ".");
  }
  if (rc) sl_remove_tree(tmp);
  else if (!quiet)
    fprintf(stderr, "load: %s holds the store at txid %" PRIu64 ": %s and %zu incrementals (%" PRIu64
                    " transactions)\n",
            into, l.e[end - 1].h.last_txid, l.e[first].name,
            end - first - 1, applied);
out:
  listing_free(&l);
  sl_keyring_free(chain_keys);
  chain_keys = NULL;
  return rc ? CLI_FAIL : CLI_OK;
}

bool cli_option_given(int argc, char **argv, const char *name) {
  size_t n = strlen(name);
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, n) && (!argv[i][2 + n] || argv[i][2 + n] == '='))
      return true;
  return cli__config_has(name);
}
