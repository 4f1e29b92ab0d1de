/*
 * backup/chain.h: dump chains, the folder of backup files (store/dump.h)
 * that `shiplog dump STORE --chain DIR` (shiplog-dump@.timer) fills, one
 * full dump followed by incrementals, each starting where the one before
 * it ended. The contract of the backup module; cli/ only parses the flags
 * and prints what these functions return.
 *
 * FILE NAMES: <created, UTC, YYYYMMDDTHHMMSSZ>-<full|incr>-<first txid>-
 * <last txid>.dump. The names are for people; everything is decided from
 * the headers (kind, store id, first and last txid, creation time). A file
 * is written as DIR/.partial-PID, fsynced, renamed and the folder fsynced,
 * so a *.dump name always holds a whole file.
 *
 * A CHAIN is a full dump and the incrementals after it (ordered by creation
 * time, then first txid) up to the next full. A file that cannot be read
 * has no header to say when it was written: it takes its place from its
 * name (the end of the second the name gives), or the last place when the
 * name gives none, so that damage to a chain's newest file breaks that
 * chain (loading refuses, the next file starts a new chain) instead of
 * being passed over as if it were older than the chain. Each incremental must belong
 * to the same store and start at its parent's last txid + 1 (an empty one,
 * first = last + 1, changes nothing) and, where both are known, continue
 * its parent's history (its cs(first - 1) is the parent's cs(last), dump.h
 * LOADING; a verifying listing knows every file's, loading and adding
 * those of full dumps and empty files). A file that does not follow its
 * parent carries its problem (naming the parent and both txids), and what
 * follows it belongs to no chain.
 *
 * WHICH KIND (sl_chain_add): a full dump when DIR holds no chain of this
 * store, when the newest full is older than full_every_s (0: always), or
 * when the newest chain cannot go on (it is broken, the store's log no
 * longer holds the txid after it, or the store is behind it); else an
 * incremental from the chain's last txid + 1, or nothing when no
 * transaction came since. A store whose history differs from the chain's
 * (its cs(chain's last txid) is not the chain's: a copy that diverged, same
 * store id) starts a new chain too, never joins it. Each file written
 * records its last txid as the store's log consumer "dump-chain", so the
 * store keeps every segment the next incremental needs.
 *
 * RETENTION (sl_chain_retain, --keep-full N): removes the oldest chains
 * beyond the newest N (0: keep all), a full dump with all its incrementals
 * at a time; the caller runs it only after the new file is in place.
 *
 * LOADING (sl_chain_load) takes the newest chain: its full dump becomes a
 * new store in INTO.chain-tmp-PID, each incremental is applied in order
 * (each checked whole, and compared by the rolling log checksum with what
 * the store holds, before it is applied), and the directory is renamed to
 * INTO when all went well; a failure removes it. A chain broken after its
 * full dump is refused (SL_EGAP) before anything is built: loading the
 * part before the break would give an older state than the newest file,
 * silently.
 *
 * KEYS: every function takes the caller's keyring (or NULL): new files are
 * sealed with its first key, every file is read with its keys; a chain may
 * mix keys after a rotation. Nothing here keeps state between calls.
 *
 * Errors are logged (sl_diag_error, naming the file) and returned as 0 or a
 * negative code (base/ errors).
 */
#ifndef SL_BACKUP_CHAIN_H
#define SL_BACKUP_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dump.h"

/* --full-every's default: a week. */
#define SL_CHAIN_FULL_EVERY_DEFAULT_S (7 * 86400ull)
/* The consumer name under STORE/log/consumers/ that keeps the log a chain
 * needs (one per store: a store is dumped into one chain folder). */
#define SL_CHAIN_CONSUMER "dump-chain"

/* One *.dump file of a chain folder. */
typedef struct sl_chain_file {
  char name[256];
  sl_dump_header h;   /* zero when the file cannot be read (see problem) */
  uint64_t when_us;   /* its place in time: h.created_us, else from its name (A CHAIN) */
  uint64_t size;
  int chain;          /* index of its chain (0 = oldest); -1: it belongs to none */
  bool has_end_cs;    /* end_cs = cs(last txid) is known (dump.h sl_dump_info) */
  uint64_t end_cs;
  char problem[512];  /* why it does not follow, or its damage; "" when fine */
} sl_chain_file;

typedef struct sl_chain_listing {
  sl_chain_file *e;   /* ordered by when_us, then kind (full first), first txid, name */
  size_t n;
  int chains;
  bool broken;        /* some file has a problem */
} sl_chain_listing;

/* The *.dump files of DIR with their headers, grouped into chains. With
 * verify, every file is read whole (sl_dump_verify), so damage anywhere is
 * found. Files that cannot be read are listed with their problem. Returns 0
 * or a negative code (DIR unreadable, logged). */
int sl_chain_list(const char *dir, sl_keyring *keys, bool verify, sl_chain_listing *out);
void sl_chain_listing_free(sl_chain_listing *l);
/* The newest chain's files: [first, end) indices; false without a chain
 * (then [SIZE_MAX, 0), so that no caller reads an unset index). */
bool sl_chain_newest(const sl_chain_listing *l, size_t *first, size_t *end);

typedef struct sl_chain_add_options {
  uint64_t full_every_s;   /* a new full dump after this long; 0: every time */
  sl_keyring *keyring;     /* seals the new file with its first key; NULL: plaintext */
  /* Progress of each file written: begin (what: "dump (records)" or "dump
   * (transactions)"), progress calls, end. Any may be NULL. */
  void (*progress_begin)(void *arg, const char *what);
  sl_dump_progress_fn progress;
  void (*progress_end)(void *arg);
  void *progress_arg;
} sl_chain_add_options;

typedef struct sl_chain_add_result {
  bool written;       /* false: no transaction since the chain's last file */
  const char *why;    /* why a full dump (static text); NULL: an incremental */
  char name[320];     /* the new file's name; unwritten: the chain's last file */
  uint64_t last_txid; /* unwritten: the chain's (and the store's) last txid */
  sl_dump_info info;  /* of the new file */
} sl_chain_add_result;

/* Add the next file of STORE (opened read-only) to the chain folder DIR
 * (created if missing), per WHICH KIND. */
int sl_chain_add(const char *store, const char *dir, const sl_chain_add_options *o, sl_chain_add_result *out);

/* Keep the newest `keep` chains of DIR (0: all), removing the older
 * chains' files (and unchained files before them) and then fsyncing DIR
 * when there is anything to remove.
 * removed (may be NULL) is told each file's name once it is gone. */
int sl_chain_retain(const char *dir, uint64_t keep, sl_keyring *keys, void (*removed)(void *arg, const char *name),
                    void *arg);

typedef struct sl_chain_load_options {
  sl_keyring *keyring;
  sl_dump_progress_fn progress; /* bytes of each file loaded */
  void *progress_arg;
} sl_chain_load_options;

typedef struct sl_chain_load_result {
  uint64_t last_txid;    /* INTO holds the store at this txid */
  char full[256];        /* the chain's full dump */
  size_t incrementals;   /* files after it */
  uint64_t applied;      /* transactions the incrementals applied */
} sl_chain_load_result;

/* Restore the newest chain of DIR into INTO (missing or an empty
 * directory), per LOADING. SL_ENOTFOUND: no full dump to start from;
 * SL_EGAP: the chain is broken; SL_EEXIST: INTO is not empty. */
int sl_chain_load(const char *dir, const char *into, const sl_chain_load_options *o, sl_chain_load_result *out);

#endif
