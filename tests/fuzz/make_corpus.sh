#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/NAME/
# (committed; run again only when a format changes):
#   tests/fuzz/make_corpus.sh BUILD_DIR
# BUILD_DIR is a fuzz tree (tests/fuzz/run.sh makes it) with shiplog,
# bench_gen and fuzz-seeds. Seeds are small real files: a log segment, full
# and incremental dumps, mutation lines, a JSON Lines export, CSV exports,
# the openCypher TCK's queries, and (from fuzz-seeds) each replication
# message, sealed batches and a property value of every kind (LMDB bytes
# and protobuf); for fuzz_sealed, a sealed frame and chunk (fuzz-seeds) and
# sealed dumps, under the target's fixed key.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
B=$(cd "${1:?usage: make_corpus.sh BUILD_DIR}" && pwd)
export ASAN_OPTIONS=detect_leaks=0
C=corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rm -rf "$C"
mkdir -p "$C"/{log,msg,batch,dump,mutation,import_jsonl,import_csv,sealed,value,temporal,tzif}

# A small store; its segment's first 4K are a seed.
"$B/shiplog" init "$T/s" --segment-size 65536 >/dev/null
"$B/bench_gen" --tx 40 --ops-per-tx 1-3 --seed 11 --nodes-first 5 \
  --ts-start 1700000000000000 --ts-step 1000 >"$T/w.jsonl"
"$B/shiplog" exec "$T/s" "$T/w.jsonl" >/dev/null
segs=("$T"/s/log/*.seg)
head -c 4096 "${segs[0]}" >"$C/log/segment"
tail -c +129 "${segs[0]}" | head -c 600 >"$C/log/frames"
# packed segments (store/log.h PACKED SEGMENTS): what follows the header
mkdir -p "$C/pack"
if command -v lz4 >/dev/null; then
  head -c 4096 "${segs[0]}" | tail -c +129 | lz4 -c --content-size >"$C/pack/segment"
  head -c 1000 "${segs[0]}" | tail -c +129 | lz4 -c --content-size >"$C/pack/cut-frame"
fi

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
# Schema: lines of an export with an index and constraints, the frames that
# create them, and a dump holding them.
cat >"$C/import_jsonl/schema" <<'J'
{"type":"node","id":"1","labels":["Person"],"properties":{"age":3,"name":"ann"}}
{"type":"relationship","id":"1","label":"KNOWS","start":{"id":"1","labels":["Person"]},"end":{"id":"1","labels":["Person"]},"properties":{"since":2020}}
{"type":"index","name":"knows_since","kind":"RANGE","entity":"relationship","label":"KNOWS","properties":["since"]}
{"type":"constraint","name":"person_name","kind":"UNIQUENESS","entity":"node","label":"Person","properties":["name"]}
{"type":"constraint","kind":"NODE_KEY","entity":"node","label":"Person","properties":["name","age"]}
J
"$B/shiplog" import "$C/import_jsonl/schema" --into "$T/sch" >/dev/null
segs=("$T"/sch/log/*.seg)
tail -c +129 "${segs[0]}" | head -c 2000 >"$C/log/schema"
"$B/shiplog" dump "$T/sch" --to "$C/dump/schema" >/dev/null
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

# Every value kind (spec/types.md): mutation lines, refusals among them,
# their canonical export, APOC point maps, and CSV columns of each type.
cat >"$C/mutation/values" <<'M'
{"ops":[{"op":"create_node","labels":["P"],"props":{"d":{"$date":"2024-02-29"},"lt":{"$localtime":"12:30:00.000000001"},"t":{"$time":"12:30+01:00"},"ldt":{"$localdatetime":"2024-02-29T12:30"},"dt":{"$datetime":"2024-02-29T12:30:00+01:00[Europe/Paris]"},"du":{"$duration":"P1Y2M3DT4H5M6.000000007S"},"p":{"$point":{"srid":4326,"x":1.5,"y":2}},"p3":{"$point":{"srid":9157,"x":1,"y":2,"z":3}},"ap":{"crs":"wgs-84-3d","latitude":1,"longitude":2,"height":3},"ds":[{"$date":"0001-01-01"},{"$date":"9999-12-31"}],"ps":[{"x":1,"y":2},{"x":3,"y":4}],"dts":[{"$datetime":"2024-02-29T12:30:00+01:00[Europe/Paris]"},{"$datetime":"-999999999-01-01T00:00:00Z"}],"dus":[{"$duration":"PT-0.5S"}]}},{"op":"create_node","labels":["Q"],"props":{"d":"x"}}]}
{"ops":[{"op":"create_node","labels":["P"],"props":{"d":{"$date":"2023-02-29"}}}]}
{"ops":[{"op":"create_node","labels":["P"],"props":{"z":{"$datetime":"2023-02-01T10:00[Mars/Olympus]"}}}]}
{"ops":[{"op":"create_node","labels":["P"],"props":{"du":{"$duration":"P999999999999Y"}}}]}
{"ops":[{"op":"create_node","labels":["P"],"props":{"p":{"$point":{"x":1,"y":2}}}}]}
{"ops":[{"op":"create_node","labels":["P"],"props":{"p":{"crs":"mars","x":1,"y":2}}}]}
{"ops":[{"op":"create_node","labels":["P"],"props":{"m":{"a":1}}}]}
M
"$B/shiplog" init "$T/v" >/dev/null
head -1 "$C/mutation/values" | "$B/shiplog" exec "$T/v" - >/dev/null
"$B/shiplog" export "$T/v" --to "$C/import_jsonl/values"
cat >"$C/import_jsonl/apoc-points" <<'J'
{"type":"node","id":"0","labels":["Place"],"properties":{"loc":{"crs":"wgs-84","latitude":55.6,"longitude":12.9},"at":{"crs":"cartesian-3d","x":1.0,"y":2.0,"z":3.0},"h":{"latitude":1,"longitude":2,"height":null},"born":"2015-07-21"}}
{"type":"node","id":"1","labels":["Place"],"properties":{"p":{"x":1,"y":2,"srid":7203},"route":[{"x":1,"y":2},{"x":3,"y":4}]}}
{"id":"0","type":"relationship","label":"NEAR","properties":{"d":{"$duration":"PT1H"}},"start":{"id":"0","labels":["Place"]},"end":{"id":"1","labels":["Place"]}}
J
{ printf '\x00'
  printf 'id:ID,d:date,lt:localtime,t:time,ldt:localdatetime,dt:datetime,du:duration,p:point,ds:date[],ps:point[],:LABEL\n'
  printf '1,2015-07-21,12:30:00.5,12:30+01:00,2015-W30-2T21:40,2015-07-21T21:40[Europe/Paris],P14DT16H12M,"{x:1,y:2,crs:'"'"'cartesian'"'"'}",2015-07-21;2015-202,"{latitude:1,longitude:2};{x:1,y:2,z:3}",User\n'
  printf '2,20150721,2140,21:40-05,2015T2140,2015-07-21T21:40:32.142-04[America/New_York],-PT0.5S,"{x:1,y:2,z:3,crs:cartesian-3d}",,,User\n'
  printf '\x01\n:START_ID,:END_ID,:TYPE,since:datetime,how:duration[]\n1,2,KNOWS,2015-07-21T21:40Z,P1D;PT1H\n'; } >"$C/import_csv/values"
{ printf '\x00'
  printf 'id:ID,loc:point{crs:WGS-84},at:datetime{timezone:Europe/Paris},t:time{timezone:+02:00}\n'
  printf '1,"{x:12.5,y:55.25}",2024-07-01T12:00,10:00\n'; } >"$C/import_csv/options"
# sl_temporal_parse: byte 0 the kind (0 date .. 5 duration), byte 1 the default zone.
i=0
while IFS='|' read -r k z t; do
  i=$((i + 1))
  printf "\\x$(printf %02x "$k")\\x$(printf %02x "$z")%s" "$t" >"$C/temporal/seed-$i"
done <<'T'
0|0|2015-07-21
0|0|2015-W30-2
0|0|2015Q260
0|0|+999999999-12-31
0|0|-0044-03-15
1|0|21:40:32.142
1|0|214032.000000001
2|0|21:40:32+01:00
2|2|12:00
3|0|2015-202T21:40:32.142
4|0|2024-02-29T12:30:00+01:00[Europe/Paris]
4|0|2024-10-27T02:30+01:00[Europe/Paris]
4|2|2024-03-31T02:30
4|1|2015T214032
4|0|1900-01-01T00:00:00+00:09:21[Europe/Paris]
5|0|P1Y2M3DT4H5M6.000000007S
5|0|PT0.75M
5|0|-P2012-02-02T14:37:21.545
5|0|P5M1.5D
5|0|PT-1H-30M
1|0|12:31:14.645800
4|0|2015-07-21T20:40Z
5|0|PT-1M-0.001S
T
# TZif files of the system's tzdata (public domain): fat v2, DST both
# hemispheres, half-hour DST, a zone without rules.
for z in Europe/Paris Australia/Lord_Howe UTC America/Sao_Paulo; do
  cp "${TZDIR:-/usr/share/zoneinfo}/$z" "$C/tzif/${z//\//-}"
done

# Cypher statements for fuzz_cypher and fuzz_query: the openCypher
# TCK's queries, and choices for fuzz_query_exec (needs node).
node cypher_seeds.mjs "$C"

# Replication messages and batches (need the codec).
"$B/fuzz-seeds" "$T/s/log" "$C"
# fuzz_bolt: Bolt conversations (tests/fuzz/seeds_bolt.c)
"$B/fuzz-seeds-bolt" "$C"
du -sh "$C"/* | sed 's/^/make_corpus: /'
