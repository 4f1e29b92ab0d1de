#!/usr/bin/env bash
# End-to-end test of backup files through real processes: shiplog dump
# (full, --from-txid, --since, to a file and to stdout) and shiplog load
# (--into, --onto), chains equal to the source (canonical exports), the
# refusals (gap, another store, wrong kind, target not empty, a store whose
# history differs from the file's, a dump chain with a missing middle file
# or a file from a diverged copy: exit 1, named, nothing changed or left
# behind), damaged and
# truncated files named with their offset and nothing left behind, a failed
# dump leaving no file, the progress line only on a terminal, and a loaded
# store that goes on committing from the next txid.
# Needs $SL_BIN, $SL_BUILD/bench_gen and $SL_TEST_TMP; exit 0 = pass.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c dump -g jq
e2e_begin e2e_backup
not() { ! "$@"; }
nothing_left() { # nothing_left DIR DESCRIPTION: no DIR, no DIR.tmp-*
  if [ ! -e "$1" ] && ! ls -d "$1".tmp-* >/dev/null 2>&1; then ok "$2"; else bad "$2"; fi
}
# ---- --help and usage ---------------------------------------------------------------
for c in dump load; do
  expect 0 "$c --help" "$BIN" "$c" --help
  contains "$T/out" "Usage: shiplog $c" "$c --help shows its usage"
done
expect 2 "dump without --to" "$BIN" dump "$T/x"
expect 2 "dump with a bad time" "$BIN" dump "$T/x" --to "$T/f" --since yesterday
expect 2 "dump --from-txid 0" "$BIN" dump "$T/x" --to "$T/f" --from-txid 0
expect 2 "load without a target" "$BIN" load "$T/f"
expect 2 "load with two targets" "$BIN" load "$T/f" --into "$T/a" --onto "$T/b"
expect 2 "load without FILE" "$BIN" load --into "$T/a"
check "usage errors create nothing" test ! -e "$T/f" -a ! -e "$T/a" -a ! -e "$T/x"
expect 1 "dump of a missing store" "$BIN" dump "$T/nostore" --to "$T/f"
contains "$T/err" "$T/nostore" "the error names the store"
check "a failed dump leaves no file" test ! -e "$T/f" -a ! -e "$T/f.tmp"
expect 1 "load of a missing file" "$BIN" load "$T/nofile" --into "$T/a"
nothing_left "$T/a" "a failed load leaves no store"

# ---- a source store ---------------------------------------------------------------------
S=$T/src
ts0=$(( ($(date +%s) - 86400) * 1000000 ))
"$GEN" --tx 400 --ops-per-tx 1-8 --seed 11 --nodes-first 300 --id-base 1000 --ts-start "$ts0" >"$T/w1.jsonl"
"$GEN" --tx 200 --ops-per-tx 1-8 --seed 12 --id-base 100000 --ts-start $((ts0 + 3600000000)) >"$T/w2.jsonl"
"$GEN" --tx 200 --ops-per-tx 1-8 --seed 13 --id-base 200000 --ts-start $((ts0 + 7200000000)) >"$T/w3.jsonl"
"$GEN" --tx 100 --ops-per-tx 1-8 --seed 14 --id-base 300000 --ts-start $((ts0 + 10800000000)) >"$T/w4.jsonl"
expect 0 "init the source" "$BIN" init "$S"
expect 0 "exec the first workload" "$BIN" exec "$S" "$T/w1.jsonl"
A=$(e2e_last_txid "$S")

# ---- full dump and load --------------------------------------------------------------------
expect 0 "full dump" "$BIN" dump "$S" --to "$T/full.dump"
contains "$T/err" "dump: full, txids 1..$A" "the summary names the txids"
check "no progress line when stderr is not a terminal" not grep -q $'\r' "$T/err"
check "no temporary file left" [ ! -e "$T/full.dump.tmp" ]
expect 0 "full dump --quiet to stdout" sh -c "'$BIN' dump '$S' --to - --quiet > '$T/stdout.dump'"
check "--quiet prints nothing" [ ! -s "$T/err" ]
check "the stdout dump has bytes" [ -s "$T/stdout.dump" ]
expect 0 "load --into" "$BIN" load "$T/full.dump" --into "$T/L"
check "the loaded store equals the source" e2e_same_export "$S" "$T/L"
"$BIN" stats "$S" --json | jq -c '{store_id,nodes,relationships,last_txid,last_commit_us}' >"$T/s1"
"$BIN" stats "$T/L" --json | jq -c '{store_id,nodes,relationships,last_txid,last_commit_us}' >"$T/s2"
check "same store id, counts, last txid and commit time" cmp -s "$T/s1" "$T/s2"
expect 0 "load the stdout dump" "$BIN" load "$T/stdout.dump" --into "$T/L2/" --quiet
check "the stdout dump loads to the same graph" e2e_same_export "$S" "$T/L2"
expect 1 "load --into a non-empty directory" "$BIN" load "$T/full.dump" --into "$T/L2"
contains "$T/err" "not empty" "the refusal says why"
mkdir "$T/empty"
expect 0 "load --into an empty directory" "$BIN" load "$T/full.dump" --into "$T/empty" --quiet
check "the empty directory now holds the store" e2e_same_export "$S" "$T/empty"

# ---- incremental chain ------------------------------------------------------------------------
expect 0 "exec the second workload" "$BIN" exec "$S" "$T/w2.jsonl"
B=$(e2e_last_txid "$S")
expect 0 "incremental --from-txid" "$BIN" dump "$S" --from-txid $((A + 1)) --to "$T/i1.dump"
contains "$T/err" "dump: incremental, txids $((A + 1))..$B" "the summary names the range"
expect 0 "exec the third workload" "$BIN" exec "$S" "$T/w3.jsonl"
C=$(e2e_last_txid "$S")
tsB=$("$BIN" log "$S" --from-txid "$B" | head -1 | awk '{print $2}')
expect 0 "incremental --since the last txid's time" "$BIN" dump "$S" --since "$tsB" --to "$T/i2.dump"
contains "$T/err" "txids $((B + 1))..$C" "--since starts after that time"
expect 0 "exec the fourth workload" "$BIN" exec "$S" "$T/w4.jsonl"
D=$(e2e_last_txid "$S")
expect 0 "incremental to stdout" sh -c "'$BIN' dump '$S' --from-txid $((C + 1)) --to - > '$T/i3.dump'"

expect 1 "a gap is refused" "$BIN" load "$T/i2.dump" --onto "$T/L"
contains "$T/err" "starts at txid $((B + 1)) but $T/L is at txid $A" "the refusal names both txids"
check "the refused load changed nothing" [ "$(e2e_last_txid "$T/L")" -eq "$A" ]
expect 1 "a full dump --onto is refused" "$BIN" load "$T/full.dump" --onto "$T/L"
expect 1 "an incremental --into is refused" "$BIN" load "$T/i1.dump" --into "$T/X"
nothing_left "$T/X" "the refused --into leaves nothing"
expect 0 "load i1 --onto" "$BIN" load "$T/i1.dump" --onto "$T/L"
contains "$T/err" "applied $((B - A)) transactions" "i1 applied its transactions"
expect 0 "load i2 --onto" "$BIN" load "$T/i2.dump" --onto "$T/L"
expect 0 "load i3 --onto" "$BIN" load "$T/i3.dump" --onto "$T/L"
check "the chain reaches the source's last txid" [ "$(e2e_last_txid "$T/L")" -eq "$D" ]
check "full + 3 incrementals equal the source" e2e_same_export "$S" "$T/L"
expect 1 "a file the store is past is refused" "$BIN" load "$T/i1.dump" --onto "$T/L"

# Overlap: from A-4 onto a store at A skips 5.
expect 0 "overlapping incremental" "$BIN" dump "$S" --from-txid $((A - 4)) --to "$T/ov.dump"
expect 0 "load the overlap onto a fresh copy" "$BIN" load "$T/ov.dump" --onto "$T/L2"
contains "$T/err" "skipped 5 it held already" "the overlap was skipped"
check "the overlap load equals the source" e2e_same_export "$S" "$T/L2"

# Another store's file.
expect 0 "init another store" "$BIN" init "$T/other"
expect 0 "exec into it" "$BIN" exec "$T/other" "$T/w4.jsonl"
expect 0 "dump it" "$BIN" dump "$T/other" --from-txid 1 --to "$T/other.dump"
expect 1 "another store's file is refused" "$BIN" load "$T/other.dump" --onto "$T/L2"
contains "$T/err" "a dump of store" "the refusal names the store ids"

# ---- no silent merges -------------------------------------------------------------------------
# A copy that committed a txid of its own after the full dump (issue 16,
# item 3) must not take the source's next ones: refused, named, unchanged.
# The copy's own transaction changes nothing the source's next ones need,
# so only the history tells them apart.
P=$T/p
for i in 1 2 3; do printf '{"ops":[{"op":"create_node","id":%d,"labels":["P"]}]}\n' "$i"; done >"$T/p1.jsonl"
for i in 10 11 12; do printf '{"ops":[{"op":"create_node","id":%d,"labels":["P"]}]}\n' "$i"; done >"$T/p2.jsonl"
printf '{"ops":[{"op":"set_node_prop","id":1,"key":"rogue","value":1}]}\n' >"$T/rogue.jsonl"
expect 0 "init a small source" "$BIN" init "$P"
expect 0 "its txids 1..3" "$BIN" exec "$P" "$T/p1.jsonl"
expect 0 "its full dump" "$BIN" dump "$P" --to "$T/p-full.dump"
expect 0 "load a copy to diverge" "$BIN" load "$T/p-full.dump" --into "$T/V" --quiet
expect 0 "the copy commits a txid 4 of its own" "$BIN" exec "$T/V" "$T/rogue.jsonl"
expect 0 "the source commits its txids 4..6" "$BIN" exec "$P" "$T/p2.jsonl"
expect 0 "the source's incremental 4..6" "$BIN" dump "$P" --from-txid 4 --to "$T/p-i.dump"
"$BIN" export "$T/V" --to "$T/v-before.json"
expect 1 "an incremental over a diverged txid is refused" "$BIN" load "$T/p-i.dump" --onto "$T/V"
contains "$T/err" "the first differing transaction is txid 4" "the refusal names the first differing txid"
contains "$T/err" "nothing was loaded" "and says that nothing was loaded"
check "the refused store is still at txid 4" [ "$(e2e_last_txid "$T/V")" -eq 4 ]
"$BIN" export "$T/V" --to "$T/v-after.json"
check "the refused store is unchanged (canonical export)" cmp -s "$T/v-before.json" "$T/v-after.json"
expect 0 "the same file onto a copy that did not diverge" "$BIN" load "$T/p-full.dump" --into "$T/V2" --quiet
expect 0 "loads" "$BIN" load "$T/p-i.dump" --onto "$T/V2"
check "and equals the source" e2e_same_export "$P" "$T/V2"

# A copy joining a stream whose archive holds the source's history (the
# receiver judges lineage, store/lineage.h): refused, before or past the
# archive's end, and `log --diverged` names the first differing txid.
RX_TIMEOUT_MS=3000
if start_receiver "$T/rx" --insecure; then
  shipit() { timeout 30 "$BIN" ship "$1" --to "127.0.0.1:$RX_PORT" --stream p --insecure --exit-when-caught-up \
    --backoff-max-ms 200 >"$T/out" 2>"$T/err"; }
  shipit "$P"
  check "ship: the source's txids 1..6 to stream p" [ $? -eq 0 ]
  printf '{"ops":[{"op":"set_node_prop","id":2,"key":"rogue","value":2}]}\n' >"$T/rogue5.jsonl"
  expect 0 "ship: the diverged copy commits a txid 5" "$BIN" exec "$T/V" "$T/rogue5.jsonl"
  shipit "$T/V"
  check "ship: the copy (txids 4..5 its own, within the archive) is refused: exit 1" [ $? -eq 1 ]
  contains "$T/err" "diverged" "ship: as diverged"
  "$BIN" log "$T/V" --diverged --data "$T/rx" --stream p >"$T/out" 2>"$T/err"
  contains "$T/err" "share txids up to 3; txids 4..5 exist only" "log --diverged names the first differing txid 4"
  expect 0 "ship: another copy" "$BIN" load "$T/p-full.dump" --into "$T/V3" --quiet
  for i in 20 21 22 23 24 25; do printf '{"ops":[{"op":"create_node","id":%d,"labels":["V"]}]}\n' "$i"; done >"$T/v3.jsonl"
  expect 0 "ship: it commits txids 4..9 of its own" "$BIN" exec "$T/V3" "$T/v3.jsonl"
  shipit "$T/V3"
  check "ship: the copy that is past the archive's end is refused: exit 1" [ $? -eq 1 ]
  contains "$T/err" "diverged" "ship: as diverged"
  check "ship: the stream still holds the source's 6 txids" [ "$(e2e_rx_json "$T/rx" p durable 0)" -eq 6 ]
  kill "$RX_PID" 2>/dev/null
  wait "$RX_PID" 2>/dev/null
else
  bad "ship: a receiver starts"
fi

# ---- dump chains: a missing middle file, a diverged file ------------------------------------------
Q=$T/cq CH=$T/ch
gone() { # gone NAME DESCRIPTION: no NAME, NAME.chain-tmp-* or NAME.tmp-*
  if ls -d "$1" "$1".chain-tmp-* "$1".tmp-* >/dev/null 2>&1; then bad "$2"; else ok "$2"; fi
}
expect 0 "chain: init a source" "$BIN" init "$Q"
n=0
for w in w1 w2 w3 w4; do
  expect 0 "chain: exec $w" "$BIN" exec "$Q" "$T/$w.jsonl"
  expect 0 "chain: dump $((n += 1))" "$BIN" dump "$Q" --chain "$CH" --quiet
done
check "chain: a full dump and 3 incrementals" [ "$(ls "$CH" | grep -c -- -incr-)" -eq 3 ]
expect 0 "chain: load --chain" "$BIN" load --chain "$CH" --into "$T/CL" --quiet
check "chain: the loaded chain equals the source" e2e_same_export "$Q" "$T/CL"
cp -r "$CH" "$T/ch2"
middle=$(ls "$T/ch2" | grep -- -incr- | sort -t- -k3,3n | head -2 | tail -1)
rm "$T/ch2/$middle"
expect 1 "chain: load --chain with a missing middle incremental fails" "$BIN" load --chain "$T/ch2" --into "$T/CM"
contains "$T/err" "does not follow its parent" "chain: the error names the break"
gone "$T/CM" "chain: and leaves no store behind"
mkdir "$T/CM2"
expect 1 "chain: the same into an empty directory fails" "$BIN" load --chain "$T/ch2" --into "$T/CM2" --quiet
check "chain: the empty directory is left as it was" [ -d "$T/CM2" -a -z "$(ls -A "$T/CM2")" ]
# A copy that diverged (same store id) and the source go on in one chain
# folder: whoever dumps second starts a chain of its own instead of
# continuing the other's history; a chain merged by hand from both is named
# by the listing and not loaded.
PC=$T/pc P3=$T/p3 PM=$T/pm
expect 0 "chain: a small source" "$BIN" init "$P3"
expect 0 "chain: its txids 1..3" "$BIN" exec "$P3" "$T/p1.jsonl"
expect 0 "chain: its full dump" "$BIN" dump "$P3" --chain "$PC" --quiet
expect 0 "chain: a copy of it" "$BIN" load --chain "$PC" --into "$T/PV" --quiet
expect 0 "chain: the copy commits a txid 4 of its own" "$BIN" exec "$T/PV" "$T/rogue.jsonl"
expect 0 "chain: the copy's scheduled dump" "$BIN" dump "$T/PV" --chain "$PC"
contains "$T/err" "dump: incremental, txids 4..4" "chain: its txid 4 continues the chain (txids 1..3 are shared)"
expect 0 "chain: the source commits its txids 4..6" "$BIN" exec "$P3" "$T/p2.jsonl"
expect 0 "chain: the source's scheduled dump" "$BIN" dump "$P3" --chain "$PC"
contains "$T/err" "differs from the chain in $PC at or before txid 4" "chain: the source does not continue the copy's chain"
contains "$T/err" "dump: full" "chain: it starts a new one"
expect 0 "chain: load --chain" "$BIN" load --chain "$PC" --into "$T/PL" --quiet
check "chain: the newest chain is the source's" e2e_same_export "$P3" "$T/PL"
mkdir "$PM"
cp "$PC/$(ls "$PC" | grep -- -full-1-3.dump | head -1)" "$PM/"
expect 0 "chain: the copy's txid 4 by hand" "$BIN" dump "$T/PV" --from-txid 4 --to "$PM/b-incr-4-4.dump" --quiet
expect 0 "chain: the source's 5..6 by hand" "$BIN" dump "$P3" --from-txid 5 --to "$PM/c-incr-5-6.dump" --quiet
expect 1 "chain: the listing of a merged chain fails" "$BIN" dump --chain "$PM"
contains "$T/out" "does not continue the history of its parent b-incr-4-4.dump" "chain: naming the file and its parent"
expect 1 "chain: load --chain of a merged chain fails" "$BIN" load --chain "$PM" --into "$T/CX"
contains "$T/err" "differ at or before txid 4" "chain: the error names the txid"
gone "$T/CX" "chain: and leaves no store behind"

# ---- the loaded store goes on ---------------------------------------------------------------
printf '{"ops":[{"op":"create_node","labels":["After"],"props":{"k":1}}]}\n' >"$T/after.jsonl"
expect 0 "exec on the loaded store" "$BIN" exec "$T/L" "$T/after.jsonl"
check "its txids continue" [ "$(e2e_last_txid "$T/L")" -eq $((D + 1)) ]
expect 0 "log of the loaded store" "$BIN" log "$T/L" --json
contains "$T/out" "{\"txid\":$((D + 1))," "the log holds the new txid"
expect 0 "verify the loaded store" "$BIN" verify "$T/L"
expect 0 "exec the same on the source" "$BIN" exec "$S" "$T/after.jsonl"
check "both went on alike (ids continue too)" e2e_same_export "$S" "$T/L"

# ---- damage -------------------------------------------------------------------------------------
size=$(stat -c %s "$T/full.dump")
for off in 0 20 130 $((size / 2)) $((size - 20)); do
  cp "$T/full.dump" "$T/bad.dump"
  flip "$T/bad.dump" "$off" 0xff
  expect 1 "a byte flipped at $off is refused" "$BIN" load "$T/bad.dump" --into "$T/D"
  contains "$T/err" "$T/bad.dump: offset " "the error names the file and an offset"
  nothing_left "$T/D" "nothing is left behind (flip at $off)"
done
head -c $((size - 100)) "$T/full.dump" >"$T/short.dump"
expect 1 "a truncated file is refused" "$BIN" load "$T/short.dump" --into "$T/D"
contains "$T/err" "truncated" "the error says truncated"
contains "$T/err" "$T/short.dump: offset " "and names the offset"
nothing_left "$T/D" "nothing is left behind (truncated)"
cp "$T/i3.dump" "$T/badinc.dump"
flip "$T/badinc.dump" $(($(stat -c %s "$T/badinc.dump") - 40)) 0xff
before=$(e2e_last_txid "$T/L2")
expect 1 "a damaged incremental is refused" "$BIN" load "$T/badinc.dump" --onto "$T/L2"
contains "$T/err" "$T/badinc.dump: offset " "the error names the offset"
check "nothing of it was applied" [ "$(e2e_last_txid "$T/L2")" -eq "$before" ]
printf 'not a dump at all, just text\n%.0s' $(seq 10) >"$T/text.dump"
expect 1 "a file that is not a dump" "$BIN" load "$T/text.dump" --into "$T/D"
contains "$T/err" "offset 0: not a shiplog dump" "the error says so"

# A dump that fails while writing (file size limit) leaves no file.
( trap '' XFSZ; ulimit -f 16; "$BIN" dump "$S" --to "$T/big.dump" >"$T/out" 2>"$T/err" )
st=$?
check "a dump that cannot write fails (exit $st)" [ "$st" -eq 1 ]
contains "$T/err" "$T/big.dump" "the error names the file"
check "and leaves no file" test ! -e "$T/big.dump" -a ! -e "$T/big.dump.tmp"

# ---- progress on a terminal --------------------------------------------------------------------
if command -v script >/dev/null; then
  script -qec "'$BIN' dump '$S' --to '$T/tty.dump'" /dev/null >"$T/tty.out" 2>&1
  contains "$T/tty.out" "dump (records): " "a terminal shows the progress line"
  script -qec "'$BIN' dump '$S' --to '$T/tty2.dump' --quiet" /dev/null >"$T/tty.out" 2>&1
  check "--quiet hides it" not grep -q "dump (records)" "$T/tty.out"
  script -qec "'$BIN' load '$T/full.dump' --into '$T/tty'" /dev/null >"$T/tty.out" 2>&1
  contains "$T/tty.out" "load: " "load shows it too"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
