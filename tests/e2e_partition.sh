#!/usr/bin/env bash
# Network faults between a shipper and its receiver, both inside a network
# namespace this test creates (on its loopback), the shipper dialling the
# receiver through tests/netproxy (the slow-link proxy):
#   1. a silent partition (nftables drops every packet, no RST): both sides
#      notice through heartbeats within their --timeout-ms, `status` shows
#      it on both; commits go on meanwhile; after the heal the shipper
#      reconnects with backoff and resumes at the durable txid;
#   2. a connection reset (the proxy closes with RST): reconnected, resumed;
#   3. a slow link (100 ms one way, 256 KB/s): shipping completes;
#   5. a power loss of the receiver at a receive: its archive's unsynced
#      writes torn, it restarts as after a reboot and rebuilds its standby;
#   4. send and receive errors (fault points 10 and 11 through $SL_FAULTS):
#      the shipper's sends and the receiver's reads fail a few times; each
#      failure costs a reconnect, nothing else.
# After each, the standby equals the primary (canonical exports). Root and
# working namespaces needed (else skip, 77). SL_SEED=N replays.
set -u

. "$(dirname "$0")/lib_e2e.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (ip netns, nft)"; exit 77; }
e2e_need -g ip nft nsenter jq
PROXY=$BUILD/netproxy
[ -x "$PROXY" ] || { echo "skip: no $PROXY"; exit 77; }
e2e_begin e2e_partition
e2e_netns || { echo "skip: no network namespace here ($NETNS_WHY)"; exit 77; }
err=$(e2e_in_ns nft list tables 2>&1) || { echo "skip: nftables does not work in a network namespace here ($err)"; exit 77; }
INNS=(nsenter --net="/run/netns/$NS") # execs the program (no fork): $! is its pid
now_ms() { date +%s%3N; }

RXPORT=7001 PXPORT=7002 TIMEOUT=1500
P=$T/primary D=$T/data
"$BIN" init "$P" --segment-size 1M >/dev/null
start_receiver() { # start_receiver [env...]: sets RX_PID
  env "$@" "${INNS[@]}" "$BIN" receive --listen 127.0.0.1:$RXPORT --data "$D" --insecure --allow-root \
    --heartbeat-ms 200 --timeout-ms $TIMEOUT --verbose 2>>"$T/rx.log" &
  RX_PID=$!
  pids+=("$RX_PID")
  sleep 0.3
}
start_receiver
start_proxy() { # start_proxy [netproxy options]: sets PX_PID
  "${INNS[@]}" "$PROXY" --listen 127.0.0.1:$PXPORT --to 127.0.0.1:$RXPORT "$@" 2>>"$T/proxy.log" &
  PX_PID=$!
  pids+=("$PX_PID")
  sleep 0.2
}
start_proxy
start_shipper() { # start_shipper [env...]: sets SH_PID
  env "$@" "${INNS[@]}" "$BIN" ship "$P" --to 127.0.0.1:$PXPORT --stream s --insecure --heartbeat-ms 200 \
    --timeout-ms $TIMEOUT --backoff-max-ms 500 --verbose 2>>"$T/ship.log" &
  SH_PID=$!
  pids+=("$SH_PID")
}
start_shipper
commit() { # commit N CHUNK: N more transactions on the primary
  e2e_gen "$T/w$2" "$1" "$2" && "$BIN" exec "$P" "$T/w$2" >/dev/null
}
caught_up() { # caught_up WHAT: the standby applies everything and equals the primary
  local l
  l=$(e2e_last_txid "$P")
  check "$1: the standby applies up to $l" e2e_wait_applied "$D" s "$l" 120
  check "$1: the standby equals the primary" e2e_same_export "$P" "$D/streams/s/standby"
}
ship_state() { "$BIN" status "$P" --json 2>/dev/null | jq -r '.streams[0].state // empty'; }
# wait_for SECONDS CMD...: until CMD succeeds (1 when SECONDS pass first)
wait_for() { e2e_until "$@"; }
commit 500 1
caught_up "0. before any fault"

# ---- 1. a silent partition --------------------------------------------------------------
e2e_cut $PXPORT
t0=$(now_ms)
rx_gone() { [ "$(e2e_rx_json "$D" s state)" = disconnected ]; }
sh_gone() { [ "$(ship_state)" != streaming ]; }
if wait_for 60 rx_gone; then
  ok "1: the receiver notices the silent partition ($(($(now_ms) - t0)) ms; --timeout-ms $TIMEOUT)"
else bad "1: the receiver notices the silent partition"; fi
if wait_for 60 sh_gone; then
  ok "1: the shipper notices it too ($(($(now_ms) - t0)) ms), status says $(ship_state)"
else bad "1: the shipper notices the silent partition"; fi
"$BIN" status "$P" --json >"$T/st.json"
check "1: the shipper's status names the error" jqe '.streams[0].error | length > 0' "$T/st.json"
jq -r '.streams[0] | "    shipper: \(.state): \(.error)"' "$T/st.json"
commit 500 2 # meanwhile the primary commits on
sleep 1
check "1: nothing reaches the standby while cut" [ "$(e2e_rx_json "$D" s applied)" -lt "$(e2e_last_txid "$P")" ]
e2e_heal
t0=$(now_ms)
caught_up "1: after the heal"
echo "    resumed and caught up $(($(now_ms) - t0)) ms after the heal"
check "1: the shipper reconnected and resumed at the durable txid" grep -q "from txid [1-9]" "$T/ship.log"

# ---- 2. a connection reset -------------------------------------------------------------------
before=$(grep -c "shipping stream s" "$T/ship.log")
commit 300 3 &
wpid=$!
sleep 0.3
kill -USR1 "$PX_PID"
wait "$wpid"
caught_up "2: after a reset"
reconnected() { [ "$(grep -c "shipping stream s" "$T/ship.log")" -gt "$before" ]; }
check "2: the shipper reconnected after the reset" wait_for 60 reconnected

# ---- 3. a slow link ---------------------------------------------------------------------------
kill -9 "$PX_PID"
wait "$PX_PID" 2>/dev/null
start_proxy --delay-ms 100 --rate 262144
t0=$(now_ms)
commit 1000 4
caught_up "3: over a 100 ms, 256 KB/s link"
echo "    1000 transactions shipped over the slow link in $(($(now_ms) - t0)) ms"

# ---- 4. send and receive errors -------------------------------------------------------------------
kill -9 "$PX_PID" "$SH_PID" "$RX_PID"
wait "$PX_PID" "$SH_PID" "$RX_PID" 2>/dev/null
start_receiver SL_FAULTS=11:EIO:40:2
start_proxy
start_shipper SL_FAULTS=10:EIO:20:3
before=$(grep -c "shipping stream s" "$T/ship.log")
commit 2000 5
caught_up "4: after failed sends and reads"
n=$(($(grep -c "shipping stream s" "$T/ship.log") - before))
check "4: each injected failure cost a reconnect ($n sessions)" [ "$n" -ge 2 ]

# ---- 4b. the Welcome fails to send ------------------------------------------------------------
# The receiver has attached the connection to the stream when its Welcome
# send fails; the session must let go of the stream, or every later
# shipper is refused as "the previous connection has not left yet".
kill -9 "$RX_PID"
wait "$RX_PID" 2>/dev/null
start_receiver SL_FAULTS=10:EIO:0:1
commit 500 7
caught_up "4b: after the receiver's Welcome failed to send"
check "4b: no shipper was refused for a stale owner" bash -c "! grep -q 'has not left yet' '$T/rx.log'"

# ---- 5. the receiver loses power -----------------------------------------------------------------
# At a receive (point 11) its unsynced archive writes are torn, it exits as
# a crash (86); it comes back as after a reboot (a new boot id): its
# standby, written without sync, is rebuilt from the archive.
kill -9 "$RX_PID"
wait "$RX_PID" 2>/dev/null
start_receiver SL_FAULTS=11:tear:$((200 + RANDOM % 200)) SL_SEED="$SEED"
commit 3000 6 &
wpid=$!
wait "$RX_PID"
rc=$?
wait "$wpid"
check "5: the receiver lost power at the fault point (exit $rc)" [ "$rc" -eq 86 ]
before=$(grep -c "rebuil" "$T/rx.log")
start_receiver SL_TEST_BOOT_ID=after
SL_TEST_BOOT_ID=after caught_up "5: after the receiver's power loss" # the same boot for every reader
check "5: the receiver rebuilt the standby" [ "$(grep -c "rebuil" "$T/rx.log")" -gt "$before" ]
grep "rebuil" "$T/rx.log" | tail -n +$((before + 1)) | cut -c1-200 | sed 's/^/    /'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
