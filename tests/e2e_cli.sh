#!/usr/bin/env bash
# End-to-end test of the store subcommands of the shiplog binary: init, exec,
# stats, log, verify, export, import, --help and usage errors.
# Needs $SL_BIN (the binary) and $SL_TEST_TMP (scratch); exit 0 = pass.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need
e2e_begin e2e_cli
same() { # same FILE1 FILE2 DESCRIPTION
  if cmp -s "$1" "$2"; then ok "$3"; else
    bad "$3"
    diff "$1" "$2" | head -10 | sed 's/^/    /'
  fi
}

# ---- --help and usage -------------------------------------------------------
expect 0 "shiplog --help" "$BIN" --help
for c in init exec stats log verify export import; do
  expect 0 "$c --help" "$BIN" "$c" --help
  contains "$T/out" "Usage: shiplog $c" "$c --help shows its usage"
done
expect 2 "no command" "$BIN"
expect 2 "unknown command" "$BIN" frobnicate
contains "$T/err" "unknown command 'frobnicate'" "unknown command named"
expect 2 "init without DIR" "$BIN" init
expect 2 "init with a bad size" "$BIN" init "$T/x" --segment-size 12Q
expect 2 "init with a tiny segment" "$BIN" init "$T/x" --segment-size 100
expect 2 "exec without FILE" "$BIN" exec "$T/x"
expect 2 "log with a bad txid" "$BIN" log "$T/x" --from-txid abc
expect 2 "log with a bad time" "$BIN" log "$T/x" --since yesterday
expect 2 "stats with an unknown option" "$BIN" stats "$T/x" --bogus
expect 2 "import without --into" "$BIN" import "$T/x"
expect 2 "verify with two dirs" "$BIN" verify "$T/x" "$T/y"
[ ! -e "$T/x" ] && ok "usage errors create nothing" || bad "usage errors create nothing"
expect 1 "stats on a missing store" "$BIN" stats "$T/nostore"
contains "$T/err" "$T/nostore" "the error names the directory"
# Usage errors name the program once, also after options getopt took.
expect 2 "stats with an unknown option after others" "$BIN" stats "$T/x" --json --bogus
contains "$T/err" "shiplog stats: unrecognized option '--bogus'" "a usage error names 'shiplog stats'"
grep -q "shiplog shiplog" "$T/err" && bad "the program is named once" || ok "the program is named once"
# A --config file's bytes quoted in an error reach the terminal escaped (\xNN:
# controls, C1 characters, bytes that are not UTF-8), still naming FILE:LINE.
printf 'json = true\nk\033[2J\007\377\302\233\303\251 = 1\n' >"$T/hostile.conf"
expect 2 "a config key of control and stray bytes is refused" "$BIN" stats "$T/x" --config "$T/hostile.conf"
contains "$T/err" "$T/hostile.conf:2: unknown key 'k\x1b[2J\x07\xff\xc2\x9bé'" \
  "...quoted with \\xNN escapes (valid UTF-8 kept), naming FILE:LINE"
clean_text() { # FILE: valid UTF-8, and no control byte but newlines, no C1
  iconv -f UTF-8 -t UTF-8 "$1" >/dev/null 2>&1 &&
    ! LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$1" && ! LC_ALL=C grep -q $'\xc2[\x80-\x9f]' "$1"
}
check "...and stderr holds no control or stray byte" clean_text "$T/err"
LC_ALL=C awk -v s="$SEED" 'BEGIN { srand(s); for (i = 0; i < 4096; i++) printf "%c", 1 + int(rand() * 255) }' >"$T/random.conf"
expect 2 "a config file of random bytes is refused" "$BIN" stats "$T/x" --config "$T/random.conf"
contains "$T/err" "$T/random.conf:" "...naming the file"
check "...and stderr holds no control or stray byte" clean_text "$T/err"
VERSION=$(sed -nE 's/^project\(shiplog VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
expect 0 "--version" "$BIN" --version
check "--version prints 'shiplog $VERSION'" [ "$(cat "$T/out")" = "shiplog $VERSION" ]
expect 0 "version" "$BIN" version
check "version prints 'shiplog $VERSION'" [ "$(cat "$T/out")" = "shiplog $VERSION" ]

# ---- init, exec ------------------------------------------------------------------
S=$T/store
expect 0 "init" "$BIN" init "$S" --segment-size 4K
expect 1 "init on a non-empty store" "$BIN" init "$S"

# The example of spec/mutations.md, with a "ts" on every line so that the
# commit times (and so the log) are the same on every run.
cat >"$T/example.jsonl" <<'EOF'
{"ts":"2026-11-25T14:00:00Z","ops":[{"op":"create_node","id":1,"labels":["Person"],"props":{"name":"Ann","born":1984}},{"op":"create_node","id":2,"labels":["Person"],"props":{"name":"Bo"}},{"op":"create_rel","id":1,"type":"KNOWS","start":1,"end":2,"props":{"since":2019}}]}
{"ts":"2026-11-25T14:03:07Z","ops":[{"op":"set_node_prop","id":2,"key":"tags","value":["x","y"]}]}
// a comment, then a blank line

{"ts":"2026-11-25T14:05:00Z","ops":[{"op":"delete_node","id":1,"detach":true}]}
EOF
expect 0 "exec the example" "$BIN" exec "$S" "$T/example.jsonl"
[ ! -s "$T/out" ] && ok "no ids printed when all were given" || bad "no ids printed when all were given"

cat >"$T/kinds.jsonl" <<'EOF'
{"ts":"2026-11-25T14:10:00Z","ops":[{"op":"create_node","labels":["Z","A"],"props":{"d":1.0,"e":0.1,"big":1e300,"neg":-0.0,"nan":{"$double":"NaN"},"inf":{"$double":"-Infinity"},"b":{"$bytes":"AAEC"},"s":"q\"\\\n\u0001é","l":[],"li":[1,2],"t":true}},{"op":"create_rel","type":"LIKES","start":2,"end":3,"props":{"w":2.5}}]}
EOF
expect 0 "exec from stdin" sh -c "'$BIN' exec '$S' - < '$T/kinds.jsonl'"
printf 'node 3\nrel 2\n' >"$T/ids.want"
same "$T/out" "$T/ids.want" "exec prints the assigned ids"

# ---- bad lines ---------------------------------------------------------------------
cat >"$T/bad.jsonl" <<'EOF'
{"ts":"2026-11-25T14:20:00Z","ops":[{"op":"add_label","id":2,"label":"Good"}]}
{"ops":[{"op":"add_label","id":2,"label":"Half"},{"op":"explode","id":2}]}
{"ops":[{"op":"create_node","id":2,"labels":[]}]}
{"ops": [
{"ts":"2026-11-25T14:21:00Z","ops":[{"op":"add_label","id":3,"label":"Good"}]}
EOF
expect 1 "exec with bad lines fails" "$BIN" exec "$S" "$T/bad.jsonl"
contains "$T/err" "$T/bad.jsonl:2: op 2: unknown op" "bad op reported as FILE:LINE"
contains "$T/err" "$T/bad.jsonl:3: op 1 (create_node): node 2" "duplicate id reported as FILE:LINE"
contains "$T/err" "$T/bad.jsonl:4: " "malformed JSON reported as FILE:LINE"
printf '{"ops":[{"op":"explode"}]}\n{"ops":[{"op":"create_node","id":2,"labels":[]}]}\n' >"$T/stop.jsonl"
expect 1 "stop-on-error" "$BIN" exec "$S" "$T/stop.jsonl" --stop-on-error
contains "$T/err" 'stop.jsonl:1: op 1: unknown op "explode"' "stop-on-error reports the first bad line"
if grep -q "stop.jsonl:2:" "$T/err"; then bad "stop-on-error stops there"; else ok "stop-on-error stops there"; fi

# ---- export: golden ---------------------------------------------------------------------
cat >"$T/golden.jsonl" <<'EOF'
{"type":"node","id":"2","labels":["Good","Person"],"properties":{"name":"Bo","tags":["x","y"]}}
{"type":"node","id":"3","labels":["A","Good","Z"],"properties":{"b":{"$bytes":"AAEC"},"big":1e+300,"d":1.0,"e":0.1,"inf":{"$double":"-Infinity"},"l":[],"li":[1,2],"nan":{"$double":"NaN"},"neg":-0.0,"s":"q\"\\\u000a\u0001é","t":true}}
{"type":"relationship","id":"2","label":"LIKES","start":{"id":"2","labels":["Good","Person"]},"end":{"id":"3","labels":["A","Good","Z"]},"properties":{"w":2.5}}
EOF
expect 0 "export" "$BIN" export "$S"
cp "$T/out" "$T/a.jsonl"
same "$T/a.jsonl" "$T/golden.jsonl" "export equals the golden file"
expect 0 "export --to" "$BIN" export "$S" --to "$T/a2.jsonl"
same "$T/a2.jsonl" "$T/golden.jsonl" "export --to writes the same bytes"
[ ! -e "$T/a2.jsonl.tmp" ] && ok "no temporary file left" || bad "no temporary file left"

# ---- import -----------------------------------------------------------------------------
expect 0 "import" "$BIN" import "$T/a.jsonl" --into "$T/imp" --quiet
expect 0 "export the import" "$BIN" export "$T/imp"
same "$T/out" "$T/golden.jsonl" "export | import | export is the identity"
expect 0 "import from stdin" sh -c "'$BIN' export '$S' | '$BIN' import - --into '$T/imp2'"
expect 0 "export the stdin import" "$BIN" export "$T/imp2"
same "$T/out" "$T/golden.jsonl" "export | import - | export is the identity"
expect 1 "import into a non-empty store" "$BIN" import "$T/a.jsonl" --into "$T/imp"
printf '{"type":"node","id":"1","labels":[]}\n{"type":"node","id":"2","labels":[],"properties":{"p":{"crs":"wgs-84"}}}\n' >"$T/point.jsonl"
expect 1 "import refuses a map that is no point (crs alone)" "$BIN" import "$T/point.jsonl" --into "$T/imp3"
contains "$T/err" "$T/point.jsonl:2: properties: property \"p\": map values are not supported" "the refusal names FILE:LINE"
[ ! -e "$T/imp3" ] && ok "a failed import leaves nothing" || bad "a failed import leaves nothing"

# ---- stats ------------------------------------------------------------------------------
expect 0 "stats" "$BIN" stats "$S"
contains "$T/out" "nodes          2" "stats counts nodes"
expect 0 "stats --json" "$BIN" stats "$S" --json
contains "$T/out" '"nodes":2,"relationships":1,"last_txid":6,' "stats --json counts and last txid"
contains "$T/out" '"last_commit":"2026-11-25T14:21:00Z"' "stats --json last commit time"
contains "$T/out" '"durable_txid":6' "stats --json durable txid"
jq -e . "$T/out" >/dev/null && ok "stats --json is JSON" || bad "stats --json is JSON"
check "stats --json gives the version" jqe --arg v "$VERSION" '.version == $v' "$T/out"
expect 0 "status STORE --json" "$BIN" status "$S" --json
check "status --json gives the version" jqe --arg v "$VERSION" '.version == $v' "$T/out"

# ---- log ---------------------------------------------------------------------------------
expect 0 "log" "$BIN" log "$S"
[ "$(wc -l <"$T/out")" -eq 6 ] && ok "log prints 6 records" || bad "log prints 6 records"
contains "$T/out" '1 2026-11-25T14:00:00Z create_node id=1 labels=[Person] props={name:"Ann",born:1984}; create_node id=2' "log text form"
contains "$T/out" '3 2026-11-25T14:05:00Z delete_node id=1 detach=true' "log shows delete_node"
expect 0 "log --since" "$BIN" log "$S" --since 2026-11-25T14:03:07Z
[ "$(wc -l <"$T/out")" -eq 4 ] && ok "log --since skips the first two" || bad "log --since skips the first two"
expect 0 "log --since a date alone" "$BIN" log "$S" --since 2026-11-25
[ "$(wc -l <"$T/out")" -eq 6 ] && ok "a date alone is midnight UTC: all 6 follow it" || bad "a date alone is midnight UTC: all 6 follow it"
expect 0 "log --since the next day" "$BIN" log "$S" --since 2026-11-26
[ ! -s "$T/out" ] && ok "nothing follows the next day's midnight" || bad "nothing follows the next day's midnight"
expect 0 "log --from-txid" "$BIN" log "$S" --from-txid 5 --json
[ "$(wc -l <"$T/out")" -eq 2 ] && ok "log --from-txid 5 prints 2" || bad "log --from-txid 5 prints 2"
contains "$T/out" '{"txid":5,"ts":"2026-11-25T14:20:00Z","commit_time_us":' "log --json form"
expect 0 "log --json" "$BIN" log "$S" --json
cp "$T/out" "$T/log.jsonl"
expect 0 "init a replay store" "$BIN" init "$T/rep"
expect 0 "exec the log --json output" "$BIN" exec "$T/rep" "$T/log.jsonl"
expect 0 "export the replay" "$BIN" export "$T/rep"
same "$T/out" "$T/golden.jsonl" "log --json re-executes to the same graph"

# ---- verify ------------------------------------------------------------------------------
expect 0 "verify" "$BIN" verify "$S"
contains "$T/out" "OK" "verify says OK"
contains "$T/out" "equals a replay" "verify compared the state"

# Many small transactions over several 4 KiB segments, kept by a consumer
# that has confirmed nothing (else checkpoints prune them).
B=$T/big
expect 0 "init big" "$BIN" init "$B" --segment-size 4K
mkdir -p "$B/log/consumers" && echo 0 >"$B/log/consumers/e2e"
for i in $(seq 1 300); do
  printf '{"ops":[{"op":"create_node","id":%d,"labels":["N"],"props":{"i":%d,"s":"%0100d"}}]}\n' "$i" "$i" 0
done >"$T/many.jsonl"
expect 0 "exec 300 transactions" "$BIN" exec "$B" "$T/many.jsonl"
expect 0 "stats big" "$BIN" stats "$B" --json
if jq -e '.log.segments > 3' "$T/out" >/dev/null; then
  ok "the log spans several segments"; else bad "the log spans several segments"; fi
expect 0 "log big" "$BIN" log "$B"
[ "$(wc -l <"$T/out")" -eq 300 ] && ok "log reads across segments" || bad "log reads across segments"
expect 0 "verify big" "$BIN" verify "$B"
contains "$T/out" "equals a replay" "verify replays across segments"

# Without the consumer, segments are pruned: the state is checked for consistency only.
P=$T/pruned
expect 0 "init pruned" "$BIN" init "$P" --segment-size 4K
expect 0 "exec 300 transactions (pruned)" "$BIN" exec "$P" "$T/many.jsonl"
expect 0 "verify pruned" "$BIN" verify "$P"
contains "$T/out" "is consistent (" "verify checks the consistency of a pruned store"
contains "$T/out" "not compared with a replay: the log begins at txid" "verify says why it did not replay"
expect 1 "log --from-txid before the oldest segment" "$BIN" log "$P" --from-txid 1
contains "$T/err" "no longer in the log" "log says the txid was pruned"

# A flipped byte inside the first frame's payload.
cp -r "$S" "$T/damaged"
seg=$(ls "$T/damaged/log/"*.seg | head -1)
byte=$(od -An -tu1 -j150 -N1 "$seg" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte ^ 0xff) & 0xff)))" | dd of="$seg" bs=1 seek=150 conv=notrunc status=none
expect 1 "verify finds a flipped byte" "$BIN" verify "$T/damaged"
contains "$T/err" "$(basename "$seg")" "the damage report names the segment"
contains "$T/err" "offset" "the damage report names the offset"
expect 1 "log refuses a damaged durable frame" "$BIN" log "$T/damaged"
contains "$T/err" "$(basename "$seg")" "log names the damaged segment"

# ---- id 0 is an id like any other -----------------------------------------------------
# A Neo4j (APOC) export counts ids from 0: import keeps them; exec, the log,
# verify's replay, dump/load and export all carry id 0 as itself.
Z=$T/zero
cat >"$T/apoc0.json" <<'EOF'
{"type":"node","id":"0","labels":["User"],"properties":{"name":"Adam"}}
{"type":"node","id":"1","labels":["User"],"properties":{"name":"Jim"}}
{"id":"0","type":"relationship","label":"KNOWS","properties":{},"start":{"id":"0","labels":["User"]},"end":{"id":"1","labels":["User"]}}
EOF
expect 0 "import an APOC export whose ids start at 0" "$BIN" import "$T/apoc0.json" --into "$Z"
expect 0 "export it" "$BIN" export "$Z"
contains "$T/out" '{"type":"node","id":"0","labels":["User"],"properties":{"name":"Adam"}}' "node 0 keeps its id"
contains "$T/out" '"id":"0","label":"KNOWS","start":{"id":"0"' "relationship 0 keeps its id and its start"
echo '{"ops":[{"op":"create_node","labels":["New"]},{"op":"delete_node","id":0,"detach":true},{"op":"create_node","id":0,"labels":["Again"]}]}' >"$T/zero.jsonl"
expect 0 "exec: no id assigns the next free one, id 0 is taken as given" "$BIN" exec "$Z" "$T/zero.jsonl"
[ "$(cat "$T/out")" = "node 2" ] && ok "the assigned id is 2, not 0" || bad "the assigned id is 2, not 0 (got: $(cat "$T/out"))"
expect 0 "log shows id 0" "$BIN" log "$Z" --json
contains "$T/out" '{"op":"create_node","id":0,"labels":["Again"]' "the log holds create_node id 0"
expect 0 "verify: a replay of the log creates id 0 again" "$BIN" verify "$Z"
"$BIN" export "$Z" >"$T/zero.export"
expect 0 "dump a store holding id 0" "$BIN" dump "$Z" --to "$T/zero.dump"
expect 0 "load it" "$BIN" load "$T/zero.dump" --into "$T/zero2"
"$BIN" export "$T/zero2" >"$T/zero2.export"
same "$T/zero.export" "$T/zero2.export" "dump/load keeps id 0"
expect 0 "import the export back" "$BIN" import "$T/zero.export" --into "$T/zero3"
"$BIN" export "$T/zero3" >"$T/zero3.export"
same "$T/zero.export" "$T/zero3.export" "export | import | export keeps id 0"

# ---- bounds: transaction size, line length ---------------------------------------------
# A transaction is bounded by what a receiver can take (64 MiB less room for
# sealing): a larger one is refused before anything is logged, naming the
# line. A line longer than 128 MiB is refused without being held in memory.
BIGS=$T/bigs
"$BIN" init "$BIGS" >/dev/null
{
  echo '{"ops":[{"op":"create_node","labels":["Small"]}]}'
  printf '{"ops":[{"op":"create_node","labels":[],"props":{"s":"'
  head -c 67200000 /dev/zero | tr '\0' x
  printf '"}}]}\n'
  echo '{"ops":[{"op":"create_node","labels":["After"]}]}'
} >"$T/big.jsonl"
expect 1 "exec refuses a transaction over the limit" "$BIN" exec "$BIGS" "$T/big.jsonl"
contains "$T/err" "big.jsonl:2: op 1 (create_node): transaction too large:" "the refusal names FILE:LINE"
contains "$T/err" "the limit is 67104768" "and the limit"
"$BIN" log "$BIGS" --json >"$T/out"
[ "$(wc -l <"$T/out")" = 2 ] && ok "nothing of it was logged; the lines around it were" || bad "nothing of it was logged; the lines around it were"
rm -f "$T/big.jsonl"
expect 1 "exec refuses a line longer than 128 MiB" sh -c "{ head -c 140000000 /dev/zero; echo; echo '{\"ops\":[{\"op\":\"create_node\",\"labels\":[\"Next\"]}]}'; } | '$BIN' exec '$BIGS' -"
contains "$T/err" "<stdin>:1: line longer than 134217728 bytes" "the refusal names the line and the limit"
contains "$T/out" "node 3" "the next line is applied"
expect 1 "exec --stop-on-error ends at an endless line" timeout 20 "$BIN" exec "$BIGS" /dev/zero --stop-on-error
contains "$T/err" "/dev/zero:1: line longer than" "and says so"

# ---- beside a running writer ----------------------------------------------------------
W=$T/w
expect 0 "init w" "$BIN" init "$W"
mkfifo "$T/fifo"
"$BIN" exec "$W" "$T/fifo" >"$T/w.out" 2>"$T/w.err" &
wpid=$!
exec 7>"$T/fifo"
echo '{"ops":[{"op":"create_node","labels":["A"]}]}' >&7
e2e_until 60 grep -q "node 1" "$T/w.out"
contains "$T/w.out" "node 1" "exec prints an id as soon as it commits"
expect 0 "stats beside a writer" "$BIN" stats "$W" --json
contains "$T/out" '"nodes":1,' "stats sees the writer's commit"
expect 0 "verify beside a writer" "$BIN" verify "$W"
expect 0 "export beside a writer" "$BIN" export "$W"
contains "$T/out" '{"type":"node","id":"1","labels":["A"],"properties":{}}' "export sees the writer's commit"
expect 0 "log beside a writer" "$BIN" log "$W"
expect 1 "a second writer is refused" "$BIN" exec "$W" "$T/example.jsonl"
contains "$T/err" "$W: cannot open store" "the refusal names the store"
exec 7>&-
wait "$wpid" && ok "the writer ends cleanly" || bad "the writer ends cleanly"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
