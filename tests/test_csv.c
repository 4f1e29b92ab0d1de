/*
 * interchange, Neo4j forms: neo4j-admin CSV import (header parsing, every
 * typed column, arrays, quoting, multi-line fields, empty-field rules, id
 * spaces, each refusal with its FILE:LINE and column, the skip options),
 * CSV export (file splitting, array delimiter choice, refusals, the round
 * trip over every value kind) and the cypher-shell script.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interchange_int.h"
#include "sl_base.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------ */

static char *read_text(const char *path) {
  uint8_t *buf;
  size_t len;
  assert_int_equal(sl_read_file(path, 1 << 24, &buf, &len), 0);
  char *s = malloc(len + 1);
  memcpy(s, buf, len);
  s[len] = 0;
  free(buf);
  return s;
}

/* One scratch directory per test: root/nodes.csv, root/rels.csv, root/store. */
typedef struct fixture {
  char *root, *nodes, *rels, *store;
  char *err;   /* captured stderr of the last run */
  char *graph; /* canonical export after a successful run */
  sl_csv_result res;
} fixture;

static void fx_init(fixture *fx, const char *name) {
  const char *root = tu_tmpdir(name);
  fx->root = strdup(root);
  fx->nodes = tu_path(root, "nodes.csv");
  fx->rels = tu_path(root, "rels.csv");
  fx->store = tu_path(root, "store");
  fx->err = fx->graph = NULL;
}

static void fx_free(fixture *fx) {
  free(fx->root);
  free(fx->nodes);
  free(fx->rels);
  free(fx->store);
  free(fx->err);
  free(fx->graph);
}

/* Import nodes_text (and rels_text, if any) with labels/type prefixes. */
static int fx_run_with(fixture *fx, const char *nodes_text, const char *label, const char *rels_text, const char *type,
                       const sl_csv_options *o) {
  free(fx->err);
  free(fx->graph);
  fx->err = fx->graph = NULL;
  sl_remove_tree(fx->store);
  tu_write_file(fx->nodes, nodes_text);
  const char *nf[] = {fx->nodes}, *rf[] = {fx->rels}, *labels[] = {label};
  sl_csv_source ns = {.files = nf, .nfiles = 1, .labels = labels, .nlabels = label ? 1 : 0};
  sl_csv_source rs = {.files = rf, .nfiles = 1, .type = type};
  if (rels_text) tu_write_file(fx->rels, rels_text);
  tu_capture_begin();
  int rc = sl_import_csv(&ns, 1, &rs, rels_text ? 1 : 0, fx->store, o, &fx->res);
  fx->err = tu_capture_end();
  if (rc == 0)
    fx->graph = tu_export(fx->store, NULL);
  else if (access(fx->store, F_OK) == 0)
    fail_msg("a failed import left %s behind", fx->store);
  return rc;
}

static int fx_run(fixture *fx, const char *nodes_text, const char *rels_text, const sl_csv_options *o) {
  return fx_run_with(fx, nodes_text, NULL, rels_text, NULL, o);
}

static void expect_graph(fixture *fx, const char *want) {
  if (!fx->graph || strcmp(fx->graph, want))
    fail_msg("graph:\n%s\nwant:\n%s\nstderr: %s", fx->graph ? fx->graph : "(import failed)", want, fx->err);
}

/* ---- headers and typed columns ---------------------------------------------------- */
static void csv_typed_columns(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_typed");
  const char *text =
      "id:ID,:LABEL,i:int,l:LONG,s:short,b:byte,f:float,d:Double,t:boolean,c:char,str:string,plain,a:b:int,"
      ":IGNORE,,skip:IGNORE\n"
      "n1,A;B,-2147483648,-9223372036854775808,32767,-128,1.5,1e+300,TRUE,x,hello,world,7,gone,gone,gone\n"
      "n2,,2147483647,9223372036854775807,-32768,127, 2.5f ,NaN,false,\xc3\xa9,,,,,,\n"
      "n3,;;C;,0, 42 ,0,0,-Infinity,-0.0,False,\xe2\x82\xac,\" spaced \",,,,,\n";
  assert_int_equal(fx_run(&fx, text, NULL, NULL), 0);
  expect_graph(&fx, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[\"A\",\"B\"],\"properties\":{\"a:b\":7,\"b\":-128,"
                    "\"c\":\"x\",\"d\":1e+300,\"f\":1.5,\"i\":-2147483648,\"id\":\"n1\",\"l\":-9223372036854775808,"
                    "\"plain\":\"world\",\"s\":32767,\"str\":\"hello\",\"t\":true}}\n"
                    "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"b\":127,\"c\":\"\xc3\xa9\","
                    "\"d\":{\"$double\":\"NaN\"},\"f\":2.5,\"i\":2147483647,\"id\":\"n2\",\"l\":9223372036854775807,"
                    "\"s\":-32768,\"t\":false}}\n"
                    "{\"type\":\"node\",\"id\":\"3\",\"labels\":[\"C\"],\"properties\":{\"b\":0,\"c\":\"\xe2\x82\xac\","
                    "\"d\":-0.0,\"f\":{\"$double\":\"-Infinity\"},\"i\":0,\"id\":\"n3\",\"l\":42,\"s\":0,"
                    "\"str\":\" spaced \",\"t\":false}}\n");
  fx_free(&fx);
}

static void csv_array_columns(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_arrays");
  const char *text = "i:int[],l:long[],b:byte[],d:double[],t:boolean[],c:char[],s:string[],u\n"
                     "1;-2,9223372036854775807,0;-1;127;-128,1.0;NaN;Infinity,true;FALSE,a;\xc3\xa9,x;;y,1\n"
                     "\"\",\"\",\"\",\"\",\"\",\"\",\"\",2\n"
                     ",,,,,,,3\n"
                     "7,8,5,0.5,true,z,\"a,b\",4\n";
  assert_int_equal(fx_run(&fx, text, NULL, NULL), 0);
  expect_graph(&fx,
               "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"b\":{\"$bytes\":\"AP9/gA==\"},"
               "\"c\":[\"a\",\"\xc3\xa9\"],\"d\":[1.0,{\"$double\":\"NaN\"},{\"$double\":\"Infinity\"}],\"i\":[1,-2],"
               "\"l\":[9223372036854775807],\"s\":[\"x\",\"\",\"y\"],\"t\":[true,false],\"u\":\"1\"}}\n"
               "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"b\":{\"$bytes\":\"\"},\"c\":[],"
               "\"d\":[],\"i\":[],\"l\":[],\"s\":[],\"t\":[],\"u\":\"2\"}}\n"
               "{\"type\":\"node\",\"id\":\"3\",\"labels\":[],\"properties\":{\"u\":\"3\"}}\n"
               "{\"type\":\"node\",\"id\":\"4\",\"labels\":[],\"properties\":{\"b\":{\"$bytes\":\"BQ==\"},"
               "\"c\":[\"z\"],\"d\":[0.5],\"i\":[7],\"l\":[8],\"s\":[\"a,b\"],\"t\":[true],\"u\":\"4\"}}\n");

  /* Another array delimiter and field delimiter, a separate header file. */
  sl_csv_options o = {.delimiter = '|', .array_delimiter = ','};
  const char *hdr = "h:long[]|name\n";
  char *hpath = tu_path(fx.root, "header.csv");
  tu_write_file(hpath, hdr);
  tu_write_file(fx.nodes, "1,2,3|a,b\n\n4|\"q|\"\"\"\n");
  const char *files[] = {hpath, fx.nodes};
  sl_csv_source src = {.files = files, .nfiles = 2};
  sl_remove_tree(fx.store);
  assert_int_equal(sl_import_csv(&src, 1, NULL, 0, fx.store, &o, NULL), 0);
  char *g = tu_export(fx.store, NULL);
  assert_string_equal(
      g, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"h\":[1,2,3],\"name\":\"a,b\"}}\n"
         "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"h\":[4],\"name\":\"q|\\\"\"}}\n");
  free(g);
  free(hpath);
  fx_free(&fx);
}

/* Quotes, line ends, multi-line fields, BOM; the line numbers that follow. */
static void csv_quoting(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_quoting");
  sl_csv_options ml = {.multiline_fields = true};
  const char *text = "\xef\xbb\xbfname,n:int\r\n"
                     "\"a \"\"quoted\"\", with comma\",1\r\n"
                     "\r\n"
                     "\"two\nlines\",2\n"
                     "\"cr\r\nlf\",3\r"
                     "ab\"c,4\n"
                     "\"\",5\n";
  assert_int_equal(fx_run(&fx, text, NULL, &ml), 0);
  expect_graph(
      &fx, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"n\":1,\"name\":\"a \\\"quoted\\\", "
           "with comma\"}}\n"
           "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"n\":2,\"name\":\"two\\u000alines\"}}\n"
           "{\"type\":\"node\",\"id\":\"3\",\"labels\":[],\"properties\":{\"n\":3,\"name\":\"cr\\u000d\\u000alf\"}}\n"
           "{\"type\":\"node\",\"id\":\"4\",\"labels\":[],\"properties\":{\"n\":4,\"name\":\"ab\\\"c\"}}\n"
           "{\"type\":\"node\",\"id\":\"5\",\"labels\":[],\"properties\":{\"n\":5,\"name\":\"\"}}\n");

  /* Line numbers count physical lines (\r\n once, a lone \r too): the bad row starts on line 10. */
  char bad[512];
  snprintf(bad, sizeof bad, "%sx,oops\n", text);
  assert_int_not_equal(fx_run(&fx, bad, NULL, &ml), 0);
  if (!strstr(fx.err, "nodes.csv:10: column 2 (n:int): not an integer: \"oops\"")) fail_msg("stderr: %s", fx.err);

  /* Without --multiline-fields a line break inside quotes is refused where the quote opened. */
  assert_int_not_equal(fx_run(&fx, "name\nok\n\"two\nlines\"\n", NULL, NULL), 0);
  if (!strstr(fx.err, "nodes.csv:3: a quoted field spans lines")) fail_msg("stderr: %s", fx.err);
  fx_free(&fx);
}

/* Any one Unicode character as delimiter, quote and array delimiter (neo4j-admin takes
 * them so): multi-byte ones read as the ASCII ones read the same rows, also where one is
 * cut by the end of the reader's 64 KiB buffer. */
#define EURO "\xe2\x82\xac"       /* U+20AC, the delimiter */
#define OUML "\xc3\x96"            /* U+00D6 'Ö', the quote */
#define SMILE "\xf0\x9f\x98\x80" /* U+1F600, the array delimiter */
static void csv_unicode_separators(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_unicode");
  size_t cap = 1 << 20, nu = 0, na = 0;
  char *u = malloc(cap), *a = malloc(cap);
#define BOTH(U, A) (nu += (size_t)snprintf(u + nu, cap - nu, "%s", U), na += (size_t)snprintf(a + na, cap - na, "%s", A))
  BOTH("id:ID" EURO "name" EURO "tags:string[]" EURO ":LABEL" EURO "c:char\n",
       "id:ID,name,tags:string[],:LABEL,c:char\n");
  /* the delimiter and a doubled quote inside quotes; "x;é;;y"; two labels; a char */
  BOTH("n1" EURO OUML "Ann" EURO " \"q\" " OUML OUML OUML EURO "x" SMILE "\xc3\xa9" SMILE SMILE "y" EURO "A" SMILE "B" EURO
           OUML OUML OUML OUML "\n", /* the quote as a char: quoted, doubled */
       "n1,\"Ann" EURO " \"\"q\"\" " OUML "\",x;\xc3\xa9;;y,A;B," OUML "\n");
  BOTH("n2" EURO EURO SMILE EURO "C" EURO OUML OUML "\n", "n2,,;,C,\"\"\n"); /* quoted empty: no char property */
  /* Rows up to the buffer's end, then one whose delimiter starts 1 byte before it, then more. */
  for (int i = 3; nu < 65400; i++) {
    char ru[96], ra[96];
    snprintf(ru, sizeof ru, "n%d" EURO "p%d" EURO "t" SMILE "u" EURO "L" EURO "z\n", i, i);
    snprintf(ra, sizeof ra, "n%d,p%d,t;u,L,z\n", i, i);
    BOTH(ru, ra);
  }
  char pad[256];
  size_t k = 65535 - (nu + strlen("nEDGE" EURO));
  assert_true(k > 0 && k < sizeof pad);
  memset(pad, 'p', k);
  pad[k] = 0;
  nu += (size_t)snprintf(u + nu, cap - nu, "nEDGE" EURO "%s" EURO OUML "x" SMILE "y" OUML EURO "L" SMILE "M" EURO "z\n", pad);
  na += (size_t)snprintf(a + na, cap - na, "nEDGE,%s,\"x;y\",L;M,z\n", pad);
  assert_memory_equal(u + 65535, EURO, 3);
  for (int i = 0; i < 100; i++) {
    char ru[96], ra[96];
    snprintf(ru, sizeof ru, "m%d" EURO OUML "q" EURO "%d" OUML EURO SMILE EURO EURO "\n", i, i);
    snprintf(ra, sizeof ra, "m%d,\"q" EURO "%d\",;,,\n", i, i);
    BOTH(ru, ra);
  }
#undef BOTH
  assert_int_equal(fx_run(&fx, a, NULL, NULL), 0);
  char *want = fx.graph;
  fx.graph = NULL;
  assert_non_null(strstr(want, "\"name\":\"Ann" EURO " \\\"q\\\" " OUML "\""));
  sl_csv_options o = {.delimiter = 0x20ac, .quote = 0xd6, .array_delimiter = 0x1f600};
  if (fx_run(&fx, u, NULL, &o)) fail_msg("stderr: %s", fx.err);
  if (strcmp(fx.graph, want)) fail_msg("multi-byte separators read otherwise than ASCII ones; stderr: %s", fx.err);

  /* Not one character: refused, nothing made. */
  o.delimiter = 0xd800;
  assert_int_equal(fx_run(&fx, u, NULL, &o), SL_EINVAL);
  free(want);
  free(u);
  free(a);
  fx_free(&fx);
}

/* Unquoted empty = no property; quoted empty = "", [] or empty bytes; short rows. */
static void csv_empty_fields(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_empty");
  const char *text = "s,i:int,a:string[],c:char,k\n"
                     ",,,,\n"
                     "\"\",\"\",\"\",\"\",\"\"\n"
                     "\"  x \"\n";
  assert_int_equal(fx_run(&fx, text, NULL, NULL), 0);
  expect_graph(&fx, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{}}\n"
                    "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"a\":[],\"k\":\"\",\"s\":\"\"}}\n"
                    "{\"type\":\"node\",\"id\":\"3\",\"labels\":[],\"properties\":{\"s\":\"  x \"}}\n");
  sl_csv_options o = {.ignore_empty_strings = true, .trim_strings = true};
  assert_int_equal(fx_run(&fx, text, NULL, &o), 0);
  expect_graph(&fx, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{}}\n"
                    "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"a\":[]}}\n"
                    "{\"type\":\"node\",\"id\":\"3\",\"labels\":[],\"properties\":{\"s\":\"x\"}}\n");
  fx_free(&fx);
}

/* Id spaces (LDBC's ids repeat across kinds), integer ids, TYPE= and :TYPE. */
static void csv_id_spaces(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_ids");
  char *forums = tu_path(fx.root, "forums.csv"), *members = tu_path(fx.root, "members.csv");
  tu_write_file(fx.nodes, "id:ID(Person)|name\n1|Ann\n2|Bo\n");
  tu_write_file(forums, "fid:ID(Forum)|title\n1|Skiing\n007|Cinema\n");
  tu_write_file(fx.rels, ":START_ID(Person)|:END_ID(Person)\n1|2\n");
  tu_write_file(members, ":START_ID(Forum)|:END_ID(Person)|:TYPE|since:int\n7|1||2010\n1|2|MODERATOR|2011\n");
  const char *p[] = {fx.nodes}, *f[] = {forums}, *k[] = {fx.rels}, *m[] = {members};
  const char *person[] = {"Person"}, *forum[] = {"Forum", "Group"};
  sl_csv_source ns[] = {{.files = p, .nfiles = 1, .labels = person, .nlabels = 1},
                        {.files = f, .nfiles = 1, .labels = forum, .nlabels = 2}};
  sl_csv_source rs[] = {{.files = k, .nfiles = 1, .type = "KNOWS"}, {.files = m, .nfiles = 1, .type = "HAS_MEMBER"}};
  sl_csv_options o = {.delimiter = '|', .id_type = SL_CSV_ID_INTEGER};
  sl_csv_result res;
  assert_int_equal(sl_import_csv(ns, 2, rs, 2, fx.store, &o, &res), 0);
  assert_int_equal(res.nodes, 4);
  assert_int_equal(res.rels, 3);
  char *g = tu_export(fx.store, NULL);
  assert_string_equal(
      g,
      "{\"type\":\"node\",\"id\":\"1\",\"labels\":[\"Person\"],\"properties\":{\"id\":1,\"name\":\"Ann\"}}\n"
      "{\"type\":\"node\",\"id\":\"2\",\"labels\":[\"Person\"],\"properties\":{\"id\":2,\"name\":\"Bo\"}}\n"
      "{\"type\":\"node\",\"id\":\"3\",\"labels\":[\"Forum\",\"Group\"],\"properties\":{\"fid\":1,\"title\":\"Skiing\"}"
      "}\n"
      "{\"type\":\"node\",\"id\":\"4\",\"labels\":[\"Forum\",\"Group\"],\"properties\":{\"fid\":7,\"title\":\"Cinema\"}"
      "}\n"
      "{\"type\":\"relationship\",\"id\":\"1\",\"label\":\"KNOWS\",\"start\":{\"id\":\"1\",\"labels\":[\"Person\"]},"
      "\"end\":{\"id\":\"2\",\"labels\":[\"Person\"]},\"properties\":{}}\n"
      "{\"type\":\"relationship\",\"id\":\"2\",\"label\":\"HAS_MEMBER\",\"start\":{\"id\":\"4\",\"labels\":[\"Forum\","
      "\"Group\"]},\"end\":{\"id\":\"1\",\"labels\":[\"Person\"]},\"properties\":{\"since\":2010}}\n"
      "{\"type\":\"relationship\",\"id\":\"3\",\"label\":\"MODERATOR\",\"start\":{\"id\":\"3\",\"labels\":[\"Forum\","
      "\"Group\"]},\"end\":{\"id\":\"2\",\"labels\":[\"Person\"]},\"properties\":{\"since\":2011}}\n");
  free(g);

  /* String ids: "007" and "7" differ; an unnamed :ID keeps no property; no id at all is fine. */
  assert_int_equal(fx_run(&fx, ":ID,n\n7,a\n007,b\n,c\n", ":START_ID,:END_ID,:TYPE\n007,7,T\n", NULL), 0);
  expect_graph(&fx, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"n\":\"a\"}}\n"
                    "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"n\":\"b\"}}\n"
                    "{\"type\":\"node\",\"id\":\"3\",\"labels\":[],\"properties\":{\"n\":\"c\"}}\n"
                    "{\"type\":\"relationship\",\"id\":\"1\",\"label\":\"T\",\"start\":{\"id\":\"2\",\"labels\":[]},"
                    "\"end\":{\"id\":\"1\",\"labels\":[]},\"properties\":{}}\n");
  free(forums);
  free(members);
  fx_free(&fx);
}

/* ---- refusals ---------------------------------------------------------------------- */
static void csv_refusals(void **state) {
  (void)state;
  static const struct {
    const char *nodes, *rels;
    bool multiline;
    const char *want;
  } cases[] = {
      {"n,age:int\na,1\nb,x\n", NULL, false, "nodes.csv:3: column 2 (age:int): not an integer: \"x\""},
      {"age:byte\n128\n", NULL, false, "nodes.csv:2: column 1 (age:byte): 128 is out of range for byte"},
      {"age:short\n-32769\n", NULL, false, "nodes.csv:2: column 1 (age:short): -32769 is out of range for short"},
      {"age:int\n2147483648\n", NULL, false, "nodes.csv:2: column 1 (age:int): 2147483648 is out of range for int"},
      {"age:long\n9223372036854775808\n", NULL, false, "nodes.csv:2: column 1 (age:long): not an integer"},
      {"d:double\n1.5.2\n", NULL, false, "nodes.csv:2: column 1 (d:double): not a number: \"1.5.2\""},
      {"d:double\n0x1p3\n", NULL, false, "nodes.csv:2: column 1 (d:double): not a number"},
      {"b:boolean\nyes\n", NULL, false, "nodes.csv:2: column 1 (b:boolean): not a boolean (true or false): \"yes\""},
      {"c:char\nab\n", NULL, false, "nodes.csv:2: column 1 (c:char): not one character: \"ab\""},
      {"l:int[]\n1;;2\n", NULL, false, "nodes.csv:2: column 1 (l:int[]): element 2: not an integer: \"\""},
      {"b:byte[]\n1;300\n", NULL, false, "nodes.csv:2: column 1 (b:byte[]): element 2: 300 is out of range for byte"},
      {"p:point\n{x:1}\n", NULL, false, "nodes.csv:2: column 1 (p:point): point needs x and y"},
      {"p:point\n\"{x:1,y:2,crs:'mars'}\"\n", NULL, false, "nodes.csv:2: column 1 (p:point): point: unknown crs 'mars'"},
      {"p:point\n\"{x:1,y:2,z:3,crs:'wgs-84'}\"\n", NULL, false,
       "nodes.csv:2: column 1 (p:point): point: crs wgs-84 is 2D but a third coordinate is given"},
      {"p:point\n\"{x:1,y:2,w:3}\"\n", NULL, false, "nodes.csv:2: column 1 (p:point): point: unknown key 'w'"},
      {"p:point\n1;2\n", NULL, false, "nodes.csv:2: column 1 (p:point): not a point such as {x:1.5, y:2"},
      {"x,d:DateTime[]\n1,2020-01-01;2023-02-29\n", NULL, false,
       "nodes.csv:2: column 2 (d:DateTime[]): element 2: '2023-02-29' is not a datetime: February 2023 has 28 days"},
      {"d:date\n2023-02-29\n", NULL, false, "nodes.csv:2: column 1 (d:date): '2023-02-29' is not a date: February 2023 has 28 days"},
      {"t:time\n12:00[Europe/Paris]\n", NULL, false, "nodes.csv:2: column 1 (t:time): '12:00[Europe/Paris]' is not a time"},
      {"d:datetime\n2020-01-01T10:00[Mars/Olympus]\n", NULL, false, "unknown time zone 'Mars/Olympus'"},
      {"d:duration\nP999999999999Y\n", NULL, false, "nodes.csv:2: column 1 (d:duration): 'P999999999999Y' is not a duration: out of range"},
      {"d:localdatetime\nyesterday\n", NULL, false, "column 1 (d:localdatetime): 'yesterday' is not a local datetime (e.g. 2015-07-21T21:40:32)"},
      {"x:float32\n", NULL, false, "nodes.csv:1: column 1 (x:float32): unknown type 'float32'"},
      {"n:string{crs:WGS-84}\n", NULL, false,
       "nodes.csv:1: column 1 (n:string{crs:WGS-84}): header option 'crs' is not supported here"},
      {"p:point{crs:mars}\n", NULL, false, "nodes.csv:1: column 1 (p:point{crs:mars}): {crs:mars}: unknown crs"},
      {"p:point{crs:WGS-84\n", NULL, false, "nodes.csv:1: column 1 (p:point{crs:WGS-84): '{' without a closing '}'"},
      {"t:datetime{timezone:Mars/Olympus}\n", NULL, false,
       "column 1 (t:datetime{timezone:Mars/Olympus}): {timezone:Mars/Olympus}: unknown time zone 'Mars/Olympus'"},
      {"p:point{crs:WGS-84}\n\"{x:1,y:2,z:3}\"\n", NULL, false,
       "nodes.csv:2: column 1 (p:point{crs:WGS-84}): point: crs wgs-84 is 2D but a third coordinate is given"},
      {"a,b,a:int\n", NULL, false, "nodes.csv:1: column 3 (a:int): property 'a' is also column 1"},
      {":ID,:ID(G)\n", NULL, false, "nodes.csv:1: column 2 (:ID(G)): a second :ID column"},
      {":int\n", NULL, false, "nodes.csv:1: column 1 (:int): a property column needs a name"},
      {"x(G):int\n", NULL, false, "nodes.csv:1: column 1 (x(G):int): an id space (...) belongs to"},
      {":START_ID\n", NULL, false, "nodes.csv:1: column 1 (:START_ID): a node file has no START_ID column"},
      {"", NULL, false, "nodes.csv: the file is empty"},
      {"n\n\"open\n", NULL, true, "nodes.csv:2: missing end quote"},
      {"n\nok\n\"a\"b\n", NULL, false, "nodes.csv:3: characters after a closing quote"},
      {"n\na,b\n", NULL, false, "nodes.csv:2: 2 fields, but the header has 1 columns"},
      {":ID\n1\n1\n", NULL, false, "nodes.csv:3: node id '1' appears twice"},
      {":ID(P)\n1\n", ":START_ID(P),:END_ID(P),:TYPE\n1,2,T\n", false,
       "rels.csv:2: end node '2' in id space 'P' is not in the node files"},
      {":ID\n1\n", ":START_ID,:END_ID\n1,1\n", false, "rels.csv:2: relationship without a type"},
      {":ID\n1\n", ":START_ID(Nope),:END_ID\n", false,
       "rels.csv:1: column 1 (:START_ID(Nope)): id space 'Nope' is not defined by any node file"},
      {":ID\n1\n", ":END_ID,:TYPE\n", false, "rels.csv:1: a relationship header needs :START_ID and :END_ID"},
      {":ID\n1\n", ":START_ID,:END_ID,:LABEL\n", false,
       "rels.csv:1: column 3 (:LABEL): a relationship file has no :LABEL"},
      {"s\n\"a\"\n", NULL, false, NULL}, /* control: accepted */
  };
  fixture fx;
  fx_init(&fx, "csv_refusals");
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    sl_csv_options o = {.multiline_fields = cases[i].multiline};
    int rc = fx_run(&fx, cases[i].nodes, cases[i].rels, &o);
    if (!cases[i].want) {
      if (rc) fail_msg("case %zu refused: %s", i, fx.err);
      continue;
    }
    if (rc == 0) fail_msg("case %zu accepted, want \"%s\"", i, cases[i].want);
    if (!strstr(fx.err, cases[i].want))
      fail_msg("case %zu: stderr \"%s\", want \"...%s...\"", i, fx.err, cases[i].want);
  }
  /* A file that does not exist, named. */
  const char *nf[] = {"/nonexistent/nodes.csv"};
  sl_csv_source ns = {.files = nf, .nfiles = 1};
  sl_remove_tree(fx.store);
  tu_capture_begin();
  int rc = sl_import_csv(&ns, 1, NULL, 0, fx.store, NULL, NULL);
  char *err = tu_capture_end();
  assert_int_equal(rc, -ENOENT);
  if (!strstr(err, "/nonexistent/nodes.csv: cannot open")) fail_msg("stderr: %s", err);
  free(err);
  fx_free(&fx);
}

static void csv_skip_options(void **state) {
  (void)state;
  fixture fx;
  fx_init(&fx, "csv_skip");
  sl_csv_options o = {.skip_duplicate_nodes = true, .skip_bad_relationships = true, .ignore_extra_columns = true};
  assert_int_equal(
      fx_run(&fx, ":ID,n\n1,a\n1,dup,extra\n2,b\n", ":START_ID,:END_ID,:TYPE\n1,2,\n1,9,T\n,2,T\n2,1,T,extra\n", &o),
      0);
  assert_int_equal(fx.res.nodes, 2);
  assert_int_equal(fx.res.skipped_nodes, 1);
  assert_int_equal(fx.res.rels, 1);
  assert_int_equal(fx.res.skipped_rels, 3);
  expect_graph(&fx, "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"n\":\"a\"}}\n"
                    "{\"type\":\"node\",\"id\":\"2\",\"labels\":[],\"properties\":{\"n\":\"b\"}}\n"
                    "{\"type\":\"relationship\",\"id\":\"1\",\"label\":\"T\",\"start\":{\"id\":\"2\",\"labels\":[]},"
                    "\"end\":{\"id\":\"1\",\"labels\":[]},\"properties\":{}}\n");
  if (!strstr(fx.err, "nodes.csv:3: skipped: node id '1' appears twice") ||
      !strstr(fx.err, "rels.csv:2: skipped: relationship without a type") ||
      !strstr(fx.err, "rels.csv:3: skipped: end node '9' is not in the node files") ||
      !strstr(fx.err, "rels.csv:4: skipped: start node (none given)"))
    fail_msg("stderr: %s", fx.err);
  /* The type given before the files serves rows without one. */
  assert_int_equal(fx_run_with(&fx, ":ID\n1\n", "L", ":START_ID,:END_ID,:TYPE\n1,1,\n1,1,OWN\n", "DEFAULT", NULL), 0);
  if (!strstr(fx.graph, "\"label\":\"DEFAULT\"") || !strstr(fx.graph, "\"label\":\"OWN\"") ||
      !strstr(fx.graph, "\"labels\":[\"L\"]"))
    fail_msg("graph: %s", fx.graph);
  fx_free(&fx);
}

/* ---- export ----------------------------------------------------------------------------- */
static sl_store *new_store(const char *dir) {
  sl_store *st;
  sl_remove_tree(dir);
  assert_int_equal(sl_store_create(dir, NULL), 0);
  assert_int_equal(sl_store_open(dir, 0, &st), 0);
  return st;
}

static int export_csv_dir(const char *store, const char *dir, char **err) {
  sl_store *st;
  sl_view *v;
  assert_int_equal(sl_store_open(store, SL_OPEN_RDONLY, &st), 0);
  assert_int_equal(sl_view_begin(st, &v), 0);
  tu_capture_begin();
  int rc = sl_export_csv(v, dir, NULL, NULL, NULL);
  char *e = tu_capture_end();
  sl_view_end(v);
  sl_store_close(st);
  if (err)
    *err = e;
  else
    free(e);
  return rc;
}

/* Import DIR/import.args as the CLI would (one option per line). */
static int import_args(const char *dir, const char *store) {
  char *path = tu_path(dir, "import.args"), *text = read_text(path);
  sl_csv_source src[2][256];
  size_t n[2] = {0, 0};
  char *files[512];
  size_t nfiles = 0;
  sl_csv_options o = {0};
  for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int k = !strncmp(line, "--nodes=", 8) ? 0 : !strncmp(line, "--relationships=", 16) ? 1 : -1;
    if (k >= 0) {
      assert_true(n[k] < 256);
      files[nfiles] = tu_path(dir, strchr(line, '=') + 1);
      src[k][n[k]++] = (sl_csv_source){.files = (const char *const *)&files[nfiles++], .nfiles = 1};
    } else if (!strcmp(line, "--id-type=integer")) {
      o.id_type = SL_CSV_ID_INTEGER;
    } else if (!strcmp(line, "--multiline-fields=true")) {
      o.multiline_fields = true;
    } else if (!strncmp(line, "--array-delimiter=", 18)) {
      const char *c = line + 18;
      o.array_delimiter = !strcmp(c, "TAB") ? '\t' : !strncmp(c, "U+", 2) ? (char)strtol(c + 2, NULL, 16) : c[0];
    } else {
      fail_msg("unexpected line in import.args: %s", line);
    }
  }
  sl_remove_tree(store);
  int rc = sl_import_csv(src[0], n[0], src[1], n[1], store, &o, NULL);
  for (size_t i = 0; i < nfiles; i++) free(files[i]);
  free(text);
  free(path);
  return rc;
}

/* Every node and relationship as text without ids (endpoints by their
 * node's text), sorted: equal for graphs equal but for ids. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *graph_shape(const char *dir) {
  sl_store *st;
  sl_view *v;
  sl__idvec nodes = {0}, rels = {0};
  assert_int_equal(sl_store_open(dir, SL_OPEN_RDONLY, &st), 0);
  assert_int_equal(sl_view_begin(st, &v), 0);
  assert_int_equal(sl_view_all_nodes(v, sl__idvec_push, &nodes), 0);
  assert_int_equal(sl_view_all_rels(v, sl__idvec_push, &rels), 0);
  char **lines = calloc(nodes.n + rels.n + 1, sizeof *lines);
  char **node_text = calloc(nodes.n + 1, sizeof *node_text);
  uint64_t max_id = 0;
  for (size_t i = 0; i < nodes.n; i++) max_id = SL_MAX(max_id, nodes.v[i]);
  for (size_t i = 0; i < nodes.n; i++) {
    sl_node n;
    sl__jbuf b = {0};
    assert_int_equal(sl_view_node(v, nodes.v[i], &n), 0);
    for (size_t l = 0; l < n.nlabels; l++) sl__jbuf_str(&b, n.labels[l], strlen(n.labels[l]));
    sl__jbuf_props(&b, n.props, n.nprops);
    sl__jbuf_putc(&b, 0);
    node_text[i] = b.p;
    lines[i] = strdup(b.p);
  }
  for (size_t i = 0; i < rels.n; i++) {
    sl_rel r;
    sl__jbuf b = {0};
    assert_int_equal(sl_view_rel(v, rels.v[i], &r), 0);
    sl__jbuf_puts(&b, "rel ");
    sl__jbuf_str(&b, r.type, strlen(r.type));
    sl__jbuf_props(&b, r.props, r.nprops);
    for (size_t k = 0; k < nodes.n; k++)
      if (nodes.v[k] == r.start) sl__jbuf_puts(&b, node_text[k]);
    sl__jbuf_puts(&b, " -> ");
    for (size_t k = 0; k < nodes.n; k++)
      if (nodes.v[k] == r.end) sl__jbuf_puts(&b, node_text[k]);
    sl__jbuf_putc(&b, 0);
    lines[nodes.n + i] = b.p;
  }
  sl_view_end(v);
  sl_store_close(st);
  size_t total = nodes.n + rels.n;
  qsort(lines, total, sizeof *lines, cmp_str);
  sl__jbuf out = {0};
  for (size_t i = 0; i < total; i++) {
    sl__jbuf_puts(&out, lines[i]);
    sl__jbuf_putc(&out, '\n');
    free(lines[i]);
  }
  sl__jbuf_putc(&out, 0);
  for (size_t i = 0; i < nodes.n; i++) free(node_text[i]);
  free(node_text);
  free(lines);
  free(nodes.v);
  free(rels.v);
  return out.p;
}

static const char *const words[] = {"",
                                    "a",
                                    "Ann",
                                    "\xc3\xa9t\xc3\xa9",
                                    "\xe2\x82\xac\xf0\x9f\x98\x80",
                                    "quote\"back\\slash",
                                    "tab\tnl\ncr\r\x01\x1f\x7f",
                                    "comma,semi;pipe|",
                                    " spaced ",
                                    "\"",
                                    "NaN"};

/* A random value of any kind the CSV form can hold. */
static void rand_value(uint64_t *s, sl_value *v, sl_value *items, uint8_t *bytes) {
  static const double doubles[] = {0.0, -0.0, 1.0, 0.1, 1e300, 5e-324, -2.5e-7, 1e21, NAN, INFINITY, -INFINITY};
  static const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1984};
  sl_kind kind = (sl_kind)(1 + tu_rand_below(s, 6));
  bool list = kind == SL_LIST;
  if (list) kind = (sl_kind)(1 + tu_rand_below(s, 4)); /* bool, int, double, string */
  size_t n = list ? tu_rand_below(s, 4) : 1;
  for (size_t i = 0; i < n; i++) {
    sl_value *x = list ? &items[i] : v;
    *x = (sl_value){.kind = kind};
    switch (kind) {
    case SL_BOOL: x->u.b = tu_rand(s) & 1; break;
    case SL_INT: x->u.i = tu_rand_below(s, 2) ? ints[tu_rand_below(s, SL_ARRAY_LEN(ints))] : (int64_t)tu_rand(s); break;
    case SL_DOUBLE: x->u.d = doubles[tu_rand_below(s, SL_ARRAY_LEN(doubles))]; break;
    case SL_STRING:
      x->u.s = words[tu_rand_below(s, SL_ARRAY_LEN(words))];
      if (list && n == 1 && !*x->u.s) x->u.s = "a"; /* [""] has no CSV form */
      x->len = strlen(x->u.s);
      break;
    default:
      x->len = tu_rand_below(s, 6);
      for (size_t j = 0; j < x->len; j++) bytes[j] = (uint8_t)tu_rand(s);
      x->u.bytes = bytes;
      break;
    }
  }
  if (list) *v = (sl_value){.kind = SL_LIST, .elem_kind = n ? kind : SL_NULL, .len = n, .u.items = items};
}

static void random_graph(const char *dir, uint64_t *s) {
  static const char *const labels[] = {"Person", "B", "with space", "semi;colon", "\xc3\x89t\xc3\xa9", "q\"uote"};
  static const char *const keys[] = {"name", "age", "x:y", "K", "\xe2\x82\xac", "b y", "comma,key"};
  sl_store *st = new_store(dir);
  sl_tx *tx;
  sl_value items[8][4];
  uint8_t bytes[8][8];
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  for (uint64_t id = 1; id <= 40; id++) {
    const char *ls[4];
    size_t nl = tu_rand_below(s, 4);
    for (size_t i = 0; i < nl; i++) ls[i] = labels[(id + i) % SL_ARRAY_LEN(labels)];
    sl_prop props[7];
    size_t np = tu_rand_below(s, SL_ARRAY_LEN(keys) + 1);
    for (size_t i = 0; i < np; i++) {
      props[i].key = keys[i];
      rand_value(s, &props[i].value, items[i], bytes[i]);
    }
    assert_int_equal(sl_tx_create_node(tx, id * 5, ls, nl, props, np, NULL), 0);
  }
  for (uint64_t id = 1; id <= 50; id++) {
    sl_prop props[2] = {{.key = "since"}, {.key = "w"}};
    size_t np = tu_rand_below(s, 3);
    for (size_t i = 0; i < np; i++) rand_value(s, &props[i].value, items[i], bytes[i]);
    uint64_t a = 5 * (1 + tu_rand_below(s, 40)), b = 5 * (1 + tu_rand_below(s, 40));
    assert_int_equal(
        sl_tx_create_rel(tx, id * 3, tu_rand_below(s, 2) ? "KNOWS" : "semi;\"type\",", a, b, props, np, NULL), 0);
  }
  assert_int_equal(sl_tx_commit(tx, NULL), 0);
  sl_store_close(st);
}

static void csv_export_roundtrip(void **state) {
  (void)state;
  uint64_t seed = tu_seed("csv_export_roundtrip");
  const char *root = tu_tmpdir("csv_roundtrip");
  char *a = tu_path(root, "a"), *b = tu_path(root, "b"), *c = tu_path(root, "c");
  char *da = tu_path(root, "a.csv"), *db = tu_path(root, "b.csv");
  for (int round = 0; round < 8; round++) {
    sl_remove_tree(da);
    sl_remove_tree(db);
    random_graph(a, &seed);
    assert_int_equal(export_csv_dir(a, da, NULL), 0);
    assert_int_equal(import_args(da, b), 0);
    char *sa = graph_shape(a), *sb = graph_shape(b);
    if (strcmp(sa, sb)) fail_msg("round %d: the graphs differ (ids aside):\n%s\n----\n%s", round, sa, sb);
    /* A second trip gives the same files and so the same ids. */
    assert_int_equal(export_csv_dir(b, db, NULL), 0);
    assert_int_equal(import_args(db, c), 0);
    char *eb = tu_export(b, NULL), *ec = tu_export(c, NULL);
    assert_string_equal(eb, ec);
    free(sa);
    free(sb);
    free(eb);
    free(ec);
  }
  /* Labels hold ';', so another array delimiter was chosen. */
  char *args = tu_path(da, "import.args"), *text = read_text(args);
  if (!strstr(text, "--array-delimiter=")) fail_msg("import.args:\n%s", text);
  free(text);
  free(args);
  free(a);
  free(b);
  free(c);
  free(da);
  free(db);
}

/* A key with values of different kinds: separate files, exactly. */
static void csv_export_files(void **state) {
  (void)state;
  const char *root = tu_tmpdir("csv_files");
  char *a = tu_path(root, "a"), *d = tu_path(root, "out");
  sl_store *st = new_store(a);
  sl_tx *tx;
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  const char *person[] = {"Person"};
  sl_value empty = {.kind = SL_LIST, .elem_kind = SL_NULL};
  sl_value ints[] = {{.kind = SL_INT, .u.i = 1}, {.kind = SL_INT, .u.i = 2}};
  sl_prop p1[] = {{"x", {.kind = SL_INT, .u.i = 5}}, {"y", empty}};
  sl_prop p2[] = {{"x", {.kind = SL_STRING, .u.s = "five", .len = 4}}};
  sl_prop p3[] = {{"y", {.kind = SL_LIST, .elem_kind = SL_INT, .len = 2, .u.items = ints}},
                  {"z", {.kind = SL_BYTES, .len = 2, .u.bytes = (const uint8_t *)"\x00\xff"}}};
  assert_int_equal(sl_tx_create_node(tx, 1, person, 1, p1, 2, NULL), 0);
  assert_int_equal(sl_tx_create_node(tx, 2, NULL, 0, p2, 1, NULL), 0);
  assert_int_equal(sl_tx_create_node(tx, 3, person, 1, p3, 2, NULL), 0);
  assert_int_equal(sl_tx_create_rel(tx, 1, "T,\"x\"", 1, 2, NULL, 0, NULL), 0);
  assert_int_equal(sl_tx_commit(tx, NULL), 0);
  sl_store_close(st);
  assert_int_equal(export_csv_dir(a, d, NULL), 0);
  static const char *const want[][2] = {
      {"import.args", "--id-type=integer\n--nodes=nodes_1.csv\n--nodes=nodes_2.csv\n"
                      "--relationships=relationships_1.csv\n"},
      {"nodes_1.csv", ":ID,:LABEL,x:long,y:long[],z:byte[]\n1,Person,5,\"\",\n3,Person,,1;2,0;-1\n"},
      {"nodes_2.csv", ":ID,:LABEL,x:string\n2,,\"five\"\n"},
      {"relationships_1.csv", ":START_ID,:END_ID,:TYPE\n1,2,\"T,\"\"x\"\"\"\n"},
  };
  for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
    char *path = tu_path(d, want[i][0]), *text = read_text(path);
    if (strcmp(text, want[i][1])) fail_msg("%s:\n%s\nwant:\n%s", want[i][0], text, want[i][1]);
    free(text);
    free(path);
  }
  /* The target must be new or empty. */
  char *err;
  assert_int_equal(export_csv_dir(a, d, &err), -ENOTEMPTY);
  if (!strstr(err, "new or empty directory")) fail_msg("stderr: %s", err);
  free(err);
  free(a);
  free(d);
}

static void csv_export_refusals(void **state) {
  (void)state;
  const char *root = tu_tmpdir("csv_export_refusals");
  char *a = tu_path(root, "a"), *d = tu_path(root, "out");
  sl_value bytes_item = {.kind = SL_BYTES, .len = 1, .u.bytes = (const uint8_t *)"x"};
  sl_value empty_str = {.kind = SL_STRING, .len = 0, .u.s = ""};
  static const char *const why[] = {"a list of byte arrays", "a list of one empty string", "a key holding '('",
                                    "a key holding '('"};
  sl_prop cases[] = {{"k", {.kind = SL_LIST, .elem_kind = SL_BYTES, .len = 1, .u.items = &bytes_item}},
                     {"k", {.kind = SL_LIST, .elem_kind = SL_STRING, .len = 1, .u.items = &empty_str}},
                     {"a(b)", {.kind = SL_INT, .u.i = 1}},
                     {"opt{x}", {.kind = SL_INT, .u.i = 1}}};
  for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
    sl_store *st = new_store(a);
    sl_tx *tx;
    assert_int_equal(sl_tx_begin(st, &tx), 0);
    assert_int_equal(sl_tx_create_node(tx, 7, NULL, 0, &cases[i], 1, NULL), 0);
    assert_int_equal(sl_tx_commit(tx, NULL), 0);
    sl_store_close(st);
    char *err;
    assert_int_equal(export_csv_dir(a, d, &err), SL_EINVAL);
    if (!strstr(err, "node 7: property") || !strstr(err, why[i])) fail_msg("case %zu: stderr: %s", i, err);
    free(err);
    if (access(d, F_OK) == 0) fail_msg("case %zu: a refused export left %s", i, d);
  }
  free(a);
  free(d);
}

/* ---- cypher ----------------------------------------------------------------------------- */
static char *cypher_string(const char *dir, uint64_t batch, int *rc) {
  sl_store *st;
  sl_view *v;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(sl_store_open(dir, SL_OPEN_RDONLY, &st), 0);
  assert_int_equal(sl_view_begin(st, &v), 0);
  tu_capture_begin();
  *rc = sl_export_cypher(v, f, "memory", &(sl_cypher_options){.batch_size = batch});
  free(tu_capture_end());
  sl_view_end(v);
  sl_store_close(st);
  fclose(f);
  return buf;
}

static void cypher_golden(void **state) {
  (void)state;
  const char *root = tu_tmpdir("cypher");
  char *a = tu_path(root, "a");
  sl_store *st = new_store(a);
  sl_tx *tx;
  assert_int_equal(sl_tx_begin(st, &tx), 0);
  const char *labels[] = {"Per`son", "B"};
  sl_value dl[] = {
      {.kind = SL_DOUBLE, .u.d = NAN}, {.kind = SL_DOUBLE, .u.d = -INFINITY}, {.kind = SL_DOUBLE, .u.d = 1e300}};
  sl_prop p1[] = {{"name", {.kind = SL_STRING, .u.s = "A\"n\\n\n\x01\xc3\xa9", .len = 9}},
                  {"d", {.kind = SL_LIST, .elem_kind = SL_DOUBLE, .len = 3, .u.items = dl}},
                  {"min", {.kind = SL_INT, .u.i = INT64_MIN}},
                  {"raw", {.kind = SL_BYTES, .len = 2, .u.bytes = (const uint8_t *)"\x01\xff"}},
                  {"e", {.kind = SL_LIST, .elem_kind = SL_NULL}},
                  {"t", {.kind = SL_BOOL, .u.b = true}}};
  assert_int_equal(sl_tx_create_node(tx, 4, labels, 2, p1, 6, NULL), 0);
  assert_int_equal(sl_tx_create_node(tx, 9, NULL, 0, NULL, 0, NULL), 0);
  assert_int_equal(sl_tx_create_node(tx, 10, NULL, 0, NULL, 0, NULL), 0);
  sl_prop rp[] = {{"w", {.kind = SL_DOUBLE, .u.d = 0.5}}};
  assert_int_equal(sl_tx_create_rel(tx, 1, "KNO`WS", 4, 9, rp, 1, NULL), 0);
  assert_int_equal(sl_tx_create_rel(tx, 2, "SELF", 10, 10, NULL, 0, NULL), 0);
  assert_int_equal(sl_tx_commit(tx, NULL), 0);
  sl_store_close(st);
  int rc;
  char *text = cypher_string(a, 2, &rc);
  assert_int_equal(rc, 0);
  assert_string_equal(
      text,
      ":begin\n"
      "CREATE CONSTRAINT UNIQUE_IMPORT_NAME FOR (node:`UNIQUE IMPORT LABEL`) REQUIRE (node.`UNIQUE IMPORT ID`) IS "
      "UNIQUE;\n"
      ":commit\n"
      "CALL db.awaitIndexes(300);\n"
      ":begin\n"
      "CREATE (:`B`:`Per``son`:`UNIQUE IMPORT LABEL` {`d`:[0.0/0.0, -1.0/0.0, 1e+300], `e`:[], "
      "`min`:-9223372036854775808, `name`:\"A\\\"n\\\\n\\u000A\\u0001\xc3\xa9\", `raw`:[1, -1], `t`:true, "
      "`UNIQUE IMPORT ID`:4});\n"
      "CREATE (:`UNIQUE IMPORT LABEL` {`UNIQUE IMPORT ID`:9});\n"
      ":commit\n"
      ":begin\n"
      "CREATE (:`UNIQUE IMPORT LABEL` {`UNIQUE IMPORT ID`:10});\n"
      ":commit\n"
      ":begin\n"
      "MATCH (n1:`UNIQUE IMPORT LABEL`{`UNIQUE IMPORT ID`:4}), (n2:`UNIQUE IMPORT LABEL`{`UNIQUE IMPORT ID`:9}) "
      "CREATE (n1)-[r:`KNO``WS` {`w`:0.5}]->(n2);\n"
      "MATCH (n1:`UNIQUE IMPORT LABEL`{`UNIQUE IMPORT ID`:10}), (n2:`UNIQUE IMPORT LABEL`{`UNIQUE IMPORT ID`:10}) "
      "CREATE (n1)-[r:`SELF`]->(n2);\n"
      ":commit\n"
      ":begin\n"
      "MATCH (n:`UNIQUE IMPORT LABEL`) WITH n LIMIT 2 REMOVE n:`UNIQUE IMPORT LABEL` REMOVE n.`UNIQUE IMPORT ID`;\n"
      ":commit\n"
      ":begin\n"
      "MATCH (n:`UNIQUE IMPORT LABEL`) WITH n LIMIT 2 REMOVE n:`UNIQUE IMPORT LABEL` REMOVE n.`UNIQUE IMPORT ID`;\n"
      ":commit\n"
      ":begin\n"
      "DROP CONSTRAINT UNIQUE_IMPORT_NAME;\n"
      ":commit\n");
  free(text);

  /* Refused: a list of byte arrays, the temporary label or key in use. */
  sl_value item = {.kind = SL_BYTES, .len = 1, .u.bytes = (const uint8_t *)"x"};
  const char *import_label[] = {"UNIQUE IMPORT LABEL"};
  sl_prop bad[] = {{"k", {.kind = SL_LIST, .elem_kind = SL_BYTES, .len = 1, .u.items = &item}},
                   {"UNIQUE IMPORT ID", {.kind = SL_INT, .u.i = 1}},
                   {"ok", {.kind = SL_INT, .u.i = 1}}};
  for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
    st = new_store(a);
    assert_int_equal(sl_tx_begin(st, &tx), 0);
    assert_int_equal(sl_tx_create_node(tx, 1, import_label, i == 2, &bad[i], 1, NULL), 0);
    assert_int_equal(sl_tx_commit(tx, NULL), 0);
    sl_store_close(st);
    free(cypher_string(a, 0, &rc));
    assert_int_equal(rc, SL_EINVAL);
  }
  free(a);
}

int main(void) {
  sl_set_progname("test_csv");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(csv_typed_columns),   cmocka_unit_test(csv_array_columns),
      cmocka_unit_test(csv_quoting),         cmocka_unit_test(csv_empty_fields),
      cmocka_unit_test(csv_unicode_separators),
      cmocka_unit_test(csv_id_spaces),       cmocka_unit_test(csv_refusals),
      cmocka_unit_test(csv_skip_options),    cmocka_unit_test(csv_export_files),
      cmocka_unit_test(csv_export_refusals), cmocka_unit_test(csv_export_roundtrip),
      cmocka_unit_test(cypher_golden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
