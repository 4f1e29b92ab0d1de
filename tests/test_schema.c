/*
 * Tests of schema in the store (store/schema.c, include/shiplog.h's
 * "schema"): index contents after every kind of write, checked by seeks
 * and by sl_store_schema_verify; numbers meeting across int and float;
 * constraint refusals (UNIQUE, NODE KEY, NOT NULL, on existing data, at
 * commit only); a replay of the log, a dump | load and a standby holding
 * the same schema; verify catching a damaged index; an older reader's
 * refusal of an op it does not know; a store of format 1 upgraded in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "store_helpers.h"

#include "schema_int.h"

#include "dump.h"
#include "interchange.h"

static int canonical(sl_view *v, FILE *f, const char *name) { return sl_export_canonical(v, f, name, NULL, NULL); }

static const char *const NAME_KEY[] = {"name"};

static sl_schema_rule rule(sl_schema_kind kind, bool rel, const char *token, const char *const *keys, size_t n,
                           const char *name) {
  return (sl_schema_rule){name, kind, rel, token, n, keys};
}

/* Create a rule in a transaction of its own; returns the commit's code. */
static int create_rule(sl_store *st, const sl_schema_rule *r, char *name_out) {
  sl_tx *tx;
  OK(sl_tx_begin(st, &tx));
  int rc = r->kind == SL_SCHEMA_INDEX ? sl_tx_create_index(tx, r, name_out) : sl_tx_create_constraint(tx, r, name_out);
  if (rc) {
    sl_tx_abort(tx);
    return rc;
  }
  return sl_tx_commit(tx, NULL);
}

static uint64_t node(sl_store *st, const char *label, const char *key, sl_value v) {
  sl_tx *tx;
  uint64_t id;
  sl_prop p = {key, v};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, label ? &label : NULL, label ? 1 : 0, key ? &p : NULL, key ? 1 : 0, &id));
  commit(tx);
  return id;
}

/* The ids an equality seek of index `name` finds, as "1,2,3". */
static char *seek(sl_store *st, const char *name, const sl_value *vals, size_t n) {
  static char out[1024];
  sl_view *v;
  ids got = {0};
  OK(sl_view_begin(st, &v));
  OK(sl_view_index_seek(v, name, vals, n, push_id, &got));
  sl_view_end(v);
  out[0] = 0;
  for (size_t i = 0; i < got.n; i++)
    snprintf(out + strlen(out), sizeof out - strlen(out), "%s%" PRIu64, i ? "," : "", got.v[i]);
  free(got.v);
  return out;
}

static char *range(sl_store *st, const char *name, const sl_value *lo, bool lo_incl, const sl_value *hi,
                   bool hi_incl) {
  static char out[1024];
  sl_view *v;
  ids got = {0};
  OK(sl_view_begin(st, &v));
  OK(sl_view_index_range(v, name, lo, lo_incl, hi, hi_incl, push_id, &got));
  sl_view_end(v);
  out[0] = 0;
  for (size_t i = 0; i < got.n; i++)
    snprintf(out + strlen(out), sizeof out - strlen(out), "%s%" PRIu64, i ? "," : "", got.v[i]);
  free(got.v);
  return out;
}

static void verified(sl_store *st) {
  sl_view *v;
  char why[512];
  OK(sl_view_begin(st, &v));
  int rc = sl_store_schema_verify(v, why, sizeof why);
  sl_view_end(v);
  if (rc) fail_msg("schema verify: %s: %s", sl_errname(rc), why);
}

static sl_value vdbl(double d) { return (sl_value){.kind = SL_DOUBLE, .u.d = d}; }

/* ---- index contents after every kind of write ------------------------------------------ */
static void index_follows_writes(void **state) {
  (void)state;
  char *dir = new_dir("schema_writes");
  sl_store *st = create_open(dir, NULL);
  uint64_t a = node(st, "P", "name", vstr("ann")); /* before the index: built at create */
  node(st, "Q", "name", vstr("ann"));                /* another label */
  sl_schema_rule r = rule(SL_SCHEMA_INDEX, false, "P", NAME_KEY, 1, "by_name");
  OK(create_rule(st, &r, NULL));
  sl_value ann = vstr("ann"), bob = vstr("bob");
  assert_string_equal(seek(st, "by_name", &ann, 1), "1");
  uint64_t b = node(st, "P", "name", vstr("bob"));
  uint64_t c = node(st, "P", NULL, ann); /* no name: not in the index */
  assert_string_equal(seek(st, "by_name", &bob, 1), "3");
  verified(st);

  sl_tx *tx;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_set_node_prop(tx, c, "name", &ann)); /* joins */
  OK(sl_tx_set_node_prop(tx, a, "name", &bob)); /* moves */
  commit(tx);
  assert_string_equal(seek(st, "by_name", &ann, 1), "4");
  assert_string_equal(seek(st, "by_name", &bob, 1), "1,3");
  verified(st);

  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_remove_label(tx, a, "P"));          /* leaves */
  OK(sl_tx_remove_node_prop(tx, c, "name"));   /* leaves */
  commit(tx);
  assert_string_equal(seek(st, "by_name", &bob, 1), "3");
  assert_string_equal(seek(st, "by_name", &ann, 1), "");
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_add_label(tx, a, "P")); /* comes back */
  OK(sl_tx_delete_node(tx, b, false));
  commit(tx);
  assert_string_equal(seek(st, "by_name", &bob, 1), "1");
  verified(st);

  /* relationships, and a composite index */
  static const char *const since_w[] = {"since", "w"};
  sl_schema_rule rr = rule(SL_SCHEMA_INDEX, true, "KNOWS", since_w, 2, NULL);
  char rname[SL_NAME_MAX + 1];
  OK(create_rule(st, &rr, rname));
  assert_memory_equal(rname, "index_", 6);
  sl_prop rp[2] = {{"since", vint(2020)}, {"w", vdbl(0.5)}};
  uint64_t r1, r2;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "KNOWS", a, c, rp, 2, &r1));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "KNOWS", c, a, rp, 1, &r2)); /* lacks w */
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "LIKES", c, a, rp, 2, NULL));
  commit(tx);
  sl_value key2[2] = {vdbl(2020.0), vdbl(0.5)};
  char want[32];
  snprintf(want, sizeof want, "%" PRIu64, r1);
  assert_string_equal(seek(st, rname, key2, 2), want);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_set_rel_prop(tx, r2, "w", &key2[1]));
  commit(tx);
  snprintf(want, sizeof want, "%" PRIu64 ",%" PRIu64, r1, r2);
  assert_string_equal(seek(st, rname, key2, 2), want);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_delete_node(tx, a, true)); /* detach: both relationships go */
  commit(tx);
  assert_string_equal(seek(st, rname, key2, 2), "");
  verified(st);

  /* listing, and dropping */
  sl_view *v;
  const sl_schema_rule *rules;
  size_t n;
  OK(sl_view_begin(st, &v));
  OK(sl_view_schema(v, &rules, &n));
  assert_int_equal(n, 2);
  assert_string_equal(rules[0].name, "by_name");
  assert_string_equal(rules[1].keys[1], "w");
  assert_true(rules[1].rel);
  sl_view_end(v);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_drop_index(tx, "by_name"));
  ERR(SL_ENOTFOUND, sl_tx_drop_index(tx, "by_name"));
  sl_tx_abort(tx);
  OK(sl_tx_begin(st, &tx));
  ERR(SL_ENOTFOUND, sl_tx_drop_constraint(tx, "by_name")); /* an index, not a constraint */
  sl_tx_abort(tx);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_drop_index(tx, "by_name"));
  commit(tx);
  sl_view *v2;
  OK(sl_view_begin(st, &v2));
  ERR(SL_ENOTFOUND, sl_view_index_seek(v2, "by_name", &ann, 1, push_id, NULL));
  sl_view_end(v2);
  verified(st);
  compare_with_replay(st, "schema_writes_replay");
  sl_store_close(st);
  done_dir(dir);
}

/* ---- numbers meet across int and float; the index's order ------------------------------------ */
static void index_numbers_and_order(void **state) {
  (void)state;
  char *dir = new_dir("schema_numbers");
  sl_store *st = create_open(dir, NULL);
  static const char *const k[] = {"v"};
  sl_schema_rule r = rule(SL_SCHEMA_INDEX, false, "N", k, 1, "nv");
  OK(create_rule(st, &r, NULL));
  /* ids 1.. in ascending order of value, mixed kinds */
  sl_value vals[] = {vdbl(-INFINITY), vdbl(-1e300), vint(INT64_MIN), vdbl(-1.5), vint(-1), vdbl(-0.25),
                     vint(0), vdbl(0.5), vint(1), vdbl(1.5), vint((1ll << 53) + 1), vint(INT64_MAX),
                     vdbl(9223372036854775808.0), vdbl(1e300), vdbl(INFINITY)};
  size_t nv = SL_ARRAY_LEN(vals);
  for (size_t i = 0; i < nv; i++) node(st, "N", "v", vals[i]);
  uint64_t nan_id = node(st, "N", "v", vdbl(NAN));
  node(st, "N", "v", vstr("1")); /* a string is no number */
  char want[512] = "";
  for (size_t i = 0; i < nv; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", i ? "," : "", i + 1);
  sl_value lo = vdbl(-INFINITY);
  assert_string_equal(range(st, "nv", &lo, true, NULL, false), want); /* every number, NaN and the string not */
  sl_value one = vdbl(1.0), onei = vint(1), minus0 = vdbl(-0.0);
  assert_string_equal(seek(st, "nv", &one, 1), "9");   /* 1.0 finds the integer 1 */
  assert_string_equal(seek(st, "nv", &onei, 1), "9");
  assert_string_equal(seek(st, "nv", &minus0, 1), "7"); /* -0.0 = 0 */
  sl_value big = vint((1ll << 53) + 1), bigd = vdbl((double)((1ll << 53) + 1));
  assert_string_equal(seek(st, "nv", &big, 1), "11");
  assert_string_equal(seek(st, "nv", &bigd, 1), ""); /* 2^53 as a double is not 2^53 + 1 */
  sl_value hi = vint(1);
  assert_string_equal(range(st, "nv", &minus0, false, &hi, true), "8,9");
  assert_string_equal(range(st, "nv", NULL, false, &hi, false), "1,2,3,4,5,6,7,8");
  sl_value nan = vdbl(NAN), s1 = vstr("1");
  assert_string_equal(range(st, "nv", &nan, true, NULL, false), "");
  assert_int_equal(nan_id, nv + 1);
  assert_string_equal(range(st, "nv", &s1, true, NULL, false), "17");
  sl_view *v;
  OK(sl_view_begin(st, &v));
  ERR(SL_EINVAL, sl_view_index_range(v, "nv", &s1, true, &hi, true, push_id, NULL)); /* not comparable */
  sl_view_end(v);

  /* strings bytewise, long strings beyond what a key holds */
  static const char *const kn[] = {"s"};
  sl_schema_rule rs = rule(SL_SCHEMA_UNIQUE, false, "S", kn, 1, "s_unique");
  OK(create_rule(st, &rs, NULL));
  char *long1 = malloc(3001), *long2 = malloc(3001);
  memset(long1, 'x', 3000);
  memcpy(long2, long1, 3000);
  long1[3000] = long2[3000] = 0;
  long2[2999] = 'y'; /* differs after the kept prefix */
  uint64_t l1 = node(st, "S", "s", vstr(long1));
  uint64_t l2 = node(st, "S", "s", vstr(long2));
  node(st, "S", "s", vstr("a"));
  node(st, "S", "s", vstr("ab"));
  sl_value q = vstr(long2);
  char want1[32];
  snprintf(want1, sizeof want1, "%" PRIu64, l2);
  assert_string_equal(seek(st, "s_unique", &q, 1), want1);
  sl_tx *tx;
  OK(sl_tx_begin(st, &tx));
  const char *lab = "S";
  sl_prop p = {"s", vstr(long1)};
  OK(sl_tx_create_node(tx, SL_ID_NEW, &lab, 1, &p, 1, NULL));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  (void)l1;
  free(long1);
  free(long2);
  verified(st);
  sl_store_close(st);
  done_dir(dir);
}

/* ---- keys agree with sl_value_order for every kind -------------------------------------------- */
static const char *const zones[] = {"Europe/Paris", "America/New_York", "Asia/Tokyo"};

/* A random value of any kind, drawn from small ranges so that equal and
 * neighbouring values meet often. */
static sl_value rand_value(uint64_t *rs, char *sbuf, uint8_t *bbuf, sl_value *items) {
  sl_value v = {0};
  static const double dbls[] = {0.0, -0.0, 1.0, -1.0, 1.5, -2.5, 1e300, -1e300, 9223372036854775808.0};
  static const char *const strs[] = {"", "a", "ab", "b", "\xc3\xa9"};
  switch (tu_rand_below(rs, 13)) {
  case 0: v.kind = SL_BOOL; v.u.b = tu_rand_below(rs, 2); break;
  case 1: v.kind = SL_INT; v.u.i = (int64_t)tu_rand_below(rs, 7) - 3; if (!tu_rand_below(rs, 8)) v.u.i = INT64_MAX; break;
  case 2:
    v.kind = SL_DOUBLE;
    v.u.d = tu_rand_below(rs, 3) ? (double)((int64_t)tu_rand_below(rs, 7) - 3) : dbls[tu_rand_below(rs, SL_ARRAY_LEN(dbls))];
    if (!tu_rand_below(rs, 20)) v.u.d = NAN;
    break;
  case 3: v.kind = SL_STRING; strcpy(sbuf, strs[tu_rand_below(rs, SL_ARRAY_LEN(strs))]); v.u.s = sbuf; v.len = strlen(sbuf); break;
  case 4:
    v.kind = SL_BYTES;
    v.len = tu_rand_below(rs, 3);
    for (size_t i = 0; i < v.len; i++) bbuf[i] = (uint8_t)(tu_rand_below(rs, 3) ? tu_rand_below(rs, 3) : 0xff);
    v.u.bytes = bbuf;
    break;
  case 5: {
    v.kind = SL_LIST;
    v.elem_kind = tu_rand_below(rs, 2) ? SL_INT : SL_DOUBLE;
    v.len = tu_rand_below(rs, 3);
    for (size_t i = 0; i < v.len; i++) {
      items[i] = (sl_value){.kind = v.elem_kind};
      if (v.elem_kind == SL_INT) items[i].u.i = (int64_t)tu_rand_below(rs, 3) - 1;
      else items[i].u.d = (double)((int64_t)tu_rand_below(rs, 3) - 1);
    }
    v.u.items = items;
    break;
  }
  case 6: v.kind = SL_DATE; v.u.t.seconds = (int64_t)tu_rand_below(rs, 5) - 2; break;
  case 7: v.kind = SL_LOCALTIME; v.u.t.seconds = (int64_t)tu_rand_below(rs, 3) * 3600; v.u.t.nanos = (int32_t)tu_rand_below(rs, 2); break;
  case 8:
    v.kind = SL_TIME;
    v.u.t.seconds = (int64_t)tu_rand_below(rs, 3) * 3600;
    v.u.t.offset = ((int32_t)tu_rand_below(rs, 3) - 1) * 3600;
    break;
  case 9: v.kind = SL_LOCALDATETIME; v.u.t.seconds = (int64_t)tu_rand_below(rs, 3) - 1; v.u.t.nanos = (int32_t)tu_rand_below(rs, 2); break;
  case 10:
    v.kind = SL_DATETIME;
    v.u.t.seconds = (int64_t)tu_rand_below(rs, 3) * 3600;
    v.u.t.offset = ((int32_t)tu_rand_below(rs, 3) - 1) * 3600;
    v.u.t.zone = tu_rand_below(rs, 2) ? zones[tu_rand_below(rs, SL_ARRAY_LEN(zones))] : NULL;
    break;
  case 11:
    v.kind = SL_DURATION;
    v.u.dur.months = (int64_t)tu_rand_below(rs, 3) - 1;
    v.u.dur.days = (int64_t)tu_rand_below(rs, 3) * 30 - 30;
    v.u.dur.seconds = ((int64_t)tu_rand_below(rs, 3) - 1) * 86400;
    v.u.dur.nanos = (int32_t)tu_rand_below(rs, 3) - 1;
    if ((v.u.dur.seconds > 0 && v.u.dur.nanos < 0) || (v.u.dur.seconds < 0 && v.u.dur.nanos > 0)) v.u.dur.nanos = 0;
    break;
  default:
    v.kind = SL_POINT;
    v.u.pt.srid = tu_rand_below(rs, 2) ? SL_SRID_CARTESIAN : SL_SRID_WGS84;
    v.u.pt.x = dbls[tu_rand_below(rs, 4)];
    v.u.pt.y = (double)tu_rand_below(rs, 2);
    break;
  }
  return v;
}

static int key_cmp(const sl_value *a, const sl_value *b) {
  static sl__keybuf ka, kb;
  ka.len = kb.len = 0;
  sl__index_key_value(&ka, a);
  sl__index_key_value(&kb, b);
  int c = memcmp(ka.buf, kb.buf, SL_MIN(ka.len, kb.len));
  if (!c) c = (ka.len > kb.len) - (ka.len < kb.len);
  return (c > 0) - (c < 0);
}

static void keys_agree_with_order(void **state) {
  (void)state;
  uint64_t rs = tu_seed("keys_agree_with_order");
  char sa[8], sb[8];
  uint8_t ba[4], bb[4];
  sl_value ia[4], ib[4];
  for (int i = 0; i < 200000; i++) {
    sl_value a = rand_value(&rs, sa, ba, ia), b = rand_value(&rs, sb, bb, ib);
    int want = sl_value_order(&a, &b), got = key_cmp(&a, &b);
    want = (want > 0) - (want < 0);
    if (got != want) fail_msg("kinds %d and %d: keys compare %d, sl_value_order says %d (pair %d)", a.kind, b.kind, got, want, i);
  }
}

/* ---- temporal, duration and point values in an index ------------------------------------------ */
static void index_temporal_kinds(void **state) {
  (void)state;
  char *dir = new_dir("schema_temporal");
  sl_store *st = create_open(dir, NULL);
  static const char *const k[] = {"t"};
  sl_schema_rule r = rule(SL_SCHEMA_UNIQUE, false, "T", k, 1, "tu");
  OK(create_rule(st, &r, NULL));
  sl_value d1 = {.kind = SL_DATE, .u.t.seconds = 19000}, d2 = {.kind = SL_DATE, .u.t.seconds = 19001};
  sl_value dt_paris = {.kind = SL_DATETIME, .u.t = {.seconds = 1700000000, .offset = 3600, .zone = "Europe/Paris"}};
  sl_value dt_utc = {.kind = SL_DATETIME, .u.t = {.seconds = 1700000000}};
  sl_value dur = {.kind = SL_DURATION, .u.dur = {.months = 1, .days = 2, .seconds = 3, .nanos = 4}};
  sl_value pt = {.kind = SL_POINT, .u.pt = {.srid = SL_SRID_CARTESIAN, .x = 1.5, .y = -2}};
  sl_value tm = {.kind = SL_TIME, .u.t = {.seconds = 43200, .offset = 3600}};
  uint64_t a = node(st, "T", "t", d1), b = node(st, "T", "t", d2), c = node(st, "T", "t", dt_paris);
  uint64_t d = node(st, "T", "t", dt_utc); /* the same instant in another zone: another value */
  uint64_t e = node(st, "T", "t", dur), f = node(st, "T", "t", pt), g = node(st, "T", "t", tm);
  char want[64];
  const struct { sl_value *v; uint64_t id; } cases[] = {{&d1, a}, {&d2, b}, {&dt_paris, c}, {&dt_utc, d},
                                                       {&dur, e}, {&pt, f}, {&tm, g}};
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    snprintf(want, sizeof want, "%" PRIu64, cases[i].id);
    assert_string_equal(seek(st, "tu", cases[i].v, 1), want);
  }
  assert_string_equal(range(st, "tu", &d1, true, NULL, false), "1,2"); /* dates only */
  sl_tx *tx;
  const char *T = "T";
  sl_prop p = {"t", pt};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &T, 1, &p, 1, NULL));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL)); /* a point is unique too */
  verified(st);
  compare_with_replay(st, "schema_temporal_replay");
  sl_store_close(st);
  done_dir(dir);
}

/* ---- constraints -------------------------------------------------------------------------- */
static void constraints_refuse(void **state) {
  (void)state;
  char *dir = new_dir("schema_constraints");
  sl_store *st = create_open(dir, NULL);
  sl_schema_rule u = rule(SL_SCHEMA_UNIQUE, false, "Person", NAME_KEY, 1, "person_name");
  OK(create_rule(st, &u, NULL));
  uint64_t ann = node(st, "Person", "name", vstr("ann"));
  sl_tx *tx;
  const char *person = "Person";
  sl_prop p = {"name", vstr("ann")};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &person, 1, &p, 1, NULL));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  /* a duplicate by float: 1 = 1.0 */
  sl_schema_rule u2 = rule(SL_SCHEMA_UNIQUE, false, "Person", (const char *const[]){"n"}, 1, NULL);
  OK(create_rule(st, &u2, NULL));
  node(st, "Person", "n", vint(1));
  OK(sl_tx_begin(st, &tx));
  sl_prop pn = {"n", vdbl(1.0)};
  OK(sl_tx_create_node(tx, SL_ID_NEW, &person, 1, &pn, 1, NULL));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  /* the message names constraint, label, key, value and both nodes */
  OK(sl_tx_begin(st, &tx));
  uint64_t id;
  OK(sl_tx_create_node(tx, SL_ID_NEW, NULL, 0, &p, 1, &id));
  OK(sl_tx_add_label(tx, id, "Person"));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  /* (the tx is gone: its error was in sl_tx_error before the commit ended it) */
  /* a passing violation inside one transaction is fine */
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &person, 1, &p, 1, &id));
  sl_value other = vstr("bea");
  OK(sl_tx_set_node_prop(tx, id, "name", &other));
  commit(tx);
  verified(st);

  /* NODE KEY: unique and present; NOT NULL: present */
  static const char *const ab[] = {"a", "b"};
  sl_schema_rule nk = rule(SL_SCHEMA_NODE_KEY, false, "K", ab, 2, "k_key");
  OK(create_rule(st, &nk, NULL));
  sl_prop kp[2] = {{"a", vint(1)}, {"b", vstr("x")}};
  const char *K = "K";
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &K, 1, kp, 2, &id));
  commit(tx);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &K, 1, kp, 1, NULL)); /* lacks b */
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_remove_node_prop(tx, id, "b"));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  sl_schema_rule nn = rule(SL_SCHEMA_NOT_NULL, true, "R", (const char *const[]){"w"}, 1, "r_w");
  OK(create_rule(st, &nn, NULL));
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_rel(tx, SL_ID_NEW, "R", ann, id, NULL, 0, NULL));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));

  /* creating a constraint the data violates; equivalents and names */
  node(st, "Dup", "name", vstr("x"));
  node(st, "Dup", "name", vstr("x"));
  sl_schema_rule ud = rule(SL_SCHEMA_UNIQUE, false, "Dup", NAME_KEY, 1, "dup_name");
  ERR(SL_ECONSTRAINT, create_rule(st, &ud, NULL));
  sl_schema_rule nd = rule(SL_SCHEMA_NOT_NULL, false, "Dup", (const char *const[]){"age"}, 1, NULL);
  ERR(SL_ECONSTRAINT, create_rule(st, &nd, NULL));
  sl_schema_rule same = rule(SL_SCHEMA_INDEX, false, "Person", NAME_KEY, 1, "other_name");
  ERR(SL_EEXIST, create_rule(st, &same, NULL)); /* the unique constraint's index covers it */
  sl_schema_rule taken = rule(SL_SCHEMA_INDEX, false, "Other", NAME_KEY, 1, "person_name");
  ERR(SL_EEXIST, create_rule(st, &taken, NULL));
  verified(st);
  compare_with_replay(st, "schema_constraints_replay");
  sl_store_close(st);
  done_dir(dir);
}

static void constraint_message(void **state) {
  (void)state;
  char *dir = new_dir("schema_message");
  sl_store *st = create_open(dir, NULL);
  sl_schema_rule u = rule(SL_SCHEMA_UNIQUE, false, "Person", NAME_KEY, 1, "person_name");
  OK(create_rule(st, &u, NULL));
  node(st, "Person", "name", vstr("Alice"));
  sl_tx *tx;
  const char *person = "Person";
  sl_prop p = {"name", vstr("Alice")};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &person, 1, &p, 1, NULL));
  /* The refused commit says why on stderr (sl_tx_error ends with the tx). */
  tu_capture_begin();
  int rc = sl_tx_commit(tx, NULL);
  char *err = tu_capture_end();
  ERR(SL_ECONSTRAINT, rc);
  if (!strstr(err, "commit refused: Node(1) already exists with label `Person` and property `name` = 'Alice' "
                   "(node 2 has the same; constraint person_name)"))
    fail_msg("message: %s", err);
  free(err);
  sl_store_close(st);
  done_dir(dir);
}

/* ---- replay, standby, dump | load ------------------------------------------------------------ */
static void schema_travels(void **state) {
  (void)state;
  char *dir = new_dir("schema_travels");
  sl_store *st = create_open(dir, NULL);
  node(st, "P", "name", vstr("a"));
  sl_schema_rule r = rule(SL_SCHEMA_INDEX, false, "P", NAME_KEY, 1, NULL);
  char name[SL_NAME_MAX + 1];
  OK(create_rule(st, &r, name));
  sl_schema_rule u = rule(SL_SCHEMA_UNIQUE, false, "Q", NAME_KEY, 1, "q");
  OK(create_rule(st, &u, NULL));
  node(st, "P", "name", vstr("b"));
  node(st, "Q", "name", vstr("b"));

  /* a standby (replay of the log) */
  char *logdir = sub(dir, "log"), *sb = new_dir("schema_standby");
  sl_store *rep = replay_into(logdir, sb, NULL);
  sl_value b = vstr("b");
  assert_string_equal(seek(rep, name, &b, 1), "2");
  assert_string_equal(seek(rep, "q", &b, 1), "3");
  verified(rep);
  sl_store_close(rep);

  /* dump | load */
  char *dumpf = sub(sb, "full.dump"), *loaded = sub(sb, "loaded");
  int fd = open(dumpf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  OK(sl_dump_full(st, fd, NULL, NULL));
  close(fd);
  sl_store_close(st);
  OK(sl_load_full(dumpf, loaded, NULL, NULL));
  OK(sl_store_open(loaded, 0, &st));
  assert_string_equal(seek(st, name, &b, 1), "2");
  verified(st);
  /* the loaded store goes on enforcing and maintaining */
  sl_tx *tx;
  const char *q = "Q";
  sl_prop p = {"name", b};
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &q, 1, &p, 1, NULL));
  ERR(SL_ECONSTRAINT, sl_tx_commit(tx, NULL));
  node(st, "P", "name", vstr("b"));
  assert_string_equal(seek(st, name, &b, 1), "2,4");
  sl_store_close(st);
  free(dumpf);
  free(loaded);
  free(logdir);
  done_dir(sb);
  done_dir(dir);
}

/* ---- verify catches a damaged index ------------------------------------------------------------ */
static void verify_catches_damage(void **state) {
  (void)state;
  char *dir = new_dir("schema_damage");
  sl_store *st = create_open(dir, NULL);
  sl_schema_rule r = rule(SL_SCHEMA_INDEX, false, "P", NAME_KEY, 1, "ix");
  OK(create_rule(st, &r, NULL));
  node(st, "P", "name", vstr("a"));
  node(st, "P", "name", vstr("b"));
  sl_store_close(st);

  /* delete the first index entry behind the store's back */
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *c;
  MDB_val k, d;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  mdb_env_set_mapsize(env, 1ull << 30);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "index", 0, &dbi), 0);
  assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
  assert_int_equal(mdb_cursor_get(c, &k, &d, MDB_FIRST), 0);
  assert_int_equal(mdb_cursor_del(c, 0), 0);
  mdb_cursor_close(c);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  OK(sl_store_open(dir, SL_OPEN_RDONLY, &st));
  sl_view *v;
  char why[512];
  OK(sl_view_begin(st, &v));
  ERR(SL_ECORRUPT, sl_store_schema_verify(v, why, sizeof why));
  assert_non_null(strstr(why, "index ix lacks the entry of node 1"));
  sl_view_end(v);
  sl_store_close(st);
  /* and `shiplog verify`'s algorithm says so, naming the store */
  sl_verify_result res;
  tu_capture_begin();
  int rc = sl_store_verify(dir, canonical, &res);
  char *err = tu_capture_end();
  ERR(SL_ECORRUPT, rc);
  if (!strstr(err, "FAILED: index ix lacks the entry of node 1")) fail_msg("verify said: %s", err);
  free(err);
  done_dir(dir);
}

/* ---- an older reader refuses an op it does not know ---------------------------------------------- */
/* ---- one transaction, data or schema ---------------------------------------------------- */
static void data_and_schema_apart(void **state) {
  (void)state;
  char *dir = new_dir("schema_apart");
  sl_store *st = create_open(dir, NULL);
  sl_schema_rule r = rule(SL_SCHEMA_INDEX, false, "P", NAME_KEY, 1, "by_name");
  const char *lab = "P";
  sl_tx *tx;
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_node(tx, SL_ID_NEW, &lab, 1, NULL, 0, NULL));
  ERR(SL_ETXKIND, sl_tx_create_index(tx, &r, NULL));
  assert_string_equal(sl_tx_error(tx), "Cannot perform schema updates in a transaction that has performed data updates.");
  sl_tx_abort(tx);
  OK(sl_tx_begin(st, &tx));
  OK(sl_tx_create_index(tx, &r, NULL));
  ERR(SL_ETXKIND, sl_tx_create_node(tx, SL_ID_NEW, &lab, 1, NULL, 0, NULL));
  assert_string_equal(sl_tx_error(tx), "Cannot perform data updates in a transaction that has performed schema updates.");
  sl_tx_abort(tx);
  sl_view *v;
  sl_counts c;
  OK(sl_view_begin(st, &v));
  OK(sl_view_counts(v, &c));
  assert_int_equal(c.nodes, 0);
  sl_view_end(v);
  sl_store_close(st);
  done_dir(dir);
}

static void unknown_op_refused(void **state) {
  (void)state;
  char *dir = new_dir("schema_unknown_op");
  sl_store_options o = {.no_log = true};
  sl_store *st;
  OK(sl_store_create(dir, &o));
  OK(sl_store_open(dir, SL_OPEN_NOLOG, &st));
  /* Transaction{txid 1, time 1, ops [Op{field 99: ""}]}: what a reader of
   * this version meets as an op of a later one, and what an older reader
   * meets as create_index (field 11). */
  const uint8_t rec[] = {0x08, 1, 0x10, 1, 0x22, 3, 0x9a, 0x06, 0x00};
  tu_capture_begin();
  int rc = sl_store_apply(st, rec, sizeof rec);
  char *err = tu_capture_end();
  ERR(SL_EVERSION, rc);
  assert_non_null(strstr(err, "an op this version does not know"));
  free(err);
  assert_int_equal(counts_of(st).applied_txid, 0);
  sl_store_close(st);
  done_dir(dir);
}

/* ---- a store of format 1 (no schema databases) -------------------------------------------------- */
static void old_store_upgraded(void **state) {
  (void)state;
  char *dir = new_dir("schema_old_store");
  sl_store *st = create_open(dir, NULL);
  node(st, "P", "name", vstr("a"));
  sl_store_close(st);
  /* drop the schema databases: what a store of an earlier build holds */
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  uint64_t version = 0;
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  mdb_env_set_mapsize(env, 1ull << 30);
  assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "schema", 0, &dbi), 0);
  assert_int_equal(mdb_drop(txn, dbi, 1), 0);
  assert_int_equal(mdb_dbi_open(txn, "index", 0, &dbi), 0);
  assert_int_equal(mdb_drop(txn, dbi, 1), 0);
  assert_int_equal(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  /* read-only: no schema, no failure */
  OK(sl_store_open(dir, SL_OPEN_RDONLY, &st));
  sl_view *v;
  const sl_schema_rule *rules;
  size_t n = 9;
  OK(sl_view_begin(st, &v));
  OK(sl_view_schema(v, &rules, &n));
  assert_int_equal(n, 0);
  sl_view_end(v);
  sl_store_close(st);
  /* a writer creates them; the format becomes 2 with the first rule */
  OK(sl_store_open(dir, 0, &st));
  sl_schema_rule r = rule(SL_SCHEMA_INDEX, false, "P", NAME_KEY, 1, "ix");
  OK(create_rule(st, &r, NULL));
  sl_value a = vstr("a");
  assert_string_equal(seek(st, "ix", &a, 1), "1");
  sl_store_close(st);
  assert_int_equal(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
  assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
  assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
  MDB_val k = {14, "format_version"}, d;
  assert_int_equal(mdb_get(txn, dbi, &k, &d), 0);
  memcpy(&version, d.mv_data, 8);
  assert_int_equal(version, 2);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  done_dir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(index_follows_writes),  cmocka_unit_test(index_numbers_and_order),
      cmocka_unit_test(constraints_refuse),    cmocka_unit_test(constraint_message),
      cmocka_unit_test(schema_travels),        cmocka_unit_test(verify_catches_damage),
      cmocka_unit_test(unknown_op_refused),    cmocka_unit_test(old_store_upgraded),
      cmocka_unit_test(keys_agree_with_order), cmocka_unit_test(index_temporal_kinds),
      cmocka_unit_test(data_and_schema_apart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
