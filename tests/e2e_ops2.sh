#!/usr/bin/env bash
# End-to-end test of the day-to-day commands a DBA runs (README "Day-to-day
# operation"), real processes on 127.0.0.1:
#   1. consumers: a shipper's consumer is ship-STREAM@RECEIVER, so two
#      receivers that both serve stream "main" hold the primary's log each
#      for itself; `consumers` lists them with their txid and age; a consumer
#      that has not moved for a day (mtime set back) is STALE there and in
#      `status STORE`; `consumers --drop` removes it and a checkpoint prunes.
#   2. info --data: the restorable window (txids and times), snapshots,
#      segments (sealed / active), the standby's applied txid.
#   3. check: a dump file (whole, then one flipped byte: exit 1 naming the
#      offset), a dump chain (whole, then damaged), a receiver's stream
#      (whole, then a flipped byte in a sealed archive segment: exit 1 naming
#      the segment; still restorable from a later snapshot, said as a GAP;
#      without the archive's durable mark, read to its end, with a warning).
#   4. prune --dry-run removes nothing and names exactly what prune removes.
#   5. dump refuses an existing FILE without --overwrite; load --into a store
#      with --overwrite-destination keeps the old one aside.
#   6. --json on dump, load, import, export, verify, exec, restore, snapshot:
#      one object with figures and "version"; exec's summary line (not with
#      --quiet); verify of a loaded store checks its state's consistency.
#   7. TIME takes a date alone.
# Needs $SL_BIN, $SL_BUILD/bench_gen and jq.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -g -c info jq
e2e_begin e2e_ops2
version=$("$BIN" --version | awk '{print $NF}')
# one_json FILE: exactly one line, a JSON object that carries the version
one_json() { [ "$(wc -l <"$1")" -eq 1 ] && jq -e --arg v "$version" 'type == "object" and .version == $v' "$1" >/dev/null; }
no_cr() { ! grep -q $'\r' "$1"; }
log_first() { "$BIN" stats "$1" --json | jq -r .log.first_txid; }

P=$T/p D1=$T/d1 D2=$T/d2
"$BIN" init "$P" --segment-size 16K >/dev/null
e2e_gen "$T/w1" 400 1 1-4
"$BIN" exec "$P" "$T/w1" --quiet >/dev/null
start_receiver "$D1" --segment-size 16K --insecure || exit 1
PORT1=$RX_PORT
start_receiver "$D2" --segment-size 16K --insecure || exit 1
PORT2=$RX_PORT
ship_once() { "$BIN" ship "$P" --to "127.0.0.1:$1" --stream main --insecure --exit-when-caught-up 2>>"$T/ship.log"; }

# ---- 1. consumers ----------------------------------------------------------------------
check "1: ship to receiver 1" ship_once "$PORT1"
check "1: ship the same stream name to receiver 2" ship_once "$PORT2"
C1=ship-main@127.0.0.1_$PORT1 C2=ship-main@127.0.0.1_$PORT2
check "1: each receiver has its own consumer file ($C1, $C2)" \
  test -f "$P/log/consumers/$C1" -a -f "$P/log/consumers/$C2" -a ! -e "$P/log/consumers/ship-main"
e2e_gen "$T/w2" 300 2 1-4
"$BIN" exec "$P" "$T/w2" --quiet >/dev/null
check "1: receiver 1 follows" ship_once "$PORT1"
L=$(e2e_last_txid "$P")
expect 0 "1: consumers --json" "$BIN" consumers "$P" --json
cp "$T/out" "$T/cons.json"
check "1: receiver 1's consumer is at txid $L, receiver 2's behind it, none stale yet" \
  jqe --arg a "$C1" --arg b "$C2" --argjson l "$L" '(.consumers | map({(.name): .}) | add) as $c |
    $c[$a].txid == $l and $c[$b].txid < $l and $c[$b].behind == $l - $c[$b].txid and
    $c[$b].holds_bytes > 0 and .stale == 0 and $c[$a].kind == "shipper"' "$T/cons.json"
touch -d '3 days ago' "$P/log/consumers/$C2" # receiver 2 is gone for good
expect 0 "1: consumers (table)" "$BIN" consumers "$P"
check "1: the table marks receiver 2's consumer STALE" grep -q "^$C2 .*STALE" "$T/out"
expect 0 "1: status STORE" "$BIN" status "$P"
contains "$T/out" "stale consumer $C2" "1: status STORE names the stale consumer"
contains "$T/out" "consumers STORE --drop $C2" "1: and says how to drop it"
expect 0 "1: status STORE --json" "$BIN" status "$P" --json
check "1: status --json counts it" jqe '.stale_consumers == 1 and (.consumers | length) == 1' "$T/out"
expect 1 "1: consumers --drop of an unknown name fails" "$BIN" consumers "$P" --drop nosuch
contains "$T/err" 'no consumer named "nosuch"' "1: naming it"
HELD=$(cat "$P/log/consumers/$C2")
e2e_gen "$T/w3" 200 3 1-4
"$BIN" exec "$P" "$T/w3" --quiet >/dev/null
check "1: receiver 1 follows" ship_once "$PORT1"
check "1: while it is there, the stale consumer holds the log at txid $HELD" test "$(log_first "$P")" -le $((HELD + 1))
expect 0 "1: consumers --drop" "$BIN" consumers "$P" --drop "$C2"
check "1: its file is gone" test ! -e "$P/log/consumers/$C2"
e2e_gen "$T/w3b" 200 31 1-4
"$BIN" exec "$P" "$T/w3b" --quiet >/dev/null # checkpoints now prune past it
check "1: receiver 1 follows again" ship_once "$PORT1"
check "1: once it is dropped, checkpoints prune the log past txid $HELD" test "$(log_first "$P")" -gt $((HELD + 1))

# ---- 2. info --data ----------------------------------------------------------------------
L=$(e2e_last_txid "$P")
check "2: the standby applied txid $L" e2e_wait_applied "$D1" main "$L" 60
expect 0 "2: snapshot --json" "$BIN" snapshot --data "$D1" --stream main --json
check "2: snapshot --json is one object with the version" one_json "$T/out"
S1=$(jq -r .txid "$T/out")
e2e_gen "$T/w4" 200 4 1-4
"$BIN" exec "$P" "$T/w4" --quiet >/dev/null
ship_once "$PORT1"
L=$(e2e_last_txid "$P")
e2e_wait_applied "$D1" main "$L" 60
"$BIN" snapshot --data "$D1" --stream main >/dev/null
expect 0 "2: info --data --json" "$BIN" info --data "$D1" --json
cp "$T/out" "$T/info.json"
check "2: one stream, restorable through txid $L, from a snapshot, applied $L" \
  jqe --argjson l "$L" '.streams | length == 1 and .[0].stream == "main" and .[0].restorable and
    .[0].window.last_txid == $l and .[0].window.last_commit_us > 0 and .[0].applied == $l and
    .[0].window.first_txid <= .[0].window.last_txid' "$T/info.json"
check "2: the snapshots (txid, size, base) and segments (one active, the others sealed and contiguous)" \
  jqe --argjson s "$S1" '.streams[0] | (.snapshots | map(.txid) | index($s)) != null and
    (.snapshots | all(.bytes > 0 and .base)) and (.segments | map(select(.state == "active")) | length) == 1 and
    ([.segments as $g | range(1; $g | length) | $g[.].first_txid == $g[. - 1].last_txid + 1] | all)' "$T/info.json"
expect 0 "2: info --data (text)" "$BIN" info --data "$D1" --stream main
contains "$T/out" "restorable   txids" "2: the text names the window"
contains "$T/out" "active" "2: and the active segment"
expect 1 "2: info of a missing stream" "$BIN" info --data "$D1" --stream nosuch
expect 2 "2: info needs --data or --from" "$BIN" info

# ---- 3. check ----------------------------------------------------------------------------
expect 0 "3: dump --json" "$BIN" dump "$P" --to "$T/full.dump" --json
check "3: dump --json: one object, full, through txid $L" one_json "$T/out"
check "3: with its figures" jqe --argjson l "$L" '.dump == "full" and .last_txid == $l and .records > 0 and .bytes > 0' "$T/out"
expect 0 "3: check FILE" "$BIN" check "$T/full.dump"
contains "$T/out" "OK: full dump" "3: check says OK"
cp "$T/full.dump" "$T/bad.dump"
flip "$T/bad.dump" 300
expect 1 "3: check of a damaged dump fails" "$BIN" check "$T/bad.dump"
contains "$T/err" "bad.dump: offset 128" "3: naming the file and the chunk's offset"
expect 1 "3: check --json of a damaged dump" "$BIN" check "$T/bad.dump" --json
check "3: says ok false" jqe '.ok == false' "$T/out"
mkdir -p "$T/chain"
"$BIN" dump "$P" --chain "$T/chain" --quiet
e2e_gen "$T/w5" 50 5 1-4
"$BIN" exec "$P" "$T/w5" --quiet >/dev/null
"$BIN" dump "$P" --chain "$T/chain" --quiet
expect 0 "3: check --chain" "$BIN" check --chain "$T/chain"
incr=$(ls "$T/chain"/*incr*.dump | head -1)
flip "$incr" $(($(size "$incr") - 10))
expect 1 "3: check --chain with a damaged incremental" "$BIN" check --chain "$T/chain"
contains "$T/err" "$(basename "$incr")" "3: names the file"
expect 0 "3: check --data --stream" "$BIN" check --data "$D1" --stream main
contains "$T/out" "OK" "3: the stream is whole"
cp -a "$D1" "$T/dx"
seg=$("$BIN" info --data "$T/dx" --stream main --json | jq -r '[.streams[0].segments[] | select(.state == "sealed")][-1].path')
flip "$seg" $(($(size "$seg") / 2))
expect 1 "3: check --data with a flipped byte in a sealed segment" "$BIN" check --data "$T/dx" --stream main
contains "$T/err" "$(basename "$seg")" "3: names the segment"
contains "$T/out" "DAMAGED  segment" "3: and marks it"
expect 1 "3: check --data --json" "$BIN" check --data "$T/dx" --stream main --json
check "3: json: one damaged file" jqe '.ok == false and .damaged == 1 and (.files | map(select(.ok | not)) | length) == 1' "$T/out"
rm -rf "$T/dx"
cp -a "$D1" "$T/dx"
snap=$(ls "$T/dx/streams/main/snapshots/"*.snap | head -1)
if [ -n "$snap" ]; then
  flip "$snap" 10 # the header: the inventory leaves the file out, check must not
  expect 1 "3: check --data with a snapshot whose header is damaged" "$BIN" check --data "$T/dx" --stream main
  contains "$T/out" "DAMAGED  snapshot" "3: marks the snapshot"
  contains "$T/err" "$(basename "$snap")" "3: names it"
else
  skip "3: a damaged snapshot header (the stream has no snapshot)"
fi
# The archive's durable mark is derived (a receiver rewrites it): without
# it, check and restore read the archive's end from its newest segment,
# and say so; they used to take the archive for empty.
rm -rf "$T/dx"
cp -a "$D1" "$T/dx"
"$BIN" check --data "$D1" --stream main --json >"$T/whole.json"
rm "$T/dx/streams/main/archive/durable"
expect 0 "3: check --data without the archive's durable mark" "$BIN" check --data "$T/dx" --stream main --json
check "3: ...finds the same durable txid and frames" \
  jqe --slurpfile w "$T/whole.json" '.restorable and .durable == $w[0].durable and .frames == $w[0].frames' "$T/out"
contains "$T/err" "archive/durable: missing" "3: ...and names the missing file"
expect 0 "3: restore to the last txid without the durable mark" "$BIN" restore --data "$T/dx" --stream main \
  --to-txid "$(jq .durable "$T/whole.json")" --into "$T/dx-restored" --quiet
rm -rf "$T/dx" "$T/dx-restored"
# The oldest segment removed behind the receiver's back: status must not go
# on saying "restorable" from a snapshot the archive no longer continues.
cp -a "$D1" "$T/dx"
rm "$(ls "$T/dx/streams/main/archive/"*.seg* | head -1)"
"$BIN" check --data "$T/dx" --stream main --json >"$T/chk.json" 2>/dev/null
"$BIN" status --data "$T/dx" --stream main --json >"$T/st.json" 2>/dev/null
check "3: without the oldest segment, status and check agree on restorable, and from where" \
  jqe --slurpfile c "$T/chk.json" '.streams[0] | .restorable == $c[0].restorable and
    ((.restorable | not) or .restorable_from_txid == $c[0].base_txid)' "$T/st.json"
echo "    check: restorable $(jq .restorable "$T/chk.json") from $(jq .base_txid "$T/chk.json");" \
  "status: from $(jq .streams[0].restorable_from_txid "$T/st.json")"
rm -rf "$T/dx"
# A segment missing in the middle cuts off what came before it (store/log.h
# NEWEST RUN): check says so and fails; status and check agree on what can
# still be restored, and a restore from a base after the gap works (every
# restore failed listing the archive, while status said "restorable").
cp -a "$D1" "$T/dx"
rm "$(ls "$T/dx/streams/main/archive/"*.seg* | sed -n 2p)"
expect 1 "3: check --data with a segment missing in the middle: exit 1" "$BIN" check --data "$T/dx" --stream main --json
cp "$T/out" "$T/chk.json"
check "3: ...one damaged item, the cut" jqe '.damaged == 1 and (.files | map(select(.ok | not)) | length) == 1' "$T/chk.json"
contains "$T/err" "is missing before it" "3: ...naming the missing segment"
"$BIN" status --data "$T/dx" --stream main --json >"$T/st.json" 2>"$T/err"
check "3: ...status and check agree on restorable, and from where" \
  jqe --slurpfile c "$T/chk.json" '.streams[0] | .restorable == $c[0].restorable and
    ((.restorable | not) or .restorable_from_txid == $c[0].base_txid)' "$T/st.json"
check "3: ...and status says what cannot be reached" jqe '.streams[0].error | test("cannot be reached")' "$T/st.json"
"$BIN" info --data "$T/dx" --stream main --json >"$T/info.json" 2>/dev/null
check "3: ...and info names the segment the archive is read from" jqe '.streams[0].cut_before_segment > 1' "$T/info.json"
if [ "$(jq .restorable "$T/chk.json")" = true ]; then
  expect 0 "3: ...a restore to the durable txid from a base after the gap" "$BIN" restore --data "$T/dx" --stream main \
    --to-txid "$(jq .durable "$T/chk.json")" --into "$T/dx-restored" --quiet
else
  skip "3: a restore after the gap (no base after it in this run)"
fi
rm -rf "$T/dx" "$T/dx-restored"
expect 2 "3: check with two targets" "$BIN" check "$T/full.dump" --chain "$T/chain"

# ---- 4. prune --dry-run ------------------------------------------------------------------
# Receiver 1 is live: its keeper writes *.tmp files and renames them into
# place, and may add files, so the check is that nothing else went away.
stream_files() { find "$D1/streams/main" -type f ! -path '*.tmp*' | sort; }
stream_files >"$T/files.before"
expect 0 "4: prune --dry-run" "$BIN" prune --data "$D1" --stream main --keep-snapshots 1 --dry-run
grep -oE '(snapshots|archive)/[0-9]+\.(snap|seg)' "$T/out" | sort >"$T/would"
stream_files >"$T/files.after"
check "4: the dry run removed nothing" test -z "$(comm -23 "$T/files.before" "$T/files.after")"
check "4: and would remove something" test -s "$T/would"
expect 0 "4: prune" "$BIN" prune --data "$D1" --stream main --keep-snapshots 1
grep -oE '(snapshots|archive)/[0-9]+\.(snap|seg)' "$T/out" | sort >"$T/removed"
check "4: prune removed exactly what the dry run named" cmp -s "$T/would" "$T/removed"
gone=1
while read -r f; do [ -e "$D1/streams/main/$f" ] && gone=0; done <"$T/removed"
check "4: and they are gone" test "$gone" = 1
contains "$T/out" "removed archive segment" "4: prune names each file it removed"

# ---- 5. dump --overwrite, load --overwrite-destination ------------------------------------
expect 1 "5: dump refuses an existing file" "$BIN" dump "$P" --to "$T/full.dump"
contains "$T/err" "pass --overwrite" "5: and says how to replace it"
expect 0 "5: dump --overwrite replaces it" "$BIN" dump "$P" --to "$T/full.dump" --overwrite --quiet
L=$(e2e_last_txid "$P")
expect 0 "5: load --json" "$BIN" load "$T/full.dump" --into "$T/l" --json
check "5: load --json: one object at txid $L" jqe --argjson l "$L" '.load == "full" and .txid == $l and .kept == null' "$T/out"
expect 1 "5: load --into an existing store is refused" "$BIN" load "$T/full.dump" --into "$T/l"
contains "$T/err" "--overwrite-destination" "5: naming the flag"
"$BIN" exec "$T/l" "$T/w5" --quiet >/dev/null 2>&1 # the old store differs from the new one
expect 0 "5: load --overwrite-destination" "$BIN" load "$T/full.dump" --into "$T/l" --overwrite-destination --json
KEPT=$(jq -r .kept "$T/out")
check "5: the old store is kept aside ($KEPT)" test -f "$KEPT/store.id"
check "5: the new one holds txid $L" test "$(e2e_last_txid "$T/l")" = "$L"
expect 2 "5: --overwrite-destination goes with --into" "$BIN" load "$T/full.dump" --onto "$T/l" --overwrite-destination

# ---- 6. --json on the job commands; exec's summary ----------------------------------------
expect 0 "6: verify --json of a loaded store" "$BIN" verify "$T/l" --json
check "6: its state was checked for consistency" jqe '.ok and .state_consistent and (.state_replayed | not)' "$T/out"
expect 0 "6: verify of a loaded store" "$BIN" verify "$T/l"
contains "$T/out" "is consistent" "6: says the state is consistent"
expect 0 "6: export --json" "$BIN" export "$P" --to "$T/e.jsonl" --json
check "6: export --json: one object" one_json "$T/out"
check "6: with counts and bytes" jqe '.nodes > 0 and .bytes > 0' "$T/out"
expect 2 "6: export --json to standard output is refused" "$BIN" export "$P" --json
expect 0 "6: import --json" "$BIN" import "$T/e.jsonl" --into "$T/imp" --json
check "6: import --json: one object with the same counts" \
  jqe --slurpfile e <("$BIN" stats "$P" --json) '.nodes == $e[0].nodes and .relationships == $e[0].relationships' "$T/out"
"$BIN" init "$T/x" >/dev/null
expect 0 "6: exec --json" "$BIN" exec "$T/x" "$T/w1" --json
check "6: exec --json: one object" one_json "$T/out"
check "6: with transactions, ops and no failure" jqe '.committed == 400 and .failed == 0 and .ops >= 400 and .last_txid > 0 and .bytes > 0' "$T/out"
"$BIN" init "$T/y" >/dev/null
expect 0 "6: exec" "$BIN" exec "$T/y" "$T/w1"
contains "$T/err" "exec: 400 transactions applied, 0 failed" "6: exec ends with a summary line"
check "6: and no progress line off a terminal" no_cr "$T/err"
"$BIN" init "$T/z" >/dev/null
expect 0 "6: exec --quiet" "$BIN" exec "$T/z" "$T/w1" --quiet
check "6: exec --quiet prints nothing on stderr" test ! -s "$T/err"
expect 0 "6: restore --json" "$BIN" restore --data "$D1" --stream main --to-txid "$(jq -r .streams[0].durable "$T/info.json")" --into "$T/r" --json
check "6: restore --json: one object" one_json "$T/out"

# ---- 7. TIME: a date alone ------------------------------------------------------------------
expect 0 "7: log --since a date alone" "$BIN" log "$P" --since 2021-01-01 --from-txid "$L"
check "7: gives the transactions after it" test -s "$T/out"
expect 2 "7: an impossible date is refused" "$BIN" log "$P" --since 2021-02-30

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
