#!/usr/bin/env bash
# End-to-end test of failover (README "Failover"): real `shiplog exec` /
# `ship` / `receive` / `promote` / `rewind` processes on 127.0.0.1 (plain
# TCP, --insecure; tests/e2e_ship.sh covers TLS).
#   1. promote under load: the primary commits while shipping and is
#      SIGKILLed; promote gives a new primary holding every txid the archive
#      had (records equal to the old primary's), continuing at the next txid,
#      its state equal to the standby's.
#   2. the old primary comes back with transactions the stream never had:
#      ship ends with exit 1 and "diverged" naming the range; log --diverged
#      lists exactly them; a primary that is merely behind is refused too.
#   3. rewind cuts them off (kept in a file) and seeds a receiver stream on
#      the old primary's host, which follows the new primary.
#   4. a cascade of three (primary -> receiver A -> receiver B -> receiver C)
#      equals the primary.
#   5. randomized role switches: kill the primary at a random moment,
#      promote, ship the new one, bring the old one back (refused, then
#      rewound) -- the model (every archived record so far) checked each round.
#   6. promote on an empty stream: an empty new primary in epoch 1 that
#      continues the stream; the old (empty) primary is behind.
#   7. prune of a receiver's stream keeps the archive segments a lagging
#      cascade shipper has not had confirmed (its consumer position).
#   8. restores (from a snapshot + archive, in place and into a new store)
#      and loads of a full dump carry the lineage: each ships to its stream
#      as the same history, and on as its continuation.
# Needs $SL_BIN, $SL_BUILD/bench_gen, jq. SL_SEED=N replays the random choices.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c promote -g jq
e2e_begin e2e_failover
ROUNDS=${SL_FAILOVER_ROUNDS:-8} # ~1.7 s each; the suite stays under ~30 s
RX_TIMEOUT_MS=3000
RX_OPT=(--insecure) # start_receiver's (tests/lib_e2e.sh) arguments here
stop() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
kill9() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# ship SRC PORT STREAM [ARGS...]: in the background, sets SH_PID.
ship() {
  local src=$1 port=$2 stream=$3
  shift 3
  "$BIN" ship "$src" --to "127.0.0.1:$port" --stream "$stream" --insecure --heartbeat-ms 200 \
    --timeout-ms 3000 --backoff-max-ms 300 "$@" 2>>"$T/ship.log" &
  SH_PID=$!
  pids+=("$SH_PID")
}
log_json() { "$BIN" log "$1" --json; }
# archive_json DATA STREAM: the archive's records (through a store-shaped link).
archive_json() {
  local a
  a=$(mktemp -d "$T/arch.XXXXXX")
  ln -s "$(cd "$1/streams/$2" && pwd)/archive" "$a/log" && "$BIN" log "$a" --json
}
# The old primary's host comes back: its store is opened (log recovery).
restart() { "$BIN" exec "$1" /dev/null >/dev/null 2>&1; }

# ---- 1. promote under load ----------------------------------------------------------------
P=$T/p1
D=$T/rx
"$BIN" init "$P" >/dev/null
e2e_gen "$T/w1" 20000 1 1-5
start_receiver "$D" "${RX_OPT[@]}" || exit 1
ship "$P" "$RX_PORT" s
"$BIN" exec "$P" "$T/w1" >/dev/null 2>&1 &
EX=$!
pids+=("$EX")
# something archived first (a loaded machine may not have shipped anything in the sleep alone)
archived() { [ "$(e2e_rx_json "$D" s durable 0)" -gt 0 ]; }
e2e_until 60 archived
sleep 0.$((2 + RANDOM % 5))
kill9 "$SH_PID" # the link goes first: what the primary commits now, nobody archives
sleep 0.$((2 + RANDOM % 3))
kill9 "$EX" # then the primary's host
stop "$RX_PID"
R=$(e2e_rx_json "$D" s durable 0)
echo "    primary killed at txid $(e2e_last_txid "$P"), the stream had $R"
check "promote exits 0" "$BIN" promote --data "$D" --stream s --into "$T/p2" >"$T/promote.out"
P2=$T/p2
check "the new primary holds exactly the archived txids" test "$(e2e_last_txid "$P2")" = "$R"
log_json "$P" | head -n "$R" >"$T/model"
check "its records equal the old primary's 1..$R" cmp -s "$T/model" <(log_json "$P2")
check "the stream records the promotion" grep -q "^epoch=1" "$D/streams/s/promoted"
echo '{"ops":[{"op":"create_node","id":999999999,"labels":["Promoted"],"props":{}}]}' | "$BIN" exec "$P2" - >/dev/null
check "the new primary continues at txid $((R + 1))" test "$(e2e_last_txid "$P2")" = "$((R + 1))"
e2e_gen "$T/w2" 300 2 1-5
"$BIN" exec "$P2" "$T/w2" >/dev/null 2>&1
L=$(e2e_last_txid "$P2")
start_receiver "$D" "${RX_OPT[@]}" || exit 1
ship "$P2" "$RX_PORT" s --exit-when-caught-up
check "the new primary ships as the stream's continuation" wait "$SH_PID"
check "the standby follows the new primary" e2e_wait_applied "$D" s "$L" 120
check "and equals it" e2e_same_export "$P2" "$D/streams/s/standby"

# ---- 2. the old primary returns ---------------------------------------------------------
# The new primary's shipper stays connected meanwhile: no refusal may disturb it.
ship "$P2" "$RX_PORT" s
LIVE=$SH_PID
TAKEOVERS=$(grep -c "takes over" "$T/rx.log")
e2e_until 60 grep -qx "state=streaming" "$P2/ship/s.status"
restart "$P"
OLD_LAST=$(e2e_last_txid "$P")
if [ "$OLD_LAST" -gt "$R" ]; then
  "$BIN" ship "$P" --to "127.0.0.1:$RX_PORT" --stream s --insecure >"$T/out" 2>"$T/err"
  check "the old primary's ship ends with exit 1" test $? -eq 1
  check "naming the divergence and the range" grep -q "diverged: .*this store's txids [0-9]*\.\.$OLD_LAST may exist only here (from $((R + 1)) on they do)" "$T/err"
  check "... and what to do" grep -q "List them with \`shiplog log STORE --diverged --data DIR --stream s\`, then \`shiplog rewind STORE --to-txid N\` to follow the new primary (ERR_DIVERGED)" "$T/err"
  "$BIN" log "$P" --diverged --data "$D" --stream s --json >"$T/div" 2>"$T/div.err"
  check "log --diverged lists txids $((R + 1))..$OLD_LAST" test "$(wc -l <"$T/div")" = "$((OLD_LAST - R))" -a \
    "$(head -1 "$T/div" | jq -r .txid)" = "$((R + 1))"
else
  skip "the old primary had no transactions past the archive this time (seed $SEED)"
fi
# A copy that is merely behind the stream (a standby's old copy) is refused as such.
"$BIN" restore --data "$D" --stream s --to-txid $((R / 2)) --into "$T/behind" >/dev/null 2>&1
"$BIN" ship "$T/behind" --to "127.0.0.1:$RX_PORT" --stream s --insecure >"$T/out" 2>"$T/err"
check "a store behind the stream: exit 1" test $? -eq 1
check "... told it is behind" grep -q "behind: stream s holds txids up to" "$T/err"
check "... and what to do" grep -q "make it a standby of the new primary: \`shiplog rewind STORE --to-txid" "$T/err"
"$BIN" init "$T/other" >/dev/null
"$BIN" ship "$T/other" --to "127.0.0.1:$RX_PORT" --stream s --insecure >"$T/out" 2>"$T/err"
check "another store's shipper: exit 1 (ERR_STORE_ID)" test $? -eq 1
check "none of the refused shippers disturbed the live one" grep -qx "reconnects=0" "$P2/ship/s.status"
check "... nor took the stream over" test "$(grep -c "takes over" "$T/rx.log")" = "$TAKEOVERS"
check "... which is still connected" kill -0 "$LIVE"
check "... as the stream's status says, without an error" test "$("$BIN" status --data "$D" --stream s --json |
  jq -r '.streams[0] | .state + "/" + (.error // "")')" = "connected/"
kill9 "$LIVE"

# ---- 3. rewind makes the old primary a standby ----------------------------------------------
mkdir -p "$T/taken/streams/s"
P_LAST=$(e2e_last_txid "$P")
expect 1 "rewind with a standby stream that exists already is refused" "$BIN" rewind "$P" --to-txid "$R" --standby-data "$T/taken" --stream s
contains "$T/err" "stream s exists already" "... saying why"
check "... before anything was cut" test "$(e2e_last_txid "$P")" = "$P_LAST" -a ! -e "$P/rewound"
check "rewind exits 0" "$BIN" rewind "$P" --to-txid "$R" --standby-data "$T/old-host" --stream s
check "the old primary is at txid $R" test "$(e2e_last_txid "$P")" = "$R"
if [ "$OLD_LAST" -gt "$R" ]; then
  check "the cut transactions are kept" test "$(wc -l <"$P/rewound/txids-$((R + 1))-$OLD_LAST.jsonl")" = \
    "$((OLD_LAST - R))"
fi
RXA=$RX_PID
PORTA=$RX_PORT
start_receiver "$T/old-host" "${RX_OPT[@]}" || exit 1
ship "$D/streams/s" "$RX_PORT" s --exit-when-caught-up # the new primary's stream, onward
check "the seeded stream accepts the new primary's history" wait "$SH_PID"
check "the old primary's host follows as a standby" e2e_wait_applied "$T/old-host" s "$L" 120
check "equal to the new primary" e2e_same_export "$P2" "$T/old-host/streams/s/standby"
stop "$RX_PID"

# ---- 4. a cascade of three ------------------------------------------------------------------------
start_receiver "$T/b" "${RX_OPT[@]}" && PB=$RX_PORT && RXB=$RX_PID
start_receiver "$T/c" "${RX_OPT[@]}" && PC=$RX_PORT && RXC=$RX_PID
ship "$P2" "$PORTA" s
SA=$SH_PID
ship "$D/streams/s" "$PB" s
SB=$SH_PID
e2e_until 60 test -d "$T/b/streams/s"
ship "$T/b/streams/s" "$PC" s
SC=$SH_PID
e2e_gen "$T/w3" 400 3 1-5
"$BIN" exec "$P2" "$T/w3" >/dev/null 2>&1
L=$(e2e_last_txid "$P2")
check "cascade: C's standby reaches txid $L" e2e_wait_applied "$T/c" s "$L" 120
check "cascade: A, B and C equal the primary" e2e_same_export "$P2" "$T/c/streams/s/standby"
check "cascade: B too" e2e_same_export "$P2" "$T/b/streams/s/standby"
check "cascade: B's and C's archives hold A's records" cmp -s <(archive_json "$D" s) <(archive_json "$T/c" s)
kill9 "$SA"; kill9 "$SB"; kill9 "$SC"; stop "$RXB"; stop "$RXC"

# ---- 5. randomized role switches ---------------------------------------------------------------
# Two hosts' stores trade the primary role; receiver A holds stream s. Each
# round: load on the primary, SIGKILL it at a random moment, stop the
# receiver, promote, check the model (everything archived so far) is a
# prefix of the new primary's log and the standby equals the new primary,
# bring the old primary back (refused unless it had nothing extra), rewind it.
CUR=$P2
archive_json "$D" s >"$T/model"
for round in $(seq "$ROUNDS"); do
  ship "$CUR" "$PORTA" s
  e2e_gen "$T/wr" $((2000 + RANDOM % 1000)) $((10 + round)) 1-5
  "$BIN" exec "$CUR" "$T/wr" >/dev/null 2>&1 &
  EX=$!
  pids+=("$EX")
  sleep 0.$((2 + RANDOM % 7))
  if [ $((RANDOM % 2)) -eq 0 ]; then # the link goes first: the primary commits what nobody archives
    kill9 "$SH_PID"
    sleep 0.$((1 + RANDOM % 3))
    kill9 "$EX"
  else # the host goes at once, or after the shipper caught up
    kill9 "$EX"
    [ $((RANDOM % 2)) -eq 0 ] && sleep 0.3
    kill9 "$SH_PID"
  fi
  stop "$RXA"
  R=$(e2e_rx_json "$D" s durable 0)
  NEXT=$T/r$round
  if ! "$BIN" promote --data "$D" --stream s --into "$NEXT" >/dev/null 2>>"$T/promote.err"; then
    bad "round $round: promote failed"
    break
  fi
  log_json "$NEXT" >"$T/now"
  if [ "$(e2e_last_txid "$NEXT")" = "$R" ] && cmp -s "$T/model" <(head -n "$(wc -l <"$T/model")" "$T/now"); then
    ok "round $round: promoted at txid $R, no archived transaction lost"
  else
    bad "round $round: promoted store holds $(e2e_last_txid "$NEXT"), archive $R, or lost records"
  fi
  cp "$T/now" "$T/model"
  start_receiver "$D" "${RX_OPT[@]}" || exit 1
  RXA=$RX_PID
  PORTA=$RX_PORT
  check "round $round: the standby equals the new primary" e2e_wait_applied "$D" s "$R" 120
  e2e_same_export "$NEXT" "$D/streams/s/standby" || bad "round $round: standby differs"
  restart "$CUR"
  OLD_LAST=$(e2e_last_txid "$CUR")
  "$BIN" ship "$CUR" --to "127.0.0.1:$PORTA" --stream s --insecure --exit-when-caught-up >/dev/null 2>"$T/err"
  rc=$?
  if [ "$OLD_LAST" -gt "$R" ]; then
    [ $rc -eq 1 ] && grep -q "diverged" "$T/err" && ok "round $round: old primary (txid $OLD_LAST) refused" ||
      bad "round $round: old primary with txids past $R: exit $rc"
  else
    [ $rc -eq 1 ] && grep -q "behind" "$T/err" && ok "round $round: old primary without extra txids refused as behind" ||
      bad "round $round: old primary at $OLD_LAST: exit $rc"
  fi
  "$BIN" rewind "$CUR" --to-txid "$R" >/dev/null 2>>"$T/rewind.err" ||
    bad "round $round: rewind of the old primary failed"
  e2e_same_export "$CUR" "$NEXT" || bad "round $round: the rewound old primary differs from the new one"
  CUR=$NEXT
done

# ---- 6. promote on an empty stream ----------------------------------------------------------
"$BIN" init "$T/e1" >/dev/null
start_receiver "$T/e" "${RX_OPT[@]}" || exit 1
ship "$T/e1" "$RX_PORT" s --exit-when-caught-up
wait "$SH_PID"
stop "$RX_PID"
check "empty stream: promote exits 0" "$BIN" promote --data "$T/e" --stream s --into "$T/e2" >"$T/promote.out"
check "... saying the archive was empty" grep -q "epoch 1 begins at txid 1 (the archive was empty" "$T/promote.out"
check "... the new primary is empty" test "$(e2e_last_txid "$T/e2")" = 0
echo '{"ops":[{"op":"create_node","id":1,"labels":["First"],"props":{}}]}' | "$BIN" exec "$T/e2" - >/dev/null
start_receiver "$T/e" "${RX_OPT[@]}" || exit 1
ship "$T/e2" "$RX_PORT" s --exit-when-caught-up
check "... and ships as the stream's continuation" wait "$SH_PID"
check "... its first transaction applied" e2e_wait_applied "$T/e" s 1 120
"$BIN" ship "$T/e1" --to "127.0.0.1:$RX_PORT" --stream s --insecure >"$T/out" 2>"$T/err"
check "... the old (empty) primary is refused: exit 1" test $? -eq 1
check "... as behind" grep -q "behind: stream s holds txids up to 1 in epoch 1" "$T/err"
stop "$RX_PID"

# ---- 7. a lagging cascade holds back the pruning of the archive it reads ---------------------
RX_OPT+=(--segment-size 64K)
"$BIN" init "$T/q" >/dev/null
start_receiver "$T/qa" "${RX_OPT[@]}" && PQA=$RX_PORT && RXQA=$RX_PID
start_receiver "$T/qb" "${RX_OPT[@]}" && PQB=$RX_PORT && RXQB=$RX_PID
e2e_gen "$T/w7" 1500 7 1-5
"$BIN" exec "$T/q" "$T/w7" >/dev/null 2>&1
ship "$T/q" "$PQA" q
SQ=$SH_PID
e2e_until 60 test -d "$T/qa/streams/q"
ship "$T/qa/streams/q" "$PQB" q
check "cascade: B follows A" e2e_wait_applied "$T/qb" q "$(e2e_last_txid "$T/q")" 120
# the cascade shipper records its confirmed position every 200 ms
confirmed_all() { [ "$(cat "$T"/qa/streams/q/archive/consumers/ship-q@* 2>/dev/null)" = "$(e2e_last_txid "$T/q")" ]; }
check "the cascade shipper records what B confirmed" e2e_until 60 confirmed_all
kill9 "$SH_PID" # the cascade lags from here on
C=$(cat "$T"/qa/streams/q/archive/consumers/ship-q@*)
e2e_gen "$T/w8" 3000 8 1-5
"$BIN" exec "$T/q" "$T/w8" >/dev/null 2>&1
L=$(e2e_last_txid "$T/q")
check "A archives and applies everything" e2e_wait_applied "$T/qa" q "$L" 120
"$BIN" snapshot --data "$T/qa" --stream q >/dev/null
"$BIN" prune --data "$T/qa" --stream q --keep-snapshots 1 --json >"$T/prune.json"
FIRST=$(jq -r .archive_first_txid "$T/prune.json")
echo "    cascade confirmed txid $C, A's archive begins at $FIRST after prune ($(jq -c . "$T/prune.json"))"
check "prune removed segments the cascade had confirmed" test "$FIRST" -gt 1
check "... but kept what the cascade still needs (from txid $((C + 1)))" test "$FIRST" -le $((C + 1))
ship "$T/qa/streams/q" "$PQB" q
check "the cascade resumes and catches up" e2e_wait_applied "$T/qb" q "$L" 120
check "... equal to the primary" e2e_same_export "$T/q" "$T/qb/streams/q/standby"
kill9 "$SH_PID"; kill9 "$SQ"; stop "$RXQA"; stop "$RXQB"

# ---- 8. restores and loads carry the lineage -------------------------------------------------
F=$T/f1
"$BIN" init "$F" >/dev/null
e2e_gen "$T/w9" 1500 9 1-5
"$BIN" exec "$F" "$T/w9" >/dev/null 2>&1
start_receiver "$T/fd" "${RX_OPT[@]}" || exit 1
FD=$T/fd
ship_done() { "$BIN" ship "$1" --to "127.0.0.1:$RX_PORT" --stream "$2" --insecure --exit-when-caught-up \
  >"$T/out" 2>"$T/err"; }
ship_done "$F" f
"$BIN" snapshot --data "$FD" --stream f >/dev/null # restores below start from it
e2e_gen "$T/w10" 500 10 1-5
"$BIN" exec "$F" "$T/w10" >/dev/null 2>&1
check "restore: the primary ships" ship_done "$F" f
L=$(e2e_last_txid "$F")
"$BIN" restore --data "$FD" --stream f --to-txid "$L" --in-place "$F" --json >"$T/restore.json" 2>>"$T/restore.err"
check "restore --in-place of the primary from its stream, from a snapshot" \
  test "$(e2e_last_txid "$F")" = "$L" -a "$(jq -r '.base_txid // 0' "$T/restore.json")" -gt 0
check "... ships to the same stream as the same history" ship_done "$F" f
e2e_gen "$T/w11" 200 11 1-5
"$BIN" exec "$F" "$T/w11" >/dev/null 2>&1
check "... and its new transactions as the continuation" ship_done "$F" f
L=$(e2e_last_txid "$F")
"$BIN" restore --data "$FD" --stream f --to-txid "$L" --into "$T/f2" >/dev/null 2>>"$T/restore.err"
e2e_gen "$T/w12" 200 12 1-5
"$BIN" exec "$T/f2" "$T/w12" >/dev/null 2>&1
check "restore --into NEW: NEW ships as the stream's continuation" ship_done "$T/f2" f
L=$(e2e_last_txid "$T/f2")
check "... applied" e2e_wait_applied "$FD" f "$L" 120
check "... equal to NEW" e2e_same_export "$T/f2" "$FD/streams/f/standby"
"$BIN" dump "$T/f2" --to "$T/f2.dump" --quiet
"$BIN" load "$T/f2.dump" --into "$T/f3" --quiet
check "load of a full dump: ships to its old stream as the same history" ship_done "$T/f3" f
check "... and to a new stream" ship_done "$T/f3" f-new
e2e_gen "$T/w13" 100 13 1-5
"$BIN" exec "$T/f3" "$T/w13" >/dev/null 2>&1
check "... and continues both" ship_done "$T/f3" f
check "... (the new one too)" ship_done "$T/f3" f-new
stop "$RX_PID"

echo "e2e_failover: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
