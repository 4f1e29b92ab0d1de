/*
 * interchange: value spelling (doubles, strings, base64), mutation lines,
 * and the canonical export / import round trip over every value kind.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interchange_int.h"
#include "sl_base.h"
#include "testutil.h"

/* ---- doubles ------------------------------------------------------------- */
static void interchange_double_table(void **state) {
  (void)state;
  static const struct {
    double d;
    const char *text;
  } table[] = {
      {0.1, "0.1"},
      {1.0, "1.0"},
      {-1.0, "-1.0"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {2.5, "2.5"},
      {1e300, "1e+300"},
      {5e-324, "5e-324"},
      {1e21, "1e+21"},
      {1e20, "100000000000000000000.0"},
      {123456789.0, "123456789.0"},
      {9007199254740992.0, "9007199254740992.0"},
      {1e-7, "1e-7"},
      {1.5e-7, "1.5e-7"},
      {1e-6, "0.000001"},
      {-1234.5678, "-1234.5678"},
      {0.30000000000000004, "0.30000000000000004"},
      {DBL_MAX, "1.7976931348623157e+308"},
      {DBL_MIN, "2.2250738585072014e-308"},
      {NAN, "NaN"},
      {INFINITY, "Infinity"},
      {-INFINITY, "-Infinity"},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(table); i++) {
    char buf[SL_DOUBLE_BUF];
    size_t n = sl_double_format(table[i].d, buf);
    assert_string_equal(buf, table[i].text);
    assert_int_equal(n, strlen(table[i].text));
  }
}

/* Random bit patterns: the text reads back to the same bits, always has a
 * '.' or an exponent, and no shorter digit string would do. */
static void interchange_double_roundtrip(void **state) {
  (void)state;
  uint64_t seed = tu_seed("interchange_double_roundtrip");
  for (int i = 0; i < 200000; i++) {
    uint64_t bits = tu_rand(&seed);
    double d;
    memcpy(&d, &bits, sizeof d);
    if (!isfinite(d)) continue;
    char buf[SL_DOUBLE_BUF];
    sl_double_format(d, buf);
    double back = strtod(buf, NULL);
    if (memcmp(&back, &d, sizeof d)) fail_msg("%a formatted as %s reads back as %a", d, buf, back);
    if (!strpbrk(buf, ".e")) fail_msg("%s has neither '.' nor an exponent", buf);
    char digits[32];
    int k = 0;
    for (const char *p = buf; *p && *p != 'e'; p++)
      if (*p >= '0' && *p <= '9') digits[k++] = *p;
    char shorter[40];
    int sig = 0;
    for (int p = 1; p <= 17; p++) {
      snprintf(shorter, sizeof shorter, "%.*e", p - 1, d);
      if (strtod(shorter, NULL) == d) {
        sig = p;
        break;
      }
    }
    /* Significant digits written: strip leading and trailing zeros. */
    int first = 0, last = k - 1;
    while (first < k && digits[first] == '0') first++;
    while (last > first && digits[last] == '0') last--;
    assert_int_equal(last - first + 1, sig);
  }
}

/* ---- strings and base64 ---------------------------------------------------- */
static void interchange_string_escape(void **state) {
  (void)state;
  sl__jbuf b = {0};
  const char in[] = "a\"b\\c\n\x01\x1f\x7f \xc3\xa9/\xe2\x82\xac";
  sl__jbuf_str(&b, in, sizeof in - 1);
  sl__jbuf_putc(&b, 0);
  assert_string_equal(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\\u001f\\u007f \xc3\xa9/\xe2\x82\xac\"");
  b.len = 0;
  sl__jbuf_str(&b, "", 0);
  sl__jbuf_putc(&b, 0);
  assert_string_equal(b.p, "\"\"");
  sl__jbuf_free(&b);
}

static void interchange_base64(void **state) {
  (void)state;
  static const char *vec[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},      {"foo", "Zm9v"},
                                 {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  char enc[64];
  uint8_t dec[64];
  for (size_t i = 0; i < SL_ARRAY_LEN(vec); i++) {
    size_t n = sl_base64_encode((const uint8_t *)vec[i][0], strlen(vec[i][0]), enc);
    assert_int_equal(n, strlen(vec[i][1]));
    assert_memory_equal(enc, vec[i][1], n);
    assert_int_equal(sl_base64_decode(vec[i][1], n, dec), (long)strlen(vec[i][0]));
    assert_memory_equal(dec, vec[i][0], strlen(vec[i][0]));
  }
  static const char *bad[] = {"Zg=", "Zh==", "Z===", "Zg==Zg==", "Zm9!", "Zm=v", "Zm8", "Zm9vY==="};
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++)
    if (sl_base64_decode(bad[i], strlen(bad[i]), dec) != SL_EINVAL) fail_msg("accepted bad base64 \"%s\"", bad[i]);

  uint64_t seed = tu_seed("interchange_base64");
  uint8_t raw[300], back[300];
  char text[400];
  for (int i = 0; i < 2000; i++) {
    size_t len = tu_rand_below(&seed, sizeof raw);
    for (size_t j = 0; j < len; j++) raw[j] = (uint8_t)tu_rand(&seed);
    size_t n = sl_base64_encode(raw, len, text);
    assert_int_equal(n, (len + 2) / 3 * 4);
    assert_int_equal(sl_base64_decode(text, n, back), (long)len);
    assert_memory_equal(raw, back, len);
  }
}

/* ---- mutation lines ------------------------------------------------------------- */
static sl_store *new_store(const char *name) {
  sl_store *st;
  const char *dir = tu_tmpdir(name);
  assert_int_equal(sl_store_create(dir, NULL), 0);
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  return st;
}

/* Apply one line in its own transaction; returns the code, why in ml. */
static int apply(sl_store *st, const char *line, sl_mutation_line *ml) {
  sl_tx *tx;
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  int rc = sl_mutation_apply(tx, line, strlen(line), ml);
  if (rc)
    sl_tx_abort(tx);
  else
    rc = sl_tx_commit(tx, NULL);
  return rc;
}

static void interchange_mutation_lines(void **state) {
  (void)state;
  sl_store *st = new_store("mutation_lines");
  sl_mutation_line ml = {0};
  assert_int_equal(apply(st, "  // a comment", &ml), 0);
  assert_int_equal(apply(st, "", &ml), 0);
  assert_int_equal(apply(st, "{\"ops\":[{\"op\":\"create_node\",\"labels\":[\"A\"]},"
                             "{\"op\":\"create_node\",\"labels\":[],\"props\":{\"x\":1.0}}]}",
                         &ml),
                   0);
  assert_int_equal(ml.nassigned, 2);
  assert_false(ml.assigned[0].rel);
  assert_int_equal(ml.assigned[1].id, ml.assigned[0].id + 1);
  assert_int_equal(apply(st, "{\"ops\":[{\"op\":\"create_rel\",\"type\":\"T\",\"start\":1,\"end\":2}]}", &ml), 0);
  assert_int_equal(ml.nassigned, 1);
  assert_true(ml.assigned[0].rel);
  /* 0 is an id like any other: given, it is taken, not a request for one. */
  assert_int_equal(apply(st, "{\"ops\":[{\"op\":\"create_node\",\"id\":0,\"labels\":[\"Z\"]},"
                             "{\"op\":\"create_rel\",\"id\":0,\"type\":\"T\",\"start\":0,\"end\":0}]}",
                         &ml),
                   0);
  assert_int_equal(ml.nassigned, 0);

  static const struct {
    const char *line;
    int rc;
    const char *why;
  } bad[] = {
      {"{\"ops\":[", SL_EINVAL, "column"},
      {"[1]", SL_EINVAL, "{\"ops\""},
      {"{\"ops\":[{\"op\":\"explode\"}]}", SL_EINVAL, "unknown op"},
      {"{\"ops\":[{\"op\":\"create_node\",\"lables\":[]}]}", SL_EINVAL, "unknown field \"lables\""},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":null}}]}", SL_EINVAL, "null"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":[1,\"x\"]}}]}", SL_EINVAL, "mixes"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":[[1]]}}]}", SL_EINVAL, "scalars"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":{\"b\":1}}}]}", SL_EINVAL, "map"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":{\"$bytes\":\"Zg\"}}}]}", SL_EINVAL,
       "base64"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":\"x\\u0000y\"}}]}", SL_EINVAL, "u0000"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[\"\"]}]}", SL_EINVAL, "1..255"},
      {"{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"a\":99999999999999999999}}]}", SL_EINVAL,
       "column"},
      {"{\"ops\":[{\"op\":\"create_node\",\"id\":-1,\"labels\":[]}]}", SL_EINVAL, ">= 0"},
      {"{\"ops\":[{\"op\":\"create_node\",\"id\":1,\"labels\":[]}]}", SL_EEXIST, "node 1"},
      {"{\"ops\":[{\"op\":\"set_node_prop\",\"id\":77,\"key\":\"k\",\"value\":1}]}", SL_ENOTFOUND, "node 77"},
      {"{\"ops\":[{\"op\":\"create_rel\",\"type\":\"T\",\"start\":1,\"end\":99}]}", SL_ENOTFOUND, "end node 99"},
      {"{\"ops\":[{\"op\":\"delete_node\",\"id\":1}]}", SL_EHASRELS, "node 1"},
      {"{\"ts\":\"yesterday\",\"ops\":[]}", SL_EINVAL, "\"ts\""},
      {"{\"ts\":1,\"ops\":[]}", SL_ETIME, "\"ts\""},
      {"{\"ops\":[{\"op\":\"add_label\",\"id\":1,\"label\":\"B\"},{\"op\":\"delete_rel\",\"id\":5}]}", SL_ENOTFOUND,
       "op 2 (delete_rel)"},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    int rc = apply(st, bad[i].line, &ml);
    if (rc != bad[i].rc || !strstr(ml.why, bad[i].why))
      fail_msg("%s: got %s \"%s\", want %s \"...%s...\"", bad[i].line, sl_errname(rc), ml.why,
               sl_errname(bad[i].rc), bad[i].why);
  }
  /* The refused line with add_label applied nothing. */
  sl_view *v;
  sl_node n;
  assert_int_equal(sl_view_begin(st, &v), 0);
  assert_int_equal(sl_view_node(v, 1, &n), 0);
  assert_int_equal(n.nlabels, 1);
  assert_string_equal(n.labels[0], "A");
  sl_value val;
  assert_int_equal(sl_view_node_prop(v, 2, "x", &val), 0);
  assert_int_equal(val.kind, SL_DOUBLE);
  sl_view_end(v);
  sl_mutation_line_free(&ml);
  sl_store_close(st);
}

/* ---- export / import round trip --------------------------------------------------- */
static const char *const words[] = {"", "a", "Ann", "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac\xf0\x9f\x98\x80",
                                    "quote\"back\\slash", "tab\tnl\ncr\r\x01\x1f\x7f", "/*json*/",
                                    "{\"$bytes\":\"Zg==\"}"};

static void rand_scalar(uint64_t *s, sl_kind kind, sl_value *v, uint8_t *bytes) {
  static const double doubles[] = {0.0, -0.0, 1.0, 0.1, 1e300, 5e-324, -2.5e-7, 1e21, 123456.789};
  static const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1984, -9007199254740993LL};
  *v = (sl_value){.kind = kind};
  switch (kind) {
  case SL_BOOL: v->u.b = tu_rand(s) & 1; break;
  case SL_INT: v->u.i = tu_rand_below(s, 2) ? ints[tu_rand_below(s, SL_ARRAY_LEN(ints))] : (int64_t)tu_rand(s); break;
  case SL_DOUBLE:
    switch (tu_rand_below(s, 4)) {
    case 0: v->u.d = doubles[tu_rand_below(s, SL_ARRAY_LEN(doubles))]; break;
    case 1: v->u.d = (double[]){NAN, INFINITY, -INFINITY}[tu_rand_below(s, 3)]; break;
    default: {
      uint64_t bits;
      do {
        bits = tu_rand(s);
        memcpy(&v->u.d, &bits, sizeof bits);
      } while (!isfinite(v->u.d));
    }
    }
    break;
  case SL_STRING: {
    const char *w = words[tu_rand_below(s, SL_ARRAY_LEN(words))];
    v->u.s = w;
    v->len = strlen(w);
    break;
  }
  case SL_BYTES:
    v->len = tu_rand_below(s, 20);
    for (size_t i = 0; i < v->len; i++) bytes[i] = (uint8_t)tu_rand(s);
    v->u.bytes = bytes;
    break;
  case SL_POINT: {
    static const uint32_t srids[] = {SL_SRID_CARTESIAN, SL_SRID_CARTESIAN_3D, SL_SRID_WGS84, SL_SRID_WGS84_3D};
    v->u.pt.srid = srids[tu_rand_below(s, 4)];
    v->u.pt.x = doubles[tu_rand_below(s, SL_ARRAY_LEN(doubles))];
    v->u.pt.y = -(double)tu_rand_below(s, 1000) / 7;
    if (v->u.pt.srid == SL_SRID_CARTESIAN_3D || v->u.pt.srid == SL_SRID_WGS84_3D) v->u.pt.z = 1e-300;
    break;
  }
  case SL_DURATION: {
    int64_t sign = tu_rand_below(s, 2) ? 1 : -1;
    v->u.dur.months = sign * (int64_t)tu_rand_below(s, 100000);
    v->u.dur.days = -sign * (int64_t)tu_rand_below(s, 100000);
    v->u.dur.seconds = sign * (int64_t)tu_rand_below(s, 1000000000000ULL);
    v->u.dur.nanos = (int32_t)(sign * (int64_t)tu_rand_below(s, 1000000000));
    break;
  }
  default: { /* SL_DATE .. SL_DATETIME: years 1 and 9999, the extremes, nanoseconds */
    static const int64_t days[] = {-719162, 2932896, -365243219162LL, 365241780471LL, 0, 19782};
    static const char *const zones[] = {"Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"};
    int64_t d = tu_rand_below(s, 2) ? days[tu_rand_below(s, SL_ARRAY_LEN(days))]
                                    : (int64_t)tu_rand_below(s, 800000) - 400000;
    int64_t sod = (int64_t)tu_rand_below(s, 86400);
    v->u.t.nanos = tu_rand_below(s, 2) ? 0 : (int32_t)tu_rand_below(s, 1000000000);
    if (kind == SL_DATE) v->u.t.seconds = d, v->u.t.nanos = 0;
    else if (kind == SL_LOCALTIME || kind == SL_TIME) v->u.t.seconds = sod;
    else v->u.t.seconds = d * 86400 + sod;
    if (kind == SL_TIME) v->u.t.offset = (int32_t)tu_rand_below(s, 2 * SL_OFFSET_MAX + 1) - SL_OFFSET_MAX;
    if (kind == SL_DATETIME) {
      v->u.t.seconds += d < 0 ? 2 * 86400 : -2 * 86400; /* the local time stays in range */
      if (tu_rand_below(s, 2)) {
        v->u.t.zone = zones[tu_rand_below(s, SL_ARRAY_LEN(zones))];
        assert_int_equal(sl_tz_offset_at(v->u.t.zone, v->u.t.seconds, &v->u.t.offset), 0);
      } else {
        v->u.t.offset = ((int32_t)tu_rand_below(s, 145) - 72) * 900;
      }
    }
    break;
  }
  }
}

/* Every kind but SL_NULL and SL_LIST. */
static const sl_kind scalar_kinds[] = {SL_BOOL, SL_INT,          SL_DOUBLE,   SL_STRING,   SL_BYTES,
                                       SL_DATE, SL_LOCALTIME,    SL_TIME,     SL_LOCALDATETIME,
                                       SL_DATETIME, SL_DURATION, SL_POINT};
static sl_kind rand_kind(uint64_t *s) { return scalar_kinds[tu_rand_below(s, SL_ARRAY_LEN(scalar_kinds))]; }

/* Fill a random graph with every value kind through the tx API. */
static void random_graph(sl_store *st, uint64_t *s) {
  static const char *const labels[] = {"Person", "B", "a", "\xc3\x89t\xc3\xa9", "with space", "Z"};
  static const char *const keys[] = {"name", "age", "x", "K", "\xe2\x82\xac", "b y"};
  uint8_t bytes[6][6][20];
  sl_value items[6][6];
  sl_tx *tx;
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  uint64_t nnodes = 30;
  for (uint64_t id = 1; id <= nnodes; id++) {
    const char *ls[6];
    size_t nl = tu_rand_below(s, 4);
    for (size_t i = 0; i < nl; i++) ls[i] = labels[(id + i) % SL_ARRAY_LEN(labels)];
    sl_prop props[6];
    size_t np = tu_rand_below(s, 6);
    for (size_t i = 0; i < np; i++) {
      props[i].key = keys[i];
      sl_kind kind = tu_rand_below(s, 5) ? rand_kind(s) : SL_LIST;
      if (kind == SL_LIST) {
        sl_kind ek = rand_kind(s);
        size_t n = tu_rand_below(s, 4);
        for (size_t j = 0; j < n; j++) rand_scalar(s, ek, &items[i][j], bytes[i][j]);
        props[i].value = (sl_value){.kind = SL_LIST, .elem_kind = n ? ek : SL_NULL, .len = n, .u.items = items[i]};
      } else {
        rand_scalar(s, kind, &props[i].value, bytes[i][0]);
      }
    }
    assert_int_equal(sl_tx_create_node(tx, id * 3, ls, nl, props, np, NULL), 0);
  }
  for (uint64_t id = 1; id <= 40; id++) {
    sl_prop props[1];
    size_t np = tu_rand_below(s, 2);
    if (np) {
      props[0].key = "since";
      rand_scalar(s, rand_kind(s), &props[0].value, bytes[0][0]);
    }
    uint64_t a = 3 * (1 + tu_rand_below(s, nnodes)), b = 3 * (1 + tu_rand_below(s, nnodes));
    assert_int_equal(sl_tx_create_rel(tx, id * 2, tu_rand_below(s, 2) ? "KNOWS" : "\xc3\xa9", a, b, props, np, NULL), 0);
  }
  assert_int_equal(sl_tx_commit(tx, NULL), 0);
}



static void interchange_roundtrip(void **state) {
  (void)state;
  uint64_t seed = tu_seed("interchange_roundtrip");
  const char *root = tu_tmpdir("roundtrip");
  char *a = tu_path(root, "a"), *b = tu_path(root, "b"), *c = tu_path(root, "c");
  char *fa = tu_path(root, "a.jsonl"), *fb = tu_path(root, "b.jsonl");
  for (int round = 0; round < 5; round++) {
    sl_remove_tree(a);
    sl_remove_tree(b);
    sl_remove_tree(c);
    sl_store *st;
    assert_int_equal(sl_store_create(a, NULL), 0);
    assert_int_equal(sl_store_open(a, 0, &st), 0);
    random_graph(st, &seed);
    sl_store_close(st);

    char *ea = tu_export(a, NULL);
    tu_write_file(fa, ea);
    sl_import_result res;
    assert_int_equal(sl_import_jsonl(fa, b, NULL, &res), 0);
    assert_int_equal(res.nodes, 30);
    assert_int_equal(res.rels, 40);
    char *eb = tu_export(b, NULL);
    assert_string_equal(ea, eb);

    /* Small transactions give the same graph. */
    tu_write_file(fb, eb);
    assert_int_equal(sl_import_jsonl(fb, c, &(sl_import_options){.ops_per_tx = 7}, NULL), 0);
    char *ec = tu_export(c, NULL);
    assert_string_equal(ea, ec);
    free(ea);
    free(eb);
    free(ec);
  }
  free(a);
  free(b);
  free(c);
  free(fa);
  free(fb);
}

/* APOC's shape: ids from 0 as strings, labels unsorted, "label" as the type,
 * keys in any order, endpoint labels ignored. The ids are kept, 0 included
 * (Neo4j's ids start there). */
static void interchange_import_apoc(void **state) {
  (void)state;
  const char *root = tu_tmpdir("apoc");
  char *in = tu_path(root, "apoc.json"), *dir = tu_path(root, "store");
  tu_write_file(in,
             "{\"type\":\"node\",\"id\":\"0\",\"labels\":[\"User\",\"Admin\"],\"properties\":{\"name\":\"Adam\","
             "\"age\":42,\"male\":true,\"kids\":[\"Sam\",\"Anna\"],\"w\":1.0}}\n"
             "{\"type\":\"node\",\"id\":\"1\",\"labels\":[\"User\"],\"properties\":{\"name\":\"Jim\"}}\n"
             "\n"
             "{\"id\":\"0\",\"type\":\"relationship\",\"label\":\"KNOWS\",\"properties\":{\"since\":1993},"
             "\"start\":{\"id\":\"0\",\"labels\":[\"Wrong\"]},\"end\":{\"id\":\"1\",\"labels\":[\"User\"]}}\n");
  assert_int_equal(sl_import_jsonl(in, dir, NULL, NULL), 0);
  char *e = tu_export(dir, NULL);
  assert_string_equal(e,
                      "{\"type\":\"node\",\"id\":\"0\",\"labels\":[\"Admin\",\"User\"],\"properties\":{\"age\":42,"
                      "\"kids\":[\"Sam\",\"Anna\"],\"male\":true,\"name\":\"Adam\",\"w\":1.0}}\n"
                      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[\"User\"],\"properties\":{\"name\":\"Jim\"}}\n"
                      "{\"type\":\"relationship\",\"id\":\"0\",\"label\":\"KNOWS\",\"start\":{\"id\":\"0\","
                      "\"labels\":[\"Admin\",\"User\"]},\"end\":{\"id\":\"1\",\"labels\":[\"User\"]},"
                      "\"properties\":{\"since\":1993}}\n");
  free(e);
  free(in);
  free(dir);
}

/* APOC writes points as maps (crs by name, latitude/longitude or x/y,
 * null for a missing third coordinate) and temporal values as strings. */
static void interchange_import_apoc_points(void **state) {
  (void)state;
  const char *root = tu_tmpdir("apoc_points");
  char *in = tu_path(root, "apoc.json"), *dir = tu_path(root, "store");
  tu_write_file(in, "{\"type\":\"node\",\"id\":\"0\",\"labels\":[\"P\"],\"properties\":{"
                    "\"a\":{\"crs\":\"wgs-84\",\"latitude\":55.5,\"longitude\":12.25,\"height\":null},"
                    "\"b\":{\"crs\":\"WGS-84-3D\",\"latitude\":1,\"longitude\":2,\"height\":3},"
                    "\"c\":{\"crs\":\"cartesian\",\"x\":1,\"y\":2,\"z\":null},"
                    "\"d\":{\"x\":1,\"y\":2,\"z\":3},\"e\":{\"srid\":4326,\"x\":1,\"y\":2},"
                    "\"f\":[{\"x\":1,\"y\":2},{\"x\":3,\"y\":4}],\"born\":\"2015-07-21\"}}\n");
  assert_int_equal(sl_import_jsonl(in, dir, NULL, NULL), 0);
  char *e = tu_export(dir, NULL);
  assert_string_equal(e, "{\"type\":\"node\",\"id\":\"0\",\"labels\":[\"P\"],\"properties\":{"
                         "\"a\":{\"$point\":{\"srid\":4326,\"x\":12.25,\"y\":55.5}},"
                         "\"b\":{\"$point\":{\"srid\":4979,\"x\":2.0,\"y\":1.0,\"z\":3.0}},"
                         "\"born\":\"2015-07-21\","
                         "\"c\":{\"$point\":{\"srid\":7203,\"x\":1.0,\"y\":2.0}},"
                         "\"d\":{\"$point\":{\"srid\":9157,\"x\":1.0,\"y\":2.0,\"z\":3.0}},"
                         "\"e\":{\"$point\":{\"srid\":4326,\"x\":1.0,\"y\":2.0}},"
                         "\"f\":[{\"$point\":{\"srid\":7203,\"x\":1.0,\"y\":2.0}},"
                         "{\"$point\":{\"srid\":7203,\"x\":3.0,\"y\":4.0}}]}}\n");
  free(e);
  free(in);
  free(dir);
}

/* Bad input names the line and leaves no store behind. */
static void interchange_import_errors(void **state) {
  (void)state;
  static const char *const cases[] = {
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"p\":{\"crs\":\"wgs-84\",\"x\":1}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[]}\n{\"type\":\"node\",\"id\":\"1\",\"labels\":[]}\n",
      "{\"type\":\"node\",\"id\":\"0\",\"labels\":[]}\n{\"type\":\"node\",\"id\":\"0\",\"labels\":[]}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[]}\n{\"type\":\"node\",\"id\":\"x\",\"labels\":[]}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[]}\n{\"type\":\"relationship\",\"id\":\"1\",\"label\":\"T\","
      "\"start\":{\"id\":\"1\"},\"end\":{\"id\":\"2\"}}\n",
      "{\"type\":\"node\",\"id\":\"a\",\"labels\":[]}\n{\"type\":\"relationship\",\"id\":\"1\",\"label\":\"T\","
      "\"start\":{\"id\":\"a\"},\"end\":{\"id\":\"b\"}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[]}\n{\"type\":\"relationship\",\"id\":\"1\",\"label\":\"T\","
      "\"start\":{\"id\":\"1\"},\"end\":{\"id\":\"1\"}}\n{\"type\":\"node\",\"id\":\"2\",\"labels\":[]}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[]}\n{\"type\":\"thing\"}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"big\":18446744073709551616}}\n",
      /* every kind's refusals */
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"d\":{\"$date\":\"2023-02-29\"}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"d\":{\"$datetime\":\"2023-02-01T10:00[Mars/Olympus]\"}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"d\":{\"$duration\":\"P999999999999Y\"}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"p\":{\"$point\":{\"x\":1,\"y\":2}}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"p\":{\"$point\":{\"srid\":1,\"x\":1,\"y\":2}}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"p\":{\"crs\":\"mars\",\"x\":1,\"y\":2}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"p\":{\"crs\":\"wgs-84-3d\",\"x\":1,\"y\":2}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"m\":{\"name\":\"x\"}}}\n",
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"l\":[{\"$date\":\"2020-01-01\"},{\"$localdatetime\":\"2020-01-01T00:00\"}]}}\n",
  };
  const char *root = tu_tmpdir("import_errors");
  char *in = tu_path(root, "in.jsonl"), *dir = tu_path(root, "store");
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    tu_write_file(in, cases[i]);
    if (sl_import_jsonl(in, dir, NULL, NULL) == 0) fail_msg("accepted: %s", cases[i]);
    if (access(dir, F_OK) == 0) fail_msg("left %s behind for: %s", dir, cases[i]);
  }
  free(in);
  free(dir);
}

int main(void) {
  sl_set_progname("test_interchange");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(interchange_double_table),   cmocka_unit_test(interchange_double_roundtrip),
      cmocka_unit_test(interchange_string_escape),  cmocka_unit_test(interchange_base64),
      cmocka_unit_test(interchange_mutation_lines), cmocka_unit_test(interchange_roundtrip),
      cmocka_unit_test(interchange_import_apoc),    cmocka_unit_test(interchange_import_errors),
      cmocka_unit_test(interchange_import_apoc_points),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
