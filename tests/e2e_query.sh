#!/usr/bin/env bash
# `shiplog query` and `shiplog exec --cypher` (spec/query.md) as a user runs
# them: the three output formats, parameters, statements from standard
# input, cypher-shell scripts with :begin/:commit/:rollback/:param, errors
# (FILE:LINE:COL: code: message, exit 1; usage, exit 2), a read-only query
# while another process holds the store for writing, the limits, and real
# queries on the LDBC example graph.
# shellcheck source=lib_e2e.sh
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c query jq
e2e_begin e2e_query

S=$T/store
expect 0 "init" "$BIN" init "$S"
expect 0 "query --help" "$BIN" query --help
contains "$T/out" "--param NAME=JSON" "query --help names --param"
expect 0 "exec --cypher --help" "$BIN" exec "$S" --cypher - --help
contains "$T/out" ":begin" "exec --cypher --help explains scripts"

# ---- formats ---------------------------------------------------------------------------------------
expect 0 "CREATE with RETURN (jsonl)" "$BIN" query "$S" \
  "CREATE (a:Person {name: 'Ann', born: 1984})-[:KNOWS {since: 2019}]->(b:Person {name: 'Bo'}) RETURN a.name AS a, b" \
  --format jsonl
check "jsonl: the row, then the stats line" test "$(wc -l <"$T/out")" -eq 2
check "jsonl: a node as elementId, labels, properties" jqe -s \
  '.[0].a == "Ann" and (.[0].b.elementId | test("^4:[0-9a-f-]{36}:2$")) and .[0].b.labels == ["Person"] and .[0].b.properties == {"name":"Bo"}' "$T/out"
check "jsonl: stats with Neo4j's counter names" jqe -s \
  '.[1].stats.nodes_created == 2 and .[1].stats.relationships_created == 1 and .[1].stats.properties_set == 4 and .[1].stats.labels_added == 2' "$T/out"
expect 0 "a relationship and a path" "$BIN" query "$S" "MATCH p = (:Person)-[r]->() RETURN r, p" --format jsonl
check "jsonl: relationship start/end are element ids" jqe \
  '.r.type == "KNOWS" and (.r.elementId | startswith("5:")) and (.r.start | endswith(":1")) and (.r.end | endswith(":2")) and .r.properties.since == 2019' "$T/out"
check "jsonl: a path's nodes and relationships" jqe '(.p.nodes | length) == 2 and (.p.relationships | length) == 1' "$T/out"
expect 0 "csv" "$BIN" query "$S" "MATCH (n:Person) RETURN n.name AS name, n.born AS born ORDER BY name" --format csv
check "csv: header and rows, null empty" test "$(cat "$T/out")" = "$(printf 'name,born\nAnn,1984\nBo,')"
expect 0 "table" "$BIN" query "$S" "MATCH (n:Person) RETURN n.name AS name ORDER BY name" --format table
contains "$T/out" '| "Ann" |' "table: a string cell"
contains "$T/out" "2 rows" "table: the row count"
expect 0 "statements from standard input, ';'-separated" sh -c \
  "printf 'RETURN 1 AS a;\n// a comment\nRETURN 2 AS b;' | '$BIN' query '$S' --format jsonl"
check "each statement's rows" test "$(cat "$T/out")" = "$(printf '{"a":1}\n{"b":2}')"

# ---- parameters --------------------------------------------------------------------------------------
expect 0 "--param NAME=JSON" "$BIN" query "$S" 'RETURN $n + 1 AS n, $m.k[1] AS k, $b AS b' --param n=41 \
  --param 'm={"k":[1,"x"]}' --param 'b={"$bytes":"AAE="}' --format jsonl
check "parameters of every JSON kind" test "$(cat "$T/out")" = '{"n":42,"k":"x","b":{"$bytes":"AAE="}}'
printf '{"who":"Ann"}' >"$T/params.json"
expect 0 "--params FILE" "$BIN" query "$S" 'MATCH (n {name: $who}) RETURN n.born AS born' --params "$T/params.json" --format jsonl
check "--params FILE took effect" test "$(cat "$T/out")" = '{"born":1984}'
expect 0 "--params JSON" "$BIN" query "$S" 'RETURN $x AS x' --params '{"x":[1,2.5,null]}' --format jsonl
check "--params JSON took effect" test "$(cat "$T/out")" = '{"x":[1,2.5,null]}'
expect 2 "a bad --param is a usage error" "$BIN" query "$S" 'RETURN 1' --param 'x={'
expect 2 "a bad --format is a usage error" "$BIN" query "$S" 'RETURN 1' --format xml

# ---- errors ------------------------------------------------------------------------------------------------
expect 1 "a syntax error exits 1" "$BIN" query "$S" "MATCH (n RETURN n"
contains "$T/err" "query:1:10: Neo.ClientError.Statement.SyntaxError:" "QUERY:LINE:COL: code: message"
expect 1 "an unknown variable" "$BIN" query "$S" $'MATCH (n)\nRETURN m'
contains "$T/err" "query:2:8: Neo.ClientError.Statement.SyntaxError: Variable \`m\` not defined" "semantic errors name the variable and its place"
expect 1 "a failed statement changes nothing" "$BIN" query "$S" "CREATE (:Gone) WITH 1 AS x RETURN 1 / 0"
expect 0 "count after the failure" "$BIN" query "$S" "MATCH (n:Gone) RETURN count(n) AS c" --format jsonl
check "nothing of the failed statement" test "$(cat "$T/out")" = '{"c":0}'

# ---- scripts ---------------------------------------------------------------------------------------------
cat >"$T/ok.cypher" <<'EOF'
// people and their city
:param city => 'Paris'
:begin
CREATE (:City {name: $city});
MATCH (c:City {name: $city}), (p:Person) CREATE (p)-[:LIVES_IN]->(c);
:commit
:begin
CREATE (:Gone);
:rollback
:params {n: 3}
UNWIND range(1, $n) AS i CREATE (:Num {i: i});
MATCH (n:Num) RETURN sum(n.i) AS total;
EOF
expect 0 "exec FILE.cypher" "$BIN" exec "$S" "$T/ok.cypher" --format jsonl
check "a script's rows are printed" test "$(cat "$T/out")" = '{"total":6}'
expect 0 "the script's writes" "$BIN" query "$S" \
  "MATCH (p)-[:LIVES_IN]->(c) WITH count(p) AS lives OPTIONAL MATCH (g:Gone) RETURN lives, count(g) AS gone" --format jsonl
check ":begin/:commit kept, :rollback dropped" test "$(cat "$T/out")" = '{"lives":2,"gone":0}'
cat >"$T/bad.cypher" <<'EOF'
CREATE (:Step {n: 1});
:begin
CREATE (:Step {n: 2});
:commit
:begin
CREATE (:Step {n: 3});
MATCH (s:Step)
  RETURN s.n + $nope;
:commit
CREATE (:Step {n: 4});
EOF
expect 1 "a failing script statement exits 1" "$BIN" exec "$S" --cypher "$T/bad.cypher"
contains "$T/err" "bad.cypher:8:16: Neo.ClientError.Statement.ParameterMissing" "FILE:LINE:COL in the file"
contains "$T/err" "2 transactions committed" "the script names how many transactions committed"
expect 0 "steps after the failure" "$BIN" query "$S" "MATCH (s:Step) RETURN collect(s.n) AS ns" --format jsonl
check "committed transactions kept, the open one and the rest not run" test "$(cat "$T/out")" = '{"ns":[1,2]}'
expect 0 "exec --cypher - reads standard input" sh -c "echo 'CREATE (:Stdin);' | '$BIN' exec '$S' --cypher -"

# ---- read-only while another process writes -------------------------------------------------------------
mkfifo "$T/fifo"
"$BIN" exec "$S" "$T/fifo" >/dev/null 2>&1 &
holder=$!
pids+=("$holder")
exec 7>"$T/fifo"
ino=$(stat -c %i "$S/writer.lock")
for _ in $(seq 100); do grep -q ":$ino " /proc/locks && break; sleep 0.1; done
expect 0 "a read query while exec holds the store" "$BIN" query "$S" "MATCH (p:Person) RETURN count(p) AS c" --format jsonl
check "it reads the store" test "$(cat "$T/out")" = '{"c":2}'
expect 1 "a writing statement there is refused" "$BIN" query "$S" "CREATE (:No)"
contains "$T/err" "Neo.ClientError.Statement.AccessMode" "with Neo4j's access-mode code"
contains "$T/err" "pid $holder" "naming the process that holds the store"
exec 7>&-
wait "$holder"

# ---- limits ---------------------------------------------------------------------------------------------------
expect 1 "--query-timeout" "$BIN" query "$S" "UNWIND range(1, 100000) AS a UNWIND range(1, 100000) AS b RETURN count(*)" \
  --query-timeout 200
contains "$T/err" "Neo.ClientError.Transaction.TransactionTimedOut" "a timeout has Neo4j's code"
expect 1 "--query-memory" "$BIN" query "$S" "UNWIND range(1, 1000000) AS x RETURN collect(x)" --query-memory 4M
contains "$T/err" "Neo.TransientError.General.MemoryPoolOutOfMemoryError" "the memory limit has Neo4j's code"

# ---- the LDBC example graph ---------------------------------------------------------------------------------------
L=$SRC/data/ldbc-snb-example-graph
[ -d "$L" ] || L=$SRC/../shared/data/ldbc-snb-example-graph
if [ -d "$L" ]; then
  { echo 'creationDate|deletionDate|explicitlyDeleted:boolean|id:ID(Person)|firstName|lastName|gender|birthday|locationIP|browserUsed|city:long|language:string[]|email:string[]'
    tail -n +2 "$L/dynamic/Person.csv"; } >"$T/person.csv"
  { echo 'creationDate|deletionDate|explicitlyDeleted:boolean|:START_ID(Person)|:END_ID(Person)'
    tail -n +2 "$L/dynamic/Person_knows_Person.csv"; } >"$T/knows.csv"
  expect 0 "import the LDBC persons" "$BIN" import --delimiter='|' --id-type=integer --nodes=Person="$T/person.csv" \
    --relationships=KNOWS="$T/knows.csv" --into "$T/ldbc" --quiet
  persons=$(($(wc -l <"$L/dynamic/Person.csv") - 1))
  knows=$(($(wc -l <"$L/dynamic/Person_knows_Person.csv") - 1))
  expect 0 "LDBC: counts" "$BIN" query "$T/ldbc" "MATCH (p:Person) WITH count(p) AS persons MATCH ()-[k:KNOWS]->() RETURN persons, count(k) AS knows" --format jsonl
  check "LDBC: every person and every knows" test "$(cat "$T/out")" = "{\"persons\":$persons,\"knows\":$knows}"
  expect 0 "LDBC: friends of friends" "$BIN" query "$T/ldbc" \
    "MATCH (p:Person {firstName: 'Amelie'})-[:KNOWS*1..2]-(f:Person) WHERE f <> p RETURN DISTINCT f.firstName AS name ORDER BY name" --format jsonl
  check "LDBC: friends of friends found" test -s "$T/out"
  expect 0 "LDBC: grouping" "$BIN" query "$T/ldbc" \
    "MATCH (p:Person) RETURN p.gender AS gender, count(*) AS n, collect(DISTINCT size(p.email))[0] IS NOT NULL AS e ORDER BY gender" --format jsonl
  check "LDBC: one row per gender summing to every person" jqe -s "(map(.n) | add) == $persons" "$T/out"
  expect 0 "LDBC: the most connected" "$BIN" query "$T/ldbc" \
    "MATCH (p:Person)-[:KNOWS]-(f) RETURN p.firstName AS name, count(f) AS degree ORDER BY degree DESC, name LIMIT 3" --format csv
  check "LDBC: a top three" test "$(wc -l <"$T/out")" -eq 4
  expect 0 "EXPLAIN: the plan line, no row" "$BIN" query "$T/ldbc" \
    "EXPLAIN MATCH (p:Person)-[:KNOWS]-(f) WHERE id(p) = 1 RETURN f.firstName AS name ORDER BY name" --format jsonl
  check "EXPLAIN: from ProduceResults down to an id seek" \
    jqe -s 'length == 1 and (.[0].plan | test("^ProduceResults <- Sort <- Projection <- Expand\\(All\\) <- NodeByIdSeek$"))' "$T/out"
  expect 0 "EXPLAIN of a write changes nothing" "$BIN" query "$T/ldbc" "EXPLAIN CREATE (:Explained)" --format jsonl
  expect 0 "... (none made)" "$BIN" query "$T/ldbc" "MATCH (e:Explained) RETURN count(e) AS c" --format jsonl
  check "... as a count says" jqe '.c == 0' "$T/out"
  expect 0 "PROFILE: the rows, then the plan" "$BIN" query "$T/ldbc" "PROFILE UNWIND [1, 2] AS x RETURN x" --format jsonl
  check "PROFILE: two rows and the plan line" jqe -s 'length == 3 and .[2].plan == "ProduceResults <- Projection <- Unwind"' "$T/out"
else
  bad "LDBC sample not found in $SRC/data or ../shared/data"
fi

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
