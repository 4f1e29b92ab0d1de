#!/usr/bin/env bash
# e2e_bolt_failover: what an application on Neo4j's JavaScript driver sees
# across a failover (README "Failover", "Connect an application"). A
# primary served over Bolt ships to a receiver with --bolt; the driver
# writes and keeps the bookmark of a write that was archived, then, with
# the shipper stopped, of one that never was; the primary dies; the standby
# is promoted as the README shows, shipped to the same receiver and then
# served (the standby learns of that serve from a Heartbeat). Then
# (tests/bolt-driver/failover_test.js): the archived write's bookmark
# (epoch 0) is accepted by the new primary and the standby and its write
# read; the lost one's is InvalidBookmark naming its txid and where epoch 1
# began; neo4j:// routing through either names the new primary as the
# writer; a write routed via the standby lands there. The old primary comes
# back: its shipper is refused (diverged), the standby still routes writes
# to the new primary, and the old primary's serve refuses a bookmark of the
# new epoch. Once the new primary's serve stops, the standby names no
# writer; nor once a serve started again is SIGKILLed (its bolt.address
# stays, but nobody holds its lock). Skips (77) without node or when npm cannot install the driver.
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c serve node jq
e2e_begin e2e_bolt_failover
bolt_driver_install

# js DESCRIPTION ARGS...: failover_test.js; its ok/FAIL lines count, its
# "bookmark B" line sets BOOKMARK
js() {
  local desc=$1
  shift
  BOOKMARK=
  timeout 120 node "$SRC/tests/bolt-driver/failover_test.js" "$@" >"$T/js.out" 2>&1
  local rc=$? word rest
  while read -r word rest; do
    case $word in
    ok) ok "$desc: $rest" ;;
    FAIL) bad "$desc: $rest" ;;
    message:) echo "     $rest" ;;
    bookmark) BOOKMARK=$rest ;;
    esac
  done <"$T/js.out"
  [ $rc -eq 0 ] || grep -q '^FAIL' "$T/js.out" || { bad "$desc: exit $rc"; tail -5 "$T/js.out"; }
}
# routes_to PORT WANT: neo4j:// routing through PORT names WANT (a port, or
# none) as the writer, silently (for e2e_until)
routes_to() { timeout 60 node "$SRC/tests/bolt-driver/failover_test.js" writer "$1" main "$2" >/dev/null 2>&1; }
# ship STORE: its shipper to the receiver as stream main; SHIP_PID
ship() {
  "$BIN" ship "$1" --to "127.0.0.1:$RX_PORT" --stream main --insecure --heartbeat-ms 200 --backoff-max-ms 300 \
    2>>"$T/ship.log" &
  SHIP_PID=$!
  pids+=("$SHIP_PID")
}

P1=$T/old-primary
P2=$T/new-primary
D=$T/backup
"$BIN" init "$P1" >/dev/null

# ---- before: the primary serves and ships, the receiver serves its standby --------------
BOLT_RX=$(free_port)
start_receiver "$D" --insecure --bolt "127.0.0.1:$BOLT_RX" --bolt-no-auth || exit 1
start_serve old "$P1" --no-auth --database main || exit 1
OLD=$PORT
OLD_PID=$SERVE_PID
ship "$P1"
js "write" write "$OLD" main Kept
KEPT=$BOOKMARK
check "the old primary's write gives a bookmark of epoch 0" grep -qE '^shiplog:[0-9a-f]{32}:0:[0-9]+$' <<<"$KEPT"
check "it is archived" e2e_wait_status "$D" main durable "${KEPT##*:}" 30
js "before" writer "$BOLT_RX" main "$OLD"
# the link goes first: what the primary commits now, nobody archives
kill -TERM "$SHIP_PID"
wait "$SHIP_PID" 2>/dev/null
js "write" write "$OLD" main Lost
LOST=$BOOKMARK
check "a write nobody archived follows it (txid $((${KEPT##*:} + 1)))" test "${LOST##*:}" = $((${KEPT##*:} + 1))

# ---- failover: the primary's host dies; promote on the backup host ----------------------
kill -9 "$OLD_PID"
wait "$OLD_PID" 2>/dev/null
kill -TERM "$RX_PID"
wait "$RX_PID" 2>/dev/null
check "promote exits 0" "$BIN" promote --data "$D" --stream main --into "$P2" >"$T/promote.out"
contains "$T/promote.out" "epoch 1 begins at txid ${LOST##*:}" "promote: epoch 1 begins after the archived txids"
BOLT_RX2=$(free_port)
start_receiver "$D" --insecure --bolt "127.0.0.1:$BOLT_RX2" --bolt-no-auth || exit 1
# its shipper first, then serve: the shipper tells the receiver of the
# Bolt server that started since its Hello (a Heartbeat)
ship "$P2"
NEW_SHIP=$SHIP_PID
check "the new primary's shipper is welcomed by the standby" \
  e2e_until 30 grep -qsx "bolt=127.0.0.1:$BOLT_RX2" "$P2/ship/main.status"
start_serve new "$P2" --no-auth --database main || exit 1
NEW=$PORT
NEW_SERVE=$SERVE_PID
check "the standby learns that the new primary serves Bolt" e2e_until 30 routes_to "$BOLT_RX2" "$NEW"

# a cascade: the backup host's stream goes on to a second receiver, B,
# which serves Bolt too; it is held back (SIGSTOP) from here
BOLT_B=$(free_port)
RX_D=$RX_PORT
start_receiver "$T/backup-b" --insecure --bolt "127.0.0.1:$BOLT_B" --bolt-no-auth || exit 1
RX_B=$RX_PORT
RX_PORT=$RX_D
"$BIN" ship "$D/streams/main" --to "127.0.0.1:$RX_B" --stream main --insecure --heartbeat-ms 200 2>>"$T/ship.log" &
CASCADE=$!
pids+=("$CASCADE")
check "B has the archived txids" e2e_wait_applied "$T/backup-b" main "${KEPT##*:}" 30
kill -STOP "$CASCADE"

# ---- the driver after the failover ------------------------------------------------------
js "after" after "$NEW" "$BOLT_RX2" "$OLD" main Kept "$KEPT" "$LOST"
NEWER=$BOOKMARK
# B has not received epoch 1: a read bringing a bookmark of it waits
timeout 60 node "$SRC/tests/bolt-driver/failover_test.js" read "$BOLT_B" main AfterFailover "$NEWER" >"$T/b.out" 2>&1 &
WAIT_PID=$!
sleep 1
check "B, behind the new epoch, waits with its bookmark" kill -0 "$WAIT_PID"
kill -CONT "$CASCADE"
wait "$WAIT_PID"
while read -r word rest; do
  case $word in ok) ok "B: $rest" ;; FAIL) bad "B: $rest" ;; esac
done <"$T/b.out"
grep -q '^ok' "$T/b.out" || { bad "B: no answer"; tail -3 "$T/b.out"; }

# ---- the old primary comes back ---------------------------------------------------------
start_serve back "$P1" --no-auth --database main || exit 1
BACK=$PORT
expect 1 "the old primary's shipper is refused" "$BIN" ship "$P1" --to "127.0.0.1:$RX_PORT" --stream main --insecure
contains "$T/err" "diverged" "the refusal says diverged"
check "the new primary's shipper is still connected" kill -0 "$NEW_SHIP"
js "old primary back" newer "$BACK" main "$NEWER"
js "routing after the old primary's refusal" writer "$BOLT_RX2" main "$NEW"
stop_serve back
SERVE_PID=$NEW_SERVE
stop_serve new
check "once the new primary's serve stops, the standby names no writer" e2e_until 30 routes_to "$BOLT_RX2" none
# a serve killed cannot remove bolt.address: its lock, gone with it, says it is dead
start_serve again "$P2" --no-auth --database main || exit 1
check "the standby names the new primary's serve started again" e2e_until 30 routes_to "$BOLT_RX2" "$PORT"
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
check "a SIGKILLed serve leaves bolt.address" grep -qx "127.0.0.1:$PORT" "$P2/bolt.address"
check "once it is SIGKILLed, the standby names no writer" e2e_until 30 routes_to "$BOLT_RX2" none

grep -q 'Sanitizer\|runtime error' "$T"/*.log && bad "sanitizer report in a log"
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
