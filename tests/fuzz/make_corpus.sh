#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/NAME/
# (committed; run again only when a format changes):
#   tests/fuzz/make_corpus.sh BUILD_DIR
# BUILD_DIR is a fuzz tree (tests/fuzz/run.sh makes it) with shiplog,
# bench_gen and fuzz-seeds. Seeds are small real files: a log segment, full
# and incremental dumps, mutation lines, a JSON Lines export, CSV exports,
# the openCypher TCK's queries, and (from fuzz-seeds) each replication
# message and sealed batches; for fuzz_sealed, a sealed frame and chunk
# (fuzz-seeds) and sealed dumps, under the target's fixed key.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
B=$(cd "${1:?usage: make_corpus.sh BUILD_DIR}" && pwd)
export ASAN_OPTIONS=detect_leaks=0
C=corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rm -rf "$C"
mkdir -p "$C"/{log,msg,batch,dump,mutation,import_jsonl,import_csv,sealed}

# A small store; its segment's first 4K are a seed.
"$B/shiplog" init "$T/s" --segment-size 65536 >/dev/null
"$B/bench_gen" --tx 40 --ops-per-tx 1-3 --seed 11 --nodes-first 5 \
  --ts-start 1700000000000000 --ts-step 1000 >"$T/w.jsonl"
"$B/shiplog" exec "$T/s" "$T/w.jsonl" >/dev/null
segs=("$T"/s/log/*.seg)
head -c 4096 "${segs[0]}" >"$C/log/segment"
tail -c +129 "${segs[0]}" | head -c 600 >"$C/log/frames"

# Mutation lines: the spec's examples and generated lines, a few per seed.
cat >"$C/mutation/spec" <<'M'
{"ops":[{"op":"create_node","id":1,"labels":["Person"],"props":{"name":"Ann","born":1984}},{"op":"create_node","id":2,"labels":["Person"],"props":{"name":"Bo"}},{"op":"create_rel","id":1,"type":"KNOWS","start":1,"end":2,"props":{"since":2019}}]}
{"ts":"2026-11-25T14:03:07Z","ops":[{"op":"set_node_prop","id":2,"key":"tags","value":["x","y"]}]}
{"ops":[{"op":"create_node","labels":["A"],"props":{"d":{"$double":"NaN"},"b":{"$bytes":"AAEC"},"l":[1,2],"e":[]}},{"op":"add_label","id":1,"label":"B"},{"op":"remove_label","id":1,"label":"A"}]}
{"ops":[{"op":"create_node","id":1},{"op":"create_node","id":2},{"op":"create_rel","id":3,"type":"R","start":1,"end":2},{"op":"set_rel_prop","id":3,"key":"k","value":1.5},{"op":"remove_rel_prop","id":3,"key":"k"},{"op":"delete_rel","id":3},{"op":"remove_node_prop","id":1,"key":"x"},{"op":"delete_node","id":1,"detach":true}]}
M
split -l 10 -d "$T/w.jsonl" "$C/mutation/gen-"

# Backups: a full dump and an incremental one.
"$B/shiplog" dump "$T/s" --to "$C/dump/full" >/dev/null
"$B/shiplog" dump "$T/s" --to "$C/dump/incremental" --since @1700000000.030 >/dev/null

# Exports: JSON Lines (canonical) and neo4j-admin CSV.
"$B/shiplog" export "$T/s" --to "$C/import_jsonl/canonical"
cat >"$C/import_jsonl/apoc" <<'J'
{"type":"node","id":"0","labels":["User"],"properties":{"name":"Ann","age":42,"tags":["a","b"]}}
{"type":"node","id":"1","labels":["User"],"properties":{"name":"Bo"}}
{"id":"0","type":"relationship","label":"KNOWS","properties":{"since":1993},"start":{"id":"0","labels":["User"]},"end":{"id":"1","labels":["User"]}}
J
# (bench_gen writes values CSV cannot hold: the spec's example graph instead)
"$B/shiplog" init "$T/c" >/dev/null
head -1 "$C/mutation/spec" | "$B/shiplog" exec "$T/c" - >/dev/null
"$B/shiplog" export "$T/c" --csv "$T/csv" >/dev/null
n=0
for nodes in "$T"/csv/*nodes*.csv; do
  for rels in "$T"/csv/*rel*.csv; do
    n=$((n + 1))
    { printf '\x00'; cat "$nodes"; printf '\x01\n'; cat "$rels"; } >"$C/import_csv/export-$n"
    [ "$n" -ge 3 ] && break 2
  done
done
{ printf '\x42'; printf 'id:ID,name,age:int,tags:string[],:LABEL\n1,Ann,42,a;b,User\n"2","B""o",,"",User;X\n'
  printf '\x01\n:START_ID,:END_ID,:TYPE,w:double\n1,2,KNOWS,1.5\n2,1,KNOWS,NaN\n'; } >"$C/import_csv/typed"

# Sealed dumps (the first byte selects fuzz_sealed's dump decoder), with
# fuzz_sealed.c's key.
(umask 077 && echo "fz 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" >"$T/keys")
"$B/shiplog" dump "$T/s" --to "$T/sealed.dump" --key-file "$T/keys" >/dev/null 2>&1
{ printf '\x02'; cat "$T/sealed.dump"; } >"$C/sealed/dump-full"
"$B/shiplog" dump "$T/s" --to "$T/sealed.dump" --since @1700000000.030 --key-file "$T/keys" >/dev/null 2>&1
{ printf '\x02'; cat "$T/sealed.dump"; } >"$C/sealed/dump-incremental"

# Cypher statements for fuzz_cypher and fuzz_query_exec: the openCypher
# TCK's queries (needs node).
node cypher_seeds.mjs "$C"

# Replication messages and batches (need the codec).
"$B/fuzz-seeds" "$T/s/log" "$C"
du -sh "$C"/* | sed 's/^/make_corpus: /'
