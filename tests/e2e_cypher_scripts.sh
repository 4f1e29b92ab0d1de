#!/usr/bin/env bash
# Cypher scripts that shiplog did not write (tests/data/cypher/SOURCES.md:
# APOC's apoc.export.cypher.all in its three formats, with the UNIQUE IMPORT
# LABEL and with NODE KEY constraints; Neo4j's Movies graph) run unchanged
# through `shiplog exec STORE --cypher FILE` and leave the graph they
# describe; and shiplog's own `export --cypher` of the LDBC example graph,
# run into a new store, gives the same graph, ids aside
# (tests/cypher_graph.mjs prints a graph without its ids).
# Schema statements need branch `schema`: without SHOW CONSTRAINTS the
# scripts run with those statements taken out, and the test says so.
# Skips (77) without node or before exec has --cypher.
# Needs $SL_BIN, $SL_TEST_TMP, $SL_SOURCE.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need
command -v node >/dev/null || { echo "skip: node is not installed (tests/cypher_graph.mjs; scripts/deps.sh --tests installs nodejs)"; exit 77; }
"$BIN" exec --help 2>&1 | grep -q -- '--cypher' || { echo "skip: $BIN exec has no --cypher yet"; exit 77; }
e2e_begin e2e_cypher_scripts
DATA=$SRC/tests/data/cypher
graph() { "$BIN" export "$1" | node "$SRC/tests/cypher_graph.mjs"; }
same() { # same FILE1 FILE2 DESCRIPTION
  if cmp -s "$1" "$2"; then ok "$3"; else
    bad "$3"
    diff "$1" "$2" | head -10 | sed 's/^/    /'
  fi
}

"$BIN" init "$T/probe" >/dev/null || exit 1
schema=1
"$BIN" query "$T/probe" 'SHOW CONSTRAINTS' --format jsonl >/dev/null 2>&1 || schema=0
[ $schema = 1 ] || echo "note: no SHOW CONSTRAINTS (branch schema): the scripts run without their index and constraint statements"

# run NAME FILE: FILE into a new store $T/NAME, unchanged when there is schema support
run() {
  local script=$2
  if [ $schema = 0 ]; then
    script=$T/$1.noschema.cypher
    grep -Ev '^(CREATE|DROP) ((RANGE|TEXT|POINT|FULLTEXT|LOOKUP) )?(INDEX|CONSTRAINT)|^CALL db\.awaitIndexes|^SCHEMA AWAIT' "$2" >"$script"
  fi
  "$BIN" init "$T/$1" >/dev/null &&
    expect 0 "$1 runs through exec --cypher$([ $schema = 0 ] && echo ' (schema statements taken out)')" \
      "$BIN" exec "$T/$1" --cypher "$script"
}

# ---- APOC's export of a small graph, three formats -----------------------------------------
cat >"$T/apoc-all.want" <<'EOF2'
N ["Bar"] {"age":12}
N ["Bar"] {"age":42,"name":"bar"}
N ["Foo"] {"born":{"$date":"2018-10-31"},"name":"foo"}
R KNOWS ["Foo"] {"born":{"$date":"2018-10-31"},"name":"foo"} -> ["Bar"] {"age":42,"name":"bar"} {"since":2016}
EOF2
cat >"$T/apoc-nodekey.want" <<'EOF2'
N ["Person"] {"name":"Jenny","surname":"White"}
N ["Person"] {"name":"John","surname":"Snow"}
N ["Person"] {"name":"Matt","surname":"Jackson"}
N ["Person"] {"name":"Susan","surname":"Brown"}
N ["Person"] {"name":"Tom","surname":"Taylor"}
R KNOWS ["Person"] {"name":"John","surname":"Snow"} -> ["Person"] {"name":"Matt","surname":"Jackson"} {"foo":1}
EOF2
for g in all nodekey; do
  for f in cypher-shell neo4j-shell plain; do
    run "apoc-$g-$f" "$DATA/apoc-$g-$f.cypher"
    graph "$T/apoc-$g-$f" >"$T/apoc-$g-$f.got"
    same "$T/apoc-$g.want" "$T/apoc-$g-$f.got" "apoc-$g-$f: the exported graph, no UNIQUE IMPORT label or id left"
  done
done
if [ $schema = 1 ]; then
  # SHOW ... YIELD is not supported (README "Queries"): the names are taken with jq
  "$BIN" query "$T/apoc-all-cypher-shell" 'SHOW CONSTRAINTS' --format jsonl 2>&1 | jq -r '.name // empty' | sort >"$T/cons"
  same <(printf '%s\n' uniqueConstraint uniqueConstraintComposite) "$T/cons" \
    "apoc-all: its constraints kept, UNIQUE_IMPORT_NAME dropped"
  "$BIN" query "$T/apoc-nodekey-cypher-shell" 'SHOW CONSTRAINTS' --format jsonl 2>&1 | jq -r '.name // empty' | wc -l | tr -d ' ' >"$T/cons"
  contains "$T/cons" '10' "apoc-nodekey: its 10 constraints"
  expect 1 "apoc-nodekey: the NODE KEY refuses a second John Snow" \
    "$BIN" query "$T/apoc-nodekey-cypher-shell" "CREATE (:Person {name: 'John', surname: 'Snow'})"
  contains "$T/err" "Neo.ClientError.Schema.ConstraintValidationFailed" "apoc-nodekey: ... with ConstraintValidationFailed"
fi

# ---- the Movies graph: Neo4j's script and APOC's export of it -------------------------------
count() { # count FILE JQ_FILTER: how many lines of a canonical export match
  jq -c "select($2)" "$1" | wc -l
}
run movies "$DATA/movies.cypher"
"$BIN" export "$T/movies" >"$T/movies.jsonl"
check "movies: 38 movies" test "$(count "$T/movies.jsonl" '.type=="node" and .labels==["Movie"]')" = 38
check "movies: 133 people" test "$(count "$T/movies.jsonl" '.type=="node" and .labels==["Person"]')" = 133
check "movies: 253 relationships" test "$(count "$T/movies.jsonl" '.type=="relationship"')" = 253
check "movies: 172 ACTED_IN" test "$(count "$T/movies.jsonl" '.label=="ACTED_IN"')" = 172
check "movies: The Matrix, 1999" test "$(count "$T/movies.jsonl" '.properties=={"released":1999,"tagline":"Welcome to the Real World","title":"The Matrix"}')" = 1
check "movies: Keanu Reeves played Neo in The Matrix" test "$(jq -c 'select(.label=="ACTED_IN" and .properties.roles==["Neo"])' "$T/movies.jsonl" | wc -l)" -ge 1
summary="Slapstick redeemed only by the Robin Williams and Gene Hackman's stellar performances"
check "movies: a summary with an apostrophe" test "$(jq -c --arg s "$summary" 'select(.properties.summary==$s)' "$T/movies.jsonl" | wc -l)" = 1

run apoc-movies "$DATA/apoc-movies-cypher-shell.cypher"
"$BIN" export "$T/apoc-movies" >"$T/apoc-movies.jsonl"
check "apoc-movies: 38 movies" test "$(count "$T/apoc-movies.jsonl" '.type=="node" and .labels==["Movie"]')" = 38
check "apoc-movies: 131 people" test "$(count "$T/apoc-movies.jsonl" '.type=="node" and .labels==["Other","Person"]')" = 131
check "apoc-movies: 250 relationships" test "$(count "$T/apoc-movies.jsonl" '.type=="relationship"')" = 250
check "apoc-movies: no UNIQUE IMPORT label, id or rel id left" \
  test "$(grep -c 'UNIQUE IMPORT' "$T/apoc-movies.jsonl")" = 0
check "apoc-movies: Keanu Reeves, 1964, his uuid" test "$(count "$T/apoc-movies.jsonl" '.properties=={"born":1964,"id":"ae85bf21-bb95-48fe-9a27-ace09b978c32","name":"Keanu Reeves"}')" = 1
check "apoc-movies: a role with quotes" test "$(count "$T/apoc-movies.jsonl" '.properties.roles==["Brutus \"Brutal\" Howell"]')" = 1

# ---- shiplog's own export --cypher of the LDBC example graph, ids aside ---------------------
L=$SRC/data/ldbc-snb-example-graph
"$BIN" init "$T/ldbc" >/dev/null && "$SRC/scripts/ldbc-to-mutations.sh" "$L" >"$T/ldbc.jsonl" &&
  "$BIN" exec "$T/ldbc" "$T/ldbc.jsonl" >/dev/null || bad "load the LDBC example graph"
expect 0 "export --cypher of the LDBC graph" "$BIN" export "$T/ldbc" --cypher --to "$T/ldbc.cypher"
run ldbc-copy "$T/ldbc.cypher"
graph "$T/ldbc" >"$T/ldbc.want"
graph "$T/ldbc-copy" >"$T/ldbc.got"
check "LDBC: a graph of $(grep -c '^N' "$T/ldbc.want") nodes and $(grep -c '^R' "$T/ldbc.want") relationships" test -s "$T/ldbc.want"
same "$T/ldbc.want" "$T/ldbc.got" "LDBC: export --cypher, exec --cypher: the same graph, ids aside"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
