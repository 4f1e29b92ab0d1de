/*
 * seeds_bolt: writes the seed inputs of fuzz_bolt (Bolt conversations, as
 * fuzz_bolt.c reads them: a version byte, then the chunks a client sends
 * after the handshake) into OUTDIR/bolt/:
 *   seeds_bolt OUTDIR
 * values (5.4: a parameter of every kind, pulled), transaction (4.4 with
 * the utc patch: BEGIN, results pulled in parts, GRAPH, COMMIT) and failure
 * (5.4: FAILURE, IGNORED, RESET, ROUTE, TELEMETRY, LOGOFF). Run by
 * tests/fuzz/make_corpus.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bolt.h"

static void put(const char *dir, const char *name, const uint8_t *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
    fprintf(stderr, "seeds_bolt: %s: %s\n", path, strerror(errno));
    exit(1);
  }
}

/* ---- fuzz_bolt: a version byte, then what a client sends after the handshake ---- */
typedef struct bolt_seed {
  sl_buf out;
  sl_arena a;
} bolt_seed;

static sl_pack bolt_map(bolt_seed *b, uint32_t n, const char *const *keys, const sl_pack *values) {
  sl_pack m;
  if (!sl_pack_new_map(&b->a, &m, n)) exit(1);
  for (uint32_t i = 0; i < n; i++) sl_pack_map_set(&b->a, &m, i, keys[i], values[i]);
  return m;
}

static void bolt_msg(bolt_seed *b, uint8_t tag, uint32_t n, const sl_pack *fields) {
  sl_pack m;
  sl_buf body = {0};
  if (!sl_pack_new_struct(&b->a, &m, tag, n)) exit(1);
  for (uint32_t i = 0; i < n; i++) m.u.items[i] = fields[i];
  if (sl_pack_encode(&body, &m) || sl_bolt_chunk(&b->out, body.data, body.len)) exit(1);
  sl_buf_free(&body);
}

static void bolt_put(const char *dir, const char *name, bolt_seed *b) {
  put(dir, name, b->out.data, b->out.len);
  sl_buf_free(&b->out);
  sl_arena_free(&b->a);
}

/* The first byte picks the version (fuzz_bolt.c: index into sl_bolt_versions). */
static void bolt_start(bolt_seed *b, uint8_t version_index, bool logon) {
  static const char *const hk[] = {"user_agent", "patch_bolt"};
  sl_pack patches;
  if (!sl_pack_new_list(&b->a, &patches, 1)) exit(1);
  patches.u.items[0] = sl_pack_str("utc");
  if (sl_buf_reserve(&b->out, 1)) exit(1);
  b->out.data[b->out.len++] = version_index;
  bolt_msg(b, SL_BOLT_MSG_HELLO, 1, (sl_pack[]){bolt_map(b, 2, hk, (sl_pack[]){sl_pack_str("seed/1"), patches})});
  static const char *const lk[] = {"scheme", "principal", "credentials"};
  if (logon)
    bolt_msg(b, SL_BOLT_MSG_LOGON, 1,
             (sl_pack[]){bolt_map(b, 3, lk, (sl_pack[]){sl_pack_str("basic"), sl_pack_str("u"), sl_pack_str("p")})});
}

static void bolt_seeds(const char *outdir) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/bolt", outdir);
  mkdir(dir, 0755);
  bolt_seed b = {0};
  sl_pack empty = bolt_map(&b, 0, NULL, NULL);
  static const char *const n_all[] = {"n"};
  sl_pack pull_all = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(-1)});
  sl_pack pull_one = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(1)});
  sl_bolt_dialect d5 = {.element_ids = true, .utc = true};

  /* 5.4: every value kind as a parameter, pulled; GOODBYE */
  bolt_start(&b, 0, true);
  sl_value vals[] = {
      {.kind = SL_DATE, .u.t.seconds = 19782},
      {.kind = SL_TIME, .u.t = {.seconds = 45000, .nanos = 5, .offset = 3600}},
      {.kind = SL_LOCALTIME, .u.t = {.seconds = 1, .nanos = 2}},
      {.kind = SL_DATETIME, .u.t = {.seconds = 1709209800, .nanos = 1, .offset = -7200}},
      {.kind = SL_DATETIME, .u.t = {.seconds = 1719828000, .offset = 7200, .zone = "Europe/Paris"}},
      {.kind = SL_LOCALDATETIME, .u.t = {.seconds = -1, .nanos = 3}},
      {.kind = SL_DURATION, .u.dur = {.months = 1, .days = 2, .seconds = -3, .nanos = -4}},
      {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_WGS84, .x = 1, .y = 2}},
      {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_CARTESIAN_3D, .x = 1, .y = 2, .z = 3}},
      {.kind = SL_STRING, .len = 4, .u.s = "text"},
      {.kind = SL_BYTES, .len = 2, .u.bytes = (const uint8_t *)"\x01\xff"},
      {.kind = SL_DOUBLE, .u.d = 0.5},
      {.kind = SL_INT, .u.i = -1000000},
      {.kind = SL_BOOL, .u.b = true}};
  static const char *const keys[] = {"date", "time", "lt", "dt", "dtz", "ldt", "dur", "p2", "p3", "s", "b", "f", "i", "t"};
  sl_pack pv[SL_ARRAY_LEN(vals)];
  for (size_t i = 0; i < SL_ARRAY_LEN(vals); i++)
    if (sl_bolt_from_value(&b.a, &vals[i], d5, &pv[i])) exit(1);
  sl_pack params = bolt_map(&b, SL_ARRAY_LEN(vals), keys, pv);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("RETURN $all"), params, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_GOODBYE, 0, NULL);
  bolt_put(dir, "values", &b);

  /* 4.4 (index 5) with the utc patch: a transaction pulled in parts */
  empty = bolt_map(&b, 0, NULL, NULL);
  pull_all = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(-1)});
  pull_one = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(1)});
  bolt_start(&b, 5, false);
  bolt_msg(&b, SL_BOLT_MSG_BEGIN, 1, &empty);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("ROWS 3"), empty, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_one);
  bolt_msg(&b, SL_BOLT_MSG_DISCARD, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("GRAPH"), empty, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_COMMIT, 0, NULL);
  bolt_put(dir, "transaction", &b);

  /* 5.4: a failure, IGNORED, RESET; ROUTE, TELEMETRY, LOGOFF */
  empty = bolt_map(&b, 0, NULL, NULL);
  pull_all = bolt_map(&b, 1, n_all, (sl_pack[]){sl_pack_int(-1)});
  bolt_start(&b, 0, true);
  bolt_msg(&b, SL_BOLT_MSG_RUN, 3, (sl_pack[]){sl_pack_str("ERROR Neo.ClientError.Statement.SyntaxError x"), empty, empty});
  bolt_msg(&b, SL_BOLT_MSG_PULL, 1, &pull_all);
  bolt_msg(&b, SL_BOLT_MSG_RESET, 0, NULL);
  static const char *const db[] = {"db"};
  bolt_msg(&b, SL_BOLT_MSG_ROUTE, 3,
           (sl_pack[]){empty, sl_pack_null(), bolt_map(&b, 1, db, (sl_pack[]){sl_pack_str("neo4j")})});
  bolt_msg(&b, SL_BOLT_MSG_TELEMETRY, 1, (sl_pack[]){sl_pack_int(0)});
  bolt_msg(&b, SL_BOLT_MSG_LOGOFF, 0, NULL);
  bolt_put(dir, "failure", &b);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: seeds_bolt OUTDIR\n");
    return 2;
  }
  bolt_seeds(argv[1]);
  return 0;
}
