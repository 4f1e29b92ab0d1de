/*
 * `shiplog check`: are the backups whole, without building a store
 * (spec/cli.md; README "Day-to-day operation"). Three forms, each the
 * front end of a module's reader:
 *   check FILE                 one dump file read whole (store/dump.h:
 *                              every chunk's CRC, the records, the trailer;
 *                              sealed chunks opened with --key-file)
 *   check --chain DIR          every file of a dump chain folder and each
 *                              file's link to its parent (backup/chain.h)
 *   check --data DIR --stream NAME
 *                              a receiver's snapshots and archive, and that
 *                              the oldest base reaches the durable txid
 *                              (receiver/inventory.h CHECK)
 * Damage is named by file and offset on stderr (the readers log it); the
 * exit status is 1 when anything is damaged or not continuous.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_repl.h"
#include "dump.h"
#include "inventory.h"
#include "objstore.h"
#include "sl_base.h"
#include "sl_status.h"

static const char check_help[] =
    "Usage: shiplog check FILE [--json]\n"
    "       shiplog check --chain DIR [--json]\n"
    "       shiplog check --data DIR --stream NAME [--json]\n"
    "\n"
    "Verify backups without building a store; nothing is written.\n"
    "\n"
    "  FILE                 a dump file (full or incremental, sealed or not): every\n"
    "                       chunk's checksum, every record, the trailer\n"
    "  --chain DIR          every file of a dump chain folder (shiplog dump --chain)\n"
    "                       and that each file follows its parent\n"
    "  --data DIR --stream NAME\n"
    "                       a receiver's stream: every snapshot read whole, every\n"
    "                       archive frame from the oldest segment to the durable\n"
    "                       txid (checksums, txids without gaps), and that the\n"
    "                       oldest whole base reaches the durable txid\n"
    "  --key-file FILE      at-rest encryption keys (default $SHIPLOG_KEY_FILE):\n"
    "                       sealed chunks and frames are opened, so a changed byte\n"
    "                       or a wrong key is found too; without it a sealed dump\n"
    "                       cannot be checked (exit 1, naming its key id)\n"
    "  --json               one JSON object\n"
    "\n"
    "Damage is named on stderr as FILE: offset N: reason. Exit status: 0 all\n"
    "whole, 1 something is damaged or does not follow on, 2 bad usage.\n";

static const char *kind_name(uint32_t kind) { return kind == SL_DUMP_FULL ? "full" : "incremental"; }

static int check_file(const char *path, sl_keyring *kr, bool json) {
  sl_dump_info info = {0};
  uint64_t t0 = sl_mono_ns();
  int rc = sl_dump_verify_keyed(path, kr, NULL, NULL, &info);
  const sl_dump_header *h = &info.header;
  if (json) {
    char id[2 * SL_STORE_ID_SIZE + 1];
    sl_hex_encode(h->store_id, SL_STORE_ID_SIZE, id);
    int prc = cli_json_print(json_pack("{s:s,s:b,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s?,s:f}", "file", path,
                                       "ok", rc == 0, "kind", h->kind ? kind_name(h->kind) : "?", "store_id", id,
                                       "key_id", h->key_id, "first_txid", (json_int_t)h->first_txid, "last_txid",
                                       (json_int_t)h->last_txid, "last_commit_us", (json_int_t)h->last_commit_us,
                                       "records", (json_int_t)info.records, "raw_bytes", (json_int_t)info.raw_bytes,
                                       "bytes", (json_int_t)info.file_bytes, "created_us",
                                       (json_int_t)h->created_us, "error", rc ? sl_strerror(rc) : NULL, "seconds",
                                       cli_seconds_since(t0)));
    return rc ? CLI_FAIL : prc;
  }
  if (rc) {
    sl_diag_error("%s: DAMAGED: %s", path, sl_strerror(rc));
    return CLI_FAIL;
  }
  char t[40] = "-";
  if (h->last_commit_us) sl_time_format(h->last_commit_us, t, sizeof t);
  printf("%s: OK: %s dump, txids %" PRIu64 "..%" PRIu64 " (last commit %s), %" PRIu64 " %s, %.1f MiB%s%s\n", path,
         kind_name(h->kind), h->first_txid, h->last_txid, t, info.records,
         h->kind == SL_DUMP_FULL ? "records" : "transactions", (double)info.file_bytes / (1 << 20),
         h->key_id[0] ? ", sealed with key " : "", h->key_id);
  return CLI_OK;
}

typedef struct stream_report {
  bool json;
  json_t *files;
} stream_report;

static void stream_item(void *arg, const sl_check_item *it) {
  stream_report *r = arg;
  if (r->json) {
    json_array_append_new(r->files, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:s?}", "kind",
                                              it->snapshot ? "snapshot" : "segment", "path", it->path, "first_txid",
                                              (json_int_t)it->first_txid, "last_txid", (json_int_t)it->last_txid,
                                              "bytes", (json_int_t)it->bytes, it->snapshot ? "records" : "frames",
                                              (json_int_t)it->units, "ok", !it->problem, "error", it->problem));
    return;
  }
  if (it->snapshot)
    printf("%-8s snapshot %s (txid %" PRIu64 ", %" PRIu64 " records)\n", it->problem ? "DAMAGED" : "ok", it->path,
           it->first_txid, it->units);
  else if (!it->first_txid) /* what a cut leaves out (receiver/inventory.h) */
    printf("%-8s segment  %s (txids up to %" PRIu64 ")\n", "DAMAGED", it->path, it->last_txid);
  else
    printf("%-8s segment  %s (txids %" PRIu64 "..%" PRIu64 ", %" PRIu64 " frames)\n", it->problem ? "DAMAGED" : "ok",
           it->path, it->first_txid, it->last_txid, it->units);
  if (it->problem) {
    printf("         %s\n", it->problem);
    sl_diag_error("%s: DAMAGED: %s", it->path, it->problem);
  }
}

static int check_stream(const char *data, const char *stream, sl_keyring *kr, bool json) {
  stream_report rep = {.json = json, .files = json ? json_array() : NULL};
  sl_stream_check_result res;
  uint64_t t0 = sl_mono_ns();
  int rc = sl_stream_check(data, stream, kr, stream_item, &rep, &res);
  if (rc && rc != SL_ECORRUPT) {
    json_decref(rep.files);
    return CLI_FAIL;
  }
  if (json) {
    int prc = cli_json_print(json_pack(
        "{s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:s?,s:o,s:f}", "data", data, "stream", stream, "ok", rc == 0,
        "snapshots", (json_int_t)res.snapshots, "segments", (json_int_t)res.segments, "frames", (json_int_t)res.frames,
        "damaged", (json_int_t)res.damaged, "first_txid", (json_int_t)res.first_txid, "durable",
        (json_int_t)res.durable, "restorable", res.restorable, "base_txid", (json_int_t)res.base_txid, "gap",
        res.gap[0] ? res.gap : NULL, "files", rep.files, "seconds", cli_seconds_since(t0)));
    return rc ? CLI_FAIL : prc;
  }
  if (res.gap[0]) sl_diag_error("stream %s: %s: %s", stream, res.restorable ? "GAP" : "NOT RESTORABLE", res.gap);
  printf("stream %s: %s: %zu snapshots and %zu archive segments (%" PRIu64 " frames, %.1f MiB) checked, %zu damaged;"
         " %s\n",
         stream, rc ? "FAILED" : "OK", res.snapshots, res.segments, res.frames, (double)res.bytes / (1 << 20),
         res.damaged, res.restorable ? "restorable" : "not restorable");
  if (res.restorable && res.base_txid)
    printf("  from the snapshot at txid %" PRIu64 " through txid %" PRIu64 " without a gap\n", res.base_txid,
           res.durable);
  else if (res.restorable)
    printf("  from the empty store through txid %" PRIu64 " without a gap\n", res.durable);
  return rc ? CLI_FAIL : CLI_OK;
}

int cmd_check(int argc, char **argv) {
  static const struct option opts[] = {{"chain", required_argument, NULL, 'c'},
                                       {"data", required_argument, NULL, 'd'},
                                       {"stream", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       CLI_KEY_FILE_OPTION,
                                       {"help", no_argument, NULL, 'h'},
                                       {0}};
  const char *chain = NULL, *data = NULL, *stream = NULL, *key_file = NULL;
  bool json = false;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(check_help);
    case 'c': chain = optarg; break;
    case 'd': data = optarg; break;
    case 's': stream = optarg; break;
    case 'j': json = true; break;
    case CLI_OPT_KEY_FILE: key_file = optarg; break;
    default: return cli_usage("check", NULL);
    }
  }
  int files = argc - optind;
  if ((files > 0) + (chain != NULL) + (data != NULL) != 1)
    return cli_usage("check", "give exactly one of FILE, --chain DIR and --data DIR --stream NAME");
  if (files > 1) return cli_usage("check", "unexpected argument '%s'", argv[optind + 1]);
  if (stream && !data) return cli_usage("check", "--stream goes with --data DIR");
  if (data && !stream) return cli_usage("check", "--data DIR needs --stream NAME");
  if (stream && !sl_stream_name_valid(stream))
    return cli_usage("check", "--stream: '%s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
  if (files && sl_s3_is_url(argv[optind]))
    return cli_usage("check", "check reads local files: fetch the object first (or shiplog info --from s3://...)");
  sl_keyring *kr = NULL;
  if (cli_keyring(key_file, &kr)) return CLI_FAIL;
  int rc = files ? check_file(argv[optind], kr, json)
           : chain ? cli_chain_show(chain, kr, json)
                   : check_stream(data, stream, kr, json);
  sl_keyring_free(kr);
  return rc;
}
