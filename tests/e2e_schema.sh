#!/usr/bin/env bash
# End-to-end test of schema (indexes and constraints) through the shiplog
# binary with real files: `import` of an export holding schema lines, the
# canonical export writing them back byte for byte (and none for a store
# without schema), `exec` refused by a unique and a not-null constraint
# (FILE:LINE and the store's reason), `import` refused by a constraint its
# data violates (nothing left behind), `export --cypher` writing CREATE INDEX
# and CREATE CONSTRAINT (and --csv saying it leaves schema out), `log`
# printing schema ops, `dump | load` and
# `verify` keeping schema. Needs $SL_BIN; exit 0 = pass.
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need
e2e_begin e2e_schema

cat >"$T/graph.jsonl" <<'J'
{"type":"node","id":"1","labels":["Person"],"properties":{"name":"ann"}}
{"type":"node","id":"2","labels":["Person"],"properties":{"age":7,"name":"bob"}}
{"type":"relationship","id":"1","label":"KNOWS","start":{"id":"1","labels":["Person"]},"end":{"id":"2","labels":["Person"]},"properties":{"since":2020}}
{"type":"index","name":"knows_since","kind":"RANGE","entity":"relationship","label":"KNOWS","properties":["since"]}
{"type":"constraint","name":"person_name","kind":"UNIQUENESS","entity":"node","label":"Person","properties":["name"]}
{"type":"constraint","name":"person_name_set","kind":"NODE_PROPERTY_EXISTENCE","entity":"node","label":"Person","properties":["name"]}
J
expect 0 "import reads schema lines" "$BIN" import "$T/graph.jsonl" --into "$T/s"
expect 0 "export" "$BIN" export "$T/s" --to "$T/s.jsonl"
if cmp -s "$T/graph.jsonl" "$T/s.jsonl"; then ok "export | import | export is the identity with schema"; else
  bad "export differs from its import"
  diff "$T/graph.jsonl" "$T/s.jsonl" | head -5
fi
head -3 "$T/graph.jsonl" >"$T/plain.jsonl"
expect 0 "import without schema" "$BIN" import "$T/plain.jsonl" --into "$T/plain"
expect 0 "export without schema" "$BIN" export "$T/plain" --to "$T/plain.out"
check "no schema lines when the store has none" cmp -s "$T/plain.jsonl" "$T/plain.out"

# exec: a duplicate name and a missing one are refused, the rest applies
cat >"$T/m.jsonl" <<'J'
{"ops":[{"op":"create_node","labels":["Person"],"props":{"name":"ann"}}]}
{"ops":[{"op":"create_node","labels":["Person"],"props":{"name":"cy"}}]}
{"ops":[{"op":"remove_node_prop","id":2,"key":"name"}]}
{"ops":[{"op":"create_node","labels":["Person"],"props":{"name":"dee"}},{"op":"set_node_prop","id":1,"key":"name","value":"dee"}]}
J
expect 1 "exec: constraint violations fail the run" "$BIN" exec "$T/s" "$T/m.jsonl"
contains "$T/err" "m.jsonl:1: commit" "exec names the line"
contains "$T/err" "Node(1) already exists with label \`Person\` and property \`name\` = 'ann'" "the store names node, label, key and value"
contains "$T/err" "Node(2) with label \`Person\` must have the property \`name\` (constraint person_name_set)" "not null names the constraint"
contains "$T/err" "m.jsonl:4: commit" "a duplicate made within one transaction is refused too"
expect 0 "export after exec" "$BIN" export "$T/s" --to "$T/s2.jsonl"
contains "$T/s2.jsonl" '"name":"cy"' "the good line applied"
check "the refused lines changed nothing" test "$(grep -c '"type":"node"' "$T/s2.jsonl")" -eq 3

# import: data that violates a constraint line fails the import, nothing left
sed 's/"bob"/"ann"/' "$T/graph.jsonl" >"$T/dup.jsonl"
expect 1 "import refuses data its constraint forbids" "$BIN" import "$T/dup.jsonl" --into "$T/dup"
contains "$T/err" "dup.jsonl:5: constraint person_name" "import names FILE:LINE and the constraint"
contains "$T/err" "already exists with label \`Person\` and property \`name\` = 'ann'" "import says why"
check "a refused import leaves no store" test ! -e "$T/dup"
printf '%s\n' '{"type":"constraint","name":"x","kind":"RANGE","entity":"node","label":"P","properties":["a"]}' >"$T/bad.jsonl"
expect 1 "import refuses a constraint of an index's kind" "$BIN" import "$T/bad.jsonl" --into "$T/bad"
contains "$T/err" "bad.jsonl:1: constraint" "the refusal names the line"

# export --cypher, log, dump | load, verify
expect 0 "export --cypher" "$BIN" export "$T/s" --cypher --to "$T/s.cypher"
contains "$T/s.cypher" 'CREATE INDEX `knows_since` FOR ()-[r:`KNOWS`]-() ON (r.`since`);' "cypher: CREATE INDEX"
contains "$T/s.cypher" 'CREATE CONSTRAINT `person_name` FOR (n:`Person`) REQUIRE (n.`name`) IS UNIQUE;' "cypher: CREATE CONSTRAINT"
contains "$T/s.cypher" 'REQUIRE (n.`name`) IS NOT NULL;' "cypher: IS NOT NULL"
expect 0 "export --csv" "$BIN" export "$T/s" --csv "$T/csv"
contains "$T/err" "indexes and constraints are not part of a CSV export" "export --csv says what it leaves out"
expect 0 "log prints schema ops" "$BIN" log "$T/s"
contains "$T/out" "create_constraint" "log: create_constraint"
expect 0 "dump" "$BIN" dump "$T/s" --to "$T/s.dump" --quiet
expect 0 "load" "$BIN" load "$T/s.dump" --into "$T/loaded" --quiet
expect 0 "export of the loaded store" "$BIN" export "$T/loaded" --to "$T/loaded.jsonl"
check "dump | load keeps schema" cmp -s "$T/s2.jsonl" "$T/loaded.jsonl"
expect 1 "the loaded store enforces its constraints" "$BIN" exec "$T/loaded" <(head -1 "$T/m.jsonl")
expect 0 "verify" "$BIN" verify "$T/s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
