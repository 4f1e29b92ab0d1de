#!/usr/bin/env bash
# `shiplog export --cypher` scripts checked by Neo4j's own Cypher linter: the
# npm package @neo4j-cypher/language-support (lintCypherQuery), with the
# client commands (:begin, :commit) set aside, must report zero errors for
# the every-value-kind graph, the LDBC example graph and a random graph; and
# it must catch a broken script (so that a silent linter cannot pass).
# The package and its dependencies, pinned by tests/cypher-lint/package-lock.json
# (version and integrity; the registry is npm's configured one), are
# installed with `npm ci` into the build tree ($SL_BUILD/npm-cypher-lint,
# npm's cache beside it), again only when the lock changes. Node.js and npm
# come from scripts/deps.sh --tests (Debian 12: node 18, hence a version of the
# linter whose engines allow it); without them or the registry the test
# is skipped (77), saying why. Needs $SL_BIN, $SL_TEST_TMP, $SL_SOURCE.
set -u

BIN=${SL_BIN:?SL_BIN must name the shiplog binary}
SRC=${SL_SOURCE:-$(cd "$(dirname "$0")/.." && pwd)}
[ -x "$BIN" ] || { echo "skip: $BIN is not executable"; exit 77; }
T=${SL_TEST_TMP:-/tmp/shiplog-test}/e2e_cypher.$$
rm -rf "$T" && mkdir -p "$T" || exit 1
trap 'rm -rf "$T"' EXIT

PKG=@neo4j-cypher/language-support
LOCK=$SRC/tests/cypher-lint
NPM_DIR=${SL_BUILD:-${SL_TEST_TMP:-/tmp/shiplog-test}}/npm-cypher-lint
MOD=$NPM_DIR/node_modules/$PKG

command -v node >/dev/null || { echo "skip: node is not installed, so the Cypher linter cannot run (scripts/deps.sh --tests installs nodejs)"; exit 77; }
SRC=$SRC "$SRC/tests/npm-pinned.sh" "$LOCK" "$NPM_DIR" "$PKG" || exit $?
echo "linter: $PKG $(jq -r .version "$MOD/package.json" 2>/dev/null), node $(node --version)"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }

# lint SCRIPT...: every diagnostic of severity Error, then a count per file.
cat >"$T/lint.cjs" <<'EOF'
const fs = require('fs');
const { lintCypherQuery } = require(process.argv[2]);
let errors = 0;
for (const file of process.argv.slice(3)) {
  // Client commands are cypher-shell's, not Cypher: blanked, so lines keep their numbers.
  const text = fs.readFileSync(file, 'utf8').split('\n').map((l) => (/^\s*:/.test(l) ? '' : l)).join('\n');
  const r = lintCypherQuery(text, {}); // diagnostics: an array, or (2.0.0-next.2x on) its field
  const diagnostics = Array.isArray(r) ? r : r.diagnostics;
  const errs = diagnostics.filter((d) => d.severity === 1);
  for (const d of errs.slice(0, 10)) console.log(`${file}:${d.range.start.line + 1}: ${d.message}`);
  console.log(`${file}: ${errs.length} errors, ${diagnostics.length - errs.length} warnings`);
  errors += errs.length;
}
process.exit(errors ? 1 : 0);
EOF
lint() { node "$T/lint.cjs" "$MOD" "$@" >"$T/lint.out" 2>&1; }
lint_clean() { # lint_clean DESCRIPTION SCRIPT
  if lint "$2"; then ok "$1"; else
    bad "$1"
    sed 's/^/    /' "$T/lint.out" | head -12
  fi
}

# ---- the graphs ----------------------------------------------------------------------------
cat >"$T/kinds.jsonl" <<'EOF'
{"ops":[{"op":"create_node","id":1,"labels":["Person","Back`tick","With Space","É"],"props":{"min":-9223372036854775808,"max":9223372036854775807,"t":true,"d":1.0,"nz":-0.0,"tiny":5e-324,"big":1e300,"nan":{"$double":"NaN"},"inf":{"$double":"Infinity"},"ninf":{"$double":"-Infinity"},"s":"q\"uote 'single' \\back\nline\r\ttab\u0001\u007f é€😀 // not a comment /* nor this */","e":"","b":{"$bytes":"AP9/gA=="},"eb":{"$bytes":""},"li":[1,-2],"ld":[0.5,{"$double":"NaN"},{"$double":"-Infinity"}],"lb":[true,false],"ls":["a b","","c`d"],"le":[],"key with space":1,"back`tick key":2,"x:y":3}}]}
{"ops":[{"op":"create_node","id":2,"labels":[],"props":{}}]}
{"ops":[{"op":"create_node","id":4,"labels":["Temporal"],"props":{"d":{"$date":"-999999999-01-01"},"lt":{"$localtime":"12:30:00.000000001"},"t":{"$time":"12:30:00-18:00"},"ldt":{"$localdatetime":"+999999999-12-31T23:59:59.999999999"},"dt":{"$datetime":"2024-10-27T02:30:00+01:00[Europe/Paris]"},"dto":{"$datetime":"1900-01-01T00:00:00+00:09:21[Europe/Paris]"},"du":{"$duration":"PT-1H-30M-0.5S"},"p":{"$point":{"srid":4326,"x":12.5,"y":55.25}},"p3":{"$point":{"srid":9157,"x":1e300,"y":-0.0,"z":5e-324}},"ld":[{"$date":"2024-02-29"}],"lp":[{"$point":{"srid":7203,"x":1.0,"y":2.0}}]}}]}
{"ops":[{"op":"create_node","id":3,"labels":["MATCH","return"],"props":{"CREATE":"RETURN 1;"}}]}
{"ops":[{"op":"create_rel","id":1,"type":"KNOWS","start":1,"end":2,"props":{"since":2019,"w":{"$double":"NaN"}}}]}
{"ops":[{"op":"create_rel","id":2,"type":"ODD ` TYPE; \"x\"","start":3,"end":3,"props":{}}]}
EOF
"$BIN" init "$T/kinds" >/dev/null && "$BIN" exec "$T/kinds" "$T/kinds.jsonl" >/dev/null ||
  bad "build the every-kind store"
if "$BIN" export "$T/kinds" --cypher --batch-size 2 --to "$T/kinds.cypher" 2>"$T/err"; then
  ok "export --cypher of every value kind"
else bad "export --cypher of every value kind"; fi
lint_clean "every value kind: zero lint errors" "$T/kinds.cypher"

L=$SRC/data/ldbc-snb-example-graph
[ -d "$L" ] || L=$SRC/../shared/data/ldbc-snb-example-graph
if [ -d "$L" ]; then
  { echo 'creationDate|deletionDate|explicitlyDeleted:boolean|id:ID(Person)|firstName|lastName|gender|birthday|locationIP|browserUsed|city:long|language:string[]|email:string[]'
    tail -n +2 "$L/dynamic/Person.csv"; } >"$T/person.csv"
  { echo 'creationDate|deletionDate|explicitlyDeleted:boolean|:START_ID(Person)|:END_ID(Person)'
    tail -n +2 "$L/dynamic/Person_knows_Person.csv"; } >"$T/knows.csv"
  if "$BIN" import --delimiter='|' --id-type=integer --nodes=Person="$T/person.csv" \
    --relationships=KNOWS="$T/knows.csv" --into "$T/ldbc" --quiet &&
    "$BIN" export "$T/ldbc" --cypher --to "$T/ldbc.cypher"; then
    ok "export --cypher of the LDBC persons"
  else bad "export --cypher of the LDBC persons"; fi
  lint_clean "LDBC: zero lint errors" "$T/ldbc.cypher"
else
  bad "LDBC sample not found"
fi

seed=${SL_SEED:-$(($(date +%s) % 32768))}
echo "random graph: seed $seed (rerun with SL_SEED=$seed)"
RANDOM=$seed
VALUES=('true' '-9223372036854775808' '1984' '-0.0' '1e-300' '{"$double":"NaN"}' '{"$double":"-Infinity"}'
  '""' '"a\"b\\\\c\n"' '"é`x`"' '{"$bytes":"AP8="}' '[]' '[1,2]' '[1.5,{"$double":"Infinity"}]' '["x","y;z"]')
KEYS=('name' 'x:y' 'with space' 'back`tick' 'é')
{
  for id in $(seq 1 40); do
    props=""
    for k in "${KEYS[@]:0:$((RANDOM % 6))}"; do props+="${props:+,}\"$k\":${VALUES[RANDOM % ${#VALUES[@]}]}"; done
    printf '{"ops":[{"op":"create_node","id":%d,"labels":["L%d"],"props":{%s}}]}\n' "$id" $((RANDOM % 3)) "$props"
  done
  for id in $(seq 1 60); do
    printf '{"ops":[{"op":"create_rel","id":%d,"type":"T`%d","start":%d,"end":%d,"props":{"w":%s}}]}\n' \
      "$id" $((RANDOM % 2)) $((1 + RANDOM % 40)) $((1 + RANDOM % 40)) "${VALUES[RANDOM % ${#VALUES[@]}]}"
  done
} >"$T/random.jsonl"
"$BIN" init "$T/rnd" >/dev/null && "$BIN" exec "$T/rnd" "$T/random.jsonl" >/dev/null &&
  "$BIN" export "$T/rnd" --cypher --batch-size 7 --to "$T/rnd.cypher" 2>/dev/null ||
  bad "build and export the random graph"
lint_clean "random graph: zero lint errors" "$T/rnd.cypher"

# ---- the linter is not silent ------------------------------------------------------------------
{ cat "$T/kinds.cypher"; printf ':begin\nCREATE (:`A` {`x`:});\nMATCH (n RETURN n;\n:commit\n'; } >"$T/broken.cypher"
if lint "$T/broken.cypher"; then bad "a broken script fails the lint"; else
  if grep -q "errors" "$T/lint.out" && ! grep -q ": 0 errors" "$T/lint.out"; then ok "a broken script fails the lint"
  else bad "a broken script fails the lint (the linter did not run: $(head -3 "$T/lint.out"))"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
