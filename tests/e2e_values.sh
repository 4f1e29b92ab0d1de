#!/usr/bin/env bash
# End-to-end test of Neo4j's whole value model (spec/types.md) through the
# shiplog binary: a graph holding every kind (dates, local times, times,
# local datetimes, datetimes with offsets and IANA zones, durations, points
# of the four coordinate systems, the extremes: years 1, 9999 and
# +-999999999, nanoseconds, negative durations, 3D points) and lists of
# each, plus a bench_gen workload of every kind, must come back
# byte-identical in the canonical export through:
#   1. exec -> export -> import -> export; `log --json` lines executed again;
#   2. dump | load;
#   3. ship to a receiver, then restore from its data;
#   4. export --csv -> import @import.args -> export;
#   5. export --cypher writes constructor calls;
#   6. refusals: a date that does not exist, an unknown zone, an
#      out-of-range duration, a point without or with an unknown CRS, a
#      map, named FILE:LINE and the key or column, nothing half imported.
# Needs $SL_BIN (and bench_gen beside it), jq. Exit 0 = pass.
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c restore -g jq
e2e_begin e2e_values

# ---- the graph -----------------------------------------------------------------------------
V=$T/values.jsonl
cat >"$V" <<'EOF'
{"ops":[{"op":"create_node","id":1,"labels":["Event"],"props":{"on":{"$date":"2024-02-29"},"first":{"$date":"0001-01-01"},"last":{"$date":"9999-12-31"},"far":{"$date":"+999999999-12-31"},"early":{"$date":"-999999999-01-01"},"at":{"$localtime":"12:30:00.000000001"},"t":{"$time":"23:59:59.999999999-18:00"},"ldt":{"$localdatetime":"2024-02-29T12:30"},"paris":{"$datetime":"2024-02-29T12:30:00+01:00[Europe/Paris]"},"fixed":{"$datetime":"2015-07-21T21:40:32.142+05:45"},"lmt":{"$datetime":"1900-01-01T00:00:00+00:09:21[Europe/Paris]"},"overlap":{"$datetime":"2024-10-27T02:30:00+01:00[Europe/Paris]"},"took":{"$duration":"P1Y2M3DT4H5M6.000000007S"},"back":{"$duration":"PT-1H-30M-0.5S"},"zero":{"$duration":"PT0S"},"here":{"$point":{"srid":4326,"x":12.5,"y":55.25}},"up":{"$point":{"srid":4979,"x":12.5,"y":55.25,"z":-30.5}},"xy":{"$point":{"srid":7203,"x":1e300,"y":-0.0}},"xyz":{"$point":{"srid":9157,"x":1.0,"y":2.0,"z":3.0}}}}]}
{"ops":[{"op":"create_node","id":2,"labels":["Event"],"props":{"on":[{"$date":"2024-02-29"},{"$date":"1970-01-01"}],"at":[{"$localtime":"00:00:00"},{"$localtime":"23:59:59.5"}],"t":[{"$time":"12:00:00Z"}],"ldt":[{"$localdatetime":"+999999999-12-31T23:59:59.999999999"}],"paris":[{"$datetime":"2024-07-01T00:00:00+02:00[Europe/Paris]"},{"$datetime":"2024-01-01T00:00:00-05:00[America/New_York]"}],"took":[{"$duration":"P14DT16H12M"},{"$duration":"P-1D"}],"here":[{"$point":{"srid":4326,"x":1.0,"y":2.0}},{"$point":{"srid":4326,"x":3.0,"y":4.0}}],"up":[{"$point":{"srid":9157,"x":1.0,"y":2.0,"z":3.0}}]}},{"op":"create_rel","id":1,"type":"NEXT","start":1,"end":2,"props":{"gap":{"$duration":"PT0.000000001S"},"when":{"$datetime":"2024-03-31T03:30:00+02:00[Europe/Paris]"}}}]}
EOF
A=$T/a
"$BIN" init "$A" >/dev/null
"$GEN" --tx 400 --ops-per-tx 1-4 --seed "$SEED" --id-base 1000 >"$T/gen.jsonl"
expect 0 "1: exec the graph of every kind and a bench_gen workload" \
  bash -c "'$BIN' exec '$A' '$V' --stop-on-error && '$BIN' exec '$A' '$T/gen.jsonl' --stop-on-error"
"$BIN" export "$A" --to "$T/a.jsonl"
for k in date localtime time localdatetime datetime duration point; do
  check "1: the export holds \$$k values" grep -q "\"\\\$$k\"" "$T/a.jsonl"
done
check "1: the zone and offset are kept as written" grep -q '"2024-02-29T12:30+01:00\[Europe/Paris\]"' "$T/a.jsonl"
check "1: the later offset of an overlap is kept" grep -q '"2024-10-27T02:30+01:00\[Europe/Paris\]"' "$T/a.jsonl"

same() { # same DESCRIPTION STORE: STORE's export equals a.jsonl byte for byte
  "$BIN" export "$2" --to "$T/cmp.jsonl" 2>"$T/err" && cmp -s "$T/a.jsonl" "$T/cmp.jsonl"
  if [ $? -eq 0 ]; then ok "$1"; else
    bad "$1"
    diff "$T/a.jsonl" "$T/cmp.jsonl" | head -4 | sed 's/^/    /'
  fi
}
expect 0 "1: import the export" "$BIN" import "$T/a.jsonl" --into "$T/b"
same "1: export | import | export is byte-identical" "$T/b"
"$BIN" log "$A" --json >"$T/replay.jsonl"
"$BIN" init "$T/c" >/dev/null
expect 0 "1: log --json lines execute again" "$BIN" exec "$T/c" "$T/replay.jsonl" --stop-on-error
same "1: ... and give the same graph" "$T/c"
check "1: log prints the kinds as the export does" grep -q '"\$duration":"PT-1H-30M-0.5S"' <("$BIN" log "$A")

# ---- 2. dump | load ----------------------------------------------------------------------------
expect 0 "2: dump" "$BIN" dump "$A" --to "$T/a.dump"
expect 0 "2: load" "$BIN" load "$T/a.dump" --into "$T/d"
same "2: the loaded store's export is byte-identical" "$T/d"

# ---- 3. ship + restore -------------------------------------------------------------------------
D=$T/data
start_receiver "$D" --insecure || exit 1
"$BIN" ship "$A" --to "127.0.0.1:$RX_PORT" --stream v --heartbeat-ms 200 --timeout-ms 3000 --insecure \
  2>>"$T/ship.log" &
pids+=($!)
L=$(e2e_last_txid "$A")
check "3: the standby applies every transaction ($L)" e2e_wait_applied "$D" v "$L" 120
expect 0 "3: restore to the last txid" "$BIN" restore --data "$D" --stream v --to-txid "$L" --into "$T/r"
same "3: the restored store's export is byte-identical" "$T/r"

# ---- 4. neo4j-admin CSV ------------------------------------------------------------------------
# (bench_gen writes lists of byte arrays, which CSV cannot hold: the graph alone)
"$BIN" init "$T/v" >/dev/null
"$BIN" exec "$T/v" "$V" >/dev/null
"$BIN" export "$T/v" --to "$T/v.jsonl"
expect 0 "4: export --csv" "$BIN" export "$T/v" --csv "$T/csv"
check "4: the header types name the kinds" grep -q 'on:date,.*paris:datetime' "$T/csv/nodes_1.csv"
check "4: lists of points are point[]" grep -q 'here:point\[\]' "$T/csv/nodes_2.csv"
expect 0 "4: import @import.args" bash -c "cd '$T/csv' && '$BIN' import @import.args --into '$T/w'"
"$BIN" export "$T/w" --to "$T/w.jsonl"
check "4: CSV out and in is byte-identical" cmp -s "$T/v.jsonl" "$T/w.jsonl"
printf 'id:ID,dt:datetime,t:time\n1,2020-01-01T10:00,10:00\n' >"$T/tz.csv"
expect 0 "4: --default-time-zone applies to cells without an offset" \
  "$BIN" import --nodes="$T/tz.csv" --into "$T/tz" --default-time-zone=+05:30
check "4: ... as an offset" grep -q '"2020-01-01T10:00+05:30"' <("$BIN" export "$T/tz")
check "4: ... and time cells" grep -q '"10:00+05:30"' <("$BIN" export "$T/tz")
printf 'id:ID,loc:point{crs:WGS-84},at:datetime{timezone:Europe/Paris},d:datetime\n1,"{x:12.5,y:55.25}",2024-07-01T12:00,2024-07-01T12:00\n' \
  >"$T/opts.csv"
expect 0 "4: header options {crs:..} and {timezone:..} (neo4j-admin's)" \
  "$BIN" import --nodes="$T/opts.csv" --into "$T/opts"
check "4: ... give the column's CRS" grep -q '"loc":{"\$point":{"srid":4326,"x":12.5,"y":55.25}}' <("$BIN" export "$T/opts")
check "4: ... and the column's zone, not the others'" \
  grep -q '"at":{"\$datetime":"2024-07-01T12:00+02:00\[Europe/Paris\]"},"d":{"\$datetime":"2024-07-01T12:00Z"}' \
  <("$BIN" export "$T/opts")

# ---- 5. cypher ---------------------------------------------------------------------------------
"$BIN" export "$T/v" --cypher --to "$T/v.cypher"
for f in 'date("2024-02-29")' 'localtime("12:30:00.000000001")' 'time("23:59:59.999999999-18:00")' \
  'localdatetime("2024-02-29T12:30")' 'datetime("2024-02-29T12:30+01:00[Europe/Paris]")' \
  'duration("P1Y2M3DT4H5M6.000000007S")' "point({x:12.5, y:55.25, z:-30.5, crs:'wgs-84-3d'})"; do
  check "5: export --cypher writes $f" grep -qF "$f" "$T/v.cypher"
done

# ---- 6. refusals -------------------------------------------------------------------------------
bad_line() { # bad_line DESCRIPTION KEY VALUE MESSAGE
  echo "{\"ops\":[{\"op\":\"create_node\",\"labels\":[],\"props\":{\"$2\":$3}}]}" >"$T/bad.jsonl"
  "$BIN" init "$T/e" >/dev/null 2>&1
  expect 1 "6: exec refuses $1" "$BIN" exec "$T/e" "$T/bad.jsonl"
  contains "$T/err" "bad.jsonl:1: op 1 (create_node): props: property \"$2\": " "6: ... naming the line and key"
  contains "$T/err" "$4" "6: ... and why"
  rm -rf "$T/e"
  echo "{\"type\":\"node\",\"id\":\"1\",\"labels\":[],\"properties\":{\"$2\":$3}}" >"$T/bad-export.jsonl"
  expect 1 "6: import refuses $1" "$BIN" import "$T/bad-export.jsonl" --into "$T/e"
  check "6: ... and leaves no store" [ ! -e "$T/e" ]
}
bad_line "a date that does not exist" d '{"$date":"2023-02-29"}' \
  "\$date: '2023-02-29' is not a date: February 2023 has 28 days"
bad_line "a zone not in the database" z '{"$datetime":"2023-02-01T10:00[Mars/Olympus]"}' \
  "unknown time zone 'Mars/Olympus'"
bad_line "an out-of-range duration" du '{"$duration":"P999999999999Y"}' "is not a duration: out of range"
bad_line "a point without a CRS" p '{"$point":{"x":1,"y":2}}' "\$point without a coordinate system"
bad_line "a point with an unknown CRS" p '{"crs":"mars","x":1,"y":2}' "point: unknown crs 'mars'"
bad_line "a map" m '{"a":1}' "map values are not supported"
printf 'id:ID,d:date\n1,2024-02-29\n2,2023-02-29\n' >"$T/bad.csv"
expect 1 "6: CSV import refuses a date that does not exist" "$BIN" import --nodes="$T/bad.csv" --into "$T/e"
contains "$T/err" "bad.csv:3: column 2 (d:date): '2023-02-29' is not a date" "6: ... naming FILE:LINE and the column"
check "6: ... and leaves no store" [ ! -e "$T/e" ]
printf 'id:ID,p:point\n1,"{x:1,y:2,crs:mars}"\n' >"$T/bad.csv"
expect 1 "6: CSV import refuses an unknown CRS" "$BIN" import --nodes="$T/bad.csv" --into "$T/e"
contains "$T/err" "bad.csv:2: column 2 (p:point): point: unknown crs 'mars'" "6: ... naming FILE:LINE and the column"
expect 2 "6: an unknown --default-time-zone is a usage error" \
  "$BIN" import --nodes="$T/tz.csv" --into "$T/e" --default-time-zone=Mars/Olympus

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
