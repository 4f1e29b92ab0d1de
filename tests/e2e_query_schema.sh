#!/usr/bin/env bash
# End-to-end test of Cypher's schema statements (spec/query.md, "Schema";
# query/schema.c) through `shiplog query` and `exec --cypher`: CREATE INDEX /
# CONSTRAINT in Neo4j 5's and 4.x's (APOC's) forms, IF NOT EXISTS, SHOW with
# Neo4j 5's columns, DROP by name and by schema, Neo4j's status codes for
# each refusal, index seeks (equality and ranges) in MATCH and MERGE giving
# what a scan gives, and
# export --cypher | exec --cypher recreating graph and schema. Needs $SL_BIN
# with the query command (else skip); exit 0 = pass.
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c query jq
e2e_begin e2e_query_schema

S=$T/s
"$BIN" init "$S" >/dev/null
q=("$BIN" query "$S" --format jsonl)
expect 0 "CREATE INDEX (Neo4j 5)" "${q[@]}" "CREATE INDEX person_name FOR (n:Person) ON (n.name)"
contains "$T/out" '"indexes_added":1' "the index is counted"
expect 0 "CREATE CONSTRAINT ... REQUIRE ... IS UNIQUE" "${q[@]}" "CREATE CONSTRAINT person_email FOR (p:Person) REQUIRE p.email IS UNIQUE"
expect 0 "CREATE CONSTRAINT ON ... ASSERT ... IS NODE KEY (4.x, APOC)" \
  "${q[@]}" 'CREATE CONSTRAINT ON (node:`City`) ASSERT (node.`name`, node.`country`) IS NODE KEY'
expect 0 "CREATE INDEX ON :L(p) (3.x)" "${q[@]}" "CREATE INDEX ON :City(pop)"
expect 0 "a relationship index and an existence constraint" \
  "${q[@]}" "CREATE INDEX knows_since IF NOT EXISTS FOR ()-[k:KNOWS]-() ON (k.since); CREATE CONSTRAINT knows_w FOR ()-[k:KNOWS]-() REQUIRE k.w IS NOT NULL"
expect 0 "IF NOT EXISTS on an existing index does nothing" "${q[@]}" "CREATE INDEX person_name IF NOT EXISTS FOR (n:Person) ON (n.name)"
contains "$T/out" '"indexes_added":0' "nothing added"
expect 1 "the same index again" "${q[@]}" "CREATE INDEX person_name FOR (n:Person) ON (n.name)"
contains "$T/err" "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists" "EquivalentSchemaRuleAlreadyExists"
expect 1 "an index on a unique constraint's schema" "${q[@]}" "CREATE INDEX FOR (n:Person) ON (n.email)"
contains "$T/err" "Neo.ClientError.Schema.ConstraintAlreadyExists: There is a uniqueness constraint on (:Person {email}), so an index is already created that matches this." "ConstraintAlreadyExists, Neo4j's words"
expect 1 "a unique constraint on an index's schema" "${q[@]}" "CREATE CONSTRAINT FOR (n:City) REQUIRE n.pop IS UNIQUE"
contains "$T/err" "Neo.ClientError.Schema.IndexAlreadyExists: There already exists an index (:City {pop}). A constraint cannot be created until the index has been dropped." "IndexAlreadyExists, Neo4j's words"
expect 1 "a name taken" "${q[@]}" "CREATE CONSTRAINT person_name FOR (n:Dog) REQUIRE n.id IS UNIQUE"
contains "$T/err" "Neo.ClientError.Schema.ConstraintWithNameAlreadyExists" "ConstraintWithNameAlreadyExists"
expect 1 "a schema command inside a query" "${q[@]}" "MATCH (n) CREATE INDEX FOR (m:X) ON (m.y)"
contains "$T/err" "must be a statement of its own" "refused with its reason"

expect 0 "SHOW INDEXES" "${q[@]}" "SHOW INDEXES"
check "SHOW INDEXES: Neo4j 5's columns" jqe -s '.[0] | keys_unsorted == ["id","name","state","populationPercent","type","entityType","labelsOrTypes","properties","indexProvider","owningConstraint","lastRead","readCount"]' "$T/out"
check "SHOW INDEXES: a constraint's index is owned" jqe -s 'map(select(.name == "person_email"))[0].owningConstraint == "person_email"' "$T/out"
check "SHOW INDEXES: the relationship index" jqe -s 'map(select(.name == "knows_since"))[0] | .entityType == "RELATIONSHIP" and .labelsOrTypes == ["KNOWS"]' "$T/out"
expect 0 "SHOW CONSTRAINTS" "${q[@]}" "SHOW CONSTRAINTS"
check "SHOW CONSTRAINTS: types" jqe -s 'map(.type) | sort == ["NODE_KEY","RELATIONSHIP_PROPERTY_EXISTENCE","UNIQUENESS"]' "$T/out"
check "SHOW CONSTRAINTS: the node key's properties in order" jqe -s 'map(select(.type == "NODE_KEY"))[0].properties == ["name","country"]' "$T/out"

# data through Cypher, constraints at commit
expect 0 "CREATE people" "${q[@]}" "UNWIND range(1, 300) AS i CREATE (:Person {name: 'p' + toString(i % 100), email: 'e' + toString(i), age: i % 7})"
expect 1 "a duplicate email" "${q[@]}" "CREATE (:Person {name: 'x', email: 'e5'})"
contains "$T/err" "Neo.ClientError.Schema.ConstraintValidationFailed" "ConstraintValidationFailed"
contains "$T/err" "already exists with label \`Person\` and property \`email\` = 'e5'" "the message names label, key and value"
expect 1 "a city without its key" "${q[@]}" "CREATE (:City {name: 'Oslo'})"
contains "$T/err" "must have the property \`country\`" "node key: all keys present"
expect 1 "a relationship without w" "${q[@]}" "CREATE (:A)-[:KNOWS {since: 1}]->(:B)"
contains "$T/err" "Relationship(" "not null on relationships"
expect 1 "a constraint the data violates" "${q[@]}" "CREATE CONSTRAINT FOR (n:Person) REQUIRE n.age IS UNIQUE"
contains "$T/err" "Neo.ClientError.Schema.ConstraintCreationFailed" "ConstraintCreationFailed"

# seeks answer what scans answer: the same queries on a copy without schema
expect 0 "a second label on some people" "${q[@]}" "MATCH (n:Person) WHERE n.age % 3 = 0 SET n:Vip"
expect 0 "a person aged NaN" "${q[@]}" "CREATE (:Person {name: 'pnan', email: 'enan', age: 0.0 / 0.0})"
"$BIN" export "$S" --to "$T/s.jsonl" 2>/dev/null
grep -v '"type":"index"\|"type":"constraint"' "$T/s.jsonl" >"$T/plain.jsonl"
"$BIN" import "$T/plain.jsonl" --into "$T/plain" >/dev/null
expect 0 "an index for ranges" "${q[@]}" "CREATE INDEX person_age FOR (n:Person) ON (n.age)"
n=0
for query in "MATCH (n:Person {name: 'p7'}) RETURN id(n) ORDER BY id(n)" \
  "MATCH (n:Person) WHERE n.name = 'p7' AND n.age > 2 RETURN id(n) ORDER BY id(n)" \
  "MATCH (n:Person {email: 'e42'}) RETURN n.name" \
  "MATCH (n:Person {age: 3.0}) RETURN count(n)" \
  "MATCH (n:Person {age: 0.0 / 0.0}) RETURN count(n)" \
  "MATCH (n:Person {name: 'p7', age: 0}) RETURN id(n) ORDER BY id(n)" \
  "MATCH (n:Person {name: 'p7', name: 'p8'}) RETURN id(n) ORDER BY id(n)" \
  "MATCH (n:Person {email: 'e42', age: 0}) RETURN n.name" \
  "UNWIND ['p1', 'p2', 'nobody'] AS x MATCH (n:Person {name: x}) RETURN x, count(n) ORDER BY x" \
  "MATCH (n:Person) WHERE n.name = null RETURN count(n)" \
  "MERGE (n:Person {email: 'e7'}) RETURN id(n)" \
  "MATCH (n:Person) WHERE n.age > 3 RETURN count(n)" \
  "MATCH (n:Person) WHERE 2 <= n.age < 5 RETURN n.age AS age, count(n) AS c ORDER BY age" \
  "MATCH (n:Person) WHERE n.age >= 2.5 AND n.age <= \$top RETURN count(n)" \
  "MATCH (n:Person) WHERE n.email >= 'e5' AND n.email < 'e6' RETURN n.email ORDER BY n.email" \
  "MATCH (n:Person) WHERE n.age > 'x' RETURN count(n)" \
  "MATCH (n:Person) WHERE n.age > 1 AND n.age < 'z' RETURN count(n)" \
  "MATCH (n:Person) WHERE n.age < null RETURN count(n)" \
  "MATCH (n:Vip:Person {name: 'p7'}) RETURN id(n) ORDER BY id(n)" \
  "MATCH (n:Person:Vip) WHERE n.age > 2 RETURN n.age AS age, count(n) AS c ORDER BY age"; do
  n=$((n + 1))
  "$BIN" query "$S" "$query" --param top=5 --format jsonl | grep -v '"stats"' >"$T/a$n"
  "$BIN" query "$T/plain" "$query" --param top=5 --format jsonl | grep -v '"stats"' >"$T/b$n"
  if [ -s "$T/a$n" ] && cmp -s "$T/a$n" "$T/b$n"; then ok "seek = scan: $query"; else
    bad "seek = scan: $query"
    diff "$T/a$n" "$T/b$n" | head -4
  fi
done

# DROP by name, by schema, IF EXISTS
expect 0 "DROP INDEX name" "${q[@]}" "DROP INDEX person_name"
contains "$T/out" '"indexes_removed":1' "the drop is counted"
expect 1 "DROP INDEX of a missing one" "${q[@]}" "DROP INDEX person_name"
contains "$T/err" "Neo.ClientError.Schema.IndexDropFailed" "IndexDropFailed"
expect 0 "DROP INDEX ... IF EXISTS" "${q[@]}" "DROP INDEX person_name IF EXISTS"
expect 1 "DROP CONSTRAINT names no index" "${q[@]}" "DROP CONSTRAINT knows_since"
contains "$T/err" "Neo.ClientError.Schema.ConstraintDropFailed" "ConstraintDropFailed"
expect 0 "DROP CONSTRAINT ON ... ASSERT (by schema)" "${q[@]}" 'DROP CONSTRAINT ON (node:`City`) ASSERT (node.`name`, node.`country`) IS NODE KEY'
expect 0 "DROP INDEX ON :L(p) (by schema)" "${q[@]}" "DROP INDEX ON :City(pop)"
expect 0 "SHOW after the drops" "${q[@]}" "SHOW INDEXES"
check "three indexes left" jqe -s 'map(.name) | sort == ["knows_since","person_age","person_email"]' "$T/out"

# export --cypher | exec --cypher: the same graph and schema
expect 0 "export --cypher" "$BIN" export "$S" --cypher --to "$T/s.cypher"
"$BIN" init "$T/copy" >/dev/null
expect 0 "exec --cypher recreates it" "$BIN" exec "$T/copy" --cypher "$T/s.cypher"
"$BIN" export "$S" --to "$T/a.jsonl" 2>/dev/null
"$BIN" export "$T/copy" --to "$T/b.jsonl" 2>/dev/null
check "the same schema" cmp -s <(grep '"type":"index"\|"type":"constraint"' "$T/a.jsonl") <(grep '"type":"index"\|"type":"constraint"' "$T/b.jsonl")
check "the same graph, ids aside" cmp -s <(jq -c 'select(.type == "node") | [.labels, .properties]' "$T/a.jsonl" | sort) \
  <(jq -c 'select(.type == "node") | [.labels, .properties]' "$T/b.jsonl" | sort)
expect 0 "verify the copy" "$BIN" verify "$T/copy"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
