/*
 * Dump chains (backup/chain.h gives the contract: names, chains, which
 * kind, retention, loading). Moved out of the command line so that it can
 * be tested and embedded; cli/dump_chain.c parses the flags and prints.
 *
 * Design: every call lists the folder afresh (sl_chain_list) and decides
 * from the files' headers alone, so nothing is cached between calls and the
 * folder may be changed by hand in between; the keyring is a parameter,
 * never a global. Writing a file goes through a .partial-PID name, the
 * fault layer's fsync (sl_fsync), a rename and a folder fsync, so a crash
 * never leaves a *.dump name holding part of a file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "lineage.h"
#include "log.h"
#include "sl_base.h"

typedef sl_chain_file entry;

static const char *join(char *buf, size_t len, const char *dir, const char *name) {
  snprintf(buf, len, "%s/%s", dir, name);
  return buf;
}

static bool is_full(const entry *e) { return e->h.kind == SL_DUMP_FULL; }

static int by_time(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->when_us != y->when_us) return x->when_us < y->when_us ? -1 : 1;
  if (is_full(x) != is_full(y)) return is_full(x) ? -1 : 1;
  if (x->h.first_txid != y->h.first_txid) return x->h.first_txid < y->h.first_txid ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Where a file that cannot be read goes (chain.h A CHAIN): the last
 * microsecond of the second its name was written in, UINT64_MAX when the
 * name is not <YYYYMMDDTHHMMSSZ>-... (it might be the newest file). Sorted
 * by its zeroed header instead, it came first, and loading took the chain
 * before it as whole: a damaged newest incremental gave an older state,
 * exit 0. */
static uint64_t name_time(const char *name) {
  char iso[32];
  uint64_t us;
  for (int i = 0; i < 16; i++)
    if (!(i == 8 ? name[i] == 'T' : i == 15 ? name[i] == 'Z' : name[i] >= '0' && name[i] <= '9')) return UINT64_MAX;
  if (name[16] != '-') return UINT64_MAX;
  snprintf(iso, sizeof iso, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", name, name + 4, name + 6, name + 9, name + 11, name + 13);
  return sl_time_parse(iso, &us) ? UINT64_MAX : us + 999999u;
}

int sl_chain_list(const char *dir, sl_keyring *keys, bool verify, sl_chain_listing *out) {
  *out = (sl_chain_listing){0};
  DIR *d = opendir(dir);
  if (!d) {
    int rc = -errno;
    sl_diag_error("%s: %s", dir, sl_strerror(rc));
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
    join(path, sizeof path, dir, e->name);
    sl_dump_info info;
    sl_dump_reader *r;
    int frc = verify ? sl_dump_verify_keyed(path, keys, NULL, NULL, &info) : sl_dump_open_keyed(path, keys, &r);
    if (frc) {
      snprintf(e->problem, sizeof e->problem, "cannot be read: %s", sl_strerror(frc));
      e->when_us = name_time(e->name);
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
    e->when_us = e->h.created_us;
  }
  closedir(d);
  if (rc) {
    sl_chain_listing_free(out);
    return rc;
  }
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

void sl_chain_listing_free(sl_chain_listing *l) {
  free(l->e);
  *l = (sl_chain_listing){0};
}

bool sl_chain_newest(const sl_chain_listing *l, size_t *first, size_t *end) {
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

/* ---- adding to a chain -------------------------------------------------------------- */

/* Write one dump of st into DIR under its final name. */
static int write_one(sl_store *st, const char *dir, bool full, uint64_t from, const sl_chain_add_options *o,
                     char *name, size_t namelen, sl_dump_info *info) {
  char tmp[PATH_MAX], path[PATH_MAX], leaf[64];
  snprintf(leaf, sizeof leaf, ".partial-%d", (int)getpid());
  join(tmp, sizeof tmp, dir, leaf);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int rc = -errno;
    sl_diag_error("%s: cannot create: %s", tmp, sl_strerror(rc));
    return rc;
  }
  if (o->progress_begin) o->progress_begin(o->progress_arg, full ? "dump (records)" : "dump (transactions)");
  sl_dump_options d = {.from_txid = from, .progress = o->progress, .progress_arg = o->progress_arg, .name = tmp,
                       .keyring = o->keyring};
  int rc = full ? sl_dump_full(st, fd, &d, info) : sl_dump_incremental(st, fd, &d, info);
  if (o->progress_end) o->progress_end(o->progress_arg);
  if (!rc && (rc = sl_fsync(fd)) != 0) sl_diag_error("%s: fsync: %s", tmp, sl_strerror(rc));
  if (close(fd) != 0 && !rc) rc = -errno;
  if (!rc) {
    char when[32];
    utc_name(info->header.created_us, when, sizeof when);
    snprintf(name, namelen, "%s-%s-%" PRIu64 "-%" PRIu64 ".dump", when, full ? "full" : "incr",
             info->header.first_txid, info->header.last_txid);
    join(path, sizeof path, dir, name);
    if (access(path, F_OK) == 0) rc = -EEXIST; /* two runs in one second: keep the first */
    else if (rename(tmp, path) != 0) rc = -errno;
    if (!rc) rc = sl_fsync_dir(dir);
    if (rc) sl_diag_error("%s: %s", path, sl_strerror(rc));
  }
  if (rc) unlink(tmp);
  return rc;
}

int sl_chain_retain(const char *dir, uint64_t keep, sl_keyring *keys, void (*removed)(void *arg, const char *name),
                    void *arg) {
  sl_chain_listing l;
  int rc = sl_chain_list(dir, keys, false, &l);
  if (rc || keep == 0 || (uint64_t)l.chains <= keep) {
    sl_chain_listing_free(&l);
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
    join(path, sizeof path, dir, l.e[i].name);
    if (unlink(path) != 0 && errno != ENOENT) {
      rc = -errno;
      sl_diag_error("%s: cannot remove: %s", path, sl_strerror(rc));
      break;
    }
    if (removed) removed(arg, l.e[i].name);
  }
  if (!rc) rc = sl_fsync_dir(dir);
  sl_chain_listing_free(&l);
  return rc;
}

/* cs(last txid) of a chain's last file e: from what listing found, else
 * by reading the file whole. false when it is not known. */
static bool chain_end_checksum(const char *dir, const entry *e, sl_keyring *keys, uint64_t *cs) {
  char path[PATH_MAX];
  sl_dump_info info;
  if (e->has_end_cs) {
    *cs = e->end_cs;
    return true;
  }
  if (is_full(e) || !e->h.has_prev_checksum ||
      sl_dump_verify_keyed(join(path, sizeof path, dir, e->name), keys, NULL, NULL, &info) ||
      !info.has_end_checksum)
    return false;
  *cs = info.end_checksum;
  return true;
}

int sl_chain_add(const char *store, const char *dir, const sl_chain_add_options *o, sl_chain_add_result *out) {
  sl_chain_listing l = {0};
  sl_store *st = NULL;
  char logdir[PATH_MAX];
  *out = (sl_chain_add_result){0};
  int rc = sl_mkdir_p(dir);
  if (rc) {
    sl_diag_error("%s: %s", dir, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_store_open(store, SL_OPEN_RDONLY, &st))) {
    sl_diag_error("%s: cannot open store: %s", store, sl_strerror(rc));
    return rc;
  }
  if ((rc = sl_chain_list(dir, o->keyring, false, &l))) goto out;

  /* Full or incremental (see WHICH KIND). */
  const char *why = NULL;
  uint64_t from = 0, mark = 0;
  size_t first, end;
  if (!sl_chain_newest(&l, &first, &end)) {
    why = "no chain yet";
  } else if (memcmp(l.e[first].h.store_id, sl_store_id(st), SL_STORE_ID_SIZE) != 0) {
    why = "the newest chain is another store's";
  } else if (sl_now_us() - SL_MIN(sl_now_us(), l.e[first].h.created_us) >= o->full_every_s * 1000000u) {
    why = "the newest full dump is due for renewal";
  } else if (end < l.n) {
    why = "the newest chain is broken after it";
    sl_diag_warn("%s: %s: %s; starting a new chain", dir, l.e[end].name, l.e[end].problem);
  } else {
    from = l.e[end - 1].h.last_txid + 1;
    int mrc = sl_log_read_durable_mark(join(logdir, sizeof logdir, store, "log"), &mark);
    if (mrc && mrc != SL_ENOTFOUND) {
      rc = mrc;
      sl_diag_error("%s: %s", logdir, sl_strerror(rc));
      goto out;
    }
    uint64_t chain_cs = 0, store_cs = 0;
    if (mark + 1 >= from && chain_end_checksum(dir, &l.e[end - 1], o->keyring, &chain_cs) &&
        sl_log_lineage_known(logdir) && sl_log_checksum_at(logdir, from - 1, &store_cs) == 0 && store_cs != chain_cs) {
      why = "the store's history differs from the chain's";
      sl_diag_warn("%s differs from the chain in %s at or before txid %" PRIu64 " (rolling log checksum %016" PRIx64
                  ", the chain's %016" PRIx64 "); starting a new chain",
                  store, dir, from - 1, store_cs, chain_cs);
    } else if (mark + 1 < from) {
      why = "the store is behind the chain";
      sl_diag_warn("%s is at txid %" PRIu64 ", behind the chain in %s (txid %" PRIu64 "); starting a new chain", store,
                  mark, dir, from - 1);
    } else if (mark + 1 == from) {
      /* Nothing new since the chain's last file. */
      out->last_txid = from - 1;
      snprintf(out->name, sizeof out->name, "%s", l.e[end - 1].name);
      goto out;
    }
  }
  rc = write_one(st, dir, why != NULL, from, o, out->name, sizeof out->name, &out->info);
  if (rc == SL_ENOTFOUND && !why) {
    sl_diag_warn("%s: the log no longer holds txid %" PRIu64 "; starting a new chain", store, from);
    why = "the log was pruned past the chain";
    rc = write_one(st, dir, true, 0, o, out->name, sizeof out->name, &out->info);
  }
  if (rc) goto out;
  out->written = true;
  out->why = why;
  out->last_txid = out->info.header.last_txid;
  /* Hold the store's log from here on, so that the next incremental finds
   * its first txid (a checkpoint would otherwise prune it, breaking the
   * chain). Not fatal: the next run would start a new chain. */
  int crc = sl_log_consumer_set(join(logdir, sizeof logdir, store, "log"), SL_CHAIN_CONSUMER, out->last_txid);
  if (crc) sl_diag_warn("%s: cannot record consumer %s: %s", logdir, SL_CHAIN_CONSUMER, sl_strerror(crc));
out:
  sl_chain_listing_free(&l);
  sl_store_close(st);
  return rc;
}

/* ---- loading a chain ------------------------------------------------------------------ */

int sl_chain_load(const char *dir, const char *into, const sl_chain_load_options *o, sl_chain_load_result *out) {
  sl_chain_listing l;
  size_t first, end;
  *out = (sl_chain_load_result){0};
  int rc = sl_chain_list(dir, o->keyring, false, &l);
  if (rc) return rc;
  if (!sl_chain_newest(&l, &first, &end)) {
    sl_diag_error("%s: no full dump to start from", dir);
    sl_chain_listing_free(&l);
    return SL_ENOTFOUND;
  }
  char tmp[PATH_MAX], path[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.chain-tmp-%d", into, (int)getpid());
  struct stat sb;
  for (size_t i = first + 1; i < l.n; i++) {
    if (l.e[i].chain >= 0) continue; /* a newer full's chain would be the newest: only breaks of this one */
    if (!l.e[i].h.kind)
      sl_diag_error("%s/%s: %s; written after %s (by its name), it may hold the chain's newest transactions, and "
                   "the chain without it restores only up to txid %" PRIu64 ": nothing was loaded (move it aside "
                   "if it is not needed; `shiplog dump --chain %s` lists the chain)",
                   dir, l.e[i].name, l.e[i].problem, l.e[first].name, l.e[end - 1].h.last_txid, dir);
    else
      sl_diag_error("%s/%s: %s; the chain of %s is broken there and would restore only up to txid %" PRIu64
                 ", older than the files after it: nothing was loaded (`shiplog dump --chain %s` lists the chain)",
                 dir, l.e[i].name, l.e[i].problem, l.e[first].name, l.e[end - 1].h.last_txid, dir);
    rc = SL_EGAP;
    goto out;
  }
  if (stat(into, &sb) == 0 && (!S_ISDIR(sb.st_mode) || rmdir(into) != 0)) {
    rc = SL_EEXIST;
    sl_diag_error("%s: exists and is not an empty directory", into);
    goto out;
  }
  sl_load_options lo = {.progress = o->progress, .progress_arg = o->progress_arg, .keyring = o->keyring};
  sl_dump_info info;
  sl_store *st = NULL;
  sl_load_result res = {0};
  rc = sl_load_full(join(path, sizeof path, dir, l.e[first].name), tmp, &lo, &info);
  if (!rc && (rc = sl_store_open(tmp, 0, &st))) sl_diag_error("%s: cannot open store: %s", tmp, sl_strerror(rc));
  for (size_t i = first + 1; i < end && !rc; i++) {
    if (l.e[i].h.first_txid > l.e[i].h.last_txid) continue; /* empty */
    rc = sl_load_incremental(join(path, sizeof path, dir, l.e[i].name), st, &lo, &res);
    out->applied += res.applied;
  }
  if (st) sl_store_close(st);
  if (!rc && rename(tmp, into) != 0) {
    rc = -errno;
    sl_diag_error("%s: cannot rename %s to it: %s", into, tmp, sl_strerror(rc));
  }
  if (!rc) {
    char parent[PATH_MAX], *slash;
    snprintf(parent, sizeof parent, "%s", into);
    slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    rc = sl_fsync_dir(slash ? (parent[0] ? parent : "/") : ".");
  }
  if (rc) {
    sl_remove_tree(tmp);
  } else {
    out->last_txid = l.e[end - 1].h.last_txid;
    snprintf(out->full, sizeof out->full, "%s", l.e[first].name);
    out->incrementals = end - first - 1;
  }
out:
  sl_chain_listing_free(&l);
  return rc;
}
