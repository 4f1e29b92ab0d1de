#!/usr/bin/env bash
# End-to-end test of base shipping (README "Base shipping"): a store whose
# log does not start at txid 1 is shipped, the receiver gets a base (a full
# dump over the replication connection) and builds its standby from it.
#   1. a store made by `import` (APOC / canonical JSON Lines) is shipped;
#      `snapshot` and `restore --to-txid LAST` work and equal the primary.
#   2. a store made by `load` (its log starts after the dump's txid): the
#      same, and status says from which txid it can be restored; `ship
#      --exit-when-caught-up` exits only once the base is stored.
#   3. a store that pruned its log (small segments) shipped for the first
#      time: the same.
#   4. an unrestorable stream (its bases removed) is an error in `status`
#      (state unrestorable, exit 1); the next session ships a base again.
#   5. the shipper SIGKILLed in the middle of a big base (slowed by
#      tests/netproxy) while writers go on: nothing of the base is left,
#      a restarted shipper sends it again, and the standby equals the
#      primary once the writers stop.
#   6. a shipper with --key-file sends a sealed base (dump version 2), which
#      a keyless receiver keeps as it is; a restore with the key equals.
# Needs $SL_BIN, $SL_BUILD/bench_gen and netproxy, jq.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c receive -g jq
e2e_begin e2e_base
PROXY=$BUILD/netproxy
[ -x "$PROXY" ] || { echo "skip: no netproxy at $PROXY"; exit 77; }

RX=$T/rx
mkdir -m 700 "$RX"
start_receiver "$RX" --insecure || exit 1

ship_bg() { # ship_bg STORE STREAM [PORT] [ARGS...]: sets SH_PID
  local s=$1 n=$2 port=${3:-$RX_PORT}
  shift 3 2>/dev/null || shift $#
  "$BIN" ship "$s" --to "127.0.0.1:$port" --stream "$n" --insecure --heartbeat-ms 200 --timeout-ms 3000 \
    --backoff-max-ms 300 "$@" 2>>"$T/ship-$n.log" &
  SH_PID=$!
  pids+=("$SH_PID")
}
kill9() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# restorable STORE STREAM WHAT: the standby equals STORE, a snapshot and a
# restore to the last txid equal it too, and status says from which txid
# the stream can be restored.
restorable() {
  local s=$1 n=$2 what=$3 last
  last=$(e2e_last_txid "$s")
  check "$what: the standby applies up to txid $last" e2e_wait_applied "$RX" "$n" "$last" 60
  check "$what: the standby equals the primary" e2e_same_export "$s" "$RX/streams/$n/standby"
  expect 0 "$what: status exits 0" "$BIN" status --data "$RX" --stream "$n"
  contains "$T/out" "restorable from txid" "$what: status says from which txid it can be restored"
  check "$what: status --json says restorable" \
    jqe '.streams[0].restorable == true and .streams[0].base == "ok" and (.streams[0].restorable_from_txid | type) == "number"' \
    <<<"$("$BIN" status --data "$RX" --stream "$n" --json)"
  expect 0 "$what: snapshot" "$BIN" snapshot --data "$RX" --stream "$n"
  rm -rf "$T/restored-$n"
  expect 0 "$what: restore --to-txid $last" "$BIN" restore --data "$RX" --stream "$n" --to-txid "$last" \
    --into "$T/restored-$n"
  check "$what: the restored store equals the primary" e2e_same_export "$s" "$T/restored-$n"
}

# ---- 1. import --------------------------------------------------------------------------
e2e_gen "$T/w0" 400 0
"$BIN" init "$T/gen" >/dev/null && "$BIN" exec "$T/gen" "$T/w0" >/dev/null || exit 1
"$BIN" export "$T/gen" --to "$T/gen.jsonl" || exit 1
expect 0 "import a JSON Lines export" "$BIN" import "$T/gen.jsonl" --into "$T/imp" --quiet
ship_bg "$T/imp" imp
restorable "$T/imp" imp "import"
kill9 "$SH_PID"

# ---- 2. load ----------------------------------------------------------------------------
expect 0 "dump" "$BIN" dump "$T/gen" --to "$T/gen.dump" --quiet
expect 0 "load" "$BIN" load "$T/gen.dump" --into "$T/ld" --quiet
first=$("$BIN" stats "$T/ld" --json | jq -r .log.first_txid)
check "the loaded store's log starts after txid 1 (at $first)" test "$first" -gt 1
ship_bg "$T/ld" ld
check "load: the stream's archive starts at txid $first" e2e_wait_status "$RX" ld first_txid "$first" 30
e2e_gen "$T/w1" 30 1 && "$BIN" exec "$T/ld" "$T/w1" >/dev/null
restorable "$T/ld" ld "load"
contains "$T/rx.log" "stream ld: base at txid" "load: the receiver logs the base it stored"
kill9 "$SH_PID"

# ship --exit-when-caught-up exits 0 only once the base is durable on the receiver.
"$BIN" load "$T/gen.dump" --into "$T/ld2" --quiet || exit 1
expect 0 "load: ship --exit-when-caught-up" "$BIN" ship "$T/ld2" --to "127.0.0.1:$RX_PORT" --stream ld2 --insecure \
  --exit-when-caught-up
check "load: once that shipper exited, the stream is restorable" \
  jqe '.streams[0].restorable == true' <<<"$("$BIN" status --data "$RX" --stream ld2 --json)"

# ---- 3. a pruned log ----------------------------------------------------------------------
"$BIN" init "$T/pr" --segment-size 4096 >/dev/null && "$BIN" exec "$T/pr" "$T/w0" >/dev/null || exit 1
first=$("$BIN" stats "$T/pr" --json | jq -r .log.first_txid)
check "the store pruned its log (it starts at txid $first)" test "$first" -gt 1
ship_bg "$T/pr" pr
restorable "$T/pr" pr "pruned log"

# ---- 4. unrestorable is an error; a new session ships a base again --------------------------
kill9 "$SH_PID"
kill -TERM "$RX_PID" && wait "$RX_PID" 2>/dev/null
rm -rf "$RX/streams/pr/snapshots"/*.snap "$RX/streams/pr/standby"
expect 1 "a stream without a base: status exits 1" "$BIN" status --data "$RX" --stream pr
contains "$T/out" "unrestorable" "a stream without a base: its state is unrestorable"
contains "$T/out" "not restorable" "a stream without a base: status says why"
check "a stream without a base: status --json says not restorable" \
  jqe '.streams[0].restorable == false and .streams[0].base == "none" and .streams[0].state == "unrestorable"' \
  <<<"$("$BIN" status --data "$RX" --stream pr --json 2>/dev/null)"
start_receiver "$RX" --insecure || exit 1
e2e_gen "$T/w2" 20 2 && "$BIN" exec "$T/pr" "$T/w2" >/dev/null
ship_bg "$T/pr" pr
restorable "$T/pr" pr "re-based stream"
kill9 "$SH_PID"

# ---- 5. SIGKILL in the middle of a big base, writers going on -------------------------------
# A graph of some MiB: 40,000 nodes with a random string each, imported,
# dumped and loaded (so its log starts at the dump's txid + 1).
awk -v seed="$SEED" 'BEGIN { srand(seed); for (i = 1; i <= 40000; i++) {
  s = ""; for (j = 0; j < 12; j++) s = s sprintf("%08x", int(rand() * 4294967295));
  printf "{\"type\":\"node\",\"id\":\"%d\",\"labels\":[\"Big\"],\"properties\":{\"s\":\"%s\"}}\n", i + 90000000, s } }' \
  >"$T/big.jsonl"
"$BIN" import "$T/big.jsonl" --into "$T/bigi" --quiet && "$BIN" dump "$T/bigi" --to "$T/big.dump" --quiet &&
  "$BIN" load "$T/big.dump" --into "$T/big" --quiet || exit 1
echo "    big base: dump of $(size "$T/big.dump") bytes"
start_proxy() { # start_proxy RATE: a slow link to the receiver; sets PX_PID, PXPORT
  rm -f "$T/proxy.port" # port 0 and a ready file: a random port may be taken
  "$PROXY" --listen 127.0.0.1:0 --to "127.0.0.1:$RX_PORT" --rate "$1" --ready-file "$T/proxy.port" 2>>"$T/proxy.log" &
  PX_PID=$!
  pids+=("$PX_PID")
  e2e_until 30 test -s "$T/proxy.port" || bad "the proxy did not start"
  PXPORT=$(cat "$T/proxy.port")
}
start_proxy 400000
e2e_gen "$T/w3" 600 3 1-3
"$BIN" exec "$T/big" "$T/w3" >/dev/null 2>"$T/exec.err" &
EX_PID=$!
pids+=("$EX_PID")
ship_bg "$T/big" big "$PXPORT"
for i in $(seq 100); do grep -q "stream big: receiving a base" "$T/rx.log" && break; sleep 0.1; done
sleep 1.5
check "the base is on its way" e2e_wait_status "$RX" big base receiving 5
# The shipper dies, and with it its connection (the proxy would go on
# delivering what it queued).
kill9 "$SH_PID"
kill9 "$PX_PID"
check "the shipper killed inside the base: the receiver drops what arrived" \
  bash -c "for i in \$(seq 50); do ls '$RX/streams/big/snapshots/' | grep -q tmp || exit 0; sleep 0.1; done; exit 1"
check "the shipper killed inside the base: no snapshot was made of it" \
  bash -c "! ls '$RX/streams/big/snapshots/' | grep -q '[.]snap$'"
check "the shipper killed inside the base: the stream is not restorable yet" \
  jqe '.streams[0].restorable == false' <<<"$("$BIN" status --data "$RX" --stream big --json 2>/dev/null)"
start_proxy 1000000
ship_bg "$T/big" big "$PXPORT"
wait "$EX_PID"
check "the writers committed during the base" test "$(e2e_last_txid "$T/big")" -gt "$("$BIN" stats "$T/bigi" --json | jq -r .last_txid)"
restorable "$T/big" big "a base killed and sent again, with writers"
check "the second session sent the whole base, and only one was stored" \
  test "$(grep -c "stream big: base at txid .* stored" "$T/rx.log")" = 1
check "no session timed out during the base" bash -c "! grep -q 'silent for' '$T/ship-big.log'"
kill9 "$SH_PID"
kill9 "$PX_PID"

# ---- 6. a sealed base ------------------------------------------------------------------------
printf 'k1 %s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/keys"
chmod 600 "$T/keys"
"$BIN" load "$T/gen.dump" --into "$T/sealed" --quiet || exit 1
ship_bg "$T/sealed" sealed "$RX_PORT" --key-file "$T/keys"
last=$(e2e_last_txid "$T/sealed")
check "sealed: the archive holds txid $last" e2e_wait_status "$RX" sealed durable "$last" 30
check "sealed: the base arrives" \
  bash -c "for i in \$(seq 100); do ls '$RX/streams/sealed/snapshots/' 2>/dev/null | grep -q '[.]snap$' && exit 0; sleep 0.1; done; exit 1"
snap=$(ls "$RX/streams/sealed/snapshots/"*.snap | head -1)
check "sealed: the receiver keeps the base sealed (dump version 2)" \
  test "$(od -An -tu2 -j 8 -N 2 "$snap" | tr -d ' ')" = 2
check "sealed: no plaintext of the graph in the base" bash -c "! grep -q Person '$snap'"
expect 0 "sealed: restore --to-txid $last with the key" "$BIN" restore --data "$RX" --stream sealed \
  --to-txid "$last" --into "$T/restored-sealed" --key-file "$T/keys"
check "sealed: the restored store equals the primary" e2e_same_export "$T/sealed" "$T/restored-sealed"
kill9 "$SH_PID"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
