#!/usr/bin/env bash
# End-to-end test of shipping: real `shiplog exec` / `ship` / `receive`
# processes on 127.0.0.1.
#   1. a workload commits while shipping; the standby catches up (applied ==
#      the primary's last txid) and its export equals the primary's byte for
#      byte; the archive's log equals the primary's log record for record;
#      then the catch-up speed of a standby that is far behind.
#   2. the same while the shipper, the receiver and the primary (exec) are
#      SIGKILLed at random moments and restarted: nothing acknowledged is
#      lost, nothing is applied twice.
#      A second shipper for the live stream is refused for good (exit 1).
#   3. two primaries into one receiver (two streams), both equal.
#   4. malformed frames inside TLS (openssl s_client) and plain bytes on the
#      TLS port: the receiver logs an error naming the peer, never hangs, and
#      keeps serving the other streams.
#   5. stats on a standby; a standby with a damaged page and one with a
#      truncated data.mdb stop with the reason in status, not rebuilt.
#   6. an archive whose newest segment lost its last frame below the durable
#      mark (a damaged tail): the receiver cuts it at start and the rightful
#      shipper gets in and sends the rest again (it was once refused for
#      good as "another store 000...0").
# Every connection is TLS 1.3 with client certificates and an allow list
# (certificates from tests/make_certs.sh); tests/e2e_security.sh covers the
# refusals. Needs $SL_BIN, $SL_BUILD/bench_gen, jq, openssl. SL_SEED=N
# replays the random choices.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c receive -g jq openssl
e2e_begin e2e_ship
now_ms() { date +%s%3N; }

# ---- certificates ------------------------------------------------------------------
# One client certificate per primary; the allow list gives each its streams.
PKI=$T/pki
bash "$SRC/tests/make_certs.sh" "$PKI" p1 pa pb p2 || exit 1
printf '%s\n' "# stream  identities" "s1 p1" "a pa" "b pb.shippers.test" "chaos p2" "k pa" >"$T/allow"
RX_TLS=(--tls-cert "$PKI/receiver.crt" --tls-key "$PKI/receiver.key" --tls-ca "$PKI/ca.crt"
  --allow "$T/allow")
cert_of() { case $1 in s1) echo p1 ;; a) echo pa ;; b) echo pb ;; *) echo p2 ;; esac; }

# ---- processes ------------------------------------------------------------------
# start_receiver (tests/lib_e2e.sh) with RX_TLS
RX_TIMEOUT_MS=3000
# start_shipper STORE PORT STREAM: sets SH_PID. The receiver's certificate
# names localhost and 127.0.0.1: either may be dialled.
start_shipper() {
  local c
  c=$(cert_of "$3")
  "$BIN" ship "$1" --to "127.0.0.1:$2" --stream "$3" --heartbeat-ms 200 --timeout-ms 3000 \
    --tls-cert "$PKI/$c.crt" --tls-key "$PKI/$c.key" --tls-ca "$PKI/ca.crt" \
    --backoff-max-ms 300 2>>"$T/ship-$3.log" &
  SH_PID=$!
  pids+=("$SH_PID")
}
kill9() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# same_as_primary STORE DATA STREAM: exports byte-equal; the archive holds
# txids 1..last densely (the log reader checks the sequence) and, where the
# primary still has them (it prunes what the receiver holds), the very same
# records.
same_as_primary() {
  local s=$1 d=$2 n=$3 first last
  e2e_same_export "$s" "$d/streams/$n/standby" || return 1
  mkdir -p "$T/arch.$n" && ln -sfn "$d/streams/$n/archive" "$T/arch.$n/log"
  "$BIN" log "$s" --json >"$T/p.log" || return 1
  "$BIN" log "$T/arch.$n" --json >"$T/a.log" || return 1
  first=$("$BIN" stats "$s" --json | jq -r .log.first_txid)
  last=$(e2e_last_txid "$s")
  if [ "$(wc -l <"$T/a.log")" != "$last" ] || [ "$(head -1 "$T/a.log" | jq -r .txid)" != 1 ]; then
    echo "    the archive does not hold txids 1..$last"
    return 1
  fi
  if ! tail -n +"$first" "$T/a.log" | cmp -s "$T/p.log" -; then
    echo "    archive records differ from the primary's (from txid $first):"
    tail -n +"$first" "$T/a.log" | diff "$T/p.log" - | head -5 | cut -c1-150 | sed 's/^/    /'
    return 1
  fi
  echo "    $last transactions (records $first..$last compared), export $(wc -c <"$T/p.json") bytes: equal"
}

# ---- usage ------------------------------------------------------------------------------
expect 0 "receive --help" "$BIN" receive --help
contains "$T/out" "Usage: shiplog receive" "receive --help shows its usage"
expect 0 "status --help" "$BIN" status --help
expect 2 "receive without --listen" "$BIN" receive --data "$T/x"
expect 2 "receive without --data" "$BIN" receive --listen 127.0.0.1:0
expect 2 "receive with a bad --listen" "$BIN" receive --listen nocolon --data "$T/x"
expect 2 "receive with a bad --timeout-ms" "$BIN" receive --listen 127.0.0.1:0 --data "$T/x" --timeout-ms x
expect 2 "status --stream without --data" "$BIN" status --stream a
expect 2 "status with a bad stream name" "$BIN" status --data "$T" --stream "a/b"
[ ! -e "$T/x" ] && ok "usage errors create nothing" || bad "usage errors create nothing"

# ---- 1. a workload while shipping -----------------------------------------------------
P1=$T/p1 D=$T/data
# Big enough segments that nothing is pruned before the shipper first
# registers its consumer position (a pruned start is the shipper's refusal).
"$BIN" init "$P1" --segment-size 4M >/dev/null
start_receiver "$D" "${RX_TLS[@]}" || exit 1
PORT=$RX_PORT
RX1=$RX_PID
expect 1 "a second receiver on the same data directory" "$BIN" receive --listen 127.0.0.1:0 --data "$D" "${RX_TLS[@]}" "${ROOT[@]}"
contains "$T/err" "another receiver serves this data directory" "it says why"
e2e_gen "$T/w1a" 1500 1
"$BIN" exec "$P1" "$T/w1a" >/dev/null   # before the shipper starts
start_shipper "$P1" "$PORT" s1
SH1=$SH_PID
for c in 2 3; do e2e_gen "$T/w1" 1500 $c && "$BIN" exec "$P1" "$T/w1" >/dev/null; done
L1=$(e2e_last_txid "$P1")
check "1: the standby applies up to the primary's last txid ($L1)" e2e_wait_applied "$D" s1 "$L1" 120
check "1: standby export and archive equal the primary's" same_as_primary "$P1" "$D" s1
"$BIN" status --data "$D" --json >"$T/st.json"
check "1: status --data: connected, durable = applied = last, no lag" \
  jqe --argjson l "$L1" '.streams[0] | .state == "connected" and .durable == $l and .applied == $l and .lag_tx == 0 and .lag_bytes == 0' "$T/st.json"
check "1: status --data --json gives the version" jqe --arg v "$("$BIN" --version)" '"shiplog " + .version == $v' "$T/st.json"
# the shipper's status file follows within 200 ms or so
ship_reports() { "$BIN" status "$P1" --json 2>/dev/null | jqe --argjson l "$L1" '.streams[0] | .state == "streaming" and .applied == $l'; }
e2e_until 60 ship_reports
"$BIN" status "$P1" --json >"$T/st.json"
check "1: status STORE: streaming, durable = applied = committed" \
  jqe --argjson l "$L1" '.streams[0] | .stream == "s1" and .state == "streaming" and .committed == $l and .durable == $l and .applied == $l and .lag_tx == 0' "$T/st.json"
expect 0 "1: status STORE (table)" "$BIN" status "$P1"
contains "$T/out" "streaming" "1: the table shows the connection state"
expect 0 "1: status --data (table)" "$BIN" status --data "$D"
contains "$T/out" "connected" "1: the receiver's table shows the connection state"
# A second shipper for the live stream (the same store shipped twice): it
# used to take the stream, and the two took it from each other on every
# reconnect. Now it is refused for good while the first is heard from.
TAKEOVERS=$(grep -c "takes over" "$T/rx.log")
expect 1 "1: a second shipper for a live stream is refused (exit 1)" \
  "$BIN" ship "$P1" --to "127.0.0.1:$PORT" --stream s1 --heartbeat-ms 200 --timeout-ms 3000 \
  --tls-cert "$PKI/p1.crt" --tls-key "$PKI/p1.key" --tls-ca "$PKI/ca.crt" --exit-when-caught-up
contains "$T/err" "stream s1 is live: it is shipped from 127.0.0.1:" "1: ...with the receiver's reason"
check "1: ...and the first one keeps the stream" [ "$(grep -c "takes over" "$T/rx.log")" = "$TAKEOVERS" ]
check "1: ...still running" kill -0 "$SH1"
"$BIN" status "$P1" --json >"$T/st.json"
check "1: ...and status STORE still says the first one streams" jqe '.streams[0].state == "streaming"' "$T/st.json"

# Catch-up: commit with the shipper stopped, then time the standby.
kill9 "$SH1"
e2e_gen "$T/w1" 20000 4
"$BIN" exec "$P1" "$T/w1" >/dev/null
L1=$(e2e_last_txid "$P1")
t0=$(now_ms)
start_shipper "$P1" "$PORT" s1
SH1=$SH_PID
if e2e_wait_applied "$D" s1 "$L1" 120; then
  ms=$(( $(now_ms) - t0 ))
  ok "1: a standby 20000 transactions behind catches up in $ms ms ($(( 20000 * 1000 / (ms > 0 ? ms : 1) )) tx/s, ship + archive + apply)"
else
  bad "1: a standby 20000 transactions behind catches up"
fi
check "1: still equal after the catch-up" same_as_primary "$P1" "$D" s1

# ---- 3. two primaries into one receiver --------------------------------------------------
PA=$T/pa PB=$T/pb
"$BIN" init "$PA" >/dev/null
"$BIN" init "$PB" --segment-size 64K >/dev/null
start_shipper "$PA" "$PORT" a
SHA=$SH_PID
start_shipper "$PB" "$PORT" b
SHB=$SH_PID
e2e_gen "$T/wa" 3000 11
e2e_gen "$T/wb" 3000 12
"$BIN" exec "$PA" "$T/wa" >/dev/null &
EA=$!
"$BIN" exec "$PB" "$T/wb" >/dev/null &
EB=$!
wait "$EA" "$EB"
LA=$(e2e_last_txid "$PA") LB=$(e2e_last_txid "$PB")
check "3: stream a applied ($LA)" e2e_wait_applied "$D" a "$LA" 120
check "3: stream b applied ($LB)" e2e_wait_applied "$D" b "$LB" 120
check "3: stream a equals its primary" same_as_primary "$PA" "$D" a
check "3: stream b equals its primary" same_as_primary "$PB" "$D" b
"$BIN" status --data "$D" --json >"$T/st.json"
check "3: status lists the three streams" jqe '[.streams[].stream] == ["a","b","s1"]' "$T/st.json"

# ---- 4. malformed frames, inside TLS and on the bare socket -------------------------------
# tls_send PRINTF-FORMAT [openssl s_client option]: a trusted certificate
# sends the bytes inside TLS, then reads until the receiver closes.
tls_send() {
  # shellcheck disable=SC2059
  printf "$1" | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -quiet ${2:-} \
    -cert "$PKI/pa.crt" -key "$PKI/pa.key" -CAfile "$PKI/ca.crt" -verify_return_error >/dev/null 2>&1
  [ $? -ne 124 ] # 124: still open after 10 s, a hang
}
raw_send() { # raw_send PRINTF-FORMAT: plain bytes on the TLS port
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  # shellcheck disable=SC2059
  printf "$1" >&3
  timeout 10 cat <&3 >/dev/null 2>&1
  local rc=$?
  exec 3<&- 3>&-
  [ "$rc" -ne 124 ]
}
before=$(grep -c "error: connection from 127.0.0.1:" "$T/rx.log")
check "4: garbage in TLS gets an answer or a close, no hang" tls_send 'GARBAGE\r\nnot a frame at all\r\n'
check "4: a bad CRC gets an answer or a close" tls_send '\x04\x00\x00\x00\xde\xad\xbe\xef\x0a\x01\x02\x03'
check "4: an oversize length gets an answer or a close" tls_send '\xff\xff\xff\x7f\x00\x00\x00\x00'
check "4: a truncated message then close" tls_send '\x40\x00\x00\x00\x00\x00\x00\x00\x0a\x05' -no_ign_eof
check "4: plain bytes on the TLS port get an answer or a close" raw_send 'GARBAGE\r\n'
check "4: a TLS record header and then nothing gets a close" raw_send '\x16\x03\x01\x02\x00\x01'
logged_six() { [ "$(grep -c "error: connection from 127.0.0.1:" "$T/rx.log")" -ge $((before + 6)) ]; }
e2e_until 60 logged_six
after=$(grep -c "error: connection from 127.0.0.1:" "$T/rx.log")
check "4: the receiver logged errors naming the peer" [ "$after" -ge $((before + 6)) ]
grep "error: connection from 127.0.0.1:" "$T/rx.log" | tail -6 | sed 's/^/    /'
check "4: the receiver still runs" kill -0 "$RX1"
e2e_gen "$T/wa" 500 13
"$BIN" exec "$PA" "$T/wa" >/dev/null
LA=$(e2e_last_txid "$PA")
check "4: stream a keeps applying ($LA)" e2e_wait_applied "$D" a "$LA" 120
check "4: stream a equals its primary" same_as_primary "$PA" "$D" a
kill9 "$SHA"
kill9 "$SHB"
kill9 "$SH1"
"$BIN" status "$P1" --json >"$T/st.json"
check "4: status STORE after the shipper's SIGKILL: not-running, and why" \
  jqe '.streams[0] | .state == "not-running" and (.error | test("no shipper runs"))' "$T/st.json"
kill -TERM "$RX1"
wait "$RX1"
check "4: the receiver stops cleanly on SIGTERM (exit 0)" [ $? -eq 0 ]
"$BIN" status --data "$D" --json >"$T/st.json"
check "4: status without a receiver: disconnected" jqe 'all(.streams[]; .state == "disconnected")' "$T/st.json"
# The standby is derived: removed, it is rebuilt from the archive at start.
rm -rf "$D/streams/b/standby"
start_receiver "$D" "${RX_TLS[@]}" || exit 1
check "4: a removed standby is rebuilt from the archive" e2e_wait_applied "$D" b "$LB" 120
check "4: the rebuilt standby equals its primary" same_as_primary "$PB" "$D" b
kill -TERM "$RX_PID"
wait "$RX_PID"

# ---- 5. damaged standbys ----------------------------------------------------------------------
# stats on a standby (no log of its own); then one standby with a damaged
# B-tree page (tests/lmdb_damage) and one with a truncated data.mdb: neither
# is rebuilt nor goes on applying, status says why naming the file, and the
# other streams go on.
expect 0 "5: stats on a standby" "$BIN" stats "$D/streams/b/standby"
contains "$T/out" "standby (no log)" "5: stats says the standby has no log"
contains "$T/out" "last txid      $LB" "5: stats shows the standby's applied txid"
expect 0 "5: stats --json on a standby" "$BIN" stats "$D/streams/b/standby" --json
standby_json() { [ -s "$T/out" ] && jqe --argjson l "$LB" '.last_txid == $l and .standby and .log == null and .lmdb_bytes > 0' "$T/out"; }
check "5: stats --json: counts, no log" standby_json
if [ -x "$BUILD/lmdb_damage" ]; then
  "$BUILD/lmdb_damage" "$D/streams/a/standby/data.mdb" nodes leaf
  sa=$(size "$D/streams/s1/standby/data.mdb")
  truncate -s $((sa / 2)) "$D/streams/s1/standby/data.mdb"
  start_receiver "$D" "${RX_TLS[@]}" || exit 1
  check "5: the damaged standby stops" e2e_wait_status "$D" a state stopped 30
  check "5: the truncated standby stops" e2e_wait_status "$D" s1 state stopped 30
  e2e_rx_json "$D" a error >"$T/err.a"
  contains "$T/err.a" "$D/streams/a/standby/data.mdb is damaged" "5: status names the damaged data.mdb"
  contains "$T/rx.log" "$D/streams/a/standby/data.mdb: LMDB database nodes is damaged: page" "5: the log names the page"
  e2e_rx_json "$D" s1 error >"$T/err.s1"
  contains "$T/err.s1" "$D/streams/s1/standby/data.mdb is damaged" "5: status names the truncated data.mdb"
  contains "$T/rx.log" "$D/streams/s1/standby/data.mdb: the file holds $((sa / 2)) bytes" "5: the log gives its size"
  check "5: the truncated standby was not rebuilt" [ "$(size "$D/streams/s1/standby/data.mdb")" -eq $((sa / 2)) ]
  start_shipper "$PB" "$RX_PORT" b
  e2e_gen "$T/wb" 300 14
  "$BIN" exec "$PB" "$T/wb" >/dev/null
  LB=$(e2e_last_txid "$PB")
  check "5: stream b goes on applying ($LB)" e2e_wait_applied "$D" b "$LB" 60
  kill9 "$SH_PID"
  kill -TERM "$RX_PID"
  wait "$RX_PID"
  mv "$T/rx.log" "$T/rx-5.log" # 2. looks for stopped standbys in its own
else
  skip "5: damaged standbys (no lmdb_damage at $BUILD)"
fi

# ---- 6. a damaged archive tail -------------------------------------------------------------------
PK=$T/pk
"$BIN" init "$PK" >/dev/null
e2e_gen "$T/wk" 300 21 && "$BIN" exec "$PK" "$T/wk" >/dev/null
LK=$(e2e_last_txid "$PK")
ship_k() {
  timeout 30 "$BIN" ship "$PK" --to "127.0.0.1:$RX_PORT" --stream k --heartbeat-ms 200 --timeout-ms 3000 \
    --tls-cert "$PKI/pa.crt" --tls-key "$PKI/pa.key" --tls-ca "$PKI/ca.crt" --backoff-max-ms 300 \
    --exit-when-caught-up 2>>"$T/ship-k.log"
}
start_receiver "$D" "${RX_TLS[@]}" || exit 1
check "6: stream k ships" ship_k
check "6: ...and is applied" e2e_wait_applied "$D" k "$LK" 30
kill -TERM "$RX_PID"
wait "$RX_PID"
SEGK=$(ls "$D/streams/k/archive/"*.seg | tail -1)
truncate -s -10 "$SEGK"
start_receiver "$D" "${RX_TLS[@]}" || exit 1
check "6: the rightful shipper gets in again after the archive's tail was damaged" ship_k
if grep -q "belongs to store 0000" "$T/ship-k.log"; then bad "6: ...and is never told the stream belongs to store 000...0"
else ok "6: ...and is never told the stream belongs to store 000...0"; fi
contains "$T/rx.log" "damaged below the durable mark (txid $LK); cut after txid $((LK - 1))" "6: the receiver says what it cut"
check "6: ...and its standby applies up to txid $LK" e2e_wait_applied "$D" k "$LK" 30
check "6: the stream is whole again: standby and archive equal the primary" same_as_primary "$PK" "$D" k
kill -TERM "$RX_PID"
wait "$RX_PID"
mv "$T/rx.log" "$T/rx-6.log" # 2. looks for stopped standbys in its own (a and s1 stay stopped)

# ---- 2. kills at random moments ---------------------------------------------------------------
P2=$T/p2 D2=$T/data2
"$BIN" init "$P2" --segment-size 128K >/dev/null
start_receiver "$D2" "${RX_TLS[@]}" || exit 1
PORT2=$RX_PORT
RX2=$RX_PID
start_shipper "$P2" "$PORT2" chaos
SH2=$SH_PID
kills_rx=0 kills_sh=0 kills_ex=0 chunk=100
end=$((SECONDS + ${SL_E2E_CHAOS_SECONDS:-25}))
while [ "$SECONDS" -lt "$end" ]; do
  chunk=$((chunk + 1))
  e2e_gen "$T/w2" 2000 $chunk
  "$BIN" exec "$P2" "$T/w2" >/dev/null 2>>"$T/exec.log" &
  EX=$!
  pids+=("$EX")
  for k in 1 2 3; do
    sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
    case $((RANDOM % 5)) in
    0) kill -9 "$EX" 2>/dev/null && kills_ex=$((kills_ex + 1)) ;;
    1) kill9 "$RX2"; kills_rx=$((kills_rx + 1))
       start_receiver -p "$PORT2" "$D2" "${RX_TLS[@]}" || break 2
       RX2=$RX_PID ;;
    2) kill9 "$SH2"; kills_sh=$((kills_sh + 1))
       start_shipper "$P2" "$PORT2" chaos
       SH2=$SH_PID ;;
    *) ;;
    esac
  done
  wait "$EX" 2>/dev/null
done 2>>"$T/chaos.log" # bash's "Killed" notices
echo "    killed: receiver $kills_rx, shipper $kills_sh, primary (exec) $kills_ex times"
e2e_gen "$T/w2" 500 $((chunk + 1))
"$BIN" exec "$P2" "$T/w2" >/dev/null 2>>"$T/exec.log"
L2=$(e2e_last_txid "$P2")
check "2: after the kills the standby applies up to $L2" e2e_wait_applied "$D2" chaos "$L2" 120
check "2: nothing lost, nothing applied twice (export and archive equal the primary's)" \
  same_as_primary "$P2" "$D2" chaos
if grep -q "standby stop" "$T/rx.log"; then bad "2: no standby stopped"; else ok "2: no standby stopped"; fi
kill9 "$SH2"
kill -TERM "$RX2"
wait "$RX2"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
